/* Helpers of the run-loop suites (tests/run_testutil.h). */
#include "tests/run_testutil.h"

#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flowrl/cond.h"
#include "flowrl/model.h"
#include "flowrl/prefs.h"
#include "flowrl/runcompare.h"
#include "flowrl/task.h"
#include "tests/testutil.h"
#include "tests/model_testutil.h"

char fr_rt_dir[256];
char fr_rt_base[320];
char fr_rt_base_eps[320];

/* A tiny fresh gmm2d model predicting pred saved at path: its output is 0 at init (zero output
 * layer), so samples start as the sampler's noise and the halfplane reward starts near 0.5. */
static void save_gmm2d_base(const char *path, int pred)
{
    int64_t n_cond, n_slots;
    fr_cond_dims(&fr_task_gmm2d, &n_cond, &n_slots);
    fr_model_config mc;
    ck_assert_int_eq(fr_model_preset("gmm2d-s", 2, n_cond, &mc), FR_OK);
    mc.n_slots = n_slots;
    mc.H = 16;
    mc.F = 32;
    mc.n_blocks = 1;
    mc.E = 16;
    mc.pred = (fr_pred)pred;
    snprintf(mc.preset, sizeof mc.preset, "custom");
    fr_model m;
    ck_assert_int_eq(fr_model_init(&m, fr_test_ref_be(), &mc, 5), FR_OK);
    ck_assert_int_eq(fr_model_save(&m, path), FR_OK);
    fr_model_free(&m);
}

void fr_rt_setup(void)
{
    fr_test_mkdtemp(fr_rt_dir, sizeof fr_rt_dir, "run");
    snprintf(fr_rt_base, sizeof fr_rt_base, "%s/base.safetensors", fr_rt_dir);
    snprintf(fr_rt_base_eps, sizeof fr_rt_base_eps, "%s/base-eps.safetensors", fr_rt_dir);
    save_gmm2d_base(fr_rt_base, FR_PRED_VELOCITY);
    save_gmm2d_base(fr_rt_base_eps, FR_PRED_EPSILON);
}

void fr_rt_teardown(void) { fr_test_rmtree(fr_rt_dir); }

const char *fr_rt_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", fr_rt_dir, name);
    return buf;
}

void fr_rt_opts_init(fr_rt_opts *o, const fr_algo *a, const char *run, int64_t epochs)
{
    memset(o, 0, sizeof *o);
    o->a = a;
    o->ao = calloc(1, a->opts_size ? a->opts_size : 1);
    ck_assert_ptr_nonnull(o->ao);
    if (a->on_env) {
        const fr_env_class *ec = fr_env_first_of(a->env_kind);
        ck_assert_msg(ec != NULL, "%s: no environment of kind %s", a->name, a->env_kind ? a->env_kind : "gfn");
        o->eo = calloc(1, ec->opts_size ? ec->opts_size : 1);
        ck_assert_ptr_nonnull(o->eo);
        o->ro.env_class = ec;
        o->ro.env_opts = o->eo;
    }
    ck_assert_int_eq(fr_run_opts_defaults(NULL, &o->ro, a, o->ao), FR_OK);
    if (a->tiny) a->tiny(&o->ro, o->ao);
    snprintf(o->ro.c.base, sizeof o->ro.c.base, "%s", a->base_pred == FR_PRED_EPSILON ? fr_rt_base_eps : fr_rt_base);
    snprintf(o->ro.c.task, sizeof o->ro.c.task, "gmm2d");
    snprintf(o->ro.run.out, sizeof o->ro.run.out, "%s/%s", fr_rt_dir, run);
    o->ro.run.epochs = epochs;
    o->ro.run.seed = 11;
    o->ro.ev.eval_n = 0;
    fr_rt_set_prefs(o, "gmm2d");
}

static void write_prefs(const char *path, const char *task_name)
{
    struct stat st;
    if (stat(path, &st) == 0) return;
    const fr_task *task;
    ck_assert_int_eq(fr_task_get(task_name, &task), FR_OK);
    const int64_t N = 16, D = task->D;
    fr_prefs p;
    ck_assert_int_eq(fr_prefs_alloc(&p, N, D, 0), FR_OK);
    uint64_t s = 29;
    for (int64_t i = 0; i < N * D; i++) {
        p.x_w[i] = fr_test_uniform(&s, -1.0f, 1.0f);
        p.x_l[i] = fr_test_uniform(&s, -1.0f, 1.0f);
    }
    for (int64_t i = 0; i < N; i++) {
        p.prompt[i] = (int32_t)(i % task->n_train);
        p.r_w[i] = 1.0f;
        p.r_l[i] = (float)i / (float)(2 * N);
    }
    snprintf(p.task, sizeof p.task, "%s", task_name);
    snprintf(p.reward, sizeof p.reward, "%s", task->reward_names[0]);
    snprintf(p.tie_rule, sizeof p.tie_rule, FR_PREFS_TIE_RULE);
    snprintf(p.ckpt, sizeof p.ckpt, "synthetic");
    snprintf(p.ckpt_digest, sizeof p.ckpt_digest, "0123456789abcdef");
    snprintf(p.sampler, sizeof p.sampler, "sde");
    p.noise = 0.7f;
    p.steps = 4;
    p.cfg = 1.0f;
    p.seed = 3;
    ck_assert_msg(fr_prefs_write(path, &p) == FR_OK, "%s", fr_last_error());
    fr_prefs_free(&p);
}

void fr_rt_set_prefs(fr_rt_opts *o, const char *task)
{
    const fr_opt *row = NULL;
    for (int i = 0; i < o->a->n_rows; i++)
        if (strcmp(o->a->rows[i].key, "prefs") == 0) row = &o->a->rows[i];
    if (!row || !o->a->check) return;
    char *val = (char *)o->ao + row->off;
    val[0] = '\0';
    if (o->a->check(&o->ro, o->ao) == FR_OK) return; /* runs without one */
    char path[400];
    snprintf(path, sizeof path, "%s/prefs-%s.safetensors", fr_rt_dir, task);
    write_prefs(path, task);
    snprintf(val, row->size, "%s", path);
}

void fr_rt_opts_free(fr_rt_opts *o)
{
    free(o->ao);
    free(o->eo);
    o->ao = o->eo = NULL;
}

fr_status fr_rt_run(const fr_rt_opts *o, const char *bk, int threads, const fr_run_cb *cb, fr_run_result *res)
{
    fr_run_result r;
    fr_backend be = fr_test_backend(bk, 0, threads);
    fr_run_env env = {&be, cb, NULL, NULL};
    return fr_run_new(&o->ro, o->ao, &env, res ? res : &r);
}

typedef struct {
    int64_t epochs;
} resume_args;

static fr_status set_epochs(const fr_opts *now, fr_opts_seen *seen, void *user)
{
    const resume_args *ra = user;
    if (ra->epochs <= 0) return FR_OK;
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)ra->epochs);
    char *argv[] = {"train", "--epochs", v};
    return fr_opts_parse(now, 3, argv, 1, NULL, 0, NULL, seen);
}

fr_status fr_rt_resume(const char *run, int64_t epochs, int64_t from_step, const char *bk, int threads,
                       fr_run_result *res)
{
    char dir[512];
    fr_rt_path(dir, sizeof dir, run);
    resume_args ra = {epochs};
    fr_run_resume_req rq = {dir, from_step, set_epochs, &ra};
    fr_backend be = fr_test_backend(bk, 0, threads);
    fr_run_env env = {&be, NULL, NULL, NULL};
    fr_run_result r;
    return fr_run_resume(&rq, &env, res ? res : &r);
}

/* The record lines of an audit.log (step / scalar / end-step), without the header, env and
 * resume lines, which say where and how it ran, not what it computed. */
char *fr_rt_records(const char *run)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/audit.log", fr_rt_dir, run);
    size_t n;
    char *buf = fr_test_slurp(path, &n), *out = malloc(n + 1), *o = out;
    ck_assert_ptr_nonnull(out);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, "step ", 5) == 0 || strncmp(line, "scalar ", 7) == 0 || strncmp(line, "end-step ", 9) == 0)
            o += sprintf(o, "%s\n", line);
    *o = '\0';
    free(buf);
    return out;
}

void fr_rt_assert_same_records(const char *a, const char *b, int64_t steps)
{
    char *ra = fr_rt_records(a), *rb = fr_rt_records(b);
    char want[32];
    snprintf(want, sizeof want, "end-step %lld ", (long long)steps);
    ck_assert_msg(strstr(ra, want) != NULL, "%s has no complete step %lld", a, (long long)steps);
    ck_assert_msg(strcmp(ra, rb) == 0, "audit records of %s and %s differ", a, b);
    free(ra);
    free(rb);
    char pa[512], pb[512];
    fr_rt_path(pa, sizeof pa, a);
    fr_rt_path(pb, sizeof pb, b);
    fr_runs_cmp c;
    ck_assert_int_eq(fr_runs_compare(pa, pb, &c), FR_OK);
    ck_assert_msg(c.verdict == FR_RUNS_IDENTICAL && c.through_step == steps, "flowrl audit %s %s: %s", pa, pb,
                  c.n_lines ? c.lines[0] : "?");
    fr_runs_cmp_free(&c);
}

int fr_rt_cli(char *out, size_t n, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return fr_test_run_cli(args, out, n);
}

pid_t fr_rt_spawn(const char *const *args)
{
    const char *bin = getenv("FLOWRL_BIN");
    ck_assert_msg(bin != NULL, "FLOWRL_BIN is not set (make check sets it)");
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    for (int i = 0; args[i] && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        FILE *f = freopen("/dev/null", "w", stdout);
        f = freopen("/dev/null", "w", stderr);
        (void)f;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* 1 if run's checkpoints/ holds a step-N.safetensors with N >= step: a fast run (an environment
 * algorithm's tiny epochs take milliseconds) may have rotated step-N itself away (keep 2) between
 * two polls, so any later one counts. */
static int checkpoint_at_least(const char *run, int64_t step)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s/checkpoints", fr_rt_dir, run);
    DIR *d = opendir(p);
    if (!d) return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        long long n;
        char tail[32];
        found = sscanf(e->d_name, "step-%lld.%31s", &n, tail) == 2 && strcmp(tail, "safetensors") == 0 && n >= step;
    }
    closedir(d);
    return found;
}

void fr_rt_wait_checkpoint(const char *run, int64_t step, pid_t pid)
{
    for (int i = 0; i < 40000; i++) {
        if (checkpoint_at_least(run, step)) return;
        int status;
        ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "%s: the training child exited early (status %d)", run, status);
        usleep(500);
    }
    ck_abort_msg("no checkpoint %s/%s/checkpoints/step-N (N >= %lld) after 20 s", fr_rt_dir, run, (long long)step);
}

int fr_rt_curve_record(const fr_run_epoch_event *ev, void *user)
{
    fr_rt_curve *c = user;
    double r = fr_run_event_get(ev, "reward_mean");
    if (ev->epoch == 1) c->first = r;
    c->last3[c->n++ % 3] = r;
    return 0;
}

double fr_rt_curve_last3(const fr_rt_curve *c) { return (c->last3[0] + c->last3[1] + c->last3[2]) / 3.0; }

int fr_rt_metrics_record(const fr_run_epoch_event *ev, void *user)
{
    fr_rt_metrics *m = user;
    if (ev->epoch >= 1 && ev->epoch <= 16) {
        for (int k = 0; k < 8 && m->keys[k]; k++) m->v[k][ev->epoch - 1] = fr_run_event_get(ev, m->keys[k]);
        m->epochs = ev->epoch;
    }
    return 0;
}

double fr_rt_small_shapes_base(char *base, size_t n, int pred)
{
    snprintf(base, n, "%s/shapes-base%s.safetensors", fr_rt_dir, pred == FR_PRED_EPSILON ? "-eps" : "");
    const fr_task *task;
    ck_assert_int_eq(fr_task_get("shapes", &task), FR_OK);
    int64_t n_cond, n_slots;
    fr_cond_dims(task, &n_cond, &n_slots);
    fr_model_config mc;
    ck_assert_int_eq(fr_model_preset("shapes-s", task->D, n_cond, &mc), FR_OK);
    mc.n_slots = n_slots;
    mc.H = 16, mc.F = 16, mc.n_blocks = 1, mc.E = 16;
    mc.pred = (fr_pred)pred;
    if (pred == FR_PRED_EPSILON) fr_test_eps_head(&mc); /* shapes-s's x0 head, as `pretrain --pred epsilon` makes it */
    snprintf(mc.preset, sizeof mc.preset, "custom");
    fr_model m;
    ck_assert_int_eq(fr_model_init(&m, fr_test_ref_be(), &mc, 3), FR_OK);
    ck_assert_int_eq(fr_model_save(&m, base), FR_OK);
    const double params = (double)fr_model_num_params(&m);
    fr_model_free(&m);
    return params;
}
