/* Loops over the embedding element functions of flowrl/embed.h. Candidates for op-table
 * entries (temb_sinusoidal, embed_gather_add, embed_scatter_add) once opt/cuda need them. */
#include "flowrl/embed.h"

void fr_temb_sinusoidal(int64_t B, int64_t E,
                        const float *t, // (B,)
                        float *emb)     // (B,E)
{
    int64_t half = E / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < E; j++) emb[b * E + j] = fr_temb_elem(t[b], j, half);
}

fr_status fr_embed_gather_add(int64_t B, int64_t S, int64_t H, int64_t n_rows,
                              const float *table, // (n_rows,H)
                              const int32_t *c,   // (B,S)
                              float *h)           // (B,H)
{
    for (int64_t i = 0; i < B * S; i++)
        if (c[i] < 0 || c[i] >= n_rows)
            return fr_fail(FR_ERR_ARG, "condition id c[%lld][%lld] = %d is outside [0, %lld]",
                           (long long)(i / S), (long long)(i % S), (int)c[i], (long long)(n_rows - 1));
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            const float *row = table + (int64_t)c[b * S + s] * H;
            for (int64_t j = 0; j < H; j++) h[b * H + j] = h[b * H + j] + row[j];
        }
    return FR_OK;
}

void fr_embed_scatter_add(int64_t B, int64_t S, int64_t H,
                          const int32_t *c, // (B,S)
                          const float *dh,  // (B,H)
                          float *dtable)    // (n_rows,H)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            float *row = dtable + (int64_t)c[b * S + s] * H;
            for (int64_t j = 0; j < H; j++) row[j] = row[j] + dh[b * H + j];
        }
}
