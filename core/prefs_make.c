/* Making preference pairs from a model (flowrl/prefs.h fr_prefs_make): D3PO's sampling, two
 * samples of one prompt from one shared x_T (spec/objectives.md §17), labelled by a task
 * reward with ties dropped (docs/preferences.md §3). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "flowrl/philox.h"
#include "flowrl/prefs.h"
#include "flowrl/sampler.h"

/* The training prompt of attempt a: floor(u·n_train) (exact in double: u has 24 bits). */
static int attempt_prompt(uint32_t seed, int64_t a, int n_train)
{
    const double u = (double)fr_rng_uniform(seed, FR_RNG_PREFS, (uint32_t)a, 0, 0, 0);
    return (int)floor(u * (double)n_train);
}

static int stochastic(const fr_rollout_cfg *c)
{
    if (c->kind == FR_SAMPLER_ODE || c->kind == FR_SAMPLER_DPM) return 0;
    if (c->step_noise) {
        for (int64_t i = 0; i < c->T; i++)
            if (c->step_noise[i] > 0.0f) return 1;
        return 0;
    }
    return c->noise > 0.0f;
}

static fr_status check_opts(const fr_task *t, const fr_rollout_cfg *rc, const fr_prefs_make_opts *o)
{
    if (o->pairs < 1 || o->pairs > FR_PREFS_MAX_PAIRS)
        return fr_fail(FR_ERR_ARG, "--pairs %" PRId64 ", expected 1 .. 2^30", o->pairs);
    if (o->max_attempts < o->pairs || o->max_attempts > (INT64_C(1) << 31))
        return fr_fail(FR_ERR_ARG, "--max-attempts %" PRId64 ", expected --pairs (%" PRId64 ") .. 2^31",
                       o->max_attempts, o->pairs);
    if (o->batch_pairs < 1) return fr_fail(FR_ERR_ARG, "batch_pairs %" PRId64 " < 1", o->batch_pairs);
    if (o->reward_id < 0 || o->reward_id >= t->n_rewards)
        return fr_fail(FR_ERR_ARG, "reward id %d outside task %s's [0, %d)", o->reward_id, t->name,
                       t->n_rewards);
    if (rc->n_branch != 0) return fr_fail(FR_ERR_ARG, "a rollout tree is not a pair sampler");
    if (!stochastic(rc))
        return fr_fail(FR_ERR_ARG, "sampler %s with noise %g is deterministic: the two samples of one "
                       "x_T would be equal; use sde, cps, dance or ddim with a noise level > 0",
                       fr_sampler_name(rc->kind), (double)rc->noise);
    return FR_OK;
}

/* Fills the metadata that the make options decide. */
static void set_meta(fr_prefs *p, const fr_task *t, const fr_rollout_cfg *c, int reward_id)
{
    snprintf(p->task, sizeof p->task, "%s", t->name);
    snprintf(p->reward, sizeof p->reward, "%s", t->reward_names[reward_id]);
    snprintf(p->tie_rule, sizeof p->tie_rule, "%s", FR_PREFS_TIE_RULE);
    snprintf(p->sampler, sizeof p->sampler, "%s", fr_sampler_name(c->kind));
    snprintf(p->flowrl_version, sizeof p->flowrl_version, "%s", FR_VERSION);
    p->noise = c->noise;
    p->steps = c->T;
    p->cfg = c->cfg;
    p->seed = c->seed;
}

fr_status fr_prefs_make(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *rc,
                        const fr_prefs_make_opts *o, fr_prefs *out)
{
    memset(out, 0, sizeof *out);
    out->attempts = out->ties_dropped = -1;
    FR_TRY(check_opts(task, rc, o));
    fr_rollout_cfg c = *rc;
    c.x_T_key = FR_XT_GROUP;
    c.group_size = 2;
    c.c0 = FR_PREFS_C0;
    const int64_t N = o->pairs, D = task->D;
    const int64_t bp = o->batch_pairs < o->max_attempts ? o->batch_pairs : o->max_attempts;
    FR_TRY(fr_prefs_alloc(out, N, D, 1));
    set_meta(out, task, &c, o->reward_id);

    int *pid = fr_malloc((size_t)(2 * bp) * sizeof *pid);
    uint32_t *sid = fr_malloc((size_t)(2 * bp) * sizeof *sid);
    float *x = fr_malloc((size_t)(2 * bp) * (size_t)D * sizeof *x);
    float *score = fr_malloc((size_t)(2 * bp) * sizeof *score);
    fr_status s = (pid && sid && x && score) ? FR_OK : FR_ERR_NOMEM;
    int64_t kept = 0, ties = 0, attempts = 0;
    for (int64_t a0 = 0; s == FR_OK && kept < N && a0 < o->max_attempts; a0 += bp) {
        const int64_t nb = bp < o->max_attempts - a0 ? bp : o->max_attempts - a0;
        for (int64_t i = 0; i < nb; i++) {
            pid[2 * i] = pid[2 * i + 1] = attempt_prompt(c.seed, a0 + i, task->n_train);
            sid[2 * i] = (uint32_t)(2 * (a0 + i));
            sid[2 * i + 1] = (uint32_t)(2 * (a0 + i) + 1);
        }
        s = fr_rollout_to_host(m, be, task, &c, 2 * nb, pid, sid, x);
        if (s == FR_OK) s = fr_task_reward_batch(task, o->reward_id, (int)(2 * nb), pid, x, score, NULL);
        for (int64_t i = 0; s == FR_OK && i < nb && kept < N; i++) {
            const float s0 = score[2 * i], s1 = score[2 * i + 1];
            attempts++;
            if (!isfinite(s0) || !isfinite(s1)) {
                s = fr_fail(FR_ERR_NUMERIC, "reward %s of attempt %" PRId64 " (prompt %d): %g, %g, "
                            "expected finite scores", out->reward, a0 + i, pid[2 * i], (double)s0, (double)s1);
                break;
            }
            if (s0 == s1) { /* a tie: no preference (docs/preferences.md §3) */
                ties++;
                continue;
            }
            const int64_t w = s0 > s1 ? 2 * i : 2 * i + 1, l = s0 > s1 ? 2 * i + 1 : 2 * i;
            memcpy(out->x_w + kept * D, x + w * D, (size_t)D * sizeof *x);
            memcpy(out->x_l + kept * D, x + l * D, (size_t)D * sizeof *x);
            out->prompt[kept] = pid[2 * i];
            out->r_w[kept] = score[w];
            out->r_l[kept] = score[l];
            /* the x_T both rows started from: the rollout's draw (flowrl/rollout.h) */
            fr_rng_fill_normal(out->x_T + kept * D, D, c.seed, FR_RNG_SAMPLER_INIT, c.c0,
                               fr_rollout_noise_owner(&c, sid[2 * i], -1), 0);
            kept++;
        }
        if (o->progress && s == FR_OK) fr_progress_update(o->progress, kept, NAN);
    }
    free(pid);
    free(sid);
    free(x);
    free(score);
    if (s == FR_OK && kept < N)
        s = fr_fail(FR_ERR_NUMERIC, "%" PRId64 " of %" PRId64 " pairs after %" PRId64 " attempts (the "
                    "cap, --max-attempts): %" PRId64 " ties (equal rewards under %s) were dropped; raise the cap, or "
                    "use a reward or sampler noise that separates the two samples", kept, N, attempts, ties,
                    out->reward);
    if (s != FR_OK) {
        fr_prefs_free(out);
        return s;
    }
    out->attempts = attempts;
    out->ties_dropped = ties;
    return FR_OK;
}
