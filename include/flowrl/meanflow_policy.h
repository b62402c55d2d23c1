/* A MeanFlow control policy (core/meanflow_policy.c; docs/algorithms/meanflow.md), MP1's
 * objective (spec more.md §9; Zi-ang-Cao/MP1@9ed1d92 MP1/mp1/policy/meanpolicy_dis.py):
 *
 *   z = (1 − t)·a + t·e, e ~ N(0, I), v = e − a            t = 1 is noise (flowrl's convention)
 *   u_θ(z, t, r | obs) = MLP([obs, z, φ(t), φ(r)])         φ = fr_flow_temb (8 Fourier features)
 *   v̂ = w·v + (1 − w)·sg(u_θ(z, t, t | obs)), w = 2       (MP1: the same conditioning in both terms)
 *   (u, du/dt) = jvp(u_θ, (z, t, r), (v̂, 1, 0))            fr_mlp_jvp, φ's tangent on the host
 *   u_tgt = sg(v̂ − (t − r)·du/dt)
 *   δ²_b = mean_d (u − u_tgt)²,  λ_b = sg((δ²_b + 1e-3)^−½),  L_MF = mean_b λ_b·δ²_b
 *   L_disp = Σ over the hidden outputs but the last of log mean_ij exp(−D_ij / (max D · τ)),
 *            D_ij = ‖h_i − h_j‖², τ = 1 (the diagonal included)
 *   L = L_MF + 0.5·L_disp;  acting: a = z − u_θ(z, 1, 0), z ~ N(0, I) (one network evaluation)
 *
 * t and r enter the first layer through their own columns, so its pre-activation is W_x[obs, z]
 * + W_t φ(t) + W_r φ(r) + b: t and r embedded separately (two learned linear maps of φ) and
 * summed, flowrl's MLP analogue of MP1's two sinusoidal MLPs whose outputs the UNet adds.
 *
 * The dispersive term's max-normalisation is 0/0 when every feature row of the batch is equal
 * (B = 1, or a collapsed layer): MP1 returns NaN there; flowrl takes that layer's term as 0 with
 * zero gradient (its limit for rows that coincide: every exp is 1). */
#ifndef FLOWRL_MEANFLOW_POLICY_H
#define FLOWRL_MEANFLOW_POLICY_H

#include <stdint.h>

#include "flowrl/flow_policy.h"
#include "flowrl/mlp.h"

#define FR_MF_TEMB (2 * FR_FLOW_TEMB) /* φ(t), φ(r) */

typedef struct {
    fr_mlp net;                  /* (O + A + 16) → hidden^n → A, SiLU */
    int64_t O, A, cap;
    double w, flow_ratio, disp_weight, tau; /* 2, 0.5, 0.5, 1 (mp1.yaml and the policy's code) */
    float *in_h, *tan_h, *u_h, *dudt_h, *dout_h, *feat_h; /* host (cap, W), (cap, W), (cap, A) x3, (cap, H) */
    double *vhat, *gfeat;        /* host (cap, A), (cap, H) */
    float *xdot, *ydot;          /* backend (cap, W), (cap, A) */
    float *dh[FR_MLP_MAX_LAYERS]; /* backend (cap, H): the dispersive gradients of the hidden outputs */
} fr_mf_policy;

/* The parts of one loss evaluation (fr_mf_policy_loss). */
typedef struct {
    double loss, mf, disp; /* L = L_MF + disp_weight·L_disp */
    double mse;            /* mean_b δ²_b (MP1's mse_val) */
} fr_mf_loss;

/* A policy for O observations and A actions, an MLP of n_hidden SiLU layers of width hidden, rows
 * up to cap; parameters "policy.<k>.weight / .bias". */
fr_status fr_mf_policy_new(fr_mf_policy *p, fr_backend *be, int64_t O, int64_t A, int64_t hidden, int n_hidden,
                           int64_t cap);
void fr_mf_policy_free(fr_mf_policy *p);

/* The network's input rows in (R, O + A + 16) = [obs, z, φ(t), φ(r)] and, unless tan is NULL, the
 * tangent rows (R, O + A + 16) = [0, zdot, φ'(t), 0] (t's tangent 1, r's 0), φ' in float64. */
void fr_mf_inputs(const fr_mf_policy *p, int64_t R, const float *obs, const float *z, const double *t, const double *r,
                  const float *zdot, float *in, float *tan);

/* u_θ(z, t, r | obs) (R, A) into p->u_h. */
fr_status fr_mf_policy_u(fr_mf_policy *p, int64_t R, const float *obs, const float *z, const double *t, const double *r);
/* u (p->u_h) and du/dt (p->dudt_h) (R, A) along z's tangent zdot (R, A): one fr_mlp_jvp, its
 * activations kept for a backward. */
fr_status fr_mf_policy_jvp(fr_mf_policy *p, int64_t R, const float *obs, const float *z, const double *t,
                           const double *r, const float *zdot);

/* One-step actions (R, A): a = z − u_θ(z, 1, 0 | obs), z = eps (R, A). */
fr_status fr_mf_policy_sample(fr_mf_policy *p, int64_t R, const float *obs, const float *eps, float *action);

/* The times of a batch of B rows: t = max, r = min of two sigmoid(N(−0.4, 1)) draws (floats
 * fr_sigmoidf(−0.4 + n), n = fr_rng_normal(seed, purpose, c0, 0, 0, 2b + j)), then r := t on the
 * first ⌊flow_ratio·B⌋ rows of fr_rng_perm(seed, purpose, c0, 1). */
fr_status fr_mf_times(int64_t B, double flow_ratio, uint32_t seed, uint32_t purpose, uint32_t c0, double *t, double *r);

/* The MeanFlow part from the network's values (all host, R rows of A): u, du/dt, v̂ → u_tgt =
 * v̂ − (t − r)·du/dt, δ² (R,) and λ (R,) (either may be NULL), and unless dout is NULL the
 * gradient dL_MF/du (R, A) = λ_b·2(u − u_tgt)/(R·A). Returns L_MF = mean_b λ_b·δ²_b. */
double fr_mf_objective(int64_t R, int64_t A, const float *u, const float *dudt, const double *vhat, const double *t,
                       const double *r, double *delta2, double *lambda, float *dout);

/* One dispersive term of h (B, F) (float64): log mean_ij exp(−D_ij / (max D·tau)); unless g is
 * NULL, g (B, F) = its gradient (the max's gradient shared evenly among its ties, torch.max's
 * rule). All rows equal (max D = 0, e.g. B = 1): 0 and g = 0 (the NaN case of MP1, guarded). */
double fr_mf_dispersive(int64_t B, int64_t F, const double *h, double tau, double *g);

/* The loss of R rows (obs (R, O) normalised, act, eps (R, A), t, r (R,)) and, with grad, its
 * gradient added to the network's (zero them first). */
fr_status fr_mf_policy_loss(fr_mf_policy *p, int64_t R, const float *obs, const float *act, const float *eps,
                            const double *t, const double *r, int grad, fr_mf_loss *out);

#endif
