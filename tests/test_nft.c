/* DiffusionNFT (core/nft.c, flowrl/nft.h; docs/algorithms/nft.md): the check identity of
 * objectives §11 (at θ = θ_old the gradient is the advantage-weighted flow-matching
 * gradient), the gradient against finite differences with the adaptive weights held
 * (stopgrad), the reward weight of every adv_mode and the old policy's decay at the spec's
 * values, the per-sample times, and every backend built in against ref bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/awm_elem.h"
#include "flowrl/nft.h"
#include "flowrl/philox.h"
#include "flowrl/schedule.h"
#include "core/algo/nft.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define REF fr_test_ref_be()

enum { NJ = 3, NB = 4, ND = 13, NR = NJ * NB };

typedef struct {
    float t[NR], x0[NB * ND], eps[NR * ND], xt[NR * ND], v[NR * ND], v_old[NR * ND], v_ref[NR * ND], adv[NB];
} batch;

/* x0, times and noise as a run forms them (fr_nft_times on a 10-step grid, fr_nft_noise);
 * v near the velocity target; v_old = v (θ = θ_old) unless dold != 0. */
static void make_batch(batch *m, uint32_t seed, float dold)
{
    uint32_t ids[NB] = {7, 0, 3, 12};
    float sig[11];
    ck_assert_int_eq(fr_sigmas_diffusers(10, FR_DEFAULT_SHIFT, sig), FR_OK);
    fr_rng_fill_normal(m->x0, NB * ND, seed, FR_RNG_TEST, 0, 0, 0);
    ck_assert_int_eq(fr_nft_times(seed, 2, ids, NB, 10, NJ, sig, m->t), FR_OK);
    ck_assert_int_eq(fr_nft_noise(REF, seed, 2, ids, NJ, NB, ND, m->x0, m->t, m->eps, m->xt), FR_OK);
    float n1[NR * ND], n2[NR * ND];
    fr_rng_fill_normal(n1, NR * ND, seed, FR_RNG_TEST, 1, 0, 0);
    fr_rng_fill_normal(n2, NR * ND, seed, FR_RNG_TEST, 2, 0, 0);
    for (int r = 0; r < NR; r++)
        for (int i = 0; i < ND; i++) {
            int j = r * ND + i;
            m->v[j] = (m->eps[j] - m->x0[(r % NB) * ND + i]) + 0.3f * n1[j];
            m->v_old[j] = m->v[j] + dold * n2[j];
            m->v_ref[j] = m->v[j] + 0.1f * n2[j];
        }
}

static fr_nft_params params(double beta, double kl)
{
    fr_nft_params p = fr_nft_defaults();
    p.beta = beta;
    p.kl_beta = kl;
    return p;
}

/* The advantage-weighted flow-matching gradient of §11's check, written on its own: per
 * row, x̂0 − x0 = (x_t − t·v) − x0 (= −t·(v − v*)), w = max(1e-5, mean |x̂0 − x0|) and
 * g = (float)(s·(x̂0 − x0)), s = −(((gout·clamp(A, ±5))·t)·(2/(R·D)))/w: the gradient of
 * gout·mean_r clamp(A)·t²·mean_i (v − v*)²/w w.r.t. v. */
static void awfm_grad(const batch *m, double gout, float *g)
{
    for (int r = 0; r < NR; r++) {
        const float *x0 = m->x0 + (r % NB) * ND;
        float d[ND];
        fr_awm_lanes acc;
        fr_awm_lanes_zero(&acc);
        for (int i = 0; i < ND; i++) {
            d[i] = (m->xt[r * ND + i] - m->t[r] * m->v[r * ND + i]) - x0[i];
            fr_awm_lanes_add(&acc, i, fabs((double)d[i]));
        }
        double w = fr_awm_lanes_sum(&acc) / (double)ND;
        w = w < 1e-5 ? 1e-5 : w;
        double a = m->adv[r % NB], s;
        a = a < -5.0 ? -5.0 : (a > 5.0 ? 5.0 : a);
        s = -(((gout * a) * (double)m->t[r]) * (2.0 / (double)(NR * ND))) / w;
        for (int i = 0; i < ND; i++) g[r * ND + i] = (float)(s * (double)d[i]);
    }
}

/* At θ = θ_old with β = 1 (v⁺ = v⁻ = v exactly) and r ∈ {0, ½, 1} (A <= −5, A = 0, A >= 5),
 * the NFT gradient equals the advantage-weighted flow-matching gradient exactly (as
 * numbers: at r = ½ both are zeros, of either sign). */
START_TEST(test_identity_exact)
{
    static const float advs[][NB] = {{-7.0f, 0.0f, 6.5f, 5.0f}, {-5.0f, -5.0f, 0.0f, 9.0f}};
    for (uint32_t seed = 1; seed <= 4; seed++)
        for (int k = 0; k < 2; k++) {
            batch m;
            make_batch(&m, seed, 0.0f);
            memcpy(m.adv, advs[k], sizeof m.adv);
            fr_nft_params p = params(1.0, 0.0);
            float g[NR * ND], want[NR * ND];
            double r[NB];
            fr_nft_stats st;
            ck_assert_int_eq(fr_nft_loss(REF, &p, NJ, NB, ND, m.t, m.t, m.x0, m.xt, m.v, m.v_old, NULL, m.adv, 0.5, g, r, &st),
                             FR_OK);
            for (int b = 0; b < NB; b++) ck_assert(r[b] == 0.0 || r[b] == 0.5 || r[b] == 1.0);
            awfm_grad(&m, 0.5, want);
            int nonzero = 0;
            for (int j = 0; j < NR * ND; j++) {
                ck_assert_msg(g[j] == want[j], "seed %u set %d elem %d: nft %a, awfm %a", seed, k, j, (double)g[j],
                              (double)want[j]);
                nonzero += g[j] != 0.0f;
            }
            ck_assert_int_gt(nonzero, NR * ND / 2); /* not a vacuous zero */
            /* the positive and negative losses coincide at θ = θ_old */
            ck_assert(st.pos_loss == st.neg_loss);
        }
}
END_TEST

/* Any other r: within 1 ulp of float32 per element at β = 1 (r = (a/5)/2 + 0.5 is rounded
 * in float64, so cp + cn = −(2r − 1)·(...) carries a float64 rounding the direct form does
 * not). With β ≠ 1, v± = β·v + (1 − β)·v and (1 + β)·v − β·v are not v in float32: the
 * two branches' x̂0 errors differ by float32 roundings, and r·L⁺ and (1 − r)·L⁻ cancel as
 * r → ½; the bound there is 2⁻¹⁶ of the row's largest element of one branch alone (the
 * gradient at |A| = 5). */
START_TEST(test_identity_ulp_bound)
{
    int64_t worst1 = 0;
    double worst01 = 0.0;
    for (uint32_t seed = 1; seed <= 8; seed++) {
        batch m;
        make_batch(&m, seed, 0.0f);
        float g[NR * ND], want[NR * ND], branch[NR * ND];
        for (int b = 0; b < NB; b++) m.adv[b] = 5.0f;
        awfm_grad(&m, 1.0, branch);
        for (int b = 0; b < NB; b++) m.adv[b] = 2.0f * fr_rng_normal(seed, FR_RNG_TEST, 9, 0, 0, (uint32_t)b);
        fr_nft_stats st;
        awfm_grad(&m, 1.0, want);
        fr_nft_params p = params(1.0, 0.0);
        ck_assert_int_eq(fr_nft_loss(REF, &p, NJ, NB, ND, m.t, m.t, m.x0, m.xt, m.v, m.v_old, NULL, m.adv, 1.0, g, NULL, &st),
                         FR_OK);
        for (int j = 0; j < NR * ND; j++) {
            int64_t u = fr_test_ulps(g[j], want[j]);
            worst1 = u > worst1 ? u : worst1;
        }
        p = params(0.1, 0.0);
        ck_assert_int_eq(fr_nft_loss(REF, &p, NJ, NB, ND, m.t, m.t, m.x0, m.xt, m.v, m.v_old, NULL, m.adv, 1.0, g, NULL, &st),
                         FR_OK);
        for (int r = 0; r < NR; r++) {
            double mx = 0.0;
            for (int i = 0; i < ND; i++) mx = fmax(mx, fabs((double)branch[r * ND + i]));
            for (int i = 0; i < ND; i++) {
                double e = fabs((double)g[r * ND + i] - (double)want[r * ND + i]) / mx;
                worst01 = e > worst01 ? e : worst01;
            }
        }
    }
    ck_assert_msg(worst1 <= 1, "beta 1: %lld ulp, bound 1", (long long)worst1);
    ck_assert_msg(worst01 <= 0x1p-16, "beta 0.1: %g of one branch, bound 2^-16", worst01);
}
END_TEST

/* The loss of §11 in double from float32 v, with the adaptive weights w± held (stopgrad). */
static double loss_held(const batch *m, const fr_nft_params *p, const float *v, const double *wp, const double *wn)
{
    fr_nft_coef c = fr_nft_coef_of(p->beta);
    double tot = 0.0, kl = 0.0;
    for (int r = 0; r < NR; r++) {
        double lp = 0.0, ln = 0.0, k = 0.0;
        for (int i = 0; i < ND; i++) {
            int j = r * ND + i;
            double x0 = m->x0[(r % NB) * ND + i], t = m->t[r];
            double vp = c.b * (double)v[j] + c.omb * (double)m->v_old[j];
            double vn = c.opb * (double)m->v_old[j] - c.b * (double)v[j];
            double dp = (m->xt[j] - t * vp) - x0, dn = (m->xt[j] - t * vn) - x0, dk = (double)v[j] - m->v_ref[j];
            lp += dp * dp / wp[r];
            ln += dn * dn / wn[r];
            k += dk * dk;
        }
        double rr = fr_nft_r(p->adv_mode, p->adv_clip_max, m->adv[r % NB]);
        tot += (rr * (lp / ND) / p->beta + (1.0 - rr) * (ln / ND) / p->beta) * p->adv_clip_max;
        kl += k / ND;
    }
    return tot / NR + p->kl_beta * kl / NR;
}

/* Away from θ_old (β 0.3, KL on): the gradient against central differences of the loss with
 * w± held, and the loss against its double evaluation. */
START_TEST(test_gradient_finite_differences)
{
    batch m;
    make_batch(&m, 21, 0.2f);
    for (int b = 0; b < NB; b++) m.adv[b] = 2.0f * fr_rng_normal(21, FR_RNG_TEST, 9, 0, 0, (uint32_t)b);
    fr_nft_params p = params(0.3, 0.05);
    float g[NR * ND];
    fr_nft_stats st;
    ck_assert_int_eq(fr_nft_loss(REF, &p, NJ, NB, ND, m.t, m.t, m.x0, m.xt, m.v, m.v_old, m.v_ref, m.adv, 1.0, g, NULL, &st),
                     FR_OK);
    double rows[4 * NR];
    REF->ops->nft_rows(NR, NB, ND, fr_nft_coef_of(p.beta), m.t, m.xt, m.v, m.v_old, m.x0, rows);
    ck_assert(st.pos_loss != st.neg_loss && st.kl > 0.0);
    double l0 = loss_held(&m, &p, m.v, rows, rows + NR);
    ck_assert_double_eq_tol(st.loss, l0, 1e-5 * fabs(l0));
    float v[NR * ND];
    for (int j = 0; j < NR * ND; j += 7) {
        memcpy(v, m.v, sizeof v);
        const float h = 1e-2f;
        v[j] = m.v[j] + h;
        double up = loss_held(&m, &p, v, rows, rows + NR);
        v[j] = m.v[j] - h;
        double dn = loss_held(&m, &p, v, rows, rows + NR);
        double fd = (up - dn) / ((double)(m.v[j] + h) - (double)(m.v[j] - h));
        ck_assert_msg(fabs(fd - g[j]) <= 1e-3 * fabs(fd) + 1e-7, "elem %d: fd %g, grad %g", j, fd, (double)g[j]);
    }
}
END_TEST

/* The reward weight of each adv_mode (objectives §11 "Verified": one_only {0.6, 0.5}, binary
 * {0.6, 0.5, 0.4}, positive_only [0.5, 1], negative_only [0, 0.5]) and the decay types. */
START_TEST(test_r_and_decay)
{
    const float as[] = {-9.0f, -2.5f, 0.0f, 1.0f, 7.0f};
    const double all[] = {0.0, 0.25, 0.5, 0.6, 1.0}, pos[] = {0.5, 0.5, 0.5, 0.6, 1.0}, neg[] = {0.0, 0.25, 0.5, 0.5, 0.5},
                 one[] = {0.5, 0.5, 0.5, 0.6, 0.6}, bin[] = {0.4, 0.4, 0.5, 0.6, 0.6};
    for (int i = 0; i < 5; i++) {
        ck_assert(fr_nft_r(FR_NFT_ADV_ALL, 5.0, as[i]) == all[i]);
        ck_assert(fr_nft_r(FR_NFT_ADV_POSITIVE_ONLY, 5.0, as[i]) == pos[i]);
        ck_assert(fr_nft_r(FR_NFT_ADV_NEGATIVE_ONLY, 5.0, as[i]) == neg[i]);
        ck_assert(fr_nft_r(FR_NFT_ADV_ONE_ONLY, 5.0, as[i]) == one[i]);
        ck_assert(fr_nft_r(FR_NFT_ADV_BINARY, 5.0, as[i]) == bin[i]);
    }
    ck_assert(fr_nft_decay(0, 0) == 0.0 && fr_nft_decay(0, 1000) == 0.0);
    ck_assert(fr_nft_decay(1, 0) == 0.0 && fr_nft_decay(1, 100) == 100 * 0.001 && fr_nft_decay(1, 501) == 0.5);
    ck_assert(fr_nft_decay(2, 74) == 0.0 && fr_nft_decay(2, 75) == 0.0 && fr_nft_decay(2, 85) == 10 * 0.0075);
    ck_assert(fr_nft_decay(2, 100000) == 0.999);
}
END_TEST

/* Each sample's J times are J distinct points of the grid, they depend on the sample id only
 * (not on the batch position), and two samples get different orders. */
START_TEST(test_times_per_sample)
{
    float sig[11], t1[9 * 3], t2[9 * 2];
    ck_assert_int_eq(fr_sigmas_diffusers(10, FR_DEFAULT_SHIFT, sig), FR_OK);
    uint32_t ids[3] = {5, 9, 2}, ids2[2] = {2, 5};
    ck_assert_int_eq(fr_nft_times(3, 1, ids, 3, 10, 9, sig, t1), FR_OK);
    ck_assert_int_eq(fr_nft_times(3, 1, ids2, 2, 10, 9, sig, t2), FR_OK);
    int differ = 0;
    for (int j = 0; j < 9; j++) {
        ck_assert(fr_test_bits_equal(t1[j * 3 + 2], t2[j * 2 + 0]) && fr_test_bits_equal(t1[j * 3 + 0], t2[j * 2 + 1]));
        differ += t1[j * 3] != t1[j * 3 + 1];
        for (int b = 0; b < 3; b++) {
            int on_grid = 0;
            for (int k = 0; k < 10; k++) on_grid += fr_test_bits_equal(t1[j * 3 + b], (sig[k] * 1000.0f) / 1000.0f);
            ck_assert(on_grid == 1);
            for (int j2 = 0; j2 < j; j2++) ck_assert(t1[j2 * 3 + b] != t1[j * 3 + b]);
        }
    }
    ck_assert_int_gt(differ, 0);
    ck_assert_int_ne(fr_nft_times(3, 1, ids, 3, 10, 11, sig, t1), FR_OK); /* J > T */
}
END_TEST

/* ---- every backend = ref ------------------------------------------------------------------- */

typedef struct {
    float eps[NR * ND], xt[NR * ND], grad[NR * ND];
    double r[NB];
    fr_nft_stats st;
} dev_out;

static void *up(fr_backend *be, const void *h, size_t n)
{
    void *d = fr_dev_alloc(be, n);
    ck_assert_msg(d != NULL, "%s: %s", be->name, fr_last_error());
    ck_assert_int_eq(fr_h2d(be, d, h, n), FR_OK);
    return d;
}

/* fr_nft_noise, then fr_nft_loss away from θ_old with the KL term, on one backend. */
static void dev_run(fr_backend *be, dev_out *o)
{
    batch m;
    make_batch(&m, 33, 0.2f);
    for (int b = 0; b < NB; b++) m.adv[b] = 2.0f * fr_rng_normal(33, FR_RNG_TEST, 9, 0, 0, (uint32_t)b);
    uint32_t ids[NB] = {7, 0, 3, 12};
    float *d_x0 = up(be, m.x0, sizeof m.x0), *d_t = up(be, m.t, sizeof m.t), *d_eps = up(be, m.eps, sizeof m.eps),
          *d_xt = up(be, m.xt, sizeof m.xt);
    uint32_t *d_ids = up(be, ids, sizeof ids);
    ck_assert_int_eq(fr_nft_noise(be, 33, 2, d_ids, NJ, NB, ND, d_x0, d_t, d_eps, d_xt), FR_OK);
    ck_assert_int_eq(fr_d2h(be, o->eps, d_eps, sizeof o->eps), FR_OK);
    ck_assert_int_eq(fr_d2h(be, o->xt, d_xt, sizeof o->xt), FR_OK);
    float *d_v = up(be, m.v, sizeof m.v), *d_vo = up(be, m.v_old, sizeof m.v_old), *d_vr = up(be, m.v_ref, sizeof m.v_ref),
          *d_g = up(be, m.v, sizeof m.v);
    fr_nft_params p = params(0.3, 0.05);
    ck_assert_int_eq(fr_nft_loss(be, &p, NJ, NB, ND, m.t, d_t, d_x0, d_xt, d_v, d_vo, d_vr, m.adv, 0.5, d_g, o->r, &o->st),
                     FR_OK);
    ck_assert_int_eq(fr_d2h(be, o->grad, d_g, sizeof o->grad), FR_OK);
    void *d[] = {d_x0, d_t, d_eps, d_xt, d_ids, d_v, d_vo, d_vr, d_g};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) fr_dev_free(be, d[i]);
}

START_TEST(test_backends_equal_ref)
{
    static dev_out want, got;
    memset(&want, 0, sizeof want);
    dev_run(REF, &want);
    ck_assert(isfinite(want.st.loss) && want.st.kl > 0.0);
    int n_dev = 0;
    for (const char *const *name = fr_backend_names(); *name; name++) {
        fr_backend be;
        if (!fr_test_backend_try(&be, "nft", *name, 2)) continue;
        n_dev += be.device;
        memset(&got, 0xA5, sizeof got);
        dev_run(&be, &got);
        ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "%s: fr_nft_noise / fr_nft_loss differ from ref", *name);
        fr_backend_close(&be);
    }
    ck_assert_msg(n_dev >= 1, "no device backend (cuda-emu is always built) was checked");
}
END_TEST

/* ---- against the public code in torch ----------------------------------------------------- */

/* tests/torch/nft_ref.py on batch m: the J per-time losses and the gradient w.r.t. v. */
static void run_torch(const batch *m, double beta, double kl_beta, double ga, double *loss_j, float *grad)
{
    const char *py = fr_test_torch_python();
    ck_assert_msg(py != NULL, "nft: no python3 imports torch ($FLOWRL_PYTHON, /usr/bin/python3, python3); "
                              "./configure --install-deps installs python3-torch");
    char in[] = "/tmp/flowrl_nft_in_XXXXXX", out[] = "/tmp/flowrl_nft_out_XXXXXX";
    int fi = mkstemp(in), fo = mkstemp(out);
    ck_assert(fi >= 0 && fo >= 0);
    close(fo);
    FILE *f = fdopen(fi, "wb");
    ck_assert_ptr_nonnull(f);
    int64_t dims[3] = {NJ, NB, ND};
    double sc[4] = {beta, 5.0, kl_beta, ga}, adv[NB];
    for (int b = 0; b < NB; b++) adv[b] = m->adv[b];
    fwrite(dims, sizeof dims, 1, f);
    fwrite(sc, sizeof sc, 1, f);
    fwrite(m->t, sizeof m->t, 1, f);
    fwrite(m->x0, sizeof m->x0, 1, f);
    fwrite(m->xt, sizeof m->xt, 1, f);
    fwrite(m->v, sizeof m->v, 1, f);
    fwrite(m->v_old, sizeof m->v_old, 1, f);
    fwrite(m->v_ref, sizeof m->v_ref, 1, f);
    fwrite(adv, sizeof adv, 1, f);
    ck_assert_int_eq(fclose(f), 0);
    char cmd[2048], msg[4096];
    snprintf(cmd, sizeof cmd, "%s %s/tests/torch/nft_ref.py --in %s --out %s 2>&1", py, fr_test_src(), in, out);
    int rc = fr_test_run_sh(cmd, msg, sizeof msg);
    unlink(in);
    ck_assert_msg(rc == 0, "nft: `%s` exited %d:\n%s", cmd, rc, msg);
    f = fopen(out, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n1 = fread(loss_j, sizeof(double), NJ, f), n2 = fread(grad, sizeof(float), NR * ND, f);
    int extra = fgetc(f);
    fclose(f);
    unlink(out);
    ck_assert_msg(n1 == NJ && n2 == NR * ND && extra == EOF, "nft: %s is not J losses and the gradient", out);
}

/* fr_nft_loss against the public code's loop in torch (float32 velocities, float64
 * advantages and weights, autograd through x̂0, v± and the β products; one backward per time
 * divided by grad_accum·J) away from θ_old, β 1, 0.3, 0.1, KL on: the loss (mean over the J
 * times) within 1e-6 relative (torch's KL is a float32 mean, flowrl's float64), the gradient
 * within 2^-20 of its row's largest element, everywhere. Not per element in ulp: torch rounds
 * each branch (r·∂L⁺ and (1 − r)·∂L⁻, of opposite signs) to float32 before their sum,
 * flowrl sums them in float64 and rounds once, so where the branches cancel the two differ by
 * float32 roundings of the branches, not of the sum (measured up to 79 ulp of the sum, at
 * elements below 2% of the row's largest). */
START_TEST(test_against_torch)
{
    const double betas[] = {1.0, 0.3, 0.1};
    double worst = 0.0;
    for (int k = 0; k < 3; k++) {
        batch m;
        make_batch(&m, 40 + (uint32_t)k, 0.2f);
        for (int b = 0; b < NB; b++) m.adv[b] = 3.0f * fr_rng_normal(40, FR_RNG_TEST, 9, 0, (uint32_t)k, (uint32_t)b);
        m.adv[0] = 6.0f; /* beyond the clamp */
        fr_nft_params p = params(betas[k], 0.05);
        float g[NR * ND], want[NR * ND];
        double lj[NJ];
        fr_nft_stats st;
        ck_assert_int_eq(fr_nft_loss(REF, &p, NJ, NB, ND, m.t, m.t, m.x0, m.xt, m.v, m.v_old, m.v_ref, m.adv, 0.5, g, NULL, &st),
                         FR_OK);
        run_torch(&m, betas[k], 0.05, 2.0, lj, want);
        double lt = (lj[0] + lj[1] + lj[2]) / NJ;
        ck_assert_msg(fabs(st.loss - lt) <= 1e-6 * fabs(lt), "beta %g: loss %.17g, torch %.17g", betas[k], st.loss, lt);
        for (int r = 0; r < NR; r++) {
            float mx = 0.0f;
            for (int i = 0; i < ND; i++) mx = fmaxf(mx, fabsf(want[r * ND + i]));
            for (int i = 0; i < ND; i++) {
                double e = fabs((double)g[r * ND + i] - (double)want[r * ND + i]) / (double)mx;
                worst = e > worst ? e : worst;
            }
        }
    }
    ck_assert_msg(worst <= 0x1p-20, "gradient %g of the row's largest from torch's, bound 2^-20", worst);
}
END_TEST

/* ---- on the run loop ------------------------------------------------------------------------ */

/* `--algo nft` learns gmm2d's halfplane reward from a fresh tiny base on each of 3 seeds
 * (mean reward of the last 3 of 20 epochs at least 0.2 above the first epoch's). */
START_TEST(test_nft_learns_halfplane)
{
    for (uint32_t seed = 1; seed <= 3; seed++) {
        char run[32];
        snprintf(run, sizeof run, "nft%u", seed);
        fr_rt_opts o;
        fr_rt_opts_init(&o, &fr_algo_nft, run, 20);
        snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "halfplane");
        o.ro.run.seed = seed;
        o.ro.c.prompts = 4;
        o.ro.c.group = 8;
        o.ro.opt.lr = 1e-2;
        fr_rt_curve c = {NAN, {NAN, NAN, NAN}, 0};
        fr_run_cb cb = {fr_rt_curve_record, NULL, NULL, &c, NULL};
        ck_assert_msg(fr_rt_run(&o, "opt", 2, &cb, NULL) == FR_OK, "seed %u: %s", seed, fr_last_error());
        double last = fr_rt_curve_last3(&c);
        ck_assert_msg(last > c.first + 0.2, "seed %u: halfplane reward %g -> %g (mean of the last 3 epochs), expected > +0.2",
                      seed, c.first, last);
        fr_rt_opts_free(&o);
    }
}
END_TEST

Suite *suite_nft(void)
{
    Suite *s = suite_create("nft");
    TCase *tc = tcase_create("nft");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_identity_exact);
    tcase_add_test(tc, test_identity_ulp_bound);
    tcase_add_test(tc, test_gradient_finite_differences);
    tcase_add_test(tc, test_r_and_decay);
    tcase_add_test(tc, test_times_per_sample);
    tcase_add_test(tc, test_backends_equal_ref);
    tcase_add_test(tc, test_against_torch);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("nft_run");
    tcase_add_checked_fixture(tr, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_nft_learns_halfplane);
    suite_add_tcase(s, tr);
    return s;
}
