/* flowrl eval: GenEval-style accuracy per prompt kind on a split (flowrl/evaluate.h). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/sampling_opts.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: flowrl eval --ckpt FILE [--task NAME] [--split eval|train] [--n N] [--json]\n"
            "                   [--reward NAME] [sampler options]\n\n"
            "Draws N samples (default 16) for every prompt of the split (default: the held-out\n"
            "eval prompts), scores them with the task's reward and prints the accuracy (share\n"
            "of samples judged correct) and mean score per prompt kind and overall.\n"
            "Seeds are fixed (key 0x%08x, domain 0x%08x, sample id = prompt * %d + k), independent\n"
            "of the training seed: every checkpoint sees the same noise, the first k samples of a\n"
            "prompt do not change with N, and nothing depends on --batch.\n\n"
            "  --split S          eval (held-out prompts, default) or train\n"
            "  --n N              samples per prompt (default 16)\n"
            "  --reward NAME      the task's reward (default: its first)\n"
            "  --json             print one JSON object on stdout instead of the table\n"
            "%s"
            "Example: flowrl eval --ckpt shapes.safetensors --task shapes --sampler ode --steps 40\n",
            FR_EVAL_SEED, FR_ROLLOUT_C0_EVAL, FR_EVAL_MAX_N, fr_cli_sampling_help);
}

static double safe_div(double a, double b) { return b > 0 ? a / b : 0.0; }

static cJSON *stats_json(int64_t samples, int64_t correct, double score, int prompts)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "prompts", prompts);
    cJSON_AddNumberToObject(o, "samples", (double)samples);
    cJSON_AddNumberToObject(o, "correct", (double)correct);
    cJSON_AddNumberToObject(o, "accuracy", safe_div((double)correct, (double)samples));
    cJSON_AddNumberToObject(o, "mean_score", samples > 0 ? score : 0.0);
    return o;
}

static int print_json(const fr_cli_sampling *s, const char *backend, const char *sampler, const fr_eval_opts *o,
                      const fr_eval_result *r, double seconds, const char *ckpt)
{
    const fr_task *t = s->ck.task;
    cJSON *root = cJSON_CreateObject();
    if (!root) return fr_cli_error("eval", "out of memory");
    cJSON_AddStringToObject(root, "ckpt", ckpt);
    cJSON_AddStringToObject(root, "task", t->name);
    cJSON_AddStringToObject(root, "preset", s->ck.model.cfg.preset);
    cJSON_AddBoolToObject(root, "ema", s->ck.ema);
    cJSON_AddStringToObject(root, "backend", s->ops->name);
    cJSON_AddStringToObject(root, "backend_line", backend);
    cJSON_AddStringToObject(root, "sampler", fr_sampler_name(s->rc.kind));
    cJSON_AddStringToObject(root, "sampler_line", sampler);
    cJSON_AddNumberToObject(root, "steps", (double)s->rc.T);
    cJSON_AddNumberToObject(root, "cfg", s->rc.cfg);
    cJSON_AddNumberToObject(root, "noise", s->rc.noise);
    cJSON_AddStringToObject(root, "split", fr_split_name(o->split));
    cJSON_AddStringToObject(root, "reward", t->reward_names[o->reward_id]);
    cJSON_AddNumberToObject(root, "n", o->n);
    cJSON_AddNumberToObject(root, "seed", o->seed);
    cJSON *groups = cJSON_AddObjectToObject(root, "groups");
    for (int g = 0; groups && g < r->n_groups; g++)
        cJSON_AddItemToObject(groups, t->group_names[g],
                              stats_json(r->group_samples[g], r->group_correct[g], r->group_score[g],
                                         r->group_prompts[g]));
    cJSON_AddItemToObject(root, "overall", stats_json(r->samples, r->correct, r->score, r->n_prompts));
    cJSON *prompts = cJSON_AddArrayToObject(root, "prompts");
    for (int i = 0; prompts && i < r->n_prompts; i++) {
        char text[FR_PROMPT_TEXT_MAX];
        if (t->prompt_text(r->prompt_ids[i], text, sizeof text) != FR_OK) text[0] = '\0';
        cJSON *p = cJSON_CreateObject();
        if (!p) break;
        cJSON_AddNumberToObject(p, "id", r->prompt_ids[i]);
        cJSON_AddStringToObject(p, "text", text);
        cJSON_AddStringToObject(p, "group", t->group_names[t->prompt_group(r->prompt_ids[i])]);
        cJSON_AddNumberToObject(p, "correct", r->prompt_correct[i]);
        cJSON_AddNumberToObject(p, "accuracy", (double)r->prompt_correct[i] / (double)r->n);
        cJSON_AddNumberToObject(p, "mean_score", r->prompt_score[i]);
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

static void print_table(const fr_cli_sampling *s, const fr_eval_result *r)
{
    const fr_task *t = s->ck.task;
    printf("%-12s %7s %8s %8s %9s %11s\n", "kind", "prompts", "samples", "correct", "accuracy", "mean score");
    for (int g = 0; g < r->n_groups; g++) {
        if (r->group_prompts[g] == 0) continue;
        printf("%-12s %7d %8lld %8lld %8.1f%% %11.4f\n", t->group_names[g], r->group_prompts[g],
               (long long)r->group_samples[g], (long long)r->group_correct[g],
               100.0 * safe_div((double)r->group_correct[g], (double)r->group_samples[g]), r->group_score[g]);
    }
    printf("%-12s %7d %8lld %8lld %8.1f%% %11.4f\n", "overall", r->n_prompts, (long long)r->samples,
           (long long)r->correct, 100.0 * safe_div((double)r->correct, (double)r->samples), r->score);
}

int cmd_eval(int argc, char **argv)
{
    if (fr_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    fr_cli_sampling_args a;
    fr_cli_opt opts[FR_CLI_SAMPLING_NOPTS + 4];
    int n_opts = fr_cli_sampling_opts(&a, opts);
    const char *split_s = NULL, *n_s = NULL, *reward_s = NULL;
    int json = 0;
    opts[n_opts++] = (fr_cli_opt){"--split", &split_s, NULL};
    opts[n_opts++] = (fr_cli_opt){"--n", &n_s, NULL};
    opts[n_opts++] = (fr_cli_opt){"--reward", &reward_s, NULL};
    opts[n_opts++] = (fr_cli_opt){"--json", NULL, &json};
    if (fr_cli_parse_opts("eval", argc, argv, opts, n_opts)) return 2;

    fr_eval_opts eo = fr_eval_opts_default();
    if (split_s && fr_split_from_name(split_s, &eo.split) != FR_OK)
        return fr_cli_error("eval", "%s", fr_last_error()), 2;
    long n = eo.n;
    if (n_s && fr_cli_long("eval", "--n", n_s, 1, FR_EVAL_MAX_N, &n)) return 2;
    eo.n = (int)n;

    fr_cli_sampling s;
    int rc = fr_cli_sampling_setup("eval", &a, FR_EVAL_SEED, &s);
    if (rc) return rc;
    eo.seed = s.seed;
    if (reward_s && fr_task_reward_id(s.ck.task, reward_s, &eo.reward_id) != FR_OK) {
        fr_cli_error("eval", "%s", fr_last_error());
        fr_cli_sampling_free(&s);
        return 2;
    }

    char backend[128], sampler[256];
    fr_cli_backend_line(&s, backend, sizeof backend);
    fr_cli_sampler_line(&s, sampler, sizeof sampler);
    int first, n_prompts;
    fr_split_range(s.ck.task, eo.split, &first, &n_prompts);
    /* with --json stdout carries only the JSON object */
    FILE *info = json ? stderr : stdout;
    fprintf(info, "%s\n", backend);
    fprintf(info, "checkpoint %s: task %s, preset %s, %s weights\n", a.ckpt, s.ck.task->name,
            s.ck.model.cfg.preset, s.ck.ema ? "EMA" : "raw");
    fprintf(info, "sampler %s\n", sampler);
    fprintf(info, "split %s: %d prompts x %d samples, seed 0x%08x, reward %s\n", fr_split_name(eo.split), n_prompts,
            eo.n, eo.seed, s.ck.task->reward_names[eo.reward_id]);
    fflush(info);

    double t0 = fr_cli_now();
    fr_eval_result r;
    if (fr_evaluate(&s.ck.model, s.ops, s.ck.task, &s.rc, &eo, &r) != FR_OK) {
        fr_cli_error("eval", "%s", fr_last_error());
        fr_cli_sampling_free(&s);
        return 1;
    }
    double secs = fr_cli_now() - t0;
    if (json) {
        rc = print_json(&s, backend, sampler, &eo, &r, secs, a.ckpt);
    } else {
        print_table(&s, &r);
        printf("time %.2f s (%lld samples x %lld steps)\n", secs, (long long)r.samples, (long long)s.rc.T);
    }
    fr_eval_result_free(&r);
    fr_cli_sampling_free(&s);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) return fr_cli_error("eval", "write error on stdout");
    return rc;
}
