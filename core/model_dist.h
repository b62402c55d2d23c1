/* A model's update split over the ranks (flowrl/dist.h; docs/determinism.md "Many
 * processes"): after a backward with m->dw_parts > 1 each rank holds its rows of every
 * linear weight's gradient (fr_model_dw_split), after fr_adamw_step_part its share of every
 * tensor's values and moments; these gather them whole on every rank, through the host,
 * bytes only. With one rank they return s. */
#ifndef FLOWRL_CORE_MODEL_DIST_H
#define FLOWRL_CORE_MODEL_DIST_H

#include "flowrl/model.h"
#include "flowrl/optim.h"

fr_status fr_model_dist_whole_grads(fr_status s, fr_model *m);
fr_status fr_model_dist_whole_params(fr_status s, fr_model *m, fr_adamw_state *adam);
/* The update's activations and output gradients split by sample (core/model.c, a
 * workspace's split forward and its backward): buf (outer, rows, row_floats) in backend memory,
 * rank k bringing rows fr_dist_block(rows, 1, k, R) of each slice, whole on every rank. */
fr_status fr_model_dist_rows(fr_backend *be, fr_status s, float *buf, int64_t outer, int64_t rows, int64_t row_floats);
/* Bytes this rank received in the three gathers above so far (part of fr_dist_recv_bytes). */
uint64_t fr_model_dist_recv_bytes(void);

/* Under mpirun with FLOWRL_NCCL=1: the gathers above go from GPU to GPU through NCCL (flowrl/
 * cuda.h), every rank joining one communicator; be must be the cuda backend. Without
 * FLOWRL_NCCL=1, or with one rank: s. An agreement (flowrl/dist.h): every rank calls it. */
fr_status fr_model_dist_transport(fr_status s, const fr_backend *be);
/* Leaves the NCCL communicator, if any. */
void fr_model_dist_transport_end(void);

#endif
