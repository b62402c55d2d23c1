/* flowrl pretrain: train a base model on a built-in task (flowrl/pretrain.h) and write a
 * safetensors checkpoint (flowrl/checkpoint.h). Run information goes to stdout, the
 * progress display to stderr (a bar on a terminal, plain lines otherwise). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void task_defaults(fr_pretrain_cfg *cfg, int steps_given)
{
    if (cfg->task && strcmp(cfg->task, "shapes") == 0 && !steps_given) cfg->steps = SHAPES_STEPS;
}

static void help(void)
{
    fr_pretrain_cfg d = fr_pretrain_defaults();
    printf("Usage: flowrl pretrain --task gmm2d|shapes --out FILE [options]\n\n"
           "Trains the conditional MLP base model of a built-in task from scratch:\n"
           "rectified flow (x = (1-s) x0 + s eps, target eps - x0, input t = 1000 s) or, with\n"
           "--pred epsilon, DDPM (x = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, target eps).\n"
           "Every random number is a function of (seed, step, sample): the same command\n"
           "writes the same checkpoint bytes, on any backend and thread count.\n\n"
           "The checkpoint holds the weights, ema.* (EMA weights), optim.m.* / optim.v.*\n"
           "(AdamW moments) and metadata (flowrl.version, task, preset, step, seed,\n"
           "pretrain.* options, model.* config); --resume continues it bit for bit.\n\n"
           "Options (default):\n"
           "  --task NAME          gmm2d or shapes (required)\n"
           "  --out FILE           checkpoint path (required)\n"
           "  --preset P           model preset: gmm2d-s, shapes-s, shapes-m (gmm2d-s for\n"
           "                       gmm2d, shapes-s for shapes; the shapes presets predict\n"
           "                       x0 and return the velocity it implies, model.head x0)\n"
           "  --hidden H, --ffn F, --blocks N\n"
           "                       override the preset's residual width, block MLP width\n"
           "                       and block count (the model's preset becomes \"custom\")\n"
           "  --steps N            optimizer steps (%lld; shapes: %d)\n"
           "  --batch B            samples per step (%lld)\n"
           "  --seed S             init, data and noise seed, 0..2^32-1 (%u)\n"
           "  --pred P             velocity (rectified flow) or epsilon (DDPM) (velocity)\n"
           "  --lr LR              peak learning rate (%g)\n"
           "  --lr-min LR          final learning rate of the cosine decay (%g)\n"
           "  --warmup N           linear warm-up steps (min(100, steps/10))\n"
           "  --schedule S         cosine or constant, after the warm-up (cosine)\n"
           "  --weight-decay W     AdamW weight decay (%g); betas (%g, %g), eps %g\n"
           "  --clip C             max global gradient norm, 0 = off (%g)\n"
           "  --ema DECAY          EMA decay of the weights, with warm-up\n"
           "                       min(DECAY, (1+k)/(10+k)) (%g)\n"
           "  --sigma S            uniform or logit-normal sigma sampling (logit-normal)\n"
           "  --logit-mean M       logit-normal location (%g)\n"
           "  --logit-std S        logit-normal scale (%g)\n"
           "  --cfg-dropout P      probability of the null condition, for CFG (%g)\n"
           "  --betas B            epsilon: linear (1e-4..0.02) or scaled_linear\n"
           "                       (0.00085..0.012) DDPM betas over 1000 steps (linear)\n"
           "  --save-every N       also write OUT-stepNNNNNN.safetensors every N steps (off)\n"
           "  --resume FILE        continue from a checkpoint of the same command\n"
           "  --backend NAME       op backend: ref or opt (opt if built in, else ref)\n"
           "  --fast               opt with OpenBLAS/oneDNN kernels (not bitwise equal to ref)\n"
           "  --threads N          opt threads, 0 = all CPUs (0); ref runs on one thread\n"
           "  --progress MODE      auto, tty, plain or off (auto: a bar on a terminal)\n"
           "  --log-every N        plain mode: a line every N steps, and every 10 s (100)\n"
           "  -h, --help           this text\n",
           (long long)d.steps, SHAPES_STEPS, (long long)d.batch, d.seed, (double)d.lr, (double)d.lr_min,
           (double)d.weight_decay, (double)d.beta1, (double)d.beta2, (double)d.adam_eps,
           (double)d.clip, (double)d.ema, (double)d.logit_mean, (double)d.logit_std,
           (double)d.cfg_dropout);
}

static int usage_err(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "flowrl pretrain: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, " (flowrl pretrain --help)\n");
    return 2;
}

static int parse_i64(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_f(const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

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
    if (fr_cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    fr_pretrain_cfg cfg = fr_pretrain_defaults();
    const char *backend = NULL; /* the fastest bitwise backend built in */
    int fast = 0;
    long long threads = 0, log_every = 100;
    fr_progress_mode pmode = FR_PROGRESS_AUTO;
    int steps_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (o[0] != '-') return usage_err("unexpected argument '%s'%s", o, "");
        if (strcmp(o, "--fast") == 0) {
            fast = 1;
            continue;
        }
        if (i + 1 >= argc) return usage_err("option '%s' needs a value%s", o, "");
        const char *v = argv[++i];
        long long n;
        float f;
        int ok = 1;
        if (strcmp(o, "--task") == 0) cfg.task = v;
        else if (strcmp(o, "--out") == 0) cfg.out = v;
        else if (strcmp(o, "--preset") == 0) cfg.preset = v;
        else if (strcmp(o, "--resume") == 0) cfg.resume = v;
        else if (strcmp(o, "--backend") == 0) backend = v;
        else if (strcmp(o, "--steps") == 0) ok = parse_i64(v, 1, 100000000, &n) && (cfg.steps = n, steps_given = 1);
        else if (strcmp(o, "--batch") == 0) ok = parse_i64(v, 1, 65536, &n) && (cfg.batch = n, 1);
        else if (strcmp(o, "--seed") == 0) ok = parse_i64(v, 0, UINT32_MAX, &n) && (cfg.seed = (uint32_t)n, 1);
        else if (strcmp(o, "--hidden") == 0) ok = parse_i64(v, 1, 65536, &n) && (cfg.H = n, 1);
        else if (strcmp(o, "--ffn") == 0) ok = parse_i64(v, 1, 65536, &n) && (cfg.F = n, 1);
        else if (strcmp(o, "--blocks") == 0) ok = parse_i64(v, 0, FR_MODEL_MAX_BLOCKS, &n) && (cfg.n_blocks = n, 1);
        else if (strcmp(o, "--warmup") == 0) ok = parse_i64(v, 0, 100000000, &n) && (cfg.warmup = n, 1);
        else if (strcmp(o, "--save-every") == 0) ok = parse_i64(v, 0, 100000000, &n) && (cfg.save_every = n, 1);
        else if (strcmp(o, "--threads") == 0) ok = parse_i64(v, 0, 4096, &threads);
        else if (strcmp(o, "--log-every") == 0) ok = parse_i64(v, 1, 100000000, &log_every);
        else if (strcmp(o, "--lr") == 0) ok = parse_f(v, &f) && f > 0.0f && f <= 10.0f && (cfg.lr = f, 1);
        else if (strcmp(o, "--lr-min") == 0) ok = parse_f(v, &f) && f >= 0.0f && (cfg.lr_min = f, 1);
        else if (strcmp(o, "--weight-decay") == 0) ok = parse_f(v, &f) && f >= 0.0f && f <= 1.0f && (cfg.weight_decay = f, 1);
        else if (strcmp(o, "--clip") == 0) ok = parse_f(v, &f) && f >= 0.0f && (cfg.clip = f, 1);
        else if (strcmp(o, "--ema") == 0) ok = parse_f(v, &f) && f >= 0.0f && f < 1.0f && (cfg.ema = f, 1);
        else if (strcmp(o, "--logit-mean") == 0) ok = parse_f(v, &f) && fabsf(f) <= 10.0f && (cfg.logit_mean = f, 1);
        else if (strcmp(o, "--logit-std") == 0) ok = parse_f(v, &f) && f >= 0.0f && f <= 10.0f && (cfg.logit_std = f, 1);
        else if (strcmp(o, "--cfg-dropout") == 0) ok = parse_f(v, &f) && f >= 0.0f && f < 1.0f && (cfg.cfg_dropout = f, 1);
        else if (strcmp(o, "--pred") == 0) ok = fr_pred_from_name(v, &cfg.pred);
        else if (strcmp(o, "--sigma") == 0) {
            if (strcmp(v, "uniform") == 0) cfg.sigma = FR_SIGMA_UNIFORM;
            else if (strcmp(v, "logit-normal") == 0) cfg.sigma = FR_SIGMA_LOGIT_NORMAL;
            else ok = 0;
        } else if (strcmp(o, "--schedule") == 0) {
            if (strcmp(v, "cosine") == 0) cfg.schedule = FR_LR_COSINE;
            else if (strcmp(v, "constant") == 0) cfg.schedule = FR_LR_CONSTANT;
            else ok = 0;
        } else if (strcmp(o, "--betas") == 0) {
            if (strcmp(v, "linear") == 0) cfg.betas = FR_BETAS_LINEAR;
            else if (strcmp(v, "scaled_linear") == 0) cfg.betas = FR_BETAS_SCALED_LINEAR;
            else ok = 0;
        } else if (strcmp(o, "--progress") == 0) {
            if (strcmp(v, "auto") == 0) pmode = FR_PROGRESS_AUTO;
            else if (strcmp(v, "tty") == 0) pmode = FR_PROGRESS_TTY;
            else if (strcmp(v, "plain") == 0) pmode = FR_PROGRESS_PLAIN;
            else if (strcmp(v, "off") == 0) pmode = FR_PROGRESS_OFF;
            else ok = 0;
        } else {
            return usage_err("unknown option '%s'%s", o, "");
        }
        if (!ok) return usage_err("bad value '%s' for %s", v, o);
    }
    if (!cfg.task) return usage_err("--task is required%s%s", "", "");
    if (!cfg.out) return usage_err("--out is required%s%s", "", "");
    task_defaults(&cfg, steps_given);

    /* option values the library rejects (unknown task or preset, lr_min > lr, ...) are
     * usage errors too: nothing has run yet */
    fr_model_config mc;
    if (fr_pretrain_model_config(&cfg, &mc) != FR_OK) {
        fprintf(stderr, "flowrl pretrain: %s (flowrl pretrain --help)\n", fr_last_error());
        return 2;
    }
    const fr_ops *ops;
    int n_threads = 1;
    int brc = fr_cli_backend("pretrain", backend, fast, (long)threads, &ops, &n_threads);
    if (brc) return brc;

    /* STYLE.md: backend, threads and mode at the top of every run */
    const fr_task *task;
    fr_task_get(cfg.task, &task);
    printf("flowrl %s pretrain: task %s (D %d, %d train prompts), preset %s, %s%s\n",
           fr_version(), cfg.task, task->D, task->n_train, mc.preset, fr_pred_name(cfg.pred),
           mc.head == FR_HEAD_X0 ? " (x0 head)" : "");
    char bline[128];
    fr_cli_backend_describe(ops, n_threads, bline, sizeof bline);
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
    fr_status st = fr_pretrain(&cfg, ops, on_step, &cs, &res);
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
