/* GMFlow (docs/algorithms/gmflow.md; spec/more.md §10.1; Lakonik/GMFlow@c3697df
 * lib/models/diffusions/gmflow.py, lib/models/losses/diffusion_loss.py): a network whose head
 * is a K-component Gaussian mixture over the velocity u (row layout flowrl/gm.h), trained by
 * the NLL of x_low under the reverse-transition GM from x_high, sampled by GM-SDE.
 *
 * Noise convention: rectified flow, x_t = α x0 + σ ε with σ = t/1000, α = 1 − σ; u = (x_t −
 * x0)/σ, so the x0-GM of a head row at x is means x − σ μ_k, std σ e^s, weights softmax(a).
 *
 * The math (core/gmflow.c) runs on the host in double, on head rows the caller copies out of
 * backend memory (fr_d2h): for D = 2 that is K·D + K + 1 floats a sample. exp / log are the
 * deterministic double functions of flowrl/awm_elem.h, so the values are a function of the
 * input bits on every machine. Training and sampling: core/gmflow_train.c. */
#ifndef FLOWRL_GMFLOW_H
#define FLOWRL_GMFLOW_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/gm.h"
#include "flowrl/mlp.h"
#include "flowrl/model.h"
#include "flowrl/status.h"
#include "flowrl/task.h"

/* ---- the GM math (core/gmflow.c) ---------------------------------------------------- */

/* The reverse transition from σ (x_high) to σ' < σ (x_low), α = 1 − σ, α' = 1 − σ':
 *   c1 = (σ'/σ)² (α/α'),  β̄ = 1 − ((σ'/σ)(α/α'))²,  c2 = β̄ α',  c3 = β̄ σ'²
 * x_low | x_high, x0 ~ N(c1 x_high + c2 x0, c3). σ' = 0: c1 = 0, β̄ = 1, c2 = 1, c3 = 0. */
typedef struct {
    double c1, c2, c3, beta;
} fr_gmflow_coefs;

fr_gmflow_coefs fr_gmflow_transition_coefs(double sigma, double sigma_to);

/* The transition GM of one head row (gm.h layout, (K·D + K + 1,)) at x (D,):
 *   means[k·D + c] = c1 x_c + c2 (x_c − σ μ_kc),  logw[k] = log_softmax(a)_k,
 *   *var = (c2 σ e^s)² + c3  (one variance for every component and coordinate).
 * Public code floors σ c2 and c3 at 1e-6 inside its logs (gmflow.py reverse_transition);
 * flowrl keeps the spec's exact variance (the t_low = 0 check holds exactly). */
void fr_gmflow_transition(int K, int D, const float *row, const float *x, double sigma, double sigma_to,
                          double *means, // (K, D)
                          double *logw,  // (K,)
                          double *var);

/* The NLL of y (D,) under the transition GM of row at x:
 *   −logsumexp_k[ Σ_c (−½ ((m_kc − y_c) r)² − log std) + log w_k ],  std = √var,
 *   r = min(1/std, 1e4)  (gaussian_mixture_nll_loss's inverse-std clamp, eps 1e-4),
 * ½ log 2π dropped. grad (K·D + K + 1,) or NULL receives d NLL / d row (analytic, double). */
double fr_gmflow_nll_row(int K, int D, const float *row, const float *x, const float *y, double sigma,
                         double sigma_to, double *grad);

/* The batch mean of fr_gmflow_nll_row over B rows (a sequential double sum in row order);
 * dout (B, K·D + K + 1) or NULL receives d mean / d row as float. */
double fr_gmflow_nll(int64_t B, int K, int D, const float *rows, // (B, W)
                     const float *x,                             // (B, D) x_high
                     const float *y,                             // (B, D) x_low
                     const double *sigma, const double *sigma_to, // (B,)
                     float *dout);                                // (B, W) or NULL

/* ---- the network and its training (core/gmflow_train.c) ----------------------------- */

/* GMFlowMLP2DDenoiser's inputs (toymodels.py): [time embedding (E) | position embedding (E)]
 * of (t, x); t in [0, 1000]. Time: diffusers Timesteps(E, flip_sin_to_cos, shift 1):
 * f_j = exp(−ln 10000 · j/(E/2 − 1)), [cos(t f_j) | sin(t f_j)]. Position: per coordinate c
 * E/(2D) periods P_j log-spaced from 5e-3 to 50, [sin(2π x_c/P_j) | cos(2π x_c/P_j)], the
 * coordinates one after another. Float, through flowrl's sin / cos / exp (detmath.h). */
void fr_gmflow_embed(int E, int D, float t, const float *x, float *out); // out (2E,)

typedef struct {
    int K, D, E, hidden, layers; /* mixture size, data dims, embedding width, MLP width, hidden layers */
    char preset[32];             /* "": the 2-D network; else the image network's model preset */
} fr_gmflow_arch;

typedef struct {
    fr_gmflow_arch a;
    fr_mlp net; /* 2E → hidden (×layers, SiLU) → K·D + K + 1 */
    float *emb; /* host (cap, 2E) */
    int64_t cap;
    /* The image network (core/gmflow_image.c), or NULL: the shared conditional model
     * (flowrl/model.h, a preset of the task) with its velocity head widened to the GM row
     * (out_D = K·D + K + 1), prompt-conditioned; a.E, a.hidden, a.layers are then the model's
     * E, H and n_blocks and net / emb are unused. */
    struct fr_gmflow_image *img;
    fr_param *params; /* the trained parameters: net's or img's */
    int n_params;
} fr_gmflow_net;

/* The most data dims the training pair and the sampler take (shapes: 768). */
#define FR_GMFLOW_MAX_D 1024

/* The image network over task (an image task) with model preset `preset` (e.g. shapes-s): the
 * preset's residual MLP with the velocity head, out_D = fr_gm_width(K, task->D), condition ids
 * of the task's prompts (flowrl/cond.h). cap rows; its training workspace keeps activations. */
fr_status fr_gmflow_net_new_image(fr_gmflow_net *g, fr_backend *be, int K, const char *preset, const fr_task *task,
                                  int64_t cap);
/* The same from a model configuration (a checkpoint's). */
fr_status fr_gmflow_net_new_image_cfg(fr_gmflow_net *g, fr_backend *be, int K, const fr_model_config *cfg,
                                      const fr_task *task, int64_t cap);
/* Head rows (R, W) at times t (R,), points x (R, D) and prompts (R,) (the image network's
 * condition; NULL: prompt 0 / ignored by the 2-D network). */
fr_status fr_gmflow_net_forward_c(fr_gmflow_net *g, int64_t R, const float *t, const float *x, const int *prompts,
                                  float *rows);
/* Zeroes the gradients, then the backward of the last forward with dL/drows dout (R, W) host. */
fr_status fr_gmflow_net_backward(fr_gmflow_net *g, int64_t R, const float *dout);
/* Parameter p's checkpoint name: "gmflow.net.<2l>.weight" (the 2-D MLP), "gmflow.net.<the
 * model's name>" (the image network). */
const char *fr_gmflow_net_param_name(const fr_gmflow_net *g, int p);
/* XXH3-64 of the parameters' values (the 2-D network: fr_mlp_digest). */
fr_status fr_gmflow_net_digest(fr_gmflow_net *g, uint64_t *digest);
/* The image network's part of a checkpoint: metadata gmflow.preset and model.* (its
 * configuration, out_D included) and the values as "gmflow.net.<name>". */
fr_status fr_gmflow_image_save(fr_gmflow_net *g, fr_st_file *f);
fr_status fr_gmflow_image_load(fr_gmflow_net *g, const fr_st_file *f);

fr_status fr_gmflow_net_new(fr_gmflow_net *g, fr_backend *be, const fr_gmflow_arch *a, int64_t cap);
void fr_gmflow_net_free(fr_gmflow_net *g);
/* torch.nn.Linear's default init (fr_mlp_init_params, stream 0), then the logit and log-std
 * rows of the last layer (weight and bias) zeroed: w = 1/K and s = 0 at the start. */
fr_status fr_gmflow_net_init(fr_gmflow_net *g, uint32_t seed);
/* The head rows (R, K·D + K + 1) of the network at times t (R,) and points x (R, D). */
fr_status fr_gmflow_net_forward(fr_gmflow_net *g, int64_t R, const float *t, const float *x, float *rows);

typedef struct {
    int64_t steps, batch, warmup;
    double lr, weight_decay, trans_ratio;
    uint32_t seed;
} fr_gmflow_train_cfg;

fr_gmflow_train_cfg fr_gmflow_train_defaults(void);

/* The training pair of sample b of step k (forward_train): t_high = (1 − u)·1000 clamped to
 * [1e-4, 1000], u ~ U[0, 1) (Philox FR_RNG_GMFLOW_TIME (k, b, 0)); t_low = min(t_high (1 −
 * trans_ratio), t_high − 1e-4) ≥ 0; x_low = α_l x0 + σ_l ξ0, x_high = x_low α_h/α_l +
 * √(σ_h² − (α_h σ_l/α_l)²) ξ1 (ξ0, ξ1: FR_RNG_GMFLOW_NOISE (k, b, 0 / 1)); x0 the task's sample
 * i = k·B + b of the seed, of prompt i mod n_prompts (unconditional: gmm2d's 8 modes in turn). */
fr_status fr_gmflow_pair(const fr_task *task, const fr_gmflow_train_cfg *c, int64_t k, int64_t b, float *t_high,
                         double *sigma, double *sigma_to, float *x_low, float *x_high);

/* Callback after every step (loss = the batch's NLL); non-zero stops. */
typedef int (*fr_gmflow_progress)(int64_t step, double loss, void *user);

/* c->steps AdamW steps from the network's current parameters (steps from_step .. c->steps − 1:
 * a resumed run passes the checkpoint's step, optimiser state and EMA); lr warm-up linear from
 * lr/warmup over c->warmup steps (fr_lr_at), then constant. ema (may be NULL) follows the
 * weights after every step with the Karras decay (1 − 1/t)^8 of update t (the config's
 * momentum_policy 'karras', gamma 7). */
fr_status fr_gmflow_train(fr_gmflow_net *g, const fr_task *task, const fr_gmflow_train_cfg *c, fr_adamw_state *opt,
                          fr_ema *ema, int64_t from_step, fr_gmflow_progress cb, void *user, double *last_loss);

/* N samples by first-order GM-SDE over `steps` steps: σ_i = 1 − i/steps, then 0; x from
 * N(0, I) (FR_RNG_GMFLOW_SAMPLE (0, n, 0)); each step the x0-GM at (x, σ_i), x̂0 drawn from it
 * (component: FR_RNG_GMFLOW_PICK (i, n, 0) lane 0; its Gaussian: FR_RNG_GMFLOW_X0 (i, n, 0)),
 * x' = c1 x + c2 x̂0 + √β̄ σ' ξ (ξ: FR_RNG_GMFLOW_SAMPLE (i + 1, n, 0)). out (N, D). */
fr_status fr_gmflow_sample(fr_gmflow_net *g, int64_t N, int steps, uint32_t seed, float *out);
/* The same with sample n's prompt prompts[n] (the image network's condition; NULL: prompt 0). */
fr_status fr_gmflow_sample_c(fr_gmflow_net *g, int64_t N, int steps, uint32_t seed, const int *prompts, float *out);
/* The prompt of training sample b of step k: i mod n_train, i = k·B + b (the training prompts in turn). */
int fr_gmflow_prompt(const fr_task *task, const fr_gmflow_train_cfg *c, int64_t k, int64_t b);

/* Checkpoint: the network as "gmflow.net.*", AdamW moments "optim.m.*" / "optim.v.*", the EMA
 * "ema.gmflow.net.*" and metadata gmflow.{K, D, embed, hidden, layers, task, step, seed, ...}
 * (opt, ema may be NULL). */
fr_status fr_gmflow_save(const char *path, fr_gmflow_net *g, const fr_adamw_state *opt, const fr_ema *ema,
                         const char *task, const fr_gmflow_train_cfg *c, int64_t step);
/* Reads the architecture and builds + loads the network (cap rows; cap <= 0: the checkpoint's
 * batch); opt and ema (may be NULL) get the moments and the EMA, *step, task (64 bytes) and cfg
 * (the training configuration it was written with) the metadata (each may be NULL). */
fr_status fr_gmflow_load(const char *path, fr_backend *be, int64_t cap, fr_gmflow_net *g, fr_adamw_state *opt,
                         fr_ema *ema, int64_t *step, char *task, fr_gmflow_train_cfg *cfg);

#endif
