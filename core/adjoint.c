/* Euler backprop and the torchdiffeq-style Euler adjoint of a small ODE (flowrl/adjoint.h). */
#include "flowrl/adjoint.h"

#include <stdlib.h>
#include <string.h>

#include "flowrl/status.h"

static fr_status check(const fr_ode *o, int64_t N, const double *t)
{
    if (!o || !o->f || !o->vjp || o->n < 1 || o->np < 0 || N < 1 || !t)
        return fr_fail(FR_ERR_ARG, "ode: bad arguments (n %d, np %d, N %lld)", o ? o->n : 0, o ? o->np : 0,
                       (long long)N);
    return FR_OK;
}

fr_status fr_ode_euler(const fr_ode *o, int64_t N, const double *t, const double *theta, double *z)
{
    FR_TRY(check(o, N, t));
    double *dz = fr_malloc((size_t)o->n * sizeof *dz);
    if (!dz) return FR_ERR_NOMEM;
    for (int64_t k = 0; k < N; k++) {
        o->f(z, t[k], theta, dz, o->user);
        for (int j = 0; j < o->n; j++) z[j] += (t[k + 1] - t[k]) * dz[j];
    }
    free(dz);
    return FR_OK;
}

fr_status fr_ode_euler_backprop(const fr_ode *o, int64_t N, const double *t, const double *theta, const double *z0,
                                const double *dl_dzN, double *z_N, double *g_theta, double *g_z0)
{
    FR_TRY(check(o, N, t));
    const int n = o->n, np = o->np;
    double *zs = fr_malloc((size_t)(N + 1) * (size_t)n * sizeof *zs);
    double *a = fr_malloc((size_t)n * sizeof *a), *az = fr_malloc((size_t)n * sizeof *az);
    double *ath = fr_malloc((size_t)(np ? np : 1) * sizeof *ath), *g = fr_calloc((size_t)(np ? np : 1), sizeof *g);
    fr_status s = zs && a && az && ath && g ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) {
        memcpy(zs, z0, (size_t)n * sizeof *zs);
        for (int64_t k = 0; k < N; k++) {
            memcpy(zs + (k + 1) * n, zs + k * n, (size_t)n * sizeof *zs);
            if ((s = fr_ode_euler(o, 1, t + k, theta, zs + (k + 1) * n)) != FR_OK) break;
        }
    }
    if (s == FR_OK) {
        memcpy(a, dl_dzN, (size_t)n * sizeof *a);
        for (int64_t k = N - 1; k >= 0; k--) {
            const double h = t[k + 1] - t[k];
            o->vjp(zs + k * n, t[k], theta, a, az, ath, o->user);
            for (int j = 0; j < np; j++) g[j] += h * ath[j];
            for (int j = 0; j < n; j++) a[j] += h * az[j];
        }
        if (z_N) memcpy(z_N, zs + N * n, (size_t)n * sizeof *z_N);
        if (g_theta) memcpy(g_theta, g, (size_t)np * sizeof *g);
        if (g_z0) memcpy(g_z0, a, (size_t)n * sizeof *a);
    }
    free(zs);
    free(a);
    free(az);
    free(ath);
    free(g);
    return s;
}

fr_status fr_ode_euler_adjoint(const fr_ode *o, int64_t N, const double *t, const double *theta, const double *z_N,
                               const double *dl_dzN, double *g_theta, double *g_z0, double *z_0)
{
    FR_TRY(check(o, N, t));
    const int n = o->n, np = o->np;
    double *z = fr_malloc((size_t)n * sizeof *z), *dz = fr_malloc((size_t)n * sizeof *dz);
    double *a = fr_malloc((size_t)n * sizeof *a), *az = fr_malloc((size_t)n * sizeof *az);
    double *ath = fr_malloc((size_t)(np ? np : 1) * sizeof *ath), *g = fr_calloc((size_t)(np ? np : 1), sizeof *g);
    fr_status s = z && dz && a && az && ath && g ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) {
        memcpy(z, z_N, (size_t)n * sizeof *z);
        memcpy(a, dl_dzN, (size_t)n * sizeof *a);
        for (int64_t k = N - 1; k >= 0; k--) {
            const double h = t[k + 1] - t[k]; /* the backward step goes from t_{k+1} by −h */
            o->f(z, t[k + 1], theta, dz, o->user);
            o->vjp(z, t[k + 1], theta, a, az, ath, o->user);
            for (int j = 0; j < n; j++) z[j] -= h * dz[j];
            for (int j = 0; j < np; j++) g[j] += h * ath[j];
            for (int j = 0; j < n; j++) a[j] += h * az[j];
        }
        if (g_theta) memcpy(g_theta, g, (size_t)np * sizeof *g);
        if (g_z0) memcpy(g_z0, a, (size_t)n * sizeof *a);
        if (z_0) memcpy(z_0, z, (size_t)n * sizeof *z);
    }
    free(z);
    free(dz);
    free(a);
    free(az);
    free(ath);
    free(g);
    return s;
}
