/* The eps x0 head of opt (flowrl/model_elem.h): rows split into contiguous chunks across
 * threads; each element is the element function of ref, so any split gives ref's bits. */
#include "flowrl/model_elem.h"
#include "opt/opt_internal.h"

#include <stdint.h>

/* Rows below this many elements in all are not worth a thread (memory-bound). */
#define HEAD_MIN_CHUNK (1 << 15)

typedef struct {
    int64_t B, D, n;
    const float *tab, *t, *x, *xo; /* forward */
    float *coef, *out;
    const float *cin, *dout;       /* backward: coef of the forward */
    float *dxo, *dx;
} head_ctx;

static void fwd_rows(void *arg, int64_t b0, int64_t b1)
{
    const head_ctx *c = (const head_ctx *)arg;
    for (int64_t b = b0; b < b1; b++) {
        float a, s;
        fr_eps_head_coefs(c->tab, c->n, c->t[b], &a, &s);
        if (c->coef) c->coef[b] = a, c->coef[c->B + b] = s;
        for (int64_t i = b * c->D; i < (b + 1) * c->D; i++) c->out[i] = fr_eps_head_eps(c->x[i], c->xo[i], a, s);
    }
}

static void bwd_rows(void *arg, int64_t b0, int64_t b1)
{
    const head_ctx *c = (const head_ctx *)arg;
    for (int64_t b = b0; b < b1; b++) {
        const float a = c->cin[b], s = c->cin[c->B + b];
        for (int64_t i = b * c->D; i < (b + 1) * c->D; i++) {
            const float g = c->dout[i];
            if (c->dx) c->dx[i] = fr_eps_head_grad_x(g, s);
            c->dxo[i] = fr_eps_head_grad_x0(g, a, s);
        }
    }
}

static int64_t min_rows(int64_t D) { return D >= HEAD_MIN_CHUNK ? 1 : HEAD_MIN_CHUNK / D; }

void fr_opt_eps_head_fwd(int64_t B, int64_t D, int64_t n,
                         const float *tab, // (2,n)
                         const float *t,   // (B,)
                         const float *x,   // (B,D)
                         const float *xo,  // (B,D)
                         float *coef,      // (2,B) or NULL
                         float *out)       // (B,D), may alias x
{
    if (B <= 0 || D <= 0) return;
    head_ctx c = {B, D, n, tab, t, x, xo, coef, out, NULL, NULL, NULL, NULL};
    fr_opt_parallel_range(B, 1, min_rows(D), fwd_rows, &c);
}

void fr_opt_eps_head_bwd(int64_t B, int64_t D,
                         const float *coef, // (2,B)
                         const float *dout, // (B,D)
                         float *dxo,        // (B,D), may alias dout
                         float *dx)         // (B,D) or NULL
{
    if (B <= 0 || D <= 0) return;
    head_ctx c = {B, D, 0, NULL, NULL, NULL, NULL, NULL, NULL, coef, dout, dxo, dx};
    fr_opt_parallel_range(B, 1, min_rows(D), bwd_rows, &c);
}
