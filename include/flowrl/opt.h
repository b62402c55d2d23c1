/* The `opt` backend (docs/design.md §1, §3): SIMD + threaded CPU kernels bitwise equal to `ref`
 * for any thread count. Work is split across threads by outputs only (rows / column blocks
 * of C, rows of a batch, chunks of an elementwise op), never along a reduction axis, so
 * the thread count changes speed, never bits (docs/determinism.md "Canonical orders").
 *
 * Threads come from one persistent pool, created on first use and joined at exit.
 * The pool serves one calling thread at a time: a second thread that calls an opt op
 * while another thread's op is running (or an op called from inside a pool task) simply
 * runs it on its own thread, single-threaded, with the same bits. */
#ifndef FLOWRL_OPT_H
#define FLOWRL_OPT_H

#include "flowrl/ops.h"
#include "flowrl/status.h"

/* Sets the number of threads opt ops may use (the caller's thread included). n <= 0
 * restores the default, the number of online CPUs. Values above FR_OPT_MAX_THREADS are
 * clamped. Takes effect at the next op; call it between ops, not during one. */
#define FR_OPT_MAX_THREADS 256
void fr_opt_set_threads(int n);
int fr_opt_get_threads(void);
/* How many job parts worker threads (not the caller) have run in this process: a test that
 * promises "opt at 3 threads = ref" checks that the workers really ran. */
unsigned long fr_opt_worker_parts(void);
/* How many distinct worker threads (ids 1..) have run a part in this process. */
int fr_opt_workers_used(void);
/* on = 1: every op splits its outputs into as many parts as the thread count allows, however
 * small (one alignment unit per part), and each worker runs its own part of every job (by
 * default the caller runs the parts no worker has started yet), so a test on small shapes
 * (the golden suite) runs the workers; bits are unchanged (splits are by outputs). 0 (the
 * default) restores the work-per-thread minimums. */
void fr_opt_set_split_all(int on);
/* on = 1: each worker runs its own part of every job (nobody claims another's), with the
 * work-per-thread minimums unchanged: a test that asserts fr_opt_worker_parts() grew at 2 or
 * more threads on an ordinary workload sets it, since by default a caller that finishes first
 * may run every part itself on a busy machine. Bits are unchanged. fr_opt_set_split_all(1)
 * implies it. */
void fr_opt_set_fixed_parts(int on);
/* on = 1: the calling thread times its waits for the pool's workers (after running its own part
 * of a job and the parts no worker had started); fr_opt_pool_stats gives the seconds and jobs counted so far in this process
 * (flowrl/profile.h reads them). Off by default: a job then reads no clock. */
void fr_opt_pool_timing(int on);
void fr_opt_pool_stats(double *wait_s, uint64_t *jobs);

/* Overrides the ops table entries that opt implements (core/backend.c calls it on a table
 * holding the ref entries). Never fails on x86 without AVX2: the portable fallbacks run
 * the same canonical orders in plain C. */
fr_status fr_opt_init(fr_ops *ops);

/* 1 if the SIMD kernels are in use on this CPU: AVX2+FMA on x86, NEON on aarch64
 * (FLOWRL_OPT_NO_SIMD=1 in the environment forces the portable path, for testing). */
int fr_opt_simd_active(void);
/* The kernels opt takes on this CPU under the current environment: "avx2+fma", "neon" or
 * "portable" (what `flowrl info` and the audit log's opt.path record). */
const char *fr_opt_simd_name(void);

#endif
