/* D3PO (docs/algorithms/d3po.md; spec objectives.md §17) on the family engine
 * (core/algo/traj_family.h): `flowrl train --algo d3po`.
 *
 * Per epoch e: P prompts, G samples each (G = 2 in the public code; an even G gives G/2 pairs
 * per prompt), rows 2i, 2i+1 a pair from ONE shared x_T (the rollout's x_T_key group of 2:
 * drawn at the pair's first sample id), the DDIM step with η =
 * --noise-level (1), every step stochastic, independent step noises; the preference of a pair
 * by the reward (D3PO's compare with one reward: the greater wins, h = (+1, −1) or (−1, +1);
 * a tie h = (0, 0): its rows stay in the batch as in the public code, with the term log 2 and
 * no gradient). The pairs in shuffled order form num_batches batches; per pair a random
 * permutation of the T steps, of which the first int(timestep_fraction·T) are trained (both
 * rows of a pair at the same steps: D3PO permutes the pair's two latents alike); per
 * grad_accum batches one optimiser step over every (batch, step j) with the batch's pairs that
 * train j, the pair objective (fr_traj_pair_pref: clamped ratios to the frozen reference, β, ε
 * = --clip-range) per (pair, step) scaled by 1/(b·grad_accum·n_train) (D3PO's accelerate
 * accumulation over grad_accum·n_train of its mean over the batch's pairs). D3PO accumulates the
 * steps in permutation order; flowrl in step order (the sum of the same terms, as DDPO).
 *
 * audit.log records of an epoch: prompts, noise.x_T, noise.xi, traj, mean, logp_old, rewards,
 * reward_mean, reward_std, pref (N,), order (I64 (P,), the pairs), steps (I64 (P, n_train)),
 * per optimiser step u<k>.ratio ((rows,) in plan order: batch, step, row; exp(logp_θ −
 * logp_ref), unclamped), u<k>.loss, u<k>.grad_norm, u<k>.grad.<NAME>; then kl, clipfrac,
 * approx_kl (of logp_θ − logp_ref). */
#include <stdlib.h>
#include <string.h>

#include "core/algo/traj_family.h"
#include "flowrl/philox.h"

typedef struct {
    double beta_pref;
} fr_d3po_opts;

typedef struct {
    fr_d3po_opts o;
    fr_traj_pair_params prm;
    fr_tf tf;
    int64_t P, n_train; /* P: pairs per epoch (N/2) */
    int64_t *order; /* (P,) the pairs, shuffled */
} d3po_state;

static void d3po_free(void *p)
{
    d3po_state *t = p;
    if (!t) return;
    fr_tf_free(&t->tf);
    free(t->order);
    free(t);
}

static fr_status d3po_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    d3po_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_d3po_opts *)r->ao;
    FR_TRY(fr_tf_setup(r, &t->tf, 0, ro->smp.cfg != 1.0f, &fr_traj_pair_pref, &t->prm, FR_KL_CODE));
    fr_tf *f = &t->tf;
    /* the pair's shared x_T (D3PO samples image 2 from image 1's latents[:, 0]) */
    f->rc.x_T_key = FR_XT_GROUP;
    f->rc.group_size = 2;
    /* h lives in the family's advantage array: the objective reads it by rollout row */
    t->prm = (fr_traj_pair_params){(float)t->o.beta_pref, ro->c.clip_range, f->adv};
    t->P = f->N / 2;
    FR_TRY(fr_train_steps(f->T, ro->c.timestep_fraction, &t->n_train));
    return FR_ALLOC(t->order, t->P) ? FR_OK : FR_ERR_NOMEM;
}

/* D3PO's compare() with one reward: (+1, −1) if row 2i's reward is greater, (−1, +1) if row
 * 2i+1's, (0, 0) on a tie; records "pref", metrics pairs and ties. */
static fr_status preferences(fr_run *r, d3po_state *t)
{
    fr_tf *f = &t->tf;
    int64_t ties = 0;
    for (int64_t i = 0; i < t->P; i++) {
        const float a = f->reward[2 * i], b = f->reward[2 * i + 1];
        const float h0 = a > b ? 1.0f : a < b ? -1.0f : 0.0f;
        f->adv[2 * i] = h0;
        f->adv[2 * i + 1] = -h0 + 0.0f; /* +0.0f: a tie is (0, 0), not (0, −0) */
        ties += h0 == 0.0f;
    }
    fr_run_metric(r, "pairs", (double)(t->P - ties));
    fr_run_metric(r, "ties", (double)ties);
    return fr_run_rec_f32(r, "pref", f->adv, 1, f->N, 1, 1);
}

static fr_status d3po_epoch(fr_run *r, void *state)
{
    d3po_state *t = state;
    fr_tf *f = &t->tf;
    FR_TRY(fr_tf_rollout(r, f, NULL));
    FR_TRY(preferences(r, t));
    int64_t K;
    FR_TRY(fr_run_shuffle(r, t->P, NULL, t->order, &K));
    fr_tensor ot = fr_tensor_view(t->order, FR_I64, 1, &K);
    FR_TRY(fr_run_rec_tensor(r, "order", &ot));
    fr_run_metric(r, "samples", (double)f->N);
    /* each pair's trained steps (c1 = the pair); the shuffled pairs, rows 2p and 2p + 1, each
     * pair's term scaled by 1/(bp·ga·n_train) */
    FR_TRY(fr_tf_select_steps(r, f, t->P, NULL, f->T, t->n_train));
    FR_TRY(fr_tf_plan_selected(r, f, t->P, 2, t->order, t->n_train));
    FR_TRY(fr_tf_run_plan(r, f));
    return fr_tf_finish(r, f);
}

static void d3po_header(fr_run *r, void *state)
{
    d3po_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s, %lld steps, eta %g, cfg %g%s; pairs from one x_T", fr_sampler_name(ro->smp.sampler),
                (long long)ro->smp.num_steps, (double)ro->smp.noise_level, (double)ro->smp.cfg,
                ro->smp.cfg != 1.0f ? " (also in training)" : "");
    fr_run_info(r, "%lld pairs per epoch, %lld of %lld steps trained per pair (random), beta %g, ratio clamp 1 +- %g "
                   "to the frozen base; %lld batches, grad accum %lld",
                (long long)t->P, (long long)t->n_train, (long long)ro->smp.num_steps, t->o.beta_pref,
                ro->c.clip_range, (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
}

/* ---- options ------------------------------------------------------------------------------ */

#define O fr_d3po_opts
static const fr_opt k_rows[] = {
    FR_OPT_F64(O, beta_pref, "beta_pref", "0.1", 1e-6, 1e6,
               "beta of the per-step preference loss -log sigmoid(beta * sum h * log r) (D3PO train.beta)", 0),
};
#undef O

/* D3PO's config/base.py on a CPU: ddim η 1.0, T 10 (public 20), every step trained
 * (timestep_fraction 1.0), ε 0.1 (--clip-range), β 0.1, 2 samples per prompt, no KL; 32 pairs
 * per epoch in 8 batches of 4 (public: 20 pairs, batches of 1); lr 1e-3 (public 3e-5 is for
 * LoRA on SD; docs/algorithms/d3po.md §4). */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_ddim(ro);
    ro->c.clip_range = 0.1;
    ro->c.timestep_fraction = 1.0;
    ro->c.prompts = 32;
    ro->c.group = 2;
    ro->c.num_batches = 8;
    ro->c.grad_accum = 1;
    ro->opt.lr = 1e-3f;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    (void)ao;
    static const fr_sampler_kind kinds[] = {FR_SAMPLER_DDIM};
    FR_TRY(fr_tf_check_common(ro, "d3po", kinds, 1, 1, FR_TF_NO_KL));
    if (ro->c.group < 2 || ro->c.group % 2 != 0)
        return fr_fail(FR_ERR_ARG, "train: d3po: --group-size %lld: D3PO samples pairs (an even count per prompt, "
                                   "2 in the public code)", (long long)ro->c.group);
    const int64_t pairs = ro->c.prompts * (ro->c.group / 2);
    if (pairs % ro->c.num_batches != 0)
        return fr_fail(FR_ERR_ARG, "train: d3po: --num-batches %lld must divide the %lld pairs (prompts x group / 2)",
                       (long long)ro->c.num_batches, (long long)pairs);
    int64_t n;
    FR_TRY(fr_train_steps(ro->smp.num_steps, ro->c.timestep_fraction, &n));
    if (n < 1)
        return fr_fail(FR_ERR_ARG, "train: d3po: --timestep-fraction %g trains no step of %lld", ro->c.timestep_fraction,
                       (long long)ro->smp.num_steps);
    return FR_OK;
}

static int needs_ref(const fr_run_opts *ro, const void *ao)
{
    (void)ro;
    (void)ao;
    return 1; /* the frozen reference of the ratios */
}

static void tiny(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_tiny(ro);
    ro->c.prompts = 4;
    ro->c.group = 2;
    ro->c.timestep_fraction = 0.75; /* 3 of 4 steps */
    ro->c.clip_range = 0.1;
}

static const char *const k_progress[] = {"pairs", "clipfrac", "ratio_min", "ratio_max", NULL};

const fr_algo fr_algo_d3po = {
    .name = "d3po",
    .summary = "D3PO: per-step DPO on reward-ranked pairs from a shared x_T, clamped ratios to the frozen base",
    .doc = "docs/algorithms/d3po.md",
    .help = "D3PO fine-tuning of an epsilon-prediction base (flowrl pretrain --pred epsilon): per epoch, P prompts\n"
            "x G samples in pairs (G = 2 by default), each pair from one shared x_T, the DDIM step with eta =\n"
            "--noise-level; a pair's preference by the reward (greater wins; a tie trains nothing); then on a random\n"
            "int(fraction*T) of each pair's steps -log sigmoid(beta_pref * (h0 log r0 + h1 log r1)),\n"
            "r = clamp(p_theta / p_ref, 1 +- --clip-range) against the frozen base; no KL.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_d3po_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = needs_ref,
    .setup = d3po_setup,
    .header = d3po_header,
    .epoch = d3po_epoch,
    .progress_keys = k_progress,
    .free = d3po_free,
    .tiny = tiny,
    .base_pred = FR_PRED_EPSILON,
};
