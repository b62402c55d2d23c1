/* What the GFlowNet-family rows (core/algo/gfn*.c, afn.c, flgfn.c) share: the loop's defaults,
 * the run-loop callbacks of the rows over the trainer of flowrl/gfn_train.h (gfn.c, gfn_oc.c),
 * and at an evaluation the before / after sample plot and the last evaluation's digest line. */
#ifndef FLOWRL_CORE_ALGO_GFN_COMMON_H
#define FLOWRL_CORE_ALGO_GFN_COMMON_H

#include <stdint.h>

#include "flowrl/algo.h"
#include "flowrl/gfn_train.h"

/* torchgfn's test configuration (gfn.md §4) on the loop's options: seed 1, 250 iterations, lr
 * 1e-3, no weight decay, no clipping; an evaluation and a checkpoint every 25 iterations (an
 * fr_algo.defaults). */
void fr_gfn_loop_defaults(fr_run_opts *ro, void *ao);
/* The same shape for another row: seed 1, no weight decay, no clipping, and these. */
void fr_gfn_loop_defaults_at(fr_run_opts *ro, int64_t epochs, int64_t checkpoint_every, int64_t eval_every, double lr);

/* fr_gfn_opts_default() with the loop's --lr, --weight-decay and --seed and the options every row
 * over the trainer has: the trunk and the exploration. */
fr_gfn_opts fr_gfn_loop_opts(const fr_run *r, int64_t batch, int64_t hidden, int64_t n_hidden, int uniform_pb,
                             double epsilon, double temperature);

/* The AdamW groups of the trainer's list (n tensors, the network's first n_net): the network at
 * the run's --lr and --weight-decay, the rest (log Z) at lr_z without decay. */
void fr_gfn_loop_groups(int n, int n_net, double lr_z, fr_run_group *groups, int *n_groups);

/* One epoch's end: the loss (what names it in the error when it is not finite) recorded as the
 * scalar "loss", the optimiser step, the metric "loss". */
fr_status fr_gfn_loop_step(fr_run *r, double loss, const char *what);

/* The smallest run's loop (tests/test_algos.c): 3 epochs, a checkpoint every epoch, an evaluation
 * every 2; HyperGrid 2-D of height 4. */
void fr_gfn_loop_tiny(fr_run_opts *ro);

/* samples/KEY.png under the run's directory: xy (2n, 2) holds n target points then n sampler
 * points, drawn orange under blue over [−extent, extent]²; a point that is not finite is moved off
 * the plot. */
fr_status fr_gfn_sample_png(const fr_run *r, const char *key, float *xy, int64_t n, float extent);

/* The line "parameters NP, digest HEX" (two runs of one configuration print the same one). */
void fr_gfn_digest_line(const fr_run *r, uint64_t digest, int64_t np);

#endif
