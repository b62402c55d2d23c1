/* Subcommands of the flowrl CLI. Each returns the process exit status:
 * 0 success, 1 failure (one clear line on stderr), 2 usage error. */
#ifndef FLOWRL_CLI_COMMANDS_H
#define FLOWRL_CLI_COMMANDS_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} fr_command;

int cmd_info(int argc, char **argv);
int cmd_rng(int argc, char **argv);
int cmd_schedule(int argc, char **argv);
int cmd_tensors(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_optimize(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_golden(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_algos(int argc, char **argv);
int cmd_envs(int argc, char **argv);
int cmd_expert(int argc, char **argv);
int cmd_bc(int argc, char **argv);
int cmd_piflow(int argc, char **argv);
int cmd_prefs(int argc, char **argv);
int cmd_classifier(int argc, char **argv);
int cmd_gmflow(int argc, char **argv);

struct fr_backend;
#include "flowrl/opt_groups.h"
#include "flowrl/opts.h"

/* The option engine for a command (cli/cli_opts.c), after fr_opts_defaults and the
 * command's own defaults: -h/--help prints usage() and the options and returns 0; a bad
 * option prints "flowrl CMD: message" and returns 2; otherwise returns -1 (go on). */
int fr_cli_opts(const fr_opts *o, int argc, char **argv, void (*usage)(FILE *f), const char **positional,
                int max_positional, int *n_positional, fr_opts_seen *seen);
/* fr_backend_opts_resolve; 0, or the exit status (2 for a bad name, 1 otherwise). */
int fr_cli_resolve_backend(const char *cmd, const fr_backend_opts *b, struct fr_backend *be);
/* "flowrl CMD: message" for a failed status: returns 2 for FR_ERR_ARG (a usage error),
 * else 1. */
int fr_cli_status(const char *cmd, fr_status s);
/* A usage error: "flowrl CMD: message (flowrl CMD --help)"; returns 2. */
int fr_cli_usage(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Shared by the commands: "flowrl CMD: message" on stderr; returns 1. */
int fr_cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
struct fr_task;
/* An image task (cli/prompt_set.c): prints the fraction of the N samples (sample i of prompt
 * fr_task_prompt_in_turn(t, i): gmm2d's 8 modes, checkerboard's one, shapes' 52) the task's
 * detector finds correct (reward "strict", `flowrl eval`'s accuracy); 0, or the exit status. */
int fr_cli_print_accuracy(const char *cmd, const struct fr_task *t, const float *x, int64_t N);
/* Parses a comma-separated list of n unsigned 32-bit integers (decimal or 0x hex). */
int fr_cli_parse_u32_list(const char *s, unsigned n, unsigned int *out);

#endif
