/* Kernels of the op table's model section (flowrl/ops.h; ref/ref_model.c is the definition).
 * One thread per output element, computed with the element function ref uses; the two
 * embedding sums keep ref's chain: a thread per (b, j) of h adds the S slots in order, a
 * thread per (r, j) of the table walks the batch in order and adds dh[b, j] wherever
 * c[b, s] = r, so samples sharing an id are added in ref's order. */
#ifndef FLOWRL_KERN_K_MODEL_H
#define FLOWRL_KERN_K_MODEL_H

#include "flowrl/embed.h"
#include "flowrl/kernel.h"
#include "flowrl/model_elem.h"
#include "flowrl/ops.h"
#include "flowrl/pretrain_elem.h"

#define FR_K_MODEL_THREADS 256

/* ---- time embedding: thread (b, j) of emb (B,E) ---- */

typedef struct {
    int64_t B, E;
    const float *t;
    float *emb;
} fr_k_temb_args;

FR_KERNEL(fr_k_temb, fr_k_temb_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->B * a->E) return;
    a->emb[i] = fr_temb_elem(a->t[i / a->E], i % a->E, a->E / 2);
}

static void k_temb_sinusoidal(int64_t B, int64_t E, const float *t, float *emb)
{
    if (B * E <= 0) return;
    FR_KARG(t, B, "t");
    FR_KARG(emb, B * E, "emb");
    fr_k_temb_args a = {B, E, t, emb};
    FR_LAUNCH(fr_k_temb, fr_grid_1d(B * E, FR_K_MODEL_THREADS), fr_dim3_x(FR_K_MODEL_THREADS), a);
}

/* ---- condition table: gather (thread (b, j) of h), scatter (thread (r, j) of dtable) ---- */

typedef struct {
    int64_t B, S, H, n_rows;
    const float *table;
    const int32_t *c;
    const float *dh;
    float *out; /* h (B,H) for the gather, dtable (n_rows,H) for the scatter */
} fr_k_embed_args;

FR_KERNEL(fr_k_embed_gather, fr_k_embed_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->B * a->H) return;
    const int64_t b = i / a->H, j = i % a->H;
    float acc = a->out[i];
    for (int64_t s = 0; s < a->S; s++) acc = acc + fr_embed_elem(a->table, a->n_rows, a->H, a->c[b * a->S + s], j);
    a->out[i] = acc;
}

static void k_embed_gather_add(int64_t B, int64_t S, int64_t H, int64_t n_rows, const float *table,
                               const int32_t *c, float *h)
{
    if (B * H <= 0) return;
    FR_KARG(table, n_rows * H, "table");
    FR_KARG(c, B * S, "c");
    FR_KARG(h, B * H, "h");
    fr_k_embed_args a = {B, S, H, n_rows, table, c, NULL, h};
    FR_LAUNCH(fr_k_embed_gather, fr_grid_1d(B * H, FR_K_MODEL_THREADS), fr_dim3_x(FR_K_MODEL_THREADS), a);
}

FR_KERNEL(fr_k_embed_scatter, fr_k_embed_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->n_rows * a->H) return;
    const int64_t r = i / a->H, j = i % a->H;
    float acc = a->out[i];
    for (int64_t b = 0; b < a->B; b++)
        for (int64_t s = 0; s < a->S; s++)
            if (a->c[b * a->S + s] == r) acc = acc + a->dh[b * a->H + j];
    a->out[i] = acc;
}

static void k_embed_scatter_add(int64_t B, int64_t S, int64_t H, int64_t n_rows, const int32_t *c,
                                const float *dh, float *dtable)
{
    if (n_rows * H <= 0) return;
    FR_KARG(c, B * S, "c");
    FR_KARG(dh, B * H, "dh");
    FR_KARG(dtable, n_rows * H, "dtable");
    fr_k_embed_args a = {B, S, H, n_rows, NULL, c, dh, dtable};
    FR_LAUNCH(fr_k_embed_scatter, fr_grid_1d(n_rows * H, FR_K_MODEL_THREADS), fr_dim3_x(FR_K_MODEL_THREADS), a);
}

/* ---- x0 head: thread (b, i) of (B,D); the row's first thread writes its divisor ---- */

typedef struct {
    int64_t B, D;
    float sigma_min;
    const float *t, *x, *xo;
    float *den, *out;
} fr_k_x0_fwd_args;

FR_KERNEL(fr_k_x0_head_fwd, fr_k_x0_fwd_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->B * a->D) return;
    const int64_t b = i / a->D;
    const float d = fr_x0_head_denom(a->t[b], a->sigma_min);
    if (a->den && i % a->D == 0) a->den[b] = d;
    a->out[i] = fr_x0_head_velocity(a->x[i], a->xo[i], d);
}

static void k_x0_head_fwd(int64_t B, int64_t D, float sigma_min, const float *t, const float *x, const float *xo,
                          float *den, float *out)
{
    if (B * D <= 0) return;
    FR_KARG(t, B, "t");
    FR_KARG(x, B * D, "x");
    FR_KARG(xo, B * D, "xo");
    FR_KARG_OPT(den, B, "den");
    FR_KARG(out, B * D, "out");
    fr_k_x0_fwd_args a = {B, D, sigma_min, t, x, xo, den, out};
    FR_LAUNCH(fr_k_x0_head_fwd, fr_grid_1d(B * D, FR_K_MODEL_THREADS), fr_dim3_x(FR_K_MODEL_THREADS), a);
}

typedef struct {
    int64_t B, D;
    const float *den, *dout;
    float *dxo;
} fr_k_x0_bwd_args;

FR_KERNEL(fr_k_x0_head_bwd, fr_k_x0_bwd_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->B * a->D) return;
    a->dxo[i] = fr_x0_head_grad_x0(a->dout[i], a->den[i / a->D]);
}

static void k_x0_head_bwd(int64_t B, int64_t D, const float *den, const float *dout, float *dxo)
{
    if (B * D <= 0) return;
    FR_KARG(den, B, "den");
    FR_KARG(dout, B * D, "dout");
    FR_KARG(dxo, B * D, "dxo");
    fr_k_x0_bwd_args a = {B, D, den, dout, dxo};
    FR_LAUNCH(fr_k_x0_head_bwd, fr_grid_1d(B * D, FR_K_MODEL_THREADS), fr_dim3_x(FR_K_MODEL_THREADS), a);
}

/* ---- ε x0 head: thread (b, i) of (B,D); the row's first thread writes its coefficients ---- */

typedef struct {
    int64_t B, D, n;
    const float *tab, *t, *x, *xo;
    float *coef, *out;
} fr_k_eps_fwd_args;

FR_KERNEL(fr_k_eps_head_fwd, fr_k_eps_fwd_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->B * a->D) return;
    const int64_t b = i / a->D;
    float ca, cs;
    fr_eps_head_coefs(a->tab, a->n, a->t[b], &ca, &cs);
    if (a->coef && i % a->D == 0) a->coef[b] = ca, a->coef[a->B + b] = cs;
    a->out[i] = fr_eps_head_eps(a->x[i], a->xo[i], ca, cs);
}

static void k_eps_head_fwd(int64_t B, int64_t D, int64_t n, const float *tab, const float *t, const float *x,
                           const float *xo, float *coef, float *out)
{
    if (B * D <= 0) return;
    FR_KARG(tab, 2 * n, "tab");
    FR_KARG(t, B, "t");
    FR_KARG(x, B * D, "x");
    FR_KARG(xo, B * D, "xo");
    FR_KARG_OPT(coef, 2 * B, "coef");
    FR_KARG(out, B * D, "out");
    fr_k_eps_fwd_args a = {B, D, n, tab, t, x, xo, coef, out};
    FR_LAUNCH(fr_k_eps_head_fwd, fr_grid_1d(B * D, FR_K_MODEL_THREADS), fr_dim3_x(FR_K_MODEL_THREADS), a);
}

typedef struct {
    int64_t B, D;
    const float *coef, *dout;
    float *dxo, *dx;
} fr_k_eps_bwd_args;

FR_KERNEL(fr_k_eps_head_bwd, fr_k_eps_bwd_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->B * a->D) return;
    const int64_t b = i / a->D;
    const float g = a->dout[i];
    if (a->dx) a->dx[i] = fr_eps_head_grad_x(g, a->coef[a->B + b]);
    a->dxo[i] = fr_eps_head_grad_x0(g, a->coef[b], a->coef[a->B + b]);
}

static void k_eps_head_bwd(int64_t B, int64_t D, const float *coef, const float *dout, float *dxo, float *dx)
{
    if (B * D <= 0) return;
    FR_KARG(coef, 2 * B, "coef");
    FR_KARG(dout, B * D, "dout");
    FR_KARG(dxo, B * D, "dxo");
    FR_KARG_OPT(dx, B * D, "dx");
    fr_k_eps_bwd_args a = {B, D, coef, dout, dxo, dx};
    FR_LAUNCH(fr_k_eps_head_bwd, fr_grid_1d(B * D, FR_K_MODEL_THREADS), fr_dim3_x(FR_K_MODEL_THREADS), a);
}

/* ---- forward process: thread (r, j) of x (R,D) ---- */

typedef struct {
    int64_t R, B, D;
    const float *x0, *eps, *ca, *cs;
    float *x;
} fr_k_noise_mix_args;

FR_KERNEL(fr_k_noise_mix, fr_k_noise_mix_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->D) return;
    const int64_t r = i / a->D, j = i % a->D;
    a->x[i] = fr_noise_mix_elem(a->x0[(r % a->B) * a->D + j], a->eps[i], a->ca[r], a->cs[r]);
}

static void k_noise_mix(int64_t R, int64_t B, int64_t D, const float *x0, const float *eps, const float *ca,
                        const float *cs, float *x)
{
    if (R * D <= 0) return;
    FR_KARG(x0, (R < B ? R : B) * D, "x0"); /* rows r mod B */
    FR_KARG(eps, R * D, "eps");
    FR_KARG(ca, R, "a");
    FR_KARG(cs, R, "s");
    FR_KARG(x, R * D, "x");
    fr_k_noise_mix_args a = {R, B, D, x0, eps, ca, cs, x};
    FR_LAUNCH(fr_k_noise_mix, fr_grid_1d(R * D, FR_K_MODEL_THREADS), fr_dim3_x(FR_K_MODEL_THREADS), a);
}

static void fr_kern_fill_model(fr_ops *t)
{
    t->temb_sinusoidal = k_temb_sinusoidal;
    t->embed_gather_add = k_embed_gather_add;
    t->embed_scatter_add = k_embed_scatter_add;
    t->x0_head_fwd = k_x0_head_fwd;
    t->x0_head_bwd = k_x0_head_bwd;
    t->eps_head_fwd = k_eps_head_fwd;
    t->eps_head_bwd = k_eps_head_bwd;
    t->noise_mix = k_noise_mix;
}

#endif
