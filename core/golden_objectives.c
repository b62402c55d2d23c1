/* Golden cases of the Flow-GRPO family of objectives (flowrl/grpo.h, docs/algorithms/flow-grpo.md §2,
 * §3; CPS ratio §2 with docs/algorithms/samplers.md §4): one trained step j of a batch, chained as a
 * training loop chains it (grpo.h "How a training loop chains these"), from the model
 * output v_θ to the gradient w.r.t. v_θ, through the op entries of the sampler and of the
 * trajectory objectives (sampler_logprob, logp_backward, the KL and Guard entries, scale).
 *
 * The rollout quantities (x_{j+1}, μ_old, logp_old) are inputs formed at generation by the
 * ref sampler step with the OLD model output v_old = in.v + in.dv and noise in.xi, so the
 * ratios sit near 1, some inside the clip band and some outside. in.xi, in.dv and
 * in.dv_ref are generation inputs: the computation does not read them. */
#include <stdio.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/grpo.h"
#include "flowrl/schedule.h"
#include "flowrl/traj_objective.h"

enum { OB = 8, OD = 11 };

typedef enum { OBJ_PPO = 0, OBJ_PPO_KL, OBJ_GUARD_BATCH, OBJ_GUARD_SAMPLE, OBJ_CPS, OBJ_CHUNK } obj_kind;

static fr_sampler_kind obj_sampler(int arg) { return arg == OBJ_CPS ? FR_SAMPLER_CPS : FR_SAMPLER_SDE; }
static int obj_guard(int arg) { return arg == OBJ_GUARD_BATCH || arg == OBJ_GUARD_SAMPLE; }

static fr_status obj_in(const fr_golden_case *c, fr_golden_in *g)
{
    fr_sampler_kind k = obj_sampler(c->arg);
    int64_t sh[2] = {OB, OD}, b[1] = {OB};
    float s[11];
    FR_TRY(fr_sigmas_diffusers(10, FR_DEFAULT_SHIFT, s));
    FR_TRY(fr_gi_param_str(g, "sampler", fr_sampler_name(k)));
    FR_TRY(fr_gi_note(g, "grid", "diffusers grid (T = 10, shift 3), step 3: sigma = s[3], sigma_next = s[4]"));
    FR_TRY(fr_gi_scalar(g, "sigma", s[3]));
    FR_TRY(fr_gi_scalar(g, "sigma_next", s[4]));
    FR_TRY(fr_gi_scalar(g, "sigma1", s[1]));
    FR_TRY(fr_gi_scalar(g, "noise", k == FR_SAMPLER_CPS ? 0.8f : 0.7f));
    /* ε of FG (1e-4), GRPO-Guard (2e-6), CPS (1e-5), docs/algorithms/flow-grpo.md §2, §3 */
    double clip = obj_guard(c->arg) ? 2e-6 : k == FR_SAMPLER_CPS ? 1e-5 : 1e-4;
    FR_TRY(fr_gi_scalar_f64(g, "clip_range", clip));
    FR_TRY(fr_gi_scalar(g, "adv_clip_max", FR_GRPO_ADV_CLIP_MAX));
    int64_t div;
    FR_TRY(fr_grpo_accum_divisor(2, 9, &div));
    FR_TRY(fr_gi_scalar(g, "gout", 1.0f / (float)div));
    FR_TRY(fr_gi_note(g, "gout", "1/fr_grpo_accum_divisor(grad_accum 2, n_steps 9) = 1/18"));

    float *x, *v, *xi, *dv, *adv;
    FR_TRY(fr_gi_normal(g, "x", 2, sh, 1.0f, &x));
    FR_TRY(fr_gi_normal(g, "v", 2, sh, 1.0f, &v));
    FR_TRY(fr_gi_normal(g, "xi", 2, sh, 1.0f, &xi));
    /* per-sample scale of the policy change: from well inside to well outside the clip band */
    float dscale = obj_guard(c->arg) ? 1.5e-4f : k == FR_SAMPLER_CPS ? 3e-4f : 3e-3f;
    FR_TRY(fr_gi_normal(g, "dv", 2, sh, dscale, &dv));
    FR_TRY(fr_gi_normal(g, "adv", 1, b, 2.5f, &adv));
    adv[0] = 7.0f; /* beyond ±adv_clip_max: exercises the clamp */
    FR_TRY(fr_st_set_meta(g->f, "derived.in.adv", "drawn, then element 0 set to 7 (beyond the clamp at 5)"));

    fr_step p;
    FR_TRY(fr_golden_read_step(g->f, k, &p));
    float v_old[OB * OD], xn[OB * OD], mu_old[OB * OD], logp_old[OB];
    for (int i = 0; i < OB * OD; i++) v_old[i] = v[i] + dv[i];
    fr_backend ref; /* inputs are ref's, in host memory */
    FR_TRY(fr_backend_open(&ref, "ref", 0, 1));
    FR_TRY(fr_sampler_step(&ref, &p, OB, OD, x, v_old, NULL, xi, xn, mu_old, logp_old, NULL));
    const char *how = "fr_sampler_step of the case's step with model_out in.v + in.dv, noise in.xi";
    FR_TRY(fr_gi_tensor(g, "x_next", FR_F32, 2, sh, xn, how));
    FR_TRY(fr_gi_tensor(g, "logp_old", FR_F32, 1, b, logp_old, how));
    if (obj_guard(c->arg)) {
        FR_TRY(fr_gi_tensor(g, "mean_old", FR_F32, 2, sh, mu_old, how));
        FR_TRY(fr_gi_param_str(g, "guard_bias", c->arg == OBJ_GUARD_BATCH ? "batch" : "sample"));
    }
    if (c->arg == OBJ_CHUNK) {
        float *rest;
        FR_TRY(fr_gi_normal(g, "lr_rest", 1, b, 2e-3f, &rest));
        FR_TRY(fr_gi_note(g, "lr_rest", "the sum of the chunk's other two steps' log-ratios per sample"));
        FR_TRY(fr_gi_scalar(g, "chunk_size", 3.0f));
    }
    if (c->arg == OBJ_PPO_KL) {
        float *dvr, v_ref[OB * OD], mu_ref[OB * OD];
        FR_TRY(fr_gi_normal(g, "dv_ref", 2, sh, 0.05f, &dvr));
        for (int i = 0; i < OB * OD; i++) v_ref[i] = v[i] + dvr[i];
        FR_TRY(fr_sampler_mean(&ref, &p, OB, OD, x, v_ref, NULL, mu_ref));
        FR_TRY(fr_gi_tensor(g, "mean_ref", FR_F32, 2, sh, mu_ref,
                            "fr_sampler_mean of the case's step with model_out in.v + in.dv_ref"));
        FR_TRY(fr_gi_scalar(g, "beta", 0.04f));
        FR_TRY(fr_gi_param_str(g, "kl_form", "code"));
    }
    return FR_OK;
}

static fr_status out_stats(fr_st_file *out, const fr_ppo_stats *st)
{
    FR_TRY(fr_go_out_scalar(out, "loss_policy", st->loss));
    FR_TRY(fr_go_out_scalar(out, "approx_kl", st->approx_kl));
    FR_TRY(fr_go_out_scalar(out, "clipfrac", st->clipfrac));
    FR_TRY(fr_go_out_scalar(out, "ratio_min", st->ratio_min));
    FR_TRY(fr_go_out_scalar(out, "ratio_max", st->ratio_max));
    return fr_go_out_scalar(out, "ratio_mean", st->ratio_mean);
}

/* Memory as a training loop holds it (grpo.h "Memory"): x, v, x_{j+1}, μ_θ, μ_old, μ_ref and
 * g_μ, g_v in backend memory; the PPO core's per-sample values on the host (logp_new read back
 * once, g_logp uploaded once). */
/* g_v = g_μ·dμ/dv (the scale entry, as the trainer's micro-step): outputs dmean_dv and grad_v
 * (sh) from gmean (backend). */
static fr_status out_grad_v(fr_golden_dev *d, fr_st_file *out, const fr_step *p, const int64_t sh[2],
                            const float *gmean)
{
    float dmdv, *gv;
    FR_TRY(fr_grpo_dmean_dv(p, &dmdv));
    FR_TRY(fr_go_out_scalar(out, "dmean_dv", dmdv));
    FR_TRY(fr_gd_out_f32(d, out, "grad_v", 2, sh, NULL, &gv));
    d->be->ops->scale(sh[0] * sh[1], dmdv, gmean, gv);
    return FR_OK;
}

static fr_status obj_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                         fr_st_file *out)
{
    fr_sampler_kind k = obj_sampler(c->arg);
    fr_step p;
    FR_TRY(fr_golden_read_step(in, k, &p));
    int64_t sh[2];
    const float *x, *v, *xn, *logp_old, *adv, *mu_old = NULL, *mu_ref = NULL;
    fr_ppo_params prm;
    float gout;
    FR_TRY(fr_gd_f32(d, in, "x", 2, sh, &x));
    FR_TRY(fr_gd_exact(d, in, "v", FR_F32, 2, sh, (const void **)&v));
    FR_TRY(fr_gd_exact(d, in, "x_next", FR_F32, 2, sh, (const void **)&xn));
    FR_TRY(fr_go_exact(in, "logp_old", FR_F32, 1, sh, (const void **)&logp_old));
    FR_TRY(fr_go_exact(in, "adv", FR_F32, 1, sh, (const void **)&adv));
    FR_TRY(fr_go_scalar_f64(in, "clip_range", &prm.clip_range));
    FR_TRY(fr_go_scalar(in, "adv_clip_max", &prm.adv_clip_max));
    FR_TRY(fr_go_scalar(in, "gout", &gout));
    int64_t B = sh[0], D = sh[1], bs[1] = {B};

    float *mean, *logp_dev, *logp, *ratio, *gmean;
    FR_TRY(fr_gd_out_f32(d, out, "mean", 2, sh, NULL, &mean));
    FR_TRY(fr_gd_out_f32(d, out, "logp_new", 1, bs, NULL, &logp_dev));
    FR_TRY(fr_go_out_f32(out, "ratio", 1, bs, &ratio));
    /* 1. μ_θ, logp_new (grpo.h chain step 1) */
    FR_TRY(fr_sampler_logprob(d->be, &p, B, D, x, v, NULL, xn, mean, logp_dev));
    FR_TRY(fr_gd_read(d, logp_dev, (void **)&logp));
    fr_ppo_stats st;
    if (c->arg == OBJ_CHUNK) {
        /* Chunk-GRPO (flow-grpo.md §8): the chunk's mean log-ratio as the pre-pass forms it, then
         * the fr_traj_chunk objective's loss (ratio exp(lr), clip, 1/cs of the gradient) */
        const float *rest;
        float cs, *lr, *glogp_dev;
        FR_TRY(fr_go_exact(in, "lr_rest", FR_F32, 1, bs, (const void **)&rest));
        FR_TRY(fr_go_scalar(in, "chunk_size", &cs));
        FR_TRY(fr_go_out_f32(out, "chunk_lr", 1, bs, &lr));
        for (int64_t i = 0; i < B; i++) lr[i] = (rest[i] + (logp[i] - logp_old[i])) / cs;
        int64_t rows[OB], chunk[1] = {0}, size[1] = {(int64_t)cs};
        float scratch[OB];
        for (int64_t i = 0; i < B; i++) rows[i] = i;
        FR_TRY(fr_gd_out_f32(d, out, "grad_mean", 2, sh, NULL, &gmean));
        FR_TRY(fr_gd_out_f32(d, out, "grad_logp_new", 1, bs, NULL, &glogp_dev));
        const fr_traj_chunk_params cp = {prm, B, chunk, size, lr};
        const fr_traj_batch tb = {B, D, p, x, xn, NULL, logp_old, adv, mean, logp, NULL, scratch, glogp_dev, rows, NULL};
        fr_traj_stats ts;
        FR_TRY(fr_traj_chunk.loss(d->be, &tb, 0, &cp, gout, gmean, ratio, &ts));
        st = (fr_ppo_stats){ts.obj, ts.approx_kl, ts.clipfrac, ts.ratio_min, ts.ratio_max, ts.ratio_mean};
    } else if (obj_guard(c->arg)) {
        const char *mode = fr_st_get_meta(in, "param.guard_bias");
        int sample = mode && strcmp(mode, "sample") == 0;
        if (!mode || (!sample && strcmp(mode, "batch") != 0))
            return fr_fail(FR_ERR_FORMAT, "golden %s: param.guard_bias must be batch or sample", c->name);
        float *bias;
        FR_TRY(fr_gd_exact(d, in, "mean_old", FR_F32, 2, sh, (const void **)&mu_old));
        FR_TRY(fr_go_out_f32(out, "bias", 1, bs, &bias));
        FR_TRY(fr_gd_out_f32(d, out, "grad_mean", 2, sh, NULL, &gmean));
        /* 2. GRPO-Guard term with its gradient w.r.t. μ_θ */
        FR_TRY(fr_guard_policy(d->be, &p, B, D, sample ? FR_GUARD_BIAS_SAMPLE : FR_GUARD_BIAS_BATCH,
                               &prm, xn, mean, mu_old, logp, logp_old, adv, gout, gmean, 0,
                               ratio, bias, &st));
    } else {
        float *glogp, *glogp_dev;
        FR_TRY(fr_go_out_f32(out, "grad_logp_new", 1, bs, &glogp));
        FR_TRY(fr_gd_out_f32(d, out, "grad_mean", 2, sh, NULL, &gmean));
        /* 2. PPO-clip term, 3. through the log-prob to μ_θ */
        FR_TRY(fr_ppo_policy(B, &prm, logp, logp_old, adv, gout, glogp, ratio, &st));
        FR_TRY(fr_gd_up(d, glogp, (size_t)B * sizeof *glogp, (void **)&glogp_dev));
        FR_TRY(fr_logp_backward(d->be, &p, B, D, xn, mean, glogp_dev, gmean, 0));
    }
    FR_TRY(out_stats(out, &st));
    if (c->arg == OBJ_PPO_KL) {
        float beta, kl_sigma, kl;
        const char *form = fr_st_get_meta(in, "param.kl_form");
        if (!form || strcmp(form, "code") != 0)
            return fr_fail(FR_ERR_FORMAT, "golden %s: param.kl_form must be 'code'", c->name);
        FR_TRY(fr_gd_exact(d, in, "mean_ref", FR_F32, 2, sh, (const void **)&mu_ref));
        FR_TRY(fr_go_scalar(in, "beta", &beta));
        /* 4. β·KL to the reference model, its gradient added to g_μ */
        FR_TRY(fr_kl_std(&p, FR_KL_CODE, &kl_sigma));
        FR_TRY(fr_kl_loss(d->be, B, D, kl_sigma, mean, mu_ref, gout * beta, &kl, gmean, 1));
        FR_TRY(fr_go_out_scalar(out, "kl_sigma", kl_sigma));
        FR_TRY(fr_go_out_scalar(out, "loss_kl", kl));
    }
    /* 5. g_v = g_μ·dμ/dv */
    return out_grad_v(d, out, &p, sh, gmean);
}

/* ---- obj.pair_pref: D3PO's / SPO's pair objective against the frozen reference ------------
 * (fr_traj_pair_pref, docs/algorithms/d3po.md §2) on the DDIM η 1 step of sampler.ddim (SD's
 * betas, 50 steps, step 10): 4 pairs (rows 2i, 2i+1), preferences (+1, −1), (−1, +1), a tie,
 * (+1, −1); the policy's output in.v, the reference's in.v + in.dv_ref with a per-row scale
 * that puts some ratios inside the band [0.9, 1.1] and some outside. x_{j+1} is the reference's
 * step with noise in.xi (as a D3PO rollout of the base). */
enum { PB = 8, PD = 11 };

static fr_status pair_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    enum { NT = FR_NUM_TRAIN_TIMESTEPS, T = 50 };
    static float betas[NT], ab[NT];
    int64_t ts[T], sh[2] = {PB, PD}, b[1] = {PB};
    FR_TRY(fr_betas_scaled_linear(NT, 0.00085, 0.012, betas));
    FR_TRY(fr_alphas_cumprod(NT, betas, ab));
    FR_TRY(fr_ddim_timesteps(T, NT, 1, ts));
    const int64_t t = ts[10], tp = fr_ddim_prev_timestep(t, T, NT);
    FR_TRY(fr_gi_param_str(g, "sampler", fr_sampler_name(FR_SAMPLER_DDIM)));
    FR_TRY(fr_gi_note(g, "grid", "scaled_linear betas (0.00085, 0.012), 50 DDIM steps, step 10 (as sampler.ddim)"));
    FR_TRY(fr_gi_scalar(g, "alpha_bar", ab[t]));
    FR_TRY(fr_gi_scalar(g, "alpha_bar_prev", ab[tp]));
    FR_TRY(fr_gi_scalar(g, "x0_clip", 0.0f));
    FR_TRY(fr_gi_scalar(g, "noise", 1.0f)); /* η of D3PO */
    FR_TRY(fr_gi_scalar(g, "beta", 0.1f));   /* D3PO config/base.py train.beta, train.eps */
    FR_TRY(fr_gi_scalar_f64(g, "eps", 0.1));
    FR_TRY(fr_gi_scalar(g, "gout", 1.0f / 6.0f));
    FR_TRY(fr_gi_note(g, "gout", "1/6: a micro-step's share of an update (e.g. 1 batch x 6 trained steps)"));
    const float h[PB] = {1, -1, -1, 1, 0, 0, 1, -1};
    FR_TRY(fr_gi_tensor(g, "h", FR_F32, 1, b, h, "the pairs' preferences (rows 2i, 2i+1)"));
    float *x, *v, *xi, *dvr;
    FR_TRY(fr_gi_normal(g, "x", 2, sh, 1.0f, &x));
    FR_TRY(fr_gi_normal(g, "v", 2, sh, 1.0f, &v));
    FR_TRY(fr_gi_normal(g, "xi", 2, sh, 1.0f, &xi));
    FR_TRY(fr_gi_normal(g, "dv_ref", 2, sh, 1.0f, &dvr));
    /* per-row scale of the reference's difference: well inside to well outside the band */
    const float scale[PB] = {0.02f, 0.05f, 0.1f, 1.5f, 0.3f, 0.01f, 4.0f, 0.03f};
    for (int i = 0; i < PB; i++)
        for (int k = 0; k < PD; k++) dvr[i * PD + k] *= scale[i];
    FR_TRY(fr_st_set_meta(g->f, "derived.in.dv_ref", "drawn N(0, 1), then row i scaled by "
                                                     "(0.02, 0.05, 0.1, 1.5, 0.3, 0.01, 4, 0.03)[i]"));
    fr_step p;
    FR_TRY(fr_golden_read_step(g->f, FR_SAMPLER_DDIM, &p));
    float v_ref[PB * PD], xn[PB * PD];
    for (int i = 0; i < PB * PD; i++) v_ref[i] = v[i] + dvr[i];
    fr_backend ref; /* inputs are ref's, in host memory */
    FR_TRY(fr_backend_open(&ref, "ref", 0, 1));
    FR_TRY(fr_sampler_step(&ref, &p, PB, PD, x, v_ref, NULL, xi, xn, NULL, NULL, NULL));
    return fr_gi_tensor(g, "x_next", FR_F32, 2, sh, xn,
                        "fr_sampler_step of the case's step with model_out in.v + in.dv_ref, noise in.xi");
}

/* As fr_traj_micro_step chains it: μ_θ, logp_θ and μ_ref, logp_ref by fr_sampler_logprob,
 * the objective (per-row dL/dlogp up once, the logp backward), g_v = g_μ·dμ/dv. */
static fr_status pair_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    fr_step p;
    FR_TRY(fr_golden_read_step(in, FR_SAMPLER_DDIM, &p));
    int64_t sh[2];
    const float *x, *v, *dvr, *xn, *h;
    fr_traj_pair_params prm;
    float gout;
    FR_TRY(fr_gd_f32(d, in, "x", 2, sh, &x));
    FR_TRY(fr_gd_exact(d, in, "v", FR_F32, 2, sh, (const void **)&v));
    FR_TRY(fr_gd_exact(d, in, "x_next", FR_F32, 2, sh, (const void **)&xn));
    const float *dvr_h;
    FR_TRY(fr_go_exact(in, "dv_ref", FR_F32, 2, sh, (const void **)&dvr_h));
    const int64_t B = sh[0], D = sh[1], bs[1] = {B}, ps[1] = {B / 2};
    if (B != PB || D != PD) return fr_fail(FR_ERR_FORMAT, "golden %s: in.x is (%lld, %lld), expected (%d, %d)", c->name,
                                           (long long)B, (long long)D, PB, PD);
    FR_TRY(fr_go_exact(in, "h", FR_F32, 1, bs, (const void **)&h));
    FR_TRY(fr_go_scalar(in, "beta", &prm.beta));
    FR_TRY(fr_go_scalar_f64(in, "eps", &prm.eps));
    FR_TRY(fr_go_scalar(in, "gout", &gout));
    prm.h = h;
    /* the reference's output v + dv_ref, formed on the host as the generator did, uploaded */
    float v_ref[PB * PD];
    const float *v_h;
    FR_TRY(fr_go_exact(in, "v", FR_F32, 2, sh, (const void **)&v_h));
    for (int64_t i = 0; i < B * D; i++) v_ref[i] = v_h[i] + dvr_h[i];
    FR_TRY(fr_gd_up(d, v_ref, sizeof v_ref, (void **)&dvr));

    float *mean, *mean_ref, *lp_dev, *lq_dev, *lp, *lq, *ratio, *glogp, *glogp_dev, *gmean, *term;
    FR_TRY(fr_gd_out_f32(d, out, "mean", 2, sh, NULL, &mean));
    FR_TRY(fr_gd_out_f32(d, out, "mean_ref", 2, sh, NULL, &mean_ref));
    FR_TRY(fr_gd_out_f32(d, out, "logp_new", 1, bs, NULL, &lp_dev));
    FR_TRY(fr_gd_out_f32(d, out, "logp_ref", 1, bs, NULL, &lq_dev));
    FR_TRY(fr_sampler_logprob(d->be, &p, B, D, x, v, NULL, xn, mean, lp_dev));
    FR_TRY(fr_sampler_logprob(d->be, &p, B, D, x, dvr, NULL, xn, mean_ref, lq_dev));
    FR_TRY(fr_gd_read(d, lp_dev, (void **)&lp));
    FR_TRY(fr_gd_read(d, lq_dev, (void **)&lq));
    FR_TRY(fr_go_out_f32(out, "ratio", 1, bs, &ratio));
    FR_TRY(fr_go_out_f32(out, "grad_logp_new", 1, bs, &glogp));
    FR_TRY(fr_go_out_f32(out, "term", 1, ps, &term));
    FR_TRY(fr_gd_out_f32(d, out, "grad_mean", 2, sh, NULL, &gmean));
    FR_TRY(fr_gd_alloc(d, (size_t)B * sizeof(float), (void **)&glogp_dev));
    int64_t rows[PB];
    for (int64_t i = 0; i < B; i++) rows[i] = i;
    const fr_traj_batch tb = {B, D, p, x, xn, NULL, NULL, NULL, mean, lp, NULL, glogp, glogp_dev, rows, lq};
    fr_traj_stats ts;
    FR_TRY(fr_traj_pair_pref.loss(d->be, &tb, 0, &prm, gout, gmean, ratio, &ts));
    for (int64_t i = 0; i < B / 2; i++) {
        float r[2], g[2];
        term[i] = fr_traj_pair_term(&prm, lp + 2 * i, lq + 2 * i, h + 2 * i, r, g);
    }
    FR_TRY(fr_go_out_scalar(out, "loss", ts.obj));
    FR_TRY(fr_go_out_scalar(out, "approx_kl", ts.approx_kl));
    FR_TRY(fr_go_out_scalar(out, "clipfrac", ts.clipfrac));
    return out_grad_v(d, out, &p, sh, gmean);
}

/* --fast keeps the canonical entries these cases run (the vendor kernels replace GEMM, layer
 * norm and activations only), so the fast table stays bitwise here. */
#define T_CANON {0.0f, 0.0f}
#define OBJ(nm, arg, what) {"obj." nm, what, FR_GOLDEN_ALL_OPS, arg, T_CANON, obj_in, obj_run}

const fr_golden_case fr_golden_cases_objectives[] = {
    OBJ("flow_grpo", OBJ_PPO, "Flow-GRPO step j: sde log-prob, PPO-clip 1e-4, grads to mu and v, no KL (§2)"),
    OBJ("flow_grpo_kl", OBJ_PPO_KL, "Flow-GRPO step j with beta 0.04 KL to a reference mean, code form (§2)"),
    OBJ("guard_batch", OBJ_GUARD_BATCH, "GRPO-Guard step j, batch-wide bias as the public code (§3)"),
    OBJ("guard_sample", OBJ_GUARD_SAMPLE, "GRPO-Guard step j, per-sample bias (§3)"),
    OBJ("cps_ratio", OBJ_CPS, "CPS step j: constant-free log-prob ratio, PPO-clip 1e-5 (§2, samplers §4)"),
    OBJ("chunk", OBJ_CHUNK, "Chunk-GRPO step j of a 3-step chunk: geometric-mean chunk ratio, PPO-clip 1e-4, 1/3 of the gradient (§8)"),
    {"obj.pair_pref", "D3PO/SPO pair objective on a DDIM eta 1 step: 4 pairs (one tie), clamped ratios to the frozen reference, beta 0.1, eps 0.1 (d3po.md §2)",
     FR_GOLDEN_ALL_OPS, 0, T_CANON, pair_in, pair_run},
};
const size_t fr_golden_n_objectives =
    sizeof fr_golden_cases_objectives / sizeof fr_golden_cases_objectives[0];
