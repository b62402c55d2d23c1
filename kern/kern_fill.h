/* Every op entry of the CUDA backend as kernels (flowrl/kernel.h), one file per family,
 * compiled twice: by the C compiler into cuda-emu (emu/emu_backend.c) and by nvcc into cuda
 * (gpu/cuda_backend.cu). fr_kern_fill sets every compute entry of the table; a device
 * backend must leave no ref entry behind (tests/test_backends.c checks). */
#ifndef FLOWRL_KERN_FILL_H
#define FLOWRL_KERN_FILL_H

#include "flowrl/kernel.h"
#include "flowrl/ops.h"

/* families: each defines static void fr_kern_fill_<family>(fr_ops *t) */
#include "kern/k_traj.h"

static void fr_kern_fill(fr_ops *t)
{
    fr_kern_fill_traj(t);
}

#endif
