/* The op table (docs/design.md §3): a struct of function pointers, filled by the `ref`
 * backend first; `opt` and `cuda` override only the entries they implement (the BLIS
 * pattern), so a missing fast op falls back to the reference.
 *
 * All arrays are float32, dense, row-major. Shape comments use B batch, D data dims,
 * H hidden width; M, N, K are GEMM dims. Every op's arithmetic order is the canonical
 * order of include/flowrl/reduce.h and docs/determinism.md. */
#ifndef FLOWRL_OPS_H
#define FLOWRL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/nft_elem.h"
#include "flowrl/sampler_elem.h"
#include "flowrl/status.h"

typedef enum {
    FR_ACT_IDENTITY = 0,
    FR_ACT_SILU,      /* x * sigmoid(x) */
    FR_ACT_GELU_TANH, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    FR_ACT_TANH,
    FR_ACT_SIGMOID,
    FR_ACT_RELU,
    FR_ACT_COUNT
} fr_act;

typedef enum {
    FR_BIN_ADD = 0, /* out = a + b */
    FR_BIN_SUB,     /* out = a - b */
    FR_BIN_MUL,     /* out = a * b */
    FR_BIN_DIV,     /* out = a / b */
    FR_BIN_COUNT
} fr_binop;

typedef enum {
    FR_UN_NEG = 0, /* -x */
    FR_UN_SQUARE,  /* x * x */
    FR_UN_SQRT,
    FR_UN_EXP,     /* fr_expf */
    FR_UN_LOG,     /* fr_logf */
    FR_UN_ABS,     /* fabsf (exact) */
    FR_UN_COUNT
} fr_unop;

/* One AdamW step's scalars as torch.optim.AdamW (foreach=False) hands them to its float
 * kernels: each a double expression of the double hyper-parameters (Python floats in torch),
 * rounded to float once, by fr_adamw_prepare (core/adamw.c), so that every backend uses
 * identical float scalars. */
typedef struct {
    int64_t step;          /* 1-based step count after this update */
    float decay;           /* 1 - lr*wd               param.mul_(1 - lr*weight_decay) */
    float beta1;           /* beta1                   exp_avg.mul_(beta1) */
    float one_minus_beta1; /* 1 - beta1               .add_(grad, alpha=1 - beta1) */
    float beta2;           /* beta2                   exp_avg_sq.mul_(beta2) */
    float one_minus_beta2; /* 1 - beta2               .addcmul_(grad, grad, value=1 - beta2) */
    float bc2_sqrt;        /* sqrt(1 - beta2^step)    exp_avg_sq.sqrt() / bc2_sqrt */
    float eps;             /* eps                     .add_(eps) */
    float step_size;       /* lr / (1 - beta1^step)   param.addcdiv_(..., value=-step_size) */
} fr_adamw_hp;

typedef struct fr_ops {
    const char *name;

    /* ---- memory (flowrl/backend.h: callers go through fr_dev_alloc, fr_h2d, ...) ----
     * Host backends: aligned_alloc / memcpy / memset. A device backend (cuda-emu, cuda)
     * overrides all of them and every op entry below: a ref entry would read device memory
     * from the host. */
    void *(*mem_alloc)(size_t bytes); /* zero-filled, 64-byte aligned; NULL when out of memory */
    void (*mem_free)(void *p);
    fr_status (*mem_h2d)(void *dst, const void *src, size_t bytes);
    fr_status (*mem_d2h)(void *dst, const void *src, size_t bytes);
    fr_status (*mem_d2d)(void *dst, const void *src, size_t bytes);
    fr_status (*mem_zero)(void *p, size_t bytes);
    fr_status (*mem_sync)(void);
    /* 1: the memory above is not the host's (host code must copy). */
    int device;

    /* ---- the host's threads (host memory only; not a compute entry) ----
     * Runs fn(ctx, i) for i = 0 .. n-1, each once, and returns when all have run: opt on its
     * pool's threads (in any order, on any of them), ref and the device backends in order on
     * the calling thread. For host work between op calls that splits into independent jobs
     * (the audit records' digests, core/run_record.c): fn writes disjoint outputs per i, so
     * the result is the same at every thread count. */
    void (*host_for)(int64_t n, void (*fn)(void *ctx, int64_t i), void *ctx);

    /* ---- a promise about memory (not a compute entry; NULL: nothing to gain) ----
     * frozen = 1: [p, p + bytes) is not written until the matching call with frozen = 0 (the
     * same p and bytes; calls on one range nest). While a range is frozen the backend may keep
     * forms derived from it: opt packs a GEMM's B operand that lies inside one into the panels
     * its kernel reads once, on the first call, instead of on every call (a rollout's T steps
     * read the same weights: fr_model_freeze, core/rollout_engine.c). Every op's bits are the
     * same either way. Callers go through fr_freeze (flowrl/backend.h). */
    void (*freeze)(const void *p, size_t bytes, int frozen);

    /* C (M,N) = op(A) op(B)          (accumulate = 0)
     * C (M,N) = C + op(A) op(B)      (accumulate = 1: the fmaf chain starts from C)
     * op(A) is (M,K): A stored (M,K) if !ta, (K,M) if ta. op(B) is (K,N): B stored (K,N)
     * if !tb, (N,K) if tb. Forward of a linear layer y = x W^T: gemm(0,1). Backward:
     * dx = dy W: gemm(0,0); dW += dy^T x: gemm(1,0, accumulate). */
    void (*gemm)(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A,
                 const float *B, float *C, int accumulate);

    /* y (M,N) += b (N,) per row. */
    void (*bias_add)(int64_t M, int64_t N, float *y, const float *b);
    /* db (N,) (+)= sum over rows of dy (M,N), rows in order (batch-reduction order). */
    void (*bias_grad)(int64_t M, int64_t N, const float *dy, float *db, int accumulate);

    /* y = act(x), n elements (y may alias x). */
    void (*act_fwd)(fr_act act, int64_t n, const float *x, float *y);
    /* dx (+)= dy * act'(x), n elements. */
    void (*act_bwd)(fr_act act, int64_t n, const float *x, const float *dy, float *dx,
                    int accumulate);
    /* Forward mode (MeanFlow's JVP, core/mlp.c fr_mlp_jvp): y = act(x) (fr_act_elem) and
     * ydot = fr_act_jvp_elem(act, x, xdot), n elements; ydot may alias xdot, y may alias x. */
    void (*act_jvp)(fr_act act, int64_t n, const float *x, const float *xdot, float *y, float *ydot);
    /* act_fwd that also keeps the activation's transcendental for the backward (issue 15: the
     * backward of a kept forward need not compute it again): s = fr_act_saved_elem(act, x),
     * y = fr_act_from_saved_elem(act, x, s) (= fr_act_elem's bits), n elements; y may alias x,
     * s may not alias either. */
    void (*act_fwd_save)(fr_act act, int64_t n, const float *x, float *y, float *s);
    /* act_bwd from act_fwd_save's s: dx (+)= fr_act_bwd_saved_elem(act, x, s, dy) (= act_bwd's
     * bits), n elements. */
    void (*act_bwd_saved)(fr_act act, int64_t n, const float *x, const float *s, const float *dy, float *dx,
                          int accumulate);

    /* Layer norm over the last dim D of x (M,D):
     *   mean = canonical mean, var = canonical sumsq_centered / D, rstd = 1/sqrt(var+eps)
     *   y = (x - mean) * rstd * gamma + beta.  mean, rstd (M,) are saved for backward.
     * gamma/beta may be NULL (no affine). */
    void (*layernorm_fwd)(int64_t M, int64_t D, const float *x, const float *gamma,
                          const float *beta, float eps, float *y, float *mean, float *rstd);
    /* dx (M,D) (+)= ..., dgamma, dbeta (D,) (+)= ... (accumulate applies to all three;
     * dgamma/dbeta may be NULL; dx aliases neither x nor dy). */
    void (*layernorm_bwd)(int64_t M, int64_t D, const float *x, const float *gamma,
                          const float *mean, const float *rstd, const float *dy, float *dx,
                          float *dgamma, float *dbeta, int accumulate);

    /* out = a (op) b, elementwise (out may alias a or b). */
    void (*binary)(fr_binop op, int64_t n, const float *a, const float *b, float *out);
    /* out = f(x), elementwise. */
    void (*unary)(fr_unop op, int64_t n, const float *x, float *out);
    /* y = alpha * x + beta * y, as fmaf(alpha, x, beta * y). */
    void (*axpby)(int64_t n, float alpha, const float *x, float beta, float *y);
    /* y = alpha * x. */
    void (*scale)(int64_t n, float alpha, const float *x, float *y);
    void (*fill)(int64_t n, float value, float *y);
    void (*copy)(int64_t n, const float *src, float *dst);

    /* out (M,) = sum / mean of each row of x (M,N), canonical long-sum order. */
    void (*row_sum)(int64_t M, int64_t N, const float *x, float *out);
    void (*row_mean)(int64_t M, int64_t N, const float *x, float *out);
    /* out (1,) = canonical long sum of n elements. */
    void (*sum)(int64_t n, const float *x, float *out);
    /* out (1,) = sqrt(sum over tensors t of sumsq_canonical(x_t)), tensors summed in index
     * order. xs and ns are host arrays (count,) of backend pointers and lengths. */
    void (*global_norm)(int count, const float *const *xs, const int64_t *ns, float *out);

    /* One AdamW update of n parameters (PyTorch semantics, see fr_adamw_elem). */
    void (*adamw)(int64_t n, float *p, const float *g, float *m, float *v,
                  const fr_adamw_hp *hp);

    /* ---- flow matching and AWM (docs/algorithms/pretraining.md, awm.md): R rows of D ---- */
    /* loss (may be NULL) = canonical long sum of (v − target)² / (R·D); grad (R, D) =
     * fr_mse_grad_elem(v, target, s_r), s_r = row_scale[r] (NULL: 2/(R·D)); grad may hold
     * the squares first (it is the loss's scratch). */
    void (*fm_loss)(int64_t R, int64_t D, const float *v, const float *target, const float *row_scale,
                    float *loss, float *grad);
    /* target (R, D) = fr_flow_target_elem(x0[r mod B], eps[r]): rows r = k·B + b. */
    void (*flow_target)(int64_t R, int64_t B, int64_t D, const float *x0, const float *eps, float *target);
    /* m (R,) float64 = mean over D of fr_awm_sqerr_elem(v, eps, x0[r mod B]) in the 8-lane
     * order of fr_awm_lanes. */
    void (*awm_sqerr)(int64_t R, int64_t B, int64_t D, const float *v, const float *eps, const float *x0,
                      double *m);
    /* m (R,) float64 = mean over D of fr_awm_diff_elem(a, b)² in the same order. */
    void (*row_msd_f64)(int64_t R, int64_t D, const float *a, const float *b, double *m);
    /* grad (R, D) += (float)(cb[r]·(a − b1) + ce[r]·(a − b2)) in float64 (fr_awm_diff_elem);
     * b1 or b2 NULL leaves its term out. */
    void (*kl_grad_add)(int64_t R, int64_t D, const float *a, const float *b1, const double *cb, const float *b2,
                        const double *ce, float *grad);
    /* ema (n) = fr_awm_ema_elem(ema, theta, d, 1 − d) (d, 1 − d rounded from double). */
    void (*ema_lerp)(int64_t n, double d, const float *theta, float *ema);
    /* DiffusionNFT (docs/algorithms/nft.md), R rows of D, x0 row r mod B, t (R,): with
     * v± = fr_nft_pos_elem / fr_nft_neg_elem(v, v_old, c) and d± = fr_nft_x0err_elem(xt, t, v±,
     * x0), out (4R) float64 = [w⁺ | w⁻ | L⁺ | L⁻]: w = fr_nft_weight_clip(mean |d|), L = mean
     * fr_nft_sqw_elem(d, w), each mean in the 8-lane order of fr_awm_lanes. */
    void (*nft_rows)(int64_t R, int64_t B, int64_t D, fr_nft_coef c, const float *t, const float *xt,
                     const float *v, const float *v_old, const float *x0, double *out);
    /* grad (R, D) = fr_nft_grad_elem(d⁺, d⁻, cpn[r], cpn[R + r]), cpn (2R) float64. */
    void (*nft_grad)(int64_t R, int64_t B, int64_t D, fr_nft_coef c, const float *t, const float *xt,
                     const float *v, const float *v_old, const float *x0, const double *cpn, float *grad);

    /* ---- model: time embedding, condition rows, x0 heads (core/model.c) ---- */
    /* emb (B,E) = fr_temb_elem(t[b], j, E/2) (flowrl/embed.h): t (B,), E even. */
    void (*temb_sinusoidal)(int64_t B, int64_t E, const float *t, float *emb);
    /* h (B,H) += rows of table (n_rows,H) named by c (B,S) int32: element (b, j) is one chain
     * of plain adds over s = 0 .. S-1 of fr_embed_elem (an id outside [0, n_rows) adds NaN). */
    void (*embed_gather_add)(int64_t B, int64_t S, int64_t H, int64_t n_rows, const float *table,
                             const int32_t *c, float *h);
    /* dtable (n_rows,H) += dh (B,H) scattered by c (B,S): element (r, j) continues its chain
     * with dh[b, j] for every (b, s) with c[b, s] = r, b then s ascending (a batch reduction
     * in the canonical order); ids outside [0, n_rows) add nothing. */
    void (*embed_scatter_add)(int64_t B, int64_t S, int64_t H, int64_t n_rows, const int32_t *c,
                              const float *dh, float *dtable);
    /* x0 head (flowrl/model_elem.h), D >= 1: d_b = fr_x0_head_denom(t[b], sigma_min), out (B,D)
     * = fr_x0_head_velocity(x, xo, d_b); den (B,) receives d_b unless NULL. t (B,), x, xo (B,D);
     * out may alias x. */
    void (*x0_head_fwd)(int64_t B, int64_t D, float sigma_min, const float *t, const float *x,
                        const float *xo, float *den, float *out);
    /* dxo (B,D) = fr_x0_head_grad_x0(dout, den[b]) (= −dout/den[b]); dxo may alias dout. */
    void (*x0_head_bwd)(int64_t B, int64_t D, const float *den, const float *dout, float *dxo);
    /* ε x0 head (flowrl/model_elem.h), D >= 1, n >= 1: row b takes (a_b, s_b) =
     * fr_eps_head_coefs(tab, n, t[b]) and out (B,D) = fr_eps_head_eps(x, xo, a_b, s_b); coef (2,B)
     * receives a_b then (at B + b) s_b unless NULL. tab (2,n): √ᾱ, floored √(1−ᾱ); t (B,),
     * x, xo (B,D); out may alias x. */
    void (*eps_head_fwd)(int64_t B, int64_t D, int64_t n, const float *tab, const float *t, const float *x,
                         const float *xo, float *coef, float *out);
    /* dxo (B,D) = fr_eps_head_grad_x0(dout, a_b, s_b) and, unless dx is NULL, dx (B,D) =
     * fr_eps_head_grad_x(dout, s_b), coef (2,B) from eps_head_fwd; dxo may alias dout, dx not. */
    void (*eps_head_bwd)(int64_t B, int64_t D, const float *coef, const float *dout, float *dxo, float *dx);
    /* x (R,D) = fr_noise_mix_elem(x0[r mod B], eps[r], a[r], s[r]) = a_r·x0 + s_r·ε, the
     * forward process (flowrl/pretrain_elem.h): flow a = 1 − σ, s = σ; DDPM √ᾱ, √(1−ᾱ).
     * a, s (R,). */
    void (*noise_mix)(int64_t R, int64_t B, int64_t D, const float *x0, const float *eps, const float *a,
                      const float *s, float *x);
    /* DiT attention and adaLN (core/dit.c; flowrl/attn_elem.h, docs/determinism.md "Softmax",
     * "adaLN"). p (R,N) = softmax of alpha·x (R,N) per row, fr_softmax_row; p may alias x. */
    void (*softmax_rows)(int64_t R, int64_t N, float alpha, const float *x, float *p);
    /* dx (R,N) = fr_softmax_bwd_row(p, dp, alpha) per row; dx may alias dp. */
    void (*softmax_rows_bwd)(int64_t R, int64_t N, float alpha, const float *p, const float *dp, float *dx);
    /* y (B,L,H) = fr_adaln_mod_elem(x, shift[b], scale[b]); shift, scale rows of H at b·ldm
     * (strided views of one (B, k·H) adaLN output); y may alias x. */
    void (*adaln_mod)(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *x, const float *shift,
                      const float *scale, float *y);
    /* dx (B,L,H) = dy·(1 + scale[b]); dshift, dscale rows at b·ldm = fr_adaln_mod_bwd_col's
     * chains over l (overwritten); dx aliases neither x nor dy. */
    void (*adaln_mod_bwd)(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *x, const float *scale,
                          const float *dy, float *dx, float *dshift, float *dscale);
    /* out (B,L,H) = fr_gate_elem(h, gate[b], y) (gate rows at b·ldm); out may alias h. */
    void (*gate_add)(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *h, const float *gate,
                     const float *y, float *out);
    /* dy (B,L,H) = dout·gate[b] (dy may alias dout); dgate rows at b·ldm = fr_gate_bwd_col's
     * chain over l (overwritten). */
    void (*gate_add_bwd)(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *gate, const float *y,
                         const float *dout, float *dy, float *dgate);

    /* ---- graphs: message passing over edges (core/gfn_comb_net.c; docs/algorithms/gfn-comb.md) ---- */
    /* msg (E,H): row e = row idx[e] of x (n_src,H), idx (E,) int32 in [0, n_src) (an edge's
     * source node; the backward's destination). */
    void (*edge_gather)(int64_t E, int64_t H, const int32_t *idx, int64_t n_src, const float *x, float *msg);
    /* out (N,H) += the messages of each node's edges: element (v, j) continues its chain with plain
     * adds of msg[eid[k], j], k = ptr[v] .. ptr[v+1] − 1 in order (eid NULL: msg[k, j]); ptr (N+1,)
     * int32 with ptr[N] = n_msg, eid (n_msg,) int32 a permutation of [0, n_msg), msg (n_msg,H). The canonical order is the
     * caller's edge list order (gfn_comb: edges sorted by (destination, source)). */
    void (*edge_scatter_add)(int64_t N, int64_t H, const int32_t *ptr, const int32_t *eid, int64_t n_msg,
                             const float *msg, float *out);

    /* ---- samplers, guidance, noise (core/sampler.c, guidance.c, rollout_engine.c) ----
     * B rows of D; q: the step's coefficients (fr_sampler_coef, flowrl/sampler_elem.h). */
    /* μ = fr_step_mean_elem(q, x, model_out, x0_prev), x_next = μ + q.std·ξ
     * (fr_noise_add_elem; xi NULL: x_next = μ, and NULL for ode and dpm); mean (B, D) may be
     * NULL; logp (B,), may be NULL: canonical mean over D (flowrl/reduce.h) of
     * fr_step_logp_elem(q, x_next, μ). x0_prev (B, D): dpm order 2, else NULL. x_next may
     * alias x. */
    void (*sampler_step)(int64_t B, int64_t D, fr_step_coef q, const float *x, const float *model_out,
                         const float *x0_prev, const float *xi, float *x_next, float *mean, float *logp);
    /* logp (B,) = canonical mean over D of fr_step_logp_elem(q, x_next, μ), μ = mean_in if
     * not NULL, else fr_step_mean_elem(q, x, model_out, x0_prev); mean_out (B, D) = μ unless
     * NULL. */
    void (*sampler_logprob)(int64_t B, int64_t D, fr_step_coef q, const float *x, const float *model_out,
                            const float *x0_prev, const float *x_next, const float *mean_in, float *mean_out,
                            float *logp);
    /* The weighted log-prob of the trajectory objectives' per-element weights
     * (flowrl/traj_objective.h fr_traj_data.weight; PXPO's per-pixel rewards): logp (B,) =
     * canonical mean over D of fr_step_logp_w_elem(q, x_next, μ, w) = w·fr_step_logp_elem, μ =
     * mean (B, D), w (B, D). */
    void (*sampler_logprob_w)(int64_t B, int64_t D, fr_step_coef q, const float *x_next, const float *mean,
                              const float *w, float *logp);
    /* out (n) = fr_cfg_elem(v_u, v_c, g) (out may alias either input). */
    void (*cfg_combine)(int64_t n, float g, const float *v_u, const float *v_c, float *out);
    /* x0 (n) = fr_flow_x0_elem(x, v, sigma). */
    void (*flow_x0)(int64_t n, float sigma, const float *x, const float *v, float *x0);
    /* Philox normals (flowrl/philox.h) by coordinate, R rows of D: row r is
     * fr_rng_fill_normal(row, D, seed, purpose, c0, c1[r mod n1], c2 + r / n1), c1 (n1,)
     * uint32. (n1 = R: one id per row; rows k·n1 + b: id b at counter c2 + k.) */
    void (*rng_normal_rows)(int64_t R, int64_t D, uint32_t seed, uint32_t purpose, uint32_t c0, int64_t n1,
                            const uint32_t *c1, uint32_t c2, float *out);
    /* The flow-matching forward process (flowrl/noising.h), R rows of D: row r noises
     * x0[r mod n1] at time t[r] (R,) with ε = normals (seed, purpose, c0, ids[r mod n1],
     * c2 + r / n1): x_t (R, D) = fr_flow_noised_elem(x0, ε, t), eps (R, D) = ε unless NULL.
     * x_t may alias x0 when n1 = R. */
    void (*noise_fm)(int64_t R, int64_t n1, int64_t D, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c2,
                     const uint32_t *ids, const float *x0, const float *t, float *x_t, float *eps);
    /* dst (R, D): row r = src row idx[r] of src (n_src, D), idx (R,) int32 in [0, n_src); idx[r]
     * < 0 leaves dst row r as it is. src and dst must not overlap. */
    void (*gather_rows)(int64_t R, int64_t D, const int32_t *idx, int64_t n_src, const float *src, float *dst);

    /* ---- trajectory objectives: PPO / KL / Guard and their backward (core/grpo.c, traj_*.c) ---- */
    /* (flowrl/grpo.h; per-sample scalars (ratios, clip, advantages) stay on the host.)
     * grad_mean (B, D) (+)= g_logp·dlogp/dμ of a step's log-prob (a mean over D): row scale
     * gd = fr_logp_row_scale(cps, g_logp[b], D, two_var), element fr_logp_dmu_elem(cps, x_next,
     * mean, gd). g_logp (B,); two_var the Gaussian's 2·std² (unused for cps). */
    void (*logp_backward)(int64_t B, int64_t D, int cps, float two_var, const float *x_next, const float *mean,
                          const float *g_logp, float *grad_mean, int accumulate);
    /* out (R,) = fr_sumsq_diff_canonical over D of row r of a and b (R, D): the KL's rows,
     * GRPO-Guard's per-sample bias, and (R = 1, D = B·D) its batch-wide one. */
    void (*row_sumsq_diff)(int64_t R, int64_t D, const float *a, const float *b, float *out);
    /* grad (n) (+)= fr_kl_dmu_elem(mean, mean_ref, gk). */
    void (*kl_grad)(int64_t n, float gk, const float *mean, const float *mean_ref, float *grad, int accumulate);
    /* grad (B, D) (+)= fr_guard_dmu_elem(x_next, mean, mean_old, gd[b], gm[b]); gd, gm (B,). */
    void (*guard_grad)(int64_t B, int64_t D, const float *x_next, const float *mean, const float *mean_old,
                       const float *gd, const float *gm, float *grad, int accumulate);

    /* "exact" (ref, opt, cuda: bitwise equal to ref) or "fast" (vendor kernels inside,
     * equal to ref within docs/determinism.md "--fast: measured tolerance"), for CLIs and
     * audit records to print. */
    const char *mode;
} fr_ops;

/* Backend registry. `ref` is always present; others register when built in. */
typedef struct {
    const char *name;
    const char *description;
    /* Fills ops: called on a table already holding the ref entries. */
    fr_status (*init)(fr_ops *ops);
    /* --fast: overrides entries of a copy of the backend's table with vendor kernels
     * (opt: OpenBLAS / oneDNN, flowrl/fast.h; cuda: cuBLAS, flowrl/cuda.h); NULL = no
     * fast mode. */
    fr_status (*fast_init)(fr_ops *ops);
    /* Sets the worker-thread count (0 = the backend's default) and returns the count in
     * use; NULL for a backend that runs one thread. */
    int (*set_threads)(int n);
} fr_backend_desc;

/* Looks up a backend by name ("ref", "opt", "cuda") and returns its table (ref entries
 * for whatever it does not override). */
fr_status fr_backend_get(const char *name, const fr_ops **out);
/* fr_backend_get with the --fast switch: fast = 0 is fr_backend_get; fast = 1 gives the
 * backend's table with its fast_init's vendor kernels, mode "fast": "opt" with OpenBLAS /
 * oneDNN kernels where fr_fast_supports picks them (flowrl/fast.h), "cuda" with cuBLAS
 * (flowrl/cuda.h). Errors: fast with "ref" (or any other backend without a fast mode) is
 * FR_ERR_ARG; fast without the vendor library (opt: neither OpenBLAS nor oneDNN built in;
 * cuda: no cuBLAS on this machine) is FR_ERR_UNSUPPORTED. */
fr_status fr_backend_get_mode(const char *name, int fast, const fr_ops **out);
/* Names of backends compiled in, NULL-terminated. */
const char *const *fr_backend_names(void);

#endif
