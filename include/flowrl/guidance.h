/* Classifier-free guidance around the model, forward and backward, written once for the
 * rollout and every trainer (docs/algorithms/samplers.md §0).
 *
 * Guidance on (b rows in, 2b rows through the network):
 *   [m_c; m_u] = net([x; x], t, [c; null])    rows [0, b) conditional, [b, 2b) the null
 *                                              condition (n_cond in every slot, model.h)
 *   v = m_u + g·(m_c − m_u)                    fr_cfg_combine
 * and its backward for an upstream g_v (b, D), what autograd gives for the two paths:
 *   g_c = g_v·g,  g_u = g_v + (−(g_v·g))       (be->ops->scale, then be->ops->binary SUB: a − b
 *                                               is a + (−b) in IEEE arithmetic)
 * Guidance off: v = net(x, t, c) over b rows and g_out = g_v.
 * "On" is a flag, not g != 1: a trainer may recompute g = 1 through both branches
 * (v = m_u + (m_c − m_u), not m_c bit for bit). fr_guidance_from_scale is the rollout's
 * rule (on iff g != 1). */
#ifndef FLOWRL_GUIDANCE_H
#define FLOWRL_GUIDANCE_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/model.h"
#include "flowrl/status.h"

typedef struct {
    float scale; /* g */
    int on;      /* 1: the 2b-row forward and the combine; 0: conditional rows only */
} fr_guidance;

/* {g, g != 1.0f}: guidance exactly 1 is the conditional forward alone. */
fr_guidance fr_guidance_from_scale(float g);

/* The buffers of guided forwards of up to cap rows (2·cap through the network when on),
 * owned, with the model workspace, in the backend memory of the handle it was allocated on
 * (c_host aside). keep = 1 stores what fr_guided_backward needs. */
typedef struct {
    fr_backend *be; /* the handle whose memory this is (the only one the calls accept) */
    fr_guidance gd;
    int64_t cap, b, D, S; /* b: rows of the last forward */
    fr_model_ws model;
    float *xin;  /* (2·cap, D) [x; x] (fr_guided_backward_x: scratch of dL/d[x; x]) */
    float *tin;  /* (2·cap,) */
    int32_t *c;  /* (2·cap, S) [c; null] */
    float *out;  /* (2·cap, D) [m_c; m_u] */
    float *dout; /* (2·cap, D) [g_c; g_u] */
    void *blk;
    int32_t *c_host; /* host: what c holds, rows [0, c_rows) (uploaded only when it changes) */
    int64_t c_rows;
} fr_guided_ws;

fr_status fr_guided_ws_alloc(fr_guided_ws *w, fr_backend *be, const fr_model *m, int64_t cap, fr_guidance gd,
                             int keep);
void fr_guided_ws_free(fr_guided_ws *w);

/* v (b, D) = the guided model output at x (b, D), time t_in (every row), condition ids
 * c (b, S) (the null rows are filled here). x and v are backend memory, c is host memory
 * (copied in when it changed since the last call). b <= w->cap. v must not alias x. */
fr_status fr_guided_forward(const fr_model *m, fr_backend *be, fr_guided_ws *w, int64_t b,
                            const float *x,   // (b, D) backend
                            float t_in,
                            const int32_t *c, // (b, S) host
                            float *v);        // (b, D) out, backend

/* The unguided forward (w->gd.on == 0; guidance is refused) of n_seg segments of rows in one
 * call: segment k has seg_b[k] rows at time seg_t[k]; x, c, v as fr_guided_forward over their
 * sum. Every row's output equals fr_guided_forward's for that row alone, bit for bit (the
 * network is row-wise), and a following fr_guided_backward continues each weight-gradient chain
 * over the rows in order, as the segments' one-by-one forwards and backwards would
 * (flowrl/traj_objective.h, fr_traj_fused_step). */
fr_status fr_guided_forward_steps(const fr_model *m, fr_backend *be, fr_guided_ws *w, int64_t n_seg,
                                  const int64_t *seg_b, // (n_seg,) host
                                  const float *seg_t,   // (n_seg,) host
                                  const float *x,       // (Σb, D) backend
                                  const int32_t *c,     // (Σb, S) host
                                  float *v);            // (Σb, D) out, backend

/* Adds the parameter gradients of L through the last keep-forward of w, given
 * g_v = dL/dv (b, D) in backend memory (fr_model_backward accumulates). */
fr_status fr_guided_backward(fr_model *m, fr_backend *be, fr_guided_ws *w,
                             const float *g_v); // (b, D) backend
/* The same, and dx (b, D) = dL/dx (backend, overwritten; NULL: none): with guidance on the
 * sum dx_c + dx_u of the two branches (the [x; x] copies). The next forward re-fills xin. */
fr_status fr_guided_backward_x(fr_model *m, fr_backend *be, fr_guided_ws *w,
                               const float *g_v, // (b, D) backend
                               float *dx);       // (b, D) backend or NULL

#endif
