/* Shared by the sampler and objective tests: step i of a σ grid as the rollout builds it
 * (docs/algorithms/samplers.md §3: σ_1 replaces σ in 1 − σ when σ == 1). */
#ifndef FLOWRL_STEP_TESTUTIL_H
#define FLOWRL_STEP_TESTUTIL_H

#include <string.h>

#include "flowrl/sampler.h"

static inline fr_step fr_test_grid_step(const float *grid, fr_sampler_kind k, int i, float noise)
{
    fr_step p;
    memset(&p, 0, sizeof p);
    p.kind = k;
    p.sigma = grid[i];
    p.sigma_next = grid[i + 1];
    p.sigma1 = grid[1];
    p.noise = noise;
    p.order = 1;
    return p;
}

#endif
