/* Readable results (issue 14 item 10): curve.svg (fitted axes, smoothing, NaN gaps,
 * determinism), labelled sample grids (geometry, verdict frames, labels, before/after,
 * 2-D scatter), the 5x7 font, the Wilson / Newcombe intervals and make demo's table. */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/shapes_internal.h"
#include "flowrl/font5x7.h"
#include "flowrl/plot_svg.h"
#include "flowrl/sample_grid.h"
#include "flowrl/stats.h"
#include "flowrl/task.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static char *make_tmpdir(void)
{
    static char dir[64];
    fr_test_mkdtemp(dir, sizeof dir, "plots");
    return dir;
}

/* ---- curve.svg ------------------------------------------------------------------------ */

/* The default frame of core/plot_svg.c (720 x 440): plot area y in [50, 388]. */
#define PLOT_Y0 50.0
#define PLOT_Y1 388.0

/* Every "x,y" pair after an M or L in the first `n_paths` paths from s on; returns the count
 * and fills ys (capacity cap). */
static int path_ys(const char *s, int n_paths, double *ys, int cap)
{
    int n = 0;
    for (int k = 0; k < n_paths && (s = strstr(s, " d=\"")) != NULL; k++) {
        s += 4;
        const char *end = strchr(s, '"');
        while (s < end) {
            double x, y;
            if ((*s == 'M' || *s == 'L') && sscanf(s + 1, "%lf,%lf", &x, &y) == 2 && n < cap) ys[n++] = y;
            s++;
        }
    }
    return n;
}

START_TEST(test_nice_axis)
{
    double lo, hi, step;
    int dec;
    ck_assert_int_eq(fr_plot_nice_axis(0.0, 1.0, 7, &lo, &hi, &step, &dec), FR_OK);
    ck_assert(lo == 0.0 && hi == 1.0 && fabs(step - 0.2) < 1e-15 && dec == 1);
    /* negative rewards and rewards above 1: ticks of 2 from -4 to 4 cover [-2.3, 3.7] */
    ck_assert_int_eq(fr_plot_nice_axis(-2.3, 3.7, 7, &lo, &hi, &step, &dec), FR_OK);
    ck_assert_msg(lo == -4.0 && hi == 4.0 && step == 2.0 && dec == 0, "[%g, %g] step %g", lo, hi, step);
    ck_assert_int_eq(fr_plot_nice_axis(0.0123, 0.0191, 7, &lo, &hi, &step, &dec), FR_OK);
    ck_assert_msg(lo <= 0.0123 && hi >= 0.0191 && (hi - lo) / step <= 6.5 && dec == 3, "[%g, %g] step %g", lo, hi,
                  step);
    /* a constant is widened: 0 -> [-0.5, 0.5], 100 -> [90, 110] */
    ck_assert_int_eq(fr_plot_nice_axis(0.0, 0.0, 7, &lo, &hi, &step, &dec), FR_OK);
    ck_assert(lo <= -0.5 && hi >= 0.5 && lo < hi);
    ck_assert_int_eq(fr_plot_nice_axis(100.0, 100.0, 7, &lo, &hi, &step, &dec), FR_OK);
    ck_assert(lo <= 90.0 && hi >= 110.0 && hi - lo <= 30.0);
    ck_assert_int_eq(fr_plot_nice_axis(-1e308, 1e308, 7, &lo, &hi, &step, &dec), FR_ERR_ARG);
    ck_assert_int_eq(fr_plot_nice_axis(1.0, NAN, 7, &lo, &hi, &step, &dec), FR_ERR_ARG);
}
END_TEST

START_TEST(test_curve_fitted_axis)
{
    enum { N = 50 };
    double r[N], ex[4] = {10, 20, 30, 40}, ey[4] = {0.1, 0.4, 0.45, 0.9};
    for (int i = 0; i < N; i++) r[i] = -2.3 + 6.0 * i / (N - 1); /* -2.3 .. 3.7 */
    fr_curve_series s[2] = {{"reward mean", NULL, r, N, FR_CURVE_LINE, NULL, 0},
                            {"held-out accuracy", ex, ey, 4, FR_CURVE_POINTS, NULL, 0}};
    fr_curve_axes ax = {"run", "epoch", "reward", 0, 0, 0.0, 1.0};
    char *svg;
    size_t len;
    ck_assert_msg(fr_curve_svg_render(s, 2, &ax, &svg, &len) == FR_OK, "%s", fr_last_error());
    ck_assert_uint_eq(strlen(svg), len);
    ck_assert_msg(strstr(svg, ">-4</text>") && strstr(svg, ">4</text>") && strstr(svg, ">0</text>"), "%s", svg);
    ck_assert(strstr(svg, ">50</text>") && strstr(svg, "held-out accuracy") && strstr(svg, "<circle"));
    double ys[64];
    int n = path_ys(svg, 1, ys, 64);
    ck_assert_int_eq(n, N);
    /* the reward line spans most of the plot height: not clamped to a flat line at 0 or 1 */
    double mn = 1e9, mx = -1e9;
    for (int i = 0; i < n; i++) {
        ck_assert_msg(ys[i] >= PLOT_Y0 && ys[i] <= PLOT_Y1, "y %g outside the plot", ys[i]);
        mn = fmin(mn, ys[i]);
        mx = fmax(mx, ys[i]);
    }
    ck_assert_msg(mx - mn > 0.7 * (PLOT_Y1 - PLOT_Y0), "span %g px", mx - mn);
    free(svg);
}
END_TEST

START_TEST(test_curve_nan_empty_smooth)
{
    double y[7] = {0.5, NAN, 0.25, 0.75, INFINITY, 1.0, 0.0};
    fr_curve_series s = {"r", NULL, y, 7, FR_CURVE_LINE, "#123456", 0};
    char *svg;
    size_t len;
    ck_assert_int_eq(fr_curve_svg_render(&s, 1, NULL, &svg, &len), FR_OK);
    ck_assert_msg(!strstr(svg, "nan") && !strstr(svg, "inf"), "%s", svg);
    /* the line breaks at each missing point: M at 1, at 3, at 6; point 1 alone is a dot */
    const char *d = strstr(svg, "stroke=\"#123456\"");
    ck_assert_ptr_nonnull(d);
    int moves = 0;
    for (const char *c = d; *c && *c != '>'; c++) moves += *c == 'M';
    ck_assert_int_eq(moves, 3);
    ck_assert(strstr(d, " l0,0") != NULL);
    free(svg);
    /* no series, and an empty series: a valid picture with the default axes */
    ck_assert_int_eq(fr_curve_svg_render(NULL, 0, NULL, &svg, &len), FR_OK);
    ck_assert(strstr(svg, "</svg>") && strstr(svg, ">0</text>") && strstr(svg, ">1</text>"));
    free(svg);
    fr_curve_series e = {"nothing", NULL, NULL, 0, FR_CURVE_SMOOTHED, NULL, 0};
    ck_assert_int_eq(fr_curve_svg_render(&e, 1, NULL, &svg, &len), FR_OK);
    free(svg);
    /* centred mean of 3 on 0 1 0 1 0 (axis [0, 1]): 1/2 2/3 1/3 2/3 1/2 ... shorter windows at the ends */
    double z[5] = {0, 1, 0, 1, 0}, want[5] = {0.5, 1.0 / 3, 2.0 / 3, 1.0 / 3, 0.5};
    fr_curve_series m = {"sm", NULL, z, 5, FR_CURVE_SMOOTHED, NULL, 3};
    fr_curve_axes ax = {0};
    ax.y_max = 1.0;
    ck_assert_int_eq(fr_curve_svg_render(&m, 1, &ax, &svg, &len), FR_OK);
    double ys[16];
    ck_assert_int_eq(path_ys(svg, 2, ys, 16), 10); /* raw line, then the smoothed one */
    for (int i = 0; i < 5; i++) {
        double py = PLOT_Y0 + (PLOT_Y1 - PLOT_Y0) * (1.0 - want[i]);
        ck_assert_msg(fabs(ys[5 + i] - py) < 0.006, "point %d: %g, want %g", i, ys[5 + i], py);
    }
    ck_assert(strstr(svg, "(centred mean of 3)"));
    free(svg);
    /* bad input */
    m.window = 4;
    ck_assert_int_eq(fr_curve_svg_render(&m, 1, NULL, &svg, &len), FR_ERR_ARG);
    fr_curve_series bad = {"b", NULL, NULL, 3, FR_CURVE_LINE, NULL, 0};
    ck_assert_int_eq(fr_curve_svg_render(&bad, 1, NULL, &svg, &len), FR_ERR_ARG);
}
END_TEST

START_TEST(test_curve_write_deterministic)
{
    char *dir = make_tmpdir(), p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/a.svg", dir);
    snprintf(p2, sizeof p2, "%s/b.svg", dir);
    enum { N = 300 };
    double y[N], x[N];
    uint64_t seed = 14;
    for (int i = 0; i < N; i++) {
        x[i] = 2.0 * i;
        y[i] = 1.5 * sin(i / 20.0) + fr_test_uniform(&seed, -0.5f, 0.5f);
    }
    fr_curve_series s[2] = {{"reward & <more>", x, y, N, FR_CURVE_SMOOTHED, NULL, 0},
                            {"acc", x, y, 10, FR_CURVE_POINTS, NULL, 0}};
    ck_assert_msg(fr_curve_svg_write(p1, s, 2, NULL) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_curve_svg_write(p2, s, 2, NULL), FR_OK);
    size_t l1, l2;
    char *a = fr_test_slurp(p1, &l1), *b = fr_test_slurp(p2, &l2);
    ck_assert_msg(l1 == l2 && memcmp(a, b, l1) == 0, "two writes differ (input seed 14)");
    ck_assert(strstr(a, "reward &amp; &lt;more&gt;") && strstr(a, "(centred mean of 15)"));
    free(a);
    free(b);
    ck_assert_int_eq(fr_curve_svg_write("/nonexistent-dir/c.svg", s, 2, NULL), FR_ERR_IO);
    ck_assert_int_eq(fr_test_rmdir_files(dir), 2);
}
END_TEST

/* ---- font ----------------------------------------------------------------------------- */

START_TEST(test_font)
{
    for (int c = '!'; c <= '~'; c++) {
        int ink = 0;
        for (int r = 0; r < FR_FONT_H; r++)
            for (int q = 0; q < FR_FONT_W; q++) {
                ink += fr_font_pixel((char)c, r, q);
                if (c >= 'a' && c <= 'z')
                    ck_assert(fr_font_pixel((char)c, r, q) == fr_font_pixel((char)(c - 32), r, q));
            }
        ck_assert_msg(ink > 0, "'%c' has no ink", c);
    }
    for (int r = 0; r < FR_FONT_H; r++)
        for (int q = 0; q < FR_FONT_W; q++) {
            ck_assert(!fr_font_pixel(' ', r, q));
            ck_assert(fr_font_pixel('\t', r, q) == fr_font_pixel('?', r, q));
        }
    /* distinct digits and capitals: no two glyphs equal */
    static const char set[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (int i = 0; set[i]; i++)
        for (int j = i + 1; set[j]; j++) {
            int same = 1;
            for (int r = 0; r < FR_FONT_H; r++)
                for (int q = 0; q < FR_FONT_W; q++) same &= fr_font_pixel(set[i], r, q) == fr_font_pixel(set[j], r, q);
            ck_assert_msg(!same, "'%c' and '%c' are drawn alike", set[i], set[j]);
        }
    ck_assert_int_eq(fr_font_width(3, 2), (3 * 6 - 1) * 2);
    /* drawing clips at the edges */
    uint8_t img[8 * 4 * 3] = {0}, red[3] = {255, 0, 0};
    fr_font_draw(img, 8, 4, -2, 1, "H", 1, 1, red);
    ck_assert(img[(1 * 4 + 2) * 3] == 255 && img[(1 * 4 + 0) * 3] == 0); /* H's right column at x = 2 */
}
END_TEST

/* ---- sample grids ------------------------------------------------------------------------- */

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

static const uint8_t *px_at(const uint8_t *rgb, int w, int y, int x) { return &rgb[((size_t)y * w + x) * 3]; }

static int px_is(const uint8_t *rgb, int w, int y, int x, int r, int g, int b)
{
    const uint8_t *p = px_at(rgb, w, y, x);
    return p[0] == r && p[1] == g && p[2] == b;
}

/* Non-white pixels in the rectangle [x0, x1) x [y0, y1). */
static int ink(const uint8_t *rgb, int w, int x0, int y0, int x1, int y1)
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) n += !px_is(rgb, w, y, x, 255, 255, 255);
    return n;
}

enum { GRID_ROWS = 2, GRID_COLS = 3 };

/* scale 1, text scale 1, 22 label characters (core/sample_grid.c's layout):
 *   label column 22·6 + 8 = 140, cells 16 + 2·2 frame + 2 gap = 22 pixels apart, row count
 *   8 + 3·6 = 26 wide -> panel 3·22 + 26 = 92; margins 8; key line 8 + 8 below;
 *   width = max(8 + 140 + 92 + 8, the key's 73 characters: 73·6 - 1 + 16 = 453). */
#define G_X0 148
#define G_Y0 8

START_TEST(test_grid_labelled)
{
    const fr_task *t = &fr_task_shapes;
    const int D = t->D;
    float *x = malloc(sizeof(float) * GRID_ROWS * GRID_COLS * D);
    for (int i = 0; i < GRID_ROWS * GRID_COLS * D; i++) x[i] = -1.0f;
    x[0] = 1.0f; /* sample (0, 0): its top-left pixel red */
    const int correct[GRID_ROWS * GRID_COLS] = {1, 0, -1, 1, 1, 0};
    const char *labels[GRID_ROWS] = {"a red object left of a blue object", "x"};
    fr_sample_grid_opts o = {1, 1, 22, 0};
    uint8_t *rgb;
    int h, w;
    ck_assert_msg(fr_sample_grid_render(t, GRID_ROWS, labels, GRID_COLS, 1,
                                        &(fr_sample_panel){NULL, x, correct}, &o, &rgb, &h, &w) == FR_OK,
                  "%s", fr_last_error());
    ck_assert_int_eq(w, 453);
    ck_assert_int_eq(h, 8 + 2 * 22 + 16 + 8);
    /* verdict frames: green, red, grey; black sample inside; the red pixel of sample (0, 0) */
    ck_assert(px_is(rgb, w, G_Y0, G_X0, 44, 160, 44));
    ck_assert(px_is(rgb, w, G_Y0, G_X0 + 22, 214, 39, 40));
    ck_assert(px_is(rgb, w, G_Y0, G_X0 + 44, 170, 170, 170));
    ck_assert(px_is(rgb, w, G_Y0 + 22 + 1, G_X0 + 44 + 1, 214, 39, 40)); /* (1, 2) incorrect */
    ck_assert(px_is(rgb, w, G_Y0 + 2, G_X0 + 2, 255, 0, 0));
    ck_assert(px_is(rgb, w, G_Y0 + 2, G_X0 + 3, 0, 0, 0));
    /* labels: row 0 wraps over two lines (22 characters a line), row 1 one short line */
    ck_assert(ink(rgb, w, 8, G_Y0, 8 + 132, G_Y0 + 10) > 30);
    ck_assert(ink(rgb, w, 8, G_Y0 + 10, 8 + 132, G_Y0 + 18) > 30);
    ck_assert(ink(rgb, w, 8, G_Y0 + 22, 8 + 132, G_Y0 + 44) > 5);
    ck_assert_int_eq(ink(rgb, w, 8 + 12, G_Y0 + 22, 8 + 132, G_Y0 + 44), 0); /* "x" is one character */
    /* row counts "1/2" and "2/3" right of the cells, the key line at the bottom */
    ck_assert(ink(rgb, w, G_X0 + 66 + 8, G_Y0, w, G_Y0 + 22) > 10);
    ck_assert(ink(rgb, w, 8, h - 16, w, h - 8) > 100);
    ck_assert_int_eq(ink(rgb, w, 0, 0, w, G_Y0), 0);

    /* written: decodes to the same pixels, twice the same bytes */
    char *dir = make_tmpdir(), p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/a.png", dir);
    snprintf(p2, sizeof p2, "%s/b.png", dir);
    ck_assert_msg(fr_sample_grid_labelled(p1, t, GRID_ROWS, labels, GRID_COLS, x, correct, &o) == FR_OK, "%s",
                  fr_last_error());
    ck_assert_int_eq(fr_sample_grid_labelled(p2, t, GRID_ROWS, labels, GRID_COLS, x, correct, &o), FR_OK);
    int h2, w2;
    uint8_t *back = read_png(p1, &h2, &w2);
    ck_assert(h2 == h && w2 == w && memcmp(back, rgb, (size_t)h * w * 3) == 0);
    size_t l1, l2;
    char *a = fr_test_slurp(p1, &l1), *b = fr_test_slurp(p2, &l2);
    ck_assert(l1 == l2 && memcmp(a, b, l1) == 0);
    free(a);
    free(b);
    free(back);

    /* a NaN sample names its row and column and leaves no file */
    x[(1 * GRID_COLS + 2) * D + 7] = NAN;
    snprintf(p2, sizeof p2, "%s/nan.png", dir);
    ck_assert_int_eq(fr_sample_grid_labelled(p2, t, GRID_ROWS, labels, GRID_COLS, x, correct, &o), FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "row 1, sample 2") && strstr(fr_last_error(), "nan.png"), "%s",
                  fr_last_error());
    ck_assert_int_eq(fr_test_rmdir_files(dir), 2);
    /* a picture beyond the PNG side limit is refused before anything is drawn */
    ck_assert_int_eq(fr_sample_grid_labelled("/tmp/never.png", t, 1, NULL, 2000, x, NULL, NULL), FR_ERR_ARG);
    free(rgb);
    free(x);
}
END_TEST

START_TEST(test_grid_before_after)
{
    const fr_task *t = &fr_task_shapes;
    /* eval prompts; "before" = blank images (judged incorrect), "after" = the task's own data */
    enum { R = 3, C = 4 };
    int pid[R];
    for (int r = 0; r < R; r++) pid[r] = t->eval_first + 5 * r;
    float *before = malloc(sizeof(float) * R * C * t->D), *after = malloc(sizeof(float) * R * C * t->D);
    for (int i = 0; i < R * C * t->D; i++) before[i] = -1.0f;
    for (int r = 0; r < R; r++) {
        int ids[C];
        for (int q = 0; q < C; q++) ids[q] = pid[r];
        ck_assert_int_eq(fr_task_sample_batch(t, C, ids, 7u, 0u, after + (size_t)r * C * t->D), FR_OK);
    }
    int cb[R * C], ca[R * C], ok = 0;
    ck_assert_int_eq(fr_sample_grid_judge(t, 0, R, pid, C, before, cb), FR_OK);
    ck_assert_int_eq(fr_sample_grid_judge(t, 0, R, pid, C, after, ca), FR_OK);
    for (int i = 0; i < R * C; i++) {
        ck_assert_int_eq(cb[i], 0);
        ok += ca[i] == 1;
    }
    ck_assert_msg(ok >= R * C - 1, "the task's own data: %d/%d judged correct", ok, R * C);

    char *dir = make_tmpdir(), path[256];
    snprintf(path, sizeof path, "%s/before_after.png", dir);
    const char *titles[2] = {"before", "after"};
    const float *xs[2] = {before, after};
    fr_sample_grid_opts o = {2, 1, 0, 0};
    ck_assert_msg(fr_sample_grid_prompts(path, t, 0, R, pid, C, 2, titles, xs, &o) == FR_OK, "%s", fr_last_error());
    int h, w;
    uint8_t *png = read_png(path, &h, &w);
    /* label 140, panel 4·(32 + 6) + 8 + 3·6 = 178, gap 16; title row 8 + 6, rows 38 */
    ck_assert_int_eq(w, 8 + 140 + 2 * 178 + 16 + 8);
    ck_assert_int_eq(h, 8 + 14 + R * 38 + 16 + 8);
    const int y0 = 8 + 14, xa = 8 + 140, xb = xa + 178 + 16;
    ck_assert(px_is(png, w, y0, xa, 214, 39, 40));      /* before (0, 0): incorrect */
    ck_assert(px_is(png, w, y0, xb, ca[0] ? 44 : 214, ca[0] ? 160 : 39, ca[0] ? 44 : 40));
    ck_assert(ink(png, w, xa, 8, xa + 178, 15) > 20);  /* "BEFORE: 0/12 CORRECT" */
    ck_assert(ink(png, w, xb, 8, xb + 178, 15) > 20);
    ck_assert(ink(png, w, 8, y0, 140, y0 + R * 38) > 3 * 30); /* three prompt labels */
    free(png);
    ck_assert_int_eq(fr_test_rmdir_files(dir), 1);
    free(before);
    free(after);
}
END_TEST

START_TEST(test_grid_scatter)
{
    const fr_task *t = &fr_task_gmm2d;
    /* row 0: a correct point at (-3, -3); row 1: an incorrect one at (3, 1.2) */
    const float xy[2 * 2] = {-3.0f, -3.0f, 3.0f, 1.2f};
    const int correct[2] = {1, 0};
    const char *labels[2] = {"mode 0", "mode 1"};
    fr_sample_grid_opts o = {0, 1, 0, 100};
    uint8_t *rgb;
    int h, w;
    ck_assert_msg(fr_sample_grid_render(t, 2, labels, 1, 1, &(fr_sample_panel){NULL, xy, correct}, &o, &rgb, &h, &w) ==
                      FR_OK,
                  "%s", fr_last_error());
    /* width: the key, 47 characters -> 47·6 - 1 + 16; height 8 + 100 + 16 + 8 */
    ck_assert_int_eq(w, 297);
    ck_assert_int_eq(h, 132);
    const int x0 = 148, y0 = 8; /* pixel (u, v) = ((x + 6)·100/12, (6 - y)·100/12) */
    ck_assert(px_is(rgb, w, y0 + 75, x0 + 25, 31, 119, 180));
    ck_assert(px_is(rgb, w, y0 + 76, x0 + 26, 31, 119, 180)); /* a filled square */
    ck_assert(px_is(rgb, w, y0 + 40, x0 + 75, 255, 127, 14));
    ck_assert(px_is(rgb, w, y0 + 43, x0 + 78, 255, 127, 14)); /* an x: the diagonal ... */
    ck_assert(px_is(rgb, w, y0 + 40, x0 + 78, 255, 255, 255)); /* ... not the row */
    /* legend swatches in the row colours, with text */
    ck_assert(px_is(rgb, w, y0, 8, 31, 119, 180));
    ck_assert(px_is(rgb, w, y0 + 8, 8, 255, 127, 14));
    ck_assert(ink(rgb, w, 8 + 8, y0, 140, y0 + 16) > 20);
    free(rgb);
    /* a task with neither image form nor 2 dims has no picture */
    fr_task odd = fr_task_gmm2d;
    odd.D = 3;
    ck_assert_int_eq(fr_sample_grid_render(&odd, 1, NULL, 1, 1, &(fr_sample_panel){NULL, xy, NULL}, NULL, &rgb, &h, &w),
                     FR_ERR_ARG);
}
END_TEST

/* ---- intervals and the demo table -------------------------------------------------------------- */

START_TEST(test_wilson)
{
    double lo, hi;
    /* Newcombe (1998a), Statistics in Medicine 17:857, Table II: 81/263 -> 0.2553 .. 0.3662 */
    ck_assert_int_eq(fr_proportion_ci95(81, 263, &lo, &hi), FR_OK);
    ck_assert_msg(fabs(lo - 0.2553) < 5e-5 && fabs(hi - 0.3662) < 5e-5, "[%.5f, %.5f]", lo, hi);
    /* the ends are exact and the interval is not zero-width: 0/10 -> 0 .. 0.2775, 10/10 -> 0.7225 .. 1 */
    ck_assert_int_eq(fr_proportion_ci95(0, 10, &lo, &hi), FR_OK);
    ck_assert(lo == 0.0 && fabs(hi - 0.27753) < 5e-5);
    ck_assert_int_eq(fr_proportion_ci95(10, 10, &lo, &hi), FR_OK);
    ck_assert(hi == 1.0 && fabs(lo - 0.72247) < 5e-5);
    /* symmetric about 1/2 */
    double lo2, hi2;
    ck_assert_int_eq(fr_proportion_ci95(3, 17, &lo, &hi), FR_OK);
    ck_assert_int_eq(fr_proportion_ci95(14, 17, &lo2, &hi2), FR_OK);
    ck_assert(fabs(lo + hi2 - 1.0) < 1e-12 && fabs(hi + lo2 - 1.0) < 1e-12);
    ck_assert_int_eq(fr_proportion_ci95(1, 0, &lo, &hi), FR_ERR_ARG);
    ck_assert_int_eq(fr_proportion_ci95(5, 4, &lo, &hi), FR_ERR_ARG);
    ck_assert_int_eq(fr_proportion_ci95(-1, 4, &lo, &hi), FR_ERR_ARG);
    /* Newcombe (1998b), Statistics in Medicine 17:873, example (a): 56/70 - 48/80 = 0.2,
     * method 10 -> 0.0524 .. 0.3339 */
    ck_assert_int_eq(fr_proportion_diff_ci95(48, 80, 56, 70, &lo, &hi), FR_OK);
    ck_assert_msg(fabs(lo - 0.0524) < 5e-5 && fabs(hi - 0.3339) < 5e-5, "[%.5f, %.5f]", lo, hi);
    /* "+12.5 points on 2 prompts x 32 samples" holds 0 */
    ck_assert_int_eq(fr_proportion_diff_ci95(20, 64, 28, 64, &lo, &hi), FR_OK);
    ck_assert(lo < 0.0 && hi > 0.125);
    ck_assert_int_eq(fr_proportion_diff_ci95(1, 2, 1, 0, &lo, &hi), FR_ERR_ARG);
}
END_TEST

/* "p% [lo, hi]" as tools/demo.sh prints an accuracy, from the C interval. */
static void acc_cell(char *buf, size_t n, int64_t k, int64_t m)
{
    double lo, hi;
    ck_assert_int_eq(fr_proportion_ci95(k, m, &lo, &hi), FR_OK);
    snprintf(buf, n, "%.1f%% [%.1f, %.1f]", 100.0 * (double)k / (double)m, 100 * lo, 100 * hi);
}

START_TEST(test_demo_table)
{
    /* make demo's table mode on saved evaluations ("kind prompts samples correct"): every
     * interval it prints equals fr_proportion_ci95 / fr_proportion_diff_ci95's */
    static const struct {
        const char *kind;
        int prompts, n, k_before, k_after;
    } rows[] = {{"single", 2, 64, 20, 28}, {"counting", 3, 96, 0, 96}, {"two", 1, 32, 32, 31},
                {"overall", 6, 192, 52, 155}};
    char *dir = make_tmpdir(), path[256];
    const char *files[4] = {"base.eval", "final.eval", "base.train", "final.train"};
    for (int f = 0; f < 4; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        FILE *fp = fopen(path, "w");
        ck_assert_ptr_nonnull(fp);
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
            fprintf(fp, "%s %d %d %d\n", rows[r].kind, rows[r].prompts, rows[r].n,
                    f % 2 ? rows[r].k_after : rows[r].k_before);
        fclose(fp);
    }
    char cmd[1024], out[16384];
    snprintf(cmd, sizeof cmd, "DEMO_TABLE_FROM=%s bash %s/tools/demo.sh 2>&1", dir, fr_test_src());
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t used = fread(out, 1, sizeof out - 1, p);
    out[used] = '\0';
    ck_assert_msg(pclose(p) == 0, "%s", out);
    ck_assert_msg(strstr(out, "held-out") && strstr(out, "train:") && strstr(out, "Wilson"), "%s", out);
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        char before[64], after[64], change[64], line[256];
        acc_cell(before, sizeof before, rows[r].k_before, rows[r].n);
        acc_cell(after, sizeof after, rows[r].k_after, rows[r].n);
        double lo, hi, d = (double)(rows[r].k_after - rows[r].k_before) / rows[r].n;
        ck_assert_int_eq(fr_proportion_diff_ci95(rows[r].k_before, rows[r].n, rows[r].k_after, rows[r].n, &lo, &hi),
                         FR_OK);
        snprintf(change, sizeof change, "%+.1f [%+.1f, %+.1f]", 100 * d, 100 * lo, 100 * hi);
        snprintf(line, sizeof line, "%-10s %7d %8d | %-22s %-22s %s\n", rows[r].kind, rows[r].prompts, rows[r].n,
                 before, after, change);
        ck_assert_msg(strstr(out, line), "missing line:\n%s\nin:\n%s", line, out);
    }
    ck_assert_int_eq(fr_test_rmdir_files(dir), 4);
}
END_TEST

/* tools/shortcut.py (make demo's mirror-shortcut line) on evaluations built from the real shapes prompts:
 * each held-out position prompt loses points in proportion to its layout's key while the training
 * prompts with the mirror layout (the same two colours on the same axis, swapped; the tool finds them by
 * text, and a missing one fails it) gain as much, so every one counts and r = -1. */
static double layout_key(int id, int mirrored)
{
    fr_shapes_prompt p;
    ck_assert_int_eq(fr_shapes_prompt_get(id, &p), FR_OK);
    if (p.kind != FR_SHAPES_POSITION) return 0.0;
    int first = p.rel == FR_SHAPES_LEFT || p.rel == FR_SHAPES_ABOVE; /* A is left of / above B */
    int lo = first ? p.color_a : p.color_b, hi = first ? p.color_b : p.color_a, axis = p.rel >= FR_SHAPES_ABOVE;
    if (mirrored) {
        int tmp = lo;
        lo = hi;
        hi = tmp;
    }
    return 0.01 * (1 + 4 * lo + hi + 16 * axis);
}

static void write_eval_json(const char *dir, const char *name, int first, int n, double sign)
{
    char path[300], text[FR_PROMPT_TEXT_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"prompts\": [");
    for (int id = first; id < first + n; id++) {
        ck_assert_int_eq(fr_task_shapes.prompt_text(id, text, sizeof text), FR_OK);
        /* held-out prompts lose their layout's key; training prompts gain their mirror layout's */
        double acc = 0.5 + sign * layout_key(id, first == 0);
        fprintf(f, "%s{\"text\": \"%s\", \"accuracy\": %.17g}", id > first ? ", " : "", text, acc);
    }
    fprintf(f, "]}\n");
    fclose(f);
}

START_TEST(test_shortcut_tool)
{
    char *dir = make_tmpdir();
    const fr_task *t = &fr_task_shapes;
    write_eval_json(dir, "base.eval.json", t->eval_first, t->n_eval, 0.0);
    write_eval_json(dir, "final.eval.json", t->eval_first, t->n_eval, -1.0);
    write_eval_json(dir, "base.train.json", 0, t->n_train, 0.0);
    write_eval_json(dir, "final.train.json", 0, t->n_train, 1.0);
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "cd %s && %s %s/tools/shortcut.py base.eval.json base.train.json final.eval.json final.train.json 2>&1",
             dir, fr_test_python(), fr_test_src());
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t used = fread(out, 1, sizeof out - 1, p);
    out[used] = '\0';
    ck_assert_msg(pclose(p) == 0, "%s", out);
    ck_assert_msg(strstr(out, "12 of 12 held-out position prompts lost") && strstr(out, "r = -1.00 (significant"), "%s", out);
    ck_assert_msg(strstr(out, "a red object left of a yellow object"), "%s", out);
    ck_assert_int_eq(fr_test_rmdir_files(dir), 4);
}
END_TEST

Suite *suite_plots(void)
{
    Suite *s = suite_create("plots");
    TCase *tc = tcase_create("plots");
    tcase_add_test(tc, test_nice_axis);
    tcase_add_test(tc, test_curve_fitted_axis);
    tcase_add_test(tc, test_curve_nan_empty_smooth);
    tcase_add_test(tc, test_curve_write_deterministic);
    tcase_add_test(tc, test_font);
    tcase_add_test(tc, test_grid_labelled);
    tcase_add_test(tc, test_grid_before_after);
    tcase_add_test(tc, test_grid_scatter);
    tcase_add_test(tc, test_wilson);
    tcase_add_test(tc, test_demo_table);
    tcase_add_test(tc, test_shortcut_tool);
    suite_add_tcase(s, tc);
    return s;
}
