/* The audit log of a single-checkpoint trainer (flowrl/audit_train.h): gmflow train, piflow
 * train and bc write their steps through here, in `flowrl train`'s format. */
#include "flowrl/audit_train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flowrl/atomic_file.h"
#include "flowrl/digest.h"
#include "flowrl/file_util.h"
#include "flowrl/profile.h"
#include "flowrl/safetensors.h"

fr_status fr_audit_train_path(const char *ckpt, char *buf, size_t n)
{
    static const char suf[] = ".safetensors";
    size_t len = strlen(ckpt);
    const size_t ls = sizeof suf - 1;
    if (len > ls && strcmp(ckpt + len - ls, suf) == 0) len -= ls;
    if ((size_t)snprintf(buf, n, "%.*s.audit.log", (int)len, ckpt) >= n)
        return fr_fail(FR_ERR_ARG, "%s: the audit log's path is too long", ckpt);
    return FR_OK;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* prev's bytes to path (atomic). */
static fr_status copy_log(const char *prev, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FR_TRY(fr_read_file_max(prev, FR_AUDIT_MAX_BYTES, &buf, &len));
    fr_status s = fr_atomic_write_bytes(path, buf, len);
    free(buf);
    return s;
}

fr_status fr_audit_train_open(fr_audit **a, const fr_audit_train_cfg *c, const fr_backend *be, char *path, size_t n)
{
    *a = NULL;
    fr_audit_kv kv[16];
    if (c->n_extra + 1 > sizeof kv / sizeof kv[0])
        return fr_fail(FR_ERR_ARG, "%s: %zu env lines (at most 15)", c->cmd, c->n_extra);
    kv[0] = (fr_audit_kv){"run.cmd", c->cmd};
    for (size_t i = 0; i < c->n_extra; i++) kv[i + 1] = c->extra[i];
    if (c->log && c->log[0]) {
        if ((size_t)snprintf(path, n, "%s", c->log) >= n) return fr_fail(FR_ERR_ARG, "%s: the path is too long", c->log);
    } else
        FR_TRY(fr_audit_train_path(c->out, path, n));
    const int resumed = c->resumed && c->resumed[0];
    int64_t from = resumed ? c->from : 0;
    if (resumed && c->step_key) {
        fr_st_file f;
        FR_TRY(fr_st_read(&f, c->resumed));
        const fr_status s = fr_st_get_meta_i64(&f, c->resumed, c->step_key, 0, FR_AUDIT_MAX_STEP, &from);
        fr_st_free(&f);
        FR_TRY(s);
    }
    if (from <= 0) {
        if (remove(path) != 0 && errno != ENOENT) return fr_fail(FR_ERR_IO, "%s: %s", path, strerror(errno));
    } else {
        char prev[4096];
        FR_TRY(fr_audit_train_path(c->resumed, prev, sizeof prev));
        if (!exists(path) && strcmp(prev, path) != 0 && exists(prev)) FR_TRY(copy_log(prev, path));
        if (exists(path)) {
            fr_status s = fr_audit_truncate_to_step(path, from);
            if (s != FR_OK) return fr_fail(s, "%s (resuming at step %lld): %s", path, (long long)from, fr_last_error());
        }
    }
    const fr_audit_opts o = {be->name, be->threads, kv, c->n_extra + 1, 0};
    return fr_audit_open(a, path, &o);
}

/* acc + the squares of x[0 .. n) in double, one chain in element order (held in a register):
 * the gradient norm's bits, whichever path (one by one, or on the host threads) records it. */
static double sumsq_chain(double acc, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) acc += (double)x[i] * (double)x[i];
    return acc;
}

/* Each tensor of ts (one per parameter of v, in be's memory) as "PREFIX<name>", through host
 * (on a device backend; a host backend's tensors are read in place); sq (may be NULL)
 * accumulates the sum of their squares in double, in parameter order. A NULL ts takes the
 * parameters' own tensors: values (grads 0) or gradients (grads 1). */
static fr_status rec_list(fr_audit *a, fr_backend *be, const fr_audit_params *v, const fr_tensor *ts, int grads,
                          const char *prefix, float *host, double *sq)
{
    char nm[FR_AUDIT_MAX_NAME + 1];
    for (int p = 0; p < v->n; p++) {
        const fr_tensor *t = ts ? &ts[p] : grads ? v->params[p].grad : v->params[p].value;
        const float *x = be->device ? host : (const float *)t->data;
        if (be->device) FR_TRY(fr_d2h(be, host, t->data, fr_tensor_nbytes(t)));
        fr_tensor h = fr_tensor_f32((float *)x, t->ndim, t->shape);
        if (sq) *sq = sumsq_chain(*sq, x, fr_tensor_numel(t));
        snprintf(nm, sizeof nm, "%s%s", prefix, v->name(v->ctx, p));
        FR_TRY(fr_audit_tensor(a, nm, &h));
    }
    return FR_OK;
}

/* ---- a host backend's step: the digests and the gradient norm's chain on its threads ---- */

typedef struct {
    const char *prefix;
    int p;
    fr_tensor t; /* a view of host memory */
    uint64_t digest;
} step_rec;

typedef struct {
    step_rec *recs;
    int n_grads; /* recs[0 .. n_grads): the gradients, whose squares the chain sums */
    double sq;
} step_jobs;

/* Job 0: the sum of the gradients' squares, one double chain in element order (as
 * rec_list's); job k > 0: the digest of record k - 1. The chain is the longest job and the
 * first one taken. */
static void step_job(void *ctx, int64_t k)
{
    step_jobs *js = ctx;
    if (k > 0) {
        step_rec *r = &js->recs[k - 1];
        r->digest = fr_tensor_digest(&r->t);
        return;
    }
    double acc = 0.0;
    for (int g = 0; g < js->n_grads; g++) acc = sumsq_chain(acc, js->recs[g].t.data, fr_tensor_numel(&js->recs[g].t));
    js->sq = acc;
}

static void add_list(step_rec *recs, int *n, const fr_audit_params *v, const fr_tensor *ts, int grads, const char *prefix)
{
    for (int p = 0; p < v->n; p++) {
        const fr_tensor *t = ts ? &ts[p] : grads ? v->params[p].grad : v->params[p].value;
        recs[*n] = (step_rec){prefix, p, fr_tensor_f32((float *)t->data, t->ndim, t->shape), 0};
        (*n)++;
    }
}

static fr_status write_list(fr_audit *a, const fr_audit_params *v, const step_rec *recs, int from, int to)
{
    char nm[FR_AUDIT_MAX_NAME + 1];
    for (int q = from; q < to; q++) {
        snprintf(nm, sizeof nm, "%s%s", recs[q].prefix, v->name(v->ctx, recs[q].p));
        FR_TRY(fr_audit_tensor_digested(a, nm, &recs[q].t, recs[q].digest));
    }
    return FR_OK;
}

/* train_step's records in its order, the same bytes: every digest and the chain first, as jobs
 * on the backend's host threads (fr_host_for), then the lines. */
static fr_status train_step_host(fr_audit *a, int64_t step, double loss, const fr_audit_params *v,
                                 const fr_adamw_state *opt, const fr_ema *ema)
{
    step_rec *recs = fr_malloc((size_t)(5 * v->n + 1) * sizeof *recs);
    if (!recs) return FR_ERR_NOMEM;
    int n = 0;
    add_list(recs, &n, v, NULL, 1, "grad.");
    add_list(recs, &n, v, NULL, 0, "");
    if (opt) add_list(recs, &n, v, opt->m, 0, "optim.m.");
    if (opt) add_list(recs, &n, v, opt->v, 0, "optim.v.");
    if (ema) add_list(recs, &n, v, ema->shadow, 0, "ema.");
    step_jobs js = {recs, v->n, 0.0};
    fr_host_for(v->be, 1 + (int64_t)n, step_job, &js);
    const int P = v->n;
    fr_status s = fr_audit_begin_step(a, step);
    if (s == FR_OK) s = fr_audit_scalar_f64(a, "loss", loss);
    if (s == FR_OK) s = write_list(a, v, recs, 0, P);
    if (s == FR_OK) s = fr_audit_scalar_f64(a, "grad_norm", sqrt(js.sq));
    if (s == FR_OK) s = write_list(a, v, recs, P, opt ? 4 * P : 2 * P);
    if (s == FR_OK && opt) s = fr_audit_scalar_f64(a, "optim.step", (double)opt->step);
    if (s == FR_OK && ema) s = write_list(a, v, recs, opt ? 4 * P : 2 * P, n);
    free(recs);
    return s == FR_OK ? fr_audit_end_step(a) : s;
}

static fr_status train_step(fr_audit *a, int64_t step, double loss, const fr_audit_params *v,
                            const fr_adamw_state *opt, const fr_ema *ema)
{
    if (!v->be->device && !(opt && opt->be->device) && !(ema && ema->be->device))
        return train_step_host(a, step, loss, v, opt, ema);
    int64_t most = 1;
    for (int p = 0; p < v->n; p++)
        if (fr_tensor_numel(v->params[p].value) > most) most = fr_tensor_numel(v->params[p].value);
    float *host = fr_malloc((size_t)most * sizeof *host);
    if (!host) return FR_ERR_NOMEM;
    double sq = 0.0;
    fr_status s = fr_audit_begin_step(a, step);
    if (s == FR_OK) s = fr_audit_scalar_f64(a, "loss", loss);
    if (s == FR_OK) s = rec_list(a, v->be, v, NULL, 1, "grad.", host, &sq);
    if (s == FR_OK) s = fr_audit_scalar_f64(a, "grad_norm", sqrt(sq));
    if (s == FR_OK) s = rec_list(a, v->be, v, NULL, 0, "", host, NULL);
    if (s == FR_OK && opt) s = rec_list(a, opt->be, v, opt->m, 0, "optim.m.", host, NULL);
    if (s == FR_OK && opt) s = rec_list(a, opt->be, v, opt->v, 0, "optim.v.", host, NULL);
    if (s == FR_OK && opt) s = fr_audit_scalar_f64(a, "optim.step", (double)opt->step);
    if (s == FR_OK && ema) s = rec_list(a, ema->be, v, ema->shadow, 0, "ema.", host, NULL);
    free(host);
    return s == FR_OK ? fr_audit_end_step(a) : s;
}

fr_status fr_audit_train_step_params(fr_audit *a, int64_t step, double loss, const fr_audit_params *v,
                                     const fr_adamw_state *opt, const fr_ema *ema)
{
    fr_profile_begin(FR_PROF_AUDIT); /* FLOWRL_PROFILE's "audit records", as flowrl train's */
    const fr_status s = train_step(a, step, loss, v, opt, ema);
    fr_profile_end(FR_PROF_AUDIT);
    return s;
}

static const char *mlp_name(const void *net, int p)
{
    return ((const fr_mlp *)net)->names[p];
}

fr_status fr_audit_train_step(fr_audit *a, int64_t step, double loss, const fr_mlp *net, const fr_adamw_state *opt,
                              const fr_ema *ema)
{
    const fr_audit_params v = {net->be, net->params, net->n_params, mlp_name, net};
    return fr_audit_train_step_params(a, step, loss, &v, opt, ema);
}
