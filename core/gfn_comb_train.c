/* The GFlowNet trainer of graph combinatorial optimisation (flowrl/gfn_comb.h; spec more.md
 * §8.2; GFlowNet-CombOpt@306bff0 gflownet/algorithm.py, main.py): on-policy rollouts of a batch
 * of graphs, then tstep Adam steps on tbatch transitions each, FL-DB (alg=fl) or DB, κ annealed.
 * The policy's node logits and the flow's per-state log F̃ come from two GINs
 * (core/gfn_comb_net.c); the losses are float64 on the host (docs/algorithms/gfn-comb.md §4). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/digest.h"
#include "flowrl/philox.h"
#include "gfn_comb_internal.h"

typedef struct {
    const fr_graph *g;
    int8_t s[FR_COMB_MAX_NODES], s2[FR_COMB_MAX_NODES];
    int a;
} comb_tr;

struct fr_comb_trainer {
    fr_backend *be;
    fr_comb_opts o;
    fr_gin pf, fl;
    fr_param params[2 * (2 * FR_GIN_MAX_LAYERS + 4)];
    int n_params;
    fr_adamw_state adam;
    int64_t iter, graphs_seen;
    int64_t cap_s, cap_n, cap_e;
    /* host: the batch's structure and inputs; backend: its copy */
    int32_t *h_ptr_dst, *h_src, *h_dst, *h_ptr_src, *h_eid, *h_ptr_g, *h_gid;
    fr_gin_batch b;
    float *x_h, *logit_h, *logf_h, *dlogit_h, *dlogf_h;
    comb_tr *tr;
    int64_t n_tr, cap_tr;
};

fr_comb_opts fr_comb_opts_default(void)
{
    fr_comb_opts o = {FR_COMB_MIS, FR_COMB_FLDB, 256, 5, 12, 8, 30, 64, 1e-3, 1.0, 500.0, 40000, 0};
    return o;
}

double fr_comb_kappa(const fr_comb_trainer *t)
{
    double f = t->o.anneal_graphs > 0 ? (double)t->graphs_seen / (double)t->o.anneal_graphs : 1.0;
    if (f > 1.0) f = 1.0;
    return t->o.kappa0 + (t->o.kappa1 - t->o.kappa0) * f;
}

void fr_comb_trainer_free(fr_comb_trainer *t)
{
    if (!t) return;
    fr_gin_free(&t->pf);
    fr_gin_free(&t->fl);
    fr_adamw_state_free(&t->adam);
    int32_t *dv[] = {t->b.ptr_dst, t->b.src, t->b.dst, t->b.ptr_src, t->b.eid_src, t->b.ptr_g, t->b.gid};
    for (size_t i = 0; i < sizeof dv / sizeof dv[0]; i++) fr_dev_free(t->be, dv[i]);
    void *hv[] = {t->h_ptr_dst, t->h_src, t->h_dst, t->h_ptr_src, t->h_eid, t->h_ptr_g, t->h_gid,
                  t->x_h, t->logit_h, t->logf_h, t->dlogit_h, t->dlogf_h, t->tr};
    for (size_t i = 0; i < sizeof hv / sizeof hv[0]; i++) free(hv[i]);
    free(t);
}

fr_status fr_comb_trainer_new(fr_comb_trainer **out, fr_backend *be, const fr_comb_opts *o)
{
    *out = NULL;
    if (o->max_nodes < 1 || o->max_nodes > FR_COMB_MAX_NODES || o->bsit < 1 || o->tbatch < 1 || o->tstep < 0 ||
        o->hidden < 1 || o->layers < 1 || o->layers > FR_GIN_MAX_LAYERS)
        return fr_fail(FR_ERR_ARG, "gfn-comb: max_nodes %d, bsit %d, tbatch %d, tstep %d, hidden %d, layers %d out of range",
                       o->max_nodes, o->bsit, o->tbatch, o->tstep, o->hidden, o->layers);
    fr_comb_trainer *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    t->be = be;
    t->o = *o;
    t->cap_s = 2 * (int64_t)o->tbatch > o->bsit ? 2 * (int64_t)o->tbatch : o->bsit;
    t->cap_n = t->cap_s * o->max_nodes;
    t->cap_e = t->cap_s * o->max_nodes * (o->max_nodes - 1) + 1;
    t->cap_tr = (int64_t)o->bsit * o->max_nodes;
    fr_status s = fr_gin_new(&t->pf, be, "pf", o->layers, o->hidden, t->cap_n, t->cap_e);
    if (s == FR_OK) s = fr_gin_new(&t->fl, be, "flow", o->layers, o->hidden, t->cap_n, t->cap_e);
    if (s == FR_OK) s = fr_gin_init(&t->pf, o->seed, 1);
    if (s == FR_OK) s = fr_gin_init(&t->fl, o->seed, 2);
    if (s != FR_OK) {
        fr_comb_trainer_free(t);
        return s;
    }
    t->n_params = fr_gin_params(&t->pf, t->params);
    t->n_params += fr_gin_params(&t->fl, t->params + t->n_params);
    const int64_t N = t->cap_n, E = t->cap_e, S = t->cap_s;
    t->b.ptr_dst = fr_dev_i32(be, N + 1), t->b.src = fr_dev_i32(be, E), t->b.dst = fr_dev_i32(be, E);
    t->b.ptr_src = fr_dev_i32(be, N + 1), t->b.eid_src = fr_dev_i32(be, E);
    t->b.ptr_g = fr_dev_i32(be, S + 1), t->b.gid = fr_dev_i32(be, N);
    t->h_ptr_dst = fr_calloc((size_t)N + 1, 4), t->h_src = fr_calloc((size_t)E, 4), t->h_dst = fr_calloc((size_t)E, 4);
    t->h_ptr_src = fr_calloc((size_t)N + 1, 4), t->h_eid = fr_calloc((size_t)E, 4);
    t->h_ptr_g = fr_calloc((size_t)S + 1, 4), t->h_gid = fr_calloc((size_t)N, 4);
    t->x_h = fr_calloc((size_t)N * 3, sizeof(float));
    t->logit_h = fr_calloc((size_t)N, sizeof(float)), t->dlogit_h = fr_calloc((size_t)N, sizeof(float));
    t->logf_h = fr_calloc((size_t)S, sizeof(float)), t->dlogf_h = fr_calloc((size_t)S, sizeof(float));
    t->tr = fr_calloc((size_t)t->cap_tr, sizeof *t->tr);
    s = t->b.ptr_dst && t->b.src && t->b.dst && t->b.ptr_src && t->b.eid_src && t->b.ptr_g && t->b.gid && t->h_ptr_dst &&
                t->h_src && t->h_dst && t->h_ptr_src && t->h_eid && t->h_ptr_g && t->h_gid && t->x_h && t->logit_h &&
                t->dlogit_h && t->logf_h && t->dlogf_h && t->tr
            ? FR_OK
            : FR_ERR_NOMEM;
    if (s == FR_OK) s = fr_adamw_state_init(be, &t->adam, t->params, t->n_params);
    if (s != FR_OK) {
        fr_comb_trainer_free(t);
        return s;
    }
    *out = t;
    return FR_OK;
}

int fr_comb_params(fr_comb_trainer *t, fr_param **ps)
{
    *ps = t->params;
    return t->n_params;
}

/* The disjoint union of S states (graph gs[i], labels ss[i]) and its one-hot inputs. */
static fr_status build_batch(fr_comb_trainer *t, int64_t S, const fr_graph *const *gs, const int8_t *const *ss)
{
    int64_t N = 0, E = 0;
    for (int64_t i = 0; i < S; i++) N += gs[i]->n, E += 2 * gs[i]->m;
    if (S > t->cap_s || N > t->cap_n || E > t->cap_e || (int64_t)t->o.max_nodes < 1)
        return fr_fail(FR_ERR_ARG, "gfn-comb: a batch of %lld states, %lld nodes, %lld edges exceeds the buffers", (long long)S,
                       (long long)N, (long long)E);
    int64_t v0 = 0, e0 = 0;
    for (int64_t i = 0; i < S; i++) {
        const fr_graph *g = gs[i];
        t->h_ptr_g[i] = (int32_t)v0;
        for (int v = 0; v < g->n; v++) {
            t->h_gid[v0 + v] = (int32_t)i;
            t->h_ptr_dst[v0 + v] = (int32_t)(e0 + g->ptr[v]);
            for (int k = g->ptr[v]; k < g->ptr[v + 1]; k++) {
                t->h_src[e0 + k] = (int32_t)(v0 + g->src[k]);
                t->h_dst[e0 + k] = (int32_t)(v0 + v);
            }
            for (int c = 0; c < 3; c++) t->x_h[(v0 + v) * 3 + c] = ss[i][v] == c ? 1.0f : 0.0f;
        }
        v0 += g->n, e0 += 2 * g->m;
    }
    t->h_ptr_g[S] = (int32_t)N;
    t->h_ptr_dst[N] = (int32_t)E;
    /* the edges grouped by source, each group in canonical (ascending edge) order */
    memset(t->h_ptr_src, 0, (size_t)(N + 1) * 4);
    for (int64_t e = 0; e < E; e++) t->h_ptr_src[t->h_src[e] + 1]++;
    for (int64_t v = 0; v < N; v++) t->h_ptr_src[v + 1] += t->h_ptr_src[v];
    for (int64_t e = 0; e < E; e++) t->h_eid[t->h_ptr_src[t->h_src[e]]++] = (int32_t)e;
    for (int64_t v = N; v > 0; v--) t->h_ptr_src[v] = t->h_ptr_src[v - 1];
    t->h_ptr_src[0] = 0;
    t->b.N = N, t->b.E = E, t->b.S = S;
    fr_backend *be = t->be;
    FR_TRY(fr_h2d(be, t->b.ptr_dst, t->h_ptr_dst, (size_t)(N + 1) * 4));
    FR_TRY(fr_h2d(be, t->b.ptr_src, t->h_ptr_src, (size_t)(N + 1) * 4));
    FR_TRY(fr_h2d(be, t->b.ptr_g, t->h_ptr_g, (size_t)(S + 1) * 4));
    FR_TRY(fr_h2d(be, t->b.gid, t->h_gid, (size_t)N * 4));
    if (E > 0) {
        FR_TRY(fr_h2d(be, t->b.src, t->h_src, (size_t)E * 4));
        FR_TRY(fr_h2d(be, t->b.dst, t->h_dst, (size_t)E * 4));
        FR_TRY(fr_h2d(be, t->b.eid_src, t->h_eid, (size_t)E * 4));
    }
    return FR_OK;
}

/* Node logits (N,) and, with flow, log F̃ per state (S,) on the host. */
static fr_status forward(fr_comb_trainer *t, int flow)
{
    FR_TRY(fr_gin_forward(&t->pf, &t->b, t->x_h, 0));
    FR_TRY(fr_d2h(t->be, t->logit_h, fr_mlp_out(&t->pf.head), (size_t)t->b.N * sizeof(float)));
    if (!flow) return FR_OK;
    FR_TRY(fr_gin_forward(&t->fl, &t->b, t->x_h, 1));
    return fr_d2h(t->be, t->logf_h, t->fl.gout, (size_t)t->b.S * sizeof(float));
}

/* log P_F over the undecided nodes of state i of the batch (float64 log-softmax; −inf elsewhere). */
static void state_logpf(const fr_comb_trainer *t, int64_t i, const int8_t *s, double *lp)
{
    const int64_t v0 = t->h_ptr_g[i];
    const int n = (int)(t->h_ptr_g[i + 1] - v0);
    double m = -INFINITY, z = 0.0;
    for (int v = 0; v < n; v++)
        if (s[v] == 2 && (double)t->logit_h[v0 + v] > m) m = (double)t->logit_h[v0 + v];
    for (int v = 0; v < n; v++)
        if (s[v] == 2) z += fr_awm_exp((double)t->logit_h[v0 + v] - m);
    const double lse = m + fr_awm_log(z);
    for (int v = 0; v < n; v++) lp[v] = s[v] == 2 ? (double)t->logit_h[v0 + v] - lse : -INFINITY;
}

/* The node drawn by uniform u from log-probs lp (n,): inverse CDF in node order. */
static int draw(const double *lp, int n, double u)
{
    double c = 0.0;
    int last = -1;
    for (int v = 0; v < n; v++) {
        if (lp[v] == -INFINITY) continue;
        last = v;
        c += fr_awm_exp(lp[v]);
        if (u < c) return v;
    }
    return last;
}

/* Complete trajectories of the S states ss (advanced in place) on graphs gs; with rec the
 * transitions are appended to t->tr. Draws (seed, purpose, c0, c1[i], step). */
static fr_status rollout(fr_comb_trainer *t, int64_t S, const fr_graph *const *gs, int8_t **ss, uint32_t purpose, uint32_t c0,
                         const uint32_t *c1, int rec)
{
    double lp[FR_COMB_MAX_NODES];
    for (uint32_t step = 0;; step++) {
        const fr_graph *ag[256];
        const int8_t *as[256];
        int64_t idx[256], A = 0;
        for (int64_t i = 0; i < S; i++)
            if (!fr_comb_done(gs[i]->n, ss[i])) ag[A] = gs[i], as[A] = ss[i], idx[A++] = i;
        if (A == 0) return FR_OK;
        FR_TRY(build_batch(t, A, ag, as));
        FR_TRY(forward(t, 0));
        for (int64_t j = 0; j < A; j++) {
            const int64_t i = idx[j];
            state_logpf(t, j, ss[i], lp);
            double u = (double)fr_rng_uniform(t->o.seed, purpose, c0, c1[i], step, 0);
            int v = draw(lp, gs[i]->n, u);
            if (rec) {
                if (t->n_tr >= t->cap_tr) return fr_fail(FR_ERR_ARG, "gfn-comb: more transitions than the buffer holds");
                comb_tr *r = &t->tr[t->n_tr++];
                r->g = gs[i];
                memcpy(r->s, ss[i], (size_t)gs[i]->n);
                r->a = v;
                fr_comb_step(t->o.task, gs[i], ss[i], v, r->s2);
            }
            fr_comb_step(t->o.task, gs[i], ss[i], v, ss[i]);
        }
    }
}

/* Residuals of B transitions trs[i] at κ; with grad, the loss's gradient through both networks
 * (accumulated into the zeroed gradients). Returns the mean square in *loss. */
static fr_status residuals(fr_comb_trainer *t, int64_t B, const comb_tr *const *trs, double kappa, double *resid,
                           int grad, double *loss)
{
    const fr_graph *gs[256];
    const int8_t *ss[256];
    if (2 * B > t->cap_s) return fr_fail(FR_ERR_ARG, "gfn-comb: %lld transitions, sized for %lld", (long long)B, (long long)t->cap_s / 2);
    for (int64_t i = 0; i < B; i++) {
        gs[i] = gs[B + i] = trs[i]->g;
        ss[i] = trs[i]->s;
        ss[B + i] = trs[i]->s2;
    }
    FR_TRY(build_batch(t, 2 * B, gs, ss));
    FR_TRY(forward(t, 1));
    const fr_comb_task task = t->o.task;
    double lp[FR_COMB_MAX_NODES], sum = 0.0;
    if (grad) {
        memset(t->dlogit_h, 0, (size_t)t->b.N * sizeof(float));
        memset(t->dlogf_h, 0, (size_t)t->b.S * sizeof(float));
    }
    for (int64_t i = 0; i < B; i++) {
        const comb_tr *r = trs[i];
        const int n = r->g->n, term = fr_comb_done(n, r->s2);
        state_logpf(t, i, r->s, lp);
        const double logpb = -fr_awm_log((double)fr_comb_parents(task, n, r->s2));
        const double us = kappa * fr_comb_value(task, r->g, r->s), us2 = kappa * fr_comb_value(task, r->g, r->s2);
        const double f = (double)t->logf_h[i], f2 = term ? 0.0 : (double)t->logf_h[B + i];
        double d;
        if (t->o.loss == FR_COMB_FLDB) d = (us + f + lp[r->a]) - (us2 + f2 + logpb); /* log F̃ := 0 at terminals */
        else d = f + lp[r->a] - (term ? us2 : f2) - logpb;                          /* DB: log F(x) := log R(x) */
        if (resid) resid[i] = d;
        sum += d * d;
        if (!grad) continue;
        const double gd = 2.0 * d / (double)B;
        t->dlogf_h[i] = (float)gd;
        if (!term) t->dlogf_h[B + i] = (float)-gd;
        const int64_t v0 = t->h_ptr_g[i];
        for (int v = 0; v < n; v++)
            if (r->s[v] == 2) t->dlogit_h[v0 + v] = (float)(gd * ((v == r->a ? 1.0 : 0.0) - fr_awm_exp(lp[v])));
    }
    *loss = sum / (double)B;
    if (!grad) return FR_OK;
    FR_TRY(fr_gin_backward(&t->pf, &t->b, t->dlogit_h, 0));
    return fr_gin_backward(&t->fl, &t->b, t->dlogf_h, 1);
}

fr_status fr_comb_begin_iter(fr_comb_trainer *t, int64_t iter, const fr_graph *gs, int G)
{
    if (G < 1 || G > t->o.bsit) return fr_fail(FR_ERR_ARG, "gfn-comb: %d graphs per iteration (bsit %d)", G, t->o.bsit);
    int8_t st[256][FR_COMB_MAX_NODES];
    int8_t *ss[256];
    const fr_graph *gp[256];
    uint32_t c1[256];
    for (int i = 0; i < G; i++) {
        if (gs[i].n > t->o.max_nodes) return fr_fail(FR_ERR_ARG, "gfn-comb: a graph of %d nodes (max_nodes %d)", gs[i].n, t->o.max_nodes);
        fr_comb_initial(gs[i].n, st[i]);
        ss[i] = st[i], gp[i] = &gs[i], c1[i] = (uint32_t)i;
    }
    t->iter = iter;
    t->graphs_seen = iter * t->o.bsit;
    t->n_tr = 0; /* on-policy: the buffer holds this iteration's transitions only */
    return rollout(t, G, gp, ss, FR_RNG_COMB_ACTION, (uint32_t)iter, c1, 1);
}

fr_status fr_comb_grad_step(fr_comb_trainer *t, int k, double *loss)
{
    int64_t *perm = fr_calloc((size_t)t->n_tr + 1, sizeof *perm);
    if (!perm) return FR_ERR_NOMEM;
    const int64_t B = t->n_tr < t->o.tbatch ? t->n_tr : t->o.tbatch;
    const comb_tr *trs[256];
    fr_rng_perm(perm, t->n_tr, t->o.seed, FR_RNG_COMB_ORDER, (uint32_t)t->iter, (uint32_t)k);
    for (int64_t i = 0; i < B; i++) trs[i] = &t->tr[perm[i]];
    free(perm);
    FR_TRY(fr_gin_zero_grad(&t->pf));
    FR_TRY(fr_gin_zero_grad(&t->fl));
    return residuals(t, B, trs, fr_comb_kappa(t), NULL, 1, loss);
}

fr_status fr_comb_train_iter(fr_comb_trainer *t, const fr_graph *gs, int G, double *loss)
{
    FR_TRY(fr_comb_begin_iter(t, t->iter, gs, G));
    fr_adamw_cfg c = fr_adamw_cfg_default();
    c.weight_decay = 0.0; /* torch.optim.Adam */
    double acc = 0.0;
    for (int k = 0; k < t->o.tstep; k++) {
        double l = 0.0;
        FR_TRY(fr_comb_grad_step(t, k, &l));
        FR_TRY(fr_adamw_step(t->be, &t->adam, t->params, t->n_params, &c, t->o.lr));
        acc += l;
    }
    t->iter++;
    t->graphs_seen = t->iter * t->o.bsit;
    if (loss) *loss = t->o.tstep > 0 ? acc / t->o.tstep : 0.0;
    return FR_OK;
}

fr_status fr_comb_sample(fr_comb_trainer *t, const fr_graph *g, uint32_t id, int K, double *mean, double *best)
{
    int8_t st[256][FR_COMB_MAX_NODES];
    int8_t *ss[256];
    const fr_graph *gp[256];
    uint32_t c1[256];
    double sum = 0.0, mx = -INFINITY;
    const int chunk = (int)(t->cap_s < 256 ? t->cap_s : 256);
    for (int k0 = 0; k0 < K; k0 += chunk) {
        const int S = K - k0 < chunk ? K - k0 : chunk;
        for (int i = 0; i < S; i++) {
            fr_comb_initial(g->n, st[i]);
            ss[i] = st[i], gp[i] = g, c1[i] = (uint32_t)(k0 + i);
        }
        FR_TRY(rollout(t, S, gp, ss, FR_RNG_COMB_EVAL, id, c1, 0));
        for (int i = 0; i < S; i++) {
            double u = fr_comb_value(t->o.task, g, st[i]);
            sum += u;
            if (u > mx) mx = u;
        }
    }
    if (mean) *mean = sum / K;
    if (best) *best = mx;
    return FR_OK;
}

fr_status fr_comb_policy(fr_comb_trainer *t, const fr_graph *g, const int8_t *s, double *logpf, double *logf)
{
    FR_TRY(build_batch(t, 1, &g, &s));
    FR_TRY(forward(t, logf != NULL));
    state_logpf(t, 0, s, logpf);
    if (logf) *logf = (double)t->logf_h[0];
    return FR_OK;
}

fr_status fr_comb_residuals(fr_comb_trainer *t, const fr_graph *g, int L, const int8_t *states, const int *actions,
                            double kappa, double *resid)
{
    comb_tr *trs = fr_calloc((size_t)(L > 0 ? L : 1), sizeof *trs);
    const comb_tr *p[256];
    if (!trs) return FR_ERR_NOMEM;
    if (L > 128) L = 128;
    for (int i = 0; i < L; i++) {
        trs[i].g = g;
        memcpy(trs[i].s, states + (int64_t)i * g->n, (size_t)g->n);
        memcpy(trs[i].s2, states + (int64_t)(i + 1) * g->n, (size_t)g->n);
        trs[i].a = actions[i];
        p[i] = &trs[i];
    }
    double l;
    fr_status s = residuals(t, L, p, kappa, resid, 0, &l);
    free(trs);
    return s;
}

fr_status fr_comb_digest(fr_comb_trainer *t, uint64_t *digest)
{
    uint64_t h = 0;
    for (int p = 0; p < t->n_params; p++) {
        const fr_tensor *v = t->params[p].value;
        const int64_t n = fr_tensor_numel(v);
        float *buf = fr_calloc((size_t)n, sizeof *buf);
        if (!buf) return FR_ERR_NOMEM;
        fr_status s = fr_d2h(t->be, buf, v->data, (size_t)n * sizeof *buf);
        if (s == FR_OK) {
            const uint64_t pair[2] = {h, fr_digest_bytes(buf, (size_t)n * sizeof *buf)};
            h = fr_digest_bytes(pair, sizeof pair);
        }
        free(buf);
        FR_TRY(s);
    }
    *digest = h;
    return FR_OK;
}
