/* PNG output: round trip through libpng's reader, the float -> byte mapping, grid and
 * scatter geometry, failures (bad directory, NaN) leaving no temporary file behind. */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/png.h"
#include "flowrl/task.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static char *make_tmpdir(void)
{
    static char dir[64];
    fr_test_mkdtemp(dir, sizeof dir, "png");
    return dir;
}

/* Reads path with libpng as 8-bit RGB; returns malloc'd (H, W, 3). */
static uint8_t *read_png(const char *path, int *H, int *W)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    ck_assert_msg(png_image_begin_read_from_file(&img, path), "%s: %s", path, img.message);
    img.format = PNG_FORMAT_RGB;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    ck_assert_msg(png_image_finish_read(&img, NULL, buf, 0, NULL), "%s: %s", path, img.message);
    *H = (int)img.height;
    *W = (int)img.width;
    return buf;
}

START_TEST(test_roundtrip)
{
    char *dir = make_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/a.png", dir);
    enum { H = 7, W = 13 };
    uint8_t rgb[H * W * 3];
    uint64_t seed = 2024;
    for (int i = 0; i < H * W * 3; i++) rgb[i] = (uint8_t)(fr_test_next(&seed) >> 56);
    ck_assert_msg(fr_png_write_rgb(path, rgb, H, W) == FR_OK, "%s", fr_last_error());
    int h, w;
    uint8_t *back = read_png(path, &h, &w);
    ck_assert_int_eq(h, H);
    ck_assert_int_eq(w, W);
    ck_assert_msg(memcmp(back, rgb, sizeof rgb) == 0, "pixels differ (input seed 2024)");
    free(back);
    /* overwriting an existing file works and leaves only that file */
    rgb[0] ^= 0xFF;
    ck_assert_int_eq(fr_png_write_rgb(path, rgb, H, W), FR_OK);
    back = read_png(path, &h, &w);
    ck_assert(back[0] == rgb[0]);
    free(back);
    ck_assert_int_eq(fr_test_rmdir_files(dir), 1);
}
END_TEST

START_TEST(test_write_errors)
{
    uint8_t rgb[12] = {0};
    ck_assert_int_eq(fr_png_write_rgb("/nonexistent-dir/x.png", rgb, 2, 2), FR_ERR_IO);
    ck_assert_msg(strstr(fr_last_error(), "/nonexistent-dir/x.png"), "%s", fr_last_error());
    ck_assert_int_eq(fr_png_write_rgb("/tmp/x.png", rgb, 0, 2), FR_ERR_ARG);
    /* a NaN image fails before anything is written */
    char *dir = make_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/g.png", dir);
    float x[2 * 3 * 4 * 4];
    for (int i = 0; i < (int)(sizeof x / sizeof x[0]); i++) x[i] = 0.0f;
    x[3 * 16 + 5] = NAN;
    ck_assert_int_eq(fr_png_write_grid(path, x, 2, 3, 4, 4, 0, 1), FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "image 1"), "%s", fr_last_error());
    float xy[4] = {0, 0, INFINITY, 1};
    fr_scatter_opts o = fr_scatter_opts_default();
    snprintf(path, sizeof path, "%s/s.png", dir);
    ck_assert_int_eq(fr_png_write_scatter(path, xy, 2, NULL, &o), FR_ERR_NUMERIC);
    ck_assert_int_eq(fr_test_rmdir_files(dir), 0);
}
END_TEST

START_TEST(test_to_rgb)
{
    float x[3 * 1 * 6] = {-1.0f, 1.0f, 0.0f, -2.0f, 3.0f, 0.5f, /* R */
                          -1.0f, -1.0f, -1.0f, -1.0f, -1.0f, -1.0f,
                          1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    uint8_t rgb[6 * 3];
    ck_assert_int_eq(fr_png_to_rgb(x, 3, 1, 6, rgb), FR_OK);
    /* round((x + 1) / 2 * 255), clamped: -1 -> 0, 1 -> 255, 0 -> 127.5 -> 128, 0.5 -> 191.25 */
    static const uint8_t want_r[6] = {0, 255, 128, 0, 255, 191};
    for (int p = 0; p < 6; p++) {
        ck_assert_int_eq(rgb[3 * p], want_r[p]);
        ck_assert_int_eq(rgb[3 * p + 1], 0);
        ck_assert_int_eq(rgb[3 * p + 2], 255);
    }
    /* grey: one channel copied to all three */
    ck_assert_int_eq(fr_png_to_rgb(x, 1, 2, 3, rgb), FR_OK);
    for (int p = 0; p < 6; p++)
        for (int ch = 0; ch < 3; ch++) ck_assert_int_eq(rgb[3 * p + ch], want_r[p]);
    ck_assert_int_eq(fr_png_to_rgb(x, 2, 1, 6, rgb), FR_ERR_ARG);
    x[4] = NAN;
    ck_assert_int_eq(fr_png_to_rgb(x, 3, 1, 6, rgb), FR_ERR_NUMERIC);
}
END_TEST

START_TEST(test_grid)
{
    int h, w;
    /* 10 images of 16x16, scale 2: 4 columns, 3 rows of 33 px plus a border */
    ck_assert_int_eq(fr_png_grid_dims(10, 16, 16, 0, 2, &h, &w), FR_OK);
    ck_assert_int_eq(w, 4 * 33 + 1);
    ck_assert_int_eq(h, 3 * 33 + 1);
    ck_assert_int_eq(fr_png_grid_dims(10, 16, 8, 5, 1, &h, &w), FR_OK);
    ck_assert_int_eq(w, 5 * 9 + 1);
    ck_assert_int_eq(h, 2 * 17 + 1);
    ck_assert_int_eq(fr_png_grid_dims(0, 16, 16, 0, 1, &h, &w), FR_ERR_ARG);
    ck_assert_int_eq(fr_png_grid_dims(4, 16, 16, 0, 0, &h, &w), FR_ERR_ARG);
    ck_assert_int_eq(fr_png_grid_dims(4, 16000, 16, 1, 2, &h, &w), FR_ERR_ARG);

    /* shapes samples: each image pixel appears scale x scale times at its offset */
    enum { N = 5, S = 3 };
    const fr_task *t = &fr_task_shapes;
    float *x = malloc(sizeof(float) * N * FR_SHAPES_D);
    int prompts[N] = {0, 10, 20, 30, 60};
    ck_assert_int_eq(fr_task_sample_batch(t, N, prompts, 1, 0, x), FR_OK);
    ck_assert_int_eq(fr_png_grid_dims(N, 16, 16, 0, S, &h, &w), FR_OK);
    ck_assert_int_eq(w, 3 * 49 + 1);
    ck_assert_int_eq(h, 2 * 49 + 1);
    uint8_t *rgb = malloc((size_t)h * w * 3), tile[16 * 16 * 3];
    ck_assert_int_eq(fr_png_grid_render(x, N, 3, 16, 16, 0, S, rgb), FR_OK);
    for (int n = 0; n < N; n++) {
        ck_assert_int_eq(fr_png_to_rgb(x + n * FR_SHAPES_D, 3, 16, 16, tile), FR_OK);
        int y0 = (n / 3) * 49 + 1, x0 = (n % 3) * 49 + 1;
        for (int y = 0; y < 16 * S; y++)
            for (int xx = 0; xx < 16 * S; xx++)
                ck_assert(memcmp(&rgb[((y0 + y) * w + x0 + xx) * 3],
                                 &tile[((y / S) * 16 + xx / S) * 3], 3) == 0);
    }
    /* borders and the unused sixth cell are grey */
    for (int xx = 0; xx < w; xx++)
        for (int ch = 0; ch < 3; ch++) {
            ck_assert_int_eq(rgb[xx * 3 + ch], FR_PNG_BORDER);
            ck_assert_int_eq(rgb[(49 * w + xx) * 3 + ch], FR_PNG_BORDER);
        }
    for (int y = 0; y < h; y++) ck_assert_int_eq(rgb[(y * w + 49) * 3], FR_PNG_BORDER);
    ck_assert_int_eq(rgb[((49 + 20) * w + 2 * 49 + 20) * 3], FR_PNG_BORDER);

    char *dir = make_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/grid.png", dir);
    ck_assert_msg(fr_png_write_grid(path, x, N, 3, 16, 16, 0, S) == FR_OK, "%s", fr_last_error());
    int rh, rw;
    uint8_t *back = read_png(path, &rh, &rw);
    ck_assert(rh == h && rw == w);
    ck_assert(memcmp(back, rgb, (size_t)h * w * 3) == 0);
    free(back);
    ck_assert_int_eq(fr_test_rmdir_files(dir), 1);
    free(rgb);
    free(x);
}
END_TEST

START_TEST(test_scatter)
{
    float modes[8 * 2];
    for (int k = 0; k < 8; k++) fr_gmm2d_mode(k, modes + 2 * k);
    fr_scatter_opts o = fr_scatter_opts_default();
    o.size = 240; /* 20 px per unit over [-6, 6] */
    o.ring_radius = FR_GMM2D_RADIUS;
    o.marks = modes;
    o.n_marks = 8;
    float xy[3 * 2] = {1.0f, 2.0f, -3.0f, -0.5f, 7.0f, 0.0f}; /* the last is out of view */
    uint8_t colors[3 * 3] = {255, 0, 0, 0, 200, 0, 0, 0, 255};
    uint8_t *rgb = malloc(240 * 240 * 3);
    ck_assert_int_eq(fr_png_scatter_render(xy, 3, colors, &o, rgb), FR_OK);
#define PIX(r, c) (&rgb[((r) * 240 + (c)) * 3])
    /* (1, 2) -> column (1 + 6) * 20 = 140, row (6 - 2) * 20 = 80, a 3x3 dot */
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) ck_assert(memcmp(PIX(80 + dy, 140 + dx), colors, 3) == 0);
    ck_assert(memcmp(PIX(80, 142), colors, 3) != 0);
    /* (-3, -0.5) -> column 60, row 130 */
    ck_assert(memcmp(PIX(130, 60), colors + 3, 3) == 0);
    /* nothing blue (the third colour) anywhere: the out-of-view point is not drawn */
    for (int p = 0; p < 240 * 240; p++) ck_assert(memcmp(&rgb[3 * p], colors + 6, 3) != 0);
    /* the ring: radius 80 px around (120, 120); sample the 45-degree point away from the
     * marks, and the centre stays white off the axes */
    int ring = 0;
    for (int r = 0; r < 240; r++)
        for (int c = 0; c < 240; c++) {
            float dx = c + 0.5f - 120.0f, dy = r + 0.5f - 120.0f;
            float d = sqrtf(dx * dx + dy * dy);
            const uint8_t *px = PIX(r, c);
            if (px[0] == 150 && px[1] == 150 && px[2] == 150) {
                ring++;
                ck_assert_msg(fabsf(d - 80.0f) <= 0.5f, "ring pixel at (%d, %d), d = %g", r, c, d);
            }
        }
    ck_assert_msg(ring > 400 && ring < 2 * 3.1416 * 80 * 1.5, "%d ring pixels", ring);
    ck_assert(PIX(100, 100)[0] == 255 && PIX(100, 100)[1] == 255);
    /* a mark (mode 0 at (4, 0) -> column 200, row 120) is a dark cross */
    ck_assert(PIX(120, 200)[0] == 40 && PIX(116, 200)[0] == 40 && PIX(120, 204)[0] == 40);
    /* default colour without a colour array */
    ck_assert_int_eq(fr_png_scatter_render(xy, 1, NULL, &o, rgb), FR_OK);
    ck_assert(PIX(80, 140)[0] == 31 && PIX(80, 140)[1] == 119 && PIX(80, 140)[2] == 180);
#undef PIX
    o.extent = 0.0f;
    ck_assert_int_eq(fr_png_scatter_render(xy, 1, NULL, &o, rgb), FR_ERR_ARG);
    o.extent = 6.0f;

    char *dir = make_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/scatter.png", dir);
    ck_assert_msg(fr_png_write_scatter(path, xy, 3, colors, &o) == FR_OK, "%s", fr_last_error());
    int h, w;
    uint8_t *back = read_png(path, &h, &w);
    ck_assert(h == 240 && w == 240);
    ck_assert_int_eq(fr_png_scatter_render(xy, 3, colors, &o, rgb), FR_OK);
    ck_assert(memcmp(back, rgb, 240 * 240 * 3) == 0);
    free(back);
    ck_assert_int_eq(fr_test_rmdir_files(dir), 1);
    free(rgb);
}
END_TEST

Suite *suite_png(void)
{
    Suite *s = suite_create("png");
    TCase *tc = tcase_create("png");
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_write_errors);
    tcase_add_test(tc, test_to_rgb);
    tcase_add_test(tc, test_grid);
    tcase_add_test(tc, test_scatter);
    suite_add_tcase(s, tc);
    return s;
}
