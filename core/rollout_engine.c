/* The rollout loop (flowrl/rollout.h): guided model forward, then one sampler step, T
 * times, over chunks of cfg->batch rows. docs/algorithms/samplers.md §0, §11, §15.
 *
 * The loop runs over nodes, not rows. Without a tree a node is a row. With a tree the
 * steps are cut into segments at the branch steps; in segment k a node is a distinct
 * (owner(s, i), prompt) of the rows (i in the segment), computed once with sample id
 * owner(s, i): every noise it draws is then the one each of its rows would draw alone
 * (owners nest: owner(owner(s, i'), i) = owner(s, i) for i >= i'). At a branch each new
 * node starts from its parent's state (x and dpm's carried x̂0). */
#include <stdlib.h>
#include <string.h>

#include "core/rollout_internal.h"
#include "flowrl/cond.h"
#include "flowrl/guidance.h"
#include "flowrl/philox.h"

/* Backend memory: the states, model inputs and outputs, noise and trajectory. Host: the
 * node bookkeeping and the condition ids; it crosses as small index arrays (the rows a
 * gather reads, the sample ids that own a noise row), uploaded when they change. */
typedef struct {
    fr_guided_ws g;
    float *x, *xn, *v, *xi, *mean, *x0, *logp; /* backend (cap, D) each; logp (cap,) */
    uint32_t *c1;                              /* backend (B,): noise owners of rows of a draw */
    int32_t *idx;                              /* backend (B,): rows of a gather */
    void *blk;                                 /* backend, all of the above */
    int32_t *c;                                /* host (cap, S) condition ids */
    uint32_t *c1_host, *c1_next;               /* host (B,): what c1 holds (c1_n of it), the next */
    int64_t c1_n;
    int32_t *idx_host; /* host (B,) */
    void *hblk;        /* host, all of the above */
} buffers;

static void buffers_free(fr_backend *be, buffers *w)
{
    fr_guided_ws_free(&w->g);
    fr_dev_free(be, w->blk);
    free(w->hblk);
    memset(w, 0, sizeof *w);
}

static fr_status buffers_alloc(fr_backend *be, buffers *w, const fr_model *m, int64_t cap, int64_t B, fr_guidance gd)
{
    memset(w, 0, sizeof *w);
    const int64_t D = m->cfg.D, S = m->cfg.n_slots;
    w->blk = fr_dev_alloc(be, (size_t)(6 * cap * D + cap) * sizeof(float) +
                                  (size_t)B * (sizeof(uint32_t) + sizeof(int32_t)));
    w->hblk = fr_malloc((size_t)(cap * S) * sizeof(int32_t) + (size_t)B * (2 * sizeof(uint32_t) + sizeof(int32_t)));
    if (!w->blk || !w->hblk) {
        buffers_free(be, w);
        return FR_ERR_NOMEM;
    }
    float *f = w->blk;
    w->x = f, f += cap * D;
    w->xn = f, f += cap * D;
    w->v = f, f += cap * D;
    w->xi = f, f += cap * D;
    w->mean = f, f += cap * D;
    w->x0 = f, f += cap * D;
    w->logp = f, f += cap;
    w->c1 = (uint32_t *)f;
    w->idx = (int32_t *)(w->c1 + B);
    w->c = w->hblk;
    w->c1_host = (uint32_t *)(w->c + cap * S);
    w->c1_next = w->c1_host + B;
    w->idx_host = (int32_t *)(w->c1_next + B);
    fr_status s = fr_guided_ws_alloc(&w->g, be, m, cap, gd, 0);
    if (s != FR_OK) buffers_free(be, w);
    return s;
}

/* idx_host[0, n) to the backend. */
static fr_status put_idx(fr_backend *be, buffers *w, int64_t n)
{
    return fr_h2d(be, w->idx, w->idx_host, (size_t)n * sizeof *w->idx);
}

/* c1_next[0, n) to the backend, unless c1 holds it already (a chunk's owners repeat step
 * after step). */
static fr_status put_owners(fr_backend *be, buffers *w, int64_t n)
{
    const size_t bytes = (size_t)n * sizeof *w->c1;
    if (w->c1_n == n && memcmp(w->c1_host, w->c1_next, bytes) == 0) return FR_OK;
    w->c1_n = 0;
    FR_TRY(fr_h2d(be, w->c1, w->c1_next, bytes));
    memcpy(w->c1_host, w->c1_next, bytes);
    w->c1_n = n;
    return FR_OK;
}

/* The nodes of one segment: node n has sample id sid[n] and prompt pid[n]; row r belongs
 * to node of[r] (host). xs, x0s (n, D): the state carried between segments (backend). */
typedef struct {
    int64_t n;
    uint32_t *sid;
    int *pid;
    int64_t *of, *parent; /* (B,), (n,): the node of the previous segment it continues */
    float *xs, *x0s;
} nodes;

typedef struct {
    const fr_model *m;
    fr_backend *be;
    const fr_task *task;
    const fr_rollout_cfg *c;
    int64_t B;
    const fr_rollout_traj *traj;
} ctx;

/* Steps [i0, i1) of nodes [n0, n0 + b), every output written to each row of those nodes. */
static fr_status run_chunk(const ctx *cx, buffers *w, nodes *nd, int64_t n0, int64_t b, int64_t i0, int64_t i1)
{
    const fr_rollout_cfg *c = cx->c;
    const fr_rollout_traj *traj = cx->traj;
    fr_backend *be = cx->be;
    const int64_t D = cx->m->cfg.D, B = cx->B;
    const int stochastic = fr_sampler_is_stochastic(c->kind);
    FR_TRY(fr_d2d(be, w->x, nd->xs + n0 * D, (size_t)(b * D) * sizeof(float)));
    FR_TRY(fr_d2d(be, w->x0, nd->x0s + n0 * D, (size_t)(b * D) * sizeof(float)));
    FR_TRY(fr_cond_ids(cx->task, b, nd->pid + n0, w->c));
    if (traj) { /* row r of the trajectory is row of[r] − n0 of the chunk, or none */
        for (int64_t r = 0; r < B; r++) {
            const int64_t j = nd->of[r] - n0;
            w->idx_host[r] = j >= 0 && j < b ? (int32_t)j : -1;
        }
        FR_TRY(put_idx(be, w, B));
    }

    for (int64_t i = i0; i < i1; i++) {
        const fr_step p = fr_rollout_step(c, i);
        fr_step_std sd;
        FR_TRY(fr_sampler_std(&p, &sd));
        FR_TRY(fr_guided_forward(cx->m, be, &w->g, b, w->x, fr_rollout_time(c, i), w->c, w->v));
        const float *xi = NULL;
        if (stochastic && sd.std != 0.0f) {
            for (int64_t j = 0; j < b; j++) w->c1_next[j] = fr_rollout_noise_owner(c, nd->sid[n0 + j], i);
            FR_TRY(put_owners(be, w, b));
            be->ops->rng_normal_rows(b, D, c->seed, FR_RNG_SAMPLER_NOISE, c->c0, b, w->c1, (uint32_t)i, w->xi);
            if (traj && traj->xi) be->ops->gather_rows(B, D, w->idx, b, w->xi, traj->xi + i * B * D);
            for (int64_t k = 0; k < c->n_branch; k++)
                if (c->branch[k].at == i && c->branch[k].xi_scale != 1.0f)
                    be->ops->scale(b * D, c->branch[k].xi_scale, w->xi, w->xi);
            xi = w->xi;
        } else if (traj && traj->xi) { /* no draw: ξ 0 for the chunk's rows */
            FR_TRY(fr_dev_zero(be, w->xi, (size_t)(b * D) * sizeof(float)));
            be->ops->gather_rows(B, D, w->idx, b, w->xi, traj->xi + i * B * D);
        }
        /* a step of std 0 (level 0 in a window, CPS's last step) has no density */
        const int want_logp = traj && traj->logp && sd.std != 0.0f;
        const float *x0_prev = p.kind == FR_SAMPLER_DPM && p.order == 2 ? w->x0 : NULL;
        FR_TRY(fr_sampler_step(be, &p, b, D, w->x, w->v, x0_prev, xi, w->xn, traj && traj->mean ? w->mean : NULL,
                               want_logp ? w->logp : NULL, NULL));
        if (c->kind == FR_SAMPLER_DPM || (c->dpm_from > 0 && i + 1 >= c->dpm_from)) /* m1 of step i+1 */
            FR_TRY(fr_flow_x0(be, b * D, p.sigma, w->x, w->v, w->x0));
        if (traj) {
            if (traj->traj) be->ops->gather_rows(B, D, w->idx, b, w->xn, traj->traj + (i + 1) * B * D);
            if (traj->mean) be->ops->gather_rows(B, D, w->idx, b, w->mean, traj->mean + i * B * D);
            if (traj->logp) {
                if (!want_logp) FR_TRY(fr_dev_zero(be, w->logp, (size_t)b * sizeof(float)));
                be->ops->gather_rows(B, 1, w->idx, b, w->logp, traj->logp + i * B);
            }
            if (traj->std) traj->std[i] = sd;
        }
        float *tmp = w->x;
        w->x = w->xn;
        w->xn = tmp;
    }
    FR_TRY(fr_d2d(be, nd->xs + n0 * D, w->x, (size_t)(b * D) * sizeof(float)));
    return fr_d2d(be, nd->x0s + n0 * D, w->x0, (size_t)(b * D) * sizeof(float));
}

/* The nodes of the segment starting at step i (first appearance order of the rows).
 * Without a tree: one node per row. prev: the previous segment's nodes (NULL at i = 0). */
static void make_nodes(const fr_rollout_cfg *c, int64_t B, const int *prompt_ids, const uint32_t *sample_ids,
                       int64_t i, nodes *nd, const nodes *prev)
{
    nd->n = 0;
    for (int64_t r = 0; r < B; r++) {
        const uint32_t o = sample_ids ? fr_rollout_noise_owner(c, sample_ids[r], i) : 0;
        int64_t k = nd->n;
        if (c->n_branch > 0)
            for (k = 0; k < nd->n; k++)
                if (nd->sid[k] == o && nd->pid[k] == prompt_ids[r]) break;
        if (k == nd->n) {
            nd->sid[k] = o;
            nd->pid[k] = prompt_ids[r];
            nd->parent[k] = prev ? prev->of[r] : r;
            nd->n++;
        }
        nd->of[r] = k;
    }
}

static void nodes_free(fr_backend *be, nodes *nd)
{
    free(nd->sid);
    free(nd->pid);
    free(nd->of);
    free(nd->parent);
    if (be) {
        fr_dev_free(be, nd->xs);
        fr_dev_free(be, nd->x0s);
    }
}

/* be NULL: the bookkeeping alone (no states). */
static fr_status nodes_alloc(fr_backend *be, nodes *nd, int64_t B, int64_t D)
{
    memset(nd, 0, sizeof *nd);
    nd->sid = fr_malloc((size_t)B * sizeof *nd->sid);
    nd->pid = fr_malloc((size_t)B * sizeof *nd->pid);
    nd->of = fr_malloc((size_t)B * sizeof *nd->of);
    nd->parent = fr_malloc((size_t)B * sizeof *nd->parent);
    if (be) {
        nd->xs = fr_dev_floats(be, B * D);
        nd->x0s = fr_dev_floats(be, B * D); /* zero: dpm's x̂0 before the first step */
    }
    if (nd->sid && nd->pid && nd->of && nd->parent && (!be || (nd->xs && nd->x0s))) return FR_OK;
    nodes_free(be, nd);
    return FR_ERR_NOMEM;
}

/* dst row r (r < R) = row idx_host[r] of src (n_src, D), through the backend's gather. */
static fr_status gather(fr_backend *be, buffers *w, int64_t R, int64_t D, int64_t n_src, const float *src, float *dst)
{
    FR_TRY(put_idx(be, w, R));
    be->ops->gather_rows(R, D, w->idx, n_src, src, dst);
    return FR_OK;
}

/* x_T of each node: its first row's x_init, or the normals of its owner. */
static fr_status draw_x_T(const ctx *cx, buffers *w, const nodes *nd, const uint32_t *sample_ids,
                          const float *x_init)
{
    const fr_rollout_cfg *c = cx->c;
    const int64_t D = cx->m->cfg.D;
    if (x_init) {
        for (int64_t n = 0; n < nd->n; n++) w->idx_host[n] = (int32_t)nd->parent[n];
        return gather(cx->be, w, nd->n, D, cx->B, x_init, nd->xs);
    }
    for (int64_t n = 0; n < nd->n; n++) w->c1_next[n] = fr_rollout_noise_owner(c, sample_ids[nd->parent[n]], -1);
    FR_TRY(put_owners(cx->be, w, nd->n));
    cx->be->ops->rng_normal_rows(nd->n, D, c->seed, FR_RNG_SAMPLER_INIT, c->c0, nd->n, w->c1, 0, nd->xs);
    return FR_OK;
}

/* Every row r of out (B, D) = its node's state. */
static fr_status rows_of_nodes(const ctx *cx, buffers *w, const nodes *nd, float *out)
{
    for (int64_t r = 0; r < cx->B; r++) w->idx_host[r] = (int32_t)nd->of[r];
    return gather(cx->be, w, cx->B, cx->m->cfg.D, nd->n, nd->xs, out);
}

/* The segments [i0, i1): cut at every branch step; cap rows per forward. */
static fr_status run_segments(const ctx *cx, buffers *w, int64_t cap, const int *prompt_ids,
                              const uint32_t *sample_ids, const float *x_init, float *x_out)
{
    const fr_rollout_cfg *c = cx->c;
    fr_backend *be = cx->be;
    const int64_t D = cx->m->cfg.D, B = cx->B;
    nodes a, bnd;
    FR_TRY(nodes_alloc(be, &a, B, D));
    fr_status s = nodes_alloc(be, &bnd, B, D);
    if (s != FR_OK) {
        nodes_free(be, &a);
        return s;
    }
    nodes *cur = &a, *nxt = &bnd;
    make_nodes(c, B, prompt_ids, sample_ids, 0, cur, NULL);
    s = draw_x_T(cx, w, cur, sample_ids, x_init);
    if (s == FR_OK && cx->traj && cx->traj->traj) s = rows_of_nodes(cx, w, cur, cx->traj->traj);
    for (int64_t k = 0; k <= c->n_branch && s == FR_OK; k++) {
        const int64_t i0 = k == 0 ? 0 : c->branch[k - 1].at, i1 = k < c->n_branch ? c->branch[k].at : c->T;
        if (k > 0) { /* split: each node of this segment starts from its parent */
            make_nodes(c, B, prompt_ids, sample_ids, i0, nxt, cur);
            for (int64_t n = 0; n < nxt->n; n++) w->idx_host[n] = (int32_t)nxt->parent[n];
            s = gather(be, w, nxt->n, D, cur->n, cur->xs, nxt->xs);
            if (s == FR_OK) be->ops->gather_rows(nxt->n, D, w->idx, cur->n, cur->x0s, nxt->x0s);
            nodes *t = cur;
            cur = nxt;
            nxt = t;
        }
        for (int64_t n0 = 0; n0 < cur->n && s == FR_OK; n0 += cap)
            s = run_chunk(cx, w, cur, n0, cur->n - n0 < cap ? cur->n - n0 : cap, i0, i1);
    }
    if (s == FR_OK) s = rows_of_nodes(cx, w, cur, x_out);
    nodes_free(be, &a);
    nodes_free(be, &bnd);
    return s;
}

fr_status fr_rollout(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *cfg,
                     int64_t B, const int *prompt_ids, const uint32_t *sample_ids, const float *x_init, float *x,
                     const fr_rollout_traj *traj)
{
    if (!m || !be || !task || !cfg) return fr_fail(FR_ERR_ARG, "fr_rollout: NULL model, be, task or cfg");
    if (B < 0 || B > INT32_MAX)
        return fr_fail(FR_ERR_ARG, "fr_rollout: batch %lld, expected 0 .. 2^31 - 1", (long long)B);
    if (B == 0) return FR_OK;
    FR_TRY(fr_rollout_check_cfg(m, task, cfg));
    float max_noise = cfg->noise;
    if (cfg->step_noise) {
        max_noise = 0.0f;
        for (int64_t i = 0; i < cfg->T; i++) {
            float a = cfg->step_noise[i];
            if (!(a >= 0.0f && a <= 100.0f))
                return fr_fail(FR_ERR_ARG, "fr_rollout: step %lld noise level %g, expected 0 .. 100", (long long)i,
                               (double)a);
            if (a > max_noise) max_noise = a;
        }
    }
    if (!prompt_ids || !x || (!sample_ids && !x_init) ||
        (!sample_ids && fr_sampler_is_stochastic(cfg->kind) && max_noise != 0.0f))
        return fr_fail(FR_ERR_ARG, "fr_rollout: prompt_ids, x or sample_ids is NULL");
    if (cfg->n_branch > 0 && (x_init || !sample_ids))
        return fr_fail(FR_ERR_ARG, "fr_rollout: a tree needs sample ids and draws its own x_T (x_init must be NULL)");
    if (traj && traj->logp) {
        if (!fr_sampler_is_stochastic(cfg->kind))
            return fr_fail(FR_ERR_ARG, "fr_rollout: sampler '%s' is deterministic and has no log-probs",
                           fr_sampler_name(cfg->kind));
        if (max_noise == 0.0f)
            return fr_fail(FR_ERR_ARG, "fr_rollout: log-probs need a noise level > 0 ('%s' with 0 has std 0)",
                           fr_sampler_name(cfg->kind));
    }
    const int64_t cap = cfg->batch > 0 && cfg->batch < B ? cfg->batch : B;
    buffers w;
    FR_TRY(buffers_alloc(be, &w, m, cap, B, fr_guidance_from_scale(cfg->cfg)));
    const ctx cx = {m, be, task, cfg, B, traj};
    fr_model_freeze(m, be, 1); /* the T steps read the same weights: opt packs them once */
    fr_status s = run_segments(&cx, &w, cap, prompt_ids, sample_ids, x_init, x);
    fr_model_freeze(m, be, 0);
    buffers_free(be, &w);
    return s;
}

fr_status fr_rollout_to_host(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *cfg,
                             int64_t B, const int *prompt_ids, const uint32_t *sample_ids, float *x)
{
    if (!m || !be || B < 0) return fr_fail(FR_ERR_ARG, "fr_rollout_to_host: NULL model or backend, or batch < 0");
    if (B == 0) return FR_OK;
    float *x_dev = fr_dev_floats(be, B * m->cfg.D);
    if (!x_dev) return FR_ERR_NOMEM;
    fr_status s = fr_rollout(m, be, task, cfg, B, prompt_ids, sample_ids, NULL, x_dev, NULL);
    if (s == FR_OK) s = fr_d2h(be, x, x_dev, (size_t)(B * m->cfg.D) * sizeof *x);
    fr_dev_free(be, x_dev);
    return s;
}

fr_status fr_rollout_nfe(const fr_rollout_cfg *cfg, int64_t B, const int *prompt_ids, const uint32_t *sample_ids,
                         int64_t *nfe)
{
    *nfe = 0;
    if (!cfg || B < 0 || (B > 0 && (!prompt_ids || (cfg->n_branch > 0 && !sample_ids))))
        return fr_fail(FR_ERR_ARG, "fr_rollout_nfe: NULL cfg, prompt_ids or sample_ids, or batch %lld", (long long)B);
    if (cfg->T < 1 || cfg->T > (int64_t)1 << 24)
        return fr_fail(FR_ERR_ARG, "fr_rollout_nfe: %lld steps, expected 1 .. 2^24", (long long)cfg->T);
    FR_TRY(fr_rollout_check_sharing(cfg));
    if (B == 0) return FR_OK;
    nodes nd;
    FR_TRY(nodes_alloc(NULL, &nd, B, 0));
    for (int64_t k = 0; k <= cfg->n_branch; k++) {
        const int64_t i0 = k == 0 ? 0 : cfg->branch[k - 1].at, i1 = k < cfg->n_branch ? cfg->branch[k].at : cfg->T;
        make_nodes(cfg, B, prompt_ids, sample_ids, i0, &nd, NULL);
        *nfe += nd.n * (i1 - i0);
    }
    if (fr_guidance_from_scale(cfg->cfg).on) *nfe *= 2;
    nodes_free(NULL, &nd);
    return FR_OK;
}
