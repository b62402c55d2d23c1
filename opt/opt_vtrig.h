/* fr_logf, fr_sinf / fr_cosf (flowrl/detmath.h) and fr_rng_fill_normal's row (flowrl/philox.h)
 * ported lane by lane to AVX2, the model of opt/opt_vtanh.h: the same operations in the same order
 * on each lane (plain + - * / sqrt, fmaf as _mm256_fmadd_ps, the integer bit tricks as integer
 * vector ops), so every lane returns the scalar function's bits. Lanes that take another branch
 * in the scalar code (NaN, inf, zero or negative logs) compute on a harmless input and are
 * replaced by the scalar function's result at the end (issue 15: the normals and the time
 * embedding were a tenth of a Flow-GRPO epoch). Only for opt/ sources, on AVX2 CPUs
 * (fr_opt_avx2); tests/test_opt.c checks every port against the scalar function. */
#ifndef FLOWRL_OPT_VTRIG_H
#define FLOWRL_OPT_VTRIG_H

#include "flowrl/philox.h"
#include "opt/opt_vtanh.h"

#if FR_OPT_X86

/* ---- log ---------------------------------------------------------------------------------- */

/* fr_dm_split: u = 2^e m, m in [sqrt(1/2), sqrt(2)) (u positive normal; the shift is logical). */
FR_AVX2 static inline __m256 fr_v_split(__m256i iu, __m256i *e)
{
    __m256i t = _mm256_add_epi32(iu, _mm256_set1_epi32((int)(0x3f800000u - 0x3f3504f3u)));
    *e = _mm256_sub_epi32(_mm256_srli_epi32(t, 23), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(
        _mm256_add_epi32(_mm256_and_si256(t, _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x3f3504f3)));
}

/* fr_dm_log_core with c = +0 (fr_logf's call): c / (1 + f) is +0 for every f >= -0.3, so the
 * fmaf's addend is +0 here too. */
FR_AVX2 static inline __m256 fr_v_log_core0(__m256i e, __m256 f, __m256 *lo)
{
    const __m256 LN2_HI = _mm256_set1_ps(0x1.62e4p-1f), LN2_LO = _mm256_set1_ps(0x1.7f7d1cp-20f);
    __m256 ef = _mm256_cvtepi32_ps(e);
    __m256 ff = _mm256_mul_ps(f, f);
    __m256 ff_lo = _mm256_fmadd_ps(f, f, fr_v_neg(ff));
    __m256 hf = _mm256_mul_ps(_mm256_set1_ps(0.5f), ff);
    __m256 s = _mm256_div_ps(f, _mm256_add_ps(_mm256_set1_ps(2.0f), f));
    __m256 z = _mm256_mul_ps(s, s);
    __m256 R = _mm256_set1_ps(0x1.3b13b2p-3f);
    R = _mm256_fmadd_ps(R, z, _mm256_set1_ps(0x1.745d18p-3f));
    R = _mm256_fmadd_ps(R, z, _mm256_set1_ps(0x1.c71c72p-3f));
    R = _mm256_fmadd_ps(R, z, _mm256_set1_ps(0x1.24924ap-2f));
    R = _mm256_fmadd_ps(R, z, _mm256_set1_ps(0x1.99999ap-2f));
    R = _mm256_fmadd_ps(R, z, _mm256_set1_ps(0x1.555556p-1f));
    R = _mm256_mul_ps(R, z);
    __m256 small = _mm256_fmadd_ps(s, _mm256_add_ps(hf, R), _mm256_mul_ps(_mm256_set1_ps(-0.5f), ff_lo));
    small = _mm256_add_ps(small, _mm256_fmadd_ps(ef, LN2_LO, _mm256_setzero_ps()));
    __m256 e1, e2;
    __m256 s1 = fr_v_two_sum(_mm256_mul_ps(ef, LN2_HI), f, &e1);
    __m256 s2 = fr_v_two_sum(s1, fr_v_neg(hf), &e2);
    *lo = _mm256_add_ps(_mm256_add_ps(e1, e2), small);
    return s2;
}

/* fr_logf's finite positive path (subnormals scaled by 2^23); lanes outside (0, inf) or NaN give
 * garbage: fr_v_logf fixes them up, the normals' uniforms never have them. */
FR_AVX2 static inline __m256 fr_v_logf_pos(__m256 x)
{
    __m256i ix = _mm256_castps_si256(x);
    __m256i sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x00800000), ix);
    ix = _mm256_blendv_epi8(ix, _mm256_castps_si256(_mm256_mul_ps(x, _mm256_set1_ps(0x1p23f))), sub);
    __m256i e;
    __m256 m = fr_v_split(ix, &e);
    e = _mm256_add_epi32(e, _mm256_and_si256(sub, _mm256_set1_epi32(-23)));
    __m256 lo;
    __m256 hi = fr_v_log_core0(e, _mm256_sub_ps(m, _mm256_set1_ps(1.0f)), &lo);
    return _mm256_add_ps(hi, lo);
}

/* fr_logf: bitwise, every input. */
FR_AVX2 static inline __m256 fr_v_logf(__m256 x)
{
    const __m256 inf = _mm256_set1_ps(FR_DM_INF);
    __m256 ok = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_cmp_ps(x, inf, _CMP_LT_OQ));
    __m256 y = fr_v_logf_pos(_mm256_blendv_ps(_mm256_set1_ps(1.0f), x, ok));
    int bad = ~_mm256_movemask_ps(ok) & 0xff;
    if (bad) {
        float xs[8], ys[8];
        _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(ys, y);
        for (int l = 0; l < 8; l++)
            if (bad >> l & 1) ys[l] = fr_logf(xs[l]);
        y = _mm256_loadu_ps(ys);
    }
    return y;
}

/* ---- sin and cos ---------------------------------------------------------------------------- */

/* The 64-bit part of fr_dm_trig_reduce on four lanes (one 128-bit half of the 32-bit words m, w0,
 * w1, w2): returns the low word of q in each 64-bit lane's low half, the sign mask (neg) and
 * (float)(int64_t)mag, (float)((int64_t)mag - (int64_t)ah) as four floats each. The int64 ->
 * float conversions (not in AVX2) go through double: mag = H 2^32 + L is summed in double and
 * rounded to odd (Boldo and Melquiond: to odd at 53 bits, then to nearest at 24 bits, is the
 * correctly rounded conversion); the remainder mag - ah is an integer below 2^40, so (H 2^32 - ah)
 * + L is exact in double and rounds once to float. */
FR_AVX2 static inline void fr_v_reduce_half(__m128i m32, __m128i w0_32, __m128i w1_32, __m128i w2_32, __m128i *q,
                                            __m128i *neg32, __m128 *ah, __m128 *al)
{
    const __m256i sign64 = _mm256_set1_epi64x((long long)0x8000000000000000ull);
    __m256i m = _mm256_cvtepu32_epi64(m32);
    __m256i p0 = _mm256_mul_epu32(m, _mm256_cvtepu32_epi64(w0_32));
    __m256i p1 = _mm256_mul_epu32(m, _mm256_cvtepu32_epi64(w1_32));
    __m256i p2 = _mm256_mul_epu32(m, _mm256_cvtepu32_epi64(w2_32));
    __m256i lo = _mm256_add_epi64(p2, _mm256_slli_epi64(p1, 32));
    __m256i carry = _mm256_cmpgt_epi64(_mm256_xor_si256(p2, sign64), _mm256_xor_si256(lo, sign64)); /* lo < p2 */
    __m256i hi = _mm256_sub_epi64(_mm256_add_epi64(p0, _mm256_srli_epi64(p1, 32)), carry);
    __m256i frac = _mm256_or_si256(_mm256_slli_epi64(hi, 34), _mm256_srli_epi64(lo, 30));
    __m256i negm = _mm256_cmpgt_epi64(_mm256_setzero_si256(), frac);
    __m256i qq = _mm256_sub_epi64(_mm256_srli_epi64(hi, 30), negm); /* + neg */
    __m256i mag = _mm256_srli_epi64(_mm256_blendv_epi8(frac, _mm256_sub_epi64(_mm256_setzero_si256(), frac), negm), 1);
    /* u32 -> double by the 2^52 magic number (exact) */
    const __m256i magic = _mm256_set1_epi64x(0x4330000000000000ll);
    const __m256d two52 = _mm256_set1_pd(0x1p52);
    __m256d dh = _mm256_mul_pd(
        _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(mag, 32), magic)), two52),
        _mm256_set1_pd(0x1p32));
    __m256d dl = _mm256_sub_pd(
        _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(mag, _mm256_set1_epi64x(0xffffffffll)), magic)), two52);
    __m256d s = _mm256_add_pd(dh, dl);
    __m256d err = _mm256_sub_pd(dl, _mm256_sub_pd(s, dh)); /* Fast2Sum: dh >= dl or dh = 0 */
    __m256i sb = _mm256_castpd_si256(s);
    __m256i inexact_even = _mm256_andnot_si256(
        _mm256_castpd_si256(_mm256_cmp_pd(err, _mm256_setzero_pd(), _CMP_EQ_OQ)),
        _mm256_cmpeq_epi64(_mm256_and_si256(sb, _mm256_set1_epi64x(1)), _mm256_setzero_si256()));
    __m256i step = _mm256_blendv_epi8(_mm256_set1_epi64x(-1), _mm256_set1_epi64x(1),
                                      _mm256_castpd_si256(_mm256_cmp_pd(err, _mm256_setzero_pd(), _CMP_GT_OQ)));
    s = _mm256_castsi256_pd(_mm256_add_epi64(sb, _mm256_and_si256(step, inexact_even)));
    __m128 ahf = _mm256_cvtpd_ps(s);
    *ah = ahf;
    *al = _mm256_cvtpd_ps(_mm256_add_pd(_mm256_sub_pd(dh, _mm256_cvtps_pd(ahf)), dl));
    const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    *q = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(qq, pick));
    *neg32 = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(negm, pick));
}

/* fr_dm_trig_reduce for finite ax >= pi/4 in every lane: q (mod 4 in the low bits), r = rh + rl. */
FR_AVX2 static inline __m256i fr_v_trig_reduce(__m256 ax, __m256 *rh, __m256 *rl)
{
    const __m256i T = _mm256_setr_epi32(0x00000000, (int)0xa2f9836eu, 0x4e441529, (int)0xfc2757d1u, (int)0xf534ddc0u,
                                        (int)0xdb629599u, 0x3c439041, (int)0xfe5163abu);
    const __m256 PIO2_HI = _mm256_set1_ps(0x1.921fb6p+0f), PIO2_LO = _mm256_set1_ps(-0x1.777a5cp-25f);
    const __m256i one = _mm256_set1_epi32(1), n32 = _mm256_set1_epi32(32);
    __m256i ix = _mm256_castps_si256(ax);
    __m256i m = _mm256_or_si256(_mm256_and_si256(ix, _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x800000));
    __m256i g = _mm256_sub_epi32(_mm256_srli_epi32(ix, 23), _mm256_set1_epi32(120)); /* - 150 + 30 */
    __m256i i0 = _mm256_srai_epi32(g, 5), sh = _mm256_and_si256(g, _mm256_set1_epi32(31));
    __m256i rs = _mm256_sub_epi32(n32, sh); /* a shift by 32 gives 0: sh = 0 keeps T[i] alone */
    __m256i i1 = _mm256_add_epi32(i0, one), i2 = _mm256_add_epi32(i1, one), i3 = _mm256_add_epi32(i2, one);
    __m256i t0 = _mm256_permutevar8x32_epi32(T, i0), t1 = _mm256_permutevar8x32_epi32(T, i1);
    __m256i t2 = _mm256_permutevar8x32_epi32(T, i2), t3 = _mm256_permutevar8x32_epi32(T, i3);
    /* w_k = ((T[i+k] << 32 | T[i+k+1]) << sh) >> 32, in 32-bit words */
    __m256i w0 = _mm256_or_si256(_mm256_sllv_epi32(t0, sh), _mm256_srlv_epi32(t1, rs));
    __m256i w1 = _mm256_or_si256(_mm256_sllv_epi32(t1, sh), _mm256_srlv_epi32(t2, rs));
    __m256i w2 = _mm256_or_si256(_mm256_sllv_epi32(t2, sh), _mm256_srlv_epi32(t3, rs));
    __m128i qa, qb, na, nb;
    __m128 aha, ahb, ala, alb;
    fr_v_reduce_half(_mm256_castsi256_si128(m), _mm256_castsi256_si128(w0), _mm256_castsi256_si128(w1),
                     _mm256_castsi256_si128(w2), &qa, &na, &aha, &ala);
    fr_v_reduce_half(_mm256_extracti128_si256(m, 1), _mm256_extracti128_si256(w0, 1), _mm256_extracti128_si256(w1, 1),
                     _mm256_extracti128_si256(w2, 1), &qb, &nb, &ahb, &alb);
    __m256i q = _mm256_set_m128i(qb, qa);
    __m256 neg = _mm256_castsi256_ps(_mm256_set_m128i(nb, na));
    __m256 ah = _mm256_mul_ps(_mm256_set_m128(ahb, aha), _mm256_set1_ps(0x1p-63f));
    __m256 al = _mm256_mul_ps(_mm256_set_m128(alb, ala), _mm256_set1_ps(0x1p-63f));
    __m256 h = _mm256_mul_ps(ah, PIO2_HI);
    __m256 l = _mm256_add_ps(_mm256_fmadd_ps(ah, PIO2_HI, fr_v_neg(h)),
                             _mm256_fmadd_ps(ah, PIO2_LO, _mm256_mul_ps(al, PIO2_HI)));
    __m256 t = _mm256_add_ps(h, l);
    l = _mm256_sub_ps(l, _mm256_sub_ps(t, h));
    *rh = _mm256_blendv_ps(t, fr_v_neg(t), neg);
    *rl = _mm256_blendv_ps(l, fr_v_neg(l), neg);
    return q;
}

/* fr_dm_sin_poly */
FR_AVX2 static inline __m256 fr_v_sin_poly(__m256 rh, __m256 rl)
{
    __m256 z = _mm256_mul_ps(rh, rh);
    __m256 S = _mm256_set1_ps(-0x1.ae6456p-26f);
    S = _mm256_fmadd_ps(S, z, _mm256_set1_ps(0x1.71de3ap-19f));
    S = _mm256_fmadd_ps(S, z, _mm256_set1_ps(-0x1.a01a02p-13f));
    S = _mm256_fmadd_ps(S, z, _mm256_set1_ps(0x1.111112p-7f));
    S = _mm256_fmadd_ps(S, z, _mm256_set1_ps(-0x1.555556p-3f));
    return _mm256_add_ps(rh, _mm256_fmadd_ps(_mm256_mul_ps(rh, z), S,
                                             _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(-0.5f), z), rl, rl)));
}

/* fr_dm_cos_poly */
FR_AVX2 static inline __m256 fr_v_cos_poly(__m256 rh, __m256 rl)
{
    const __m256 half = _mm256_set1_ps(0.5f);
    __m256 z = _mm256_mul_ps(rh, rh);
    __m256 hz = _mm256_mul_ps(half, z);
    __m256 hz_lo = _mm256_mul_ps(half, _mm256_fmadd_ps(rh, rh, fr_v_neg(z)));
    __m256 C = _mm256_set1_ps(0x1.1eed8ep-29f);
    C = _mm256_fmadd_ps(C, z, _mm256_set1_ps(-0x1.27e4fcp-22f));
    C = _mm256_fmadd_ps(C, z, _mm256_set1_ps(0x1.a01a02p-16f));
    C = _mm256_fmadd_ps(C, z, _mm256_set1_ps(-0x1.6c16c2p-10f));
    C = _mm256_fmadd_ps(C, z, _mm256_set1_ps(0x1.555556p-5f));
    __m256 e;
    __m256 t = fr_v_fast_two_sum(_mm256_set1_ps(1.0f), fr_v_neg(hz), &e);
    return _mm256_add_ps(t, _mm256_sub_ps(_mm256_fmadd_ps(_mm256_mul_ps(z, z), C, _mm256_sub_ps(e, hz_lo)),
                                          _mm256_mul_ps(rh, rl)));
}

/* fr_dm_sin_quadrant's result for quadrant q from the two polynomials of the same r. */
FR_AVX2 static inline __m256 fr_v_quadrant(__m256i q, __m256 S, __m256 C)
{
    __m256 odd = _mm256_castsi256_ps(_mm256_slli_epi32(q, 31));  /* q & 1 in the sign bit */
    __m256 flip = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_srli_epi32(q, 1), 31)); /* q & 2 */
    return _mm256_xor_ps(_mm256_blendv_ps(S, C, odd), flip);
}

/* fr_sinf's and fr_cosf's finite path on both outputs: one reduction and one pair of polynomials
 * serve sin (quadrant q) and cos (quadrant q + 1). NaN and inf lanes give garbage (fr_v_sincosf). */
FR_AVX2 static inline void fr_v_sincosf_finite(__m256 x, __m256 *sn, __m256 *cs)
{
    const __m256 signbit = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 sign = _mm256_and_ps(x, signbit);
    __m256 ax = _mm256_andnot_ps(signbit, x);
    __m256 red = _mm256_cmp_ps(ax, _mm256_set1_ps(0x1.921fb4p-1f), _CMP_GT_OQ); /* beyond fl(pi/4) */
    __m256 rh = ax, rl = _mm256_setzero_ps();
    __m256i q = _mm256_setzero_si256();
    if (_mm256_movemask_ps(red)) {
        __m256 vh, vl;
        __m256i vq = fr_v_trig_reduce(_mm256_blendv_ps(one, ax, red), &vh, &vl); /* others reduce 1.0, unused */
        rh = _mm256_blendv_ps(rh, vh, red);
        rl = _mm256_blendv_ps(rl, vl, red);
        q = _mm256_and_si256(vq, _mm256_castps_si256(red));
    }
    __m256 S = fr_v_sin_poly(rh, rl), C = fr_v_cos_poly(rh, rl);
    *sn = _mm256_xor_ps(fr_v_quadrant(q, S, C), sign);
    *cs = fr_v_quadrant(_mm256_add_epi32(q, _mm256_set1_epi32(1)), S, C);
}

/* fr_sinf and fr_cosf: bitwise, every input. */
FR_AVX2 static inline void fr_v_sincosf(__m256 x, __m256 *sn, __m256 *cs)
{
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    __m256 ok = _mm256_cmp_ps(_mm256_andnot_ps(signbit, x), _mm256_set1_ps(FR_DM_INF), _CMP_LT_OQ);
    fr_v_sincosf_finite(_mm256_blendv_ps(_mm256_set1_ps(1.0f), x, ok), sn, cs);
    int bad = ~_mm256_movemask_ps(ok) & 0xff;
    if (bad) {
        float xs[8], ss[8], cc[8];
        _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(ss, *sn);
        _mm256_storeu_ps(cc, *cs);
        for (int l = 0; l < 8; l++)
            if (bad >> l & 1) ss[l] = fr_sinf(xs[l]), cc[l] = fr_cosf(xs[l]);
        *sn = _mm256_loadu_ps(ss);
        *cs = _mm256_loadu_ps(cc);
    }
}

/* ---- normals ------------------------------------------------------------------------------- */

/* fr_philox_mulhilo on eight lanes: the even lanes' products by _mm256_mul_epu32, the odd lanes'
 * after a 32-bit shift, both halves recombined. */
FR_AVX2 static inline void fr_v_mulhilo(__m256i M, __m256i a, __m256i *hi, __m256i *lo)
{
    __m256i pe = _mm256_mul_epu32(a, M);
    __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), M);
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xaa);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xaa);
}

/* fr_u32_to_uniform: (w >> 9) < 2^23 converts exactly. */
FR_AVX2 static inline __m256 fr_v_uniform(__m256i w)
{
    return _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(w, 9)), _mm256_set1_ps(0.5f)),
                         _mm256_set1_ps(0x1.0p-23f));
}

/* Box-Muller of the word pairs (wr, wt) of eight blocks: fr_box_muller's r cos theta, r sin theta. */
FR_AVX2 static inline void fr_v_box_muller(__m256i wr, __m256i wt, __m256 *zc, __m256 *zs)
{
    __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), fr_v_logf_pos(fr_v_uniform(wr))));
    __m256 theta = _mm256_mul_ps(_mm256_set1_ps(6.28318530717958647692f), fr_v_uniform(wt));
    __m256 sn, cs;
    fr_v_sincosf_finite(theta, &sn, &cs); /* theta in (0, 2 pi): finite */
    *zc = _mm256_mul_ps(r, cs);
    *zs = _mm256_mul_ps(r, sn);
}

/* fr_rng_fill_normal_row: out[i] = fr_rng_normal(seed, purpose, c0, c1, c2, i), i < n (n < 2^32),
 * eight Philox blocks (32 normals) at a time; a short last group goes through a buffer. */
FR_AVX2 static inline void fr_v_fill_normal_row(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0,
                                                uint32_t c1, uint32_t c2)
{
    const __m256i M0 = _mm256_set1_epi32((int)FR_PHILOX_M0), M1 = _mm256_set1_epi32((int)FR_PHILOX_M1);
    for (int64_t i = 0; i < n; i += 32) {
        __m256i x0 = _mm256_set1_epi32((int)c0), x1 = _mm256_set1_epi32((int)c1), x2 = _mm256_set1_epi32((int)c2);
        __m256i x3 = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)(i >> 2)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        uint32_t k0 = seed, k1 = purpose;
        for (int r = 0; r < 10; r++) {
            if (r > 0) {
                k0 += FR_PHILOX_W0;
                k1 += FR_PHILOX_W1;
            }
            __m256i hi0, lo0, hi1, lo1;
            fr_v_mulhilo(M0, x0, &hi0, &lo0);
            fr_v_mulhilo(M1, x2, &hi1, &lo1);
            x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), _mm256_set1_epi32((int)k0));
            x1 = lo1;
            x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), _mm256_set1_epi32((int)k1));
            x3 = lo0;
        }
        __m256 a0, b0, a1, b1; /* block l's normals 0..3 are lane l of a0, b0, a1, b1 */
        fr_v_box_muller(x0, x1, &a0, &b0);
        fr_v_box_muller(x2, x3, &a1, &b1);
        /* transpose to block order: 4 normals per block, 8 blocks */
        __m256d u0 = _mm256_castps_pd(_mm256_unpacklo_ps(a0, b0)), u1 = _mm256_castps_pd(_mm256_unpackhi_ps(a0, b0));
        __m256d v0 = _mm256_castps_pd(_mm256_unpacklo_ps(a1, b1)), v1 = _mm256_castps_pd(_mm256_unpackhi_ps(a1, b1));
        __m256 e0 = _mm256_castpd_ps(_mm256_unpacklo_pd(u0, v0)); /* blocks 0 | 4 */
        __m256 e1 = _mm256_castpd_ps(_mm256_unpackhi_pd(u0, v0)); /* blocks 1 | 5 */
        __m256 e2 = _mm256_castpd_ps(_mm256_unpacklo_pd(u1, v1)); /* blocks 2 | 6 */
        __m256 e3 = _mm256_castpd_ps(_mm256_unpackhi_pd(u1, v1)); /* blocks 3 | 7 */
        __m256 o0 = _mm256_permute2f128_ps(e0, e1, 0x20), o1 = _mm256_permute2f128_ps(e2, e3, 0x20);
        __m256 o2 = _mm256_permute2f128_ps(e0, e1, 0x31), o3 = _mm256_permute2f128_ps(e2, e3, 0x31);
        if (n - i >= 32) {
            _mm256_storeu_ps(out + i, o0);
            _mm256_storeu_ps(out + i + 8, o1);
            _mm256_storeu_ps(out + i + 16, o2);
            _mm256_storeu_ps(out + i + 24, o3);
        } else {
            float buf[32];
            _mm256_storeu_ps(buf, o0);
            _mm256_storeu_ps(buf + 8, o1);
            _mm256_storeu_ps(buf + 16, o2);
            _mm256_storeu_ps(buf + 24, o3);
            memcpy(out + i, buf, sizeof(float) * (size_t)(n - i));
        }
    }
}

#endif
#endif
