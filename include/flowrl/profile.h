/* Where an epoch's time goes (issue 15): a timing table over a backend's op table, plus a few
 * host regions (rewards, audit records) that are not op entries.
 *
 * fr_profile_ops(inner) returns a table whose every entry times its call and forwards it to
 * inner's entry: GEMMs are counted by shape (ta, tb, accumulate, M, N, K), activations by kind,
 * every other entry by name. Nothing is timed unless that table is in use, so a run that does
 * not ask for a profile pays nothing: `fr_backend_open` installs it only when FLOWRL_PROFILE is
 * set (FLOWRL_PROFILE=FILE writes the table there at exit, "-" to stderr), and the benchmarks
 * install it on a handle of their own (bench/bench_profile.c). Bits are unchanged: the wrapper
 * computes nothing.
 *
 * Times are self times: a region's time leaves out the op entries and regions called inside
 * it (an audit record's device-to-host copy is a copy, its digest an audit record). Only the
 * thread that installed the table is timed; calls from other threads pass through. */
#ifndef FLOWRL_PROFILE_H
#define FLOWRL_PROFILE_H

#include <stdint.h>
#include <stdio.h>

#include "flowrl/ops.h"

/* Host work outside the op table, timed where it happens. */
typedef enum {
    FR_PROF_REWARDS = 0, /* the task's reward or the reward program (core/run_record.c) */
    FR_PROF_AUDIT,       /* audit records: digests, the audit.log line, the tap */
    FR_PROF_N_REGIONS
} fr_prof_region;

/* The timing table over inner (which must outlive it), and profiling switched on. One inner
 * table at a time: asking for another while one is wrapped returns NULL. */
const fr_ops *fr_profile_ops(const fr_ops *inner);
/* FLOWRL_PROFILE set: fr_profile_ops(inner) with the table written at exit; else inner. */
const fr_ops *fr_profile_from_env(const fr_ops *inner);

/* Region markers (nothing happens unless profiling is on). */
void fr_profile_begin(fr_prof_region r);
void fr_profile_end(fr_prof_region r);

/* on = 1: time with the calling thread's CPU clock instead of the wall clock: on a loaded machine
 * a one-thread profile then says what each piece costs, not how long it waited for a core (with
 * worker threads it leaves their time out). */
void fr_profile_use_cpu_time(int on);

/* Forget what was counted (an epoch's profile: reset after the warm-up epoch). */
void fr_profile_reset(void);

typedef struct {
    const char *group; /* "GEMM", "element-wise", "layer norm", "samplers", "log-probs", ... */
    char what[48];     /* the entry's name, the activation or "fwd NT 144x512x256" */
    int is_gemm, ta, tb, acc;
    int frozen_b; /* a GEMM whose B lay in a frozen range (flowrl/ops.h freeze): opt packs it once */
    int64_t M, N, K;
    uint64_t calls;
    double seconds; /* self time */
} fr_profile_row;

/* The rows counted since the last reset (calls > 0), in the order of first use; at most max,
 * returns how many there are. */
int fr_profile_rows(fr_profile_row *rows, int max);
/* Seconds the calling thread of opt's pool waited for its workers, and the jobs it split, since
 * the last reset (0 for other backends). */
void fr_profile_pool(double *wait_s, uint64_t *jobs);
/* Markdown: the groups (seconds, share of total_s; total_s <= 0: the sum of the rows), then every
 * row, GEMMs with their GFLOP/s. */
void fr_profile_print(FILE *f, double total_s);

#endif
