/* AdamW (ref/ref_adamw.c): one thread per parameter over fr_adamw_elem (flowrl/elem.h). The
 * step's float scalars travel by value in the launch arguments (hp is a host struct). */
#ifndef FLOWRL_KERN_K_ADAMW_H
#define FLOWRL_KERN_K_ADAMW_H

#include "flowrl/elem.h"
#include "flowrl/kernel.h"
#include "flowrl/ops.h"

typedef struct {
    int64_t n;
    float *p;       // (n,) parameters, updated
    const float *g; // (n,) gradients
    float *m, *v;   // (n,) moments, updated
    fr_adamw_hp hp;
} fr_k_adamw_args;

FR_KERNEL(fr_k_adamw, fr_k_adamw_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i < a->n) fr_adamw_elem(&a->p[i], a->g[i], &a->m[i], &a->v[i], &a->hp);
}

static void k_adamw(int64_t n, float *p, const float *g, float *m, float *v, const fr_adamw_hp *hp)
{
    if (n <= 0) return;
    FR_KARG(p, n, "p");
    FR_KARG(g, n, "g");
    FR_KARG(m, n, "m");
    FR_KARG(v, n, "v");
    fr_k_adamw_args a = {n, p, g, m, v, *hp};
    FR_LAUNCH(fr_k_adamw, fr_grid_1d(n, 256), fr_dim3_x(256), a);
}

static void fr_kern_fill_adamw(fr_ops *t) { t->adamw = k_adamw; }

#endif
