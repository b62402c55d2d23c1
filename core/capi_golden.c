/* The stable C API (flowrl/capi.h): tensor sets (safetensors files) and the golden
 * registry, generically: a case's inputs and outputs are the named tensors of a set. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/golden_internal.h"
#include "core/capi_internal.h"
#include "flowrl/ops.h"
#include "flowrl/safetensors.h"

int flowrl_tensors_new(flowrl_tensors **out)
{
    if (!out) return fr_fail(FR_ERR_ARG, "flowrl_tensors_new: NULL out");
    *out = fr_calloc(1, sizeof **out);
    if (!*out) return FR_ERR_NOMEM;
    fr_st_init(&(*out)->f);
    return FR_OK;
}

void flowrl_tensors_free(flowrl_tensors *t)
{
    if (!t) return;
    fr_st_free(&t->f);
    free(t);
}

int flowrl_tensors_read(const char *path, flowrl_tensors **out)
{
    if (!path || !out) return fr_fail(FR_ERR_ARG, "flowrl_tensors_read: NULL argument");
    FR_TRY(flowrl_tensors_new(out));
    fr_status s = fr_st_read(&(*out)->f, path);
    if (s != FR_OK) {
        free(*out);
        *out = NULL;
    }
    return s;
}

int flowrl_tensors_write(const flowrl_tensors *t, const char *path)
{
    if (!t || !path) return fr_fail(FR_ERR_ARG, "flowrl_tensors_write: NULL argument");
    return fr_st_write(&t->f, path);
}

int64_t flowrl_tensors_count(const flowrl_tensors *t) { return t ? (int64_t)t->f.n : 0; }

int flowrl_tensors_get(const flowrl_tensors *t, int64_t i, const char **name, const char **dtype, int *ndim,
                       int64_t *shape, const void **data, int64_t *nbytes)
{
    if (!t || i < 0 || i >= (int64_t)t->f.n)
        return fr_fail(FR_ERR_ARG, "flowrl_tensors_get: index %lld of %lld tensors", (long long)i,
                       (long long)flowrl_tensors_count(t));
    const fr_tensor *x = &t->f.entries[i].t;
    if (name) *name = t->f.entries[i].name;
    if (dtype) *dtype = fr_dtype_name(x->dtype);
    if (ndim) *ndim = x->ndim;
    if (shape)
        for (int k = 0; k < FR_MAX_DIMS; k++) shape[k] = k < x->ndim ? x->shape[k] : 1;
    if (data) *data = x->data;
    if (nbytes) *nbytes = (int64_t)fr_tensor_nbytes(x);
    return FR_OK;
}

int flowrl_tensors_add(flowrl_tensors *t, const char *name, const char *dtype, int ndim, const int64_t *shape,
                       const void *data)
{
    if (!t || !name || !dtype || (ndim > 0 && !shape))
        return fr_fail(FR_ERR_ARG, "flowrl_tensors_add: NULL argument");
    fr_dtype dt;
    if (!fr_dtype_from_name(dtype, &dt)) return fr_fail(FR_ERR_ARG, "flowrl_tensors_add %s: unknown dtype '%s'", name, dtype);
    if (ndim < 0 || ndim > FR_MAX_DIMS)
        return fr_fail(FR_ERR_ARG, "flowrl_tensors_add %s: %d dims, at most %d", name, ndim, FR_MAX_DIMS);
    for (int k = 0; k < ndim; k++)
        if (shape[k] < 0) return fr_fail(FR_ERR_ARG, "flowrl_tensors_add %s: dim %d is %lld", name, k, (long long)shape[k]);
    fr_tensor x;
    FR_TRY(fr_tensor_alloc(&x, dt, ndim, shape));
    size_t bytes = fr_tensor_nbytes(&x);
    if (bytes && !data) {
        fr_tensor_free(&x);
        return fr_fail(FR_ERR_ARG, "flowrl_tensors_add %s: NULL data", name);
    }
    if (bytes) memcpy(x.data, data, bytes);
    fr_status s = fr_st_add_take(&t->f, name, &x);
    if (s != FR_OK) fr_tensor_free(&x);
    return s;
}

int64_t flowrl_tensors_meta_count(const flowrl_tensors *t) { return t ? (int64_t)t->f.n_meta : 0; }

int flowrl_tensors_meta_get(const flowrl_tensors *t, int64_t i, const char **key, const char **value)
{
    if (!t || i < 0 || i >= (int64_t)t->f.n_meta)
        return fr_fail(FR_ERR_ARG, "flowrl_tensors_meta_get: index %lld of %lld entries", (long long)i,
                       (long long)flowrl_tensors_meta_count(t));
    if (key) *key = t->f.meta[i].key;
    if (value) *value = t->f.meta[i].value;
    return FR_OK;
}

int flowrl_tensors_meta_set(flowrl_tensors *t, const char *key, const char *value)
{
    if (!t || !key || !value) return fr_fail(FR_ERR_ARG, "flowrl_tensors_meta_set: NULL argument");
    return fr_st_set_meta(&t->f, key, value);
}

/* ---- the golden registry ------------------------------------------------------------------- */

int64_t flowrl_golden_count(void) { return (int64_t)fr_golden_count(); }

const char *flowrl_golden_name(int64_t i)
{
    return i >= 0 && i < (int64_t)fr_golden_count() ? fr_golden_get((size_t)i)->name : NULL;
}

/* The op-table entries a case of kind "op" can name (flowrl/ops.h); an entry missing here
 * is caught by tests/test_capi.c, which resolves every op case. */
#define E(x) {#x, offsetof(fr_ops, x)}
static const struct {
    const char *name;
    size_t off;
} k_entries[] = {
    E(gemm), E(bias_add), E(bias_grad), E(act_fwd), E(act_bwd), E(act_jvp), E(layernorm_fwd), E(layernorm_bwd),
    E(binary), E(unary), E(axpby), E(scale), E(fill), E(copy), E(row_sum), E(row_mean), E(sum),
    E(global_norm), E(adamw), E(fm_loss), E(flow_target), E(awm_sqerr), E(row_msd_f64), E(kl_grad_add),
    E(ema_lerp), E(nft_rows), E(nft_grad), E(temb_sinusoidal), E(embed_gather_add), E(embed_scatter_add),
    E(x0_head_fwd), E(x0_head_bwd), E(eps_head_fwd), E(eps_head_bwd), E(noise_mix), E(sampler_step), E(sampler_logprob), E(sampler_logprob_w), E(cfg_combine),
    E(flow_x0), E(rng_normal_rows), E(noise_fm), E(gather_rows), E(logp_backward), E(row_sumsq_diff),
    E(kl_grad), E(guard_grad), E(softmax_rows), E(softmax_rows_bwd), E(adaln_mod), E(adaln_mod_bwd), E(gate_add),
    E(gate_add_bwd), E(edge_gather), E(edge_scatter_add), E(act_fwd_save), E(act_bwd_saved),
};
#undef E

static const char *entry_name(long slot)
{
    for (size_t i = 0; i < sizeof k_entries / sizeof k_entries[0]; i++)
        if ((long)k_entries[i].off == slot) return k_entries[i].name;
    return NULL;
}

static fr_status find_case(const char *fn, const char *name, const fr_golden_case **c)
{
    if (!name) return fr_fail(FR_ERR_ARG, "%s: NULL case name", fn);
    *c = fr_golden_find(name);
    if (!*c) return fr_fail(FR_ERR_ARG, "%s: no golden case '%s' (flowrl golden list)", fn, name);
    return FR_OK;
}

int flowrl_golden_info(const char *name, const char **what, const char **kind, const char **function,
                       float *tol_abs, float *tol_rel)
{
    const fr_golden_case *c;
    FR_TRY(find_case("flowrl_golden_info", name, &c));
    const char *fn = c->slot >= 0 ? entry_name(c->slot) : NULL;
    if (c->slot >= 0 && !fn)
        return fr_fail(FR_ERR_UNSUPPORTED, "flowrl_golden_info %s: op-table slot %ld has no name in core/capi_golden.c",
                       name, c->slot);
    if (what) *what = c->what;
    if (kind) *kind = fr_golden_kind_name(c);
    if (function) *function = fn;
    if (tol_abs) *tol_abs = c->fast_tol.abs;
    if (tol_rel) *tol_rel = c->fast_tol.rel;
    return FR_OK;
}

int flowrl_golden_build(const char *name, flowrl_tensors **out)
{
    const fr_golden_case *c;
    if (!out) return fr_fail(FR_ERR_ARG, "flowrl_golden_build: NULL out");
    *out = NULL;
    FR_TRY(find_case("flowrl_golden_build", name, &c));
    FR_TRY(flowrl_tensors_new(out));
    fr_status s = fr_golden_build(c, &(*out)->f);
    if (s != FR_OK) {
        flowrl_tensors_free(*out);
        *out = NULL;
    }
    return s;
}

int flowrl_golden_compute(flowrl_backend *b, const char *name, const flowrl_tensors *in, flowrl_tensors **out)
{
    const fr_golden_case *c;
    if (!in || !out) return fr_fail(FR_ERR_ARG, "flowrl_golden_compute: NULL argument");
    *out = NULL;
    FR_TRY(find_case("flowrl_golden_compute", name, &c));
    fr_backend ref, *be;
    FR_TRY(fr_capi_backend(b, &ref, &be));
    FR_TRY(flowrl_tensors_new(out));
    fr_golden_dev d;
    fr_gd_begin(&d, be);
    fr_status s = fr_gd_end(&d, c->compute(c, &d, &in->f, &(*out)->f));
    if (s != FR_OK) {
        flowrl_tensors_free(*out);
        *out = NULL;
    }
    return s;
}
