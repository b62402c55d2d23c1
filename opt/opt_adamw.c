/* AdamW of opt: fr_adamw_elem (flowrl/elem.h, PyTorch semantics) lane by lane in AVX2 or NEON --
 * it is plain * + - / sqrt and two fmaf, all correctly rounded vector ops --
 * split into contiguous chunks across threads. AWM's EMA of the parameters
 * (fr_awm_ema_elem: two products and a sum) the same way on AVX2. */
#include "flowrl/awm_elem.h"
#include "flowrl/elem.h"
#include "opt/opt_internal.h"
#include "opt/opt_simd.h"

#define ADAMW_MIN_CHUNK 8192

typedef struct {
    float *p, *m, *v;
    const float *g;
    const fr_adamw_hp *hp;
} adamw_ctx;

#if FR_OPT_X86
FR_AVX2 static void adamw_avx2(int64_t b0, int64_t e, float *p, const float *g, float *m,
                               float *v, const fr_adamw_hp *hp)
{
    const __m256 decay = _mm256_set1_ps(hp->decay);
    const __m256 b1 = _mm256_set1_ps(hp->beta1), omb1 = _mm256_set1_ps(hp->one_minus_beta1);
    const __m256 b2 = _mm256_set1_ps(hp->beta2), omb2 = _mm256_set1_ps(hp->one_minus_beta2);
    const __m256 bc2 = _mm256_set1_ps(hp->bc2_sqrt), eps = _mm256_set1_ps(hp->eps);
    const __m256 ss = _mm256_set1_ps(hp->step_size);
    int64_t i = b0;
    for (; i + 8 <= e; i += 8) {
        __m256 pv = _mm256_loadu_ps(p + i), gv = _mm256_loadu_ps(g + i);
        __m256 mv = _mm256_loadu_ps(m + i), vv = _mm256_loadu_ps(v + i);
        __m256 pp = _mm256_mul_ps(pv, decay);
        /* fmaf(g, 1 - beta1, m * beta1) */
        __m256 mm = _mm256_fmadd_ps(gv, omb1, _mm256_mul_ps(mv, b1));
        /* fmaf((1 - beta2) * g, g, v * beta2) */
        __m256 vn = _mm256_fmadd_ps(_mm256_mul_ps(omb2, gv), gv, _mm256_mul_ps(vv, b2));
        /* sqrt(v) / bc2_sqrt + eps */
        __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vn), bc2), eps);
        /* p - (step_size * m) / denom */
        __m256 pn = _mm256_sub_ps(pp, _mm256_div_ps(_mm256_mul_ps(ss, mm), den));
        _mm256_storeu_ps(p + i, pn);
        _mm256_storeu_ps(m + i, mm);
        _mm256_storeu_ps(v + i, vn);
    }
    for (; i < e; i++) fr_adamw_elem(&p[i], g[i], &m[i], &v[i], hp);
}
#endif

#if FR_OPT_NEON
static void adamw_neon(int64_t b0, int64_t e, float *p, const float *g, float *m, float *v,
                       const fr_adamw_hp *hp)
{
    const float32x4_t decay = vdupq_n_f32(hp->decay);
    const float32x4_t b1 = vdupq_n_f32(hp->beta1), omb1 = vdupq_n_f32(hp->one_minus_beta1);
    const float32x4_t b2 = vdupq_n_f32(hp->beta2), omb2 = vdupq_n_f32(hp->one_minus_beta2);
    const float32x4_t bc2 = vdupq_n_f32(hp->bc2_sqrt), eps = vdupq_n_f32(hp->eps);
    const float32x4_t ss = vdupq_n_f32(hp->step_size);
    int64_t i = b0;
    for (; i + 4 <= e; i += 4) {
        float32x4_t pv = vld1q_f32(p + i), gv = vld1q_f32(g + i);
        float32x4_t mv = vld1q_f32(m + i), vv = vld1q_f32(v + i);
        float32x4_t pp = vmulq_f32(pv, decay);
        float32x4_t mm = vfmaq_f32(vmulq_f32(mv, b1), gv, omb1);                  /* fmaf(g, 1 - beta1, m beta1) */
        float32x4_t vn = vfmaq_f32(vmulq_f32(vv, b2), vmulq_f32(omb2, gv), gv);   /* fmaf((1 - beta2) g, g, v beta2) */
        float32x4_t den = vaddq_f32(vdivq_f32(vsqrtq_f32(vn), bc2), eps);
        float32x4_t pn = vsubq_f32(pp, vdivq_f32(vmulq_f32(ss, mm), den));
        vst1q_f32(p + i, pn);
        vst1q_f32(m + i, mm);
        vst1q_f32(v + i, vn);
    }
    for (; i < e; i++) fr_adamw_elem(&p[i], g[i], &m[i], &v[i], hp);
}
#endif

static void adamw_range(void *arg, int64_t b0, int64_t e)
{
    const adamw_ctx *c = (const adamw_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        adamw_avx2(b0, e, c->p, c->g, c->m, c->v, c->hp);
        return;
    }
#endif
#if FR_OPT_NEON
    if (fr_opt_neon) {
        adamw_neon(b0, e, c->p, c->g, c->m, c->v, c->hp);
        return;
    }
#endif
    for (int64_t i = b0; i < e; i++) fr_adamw_elem(&c->p[i], c->g[i], &c->m[i], &c->v[i], c->hp);
}

void fr_opt_adamw(int64_t n,
                  float *p,       // (n,) parameters, updated
                  const float *g, // (n,) gradients
                  float *m,       // (n,) first moment, updated
                  float *v,       // (n,) second moment, updated
                  const fr_adamw_hp *hp)
{
    adamw_ctx c = {p, m, v, g, hp};
    fr_opt_parallel_range(n, 16, ADAMW_MIN_CHUNK, adamw_range, &c);
}

/* ema (n) <- ema*(float)d + theta*(float)(1 - d) (fr_awm_ema_elem), as fr_ref_ema_lerp. */
typedef struct {
    float d, omd;
    const float *theta;
    float *ema;
} ema_ctx;

#if FR_OPT_X86
FR_AVX2 static void ema_avx2(const ema_ctx *c, int64_t b0, int64_t e)
{
    const __m256 d = _mm256_set1_ps(c->d), omd = _mm256_set1_ps(c->omd);
    int64_t i = b0;
    for (; i + 8 <= e; i += 8)
        _mm256_storeu_ps(c->ema + i, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(c->ema + i), d),
                                                   _mm256_mul_ps(_mm256_loadu_ps(c->theta + i), omd)));
    for (; i < e; i++) c->ema[i] = fr_awm_ema_elem(c->ema[i], c->theta[i], c->d, c->omd);
}
#endif

static void ema_range(void *arg, int64_t b0, int64_t e)
{
    const ema_ctx *c = (const ema_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        ema_avx2(c, b0, e);
        return;
    }
#endif
    for (int64_t i = b0; i < e; i++) c->ema[i] = fr_awm_ema_elem(c->ema[i], c->theta[i], c->d, c->omd);
}

void fr_opt_ema_lerp(int64_t n, double d,
                     const float *theta, // (n,)
                     float *ema)         // (n,), updated
{
    ema_ctx c = {(float)d, (float)(1.0 - d), theta, ema};
    fr_opt_parallel_range(n, 16, 4 * ADAMW_MIN_CHUNK, ema_range, &c);
}
