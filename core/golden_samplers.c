/* Golden cases of the sampler steps (flowrl/sampler.h, docs/algorithms/samplers.md §2-§6, §9): one per
 * kind, each with its log-prob where it has one, plus the σ == 1 step of the Flow-GRPO SDE
 * (the σ_1 substitution, §3 quirk 1). The step scalars are 0-d inputs, taken from the grids
 * the public code uses (the "note.grid" metadata says which point). Each runs the op entry
 * sampler_step (fr_sampler_step) in the backend's memory. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/sampler.h"
#include "flowrl/schedule.h"

enum { SB = 3, SD = 11 };

/* arg = fr_sampler_kind | 16 for the σ == 1 variant of sde */
#define SIGMA1_STEP 16

static fr_status flow_grid_in(fr_golden_in *g, int linspace, int64_t T, int64_t i, int prev)
{
    float s[32];
    char note[160];
    if (linspace) FR_TRY(fr_sigmas_linspace(T, FR_DEFAULT_SHIFT, s));
    else FR_TRY(fr_sigmas_diffusers(T, FR_DEFAULT_SHIFT, s));
    snprintf(note, sizeof note, "%s grid (T = %lld, shift 3), step %lld: sigma = s[%lld], sigma_next = s[%lld]%s",
             linspace ? "linspace (spec/samplers.md §1.3)" : "diffusers (spec/samplers.md §1.2)",
             (long long)T, (long long)i, (long long)i, (long long)i + 1,
             prev ? ", sigma_prev = s[i-1]" : "");
    FR_TRY(fr_gi_note(g, "grid", note));
    FR_TRY(fr_gi_scalar(g, "sigma", s[i]));
    FR_TRY(fr_gi_scalar(g, "sigma_next", s[i + 1]));
    if (prev) FR_TRY(fr_gi_scalar(g, "sigma_prev", s[i - 1]));
    /* σ_1 of the grid (FG's sigma_max = sigmas[1]): read by sde only */
    return fr_gi_scalar(g, "sigma1", s[1]);
}

static fr_status step_in(const fr_golden_case *c, fr_golden_in *g)
{
    fr_sampler_kind k = (fr_sampler_kind)(c->arg & 15);
    int64_t sh[2] = {SB, SD};
    FR_TRY(fr_gi_param_str(g, "sampler", fr_sampler_name(k)));
    switch (k) {
    case FR_SAMPLER_ODE: FR_TRY(flow_grid_in(g, 0, 10, 3, 0)); break;
    case FR_SAMPLER_SDE:
        FR_TRY(flow_grid_in(g, 0, 10, (c->arg & SIGMA1_STEP) ? 0 : 3, 0));
        FR_TRY(fr_gi_scalar(g, "noise", 0.7f)); /* a: FG's noise_level */
        break;
    case FR_SAMPLER_CPS:
        FR_TRY(flow_grid_in(g, 0, 10, 3, 0));
        FR_TRY(fr_gi_scalar(g, "noise", 0.8f)); /* a of the fast/CPS configs */
        break;
    case FR_SAMPLER_DANCE:
        FR_TRY(flow_grid_in(g, 1, 16, 3, 0));
        FR_TRY(fr_gi_scalar(g, "noise", 0.3f)); /* η of DanceGRPO */
        break;
    case FR_SAMPLER_DPM:
        FR_TRY(flow_grid_in(g, 1, 10, 3, 1));
        FR_TRY(fr_gi_param(g, "order", 2));
        break;
    case FR_SAMPLER_DDIM: {
        /* SD's scaled_linear betas (DDPO), 50 leading-spaced steps, step 10 */
        enum { NT = FR_NUM_TRAIN_TIMESTEPS, T = 50 };
        static float betas[NT], ab[NT];
        int64_t ts[T];
        FR_TRY(fr_betas_scaled_linear(NT, 0.00085, 0.012, betas));
        FR_TRY(fr_alphas_cumprod(NT, betas, ab));
        FR_TRY(fr_ddim_timesteps(T, NT, 1, ts));
        int64_t t = ts[10], tp = fr_ddim_prev_timestep(t, T, NT);
        char note[160];
        snprintf(note, sizeof note, "scaled_linear betas (0.00085, 0.012), 50 DDIM steps, step 10: "
                 "alpha_bar = ab[%lld], alpha_bar_prev = ab[%lld]", (long long)t, (long long)tp);
        FR_TRY(fr_gi_note(g, "grid", note));
        FR_TRY(fr_gi_scalar(g, "alpha_bar", ab[t]));
        FR_TRY(fr_gi_scalar(g, "alpha_bar_prev", ab[tp]));
        FR_TRY(fr_gi_scalar(g, "x0_clip", 0.0f));
        FR_TRY(fr_gi_scalar(g, "noise", 1.0f)); /* η of DDPO */
        break;
    }
    default: return fr_fail(FR_ERR_ARG, "golden %s: bad sampler kind", c->name);
    }
    FR_TRY(fr_gi_normal(g, "x", 2, sh, 1.0f, NULL));
    FR_TRY(fr_gi_normal(g, "model_out", 2, sh, 1.0f, NULL));
    if (k == FR_SAMPLER_DPM) FR_TRY(fr_gi_normal(g, "x0_prev", 2, sh, 1.0f, NULL));
    if (fr_sampler_is_stochastic(k)) FR_TRY(fr_gi_normal(g, "xi", 2, sh, 1.0f, NULL));
    return FR_OK;
}

fr_status fr_golden_read_step(const fr_st_file *in, fr_sampler_kind k, fr_step *p)
{
    memset(p, 0, sizeof *p);
    p->kind = k;
    const char *name = fr_st_get_meta(in, "param.sampler");
    if (!name || strcmp(name, fr_sampler_name(k)) != 0)
        return fr_fail(FR_ERR_FORMAT, "golden: param.sampler is '%s', expected '%s'",
                       name ? name : "(missing)", fr_sampler_name(k));
    if (k == FR_SAMPLER_DDIM) {
        FR_TRY(fr_go_scalar(in, "alpha_bar", &p->alpha_bar));
        FR_TRY(fr_go_scalar(in, "alpha_bar_prev", &p->alpha_bar_prev));
        FR_TRY(fr_go_scalar(in, "x0_clip", &p->x0_clip));
    } else {
        FR_TRY(fr_go_scalar(in, "sigma", &p->sigma));
        FR_TRY(fr_go_scalar(in, "sigma_next", &p->sigma_next));
        FR_TRY(fr_go_scalar(in, "sigma1", &p->sigma1));
    }
    if (fr_sampler_is_stochastic(k)) FR_TRY(fr_go_scalar(in, "noise", &p->noise));
    if (k == FR_SAMPLER_DPM) {
        long long order;
        FR_TRY(fr_go_param(in, "order", 1, 2, &order));
        p->order = (int)order;
        FR_TRY(fr_go_scalar(in, "sigma_prev", &p->sigma_prev));
    }
    return FR_OK;
}

static fr_status step_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                          fr_st_file *out)
{
    fr_sampler_kind k = (fr_sampler_kind)(c->arg & 15);
    fr_step p;
    FR_TRY(fr_golden_read_step(in, k, &p));
    int64_t sh[2];
    const float *x, *mo, *x0p = NULL, *xi = NULL;
    FR_TRY(fr_gd_f32(d, in, "x", 2, sh, &x));
    FR_TRY(fr_gd_exact(d, in, "model_out", FR_F32, 2, sh, (const void **)&mo));
    if (k == FR_SAMPLER_DPM) FR_TRY(fr_gd_exact(d, in, "x0_prev", FR_F32, 2, sh, (const void **)&x0p));
    int stoch = fr_sampler_is_stochastic(k);
    if (stoch) FR_TRY(fr_gd_exact(d, in, "xi", FR_F32, 2, sh, (const void **)&xi));
    float *xn, *mean = NULL, *logp = NULL;
    fr_step_std sd;
    FR_TRY(fr_gd_out_f32(d, out, "x_next", 2, sh, NULL, &xn));
    if (stoch) {
        FR_TRY(fr_gd_out_f32(d, out, "mean", 2, sh, NULL, &mean));
        FR_TRY(fr_gd_out_f32(d, out, "logp", 1, sh, NULL, &logp));
    }
    FR_TRY(fr_sampler_step(d->be, &p, sh[0], sh[1], x, mo, x0p, xi, xn, mean, logp, &sd));
    if (stoch) {
        FR_TRY(fr_go_out_scalar(out, "std", sd.std));
        FR_TRY(fr_go_out_scalar(out, "std_dev", sd.std_dev));
    }
    return FR_OK;
}

/* --fast keeps the canonical sampler entries (the vendor kernels replace GEMM, layer norm
 * and activations only), so the fast table stays bitwise here. */
#define T_CANON {0.0f, 0.0f}
#define STEP(nm, arg, what)                                                                  \
    {"sampler." nm, what, (long)offsetof(fr_ops, sampler_step), arg, T_CANON, step_in, step_run}

const fr_golden_case fr_golden_cases_samplers[] = {
    STEP("ode", FR_SAMPLER_ODE, "Euler ODE step (§2), diffusers T=10 grid step 3, B=3 D=11"),
    STEP("sde", FR_SAMPLER_SDE, "Flow-GRPO SDE step + log-prob (§3), a 0.7, T=10 step 3"),
    STEP("sde_sigma1", FR_SAMPLER_SDE | SIGMA1_STEP,
         "Flow-GRPO SDE step at sigma = 1 (the sigma_1 substitution, §3 quirk 1)"),
    STEP("cps", FR_SAMPLER_CPS, "CPS step + its constant-free log-prob (§4), a 0.8, T=10 step 3"),
    STEP("dance", FR_SAMPLER_DANCE, "DanceGRPO flux_step + log-prob (§5), eta 0.3, T=16 step 3"),
    STEP("ddim", FR_SAMPLER_DDIM, "DDIM eta 1 step + log-prob (§6), SD betas, 50 steps, step 10"),
    STEP("dpm", FR_SAMPLER_DPM, "DPM-Solver++ 2nd-order multistep (§9), T=10 linspace step 3"),
};
const size_t fr_golden_n_samplers =
    sizeof fr_golden_cases_samplers / sizeof fr_golden_cases_samplers[0];
