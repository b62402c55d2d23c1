/* One (micro-batch, step) of trajectory-PPO training (flowrl/traj_objective.h; the chain
 * of flowrl/grpo.h, docs/algorithms/flow-grpo.md §2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/cond.h"
#include "flowrl/traj_objective.h"

void fr_traj_ws_free(fr_traj_ws *w)
{
    fr_guided_ws_free(&w->pol);
    if (w->have_ref) fr_guided_ws_free(&w->ref);
    if (w->be) fr_dev_free(w->be, w->dblk);
    free(w->blk);
    memset(w, 0, sizeof *w);
}

/* The trainer runs the frozen reference: for the KL (β > 0) or for the objective's logp_ref. */
static int fr_traj_wants_ref(const fr_traj_trainer *tr)
{
    return tr->beta > 0.0f || tr->objective->wants_logp_ref;
}

fr_status fr_traj_ws_alloc(fr_traj_ws *w, const fr_traj_trainer *tr, int64_t cap)
{
    memset(w, 0, sizeof *w);
    if (!tr || !tr->policy || !tr->be || !tr->objective || !(tr->beta >= 0.0f) || fr_traj_wants_ref(tr) != !!tr->ref)
        return fr_fail(FR_ERR_ARG, "fr_traj_ws_alloc: NULL policy, be or objective, or beta %g without a reference "
                                   "(or a reference with beta 0 and an objective that does not want logp_ref)",
                       tr ? (double)tr->beta : 0.0);
    if (cap < 1 || cap > (int64_t)1 << 30)
        return fr_fail(FR_ERR_ARG, "fr_traj_ws_alloc: capacity %lld rows, expected 1 .. 2^30", (long long)cap);
    const int64_t D = tr->policy->cfg.D, S = tr->policy->cfg.n_slots;
    w->cap = cap;
    w->D = D;
    w->S = S;
    w->be = tr->be;
    /* backend: 9 arrays of (cap, D), 4 of (cap,), the row indices (cap,); host: 5 of (cap,),
     * the prompt ids, the row indices, the condition ids (cap, S) (fr_guided_forward copies
     * them in when they change) */
    w->dblk = fr_dev_alloc(tr->be, (size_t)(9 * cap * D + 4 * cap) * sizeof(float) + (size_t)cap * sizeof(int32_t));
    w->blk = fr_malloc((size_t)(5 * cap) * sizeof(float) + (size_t)cap * (sizeof(int) + sizeof(int32_t)) +
                       (size_t)(cap * S) * sizeof(int32_t));
    if (!w->dblk || !w->blk) {
        fr_traj_ws_free(w);
        return FR_ERR_NOMEM;
    }
    /* slices of the blocks (pointer arithmetic only: the host never reads backend memory) */
    float *f = w->dblk;
    float **rows[] = {&w->x, &w->x_next, &w->mean_old, &w->v, &w->mean, &w->g_mean, &w->v_ref, &w->mean_ref, &w->wrow};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) *rows[i] = f, f += cap * D;
    w->dlogp = f;
    w->dscratch = f + cap;
    w->dlogp_ref = f + 2 * cap;
    w->dlogp_old = f + 3 * cap;
    w->didx = (int32_t *)(f + 4 * cap);
    f = w->blk;
    float **vecs[] = {&w->logp_old, &w->adv, &w->logp, &w->scratch, &w->logp_ref};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) *vecs[i] = f, f += cap;
    w->pid = (int *)f;
    w->idx = (int32_t *)(w->pid + cap);
    w->c = w->idx + cap;
    fr_status s = fr_guided_ws_alloc(&w->pol, tr->be, tr->policy, cap, tr->guidance, 1);
    if (s == FR_OK && fr_traj_wants_ref(tr)) {
        s = fr_guided_ws_alloc(&w->ref, tr->be, tr->ref, cap, tr->guidance, 0);
        w->have_ref = s == FR_OK;
    }
    if (s != FR_OK) fr_traj_ws_free(w);
    return s;
}

/* Step 1: the rows of step j (gathered backend to backend by the b row indices, which
 * cross), their per-sample values and condition ids (host), at rows [o, o + b) of w. */
static fr_status gather_at(fr_backend *be, fr_traj_ws *w, const fr_traj_data *d, const int64_t *rows, int64_t b,
                           int64_t j, int64_t o)
{
    const int64_t N = d->N, D = w->D;
    if (N > INT32_MAX) return fr_fail(FR_ERR_ARG, "fr_traj_micro_step: %lld rollout rows, expected < 2^31", (long long)N);
    for (int64_t k = 0; k < b; k++) {
        const int64_t r = rows[k];
        if (r < 0 || r >= N) return fr_fail(FR_ERR_ARG, "fr_traj_micro_step: row %lld outside [0, %lld)", (long long)r,
                                            (long long)N);
        w->idx[o + k] = (int32_t)r;
        w->logp_old[o + k] = d->logp[j * N + r];
        w->adv[o + k] = d->adv[r];
        w->pid[o + k] = d->prompt_ids[r];
    }
    int32_t *didx = w->didx + o;
    FR_TRY(fr_h2d(be, didx, w->idx + o, (size_t)b * sizeof(int32_t)));
    be->ops->gather_rows(b, D, didx, N, d->traj + j * N * D, w->x + o * D);
    be->ops->gather_rows(b, D, didx, N, d->x_next ? d->x_next + j * N * D : d->traj + (j + 1) * N * D,
                         w->x_next + o * D);
    be->ops->gather_rows(b, D, didx, N, d->mean + j * N * D, w->mean_old + o * D);
    if (d->weight) {
        /* the weighted logp_old: the rollout's μ under the rows' weights (flowrl/traj_objective.h) */
        be->ops->gather_rows(b, D, didx, N, d->weight, w->wrow + o * D);
        const fr_step step = fr_rollout_step(d->rc, j);
        FR_TRY(fr_sampler_logprob_w(be, &step, b, D, w->x_next + o * D, w->mean_old + o * D, w->wrow + o * D,
                                    w->dlogp_old + o));
        FR_TRY(fr_d2h(be, w->logp_old + o, w->dlogp_old + o, (size_t)b * sizeof(float)));
    }
    return fr_cond_ids(d->task, b, w->pid + o, w->c + o * w->S);
}

/* logp (b,) backend of rows [o, o + b): mean_D(w·ℓ) with the data's weights, else the plain log-prob;
 * μ (b, D) is computed from v either way. */
static fr_status step_logprob(fr_backend *be, const fr_traj_data *d, const fr_traj_ws *w, const fr_step *step, int64_t b,
                              int64_t o, const float *v, float *mean, float *dlogp)
{
    const int64_t D = w->D;
    if (!d->weight)
        return fr_sampler_logprob(be, step, b, D, w->x + o * D, v + o * D, NULL, w->x_next + o * D, mean + o * D,
                                  dlogp + o);
    FR_TRY(fr_sampler_mean(be, step, b, D, w->x + o * D, v + o * D, NULL, mean + o * D));
    return fr_sampler_logprob_w(be, step, b, D, w->x_next + o * D, mean + o * D, w->wrow + o * D, dlogp + o);
}

/* dL_obj/dμ of a weighted log-prob: the objective's g_μ (b, D) times the rows' weights. */
static void weigh_grad(fr_backend *be, const fr_traj_data *d, const fr_traj_ws *w, int64_t b, int64_t o)
{
    if (d->weight) be->ops->binary(FR_BIN_MUL, b * w->D, w->g_mean + o * w->D, w->wrow + o * w->D, w->g_mean + o * w->D);
}

static fr_status gather(fr_backend *be, fr_traj_ws *w, const fr_traj_data *d, const int64_t *rows, int64_t b, int64_t j)
{
    return gather_at(be, w, d, rows, b, j, 0);
}

static fr_status check_args(const char *fn, const fr_traj_trainer *tr, const fr_traj_ws *w, const fr_traj_data *d,
                            const int64_t *rows, int64_t b, int64_t j, const void *out1, const void *out2)
{
    if (!tr || !w || !w->blk || !w->dblk || !d || !d->rc || !d->traj || !d->mean || !d->logp || !d->adv || !d->prompt_ids ||
        !rows || !out1 || !out2 || b < 1 || b > w->cap || j < 0 || j >= d->rc->T)
        return fr_fail(FR_ERR_ARG, "%s: %lld rows at step %lld (capacity %lld) or a NULL argument", fn, (long long)b,
                       (long long)j, w ? (long long)w->cap : 0LL);
    if (d->weight && tr->objective->no_weights)
        return fr_fail(FR_ERR_ARG, "%s: the %s objective reads the mean itself and takes no per-element weights", fn,
                       tr->objective->name);
    return FR_OK;
}

/* Steps 1–3: gather, the guided forward, μ_θ and logp_θ (to the host, w->logp). */
static fr_status forward_logp(const fr_traj_trainer *tr, fr_traj_ws *w, const fr_traj_data *d, const int64_t *rows,
                              int64_t b, int64_t j, const fr_step *step, float t_in)
{
    fr_backend *be = tr->be;
    FR_TRY(gather(be, w, d, rows, b, j));
    FR_TRY(fr_guided_forward(tr->policy, be, &w->pol, b, w->x, t_in, w->c, w->v));
    FR_TRY(step_logprob(be, d, w, step, b, 0, w->v, w->mean, w->dlogp));
    return fr_d2h(be, w->logp, w->dlogp, (size_t)b * sizeof(float)); /* per-sample, for the PPO core */
}

fr_status fr_traj_logp(const fr_traj_trainer *tr, fr_traj_ws *w, const fr_traj_data *d, const int64_t *rows, int64_t b,
                       int64_t j, float *logp)
{
    FR_TRY(check_args("fr_traj_logp", tr, w, d, rows, b, j, logp, logp));
    const fr_step step = fr_rollout_step(d->rc, j);
    FR_TRY(forward_logp(tr, w, d, rows, b, j, &step, fr_rollout_time(d->rc, j)));
    memcpy(logp, w->logp, (size_t)b * sizeof *logp);
    return FR_OK;
}

fr_status fr_traj_micro_step(const fr_traj_trainer *tr, fr_traj_ws *w, const fr_traj_data *d, const int64_t *rows,
                             int64_t b, int64_t j, float gout, float *ratio, fr_traj_stats *st)
{
    FR_TRY(check_args("fr_traj_micro_step", tr, w, d, rows, b, j, ratio, st));
    const int64_t D = w->D;
    const int with_ref = tr->beta > 0.0f, with_logp_ref = tr->objective->wants_logp_ref;
    memset(st, 0, sizeof *st);
    fr_backend *be = tr->be;
    const fr_step step = fr_rollout_step(d->rc, j);
    const float t_in = fr_rollout_time(d->rc, j);
    FR_TRY(forward_logp(tr, w, d, rows, b, j, &step, t_in));
    if (with_ref || with_logp_ref)
        /* the frozen base under the same guidance (docs/algorithms/flow-grpo.md §2: LoRA off = the base) */
        FR_TRY(fr_guided_forward(tr->ref, be, &w->ref, b, w->x, t_in, w->c, w->v_ref));
    if (with_logp_ref) {
        /* its log-prob of the stored transition by logp_θ's op (and μ_ref with it) */
        FR_TRY(step_logprob(be, d, w, &step, b, 0, w->v_ref, w->mean_ref, w->dlogp_ref));
        FR_TRY(fr_d2h(be, w->logp_ref, w->dlogp_ref, (size_t)b * sizeof(float)));
    } else if (with_ref)
        FR_TRY(fr_sampler_mean(be, &step, b, D, w->x, w->v_ref, NULL, w->mean_ref));

    const fr_traj_batch tb = {b,       D,       step,    w->x,    w->x_next, w->mean_old, w->logp_old, w->adv,
                              w->mean, w->logp, with_ref ? w->mean_ref : NULL, w->scratch, w->dscratch, rows,
                              with_logp_ref ? w->logp_ref : NULL};
    FR_TRY(tr->objective->loss(be, &tb, j, tr->params, gout, w->g_mean, ratio, st));
    weigh_grad(be, d, w, b, 0);
    if (with_ref) {
        float ks;
        FR_TRY(fr_kl_std(&step, tr->kl_form, &ks));
        FR_TRY(fr_kl_loss(be, b, D, ks, w->mean, w->mean_ref, gout * tr->beta, &st->kl, w->g_mean, 1));
    }
    float dm;
    FR_TRY(fr_grpo_dmean_dv(&step, &dm));
    be->ops->scale(b * D, dm, w->g_mean, w->g_mean); /* g_v = g_μ·dμ/dv */
    FR_TRY(fr_guided_backward(tr->policy, be, &w->pol, w->g_mean));

    st->loss = st->obj + tr->beta * st->kl;
    if (!isfinite(st->loss))
        return fr_fail(FR_ERR_NUMERIC, "train: loss %g at step %lld (policy %g, KL %g)", (double)st->loss,
                       (long long)j, (double)st->obj, (double)st->kl);
    return FR_OK;
}

static unsigned long g_fused_calls; /* fr_traj_fused_calls: what the tests read */

unsigned long fr_traj_fused_calls(void) { return g_fused_calls; }

/* The parts of one update in one forward and one backward (flowrl/traj_objective.h): steps 1,
 * 3–6 per part on its slice of rows [o, o + b), steps 2 and 7 once over all of them. */
fr_status fr_traj_fused_step(const fr_traj_trainer *tr, fr_traj_ws *w, const fr_traj_part *parts, int64_t n,
                             float *ratio, fr_traj_stats *st)
{
    if (!tr || !w || !w->blk || !parts || n < 1 || !ratio || !st)
        return fr_fail(FR_ERR_ARG, "fr_traj_fused_step: %lld parts or a NULL argument", (long long)n);
    if (!fr_traj_can_fuse(tr))
        return fr_fail(FR_ERR_ARG, "fr_traj_fused_step: guidance is on in training (one micro-step at a time)");
    const int64_t D = w->D;
    const int with_ref = tr->beta > 0.0f, with_logp_ref = tr->objective->wants_logp_ref;
    fr_backend *be = tr->be;
    int64_t *seg_b = fr_malloc((size_t)n * sizeof *seg_b);
    float *seg_t = fr_malloc((size_t)n * sizeof *seg_t);
    fr_step *steps = fr_malloc((size_t)n * sizeof *steps);
    fr_status s = seg_b && seg_t && steps ? FR_OK : FR_ERR_NOMEM;
    int64_t total = 0;
    for (int64_t k = 0; s == FR_OK && k < n; k++) {
        const fr_traj_part *p = &parts[k];
        s = check_args("fr_traj_fused_step", tr, w, p->d, p->rows, p->b, p->j, ratio, st);
        if (s == FR_OK && p->b > w->cap - total)
            s = fr_fail(FR_ERR_ARG, "fr_traj_fused_step: %lld rows after %lld, capacity %lld", (long long)p->b,
                        (long long)total, (long long)w->cap);
        if (s != FR_OK) break;
        seg_b[k] = p->b;
        seg_t[k] = fr_rollout_time(p->d->rc, p->j);
        steps[k] = fr_rollout_step(p->d->rc, p->j);
        s = gather_at(be, w, p->d, p->rows, p->b, p->j, total);
        total += p->b;
    }
    if (s == FR_OK) s = fr_guided_forward_steps(tr->policy, be, &w->pol, n, seg_b, seg_t, w->x, w->c, w->v);
    for (int64_t k = 0, o = 0; s == FR_OK && k < n; o += seg_b[k], k++)
        s = step_logprob(be, parts[k].d, w, &steps[k], seg_b[k], o, w->v, w->mean, w->dlogp);
    if (s == FR_OK) s = fr_d2h(be, w->logp, w->dlogp, (size_t)total * sizeof(float));
    if (s == FR_OK && (with_ref || with_logp_ref))
        s = fr_guided_forward_steps(tr->ref, be, &w->ref, n, seg_b, seg_t, w->x, w->c, w->v_ref);
    for (int64_t k = 0, o = 0; s == FR_OK && (with_ref || with_logp_ref) && k < n; o += seg_b[k], k++)
        s = with_logp_ref ? step_logprob(be, parts[k].d, w, &steps[k], seg_b[k], o, w->v_ref, w->mean_ref, w->dlogp_ref)
                          : fr_sampler_mean(be, &steps[k], seg_b[k], D, w->x + o * D, w->v_ref + o * D, NULL,
                                            w->mean_ref + o * D);
    if (s == FR_OK && with_logp_ref) s = fr_d2h(be, w->logp_ref, w->dlogp_ref, (size_t)total * sizeof(float));
    for (int64_t k = 0, o = 0; s == FR_OK && k < n; o += seg_b[k], k++) {
        const fr_traj_part *p = &parts[k];
        const int64_t b = seg_b[k];
        fr_traj_stats *sk = &st[k];
        memset(sk, 0, sizeof *sk);
        const fr_traj_batch tb = {b,
                                  D,
                                  steps[k],
                                  w->x + o * D,
                                  w->x_next + o * D,
                                  w->mean_old + o * D,
                                  w->logp_old + o,
                                  w->adv + o,
                                  w->mean + o * D,
                                  w->logp + o,
                                  with_ref ? w->mean_ref + o * D : NULL,
                                  w->scratch + o,
                                  w->dscratch + o,
                                  p->rows,
                                  with_logp_ref ? w->logp_ref + o : NULL};
        s = tr->objective->loss(be, &tb, p->j, tr->params, p->gout, w->g_mean + o * D, ratio + o, sk);
        if (s == FR_OK) weigh_grad(be, p->d, w, b, o);
        if (s == FR_OK && with_ref) {
            float ks;
            s = fr_kl_std(&steps[k], tr->kl_form, &ks);
            if (s == FR_OK)
                s = fr_kl_loss(be, b, D, ks, w->mean + o * D, w->mean_ref + o * D, p->gout * tr->beta, &sk->kl,
                               w->g_mean + o * D, 1);
        }
        float dm;
        if (s == FR_OK) s = fr_grpo_dmean_dv(&steps[k], &dm);
        if (s == FR_OK) be->ops->scale(b * D, dm, w->g_mean + o * D, w->g_mean + o * D);
        sk->loss = sk->obj + tr->beta * sk->kl;
        if (s == FR_OK && !isfinite(sk->loss))
            s = fr_fail(FR_ERR_NUMERIC, "train: loss %g at step %lld (policy %g, KL %g)", (double)sk->loss,
                        (long long)p->j, (double)sk->obj, (double)sk->kl);
    }
    if (s == FR_OK) s = fr_guided_backward(tr->policy, be, &w->pol, w->g_mean);
    if (s == FR_OK && n > 1) g_fused_calls++;
    free(seg_b);
    free(seg_t);
    free(steps);
    return s;
}

int fr_traj_can_fuse(const fr_traj_trainer *tr)
{
    return tr && !tr->guidance.on;
}
