/* Sampler, guidance and noise loops of the op table (flowrl/ops.h): plain loops over the
 * FR_HOSTDEV element functions of sampler_elem.h, noising.h and philox.h. A log-prob is the
 * canonical long sum of its row's terms (flowrl/reduce.h: term i into lane i mod 8, then the
 * lane tree) divided by D, fed one term at a time. */
#include "flowrl/noising.h"
#include "flowrl/philox.h"
#include "flowrl/reduce.h"
#include "flowrl/sampler_elem.h"
#include "ref/ref_internal.h"

static void ref_sampler_step(int64_t B, int64_t D, fr_step_coef q, const float *x, const float *model_out,
                             const float *x0_prev, const float *xi, float *x_next, float *mean, float *logp)
{
    for (int64_t b = 0; b < B; b++) {
        float l[FR_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t i = b * D; i < (b + 1) * D; i++) {
            float mu = fr_step_mean_elem(&q, x[i], model_out[i], x0_prev ? x0_prev[i] : 0.0f);
            float xn = xi ? fr_noise_add_elem(mu, q.std, xi[i]) : mu;
            if (mean) mean[i] = mu;
            x_next[i] = xn;
            if (logp) l[(i - b * D) % FR_LANES] += fr_step_logp_elem(&q, xn, mu);
        }
        if (logp) logp[b] = fr_lanes_tree(l) / (float)D;
    }
}

static void ref_sampler_logprob(int64_t B, int64_t D, fr_step_coef q, const float *x, const float *model_out,
                                const float *x0_prev, const float *x_next, const float *mean_in, float *mean_out,
                                float *logp)
{
    for (int64_t b = 0; b < B; b++) {
        float l[FR_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t i = b * D; i < (b + 1) * D; i++) {
            float mu = mean_in ? mean_in[i]
                               : fr_step_mean_elem(&q, x[i], model_out[i], x0_prev ? x0_prev[i] : 0.0f);
            if (mean_out) mean_out[i] = mu;
            l[(i - b * D) % FR_LANES] += fr_step_logp_elem(&q, x_next[i], mu);
        }
        logp[b] = fr_lanes_tree(l) / (float)D;
    }
}

static void ref_sampler_logprob_w(int64_t B, int64_t D, fr_step_coef q, const float *x_next, const float *mean,
                                  const float *w, float *logp)
{
    for (int64_t b = 0; b < B; b++) {
        float l[FR_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t i = b * D; i < (b + 1) * D; i++)
            l[(i - b * D) % FR_LANES] += fr_step_logp_w_elem(&q, x_next[i], mean[i], w[i]);
        logp[b] = fr_lanes_tree(l) / (float)D;
    }
}

static void ref_cfg_combine(int64_t n, float g, const float *v_u, const float *v_c, float *out)
{
    for (int64_t i = 0; i < n; i++) out[i] = fr_cfg_elem(v_u[i], v_c[i], g);
}

static void ref_flow_x0(int64_t n, float sigma, const float *x, const float *v, float *x0)
{
    for (int64_t i = 0; i < n; i++) x0[i] = fr_flow_x0_elem(x[i], v[i], sigma);
}

static void ref_rng_normal_rows(int64_t R, int64_t D, uint32_t seed, uint32_t purpose, uint32_t c0, int64_t n1,
                                const uint32_t *c1, uint32_t c2, float *out)
{
    for (int64_t r = 0; r < R; r++)
        fr_rng_fill_normal_scalar(out + r * D, D, seed, purpose, c0, c1[r % n1], c2 + (uint32_t)(r / n1));
}

static void ref_noise_fm(int64_t R, int64_t n1, int64_t D, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c2,
                         const uint32_t *ids, const float *x0, const float *t, float *x_t, float *eps)
{
    for (int64_t r = 0; r < R; r++) {
        const fr_noise_coord k = {seed, purpose, c0, c2 + (uint32_t)(r / n1)};
        const int64_t b = r % n1;
        for (int64_t d = 0; d < D; d++)
            x_t[r * D + d] =
                fr_noise_fm_elem(x0[b * D + d], t[r], k, ids[b], (uint32_t)d, eps ? &eps[r * D + d] : NULL);
    }
}

static void ref_gather_rows(int64_t R, int64_t D, const int32_t *idx, int64_t n_src, const float *src, float *dst)
{
    (void)n_src; /* the extent a device backend checks */
    for (int64_t r = 0; r < R; r++)
        if (idx[r] >= 0)
            for (int64_t j = 0; j < D; j++) dst[r * D + j] = src[(int64_t)idx[r] * D + j];
}

void fr_ref_fill_sampler(fr_ops *ops)
{
    ops->sampler_step = ref_sampler_step;
    ops->sampler_logprob = ref_sampler_logprob;
    ops->sampler_logprob_w = ref_sampler_logprob_w;
    ops->cfg_combine = ref_cfg_combine;
    ops->flow_x0 = ref_flow_x0;
    ops->rng_normal_rows = ref_rng_normal_rows;
    ops->noise_fm = ref_noise_fm;
    ops->gather_rows = ref_gather_rows;
}
