/* The run loop over R ranks (flowrl/dist.h; docs/determinism.md "Many processes"): an
 * epoch's rollout and rewards split by whole groups of samples, gathered so that every rank
 * holds the same trajectories, rewards and (computed from them) advantages; the update is
 * then computed by every rank alike. With one rank these are fr_rollout and the reward. */
#include <stdlib.h>
#include <string.h>

#include "core/run_internal.h"
#include "flowrl/dist.h"
#include "flowrl/progress.h"

/* this rank's block of the N samples: whole groups */
static void my_block(const fr_run *r, int64_t N, int64_t *lo, int64_t *hi)
{
    fr_dist_block(N, r->o->c.group, fr_dist_rank(), fr_dist_size(), lo, hi);
}

/* One output of the rollout: the rank's part dev_part (outer, n, D) to the host whole
 * (outer, N, D) at rows [lo, lo + n), gathered, and the whole to dev (backend memory). */
static fr_status gather_out(fr_run *r, fr_status s, float *dev, const float *dev_part, int64_t outer, int64_t N,
                            int64_t lo, int64_t n, int64_t D)
{
    float *h = s == FR_OK ? fr_malloc((size_t)(outer * N * D) * sizeof *h) : NULL;
    if (s == FR_OK && !h) s = FR_ERR_NOMEM;
    for (int64_t o = 0; s == FR_OK && n > 0 && o < outer; o++)
        s = fr_d2h(r->be, h + (o * N + lo) * D, dev_part + o * n * D, (size_t)(n * D) * sizeof *h);
    s = fr_dist_gather_rows(s, h, outer, N, (size_t)D * sizeof *h, r->o->c.group);
    if (s == FR_OK) s = fr_h2d(r->be, dev, h, (size_t)(outer * N * D) * sizeof *h);
    free(h);
    return s;
}

static fr_status rollout_split(fr_run *r, const fr_model *m, const fr_rollout_cfg *rc, int64_t N, const int *pid,
                               const uint32_t *sid, float *x, const fr_rollout_traj *tj)
{
    if (fr_dist_size() == 1) return fr_rollout(m, r->be, r->task, rc, N, pid, sid, NULL, x, tj);
    const int64_t D = m->cfg.D, T = rc->T;
    int64_t lo, hi;
    my_block(r, N, &lo, &hi);
    const int64_t n = hi - lo;
    fr_rollout_traj part = {NULL, NULL, NULL, tj ? tj->std : NULL, NULL};
    float *xp = fr_dev_floats(r->be, n * D);
    fr_status s = xp ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK && tj && tj->traj && !(part.traj = fr_dev_floats(r->be, (T + 1) * n * D))) s = FR_ERR_NOMEM;
    if (s == FR_OK && tj && tj->mean && !(part.mean = fr_dev_floats(r->be, T * n * D))) s = FR_ERR_NOMEM;
    if (s == FR_OK && tj && tj->logp && !(part.logp = fr_dev_floats(r->be, T * n))) s = FR_ERR_NOMEM;
    if (s == FR_OK && tj && tj->xi && !(part.xi = fr_dev_floats(r->be, T * n * D))) s = FR_ERR_NOMEM;
    const uint64_t rows0 = r->be->work.fwd_rows;
    if (s == FR_OK) s = fr_rollout(m, r->be, r->task, rc, n, pid + lo, sid + lo, NULL, xp, tj ? &part : NULL);
    /* the NFE metrics count every rank's rows, as one process would */
    int64_t rows = (int64_t)(r->be->work.fwd_rows - rows0);
    s = fr_dist_sum_i64(s, &rows);
    if (s == FR_OK) r->be->work.fwd_rows = rows0 + (uint64_t)rows;
    /* the samples are the trajectory's last state: gathered once */
    if (tj && tj->traj) {
        s = gather_out(r, s, tj->traj, part.traj, T + 1, N, lo, n, D);
        if (s == FR_OK) s = fr_d2d(r->be, x, tj->traj + T * N * D, (size_t)(N * D) * sizeof *x);
    } else {
        s = gather_out(r, s, x, xp, 1, N, lo, n, D);
    }
    if (tj && tj->mean) s = gather_out(r, s, tj->mean, part.mean, T, N, lo, n, D);
    if (tj && tj->logp) s = gather_out(r, s, tj->logp, part.logp, T, N, lo, n, 1);
    if (tj && tj->xi) s = gather_out(r, s, tj->xi, part.xi, T, N, lo, n, D);
    fr_dev_free(r->be, xp);
    fr_dev_free(r->be, part.traj);
    fr_dev_free(r->be, part.mean);
    fr_dev_free(r->be, part.logp);
    fr_dev_free(r->be, part.xi);
    return s;
}

fr_status fr_run_rollout(fr_run *r, const fr_model *m, const fr_rollout_cfg *rc, int64_t N, const int *pid,
                         const uint32_t *sid, float *x, const fr_rollout_traj *tj)
{
    const double t0 = fr_now_seconds();
    fr_status s = rollout_split(r, m, rc, N, pid, sid, x, tj);
    r->priv->split_seconds += fr_now_seconds() - t0;
    return s;
}

fr_status fr_run_reward_split(fr_run *r, int64_t N, const int *pid, const float *x, float *reward, int *correct)
{
    const double t0 = fr_now_seconds();
    const uint32_t e = (uint32_t)r->epoch;
    const int64_t D = r->pol.cfg.D;
    int64_t lo, hi;
    my_block(r, N, &lo, &hi);
    const int n = (int)(hi - lo);
    fr_status s = FR_OK;
    if (n > 0)
        s = r->rcmd ? fr_reward_cmd_score_task(r->rcmd, r->task, e, n, pid + lo, x + lo * D, reward + lo)
                    : fr_task_reward_batch(r->task, r->reward_id, n, pid + lo, x + lo * D, reward + lo, correct + lo);
    s = fr_dist_gather_rows(s, reward, 1, N, sizeof *reward, r->o->c.group);
    if (!r->rcmd) s = fr_dist_gather_rows(s, correct, 1, N, sizeof *correct, r->o->c.group);
    r->priv->split_seconds += fr_now_seconds() - t0;
    return s;
}

fr_status fr_run_dist_check(const fr_run *r)
{
    const int R = fr_dist_size();
    if (R > r->o->c.prompts)
        return fr_fail(FR_ERR_ARG, "train: %d ranks but %lld prompts per epoch: each rank rolls out whole groups, "
                       "run at most %lld ranks (or raise --prompts-per-epoch)", R, (long long)r->o->c.prompts,
                       (long long)r->o->c.prompts);
    return FR_OK;
}
