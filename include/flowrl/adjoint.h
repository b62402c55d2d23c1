/* Gradients of a loss of an ODE's fixed-grid Euler solution (spec more.md §1.1, AdjointDPM),
 * in double precision on the host, for any small ODE dz/dt = f(z, t, θ):
 *
 *   forward   z_{k+1} = z_k + h_k·f(z_k, t_k, θ),  h_k = t_{k+1} − t_k,  k = 0 .. N−1
 *   backprop  the exact gradient of that discrete map (DRaFT's full backprop): a_N = ∂L/∂z_N,
 *             g_θ += h_k·J_θ(z_k)ᵀ a_{k+1},  a_k = a_{k+1} + h_k·J_z(z_k)ᵀ a_{k+1}
 *   adjoint   torchdiffeq's odeint_adjoint with method "euler" (ADJ node_solver_*.py): only z_N
 *             is kept; the augmented system [z, a, g] is integrated backward from t_N with the
 *             derivatives at each backward step's starting point and z re-integrated, not
 *             recalled: z ← z − h_k·f(z, t_{k+1}), a ← a + h_k·J_zᵀa, g ← g + h_k·J_θᵀa, all at
 *             (z, t_{k+1}) before the update. Memory independent of N; O(h) off the discrete
 *             gradient (the §1.1 check: 1.423828125 by backprop, 1.5646538 by the adjoint, for
 *             dz/dt = 0.5 z, N = 4).
 * flowrl's model-based tools (`flowrl optimize`) run the same recursions in float through the
 * model's op entries; this is the reference the tests check them against in form. */
#ifndef FLOWRL_ADJOINT_H
#define FLOWRL_ADJOINT_H

#include <stdint.h>

#include "flowrl/status.h"

typedef struct {
    int n;  /* state dims */
    int np; /* parameter dims */
    /* dz (n) = f(z, t, θ) */
    void (*f)(const double *z, double t, const double *theta, double *dz, void *user);
    /* az (n) = J_z(z, t)ᵀ a and ath (np) = J_θ(z, t)ᵀ a (either may be NULL) */
    void (*vjp)(const double *z, double t, const double *theta, const double *a, double *az, double *ath, void *user);
    void *user;
} fr_ode;

/* z (n) ← z_N from z (n) = z_0 over the grid t (N+1,). */
fr_status fr_ode_euler(const fr_ode *o, int64_t N, const double *t, const double *theta, double *z);

/* Full backprop of L with ∂L/∂z_N = dl_dzN (n): g_theta (np) = dL/dθ, g_z0 (n) = dL/dz_0 (either
 * may be NULL); z_N (n, may be NULL) receives the forward's end. Stores the N+1 states. */
fr_status fr_ode_euler_backprop(const fr_ode *o, int64_t N, const double *t, const double *theta, const double *z0,
                                const double *dl_dzN, double *z_N, double *g_theta, double *g_z0);

/* The continuous adjoint from the end state z_N (n) (the forward's result) and dl_dzN (n):
 * g_theta (np), g_z0 (n) as above (either may be NULL) and z_0 (n, may be NULL) = the
 * re-integrated initial state (≠ the true z_0 by O(h)). Keeps three vectors, whatever N. */
fr_status fr_ode_euler_adjoint(const fr_ode *o, int64_t N, const double *t, const double *theta, const double *z_N,
                               const double *dl_dzN, double *g_theta, double *g_z0, double *z_0);

#endif
