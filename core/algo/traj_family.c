/* The trajectory-GRPO family's shared epoch (core/algo/traj_family.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/traj_family.h"
#include "flowrl/advantage.h"
#include "flowrl/audit.h"
#include "flowrl/philox.h"

void fr_tf_free(fr_tf *t)
{
    if (t->have_ws) fr_traj_ws_free(&t->ws);
    fr_rollout_schedule_free(&t->sched);
    void *dev[] = {t->traj, t->mean, t->logp, t->x, t->x_next, t->weight};
    void *bufs[] = {t->step_noise, t->prompts, t->pid,    t->correct, t->sid,       t->group, t->order, t->logp_h,
                    t->x_h,        t->xi,      t->reward, t->adv,     t->keep,      t->plan_rows, t->micro, t->upd,
                    t->ratios,     t->steps,   t->sel,    t->sel_rows};
    fr_run_free_bufs(t->be, dev, sizeof dev / sizeof dev[0], bufs, sizeof bufs / sizeof bufs[0]);
    memset(t, 0, sizeof *t);
}

fr_status fr_tf_setup(fr_run *r, fr_tf *t, int64_t n_rows, int train_cfg, const fr_traj_objective *obj,
                      const void *prm, fr_kl_form kl_form)
{
    const fr_run_opts *ro = r->o;
    memset(t, 0, sizeof *t);
    t->D = r->pol.cfg.D;
    t->T = ro->smp.num_steps;
    t->G = ro->c.group;
    t->N = n_rows > 0 ? n_rows : ro->c.prompts * ro->c.group;
    const int64_t N = t->N, D = t->D, T = t->T;
    FR_TRY(fr_run_rollout_cfg(r, &t->rc, &t->sched));
    t->tr = (fr_traj_trainer){&r->pol, r->have_ref ? &r->ref : NULL, r->be, {ro->smp.cfg, train_cfg}, obj, prm,
                              ro->c.beta, kl_form};
    FR_TRY(fr_traj_ws_alloc(&t->ws, &t->tr, N));
    t->have_ws = 1;
    t->be = r->be;
    if (!(t->traj = fr_dev_floats(r->be, (T + 1) * N * D)) || !(t->mean = fr_dev_floats(r->be, T * N * D)) ||
        !(t->logp = fr_dev_floats(r->be, T * N)) || !(t->x = fr_dev_floats(r->be, N * D)))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->step_noise, T) || !FR_ALLOC(t->prompts, ro->c.prompts) || !FR_ALLOC(t->pid, N) ||
        !FR_ALLOC(t->correct, N) || !FR_ALLOC(t->sid, N) || !FR_ALLOC(t->group, N) || !FR_ALLOC(t->order, N) ||
        !FR_ALLOC(t->logp_h, T * N) || !FR_ALLOC(t->x_h, N * D) || !FR_ALLOC(t->xi, T * N * D) ||
        !FR_ALLOC(t->reward, N) || !FR_ALLOC(t->adv, N) || !FR_ALLOC(t->keep, N))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* ξ of every step by coordinate, as fr_rollout draws it (owner's row; zero where it draws
 * none), for the audit record: on a host backend the rollout writes it (fr_rollout_traj.xi:
 * the rollout's own draws, copied); a device backend's is drawn again on the host, so that it
 * never crosses. */
typedef struct {
    const fr_tf *t;
    uint32_t seed;
    const uint8_t *zero; /* (T,): 1 where the step's std is 0 */
} regen_job;

/* Row s of step i (job i·N + s): the normals the rollout drew, or zeros. */
static void regen_row(void *ctx, int64_t q)
{
    const regen_job *j = ctx;
    const fr_tf *t = j->t;
    const int64_t N = t->N, D = t->D, i = q / N, s = q % N;
    float *dst = t->xi + q * D;
    if (j->zero[i])
        memset(dst, 0, (size_t)D * sizeof *dst);
    else
        fr_rng_fill_normal(dst, D, j->seed, FR_RNG_SAMPLER_NOISE, t->rc.c0, fr_rollout_noise_owner(&t->rc, t->sid[s], i),
                           (uint32_t)i);
}

/* The rows are independent (each a function of its coordinates): they run on the backend's
 * host threads (fr_host_for). */
static fr_status regen_noise(const fr_run *r, fr_tf *t)
{
    const int64_t T = t->rc.T;
    uint8_t *zero = fr_malloc((size_t)(T ? T : 1));
    if (!zero) return FR_ERR_NOMEM;
    fr_status s = FR_OK;
    for (int64_t i = 0; i < T && s == FR_OK; i++) {
        fr_step p = fr_rollout_step(&t->rc, i);
        fr_step_std sd;
        s = fr_sampler_std(&p, &sd);
        zero[i] = sd.std == 0.0f;
    }
    if (s == FR_OK) {
        const regen_job j = {t, r->o->run.seed, zero};
        fr_host_for(r->be, T * t->N, regen_row, (void *)&j);
    }
    free(zero);
    return s;
}

fr_status fr_tf_rollout(fr_run *r, fr_tf *t, const float *x_init)
{
    const int64_t N = t->N, D = t->D, T = t->rc.T, G = t->G; /* T: this epoch's rollout (<= t->T) */
    FR_TRY(fr_run_prompts(r, t->prompts));
    for (int64_t s = 0; s < N; s++) {
        t->pid[s] = t->prompts[s / G];
        t->sid[s] = (uint32_t)s;
        t->group[s] = t->pid[s];
    }
    t->rc.c0 = (uint32_t)r->epoch;
    if (!x_init && t->make_x_init) FR_TRY(t->make_x_init(r, t, t->hook_ctx, &x_init));
    /* an epoch without a stochastic step (MixGRPO's empty window at cur = T − 2) has no
     * log-probs: they are 0, as the rollout writes them at deterministic steps */
    float level = t->rc.step_noise ? 0.0f : t->rc.noise;
    for (int64_t i = 0; t->rc.step_noise && i < T; i++)
        if (t->rc.step_noise[i] > level) level = t->rc.step_noise[i];
    /* host memory is backend memory on a host backend: the rollout writes ξ there */
    const int xi_by_rollout = !r->be->ops->device;
    fr_rollout_traj tj = {t->traj, t->mean, level > 0.0f ? t->logp : NULL, NULL, xi_by_rollout ? t->xi : NULL};
    if (x_init)
        FR_TRY(fr_rollout(&r->pol, r->be, r->task, &t->rc, N, t->pid, t->sid, x_init, t->x, &tj));
    else
        FR_TRY(fr_run_rollout(r, &r->pol, &t->rc, N, t->pid, t->sid, t->x, &tj));
    /* what crosses: the final samples (the reward's input) and the old log-probs (the PPO
     * core's) once; the trajectory and the means only for their audit digests */
    FR_TRY(fr_run_reward_input(r, t->x_h, t->x, N * D));
    if (tj.logp)
        FR_TRY(fr_d2h(r->be, t->logp_h, t->logp, (size_t)(T * N) * sizeof(float)));
    else
        memset(t->logp_h, 0, (size_t)(T * N) * sizeof *t->logp_h);
    FR_TRY(fr_run_check_finite(r, "rollout sample", t->x_h, N * D));
    if (!xi_by_rollout) FR_TRY(regen_noise(r, t));
    /* one batch: on a host backend their digests run on the backend's threads */
    const fr_run_rec_item rec[] = {
        {"noise.x_T", fr_tensor_f32(t->traj, 2, (int64_t[]){N, D}), 1},
        {"noise.xi", fr_tensor_f32(t->xi, 3, (int64_t[]){T, N, D}), 0},
        {"traj", fr_tensor_f32(t->traj, 3, (int64_t[]){T + 1, N, D}), 1},
        {"mean", fr_tensor_f32(t->mean, 3, (int64_t[]){T, N, D}), 1},
        {"logp_old", fr_tensor_f32(t->logp_h, 2, (int64_t[]){T, N}), 0},
    };
    FR_TRY(fr_run_rec_many(r, (int)(sizeof rec / sizeof rec[0]), rec));
    return fr_run_rewards(r, N, t->pid, t->x_h, t->reward, t->correct);
}

/* ---- the plan -------------------------------------------------------------------------- */

/* Grows *p (elements of size sz, capacity *cap) to hold n. */
static int grow(void **p, int64_t *cap, int64_t n, size_t sz)
{
    if (n <= *cap) return 1;
    int64_t c = *cap ? *cap : 16;
    while (c < n) c *= 2;
    void *q = realloc(*p, (size_t)c * sz);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}

void fr_tf_plan_reset(fr_tf *t)
{
    t->n_plan_rows = t->n_micro = t->n_upd = 0;
}

fr_status fr_tf_plan_update(fr_tf *t, int nd, int64_t d0, int64_t d1, int64_t d2)
{
    if (nd < 1 || nd > 3) return fr_fail(FR_ERR_ARG, "fr_tf_plan_update: %d dims, expected 1..3", nd);
    if (!grow((void **)&t->upd, &t->cap_upd, t->n_upd + 1, sizeof *t->upd)) return FR_ERR_NOMEM;
    t->upd[t->n_upd++] = (fr_tf_update){t->n_micro, 0, nd, {d0, d1, d2}};
    return FR_OK;
}

fr_status fr_tf_plan_micro(fr_tf *t, int64_t j, const int64_t *rows, int64_t b, float gout, const float *adv)
{
    if (t->n_upd < 1 || b < 1 || b > t->N || j < 0 || j >= t->T)
        return fr_fail(FR_ERR_ARG, "fr_tf_plan_micro: %lld rows at step %lld (%lld rows, %lld steps) or no update open",
                       (long long)b, (long long)j, (long long)t->N, (long long)t->T);
    if (!grow((void **)&t->micro, &t->cap_micro, t->n_micro + 1, sizeof *t->micro) ||
        !grow((void **)&t->plan_rows, &t->cap_plan_rows, t->n_plan_rows + b, sizeof *t->plan_rows))
        return FR_ERR_NOMEM;
    memcpy(t->plan_rows + t->n_plan_rows, rows, (size_t)b * sizeof *rows);
    t->micro[t->n_micro++] = (fr_tf_micro){j, t->n_plan_rows, b, gout, adv};
    t->n_plan_rows += b;
    t->upd[t->n_upd - 1].n++;
    return FR_OK;
}

fr_status fr_tf_plan_batches(const fr_run *r, fr_tf *t, int64_t K, int64_t ws0, int64_t wl, float scale)
{
    const int64_t nb = r->o->c.num_batches, ga = r->o->c.grad_accum, b = K / nb;
    fr_tf_plan_reset(t);
    if (b < 1 || wl < 1) return FR_OK;
    int64_t divisor;
    FR_TRY(fr_grpo_accum_divisor(ga, wl, &divisor));
    const float gout = 1.0f / (float)divisor * scale;
    for (int64_t q0 = 0; q0 < nb; q0 += ga) {
        FR_TRY(fr_tf_plan_update(t, 3, ga, wl, b));
        for (int64_t q = q0; q < q0 + ga; q++)
            for (int64_t j = ws0; j < ws0 + wl; j++) FR_TRY(fr_tf_plan_micro(t, j, t->order + q * b, b, gout, NULL));
    }
    return FR_OK;
}

/* Loss and gradient of one micro-step (the shared trajectory micro-step, flowrl/traj_objective.h). */
fr_traj_data fr_tf_data(const fr_run *r, const fr_tf *t, const fr_tf_micro *m)
{
    return (fr_traj_data){t->N,   t->traj,  t->mean, t->logp_h, m->adv ? m->adv : t->adv,
                          t->pid, r->task, &t->rc,  t->x_next, t->weight};
}

/* What a micro-step adds to the update's loss and the epoch's statistics, in plan order. */
static fr_status micro_stats(fr_run *r, fr_tf *t, const fr_tf_micro *m, fr_traj_stats st, float *loss_acc)
{
    if (!isfinite(st.loss))
        return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: loss %g at step %lld (policy %g, KL %g): the policy diverged",
                       (long long)r->epoch + 1, (double)st.loss, (long long)m->j, (double)st.obj, (double)st.kl);
    *loss_acc += st.loss * m->gout; /* FG logs loss / divisor (grpo.h "averaging") */
    fr_tf_stats *es = &t->st;
    es->kl += st.kl;
    es->clipfrac += st.clipfrac;
    es->approx_kl += st.approx_kl;
    es->n_terms++;
    if (st.ratio_min < es->rmin) es->rmin = st.ratio_min;
    if (st.ratio_max > es->rmax) es->rmax = st.ratio_max;
    return FR_OK;
}

static fr_status micro_step(fr_run *r, fr_tf *t, const fr_tf_micro *m, float *ratio, float *loss_acc)
{
    const fr_traj_data d = fr_tf_data(r, t, m);
    fr_traj_stats st;
    FR_TRY(fr_traj_micro_step(&t->tr, &t->ws, &d, t->plan_rows + m->off, m->b, m->j, m->gout, ratio, &st));
    return micro_stats(r, t, m, st, loss_acc);
}

/* The rows one fused call takes at most (its workspace: about 25 KB a row for shapes-s, 52 KB
 * for shapes-m); an update of more rows runs as several calls, split between micro-steps. */
#define FUSE_MAX_ROWS 1024

/* FLOWRL_FUSE=0 runs the micro-steps one by one (the same bits, for timing the difference:
 * bench/bench_peers.py's profile); anything else, or unset, fuses when guidance allows. */
static int fuse_enabled(const fr_tf *t)
{
    const char *e = getenv("FLOWRL_FUSE");
    return fr_traj_can_fuse(&t->tr) && !(e && strcmp(e, "0") == 0);
}

/* The workspace grown to hold `rows` (a fresh one: zero-filled, so no bits depend on the size). */
static fr_status ws_reserve(fr_tf *t, int64_t rows)
{
    if (rows <= t->ws.cap) return FR_OK;
    fr_traj_ws_free(&t->ws);
    t->have_ws = 0;
    FR_TRY(fr_traj_ws_alloc(&t->ws, &t->tr, rows));
    t->have_ws = 1;
    return FR_OK;
}

/* Micro-steps [k0, k1) of the plan in fused calls of at most FUSE_MAX_ROWS rows each (or one
 * micro-step, when it alone has more), their ratios at `ratio`, their statistics in order. */
static fr_status fused_steps(fr_run *r, fr_tf *t, int64_t k0, int64_t k1, float *ratio, float *loss_acc)
{
    while (k0 < k1) {
        int64_t k = k0, rows = 0;
        while (k < k1 && (k == k0 || rows + t->micro[k].b <= FUSE_MAX_ROWS)) rows += t->micro[k++].b;
        FR_TRY(ws_reserve(t, rows));
        const int64_t n = k - k0;
        fr_traj_data *d = fr_malloc((size_t)n * sizeof *d);
        fr_traj_part *parts = fr_malloc((size_t)n * sizeof *parts);
        fr_traj_stats *st = fr_malloc((size_t)n * sizeof *st);
        fr_status s = d && parts && st ? FR_OK : FR_ERR_NOMEM;
        for (int64_t i = 0; s == FR_OK && i < n; i++) {
            const fr_tf_micro *m = &t->micro[k0 + i];
            d[i] = fr_tf_data(r, t, m);
            parts[i] = (fr_traj_part){&d[i], t->plan_rows + m->off, m->b, m->j, m->gout};
        }
        if (s == FR_OK) s = fr_traj_fused_step(&t->tr, &t->ws, parts, n, ratio, st);
        for (int64_t i = 0; s == FR_OK && i < n; i++) s = micro_stats(r, t, &t->micro[k0 + i], st[i], loss_acc);
        free(d);
        free(parts);
        free(st);
        FR_TRY(s);
        ratio += rows;
        k0 = k;
    }
    return FR_OK;
}

fr_status fr_tf_run_plan(fr_run *r, fr_tf *t)
{
    char name[FR_AUDIT_MAX_NAME + 1];
    t->st = (fr_tf_stats){0, 0, 0, 0, INFINITY, -INFINITY, 0, 0, NAN};
    for (int64_t u = 0; u < t->n_upd; u++) {
        const fr_tf_update *up = &t->upd[u];
        int64_t nr = 0;
        for (int64_t k = 0; k < up->n; k++) nr += t->micro[up->first + k].b;
        int64_t prod = 1;
        for (int d = 0; d < up->nd; d++) prod *= up->dims[d];
        if (prod != nr)
            return fr_fail(FR_ERR_ARG, "fr_tf_run_plan: update %lld records %lld ratios of %lld rows", (long long)u,
                           (long long)prod, (long long)nr);
        if (!grow((void **)&t->ratios, &t->cap_ratios, nr, sizeof *t->ratios)) return FR_ERR_NOMEM;
        fr_model_zero_grad(&r->pol, r->be);
        if (t->before_update) FR_TRY(t->before_update(r, t, u, t->hook_ctx));
        float uloss = 0.0f;
        if (fuse_enabled(t))
            FR_TRY(fused_steps(r, t, up->first, up->first + up->n, t->ratios, &uloss));
        else
            for (int64_t k = 0, off = 0; k < up->n; off += t->micro[up->first + k].b, k++)
                FR_TRY(micro_step(r, t, &t->micro[up->first + k], t->ratios + off, &uloss));
        snprintf(name, sizeof name, "u%lld.ratio", (long long)u);
        FR_TRY(fr_run_rec_f32(r, name, t->ratios, up->nd, up->dims[0], up->nd > 1 ? up->dims[1] : 1,
                              up->nd > 2 ? up->dims[2] : 1));
        snprintf(name, sizeof name, "u%lld.loss", (long long)u);
        FR_TRY(fr_run_rec_scalar(r, name, uloss));
        fr_run_update_event ue = {r->epoch + 1, u, nr, t->ratios, uloss};
        fr_run_update(r, &ue);
        FR_TRY(fr_run_optimizer_step(r, u, &t->st.last_gn));
        t->st.loss += uloss;
        t->st.updates++;
    }
    fr_run_metric(r, "updates", (double)t->st.updates);
    fr_run_metric(r, "loss", t->st.updates ? t->st.loss / (double)t->st.updates : NAN);
    return FR_OK;
}

fr_status fr_tf_finish(fr_run *r, fr_tf *t)
{
    const fr_tf_stats *es = &t->st;
    const double nterm = es->n_terms ? (double)es->n_terms : NAN;
    const float kl = (float)(es->kl / nterm), clipfrac = (float)(es->clipfrac / nterm),
                approx_kl = (float)(es->approx_kl / nterm);
    FR_TRY(fr_run_rec_scalar(r, "kl", kl));
    FR_TRY(fr_run_rec_scalar(r, "clipfrac", clipfrac));
    FR_TRY(fr_run_rec_scalar(r, "approx_kl", approx_kl));
    fr_run_metric(r, "kl", kl);
    fr_run_metric(r, "clipfrac", clipfrac);
    fr_run_metric(r, "approx_kl", approx_kl);
    fr_run_metric(r, "ratio_min", es->n_terms ? es->rmin : NAN);
    fr_run_metric(r, "ratio_max", es->n_terms ? es->rmax : NAN);
    fr_run_metric(r, "grad_norm", es->last_gn);
    return FR_OK;
}

fr_status fr_tf_update_batches(fr_run *r, fr_tf *t, int64_t K, int64_t ws0, int64_t wl, float scale)
{
    FR_TRY(fr_tf_plan_batches(r, t, K, ws0, wl, scale));
    FR_TRY(fr_tf_run_plan(r, t));
    return fr_tf_finish(r, t);
}

fr_status fr_tf_rec_window(fr_run *r, int64_t start, int64_t len)
{
    int64_t wv[2] = {start, len};
    int64_t sh2 = 2;
    fr_tensor wt = fr_tensor_view(wv, FR_I64, 1, &sh2);
    return fr_run_rec_tensor(r, "window", &wt);
}

fr_status fr_tf_fg_batches(fr_run *r, fr_tf *t, int64_t *K)
{
    const fr_run_opts *ro = r->o;
    int64_t kept;
    FR_TRY(fr_run_advantages(r, t->N, t->reward, t->group, t->adv));
    FR_TRY(fr_adv_filter_zero(t->N, t->adv, ro->c.num_batches, ro->run.seed, FR_RNG_ADV_FILTER, (uint32_t)r->epoch, 0,
                              t->keep, &kept));
    fr_tensor kt = fr_tensor_view(t->keep, FR_U8, 1, &t->N);
    FR_TRY(fr_run_rec_tensor(r, "keep", &kt));
    FR_TRY(fr_run_shuffle(r, t->N, t->keep, t->order, K));
    if (*K > 0) {
        fr_tensor ot = fr_tensor_view(t->order, FR_I64, 1, K);
        FR_TRY(fr_run_rec_tensor(r, "order", &ot));
    }
    fr_run_metric(r, "kept", (double)*K);
    fr_run_metric(r, "samples", (double)t->N);
    return FR_OK;
}

fr_status fr_tf_local_batches(fr_run *r, fr_tf *t, int64_t *K)
{
    FR_TRY(fr_adv_local_group(t->N, t->reward, t->G, FR_ADV_EPS_LOCAL, t->adv));
    FR_TRY(fr_run_rec_f32(r, "adv", t->adv, 1, t->N, 1, 1));
    FR_TRY(fr_run_shuffle(r, t->N, NULL, t->order, K));
    fr_tensor ot = fr_tensor_view(t->order, FR_I64, 1, K);
    FR_TRY(fr_run_rec_tensor(r, "order", &ot));
    fr_run_metric(r, "samples", (double)t->N);
    return FR_OK;
}

fr_status fr_tf_select_steps(fr_run *r, fr_tf *t, int64_t n, const uint32_t *key, int64_t pool, int64_t n_train)
{
    if (!t->sel && (!FR_ALLOC(t->steps, t->N * n_train) || !FR_ALLOC(t->sel, t->N * t->T) || !FR_ALLOC(t->sel_rows, t->N)))
        return FR_ERR_NOMEM;
    int64_t *perm = malloc((size_t)pool * sizeof *perm);
    if (!perm) return FR_ERR_NOMEM;
    memset(t->sel, 0, (size_t)(n * t->T));
    for (int64_t u = 0; u < n; u++) {
        fr_rng_perm(perm, pool, r->o->run.seed, FR_RNG_STEP_SELECT, (uint32_t)r->epoch, key ? key[u] : (uint32_t)u);
        for (int64_t k = 0; k < n_train; k++) {
            t->steps[u * n_train + k] = perm[k];
            t->sel[u * t->T + perm[k]] = 1;
        }
    }
    free(perm);
    int64_t sh[2] = {n, n_train};
    fr_tensor st = fr_tensor_view(t->steps, FR_I64, 2, sh);
    return fr_run_rec_tensor(r, "steps", &st);
}

fr_status fr_tf_plan_selected(const fr_run *r, fr_tf *t, int64_t n, int64_t width, const int64_t *order, int64_t n_train)
{
    const int64_t nb = r->o->c.num_batches, ga = r->o->c.grad_accum, b = n / nb;
    fr_tf_plan_reset(t);
    for (int64_t q0 = 0; q0 < nb; q0 += ga) {
        FR_TRY(fr_tf_plan_update(t, 1, ga * b * n_train * width, 1, 1));
        for (int64_t q = q0; q < q0 + ga; q++)
            for (int64_t j = 0; j < t->T; j++) {
                int64_t bj = 0;
                for (int64_t k = 0; k < b; k++) {
                    const int64_t u = order[q * b + k];
                    if (!t->sel[u * t->T + j]) continue;
                    for (int64_t i = 0; i < width; i++) t->sel_rows[bj * width + i] = u * width + i;
                    bj++;
                }
                if (bj)
                    FR_TRY(fr_tf_plan_micro(t, j, t->sel_rows, bj * width, (float)bj / (float)(b * ga * n_train), NULL));
            }
    }
    return FR_OK;
}

fr_status fr_tf_check_trained(const fr_tf *t, int64_t j)
{
    fr_step p = fr_rollout_step(&t->rc, j);
    fr_step_std sd;
    FR_TRY(fr_sampler_std(&p, &sd));
    if (!(sd.std > 0.0f))
        return fr_fail(FR_ERR_ARG, "train: trained step %lld has std 0 (no density; e.g. cps's last step): "
                                   "lower --timestep-fraction", (long long)j);
    return FR_OK;
}
