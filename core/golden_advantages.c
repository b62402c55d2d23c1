/* Golden cases of the advantage estimators (flowrl/advantage.h, docs/algorithms/advantages.md §1.1,
 * §1.4) and Flow-GRPO's zero-advantage filter: core/ code shared by every backend. */
#include <stdio.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/advantage.h"
#include "flowrl/philox.h"

enum { AB = 12, AGROUPS = 4 };
enum { ADV_PROMPT_GLOBAL = 0, ADV_PROMPT_GROUP, ADV_BATCH };

/* Rewards on a 1/8 grid (ties, as real reward models give) in 4 interleaved groups, group 3
 * constant (Flow-GRPO's "identical rewards -> A = 0" rule). */
static fr_status rewards_in(const fr_golden_case *c, fr_golden_in *g)
{
    float *r;
    int64_t group[AB];
    FR_TRY(fr_gi_uniform(g, "rewards", 1, (int64_t[]){AB}, 0.0f, 1.0f, &r));
    for (int i = 0; i < AB; i++) {
        r[i] = (float)(int)(r[i] * 8.0f) / 8.0f;
        if (i % AGROUPS == 3) r[i] = 0.625f;
        group[i] = i % AGROUPS;
    }
    FR_TRY(fr_st_set_meta(g->f, "derived.in.rewards",
                          "the drawn u rounded down to a multiple of 1/8 ((float)(int)(u*8)/8); "
                          "samples of group 3 then set to 0.625"));
    FR_TRY(fr_gi_scalar(g, "eps", c->arg == ADV_BATCH ? FR_ADV_EPS_DDPO_UNTRACKED : FR_ADV_EPS_FLOW_GRPO));
    if (c->arg != ADV_BATCH) {
        FR_TRY(fr_gi_tensor(g, "group", FR_I64, 1, (int64_t[]){AB}, group, "sample i is in group i mod 4"));
        FR_TRY(fr_gi_param(g, "global_std", c->arg == ADV_PROMPT_GLOBAL));
    }
    return FR_OK;
}

static fr_status rewards_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                             fr_st_file *out)
{
    (void)d;
    int64_t n;
    const float *r;
    const int64_t *group;
    float eps, *adv;
    FR_TRY(fr_go_f32(in, "rewards", 1, &n, &r));
    FR_TRY(fr_go_scalar(in, "eps", &eps));
    FR_TRY(fr_go_out_f32(out, "adv", 1, &n, &adv));
    if (c->arg == ADV_BATCH) return fr_adv_batch(n, r, eps, adv);
    long long gs;
    FR_TRY(fr_go_param(in, "global_std", 0, 1, &gs));
    FR_TRY(fr_go_exact(in, "group", FR_I64, 1, &n, (const void **)&group));
    return fr_adv_per_prompt(n, r, group, (int)gs, eps, adv);
}

/* ---- DDPO's buffered tracker: three updates, history persisting ------------------------- */

enum { DU = 3, DB = 8, DGROUPS = 4, DBUF = 4, DMIN = 3 };

static fr_status ddpo_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    int64_t group[DU * DB];
    for (int u = 0; u < DU; u++)
        for (int i = 0; i < DB; i++) group[u * DB + i] = u < 2 ? (i + u) % 3 : i % DGROUPS;
    FR_TRY(fr_gi_param(g, "buffer_size", DBUF));
    FR_TRY(fr_gi_param(g, "min_count", DMIN));
    FR_TRY(fr_gi_scalar(g, "eps", FR_ADV_EPS_DDPO));
    FR_TRY(fr_gi_uniform(g, "rewards", 2, (int64_t[]){DU, DB}, -1.0f, 1.0f, NULL));
    /* group 3 first appears in update 2 with 2 < min_count rewards: batch statistics */
    return fr_gi_tensor(g, "group", FR_I64, 2, (int64_t[]){DU, DB}, group,
                        "update u < 2: (i + u) mod 3; update 2: i mod 4");
}

static fr_status ddpo_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                          fr_st_file *out)
{
    (void)c;
    (void)d;
    long long buf, minc;
    int64_t s[2];
    float eps, *adv, *hist;
    const float *r;
    const int64_t *group;
    int64_t *hlen;
    FR_TRY(fr_go_param(in, "buffer_size", 1, 1 << 20, &buf));
    FR_TRY(fr_go_param(in, "min_count", 0, 1 << 20, &minc));
    FR_TRY(fr_go_scalar(in, "eps", &eps));
    FR_TRY(fr_go_f32(in, "rewards", 2, s, &r));
    FR_TRY(fr_go_exact(in, "group", FR_I64, 2, s, (const void **)&group));
    for (int64_t i = 0; i < s[0] * s[1]; i++)
        if (group[i] < 0 || group[i] >= DGROUPS)
            return fr_fail(FR_ERR_FORMAT, "golden ddpo: in.group[%lld] outside [0, %d)", (long long)i, DGROUPS);
    FR_TRY(fr_go_out_f32(out, "adv", 2, s, &adv));
    FR_TRY(fr_go_out_f32(out, "history", 2, (int64_t[]){DGROUPS, buf}, &hist));
    FR_TRY(fr_go_out(out, "history_len", FR_I64, 1, (int64_t[]){DGROUPS}, (void **)&hlen));
    fr_ddpo_tracker *t;
    FR_TRY(fr_ddpo_tracker_new(buf, minc, eps, &t));
    fr_status st = FR_OK;
    for (int64_t u = 0; u < s[0] && st == FR_OK; u++)
        st = fr_ddpo_tracker_update(t, s[1], r + u * s[1], group + u * s[1], adv + u * s[1]);
    for (int64_t k = 0; k < DGROUPS && st == FR_OK; k++)
        st = fr_ddpo_tracker_history(t, k, hist + k * buf, buf, &hlen[k]);
    fr_ddpo_tracker_free(t);
    return st;
}

/* ---- zero-advantage filter -------------------------------------------------------------------- */

static fr_status filter_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    float *a;
    FR_TRY(fr_gi_normal(g, "adv", 1, (int64_t[]){AB}, 1.0f, &a));
    static const int zeros[] = {2, 3, 5, 7, 8, 11};
    for (size_t k = 0; k < sizeof zeros / sizeof zeros[0]; k++) a[zeros[k]] = 0.0f;
    FR_TRY(fr_st_set_meta(g->f, "derived.in.adv", "drawn, then elements 2, 3, 5, 7, 8, 11 set to 0"));
    FR_TRY(fr_gi_param(g, "num_batches", 4));
    FR_TRY(fr_gi_param(g, "seed", FR_GOLDEN_SEED));
    FR_TRY(fr_gi_param(g, "purpose", FR_RNG_ADV_FILTER));
    FR_TRY(fr_gi_param(g, "c0", 3));
    return fr_gi_param(g, "c1", 0);
}

static fr_status filter_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                            fr_st_file *out)
{
    (void)c;
    (void)d;
    long long nb, seed, purpose, c0, c1;
    int64_t n, *kept;
    const float *a;
    uint8_t *keep;
    FR_TRY(fr_go_param(in, "num_batches", 1, 1 << 20, &nb));
    FR_TRY(fr_go_param(in, "seed", 0, 0xFFFFFFFFLL, &seed));
    FR_TRY(fr_go_param(in, "purpose", 0, 0xFFFFFFFFLL, &purpose));
    FR_TRY(fr_go_param(in, "c0", 0, 0xFFFFFFFFLL, &c0));
    FR_TRY(fr_go_param(in, "c1", 0, 0xFFFFFFFFLL, &c1));
    FR_TRY(fr_go_f32(in, "adv", 1, &n, &a));
    FR_TRY(fr_go_out(out, "keep", FR_U8, 1, &n, (void **)&keep));
    FR_TRY(fr_go_out(out, "kept", FR_I64, 0, NULL, (void **)&kept));
    return fr_adv_filter_zero(n, a, nb, (uint32_t)seed, (uint32_t)purpose, (uint32_t)c0,
                              (uint32_t)c1, keep, kept);
}

/* Shared code: every mode and backend runs the same functions, so --fast stays bitwise. */
#define T_SHARED {0.0f, 0.0f}

const fr_golden_case fr_golden_cases_advantages[] = {
    {"adv.per_prompt_global_std", "Flow-GRPO tracker, per-group mean, std of all 12 rewards (§1.1)",
     FR_GOLDEN_SHARED, ADV_PROMPT_GLOBAL, T_SHARED, rewards_in, rewards_run},
    {"adv.per_prompt_group_std", "Flow-GRPO tracker, per-group mean and std (§1.1)",
     FR_GOLDEN_SHARED, ADV_PROMPT_GROUP, T_SHARED, rewards_in, rewards_run},
    {"adv.batch", "untracked batch advantages, eps 1e-8 (§1.1 item 4, §1.4)", FR_GOLDEN_SHARED,
     ADV_BATCH, T_SHARED, rewards_in, rewards_run},
    {"adv.ddpo_tracker", "DDPO deque tracker: 3 updates of 8, buffer 4, min_count 3 (§1.4)",
     FR_GOLDEN_SHARED, 0, T_SHARED, ddpo_in, ddpo_run},
    {"adv.filter_zero", "Flow-GRPO zero-advantage filter, re-enabling to a multiple of 4 (§1.1 item 6)",
     FR_GOLDEN_SHARED, 0, T_SHARED, filter_in, filter_run},
};
const size_t fr_golden_n_advantages =
    sizeof fr_golden_cases_advantages / sizeof fr_golden_cases_advantages[0];
