/* Suite `fast`: `--backend=opt --fast` (flowrl/fast.h; docs/design.md §1; docs/algorithms/numerics.md
 * §6, §7.3: bitwise against itself, tolerance against ref).
 *  - API: fr_backend_get_mode refuses --fast for ref, gives mode "fast"/"exact", and is
 *    FR_ERR_UNSUPPORTED in a build without OpenBLAS and oneDNN.
 *  - Per-op tolerance against ref, vendor kernels forced (FR_FAST_ALWAYS), at the model's
 *    shapes; each bound is printed with the measured maximum (the table of
 *    docs/determinism.md "--fast: measured tolerance" comes from these lines).
 *  - Run-to-run determinism: each op twice, and a whole model forward + backward twice,
 *    give identical bits at 1 and 2 threads (rule and forced vendor kernels).
 *  - Whole-model tolerance: one forward + backward, and N pretraining steps of gmm2d
 *    (FLOWRL_FAST_STEPS, default 20) fast vs ref: parameters after training.
 * Inputs come from a seeded splitmix generator; FLOWRL_TEST_SEED=<seed> replays. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "flowrl/fast.h"
#include "flowrl/model.h"
#include "flowrl/ops.h"
#include "flowrl/opt.h"
#include "flowrl/pretrain.h"
#include "flowrl/safetensors.h"
#include "tests/testutil.h"

#define U 0x1.0p-24 /* unit roundoff of float32 */

#include "config.h"
#define FR_HAVE_OPENBLAS_TEST FR_HAVE_OPENBLAS
#define FR_HAVE_ONEDNN_TEST dnnl_usable()

/* 1 when oneDNN is built in and usable (its runtime lets flowrl pin the thread count). */
static int dnnl_usable(void)
{
    fr_fast_shape s = {.M = 8, .act = FR_ACT_SILU, .threads = 1};
    fr_fast_policy p = fr_fast_get_policy();
    fr_fast_set_policy(FR_FAST_ALWAYS);
    int r = fr_fast_supports(FR_FAST_ACT_FWD, &s);
    fr_fast_set_policy(p);
    return r;
}

static uint64_t seed0(void)
{
    const char *s = getenv("FLOWRL_TEST_SEED");
    return s ? strtoull(s, NULL, 0) : 0x5eedfa57ull;
}

static const fr_ops *get(const char *name, int fast)
{
    const fr_ops *ops = NULL;
    fr_status st = fr_backend_get_mode(name, fast, &ops);
    ck_assert_msg(st == FR_OK && ops, "fr_backend_get_mode(%s, %d): %s", name, fast,
                  fr_last_error());
    return ops;
}

static float *fvec(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

static void fill(uint64_t *s, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) x[i] = fr_test_uniform(s, lo, hi);
}

/* ---- error statistics ----------------------------------------------------------------- */

/* Max abs error, max relative error and max ulps over elements whose |ref| is at least
 * 1e-3 of the tensor's max |ref| (relative error is meaningless at zero crossings), and
 * the max of |err| / bound (the assertion: ratio <= 1). NaN anywhere fails. */
typedef struct {
    double abs, rel, ratio;
    int64_t ulps;
    int64_t worst; /* index of the max ratio */
} errstat;

static errstat compare(const float *ref, const float *got, const double *bound, int64_t n)
{
    errstat e = {0, 0, 0, 0, -1};
    double amax = 0;
    for (int64_t i = 0; i < n; i++) amax = fmax(amax, fabs((double)ref[i]));
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(!isnan(got[i]) && !isnan(ref[i]), "NaN at %lld", (long long)i);
        double d = fabs((double)got[i] - (double)ref[i]);
        e.abs = fmax(e.abs, d);
        if (fabs((double)ref[i]) >= 1e-3 * amax && ref[i] != 0.0f) {
            e.rel = fmax(e.rel, d / fabs((double)ref[i]));
            int64_t u = fr_test_ulps(ref[i], got[i]);
            if (u > e.ulps) e.ulps = u;
        }
        double r = bound ? d / bound[i] : 0;
        if (bound && (r > e.ratio || (d > 0 && bound[i] == 0))) {
            e.ratio = bound[i] > 0 ? r : INFINITY;
            e.worst = i;
        }
    }
    return e;
}

static void report(const char *op, const char *shape, const char *bound, errstat e)
{
    printf("fast tol | %-16s | %-16s | %.3g | %.3g | %lld | %-34s | %.3f |\n", op, shape, e.abs,
           e.rel, (long long)e.ulps, bound, e.ratio);
}

static void check_ratio(const char *what, errstat e, uint64_t seed)
{
    ck_assert_msg(e.ratio <= 1.0, "%s: error %.3g x its bound at element %lld (seed %#llx)",
                  what, e.ratio, (long long)e.worst, (unsigned long long)seed);
}

/* ---- API -------------------------------------------------------------------------------- */

START_TEST(test_api)
{
    const fr_ops *ops = (const fr_ops *)1;
    ck_assert_int_eq(fr_backend_get_mode("ref", 1, &ops), FR_ERR_ARG);
    ck_assert_ptr_null(ops);
    ck_assert_msg(strstr(fr_last_error(), "ref has no --fast mode"), "%s", fr_last_error());
    ck_assert_int_eq(fr_backend_get_mode("nope", 1, &ops), FR_ERR_ARG);
    ck_assert_str_eq(get("ref", 0)->mode, "exact");
    ck_assert_str_eq(get("opt", 0)->mode, "exact");
    ck_assert_ptr_eq(get("opt", 0), get("opt", 0));
    if (!fr_fast_available()) {
        ck_assert_int_eq(fr_backend_get_mode("opt", 1, &ops), FR_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(fr_last_error(), "OpenBLAS or oneDNN"), "%s", fr_last_error());
        return;
    }
    const fr_ops *f = get("opt", 1);
    ck_assert_str_eq(f->mode, "fast");
    ck_assert_str_eq(f->name, "opt");
    ck_assert_ptr_eq(f, get("opt", 1));
    ck_assert_ptr_ne(f, get("opt", 0));
    char d[512];
    fr_fast_describe(d, sizeof d);
    ck_assert_msg(strstr(d, "threads="), "%s", d);
    printf("fast: %s\n", d);
    /* the rule: canonical for forward GEMMs, vendor for large weight gradients */
    fr_fast_shape s = {.ta = 0, .tb = 1, .M = 64, .N = 256, .K = 768, .threads = 2};
    ck_assert_int_eq(fr_fast_supports(FR_FAST_GEMM, &s), 0);
    fr_fast_set_policy(FR_FAST_ALWAYS);
    ck_assert_int_eq(fr_fast_supports(FR_FAST_GEMM, &s), FR_HAVE_OPENBLAS_TEST);
    fr_fast_set_policy(FR_FAST_NEVER);
    s.ta = 1, s.tb = 0;
    ck_assert_int_eq(fr_fast_supports(FR_FAST_GEMM, &s), 0);
    fr_fast_set_policy(FR_FAST_RULE);
    ck_assert_int_eq(fr_fast_supports(FR_FAST_GEMM, &s), FR_HAVE_OPENBLAS_TEST);
    fr_fast_shape a = {.M = 1000, .act = FR_ACT_RELU, .threads = 1};
    ck_assert_int_eq(fr_fast_supports(FR_FAST_ACT_FWD, &a), 0); /* relu stays canonical */
}
END_TEST

/* With no vendor kernel allowed the fast table computes exactly what opt does. */
START_TEST(test_never_is_opt)
{
    if (!fr_fast_available()) return;
    const fr_ops *f = get("opt", 1), *o = get("opt", 0);
    uint64_t s = seed0();
    int64_t M = 64, N = 96, K = 80;
    float *A = fvec(M * K), *B = fvec(K * N), *c1 = fvec(M * N), *c2 = fvec(M * N);
    fill(&s, A, M * K, -1, 1);
    fill(&s, B, K * N, -1, 1);
    fr_fast_set_policy(FR_FAST_NEVER);
    f->gemm(1, 0, M, N, K, A, B, c1, 0);
    o->gemm(1, 0, M, N, K, A, B, c2, 0);
    f->act_fwd(FR_ACT_GELU_TANH, M * K, A, A);
    o->act_fwd(FR_ACT_GELU_TANH, K * N, B, B);
    fr_fast_set_policy(FR_FAST_RULE);
    ck_assert(memcmp(c1, c2, (size_t)(M * N) * sizeof(float)) == 0);
    free(A), free(B), free(c1), free(c2);
}
END_TEST

/* ---- per-op tolerance against ref --------------------------------------------------------- */

/* gamma_n = n u / (1 - n u) (Higham, Accuracy and Stability, §3.1). */
static double gam(int64_t n) { return (double)n * U / (1.0 - (double)n * U); }

/* GEMM: any order of the K products summed in float32 (with or without FMA) is within
 * gamma_{K+1} (|C0| + sum_k |a_ik||b_kj|) of the exact value, so ref and fast are within
 * twice that of each other (LAPACK's scaled test ratio, docs/algorithms/numerics.md §6.3). */
static void gemm_case(int ta, int tb, int64_t M, int64_t N, int64_t K, int acc, uint64_t seed)
{
    const fr_ops *ref = get("ref", 0), *f = get("opt", 1);
    uint64_t s = seed;
    float *A = fvec(M * K), *B = fvec(K * N), *C0 = fvec(M * N), *cr = fvec(M * N),
          *cf = fvec(M * N);
    double *bound = malloc((size_t)(M * N) * sizeof(double));
    ck_assert_ptr_nonnull(bound);
    fill(&s, A, M * K, -1, 1);
    fill(&s, B, K * N, -1, 1);
    fill(&s, C0, M * N, -4, 4);
    memcpy(cr, C0, (size_t)(M * N) * sizeof(float));
    memcpy(cf, C0, (size_t)(M * N) * sizeof(float));
    ref->gemm(ta, tb, M, N, K, A, B, cr, acc);
    f->gemm(ta, tb, M, N, K, A, B, cf, acc);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double sum = acc ? fabs((double)C0[i * N + j]) : 0;
            for (int64_t k = 0; k < K; k++) {
                double a = ta ? A[k * M + i] : A[i * K + k];
                double b = tb ? B[j * K + k] : B[k * N + j];
                sum += fabs(a * b);
            }
            bound[i * N + j] = 2.0 * gam(K + 1) * sum;
        }
    errstat e = compare(cr, cf, bound, M * N);
    char shape[64], what[96];
    snprintf(shape, sizeof shape, "%s%s %lldx%lldx%lld%s", ta ? "T" : "N", tb ? "T" : "N",
             (long long)M, (long long)N, (long long)K, acc ? "+" : "");
    snprintf(what, sizeof what, "gemm %s", shape);
    report("gemm (OpenBLAS)", shape, "2 g_{K+1} (|C0| + S|a||b|)", e);
    check_ratio(what, e, seed);
    free(A), free(B), free(C0), free(cr), free(cf), free(bound);
}

START_TEST(test_gemm_tolerance)
{
    if (!FR_HAVE_OPENBLAS_TEST) return;
    fr_fast_set_policy(FR_FAST_ALWAYS);
    fr_opt_set_threads(2);
    uint64_t s = seed0();
    /* shapes-s (B = 64): fc1 forward, fc2 input gradient, in weight gradient; gmm2d-s */
    gemm_case(0, 1, 64, 512, 256, 0, s + 1);
    gemm_case(0, 0, 64, 512, 256, 0, s + 2);
    gemm_case(1, 0, 256, 768, 64, 1, s + 3);
    gemm_case(1, 0, 128, 64, 256, 1, s + 4);
    gemm_case(0, 1, 37, 29, 768, 1, s + 5);
    /* OpenBLAS ran: with accumulate its C0 + (Σ) differs from ref's chain started at C0 */
    {
        const fr_ops *ref = get("ref", 0), *f = get("opt", 1);
        float a[64 * 64], c1[64 * 64], c2[64 * 64];
        uint64_t q = s + 6;
        fill(&q, a, 64 * 64, -1, 1);
        fill(&q, c1, 64 * 64, -1, 1);
        memcpy(c2, c1, sizeof c1);
        ref->gemm(1, 0, 64, 64, 64, a, a, c1, 1);
        f->gemm(1, 0, 64, 64, 64, a, a, c2, 1);
        ck_assert_msg(memcmp(c1, c2, sizeof c1) != 0, "gemm: bitwise equal to ref, OpenBLAS did not run");
    }
    fr_opt_set_threads(0);
    fr_fast_set_policy(FR_FAST_RULE);
}
END_TEST

/* Layer norm. c_i = mean|x_i| rstd_i measures how much the row's offset amplifies an
 * error of the mean. The statistics are sums of D terms in different orders (relative
 * error <= gamma_D each), so x̂ differs by <= ~2 gamma_D (|x̂| + c_i) and y by that times
 * |gamma|, plus rounding of y: bound 4 gamma_D (|γ_j| (|x̂_ij| + c_i) + |β_j|). */
START_TEST(test_layernorm_tolerance)
{
    if (!FR_HAVE_ONEDNN_TEST) return;
    fr_fast_set_policy(FR_FAST_ALWAYS);
    const fr_ops *ref = get("ref", 0), *f = get("opt", 1);
    static const int64_t shapes[][2] = {{64, 256}, {256, 64}, {33, 512}};
    for (int si = 0; si < 3; si++) {
        int64_t M = shapes[si][0], D = shapes[si][1];
        uint64_t seed = seed0() + 10 + (uint64_t)si, s = seed;
        float *x = fvec(M * D), *g = fvec(D), *b = fvec(D), *yr = fvec(M * D), *yf = fvec(M * D);
        float *mr = fvec(M), *rr = fvec(M), *mf = fvec(M), *rf = fvec(M), *dy = fvec(M * D);
        float *dxr = fvec(M * D), *dxf = fvec(M * D), *dgr = fvec(D), *dgf = fvec(D);
        float *dbr = fvec(D), *dbf = fvec(D);
        double *bd = malloc((size_t)(M * D) * sizeof(double)), *bs = malloc((size_t)M * sizeof(double));
        double *bg = malloc((size_t)D * sizeof(double)), *bb = malloc((size_t)D * sizeof(double));
        ck_assert(bd && bs && bg && bb);
        for (int64_t i = 0; i < M; i++) {
            float off = fr_test_uniform(&s, -3, 3), sc = fr_test_uniform(&s, 0.1f, 4);
            for (int64_t j = 0; j < D; j++) x[i * D + j] = off + sc * fr_test_uniform(&s, -1, 1);
        }
        fill(&s, g, D, 0.5f, 1.5f);
        fill(&s, b, D, -0.5f, 0.5f);
        fill(&s, dy, M * D, -1, 1);
        ref->layernorm_fwd(M, D, x, g, b, 1e-5f, yr, mr, rr);
        f->layernorm_fwd(M, D, x, g, b, 1e-5f, yf, mf, rf);
        char shape[48];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)M, (long long)D);
        double *ci = bs;
        for (int64_t i = 0; i < M; i++) {
            double am = 0;
            for (int64_t j = 0; j < D; j++) am += fabs((double)x[i * D + j]);
            ci[i] = am / (double)D * rr[i];
            for (int64_t j = 0; j < D; j++) {
                double xh = fabs(((double)x[i * D + j] - mr[i]) * rr[i]);
                bd[i * D + j] = 4 * gam(D) * (fabs((double)g[j]) * (xh + ci[i]) + fabs((double)b[j]));
            }
        }
        errstat e = compare(yr, yf, bd, M * D);
        ck_assert_msg(e.abs > 0, "layernorm fwd: bitwise equal to ref, oneDNN did not run");
        report("layernorm fwd y", shape, "4 g_D (|γ|(|x̂|+c) + |β|)", e);
        check_ratio("layernorm fwd y", e, seed);
        /* mean: a sum of D terms, bound 2 gamma_D mean|x|; rstd: 2 gamma_D (1 + c) rstd */
        double bm[1024], br[1024];
        for (int64_t i = 0; i < M; i++) {
            bm[i] = 2 * gam(D) * ci[i] / rr[i];
            br[i] = 4 * gam(D) * (1 + ci[i]) * rr[i];
        }
        e = compare(mr, mf, bm, M);
        report("layernorm mean", shape, "2 g_D mean|x|", e);
        check_ratio("layernorm mean", e, seed);
        e = compare(rr, rf, br, M);
        report("layernorm rstd", shape, "4 g_D (1 + c) rstd", e);
        check_ratio("layernorm rstd", e, seed);

        /* backward from the same (ref) statistics, accumulating onto nonzero gradients:
         * dx = rstd (g - mean g - x̂ mean(g x̂)), g = γ dy: each mean is a sum of D terms,
         * so |Δdx| <= 4 gamma_D rstd (|g| + mean|g| + (|x̂|+c) mean(|g|(|x̂|+c))) + |dx0| u;
         * dγ_j += Σ_i dy x̂ over M rows, with x̂ itself within 2 gamma_D (|x̂|+c):
         * 4 gamma_{M+D} Σ_i |dy|(|x̂|+c) + |dγ0|; dβ_j: 2 gamma_{M+1} (|dβ0| + Σ|dy|). */
        fill(&s, dxr, M * D, -1, 1);
        fill(&s, dgr, D, -1, 1);
        fill(&s, dbr, D, -1, 1);
        memcpy(dxf, dxr, (size_t)(M * D) * sizeof(float));
        memcpy(dgf, dgr, (size_t)D * sizeof(float));
        memcpy(dbf, dbr, (size_t)D * sizeof(float));
        for (int64_t j = 0; j < D; j++) {
            bg[j] = fabs((double)dgr[j]);
            bb[j] = fabs((double)dbr[j]);
        }
        for (int64_t i = 0; i < M; i++) {
            double mg = 0, mgx = 0;
            for (int64_t j = 0; j < D; j++) {
                double gg = fabs((double)dy[i * D + j] * g[j]);
                double xh = fabs(((double)x[i * D + j] - mr[i]) * rr[i]) + ci[i];
                mg += gg / (double)D;
                mgx += gg * xh / (double)D;
            }
            for (int64_t j = 0; j < D; j++) {
                double gg = fabs((double)dy[i * D + j] * g[j]);
                double xh = fabs(((double)x[i * D + j] - mr[i]) * rr[i]) + ci[i];
                bd[i * D + j] = 4 * gam(D) * rr[i] * (gg + mg + xh * mgx) +
                                2 * U * fabs((double)dxr[i * D + j]);
                bg[j] += fabs((double)dy[i * D + j]) * xh;
                bb[j] += fabs((double)dy[i * D + j]);
            }
        }
        for (int64_t j = 0; j < D; j++) {
            bg[j] *= 4 * gam(M + D);
            bb[j] *= 2 * gam(M + 1);
        }
        ref->layernorm_bwd(M, D, x, g, mr, rr, dy, dxr, dgr, dbr, 1);
        f->layernorm_bwd(M, D, x, g, mr, rr, dy, dxf, dgf, dbf, 1);
        e = compare(dxr, dxf, bd, M * D);
        /* the vendor kernel ran (a silent fallback to the canonical kernel gives ref's bits) */
        ck_assert_msg(e.abs > 0, "layernorm bwd: bitwise equal to ref, oneDNN did not run");
        report("layernorm bwd dx", shape, "4 g_D rstd (|g|+m|g|+(|x̂|+c)m|gx̂|)", e);
        check_ratio("layernorm bwd dx", e, seed);
        e = compare(dgr, dgf, bg, D);
        report("layernorm bwd dγ", shape, "4 g_{M+D} Σ|dy|(|x̂|+c)", e);
        check_ratio("layernorm bwd dgamma", e, seed);
        e = compare(dbr, dbf, bb, D);
        report("layernorm bwd dβ", shape, "2 g_{M+1} Σ|dy|", e);
        check_ratio("layernorm bwd dbeta", e, seed);
        free(x), free(g), free(b), free(yr), free(yf), free(mr), free(rr), free(mf), free(rf);
        free(dy), free(dxr), free(dxf), free(dgr), free(dgf), free(dbr), free(dbf);
        free(bd), free(bs), free(bg), free(bb);
    }
    fr_fast_set_policy(FR_FAST_RULE);
}
END_TEST

/* Activations. GELU(x) = x Φ(x) and SiLU(x) = x σ(x) with Φ, σ in [0, 1]: oneDNN's own
 * tanh / exp differ from flowrl's detmath (both within a few ulp of exact), so Φ differs
 * by a few u in absolute terms and y by that times |x|: bound ACT_C u (|x| + |y|).
 * Backward dx = dy f'(x), f' = Φ + x Φ'(x) with |x Φ'| growing like |x|: bound
 * ACT_C u |dy| (1 + |x|). ACT_C = 16: the measured maxima (printed) are below 4. */
#define ACT_C 16.0

START_TEST(test_act_tolerance)
{
    if (!FR_HAVE_ONEDNN_TEST) return;
    fr_fast_set_policy(FR_FAST_ALWAYS);
    const fr_ops *ref = get("ref", 0), *f = get("opt", 1);
    static const fr_act acts[] = {FR_ACT_GELU_TANH, FR_ACT_SILU};
    int64_t n = 64 * 512; /* shapes-s (B, F) */
    for (int ai = 0; ai < 2; ai++) {
        uint64_t seed = seed0() + 20 + (uint64_t)ai, s = seed;
        float *x = fvec(n), *yr = fvec(n), *yf = fvec(n), *dy = fvec(n), *dr = fvec(n),
              *df = fvec(n);
        double *bd = malloc((size_t)n * sizeof(double));
        ck_assert_ptr_nonnull(bd);
        for (int64_t i = 0; i < n; i++) /* half in [-1, 1], half in [-10, 10] */
            x[i] = fr_test_uniform(&s, -1, 1) * (i % 2 ? 10.0f : 1.0f);
        fill(&s, dy, n, -1, 1);
        ref->act_fwd(acts[ai], n, x, yr);
        f->act_fwd(acts[ai], n, x, yf);
        for (int64_t i = 0; i < n; i++) bd[i] = ACT_C * U * (fabs((double)x[i]) + fabs((double)yr[i]));
        errstat e = compare(yr, yf, bd, n);
        ck_assert_msg(e.abs > 0, "%s: bitwise equal to ref, oneDNN did not run", fr_act_name(acts[ai]));
        char nm[48];
        snprintf(nm, sizeof nm, "%s fwd", fr_act_name(acts[ai]));
        report(nm, "32768, |x|<=10", "16 u (|x| + |y|)", e);
        check_ratio(nm, e, seed);
        ref->act_bwd(acts[ai], n, x, dy, dr, 0);
        f->act_bwd(acts[ai], n, x, dy, df, 0);
        for (int64_t i = 0; i < n; i++) bd[i] = ACT_C * U * fabs((double)dy[i]) * (1 + fabs((double)x[i]));
        e = compare(dr, df, bd, n);
        snprintf(nm, sizeof nm, "%s bwd", fr_act_name(acts[ai]));
        report(nm, "32768, |x|<=10", "16 u |dy| (1 + |x|)", e);
        check_ratio(nm, e, seed);
        /* accumulate: dx0 + the same increment */
        fill(&s, dr, n, -1, 1);
        memcpy(df, dr, (size_t)n * sizeof(float));
        ref->act_bwd(acts[ai], n, x, dy, dr, 1);
        f->act_bwd(acts[ai], n, x, dy, df, 1);
        for (int64_t i = 0; i < n; i++) bd[i] += 2 * U * (fabs((double)dr[i]) + 2);
        e = compare(dr, df, bd, n);
        check_ratio("act bwd accumulate", e, seed);
        free(x), free(yr), free(yf), free(dy), free(dr), free(df), free(bd);
    }
    fr_fast_set_policy(FR_FAST_RULE);
}
END_TEST

/* ---- run-to-run determinism -------------------------------------------------------------- */

static int same(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

START_TEST(test_ops_repeat)
{
    if (!fr_fast_available()) return;
    const fr_ops *f = get("opt", 1);
    fr_fast_set_policy(FR_FAST_ALWAYS);
    int64_t M = 64, N = 512, K = 256;
    uint64_t seed = seed0() + 30, s = seed;
    float *A = fvec(M * K), *B = fvec(K * N), *c[2], *y[2], *mu[2], *rs[2], *dx[2];
    float *g = fvec(K), *b = fvec(K), *dg[2], *db[2];
    fill(&s, A, M * K, -2, 2);
    fill(&s, B, K * N, -1, 1);
    float *B0 = fvec(K * N);
    memcpy(B0, B, (size_t)(K * N) * sizeof(float));
    fill(&s, g, K, 0.5f, 1.5f);
    fill(&s, b, K, -0.5f, 0.5f);
    for (int r = 0; r < 2; r++) {
        c[r] = fvec(M * N), y[r] = fvec(M * K), mu[r] = fvec(M), rs[r] = fvec(M);
        dx[r] = fvec(M * K), dg[r] = fvec(K), db[r] = fvec(K);
    }
    for (int ti = 1; ti <= 2; ti++) {
        fr_opt_set_threads(ti);
        for (int r = 0; r < 2; r++) {
            memcpy(B, B0, (size_t)(K * N) * sizeof(float));
            memset(c[r], 0, (size_t)(M * N) * sizeof(float));
            memset(dx[r], 0, (size_t)(M * K) * sizeof(float));
            memset(dg[r], 0, (size_t)K * sizeof(float));
            memset(db[r], 0, (size_t)K * sizeof(float));
            f->gemm(0, 1, M, N, K, A, B, c[r], 0); /* B read as (N,K) */
            f->gemm(1, 0, K, N, M, A, c[r], B, 0); /* B overwritten identically each run */
            f->layernorm_fwd(M, K, A, g, b, 1e-5f, y[r], mu[r], rs[r]);
            f->layernorm_bwd(M, K, A, g, mu[r], rs[r], y[r], dx[r], dg[r], db[r], 1);
            f->act_fwd(FR_ACT_GELU_TANH, M * K, y[r], y[r]);
            f->act_bwd(FR_ACT_SILU, M * K, A, y[r], dx[r], 1);
        }
        ck_assert_msg(same(c[0], c[1], M * N), "gemm differs run to run (threads %d)", ti);
        ck_assert_msg(same(y[0], y[1], M * K), "layernorm/gelu differ run to run (threads %d)", ti);
        ck_assert_msg(same(mu[0], mu[1], M) && same(rs[0], rs[1], M), "ln stats differ (threads %d)", ti);
        ck_assert_msg(same(dx[0], dx[1], M * K) && same(dg[0], dg[1], K) && same(db[0], db[1], K),
                      "backward differs run to run (threads %d)", ti);
    }
    fr_opt_set_threads(0);
    fr_fast_set_policy(FR_FAST_RULE);
    free(A), free(B), free(B0), free(g), free(b);
    for (int r = 0; r < 2; r++) free(c[r]), free(y[r]), free(mu[r]), free(rs[r]), free(dx[r]), free(dg[r]), free(db[r]);
}
END_TEST

/* One forward + backward of a preset with `ops`: out (B,D) and all gradients into res. */
typedef struct {
    fr_model m;
    fr_model_ws ws;
    int64_t B, D;
    float *x, *t, *dout, *out;
    int32_t *c;
} model_run;

static void model_setup(model_run *r, const char *preset, int64_t B)
{
    fr_model_config cfg;
    int shapes = strncmp(preset, "shapes", 6) == 0;
    ck_assert_msg(fr_model_preset(preset, shapes ? 768 : 2, shapes ? 110 : 8, &cfg) == FR_OK, "%s",
                  fr_last_error());
    cfg.n_slots = shapes ? 5 : 1;
    ck_assert_msg(fr_model_init(&r->m, fr_test_ref_be(), &cfg, 3) == FR_OK, "%s", fr_last_error());
    /* nonzero fc2 / out weights, so every layer carries a gradient signal */
    uint64_t s = seed0() + 40;
    for (int p = 0; p < r->m.n_params; p++) {
        float *v = (float *)r->m.values[p].data;
        int64_t n = fr_tensor_numel(&r->m.values[p]);
        for (int64_t i = 0; i < n; i++)
            if (v[i] == 0.0f) v[i] = fr_test_uniform(&s, -0.05f, 0.05f);
    }
    ck_assert_msg(fr_model_ws_alloc(&r->ws, &r->m, B, 1) == FR_OK, "%s", fr_last_error());
    r->B = B, r->D = cfg.D;
    r->x = fvec(B * cfg.D), r->t = fvec(B), r->dout = fvec(B * cfg.D), r->out = fvec(B * cfg.D);
    r->c = malloc((size_t)(B * cfg.n_slots) * sizeof(int32_t));
    ck_assert_ptr_nonnull(r->c);
    fill(&s, r->x, B * cfg.D, -2, 2);
    fill(&s, r->dout, B * cfg.D, -1, 1);
    for (int64_t i = 0; i < B; i++) r->t[i] = fr_test_uniform(&s, 1, 999);
    for (int64_t i = 0; i < B * cfg.n_slots; i++) r->c[i] = (int32_t)(fr_test_next(&s) % (uint64_t)(cfg.n_cond + 1));
}

static void model_step(model_run *r, fr_backend *be)
{
    fr_model_zero_grad(&r->m, be);
    ck_assert_msg(fr_model_forward(&r->m, be, &r->ws, r->B, r->x, r->t, r->c, r->out) == FR_OK,
                  "%s", fr_last_error());
    ck_assert_msg(fr_model_backward(&r->m, be, &r->ws, r->dout, NULL) == FR_OK, "%s",
                  fr_last_error());
}

static void model_free(model_run *r)
{
    fr_model_ws_free(&r->ws);
    fr_model_free(&r->m);
    free(r->x), free(r->t), free(r->dout), free(r->out), free(r->c);
}

START_TEST(test_model_repeat)
{
    if (!fr_fast_available()) return;
    static const char *const presets[] = {"gmm2d-s", "shapes-s"};
    for (int pi = 0; pi < 2; pi++) {
        model_run r;
        model_setup(&r, presets[pi], pi ? 32 : 256);
        int64_t np = fr_model_num_params(&r.m), no = r.B * r.D;
        float *g0 = fvec(np), *o0 = fvec(no);
        for (int pol = 0; pol < 2; pol++) {
            fr_fast_set_policy(pol ? FR_FAST_ALWAYS : FR_FAST_RULE);
            for (int ti = 1; ti <= 2; ti++) {
                fr_backend f = fr_test_backend("opt", 1, ti);
                model_step(&r, &f);
                memcpy(g0, r.m.arena_grads, (size_t)np * sizeof(float));
                memcpy(o0, r.out, (size_t)no * sizeof(float));
                model_step(&r, &f);
                ck_assert_msg(same(o0, r.out, no), "%s output differs run to run (threads %d, %s)",
                              presets[pi], ti, pol ? "always" : "rule");
                ck_assert_msg(same(g0, r.m.arena_grads, np),
                              "%s gradients differ run to run (threads %d, %s)", presets[pi], ti,
                              pol ? "always" : "rule");
            }
        }
        fr_opt_set_threads(0);
        fr_fast_set_policy(FR_FAST_RULE);
        free(g0), free(o0);
        model_free(&r);
    }
}
END_TEST

/* ---- whole-model tolerance ------------------------------------------------------------------ */

/* One forward + backward of shapes-s (B = 16), fast (rule, and all vendor kernels) vs ref:
 * max |Δ| relative to the tensor's max |ref|, per output and over all gradients. Not a
 * derived bound (errors compound through 3 blocks): the assertion (1e-4 of the scale)
 * is ~25x the measured value, and a wrong kernel gives O(1). */
START_TEST(test_model_tolerance)
{
    if (!fr_fast_available()) return;
    model_run r;
    model_setup(&r, "shapes-s", 16);
    int64_t np = fr_model_num_params(&r.m), no = r.B * r.D;
    float *gr = fvec(np), *orf = fvec(no);
    model_step(&r, fr_test_ref_be());
    fr_backend f = fr_test_backend("opt", 1, 0);
    memcpy(gr, r.m.arena_grads, (size_t)np * sizeof(float));
    memcpy(orf, r.out, (size_t)no * sizeof(float));
    for (int pol = 0; pol < 2; pol++) {
        fr_fast_set_policy(pol ? FR_FAST_ALWAYS : FR_FAST_RULE);
        model_step(&r, &f);
        double scale_o = 0, scale_g = 0;
        for (int64_t i = 0; i < no; i++) scale_o = fmax(scale_o, fabs((double)orf[i]));
        for (int64_t i = 0; i < np; i++) scale_g = fmax(scale_g, fabs((double)gr[i]));
        errstat eo = compare(orf, r.out, NULL, no), eg = compare(gr, r.m.arena_grads, NULL, np);
        printf("fast model shapes-s B=16 fwd+bwd (%s): out max|Δ| %.3g (%.3g of max|out|), "
               "grads max|Δ| %.3g (%.3g of max|g|)\n", pol ? "all vendor" : "rule", eo.abs,
               eo.abs / scale_o, eg.abs, eg.abs / scale_g);
        ck_assert_msg(eo.abs <= 1e-4 * scale_o && eg.abs <= 1e-4 * scale_g,
                      "model fast vs ref: out %.3g, grads %.3g", eo.abs / scale_o, eg.abs / scale_g);
    }
    fr_fast_set_policy(FR_FAST_RULE);
    free(gr), free(orf);
    model_free(&r);
}
END_TEST

/* N pretraining steps of gmm2d-s (batch 128, lr 1e-3, seed 11) with ref and with --fast:
 * the parameters after training. AdamW moves a parameter by at most about lr per step
 * whatever the gradient, so the assertion compares with that scale: max |Δp| <= 0.1 lr N,
 * and the final batch losses within 1% (a wrong kernel misses both). */
static char g_dir[] = "/tmp/flowrl-fast-XXXXXX";

static float pretrain_to(fr_backend *be, const char *path, int64_t steps)
{
    fr_pretrain_cfg c = fr_pretrain_defaults();
    c.task = "gmm2d";
    c.steps = steps;
    c.batch = 128;
    c.seed = 11;
    c.out = path;
    fr_pretrain_result res;
    ck_assert_msg(fr_pretrain(&c, be, NULL, NULL, &res) == FR_OK, "%s", fr_last_error());
    return res.final_loss;
}

START_TEST(test_pretrain_tolerance)
{
    if (!fr_fast_available()) return;
    const char *e = getenv("FLOWRL_FAST_STEPS");
    int64_t steps = e ? atoll(e) : 20;
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    char pr[300], pf[300];
    snprintf(pr, sizeof pr, "%s/ref.safetensors", g_dir);
    snprintf(pf, sizeof pf, "%s/fast.safetensors", g_dir);
    fr_backend f = fr_test_backend("opt", 1, 0);
    float lr = pretrain_to(fr_test_ref_be(), pr, steps);
    float lf = pretrain_to(&f, pf, steps);
    fr_st_file a, b;
    fr_st_init(&a), fr_st_init(&b);
    ck_assert_msg(fr_st_read(&a, pr) == FR_OK && fr_st_read(&b, pf) == FR_OK, "%s", fr_last_error());
    double mabs = 0, mrel = 0, scale = 0;
    int64_t count = 0;
    for (size_t i = 0; i < a.n; i++) {
        const fr_tensor *ta = &a.entries[i].t, *tb = fr_st_get(&b, a.entries[i].name);
        if (ta->dtype != FR_F32 || !tb) continue;
        int64_t n = fr_tensor_numel(ta);
        const float *x = ta->data, *y = tb->data;
        for (int64_t k = 0; k < n; k++) {
            ck_assert(!isnan(y[k]));
            double d = fabs((double)x[k] - y[k]);
            mabs = fmax(mabs, d);
            scale = fmax(scale, fabs((double)x[k]));
            if (fabs((double)x[k]) >= 1e-2) mrel = fmax(mrel, d / fabs((double)x[k]));
            count++;
        }
    }
    printf("fast pretrain gmm2d-s %lld steps (batch 128, %lld values incl. EMA): params max|Δ| "
           "%.3g, max rel (|p| >= 0.01) %.3g, max|p| %.3g; final loss ref %.6g fast %.6g\n",
           (long long)steps, (long long)count, mabs, mrel, scale, (double)lr, (double)lf);
    ck_assert(count > 1000);
    ck_assert_msg(mabs <= 0.1 * 1e-3 * (double)steps, "params drift %.3g after %lld steps", mabs,
                  (long long)steps);
    ck_assert_msg(fabs((double)lf - lr) <= 0.01 * fabs((double)lr), "loss ref %g fast %g", lr, lf);
    fr_st_free(&a), fr_st_free(&b);
    unlink(pr), unlink(pf), rmdir(g_dir);
}
END_TEST

Suite *suite_fast(void)
{
    Suite *s = suite_create("fast");
    TCase *tc = tcase_create("fast");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_api);
    tcase_add_test(tc, test_never_is_opt);
    tcase_add_test(tc, test_gemm_tolerance);
    tcase_add_test(tc, test_layernorm_tolerance);
    tcase_add_test(tc, test_act_tolerance);
    tcase_add_test(tc, test_ops_repeat);
    tcase_add_test(tc, test_model_repeat);
    tcase_add_test(tc, test_model_tolerance);
    tcase_add_test(tc, test_pretrain_tolerance);
    suite_add_tcase(s, tc);
    return s;
}
