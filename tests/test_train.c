/* The Flow-GRPO training loop (core/grpo_train*.c, flowrl/grpo_train.h) and `flowrl train`:
 * the on-policy ratio invariant (objectives.md §2 "Check", §22), bitwise reproducibility,
 * resume after a stop and after SIGKILL, SIGINT, learning on gmm2d, ref vs opt. Runs use a
 * freshly initialised tiny gmm2d model (H 16) so that an epoch takes milliseconds. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flowrl/audit.h"
#include "flowrl/cond.h"
#include "flowrl/grpo_train.h"
#include "flowrl/model.h"
#include "flowrl/opt.h"
#include "flowrl/runcompare.h"
#include "flowrl/task.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static char g_dir[256];
static char g_base[320];

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/flowrl-train-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(g_base, sizeof g_base, "%s/base.safetensors", g_dir);
    /* a tiny fresh gmm2d model: v = 0 at init (zero output layer), so samples start as the
     * sampler's noise and the halfplane reward starts near 0.5 */
    int64_t n_cond, n_slots;
    fr_cond_dims(&fr_task_gmm2d, &n_cond, &n_slots);
    fr_model_config mc;
    ck_assert_int_eq(fr_model_preset("gmm2d-s", 2, n_cond, &mc), FR_OK);
    mc.n_slots = n_slots;
    mc.H = 16;
    mc.F = 32;
    mc.n_blocks = 1;
    mc.E = 16;
    snprintf(mc.preset, sizeof mc.preset, "custom");
    fr_model m;
    ck_assert_int_eq(fr_model_init(&m, &mc, 5), FR_OK);
    ck_assert_int_eq(fr_model_save(&m, g_base), FR_OK);
    fr_model_free(&m);
}

/* A base whose output layer is not zero, so that v_c != v_u. */
static void perturb_base(const char *path)
{
    fr_model m;
    ck_assert_int_eq(fr_model_load(&m, g_base), FR_OK);
    fr_param *w = fr_model_param(&m, "out.weight");
    ck_assert_ptr_nonnull(w);
    float *v = w->value->data;
    for (int64_t i = 0; i < fr_tensor_numel(w->value); i++) v[i] = 0.05f * (float)((i * 37) % 11 - 5);
    ck_assert_int_eq(fr_model_save(&m, path), FR_OK);
    fr_model_free(&m);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const fr_ops *backend(const char *name)
{
    const fr_ops *ops;
    ck_assert_int_eq(fr_backend_get(name, &ops), FR_OK);
    return ops;
}

static fr_grpo_train_opts tiny(const char *run, int64_t epochs)
{
    fr_grpo_train_opts o = fr_grpo_train_defaults();
    snprintf(o.base, sizeof o.base, "%s", g_base);
    snprintf(o.task, sizeof o.task, "gmm2d");
    snprintf(o.out, sizeof o.out, "%s/%s", g_dir, run);
    o.epochs = epochs;
    o.seed = 11;
    o.eval_n = 0;
    return o;
}

static void run_lib(const fr_grpo_train_opts *o, const char *backend_name, const fr_grpo_train_cb *cb,
                    fr_grpo_train_result *res)
{
    fr_grpo_train_result r;
    fr_status s = fr_grpo_train_run(o, backend(backend_name), 1, cb, res ? res : &r);
    ck_assert_msg(s == FR_OK, "train %s: %s", o->out, fr_last_error());
}

static void *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    buf[len] = '\0';
    *n = (size_t)len;
    return buf;
}

/* The record lines of an audit.log (step / scalar / end-step), without the header, env and
 * resume lines, which say where and how it ran, not what it computed. */
static char *records(const char *run)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/audit.log", g_dir, run);
    size_t n;
    char *buf = slurp(path, &n), *out = malloc(n + 1), *o = out;
    ck_assert_ptr_nonnull(out);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, "step ", 5) == 0 || strncmp(line, "scalar ", 7) == 0 || strncmp(line, "end-step ", 9) == 0)
            o += sprintf(o, "%s\n", line);
    *o = '\0';
    free(buf);
    return out;
}

static void assert_same_records(const char *a, const char *b, int64_t steps)
{
    char *ra = records(a), *rb = records(b);
    char want[32];
    snprintf(want, sizeof want, "end-step %lld ", (long long)steps);
    ck_assert_msg(strstr(ra, want) != NULL, "%s has no complete step %lld", a, (long long)steps);
    ck_assert_msg(strcmp(ra, rb) == 0, "audit records of %s and %s differ", a, b);
    free(ra);
    free(rb);
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/%s", g_dir, a);
    snprintf(pb, sizeof pb, "%s/%s", g_dir, b);
    fr_runs_cmp c;
    ck_assert_int_eq(fr_runs_compare(pa, pb, &c), FR_OK);
    ck_assert_msg(c.verdict == FR_RUNS_IDENTICAL && c.through_step == steps, "flowrl audit %s %s: %s", pa, pb,
                  c.n_lines ? c.lines[0] : "?");
    fr_runs_cmp_free(&c);
}

/* ---- on-policy: the first ratio is exactly 1 --------------------------------------------- */

typedef struct {
    int64_t n_checked, n_bad, n_updates;
    float bad;
} ratio_check;

static void check_ratio(const fr_train_update_event *ev, void *user)
{
    ratio_check *rc = user;
    rc->n_updates++;
    /* every batch before the first optimizer step of the run is on-policy */
    if (ev->epoch != 1 || ev->update != 0) return;
    for (int64_t i = 0; i < ev->n_ratio; i++) {
        rc->n_checked++;
        if (!fr_test_bits_equal(ev->ratio[i], 1.0f)) {
            if (!rc->n_bad) rc->bad = ev->ratio[i];
            rc->n_bad++;
        }
    }
}

static void on_policy_case(const char *label, fr_grpo_train_opts o)
{
    ratio_check rc = {0, 0, 0, 0.0f};
    fr_grpo_train_cb cb = {NULL, check_ratio, NULL, &rc, NULL};
    run_lib(&o, "ref", &cb, NULL);
    ck_assert_msg(rc.n_updates >= 1, "%s: no update ran", label);
    ck_assert_msg(rc.n_checked > 0 && rc.n_bad == 0, "%s: %lld of %lld on-policy ratios are not 1.0f (first %a)",
                  label, (long long)rc.n_bad, (long long)rc.n_checked, (double)rc.bad);
}

START_TEST(test_on_policy_ratio_is_one)
{
    fr_grpo_train_opts o = tiny("fg", 1);
    on_policy_case("flow-grpo sde", o);

    o = tiny("fg1", 1); /* FG README's setting: one batch, no accumulation */
    o.num_batches = 1;
    o.grad_accum = 1;
    on_policy_case("flow-grpo 1 batch", o);

    o = tiny("cfg", 1);
    snprintf(o.base, sizeof o.base, "%s/base2.safetensors", g_dir);
    perturb_base(o.base);
    o.cfg = 2.5f; /* CFG in rollouts and in training, with v_c != v_u */
    on_policy_case("cfg 2.5", o);

    o = tiny("guard", 1);
    o.guard = FR_TRAIN_GUARD_BATCH;
    o.clip_range = 2e-6;
    on_policy_case("guard batch", o);

    o = tiny("guards", 1);
    o.guard = FR_TRAIN_GUARD_SAMPLE;
    on_policy_case("guard sample", o);

    o = tiny("fast", 1);
    o.window = FR_TRAIN_WINDOW_FAST;
    o.sampler = FR_SAMPLER_CPS;
    o.noise = 0.8f;
    o.fast_w = 3;
    on_policy_case("fast cps", o);

    o = tiny("cps", 1);
    o.sampler = FR_SAMPLER_CPS;
    o.noise = 0.8f;
    o.clip_range = 1e-5;
    on_policy_case("cps", o);

    o = tiny("mix", 1);
    o.window = FR_TRAIN_WINDOW_MIX;
    o.kl_form = FR_KL_PAPER;
    o.adv = FR_TRAIN_ADV_DDPO;
    o.ddpo_min_count = 2;
    o.ema = 0.9f;
    o.ema_every = 1;
    on_policy_case("mix ddpo ema", o);
}
END_TEST

/* The invariant must be able to fail: training without the rollout's CFG is off-policy. */
START_TEST(test_ratio_differs_without_train_cfg)
{
    fr_grpo_train_opts o = tiny("nocfg", 1);
    snprintf(o.base, sizeof o.base, "%s/base2.safetensors", g_dir);
    perturb_base(o.base);
    o.cfg = 2.5f;
    o.train_cfg = 0;
    ratio_check rc = {0, 0, 0, 0.0f};
    fr_grpo_train_cb cb = {NULL, check_ratio, NULL, &rc, NULL};
    run_lib(&o, "ref", &cb, NULL);
    ck_assert_msg(rc.n_bad > 0, "CFG off in training but every ratio is 1: the check cannot fail");
}
END_TEST

/* ---- reproducibility, resume ------------------------------------------------------------- */

START_TEST(test_two_runs_same_bytes)
{
    fr_grpo_train_opts a = tiny("a", 2), b = tiny("b", 2);
    run_lib(&a, "ref", NULL, NULL);
    run_lib(&b, "ref", NULL, NULL);
    char pa[1200], pb[1200];
    snprintf(pa, sizeof pa, "%s/audit.log", a.out);
    snprintf(pb, sizeof pb, "%s/audit.log", b.out);
    size_t na, nb;
    char *x = slurp(pa, &na), *y = slurp(pb, &nb);
    ck_assert_msg(na == nb && memcmp(x, y, na) == 0, "two identical runs wrote different audit.log bytes");
    ck_assert_msg(strstr(x, "end-step 2 ") != NULL, "audit.log lacks step 2");
    free(x);
    free(y);
    /* the checkpoints too */
    snprintf(pa, sizeof pa, "%s/checkpoints/step-2.safetensors", a.out);
    snprintf(pb, sizeof pb, "%s/checkpoints/step-2.safetensors", b.out);
    x = slurp(pa, &na);
    y = slurp(pb, &nb);
    ck_assert_msg(na == nb && memcmp(x, y, na) == 0, "checkpoints differ");
    free(x);
    free(y);
}
END_TEST

START_TEST(test_resume_matches_uninterrupted)
{
    fr_grpo_train_opts full = tiny("full", 3), part = tiny("part", 1);
    full.ema = part.ema = 0.9f; /* the EMA and DDPO history must survive the checkpoint */
    full.ema_every = part.ema_every = 1;
    full.adv = part.adv = FR_TRAIN_ADV_DDPO;
    full.ddpo_min_count = part.ddpo_min_count = 8;
    full.eval_n = part.eval_n = 2;
    run_lib(&full, "ref", NULL, NULL);
    run_lib(&part, "ref", NULL, NULL);
    fr_grpo_train_result res;
    fr_status s = fr_grpo_train_resume(part.out, 3, backend("ref"), 1, NULL, &res);
    ck_assert_msg(s == FR_OK, "resume: %s", fr_last_error());
    ck_assert_int_eq(res.first_epoch, 1);
    ck_assert_int_eq(res.epochs_done, 3);
    assert_same_records("full", "part", 3);
    /* keep-checkpoints 2: step-1 was pruned */
    char p[1200];
    struct stat st;
    snprintf(p, sizeof p, "%s/checkpoints/step-1.safetensors", part.out);
    ck_assert_int_ne(stat(p, &st), 0);
    snprintf(p, sizeof p, "%s/checkpoints/step-3.safetensors", part.out);
    ck_assert_int_eq(stat(p, &st), 0);
    /* metrics.jsonl: one line per epoch */
    size_t n;
    snprintf(p, sizeof p, "%s/metrics.jsonl", part.out);
    char *m = slurp(p, &n);
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += m[i] == '\n';
    free(m);
    ck_assert_int_eq(lines, 3);
}
END_TEST

/* The whole audit.log of a run (every record of every step: assert_same_records compares
 * all record lines and runs `flowrl audit`) on opt equals ref's at 1, 2 and 3 threads.
 * 1024 samples in one batch (FG README's num_batches 1) with CFG make the forwards and
 * backwards 2048 rows: fc1/fc2 GEMMs of 2^20 multiply-adds, SiLU over 65536 elements, layer
 * norms over 32768, so opt really splits them over its threads (opt/opt_gemm.c splits from
 * 2^18 multiply-adds per thread, the elementwise kernels from a few thousand elements); at
 * tiny()'s 64 samples every op would stay on one thread and the comparison would say nothing
 * about threads. */
static fr_grpo_train_opts threaded(const char *run)
{
    fr_grpo_train_opts o = tiny(run, 2);
    o.cfg = 1.5f;
    o.P = 16;
    o.G = 64;
    o.T = 4; /* 3 trained steps: keeps the four runs near a second */
    o.rollout_batch = 1024;
    o.num_batches = 1;
    o.grad_accum = 1;
    return o;
}

START_TEST(test_opt_matches_ref)
{
    fr_grpo_train_opts r = threaded("ref");
    run_lib(&r, "ref", NULL, NULL);
    for (int th = 1; th <= 3; th++) {
        char run[16];
        snprintf(run, sizeof run, "opt%d", th);
        fr_grpo_train_opts o = threaded(run);
        fr_opt_set_threads(th);
        fr_grpo_train_result res;
        fr_status s = fr_grpo_train_run(&o, backend("opt"), th, NULL, &res);
        fr_opt_set_threads(0);
        ck_assert_msg(s == FR_OK, "train %s: %s", o.out, fr_last_error());
        assert_same_records("ref", run, 2);
    }
}
END_TEST

/* ---- learning ---------------------------------------------------------------------------- */

typedef struct {
    float reward[64];
    int n;
} curve;

static int record_epoch(const fr_train_epoch_event *ev, void *user)
{
    curve *c = user;
    if (c->n < 64) c->reward[c->n++] = ev->reward_mean;
    ck_assert_msg(isfinite(ev->reward_mean), "epoch %lld: reward %g", (long long)ev->epoch, (double)ev->reward_mean);
    return 0;
}

START_TEST(test_reward_improves_halfplane)
{
    fr_grpo_train_opts o = tiny("learn", 20);
    snprintf(o.reward, sizeof o.reward, "halfplane");
    o.clip_range = 0.2; /* see the report of this module: 1e-4 moves a tiny model too slowly */
    o.lr = 3e-3f;
    o.beta = 0.0f;
    o.eval_n = 8;
    curve c = {{0}, 0};
    fr_grpo_train_cb cb = {record_epoch, NULL, NULL, &c, NULL};
    fr_grpo_train_result res;
    run_lib(&o, "opt", &cb, &res);
    ck_assert_int_eq(c.n, 20);
    if (getenv("FLOWRL_TEST_VERBOSE"))
        for (int i = 0; i < c.n; i++) printf("epoch %d reward %.4f\n", i + 1, (double)c.reward[i]);
    float first = (c.reward[0] + c.reward[1] + c.reward[2]) / 3.0f;
    float last = (c.reward[17] + c.reward[18] + c.reward[19]) / 3.0f;
    ck_assert_msg(last > first + 0.2f && last > 0.75f, "halfplane reward %.3f (first 3 epochs) -> %.3f (last 3)",
                  (double)first, (double)last);
    ck_assert_msg(res.have_after && res.acc_after > res.acc_before + 0.1,
                  "held-out accuracy %.3f -> %.3f", res.acc_before, res.acc_after);
}
END_TEST

/* ---- options ----------------------------------------------------------------------------- */

START_TEST(test_config_json_round_trip)
{
    fr_grpo_train_opts o = tiny("cfgjson", 7);
    o.noise = 0.8f;
    o.sampler = FR_SAMPLER_CPS;
    o.clip_range = 1e-5;
    o.window = FR_TRAIN_WINDOW_FAST;
    o.fast_w = 3;
    o.ema = 0.9f;
    o.train_cfg = 1;
    snprintf(o.reward, sizeof o.reward, "cmd:python3 r.py --x \"y\"");
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/c1.json", g_dir);
    snprintf(p2, sizeof p2, "%s/c2.json", g_dir);
    ck_assert_int_eq(fr_grpo_train_opts_write_json(&o, "0123456789abcdef", p1), FR_OK);
    fr_grpo_train_opts r;
    ck_assert_msg(fr_grpo_train_opts_read_json(&r, p1) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_grpo_train_opts_write_json(&r, "0123456789abcdef", p2), FR_OK);
    size_t n1, n2;
    char *a = slurp(p1, &n1), *b = slurp(p2, &n2);
    ck_assert_msg(n1 == n2 && memcmp(a, b, n1) == 0, "config.json does not round-trip:\n%s\n%s", a, b);
    free(a);
    free(b);
    ck_assert(r.noise == 0.8f && r.clip_range == 1e-5 && r.fast_w == 3 && r.train_cfg == 1);
    /* an unknown key is an error, not silently ignored */
    FILE *f = fopen(p1, "w");
    fprintf(f, "{\"algo\": \"flow-grpo\", \"bogus\": 1}\n");
    fclose(f);
    ck_assert_int_eq(fr_grpo_train_opts_read_json(&r, p1), FR_ERR_FORMAT);
    /* bad combinations */
    o = tiny("bad", 1);
    o.guard = FR_TRAIN_GUARD_BATCH;
    o.sampler = FR_SAMPLER_CPS;
    ck_assert_int_eq(fr_grpo_train_check(&o), FR_ERR_ARG);
    o = tiny("bad", 1);
    o.num_batches = 3;
    ck_assert_int_eq(fr_grpo_train_check(&o), FR_ERR_ARG);
    /* a run directory is never overwritten */
    o = tiny("twice", 1);
    run_lib(&o, "ref", NULL, NULL);
    fr_grpo_train_result res;
    ck_assert_int_eq(fr_grpo_train_run(&o, backend("ref"), 1, NULL, &res), FR_ERR_ARG);
}
END_TEST

/* ---- the CLI: SIGKILL and SIGINT --------------------------------------------------------- */

static pid_t spawn_train(const char *run, const char *epochs)
{
    const char *bin = getenv("FLOWRL_BIN");
    ck_assert_msg(bin != NULL, "FLOWRL_BIN is not set (make check sets it)");
    char out[512];
    snprintf(out, sizeof out, "%s/%s", g_dir, run);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        FILE *n = freopen("/dev/null", "w", stdout);
        n = freopen("/dev/null", "w", stderr);
        (void)n;
        execl(bin, bin, "train", "--algo", "flow-grpo", "--base", g_base, "--task", "gmm2d", "--out", out, "--epochs",
              epochs, "--seed", "11", "--eval-n", "0", "--backend", "ref", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits until RUN/checkpoints/step-1.safetensors exists (the child is mid-run). */
static void wait_for_step1(const char *run, pid_t pid)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s/checkpoints/step-1.safetensors", g_dir, run);
    struct stat st;
    for (int i = 0; i < 20000; i++) {
        if (stat(p, &st) == 0) return;
        int status;
        ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "the training child exited early (status %d)", status);
        usleep(500);
    }
    ck_abort_msg("no checkpoint after 10 s");
}

START_TEST(test_cli_sigkill_then_resume)
{
    pid_t pid = spawn_train("killed", "12");
    wait_for_step1("killed", pid);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the child finished before SIGKILL (status %d): the test did not interrupt it", status);
    char args[1024], out[8192];
    snprintf(args, sizeof args, "train --resume %s/killed --backend opt --threads 2", g_dir);
    int rc = fr_test_run_cli(args, out, sizeof out);
    ck_assert_msg(rc == 0, "resume exited %d:\n%s", rc, out);
    fr_grpo_train_opts o = tiny("whole", 12);
    run_lib(&o, "ref", NULL, NULL);
    assert_same_records("whole", "killed", 12);
}
END_TEST

START_TEST(test_cli_sigint_stops_at_epoch)
{
    pid_t pid = spawn_train("intr", "400");
    wait_for_step1("intr", pid);
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "SIGINT: status %d, expected exit 130", status);
    /* the log ends at a complete epoch, and that epoch has its checkpoint */
    char p[512];
    snprintf(p, sizeof p, "%s/intr/audit.log", g_dir);
    fr_audit_log log;
    ck_assert_int_eq(fr_audit_read(&log, p), FR_OK);
    ck_assert_int_eq(log.incomplete_step, 0);
    ck_assert_int_ge(log.n_steps, 1);
    int64_t last = log.steps[log.n_steps - 1].step;
    fr_audit_log_free(&log);
    ck_assert_int_lt(last, 400);
    snprintf(p, sizeof p, "%s/intr/checkpoints/step-%lld.safetensors", g_dir, (long long)last);
    struct stat st;
    ck_assert_msg(stat(p, &st) == 0, "no checkpoint for the last logged epoch %lld", (long long)last);
    /* resumable: one more epoch */
    char args[1024], out[8192];
    snprintf(args, sizeof args, "train --resume %s/intr --epochs %lld", g_dir, (long long)last + 1);
    int rc = fr_test_run_cli(args, out, sizeof out);
    ck_assert_msg(rc == 0, "resume exited %d:\n%s", rc, out);
    snprintf(p, sizeof p, "%s/intr/audit.log", g_dir);
    ck_assert_int_eq(fr_audit_read(&log, p), FR_OK);
    ck_assert_int_eq(log.steps[log.n_steps - 1].step, last + 1);
    fr_audit_log_free(&log);
}
END_TEST

START_TEST(test_cli_usage)
{
    char out[8192];
    ck_assert_int_eq(fr_test_run_cli("train --help", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "--clip-range E"));
    ck_assert_int_eq(fr_test_run_cli("train --algo ppo --base x --out y", out, sizeof out), 2);
    ck_assert_int_eq(fr_test_run_cli("train --base x", out, sizeof out), 2);
    ck_assert_int_eq(fr_test_run_cli("train --resume /nonexistent --lr 1", out, sizeof out), 2);
    ck_assert_int_eq(fr_test_run_cli("train --base x --out y --sampler ode", out, sizeof out), 2);
}
END_TEST

Suite *suite_train(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_on_policy_ratio_is_one);
    tcase_add_test(tc, test_ratio_differs_without_train_cfg);
    tcase_add_test(tc, test_two_runs_same_bytes);
    tcase_add_test(tc, test_resume_matches_uninterrupted);
    tcase_add_test(tc, test_opt_matches_ref);
    tcase_add_test(tc, test_reward_improves_halfplane);
    tcase_add_test(tc, test_config_json_round_trip);
    tcase_add_test(tc, test_cli_sigkill_then_resume);
    tcase_add_test(tc, test_cli_sigint_stops_at_epoch);
    tcase_add_test(tc, test_cli_usage);
    suite_add_tcase(s, tc);
    return s;
}
