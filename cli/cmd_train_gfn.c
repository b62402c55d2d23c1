/* flowrl train --algo gfn-tb|gfn-db|gfn-subtb|gfn-zvar --env NAME: a GFlowNet on an enumerable
 * environment (flowrl/gfn_train.h; docs/algorithms/gfn.md), with the exact evaluation of §5.1 on
 * the progress line. Not yet on the run loop (no run directory, audit log, checkpoints or
 * resume): docs/algorithms/gfn.md §6. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/backend.h"
#include "flowrl/digest.h"
#include "flowrl/gfn_train.h"

#define CMD "train"

typedef struct {
    char algo[32];
    char env[32];
    int64_t iterations, batch, hidden, n_hidden, eval_every, validation_samples;
    int uniform_pb;
    double lr, lr_z, weight_decay, epsilon, temperature, sf_bias, lambda, init_log_z;
    uint32_t seed;
} gfn_cli;

#define C gfn_cli
static const fr_opt k_rows[] = {
    FR_OPT_STR(C, algo, "algo", "gfn-tb", "gfn-tb, gfn-db, gfn-subtb, gfn-zvar or gfn-fm (the loss, docs/algorithms/gfn.md §3)", 0),
    FR_OPT_STR(C, env, "env", "hypergrid", "the environment (flowrl envs lists them with their options)", 0),
    FR_OPT_I64(C, iterations, "iterations", "250", 1, 1e9, "optimiser steps (n_iterations)", 0),
    FR_OPT_I64(C, batch, "batch_size", "128", 1, 1 << 20, "trajectories per step", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "256", 1, 8192, "width of the MLP trunk", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "2", 1, 15, "hidden layers of the trunk", 0),
    FR_OPT_BOOL(C, uniform_pb, "uniform_pb", "false", "P_B uniform over the parents (else a learned head)", 0),
    FR_OPT_F64(C, lr, "lr", "1e-3", 1e-12, 10, "AdamW learning rate of the network", 0),
    FR_OPT_F64(C, lr_z, "lr_z", "0.1", 1e-12, 100, "AdamW learning rate of log Z (TB; lr_Z)", 0),
    FR_OPT_F64(C, weight_decay, "weight_decay", "0", 0, 10, "AdamW weight decay of the network (log Z: none)", 0),
    FR_OPT_F64(C, epsilon, "epsilon", "0", 0, 1, "ε of the ε-uniform exploration mixture", 0),
    FR_OPT_F64(C, temperature, "temperature", "1", 1e-6, 1e6, "sampling logits divided by it (exploration)", 0),
    FR_OPT_F64(C, sf_bias, "sf_bias", "0", -1e6, 1e6, "subtracted from the exit's sampling logit (exploration)", 0),
    FR_OPT_F64(C, lambda, "subtb_lambda", "0.9", 1e-6, 1e6, "SubTB's λ (geometric_within)", 0),
    FR_OPT_F64(C, init_log_z, "init_log_z", "0", -1e6, 1e6, "initial log Z (TB)", 0),
    FR_OPT_U32(C, seed, "seed", "1", "Philox seed: initialisation and action draws", 0),
    FR_OPT_I64(C, eval_every, "eval_every", "25", 0, 1e9, "exact evaluation every this many steps (0: at the end only)", 0),
    FR_OPT_I64(C, validation_samples, "validation_samples", "0", 0, 1e9,
               "also the sampled L1 of this many fresh trajectories at each evaluation (torchgfn: 200000; 0: off)", 0),
};
#undef C

static void usage(FILE *f)
{
    fprintf(f, "Usage: flowrl train --algo gfn-tb|gfn-db|gfn-subtb|gfn-zvar|gfn-fm [--env hypergrid] [options]\n\n"
               "Trains a GFlowNet (torchgfn's defaults of tutorials/examples/test_scripts.py) and prints, every\n"
               "--eval-every steps, the exact L1 between the policy's terminating distribution and R/Z (no\n"
               "sampling), the log Z error and the modes found. Not yet on the run loop: no run directory.\n");
}

static const struct {
    const char *name;
    fr_gfn_loss_kind loss;
} k_algos[] = {{"gfn-tb", FR_GFN_TB}, {"gfn-db", FR_GFN_DB}, {"gfn-subtb", FR_GFN_SUBTB}, {"gfn-zvar", FR_GFN_ZVAR}, {"gfn-fm", FR_GFN_FM}};

int fr_cli_is_gfn_algo(const char *name) { return name && strncmp(name, "gfn-", 4) == 0; }

int cmd_train_gfn(int argc, char **argv)
{
    /* the environment decides its option rows: --env, else the default */
    const char *env_name = "hypergrid";
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--env") == 0) env_name = argv[i + 1];
        else if (strncmp(argv[i], "--env=", 6) == 0) env_name = argv[i] + 6;
    const fr_env_class *ec;
    if (fr_env_find(env_name, &ec) != FR_OK) return fr_cli_usage(CMD, "--env: %s", fr_last_error());
    gfn_cli g;
    fr_backend_opts bo;
    void *eo = calloc(1, ec->opts_size);
    if (!eo) return fr_cli_error(CMD, "out of memory");
    fr_opts o;
    memset(&o, 0, sizeof o);
    o.cmd = CMD;
    o.g[0] = (fr_opt_group){"GFlowNet", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0};
    o.g[1] = (fr_opt_group){ec->name, ec->rows, ec->n_rows, 1};
    o.g[2] = (fr_opt_group){"Backend", fr_backend_rows, fr_backend_nrows, 2};
    o.ng = 3;
    o.s[0] = &g;
    o.s[1] = eo;
    o.s[2] = &bo;
    int rc = 0;
    fr_env env;
    memset(&env, 0, sizeof env);
    fr_gfn_trainer *t = NULL;
    fr_backend be;
    memset(&be, 0, sizeof be);
    int have_be = 0;
    if (fr_opts_defaults(&o) != FR_OK) {
        rc = fr_cli_status(CMD, FR_ERR_ARG);
        goto out;
    }
    rc = fr_cli_opts(&o, argc, argv, usage, NULL, 0, NULL, NULL);
    if (rc >= 0) goto out;
    rc = 0;
    fr_gfn_opts go = fr_gfn_opts_default();
    int found = 0;
    for (size_t i = 0; i < sizeof k_algos / sizeof k_algos[0]; i++)
        if (strcmp(g.algo, k_algos[i].name) == 0) {
            go.loss = k_algos[i].loss;
            found = 1;
        }
    if (!found) {
        rc = fr_cli_usage(CMD, "--algo: unknown GFlowNet algorithm '%s' (known: gfn-tb, gfn-db, gfn-subtb, gfn-zvar, gfn-fm)", g.algo);
        goto out;
    }
    go.batch = g.batch;
    go.hidden = g.hidden;
    go.n_hidden = g.n_hidden;
    go.uniform_pb = g.uniform_pb;
    go.lr = g.lr;
    go.lr_z = g.lr_z;
    go.weight_decay = g.weight_decay;
    go.epsilon = g.epsilon;
    go.temperature = g.temperature;
    go.sf_bias = g.sf_bias;
    go.lambda = g.lambda;
    go.init_log_z = g.init_log_z;
    go.seed = g.seed;
    fr_status s = fr_env_create(ec, eo, &env);
    if (s == FR_OK) {
        if ((rc = fr_cli_resolve_backend(CMD, &bo, &be)) != 0) goto out;
        have_be = 1;
        s = fr_gfn_trainer_new(&t, &be, &env, &go);
    }
    if (s != FR_OK) {
        rc = fr_cli_status(CMD, s);
        goto out;
    }
    printf("flowrl train --algo %s --env %s: backend %s, %d threads, %s\n", g.algo, env.desc, be.name, be.threads,
           be.fast ? "fast" : "exact");
    printf("batch %lld, %lld iterations, hidden %lld x %lld, %s P_B, lr %g, lr_z %g, wd %g, epsilon %g, temperature %g, "
           "sf_bias %g, seed %u\n",
           (long long)g.batch, (long long)g.iterations, (long long)g.hidden, (long long)g.n_hidden,
           g.uniform_pb ? "uniform" : "learned", g.lr, g.lr_z, g.weight_decay, g.epsilon, g.temperature, g.sf_bias, g.seed);
    int64_t n_modes = 0;
    s = fr_env_target(&env, NULL, NULL, &n_modes, NULL);
    for (int64_t k = 0; k < g.iterations && s == FR_OK; k++) {
        fr_gfn_step_info info;
        s = fr_gfn_trainer_step(t, &info);
        int last = k + 1 == g.iterations;
        if (s == FR_OK && (last || (g.eval_every > 0 && (k + 1) % g.eval_every == 0))) {
            double l1, zerr;
            s = fr_gfn_trainer_eval(t, &l1, &zerr, NULL);
            double sl1 = NAN;
            if (s == FR_OK && g.validation_samples > 0) s = fr_gfn_trainer_sampled_l1(t, g.validation_samples, &sl1, NULL);
            if (s == FR_OK)
                printf("%s iter %lld trajectories %lld loss %.6g log_z %.6f exact_l1 %.6f log_z_err %.6f modes %lld/%lld%s",
                       last ? "final" : "step", (long long)info.iteration, (long long)info.trajectories, info.loss,
                       info.log_z, l1, zerr, (long long)info.modes_found, (long long)n_modes,
                       g.validation_samples > 0 ? "" : "\n");
            if (s == FR_OK && g.validation_samples > 0) printf(" sampled_l1 %.6f\n", sl1);
            fflush(stdout);
        }
    }
    if (s == FR_OK) {
        uint64_t d;
        int64_t np;
        s = fr_gfn_trainer_digest(t, &d, &np);
        char hex[17];
        fr_digest_hex(d, hex);
        if (s == FR_OK) printf("parameters %lld, digest %s\n", (long long)np, hex);
    }
    if (s != FR_OK) rc = fr_cli_status(CMD, s);
out:
    fr_gfn_trainer_free(t);
    fr_env_free(&env);
    if (have_be) fr_backend_close(&be);
    free(eo);
    return rc;
}
