/* σ grids and DDPM tables (docs/algorithms/samplers.md §1, §6, §7); see include/flowrl/schedule.h. */
#include "flowrl/schedule.h"

#include <math.h>

#include "flowrl/detmath.h"

/* numpy.linspace(start, stop, n)[i] with endpoint: step = (stop − start)/(n − 1),
 * y = i·step + start, y[n−1] = stop. */
static double np_linspace_at(double start, double stop, int64_t n, int64_t i)
{
    if (n == 1) return start;
    if (i == n - 1) return stop;
    double step = (stop - start) / (double)(n - 1);
    return (double)i * step + start;
}

fr_status fr_sigmas_diffusers(int64_t T, double shift, float *sigmas)
{
    if (!sigmas) return fr_fail(FR_ERR_ARG, "fr_sigmas_diffusers: sigmas is NULL");
    if (T < 1) return fr_fail(FR_ERR_ARG, "fr_sigmas_diffusers: steps %lld, expected >= 1", (long long)T);
    if (!(shift > 0.0 && shift < 1e30))
        return fr_fail(FR_ERR_ARG, "fr_sigmas_diffusers: shift %g, expected a positive number", shift);
    /* __init__: float32 torch ops; python scalars are cast to float32 first. */
    const float Sf = (float)shift, Sm1f = (float)(shift - 1.0);
    const float n_train = (float)FR_NUM_TRAIN_TIMESTEPS;
    const float s1 = 1.0f / n_train; /* timesteps[-1] = 1 over 1000 */
    const float sigma_min = (Sf * s1) / (1.0f + Sm1f * s1);
    const float sigma_max = (Sf * 1.0f) / (1.0f + Sm1f * 1.0f);
    /* set_timesteps: float64 numpy; sigma_min/max are .item() (float32 -> double). */
    const double t0 = (double)sigma_max * FR_NUM_TRAIN_TIMESTEPS;
    const double t1 = (double)sigma_min * FR_NUM_TRAIN_TIMESTEPS;
    for (int64_t i = 0; i < T; i++) {
        double u = np_linspace_at(t0, t1, T, i) / FR_NUM_TRAIN_TIMESTEPS;
        sigmas[i] = (float)fr_shift_d(u, shift);
    }
    sigmas[T] = 0.0f;
    return FR_OK;
}

fr_status fr_sigmas_shifted_linspace(double u_start, double u_end, int64_t n, double shift, float *sigmas)
{
    if (!sigmas) return fr_fail(FR_ERR_ARG, "fr_sigmas_shifted_linspace: sigmas is NULL");
    if (n < 1) return fr_fail(FR_ERR_ARG, "fr_sigmas_shifted_linspace: n %lld, expected >= 1", (long long)n);
    if (!(shift > 0.0 && shift < 1e30))
        return fr_fail(FR_ERR_ARG, "fr_sigmas_shifted_linspace: shift %g, expected a positive number", shift);
    if (!(u_start >= 0.0 && u_start <= 1.0 && u_end >= 0.0 && u_end <= 1.0))
        return fr_fail(FR_ERR_ARG, "fr_sigmas_shifted_linspace: u range [%g, %g] outside [0, 1]",
                       u_start, u_end);
    for (int64_t i = 0; i < n; i++) sigmas[i] = (float)fr_shift_d(np_linspace_at(u_start, u_end, n, i), shift);
    return FR_OK;
}

fr_status fr_sigmas_linspace(int64_t T, double shift, float *sigmas)
{
    if (T < 1) return fr_fail(FR_ERR_ARG, "fr_sigmas_linspace: steps %lld, expected >= 1", (long long)T);
    return fr_sigmas_shifted_linspace(1.0, 0.0, T + 1, shift, sigmas);
}

fr_status fr_sigmas_flash_tail(int64_t T, int64_t last, double compress, double shift, float *out, int64_t cap,
                               int64_t *n_steps)
{
    if (!out || !n_steps) return fr_fail(FR_ERR_ARG, "fr_sigmas_flash_tail: out or n_steps is NULL");
    *n_steps = 0;
    if (T < 1 || T > (int64_t)1 << 24 || last < 0 || last >= T)
        return fr_fail(FR_ERR_ARG, "fr_sigmas_flash_tail: last SDE step %lld of %lld steps, expected 0 <= last < steps",
                       (long long)last, (long long)T);
    if (!(compress > 0.0 && compress <= 1.0))
        return fr_fail(FR_ERR_ARG, "fr_sigmas_flash_tail: compress ratio %g, expected (0, 1]", compress);
    /* MIX: int(max((sigma_schedule.size(0) - 1 - last_false_index) * ratio, 1)) */
    const double pts = (double)(T - last) * compress;
    const int64_t n = pts < 1.0 ? 1 : (int64_t)pts;
    if (cap < last + 1 + n)
        return fr_fail(FR_ERR_ARG, "fr_sigmas_flash_tail: cap %lld, the grid has %lld values", (long long)cap,
                       (long long)(last + 1 + n));
    /* the tail first: it checks shift. Its first value is σ_{ℓ+1} of fr_sigmas_linspace:
     * the same float64 u, shift and rounding. */
    FR_TRY(fr_sigmas_shifted_linspace(np_linspace_at(1.0, 0.0, T + 1, last + 1), 0.0, n, shift, out + last + 1));
    for (int64_t i = 0; i <= last; i++) out[i] = (float)fr_shift_d(np_linspace_at(1.0, 0.0, T + 1, i), shift);
    *n_steps = last + n;
    return FR_OK;
}

static fr_status check_table(const char *fn, int64_t n, const void *p)
{
    if (!p) return fr_fail(FR_ERR_ARG, "%s: output is NULL", fn);
    if (n < 1) return fr_fail(FR_ERR_ARG, "%s: n %lld, expected >= 1", fn, (long long)n);
    return FR_OK;
}

fr_status fr_betas_linear(int64_t n, double beta_start, double beta_end, float *betas)
{
    FR_TRY(check_table("fr_betas_linear", n, betas));
    if (!(beta_start >= 0.0 && beta_end < 1.0 && beta_start <= beta_end))
        return fr_fail(FR_ERR_ARG, "fr_betas_linear: betas [%g, %g], expected 0 <= start <= end < 1",
                       beta_start, beta_end);
    for (int64_t i = 0; i < n; i++) betas[i] = (float)np_linspace_at(beta_start, beta_end, n, i);
    return FR_OK;
}

fr_status fr_betas_scaled_linear(int64_t n, double beta_start, double beta_end, float *betas)
{
    FR_TRY(check_table("fr_betas_scaled_linear", n, betas));
    if (!(beta_start >= 0.0 && beta_end < 1.0 && beta_start <= beta_end))
        return fr_fail(FR_ERR_ARG,
                       "fr_betas_scaled_linear: betas [%g, %g], expected 0 <= start <= end < 1",
                       beta_start, beta_end);
    const double r0 = sqrt(beta_start), r1 = sqrt(beta_end);
    for (int64_t i = 0; i < n; i++) {
        float r = (float)np_linspace_at(r0, r1, n, i);
        betas[i] = r * r;
    }
    return FR_OK;
}

fr_status fr_betas_cosine(int64_t n, double s, double max_beta, float *betas)
{
    FR_TRY(check_table("fr_betas_cosine", n, betas));
    if (!(s >= 0.0 && s < 1.0) || !(max_beta > 0.0 && max_beta <= 1.0))
        return fr_fail(FR_ERR_ARG, "fr_betas_cosine: s %g (expected [0, 1)), max_beta %g (expected (0, 1])",
                       s, max_beta);
    /* θ_k = ((k/n + s)/(1+s))·π/2; θ_k − θ_{k−1} = d = (π/2)/(n(1+s)). The angle is formed
     * in float64 (plain arithmetic) and rounded once; sin/cos are flowrl's. */
    const double half_pi = 1.5707963267948966;
    const float d = (float)(half_pi / ((double)n * (1.0 + s)));
    const float sin_d = fr_sinf(d);
    for (int64_t k = 1; k <= n; k++) {
        double a_d = (((double)(k - 1) / (double)n + s) / (1.0 + s)) * half_pi;
        float a = (float)a_d, apb = (float)(2.0 * a_d + (double)d);
        float ca = fr_cosf(a);
        float beta = (sin_d * fr_sinf(apb)) / (ca * ca);
        /* np.clip(betas, 0, max_beta); a NaN would pass np.clip, it cannot arise here */
        if (beta < 0.0f) beta = 0.0f;
        if (beta > (float)max_beta) beta = (float)max_beta;
        betas[k - 1] = beta;
    }
    return FR_OK;
}

fr_status fr_alphas_cumprod(int64_t n, const float *betas, float *alpha_bar)
{
    FR_TRY(check_table("fr_alphas_cumprod", n, alpha_bar));
    if (!betas) return fr_fail(FR_ERR_ARG, "fr_alphas_cumprod: betas is NULL");
    double acc = 1.0;
    for (int64_t i = 0; i < n; i++) {
        if (!(betas[i] >= 0.0f && betas[i] <= 1.0f))
            return fr_fail(FR_ERR_NUMERIC, "fr_alphas_cumprod: betas[%lld] = %g, expected [0, 1]",
                           (long long)i, (double)betas[i]);
        acc *= (double)(1.0f - betas[i]);
        alpha_bar[i] = (float)acc;
    }
    return FR_OK;
}

fr_status fr_ddim_timesteps(int64_t T, int64_t n_train, int64_t offset, int64_t *t)
{
    if (!t) return fr_fail(FR_ERR_ARG, "fr_ddim_timesteps: output is NULL");
    if (!(T >= 1 && T <= n_train) || offset < 0)
        return fr_fail(FR_ERR_ARG, "fr_ddim_timesteps: steps %lld of %lld (offset %lld), expected 1 <= steps <= n_train",
                       (long long)T, (long long)n_train, (long long)offset);
    const int64_t ratio = n_train / T;
    for (int64_t i = 0; i < T; i++) t[i] = (T - 1 - i) * ratio + offset;
    return FR_OK;
}
