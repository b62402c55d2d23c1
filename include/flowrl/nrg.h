/* Flow-NRG: reward guidance at sampling time (spec more.md §7.2 [secondary: VideoAlign,
 * arXiv 2501.13918; no public code]; docs/algorithms/draft.md §8; `flowrl sample --guidance nrg`).
 *
 * Each Euler ODE step uses the guided velocity
 *   ṽ = v − w·(σ/(1 − σ))·∇_{x_σ} r(x_σ, σ),   r(x_σ, σ) = r(x̂0(x_σ)),  x̂0 = x_σ − σ·v(x_σ)
 * (the spec's analytic time-conditioned reward: the task's differentiable reward of the one-step
 * x̂0, in place of VideoAlign's latent reward model built from the backbone's first layers).
 * ∇_x r = g − σ·J_vᵀ g with g = ∇r(x̂0): the model's backward op entries give J_vᵀ g. With dt < 0
 * the step ascends r. Steps at σ = 1 (the weight's pole) and σ = 0 are unguided [flowrl choice].
 * w = 0 is plain ODE sampling, bit for bit (fr_rollout with the same seed and coordinates). */
#ifndef FLOWRL_NRG_H
#define FLOWRL_NRG_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/model.h"
#include "flowrl/rollout.h"
#include "flowrl/task.h"

/* Samples x (B, D, host) of prompts pid (B,) and sample ids sid (B,) with the ODE of rc (kind ode;
 * rc->cfg is the guidance scale of v; x_T as fr_rollout draws it at (rc->seed, rc->c0, sid)),
 * guided by task reward reward_id (it must have a gradient: task->reward_grad) at weight w >= 0.
 * m's gradients are used as scratch (zeroed at the end). The x̂0 rows cross to the host and their
 * reward gradients back, once per guided step. */
fr_status fr_nrg_sample(fr_model *m, fr_backend *be, const fr_task *task, int reward_id, const fr_rollout_cfg *rc,
                        float w, int64_t B,
                        const int *pid,      // (B,) host
                        const uint32_t *sid, // (B,) host
                        float *x);           // (B, D) host, out

#endif
