/* Episodes of a control environment under a policy (flowrl/env_ctl.h): the host loop that
 * `flowrl expert` and evaluations run, into a demonstrations set (flowrl/demos.h). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/env_ctl.h"

fr_status fr_ctl_rollouts(const fr_env *e, uint32_t seed, uint32_t first_episode, int64_t n_episodes,
                          fr_ctl_policy_fn policy, void *ctx, fr_demos *out)
{
    fr_demos_init(out, e->obs_dim, e->action_dim, e->state_dim, e->ctl && e->ctl->success != NULL);
    if (!e->ctl) return fr_fail(FR_ERR_ARG, "rollouts: %s is not a control environment", e->desc);
    if (e->n_actions != 0 || e->action_dim < 1)
        return fr_fail(FR_ERR_ARG, "rollouts: %s has discrete actions; only continuous ones are supported", e->desc);
    if (n_episodes < 1 || (uint64_t)first_episode + (uint64_t)n_episodes - 1u > UINT32_MAX)
        return fr_fail(FR_ERR_ARG, "rollouts: episodes %" PRIu32 " + %" PRId64 " leave [0, 2^32)", first_episode,
                       n_episodes);
    out->max_steps = e->max_steps;
    double *st = fr_calloc((size_t)(e->state_dim > 0 ? e->state_dim : 1), sizeof *st);
    float *obs = fr_calloc((size_t)e->obs_dim, sizeof *obs), *next = fr_calloc((size_t)e->obs_dim, sizeof *next);
    float *act = fr_calloc((size_t)e->action_dim, sizeof *act);
    fr_status s = st && obs && next && act ? FR_OK : FR_ERR_NOMEM;
    for (int64_t k = 0; k < n_episodes && s == FR_OK; k++) {
        const uint32_t ep = first_episode + (uint32_t)k;
        s = e->ctl->reset(e, seed, ep, st, obs);
        int done = 0;
        for (int t = 0; t < e->max_steps && !done && s == FR_OK; t++) {
            s = policy(ctx, e, ep, t, obs, act);
            for (int i = 0; i < e->action_dim && s == FR_OK; i++)
                if (!isfinite(act[i]))
                    s = fr_fail(FR_ERR_NUMERIC, "rollouts: episode %" PRIu32 " step %d: the policy's action %d is %g", ep,
                                t, i, (double)act[i]);
            if (s == FR_OK && e->state_dim) s = fr_demos_push_step(out, obs, act, 0.0, 0, st);
            else if (s == FR_OK) s = fr_demos_push_step(out, obs, act, 0.0, 0, NULL);
            double r = 0.0;
            if (s == FR_OK) s = e->ctl->step(e, st, act, next, &r, &done);
            if (s == FR_OK && !isfinite(r))
                s = fr_fail(FR_ERR_NUMERIC, "rollouts: %s, episode %" PRIu32 " step %d: reward %g", e->desc, ep, t, r);
            if (s != FR_OK) break;
            out->reward[out->N - 1] = r;
            out->done[out->N - 1] = done ? 1 : 0;
            memcpy(obs, next, (size_t)e->obs_dim * sizeof *obs);
        }
        if (s == FR_OK) s = fr_demos_end_episode(out, ep, obs, e->ctl->success ? e->ctl->success(e, st) : 0);
    }
    free(st);
    free(obs);
    free(next);
    free(act);
    return s;
}
