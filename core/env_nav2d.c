/* nav2d (docs/envs.md §4): a point mass in the arena [-1, 1]^2 that must reach any of K goals
 * on a circle around its start. The layout is symmetric, so demonstrations of an expert that
 * picks its goal at random are multi-modal at the start: a Gaussian policy fitted to them
 * averages the modes (mean action ≈ 0 near the centre), a flow or diffusion policy need not.
 *
 * State (x, y, vx, vy) in float64, observation the same as float32. Action a (2,) clipped to
 * [-1, 1] per component; with dt, accel, drag:
 *   v' = v + dt·(accel·a − drag·v),  p' = p + dt·v'  (semi-implicit Euler)
 * then a wall: a coordinate outside [-1, 1] is clamped and its velocity set to 0.
 * Reward: +1 and done when |p' − g_k| < success_radius for some goal k, else −step_cost. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/env_ctl.h"

#define O fr_nav2d_opts
static const fr_opt k_rows[] = {
    FR_OPT_INT(O, goals, "goals", "4", 1, 16, "K goals on a circle around the start (angles 45° + k·360°/K)", 0),
    FR_OPT_F64(O, goal_radius, "goal_radius", "0.7", 0.05, 0.95, "radius of the goal circle", 0),
    FR_OPT_F64(O, success_radius, "success_radius", "0.1", 0.01, 0.5, "a goal is reached within this distance", 0),
    FR_OPT_INT(O, max_steps, "max_episode_steps", "50", 1, 100000, "episode length limit (truncation)", 0),
    FR_OPT_F64(O, dt, "dt", "0.1", 1e-4, 1, "integration step", 0),
    FR_OPT_F64(O, accel, "accel", "1.5", 0.01, 100, "acceleration per unit action", 0),
    FR_OPT_F64(O, drag, "drag", "2", 0, 100, "velocity damping rate", 0),
    FR_OPT_F64(O, start_spread, "start_spread", "0.05", 0, 0.5, "start uniform in [-s, s]^2, at rest", 0),
    FR_OPT_F64(O, step_cost, "step_cost", "0.01", 0, 1, "reward -step_cost for a step that reaches no goal", 0),
};
#undef O

static const fr_nav2d_opts *nv(const fr_env *e) { return e->impl; }

void fr_nav2d_goal(const fr_nav2d_opts *o, int k, double *g)
{
    const double pi = 3.141592653589793;
    double s, c;
    fr_ctl_sincos(0.25 * pi + 2.0 * pi * (double)k / (double)o->goals, &s, &c);
    g[0] = o->goal_radius * c;
    g[1] = o->goal_radius * s;
}

static void observe(const double *st, float *obs)
{
    for (int i = 0; i < 4; i++) obs[i] = (float)st[i];
}

/* Start: uniform in [-s, s]^2 (fr_ctl_uniform i = 0, 1 of (seed, episode, c1 = 0)), at rest. */
static fr_status reset(const fr_env *e, uint32_t seed, uint32_t episode, double *st, float *obs)
{
    const fr_nav2d_opts *o = nv(e);
    for (int i = 0; i < 2; i++) st[i] = o->start_spread * (2.0 * fr_ctl_uniform(seed, episode, 0, (uint32_t)i) - 1.0);
    st[2] = st[3] = 0.0;
    observe(st, obs);
    return FR_OK;
}

static double clip1(float a) { return a < -1.0f ? -1.0 : a > 1.0f ? 1.0 : (double)a; }

/* The goal k reached from p, or -1. */
static int reached(const fr_nav2d_opts *o, const double *p)
{
    const double r2 = o->success_radius * o->success_radius;
    for (int k = 0; k < o->goals; k++) {
        double g[2];
        fr_nav2d_goal(o, k, g);
        const double dx = p[0] - g[0], dy = p[1] - g[1];
        if (dx * dx + dy * dy < r2) return k;
    }
    return -1;
}

static fr_status step(const fr_env *e, double *st, const float *action, float *obs, double *reward, int *done)
{
    const fr_nav2d_opts *o = nv(e);
    if (!isfinite(action[0]) || !isfinite(action[1]))
        return fr_fail(FR_ERR_NUMERIC, "nav2d: action (%g, %g) is not finite", (double)action[0], (double)action[1]);
    for (int i = 0; i < 2; i++) {
        const double a = clip1(action[i]);
        st[2 + i] = st[2 + i] + o->dt * (o->accel * a - o->drag * st[2 + i]);
        st[i] = st[i] + o->dt * st[2 + i];
        if (st[i] < -1.0 || st[i] > 1.0) {
            st[i] = st[i] < -1.0 ? -1.0 : 1.0;
            st[2 + i] = 0.0;
        }
    }
    observe(st, obs);
    *done = reached(o, st) >= 0;
    *reward = *done ? 1.0 : -o->step_cost;
    return FR_OK;
}

static int success(const fr_env *e, const double *st) { return reached(nv(e), st) >= 0; }

static const fr_env_ctl_ops k_ops = {reset, step, success, NULL, 0};

static fr_status create(const void *ov, fr_env *e)
{
    const fr_nav2d_opts *o = ov;
    if (o->start_spread + o->success_radius >= o->goal_radius)
        return fr_fail(FR_ERR_ARG, "nav2d: --start-spread %g + --success-radius %g must be below --goal-radius %g "
                                   "(a start inside a goal)", o->start_spread, o->success_radius, o->goal_radius);
    fr_nav2d_opts *copy = fr_malloc(sizeof *copy);
    if (!copy) return FR_ERR_NOMEM;
    *copy = *o;
    e->impl = copy;
    e->state_dim = 4;
    e->obs_dim = 4;
    e->n_actions = 0;
    e->action_dim = 2;
    e->exit_action = -1;
    e->max_steps = o->max_steps;
    e->n_states = 0;
    e->gfn = NULL;
    e->ctl = &k_ops;
    snprintf(e->desc, sizeof e->desc, "nav2d K=%d R=%g r=%g T=%d dt=%g", o->goals, o->goal_radius, o->success_radius,
             o->max_steps, o->dt);
    return FR_OK;
}

const fr_env_class fr_env_nav2d = {
    "nav2d",
    "2-D point mass that must reach any of K goals around its start (multi-modal demonstrations)",
    "docs/envs.md",
    "control",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(fr_nav2d_opts),
    create,
};
