/* GFlowNet losses in their exact residual form (docs/algorithms/gfn.md §3; torchgfn
 * GFNOrg/torchgfn@f39bfc96 src/gfn/gflownet/), over a batch of trajectories given as
 * per-step log-probabilities, in float64 (core/gfn_loss.c). The trainer evaluates the policy,
 * hands the log-probabilities here and back-propagates the gradients this returns.
 *
 * A trajectory b is s_0 → s_1 → … → s_{n−1} = x → s_f with n = len[b] actions, the last the
 * exit. Arrays are (B, L), row b holding trajectory b in slots t < len[b] (L >= every len):
 *   logpf[b, t]   log P_F(action t | s_t), t < n (t = n−1: the exit)
 *   logpb[b, t]   log P_B(s_t | s_{t+1}), t < n−1 (the exit edge has P_B = 1: slot n−1 unused)
 *   logf[b, t]    log F(s_t), t < n (DB, SubTB; NULL for TB and ZVar)
 * logr (B,) = log R(x_b). Slots past the trajectory are never read. */
#ifndef FLOWRL_GFN_H
#define FLOWRL_GFN_H

#include <stdint.h>

#include "flowrl/status.h"

typedef enum {
    FR_GFN_TB = 0,   /* §3.1: mean_b (logZ + Σ logpf − Σ logpb − logr)² */
    FR_GFN_DB = 1,   /* §3.3: mean over transitions of (logF(s) + logpf − logF(s') − logpb)², logF(s_f) := logr */
    FR_GFN_SUBTB = 2,/* §3.7: geometric_within: Σ_b Σ_{i<j} λ^{j−i−1} r_ij² / (Σ_{m<n} (n−m) λ^m) / B */
    FR_GFN_ZVAR = 3, /* §3.2: mean_b (s_b − mean s)², s_b = Σ logpf − Σ logpb − logr */
    FR_GFN_FM = 4    /* §3.6: edge flows, fr_gfn_fm_loss (fr_gfn_loss refuses it) */
} fr_gfn_loss_kind;

typedef struct {
    int64_t B, L;
    const int32_t *len;  /* (B,) */
    const double *logpf; /* (B, L) */
    const double *logpb; /* (B, L) */
    const double *logf;  /* (B, L) or NULL */
    const double *logr;  /* (B,) */
    double log_z;        /* TB */
    double lambda;       /* SubTB (torchgfn: 0.9) */
} fr_gfn_batch;

/* Gradients of the loss (each may be NULL): (B, L) arrays, slots a trajectory does not use
 * set to 0; g_log_z (TB). */
typedef struct {
    double *logpf, *logpb, *logf;
    double log_z;
} fr_gfn_grad;

/* The loss of kind k on batch b into *loss; resid (may be NULL): TB and ZVar the per-trajectory
 * residual (B,) (ZVar: s_b − mean s), DB the per-transition residual (B, L), SubTB the
 * residual of the whole trajectory (i = 0, j = n) (B,). g (may be NULL): the gradients.
 * FR_ERR_ARG for a length outside [1, L] or a missing logf; FR_ERR_NUMERIC for a non-finite
 * input naming the array and the slot. */
fr_status fr_gfn_loss(fr_gfn_loss_kind k, const fr_gfn_batch *b, double *loss, double *resid, fr_gfn_grad *g);

/* FM (docs/algorithms/gfn.md §3, torchgfn FMGFlowNet): log edge flows instead of log-probs.
 * M states m (every visited state but s0, the terminal one included, duplicates kept:
 * torchgfn's intermediary_states), each with n_in[m] incoming log flows log F(p → s) from its parents and n_out[m]
 * outgoing ones log F(s → ·) over its valid actions, exit included, stored flat in state order
 * (fin, fout); and K terminating states with log F(x → s_f) (fexit (K,)) and log R (logr (K,)):
 *   loss = mean_m (logsumexp fin_m − logsumexp fout_m)² + alpha · mean_k (fexit_k − logr_k)²
 * (the first mean 0 when M = 0). Gradients g_in, g_out (flat, like fin, fout), g_exit (K,) may
 * be NULL. FR_ERR_NUMERIC for a state with no incoming or no outgoing flow (torchgfn's NaN). */
fr_status fr_gfn_fm_loss(int64_t M, const int32_t *n_in, const double *fin, const int32_t *n_out, const double *fout,
                         int64_t K, const double *fexit, const double *logr, double alpha, double *loss, double *g_in,
                         double *g_out, double *g_exit);

/* "tb", "db", "subtb", "zvar", "fm" (NULL for an unknown kind). */
const char *fr_gfn_loss_name(fr_gfn_loss_kind k);

#endif
