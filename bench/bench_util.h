/* Small helpers shared by the run-level benchmarks (bench_epoch.c, bench_pretrain.c):
 * wall clock, median, temp-directory removal, the configurations compared. Header-only. */
#ifndef FLOWRL_BENCH_UTIL_H
#define FLOWRL_BENCH_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "flowrl/backend.h"

static inline double bu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bu_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts v); the upper median for even n. 0 for n = 0. */
static inline double bu_median(double *v, int n)
{
    if (n <= 0) return 0.0;
    qsort(v, (size_t)n, sizeof *v, bu_cmp_double);
    return v[n / 2];
}

static inline int bu_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* rm -r path (errors ignored: a benchmark's scratch directory). */
static inline void bu_rmtree(const char *path) { nftw(path, bu_rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* The 1-minute load average, or -1. */
static inline double bu_loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* The compared configurations: ref (1 thread), canonical opt and opt --fast at 1 and 2
 * threads. */
typedef struct {
    const char *name;
    const char *backend;
    int fast, threads;
    fr_backend be;
} bu_conf;

#define BU_N_CONF 5

static inline int bu_confs(bu_conf *c)
{
    static const bu_conf k[BU_N_CONF] = {
        {"ref", "ref", 0, 1, {0}},         {"opt 1t", "opt", 0, 1, {0}},
        {"opt 2t", "opt", 0, 2, {0}},      {"opt --fast 1t", "opt", 1, 1, {0}},
        {"opt --fast 2t", "opt", 1, 2, {0}},
    };
    int n = 0;
    for (int i = 0; i < BU_N_CONF; i++) {
        c[n] = k[i];
        if (fr_backend_open(&c[n].be, c[n].backend, c[n].fast, c[n].threads) == FR_OK) n++;
    }
    return n;
}

/* Opens c's backend again: its thread count is the process's (opt's pool) until the next. */
static inline void bu_use(bu_conf *c) { (void)fr_backend_open(&c->be, c->backend, c->fast, c->threads); }

#endif
