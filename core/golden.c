/* The golden registry and the helpers its case files share (flowrl/golden.h,
 * golden/README.md "Inputs"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/buildinfo.h"
#include "flowrl/digest.h"
#include "flowrl/philox.h"

/* Families in registry order; a new family (e.g. whole training updates) is one line. */
static const struct {
    const fr_golden_case *cases;
    const size_t *n;
} k_families[] = {
    {fr_golden_cases_ops, &fr_golden_n_ops},
    {fr_golden_cases_samplers, &fr_golden_n_samplers},
    {fr_golden_cases_advantages, &fr_golden_n_advantages},
    {fr_golden_cases_objectives, &fr_golden_n_objectives},
    {fr_golden_cases_epoch, &fr_golden_n_epoch},
    {fr_golden_cases_awm, &fr_golden_n_awm},
    {fr_golden_cases_dgpo, &fr_golden_n_dgpo},
    {fr_golden_cases_nft, &fr_golden_n_nft},
    {fr_golden_cases_pair_dpo, &fr_golden_n_pair_dpo},
    {fr_golden_cases_dro, &fr_golden_n_dro},
    {fr_golden_cases_dppo, &fr_golden_n_dppo},
    {fr_golden_cases_gfn, &fr_golden_n_gfn},
    {fr_golden_cases_gfn_diffusion, &fr_golden_n_gfn_diffusion},
    {fr_golden_cases_rgrad, &fr_golden_n_rgrad},
    {fr_golden_cases_pxpo, &fr_golden_n_pxpo},
    {fr_golden_cases_prefmore, &fr_golden_n_prefmore},
    {fr_golden_cases_gfn_box, &fr_golden_n_gfn_box},
    {fr_golden_cases_fpo, &fr_golden_n_fpo},
    {fr_golden_cases_reinflow, &fr_golden_n_reinflow},
    {fr_golden_cases_lora, &fr_golden_n_lora},
    {fr_golden_cases_attn, &fr_golden_n_attn},
    {fr_golden_cases_afn, &fr_golden_n_afn},
    {fr_golden_cases_gtb, &fr_golden_n_gtb},
    {fr_golden_cases_graph, &fr_golden_n_graph},
    {fr_golden_cases_piflow, &fr_golden_n_piflow},
    {fr_golden_cases_gmflow, &fr_golden_n_gmflow},
};
#define N_FAMILIES (sizeof k_families / sizeof k_families[0])

size_t fr_golden_count(void)
{
    size_t n = 0;
    for (size_t f = 0; f < N_FAMILIES; f++) n += *k_families[f].n;
    return n;
}

const fr_golden_case *fr_golden_get(size_t i)
{
    for (size_t f = 0; f < N_FAMILIES; f++) {
        if (i < *k_families[f].n) return &k_families[f].cases[i];
        i -= *k_families[f].n;
    }
    return NULL;
}

const fr_golden_case *fr_golden_find(const char *name)
{
    for (size_t i = 0; i < fr_golden_count(); i++)
        if (strcmp(fr_golden_get(i)->name, name) == 0) return fr_golden_get(i);
    return NULL;
}

const char *fr_golden_kind_name(const fr_golden_case *c)
{
    return c->slot == FR_GOLDEN_SHARED ? "shared" : c->slot == FR_GOLDEN_ALL_OPS ? "ops" : "op";
}

const fr_ops *fr_golden_ref_ops(void)
{
    const fr_ops *ops = NULL;
    return fr_backend_get("ref", &ops) == FR_OK ? ops : NULL;
}

/* ---- generator helpers ------------------------------------------------------------------ */

static fr_status add_input(fr_golden_in *g, const char *name, fr_dtype dt, int ndim,
                           const int64_t *shape, const void *data, float **out)
{
    char key[160];
    snprintf(key, sizeof key, "in.%s", name);
    fr_tensor t;
    FR_TRY(fr_tensor_alloc(&t, dt, ndim, shape));
    if (data) memcpy(t.data, data, fr_tensor_nbytes(&t));
    fr_status s = fr_st_add_take(g->f, key, &t);
    if (s != FR_OK) {
        fr_tensor_free(&t);
        return s;
    }
    if (out) *out = (float *)fr_st_get(g->f, key)->data;
    return FR_OK;
}

static fr_status draw(fr_golden_in *g, const char *name, int ndim, const int64_t *shape,
                      int normal, float a, float b, float **data)
{
    float *p;
    FR_TRY(add_input(g, name, FR_F32, ndim, shape, NULL, &p));
    int64_t n = fr_shape_numel(ndim, shape);
    uint32_t c1 = g->next_c1++;
    if (normal) {
        fr_rng_fill_normal(p, n, FR_GOLDEN_SEED, FR_RNG_GOLDEN, g->c0, c1, 0);
        for (int64_t i = 0; i < n; i++) p[i] = a * p[i];
    } else {
        fr_rng_fill_uniform(p, n, FR_GOLDEN_SEED, FR_RNG_GOLDEN, g->c0, c1, 0);
        float w = b - a;
        for (int64_t i = 0; i < n; i++) p[i] = a + w * p[i];
    }
    char key[160], val[256];
    snprintf(key, sizeof key, "rng.in.%s", name);
    if (normal)
        snprintf(val, sizeof val, "normal scale=%.9g seed=0x%x purpose=%d c0=0x%08x c1=%u c2=0",
                 (double)a, FR_GOLDEN_SEED, FR_RNG_GOLDEN, g->c0, c1);
    else
        snprintf(val, sizeof val, "uniform lo=%.9g hi=%.9g seed=0x%x purpose=%d c0=0x%08x c1=%u c2=0",
                 (double)a, (double)b, FR_GOLDEN_SEED, FR_RNG_GOLDEN, g->c0, c1);
    FR_TRY(fr_st_set_meta(g->f, key, val));
    if (data) *data = p;
    return FR_OK;
}

fr_status fr_gi_uniform(fr_golden_in *g, const char *name, int ndim, const int64_t *shape,
                        float lo, float hi, float **data)
{
    return draw(g, name, ndim, shape, 0, lo, hi, data);
}

fr_status fr_gi_normal(fr_golden_in *g, const char *name, int ndim, const int64_t *shape,
                       float scale, float **data)
{
    return draw(g, name, ndim, shape, 1, scale, 0.0f, data);
}

fr_status fr_gi_scalar(fr_golden_in *g, const char *name, float v)
{
    return add_input(g, name, FR_F32, 0, NULL, &v, NULL);
}

fr_status fr_gi_scalar_f64(fr_golden_in *g, const char *name, double v)
{
    return add_input(g, name, FR_F64, 0, NULL, &v, NULL);
}

fr_status fr_gi_tensor(fr_golden_in *g, const char *name, fr_dtype dt, int ndim,
                       const int64_t *shape, const void *data, const char *how)
{
    FR_TRY(add_input(g, name, dt, ndim, shape, data, NULL));
    char key[160];
    snprintf(key, sizeof key, "derived.in.%s", name);
    return fr_st_set_meta(g->f, key, how);
}

fr_status fr_gi_param(fr_golden_in *g, const char *key, long long v)
{
    char k[160], val[32];
    snprintf(k, sizeof k, "param.%s", key);
    snprintf(val, sizeof val, "%lld", v);
    return fr_st_set_meta(g->f, k, val);
}

fr_status fr_gi_param_str(fr_golden_in *g, const char *key, const char *v)
{
    char k[160];
    snprintf(k, sizeof k, "param.%s", key);
    return fr_st_set_meta(g->f, k, v);
}

fr_status fr_gi_note(fr_golden_in *g, const char *key, const char *v)
{
    char k[160];
    snprintf(k, sizeof k, "note.%s", key);
    return fr_st_set_meta(g->f, k, v);
}

/* ---- compute helpers --------------------------------------------------------------------- */

static fr_status get_in(const fr_st_file *in, const char *name, fr_dtype dt, int ndim,
                        const fr_tensor **t)
{
    char key[160];
    snprintf(key, sizeof key, "in.%s", name);
    *t = fr_st_get(in, key);
    if (!*t) return fr_fail(FR_ERR_FORMAT, "golden: input tensor %s is missing", key);
    if ((*t)->dtype != dt || (*t)->ndim != ndim)
        return fr_fail(FR_ERR_FORMAT, "golden: %s is %s with %d dims, expected %s with %d",
                       key, fr_dtype_name((*t)->dtype), (*t)->ndim, fr_dtype_name(dt), ndim);
    return FR_OK;
}

fr_status fr_go_f32(const fr_st_file *in, const char *name, int ndim, int64_t *shape,
                    const float **data)
{
    const fr_tensor *t;
    FR_TRY(get_in(in, name, FR_F32, ndim, &t));
    if (shape)
        for (int i = 0; i < ndim; i++) shape[i] = t->shape[i];
    *data = (const float *)t->data;
    return FR_OK;
}

static fr_status get_exact(const fr_st_file *in, const char *name, fr_dtype dt, int ndim,
                           const int64_t *shape, const fr_tensor **t)
{
    FR_TRY(get_in(in, name, dt, ndim, t));
    for (int i = 0; i < ndim; i++)
        if ((*t)->shape[i] != shape[i])
            return fr_fail(FR_ERR_FORMAT, "golden: in.%s dim %d is %lld, expected %lld", name,
                           i, (long long)(*t)->shape[i], (long long)shape[i]);
    return FR_OK;
}

fr_status fr_go_exact(const fr_st_file *in, const char *name, fr_dtype dt, int ndim,
                      const int64_t *shape, const void **data)
{
    const fr_tensor *t;
    FR_TRY(get_exact(in, name, dt, ndim, shape, &t));
    *data = t->data;
    return FR_OK;
}

fr_status fr_go_scalar(const fr_st_file *in, const char *name, float *v)
{
    const fr_tensor *t;
    FR_TRY(get_in(in, name, FR_F32, 0, &t));
    *v = *(const float *)t->data;
    return FR_OK;
}

fr_status fr_go_scalar_f64(const fr_st_file *in, const char *name, double *v)
{
    const fr_tensor *t;
    FR_TRY(get_in(in, name, FR_F64, 0, &t));
    *v = *(const double *)t->data;
    return FR_OK;
}

fr_status fr_go_param(const fr_st_file *in, const char *key, long long lo, long long hi,
                      long long *v)
{
    char k[160];
    snprintf(k, sizeof k, "param.%s", key);
    const char *s = fr_st_get_meta(in, k);
    if (!s) return fr_fail(FR_ERR_FORMAT, "golden: metadata %s is missing", k);
    char *end;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || x < lo || x > hi)
        return fr_fail(FR_ERR_FORMAT, "golden: metadata %s = '%s', expected an integer in [%lld, %lld]",
                       k, s, lo, hi);
    *v = x;
    return FR_OK;
}

fr_status fr_go_out(fr_st_file *out, const char *name, fr_dtype dt, int ndim,
                    const int64_t *shape, void **data)
{
    char key[160];
    snprintf(key, sizeof key, "out.%s", name);
    fr_tensor t;
    FR_TRY(fr_tensor_alloc(&t, dt, ndim, shape));
    fr_status s = fr_st_add_take(out, key, &t);
    if (s != FR_OK) {
        fr_tensor_free(&t);
        return s;
    }
    *data = fr_st_get(out, key)->data;
    return FR_OK;
}

fr_status fr_go_out_f32(fr_st_file *out, const char *name, int ndim, const int64_t *shape,
                        float **data)
{
    void *p;
    FR_TRY(fr_go_out(out, name, FR_F32, ndim, shape, &p));
    *data = p;
    return FR_OK;
}

fr_status fr_go_out_scalar(fr_st_file *out, const char *name, float v)
{
    float *p;
    FR_TRY(fr_go_out_f32(out, name, 0, NULL, &p));
    *p = v;
    return FR_OK;
}

fr_status fr_go_out_scalar_f64(fr_st_file *out, const char *name, double v)
{
    void *p;
    FR_TRY(fr_go_out(out, name, FR_F64, 0, NULL, &p));
    memcpy(p, &v, sizeof v);
    return FR_OK;
}

/* ---- backend memory of a computation ------------------------------------------------------ */

void fr_gd_begin(fr_golden_dev *d, fr_backend *be)
{
    d->be = be;
    d->n = 0;
}

fr_status fr_gd_end(fr_golden_dev *d, fr_status s)
{
    for (int i = 0; i < d->n; i++)
        if (s == FR_OK && d->buf[i].host) s = fr_d2h(d->be, d->buf[i].host, d->buf[i].dev, d->buf[i].bytes);
    for (int i = 0; i < d->n; i++) fr_dev_free(d->be, d->buf[i].dev);
    d->n = 0;
    return s;
}

/* A new buffer of `bytes`, filled from host (NULL: zeros), read back into back (NULL: never). */
static fr_status gd_new(fr_golden_dev *d, size_t bytes, const void *host, void *back, void **dev)
{
    if (d->n == FR_GD_MAX) return fr_fail(FR_ERR_ARG, "golden: more than %d backend buffers in one case", FR_GD_MAX);
    void *p = fr_dev_alloc(d->be, bytes ? bytes : 1);
    if (!p) return FR_ERR_NOMEM;
    d->buf[d->n].dev = p;
    d->buf[d->n].host = back;
    d->buf[d->n].bytes = bytes;
    d->n++;
    if (host && bytes) FR_TRY(fr_h2d(d->be, p, host, bytes));
    *dev = p;
    return FR_OK;
}

fr_status fr_gd_alloc(fr_golden_dev *d, size_t bytes, void **dev) { return gd_new(d, bytes, NULL, NULL, dev); }

fr_status fr_gd_up(fr_golden_dev *d, const void *host, size_t bytes, void **dev)
{
    return gd_new(d, bytes, host, NULL, dev);
}

fr_status fr_gd_f32(fr_golden_dev *d, const fr_st_file *in, const char *name, int ndim, int64_t *shape,
                    const float **dev)
{
    const fr_tensor *t;
    FR_TRY(get_in(in, name, FR_F32, ndim, &t));
    if (shape)
        for (int i = 0; i < ndim; i++) shape[i] = t->shape[i];
    return gd_new(d, fr_tensor_nbytes(t), t->data, NULL, (void **)dev);
}

fr_status fr_gd_exact(fr_golden_dev *d, const fr_st_file *in, const char *name, fr_dtype dt, int ndim,
                      const int64_t *shape, const void **dev)
{
    const fr_tensor *t;
    FR_TRY(get_exact(in, name, dt, ndim, shape, &t));
    return gd_new(d, fr_tensor_nbytes(t), t->data, NULL, (void **)dev);
}

fr_status fr_gd_out(fr_golden_dev *d, fr_st_file *out, const char *name, fr_dtype dt, int ndim,
                    const int64_t *shape, const void *init, void **dev)
{
    void *host;
    FR_TRY(fr_go_out(out, name, dt, ndim, shape, &host));
    return gd_new(d, (size_t)fr_shape_numel(ndim, shape) * fr_dtype_size(dt), init, host, dev);
}

fr_status fr_gd_out_f32(fr_golden_dev *d, fr_st_file *out, const char *name, int ndim, const int64_t *shape,
                        const float *init, float **dev)
{
    return fr_gd_out(d, out, name, FR_F32, ndim, shape, init, (void **)dev);
}

fr_status fr_gd_read(fr_golden_dev *d, const void *dev, void **host)
{
    for (int i = 0; i < d->n; i++)
        if (d->buf[i].dev == dev && d->buf[i].host) {
            *host = d->buf[i].host;
            return fr_d2h(d->be, *host, dev, d->buf[i].bytes);
        }
    return fr_fail(FR_ERR_ARG, "golden: fr_gd_read of a buffer that is no output");
}

/* ---- one case file ------------------------------------------------------------------------ */

static fr_status build(const fr_golden_case *c, fr_st_file *f, fr_st_file *out)
{
    fr_backend ref;
    FR_TRY(fr_backend_open(&ref, "ref", 0, 1));
    fr_golden_in g = {f, (uint32_t)fr_digest_bytes(c->name, strlen(c->name)), 0};
    FR_TRY(c->inputs(c, &g));
    fr_golden_dev d;
    fr_gd_begin(&d, &ref);
    FR_TRY(fr_gd_end(&d, c->compute(c, &d, f, out)));
    for (size_t i = 0; i < out->n; i++) {
        const fr_tensor *t = &out->entries[i].t;
        const float *p = t->data;
        for (int64_t k = 0; t->dtype == FR_F32 && k < fr_tensor_numel(t); k++)
            if (!(p[k] - p[k] == 0.0f)) /* NaN or inf: a golden output must be finite */
                return fr_fail(FR_ERR_NUMERIC, "golden %s: %s[%lld] is not finite", c->name,
                               out->entries[i].name, (long long)k);
        FR_TRY(fr_st_add(f, out->entries[i].name, t));
    }
    char c0[16];
    snprintf(c0, sizeof c0, "0x%08x", g.c0);
    FR_TRY(fr_st_set_meta(f, "golden.format", FR_GOLDEN_FORMAT));
    FR_TRY(fr_st_set_meta(f, "golden.case", c->name));
    FR_TRY(fr_st_set_meta(f, "golden.what", c->what));
    FR_TRY(fr_st_set_meta(f, "golden.kind", fr_golden_kind_name(c)));
    FR_TRY(fr_st_set_meta(f, "golden.c0", c0));
    FR_TRY(fr_st_set_meta(f, "golden.command", FR_GOLDEN_COMMAND));
    FR_TRY(fr_st_set_meta(f, "flowrl.version", fr_version()));
    return FR_OK;
}

fr_status fr_golden_build(const fr_golden_case *c, fr_st_file *f)
{
    fr_st_file out;
    fr_st_init(f);
    fr_st_init(&out);
    fr_status s = build(c, f, &out);
    fr_st_free(&out);
    if (s != FR_OK) fr_st_free(f);
    return s;
}
