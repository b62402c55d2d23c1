/* The pieces every control algorithm shares (flowrl/ctl_algo.h; docs/control.md §6): the run's
 * control state and critic, the fr_algo entries that only touch them, the update passes'
 * bookkeeping and the evaluation's report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/ctl_algo.h"
#include "flowrl/digest.h"

fr_status fr_ctl_check_env(const fr_env *e, const char *algo)
{
    if (!e->ctl || e->n_actions > 0 || e->action_dim < 1 || e->action_dim > 64)
        return fr_fail(FR_ERR_ARG, "train: --algo %s needs a control environment with 1..64 continuous actions; %s is "
                       "not one", algo, e->desc);
    return FR_OK;
}

fr_status fr_ctl_check_run(const fr_run_opts *ro, const char *algo, int64_t minibatch, int64_t batch,
                           const char *batch_what)
{
    if (ro->opt.lr_schedule != FR_LR_CONSTANT)
        return fr_fail(FR_ERR_ARG, "train: --lr-schedule: --algo %s takes many optimiser steps an epoch; the loop's "
                       "schedule counts one (use constant)", algo);
    if (batch > 0 && minibatch > batch)
        return fr_fail(FR_ERR_ARG, "train: --minibatch-size %lld exceeds the batch %s = %lld", (long long)minibatch,
                       batch_what, (long long)batch);
    return FR_OK;
}

fr_status fr_ctl_state_new(fr_ctl_state *c, const fr_env *e, uint32_t seed, int64_t N, int64_t T, double gamma)
{
    FR_TRY(fr_ctl_vec_new(&c->vec, e, seed, N, 0));
    FR_TRY(fr_ctl_reward_scaler_init(&c->scaler, N, gamma));
    return fr_ctl_block_new(&c->blk, T, N, e->obs_dim, e->action_dim);
}

fr_status fr_ctl_critic_new(fr_ctl_state *c, fr_backend *be, int64_t O, int64_t hidden, int n_hidden, fr_act act,
                            int64_t vrows, uint32_t seed)
{
    int64_t dv[FR_MLP_MAX_LAYERS + 1];
    const int L = n_hidden + 1;
    dv[0] = O;
    for (int l = 1; l < L; l++) dv[l] = hidden;
    dv[L] = 1;
    FR_TRY(fr_mlp_new(&c->vf, be, "critic", L, dv, act, vrows));
    /* stream 3 of FR_RNG_INIT: the value network of every control algorithm (docs/control.md §3) */
    FR_TRY(fr_mlp_init_params(&c->vf, seed, 3, 1.0f));
    return FR_ALLOC(c->vout, vrows) ? FR_OK : FR_ERR_NOMEM;
}

void fr_ctl_params_add(fr_ctl_state *c, const fr_param *p, int n)
{
    for (int i = 0; i < n && c->n_all < (int)(sizeof c->all / sizeof c->all[0]); i++) c->all[c->n_all++] = p[i];
}

void fr_ctl_params_critic(fr_ctl_state *c, double lr_critic, double wd_critic)
{
    c->n_actor = c->n_all;
    fr_ctl_params_add(c, c->vf.params, c->vf.n_params);
    c->lr_critic = lr_critic;
    c->wd_critic = wd_critic;
}

void fr_ctl_state_free(fr_ctl_state *c)
{
    fr_mlp_free(&c->vf);
    free(c->vout);
    fr_ctl_vec_free(&c->vec);
    fr_rms_free(&c->rms);
    fr_ctl_reward_scaler_free(&c->scaler);
    fr_ctl_block_free(&c->blk);
}

fr_status fr_ctl_algo_save(fr_run *r, void *state, fr_st_file *f)
{
    (void)r;
    fr_ctl_state *c = state;
    return fr_ctl_state_save(f, &c->vec, &c->rms, &c->scaler);
}

fr_status fr_ctl_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    (void)r;
    fr_ctl_state *c = state;
    return fr_ctl_state_load(f, path, &c->vec, &c->rms, &c->scaler);
}

fr_status fr_ctl_algo_params(fr_run *r, void *state, fr_param **ps, int *n, fr_run_group *groups, int *n_groups)
{
    (void)r;
    fr_ctl_state *c = state;
    *ps = c->all;
    *n = c->n_all;
    groups[0] = (fr_run_group){0, c->n_actor, -1.0, -1.0};
    groups[1] = (fr_run_group){c->n_actor, c->n_all - c->n_actor, c->lr_critic > 0.0 ? c->lr_critic : -1.0, c->wd_critic};
    *n_groups = 2;
    return FR_OK;
}

fr_status fr_ctl_value_cb(void *user, int64_t R, const float *obs, double *value)
{
    fr_ctl_state *c = user;
    FR_TRY(fr_mlp_forward_host(&c->vf, R, obs, c->vout));
    for (int64_t i = 0; i < R; i++) value[i] = (double)c->vout[i];
    return FR_OK;
}

double fr_ctl_value_loss(int64_t M, const float *v, const double *ret, const int64_t *idx, int64_t div, double c,
                         double vf_coef, float *dv)
{
    const double k = vf_coef * (2.0 * c);
    double vl = 0.0;
    for (int64_t i = 0; i < M; i++) {
        const double e = (double)v[i] - ret[idx[i] / div];
        vl += e * e;
        dv[i] = (float)(k * e / (double)M);
    }
    return c * vl / (double)M;
}

fr_status fr_ctl_algo_collect(fr_run *r, fr_ctl_state *c, const fr_ctl_policy *p, const fr_ctl_collect_cfg *cc, int norm,
                              float *scratch)
{
    fr_ctl_block *b = &c->blk;
    fr_ctl_vec_stats_reset(&c->vec);
    FR_TRY(fr_ctl_collect(&c->vec, norm ? &c->rms : NULL, cc->reward_scale ? &c->scaler : NULL, p, cc, b));
    FR_TRY(fr_ctl_rec_rows(r, "rewards", scratch, b->raw_reward, b->T, b->N, 1));
    return fr_ctl_rec_rows(r, "adv", scratch, b->adv, b->T, b->N, 1);
}

fr_status fr_ctl_rec_rows(fr_run *r, const char *name, float *scratch, const double *x, int64_t T, int64_t N,
                          int64_t per_row)
{
    const int64_t n = T * N * per_row;
    for (int64_t i = 0; i < n; i++) scratch[i] = (float)x[i];
    return fr_run_rec_f32(r, name, scratch, per_row > 1 ? 3 : 2, T, N, per_row);
}

fr_status fr_ctl_update(fr_run *r, fr_ctl_updates *up, const char *what, double loss, int64_t n_ratio, const float *ratio,
                        double target_kl)
{
    if (!isfinite(loss))
        return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld update %lld: the %s loss is %g", (long long)r->epoch + 1,
                       (long long)up->u, what, loss);
    fr_run_update_event ue = {r->epoch + 1, up->u, n_ratio, ratio, (float)loss};
    fr_run_update(r, &ue);
    float gn;
    FR_TRY(fr_run_optimizer_step(r, up->u, &gn));
    up->kl_sum += up->st.approx_kl;
    up->cf_sum += up->st.clipfrac;
    up->rm_sum += up->st.ratio_mean;
    up->stop = target_kl > 0.0 && up->st.approx_kl > target_kl;
    up->u++;
    return FR_OK;
}

fr_status fr_ctl_updates_end(fr_run *r, const fr_ctl_updates *up, const fr_ctl_vec *v, const fr_env *e, int64_t env_steps)
{
    FR_TRY(fr_run_rec_scalar(r, "pg_loss", (float)up->st.loss));
    FR_TRY(fr_run_rec_scalar(r, "v_loss", (float)up->v_loss));
    FR_TRY(fr_run_rec_scalar(r, "approx_kl", (float)up->st.approx_kl));
    fr_ctl_episode_metrics(r, v, e, env_steps);
    fr_run_metric(r, "pg_loss", up->st.loss);
    fr_run_metric(r, "v_loss", up->v_loss);
    fr_run_metric(r, "approx_kl", up->kl_sum / (double)up->u);
    fr_run_metric(r, "clipfrac", up->cf_sum / (double)up->u);
    return FR_OK;
}

fr_status fr_ctl_eval_report(fr_run *r, const fr_env *e, const char *key, int64_t epoch, int64_t env_steps, int64_t E,
                             double ret, double success, int64_t terminal, const fr_ctl_nets *nets)
{
    char sl[48] = "", tl[48] = "";
    if (e->ctl->success) snprintf(sl, sizeof sl, " success %.4f", success);
    if (terminal >= 0) snprintf(tl, sizeof tl, " (%lld terminal)", (long long)terminal);
    fr_run_info(r, "eval %-8s (epoch %lld): env_steps %lld return %.4f%s over %lld episodes%s", key, (long long)epoch,
                (long long)env_steps, ret, sl, (long long)E, tl);
    if (strcmp(key, "after") != 0) return FR_OK;
    char line[256];
    int64_t numel = nets->extra;
    for (int i = 0; i < nets->n; i++) numel += fr_mlp_numel(nets->net[i]);
    size_t at = (size_t)snprintf(line, sizeof line, "parameters %lld, digests", (long long)numel);
    for (int i = 0; i < nets->n && at < sizeof line; i++) {
        uint64_t d;
        char h[17];
        FR_TRY(fr_mlp_digest(nets->net[i], &d));
        fr_digest_hex(d, h);
        at += (size_t)snprintf(line + at, sizeof line - at, " %s %s", nets->name[i], h);
    }
    fr_run_info(r, "%s", line);
    return FR_OK;
}

fr_status fr_ctl_algo_evaluate(fr_run *r, const fr_env *e, uint32_t seed, int64_t E, const fr_rms *rms,
                               const fr_ctl_policy *p, int *eval_flag, const char *key, int64_t epoch,
                               int64_t steps_per_epoch, const fr_ctl_nets *nets, double *score)
{
    fr_ctl_eval ev;
    *eval_flag = 1;
    fr_status st = fr_ctl_evaluate(e, seed, E, rms, p, &ev);
    *eval_flag = 0;
    FR_TRY(st);
    *score = ev.ret_mean;
    return fr_ctl_eval_report(r, e, key, epoch, epoch * steps_per_epoch, E, ev.ret_mean, ev.success, ev.terminal, nets);
}
