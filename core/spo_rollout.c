/* SPO's step-wise rollout (flowrl/spo.h; docs/algorithms/spo.md §1): a DDIM chain per prompt
 * sample; from the divert step on, K candidates per step from the shared state, scored by the
 * reward of their x̂0, best and worst kept by the margin rule, the chain continuing from a
 * random candidate. */
#include "flowrl/spo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rollout_internal.h"
#include "flowrl/cond.h"
#include "flowrl/detmath.h"
#include "flowrl/guidance.h"
#include "flowrl/philox.h"
#include "flowrl/sampler.h"

/* Bounds that keep every sample id s·K + q below 2^32 and the candidate rows below 2^31. */
#define MAX_CANDIDATES 256

fr_status fr_spo_cfg_check(const fr_spo_cfg *c, int64_t T)
{
    if (!c) return fr_fail(FR_ERR_ARG, "spo: NULL config");
    if (c->candidates < 2 || c->candidates > MAX_CANDIDATES)
        return fr_fail(FR_ERR_ARG, "spo: candidates %lld, expected 2 .. %d", (long long)c->candidates, MAX_CANDIDATES);
    if (c->divert < 0 || c->divert >= T)
        return fr_fail(FR_ERR_ARG, "spo: divert step %lld, expected 0 .. %lld (the steps - 1)", (long long)c->divert,
                       (long long)(T - 1));
    if (!(c->threshold >= 0.0f && c->threshold < 1.0f))
        return fr_fail(FR_ERR_ARG, "spo: threshold %g, expected in [0, 1)", (double)c->threshold);
    return FR_OK;
}

int fr_spo_keep(float s_best, float s_worst, float threshold)
{
    /* torch's softmax over [s_best, s_worst]: exp(s − max) / sum, max = s_best */
    const float e0 = fr_expf(s_best - s_best), e1 = fr_expf(s_worst - s_best), sum = e0 + e1;
    return e0 / sum - e1 / sum > threshold;
}

void fr_spo_rank(int64_t K, const float *score, int64_t *best, int64_t *worst)
{
    int64_t b = 0, w = 0;
    for (int64_t q = 1; q < K; q++) {
        if (score[q] > score[b]) b = q;
        if (score[q] <= score[w]) w = q;
    }
    *best = b;
    *worst = w;
}

int64_t fr_spo_choice(uint32_t seed, uint32_t c0, uint32_t s, int64_t j, int64_t K)
{
    return (int64_t)(fr_rng_u32(seed, FR_RNG_SPO_CHOICE, c0, s, (uint32_t)j, 0) % (uint32_t)K);
}

int64_t fr_spo_nfe(const fr_rollout_cfg *rc, const fr_spo_cfg *sc, int64_t C)
{
    const int64_t rows = C * (sc->divert + 1) + C * sc->candidates * (rc->T - 1 - sc->divert);
    return fr_guidance_from_scale(rc->cfg).on ? 2 * rows : rows;
}

/* ---- the rollout ------------------------------------------------------------------------- */

typedef struct {
    fr_guided_ws g;
    /* backend: chain states and predictions (C, D); candidates (KC, D) each: the shared state
     * and prediction, the noise, the candidates, their μ, their predictions, their x̂0; (KC,)
     * log-probs; the noise ids of the chains (C,) and of the candidates (KC,); the gather
     * indices that never change, uploaded once (dup (2C,): row 2c, 2c + 1 <- c; rep (KC,): row
     * c·K + q <- c), and those of a step (sel (3C,): best, worst of each chain, then next) */
    float *x, *eps, *xk, *ek, *xi, *xn, *mk, *en, *x0, *lk;
    uint32_t *id_chain, *id_cand;
    int32_t *idx_dup, *idx_rep, *idx_sel;
    void *blk;
    /* host: scores (KC,), prompts (KC,), indices (max(KC, 2C),), ids, conditions */
    float *sc_h;
    int *pid_k;
    int32_t *idx_h, *c;
    uint32_t *id_h;
    void *hblk;
} bufs;

/* A block of C chains [c0, c0 + C) of Ct, run through every step before the next block (so a
 * forward's condition ids repeat step after step and cross once: fr_guided_forward). */
typedef struct {
    const fr_model *m;
    fr_backend *be;
    const fr_task *task;
    const fr_rollout_cfg *rc;
    const fr_spo_cfg *sc;
    int64_t C, K, D, cap, Ct, c0;
    const int *pid;       /* (C,) the block's */
    const uint32_t *sid;  /* (C,) the block's */
    fr_spo_score_fn score;
    void *user;
    const fr_spo_out *out;
} ctx;

static void bufs_free(fr_backend *be, bufs *w)
{
    fr_guided_ws_free(&w->g);
    fr_dev_free(be, w->blk);
    free(w->hblk);
    memset(w, 0, sizeof *w);
}

static fr_status bufs_alloc(const ctx *cx, bufs *w)
{
    memset(w, 0, sizeof *w);
    const int64_t C = cx->C, KC = cx->K * C, D = cx->D, S = cx->m->cfg.n_slots;
    const int64_t ni = 2 * C + KC; /* >= 3C: the fixed indices at once, or a step's */
    w->blk = fr_dev_alloc(cx->be, (size_t)((2 * C + 7 * KC) * D + KC) * sizeof(float) +
                                      (size_t)(C + KC) * sizeof(uint32_t) + (size_t)(5 * C + KC) * sizeof(int32_t));
    w->hblk = fr_malloc((size_t)KC * sizeof(float) + (size_t)KC * sizeof(int) +
                        (size_t)(ni + cx->cap * S) * sizeof(int32_t) + (size_t)KC * sizeof(uint32_t));
    if (!w->blk || !w->hblk) {
        bufs_free(cx->be, w);
        return FR_ERR_NOMEM;
    }
    float *f = w->blk; /* slices (pointer arithmetic only: the host never reads backend memory) */
    w->x = f, f += C * D;
    w->eps = f, f += C * D;
    float **cand[] = {&w->xk, &w->ek, &w->xi, &w->xn, &w->mk, &w->en, &w->x0};
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) *cand[i] = f, f += KC * D;
    w->lk = f, f += KC;
    w->id_chain = (uint32_t *)f;
    w->id_cand = w->id_chain + C;
    w->idx_dup = (int32_t *)(w->id_cand + KC);
    w->idx_rep = w->idx_dup + 2 * C;
    w->idx_sel = w->idx_rep + KC;
    float *h = w->hblk;
    w->sc_h = h, h += KC;
    w->pid_k = (int *)h;
    w->idx_h = (int32_t *)(w->pid_k + KC);
    w->c = w->idx_h + ni;
    w->id_h = (uint32_t *)(w->c + cx->cap * S);
    fr_status s = fr_guided_ws_alloc(&w->g, cx->be, cx->m, cx->cap, fr_guidance_from_scale(cx->rc->cfg), 0);
    if (s != FR_OK) bufs_free(cx->be, w);
    return s;
}

/* out (n, D) = the guided prediction of x (n, D) at the time input of step i, prompts pid (n,),
 * cap rows per forward (the forward is row-independent: flowrl/model.h). */
static fr_status predict(const ctx *cx, bufs *w, int64_t n, const float *x, int64_t i, const int *pid, float *out)
{
    const int64_t D = cx->D;
    const float t_in = fr_rollout_time(cx->rc, i);
    for (int64_t r0 = 0; r0 < n; r0 += cx->cap) {
        const int64_t b = n - r0 < cx->cap ? n - r0 : cx->cap;
        FR_TRY(fr_cond_ids(cx->task, b, pid + r0, w->c));
        FR_TRY(fr_guided_forward(cx->m, cx->be, &w->g, b, x + r0 * D, t_in, w->c, out + r0 * D));
    }
    return FR_OK;
}

/* Step j's outputs: traj[j + 1] rows 2c, 2c + 1 = the chain's new state w->x; x_next, mean and
 * logp rows 2c, 2c + 1 = the rows of (xn, mk, lk) (src_rows of them) that w->idx_sel[0, 2C) names. */
static void write_step(const ctx *cx, bufs *w, int64_t j, int64_t src_rows)
{
    const fr_spo_out *o = cx->out;
    const fr_ops *ops = cx->be->ops;
    const int64_t C = cx->C, D = cx->D, N = 2 * C, Nt = 2 * cx->Ct, r0 = 2 * cx->c0;
    ops->gather_rows(N, D, w->idx_dup, C, w->x, o->traj + ((j + 1) * Nt + r0) * D);
    ops->gather_rows(N, D, w->idx_sel, src_rows, w->xn, o->x_next + (j * Nt + r0) * D);
    ops->gather_rows(N, D, w->idx_sel, src_rows, w->mk, o->mean + (j * Nt + r0) * D);
    ops->gather_rows(N, 1, w->idx_sel, src_rows, w->lk, o->logp + j * Nt + r0);
}

/* A step j < divert: the chains' DDIM step with their own noise (fr_rollout's, sample id s·K). */
static fr_status plain_step(const ctx *cx, bufs *w, int64_t j)
{
    const fr_rollout_cfg *rc = cx->rc;
    const int64_t C = cx->C, D = cx->D;
    const fr_step p = fr_rollout_step(rc, j);
    FR_TRY(predict(cx, w, C, w->x, j, cx->pid, w->eps));
    cx->be->ops->rng_normal_rows(C, D, rc->seed, FR_RNG_SAMPLER_NOISE, rc->c0, C, w->id_chain, (uint32_t)j, w->xi);
    FR_TRY(fr_sampler_step(cx->be, &p, C, D, w->x, w->eps, NULL, w->xi, w->xn, w->mk, w->lk, NULL));
    FR_TRY(fr_d2d(cx->be, w->x, w->xn, (size_t)(C * D) * sizeof(float)));
    const int64_t at = j * cx->Ct + cx->c0; /* (j, c0) in the (T, Ct) outputs */
    for (int64_t q = 0; q < 3 * C; q++) cx->out->pick[at * 3 + q] = -1;
    for (int64_t q = 0; q < C * cx->K; q++) cx->out->score[at * cx->K + q] = NAN;
    memset(cx->out->kept + at, 0, (size_t)C);
    write_step(cx, w, j, C); /* idx_sel = dup: both rows the chain's */
    return FR_OK;
}

/* A step j >= divert: K candidates per chain from its state and prediction (w->x, w->eps),
 * scored, ranked, the pair kept or not, the chain continued. Candidate rows r = c·K + q. */
static fr_status branch_step(const ctx *cx, bufs *w, int64_t j)
{
    const fr_rollout_cfg *rc = cx->rc;
    fr_backend *be = cx->be;
    const int64_t C = cx->C, K = cx->K, KC = K * C, D = cx->D, T = rc->T;
    const fr_spo_out *o = cx->out;
    const fr_step p = fr_rollout_step(rc, j);
    be->ops->gather_rows(KC, D, w->idx_rep, C, w->x, w->xk);
    be->ops->gather_rows(KC, D, w->idx_rep, C, w->eps, w->ek);
    be->ops->rng_normal_rows(KC, D, rc->seed, FR_RNG_SAMPLER_NOISE, rc->c0, KC, w->id_cand, (uint32_t)j, w->xi);
    FR_TRY(fr_sampler_step(be, &p, KC, D, w->xk, w->ek, NULL, w->xi, w->xn, w->mk, w->lk, NULL));
    const float *x0 = w->xn; /* the last step's candidates are samples */
    if (j + 1 < T) {
        /* x̂0 of each candidate at step j + 1: the mean of a DDIM step to ᾱ_prev = 1, η = 0 */
        fr_step q = fr_rollout_step(rc, j + 1);
        q.alpha_bar_prev = 1.0f;
        q.noise = 0.0f;
        FR_TRY(predict(cx, w, KC, w->xn, j + 1, w->pid_k, w->en));
        FR_TRY(fr_sampler_mean(be, &q, KC, D, w->xn, w->en, NULL, w->x0));
        x0 = w->x0;
    }
    FR_TRY(cx->score(cx->user, KC, w->pid_k, x0, w->sc_h));
    const int64_t at = j * cx->Ct + cx->c0;
    float *sc = o->score + at * K;
    for (int64_t r = 0; r < KC; r++) {
        if (!isfinite(w->sc_h[r]))
            return fr_fail(FR_ERR_NUMERIC, "spo: step %lld, chain %lld, candidate %lld: reward %g, expected a finite value",
                           (long long)j, (long long)(r / K), (long long)(r % K), (double)w->sc_h[r]);
        sc[r] = w->sc_h[r];
    }
    for (int64_t c = 0; c < C; c++) {
        int64_t best, worst;
        fr_spo_rank(K, sc + c * K, &best, &worst);
        const int64_t next = fr_spo_choice(rc->seed, rc->c0, cx->sid[c], j, K);
        int64_t *pk = o->pick + (at + c) * 3;
        pk[0] = best, pk[1] = worst, pk[2] = next;
        o->kept[at + c] = (uint8_t)fr_spo_keep(sc[c * K + best], sc[c * K + worst], cx->sc->threshold);
        w->idx_h[2 * c] = (int32_t)(c * K + best);
        w->idx_h[2 * c + 1] = (int32_t)(c * K + worst);
        w->idx_h[2 * C + c] = (int32_t)(c * K + next);
    }
    FR_TRY(fr_h2d(be, w->idx_sel, w->idx_h, (size_t)(3 * C) * sizeof *w->idx_h));
    be->ops->gather_rows(C, D, w->idx_sel + 2 * C, KC, w->xn, w->x);
    if (j + 1 < T) be->ops->gather_rows(C, D, w->idx_sel + 2 * C, KC, w->en, w->eps);
    write_step(cx, w, j, KC);
    return FR_OK;
}

static fr_status run(const ctx *cx, bufs *w)
{
    const fr_rollout_cfg *rc = cx->rc;
    const int64_t C = cx->C, K = cx->K, D = cx->D, N = 2 * C;
    for (int64_t c = 0; c < C; c++) {
        w->id_h[c] = cx->sid[c] * (uint32_t)K;
        for (int64_t q = 0; q < K; q++) w->pid_k[c * K + q] = cx->pid[c];
    }
    FR_TRY(fr_h2d(cx->be, w->id_chain, w->id_h, (size_t)C * sizeof *w->id_h));
    for (int64_t r = 0; r < K * C; r++) w->id_h[r] = cx->sid[r / K] * (uint32_t)K + (uint32_t)(r % K);
    FR_TRY(fr_h2d(cx->be, w->id_cand, w->id_h, (size_t)(K * C) * sizeof *w->id_h));
    /* the fixed gather indices, and idx_sel = dup for the steps before the divert step */
    for (int64_t c = 0; c < C; c++) w->idx_h[2 * c] = w->idx_h[2 * c + 1] = (int32_t)c;
    for (int64_t r = 0; r < K * C; r++) w->idx_h[2 * C + r] = (int32_t)(r / K);
    FR_TRY(fr_h2d(cx->be, w->idx_dup, w->idx_h, (size_t)(2 * C + K * C) * sizeof *w->idx_h));
    FR_TRY(fr_d2d(cx->be, w->idx_sel, w->idx_dup, (size_t)(2 * C) * sizeof *w->idx_h));
    cx->be->ops->rng_normal_rows(C, D, rc->seed, FR_RNG_SAMPLER_INIT, rc->c0, C, w->id_chain, 0, w->x);
    cx->be->ops->gather_rows(N, D, w->idx_dup, C, w->x, cx->out->traj + 2 * cx->c0 * D);
    for (int64_t j = 0; j < rc->T; j++) {
        if (j < cx->sc->divert) {
            FR_TRY(plain_step(cx, w, j));
            continue;
        }
        if (j == cx->sc->divert) FR_TRY(predict(cx, w, C, w->x, j, cx->pid, w->eps));
        FR_TRY(branch_step(cx, w, j));
    }
    return fr_d2d(cx->be, cx->out->x + cx->c0 * D, w->x, (size_t)(C * D) * sizeof(float));
}

fr_status fr_spo_rollout(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *rc,
                         const fr_spo_cfg *sc, int64_t C, const int *prompt_ids, const uint32_t *sample_ids,
                         fr_spo_score_fn score, void *user, const fr_spo_out *out)
{
    if (!m || !be || !task || !rc || !score || !out || !out->traj || !out->x_next || !out->mean || !out->logp ||
        !out->x || !out->score || !out->pick || !out->kept || (C > 0 && (!prompt_ids || !sample_ids)))
        return fr_fail(FR_ERR_ARG, "spo rollout: NULL model, backend, task, config, score, output or ids");
    FR_TRY(fr_rollout_check_cfg(m, task, rc));
    if (rc->kind != FR_SAMPLER_DDIM || !(rc->noise > 0.0f))
        return fr_fail(FR_ERR_ARG, "spo rollout: needs the ddim sampler with eta > 0, not %s with %g",
                       fr_sampler_name(rc->kind), (double)rc->noise);
    if (rc->step_noise || rc->n_branch > 0 || rc->x_T_key != FR_XT_SAMPLE || rc->dpm_from > 0)
        return fr_fail(FR_ERR_ARG, "spo rollout: per-step noise levels, shared noise and trees are not supported");
    FR_TRY(fr_spo_cfg_check(sc, rc->T));
    if (C < 0 || C * sc->candidates > INT32_MAX)
        return fr_fail(FR_ERR_ARG, "spo rollout: %lld chains of %lld candidates, expected at most 2^31 rows",
                       (long long)C, (long long)sc->candidates);
    for (int64_t c = 0; c < C; c++)
        if ((uint64_t)sample_ids[c] * (uint64_t)sc->candidates + (uint64_t)sc->candidates > UINT32_MAX)
            return fr_fail(FR_ERR_ARG, "spo rollout: sample id %u times %lld candidates exceeds 2^32", sample_ids[c],
                           (long long)sc->candidates);
    if (C == 0) return FR_OK;
    /* blocks of the chains whose K·cb candidates fit one forward of rc->batch rows */
    const int64_t K = sc->candidates, KC = C * K, cap = rc->batch > 0 && rc->batch < KC ? rc->batch : KC;
    const int64_t cb = cap / K > 0 ? cap / K : 1;
    ctx cx = {m, be, task, rc, sc, cb < C ? cb : C, K, m->cfg.D, cap, C, 0, prompt_ids, sample_ids, score, user, out};
    bufs w;
    FR_TRY(bufs_alloc(&cx, &w));
    fr_status s = FR_OK;
    for (int64_t c0 = 0; c0 < C && s == FR_OK; c0 += cb) {
        cx.c0 = c0;
        cx.C = C - c0 < cb ? C - c0 : cb;
        cx.pid = prompt_ids + c0;
        cx.sid = sample_ids + c0;
        s = run(&cx, &w);
    }
    bufs_free(be, &w);
    return s;
}
