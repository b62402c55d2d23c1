/* AWM's training-time selection and noising (docs/algorithms/awm.md "Timesteps",
 * "Per-sample, per-t log-prob"; flowrl/awm.h for the formulas and Philox coordinates). */
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm.h"
#include "flowrl/detmath.h"
#include "flowrl/grpo.h"
#include "flowrl/philox.h"
#include "flowrl/schedule.h"

#define MAX_K 1024

fr_awm_time_cfg fr_awm_time_defaults(void)
{
    fr_awm_time_cfg c = {FR_AWM_TIME_DISCRETE_WO_INIT, 6, 0.9, FR_DEFAULT_SHIFT};
    return c;
}

static const char *const k_time[] = {"discrete_wo_init", "discrete", "discrete_with_init", "uniform",
                                     "logit_normal"};
#define N_TIME (int)(sizeof k_time / sizeof k_time[0])

const char *fr_awm_time_name(fr_awm_time_type type)
{
    return (int)type >= 0 && (int)type < N_TIME ? k_time[type] : NULL;
}

fr_status fr_awm_time_parse(const char *name, fr_awm_time_type *type)
{
    for (int i = 0; name && i < N_TIME; i++)
        if (strcmp(name, k_time[i]) == 0) {
            *type = (fr_awm_time_type)i;
            return FR_OK;
        }
    return fr_fail(FR_ERR_ARG,
                   "awm: time type '%s' is unknown (discrete_wo_init, discrete, discrete_with_init, uniform, logit_normal)",
                   name ? name : "(null)");
}

static int is_discrete(fr_awm_time_type t) { return t <= FR_AWM_TIME_DISCRETE_WITH_INIT; }

static fr_status check_cfg(const fr_awm_time_cfg *c)
{
    if (!c) return fr_fail(FR_ERR_ARG, "awm: time config is NULL");
    if (!fr_awm_time_name(c->type)) return fr_fail(FR_ERR_ARG, "awm: time type %d is invalid", (int)c->type);
    if (c->K < 1 || c->K > MAX_K)
        return fr_fail(FR_ERR_ARG, "awm: train_timesteps %lld, expected 1..%d", (long long)c->K, MAX_K);
    if (!(c->fraction >= 0.0 && c->fraction <= 1.0))
        return fr_fail(FR_ERR_ARG, "awm: timestep_fraction %g, expected in [0, 1]", c->fraction);
    if (!(c->shift > 0.0 && c->shift <= 1e6))
        return fr_fail(FR_ERR_ARG, "awm: time_shift %g, expected > 0", c->shift);
    return FR_OK;
}

/* long(linspace(a, e, n))_k, exactly: a + ⌊k·(e − a)/(n − 1)⌋ (e >= a, n >= 2). */
static int64_t linspace_long(int64_t a, int64_t e, int64_t n, int64_t k)
{
    return a + (k * (e - a)) / (n - 1);
}

fr_status fr_awm_strata(const fr_awm_time_cfg *c, int64_t T, int64_t *lo, int64_t *hi)
{
    FR_TRY(check_cfg(c));
    if (!lo || !hi) return fr_fail(FR_ERR_ARG, "fr_awm_strata: NULL output");
    if (!is_discrete(c->type))
        return fr_fail(FR_ERR_ARG, "fr_awm_strata: time type %s has no strata", fr_awm_time_name(c->type));
    int64_t M;
    FR_TRY(fr_train_steps(T, c->fraction, &M));
    const int64_t K = c->K;
    int64_t a = c->type == FR_AWM_TIME_DISCRETE ? 0 : 1;
    if (M < a)
        return fr_fail(FR_ERR_ARG, "awm: int(T·fraction) = int(%lld·%g) = %lld, expected >= %lld", (long long)T,
                       c->fraction, (long long)M, (long long)a);
    int64_t first = 0, n = K; /* strata first..K−1 from linspace(a, M, n + 1) */
    if (c->type == FR_AWM_TIME_DISCRETE_WITH_INIT) {
        lo[0] = hi[0] = 0; /* the forced index 0 */
        first = 1;
        n = K - 1;
    }
    for (int64_t k = 0; k < n; k++) {
        lo[first + k] = linspace_long(a, M, n + 1, k);
        hi[first + k] = linspace_long(a, M, n + 1, k + 1);
    }
    for (int64_t k = 0; k < K; k++)
        if (lo[k] >= T)
            return fr_fail(FR_ERR_ARG, "awm: stratum %lld is [%lld, %lld], past the rollout's %lld steps", (long long)k,
                           (long long)lo[k], (long long)hi[k], (long long)T);
    return FR_OK;
}

/* perm (n,): 0..n−1 in the ascending order of the keys u32(seed, TIMES, epoch, batch, 1,
 * base + i·stride), ties by index (insertion sort: n <= MAX_K). */
static void key_order(uint32_t seed, uint32_t epoch, uint32_t batch, int64_t n, int64_t base, int64_t stride,
                      int64_t *perm, uint32_t *key)
{
    for (int64_t i = 0; i < n; i++) {
        key[i] = fr_rng_u32(seed, FR_RNG_AWM_TIMES, epoch, batch, 1, (uint32_t)(base + i * stride));
        int64_t j = i;
        while (j > 0 && key[perm[j - 1]] > key[i]) {
            perm[j] = perm[j - 1];
            j--;
        }
        perm[j] = i;
    }
}

fr_status fr_awm_times(const fr_awm_time_cfg *c, uint32_t seed, uint32_t epoch, uint32_t batch, int64_t B, int64_t T,
                       const float *sigmas, int64_t *idx, float *t)
{
    FR_TRY(check_cfg(c));
    const int64_t K = c->K;
    if (!t) return fr_fail(FR_ERR_ARG, "fr_awm_times: NULL output");
    if (B < 1 || B > ((int64_t)1 << 20) || K * B > ((int64_t)1 << 32) - 1)
        return fr_fail(FR_ERR_ARG, "fr_awm_times: batch %lld, expected 1..2^20 (K·B < 2^32)", (long long)B);
    const float S = (float)c->shift;
    if (is_discrete(c->type)) {
        if (!sigmas) return fr_fail(FR_ERR_ARG, "fr_awm_times: %s needs the rollout's sigmas", fr_awm_time_name(c->type));
        int64_t lo[MAX_K], hi[MAX_K];
        FR_TRY(fr_awm_strata(c, T, lo, hi));
        for (int64_t k = 0; k < K; k++) {
            float u = fr_rng_uniform(seed, FR_RNG_AWM_TIMES, epoch, batch, 0, (uint32_t)k);
            int64_t w = hi[k] - lo[k];
            int64_t j = lo[k] + (int64_t)(u * (float)w); /* `(rand_u * (upper - lower)).long()` */
            if (w > 0 && j >= hi[k]) j = hi[k] - 1;      /* a float32 product rounded up to w */
            if (idx) idx[k] = j;
            float tk = fr_timestep_diffusers(sigmas[j]) / 1000.0f; /* `timesteps[idx] / 1000` */
            for (int64_t b = 0; b < B; b++) t[k * B + b] = tk;
        }
        return FR_OK;
    }
    int64_t *perm = fr_malloc((size_t)K * sizeof(int64_t));
    uint32_t *key = fr_malloc((size_t)K * sizeof(uint32_t));
    float *col = fr_malloc((size_t)K * sizeof(float));
    if (!perm || !key || !col) {
        free(perm);
        free(key);
        free(col);
        return FR_ERR_NOMEM;
    }
    if (c->type == FR_AWM_TIME_UNIFORM) {
        /* s = 0.2 + ((k + u)/K)·(1.0 − 0.2), then each column's own order (`torch.gather(matrix,
         * 0, rand_like(matrix).argsort(dim=0))`), then the shift */
        for (int64_t b = 0; b < B; b++) {
            for (int64_t k = 0; k < K; k++) {
                float u = fr_rng_uniform(seed, FR_RNG_AWM_TIMES, epoch, batch, 0, (uint32_t)(k * B + b));
                col[k] = 0.2f + (((float)k + u) / (float)K) * 0.8f;
            }
            key_order(seed, epoch, batch, K, b, B, perm, key);
            for (int64_t k = 0; k < K; k++) t[k * B + b] = fr_shift_f(col[perm[k]], S);
        }
    } else {
        /* logit_normal (m = 0, s = 1): z_k = Φ⁻¹((k + u_k)/K), shuffled (`u[torch.randperm(T)]`), sigmoid,
         * shift, `repeat_interleave(B)`, `clamp(min=0.01)` */
        for (int64_t k = 0; k < K; k++) {
            float u = fr_rng_uniform(seed, FR_RNG_AWM_TIMES, epoch, batch, 0, (uint32_t)k);
            col[k] = (float)fr_awm_ndtri((double)(((float)k + u) / (float)K));
        }
        key_order(seed, epoch, batch, K, 0, 1, perm, key);
        for (int64_t k = 0; k < K; k++) {
            float tk = fr_shift_f(fr_sigmoidf(col[perm[k]]), S);
            tk = tk < 0.01f ? 0.01f : tk;
            for (int64_t b = 0; b < B; b++) t[k * B + b] = tk;
        }
    }
    free(perm);
    free(key);
    free(col);
    return FR_OK;
}

fr_status fr_awm_noise(fr_backend *be, uint32_t seed, uint32_t epoch, const uint32_t *sample_id, int64_t K, int64_t B,
                       int64_t D, const float *x0, const float *t, float *eps, float *xt)
{
    if (K < 1 || B < 1 || D < 1 || K > MAX_K || B > ((int64_t)1 << 20) || D > ((int64_t)1 << 31) ||
        K * B > ((int64_t)1 << 40) / D)
        return fr_fail(FR_ERR_ARG, "fr_awm_noise: shape K %lld, B %lld, D %lld, expected K 1..%d, B, D >= 1",
                       (long long)K, (long long)B, (long long)D, MAX_K);
    if (!be || !sample_id || !x0 || !t || !eps || !xt) return fr_fail(FR_ERR_ARG, "fr_awm_noise: NULL argument");
    /* rows r = k·B + b: x0 row b, sample id b, counter c2 = k (the noise_fm entry's n1 = B) */
    be->ops->noise_fm(K * B, B, D, seed, FR_RNG_AWM_NOISE, epoch, 0, sample_id, x0, t, xt, eps);
    return FR_OK;
}
