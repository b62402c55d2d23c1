/* FPO's clipped surrogate of the CFM-loss ratio (core/fpo.c; spec objectives.md §12;
 * docs/algorithms/fpo.md), as FPO's playground computes it (akanazawa/fpo@418c255
 * playground/src/flow_policy/fpo.py `_compute_fpo_loss`). The algorithm (core/algo/fpo.c) gets
 * the losses from fr_flow_policy_cfm and hands gl back to it as the pairs' weights. */
#ifndef FLOWRL_FPO_H
#define FLOWRL_FPO_H

#include <stdint.h>

#include "flowrl/ctl.h"

/* M actions of S Monte-Carlo pairs each: their CFM losses at rollout l_old (M, S) and under the
 * current policy l_new (M, S), the actions' advantages adv (M,), normalised here per minibatch
 * (fr_ctl_adv_normalize).
 *   average 1 (average_losses_before_exp): ρ̂_i = exp(mean_j ℓ_old,ij − mean_j ℓ_new,ij), M ratios
 *   average 0: ρ̂_ij = exp(clip(ℓ_old,ij − ℓ_new,ij, ±3)), M·S ratios, each with its action's Â
 *   L = mean max(−Â·ρ̂, −Â·clip(ρ̂, 1 ± clip)) (fr_ctl_ppo_clip)
 * ratio (M or M·S) receives ρ̂, gl (M, S) dL/dℓ_new (jnp.clip passes the gradient inside ±3, half
 * of it at a bound, none outside), st the loss, approx-KL, clip fraction and mean ratio. work:
 * 4·M·S + M doubles. Returns the number of ratios. */
int64_t fr_fpo_surrogate(int64_t M, int64_t S, const double *l_old, const double *l_new, const double *adv, double clip,
                         int average, double *work, double *ratio, double *gl, fr_ctl_ppo_stats *st);

#endif
