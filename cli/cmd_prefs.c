/* flowrl prefs make|show: preference files (flowrl/prefs.h, docs/preferences.md). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/sampling_opts.h"
#include "flowrl/digest.h"
#include "flowrl/file_util.h"
#include "flowrl/prefs.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: flowrl prefs make --ckpt FILE --pairs N --out FILE [--task NAME] [--reward NAME]\n"
            "                         [--seed S] [--max-attempts M] [sampler options]\n"
            "       flowrl prefs show FILE [--task NAME] [--json]\n\n"
            "make  samples preference pairs from the checkpoint and labels them with a task reward\n"
            "      (default: the task's first). Attempt a = 0, 1, ... draws a training prompt (Philox\n"
            "      key --seed, purpose prefs, counter a) and samples it twice from one shared x_T\n"
            "      (D3PO's pairs: sample ids 2a, 2a + 1, domain 0x%08x); the higher reward is x_w,\n"
            "      equal rewards (a tie) give no pair. Attempts go on until N pairs or --max-attempts\n"
            "      (default 10 N + 100), then the file is written atomically. The sampler must be\n"
            "      stochastic: the default is sde with noise level 0.7 for a velocity model, ddim\n"
            "      with eta 1 for an epsilon model. Same options, same bytes.\n"
            "show  checks FILE and prints its pairs, task, D, the prompts covered, the reward margin\n"
            "      r_w - r_l (mean, min, max) and the provenance; --json: one JSON object.\n"
            "The format: docs/preferences.md. Example:\n"
            "  flowrl prefs make --ckpt gmm2d.safetensors --pairs 256 --reward halfplane --out p.safetensors\n",
            FR_PREFS_C0);
}

/* ---- show (also the summary after make) ------------------------------------------------- */

typedef struct {
    int covered, n_train;
    double mean, min, max;
} prefs_stats;

static int prefs_summary(const fr_prefs *p, prefs_stats *st)
{
    const fr_task *t;
    if (fr_task_get(p->task, &t) != FR_OK) return 0;
    char *seen = calloc((size_t)t->n_train, 1);
    if (!seen) return 0;
    st->covered = 0;
    st->n_train = t->n_train;
    st->mean = 0.0;
    st->min = st->max = (double)p->r_w[0] - (double)p->r_l[0];
    for (int64_t i = 0; i < p->N; i++) {
        const double m = (double)p->r_w[i] - (double)p->r_l[i];
        st->mean += m;
        if (m < st->min) st->min = m;
        if (m > st->max) st->max = m;
        if (!seen[p->prompt[i]]) st->covered++;
        seen[p->prompt[i]] = 1;
    }
    st->mean /= (double)p->N;
    free(seen);
    return 1;
}

static void print_text(const char *path, const fr_prefs *p, const prefs_stats *st)
{
    printf("%s: %lld pairs of task %s (D %lld), format " FR_PREFS_FORMAT " version " FR_PREFS_VERSION "\n", path,
           (long long)p->N, p->task, (long long)p->D);
    printf("labels: reward %s, tie rule %s", p->reward, p->tie_rule);
    if (p->attempts >= 0) printf(" (%lld attempts, %lld ties dropped)", (long long)p->attempts,
                                 (long long)p->ties_dropped);
    printf("\nprompts covered: %d of %d training prompts\n", st->covered, st->n_train);
    printf("margin r_w - r_l: mean %.6g, min %.6g, max %.6g\n", st->mean, st->min, st->max);
    printf("x_T: %s\n", p->x_T ? "stored (the shared initial noise of each pair)" : "not stored");
    printf("provenance: ckpt %s (digest %s), sampler %s noise %g, %lld steps, cfg %g, seed %u, flowrl %s\n", p->ckpt,
           p->ckpt_digest, p->sampler, (double)p->noise, (long long)p->steps, (double)p->cfg, p->seed,
           p->flowrl_version);
}

static int print_json(const char *path, const fr_prefs *p, const prefs_stats *st)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return fr_cli_error("prefs", "out of memory");
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddStringToObject(o, "format", FR_PREFS_FORMAT);
    cJSON_AddStringToObject(o, "format_version", FR_PREFS_VERSION);
    cJSON_AddNumberToObject(o, "pairs", (double)p->N);
    cJSON_AddStringToObject(o, "task", p->task);
    cJSON_AddNumberToObject(o, "D", (double)p->D);
    cJSON_AddStringToObject(o, "reward", p->reward);
    cJSON_AddStringToObject(o, "tie_rule", p->tie_rule);
    if (p->attempts >= 0) {
        cJSON_AddNumberToObject(o, "attempts", (double)p->attempts);
        cJSON_AddNumberToObject(o, "ties_dropped", (double)p->ties_dropped);
    }
    cJSON_AddNumberToObject(o, "prompts_covered", st->covered);
    cJSON_AddNumberToObject(o, "train_prompts", st->n_train);
    cJSON *m = cJSON_AddObjectToObject(o, "margin");
    cJSON_AddNumberToObject(m, "mean", st->mean);
    cJSON_AddNumberToObject(m, "min", st->min);
    cJSON_AddNumberToObject(m, "max", st->max);
    cJSON_AddBoolToObject(o, "x_T", p->x_T != NULL);
    cJSON *pv = cJSON_AddObjectToObject(o, "provenance");
    cJSON_AddStringToObject(pv, "ckpt", p->ckpt);
    cJSON_AddStringToObject(pv, "ckpt_digest", p->ckpt_digest);
    cJSON_AddStringToObject(pv, "sampler", p->sampler);
    char num[32];
    fr_prefs_fmt_f32(p->noise, num);
    cJSON_AddRawToObject(pv, "noise", num);
    cJSON_AddNumberToObject(pv, "steps", (double)p->steps);
    fr_prefs_fmt_f32(p->cfg, num);
    cJSON_AddRawToObject(pv, "cfg", num);
    cJSON_AddNumberToObject(pv, "seed", p->seed);
    cJSON_AddStringToObject(pv, "flowrl_version", p->flowrl_version);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return fr_cli_error("prefs", "out of memory");
    printf("%s\n", s);
    cJSON_free(s);
    return 0;
}

static int show(const char *path, const fr_prefs *p, int json)
{
    prefs_stats st;
    if (!prefs_summary(p, &st)) return fr_cli_error("prefs", "out of memory");
    int rc = json ? print_json(path, p, &st) : (print_text(path, p, &st), 0);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) rc = fr_cli_error("prefs", "write error on stdout");
    return rc;
}

typedef struct {
    int json;
    char task[64];
} show_opts;

static const fr_opt k_show_rows[] = {
    FR_OPT_BOOL(show_opts, json, "json", "false", "print one JSON object on stdout instead of the text", 0),
    FR_OPT_ROW_(show_opts, task, "task", FR_OPT_STR, "", 0, 0, NULL, "the task FILE must be of (default: the one it names)",
                0, NULL, "NAME"),
};

static int cmd_show(int argc, char **argv)
{
    show_opts so;
    fr_opts o = {.cmd = "prefs show", .s = {&so}};
    fr_opts_add(&o, "Show", k_show_rows, (int)(sizeof k_show_rows / sizeof k_show_rows[0]), 0);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("prefs", FR_ERR_IO);
    const char *path = NULL;
    int n_pos = 0;
    int rc = fr_cli_opts(&o, argc, argv, usage, &path, 1, &n_pos, NULL);
    if (rc >= 0) return rc;
    if (!n_pos) return fr_cli_usage("prefs show", "a FILE is required");
    const fr_task *t = NULL;
    if (so.task[0] && fr_task_get(so.task, &t) != FR_OK) return fr_cli_usage("prefs show", "%s", fr_last_error());
    fr_prefs p;
    if (fr_prefs_read(path, t, &p) != FR_OK) return fr_cli_error("prefs", "%s", fr_last_error());
    rc = show(path, &p, so.json);
    fr_prefs_free(&p);
    return rc;
}

/* ---- make ---------------------------------------------------------------------------- */

typedef struct {
    char out[FR_OPT_PATH_MAX], reward[64];
    int64_t pairs, max_attempts;
    int progress;
} make_opts;

static const char *const k_progress_names[] = {"auto", "tty", "plain", "off", NULL}; /* fr_progress_mode */

static const fr_opt k_make_rows[] = {
    FR_OPT_ROW_(make_opts, out, "out", FR_OPT_STR, "", 0, 0, NULL, "the preference file to write (required)",
                FR_OPT_PATH, NULL, "FILE"),
    FR_OPT_I64(make_opts, pairs, "pairs", "0", 0, FR_PREFS_MAX_PAIRS, "preference pairs N (required)", 0),
    FR_OPT_ROW_(make_opts, reward, "reward", FR_OPT_STR, "", 0, 0, NULL,
                "the task's reward that labels the pairs (default: its first)", 0, NULL, "NAME"),
    FR_OPT_I64(make_opts, max_attempts, "max_attempts", "0", 0, INT64_C(1) << 31,
               "prompts drawn at most (each gives a pair or a tie); 0 = 10 N + 100", 0),
    FR_OPT_ROW_(make_opts, progress, "progress", FR_OPT_ENUM, "auto", 0, 0, k_progress_names,
                "progress on stderr; auto: a bar on a terminal, plain lines otherwise", 0, NULL, NULL),
};

static int cmd_make(int argc, char **argv)
{
    fr_cli_sampling_args a;
    make_opts mo;
    fr_opts o = {.cmd = "prefs make", .s = {&mo}};
    fr_opts_add(&o, "Pairs", k_make_rows, (int)(sizeof k_make_rows / sizeof k_make_rows[0]), 0);
    fr_cli_sampling_add(&o, &a, 1);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("prefs make", FR_ERR_IO);
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, NULL, 0, NULL, &seen);
    if (rc >= 0) return rc;
    if (!mo.out[0]) return fr_cli_usage("prefs make", "--out is required");
    if (mo.pairs < 1) return fr_cli_usage("prefs make", "--pairs N (N >= 1) is required");
    fr_cli_sampling s;
    rc = fr_cli_sampling_setup(&o, &seen, &a, &s);
    if (rc) return rc;
    const fr_task *t = s.ck.task;
    /* D3PO samples with noise: sde (a = 0.7) for a flow model, DDIM eta 1 for an epsilon one */
    const int noise_given = fr_opts_seen_key(&o, &seen, "noise_level") || fr_opts_seen_key(&o, &seen, "eta");
    if (!fr_opts_seen_key(&o, &seen, "sampler") && s.rc.kind == FR_SAMPLER_ODE) {
        s.rc.kind = FR_SAMPLER_SDE;
        if (!noise_given) s.rc.noise = fr_rollout_cfg_default(FR_SAMPLER_SDE).noise;
    } else if (!noise_given && s.rc.kind == FR_SAMPLER_DDIM) {
        s.rc.noise = 1.0f;
    }
    fr_prefs_make_opts mk = {.pairs = mo.pairs, .batch_pairs = s.rc.batch > 1 ? s.rc.batch / 2 : 1};
    mk.max_attempts = mo.max_attempts > 0 ? mo.max_attempts : 10 * mo.pairs + 100;
    fr_prefs p = {0};
    char digest[17], sampler[256];
    fr_progress prog;
    fr_status st = mo.reward[0] ? fr_task_reward_id(t, mo.reward, &mk.reward_id) : FR_OK;
    if (st == FR_OK) st = fr_file_digest_hex(a.m.ckpt, digest);
    if (st == FR_OK) {
        fr_cli_sampler_line(&s, sampler, sizeof sampler);
        fprintf(stderr, "prefs make: %s, task %s, reward %s, sampler %s, seed %u\n", a.m.ckpt, t->name,
                t->reward_names[mk.reward_id], sampler, s.seed);
        fr_progress_init(&prog, stderr, (fr_progress_mode)mo.progress, "prefs", mk.pairs, 0, 0);
        mk.progress = &prog;
        st = fr_prefs_make(&s.ck.model, &s.be, t, &s.rc, &mk, &p);
        fr_progress_finish(&prog);
    }
    if (st == FR_OK) {
        snprintf(p.ckpt, sizeof p.ckpt, "%s", a.m.ckpt);
        memcpy(p.ckpt_digest, digest, sizeof digest);
        st = fr_prefs_write(mo.out, &p);
    }
    if (st != FR_OK) rc = fr_cli_status("prefs make", st);
    else rc = show(mo.out, &p, 0);
    fr_prefs_free(&p);
    fr_cli_sampling_free(&s);
    return rc;
}

int cmd_prefs(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "make") == 0) return cmd_make(argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0) return cmd_show(argc - 1, argv + 1);
    if (fr_opts_wants_help(argc, argv)) {
        usage(stdout);
        printf("\nflowrl prefs make --help and flowrl prefs show --help list their options.\n");
        return 0;
    }
    return fr_cli_usage("prefs", "unknown subcommand '%s', expected make or show", argv[1]);
}
