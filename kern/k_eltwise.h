/* Elementwise op entries (ref/ref_eltwise.c, ref_act.c, ref_bias.c) as one thread per element
 * over the element functions of flowrl/elem.h, and the bias gradient as one thread per column
 * running ref's batch-reduction chain over the rows in order. */
#ifndef FLOWRL_KERN_K_ELTWISE_H
#define FLOWRL_KERN_K_ELTWISE_H

#include "flowrl/elem.h"
#include "flowrl/kernel.h"
#include "flowrl/ops.h"

#define FR_KE_BLOCK 256

/* ---- bias ------------------------------------------------------------------------------ */

typedef struct {
    int64_t M, N;
    float *y;       // (M,N)
    const float *b; // (N,)
} fr_k_bias_add_args;

FR_KERNEL(fr_k_bias_add, fr_k_bias_add_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i < a->M * a->N) a->y[i] = a->y[i] + a->b[i % a->N];
}

static void k_bias_add(int64_t M, int64_t N, float *y, const float *b)
{
    if (M <= 0 || N <= 0) return;
    FR_KARG(y, M * N, "y");
    FR_KARG(b, N, "b");
    fr_k_bias_add_args a = {M, N, y, b};
    FR_LAUNCH(fr_k_bias_add, fr_grid_1d(M * N, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

typedef struct {
    int64_t M, N;
    const float *dy; // (M,N)
    float *db;       // (N,)
    int accumulate;
} fr_k_bias_grad_args;

/* db[j] = init + dy[0,j] + dy[1,j] + ... (plain adds, init 0 or the old db[j]). */
FR_KERNEL(fr_k_bias_grad, fr_k_bias_grad_args)
{
    int64_t j = fr_kidx_global_x(k);
    if (j >= a->N) return;
    float acc = a->accumulate ? a->db[j] : 0.0f;
    for (int64_t i = 0; i < a->M; i++) acc = acc + a->dy[i * a->N + j];
    a->db[j] = acc;
}

static void k_bias_grad(int64_t M, int64_t N, const float *dy, float *db, int accumulate)
{
    if (N <= 0) return;
    FR_KARG(dy, M * N, "dy");
    FR_KARG(db, N, "db");
    fr_k_bias_grad_args a = {M, N, dy, db, accumulate};
    FR_LAUNCH(fr_k_bias_grad, fr_grid_1d(N, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

/* ---- activations ----------------------------------------------------------------------- */

typedef struct {
    fr_act act;
    int64_t n;
    const float *x, *dy; // (n,); dy only for the backward
    float *y;            // (n,): y, or dx for the backward
    int accumulate;
} fr_k_act_args;

FR_KERNEL(fr_k_act_fwd, fr_k_act_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i < a->n) a->y[i] = fr_act_elem(a->act, a->x[i]);
}

/* dx = dy * act'(x), or dx + dy * act'(x) when accumulating (one plain add). */
FR_KERNEL(fr_k_act_bwd, fr_k_act_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i >= a->n) return;
    float d = fr_act_bwd_elem(a->act, a->x[i], a->dy[i]);
    a->y[i] = a->accumulate ? a->y[i] + d : d;
}

/* MeanFlow's JVP (flowrl/ops.h act_jvp): ydot = fr_act_jvp_elem(x, xdot), y = act(x); x and
 * xdot are read before either output is written (y may alias x, ydot xdot). */
typedef struct {
    fr_act act;
    int64_t n;
    const float *x, *xdot; // (n,)
    float *y, *ydot;       // (n,)
} fr_k_act_jvp_args;

FR_KERNEL(fr_k_act_jvp, fr_k_act_jvp_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i >= a->n) return;
    const float x = a->x[i], xd = a->xdot[i];
    a->ydot[i] = fr_act_jvp_elem(a->act, x, xd);
    a->y[i] = fr_act_elem(a->act, x);
}

/* act_fwd_save / act_bwd_saved (flowrl/ops.h): the forward keeps s = fr_act_saved_elem(x),
 * the backward reads it; the same bits as act_fwd / act_bwd. */
typedef struct {
    fr_act act;
    int64_t n;
    const float *x, *dy; // (n,); dy only for the backward
    float *y;            // (n,): y, or dx for the backward
    float *s;            // (n,): written by the forward, read by the backward
    int accumulate;
} fr_k_act_saved_args;

FR_KERNEL(fr_k_act_fwd_save, fr_k_act_saved_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i >= a->n) return;
    const float x = a->x[i], s = fr_act_saved_elem(a->act, x);
    a->s[i] = s;
    a->y[i] = fr_act_from_saved_elem(a->act, x, s);
}

FR_KERNEL(fr_k_act_bwd_saved, fr_k_act_saved_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i >= a->n) return;
    float d = fr_act_bwd_saved_elem(a->act, a->x[i], a->s[i], a->dy[i]);
    a->y[i] = a->accumulate ? a->y[i] + d : d;
}

static void k_act_fwd(fr_act act, int64_t n, const float *x, float *y)
{
    if (n <= 0) return;
    FR_KARG(x, n, "x");
    FR_KARG(y, n, "y");
    fr_k_act_args a = {act, n, x, NULL, y, 0};
    FR_LAUNCH(fr_k_act_fwd, fr_grid_1d(n, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

static void k_act_bwd(fr_act act, int64_t n, const float *x, const float *dy, float *dx, int accumulate)
{
    if (n <= 0) return;
    FR_KARG(x, n, "x");
    FR_KARG(dy, n, "dy");
    FR_KARG(dx, n, "dx");
    fr_k_act_args a = {act, n, x, dy, dx, accumulate};
    FR_LAUNCH(fr_k_act_bwd, fr_grid_1d(n, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

static void k_act_fwd_save(fr_act act, int64_t n, const float *x, float *y, float *s)
{
    if (n <= 0) return;
    FR_KARG(x, n, "x");
    FR_KARG(y, n, "y");
    FR_KARG(s, n, "s");
    fr_k_act_saved_args a = {act, n, x, NULL, y, s, 0};
    FR_LAUNCH(fr_k_act_fwd_save, fr_grid_1d(n, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

static void k_act_bwd_saved(fr_act act, int64_t n, const float *x, const float *s, const float *dy, float *dx,
                            int accumulate)
{
    if (n <= 0) return;
    FR_KARG(x, n, "x");
    FR_KARG(s, n, "s");
    FR_KARG(dy, n, "dy");
    FR_KARG(dx, n, "dx");
    fr_k_act_saved_args a = {act, n, x, dy, dx, (float *)s, accumulate};
    FR_LAUNCH(fr_k_act_bwd_saved, fr_grid_1d(n, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

/* ---- binary, unary, axpby, scale, fill -------------------------------------------------- */

typedef struct {
    int op; /* fr_binop or fr_unop */
    int64_t n;
    float alpha, beta;
    const float *x, *b; // (n,)
    float *y;           // (n,), may alias x or b
} fr_k_elt_args;

FR_KERNEL(fr_k_binary, fr_k_elt_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i < a->n) a->y[i] = fr_binary_elem((fr_binop)a->op, a->x[i], a->b[i]);
}

FR_KERNEL(fr_k_unary, fr_k_elt_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i < a->n) a->y[i] = fr_unary_elem((fr_unop)a->op, a->x[i]);
}

FR_KERNEL(fr_k_axpby, fr_k_elt_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i < a->n) a->y[i] = fr_axpby_elem(a->alpha, a->x[i], a->beta, a->y[i]);
}

FR_KERNEL(fr_k_scale, fr_k_elt_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i < a->n) a->y[i] = a->alpha * a->x[i];
}

FR_KERNEL(fr_k_fill, fr_k_elt_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i < a->n) a->y[i] = a->alpha;
}

static fr_k_elt_args k_elt_args(int op, int64_t n, float alpha, const float *x, float beta, const float *b,
                                float *y)
{
    fr_k_elt_args a = {op, n, alpha, beta, x, b, y};
    return a;
}

static void k_binary(fr_binop op, int64_t n, const float *a_, const float *b, float *out)
{
    if (n <= 0) return;
    FR_KARG(a_, n, "a");
    FR_KARG(b, n, "b");
    FR_KARG(out, n, "out");
    fr_k_elt_args a = k_elt_args((int)op, n, 0.0f, a_, 0.0f, b, out);
    FR_LAUNCH(fr_k_binary, fr_grid_1d(n, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

static void k_unary(fr_unop op, int64_t n, const float *x, float *out)
{
    if (n <= 0) return;
    FR_KARG(x, n, "x");
    FR_KARG(out, n, "out");
    fr_k_elt_args a = k_elt_args((int)op, n, 0.0f, x, 0.0f, NULL, out);
    FR_LAUNCH(fr_k_unary, fr_grid_1d(n, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

static void k_axpby(int64_t n, float alpha, const float *x, float beta, float *y)
{
    if (n <= 0) return;
    FR_KARG(x, n, "x");
    FR_KARG(y, n, "y");
    fr_k_elt_args a = k_elt_args(0, n, alpha, x, beta, NULL, y);
    FR_LAUNCH(fr_k_axpby, fr_grid_1d(n, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

static void k_scale(int64_t n, float alpha, const float *x, float *y)
{
    if (n <= 0) return;
    FR_KARG(x, n, "x");
    FR_KARG(y, n, "y");
    fr_k_elt_args a = k_elt_args(0, n, alpha, x, 0.0f, NULL, y);
    FR_LAUNCH(fr_k_scale, fr_grid_1d(n, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

static void k_fill(int64_t n, float value, float *y)
{
    if (n <= 0) return;
    FR_KARG(y, n, "y");
    fr_k_elt_args a = k_elt_args(0, n, value, NULL, 0.0f, NULL, y);
    FR_LAUNCH(fr_k_fill, fr_grid_1d(n, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

/* ---- copy (memmove semantics) ------------------------------------------------------------ */

typedef struct {
    int64_t n;
    const float *src; // (n,)
    float *dst;       // (n,)
} fr_k_copy_args;

FR_KERNEL(fr_k_copy, fr_k_copy_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i < a->n) a->dst[i] = a->src[i];
}

/* Overlapping ranges: one block moves FR_KE_MOVE_TILE elements per iteration through shared
 * memory, every read of a tile before any write of it, tiles from the front when dst < src
 * and from the back when dst > src, so no tile is overwritten before it is read (memmove). */
#define FR_KE_MOVE_TILE (4 * FR_KE_BLOCK)

typedef struct {
    float v[FR_KE_MOVE_TILE];
} fr_k_move_smem;

typedef struct {
    int unused;
} fr_k_move_regs;

FR_HOSTDEV static inline int64_t fr_k_move_iters(const fr_k_copy_args *a)
{
    return (a->n + FR_KE_MOVE_TILE - 1) / FR_KE_MOVE_TILE;
}

/* The first element of iteration k->iter's tile. */
FR_HOSTDEV static inline int64_t fr_k_move_tile(const fr_kidx *k, const fr_k_copy_args *a)
{
    int64_t t = a->dst < a->src ? k->iter : fr_k_move_iters(a) - 1 - k->iter;
    return t * FR_KE_MOVE_TILE;
}

FR_HOSTDEV static inline void fr_k_move_init(const fr_kidx *k, const fr_k_copy_args *a, fr_k_move_smem *s,
                                             fr_k_move_regs *r)
{
    (void)k;
    (void)a;
    (void)s;
    (void)r;
}

FR_HOSTDEV static inline void fr_k_move_load(const fr_kidx *k, const fr_k_copy_args *a, fr_k_move_smem *s,
                                             fr_k_move_regs *r)
{
    (void)r;
    const int64_t t0 = fr_k_move_tile(k, a);
    for (int64_t e = fr_kidx_local(k); e < FR_KE_MOVE_TILE; e += FR_KE_BLOCK)
        if (t0 + e < a->n) s->v[e] = a->src[t0 + e];
}

FR_HOSTDEV static inline void fr_k_move_compute(const fr_kidx *k, const fr_k_copy_args *a, fr_k_move_smem *s,
                                                fr_k_move_regs *r)
{
    (void)r;
    const int64_t t0 = fr_k_move_tile(k, a);
    for (int64_t e = fr_kidx_local(k); e < FR_KE_MOVE_TILE; e += FR_KE_BLOCK)
        if (t0 + e < a->n) a->dst[t0 + e] = s->v[e];
}

FR_HOSTDEV static inline void fr_k_move_store(const fr_kidx *k, const fr_k_copy_args *a, fr_k_move_smem *s,
                                              fr_k_move_regs *r)
{
    (void)k;
    (void)a;
    (void)s;
    (void)r;
}

FR_KERNEL_TILED(fr_k_move, fr_k_copy_args, fr_k_move_regs, fr_k_move_smem)

static void k_copy(int64_t n, const float *src, float *dst)
{
    if (n <= 0) return;
    FR_KARG(src, n, "src");
    FR_KARG(dst, n, "dst");
    if (src == dst) return;
    fr_k_copy_args a = {n, src, dst};
    if (dst + n <= src || src + n <= dst)
        FR_LAUNCH(fr_k_copy, fr_grid_1d(n, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
    else
        FR_LAUNCH_TILED(fr_k_move, fr_dim3_x(1), fr_dim3_x(FR_KE_BLOCK), a);
}

static void k_act_jvp(fr_act act, int64_t n, const float *x, const float *xdot, float *y, float *ydot)
{
    if (n <= 0) return;
    FR_KARG(x, n, "x");
    FR_KARG(xdot, n, "xdot");
    FR_KARG(y, n, "y");
    FR_KARG(ydot, n, "ydot");
    fr_k_act_jvp_args a = {act, n, x, xdot, y, ydot};
    FR_LAUNCH(fr_k_act_jvp, fr_grid_1d(n, FR_KE_BLOCK), fr_dim3_x(FR_KE_BLOCK), a);
}

static void fr_kern_fill_eltwise(fr_ops *t)
{
    t->bias_add = k_bias_add;
    t->bias_grad = k_bias_grad;
    t->act_fwd = k_act_fwd;
    t->act_bwd = k_act_bwd;
    t->act_jvp = k_act_jvp;
    t->act_fwd_save = k_act_fwd_save;
    t->act_bwd_saved = k_act_bwd_saved;
    t->binary = k_binary;
    t->unary = k_unary;
    t->axpby = k_axpby;
    t->scale = k_scale;
    t->fill = k_fill;
    t->copy = k_copy;
}

#endif
