/* Row-parallel opt entries (issue 15: the profile of an epoch put them at a fifth of it, on one
 * thread in ref). noise_fm draws its normals a row at a time (fr_rng_fill_normal) instead of a
 * Philox block and a Box-Muller per element. Each other op below computes every output row from that row's inputs only, so opt
 * runs ref's own entry on contiguous blocks of rows, on the pool's threads: the same element
 * functions in the same order per row, the same bits for any split (docs/determinism.md).
 * The trajectory objectives' rows (row_sumsq_diff, kl_grad, logp_backward) are in
 * opt/opt_traj_rows.c. */
#include "opt/opt_internal.h"

#include <stdlib.h>
#include <string.h>

#include "flowrl/embed.h"
#include "flowrl/grpo_elem.h"
#include "flowrl/model_elem.h"
#include "flowrl/noising.h"
#include "flowrl/philox.h"
#include "flowrl/reduce.h"
#include "flowrl/ref_backend.h"
#include "flowrl/sampler_elem.h"
#include "opt/opt_vtrig.h"

/* ref's entries, the fallbacks of the row ops (small or odd shapes), filled by fr_opt_rows_fill. */
static fr_ops g_ref;


#define ROW(p, b, D) ((p) ? (p) + (b) * (D) : NULL)

/* ---- rng_normal_rows -------------------------------------------------------------------- */

#if FR_OPT_X86
FR_AVX2 static void fill_normal_avx2(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1,
                                     uint32_t c2)
{
    fr_v_fill_normal_row(out, n, seed, purpose, c0, c1, c2);
}
#endif

/* fr_rng_fill_normal's row: eight Philox blocks at a time on AVX2 (opt/opt_vtrig.h), else (no
 * AVX2, FLOWRL_OPT_NO_SIMD) the scalar row; the same bits. */
static void fill_normal(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1,
                        uint32_t c2)
{
#if FR_OPT_X86
    if (fr_opt_avx2) {
        fill_normal_avx2(out, n, seed, purpose, c0, c1, c2);
        return;
    }
#endif
    fr_rng_fill_normal_scalar(out, n, seed, purpose, c0, c1, c2);
}

typedef struct {
    int64_t D, n1;
    uint32_t seed, purpose, c0, c2;
    const uint32_t *c1;
    float *out;
} rng_job;

static void rng_part(void *ctx, int64_t b, int64_t e)
{
    const rng_job *j = (const rng_job *)ctx;
    for (int64_t r = b; r < e; r++)
        fill_normal(j->out + r * j->D, j->D, j->seed, j->purpose, j->c0, j->c1[r % j->n1],
                    j->c2 + (uint32_t)(r / j->n1));
}

static void opt_rng_normal_rows(int64_t R, int64_t D, uint32_t seed, uint32_t purpose, uint32_t c0, int64_t n1,
                                const uint32_t *c1, uint32_t c2, float *out)
{
    rng_job j = {D, n1, seed, purpose, c0, c2, c1, out};
    fr_opt_parallel_range(R, 1, (FR_OPT_ROW_MIN_ELEMS / 8 + D - 1) / (D > 0 ? D : 1), rng_part, &j); /* ~8x the work */
}

/* ---- the flow-matching forward process ---------------------------------------------------- */

typedef struct {
    int64_t n1, D;
    uint32_t seed, purpose, c0, c2;
    const uint32_t *ids;
    const float *x0, *t;
    float *xt, *eps;
} fm_job;

/* fr_noise_fm_elem per element, its normals drawn a row at a time (fr_rng_fill_normal's element d
 * is fr_rng_normal(..., d): the same ε, so the same bits). */
static void fm_part(void *ctx, int64_t b, int64_t e)
{
    const fm_job *j = (const fm_job *)ctx;
    const int64_t D = j->D;
    float *own = j->eps ? NULL : malloc(sizeof(float) * (size_t)D);
    for (int64_t r = b; r < e; r++) {
        const int64_t s = r % j->n1;
        float *eps = j->eps ? j->eps + r * D : own;
        if (!eps) { /* out of memory for a row of scratch: the element function draws it itself */
            const fr_noise_coord k = {j->seed, j->purpose, j->c0, j->c2 + (uint32_t)(r / j->n1)};
            for (int64_t d = 0; d < D; d++)
                j->xt[r * D + d] = fr_noise_fm_elem(j->x0[s * D + d], j->t[r], k, j->ids[s], (uint32_t)d, NULL);
            continue;
        }
        fill_normal(eps, D, j->seed, j->purpose, j->c0, j->ids[s], j->c2 + (uint32_t)(r / j->n1));
        for (int64_t d = 0; d < D; d++) j->xt[r * D + d] = fr_flow_noised_elem(j->x0[s * D + d], eps[d], j->t[r]);
    }
    free(own);
}

static void opt_noise_fm(int64_t R, int64_t n1, int64_t D, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c2,
                         const uint32_t *ids, const float *x0, const float *t, float *x_t, float *eps)
{
    fm_job j = {n1, D, seed, purpose, c0, c2, ids, x0, t, x_t, eps};
    fr_opt_parallel_range(R, 1, (FR_OPT_ROW_MIN_ELEMS / 8 + D - 1) / (D > 0 ? D : 1), fm_part, &j);
}

/* ---- the sampler's step and log-prob ------------------------------------------------------ */

typedef struct {
    int64_t D;
    fr_step_coef q;
    const float *x, *mo, *x0p, *xi, *xn_in, *mean_in;
    float *xn, *mean, *logp;
} step_job;

#if FR_OPT_X86
/* Rows [b, e) of the SDE and ODE steps (Flow-GRPO's) eight elements at a time: element k of a row
 * in lane k mod 8, the lanes of the canonical log-prob sum (flowrl/reduce.h), each lane fed in
 * ref's order; per element the operations of fr_step_mean_elem, fr_noise_add_elem and
 * fr_gauss_logp_elem. log: 0 = sampler_step (μ from x and v, x' = μ + std·ξ), 1 = sampler_logprob
 * (μ = mean_in or from x and v; x' given). */
FR_AVX2 static void step_rows_avx2(const step_job *j, int log, int64_t b, int64_t e)
{
    const fr_step_coef *q = &j->q;
    const int64_t D = j->D;
    const int sde = q->kind == FR_SAMPLER_SDE;
    const __m256 cx = _mm256_set1_ps(q->sde.cx), cv = _mm256_set1_ps(q->sde.cv), sdt = _mm256_set1_ps(q->sde.dt);
    const __m256 odt = _mm256_set1_ps(q->dt), sd = _mm256_set1_ps(q->std);
    const __m256 tv = _mm256_set1_ps(q->gauss.two_var), ls = _mm256_set1_ps(q->gauss.log_std);
    const __m256 l2 = _mm256_set1_ps(q->gauss.log_sqrt_2pi);
    const float *mean_in = log ? j->mean_in : NULL, *xi = log ? NULL : j->xi;
    float *mean_out = j->mean, *logp = j->logp;
    for (int64_t r = b; r < e; r++) {
        __m256 L = _mm256_setzero_ps();
        int64_t i = r * D;
        const int64_t end = (r + 1) * D;
        for (; i + 8 <= end; i += 8) {
            __m256 mu;
            if (mean_in)
                mu = _mm256_loadu_ps(mean_in + i);
            else {
                __m256 x = _mm256_loadu_ps(j->x + i), v = _mm256_loadu_ps(j->mo + i);
                mu = sde ? _mm256_add_ps(_mm256_mul_ps(x, cx), _mm256_mul_ps(_mm256_mul_ps(v, cv), sdt))
                         : _mm256_add_ps(x, _mm256_mul_ps(v, odt));
            }
            __m256 xn;
            if (log)
                xn = _mm256_loadu_ps(j->xn_in + i);
            else {
                xn = xi ? _mm256_add_ps(mu, _mm256_mul_ps(sd, _mm256_loadu_ps(xi + i))) : mu;
                _mm256_storeu_ps(j->xn + i, xn);
            }
            if (mean_out) _mm256_storeu_ps(mean_out + i, mu);
            if (logp) {
                __m256 d = _mm256_sub_ps(xn, mu);
                __m256 t = _mm256_div_ps(fr_v_neg(_mm256_mul_ps(d, d)), tv);
                L = _mm256_add_ps(L, _mm256_sub_ps(_mm256_sub_ps(t, ls), l2));
            }
        }
        float l[FR_LANES];
        _mm256_storeu_ps(l, L);
        for (; i < end; i++) {
            float mu = mean_in ? mean_in[i] : fr_step_mean_elem(q, j->x[i], j->mo[i], 0.0f);
            float xn;
            if (log)
                xn = j->xn_in[i];
            else {
                xn = xi ? fr_noise_add_elem(mu, q->std, xi[i]) : mu;
                j->xn[i] = xn;
            }
            if (mean_out) mean_out[i] = mu;
            if (logp) l[(i - r * D) % FR_LANES] += fr_step_logp_elem(q, xn, mu);
        }
        if (logp) logp[r] = fr_lanes_tree(l) / (float)D;
    }
}
#endif

/* The kinds step_rows_avx2 runs: SDE and ODE (their means read neither x0_prev nor more). */
static inline int step_vec(const step_job *j)
{
#if FR_OPT_X86
    return fr_opt_avx2 && (j->q.kind == FR_SAMPLER_SDE || j->q.kind == FR_SAMPLER_ODE);
#else
    (void)j;
    return 0;
#endif
}

static void step_part(void *ctx, int64_t b, int64_t e)
{
    const step_job *j = (const step_job *)ctx;
    const int64_t D = j->D;
#if FR_OPT_X86
    if (step_vec(j)) {
        step_rows_avx2(j, 0, b, e);
        return;
    }
#endif
    g_ref.sampler_step(e - b, D, j->q, j->x + b * D, j->mo + b * D, ROW(j->x0p, b, D), ROW(j->xi, b, D),
                       j->xn + b * D, ROW(j->mean, b, D), j->logp ? j->logp + b : NULL);
}

static void opt_sampler_step(int64_t B, int64_t D, fr_step_coef q, const float *x, const float *mo,
                             const float *x0p, const float *xi, float *xn, float *mean, float *logp)
{
    step_job j = {D, q, x, mo, x0p, xi, NULL, NULL, xn, mean, logp};
    fr_opt_parallel_range(B, 1, fr_opt_min_rows(D), step_part, &j);
}

static void logprob_part(void *ctx, int64_t b, int64_t e)
{
    const step_job *j = (const step_job *)ctx;
    const int64_t D = j->D;
#if FR_OPT_X86
    if (step_vec(j)) {
        step_rows_avx2(j, 1, b, e);
        return;
    }
#endif
    g_ref.sampler_logprob(e - b, D, j->q, ROW(j->x, b, D), ROW(j->mo, b, D), ROW(j->x0p, b, D), j->xn_in + b * D,
                          ROW(j->mean_in, b, D), ROW(j->mean, b, D), j->logp + b);
}

static void opt_sampler_logprob(int64_t B, int64_t D, fr_step_coef q, const float *x, const float *mo,
                                const float *x0p, const float *xn, const float *mean_in, float *mean_out, float *logp)
{
    step_job j = {D, q, x, mo, x0p, NULL, xn, mean_in, NULL, mean_out, logp};
    fr_opt_parallel_range(B, 1, fr_opt_min_rows(D), logprob_part, &j);
}

/* ---- the model's time embedding, condition rows and x0 head ------------------------------ */

typedef struct {
    int64_t B, D, S, n;
    float sm;
    const float *t, *x, *xo, *table, *freq;
    const int32_t *c;
    float *den, *out;
} model_job;

#if FR_OPT_X86
/* fr_temb_elem of rows [b, e): f_k from the table (fr_temb_freq's bits), arg = t f_k, and one
 * sincos of arg for both emb[k] = cos and emb[half + k] = sin. */
FR_AVX2 static void temb_rows_avx2(const model_job *j, int64_t b, int64_t e)
{
    const int64_t E = j->D, half = E / 2;
    for (int64_t r = b; r < e; r++) {
        float *row = j->out + r * E;
        const __m256 tv = _mm256_set1_ps(j->t[r]);
        __m256 sn, cs;
        int64_t k = 0;
        for (; k + 8 <= half; k += 8) {
            fr_v_sincosf(_mm256_mul_ps(tv, _mm256_loadu_ps(j->freq + k)), &sn, &cs);
            _mm256_storeu_ps(row + k, cs);
            _mm256_storeu_ps(row + half + k, sn);
        }
        if (k < half) {
            float f[8] = {0}, sb[8], cb[8];
            memcpy(f, j->freq + k, sizeof(float) * (size_t)(half - k));
            fr_v_sincosf(_mm256_mul_ps(tv, _mm256_loadu_ps(f)), &sn, &cs);
            _mm256_storeu_ps(sb, sn);
            _mm256_storeu_ps(cb, cs);
            memcpy(row + k, cb, sizeof(float) * (size_t)(half - k));
            memcpy(row + half + k, sb, sizeof(float) * (size_t)(half - k));
        }
        if (E & 1) row[E - 1] = fr_temb_elem(j->t[r], E - 1, half);
    }
}
#endif

static void temb_part(void *ctx, int64_t b, int64_t e)
{
    const model_job *j = (const model_job *)ctx;
#if FR_OPT_X86
    if (j->freq) {
        temb_rows_avx2(j, b, e);
        return;
    }
#endif
    g_ref.temb_sinusoidal(e - b, j->D, j->t + b, j->out + b * j->D);
}

static void opt_temb(int64_t B, int64_t E, const float *t, float *emb)
{
    model_job j = {.D = E, .t = t, .out = emb};
    const int64_t half = E / 2;
    float *freq = NULL;
    if (fr_opt_avx2 && half > 0 && (freq = malloc(sizeof(float) * (size_t)half)) != NULL) /* else ref's rows */
        for (int64_t k = 0; k < half; k++) freq[k] = fr_temb_freq(k, half);
    j.freq = freq;
    fr_opt_parallel_range(B, 1, fr_opt_min_rows(E), temb_part, &j);
    free(freq);
}

#if FR_OPT_X86
/* Rows [b, e) of embed_gather_add and x0_head_fwd eight columns at a time: per element the one
 * add of fr_embed_elem's row (NaN for an id outside the table) and the subtraction and division of
 * fr_x0_head_velocity, in ref's order over s. */
FR_AVX2 static void gather_rows_avx2(const model_job *j, int64_t b, int64_t e)
{
    const int64_t H = j->D;
    for (int64_t r = b; r < e; r++)
        for (int64_t s = 0; s < j->S; s++) {
            const int32_t id = j->c[r * j->S + s];
            float *h = j->out + r * H;
            int64_t k = 0;
            if (id >= 0 && id < j->n) {
                const float *row = j->table + (int64_t)id * H;
                for (; k + 8 <= H; k += 8)
                    _mm256_storeu_ps(h + k, _mm256_add_ps(_mm256_loadu_ps(h + k), _mm256_loadu_ps(row + k)));
            }
            for (; k < H; k++) h[k] = h[k] + fr_embed_elem(j->table, j->n, H, id, k);
        }
}

FR_AVX2 static void x0_rows_avx2(const model_job *j, int64_t b, int64_t e)
{
    const int64_t D = j->D;
    for (int64_t r = b; r < e; r++) {
        const float d = fr_x0_head_denom(j->t[r], j->sm);
        if (j->den) j->den[r] = d;
        const __m256 dv = _mm256_set1_ps(d);
        int64_t i = r * D;
        for (; i + 8 <= (r + 1) * D; i += 8)
            _mm256_storeu_ps(j->out + i,
                             _mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(j->x + i), _mm256_loadu_ps(j->xo + i)), dv));
        for (; i < (r + 1) * D; i++) j->out[i] = fr_x0_head_velocity(j->x[i], j->xo[i], d);
    }
}
#endif

static void gather_part(void *ctx, int64_t b, int64_t e)
{
    const model_job *j = (const model_job *)ctx;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        gather_rows_avx2(j, b, e);
        return;
    }
#endif
    g_ref.embed_gather_add(e - b, j->S, j->D, j->n, j->table, j->c + b * j->S, j->out + b * j->D);
}

static void opt_embed_gather_add(int64_t B, int64_t S, int64_t H, int64_t n_rows, const float *table,
                                 const int32_t *c, float *h)
{
    model_job j = {.D = H, .S = S, .n = n_rows, .table = table, .c = c, .out = h};
    fr_opt_parallel_range(B, 1, fr_opt_min_rows(H * (S > 0 ? S : 1)), gather_part, &j);
}

static void x0_part(void *ctx, int64_t b, int64_t e)
{
    const model_job *j = (const model_job *)ctx;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        x0_rows_avx2(j, b, e);
        return;
    }
#endif
    g_ref.x0_head_fwd(e - b, j->D, j->sm, j->t + b, j->x + b * j->D, j->xo + b * j->D, j->den ? j->den + b : NULL,
                      j->out + b * j->D);
}

static void opt_x0_head_fwd(int64_t B, int64_t D, float sm, const float *t, const float *x, const float *xo,
                            float *den, float *out)
{
    model_job j = {.D = D, .sm = sm, .t = t, .x = x, .xo = xo, .den = den, .out = out};
    fr_opt_parallel_range(B, 1, fr_opt_min_rows(D), x0_part, &j);
}

/* x0_head_bwd, rows [b, e): dxo = -(dout / den[b]) (fr_x0_head_grad_x0; the negation is exact);
 * dxo may alias dout. */
typedef struct {
    int64_t D;
    const float *den, *dout;
    float *dxo;
} x0_bwd_job;

#if FR_OPT_X86
FR_AVX2 static void x0_bwd_rows_avx2(const x0_bwd_job *j, int64_t b, int64_t e)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t r = b; r < e; r++) {
        const float d = j->den[r];
        const __m256 dv = _mm256_set1_ps(d);
        int64_t i = r * j->D;
        for (; i + 8 <= (r + 1) * j->D; i += 8)
            _mm256_storeu_ps(j->dxo + i, _mm256_xor_ps(_mm256_div_ps(_mm256_loadu_ps(j->dout + i), dv), sign));
        for (; i < (r + 1) * j->D; i++) j->dxo[i] = fr_x0_head_grad_x0(j->dout[i], d);
    }
}
#endif

static void x0_bwd_part(void *ctx, int64_t b, int64_t e)
{
    const x0_bwd_job *j = (const x0_bwd_job *)ctx;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        x0_bwd_rows_avx2(j, b, e);
        return;
    }
#endif
    g_ref.x0_head_bwd(e - b, j->D, j->den + b, j->dout + b * j->D, j->dxo + b * j->D);
}

static void opt_x0_head_bwd(int64_t B, int64_t D, const float *den, const float *dout, float *dxo)
{
    x0_bwd_job j = {D, den, dout, dxo};
    fr_opt_parallel_range(B, 1, fr_opt_min_rows(D), x0_bwd_part, &j);
}

/* embed_scatter_add: dtable row c[b, s] += dh row b for (b, s) in ascending order, so each
 * element (r, j) continues its chain of plain adds in ref's order; threads own column
 * blocks [j0, j1) of every row (a column's chain never leaves its thread). */
typedef struct {
    int64_t B, S, H, n;
    const int32_t *c;
    const float *dh;
    float *dtable;
} scatter_job;

#if FR_OPT_X86
FR_AVX2 static void scatter_cols_avx2(const scatter_job *j, int64_t j0, int64_t j1)
{
    for (int64_t b = 0; b < j->B; b++)
        for (int64_t s = 0; s < j->S; s++) {
            const int32_t id = j->c[b * j->S + s];
            if (id < 0 || id >= j->n) continue;
            float *row = j->dtable + (int64_t)id * j->H;
            const float *g = j->dh + b * j->H;
            int64_t k = j0;
            for (; k + 8 <= j1; k += 8)
                _mm256_storeu_ps(row + k, _mm256_add_ps(_mm256_loadu_ps(row + k), _mm256_loadu_ps(g + k)));
            for (; k < j1; k++) row[k] = row[k] + g[k];
        }
}
#endif

static void scatter_part(void *ctx, int64_t j0, int64_t j1)
{
    const scatter_job *j = (const scatter_job *)ctx;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        scatter_cols_avx2(j, j0, j1);
        return;
    }
#endif
    for (int64_t b = 0; b < j->B; b++)
        for (int64_t s = 0; s < j->S; s++) {
            const int32_t id = j->c[b * j->S + s];
            if (id < 0 || id >= j->n) continue;
            float *row = j->dtable + (int64_t)id * j->H;
            for (int64_t k = j0; k < j1; k++) row[k] = row[k] + j->dh[b * j->H + k];
        }
}

static void opt_embed_scatter_add(int64_t B, int64_t S, int64_t H, int64_t n_rows, const int32_t *c, const float *dh,
                                  float *dtable)
{
    scatter_job j = {B, S, H, n_rows, c, dh, dtable};
    const int64_t work = B * (S > 0 ? S : 1); /* rows added per column */
    fr_opt_parallel_range(H, 8, 4 * (FR_OPT_ROW_MIN_ELEMS / (work > 0 ? work : 1) + 1), scatter_part, &j);
}

/* ---- gather_rows ---------------------------------------------------------------------------- */

typedef struct {
    int64_t D;
    const int32_t *idx;
    const float *src;
    float *dst;
} gather_job;

/* ref's element copies as one memcpy a row (src and dst never overlap: flowrl/ops.h): the same bits. */
static void gather_rows_part(void *ctx, int64_t b, int64_t e)
{
    const gather_job *j = (const gather_job *)ctx;
    for (int64_t r = b; r < e; r++)
        if (j->idx[r] >= 0)
            memcpy(j->dst + r * j->D, j->src + (int64_t)j->idx[r] * j->D, sizeof(float) * (size_t)j->D);
}

static void opt_gather_rows(int64_t R, int64_t D, const int32_t *idx, int64_t n_src, const float *src, float *dst)
{
    (void)n_src;
    gather_job j = {D, idx, src, dst};
    fr_opt_parallel_range(R, 1, 4 * fr_opt_min_rows(D), gather_rows_part, &j); /* a copy: 4x the elements per part */
}

void fr_opt_rows_fill(fr_ops *ops)
{
    /* from ref itself, not from *ops: a second fr_opt_init over a table that already holds
     * opt's entries would otherwise take them as the fallbacks (a row op calling itself) */
    fr_ref_fill(&g_ref);
    ops->rng_normal_rows = opt_rng_normal_rows;
    ops->noise_fm = opt_noise_fm;
    ops->sampler_step = opt_sampler_step;
    ops->sampler_logprob = opt_sampler_logprob;
    ops->temb_sinusoidal = opt_temb;
    ops->embed_gather_add = opt_embed_gather_add;
    ops->x0_head_fwd = opt_x0_head_fwd;
    ops->x0_head_bwd = opt_x0_head_bwd;
    ops->embed_scatter_add = opt_embed_scatter_add;
    ops->gather_rows = opt_gather_rows;
}
