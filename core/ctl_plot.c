/* The nav2d trajectory picture (flowrl/env_ctl.h): episodes of a demonstrations set drawn over
 * the arena and its goals, for `flowrl expert --plot` and a policy's evaluation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/env_ctl.h"
#include "flowrl/font5x7.h"
#include "flowrl/png.h"

#define EXTENT 1.1 /* the picture shows [-EXTENT, EXTENT]^2 below the title band */
#define TITLE_SCALE 2
#define TITLE_H (FR_FONT_LINE * TITLE_SCALE + 8)

typedef struct {
    uint8_t *rgb;
    int H, W, size; /* image H x W; the plot is size x size below the title */
} canvas;

static void to_px(const canvas *c, double x, double y, double *px, double *py)
{
    *px = (x + EXTENT) / (2.0 * EXTENT) * (c->size - 1);
    *py = TITLE_H + (EXTENT - y) / (2.0 * EXTENT) * (c->size - 1);
}

/* Blends color into pixel (x, y) with weight a (0..1). */
static void blend(canvas *c, int x, int y, const uint8_t *col, double a)
{
    if (x < 0 || y < 0 || x >= c->W || y >= c->H) return;
    uint8_t *p = c->rgb + ((size_t)y * c->W + x) * 3;
    for (int k = 0; k < 3; k++) p[k] = (uint8_t)lround((1.0 - a) * p[k] + a * col[k]);
}

/* A segment from world (x0, y0) to (x1, y1), sampled every half pixel. */
static void line(canvas *c, double x0, double y0, double x1, double y1, const uint8_t *col, double a)
{
    double ax, ay, bx, by;
    to_px(c, x0, y0, &ax, &ay);
    to_px(c, x1, y1, &bx, &by);
    const double len = fmax(fabs(bx - ax), fabs(by - ay));
    const int n = (int)ceil(2.0 * len) + 1;
    int lx = -1, ly = -1;
    for (int i = 0; i <= n; i++) {
        const int x = (int)lround(ax + (bx - ax) * i / n), y = (int)lround(ay + (by - ay) * i / n);
        if (x == lx && y == ly) continue; /* each pixel once per segment */
        blend(c, x, y, col, a);
        lx = x;
        ly = y;
    }
}

/* A disc of world radius r (fill, alpha a) and its outline. */
static void disc(canvas *c, double cx, double cy, double r, const uint8_t *fill, double a, const uint8_t *edge)
{
    double px, py;
    to_px(c, cx, cy, &px, &py);
    const double pr = r / (2.0 * EXTENT) * (c->size - 1);
    for (int y = (int)floor(py - pr - 1); y <= (int)ceil(py + pr + 1); y++)
        for (int x = (int)floor(px - pr - 1); x <= (int)ceil(px + pr + 1); x++) {
            const double d = hypot(x - px, y - py);
            if (d <= pr - 0.5) blend(c, x, y, fill, a);
            else if (edge && d <= pr + 0.5) blend(c, x, y, edge, 1.0);
        }
}

fr_status fr_ctl_plot_nav2d(const char *path, const fr_nav2d_opts *o, const fr_demos *d, int size, const char *title)
{
    if (size < 64 || size > 8192) return fr_fail(FR_ERR_ARG, "plot %s: size %d, expected 64..8192", path, size);
    if (d->obs_dim != 4) return fr_fail(FR_ERR_ARG, "plot %s: obs_dim %d, expected nav2d's 4", path, d->obs_dim);
    canvas c = {NULL, size + TITLE_H, size, size};
    c.rgb = fr_malloc((size_t)c.H * c.W * 3);
    if (!c.rgb) return FR_ERR_NOMEM;
    memset(c.rgb, 255, (size_t)c.H * c.W * 3);
    static const uint8_t grey[3] = {150, 150, 150}, goal[3] = {120, 170, 230}, goal_edge[3] = {40, 90, 170},
                         ok[3] = {20, 140, 60}, bad[3] = {210, 40, 40}, ink[3] = {0, 0, 0};
    /* the arena's walls */
    const double w[5][2] = {{-1, -1}, {1, -1}, {1, 1}, {-1, 1}, {-1, -1}};
    for (int i = 0; i < 4; i++) line(&c, w[i][0], w[i][1], w[i + 1][0], w[i + 1][1], grey, 1.0);
    for (int k = 0; k < o->goals; k++) {
        double g[2];
        fr_nav2d_goal(o, k, g);
        disc(&c, g[0], g[1], o->success_radius, goal, 0.5, goal_edge);
    }
    /* paths: more episodes, fainter lines */
    const double a = d->E <= 16 ? 0.9 : fmax(0.15, 0.9 * sqrt(16.0 / (double)d->E));
    for (int64_t e = 0; e < d->E; e++) {
        const int win = d->has_success && d->success[e];
        const uint8_t *col = win ? ok : bad;
        const int64_t s0 = d->episode_start[e], s1 = d->episode_start[e + 1];
        for (int64_t i = s0; i < s1; i++) {
            const float *p = d->obs + i * 4, *q = i + 1 < s1 ? d->obs + (i + 1) * 4 : d->final_obs + e * 4;
            line(&c, p[0], p[1], q[0], q[1], col, a);
        }
        disc(&c, d->obs[s0 * 4], d->obs[s0 * 4 + 1], 0.012, ink, 0.8, NULL);
    }
    double ret, sr;
    fr_demos_summary(d, &ret, NULL, NULL, &sr);
    char line_txt[160];
    snprintf(line_txt, sizeof line_txt, "%s  N=%lld SUCCESS %.2f RETURN %.3f", title ? title : "", (long long)d->E, sr,
             ret);
    const int n = (int)strlen(line_txt), scale = fr_font_width(n, TITLE_SCALE) <= c.W - 12 ? TITLE_SCALE : 1;
    fr_font_draw(c.rgb, c.H, c.W, 6, 4, line_txt, n, scale, ink);
    fr_status s = fr_png_write_rgb(path, c.rgb, c.H, c.W);
    free(c.rgb);
    return s;
}
