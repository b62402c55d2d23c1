/* The model's loops of the op table (flowrl/ops.h, "model" section): the time embedding, the
 * condition table's gather and scatter, the x0 head, and the forward process that makes
 * pretraining's inputs. Plain loops over the FR_HOSTDEV element functions of embed.h,
 * model_elem.h and pretrain_elem.h. */
#include "flowrl/embed.h"
#include "flowrl/model_elem.h"
#include "flowrl/pretrain_elem.h"
#include "ref/ref_internal.h"

static void temb_sinusoidal(int64_t B, int64_t E,
                            const float *t, // (B,)
                            float *emb)     // (B,E)
{
    const int64_t half = E / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < E; j++) emb[b * E + j] = fr_temb_elem(t[b], j, half);
}

static void embed_gather_add(int64_t B, int64_t S, int64_t H, int64_t n_rows,
                             const float *table, // (n_rows,H)
                             const int32_t *c,   // (B,S)
                             float *h)           // (B,H)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t j = 0; j < H; j++)
                h[b * H + j] = h[b * H + j] + fr_embed_elem(table, n_rows, H, c[b * S + s], j);
}

static void embed_scatter_add(int64_t B, int64_t S, int64_t H, int64_t n_rows,
                              const int32_t *c, // (B,S)
                              const float *dh,  // (B,H)
                              float *dtable)    // (n_rows,H)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            const int32_t id = c[b * S + s];
            if (id < 0 || id >= n_rows) continue;
            float *row = dtable + (int64_t)id * H;
            for (int64_t j = 0; j < H; j++) row[j] = row[j] + dh[b * H + j];
        }
}

static void x0_head_fwd(int64_t B, int64_t D, float sigma_min,
                        const float *t,  // (B,)
                        const float *x,  // (B,D)
                        const float *xo, // (B,D) x̂0
                        float *den,      // (B,) or NULL
                        float *out)      // (B,D), may alias x
{
    for (int64_t b = 0; b < B; b++) {
        const float d = fr_x0_head_denom(t[b], sigma_min);
        if (den) den[b] = d;
        for (int64_t i = b * D; i < (b + 1) * D; i++) out[i] = fr_x0_head_velocity(x[i], xo[i], d);
    }
}

static void x0_head_bwd(int64_t B, int64_t D,
                        const float *den,  // (B,)
                        const float *dout, // (B,D)
                        float *dxo)        // (B,D), may alias dout
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = b * D; i < (b + 1) * D; i++) dxo[i] = fr_x0_head_grad_x0(dout[i], den[b]);
}

static void eps_head_fwd(int64_t B, int64_t D, int64_t n,
                         const float *tab, // (2,n) √ᾱ, floored √(1−ᾱ)
                         const float *t,   // (B,)
                         const float *x,   // (B,D)
                         const float *xo,  // (B,D) x̂0
                         float *coef,      // (2,B) or NULL
                         float *out)       // (B,D), may alias x
{
    for (int64_t b = 0; b < B; b++) {
        float a, s;
        fr_eps_head_coefs(tab, n, t[b], &a, &s);
        if (coef) coef[b] = a, coef[B + b] = s;
        for (int64_t i = b * D; i < (b + 1) * D; i++) out[i] = fr_eps_head_eps(x[i], xo[i], a, s);
    }
}

static void eps_head_bwd(int64_t B, int64_t D,
                         const float *coef, // (2,B)
                         const float *dout, // (B,D)
                         float *dxo,        // (B,D), may alias dout
                         float *dx)         // (B,D) or NULL
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = b * D; i < (b + 1) * D; i++) {
            const float g = dout[i];
            if (dx) dx[i] = fr_eps_head_grad_x(g, coef[B + b]);
            dxo[i] = fr_eps_head_grad_x0(g, coef[b], coef[B + b]);
        }
}

static void noise_mix(int64_t R, int64_t B, int64_t D,
                      const float *x0,  // (B,D)
                      const float *eps, // (R,D)
                      const float *a,   // (R,)
                      const float *s,   // (R,)
                      float *x)         // (R,D)
{
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x0 + (r % B) * D;
        for (int64_t j = 0; j < D; j++) x[r * D + j] = fr_noise_mix_elem(xr[j], eps[r * D + j], a[r], s[r]);
    }
}

void fr_ref_fill_model(fr_ops *ops)
{
    ops->temb_sinusoidal = temb_sinusoidal;
    ops->embed_gather_add = embed_gather_add;
    ops->embed_scatter_add = embed_scatter_add;
    ops->x0_head_fwd = x0_head_fwd;
    ops->x0_head_bwd = x0_head_bwd;
    ops->eps_head_fwd = eps_head_fwd;
    ops->eps_head_bwd = eps_head_bwd;
    ops->noise_mix = noise_mix;
}
