/* PNG output (libpng): single images, sample grids, 2-D scatter plots (docs/design.md §5:
 * samples/NAME.png). Files are written to a temporary name and renamed, so a reader never
 * sees half a file. Pixels are 8-bit RGB, row-major (H, W, 3). */
#ifndef FLOWRL_PNG_H
#define FLOWRL_PNG_H

#include <stdint.h>

#include "flowrl/status.h"

/* (C, H, W) floats in [-1, 1] -> (H, W, 3) bytes, pixel = round((x + 1) / 2 * 255)
 * clamped to [0, 255]; C = 3 (RGB) or 1 (grey). A non-finite element is FR_ERR_NUMERIC. */
fr_status fr_png_to_rgb(const float *x, // (C, H, W)
                        int C, int H, int W,
                        uint8_t *rgb); // (H, W, 3)

fr_status fr_png_write_rgb(const char *path, const uint8_t *rgb, // (H, W, 3)
                           int H, int W);

/* A grid of N images, ncols per row (0: ceil(sqrt(N))), each upscaled by an integer
 * `scale` (nearest neighbour), with a 1-pixel grey border around and between them:
 *   out_w = ncols * (W * scale + 1) + 1,  out_h = nrows * (H * scale + 1) + 1,
 *   nrows = ceil(N / ncols). Unused cells are grey. */
fr_status fr_png_grid_dims(int N, int H, int W, int ncols, int scale, int *out_h, int *out_w);
fr_status fr_png_grid_render(const float *x, // (N, C, H, W)
                             int N, int C, int H, int W, int ncols, int scale,
                             uint8_t *rgb); // (out_h, out_w, 3)
fr_status fr_png_write_grid(const char *path, const float *x, // (N, C, H, W)
                            int N, int C, int H, int W, int ncols, int scale);

#define FR_PNG_BORDER 128 /* grey level of grid borders */

typedef struct {
    int size;           /* the plot is size x size pixels */
    float extent;       /* it shows [-extent, extent]^2, y up */
    int dot;            /* a point is a (2 dot + 1)^2 square */
    float ring_radius;  /* > 0: draw the circle of this radius around the origin */
    const float *marks; // (n_marks, 2): drawn as crosses (e.g. the gmm2d mode means)
    int n_marks;
} fr_scatter_opts;

/* size 512, extent 6, dot 1, no ring, no marks. */
fr_scatter_opts fr_scatter_opts_default(void);

/* White background, light grey axes, grey ring, then the points in order, then the marks
 * as dark crosses on top.
 * colors NULL: all points blue (31, 119, 180). Points outside the extent are not drawn;
 * a non-finite coordinate is FR_ERR_NUMERIC. */
fr_status fr_png_scatter_render(const float *xy,      // (N, 2)
                                int N,
                                const uint8_t *colors, // (N, 3) or NULL
                                const fr_scatter_opts *opts,
                                uint8_t *rgb); // (size, size, 3)
fr_status fr_png_write_scatter(const char *path, const float *xy, // (N, 2)
                               int N, const uint8_t *colors,     // (N, 3) or NULL
                               const fr_scatter_opts *opts);

#endif
