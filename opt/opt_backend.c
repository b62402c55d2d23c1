/* The opt op table (docs/design.md §3): starts from the ref entries (core/backend.c) and
 * overrides every entry with opt/ kernels, each bitwise equal to ref for any thread count.
 * (unary exp/log and the SiLU/sigmoid activations run the scalar detmath functions per
 * element, threaded.) */
#include "opt/opt_internal.h"

#include <stdlib.h>

int fr_opt_avx2;

static int detect_avx2(void)
{
    const char *off = getenv("FLOWRL_OPT_NO_SIMD");
    if (off && *off && *off != '0') return 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int fr_opt_simd_active(void) { return fr_opt_avx2; }

const char *fr_opt_simd_name(void) { return detect_avx2() ? "avx2+fma" : "portable"; }

fr_status fr_opt_init(fr_ops *ops)
{
    fr_opt_avx2 = detect_avx2();
    ops->gemm = fr_opt_gemm;
    ops->bias_add = fr_opt_bias_add;
    ops->bias_grad = fr_opt_bias_grad;
    ops->act_fwd = fr_opt_act_fwd;
    ops->act_bwd = fr_opt_act_bwd;
    ops->layernorm_fwd = fr_opt_layernorm_fwd;
    ops->layernorm_bwd = fr_opt_layernorm_bwd;
    ops->binary = fr_opt_binary;
    ops->unary = fr_opt_unary;
    ops->axpby = fr_opt_axpby;
    ops->scale = fr_opt_scale;
    ops->fill = fr_opt_fill;
    ops->copy = fr_opt_copy;
    ops->row_sum = fr_opt_row_sum;
    ops->row_mean = fr_opt_row_mean;
    ops->sum = fr_opt_sum;
    ops->global_norm = fr_opt_global_norm;
    ops->adamw = fr_opt_adamw;
    ops->eps_head_fwd = fr_opt_eps_head_fwd;
    ops->eps_head_bwd = fr_opt_eps_head_bwd;
    return FR_OK;
}
