/* flowrl train --algo NAME: online RL fine-tuning of a base checkpoint on the run loop
 * (flowrl/run.h) with an algorithm of the registry (flowrl/algo.h). Run information goes to
 * stdout, one progress line per epoch (or per --log-every epochs) to stderr. SIGINT / SIGTERM
 * stop at the next epoch boundary with a checkpoint (exit status 130 / 143); a second signal
 * exits at once (the last checkpoint stays valid: checkpoints are written to a temporary file
 * and renamed). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "flowrl/algo.h"
#include "flowrl/buildinfo.h"
#include "flowrl/env.h"
#include "flowrl/progress.h"

#define CMD "train"

/* Options of the command itself, never saved in a run. */
typedef struct {
    char resume[FR_OPT_PATH_MAX];
    int64_t from_step;
    char config[FR_OPT_PATH_MAX];
} cli_args;

static const fr_opt k_cli_rows[] = {
    FR_OPT_STR(cli_args, resume, "resume", "", "continue RUNDIR from its newest checkpoint", FR_OPT_NOT_SAVED | FR_OPT_PATH),
    FR_OPT_I64(cli_args, from_step, "from_step", "0", 0, 1e12,
               "with --resume: continue from checkpoint step-N instead (later ones are removed)", FR_OPT_NOT_SAVED),
    FR_OPT_STR(cli_args, config, "config", "",
               "take options from a config.json (a run's, or written by hand); flags override it",
               FR_OPT_NOT_SAVED | FR_OPT_PATH),
};

/* ---- signals ----------------------------------------------------------------------------- */

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig)
{
    if (g_stop) _exit(128 + sig);
    g_stop = sig;
    static const char msg[] = "\nflowrl train: stopping after this epoch with a checkpoint (again to quit now)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

/* ---- callbacks --------------------------------------------------------------------------- */

typedef struct {
    double t0;
    int64_t first, log_every;
    const fr_algo *algo;
} cli_state;

static void on_info(const char *line, void *user)
{
    (void)user;
    printf("%s\n", line);
    fflush(stdout);
}

static int on_epoch(const fr_run_epoch_event *ev, void *user)
{
    cli_state *cs = user;
    if (cs->first < 0) {
        /* the first epoch of this process (a resumed run starts later) */
        cs->first = ev->epoch - 1;
        cs->t0 = fr_now_seconds() - ev->seconds;
    }
    if (cs->log_every > 1 && ev->epoch % cs->log_every != 0 && ev->epoch != ev->epochs) return 0;
    double el = fr_now_seconds() - cs->t0;
    int64_t done = ev->epoch - cs->first;
    double eta = done > 0 ? el / (double)done * (double)(ev->epochs - ev->epoch) : 0.0;
    char es[32], ts[32], line[512], acc[16];
    fr_format_duration(eta, es, sizeof es);
    fr_format_duration(ev->seconds, ts, sizeof ts);
    double a = fr_run_event_get(ev, "accuracy");
    if (isfinite(a))
        snprintf(acc, sizeof acc, "%5.1f%%", 100.0 * a);
    else
        snprintf(acc, sizeof acc, "  -  ");
    int o = cs->algo->on_env /* no reward or accuracy: the algorithm's keys */
                ? snprintf(line, sizeof line, "epoch %lld/%lld", (long long)ev->epoch, (long long)ev->epochs)
                : snprintf(line, sizeof line, "epoch %lld/%lld  reward %.4f (std %.3f)  acc %s", (long long)ev->epoch,
                           (long long)ev->epochs, fr_run_event_get(ev, "reward_mean"), fr_run_event_get(ev, "reward_std"), acc);
    for (const char *const *k = cs->algo->progress_keys; k && *k && o > 0 && (size_t)o < sizeof line; k++)
        o += snprintf(line + o, sizeof line - (size_t)o, "  %s %.4g", *k, fr_run_event_get(ev, *k));
    fprintf(stderr, "%s  %s  ETA %s\n", line, ts, es);
    return 0;
}

/* The library's message without its "train: " prefix (the CLI prints "flowrl train: "). */
static const char *msg(void)
{
    const char *m = fr_last_error();
    return strncmp(m, "train: ", 7) == 0 ? m + 7 : m;
}

/* ---- argv -------------------------------------------------------------------------------- */

/* The value of --NAME VALUE / --NAME=VALUE in argv (the last one), or NULL. */
static const char *peek(int argc, char **argv, const char *name)
{
    const char *v = NULL;
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], name, n) != 0) continue;
        if (argv[i][n] == '=') v = argv[i] + n + 1;
        else if (argv[i][n] == '\0' && i + 1 < argc) v = argv[i + 1];
    }
    return v;
}

/* cff6d07's spellings that are not one flag for one row: `--fast-range LO,HI`,
 * `--ema off`, `--global-std on|off`. Rewritten into av (a copy of argv, strings kept in
 * store) with a deprecation line. */
static int rewrite_old(int argc, char **argv, char **av, char *store, size_t cap)
{
    int n = 0;
    size_t used = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--fast-range") == 0 && v && strchr(v, ',') && used + strlen(v) + 1 < cap) {
            fprintf(stderr, "flowrl train: --fast-range is deprecated, use --window-range-lo LO --window-range-hi HI\n");
            char *lo = store + used;
            strcpy(lo, v);
            used += strlen(v) + 1;
            char *c = strchr(lo, ',');
            *c = '\0';
            av[n++] = "--window-range-lo";
            av[n++] = lo;
            av[n++] = "--window-range-hi";
            av[n++] = c + 1;
            i++;
        } else if (strcmp(a, "--ema") == 0 && v && strcmp(v, "off") == 0) {
            fprintf(stderr, "flowrl train: --ema off is deprecated, use --ema-decay -1\n");
            av[n++] = "--ema-decay";
            av[n++] = "-1";
            i++;
        } else if (strcmp(a, "--global-std") == 0 && v && (strcmp(v, "on") == 0 || strcmp(v, "off") == 0)) {
            fprintf(stderr, "flowrl train: --global-std on|off is deprecated, use --global-std / --no-global-std\n");
            av[n++] = strcmp(v, "on") == 0 ? "--global-std" : "--no-global-std";
            i++;
        } else {
            av[n++] = argv[i];
        }
    }
    return n;
}

typedef struct {
    int argc;
    char **argv;
    cli_args *cli;
} resume_ctx;

/* Binds the command's own group and the backend to o (which already holds the run's). */
static void add_cli(fr_opts *o, cli_args *cli)
{
    int w = 0;
    while (w < FR_OPTS_MAX_STRUCTS && o->s[w]) w++;
    o->s[w] = cli;
    fr_opts_add(o, "Command", k_cli_rows, (int)(sizeof k_cli_rows / sizeof k_cli_rows[0]), w);
}

static fr_status resume_override(const fr_opts *now, fr_opts_seen *seen, void *user)
{
    resume_ctx *c = user;
    fr_opts o = *now;
    add_cli(&o, c->cli);
    return fr_opts_parse(&o, c->argc, c->argv, 1, NULL, 0, NULL, seen);
}

static void help(const fr_algo *a, fr_opts *o)
{
    printf("Usage: flowrl train --algo NAME --base CKPT --out RUNDIR [options]\n"
           "       flowrl train --algo NAME --env ENV --out RUNDIR [options]   (an algorithm that trains on an environment)\n"
           "       flowrl train --resume RUNDIR [--from-step N] [--epochs N] [resumable options]\n\n"
           "%s\n(--algo %s; `flowrl algos` lists every algorithm; %s)\n\n"
           "RUNDIR: config.json, metrics.jsonl, audit.log, checkpoints/step-N.safetensors, samples/*.png,\n"
           "eval.json, curve.svg. Every random number is a function of (seed, epoch, sample, step): a run is\n"
           "bit-reproducible on any backend and thread count, and a resumed run writes the same audit.log as an\n"
           "uninterrupted one. With --resume, options marked by the run's identity (everything but the run\n"
           "length, intervals, evaluation, lr schedule, health checks and the backend) cannot change.\n",
           a->help, a->name, a->doc);
    fr_opts_help(o, stdout);
    printf("\nInterrupt (Ctrl-C) or SIGTERM: stops after the current epoch with a checkpoint, exit status 130 / 143;\n"
           "continue with flowrl train --resume RUNDIR. Renamed options: see the README.\n"
           "GFlowNets train on an environment instead of a base: flowrl train --algo gfn-tb --env hypergrid --out RUNDIR.\n");
}

int cmd_train(int argc_in, char **argv_in)
{
    char **argv = malloc(((size_t)argc_in * 2 + 2) * sizeof *argv);
    char store[4096];
    if (!argv) return fr_cli_error(CMD, "out of memory");
    int argc = rewrite_old(argc_in, argv_in, argv, store, sizeof store);
    int rc = 0;

    /* the algorithm decides the options: --algo, else the one of --config / --resume's
     * config.json, else the registry's first (flow-grpo) */
    const char *algo_name = peek(argc, argv, "--algo");
    char algo_buf[64] = "", cfg_path[FR_OPT_PATH_MAX + 32];
    const char *cfg_src = peek(argc, argv, "--config"), *res_src = peek(argc, argv, "--resume");
    if (!algo_name && res_src) {
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", res_src);
        cfg_src = cfg_path;
    }
    if (!algo_name && cfg_src && fr_opts_json_string(cfg_src, "algo", algo_buf, sizeof algo_buf) == FR_OK && algo_buf[0])
        algo_name = algo_buf;
    const fr_algo *a;
    if (fr_algo_find(algo_name ? algo_name : fr_algo_default()->name, &a) != FR_OK) {
        rc = 2;
        fr_cli_error(CMD, "--algo: %s", fr_last_error());
        goto out;
    }
    fr_run_opts ro;
    memset(&ro, 0, sizeof ro);
    cli_args cli;
    void *ao = calloc(1, a->opts_size ? a->opts_size : 1), *eo = NULL;
    if (!ao) {
        rc = fr_cli_error(CMD, "out of memory");
        goto out;
    }
    memset(&cli, 0, sizeof cli);
    if (a->on_env) {
        /* the environment decides its option rows: --env, else config.json's, else the first of
         * the algorithm's kind */
        const char *env_name = peek(argc, argv, "--env");
        char env_buf[1040] = "";
        if (!env_name && cfg_src && fr_opts_json_string(cfg_src, "env", env_buf, sizeof env_buf) == FR_OK && env_buf[0])
            env_name = env_buf;
        const fr_env_class *ec = fr_env_first_of(a->env_kind);
        if (!env_name && !ec) {
            rc = fr_cli_error(CMD, "--algo %s: no %s environment is built in; name one with --env", a->name,
                              a->env_kind ? a->env_kind : "gfn");
            goto done;
        }
        if (env_name && fr_env_find(env_name, &ec) != FR_OK) {
            rc = 2;
            fr_cli_error(CMD, "--env: %s", fr_last_error());
            goto done;
        }
        if (!(eo = calloc(1, ec->opts_size ? ec->opts_size : 1))) {
            rc = fr_cli_error(CMD, "out of memory");
            goto done;
        }
        ro.env_class = ec;
        ro.env_opts = eo;
    }
    fr_opts o;
    fr_status st = fr_run_opts_defaults(&o, &ro, a, ao);
    add_cli(&o, &cli);
    if (st == FR_OK && fr_opts_wants_help(argc, argv)) {
        help(a, &o);
        goto done;
    }
    const char *config = peek(argc, argv, "--config");
    if (st == FR_OK && config) {
        static const char *const ignore[] = {"resolved", "base_digest", "base_abs", "out_abs", NULL};
        st = fr_opts_read_json(&o, config, ignore);
        if (st != FR_OK) {
            rc = fr_cli_error(CMD, "--config: %s", fr_last_error());
            goto done;
        }
    }
    const char *resume = peek(argc, argv, "--resume");
    if (st == FR_OK && !resume) st = fr_opts_parse(&o, argc, argv, 1, NULL, 0, NULL, NULL);
    if (st != FR_OK) {
        fr_cli_error(CMD, "%s (flowrl train --help)", msg());
        rc = 2;
        goto done;
    }
    /* resume: the backend options are parsed again on top of config.json by the loop */
    if (resume && fr_opts_parse(&o, argc, argv, 1, NULL, 0, NULL, NULL) != FR_OK) {
        fr_cli_error(CMD, "%s (flowrl train --help)", msg());
        rc = 2;
        goto done;
    }
    fr_backend be;
    if (fr_backend_opts_resolve(&ro.be, &be) != FR_OK) {
        fr_cli_error(CMD, "%s", msg());
        rc = 2;
        goto done;
    }
    /* docs/design.md §8.5: backend, threads and mode at the top of every run */
    printf("flowrl %s train --algo %s: %s %s\n", fr_version(), a->name, resume ? "resuming" : "run",
           resume ? resume : ro.run.out);
    char line[128];
    fr_backend_line(&be, line, sizeof line);
    printf("%s\n", line);
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    cli_state cs = {0.0, -1, ro.run.log_every, a};
    fr_run_cb cb = {on_epoch, NULL, on_info, &cs, &g_stop};
    fr_run_env env = {&be, &cb, NULL, NULL};
    fr_run_result res;
    const char *dir = resume ? resume : ro.run.out;
    if (resume) {
        resume_ctx rcx = {argc, argv, &cli};
        fr_run_resume_req rq = {resume, cli.from_step, resume_override, &rcx};
        st = fr_run_resume(&rq, &env, &res);
    } else {
        st = fr_run_new(&ro, ao, &env, &res);
    }
    fr_backend_close(&be);
    if (st != FR_OK) {
        rc = fr_cli_error(CMD, "%s", msg());
        if (st == FR_ERR_ARG) rc = 2;
        goto done;
    }
    if (res.interrupted) {
        printf("interrupted after epoch %lld: checkpoint %s/checkpoints/step-%lld.safetensors; continue with "
               "flowrl train --resume %s\n",
               (long long)res.epochs_done, dir, (long long)res.epochs_done, dir);
        fflush(stdout);
        rc = 128 + (res.interrupted == SIGTERM ? SIGTERM : SIGINT);
        goto done;
    }
    printf("done: %lld epochs (%lld in this run)\n", (long long)res.epochs_done,
           (long long)(res.epochs_done - res.first_epoch));
    if (res.have_after && a->on_env)
        printf("%s: before %.6f, after %.6f\n", a->doc, res.score_before, res.score_after);
    else if (res.have_after)
        printf("held-out accuracy: before %.1f%%, after %.1f%%; mean reward: before %.4f, after %.4f (%s/eval.json)\n",
               100.0 * res.acc_before, 100.0 * res.acc_after, res.score_before, res.score_after, dir);
    if (fflush(stdout) != 0 || ferror(stdout)) rc = fr_cli_error(CMD, "writing to stdout failed");
done:
    free(ao);
    free(eo);
out:
    free(argv);
    return rc;
}
