/* Subcommands of the flowrl CLI. Each returns the process exit status:
 * 0 success, 1 failure (one clear line on stderr), 2 usage error. */
#ifndef FLOWRL_CLI_COMMANDS_H
#define FLOWRL_CLI_COMMANDS_H

#include <stddef.h>

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
int cmd_eval(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_golden(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_algos(int argc, char **argv);

/* --backend NAME [--fast] [--threads N] (cli/backend_opts.c): NULL name = the fastest
 * bitwise backend built in (opt, else ref). Returns 0, or the exit status to return. */
struct fr_ops;
int fr_cli_backend(const char *cmd, const char *name, int fast, long threads,
                   const struct fr_ops **ops, int *n_threads);
/* "backend opt, threads 2, mode exact" (STYLE.md: logged at the top of every run). */
void fr_cli_backend_describe(const struct fr_ops *ops, int n_threads, char *buf, size_t n);

/* Shared by the commands: "flowrl CMD: message" on stderr; returns 1. */
int fr_cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* True if argv holds -h or --help. */
int fr_cli_wants_help(int argc, char **argv);
/* Parses a comma-separated list of n unsigned 32-bit integers (decimal or 0x hex). */
int fr_cli_parse_u32_list(const char *s, unsigned n, unsigned int *out);

#endif
