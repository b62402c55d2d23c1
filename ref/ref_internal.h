/* The ref backend's op functions, gathered by fr_ref_fill (ref/ref_backend.c). Plain
 * scalar loops over the element functions of flowrl/elem.h in the canonical orders of
 * flowrl/reduce.h; ref is the definition the other backends must match bit for bit. */
#ifndef FLOWRL_REF_INTERNAL_H
#define FLOWRL_REF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/ops.h"

/* ref/ref_mem.c: host memory (h2d, d2h and d2d are all one memcpy). */
void *fr_ref_mem_alloc(size_t bytes);
void fr_ref_mem_free(void *p);
fr_status fr_ref_mem_copy(void *dst, const void *src, size_t bytes);
fr_status fr_ref_mem_zero(void *p, size_t bytes);
fr_status fr_ref_mem_sync(void);
void fr_ref_host_for(int64_t n, void (*fn)(void *ctx, int64_t i), void *ctx);

void fr_ref_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A,
                 const float *B, float *C, int accumulate);

void fr_ref_bias_add(int64_t M, int64_t N, float *y, const float *b);
void fr_ref_bias_grad(int64_t M, int64_t N, const float *dy, float *db, int accumulate);

void fr_ref_act_fwd(fr_act act, int64_t n, const float *x, float *y);
void fr_ref_act_bwd(fr_act act, int64_t n, const float *x, const float *dy, float *dx,
                    int accumulate);
void fr_ref_act_jvp(fr_act act, int64_t n, const float *x, const float *xdot, float *y, float *ydot);
void fr_ref_act_fwd_save(fr_act act, int64_t n, const float *x, float *y, float *s);
void fr_ref_act_bwd_saved(fr_act act, int64_t n, const float *x, const float *s, const float *dy, float *dx,
                          int accumulate);

void fr_ref_layernorm_fwd(int64_t M, int64_t D, const float *x, const float *gamma,
                          const float *beta, float eps, float *y, float *mean, float *rstd);
void fr_ref_layernorm_bwd(int64_t M, int64_t D, const float *x, const float *gamma,
                          const float *mean, const float *rstd, const float *dy, float *dx,
                          float *dgamma, float *dbeta, int accumulate);

void fr_ref_binary(fr_binop op, int64_t n, const float *a, const float *b, float *out);
void fr_ref_unary(fr_unop op, int64_t n, const float *x, float *out);
void fr_ref_axpby(int64_t n, float alpha, const float *x, float beta, float *y);
void fr_ref_scale(int64_t n, float alpha, const float *x, float *y);
void fr_ref_fill_const(int64_t n, float value, float *y); /* the `fill` entry */
void fr_ref_copy(int64_t n, const float *src, float *dst);

void fr_ref_row_sum(int64_t M, int64_t N, const float *x, float *out);
void fr_ref_row_mean(int64_t M, int64_t N, const float *x, float *out);
void fr_ref_sum(int64_t n, const float *x, float *out);
void fr_ref_global_norm(int count, const float *const *xs, const int64_t *ns, float *out);

void fr_ref_adamw(int64_t n, float *p, const float *g, float *m, float *v,
                  const fr_adamw_hp *hp);
/* ref_flow.c */
void fr_ref_fm_loss(int64_t R, int64_t D, const float *v, const float *target, const float *row_scale, float *loss,
                    float *grad);
void fr_ref_flow_target(int64_t R, int64_t B, int64_t D, const float *x0, const float *eps, float *target);
void fr_ref_awm_sqerr(int64_t R, int64_t B, int64_t D, const float *v, const float *eps, const float *x0, double *m);
void fr_ref_row_msd_f64(int64_t R, int64_t D, const float *a, const float *b, double *m);
void fr_ref_kl_grad_add(int64_t R, int64_t D, const float *a, const float *b1, const double *cb, const float *b2,
                        const double *ce, float *grad);
void fr_ref_ema_lerp(int64_t n, double d, const float *theta, float *ema);
/* ref_model.c: the entries of the table's model section */
void fr_ref_fill_model(fr_ops *ops);
void fr_ref_fill_attn(fr_ops *ops); /* ref/ref_attn.c: DiT softmax, adaLN */
/* ref_sampler.c: the entries of the table's samplers, guidance and noise section */
void fr_ref_fill_sampler(fr_ops *ops);
/* ref_traj.c: the entries of the table's trajectory-objectives section */
void fr_ref_fill_traj(fr_ops *ops);
/* ref_nft.c: the DiffusionNFT entries (nft_rows, nft_grad) */
void fr_ref_fill_nft(fr_ops *ops);
/* ref_graph.c: edge_gather, edge_scatter_add (message passing over edges) */
void fr_ref_fill_graph(fr_ops *ops);

#endif
