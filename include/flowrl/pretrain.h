/* Pretraining of a base model on a built-in task: rectified-flow (velocity) or DDPM
 * (epsilon) training of the conditional MLP of flowrl/model.h, with AdamW, global-norm
 * clipping, a weight EMA and condition dropout for classifier-free guidance.
 *
 * Step s = 0, 1, ..., steps−1 (batch B, D = task->D); every random number is a pure
 * function of (seed, purpose, s, b), so a run is reproducible bit for bit and resumable
 * from any checkpoint (docs/design.md §1.5):
 *   prompt_b  = train prompt fr_rng_below(u32(FR_RNG_PROMPTS, (s, b, FR_PRETRAIN_TAG), 0),
 *               n_train)                                     (uniform over [0, n_train))
 *   x0_b      = task->sample(prompt_b, seed, index = s·B + b)
 *   ε_b       = normal(FR_RNG_PRETRAIN_NOISE, (s, b, 0), element i), i < D
 *   drop_b    = uniform(FR_RNG_CFG_DROPOUT, (s, b, 0), 0) < cfg_dropout
 *               -> the null condition (fr_cond_ids with prompt −1)
 *   velocity (docs/algorithms/pretraining.md §1):
 *     σ_b     = uniform(FR_RNG_PRETRAIN_TIME, (s, b, 0), 0)                   (sigma uniform)
 *             = sigmoid(m + s_ln·normal(FR_RNG_PRETRAIN_TIME, (s, b, 0), 0))  (logit-normal,
 *               SD3's lognorm(0, 1) by default)
 *     x = (1−σ)·x0 + σ·ε,  t = 1000σ,  target v* = ε − x0        (flowrl/pretrain_elem.h)
 *   epsilon (DDPM, Ho et al. 2020 Alg. 1; diffusers DDPMScheduler.add_noise):
 *     t_b     = fr_rng_below(u32(FR_RNG_PRETRAIN_TIME, (s, b, 0), 0), 1000)
 *     x = √ᾱ_t·x0 + √(1−ᾱ_t)·ε,  model input (float)t,  target ε
 *     ᾱ from β = linspace(1e-4, 0.02, 1000) ("linear", DDPM's) or SD's scaled_linear
 *     (0.00085, 0.012); recorded in the metadata as ddpm.schedule, ddpm.beta_start,
 *     ddpm.beta_end, ddpm.n_train (the keys core/infer_ckpt.c reads)
 *   loss  L = mean over (B, D) of (out − target)², canonical long sum / (B·D)
 *   dL/dout = (2/(B·D))·(out − target), row b times w_b = fr_eps_loss_weight(ᾱ_t_b) with
 *           --pred epsilon and eps_weight != none (the reported loss stays unweighted) -> backward -> clip (global norm) -> AdamW(lr_s)
 *   -> EMA with decay min(ema, (1 + k)/(10 + k)), k = updates before this one (the
 *      warm-up of TF's ExponentialMovingAverage / diffusers EMAModel)
 *   lr_s  = lr·(s+1)/warmup for s < warmup, then cosine from lr to lr_min:
 *           lr_min + (lr − lr_min)·(1 + cos(π·(s − warmup)/(steps − warmup)))/2
 *           (schedule "constant": lr after the warm-up)
 * The model is initialised with fr_model_init(seed). */
#ifndef FLOWRL_PRETRAIN_H
#define FLOWRL_PRETRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/model.h"
#include "flowrl/status.h"

/* c2 of the prompt-choice stream, so that pretraining's prompt choice never shares
 * coordinates with the RL trainer's per-epoch choice under the same seed. */
#define FR_PRETRAIN_TAG 0x70726574u /* "pret" */

typedef enum { FR_SIGMA_UNIFORM = 0, FR_SIGMA_LOGIT_NORMAL = 1 } fr_sigma_sampling;
typedef enum { FR_LR_COSINE = 0, FR_LR_CONSTANT = 1 } fr_lr_schedule;
typedef enum { FR_BETAS_LINEAR = 0, FR_BETAS_SCALED_LINEAR = 1 } fr_betas_kind;
/* Per-row weight w_t of the epsilon loss (docs/algorithms/pretraining.md §4), with
 * SNR(t) = ᾱ_t/(1 − ᾱ_t); since ‖ε̂ − ε‖² = SNR(t)·‖x̂0 − x0‖², w_t·SNR(t) is the weight on
 * x0 errors:
 *   none     w = 1                    (DDPM's simple loss; x0 errors weighted by SNR)
 *   min-snr  w = min(SNR, γ)/SNR      (Min-SNR-γ, Hang et al. 2023: x0 errors by min(SNR, γ))
 *   x0       w = 1/ᾱ_t = (SNR + 1)/SNR (x0 errors by 1/(1 − ᾱ_t), the flow x0 head's 1/σ²;
 *                                      v-prediction's loss, Salimans & Ho 2022) */
typedef enum { FR_EPS_WEIGHT_NONE = 0, FR_EPS_WEIGHT_MIN_SNR = 1, FR_EPS_WEIGHT_X0 = 2 } fr_eps_weight;

typedef struct {
    const char *task;       /* "gmm2d", "shapes" */
    const char *preset;     /* NULL: the task's default (fr_pretrain_default_preset) */
    int64_t H, F, n_blocks; /* > 0 (n_blocks >= 0): override the preset's dims; the
                               model's preset name becomes "custom" */
    fr_pred pred;           /* velocity (rectified flow) or epsilon (DDPM) */
    int64_t steps;          /* total optimizer steps */
    int64_t batch;          /* B */
    uint32_t seed;          /* init, data, noise, times, dropout */
    double lr, lr_min;       /* double, as torch (flowrl/optim.h) */
    int64_t warmup;         /* linear warm-up steps (< 0: min(100, steps / 10)) */
    fr_lr_schedule schedule;
    double beta1, beta2, adam_eps, weight_decay;
    float clip;             /* max global grad norm; <= 0: no clipping */
    float ema;              /* EMA decay; 0 keeps a copy of the weights */
    fr_sigma_sampling sigma;
    float logit_mean, logit_std;
    float cfg_dropout;      /* probability of the null condition */
    fr_betas_kind betas;    /* epsilon only */
    int head;               /* -1: the preset's (shapes: x0, gmm2d: velocity), else an fr_head;
                               epsilon with x0: ε̂ = (x − √ᾱ_t·x̂0)/max(√(1−ᾱ_t), sigma_min) */
    float sigma_min;        /* x0 head: > 0 replaces the preset's floor (FR_X0_HEAD_SIGMA_MIN) */
    fr_eps_weight eps_weight; /* epsilon only: the loss's per-row weight (none: today's bits) */
    float snr_gamma;        /* min-snr's γ (> 0; default 5) */
    int64_t save_every;     /* > 0: also write OUT-stepNNNNNN.safetensors every N steps */
    const char *out;        /* checkpoint path (written at the end), or NULL */
    const char *resume;     /* a checkpoint of this same run to continue from, or NULL */
} fr_pretrain_cfg;

/* Defaults (documented in `flowrl pretrain --help`): velocity, 2000 steps, batch 128,
 * the preset's dims (H = F = 0, n_blocks = -1),
 * seed 0, lr 1e-3 -> 0 cosine, warm-up min(100, steps/10), AdamW (0.9, 0.999, 1e-8) with
 * weight decay 0, clip 1.0, EMA 0.999, logit-normal(0, 1), cfg_dropout 0.1, linear
 * betas, the preset's head (head = -1), eps_weight none (snr_gamma 5). task, preset and out
 * are NULL. */
fr_pretrain_cfg fr_pretrain_defaults(void);
/* "gmm2d-s" for gmm2d, "shapes-s" for shapes, NULL for an unknown task. */
const char *fr_pretrain_default_preset(const char *task);
/* Checks the options (FR_ERR_ARG naming the first bad one) and resolves the model config
 * (task dims, n_slots, pred). */
fr_status fr_pretrain_model_config(const fr_pretrain_cfg *cfg, fr_model_config *mcfg);
/* The learning rate of step s (0-based). */
double fr_pretrain_lr(const fr_pretrain_cfg *cfg, int64_t s);
/* The warm-up actually used (cfg->warmup, or its default when < 0). */
int64_t fr_pretrain_warmup(const fr_pretrain_cfg *cfg);
/* Path of the intermediate checkpoint after `step` steps: OUT with "-stepNNNNNN" (at least
 * 6 digits) inserted before a final ".safetensors", or appended. FR_ERR_ARG if it does not
 * fit in n bytes. */
fr_status fr_pretrain_step_path(const char *out, int64_t step, char *buf, size_t n);

/* The weight w of an epsilon-loss row at ᾱ_t (fr_eps_weight), in double; the row's gradient
 * scale is (float)(w·2/(B·D)). */
double fr_eps_loss_weight(fr_eps_weight kind, float gamma, float alpha_bar);

/* Reported after every step. */
typedef struct {
    int64_t step;       /* steps done (1..steps) */
    int64_t steps;
    float loss;         /* this step's batch loss */
    float grad_norm;    /* before clipping */
    float lr;
    const char *saved;  /* path of a checkpoint written after this step, or NULL */
} fr_pretrain_event;

/* Returns nonzero to stop early (nothing more is written; the status is FR_OK and
 * result.steps_done says where it stopped). */
typedef int (*fr_pretrain_cb)(const fr_pretrain_event *ev, void *user);

typedef struct {
    int64_t first_step;  /* 0, or the resumed checkpoint's step */
    int64_t steps_done;
    float final_loss;    /* last step's batch loss */
    float tail_loss;     /* mean batch loss of the last min(100, steps run) steps */
    int64_t n_params;
    fr_model_config model;
} fr_pretrain_result;

/* The model, its optimiser state and the step's arrays live in be's memory; per step the
 * task's samples, the noise, the condition ids and the per-sample times cross once
 * (fr_h2d) and the loss comes back (fr_d2h). Every backend writes the same bytes. */
fr_status fr_pretrain(const fr_pretrain_cfg *cfg, fr_backend *be, fr_pretrain_cb cb,
                      void *user, fr_pretrain_result *result);

#endif
