/* Line and point charts as SVG (a run's curve.svg): any number of series on one pair of
 * axes, the y axis fitted to the data (rewards may be negative or above 1), "nice" ticks
 * (1, 2 or 5 times a power of ten) covering every finite point, a legend, and an optional
 * smoothed line. The output bytes depend only on the input: no timestamps, fixed number
 * formats, written through fr_atomic_write (a reader never sees half a file). */
#ifndef FLOWRL_PLOT_SVG_H
#define FLOWRL_PLOT_SVG_H

#include <stdint.h>

#include "flowrl/status.h"

typedef enum {
    FR_CURVE_LINE = 0,     /* a polyline through the points */
    FR_CURVE_POINTS = 1,   /* a circle at each point, joined by a thin dashed line
                              (held-out evaluations every K epochs) */
    FR_CURVE_SMOOTHED = 2  /* the raw line, faint, under its centred moving average (bold) */
} fr_curve_style;

typedef struct {
    const char *name;    /* legend text; NULL: no legend entry */
    const double *x;     // (n,) ascending; NULL: x = 1, 2, ..., n (epochs)
    const double *y;     // (n,) a non-finite y (or x) is skipped: the line breaks there
    int64_t n;           /* 0 is fine: nothing is drawn */
    fr_curve_style style;
    const char *color;   /* "#rrggbb"; NULL: entry (series index mod 10) of a fixed palette */
    /* FR_CURVE_SMOOTHED: the centred moving average over `window` points (odd; 0: automatic,
     * 2·floor(n/40) + 1, i.e. about 5% of the run). Point i is the mean of the finite y[j],
     * |j - i| <= window/2, j in [0, n): shorter windows at the ends, no lag, no phase shift
     * (an EMA would trail a rising reward by ~1/alpha epochs); missing where y[i] is. */
    int window;
} fr_curve_series;

typedef struct {
    const char *title;    /* NULL: none */
    const char *x_label;  /* NULL: "epoch" */
    const char *y_label;  /* NULL: none */
    int width, height;    /* pixels; 0: 720 x 440 */
    /* The y axis always shows [y_min, y_max] when y_min < y_max (e.g. 0, 1 for accuracies),
     * widened to cover the data; a zero-initialised struct fits the axis to the data alone. */
    double y_min, y_max;
} fr_curve_axes;

/* Writes the chart to path. Text is XML-escaped. FR_ERR_ARG for a NULL y with n > 0, n < 0,
 * a window < 0 or even, or a data range beyond what a double can span. ax may be NULL. */
fr_status fr_curve_svg_write(const char *path, const fr_curve_series *series, int n_series,
                             const fr_curve_axes *ax);

/* The same chart into a malloc'ed NUL-terminated string (*len bytes without the NUL). */
fr_status fr_curve_svg_render(const fr_curve_series *series, int n_series, const fr_curve_axes *ax,
                              char **svg, size_t *len);

/* The axis fitting, exposed for tests: the smallest step in {1, 2, 5}·10^e with
 * (hi - lo) / step <= max_ticks - 1 and the range [floor(lo/step)·step, ceil(hi/step)·step]
 * covering [lo, hi] (lo == hi is first widened to lo ± max(|lo|/10, 0.5)).
 * *decimals is the number of fraction digits that print every tick exactly. */
fr_status fr_plot_nice_axis(double lo, double hi, int max_ticks, double *axis_lo, double *axis_hi,
                            double *step, int *decimals);

#endif
