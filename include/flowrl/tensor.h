/* fr_tensor: a small dense row-major tensor (up to 4 dims). Ops work on float32; the
 * other dtypes exist so that safetensors files (step counters, RNG coordinates, labels)
 * round-trip. Data is owned (freed by fr_tensor_free) or borrowed (a view). */
#ifndef FLOWRL_TENSOR_H
#define FLOWRL_TENSOR_H

#include <stdint.h>
#include <stddef.h>

#include "flowrl/status.h"

#define FR_MAX_DIMS 4

typedef enum {
    FR_F32 = 0,
    FR_F64,
    FR_F16,
    FR_BF16,
    FR_I64,
    FR_I32,
    FR_I16,
    FR_I8,
    FR_U64,
    FR_U32,
    FR_U16,
    FR_U8,
    FR_BOOL,
    FR_DTYPE_COUNT
} fr_dtype;

typedef enum {
    FR_DEVICE_CPU = 0,
    FR_DEVICE_CUDA = 1
} fr_device;

typedef struct {
    fr_dtype dtype;
    int ndim;                   /* 0 (a scalar) .. FR_MAX_DIMS */
    int64_t shape[FR_MAX_DIMS]; /* unused trailing entries are 1 */
    void *data;
    int owned;                  /* 1: fr_tensor_free releases data */
    fr_device device;
} fr_tensor;

size_t fr_dtype_size(fr_dtype dt);
const char *fr_dtype_name(fr_dtype dt); /* safetensors spelling: "F32", "I64", ... */
int fr_dtype_from_name(const char *name, fr_dtype *out); /* 1 if known */

/* Number of elements; -1 if the shape is invalid (negative dim or overflow). */
int64_t fr_shape_numel(int ndim, const int64_t *shape);
static inline int64_t fr_tensor_numel(const fr_tensor *t) { return fr_shape_numel(t->ndim, t->shape); }
static inline size_t fr_tensor_nbytes(const fr_tensor *t)
{
    return (size_t)fr_tensor_numel(t) * fr_dtype_size(t->dtype);
}

/* Allocates zeroed, owned storage. */
fr_status fr_tensor_alloc(fr_tensor *t, fr_dtype dt, int ndim, const int64_t *shape);
/* A borrowed view over existing memory (never freed by fr_tensor_free). */
fr_tensor fr_tensor_view(void *data, fr_dtype dt, int ndim, const int64_t *shape);
/* Convenience for float32 views: fr_tensor_f32(ptr, 2, (int64_t[]){B, D}). */
static inline fr_tensor fr_tensor_f32(float *data, int ndim, const int64_t *shape)
{
    return fr_tensor_view(data, FR_F32, ndim, shape);
}
fr_status fr_tensor_clone(fr_tensor *dst, const fr_tensor *src);
void fr_tensor_free(fr_tensor *t);
int fr_tensor_same_shape(const fr_tensor *a, const fr_tensor *b);
/* "(2, 3, 4)" into buf. */
const char *fr_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

#endif
