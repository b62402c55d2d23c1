/* Sampler steps over a batch (docs/algorithms/samplers.md §2-§6, §9): the checks and the
 * step's coefficients here, the loops over the element functions of flowrl/sampler_elem.h in
 * the backend's op entries (sampler_step, sampler_logprob, flowrl/ops.h). */
#include "flowrl/sampler.h"

#include <string.h>

#include "flowrl/enum_names.h"
#include "flowrl/sampler_elem.h"

const char *const fr_sampler_names[FR_SAMPLER_COUNT + 1] = {"ode", "sde", "cps", "dance", "ddim", "dpm", NULL};

const char *fr_sampler_name(fr_sampler_kind k) { return fr_enum_name(fr_sampler_names, (int)k); }

fr_status fr_sampler_from_name(const char *name, fr_sampler_kind *out)
{
    int v;
    FR_TRY(fr_enum_parse(fr_sampler_names, name, &v, "sampler"));
    *out = (fr_sampler_kind)v;
    return FR_OK;
}

int fr_sampler_is_stochastic(fr_sampler_kind k)
{
    return k == FR_SAMPLER_SDE || k == FR_SAMPLER_CPS || k == FR_SAMPLER_DANCE || k == FR_SAMPLER_DDIM;
}

static int finite_f(float v) { return v == v && v - v == 0.0f; }

static fr_status prepare(const fr_step *p, fr_step_coef *q)
{
    if (!p) return fr_fail(FR_ERR_ARG, "sampler step: parameters are NULL");
    if (!(p->kind >= 0 && p->kind < FR_SAMPLER_COUNT))
        return fr_fail(FR_ERR_ARG, "sampler step: invalid kind %d", (int)p->kind);
    const char *name = fr_sampler_names[p->kind];
    memset(q, 0, sizeof *q);
    q->kind = p->kind;
    q->sigma = p->sigma;
    if (p->kind != FR_SAMPLER_DDIM) {
        if (!(finite_f(p->sigma) && finite_f(p->sigma_next) && p->sigma_next >= 0.0f &&
              p->sigma_next < p->sigma && p->sigma <= 1.0f))
            return fr_fail(FR_ERR_ARG, "%s step: sigma %g -> sigma_next %g, expected 0 <= sigma_next < sigma <= 1",
                           name, (double)p->sigma, (double)p->sigma_next);
    }
    if (fr_sampler_is_stochastic(p->kind) && !(finite_f(p->noise) && p->noise >= 0.0f))
        return fr_fail(FR_ERR_ARG, "%s step: noise level %g, expected a finite value >= 0", name,
                       (double)p->noise);
    switch (p->kind) {
    case FR_SAMPLER_ODE:
        q->dt = p->sigma_next - p->sigma;
        break;
    case FR_SAMPLER_SDE:
        /* σ == 1 uses σ_1; an unset (0) σ_1 would silently give a wrong std, so insist */
        if (p->sigma == 1.0f && !(p->sigma1 > 0.0f && p->sigma1 < 1.0f))
            return fr_fail(FR_ERR_ARG, "sde step: sigma == 1 needs sigma1 (the grid's sigma_1) in (0, 1), got %g",
                           (double)p->sigma1);
        q->sde = fr_sde_coef_make(p->sigma, p->sigma_next, p->sigma1, p->noise);
        q->std = q->sde.std;
        q->std_dev = q->sde.std_dev;
        break;
    case FR_SAMPLER_CPS:
        q->cps = fr_cps_coef_make(p->sigma, p->sigma_next, p->noise);
        q->std = q->std_dev = q->cps.std;
        break;
    case FR_SAMPLER_DANCE:
        q->dance = fr_dance_coef_make(p->sigma, p->sigma_next, p->noise);
        q->std = q->std_dev = q->dance.std;
        break;
    case FR_SAMPLER_DDIM:
        if (!(p->alpha_bar > 0.0f && p->alpha_bar < 1.0f && p->alpha_bar_prev > 0.0f &&
              p->alpha_bar_prev <= 1.0f) || !finite_f(p->x0_clip))
            return fr_fail(FR_ERR_ARG, "ddim step: alpha_bar %g, alpha_bar_prev %g, expected (0, 1) and (0, 1]",
                           (double)p->alpha_bar, (double)p->alpha_bar_prev);
        q->ddim = fr_ddim_coef_make(p->alpha_bar, p->alpha_bar_prev, p->noise, p->x0_clip);
        q->std = q->std_dev = q->ddim.std;
        break;
    case FR_SAMPLER_DPM:
        if (p->order != 1 && p->order != 2)
            return fr_fail(FR_ERR_ARG, "dpm step: order %d, expected 1 or 2", p->order);
        q->dpm = fr_dpm_coef_make(p->sigma, p->sigma_next, p->sigma_prev, p->order);
        if (q->dpm.order == 2 && !(p->sigma_prev > p->sigma && p->sigma_prev <= 1.0f))
            return fr_fail(FR_ERR_ARG, "dpm step: order 2 needs sigma_prev in (sigma, 1], got %g (sigma %g)",
                           (double)p->sigma_prev, (double)p->sigma);
        break;
    default:
        break;
    }
    if (p->kind == FR_SAMPLER_SDE || p->kind == FR_SAMPLER_DANCE || p->kind == FR_SAMPLER_DDIM)
        q->gauss = fr_gauss_coef_make(q->std);
    return FR_OK;
}

static fr_status check_shape(const char *fn, int64_t B, int64_t D)
{
    if (B < 0 || D < 1 || B > INT64_MAX / D)
        return fr_fail(FR_ERR_ARG, "%s: shape (%lld, %lld), expected B >= 0, D >= 1", fn, (long long)B,
                       (long long)D);
    return FR_OK;
}

/* dpm order 2 reads x0_prev */
static fr_status check_x0_prev(const char *fn, const fr_step_coef *q, const float *x0_prev)
{
    if (q->kind == FR_SAMPLER_DPM && q->dpm.order == 2 && !x0_prev)
        return fr_fail(FR_ERR_ARG, "%s: dpm order 2 needs x0_prev (the previous step's x0 prediction)", fn);
    return FR_OK;
}

fr_status fr_sampler_std(const fr_step *p, fr_step_std *out)
{
    fr_step_coef q;
    FR_TRY(prepare(p, &q));
    if (out) {
        out->std = q.std;
        out->std_dev = q.std_dev;
    }
    return FR_OK;
}

fr_status fr_sampler_coef(const fr_step *p, fr_step_coef *out)
{
    return prepare(p, out);
}

fr_status fr_sampler_step(fr_backend *be, const fr_step *p, int64_t B, int64_t D, const float *x,
                          const float *model_out, const float *x0_prev, const float *xi, float *x_next, float *mean,
                          float *logp, fr_step_std *std)
{
    static const char *fn = "fr_sampler_step";
    fr_step_coef q;
    FR_TRY(prepare(p, &q));
    FR_TRY(check_shape(fn, B, D));
    FR_TRY(check_x0_prev(fn, &q, x0_prev));
    if (!x || !model_out || !x_next) return fr_fail(FR_ERR_ARG, "%s: x, model_out or x_next is NULL", fn);
    const int stochastic = fr_sampler_is_stochastic(q.kind);
    if (logp && !stochastic)
        return fr_fail(FR_ERR_ARG, "%s: '%s' is deterministic and has no log-prob (pass logp = NULL)", fn,
                       fr_sampler_names[q.kind]);
    if (!stochastic) xi = NULL;
    if (q.kind != FR_SAMPLER_DPM || q.dpm.order != 2) x0_prev = NULL;
    be->ops->sampler_step(B, D, q, x, model_out, x0_prev, xi, x_next, mean, logp);
    if (std) {
        std->std = q.std;
        std->std_dev = q.std_dev;
    }
    return FR_OK;
}

fr_status fr_sampler_mean(fr_backend *be, const fr_step *p, int64_t B, int64_t D, const float *x,
                          const float *model_out, const float *x0_prev, float *mean)
{
    static const char *fn = "fr_sampler_mean";
    fr_step_coef q;
    FR_TRY(prepare(p, &q));
    FR_TRY(check_shape(fn, B, D));
    FR_TRY(check_x0_prev(fn, &q, x0_prev));
    if (!x || !model_out || !mean) return fr_fail(FR_ERR_ARG, "%s: x, model_out or mean is NULL", fn);
    if (q.kind != FR_SAMPLER_DPM || q.dpm.order != 2) x0_prev = NULL;
    /* μ is the step without noise: x' = μ */
    be->ops->sampler_step(B, D, q, x, model_out, x0_prev, NULL, mean, NULL, NULL);
    return FR_OK;
}

/* Shared by the two log-prob entry points: μ from `mean` if given, else from (x, model_out). */
static fr_status logprob_rows(fr_backend *be, const char *fn, const fr_step_coef *q, int64_t B, int64_t D,
                              const float *x, const float *model_out, const float *x_next, const float *mean_in,
                              float *mean_out, float *logp)
{
    if (!fr_sampler_is_stochastic(q->kind))
        return fr_fail(FR_ERR_ARG, "%s: '%s' is deterministic and has no log-prob", fn, fr_sampler_names[q->kind]);
    if (!x_next || !logp) return fr_fail(FR_ERR_ARG, "%s: x_next or logp is NULL", fn);
    be->ops->sampler_logprob(B, D, *q, x, model_out, NULL, x_next, mean_in, mean_out, logp);
    return FR_OK;
}

fr_status fr_sampler_logprob_of(fr_backend *be, const fr_step *p, int64_t B, int64_t D, const float *x_next,
                                const float *mean, float *logp)
{
    static const char *fn = "fr_sampler_logprob_of";
    fr_step_coef q;
    FR_TRY(prepare(p, &q));
    FR_TRY(check_shape(fn, B, D));
    if (!mean) return fr_fail(FR_ERR_ARG, "%s: mean is NULL", fn);
    return logprob_rows(be, fn, &q, B, D, NULL, NULL, x_next, mean, NULL, logp);
}

fr_status fr_sampler_logprob_w(fr_backend *be, const fr_step *p, int64_t B, int64_t D, const float *x_next,
                               const float *mean, const float *w, float *logp)
{
    static const char *fn = "fr_sampler_logprob_w";
    fr_step_coef q;
    FR_TRY(prepare(p, &q));
    FR_TRY(check_shape(fn, B, D));
    if (!fr_sampler_is_stochastic(q.kind))
        return fr_fail(FR_ERR_ARG, "%s: '%s' is deterministic and has no log-prob", fn, fr_sampler_names[q.kind]);
    if (!x_next || !mean || !w || !logp) return fr_fail(FR_ERR_ARG, "%s: NULL argument", fn);
    be->ops->sampler_logprob_w(B, D, q, x_next, mean, w, logp);
    return FR_OK;
}

fr_status fr_sampler_logprob(fr_backend *be, const fr_step *p, int64_t B, int64_t D, const float *x,
                             const float *model_out, const float *x0_prev, const float *x_next, float *mean,
                             float *logp)
{
    static const char *fn = "fr_sampler_logprob";
    fr_step_coef q;
    FR_TRY(prepare(p, &q));
    FR_TRY(check_shape(fn, B, D));
    if (!x || !model_out) return fr_fail(FR_ERR_ARG, "%s: x or model_out is NULL", fn);
    (void)x0_prev; /* dpm, the one kind that reads it, has no log-prob */
    return logprob_rows(be, fn, &q, B, D, x, model_out, x_next, NULL, mean, logp);
}

fr_status fr_cfg_combine(fr_backend *be, int64_t n, float g, const float *v_u, const float *v_c, float *out)
{
    if (n < 0 || (n > 0 && (!v_u || !v_c || !out)))
        return fr_fail(FR_ERR_ARG, "fr_cfg_combine: n %lld or a NULL array", (long long)n);
    be->ops->cfg_combine(n, g, v_u, v_c, out);
    return FR_OK;
}

fr_status fr_flow_x0(fr_backend *be, int64_t n, float sigma, const float *x, const float *v, float *x0)
{
    if (n < 0 || (n > 0 && (!x || !v || !x0)))
        return fr_fail(FR_ERR_ARG, "fr_flow_x0: n %lld or a NULL array", (long long)n);
    be->ops->flow_x0(n, sigma, x, v, x0);
    return FR_OK;
}
