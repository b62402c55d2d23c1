/* flowrl's own float32 transcendental functions (docs/design.md §1.3, docs/algorithms/numerics.md §2.2).
 *
 * Built only from correctly rounded IEEE-754 operations (+ - * / sqrtf fmaf, integer <->
 * float conversion) and exact integer/bit manipulation, all in float32: the same source
 * gives the same bits under any C compiler honouring -ffp-contract=off and under nvcc
 * --fmad=false. Every fused multiply-add is an explicit fmaf.
 *
 * Technique, shared by all functions: reduce the argument exactly (or to a float pair
 * hi + lo carrying ~40+ bits), evaluate a short Taylor polynomial whose truncation error is
 * below 2^-28 relative, and add the large terms with error-free transformations (2Sum,
 * exact products via fmaf) so that the only sizeable error is the final rounding (0.5 ulp)
 * plus small polynomial-evaluation errors. Subnormal outputs of exp, sigmoid and softplus
 * round twice (once to 24 bits, once to the subnormal grid), so they may reach ~1 ulp there.
 * The measured maximum errors against MPFR are in docs/determinism.md ("Transcendental
 * functions: measured accuracy"): every function <= 0.76 ulp over a dense sweep of the whole
 * float domain (sin/cos included: Payne-Hanek reduction, exact for every finite float);
 * tests/test_detmath.c asserts <= 1 ulp.
 *
 * Special values follow C99 Annex F: NaN propagates; +-0 keep their sign where the function
 * is odd (expm1, log1p, sin, tanh); log(+-0) = -inf, log(x<0) = NaN, log1p(-1) = -inf,
 * log1p(x<-1) = NaN; sin/cos(+-inf) = NaN; exp overflows to +inf and underflows through the
 * subnormals to +0 at the IEEE round-to-nearest thresholds.
 *
 * Vectorization: the early returns catch special inputs (NaN, inf, saturation) and the few
 * remaining ifs choose between two straight-line paths (sin/cos: reduce or not; softplus:
 * far tail); an AVX2 port computes the paths for every lane and blends the results. */
#ifndef FLOWRL_DETMATH_H
#define FLOWRL_DETMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "flowrl/hostdev.h"

/* ---- exact helpers ------------------------------------------------------------------ */

FR_HOSTDEV static inline uint32_t fr_dm_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

FR_HOSTDEV static inline float fr_dm_float(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

#define FR_DM_INF fr_dm_float(0x7f800000u)
#define FR_DM_NAN fr_dm_float(0x7fc00000u)

/* 2^k for -126 <= k <= 127, exact. */
FR_HOSTDEV static inline float fr_dm_pow2i(int k) { return fr_dm_float((uint32_t)(k + 127) << 23); }

/* v * 2^k for -252 <= k <= 254: two exact power-of-two factors, so the result is rounded
 * once (only when it is subnormal) and overflows to inf exactly when it should. */
FR_HOSTDEV static inline float fr_dm_ldexp(float v, int k)
{
    int k1 = k / 2;
    return (v * fr_dm_pow2i(k1)) * fr_dm_pow2i(k - k1);
}

/* 2Sum (Knuth): s + *err == a + b exactly, s = fl(a + b). */
FR_HOSTDEV static inline float fr_dm_two_sum(float a, float b, float *err)
{
    float s = a + b;
    float bb = s - a;
    float aa = s - bb;
    *err = (a - aa) + (b - bb);
    return s;
}

/* Fast2Sum (Dekker), requires |a| >= |b| (or a == 0): s + *err == a + b exactly. */
FR_HOSTDEV static inline float fr_dm_fast_two_sum(float a, float b, float *err)
{
    float s = a + b;
    *err = b - (s - a);
    return s;
}

/* ---- exp core ------------------------------------------------------------------------ */

/* For x in [-104, 89]: e^x = 2^k * (1 + p), p = ph + *pl = expm1(r), |r| <= ln2/2 (+tiny).
 * k = rint(x / ln2) (magic-number rounding, |x/ln2| < 2^22). r = x - k*ln2 as a pair:
 * LN2_HI = fl(ln2) has ulp 2^-24, so x - k*LN2_HI is a multiple of 2^-25 below 0.5 in
 * magnitude and the fmaf is exact; -k*LN2_LO (|.| < 2^-21) is added by 2Sum; ln2 - HI - LO
 * ~ 2^-54 is negligible. p = r + r^2/2 + r^3 (1/3! + ... + r^6/9!) (Taylor; truncation
 * r^10/10! < 2^-37), the leading r + r^2/2 exact (fmaf square, Fast2Sum since r^2/2 < |r|),
 * the tail carried in *pl; relative error of the pair < 2^-27. */
FR_HOSTDEV static inline float fr_dm_exp_core(float x, int *k, float *pl)
{
    const float LOG2E = 0x1.715476p+0f, LN2_HI = 0x1.62e430p-1f, LN2_LO = -0x1.05c610p-29f;
    const float SHIFT = 0x1.8p23f;
    float kf = (x * LOG2E + SHIFT) - SHIFT;
    float rh = fmaf(-kf, LN2_HI, x);
    float rl;
    float r = fr_dm_two_sum(rh, -kf * LN2_LO, &rl);
    float rr = r * r;
    float rr_lo = fmaf(r, r, -rr);
    float h = 0.5f * rr;
    float R = 0x1.71de3ap-19f;            /* 1/9! */
    R = fmaf(R, r, 0x1.a01a02p-16f);      /* 1/8! */
    R = fmaf(R, r, 0x1.a01a02p-13f);      /* 1/7! */
    R = fmaf(R, r, 0x1.6c16c2p-10f);      /* 1/6! */
    R = fmaf(R, r, 0x1.111112p-7f);       /* 1/5! */
    R = fmaf(R, r, 0x1.555556p-5f);       /* 1/4! */
    R = fmaf(R, r, 0x1.555556p-3f);       /* 1/3! */
    float e1;
    float ph = fr_dm_fast_two_sum(r, h, &e1);
    /* expm1(r + rl) = expm1(r) + rl (1 + r) + O(rl^2) */
    *pl = e1 + (0.5f * rr_lo + fmaf(rl, r, rl) + (rr * r) * R);
    *k = (int)kf;
    return ph;
}

/* e^x - 1 = 2^k * (wh + *wl) for x in [-18, 89], |*wl| <= ulp(wh)/2:
 * w = (1 - 2^-k) + p with 1 - 2^-k split exactly by 2Sum (2^-k is only needed to k = 100:
 * beyond, it is far below the rounding of w). */
FR_HOSTDEV static inline float fr_dm_expm1_pair(float x, int *k, float *wl)
{
    float pl;
    float ph = fr_dm_exp_core(x, k, &pl);
    int kk = *k > 100 ? 100 : *k;
    float ul, e;
    float uh = fr_dm_two_sum(1.0f, -fr_dm_pow2i(-kk), &ul);
    float s = fr_dm_two_sum(uh, ph, &e);
    float lo = e + (ul + pl);
    float wh = s + lo;
    *wl = lo - (wh - s);
    return wh;
}

/* e^x = 2^k * (wh + *wl) for x in [-104, 89], wh in [0.7, 1.5]. */
FR_HOSTDEV static inline float fr_dm_exp_pair(float x, int *k, float *wl)
{
    float pl, e;
    float ph = fr_dm_exp_core(x, k, &pl);
    float s = fr_dm_fast_two_sum(1.0f, ph, &e);
    float lo = e + pl;
    float wh = s + lo;
    *wl = lo - (wh - s);
    return wh;
}

/* ---- log core ------------------------------------------------------------------------ */

/* Split a positive normal float u = 2^e * m, m in [sqrt(1/2), sqrt(2)): adding
 * 0x3f800000 - 0x3f3504f3 to the bits moves the exponent boundary from 1 to sqrt(1/2). */
FR_HOSTDEV static inline float fr_dm_split(uint32_t iu, int *e)
{
    uint32_t t = iu + (0x3f800000u - 0x3f3504f3u);
    *e = (int)(t >> 23) - 127;
    return fr_dm_float((t & 0x7fffffu) + 0x3f3504f3u);
}

/* log(2^e * (1 + f + c)) = hi + *lo, for f = m - 1 (exact by Sterbenz, f in [-0.293, 0.415])
 * and a small correction c (|c| <= 2^-23 |1 + f|).
 * log1p(f) = 2 atanh(s), s = f / (2 + f), |s| <= 0.1716, rewritten (fdlibm's identity)
 *   log1p(f) = f - f^2/2 + s (f^2/2 + R),  R = 2s^2/3 + 2s^4/5 + ... + 2s^12/13
 * (truncation 2 s^15/15 < 2^-34 |s|). s and R enter only through s (f^2/2 + R) <= 0.02, so
 * their ~2^-22 relative error costs < 2^-28 absolute; f, f^2/2 (exact by fmaf) and e*ln2
 * (LN2_HI has 16 bits, so e*LN2_HI is exact for |e| <= 255) are summed by 2Sum.
 * log(1 + f + c) = log1p(f) + c / (1 + f) + O(c^2). */
FR_HOSTDEV static inline float fr_dm_log_core(int e, float f, float c, float *lo)
{
    const float LN2_HI = 0x1.62e4p-1f, LN2_LO = 0x1.7f7d1cp-20f;
    float ef = (float)e;
    float ff = f * f;
    float ff_lo = fmaf(f, f, -ff);
    float hf = 0.5f * ff;
    float s = f / (2.0f + f);
    float z = s * s;
    float R = 0x1.3b13b2p-3f;             /* 2/13 */
    R = fmaf(R, z, 0x1.745d18p-3f);       /* 2/11 */
    R = fmaf(R, z, 0x1.c71c72p-3f);       /* 2/9 */
    R = fmaf(R, z, 0x1.24924ap-2f);       /* 2/7 */
    R = fmaf(R, z, 0x1.99999ap-2f);       /* 2/5 */
    R = fmaf(R, z, 0x1.555556p-1f);       /* 2/3 */
    R = R * z;
    float small = fmaf(s, hf + R, -0.5f * ff_lo);
    small = small + fmaf(ef, LN2_LO, c / (1.0f + f));
    float e1, e2;
    float s1 = fr_dm_two_sum(ef * LN2_HI, f, &e1);
    float s2 = fr_dm_two_sum(s1, -hf, &e2);
    *lo = (e1 + e2) + small;
    return s2;
}

/* log(1 + a) = hi + *lo for a = ah + al >= -1 + 2^-24, finite, |al| <= ulp(ah).
 * u = fl(1 + a) only picks e. e = 0 (a in [-0.29, 0.41]): f = ah itself, c = al (no
 * rounding of 1 + a enters). Otherwise 1 + a = 2^e (m + (c + al) 2^-e), c the 2Sum error
 * of 1 + ah, and |log(1 + a)| > 0.34 makes the rounding of c + al negligible. */
FR_HOSTDEV static inline float fr_dm_log1p_pair(float ah, float al, float *lo)
{
    float c;
    float u = fr_dm_two_sum(1.0f, ah, &c); /* u >= 2^-24: normal */
    int e;
    float m = fr_dm_split(fr_dm_bits(u), &e);
    float f = e == 0 ? ah : m - 1.0f;
    float cc = e == 0 ? al : fr_dm_ldexp(c + al, -e); /* 2^-e >= 2^-128: two exact factors */
    return fr_dm_log_core(e, f, cc, lo);
}

/* ---- sin / cos core ------------------------------------------------------------------ */

/* Payne-Hanek reduction for finite ax >= pi/4 (exact for every float): returns the quadrant
 * q (mod 4) and r = *rh + *rl, |r| <= pi/4, with ax = (4n + q) pi/2 + r.
 * ax = m 2^E (m: 24-bit integer). Bits of 2/pi with weight >= 2^(1-E) contribute multiples
 * of 4 to ax * 2/pi and are skipped; the next 96 bits W (window starting at weight 2^(1-E))
 * give ax * 2/pi = m W 2^-94 (mod 4) with an error < 2^-70. T[0] = 0 stands for the bits
 * above the binary point, T[1..7] are the first 224 fractional bits of 2/pi (from MPFR).
 * The 64 fraction bits, read as a signed number, give r / (pi/2) in [-1/2, 1/2) to 2^-64;
 * it is converted to a float pair and multiplied by the pair pi/2 (relative error ~2^-46). */
FR_HOSTDEV static inline unsigned fr_dm_trig_reduce(float ax, float *rh, float *rl)
{
    const uint32_t T[8] = {0x00000000u, 0xa2f9836eu, 0x4e441529u, 0xfc2757d1u,
                           0xf534ddc0u, 0xdb629599u, 0x3c439041u, 0xfe5163abu};
    const float PIO2_HI = 0x1.921fb6p+0f, PIO2_LO = -0x1.777a5cp-25f;
    uint32_t ix = fr_dm_bits(ax);
    uint64_t m = (ix & 0x7fffffu) | 0x800000u;
    int g = (int)(ix >> 23) - 150 + 30; /* window start, bit index from the MSB of T[0] */
    int i = g >> 5, sh = g & 31;
    uint64_t w0 = ((((uint64_t)T[i] << 32) | T[i + 1]) << sh) >> 32;
    uint64_t w1 = ((((uint64_t)T[i + 1] << 32) | T[i + 2]) << sh) >> 32;
    uint64_t w2 = ((((uint64_t)T[i + 2] << 32) | T[i + 3]) << sh) >> 32;
    uint64_t p0 = m * w0, p1 = m * w1, p2 = m * w2; /* m W = p0 2^64 + p1 2^32 + p2 */
    uint64_t lo = p2 + (p1 << 32);
    uint64_t hi = p0 + (p1 >> 32) + (lo < p2);
    uint64_t frac = (hi << 34) | (lo >> 30);
    unsigned neg = (unsigned)(frac >> 63);
    unsigned q = ((unsigned)(hi >> 30) + neg) & 3u;
    uint64_t mag = (neg ? (0 - frac) : frac) >> 1; /* |r| / (pi/2) = mag 2^-63, mag <= 2^62 */
    float ah = (float)(int64_t)mag;                     /* correctly rounded conversions */
    float al = (float)((int64_t)mag - (int64_t)ah);
    ah *= 0x1p-63f;
    al *= 0x1p-63f;
    float h = ah * PIO2_HI;
    float l = fmaf(ah, PIO2_HI, -h) + fmaf(ah, PIO2_LO, al * PIO2_HI);
    float t = h + l;
    l = l - (t - h);
    *rh = neg ? -t : t;
    *rl = neg ? -l : l;
    return q;
}

/* sin(r) and cos(r) for r = rh + rl, |r| <= pi/4 (+tiny), Taylor to r^11 / r^12
 * (truncation < 2^-36 relative).
 * sin = rh + [rl (1 - rh^2/2) + rh^3 S(rh^2)]; the bracket is < 0.08 |sin|.
 * cos = 1 - rh^2/2 + rh^4 C(rh^2) - rh rl, with rh^2/2 exact by fmaf and 1 - rh^2/2 by
 * Fast2Sum, so only the final rounding is large. */
FR_HOSTDEV static inline float fr_dm_sin_poly(float rh, float rl)
{
    float z = rh * rh;
    float S = -0x1.ae6456p-26f;           /* -1/11! */
    S = fmaf(S, z, 0x1.71de3ap-19f);      /* 1/9! */
    S = fmaf(S, z, -0x1.a01a02p-13f);     /* -1/7! */
    S = fmaf(S, z, 0x1.111112p-7f);       /* 1/5! */
    S = fmaf(S, z, -0x1.555556p-3f);      /* -1/3! */
    return rh + fmaf(rh * z, S, fmaf(-0.5f * z, rl, rl));
}

FR_HOSTDEV static inline float fr_dm_cos_poly(float rh, float rl)
{
    float z = rh * rh;
    float hz = 0.5f * z;
    float hz_lo = 0.5f * fmaf(rh, rh, -z);
    float C = 0x1.1eed8ep-29f;            /* 1/12! */
    C = fmaf(C, z, -0x1.27e4fcp-22f);     /* -1/10! */
    C = fmaf(C, z, 0x1.a01a02p-16f);      /* 1/8! */
    C = fmaf(C, z, -0x1.6c16c2p-10f);     /* -1/6! */
    C = fmaf(C, z, 0x1.555556p-5f);       /* 1/4! */
    float e;
    float t = fr_dm_fast_two_sum(1.0f, -hz, &e);
    return t + (fmaf(z * z, C, e - hz_lo) - rh * rl);
}

/* sin(ax + q pi/2) for ax >= 0 finite: quadrant 0: sin, 1: cos, 2: -sin, 3: -cos. */
FR_HOSTDEV static inline float fr_dm_sin_quadrant(float ax, unsigned q)
{
    float rh = ax, rl = 0.0f;
    if (ax > 0x1.921fb4p-1f) q += fr_dm_trig_reduce(ax, &rh, &rl); /* beyond fl(pi/4) */
    float y = (q & 1u) ? fr_dm_cos_poly(rh, rl) : fr_dm_sin_poly(rh, rl);
    return (q & 2u) ? -y : y;
}

/* ---- public functions ---------------------------------------------------------------- */

FR_HOSTDEV static inline float fr_sqrtf(float x) { return sqrtf(x); }

/* e^x: <= 1 ulp (0.5 ulp + < 2^-26 relative, once more 0.5 ulp on subnormal outputs).
 * Overflow: 0x1.62e42ep6 is the largest x with e^x finite (fl(ln FLT_MAX) = 0x1.62e430p6
 * lies above ln FLT_MAX); underflow to +0 below -150 ln2 = -103.97. */
FR_HOSTDEV static inline float fr_expf(float x)
{
    if (x != x) return x + x;
    if (x > 89.0f) return FR_DM_INF;
    if (x < -104.0f) return 0.0f;
    int k;
    float wl;
    float wh = fr_dm_exp_pair(x, &k, &wl);
    return fr_dm_ldexp(wh + wl, k);
}

/* e^x - 1: <= 1 ulp; exact for +-0 and tiny x (returns x); -1 below -18 (where
 * e^x < 2^-25, half an ulp of 1). */
FR_HOSTDEV static inline float fr_expm1f(float x)
{
    if (x != x) return x + x;
    if (x > 89.0f) return FR_DM_INF;
    if (x < -18.0f) return -1.0f;
    if (x == 0.0f) return x;
    int k;
    float wl;
    float wh = fr_dm_expm1_pair(x, &k, &wl);
    return fr_dm_ldexp(wh + wl, k);
}

/* log x: <= 1 ulp. log(+-0) = -inf, log(x < 0) = NaN, log(+inf) = +inf, log(1) = +0. */
FR_HOSTDEV static inline float fr_logf(float x)
{
    if (x != x) return x + x;
    if (x < 0.0f) return FR_DM_NAN;
    if (x == 0.0f) return -FR_DM_INF;
    if (x == FR_DM_INF) return x;
    uint32_t ix = fr_dm_bits(x);
    int e0 = 0;
    if (ix < 0x00800000u) { /* subnormal: scale by 2^23 (exact) */
        ix = fr_dm_bits(x * 0x1p23f);
        e0 = -23;
    }
    int e;
    float m = fr_dm_split(ix, &e);
    float lo;
    float hi = fr_dm_log_core(e + e0, m - 1.0f, 0.0f, &lo);
    return hi + lo;
}

/* log(1 + x): <= 1 ulp. Returns x for +-0 (sign kept); log1p(-1) = -inf, x < -1: NaN.
 * 1 + x is formed by 2Sum, its rounding error carried as the correction c. */
FR_HOSTDEV static inline float fr_log1pf(float x)
{
    if (x != x) return x + x;
    if (x < -1.0f) return FR_DM_NAN;
    if (x == -1.0f) return -FR_DM_INF;
    if (x == FR_DM_INF || x == 0.0f) return x;
    float lo;
    float hi = fr_dm_log1p_pair(x, 0.0f, &lo);
    return hi + lo;
}

/* sin x: <= 1 ulp for every finite float (exact Payne-Hanek reduction); sin(+-0) = +-0,
 * sin(+-inf) = NaN. Odd: computed on |x|, the sign bit of x applied last. */
FR_HOSTDEV static inline float fr_sinf(float x)
{
    if (x != x) return x + x;
    uint32_t sign = fr_dm_bits(x) & 0x80000000u;
    float ax = fr_dm_float(fr_dm_bits(x) ^ sign);
    if (ax == FR_DM_INF) return x - x;
    return fr_dm_float(fr_dm_bits(fr_dm_sin_quadrant(ax, 0u)) ^ sign);
}

/* cos x = sin(|x| + pi/2): <= 1 ulp for every finite float; cos(+-inf) = NaN. */
FR_HOSTDEV static inline float fr_cosf(float x)
{
    if (x != x) return x + x;
    float ax = fr_dm_float(fr_dm_bits(x) & 0x7fffffffu);
    if (ax == FR_DM_INF) return x - x;
    return fr_dm_sin_quadrant(ax, 1u);
}

/* tanh x = t / (t + 2), t = expm1(2|x|) as a float pair, the quotient by one Newton-type
 * correction (remainder exact by fmaf): <= 1 ulp. Odd, tanh(+-0) = +-0; +-1 for |x| > 9.5
 * (1 - tanh(9.5) = 1.1e-8 < 2^-25, half an ulp below 1). */
FR_HOSTDEV static inline float fr_tanhf(float x)
{
    if (x != x) return x + x;
    uint32_t sign = fr_dm_bits(x) & 0x80000000u;
    float ax = fr_dm_float(fr_dm_bits(x) ^ sign);
    float y = 1.0f;
    if (ax <= 9.5f) {
        int k;
        float wl;
        float wh = fr_dm_expm1_pair(2.0f * ax, &k, &wl);
        float th = fr_dm_ldexp(wh, k), tl = fr_dm_ldexp(wl, k); /* k <= 28: exact */
        float de;
        float dh = fr_dm_two_sum(th, 2.0f, &de);
        float dl = de + tl;
        float q0 = th / dh;
        float rho = fmaf(-q0, dh, th);
        y = q0 + (rho + fmaf(-q0, dl, tl)) / dh;
    }
    return fr_dm_float(fr_dm_bits(y) | sign);
}

/* sigmoid x = 1 / (1 + e^-x): with E = e^-|x| = 2^k w (pair), x >= 0: 1 / (1 + E);
 * x < 0: 2^k (w / (1 + E)) (no overflow, subnormal results rounded once more at the end).
 * Pair division as in fr_tanhf: <= 1 ulp. */
FR_HOSTDEV static inline float fr_sigmoidf(float x)
{
    if (x != x) return x + x;
    float a = -fabsf(x);
    if (a < -104.0f) a = -104.0f; /* e^-104 < 2^-150: the result is 1 or +0 */
    int k;
    float wl;
    float wh = fr_dm_exp_pair(a, &k, &wl);
    float eh = fr_dm_ldexp(wh, k), el = fr_dm_ldexp(wl, k);
    float de;
    float dh = fr_dm_fast_two_sum(1.0f, eh, &de);
    float dl = de + el;
    float nh = x >= 0.0f ? 1.0f : wh, nl = x >= 0.0f ? 0.0f : wl;
    float q0 = nh / dh;
    float rho = fmaf(-q0, dh, nh);
    float q = q0 + (rho + fmaf(-q0, dl, nl)) / dh;
    return x >= 0.0f ? q : fr_dm_ldexp(q, k);
}

/* softplus x = log(1 + e^x) = max(x, 0) + log1p(e^-|x|), with e^-|x| a float pair fed to
 * the log1p core and max(x, 0) added by 2Sum: <= 1 ulp. softplus(+inf) = +inf,
 * softplus(-inf) = +0; for x < -87.3 the result is subnormal (~e^x). */
FR_HOSTDEV static inline float fr_softplusf(float x)
{
    if (x != x) return x + x;
    if (x == FR_DM_INF) return x;
    float a = -fabsf(x);
    if (a < -104.0f) a = -104.0f;
    int k;
    float wl;
    float wh = fr_dm_exp_pair(a, &k, &wl);
    /* |x| > 27.7: log1p(E) = E (1 - E/2 + ...) with E < 2^-40, far below an ulp of x for
     * x > 0; for x < 0, E/2 is below 2^-16 ulp and E is scaled last so that wl does not
     * underflow near the subnormal results */
    if (k < -40) return x > 0.0f ? x : fr_dm_ldexp(wh + wl, k);
    float lo;
    float hi = fr_dm_log1p_pair(fr_dm_ldexp(wh, k), fr_dm_ldexp(wl, k), &lo);
    float e;
    float s = fr_dm_two_sum(x > 0.0f ? x : 0.0f, hi, &e);
    return s + (e + lo);
}

#endif
