/* Diffusion-DPO and Flow-DPO (docs/algorithms/dpo.md) on the run loop (flowrl/run.h,
 * flowrl/algo.h): `flowrl train --algo diffusion-dpo | flow-dpo`. The objective is
 * core/pair_dpo.c (flowrl/pair_dpo.h); this file is the epoch.
 *
 * Per epoch e (audit step e + 1):
 *   1. pairs     from the preference file (--prefs): the epoch's P·G/2 pair slots continue a
 *                walk over the file, pass p in the order of fr_rng_perm(seed, FR_RNG_DPO_ORDER,
 *                p, 0) (record "pairs": the file rows); or (flow-dpo without --prefs) from
 *                the reference's rollout: P prompts × G samples of the frozen reference (the
 *                run's sampler, SDE 0.7 by default), scored, and per prompt id best vs worst
 *                (fr_pair_dpo_label; records samples, rewards, "labels"); before it, once the
 *                optimiser step count is a positive multiple of ref_update_step, the learner is
 *                copied into the reference (FDPO's copy_learner_to_ref)
 *   2. batches   the n pairs in order form num_batches micro-batches of whole pairs; rows
 *                [w | l] gathered on the backend (gather_rows) from the file or the samples
 *   3. draws     K per micro-batch (1 for diffusion-dpo; num_train_timesteps for flow-dpo), each
 *                with one time and one ε per pair slot j (c1 = j, c2 = K·q + k), shared by w and l:
 *                  diffusion  t = ⌊u32·n_train / 2^32⌋ (FR_RNG_DPO_TIME), x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε,
 *                             the network at t, target ε
 *                  flow       u = sigmoid(N(0,1)) (float32), index = (int)(1000·u), σ = s_3((1000 −
 *                             index)/1000), x_σ = (1−σ)·x0 + σ·ε, the network at 1000σ, target ε − x0
 *                the policy and the reference on x_t; fr_pair_dpo_rows with gout =
 *                1/(grad_accum·K); backward
 *   4. update    per grad_accum micro-batches one optimiser step (K·grad_accum backward passes
 *                accumulated: accelerate's accumulation)
 *
 * audit.log records of an epoch: pairs (I64 (n,)) or samples, rewards, reward_mean, reward_std,
 * labels (N,); per micro-batch q and draw k: b<q>.k<k>.t (n,) the network's time input, .e and
 * .e_ref (F64 (2n,)), .z (F64 (n,)), .loss; per optimiser step u: u<u>.grad_norm, u<u>.grad.<NAME>;
 * then the loop's state records (and dpo_ref.<NAME> after a reference update). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/dpo.h"
#include "flowrl/audit.h"
#include "flowrl/cond.h"
#include "flowrl/detmath.h"
#include "flowrl/digest.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"
#include "flowrl/prefs.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/schedule.h"

typedef struct {
    fr_dpo_opts o;
    fr_pair_dpo_form form;
    fr_backend *be;
    int64_t D, S, K, nb_max;      /* K draws per micro-batch, nb_max pairs at most per micro-batch */
    const float *alpha_bar;       /* diffusion: the base's ᾱ table (n_train,) */
    int64_t n_train;
    fr_model_ws ws, ws_ref;
    int have_ws, have_ws_ref;
    /* the preference file (offline) */
    int offline;
    int64_t n_file;
    int32_t *file_pid;            /* (n_file,) host */
    float *file_x;                /* (2·n_file, D) backend: x_w rows, then x_l rows */
    char file_digest[17];
    /* the reference's rollout (flow-dpo online) */
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    int have_sched;
    int64_t N;
    float *smp_x;                 /* (N, D) backend */
    float *smp_xh, *reward, *label; /* (N, D), (N,), (N,) host */
    int *prompts, *pid, *correct; /* (P,), (N,), (N,) */
    uint32_t *sid;                /* (N,) */
    int64_t *win, *lose;          /* (N,) pair sample indices */
    /* balanced-dpo: the scorers' reward ids and scores */
    int n_scorers, score_ids[FR_DPO_MAX_SCORERS];
    float *scores;                /* (K, N) host */
    /* the epoch's pairs: source row of w and l, prompt id, slot */
    int32_t *pw, *pl;             /* (n_epoch,) */
    int *ppid;                    /* (n_epoch,) */
    int64_t *pairs_rec;           /* (n_epoch,) */
    int64_t n_epoch_max;
    /* one micro-batch of 2·nb_max rows, backend */
    float *x0, *eps, *xt, *target, *v, *v_ref, *gv; /* (2nb, D) */
    float *d_coef;                /* (2, 2nb): a, s of noise_mix */
    float *d_tin;                 /* (2nb,) */
    int32_t *d_idx;               /* (2nb,) */
    uint32_t *d_slot;             /* (nb,) */
    int32_t *c;                   /* (2nb, S) */
    /* host */
    float *coef, *tin;            /* (2, 2nb), (2nb,) */
    int32_t *idx, *c_h;           /* (2nb,), (2nb, S) */
    uint32_t *slot;               /* (nb,) */
    int *rpid;                    /* (2nb,) */
    double *e, *e_ref, *z;        /* (2nb,), (2nb,), (nb,) */
} dpo_state;

int64_t fr_dpo_draws(const fr_run_opts *ro, const fr_dpo_opts *o)
{
    if (!o->flow) return 1;
    if (o->num_train_timesteps > 0) return o->num_train_timesteps;
    return (int64_t)((double)ro->smp.num_steps * 0.99); /* `int(num_steps * timestep_fraction)` */
}

fr_status fr_dpo_scorer_ids(const fr_task *task, const char *list, const char *run_reward, int *ids, int *K)
{
    *K = 0;
    if (!list[0]) { /* the run's reward, then the task's other built-in rewards */
        const char *rr = run_reward && run_reward[0] ? run_reward : task->reward_names[0];
        ids[(*K)++] = FR_DPO_SCORER_RUN;
        const int judges = task->n_judges > 0 ? task->n_judges : task->n_rewards;
        for (int k = 0; k < judges && *K < FR_DPO_MAX_SCORERS; k++)
            if (strcmp(task->reward_names[k], rr) != 0) ids[(*K)++] = k;
        return FR_OK;
    }
    for (const char *p = list; *p;) {
        const char *c = strchr(p, ',');
        const size_t len = c ? (size_t)(c - p) : strlen(p);
        char name[64];
        if (len == 0 || len >= sizeof name || *K == FR_DPO_MAX_SCORERS)
            return fr_fail(FR_ERR_ARG, "--scorers '%s': expected 1 to %d of the task's reward names (or 'reward'), "
                           "comma-separated", list, FR_DPO_MAX_SCORERS);
        memcpy(name, p, len);
        name[len] = '\0';
        if (strcmp(name, "reward") == 0) ids[*K] = FR_DPO_SCORER_RUN;
        else if (fr_task_reward_id(task, name, &ids[*K]) != FR_OK)
            return fr_fail(FR_ERR_ARG, "--scorers: '%s' is not a reward of task %s (or 'reward', the run's)", name,
                           task->name);
        (*K)++;
        p = c ? c + 1 : p + len;
    }
    return FR_OK;
}

void fr_dpo_algo_free(void *p)
{
    dpo_state *t = p;
    if (!t) return;
    if (t->have_ws) fr_model_ws_free(&t->ws);
    if (t->have_ws_ref) fr_model_ws_free(&t->ws_ref);
    if (t->have_sched) fr_rollout_schedule_free(&t->sched);
    void *dev[] = {t->file_x, t->smp_x, t->x0,   t->eps,  t->xt,    t->target, t->v,
                   t->v_ref,  t->gv,    t->d_coef, t->d_tin, t->d_idx, t->d_slot, t->c};
    void *host[] = {t->scores, t->file_pid, t->smp_xh, t->reward, t->label, t->prompts, t->pid, t->correct, t->sid,  t->win,
                    t->lose,     t->pw,     t->pl,     t->ppid,  t->pairs_rec, t->coef, t->tin, t->idx,
                    t->c_h,      t->slot,   t->rpid,   t->e,     t->e_ref,  t->z};
    fr_run_free_bufs(t->be, dev, sizeof dev / sizeof dev[0], host, sizeof host / sizeof host[0]);
    free(t);
}

fr_status fr_dpo_algo_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    dpo_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_dpo_opts *)r->ao;
    t->form = t->o.flow ? FR_PAIR_DPO_REF_DIFF : FR_PAIR_DPO_MODEL_DIFF;
    fr_backend *be = t->be = r->be;
    t->D = r->pol.cfg.D;
    t->S = r->pol.cfg.n_slots;
    t->K = fr_dpo_draws(ro, &t->o);
    t->offline = t->o.prefs[0] != '\0';
    if (!t->o.flow) {
        t->alpha_bar = fr_run_alpha_bar(r, &t->n_train);
        if (!t->alpha_bar) return fr_fail(FR_ERR_ARG, "train: diffusion-dpo: --base %s has no DDPM table", ro->c.base);
    }
    const int64_t P = ro->c.prompts, G = ro->c.group, nbt = ro->c.num_batches, D = t->D, S = t->S;
    if (t->offline) {
        /* rows [x_w | x_l] on the backend once */
        FR_TRY(fr_prefs_load_dev(be, t->o.prefs, r->task, 1, &t->file_x, &t->file_pid, &t->n_file, t->file_digest));
        t->n_epoch_max = P * G / 2;
    } else {
        t->N = P * G;
        t->n_epoch_max = t->o.vote ? P * G / 2 : P;
        if (t->o.vote) {
            FR_TRY(fr_dpo_scorer_ids(r->task, t->o.scorers, ro->c.reward, t->score_ids, &t->n_scorers));
            if (!FR_ALLOC(t->scores, (int64_t)t->n_scorers * t->N)) return FR_ERR_NOMEM;
        }
        FR_TRY(fr_run_rollout_cfg(r, &t->rc, &t->sched));
        t->have_sched = 1;
        if (!(t->smp_x = fr_dev_floats(be, t->N * D)) || !FR_ALLOC(t->smp_xh, t->N * D) || !FR_ALLOC(t->reward, t->N) ||
            !FR_ALLOC(t->label, t->N) || !FR_ALLOC(t->prompts, P) || !FR_ALLOC(t->pid, t->N) || !FR_ALLOC(t->correct, t->N) || !FR_ALLOC(t->sid, t->N) ||
            !FR_ALLOC(t->win, t->N) || !FR_ALLOC(t->lose, t->N))
            return FR_ERR_NOMEM;
    }
    t->nb_max = (t->n_epoch_max + nbt - 1) / nbt;
    const int64_t R = 2 * t->nb_max, ne = t->n_epoch_max;
    FR_TRY(fr_model_ws_alloc(&t->ws, &r->pol, R, 1));
    t->have_ws = 1;
    FR_TRY(fr_model_ws_alloc(&t->ws_ref, &r->ref, R, 0));
    t->have_ws_ref = 1;
    if (!(t->x0 = fr_dev_floats(be, R * D)) || !(t->eps = fr_dev_floats(be, R * D)) || !(t->xt = fr_dev_floats(be, R * D)) ||
        !(t->target = fr_dev_floats(be, R * D)) || !(t->v = fr_dev_floats(be, R * D)) ||
        !(t->v_ref = fr_dev_floats(be, R * D)) || !(t->gv = fr_dev_floats(be, R * D)) ||
        !(t->d_coef = fr_dev_floats(be, 2 * R)) || !(t->d_tin = fr_dev_floats(be, R)) || !(t->d_idx = fr_dev_i32(be, R)) ||
        !(t->d_slot = fr_dev_alloc(be, (size_t)t->nb_max * sizeof(uint32_t))) || !(t->c = fr_dev_i32(be, R * S)))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->pw, ne) || !FR_ALLOC(t->pl, ne) || !FR_ALLOC(t->ppid, ne) || !FR_ALLOC(t->pairs_rec, ne) ||
        !FR_ALLOC(t->coef, 2 * R) || !FR_ALLOC(t->tin, R) || !FR_ALLOC(t->idx, R) || !FR_ALLOC(t->c_h, R * S) ||
        !FR_ALLOC(t->slot, t->nb_max) || !FR_ALLOC(t->rpid, R) || !FR_ALLOC(t->e, R) || !FR_ALLOC(t->e_ref, R) ||
        !FR_ALLOC(t->z, t->nb_max))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* ---- the epoch's pairs ------------------------------------------------------------------ */

/* Offline: slots j < n of epoch e are the positions e·n + j of the walk over the file, pass
 * p = position / n_file in the order fr_rng_perm(seed, FR_RNG_DPO_ORDER, p, 0). */
static fr_status file_pairs(fr_run *r, dpo_state *t, int64_t *n_out)
{
    const int64_t n = t->n_epoch_max, Nf = t->n_file;
    int64_t *perm = fr_malloc((size_t)Nf * sizeof *perm);
    if (!perm) return FR_ERR_NOMEM;
    int64_t have = -1;
    for (int64_t j = 0; j < n; j++) {
        const int64_t pos = r->epoch * n + j, pass = pos / Nf;
        if (pass != have) {
            fr_rng_perm(perm, Nf, r->o->run.seed, FR_RNG_DPO_ORDER, (uint32_t)pass, 0);
            have = pass;
        }
        const int64_t row = perm[pos % Nf];
        t->pw[j] = (int32_t)row;
        t->pl[j] = (int32_t)(Nf + row);
        t->ppid[j] = t->file_pid[row];
        t->pairs_rec[j] = row;
    }
    free(perm);
    *n_out = n;
    int64_t sh = n;
    fr_tensor pt = fr_tensor_view(t->pairs_rec, FR_I64, 1, &sh);
    return fr_run_rec_tensor(r, "pairs", &pt);
}

/* Flow-DPO online: the reference's rollout, its rewards and the best-vs-worst pairs. */
static fr_status rollout_pairs(fr_run *r, dpo_state *t, int64_t *n_out)
{
    const int64_t N = t->N, D = t->D, G = r->o->c.group;
    if (r->adam.step > 0 && r->adam.step % t->o.ref_update_step == 0) {
        FR_TRY(fr_model_copy_values(&r->ref, &r->pol));
        FR_TRY(fr_run_rec_params(r, "dpo_ref.", r->ref.values));
        fr_run_metric(r, "ref_update", 1.0);
    } else {
        fr_run_metric(r, "ref_update", 0.0);
    }
    FR_TRY(fr_run_prompts(r, t->prompts));
    for (int64_t k = 0; k < N; k++) {
        t->pid[k] = t->prompts[k / G];
        t->sid[k] = (uint32_t)k;
    }
    t->rc.c0 = (uint32_t)r->epoch;
    FR_TRY(fr_run_rollout(r, &r->ref, &t->rc, N, t->pid, t->sid, t->smp_x, NULL));
    FR_TRY(fr_run_reward_input(r, t->smp_xh, t->smp_x, N * D));
    FR_TRY(fr_run_check_finite(r, "rollout sample", t->smp_xh, N * D));
    FR_TRY(fr_run_rec_f32(r, "samples", t->smp_xh, 2, N, D, 1));
    FR_TRY(fr_run_rewards(r, N, t->pid, t->smp_xh, t->reward, t->correct));
    int64_t n;
    if (t->o.vote) {
        /* BalancedDPO: each scorer on the same samples, the majority vote of consecutive pairs */
        double agree[FR_DPO_MAX_SCORERS];
        for (int k = 0; k < t->n_scorers; k++) {
            if (t->score_ids[k] == FR_DPO_SCORER_RUN) memcpy(t->scores + k * N, t->reward, (size_t)N * sizeof(float));
            else FR_TRY(fr_task_reward_batch(r->task, t->score_ids[k], (int)N, t->pid, t->smp_xh, t->scores + k * N, NULL));
        }
        FR_TRY(fr_run_rec_f32(r, "scores", t->scores, 2, t->n_scorers, N, 1));
        FR_TRY(fr_pair_dpo_vote_pairs(t->n_scorers, N, G, t->scores, t->win, t->lose, t->label, agree, &n));
        for (int k = 0; k < t->n_scorers; k++) {
            char key[64];
            snprintf(key, sizeof key, "agree.%d.%s", k,
                     t->score_ids[k] == FR_DPO_SCORER_RUN ? "reward" : r->task->reward_names[t->score_ids[k]]);
            fr_run_metric(r, key, agree[k]);
        }
    } else {
        FR_TRY(fr_pair_dpo_label(N, t->pid, t->reward, t->win, t->lose, t->label, &n));
    }
    FR_TRY(fr_run_rec_f32(r, "labels", t->label, 1, N, 1, 1));
    for (int64_t j = 0; j < n; j++) {
        t->pw[j] = (int32_t)t->win[j];
        t->pl[j] = (int32_t)t->lose[j];
        t->ppid[j] = t->pid[t->win[j]];
    }
    fr_run_metric(r, "kept", (double)(2 * n));
    *n_out = n;
    return FR_OK;
}

/* ---- one micro-batch ---------------------------------------------------------------------- */

typedef struct {
    double loss, z_mean, acc, e_w, e_l, e_ref_w, e_ref_l;
    int64_t n;
} epoch_stats;

/* Rows [w | l] of pairs j0 .. j0 + n − 1, their condition ids, on the backend. */
static fr_status batch_rows(fr_run *r, dpo_state *t, int64_t j0, int64_t n)
{
    fr_backend *be = t->be;
    const int64_t R = 2 * n, S = t->S;
    for (int64_t i = 0; i < n; i++) {
        t->idx[i] = t->pw[j0 + i];
        t->idx[n + i] = t->pl[j0 + i];
        t->rpid[i] = t->rpid[n + i] = t->ppid[j0 + i];
        t->slot[i] = (uint32_t)(j0 + i);
    }
    FR_TRY(fr_cond_ids(r->task, R, t->rpid, t->c_h));
    FR_TRY(fr_h2d(be, t->d_idx, t->idx, (size_t)R * sizeof(int32_t)));
    FR_TRY(fr_h2d(be, t->d_slot, t->slot, (size_t)n * sizeof(uint32_t)));
    FR_TRY(fr_h2d(be, t->c, t->c_h, (size_t)(R * S) * sizeof(int32_t)));
    if (t->offline) be->ops->gather_rows(R, t->D, t->d_idx, 2 * t->n_file, t->file_x, t->x0);
    else be->ops->gather_rows(R, t->D, t->d_idx, t->N, t->smp_x, t->x0);
    return FR_OK;
}

/* Draw k of micro-batch q: per pair one time and one ε (rows w and l alike), x_t and the target. */
static fr_status draw_inputs(fr_run *r, dpo_state *t, int64_t q, int64_t k, int64_t n)
{
    fr_backend *be = t->be;
    const int64_t R = 2 * n, D = t->D;
    const uint32_t seed = r->o->run.seed, e = (uint32_t)r->epoch, c2 = (uint32_t)(q * t->K + k);
    float *a = t->coef, *sc = t->coef + R;
    for (int64_t i = 0; i < n; i++) {
        const uint32_t j = t->slot[i];
        float ai, si, tin;
        if (t->o.flow) {
            /* compute_density_for_timestep_sampling('logit_normal'): sigmoid(N(0, 1)), float32 */
            const float u = fr_sigmoidf(fr_rng_normal(seed, FR_RNG_DPO_TIME, e, j, c2, 0));
            int64_t index = (int64_t)(u * 1000.0f); /* `(u * num_train_timesteps).long()` */
            if (index > FR_NUM_TRAIN_TIMESTEPS - 1) index = FR_NUM_TRAIN_TIMESTEPS - 1;
            const float sigma = fr_shift_f((float)(FR_NUM_TRAIN_TIMESTEPS - index) / 1000.0f, 3.0f);
            ai = 1.0f - sigma;
            si = sigma;
            tin = fr_timestep_diffusers(sigma);
        } else {
            const uint32_t ti = fr_rng_below(fr_rng_u32(seed, FR_RNG_DPO_TIME, e, j, c2, 0), (uint32_t)t->n_train);
            fr_ddpm_coefs(t->alpha_bar[ti], &ai, &si);
            tin = (float)ti;
        }
        a[i] = a[n + i] = ai;
        sc[i] = sc[n + i] = si;
        t->tin[i] = t->tin[n + i] = tin;
    }
    FR_TRY(fr_h2d(be, t->d_coef, a, (size_t)n * 2 * sizeof(float)));          /* a of rows [w | l] */
    FR_TRY(fr_h2d(be, t->d_coef + R, sc, (size_t)n * 2 * sizeof(float)));     /* s of rows [w | l] */
    FR_TRY(fr_h2d(be, t->d_tin, t->tin, (size_t)R * sizeof(float)));
    /* ε of pair slot j: normals (seed, FR_RNG_DPO_NOISE, epoch, j, c2), copied to the l rows */
    be->ops->rng_normal_rows(n, D, seed, FR_RNG_DPO_NOISE, e, n, t->d_slot, c2, t->eps);
    FR_TRY(fr_d2d(be, t->eps + n * D, t->eps, (size_t)(n * D) * sizeof(float)));
    be->ops->noise_mix(R, R, D, t->x0, t->eps, t->d_coef, t->d_coef + R, t->xt);
    if (t->o.flow) be->ops->flow_target(R, R, D, t->x0, t->eps, t->target);
    else FR_TRY(fr_d2d(be, t->target, t->eps, (size_t)(R * D) * sizeof(float)));
    return FR_OK;
}

static fr_status rec_batch(fr_run *r, dpo_state *t, int64_t q, int64_t k, int64_t n, double loss)
{
    char name[FR_AUDIT_MAX_NAME + 1];
    int64_t R = 2 * n, nn = n;
    snprintf(name, sizeof name, "b%lld.k%lld.t", (long long)q, (long long)k);
    FR_TRY(fr_run_rec_f32(r, name, t->tin, 1, n, 1, 1));
    fr_tensor et = fr_tensor_view(t->e, FR_F64, 1, &R), rt = fr_tensor_view(t->e_ref, FR_F64, 1, &R),
              zt = fr_tensor_view(t->z, FR_F64, 1, &nn);
    snprintf(name, sizeof name, "b%lld.k%lld.e", (long long)q, (long long)k);
    FR_TRY(fr_run_rec_tensor(r, name, &et));
    snprintf(name, sizeof name, "b%lld.k%lld.e_ref", (long long)q, (long long)k);
    FR_TRY(fr_run_rec_tensor(r, name, &rt));
    snprintf(name, sizeof name, "b%lld.k%lld.z", (long long)q, (long long)k);
    FR_TRY(fr_run_rec_tensor(r, name, &zt));
    snprintf(name, sizeof name, "b%lld.k%lld.loss", (long long)q, (long long)k);
    return fr_run_rec_scalar(r, name, (float)loss);
}

static fr_status update_batch(fr_run *r, dpo_state *t, int64_t q, int64_t j0, int64_t n, epoch_stats *es)
{
    if (n == 0) return FR_OK; /* fewer pairs than micro-batches this epoch */
    const int64_t R = 2 * n;
    const double gout = 1.0 / ((double)r->o->c.grad_accum * (double)t->K);
    FR_TRY(batch_rows(r, t, j0, n));
    for (int64_t k = 0; k < t->K; k++) {
        FR_TRY(draw_inputs(r, t, q, k, n));
        FR_TRY(fr_model_forward(&r->pol, r->be, &t->ws, R, t->xt, t->d_tin, t->c, t->v));
        FR_TRY(fr_model_forward(&r->ref, r->be, &t->ws_ref, R, t->xt, t->d_tin, t->c, t->v_ref));
        fr_pair_dpo_stats st;
        FR_TRY(fr_pair_dpo_rows(r->be, n, t->D, t->o.beta_dpo, t->form, t->v, t->v_ref, t->target, gout, t->gv, t->e,
                                t->e_ref, t->z, &st));
        if (!isfinite(st.loss))
            return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: DPO loss %g in micro-batch %lld: the policy diverged",
                           (long long)r->epoch + 1, st.loss, (long long)q);
        FR_TRY(fr_model_backward(&r->pol, r->be, &t->ws, t->gv, NULL));
        FR_TRY(rec_batch(r, t, q, k, n, st.loss));
        es->loss += st.loss;
        es->z_mean += st.z_mean;
        es->acc += st.acc;
        es->e_w += st.e_w;
        es->e_l += st.e_l;
        es->e_ref_w += st.e_ref_w;
        es->e_ref_l += st.e_ref_l;
        es->n++;
    }
    return FR_OK;
}

fr_status fr_dpo_algo_epoch(fr_run *r, void *state)
{
    dpo_state *t = state;
    const int64_t nbt = r->o->c.num_batches, ga = r->o->c.grad_accum;
    int64_t n;
    FR_TRY(t->offline ? file_pairs(r, t, &n) : rollout_pairs(r, t, &n));
    fr_run_metric(r, "pairs", (double)n);
    epoch_stats es = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t u = 0;
    float gn = NAN;
    for (int64_t q0 = 0; q0 < nbt; q0 += ga, u++) {
        fr_model_zero_grad(&r->pol, r->be);
        for (int64_t q = q0; q < q0 + ga; q++) {
            const int64_t j0 = q * n / nbt, j1 = (q + 1) * n / nbt;
            FR_TRY(update_batch(r, t, q, j0, j1 - j0, &es));
        }
        FR_TRY(fr_run_optimizer_step(r, u, &gn));
    }
    const double m = es.n ? (double)es.n : NAN;
    fr_run_metric(r, "loss", es.loss / m);
    fr_run_metric(r, "z_mean", es.z_mean / m);
    fr_run_metric(r, "implicit_acc", es.acc / m);
    fr_run_metric(r, "e_w", es.e_w / m);
    fr_run_metric(r, "e_l", es.e_l / m);
    fr_run_metric(r, "e_ref_w", es.e_ref_w / m);
    fr_run_metric(r, "e_ref_l", es.e_ref_l / m);
    fr_run_metric(r, "grad_norm", gn);
    fr_run_metric(r, "updates", (double)u);
    if (t->offline) fr_run_metric(r, "scored", 0.0); /* no reward is computed: the pairs are labelled */
    return FR_OK;
}

/* ---- checkpoint state ---------------------------------------------------------------------- */

/* The preference file's digest (a resume must read the same pairs) and, for an online Flow-DPO,
 * the reference the learner was copied into. */
fr_status fr_dpo_algo_save(fr_run *r, void *state, fr_st_file *f)
{
    dpo_state *t = state;
    if (t->offline) FR_TRY(fr_st_set_meta(f, "dpo.prefs_digest", t->file_digest));
    if (t->o.flow && t->o.ref_update_step < FR_DPO_OFFLINE_STEP) FR_TRY(fr_run_save_params(r, f, "dpo_ref.", r->ref.values));
    return FR_OK;
}

fr_status fr_dpo_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    dpo_state *t = state;
    if (t->offline) {
        const char *d = fr_st_get_meta(f, "dpo.prefs_digest");
        if (!d || strcmp(d, t->file_digest) != 0)
            return fr_fail(FR_ERR_MISMATCH, "%s: metadata 'dpo.prefs_digest' = '%s', but --prefs %s has digest %s: not the "
                           "preference file the run trained on", path, d ? d : "(missing)", t->o.prefs, t->file_digest);
    }
    if (t->o.flow && t->o.ref_update_step < FR_DPO_OFFLINE_STEP)
        FR_TRY(fr_run_load_params(r, f, path, "dpo_ref.", r->ref.values));
    return FR_OK;
}

void fr_dpo_algo_header(fr_run *r, void *state)
{
    dpo_state *t = state;
    const fr_run_opts *ro = r->o;
    if (t->offline)
        fr_run_info(r, "%lld pairs from %s (digest %s); %lld pairs per epoch in %lld batches, grad accum %lld",
                    (long long)t->n_file, t->o.prefs, t->file_digest, (long long)t->n_epoch_max,
                    (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
    else
        fr_run_info(r, "pairs from the reference's rollouts: %s, %lld steps, noise %g, cfg %g; %s; "
                    "reference update every %lld steps",
                    fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, (double)ro->smp.noise_level,
                    (double)ro->smp.cfg,
                    t->o.vote ? "consecutive pairs by the scorers' majority vote, ties dropped" : "best vs worst of each prompt",
                    (long long)t->o.ref_update_step);
    if (t->o.flow)
        fr_run_info(r, "beta %g; %lld draws per batch: u = sigmoid(N(0,1)), sigma of the shift-3 1000-step grid, shared "
                    "noise per pair", t->o.beta_dpo, (long long)t->K);
    else
        fr_run_info(r, "beta_dpo %g; one t of U{0..%lld} and one noise per pair, shared by w and l", t->o.beta_dpo,
                    (long long)t->n_train - 1);
}
