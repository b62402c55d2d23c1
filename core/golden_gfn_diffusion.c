/* Golden cases of diffusion samplers as GFlowNets (docs/algorithms/gfn-diffusion.md,
 * docs/envs.md §3): each energy target's log R and ∇log R at a batch of points and its first
 * ground-truth samples, and the subtb loss (the public code's λ-weighted, batch-summed form) with
 * its gradients. Host code every backend runs (FR_GOLDEN_SHARED): float64. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/env.h"
#include "flowrl/gfn_diffusion.h"

enum { EN_N = 8, EN_S = 4, EN_DMAX = 32, SB = 3, ST = 5 };

static const fr_env_class *energy_class(int arg)
{
    return arg == 0 ? &fr_env_gmm25 : arg == 1 ? &fr_env_funnel : &fr_env_manywell;
}

static fr_status energy_in(const fr_golden_case *c, fr_golden_in *g)
{
    fr_env e;
    FR_TRY(fr_env_create(energy_class(c->arg), NULL, &e));
    const int64_t sh[2] = {EN_N, e.state_dim};
    fr_env_free(&e);
    FR_TRY(fr_gi_param_str(g, "env", energy_class(c->arg)->name));
    FR_TRY(fr_gi_param(g, "sample_seed", 3));
    return fr_gi_normal(g, "x_f32", 2, sh, c->arg == 0 ? 6.0f : 1.5f, NULL);
}

/* log R and ∇log R of the points in.x_f32 (widened to float64), and samples 0..3 at seed 3. */
static fr_status energy_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)d;
    fr_env e;
    FR_TRY(fr_env_create(energy_class(c->arg), NULL, &e));
    const int64_t D = e.state_dim, sh[2] = {EN_N, D}, n[1] = {EN_N}, ss[2] = {EN_S, D};
    const float *xf;
    double *lr, *gr, *smp, x[EN_DMAX];
    fr_status s = fr_go_exact(in, "x_f32", FR_F32, 2, sh, (const void **)&xf);
    if (s == FR_OK) s = fr_go_out(out, "log_r", FR_F64, 1, n, (void **)&lr);
    if (s == FR_OK) s = fr_go_out(out, "grad_log_r", FR_F64, 2, sh, (void **)&gr);
    if (s == FR_OK) s = fr_go_out(out, "samples", FR_F64, 2, ss, (void **)&smp);
    for (int64_t i = 0; i < EN_N && s == FR_OK; i++) {
        for (int64_t k = 0; k < D; k++) x[k] = (double)xf[i * D + k];
        lr[i] = e.energy->grad_log_reward(&e, x, gr + i * D);
    }
    for (int64_t i = 0; i < EN_S && s == FR_OK; i++) e.energy->sample(&e, 3, (uint32_t)i, smp + i * D);
    if (s == FR_OK) s = fr_go_out_scalar_f64(out, "log_z", e.energy->log_z(&e));
    fr_env_free(&e);
    return s;
}

static fr_status subtb_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    int64_t bt[2] = {SB, ST}, bf[2] = {SB, ST + 1}, b[1] = {SB};
    FR_TRY(fr_gi_normal(g, "logpf_f32", 2, bt, 2.0f, NULL));
    FR_TRY(fr_gi_normal(g, "logpb_f32", 2, bt, 2.0f, NULL));
    FR_TRY(fr_gi_normal(g, "logf_f32", 2, bf, 1.0f, NULL));
    FR_TRY(fr_gi_normal(g, "logr_f32", 1, b, 3.0f, NULL));
    return fr_gi_scalar_f64(g, "lambda", 2.0);
}

/* The float32 draws widened; log P_B of step 0 is 0 and log F_T = log R, as in a trajectory. */
static fr_status subtb_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    (void)d;
    int64_t bt[2] = {SB, ST}, bf[2] = {SB, ST + 1}, b[1] = {SB};
    const float *pf32, *pb32, *f32, *r32;
    double lambda;
    FR_TRY(fr_go_exact(in, "logpf_f32", FR_F32, 2, bt, (const void **)&pf32));
    FR_TRY(fr_go_exact(in, "logpb_f32", FR_F32, 2, bt, (const void **)&pb32));
    FR_TRY(fr_go_exact(in, "logf_f32", FR_F32, 2, bf, (const void **)&f32));
    FR_TRY(fr_go_exact(in, "logr_f32", FR_F32, 1, b, (const void **)&r32));
    FR_TRY(fr_go_scalar_f64(in, "lambda", &lambda));
    double pf[SB * ST], pb[SB * ST], f[SB * (ST + 1)], r[SB], loss, gz;
    for (int i = 0; i < SB * ST; i++) {
        pf[i] = (double)pf32[i];
        pb[i] = i % ST == 0 ? 0.0 : (double)pb32[i];
    }
    for (int i = 0; i < SB; i++) r[i] = (double)r32[i];
    for (int i = 0; i < SB * (ST + 1); i++) f[i] = i % (ST + 1) == ST ? r[i / (ST + 1)] : (double)f32[i];
    double *gpf, *gf;
    FR_TRY(fr_go_out(out, "grad_logpf", FR_F64, 2, bt, (void **)&gpf));
    FR_TRY(fr_go_out(out, "grad_logf", FR_F64, 2, bf, (void **)&gf));
    FR_TRY(fr_gfnd_loss_eval(FR_GFND_SUBTB, SB, ST, pf, pb, f, r, 0.0, lambda, &loss, gpf, gf, &gz));
    return fr_go_out_scalar_f64(out, "loss", loss);
}

#define T_SHARED {0.0f, 0.0f}

const fr_golden_case fr_golden_cases_gfn_diffusion[] = {
    {"gfnd.energy_gmm25", "25GMM: log R, grad log R at 8 points (N(0, 6^2)), 4 ground-truth samples at seed 3, log Z "
                          "(docs/envs.md §3)",
     FR_GOLDEN_SHARED, 0, T_SHARED, energy_in, energy_run},
    {"gfnd.energy_funnel", "Funnel D 10: log R, grad log R at 8 points (N(0, 1.5^2)), 4 ground-truth samples at seed 3, "
                           "log Z (docs/envs.md §3)",
     FR_GOLDEN_SHARED, 1, T_SHARED, energy_in, energy_run},
    {"gfnd.energy_manywell", "Manywell D 32: log R, grad log R at 8 points (N(0, 1.5^2)), 4 ground-truth samples "
                             "(rejection sampler) at seed 3, log Z = 164.695675 (docs/envs.md §3)",
     FR_GOLDEN_SHARED, 2, T_SHARED, energy_in, energy_run},
    {"gfnd.loss_subtb", "gfn-diffusion subtb, lambda 2, 3 trajectories of 5 steps: the batch-summed loss and the "
                        "gradients of log P_F and log F (docs/algorithms/gfn-diffusion.md §2)",
     FR_GOLDEN_SHARED, 0, T_SHARED, subtb_in, subtb_run},
};
const size_t fr_golden_n_gfn_diffusion = sizeof fr_golden_cases_gfn_diffusion / sizeof fr_golden_cases_gfn_diffusion[0];
