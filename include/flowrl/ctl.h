/* The policy-gradient machinery of the control algorithms (docs/control.md; issue 18): N
 * environments in lock-step over fr_env_ctl_ops (flowrl/env.h), running observation
 * normalisation, running reward scaling, GAE with a bootstrap at truncation, per-minibatch
 * advantage normalisation, the clipped PPO surrogate with approx-KL, and minibatch orders. An
 * algorithm (core/algo/ppo_gaussian.c; DPPO, FPO, ReinFlow next) supplies its policy as two
 * callbacks and its networks (flowrl/mlp.h); everything here is host float64 scalar work
 * (per-sample scalars live on the host, docs/design.md §3.1), so the bits do not depend on the
 * backend.
 *
 * Layout: a rollout block of T steps of N environments; sample (t, n) is row t·N + n. */
#ifndef FLOWRL_CTL_H
#define FLOWRL_CTL_H

#include <stdint.h>

#include "flowrl/env.h"
#include "flowrl/safetensors.h"
#include "flowrl/status.h"

/* A state vector x of n elements of dtype dt as the 1-D tensor PREFIX.WHAT of a checkpoint, and
 * back (FR_ERR_FORMAT naming path and tensor for a missing or differently shaped one). */
fr_status fr_ctl_st_put(fr_st_file *f, const char *prefix, const char *what, fr_dtype dt, const void *x, int64_t n);
fr_status fr_ctl_st_get(const fr_st_file *f, const char *path, const char *prefix, const char *what, fr_dtype dt, void *x,
                        int64_t n);

/* ---- running mean and variance (the public code's RunningMeanStd) --------------------------- */
/* gym's RunningMeanStd (NormalizeObservation) and DPPO's copy of it (util/reward_scaling.py,
 * irom-princeton/dppo@cc7234a): count starts at 1e-4 with mean 0, var 1; a batch of B rows
 * merges by Chan's parallel update with the batch's mean and population variance (ddof 0);
 * the merged M2 is divided by the new count (gym) or by count − 1 (DPPO: unbiased = 1). */
typedef struct {
    int64_t n;          /* features */
    double *mean, *var; /* (n,) */
    double count;
    int unbiased;
} fr_rms;
fr_status fr_rms_init(fr_rms *r, int64_t n);
void fr_rms_free(fr_rms *r);
/* Merges a batch of B rows x (B, n), float or double. */
void fr_rms_update_f32(fr_rms *r, int64_t B, const float *x);
void fr_rms_update_f64(fr_rms *r, int64_t B, const double *x);
/* Saved as F64 tensors PREFIX.mean (n,), PREFIX.var (n,), PREFIX.count (1,); loaded back
 * (FR_ERR_FORMAT naming path and tensor). */
fr_status fr_rms_save(const fr_rms *r, fr_st_file *f, const char *prefix);
fr_status fr_rms_load(fr_rms *r, const fr_st_file *f, const char *path, const char *prefix);

/* ---- observation normalisation ------------------------------------------------------------ */
/* out = clip((x − mean)/√(var + 1e-8), ±10) in float64, rounded to float (gym's
 * NormalizeObservation + CleanRL's TransformObservation clip). x, out (B, n). */
void fr_ctl_obs_normalize(const fr_rms *r, int64_t B, const float *x, float *out);

/* ---- running reward scaling ------------------------------------------------------------- */
/* DPPO's RunningRewardScaler (util/reward_scaling.py, after openai/phasic-policy-gradient): the
 * discounted return ret_n ← r + γ·(1 − first)·ret_n of each environment runs through the block,
 * its values (all T·N, environment-major) update a scalar RunningMeanStd, and the rewards are
 * divided by √(var + 1e-8) and clipped to ±10. */
typedef struct {
    int64_t N;
    double gamma, clip, eps;
    double *ret; /* (N,) */
    fr_rms rms;  /* one feature */
} fr_ctl_reward_scaler;
fr_status fr_ctl_reward_scaler_init(fr_ctl_reward_scaler *s, int64_t N, double gamma);
void fr_ctl_reward_scaler_free(fr_ctl_reward_scaler *s);
/* out (T, N) = the scaled rewards of reward (T, N), first (T, N) (1: the step begins an episode);
 * out may alias reward. */
fr_status fr_ctl_reward_scale(fr_ctl_reward_scaler *s, int64_t T, const double *reward, const uint8_t *first,
                              double *out);
fr_status fr_ctl_reward_scaler_save(const fr_ctl_reward_scaler *s, fr_st_file *f, const char *prefix);
fr_status fr_ctl_reward_scaler_load(fr_ctl_reward_scaler *s, const fr_st_file *f, const char *path, const char *prefix);

/* ---- GAE --------------------------------------------------------------------------------- */
/* Generalised advantage estimation over a block (T, N): δ_t = r_t + γ·v'_t − v_t, A_t = δ_t +
 * γλ·(1 − end_t)·A_{t+1}, returns = A + v. v'_t is the value of what follows step t: 0 after a
 * terminal step, V(final observation) after a truncation (the bootstrap DPPO's loop leaves out),
 * V(s_{t+1}) otherwise (the block's last row: V of the observation after the block). end_t = 1
 * where the episode ended at step t (terminal or truncated). All (T, N) float64. */
void fr_ctl_gae(int64_t T, int64_t N, double gamma, double lambda, const double *reward, const double *value,
                const double *next_value, const uint8_t *end, double *adv, double *ret);

/* out (n) = (a − mean)/(std + 1e-8), std torch's unbiased one (n − 1; n = 1: std 0). */
void fr_ctl_adv_normalize(int64_t n, const double *a, double *out);

/* ---- the clipped PPO surrogate ------------------------------------------------------------ */
typedef struct {
    double loss;      /* mean_i max(−A·ρ, −A·clip(ρ, 1 ± ε)) */
    double approx_kl; /* mean (ρ − 1) − log ρ (DPPO's, "k3") */
    double clipfrac;  /* mean 1[|ρ − 1| > ε] */
    double ratio_mean;
} fr_ctl_ppo_stats;
/* Of n samples: ρ = exp(logp_new − logp_old); g (n) = dloss/dlogp_new = −A·ρ/n where the
 * unclipped term is the max or ρ is inside the clip range (torch.max splits a tie, the clamp
 * passes it: the sum is the full gradient), else 0. */
void fr_ctl_ppo_clip(int64_t n, const double *logp_new, const double *logp_old, const double *adv, double clip,
                     double *g, fr_ctl_ppo_stats *st);
/* The same with a clip range per row, clip (n) (DPPO's per-denoising-step schedule); clipfrac
 * counts |ρ − 1| > clip[i]. */
void fr_ctl_ppo_clip_rows(int64_t n, const double *logp_new, const double *logp_old, const double *adv, const double *clip,
                          double *g, fr_ctl_ppo_stats *st);

/* The minibatch order of update epoch k of epoch e: perm (n) = fr_rng_perm(seed,
 * FR_RNG_CTL_SHUFFLE, e, k) (torch.randperm's place); DPPO's loop takes max(1, n / size)
 * minibatches of size rows and skips the rest. */
void fr_ctl_minibatch_order(uint32_t seed, uint32_t epoch, uint32_t k, int64_t n, int64_t *perm);

/* ---- N environments in lock-step --------------------------------------------------------- */
typedef struct {
    const fr_env *env;
    uint32_t seed;
    int64_t N;
    double *state;        /* (N, state_dim) */
    float *obs;           /* (N, obs_dim) the raw observation each environment shows now */
    int64_t *ep_id;       /* (N,) its episode's id (the reset's Philox coordinate) */
    int64_t *ep_len;      /* (N,) steps taken in it */
    double *ep_ret;       /* (N,) its undiscounted return so far */
    uint8_t *first;       /* (N,) 1: the next step is its episode's first */
    int64_t next_episode; /* the next reset's id: episodes are numbered in the order they start */
    float **ep_act;       /* env->ctl->replay only: (N,) each episode in flight's actions (ep_len, action_dim) */
    int64_t *ep_cap;      /* (N,) the steps each holds */
    /* episodes completed since fr_ctl_vec_stats_reset */
    int64_t done_n, done_terminal, done_success; /* success: env->ctl->success of the end state */
    double done_ret_sum, done_len_sum;
} fr_ctl_vec;
/* N environments reset to episodes first_episode .. first_episode + N − 1 (training: 0; an
 * evaluation: an id range of its own). */
fr_status fr_ctl_vec_new(fr_ctl_vec *v, const fr_env *env, uint32_t seed, int64_t N, int64_t first_episode);
void fr_ctl_vec_free(fr_ctl_vec *v);
/* One step of every environment under action (N, action_dim): reward (N,), term (N,) 1 at a
 * terminal step, end (N,) 1 where the episode ended (terminal, or truncated at env->max_steps);
 * final_obs (N, obs_dim) the observation the step reached (before the reset of an ended
 * episode; may be NULL); success (N,) (may be NULL) 1 where an ended episode counts as a success
 * (env->ctl->success of its last state). Ended episodes are counted and reset (the next id);
 * v->obs is what follows. */
fr_status fr_ctl_vec_step(fr_ctl_vec *v, const float *action, double *reward, uint8_t *term, uint8_t *end,
                          float *final_obs, uint8_t *success);
void fr_ctl_vec_stats_reset(fr_ctl_vec *v);
/* Everything a resumed run needs to continue the episodes in flight, under PREFIX.*. An
 * environment whose state lives in a program (env->ctl->replay) also keeps the episodes' actions
 * (PREFIX.actions, (N, the longest, action_dim)); the load resets each episode in flight in the
 * fresh program and replays them, and fails naming the episode unless the program reaches the
 * checkpoint's observation bit for bit (its episodes must be functions of seed, episode and
 * actions: docs/env-protocol.md §1). */
fr_status fr_ctl_vec_save(const fr_ctl_vec *v, fr_st_file *f, const char *prefix);
fr_status fr_ctl_vec_load(fr_ctl_vec *v, const fr_st_file *f, const char *path, const char *prefix);

/* The control state of an algorithm's checkpoint beyond its parameters: the environments in
 * flight (ctl.env.*), the observation statistics (ctl.obs_rms.*) and the reward scaler
 * (ctl.reward_scaler.*); and back (FR_ERR_FORMAT naming path and tensor). */
/* The episode metrics of a control epoch (run.h fr_run_metric): the mean return and the count of the
 * episodes that ended, the success rate where the environment defines success, and the environment
 * steps taken so far (env_steps). The same keys for every control algorithm. */
struct fr_run;
void fr_ctl_episode_metrics(struct fr_run *r, const fr_ctl_vec *v, const fr_env *e, int64_t env_steps);

fr_status fr_ctl_state_save(fr_st_file *f, const fr_ctl_vec *v, const fr_rms *rms, const fr_ctl_reward_scaler *sc);
fr_status fr_ctl_state_load(const fr_st_file *f, const char *path, fr_ctl_vec *v, fr_rms *rms, fr_ctl_reward_scaler *sc);

/* ---- a rollout block ----------------------------------------------------------------------- */
/* The policy as the collector sees it: for the N normalised observations obs (N, obs_dim) of step
 * t, the actions (N, action_dim) to take, their log-probabilities and the values V(obs) (the
 * policy keeps whatever else it needs at rows t·N + n). value: V of R normalised observations. */
typedef struct {
    fr_status (*act)(void *user, int64_t t, int64_t N, const float *obs, float *action, double *logp, double *value);
    fr_status (*value)(void *user, int64_t R, const float *obs, double *value);
    void *user;
} fr_ctl_policy;

typedef struct {
    int64_t T, N, O, A; /* steps, environments, obs_dim, action_dim */
    float *obs;         /* (T·N, O) normalised, the networks' input */
    float *act;         /* (T·N, A) */
    double *logp, *value, *reward, *next_value, *adv, *ret; /* (T·N,): reward as scaled */
    double *raw_reward; /* (T·N,) before scaling */
    uint8_t *first, *term, *end; /* (T·N,) */
    float *fin_obs;     /* (T·N, O) scratch: the final observations of truncated episodes */
} fr_ctl_block;
fr_status fr_ctl_block_new(fr_ctl_block *b, int64_t T, int64_t N, int64_t O, int64_t A);
void fr_ctl_block_free(fr_ctl_block *b);

/* Options of a block's collection. */
typedef struct {
    int obs_norm_update; /* 1: the running statistics take each step's observations */
    int reward_scale;    /* 1: rewards through the running scaler */
    double gamma, lambda;
} fr_ctl_collect_cfg;

/* T steps of v under policy p into b: each step normalises v->obs (rms updated first when asked),
 * asks p for actions, steps; then the bootstrap values (truncated episodes' final observations
 * and the observation after the block, normalised without updating), the reward scaling and
 * GAE. rms NULL: observations unnormalised; scaler NULL: rewards as they are. */
fr_status fr_ctl_collect(fr_ctl_vec *v, fr_rms *rms, fr_ctl_reward_scaler *scaler, const fr_ctl_policy *p,
                         const fr_ctl_collect_cfg *c, fr_ctl_block *b);

/* ---- evaluation ----------------------------------------------------------------------------- */
#define FR_CTL_EVAL_FIRST_EPISODE ((int64_t)1 << 31) /* evaluation episodes' ids: apart from training's */
typedef struct {
    double ret_mean; /* mean undiscounted return */
    double success;  /* share of successful episodes (NAN: the environment has no success notion) */
    int64_t terminal; /* episodes that ended in a terminal state (the others were truncated) */
} fr_ctl_eval;
/* E episodes of e under seed, ids FR_CTL_EVAL_FIRST_EPISODE + 0..E−1, one per environment, each
 * to its end: p->act at step t (logp and value NULL) on the observations normalised by rms (not
 * updated; NULL: raw). With e->eval_record set, the episodes (raw observations, actions, rewards,
 * final observations, success) go there in episode order (fr_demos_init'ed by the call, no
 * state; what the run loop draws as samples/KEY.png on nav2d). */
fr_status fr_ctl_evaluate(const fr_env *e, uint32_t seed, int64_t E, const fr_rms *rms, const fr_ctl_policy *p,
                          fr_ctl_eval *out);

/* ---- the diagonal Gaussian (host float64) ------------------------------------------------- */
/* log N(a; μ, diag σ²) summed over A dims with σ = exp(log_std); entropy Σ (log σ + ½ log 2πe). */
double fr_ctl_gauss_logp(int64_t A, const float *a, const float *mu, const double *log_std);
double fr_ctl_gauss_entropy(int64_t A, const double *log_std);

#endif
