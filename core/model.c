/* Forward and backward of the residual MLP (flowrl/model.h), written against the op table
 * only: every array is backend memory, every loop over it an op entry. */
#include "flowrl/linear.h"
#include "flowrl/lora.h"
#include "flowrl/model.h"
#include "model_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/dist.h"
#include "core/model_dist.h"

static const float *W(const fr_model *m, int i) { return (const float *)m->w[i].data; }
/* NULL in a LoRA view: the base is frozen, only its adapter's tensors have gradients. */
static float *G(fr_model *m, int i) { return m->lora ? NULL : (float *)m->grads[i].data; }
/* The rank of the adapter m runs (0: none). */
static int64_t lora_rank(const fr_model *m) { return m->lora && m->adapter >= 0 ? m->lora->r : 0; }

fr_status fr_model_ws_alloc(fr_model_ws *ws, const fr_model *m, int64_t cap_B, int keep)
{
    memset(ws, 0, sizeof *ws);
    if (m->cfg.arch == FR_ARCH_DIT) return fr_dit_ws_alloc(ws, m, cap_B, keep);
    const fr_model_config *c = &m->cfg;
    if (cap_B < 1 || cap_B > ((int64_t)1 << 24))
        return fr_fail(FR_ERR_ARG, "model workspace: batch %lld, expected 1..2^24", (long long)cap_B);
    int64_t B = cap_B, D = c->D, H = c->H, F = c->F, E = c->E, nb = c->n_blocks;
    int64_t slots = keep ? nb : 1; /* per-block activations kept for backward */
    int64_t hslots = keep ? nb + 1 : 1;
    int x0 = c->head == FR_HEAD_X0, eps = fr_model_eps_head(c);
    /* the activation's transcendental kept for the backward (issue 15: not computed twice) */
    const int save = keep && c->act != FR_ACT_RELU && c->act != FR_ACT_IDENTITY;
    struct {
        float **p;
        int64_t n;
    } parts[] = {
        {&ws->x, keep ? B * D : 0},
        {&ws->temb_in, B * E},
        {&ws->t1, B * H},
        {&ws->a1, B * H},
        {&ws->h, hslots * B * H},
        {&ws->ln, slots * B * H},
        {&ws->ln_mean, slots * B},
        {&ws->ln_rstd, slots * B},
        {&ws->u, slots * B * F},
        {&ws->a, keep ? slots * B * F : 0}, /* keep = 0: the activation overwrites u */
        {&ws->s1, save ? B * H : 0},
        {&ws->sa, save ? slots * B * F : 0},
        {&ws->lnf, B * H},
        {&ws->lnf_mean, B},
        {&ws->lnf_rstd, B},
        {&ws->tmp, B * H},
        {&ws->dh, keep ? B * H : 0},
        {&ws->dtmp, keep ? B * H : 0},
        {&ws->da, keep ? B * F : 0},
        {&ws->du, keep ? B * F : 0},
        {&ws->xo, x0 ? B * D : 0},
        {&ws->den, x0 && keep ? (eps ? 2 * B : B) : 0},
        {&ws->dxh, eps && keep ? B * D : 0},
        {&ws->lz, lora_rank(m) ? (keep ? m->lora->n_t : 1) * B * lora_rank(m) : 0},
        {&ws->dlz, lora_rank(m) && keep ? B * lora_rank(m) : 0},
    };
    int n_parts = (int)(sizeof parts / sizeof parts[0]);
    int64_t total = 0;
    for (int i = 0; i < n_parts; i++) total += fr_arena_slot(parts[i].n);
    size_t bytes = (size_t)total * sizeof(float) + (size_t)(B * m->cfg.n_slots) * sizeof(int32_t);
    ws->buf = fr_dev_alloc(m->be, bytes); /* zero-filled */
    if (!ws->buf)
        return fr_fail(FR_ERR_NOMEM, "model workspace: cannot allocate %zu bytes", bytes);
    ws->be = m->be;
    float *p = (float *)ws->buf;
    for (int i = 0; i < n_parts; i++) {
        *parts[i].p = parts[i].n ? p : NULL;
        p += fr_arena_slot(parts[i].n);
    }
    if (!keep) ws->a = ws->u;
    ws->c = (int32_t *)p;
    ws->cap_B = cap_B;
    ws->keep = keep;
    ws->D = D, ws->H = H, ws->F = F, ws->E = E, ws->n_blocks = nb;
    ws->lora_r = lora_rank(m);
    return FR_OK;
}

void fr_model_ws_free(fr_model_ws *ws)
{
    if (ws->dit) fr_dit_ws_free(ws);
    if (ws->be) fr_dev_free(ws->be, ws->buf);
    memset(ws, 0, sizeof *ws);
}

static fr_status check_ws(const fr_model *m, const fr_model_ws *ws, int64_t B)
{
    const fr_model_config *c = &m->cfg;
    if (!ws->buf || ws->D != c->D || ws->H != c->H || ws->F != c->F || ws->E != c->E ||
        ws->n_blocks != c->n_blocks || ws->dit || (c->head == FR_HEAD_X0) != (ws->xo != NULL) ||
        (ws->keep && fr_model_eps_head(c) != (ws->dxh != NULL)) || ws->lora_r != lora_rank(m))
        return fr_fail(FR_ERR_ARG, "model workspace was not allocated for this model");
    if (B < 1 || B > ws->cap_B)
        return fr_fail(FR_ERR_ARG, "model forward: batch %lld, workspace holds 1..%lld",
                       (long long)B, (long long)ws->cap_B);
    return FR_OK;
}

/* y (B,N) = z (B,K) W^T + b of the layer whose weight (N,K) is parameter wi and bias wi + 1,
 * with the view's adapter term when it adapts that layer (flowrl/linear.h); its s·z A^T goes
 * to the target's slot of ws->lz. */
static void linear(const fr_model *m, fr_backend *be, fr_model_ws *ws, int64_t B, int64_t N, int64_t K,
                   const float *z, int wi, float *y)
{
    fr_lora_ad ad;
    float *zs = NULL;
    const int on = fr_lora_layer(m, wi, &ad);
    if (on) zs = ws->lz + (ws->keep ? m->lora->tidx[wi] : 0) * B * ad.r;
    fr_linear_fwd(be, B, N, K, z, W(m, wi), W(m, wi + 1), on ? &ad : NULL, zs, y);
}

/* Rows [lo, lo + n) of a forward of B rows, up to the head's linear (into ws->xo for an x0
 * head, else out): every op is row-wise, each array's slots strided by B. */
static void forward_rows(const fr_model *m, fr_backend *be, fr_model_ws *ws, int64_t B, int64_t lo, int64_t n,
                         const float *x, const float *t, const int32_t *c, float *out)
{
    const fr_model_config *cf = &m->cfg;
    const int64_t D = cf->D, H = cf->H, F = cf->F, E = cf->E, nb = cf->n_blocks;
    float *h = ws->h + lo * H; /* slot 0 */
    linear(m, be, ws, n, H, D, x + lo * D, FR_MP_IN_W, h);
    be->ops->temb_sinusoidal(n, E, t + lo, ws->temb_in + lo * E);
    linear(m, be, ws, n, H, E, ws->temb_in + lo * E, FR_MP_T1_W, ws->t1 + lo * H);
    if (ws->s1) be->ops->act_fwd_save(cf->act, n * H, ws->t1 + lo * H, ws->a1 + lo * H, ws->s1 + lo * H);
    else be->ops->act_fwd(cf->act, n * H, ws->t1 + lo * H, ws->a1 + lo * H);
    linear(m, be, ws, n, H, H, ws->a1 + lo * H, FR_MP_T2_W, ws->tmp + lo * H);
    be->ops->binary(FR_BIN_ADD, n * H, h, ws->tmp + lo * H, h);
    be->ops->embed_gather_add(n, cf->n_slots, H, cf->n_cond + 1, W(m, FR_MP_COND), c + lo * cf->n_slots, h);

    for (int64_t k = 0; k < nb; k++) {
        int64_t s = ws->keep ? k : 0;
        float *hk = ws->h + (ws->keep ? k : 0) * B * H + lo * H;
        float *hn = ws->h + (ws->keep ? k + 1 : 0) * B * H + lo * H;
        float *ln = ws->ln + s * B * H + lo * H, *u = ws->u + s * B * F + lo * F, *a = ws->a + s * B * F + lo * F;
        be->ops->layernorm_fwd(n, H, hk, W(m, FR_MP_BLOCK(k, FR_MPB_LN_W)), W(m, FR_MP_BLOCK(k, FR_MPB_LN_B)),
                               cf->ln_eps, ln, ws->ln_mean + s * B + lo, ws->ln_rstd + s * B + lo);
        linear(m, be, ws, n, F, H, ln, FR_MP_BLOCK(k, FR_MPB_FC1_W), u);
        if (ws->sa) be->ops->act_fwd_save(cf->act, n * F, u, a, ws->sa + s * B * F + lo * F);
        else be->ops->act_fwd(cf->act, n * F, u, a);
        linear(m, be, ws, n, H, F, a, FR_MP_BLOCK(k, FR_MPB_FC2_W), ws->tmp + lo * H);
        be->ops->binary(FR_BIN_ADD, n * H, hk, ws->tmp + lo * H, hn);
    }

    const float *hf = ws->h + (ws->keep ? nb : 0) * B * H + lo * H;
    be->ops->layernorm_fwd(n, H, hf, W(m, FR_MP_HEAD(nb, FR_MPH_NORM_W)), W(m, FR_MP_HEAD(nb, FR_MPH_NORM_B)),
                           cf->ln_eps, ws->lnf + lo * H, ws->lnf_mean + lo, ws->lnf_rstd + lo);
    float *y = cf->head == FR_HEAD_X0 ? ws->xo : out;
    const int64_t O = fr_model_out_dim(cf);
    linear(m, be, ws, n, O, H, ws->lnf + lo * H, FR_MP_HEAD(nb, FR_MPH_OUT_W), y + lo * O);
}

/* A split workspace's buffer (outer, B, row_floats) whole on every process (each brought its
 * rows [ws->lo, ws->hi)); FR_OK without a split. */
static fr_status whole(fr_model_ws *ws, float *buf, int64_t outer, int64_t row_floats)
{
    return ws->split ? fr_model_dist_rows(ws->be, FR_OK, buf, outer, ws->B, row_floats) : FR_OK;
}

fr_status fr_model_forward(const fr_model *m, fr_backend *be, fr_model_ws *ws, int64_t B,
                           const float *x,   // (B,D)
                           const float *t,   // (B,)
                           const int32_t *c, // (B,S)
                           float *out)       // (B,D)
{
    if (m->cfg.arch == FR_ARCH_DIT) return fr_dit_forward(m, be, ws, B, x, t, c, out);
    FR_TRY(check_ws(m, ws, B));
    const fr_model_config *cf = &m->cfg;
    int64_t D = cf->D, H = cf->H, F = cf->F, E = cf->E, nb = cf->n_blocks;
    ws->ready = 0;
    ws->B = B;
    be->work.fwd_rows += (uint64_t)B; /* the NFE count (flowrl/backend.h) */

    if (ws->keep) { /* copied first, so that out may alias x */
        be->ops->copy(B * D, x, ws->x);
        FR_TRY(fr_d2d(be, ws->c, c, (size_t)(B * cf->n_slots) * sizeof *c));
    }
    /* the update split by sample over the processes: this one's rows, then what the backward's
     * reductions over rows read (and the output) gathered whole */
    ws->split = ws->keep && m->split_rows && m->dw_parts > 1 && !m->lora;
    ws->lo = 0, ws->hi = B;
    if (ws->split) fr_dist_block(B, 1, m->dw_part, m->dw_parts, &ws->lo, &ws->hi);
    if (ws->hi > ws->lo) forward_rows(m, be, ws, B, ws->lo, ws->hi - ws->lo, x, t, c, out);
    if (ws->split) {
        FR_TRY(whole(ws, ws->h, nb + 1, H));
        FR_TRY(whole(ws, ws->ln, nb, H));
        FR_TRY(whole(ws, ws->ln_mean, nb, 1));
        FR_TRY(whole(ws, ws->ln_rstd, nb, 1));
        FR_TRY(whole(ws, ws->a, nb, F));
        FR_TRY(whole(ws, ws->temb_in, 1, E));
        FR_TRY(whole(ws, ws->a1, 1, H));
        FR_TRY(whole(ws, ws->lnf, 1, H));
        FR_TRY(whole(ws, ws->lnf_mean, 1, 1));
        FR_TRY(whole(ws, ws->lnf_rstd, 1, 1));
        FR_TRY(whole(ws, cf->head == FR_HEAD_X0 ? ws->xo : out, 1, fr_model_out_dim(cf)));
    }
    /* x0 heads: the head row by row over all B rows (out may alias x: each element reads x
     * before writing out) */
    fr_model_head_fwd(m, be, B, t, x, ws->xo, ws->keep ? ws->den : NULL, out);

    ws->ready = ws->keep;
    return FR_OK;
}

int fr_model_dw_split(const fr_model *m, int i)
{
    /* a LoRA view's parameters are its adapter's (not the list below): never split */
    if (m->dw_parts <= 1 || m->lora) return 0;
    if (m->cfg.arch == FR_ARCH_DIT) return fr_dit_dw_split(&m->cfg, i);
    const int nb = (int)m->cfg.n_blocks;
    if (i == FR_MP_IN_W || i == FR_MP_T1_W || i == FR_MP_T2_W || i == FR_MP_HEAD(nb, FR_MPH_OUT_W)) return 1;
    return i >= FR_MP_BLOCK0 && i < FR_MP_HEAD(nb, 0) &&
           ((i - FR_MP_BLOCK0) % 6 == FR_MPB_FC1_W || (i - FR_MP_BLOCK0) % 6 == FR_MPB_FC2_W);
}

/* dW rows [lo, hi) (N, K) += dy[:, lo:hi]^T z: dy's columns gathered into a contiguous
 * (B, hi − lo) block (gather_rows of single floats), then the same gemm as the whole, so each
 * computed output is the same fmaf chain over the B rows. */
fr_status fr_model_dw_rows(fr_backend *be, int64_t B, int64_t N, int64_t K, int64_t lo, int64_t hi, const float *z,
                         const float *dy, float *dw)
{
    const int64_t n = hi - lo;
    if (n <= 0) return FR_OK;
    if (B * N > INT32_MAX) /* gather_rows' indices are int32 */
        return fr_fail(FR_ERR_ARG, "model backward: a split dW of %lld x %lld rows exceeds int32 indices", (long long)B,
                       (long long)N);
    int32_t *idx_h = fr_malloc((size_t)(B * n) * sizeof *idx_h);
    int32_t *idx = fr_dev_i32(be, B * n);
    float *cols = fr_dev_floats(be, B * n);
    fr_status s = idx_h && idx && cols ? FR_OK : fr_fail(FR_ERR_NOMEM, "model backward: no memory for a dW block");
    for (int64_t b = 0; s == FR_OK && b < B; b++)
        for (int64_t j = 0; j < n; j++) idx_h[b * n + j] = (int32_t)(b * N + lo + j);
    if (s == FR_OK) s = fr_h2d(be, idx, idx_h, (size_t)(B * n) * sizeof *idx_h);
    if (s == FR_OK) {
        be->ops->gather_rows(B * n, 1, idx, B * N, dy, cols);
        be->ops->gemm(1, 0, n, K, B, cols, z, dw + lo * K, 1);
    }
    free(idx_h);
    fr_dev_free(be, idx);
    fr_dev_free(be, cols);
    return s;
}

/* Backward of linear() given dy (B,N): dW (N,K) += dy^T z (this process's rows of it when the
 * model's dW is split), db (N,) += rows of dy (not in a LoRA view), the adapter's gradients, and
 * dz (B,K) = dy W (+ the adapter's) unless dz is NULL. A split workspace: z and dy whole, the
 * reductions over all B rows, dz on this process's rows only. */
static fr_status linear_bwd(fr_model *m, fr_backend *be, fr_model_ws *ws, int64_t B, int64_t N, int64_t K,
                            const float *z, int wi, const float *dy, float *dz)
{
    fr_lora_ad ad;
    const float *zs = NULL;
    const int on = fr_lora_layer(m, wi, &ad);
    if (on) zs = ws->lz + m->lora->tidx[wi] * B * ad.r;
    float *dw = G(m, wi);
    if (dw && fr_model_dw_split(m, wi)) {
        int64_t lo, hi;
        fr_dist_block(N, 1, m->dw_part, m->dw_parts, &lo, &hi);
        FR_TRY(fr_model_dw_rows(be, B, N, K, lo, hi, z, dy, dw));
        dw = NULL; /* done: fr_linear_bwd skips the whole dW */
    }
    if (!ws->split) {
        fr_linear_bwd(be, B, N, K, z, W(m, wi), dy, dw, G(m, wi + 1), on ? &ad : NULL, zs, ws->dlz, dz);
        return FR_OK;
    }
    const int64_t lo = ws->lo, n = ws->hi - ws->lo; /* never a LoRA view (ws->split) */
    fr_linear_bwd(be, B, N, K, z, W(m, wi), dy, NULL, G(m, wi + 1), NULL, NULL, NULL, NULL);
    if (dz && n > 0) fr_linear_bwd(be, n, N, K, z + lo * K, W(m, wi), dy + lo * N, NULL, NULL, NULL, NULL, NULL, dz + lo * K);
    return FR_OK;
}

fr_status fr_model_backward(fr_model *m, fr_backend *be, fr_model_ws *ws,
                            const float *dout, // (B,D)
                            float *dx)         // (B,D) or NULL
{
    if (m->cfg.arch == FR_ARCH_DIT) return fr_dit_backward(m, be, ws, dout, dx);
    if (!ws->keep || !ws->ready)
        return fr_fail(FR_ERR_ARG, "model backward: no forward with stored activations "
                                   "(allocate the workspace with keep = 1)");
    int64_t B = ws->B;
    FR_TRY(check_ws(m, ws, B));
    const fr_model_config *cf = &m->cfg;
    int64_t D = cf->D, H = cf->H, F = cf->F, E = cf->E, nb = cf->n_blocks;
    /* a split workspace: the element-wise steps on this process's rows [lo, lo + n), each input
     * gradient made whole (whole()) before a reduction over rows reads it */
    const int64_t lo = ws->lo, n = ws->hi - ws->lo;
    float *dh = ws->dh, *dtmp = ws->dtmp;
    be->work.bwd_rows += (uint64_t)B;

    /* x0 head (all B rows: dout is whole): v = (x − x̂0)/d, so dL/dx̂0 = −dv/d (into the x̂0
     * scratch) and dL/dx gains +dv/d (added at the end). */
    const float *dy = fr_model_head_bwd(m, be, B, ws->den, dout, ws->xo, ws->dxh, dx != NULL);
    /* Head: o = LN_f(h_nb) W_out^T + b_out. */
    FR_TRY(linear_bwd(m, be, ws, B, fr_model_out_dim(cf), H, ws->lnf, FR_MP_HEAD(nb, FR_MPH_OUT_W), dy, dtmp));
    FR_TRY(whole(ws, dtmp, 1, H));
    /* The layer-norm op accumulates dx, dgamma, dbeta together over all B rows (so dh is
     * whole after it); start dh at 0. */
    be->ops->fill(B * H, 0.0f, dh);
    be->ops->layernorm_bwd(B, H, ws->h + nb * B * H, W(m, FR_MP_HEAD(nb, FR_MPH_NORM_W)),
                       ws->lnf_mean, ws->lnf_rstd, dtmp, dh, G(m, FR_MP_HEAD(nb, FR_MPH_NORM_W)),
                       G(m, FR_MP_HEAD(nb, FR_MPH_NORM_B)), 1);

    /* Blocks in reverse: h_{k+1} = h_k + fc2(act(fc1(LN(h_k)))); dh carries dL/dh_{k+1} in
     * and dL/dh_k out (the identity path plus the LN's dx, accumulated by the op). */
    for (int64_t k = nb - 1; k >= 0; k--) {
        const float *hk = ws->h + k * B * H, *ln = ws->ln + k * B * H;
        const float *u = ws->u + k * B * F, *a = ws->a + k * B * F;
        FR_TRY(linear_bwd(m, be, ws, B, H, F, a, FR_MP_BLOCK(k, FR_MPB_FC2_W), dh, ws->da));
        if (ws->sa)
            be->ops->act_bwd_saved(cf->act, n * F, u + lo * F, ws->sa + k * B * F + lo * F, ws->da + lo * F,
                                   ws->du + lo * F, 0);
        else be->ops->act_bwd(cf->act, n * F, u + lo * F, ws->da + lo * F, ws->du + lo * F, 0);
        FR_TRY(whole(ws, ws->du, 1, F));
        FR_TRY(linear_bwd(m, be, ws, B, F, H, ln, FR_MP_BLOCK(k, FR_MPB_FC1_W), ws->du, dtmp));
        FR_TRY(whole(ws, dtmp, 1, H));
        be->ops->layernorm_bwd(B, H, hk, W(m, FR_MP_BLOCK(k, FR_MPB_LN_W)), ws->ln_mean + k * B,
                           ws->ln_rstd + k * B, dtmp, dh, G(m, FR_MP_BLOCK(k, FR_MPB_LN_W)),
                           G(m, FR_MP_BLOCK(k, FR_MPB_LN_B)), 1);
    }

    /* h_0 = (x W_in^T + b_in) + temb + table[c]: dh reaches all three unchanged. */
    if (G(m, FR_MP_COND)) be->ops->embed_scatter_add(B, cf->n_slots, H, cf->n_cond + 1, ws->c, dh, G(m, FR_MP_COND));
    /* the time MLP has gradients unless a LoRA view adapts neither of its layers */
    if (!m->lora || m->lora->tidx[FR_MP_T1_W] >= 0 || m->lora->tidx[FR_MP_T2_W] >= 0) {
        FR_TRY(linear_bwd(m, be, ws, B, H, H, ws->a1, FR_MP_T2_W, dh, dtmp));
        if (ws->s1)
            be->ops->act_bwd_saved(cf->act, n * H, ws->t1 + lo * H, ws->s1 + lo * H, dtmp + lo * H, ws->tmp + lo * H, 0);
        else be->ops->act_bwd(cf->act, n * H, ws->t1 + lo * H, dtmp + lo * H, ws->tmp + lo * H, 0);
        FR_TRY(whole(ws, ws->tmp, 1, H));
        FR_TRY(linear_bwd(m, be, ws, B, H, E, ws->temb_in, FR_MP_T1_W, ws->tmp, NULL));
    }
    FR_TRY(linear_bwd(m, be, ws, B, H, D, ws->x, FR_MP_IN_W, dh, dx));
    if (dx) FR_TRY(whole(ws, dx, 1, D));
    if (dx) fr_model_head_dx(m, be, B, ws->xo, ws->dxh, dx);
    return FR_OK;
}

void fr_model_head_fwd(const fr_model *m, fr_backend *be, int64_t B, const float *t, const float *x,
                       const float *xo, float *den, float *out)
{
    const fr_model_config *cf = &m->cfg;
    if (fr_model_eps_head(cf)) /* ε̂ = (x − √ᾱ_t·x̂0) / s_t, the row's a, s kept in den */
        be->ops->eps_head_fwd(B, cf->D, cf->n_train, m->head_tab, t, x, xo, den, out);
    else if (cf->head == FR_HEAD_X0) /* v = (x − x̂0) / max(σ, σ_min) */
        be->ops->x0_head_fwd(B, cf->D, cf->sigma_min, t, x, xo, den, out);
}

const float *fr_model_head_bwd(const fr_model *m, fr_backend *be, int64_t B, const float *den, const float *dout,
                               float *xo, float *dxh, int want_dx)
{
    const fr_model_config *cf = &m->cfg;
    /* x0 head: v = (x − x̂0)/d, so dL/dx̂0 = −dv/d (into the x̂0 scratch) and dL/dx gains
     * +dv/d (fr_model_head_dx). ε̂ = (x − a·x̂0)/s: dL/dx̂0 = −dε̂·a/s, dL/dx gains dε̂/s. */
    if (fr_model_eps_head(cf))
        be->ops->eps_head_bwd(B, cf->D, den, dout, xo, want_dx ? dxh : NULL);
    else if (cf->head == FR_HEAD_X0)
        be->ops->x0_head_bwd(B, cf->D, den, dout, xo);
    else
        return dout;
    return xo;
}

void fr_model_head_dx(const fr_model *m, fr_backend *be, int64_t B, const float *xo, const float *dxh, float *dx)
{
    const fr_model_config *cf = &m->cfg;
    /* + dv/d, as − (−dv/d): the same bits (IEEE a − b = a + (−b)), and dx may alias dout */
    if (fr_model_eps_head(cf))
        be->ops->binary(FR_BIN_ADD, B * cf->D, dx, dxh, dx);
    else if (cf->head == FR_HEAD_X0)
        be->ops->binary(FR_BIN_SUB, B * cf->D, dx, xo, dx);
}
