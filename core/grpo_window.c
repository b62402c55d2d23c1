/* Which sampler steps are stochastic and trained (docs/algorithms/samplers.md §10; docs/algorithms/flow-grpo.md §2
 * "timestep_fraction"). */
#include <stdint.h>

#include "flowrl/grpo.h"
#include "flowrl/philox.h"

fr_status fr_train_steps(int64_t T, double fraction, int64_t *t_train)
{
    if (!t_train) return fr_fail(FR_ERR_ARG, "fr_train_steps: NULL output");
    if (T < 1 || T > ((int64_t)1 << 40) || !(fraction >= 0.0 && fraction <= 1.0))
        return fr_fail(FR_ERR_ARG, "fr_train_steps: T %lld, timestep_fraction %g, expected T >= 1 and fraction in [0, 1]",
                       (long long)T, fraction);
    /* Python `int(num_steps * timestep_fraction)`: one double product, truncated */
    double p = (double)T * fraction;
    *t_train = (int64_t)p;
    return FR_OK;
}

fr_status fr_fast_window(uint32_t seed, uint32_t epoch, uint32_t call, uint32_t rank, int64_t T, int64_t r0,
                         int64_t r1, int64_t W, int64_t *start, int64_t *len)
{
    if (!start || !len) return fr_fail(FR_ERR_ARG, "fr_fast_window: NULL output");
    if (T < 2 || T > ((int64_t)1 << 30) || W < 0 || W >= T)
        return fr_fail(FR_ERR_ARG, "fr_fast_window: T %lld, window %lld, expected T >= 2, 0 <= W < T", (long long)T,
                       (long long)W);
    if (W == 0) {
        /* sde_window = (0, len(timesteps) − 1): the last step stays out */
        *start = 0;
        *len = T - 1;
        return FR_OK;
    }
    if (!(r0 >= 0 && r0 <= r1 - W && r1 <= T))
        return fr_fail(FR_ERR_ARG, "fr_fast_window: range (%lld, %lld) with window %lld and T %lld, expected 0 <= r0 <= r1 - W, r1 <= T",
                       (long long)r0, (long long)r1, (long long)W, (long long)T);
    uint64_t n = (uint64_t)(r1 - W - r0 + 1); /* randint(r0, r1 − W) is inclusive */
    /* rejection keeps every start equally likely: accept w < 2^32 − (2^32 mod n) */
    uint64_t limit = ((uint64_t)1 << 32) - (((uint64_t)1 << 32) % n);
    /* n <= 2^30, so a draw is rejected with probability < 1/4: 64 draws all rejected has
     * probability < 2^-128 */
    for (uint32_t idx = 0; idx < 64; idx++) {
        uint64_t wv = fr_rng_u32(seed, FR_RNG_WINDOW, epoch, call, rank, idx);
        if (wv < limit) {
            *start = r0 + (int64_t)(wv % n);
            *len = W;
            return FR_OK;
        }
    }
    return fr_fail(FR_ERR_NUMERIC, "fr_fast_window: no accepted draw");
}

fr_status fr_mix_window_init(fr_mix_window *w, int64_t T)
{
    if (!w) return fr_fail(FR_ERR_ARG, "fr_mix_window_init: NULL state");
    if (T < 3) return fr_fail(FR_ERR_ARG, "fr_mix_window_init: T %lld, expected >= 3", (long long)T);
    w->iters_per_group = 25;
    w->window = 4;
    w->max_timesteps = T - 2;
    w->step = 1;
    w->roll_back = 1;
    w->init = 0;
    w->cur = 0;
    w->iter_in_group = 0;
    return FR_OK;
}

void fr_mix_window_get(const fr_mix_window *w, int64_t *start, int64_t *len)
{
    /* range(cur, min(cur + group_size, max_timesteps)) */
    int64_t end = w->cur + w->window < w->max_timesteps ? w->cur + w->window : w->max_timesteps;
    *start = w->cur;
    *len = end > w->cur ? end - w->cur : 0;
}

void fr_mix_window_update(fr_mix_window *w)
{
    w->iter_in_group += 1;
    if (w->iter_in_group >= w->iters_per_group) {
        w->iter_in_group = 0;
        w->cur += w->step; /* prog_overlap: advance by prog_overlap_step */
    }
    if (w->cur > w->max_timesteps) {
        if (w->roll_back) {
            w->cur = w->init;
            w->iter_in_group = 0;
        } else {
            w->cur = w->max_timesteps;
        }
    }
}
