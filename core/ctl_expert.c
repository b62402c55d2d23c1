/* The scripted experts of `flowrl expert` (flowrl/env_ctl.h, docs/envs.md §7). Each acts on the
 * observation alone (so it also drives a program with the same observations, e.g. Pendulum-v1
 * over the pipe) plus, for nav2d, its choice for the episode from Philox. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "flowrl/env_ctl.h"

static float clipf(double v, double lim) { return (float)(v < -lim ? -lim : v > lim ? lim : v); }

/* nav2d: the episode's goal k = floor(u·K), u = fr_ctl_uniform(seed, episode, c1 = 1, 0), so the
 * demonstrations cover every mode; then a PD law toward it, a = clip(KP·(g − p) − KD·v, −1, 1)
 * per component (critically damped enough to stop inside the success radius). */
#define NAV_KP 4.0
#define NAV_KD 1.2
static fr_status nav2d_act(void *ctx, const fr_env *e, uint32_t episode, int t, const float *obs, float *action)
{
    (void)t;
    const fr_ctl_expert_ctx *c = ctx;
    fr_nav2d_opts o;
    if (c->env_opts) o = *(const fr_nav2d_opts *)c->env_opts;
    else fr_env_defaults(&fr_env_nav2d, &o);
    if (e->obs_dim != 4 || e->action_dim != 2)
        return fr_fail(FR_ERR_ARG, "expert nav2d: %s has obs_dim %d, action_dim %d, expected 4 and 2", e->desc, e->obs_dim,
                       e->action_dim);
    int k = (int)floor(fr_ctl_uniform(c->seed, episode, 1, 0) * (double)o.goals);
    if (k >= o.goals) k = o.goals - 1;
    double g[2];
    fr_nav2d_goal(&o, k, g);
    for (int i = 0; i < 2; i++)
        action[i] = clipf(NAV_KP * (g[i] - (double)obs[i]) - NAV_KD * (double)obs[2 + i], 1.0);
    return FR_OK;
}

/* pendulum (obs cos θ, sin θ, θ̇; θ̈ = (3g/2)·sin θ + 3u with g = 10): near the top (cos θ >
 * cos 0.5 and |θ̇| < 3) a PD law u = −(KP·θ + KD·θ̇) with θ ≈ 2 sin θ/(1 + cos θ) (twice the
 * half-angle tangent), which makes the linearised loop θ̈ = −15θ − 6θ̇; elsewhere energy pumping,
 * E = θ̇²/2 + 15 cos θ against the upright E* = 15: u = 2·sign((E* − E)·θ̇), a kick of +2 when
 * θ̇ ≈ 0 at the bottom. */
#define PEND_KP 10.0
#define PEND_KD 2.0
static fr_status pendulum_act(void *ctx, const fr_env *e, uint32_t episode, int t, const float *obs, float *action)
{
    (void)ctx, (void)episode, (void)t;
    if (e->obs_dim != 3 || e->action_dim != 1)
        return fr_fail(FR_ERR_ARG, "expert pendulum: %s has obs_dim %d, action_dim %d, expected 3 and 1", e->desc,
                       e->obs_dim, e->action_dim);
    const double c = obs[0], s = obs[1], w = obs[2];
    if (c > 0.8775825618903728 && fabs(w) < 3.0) {
        const double th = 2.0 * s / (1.0 + c);
        action[0] = clipf(-(PEND_KP * th + PEND_KD * w), 2.0);
        return FR_OK;
    }
    const double energy = 0.5 * w * w + 15.0 * c, pump = (15.0 - energy) * w;
    action[0] = fabs(w) < 0.05 ? 2.0f : pump > 0.0 ? 2.0f : -2.0f;
    return FR_OK;
}

static const fr_ctl_expert k_nav2d = {"nav2d", "goes to one of the K goals picked at random per episode (PD law)", 4, 2,
                                      1.0, nav2d_act};
static const fr_ctl_expert k_pendulum = {"pendulum", "energy-pumping swing-up, PD balance near the top", 3, 1, 2.0,
                                         pendulum_act};

fr_status fr_ctl_expert_act(void *ctx, const fr_env *e, uint32_t episode, int t, const float *obs, float *action)
{
    const fr_ctl_expert_ctx *c = ctx;
    FR_TRY(c->x->act(ctx, e, episode, t, obs, action));
    if (c->noise <= 0.0) return FR_OK;
    for (int d = 0; d < c->x->action_dim; d++) {
        const double xi = (double)fr_rng_normal(c->seed, FR_RNG_ENV_RESET, episode, 2, (uint32_t)t, (uint32_t)d);
        action[d] = clipf((double)action[d] + c->noise * xi, c->x->action_max);
    }
    return FR_OK;
}
static const fr_ctl_expert *const k_experts[] = {&k_nav2d, &k_pendulum, NULL};

const fr_ctl_expert *const *fr_ctl_experts(void) { return k_experts; }

fr_status fr_ctl_expert_find(const char *name, const fr_ctl_expert **out)
{
    for (const fr_ctl_expert *const *x = k_experts; *x; x++)
        if (name && strcmp((*x)->name, name) == 0) {
            *out = *x;
            return FR_OK;
        }
    return fr_fail(FR_ERR_ARG, "unknown expert '%s' (known: nav2d, pendulum)", name ? name : "");
}
