/* Reward gradients through the sampler: DRaFT / DRaFT-K, AlignProp, ReFL (core/algo/draft.c,
 * docs/algorithms/draft.md). Internal to the algorithm's files. */
#ifndef FLOWRL_CORE_ALGO_DRAFT_H
#define FLOWRL_CORE_ALGO_DRAFT_H

#include <stdint.h>

#include "flowrl/algo.h"

typedef enum { FR_RG_DRAFT = 0, FR_RG_ALIGNPROP, FR_RG_REFL } fr_rg_variant;

/* AlignProp's backprop_strategy (AP config/alignprop_config.py). */
typedef enum { FR_DRAFT_CUT_GAUSSIAN = 0, FR_DRAFT_CUT_UNIFORM, FR_DRAFT_CUT_FIXED } fr_draft_cut_kind;
extern const char *const fr_draft_cut_names[];

typedef struct {
    int64_t truncate;     /* draft: K, the gradient-carrying last steps; 0 = all (full backprop) */
    int strategy;         /* alignprop: fr_draft_cut_kind */
    double cut_mean;      /* alignprop gaussian: mean and std of the cut as fractions of T */
    double cut_std;
    double last_fraction; /* refl: m is drawn from the last round(fraction·T) steps */
    int loss;             /* fr_rg_loss */
    double target;        /* relu / l1 */
    double loss_scale;    /* L = loss_scale · mean ℓ */
} fr_draft_opts;

fr_status fr_draft_setup_variant(fr_run *r, void **out, fr_rg_variant variant);
fr_status fr_draft_epoch(fr_run *r, void *state);
void fr_draft_header(fr_run *r, void *state);
void fr_draft_free(void *state);
/* The epoch's cut: draft c = T − K (0 for K = 0 or K >= T); alignprop c in [1, T − 1] drawn by
 * the strategy from Philox (seed, FR_RNG_RGRAD_CUT, e, 0, 0, k), k = 0, 1, ... until one lands;
 * refl m = T − n + (u32 (seed, FR_RNG_RGRAD_CUT, e, 0, 0, 0) mod n), n = max(1, round(f·T)). */
fr_status fr_draft_cut(fr_rg_variant variant, const fr_draft_opts *o, int64_t T, uint32_t seed, uint32_t e,
                       int64_t *cut);

#endif
