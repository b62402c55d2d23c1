/* The Box policy's distributions (flowrl/gfn_box.h; docs/algorithms/gfn-box.md §2; torchgfn 1.2.1
 * GFNOrg/torchgfn@13c059a2 src/gfn/gym/helpers/box_utils.py: QuarterDisk, QuarterCircle,
 * QuarterCircleWithExit, BoxPFEstimator / BoxPBEstimator's _normalize), their log-densities with
 * the gradients in the raw network outputs, and their draws. Float64 host code, from + − × ÷ √,
 * flowrl's log / exp (flowrl/awm_elem.h) and sin / cos (fr_ctl_sincos): the same bits everywhere. */
#include <math.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/env_ctl.h"
#include "flowrl/gfn_box.h"
#include "flowrl/philox.h"

#define PI_D 3.14159265358979323846
#define LOG_PI_2 0.45158270528945486473 /* log(π/2) */
#define CLAMP 1.1920928955078125e-07    /* torch.finfo(torch.float).eps, torchgfn's CLAMP */
#define K_MAX 64                        /* mixture components */

/* ---- elementary functions ------------------------------------------------------------------ */

/* atan: |x| > 1 → π/2 − atan(1/x); two halvings atan x = 2 atan(x / (1 + √(1 + x²))) bring |x| to
 * ≤ tan(π/16) < 0.2; then the odd Taylor series to x^33 (truncation < 0.2^34/35 ≈ 5e-26). */
double fr_box_atan(double x)
{
    if (x != x) return x;
    if (x < 0.0) return -fr_box_atan(-x);
    if (x > 1.0) return 0.5 * PI_D - fr_box_atan(1.0 / x);
    for (int k = 0; k < 2; k++) x = x / (1.0 + sqrt(1.0 + x * x));
    const double x2 = x * x;
    double p = 1.0 / 33.0;
    for (int n = 31; n >= 1; n -= 2) p = p * -x2 + 1.0 / (double)n;
    return 4.0 * x * p;
}

/* acos x = 2 atan √((1 − x)/(1 + x)), x clamped to [−1, 1]. */
double fr_box_acos(double x)
{
    if (x >= 1.0) return 0.0;
    if (x <= -1.0) return PI_D;
    return 2.0 * fr_box_atan(sqrt((1.0 - x) / (1.0 + x)));
}

/* ln Γ(x), x > 0: Lanczos (g = 7, 9 terms; relative error ~1e-15) for x ≥ ½, ln Γ(x + 1) − ln x
 * below. */
double fr_box_lgamma(double x)
{
    static const double c[9] = {0.99999999999980993,  676.5203681218851,    -1259.1392167224028,
                                771.32342877765313,   -176.61502916214059,  12.507343278686905,
                                -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7};
    if (x < 0.5) return fr_box_lgamma(x + 1.0) - fr_awm_log(x);
    x -= 1.0;
    double a = c[0];
    for (int i = 1; i < 9; i++) a += c[i] / (x + (double)i);
    const double t = x + 7.5;
    return 0.91893853320467274178 + (x + 0.5) * fr_awm_log(t) - t + fr_awm_log(a);
}

/* ψ(x), x > 0: ψ(x) = ψ(x + 1) − 1/x up to x ≥ 10, then the asymptotic series to x^−10
 * (truncation < 691/(32760 x¹²) = 2e-14). */
double fr_box_digamma(double x)
{
    double r = 0.0;
    while (x < 10.0) {
        r -= 1.0 / x;
        x += 1.0;
    }
    const double f = 1.0 / (x * x);
    const double t = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 + f * (-1.0 / 132)))));
    return r + fr_awm_log(x) - 0.5 / x + t;
}

static double sigmoid(double z)
{
    if (z >= 0.0) return 1.0 / (1.0 + fr_awm_exp(-z));
    const double e = fr_awm_exp(z);
    return e / (1.0 + e);
}

/* log(1 + e^z), stable */
static double softplus(double z) { return (z > 0.0 ? z : 0.0) + fr_awm_log(1.0 + fr_awm_exp(-fabs(z))); }

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* ---- mixtures of Betas --------------------------------------------------------------------- */

static void concentrations(const fr_box_mix *m, int k, double *a, double *b, double *da, double *db)
{
    const double sa = sigmoid(m->ra[k]), sb = sigmoid(m->rb[k]), w = m->cmax - m->cmin;
    *a = m->cmin + w * sa;
    *b = m->cmin + w * sb;
    *da = w * sa * (1.0 - sa); /* dα / d ra */
    *db = w * sb * (1.0 - sb);
}

/* log Σ_k softmax(logit)_k Beta(u; α_k, β_k) (torch MixtureSameFamily(Categorical(logits),
 * Beta(α, β)).log_prob), and += w · its gradient in logit, ra, rb (gl, ga, gb may be NULL). */
static double mix_logpdf(const fr_box_mix *m, double u, double w, double *gl, double *ga, double *gb)
{
    const int K = m->K;
    double lmax = m->logit[0];
    for (int k = 1; k < K; k++) lmax = m->logit[k] > lmax ? m->logit[k] : lmax;
    double se = 0.0;
    for (int k = 0; k < K; k++) se += fr_awm_exp(m->logit[k] - lmax);
    const double lse = lmax + fr_awm_log(se), lu = fr_awm_log(u), l1u = fr_awm_log(1.0 - u);
    double t[K_MAX], tmax = -INFINITY;
    for (int k = 0; k < K; k++) {
        double a, b, da, db;
        concentrations(m, k, &a, &b, &da, &db);
        t[k] = (m->logit[k] - lse) + (a - 1.0) * lu + (b - 1.0) * l1u -
               (fr_box_lgamma(a) + fr_box_lgamma(b) - fr_box_lgamma(a + b));
        tmax = t[k] > tmax ? t[k] : tmax;
    }
    double st = 0.0;
    for (int k = 0; k < K; k++) st += fr_awm_exp(t[k] - tmax);
    const double L = tmax + fr_awm_log(st);
    if (!gl) return L;
    for (int k = 0; k < K; k++) {
        double a, b, da, db;
        concentrations(m, k, &a, &b, &da, &db);
        const double r = fr_awm_exp(t[k] - L), sm = fr_awm_exp(m->logit[k] - lse), pab = fr_box_digamma(a + b);
        gl[k] += w * (r - sm);
        ga[k] += w * r * (lu - fr_box_digamma(a) + pab) * da;
        gb[k] += w * r * (l1u - fr_box_digamma(b) + pab) * db;
    }
    return L;
}

double fr_box_mix_logpdf(const fr_box_mix *m, double u, double w, double *g)
{
    return mix_logpdf(m, u, w, g, g ? g + m->K : NULL, g ? g + 2 * m->K : NULL);
}

void fr_box_angles(double delta, int ne, const double *s, double *amin, double *amax)
{
    if (ne) {
        *amin = s[0] <= 1.0 - delta ? 0.0 : (2.0 / PI_D) * fr_box_acos((1.0 - s[0]) / delta);
        *amax = s[1] <= 1.0 - delta ? 1.0 : 1.0 - (2.0 / PI_D) * fr_box_acos((1.0 - s[1]) / delta); /* asin = π/2 − acos */
    } else {
        *amin = s[0] >= delta ? 0.0 : (2.0 / PI_D) * fr_box_acos(s[0] / delta);
        *amax = s[1] >= delta ? 1.0 : 1.0 - (2.0 / PI_D) * fr_box_acos(s[1] / delta);
    }
}

/* The angle fraction u of action a in [amin, amax] as QuarterCircle.log_prob computes it: a
 * clamped to [0, δ], θ = acos(a_x/δ)/(π/2), u = (θ − amin)/clamp(amax − amin, CLAMP, 1 − CLAMP). */
static double angle_u(double delta, const double *a, double amin, double amax)
{
    const double th = fr_box_acos(clampd(a[0], 0.0, delta) / delta) / (0.5 * PI_D);
    return (th - amin) / clampd(amax - amin, CLAMP, 1.0 - CLAMP);
}

static int is_s0(const double *s) { return s[0] == 0.0 && s[1] == 0.0; }

fr_status fr_box_log_pf(const fr_box_opts *o, const fr_box_policy *p, const double *s, const double *a, int is_exit,
                        const double *out, double w, double *g, double *logp)
{
    const double ld = fr_awm_log(o->delta);
    double lp;
    if (is_s0(s)) { /* QuarterDisk: r and θ, two mixtures with one set of logits; no exit */
        const int K = p->K0;
        if (is_exit) return fr_fail(FR_ERR_ARG, "box: the exit is not an action of s0");
        const double nr = sqrt(a[0] * a[0] + a[1] * a[1]) / o->delta;
        const double r = clampd(nr, CLAMP, 1.0 - CLAMP);
        const double th = clampd(fr_box_acos(a[0] / (r * o->delta)) / (0.5 * PI_D), CLAMP, 1.0 - CLAMP);
        const fr_box_mix mt = {K, out, out + K, out + 2 * K, p->cmin, p->cmax};
        const fr_box_mix mr = {K, out, out + 3 * K, out + 4 * K, p->cmin, p->cmax};
        lp = mix_logpdf(&mr, r, w, g, g ? g + 3 * K : NULL, g ? g + 4 * K : NULL) +
             mix_logpdf(&mt, th, w, g, g ? g + K : NULL, g ? g + 2 * K : NULL) - ld - LOG_PI_2 - fr_awm_log(r * o->delta);
    } else if (fr_box_must_exit(o, s)) { /* QuarterCircleWithExit: probability 1 */
        if (!is_exit) return fr_fail(FR_ERR_ARG, "box: a step from (%g, %g), where the exit is forced", s[0], s[1]);
        lp = 0.0;
    } else if (is_exit) { /* log σ(z) */
        lp = -softplus(-out[0]);
        if (g) g[0] += w * (1.0 - sigmoid(out[0]));
    } else {
        const int K = p->K;
        double amin, amax;
        fr_box_angles(o->delta, 1, s, &amin, &amax);
        double u = angle_u(o->delta, a, amin, amax);
        u = clampd(u != u ? 0.5 : u, CLAMP, 1.0 - CLAMP);
        const fr_box_mix m = {K, out + 1, out + 1 + K, out + 1 + 2 * K, p->cmin, p->cmax};
        lp = -softplus(out[0]) + fr_box_mix_logpdf(&m, u, w, g ? g + 1 : NULL) - ld - LOG_PI_2 -
             fr_awm_log(amax - amin > CLAMP ? amax - amin : CLAMP);
        if (g) g[0] -= w * sigmoid(out[0]);
    }
    if (!isfinite(lp)) return fr_fail(FR_ERR_NUMERIC, "box: log P_F of (%g, %g) at (%g, %g) is %g", a[0], a[1], s[0], s[1], lp);
    *logp = lp;
    return FR_OK;
}

fr_status fr_box_log_pb(const fr_box_opts *o, const fr_box_policy *p, const double *sn, const double *a,
                        const double *out, double w, double *g, double *logp)
{
    if (sqrt(sn[0] * sn[0] + sn[1] * sn[1]) <= o->delta) { /* the only parent is s0 */
        *logp = 0.0;
        return FR_OK;
    }
    double amin, amax;
    fr_box_angles(o->delta, 0, sn, &amin, &amax);
    double u = clampd(angle_u(o->delta, a, amin, amax), 1e-4, 1.0 - 1e-4); /* the south-western clamp */
    u = clampd(u != u ? 0.5 : u, CLAMP, 1.0 - CLAMP);
    double lm = 0.0; /* BoxPBUniform: one Beta(1, 1), density 1 */
    if (out) {
        const fr_box_mix m = {p->K, out, out + p->K, out + 2 * p->K, p->cmin, p->cmax};
        lm = fr_box_mix_logpdf(&m, u, 0.0, NULL);
        if (lm < 100.0 && g) fr_box_mix_logpdf(&m, u, w, g); /* clamp_max(100) passes no gradient */
        if (lm > 100.0) lm = 100.0;
    }
    *logp = lm - fr_awm_log(o->delta) - LOG_PI_2 - fr_awm_log(amax - amin > CLAMP ? amax - amin : CLAMP);
    if (!isfinite(*logp)) return fr_fail(FR_ERR_NUMERIC, "box: log P_B of (%g, %g) at (%g, %g) is not finite", a[0], a[1], sn[0], sn[1]);
    return FR_OK;
}

/* ---- draws ---------------------------------------------------------------------------------- */

typedef struct {
    uint32_t seed, purpose, c0, c1, c2, k;
} stream;

/* a uniform in (0, 1) of 53 bits */
static double next_u(stream *r)
{
    const uint32_t hi = fr_rng_u32(r->seed, r->purpose, r->c0, r->c1, r->c2, r->k) >> 5;
    const uint32_t lo = fr_rng_u32(r->seed, r->purpose, r->c0, r->c1, r->c2, r->k + 1) >> 6;
    r->k += 2;
    return ((double)hi * 67108864.0 + (double)lo + 0.5) / 9007199254740992.0;
}

static double next_normal(stream *r)
{
    const double u1 = next_u(r), u2 = next_u(r);
    double sn, cs;
    fr_ctl_sincos(2.0 * PI_D * u2, &sn, &cs);
    return sqrt(-2.0 * fr_awm_log(u1)) * cs;
}

/* Gamma(a, 1): Marsaglia–Tsang (a ≥ 1), Gamma(a + 1)·U^{1/a} below. */
static fr_status gamma_draw(stream *r, double a, double *x)
{
    double boost = 1.0;
    if (a < 1.0) {
        boost = fr_awm_pow(next_u(r), 1.0 / a);
        a += 1.0;
    }
    const double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (int tries = 0; tries < 1000; tries++) {
        const double z = next_normal(r), v1 = 1.0 + c * z;
        if (v1 <= 0.0) continue;
        const double v = v1 * v1 * v1, u = next_u(r);
        if (fr_awm_log(u) < 0.5 * z * z + d - d * v + d * fr_awm_log(v)) {
            *x = d * v * boost;
            return FR_OK;
        }
    }
    return fr_fail(FR_ERR_NUMERIC, "box: no Gamma(%g) draw in 1000 tries", a);
}

fr_status fr_box_gamma_draw(uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t *k, double a,
                            double *x)
{
    stream r = {seed, purpose, c0, c1, c2, *k};
    const fr_status s = gamma_draw(&r, a, x);
    *k = r.k;
    return s;
}

/* A draw of the mixture: the component by its softmax, then Beta = X / (X + Y), clamped to
 * [CLAMP, 1 − CLAMP] (so that its log-density is finite). */
static fr_status mix_draw(stream *r, const fr_box_mix *m, double *u)
{
    double lmax = m->logit[0], cum = 0.0, tot = 0.0;
    for (int k = 1; k < m->K; k++) lmax = m->logit[k] > lmax ? m->logit[k] : lmax;
    for (int k = 0; k < m->K; k++) tot += fr_awm_exp(m->logit[k] - lmax);
    const double v = next_u(r) * tot;
    int k = 0;
    for (; k < m->K - 1; k++) {
        cum += fr_awm_exp(m->logit[k] - lmax);
        if (v < cum) break;
    }
    double a, b, da, db, x, y;
    concentrations(m, k, &a, &b, &da, &db);
    FR_TRY(gamma_draw(r, a, &x));
    FR_TRY(gamma_draw(r, b, &y));
    const double q = x / (x + y);
    *u = clampd(q != q ? 0.5 : q, CLAMP, 1.0 - CLAMP);
    return FR_OK;
}

fr_status fr_box_sample_pf(const fr_box_opts *o, const fr_box_policy *p, const double *s, const double *out,
                           uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1, uint32_t c2, double *a,
                           int *is_exit)
{
    stream r = {seed, purpose, c0, c1, c2, 0};
    double sn, cs;
    *is_exit = 0;
    if (is_s0(s)) {
        const int K = p->K0;
        const fr_box_mix mr = {K, out, out + 3 * K, out + 4 * K, p->cmin, p->cmax};
        const fr_box_mix mt = {K, out, out + K, out + 2 * K, p->cmin, p->cmax};
        double rr, th;
        FR_TRY(mix_draw(&r, &mr, &rr));
        FR_TRY(mix_draw(&r, &mt, &th));
        fr_ctl_sincos(0.5 * PI_D * th, &sn, &cs);
        a[0] = o->delta * rr * cs;
        a[1] = o->delta * rr * sn;
        return FR_OK;
    }
    if (fr_box_must_exit(o, s) || next_u(&r) < sigmoid(out[0])) {
        *is_exit = 1;
        a[0] = a[1] = -INFINITY;
        return FR_OK;
    }
    double amin, amax, u;
    fr_box_angles(o->delta, 1, s, &amin, &amax);
    const fr_box_mix m = {p->K, out + 1, out + 1 + p->K, out + 1 + 2 * p->K, p->cmin, p->cmax};
    FR_TRY(mix_draw(&r, &m, &u));
    fr_ctl_sincos(0.5 * PI_D * (amin + (amax - amin) * u), &sn, &cs);
    a[0] = cs < 0.0 ? 0.0 : o->delta * cs;
    a[1] = sn < 0.0 ? 0.0 : o->delta * sn;
    return FR_OK;
}
