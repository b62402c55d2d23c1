/* The opt op table (docs/design.md §3): starts from the ref entries (core/backend.c) and
 * overrides every entry with opt/ kernels, each bitwise equal to ref for any thread count.
 * The SIMD path is chosen here at run time: AVX2+FMA on x86, NEON on aarch64 (GEMM, layer
 * norm, activations, AdamW; the other entries run their portable C there), else portable.
 * (unary exp/log and the SiLU/sigmoid activations run the scalar detmath functions per
 * element, threaded.) */
#include "opt/opt_internal.h"

#include "opt/opt_simd.h"

#include <stdlib.h>
#if FR_OPT_NEON
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#endif

int fr_opt_avx2;
int fr_opt_neon;

static int simd_disabled(void)
{
    const char *off = getenv("FLOWRL_OPT_NO_SIMD");
    return off && *off && *off != '0';
}

static int detect_avx2(void)
{
#if FR_OPT_X86
    __builtin_cpu_init();
    return !simd_disabled() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* ASIMD is part of every AArch64 Linux machine we know of; the kernel says so in AT_HWCAP. */
static int detect_neon(void)
{
#if FR_OPT_NEON
    return !simd_disabled() && (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
#else
    return 0;
#endif
}

int fr_opt_simd_active(void) { return fr_opt_avx2 || fr_opt_neon; }

const char *fr_opt_simd_name(void) { return detect_avx2() ? "avx2+fma" : detect_neon() ? "neon" : "portable"; }

fr_status fr_opt_init(fr_ops *ops)
{
    fr_opt_avx2 = detect_avx2();
    fr_opt_neon = detect_neon();
    fr_opt_rows_fill(ops); /* first: it keeps the ref entries it runs on row blocks */
    fr_opt_traj_rows_fill(ops);
    fr_opt_awm_rows_fill(ops);
    ops->host_for = fr_opt_host_for;
    ops->freeze = fr_opt_freeze;
    ops->gemm = fr_opt_gemm;
    ops->bias_add = fr_opt_bias_add;
    ops->bias_grad = fr_opt_bias_grad;
    ops->act_fwd = fr_opt_act_fwd;
    ops->act_bwd = fr_opt_act_bwd;
    ops->act_jvp = fr_opt_act_jvp;
    ops->act_fwd_save = fr_opt_act_fwd_save;
    ops->act_bwd_saved = fr_opt_act_bwd_saved;
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
    ops->ema_lerp = fr_opt_ema_lerp;
    ops->eps_head_fwd = fr_opt_eps_head_fwd;
    ops->eps_head_bwd = fr_opt_eps_head_bwd;
    ops->softmax_rows = fr_opt_softmax_rows;
    ops->softmax_rows_bwd = fr_opt_softmax_rows_bwd;
    ops->adaln_mod = fr_opt_adaln_mod;
    ops->adaln_mod_bwd = fr_opt_adaln_mod_bwd;
    ops->gate_add = fr_opt_gate_add;
    ops->gate_add_bwd = fr_opt_gate_add_bwd;
    fr_opt_fill_graph(ops);
    return FR_OK;
}
