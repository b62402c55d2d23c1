/* The diffusion-sampler trainer's iteration, evaluation and checkpoints (flowrl/gfn_diffusion.h;
 * docs/algorithms/gfn-diffusion.md §2-§4, §8; GFNOrg/gfn-diffusion@255b499 energy_sampling/train.py
 * train_step, bwd_train_step, evaluations.py): the forward or backward batch, the loss's gradient
 * through the networks (core/gfn_diffusion.c), log Ẑ_IS / ELBO / EUBO, the counters and buffers of a
 * checkpoint. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/gfn_diffusion_internal.h"
#include "flowrl/digest.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"

/* The batch's loss gradient t->gpf (and t->gf, g_log_z) through the networks into the grads:
 * d log P_F / d mean = noise·√Δt/σ, / d logvar = ½(noise² − 1). */
static fr_status backprop(fr_gfnd_trainer *t, double g_log_z)
{
    const int64_t D = t->D, T = t->T, B = t->B, Op = t->Op;
    const double dt = 1.0 / (double)T, sdt = sqrt(dt), c = t->o.clipping ? t->o.gfn_clip : INFINITY;
    double *mean = fr_malloc((size_t)(3 * D) * sizeof *mean), *lv = mean + D, *z = mean + 2 * D;
    if (!mean) return FR_ERR_NOMEM;
    if (t->lgv_time) memset(t->lgv_d, 0, (size_t)T * sizeof *t->lgv_d);
    for (int64_t k = 0; k < T; k++)
        for (int64_t b = 0; b < B; b++) {
            const int64_t r = k * B + b;
            const float *out = t->out_h + r * Op;
            const double *gk = t->glr + r * D, gl = t->gpf[b * T + k];
            float *dout = t->dout_h + r * Op;
            fr_gfnd_pf_params(t, out, k, gk, mean, lv);
            fr_gfnd_log_pf(t, t->xs + r * D, t->xs + (r + B) * D, mean, lv, z);
            const double scale = fr_gfnd_lgv_scale(t, out, k);
            double dscale = 0.0;
            for (int64_t d = 0; d < D; d++) {
                const double pre = (double)out[d] + (t->o.langevin ? scale * gk[d] : 0.0);
                const double dm = fabs(pre) > c ? 0.0 : gl * z[d] * sdt / fr_awm_exp(0.5 * lv[d]);
                dout[d] = (float)dm;
                dscale += dm * gk[d];
                if (t->o.learned_variance) {
                    const double v = (double)out[D + d], th = fr_gfnd_tanh(v);
                    dout[D + d] = fabs(v) > c ? 0.0f
                                              : (float)(gl * 0.5 * (z[d] * z[d] - 1.0) * t->o.log_var_range * (1.0 - th * th));
                } else if (t->pis) {
                    dout[D + d] = 0.0f; /* the PIS head's unread log-variance columns */
                }
            }
            if (t->lgv_time) t->lgv_d[k] += dscale;
            else if (t->o.langevin) dout[Op - 1] = (float)dscale;
        }
    free(mean);
    FR_TRY(fr_dev_zero(t->be, t->arena_g, (size_t)t->arena_n * sizeof(float)));
    FR_TRY(fr_h2d(t->be, t->d0, t->dout_h, (size_t)(T * B * Op) * sizeof(float)));
    FR_TRY(fr_gfnd_mlp_backward(t, &t->pol, t->x, B));
    if (t->has_flow) {
        for (int64_t k = 0; k < T; k++)
            for (int64_t b = 0; b < B; b++) t->dout_h[k * B + b] = (float)t->gf[b * (T + 1) + k];
        FR_TRY(fr_h2d(t->be, t->d0, t->dout_h, (size_t)(T * B) * sizeof(float)));
        FR_TRY(fr_gfnd_mlp_backward(t, &t->flow, t->x, B));
    }
    if (t->lgv_time) { /* NN2(t_k)'s gradient: the sum over step k's rows, one row per step */
        for (int64_t k = 0; k < T; k++) t->dout_h[k] = (float)t->lgv_d[k];
        FR_TRY(fr_h2d(t->be, t->d0, t->dout_h, (size_t)T * sizeof(float)));
        if (t->pis) FR_TRY(fr_gfnd_tnet_backward(t, &t->lgvp, t->d0));
        else FR_TRY(fr_gfnd_mlp_backward(t, &t->lgv, t->x0, 1));
    }
    if (t->has_z) {
        const float gz = (float)g_log_z;
        FR_TRY(fr_h2d(t->be, t->grads[t->n_params - 1].data, &gz, sizeof gz));
    }
    return FR_OK;
}

/* train.py bwd_train_step with --sampling buffer: [local search,] B terminal states from a buffer
 * into t->xs at step T, their trajectories back to 0. */
static fr_status backward_batch(fr_gfnd_trainer *t, fr_gfnd_step_info *info)
{
    const int64_t D = t->D, T = t->T, B = t->B;
    const uint32_t it = (uint32_t)t->iter;
    double *xT = t->xs + T * B * D;
    if (t->o.local_search && t->iter % t->o.ls_cycle < 2) {
        const fr_gfnd_ls_opts lo = {t->o.ls_iters, t->o.ls_burn_in, t->o.ld_step, t->o.ld_schedule, t->o.ls_target_rate};
        fr_gfnd_ls_info li;
        FR_TRY(fr_gfnd_replay_sample(t->buf, B, t->o.seed, FR_RNG_GFND_REPLAY, it, 0, xT, t->logr, NULL));
        FR_TRY(fr_gfnd_local_search(t->env, &lo, B, xT, t->logr, t->o.seed, it, t->buf_ls, &li));
        if (info) info->ls_kept = li.kept, info->ls_accept = li.accept_rate;
    }
    /* train.py draws from the search's buffer once it exists; here from the forward buffer while
     * the search has kept nothing (train.py would fail on the empty buffer) */
    fr_gfnd_replay *from = t->buf_ls && fr_gfnd_replay_size(t->buf_ls) > 0 ? t->buf_ls : t->buf;
    FR_TRY(fr_gfnd_replay_sample(from, B, t->o.seed, FR_RNG_GFND_REPLAY, it, 1, xT, t->logr, NULL));
    return fr_gfnd_back_traj(t, B, FR_RNG_GFND_BWD, it, 0);
}

fr_status fr_gfnd_trainer_grad(fr_gfnd_trainer *t, fr_gfnd_step_info *info)
{
    const int64_t D = t->D, T = t->T, B = t->B;
    /* get_exploration_std: factor·max(0, 1 − it/5000) with exploration_wd */
    double e = t->o.exploration;
    if (e > 0.0 && t->o.exploration_decay > 0) {
        const double f = 1.0 - (double)t->iter / (double)t->o.exploration_decay;
        e *= f > 0.0 ? f : 0.0;
    }
    if (info) info->ls_kept = -1, info->ls_accept = NAN;
    const int bwd = t->buf && t->iter % 2 == 1; /* train.py train_step with --both_ways */
    FR_TRY(fr_gfnd_prepare(t));
    if (bwd) FR_TRY(backward_batch(t, info));
    else FR_TRY(fr_gfnd_sample_fwd(t, B, FR_RNG_GFND_NOISE, (uint32_t)t->iter, 0, e, t->has_flow));
    if (t->buf && !bwd) FR_TRY(fr_gfnd_replay_add(t->buf, t->xs + T * B * D, t->logr, B));
    double log_z = 0.0, g_log_z = 0.0, loss = 0.0;
    if (t->has_z) FR_TRY(fr_gfnd_log_z_param(t, &log_z));
    FR_TRY(fr_gfnd_loss_eval(t->o.loss, B, T, t->logpf, t->logpb, t->has_flow ? t->logf : NULL, t->logr, log_z,
                        t->o.subtb_lambda, &loss, t->gpf, t->has_flow ? t->gf : NULL, &g_log_z));
    FR_TRY(backprop(t, g_log_z));
    t->iter++;
    if (info) {
        double lr = 0.0;
        for (int64_t b = 0; b < B; b++) lr += t->logr[b];
        info->iteration = t->iter;
        info->backward = bwd;
        info->loss = loss;
        info->exploration = e;
        info->log_r_mean = lr / (double)B;
    }
    return FR_OK;
}

int fr_gfnd_trainer_params(fr_gfnd_trainer *t, fr_param **ps, int *n_policy)
{
    *ps = t->params;
    *n_policy = t->n_pol;
    return t->n_params;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static double logmeanexp(const double *w, int64_t n)
{
    double m = -INFINITY, s = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (w[i] > m) m = w[i];
    for (int64_t i = 0; i < n; i++) s += fr_awm_exp(w[i] - m);
    return m + fr_awm_log(s / (double)n);
}

/* n ground-truth x (the target's sampler at (seed, j0 + b)) and τ ~ P_B back to 0 (Philox
 * (seed, FR_RNG_GFND_BACK, 0, j0 + b, k)), log P_F along τ (evaluations.py / torchgfn
 * density_metrics's EUBO). */
static fr_status sample_bwd(fr_gfnd_trainer *t, int64_t n, uint32_t j0)
{
    const int64_t D = t->D, T = t->T;
    for (int64_t b = 0; b < n; b++) {
        double *x = t->xs + (T * n + b) * D;
        t->env->energy->sample(t->env, t->o.seed, j0 + (uint32_t)b, x);
        t->logr[b] = t->env->energy->log_reward(t->env, x);
    }
    return fr_gfnd_back_traj(t, n, FR_RNG_GFND_BACK, 0, j0);
}

fr_status fr_gfnd_trainer_eval(fr_gfnd_trainer *t, int64_t n, fr_gfnd_eval *ev, double *xs_out)
{
    const int64_t D = t->D, T = t->T, B = t->B;
    if (n < 1 || n > (int64_t)UINT32_MAX) return fr_fail(FR_ERR_ARG, "gfn-diffusion: evaluation of %lld samples", (long long)n);
    double *wf = fr_malloc((size_t)n * sizeof *wf), *wb = fr_malloc((size_t)n * sizeof *wb);
    if (!wf || !wb) {
        free(wf);
        free(wb);
        return FR_ERR_NOMEM;
    }
    fr_status s = fr_gfnd_prepare(t);
    for (int64_t j = 0; j < n && s == FR_OK; j += B) {
        const int64_t m = n - j < B ? n - j : B;
        s = fr_gfnd_sample_fwd(t, m, FR_RNG_GFND_EVAL, 0, (uint32_t)j, 0.0, 0);
        for (int64_t b = 0; b < m && s == FR_OK; b++) {
            double v = t->logr[b];
            for (int64_t k = 0; k < T; k++) v += t->logpb[b * T + k] - t->logpf[b * T + k];
            wf[j + b] = v;
            if (xs_out) memcpy(xs_out + (j + b) * D, t->xs + (T * m + b) * D, (size_t)D * sizeof(double));
        }
        if (s == FR_OK) s = sample_bwd(t, m, (uint32_t)j);
        for (int64_t b = 0; b < m && s == FR_OK; b++) {
            double v = t->logr[b];
            for (int64_t k = 0; k < T; k++) v += t->logpb[b * T + k] - t->logpf[b * T + k];
            wb[j + b] = v;
        }
    }
    if (s == FR_OK) {
        double mf = 0.0, mb = 0.0;
        for (int64_t i = 0; i < n; i++) {
            mf += wf[i];
            mb += wb[i];
        }
        ev->log_z_is = logmeanexp(wf, n);
        ev->elbo = mf / (double)n;
        ev->eubo = mb / (double)n;
        ev->log_z_true = t->log_z_true;
        ev->log_z_learned = NAN;
        if (t->has_z) s = fr_gfnd_log_z_param(t, &ev->log_z_learned);
        if (t->has_flow && s == FR_OK) { /* log F_0 at x_0 = 0 */
            memset(t->xs, 0, (size_t)D * sizeof(double));
            s = fr_gfnd_forward_step(t, t->xs, 1, 0, 1);
            if (s == FR_OK) ev->log_z_learned = fr_gfnd_log_flow(t, t->fout_h[0], t->xs, 0);
        }
    }
    free(wf);
    free(wb);
    return s;
}

/* ---- checkpoints --------------------------------------------------------------------------- */

fr_status fr_gfnd_trainer_save(fr_gfnd_trainer *t, fr_st_file *f)
{
    int64_t one = 1;
    fr_tensor c;
    FR_TRY(fr_tensor_alloc(&c, FR_I64, 1, &one));
    ((int64_t *)c.data)[0] = t->iter;
    FR_TRY(fr_st_add_take(f, "gfnd.counters", &c));
    if (t->buf) FR_TRY(fr_gfnd_replay_save(t->buf, f, "gfnd.buffer"));
    if (t->buf_ls) FR_TRY(fr_gfnd_replay_save(t->buf_ls, f, "gfnd.buffer_ls"));
    return FR_OK;
}

fr_status fr_gfnd_trainer_load(fr_gfnd_trainer *t, const fr_st_file *f, const char *path)
{
    const fr_tensor *c = fr_st_get(f, "gfnd.counters");
    if (!c || c->dtype != FR_I64 || c->ndim != 1 || c->shape[0] != 1)
        return fr_fail(FR_ERR_FORMAT, "%s: gfnd.counters missing or not I64 (1,)", path);
    t->iter = ((const int64_t *)c->data)[0];
    if (t->buf) FR_TRY(fr_gfnd_replay_load(t->buf, f, "gfnd.buffer", path));
    if (t->buf_ls) FR_TRY(fr_gfnd_replay_load(t->buf_ls, f, "gfnd.buffer_ls", path));
    return FR_OK;
}

fr_status fr_gfnd_trainer_digest(fr_gfnd_trainer *t, uint64_t *digest, int64_t *n_params)
{
    float *h = fr_malloc((size_t)t->arena_n * sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    fr_status s = fr_d2h(t->be, h, t->arena_v, (size_t)t->arena_n * sizeof *h);
    if (s == FR_OK) *digest = fr_digest_bytes(h, (size_t)t->arena_n * sizeof *h);
    if (n_params) {
        int64_t c = 0;
        for (int p = 0; p < t->n_params; p++) c += fr_tensor_numel(&t->vals[p]);
        *n_params = c;
    }
    free(h);
    return s;
}
