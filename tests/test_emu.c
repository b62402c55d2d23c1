/* cuda-emu's own machinery (emu/, flowrl/emu.h, flowrl/kernel.h): the guard stops a host
 * access to device memory with the offset named, copies check which side each pointer is on,
 * allocations come back zero-filled, the launcher gives phases barrier semantics, and an op
 * entry stops on a pointer argument that is not inside a live device allocation (FR_KARG). What the
 * kernels compute is tests/test_backends.c's business. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flowrl/emu.h"
#include "flowrl/kernel.h"
#include "flowrl/ops.h"
#include "tests/testutil.h"

static const fr_ops *emu_ops(void)
{
    const fr_ops *o = NULL;
    ck_assert_msg(fr_backend_get("cuda-emu", &o) == FR_OK, "cuda-emu: %s", fr_last_error());
    ck_assert(o->device == 1);
    return o;
}

/* Runs fn in a child with stderr into buf; returns the wait status. */
static int run_child(void (*fn)(const fr_ops *), const fr_ops *o, char *buf, size_t n)
{
    int fd[2];
    ck_assert(pipe(fd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        fn(o);
        _exit(0); /* the guard did not fire */
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fd[0], buf + got, n - 1 - got)) > 0) got += (size_t)r;
    buf[got] = '\0';
    close(fd[0]);
    int st = 0;
    ck_assert(waitpid(pid, &st, 0) == pid);
    return st;
}

static void planted_read(const fr_ops *o)
{
    float *d = (float *)o->mem_alloc(64 * sizeof(float));
    float h[64];
    for (int i = 0; i < 64; i++) h[i] = (float)i;
    o->mem_h2d(d, h, sizeof h);
    volatile float *p = d;
    float v = p[5]; /* the host loop the guard exists for */
    fprintf(stderr, "read %g without a fault\n", (double)v);
}

static void planted_write(const fr_ops *o)
{
    float *d = (float *)o->mem_alloc(300 * sizeof(float));
    d[270] = 1.0f;
}

START_TEST(test_guard_catches_host_read)
{
    char err[8192];
    int st = run_child(planted_read, emu_ops(), err, sizeof err);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child status %d, stderr: %s", st, err);
    ck_assert_msg(strstr(err, "host code touched cuda-emu device memory at offset") != NULL, "stderr: %s", err);
    ck_assert_msg(strstr(err, "byte 20 of a 256-byte allocation") != NULL, "stderr: %s", err);
}
END_TEST

START_TEST(test_guard_catches_host_write)
{
    char err[8192];
    int st = run_child(planted_write, emu_ops(), err, sizeof err);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child status %d, stderr: %s", st, err);
    ck_assert_msg(strstr(err, "byte 1080 of a 1280-byte allocation") != NULL, "stderr: %s", err);
}
END_TEST

START_TEST(test_copies_check_sides)
{
    const fr_ops *o = emu_ops();
    float h[8] = {1, 2, 3, 4, 5, 6, 7, 8}, back[8] = {0};
    float *d = (float *)o->mem_alloc(sizeof h), *e = (float *)o->mem_alloc(sizeof h);
    ck_assert(fr_emu_is_device(d) && !fr_emu_is_device(h));
    ck_assert(o->mem_h2d(d, h, sizeof h) == FR_OK);
    ck_assert(o->mem_d2d(e, d, sizeof h) == FR_OK);
    ck_assert(o->mem_d2h(back, e, sizeof h) == FR_OK);
    ck_assert(memcmp(h, back, sizeof h) == 0);
    /* swapped sides, and a copy running past the allocation's end */
    ck_assert(o->mem_h2d(h, d, sizeof h) == FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "h2d destination") != NULL, "%s", fr_last_error());
    ck_assert(o->mem_d2h(d, e, sizeof h) == FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "d2h destination") != NULL, "%s", fr_last_error());
    ck_assert(o->mem_d2h(back, e + 4, 1024) == FR_ERR_ARG);
    ck_assert(o->mem_zero(d, sizeof h) == FR_OK);
    ck_assert(o->mem_d2h(back, d, sizeof h) == FR_OK);
    for (int i = 0; i < 8; i++) ck_assert(back[i] == 0.0f);
    o->mem_free(d);
    o->mem_free(e);
}
END_TEST

START_TEST(test_alloc_zero_fills_and_reuses)
{
    const fr_ops *o = emu_ops();
    size_t before = fr_emu_bytes_in_use();
    unsigned char ones[1000], back[1000];
    memset(ones, 1, sizeof ones);
    void *a = o->mem_alloc(1000), *b = o->mem_alloc(1000), *c = o->mem_alloc(10);
    ck_assert(a && b && c);
    ck_assert(o->mem_h2d(a, ones, sizeof ones) == FR_OK);
    ck_assert(o->mem_h2d(b, ones, sizeof ones) == FR_OK);
    o->mem_free(b);
    o->mem_free(a); /* coalesces with b's block: 2048 bytes at a */
    void *ab = o->mem_alloc(2000);
    ck_assert_ptr_eq(ab, a);
    ck_assert(o->mem_d2h(back, (unsigned char *)ab + 1024, sizeof back) == FR_OK);
    for (size_t i = 0; i < sizeof back; i++) ck_assert_msg(back[i] == 0, "byte %zu of a reused block is %d", i, back[i]);
    o->mem_free(ab);
    o->mem_free(c);
    ck_assert_uint_eq(fr_emu_bytes_in_use(), before);
}
END_TEST

/* An op entry handed a host buffer (what golden's and any unconverted caller's code would do):
 * on the CPU the kernel would read it happily, on a device it faults; the entry stops first. */
static void op_on_host_buffer(const fr_ops *o)
{
    float *d = (float *)o->mem_alloc(16 * sizeof(float));
    float h[16] = {0};
    o->axpby(16, 2.0f, h, 1.0f, d);
    fprintf(stderr, "axpby ran on a host buffer\n");
}

/* A device buffer shorter than the op's extent (10 floats allocated, 300 asked: past the
 * 256-byte block) and a freed one. */
static void op_past_allocation(const fr_ops *o)
{
    float *x = (float *)o->mem_alloc(10 * sizeof(float)), *y = (float *)o->mem_alloc(300 * sizeof(float));
    o->scale(300, 2.0f, x, y);
}

static void op_on_freed_buffer(const fr_ops *o)
{
    float *x = (float *)o->mem_alloc(8 * sizeof(float)), *y = (float *)o->mem_alloc(8 * sizeof(float));
    o->mem_free(y);
    o->copy(8, x, y);
}

/* global_norm's xs is a host array of device pointers: each is checked, named by its index. */
static void op_host_pointer_in_list(const fr_ops *o)
{
    float *a = (float *)o->mem_alloc(4 * sizeof(float)), *out = (float *)o->mem_alloc(sizeof(float));
    float h[4] = {1, 2, 3, 4};
    const float *xs[3] = {a, a, h};
    const int64_t ns[3] = {4, 4, 4};
    o->global_norm(3, xs, ns, out);
}

/* NULL optional arguments pass; the op runs and the child exits 0. */
static void op_null_optionals(const fr_ops *o)
{
    const int64_t M = 3, D = 5;
    float *x = (float *)o->mem_alloc(M * D * sizeof(float)), *y = (float *)o->mem_alloc(M * D * sizeof(float));
    float *st = (float *)o->mem_alloc(2 * M * sizeof(float));
    uint64_t l0 = fr_emu_launches();
    o->layernorm_fwd(M, D, x, NULL, NULL, 1e-5f, y, st, st + M);
    o->fm_loss(M, D, x, y, NULL, NULL, y);
    _exit(fr_emu_launches() == l0 + 3 ? 0 : 3); /* two layer-norm kernels and the gradient's */
}

static void assert_stopped(int st, const char *err, const char *line)
{
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child status %d, stderr: %s", st, err);
    ck_assert_msg(strstr(err, line) != NULL, "stderr lacks '%s': %s", line, err);
    ck_assert_msg(strstr(err, "Host stack") != NULL, "stderr: %s", err);
}

START_TEST(test_op_entry_rejects_host_buffer)
{
    char err[8192];
    const fr_ops *o = emu_ops();
    assert_stopped(run_child(op_on_host_buffer, o, err, sizeof err), err,
                   "flowrl: cuda-emu: axpby argument x (");
    ck_assert_msg(strstr(err, ", 64 bytes) is not device memory: the caller passed a host buffer to a device backend") !=
                      NULL,
                  "stderr: %s", err);
    ck_assert_msg(strstr(err, "ran on a host buffer") == NULL, "stderr: %s", err);
    assert_stopped(run_child(op_past_allocation, o, err, sizeof err), err,
                   "flowrl: cuda-emu: scale argument x (");
    ck_assert_msg(strstr(err, ", 1200 bytes) is not inside one live device allocation") != NULL, "stderr: %s", err);
    assert_stopped(run_child(op_on_freed_buffer, o, err, sizeof err), err,
                   "flowrl: cuda-emu: copy argument dst (");
    assert_stopped(run_child(op_host_pointer_in_list, o, err, sizeof err), err,
                   "flowrl: cuda-emu: global_norm argument xs[2] (");
    int st = run_child(op_null_optionals, o, err, sizeof err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d, stderr: %s", st, err);
}
END_TEST

/* A tiled kernel whose compute phase reads what *another* thread loaded: right only if every
 * thread's load ran before any compute (the barrier), and a shared slot no thread wrote reads
 * as the poison (NaN), not as a lucky 0. */
typedef struct {
    const float *x;
    float *y;
    int64_t n;
} rot_args;
typedef struct {
    float acc;
} rot_regs;
typedef struct {
    float v[33];
} rot_smem;
static inline int64_t k_rot_iters(const rot_args *a) { return (a->n + 31) / 32; }
static inline void k_rot_init(const fr_kidx *k, const rot_args *a, rot_smem *s, rot_regs *r) { r->acc = 0.0f; }
static inline void k_rot_load(const fr_kidx *k, const rot_args *a, rot_smem *s, rot_regs *r)
{
    int64_t i = k->iter * 32 + k->thread.x;
    s->v[k->thread.x] = i < a->n ? a->x[i] : 0.0f;
}
static inline void k_rot_compute(const fr_kidx *k, const rot_args *a, rot_smem *s, rot_regs *r)
{
    r->acc += s->v[(k->thread.x + 1) % 32];
}
static inline void k_rot_store(const fr_kidx *k, const rot_args *a, rot_smem *s, rot_regs *r)
{
    a->y[k->thread.x] = r->acc;
    if (k->thread.x == 0) a->y[32] = s->v[32]; /* never written */
}
FR_KERNEL_TILED(k_rot, rot_args, rot_regs, rot_smem)

START_TEST(test_launch_phases_are_barriers)
{
    const fr_ops *o = emu_ops();
    const int64_t n = 70;
    float h[70], y[33];
    for (int i = 0; i < n; i++) h[i] = (float)(i + 1);
    float *dx = (float *)o->mem_alloc(sizeof h), *dy = (float *)o->mem_alloc(sizeof y);
    ck_assert(o->mem_h2d(dx, h, sizeof h) == FR_OK);
    uint64_t l0 = fr_emu_launches();
    rot_args a = {dx, dy, n};
    FR_LAUNCH_TILED(k_rot, fr_dim3_x(1), fr_dim3_x(32), a);
    ck_assert(fr_emu_launches() == l0 + 1);
    ck_assert(o->mem_d2h(y, dy, sizeof y) == FR_OK);
    for (int t = 0; t < 32; t++) {
        float want = 0.0f;
        for (int64_t it = 0; it < 3; it++) {
            int64_t i = it * 32 + (t + 1) % 32;
            want += i < n ? h[i] : 0.0f;
        }
        ck_assert_msg(y[t] == want, "thread %d: %g, want %g", t, (double)y[t], (double)want);
    }
    ck_assert_msg(y[32] != y[32], "unwritten shared memory read as %g, want the NaN poison", (double)y[32]);
    o->mem_free(dx);
    o->mem_free(dy);
}
END_TEST

/* A racy kernel: every thread writes its index to y[0]. Which one wins depends on the order
 * the threads run in; FLOWRL_EMU_ORDER=reverse makes the emulator show the other outcome. */
typedef struct {
    float *y;
} race_args;
FR_KERNEL(k_race, race_args) { a->y[0] = (float)fr_kidx_global_x(k); }

static void race_child(const fr_ops *o)
{
    float *d = (float *)o->mem_alloc(sizeof(float)), y = -1.0f;
    race_args a = {d};
    FR_LAUNCH(k_race, fr_dim3_x(2), fr_dim3_x(4), a);
    o->mem_d2h(&y, d, sizeof y);
    fprintf(stderr, "winner %d\n", (int)y);
}

static void race_child_reverse(const fr_ops *o)
{
    setenv("FLOWRL_EMU_ORDER", "reverse", 1);
    race_child(o);
}

START_TEST(test_reverse_order_exposes_races)
{
    char err[256];
    unsetenv("FLOWRL_EMU_ORDER");
    ck_assert_int_eq(run_child(race_child, emu_ops(), err, sizeof err), 0);
    ck_assert_msg(strstr(err, "winner 7") != NULL, "default order: %s", err);
    ck_assert_int_eq(run_child(race_child_reverse, emu_ops(), err, sizeof err), 0);
    ck_assert_msg(strstr(err, "winner 0") != NULL, "reverse order: %s", err);
}
END_TEST

Suite *suite_emu(void)
{
    Suite *s = suite_create("emu");
    TCase *tc = tcase_create("emu");
    tcase_add_test(tc, test_guard_catches_host_read);
    tcase_add_test(tc, test_guard_catches_host_write);
    tcase_add_test(tc, test_copies_check_sides);
    tcase_add_test(tc, test_alloc_zero_fills_and_reuses);
    tcase_add_test(tc, test_launch_phases_are_barriers);
    tcase_add_test(tc, test_reverse_order_exposes_races);
    tcase_add_test(tc, test_op_entry_rejects_host_buffer);
    suite_add_tcase(s, tc);
    return s;
}
