#include "flowrl/philox.h"

void fr_rng_fill_uniform(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0,
                         uint32_t c1, uint32_t c2)
{
    for (int64_t i = 0; i < n; i += 4) {
        fr_u32x4 b = fr_rng_block(seed, purpose, c0, c1, c2, (uint32_t)(i >> 2));
        for (int j = 0; j < 4 && i + j < n; j++) out[i + j] = fr_u32_to_uniform(b.v[j]);
    }
}

void fr_rng_fill_normal(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0,
                        uint32_t c1, uint32_t c2)
{
    for (int64_t i = 0; i < n; i += 4) {
        fr_u32x4 b = fr_rng_block(seed, purpose, c0, c1, c2, (uint32_t)(i >> 2));
        for (int j = 0; j < 4 && i + j < n; j++)
            out[i + j] = fr_rng_block_normal(b, j);
    }
}
