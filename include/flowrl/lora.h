/* LoRA: rank-r adapters on chosen linear layers of a frozen base model (docs/lora.md).
 *
 * One fr_lora owns the base (an fr_model, frozen) and up to FR_LORA_MAX_ADAPTERS named
 * adapters on the same targets ("default" the trained one, then e.g. "old", "ema"). A model
 * the algorithms run is a *view* (fr_lora_view): the base's config and weights, borrowed, with
 * one adapter switched on, or none ("adapter off": the base itself, the KL reference, at no
 * extra memory). A view's parameter list (params / values / grads / n_params) is its adapter's
 * 2·n_t tensors, so the optimiser, EMA, clipping, audit records and checkpoints of the run
 * loop train the adapter and nothing else; its forward and backward are the base's with the
 * adapter's term added in each target layer (flowrl/linear.h).
 *
 *   y = (z W^T + b) + (s · z A^T) B^T,   A (r,K), B (N,r), s = α / r
 *   (PEFT's LoraConfig: r, lora_alpha; peft@5d602fd src/peft/tuners/lora/layer.py
 *   update_layer: scaling = lora_alpha / r)
 *
 * Init of adapter "default" (PEFT's init_lora_weights=True, layer.py reset_lora_parameters):
 * A ~ kaiming_uniform_(a = √5) = U(−1/√K, 1/√K), drawn as (2u − 1)/√K with u = fr_rng_uniform
 * of key (seed, FR_RNG_INIT) and counter (c0 = the base parameter index of W, c1 = 1, c2 = 0,
 * element i) (the model's init uses c1 = 0); B = 0, so the view starts equal to the base.
 *
 * Targets (--lora-targets): a comma-separated list of patterns over the base's linear modules
 * (a weight "M.weight" of two dims is the module M, e.g. "blocks.0.fc1"); a pattern selects M
 * when it equals M, when M ends with "." + pattern (PEFT's target_modules suffix match,
 * tuners_utils.py check_target_module_exists), or when it matches M as an fnmatch(3) glob
 * ("blocks.*.fc1"). The residual MLP's default is "blocks.*.fc1,blocks.*.fc2", every block's
 * two layers: the network's body, as the public configs adapt the transformer blocks'
 * attention projections (flow_grpo@ac4c86e scripts/train_sd3.py target_modules) and leave the
 * embeddings and the output layer alone. cond.weight (an embedding table) is never a target.
 *
 * Names: the adapter tensors of module M are "M.lora_A.weight" (r,K) and "M.lora_B.weight"
 * (N,r) inside flowrl (checkpoints, audit.log); an adapter file (fr_lora_save) stores them as
 * PEFT's adapter_model.safetensors does, "base_model.model.M.lora_A.weight" and
 * "base_model.model.M.lora_B.weight", with metadata lora.rank, lora.alpha, lora.targets (the
 * resolved module list) and lora.base_digest. A run with an EMA (--ema-decay) also writes the
 * EMA shadow of the adapter so (FR_LORA_EMA_FILE). */
#ifndef FLOWRL_LORA_H
#define FLOWRL_LORA_H

#include <stdint.h>

#include "flowrl/linear.h"
#include "flowrl/model.h"
#include "flowrl/status.h"

#define FR_LORA_MAX_ADAPTERS 8
#define FR_LORA_TARGETS_MAX 512
/* The residual MLP's default targets (above). */
#define FR_LORA_MLP_TARGETS "blocks.*.fc1,blocks.*.fc2"
/* The DiT's: every block's attention projections, as the public configs (docs/lora.md). */
#define FR_LORA_DIT_TARGETS "blocks.*.attn.qkv,blocks.*.attn.proj"
/* The adapter file a LoRA run writes in its directory at every checkpoint (PEFT's name). */
#define FR_LORA_ADAPTER_FILE "adapter_model.safetensors"
/* With --ema-decay, the EMA of the adapter, written beside it at the same moments (the same keys
 * and metadata; lora.adapter "eval", the adapter the run evaluates its EMA in). */
#define FR_LORA_EMA_FILE "adapter_ema.safetensors"
/* PEFT's file key prefix. */
#define FR_LORA_PEFT_PREFIX "base_model.model."

typedef struct fr_lora {
    fr_model base;      /* the frozen base (owned; its values are what views read) */
    int64_t r;          /* rank */
    double alpha;
    float scale;        /* (float)(alpha / r) */
    int n_t;            /* adapted layers, in the base's parameter order */
    int *pidx;          /* (n_t) the base parameter index of each target's weight */
    int *tidx;          /* (base.n_params) the target of a base parameter, or -1 */
    int64_t *N, *K;     /* (n_t) out, in features */
    char (*names)[48];  /* (2 n_t) "M.lora_A.weight", "M.lora_B.weight" (fr_model's name size) */
    int64_t *off;       /* (2 n_t) each tensor's offset in an adapter arena */
    int64_t arena_n;    /* floats in one adapter's arena */
    int n_ad;
    char ad_names[FR_LORA_MAX_ADAPTERS][16];
    float *arena[FR_LORA_MAX_ADAPTERS]; /* backend memory, one per adapter */
} fr_lora;

/* The default --lora-targets of a model: the residual MLP's FR_LORA_MLP_TARGETS, the DiT's
 * FR_LORA_DIT_TARGETS (its attention projections, as the public configs). */
const char *fr_lora_default_targets(const fr_model_config *cfg);

/* Takes base (moved in: *base is left empty) and adds adapter "default" with the init above.
 * targets NULL or "": the default. r in 1..min(N, K) of every target; alpha > 0. FR_ERR_ARG
 * naming the pattern that selects nothing (and the modules there are). */
fr_status fr_lora_new(fr_lora *L, fr_model *base, int64_t r, double alpha, const char *targets, uint32_t seed);
void fr_lora_free(fr_lora *L);

/* The adapter of that name (*idx), added (zero) when absent. */
fr_status fr_lora_adapter(fr_lora *L, const char *name, int *idx);
/* dst's values = src's: one fr_d2d of the arena. */
fr_status fr_lora_copy(fr_lora *L, int dst, int src);

/* A model that runs the base with adapter `adapter` on (-1: off, the base). trainable: the
 * view owns gradients for the adapter's tensors (zeroed), else its grads are NULL and its
 * backward computes no parameter gradient. Free with fr_model_free (which frees only what the
 * view owns). */
fr_status fr_lora_view(fr_model *v, fr_lora *L, int adapter, int trainable);

/* The adapter term of base parameter i (a weight) in view m, or 0 when m runs no adapter on
 * it: fills *ad (flowrl/linear.h). */
int fr_lora_layer(const fr_model *m, int i, fr_lora_ad *ad);

/* The targets as "M1,M2,..." (the resolved module names) into buf. */
fr_status fr_lora_targets_string(const fr_lora *L, char *buf, size_t n);

/* Adapter `adapter` as an adapter file (PEFT keys, metadata above; written atomically), and
 * back: the file's rank, alpha and targets must be L's (FR_ERR_FORMAT naming path and key). */
fr_status fr_lora_save(const fr_lora *L, int adapter, const char *base_digest, const char *path);
fr_status fr_lora_load(fr_lora *L, int adapter, const char *path);
/* A set on base (moved in) whose adapter "default" is the file's: its rank, alpha and targets
 * from the metadata (an adapter file of fr_lora_save). On failure *base is intact or empty:
 * fr_model_free it either way. */
fr_status fr_lora_from_file(fr_lora *L, fr_model *base, const char *path);

#endif
