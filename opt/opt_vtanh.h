/* fr_tanhf (flowrl/detmath.h) ported lane by lane to AVX2: the same operations in the same
 * order on each lane (plain + - * /, fmaf as _mm256_fmadd_ps, the integer bit tricks as
 * integer vector ops), so every lane returns fr_tanhf's bits. Lanes that take another
 * branch in the scalar code (|x| > 9.5, NaN) compute on a clamped input and are replaced
 * by the scalar branch's result at the end. Only for opt/ sources, on AVX2 CPUs; the
 * fr_n_* functions are the same port for NEON. */
#ifndef FLOWRL_OPT_VTANH_H
#define FLOWRL_OPT_VTANH_H

#include "opt/opt_simd.h"
#include "opt/opt_vexp.h" /* the AVX2 exp core and 2Sum helpers */

#if FR_OPT_X86

/* fr_dm_expm1_pair */
FR_AVX2_INL static inline __m256 fr_v_expm1_pair(__m256 x, __m256i *k, __m256 *wl)
{
    __m256 pl;
    __m256 ph = fr_v_exp_core(x, k, &pl);
    __m256i kk = _mm256_min_epi32(*k, _mm256_set1_epi32(100));
    __m256 ul, e;
    __m256 uh = fr_v_two_sum(_mm256_set1_ps(1.0f),
                             fr_v_neg(fr_v_pow2i(_mm256_sub_epi32(_mm256_setzero_si256(), kk))), &ul);
    __m256 s = fr_v_two_sum(uh, ph, &e);
    __m256 lo = _mm256_add_ps(e, _mm256_add_ps(ul, pl));
    __m256 wh = _mm256_add_ps(s, lo);
    *wl = _mm256_sub_ps(lo, _mm256_sub_ps(wh, s));
    return wh;
}

/* fr_tanhf */
FR_AVX2_INL static inline __m256 fr_v_tanhf(__m256 x)
{
    const __m256 signbit = _mm256_set1_ps(-0.0f), lim = _mm256_set1_ps(9.5f);
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    __m256 sign = _mm256_and_ps(x, signbit);
    __m256 ax = _mm256_andnot_ps(signbit, x);
    /* lanes with ax > 9.5 or NaN take y = 1 (or x + x) below; compute them on 9.5 */
    __m256 big = _mm256_cmp_ps(ax, lim, _CMP_NLE_UQ);
    __m256 axc = _mm256_blendv_ps(ax, lim, big);
    __m256i k;
    __m256 wl;
    __m256 wh = fr_v_expm1_pair(_mm256_mul_ps(two, axc), &k, &wl);
    /* fr_dm_ldexp(., k) with 0 <= k <= 27 (0 <= 2 axc <= 19): its two scalings by 2^k1 and
     * 2^(k - k1), both >= 1, are exact below overflow, so one product by 2^k gives its bits */
    __m256 p2k = fr_v_pow2i(k);
    __m256 th = _mm256_mul_ps(wh, p2k), tl = _mm256_mul_ps(wl, p2k);
    __m256 de;
    __m256 dh = fr_v_two_sum(th, two, &de);
    __m256 dl = _mm256_add_ps(de, tl);
    __m256 q0 = _mm256_div_ps(th, dh);
    __m256 nq0 = fr_v_neg(q0);
    __m256 rho = _mm256_fmadd_ps(nq0, dh, th);
    __m256 y = _mm256_add_ps(q0, _mm256_div_ps(_mm256_add_ps(rho, _mm256_fmadd_ps(nq0, dl, tl)), dh));
    y = _mm256_blendv_ps(y, one, big);
    y = _mm256_or_ps(y, sign);
    return _mm256_blendv_ps(y, _mm256_add_ps(x, x), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

#endif
#if FR_OPT_NEON
/* The same port for NEON (4 lanes): vfmaq_f32(c, a, b) is fmaf(a, b, c); vbslq_f32 selects. */

/* fr_dm_two_sum */
static inline float32x4_t fr_n_two_sum(float32x4_t a, float32x4_t b, float32x4_t *err)
{
    float32x4_t s = vaddq_f32(a, b);
    float32x4_t bb = vsubq_f32(s, a);
    float32x4_t aa = vsubq_f32(s, bb);
    *err = vaddq_f32(vsubq_f32(a, aa), vsubq_f32(b, bb));
    return s;
}

/* fr_dm_fast_two_sum */
static inline float32x4_t fr_n_fast_two_sum(float32x4_t a, float32x4_t b, float32x4_t *err)
{
    float32x4_t s = vaddq_f32(a, b);
    *err = vsubq_f32(b, vsubq_f32(s, a));
    return s;
}

/* fr_dm_pow2i: 2^k from the exponent bits. */
static inline float32x4_t fr_n_pow2i(int32x4_t k)
{
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k, vdupq_n_s32(127)), 23));
}

/* fr_dm_ldexp: k1 = k / 2 (C division, toward zero), (v * 2^k1) * 2^(k - k1). */
static inline float32x4_t fr_n_ldexp(float32x4_t v, int32x4_t k)
{
    int32x4_t k1 = vshrq_n_s32(vaddq_s32(k, vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(k), 31))), 1);
    return vmulq_f32(vmulq_f32(v, fr_n_pow2i(k1)), fr_n_pow2i(vsubq_s32(k, k1)));
}

/* fr_dm_exp_core */
static inline float32x4_t fr_n_exp_core(float32x4_t x, int32x4_t *k, float32x4_t *pl)
{
    const float32x4_t LOG2E = vdupq_n_f32(0x1.715476p+0f), LN2_HI = vdupq_n_f32(0x1.62e430p-1f);
    const float32x4_t LN2_LO = vdupq_n_f32(-0x1.05c610p-29f), SHIFT = vdupq_n_f32(0x1.8p23f);
    const float32x4_t half = vdupq_n_f32(0.5f);
    float32x4_t kf = vsubq_f32(vaddq_f32(vmulq_f32(x, LOG2E), SHIFT), SHIFT);
    float32x4_t nkf = vnegq_f32(kf);
    float32x4_t rh = vfmaq_f32(x, nkf, LN2_HI);
    float32x4_t rl;
    float32x4_t r = fr_n_two_sum(rh, vmulq_f32(nkf, LN2_LO), &rl);
    float32x4_t rr = vmulq_f32(r, r);
    float32x4_t rr_lo = vfmaq_f32(vnegq_f32(rr), r, r);
    float32x4_t h = vmulq_f32(half, rr);
    float32x4_t R = vdupq_n_f32(0x1.71de3ap-19f);
    R = vfmaq_f32(vdupq_n_f32(0x1.a01a02p-16f), R, r);
    R = vfmaq_f32(vdupq_n_f32(0x1.a01a02p-13f), R, r);
    R = vfmaq_f32(vdupq_n_f32(0x1.6c16c2p-10f), R, r);
    R = vfmaq_f32(vdupq_n_f32(0x1.111112p-7f), R, r);
    R = vfmaq_f32(vdupq_n_f32(0x1.555556p-5f), R, r);
    R = vfmaq_f32(vdupq_n_f32(0x1.555556p-3f), R, r);
    float32x4_t e1;
    float32x4_t ph = fr_n_fast_two_sum(r, h, &e1);
    /* e1 + ((0.5 rr_lo + fmaf(rl, r, rl)) + (rr r) R) */
    float32x4_t t = vaddq_f32(vmulq_f32(half, rr_lo), vfmaq_f32(rl, rl, r));
    *pl = vaddq_f32(e1, vaddq_f32(t, vmulq_f32(vmulq_f32(rr, r), R)));
    *k = vcvtq_s32_f32(kf); /* kf is integral: (int)kf */
    return ph;
}

/* fr_dm_expm1_pair */
static inline float32x4_t fr_n_expm1_pair(float32x4_t x, int32x4_t *k, float32x4_t *wl)
{
    float32x4_t pl;
    float32x4_t ph = fr_n_exp_core(x, k, &pl);
    int32x4_t kk = vminq_s32(*k, vdupq_n_s32(100));
    float32x4_t ul, e;
    float32x4_t uh = fr_n_two_sum(vdupq_n_f32(1.0f), vnegq_f32(fr_n_pow2i(vnegq_s32(kk))), &ul);
    float32x4_t s = fr_n_two_sum(uh, ph, &e);
    float32x4_t lo = vaddq_f32(e, vaddq_f32(ul, pl));
    float32x4_t wh = vaddq_f32(s, lo);
    *wl = vsubq_f32(lo, vsubq_f32(wh, s));
    return wh;
}

/* fr_tanhf */
static inline float32x4_t fr_n_tanhf(float32x4_t x)
{
    const uint32x4_t signbit = vdupq_n_u32(0x80000000u);
    const float32x4_t lim = vdupq_n_f32(9.5f), one = vdupq_n_f32(1.0f), two = vdupq_n_f32(2.0f);
    uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), signbit);
    float32x4_t ax = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(x), signbit));
    /* lanes with ax > 9.5 or NaN take y = 1 (or x + x) below; compute them on 9.5 */
    uint32x4_t big = vmvnq_u32(vcleq_f32(ax, lim));
    float32x4_t axc = vbslq_f32(big, lim, ax);
    int32x4_t k;
    float32x4_t wl;
    float32x4_t wh = fr_n_expm1_pair(vmulq_f32(two, axc), &k, &wl);
    float32x4_t th = fr_n_ldexp(wh, k), tl = fr_n_ldexp(wl, k);
    float32x4_t de;
    float32x4_t dh = fr_n_two_sum(th, two, &de);
    float32x4_t dl = vaddq_f32(de, tl);
    float32x4_t q0 = vdivq_f32(th, dh);
    float32x4_t nq0 = vnegq_f32(q0);
    float32x4_t rho = vfmaq_f32(th, nq0, dh);
    float32x4_t y = vaddq_f32(q0, vdivq_f32(vaddq_f32(rho, vfmaq_f32(tl, nq0, dl)), dh));
    y = vbslq_f32(big, one, y);
    y = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(y), sign));
    return vbslq_f32(vmvnq_u32(vceqq_f32(x, x)), vaddq_f32(x, x), y);
}
#endif

#endif
