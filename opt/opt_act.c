/* Activations of opt, split into contiguous chunks across threads (elements are
 * independent, so any split gives the same bits).
 *  - GELU-tanh and tanh: AVX2 ports of fr_gelu_tanh_elem / fr_tanh_elem and their
 *    backward (flowrl/elem.h), with fr_tanhf ported lane by lane (opt/opt_vtanh.h).
 *  - ReLU, identity: AVX2 selects.
 *  - SiLU and sigmoid: AVX2 ports of their element functions and backward, with fr_sigmoidf
 *    ported lane by lane (fr_v_sigmoidf, opt/opt_vexp.h); on NEON the scalar ones, threaded.
 *  - act_fwd_save / act_bwd_saved (the forward keeps the transcendental, the backward reads it):
 *    the same kernels with t stored / loaded in place of the backward's fr_v_tanhf.
 * On aarch64 the same kernels run on NEON (4 lanes; fr_n_tanhf in opt/opt_vtanh.h). */
#include "flowrl/elem.h"
#include "opt/opt_internal.h"
#include "opt/opt_simd.h"
#include "opt/opt_vexp.h"
#include "opt/opt_vtanh.h"

#include <string.h>

#define ACT_MIN_CHUNK_TRANSC 2048
#define ACT_MIN_CHUNK_CHEAP (1 << 15)
#define ACT_MIN_CHUNK_VEC 8192 /* vector tanh: ~4 ns per element */

typedef struct {
    fr_act act;
    const float *x, *dy;
    float *out;
    int accumulate;
    float *s; /* act_fwd_save's saved values (written), act_bwd_saved's (read) */
} act_ctx;

/* act_fwd_save / act_bwd_saved on [b, e) by the element functions (the vector kernels' tails,
 * the other activations). */
static void fwd_save_scalar(fr_act act, int64_t b, int64_t e, const float *x, float *y, float *s)
{
    for (int64_t i = b; i < e; i++) {
        const float xi = x[i], si = fr_act_saved_elem(act, xi);
        s[i] = si;
        y[i] = fr_act_from_saved_elem(act, xi, si);
    }
}

static void bwd_saved_scalar(fr_act act, int64_t b, int64_t e, const float *x, const float *s, const float *dy,
                             float *dx, int accumulate)
{
    for (int64_t i = b; i < e; i++) {
        float d = fr_act_bwd_saved_elem(act, x[i], s[i], dy[i]);
        dx[i] = accumulate ? dx[i] + d : d;
    }
}

#if FR_OPT_X86
/* relu: x > 0 ? x : (x == x ? 0 : x)  (fr_relu_elem): keep x where x > 0 or x is NaN. */
FR_AVX2 static void relu_fwd_avx2(int64_t b0, int64_t e, const float *x, float *y)
{
    int64_t i = b0;
    for (; i + 8 <= e; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 keep = _mm256_or_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ),
                                   _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        _mm256_storeu_ps(y + i, _mm256_and_ps(v, keep));
    }
    for (; i < e; i++) y[i] = fr_relu_elem(x[i]);
}

/* d = x > 0 ? dy : 0 (fr_relu_bwd_elem); dx = accumulate ? dx + d : d. */
FR_AVX2 static void relu_bwd_avx2(int64_t b0, int64_t e, const float *x, const float *dy,
                                  float *dx, int accumulate)
{
    int64_t i = b0;
    for (; i + 8 <= e; i += 8) {
        __m256 gt = _mm256_cmp_ps(_mm256_loadu_ps(x + i), _mm256_setzero_ps(), _CMP_GT_OQ);
        __m256 d = _mm256_and_ps(_mm256_loadu_ps(dy + i), gt);
        if (accumulate) d = _mm256_add_ps(_mm256_loadu_ps(dx + i), d);
        _mm256_storeu_ps(dx + i, d);
    }
    for (; i < e; i++) {
        float d = fr_relu_bwd_elem(x[i], dy[i]);
        dx[i] = accumulate ? dx[i] + d : d;
    }
}

/* identity backward: d = dy. */
FR_AVX2 static void ident_bwd_avx2(int64_t b0, int64_t e, const float *dy, float *dx,
                                   int accumulate)
{
    int64_t i = b0;
    for (; i + 8 <= e; i += 8) {
        __m256 d = _mm256_loadu_ps(dy + i);
        if (accumulate) d = _mm256_add_ps(_mm256_loadu_ps(dx + i), d);
        _mm256_storeu_ps(dx + i, d);
    }
    for (; i < e; i++) dx[i] = accumulate ? dx[i] + dy[i] : dy[i];
}

/* fr_gelu_tanh_inner: beta * fmaf(kappa, (x*x)*x, x) */
FR_AVX2_INL static inline __m256 v_gelu_inner(__m256 x)
{
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    return _mm256_mul_ps(_mm256_set1_ps(FR_GELU_BETA),
                         _mm256_fmadd_ps(_mm256_set1_ps(FR_GELU_KAPPA), x3, x));
}

/* act(v) for act in {GELU_TANH, TANH} (fr_gelu_tanh_elem, fr_tanhf). */
FR_AVX2_INL static inline __m256 v_tanh_family(fr_act act, __m256 v)
{
    if (act != FR_ACT_GELU_TANH) return fr_v_tanhf(v);
    __m256 t = fr_v_tanhf(v_gelu_inner(v));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v),
                         _mm256_add_ps(_mm256_set1_ps(1.0f), t)); /* (0.5x)(1+t) */
}

/* dy * act'(v) (fr_gelu_tanh_bwd_elem, fr_tanh_bwd_elem). */
FR_AVX2_INL static inline __m256 v_tanh_family_bwd(fr_act act, __m256 v, __m256 g)
{
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    if (act != FR_ACT_GELU_TANH) {
        __m256 t = fr_v_tanhf(v);
        return _mm256_mul_ps(g, _mm256_fmadd_ps(fr_v_neg(t), t, one));
    }
    __m256 t = fr_v_tanhf(v_gelu_inner(v));
    __m256 h = _mm256_mul_ps(half, v);
    __m256 tp = _mm256_fmadd_ps(fr_v_neg(t), t, one); /* 1 - t^2 */
    __m256 up = _mm256_mul_ps(_mm256_set1_ps(FR_GELU_BETA),
                              _mm256_fmadd_ps(_mm256_set1_ps(FR_GELU_3KAPPA), _mm256_mul_ps(v, v), one));
    __m256 dd = _mm256_fmadd_ps(_mm256_mul_ps(h, tp), up, _mm256_mul_ps(half, _mm256_add_ps(one, t)));
    return _mm256_mul_ps(g, dd);
}

/* act in {GELU_TANH, TANH}: y = act(x). fr_v_tanhf is one long dependency chain (two
 * divisions among ~100 operations): two vectors per iteration let the core overlap them. */
FR_AVX2 static void tanh_family_fwd_avx2(fr_act act, int64_t b0, int64_t e, const float *x,
                                         float *y)
{
    int64_t i = b0;
    for (; i + 32 <= e; i += 32) {
        __m256 r0 = v_tanh_family(act, _mm256_loadu_ps(x + i));
        __m256 r1 = v_tanh_family(act, _mm256_loadu_ps(x + i + 8));
        __m256 r2 = v_tanh_family(act, _mm256_loadu_ps(x + i + 16));
        __m256 r3 = v_tanh_family(act, _mm256_loadu_ps(x + i + 24));
        _mm256_storeu_ps(y + i, r0);
        _mm256_storeu_ps(y + i + 8, r1);
        _mm256_storeu_ps(y + i + 16, r2);
        _mm256_storeu_ps(y + i + 24, r3);
    }
    for (; i + 8 <= e; i += 8) _mm256_storeu_ps(y + i, v_tanh_family(act, _mm256_loadu_ps(x + i)));
    for (; i < e; i++) y[i] = fr_act_elem(act, x[i]);
}

/* d = dy * act'(x); dx = accumulate ? dx + d : d. Two vectors per iteration, as above. */
FR_AVX2 static void tanh_family_bwd_avx2(fr_act act, int64_t b0, int64_t e, const float *x,
                                         const float *dy, float *dx, int accumulate)
{
    int64_t i = b0;
    for (; i + 16 <= e; i += 16) {
        __m256 d0 = v_tanh_family_bwd(act, _mm256_loadu_ps(x + i), _mm256_loadu_ps(dy + i));
        __m256 d1 = v_tanh_family_bwd(act, _mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(dy + i + 8));
        if (accumulate) {
            d0 = _mm256_add_ps(_mm256_loadu_ps(dx + i), d0);
            d1 = _mm256_add_ps(_mm256_loadu_ps(dx + i + 8), d1);
        }
        _mm256_storeu_ps(dx + i, d0);
        _mm256_storeu_ps(dx + i + 8, d1);
    }
    for (; i + 8 <= e; i += 8) {
        __m256 d = v_tanh_family_bwd(act, _mm256_loadu_ps(x + i), _mm256_loadu_ps(dy + i));
        if (accumulate) d = _mm256_add_ps(_mm256_loadu_ps(dx + i), d);
        _mm256_storeu_ps(dx + i, d);
    }
    for (; i < e; i++) {
        float d = fr_act_bwd_elem(act, x[i], dy[i]);
        dx[i] = accumulate ? dx[i] + d : d;
    }
}

/* act_fwd_save for act in {GELU_TANH, TANH}: s = t = fr_v_tanhf(u), y from t as
 * v_tanh_family; four vectors per iteration (the tanh chains overlap). */
FR_AVX2_INL static inline __m256 v_tanh_family_save(fr_act act, __m256 v, float *s)
{
    if (act != FR_ACT_GELU_TANH) {
        __m256 t = fr_v_tanhf(v);
        _mm256_storeu_ps(s, t);
        return t;
    }
    __m256 t = fr_v_tanhf(v_gelu_inner(v));
    _mm256_storeu_ps(s, t);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), t));
}

FR_AVX2 static void tanh_family_fwd_save_avx2(fr_act act, int64_t b0, int64_t e, const float *x, float *y,
                                              float *s)
{
    int64_t i = b0;
    for (; i + 32 <= e; i += 32) {
        __m256 r0 = v_tanh_family_save(act, _mm256_loadu_ps(x + i), s + i);
        __m256 r1 = v_tanh_family_save(act, _mm256_loadu_ps(x + i + 8), s + i + 8);
        __m256 r2 = v_tanh_family_save(act, _mm256_loadu_ps(x + i + 16), s + i + 16);
        __m256 r3 = v_tanh_family_save(act, _mm256_loadu_ps(x + i + 24), s + i + 24);
        _mm256_storeu_ps(y + i, r0);
        _mm256_storeu_ps(y + i + 8, r1);
        _mm256_storeu_ps(y + i + 16, r2);
        _mm256_storeu_ps(y + i + 24, r3);
    }
    for (; i + 8 <= e; i += 8) _mm256_storeu_ps(y + i, v_tanh_family_save(act, _mm256_loadu_ps(x + i), s + i));
    fwd_save_scalar(act, i, e, x, y, s);
}

/* SiLU and sigmoid forward: s = fr_v_sigmoidf(x), y = x s (SiLU) or s; s also stored when
 * s_out is given (act_fwd_save). */
FR_AVX2 static void sig_family_fwd_avx2(fr_act act, int64_t b0, int64_t e, const float *x, float *y, float *s_out)
{
    int64_t i = b0;
    for (; i + 8 <= e; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i), t = fr_v_sigmoidf(v);
        if (s_out) _mm256_storeu_ps(s_out + i, t);
        _mm256_storeu_ps(y + i, act == FR_ACT_SILU ? _mm256_mul_ps(v, t) : t);
    }
    if (s_out) fwd_save_scalar(act, i, e, x, y, s_out);
    else
        for (; i < e; i++) y[i] = fr_act_elem(act, x[i]);
}

/* Their backward, s recomputed from x or loaded from the saved s_in:
 * SiLU dy (s fmaf(x, 1 - s, 1)), sigmoid (dy (1 - s)) s (fr_silu_bwd_s_elem, fr_sigmoid_bwd_s_elem). */
FR_AVX2 static void sig_family_bwd_avx2(fr_act act, int64_t b0, int64_t e, const float *x, const float *s_in,
                                        const float *dy, float *dx, int accumulate)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const int silu = act == FR_ACT_SILU;
    int64_t i = b0;
    for (; i + 8 <= e; i += 8) {
        const __m256 v = silu || !s_in ? _mm256_loadu_ps(x + i) : one;
        const __m256 t = s_in ? _mm256_loadu_ps(s_in + i) : fr_v_sigmoidf(v), g = _mm256_loadu_ps(dy + i);
        const __m256 oms = _mm256_sub_ps(one, t);
        __m256 d = silu ? _mm256_mul_ps(g, _mm256_mul_ps(t, _mm256_fmadd_ps(v, oms, one)))
                        : _mm256_mul_ps(_mm256_mul_ps(g, oms), t);
        if (accumulate) d = _mm256_add_ps(_mm256_loadu_ps(dx + i), d);
        _mm256_storeu_ps(dx + i, d);
    }
    if (s_in) {
        bwd_saved_scalar(act, i, e, x, s_in, dy, dx, accumulate);
        return;
    }
    for (; i < e; i++) {
        float d = fr_act_bwd_elem(act, x[i], dy[i]);
        dx[i] = accumulate ? dx[i] + d : d;
    }
}

/* act_bwd_saved for act in {GELU_TANH, TANH}: v_tanh_family_bwd with t loaded from s. */
FR_AVX2 static void tanh_family_bwd_saved_avx2(fr_act act, int64_t b0, int64_t e, const float *x, const float *s,
                                               const float *dy, float *dx, int accumulate)
{
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 beta = _mm256_set1_ps(FR_GELU_BETA), k3 = _mm256_set1_ps(FR_GELU_3KAPPA);
    int64_t i = b0;
    for (; i + 8 <= e; i += 8) {
        __m256 t = _mm256_loadu_ps(s + i), g = _mm256_loadu_ps(dy + i), d;
        __m256 tp = _mm256_fmadd_ps(fr_v_neg(t), t, one); /* 1 - t^2 */
        if (act == FR_ACT_GELU_TANH) {
            __m256 v = _mm256_loadu_ps(x + i);
            __m256 h = _mm256_mul_ps(half, v);
            __m256 up = _mm256_mul_ps(beta, _mm256_fmadd_ps(k3, _mm256_mul_ps(v, v), one));
            d = _mm256_mul_ps(g, _mm256_fmadd_ps(_mm256_mul_ps(h, tp), up, _mm256_mul_ps(half, _mm256_add_ps(one, t))));
        } else {
            d = _mm256_mul_ps(g, tp);
        }
        if (accumulate) d = _mm256_add_ps(_mm256_loadu_ps(dx + i), d);
        _mm256_storeu_ps(dx + i, d);
    }
    bwd_saved_scalar(act, i, e, x, s, dy, dx, accumulate);
}
#endif

#if FR_OPT_NEON
/* The AVX2 kernels above on 4 NEON lanes. relu: keep x where x > 0 or x is NaN. */
static void relu_fwd_neon(int64_t b0, int64_t e, const float *x, float *y)
{
    int64_t i = b0;
    for (; i + 4 <= e; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        uint32x4_t keep = vorrq_u32(vcgtq_f32(v, vdupq_n_f32(0.0f)), vmvnq_u32(vceqq_f32(v, v)));
        vst1q_f32(y + i, vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), keep)));
    }
    for (; i < e; i++) y[i] = fr_relu_elem(x[i]);
}

/* d = x > 0 ? dy : 0 (relu) or dy (identity); dx = accumulate ? dx + d : d. */
static void relu_ident_bwd_neon(fr_act act, int64_t b0, int64_t e, const float *x, const float *dy,
                                float *dx, int accumulate)
{
    int64_t i = b0;
    for (; i + 4 <= e; i += 4) {
        float32x4_t d = vld1q_f32(dy + i);
        if (act == FR_ACT_RELU)
            d = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(d), vcgtq_f32(vld1q_f32(x + i), vdupq_n_f32(0.0f))));
        if (accumulate) d = vaddq_f32(vld1q_f32(dx + i), d);
        vst1q_f32(dx + i, d);
    }
    for (; i < e; i++) {
        float d = act == FR_ACT_RELU ? fr_relu_bwd_elem(x[i], dy[i]) : dy[i];
        dx[i] = accumulate ? dx[i] + d : d;
    }
}

/* fr_gelu_tanh_inner: beta * fmaf(kappa, (x*x)*x, x) */
static inline float32x4_t n_gelu_inner(float32x4_t x)
{
    float32x4_t x3 = vmulq_f32(vmulq_f32(x, x), x);
    return vmulq_f32(vdupq_n_f32(FR_GELU_BETA), vfmaq_f32(x, vdupq_n_f32(FR_GELU_KAPPA), x3));
}

static void tanh_family_fwd_neon(fr_act act, int64_t b0, int64_t e, const float *x, float *y)
{
    const float32x4_t half = vdupq_n_f32(0.5f), one = vdupq_n_f32(1.0f);
    int64_t i = b0;
    for (; i + 4 <= e; i += 4) {
        float32x4_t v = vld1q_f32(x + i), r;
        if (act == FR_ACT_GELU_TANH)
            r = vmulq_f32(vmulq_f32(half, v), vaddq_f32(one, fr_n_tanhf(n_gelu_inner(v)))); /* (0.5x)(1+t) */
        else
            r = fr_n_tanhf(v);
        vst1q_f32(y + i, r);
    }
    for (; i < e; i++) y[i] = fr_act_elem(act, x[i]);
}

static void tanh_family_bwd_neon(fr_act act, int64_t b0, int64_t e, const float *x, const float *dy,
                                 float *dx, int accumulate)
{
    const float32x4_t half = vdupq_n_f32(0.5f), one = vdupq_n_f32(1.0f);
    const float32x4_t beta = vdupq_n_f32(FR_GELU_BETA), k3 = vdupq_n_f32(FR_GELU_3KAPPA);
    int64_t i = b0;
    for (; i + 4 <= e; i += 4) {
        float32x4_t v = vld1q_f32(x + i), g = vld1q_f32(dy + i), d;
        if (act == FR_ACT_GELU_TANH) {
            float32x4_t t = fr_n_tanhf(n_gelu_inner(v));
            float32x4_t h = vmulq_f32(half, v);
            float32x4_t tp = vfmaq_f32(one, vnegq_f32(t), t);                          /* 1 - t^2 */
            float32x4_t up = vmulq_f32(beta, vfmaq_f32(one, k3, vmulq_f32(v, v)));
            float32x4_t dd = vfmaq_f32(vmulq_f32(half, vaddq_f32(one, t)), vmulq_f32(h, tp), up);
            d = vmulq_f32(g, dd);
        } else {
            float32x4_t t = fr_n_tanhf(v);
            d = vmulq_f32(g, vfmaq_f32(one, vnegq_f32(t), t));
        }
        if (accumulate) d = vaddq_f32(vld1q_f32(dx + i), d);
        vst1q_f32(dx + i, d);
    }
    for (; i < e; i++) {
        float d = fr_act_bwd_elem(act, x[i], dy[i]);
        dx[i] = accumulate ? dx[i] + d : d;
    }
}

/* act_fwd_save / act_bwd_saved for act in {GELU_TANH, TANH}, as the AVX2 kernels. */
static void tanh_family_fwd_save_neon(fr_act act, int64_t b0, int64_t e, const float *x, float *y, float *s)
{
    const float32x4_t half = vdupq_n_f32(0.5f), one = vdupq_n_f32(1.0f);
    int64_t i = b0;
    for (; i + 4 <= e; i += 4) {
        float32x4_t v = vld1q_f32(x + i), t, r;
        if (act == FR_ACT_GELU_TANH) {
            t = fr_n_tanhf(n_gelu_inner(v));
            r = vmulq_f32(vmulq_f32(half, v), vaddq_f32(one, t)); /* (0.5x)(1+t) */
        } else {
            r = t = fr_n_tanhf(v);
        }
        vst1q_f32(s + i, t);
        vst1q_f32(y + i, r);
    }
    fwd_save_scalar(act, i, e, x, y, s);
}

static void tanh_family_bwd_saved_neon(fr_act act, int64_t b0, int64_t e, const float *x, const float *s,
                                       const float *dy, float *dx, int accumulate)
{
    const float32x4_t half = vdupq_n_f32(0.5f), one = vdupq_n_f32(1.0f);
    const float32x4_t beta = vdupq_n_f32(FR_GELU_BETA), k3 = vdupq_n_f32(FR_GELU_3KAPPA);
    int64_t i = b0;
    for (; i + 4 <= e; i += 4) {
        float32x4_t t = vld1q_f32(s + i), g = vld1q_f32(dy + i), d;
        float32x4_t tp = vfmaq_f32(one, vnegq_f32(t), t); /* 1 - t^2 */
        if (act == FR_ACT_GELU_TANH) {
            float32x4_t v = vld1q_f32(x + i);
            float32x4_t h = vmulq_f32(half, v);
            float32x4_t up = vmulq_f32(beta, vfmaq_f32(one, k3, vmulq_f32(v, v)));
            d = vmulq_f32(g, vfmaq_f32(vmulq_f32(half, vaddq_f32(one, t)), vmulq_f32(h, tp), up));
        } else {
            d = vmulq_f32(g, tp);
        }
        if (accumulate) d = vaddq_f32(vld1q_f32(dx + i), d);
        vst1q_f32(dx + i, d);
    }
    bwd_saved_scalar(act, i, e, x, s, dy, dx, accumulate);
}
#endif

static int is_tanh_family(fr_act act) { return act == FR_ACT_GELU_TANH || act == FR_ACT_TANH; }
static int is_sig_family(fr_act act) { return act == FR_ACT_SILU || act == FR_ACT_SIGMOID; }

static void act_fwd_range(void *arg, int64_t b0, int64_t e)
{
    const act_ctx *c = (const act_ctx *)arg;
    if (c->act == FR_ACT_IDENTITY) {
        if (c->out != c->x) memmove(c->out + b0, c->x + b0, (size_t)(e - b0) * sizeof(float));
        return;
    }
#if FR_OPT_X86
    if (fr_opt_avx2 && c->act == FR_ACT_RELU) {
        relu_fwd_avx2(b0, e, c->x, c->out);
        return;
    }
    if (fr_opt_avx2 && is_tanh_family(c->act)) {
        tanh_family_fwd_avx2(c->act, b0, e, c->x, c->out);
        return;
    }
    if (fr_opt_avx2 && is_sig_family(c->act)) {
        sig_family_fwd_avx2(c->act, b0, e, c->x, c->out, NULL);
        return;
    }
#endif
#if FR_OPT_NEON
    if (fr_opt_neon && c->act == FR_ACT_RELU) {
        relu_fwd_neon(b0, e, c->x, c->out);
        return;
    }
    if (fr_opt_neon && is_tanh_family(c->act)) {
        tanh_family_fwd_neon(c->act, b0, e, c->x, c->out);
        return;
    }
#endif
    for (int64_t i = b0; i < e; i++) c->out[i] = fr_act_elem(c->act, c->x[i]);
}

static void act_bwd_range(void *arg, int64_t b0, int64_t e)
{
    const act_ctx *c = (const act_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2 && c->act == FR_ACT_RELU) {
        relu_bwd_avx2(b0, e, c->x, c->dy, c->out, c->accumulate);
        return;
    }
    if (fr_opt_avx2 && is_tanh_family(c->act)) {
        tanh_family_bwd_avx2(c->act, b0, e, c->x, c->dy, c->out, c->accumulate);
        return;
    }
    if (fr_opt_avx2 && is_sig_family(c->act)) {
        sig_family_bwd_avx2(c->act, b0, e, c->x, NULL, c->dy, c->out, c->accumulate);
        return;
    }
    if (fr_opt_avx2 && c->act == FR_ACT_IDENTITY) {
        ident_bwd_avx2(b0, e, c->dy, c->out, c->accumulate);
        return;
    }
#endif
#if FR_OPT_NEON
    if (fr_opt_neon && (c->act == FR_ACT_RELU || c->act == FR_ACT_IDENTITY)) {
        relu_ident_bwd_neon(c->act, b0, e, c->x, c->dy, c->out, c->accumulate);
        return;
    }
    if (fr_opt_neon && is_tanh_family(c->act)) {
        tanh_family_bwd_neon(c->act, b0, e, c->x, c->dy, c->out, c->accumulate);
        return;
    }
#endif
    for (int64_t i = b0; i < e; i++) {
        float d = fr_act_bwd_elem(c->act, c->x[i], c->dy[i]);
        c->out[i] = c->accumulate ? c->out[i] + d : d;
    }
}

static int64_t act_min_chunk(fr_act act)
{
    if (act == FR_ACT_IDENTITY || act == FR_ACT_RELU) return ACT_MIN_CHUNK_CHEAP;
    if (fr_opt_avx2 && is_sig_family(act)) return ACT_MIN_CHUNK_VEC;
    return (fr_opt_avx2 || fr_opt_neon) && is_tanh_family(act) ? ACT_MIN_CHUNK_VEC : ACT_MIN_CHUNK_TRANSC;
}

void fr_opt_act_fwd(fr_act act, int64_t n,
                    const float *x, // (n,)
                    float *y)       // (n,), may alias x
{
    act_ctx c = {act, x, NULL, y, 0, NULL};
    fr_opt_parallel_range(n, 16, act_min_chunk(act), act_fwd_range, &c);
}

void fr_opt_act_bwd(fr_act act, int64_t n,
                    const float *x,  // (n,) the forward's input
                    const float *dy, // (n,)
                    float *dx,       // (n,)
                    int accumulate)
{
    act_ctx c = {act, x, dy, dx, accumulate, NULL};
    fr_opt_parallel_range(n, 16, act_min_chunk(act), act_bwd_range, &c);
}

/* act_fwd_save / act_bwd_saved: the tanh family's vector kernels, the element functions
 * otherwise. */
static void act_fwd_save_range(void *arg, int64_t b0, int64_t e)
{
    const act_ctx *c = (const act_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2 && is_tanh_family(c->act)) {
        tanh_family_fwd_save_avx2(c->act, b0, e, c->x, c->out, c->s);
        return;
    }
    if (fr_opt_avx2 && is_sig_family(c->act)) {
        sig_family_fwd_avx2(c->act, b0, e, c->x, c->out, c->s);
        return;
    }
#endif
#if FR_OPT_NEON
    if (fr_opt_neon && is_tanh_family(c->act)) {
        tanh_family_fwd_save_neon(c->act, b0, e, c->x, c->out, c->s);
        return;
    }
#endif
    fwd_save_scalar(c->act, b0, e, c->x, c->out, c->s);
}

static void act_bwd_saved_range(void *arg, int64_t b0, int64_t e)
{
    const act_ctx *c = (const act_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2 && is_tanh_family(c->act)) {
        tanh_family_bwd_saved_avx2(c->act, b0, e, c->x, c->s, c->dy, c->out, c->accumulate);
        return;
    }
    if (fr_opt_avx2 && is_sig_family(c->act)) {
        sig_family_bwd_avx2(c->act, b0, e, c->x, c->s, c->dy, c->out, c->accumulate);
        return;
    }
#endif
#if FR_OPT_NEON
    if (fr_opt_neon && is_tanh_family(c->act)) {
        tanh_family_bwd_saved_neon(c->act, b0, e, c->x, c->s, c->dy, c->out, c->accumulate);
        return;
    }
#endif
    bwd_saved_scalar(c->act, b0, e, c->x, c->s, c->dy, c->out, c->accumulate);
}

void fr_opt_act_fwd_save(fr_act act, int64_t n,
                         const float *x, // (n,)
                         float *y,       // (n,), may alias x
                         float *s)       // (n,)
{
    act_ctx c = {act, x, NULL, y, 0, s};
    fr_opt_parallel_range(n, 16, act_min_chunk(act), act_fwd_save_range, &c);
}

/* Without the transcendental the tanh family's backward is a few operations per element:
 * the cheap ops' chunk. */
void fr_opt_act_bwd_saved(fr_act act, int64_t n,
                          const float *x,  // (n,) the forward's input
                          const float *s,  // (n,) act_fwd_save's s
                          const float *dy, // (n,)
                          float *dx,       // (n,)
                          int accumulate)
{
    act_ctx c = {act, x, dy, dx, accumulate, (float *)s};
    fr_opt_parallel_range(n, 16, (fr_opt_avx2 || fr_opt_neon) && is_tanh_family(act) ? ACT_MIN_CHUNK_CHEAP : act_min_chunk(act),
                          act_bwd_saved_range, &c);
}

/* The JVP per chunk: the tangent by the backward's kernels (act_bwd_range, bitwise
 * fr_act_jvp_elem), then the primal by the forward's, so y may alias x. */
typedef struct {
    act_ctx tan, fwd;
} act_jvp_ctx;

static void act_jvp_range(void *arg, int64_t b0, int64_t e)
{
    act_jvp_ctx *c = (act_jvp_ctx *)arg;
    act_bwd_range(&c->tan, b0, e);
    act_fwd_range(&c->fwd, b0, e);
}

void fr_opt_act_jvp(fr_act act, int64_t n,
                    const float *x,    // (n,)
                    const float *xdot, // (n,)
                    float *y,          // (n,), may alias x
                    float *ydot)       // (n,), may alias xdot
{
    act_jvp_ctx c = {{act, x, xdot, ydot, 0, NULL}, {act, x, NULL, y, 0, NULL}};
    fr_opt_parallel_range(n, 16, act_min_chunk(act), act_jvp_range, &c);
}
