#include "flowrl/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} k_dtypes[FR_DTYPE_COUNT] = {
    [FR_F32] = {"F32", 4}, [FR_F64] = {"F64", 8}, [FR_F16] = {"F16", 2},
    [FR_BF16] = {"BF16", 2}, [FR_I64] = {"I64", 8}, [FR_I32] = {"I32", 4},
    [FR_I16] = {"I16", 2}, [FR_I8] = {"I8", 1}, [FR_U64] = {"U64", 8},
    [FR_U32] = {"U32", 4}, [FR_U16] = {"U16", 2}, [FR_U8] = {"U8", 1},
    [FR_BOOL] = {"BOOL", 1},
};

size_t fr_dtype_size(fr_dtype dt) { return (unsigned)dt < FR_DTYPE_COUNT ? k_dtypes[dt].size : 0; }

const char *fr_dtype_name(fr_dtype dt) { return (unsigned)dt < FR_DTYPE_COUNT ? k_dtypes[dt].name : "?"; }

int fr_dtype_from_name(const char *name, fr_dtype *out)
{
    for (int i = 0; i < FR_DTYPE_COUNT; i++) {
        if (strcmp(name, k_dtypes[i].name) == 0) {
            *out = (fr_dtype)i;
            return 1;
        }
    }
    return 0;
}

int64_t fr_shape_numel(int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > FR_MAX_DIMS) return -1;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

static fr_status set_shape(fr_tensor *t, fr_dtype dt, int ndim, const int64_t *shape)
{
    if ((unsigned)dt >= FR_DTYPE_COUNT) return fr_fail(FR_ERR_ARG, "tensor: unknown dtype %d", (int)dt);
    if (ndim < 0 || ndim > FR_MAX_DIMS)
        return fr_fail(FR_ERR_ARG, "tensor: %d dims (flowrl tensors have 0..%d)", ndim, FR_MAX_DIMS);
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < FR_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    if (fr_shape_numel(ndim, shape) < 0) return fr_fail(FR_ERR_ARG, "tensor: invalid shape");
    return FR_OK;
}

fr_status fr_tensor_alloc(fr_tensor *t, fr_dtype dt, int ndim, const int64_t *shape)
{
    FR_TRY(set_shape(t, dt, ndim, shape));
    int64_t n = fr_tensor_numel(t);
    if ((uint64_t)n > SIZE_MAX / fr_dtype_size(dt))
        return fr_fail(FR_ERR_NOMEM, "tensor: %lld elements do not fit in memory", (long long)n);
    t->data = fr_calloc((size_t)n, fr_dtype_size(dt));
    if (!t->data) return FR_ERR_NOMEM;
    t->owned = 1;
    return FR_OK;
}

fr_tensor fr_tensor_view(void *data, fr_dtype dt, int ndim, const int64_t *shape)
{
    fr_tensor t;
    if (set_shape(&t, dt, ndim, shape) != FR_OK) memset(&t, 0, sizeof t);
    t.data = data;
    t.owned = 0;
    return t;
}

fr_status fr_tensor_clone(fr_tensor *dst, const fr_tensor *src)
{
    FR_TRY(fr_tensor_alloc(dst, src->dtype, src->ndim, src->shape));
    if (fr_tensor_nbytes(src)) memcpy(dst->data, src->data, fr_tensor_nbytes(src));
    return FR_OK;
}

void fr_tensor_free(fr_tensor *t)
{
    if (t->owned) free(t->data);
    t->data = NULL;
    t->owned = 0;
}

int fr_tensor_same_shape(const fr_tensor *a, const fr_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *fr_shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, ")");
    return buf;
}
