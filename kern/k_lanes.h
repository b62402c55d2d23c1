/* The canonical long sum of a whole vector to one float in backend memory, shared by sum and
 * global_norm (kern/k_reduce_scalar.h) and fm_loss's loss (kern/k_flow.h). The long sum has
 * FR_LANES independent chains (flowrl/reduce.h: lane j takes x[j], x[j+8], ... with plain adds,
 * or fmaf for a sum of squares), so it runs as one block of FR_LANES threads, thread j running
 * lane j's chain in order; after a barrier thread 0 forms fr_lanes_tree and the result. Eight
 * chains are all the parallelism the canonical order has: on a device this is latency-bound
 * (n / 8 dependent adds per thread). */
#ifndef FLOWRL_KERN_K_LANES_H
#define FLOWRL_KERN_K_LANES_H

#include <math.h>

#include "flowrl/kernel.h"
#include "flowrl/ops.h"
#include "flowrl/reduce.h"

typedef enum {
    FR_KL_SUM = 0, /* out = sum x */
    FR_KL_NORM,    /* out = (first ? 0 : out) + sum x² (fmaf lanes), then sqrtf if last */
    FR_KL_MSE      /* out = sum (x − y)² / (float)n, each square rounded as ref's grad[i] */
} fr_k_lanes_mode;

typedef struct {
    int mode; /* fr_k_lanes_mode */
    int64_t n;
    const float *x, *y; // (n,); y only for FR_KL_MSE
    float *out;         // (1,)
    int first, last;    // FR_KL_NORM: the tensor's place in global_norm's order
} fr_k_lanes_args;

typedef struct {
    float l[FR_LANES];
} fr_k_lanes_smem;

typedef struct {
    float part;
} fr_k_lanes_regs;

FR_HOSTDEV static inline int64_t fr_k_lanes_iters(const fr_k_lanes_args *a)
{
    (void)a;
    return 1;
}

/* Lane j's chain, from 0 in element order. */
FR_HOSTDEV static inline void fr_k_lanes_init(const fr_kidx *k, const fr_k_lanes_args *a, fr_k_lanes_smem *s,
                                              fr_k_lanes_regs *r)
{
    (void)s;
    const int64_t j = k->thread.x;
    float l = 0.0f;
    if (a->mode == FR_KL_SUM)
        for (int64_t i = j; i < a->n; i += FR_LANES) l += a->x[i];
    else if (a->mode == FR_KL_NORM)
        for (int64_t i = j; i < a->n; i += FR_LANES) l = fmaf(a->x[i], a->x[i], l);
    else
        for (int64_t i = j; i < a->n; i += FR_LANES) {
            float d = a->x[i] - a->y[i];
            float sq = d * d;
            l += sq;
        }
    r->part = l;
}

FR_HOSTDEV static inline void fr_k_lanes_load(const fr_kidx *k, const fr_k_lanes_args *a, fr_k_lanes_smem *s,
                                              fr_k_lanes_regs *r)
{
    (void)a;
    s->l[k->thread.x] = r->part;
}

FR_HOSTDEV static inline void fr_k_lanes_compute(const fr_kidx *k, const fr_k_lanes_args *a, fr_k_lanes_smem *s,
                                                 fr_k_lanes_regs *r)
{
    (void)r;
    if (k->thread.x != 0) return;
    float t = fr_lanes_tree(s->l);
    if (a->mode == FR_KL_SUM) {
        a->out[0] = t;
    } else if (a->mode == FR_KL_NORM) {
        float acc = (a->first ? 0.0f : a->out[0]) + t;
        a->out[0] = a->last ? sqrtf(acc) : acc;
    } else {
        a->out[0] = t / (float)a->n;
    }
}

FR_HOSTDEV static inline void fr_k_lanes_store(const fr_kidx *k, const fr_k_lanes_args *a, fr_k_lanes_smem *s,
                                               fr_k_lanes_regs *r)
{
    (void)k;
    (void)a;
    (void)s;
    (void)r;
}

FR_KERNEL_TILED(fr_k_lanes, fr_k_lanes_args, fr_k_lanes_regs, fr_k_lanes_smem)

static void k_lanes(int mode, int64_t n, const float *x, const float *y, float *out, int first, int last)
{
    fr_k_lanes_args a = {mode, n, x, y, out, first, last};
    FR_LAUNCH_TILED(fr_k_lanes, fr_dim3_x(1), fr_dim3_x(FR_LANES), a);
}

#endif
