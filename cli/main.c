/* flowrl: the command-line tool. One file per subcommand (cli/cmd_*.c). */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "config.h"
#include "flowrl/dist.h"

static const fr_command k_commands[] = {
    {"info", "version, build flags, backends, CPU features, library versions", cmd_info},
    {"rng", "Philox4x32-10 known-answer output: rng philox --key K0,K1 --counter C0,..,C3",
     cmd_rng},
    {"schedule", "print a sampler sigma grid: schedule --grid diffusers|linear --num-steps N", cmd_schedule},
    {"tensors", "list the tensors of a safetensors file (name, dtype, shape, XXH3-64)",
     cmd_tensors},
    {"sample", "sample a checkpoint into a PNG grid / scatter plot: sample --ckpt C --out grid.png", cmd_sample},
    {"optimize", "optimise the noise or condition for a differentiable reward: optimize --ckpt C --target noise --out o.png",
     cmd_optimize},
    {"eval", "held-out accuracy per prompt kind: eval --ckpt C [--n N] [--json]", cmd_eval},
    {"pretrain", "train a base model: pretrain --task gmm2d|checkerboard|shapes --out FILE [--max-train-steps N]", cmd_pretrain},
    {"gmflow", "GMFlow (Gaussian-mixture flow): gmflow train --task checkerboard --out C | sample --ckpt C --n N --steps S", cmd_gmflow},
    {"train", "RL fine-tuning: train --algo NAME --base CKPT --out RUNDIR [--resume RUNDIR]", cmd_train},
    {"prefs", "preference pairs as files: prefs make --ckpt C --pairs N --out P | prefs show P", cmd_prefs},
    {"classifier", "the shapes classifier reward: classifier train --out FILE | classifier eval FILE", cmd_classifier},
    {"algos", "the RL algorithms `train --algo` knows, with their docs pages", cmd_algos},
    {"envs", "the environments (GFlowNet, control) with their options: envs [--json]", cmd_envs},
    {"expert", "a scripted expert's episodes as demonstrations: expert --env nav2d --out D [--plot P.png] | expert show D",
     cmd_expert},
    {"bc", "behaviour cloning of a flow or DDPM policy from demonstrations: bc --demos FILE --out CKPT", cmd_bc},
    {"piflow", "pi-Flow distillation into a 1-NFE GM policy: piflow train --teacher T --out S | sample | teacher | swd",
     cmd_piflow},
    {"audit", "compare two runs' audit logs: identical through step N, or the first difference",
     cmd_audit},
    {"pack", "pack a run directory into a deterministic .tar.zst: pack RUNDIR -o FILE.tar.zst", cmd_pack},
    {"golden", "golden-file suite: golden gen [--force] | check --backend B [--fast] | list", cmd_golden},
};
#define N_COMMANDS (int)(sizeof k_commands / sizeof k_commands[0])

static void usage(FILE *f)
{
    fprintf(f, "flowrl %s -- deterministic RL fine-tuning of flow-matching and diffusion models\n\n",
            FR_VERSION);
    fprintf(f, "Usage: flowrl COMMAND [options]   (flowrl COMMAND --help for each)\n\nCommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
}

int fr_cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "flowrl %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int fr_cli_parse_u32_list(const char *s, unsigned n, unsigned int *out)
{
    for (unsigned i = 0; i < n; i++) {
        char *end;
        if (*s == '-' || *s == '\0') return 0;
        unsigned long long v = strtoull(s, &end, 0);
        if (end == s || v > 0xFFFFFFFFull) return 0;
        out[i] = (unsigned int)v;
        if (i + 1 < n) {
            if (*end != ',') return 0;
            s = end + 1;
        } else if (*end != '\0') {
            return 0;
        }
    }
    return 1;
}

/* train (and pretrain) under mpirun (flowrl/dist.h): the ranks join; rank 0 alone prints
 * (the others' stdout and stderr go to /dev/null: an error of any rank reaches rank 0 by the
 * agreement and is printed there once, naming the rank). */
static int run_dist(const fr_command *c, int argc, char **argv)
{
    if (fr_dist_init() != FR_OK) return fr_cli_error(c->name, "%s", fr_last_error());
    int rc;
    if (fr_dist_rank() > 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            fflush(stdout);
            fflush(stderr);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            close(null);
        }
    }
    rc = c->run(argc, argv);
    fflush(stdout);
    fr_dist_finalize();
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("flowrl %s\n", FR_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], k_commands[i].name) == 0) {
            if (strcmp(argv[1], "train") != 0 && strcmp(argv[1], "pretrain") != 0)
                return k_commands[i].run(argc - 1, argv + 1);
            return run_dist(&k_commands[i], argc - 1, argv + 1);
        }
    fprintf(stderr, "flowrl: unknown command '%s' (flowrl --help lists them)\n", argv[1]);
    return 2;
}
