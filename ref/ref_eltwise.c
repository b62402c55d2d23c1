/* Elementwise ops over the element functions of flowrl/elem.h. */
#include "flowrl/elem.h"
#include "ref/ref_internal.h"

#include <string.h>

void fr_ref_binary(fr_binop op, int64_t n,
                   const float *a, // (n,)
                   const float *b, // (n,)
                   float *out)     // (n,), may alias a or b
{
    for (int64_t i = 0; i < n; i++) out[i] = fr_binary_elem(op, a[i], b[i]);
}

void fr_ref_unary(fr_unop op, int64_t n,
                  const float *x, // (n,)
                  float *out)     // (n,), may alias x
{
    for (int64_t i = 0; i < n; i++) out[i] = fr_unary_elem(op, x[i]);
}

void fr_ref_axpby(int64_t n, float alpha,
                  const float *x, // (n,)
                  float beta,
                  float *y)       // (n,)
{
    for (int64_t i = 0; i < n; i++) y[i] = fr_axpby_elem(alpha, x[i], beta, y[i]);
}

void fr_ref_scale(int64_t n, float alpha,
                  const float *x, // (n,)
                  float *y)       // (n,), may alias x
{
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i];
}

void fr_ref_fill_const(int64_t n, float value,
                       float *y) // (n,)
{
    for (int64_t i = 0; i < n; i++) y[i] = value;
}

void fr_ref_copy(int64_t n,
                 const float *src, // (n,)
                 float *dst)       // (n,); overlap allowed
{
    if (n > 0 && src != dst) memmove(dst, src, (size_t)n * sizeof *dst);
}
