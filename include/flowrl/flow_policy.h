/* A flow-matching policy for control (core/flow_policy.c; docs/control.md §4), FPO's playground
 * convention (akanazawa/fpo@418c255 playground/src/flow_policy/fpo.py, spec objectives.md §12):
 *
 *   x_t = t·ε + (1 − t)·a          t = 1 is noise, t = 0 the action
 *   v   = 0.25 · MLP([obs_norm, x_t, cos(2^k t), sin(2^k t) for k = 0..3])   (A,)
 *   sampling: Euler on t_k = 1 − k/K, k = 0..K (K = 10), x ← x + (t_{k+1} − t_k)·v, from x = ε
 *   CFM loss of a pair (ε, t): mode u  ℓ = mean_d (v − (ε − a))²
 *                              mode u_but_supervise_as_eps  ℓ = mean_d (ε − (x_t + (1 − t)·v))²
 *
 * The MLP (flowrl/mlp.h) runs through the op table; the inputs, the Euler updates and the losses
 * are host float64 scalar work rounded to float where the network reads them. The playground's
 * MLP is 32 x 4 SiLU with LeCun-uniform weights and zero biases; flowrl's default width is its
 * own (docs/control.md §4) and the init torch.nn.Linear's. */
#ifndef FLOWRL_FLOW_POLICY_H
#define FLOWRL_FLOW_POLICY_H

#include <stdint.h>

#include "flowrl/mlp.h"

#define FR_FLOW_TEMB 8 /* Fourier features of t: cos, sin of 2^k t, k = 0..3 */

typedef enum { FR_FLOW_LOSS_U = 0, FR_FLOW_LOSS_U_AS_EPS = 1 } fr_flow_loss_mode;

typedef struct {
    fr_mlp net;            /* (O + A + 8) → hidden^n → A, SiLU */
    int64_t O, A, cap;     /* observation and action widths, rows */
    int steps;             /* Euler steps K */
    double out_scale;      /* 0.25 */
    float *in_h, *out_h;   /* host (cap, O + A + 8), (cap, A) */
    double *x;             /* host (cap, A) the Euler state */
} fr_flow_policy;

/* A policy for O observations and A actions, an MLP of n_hidden layers of width hidden, rows up
 * to cap; parameters "policy.<k>.weight / .bias". */
fr_status fr_flow_policy_new(fr_flow_policy *p, fr_backend *be, int64_t O, int64_t A, int64_t hidden, int n_hidden,
                             int64_t cap);
void fr_flow_policy_free(fr_flow_policy *p);

/* emb (8,) = cos(2^k t), sin(2^k t), k = 0..3, in float64 (fr_ctl_sincos) rounded to float. */
void fr_flow_temb(double t, float *emb);

/* The velocity v (R, A) on the host (p->out_h) of R rows (obs (R, O), x (R, A) as float, t (R,)). */
fr_status fr_flow_policy_velocity(fr_flow_policy *p, int64_t R, const float *obs, const float *x, const double *t);

/* Actions (R, A) by K Euler steps from eps (R, A). */
fr_status fr_flow_policy_sample(fr_flow_policy *p, int64_t R, const float *obs, const float *eps, float *action);

/* The CFM losses ℓ (R,) of R pairs (obs, a, ε, t) under mode; with g (R,) not NULL, the gradient
 * of Σ_r g_r·ℓ_r is added to the network's gradients (zero them first). */
fr_status fr_flow_policy_cfm(fr_flow_policy *p, int64_t R, const float *obs, const float *act, const float *eps,
                             const double *t, fr_flow_loss_mode mode, double *loss, const double *g);
/* The gradient half alone: adds the gradient of Σ g·ℓ of the same R pairs (act, eps, t, mode)
 * whose losses the last forward of p's network computed (fr_flow_policy_cfm with g = NULL, no
 * other forward of p in between): the network's kept activations, no second forward. The bits
 * equal fr_flow_policy_cfm's with g (the forward is a function of its inputs). */
fr_status fr_flow_policy_cfm_grad(fr_flow_policy *p, int64_t R, const float *act, const float *eps, const double *t,
                                  fr_flow_loss_mode mode, const double *g);

#endif
