/* Rollouts: sampling a batch of prompts through T sampler steps of a model, with
 * classifier-free guidance, noise drawn by coordinate, and optionally the whole
 * trajectory (what the Flow-GRPO family trains on: docs/algorithms/samplers.md §0, §3, §15;
 * docs/algorithms/flow-grpo.md §2).
 *
 * Per step i = 0..T-1 (flow kinds: σ = σ_i, σ' = σ_{i+1}; ddim: t = timesteps[i]):
 *   t_in = 1000·σ (velocity models, docs/algorithms/pretraining.md §1, FG's unquantised
 *          input, fr_timestep_diffusers; ⌊1000·σ⌋ with time_quantized) or the integer
 *          DDPM t (epsilon models)
 *   cfg == 1:  m = net(x, t_in, c)                         one forward over B rows
 *   cfg != 1:  [m_c; m_u] = net([x; x], t_in, [c; null])   one forward over 2B rows
 *              m = m_u + g·(m_c − m_u)                     fr_guided_forward (guidance.h)
 *   x_{i+1} = step(x_i, m, ξ_i)                            fr_sampler_step
 * m is v (flow kinds) or ε̂ (ddim). dpm order 2 carries x̂0 = x − σ·v of the previous step.
 *
 * Randomness (docs/design.md §1.5): row b with sample id s = sample_ids[b] gets
 *   x_T   = normals (seed, FR_RNG_SAMPLER_INIT,  c0, owner(s, −1), 0), element j
 *   ξ_i   = normals (seed, FR_RNG_SAMPLER_NOISE, c0, owner(s, i), i), element j
 *           (times the branch's xi_scale at a branch step, see below)
 * where owner(s, i) = s unless the noise is shared (fr_rollout_noise_owner): so a sample
 * is a pure function of (model, cfg, prompt, seed, c0, s): independent of the batch size,
 * of its position in the batch and of the other rows (the model forward is
 * row-independent, flowrl/model.h). Callers choose c0 (an epoch, or one of the
 * FR_ROLLOUT_C0_* domains below) and s (a global sample index). Steps whose std is 0
 * (noise level 0, CPS's last step) draw no noise: x' = μ exactly.
 *
 * Shared noise (what DanceGRPO, DGPO, BranchGRPO, G²RPO and TempFlow-GRPO sample), all
 * by the rule "a noise is drawn at the first sample id of the block of ids that shares
 * it", owner(s, i) = s − (s mod span(i)):
 *   x_T_key FR_XT_GROUP   x_T shared by the group_size consecutive ids of a group
 *                         (span(−1) = group_size): one x_T per prompt.
 *   branch[0..n_branch)   prefix trees (BranchGRPO, docs/algorithms/samplers.md §11): ids come in trees of
 *                         L = Π width_k leaves (s / L the tree, s mod L the leaf). At step
 *                         at_k each node splits into width_k children; the noise of steps
 *                         in [at_{k−1}, at_k) belongs to the depth-k node, so
 *                         span(i) = Π_{k ≥ d(i)} width_k, d(i) = #{k : at_k <= i}, and
 *                         span(−1) = L (a tree has one x_T). Children share the parent's
 *                         x_0..x_{at_k} bit for bit and diverge from x_{at_k + 1}. The
 *                         shared prefix is computed once per node (the rows of a node
 *                         with the same prompt go through the network once), and the
 *                         result equals rolling out each leaf alone. The first leaf of
 *                         every node owns its noise at every step, so leaf 0 of a tree
 *                         is bitwise the unbranched sample of its id.
 *   one branch of width N at step j with step_noise zero except at j: N candidates from
 *                         one state x_j, one stochastic step, ODE elsewhere (G²RPO §12,
 *                         TempFlow-GRPO §13; with sde, a step of level 0 is the Euler
 *                         step bit for bit, sampler_elem.h).
 *
 * Shapes: B rows, D = model dims, T steps, S = task n_slots. */
#ifndef FLOWRL_ROLLOUT_H
#define FLOWRL_ROLLOUT_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/model.h"
#include "flowrl/sampler.h"
#include "flowrl/status.h"
#include "flowrl/task.h"

/* c0 domains of the sampler streams outside RL training (training uses c0 = epoch,
 * counting from 0, so these never meet it). */
#define FR_ROLLOUT_C0_EVAL 0xE7A10000u   /* flowrl eval / fr_evaluate */
#define FR_ROLLOUT_C0_SAMPLE 0x5A3B0000u /* flowrl sample */

typedef enum {
    FR_XT_SAMPLE = 0, /* x_T drawn at the row's own sample id */
    FR_XT_GROUP = 1   /* x_T drawn at the group's first id: group_size rows share it */
} fr_xt_key;

/* One split of a prefix tree. */
typedef struct {
    int64_t at;     /* the children's own noise starts at step at (0 <= at < T) */
    int64_t width;  /* children per node, >= 1 */
    float xi_scale; /* ξ of step at is multiplied by this (BranchGRPO's split_noise_scale
                       4; 1 = none); the log-prob keeps the nominal std (docs/algorithms/samplers.md §11
                       quirk). Finite, > 0. */
} fr_rollout_branch;

typedef struct {
    fr_sampler_kind kind;
    int64_t T; /* steps, >= 1 */
    /* flow kinds (ode, sde, cps, dance, dpm): σ_0 > σ_1 > ... > σ_T >= 0, σ_0 <= 1 */
    const float *sigmas; /* (T+1,) */
    /* ddim: the DDPM ᾱ table and descending timesteps in [0, n_train) */
    const float *alpha_bar;   /* (n_train,) */
    int64_t n_train;
    const int64_t *timesteps; /* (T,) */
    float noise;   /* sde, cps: noise level a; dance, ddim: η (ignored by ode, dpm) */
    int dpm_order; /* dpm: 1 or 2 (2 = DPM-Solver++ 2M, order 1 on the first step) */
    float x0_clip; /* ddim: clamp x̂0 to ±x0_clip; <= 0 none */
    float cfg;     /* guidance scale g; exactly 1 = conditional forward only */
    uint32_t seed; /* Philox key word 0 of the sampler streams */
    uint32_t c0;   /* first counter coordinate (epoch or domain) */
    int64_t batch; /* rows per model forward (the CFG forward has 2·batch); <= 0: all B */
    /* sde, cps, dance, ddim: the noise level of each step (T,), replacing `noise` step by
     * step; NULL = every step uses `noise`. Steps with level 0 are deterministic (x' = μ,
     * no noise drawn, log-prob 0 in the trajectory): the Flow-GRPO-Fast and MixGRPO windows
     * (docs/algorithms/samplers.md §10). */
    const float *step_noise;
    /* shared noise (above): x_T per sample or per group of group_size ids */
    fr_xt_key x_T_key;
    int64_t group_size; /* FR_XT_GROUP: >= 1, a multiple of a tree's leaf count */
    const fr_rollout_branch *branch; /* (n_branch,) prefix-tree splits, at increasing */
    int64_t n_branch;                /* 0: no tree */
    /* flow kinds: the network's time input. 0 = FG's 1000·σ (fr_timestep_diffusers); 1 =
     * MIX/DANCE/BRANCH/G2's quantised ⌊1000·σ⌋ on the same 0..1000 scale
     * (1000·fr_timestep_quantized: Flux multiplies its `timesteps / 1000` input by 1000
     * again; docs/algorithms/samplers.md §1.4). The step math keeps the exact σ. */
    int time_quantized;
    /* flow kinds: steps i >= dpm_from (1 <= dpm_from <= T) are DPM-Solver++ steps of order
     * dpm_order whatever `kind` is, continuing from the x̂0 = x − σ·v of step dpm_from − 1
     * (order 2 from step dpm_from on, order 1 on the step to σ' = 0): MixGRPO-Flash's tail
     * after the SDE window, on the grid of fr_sigmas_flash_tail (flowrl/schedule.h), one
     * rollout as MIX's run_sample_step (docs/algorithms/samplers.md §9). No noise, no
     * log-prob (0 in the trajectory) at those steps. 0: none. */
    int64_t dpm_from;
} fr_rollout_cfg;

/* FG-like defaults for kind: T 40, noise 0.7 (sde), 0.8 (cps), 0.3 (dance), 0 (ddim:
 * deterministic DDIM), dpm_order 2, no x̂0 clip, cfg 1, seed 0, c0 0, batch 64. The
 * grids are left NULL (see fr_rollout_schedule). */
fr_rollout_cfg fr_rollout_cfg_default(fr_sampler_kind kind);

/* Optional outputs; every pointer may be NULL. Time-major, so that one step of a batch is
 * contiguous (what the training loop recomputes per step). traj, mean and logp are backend
 * memory (flowrl/backend.h), std host memory. */
typedef struct {
    float *traj;      /* (T+1, B, D): traj[0] = x_T (noise), traj[T] = the sample */
    float *mean;      /* (T, B, D): μ of each step (for ode/dpm μ = x') */
    float *logp;      /* (T, B): log p(x_{i+1} | x_i), stochastic kinds with noise > 0;
                         0 at steps whose std is 0 (no density) */
    fr_step_std *std; /* (T,) host: the step std's (fr_sampler_std) */
    float *xi;        /* (T, B, D): the normals ξ each row's step drew (its noise owner's, before
                         a branch's xi_scale), 0 at steps that draw none; backend memory */
} fr_rollout_traj;

/* Samples x (B, D) for prompt_ids (B,) (id -1: the null condition). x_init (B, D), if not
 * NULL, replaces the coordinate-drawn x_T (not with a tree). x_init and x are backend
 * memory, prompt_ids and sample_ids host memory (the reward's input crosses with fr_d2h
 * where the caller needs it). Checks: the
 * model's pred matches the sampler (ddim needs an epsilon model, the flow kinds a velocity
 * model), the model's D / n_cond / n_slots match the task (fr_cond_dims), the grids. */
fr_status fr_rollout(const fr_model *m, fr_backend *be, const fr_task *task,
                     const fr_rollout_cfg *cfg, int64_t B,
                     const int *prompt_ids,      // (B,) host
                     const uint32_t *sample_ids, // (B,) host, counter c1 of each row
                     const float *x_init,        // (B, D) or NULL, backend
                     float *x,                   // (B, D) out, backend
                     const fr_rollout_traj *traj);

/* fr_rollout (no x_init, no trajectory) into a backend buffer of its own, then the samples
 * to the host x (B, D) with one fr_d2h: for callers that score or draw them (eval, sample
 * grids, `flowrl sample`). */
fr_status fr_rollout_to_host(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *cfg,
                             int64_t B, const int *prompt_ids, const uint32_t *sample_ids,
                             float *x); // (B, D) out, host

/* The sample id whose noise row id s uses at slot i: i = −1 for x_T, 0 <= i < T for the
 * ξ of step i (the rule above). cfg must have passed fr_rollout's checks. A trainer of a
 * tree trains each transition once: at step i, the rows with owner(s, i) == s. */
uint32_t fr_rollout_noise_owner(const fr_rollout_cfg *cfg, uint32_t s, int64_t i);

/* *nfe = the rows fr_rollout(cfg, B, prompt_ids, sample_ids) sends through the network
 * (a guided row counts 2): the model-evaluation budget of a rollout, B·T (2·B·T guided)
 * without a tree, less with one (each node once per step). Checks as fr_rollout's,
 * without the model. */
fr_status fr_rollout_nfe(const fr_rollout_cfg *cfg, int64_t B, const int *prompt_ids,
                         const uint32_t *sample_ids, int64_t *nfe);

/* The sampler scalars of step i (0 <= i < T) exactly as fr_rollout uses them, and the
 * model input time t_in of that step: what a training loop needs to recompute a step's
 * log-prob bit for bit (docs/algorithms/flow-grpo.md §2: same step function, same a). cfg must have
 * passed fr_rollout's checks (grids present). */
fr_step fr_rollout_step(const fr_rollout_cfg *cfg, int64_t i);
float fr_rollout_time(const fr_rollout_cfg *cfg, int64_t i);

/* ---- schedules ------------------------------------------------------------------- */

typedef enum {
    FR_GRID_DIFFUSERS = 0, /* fr_sigmas_diffusers: FG's double-shift grid (docs/algorithms/samplers.md §1.2) */
    FR_GRID_LINEAR = 1     /* fr_sigmas_linspace: s(linspace(1, 0, T+1)) (docs/algorithms/samplers.md §1.3) */
} fr_grid;

extern const char *const fr_grid_names[]; /* indexed by fr_grid, NULL-terminated */
const char *fr_grid_name(fr_grid g); /* "diffusers", "linear" */
fr_status fr_grid_from_name(const char *s, fr_grid *out);

/* The arrays a rollout reads, owned. */
typedef struct {
    float *sigmas;        /* (T+1,) flow kinds, else NULL */
    int64_t *timesteps;   /* (T,) ddim, else NULL */
} fr_rollout_schedule;

/* Fills the grid of cfg->kind for cfg->T steps and points cfg at it: the σ grid
 * (grid, shift) for the flow kinds; for ddim the DDIM "leading" timesteps of n_train
 * with offset ddim_offset (fr_ddim_timesteps; SD's steps_offset is 1) and cfg->n_train. */
fr_status fr_rollout_schedule_make(fr_rollout_cfg *cfg, fr_grid grid, double shift,
                                   int64_t n_train, int64_t ddim_offset,
                                   fr_rollout_schedule *s);
void fr_rollout_schedule_free(fr_rollout_schedule *s);

#endif
