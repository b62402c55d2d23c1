/* The SIMD targets of the opt kernels. Only included by opt/ sources. x86: small AVX2
 * helpers; every function here is target("avx2,fma") and must only run when fr_opt_avx2 is
 * set. */
#ifndef FLOWRL_OPT_SIMD_H
#define FLOWRL_OPT_SIMD_H

#if defined(__x86_64__) || defined(__i386__)
#define FR_OPT_X86 1
#include <immintrin.h>
#include <stdint.h>

#define FR_AVX2 __attribute__((target("avx2,fma")))
/* For the lane-exact ports (opt/opt_vtanh.h, opt/opt_vtrig.h): inlined into their callers, so a
 * caller can run several independent vectors through one long dependency chain at once. */
#define FR_AVX2_INL __attribute__((target("avx2,fma"), always_inline))

/* Lanes 0..rem-1 set (rem in 0..8), as a maskload/maskstore/blendv mask. */
FR_AVX2 static inline __m256i fr_opt_tail_mask(int64_t rem)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#else
#define FR_OPT_X86 0
#endif

/* AArch64: Advanced SIMD (NEON), 4 float lanes per register, vfmaq_f32 rounding once like
 * fmaf. Every function under FR_OPT_NEON must only run when fr_opt_neon is set (the CPU
 * reports ASIMD and FLOWRL_OPT_NO_SIMD is unset). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#define FR_OPT_NEON 1
#include <arm_neon.h>
#else
#define FR_OPT_NEON 0
#endif

#endif
