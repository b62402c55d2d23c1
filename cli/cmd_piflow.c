/* flowrl piflow: pi-Flow imitation distillation of a flow teacher into a 1-NFE GM-policy student
 * (flowrl/piflow.h; docs/algorithms/piflow.md): train, sample, teacher (the teacher's Euler
 * samples) and swd (the sliced Wasserstein-2 distance between two sample files). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/audit_train.h"
#include "flowrl/backend.h"
#include "flowrl/digest.h"
#include "flowrl/piflow.h"
#include "flowrl/png.h"
#include "flowrl/safetensors.h"
#include "flowrl/swd.h"

typedef struct {
    char teacher[FR_OPT_PATH_MAX], out[FR_OPT_PATH_MAX], resume[FR_OPT_PATH_MAX], audit[FR_OPT_PATH_MAX], preset[32];
    int K, hidden, n_hidden, n_inter, substeps;
    int64_t steps, batch, ckpt_every, log_every;
    double lr, beta1, beta2, weight_decay;
    uint32_t seed;
} train_opts;

#define TROW(f, key, help, mv) FR_OPT_ROW_(train_opts, f, key, FR_OPT_STR, "", 0, 0, NULL, help, 0, NULL, mv)
static const fr_opt k_train_rows[] = {
    TROW(teacher, "teacher", "the teacher: a velocity checkpoint of flowrl pretrain (required)", "CKPT"),
    TROW(out, "out", "the student checkpoint to write (required)", "CKPT"),
    TROW(resume, "resume", "continue this checkpoint of the same options bit for bit", "CKPT"),
    TROW(audit, "audit",
         "the audit log of every step (default: --out with .safetensors replaced by .audit.log; with --resume it "
         "continues --resume's log)", "FILE"),
    FR_OPT_INT(train_opts, K, "k", "8", 1, FR_PIFLOW_MAX_K, "Gaussian components of the GM policy", 0),
    TROW(preset, "preset", "an image teacher (shapes): the student's model preset (GMFlow's image network, "
         "prompt-conditioned; --hidden and --n_hidden are the 2-D MLP's) (default shapes-s)", "P"),
    FR_OPT_INT(train_opts, hidden, "hidden", "256", 1, 8192, "width of the student MLP", 0),
    FR_OPT_INT(train_opts, n_hidden, "n_hidden", "3", 1, FR_MLP_MAX_LAYERS - 1, "hidden layers (SiLU)", 0),
    FR_OPT_I64(train_opts, steps, "steps", "2000", 0, 100000000, "AdamW steps (0: write the untrained student)", 0),
    FR_OPT_I64(train_opts, batch, "batch_size", "256", 1, 1 << 16, "x_s per step", 0),
    FR_OPT_INT(train_opts, n_inter, "n_inter", "2", 1, 64, "intermediate times per x_s (num_intermediates)", 0),
    FR_OPT_INT(train_opts, substeps, "substeps", "128", 1, 1 << 16, "the policy rollout's substeps per unit of sigma", 0),
    FR_OPT_F64(train_opts, lr, "lr", "1e-3", 1e-12, 10, "AdamW learning rate", 0),
    FR_OPT_F64(train_opts, beta1, "adam_beta1", "0.9", 0, 0.999999, "AdamW beta1", 0),
    FR_OPT_F64(train_opts, beta2, "adam_beta2", "0.95", 0, 0.999999, "AdamW beta2 (pi-Flow's 0.95)", 0),
    FR_OPT_F64(train_opts, weight_decay, "weight_decay", "0", 0, 10, "AdamW decoupled weight decay", 0),
    FR_OPT_U32(train_opts, seed, "seed", "0", "init, x_s and the intermediate times", 0),
    FR_OPT_I64(train_opts, ckpt_every, "checkpoint_every", "0", 0, 100000000, "also write --out every N steps", 0),
    FR_OPT_I64(train_opts, log_every, "log_every", "100", 1, 100000000, "a line with the loss and the parameters' digest every N steps", 0),
};
#undef TROW

static void train_usage(FILE *f)
{
    fprintf(f, "Usage: flowrl piflow train --teacher CKPT --out CKPT [--k 8] [--steps N] [options]\n\n"
               "pi-Flow imitation distillation (docs/algorithms/piflow.md): a student MLP maps x_s ~ N(0, I)\n"
               "(sigma_s = 1: the 1-NFE student) to a Gaussian-mixture head row; the network-free GMFlow\n"
               "policy of that row is rolled out (detached, Euler in sigma, round(dsigma * substeps)\n"
               "substeps) to n_inter times t ~ U(0, 1) clamped at 1e-4, and the policy velocity there is\n"
               "regressed on the teacher's: L = mean_n mean (pi(x_t, t) - u_teacher(x_t, t))^2, AdamW.\n"
               "A 2-D teacher is called with the task's prompt 0; an image teacher (shapes) with each sample's\n"
               "prompt (sample i: training prompt i mod 52), as is the image student (--preset). No guidance;\n"
               "gm_dropout is not used.\n"
               "Every random number is a function of (seed, step, sample): the same command writes the\n"
               "same checkpoint on every backend; --resume continues a checkpoint bit for bit.\n"
               "An audit log (default CKPT.audit.log beside --out; --audit FILE) holds every step's loss,\n"
               "gradient norm and the digests of the gradients, parameters and AdamW moments; `flowrl audit\n"
               "A.audit.log B.audit.log` compares two runs; --resume cuts the log back to the checkpoint's step.\n");
}

static void train_progress(void *user, int64_t step, double loss, uint64_t digest)
{
    const train_opts *t = user;
    if (step % t->log_every == 0 || step == t->steps)
        printf("step %lld/%lld  loss %.6f  params %016llx\n", (long long)step, (long long)t->steps, loss,
               (unsigned long long)digest);
    fflush(stdout);
}

/* The run's audit log: --audit or beside --out, continuing --resume's at its step. */
static fr_status open_audit(const train_opts *a, const fr_backend *be, const char *teacher_digest, fr_audit **log)
{
    const fr_audit_kv kv[] = {{"run.base_digest", teacher_digest}};
    const fr_audit_train_cfg ac = {a->audit, a->out, a->resume, 0, "piflow.step", "piflow train", kv, 1};
    char path[FR_OPT_PATH_MAX + 16];
    FR_TRY(fr_audit_train_open(log, &ac, be, path, sizeof path));
    printf("audit log %s\n", path);
    return FR_OK;
}

static int piflow_train(int argc, char **argv)
{
    static const char *CMD = "piflow train";
    train_opts a;
    fr_backend_opts bk;
    fr_opts o = {.cmd = "piflow train", .s = {&a, &bk}};
    fr_opts_add(&o, "Distillation", k_train_rows, (int)(sizeof k_train_rows / sizeof k_train_rows[0]), 0);
    fr_opts_add(&o, "Backend", fr_backend_rows, fr_backend_nrows, 1);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status(CMD, FR_ERR_IO);
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, train_usage, NULL, 0, NULL, &seen);
    if (rc >= 0) return rc;
    if (!a.teacher[0] || !a.out[0]) return fr_cli_usage(CMD, "--teacher CKPT and --out CKPT are required");
    fr_backend be;
    rc = fr_cli_resolve_backend(CMD, &bk, &be);
    if (rc) return rc;
    char line[128];
    fr_backend_line(&be, line, sizeof line);
    fr_piflow_teacher t;
    fr_piflow_student st;
    memset(&st, 0, sizeof st);
    fr_status s = fr_piflow_teacher_load(&t, &be, a.teacher, a.batch);
    if (s == FR_OK)
        s = t.ck.task->C ? fr_piflow_student_new_image(&st, &be, a.K, a.preset[0] ? a.preset : "shapes-s", t.ck.task, a.batch)
                         : fr_piflow_student_new(&st, &be, a.K, (int)t.D, a.hidden, a.n_hidden, a.batch);
    if (s == FR_OK) {
        int np;
        int64_t numel = 0;
        const fr_param *ps = fr_piflow_student_params(&st, &np);
        for (int p = 0; p < np; p++) numel += fr_tensor_numel(ps[p].value);
        printf("%s\npiflow train: teacher %s (task %s), student K %d, %s%s %d x %d (%lld params), %lld steps of %lld "
               "x_s, %d times each, %d substeps, lr %g, seed %u%s\n",
               line, a.teacher, t.ck.task->name, a.K, st.img ? "model preset " : "SiLU MLP", st.img ? st.img->a.preset : "",
               st.n_hidden, st.H, (long long)numel,
               (long long)a.steps, (long long)a.batch, a.n_inter, a.substeps, a.lr, a.seed, a.resume[0] ? " (resumed)" : "");
        fr_piflow_train_opts to = fr_piflow_train_opts_default();
        to.steps = a.steps;
        to.batch = a.batch;
        to.n_inter = a.n_inter;
        to.substeps = a.substeps;
        to.lr = a.lr;
        to.beta1 = a.beta1;
        to.beta2 = a.beta2;
        to.weight_decay = a.weight_decay;
        to.seed = a.seed;
        to.ckpt_every = a.ckpt_every;
        char td[17];
        s = fr_file_digest_hex(a.teacher, td);
        if (s == FR_OK) s = open_audit(&a, &be, td, &to.audit);
        if (s == FR_OK) s = fr_piflow_train(&st, &t, &to, a.out, a.resume[0] ? a.resume : NULL, train_progress, &a);
        const fr_status sc = fr_audit_close(to.audit);
        if (s == FR_OK) s = sc;
    }
    if (s == FR_OK) printf("wrote %s\n", a.out);
    fr_piflow_student_free(&st);
    fr_piflow_teacher_free(&t);
    fr_backend_close(&be);
    return s == FR_OK ? 0 : fr_cli_status(CMD, s);
}

/* ---- sample / teacher: n points to a .safetensors ("samples" (n, D)) or a scatter PNG ------------ */

typedef struct {
    char ckpt[FR_OPT_PATH_MAX], out[FR_OPT_PATH_MAX];
    int64_t n;
    int steps, substeps;
    uint32_t seed;
    double extent;
} sample_opts;

#define SROW(f, key, help, mv) FR_OPT_ROW_(sample_opts, f, key, FR_OPT_STR, "", 0, 0, NULL, help, 0, NULL, mv)
static const fr_opt k_sample_rows[] = {
    SROW(ckpt, "ckpt", "the checkpoint: a student (sample) or a velocity model (teacher) (required)", "CKPT"),
    SROW(out, "out", "FILE.safetensors (tensor 'samples' (N, D)) or FILE.png (a scatter plot of 2-D samples) (required)", "FILE"),
    FR_OPT_I64(sample_opts, n, "n", "10000", 1, 1 << 24, "samples", 0),
    FR_OPT_INT(sample_opts, steps, "num_steps", "50", 1, 100000, "teacher: Euler steps on sigma = 1 - i/N", 0),
    FR_OPT_INT(sample_opts, substeps, "substeps", "128", 1, 1 << 16, "sample: the policy rollout's substeps per unit of sigma", 0),
    FR_OPT_U32(sample_opts, seed, "seed", "0", "the initial noise", 0),
    FR_OPT_F64(sample_opts, extent, "extent", "5", 0.1, 1000, "PNG: the plot shows [-extent, extent]^2", 0),
};
#undef SROW

static void sample_usage(FILE *f)
{
    fprintf(f, "Usage: flowrl piflow sample --ckpt STUDENT --out FILE.png|FILE.safetensors [--n N]\n"
               "       flowrl piflow teacher --ckpt TEACHER --out FILE.png|FILE.safetensors [--n N] [--num-steps 50]\n\n"
               "sample: one student call per sample at x_s ~ N(0, I), then the GM policy's rollout from sigma 1\n"
               "to 0 (no further network calls). teacher: the velocity model's Euler samples from sigma 1 to 0.\n"
               "An image task (shapes): sample i has training prompt i mod 52 (student and teacher alike), the\n"
               ".png is a grid, and the detector's accuracy of the samples is printed.\n");
}

static fr_status write_samples(const char *path, const fr_task *task, const float *x, int64_t n, int64_t D,
                               double extent)
{
    const size_t len = strlen(path);
    if (len > 4 && strcmp(path + len - 4, ".png") == 0 && task && task->C) { /* an image grid, prompts in turn */
        int *pid = malloc(sizeof(int) * (size_t)n);
        if (!pid) return FR_ERR_NOMEM;
        for (int64_t i = 0; i < n; i++) pid[i] = fr_task_prompt_in_turn(task, i);
        fr_status s = fr_task_render(task, path, (int)n, pid, x, 0, 1);
        free(pid);
        return s;
    }
    if (len > 4 && strcmp(path + len - 4, ".png") == 0) {
        if (D != 2) return fr_fail(FR_ERR_ARG, "%s: a scatter plot needs 2-D samples, these have D = %lld", path, (long long)D);
        fr_scatter_opts so = fr_scatter_opts_default();
        so.extent = (float)extent;
        return fr_png_write_scatter(path, x, (int)n, NULL, &so);
    }
    fr_st_file f;
    fr_st_init(&f);
    f.digests = 1;
    const int64_t shape[2] = {n, D};
    fr_tensor t = fr_tensor_f32((float *)x, 2, shape);
    fr_status s = fr_st_add(&f, "samples", &t);
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    return s;
}

static int cmd_sample_any(int argc, char **argv, int teacher)
{
    const char *CMD = teacher ? "piflow teacher" : "piflow sample";
    sample_opts a;
    fr_backend_opts bk;
    fr_opts o = {.cmd = CMD, .s = {&a, &bk}};
    fr_opts_add(&o, "Sampling", k_sample_rows, (int)(sizeof k_sample_rows / sizeof k_sample_rows[0]), 0);
    fr_opts_add(&o, "Backend", fr_backend_rows, fr_backend_nrows, 1);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status(CMD, FR_ERR_IO);
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, sample_usage, NULL, 0, NULL, &seen);
    if (rc >= 0) return rc;
    if (!a.ckpt[0] || !a.out[0]) return fr_cli_usage(CMD, "--ckpt CKPT and --out FILE are required");
    fr_backend be;
    rc = fr_cli_resolve_backend(CMD, &bk, &be);
    if (rc) return rc;
    const int64_t cap = a.n < 4096 ? a.n : 4096;
    int64_t D = 0;
    float *x = NULL;
    const fr_task *task = NULL; /* an image task's (prompts, picture, accuracy), else NULL */
    fr_status s;
    uint64_t nfe0 = be.work.fwd_rows;
    if (teacher) {
        fr_piflow_teacher t;
        s = fr_piflow_teacher_load(&t, &be, a.ckpt, cap);
        if (s == FR_OK) {
            D = t.D;
            task = t.ck.task->C ? t.ck.task : NULL;
            x = fr_malloc((size_t)(a.n * D) * sizeof *x);
            int *pid = task ? fr_malloc(sizeof(int) * (size_t)a.n) : NULL;
            s = x && (pid || !task) ? FR_OK : FR_ERR_NOMEM;
            for (int64_t i = 0; pid && i < a.n; i++) pid[i] = fr_task_prompt_in_turn(task, i);
            if (s == FR_OK) s = fr_piflow_teacher_sample_c(&t, a.n, a.steps, a.seed, pid, x);
            free(pid);
            fr_piflow_teacher_free(&t);
        }
    } else {
        fr_piflow_student st;
        s = fr_piflow_student_load(&st, &be, a.ckpt, cap);
        if (s == FR_OK) {
            D = st.D;
            task = st.img ? st.task : NULL;
            x = fr_malloc((size_t)(a.n * D) * sizeof *x);
            s = x ? fr_piflow_student_sample(&st, a.n, a.substeps, a.seed, x) : FR_ERR_NOMEM;
            fr_piflow_student_free(&st);
        }
    }
    if (s == FR_OK) s = write_samples(a.out, task, x, a.n, D, a.extent);
    if (s == FR_OK)
        printf("wrote %s: %lld samples of D %lld, %.2f network rows per sample\n", a.out, (long long)a.n, (long long)D,
               (double)(be.work.fwd_rows - nfe0) / (double)a.n);
    if (s == FR_OK && task) rc = fr_cli_print_accuracy(CMD, task, x, a.n);
    free(x);
    fr_backend_close(&be);
    return s == FR_OK ? rc : fr_cli_status(CMD, s);
}

/* ---- swd ----------------------------------------------------------------------------------- */

static fr_status read_samples(const char *path, fr_st_file *f, const fr_tensor **t)
{
    FR_TRY(fr_st_read(f, path));
    *t = fr_st_get(f, "samples");
    if (!*t || (*t)->dtype != FR_F32 || (*t)->ndim != 2) {
        fr_st_free(f);
        return fr_fail(FR_ERR_FORMAT, "%s: tensor 'samples' is %s, expected F32 (N, D)", path,
                       *t ? "of another dtype or shape" : "absent");
    }
    return FR_OK;
}

static int piflow_swd(int argc, char **argv)
{
    static const char *CMD = "piflow swd";
    if (fr_opts_wants_help(argc, argv)) {
        printf("Usage: flowrl piflow swd A.safetensors B.safetensors [N_PROJ] [SEED]\n\n"
               "The sliced Wasserstein-2 distance (flowrl/swd.h) between two sample files ('samples' (N, D)),\n"
               "N_PROJ directions (default 512) from Philox (SEED, default 0).\n");
        return 0;
    }
    if (argc < 3 || argc > 5) return fr_cli_usage(CMD, "expected A.safetensors B.safetensors [N_PROJ] [SEED]");
    const int n_proj = argc > 3 ? atoi(argv[3]) : 512;
    const uint32_t seed = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 0) : 0;
    fr_st_file fa, fb;
    const fr_tensor *ta, *tb;
    fr_status s = read_samples(argv[1], &fa, &ta);
    if (s != FR_OK) return fr_cli_status(CMD, s);
    s = read_samples(argv[2], &fb, &tb);
    if (s != FR_OK) {
        fr_st_free(&fa);
        return fr_cli_status(CMD, s);
    }
    double d = 0.0;
    if (ta->shape[1] != tb->shape[1])
        s = fr_fail(FR_ERR_ARG, "%s has D = %lld, %s D = %lld", argv[1], (long long)ta->shape[1], argv[2], (long long)tb->shape[1]);
    if (s == FR_OK)
        s = fr_sliced_w2(ta->data, ta->shape[0], tb->data, tb->shape[0], (int)ta->shape[1], n_proj, seed, &d);
    if (s == FR_OK) printf("sliced_w2 %.6f  (%lld vs %lld points, %d projections, seed %u)\n", d, (long long)ta->shape[0],
                           (long long)tb->shape[0], n_proj, seed);
    fr_st_free(&fa);
    fr_st_free(&fb);
    return s == FR_OK ? 0 : fr_cli_status(CMD, s);
}

int cmd_piflow(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return piflow_train(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "sample") == 0) return cmd_sample_any(argc - 1, argv + 1, 0);
    if (argc >= 2 && strcmp(argv[1], "teacher") == 0) return cmd_sample_any(argc - 1, argv + 1, 1);
    if (argc >= 2 && strcmp(argv[1], "swd") == 0) return piflow_swd(argc - 1, argv + 1);
    if (argc >= 2 && fr_opts_wants_help(argc, argv)) {
        printf("Usage: flowrl piflow train|sample|teacher|swd ...\n\n"
               "pi-Flow (docs/algorithms/piflow.md): train distils a flow teacher into a 1-NFE GM-policy\n"
               "student, sample draws from it, teacher draws the teacher's Euler samples, swd scores two\n"
               "sample files. flowrl piflow SUB --help lists each one's options.\n");
        return 0;
    }
    return fr_cli_usage("piflow", "expected a subcommand: train, sample, teacher or swd");
}
