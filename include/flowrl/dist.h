/* Many processes (`mpirun -n R flowrl train ...`): the thin layer over MPI the run loop calls
 * (core/dist.c; docs/determinism.md "Many processes"). Built when ./configure finds Open MPI
 * (FR_HAVE_MPI); without it, and in a process not started by mpirun, there is one rank (rank
 * 0 of 1) and every call below is a no-op that returns its status argument.
 *
 * Every collective takes the caller's status s first and begins with the same agreement
 * (fr_dist_agree): when any rank brings an error, no data moves and every rank returns the
 * first failing rank's error (the lowest rank among those failing at that point), its message
 * suffixed "(rank K of R)". A rank that fails between collectives reaches the agreement of its
 * run's end (fr_dist_agree), which meets the others' next collective: so one error stops
 * every rank with the same one line, and no rank waits for ever. After a failed agreement the
 * calls communicate no more and return that error.
 *
 * Host memory only: a backend's buffers cross with fr_d2h / fr_h2d first (flowrl/backend.h). */
#ifndef FLOWRL_DIST_H
#define FLOWRL_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/status.h"

/* 1 when flowrl was built with MPI. */
int fr_dist_built(void);
/* Joins the ranks when the process was started by mpirun (OMPI_COMM_WORLD_SIZE, PMIX_RANK or
 * PMI_SIZE in the environment; MPI_Init); otherwise, or without MPI, one rank. Call once,
 * before any other fr_dist_ call; fr_dist_finalize at the end. A build without MPI started
 * by mpirun with several ranks: FR_ERR_UNSUPPORTED (every rank would run the whole job). */
fr_status fr_dist_init(void);
void fr_dist_finalize(void);
int fr_dist_rank(void);   /* 0 .. R-1 */
int fr_dist_size(void);   /* R >= 1 */
int fr_dist_joined(void); /* 1: started by mpirun and joined (R may be 1) */

/* Rank k's block [*lo, *hi) of n items cut in whole units of `unit` items (n a multiple of
 * unit): the n / unit units dealt in order, the first (n / unit) mod R ranks one more. */
void fr_dist_block(int64_t n, int64_t unit, int k, int R, int64_t *lo, int64_t *hi);

/* The agreement: FR_OK when every rank brings FR_OK, else the first failing rank's error on
 * every rank (above). */
fr_status fr_dist_agree(fr_status s);

/* buf (outer, n, row_bytes) host memory, the n rows of each of the outer slices dealt by
 * fr_dist_block(n, unit): each rank brings its own rows filled and receives the others', so
 * that buf is whole and equal on every rank. */
fr_status fr_dist_gather_rows(fr_status s, void *buf, int64_t outer, int64_t n, size_t row_bytes, int64_t unit);

/* *v = the sum over ranks of *v. */
fr_status fr_dist_sum_i64(fr_status s, int64_t *v);

/* *flag = the largest *flag of any rank (a stop request seen by one rank stops all). */
fr_status fr_dist_max_int(fr_status s, int *flag);

/* buf (bytes, host memory) of rank root on every rank. */
fr_status fr_dist_bcast(fr_status s, void *buf, size_t bytes, int root);

/* Counts a transfer made outside these calls (NCCL, gpu/cuda_nccl.cu) in the two totals below. */
void fr_dist_count(uint64_t recv_bytes, double seconds);

/* Bytes this rank has received from the others so far (fr_dist_gather_rows; the agreements'
 * and sums' few bytes are not counted). */
uint64_t fr_dist_recv_bytes(void);
/* Seconds this rank has spent in the collectives so far (waiting for the others included). */
double fr_dist_comm_seconds(void);

#endif
