/* pendulum (docs/envs.md §5): Gymnasium's Pendulum-v1 (Farama-Foundation/Gymnasium@3f0476a8
 * gymnasium/envs/classic_control/pendulum.py), θ = 0 upright, operation for operation in the
 * precisions Gymnasium computes with NumPy 1.x (Debian 12's numpy 1.24, the peer test's):
 *
 *   u      = clip(action, −2, 2)                                   float32 (the action array)
 *   cost   = an(θ)² + 0.1·θ̇² + 0.001·u²                            float64 (u**2 of a float32
 *                                                                  scalar is float64: exact)
 *   θ̇'     = clip(θ̇ + ((3g/2)·sin θ + 3·u)·dt, −8, 8)               float64 (3·u exact)
 *   θ'     = θ + θ̇'·dt                                              float64
 *   obs    = f32(cos θ'), f32(sin θ'), f32(θ̇')
 *   reward = −cost (of the state before the step), never done (the loop truncates at 200)
 *
 * with an(x) = ((x + π) mod 2π) − π (np.remainder). NumPy ≥ 2 (NEP 50) keeps the Python
 * scalars weak, so there u², 3·u and 0.001·u² are float32: a difference of one float32
 * rounding in the torque terms (docs/envs.md §5.2). sin and cos are flowrl's float64 ones
 * (fr_ctl_sincos, within 1 ulp); NumPy's depend on the CPU (SVML on AVX512: up to 3 ulp from
 * glibc's, measured), so Gymnasium itself is not the same bits on every machine. Reset: θ uniform in
 * [−x_init, x_init], θ̇ in [−y_init, y_init] (Gymnasium's options, defaults π and 1) from
 * Philox instead of NumPy's PCG64. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "flowrl/env_ctl.h"

#define PI 3.141592653589793
#define MAX_SPEED 8.0
#define MAX_TORQUE 2.0f
#define DT 0.05

#define O fr_pendulum_opts
static const fr_opt k_rows[] = {
    FR_OPT_F64(O, g, "g", "10", 0, 100, "gravity (Pendulum-v1's g)", 0),
    FR_OPT_INT(O, max_steps, "max_episode_steps", "200", 1, 100000, "episode length limit (Pendulum-v1's TimeLimit)", 0),
    FR_OPT_F64(O, x_init, "x_init", "3.141592653589793", 0, 3.141592653589793, "reset: θ uniform in [-x_init, x_init]", 0),
    FR_OPT_F64(O, y_init, "y_init", "1", 0, 8, "reset: θ̇ uniform in [-y_init, y_init]", 0),
};
#undef O

static const fr_pendulum_opts *pd(const fr_env *e) { return e->impl; }

double fr_pendulum_angle_normalize(double x)
{
    /* np.remainder(a, b) for b > 0: fmod (exact), plus b when the sign differs */
    const double a = x + PI, b = 2.0 * PI;
    double m = fmod(a, b);
    if (m != 0.0) {
        if (m < 0.0) m += b;
    } else {
        m = 0.0; /* copysign(0, b) */
    }
    return m - PI;
}

static void observe(const double *st, float *obs)
{
    double s, c;
    fr_ctl_sincos(st[0], &s, &c);
    obs[0] = (float)c;
    obs[1] = (float)s;
    obs[2] = (float)st[1];
}

static fr_status reset(const fr_env *e, uint32_t seed, uint32_t episode, double *st, float *obs)
{
    const fr_pendulum_opts *o = pd(e);
    st[0] = o->x_init * (2.0 * fr_ctl_uniform(seed, episode, 0, 0) - 1.0);
    st[1] = o->y_init * (2.0 * fr_ctl_uniform(seed, episode, 0, 1) - 1.0);
    observe(st, obs);
    return FR_OK;
}

static fr_status step(const fr_env *e, double *st, const float *action, float *obs, double *reward, int *done)
{
    if (!isfinite(action[0])) return fr_fail(FR_ERR_NUMERIC, "pendulum: action %g is not finite", (double)action[0]);
    const float uf = action[0] < -MAX_TORQUE ? -MAX_TORQUE : action[0] > MAX_TORQUE ? MAX_TORQUE : action[0];
    const double u = (double)uf, th = st[0], thdot = st[1];
    const double an = fr_pendulum_angle_normalize(th);
    const double cost = (an * an + 0.1 * (thdot * thdot)) + 0.001 * (u * u);
    double s, c;
    fr_ctl_sincos(th, &s, &c);
    const double g = pd(e)->g;
    double nthdot = thdot + ((3.0 * g / 2.0) * s + 3.0 * u) * DT;
    nthdot = nthdot < -MAX_SPEED ? -MAX_SPEED : nthdot > MAX_SPEED ? MAX_SPEED : nthdot;
    st[0] = th + nthdot * DT;
    st[1] = nthdot;
    observe(st, obs);
    *reward = -cost;
    *done = 0;
    return FR_OK;
}

/* Upright and slow: |an(θ)| < 0.1 rad and |θ̇| < 1 rad/s. */
static int success(const fr_env *e, const double *st)
{
    (void)e;
    return fabs(fr_pendulum_angle_normalize(st[0])) < 0.1 && fabs(st[1]) < 1.0;
}

static const fr_env_ctl_ops k_ops = {reset, step, success, NULL, 0};

static fr_status create(const void *ov, fr_env *e)
{
    const fr_pendulum_opts *o = ov;
    fr_pendulum_opts *copy = fr_malloc(sizeof *copy);
    if (!copy) return FR_ERR_NOMEM;
    *copy = *o;
    e->impl = copy;
    e->state_dim = 2;
    e->obs_dim = 3;
    e->n_actions = 0;
    e->action_dim = 1;
    e->exit_action = -1;
    e->max_steps = o->max_steps;
    e->n_states = 0;
    e->gfn = NULL;
    e->ctl = &k_ops;
    snprintf(e->desc, sizeof e->desc, "pendulum g=%g T=%d (Pendulum-v1)", o->g, o->max_steps);
    return FR_OK;
}

const fr_env_class fr_env_pendulum = {
    "pendulum",
    "Gymnasium's Pendulum-v1 swing-up: torque in [-2, 2], reward -(θ² + 0.1 θ̇² + 0.001 u²), 200 steps",
    "docs/envs.md",
    "control",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(fr_pendulum_opts),
    create,
};
