/* The audit trail (include/flowrl/audit.h), run archives (include/flowrl/archive.h), the run
 * comparison (include/flowrl/runcompare.h) and their CLI commands (audit, pack, tensors on
 * archive members). Synthetic runs are written with the audit writer and fr_st_write; the
 * planted differences are single bit flips. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include "flowrl/archive.h"
#include "flowrl/audit.h"
#include "flowrl/digest.h"
#include "flowrl/runcompare.h"
#include "flowrl/safetensors.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define N_STEPS 4
#define RECS_PER_STEP 8
static char g_out[1 << 16];

static void xsystem(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    ck_assert_msg(system(cmd) == 0, "command failed: %s", cmd);
}

static char *tmpdir(void)
{
    static char buf[512];
    const char *t = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/flowrl-audit-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
    return buf;
}

static void spit(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(s, f);
    fclose(f);
}

/* What to plant in a run: a one-bit flip of params/w element 5 from step plant_step on
 * (it persists, as a real divergence would), or of the loss at loss_step. */
typedef struct {
    int plant_step;
    int loss_step;
    int steps;      /* complete steps (N_STEPS unless shorter) */
    int kill_after; /* >0: step steps+1 is begun and killed after this many records */
} plan;

static void flip_low_bit(float *x)
{
    uint32_t u;
    memcpy(&u, x, 4);
    u ^= 1u;
    memcpy(x, &u, 4);
}

/* A synthetic run in DIR: config.json, samples/, audit.log and checkpoints/step-N. */
static void make_run(const char *dir, uint64_t seed, plan p)
{
    char path[1024];
    xsystem("mkdir -p %s/checkpoints %s/samples", dir, dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    spit(path, "{\"task\":\"gmm2d\",\"lr\":0.001}\n");
    snprintf(path, sizeof path, "%s/samples/before.png", dir);
    spit(path, "not really a png, only bytes to pack\n");
    snprintf(path, sizeof path, "%s/audit.log", dir);
    fr_audit_kv extra[] = {{"gpu.arch", "none"}, {"test.seed", "42"}};
    fr_audit_opts o = {"ref", 1, extra, 2, 0};
    fr_audit *a;
    ck_assert_msg(fr_audit_open(&a, path, &o) == FR_OK, "%s", fr_last_error());
    uint64_t s = seed;
    float w[4 * 8], b[8], g[4 * 8], m[4 * 8], noise[2 * 3 * 2];
    double adv[6];
    int64_t counts[3];
    int last = p.steps + (p.kill_after > 0);
    for (int step = 1; step <= last; step++) {
        for (int i = 0; i < 32; i++) {
            w[i] = fr_test_uniform(&s, -1, 1);
            g[i] = fr_test_uniform(&s, -1, 1);
            m[i] = fr_test_uniform(&s, -1, 1);
        }
        for (int i = 0; i < 8; i++) b[i] = fr_test_uniform(&s, -1, 1);
        for (int i = 0; i < 12; i++) noise[i] = fr_test_uniform(&s, -3, 3);
        for (int i = 0; i < 6; i++) adv[i] = fr_test_uniform(&s, -2, 2);
        for (int i = 0; i < 3; i++) counts[i] = (int64_t)(fr_test_next(&s) % 100);
        float loss = fr_test_uniform(&s, 0, 1);
        double reward = fr_test_uniform(&s, 0, 1);
        if (p.plant_step && step >= p.plant_step) flip_low_bit(&w[5]);
        if (p.loss_step == step) flip_low_bit(&loss);
        fr_tensor tw = fr_tensor_f32(w, 2, (int64_t[]){4, 8}), tb = fr_tensor_f32(b, 1, (int64_t[]){8});
        fr_tensor tg = fr_tensor_f32(g, 2, (int64_t[]){4, 8}), tm = fr_tensor_f32(m, 2, (int64_t[]){4, 8});
        fr_tensor tn = fr_tensor_f32(noise, 3, (int64_t[]){2, 3, 2});
        fr_tensor ta = fr_tensor_view(adv, FR_F64, 2, (int64_t[]){2, 3});
        fr_tensor tc = fr_tensor_view(counts, FR_I64, 1, (int64_t[]){3});
        int kill = step > p.steps ? p.kill_after : RECS_PER_STEP;
        ck_assert(fr_audit_begin_step(a, step) == FR_OK);
        const struct { const char *n; fr_tensor *t; } recs[] = {
            {"noise", &tn}, {"params/w", &tw}, {"params/b", &tb}, {"grads/w", &tg},
            {"adam.m/w", &tm}, {"advantages", &ta}, {"counts", &tc},
        };
        for (int r = 0; r < 7 && r < kill; r++)
            ck_assert_msg(fr_audit_tensor(a, recs[r].n, recs[r].t) == FR_OK, "%s", fr_last_error());
        if (kill < RECS_PER_STEP) {
            ck_assert(fr_audit_close(a) == FR_ERR_ARG); /* closed with a step open */
            return;
        }
        ck_assert(fr_audit_scalar_f32(a, "loss", loss) == FR_OK);
        ck_assert(fr_audit_end_step(a) == FR_OK);
        fr_st_file f;
        fr_st_init(&f);
        ck_assert(fr_st_add(&f, "params/w", &tw) == FR_OK);
        ck_assert(fr_st_add(&f, "params/b", &tb) == FR_OK);
        ck_assert(fr_st_add(&f, "adam.m/w", &tm) == FR_OK);
        ck_assert(fr_st_set_meta(&f, "step", step == 1 ? "1" : step == 2 ? "2" : step == 3 ? "3" : "4") == FR_OK);
        char ck[128];
        snprintf(path, sizeof path, "%s/%s", dir, fr_checkpoint_name(step, ck, sizeof ck));
        ck_assert_msg(fr_st_write(&f, path) == FR_OK, "%s", fr_last_error());
        fr_st_free(&f);
        (void)reward;
    }
    ck_assert_int_eq(fr_audit_last_step(a), p.steps);
    ck_assert(fr_audit_close(a) == FR_OK);
}

static const plan k_plain = {0, 0, N_STEPS, 0};

static void compare(const char *a, const char *b, fr_runs_cmp *c)
{
    ck_assert_msg(fr_runs_compare(a, b, c) == FR_OK, "%s", fr_last_error());
}

static int has_line(const fr_runs_cmp *c, const char *needle)
{
    for (size_t i = 0; i < c->n_lines; i++)
        if (strstr(c->lines[i], needle)) return 1;
    return 0;
}

static void dump(const fr_runs_cmp *c)
{
    for (size_t i = 0; i < c->n_lines; i++) fprintf(stderr, "  | %s\n", c->lines[i]);
}

START_TEST(test_format_lines)
{
    char *d = tmpdir(), path[1024];
    snprintf(path, sizeof path, "%s/audit.log", d);
    fr_audit *a;
    fr_audit_opts o = {"ref", 3, NULL, 0, 1};
    ck_assert(fr_audit_open(&a, path, &o) == FR_OK);
    float x[6] = {1, 2, 3, 4, 5, 6};
    fr_tensor t = fr_tensor_f32(x, 2, (int64_t[]){2, 3});
    double z = 0.0;
    fr_tensor s0 = fr_tensor_view(&z, FR_F64, 0, NULL);
    ck_assert(fr_audit_begin_step(a, 7) == FR_OK);
    ck_assert(fr_audit_tensor(a, "params/x", &t) == FR_OK);
    /* a digest computed by the caller (on a host thread: core/run_record.c) writes the same line */
    ck_assert(fr_audit_tensor_digested(a, "zero", &s0, fr_tensor_digest(&s0)) == FR_OK);
    ck_assert(fr_audit_scalar_f32(a, "loss", -0.1875f) == FR_OK);
    ck_assert(fr_audit_end_step(a) == FR_OK);
    ck_assert(fr_audit_close(a) == FR_OK);
    size_t n;
    char *txt = fr_test_slurp(path, &n);
    char hx[17], hz[17], hl[17], want[512];
    fr_digest_hex(fr_tensor_digest(&t), hx);
    fr_digest_hex(fr_tensor_digest(&s0), hz);
    float lv = -0.1875f;
    fr_tensor tl = fr_tensor_f32(&lv, 0, NULL);
    fr_digest_hex(fr_tensor_digest(&tl), hl);
    snprintf(want, sizeof want,
             "step 7 params/x F32 [2,3] %s\nstep 7 zero F64 [] %s\nscalar 7 loss F32 -0x1.8p-3 %s\nend-step 7 3\n",
             hx, hz, hl);
    ck_assert_msg(strncmp(txt, "flowrl-audit 1\nenv format.version 1\nenv flowrl.version ", 55) == 0, "%s", txt);
    ck_assert_msg(strstr(txt, "\nenv backend ref\n") && strstr(txt, "\nenv threads 3\n") &&
                  strstr(txt, "\nenv lib.xxhash ") && strstr(txt, "\nenv build.flags ") &&
                  strstr(txt, "\nenv build.compiler ") && strstr(txt, "\nenv build.target ") &&
                  strstr(txt, "\nenv opt.path ") &&
                  strstr(txt, "\nenv cpu.features "), "%s", txt);
    ck_assert_msg(n > strlen(want) && strcmp(txt + n - strlen(want), want) == 0, "got:\n%s\nwant tail:\n%s", txt, want);
    fr_audit_log log;
    ck_assert_msg(fr_audit_read(&log, path) == FR_OK, "%s", fr_last_error());
    ck_assert_uint_eq(log.n_steps, 1);
    ck_assert_int_eq(log.steps[0].step, 7);
    ck_assert_uint_eq(log.steps[0].n, 3);
    ck_assert_int_eq(log.steps[0].recs[0].ndim, 2);
    ck_assert_int_eq(log.steps[0].recs[0].shape[1], 3);
    ck_assert(log.steps[0].recs[2].kind == FR_AUDIT_SCALAR && log.steps[0].recs[2].value == -0.1875);
    ck_assert_str_eq(fr_audit_env_get(&log, "backend"), "ref");
    ck_assert(!log.incomplete_step && !log.torn_tail);
    fr_audit_log_free(&log);
    free(txt);
    xsystem("rm -rf %s", d);
}
END_TEST

START_TEST(test_writer_misuse)
{
    char *d = tmpdir(), path[1024];
    snprintf(path, sizeof path, "%s/audit.log", d);
    fr_audit *a;
    fr_audit_kv bad[] = {{"has space", "x"}};
    fr_audit_opts ob = {"ref", 1, bad, 1, 0};
    ck_assert(fr_audit_open(&a, path, &ob) == FR_ERR_ARG);
    ck_assert(access(path, F_OK) != 0); /* nothing half-written */
    ck_assert(fr_audit_open(&a, path, NULL) == FR_OK);
    float x = 1;
    fr_tensor t = fr_tensor_f32(&x, 1, (int64_t[]){1});
    ck_assert(fr_audit_tensor(a, "x", &t) == FR_ERR_ARG);  /* outside a step */
    ck_assert(fr_audit_begin_step(a, 0) == FR_ERR_ARG);    /* steps start at 1 */
    ck_assert(fr_audit_begin_step(a, 2) == FR_OK);
    ck_assert(fr_audit_begin_step(a, 3) == FR_ERR_ARG);    /* 2 still open */
    ck_assert(fr_audit_tensor(a, "a b", &t) == FR_ERR_ARG);
    ck_assert(fr_audit_tensor(a, "", &t) == FR_ERR_ARG);
    ck_assert(fr_audit_tensor(a, "x", &t) == FR_OK);
    ck_assert(fr_audit_scalar_f64(a, "x", 1.0) == FR_ERR_ARG); /* duplicate */
    fr_tensor dev = t;
    dev.device = FR_DEVICE_CUDA;
    ck_assert(fr_audit_tensor(a, "dev", &dev) == FR_ERR_ARG);
    ck_assert(fr_audit_tensor_digested(a, "dev", &dev, 0) == FR_ERR_ARG);
    ck_assert(fr_audit_end_step(a) == FR_OK);
    ck_assert(fr_audit_end_step(a) == FR_ERR_ARG);
    ck_assert(fr_audit_begin_step(a, 2) == FR_ERR_ARG);    /* not increasing */
    ck_assert(fr_audit_close(a) == FR_OK);
    /* the misuse left the log valid */
    fr_audit_log log;
    ck_assert_msg(fr_audit_read(&log, path) == FR_OK, "%s", fr_last_error());
    ck_assert_uint_eq(log.n_records, 1);
    fr_audit_log_free(&log);
    xsystem("rm -rf %s", d);
}
END_TEST

START_TEST(test_identical_and_planted)
{
    char *d = tmpdir(), ra[600], rb[600], rc[600], rl[600];
    snprintf(ra, sizeof ra, "%s/a", d);
    snprintf(rb, sizeof rb, "%s/b", d);
    snprintf(rc, sizeof rc, "%s/c", d);
    snprintf(rl, sizeof rl, "%s/l", d);
    make_run(ra, 11, k_plain);
    make_run(rb, 11, k_plain);
    make_run(rc, 11, (plan){3, 0, N_STEPS, 0});
    make_run(rl, 11, (plan){0, 2, N_STEPS, 0});
    fr_runs_cmp c;
    compare(ra, rb, &c);
    ck_assert_int_eq(c.verdict, FR_RUNS_IDENTICAL);
    ck_assert_int_eq(c.through_step, N_STEPS);
    ck_assert_uint_eq(c.through_records, N_STEPS * RECS_PER_STEP);
    ck_assert(has_line(&c, "identical through step 4 (4 steps, 32 records)"));
    fr_runs_cmp_free(&c);

    compare(ra, rc, &c);
    if (c.verdict != FR_RUNS_DIFFER || c.diff_step != 3) dump(&c);
    ck_assert_int_eq(c.verdict, FR_RUNS_DIFFER);
    ck_assert_int_eq(c.diff_step, 3);
    ck_assert_str_eq(c.diff_name, "params/w");
    ck_assert_int_eq(c.through_step, 2);
    ck_assert(c.has_elements);
    ck_assert_int_eq(c.elements.n_differ, 1);
    ck_assert_int_eq(c.elements.first_index, 5);
    ck_assert_int_eq(c.elements.first_coord[0], 0);
    ck_assert_int_eq(c.elements.first_coord[1], 5);
    ck_assert_uint_eq(c.elements.max_ulp, 1);
    ck_assert(c.elements.max_abs > 0 && c.elements.max_abs == fabs(c.elements.first_a - c.elements.first_b));
    ck_assert(has_line(&c, "differ at step 3, tensor 'params/w'"));
    ck_assert(has_line(&c, "max ulp diff 1"));
    ck_assert(has_line(&c, "identical through step 2 (2 steps, 16 records)"));
    fr_runs_cmp_free(&c);

    compare(rl, ra, &c); /* scalar: compared from the exact values in the logs */
    ck_assert_int_eq(c.verdict, FR_RUNS_DIFFER);
    ck_assert_int_eq(c.diff_step, 2);
    ck_assert_str_eq(c.diff_name, "loss");
    ck_assert(c.has_elements && c.elements.max_ulp == 1);
    ck_assert(has_line(&c, "differ at step 2, scalar 'loss'"));
    fr_runs_cmp_free(&c);

    /* a planted change in a tensor the checkpoints do not keep: digests only */
    char logp[1024], *txt;
    size_t n;
    snprintf(logp, sizeof logp, "%s/audit.log", rb);
    txt = fr_test_slurp(logp, &n);
    char *line = strstr(txt, "step 2 grads/w F32 [4,8] ");
    ck_assert_ptr_nonnull(line);
    char *dig = line + strlen("step 2 grads/w F32 [4,8] ");
    dig[15] = dig[15] == '0' ? '1' : '0';
    spit(logp, txt);
    free(txt);
    compare(ra, rb, &c);
    ck_assert_int_eq(c.diff_step, 2);
    ck_assert_str_eq(c.diff_name, "grads/w");
    ck_assert(!c.has_elements);
    ck_assert(has_line(&c, "elements: not kept"));
    fr_runs_cmp_free(&c);
    xsystem("rm -rf %s", d);
}
END_TEST

START_TEST(test_prefix_and_missing)
{
    char *d = tmpdir(), ra[600], rs[600];
    snprintf(ra, sizeof ra, "%s/a", d);
    snprintf(rs, sizeof rs, "%s/s", d);
    make_run(ra, 5, k_plain);
    make_run(rs, 5, (plan){0, 0, 2, 0});
    fr_runs_cmp c;
    compare(rs, ra, &c);
    ck_assert_int_eq(c.verdict, FR_RUNS_PREFIX);
    ck_assert_int_eq(c.through_step, 2);
    ck_assert(has_line(&c, "A ends there; B continues to step 4 (2 more complete steps)"));
    fr_runs_cmp_free(&c);
    /* a run whose log lacks one record of a step */
    char logp[1024], *txt;
    size_t n;
    snprintf(logp, sizeof logp, "%s/audit.log", rs);
    txt = fr_test_slurp(logp, &n);
    char *l = strstr(txt, "step 2 counts ");
    char *e = strchr(l, '\n') + 1;
    memmove(l, e, strlen(e) + 1);
    char *end = strstr(txt, "end-step 2 8");
    end[11] = '7';
    spit(logp, txt);
    free(txt);
    compare(ra, rs, &c);
    ck_assert_int_eq(c.verdict, FR_RUNS_DIFFER);
    ck_assert_str_eq(c.diff_name, "counts");
    ck_assert(has_line(&c, "B: no record 'counts' in step 2"));
    fr_runs_cmp_free(&c);
    xsystem("rm -rf %s", d);
}
END_TEST

START_TEST(test_killed_and_resumed)
{
    char *d = tmpdir(), ra[600], rk[600], logp[1024];
    snprintf(ra, sizeof ra, "%s/a", d);
    snprintf(rk, sizeof rk, "%s/k", d);
    make_run(ra, 9, k_plain);
    make_run(rk, 9, (plan){0, 0, 3, 3}); /* steps 1..3, killed 3 records into step 4 */
    snprintf(logp, sizeof logp, "%s/audit.log", rk);
    FILE *f = fopen(logp, "a");
    fputs("step 4 adam.m/w F32 [4,8] 12ab", f); /* a torn last line */
    fclose(f);
    fr_audit_log log;
    ck_assert_msg(fr_audit_read(&log, logp) == FR_OK, "%s", fr_last_error());
    ck_assert_uint_eq(log.n_steps, 3);
    ck_assert_int_eq(log.incomplete_step, 4);
    ck_assert_uint_eq(log.incomplete_records, 3);
    ck_assert(log.torn_tail);
    size_t end3 = log.steps[2].end_offset, end1 = log.steps[0].end_offset;
    fr_audit_log_free(&log);
    fr_runs_cmp c;
    compare(ra, rk, &c); /* the incomplete step is a note, the rest a prefix */
    ck_assert_int_eq(c.verdict, FR_RUNS_PREFIX);
    ck_assert_int_eq(c.through_step, 3);
    ck_assert(has_line(&c, "note: B's step 4 is incomplete (3 records"));
    fr_runs_cmp_free(&c);
    fr_audit *a;
    ck_assert(fr_audit_open(&a, logp, NULL) == FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "step 4 is incomplete"), "%s", fr_last_error());
    ck_assert(fr_audit_truncate_to_step(logp, 5) == FR_ERR_MISMATCH);
    ck_assert_msg(fr_audit_truncate_to_step(logp, 3) == FR_OK, "%s", fr_last_error());
    struct stat sb;
    ck_assert(stat(logp, &sb) == 0 && (size_t)sb.st_size == end3);
    /* resume: step 4 written again by a fresh writer gives the uninterrupted run's digests */
    char full[1024];
    snprintf(full, sizeof full, "%s/full", d);
    make_run(full, 9, k_plain);
    fr_audit_log lf;
    snprintf(full, sizeof full, "%s/full/audit.log", d);
    ck_assert(fr_audit_read(&lf, full) == FR_OK);
    fr_audit_opts o = {"ref", 4, NULL, 0, 1};
    ck_assert_msg(fr_audit_open(&a, logp, &o) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_audit_last_step(a), 3);
    ck_assert(fr_audit_begin_step(a, 3) == FR_ERR_ARG);
    ck_assert(fr_audit_begin_step(a, 4) == FR_OK);
    const fr_audit_step *s4 = &lf.steps[3];
    for (size_t i = 0; i < s4->n; i++) {
        const fr_audit_record *r = &s4->recs[i];
        if (r->kind == FR_AUDIT_SCALAR) ck_assert(fr_audit_scalar_f32(a, r->name, (float)r->value) == FR_OK);
        else ck_assert(fr_audit_digest(a, r->name, r->dtype, r->ndim, r->shape, r->digest) == FR_OK);
    }
    ck_assert(fr_audit_end_step(a) == FR_OK);
    ck_assert(fr_audit_close(a) == FR_OK);
    fr_audit_log_free(&lf);
    char ck[2048];
    snprintf(ck, sizeof ck, "cp %s/checkpoints/step-4.safetensors %s/checkpoints/", ra, rk);
    xsystem("%s", ck);
    compare(ra, rk, &c);
    if (c.verdict != FR_RUNS_IDENTICAL) dump(&c);
    ck_assert_int_eq(c.verdict, FR_RUNS_IDENTICAL);
    ck_assert(has_line(&c, "note: B was resumed 1 time"));
    ck_assert(has_line(&c, "note: environment: threads is '1' in A, '1' in B") == 0);
    fr_runs_cmp_free(&c);
    /* truncating further back, and to the header only */
    ck_assert(fr_audit_truncate_to_step(logp, 1) == FR_OK);
    ck_assert(stat(logp, &sb) == 0 && (size_t)sb.st_size == end1);
    ck_assert(fr_audit_truncate_to_step(logp, 0) == FR_OK);
    ck_assert(fr_audit_read(&log, logp) == FR_OK);
    ck_assert_uint_eq(log.n_steps, 0);
    ck_assert_uint_eq(log.n_resumes, 0);
    ck_assert(log.n_env > 5);
    fr_audit_log_free(&log);
    xsystem("rm -rf %s", d);
}
END_TEST

START_TEST(test_env_notes)
{
    char *d = tmpdir(), ra[600], rb[600], logp[1024];
    snprintf(ra, sizeof ra, "%s/a", d);
    snprintf(rb, sizeof rb, "%s/b", d);
    make_run(ra, 3, k_plain);
    make_run(rb, 3, k_plain);
    snprintf(logp, sizeof logp, "%s/audit.log", rb);
    size_t n;
    char *txt = fr_test_slurp(logp, &n);
    char *t = strstr(txt, "env threads 1\n");
    ck_assert_ptr_nonnull(t);
    t[12] = '8';
    spit(logp, txt);
    free(txt);
    fr_runs_cmp c;
    compare(ra, rb, &c);
    ck_assert_int_eq(c.verdict, FR_RUNS_IDENTICAL); /* the environment is not compared */
    ck_assert(has_line(&c, "note: environment: threads is '1' in A, '8' in B"));
    fr_runs_cmp_free(&c);
    xsystem("rm -rf %s", d);
}
END_TEST

/* Each malformed log fails with "LABEL:LINE:" and a hint. */
START_TEST(test_malformed)
{
    static const char *H = "flowrl-audit 1\nenv backend ref\n";
    /* digest of the F32 0-d value 1.5, computed below */
    float one5 = 1.5f;
    fr_tensor t15 = fr_tensor_f32(&one5, 0, NULL);
    char d15[17];
    fr_digest_hex(fr_tensor_digest(&t15), d15);
    char ok_scalar[128];
    snprintf(ok_scalar, sizeof ok_scalar, "scalar 1 loss F32 0x1.8p+0 %s\n", d15);
    const char *D = "0123456789abcdef";
    struct { char body[512]; int line; const char *msg; } cases[] = {
        {"", 0, "empty file"},
        {"flowrl-audit 2\n", 1, "format version 2"},
        {"hello world\n", 1, "not an audit log"},
        {"flowrl-aud", 1, "first line is incomplete"},
        {"", 3, "digest"},         /* short digest */
        {"", 5, "says 1 records, the step has 2"},
        {"", 3, "end-step 1 without records"},
        {"", 5, "steps must increase"},
        {"", 4, "appears twice"},
        {"", 5, "env line outside"},
        {"", 3, "does not match the scalar value"},
        {"", 3, "single spaces"},
        {"", 3, "control byte 0x0d"},
        {"", 4, "record of step 2 inside step 1"},
        {"", 3, "shape '[2,,3]'"},
        {"", 3, "shape '[01]'"},
        {"", 3, "dtype 'F33'"},
        {"", 3, "step number '01'"},
        {"", 3, "unknown line"},
        {"", 3, "hex float"},
        {"", 3, "shape '[1,2,3,4,5]'"},
        {"", 4, "resume inside step 1"},
    };
    snprintf(cases[4].body, 512, "%sstep 1 w F32 [2,3] 0123\n", H);
    snprintf(cases[5].body, 512, "%sstep 1 w F32 [2,3] %s\nstep 1 v F32 [] %s\nend-step 1 1\n", H, D, D);
    snprintf(cases[6].body, 512, "%send-step 1 0\n", H);
    snprintf(cases[7].body, 512, "%sstep 2 w F32 [2] %s\nend-step 2 1\nstep 1 w F32 [2] %s\n", H, D, D);
    snprintf(cases[8].body, 512, "%sstep 1 w F32 [2] %s\nstep 1 w F32 [2] %s\nend-step 1 2\n", H, D, D);
    snprintf(cases[9].body, 512, "%sstep 1 w F32 [2] %s\nend-step 1 1\nenv x y\n", H, D);
    snprintf(cases[10].body, 512, "%sscalar 1 loss F32 0x1.8p+1 %s\n", H, d15);
    snprintf(cases[11].body, 512, "%sstep 1 w F32  [2] %s\n", H, D);
    snprintf(cases[12].body, 512, "%sstep 1 w F32 [2] %s\r\n", H, D);
    snprintf(cases[13].body, 512, "%sstep 1 w F32 [2] %s\nstep 2 w F32 [2] %s\n", H, D, D);
    snprintf(cases[14].body, 512, "%sstep 1 w F32 [2,,3] %s\n", H, D);
    snprintf(cases[15].body, 512, "%sstep 1 w F32 [01] %s\n", H, D);
    snprintf(cases[16].body, 512, "%sstep 1 w F33 [1] %s\n", H, D);
    snprintf(cases[17].body, 512, "%sstep 01 w F32 [1] %s\n", H, D);
    snprintf(cases[18].body, 512, "%sSTEP 1 w F32 [1] %s\n", H, D);
    snprintf(cases[19].body, 512, "%sscalar 1 loss F32 1.5 %s\n", H, d15);
    snprintf(cases[20].body, 512, "%sstep 1 w F32 [1,2,3,4,5] %s\n", H, D);
    snprintf(cases[21].body, 512, "%s%sresume\n", H, ok_scalar);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fr_audit_log log;
        fr_status s = fr_audit_parse(&log, cases[i].body, strlen(cases[i].body), "x.log");
        ck_assert_msg(s == FR_ERR_FORMAT, "case %zu parsed: %s", i, cases[i].body);
        char where[32];
        snprintf(where, sizeof where, "x.log:%d: ", cases[i].line);
        const char *m = fr_last_error();
        ck_assert_msg(cases[i].line == 0 || strncmp(m, where, strlen(where)) == 0, "case %zu: '%s', want '%s'", i, m, where);
        ck_assert_msg(strstr(m, cases[i].msg) != NULL, "case %zu: '%s', want '%s'", i, m, cases[i].msg);
        ck_assert_ptr_null(log.steps);
    }
    /* and the valid pieces of those cases do parse */
    char good[512];
    snprintf(good, sizeof good, "%s%send-step 1 1\nresume\nenv threads 2\n", H, ok_scalar);
    fr_audit_log log;
    ck_assert_msg(fr_audit_parse(&log, good, strlen(good), "g") == FR_OK, "%s", fr_last_error());
    ck_assert_uint_eq(log.n_resumes, 1);
    ck_assert_str_eq(fr_audit_env_get(&log, "backend"), "ref");
    ck_assert_ptr_null(fr_audit_env_get(&log, "threads")); /* block 1, not the header */
    fr_audit_log_free(&log);
}
END_TEST

START_TEST(test_archives)
{
    char *d = tmpdir(), ra[600], rc[600], pa[1024], pa2[1024], pc[1024], ra2[600], pa3[1024];
    snprintf(ra, sizeof ra, "%s/a", d);
    snprintf(rc, sizeof rc, "%s/c", d);
    snprintf(ra2, sizeof ra2, "%s/a2", d);
    snprintf(pa, sizeof pa, "%s/a.tar.zst", d);
    snprintf(pa2, sizeof pa2, "%s/a-again.tar.zst", d);
    snprintf(pa3, sizeof pa3, "%s/a2.tar.zst", d);
    snprintf(pc, sizeof pc, "%s/c.tar.zst", d);
    make_run(ra, 21, k_plain);
    make_run(rc, 21, (plan){3, 0, N_STEPS, 0});
    ck_assert_msg(fr_archive_pack_dir(ra, pa, 0) == FR_OK, "%s", fr_last_error());
    ck_assert(fr_archive_pack_dir(ra, pa, 0) == FR_ERR_ARG); /* no overwrite */
    ck_assert_msg(strstr(fr_last_error(), "--force"), "%s", fr_last_error());
    ck_assert(fr_archive_pack_dir(ra, pa, 1) == FR_OK);
    ck_assert(fr_archive_pack_dir(rc, pc, 0) == FR_OK);
    ck_assert(fr_archive_sniff(pa) && !fr_archive_sniff(ra));
    /* determinism: again, and from a copy with other mtimes, modes and creation order */
    ck_assert(fr_archive_pack_dir(ra, pa2, 0) == FR_OK);
    xsystem("mkdir -p %s/samples %s/checkpoints && for f in $(cd %s && find . -type f | sort -r); do cp %s/$f %s/$f; done",
            ra2, ra2, ra, ra, ra2);
    xsystem("chmod 600 %s/config.json && touch -d 2001-01-01 %s/audit.log", ra2, ra2);
    ck_assert(fr_archive_pack_dir(ra2, pa3, 0) == FR_OK);
    size_t n1, n2, n3;
    char *b1 = fr_test_slurp(pa, &n1), *b2 = fr_test_slurp(pa2, &n2), *b3 = fr_test_slurp(pa3, &n3);
    ck_assert_msg(n1 == n2 && memcmp(b1, b2, n1) == 0, "packing twice gave different bytes");
    ck_assert_msg(n1 == n3 && memcmp(b1, b3, n1) == 0, "a copy with other mtimes/modes packed differently");
    free(b1);
    free(b2);
    free(b3);
    /* members: sorted, relative, the log bytes as in the directory */
    fr_archive_member *m;
    size_t n;
    ck_assert(fr_archive_list(pa, &m, &n) == FR_OK);
    ck_assert_uint_eq(n, 3 + N_STEPS + 2); /* audit.log, config.json, samples/before.png, 2 dirs */
    ck_assert_str_eq(m[0].name, "audit.log");
    ck_assert_str_eq(m[1].name, "checkpoints");
    ck_assert(m[1].is_dir);
    ck_assert_str_eq(m[2].name, "checkpoints/step-1.safetensors");
    for (size_t i = 1; i < n; i++) ck_assert_msg(strcmp(m[i - 1].name, m[i].name) < 0, "%s", m[i].name);
    fr_archive_members_free(m, n);
    char logp[1024];
    snprintf(logp, sizeof logp, "%s/audit.log", ra);
    size_t ln;
    char *logtxt = fr_test_slurp(logp, &ln);
    void *buf;
    size_t len;
    int found;
    ck_assert(fr_archive_read_member(pa, "./audit.log", 1 << 20, &buf, &len, &found) == FR_OK && found);
    ck_assert(len == ln && memcmp(buf, logtxt, ln) == 0);
    free(buf);
    free(logtxt);
    ck_assert(fr_archive_read_member(pa, "audit.log", 10, &buf, &len, &found) == FR_ERR_NOMEM);
    ck_assert(fr_archive_read_member(pa, "nope", 10, &buf, &len, &found) == FR_OK && !found);
    ck_assert(fr_archive_read_member(pa, "nope", 10, &buf, &len, NULL) == FR_ERR_ARG);
    /* audits across directories and archives */
    const char *pairs[][2] = {{pa, ra}, {ra, pa}, {pa, pa2}};
    for (size_t i = 0; i < 3; i++) {
        fr_runs_cmp c;
        compare(pairs[i][0], pairs[i][1], &c);
        ck_assert_int_eq(c.verdict, FR_RUNS_IDENTICAL);
        fr_runs_cmp_free(&c);
    }
    const char *diffs[][2] = {{ra, pc}, {pc, ra}, {pa, pc}, {pc, rc}};
    for (size_t i = 0; i < 4; i++) {
        fr_runs_cmp c;
        compare(diffs[i][0], diffs[i][1], &c);
        if (i < 3) {
            ck_assert_int_eq(c.verdict, FR_RUNS_DIFFER);
            ck_assert_int_eq(c.diff_step, 3);
            ck_assert_str_eq(c.diff_name, "params/w");
            ck_assert(c.has_elements && c.elements.max_ulp == 1 && c.elements.first_index == 5);
        } else {
            ck_assert_int_eq(c.verdict, FR_RUNS_IDENTICAL);
        }
        fr_runs_cmp_free(&c);
    }
    /* symlinks are refused, and nothing is left behind */
    char pl[1024];
    snprintf(pl, sizeof pl, "%s/l.tar.zst", d);
    xsystem("ln -s config.json %s/link", ra2);
    ck_assert(fr_archive_pack_dir(ra2, pl, 0) == FR_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(fr_last_error(), "symbolic link"), "%s", fr_last_error());
    ck_assert(access(pl, F_OK) != 0);
    xsystem("test -z \"$(ls %s | grep tmp)\"", d);
    xsystem("rm -rf %s", d);
}
END_TEST

START_TEST(test_cli)
{
    char *d = tmpdir(), ra[600], rc[600], rs[600], args[3000];
    snprintf(ra, sizeof ra, "%s/a", d);
    snprintf(rc, sizeof rc, "%s/c", d);
    snprintf(rs, sizeof rs, "%s/s", d);
    make_run(ra, 7, k_plain);
    make_run(rc, 7, (plan){3, 0, N_STEPS, 0});
    make_run(rs, 7, (plan){0, 0, 3, 0});
#define RUN(want, ...)                                                                     \
    do {                                                                                   \
        snprintf(args, sizeof args, __VA_ARGS__);                                          \
        int rc_ = fr_test_run_cli(args, g_out, sizeof g_out);                              \
        ck_assert_msg(rc_ == (want), "flowrl %s: exit %d, want %d:\n%s", args, rc_, want, g_out); \
    } while (0)
    RUN(0, "pack %s -o %s/a.tar.zst", ra, d);
    ck_assert_msg(strstr(g_out, "a.tar.zst: 7 files, 2 directories"), "%s", g_out);
    RUN(1, "pack %s -o %s/a.tar.zst", ra, d);
    ck_assert(strstr(g_out, "--force"));
    RUN(0, "pack %s -o %s/a.tar.zst --force", ra, d);
    RUN(0, "pack %s -o %s/c.tar.zst", rc, d);
    RUN(2, "pack %s -o %s/inside.tar.zst", ra, ra);
    RUN(2, "pack %s -o %s/a.zip", ra, d);
    RUN(2, "pack %s", ra);
    RUN(1, "pack %s/nonexistent -o %s/x.tar.zst", d, d);

    RUN(0, "audit %s %s/a.tar.zst", ra, d);
    ck_assert_msg(strstr(g_out, "identical through step 4 (4 steps, 32 records)"), "%s", g_out);
    RUN(1, "audit %s/a.tar.zst %s/c.tar.zst", d, d);
    ck_assert_msg(strstr(g_out, "differ at step 3, tensor 'params/w'") && strstr(g_out, "max ulp diff 1"), "%s", g_out);
    RUN(1, "audit %s %s", rc, ra);
    RUN(1, "audit %s %s", rs, ra);
    ck_assert_msg(strstr(g_out, "identical through step 3"), "%s", g_out);
    RUN(0, "audit %s %s --prefix-ok", rs, ra);
    RUN(0, "audit %s/audit.log %s", ra, ra);
    RUN(2, "audit %s", ra);
    RUN(2, "audit %s %s %s", ra, ra, ra);
    RUN(2, "audit %s %s --bogus", ra, ra);
    RUN(2, "audit %s/nonexistent %s", d, ra);
    char bad[1024];
    snprintf(bad, sizeof bad, "%s/bad.log", d);
    spit(bad, "flowrl-audit 1\nstep 1 w F32 [2] 0123\n");
    RUN(2, "audit %s %s", bad, ra);
    ck_assert_msg(strstr(g_out, "bad.log:2: digest"), "%s", g_out);

    /* flowrl tensors on an archive member: both syntaxes match the file itself */
    char want[1 << 16];
    RUN(0, "tensors %s/checkpoints/step-3.safetensors --meta", rc);
    snprintf(want, sizeof want, "%s", g_out);
    ck_assert(strstr(want, "params/w"));
    RUN(0, "tensors %s/c.tar.zst:checkpoints/step-3.safetensors --meta", d);
    ck_assert_str_eq(g_out, want);
    RUN(0, "tensors %s/c.tar.zst --member ./checkpoints/step-3.safetensors --meta", d);
    ck_assert_str_eq(g_out, want);
    RUN(0, "tensors %s/c.tar.zst", d);
    ck_assert_str_eq(g_out, "checkpoints/step-1.safetensors\ncheckpoints/step-2.safetensors\n"
                            "checkpoints/step-3.safetensors\ncheckpoints/step-4.safetensors\n");
    RUN(1, "tensors %s/c.tar.zst:checkpoints/step-9.safetensors", d);
    ck_assert(strstr(g_out, "no member named checkpoints/step-9.safetensors"));
    RUN(1, "tensors %s/c.tar.zst:audit.log", d); /* not a safetensors file */
    ck_assert_msg(strstr(g_out, "c.tar.zst:audit.log"), "%s", g_out);
    RUN(2, "tensors %s/config.json:x", ra);
    RUN(2, "tensors %s/c.tar.zst --member", d);
#undef RUN
    xsystem("rm -rf %s", d);
}
END_TEST

/* ulp and abs distances against values worked out by hand. */
START_TEST(test_tensor_diff)
{
    float a[6] = {1.0f, 0.0f, -1.0f, NAN, 2.0f, 0x1p-149f};
    float b[6] = {1.0f, -0.0f, -1.0f, NAN, 2.0f, -0x1p-149f};
    fr_tensor ta = fr_tensor_f32(a, 2, (int64_t[]){2, 3}), tb = fr_tensor_f32(b, 2, (int64_t[]){2, 3});
    fr_tensor_diff d;
    ck_assert(fr_tensor_diff_compute(&ta, &tb, &d) == FR_OK);
    /* +0/-0 are 1 apart; the two smallest subnormals of opposite sign 3 apart (via +-0) */
    ck_assert_int_eq(d.n_differ, 2);
    ck_assert_int_eq(d.first_index, 1);
    ck_assert_uint_eq(d.max_ulp, 3);
    ck_assert(d.max_abs == 0x1p-148);
    ck_assert(d.has_ulp);
    b[3] = 1.0f; /* NaN vs a number */
    ck_assert(fr_tensor_diff_compute(&ta, &tb, &d) == FR_OK);
    ck_assert_uint_eq(d.max_ulp, UINT64_MAX);
    ck_assert(isinf(d.max_abs));
    double x[2] = {1.0, -2.0}, y[2] = {nextafter(1.0, 2.0), -2.0};
    fr_tensor tx = fr_tensor_view(x, FR_F64, 1, (int64_t[]){2}), ty = fr_tensor_view(y, FR_F64, 1, (int64_t[]){2});
    ck_assert(fr_tensor_diff_compute(&tx, &ty, &d) == FR_OK);
    ck_assert_uint_eq(d.max_ulp, 1);
    ck_assert(d.max_abs == 0x1p-52);
    uint16_t h1[2] = {0x3C00, 0xC000}, h2[2] = {0x3C02, 0xC000}; /* F16: 1.0 and 1.0 + 2^-9 */
    fr_tensor th1 = fr_tensor_view(h1, FR_F16, 1, (int64_t[]){2}), th2 = fr_tensor_view(h2, FR_F16, 1, (int64_t[]){2});
    ck_assert(fr_tensor_diff_compute(&th1, &th2, &d) == FR_OK);
    ck_assert_uint_eq(d.max_ulp, 2);
    ck_assert(d.max_abs == 0x1p-9 && d.first_a == 1.0);
    th2.dtype = FR_BF16; /* BF16 0x3C00 = 2^-7 */
    th1.dtype = FR_BF16;
    ck_assert(fr_tensor_diff_compute(&th1, &th2, &d) == FR_OK);
    ck_assert(d.first_a == 0x1p-7 && d.max_ulp == 2);
    int64_t i1[3] = {5, -7, 9}, i2[3] = {5, 3, 9};
    fr_tensor ti1 = fr_tensor_view(i1, FR_I64, 1, (int64_t[]){3}), ti2 = fr_tensor_view(i2, FR_I64, 1, (int64_t[]){3});
    ck_assert(fr_tensor_diff_compute(&ti1, &ti2, &d) == FR_OK);
    ck_assert(!d.has_ulp && d.max_abs == 10.0 && d.first_index == 1);
    ck_assert(fr_tensor_diff_compute(&ta, &tx, &d) == FR_ERR_ARG);
}
END_TEST

Suite *suite_audit(void)
{
    Suite *s = suite_create("audit");
    TCase *tc = tcase_create("audit");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_format_lines);
    tcase_add_test(tc, test_writer_misuse);
    tcase_add_test(tc, test_identical_and_planted);
    tcase_add_test(tc, test_prefix_and_missing);
    tcase_add_test(tc, test_killed_and_resumed);
    tcase_add_test(tc, test_env_notes);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_archives);
    tcase_add_test(tc, test_cli);
    tcase_add_test(tc, test_tensor_diff);
    suite_add_tcase(s, tc);
    return s;
}
