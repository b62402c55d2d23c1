/* The pair DPO objective on the forward process, written once for Diffusion-DPO
 * (spec/objectives.md §15, docs/algorithms/dpo.md §1) and Flow-DPO (spec/more.md §7.1,
 * docs/algorithms/dpo.md §2): per-row denoising errors in, the loss and per-row gradient
 * coefficients out. The error and gradient plumbing is flowrl/row_err.h, shared with
 * Diffusion-DRO's hinge (flowrl/dro.h).
 *
 * Rows: n pairs laid out [w rows | l rows]: row i < n is the preferred sample of pair i, row
 * n + i its rejected one (the public code's `chunk(2)`). Per row r, m ∈ {θ, ref}:
 *   e_m[r] = mean_D (out_m[r] − target[r])²        float64 (row_msd_f64: 8-lane order)
 * target = ε (ε-prediction, Diffusion-DPO) or ε − x0 (velocity, Flow-DPO).
 * Per pair i, in float64 (β = beta, exact halves):
 *   MODEL_DIFF (Diffusion-DPO `train.py`): z = (−0.5·β)·((e_θ^w − e_θ^l) − (e_ref^w − e_ref^l))
 *   REF_DIFF   (Flow-DPO `train_sd3_dpo.py`): z = (−0.5·β)·((e_θ^w − e_ref^w) − (e_θ^l − e_ref^l))
 *   term_i = −log σ(z) = fr_pair_dpo_softplus(−z)
 *   L      = mean_i term_i                           (8-lane order, flowrl/awm_elem.h)
 * The two forms are one formula; the public codes round it in the two orders above.
 * Gradient (dz/de_θ^w = −β/2, dz/de_θ^l = +β/2), gout the upstream factor (1/accumulation):
 *   coef[i]     = dL/de_θ^w = ((gout·(0.5·β))·σ(−z_i))/n,  coef[n + i] = −coef[i]
 *   dL/dout[r]  = (float)(coef[r]·(2/D)) · (out_θ[r] − target[r])   (fm_loss with row scales)
 * At θ = ref every z is −0, every term is softplus(0) bit for bit, L = log 2 within 1 ulp and
 * ∇L = (β/4)/n·Σ_i (∇e_θ^w − ∇e_θ^l) (spec/more.md §7.1 check).
 *
 * Memory (flowrl/backend.h): out, out_ref, target and grad are backend memory; errors, z,
 * terms and coefficients are host memory (per-row scalars). */
#ifndef FLOWRL_PAIR_DPO_H
#define FLOWRL_PAIR_DPO_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/status.h"

typedef enum {
    FR_PAIR_DPO_MODEL_DIFF = 0, /* Diffusion-DPO's order */
    FR_PAIR_DPO_REF_DIFF = 1,   /* Flow-DPO's order */
} fr_pair_dpo_form;

/* softplus x = log(1 + e^x) in float64 from flowrl's own exp and log (flowrl/awm_elem.h):
 * x > 0: x + log1p(e^−x), else log1p(e^x), log1p(u) = u when 1 + u rounds to 1, else
 * log(1 + u)·(u / ((1 + u) − 1)) (Goldberg's correction). softplus(±0) = log1p(1). */
double fr_pair_dpo_softplus(double x);
/* σ(x) = 1 / (1 + e^−x) in float64 (σ(0) = 0.5 exactly). */
double fr_pair_dpo_sigmoid(double x);

typedef struct {
    double loss;               /* mean_i term_i */
    double z_mean;             /* mean_i z_i (the public `inside_term`) */
    double acc;                /* implicit accuracy: the share of pairs with z > 0 */
    double e_w, e_l;           /* mean errors of the policy on the preferred / rejected rows */
    double e_ref_w, e_ref_l;   /* the same of the reference */
} fr_pair_dpo_stats;

/* The loss of n pairs from their errors e, e_ref (2n,) [w | l] (above). z, term (n,) and coef
 * (2n,) may each be NULL; stats may be NULL. FR_ERR_ARG for n < 1, a negative or non-finite β,
 * an unknown form or a non-finite gout. */
fr_status fr_pair_dpo_loss(int64_t n, double beta, fr_pair_dpo_form form,
                           const double *e,     // (2n,) policy errors
                           const double *e_ref, // (2n,) reference errors
                           double gout,
                           double *z,           // (n,) or NULL
                           double *term,        // (n,) or NULL
                           double *coef,        // (2n,) or NULL: dL/de_θ per row
                           fr_pair_dpo_stats *st);

/* From model outputs: e and e_ref by the row_msd_f64 entry, fr_pair_dpo_loss, then (grad
 * not NULL) grad = dL/dout through fr_fm_loss with the row scales above. e, e_ref (2n,), z
 * (n,) receive their values (each may be NULL). */
fr_status fr_pair_dpo_rows(fr_backend *be, int64_t n, int64_t D, double beta, fr_pair_dpo_form form,
                           const float *out,     // (2n, D) policy output
                           const float *out_ref, // (2n, D) reference output
                           const float *target,  // (2n, D) ε or ε − x0
                           double gout,
                           float *grad,          // (2n, D) or NULL
                           double *e,            // (2n,) or NULL
                           double *e_ref,        // (2n,) or NULL
                           double *z,            // (n,) or NULL
                           fr_pair_dpo_stats *st);

/* Flow-DPO's data (`PerPromptStatTracker.update(type='dpo')`, FDPO flow_grpo/stat_tracking.py):
 * of N samples with prompt ids pid (N,) and rewards (N,), per distinct prompt id in increasing
 * order (`np.unique`), the first index of the maximum reward wins (`torch.argmax`) and the first
 * index of the minimum loses (`torch.argmin`); when they coincide (every reward of the prompt
 * equal) the prompt's second sample wins and its first loses (`min_idx = 0; max_idx = 1`).
 * A prompt with one sample gives no pair. w, l (up to N/2 each) receive the sample indices,
 * label (N,) may receive the tracker's labels (+1 winner, −1 loser, 0 dropped); *n_pairs the
 * count. Rewards are compared in float64 as the tracker's numpy array. */
fr_status fr_pair_dpo_label(int64_t N, const int *pid, const float *reward, int64_t *w, int64_t *l, float *label,
                            int64_t *n_pairs);

/* BalancedDPO's label (spec/more.md §5, docs/algorithms/balanced-dpo.md §1; the vote rule is a
 * [flowrl choice], the paper's is [unverified]): for K scorers with scores score[k·N + i] of
 * samples i < N, the hard majority vote of samples a and b,
 *   y = sign(Σ_k sign(score_k(a) − score_k(b)))   (scores compared in float64)
 * +1: a is preferred, −1: b, 0: a tie (the pair is dropped). */
int fr_pair_dpo_vote(int K, int64_t N, const float *score, int64_t a, int64_t b);

/* BalancedDPO's pairs of N samples in groups of G (G even; rows g·G .. g·G + G − 1 one prompt):
 * samples (g·G + 2j, g·G + 2j + 1), j < G/2, labelled by fr_pair_dpo_vote; ties dropped. w, l (up
 * to N/2) receive the preferred / rejected indices, label (N,) may receive +1 / −1 / 0, agree (K,)
 * may receive per scorer the share of kept pairs whose own sign agrees with the vote (NaN when no
 * pair is kept); *n_pairs the count. FR_ERR_ARG for K < 1, G < 2 or odd, N not a multiple of G. */
fr_status fr_pair_dpo_vote_pairs(int K, int64_t N, int64_t G, const float *score, int64_t *w, int64_t *l, float *label,
                                 double *agree, int64_t *n_pairs);

#endif
