/* What the GFlowNet rows (core/algo/gfn.c, gfn_box.c, gfn_diffusion.c) share at an evaluation:
 * the before / after sample plot and the last evaluation's digest line. */
#ifndef FLOWRL_CORE_ALGO_GFN_COMMON_H
#define FLOWRL_CORE_ALGO_GFN_COMMON_H

#include <stdint.h>

#include "flowrl/algo.h"

/* samples/KEY.png under the run's directory: xy (2n, 2) holds n target points then n sampler
 * points, drawn orange under blue over [−extent, extent]²; a point that is not finite is moved off
 * the plot. */
fr_status fr_gfn_sample_png(const fr_run *r, const char *key, float *xy, int64_t n, float extent);

/* The line "parameters NP, digest HEX" (two runs of one configuration print the same one). */
void fr_gfn_digest_line(const fr_run *r, uint64_t digest, int64_t np);

#endif
