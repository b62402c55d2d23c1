/* SmPO (spec/more.md §4; SMPO `JaydenLyh/SmPO` @ 8922d54 `train.py`; docs/algorithms/smpo.md) on
 * the run loop: `flowrl train --algo smpo`. The loss, the smoothed label and the inverse step are
 * core/smpo.c (flowrl/smpo.h); this file is the epoch and the registry row.
 *
 * Setup: the preference file (--prefs, flowrl prefs make) on the backend; the scores that labelled
 * it (r_w, r_l: the PickScore of the public code) give each pair p = fr_smpo_prob(r_w, r_l, lo, hi),
 * lo/hi the least and the greatest of the file's 2N scores [flowrl choice: the public code's
 * constants are Pick-a-Pic's PickScore range]. r_w > r_l in every file, so the winner is the
 * higher-scored sample, as the public code re-orders by `ps_label_0`.
 *
 * Per epoch e (audit step e + 1):
 *   1. pairs     the epoch's P·G/2 pair slots continue a walk over the file, pass p in the order
 *                fr_rng_perm(seed, FR_RNG_SMPO_ORDER, p, 0) (records "pairs", "p")
 *   2. batches   num_batches micro-batches of whole pairs; rows [w | l] gathered on the backend
 *   3. time      per pair slot j one t = ⌊u32(seed, FR_RNG_SMPO_TIME, e, j, 0, 0)·n_train / 2^32⌋,
 *                shared by w and l (`timesteps.chunk(2)[0].repeat(2)`)
 *   4. inversion of every row x0 by the policy (no gradient, the pair's condition, no CFG): for
 *                each τ_k < t of the inverse grid (fr_smpo_inv_times), with A, B the step at τ_k
 *                  ε1 = ε_θ(x, τ_k);  x' = A·x + B·ε1;  ε2 = ε_θ(x', τ_k);  x ← A·x + B·(ε1 + ε2)/2
 *                (one ReNoise averaging; rows whose t ≤ τ_k keep x: A = 1, B = 0), then
 *                  ε̃ = (x_inv − √ᾱ_t·x0)/√(1 − ᾱ_t)   (record b<q>.eps_inv)
 *   5. loss      the policy and the frozen reference at (x_inv, t) with target ε̃; fr_smpo_rows
 *                with gout = 1/grad_accum; backward; one optimiser step per grad_accum micro-batches
 *
 * audit.log records of an epoch: pairs (I64 (n,)), p (F64 (n,)); per micro-batch q: b<q>.t (n,),
 * b<q>.eps_inv (2n, D), b<q>.e and b<q>.e_ref (F64 (2n,)), b<q>.z (F64 (n,)), b<q>.loss; per
 * optimiser step u: u<u>.grad_norm, u<u>.grad.<NAME>; then the loop's state records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/algo.h"
#include "flowrl/audit.h"
#include "flowrl/cond.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"
#include "flowrl/prefs.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/smpo.h"

typedef struct {
    char prefs[FR_OPT_PATH_MAX]; /* preference file (required) */
    double beta_dpo;             /* 2000 (SMPO examples/sd15.sh), 5000 (sdxl.sh) */
    int64_t inversion_steps;     /* 5 (SD1.5: `set_timesteps(5)`), 10 (SDXL) */
} smpo_opts;

typedef struct {
    smpo_opts o;
    fr_backend *be;
    int64_t D, S, nb_max, n_epoch;
    const float *alpha_bar;       /* the base's ᾱ table (n_train,) */
    int64_t n_train, delta;       /* delta: the inverse grid's stride ⌊n_train/steps⌋ */
    int64_t *tau;                 /* (inversion_steps,) the inverse grid */
    fr_model_ws ws, ws_ref, ws_inv;
    int have_ws, have_ws_ref, have_ws_inv;
    /* the preference file */
    int64_t n_file;
    int32_t *file_pid;            /* (n_file,) host */
    float *file_x;                /* (2·n_file, D) backend: x_w rows, then x_l rows */
    double *file_p;               /* (n_file,) the pairs' smoothed labels */
    double score_lo, score_hi;
    char file_digest[17];
    /* the epoch's pairs */
    int32_t *pw, *pl;             /* (n_epoch,) source rows of w and l */
    int *ppid;                    /* (n_epoch,) */
    int64_t *pairs_rec;           /* (n_epoch,) */
    double *pp;                   /* (n_epoch,) */
    /* one micro-batch of 2·nb_max rows, backend */
    float *x0, *xa, *xb, *eps1, *eps2, *target, *v, *v_ref, *gv; /* (2nb, D) */
    float *d_coef;                /* (2, 2nb): A, B of the inverse step or the target's coefficients */
    float *d_half;                /* (2nb,) 0.5: the ReNoise average */
    float *d_tin;                 /* (2nb,) */
    int32_t *d_idx;               /* (2nb,) */
    int32_t *c;                   /* (2nb, S) */
    /* host */
    float *coef, *tin;            /* (2, 2nb), (2nb,) */
    int32_t *idx, *c_h;           /* (2nb,), (2nb, S) */
    int *rpid;                    /* (2nb,) */
    int64_t *t;                   /* (nb,) each pair's DDPM time */
    double *e, *e_ref, *z;        /* (2nb,), (2nb,), (nb,) */
} smpo_state;

static void smpo_free(void *p)
{
    smpo_state *t = p;
    if (!t) return;
    if (t->have_ws) fr_model_ws_free(&t->ws);
    if (t->have_ws_ref) fr_model_ws_free(&t->ws_ref);
    if (t->have_ws_inv) fr_model_ws_free(&t->ws_inv);
    void *dev[] = {t->file_x, t->x0,    t->xa,     t->xb,     t->eps1,  t->eps2,  t->target,
                   t->v,      t->v_ref, t->gv,     t->d_coef, t->d_half, t->d_tin, t->d_idx, t->c};
    void *host[] = {t->tau, t->file_pid, t->file_p, t->pw,  t->pl, t->ppid, t->pairs_rec, t->pp, t->coef,
                    t->tin, t->idx,      t->c_h,    t->rpid, t->t, t->e,    t->e_ref,     t->z};
    fr_run_free_bufs(t->be, dev, sizeof dev / sizeof dev[0], host, sizeof host / sizeof host[0]);
    free(t);
}

/* The file's smoothed labels: its scores r_w, r_l normalised by their own range. */
static fr_status file_labels(fr_run *r, smpo_state *t)
{
    fr_prefs pf;
    FR_TRY(fr_prefs_read(t->o.prefs, r->task, &pf));
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < pf.N; i++) {
        lo = fmin(lo, fmin((double)pf.r_w[i], (double)pf.r_l[i]));
        hi = fmax(hi, fmax((double)pf.r_w[i], (double)pf.r_l[i]));
    }
    fr_status s = FR_OK;
    if (pf.N != t->n_file || !(hi > lo)) /* r_w > r_l in every checked file: hi > lo */
        s = fr_fail(FR_ERR_FORMAT, "train: --prefs %s: %lld pairs, scores in [%g, %g]: expected %lld pairs and a range",
                    t->o.prefs, (long long)pf.N, lo, hi, (long long)t->n_file);
    else if (!FR_ALLOC(t->file_p, pf.N))
        s = FR_ERR_NOMEM;
    for (int64_t i = 0; s == FR_OK && i < pf.N; i++) t->file_p[i] = fr_smpo_prob(pf.r_w[i], pf.r_l[i], lo, hi);
    t->score_lo = lo;
    t->score_hi = hi;
    fr_prefs_free(&pf);
    return s;
}

static fr_status smpo_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    smpo_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const smpo_opts *)r->ao;
    fr_backend *be = t->be = r->be;
    t->D = r->pol.cfg.D;
    t->S = r->pol.cfg.n_slots;
    t->alpha_bar = fr_run_alpha_bar(r, &t->n_train);
    if (!t->alpha_bar) return fr_fail(FR_ERR_ARG, "train: smpo: --base %s has no DDPM table", ro->c.base);
    if (!FR_ALLOC(t->tau, t->o.inversion_steps)) return FR_ERR_NOMEM;
    if (fr_smpo_inv_times(t->n_train, t->o.inversion_steps, t->tau) != FR_OK)
        return fr_fail(FR_ERR_ARG, "train: smpo: --inversion-steps %lld: expected 1 to %lld for the base's %lld DDPM steps",
                       (long long)t->o.inversion_steps, (long long)t->n_train - 1, (long long)t->n_train);
    t->delta = t->n_train / t->o.inversion_steps;
    FR_TRY(fr_prefs_load_dev(be, t->o.prefs, r->task, 1, &t->file_x, &t->file_pid, &t->n_file, t->file_digest));
    FR_TRY(file_labels(r, t));
    const int64_t D = t->D, S = t->S, ne = t->n_epoch = ro->c.prompts * ro->c.group / 2;
    t->nb_max = (ne + ro->c.num_batches - 1) / ro->c.num_batches;
    const int64_t R = 2 * t->nb_max;
    FR_TRY(fr_model_ws_alloc(&t->ws, &r->pol, R, 1));
    t->have_ws = 1;
    FR_TRY(fr_model_ws_alloc(&t->ws_ref, &r->ref, R, 0));
    t->have_ws_ref = 1;
    FR_TRY(fr_model_ws_alloc(&t->ws_inv, &r->pol, R, 0));
    t->have_ws_inv = 1;
    float **bufs[] = {&t->x0, &t->xa, &t->xb, &t->eps1, &t->eps2, &t->target, &t->v, &t->v_ref, &t->gv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (!(*bufs[i] = fr_dev_floats(be, R * D))) return FR_ERR_NOMEM;
    if (!(t->d_coef = fr_dev_floats(be, 2 * R)) || !(t->d_half = fr_dev_floats(be, R)) ||
        !(t->d_tin = fr_dev_floats(be, R)) || !(t->d_idx = fr_dev_i32(be, R)) || !(t->c = fr_dev_i32(be, R * S)))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->pw, ne) || !FR_ALLOC(t->pl, ne) || !FR_ALLOC(t->ppid, ne) || !FR_ALLOC(t->pairs_rec, ne) ||
        !FR_ALLOC(t->pp, ne) || !FR_ALLOC(t->coef, 2 * R) || !FR_ALLOC(t->tin, R) || !FR_ALLOC(t->idx, R) ||
        !FR_ALLOC(t->c_h, R * S) || !FR_ALLOC(t->rpid, R) || !FR_ALLOC(t->t, t->nb_max) || !FR_ALLOC(t->e, R) ||
        !FR_ALLOC(t->e_ref, R) || !FR_ALLOC(t->z, t->nb_max))
        return FR_ERR_NOMEM;
    for (int64_t i = 0; i < R; i++) t->coef[i] = 0.5f;
    return fr_h2d(be, t->d_half, t->coef, (size_t)R * sizeof(float));
}

/* Slots j < n of epoch e: positions e·n + j of the walk over the file. */
static fr_status epoch_pairs(fr_run *r, smpo_state *t)
{
    const int64_t n = t->n_epoch, Nf = t->n_file;
    int64_t *perm = fr_malloc((size_t)Nf * sizeof *perm);
    if (!perm) return FR_ERR_NOMEM;
    int64_t have = -1;
    for (int64_t j = 0; j < n; j++) {
        const int64_t pos = r->epoch * n + j, pass = pos / Nf;
        if (pass != have) {
            fr_rng_perm(perm, Nf, r->o->run.seed, FR_RNG_SMPO_ORDER, (uint32_t)pass, 0);
            have = pass;
        }
        const int64_t row = perm[pos % Nf];
        t->pw[j] = (int32_t)row;
        t->pl[j] = (int32_t)(Nf + row);
        t->ppid[j] = t->file_pid[row];
        t->pairs_rec[j] = row;
        t->pp[j] = t->file_p[row];
    }
    free(perm);
    int64_t sh = n;
    fr_tensor pt = fr_tensor_view(t->pairs_rec, FR_I64, 1, &sh), ppt = fr_tensor_view(t->pp, FR_F64, 1, &sh);
    FR_TRY(fr_run_rec_tensor(r, "pairs", &pt));
    return fr_run_rec_tensor(r, "p", &ppt);
}

/* Rows [w | l] of pairs j0 .. j0 + n − 1 into x0, their conditions, and each pair's time. */
static fr_status batch_rows(fr_run *r, smpo_state *t, int64_t j0, int64_t n)
{
    fr_backend *be = t->be;
    const int64_t R = 2 * n, S = t->S;
    for (int64_t i = 0; i < n; i++) {
        const uint32_t j = (uint32_t)(j0 + i);
        t->idx[i] = t->pw[j];
        t->idx[n + i] = t->pl[j];
        t->rpid[i] = t->rpid[n + i] = t->ppid[j];
        t->t[i] = fr_rng_below(fr_rng_u32(r->o->run.seed, FR_RNG_SMPO_TIME, (uint32_t)r->epoch, j, 0, 0),
                               (uint32_t)t->n_train); /* `torch.randint(0, num_train_timesteps)` */
    }
    FR_TRY(fr_cond_ids(r->task, R, t->rpid, t->c_h));
    FR_TRY(fr_h2d(be, t->d_idx, t->idx, (size_t)R * sizeof(int32_t)));
    FR_TRY(fr_h2d(be, t->c, t->c_h, (size_t)(R * S) * sizeof(int32_t)));
    be->ops->gather_rows(R, t->D, t->d_idx, 2 * t->n_file, t->file_x, t->x0);
    return FR_OK;
}

/* Per row (pair i's rows i and n + i alike) coefficients a (R,) and b (R,) to the backend. */
static fr_status put_coefs(smpo_state *t, int64_t n)
{
    const int64_t R = 2 * n;
    for (int64_t i = 0; i < n; i++) {
        t->coef[n + i] = t->coef[i];
        t->coef[R + n + i] = t->coef[R + i];
        t->tin[n + i] = t->tin[i];
    }
    FR_TRY(fr_h2d(t->be, t->d_coef, t->coef, (size_t)R * sizeof(float)));
    FR_TRY(fr_h2d(t->be, t->d_coef + R, t->coef + R, (size_t)R * sizeof(float)));
    return fr_h2d(t->be, t->d_tin, t->tin, (size_t)R * sizeof(float));
}

/* The inversion of x0 by the policy (step 4 of the epoch): *x_inv receives xa or xb, target ε̃. */
static fr_status invert(fr_run *r, smpo_state *t, int64_t n, float **x_inv)
{
    fr_backend *be = t->be;
    const int64_t R = 2 * n, D = t->D;
    float *x = t->xa, *y = t->xb;
    FR_TRY(fr_d2d(be, x, t->x0, (size_t)(R * D) * sizeof(float)));
    for (int64_t k = 0; k < t->o.inversion_steps; k++) {
        int active = 0;
        for (int64_t i = 0; i < n; i++) {
            const int on = t->tau[k] < t->t[i]; /* `inverse_scheduler.timesteps < timesteps[0]` */
            if (on) fr_smpo_inv_coefs(t->alpha_bar, t->tau[k], t->delta, &t->coef[i], &t->coef[R + i]);
            else t->coef[i] = 1.0f, t->coef[R + i] = 0.0f;
            t->tin[i] = (float)t->tau[k];
            active |= on;
        }
        if (!active) break; /* the grid increases: no later step is below any t either */
        FR_TRY(put_coefs(t, n));
        const float *A = t->d_coef, *B = t->d_coef + R;
        FR_TRY(fr_model_forward(&r->pol, be, &t->ws_inv, R, x, t->d_tin, t->c, t->eps1));
        be->ops->noise_mix(R, R, D, x, t->eps1, A, B, y);
        FR_TRY(fr_model_forward(&r->pol, be, &t->ws_inv, R, y, t->d_tin, t->c, t->eps2));
        be->ops->noise_mix(R, R, D, t->eps1, t->eps2, t->d_half, t->d_half, y); /* (ε1 + ε2)/2 */
        be->ops->noise_mix(R, R, D, x, y, A, B, t->eps2);
        float *nx = t->eps2;
        t->eps2 = y;
        y = x;
        x = nx;
    }
    /* ε̃ = (x_inv − √ᾱ_t·x0)/√(1 − ᾱ_t) = (1/√(1 − ᾱ_t))·x_inv + (−√ᾱ_t/√(1 − ᾱ_t))·x0; the network at t */
    for (int64_t i = 0; i < n; i++) {
        const double ab = (double)t->alpha_bar[t->t[i]], sq = sqrt(1.0 - ab);
        t->coef[i] = (float)(1.0 / sq);
        t->coef[R + i] = (float)(-sqrt(ab) / sq);
        t->tin[i] = (float)t->t[i];
    }
    FR_TRY(put_coefs(t, n));
    be->ops->noise_mix(R, R, D, x, t->x0, t->d_coef, t->d_coef + R, t->target);
    /* the buffers rotated: xa and xb keep being the two row buffers the next batch starts from */
    t->xa = x;
    t->xb = y;
    *x_inv = x;
    return FR_OK;
}

typedef struct {
    double loss, z_mean, acc, e_w, e_l, e_ref_w, e_ref_l, p;
    int64_t n;
} epoch_stats;

static fr_status rec_batch(fr_run *r, smpo_state *t, int64_t q, int64_t n, double loss)
{
    char name[FR_AUDIT_MAX_NAME + 1];
    int64_t R = 2 * n, nn = n;
    snprintf(name, sizeof name, "b%lld.t", (long long)q);
    FR_TRY(fr_run_rec_f32(r, name, t->tin, 1, n, 1, 1)); /* the network's time input of the pairs (invert) */
    snprintf(name, sizeof name, "b%lld.eps_inv", (long long)q);
    FR_TRY(fr_run_rec_dev_f32(r, name, t->target, 2, R, t->D, 1));
    fr_tensor et = fr_tensor_view(t->e, FR_F64, 1, &R), rt = fr_tensor_view(t->e_ref, FR_F64, 1, &R),
              zt = fr_tensor_view(t->z, FR_F64, 1, &nn);
    snprintf(name, sizeof name, "b%lld.e", (long long)q);
    FR_TRY(fr_run_rec_tensor(r, name, &et));
    snprintf(name, sizeof name, "b%lld.e_ref", (long long)q);
    FR_TRY(fr_run_rec_tensor(r, name, &rt));
    snprintf(name, sizeof name, "b%lld.z", (long long)q);
    FR_TRY(fr_run_rec_tensor(r, name, &zt));
    snprintf(name, sizeof name, "b%lld.loss", (long long)q);
    return fr_run_rec_scalar(r, name, (float)loss);
}

static fr_status update_batch(fr_run *r, smpo_state *t, int64_t q, int64_t j0, int64_t n, epoch_stats *es)
{
    if (n == 0) return FR_OK;
    const int64_t R = 2 * n;
    float *x_inv;
    FR_TRY(batch_rows(r, t, j0, n));
    FR_TRY(invert(r, t, n, &x_inv));
    FR_TRY(fr_model_forward(&r->pol, r->be, &t->ws, R, x_inv, t->d_tin, t->c, t->v));
    FR_TRY(fr_model_forward(&r->ref, r->be, &t->ws_ref, R, x_inv, t->d_tin, t->c, t->v_ref));
    fr_pair_dpo_stats st;
    FR_TRY(fr_smpo_rows(r->be, n, t->D, t->o.beta_dpo, t->pp + j0, t->v, t->v_ref, t->target,
                        1.0 / (double)r->o->c.grad_accum, t->gv, t->e, t->e_ref, t->z, &st));
    if (!isfinite(st.loss))
        return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: SmPO loss %g in micro-batch %lld: the policy diverged",
                       (long long)r->epoch + 1, st.loss, (long long)q);
    FR_TRY(fr_model_backward(&r->pol, r->be, &t->ws, t->gv, NULL));
    FR_TRY(rec_batch(r, t, q, n, st.loss));
    double psum = 0.0;
    for (int64_t i = 0; i < n; i++) psum += t->pp[j0 + i];
    es->loss += st.loss;
    es->z_mean += st.z_mean;
    es->acc += st.acc;
    es->e_w += st.e_w;
    es->e_l += st.e_l;
    es->e_ref_w += st.e_ref_w;
    es->e_ref_l += st.e_ref_l;
    es->p += psum / (double)n;
    es->n++;
    return FR_OK;
}

static fr_status smpo_epoch(fr_run *r, void *state)
{
    smpo_state *t = state;
    const int64_t nbt = r->o->c.num_batches, ga = r->o->c.grad_accum, n = t->n_epoch;
    FR_TRY(epoch_pairs(r, t));
    fr_run_metric(r, "pairs", (double)n);
    epoch_stats es = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    int64_t u = 0;
    float gn = NAN;
    for (int64_t q0 = 0; q0 < nbt; q0 += ga, u++) {
        fr_model_zero_grad(&r->pol, r->be);
        for (int64_t q = q0; q < q0 + ga; q++)
            FR_TRY(update_batch(r, t, q, q * n / nbt, (q + 1) * n / nbt - q * n / nbt, &es));
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
    fr_run_metric(r, "p_mean", es.p / m);
    fr_run_metric(r, "grad_norm", gn);
    fr_run_metric(r, "updates", (double)u);
    fr_run_metric(r, "scored", 0.0); /* no reward is computed: the file's scores label the pairs */
    return FR_OK;
}

/* The preference file's digest: a resume must read the same pairs and scores. */
static fr_status smpo_save(fr_run *r, void *state, fr_st_file *f)
{
    (void)r;
    return fr_st_set_meta(f, "smpo.prefs_digest", ((smpo_state *)state)->file_digest);
}

static fr_status smpo_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    (void)r;
    smpo_state *t = state;
    const char *d = fr_st_get_meta(f, "smpo.prefs_digest");
    if (!d || strcmp(d, t->file_digest) != 0)
        return fr_fail(FR_ERR_MISMATCH, "%s: metadata 'smpo.prefs_digest' = '%s', but --prefs %s has digest %s: not the "
                       "preference file the run trained on", path, d ? d : "(missing)", t->o.prefs, t->file_digest);
    return FR_OK;
}

static void smpo_header(fr_run *r, void *state)
{
    smpo_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "%lld pairs from %s (digest %s), scores in [%g, %g]; %lld pairs per epoch in %lld batches, grad "
                "accum %lld", (long long)t->n_file, t->o.prefs, t->file_digest, t->score_lo, t->score_hi,
                (long long)t->n_epoch, (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
    fr_run_info(r, "beta_dpo %g; one t of U{0..%lld} per pair; DDIM inversion by the policy over {%lld, %lld, ...} "
                "(%lld steps, one ReNoise average each)", t->o.beta_dpo, (long long)t->n_train - 1, (long long)t->tau[0],
                (long long)(t->tau[0] + t->delta), (long long)t->o.inversion_steps);
}

/* ---- options and the registry row ---------------------------------------------------------- */

#define O smpo_opts
static const fr_opt k_rows[] = {
    FR_OPT_STR(O, prefs, "prefs", "", "preference file (flowrl prefs make; required): its scores smooth the labels",
               FR_OPT_PATH),
    FR_OPT_F64(O, beta_dpo, "beta_dpo", "2000", 0, 1e9, "beta of the DPO sigmoid (SD1.5 2000, SDXL 5000)", 0),
    FR_OPT_I64(O, inversion_steps, "inversion_steps", "5", 1, 1000,
               "steps of the inverse DDIM grid (SD1.5 5: {1, 201, ..., 801}; SDXL 10)", 0),
};
#undef O

/* Diffusion-DPO's gmm2d defaults (docs/algorithms/dpo.md §3; AdamW weight decay 1e-2 and clip 1 are
 * SMPO's train.py defaults too), β 2000 and 5 inversion steps of examples/sd15.sh. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->smp.sampler = FR_SAMPLER_DDIM; /* evaluation only */
    ro->smp.noise_level = 1.0f;
    ro->smp.num_steps = 10;
    ro->c.prompts = 8;
    ro->c.group = 8;
    ro->c.num_batches = 1;
    ro->c.grad_accum = 1;
    ro->c.beta = 0.0f;
    ro->opt.lr = 1e-3;
    ro->opt.weight_decay = 1e-2;
    ro->opt.max_grad_norm = 1.0f;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const smpo_opts *o = ao;
    if (!o->prefs[0])
        return fr_fail(FR_ERR_ARG, "train: smpo: --prefs FILE is required (pairs of the task with their scores: flowrl "
                                   "prefs make --ckpt BASE --pairs N --out FILE)");
    if (ro->c.beta != 0.0f)
        return fr_fail(FR_ERR_ARG, "train: smpo: --beta %g, expected 0 (no KL term; the DPO beta is --beta-dpo)",
                       (double)ro->c.beta);
    const int64_t n = ro->c.prompts * ro->c.group;
    if (n % 2 != 0 || (n / 2) % ro->c.num_batches != 0)
        return fr_fail(FR_ERR_ARG, "train: smpo: --prompts x --group = %lld samples, expected an even count whose %lld "
                       "pairs split into --num-batches %lld", (long long)n, (long long)(n / 2), (long long)ro->c.num_batches);
    return FR_OK;
}

static int needs_ref(const fr_run_opts *ro, const void *ao)
{
    (void)ro;
    (void)ao;
    return 1; /* the frozen reference of the error difference */
}

/* 4 pairs in two micro-batches of one optimiser step each (the second inverts with a moved policy) */
static void tiny(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->smp.num_steps = 4;
    ro->c.prompts = 4;
    ro->c.group = 2;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 1;
    ro->opt.lr = 3e-3;
}

static const char *const k_progress[] = {"loss", "implicit_acc", "p_mean", NULL};

const fr_algo fr_algo_smpo = {
    .name = "smpo",
    .summary = "SmPO: Diffusion-DPO with labels smoothed by the pairs' scores and noise from a DDIM (ReNoise) inversion",
    .doc = "docs/algorithms/smpo.md",
    .help = "Smoothed Preference Optimization (arXiv 2506.02698; as the public SmPO train.py does it) on an epsilon\n"
            "base, offline from a preference file (--prefs): each pair's label is p = softmax of its min-max\n"
            "normalised scores (the file's r_w, r_l in place of PickScore; the range is the file's [flowrl\n"
            "choice]); per pair one DDPM time t; each sample's noise comes from a DDIM inversion by the policy over\n"
            "the inverse grid below t with one ReNoise average per step, eps~ = (x_inv - sqrt(ab_t) x0)/sqrt(1 -\n"
            "ab_t); the loss -log sigmoid(-(beta/2)(2p - 1)10 ((e_w - e_l) - (e_ref_w - e_ref_l))) at (x_inv, t).\n"
            "Quirks kept: x_inv sits at the level of the last inverse step, the network is told t; w and l get\n"
            "different noises. The inverse step is current diffusers' (the pinned 0.20.0's is [unverified]).",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(smpo_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = needs_ref,
    .setup = smpo_setup,
    .header = smpo_header,
    .epoch = smpo_epoch,
    .save = smpo_save,
    .load = smpo_load,
    .progress_keys = k_progress,
    .free = smpo_free,
    .tiny = tiny,
    .base_pred = FR_PRED_EPSILON,
    .prefs = FR_ALGO_PREFS_REQUIRED,
};
