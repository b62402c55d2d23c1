/* Control environments (issue 18; docs/envs.md §4-§7): the built-in tasks nav2d (a 2-D point
 * mass that must reach one of K goals: multi-modal demonstrations) and pendulum (Gymnasium's
 * Pendulum-v1), an environment program over a pipe (`--env cmd:PROGRAM`,
 * docs/env-protocol.md), the scripted experts, episode rollouts of any policy into a
 * demonstrations set (flowrl/demos.h) and the trajectory picture (PNG).
 *
 * Every built-in operation is host code in float64 over host memory and a pure function of its
 * arguments; resets draw from Philox (seed, FR_RNG_ENV_RESET, episode, c1, 0): c1 = 0 the
 * environment's start, c1 = 1 a scripted expert's choices for the episode (nav2d: its goal);
 * (seed, FR_RNG_ENV_RESET, episode, 2, t) is a noisy expert's action noise at step t. */
#ifndef FLOWRL_ENV_CTL_H
#define FLOWRL_ENV_CTL_H

#include <stdint.h>

#include "flowrl/demos.h"
#include "flowrl/env.h"
#include "flowrl/philox.h"

/* ---- float64 sine and cosine (core/ctl_math.c) ------------------------------------------- */
/* sin x and cos x for finite x from the operations of docs/design.md §1.1 only (glibc's differ
 * between versions and CPU paths in the last bit): x = k·π/2 + r with π/2 in three parts
 * (exact for |k| < 2^20), then Taylor polynomials in r (truncation < 2^-60 relative); within 1
 * ulp of the correctly rounded value (tests/test_env_ctl.c measures it against MPFR). |x| >=
 * 2^20·π/2 is first reduced by fmod(x, 2π_hi) (exact) plus n·2π_lo: within 1e-13 absolute up to
 * 10^9 (no environment reaches such angles). Non-finite x: NaN. */
void fr_ctl_sincos(double x, double *s, double *c);

/* A float64 uniform in (0, 1) of 53 bits from Philox (seed, FR_RNG_ENV_RESET, episode, c1, 0)
 * words 2i, 2i + 1: ((w0 >> 5)·2^26 + (w1 >> 6) + 0.5)·2^-53. */
static inline double fr_ctl_uniform(uint32_t seed, uint32_t episode, uint32_t c1, uint32_t i)
{
    const fr_u32x4 b = fr_rng_block(seed, FR_RNG_ENV_RESET, episode, c1, 0, i >> 1);
    const uint32_t w0 = b.v[2 * (i & 1u)], w1 = b.v[2 * (i & 1u) + 1];
    return ((double)(w0 >> 5) * 67108864.0 + (double)(w1 >> 6) + 0.5) * 0x1.0p-53;
}

/* ---- nav2d (core/env_nav2d.c; docs/envs.md §4) ------------------------------------------- */
typedef struct {
    int goals;              /* K goals on a circle */
    double goal_radius;     /* the circle's radius */
    double success_radius;  /* reached: distance to a goal below this */
    int max_steps;
    double dt;              /* integration step */
    double accel;           /* acceleration per unit action */
    double drag;            /* velocity damping rate */
    double start_spread;    /* the start is uniform in [-s, s]^2 at rest */
    double step_cost;       /* reward -step_cost per step that does not reach a goal */
} fr_nav2d_opts;
extern const fr_env_class fr_env_nav2d;
/* Goal k of K: goal_radius·(cos φ_k, sin φ_k), φ_k = π/4 + 2πk/K. */
void fr_nav2d_goal(const fr_nav2d_opts *o, int k, double *g /* (2,) */);

/* ---- pendulum (core/env_pendulum.c; docs/envs.md §5) ------------------------------------- */
typedef struct {
    double g;              /* gravity (Gymnasium's default 10) */
    int max_steps;         /* Pendulum-v1's TimeLimit: 200 */
    double x_init, y_init; /* reset bounds of θ and θ̇ (Gymnasium's reset options: π, 1) */
} fr_pendulum_opts;
extern const fr_env_class fr_env_pendulum;
/* Gymnasium's angle_normalize: ((x + π) mod 2π) − π with numpy's floor-mod (np.remainder). */
double fr_pendulum_angle_normalize(double x);

/* ---- an environment program over a pipe (core/env_cmd.c; docs/env-protocol.md) ------------ */
#define FR_ENV_CMD_PREFIX "cmd:"
#define FR_ENV_CMD_VERSION 1u
#define FR_ENV_CMD_PROGRAM_MAX 1024
typedef struct {
    char program[FR_ENV_CMD_PROGRAM_MAX]; /* `sh -c PROGRAM` (from --env cmd:PROGRAM) */
    double timeout_s;                     /* per message, seconds */
    char cwd[FR_ENV_CMD_PROGRAM_MAX];     /* the program runs there ("": the caller's directory) */
} fr_env_cmd_opts;
extern const fr_env_class fr_env_cmd;
/* PROGRAM of an environment spec "cmd:PROGRAM", or NULL when spec names a built-in. */
const char *fr_env_cmd_program(const char *spec);
/* The class and defaulted options of spec: a built-in name, or "cmd:PROGRAM" (the program
 * copied into the fr_env_cmd_opts). *opts is allocated (the class's opts_size bytes; free()). */
fr_status fr_env_spec(const char *spec, const fr_env_class **cls, void **opts);
/* For the pipe class: the program of spec "cmd:PROGRAM" into its options (the run loop's --env;
 * nothing for a bare "cmd:", whose program is already in the options' --env-program, as a
 * config.json may hold it), and cwd as the directory the program runs in unless the options
 * have one (a run's start directory: a resumed run finds the program's relative paths from
 * anywhere). Nothing for another class. */
void fr_env_spec_apply(const fr_env_class *c, void *opts, const char *spec, const char *cwd);
/* The options of class c (opts) as a JSON object of strings by key (as `flowrl envs` prints
 * them; malloc'ed text, NULL when out of memory), and back onto opts (errors name where). */
char *fr_env_options_json(const fr_env_class *c, const void *opts);
fr_status fr_env_options_from_json(const fr_env_class *c, void *opts, const char *json, const char *where);
/* The instance a demonstrations set was recorded on (its env and env_options metadata); its
 * widths must match the set's. A program (cmd:) is started again. */
fr_status fr_env_from_demos(const fr_demos *d, fr_env *e);
/* The child's pid while it runs, else -1 (tests). */
int fr_env_cmd_pid(const fr_env *e);
/* The program's action bounds (its hello: Gymnasium's Box low / high), (action_dim,) each. */
fr_status fr_env_cmd_bounds(const fr_env *e, const float **low, const float **high);

/* ---- policies, rollouts and the scripted experts (core/ctl_rollout.c, core/ctl_expert.c) - */
/* A policy: action (action_dim,) for observation obs (obs_dim,) at step t of episode. */
typedef fr_status (*fr_ctl_policy_fn)(void *ctx, const fr_env *e, uint32_t episode, int t,
                                      const float *obs, float *action);

/* Episodes first_episode .. first_episode + n_episodes − 1 of e under seed, each from
 * ctl->reset(seed, episode) to a terminal step or max_steps, into *out (fr_demos_init'ed by
 * the call; its metadata env / seed / policy left for the caller). */
fr_status fr_ctl_rollouts(const fr_env *e, uint32_t seed, uint32_t first_episode, int64_t n_episodes,
                          fr_ctl_policy_fn policy, void *ctx, fr_demos *out);

typedef struct {
    const char *name;    /* "nav2d", "pendulum" */
    const char *summary; /* one line */
    int obs_dim, action_dim;
    double action_max;    /* its actions lie in [−action_max, action_max] (nav2d 1, pendulum 2) */
    fr_ctl_policy_fn act; /* ctx: an fr_ctl_expert_ctx */
} fr_ctl_expert;
typedef struct {
    const fr_ctl_expert *x;
    uint32_t seed;
    const void *env_opts; /* the env's options when it is the expert's built-in, else NULL */
    double noise;         /* σ of fr_ctl_expert_act's action noise (0: the expert itself) */
} fr_ctl_expert_ctx;
/* An imperfect expert (docs/demos.md §3; an fr_ctl_policy_fn over an fr_ctl_expert_ctx): x->act,
 * then with noise σ > 0 each action a_d + σ·ξ_d clipped to ±action_max, ξ_d = fr_rng_normal(seed,
 * FR_RNG_ENV_RESET, episode, 2, t, d); with σ = 0 exactly x->act (the same bytes). */
fr_status fr_ctl_expert_act(void *ctx, const fr_env *e, uint32_t episode, int t, const float *obs, float *action);
/* The experts in the order `flowrl expert --help` lists them; NULL-terminated. */
const fr_ctl_expert *const *fr_ctl_experts(void);
/* By name; FR_ERR_ARG naming the known ones otherwise. */
fr_status fr_ctl_expert_find(const char *name, const fr_ctl_expert **out);

/* ---- the trajectory picture (core/ctl_plot.c) -------------------------------------------- */
/* nav2d episodes of d drawn to a size x size PNG at path: the arena [-1, 1]^2, the goals with
 * their success radius, each episode's path from its start dot (green: success, red: not), and
 * a title line (title, then success rate and mean return). The env must be nav2d (its options
 * o: the goals). */
fr_status fr_ctl_plot_nav2d(const char *path, const fr_nav2d_opts *o, const fr_demos *d, int size, const char *title);

#endif
