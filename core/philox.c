#include <stdlib.h>

#include "flowrl/philox.h"

void fr_rng_fill_uniform(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0,
                         uint32_t c1, uint32_t c2)
{
    for (int64_t i = 0; i < n; i += 4) {
        fr_u32x4 b = fr_rng_block(seed, purpose, c0, c1, c2, (uint32_t)(i >> 2));
        for (int j = 0; j < 4 && i + j < n; j++) out[i + j] = fr_u32_to_uniform(b.v[j]);
    }
}

/* x86-64 with gcc: core/philox_fma.c builds the same row for FMA hardware, where fmaf (inside
 * fr_logf, fr_sinf, fr_cosf) is one instruction instead of a libm call; fmaf is exact either way and
 * -ffp-contract=off fuses nothing else, so both give the same bits (issue 15: the profile of an
 * epoch put the normals at a tenth of it). */
void fr_rng_fill_normal_scalar(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0,
                               uint32_t c1, uint32_t c2)
{
#if FR_PHILOX_FMA
    if (__builtin_cpu_supports("fma")) { /* a load and a test: callers run on several threads */
        fr_rng_fill_normal_fma(out, n, seed, purpose, c0, c1, c2);
        return;
    }
#endif
    fr_rng_fill_normal_row(out, n, seed, purpose, c0, c1, c2);
}

/* And with AVX2, eight blocks at a time (core/philox_avx2.c): the same bits again. */
void fr_rng_fill_normal(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0,
                        uint32_t c1, uint32_t c2)
{
#if FR_PHILOX_AVX2
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        fr_rng_fill_normal_avx2(out, n, seed, purpose, c0, c1, c2);
        return;
    }
#endif
    fr_rng_fill_normal_scalar(out, n, seed, purpose, c0, c1, c2);
}

typedef struct {
    uint32_t w;
    int64_t i;
} perm_key;

static int perm_cmp(const void *a, const void *b)
{
    const perm_key *x = a, *y = b;
    if (x->w != y->w) return x->w < y->w ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

void fr_rng_perm(int64_t *perm, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1)
{
    perm_key stack[64], *k = n <= 64 ? stack : malloc((size_t)n * sizeof *k);
    if (!k) abort(); /* a few bytes per element: out of memory here is not recoverable */
    for (int64_t i = 0; i < n; i++) k[i] = (perm_key){fr_rng_u32(seed, purpose, c0, c1, 0, (uint32_t)i), i};
    qsort(k, (size_t)n, sizeof *k, perm_cmp);
    for (int64_t i = 0; i < n; i++) perm[i] = k[i].i;
    if (k != stack) free(k);
}
