/* The stable C API (flowrl/capi.h): versions, errors, backends, sampler steps, objectives,
 * advantages, schedules, Philox draws and the transcendental functions over host arrays.
 * Array work runs on the caller's backend: host arrays go up with fr_h2d into fr_dev_alloc'd
 * buffers (a "stage"), the library function runs there, the results come back with fr_d2h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/advantage.h"
#include "flowrl/buildinfo.h"
#include "core/capi_internal.h"
#include "flowrl/detmath.h"
#include "flowrl/grpo.h"
#include "flowrl/philox.h"
#include "flowrl/sampler.h"
#include "flowrl/schedule.h"
#include "flowrl/status.h"

int flowrl_api_version(void) { return FLOWRL_API_VERSION; }
const char *flowrl_version(void) { return fr_version(); }
const char *flowrl_last_error(void) { return fr_last_error(); }
const char *flowrl_status_name(int status) { return fr_status_name((fr_status)status); }

/* ---- backends ------------------------------------------------------------------------------ */

int flowrl_backend_open(const char *name, int fast, int threads, flowrl_backend **out)
{
    if (!out) return fr_fail(FR_ERR_ARG, "flowrl_backend_open: NULL out");
    *out = NULL;
    flowrl_backend *b = fr_calloc(1, sizeof *b);
    if (!b) return FR_ERR_NOMEM;
    fr_status s = fr_backend_open(&b->be, name ? name : "", fast, threads);
    if (s != FR_OK) {
        free(b);
        return s;
    }
    fr_backend_line(&b->be, b->line, sizeof b->line);
    *out = b;
    return FR_OK;
}

void flowrl_backend_close(flowrl_backend *b)
{
    if (!b) return;
    fr_backend_close(&b->be);
    free(b);
}

const char *flowrl_backend_describe(const flowrl_backend *b) { return b ? b->line : "backend ref"; }

fr_status fr_capi_backend(flowrl_backend *b, fr_backend *ref, fr_backend **be)
{
    if (b) {
        *be = &b->be;
        return FR_OK;
    }
    FR_TRY(fr_backend_open(ref, "ref", 0, 1));
    *be = ref;
    return FR_OK;
}

/* ---- staging host arrays through backend memory ------------------------------------------- */

enum { STAGE_MAX = 16 };

typedef struct {
    fr_backend *be;
    int n;
    void *dev[STAGE_MAX];
} stage;

static fr_status st_alloc(stage *g, size_t bytes, void **dev)
{
    if (g->n == STAGE_MAX) return fr_fail(FR_ERR_ARG, "capi: more than %d staged arrays", STAGE_MAX);
    void *p = fr_dev_alloc(g->be, bytes ? bytes : 1);
    if (!p) return FR_ERR_NOMEM;
    g->dev[g->n++] = p;
    *dev = p;
    return FR_OK;
}

/* host (may be NULL: *dev = NULL) copied into backend memory. */
static fr_status st_up(stage *g, const void *host, size_t bytes, const void **dev)
{
    *dev = NULL;
    if (!host) return FR_OK;
    void *p = NULL;
    FR_TRY(st_alloc(g, bytes, &p));
    *dev = p;
    return fr_h2d(g->be, p, host, bytes);
}

/* An output buffer in backend memory when host wants one (else *dev = NULL). */
static fr_status st_out(stage *g, const void *host, size_t bytes, float **dev)
{
    *dev = NULL;
    return host ? st_alloc(g, bytes, (void **)dev) : FR_OK;
}

static fr_status st_down(stage *g, void *host, const void *dev, size_t bytes)
{
    return host ? fr_d2h(g->be, host, dev, bytes) : FR_OK;
}

static int st_end(stage *g, fr_status s)
{
    for (int i = 0; i < g->n; i++) fr_dev_free(g->be, g->dev[i]);
    g->n = 0;
    return (int)s;
}

static fr_status check_dims(const char *fn, int64_t B, int64_t D)
{
    if (B < 1 || D < 1 || B > ((int64_t)1 << 40) / D)
        return fr_fail(FR_ERR_ARG, "%s: B = %lld, D = %lld, expected >= 1 each", fn, (long long)B, (long long)D);
    return FR_OK;
}

#define NEED(fn, ...)                                                                                \
    do {                                                                                             \
        const void *need_[] = {__VA_ARGS__};                                                         \
        for (size_t i_ = 0; i_ < sizeof need_ / sizeof need_[0]; i_++)                               \
            if (!need_[i_]) return fr_fail(FR_ERR_ARG, "%s: required argument %zu is NULL", fn, i_ + 1); \
    } while (0)

/* ---- sampler steps ------------------------------------------------------------------------- */

struct flowrl_step {
    fr_step p;
};

int flowrl_step_new(const char *kind, flowrl_step **out)
{
    NEED("flowrl_step_new", kind, out);
    *out = NULL;
    fr_sampler_kind k;
    FR_TRY(fr_sampler_from_name(kind, &k));
    flowrl_step *s = fr_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    s->p.kind = k;
    s->p.order = 1;
    *out = s;
    return FR_OK;
}

void flowrl_step_free(flowrl_step *s) { free(s); }

int flowrl_step_set(flowrl_step *s, const char *field, double value)
{
    NEED("flowrl_step_set", s, field);
    static const struct {
        const char *name;
        size_t off;
    } k_fields[] = {
        {"sigma", offsetof(fr_step, sigma)},
        {"sigma_next", offsetof(fr_step, sigma_next)},
        {"sigma1", offsetof(fr_step, sigma1)},
        {"noise", offsetof(fr_step, noise)},
        {"alpha_bar", offsetof(fr_step, alpha_bar)},
        {"alpha_bar_prev", offsetof(fr_step, alpha_bar_prev)},
        {"x0_clip", offsetof(fr_step, x0_clip)},
        {"sigma_prev", offsetof(fr_step, sigma_prev)},
    };
    if (strcmp(field, "order") == 0) {
        if (value != 1.0 && value != 2.0) return fr_fail(FR_ERR_ARG, "flowrl_step_set: order %g, expected 1 or 2", value);
        s->p.order = (int)value;
        return FR_OK;
    }
    for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0]; i++)
        if (strcmp(field, k_fields[i].name) == 0) {
            float v = (float)value;
            memcpy((char *)&s->p + k_fields[i].off, &v, sizeof v);
            return FR_OK;
        }
    return fr_fail(FR_ERR_ARG, "flowrl_step_set: unknown field '%s' (sigma, sigma_next, sigma1, noise, alpha_bar, "
                   "alpha_bar_prev, x0_clip, sigma_prev, order)", field);
}

int flowrl_step_std(const flowrl_step *s, float *std, float *std_dev)
{
    NEED("flowrl_step_std", s);
    fr_step_std sd;
    FR_TRY(fr_sampler_std(&s->p, &sd));
    if (std) *std = sd.std;
    if (std_dev) *std_dev = sd.std_dev;
    return FR_OK;
}

int flowrl_step_dmean_dv(const flowrl_step *s, float *dmean_dv)
{
    NEED("flowrl_step_dmean_dv", s, dmean_dv);
    return fr_grpo_dmean_dv(&s->p, dmean_dv);
}

int flowrl_step_kl_std(const flowrl_step *s, const char *form, float *kl_sigma)
{
    NEED("flowrl_step_kl_std", s, form, kl_sigma);
    fr_kl_form f;
    if (strcmp(form, "code") == 0) f = FR_KL_CODE;
    else if (strcmp(form, "paper") == 0) f = FR_KL_PAPER;
    else return fr_fail(FR_ERR_ARG, "flowrl_step_kl_std: form '%s', expected code or paper", form);
    return fr_kl_std(&s->p, f, kl_sigma);
}

static fr_status do_step(stage *g, const fr_step *p, int64_t B, int64_t D, const float *x, const float *mo,
                         const float *x0p, const float *xi, float *xn, float *mean, float *logp, float *std,
                         float *std_dev)
{
    size_t bd = (size_t)(B * D) * sizeof(float), b = (size_t)B * sizeof(float);
    const float *dx, *dmo, *dx0p, *dxi;
    float *dxn, *dmean, *dlogp;
    FR_TRY(st_up(g, x, bd, (const void **)&dx));
    FR_TRY(st_up(g, mo, bd, (const void **)&dmo));
    FR_TRY(st_up(g, x0p, bd, (const void **)&dx0p));
    FR_TRY(st_up(g, xi, bd, (const void **)&dxi));
    FR_TRY(st_out(g, xn, bd, &dxn));
    FR_TRY(st_out(g, mean, bd, &dmean));
    FR_TRY(st_out(g, logp, b, &dlogp));
    fr_step_std sd;
    FR_TRY(fr_sampler_step(g->be, p, B, D, dx, dmo, dx0p, dxi, dxn, dmean, dlogp, &sd));
    FR_TRY(st_down(g, xn, dxn, bd));
    FR_TRY(st_down(g, mean, dmean, bd));
    FR_TRY(st_down(g, logp, dlogp, b));
    if (std) *std = sd.std;
    if (std_dev) *std_dev = sd.std_dev;
    return FR_OK;
}

int flowrl_sampler_step(flowrl_backend *b, const flowrl_step *s, int64_t B, int64_t D, const float *x,
                        const float *model_out, const float *x0_prev, const float *xi, float *x_next,
                        float *mean, float *logp, float *std, float *std_dev)
{
    NEED("flowrl_sampler_step", s, x, model_out, x_next);
    FR_TRY(check_dims("flowrl_sampler_step", B, D));
    fr_backend ref, *be;
    FR_TRY(fr_capi_backend(b, &ref, &be));
    stage g = {be, 0, {0}};
    return st_end(&g, do_step(&g, &s->p, B, D, x, model_out, x0_prev, xi, x_next, mean, logp, std, std_dev));
}

static fr_status do_mean(stage *g, const fr_step *p, int64_t B, int64_t D, const float *x, const float *mo,
                         const float *x0p, float *mean)
{
    size_t bd = (size_t)(B * D) * sizeof(float);
    const float *dx, *dmo, *dx0p;
    float *dmean;
    FR_TRY(st_up(g, x, bd, (const void **)&dx));
    FR_TRY(st_up(g, mo, bd, (const void **)&dmo));
    FR_TRY(st_up(g, x0p, bd, (const void **)&dx0p));
    FR_TRY(st_out(g, mean, bd, &dmean));
    FR_TRY(fr_sampler_mean(g->be, p, B, D, dx, dmo, dx0p, dmean));
    return st_down(g, mean, dmean, bd);
}

int flowrl_sampler_mean(flowrl_backend *b, const flowrl_step *s, int64_t B, int64_t D, const float *x,
                        const float *model_out, const float *x0_prev, float *mean)
{
    NEED("flowrl_sampler_mean", s, x, model_out, mean);
    FR_TRY(check_dims("flowrl_sampler_mean", B, D));
    fr_backend ref, *be;
    FR_TRY(fr_capi_backend(b, &ref, &be));
    stage g = {be, 0, {0}};
    return st_end(&g, do_mean(&g, &s->p, B, D, x, model_out, x0_prev, mean));
}

static fr_status do_logprob(stage *g, const fr_step *p, int64_t B, int64_t D, const float *x, const float *mo,
                            const float *x0p, const float *xn, float *mean, float *logp)
{
    size_t bd = (size_t)(B * D) * sizeof(float), b = (size_t)B * sizeof(float);
    const float *dx = NULL, *dmo = NULL, *dx0p, *dxn;
    float *dmean, *dlogp;
    FR_TRY(st_up(g, x, bd, (const void **)&dx));
    FR_TRY(st_up(g, mo, bd, (const void **)&dmo));
    FR_TRY(st_up(g, x0p, bd, (const void **)&dx0p));
    FR_TRY(st_up(g, xn, bd, (const void **)&dxn));
    FR_TRY(st_out(g, logp, b, &dlogp));
    if (!x) { /* logprob_of: mean is the given μ */
        FR_TRY(st_up(g, mean, bd, (const void **)&dmean));
        FR_TRY(fr_sampler_logprob_of(g->be, p, B, D, dxn, dmean, dlogp));
    } else {
        FR_TRY(st_out(g, mean, bd, &dmean));
        FR_TRY(fr_sampler_logprob(g->be, p, B, D, dx, dmo, dx0p, dxn, dmean, dlogp));
        FR_TRY(st_down(g, mean, dmean, bd));
    }
    return st_down(g, logp, dlogp, b);
}

int flowrl_sampler_logprob(flowrl_backend *b, const flowrl_step *s, int64_t B, int64_t D, const float *x,
                           const float *model_out, const float *x0_prev, const float *x_next, float *mean,
                           float *logp)
{
    NEED("flowrl_sampler_logprob", s, x, model_out, x_next, logp);
    FR_TRY(check_dims("flowrl_sampler_logprob", B, D));
    fr_backend ref, *be;
    FR_TRY(fr_capi_backend(b, &ref, &be));
    stage g = {be, 0, {0}};
    return st_end(&g, do_logprob(&g, &s->p, B, D, x, model_out, x0_prev, x_next, mean, logp));
}

int flowrl_sampler_logprob_of(flowrl_backend *b, const flowrl_step *s, int64_t B, int64_t D,
                              const float *x_next, const float *mean, float *logp)
{
    NEED("flowrl_sampler_logprob_of", s, x_next, mean, logp);
    FR_TRY(check_dims("flowrl_sampler_logprob_of", B, D));
    fr_backend ref, *be;
    FR_TRY(fr_capi_backend(b, &ref, &be));
    stage g = {be, 0, {0}};
    return st_end(&g, do_logprob(&g, &s->p, B, D, NULL, NULL, NULL, x_next, (float *)mean, logp));
}

/* out = cfg(v_u, v_c, g) (sigma_x0 = 0) or x − σ·v (sigma_x0 = 1) over n elements. */
static fr_status do_pair(stage *g, int sigma_x0, int64_t n, float a, const float *p, const float *q, float *out)
{
    size_t bytes = (size_t)n * sizeof(float);
    const float *dp, *dq;
    float *dout;
    FR_TRY(st_up(g, p, bytes, (const void **)&dp));
    FR_TRY(st_up(g, q, bytes, (const void **)&dq));
    FR_TRY(st_out(g, out, bytes, &dout));
    if (sigma_x0) FR_TRY(fr_flow_x0(g->be, n, a, dp, dq, dout));
    else FR_TRY(fr_cfg_combine(g->be, n, a, dp, dq, dout));
    return st_down(g, out, dout, bytes);
}

static int pair_call(const char *fn, flowrl_backend *b, int sigma_x0, int64_t n, float a, const float *p,
                     const float *q, float *out)
{
    NEED(fn, p, q, out);
    FR_TRY(check_dims(fn, 1, n));
    fr_backend ref, *be;
    FR_TRY(fr_capi_backend(b, &ref, &be));
    stage g = {be, 0, {0}};
    return st_end(&g, do_pair(&g, sigma_x0, n, a, p, q, out));
}

int flowrl_cfg_combine(flowrl_backend *be, int64_t n, float g, const float *v_u, const float *v_c, float *out)
{
    return pair_call("flowrl_cfg_combine", be, 0, n, g, v_u, v_c, out);
}

int flowrl_flow_x0(flowrl_backend *be, int64_t n, float sigma, const float *x, const float *v, float *x0)
{
    return pair_call("flowrl_flow_x0", be, 1, n, sigma, x, v, x0);
}

/* ---- objectives ---------------------------------------------------------------------------- */

static void put_stats(const fr_ppo_stats *st, float *stats)
{
    if (!stats) return;
    float v[6] = {st->loss, st->approx_kl, st->clipfrac, st->ratio_min, st->ratio_max, st->ratio_mean};
    memcpy(stats, v, sizeof v);
}

int flowrl_ppo_policy(int64_t B, double clip_range, float adv_clip_max, const float *logp_new,
                      const float *logp_old, const float *adv, float gout, float *grad_logp_new, float *ratio,
                      float *stats)
{
    NEED("flowrl_ppo_policy", logp_new, logp_old, adv);
    fr_ppo_params prm = {clip_range, adv_clip_max};
    fr_ppo_stats st;
    FR_TRY(fr_ppo_policy(B, &prm, logp_new, logp_old, adv, gout, grad_logp_new, ratio, &st));
    put_stats(&st, stats);
    return FR_OK;
}

static fr_status do_logp_bwd(stage *g, const fr_step *p, int64_t B, int64_t D, const float *xn,
                             const float *mean, const float *glogp, float *gmean)
{
    size_t bd = (size_t)(B * D) * sizeof(float), b = (size_t)B * sizeof(float);
    const float *dxn, *dmean, *dg;
    float *dgm;
    FR_TRY(st_up(g, xn, bd, (const void **)&dxn));
    FR_TRY(st_up(g, mean, bd, (const void **)&dmean));
    FR_TRY(st_up(g, glogp, b, (const void **)&dg));
    FR_TRY(st_out(g, gmean, bd, &dgm));
    FR_TRY(fr_logp_backward(g->be, p, B, D, dxn, dmean, dg, dgm, 0));
    return st_down(g, gmean, dgm, bd);
}

int flowrl_logp_backward(flowrl_backend *b, const flowrl_step *s, int64_t B, int64_t D, const float *x_next,
                         const float *mean, const float *g_logp, float *grad_mean)
{
    NEED("flowrl_logp_backward", s, x_next, mean, g_logp, grad_mean);
    FR_TRY(check_dims("flowrl_logp_backward", B, D));
    fr_backend ref, *be;
    FR_TRY(fr_capi_backend(b, &ref, &be));
    stage g = {be, 0, {0}};
    return st_end(&g, do_logp_bwd(&g, &s->p, B, D, x_next, mean, g_logp, grad_mean));
}

static fr_status do_kl(stage *g, int64_t B, int64_t D, float kl_sigma, const float *mean, const float *mref,
                       float gout, float *loss, float *gmean)
{
    size_t bd = (size_t)(B * D) * sizeof(float);
    const float *dmean, *dref;
    float *dgm;
    FR_TRY(st_up(g, mean, bd, (const void **)&dmean));
    FR_TRY(st_up(g, mref, bd, (const void **)&dref));
    FR_TRY(st_out(g, gmean, bd, &dgm));
    FR_TRY(fr_kl_loss(g->be, B, D, kl_sigma, dmean, dref, gout, loss, dgm, 0));
    return st_down(g, gmean, dgm, bd);
}

int flowrl_kl_loss(flowrl_backend *b, int64_t B, int64_t D, float kl_sigma, const float *mean,
                   const float *mean_ref, float gout, float *loss, float *grad_mean)
{
    NEED("flowrl_kl_loss", mean, mean_ref, loss);
    FR_TRY(check_dims("flowrl_kl_loss", B, D));
    fr_backend ref, *be;
    FR_TRY(fr_capi_backend(b, &ref, &be));
    stage g = {be, 0, {0}};
    return st_end(&g, do_kl(&g, B, D, kl_sigma, mean, mean_ref, gout, loss, grad_mean));
}

static fr_status do_guard(stage *g, const fr_step *p, int64_t B, int64_t D, fr_guard_bias mode,
                          const fr_ppo_params *prm, const float *xn, const float *mean, const float *mold,
                          const float *logp_new, const float *logp_old, const float *adv, float gout,
                          float *gmean, float *ratio, float *bias, float *stats)
{
    size_t bd = (size_t)(B * D) * sizeof(float);
    const float *dxn, *dmean, *dmold;
    float *dgm;
    FR_TRY(st_up(g, xn, bd, (const void **)&dxn));
    FR_TRY(st_up(g, mean, bd, (const void **)&dmean));
    FR_TRY(st_up(g, mold, bd, (const void **)&dmold));
    FR_TRY(st_out(g, gmean, bd, &dgm));
    fr_ppo_stats st;
    FR_TRY(fr_guard_policy(g->be, p, B, D, mode, prm, dxn, dmean, dmold, logp_new, logp_old, adv, gout, dgm, 0,
                           ratio, bias, &st));
    put_stats(&st, stats);
    return st_down(g, gmean, dgm, bd);
}

int flowrl_guard_policy(flowrl_backend *b, const flowrl_step *s, int64_t B, int64_t D, const char *bias_mode,
                        double clip_range, float adv_clip_max, const float *x_next, const float *mean,
                        const float *mean_old, const float *logp_new, const float *logp_old, const float *adv,
                        float gout, float *grad_mean, float *ratio, float *bias, float *stats)
{
    NEED("flowrl_guard_policy", s, bias_mode, x_next, mean, mean_old, logp_new, logp_old, adv);
    FR_TRY(check_dims("flowrl_guard_policy", B, D));
    fr_guard_bias mode;
    if (strcmp(bias_mode, "batch") == 0) mode = FR_GUARD_BIAS_BATCH;
    else if (strcmp(bias_mode, "sample") == 0) mode = FR_GUARD_BIAS_SAMPLE;
    else return fr_fail(FR_ERR_ARG, "flowrl_guard_policy: bias mode '%s', expected batch or sample", bias_mode);
    fr_ppo_params prm = {clip_range, adv_clip_max};
    fr_backend ref, *be;
    FR_TRY(fr_capi_backend(b, &ref, &be));
    stage g = {be, 0, {0}};
    return st_end(&g, do_guard(&g, &s->p, B, D, mode, &prm, x_next, mean, mean_old, logp_new, logp_old, adv,
                               gout, grad_mean, ratio, bias, stats));
}

/* ---- advantages ---------------------------------------------------------------------------- */

int flowrl_adv_mean_std(int64_t n, const float *x, float *mean, float *std)
{
    NEED("flowrl_adv_mean_std", x, mean, std);
    return fr_adv_mean_std(x, n, mean, std);
}

int flowrl_adv_per_prompt(int64_t B, const float *rewards, const int64_t *group, int global_std, float eps,
                          float *adv)
{
    return fr_adv_per_prompt(B, rewards, group, global_std, eps, adv);
}

int flowrl_adv_batch(int64_t B, const float *rewards, float eps, float *adv)
{
    return fr_adv_batch(B, rewards, eps, adv);
}

int flowrl_adv_filter_zero(int64_t B, const float *adv, int64_t num_batches, uint32_t seed, uint32_t purpose,
                           uint32_t c0, uint32_t c1, uint8_t *keep, int64_t *kept)
{
    int64_t k;
    FR_TRY(fr_adv_filter_zero(B, adv, num_batches, seed, purpose, c0, c1, keep, &k));
    if (kept) *kept = k;
    return FR_OK;
}

/* ---- σ grids and schedules ----------------------------------------------------------------- */

int flowrl_sigmas_diffusers(int64_t T, double shift, float *sigmas)
{
    NEED("flowrl_sigmas_diffusers", sigmas);
    return fr_sigmas_diffusers(T, shift, sigmas);
}

int flowrl_sigmas_linspace(int64_t T, double shift, float *sigmas)
{
    NEED("flowrl_sigmas_linspace", sigmas);
    return fr_sigmas_linspace(T, shift, sigmas);
}

int flowrl_sigmas_shifted_linspace(double u_start, double u_end, int64_t n, double shift, float *sigmas)
{
    NEED("flowrl_sigmas_shifted_linspace", sigmas);
    return fr_sigmas_shifted_linspace(u_start, u_end, n, shift, sigmas);
}

int flowrl_timesteps(const char *kind, int64_t n, const float *sigmas, float *t)
{
    NEED("flowrl_timesteps", kind, sigmas, t);
    int q = strcmp(kind, "quantized") == 0;
    if (!q && strcmp(kind, "diffusers") != 0)
        return fr_fail(FR_ERR_ARG, "flowrl_timesteps: kind '%s', expected quantized or diffusers", kind);
    if (n < 0) return fr_fail(FR_ERR_ARG, "flowrl_timesteps: n = %lld", (long long)n);
    for (int64_t i = 0; i < n; i++) t[i] = q ? fr_timestep_quantized(sigmas[i]) : fr_timestep_diffusers(sigmas[i]);
    return FR_OK;
}

int flowrl_betas(const char *kind, int64_t n, double a, double b, float *betas)
{
    NEED("flowrl_betas", kind, betas);
    if (strcmp(kind, "linear") == 0) return fr_betas_linear(n, a, b, betas);
    if (strcmp(kind, "scaled_linear") == 0) return fr_betas_scaled_linear(n, a, b, betas);
    if (strcmp(kind, "cosine") == 0) return fr_betas_cosine(n, a, b, betas);
    return fr_fail(FR_ERR_ARG, "flowrl_betas: kind '%s', expected linear, scaled_linear or cosine", kind);
}

int flowrl_alphas_cumprod(int64_t n, const float *betas, float *alpha_bar)
{
    NEED("flowrl_alphas_cumprod", betas, alpha_bar);
    return fr_alphas_cumprod(n, betas, alpha_bar);
}

int flowrl_ddim_timesteps(int64_t T, int64_t n_train, int64_t offset, int64_t *t)
{
    NEED("flowrl_ddim_timesteps", t);
    return fr_ddim_timesteps(T, n_train, offset, t);
}

/* ---- Philox ------------------------------------------------------------------------------- */

int flowrl_rng(const char *dist, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1, uint32_t c2,
               int64_t start, int64_t n, void *out)
{
    NEED("flowrl_rng", dist, out);
    if (start < 0 || n < 0 || start + n > ((int64_t)1 << 32))
        return fr_fail(FR_ERR_ARG, "flowrl_rng: elements [%lld, %lld) outside [0, 2^32)", (long long)start,
                       (long long)(start + n));
    int kind = strcmp(dist, "uniform") == 0 ? 0 : strcmp(dist, "normal") == 0 ? 1 : strcmp(dist, "u32") == 0 ? 2 : -1;
    if (kind < 0) return fr_fail(FR_ERR_ARG, "flowrl_rng: distribution '%s', expected uniform, normal or u32", dist);
    for (int64_t i = 0; i < n; i++) {
        uint32_t idx = (uint32_t)(start + i);
        if (kind == 2) ((uint32_t *)out)[i] = fr_rng_u32(seed, purpose, c0, c1, c2, idx);
        else if (kind == 1) ((float *)out)[i] = fr_rng_normal(seed, purpose, c0, c1, c2, idx);
        else ((float *)out)[i] = fr_rng_uniform(seed, purpose, c0, c1, c2, idx);
    }
    return FR_OK;
}

/* ---- transcendental functions -------------------------------------------------------------- */

static const struct {
    const char *name;
    float (*fn)(float);
} k_math[] = {
    {"exp", fr_expf},   {"expm1", fr_expm1f},     {"log", fr_logf},         {"log1p", fr_log1pf},
    {"sin", fr_sinf},   {"cos", fr_cosf},         {"tanh", fr_tanhf},       {"sigmoid", fr_sigmoidf},
    {"softplus", fr_softplusf}, {"sqrt", fr_sqrtf},
};
#define N_MATH ((int64_t)(sizeof k_math / sizeof k_math[0]))

const char *flowrl_math_name(int64_t i) { return i >= 0 && i < N_MATH ? k_math[i].name : NULL; }

int flowrl_math(const char *fn, int64_t n, const float *x, float *out)
{
    NEED("flowrl_math", fn, x, out);
    if (n < 0) return fr_fail(FR_ERR_ARG, "flowrl_math: n = %lld", (long long)n);
    for (int64_t k = 0; k < N_MATH; k++)
        if (strcmp(fn, k_math[k].name) == 0) {
            for (int64_t i = 0; i < n; i++) out[i] = k_math[k].fn(x[i]);
            return FR_OK;
        }
    return fr_fail(FR_ERR_ARG, "flowrl_math: unknown function '%s' (exp, expm1, log, log1p, sin, cos, tanh, "
                   "sigmoid, softplus, sqrt)", fn);
}
