/* Kernels of the DiT's softmax and adaLN entries (flowrl/ops.h, "model" section;
 * ref/ref_attn.c is the definition). A softmax row, and a (sample, channel) column of the
 * backward reductions over tokens, is one thread running the row / column function of
 * flowrl/attn_elem.h, so the canonical orders hold by construction; the elementwise
 * forwards are one thread per element. */
#ifndef FLOWRL_KERN_K_ATTN_H
#define FLOWRL_KERN_K_ATTN_H

#include "flowrl/attn_elem.h"
#include "flowrl/kernel.h"
#include "flowrl/ops.h"

#define FR_K_ATTN_THREADS 128

typedef struct {
    int64_t R, N, L, H, ldm;
    float alpha;
    const float *x, *a, *b, *dy; /* per entry, as in opt/opt_attn.c */
    float *y, *d1, *d2;
} fr_k_attn_args;

/* ---- softmax: thread r of R rows ---- */

FR_KERNEL(fr_k_softmax, fr_k_attn_args)
{
    const int64_t r = fr_kidx_global_x(k);
    if (r >= a->R) return;
    fr_softmax_row(a->x + r * a->N, a->N, a->alpha, a->y + r * a->N);
}

static void k_softmax_rows(int64_t R, int64_t N, float alpha, const float *x, float *p)
{
    if (R <= 0 || N <= 0) return;
    FR_KARG(x, R * N, "x");
    FR_KARG(p, R * N, "p");
    fr_k_attn_args a = {R, N, 0, 0, 0, alpha, x, NULL, NULL, NULL, p, NULL, NULL};
    FR_LAUNCH(fr_k_softmax, fr_grid_1d(R, FR_K_ATTN_THREADS), fr_dim3_x(FR_K_ATTN_THREADS), a);
}

FR_KERNEL(fr_k_softmax_bwd, fr_k_attn_args)
{
    const int64_t r = fr_kidx_global_x(k);
    if (r >= a->R) return;
    fr_softmax_bwd_row(a->x + r * a->N, a->dy + r * a->N, a->N, a->alpha, a->y + r * a->N);
}

static void k_softmax_rows_bwd(int64_t R, int64_t N, float alpha, const float *p, const float *dp, float *dx)
{
    if (R <= 0 || N <= 0) return;
    FR_KARG(p, R * N, "p");
    FR_KARG(dp, R * N, "dp");
    FR_KARG(dx, R * N, "dx");
    fr_k_attn_args a = {R, N, 0, 0, 0, alpha, p, NULL, NULL, dp, dx, NULL, NULL};
    FR_LAUNCH(fr_k_softmax_bwd, fr_grid_1d(R, FR_K_ATTN_THREADS), fr_dim3_x(FR_K_ATTN_THREADS), a);
}

/* ---- modulate / gate forward: thread i of (B,L,H); a = shift or gate, b = scale or y ---- */

FR_KERNEL(fr_k_adaln_mod, fr_k_attn_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->H) return;
    const int64_t m = (i / (a->L * a->H)) * a->ldm + i % a->H;
    a->y[i] = fr_adaln_mod_elem(a->x[i], a->a[m], a->b[m]);
}

/* The extent of a strided (B, ·) view with rows of H at b·ldm. */
static inline int64_t k_attn_rows_extent(int64_t B, int64_t H, int64_t ldm) { return (B - 1) * ldm + H; }

static void k_adaln_mod(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *x, const float *shift,
                        const float *scale, float *y)
{
    if (B <= 0 || L <= 0 || H <= 0) return;
    FR_KARG(x, B * L * H, "x");
    FR_KARG(shift, k_attn_rows_extent(B, H, ldm), "shift");
    FR_KARG(scale, k_attn_rows_extent(B, H, ldm), "scale");
    FR_KARG(y, B * L * H, "y");
    fr_k_attn_args a = {B * L, 0, L, H, ldm, 0.0f, x, shift, scale, NULL, y, NULL, NULL};
    FR_LAUNCH(fr_k_adaln_mod, fr_grid_1d(B * L * H, FR_K_ATTN_THREADS), fr_dim3_x(FR_K_ATTN_THREADS), a);
}

FR_KERNEL(fr_k_gate_add, fr_k_attn_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->H) return;
    const int64_t m = (i / (a->L * a->H)) * a->ldm + i % a->H;
    a->y[i] = fr_gate_elem(a->x[i], a->a[m], a->b[i]);
}

static void k_gate_add(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *h, const float *gate,
                       const float *y, float *out)
{
    if (B <= 0 || L <= 0 || H <= 0) return;
    FR_KARG(h, B * L * H, "h");
    FR_KARG(gate, k_attn_rows_extent(B, H, ldm), "gate");
    FR_KARG(y, B * L * H, "y");
    FR_KARG(out, B * L * H, "out");
    fr_k_attn_args a = {B * L, 0, L, H, ldm, 0.0f, h, gate, y, NULL, out, NULL, NULL};
    FR_LAUNCH(fr_k_gate_add, fr_grid_1d(B * L * H, FR_K_ATTN_THREADS), fr_dim3_x(FR_K_ATTN_THREADS), a);
}

/* ---- backward: thread (b, j), R = B columns of H ---- */

FR_KERNEL(fr_k_adaln_mod_bwd, fr_k_attn_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->H) return;
    const int64_t b = i / a->H, j = i % a->H, o = b * a->L * a->H + j, m = b * a->ldm + j;
    fr_adaln_mod_bwd_col(a->L, a->H, a->x + o, a->a[m], a->dy + o, a->y + o, a->d1 + m, a->d2 + m);
}

static void k_adaln_mod_bwd(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *x, const float *scale,
                            const float *dy, float *dx, float *dshift, float *dscale)
{
    if (B <= 0 || L <= 0 || H <= 0) return;
    FR_KARG(x, B * L * H, "x");
    FR_KARG(scale, k_attn_rows_extent(B, H, ldm), "scale");
    FR_KARG(dy, B * L * H, "dy");
    FR_KARG(dx, B * L * H, "dx");
    FR_KARG(dshift, k_attn_rows_extent(B, H, ldm), "dshift");
    FR_KARG(dscale, k_attn_rows_extent(B, H, ldm), "dscale");
    fr_k_attn_args a = {B, 0, L, H, ldm, 0.0f, x, scale, NULL, dy, dx, dshift, dscale};
    FR_LAUNCH(fr_k_adaln_mod_bwd, fr_grid_1d(B * H, FR_K_ATTN_THREADS), fr_dim3_x(FR_K_ATTN_THREADS), a);
}

FR_KERNEL(fr_k_gate_add_bwd, fr_k_attn_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->H) return;
    const int64_t b = i / a->H, j = i % a->H, o = b * a->L * a->H + j, m = b * a->ldm + j;
    a->d1[m] = fr_gate_bwd_col(a->L, a->H, a->a[m], a->b + o, a->dy + o, a->y + o);
}

static void k_gate_add_bwd(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *gate, const float *y,
                           const float *dout, float *dy, float *dgate)
{
    if (B <= 0 || L <= 0 || H <= 0) return;
    FR_KARG(gate, k_attn_rows_extent(B, H, ldm), "gate");
    FR_KARG(y, B * L * H, "y");
    FR_KARG(dout, B * L * H, "dout");
    FR_KARG(dy, B * L * H, "dy");
    FR_KARG(dgate, k_attn_rows_extent(B, H, ldm), "dgate");
    fr_k_attn_args a = {B, 0, L, H, ldm, 0.0f, NULL, gate, y, dout, dy, dgate, NULL};
    FR_LAUNCH(fr_k_gate_add_bwd, fr_grid_1d(B * H, FR_K_ATTN_THREADS), fr_dim3_x(FR_K_ATTN_THREADS), a);
}

static void fr_kern_fill_attn(fr_ops *t)
{
    t->softmax_rows = k_softmax_rows;
    t->softmax_rows_bwd = k_softmax_rows_bwd;
    t->adaln_mod = k_adaln_mod;
    t->adaln_mod_bwd = k_adaln_mod_bwd;
    t->gate_add = k_gate_add;
    t->gate_add_bwd = k_gate_add_bwd;
}

#endif
