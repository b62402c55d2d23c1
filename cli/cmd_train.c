/* flowrl train --algo flow-grpo: online RL fine-tuning of a base checkpoint
 * (flowrl/grpo_train.h). Run information goes to stdout, one progress line per epoch to
 * stderr. SIGINT stops at the next epoch boundary with a checkpoint (exit status 130, the
 * shell's "interrupted"); a second SIGINT exits at once (the last checkpoint stays valid:
 * checkpoints are written to a temporary file and renamed). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/sampling_opts.h"
#include "flowrl/buildinfo.h"
#include "flowrl/grpo_train.h"
#include "flowrl/opt.h"
#include "flowrl/progress.h"
#include "flowrl/reward_cmd.h"

#define CMD "train"
#define EXIT_INTERRUPTED 130

static void help(void)
{
    fr_grpo_train_opts d = fr_grpo_train_defaults();
    printf("Usage: flowrl train --algo flow-grpo --base CKPT --out RUNDIR [options]\n"
           "       flowrl train --resume RUNDIR [--epochs N] [--backend NAME] [--fast] [--threads N]\n\n"
           "Flow-GRPO fine-tuning (spec/objectives.md 1.1, 2, 3): per epoch, P prompts x G samples\n"
           "rolled out with the SDE (or CPS) sampler over T training steps, scored by the task\n"
           "reward, group-normalised advantages, PPO-clip updates of every trained step with a\n"
           "KL penalty to the frozen base. Every random number is a function of (seed, epoch,\n"
           "sample, step): a run is bit-reproducible on any backend and thread count, and a\n"
           "resumed run writes the same audit.log as an uninterrupted one.\n\n"
           "RUNDIR: config.json, metrics.jsonl, audit.log, checkpoints/step-N.safetensors,\n"
           "samples/before.png + after.png, eval.json, curve.svg.\n\n"
           "Common options (default):\n"
           "  --algo NAME            flow-grpo (the only algorithm so far)\n"
           "  --base FILE            base checkpoint: policy init and KL reference (required)\n"
           "  --task NAME            gmm2d or shapes, for a checkpoint without 'task' metadata\n"
           "  --out RUNDIR           run directory (required; must not hold a run)\n"
           "  --resume RUNDIR        continue RUNDIR from its last checkpoint\n"
           "  --epochs N             epochs (%lld); with --resume: the new total\n"
           "  --seed S               key of every random stream (%u)\n"
           "  --backend NAME         ref or opt (opt if built in, else ref)\n"
           "  --fast                 opt with OpenBLAS/oneDNN kernels: run-to-run deterministic on one\n"
           "                         machine and thread count, not bitwise equal to ref\n"
           "  --threads N            opt threads, 0 = all CPUs (0)\n"
           "Sampling:\n"
           "  --reward R             a task reward (gmm2d: mode, halfplane; shapes: geneval) or\n"
           "                         cmd:PROGRAM (docs/reward-protocol.md) (the task's first)\n"
           "  --base-raw             start from the base's raw weights, not its ema.* weights\n"
           "  --sampler KIND         sde or cps (sde)\n"
           "  --steps T              training sampler steps (%lld); eval uses --eval-steps ODE\n"
           "  --grid G, --shift S    sigma grid diffusers|linear (diffusers), shift (%g)\n"
           "  --noise A              noise level a (%g; FG's fast/cps configs use 0.8)\n"
           "  --cfg G                guidance in rollouts (%g)\n"
           "  --train-cfg MODE       auto, on, off: recompute CFG in training (auto: on iff cfg != 1)\n"
           "  --prompts P            prompts per epoch (%lld)\n"
           "  --group G              samples per prompt (%lld)\n"
           "  --batch B              rows per model forward in rollouts and eval (%lld)\n"
           "Trained steps:\n"
           "  --timestep-fraction F  train steps 0..int(T*F)-1 (%g)\n"
           "  --window W             none, fast (Flow-GRPO-Fast random SDE window) or mix\n"
           "                         (MixGRPO progressive window) (none)\n"
           "  --fast-window W        fast: window length, 0 = steps 0..T-2 (%lld)\n"
           "  --fast-range LO,HI     fast: start drawn from LO..HI-W (0,T/2)\n"
           "  --mix-window W         mix: window length (%lld)\n"
           "  --mix-iters N          mix: epochs before the window moves one step (%lld)\n"
           "Objective:\n"
           "  --guard MODE           off, batch (GRPO-Guard as the public code: one batch-wide\n"
           "                         bias) or sample (per-sample bias) (off)\n"
           "  --clip-range E         PPO clip range (%g; FG 1e-4)\n"
           "  --adv-clip C           advantage clamp (%g)\n"
           "  --beta B               KL weight (%g)\n"
           "  --kl-form F            code (FG: no dt) or paper (with dt) (code)\n"
           "  --adv KIND             prompt (per-prompt tracker), batch or ddpo (prompt)\n"
           "  --global-std on|off    prompt tracker: std over the whole batch (on)\n"
           "  --ddpo-buffer N        ddpo: history per prompt (%lld)\n"
           "  --ddpo-min-count N     ddpo: batch statistics below this history (%lld)\n"
           "Optimisation:\n"
           "  --num-batches N        batches per epoch (%lld)\n"
           "  --grad-accum N         batches per optimizer step (%lld)\n"
           "  --lr LR                AdamW learning rate (%g)\n"
           "  --adam-beta1 B, --adam-beta2 B, --adam-eps E, --weight-decay W  (%g, %g, %g, %g)\n"
           "  --max-grad-norm C      global gradient-norm clip, 0 = off (%g)\n"
           "  --ema DECAY|off        EMA of the weights for evaluation (off; FG 0.9)\n"
           "  --ema-every K          EMA update every K optimizer steps (%lld)\n"
           "Output:\n"
           "  --eval-steps N         ODE steps of the held-out evaluation (%lld)\n"
           "  --eval-n N             samples per held-out prompt, 0 = no evaluation (%lld)\n"
           "  --keep-checkpoints K   keep the last K checkpoints, 0 = all (%lld)\n"
           "  -h, --help             this text\n\n"
           "Defaults are sized for a CPU (the public SD3 configs use 48 prompts x 24 samples).\n"
           "Interrupt (Ctrl-C): stops after the current epoch with a checkpoint, exit status 130;\n"
           "continue with flowrl train --resume RUNDIR.\n",
           (long long)d.epochs, d.seed, (long long)d.T, d.shift, (double)d.noise, (double)d.cfg, (long long)d.P,
           (long long)d.G, (long long)d.rollout_batch, d.timestep_fraction, (long long)d.fast_w, (long long)d.mix_w,
           (long long)d.mix_iters, d.clip_range, (double)d.adv_clip, (double)d.beta, (long long)d.ddpo_buffer,
           (long long)d.ddpo_min_count, (long long)d.num_batches, (long long)d.grad_accum, (double)d.lr,
           (double)d.beta1, (double)d.beta2, (double)d.adam_eps, (double)d.weight_decay, (double)d.max_grad_norm,
           (long long)d.ema_every, (long long)d.eval_steps, (long long)d.eval_n, (long long)d.keep_checkpoints);
}

/* ---- signals ----------------------------------------------------------------------------- */

static volatile sig_atomic_t g_stop = 0;

static void on_sigint(int sig)
{
    (void)sig;
    if (g_stop) _exit(EXIT_INTERRUPTED);
    g_stop = 1;
    static const char msg[] = "\nflowrl train: interrupt: stopping after this epoch (interrupt again to quit now)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

/* ---- callbacks --------------------------------------------------------------------------- */

typedef struct {
    double t0;
    int64_t first;
} cli_state;

static void on_info(const char *line, void *user)
{
    (void)user;
    printf("%s\n", line);
    fflush(stdout);
}

static int on_epoch(const fr_train_epoch_event *ev, void *user)
{
    cli_state *cs = user;
    if (cs->first < 0) {
        /* the first epoch of this process (a resumed run starts later) */
        cs->first = ev->epoch - 1;
        cs->t0 = fr_now_seconds() - ev->seconds;
    }
    double el = fr_now_seconds() - cs->t0;
    int64_t done = ev->epoch - cs->first;
    double eta = done > 0 ? el / (double)done * (double)(ev->epochs - ev->epoch) : 0.0;
    char es[32], ts[32];
    fr_format_duration(eta, es, sizeof es);
    fr_format_duration(ev->seconds, ts, sizeof ts);
    char acc[16];
    if (isfinite(ev->accuracy))
        snprintf(acc, sizeof acc, "%5.1f%%", 100.0 * ev->accuracy);
    else
        snprintf(acc, sizeof acc, "  -  ");
    fprintf(stderr,
            "epoch %lld/%lld  reward %.4f (std %.3f)  acc %s  kl %.3g  clipfrac %.3f  ratio [%.6g, %.6g]  kept "
            "%lld/%lld  %s  ETA %s\n",
            (long long)ev->epoch, (long long)ev->epochs, (double)ev->reward_mean, (double)ev->reward_std, acc,
            (double)ev->kl, (double)ev->clipfrac, (double)ev->ratio_min, (double)ev->ratio_max, (long long)ev->kept,
            (long long)ev->n_samples, ts, es);
    return 0;
}

/* ---- options ----------------------------------------------------------------------------- */

typedef struct {
    const char *algo, *base, *task, *reward, *out, *resume, *epochs, *seed, *backend, *threads, *sampler, *steps,
        *grid, *shift, *noise, *cfg, *train_cfg, *prompts, *group, *batch, *tfrac, *window, *fast_w, *fast_range,
        *mix_w, *mix_iters, *guard, *clip, *adv_clip, *beta, *kl_form, *adv, *global_std, *ddpo_buffer, *ddpo_min,
        *num_batches, *grad_accum, *lr, *b1, *b2, *eps, *wd, *gn, *ema, *ema_every, *eval_steps, *eval_n, *keep;
    int base_raw, fast;
} args;

static int set_enum(const char *opt, const char *v, fr_status (*parse)(const char *, int *), int *out)
{
    if (!v) return 0;
    if (parse(v, out) != FR_OK) {
        fr_cli_error(CMD, "%s: %s", opt, fr_last_error());
        return 2;
    }
    return 0;
}

#define ENUM_PARSER(fn, type)                                                                 \
    static fr_status parse_##fn(const char *s, int *v)                                        \
    {                                                                                         \
        type x;                                                                               \
        FR_TRY(fr_##fn##_from_name(s, &x));                                                   \
        *v = (int)x;                                                                          \
        return FR_OK;                                                                         \
    }
ENUM_PARSER(sampler, fr_sampler_kind)
ENUM_PARSER(grid, fr_grid)
ENUM_PARSER(train_window, fr_train_window)
ENUM_PARSER(train_guard, fr_train_guard)
ENUM_PARSER(kl_form, fr_kl_form)
ENUM_PARSER(train_adv, fr_train_adv)

static int i64(const char *opt, const char *v, long lo, long hi, int64_t *out)
{
    long x;
    if (!v) return 0;
    if (fr_cli_long(CMD, opt, v, lo, hi, &x)) return 2;
    *out = x;
    return 0;
}

static int f32(const char *opt, const char *v, double lo, double hi, float *out)
{
    return v ? fr_cli_float(CMD, opt, v, lo, hi, out) : 0;
}

static int f64(const char *opt, const char *v, double lo, double hi, double *out)
{
    return v ? fr_cli_double(CMD, opt, v, lo, hi, out) : 0;
}

static int onoff(const char *opt, const char *v, int allow_auto, int *out)
{
    if (!v) return 0;
    if (strcmp(v, "on") == 0) *out = 1;
    else if (strcmp(v, "off") == 0) *out = 0;
    else if (allow_auto && strcmp(v, "auto") == 0) *out = -1;
    else {
        fr_cli_error(CMD, "%s '%s': expected on%s or off", opt, v, allow_auto ? ", auto" : "");
        return 2;
    }
    return 0;
}

static int copy_str(const char *opt, const char *v, char *dst, size_t cap)
{
    if (!v) return 0;
    if (strlen(v) >= cap) {
        fr_cli_error(CMD, "%s: value too long", opt);
        return 2;
    }
    snprintf(dst, cap, "%s", v);
    return 0;
}

static int build_opts(const args *a, fr_grpo_train_opts *o)
{
    int e = 0, v;
    e = e || copy_str("--base", a->base, o->base, sizeof o->base);
    e = e || copy_str("--task", a->task, o->task, sizeof o->task);
    e = e || copy_str("--reward", a->reward, o->reward, sizeof o->reward);
    e = e || copy_str("--out", a->out, o->out, sizeof o->out);
    o->base_raw = a->base_raw;
    e = e || i64("--epochs", a->epochs, 1, 100000000, &o->epochs);
    int64_t seed = o->seed;
    e = e || i64("--seed", a->seed, 0, (long)UINT32_MAX, &seed);
    o->seed = (uint32_t)seed;
    v = (int)o->sampler;
    e = e || set_enum("--sampler", a->sampler, parse_sampler, &v);
    o->sampler = (fr_sampler_kind)v;
    e = e || i64("--steps", a->steps, 2, 10000, &o->T);
    v = (int)o->grid;
    e = e || set_enum("--grid", a->grid, parse_grid, &v);
    o->grid = (fr_grid)v;
    e = e || f64("--shift", a->shift, 1e-6, 1e6, &o->shift);
    e = e || f32("--noise", a->noise, 0.0, 100.0, &o->noise);
    e = e || f32("--cfg", a->cfg, -1e6, 1e6, &o->cfg);
    e = e || onoff("--train-cfg", a->train_cfg, 1, &o->train_cfg);
    e = e || i64("--prompts", a->prompts, 1, 4096, &o->P);
    e = e || i64("--group", a->group, 1, 4096, &o->G);
    e = e || i64("--batch", a->batch, 1, 1L << 20, &o->rollout_batch);
    e = e || f64("--timestep-fraction", a->tfrac, 0.0, 1.0, &o->timestep_fraction);
    v = (int)o->window;
    e = e || set_enum("--window", a->window, parse_train_window, &v);
    o->window = (fr_train_window)v;
    e = e || i64("--fast-window", a->fast_w, 0, 10000, &o->fast_w);
    if (!e && a->fast_range) {
        long lo, hi;
        char extra;
        if (sscanf(a->fast_range, "%ld,%ld%c", &lo, &hi, &extra) != 2 || lo < 0 || hi < lo || hi > 10000) {
            fr_cli_error(CMD, "--fast-range '%s': expected LO,HI with 0 <= LO <= HI", a->fast_range);
            e = 2;
        } else {
            o->fast_r0 = lo;
            o->fast_r1 = hi;
        }
    }
    e = e || i64("--mix-window", a->mix_w, 1, 10000, &o->mix_w);
    e = e || i64("--mix-iters", a->mix_iters, 1, 100000000, &o->mix_iters);
    v = (int)o->guard;
    e = e || set_enum("--guard", a->guard, parse_train_guard, &v);
    o->guard = (fr_train_guard)v;
    e = e || f64("--clip-range", a->clip, 1e-12, 1.0, &o->clip_range);
    e = e || f32("--adv-clip", a->adv_clip, 1e-6, 1e30, &o->adv_clip);
    e = e || f32("--beta", a->beta, 0.0, 1e6, &o->beta);
    v = (int)o->kl_form;
    e = e || set_enum("--kl-form", a->kl_form, parse_kl_form, &v);
    o->kl_form = (fr_kl_form)v;
    v = (int)o->adv;
    e = e || set_enum("--adv", a->adv, parse_train_adv, &v);
    o->adv = (fr_train_adv)v;
    e = e || onoff("--global-std", a->global_std, 0, &o->global_std);
    e = e || i64("--ddpo-buffer", a->ddpo_buffer, 1, 65536, &o->ddpo_buffer);
    e = e || i64("--ddpo-min-count", a->ddpo_min, 0, 65536, &o->ddpo_min_count);
    e = e || i64("--num-batches", a->num_batches, 1, 1L << 20, &o->num_batches);
    e = e || i64("--grad-accum", a->grad_accum, 1, 1L << 20, &o->grad_accum);
    e = e || f32("--lr", a->lr, 1e-30, 10.0, &o->lr);
    e = e || f32("--adam-beta1", a->b1, 0.0, 0.999999, &o->beta1);
    e = e || f32("--adam-beta2", a->b2, 0.0, 0.999999999, &o->beta2);
    e = e || f32("--adam-eps", a->eps, 1e-30, 1.0, &o->adam_eps);
    e = e || f32("--weight-decay", a->wd, 0.0, 1.0, &o->weight_decay);
    e = e || f32("--max-grad-norm", a->gn, 0.0, 1e30, &o->max_grad_norm);
    if (!e && a->ema) {
        if (strcmp(a->ema, "off") == 0)
            o->ema = -1.0f;
        else
            e = fr_cli_float(CMD, "--ema", a->ema, 0.0, 0.999999, &o->ema);
    }
    e = e || i64("--ema-every", a->ema_every, 1, 100000000, &o->ema_every);
    e = e || i64("--eval-steps", a->eval_steps, 1, 10000, &o->eval_steps);
    e = e || i64("--eval-n", a->eval_n, 0, 4096, &o->eval_n);
    e = e || i64("--keep-checkpoints", a->keep, 0, 100000000, &o->keep_checkpoints);
    return e ? 2 : 0;
}

int cmd_train(int argc, char **argv)
{
    if (fr_cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    args a;
    memset(&a, 0, sizeof a);
    const fr_cli_opt opts[] = {
        {"--algo", &a.algo, NULL},           {"--base", &a.base, NULL},
        {"--task", &a.task, NULL},           {"--reward", &a.reward, NULL},
        {"--out", &a.out, NULL},             {"--resume", &a.resume, NULL},
        {"--epochs", &a.epochs, NULL},       {"--seed", &a.seed, NULL},
        {"--backend", &a.backend, NULL},     {"--threads", &a.threads, NULL},
        {"--sampler", &a.sampler, NULL},     {"--steps", &a.steps, NULL},
        {"--grid", &a.grid, NULL},           {"--shift", &a.shift, NULL},
        {"--noise", &a.noise, NULL},         {"--cfg", &a.cfg, NULL},
        {"--train-cfg", &a.train_cfg, NULL}, {"--prompts", &a.prompts, NULL},
        {"--group", &a.group, NULL},         {"--batch", &a.batch, NULL},
        {"--timestep-fraction", &a.tfrac, NULL}, {"--window", &a.window, NULL},
        {"--fast-window", &a.fast_w, NULL},  {"--fast-range", &a.fast_range, NULL},
        {"--mix-window", &a.mix_w, NULL},    {"--mix-iters", &a.mix_iters, NULL},
        {"--guard", &a.guard, NULL},         {"--clip-range", &a.clip, NULL},
        {"--adv-clip", &a.adv_clip, NULL},   {"--beta", &a.beta, NULL},
        {"--kl-form", &a.kl_form, NULL},     {"--adv", &a.adv, NULL},
        {"--global-std", &a.global_std, NULL}, {"--ddpo-buffer", &a.ddpo_buffer, NULL},
        {"--ddpo-min-count", &a.ddpo_min, NULL}, {"--num-batches", &a.num_batches, NULL},
        {"--grad-accum", &a.grad_accum, NULL}, {"--lr", &a.lr, NULL},
        {"--adam-beta1", &a.b1, NULL},       {"--adam-beta2", &a.b2, NULL},
        {"--adam-eps", &a.eps, NULL},        {"--weight-decay", &a.wd, NULL},
        {"--max-grad-norm", &a.gn, NULL},    {"--ema", &a.ema, NULL},
        {"--ema-every", &a.ema_every, NULL}, {"--eval-steps", &a.eval_steps, NULL},
        {"--eval-n", &a.eval_n, NULL},       {"--keep-checkpoints", &a.keep, NULL},
        {"--base-raw", NULL, &a.base_raw}, {"--fast", NULL, &a.fast},
    };
    if (fr_cli_parse_opts(CMD, argc, argv, opts, (int)(sizeof opts / sizeof opts[0]))) return 2;
    if (a.algo && strcmp(a.algo, "flow-grpo") != 0)
        return fr_cli_error(CMD, "--algo '%s': known algorithms: flow-grpo", a.algo), 2;

    fr_grpo_train_opts o = fr_grpo_train_defaults();
    int64_t epochs = 0;
    if (a.resume) {
        /* config.json holds every option; only the run length and the machine may change */
        for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
            const char *n = opts[i].name;
            int given = opts[i].value ? *opts[i].value != NULL : *opts[i].flag != 0;
            if (given && strcmp(n, "--resume") && strcmp(n, "--epochs") && strcmp(n, "--backend") &&
                strcmp(n, "--fast") && strcmp(n, "--threads") && strcmp(n, "--algo"))
                return fr_cli_error(CMD, "%s cannot be combined with --resume (the run's config.json fixes it)", n), 2;
        }
        if (i64("--epochs", a.epochs, 1, 100000000, &epochs)) return 2;
    } else {
        if (build_opts(&a, &o)) return 2;
        if (!o.base[0]) return fr_cli_error(CMD, "--base is required (flowrl train --help)"), 2;
        if (!o.out[0]) return fr_cli_error(CMD, "--out is required (flowrl train --help)"), 2;
        if (fr_grpo_train_check(&o) != FR_OK) return fr_cli_error(CMD, "%s (flowrl train --help)", fr_last_error()), 2;
    }
    long threads = 0;
    if (a.threads && fr_cli_long(CMD, "--threads", a.threads, 0, 4096, &threads)) return 2;
    const fr_ops *ops;
    int n_threads;
    int rc = fr_cli_backend(CMD, a.backend, a.fast, threads, &ops, &n_threads);
    if (rc) return rc;

    /* STYLE.md: backend, threads and mode at the top of every run */
    printf("flowrl %s train --algo flow-grpo: %s %s\n", fr_version(), a.resume ? "resuming" : "run",
           a.resume ? a.resume : o.out);
    char line[128];
    fr_cli_backend_describe(ops, n_threads, line, sizeof line);
    printf("%s\n", line);
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    cli_state cs = {0.0, -1};
    fr_grpo_train_cb cb = {on_epoch, NULL, on_info, &cs, &g_stop};
    fr_grpo_train_result res;
    fr_status st;
    const char *dir = a.resume ? a.resume : o.out;
    if (a.resume) {
        st = fr_grpo_train_resume(a.resume, epochs, ops, n_threads, &cb, &res);
    } else {
        st = fr_grpo_train_run(&o, ops, n_threads, &cb, &res);
    }
    if (st != FR_OK) return fr_cli_error(CMD, "%s", fr_last_error());
    if (res.interrupted) {
        printf("interrupted after epoch %lld: checkpoint %s/checkpoints/step-%lld.safetensors; continue with "
               "flowrl train --resume %s\n",
               (long long)res.epochs_done, dir, (long long)res.epochs_done, dir);
        fflush(stdout);
        return EXIT_INTERRUPTED;
    }
    printf("done: %lld epochs (%lld in this run)\n", (long long)res.epochs_done,
           (long long)(res.epochs_done - res.first_epoch));
    if (res.have_after)
        printf("held-out accuracy: before %.1f%%, after %.1f%%; mean reward: before %.4f, after %.4f (%s/eval.json)\n",
               100.0 * res.acc_before, 100.0 * res.acc_after, res.score_before, res.score_after, dir);
    if (fflush(stdout) != 0 || ferror(stdout)) return fr_cli_error(CMD, "writing to stdout failed");
    return 0;
}
