/* flowrl optimize: optimise the initial noise or the condition embedding of a frozen checkpoint
 * for a differentiable reward, by the continuous adjoint (AdjointDPM) or full backprop
 * (flowrl/optimize.h, docs/algorithms/draft.md §3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/sampling_opts.h"
#include "flowrl/optimize.h"
#include "flowrl/philox.h"

typedef struct {
    char out[FR_OPT_PATH_MAX], reward[32];
    int64_t prompt, n, iters;
    int target, grad;
    double lr;
} optimize_opts;

static const char *const k_targets[] = {"noise", "cond", NULL};
static const char *const k_grads[] = {"adjoint", "backprop", NULL};

static const fr_opt k_rows[] = {
    FR_OPT_ROW_(optimize_opts, out, "out", FR_OPT_STR, "", 0, 0, NULL, "the PNG of the optimised samples (required)",
                FR_OPT_PATH, NULL, "FILE"),
    FR_OPT_ENUM(optimize_opts, target, "target", "noise", k_targets,
                "what is optimised: noise (each sample's x_T) or cond (the condition embedding rows; [code] ADJ "
                "node_solver_noise / node_solver_text)", 0),
    FR_OPT_ENUM(optimize_opts, grad, "grad", "adjoint", k_grads,
                "the gradient: adjoint (torchdiffeq's fixed-grid Euler adjoint, memory independent of the steps; "
                "[code] ADJ) or backprop (exact through the stored trajectory)", 0),
    FR_OPT_STR(optimize_opts, reward, "reward", "", "a differentiable task reward (gmm2d: mode, sqdist); default the task's first", 0),
    FR_OPT_I64(optimize_opts, prompt, "prompt", "0", 0, 1000000, "the prompt id", 0),
    FR_OPT_I64(optimize_opts, n, "n", "16", 1, 100000, "samples", 0),
    FR_OPT_I64(optimize_opts, iters, "iters", "20", 0, 100000, "Adam steps", 0),
    FR_OPT_F64(optimize_opts, lr, "lr", "0.01", 0, 1e6, "Adam's step size (ADJ: AdamW lr 0.01)", 0),
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: flowrl optimize --ckpt FILE --out OUT.png [--target noise|cond] [--grad adjoint|backprop]\n"
               "                       [--reward R] [--prompt ID] [--n N] [--iters K] [--lr LR] [sampler options]\n\n"
               "Optimises the initial noise (or the condition embedding) of N samples of one prompt for a\n"
               "differentiable reward, L = -mean r(x_0), through the Euler ODE sampler: the gradient by the\n"
               "continuous adjoint of AdjointDPM (x re-integrated backward, memory independent of the steps)\n"
               "or by backprop through the trajectory. Prints the mean reward per step and writes the last\n"
               "samples as a picture. Sample i's starting noise is fr_rollout's of sample id i, domain 0x%08x.\n",
            FR_ROLLOUT_C0_SAMPLE);
}

int cmd_optimize(int argc, char **argv)
{
    fr_cli_sampling_args a;
    optimize_opts so;
    fr_opts o = {.cmd = "optimize", .s = {&so}};
    fr_opts_add(&o, "Optimisation", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    fr_cli_sampling_add(&o, &a, 1);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("optimize", FR_ERR_IO);
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, NULL, 0, NULL, &seen);
    if (rc >= 0) return rc;
    if (!so.out[0]) return fr_cli_usage("optimize", "--out is required");
    fr_cli_sampling s;
    rc = fr_cli_sampling_setup(&o, &seen, &a, &s);
    if (rc) return rc;
    const fr_task *t = s.ck.task;
    const int64_t N = so.n, D = t->D;
    int rid = 0;
    fr_status st = so.reward[0] ? fr_task_reward_id(t, so.reward, &rid) : FR_OK;
    if (st == FR_OK && (so.prompt >= t->n_prompts))
        st = fr_fail(FR_ERR_ARG, "--prompt %lld outside [0, %d)", (long long)so.prompt, t->n_prompts);
    int *pid = malloc((size_t)N * sizeof *pid);
    float *x = malloc((size_t)(N * D) * sizeof *x);
    double *curve = malloc((size_t)(so.iters + 1) * sizeof *curve);
    if (st == FR_OK && (!pid || !x || !curve)) st = FR_ERR_NOMEM;
    if (st == FR_OK) {
        s.rc.c0 = FR_ROLLOUT_C0_SAMPLE;
        for (int64_t i = 0; i < N; i++) {
            pid[i] = (int)so.prompt;
            fr_rng_fill_normal(x + i * D, D, s.rc.seed, FR_RNG_SAMPLER_INIT, s.rc.c0, (uint32_t)i, 0);
        }
        char sampler[256];
        fr_cli_sampler_line(&s, sampler, sizeof sampler);
        printf("optimize %s by %s: reward %s, prompt %lld, %lld samples, %lld Adam steps at lr %g; sampler %s, seed %u\n",
               k_targets[so.target], k_grads[so.grad], t->reward_names[rid], (long long)so.prompt, (long long)N,
               (long long)so.iters, so.lr, sampler, s.seed);
        st = fr_optimize(&s.ck.model, &s.be, t, rid, &s.rc, (fr_optim_target)so.target, (fr_optim_grad)so.grad,
                         so.iters, so.lr, N, pid, x, curve);
    }
    double r_end = 0.0;
    if (st == FR_OK) {
        for (int64_t k = 0; k <= so.iters; k++) printf("step %lld: mean reward %.6f\n", (long long)k, curve[k]);
        /* the optimised noise's samples, for the picture */
        float *dx = fr_dev_floats(&s.be, N * D), *g = fr_dev_floats(&s.be, N * D);
        st = dx && g ? fr_h2d(&s.be, dx, x, (size_t)(N * D) * sizeof(float)) : FR_ERR_NOMEM;
        if (st == FR_OK)
            st = fr_optimize_grad(&s.ck.model, &s.be, t, rid, &s.rc, FR_OPTIM_GRAD_BACKPROP, N, pid, dx, NULL, &r_end, x);
        fr_dev_free(&s.be, dx);
        fr_dev_free(&s.be, g);
        if (st == FR_OK) st = fr_task_render(t, so.out, (int)N, pid, x, 0, 4);
    }
    if (st != FR_OK) {
        rc = fr_cli_error("optimize", "%s", fr_last_error());
    } else {
        printf("wrote %s: mean reward before %.6f, after %.6f\n", so.out, curve[0], r_end);
    }
    free(pid);
    free(x);
    free(curve);
    fr_cli_sampling_free(&s);
    return rc;
}
