/* sum and global_norm (ref/ref_reduce.c): the 8-lane kernel of kern/k_lanes.h, result in
 * backend memory. */
#ifndef FLOWRL_KERN_K_REDUCE_SCALAR_H
#define FLOWRL_KERN_K_REDUCE_SCALAR_H

#include "flowrl/ops.h"
#include "kern/k_lanes.h"

static void k_sum(int64_t n,
                  const float *x, // (n,)
                  float *out)     // (1,)
{
    FR_KARG(x, n, "x");
    FR_KARG(out, 1, "out");
    k_lanes(FR_KL_SUM, n, x, NULL, out, 1, 1);
}

/* sqrtf(((0 + s_0) + s_1) + ...): one launch per tensor in index order, each adding its s_t
 * to the running value in out (launches on one stream run in order); the last takes the
 * square root. No tensors: sqrtf(0) = 0. */
static void k_global_norm(int count,
                          const float *const *xs, // host (count,): backend pointers, xs[t] (ns[t],)
                          const int64_t *ns,      // host (count,)
                          float *out)             // (1,)
{
    FR_KARG(out, 1, "out");
    for (int t = 0; t < count; t++) FR_KARG_AT(xs[t], ns[t], "xs", t);
    if (count <= 0) {
        k_lanes(FR_KL_SUM, 0, NULL, NULL, out, 1, 1);
        return;
    }
    for (int t = 0; t < count; t++) k_lanes(FR_KL_NORM, ns[t], xs[t], NULL, out, t == 0, t == count - 1);
}

static void fr_kern_fill_reduce_scalar(fr_ops *t)
{
    t->sum = k_sum;
    t->global_norm = k_global_norm;
}

#endif
