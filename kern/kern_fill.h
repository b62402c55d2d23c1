/* Every op entry of the CUDA backend as kernels (flowrl/kernel.h), one file per family,
 * compiled twice: by the C compiler into cuda-emu (emu/emu_backend.c) and by nvcc into cuda
 * (gpu/cuda_backend.cu). fr_kern_fill sets every compute entry of the table; a device
 * backend must leave no ref entry behind (tests/test_backends.c checks). */
#ifndef FLOWRL_KERN_FILL_H
#define FLOWRL_KERN_FILL_H

#include "flowrl/kernel.h"
#include "flowrl/ops.h"

/* families: each defines static void fr_kern_fill_<family>(fr_ops *t) */
#include "kern/k_adamw.h"
#include "kern/k_attn.h"
#include "kern/k_eltwise.h"
#include "kern/k_flow.h"
#include "kern/k_gemm.h"
#include "kern/k_graph.h"
#include "kern/k_model.h"
#include "kern/k_nft.h"
#include "kern/k_norm.h"
#include "kern/k_reduce_scalar.h"
#include "kern/k_sampler.h"
#include "kern/k_traj.h"

static void fr_kern_fill(fr_ops *t)
{
    fr_kern_fill_gemm(t);
    fr_kern_fill_eltwise(t);
    fr_kern_fill_norm(t);
    fr_kern_fill_reduce_scalar(t);
    fr_kern_fill_adamw(t);
    fr_kern_fill_flow(t);
    fr_kern_fill_model(t);
    fr_kern_fill_attn(t);
    fr_kern_fill_sampler(t);
    fr_kern_fill_traj(t);
    fr_kern_fill_nft(t);
    fr_kern_fill_graph(t);
}

#endif
