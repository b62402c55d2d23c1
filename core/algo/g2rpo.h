/* G²RPO's options and the pieces its tests check (core/algo/g2rpo.c; docs/algorithms/flow-grpo.md
 * §7). */
#ifndef FLOWRL_CORE_ALGO_G2RPO_H
#define FLOWRL_CORE_ALGO_G2RPO_H

#include <stdint.h>

#include "flowrl/algo.h"

#define FR_G2RPO_MAX_STEPS 64 /* entries of --eta-step-list */
#define FR_G2RPO_MAX_GRAN 8   /* entries of --granular-list */

typedef struct {
    char eta_steps[256]; /* "" (0..T/2 − 1) or a list: the SDE steps k, one optimiser step each */
    char granular[64];   /* "1,2": the continuation grids' strides g (1 first) */
} fr_g2rpo_opts;

/* The comma-separated integers of s into out (cap,), *n of them: strictly increasing, each in
 * [lo, hi]. FR_ERR_ARG naming flag (one line) otherwise, or when there are none or more than cap. */
fr_status fr_g2rpo_parse_list(const char *s, const char *flag, int64_t lo, int64_t hi, int64_t *out, int64_t cap,
                              int64_t *n);

/* Granularity g's grid after the SDE step k on the σ grid sigmas (T+1,): σ[:k+2] ++ σ[k+2::g]
 * (Python slicing), its last point set to 0 (G²RPO scores x̂0 = x − σ·v of the last step: the
 * Euler step to σ' = 0 from that step's input; a no-op where the slice ends at σ_T = 0).
 * out (T+1,) receives *len points (k <= T − 2). */
void fr_g2rpo_grid(const float *sigmas, int64_t T, int64_t k, int64_t g, float *out, int64_t *len);

extern const fr_algo fr_algo_g2rpo;

#endif
