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

/* An 8x8 transpose through registers: dst[r*ldd + c] = src[c*lds + r] for r, c < 8 (src rows
 * unaligned, dst rows 32-byte aligned). Moves data only. */
FR_AVX2 static inline void fr_v_transpose8(const float *src, int64_t lds, float *dst, int64_t ldd)
{
    __m256 r0 = _mm256_loadu_ps(src + 0 * lds), r1 = _mm256_loadu_ps(src + 1 * lds);
    __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_store_ps(dst + 0 * ldd, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_store_ps(dst + 1 * ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_store_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_store_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_store_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_store_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_store_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_store_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
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
