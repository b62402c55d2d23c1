/* Golden cases of the advantage estimators (flowrl/advantage.h, docs/algorithms/advantages.md §1.1-§1.4)
 * and Flow-GRPO's zero-advantage filter: core/ code shared by every backend. */
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

/* ---- local groups and trees (§1.2, §1.3) -------------------------------------------------- */

enum { LG = 12, LB = 24, TSPLIT = 4, TL = 16, TB = 32 };

/* Rewards on a 1/8 grid in groups of 12 (DanceGRPO's num_generations); group 1 of each row
 * equal (A = 0). c->arg rows: 1 (one reward), 2 (G²RPO's two granularities). */
static fr_status local_in(const fr_golden_case *c, fr_golden_in *g)
{
    float *r;
    FR_TRY(fr_gi_uniform(g, "rewards", 2, (int64_t[]){c->arg, LB}, 0.0f, 1.0f, &r));
    for (int i = 0; i < c->arg * LB; i++) r[i] = (i % LB) / LG == 1 ? 0.625f : (float)(int)(r[i] * 8.0f) / 8.0f;
    FR_TRY(fr_st_set_meta(g->f, "derived.in.rewards",
                          "the drawn u rounded down to a multiple of 1/8 ((float)(int)(u*8)/8); "
                          "samples 12..23 of each row then set to 0.625"));
    FR_TRY(fr_gi_param(g, "group_size", LG));
    return fr_gi_scalar(g, "eps", FR_ADV_EPS_LOCAL);
}

static fr_status local_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                           fr_st_file *out)
{
    (void)d;
    int64_t s[2];
    const float *r;
    float eps, *adv;
    long long G;
    FR_TRY(fr_go_f32(in, "rewards", 2, s, &r));
    FR_TRY(fr_go_param(in, "group_size", 1, 1 << 20, &G));
    FR_TRY(fr_go_scalar(in, "eps", &eps));
    FR_TRY(fr_go_out_f32(out, "adv", 1, &s[1], &adv));
    if (c->arg == 1) return fr_adv_local_group(s[1], r, G, eps, adv);
    return fr_adv_local_group_sum(s[0], s[1], r, G, eps, adv);
}

/* BranchGRPO's trees: splits of width 2 at four steps (16 leaves), two trees; c->arg = 1:
 * softmax(edge log-prob)-weighted node rewards, one log-prob per node. */
static fr_status tree_in(const fr_golden_case *c, fr_golden_in *g)
{
    float *r;
    static const int64_t width[TSPLIT] = {2, 2, 2, 2};
    FR_TRY(fr_gi_uniform(g, "rewards", 1, (int64_t[]){TB}, 0.0f, 1.0f, &r));
    for (int i = 0; i < TB; i++) r[i] = (float)(int)(r[i] * 8.0f) / 8.0f;
    FR_TRY(fr_st_set_meta(g->f, "derived.in.rewards", "the drawn u rounded down to a multiple of 1/8 ((float)(int)(u*8)/8)"));
    FR_TRY(fr_gi_tensor(g, "width", FR_I64, 1, (int64_t[]){TSPLIT}, width, "BranchGRPO's 2-way splits (at steps 0, 3, 6, 9)"));
    FR_TRY(fr_gi_param(g, "prob_weighted", c->arg));
    if (c->arg) {
        float *lp;
        FR_TRY(fr_gi_normal(g, "logp", 2, (int64_t[]){TSPLIT, TB}, 0.5f, &lp));
        for (int k = 0; k < TSPLIT; k++) {
            int span = TL >> (k + 1); /* leaves of a depth-(k+1) node */
            for (int s = TB - 1; s >= 0; s--) lp[k * TB + s] = lp[k * TB + s - s % span]; /* first leaf last */
            for (int s = 0; s < TB; s++) lp[k * TB + s] -= 1.0f;
        }
        FR_TRY(fr_st_set_meta(g->f, "derived.in.logp",
                              "row k: every leaf s takes the draw at the first leaf of its depth-(k+1) node "
                              "(s - s mod (16 >> (k+1))), minus 1"));
    }
    return fr_gi_scalar(g, "eps", FR_ADV_EPS_LOCAL);
}

static fr_status tree_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                          fr_st_file *out)
{
    (void)c;
    (void)d;
    int64_t B, ns;
    const float *r, *lp = NULL;
    const int64_t *width;
    float eps, *adv, *R;
    long long prob;
    FR_TRY(fr_go_f32(in, "rewards", 1, &B, &r));
    FR_TRY(fr_go_exact(in, "width", FR_I64, 1, (int64_t[]){TSPLIT}, (const void **)&width));
    ns = TSPLIT;
    FR_TRY(fr_go_param(in, "prob_weighted", 0, 1, &prob));
    if (prob) FR_TRY(fr_go_exact(in, "logp", FR_F32, 2, (int64_t[]){ns, B}, (const void **)&lp));
    FR_TRY(fr_go_scalar(in, "eps", &eps));
    FR_TRY(fr_go_out_f32(out, "adv", 2, (int64_t[]){ns + 1, B}, &adv));
    FR_TRY(fr_go_out_f32(out, "node_reward", 2, (int64_t[]){ns + 1, B}, &R));
    return fr_adv_tree(B, r, ns, width, (int)prob, lp, eps, adv, R);
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
    {"adv.local_group", "DanceGRPO local groups of 12, unbiased std, eps 1e-8 (§1.2)", FR_GOLDEN_SHARED, 1,
     T_SHARED, local_in, local_run},
    {"adv.local_group_sum", "G2RPO sum over two granularities of local-group advantages (§1.2)",
     FR_GOLDEN_SHARED, 2, T_SHARED, local_in, local_run},
    {"adv.tree", "BranchGRPO tree advantage, 2 trees of 16 leaves, leaf-mean node rewards (§1.3)",
     FR_GOLDEN_SHARED, 0, T_SHARED, tree_in, tree_run},
    {"adv.tree_prob", "BranchGRPO tree advantage, softmax(edge log-prob) node rewards (§1.3)",
     FR_GOLDEN_SHARED, 1, T_SHARED, tree_in, tree_run},
};
const size_t fr_golden_n_advantages =
    sizeof fr_golden_cases_advantages / sizeof fr_golden_cases_advantages[0];
