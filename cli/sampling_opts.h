/* Options shared by `flowrl sample` and `flowrl eval`: the checkpoint, the backend and
 * the sampler (kind, steps, grid, noise level, guidance), turned into a loaded model and
 * a fr_rollout_cfg. */
#ifndef FLOWRL_CLI_SAMPLING_OPTS_H
#define FLOWRL_CLI_SAMPLING_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/evaluate.h"
#include "flowrl/ops.h"
#include "flowrl/rollout.h"

/* One command-line option: a value option stores argv[i+1] in *value, a flag sets *flag. */
typedef struct {
    const char *name;
    const char **value;
    int *flag;
} fr_cli_opt;

/* Parses argv[1..] against opts (n entries); 0 on success, else prints one line and
 * returns 2. */
int fr_cli_parse_opts(const char *cmd, int argc, char **argv, const fr_cli_opt *opts, int n);

/* Number parsing with range checks; 0 on success, else prints one line and returns 2. */
int fr_cli_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int fr_cli_float(const char *cmd, const char *opt, const char *s, double lo, double hi, float *out);
int fr_cli_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

/* The raw option strings (NULL when absent). */
typedef struct {
    const char *ckpt, *task, *backend, *sampler, *steps, *grid, *shift, *noise, *eta, *dpm_order, *cfg, *batch,
        *ddim_offset, *seed, *threads;
    int no_ema;
    int fast;
} fr_cli_sampling_args;

/* The fr_cli_opt rows of those options (for a command's own table); returns the count
 * written, at most FR_CLI_SAMPLING_NOPTS. */
#define FR_CLI_SAMPLING_NOPTS 17
int fr_cli_sampling_opts(fr_cli_sampling_args *a, fr_cli_opt *opts);

/* The help text of those options. */
extern const char fr_cli_sampling_help[];

typedef struct {
    fr_infer_ckpt ck;
    const fr_ops *ops;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    fr_grid grid;
    double shift;
    int64_t ddim_offset;
    uint32_t seed; /* --seed, or the command's default */
    int threads;   /* threads the backend uses */
} fr_cli_sampling;

/* Loads the checkpoint, picks the backend and builds rc. default_seed is used without
 * --seed. Returns 0, 1 (runtime failure) or 2 (usage error), the message printed. */
int fr_cli_sampling_setup(const char *cmd, const fr_cli_sampling_args *a, uint32_t default_seed,
                          fr_cli_sampling *s);
void fr_cli_sampling_free(fr_cli_sampling *s);

/* "backend opt, threads 2, mode exact" */
void fr_cli_backend_line(const fr_cli_sampling *s, char *buf, size_t n);
/* "ode, 40 steps, grid diffusers shift 3, cfg 1" (the sampler and its parameters) */
void fr_cli_sampler_line(const fr_cli_sampling *s, char *buf, size_t n);
/* Seconds since an arbitrary origin (CLOCK_MONOTONIC). */
double fr_cli_now(void);

#endif
