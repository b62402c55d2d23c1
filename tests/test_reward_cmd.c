/* External reward programs (include/flowrl/reward_cmd.h, docs/reward-protocol.md): scores
 * of several batches bit for bit against a C recomputation, and each failure of the program
 * (exit, crash, hang, short / NaN / mismatched / garbage answers, missing command) giving an
 * error that names the batch and the program, leaving the caller's scores untouched, no
 * zombie, and flowrl alive (SIGPIPE). The helpers are tests/reward_progs/mock_reward.py
 * (standard-library python3); the numpy example runs when some python3 has numpy. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flowrl/reward_cmd.h"
#include "flowrl/task.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define SENTINEL 12345.5f

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define python fr_test_python

/* The command line of the mock in `mode` (single-quoted paths survive spaces). */
static const char *mock(const char *mode)
{
    static char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s '%s/tests/reward_progs/mock_reward.py' %s", python(),
             fr_test_src(), mode);
    return cmd;
}

/* No child of this process is left, running or zombie. */
static void assert_no_child(void)
{
    int st;
    pid_t r = waitpid(-1, &st, WNOHANG);
    ck_assert_msg(r == -1 && errno == ECHILD, "a child is left: waitpid(-1) = %d (%s)", (int)r,
                  r < 0 ? strerror(errno) : "exists");
}

static void assert_has(const char *msg, const char *what)
{
    ck_assert_msg(strstr(msg, what) != NULL, "error message lacks \"%s\": %s", what, msg);
}

/* The mock's ok score (see mock_reward.py): double sum in order, one rounding to float. */
static float mock_score(int id, const char *text, const float *x, int D)
{
    double acc = (double)id + 0.25 * (double)(text ? strlen(text) : 0);
    for (int d = 0; d < D; d++) acc += (double)x[d] * (double)(d + 1);
    return (float)acc;
}

typedef struct {
    int B, D;
    int *ids;
    const char **texts;
    float *x;
    float *scores;
} batch;

static const char *const k_texts[] = {"a red object", "", "h\xc3\xa9llo, \"quoted\"", "two",
                                      "a green and a blue object"};

static batch make_batch(int B, int D, uint64_t seed)
{
    batch b = {B, D, malloc(sizeof(int) * (size_t)B), malloc(sizeof(char *) * (size_t)B),
               malloc(sizeof(float) * (size_t)B * (size_t)D), malloc(sizeof(float) * (size_t)B)};
    uint64_t s = seed;
    for (int i = 0; i < B; i++) {
        b.ids[i] = i % 7 == 3 ? -5 : (int)(fr_test_next(&s) % 70); /* a negative id too */
        b.texts[i] = k_texts[i % 5];
        b.scores[i] = SENTINEL;
    }
    for (int i = 0; i < B * D; i++) b.x[i] = fr_test_uniform(&s, -1.0f, 1.0f);
    return b;
}

static void free_batch(batch *b)
{
    free(b->ids);
    free(b->texts);
    free(b->x);
    free(b->scores);
}

static fr_status score(fr_reward_cmd *rc, uint32_t index, batch *b)
{
    return fr_reward_cmd_score(rc, index, b->B, b->D, b->ids, b->texts, b->x, b->scores);
}

static void assert_untouched(const batch *b)
{
    for (int i = 0; i < b->B; i++)
        ck_assert_msg(fr_test_bits_equal(b->scores[i], SENTINEL),
                      "score %d was written (%g) by a failed batch", i, (double)b->scores[i]);
}

static void assert_mock_scores(const batch *b, uint32_t index, uint64_t seed)
{
    for (int i = 0; i < b->B; i++) {
        float want = mock_score(b->ids[i], b->texts[i], b->x + (size_t)i * (size_t)b->D, b->D);
        ck_assert_msg(fr_test_bits_equal(b->scores[i], want),
                      "batch %u (seed %llu) score %d: got %.9g, want %.9g", index,
                      (unsigned long long)seed, i, (double)b->scores[i], (double)want);
    }
}

/* Opens `program`, scores batches (B, D) = shapes[0..n) until the one that fails, and
 * returns that batch's status; the error message is in msg. The scores of the failed batch
 * must be untouched and the handle must refuse later batches. */
static fr_status run_until_failure(const char *program, double timeout_s, int dims_C, int D,
                                   int n, uint32_t first_index, char *msg, size_t cap,
                                   uint32_t *failed_index)
{
    fr_reward_cmd_opts o = {timeout_s, dims_C, dims_C ? 16 : 0, dims_C ? 16 : 0, NULL};
    fr_reward_cmd *rc = NULL;
    ck_assert_msg(fr_reward_cmd_open(program, &o, &rc) == FR_OK, "%s", fr_last_error());
    fr_status s = FR_OK;
    for (int k = 0; k < n && s == FR_OK; k++) {
        uint64_t seed = 100u + (uint64_t)k;
        batch b = make_batch(k == 0 ? 64 : 4, D, seed);
        uint32_t index = first_index + (uint32_t)k;
        s = score(rc, index, &b);
        if (s == FR_OK) {
            assert_mock_scores(&b, index, seed);
        } else {
            snprintf(msg, cap, "%s", fr_last_error());
            *failed_index = index;
            assert_untouched(&b);
            ck_assert_int_eq(fr_reward_cmd_pid(rc), -1); /* stopped */
            fr_status again = score(rc, index + 1, &b);
            ck_assert_int_eq(again, FR_ERR_IO);
            assert_has(fr_last_error(), "earlier error");
            assert_untouched(&b);
        }
        free_batch(&b);
    }
    ck_assert_int_eq(fr_reward_cmd_close(rc), FR_OK); /* a failed handle closes quietly */
    assert_no_child();
    return s;
}

START_TEST(test_spec)
{
    ck_assert_str_eq(fr_reward_cmd_program("cmd:python3 r.py --x 1"), "python3 r.py --x 1");
    ck_assert_str_eq(fr_reward_cmd_program("cmd:"), "");
    ck_assert_ptr_null(fr_reward_cmd_program("geneval"));
    ck_assert_ptr_null(fr_reward_cmd_program("cm:x"));
    fr_reward_cmd *rc = (fr_reward_cmd *)1;
    ck_assert_int_eq(fr_reward_cmd_open("", NULL, &rc), FR_ERR_ARG);
    ck_assert_ptr_null(rc);
    fr_reward_cmd_opts o = {1.0, 3, 0, 16, NULL};
    ck_assert_int_eq(fr_reward_cmd_open("true", &o, &rc), FR_ERR_ARG);
    ck_assert_int_eq(fr_reward_cmd_close(NULL), FR_OK);
    assert_no_child();
}
END_TEST

/* Several batches through one process, 2-D and image, requests both below and above a
 * pipe buffer (64 KiB): every score bit-equal to the C recomputation. */
START_TEST(test_several_batches)
{
    fr_reward_cmd *rc = NULL;
    ck_assert_msg(fr_reward_cmd_open(mock("ok"), NULL, &rc) == FR_OK, "%s", fr_last_error());
    int pid = fr_reward_cmd_pid(rc);
    ck_assert_int_gt(pid, 0);
    const int Bs[] = {1, 5, 7, 64};
    for (int k = 0; k < 4; k++) {
        uint64_t seed = 7u + (uint64_t)k;
        batch b = make_batch(Bs[k], 2, seed);
        ck_assert_msg(score(rc, (uint32_t)k, &b) == FR_OK, "%s", fr_last_error());
        assert_mock_scores(&b, (uint32_t)k, seed);
        free_batch(&b);
    }
    ck_assert_int_eq(fr_reward_cmd_pid(rc), pid); /* one process for the run */
    ck_assert_msg(fr_reward_cmd_close(rc) == FR_OK, "%s", fr_last_error());
    assert_no_child();

    fr_reward_cmd_opts o = {0, 3, 16, 16, NULL};
    ck_assert_msg(fr_reward_cmd_open(mock("ok"), &o, &rc) == FR_OK, "%s", fr_last_error());
    for (uint32_t k = 0; k < 3; k++) {
        uint64_t seed = 50u + k;
        batch b = make_batch(k == 1 ? 96 : 3, 3 * 16 * 16, seed); /* 96 rows: 295 KB */
        ck_assert_msg(score(rc, 1000u + k, &b) == FR_OK, "%s", fr_last_error());
        assert_mock_scores(&b, 1000u + k, seed);
        free_batch(&b);
    }
    /* D that is not C*H*W: refused before sending, the program keeps running. */
    batch b = make_batch(2, 5, 1);
    ck_assert_int_eq(score(rc, 3, &b), FR_ERR_ARG);
    assert_untouched(&b);
    free_batch(&b);
    ck_assert_msg(fr_reward_cmd_close(rc) == FR_OK, "%s", fr_last_error());
    assert_no_child();
}
END_TEST

/* A bad sample is the caller's error: nothing is sent, and the next batch still works. */
START_TEST(test_bad_input_keeps_program)
{
    fr_reward_cmd *rc = NULL;
    ck_assert_msg(fr_reward_cmd_open(mock("ok"), NULL, &rc) == FR_OK, "%s", fr_last_error());
    batch b = make_batch(4, 3, 9);
    b.x[7] = NAN;
    ck_assert_int_eq(score(rc, 0, &b), FR_ERR_NUMERIC);
    assert_has(fr_last_error(), "batch 0");
    assert_has(fr_last_error(), "sample 2 element 1");
    assert_untouched(&b);
    ck_assert_int_gt(fr_reward_cmd_pid(rc), 0);
    b.x[7] = 0.5f;
    ck_assert_msg(score(rc, 0, &b) == FR_OK, "%s", fr_last_error());
    assert_mock_scores(&b, 0, 9);
    free_batch(&b);
    ck_assert_msg(fr_reward_cmd_close(rc) == FR_OK, "%s", fr_last_error());
    assert_no_child();
}
END_TEST

/* The task form sends the task's prompt texts and dims. */
START_TEST(test_score_task)
{
    const fr_task *t = &fr_task_shapes;
    fr_reward_cmd_opts o = {0, t->C, t->H, t->W, NULL};
    fr_reward_cmd *rc = NULL;
    ck_assert_msg(fr_reward_cmd_open(mock("ok"), &o, &rc) == FR_OK, "%s", fr_last_error());
    enum { B = 6 };
    int ids[B] = {0, 4, 17, 22, 51, 69};
    float *x = malloc(sizeof(float) * B * (size_t)t->D), scores[B];
    ck_assert_int_eq(fr_task_sample_batch(t, B, ids, 3u, 0u, x), FR_OK);
    ck_assert_msg(fr_reward_cmd_score_task(rc, t, 5u, B, ids, x, scores) == FR_OK, "%s",
                  fr_last_error());
    for (int b = 0; b < B; b++) {
        char text[FR_PROMPT_TEXT_MAX];
        ck_assert_int_eq(t->prompt_text(ids[b], text, sizeof text), FR_OK);
        float want = mock_score(ids[b], text, x + (size_t)b * (size_t)t->D, t->D);
        ck_assert_msg(fr_test_bits_equal(scores[b], want), "prompt %d (\"%s\"): %.9g vs %.9g",
                      ids[b], text, (double)scores[b], (double)want);
    }
    ck_assert_msg(fr_reward_cmd_close(rc) == FR_OK, "%s", fr_last_error());
    /* Dims that do not match the task: refused. */
    ck_assert_int_eq(fr_reward_cmd_open(mock("ok"), NULL, &rc), FR_OK);
    ck_assert_int_eq(fr_reward_cmd_score_task(rc, t, 0u, B, ids, x, scores), FR_ERR_ARG);
    assert_has(fr_last_error(), "shapes");
    ck_assert_msg(fr_reward_cmd_close(rc) == FR_OK, "%s", fr_last_error());
    free(x);
    assert_no_child();
}
END_TEST

static int sigpipe_is_default_and_clear(void)
{
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    sigset_t pending;
    sigpending(&pending);
    return sa.sa_handler == SIG_DFL && !sigismember(&pending, SIGPIPE);
}

/* The program exits at once: the 200 KB request hits a closed pipe (EPIPE; SIGPIPE would
 * kill this test), and the error gives the exit status. The program is a plain shell
 * command, which `sh -c` allows. */
START_TEST(test_exits_immediately)
{
    char msg[1024];
    uint32_t at = 99;
    fr_status s = run_until_failure("exit 3", 60, 3, 768, 1, 0, msg, sizeof msg, &at);
    ck_assert_int_eq(s, FR_ERR_IO);
    ck_assert_uint_eq(at, 0);
    assert_has(msg, "`exit 3`");
    assert_has(msg, "batch 0");
    assert_has(msg, "exited with status 3");
    ck_assert_msg(sigpipe_is_default_and_clear(), "SIGPIPE disposition or mask changed");
    /* The same through python and a small request (fits the pipe: no EPIPE, then EOF). */
    s = run_until_failure(mock("exit"), 60, 0, 2, 1, 4, msg, sizeof msg, &at);
    ck_assert_int_eq(s, FR_ERR_IO);
    assert_has(msg, "batch 4");
    assert_has(msg, "exited with status 3");
    assert_has(msg, "mock_reward.py");
}
END_TEST

/* The program closes its stdin but lives on: the write fails with EPIPE, which must be an
 * error and not a SIGPIPE that kills this process; the mask and disposition are restored. */
START_TEST(test_closes_input)
{
    char msg[1024];
    uint32_t at = 99;
    double t0 = now_s();
    /* 200 KB: more than a pipe holds, so the write cannot finish before the shell closes. */
    fr_status s = run_until_failure("exec 0<&-; sleep 30", 0.5, 3, 768, 1, 2, msg, sizeof msg,
                                    &at);
    double dt = now_s() - t0;
    ck_assert_int_eq(s, FR_ERR_IO);
    assert_has(msg, "batch 2: stopped reading its request (");
    assert_has(msg, "did not exit within 0.5 s");
    ck_assert_msg(dt < 3.0, "took %.3f s", dt);
    ck_assert_msg(sigpipe_is_default_and_clear(), "SIGPIPE disposition or mask changed");
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    ck_assert_msg(!sigismember(&mask, SIGPIPE), "SIGPIPE left blocked");
}
END_TEST

START_TEST(test_exits_between_batches)
{
    char msg[1024];
    uint32_t at = 99;
    fr_status s = run_until_failure(mock("exit_after 2"), 60, 0, 2, 5, 10, msg, sizeof msg, &at);
    ck_assert_int_eq(s, FR_ERR_IO);
    ck_assert_uint_eq(at, 12);
    assert_has(msg, "batch 12");
    assert_has(msg, "exited with status 0");
}
END_TEST

START_TEST(test_crash)
{
    char msg[1024];
    uint32_t at = 99;
    fr_status s = run_until_failure(mock("segv 2"), 60, 0, 2, 5, 0, msg, sizeof msg, &at);
    ck_assert_int_eq(s, FR_ERR_IO);
    ck_assert_uint_eq(at, 2);
    assert_has(msg, "batch 2");
    assert_has(msg, "SIGSEGV"); /* by signal, or the shell's 139 */
}
END_TEST

static int process_gone(pid_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH) return 1;
    /* Killed but not yet reaped by its new parent (init) counts as gone. */
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

/* The program never answers: a timeout after ~1 s, and the whole process group (the shell
 * and the python it started) is killed. */
START_TEST(test_hang_times_out)
{
    char pidfile[] = "/tmp/fr_reward_hang_XXXXXX", cmd[1100], msg[1024];
    int fd = mkstemp(pidfile);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(cmd, sizeof cmd, "%s", mock("hang "));
    strncat(cmd, pidfile, sizeof cmd - strlen(cmd) - 1);
    uint32_t at = 99;
    double t0 = now_s();
    fr_status s = run_until_failure(cmd, 1.0, 0, 2, 1, 3, msg, sizeof msg, &at);
    double dt = now_s() - t0;
    ck_assert_int_eq(s, FR_ERR_IO);
    assert_has(msg, "batch 3");
    assert_has(msg, "timeout");
    ck_assert_msg(dt >= 0.95 && dt < 5.0, "timeout of 1 s took %.3f s", dt);
    FILE *f = fopen(pidfile, "r");
    ck_assert_ptr_nonnull(f);
    int py = 0;
    ck_assert_int_eq(fscanf(f, "%d", &py), 1);
    fclose(f);
    unlink(pidfile);
    int gone = 0;
    for (int i = 0; i < 200 && !gone; i++) {
        gone = process_gone(py);
        if (!gone) usleep(5000);
    }
    ck_assert_msg(gone, "the hung python (pid %d) survived the timeout", py);
}
END_TEST

START_TEST(test_short_answers)
{
    char msg[1024];
    uint32_t at = 99;
    fr_status s = run_until_failure(mock("short_exit"), 60, 0, 2, 1, 0, msg, sizeof msg, &at);
    ck_assert_int_eq(s, FR_ERR_FORMAT);
    assert_has(msg, "batch 0");
    assert_has(msg, "cut short: 264 of 268 bytes"); /* B = 64: 12 + 4*64 */
    assert_has(msg, "exited with status 0");
    s = run_until_failure(mock("short_count"), 60, 0, 2, 3, 0, msg, sizeof msg, &at);
    ck_assert_int_eq(s, FR_ERR_FORMAT);
    assert_has(msg, "answer has 63 scores, expected 64");
    /* flowrl closes the program's input and kills it; under load the program may see the end
     * of its input and exit first: either ending is reported, and nothing else */
    ck_assert_msg(strstr(msg, "was stopped") || strstr(msg, "exited with status 0"),
                  "how the program ended is not reported: %s", msg);
}
END_TEST

START_TEST(test_nonfinite_scores)
{
    char msg[1024];
    uint32_t at = 99;
    fr_status s = run_until_failure(mock("nan"), 60, 0, 2, 1, 6, msg, sizeof msg, &at);
    ck_assert_int_eq(s, FR_ERR_NUMERIC);
    assert_has(msg, "batch 6");
    assert_has(msg, "score 1");
    assert_has(msg, "nan");
    s = run_until_failure(mock("inf"), 60, 0, 2, 1, 6, msg, sizeof msg, &at);
    ck_assert_int_eq(s, FR_ERR_NUMERIC);
    assert_has(msg, "score 0");
    assert_has(msg, "inf");
}
END_TEST

START_TEST(test_wrong_batch_index)
{
    char msg[1024];
    uint32_t at = 99;
    fr_status s = run_until_failure(mock("wrong_batch"), 60, 0, 2, 1, 7, msg, sizeof msg, &at);
    ck_assert_int_eq(s, FR_ERR_FORMAT);
    assert_has(msg, "batch 7: answer is for batch 8");
}
END_TEST

/* Output that is not an answer: a log line on stdout before the first request (seen either
 * while the 200 KB request is being written or as the answer's magic), and stray bytes
 * after a correct answer. */
START_TEST(test_garbage)
{
    char msg[1024];
    uint32_t at = 99;
    for (int big = 0; big < 2; big++) {
        fr_status s = run_until_failure(mock("garbage"), 60, big ? 3 : 0, big ? 768 : 2, 1, 0,
                                        msg, sizeof msg, &at);
        ck_assert_int_eq(s, FR_ERR_FORMAT);
        assert_has(msg, "batch 0");
        assert_has(msg, "\"loading");
        assert_has(msg, "stderr");
    }
    fr_status s = run_until_failure(mock("extra"), 60, 0, 2, 1, 0, msg, sizeof msg, &at);
    ck_assert_int_eq(s, FR_ERR_FORMAT);
    assert_has(msg, "more than its answer");
    assert_has(msg, "\"done\\x0a\"");
}
END_TEST

/* A command that does not exist: the shell reports 127 at the first batch. */
START_TEST(test_not_found)
{
    char msg[1024];
    uint32_t at = 99;
    fr_status s = run_until_failure("/nonexistent/flowrl-no-such-reward --x 1", 60, 0, 2, 1, 0,
                                    msg, sizeof msg, &at);
    ck_assert_int_eq(s, FR_ERR_IO);
    assert_has(msg, "`/nonexistent/flowrl-no-such-reward --x 1`");
    assert_has(msg, "batch 0");
    assert_has(msg, "127");
    assert_has(msg, "no such command");
}
END_TEST

/* Close: a program that ignores the end of its input is killed after the grace period
 * (min(timeout, 2 s)), and close says so; a clean one closes with FR_OK (tested above). */
START_TEST(test_close_kills_lingering_program)
{
    fr_reward_cmd_opts o = {0.5, 0, 0, 0, NULL};
    fr_reward_cmd *rc = NULL;
    ck_assert_msg(fr_reward_cmd_open(mock("ignore_eof"), &o, &rc) == FR_OK, "%s",
                  fr_last_error());
    batch b = make_batch(3, 2, 4);
    ck_assert_msg(score(rc, 0, &b) == FR_OK, "%s", fr_last_error());
    assert_mock_scores(&b, 0, 4);
    free_batch(&b);
    double t0 = now_s();
    ck_assert_int_eq(fr_reward_cmd_close(rc), FR_ERR_IO);
    double dt = now_s() - t0;
    assert_has(fr_last_error(), "did not exit within 0.5 s");
    ck_assert_msg(dt >= 0.45 && dt < 3.0, "close took %.3f s", dt);
    assert_no_child();
}
END_TEST

/* The program's stderr is flowrl's stderr. */
START_TEST(test_stderr_passes_through)
{
    char path[] = "/tmp/fr_reward_err_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fr_reward_cmd *rc = NULL;
    fr_status s = fr_reward_cmd_open(mock("log"), NULL, &rc);
    for (uint32_t k = 0; k < 2 && s == FR_OK; k++) {
        batch b = make_batch(2, 2, k);
        s = score(rc, 40 + k, &b);
        free_batch(&b);
    }
    fr_status c = fr_reward_cmd_close(rc);
    dup2(saved, 2);
    close(saved);
    ck_assert_msg(s == FR_OK && c == FR_OK, "%s", fr_last_error());
    char buf[512] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    ck_assert_int_gt(n, 0);
    assert_has(buf, "mock_reward: batch 40\nmock_reward: batch 41\n");
}
END_TEST

/* The first python3 that imports numpy: $FLOWRL_PYTHON, python3 on PATH, then the system
 * one (Debian's python3-numpy installs for /usr/bin/python3). NULL if none. */
static const char *python_with_numpy(void)
{
    const char *env = getenv("FLOWRL_PYTHON");
    const char *const cands[] = {env, "python3", "/usr/bin/python3"};
    for (size_t i = env && *env ? 0 : 1; i < sizeof cands / sizeof cands[0]; i++) {
        char cmd[1100];
        snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", cands[i]);
        int st = system(cmd);
        if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) return cands[i];
    }
    return NULL;
}

/* examples/reward_brightness.py against the same reward computed here in double. numpy
 * sums pairwise, this loop in order: both in double, then rounded to float, so they may
 * differ by an ulp of the float result at most; 1e-6 absolute on values of size <= 3. */
START_TEST(test_numpy_example)
{
    const char *py = python_with_numpy();
    if (!py) {
        printf("reward_cmd: numpy example skipped: no python3 with numpy "
               "(apt-get install python3-numpy)\n");
        return;
    }
    char cmd[1024];
    /* Image form: brightness, or the channel a prompt names. */
    snprintf(cmd, sizeof cmd, "%s '%s/examples/reward_brightness.py'", py, fr_test_src());
    fr_reward_cmd_opts o = {0, 3, 16, 16, NULL};
    fr_reward_cmd *rc = NULL;
    ck_assert_msg(fr_reward_cmd_open(cmd, &o, &rc) == FR_OK, "%s", fr_last_error());
    for (uint32_t k = 0; k < 2; k++) {
        batch b = make_batch(10, 768, 70 + k);
        ck_assert_msg(score(rc, k, &b) == FR_OK, "%s", fr_last_error());
        for (int i = 0; i < b.B; i++) {
            const float *xi = b.x + (size_t)i * 768;
            /* The first of red, green, blue the prompt names (k_texts has no other words
             * containing these): that channel; none: all pixels. */
            int ch = strstr(b.texts[i], "red") ? 0 : strstr(b.texts[i], "green") ? 1
                   : strstr(b.texts[i], "blue") ? 2 : -1;
            int lo = ch >= 0 ? ch * 256 : 0, hi = ch >= 0 ? lo + 256 : 768;
            double acc = 0;
            for (int d = lo; d < hi; d++) acc += ((double)xi[d] + 1.0) / 2.0;
            double want = acc / (hi - lo);
            ck_assert_msg(fabs((double)b.scores[i] - want) <= 1e-6,
                          "image %d (\"%s\", seed %u): %.9g vs %.9g", i, b.texts[i], 70 + k,
                          (double)b.scores[i], want);
        }
        free_batch(&b);
    }
    ck_assert_msg(fr_reward_cmd_close(rc) == FR_OK, "%s", fr_last_error());
    /* 2-D form: minus the distance to --target. */
    snprintf(cmd, sizeof cmd, "%s '%s/examples/reward_brightness.py' --target 4,-1", py,
             fr_test_src());
    ck_assert_msg(fr_reward_cmd_open(cmd, NULL, &rc) == FR_OK, "%s", fr_last_error());
    batch b = make_batch(9, 2, 80);
    ck_assert_msg(score(rc, 0, &b) == FR_OK, "%s", fr_last_error());
    for (int i = 0; i < b.B; i++) {
        double dx = b.x[2 * i] - 4.0, dy = b.x[2 * i + 1] + 1.0;
        double want = -sqrt(dx * dx + dy * dy);
        ck_assert_msg(fabs((double)b.scores[i] - want) <= 1e-6, "point %d: %.9g vs %.9g", i,
                      (double)b.scores[i], want);
    }
    free_batch(&b);
    ck_assert_msg(fr_reward_cmd_close(rc) == FR_OK, "%s", fr_last_error());
    assert_no_child();
}
END_TEST

Suite *suite_reward_cmd(void)
{
    Suite *s = suite_create("reward_cmd");
    TCase *tc = tcase_create("reward_cmd");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_spec);
    tcase_add_test(tc, test_several_batches);
    tcase_add_test(tc, test_bad_input_keeps_program);
    tcase_add_test(tc, test_score_task);
    tcase_add_test(tc, test_exits_immediately);
    tcase_add_test(tc, test_closes_input);
    tcase_add_test(tc, test_exits_between_batches);
    tcase_add_test(tc, test_crash);
    tcase_add_test(tc, test_hang_times_out);
    tcase_add_test(tc, test_short_answers);
    tcase_add_test(tc, test_nonfinite_scores);
    tcase_add_test(tc, test_wrong_batch_index);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_not_found);
    tcase_add_test(tc, test_close_kills_lingering_program);
    tcase_add_test(tc, test_stderr_passes_through);
    tcase_add_test(tc, test_numpy_example);
    suite_add_tcase(s, tc);
    return s;
}
