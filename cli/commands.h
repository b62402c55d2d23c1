/* Subcommands of the flowrl CLI. Each returns the process exit status:
 * 0 success, 1 failure (one clear line on stderr), 2 usage error. */
#ifndef FLOWRL_CLI_COMMANDS_H
#define FLOWRL_CLI_COMMANDS_H

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
