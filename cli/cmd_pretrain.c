/* flowrl pretrain: train a base model on a built-in task (flowrl/pretrain.h) and write a
 * safetensors checkpoint (flowrl/checkpoint.h). Run information goes to stdout, the
 * progress display to stderr (a bar on a terminal, plain lines otherwise). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "flowrl/buildinfo.h"
#include "flowrl/model.h"
#include "flowrl/opt.h"
#include "flowrl/pretrain.h"
#include "flowrl/progress.h"
#include "flowrl/task.h"

/* Per-task defaults that differ from fr_pretrain_defaults(), applied when the option is
 * not given. shapes: 10000 steps (about 3 minutes with --backend opt on 2 cores) bring the
 * x0-head shapes-s model to ~48% held-out accuracy (flowrl eval, cfg 1); 2000 steps leave
 * it at ~8% (measurements in the quality report). */
#define SHAPES_STEPS 10000
/* shapes --pred epsilon: the Min-SNR-5 loss weight unless --eps-weight is given; at 5000
 * steps it brings the epsilon base from 3.3% to the flow base's held-out accuracy within the
 * issue's 10 points (docs/algorithms/pretraining.md §7, BENCHMARKS.md bench_eps_base). */
#define SHAPES_EPS_WEIGHT FR_EPS_WEIGHT_MIN_SNR
#define FR_STR_(x) #x
#define FR_STR(x) FR_STR_(x)
#define BELOW_ONE 0x1.fffffep-1 /* the largest float below 1: a range [lo, 1) */

/* pretrain's own options; the optimiser, run and backend options are the shared groups */
typedef struct {
    char task[32], preset[32], resume[FR_OPT_PATH_MAX];
    int64_t hidden, ffn, blocks;
    int64_t max_train_steps, train_batch_size;
    int pred, sigma, betas, head, progress, eps_weight;
    float logit_mean, logit_std, cfg_dropout, sigma_min, snr_gamma;
} pretrain_opts;

static const char *const k_sigma_names[] = {"uniform", "logit-normal", NULL};      /* fr_sigma_sampling */
static const char *const k_betas_names[] = {"linear", "scaled_linear", NULL};      /* fr_betas_kind */
static const char *const k_head_names[] = {"preset", "velocity", "x0", NULL};     /* fr_head + 1 */
static const char *const k_eps_weight_names[] = {"none", "min-snr", "x0", NULL};  /* fr_eps_weight */
static const char *const k_progress_names[] = {"auto", "tty", "plain", "off", NULL}; /* fr_progress_mode */

/* Defaults come from fr_pretrain_defaults() (def NULL: the struct as initialised). */
#define ROW(f, key, kind, lo, hi, names, help, alias, mv) \
    FR_OPT_ROW_(pretrain_opts, f, key, kind, NULL, lo, hi, names, help, 0, alias, mv)
static const fr_opt k_rows[] = {
    ROW(task, "task", FR_OPT_STR, 0, 0, NULL, "gmm2d, checkerboard or shapes (required)", NULL, "NAME"),
    ROW(preset, "preset", FR_OPT_STR, 0, 0, NULL,
        "model preset: gmm2d-s, shapes-s, shapes-m, shapes-dit-s, shapes-dit-m (the DiTs, docs/algorithms/dit.md) (default: gmm2d-s for gmm2d, shapes-s for shapes; the shapes "
        "presets predict x0 and return the velocity it implies)",
        NULL, "P"),
    ROW(hidden, "hidden", FR_OPT_I64, 0, 65536, NULL, "residual width H, 0 = the preset's (else preset \"custom\")",
        NULL, "H"),
    ROW(ffn, "ffn", FR_OPT_I64, 0, 65536, NULL, "block MLP width F, 0 = the preset's", NULL, "F"),
    ROW(blocks, "blocks", FR_OPT_I64, -1, FR_MODEL_MAX_BLOCKS, NULL, "residual blocks, -1 = the preset's", NULL, "N"),
    ROW(max_train_steps, "max_train_steps", FR_OPT_I64, 1, 100000000, NULL,
        "optimiser steps (shapes: " FR_STR(SHAPES_STEPS) " unless given)", "--steps", "N"),
    ROW(train_batch_size, "train_batch_size", FR_OPT_I64, 1, 65536, NULL, "samples per optimiser step", "--batch", "B"),
    ROW(pred, "pred", FR_OPT_ENUM, 0, 0, fr_pred_names, "velocity (rectified flow) or epsilon (DDPM)", NULL, NULL),
    ROW(sigma, "sigma", FR_OPT_ENUM, 0, 0, k_sigma_names, "sigma sampling of velocity models", NULL, NULL),
    ROW(logit_mean, "logit_mean", FR_OPT_F32, -10, 10, NULL, "logit-normal location", NULL, "M"),
    ROW(logit_std, "logit_std", FR_OPT_F32, 0, 10, NULL, "logit-normal scale", NULL, "S"),
    ROW(cfg_dropout, "cfg_dropout", FR_OPT_F32, 0, BELOW_ONE, NULL,
        "probability of the null condition (for classifier-free guidance)", NULL, "P"),
    ROW(betas, "betas", FR_OPT_ENUM, 0, 0, k_betas_names,
        "epsilon: DDPM betas over 1000 steps, linear (1e-4..0.02) or scaled_linear (0.00085..0.012)", NULL, NULL),
    ROW(head, "head", FR_OPT_ENUM, 0, 0, k_head_names,
        "output head: preset (x0 for the shapes presets, velocity for gmm2d-s), velocity (the last layer is the "
        "prediction) or x0 (it predicts x0 and returns the velocity, or with --pred epsilon the noise "
        "(x - sqrt(abar_t) x0)/max(sqrt(1 - abar_t), 0.05), that it implies)",
        NULL, NULL),
    ROW(sigma_min, "sigma_min", FR_OPT_F32, 0, 1, NULL,
        "x0 head: the floor of its divisor (sigma, or sqrt(1 - abar_t) with --pred epsilon), 0 = the default 0.05", NULL, "S"),
    ROW(eps_weight, "eps_weight", FR_OPT_ENUM, 0, 0, k_eps_weight_names,
        "epsilon: per-sample weight of the loss (default none; min-snr for shapes), none, min-snr (min(SNR, gamma)/SNR, Min-SNR-gamma) or x0 "
        "(1/abar_t: x0 errors weighted by 1/(1 - abar_t), as the flow x0 head's 1/sigma^2; v-prediction's loss)",
        NULL, NULL),
    ROW(snr_gamma, "snr_gamma", FR_OPT_F32, 0x1p-20, 1e6, NULL, "min-snr's gamma", NULL, "G"),
    ROW(resume, "resume", FR_OPT_STR, 0, 0, NULL, "continue from a checkpoint of the same command", NULL, "FILE"),
    ROW(progress, "progress", FR_OPT_ENUM, 0, 0, k_progress_names, "auto: a bar on a terminal, plain lines otherwise",
        NULL, NULL),
};
#undef ROW

static void usage(FILE *f)
{
    fprintf(f, "Usage: flowrl pretrain --task gmm2d|checkerboard|shapes --out FILE [options]\n\n"
               "Trains the conditional MLP base model of a built-in task from scratch:\n"
               "rectified flow (x = (1-s) x0 + s eps, target eps - x0, input t = 1000 s) or, with\n"
               "--pred epsilon, DDPM (x = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, target eps).\n"
               "Every random number is a function of (seed, step, sample): the same command\n"
               "writes the same checkpoint bytes, on any backend and thread count.\n\n"
               "The checkpoint holds the weights, ema.* (EMA weights), optim.m.* / optim.v.*\n"
               "(AdamW moments) and metadata (flowrl.version, task, preset, step, seed,\n"
               "pretrain.* options, model.* config); --resume continues it bit for bit.\n"
               "--checkpoint-every N also writes OUT-stepNNNNNN.safetensors every N steps;\n"
               "--log-every N prints a line every N steps (and every 10 s) in plain mode.\n"
               "An existing OUT is replaced only with --force.\n");
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

typedef struct {
    fr_progress prog;
} cb_state;

static int on_step(const fr_pretrain_event *ev, void *user)
{
    cb_state *cs = user;
    fr_progress_update(&cs->prog, ev->step, ev->loss);
    return 0;
}

int cmd_pretrain(int argc, char **argv)
{
    const fr_pretrain_cfg d = fr_pretrain_defaults();
    pretrain_opts po = {.hidden = d.H, .ffn = d.F, .blocks = d.n_blocks, .max_train_steps = d.steps,
                        .train_batch_size = d.batch, .pred = (int)d.pred, .sigma = (int)d.sigma,
                        .betas = (int)d.betas, .head = d.head + 1, .progress = FR_PROGRESS_AUTO, .logit_mean = d.logit_mean,
                        .logit_std = d.logit_std, .cfg_dropout = d.cfg_dropout,
                        .eps_weight = (int)d.eps_weight, .snr_gamma = d.snr_gamma};
    fr_optim_opts opt;
    fr_runctl_opts run;
    fr_backend_opts bk;
    fr_opts o = {.cmd = "pretrain", .s = {&po, &opt, &run, &bk}};
    fr_opts_add(&o, "Pretraining", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    fr_opts_add(&o, "Optimiser", fr_optim_rows, fr_optim_nrows, 1);
    fr_opts_add(&o, "Run", fr_runctl_rows, fr_runctl_nrows_steps, 2);
    fr_opts_add(&o, "Backend", fr_backend_rows, fr_backend_nrows, 3);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("pretrain", FR_ERR_IO);
    /* pretrain's own defaults (fr_pretrain_defaults), shown by --help */
    opt.lr = d.lr;
    opt.lr_min = d.lr_min;
    opt.lr_schedule = d.schedule;
    opt.warmup = d.warmup;
    opt.adam_beta1 = d.beta1;
    opt.adam_beta2 = d.beta2;
    opt.adam_eps = d.adam_eps;
    opt.weight_decay = d.weight_decay;
    opt.max_grad_norm = d.clip;
    opt.ema_decay = d.ema;
    run.seed = d.seed;
    run.log_every = 100;
    run.checkpoint_every = d.save_every;
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, NULL, 0, NULL, &seen);
    if (rc >= 0) return rc;
    if (!po.task[0]) return fr_cli_usage("pretrain", "--task is required");
    if (!run.out[0]) return fr_cli_usage("pretrain", "--out is required");
    if (opt.ema_every != 1) return fr_cli_usage("pretrain", "--ema-every: pretrain updates the EMA every step");
    if (opt.ema_decay < 0) return fr_cli_usage("pretrain", "--ema-decay: pretrain always keeps an EMA, expected 0 <= decay < 1");
    /* a resume rewrites its own checkpoint; anything else needs --force to replace a file */
    if (file_exists(run.out) && !run.force && !(po.resume[0] && strcmp(po.resume, run.out) == 0))
        return fr_cli_usage("pretrain", "%s exists; --force replaces it", run.out);

    fr_pretrain_cfg cfg = d;
    cfg.task = po.task;
    cfg.preset = po.preset[0] ? po.preset : NULL;
    cfg.H = po.hidden;
    cfg.F = po.ffn;
    cfg.n_blocks = po.blocks;
    cfg.pred = (fr_pred)po.pred;
    cfg.steps = po.max_train_steps;
    cfg.batch = po.train_batch_size;
    cfg.seed = run.seed;
    cfg.lr = opt.lr;
    cfg.lr_min = opt.lr_min;
    cfg.warmup = opt.warmup;
    cfg.schedule = opt.lr_schedule;
    cfg.beta1 = opt.adam_beta1;
    cfg.beta2 = opt.adam_beta2;
    cfg.adam_eps = opt.adam_eps;
    cfg.weight_decay = opt.weight_decay;
    cfg.clip = opt.max_grad_norm;
    cfg.ema = opt.ema_decay;
    cfg.sigma = (fr_sigma_sampling)po.sigma;
    cfg.logit_mean = po.logit_mean;
    cfg.logit_std = po.logit_std;
    cfg.cfg_dropout = po.cfg_dropout;
    cfg.betas = (fr_betas_kind)po.betas;
    cfg.head = po.head - 1;
    cfg.sigma_min = po.sigma_min;
    cfg.eps_weight = (fr_eps_weight)po.eps_weight;
    cfg.snr_gamma = po.snr_gamma;
    cfg.save_every = run.checkpoint_every;
    cfg.out = run.out;
    cfg.resume = po.resume[0] ? po.resume : NULL;
    /* shapes: 10000 steps unless given (see SHAPES_STEPS) */
    if (strcmp(cfg.task, "shapes") == 0 && !fr_opts_seen_key(&o, &seen, "max_train_steps")) cfg.steps = SHAPES_STEPS;
    if (strcmp(cfg.task, "shapes") == 0 && cfg.pred == FR_PRED_EPSILON && !fr_opts_seen_key(&o, &seen, "eps_weight"))
        cfg.eps_weight = SHAPES_EPS_WEIGHT;
    const long long log_every = run.log_every;
    const fr_progress_mode pmode = (fr_progress_mode)po.progress;

    /* option values the library rejects (unknown task or preset, lr_min > lr, ...) are
     * usage errors too: nothing has run yet */
    fr_model_config mc;
    if (fr_pretrain_model_config(&cfg, &mc) != FR_OK) {
        fprintf(stderr, "flowrl pretrain: %s (flowrl pretrain --help)\n", fr_last_error());
        return 2;
    }
    fr_backend be;
    int brc = fr_cli_resolve_backend("pretrain", &bk, &be);
    if (brc) return brc;

    /* docs/design.md §8.5: backend, threads and mode at the top of every run */
    const fr_task *task;
    fr_task_get(cfg.task, &task);
    printf("flowrl %s pretrain: task %s (D %d, %d train prompts), preset %s, %s%s\n",
           fr_version(), cfg.task, task->D, task->n_train, mc.preset, fr_pred_name(cfg.pred),
           mc.head == FR_HEAD_X0 ? " (x0 head)" : "");
    char bline[128];
    fr_backend_line(&be, bline, sizeof bline);
    printf("%s\n", bline);
    printf("model: %lld params, %.3g MFLOP/sample forward (H %lld, F %lld, blocks %lld)\n",
           (long long)fr_model_config_num_params(&mc), fr_model_config_flops(&mc) / 1e6,
           (long long)mc.H, (long long)mc.F, (long long)mc.n_blocks);
    if (cfg.pred == FR_PRED_VELOCITY && cfg.sigma == FR_SIGMA_LOGIT_NORMAL)
        printf("steps %lld, batch %lld, seed %u, lr %g (warm-up %lld, %s to %g), sigma logit-normal(%g, %g),\n",
               (long long)cfg.steps, (long long)cfg.batch, cfg.seed, (double)cfg.lr,
               (long long)fr_pretrain_warmup(&cfg), cfg.schedule == FR_LR_COSINE ? "cosine" : "constant",
               (double)(cfg.schedule == FR_LR_COSINE ? cfg.lr_min : cfg.lr), (double)cfg.logit_mean,
               (double)cfg.logit_std);
    else
        printf("steps %lld, batch %lld, seed %u, lr %g (warm-up %lld, %s to %g), %s,\n",
               (long long)cfg.steps, (long long)cfg.batch, cfg.seed, (double)cfg.lr,
               (long long)fr_pretrain_warmup(&cfg), cfg.schedule == FR_LR_COSINE ? "cosine" : "constant",
               (double)(cfg.schedule == FR_LR_COSINE ? cfg.lr_min : cfg.lr),
               cfg.pred == FR_PRED_VELOCITY ? "sigma uniform"
               : cfg.betas == FR_BETAS_LINEAR ? "DDPM betas linear(1e-4, 0.02)"
                                              : "DDPM betas scaled_linear(0.00085, 0.012)");
    printf("  cfg-dropout %g, ema %g, clip %g, weight decay %g%s%s\n", (double)cfg.cfg_dropout,
           (double)cfg.ema, (double)cfg.clip, (double)cfg.weight_decay,
           cfg.resume ? ", resuming " : "", cfg.resume ? cfg.resume : "");
    fflush(stdout);

    cb_state cs;
    fr_progress_init(&cs.prog, stderr, pmode, "pretrain", cfg.steps, 0, log_every);
    double t0 = fr_now_seconds();
    fr_pretrain_result res;
    fr_status st = fr_pretrain(&cfg, &be, on_step, &cs, &res);
    fr_backend_close(&be);
    fr_progress_finish(&cs.prog);
    double dt = fr_now_seconds() - t0;
    if (st != FR_OK) return fr_cli_error("pretrain", "%s", fr_last_error());
    char dur[32];
    printf("done: %lld steps in %s (%.3g steps/s), final loss %.6g (mean of the last %lld: %.6g)\n",
           (long long)(res.steps_done - res.first_step), fr_format_duration(dt, dur, sizeof dur),
           dt > 0 ? (double)(res.steps_done - res.first_step) / dt : 0.0, (double)res.final_loss,
           (long long)(res.steps_done - res.first_step < 100 ? res.steps_done - res.first_step : 100),
           (double)res.tail_loss);
    printf("checkpoint: %s (step %lld)\n", cfg.out, (long long)res.steps_done);
    if (fflush(stdout) != 0 || ferror(stdout)) return fr_cli_error("pretrain", "writing to stdout failed");
    return 0;
}
