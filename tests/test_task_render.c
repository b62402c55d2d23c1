/* fr_task_render (flowrl/task.h): the pictures `flowrl sample` and the trainer's eval grids
 * draw, byte for byte what the CLI and the trainer drew before it lived in data/. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/file_util.h"
#include "flowrl/png.h"
#include "flowrl/task.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static char g_dir[64];

static void setup(void) { fr_test_mkdtemp(g_dir, sizeof g_dir, "render"); }

static void teardown(void) { fr_test_rmtree(g_dir); }

static void assert_same_file(const char *a, const char *b)
{
    char *x, *y;
    size_t nx, ny;
    ck_assert_msg(fr_read_file(a, &x, &nx) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_read_file(b, &y, &ny) == FR_OK, "%s", fr_last_error());
    ck_assert_uint_eq(nx, ny);
    ck_assert_msg(memcmp(x, y, nx) == 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

/* gmm2d: the scatter plot with ring, mode means and tab10 colours by prompt id. */
START_TEST(test_gmm2d_scatter)
{
    const fr_task *t;
    ck_assert_int_eq(fr_task_get("gmm2d", &t), FR_OK);
    enum { N = 24 };
    int pid[N];
    float x[2 * N];
    for (int i = 0; i < N; i++) pid[i] = i % 8;
    ck_assert_int_eq(fr_task_sample_batch(t, N, pid, 7, 0, x), FR_OK);
    char got[128], want[128];
    snprintf(got, sizeof got, "%s/got.png", g_dir);
    snprintf(want, sizeof want, "%s/want.png", g_dir);
    ck_assert_msg(fr_task_render(t, got, N, pid, x, 8, 4) == FR_OK, "%s", fr_last_error());
    /* the picture as cli/cmd_sample.c drew it before */
    static const uint8_t tab10[8][3] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                                        {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127}};
    uint8_t col[3 * N];
    for (int i = 0; i < N; i++) memcpy(col + 3 * i, tab10[pid[i]], 3);
    fr_scatter_opts o = fr_scatter_opts_default();
    float marks[2 * FR_GMM2D_MODES];
    for (int k = 0; k < FR_GMM2D_MODES; k++) fr_gmm2d_mode(k, marks + 2 * k);
    o.ring_radius = FR_GMM2D_RADIUS;
    o.marks = marks;
    o.n_marks = FR_GMM2D_MODES;
    ck_assert_int_eq(fr_png_write_scatter(want, x, N, col, &o), FR_OK);
    assert_same_file(got, want);
    /* a non-finite sample is refused, not drawn */
    x[3] = 0.0f / 0.0f;
    ck_assert_int_eq(fr_task_render(t, got, N, pid, x, 8, 4), FR_ERR_NUMERIC);
}
END_TEST

/* shapes: the image grid, `cols` a row. */
START_TEST(test_shapes_grid)
{
    const fr_task *t;
    ck_assert_int_eq(fr_task_get("shapes", &t), FR_OK);
    enum { N = 6 };
    int pid[N] = {0, 0, 0, 5, 5, 5};
    float *x = malloc((size_t)N * (size_t)t->D * sizeof *x);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(fr_task_sample_batch(t, N, pid, 3, 0, x), FR_OK);
    char got[128], want[128];
    snprintf(got, sizeof got, "%s/got.png", g_dir);
    snprintf(want, sizeof want, "%s/want.png", g_dir);
    ck_assert_msg(fr_task_render(t, got, N, pid, x, 3, 4) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_png_write_grid(want, x, N, t->C, t->H, t->W, 3, 4), FR_OK);
    assert_same_file(got, want);
    free(x);
}
END_TEST

/* A task without a picture of its own: 2-D gets the plain scatter plot (with the task's
 * scatter_marks where it has them: checkerboard's cell centres), other shapes none. */
START_TEST(test_default_pictures)
{
    fr_task t = fr_task_gmm2d;
    t.render = NULL;
    t.scatter_marks = NULL;
    int pid[2] = {11, 3};
    float x[6] = {0.5f, -1.0f, 2.0f, 2.0f, 0.0f, 0.0f};
    char got[128], want[128];
    snprintf(got, sizeof got, "%s/got.png", g_dir);
    snprintf(want, sizeof want, "%s/want.png", g_dir);
    ck_assert_msg(fr_task_render(&t, got, 2, pid, x, 1, 1) == FR_OK, "%s", fr_last_error());
    const uint8_t col[6] = {255, 127, 14, 214, 39, 40}; /* ids 11 and 3: tab10[1], tab10[3] */
    fr_scatter_opts o = fr_scatter_opts_default();
    ck_assert_int_eq(fr_png_write_scatter(want, x, 2, col, &o), FR_OK);
    assert_same_file(got, want);
    t.D = 3;
    ck_assert_int_eq(fr_task_render(&t, got, 2, pid, x, 1, 1), FR_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(fr_last_error(), "3-dimensional"), "%s", fr_last_error());
    /* checkerboard: no render of its own, its marks on the default plot */
    const fr_task *cb = &fr_task_checkerboard;
    ck_assert(cb->render == NULL && cb->scatter_marks != NULL);
    int zero[2] = {0, 0};
    ck_assert_msg(fr_task_render(cb, got, 2, zero, x, 1, 1) == FR_OK, "%s", fr_last_error());
    const uint8_t blue[6] = {31, 119, 180, 31, 119, 180};
    float marks[2 * 8];
    fr_scatter_opts m = fr_scatter_opts_default();
    m.n_marks = cb->scatter_marks(cb, marks, 8, &m.ring_radius);
    m.marks = marks;
    ck_assert_int_eq(m.n_marks, 8);
    ck_assert(marks[0] == -3.0f && marks[1] == -3.0f && marks[14] == 3.0f && marks[15] == 3.0f);
    ck_assert_int_eq(fr_png_write_scatter(want, x, 2, blue, &m), FR_OK);
    assert_same_file(got, want);
}
END_TEST

Suite *suite_task_render(void)
{
    Suite *s = suite_create("task_render");
    TCase *tc = tcase_create("pictures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_gmm2d_scatter);
    tcase_add_test(tc, test_shapes_grid);
    tcase_add_test(tc, test_default_pictures);
    suite_add_tcase(s, tc);
    return s;
}
