/* The sliced Wasserstein-2 distance (flowrl/swd.h). */
#include <math.h>
#include <stdlib.h>

#include "flowrl/philox.h"
#include "flowrl/swd.h"

static int cmp_double(const void *p, const void *q)
{
    double a = *(const double *)p, b = *(const double *)q;
    return (a > b) - (a < b);
}

static void project_sorted(const float *x, int64_t n, int D, const double *theta, double *out)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)x[i * D + d] * theta[d];
        out[i] = s;
    }
    qsort(out, (size_t)n, sizeof *out, cmp_double);
}

fr_status fr_sliced_w2(const float *a, int64_t na, const float *b, int64_t nb, int D, int n_proj, uint32_t seed,
                       double *out)
{
    if (na < 1 || nb < 1 || D < 1 || n_proj < 1)
        return fr_fail(FR_ERR_ARG, "sliced Wasserstein: %lld and %lld points of dimension %d, %d projections: "
                       "each must be >= 1", (long long)na, (long long)nb, D, n_proj);
    for (int64_t i = 0; i < na * D; i++)
        if (!isfinite(a[i])) return fr_fail(FR_ERR_NUMERIC, "sliced Wasserstein: first set, element %lld is %g", (long long)i, (double)a[i]);
    for (int64_t i = 0; i < nb * D; i++)
        if (!isfinite(b[i])) return fr_fail(FR_ERR_NUMERIC, "sliced Wasserstein: second set, element %lld is %g", (long long)i, (double)b[i]);
    double *pa = malloc(sizeof(double) * (size_t)na), *pb = malloc(sizeof(double) * (size_t)nb),
           *theta = malloc(sizeof(double) * (size_t)D);
    if (!pa || !pb || !theta) {
        free(pa), free(pb), free(theta);
        return fr_fail(FR_ERR_NOMEM, "sliced Wasserstein: %lld + %lld points", (long long)na, (long long)nb);
    }
    const int64_t M = na > nb ? na : nb;
    double total = 0;
    for (int p = 0; p < n_proj; p++) {
        double norm = 0;
        for (int d = 0; d < D; d++) {
            theta[d] = fr_rng_normal(seed, FR_RNG_SWD_DIR, (uint32_t)p, 0, 0, (uint32_t)d);
            norm += theta[d] * theta[d];
        }
        norm = sqrt(norm);
        if (norm == 0) norm = 1; /* every lane exactly 0: never seen; keeps the division defined */
        for (int d = 0; d < D; d++) theta[d] /= norm;
        project_sorted(a, na, D, theta, pa);
        project_sorted(b, nb, D, theta, pb);
        double w = 0;
        for (int64_t k = 0; k < M; k++) {
            double u = ((double)k + 0.5) / (double)M;
            double qa = pa[(int64_t)(u * (double)na)], qb = pb[(int64_t)(u * (double)nb)];
            w += (qa - qb) * (qa - qb);
        }
        total += w / (double)M;
    }
    free(pa), free(pb), free(theta);
    *out = sqrt(total / n_proj);
    return FR_OK;
}
