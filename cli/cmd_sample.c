/* flowrl sample: draw samples from a checkpoint and write them as a PNG grid (image
 * tasks) or a scatter plot (2-D tasks). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/sampling_opts.h"
#include "flowrl/nrg.h"

#define MAX_SAMPLES 100000 /* a grid or plot beyond this is a typo */
#define MAX_PROMPT_LINES 100000

typedef struct {
    char out[FR_OPT_PATH_MAX], prompt[FR_PROMPT_TEXT_MAX], prompt_file[FR_OPT_PATH_MAX];
    int64_t n, scale, cols;
    int guidance;            /* 0 none, 1 nrg (Flow-NRG, flowrl/nrg.h) */
    float guidance_weight;
    char guidance_reward[32];
} sample_opts;

static const char *const k_guidance[] = {"none", "nrg", NULL};

static const fr_opt k_rows[] = {
    FR_OPT_ROW_(sample_opts, out, "out", FR_OPT_STR, "", 0, 0, NULL, "the PNG to write (required)", FR_OPT_PATH, NULL,
                "FILE"),
    FR_OPT_ROW_(sample_opts, prompt, "prompt", FR_OPT_STR, "", 0, 0, NULL,
                "one prompt (an id, or its exact text), N times (default N 16)", 0, NULL, "P"),
    FR_OPT_ROW_(sample_opts, prompt_file, "prompt_file", FR_OPT_STR, "", 0, 0, NULL,
                "one prompt per line (an id or the exact text; '#' comments), N samples each; default: "
                "every held-out eval prompt, N each",
                FR_OPT_PATH, "--prompts", "FILE"),
    FR_OPT_I64(sample_opts, n, "n", "0", 0, MAX_SAMPLES,
               "samples per prompt; 0 = 16 with --prompt, else 1 (2-D tasks: 128)", 0),
    FR_OPT_I64(sample_opts, scale, "scale", "4", 1, 64, "image upscaling, nearest neighbour", 0),
    FR_OPT_I64(sample_opts, cols, "cols", "-1", -1, 10000, "grid columns; -1 = N when N > 1, 0 = about sqrt", 0),
    FR_OPT_ENUM(sample_opts, guidance, "guidance", "none", k_guidance,
                "reward guidance: nrg = Flow-NRG, v - w sigma/(1 - sigma) grad r(x0_hat(x)) on the ODE "
                "[secondary; flowrl choices: docs/algorithms/draft.md §8]", 0),
    FR_OPT_F32(sample_opts, guidance_weight, "guidance_weight", "1", 0, 1e6, "--guidance nrg: the weight w", 0),
    FR_OPT_STR(sample_opts, guidance_reward, "guidance_reward", "",
               "--guidance nrg: a differentiable task reward (gmm2d: mode, sqdist); default the task's first", 0),
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: flowrl sample --ckpt FILE --out OUT.png [--prompt ID|TEXT | --prompt-file FILE]\n"
            "                     [--n N] [--scale K] [--cols C] [sampler options]\n\n"
            "Samples the checkpoint and writes a PNG: a grid of the images (image tasks, one row\n"
            "per prompt when N > 1) or a scatter plot coloured by prompt (2-D tasks, with the\n"
            "ring of modes for gmm2d). Prints where it was written, how many samples, and their\n"
            "mean reward and accuracy under the task's default reward.\n"
            "Sample i (in output order) uses sample id i, key --seed, domain 0x%08x.\n"
            "Example: flowrl sample --ckpt shapes.safetensors --sampler ode --num-steps 40 --out grid.png\n",
            FR_ROLLOUT_C0_SAMPLE);
}

/* A prompt given as an id or its exact text. */
static int resolve_prompt(const fr_task *t, const char *s, int *id)
{
    const char *p = s;
    while (*p && isdigit((unsigned char)*p)) p++;
    if (p != s && *p == '\0') {
        errno = 0;
        long v = strtol(s, NULL, 10);
        if (errno != 0 || v < 0 || v >= t->n_prompts) return 0;
        *id = (int)v;
        return 1;
    }
    char text[FR_PROMPT_TEXT_MAX];
    for (int i = 0; i < t->n_prompts; i++)
        if (t->prompt_text(i, text, sizeof text) == FR_OK && strcmp(text, s) == 0) {
            *id = i;
            return 1;
        }
    return 0;
}

/* Reads the prompt file into *ids (malloc'ed); 0, or 1 / 2 with the message printed. */
static int read_prompt_file(const fr_task *t, const char *path, int **ids, int *n_ids)
{
    FILE *f = fopen(path, "r");
    if (!f) return fr_cli_error("sample", "%s: %s", path, strerror(errno));
    int cap = 64, n = 0, line_no = 0, rc = 0;
    int *v = malloc((size_t)cap * sizeof *v);
    char line[1024];
    while (v && fgets(line, sizeof line, f)) {
        line_no++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            rc = fr_cli_error("sample", "%s:%d: line too long", path, line_no);
            break;
        }
        while (len > 0 && isspace((unsigned char)line[len - 1])) line[--len] = '\0';
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        if (*s == '\0' || *s == '#') continue;
        int id;
        if (!resolve_prompt(t, s, &id)) {
            fr_cli_error("sample", "%s:%d: '%s' is neither a prompt id in [0, %d) nor a prompt of task %s", path,
                         line_no, s, t->n_prompts, t->name);
            rc = 2;
            break;
        }
        if (n == MAX_PROMPT_LINES) {
            rc = fr_cli_error("sample", "%s: more than %d prompts", path, MAX_PROMPT_LINES);
            break;
        }
        if (n == cap) {
            int *nv = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!nv) {
                free(v);
                v = NULL;
                break;
            }
            v = nv;
        }
        v[n++] = id;
    }
    if (!v) rc = fr_cli_error("sample", "out of memory reading %s", path);
    else if (rc == 0 && ferror(f)) rc = fr_cli_error("sample", "%s: read error", path);
    else if (rc == 0 && n == 0) rc = fr_cli_error("sample", "%s: no prompts", path);
    fclose(f);
    if (rc) {
        free(v);
        return rc;
    }
    *ids = v;
    *n_ids = n;
    return 0;
}

/* One line per run of equal consecutive prompt ids (the grid rows when N > 1). */
static void print_prompts(const fr_task *t, const int *pid, const float *score, const int *correct, int N)
{
    int lines = 0;
    for (int i = 0; i < N;) {
        int j = i, ok = 0;
        double sum = 0.0;
        while (j < N && pid[j] == pid[i]) {
            ok += correct[j] != 0;
            sum += score[j];
            j++;
        }
        if (++lines > 64) {
            printf("  ...\n");
            break;
        }
        char text[FR_PROMPT_TEXT_MAX];
        if (t->prompt_text(pid[i], text, sizeof text) != FR_OK) text[0] = '\0';
        printf("  %3d %-40s %d/%d correct, mean score %.3f\n", pid[i], text, ok, j - i, sum / (j - i));
        i = j;
    }
}

int cmd_sample(int argc, char **argv)
{
    fr_cli_sampling_args a;
    sample_opts so;
    fr_opts o = {.cmd = "sample", .s = {&so}};
    fr_opts_add(&o, "Output", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    fr_cli_sampling_add(&o, &a, 1);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("sample", FR_ERR_IO);
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, NULL, 0, NULL, &seen);
    if (rc >= 0) return rc;
    if (!so.out[0]) return fr_cli_usage("sample", "--out is required");
    const char *prompt_s = so.prompt[0] ? so.prompt : NULL, *prompts_f = so.prompt_file[0] ? so.prompt_file : NULL;
    if (prompt_s && prompts_f) return fr_cli_usage("sample", "give --prompt or --prompt-file, not both");
    long n = (long)so.n, scale = (long)so.scale, cols = (long)so.cols;
    const char *out = so.out;

    fr_cli_sampling s;
    rc = fr_cli_sampling_setup(&o, &seen, &a, &s);
    if (rc) return rc;
    const fr_task *t = s.ck.task;
    if (t->C == 0 && t->D != 2) {
        fr_cli_error("sample", "task %s has %d dims and no image form: nothing to plot", t->name, t->D);
        fr_cli_sampling_free(&s);
        return 2;
    }

    /* the prompt list, each n times */
    int *list = NULL, n_list = 0;
    if (prompt_s) {
        list = malloc(sizeof *list);
        if (list && !resolve_prompt(t, prompt_s, list)) {
            fr_cli_error("sample", "--prompt '%s' is neither a prompt id in [0, %d) nor a prompt of task %s",
                         prompt_s, t->n_prompts, t->name);
            free(list);
            fr_cli_sampling_free(&s);
            return 2;
        }
        n_list = 1;
    } else if (prompts_f) {
        rc = read_prompt_file(t, prompts_f, &list, &n_list);
        if (rc) {
            fr_cli_sampling_free(&s);
            return rc;
        }
    } else {
        list = malloc((size_t)t->n_eval * sizeof *list);
        for (int i = 0; list && i < t->n_eval; i++) list[i] = t->eval_first + i;
        n_list = t->n_eval;
    }
    if (n == 0) n = t->C == 0 ? 128 : prompt_s ? 16 : 1;
    if (!list || (int64_t)n_list * n > MAX_SAMPLES) {
        if (list) fr_cli_error("sample", "%lld samples requested, at most %d", (long long)n_list * n, MAX_SAMPLES);
        else fr_cli_error("sample", "out of memory");
        free(list);
        fr_cli_sampling_free(&s);
        return list ? 2 : 1;
    }
    const int N = n_list * (int)n;
    if (cols < 0) cols = (n > 1 && !prompt_s) ? n : 0;

    int *pid = malloc((size_t)N * sizeof *pid);
    uint32_t *sid = malloc((size_t)N * sizeof *sid);
    int *correct = malloc((size_t)N * sizeof *correct);
    float *score = malloc((size_t)N * sizeof *score);
    float *x = malloc((size_t)N * (size_t)t->D * sizeof *x);
    if (!pid || !sid || !correct || !score || !x) {
        rc = fr_cli_error("sample", "out of memory for %d samples", N);
    } else {
        for (int i = 0; i < N; i++) {
            pid[i] = list[i / n];
            sid[i] = (uint32_t)i;
        }
        s.rc.c0 = FR_ROLLOUT_C0_SAMPLE;
        char backend[128], sampler[256];
        fr_backend_line(&s.be, backend, sizeof backend); /* docs/design.md §8.5 */
        fr_cli_sampler_line(&s, sampler, sizeof sampler);
        printf("%s\n", backend);
        printf("checkpoint %s: task %s, preset %s, %s weights\n", a.m.ckpt, t->name, s.ck.model.cfg.preset,
               s.ck.ema ? "EMA" : "raw");
        printf("sampler %s, seed %u\n", sampler, s.seed);
        fflush(stdout);
        double t0 = fr_cli_now();
        fr_status st = FR_OK;
        if (so.guidance) {
            int rid = 0;
            if (so.guidance_reward[0]) st = fr_task_reward_id(t, so.guidance_reward, &rid);
            if (st == FR_OK) {
                printf("guidance flow-nrg: weight %g, reward %s\n", (double)so.guidance_weight, t->reward_names[rid]);
                st = fr_nrg_sample(&s.ck.model, &s.be, t, rid, &s.rc, so.guidance_weight, N, pid, sid, x);
            }
        } else {
            st = fr_rollout_to_host(&s.ck.model, &s.be, t, &s.rc, N, pid, sid, x);
        }
        double secs = fr_cli_now() - t0;
        if (st == FR_OK) st = fr_task_reward_batch(t, 0, N, pid, x, score, correct);
        if (st == FR_OK) st = fr_task_render(t, out, N, pid, x, (int)cols, (int)scale);
        if (st != FR_OK) {
            rc = fr_cli_error("sample", "%s", fr_last_error());
        } else {
            double sum = 0.0;
            int ok = 0;
            for (int i = 0; i < N; i++) {
                sum += score[i];
                ok += correct[i] != 0;
            }
            print_prompts(t, pid, score, correct, N);
            printf("wrote %s: %d samples (%d prompts x %ld), %s\n", out, N, n_list, n,
                   t->C > 0 ? "image grid" : "scatter plot");
            printf("reward %s: mean %.4f, accuracy %.1f%% (%d/%d); sampling %.2f s\n", t->reward_names[0],
                   sum / N, 100.0 * ok / N, ok, N, secs);
        }
    }
    free(pid);
    free(sid);
    free(correct);
    free(score);
    free(x);
    free(list);
    fr_cli_sampling_free(&s);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) return fr_cli_error("sample", "write error on stdout");
    return rc;
}
