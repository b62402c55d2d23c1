/* plot_curves: curves from text files into one SVG through the project's chart writer
 * (flowrl/plot_svg.h), for the demos' plots (tools/demo_gfn.sh).
 *
 *     build/plot_curves OUT.svg TITLE X_LABEL Y_LABEL NAME FILE [NAME FILE ...]
 *
 * Each FILE holds one "x y" pair a line (ascending x); each becomes a line series NAME. Exit 1
 * with one line naming the file for an unreadable or malformed one. */
#include <stdio.h>
#include <stdlib.h>

#include "flowrl/plot_svg.h"

#define MAX_SERIES 16

int main(int argc, char **argv)
{
    if (argc < 7 || (argc - 5) % 2 != 0 || (argc - 5) / 2 > MAX_SERIES) {
        fprintf(stderr, "usage: plot_curves OUT.svg TITLE X_LABEL Y_LABEL NAME FILE [NAME FILE ...] (at most %d)\n", MAX_SERIES);
        return 2;
    }
    const int ns = (argc - 5) / 2;
    fr_curve_series sr[MAX_SERIES];
    double *xs[MAX_SERIES] = {0}, *ys[MAX_SERIES] = {0};
    int rc = 0;
    for (int i = 0; i < ns && rc == 0; i++) {
        const char *path = argv[6 + 2 * i];
        FILE *f = fopen(path, "r");
        if (!f) {
            fprintf(stderr, "plot_curves: %s: cannot open\n", path);
            rc = 1;
            break;
        }
        int64_t n = 0, cap = 0;
        double x, y;
        int got;
        while ((got = fscanf(f, "%lf %lf", &x, &y)) == 2) {
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                double *nx = realloc(xs[i], (size_t)cap * sizeof *nx), *ny = nx ? realloc(ys[i], (size_t)cap * sizeof *ny) : NULL;
                if (nx) xs[i] = nx;
                if (!nx || !ny) {
                    fprintf(stderr, "plot_curves: out of memory\n");
                    rc = 1;
                    break;
                }
                ys[i] = ny;
            }
            xs[i][n] = x;
            ys[i][n] = y;
            n++;
        }
        if (rc == 0 && got != EOF) {
            fprintf(stderr, "plot_curves: %s: line %lld is not \"x y\"\n", path, (long long)n + 1);
            rc = 1;
        }
        fclose(f);
        sr[i] = (fr_curve_series){argv[5 + 2 * i], xs[i], ys[i], n, FR_CURVE_LINE, NULL, 0};
    }
    if (rc == 0) {
        fr_curve_axes ax = {argv[2], argv[3], argv[4], 0, 0, 0.0, 0.0};
        if (fr_curve_svg_write(argv[1], sr, ns, &ax) != FR_OK) {
            fprintf(stderr, "plot_curves: %s\n", fr_last_error());
            rc = 1;
        }
    }
    for (int i = 0; i < ns; i++) {
        free(xs[i]);
        free(ys[i]);
    }
    return rc;
}
