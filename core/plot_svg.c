/* SVG charts (flowrl/plot_svg.h). Determinism: every number goes through one fixed printf
 * format, powers of ten are built by repeated multiplication (no libm calls whose last bit
 * could differ between C libraries), and nothing reads the clock. */
#include "flowrl/plot_svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/atomic_file.h"

/* matplotlib's tab10, so that colours match the PNG scatter plots (core/png.c) */
static const char *const k_palette[10] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* ---- axes ------------------------------------------------------------------------------ */

fr_status fr_plot_nice_axis(double lo, double hi, int max_ticks, double *axis_lo, double *axis_hi,
                            double *step, int *decimals)
{
    if (!isfinite(lo) || !isfinite(hi) || lo > hi || max_ticks < 2)
        return fr_fail(FR_ERR_ARG, "plot axis: range [%g, %g] with %d ticks, expected finite lo <= hi, >= 2 ticks",
                       lo, hi, max_ticks);
    if (lo == hi) {
        double pad = fabs(lo) / 10.0 > 0.5 ? fabs(lo) / 10.0 : 0.5;
        lo -= pad;
        hi += pad;
    }
    const double raw = (hi - lo) / (double)(max_ticks - 1);
    if (!isfinite(raw) || !(raw > 0.0))
        return fr_fail(FR_ERR_ARG, "plot axis: range [%g, %g] is beyond what a double can span", lo, hi);
    /* p = 10^e <= raw, by repeated multiplication from 1 */
    double p = 1.0;
    int e = 0;
    while (p > raw) p /= 10.0, e--;
    while (p * 10.0 <= raw) p *= 10.0, e++;
    static const double mult[3] = {1.0, 2.0, 5.0};
    for (int i = 0;; i++) {
        double s = mult[i % 3] * p;
        double a = floor(lo / s) * s, b = ceil(hi / s) * s;
        if (isfinite(a) && isfinite(b) && (b - a) / s <= (double)(max_ticks - 1) + 0.5) {
            *axis_lo = a;
            *axis_hi = b;
            *step = s;
            *decimals = e < 0 ? -e : 0;
            return FR_OK;
        }
        if (i % 3 == 2) p *= 10.0, e++;
        if (!isfinite(p)) return fr_fail(FR_ERR_ARG, "plot axis: no step fits [%g, %g]", lo, hi);
    }
}

typedef struct {
    double lo, hi, step;
    int decimals;
} axis;

/* Tick k of the axis, printed with a fixed format (k = 0 is +0, never "-0"). */
static void tick_label(const axis *a, int64_t k, char *buf, size_t cap)
{
    double v = ((double)k * a->step) + 0.0;
    double big = fabs(a->lo) > fabs(a->hi) ? fabs(a->lo) : fabs(a->hi);
    if (big >= 1e6 || a->decimals > 6)
        snprintf(buf, cap, "%.6g", v);
    else
        snprintf(buf, cap, "%.*f", a->decimals, v);
}

/* ---- data ------------------------------------------------------------------------------ */

static double xval(const fr_curve_series *s, int64_t i) { return s->x ? s->x[i] : (double)(i + 1); }

static int series_window(const fr_curve_series *s)
{
    return s->window > 0 ? s->window : (int)(2 * (s->n / 40) + 1);
}

/* Centred moving average of the finite y (flowrl/plot_svg.h); NaN where a window has none. */
static fr_status smooth(const fr_curve_series *s, double *out)
{
    const int64_t n = s->n, h = series_window(s) / 2;
    double *sum = fr_malloc((size_t)(n + 1) * sizeof *sum);
    int64_t *cnt = fr_malloc((size_t)(n + 1) * sizeof *cnt);
    if (!sum || !cnt) {
        free(sum);
        free(cnt);
        return FR_ERR_NOMEM;
    }
    /* prefix sums over points with finite x and y */
    sum[0] = 0.0;
    cnt[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        int ok = isfinite(s->y[i]) && isfinite(xval(s, i));
        sum[i + 1] = sum[i] + (ok ? s->y[i] : 0.0);
        cnt[i + 1] = cnt[i] + ok;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t a = i - h < 0 ? 0 : i - h, b = i + h + 1 > n ? n : i + h + 1;
        int64_t c = cnt[b] - cnt[a];
        out[i] = c > 0 && isfinite(s->y[i]) ? (sum[b] - sum[a]) / (double)c : NAN;
    }
    free(sum);
    free(cnt);
    return FR_OK;
}

static fr_status check_series(const fr_curve_series *s, int k)
{
    if (s->n < 0 || (s->n > 0 && !s->y))
        return fr_fail(FR_ERR_ARG, "curve series %d: n = %lld with y %s, expected n >= 0 and y given", k,
                       (long long)s->n, s->y ? "set" : "NULL");
    if (s->style == FR_CURVE_SMOOTHED && (s->window < 0 || (s->window > 0 && s->window % 2 == 0)))
        return fr_fail(FR_ERR_ARG, "curve series %d: smoothing window %d, expected 0 or odd", k, s->window);
    if (s->style != FR_CURVE_LINE && s->style != FR_CURVE_POINTS && s->style != FR_CURVE_SMOOTHED)
        return fr_fail(FR_ERR_ARG, "curve series %d: style %d is not an fr_curve_style", k, (int)s->style);
    return FR_OK;
}

/* ---- drawing --------------------------------------------------------------------------- */

typedef struct {
    double x0, y0, w, h; /* plot area, pixels */
    axis ax, ay;
} frame;

static double px(const frame *f, double x) { return f->x0 + f->w * (x - f->ax.lo) / (f->ax.hi - f->ax.lo); }
static double py(const frame *f, double y) { return f->y0 + f->h * (1.0 - (y - f->ay.lo) / (f->ay.hi - f->ay.lo)); }

static void put_escaped(FILE *o, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        default: fputc(*s, o);
        }
    }
}

/* A path through the finite points of y, broken where a point is missing; a point with no
 * finite neighbour becomes a zero-length segment (a dot, by the round line cap). */
static void put_path(FILE *o, const frame *f, const fr_curve_series *s, const double *y, const char *color,
                     double width, const char *extra)
{
    fprintf(o, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-linecap=\"round\" "
               "stroke-linejoin=\"round\"%s d=\"", color, width, extra);
    int prev = 0;
    for (int64_t i = 0; i < s->n; i++) {
        int ok = isfinite(y[i]) && isfinite(xval(s, i));
        if (ok) {
            int next = i + 1 < s->n && isfinite(y[i + 1]) && isfinite(xval(s, i + 1));
            fprintf(o, "%s%.2f,%.2f", prev ? " L" : " M", px(f, xval(s, i)), py(f, y[i]));
            if (!prev && !next) fputs(" l0,0", o);
        }
        prev = ok;
    }
    fputs("\"/>\n", o);
}

static fr_status draw_series(FILE *o, const frame *f, const fr_curve_series *s, const char *color)
{
    if (s->n == 0) return FR_OK;
    if (s->style == FR_CURVE_LINE) {
        put_path(o, f, s, s->y, color, 2.0, "");
    } else if (s->style == FR_CURVE_POINTS) {
        put_path(o, f, s, s->y, color, 1.0, " stroke-dasharray=\"4 3\"");
        for (int64_t i = 0; i < s->n; i++)
            if (isfinite(s->y[i]) && isfinite(xval(s, i)))
                fprintf(o, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\" fill=\"%s\" stroke=\"white\"/>\n",
                        px(f, xval(s, i)), py(f, s->y[i]), color);
    } else {
        double *sm = fr_malloc((size_t)s->n * sizeof *sm);
        if (!sm) return FR_ERR_NOMEM;
        fr_status st = smooth(s, sm);
        if (st == FR_OK) {
            put_path(o, f, s, s->y, color, 1.0, " stroke-opacity=\"0.3\"");
            put_path(o, f, s, sm, color, 2.5, "");
        }
        free(sm);
        return st;
    }
    return FR_OK;
}

/* Data ranges over every finite point (x and y both finite). */
static void data_range(const fr_curve_series *series, int n_series, double *xlo, double *xhi, double *ylo,
                       double *yhi, int *x_integer)
{
    *xlo = *ylo = INFINITY;
    *xhi = *yhi = -INFINITY;
    *x_integer = 1;
    for (int k = 0; k < n_series; k++)
        for (int64_t i = 0; i < series[k].n; i++) {
            double x = xval(&series[k], i), y = series[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            *xlo = fmin(*xlo, x);
            *xhi = fmax(*xhi, x);
            *ylo = fmin(*ylo, y);
            *yhi = fmax(*yhi, y);
            *x_integer &= x == floor(x);
        }
}

static fr_status fit_axes(const fr_curve_series *series, int n_series, const fr_curve_axes *ax, frame *f)
{
    double xlo, xhi, ylo, yhi;
    int xint;
    data_range(series, n_series, &xlo, &xhi, &ylo, &yhi, &xint);
    if (xlo > xhi) xlo = 0.0, xhi = 1.0, ylo = 0.0, yhi = 1.0; /* no finite point at all */
    if (ax->y_min < ax->y_max) ylo = fmin(ylo, ax->y_min), yhi = fmax(yhi, ax->y_max);
    FR_TRY(fr_plot_nice_axis(xlo, xhi, 9, &f->ax.lo, &f->ax.hi, &f->ax.step, &f->ax.decimals));
    FR_TRY(fr_plot_nice_axis(ylo, yhi, 7, &f->ay.lo, &f->ay.hi, &f->ay.step, &f->ay.decimals));
    if (xint && f->ax.step < 1.0) { /* epochs: no tick at 2.5 */
        f->ax.step = 1.0;
        f->ax.decimals = 0;
        f->ax.lo = floor(f->ax.lo);
        f->ax.hi = ceil(f->ax.hi);
        if (f->ax.hi == f->ax.lo) f->ax.hi += 1.0;
    }
    return FR_OK;
}

static void draw_axes(FILE *o, const frame *f)
{
    char lab[64];
    int64_t k0 = (int64_t)llround(f->ay.lo / f->ay.step), k1 = (int64_t)llround(f->ay.hi / f->ay.step);
    for (int64_t k = k0; k <= k1; k++) {
        double y = py(f, (double)k * f->ay.step);
        tick_label(&f->ay, k, lab, sizeof lab);
        fprintf(o, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\"/>"
                   "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
                f->x0 - 4, y, f->x0 + f->w, y, k == 0 && k0 < 0 ? "#999" : "#e4e4e4", f->x0 - 7, y + 4, lab);
    }
    k0 = (int64_t)llround(f->ax.lo / f->ax.step);
    k1 = (int64_t)llround(f->ax.hi / f->ax.step);
    for (int64_t k = k0; k <= k1; k++) {
        double x = px(f, (double)k * f->ax.step);
        tick_label(&f->ax, k, lab, sizeof lab);
        fprintf(o, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#e4e4e4\"/>"
                   "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333\"/>"
                   "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n",
                x, f->y0, x, f->y0 + f->h, x, f->y0 + f->h, x, f->y0 + f->h + 4, x, f->y0 + f->h + 17, lab);
    }
    fprintf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#333\"/>\n", f->x0,
            f->y0, f->w, f->h);
}

#define LEGEND_LINE 16.0 /* pixels between legend rows */

/* The legend, one entry per named series, left to right, wrapping before the right edge of
 * the plot; o NULL only measures. Returns the number of rows. */
static int legend(FILE *o, const frame *f, const fr_curve_series *series, int n_series, double W)
{
    double lx = f->x0, ly = 38;
    int rows = 1;
    for (int k = 0; k < n_series; k++) {
        const fr_curve_series *s = &series[k];
        if (!s->name) continue;
        char note[48] = "";
        if (s->style == FR_CURVE_SMOOTHED) snprintf(note, sizeof note, " (centred mean of %d)", series_window(s));
        /* about 7 px per character at font-size 12 */
        double ew = 24 + 7.0 * (double)(strlen(s->name) + strlen(note));
        if (lx > f->x0 && lx + ew > W - 8) lx = f->x0, ly += LEGEND_LINE, rows++;
        if (o) {
            fprintf(o, "<g fill=\"%s\">", s->color ? s->color : k_palette[k % 10]);
            if (s->style == FR_CURVE_POINTS)
                fprintf(o, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\"/>", lx + 9, ly - 4);
            else
                fprintf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"18\" height=\"3\"/>", lx, ly - 6);
            fprintf(o, "<text x=\"%.2f\" y=\"%.2f\">", lx + 24, ly);
            put_escaped(o, s->name);
            fprintf(o, "%s</text></g>\n", note);
        }
        lx += ew + 16;
    }
    return rows;
}

static void draw_text(FILE *o, const frame *f, const fr_curve_series *series, int n_series,
                      const fr_curve_axes *ax, double W, double H)
{
    if (ax->title) {
        fprintf(o, "<text x=\"%.2f\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", f->x0);
        put_escaped(o, ax->title);
        fputs("</text>\n", o);
    }
    fprintf(o, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", f->x0 + f->w / 2, H - 10);
    put_escaped(o, ax->x_label ? ax->x_label : "epoch");
    fputs("</text>\n", o);
    if (ax->y_label) {
        fprintf(o, "<text transform=\"translate(16 %.2f) rotate(-90)\" text-anchor=\"middle\">", f->y0 + f->h / 2);
        put_escaped(o, ax->y_label);
        fputs("</text>\n", o);
    }
    legend(o, f, series, n_series, W);
}

fr_status fr_curve_svg_render(const fr_curve_series *series, int n_series, const fr_curve_axes *ax_in,
                              char **svg, size_t *len)
{
    static const fr_curve_axes k_default;
    const fr_curve_axes *ax = ax_in ? ax_in : &k_default;
    *svg = NULL;
    *len = 0;
    if (n_series < 0 || (n_series > 0 && !series))
        return fr_fail(FR_ERR_ARG, "curve: %d series, expected >= 0", n_series);
    for (int k = 0; k < n_series; k++) FR_TRY(check_series(&series[k], k));
    const double W = ax->width > 0 ? ax->width : 720, H = ax->height > 0 ? ax->height : 440;
    frame f = {.x0 = 72, .y0 = 50, .w = W - 72 - 24, .h = 0};
    f.y0 += LEGEND_LINE * (legend(NULL, &f, series, n_series, W) - 1);
    f.h = H - f.y0 - 52;
    if (f.w < 10 || f.h < 10) return fr_fail(FR_ERR_ARG, "curve: %g x %g pixels is too small", W, H);
    FR_TRY(fit_axes(series, n_series, ax, &f));

    char *buf = NULL;
    size_t n = 0;
    FILE *o = open_memstream(&buf, &n);
    if (!o) return fr_fail(FR_ERR_NOMEM, "curve: open_memstream failed");
    fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    draw_axes(o, &f);
    fr_status s = FR_OK;
    for (int k = 0; k < n_series && s == FR_OK; k++)
        s = draw_series(o, &f, &series[k], series[k].color ? series[k].color : k_palette[k % 10]);
    draw_text(o, &f, series, n_series, ax, W, H);
    fputs("</svg>\n", o);
    int bad = ferror(o);
    if (fclose(o) != 0 || bad) {
        free(buf);
        return s != FR_OK ? s : fr_fail(FR_ERR_NOMEM, "curve: writing the SVG to memory failed");
    }
    if (s != FR_OK) {
        free(buf);
        return s;
    }
    *svg = buf;
    *len = n;
    return FR_OK;
}

fr_status fr_curve_svg_write(const char *path, const fr_curve_series *series, int n_series, const fr_curve_axes *ax)
{
    char *svg;
    size_t len;
    fr_status s = fr_curve_svg_render(series, n_series, ax, &svg, &len);
    if (s != FR_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", fr_last_error());
        return fr_fail(s, "%s: %s", path, why);
    }
    s = fr_atomic_write_bytes(path, svg, len);
    free(svg);
    return s;
}
