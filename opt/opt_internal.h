/* Shared by the opt/ sources: the thread pool, the SIMD dispatch flag and each file's op
 * functions (gathered by fr_opt_init in opt/opt_backend.c). */
#ifndef FLOWRL_OPT_INTERNAL_H
#define FLOWRL_OPT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/ops.h"
#include "flowrl/opt.h"

/* ---- thread pool (opt/opt_threads.c) --------------------------------------------------- */

/* A task body: part `tid` of `nt` parts. */
typedef void (*fr_opt_task)(void *ctx, int tid, int nt);

/* Runs fn(ctx, tid, nt) for tid = 0..nt-1, tid 0 on the calling thread, and returns when
 * all are done. nt is clamped to [1, fr_opt_get_threads()]. If the pool is busy (another
 * caller thread, or a call from inside a task) every part runs on the calling thread, in
 * order: callers must make the result independent of nt and of which thread runs a part
 * (split by outputs only). */
void fr_opt_run(int nt, fr_opt_task fn, void *ctx);

/* A range body: elements [begin, end) of [0, n). */
typedef void (*fr_opt_range_fn)(void *ctx, int64_t begin, int64_t end);

/* Splits [0, n) into contiguous chunks whose boundaries are multiples of `align`, runs fn
 * on each, on up to fr_opt_get_threads() threads (at most n / min_chunk of them, so small
 * n runs on one thread). Which thread runs which chunk is not fixed: fn must write
 * disjoint outputs per chunk. */
void fr_opt_parallel_range(int64_t n, int64_t align, int64_t min_chunk, fr_opt_range_fn fn,
                           void *ctx);

/* The op table's host_for (flowrl/ops.h): jobs 0 .. n-1 from a shared counter, on up to
 * fr_opt_get_threads() threads. */
void fr_opt_host_for(int64_t n, void (*fn)(void *ctx, int64_t i), void *ctx);

/* The number of parts fr_opt_parallel_range would use. */
int fr_opt_range_parts(int64_t n, int64_t align, int64_t min_chunk);

/* 1 while fr_opt_set_split_all(1) is in effect: minimum work per thread is one unit. */
int fr_opt_split_all(void);

/* Row-parallel entries over ref's (opt/opt_rows.c; the trajectory objectives' rows in
 * opt/opt_traj_rows.c): call on a table holding the ref entries. */
void fr_opt_rows_fill(fr_ops *ops);
void fr_opt_traj_rows_fill(fr_ops *ops);
void fr_opt_awm_rows_fill(fr_ops *ops); /* opt/opt_awm_rows.c */

/* At least this many elements per part of a row op: below it a wake-up costs more than it saves. */
#define FR_OPT_ROW_MIN_ELEMS 4096
static inline int64_t fr_opt_min_rows(int64_t D)
{
    return D >= FR_OPT_ROW_MIN_ELEMS ? 1 : (FR_OPT_ROW_MIN_ELEMS + D - 1) / (D > 0 ? D : 1);
}

/* ---- SIMD dispatch (opt/opt_backend.c) -------------------------------------------------- */

/* 1 when the target("avx2,fma") kernels may run (CPU support, not disabled by env). */
extern int fr_opt_avx2;
/* 1 when the NEON kernels may run (aarch64 with ASIMD, not disabled by env). */
extern int fr_opt_neon;

/* ---- frozen memory (opt/opt_frozen.c) ---------------------------------------------------- */

/* The op table's freeze (flowrl/ops.h). */
void fr_opt_freeze(const void *p, size_t bytes, int frozen);
/* Ranges frozen now (tests). */
int fr_opt_frozen_ranges(void);
/* Fills dst with a packed form of a GEMM operand. */
typedef void (*fr_opt_pack_fn)(void *ctx, float *dst);
/* The packed form (floats floats) of the GEMM operand B, keyed by (B, tb, N, K), when a frozen
 * range holds all of B's b_bytes: made by pack(ctx, dst) on the first call of the range's
 * frozen period, returned as is after. NULL when no frozen range holds B (or out of memory):
 * the caller packs as usual. */
const float *fr_opt_frozen_packed(const float *B, size_t b_bytes, int tb, int64_t N, int64_t K, size_t floats,
                                  fr_opt_pack_fn pack, void *ctx);

/* ---- ops ---------------------------------------------------------------------------------- */

void fr_opt_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A,
                 const float *B, float *C, int accumulate);
/* opt/opt_gemm_small.c: a GEMM small enough for its path (N <= 32, K <= 64, <= 2^16 multiply-adds,
 * AVX2) computed there, with fr_opt_gemm's bits; 0 when it is not (nothing written). */
int fr_opt_gemm_small(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                      int accumulate);

void fr_opt_bias_add(int64_t M, int64_t N, float *y, const float *b);
void fr_opt_bias_grad(int64_t M, int64_t N, const float *dy, float *db, int accumulate);

void fr_opt_act_fwd(fr_act act, int64_t n, const float *x, float *y);
void fr_opt_act_bwd(fr_act act, int64_t n, const float *x, const float *dy, float *dx,
                    int accumulate);
void fr_opt_act_jvp(fr_act act, int64_t n, const float *x, const float *xdot, float *y, float *ydot);
void fr_opt_act_fwd_save(fr_act act, int64_t n, const float *x, float *y, float *s);
void fr_opt_act_bwd_saved(fr_act act, int64_t n, const float *x, const float *s, const float *dy, float *dx,
                          int accumulate);

void fr_opt_layernorm_fwd(int64_t M, int64_t D, const float *x, const float *gamma,
                          const float *beta, float eps, float *y, float *mean, float *rstd);
void fr_opt_layernorm_bwd(int64_t M, int64_t D, const float *x, const float *gamma,
                          const float *mean, const float *rstd, const float *dy, float *dx,
                          float *dgamma, float *dbeta, int accumulate);

void fr_opt_binary(fr_binop op, int64_t n, const float *a, const float *b, float *out);
void fr_opt_unary(fr_unop op, int64_t n, const float *x, float *out);
void fr_opt_axpby(int64_t n, float alpha, const float *x, float beta, float *y);
void fr_opt_scale(int64_t n, float alpha, const float *x, float *y);
void fr_opt_fill(int64_t n, float value, float *y);
/* opt_graph.c: edge_gather, edge_scatter_add */
void fr_opt_fill_graph(fr_ops *ops);
void fr_opt_copy(int64_t n, const float *src, float *dst);

void fr_opt_row_sum(int64_t M, int64_t N, const float *x, float *out);
void fr_opt_row_mean(int64_t M, int64_t N, const float *x, float *out);
void fr_opt_sum(int64_t n, const float *x, float *out);
void fr_opt_global_norm(int count, const float *const *xs, const int64_t *ns, float *out);

void fr_opt_adamw(int64_t n, float *p, const float *g, float *m, float *v,
                  const fr_adamw_hp *hp);
void fr_opt_ema_lerp(int64_t n, double d, const float *theta, float *ema);

/* opt/opt_model.c */
void fr_opt_eps_head_fwd(int64_t B, int64_t D, int64_t n, const float *tab, const float *t, const float *x,
                         const float *xo, float *coef, float *out);
void fr_opt_eps_head_bwd(int64_t B, int64_t D, const float *coef, const float *dout, float *dxo, float *dx);
/* opt/opt_attn.c: the DiT's softmax and adaLN entries (flowrl/attn_elem.h). */
void fr_opt_softmax_rows(int64_t R, int64_t N, float alpha, const float *x, float *p);
void fr_opt_softmax_rows_bwd(int64_t R, int64_t N, float alpha, const float *p, const float *dp, float *dx);
void fr_opt_adaln_mod(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *x, const float *shift,
                      const float *scale, float *y);
void fr_opt_adaln_mod_bwd(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *x, const float *scale,
                          const float *dy, float *dx, float *dshift, float *dscale);
void fr_opt_gate_add(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *h, const float *gate,
                     const float *y, float *out);
void fr_opt_gate_add_bwd(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *gate, const float *y,
                         const float *dout, float *dy, float *dgate);

#endif
