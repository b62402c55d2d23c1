/* Environments (`flowrl envs`, `flowrl train --env NAME`): sequential decision problems beside
 * the image / 2-D tasks of flowrl/task.h, for GFlowNets (discrete DAGs: HyperGrid) and for
 * control (episodes with continuous actions). docs/envs.md; the GFlowNet side
 * docs/algorithms/gfn.md.
 *
 * An environment is a class (one row of the registry in core/env_registry.c: name, summary,
 * docs page, its options as flowrl/opts.h rows over a struct of opts_size bytes, create) and an
 * instance made from the class and its option values. An instance exposes sizes and up to two
 * operation tables:
 *
 *   gfn (fr_env_gfn_ops)      discrete states of state_dim int32 coordinates, n_actions
 *                             discrete actions of which exit_action ends the trajectory,
 *                             forward and backward masks, log-reward of a terminating state,
 *                             and, where n_states > 0, an enumeration of the state space
 *                             (canonical index ↔ state) for exact evaluation
 *                             (docs/algorithms/gfn.md §5).
 *   ctl (fr_env_ctl_ops)      control: episodes of at most max_steps steps, a state of
 *                             state_dim doubles (the environment's own; the policy never
 *                             reads it), observations of obs_dim floats, continuous actions
 *                             of action_dim floats (n_actions 0) or discrete ones
 *                             (n_actions > 0), a reward and a done flag per step, resets
 *                             seeded by Philox coordinates (seed, FR_RNG_ENV_RESET, episode,
 *                             ...), so an episode is a function of (seed, episode) alone.
 *
 *   energy (fr_env_energy_ops) a continuous target density R(x) on R^D (state_dim = obs_dim =
 *                             action_dim = D, n_actions 0, exit_action -1, max_steps 0,
 *                             n_states 0) for diffusion samplers trained as GFlowNets
 *                             (flowrl/gfn_diffusion.h): log R, its gradient, the exact log Z
 *                             and a ground-truth sampler driven by Philox.
 *
 * A GFlowNet environment sets gfn and leaves ctl NULL; a control environment (issue 18) sets
 * ctl and leaves gfn NULL; an environment may set both. Fields each side uses:
 *
 *   field        GFlowNet (gfn)                         control (ctl)
 *   state_dim    int32 coordinates per state            doubles per state
 *   obs_dim      policy input width (encode)            observation width (reset / step)
 *   n_actions    actions incl. exit (logits width)      discrete actions, or 0: continuous
 *   action_dim   0                                      continuous action width
 *   exit_action  the exit action's index                -1
 *   max_steps    longest trajectory, exit included      episode length limit (truncation)
 *   n_states     |S| when enumerable, else 0            0
 *
 * Every operation is host code over host memory, deterministic, and a pure function of its
 * arguments: the trainer moves observations to the backend (fr_h2d) and masks, log-rewards
 * and per-sample scalars live on the host (flowrl/backend.h's rule). Errors are FR_ERR_ARG or
 * FR_ERR_NUMERIC with one line naming the environment and the value. */
#ifndef FLOWRL_ENV_H
#define FLOWRL_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/opts.h"
#include "flowrl/status.h"

struct fr_env;

/* ---- the GFlowNet side: a DAG of discrete states ------------------------------------------ */
typedef struct {
    /* s0 into s (state_dim,). */
    void (*initial)(const struct fr_env *e, int32_t *s);
    /* The policy's input of state s: obs (obs_dim,) (HyperGrid: the K-hot of torchgfn's
     * KHotPreprocessor). */
    void (*encode)(const struct fr_env *e, const int32_t *s, float *obs);
    /* Forward mask of s: fwd (n_actions,), 1 = allowed; the exit action included. */
    void (*forward_mask)(const struct fr_env *e, const int32_t *s, uint8_t *fwd);
    /* Backward mask of s: bwd (n_actions - 1,), bwd[a] = 1 iff s has a parent p with
     * step(p, a) = s (the non-exit actions index the backward actions). */
    void (*backward_mask)(const struct fr_env *e, const int32_t *s, uint8_t *bwd);
    /* s_next = step(s, a) for an allowed non-exit action a (s_next may be s). */
    void (*step)(const struct fr_env *e, const int32_t *s, int a, int32_t *s_next);
    /* s_prev = the parent of s through non-exit action a (bwd[a] = 1; s_prev may be s). */
    void (*back_step)(const struct fr_env *e, const int32_t *s, int a, int32_t *s_prev);
    /* log R(x) of a terminating state x, float64 (finite: the caller clips where asked). */
    double (*log_reward)(const struct fr_env *e, const int32_t *x);
    /* With n_states > 0: the canonical index of s in [0, n_states), and back. The indices
     * are a topological order of the DAG (every parent before its children), so exact
     * evaluation is one pass. */
    int64_t (*index)(const struct fr_env *e, const int32_t *s);
    void (*state_at)(const struct fr_env *e, int64_t i, int32_t *s);
    /* 1 if s is a mode (the environment's definition; HyperGrid: R >= R0 + R1 + R2), else 0. */
    int (*is_mode)(const struct fr_env *e, const int32_t *s);
    /* A multi-objective environment (n_objectives > 1; docs/envs.md §9): the objectives
     * R_i(x) > 0 of a terminating state x into r (n_objectives,), float64. NULL otherwise. */
    void (*objectives)(const struct fr_env *e, const int32_t *x, double *r);
} fr_env_gfn_ops;

/* ---- the control side: episodes (issue 18; the environments: flowrl/env_ctl.h) -------------- */
typedef struct {
    /* The start of episode `episode` under seed: state (state_dim,), obs (obs_dim,); every
     * random number from Philox (seed, FR_RNG_ENV_RESET, episode, ...). */
    fr_status (*reset)(const struct fr_env *e, uint32_t seed, uint32_t episode, double *state, float *obs);
    /* One step from state (updated in place) under action (action_dim floats, or one
     * discrete index as a float when n_actions > 0): obs (obs_dim,), *reward, *done (1:
     * terminal; the loop truncates at max_steps itself). A non-finite action is FR_ERR_NUMERIC. */
    fr_status (*step)(const struct fr_env *e, double *state, const float *action, float *obs, double *reward,
                      int *done);
    /* 1 if an episode that ends in state counts as a success (nav2d: a goal reached; pendulum:
     * upright and slow), else 0. NULL: the environment has no success notion (a program). */
    int (*success)(const struct fr_env *e, const double *state);
    /* Releases what the instance holds beyond impl (a program's process); fr_env_free calls it
     * first. May be NULL. */
    void (*close)(struct fr_env *e);
    /* 1: the state lives in another process (cmd:PROGRAM), which a resumed run starts afresh: the
     * run keeps each episode in flight's actions and replays them (flowrl/ctl.h fr_ctl_vec_load). */
    int replay;
} fr_env_ctl_ops;

/* ---- energy targets: a density on R^D (docs/envs.md §3; spec gflownets.md §7.1) ----------- */
typedef struct {
    /* log R(x) of x (D,), float64, unnormalised (Z = ∫ R). */
    double (*log_reward)(const struct fr_env *e, const double *x);
    /* ∇ log R(x) into g (D,), analytic; returns log R(x). */
    double (*grad_log_reward)(const struct fr_env *e, const double *x, double *g);
    /* The exact log Z = log ∫ R(x) dx. */
    double (*log_z)(const struct fr_env *e);
    /* Ground-truth sample i into x (D,), every random number from Philox (seed,
     * FR_RNG_ENERGY_SAMPLE, i, block, try): a pure function of (seed, i). */
    void (*sample)(const struct fr_env *e, uint32_t seed, uint32_t i, double *x);
    /* Half-width of a square that shows the target's mass in its first two coordinates
     * (plots). */
    double (*extent)(const struct fr_env *e);
} fr_env_energy_ops;

/* ---- instances and classes -------------------------------------------------------------- */
typedef struct fr_env {
    const struct fr_env_class *cls;
    int state_dim, obs_dim, n_actions, action_dim, exit_action, max_steps;
    int64_t n_states;
    const fr_env_gfn_ops *gfn; /* NULL: not a GFlowNet environment */
    const fr_env_ctl_ops *ctl; /* NULL: not a control environment */
    void *impl;                /* the class's own data (freed by fr_env_free) */
    char desc[96];             /* "hypergrid D=2 H=8 R0=0.1 R1=0.5 R2=2" for run headers */
    const fr_env_energy_ops *energy; /* NULL: not an energy target */
    int n_objectives;                /* > 1: gfn->objectives gives that many rewards (mo-hypergrid) */
    /* control: set by the run loop around an evaluation it draws (nav2d's samples/KEY.png);
     * fr_ctl_evaluate records its episodes there (flowrl/ctl.h). NULL: nothing recorded */
    struct fr_demos *eval_record;
} fr_env;

typedef struct fr_env_class {
    const char *name;    /* "hypergrid" */
    const char *summary; /* one line for `flowrl envs` */
    const char *doc;     /* "docs/envs.md" */
    const char *kind;    /* "gfn", "control", "gfn+control" or "energy" */
    const fr_opt *rows;  /* the options (--ndim, ...) over a struct of opts_size bytes */
    int n_rows;
    size_t opts_size;
    /* An instance for options o (the struct, already range-checked by the rows): *out is
     * filled; cross-option errors are FR_ERR_ARG naming the option. */
    fr_status (*create)(const void *o, fr_env *out);
} fr_env_class;

/* The registered classes in the order `flowrl envs` lists them; NULL-terminated. */
const fr_env_class *const *fr_env_classes(void);
/* By name; FR_ERR_ARG "unknown environment 'x' (known: hypergrid)" otherwise. */
fr_status fr_env_find(const char *name, const fr_env_class **out);
/* The registry's first class whose kind includes kind ("gfn", "control"; NULL: "gfn"), or NULL. */
const fr_env_class *fr_env_first_of(const char *kind);
/* An instance of class c at its rows' defaults overridden by o (NULL: defaults only). */
fr_status fr_env_create(const fr_env_class *c, const void *o, fr_env *out);
/* The struct of c's options at their defaults (o has c->opts_size bytes). */
fr_status fr_env_defaults(const fr_env_class *c, void *o);
void fr_env_free(fr_env *e);

/* ---- HyperGrid (core/env_hypergrid.c; docs/envs.md §1, spec gflownets.md §1) ------------- */
typedef struct {
    int ndim;       /* D */
    int height;     /* H */
    double r0, r1, r2; /* OriginalReward's R0, R1, R2 */
} fr_hypergrid_opts;
#define FR_HYPERGRID_MAX_STATES (1LL << 24) /* enumerable up to this many cells */
extern const fr_env_class fr_env_hypergrid;
/* OriginalReward of x (ndim,) as torchgfn computes it: float32 a_d and thresholds, the sum in
 * float32 (docs/envs.md §1.2). */
float fr_hypergrid_reward(const fr_hypergrid_opts *o, const int32_t *x);

/* ---- energy targets (core/env_energy.c; docs/envs.md §3) --------------------------------- */
typedef struct {
    double variance; /* of each of the 25 components (0.3) */
} fr_gmm25_opts;
typedef struct {
    int dim;         /* D (10) */
    double sigma0;   /* x0 ~ N(0, sigma0²): 3 "hard", 1 "easy" */
} fr_funnel_opts;
typedef struct {
    int dim;         /* D, even (32): D/2 double wells */
} fr_manywell_opts;
extern const fr_env_class fr_env_gmm25, fr_env_funnel, fr_env_manywell;

/* ---- the 2-objective HyperGrid (core/env_mo_hypergrid.c; docs/envs.md §9) ----------------- */
extern const fr_env_class fr_env_mo_hypergrid;
/* Branin and Currin (normalised, to maximise) at cell s (2,) of a grid of height H into r (2,). */
void fr_mo_hypergrid_objectives(int H, const int32_t *s, double *r);

/* ---- exact quantities of an enumerable GFlowNet environment (core/gfn_exact.c) ------------ */
/* The target p(x) = R(x)/Z over every state (n_states,), *log_z = log Σ R, *n_modes mode
 * cells, *mode_mass Σ_{modes} p; float64, sums in index order. Any may be NULL. */
fr_status fr_env_target(const fr_env *e, double *p, double *log_z, int64_t *n_modes, double *mode_mass);

/* The exact terminating distribution of a forward policy (docs/algorithms/gfn.md §5.1):
 * logpf (n_states, n_actions) holds log P_F(a | s) at each state's row (masked actions
 * ignored); u(s0) = 1, u(s') = Σ_parents u(s)·P_F(s'|s), P_T(x) = u(x)·P_F(exit|x), in float64
 * over the canonical (topological) order. pt (n_states,). */
fr_status fr_env_exact_pt(const fr_env *e, const double *logpf, double *pt);

/* Σ_x |a(x) − b(x)| over n states, in index order. */
double fr_env_l1(const double *a, const double *b, int64_t n);

#endif
