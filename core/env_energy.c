/* Energy targets of diffusion samplers trained as GFlowNets (flowrl/env.h's energy side;
 * docs/envs.md §3; spec gflownets.md §7.1), as GFNOrg/gfn-diffusion@255b499 defines them in
 * energy_sampling/energies/: 25GMM (twenty_five_gmm.py), Funnel (hard_funnel.py,
 * easy_funnel.py) and Manywell (many_well.py). log R, its analytic gradient and the ground-truth
 * samplers in float64; exp / log are flowrl's own (flowrl/awm_elem.h), so every machine gives
 * the same bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/env.h"
#include "flowrl/philox.h"

#define LOG_2PI 1.8378770664093454836

/* A standard normal from Philox (seed, FR_RNG_ENERGY_SAMPLE, i, block, try) element j. */
static double normal(uint32_t seed, uint32_t i, uint32_t block, uint32_t try_, uint32_t j)
{
    return (double)fr_rng_normal(seed, FR_RNG_ENERGY_SAMPLE, i, block, try_, j);
}

static double uniform(uint32_t seed, uint32_t i, uint32_t block, uint32_t try_, uint32_t j)
{
    return ((double)fr_rng_u32(seed, FR_RNG_ENERGY_SAMPLE, i, block, try_, j) + 0.5) * (1.0 / 4294967296.0);
}

static fr_status take_opts(fr_env *e, const void *o, size_t n, int D, const fr_env_energy_ops *ops)
{
    void *copy = fr_malloc(n);
    if (!copy) return FR_ERR_NOMEM;
    memcpy(copy, o, n);
    e->impl = copy;
    e->state_dim = e->obs_dim = e->action_dim = D;
    e->n_actions = 0;
    e->exit_action = -1;
    e->max_steps = 0;
    e->n_states = 0;
    e->gfn = NULL;
    e->ctl = NULL;
    e->energy = ops;
    return FR_OK;
}

/* ---- 25GMM: means {−10, −5, 0, 5, 10}², covariance v·I, equal weights; log Z = 0 ---------- */

#define O fr_gmm25_opts
static const fr_opt k_gmm_rows[] = {
    FR_OPT_F64(O, variance, "variance", "0.3", 1e-3, 100, "variance of each of the 25 components", 0),
};
#undef O

static double gmm_mean(int k, int d) { return 5.0 * (double)((d == 0 ? k / 5 : k % 5) - 2); }

/* log R = logsumexp_k log N(x; μ_k, v I) − log 25; ∇ = Σ_k w_k (μ_k − x)/v, w = softmax. */
static double gmm_grad(const fr_env *e, const double *x, double *g)
{
    const double v = ((const fr_gmm25_opts *)e->impl)->variance;
    double lk[25], m = -INFINITY;
    for (int k = 0; k < 25; k++) {
        double q = 0.0;
        for (int d = 0; d < 2; d++) {
            double u = x[d] - gmm_mean(k, d);
            q += u * u;
        }
        lk[k] = -0.5 * q / v - LOG_2PI - fr_awm_log(v);
        if (lk[k] > m) m = lk[k];
    }
    double s = 0.0;
    for (int k = 0; k < 25; k++) s += fr_awm_exp(lk[k] - m);
    const double lse = m + fr_awm_log(s);
    if (g) {
        g[0] = g[1] = 0.0;
        for (int k = 0; k < 25; k++) {
            double w = fr_awm_exp(lk[k] - lse);
            for (int d = 0; d < 2; d++) g[d] += w * (gmm_mean(k, d) - x[d]) / v;
        }
    }
    return lse - fr_awm_log(25.0);
}

static double gmm_log_reward(const fr_env *e, const double *x) { return gmm_grad(e, x, NULL); }
static double zero_log_z(const fr_env *e)
{
    (void)e;
    return 0.0;
}

/* The mode uniform over 25 (PR #2's fix of the stratified sampler), then μ + √v·z. */
static void gmm_sample(const fr_env *e, uint32_t seed, uint32_t i, double *x)
{
    const double v = ((const fr_gmm25_opts *)e->impl)->variance;
    int k = (int)(((uint64_t)fr_rng_u32(seed, FR_RNG_ENERGY_SAMPLE, i, 0, 0, 0) * 25u) >> 32);
    for (int d = 0; d < 2; d++) x[d] = gmm_mean(k, d) + sqrt(v) * normal(seed, i, 1, 0, (uint32_t)d);
}

static double gmm_extent(const fr_env *e)
{
    (void)e;
    return 13.0; /* the public plots' bounds (−13, 13) */
}

static const fr_env_energy_ops k_gmm_ops = {gmm_log_reward, gmm_grad, zero_log_z, gmm_sample, gmm_extent};

static fr_status gmm_create(const void *o, fr_env *e)
{
    FR_TRY(take_opts(e, o, sizeof(fr_gmm25_opts), 2, &k_gmm_ops));
    snprintf(e->desc, sizeof e->desc, "gmm25 D=2 variance=%g", ((const fr_gmm25_opts *)o)->variance);
    return FR_OK;
}

const fr_env_class fr_env_gmm25 = {
    "gmm25",
    "gfn-diffusion's 25GMM: 25 equal Gaussians at {-10,-5,0,5,10}^2, covariance 0.3 I; log Z = 0",
    "docs/envs.md",
    "energy",
    k_gmm_rows,
    (int)(sizeof k_gmm_rows / sizeof k_gmm_rows[0]),
    sizeof(fr_gmm25_opts),
    gmm_create,
};

/* ---- Funnel: x0 ~ N(0, σ0²), x_i | x0 ~ N(0, e^{x0}); normalised, log Z = 0 ---------------- */

#define O fr_funnel_opts
static const fr_opt k_funnel_rows[] = {
    FR_OPT_INT(O, dim, "dim", "10", 2, 4096, "dimension D (x0 and D-1 others)", 0),
    FR_OPT_F64(O, sigma0, "sigma0", "3", 1e-3, 100, "standard deviation of x0 (3: hard_funnel, 1: easy_funnel)", 0),
};
#undef O

/* log N(x0; 0, σ0²) + Σ_i (−½ log 2π − ½ x0 − ½ x_i² e^{−x0});
 * ∂/∂x0 = −x0/σ0² + Σ_i (−½ + ½ x_i² e^{−x0}), ∂/∂x_i = −x_i e^{−x0}. */
static double funnel_grad(const fr_env *e, const double *x, double *g)
{
    const fr_funnel_opts *o = e->impl;
    const double s2 = o->sigma0 * o->sigma0, ex = fr_awm_exp(-x[0]);
    double lr = -0.5 * (x[0] * x[0] / s2 + LOG_2PI + fr_awm_log(s2));
    if (g) g[0] = -x[0] / s2;
    for (int i = 1; i < o->dim; i++) {
        lr += -0.5 * LOG_2PI - 0.5 * x[0] - 0.5 * x[i] * x[i] * ex;
        if (g) {
            g[0] += -0.5 + 0.5 * x[i] * x[i] * ex;
            g[i] = -x[i] * ex;
        }
    }
    return lr;
}

static double funnel_log_reward(const fr_env *e, const double *x) { return funnel_grad(e, x, NULL); }

static void funnel_sample(const fr_env *e, uint32_t seed, uint32_t i, double *x)
{
    const fr_funnel_opts *o = e->impl;
    x[0] = o->sigma0 * normal(seed, i, 0, 0, 0);
    const double sd = fr_awm_exp(0.5 * x[0]);
    for (int d = 1; d < o->dim; d++) x[d] = sd * normal(seed, i, 1, 0, (uint32_t)d);
}

static double funnel_extent(const fr_env *e)
{
    (void)e;
    return 10.0;
}

static const fr_env_energy_ops k_funnel_ops = {funnel_log_reward, funnel_grad, zero_log_z, funnel_sample,
                                               funnel_extent};

static fr_status funnel_create(const void *ov, fr_env *e)
{
    const fr_funnel_opts *o = ov;
    FR_TRY(take_opts(e, o, sizeof *o, o->dim, &k_funnel_ops));
    snprintf(e->desc, sizeof e->desc, "funnel D=%d sigma0=%g", o->dim, o->sigma0);
    return FR_OK;
}

const fr_env_class fr_env_funnel = {
    "funnel",
    "gfn-diffusion's Funnel: x0 ~ N(0, 3^2), x_i | x0 ~ N(0, e^x0), D = 10; log Z = 0",
    "docs/envs.md",
    "energy",
    k_funnel_rows,
    (int)(sizeof k_funnel_rows / sizeof k_funnel_rows[0]),
    sizeof(fr_funnel_opts),
    funnel_create,
};

/* ---- Manywell: D/2 double wells log p = −x1⁴ + 6 x1² + ½ x1 − ½ x2² --------------------- */

#define O fr_manywell_opts
static const fr_opt k_manywell_rows[] = {
    FR_OPT_INT(O, dim, "dim", "32", 2, 4096, "dimension D, even: D/2 double wells", 0),
};
#undef O

/* ∫ exp(−x⁴ + 6x² + ½x) dx, many_well.py's Z_x1 (tests/test_gfn_diffusion.c integrates it). */
#define MANYWELL_Z_X1 11784.50927

static double well1(double x) { return -x * x * x * x + 6.0 * x * x + 0.5 * x; }

static double manywell_grad(const fr_env *e, const double *x, double *g)
{
    double lr = 0.0;
    for (int j = 0; j + 1 < e->state_dim; j += 2) {
        const double a = x[j], b = x[j + 1];
        lr += well1(a) - 0.5 * b * b;
        if (g) {
            g[j] = -4.0 * a * a * a + 12.0 * a + 0.5;
            g[j + 1] = -b;
        }
    }
    return lr;
}

static double manywell_log_reward(const fr_env *e, const double *x) { return manywell_grad(e, x, NULL); }

/* (D/2)·(log Z_x1 + ½ log 2π): 164.695675 at D = 32. */
static double manywell_log_z(const fr_env *e)
{
    return (double)(e->state_dim / 2) * (fr_awm_log(MANYWELL_Z_X1) + 0.5 * LOG_2PI);
}

/* many_well.py's rejection sampler of x1: proposal 0.2·N(−1.7, 0.5²) + 0.8·N(1.7, 0.5²),
 * accepted when exp(well1(z)) > u·k·q(z), k = 3·Z_x1; try t of block j draws (component u,
 * normal, acceptance u) from Philox (seed, i, j, t). x2 ~ N(0, 1). A trial cap of 10⁴ (the
 * acceptance rate is Z_x1/k = 1/3) keeps it a total function. */
static void manywell_sample(const fr_env *e, uint32_t seed, uint32_t i, double *x)
{
    const double k = 3.0 * MANYWELL_Z_X1, sd = 0.5, norm = 1.0 / (sd * 2.5066282746310002 /* √(2π) */);
    for (int j = 0; j + 1 < e->state_dim; j += 2) {
        const uint32_t blk = (uint32_t)(j / 2);
        double z = 0.0;
        for (uint32_t t = 0; t < 10000; t++) {
            const double mu = uniform(seed, i, blk, t, 0) < 0.2 ? -1.7 : 1.7;
            z = mu + sd * normal(seed, i, blk, t, 4);
            const double ua = (z + 1.7) / sd, ub = (z - 1.7) / sd;
            const double q = norm * (0.2 * fr_awm_exp(-0.5 * ua * ua) + 0.8 * fr_awm_exp(-0.5 * ub * ub));
            if (fr_awm_exp(well1(z)) > uniform(seed, i, blk, t, 1) * k * q) break;
        }
        x[j] = z;
        x[j + 1] = normal(seed, i, blk, 0xFFFFFFFFu, 0);
    }
}

static double manywell_extent(const fr_env *e)
{
    (void)e;
    return 3.0;
}

static const fr_env_energy_ops k_manywell_ops = {manywell_log_reward, manywell_grad, manywell_log_z, manywell_sample,
                                                 manywell_extent};

static fr_status manywell_create(const void *ov, fr_env *e)
{
    const fr_manywell_opts *o = ov;
    if (o->dim % 2) return fr_fail(FR_ERR_ARG, "manywell: --dim %d, expected an even number", o->dim);
    FR_TRY(take_opts(e, o, sizeof *o, o->dim, &k_manywell_ops));
    snprintf(e->desc, sizeof e->desc, "manywell D=%d", o->dim);
    return FR_OK;
}

const fr_env_class fr_env_manywell = {
    "manywell",
    "gfn-diffusion's Manywell: 16 double wells -x1^4 + 6 x1^2 + x1/2 - x2^2/2, D = 32; log Z = 164.695675",
    "docs/envs.md",
    "energy",
    k_manywell_rows,
    (int)(sizeof k_manywell_rows / sizeof k_manywell_rows[0]),
    sizeof(fr_manywell_opts),
    manywell_create,
};
