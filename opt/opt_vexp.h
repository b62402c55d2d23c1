/* The exp family of flowrl/detmath.h ported lane by lane to AVX2: the same operations in the same
 * order on each lane (plain + - * /, fmaf as _mm256_fmadd_ps, the integer bit tricks as integer
 * vector ops), so every lane returns the scalar function's bits: fr_v_expf (fr_expf) and
 * fr_v_sigmoidf (fr_sigmoidf), on the exp core and 2Sum helpers that opt/opt_vtanh.h's fr_v_tanhf
 * shares. Lanes that take another branch in the scalar code (out of range, NaN) compute on a
 * clamped input and are replaced by the scalar branch's result at the end. Only for opt/ sources,
 * on AVX2 CPUs (on NEON these two stay the scalar functions). */
#ifndef FLOWRL_OPT_VEXP_H
#define FLOWRL_OPT_VEXP_H

#include "opt/opt_simd.h"

#if FR_OPT_X86

FR_AVX2_INL static inline __m256 fr_v_neg(__m256 a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }

/* fr_dm_two_sum */
FR_AVX2_INL static inline __m256 fr_v_two_sum(__m256 a, __m256 b, __m256 *err)
{
    __m256 s = _mm256_add_ps(a, b);
    __m256 bb = _mm256_sub_ps(s, a);
    __m256 aa = _mm256_sub_ps(s, bb);
    *err = _mm256_add_ps(_mm256_sub_ps(a, aa), _mm256_sub_ps(b, bb));
    return s;
}

/* fr_dm_fast_two_sum */
FR_AVX2_INL static inline __m256 fr_v_fast_two_sum(__m256 a, __m256 b, __m256 *err)
{
    __m256 s = _mm256_add_ps(a, b);
    *err = _mm256_sub_ps(b, _mm256_sub_ps(s, a));
    return s;
}

/* fr_dm_pow2i: 2^k from the exponent bits. */
FR_AVX2_INL static inline __m256 fr_v_pow2i(__m256i k)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

/* fr_dm_exp_core */
FR_AVX2_INL static inline __m256 fr_v_exp_core(__m256 x, __m256i *k, __m256 *pl)
{
    const __m256 LOG2E = _mm256_set1_ps(0x1.715476p+0f), LN2_HI = _mm256_set1_ps(0x1.62e430p-1f);
    const __m256 LN2_LO = _mm256_set1_ps(-0x1.05c610p-29f), SHIFT = _mm256_set1_ps(0x1.8p23f);
    const __m256 half = _mm256_set1_ps(0.5f);
    __m256 kf = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, LOG2E), SHIFT), SHIFT);
    __m256 nkf = fr_v_neg(kf);
    __m256 rh = _mm256_fmadd_ps(nkf, LN2_HI, x);
    __m256 rl;
    __m256 r = fr_v_two_sum(rh, _mm256_mul_ps(nkf, LN2_LO), &rl);
    __m256 rr = _mm256_mul_ps(r, r);
    __m256 rr_lo = _mm256_fmadd_ps(r, r, fr_v_neg(rr));
    __m256 h = _mm256_mul_ps(half, rr);
    __m256 R = _mm256_set1_ps(0x1.71de3ap-19f);
    R = _mm256_fmadd_ps(R, r, _mm256_set1_ps(0x1.a01a02p-16f));
    R = _mm256_fmadd_ps(R, r, _mm256_set1_ps(0x1.a01a02p-13f));
    R = _mm256_fmadd_ps(R, r, _mm256_set1_ps(0x1.6c16c2p-10f));
    R = _mm256_fmadd_ps(R, r, _mm256_set1_ps(0x1.111112p-7f));
    R = _mm256_fmadd_ps(R, r, _mm256_set1_ps(0x1.555556p-5f));
    R = _mm256_fmadd_ps(R, r, _mm256_set1_ps(0x1.555556p-3f));
    __m256 e1;
    __m256 ph = fr_v_fast_two_sum(r, h, &e1);
    /* e1 + ((0.5 rr_lo + fmaf(rl, r, rl)) + (rr r) R) */
    __m256 t = _mm256_add_ps(_mm256_mul_ps(half, rr_lo), _mm256_fmadd_ps(rl, r, rl));
    *pl = _mm256_add_ps(e1, _mm256_add_ps(t, _mm256_mul_ps(_mm256_mul_ps(rr, r), R)));
    *k = _mm256_cvttps_epi32(kf); /* kf is integral: (int)kf */
    return ph;
}

/* fr_dm_exp_pair: e^x = 2^k (wh + *wl) for x in [-104, 89]. */
FR_AVX2_INL static inline __m256 fr_v_exp_pair(__m256 x, __m256i *k, __m256 *wl)
{
    __m256 pl, e;
    __m256 ph = fr_v_exp_core(x, k, &pl);
    __m256 s = fr_v_fast_two_sum(_mm256_set1_ps(1.0f), ph, &e);
    __m256 lo = _mm256_add_ps(e, pl);
    __m256 wh = _mm256_add_ps(s, lo);
    *wl = _mm256_sub_ps(lo, _mm256_sub_ps(wh, s));
    return wh;
}

/* fr_dm_ldexp for -252 <= k <= 254: k1 = k / 2 (C division, toward zero: an arithmetic shift
 * of k + 1 where k is negative), then (v * 2^k1) * 2^(k - k1). */
FR_AVX2_INL static inline __m256 fr_v_ldexp(__m256 v, __m256i k)
{
    __m256i k1 = _mm256_srai_epi32(_mm256_add_epi32(k, _mm256_srli_epi32(k, 31)), 1);
    return _mm256_mul_ps(_mm256_mul_ps(v, fr_v_pow2i(k1)), fr_v_pow2i(_mm256_sub_epi32(k, k1)));
}

/* fr_expf: NaN -> x + x, x > 89 -> inf, x < -104 -> +0, else ldexp(wh + wl, k). */
FR_AVX2_INL static inline __m256 fr_v_expf(__m256 x)
{
    __m256 big = _mm256_cmp_ps(x, _mm256_set1_ps(89.0f), _CMP_GT_OQ);
    __m256 small = _mm256_cmp_ps(x, _mm256_set1_ps(-104.0f), _CMP_LT_OQ);
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256 xc = _mm256_blendv_ps(x, _mm256_setzero_ps(), _mm256_or_ps(_mm256_or_ps(big, small), nan));
    __m256i k;
    __m256 wl;
    __m256 wh = fr_v_exp_pair(xc, &k, &wl);
    __m256 y = fr_v_ldexp(_mm256_add_ps(wh, wl), k);
    y = _mm256_blendv_ps(y, _mm256_castsi256_ps(_mm256_set1_epi32(0x7f800000)), big);
    y = _mm256_andnot_ps(small, y); /* +0 */
    return _mm256_blendv_ps(y, _mm256_add_ps(x, x), nan);
}

/* fr_sigmoidf: a = max(-|x|, -104), E = e^a = 2^k (wh + wl), d = 1 + E as a pair, the quotient
 * (x >= 0: 1 / d; x < 0: w / d, then times 2^k) with one correction; NaN -> x + x. */
FR_AVX2_INL static inline __m256 fr_v_sigmoidf(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256 a = _mm256_or_ps(x, _mm256_set1_ps(-0.0f));  /* -|x| */
    a = _mm256_max_ps(a, _mm256_set1_ps(-104.0f));      /* below -104 (and NaN lanes): -104 */
    __m256i k;
    __m256 wl;
    __m256 wh = fr_v_exp_pair(a, &k, &wl);
    __m256 eh = fr_v_ldexp(wh, k), el = fr_v_ldexp(wl, k);
    __m256 de;
    __m256 dh = fr_v_fast_two_sum(one, eh, &de);
    __m256 dl = _mm256_add_ps(de, el);
    __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
    __m256 nh = _mm256_blendv_ps(wh, one, pos), nl = _mm256_andnot_ps(pos, wl);
    __m256 q0 = _mm256_div_ps(nh, dh);
    __m256 nq0 = fr_v_neg(q0);
    __m256 rho = _mm256_fmadd_ps(nq0, dh, nh);
    __m256 q = _mm256_add_ps(q0, _mm256_div_ps(_mm256_add_ps(rho, _mm256_fmadd_ps(nq0, dl, nl)), dh));
    q = _mm256_blendv_ps(fr_v_ldexp(q, k), q, pos);
    return _mm256_blendv_ps(q, _mm256_add_ps(x, x), nan);
}

#endif
#endif
