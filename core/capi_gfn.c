/* The stable C API's GFlowNet part (flowrl/capi.h; docs/algorithms/gfn.md, docs/envs.md):
 * environments by name with their option rows, their states, masks, transitions, rewards and
 * exact target over host arrays, and the losses of flowrl/gfn.h on a tensor set of named
 * arrays, so a binding checks its own GFlowNet (tests: python/tests/test_torchgfn.py against
 * torchgfn). Host code: environments and losses are host code on every backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/capi_internal.h"
#include "flowrl/env.h"
#include "flowrl/gfn.h"
#include "flowrl/gfn_box.h"
#include "flowrl/opts.h"

struct flowrl_env {
    fr_env e;
};

/* ---- environments ------------------------------------------------------------------------- */

int flowrl_env_open(const char *name, int n_args, const char *const *args, flowrl_env **out)
{
    if (!out || (n_args > 0 && !args) || n_args < 0) return fr_fail(FR_ERR_ARG, "flowrl_env_open: bad arguments");
    *out = NULL;
    const fr_env_class *c;
    FR_TRY(fr_env_find(name, &c));
    void *st = fr_calloc(1, c->opts_size ? c->opts_size : 1);
    flowrl_env *h = fr_calloc(1, sizeof *h);
    fr_status s = st && h ? fr_env_defaults(c, st) : FR_ERR_NOMEM;
    if (s == FR_OK && n_args > 0) {
        /* the words `flowrl train --env NAME` takes after it ("--ndim", "3", ...) */
        fr_opts o;
        memset(&o, 0, sizeof o);
        o.cmd = "flowrl_env_open";
        o.g[0] = (fr_opt_group){c->name, c->rows, c->n_rows, 0};
        o.ng = 1;
        o.s[0] = st;
        s = fr_opts_parse(&o, n_args, (char **)args, 0, NULL, 0, NULL, NULL);
    }
    if (s == FR_OK) s = fr_env_create(c, st, &h->e);
    if (s == FR_OK && !h->e.gfn) s = fr_fail(FR_ERR_UNSUPPORTED, "flowrl_env_open: %s is not a GFlowNet environment", name);
    free(st);
    if (s != FR_OK) {
        if (h) fr_env_free(&h->e);
        free(h);
        return s;
    }
    *out = h;
    return FR_OK;
}

void flowrl_env_close(flowrl_env *h)
{
    if (!h) return;
    fr_env_free(&h->e);
    free(h);
}

const char *flowrl_env_describe(const flowrl_env *h) { return h ? h->e.desc : ""; }

int flowrl_env_sizes(const flowrl_env *h, int64_t *sizes)
{
    if (!h || !sizes) return fr_fail(FR_ERR_ARG, "flowrl_env_sizes: NULL argument");
    const fr_env *e = &h->e;
    int64_t v[7] = {e->state_dim, e->obs_dim, e->n_actions, e->action_dim, e->exit_action, e->max_steps, e->n_states};
    memcpy(sizes, v, sizeof v);
    return FR_OK;
}

/* A state of the environment: its canonical index is in range and names it back. */
static fr_status check_state(const fr_env *e, const int32_t *s, int64_t row, const char *fn)
{
    if (e->n_states <= 0) return FR_OK;
    int32_t back[64];
    const int64_t i = e->gfn->index(e, s);
    if (i >= 0 && i < e->n_states && e->state_dim <= 64) {
        e->gfn->state_at(e, i, back);
        if (memcmp(back, s, (size_t)e->state_dim * sizeof *s) == 0) return FR_OK;
    }
    return fr_fail(FR_ERR_ARG, "%s: row %lld is not a state of %s", fn, (long long)row, e->desc);
}

int flowrl_env_states(const flowrl_env *h, int64_t start, int64_t n, int32_t *states)
{
    if (!h || (n > 0 && !states)) return fr_fail(FR_ERR_ARG, "flowrl_env_states: NULL argument");
    const fr_env *e = &h->e;
    if (e->n_states <= 0) return fr_fail(FR_ERR_UNSUPPORTED, "flowrl_env_states: %s is not enumerable", e->desc);
    if (start < 0 || n < 0 || start + n > e->n_states)
        return fr_fail(FR_ERR_ARG, "flowrl_env_states: [%lld, %lld) is outside [0, %lld)", (long long)start,
                       (long long)(start + n), (long long)e->n_states);
    for (int64_t i = 0; i < n; i++) e->gfn->state_at(e, start + i, states + i * e->state_dim);
    return FR_OK;
}

int flowrl_env_query(const flowrl_env *h, int64_t n, const int32_t *states, uint8_t *fwd, uint8_t *bwd,
                     double *log_reward, int64_t *index, uint8_t *is_mode, float *obs)
{
    if (!h || n < 0 || (n > 0 && !states)) return fr_fail(FR_ERR_ARG, "flowrl_env_query: bad arguments");
    const fr_env *e = &h->e;
    const int D = e->state_dim, A = e->n_actions;
    for (int64_t r = 0; r < n; r++) {
        const int32_t *s = states + r * D;
        FR_TRY(check_state(e, s, r, "flowrl_env_query"));
        if (fwd) e->gfn->forward_mask(e, s, fwd + r * A);
        if (bwd) e->gfn->backward_mask(e, s, bwd + r * (A - 1));
        if (log_reward) log_reward[r] = e->gfn->log_reward(e, s);
        if (index) index[r] = e->n_states > 0 ? e->gfn->index(e, s) : -1;
        if (is_mode) is_mode[r] = (uint8_t)e->gfn->is_mode(e, s);
        if (obs) e->gfn->encode(e, s, obs + r * e->obs_dim);
    }
    return FR_OK;
}

int flowrl_env_step(const flowrl_env *h, int backward, int64_t n, const int32_t *states, const int32_t *actions,
                    int32_t *next)
{
    if (!h || n < 0 || (n > 0 && (!states || !actions || !next))) return fr_fail(FR_ERR_ARG, "flowrl_env_step: bad arguments");
    const fr_env *e = &h->e;
    const int D = e->state_dim, A = e->n_actions;
    uint8_t m[256];
    if (A > 256) return fr_fail(FR_ERR_UNSUPPORTED, "flowrl_env_step: %d actions", A);
    for (int64_t r = 0; r < n; r++) {
        const int32_t *s = states + r * D;
        const int a = actions[r];
        FR_TRY(check_state(e, s, r, "flowrl_env_step"));
        if (backward) e->gfn->backward_mask(e, s, m);
        else e->gfn->forward_mask(e, s, m);
        if (a < 0 || a >= A - 1 || a == e->exit_action || !m[a])
            return fr_fail(FR_ERR_ARG, "flowrl_env_step: row %lld: %s action %d is not allowed there (the exit is not a step)",
                           (long long)r, backward ? "backward" : "forward", a);
        if (backward) e->gfn->back_step(e, s, a, next + r * D);
        else e->gfn->step(e, s, a, next + r * D);
    }
    return FR_OK;
}

int flowrl_env_target(const flowrl_env *h, double *p, double *log_z, int64_t *n_modes, double *mode_mass)
{
    if (!h) return fr_fail(FR_ERR_ARG, "flowrl_env_target: NULL env");
    return fr_env_target(&h->e, p, log_z, n_modes, mode_mass);
}

/* ---- losses on a tensor set --------------------------------------------------------------- */

/* in.NAME of dtype dt and ndim dims whose shape is want (−1: any), or NULL when absent and
 * optional. */
static fr_status arg(const fr_st_file *f, const char *name, fr_dtype dt, int ndim, const int64_t *want, int optional,
                     const fr_tensor **t)
{
    char key[64];
    snprintf(key, sizeof key, "in.%s", name);
    *t = fr_st_get(f, key);
    if (!*t) return optional ? FR_OK : fr_fail(FR_ERR_ARG, "flowrl_gfn_loss: %s is missing", key);
    if ((*t)->dtype != dt || (*t)->ndim != ndim)
        return fr_fail(FR_ERR_ARG, "flowrl_gfn_loss: %s is %s with %d dims, expected %s with %d", key,
                       fr_dtype_name((*t)->dtype), (*t)->ndim, fr_dtype_name(dt), ndim);
    for (int k = 0; k < ndim; k++)
        if (want[k] >= 0 && (*t)->shape[k] != want[k])
            return fr_fail(FR_ERR_ARG, "flowrl_gfn_loss: %s dim %d is %lld, expected %lld", key, k,
                           (long long)(*t)->shape[k], (long long)want[k]);
    return FR_OK;
}

static fr_status scalar(const fr_st_file *f, const char *name, double def, double *v)
{
    const fr_tensor *t;
    FR_TRY(arg(f, name, FR_F64, 0, NULL, 1, &t));
    *v = t ? *(const double *)t->data : def;
    return FR_OK;
}

/* out.NAME, a new zeroed tensor of out. */
static fr_status put(fr_st_file *out, const char *name, fr_dtype dt, int ndim, const int64_t *shape, void **data)
{
    char key[64];
    snprintf(key, sizeof key, "out.%s", name);
    fr_tensor t;
    FR_TRY(fr_tensor_alloc(&t, dt, ndim, shape));
    memset(t.data, 0, fr_tensor_nbytes(&t));
    fr_status s = fr_st_add_take(out, key, &t);
    if (s != FR_OK) {
        fr_tensor_free(&t);
        return s;
    }
    *data = fr_st_get(out, key)->data;
    return FR_OK;
}

static fr_status fm_loss(const fr_st_file *in, fr_st_file *out)
{
    const fr_tensor *n_in, *n_out, *fin, *fout, *fexit, *logr;
    int64_t any[1] = {-1};
    FR_TRY(arg(in, "n_in", FR_I32, 1, any, 0, &n_in));
    int64_t m[1] = {n_in->shape[0]};
    FR_TRY(arg(in, "n_out", FR_I32, 1, m, 0, &n_out));
    int64_t si = 0, so = 0;
    for (int64_t j = 0; j < m[0]; j++) {
        si += ((const int32_t *)n_in->data)[j];
        so += ((const int32_t *)n_out->data)[j];
    }
    int64_t ni[1] = {si}, no[1] = {so};
    FR_TRY(arg(in, "fin", FR_F64, 1, ni, 0, &fin));
    FR_TRY(arg(in, "fout", FR_F64, 1, no, 0, &fout));
    FR_TRY(arg(in, "fexit", FR_F64, 1, any, 0, &fexit));
    int64_t k[1] = {fexit->shape[0]};
    FR_TRY(arg(in, "logr", FR_F64, 1, k, 0, &logr));
    double alpha, loss;
    FR_TRY(scalar(in, "alpha", 1.0, &alpha));
    void *gi, *go, *gx, *l;
    FR_TRY(put(out, "grad_fin", FR_F64, 1, ni, &gi));
    FR_TRY(put(out, "grad_fout", FR_F64, 1, no, &go));
    FR_TRY(put(out, "grad_fexit", FR_F64, 1, k, &gx));
    FR_TRY(fr_gfn_fm_loss(m[0], n_in->data, fin->data, n_out->data, fout->data, k[0], fexit->data, logr->data, alpha,
                          &loss, gi, go, gx));
    FR_TRY(put(out, "loss", FR_F64, 0, NULL, &l));
    memcpy(l, &loss, sizeof loss);
    return FR_OK;
}

static fr_status traj_loss(fr_gfn_loss_kind kind, const fr_st_file *in, fr_st_file *out)
{
    const fr_tensor *len, *pf, *pb, *f, *r;
    int64_t any[2] = {-1, -1};
    FR_TRY(arg(in, "logpf", FR_F64, 2, any, 0, &pf));
    const int64_t B = pf->shape[0], L = pf->shape[1], bl[2] = {B, L}, b[1] = {B};
    FR_TRY(arg(in, "len", FR_I32, 1, b, 0, &len));
    FR_TRY(arg(in, "logpb", FR_F64, 2, bl, 0, &pb));
    FR_TRY(arg(in, "logf", FR_F64, 2, bl, 1, &f));
    FR_TRY(arg(in, "logr", FR_F64, 1, b, 0, &r));
    fr_gfn_batch gb;
    memset(&gb, 0, sizeof gb);
    gb.B = B;
    gb.L = L;
    gb.len = len->data;
    gb.logpf = pf->data;
    gb.logpb = pb->data;
    gb.logf = f ? f->data : NULL;
    gb.logr = r->data;
    FR_TRY(scalar(in, "log_z", 0.0, &gb.log_z));
    FR_TRY(scalar(in, "lambda", 0.9, &gb.lambda));
    /* the later losses' inputs (capi.h): every one optional, fr_gfn_loss says which it needs */
    const fr_tensor *rs, *px, *prior, *perm, *util;
    FR_TRY(arg(in, "logrs", FR_F64, 2, bl, 1, &rs));
    FR_TRY(arg(in, "logpf_exit", FR_F64, 2, bl, 1, &px));
    FR_TRY(arg(in, "logprior", FR_F64, 2, bl, 1, &prior));
    FR_TRY(arg(in, "perm", FR_I32, 1, b, 1, &perm));
    FR_TRY(arg(in, "util", FR_F64, 1, b, 1, &util));
    gb.logrs = rs ? rs->data : NULL;
    gb.logpf_exit = px ? px->data : NULL;
    gb.logprior = prior ? prior->data : NULL;
    gb.util = util ? util->data : NULL;
    double fl, wt, rg;
    FR_TRY(scalar(in, "beta", 1.0, &gb.beta));
    FR_TRY(scalar(in, "linex_alpha", 1.0, &gb.linex_alpha));
    FR_TRY(scalar(in, "forward_looking", 0.0, &fl));
    FR_TRY(scalar(in, "weighting", 0.0, &wt));
    FR_TRY(scalar(in, "regression", 0.0, &rg));
    gb.forward_looking = fl != 0.0;
    gb.weighting = (fr_gfn_subtb_weighting)(int)wt;
    gb.regression = (fr_gfn_regression)(int)rg;
    void *res, *l, *gz;
    fr_gfn_grad g;
    memset(&g, 0, sizeof g);
    const int per_step = kind == FR_GFN_DB || kind == FR_GFN_MDB;
    FR_TRY(put(out, "resid", FR_F64, per_step ? 2 : 1, per_step ? bl : b, &res));
    FR_TRY(put(out, "grad_logpf", FR_F64, 2, bl, (void **)&g.logpf));
    FR_TRY(put(out, "grad_logpb", FR_F64, 2, bl, (void **)&g.logpb));
    if (f) FR_TRY(put(out, "grad_logf", FR_F64, 2, bl, (void **)&g.logf));
    if (px) FR_TRY(put(out, "grad_logpf_exit", FR_F64, 2, bl, (void **)&g.logpf_exit));
    int64_t *perm64 = NULL;
    if (perm) {
        perm64 = fr_malloc((size_t)B * sizeof *perm64);
        if (!perm64) return FR_ERR_NOMEM;
        for (int64_t i = 0; i < B; i++) perm64[i] = ((const int32_t *)perm->data)[i];
        gb.perm = perm64;
    }
    double loss;
    fr_status st = fr_gfn_loss(kind, &gb, &loss, res, &g);
    free(perm64);
    FR_TRY(st);
    FR_TRY(put(out, "loss", FR_F64, 0, NULL, &l));
    memcpy(l, &loss, sizeof loss);
    FR_TRY(put(out, "grad_log_z", FR_F64, 0, NULL, &gz));
    memcpy(gz, &g.log_z, sizeof g.log_z);
    return FR_OK;
}

/* kind "box": the Box policy's log-probabilities, their gradients and the reward (flowrl/gfn_box.h;
 * capi.h). */
static fr_status box_log_probs(const fr_st_file *in, fr_st_file *out)
{
    fr_box_opts bo = {0.25, 0.1, 0.5, 2.0, 1e-10};
    double k0, k;
    fr_box_policy pol = {4, 2, 0.1, 5.1};
    FR_TRY(scalar(in, "delta", bo.delta, &bo.delta));
    FR_TRY(scalar(in, "r0", bo.r0, &bo.r0));
    FR_TRY(scalar(in, "r1", bo.r1, &bo.r1));
    FR_TRY(scalar(in, "r2", bo.r2, &bo.r2));
    FR_TRY(scalar(in, "epsilon", bo.epsilon, &bo.epsilon));
    FR_TRY(scalar(in, "k0", pol.K0, &k0));
    FR_TRY(scalar(in, "k", pol.K, &k));
    FR_TRY(scalar(in, "cmin", pol.cmin, &pol.cmin));
    FR_TRY(scalar(in, "cmax", pol.cmax, &pol.cmax));
    pol.K0 = (int)k0;
    pol.K = (int)k;
    if (pol.K0 < 1 || pol.K0 > 64 || pol.K < 1 || pol.K > 64 || !(bo.delta > 0.0 && bo.delta <= 1.0))
        return fr_fail(FR_ERR_ARG, "flowrl_gfn_loss: box: k0 %d, k %d (1..64), delta %g (0, 1]", pol.K0, pol.K, bo.delta);
    const fr_tensor *st, *ac, *ex, *pf, *pb;
    int64_t any2[2] = {-1, 2};
    FR_TRY(arg(in, "states", FR_F64, 2, any2, 0, &st));
    const int64_t N = st->shape[0], n2[2] = {N, 2}, n1[1] = {N}, W = 5 * pol.K0 > 1 + 3 * pol.K ? 5 * pol.K0 : 1 + 3 * pol.K;
    const int64_t nw[2] = {N, W}, nb[2] = {N, 3 * pol.K};
    FR_TRY(arg(in, "actions", FR_F64, 2, n2, 0, &ac));
    FR_TRY(arg(in, "is_exit", FR_I32, 1, n1, 0, &ex));
    FR_TRY(arg(in, "pf_out", FR_F64, 2, nw, 0, &pf));
    FR_TRY(arg(in, "pb_out", FR_F64, 2, nb, 1, &pb));
    double *lpf, *lpb, *rew, *gpf, *gpb;
    FR_TRY(put(out, "logpf", FR_F64, 1, n1, (void **)&lpf));
    FR_TRY(put(out, "logpb", FR_F64, 1, n1, (void **)&lpb));
    FR_TRY(put(out, "reward", FR_F64, 1, n1, (void **)&rew));
    FR_TRY(put(out, "grad_pf_out", FR_F64, 2, nw, (void **)&gpf));
    FR_TRY(put(out, "grad_pb_out", FR_F64, 2, nb, (void **)&gpb));
    for (int64_t n = 0; n < N; n++) {
        const double *s = (const double *)st->data + 2 * n, *a = (const double *)ac->data + 2 * n;
        const int is_exit = ((const int32_t *)ex->data)[n] != 0;
        FR_TRY(fr_box_log_pf(&bo, &pol, s, a, is_exit, (const double *)pf->data + n * W, 1.0, gpf + n * W, &lpf[n]));
        rew[n] = (double)fr_box_reward(&bo, s);
        lpb[n] = NAN; /* P_B(s | s + a) of a step */
        if (is_exit) continue;
        const double sn[2] = {s[0] + a[0], s[1] + a[1]};
        FR_TRY(fr_box_log_pb(&bo, &pol, sn, a, pb ? (const double *)pb->data + n * 3 * pol.K : NULL, 1.0,
                             gpb + n * 3 * pol.K, &lpb[n]));
    }
    return FR_OK;
}

int flowrl_gfn_loss(const char *kind, const flowrl_tensors *in, flowrl_tensors **out)
{
    if (!kind || !in || !out) return fr_fail(FR_ERR_ARG, "flowrl_gfn_loss: NULL argument");
    *out = NULL;
    if (strcmp(kind, "box") == 0) {
        FR_TRY(flowrl_tensors_new(out));
        fr_status s = box_log_probs(&in->f, &(*out)->f);
        if (s != FR_OK) {
            flowrl_tensors_free(*out);
            *out = NULL;
        }
        return s;
    }
    int k = 0;
    const char *name;
    while ((name = fr_gfn_loss_name((fr_gfn_loss_kind)k)) && strcmp(name, kind) != 0) k++;
    if (!name) return fr_fail(FR_ERR_ARG, "flowrl_gfn_loss: unknown loss '%s'", kind);
    FR_TRY(flowrl_tensors_new(out));
    fr_status s = k == FR_GFN_FM ? fm_loss(&in->f, &(*out)->f) : traj_loss((fr_gfn_loss_kind)k, &in->f, &(*out)->f);
    if (s != FR_OK) {
        flowrl_tensors_free(*out);
        *out = NULL;
    }
    return s;
}
