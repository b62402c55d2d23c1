/* flowrl expert: episodes of a scripted expert on a control environment (flowrl/env_ctl.h) as a
 * demonstrations file (flowrl/demos.h, docs/demos.md), with their success rate, return and, on
 * nav2d, the trajectory picture; `flowrl expert show FILE` reads one back. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "flowrl/env_ctl.h"
#include "flowrl/opt_groups.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: flowrl expert --env ENV [env options] [--expert NAME] [--episodes N] [--seed S]\n"
            "                     [--first-episode K] [--out FILE] [--force] [--plot FILE.png]\n"
            "       flowrl expert show FILE [--plot FILE.png]\n\n"
            "Runs a scripted expert for N episodes of a control environment (episodes K .. K+N-1 under\n"
            "--seed: resets from Philox, so the same options give the same bytes), prints the success\n"
            "rate, return and episode length, and writes the episodes as a demonstrations file for\n"
            "behaviour cloning (docs/demos.md). ENV is a built-in (nav2d, pendulum: `flowrl envs`) or\n"
            "cmd:PROGRAM, an environment program over a pipe (docs/env-protocol.md), e.g.\n"
            "  --env 'cmd:python3 tools/gym_env.py Pendulum-v1' --expert pendulum\n"
            "The expert defaults to the environment's own. --noise S makes it imperfect (docs/demos.md §3:\n"
            "demonstrations that leave behaviour cloning room for RL, e.g. nav2d's harder setting\n"
            "`--noise 1 --success-radius 0.05 --max-episode-steps 25`, docs/envs.md §4). --plot draws\n"
            "nav2d's trajectories (PNG).\n"
            "Experts:\n");
    for (const fr_ctl_expert *const *x = fr_ctl_experts(); *x; x++)
        fprintf(f, "  %-9s %s (obs %d, actions %d)\n", (*x)->name, (*x)->summary, (*x)->obs_dim, (*x)->action_dim);
}

typedef struct {
    char env[FR_DEMOS_ENV_MAX], expert[32], out[FR_OPT_PATH_MAX], plot[FR_OPT_PATH_MAX];
    int64_t episodes, first;
    uint32_t seed;
    int force;
    double noise;
} expert_opts;

#define C expert_opts
static const fr_opt k_rows[] = {
    FR_OPT_ROW_(C, env, "env", FR_OPT_STR, "nav2d", 0, 0, NULL, "the environment: a built-in or cmd:PROGRAM", 0, NULL,
                "ENV"),
    FR_OPT_ROW_(C, expert, "expert", FR_OPT_STR, "", 0, 0, NULL, "the scripted expert (default: the environment's)", 0,
                NULL, "NAME"),
    FR_OPT_I64(C, episodes, "episodes", "100", 1, 1 << 24, "episodes N", 0),
    FR_OPT_I64(C, first, "first_episode", "0", 0, 4294967295.0, "reset index K of the first episode", 0),
    FR_OPT_U32(C, seed, "seed", "42", "Philox key of the resets (and of nav2d's goal choices)", 0),
    FR_OPT_ROW_(C, out, "out", FR_OPT_STR, "", 0, 0, NULL, "the demonstrations file to write", FR_OPT_PATH, NULL, "FILE"),
    FR_OPT_BOOL(C, force, "force", "false", "replace an existing --out", 0),
    FR_OPT_ROW_(C, plot, "plot", FR_OPT_STR, "", 0, 0, NULL, "draw the trajectories to this PNG (nav2d)", FR_OPT_PATH,
                NULL, "FILE"),
    FR_OPT_F64(C, noise, "noise", "0", 0, 100,
               "an imperfect expert: Gaussian noise of this std added to each action, clipped to its range", 0),
};
#undef C

/* --env's value in argv (either spelling), or NULL. */
static const char *peek_env(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--env") == 0 && i + 1 < argc) return argv[i + 1];
        if (strncmp(argv[i], "--env=", 6) == 0) return argv[i] + 6;
    }
    return NULL;
}

static void summary(const char *what, const fr_demos *d)
{
    double ret, sd, len, sr;
    fr_demos_summary(d, &ret, &sd, &len, &sr);
    char succ[32] = "n/a (no success flag)";
    if (d->has_success) snprintf(succ, sizeof succ, "%.3f", sr);
    printf("%s: %s on %s, seed %" PRIu32 ": %" PRId64 " episodes, %" PRId64 " steps; success %s, return %.4f +- %.4f "
           "(std), length %.1f\n",
           what, d->policy, d->env_desc, d->seed, d->E, d->N, succ, ret, sd, len);
}

static int plot(const char *cmd, const char *path, const fr_demos *d)
{
    const fr_env_class *c;
    void *o;
    if (fr_env_spec(d->env, &c, &o) != FR_OK) return fr_cli_error(cmd, "%s", fr_last_error());
    fr_status s = c != &fr_env_nav2d ? fr_fail(FR_ERR_ARG, "--plot: draws nav2d trajectories, not %s", d->env_desc)
                                      : fr_env_options_from_json(c, o, d->env_options ? d->env_options : "{}", path);
    if (s == FR_OK) s = fr_ctl_plot_nav2d(path, o, d, 512, d->policy);
    free(o);
    if (s != FR_OK) return fr_cli_status(cmd, s);
    printf("plot: %s\n", path);
    return 0;
}

static int cmd_show(int argc, char **argv)
{
    expert_opts eo;
    fr_opts o = {.cmd = "expert show", .s = {&eo}};
    fr_opts_add(&o, "Show", k_rows + 7, 1, 0);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("expert show", FR_ERR_IO);
    const char *path = NULL;
    int n_pos = 0;
    int rc = fr_cli_opts(&o, argc, argv, usage, &path, 1, &n_pos, NULL);
    if (rc >= 0) return rc;
    if (!n_pos) return fr_cli_usage("expert show", "a FILE is required");
    fr_demos d;
    if (fr_demos_read(path, &d) != FR_OK) return fr_cli_error("expert show", "%s", fr_last_error());
    summary(path, &d);
    printf("env %s, options %s; obs %d, actions %d, state %d; max_steps %d; flowrl %s\n", d.env,
           d.env_options ? d.env_options : "{}", d.obs_dim, d.action_dim, d.state_dim, d.max_steps, d.flowrl_version);
    rc = eo.plot[0] ? plot("expert show", eo.plot, &d) : 0;
    fr_demos_free(&d);
    return rc;
}

int cmd_expert(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "show") == 0) return cmd_show(argc - 1, argv + 1);
    const char *CMD = "expert";
    const char *spec = peek_env(argc, argv);
    const fr_env_class *ec;
    void *env_o = NULL;
    if (fr_env_spec(spec ? spec : "nav2d", &ec, &env_o) != FR_OK) return fr_cli_usage(CMD, "--env: %s", fr_last_error());
    expert_opts eo;
    fr_opts o = {.cmd = CMD, .s = {&eo, env_o}};
    fr_opts_add(&o, "Expert", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    if (ec->n_rows) fr_opts_add(&o, ec->name, ec->rows, ec->n_rows, 1);
    int rc = fr_opts_defaults(&o) == FR_OK ? -1 : fr_cli_status(CMD, FR_ERR_IO);
    if (rc < 0) rc = fr_cli_opts(&o, argc, argv, usage, NULL, 0, NULL, NULL);
    if (rc >= 0) {
        free(env_o);
        return rc;
    }
    if (ec == &fr_env_cmd) /* the program comes from --env, not from a row */
        snprintf(((fr_env_cmd_opts *)env_o)->program, FR_ENV_CMD_PROGRAM_MAX, "%s", fr_env_cmd_program(eo.env));
    const fr_ctl_expert *x = NULL;
    fr_status s = fr_ctl_expert_find(eo.expert[0] ? eo.expert : ec->name, &x);
    if (s != FR_OK) {
        free(env_o);
        return fr_cli_usage(CMD, "--expert: %s%s", fr_last_error(),
                            eo.expert[0] ? "" : " (a program has no expert of its own: name one with --expert)");
    }
    if (eo.plot[0] && ec != &fr_env_nav2d) {
        free(env_o);
        return fr_cli_usage(CMD, "--plot draws nav2d's trajectories, not %s's", ec->name);
    }
    if (eo.out[0] && !eo.force && access(eo.out, F_OK) == 0) {
        free(env_o);
        return fr_cli_error(CMD, "%s exists (--force replaces it)", eo.out);
    }
    if ((uint64_t)eo.first + (uint64_t)eo.episodes - 1u > UINT32_MAX) {
        free(env_o);
        return fr_cli_usage(CMD, "--first-episode %" PRId64 " + --episodes %" PRId64 " leave [0, 2^32)", eo.first,
                            eo.episodes);
    }
    fr_env e;
    s = fr_env_create(ec, env_o, &e);
    if (s != FR_OK) {
        free(env_o);
        return fr_cli_status(CMD, s);
    }
    fr_ctl_expert_ctx ctx = {x, eo.seed, ec == &fr_env_nav2d ? env_o : NULL, eo.noise};
    fr_demos d;
    s = fr_ctl_rollouts(&e, eo.seed, (uint32_t)eo.first, eo.episodes, fr_ctl_expert_act, &ctx, &d);
    if (s == FR_OK) {
        snprintf(d.env, sizeof d.env, "%s", eo.env);
        snprintf(d.env_desc, sizeof d.env_desc, "%s", e.desc);
        if (eo.noise > 0.0) snprintf(d.policy, sizeof d.policy, "expert:%s noise %g", x->name, eo.noise);
        else snprintf(d.policy, sizeof d.policy, "expert:%s", x->name);
        d.seed = eo.seed;
        d.env_options = fr_env_options_json(ec, env_o);
        if (!d.env_options) s = FR_ERR_NOMEM;
    }
    if (s == FR_OK && eo.out[0]) s = fr_demos_write(eo.out, &d);
    fr_env_free(&e);
    free(env_o);
    if (s != FR_OK) {
        fr_demos_free(&d);
        return fr_cli_status(CMD, s);
    }
    summary(eo.out[0] ? eo.out : "expert", &d);
    rc = eo.plot[0] ? plot(CMD, eo.plot, &d) : 0;
    fr_demos_free(&d);
    return rc;
}
