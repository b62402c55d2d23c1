/* The conditional velocity / noise network: a residual MLP over flattened data (below), or,
 * with cfg.arch = FR_ARCH_DIT, the diffusion transformer of core/dit.c (docs/algorithms/dit.md),
 * behind the same functions (docs/design.md §6 tasks gmm2d and shapes); forward and backward written against the op table
 * so that every backend runs the same graph.
 *
 *   x (B,D), t (B,) timestep (flow models: t = 1000 sigma, docs/algorithms/pretraining.md §1 "Rectified
 *   flow"), c (B,S) int32 condition ids in [0, n_cond], S = n_slots, n_cond = the null id
 *   (classifier-free guidance: the unconditional branch and dropped conditions use
 *   c = n_cond in every slot).
 *
 *   h    = ((x W_in^T + b_in) + temb) + table[c_0] + ... + table[c_{S-1}]   (B,H)
 *   temb = W_t2 act(W_t1 sin_emb(t) + b_t1) + b_t2                  (B,H), sin_emb: E
 *   for k < n_blocks:                                                 (flowrl/embed.h)
 *     h  = h + (W2_k act(W1_k LN_k(h) + b1_k) + b2_k)               W1 (F,H), W2 (H,F)
 *   o    = W_out LN_f(h) + b_out                                    (B,D)
 *   out  = o                                  head "velocity" (the prediction itself)
 *   out  = (x - o) / max(t/1000, sigma_min)   head "x0", pred velocity: o is x̂0 and out the
 *                                             flow velocity it implies (flowrl/model_elem.h)
 *   out  = (x - a_t o) / s_t                  head "x0", pred epsilon: o is x̂0 and out the
 *                                             noise it implies, a_t = sqrt(abar_t), s_t =
 *                                             max(sqrt(1 - abar_t), sigma_min), abar of the
 *                                             config's DDPM schedule at step floor(t)
 *
 * Every "W z + b" is be->ops->gemm (one fmaf chain over the input dim) then be->ops->bias_add;
 * LN is be->ops->layernorm_fwd with affine weight/bias, eps cfg.ln_eps. The condition and time
 * enter once, at the input, and reach every block through the residual stream (the
 * pre-LN residual MLP of e.g. the "tiny diffusion" baselines; per-block injection can be
 * added later without changing the parameter names already used).
 *
 * Parameters (safetensors / PyTorch names, Linear weights stored (out, in)):
 *   in.weight (H,D) in.bias (H)                  time.fc1.weight (H,E) time.fc1.bias (H)
 *   time.fc2.weight (H,H) time.fc2.bias (H)      cond.weight (n_cond+1,H)
 *   blocks.K.ln.weight (H) blocks.K.ln.bias (H)  blocks.K.fc1.weight (F,H) .fc1.bias (F)
 *   blocks.K.fc2.weight (H,F) .fc2.bias (H)      norm.weight (H) norm.bias (H)
 *   out.weight (D,H) out.bias (D)
 * in this order (the list order, the init coordinate c0 and the file order).
 *
 * Init (a pure function of (seed, parameter index), Philox purpose FR_RNG_INIT, counter
 * (c0 = index in the list above, 0, 0), element i):
 *   Linear weights of in, time.fc1, time.fc2, blocks.K.fc1:  U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 *     (torch.nn.Linear's default bound), as (2 u - 1) * bound, u = fr_rng_uniform;
 *   cond.weight: N(0, 1) (torch.nn.Embedding's default), fr_rng_normal;
 *   blocks.K.fc2 and out (weights and biases): 0, so each block starts as the identity
 *     and the output at 0 (DiT's zero-initialised final layer / adaLN-zero);
 *   other biases 0; LN weights 1, LN biases 0. */
#ifndef FLOWRL_MODEL_H
#define FLOWRL_MODEL_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/optim.h"
#include "flowrl/safetensors.h"
#include "flowrl/status.h"
#include "flowrl/tensor.h"

/* What the output means (the network is the same; samplers and losses read this). */
typedef enum {
    FR_PRED_VELOCITY = 0, /* flow matching: v ~ eps - x0 (docs/algorithms/pretraining.md §1) */
    FR_PRED_EPSILON = 1,  /* DDPM / DDIM: eps prediction */
    FR_PRED_COUNT
} fr_pred;

/* DDPM betas (docs/algorithms/samplers.md §1.5; checkpoint key ddpm.schedule). */
typedef enum { FR_DDPM_LINEAR = 0, FR_DDPM_SCALED_LINEAR = 1, FR_DDPM_BETAS_COUNT } fr_ddpm_betas;

/* What the last layer computes (callers always get cfg.pred's quantity). */
typedef enum {
    FR_HEAD_VELOCITY = 0, /* the last layer's output is returned as it is */
    FR_HEAD_X0 = 1,       /* x-prediction (JiT): the last layer gives x̂0, the model returns
                             v = (x − x̂0) / max(σ, sigma_min) (flow models) or
                             ε̂ = (x − √ᾱ_t·x̂0) / max(√(1−ᾱ_t), sigma_min) (epsilon models).
                             Lets a network narrower than D denoise: it need not pass the
                             noise through its H-wide residual stream. */
    FR_HEAD_COUNT
} fr_head;

/* The network (checkpoint key model.arch; absent = mlp). fr_model_forward / backward
 * dispatch on it, so every algorithm runs on either. */
typedef enum {
    FR_ARCH_MLP = 0, /* the residual MLP above */
    FR_ARCH_DIT = 1, /* the diffusion transformer of core/dit.c (docs/algorithms/dit.md) */
    FR_ARCH_COUNT
} fr_arch;

#define FR_MODEL_MAX_BLOCKS 256
/* sigma_min of the shapes presets' x0 head, and of an x0 head asked for by name
 * (flowrl pretrain --head x0): flow σ = 0.05, or an ε model's √(1−ᾱ_t) = 0.05, t ≈ 11 of 1000
 * with the linear betas (docs/algorithms/pretraining.md §5). */
#define FR_X0_HEAD_SIGMA_MIN 0.05f

typedef struct {
    char preset[32];  /* "gmm2d-s", ... or "custom" */
    int64_t D;        /* data dims (flattened) */
    int64_t n_cond;   /* condition ids 0..n_cond-1, plus the null id n_cond */
    int64_t n_slots;  /* ids per sample: the condition embedding is the sum of the rows of
                         its n_slots ids (1: one id per prompt; shapes: one id per prompt
                         token, so held-out prompts combine trained embeddings) */
    int64_t H;        /* residual width */
    int64_t F;        /* inner width of each block's MLP */
    int64_t n_blocks; /* 0 .. FR_MODEL_MAX_BLOCKS */
    int64_t E;        /* sinusoidal timestep features, even */
    fr_act act;       /* in the blocks and the time MLP */
    fr_pred pred;
    float ln_eps;     /* 1e-5, torch.nn.LayerNorm's default */
    fr_head head;     /* velocity unless the preset says x0 */
    float sigma_min;  /* x0 head: the floor of the divisor, in (0, 1]; 0 for velocity */
    /* x0 head of an epsilon model: the DDPM schedule its ᾱ_t comes from (the checkpoint's
     * ddpm.* keys, docs/algorithms/pretraining.md §3); all 0 otherwise. */
    fr_ddpm_betas ddpm_betas;
    double beta_start, beta_end; /* in (0, 1) */
    int64_t n_train;             /* timesteps, 2 .. 100000 */
    /* DiT (arch dit; all 0 for the MLP): the data are images (img_c, img_h, img_w) in CHW
     * order, D = img_c·img_h·img_w, cut into patch × patch tokens; n_heads divides H. */
    fr_arch arch;
    int64_t img_c, img_h, img_w, patch, n_heads;
    /* The last layer's width (MLP, velocity head only): 0 = D (every preset). A wider head
     * (GMFlow / pi-Flow's Gaussian-mixture row, flowrl/gm.h) makes out.weight (out_D, H),
     * out.bias (out_D) and the forward's output / the backward's dout (B, out_D). */
    int64_t out_D;
} fr_model_config;

/* The output width: cfg->out_D, or D when it is 0. */
int64_t fr_model_out_dim(const fr_model_config *cfg);

/* The eps x0 head's table (2, n_train): √ᾱ_t, then max(√(1−ᾱ_t), sigma_min), from the
 * config's betas in float32 (fr_alphas_cumprod, fr_ddpm_coefs: the bits the pretraining's
 * forward process uses). tab is host memory. */
fr_status fr_model_eps_head_table(const fr_model_config *cfg, float *tab);
/* 1 when cfg's head is the x0 head of an epsilon model. */
int fr_model_eps_head(const fr_model_config *cfg);

/* Presets fix H, F, n_blocks, E, act, head, sigma_min (see core/model_config.c for the
 * table); D and n_cond come from the task. pred defaults to velocity. FR_ERR_ARG names the known presets. */
fr_status fr_model_preset(const char *name, int64_t D, int64_t n_cond, fr_model_config *cfg);
const char *const *fr_model_preset_names(void); /* NULL-terminated */
/* FR_ERR_ARG naming the first bad field. */
fr_status fr_model_config_check(const fr_model_config *cfg);
int64_t fr_model_config_num_params(const fr_model_config *cfg);
/* Forward FLOPs per sample of the GEMMs (2 per multiply-add; elementwise work, LN and
 * the embeddings excluded). A backward with parameter gradients costs about twice this
 * (dW and the input gradient of each layer). */
double fr_model_config_flops(const fr_model_config *cfg);
/* Indexed by the enum, NULL-terminated (flowrl/enum_names.h). */
extern const char *const fr_pred_names[FR_PRED_COUNT + 1];
extern const char *const fr_head_names[FR_HEAD_COUNT + 1];
extern const char *const fr_act_names[FR_ACT_COUNT + 1];
extern const char *const fr_arch_names[FR_ARCH_COUNT + 1];
const char *fr_arch_name(fr_arch a); /* "mlp", "dit" */
int fr_arch_from_name(const char *s, fr_arch *out);
const char *fr_pred_name(fr_pred p); /* "velocity", "epsilon" */
int fr_pred_from_name(const char *s, fr_pred *out); /* 1 if known */
const char *fr_head_name(fr_head h); /* "velocity", "x0" */
int fr_head_from_name(const char *s, fr_head *out);
const char *fr_act_name(fr_act a);   /* "identity", "silu", "gelu_tanh", ... */
int fr_act_from_name(const char *s, fr_act *out);

/* Values and gradients live in backend memory (flowrl/backend.h): host code reads them with
 * fr_d2h (checkpoints, digests) and computes on them with op entries only. The tensors, the
 * names and the parameter list are host structures describing that memory. */
typedef struct {
    fr_model_config cfg;
    fr_backend *be;     /* the backend whose memory holds the arenas */
    int n_params;
    fr_param *params;   /* (n_params), list order above */
    fr_tensor *values;  /* (n_params) views into one aligned arena each for values, grads */
    fr_tensor *grads;
    char (*names)[48];
    float *arena_values, *arena_grads; /* backend memory, fr_model_arena_floats(m) each */
    float *head_tab;    /* eps x0 head: (2, n_train) backend memory (fr_model_eps_head_table), else NULL */
    /* Many processes (docs/determinism.md "Many processes"): with dw_parts > 1 the backward
     * computes only rows fr_dist_block(N, 1, dw_part, dw_parts) of each linear weight's
     * gradient dW (N, K) (fr_model_dw_split); its other rows are left as they are for the
     * caller to gather. 0 of 0 (fr_model_alloc): every row. split_rows = 1 (under mpirun, with
     * dw_part = the rank, dw_parts = the ranks): a keep workspace's forward and backward split
     * the batch by rows over the processes too (fr_model_ws's split; core/model_dist.c gathers). */
    int dw_part, dw_parts, split_rows;
    /* The weights the forward reads, in list order: values, or a LoRA view's frozen base
     * (flowrl/lora.h), whose params / values / grads are then its adapter's tensors. */
    const fr_tensor *w;
    struct fr_lora *lora; /* a LoRA view's adapters (borrowed), or NULL */
    int adapter;          /* the view's adapter, -1: off (the base) */
} fr_model;

/* 1 when parameter i is a linear weight whose gradient rows the backward splits (above). */
int fr_model_dw_split(const fr_model *m, int i);

/* Allocates parameters (zero) and gradients (zero) for cfg in be's memory, without init.
 * be must outlive the model. */
fr_status fr_model_alloc(fr_model *m, fr_backend *be, const fr_model_config *cfg);
/* fr_model_alloc, then the init described above (computed on the host, copied over with
 * fr_h2d). */
fr_status fr_model_init(fr_model *m, fr_backend *be, const fr_model_config *cfg, uint32_t seed);
void fr_model_free(fr_model *m);
/* Floats in each arena: the parameters, each starting on a 64-byte boundary. Two models of
 * one config have the same layout, so dst's values = src's is one fr_d2d of the arena
 * (fr_model_copy_values). */
int64_t fr_model_arena_floats(const fr_model *m);
/* fr_freeze (flowrl/backend.h) on the arena of the weights m's forward reads (its values, or a
 * LoRA view's base), frozen = 1 before a stretch that only reads them (a rollout), 0 after. */
void fr_model_freeze(const fr_model *m, fr_backend *be, int frozen);
/* dst's values = src's (same config, same backend): one fr_d2d. */
fr_status fr_model_copy_values(fr_model *dst, const fr_model *src);
/* The parameter of that name, or NULL. */
fr_param *fr_model_param(fr_model *m, const char *name);
void fr_model_zero_grad(const fr_model *m, fr_backend *be);
int64_t fr_model_num_params(const fr_model *m);

/* Activations of one forward, sized for up to cap_B samples. keep = 1 stores what the
 * backward needs (one slot per block); keep = 0 is the inference form (one slot reused,
 * no backward buffers). */
typedef struct {
    int64_t cap_B, B;
    int keep, ready;       /* ready: a keep-forward has run and backward may follow */
    /* split: the last keep-forward computed only this process's rows [lo, hi) =
     * fr_dist_block(B, 1, dw_part, dw_parts) of a model with split_rows and dw_parts > 1 (not a
     * LoRA view)
     * and gathered what the backward's reductions over rows read; the backward then computes
     * its input gradients on these rows only (core/model.c; docs/determinism.md "Many
     * processes"). Every process must call both with the same batch. Else [0, B). */
    int split;
    int64_t lo, hi;
    int64_t D, H, F, E, n_blocks;
    float *x;              /* (B,D) copy of the input */
    int32_t *c;            /* (B,S) */
    float *temb_in;        /* (B,E) */
    float *t1, *a1;        /* (B,H) time MLP pre-/post-activation */
    float *h;              /* (n_blocks+1, B, H) residual stream before block k (slot
                              n_blocks: before the final LN); keep=0: one slot */
    float *ln;             /* (n_blocks, B, H) */
    float *ln_mean, *ln_rstd; /* (n_blocks, B) */
    float *u, *a;          /* (n_blocks, B, F) fc1 output, activation */
    float *s1, *sa;        /* keep, an activation with a transcendental (fr_act_saved_elem): its
                              saved values for the backward, (B,H) time MLP, (n_blocks, B, F)
                              blocks (act_fwd_save / act_bwd_saved); else NULL */
    float *lnf, *lnf_mean, *lnf_rstd; /* (B,H), (B,), (B,) */
    float *tmp;            /* (B,H) scratch */
    float *dh, *dtmp;      /* (B,H) backward scratch */
    float *xo, *den;       /* x0 head: (B,D) x̂0 (backward: dL/dx̂0), (B,) its divisors
                              (eps x0 head: (2,B) a, s) */
    float *dxh;            /* eps x0 head, keep: (B,D) dL/dx through the head */
    float *da, *du;        /* (B,F) backward scratch */
    int64_t lora_r;        /* a LoRA view's rank (0: none) */
    float *lz, *dlz;       /* LoRA: (n_t or 1, B, r) each target's s·z A^T, (B, r) scratch */
    struct fr_dit_ws *dit; /* arch dit: its activations (core/dit.c), host struct; the MLP's
                              arrays above are then unused */
    void *buf;             /* the one allocation behind the arrays, backend memory */
    fr_backend *be;        /* its backend (the model's) */
} fr_model_ws;

/* In the model's backend memory (m->be). */
fr_status fr_model_ws_alloc(fr_model_ws *ws, const fr_model *m, int64_t cap_B, int keep);
void fr_model_ws_free(fr_model_ws *ws);

/* out = net(x, t, c) for B <= ws->cap_B rows. Each output row depends only on its own
 * input row (the batch never enters a reduction), so results do not depend on B or on
 * the batch composition. out may alias x. x, t, c and out are backend memory (the caller
 * uploads the per-sample t and c with fr_h2d). A condition id outside [0, n_cond] makes
 * its sample's output NaN (embed_gather_add, flowrl/ops.h) on every backend; FR_ERR_ARG
 * for B too big. */
fr_status fr_model_forward(const fr_model *m, fr_backend *be, fr_model_ws *ws, int64_t B,
                           const float *x,   // (B,D)
                           const float *t,   // (B,)
                           const int32_t *c, // (B,S)
                           float *out);      // (B,D)

/* Given dout = dL/dout (B,D, backend memory) of the last keep-forward, ADDS dL/dparam into the model's
 * gradients (so micro-batches accumulate: zero them with fr_model_zero_grad before the
 * first). Each parameter gradient continues the canonical batch-reduction chains from
 * its old value, so running micro-batches in order gives the same bits as one batch.
 * dx (B,D) receives dL/dx (overwritten) unless NULL. No gradient for t. */
fr_status fr_model_backward(fr_model *m, fr_backend *be, fr_model_ws *ws,
                            const float *dout, // (B,D)
                            float *dx);        // (B,D) or NULL

/* ---- checkpoints (safetensors, flowrl/safetensors.h) -------------------------------- */

/* Metadata keys "model.preset", "model.D", "model.n_cond", "model.H", "model.F",
 * "model.n_blocks", "model.E", "model.act", "model.pred", "model.ln_eps" (decimal text;
 * "model.out_D" only when out_D != 0, so files of the D-wide head keep their keys;
 * ln_eps as "%.9g", which round-trips a float), and for a head other than velocity
 * "model.head" and "model.sigma_min" ("%.9g"); the x0 head of an epsilon model also writes
 * and needs "ddpm.schedule" (linear, scaled_linear), "ddpm.beta_start", "ddpm.beta_end"
 * ("%.9g") and "ddpm.n_train", the keys its samplers read (core/infer_ckpt.c). A file without
 * "model.head" (written before heads existed, or a velocity head) loads as velocity,
 * sigma_min 0. */
fr_status fr_model_config_to_meta(const fr_model_config *cfg, fr_st_file *f);
fr_status fr_model_config_from_meta(const fr_st_file *f, fr_model_config *cfg);
/* Adds t (a tensor in be's memory) to f as name: a host copy (fr_d2h). */
fr_status fr_dev_tensor_to_st(fr_backend *be, fr_st_file *f, const char *name, const fr_tensor *t);
/* Copies tensor `name` of f into t (be's memory, fr_h2d); it must be present, F32 and of t's
 * shape (FR_ERR_FORMAT naming it). */
fr_status fr_dev_tensor_from_st(fr_backend *be, const fr_st_file *f, const char *name, fr_tensor *t);
/* Adds every parameter value as prefix + name (e.g. prefix "ema." for EMA weights),
 * copied to the host. */
fr_status fr_model_values_to_st(const fr_model *m, fr_st_file *f, const char *prefix);
/* Copies prefix + name of every parameter from f into m's values; each must be present,
 * F32 and of the right shape (FR_ERR_FORMAT naming the tensor). Other tensors in f are
 * ignored (optimizer state, EMA, ...). */
fr_status fr_model_values_from_st(fr_model *m, const fr_st_file *f, const char *prefix);
/* Writes config metadata + values to path (atomically); reads them back into a model
 * freshly allocated in be's memory. */
fr_status fr_model_save(const fr_model *m, const char *path);
fr_status fr_model_load(fr_model *m, fr_backend *be, const char *path);

#endif
