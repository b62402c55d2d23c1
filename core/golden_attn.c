/* Golden cases of the DiT's op entries (flowrl/ops.h "model" section, flowrl/attn_elem.h):
 * the row softmax and its backward, adaLN modulate and the gated residual with their
 * backward, and one attention head through the canonical gemm and the softmax (core/dit.c's
 * attn_fwd for one sample and head). Rows of 19 (longer than one 8-lane register, with a
 * tail); modulate / gate on 2 samples of 5 tokens of 7 channels with the (B, 3·7) adaLN
 * layout (shift, scale, gate at ldm 21). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "core/golden_internal.h"

#define SLOT(entry) ((long)offsetof(fr_ops, entry))

enum { SR = 5, SN = 19, MB = 2, ML = 5, MH = 7, MLDM = 3 * MH, AL = 9, AD = 8 };

static const float k_alpha = 0.35355339f; /* 1/√8, a head of 8 */

/* ---- softmax ---- */

static fr_status softmax_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    float *x;
    FR_TRY(fr_gi_scalar(g, "alpha", k_alpha));
    FR_TRY(fr_gi_uniform(g, "x", 2, (int64_t[]){SR, SN}, -6.0f, 6.0f, &x));
    /* row 4: a tie of maxima at ±0 (the canonical max keeps the first, docs/determinism.md) */
    for (int j = 0; j < SN; j++) x[4 * SN + j] = x[4 * SN + j] - 7.0f;
    x[4 * SN + 3] = -0.0f, x[4 * SN + 11] = 0.0f;
    return fr_st_set_meta(g->f, "derived.in.x", "drawn, then row 4 minus 7, then its elements 3 = -0 and 11 = +0 (the row maxima)");
}

static fr_status softmax_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    int64_t s[2];
    float alpha, *p;
    const float *x;
    FR_TRY(fr_go_scalar(in, "alpha", &alpha));
    FR_TRY(fr_gd_f32(d, in, "x", 2, s, &x));
    FR_TRY(fr_gd_out_f32(d, out, "p", 2, s, NULL, &p));
    d->be->ops->softmax_rows(s[0], s[1], alpha, x, p);
    return FR_OK;
}

static fr_status softmax_bwd_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    float *x, p[SR * SN];
    FR_TRY(fr_gi_scalar(g, "alpha", k_alpha));
    FR_TRY(fr_gi_uniform(g, "x", 2, (int64_t[]){SR, SN}, -6.0f, 6.0f, &x));
    fr_golden_ref_ops()->softmax_rows(SR, SN, k_alpha, x, p);
    FR_TRY(fr_gi_tensor(g, "p", FR_F32, 2, (int64_t[]){SR, SN}, p, "the ref softmax_rows of in.x, in.alpha"));
    return fr_gi_uniform(g, "dp", 2, (int64_t[]){SR, SN}, -1.0f, 1.0f, NULL);
}

static fr_status softmax_bwd_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    int64_t s[2];
    float alpha, *dx;
    const float *p, *dp;
    FR_TRY(fr_go_scalar(in, "alpha", &alpha));
    FR_TRY(fr_gd_f32(d, in, "p", 2, s, &p));
    FR_TRY(fr_gd_exact(d, in, "dp", FR_F32, 2, s, (const void **)&dp));
    FR_TRY(fr_gd_out_f32(d, out, "dx", 2, s, NULL, &dx));
    d->be->ops->softmax_rows_bwd(s[0], s[1], alpha, p, dp, dx);
    return FR_OK;
}

/* ---- adaLN modulate and gate: arg 0 modulate, 1 its backward, 2 gate, 3 its backward ---- */

static fr_status adaln_in(const fr_golden_case *c, fr_golden_in *g)
{
    FR_TRY(fr_gi_uniform(g, "x", 3, (int64_t[]){MB, ML, MH}, -3.0f, 3.0f, NULL));
    FR_TRY(fr_gi_uniform(g, "mod", 2, (int64_t[]){MB, MLDM}, -1.0f, 1.0f, NULL));
    if (c->arg == 2) return fr_gi_uniform(g, "y", 3, (int64_t[]){MB, ML, MH}, -2.0f, 2.0f, NULL);
    if (c->arg & 1) return fr_gi_uniform(g, "dy", 3, (int64_t[]){MB, ML, MH}, -1.0f, 1.0f, NULL);
    return FR_OK;
}

static fr_status adaln_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    const int64_t xs[3] = {MB, ML, MH}, ms[2] = {MB, MLDM};
    const float *x, *mod, *y = NULL, *dy = NULL;
    float *o1, *o2;
    FR_TRY(fr_gd_exact(d, in, "x", FR_F32, 3, xs, (const void **)&x));
    FR_TRY(fr_gd_exact(d, in, "mod", FR_F32, 2, ms, (const void **)&mod));
    if (c->arg == 2) FR_TRY(fr_gd_exact(d, in, "y", FR_F32, 3, xs, (const void **)&y));
    if (c->arg & 1) FR_TRY(fr_gd_exact(d, in, "dy", FR_F32, 3, xs, (const void **)&dy));
    const fr_ops *o = d->be->ops;
    switch (c->arg) {
    case 0: /* y = x·(1 + scale) + shift, shift = mod[:, 0:7], scale = mod[:, 7:14] */
        FR_TRY(fr_gd_out_f32(d, out, "y", 3, xs, NULL, &o1));
        o->adaln_mod(MB, ML, MH, MLDM, x, mod, mod + MH, o1);
        break;
    case 1: /* dshift, dscale into a (B, 21) like mod (the gate columns stay 0) */
        FR_TRY(fr_gd_out_f32(d, out, "dx", 3, xs, NULL, &o1));
        FR_TRY(fr_gd_out_f32(d, out, "dmod", 2, ms, NULL, &o2));
        o->adaln_mod_bwd(MB, ML, MH, MLDM, x, mod + MH, dy, o1, o2, o2 + MH);
        break;
    case 2: /* out = x + gate·y, gate = mod[:, 14:21] */
        FR_TRY(fr_gd_out_f32(d, out, "out", 3, xs, NULL, &o1));
        o->gate_add(MB, ML, MH, MLDM, x, mod + 2 * MH, y, o1);
        break;
    default: /* with x as the gated branch's y: dy_branch = dy·gate, dgate = Σ_l dy·x */
        FR_TRY(fr_gd_out_f32(d, out, "dyb", 3, xs, NULL, &o1));
        FR_TRY(fr_gd_out_f32(d, out, "dmod", 2, ms, NULL, &o2));
        o->gate_add_bwd(MB, ML, MH, MLDM, mod + 2 * MH, x, dy, o1, o2 + 2 * MH);
        break;
    }
    return FR_OK;
}

/* ---- one attention head: O (9,8) = softmax(α Q Kᵀ) V ---- */

static fr_status attn_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    FR_TRY(fr_gi_scalar(g, "alpha", k_alpha));
    FR_TRY(fr_gi_uniform(g, "q", 2, (int64_t[]){AL, AD}, -2.0f, 2.0f, NULL));
    FR_TRY(fr_gi_uniform(g, "k", 2, (int64_t[]){AL, AD}, -2.0f, 2.0f, NULL));
    return fr_gi_uniform(g, "v", 2, (int64_t[]){AL, AD}, -1.0f, 1.0f, NULL);
}

static fr_status attn_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    const int64_t s[2] = {AL, AD}, ps[2] = {AL, AL};
    float alpha, *p, *o;
    const float *q, *k, *v;
    FR_TRY(fr_go_scalar(in, "alpha", &alpha));
    FR_TRY(fr_gd_exact(d, in, "q", FR_F32, 2, s, (const void **)&q));
    FR_TRY(fr_gd_exact(d, in, "k", FR_F32, 2, s, (const void **)&k));
    FR_TRY(fr_gd_exact(d, in, "v", FR_F32, 2, s, (const void **)&v));
    FR_TRY(fr_gd_out_f32(d, out, "p", 2, ps, NULL, &p));
    FR_TRY(fr_gd_out_f32(d, out, "o", 2, s, NULL, &o));
    d->be->ops->gemm(0, 1, AL, AL, AD, q, k, p, 0); /* S = Q Kᵀ */
    d->be->ops->softmax_rows(AL, AL, alpha, p, p);
    d->be->ops->gemm(0, 0, AL, AD, AL, p, v, o, 0); /* O = P V */
    return FR_OK;
}

/* --fast tolerances (core/golden_ops.c's table gives the scheme): the softmax and adaLN
 * entries have no vendor kernel (exact); the attention head's gemms do: the QKᵀ bound of
 * T_DOT (K = 8, |q|,|k| <= 2: 2·9u·4·8) moved through exp (×|α|·e^0) and the PV gemm
 * (K = 9, Σp = 1): 1e-5 absolute, 64u relative. */
#define U24 5.9604645e-8f
#define T_EXACT {0.0f, 0.0f}

const fr_golden_case fr_golden_cases_attn[] = {
    {"op.softmax_rows", "p (5,19) = softmax(alpha·x) per row, alpha 1/sqrt(8); row 4 has maxima −0, +0",
     SLOT(softmax_rows), 0, T_EXACT, softmax_in, softmax_run},
    {"op.softmax_rows_bwd", "dx (5,19) = alpha·p·(dp − <p, dp>) per row", SLOT(softmax_rows_bwd), 0, T_EXACT,
     softmax_bwd_in, softmax_bwd_run},
    {"op.adaln_mod", "y (2,5,7) = x·(1 + scale[b]) + shift[b], mod (2,21) = shift | scale | gate", SLOT(adaln_mod),
     0, T_EXACT, adaln_in, adaln_run},
    {"op.adaln_mod_bwd", "adaLN modulate backward: dx, dshift, dscale (chains over the 5 tokens)",
     SLOT(adaln_mod_bwd), 1, T_EXACT, adaln_in, adaln_run},
    {"op.gate_add", "out (2,5,7) = x + gate[b]·y", SLOT(gate_add), 2, T_EXACT, adaln_in, adaln_run},
    {"op.gate_add_bwd", "gated residual backward: dy·gate, dgate (chains over the 5 tokens)", SLOT(gate_add_bwd), 3,
     T_EXACT, adaln_in, adaln_run},
    {"op.attention_head", "one head: P = softmax(alpha Q K^T), O = P V, Q K V (9,8) (gemm, softmax_rows, gemm)",
     FR_GOLDEN_ALL_OPS, 0, {1e-5f, 64.0f * U24}, attn_in, attn_run},
};
const size_t fr_golden_n_attn = sizeof fr_golden_cases_attn / sizeof fr_golden_cases_attn[0];
