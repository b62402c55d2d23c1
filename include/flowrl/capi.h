/* flowrl's stable C API (docs/python.md): a flat, versioned set of entry points over plain
 * host arrays, exported by libflowrl.so.<FLOWRL_API_VERSION> for bindings (python/: the
 * flowrl_verify package, over ctypes) and for any program that wants flowrl's reference
 * numbers without the internal headers.
 *
 * Conventions, for every function here:
 *   - Every function returning int returns a status: 0 = FLOWRL_OK, else one of the fr_status
 *     codes of flowrl/status.h (1 arg, 2 io, 3 format, 4 nomem, 5 unsupported, 6 numeric,
 *     7 mismatch); flowrl_last_error() then gives flowrl's message (thread-local, valid until
 *     the thread's next failing call), flowrl_status_name() the code's name.
 *   - Arrays are host memory, float32 unless said otherwise, row-major, (B, D) = B rows of D.
 *     The functions copy them into the memory of the backend they compute on (flowrl/backend.h)
 *     and the results back, so a device backend (cuda, cuda-emu) takes the same arguments.
 *   - An output pointer documented "may be NULL" is skipped when NULL.
 *   - Handles (flowrl_backend, flowrl_step, flowrl_tensors) are opaque; no struct crosses the
 *     boundary. A NULL flowrl_backend means the reference backend `ref`.
 *   - Strings returned are owned by flowrl: valid while their handle lives (or forever for
 *     names from static tables).
 * Versioning: FLOWRL_API_VERSION is the ABI's major version and the SONAME's number
 * (libflowrl.so.1). Within a major version functions are only added, never changed or
 * removed; a binding checks flowrl_api_version() == the major it was written for and may
 * look up newer functions by name. */
#ifndef FLOWRL_CAPI_H
#define FLOWRL_CAPI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLOWRL_API_VERSION 1
#define FLOWRL_OK 0

/* ---- version, errors ----------------------------------------------------------------------- */

int flowrl_api_version(void);          /* FLOWRL_API_VERSION of the library loaded */
const char *flowrl_version(void);      /* the flowrl release, "0.1.0" */
const char *flowrl_last_error(void);   /* "" if none */
const char *flowrl_status_name(int status);

/* ---- backends ------------------------------------------------------------------------------ */

typedef struct flowrl_backend flowrl_backend;

/* name: "ref", "opt", "cuda-emu", "cuda" ("" = opt if built in, else ref); fast: the --fast
 * switch; threads: opt's worker threads (0 = all CPUs). */
int flowrl_backend_open(const char *name, int fast, int threads, flowrl_backend **out);
void flowrl_backend_close(flowrl_backend *be);
/* "backend opt, threads 2, mode exact" */
const char *flowrl_backend_describe(const flowrl_backend *be);

/* ---- sampler steps (flowrl/sampler.h; docs/algorithms/samplers.md) ---------------------------- */

typedef struct flowrl_step flowrl_step;

/* kind: "ode", "sde", "cps", "dance", "ddim", "dpm". */
int flowrl_step_new(const char *kind, flowrl_step **out);
void flowrl_step_free(flowrl_step *s);
/* Sets a scalar of the step: "sigma", "sigma_next", "sigma1", "noise", "alpha_bar",
 * "alpha_bar_prev", "x0_clip", "sigma_prev" (rounded to float32) or "order" (an integer).
 * An unknown field is FLOWRL_ERR_ARG naming the fields. */
int flowrl_step_set(flowrl_step *s, const char *field, double value);
/* The Gaussian's std of x' | x and the std the public code returns (sampler.h's table). */
int flowrl_step_std(const flowrl_step *s, float *std, float *std_dev);
/* dμ/dv of the step (grpo.h fr_grpo_dmean_dv). */
int flowrl_step_dmean_dv(const flowrl_step *s, float *dmean_dv);
/* The σ that divides the KL: form "code" (FG) or "paper" (grpo.h fr_kl_std). */
int flowrl_step_kl_std(const flowrl_step *s, const char *form, float *kl_sigma);

/* x' = μ + std·ξ and log p(x' | x) (B,), a mean over D. x0_prev: dpm order 2, else NULL;
 * xi: NULL means ξ = 0; mean, logp (stochastic kinds only), std, std_dev may be NULL. */
int flowrl_sampler_step(flowrl_backend *be, const flowrl_step *s, int64_t B, int64_t D,
                        const float *x, const float *model_out, const float *x0_prev,
                        const float *xi, float *x_next, float *mean, float *logp, float *std,
                        float *std_dev);
/* μ (B, D) of the step. */
int flowrl_sampler_mean(flowrl_backend *be, const flowrl_step *s, int64_t B, int64_t D,
                        const float *x, const float *model_out, const float *x0_prev, float *mean);
/* μ from (x, model_out), then log p(x_next | μ) (B,); mean may be NULL. */
int flowrl_sampler_logprob(flowrl_backend *be, const flowrl_step *s, int64_t B, int64_t D,
                           const float *x, const float *model_out, const float *x0_prev,
                           const float *x_next, float *mean, float *logp);
/* log p(x_next | mean) (B,) for a given μ. */
int flowrl_sampler_logprob_of(flowrl_backend *be, const flowrl_step *s, int64_t B, int64_t D,
                              const float *x_next, const float *mean, float *logp);
/* v = v_u + g·(v_c − v_u) over n elements. */
int flowrl_cfg_combine(flowrl_backend *be, int64_t n, float g, const float *v_u, const float *v_c,
                       float *out);
/* x̂0 = x − σ·v over n elements. */
int flowrl_flow_x0(flowrl_backend *be, int64_t n, float sigma, const float *x, const float *v,
                   float *x0);

/* ---- objectives (flowrl/grpo.h; docs/algorithms/flow-grpo.md) ---------------------------------
 * stats (may be NULL) receives 6 floats: loss, approx_kl, clipfrac, ratio_min, ratio_max,
 * ratio_mean. */

/* PPO-clip policy term and its gradient w.r.t. logp_new (grad_logp_new, ratio may be NULL). */
int flowrl_ppo_policy(int64_t B, double clip_range, float adv_clip_max, const float *logp_new,
                      const float *logp_old, const float *adv, float gout, float *grad_logp_new,
                      float *ratio, float *stats);
/* grad_mean (B, D) = g_logp pushed through the step's log-prob to μ. */
int flowrl_logp_backward(flowrl_backend *be, const flowrl_step *s, int64_t B, int64_t D,
                         const float *x_next, const float *mean, const float *g_logp,
                         float *grad_mean);
/* L_KL and grad_mean (B, D) = gout·dL_KL/dμ (grad_mean may be NULL). */
int flowrl_kl_loss(flowrl_backend *be, int64_t B, int64_t D, float kl_sigma, const float *mean,
                   const float *mean_ref, float gout, float *loss, float *grad_mean);
/* GRPO-Guard term (sde steps); bias_mode "batch" (the code) or "sample". grad_mean (B, D),
 * ratio (B,), bias (B,), stats may be NULL. */
int flowrl_guard_policy(flowrl_backend *be, const flowrl_step *s, int64_t B, int64_t D,
                        const char *bias_mode, double clip_range, float adv_clip_max,
                        const float *x_next, const float *mean, const float *mean_old,
                        const float *logp_new, const float *logp_old, const float *adv, float gout,
                        float *grad_mean, float *ratio, float *bias, float *stats);

/* ---- advantages (flowrl/advantage.h; docs/algorithms/advantages.md) -------------------------- */

int flowrl_adv_mean_std(int64_t n, const float *x, float *mean, float *std);
/* group: one int64 id per sample; global_std 1 = the std of all B rewards. */
int flowrl_adv_per_prompt(int64_t B, const float *rewards, const int64_t *group, int global_std,
                          float eps, float *adv);
int flowrl_adv_batch(int64_t B, const float *rewards, float eps, float *adv);
/* keep (B,) bytes 1 = train on the sample; kept may be NULL. */
int flowrl_adv_filter_zero(int64_t B, const float *adv, int64_t num_batches, uint32_t seed,
                           uint32_t purpose, uint32_t c0, uint32_t c1, uint8_t *keep, int64_t *kept);

/* ---- σ grids and schedules (flowrl/schedule.h; docs/algorithms/samplers.md §1, §6, §7) --------- */

int flowrl_sigmas_diffusers(int64_t T, double shift, float *sigmas);   /* (T+1,) */
int flowrl_sigmas_linspace(int64_t T, double shift, float *sigmas);    /* (T+1,) */
int flowrl_sigmas_shifted_linspace(double u_start, double u_end, int64_t n, double shift,
                                   float *sigmas);                      /* (n,) */
/* kind "quantized" (⌊1000σ⌋/1000) or "diffusers" (1000σ), over n σ's. */
int flowrl_timesteps(const char *kind, int64_t n, const float *sigmas, float *t);
/* kind "linear", "scaled_linear" (a, b = beta_start, beta_end) or "cosine" (a = s,
 * b = max_beta). */
int flowrl_betas(const char *kind, int64_t n, double a, double b, float *betas);
int flowrl_alphas_cumprod(int64_t n, const float *betas, float *alpha_bar);
int flowrl_ddim_timesteps(int64_t T, int64_t n_train, int64_t offset, int64_t *t);

/* ---- Philox draws by coordinates (flowrl/philox.h) ---------------------------------------------
 * dist "uniform" / "normal" (out: float32) or "u32" (out: uint32): element i of out is
 * element start + i of stream (seed, purpose, c0, c1, c2); start + n <= 2^32. */
int flowrl_rng(const char *dist, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1,
               uint32_t c2, int64_t start, int64_t n, void *out);

/* ---- transcendental functions (flowrl/detmath.h) ----------------------------------------------- */

/* The names flowrl_math takes, i = 0, 1, ... (NULL past the end). */
const char *flowrl_math_name(int64_t i);
/* out[i] = fn(x[i]), fn one of flowrl_math_name's ("exp", "log", "sin", ...). */
int flowrl_math(const char *fn, int64_t n, const float *x, float *out);

/* ---- tensor sets: safetensors files, golden cases ------------------------------------------- */

typedef struct flowrl_tensors flowrl_tensors;

int flowrl_tensors_new(flowrl_tensors **out);
void flowrl_tensors_free(flowrl_tensors *t);
/* A safetensors file (checkpoints, golden cases), validated as flowrl/safetensors.h says. */
int flowrl_tensors_read(const char *path, flowrl_tensors **out);
int flowrl_tensors_write(const flowrl_tensors *t, const char *path);
int64_t flowrl_tensors_count(const flowrl_tensors *t);
/* Tensor i: name, dtype ("F32", "I64", ... safetensors' spelling), ndim (0..4), shape (4
 * entries), data (host, dtype elements row-major) and its byte count. Any out may be NULL. */
int flowrl_tensors_get(const flowrl_tensors *t, int64_t i, const char **name, const char **dtype,
                       int *ndim, int64_t *shape, const void **data, int64_t *nbytes);
/* Adds a copy of data; a name already in the set is FLOWRL_ERR_ARG. */
int flowrl_tensors_add(flowrl_tensors *t, const char *name, const char *dtype, int ndim,
                       const int64_t *shape, const void *data);
int64_t flowrl_tensors_meta_count(const flowrl_tensors *t);
int flowrl_tensors_meta_get(const flowrl_tensors *t, int64_t i, const char **key, const char **value);
int flowrl_tensors_meta_set(flowrl_tensors *t, const char *key, const char *value);

/* ---- the golden registry (flowrl/golden.h; golden/README.md) ------------------------------------
 * Every case, generically: its inputs are the "in.*" tensors and "param.*" metadata of a
 * tensor set, its outputs the "out.*" tensors, so a binding runs any case (and any new
 * algorithm's case) without code of its own. */

int64_t flowrl_golden_count(void);
const char *flowrl_golden_name(int64_t i); /* NULL past the end */
/* what: one line; kind: "op" (one op-table entry), "shared" (core/ code every backend
 * runs) or "ops" (a chain of entries); function: the op-table entry for kind "op", else
 * NULL; tol_abs, tol_rel: the case's tolerance for --fast paths (0: bitwise there too).
 * Unknown name: FLOWRL_ERR_ARG. Any out may be NULL. */
int flowrl_golden_info(const char *name, const char **what, const char **kind,
                       const char **function, float *tol_abs, float *tol_rel);
/* The whole case as `flowrl golden gen` writes it (inputs drawn, outputs by ref, metadata:
 * provenance of every input, flowrl version, command). */
int flowrl_golden_build(const char *name, flowrl_tensors **out);
/* The outputs ("out.*") of case `name` recomputed by backend be from the "in.*" tensors and
 * "param.*" metadata of in (a case file, or the caller's own inputs of the same names). */
int flowrl_golden_compute(flowrl_backend *be, const char *name, const flowrl_tensors *in,
                          flowrl_tensors **out);

/* ---- GFlowNet environments and losses (flowrl/env.h, flowrl/gfn.h; docs/algorithms/gfn.md) ----
 * Host code on every backend (core/capi_gfn.c). States are int32 rows of state_dim
 * coordinates; every state argument must be a state of the environment (FLOWRL_ERR_ARG naming
 * the row otherwise). */

typedef struct flowrl_env flowrl_env;

/* A GFlowNet environment by name (`flowrl envs`) and the option words `flowrl train --env NAME`
 * takes ({"--ndim", "3", "--height", "5"}; n_args 0: the defaults). */
int flowrl_env_open(const char *name, int n_args, const char *const *args, flowrl_env **out);
void flowrl_env_close(flowrl_env *e);
const char *flowrl_env_describe(const flowrl_env *e); /* "hypergrid D=2 H=8 R0=0.1 R1=0.5 R2=2" */
/* sizes (7,): state_dim, obs_dim, n_actions (exit included), action_dim, exit_action, max_steps
 * (exit included), n_states (0: not enumerable). */
int flowrl_env_sizes(const flowrl_env *e, int64_t *sizes);
/* The states of canonical indices [start, start + n) (a topological order): states (n, state_dim). */
int flowrl_env_states(const flowrl_env *e, int64_t start, int64_t n, int32_t *states);
/* Per state of states (n, state_dim), each output may be NULL: fwd (n, n_actions) forward mask
 * (1 = allowed), bwd (n, n_actions − 1) backward mask, log_reward (n,) float64, index (n,)
 * canonical index, is_mode (n,), obs (n, obs_dim) the policy's input. */
int flowrl_env_query(const flowrl_env *e, int64_t n, const int32_t *states, uint8_t *fwd, uint8_t *bwd,
                     double *log_reward, int64_t *index, uint8_t *is_mode, float *obs);
/* next (n, state_dim) = step(s, a) (backward 0) or the parent of s through a (backward 1) for an
 * allowed non-exit action a (FLOWRL_ERR_ARG otherwise). */
int flowrl_env_step(const flowrl_env *e, int backward, int64_t n, const int32_t *states,
                    const int32_t *actions, int32_t *next);
/* The exact target of an enumerable environment: p (n_states,) = R/Z by canonical index, log Z,
 * mode cells, the target's mass on them (each may be NULL). */
int flowrl_env_target(const flowrl_env *e, double *p, double *log_z, int64_t *n_modes, double *mode_mass);

/* A loss of flowrl/gfn.h on the named arrays of in (float64 unless said), as the gfn.loss_*
 * golden cases name them; out receives the outputs. kind "tb", "db", "subtb", "zvar":
 *   in.len (B,) int32, in.logpf, in.logpb (B, L), in.logf (B, L) (DB, SubTB), in.logr (B,),
 *   in.log_z, in.lambda (scalars; defaults 0, 0.9)
 *   -> out.loss, out.resid, out.grad_logpf, out.grad_logpb, out.grad_logf (with in.logf),
 *      out.grad_log_z (scalar);
 * kinds "mdb", "rtb", "op" and the options of fr_gfn_batch, with the same names (each optional):
 *   in.logrs, in.logpf_exit (-> out.grad_logpf_exit), in.logprior (B, L), in.perm (B,) int32,
 *   in.util (B,), scalars in.beta, in.linex_alpha (default 1), in.forward_looking (0/1),
 *   in.weighting, in.regression (the enums' values; default 0); DB's and MDB's out.resid is (B, L);
 * kind "fm": in.n_in, in.n_out (M,) int32, in.fin, in.fout (flat), in.fexit, in.logr (K,),
 *   in.alpha (scalar; default 1) -> out.loss, out.grad_fin, out.grad_fout, out.grad_fexit.
 * kind "box" (the Box policy, flowrl/gfn_box.h): in.states, in.actions (N, 2), in.is_exit (N,)
 *   int32, in.pf_out (N, max(5 k0, 1 + 3 k)) the raw P_F outputs at each state, in.pb_out (N, 3 k)
 *   the raw P_B outputs at state + action (absent: uniform P_B), scalars in.delta, in.r0, in.r1,
 *   in.r2, in.epsilon, in.k0, in.k, in.cmin, in.cmax (defaults 0.25, 0.1, 0.5, 2, 1e-10, 4, 2, 0.1,
 *   5.1) -> out.logpf (N,), out.logpb (N,) (NAN for an exit), out.reward (N,) R(state),
 *   out.grad_pf_out, out.grad_pb_out.
 * A new input of a later loss is a new name, so this signature stays. */
int flowrl_gfn_loss(const char *kind, const flowrl_tensors *in, flowrl_tensors **out);

#ifdef __cplusplus
}
#endif

#endif
