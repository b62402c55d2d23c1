/* The DiT's attention softmax and adaLN loops (flowrl/ops.h, "model" section): plain loops
 * over the row and column functions of flowrl/attn_elem.h. */
#include "flowrl/attn_elem.h"
#include "ref/ref_internal.h"

static void softmax_rows(int64_t R, int64_t N, float alpha,
                         const float *x, // (R,N)
                         float *p)       // (R,N), may alias x
{
    for (int64_t r = 0; r < R; r++) fr_softmax_row(x + r * N, N, alpha, p + r * N);
}

static void softmax_rows_bwd(int64_t R, int64_t N, float alpha,
                             const float *p,  // (R,N)
                             const float *dp, // (R,N)
                             float *dx)       // (R,N), may alias dp
{
    for (int64_t r = 0; r < R; r++) fr_softmax_bwd_row(p + r * N, dp + r * N, N, alpha, dx + r * N);
}

static void adaln_mod(int64_t B, int64_t L, int64_t H, int64_t ldm,
                      const float *x,     // (B,L,H)
                      const float *shift, // (B,·) rows at b·ldm
                      const float *scale, // (B,·) rows at b·ldm
                      float *y)           // (B,L,H), may alias x
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t l = 0; l < L; l++)
            for (int64_t j = 0; j < H; j++) {
                const int64_t i = (b * L + l) * H + j;
                y[i] = fr_adaln_mod_elem(x[i], shift[b * ldm + j], scale[b * ldm + j]);
            }
}

static void adaln_mod_bwd(int64_t B, int64_t L, int64_t H, int64_t ldm,
                          const float *x,     // (B,L,H)
                          const float *scale, // rows at b·ldm
                          const float *dy,    // (B,L,H)
                          float *dx,          // (B,L,H)
                          float *dshift,      // rows at b·ldm
                          float *dscale)      // rows at b·ldm
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < H; j++) {
            const int64_t o = b * L * H + j;
            fr_adaln_mod_bwd_col(L, H, x + o, scale[b * ldm + j], dy + o, dx + o, dshift + b * ldm + j,
                                 dscale + b * ldm + j);
        }
}

static void gate_add(int64_t B, int64_t L, int64_t H, int64_t ldm,
                     const float *h,    // (B,L,H)
                     const float *gate, // rows at b·ldm
                     const float *y,    // (B,L,H)
                     float *out)        // (B,L,H), may alias h
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t l = 0; l < L; l++)
            for (int64_t j = 0; j < H; j++) {
                const int64_t i = (b * L + l) * H + j;
                out[i] = fr_gate_elem(h[i], gate[b * ldm + j], y[i]);
            }
}

static void gate_add_bwd(int64_t B, int64_t L, int64_t H, int64_t ldm,
                         const float *gate, // rows at b·ldm
                         const float *y,    // (B,L,H)
                         const float *dout, // (B,L,H)
                         float *dy,         // (B,L,H), may alias dout
                         float *dgate)      // rows at b·ldm
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < H; j++) {
            const int64_t o = b * L * H + j;
            dgate[b * ldm + j] = fr_gate_bwd_col(L, H, gate[b * ldm + j], y + o, dout + o, dy + o);
        }
}

void fr_ref_fill_attn(fr_ops *ops)
{
    ops->softmax_rows = softmax_rows;
    ops->softmax_rows_bwd = softmax_rows_bwd;
    ops->adaln_mod = adaln_mod;
    ops->adaln_mod_bwd = adaln_mod_bwd;
    ops->gate_add = gate_add;
    ops->gate_add_bwd = gate_add_bwd;
}
