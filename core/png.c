/* PNG output through libpng's simplified API (png_image_write_to_stdio). */
#include "flowrl/png.h"

#include "flowrl/atomic_file.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Keeps sizes far from int overflow (rows * cols * 3) and from absurd allocations. */
#define MAX_SIDE 16384

static fr_status check_dims(const char *what, int H, int W)
{
    if (H < 1 || W < 1 || H > MAX_SIDE || W > MAX_SIDE)
        return fr_fail(FR_ERR_ARG, "%s: image %d x %d, expected sides in [1, %d]", what, H, W,
                       MAX_SIDE);
    return FR_OK;
}

static uint8_t to_byte(float x)
{
    float v = (x + 1.0f) * 127.5f;
    if (v <= 0.0f) return 0;
    if (v >= 255.0f) return 255;
    return (uint8_t)(int)(v + 0.5f);
}

fr_status fr_png_to_rgb(const float *x, int C, int H, int W, uint8_t *rgb)
{
    FR_TRY(check_dims("fr_png_to_rgb", H, W));
    if (C != 1 && C != 3)
        return fr_fail(FR_ERR_ARG, "fr_png_to_rgb: %d channels, expected 1 or 3", C);
    int64_t HW = (int64_t)H * W;
    for (int64_t i = 0; i < C * HW; i++)
        if (!isfinite(x[i]))
            return fr_fail(FR_ERR_NUMERIC, "fr_png_to_rgb: element %lld is %g, expected finite",
                           (long long)i, (double)x[i]);
    for (int64_t p = 0; p < HW; p++)
        for (int ch = 0; ch < 3; ch++) rgb[p * 3 + ch] = to_byte(x[(C == 3 ? ch : 0) * HW + p]);
    return FR_OK;
}

typedef struct {
    const uint8_t *rgb;
    int H, W;
} png_job;

static fr_status write_png(FILE *fp, const char *tmp, void *user)
{
    const png_job *j = user;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)j->W;
    img.height = (png_uint_32)j->H;
    img.format = PNG_FORMAT_RGB;
    fr_status s = FR_OK;
    if (!png_image_write_to_stdio(&img, fp, 0, j->rgb, 3 * j->W, NULL))
        s = fr_fail(FR_ERR_IO, "%s: libpng: %s", tmp, img.message);
    png_image_free(&img);
    return s;
}

fr_status fr_png_write_rgb(const char *path, const uint8_t *rgb, int H, int W)
{
    FR_TRY(check_dims(path, H, W));
    png_job j = {rgb, H, W};
    return fr_atomic_write(path, write_png, &j);
}

/* ---- grids ------------------------------------------------------------------------- */

static int grid_cols(int N, int ncols)
{
    if (ncols > 0) return ncols;
    int c = 1;
    while (c * c < N) c++;
    return c;
}

fr_status fr_png_grid_dims(int N, int H, int W, int ncols, int scale, int *out_h, int *out_w)
{
    if (N < 1 || ncols < 0 || scale < 1 || H < 1 || W < 1)
        return fr_fail(FR_ERR_ARG, "png grid: N = %d, ncols = %d, scale = %d, image %d x %d: "
                                   "expected N >= 1, ncols >= 0, scale >= 1, sides >= 1",
                       N, ncols, scale, H, W);
    int cols = grid_cols(N, ncols), rows = (N + cols - 1) / cols;
    int64_t h = (int64_t)rows * ((int64_t)H * scale + 1) + 1;
    int64_t w = (int64_t)cols * ((int64_t)W * scale + 1) + 1;
    if (h > MAX_SIDE || w > MAX_SIDE)
        return fr_fail(FR_ERR_ARG, "png grid: %lld x %lld pixels, the limit is %d per side",
                       (long long)h, (long long)w, MAX_SIDE);
    *out_h = (int)h;
    *out_w = (int)w;
    return FR_OK;
}

fr_status fr_png_grid_render(const float *x, int N, int C, int H, int W, int ncols, int scale,
                             uint8_t *rgb)
{
    int oh, ow;
    FR_TRY(fr_png_grid_dims(N, H, W, ncols, scale, &oh, &ow));
    int cols = grid_cols(N, ncols);
    memset(rgb, FR_PNG_BORDER, (size_t)oh * ow * 3);
    uint8_t *tile = fr_malloc((size_t)H * W * 3);
    if (!tile) return FR_ERR_NOMEM;
    fr_status s = FR_OK;
    for (int n = 0; n < N && s == FR_OK; n++) {
        s = fr_png_to_rgb(x + (size_t)n * C * H * W, C, H, W, tile);
        if (s != FR_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", fr_last_error());
            s = fr_fail(s, "png grid: image %d: %s", n, why);
            break;
        }
        int y0 = (n / cols) * (H * scale + 1) + 1, x0 = (n % cols) * (W * scale + 1) + 1;
        for (int y = 0; y < H * scale; y++)
            for (int xx = 0; xx < W * scale; xx++)
                memcpy(&rgb[((size_t)(y0 + y) * ow + x0 + xx) * 3],
                       &tile[((size_t)(y / scale) * W + xx / scale) * 3], 3);
    }
    free(tile);
    return s;
}

fr_status fr_png_write_grid(const char *path, const float *x, int N, int C, int H, int W,
                            int ncols, int scale)
{
    int oh, ow;
    FR_TRY(fr_png_grid_dims(N, H, W, ncols, scale, &oh, &ow));
    uint8_t *rgb = fr_malloc((size_t)oh * ow * 3);
    if (!rgb) return FR_ERR_NOMEM;
    fr_status s = fr_png_grid_render(x, N, C, H, W, ncols, scale, rgb);
    if (s == FR_OK) s = fr_png_write_rgb(path, rgb, oh, ow);
    free(rgb);
    return s;
}

/* ---- scatter plots ----------------------------------------------------------------- */

fr_scatter_opts fr_scatter_opts_default(void)
{
    fr_scatter_opts o = {512, 6.0f, 1, 0.0f, NULL, 0};
    return o;
}

static void put(uint8_t *rgb, int size, int row, int col, const uint8_t c[3])
{
    if (row < 0 || col < 0 || row >= size || col >= size) return;
    memcpy(&rgb[((size_t)row * size + col) * 3], c, 3);
}

/* Pixel (row, col) holding data point (x, y); y points up. Returns 0 outside the view. */
static int to_pixel(const fr_scatter_opts *o, float x, float y, int *row, int *col)
{
    float span = 2.0f * o->extent, S = (float)o->size;
    float u = (x + o->extent) * S / span, v = (o->extent - y) * S / span;
    if (!(u >= 0.0f && u < S && v >= 0.0f && v < S)) return 0;
    *col = (int)u;
    *row = (int)v;
    if (*col >= o->size) *col = o->size - 1;
    if (*row >= o->size) *row = o->size - 1;
    return 1;
}

fr_status fr_png_scatter_render(const float *xy, int N, const uint8_t *colors,
                                const fr_scatter_opts *o, uint8_t *rgb)
{
    FR_TRY(check_dims("png scatter", o->size, o->size));
    if (!(o->extent > 0.0f) || o->dot < 0 || N < 0 || o->n_marks < 0)
        return fr_fail(FR_ERR_ARG, "png scatter: extent %g, dot %d, N %d, n_marks %d: expected "
                                   "extent > 0 and the others >= 0",
                       (double)o->extent, o->dot, N, o->n_marks);
    for (int i = 0; i < 2 * N; i++)
        if (!isfinite(xy[i]))
            return fr_fail(FR_ERR_NUMERIC, "png scatter: point %d coordinate %d is %g, expected "
                                           "finite", i / 2, i % 2, (double)xy[i]);
    static const uint8_t axis[3] = {220, 220, 220},
                         ring[3] = {150, 150, 150}, mark[3] = {40, 40, 40},
                         blue[3] = {31, 119, 180};
    int S = o->size;
    memset(rgb, 255, (size_t)S * S * 3);
    float px_per_unit = (float)S / (2.0f * o->extent);
    int r0, c0;
    if (to_pixel(o, 0.0f, 0.0f, &r0, &c0))
        for (int i = 0; i < S; i++) {
            put(rgb, S, r0, i, axis);
            put(rgb, S, i, c0, axis);
        }
    if (o->ring_radius > 0.0f) {
        /* pixels whose centre lies within half a pixel of the circle */
        float r = o->ring_radius * px_per_unit, c = 0.5f * (float)S;
        float lo = r - 0.5f, hi = r + 0.5f;
        for (int row = 0; row < S; row++)
            for (int col = 0; col < S; col++) {
                float dx = (float)col + 0.5f - c, dy = (float)row + 0.5f - c;
                float d2 = dx * dx + dy * dy;
                if (d2 >= lo * lo && d2 <= hi * hi) put(rgb, S, row, col, ring);
            }
    }
    for (int i = 0; i < N; i++) {
        int row, col;
        if (!to_pixel(o, xy[2 * i], xy[2 * i + 1], &row, &col)) continue;
        const uint8_t *c = colors ? &colors[3 * i] : blue;
        for (int dy = -o->dot; dy <= o->dot; dy++)
            for (int dx = -o->dot; dx <= o->dot; dx++) put(rgb, S, row + dy, col + dx, c);
    }
    for (int m = 0; m < o->n_marks; m++) {
        int row, col;
        if (!to_pixel(o, o->marks[2 * m], o->marks[2 * m + 1], &row, &col)) continue;
        for (int k = -4; k <= 4; k++) {
            put(rgb, S, row + k, col, mark);
            put(rgb, S, row, col + k, mark);
        }
    }
    return FR_OK;
}

fr_status fr_png_write_scatter(const char *path, const float *xy, int N, const uint8_t *colors,
                               const fr_scatter_opts *o)
{
    FR_TRY(check_dims(path, o->size, o->size));
    uint8_t *rgb = fr_malloc((size_t)o->size * o->size * 3);
    if (!rgb) return FR_ERR_NOMEM;
    fr_status s = fr_png_scatter_render(xy, N, colors, o, rgb);
    if (s == FR_OK) s = fr_png_write_rgb(path, rgb, o->size, o->size);
    free(rgb);
    return s;
}
