/* PXPO, pixel-wise policy optimisation (docs/algorithms/pxpo.md; spec more.md §3): DDPO
 * (core/algo/ddpo.c) with a reward MAP r_ij in place of the scalar reward, each pixel's
 * log-likelihood weighted by its own advantage: `flowrl train --algo pxpo`.
 *
 * Per epoch e: DDPO's rollout (DDIM, η = --noise-level, every step stochastic) and its scalar
 * rewards (recorded, the metrics' reward); then the task's per-pixel map of every sample
 * (fr_task.pixel_reward: shapes' per-pixel correctness; a task without one takes its scalar
 * reward as a constant map), per pixel the advantage over the prompt's group
 * (--pixel-adv prompt: A_ij = (r_ij − mean_group)/(std_group + ε), fr_adv_per_prompt) or the raw
 * map (--pixel-adv raw: A_ij = r_ij, the spec's L = −mean_ij r_ij·Σ_t ℓ_ij), broadcast over the C
 * channels into the trajectory objective's per-element weights (flowrl/traj_objective.h:
 * logp_w = mean_D(A·ℓ), the spec's channel mean per pixel then the pixel mean); every row's scalar
 * advantage is 1. The update is DDPO's plan (random int(fraction·T) steps per sample, batches,
 * accumulation), PPO-clip on the row ratio exp(logp_w − logp_w,old) or --score-function.
 *
 * audit.log records of an epoch: DDPO's (prompts, noise.x_T, noise.xi, traj, mean, logp_old,
 * rewards, reward_mean, reward_std), pixel_map (N, H·W), pixel_adv (N, H·W), order, steps, per
 * optimiser step u<k>.ratio, u<k>.loss, u<k>.grad_norm, u<k>.grad.<NAME>; kl, clipfrac, approx_kl. */
#include <stdlib.h>

#include "core/algo/traj_family.h"
#include "flowrl/advantage.h"

typedef enum { PXPO_ADV_PROMPT = 0, PXPO_ADV_RAW, PXPO_ADV_COUNT } pxpo_adv;
static const char *const k_adv_names[PXPO_ADV_COUNT + 1] = {"prompt", "raw", NULL};

typedef struct {
    int score_function;
    int pixel_adv; /* pxpo_adv */
} fr_pxpo_opts;

typedef struct {
    fr_pxpo_opts o;
    fr_ppo_params prm;
    fr_tf tf;
    int64_t n_train, P; /* P pixels per sample: H·W, or 1 for a non-image task */
    float *map, *padv, *col, *acol; /* host (N, P), (N, P), (N,), (N,) */
    float *dpadv;                     /* backend (N, P): the advantages, expanded on the backend */
    int32_t *idx, *didx;              /* host, backend (N·C,): weight row s·C + c is advantage row s */
} pxpo_state;

static void pxpo_free(void *p)
{
    pxpo_state *t = p;
    if (!t) return;
    free(t->map);
    free(t->padv);
    free(t->col);
    free(t->acol);
    free(t->idx);
    if (t->tf.be) {
        fr_dev_free(t->tf.be, t->dpadv);
        fr_dev_free(t->tf.be, t->didx);
    }
    fr_tf_free(&t->tf);
    free(t);
}

static fr_status pxpo_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    pxpo_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_pxpo_opts *)r->ao;
    t->prm = (fr_ppo_params){ro->c.clip_range, ro->c.adv_clip};
    const fr_traj_objective *obj = t->o.score_function ? &fr_traj_score_function : &fr_traj_ppo;
    FR_TRY(fr_tf_setup(r, &t->tf, 0, ro->smp.cfg != 1.0f, obj, &t->prm, FR_KL_CODE));
    const fr_task *k = r->task;
    const int64_t N = t->tf.N, D = t->tf.D;
    t->P = k->H > 0 && k->W > 0 && (int64_t)k->C * k->H * k->W == D ? (int64_t)k->H * k->W : 1;
    t->map = fr_malloc((size_t)(N * t->P) * sizeof *t->map);
    t->padv = fr_malloc((size_t)(N * t->P) * sizeof *t->padv);
    t->col = fr_malloc((size_t)N * sizeof *t->col);
    t->acol = fr_malloc((size_t)N * sizeof *t->acol);
    const int64_t C = D / t->P;
    t->idx = fr_malloc((size_t)(N * C) * sizeof *t->idx);
    t->dpadv = fr_dev_floats(r->be, N * t->P);
    t->didx = fr_dev_i32(r->be, N * C);
    t->tf.weight = fr_dev_floats(r->be, N * D); /* freed by fr_tf_free */
    if (!t->map || !t->padv || !t->col || !t->acol || !t->idx || !t->dpadv || !t->didx || !t->tf.weight)
        return FR_ERR_NOMEM;
    for (int64_t i = 0; i < N * C; i++) t->idx[i] = (int32_t)(i / C);
    FR_TRY(fr_h2d(r->be, t->didx, t->idx, (size_t)(N * C) * sizeof *t->idx));
    return fr_train_steps(t->tf.T, ro->c.timestep_fraction, &t->n_train);
}

/* The reward maps (N, P) of the rollout's samples: the task's per-pixel map, or each sample's
 * scalar reward in its one "pixel". */
static fr_status pixel_maps(fr_run *r, pxpo_state *t)
{
    fr_tf *f = &t->tf;
    const fr_task *k = r->task;
    if (t->P == 1 || !k->pixel_reward || r->reward_id < 0) {
        for (int64_t s = 0; s < f->N; s++)
            for (int64_t p = 0; p < t->P; p++) t->map[s * t->P + p] = f->reward[s];
        return FR_OK;
    }
    for (int64_t s = 0; s < f->N; s++)
        FR_TRY(k->pixel_reward(r->reward_id, f->pid[s], f->x_h + s * f->D, t->map + s * t->P));
    return FR_OK;
}

/* Per-pixel advantages (N, P), uploaded (the reward map's N·P floats, like a reward gradient's:
 * metric copies.h2d_reward_map_bytes), then the weights (N, D) on the backend: pixel p's advantage
 * on its C channels, rows s·C + c of the weights (rows of P) = row s of the advantages. */
static fr_status pixel_weights(fr_run *r, pxpo_state *t)
{
    fr_tf *f = &t->tf;
    const int64_t N = f->N, P = t->P, C = f->D / P;
    for (int64_t p = 0; p < P; p++) {
        for (int64_t s = 0; s < N; s++) t->col[s] = t->map[s * P + p];
        if (t->o.pixel_adv == PXPO_ADV_RAW)
            for (int64_t s = 0; s < N; s++) t->acol[s] = t->col[s];
        else
            FR_TRY(fr_adv_per_prompt(N, t->col, f->group, 0, FR_ADV_EPS_FLOW_GRPO, t->acol));
        for (int64_t s = 0; s < N; s++) t->padv[s * P + p] = t->acol[s];
    }
    FR_TRY(fr_run_rec_f32(r, "pixel_map", t->map, 2, N, P, 0));
    FR_TRY(fr_run_rec_f32(r, "pixel_adv", t->padv, 2, N, P, 0));
    FR_TRY(fr_h2d(r->be, t->dpadv, t->padv, (size_t)(N * P) * sizeof *t->padv));
    fr_run_metric(r, "copies.h2d_reward_map_bytes", (double)(N * P) * sizeof(float));
    r->be->ops->gather_rows(N * C, P, t->didx, N, t->dpadv, f->weight);
    return FR_OK;
}

static fr_status pxpo_epoch(fr_run *r, void *state)
{
    pxpo_state *t = state;
    fr_tf *f = &t->tf;
    FR_TRY(fr_tf_rollout(r, f, NULL));
    FR_TRY(pixel_maps(r, t));
    FR_TRY(pixel_weights(r, t));
    for (int64_t s = 0; s < f->N; s++) f->adv[s] = 1.0f; /* the advantage lives in the weights */
    int64_t K;
    FR_TRY(fr_run_shuffle(r, f->N, NULL, f->order, &K));
    fr_tensor ot = fr_tensor_view(f->order, FR_I64, 1, &K);
    FR_TRY(fr_run_rec_tensor(r, "order", &ot));
    fr_run_metric(r, "samples", (double)f->N);
    FR_TRY(fr_tf_select_steps(r, f, f->N, f->sid, f->T, t->n_train));
    FR_TRY(fr_tf_plan_selected(r, f, f->N, 1, f->order, t->n_train));
    FR_TRY(fr_tf_run_plan(r, f));
    return fr_tf_finish(r, f);
}

static void pxpo_header(fr_run *r, void *state)
{
    pxpo_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_tf_header_ddim(r);
    fr_run_info(r, "%lld of %lld steps trained per sample (random), %s, %lld pixels per sample (%s), pixel "
                   "advantages %s; %lld batches, grad accum %lld",
                (long long)t->n_train, (long long)ro->smp.num_steps,
                t->o.score_function ? "score function" : "PPO clip on the weighted log-prob", (long long)t->P,
                t->P > 1 && r->task->pixel_reward && r->reward_id >= 0 ? "the task's map" : "the scalar reward",
                k_adv_names[t->o.pixel_adv], (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
}

/* ---- options ------------------------------------------------------------------------------ */

#define O fr_pxpo_opts
static const fr_opt k_rows[] = {
    FR_OPT_BOOL(O, score_function, "score_function", "false",
                "L = -mean(logp_w), no ratio and no clip (the spec's REINFORCE form)", 0),
    FR_OPT_ENUM(O, pixel_adv, "pixel_adv", "prompt", k_adv_names,
                "per-pixel advantages: prompt = each pixel normalised over its prompt's group [flowrl choice], "
                "raw = the map itself (the spec's r_ij)",
                0),
};
#undef O

/* DDPO's (core/algo/ddpo.c): ddim η 1.0, T 10, every step trained, clip 1e-4, adv clip 5 (the
 * row advantage is 1), no KL. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_ddim(ro);
    ro->c.clip_range = 1e-4;
    ro->c.adv_clip = 5.0f;
    ro->c.timestep_fraction = 1.0;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    (void)ao;
    static const fr_sampler_kind kinds[] = {FR_SAMPLER_DDIM};
    FR_TRY(fr_tf_check_common(ro, "pxpo", kinds, 1, 1, FR_TF_NO_KL));
    int64_t n;
    FR_TRY(fr_train_steps(ro->smp.num_steps, ro->c.timestep_fraction, &n));
    if (n < 1)
        return fr_fail(FR_ERR_ARG, "train: pxpo: --timestep-fraction %g trains no step of %lld", ro->c.timestep_fraction,
                       (long long)ro->smp.num_steps);
    return FR_OK;
}

static void tiny(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_tiny(ro);
    ro->c.timestep_fraction = 0.75; /* 3 of 4 steps */
}

static const char *const k_progress[] = {"clipfrac", "ratio_min", "ratio_max", NULL};

const fr_algo fr_algo_pxpo = {
    .name = "pxpo",
    .summary = "PXPO: DDPO with a per-pixel reward map, each pixel's log-prob weighted by its own advantage",
    .doc = "docs/algorithms/pxpo.md",
    .help = "PXPO fine-tuning of an epsilon-prediction base (flowrl pretrain --pred epsilon) [paper/secondary; no public\n"
            "code]: DDPO's rollout and plan, the task's per-pixel reward map (shapes: per-pixel correctness from the\n"
            "detector [flowrl choice]; other tasks: the scalar reward), per-pixel advantages over the prompt's group\n"
            "[flowrl choice] or the raw map, as per-element log-prob weights; PPO-clip on the weighted log-prob's\n"
            "row ratio [flowrl choice] or --score-function; no KL.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_pxpo_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = fr_tf_needs_ref_beta,
    .setup = pxpo_setup,
    .header = pxpo_header,
    .epoch = pxpo_epoch,
    .progress_keys = k_progress,
    .free = pxpo_free,
    .tiny = tiny,
    .base_pred = FR_PRED_EPSILON,
};
