/* A multilayer perceptron through the op table (core/mlp.c): L linear layers
 * y = x W^T + b (gemm + bias_add), an activation after every layer but the last, forward and
 * backward over R rows of backend memory, its parameters as fr_param rows (for the run loop's
 * AdamW, flowrl/optim.h), torch.nn.Linear's default init from Philox, and save / load under a
 * name prefix in a safetensors file. The networks of the control algorithms (docs/control.md:
 * policy means, value functions, flow / diffusion policies) are MLPs.
 *
 * Shapes: dim[0] = the input width, dim[l] the width after layer l, dim[L] the output width;
 * R rows (R <= cap, the rows the activations were sized for). Parameters "PREFIX.<2l>.weight"
 * (dim[l+1], dim[l]) and "PREFIX.<2l>.bias" (dim[l+1],) as torch.nn.Sequential of Linear and
 * activation modules names them (indices 0, 2, 4, ...), in one arena each for values and
 * gradients (fr_arena_slot).
 *
 * Every op is one canonical-order op-table call, so the bits are those of ref on every
 * backend (docs/design.md §2). */
#ifndef FLOWRL_MLP_H
#define FLOWRL_MLP_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/optim.h"
#include "flowrl/safetensors.h"

#define FR_MLP_MAX_LAYERS 8

typedef struct {
    fr_backend *be;
    int L;                               /* linear layers */
    int64_t dim[FR_MLP_MAX_LAYERS + 1];  /* widths, dim[0] input, dim[L] output */
    fr_act act;                          /* after each hidden layer */
    int64_t cap;                         /* rows the activations hold */
    int n_params;                        /* 2 L */
    fr_param params[2 * FR_MLP_MAX_LAYERS];
    fr_tensor vals[2 * FR_MLP_MAX_LAYERS], grads[2 * FR_MLP_MAX_LAYERS];
    char names[2 * FR_MLP_MAX_LAYERS][48];
    float *arena_v, *arena_g;            /* backend (arena_n,) */
    int64_t arena_n;
    /* backend: x (cap, dim[0]) the input, pre[l] (cap, dim[l+1]) before the activation (the
     * output for l = L − 1), post[l] after it; dout (cap, dim[L]) the output's gradient, which
     * the caller fills; d0, d1 (cap, max width) the backward's scratch */
    float *x, *pre[FR_MLP_MAX_LAYERS], *post[FR_MLP_MAX_LAYERS], *dout, *d0, *d1;
} fr_mlp;

/* An MLP of L layers of widths dim (L + 1,) with activation act after each hidden layer, rows up
 * to cap, parameters named PREFIX.<k>.weight / .bias; values zero until fr_mlp_init_params. */
fr_status fr_mlp_new(fr_mlp *m, fr_backend *be, const char *prefix, int L, const int64_t *dim, fr_act act, int64_t cap);
/* The common shape: input width `in`, n_hidden hidden layers of width `hidden`, output `out`
 * (L = n_hidden + 1); FR_ERR_ARG "WHAT: N hidden layers (1..max)" for n_hidden outside
 * [1, FR_MLP_MAX_LAYERS). */
fr_status fr_mlp_new_uniform(fr_mlp *m, fr_backend *be, const char *prefix, const char *what, int64_t in, int64_t hidden,
                             int n_hidden, int64_t out, fr_act act, int64_t cap);
void fr_mlp_free(fr_mlp *m);

/* torch.nn.Linear's default: weight and bias of layer l U(−1/√dim[l], 1/√dim[l]), element i of
 * parameter p from Philox (seed, FR_RNG_INIT, p, stream, 0, i): stream keeps the networks of
 * one run apart (the GFlowNet trainer's is 1). out_scale multiplies the last layer's weight and
 * bias (1: torch's; a small value starts a policy mean near 0). */
fr_status fr_mlp_init_params(fr_mlp *m, uint32_t seed, uint32_t stream, float out_scale);

/* The input buffer (backend, (cap, dim[0])) and the output of the last forward (backend,
 * (cap, dim[L])). */
static inline float *fr_mlp_in(const fr_mlp *m) { return m->x; }
static inline const float *fr_mlp_out(const fr_mlp *m) { return m->pre[m->L - 1]; }

/* The forward of the first R rows of fr_mlp_in (counted in be->work.fwd_rows). */
void fr_mlp_forward(fr_mlp *m, int64_t R);
/* Gradients of the R rows whose output gradient is m->dout, accumulated into the parameters'
 * gradients (zero them first: fr_mlp_zero_grad); dx (backend (R, dim[0]) or NULL) receives the
 * input's gradient. Uses the activations of the last fr_mlp_forward over the same R rows. */
void fr_mlp_backward(fr_mlp *m, int64_t R, float *dx);
/* fr_mlp_backward with gradients of the hidden outputs: dh (L − 1,) host array of backend
 * pointers, dh[l] (R, dim[l+1]) or NULL, added to the gradient of post[l] before its activation's
 * backward (MeanFlow's dispersive term, flowrl/meanflow_policy.h). dh NULL: fr_mlp_backward. */
void fr_mlp_backward_h(fr_mlp *m, int64_t R, float *dx, float *const *dh);
fr_status fr_mlp_zero_grad(fr_mlp *m);

/* Forward mode: the forward of the R rows of fr_mlp_in (the same calls and bits as
 * fr_mlp_forward, activations kept for a backward) and the output's tangent ydot (backend (R,
 * dim[L])) along the input tangent xdot (backend (R, dim[0])): per layer ṗre = ẋ W^T by the gemm
 * entry (the bias has no tangent) and ẏ = act'(pre)·ṗre by act_jvp (docs/algorithms/meanflow.md
 * §2). Uses the backward's scratch d0, d1; xdot, ydot must not be those. */
void fr_mlp_jvp(fr_mlp *m, int64_t R, const float *xdot, float *ydot);

/* Host conveniences: in (R, dim[0]) → out (R, dim[L]); dout (R, dim[L]) → the gradients. */
fr_status fr_mlp_forward_host(fr_mlp *m, int64_t R, const float *in, float *out);
fr_status fr_mlp_backward_host(fr_mlp *m, int64_t R, const float *dout);

/* The parameters under PREFIX names in f (backend values copied out), and back (FR_ERR_FORMAT
 * naming path and tensor for a missing or differently shaped one). */
fr_status fr_mlp_save(fr_mlp *m, fr_st_file *f);
fr_status fr_mlp_load(fr_mlp *m, const fr_st_file *f, const char *path);

/* Elements of all parameters, and the digest of their values (arena order). */
int64_t fr_mlp_numel(const fr_mlp *m);
fr_status fr_mlp_digest(fr_mlp *m, uint64_t *digest);

#endif
