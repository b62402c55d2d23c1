/* flowrl eval: GenEval-style accuracy per prompt kind on a split (flowrl/evaluate.h). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/sampling_opts.h"
#include "flowrl/reward_cmd.h"

typedef struct {
    fr_split split;
    int64_t n;
    char reward[1024];
    int json;
    char kl_ref[FR_OPT_PATH_MAX];
    int64_t kl_steps;
    float kl_noise;
    float x0_clip;
} eval_opts;

static const fr_opt k_rows[] = {
    FR_OPT_ENUM(eval_opts, split, "split", "eval", fr_split_names, "eval (the held-out prompts) or train", 0),
    FR_OPT_I64(eval_opts, n, "n", "16", 1, FR_EVAL_MAX_N, "samples per prompt", 0),
    FR_OPT_ROW_(eval_opts, reward, "reward", FR_OPT_STR, "", 0, 0, NULL,
                "the task's reward NAME (default: its first), or cmd:PROGRAM, an external reward program "
                "(docs/reward-protocol.md; no accuracy then)",
                0, NULL, "NAME"),
    FR_OPT_BOOL(eval_opts, json, "json", "false", "print one JSON object on stdout instead of the table", 0),
    FR_OPT_ROW_(eval_opts, kl_ref, "kl_ref", FR_OPT_STR, "", 0, 0, NULL,
                "also the KL of the checkpoint to the reference CKPT (e.g. the base; its EMA weights where it has "
                "them): nats per sample of the SDE path measures (below)",
                0, NULL, "CKPT"),
    FR_OPT_I64(eval_opts, kl_steps, "kl_steps", "10", 1, 100000, "SDE steps of the --kl-ref rollout", 0),
    FR_OPT_F32(eval_opts, kl_noise, "kl_noise_level", "0.7", 1e-6, 1e6, "SDE noise level a of the --kl-ref rollout",
               0),
    FR_OPT_F32(eval_opts, x0_clip, "x0_clip", "0", 0, 1e6,
               "ddim: clamp x0-hat to [-X, X] in every step (diffusers' clip_sample with clip_sample_range X, DDPM's "
               "clip_denoised at 1); 0 = none, Stable Diffusion's and DDPO's setting",
               0),
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: flowrl eval --ckpt FILE [--task NAME] [--split eval|train] [--n N] [--json]\n"
            "                   [--reward NAME|cmd:PROGRAM] [sampler options]\n\n"
            "Draws N samples for every prompt of the split (default: the held-out eval prompts),\n"
            "scores them with the task's reward and prints the accuracy (share of samples judged\n"
            "correct) and mean score per prompt kind and overall.\n"
            "Seeds are fixed (key --seed, default 0x%08x, domain 0x%08x, sample id = prompt * %d + k),\n"
            "independent of the training seed: every checkpoint sees the same noise, the first k\n"
            "samples of a prompt do not change with N, and nothing depends on --rollout-batch.\n"
            "diversity: per prompt the mean over pairs of its N samples of ||x_i - x_j|| / sqrt(D) (the\n"
            "RMS per-value distance of the reward's inputs), averaged over the prompts of a kind.\n"
            "--kl-ref CKPT: KL(p_ckpt || p_ref) of the discretised path measures under Flow-GRPO's SDE\n"
            "sampler (--kl-steps, --kl-noise-level, --grid, --shift, --cfg; the training defaults):\n"
            "both chains step x_{t+1} ~ N(mu(x_t), sigma_t^2 I) with the same sigma_t, so\n"
            "KL = E_{x ~ p_ckpt} sum_t sum_d (mu_ckpt(x_t) - mu_ref(x_t))^2 / (2 sigma_t^2), estimated on the\n"
            "same prompts x N samples and seeds (the checkpoint's rollout, the reference's mean at each\n"
            "x_t); reported in nats per sample (kl) and per dimension (kl/dim = kl / D).\n"
            "Example: flowrl eval --ckpt shapes.safetensors --task shapes --sampler ode --num-steps 40\n"
            "         flowrl eval --ckpt run/checkpoints/step-20.safetensors --kl-ref shapes_base.safetensors\n",
            FR_EVAL_SEED, FR_ROLLOUT_C0_EVAL, FR_EVAL_MAX_N);
}

/* The score hook of fr_eval_opts for an external reward program. */
typedef struct {
    fr_reward_cmd *rc;
    const fr_task *t;
} program_reward;

static fr_status score_by_program(void *user, uint32_t batch, int B, const int *pid, const float *x, float *score)
{
    program_reward *p = user;
    return fr_reward_cmd_score_task(p->rc, p->t, batch, B, pid, x, score);
}

static double safe_div(double a, double b) { return b > 0 ? a / b : 0.0; }

/* has_correct 0 (an external reward): "correct" and "accuracy" are null */
/* kl < 0 (no --kl-ref): no KL fields */
static cJSON *stats_json(int64_t samples, int64_t correct, double score, int prompts, int has_correct, double diversity,
                         double kl, int64_t D)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "prompts", prompts);
    cJSON_AddNumberToObject(o, "samples", (double)samples);
    if (has_correct) {
        cJSON_AddNumberToObject(o, "correct", (double)correct);
        cJSON_AddNumberToObject(o, "accuracy", safe_div((double)correct, (double)samples));
    } else {
        cJSON_AddNullToObject(o, "correct");
        cJSON_AddNullToObject(o, "accuracy");
    }
    cJSON_AddNumberToObject(o, "mean_score", samples > 0 ? score : 0.0);
    cJSON_AddNumberToObject(o, "diversity", diversity);
    if (kl >= 0.0) {
        cJSON_AddNumberToObject(o, "kl", kl);
        cJSON_AddNumberToObject(o, "kl_per_dim", kl / (double)D);
    }
    return o;
}

/* The --kl-ref reference and its sampler. */
typedef struct {
    const char *ckpt;
    fr_infer_ckpt ck;
    int loaded;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
} kl_ref;

static int print_json(const fr_cli_sampling *s, const char *backend, const char *sampler, const fr_eval_opts *o,
                      const char *reward, const fr_eval_result *r, double seconds, const char *ckpt, const kl_ref *kl)
{
    const fr_task *t = s->ck.task;
    cJSON *root = cJSON_CreateObject();
    if (!root) return fr_cli_error("eval", "out of memory");
    cJSON_AddStringToObject(root, "ckpt", ckpt);
    cJSON_AddStringToObject(root, "task", t->name);
    cJSON_AddStringToObject(root, "preset", s->ck.model.cfg.preset);
    cJSON_AddBoolToObject(root, "ema", s->ck.ema);
    cJSON_AddStringToObject(root, "backend", s->be.name);
    cJSON_AddStringToObject(root, "backend_line", backend);
    cJSON_AddStringToObject(root, "sampler", fr_sampler_name(s->rc.kind));
    cJSON_AddStringToObject(root, "sampler_line", sampler);
    cJSON_AddNumberToObject(root, "steps", (double)s->rc.T);
    cJSON_AddNumberToObject(root, "cfg", s->rc.cfg);
    cJSON_AddNumberToObject(root, "noise", s->rc.noise);
    cJSON_AddNumberToObject(root, "x0_clip", s->rc.x0_clip);
    cJSON_AddStringToObject(root, "split", fr_split_name(o->split));
    cJSON_AddStringToObject(root, "reward", reward);
    const int has_correct = o->score == NULL;
    cJSON_AddNumberToObject(root, "n", o->n);
    cJSON_AddNumberToObject(root, "seed", o->seed);
    cJSON *groups = cJSON_AddObjectToObject(root, "groups");
    if (r->have_kl) {
        cJSON *k = cJSON_AddObjectToObject(root, "kl_ref");
        cJSON_AddStringToObject(k, "ckpt", kl->ckpt);
        cJSON_AddStringToObject(k, "sampler", fr_sampler_name(kl->rc.kind));
        cJSON_AddNumberToObject(k, "steps", (double)kl->rc.T);
        cJSON_AddNumberToObject(k, "noise", kl->rc.noise);
    }
    const int64_t D = t->D;
    for (int g = 0; groups && g < r->n_groups; g++)
        cJSON_AddItemToObject(groups, t->group_names[g],
                              stats_json(r->group_samples[g], r->group_correct[g], r->group_score[g],
                                         r->group_prompts[g], has_correct, r->group_diversity[g],
                                         r->have_kl ? r->group_kl[g] : -1.0, D));
    cJSON_AddItemToObject(root, "overall", stats_json(r->samples, r->correct, r->score, r->n_prompts, has_correct,
                                                      r->diversity, r->have_kl ? r->kl : -1.0, D));
    cJSON *prompts = cJSON_AddArrayToObject(root, "prompts");
    for (int i = 0; prompts && i < r->n_prompts; i++) {
        char text[FR_PROMPT_TEXT_MAX];
        if (t->prompt_text(r->prompt_ids[i], text, sizeof text) != FR_OK) text[0] = '\0';
        cJSON *p = cJSON_CreateObject();
        if (!p) break;
        cJSON_AddNumberToObject(p, "id", r->prompt_ids[i]);
        cJSON_AddStringToObject(p, "text", text);
        cJSON_AddStringToObject(p, "group", t->group_names[t->prompt_group(r->prompt_ids[i])]);
        if (has_correct) {
            cJSON_AddNumberToObject(p, "correct", r->prompt_correct[i]);
            cJSON_AddNumberToObject(p, "accuracy", (double)r->prompt_correct[i] / (double)r->n);
        }
        cJSON_AddNumberToObject(p, "mean_score", r->prompt_score[i]);
        cJSON_AddNumberToObject(p, "diversity", r->prompt_diversity[i]);
        if (r->have_kl) cJSON_AddNumberToObject(p, "kl", r->prompt_kl[i]);
        cJSON_AddItemToArray(prompts, p);
    }
    cJSON_AddNumberToObject(root, "seconds", seconds);
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) return fr_cli_error("eval", "out of memory writing JSON");
    printf("%s\n", txt);
    free(txt);
    return 0;
}

/* kl < 0: no KL columns */
static void table_row(const char *kind, int prompts, int64_t samples, int64_t correct, double score, int has_correct,
                      double diversity, double kl, int64_t D)
{
    if (has_correct)
        printf("%-12s %7d %8lld %8lld %8.1f%% %11.4f %10.4f", kind, prompts, (long long)samples, (long long)correct,
               100.0 * safe_div((double)correct, (double)samples), score, diversity);
    else /* an external reward: scores only */
        printf("%-12s %7d %8lld %8s %9s %11.4f %10.4f", kind, prompts, (long long)samples, "-", "-", score, diversity);
    if (kl >= 0.0) printf(" %11.5g %11.5g", kl, kl / (double)D);
    printf("\n");
}

static void print_table(const fr_cli_sampling *s, const fr_eval_result *r, int has_correct)
{
    const fr_task *t = s->ck.task;
    printf("%-12s %7s %8s %8s %9s %11s %10s", "kind", "prompts", "samples", "correct", "accuracy", "mean score",
           "diversity");
    if (r->have_kl) printf(" %11s %11s", "kl", "kl/dim");
    printf("\n");
    for (int g = 0; g < r->n_groups; g++)
        if (r->group_prompts[g] > 0)
            table_row(t->group_names[g], r->group_prompts[g], r->group_samples[g], r->group_correct[g],
                      r->group_score[g], has_correct, r->group_diversity[g], r->have_kl ? r->group_kl[g] : -1.0,
                      t->D);
    table_row("overall", r->n_prompts, r->samples, r->correct, r->score, has_correct, r->diversity,
              r->have_kl ? r->kl : -1.0, t->D);
}

/* Loads the --kl-ref checkpoint (its EMA weights where it has them, as `train --base` loads
 * the reference; --no-ema applies to --ckpt only) and builds its SDE sampler on eval's grid,
 * shift, guidance and rollout batch. */
static fr_status kl_ref_setup(kl_ref *k, fr_cli_sampling *s, const eval_opts *eo)
{
    memset(k, 0, sizeof *k);
    k->ckpt = eo->kl_ref;
    FR_TRY(fr_infer_ckpt_load(&k->ck, &s->be, eo->kl_ref, 1, s->ck.task->name));
    k->loaded = 1;
    if (k->ck.task != s->ck.task)
        return fr_fail(FR_ERR_ARG, "--kl-ref %s: task %s, the checkpoint's is %s", eo->kl_ref, k->ck.task->name,
                       s->ck.task->name);
    k->rc = fr_rollout_cfg_default(FR_SAMPLER_SDE);
    k->rc.T = eo->kl_steps;
    k->rc.noise = eo->kl_noise;
    k->rc.cfg = s->rc.cfg;
    k->rc.batch = s->rc.batch;
    return fr_rollout_schedule_make(&k->rc, s->grid, s->shift, 0, 0, &k->sched);
}

static void kl_ref_free(kl_ref *k)
{
    if (k->loaded) fr_infer_ckpt_free(&k->ck);
    fr_rollout_schedule_free(&k->sched);
}

int cmd_eval(int argc, char **argv)
{
    fr_cli_sampling_args a;
    eval_opts eo_;
    fr_reward_cmd_opts ro = {0};
    fr_opts o = {.cmd = "eval", .s = {&eo_, &ro}};
    fr_opts_add(&o, "Evaluation", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    fr_opts_add(&o, "Reward program", fr_reward_cmd_rows, fr_reward_cmd_nrows, 1);
    fr_cli_sampling_add(&o, &a, 2);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("eval", FR_ERR_IO);
    a.m.seed = FR_EVAL_SEED; /* eval's own default: the same noise for every checkpoint */
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, NULL, 0, NULL, &seen);
    if (rc >= 0) return rc;
    const char *prog = fr_reward_cmd_program(eo_.reward);
    if (prog && !prog[0]) return fr_cli_usage("eval", "--reward cmd: needs a PROGRAM");

    fr_eval_opts eo = fr_eval_opts_default();
    eo.split = eo_.split;
    eo.n = (int)eo_.n;
    fr_cli_sampling s;
    rc = fr_cli_sampling_setup(&o, &seen, &a, &s);
    if (rc) return rc;
    if (eo_.x0_clip > 0.0f && s.rc.kind != FR_SAMPLER_DDIM) {
        fr_cli_sampling_free(&s);
        return fr_cli_usage("eval", "--x0-clip clamps the x0-hat of the ddim sampler only, not '%s'",
                            fr_sampler_name(s.rc.kind));
    }
    s.rc.x0_clip = eo_.x0_clip;
    eo.seed = s.seed;
    const fr_task *t = s.ck.task;
    if (!prog && eo_.reward[0] && fr_task_reward_id(t, eo_.reward, &eo.reward_id) != FR_OK) {
        rc = fr_cli_status("eval", FR_ERR_ARG);
        fr_cli_sampling_free(&s);
        return rc;
    }
    program_reward pr = {NULL, t};
    if (prog) {
        ro.C = t->C;
        ro.H = t->H;
        ro.W = t->W;
        if (fr_reward_cmd_open(prog, &ro, &pr.rc) != FR_OK) {
            fr_cli_sampling_free(&s);
            return fr_cli_error("eval", "%s", fr_last_error());
        }
        eo.score = score_by_program;
        eo.score_user = &pr;
    }
    const char *reward = prog ? eo_.reward : t->reward_names[eo.reward_id];

    char backend[128], sampler[256];
    fr_backend_line(&s.be, backend, sizeof backend); /* docs/design.md §8.5 */
    fr_cli_sampler_line(&s, sampler, sizeof sampler);
    int first, n_prompts;
    fr_split_range(t, eo.split, &first, &n_prompts);
    /* with --json stdout carries only the JSON object */
    FILE *info = eo_.json ? stderr : stdout;
    fprintf(info, "%s\n", backend);
    fprintf(info, "checkpoint %s: task %s, preset %s, %s weights\n", a.m.ckpt, t->name, s.ck.model.cfg.preset,
            s.ck.ema ? "EMA" : "raw");
    fprintf(info, "sampler %s%s\n", sampler, s.rc.x0_clip > 0.0f ? ", x0-hat clipped" : "");
    fprintf(info, "split %s: %d prompts x %d samples, seed 0x%08x, reward %s\n", fr_split_name(eo.split), n_prompts,
            eo.n, eo.seed, reward);
    fflush(info);

    kl_ref kl;
    memset(&kl, 0, sizeof kl);
    if (eo_.kl_ref[0]) {
        fr_status ks = kl_ref_setup(&kl, &s, &eo_);
        if (ks != FR_OK) {
            rc = fr_cli_error("eval", "%s", fr_last_error());
            kl_ref_free(&kl);
            if (pr.rc) fr_reward_cmd_close(pr.rc);
            fr_cli_sampling_free(&s);
            return rc;
        }
        fprintf(info, "KL to %s: sde, %lld steps, noise %g, cfg %g\n", eo_.kl_ref, (long long)kl.rc.T,
                (double)kl.rc.noise, (double)kl.rc.cfg);
        fflush(info);
    }

    double t0 = fr_cli_now();
    fr_eval_result r;
    fr_status st = fr_evaluate(&s.ck.model, &s.be, t, &s.rc, &eo, &r);
    if (st == FR_OK && eo_.kl_ref[0]) {
        st = fr_eval_kl(&s.ck.model, &kl.ck.model, &s.be, t, &kl.rc, &eo, &r);
        if (st != FR_OK) fr_eval_result_free(&r);
    }
    kl_ref_free(&kl);
    if (st != FR_OK) rc = fr_cli_error("eval", "%s", fr_last_error());
    /* the program's own failure was reported by the batch that met it; a failed close of a
     * healthy program (exit status, kill) is a failure of its own */
    if (pr.rc && fr_reward_cmd_close(pr.rc) != FR_OK && st == FR_OK) rc = fr_cli_error("eval", "%s", fr_last_error());
    if (st != FR_OK) {
        fr_cli_sampling_free(&s);
        return rc;
    }
    double secs = fr_cli_now() - t0;
    if (rc == 0 && eo_.json) {
        rc = print_json(&s, backend, sampler, &eo, reward, &r, secs, a.m.ckpt, &kl);
    } else if (rc == 0) {
        print_table(&s, &r, !prog);
        printf("time %.2f s (%lld samples x %lld steps)\n", secs, (long long)r.samples, (long long)s.rc.T);
    }
    fr_eval_result_free(&r);
    fr_cli_sampling_free(&s);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) return fr_cli_error("eval", "write error on stdout");
    return rc;
}
