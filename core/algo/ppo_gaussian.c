/* Gaussian-policy PPO on a control environment (docs/algorithms/ppo-gaussian.md): `flowrl train
 * --algo ppo-gaussian --env NAME`, the baseline the flow / diffusion policy papers compare with.
 * A tanh MLP gives the action mean from the normalised observation, a learned state-independent
 * log-std its spread (CleanRL's ppo_continuous_action Agent), a second MLP the value. Per epoch:
 * a block of T steps of N environments (flowrl/ctl.h: running observation normalisation, DPPO's
 * running reward scaling, GAE with the truncation bootstrap), then --update-epochs passes of
 * minibatches (DPPO's train_ppo_gaussian_agent loop: a fresh order per pass, approx-KL early
 * stop), each one optimiser step of the run loop over [mean net, log-std, value net] in two
 * AdamW groups (actor at --lr, critic at --lr-critic).
 *
 * Loss of a minibatch (DPPO model/rl/gaussian_ppo.py without its log-prob clamp, CleanRL's
 * form): L = mean max(−Â·ρ, −Â·clip(ρ, 1 ± ε)) − ent_coef·H + vf_coef·½·mean (V − R)², Â
 * normalised per minibatch. Random numbers: the action noise ξ of (epoch, environment, step)
 * from Philox (seed, FR_RNG_CTL_ACTION, epoch, n, t) element d; the minibatch orders
 * fr_ctl_minibatch_order; resets (seed, FR_RNG_ENV_RESET, episode). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/algo.h"
#include "flowrl/awm_elem.h"
#include "flowrl/ctl_algo.h"
#include "flowrl/mlp.h"
#include "flowrl/philox.h"

typedef struct {
    int64_t n_envs, n_steps, minibatch, update_epochs, hidden, n_hidden, eval_episodes;
    double gamma, lambda, clip, ent_coef, vf_coef, target_kl, init_log_std, lr_critic;
    int obs_norm, reward_scale;
} ppo_opts;

#define C ppo_opts
static const fr_opt k_rows[] = {
    FR_OPT_I64(C, n_envs, "n_envs", "8", 1, 1 << 16, "environments stepped in lock-step (N)", 0),
    FR_OPT_I64(C, n_steps, "n_steps", "256", 1, 1 << 20, "steps of each environment per epoch (T); a batch is N·T", 0),
    FR_OPT_I64(C, minibatch, "minibatch_size", "64", 1, 1 << 24, "rows of a minibatch (one optimiser step)", 0),
    FR_OPT_I64(C, update_epochs, "update_epochs", "10", 1, 1000, "passes over the batch per epoch", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "64", 1, 8192, "width of the mean and value MLPs", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "2", 1, FR_MLP_MAX_LAYERS - 1, "hidden layers of each MLP (tanh)", 0),
    FR_OPT_F64(C, gamma, "gamma", "0.99", 0, 1, "discount γ", 0),
    FR_OPT_F64(C, lambda, "gae_lambda", "0.95", 0, 1, "GAE λ", 0),
    FR_OPT_F64(C, clip, "clip_coef", "0.2", 1e-6, 10, "PPO clip range ε", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, ent_coef, "ent_coef", "0", 0, 100, "entropy bonus weight", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, vf_coef, "vf_coef", "0.5", 0, 1e6, "value-loss weight", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, target_kl, "target_kl", "1", 0, 1e6,
               "stop the epoch's updates after a minibatch whose approx-KL exceeds it (0: never)", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, init_log_std, "init_log_std", "0", -20, 5, "initial log σ of every action dimension", 0),
    FR_OPT_F64(C, lr_critic, "lr_critic", "0", 0, 10, "AdamW learning rate of the value MLP (0: --lr)", FR_OPT_RESUMABLE),
    FR_OPT_BOOL(C, obs_norm, "obs_norm", "true", "running observation normalisation", 0),
    FR_OPT_BOOL(C, reward_scale, "reward_scale", "true", "running reward scaling (DPPO's RunningRewardScaler)", 0),
    FR_OPT_I64(C, eval_episodes, "eval_episodes", "10", 1, 1 << 16,
               "episodes of each evaluation (the mean action; episode ids from 2^31)", FR_OPT_RESUMABLE),
};
#undef C

typedef struct {
    fr_ctl_state c;          /* first: the shared entries (flowrl/ctl_algo.h) take the state as it is */
    const fr_env *env;
    fr_backend *be;
    int64_t N, T, O, A, cap;
    uint32_t seed;
    fr_mlp pi;
    float *ls_dev;           /* backend (2·slot): log σ (A,) then its gradient */
    fr_tensor ls_val, ls_grad;
    /* host scratch */
    double *log_std;         /* (A,) */
    float *mu, *dmu, *dv, *rec; /* (cap, A), (cap, A), (cap,), (T·N,) */
    float *mb_obs, *mb_act;  /* (mb, O), (mb, A) */
    double *lp_new, *lp_old, *g, *adv_raw, *adv_n; /* (mb,) */
    float *ratio;            /* (mb,) */
    int64_t *perm;           /* (T·N,) */
    uint32_t epoch;          /* the epoch the act callback draws for */
    int eval;                /* 1: mean actions */
} ppo_state;

static void ppo_defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->run.seed = 1;
    ro->run.epochs = 100;
    ro->run.checkpoint_every = 10;
    ro->opt.lr = 3e-4;
    ro->opt.weight_decay = 0.0; /* Adam, as CleanRL and DPPO */
    ro->opt.max_grad_norm = 0.5f;
    ro->opt.adam_eps = 1e-5; /* CleanRL's optim.Adam(..., eps=1e-5) */
    ro->ev.eval_every = 10;
}

static fr_status ppo_check(const fr_run_opts *ro, const void *ao)
{
    const ppo_opts *a = ao;
    return fr_ctl_check_run(ro, "ppo-gaussian", a->minibatch, a->n_envs * a->n_steps, "--n-envs x --n-steps");
}

static void ppo_free(void *p)
{
    ppo_state *s = p;
    if (!s) return;
    fr_mlp_free(&s->pi);
    if (s->be) fr_dev_free(s->be, s->ls_dev);
    fr_ctl_state_free(&s->c);
    void *h[] = {s->log_std, s->mu, s->dmu, s->dv, s->rec, s->mb_obs, s->mb_act, s->lp_new, s->lp_old,
                 s->g, s->adv_raw, s->adv_n, s->ratio, s->perm};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    free(s);
}

static fr_status pull_log_std(ppo_state *s)
{
    float h[64];
    FR_TRY(fr_d2h(s->be, h, s->ls_dev, (size_t)s->A * sizeof(float)));
    for (int64_t d = 0; d < s->A; d++) s->log_std[d] = (double)h[d];
    return FR_OK;
}

/* The means (R, A) and values (R,) of R normalised observations, on the host. */
static fr_status forward_rows(ppo_state *s, int64_t R, const float *obs, int want_value)
{
    FR_TRY(fr_mlp_forward_host(&s->pi, R, obs, s->mu));
    if (want_value) FR_TRY(fr_mlp_forward_host(&s->c.vf, R, obs, s->c.vout));
    return FR_OK;
}

static fr_status act_cb(void *user, int64_t t, int64_t N, const float *obs, float *action, double *logp, double *value)
{
    ppo_state *s = user;
    FR_TRY(forward_rows(s, N, obs, !s->eval));
    for (int64_t n = 0; n < N; n++) {
        const float *mu = s->mu + n * s->A;
        float *a = action + n * s->A;
        for (int64_t d = 0; d < s->A; d++) {
            const double xi = s->eval ? 0.0 : (double)fr_rng_normal(s->seed, FR_RNG_CTL_ACTION, s->epoch, (uint32_t)n, (uint32_t)t, (uint32_t)d);
            a[d] = (float)((double)mu[d] + fr_awm_exp(s->log_std[d]) * xi);
        }
        if (!s->eval) {
            logp[n] = fr_ctl_gauss_logp(s->A, a, mu, s->log_std);
            value[n] = (double)s->c.vout[n];
        }
    }
    return FR_OK;
}

static fr_status ppo_setup(fr_run *r, void **out)
{
    const ppo_opts *a = r->ao;
    const fr_env *e = &r->env;
    FR_TRY(fr_ctl_check_env(e, "ppo-gaussian"));
    ppo_state *s = fr_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    *out = s;
    s->env = e;
    s->be = r->be;
    s->N = a->n_envs;
    s->T = a->n_steps;
    s->O = e->obs_dim;
    s->A = e->action_dim;
    s->seed = r->o->run.seed;
    const int64_t mb = a->minibatch, TN = s->T * s->N;
    s->cap = TN + s->N > mb ? TN + s->N : mb;
    int64_t dp[FR_MLP_MAX_LAYERS + 1];
    const int L = (int)a->n_hidden + 1;
    dp[0] = s->O;
    for (int l = 1; l < L; l++) dp[l] = a->hidden;
    dp[L] = s->A;
    FR_TRY(fr_mlp_new(&s->pi, r->be, "actor_mean", L, dp, FR_ACT_TANH, s->cap));
    /* streams 2 and 3 (the critic's) of FR_RNG_INIT (the GFlowNet trainer's is 1); CleanRL scales
     * the mean's last layer by 0.01 (its orthogonal init's gain) so the first actions are the noise */
    FR_TRY(fr_mlp_init_params(&s->pi, s->seed, 2, 0.01f));
    FR_TRY(fr_ctl_critic_new(&s->c, r->be, s->O, a->hidden, (int)a->n_hidden, FR_ACT_TANH, s->cap, s->seed));
    const int64_t slot = fr_arena_slot(s->A), one[1] = {s->A};
    if (!(s->ls_dev = fr_dev_floats(r->be, 2 * slot))) return FR_ERR_NOMEM;
    s->ls_val = fr_tensor_f32(s->ls_dev, 1, one);
    s->ls_grad = fr_tensor_f32(s->ls_dev + slot, 1, one);
    float ls0[64];
    for (int64_t d = 0; d < s->A; d++) ls0[d] = (float)a->init_log_std;
    FR_TRY(fr_h2d(r->be, s->ls_dev, ls0, (size_t)s->A * sizeof(float)));
    const fr_param ls = {"actor_logstd", &s->ls_val, &s->ls_grad};
    fr_ctl_params_add(&s->c, s->pi.params, s->pi.n_params);
    fr_ctl_params_add(&s->c, &ls, 1);
    fr_ctl_params_critic(&s->c, a->lr_critic, -1.0);
    FR_TRY(fr_rms_init(&s->c.rms, s->O));
    FR_TRY(fr_ctl_state_new(&s->c, e, s->seed, s->N, s->T, a->gamma));
    int ok = FR_ALLOC(s->log_std, s->A) && FR_ALLOC(s->mu, s->cap * s->A) && FR_ALLOC(s->dmu, mb * s->A) && FR_ALLOC(s->dv, mb) && FR_ALLOC(s->rec, TN) && FR_ALLOC(s->mb_obs, mb * s->O) &&
             FR_ALLOC(s->mb_act, mb * s->A) && FR_ALLOC(s->lp_new, mb) && FR_ALLOC(s->lp_old, mb) && FR_ALLOC(s->g, mb) &&
             FR_ALLOC(s->adv_raw, mb) && FR_ALLOC(s->adv_n, mb) && FR_ALLOC(s->ratio, mb) && FR_ALLOC(s->perm, TN);
    return ok ? FR_OK : FR_ERR_NOMEM;
}

static void ppo_header(fr_run *r, void *state)
{
    const ppo_opts *a = r->ao;
    ppo_state *s = state;
    fr_run_info(r, "ppo-gaussian: %lld envs x %lld steps an epoch, minibatch %lld x %lld passes, MLPs %lld x %lld tanh, "
                   "gamma %g lambda %g clip %g ent %g vf %g target_kl %g; obs norm %s, reward scale %s; %s",
                (long long)a->n_envs, (long long)a->n_steps, (long long)a->minibatch, (long long)a->update_epochs,
                (long long)a->hidden, (long long)a->n_hidden, a->gamma, a->lambda, a->clip, a->ent_coef, a->vf_coef,
                a->target_kl, a->obs_norm ? "on" : "off", a->reward_scale ? "on" : "off", s->env->desc);
}

/* One minibatch of rows idx (M,): the loss's gradient into the parameters' zeroed gradients. */
static fr_status minibatch(fr_run *r, ppo_state *s, const int64_t *idx, int64_t M, fr_ctl_ppo_stats *st, double *v_loss,
                           double *entropy)
{
    const ppo_opts *a = r->ao;
    const fr_ctl_block *b = &s->c.blk;
    const int64_t O = s->O, A = s->A;
    for (int64_t i = 0; i < M; i++) {
        memcpy(s->mb_obs + i * O, b->obs + idx[i] * O, (size_t)O * sizeof(float));
        memcpy(s->mb_act + i * A, b->act + idx[i] * A, (size_t)A * sizeof(float));
        s->lp_old[i] = b->logp[idx[i]];
        s->adv_raw[i] = b->adv[idx[i]];
    }
    FR_TRY(forward_rows(s, M, s->mb_obs, 1));
    for (int64_t i = 0; i < M; i++) s->lp_new[i] = fr_ctl_gauss_logp(A, s->mb_act + i * A, s->mu + i * A, s->log_std);
    fr_ctl_adv_normalize(M, s->adv_raw, s->adv_n);
    fr_ctl_ppo_clip(M, s->lp_new, s->lp_old, s->adv_n, a->clip, s->g, st);
    for (int64_t i = 0; i < M; i++) s->ratio[i] = (float)fr_awm_exp(s->lp_new[i] - s->lp_old[i]);
    /* dlogp/dμ_d = (a − μ)/σ², dlogp/dlog σ_d = z² − 1; d(−ent·H)/dlog σ_d = −ent */
    float gls[64];
    for (int64_t d = 0; d < A; d++) {
        const double iv = fr_awm_exp(-2.0 * s->log_std[d]);
        double gl = -a->ent_coef;
        for (int64_t i = 0; i < M; i++) {
            const double diff = (double)s->mb_act[i * A + d] - (double)s->mu[i * A + d];
            s->dmu[i * A + d] = (float)(s->g[i] * diff * iv);
            gl += s->g[i] * (diff * diff * iv - 1.0);
        }
        gls[d] = (float)gl;
    }
    *v_loss = fr_ctl_value_loss(M, s->c.vout, b->ret, idx, 1, 0.5, a->vf_coef, s->dv);
    *entropy = fr_ctl_gauss_entropy(A, s->log_std);
    FR_TRY(fr_mlp_zero_grad(&s->pi));
    FR_TRY(fr_mlp_zero_grad(&s->c.vf));
    FR_TRY(fr_h2d(s->be, s->ls_grad.data, gls, (size_t)A * sizeof(float)));
    FR_TRY(fr_mlp_backward_host(&s->pi, M, s->dmu));
    return fr_mlp_backward_host(&s->c.vf, M, s->dv);
}

static fr_status ppo_epoch(fr_run *r, void *state)
{
    const ppo_opts *a = r->ao;
    ppo_state *s = state;
    const int64_t TN = s->T * s->N, M = a->minibatch, nb = TN / M > 1 ? TN / M : 1;
    s->epoch = (uint32_t)r->epoch;
    s->eval = 0;
    FR_TRY(pull_log_std(s));
    const fr_ctl_policy p = {act_cb, fr_ctl_value_cb, s};
    const fr_ctl_collect_cfg cc = {1, a->reward_scale, a->gamma, a->lambda};
    FR_TRY(fr_ctl_algo_collect(r, &s->c, &p, &cc, a->obs_norm, s->rec));
    FR_TRY(fr_ctl_rec_rows(r, "logp_old", s->rec, s->c.blk.logp, s->T, s->N, 1));
    fr_ctl_updates up = {0};
    double ent = 0.0;
    for (int64_t k = 0; k < a->update_epochs && !up.stop; k++) {
        fr_ctl_minibatch_order(s->seed, s->epoch, (uint32_t)k, TN, s->perm);
        for (int64_t j = 0; j < nb && !up.stop; j++) {
            const int64_t m = M < TN ? M : TN;
            FR_TRY(minibatch(r, s, s->perm + j * m, m, &up.st, &up.v_loss, &ent));
            const double loss = up.st.loss - a->ent_coef * ent + a->vf_coef * up.v_loss;
            FR_TRY(fr_ctl_update(r, &up, "PPO", loss, m, s->ratio, a->target_kl));
            FR_TRY(pull_log_std(s));
        }
    }
    double std_mean = 0.0;
    for (int64_t d = 0; d < s->A; d++) std_mean += fr_awm_exp(s->log_std[d]) / (double)s->A;
    FR_TRY(fr_ctl_updates_end(r, &up, &s->c.vec, s->env, (r->epoch + 1) * TN));
    fr_run_metric(r, "entropy", ent);
    fr_run_metric(r, "std", std_mean);
    fr_run_metric(r, "updates", (double)up.u);
    return FR_OK;
}

/* The mean action on --eval-episodes episodes (fr_ctl_evaluate: ids from 2^31, one per
 * environment, each to its end), observations normalised with the current statistics (not
 * updated): the mean return. */
static fr_status ppo_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    const ppo_opts *a = r->ao;
    ppo_state *s = state;
    const int64_t E = a->eval_episodes;
    if (E > s->cap)
        return fr_fail(FR_ERR_ARG, "train: --eval-episodes %lld exceeds the %lld rows the networks hold", (long long)E,
                       (long long)s->cap);
    FR_TRY(pull_log_std(s));
    const fr_ctl_policy p = {act_cb, fr_ctl_value_cb, s};
    const fr_ctl_nets nets = {2, {"actor", "critic"}, {&s->pi, &s->c.vf}, s->A};
    return fr_ctl_algo_evaluate(r, s->env, s->seed, E, a->obs_norm ? &s->c.rms : NULL, &p, &s->eval, key, epoch,
                                s->T * s->N, &nets, score);
}

/* The smallest run (tests/test_algos.c): 2 environments x 8 steps, minibatches of 4, 2 passes,
 * MLPs 8 x 1. */
static void ppo_tiny(fr_run_opts *ro, void *ao)
{
    ppo_opts *a = ao;
    a->n_envs = 2;
    a->n_steps = 8;
    a->minibatch = 4;
    a->update_epochs = 2;
    a->hidden = 8;
    a->n_hidden = 1;
    a->eval_episodes = 2;
    ro->run.epochs = 3;
    ro->run.checkpoint_every = 1;
    /* every checkpoint kept: a tiny epoch takes about a millisecond, and the kill-and-resume test
     * must find checkpoint 2 before the pruning of later ones removes it */
    ro->run.keep_checkpoints = 0;
    ro->ev.eval_every = 2;
}

static const char *const k_progress[] = {"return", "approx_kl", "std", NULL};

const fr_algo fr_algo_ppo_gaussian = {
    "ppo-gaussian",
    "Gaussian-policy PPO on a control environment (--env; the flow / diffusion policies' baseline)",
    "docs/algorithms/ppo-gaussian.md",
    "PPO with a tanh-MLP mean and a learned state-independent log-std (docs/algorithms/ppo-gaussian.md): --n-envs "
    "environments x --n-steps steps an epoch with observation normalisation, running reward scaling and GAE, then "
    "--update-epochs passes of --minibatch-size minibatches (one AdamW step each) with approx-KL early stop; "
    "evaluation: the mean action's return.",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(ppo_opts),
    ppo_defaults,
    ppo_check,
    NULL,
    ppo_setup,
    ppo_header,
    ppo_epoch,
    fr_ctl_algo_save,
    fr_ctl_algo_load,
    k_progress,
    ppo_free,
    ppo_tiny,
    0,
    1,
    fr_ctl_algo_params,
    ppo_evaluate,
    "control",
    FR_ALGO_PREFS_NONE, 0 /* no_lora */,
};
