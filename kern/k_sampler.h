/* Sampler steps, guidance, noise and row gathers as kernels (flowrl/kernel.h): the op entries
 * of the "samplers, guidance, noise" section of flowrl/ops.h. Each output is computed by the
 * element function ref/ref_sampler.c loops over, so the bits are ref's.
 *
 * Elementwise entries run one thread per output element. A log-prob (a row's canonical mean,
 * flowrl/reduce.h) runs 8 threads per row, thread j summing the terms j, j + 8, ... in order
 * (lane j of the canonical long sum), then lane 0 adds the 8 lanes in the fixed tree. */
#ifndef FLOWRL_K_SAMPLER_H
#define FLOWRL_K_SAMPLER_H

#include "flowrl/kernel.h"
#include "flowrl/noising.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"
#include "flowrl/reduce.h"
#include "flowrl/sampler_elem.h"

#define FR_K_SAMPLER_BLOCK 256
#define FR_K_LOGP_ROWS 32 /* rows per block of the log-prob kernel: 8 × 32 = 256 threads */

/* ---- one step: μ, x' (and μ as a copy of mean_in) --------------------------------------- */

typedef struct {
    int64_t n;
    fr_step_coef q;
    const float *x, *m, *x0_prev, *mean_in, *xi; /* mean_in: μ given (then x, m unread) */
    float *x_next, *mean;                        /* either may be NULL */
} fr_k_step_args;

FR_KERNEL(fr_k_step, fr_k_step_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->n) return;
    const float mu = a->mean_in ? a->mean_in[i]
                                : fr_step_mean_elem(&a->q, a->x[i], a->m[i], a->x0_prev ? a->x0_prev[i] : 0.0f);
    const float xn = a->xi ? fr_noise_add_elem(mu, a->q.std, a->xi[i]) : mu;
    if (a->mean) a->mean[i] = mu;
    if (a->x_next) a->x_next[i] = xn;
}

static void k_step_launch(int64_t n, fr_step_coef q, const float *x, const float *m, const float *x0_prev,
                          const float *mean_in, const float *xi, float *x_next, float *mean)
{
    fr_k_step_args a = {n, q, x, m, x0_prev, mean_in, xi, x_next, mean};
    FR_LAUNCH(fr_k_step, fr_grid_1d(n, FR_K_SAMPLER_BLOCK), fr_dim3_x(FR_K_SAMPLER_BLOCK), a);
}

/* ---- log-prob rows: 8 lanes per row, then the lane tree -------------------------------- */

typedef struct {
    int64_t B, D;
    fr_step_coef q;
    const float *x, *m, *x0_prev, *mean_in, *xi;
    const float *x_next; /* x' given (sampler_logprob); NULL: x' = μ + std·ξ (sampler_step) */
    float *logp;
    const float *w;      /* (B, D) per-element weights (sampler_logprob_w), or NULL */
} fr_k_logp_args;

typedef struct {
    float lane;
} fr_k_logp_regs;

typedef struct {
    float l[FR_K_LOGP_ROWS][FR_LANES];
} fr_k_logp_smem;

FR_HOSTDEV static inline int64_t fr_k_logp_row(const fr_kidx *k)
{
    return (int64_t)k->block.x * FR_K_LOGP_ROWS + k->thread.y;
}

FR_HOSTDEV static inline int64_t fr_k_logp_iters(const fr_k_logp_args *a)
{
    (void)a;
    return 1;
}

/* lane j of row b: the terms i ≡ j (mod 8) in order, as fr_sum_canonical adds them */
FR_HOSTDEV static inline void fr_k_logp_init(const fr_kidx *k, const fr_k_logp_args *a, fr_k_logp_smem *s,
                                             fr_k_logp_regs *r)
{
    (void)s;
    const int64_t b = fr_k_logp_row(k);
    r->lane = 0.0f;
    if (b >= a->B) return;
    for (int64_t j = k->thread.x; j < a->D; j += FR_LANES) {
        const int64_t i = b * a->D + j;
        const float mu = a->mean_in ? a->mean_in[i]
                                    : fr_step_mean_elem(&a->q, a->x[i], a->m[i], a->x0_prev ? a->x0_prev[i] : 0.0f);
        const float xn = a->x_next ? a->x_next[i] : (a->xi ? fr_noise_add_elem(mu, a->q.std, a->xi[i]) : mu);
        r->lane += a->w ? fr_step_logp_w_elem(&a->q, xn, mu, a->w[i]) : fr_step_logp_elem(&a->q, xn, mu);
    }
}

FR_HOSTDEV static inline void fr_k_logp_load(const fr_kidx *k, const fr_k_logp_args *a, fr_k_logp_smem *s,
                                             fr_k_logp_regs *r)
{
    if (fr_k_logp_row(k) < a->B) s->l[k->thread.y][k->thread.x] = r->lane;
}

FR_HOSTDEV static inline void fr_k_logp_compute(const fr_kidx *k, const fr_k_logp_args *a, fr_k_logp_smem *s,
                                                fr_k_logp_regs *r)
{
    (void)r;
    const int64_t b = fr_k_logp_row(k);
    if (b < a->B && k->thread.x == 0) a->logp[b] = fr_lanes_tree(s->l[k->thread.y]) / (float)a->D;
}

FR_HOSTDEV static inline void fr_k_logp_store(const fr_kidx *k, const fr_k_logp_args *a, fr_k_logp_smem *s,
                                              fr_k_logp_regs *r)
{
    (void)k;
    (void)a;
    (void)s;
    (void)r;
}

FR_KERNEL_TILED(fr_k_logp, fr_k_logp_args, fr_k_logp_regs, fr_k_logp_smem)

static void k_logp_launch(int64_t B, int64_t D, fr_step_coef q, const float *x, const float *m,
                          const float *x0_prev, const float *mean_in, const float *xi, const float *x_next,
                          float *logp, const float *w)
{
    fr_k_logp_args a = {B, D, q, x, m, x0_prev, mean_in, xi, x_next, logp, w};
    FR_LAUNCH_TILED(fr_k_logp, fr_grid_1d(B, FR_K_LOGP_ROWS), fr_dim3_make(FR_LANES, FR_K_LOGP_ROWS, 1), a);
}

/* the log-prob reads x before the step kernel writes x_next (which may alias x) */
static void k_sampler_step(int64_t B, int64_t D, fr_step_coef q, const float *x, const float *model_out,
                           const float *x0_prev, const float *xi, float *x_next, float *mean, float *logp)
{
    if (B < 1) return;
    const int64_t n = B * D;
    FR_KARG(x, n, "x");
    FR_KARG(model_out, n, "model_out");
    FR_KARG_OPT(x0_prev, n, "x0_prev");
    FR_KARG_OPT(xi, n, "xi");
    FR_KARG(x_next, n, "x_next");
    FR_KARG_OPT(mean, n, "mean");
    FR_KARG_OPT(logp, B, "logp");
    if (logp) k_logp_launch(B, D, q, x, model_out, x0_prev, NULL, xi, NULL, logp, NULL);
    k_step_launch(n, q, x, model_out, x0_prev, NULL, xi, x_next, mean);
}

static void k_sampler_logprob(int64_t B, int64_t D, fr_step_coef q, const float *x, const float *model_out,
                              const float *x0_prev, const float *x_next, const float *mean_in, float *mean_out,
                              float *logp)
{
    if (B < 1) return;
    const int64_t n = B * D;
    FR_KARG_OPT(x, mean_in ? 0 : n, "x");
    FR_KARG_OPT(model_out, mean_in ? 0 : n, "model_out");
    FR_KARG_OPT(x0_prev, mean_in ? 0 : n, "x0_prev");
    FR_KARG(x_next, n, "x_next");
    FR_KARG_OPT(mean_in, n, "mean_in");
    FR_KARG_OPT(mean_out, n, "mean_out");
    FR_KARG(logp, B, "logp");
    k_logp_launch(B, D, q, x, model_out, x0_prev, mean_in, NULL, x_next, logp, NULL);
    if (mean_out) k_step_launch(n, q, x, model_out, x0_prev, mean_in, NULL, mean_out, NULL);
}

static void k_sampler_logprob_w(int64_t B, int64_t D, fr_step_coef q, const float *x_next, const float *mean,
                                const float *w, float *logp)
{
    if (B < 1) return;
    FR_KARG(x_next, B * D, "x_next");
    FR_KARG(mean, B * D, "mean");
    FR_KARG(w, B * D, "w");
    FR_KARG(logp, B, "logp");
    k_logp_launch(B, D, q, NULL, NULL, NULL, mean, NULL, x_next, logp, w);
}

/* ---- guidance and x̂0 ------------------------------------------------------------------ */

typedef struct {
    int64_t n;
    float g;
    const float *v_u, *v_c;
    float *out;
} fr_k_cfg_args;

FR_KERNEL(fr_k_cfg, fr_k_cfg_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i < a->n) a->out[i] = fr_cfg_elem(a->v_u[i], a->v_c[i], a->g);
}

static void k_cfg_combine(int64_t n, float g, const float *v_u, const float *v_c, float *out)
{
    if (n < 1) return;
    FR_KARG(v_u, n, "v_u");
    FR_KARG(v_c, n, "v_c");
    FR_KARG(out, n, "out");
    fr_k_cfg_args a = {n, g, v_u, v_c, out};
    FR_LAUNCH(fr_k_cfg, fr_grid_1d(n, FR_K_SAMPLER_BLOCK), fr_dim3_x(FR_K_SAMPLER_BLOCK), a);
}

typedef struct {
    int64_t n;
    float sigma;
    const float *x, *v;
    float *x0;
} fr_k_flow_x0_args;

FR_KERNEL(fr_k_flow_x0, fr_k_flow_x0_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i < a->n) a->x0[i] = fr_flow_x0_elem(a->x[i], a->v[i], a->sigma);
}

static void k_flow_x0(int64_t n, float sigma, const float *x, const float *v, float *x0)
{
    if (n < 1) return;
    FR_KARG(x, n, "x");
    FR_KARG(v, n, "v");
    FR_KARG(x0, n, "x0");
    fr_k_flow_x0_args a = {n, sigma, x, v, x0};
    FR_LAUNCH(fr_k_flow_x0, fr_grid_1d(n, FR_K_SAMPLER_BLOCK), fr_dim3_x(FR_K_SAMPLER_BLOCK), a);
}

/* ---- noise by coordinate ------------------------------------------------------------- */

typedef struct {
    int64_t R, D, n1;
    uint32_t seed, purpose, c0, c2;
    const uint32_t *c1;
    float *out;
} fr_k_normal_rows_args;

FR_KERNEL(fr_k_normal_rows, fr_k_normal_rows_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->D) return;
    const int64_t r = i / a->D, j = i % a->D;
    a->out[i] = fr_rng_normal(a->seed, a->purpose, a->c0, a->c1[r % a->n1], a->c2 + (uint32_t)(r / a->n1),
                              (uint32_t)j);
}

static void k_rng_normal_rows(int64_t R, int64_t D, uint32_t seed, uint32_t purpose, uint32_t c0, int64_t n1,
                              const uint32_t *c1, uint32_t c2, float *out)
{
    if (R < 1 || D < 1) return;
    FR_KARG(c1, n1 < R ? n1 : R, "c1");
    FR_KARG(out, R * D, "out");
    fr_k_normal_rows_args a = {R, D, n1, seed, purpose, c0, c2, c1, out};
    FR_LAUNCH(fr_k_normal_rows, fr_grid_1d(R * D, FR_K_SAMPLER_BLOCK), fr_dim3_x(FR_K_SAMPLER_BLOCK), a);
}

typedef struct {
    int64_t R, n1, D;
    uint32_t seed, purpose, c0, c2;
    const uint32_t *ids;
    const float *x0, *t;
    float *x_t, *eps;
} fr_k_noise_fm_args;

FR_KERNEL(fr_k_noise_fm, fr_k_noise_fm_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->D) return;
    const int64_t r = i / a->D, d = i % a->D, b = r % a->n1;
    fr_noise_coord c;
    c.seed = a->seed;
    c.purpose = a->purpose;
    c.c0 = a->c0;
    c.c2 = a->c2 + (uint32_t)(r / a->n1);
    a->x_t[i] = fr_noise_fm_elem(a->x0[b * a->D + d], a->t[r], c, a->ids[b], (uint32_t)d, a->eps ? &a->eps[i] : NULL);
}

static void k_noise_fm(int64_t R, int64_t n1, int64_t D, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c2,
                       const uint32_t *ids, const float *x0, const float *t, float *x_t, float *eps)
{
    if (R < 1 || D < 1) return;
    FR_KARG(ids, n1 < R ? n1 : R, "ids"); /* rows of ids and x0 read */
    FR_KARG(x0, (n1 < R ? n1 : R) * D, "x0");
    FR_KARG(t, R, "t");
    FR_KARG(x_t, R * D, "x_t");
    FR_KARG_OPT(eps, R * D, "eps");
    fr_k_noise_fm_args a = {R, n1, D, seed, purpose, c0, c2, ids, x0, t, x_t, eps};
    FR_LAUNCH(fr_k_noise_fm, fr_grid_1d(R * D, FR_K_SAMPLER_BLOCK), fr_dim3_x(FR_K_SAMPLER_BLOCK), a);
}

/* ---- row gathers --------------------------------------------------------------------- */

typedef struct {
    int64_t R, D;
    const int32_t *idx;
    const float *src;
    float *dst;
} fr_k_gather_args;

FR_KERNEL(fr_k_gather, fr_k_gather_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->D) return;
    const int64_t r = i / a->D;
    const int32_t s = a->idx[r];
    if (s >= 0) a->dst[i] = a->src[(int64_t)s * a->D + i % a->D];
}

static void k_gather_rows(int64_t R, int64_t D, const int32_t *idx, int64_t n_src, const float *src, float *dst)
{
    if (R < 1 || D < 1) return;
    FR_KARG(idx, R, "idx");
    FR_KARG(src, n_src * D, "src");
    FR_KARG(dst, R * D, "dst");
    fr_k_gather_args a = {R, D, idx, src, dst};
    FR_LAUNCH(fr_k_gather, fr_grid_1d(R * D, FR_K_SAMPLER_BLOCK), fr_dim3_x(FR_K_SAMPLER_BLOCK), a);
}

static void fr_kern_fill_sampler(fr_ops *t)
{
    t->sampler_step = k_sampler_step;
    t->sampler_logprob = k_sampler_logprob;
    t->sampler_logprob_w = k_sampler_logprob_w;
    t->cfg_combine = k_cfg_combine;
    t->flow_x0 = k_flow_x0;
    t->rng_normal_rows = k_rng_normal_rows;
    t->noise_fm = k_noise_fm;
    t->gather_rows = k_gather_rows;
}

#endif
