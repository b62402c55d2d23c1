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
 *   logrs[b, t]   log R(s_t) of every visited state, t < n (forward-looking, MDB; every state of
 *                 HyperGrid can exit, so every state has a reward)
 *   logpf_exit[b, t]  log P_F(s_f | s_t), t < n (MDB)
 *   logprior[b, t]    log P_F^prior(action t | s_t), t < n (RTB: the frozen prior policy)
 * logr (B,) = log R(x_b). Slots past the trajectory are never read.
 *
 * Each residual r enters through the regression g (§3.9): g(r) = r² (default), e^r + e^−r − 2
 * (ShiftedCosh) or (e^{αr} − αr − 1)/α² (Linex(α)); torchgfn clamps the exponents' arguments to
 * [−80, 80] (no gradient beyond). RTB's square is ½r² (torchgfn's HalfSquaredLoss). */
#ifndef FLOWRL_GFN_H
#define FLOWRL_GFN_H

#include <stdint.h>

#include "flowrl/status.h"

typedef enum {
    FR_GFN_TB = 0,   /* §3.1: mean_b (logZ + Σ logpf − Σ logpb − logr)² */
    FR_GFN_DB = 1,   /* §3.3: mean over transitions of (logF(s) + logpf − logF(s') − logpb)², logF(s_f) := logr */
    FR_GFN_SUBTB = 2,/* §3.7: geometric_within: Σ_b Σ_{i<j} λ^{j−i−1} r_ij² / (Σ_{m<n} (n−m) λ^m) / B */
    FR_GFN_ZVAR = 3, /* §3.2: mean_b (s_b − mean s)², s_b = Σ logpf − Σ logpb − logr */
    FR_GFN_FM = 4,   /* §3.6: edge flows, fr_gfn_fm_loss (fr_gfn_loss refuses it) */
    FR_GFN_MDB = 5,  /* §3.5: mean over non-exit transitions of g(logR(s) + logpf + logpf_exit(s') − logR(s') − logpb − logpf_exit(s)) */
    FR_GFN_RTB = 6,  /* §3.8: mean_b ½(logZ + Σ logpf − Σ logprior − β logr)² (no P_B) */
    FR_GFN_OP = 7    /* §9 (spec §9): OP-GFN's ordering loss, mean_b CE(softmax(R̂_b, R̂_perm[b]), (y_b, 1 − y_b)),
                        R̂ = Σ logpf − Σ logpb (log Z cancels), y from util only (fr_gfn_op_label) */
} fr_gfn_loss_kind;

/* SubTB's weightings of the sub-trajectory residuals (§3.7, torchgfn SubTBGFlowNet.weighting). */
typedef enum {
    FR_SUBTB_GEOMETRIC_WITHIN = 0, /* λ^{j−i−1} / Σ_{m<n} (n−m) λ^m per trajectory, / B (the default) */
    FR_SUBTB_EQUAL_WITHIN = 1,     /* 2 / (n(n+1)) per trajectory, / B */
    FR_SUBTB_EQUAL = 2,            /* 1 / (number of sub-trajectories in the batch) */
    FR_SUBTB_GEOMETRIC = 3,        /* Σ_k λ^{k−1}(1−λ)/(1−λ^{maxlen}) · mean of the length-k residuals */
    FR_SUBTB_DB = 4,               /* the DB loss over the length-1 residuals */
    FR_SUBTB_MODIFIED_DB = 5,      /* length-1 residuals weighted 1/n per trajectory, / B */
    FR_SUBTB_TB = 6                /* the TB loss with log Z = log F(s0) */
} fr_gfn_subtb_weighting;

/* The regression g of a residual (§3.9, torchgfn gflownet/losses.py). */
typedef enum { FR_GFN_SQUARE = 0, FR_GFN_COSH = 1, FR_GFN_LINEX = 2 } fr_gfn_regression;

typedef struct {
    int64_t B, L;
    const int32_t *len;  /* (B,) */
    const double *logpf; /* (B, L) */
    const double *logpb; /* (B, L) */
    const double *logf;  /* (B, L) or NULL */
    const double *logr;  /* (B,) */
    double log_z;        /* TB, RTB */
    double lambda;       /* SubTB (torchgfn: 0.9) */
    const double *logrs;      /* (B, L): forward-looking and MDB, else NULL */
    const double *logpf_exit; /* (B, L): MDB, else NULL */
    const double *logprior;   /* (B, L): RTB, else NULL */
    int forward_looking;      /* DB, SubTB (§3.4): log F(s_t) := logf[b, t] + logrs[b, t]; the exit's target stays log R(x) */
    fr_gfn_subtb_weighting weighting; /* SubTB */
    fr_gfn_regression regression;
    double linex_alpha;       /* Linex's α (≠ 0) */
    double beta;              /* RTB: the reward's exponent */
    const int64_t *perm;      /* (B,): OP, trajectory b is compared with perm[b] (a permutation of the batch) */
    const double *util;       /* (B,): OP, the order-only utility u(x_b); it enters through comparisons only */
} fr_gfn_batch;

/* Gradients of the loss (each may be NULL): (B, L) arrays, slots a trajectory does not use
 * set to 0; g_log_z (TB). */
typedef struct {
    double *logpf, *logpb, *logf;
    double log_z;
    double *logpf_exit; /* MDB */
} fr_gfn_grad;

/* The loss of kind k on batch b into *loss; resid (may be NULL): TB and ZVar the per-trajectory
 * residual (B,) (ZVar: s_b − mean s), DB the per-transition residual (B, L), SubTB the
 * residual of the whole trajectory (i = 0, j = n) (B,), MDB the per-transition residual (B, L)
 * (the exit slot 0), RTB the per-trajectory residual (B,). g (may be NULL): the gradients.
 * FR_ERR_ARG for a length outside [1, L] or a missing logf; FR_ERR_NUMERIC for a non-finite
 * input naming the array and the slot. */
fr_status fr_gfn_loss(fr_gfn_loss_kind k, const fr_gfn_batch *b, double *loss, double *resid, fr_gfn_grad *g);

/* SubTB's weights of batch b's sub-trajectories into w (B, L + 1, L + 1): w[b, i, j] of the
 * sub-trajectory s_i → s_j (0 ≤ i < j ≤ len[b]; 0 elsewhere), under b->weighting (DB: 1 / the
 * number of transitions on every length-1 one; TB: 1/B on (0, len); geometric: λ^{j−i−1}·(1−λ)
 * /(1−λ^{maxlen}) / the number of length-(j−i) sub-trajectories). They sum to 1 over the batch
 * (the *_within ones to 1/B per trajectory): the loss is Σ w·g(r) (spec §13.3). */
fr_status fr_gfn_subtb_weights(const fr_gfn_batch *b, double *w);

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

/* OP-GFN's soft label of the pair (x, x') (yhangchen/OP-GFN ordering_loss, spec gflownets.md §9):
 * y = ½(1[u > u'] + 1[u > u' − 1e-6]): 1 if u(x) is the larger, 0 if the smaller, ½ on a tie. */
double fr_gfn_op_label(double u, double u2);

/* OP-GFN's KL(P_B ‖ uniform) term of one state (yhangchen/OP-GFN KLTrajectoryBalance.get_backward_entropy,
 * spec gflownets.md §9; docs/algorithms/gfn.md §9): lsm (n,) the masked log-softmax of the state's P_B
 * logits (−inf where mask is 0), u = 1/#valid on the valid actions; q = softmax clamped to
 * [FR_GFN_KL_EPS, 1 − FR_GFN_KL_EPS] (torch.finfo(float32).eps, as the public code clamps its float32
 * probabilities), KL = Σ_valid u (log u − log q) (torch KLDivLoss's summand). g (n,) (may be NULL): its
 * gradient in the n logits, Σ_a u_a·(q_j − δ_aj) over the valid a whose q_a was not clamped (a clamped
 * q carries no gradient), 0 on the masked ones. The caller averages over states ("batchmean"). */
#define FR_GFN_KL_EPS 1.1920928955078125e-07
double fr_gfn_kl_uniform(const double *lsm, const uint8_t *mask, int n, double *g);

/* "tb", "db", "subtb", "zvar", "fm", "mdb", "rtb", "op" (NULL for an unknown kind). */
const char *fr_gfn_loss_name(fr_gfn_loss_kind k);
/* "geometric_within", "equal_within", "equal", "geometric", "DB", "ModifiedDB", "TB" (torchgfn's
 * spelling; NULL for an unknown one), and back (-1 for an unknown name). */
const char *fr_gfn_weighting_name(fr_gfn_subtb_weighting w);
int fr_gfn_weighting_find(const char *name);
/* "square", "cosh", "linex" (NULL for an unknown one), and back (-1). */
const char *fr_gfn_regression_name(fr_gfn_regression g);
int fr_gfn_regression_find(const char *name);

#endif
