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

typedef struct {
    fr_guided_ws g;
    float *x, *xn, *v, *xi, *mean, *x0, *logp; /* (cap, D) each; logp (cap,) */
    int32_t *c;                                /* (cap, S) */
    void *blk;
} buffers;

static void buffers_free(buffers *w)
{
    fr_guided_ws_free(&w->g);
    free(w->blk);
    memset(w, 0, sizeof *w);
}

static fr_status buffers_alloc(buffers *w, const fr_model *m, int64_t cap, fr_guidance gd)
{
    memset(w, 0, sizeof *w);
    const int64_t D = m->cfg.D, S = m->cfg.n_slots;
    size_t bytes = (size_t)(6 * cap * D + cap) * sizeof(float) + (size_t)(cap * S) * sizeof(int32_t);
    w->blk = fr_malloc(bytes);
    if (!w->blk) return FR_ERR_NOMEM;
    float *f = w->blk;
    w->x = f, f += cap * D;
    w->xn = f, f += cap * D;
    w->v = f, f += cap * D;
    w->xi = f, f += cap * D;
    w->mean = f, f += cap * D;
    w->x0 = f, f += cap * D;
    w->logp = f, f += cap;
    w->c = (int32_t *)f;
    fr_status s = fr_guided_ws_alloc(&w->g, m, cap, gd, 0);
    if (s != FR_OK) {
        free(w->blk);
        w->blk = NULL;
    }
    return s;
}

/* The nodes of one segment: node n has sample id sid[n] and prompt pid[n]; row r belongs
 * to node of[r]. xs, x0s (n, D): the state carried between segments. */
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
    const int64_t D = cx->m->cfg.D, B = cx->B;
    const int stochastic = fr_sampler_is_stochastic(c->kind);
    memcpy(w->x, nd->xs + n0 * D, (size_t)(b * D) * sizeof(float));
    memcpy(w->x0, nd->x0s + n0 * D, (size_t)(b * D) * sizeof(float));
    FR_TRY(fr_cond_ids(cx->task, b, nd->pid + n0, w->c));

    for (int64_t i = i0; i < i1; i++) {
        const fr_step p = fr_rollout_step(c, i);
        fr_step_std sd;
        FR_TRY(fr_sampler_std(&p, &sd));
        FR_TRY(fr_guided_forward(cx->m, cx->be, &w->g, b, w->x, fr_rollout_time(c, i), w->c, w->v));
        const float *xi = NULL;
        if (stochastic && sd.std != 0.0f) {
            for (int64_t j = 0; j < b; j++) {
                uint32_t o = fr_rollout_noise_owner(c, nd->sid[n0 + j], i);
                fr_rng_fill_normal(w->xi + j * D, D, c->seed, FR_RNG_SAMPLER_NOISE, c->c0, o, (uint32_t)i);
            }
            for (int64_t k = 0; k < c->n_branch; k++)
                if (c->branch[k].at == i && c->branch[k].xi_scale != 1.0f)
                    cx->be->ops->scale(b * D, c->branch[k].xi_scale, w->xi, w->xi);
            xi = w->xi;
        }
        /* a step of std 0 (level 0 in a window, CPS's last step) has no density */
        const int want_logp = traj && traj->logp && sd.std != 0.0f;
        const float *x0_prev = p.kind == FR_SAMPLER_DPM && p.order == 2 ? w->x0 : NULL;
        FR_TRY(fr_sampler_step(&p, b, D, w->x, w->v, x0_prev, xi, w->xn, w->mean, want_logp ? w->logp : NULL,
                               NULL));
        if (c->kind == FR_SAMPLER_DPM) FR_TRY(fr_flow_x0(b * D, p.sigma, w->x, w->v, w->x0)); /* m1 of step i+1 */
        if (traj) {
            for (int64_t r = 0; r < B; r++) {
                const int64_t j = nd->of[r] - n0;
                if (j < 0 || j >= b) continue;
                if (traj->traj) memcpy(traj->traj + ((i + 1) * B + r) * D, w->xn + j * D, (size_t)D * sizeof(float));
                if (traj->mean) memcpy(traj->mean + (i * B + r) * D, w->mean + j * D, (size_t)D * sizeof(float));
                if (traj->logp) traj->logp[i * B + r] = want_logp ? w->logp[j] : 0.0f;
            }
            if (traj->std) traj->std[i] = sd;
        }
        float *tmp = w->x;
        w->x = w->xn;
        w->xn = tmp;
    }
    memcpy(nd->xs + n0 * D, w->x, (size_t)(b * D) * sizeof(float));
    memcpy(nd->x0s + n0 * D, w->x0, (size_t)(b * D) * sizeof(float));
    return FR_OK;
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

static void nodes_free(nodes *nd)
{
    free(nd->sid);
    free(nd->pid);
    free(nd->of);
    free(nd->parent);
    free(nd->xs);
    free(nd->x0s);
}

static fr_status nodes_alloc(nodes *nd, int64_t B, int64_t D)
{
    memset(nd, 0, sizeof *nd);
    nd->sid = fr_malloc((size_t)B * sizeof *nd->sid);
    nd->pid = fr_malloc((size_t)B * sizeof *nd->pid);
    nd->of = fr_malloc((size_t)B * sizeof *nd->of);
    nd->parent = fr_malloc((size_t)B * sizeof *nd->parent);
    nd->xs = fr_calloc((size_t)(B * D), sizeof *nd->xs);
    nd->x0s = fr_calloc((size_t)(B * D), sizeof *nd->x0s);
    if (nd->sid && nd->pid && nd->of && nd->parent && nd->xs && nd->x0s) return FR_OK;
    nodes_free(nd);
    return FR_ERR_NOMEM;
}

/* The segments [i0, i1): cut at every branch step; cap rows per forward. */
static fr_status run_segments(const ctx *cx, buffers *w, int64_t cap, const int *prompt_ids,
                              const uint32_t *sample_ids, const float *x_init, float *x_out)
{
    const fr_rollout_cfg *c = cx->c;
    const int64_t D = cx->m->cfg.D, B = cx->B;
    nodes a, bnd;
    FR_TRY(nodes_alloc(&a, B, D));
    fr_status s = nodes_alloc(&bnd, B, D);
    if (s != FR_OK) {
        nodes_free(&a);
        return s;
    }
    nodes *cur = &a, *nxt = &bnd;
    make_nodes(c, B, prompt_ids, sample_ids, 0, cur, NULL);
    for (int64_t n = 0; n < cur->n; n++) {
        const int64_t r = cur->parent[n]; /* the node's first row */
        if (x_init)
            memcpy(cur->xs + n * D, x_init + r * D, (size_t)D * sizeof(float));
        else
            fr_rng_fill_normal(cur->xs + n * D, D, c->seed, FR_RNG_SAMPLER_INIT, c->c0,
                               fr_rollout_noise_owner(c, sample_ids[r], -1), 0);
    }
    if (cx->traj && cx->traj->traj)
        for (int64_t r = 0; r < B; r++)
            memcpy(cx->traj->traj + r * D, cur->xs + cur->of[r] * D, (size_t)D * sizeof(float));
    for (int64_t k = 0; k <= c->n_branch && s == FR_OK; k++) {
        const int64_t i0 = k == 0 ? 0 : c->branch[k - 1].at, i1 = k < c->n_branch ? c->branch[k].at : c->T;
        if (k > 0) { /* split: each node of this segment starts from its parent */
            make_nodes(c, B, prompt_ids, sample_ids, i0, nxt, cur);
            for (int64_t n = 0; n < nxt->n; n++) {
                memcpy(nxt->xs + n * D, cur->xs + nxt->parent[n] * D, (size_t)D * sizeof(float));
                memcpy(nxt->x0s + n * D, cur->x0s + nxt->parent[n] * D, (size_t)D * sizeof(float));
            }
            nodes *t = cur;
            cur = nxt;
            nxt = t;
        }
        for (int64_t n0 = 0; n0 < cur->n && s == FR_OK; n0 += cap)
            s = run_chunk(cx, w, cur, n0, cur->n - n0 < cap ? cur->n - n0 : cap, i0, i1);
    }
    if (s == FR_OK)
        for (int64_t r = 0; r < B; r++) memcpy(x_out + r * D, cur->xs + cur->of[r] * D, (size_t)D * sizeof(float));
    nodes_free(&a);
    nodes_free(&bnd);
    return s;
}

fr_status fr_rollout(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *cfg,
                     int64_t B, const int *prompt_ids, const uint32_t *sample_ids, const float *x_init, float *x,
                     const fr_rollout_traj *traj)
{
    if (!m || !be || !task || !cfg) return fr_fail(FR_ERR_ARG, "fr_rollout: NULL model, be, task or cfg");
    if (B < 0) return fr_fail(FR_ERR_ARG, "fr_rollout: batch %lld < 0", (long long)B);
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
    FR_TRY(buffers_alloc(&w, m, cap, fr_guidance_from_scale(cfg->cfg)));
    const ctx cx = {m, be, task, cfg, B, traj};
    fr_status s = run_segments(&cx, &w, cap, prompt_ids, sample_ids, x_init, x);
    buffers_free(&w);
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
    FR_TRY(nodes_alloc(&nd, B, 1));
    for (int64_t k = 0; k <= cfg->n_branch; k++) {
        const int64_t i0 = k == 0 ? 0 : cfg->branch[k - 1].at, i1 = k < cfg->n_branch ? cfg->branch[k].at : cfg->T;
        make_nodes(cfg, B, prompt_ids, sample_ids, i0, &nd, NULL);
        *nfe += nd.n * (i1 - i0);
    }
    if (fr_guidance_from_scale(cfg->cfg).on) *nfe *= 2;
    nodes_free(&nd);
    return FR_OK;
}
