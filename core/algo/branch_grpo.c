/* BranchGRPO (docs/algorithms/flow-grpo.md §6; BRANCH fastvideo/train_branchgrpo_flux.py) on the
 * family engine (core/algo/traj_family.h): `flowrl train --algo branch-grpo`.
 *
 * Per epoch: each prompt's G samples are the leaves of one prefix tree (fr_rollout_branch,
 * docs/algorithms/samplers.md §11): one x_T per tree, at each split point every node branches
 * into `width` children whose noise at the split is ξ·split_noise_scale (the log-prob keeps the
 * nominal std); the shared prefix of a node is computed once. Tree advantages per depth
 * (fr_adv_tree, docs/algorithms/advantages.md §1.3). Every parent→child edge is one transition:
 * at step i the node owning step i's noise (the rows with owner(s, i) == s) carries
 * adv[d(i)][s], d(i) = #splits at steps <= i. Pruning as BRANCH: depth pruning drops the
 * transitions whose child step-depth i + 1 is listed (optionally a window sliding by
 * (epoch + 1) / interval), width pruning keeps part of the transitions after the last split
 * (mode 1 per leaf, mode 2 best and worst over the epoch's trees), both while
 * epoch + 1 <= int(epochs · pruning_step_ratio).
 *
 * The update (flowrl's batching, BRANCH steps the optimiser every grad_accum single
 * transitions): the P trees in shuffled order form num_batches batches; per grad_accum batches
 * one optimiser step over every (batch, step i) with the batch's trained rows at i, PPO-clip
 * scaled by b_i / (trees_in_batch · grad_accum · n_tpt), n_tpt = int(transitions / P) (BRANCH:
 * loss / (grad_accum · #transitions/#trees)).
 *
 * audit.log records of an epoch: prompts, noise.x_T, noise.xi (the unscaled ξ of each node's
 * owner: the rollout multiplies it by split_noise_scale at a split step), traj, mean, logp_old,
 * rewards, reward_mean, reward_std, adv_tree and node_reward ((n_split + 1, N)), trained (U8
 * (T, N): 1 where row s trains step i), order (I64 (P,): the trees), per optimiser step
 * u<k>.ratio ((rows,) in plan order: batch, step, row), u<k>.loss, u<k>.grad_norm,
 * u<k>.grad.<NAME>; then kl, clipfrac, approx_kl; then the loop's state records. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/branch_grpo.h"
#include "core/algo/traj_family.h"
#include "flowrl/advantage.h"

#define MAX_SPLIT 16
#define MAX_PRUNE 64

/* A width-pruning candidate: transition c = s·T + i and its advantage. */
typedef struct cand {
    float adv;
    int64_t c; /* s·T + i */
} cand;

typedef struct {
    fr_branch_opts o;
    fr_ppo_params prm;
    fr_tf tf;
    fr_rollout_branch br[MAX_SPLIT];
    int64_t n_split, L, P, width[MAX_SPLIT];
    int64_t prune[MAX_PRUNE], n_prune;
    float *adv_tab, *node_r, *lp; /* (n_split + 1, N), (n_split + 1, N), (n_split, N) */
    uint8_t *sel;                 /* (T, N) 1 where row s trains step i */
    int64_t *rows;                /* (N,) */
    cand *cand;                   /* (N·T,) */
} branch_state;

/* ---- the lists of the options ------------------------------------------------------------ */

/* "a,b,c" (spaces allowed) into out (cap,); one line naming the flag on a bad list. */
static fr_status parse_list(const char *s, const char *flag, int64_t *out, int64_t cap, int64_t *n)
{
    *n = 0;
    const char *p = s;
    while (*p == ' ') p++;
    if (!*p) return FR_OK;
    for (;;) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0)
            return fr_fail(FR_ERR_ARG, "train: branch-grpo: %s '%s': expected non-negative integers separated by ','",
                           flag, s);
        if (*n >= cap) return fr_fail(FR_ERR_ARG, "train: branch-grpo: %s '%s': more than %lld values", flag, s, (long long)cap);
        out[(*n)++] = v;
        while (*end == ' ') end++;
        if (!*end) return FR_OK;
        if (*end != ',')
            return fr_fail(FR_ERR_ARG, "train: branch-grpo: %s '%s': expected non-negative integers separated by ','",
                           flag, s);
        p = end + 1;
    }
}

/* The split points of o, checked against T: at least one, increasing, each < T. */
static fr_status split_points(const fr_branch_opts *o, int64_t T, int64_t *at, int64_t *n)
{
    FR_TRY(parse_list(o->split_points, "--tree-split-points", at, MAX_SPLIT, n));
    if (*n < 1) return fr_fail(FR_ERR_ARG, "train: branch-grpo: --tree-split-points '%s': at least one split", o->split_points);
    for (int64_t k = 0; k < *n; k++) {
        if (at[k] >= T)
            return fr_fail(FR_ERR_ARG, "train: branch-grpo: --tree-split-points '%s': split %lld is not a step of T = %lld",
                           o->split_points, (long long)at[k], (long long)T);
        if (k > 0 && at[k] <= at[k - 1])
            return fr_fail(FR_ERR_ARG, "train: branch-grpo: --tree-split-points '%s': not increasing", o->split_points);
    }
    return FR_OK;
}

static int64_t leaves(int64_t width, int64_t n_split)
{
    int64_t L = 1;
    for (int64_t k = 0; k < n_split && L <= (1 << 20); k++) L *= width;
    return L;
}

/* ---- setup ------------------------------------------------------------------------------- */

static void branch_free(void *p)
{
    branch_state *t = p;
    if (!t) return;
    fr_tf_free(&t->tf);
    free(t->adv_tab);
    free(t->node_r);
    free(t->lp);
    free(t->sel);
    free(t->rows);
    free(t->cand);
    free(t);
}

static fr_status branch_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    branch_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_branch_opts *)r->ao;
    t->prm = (fr_ppo_params){ro->c.clip_range, ro->c.adv_clip};
    FR_TRY(fr_tf_setup(r, &t->tf, 0, ro->smp.cfg != 1.0f, &fr_traj_ppo, &t->prm, FR_KL_CODE));
    fr_tf *f = &t->tf;
    f->rc.time_quantized = 1;
    int64_t at[MAX_SPLIT];
    FR_TRY(split_points(&t->o, f->T, at, &t->n_split));
    FR_TRY(parse_list(t->o.depth_pruning, "--depth-pruning", t->prune, MAX_PRUNE, &t->n_prune));
    for (int64_t k = 0; k < t->n_split; k++) {
        t->br[k] = (fr_rollout_branch){at[k], t->o.width, t->o.split_noise_scale};
        t->width[k] = t->o.width;
    }
    f->rc.branch = t->br;
    f->rc.n_branch = (int)t->n_split;
    t->L = f->G;
    t->P = ro->c.prompts;
    const int64_t N = f->N, T = f->T, S = t->n_split;
    if (!FR_ALLOC(t->adv_tab, (S + 1) * N) || !FR_ALLOC(t->node_r, (S + 1) * N) || !FR_ALLOC(t->lp, S * N) ||
        !FR_ALLOC(t->sel, T * N) || !FR_ALLOC(t->rows, N) || !FR_ALLOC(t->cand, N * T))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* d(i) = #splits at steps <= i: the depth whose node owns step i's noise. */
static int64_t depth_of(const branch_state *t, int64_t i)
{
    int64_t d = 0;
    while (d < t->n_split && t->br[d].at <= i) d++;
    return d;
}

/* ---- the trained transitions ------------------------------------------------------------- */

/* BRANCH's depth window: the listed step-depths, shifted down by (epoch + 1) / interval when
 * sliding, at most to the stop depth (default the last split point). */
static int depth_pruned(const branch_state *t, int64_t e, int64_t child_depth)
{
    if (t->n_prune == 0) return 0;
    int64_t shift = 0;
    if (t->o.depth_slide) {
        int64_t base0 = t->prune[0];
        for (int64_t k = 1; k < t->n_prune; k++)
            if (t->prune[k] < base0) base0 = t->prune[k];
        const int64_t stop = t->o.stop_depth >= 0 ? t->o.stop_depth : t->br[t->n_split - 1].at;
        const int64_t max_shift = base0 - stop > 0 ? base0 - stop : 0;
        shift = (e + 1) / t->o.slide_interval;
        if (shift > max_shift) shift = max_shift;
    }
    for (int64_t k = 0; k < t->n_prune; k++)
        if (t->prune[k] - shift == child_depth) return 1;
    return 0;
}

/* Mode 2's order: advantage descending, then BRANCH's collection order (tree, leaf, step). */
static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->adv != y->adv) return x->adv > y->adv ? -1 : 1;
    return (x->c > y->c) - (x->c < y->c);
}

/* Width pruning of the transitions after the last split (steps > last split point: one chain
 * per leaf, every transition of a chain carrying the leaf's advantage). Mode 1: per leaf, BRANCH
 * sorts its chain by advantage (all equal, a stable sort) and keeps the first
 * max(1, int(n·ratio)), i.e. its earliest remaining steps. Mode 2: over all the epoch's leaves,
 * keep the best max(2, int(n·ratio)) / 2 and the worst rest (a transition picked twice, when n
 * is 1, is trained once: BRANCH would train it twice). */
static fr_status width_prune(branch_state *t)
{
    fr_tf *f = &t->tf;
    const int64_t N = f->N, T = f->T, last = t->br[t->n_split - 1].at;
    const float *leaf_adv = t->adv_tab + t->n_split * N;
    if (t->o.width_mode == 1) {
        for (int64_t s = 0; s < N; s++) {
            int64_t n = 0;
            for (int64_t i = last + 1; i < T; i++) n += t->sel[i * N + s];
            int64_t keep = (int64_t)((double)n * t->o.width_ratio), k = 0;
            if (keep < 1) keep = 1;
            for (int64_t i = last + 1; i < T; i++)
                if (t->sel[i * N + s] && k++ >= keep) t->sel[i * N + s] = 0;
        }
        return FR_OK;
    }
    /* candidates in collection order */
    int64_t n = 0;
    for (int64_t s = 0; s < N; s++)
        for (int64_t i = last + 1; i < T; i++)
            if (t->sel[i * N + s]) t->cand[n++] = (cand){leaf_adv[s], s * T + i};
    if (n == 0) return FR_OK;
    qsort(t->cand, (size_t)n, sizeof *t->cand, cmp_cand);
    int64_t keep = (int64_t)((double)n * t->o.width_ratio);
    if (keep < 2) keep = 2;
    const int64_t best = keep / 2, worst = keep - best;
    for (int64_t c = 0; c < n; c++)
        if (!(c < best || c >= n - worst)) t->sel[(t->cand[c].c % T) * N + t->cand[c].c / T] = 0;
    return FR_OK;
}

/* sel: each node's transition at each step once (its noise owner's row), less the pruned. */
static fr_status select_transitions(fr_run *r, branch_state *t, int64_t *n_tr)
{
    fr_tf *f = &t->tf;
    const int64_t N = f->N, T = f->T, e = r->epoch;
    const int prune = (double)(e + 1) <= (double)(int64_t)((double)r->o->run.epochs * t->o.pruning_step_ratio);
    for (int64_t i = 0; i < T; i++)
        for (int64_t s = 0; s < N; s++)
            t->sel[i * N + s] = fr_rollout_noise_owner(&f->rc, f->sid[s], i) == f->sid[s] &&
                                !(prune && depth_pruned(t, e, i + 1));
    if (prune && t->o.width_mode) FR_TRY(width_prune(t));
    *n_tr = 0;
    for (int64_t k = 0; k < T * N; k++) *n_tr += t->sel[k];
    int64_t sh[2] = {T, N};
    fr_tensor st = fr_tensor_view(t->sel, FR_U8, 2, sh);
    return fr_run_rec_tensor(r, "trained", &st);
}

/* Per grad_accum batches of trees one optimiser step; per (batch, step i) the batch's trained
 * rows at i, with the advantages of depth d(i). */
static fr_status plan(const fr_run *r, branch_state *t, int64_t n_tr)
{
    fr_tf *f = &t->tf;
    const int64_t nb = r->o->c.num_batches, ga = r->o->c.grad_accum, tb = t->P / nb, N = f->N, L = t->L;
    const int64_t n_tpt = n_tr / t->P > 0 ? n_tr / t->P : 1;
    fr_tf_plan_reset(f);
    for (int64_t q0 = 0; q0 < nb; q0 += ga) {
        int64_t nr = 0;
        for (int64_t q = q0; q < q0 + ga; q++)
            for (int64_t k = 0; k < tb; k++)
                for (int64_t i = 0; i < f->T; i++)
                    for (int64_t l = 0; l < L; l++) nr += t->sel[i * N + f->order[q * tb + k] * L + l];
        if (nr == 0) continue;
        FR_TRY(fr_tf_plan_update(f, 1, nr, 1, 1));
        for (int64_t q = q0; q < q0 + ga; q++)
            for (int64_t i = 0; i < f->T; i++) {
                int64_t bi = 0;
                for (int64_t k = 0; k < tb; k++)
                    for (int64_t l = 0; l < L; l++) {
                        const int64_t s = f->order[q * tb + k] * L + l;
                        if (t->sel[i * N + s]) t->rows[bi++] = s;
                    }
                if (bi)
                    FR_TRY(fr_tf_plan_micro(f, i, t->rows, bi, (float)bi / (float)(tb * ga * n_tpt),
                                            t->adv_tab + depth_of(t, i) * N));
            }
    }
    return FR_OK;
}

static fr_status branch_epoch(fr_run *r, void *state)
{
    branch_state *t = state;
    fr_tf *f = &t->tf;
    const int64_t N = f->N, S = t->n_split;
    FR_TRY(fr_tf_rollout(r, f, NULL));
    for (int64_t k = 0; k < S; k++) memcpy(t->lp + k * N, f->logp_h + t->br[k].at * N, (size_t)N * sizeof *t->lp);
    FR_TRY(fr_adv_tree(N, f->reward, S, t->width, t->o.prob_weighted, t->o.prob_weighted ? t->lp : NULL,
                       FR_ADV_EPS_LOCAL, t->adv_tab, t->node_r));
    FR_TRY(fr_run_rec_f32(r, "adv_tree", t->adv_tab, 2, S + 1, N, 1));
    FR_TRY(fr_run_rec_f32(r, "node_reward", t->node_r, 2, S + 1, N, 1));
    int64_t n_tr, K;
    FR_TRY(select_transitions(r, t, &n_tr));
    FR_TRY(fr_run_shuffle(r, t->P, NULL, f->order, &K));
    fr_tensor ot = fr_tensor_view(f->order, FR_I64, 1, &K);
    FR_TRY(fr_run_rec_tensor(r, "order", &ot));
    fr_run_metric(r, "samples", (double)N);
    fr_run_metric(r, "transitions", (double)n_tr);
    FR_TRY(plan(r, t, n_tr));
    FR_TRY(fr_tf_run_plan(r, f));
    return fr_tf_finish(r, f);
}

static void branch_header(fr_run *r, void *state)
{
    branch_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s, %lld steps (%s grid, shift %g, quantised time), eta %g, cfg %g", fr_sampler_name(ro->smp.sampler),
                (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid), ro->smp.shift, (double)ro->smp.noise_level,
                (double)ro->smp.cfg);
    fr_run_info(r, "tree: splits at %s, width %lld (%lld leaves), split noise x%g, node rewards %s; depth pruning '%s'%s, "
                   "width pruning mode %d; clip %g, adv clip %g; %lld batches of trees, grad accum %lld",
                t->o.split_points, (long long)t->o.width, (long long)t->L, (double)t->o.split_noise_scale,
                t->o.prob_weighted ? "softmax(log p)-weighted" : "leaf means", t->o.depth_pruning,
                t->o.depth_slide ? " (sliding)" : "", t->o.width_mode, ro->c.clip_range, (double)ro->c.adv_clip,
                (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
}

/* ---- options ------------------------------------------------------------------------------ */

#define O fr_branch_opts
static const fr_opt k_rows[] = {
    FR_OPT_STR(O, split_points, "tree_split_points", "0,3,6,9", "steps where every node branches (increasing, < T)", 0),
    FR_OPT_I64(O, width, "branch_width", "2", 2, 64, "children per node at a split (BRANCH: 2)", 0),
    FR_OPT_F32(O, split_noise_scale, "tree_split_noise_scale", "4", 0, 1e6,
               "the children's noise at a split is xi times this (the log-prob keeps the nominal std)", 0),
    FR_OPT_BOOL(O, prob_weighted, "tree_prob_weighted", "false",
                "internal node rewards weighted by softmax(child log p) instead of the leaf mean", 0),
    FR_OPT_STR(O, depth_pruning, "depth_pruning", "",
               "step-depths (child step + 1, 1..T) whose transitions are not trained, e.g. 15,16,17,18", 0),
    FR_OPT_BOOL(O, depth_slide, "depth_pruning_slide", "false",
                "slide the depth-pruning window down by (epoch + 1) / interval", 0),
    FR_OPT_I64(O, slide_interval, "depth_pruning_slide_interval", "1", 1, 1 << 20, "epochs per slide of the window", 0),
    FR_OPT_I64(O, stop_depth, "depth_pruning_stop_depth", "-1", -1, 1 << 20,
               "the window's shallowest depth stops here; -1 = the last split point", 0),
    FR_OPT_INT(O, width_mode, "width_pruning_mode", "0", 0, 2,
               "transitions after the last split: 0 all, 1 the best ratio per leaf, 2 best and worst over the epoch", 0),
    FR_OPT_F64(O, width_ratio, "width_pruning_ratio", "0.5", 0, 1, "the share width pruning keeps", 0),
    FR_OPT_F64(O, pruning_step_ratio, "pruning_step_ratio", "1", 0, 1,
               "prune while epoch <= int(epochs x this)", 0),
};
#undef O

/* BRANCH's finetune_flux_branchgrpo_8gpus.sh on a CPU: dance step η 0.3, T 20 on s(linspace)
 * with shift 3 and the quantised time input, splits 0,3,6,9 of width 2 (16 leaves = the group),
 * split noise ×4, clip 1e-3, adv clip 5, no KL; the run's batches of trees. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_fastvideo(ro, FR_SAMPLER_DANCE, 20, 0.3f, 1e-3);
    ro->c.group = 16;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const fr_branch_opts *o = ao;
    static const fr_sampler_kind kinds[] = {FR_SAMPLER_DANCE, FR_SAMPLER_SDE};
    FR_TRY(fr_tf_check_common(ro, "branch-grpo", kinds, 2, 2, FR_TF_NO_KL));
#define BAD(...) return fr_fail(FR_ERR_ARG, "train: branch-grpo: " __VA_ARGS__)
    int64_t at[MAX_SPLIT], n, dp[MAX_PRUNE], n_dp;
    FR_TRY(split_points(o, ro->smp.num_steps, at, &n));
    const int64_t L = leaves(o->width, n);
    if (ro->c.group != L)
        BAD("--group-size %lld: the tree has %lld leaves (%lld splits of width %lld): set --group-size %lld",
            (long long)ro->c.group, (long long)L, (long long)n, (long long)o->width, (long long)L);
    if (ro->c.prompts % ro->c.num_batches != 0)
        BAD("--prompts-per-epoch %lld: not a multiple of --num-batches %lld (batches of whole trees)",
            (long long)ro->c.prompts, (long long)ro->c.num_batches);
    if (!(o->split_noise_scale > 0.0f)) BAD("--tree-split-noise-scale %g: expected > 0", (double)o->split_noise_scale);
    FR_TRY(parse_list(o->depth_pruning, "--depth-pruning", dp, MAX_PRUNE, &n_dp));
    for (int64_t k = 0; k < n_dp; k++)
        if (dp[k] < 1 || dp[k] > ro->smp.num_steps)
            BAD("--depth-pruning '%s': depth %lld is not a child step-depth 1..T = %lld", o->depth_pruning,
                (long long)dp[k], (long long)ro->smp.num_steps);
    if (o->width_mode && !(o->width_ratio > 0.0)) BAD("--width-pruning-ratio %g: expected 0 < r <= 1", o->width_ratio);
    return FR_OK;
#undef BAD
}

/* A tree of 64 leaves (splits at 0 and 2 of T 4, width 8), 2 prompts in 2 batches of one tree:
 * the generic registry tests (tests/test_algos.c) run G 64, and G must equal the leaves. */
static void tiny(fr_run_opts *ro, void *ao)
{
    fr_branch_opts *o = ao;
    snprintf(o->split_points, sizeof o->split_points, "0,2");
    o->width = 8;
    ro->smp.num_steps = 4;
    ro->c.prompts = 2;
    ro->c.group = 64;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 1;
    ro->c.clip_range = 0.2;
    ro->opt.lr = 3e-3;
}

static const char *const k_progress[] = {"clipfrac", "ratio_min", "ratio_max", "transitions", NULL};

const fr_algo fr_algo_branch_grpo = {
    .name = "branch-grpo",
    .summary = "BranchGRPO: prefix-tree rollouts (shared prefixes computed once), depth-wise tree advantages, pruning",
    .doc = "docs/algorithms/flow-grpo.md",
    .help = "BranchGRPO fine-tuning: per epoch each prompt's G samples are the leaves of one tree (splits at\n"
            "--tree-split-points, --branch-width children, split noise x--tree-split-noise-scale), rolled out with\n"
            "the constant-eta flux step on s(linspace) (quantised time); tree advantages per depth; PPO-clip on\n"
            "every parent->child transition once, less depth/width pruning; batches of whole trees; no KL.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_branch_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = fr_tf_needs_ref_beta,
    .setup = branch_setup,
    .header = branch_header,
    .epoch = branch_epoch,
    .progress_keys = k_progress,
    .free = branch_free,
    .tiny = tiny,
};
