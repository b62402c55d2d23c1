/* FPO, Flow Policy Optimization (spec objectives.md §12; docs/algorithms/fpo.md): `flowrl train
 * --algo fpo --env NAME --policy BC.safetensors`, PPO for a flow-matching policy whose likelihood
 * ratio is replaced by the exponential of a difference of conditional flow-matching losses, as
 * FPO's playground computes it (akanazawa/fpo@418c255 playground/src/flow_policy/fpo.py).
 *
 * Per epoch: a block of T steps of N environments (flowrl/ctl.h: observation normalisation with
 * the policy's statistics, DPPO's running reward scaling, GAE with the truncation bootstrap). The
 * action a of row r (= t·N + n) is the flow policy's Euler sample from ε₀ (Philox seed,
 * FR_RNG_CTL_ACTION, epoch, n, t: fr_gen_policy_act's coordinates); at rollout S Monte-Carlo pairs
 * (ε_j, τ_j) are drawn for it and stored with their CFM losses ℓ_old,j:
 *   ε_j element d  = normal(seed, FR_RNG_CTL_FPO, epoch, r, 0, j·A + d)
 *   τ_j            = t_k, k = u32(seed, FR_RNG_CTL_FPO, epoch, r, 1, j) mod K   (discretised: t_k = 1 − k/K)
 *                    or uniform(seed, FR_RNG_CTL_FPO, epoch, r, 1, j)          (--no-discretize-t)
 * Then --update-epochs passes of minibatches of M actions; per minibatch the same pairs' losses
 * ℓ_θ,j under the current policy and
 *   averaged (default):  ρ̂ = exp(mean_j ℓ_old,j − mean_j ℓ_θ,j), one per action
 *   per pair:            ρ̂_j = exp(clip(ℓ_old,j − ℓ_θ,j, ±3)), one per pair (the action's Â)
 *   L = mean max(−Â·ρ̂, −Â·clip(ρ̂, 1 ± ε)) + vf_coef·mean (V − R)²,   Â normalised per minibatch,
 * one optimiser step of the run loop over [policy, critic] in two AdamW groups. The ratio's
 * gradient reaches the policy through fr_flow_policy_cfm with per-pair weights dL/dℓ_θ,j.
 *
 * On-policy check: a network row does not depend on the other rows of its call (flowrl/mlp.h), so
 * the first minibatch recomputes the stored losses bit for bit and ρ̂ = 1 exactly
 * (metric onpolicy_dl = max |ℓ_θ − ℓ_old| over it; tests/test_fpo.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/algo.h"
#include "flowrl/ctl_algo.h"
#include "flowrl/ctl_bc.h"
#include "flowrl/fpo.h"
#include "flowrl/philox.h"

static const char *const k_modes[] = {"u", "u_but_supervise_as_eps", NULL};

typedef struct {
    char policy[FR_OPT_PATH_MAX];
    int64_t n_envs, n_steps, minibatch, update_epochs, n_samples, hidden, n_hidden, flow_steps, critic_hidden,
        critic_n_hidden, eval_episodes;
    double gamma, lambda, clip, vf_coef, target_kl, lr_critic;
    int output_mode, average_before_exp, discretize_t, obs_norm_update, reward_scale;
} fpo_opts;

#define C fpo_opts
static const fr_opt k_rows[] = {
    FR_OPT_STR(C, policy, "policy", "",
               "the flow policy to fine-tune (`flowrl bc --policy flow`); empty: a fresh one of --hidden-dim x "
               "--n-hidden (the playground's from-scratch training)", FR_OPT_PATH),
    FR_OPT_I64(C, n_envs, "n_envs", "8", 1, 1 << 16, "environments stepped in lock-step (N)", 0),
    FR_OPT_I64(C, n_steps, "n_steps", "256", 1, 1 << 20, "steps of each environment per epoch (T); a batch is N·T", 0),
    FR_OPT_I64(C, minibatch, "minibatch_size", "64", 1, 1 << 24, "actions in a minibatch (one optimiser step)", 0),
    FR_OPT_I64(C, update_epochs, "update_epochs", "16", 1, 1000, "passes over the batch per epoch", 0),
    FR_OPT_I64(C, n_samples, "n_samples", "8", 1, 1024, "Monte-Carlo (ε, τ) pairs per action (n_samples_per_action)", 0),
    FR_OPT_ENUM(C, output_mode, "output_mode", "u_but_supervise_as_eps", k_modes,
                "CFM loss: u (velocity error) or u_but_supervise_as_eps ((1 − τ)² times it)", 0),
    FR_OPT_BOOL(C, average_before_exp, "average_losses_before_exp", "true",
                "one ratio per action from the pairs' mean losses (false: one per pair, differences clipped to ±3)", 0),
    FR_OPT_BOOL(C, discretize_t, "discretize_t", "true", "τ from the Euler grid {1, 1 − 1/K, ..., 1/K} (false: U(0, 1))", 0),
    FR_OPT_F64(C, gamma, "gamma", "0.995", 0, 1, "discount γ", 0),
    FR_OPT_F64(C, lambda, "gae_lambda", "0.95", 0, 1, "GAE λ", 0),
    FR_OPT_F64(C, clip, "clip_coef", "0.05", 1e-6, 10, "PPO clip range ε of the ratio", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, vf_coef, "vf_coef", "0.25", 0, 1e6, "value-loss weight (of mean (V − R)²)", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, target_kl, "target_kl", "0", 0, 1e6,
               "stop the epoch's updates after a minibatch whose approx-KL exceeds it (0: never)", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, lr_critic, "lr_critic", "0", 0, 10, "AdamW learning rate of the critic (0: --lr)", FR_OPT_RESUMABLE),
    FR_OPT_BOOL(C, obs_norm_update, "obs_norm_update", "true",
                "the observation statistics (the policy's) keep merging the rollouts' observations", 0),
    FR_OPT_BOOL(C, reward_scale, "reward_scale", "true", "running reward scaling (DPPO's RunningRewardScaler)", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "64", 1, 8192, "without --policy: width of the fresh flow policy's MLP", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "4", 1, FR_MLP_MAX_LAYERS - 1, "without --policy: its hidden layers (SiLU)", 0),
    FR_OPT_I64(C, flow_steps, "flow_steps", "10", 1, 1000, "without --policy: its Euler steps K", 0),
    FR_OPT_I64(C, critic_hidden, "critic_hidden_dim", "64", 1, 8192, "width of the critic MLP", 0),
    FR_OPT_I64(C, critic_n_hidden, "critic_n_hidden", "2", 1, FR_MLP_MAX_LAYERS - 1, "hidden layers of the critic (SiLU)", 0),
    FR_OPT_I64(C, eval_episodes, "eval_episodes", "10", 1, 1 << 16,
               "episodes of each evaluation (sampled actions, noise c0 = 2^32 − 1; episode ids from 2^31)", FR_OPT_RESUMABLE),
};
#undef C

typedef struct {
    fr_ctl_state c;  /* first: the shared entries (flowrl/ctl_algo.h) take the state as it is */
    const fr_env *env;
    fr_backend *be;
    int64_t N, T, O, A, S, cap;
    uint32_t seed;
    fr_gen_policy g; /* kind flow */
    /* the rollout's Monte-Carlo pairs */
    float *x0;     /* (T·N, A) the policy-space actions (before the action range scaling) */
    float *eps;    /* (T·N·S, A) */
    double *tau;   /* (T·N·S,) */
    double *l_old; /* (T·N·S,) */
    /* host scratch (cap = the larger of N·S, M·S, E rows; vrows for the critic) */
    float *p_obs, *p_act, *p_eps; /* (cap, O), (cap, A), (cap, A) */
    double *p_tau, *l_new, *gl;   /* (cap,) */
    float *dv, *rec, *mb_obs, *mb_x; /* (M,), (T·N·S·A), (M, O), (M, A) */
    double *lo_mb, *ratio_d; /* (M·S,) */
    double *adv_raw;         /* (M,) */
    double *work;            /* (4·M·S + M,) fr_fpo_surrogate's */
    float *ratio;            /* (M·S,) */
    int64_t *perm; /* (T·N,) */
    uint32_t epoch;
    int discretize;        /* τ on the Euler grid */
    fr_flow_loss_mode mode;
} fpo_state;

static void fpo_defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->run.seed = 1;
    ro->run.epochs = 100;
    ro->run.checkpoint_every = 10;
    ro->opt.lr = 3e-4;           /* the playground's learning_rate */
    ro->opt.weight_decay = 0.0;  /* optax.scale_by_adam: Adam */
    ro->opt.max_grad_norm = 0.0f; /* the playground does not clip */
    ro->opt.adam_eps = 1e-8;     /* scale_by_adam's eps */
    ro->ev.eval_every = 10;
}

static fr_status fpo_check(const fr_run_opts *ro, const void *ao)
{
    const fpo_opts *a = ao;
    return fr_ctl_check_run(ro, "fpo", a->minibatch, a->n_envs * a->n_steps, "--n-envs x --n-steps");
}

static void fpo_free(void *p)
{
    fpo_state *s = p;
    if (!s) return;
    fr_gen_policy_free(&s->g);
    fr_ctl_state_free(&s->c);
    void *h[] = {s->x0, s->eps, s->tau, s->l_old, s->p_obs, s->p_act, s->p_eps, s->p_tau, s->l_new, s->gl, s->dv,
                 s->rec, s->mb_obs, s->mb_x, s->lo_mb, s->ratio_d, s->adv_raw, s->work, s->ratio, s->perm};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    free(s);
}

/* The S pairs of each of R actions as S·R rows of the CFM call: obs (R, O) and x (R, A) repeated
 * S times per action into s->p_obs, s->p_act. */
static void spread_pairs(fpo_state *s, int64_t R, const float *obs, const float *x)
{
    const int64_t O = s->O, A = s->A, S = s->S;
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < S; j++) {
            memcpy(s->p_obs + (i * S + j) * O, obs + i * O, (size_t)O * sizeof(float));
            memcpy(s->p_act + (i * S + j) * A, x + i * A, (size_t)A * sizeof(float));
        }
}

/* Step t of the rollout: the actions of N normalised observations (fr_gen_policy_act's noise of
 * (epoch, n, t)), their pairs (ε, τ) and CFM losses, the values. */
static fr_status act_cb(void *user, int64_t t, int64_t N, const float *obs, float *action, double *logp, double *value)
{
    fpo_state *s = user;
    const int64_t A = s->A, S = s->S, K = s->g.flow.steps;
    FR_TRY(fr_gen_policy_act(&s->g, N, obs, s->seed, s->epoch, (uint32_t)t, action));
    if (!logp) return FR_OK; /* an evaluation */
    const int64_t r0 = t * N;
    float *x0 = s->x0 + r0 * A;
    /* fr_flow_policy_sample leaves the Euler state in flow.x: the policy-space action */
    for (int64_t i = 0; i < N * A; i++) x0[i] = (float)s->g.flow.x[i];
    float *eps = s->eps + r0 * S * A;
    double *tau = s->tau + r0 * S;
    for (int64_t n = 0; n < N; n++) {
        const uint32_t row = (uint32_t)(r0 + n);
        for (int64_t j = 0; j < S; j++) {
            for (int64_t d = 0; d < A; d++)
                eps[(n * S + j) * A + d] = fr_rng_normal(s->seed, FR_RNG_CTL_FPO, s->epoch, row, 0, (uint32_t)(j * A + d));
            tau[n * S + j] = s->discretize
                                 ? 1.0 - (double)(fr_rng_u32(s->seed, FR_RNG_CTL_FPO, s->epoch, row, 1, (uint32_t)j) %
                                                  (uint32_t)K) / (double)K
                                 : (double)fr_rng_uniform(s->seed, FR_RNG_CTL_FPO, s->epoch, row, 1, (uint32_t)j);
        }
    }
    spread_pairs(s, N, obs, x0);
    FR_TRY(fr_flow_policy_cfm(&s->g.flow, N * S, s->p_obs, s->p_act, eps, tau, s->mode, s->l_old + r0 * S, NULL));
    for (int64_t n = 0; n < N; n++) logp[n] = 0.0; /* FPO has no log-probability */
    return fr_ctl_value_cb(&s->c, N, obs, value);
}

static int64_t max3(int64_t a, int64_t b, int64_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

/* The flow policy: the --policy checkpoint (its network, observation statistics and action
 * range) or a fresh one (torch.nn.Linear's init, stream 4 as behaviour cloning's; statistics from
 * nothing). */
static fr_status load_policy(fr_run *r, fpo_state *s)
{
    const fpo_opts *a = r->ao;
    if (!a->policy[0]) {
        FR_TRY(fr_gen_policy_new(&s->g, FR_GEN_FLOW, r->be, s->O, s->A, a->hidden, (int)a->n_hidden,
                                 (int)a->flow_steps, s->cap));
        FR_TRY(fr_mlp_init_params(s->g.net, s->seed, 4, 1.0f));
        return fr_rms_init(&s->c.rms, s->O);
    }
    char env[64] = "";
    FR_TRY(fr_bc_load(a->policy, r->be, s->cap, &s->g, &s->c.rms, env, sizeof env));
    if (s->g.kind != FR_GEN_FLOW)
        return fr_fail(FR_ERR_FORMAT, "train: --policy %s: a %s policy; --algo fpo fine-tunes a flow policy (flowrl bc "
                       "--policy flow)", a->policy, fr_gen_kind_name(s->g.kind));
    if (s->g.O != s->O || s->g.A != s->A)
        return fr_fail(FR_ERR_FORMAT, "train: --policy %s: a policy of %lld observations and %lld actions (env '%s'); %s has "
                       "%lld and %lld", a->policy, (long long)s->g.O, (long long)s->g.A, env, s->env->desc,
                       (long long)s->O, (long long)s->A);
    return FR_OK;
}

static fr_status fpo_setup(fr_run *r, void **out)
{
    const fpo_opts *a = r->ao;
    const fr_env *e = &r->env;
    FR_TRY(fr_ctl_check_env(e, "fpo"));
    fpo_state *s = fr_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    *out = s;
    s->env = e;
    s->be = r->be;
    s->N = a->n_envs;
    s->T = a->n_steps;
    s->O = e->obs_dim;
    s->A = e->action_dim;
    s->S = a->n_samples;
    s->seed = r->o->run.seed;
    s->discretize = a->discretize_t;
    s->mode = a->output_mode == 0 ? FR_FLOW_LOSS_U : FR_FLOW_LOSS_U_AS_EPS;
    const int64_t M = a->minibatch, TN = s->T * s->N, S = s->S, O = s->O, A = s->A;
    s->cap = max3(s->N * S, M * S, a->eval_episodes);
    const int64_t vrows = TN + s->N > M ? TN + s->N : M;
    FR_TRY(load_policy(r, s));
    FR_TRY(fr_ctl_critic_new(&s->c, r->be, O, a->critic_hidden, (int)a->critic_n_hidden, FR_ACT_SILU, vrows, s->seed));
    fr_ctl_params_add(&s->c, s->g.net->params, s->g.net->n_params);
    fr_ctl_params_critic(&s->c, a->lr_critic, -1.0);
    FR_TRY(fr_ctl_state_new(&s->c, e, s->seed, s->N, s->T, a->gamma));
    const int64_t P = s->cap;
    int ok = FR_ALLOC(s->x0, TN * A) && FR_ALLOC(s->eps, TN * S * A) && FR_ALLOC(s->tau, TN * S) &&
             FR_ALLOC(s->l_old, TN * S) && FR_ALLOC(s->p_obs, P * O) && FR_ALLOC(s->p_act, P * A) &&
             FR_ALLOC(s->p_eps, P * A) && FR_ALLOC(s->p_tau, P) && FR_ALLOC(s->l_new, P) && FR_ALLOC(s->gl, P) &&
             FR_ALLOC(s->dv, M) && FR_ALLOC(s->rec, TN * S * A) &&
             FR_ALLOC(s->mb_obs, M * O) && FR_ALLOC(s->mb_x, M * A) && FR_ALLOC(s->lo_mb, M * S) && FR_ALLOC(s->ratio_d, M * S) &&
             FR_ALLOC(s->adv_raw, M) && FR_ALLOC(s->work, 4 * M * S + M) && FR_ALLOC(s->ratio, M * S) && FR_ALLOC(s->perm, TN);
    return ok ? FR_OK : FR_ERR_NOMEM;
}

static void fpo_header(fr_run *r, void *state)
{
    const fpo_opts *a = r->ao;
    fpo_state *s = state;
    fr_run_info(r, "fpo: policy %s (flow %lld x %d SiLU, %d Euler steps%s); %lld envs x %lld steps an epoch, minibatch "
                   "%lld x %lld passes; %lld pairs an action, %s, %s ratio, tau %s; clip %g gamma %g lambda %g vf %g "
                   "target_kl %g; obs stats %s, reward scale %s; %s",
                a->policy[0] ? a->policy : "(fresh)", (long long)s->g.net->dim[1], s->g.net->L - 1, s->g.flow.steps,
                s->g.act_scaled ? ", action range scaled" : "", (long long)a->n_envs, (long long)a->n_steps,
                (long long)a->minibatch, (long long)a->update_epochs, (long long)a->n_samples, k_modes[a->output_mode],
                a->average_before_exp ? "averaged" : "per-pair", a->discretize_t ? "on the Euler grid" : "U(0, 1)",
                a->clip, a->gamma, a->lambda, a->vf_coef, a->target_kl, a->obs_norm_update ? "running" : "frozen",
                a->reward_scale ? "on" : "off", s->env->desc);
}

/* One minibatch of actions idx (M,): the ratios (s->ratio, *n_ratio of them), the loss's gradient
 * into the parameters' zeroed gradients; *max_dl = max |ℓ_θ − ℓ_old| over its pairs. */
static fr_status minibatch(fr_run *r, fpo_state *s, const int64_t *idx, int64_t M, fr_ctl_ppo_stats *st, double *v_loss,
                           int64_t *n_ratio, double *max_dl)
{
    const fpo_opts *a = r->ao;
    const fr_ctl_block *b = &s->c.blk;
    const int64_t O = s->O, A = s->A, S = s->S, MS = M * S;
    for (int64_t i = 0; i < M; i++) {
        const int64_t row = idx[i];
        memcpy(s->mb_obs + i * O, b->obs + row * O, (size_t)O * sizeof(float));
        memcpy(s->mb_x + i * A, s->x0 + row * A, (size_t)A * sizeof(float));
        memcpy(s->p_eps + i * S * A, s->eps + row * S * A, (size_t)(S * A) * sizeof(float));
        for (int64_t j = 0; j < S; j++) {
            s->p_tau[i * S + j] = s->tau[row * S + j];
            s->lo_mb[i * S + j] = s->l_old[row * S + j];
        }
        s->adv_raw[i] = b->adv[row];
    }
    spread_pairs(s, M, s->mb_obs, s->mb_x);
    FR_TRY(fr_flow_policy_cfm(&s->g.flow, MS, s->p_obs, s->p_act, s->p_eps, s->p_tau, s->mode, s->l_new, NULL));
    double dl = 0.0;
    for (int64_t k = 0; k < MS; k++) {
        const double d = fabs(s->l_new[k] - s->lo_mb[k]);
        dl = d > dl || d != d ? d : dl;
    }
    *max_dl = dl;
    const int64_t nr = fr_fpo_surrogate(M, S, s->lo_mb, s->l_new, s->adv_raw, a->clip, a->average_before_exp, s->work,
                                        s->ratio_d, s->gl, st);
    for (int64_t k = 0; k < nr; k++) s->ratio[k] = (float)s->ratio_d[k];
    *n_ratio = nr;
    FR_TRY(fr_mlp_forward_host(&s->c.vf, M, s->mb_obs, s->c.vout));
    *v_loss = fr_ctl_value_loss(M, s->c.vout, b->ret, idx, 1, 1.0, a->vf_coef, s->dv);
    FR_TRY(fr_mlp_zero_grad(s->g.net));
    FR_TRY(fr_mlp_zero_grad(&s->c.vf));
    /* the policy's one forward of this minibatch is the one above: its activations give the gradient */
    FR_TRY(fr_flow_policy_cfm_grad(&s->g.flow, MS, s->p_act, s->p_eps, s->p_tau, s->mode, s->gl));
    return fr_mlp_backward_host(&s->c.vf, M, s->dv);
}

static fr_status fpo_epoch(fr_run *r, void *state)
{
    const fpo_opts *a = r->ao;
    fpo_state *s = state;
    const int64_t TN = s->T * s->N, M = a->minibatch < TN ? a->minibatch : TN, nb = TN / M > 1 ? TN / M : 1;
    s->epoch = (uint32_t)r->epoch;
    const fr_ctl_policy p = {act_cb, fr_ctl_value_cb, s};
    const fr_ctl_collect_cfg cc = {a->obs_norm_update, a->reward_scale, a->gamma, a->lambda};
    FR_TRY(fr_ctl_algo_collect(r, &s->c, &p, &cc, 1, s->rec));
    FR_TRY(fr_ctl_rec_rows(r, "fpo_tau", s->rec, s->tau, s->T, s->N, s->S));
    FR_TRY(fr_ctl_rec_rows(r, "cfm_old", s->rec, s->l_old, s->T, s->N, s->S));
    FR_TRY(fr_run_rec_f32(r, "fpo_eps", s->eps, 3, TN, s->S, s->A));
    double cfm_mean = 0.0;
    for (int64_t k = 0; k < TN * s->S; k++) cfm_mean += s->l_old[k];
    cfm_mean /= (double)(TN * s->S);
    fr_ctl_updates up = {0};
    double dl_first = 0.0;
    for (int64_t k = 0; k < a->update_epochs && !up.stop; k++) {
        fr_ctl_minibatch_order(s->seed, s->epoch, (uint32_t)k, TN, s->perm);
        for (int64_t j = 0; j < nb && !up.stop; j++) {
            int64_t nr = 0;
            double dl = 0.0;
            FR_TRY(minibatch(r, s, s->perm + j * M, M, &up.st, &up.v_loss, &nr, &dl));
            if (up.u == 0) dl_first = dl;
            FR_TRY(fr_ctl_update(r, &up, "FPO", up.st.loss + a->vf_coef * up.v_loss, nr, s->ratio, a->target_kl));
        }
    }
    FR_TRY(fr_ctl_updates_end(r, &up, &s->c.vec, s->env, (r->epoch + 1) * TN));
    fr_run_metric(r, "cfm_loss", cfm_mean);
    fr_run_metric(r, "ratio_mean", up.rm_sum / (double)up.u);
    fr_run_metric(r, "onpolicy_dl", dl_first);
    fr_run_metric(r, "updates", (double)up.u);
    return FR_OK;
}

/* --eval-episodes episodes of the policy's sampled actions (fr_gen_policy_evaluate: noise c0 =
 * 2^32 − 1, ids from 2^31), observations normalised with the current statistics (not merged). */
static fr_status fpo_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    const fpo_opts *a = r->ao;
    fpo_state *s = state;
    double ret, succ;
    FR_TRY(fr_gen_policy_evaluate(&s->g, &s->c.rms, s->env, s->seed, a->eval_episodes, &ret, &succ));
    *score = ret;
    const fr_ctl_nets nets = {2, {"policy", "critic"}, {s->g.net, &s->c.vf}, 0};
    return fr_ctl_eval_report(r, s->env, key, epoch, epoch * s->T * s->N, a->eval_episodes, ret, succ, -1, &nets);
}

/* The smallest run (tests/test_algos.c): a fresh policy 8 x 1 with 3 Euler steps, 2 environments
 * x 8 steps, minibatches of 4 actions with 2 pairs each, 2 passes, critic 8 x 1. */
static void fpo_tiny(fr_run_opts *ro, void *ao)
{
    fpo_opts *a = ao;
    a->n_envs = 2;
    a->n_steps = 8;
    a->minibatch = 4;
    a->update_epochs = 2;
    a->n_samples = 2;
    a->hidden = 8;
    a->n_hidden = 1;
    a->flow_steps = 3;
    a->critic_hidden = 8;
    a->critic_n_hidden = 1;
    a->eval_episodes = 2;
    ro->run.epochs = 3;
    ro->run.checkpoint_every = 1;
    ro->run.keep_checkpoints = 0; /* as ppo-gaussian's: the kill-and-resume test needs checkpoint 2 */
    ro->ev.eval_every = 2;
}

static const char *const k_progress[] = {"return", "success", "approx_kl", "clipfrac", NULL};

const fr_algo fr_algo_fpo = {
    "fpo",
    "FPO: PPO for a flow policy with the CFM-loss ratio (--env, from `flowrl bc --policy flow`)",
    "docs/algorithms/fpo.md",
    "Flow Policy Optimization (docs/algorithms/fpo.md; FPO's playground): fine-tunes a flow policy (--policy, from "
    "`flowrl bc --policy flow`; empty: a fresh one) on a control environment. --n-envs environments x --n-steps steps "
    "an epoch with observation normalisation, running reward scaling and GAE; each action keeps --n-samples "
    "Monte-Carlo (eps, tau) pairs and their CFM losses; --update-epochs passes of --minibatch-size minibatches (one "
    "AdamW step each) on the clipped surrogate of the ratio exp(mean old loss - mean new loss) (or one per pair, "
    "--no-average-losses-before-exp) plus the critic's loss; evaluation: the sampled actions' return.",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(fpo_opts),
    fpo_defaults,
    fpo_check,
    NULL,
    fpo_setup,
    fpo_header,
    fpo_epoch,
    fr_ctl_algo_save,
    fr_ctl_algo_load,
    k_progress,
    fpo_free,
    fpo_tiny,
    0,
    1,
    fr_ctl_algo_params,
    fpo_evaluate,
    "control",
    FR_ALGO_PREFS_NONE, 0 /* no_lora */,
};
