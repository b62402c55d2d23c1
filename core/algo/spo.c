/* SPO, step-aware preference optimization (docs/algorithms/spo.md; spec objectives.md §18;
 * RockeyCoss/SPO spo_training_and_inference/): `flowrl train --algo spo`, on the family engine
 * (core/algo/traj_family.h) with the pair objective of D3PO (fr_traj_pair_pref).
 *
 * Per epoch e: P prompts × G chains, each a DDIM chain (η = --noise-level) of the epsilon
 * policy; from step --divert-step on, K = --candidates candidates per step from the shared x_t,
 * scored by the run's reward of their x̂0, the best / worst pair kept by the margin rule
 * (--margin-threshold), the chain continuing from a random candidate (fr_spo_rollout,
 * flowrl/spo.h). The kept pairs, shuffled, form batches of --pair-batch pairs, one optimiser
 * step each (SPO's train_batch_size, no accumulation); a batch's pairs are trained step by step
 * (a micro-step per step j with its pairs, rows 2c (winner, h = +1) and 2c + 1 (loser, h = −1)),
 * each term scaled by 1/(pairs in the batch): the batch loss is the mean over its pairs of
 * −log σ(β·(log r_w − log r_l)), r = clamp(exp(logp_θ − logp_ref), 1 ± ε) against the frozen
 * base (docs/algorithms/spo.md §2).
 *
 * audit.log records of an epoch: prompts, traj (T+1, 2C, D), x_next (T, 2C, D), mean (T, 2C,
 * D), logp_old (T, 2C), spo.score (T, C, K), spo.pick (I64 (T, C, 3): best, worst, next),
 * spo.kept (U8 (T, C)), rewards (of the chains' final samples, traj[T]), reward_mean, reward_std, pairs
 * (I64 (n, 2): step, chain of the kept pairs in training order), per optimiser step u<k>.ratio
 * ((2·pairs,) in plan order), u<k>.loss, u<k>.grad_norm, u<k>.grad.<NAME>; then kl, clipfrac,
 * approx_kl. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/algo/traj_family.h"
#include "flowrl/spo.h"

typedef struct {
    int64_t candidates, divert_step, pair_batch;
    float threshold;
    double beta_pref;
} fr_spo_opts;

typedef struct {
    fr_spo_opts o;
    fr_spo_cfg sc;
    fr_traj_pair_params prm;
    fr_tf tf;
    int64_t C;
    int *cpid;            /* (C,) the chains' prompts */
    uint32_t *csid;       /* (C,) the chains' sample ids */
    float *h, *score;     /* (2C,) preferences by row; (T, C, K) */
    int64_t *pick, *pairs, *rows; /* (T, C, 3); (T·C, 2) kept pairs; (2C,) a micro-step's rows */
    uint8_t *kept;        /* (T, C) */
    float *x0_h;          /* (K·C, D) the candidates' x̂0 on the host */
    fr_run *run;          /* the score callback's */
} spo_state;

static void spo_free(void *p)
{
    spo_state *t = p;
    if (!t) return;
    void *bufs[] = {t->cpid, t->csid, t->h, t->score, t->pick, t->pairs, t->rows, t->kept, t->x0_h};
    fr_run_free_bufs(NULL, NULL, 0, bufs, sizeof bufs / sizeof bufs[0]);
    fr_tf_free(&t->tf);
    free(t);
}

static fr_status spo_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    spo_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_spo_opts *)r->ao;
    t->sc = (fr_spo_cfg){t->o.divert_step, t->o.candidates, t->o.threshold};
    t->C = ro->c.prompts * ro->c.group;
    const int64_t C = t->C, T = ro->smp.num_steps, K = t->o.candidates;
    if (!FR_ALLOC(t->h, 2 * C)) return FR_ERR_NOMEM;
    for (int64_t c = 0; c < C; c++) t->h[2 * c] = 1.0f, t->h[2 * c + 1] = -1.0f; /* row 2c the winner */
    t->prm = (fr_traj_pair_params){(float)t->o.beta_pref, ro->c.clip_range, t->h}; /* ε: D3PO's --clip-range */
    FR_TRY(fr_tf_setup(r, &t->tf, 2 * C, ro->smp.cfg != 1.0f, &fr_traj_pair_pref, &t->prm, FR_KL_CODE));
    fr_tf *f = &t->tf;
    if (!(f->x_next = fr_dev_floats(r->be, T * f->N * f->D))) return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->cpid, C) || !FR_ALLOC(t->csid, C) || !FR_ALLOC(t->score, T * C * K) || !FR_ALLOC(t->pick, T * C * 3) ||
        !FR_ALLOC(t->pairs, 2 * T * C) || !FR_ALLOC(t->rows, 2 * C) || !FR_ALLOC(t->kept, T * C) ||
        !FR_ALLOC(t->x0_h, K * C * f->D))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* The run's reward of n candidates' x̂0 (backend), through the reward's input buffer. */
static fr_status score(void *user, int64_t n, const int *pid, const float *x0, float *s)
{
    spo_state *t = user;
    FR_TRY(fr_run_reward_input(t->run, t->x0_h, x0, n * t->tf.D));
    return fr_run_score(t->run, n, pid, t->x0_h, s);
}

/* The rollout, its records and the rewards of the chains' final samples. */
static fr_status rollout(fr_run *r, spo_state *t)
{
    fr_tf *f = &t->tf;
    const int64_t C = t->C, N = f->N, D = f->D, T = f->T, K = t->sc.candidates;
    FR_TRY(fr_run_prompts(r, f->prompts));
    for (int64_t c = 0; c < C; c++) {
        t->cpid[c] = f->prompts[c / f->G];
        t->csid[c] = (uint32_t)c;
        f->pid[2 * c] = f->pid[2 * c + 1] = t->cpid[c];
    }
    f->rc.c0 = (uint32_t)r->epoch;
    const fr_spo_out out = {f->traj, f->x_next, f->mean, f->logp, f->x, t->score, t->pick, t->kept};
    t->run = r;
    FR_TRY(fr_spo_rollout(&r->pol, r->be, r->task, &f->rc, &t->sc, C, t->cpid, t->csid, score, t, &out));
    FR_TRY(fr_d2h(r->be, f->logp_h, f->logp, (size_t)(T * N) * sizeof(float)));
    FR_TRY(fr_run_rec_dev_f32(r, "traj", f->traj, 3, T + 1, N, D));
    FR_TRY(fr_run_rec_dev_f32(r, "x_next", f->x_next, 3, T, N, D));
    FR_TRY(fr_run_rec_dev_f32(r, "mean", f->mean, 3, T, N, D));
    FR_TRY(fr_run_rec_f32(r, "logp_old", f->logp_h, 2, T, N, 1));
    FR_TRY(fr_run_rec_f32(r, "spo.score", t->score, 3, T, C, K));
    int64_t sh[3] = {T, C, 3};
    fr_tensor pt = fr_tensor_view(t->pick, FR_I64, 3, sh);
    FR_TRY(fr_run_rec_tensor(r, "spo.pick", &pt));
    fr_tensor kt = fr_tensor_view(t->kept, FR_U8, 2, sh);
    FR_TRY(fr_run_rec_tensor(r, "spo.kept", &kt));
    FR_TRY(fr_run_reward_input(r, f->x_h, f->x, C * D));
    FR_TRY(fr_run_check_finite(r, "rollout sample", f->x_h, C * D));
    FR_TRY(fr_run_rewards(r, C, t->cpid, f->x_h, f->reward, f->correct));
    double s = 0.0;
    int64_t n = 0;
    for (int64_t i = t->sc.divert * C * K; i < T * C * K; i++) s += t->score[i], n++;
    fr_run_metric(r, "candidate_score", s / (double)n);
    fr_run_metric(r, "scored", (double)(C + n)); /* rows whose reward's input crossed: candidates, final samples */
    return FR_OK;
}

/* The kept pairs (step, chain) in shuffled order (record pairs), then per batch of pair_batch
 * pairs one optimiser step: for each step j in order a micro-step with the batch's pairs at j,
 * gout = (its pairs)/(the batch's pairs). */
static fr_status plan(fr_run *r, spo_state *t, int64_t *n_pairs)
{
    fr_tf *f = &t->tf;
    const int64_t C = t->C, T = f->T, pb = t->o.pair_batch;
    int64_t n = 0;
    for (int64_t j = 0; j < T; j++)
        for (int64_t c = 0; c < C; c++)
            if (t->kept[j * C + c]) t->pairs[2 * n] = j, t->pairs[2 * n + 1] = c, n++;
    *n_pairs = n;
    fr_tf_plan_reset(f);
    if (n == 0) return FR_OK;
    int64_t *ord = fr_malloc((size_t)(3 * n) * sizeof *ord), K;
    if (!ord) return FR_ERR_NOMEM;
    int64_t *sorted = ord + n;
    fr_status s = fr_run_shuffle(r, n, NULL, ord, &K);
    for (int64_t i = 0; i < n; i++) sorted[2 * i] = t->pairs[2 * ord[i]], sorted[2 * i + 1] = t->pairs[2 * ord[i] + 1];
    int64_t sh[2] = {n, 2};
    fr_tensor pt = fr_tensor_view(sorted, FR_I64, 2, sh);
    if (s == FR_OK) s = fr_run_rec_tensor(r, "pairs", &pt);
    for (int64_t b0 = 0; b0 < n && s == FR_OK; b0 += pb) {
        const int64_t nb = n - b0 < pb ? n - b0 : pb;
        s = fr_tf_plan_update(f, 1, 2 * nb, 1, 1);
        for (int64_t j = 0; j < T && s == FR_OK; j++) {
            int64_t bj = 0;
            for (int64_t i = b0; i < b0 + nb; i++)
                if (sorted[2 * i] == j) t->rows[2 * bj] = 2 * sorted[2 * i + 1], t->rows[2 * bj + 1] = 2 * sorted[2 * i + 1] + 1, bj++;
            if (bj) s = fr_tf_plan_micro(f, j, t->rows, 2 * bj, (float)bj / (float)nb, NULL);
        }
    }
    free(ord);
    return s;
}

static fr_status spo_epoch(fr_run *r, void *state)
{
    spo_state *t = state;
    fr_tf *f = &t->tf;
    FR_TRY(rollout(r, t));
    int64_t n;
    FR_TRY(plan(r, t, &n));
    fr_run_metric(r, "pairs", (double)n);
    fr_run_metric(r, "pair_frac", (double)n / (double)(t->C * (f->T - t->sc.divert)));
    FR_TRY(fr_tf_run_plan(r, f));
    return fr_tf_finish(r, f);
}

static void spo_header(fr_run *r, void *state)
{
    spo_state *t = state;
    fr_tf_header_ddim(r);
    fr_run_info(r, "%lld chains; from step %lld, %lld candidates per step scored by the reward of their x0, pairs kept "
                   "at margin %g; pair loss beta %g, eps %g, %lld pairs per optimiser step",
                (long long)t->C, (long long)t->sc.divert, (long long)t->sc.candidates, (double)t->sc.threshold,
                (double)t->prm.beta, t->prm.eps, (long long)t->o.pair_batch);
}

/* ---- options ------------------------------------------------------------------------------ */

#define O fr_spo_opts
static const fr_opt k_rows[] = {
    FR_OPT_I64(O, candidates, "candidates", "2", 2, 256, "K: candidates x_{t-1} drawn from each shared x_t (num_sample_each_step)", 0),
    FR_OPT_I64(O, divert_step, "divert_step", "2", 0, 100000,
               "first step with candidates (public 4 of 20 steps; 2 of flowrl's 10), below --num-steps", 0),
    FR_OPT_F32(O, threshold, "margin_threshold", "0.3", 0, 0.999999,
               "keep a pair iff softmax([s_best, s_worst])[0] - [1] > this (a score gap > 2 atanh(t))", 0),
    FR_OPT_F64(O, beta_pref, "beta_pref", "10", 1e-6, 1e6,
               "beta of the pair loss -log sigmoid(beta (log r_w - log r_l)); --clip-range is its eps (ratio clamp)", 0),
    FR_OPT_I64(O, pair_batch, "pair_batch", "10", 1, 1000000, "kept pairs per optimiser step (train_batch_size)", 0),
};
#undef O

/* SPO's configs/basic_config.py on a CPU: ddim η 1.0, T 10 (public 20), the divert step scaled
 * to 2, K 2, margin 0.3, β 10, ε 0.1 (--clip-range, as D3PO's), 10 pairs per step; no KL; lr 3e-3 (bench_family's tuning,
 * docs/algorithms/spo.md §3; public 6e-5 on a LoRA of SD 1.5). */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_ddim(ro);
    ro->c.clip_range = 0.1;
    ro->opt.lr = 3e-3;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const fr_spo_opts *o = ao;
    static const fr_sampler_kind kinds[] = {FR_SAMPLER_DDIM};
    FR_TRY(fr_tf_check_common(ro, "spo", kinds, 1, 1, FR_TF_NO_KL));
    if (o->divert_step >= ro->smp.num_steps)
        return fr_fail(FR_ERR_ARG, "train: spo: --divert-step %lld: must be below --num-steps %lld", (long long)o->divert_step,
                       (long long)ro->smp.num_steps);
    return FR_OK;
}

static int needs_ref(const fr_run_opts *ro, const void *ao)
{
    (void)ro, (void)ao;
    return 1; /* the pair loss's ratios are to the frozen base */
}

/* T 4, P 2 x G 16 (32 chains), 4 candidates from step 1, gmm2d's halfplane reward, 3 pairs per
 * optimiser step. The generic tests' base is fresh (a zero output layer: ε̂ = 0, so x̂0 = x/√ᾱ
 * runs far out): the mode reward's scores of such x̂0 differ by less than the margin rule can
 * see (exp underflows), while a binary reward keeps the pairs whose candidates straddle its
 * boundary (a few per epoch at 32 chains). */
static void tiny(fr_run_opts *ro, void *ao)
{
    fr_spo_opts *o = ao;
    fr_tf_tiny(ro);
    ro->c.group = 16;
    snprintf(ro->c.reward, sizeof ro->c.reward, "halfplane");
    o->divert_step = 1;
    o->candidates = 4;
    o->pair_batch = 3;
}

static const char *const k_progress[] = {"pairs", "candidate_score", "clipfrac", NULL};

const fr_algo fr_algo_spo = {
    .name = "spo",
    .summary = "SPO: step-aware preference pairs (candidates from a shared x_t, scored by their x0) and a pair loss",
    .doc = "docs/algorithms/spo.md",
    .help = "SPO fine-tuning of an epsilon-prediction base (flowrl pretrain --pred epsilon): per epoch, P prompts x G\n"
            "DDIM chains (eta = --noise-level); from --divert-step on, --candidates x_{t-1} per step from the shared x_t,\n"
            "scored by the reward of their predicted x0, best/worst kept by the margin rule, the chain continuing from a\n"
            "random candidate; the pairs train -log sigmoid(beta (log r_w - log r_l)), r = clamp(p/p_ref, 1 +- eps).",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_spo_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = needs_ref,
    .setup = spo_setup,
    .header = spo_header,
    .epoch = spo_epoch,
    .progress_keys = k_progress,
    .free = spo_free,
    .tiny = tiny,
    .base_pred = FR_PRED_EPSILON,
};
