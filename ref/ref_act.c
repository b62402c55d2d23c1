/* Activations forward and backward over the element functions of flowrl/elem.h. */
#include "flowrl/elem.h"
#include "ref/ref_internal.h"

void fr_ref_act_fwd(fr_act act, int64_t n,
                    const float *x, // (n,)
                    float *y)       // (n,), may alias x
{
    for (int64_t i = 0; i < n; i++) y[i] = fr_act_elem(act, x[i]);
}

/* dx = dy * act'(x), or dx + dy * act'(x) when accumulating (one plain add). */
void fr_ref_act_bwd(fr_act act, int64_t n,
                    const float *x,  // (n,) the forward's input
                    const float *dy, // (n,)
                    float *dx,       // (n,)
                    int accumulate)
{
    for (int64_t i = 0; i < n; i++) {
        float d = fr_act_bwd_elem(act, x[i], dy[i]);
        dx[i] = accumulate ? dx[i] + d : d;
    }
}

/* s = the transcendental act_bwd would recompute, y = act(x) from it: fr_act_elem's bits. */
void fr_ref_act_fwd_save(fr_act act, int64_t n,
                         const float *x, // (n,)
                         float *y,       // (n,), may alias x
                         float *s)       // (n,)
{
    for (int64_t i = 0; i < n; i++) {
        const float xi = x[i], si = fr_act_saved_elem(act, xi);
        s[i] = si;
        y[i] = fr_act_from_saved_elem(act, xi, si);
    }
}

/* fr_ref_act_bwd with the forward's saved transcendental s: the same bits. */
void fr_ref_act_bwd_saved(fr_act act, int64_t n,
                          const float *x,  // (n,) the forward's input
                          const float *s,  // (n,) fr_ref_act_fwd_save's s
                          const float *dy, // (n,)
                          float *dx,       // (n,)
                          int accumulate)
{
    for (int64_t i = 0; i < n; i++) {
        float d = fr_act_bwd_saved_elem(act, x[i], s[i], dy[i]);
        dx[i] = accumulate ? dx[i] + d : d;
    }
}

/* y = act(x), ydot = act'(x)·xdot; the tangent is read before y is written (y may alias x). */
void fr_ref_act_jvp(fr_act act, int64_t n,
                    const float *x,    // (n,) the pre-activation
                    const float *xdot, // (n,) its tangent
                    float *y,          // (n,), may alias x
                    float *ydot)       // (n,), may alias xdot
{
    for (int64_t i = 0; i < n; i++) {
        const float xi = x[i];
        ydot[i] = fr_act_jvp_elem(act, xi, xdot[i]);
        y[i] = fr_act_elem(act, xi);
    }
}
