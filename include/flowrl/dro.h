/* Diffusion-DRO's objective (docs/algorithms/dro.md; spec/objectives.md §19; public code
 * basiclab/DiffusionDRO @ b0693ec, train.py "forward diffusion" block): a hinge ranking loss on
 * denoising errors, expert rows against policy rows, each relative to a frozen reference.
 *
 * Over B (expert, policy) row pairs of D values, for m ∈ {θ, ref} (float64 rows, as the
 * other row objectives compute them: the row_msd_f64 entry, flowrl/ops.h):
 *   e_m^exp_i = mean_D (ε_m(x̄_t,i) − ε̄_i)²          expert row i: x̄_t = add_noise(x0, ε̄, t)
 *   e_m^pol_i = mean_D (ε_m(x_t,i) − ε̂_i)²          policy row i: the buffer's (x_t, ε̂)
 *   diff_i    = (e_θ^exp_i − e_ref^exp_i) − (e_θ^pol_i − e_ref^pol_i)
 *   term_i    = max(0, diff_i + margin)               (`torch.maximum(diff + margin, 0)`)
 *   L         = mean_i term_i                         (float64 lanes, flowrl/awm_elem.h)
 * There is no sigmoid. At θ = ref every diff_i is exactly 0 and every term_i is margin
 * bitwise (the two forwards give the same bits), L within 1 ulp of margin.
 *
 * Gradient, per row, gout the upstream factor (1/grad_accum): h_i = 1 where diff_i + margin
 * > 0, ½ where it is exactly 0 (torch.maximum gives each side half at a tie), else 0;
 *   dL/de_θ^exp_i = +c_i,  dL/de_θ^pol_i = −c_i,   c_i = (h_i·gout)/B      (fr_dro_hinge)
 * and through the row errors, with s_i = (float)((h_i·gout)·(2/(B·D))) (one rounding):
 *   dL/dout[i]     = +s_i·(out[i] − target[i])    expert rows (fr_fm_loss with row scales)
 *   dL/dout[B + i] = −s_i·(out[B + i] − target[B + i])
 * The same "error differences in, per-row coefficients out" shape as the pair-DPO losses, on
 * the same plumbing (flowrl/row_err.h). */
#ifndef FLOWRL_DRO_H
#define FLOWRL_DRO_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/status.h"

#define FR_DRO_MARGIN 1e-3 /* train.py --margin */

/* The hinge over B rows from the four row errors (host memory). diff, term, coef (B,) and
 * loss may each be NULL. FR_ERR_ARG for B < 1, a margin or gout that is not finite, a NULL
 * error array. */
fr_status fr_dro_hinge(int64_t B, double margin, double gout,
                       const double *e_exp,     // (B,) e_θ^exp
                       const double *e_exp_ref, // (B,) e_ref^exp
                       const double *e_pol,     // (B,) e_θ^pol
                       const double *e_pol_ref, // (B,) e_ref^pol
                       double *diff,            // (B,) or NULL
                       double *term,            // (B,) or NULL
                       double *coef,            // (B,) c_i, or NULL
                       double *loss);           // or NULL

typedef struct {
    double loss;      /* L */
    double diff_mean; /* mean_i diff_i */
    double active;    /* share of rows with diff_i + margin > 0 */
    double e_exp, e_pol, e_exp_ref, e_pol_ref; /* means over the rows */
} fr_dro_stats;

/* The loss of one micro-batch from the model outputs. Rows 0..B−1 of out, out_ref and target
 * are the expert rows, B..2B−1 the policy rows (the public code's torch.cat([expert, policy])).
 * e (4, B) receives e_θ^exp, e_θ^pol, e_ref^exp, e_ref^pol; diff, term (B,); each may be NULL.
 * grad (2B, D) receives dL/dout unless NULL. out, out_ref, target, grad: backend memory; e,
 * diff, term, st: host. */
fr_status fr_dro_loss(fr_backend *be, double margin, int64_t B, int64_t D,
                      const float *out,     // (2B, D) ε_θ
                      const float *out_ref, // (2B, D) ε_ref
                      const float *target,  // (2B, D) ε̄ (expert rows), ε̂ of the buffer (policy rows)
                      double gout,
                      float *grad,          // (2B, D) or NULL
                      double *e,            // (4, B) or NULL
                      double *diff,         // (B,) or NULL
                      double *term,         // (B,) or NULL
                      fr_dro_stats *st);

/* ---- the replay buffer's draws (docs/algorithms/dro.md §2; misc/buffer.py `sample`) ----- */

/* The (trajectory, step) pairs of one micro-batch from a buffer of n >= 1 trajectories of T
 * steps, as `ReplayBuffer.sample(b)`: b <= n: the first b of a random permutation of 0..n−1
 * (`randperm(N)[:b]`, without replacement), else b uniform draws with replacement
 * (`randint(0, N)`); each row's step uniform in 0..T−1 (`randint(0, T)`). Keys (Philox,
 * key (seed, FR_RNG_DRO_PICK)): the permutation fr_rng_perm(c0 = m, c1 = 0) (keys at
 * (m, 0, 0, j)); with replacement u32 at (m, i, 1, 0); steps u32 at (m, i, 2, 0); an integer
 * below n from a word w is ⌊w·n / 2^32⌋ (fr_rng_below). m: the micro-batch's global index.
 * pos (b,): 0 = the oldest trajectory. */
fr_status fr_dro_pick(uint32_t seed, uint32_t m, int64_t n, int64_t T, int64_t b,
                      int64_t *pos,   // (b,)
                      int64_t *step); // (b,)

#endif
