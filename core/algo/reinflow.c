/* ReinFlow (docs/algorithms/reinflow.md; spec objectives.md §13, samplers.md §8): PPO on the
 * learned-noise Markov chain of a behaviour-cloned flow policy (`flowrl bc --policy flow`), after
 * ReinFlow/ReinFlow@aed2819 model/flow/ft_ppo/ppoflow.py (PPOFlow), model/flow/mlp_flow.py
 * (NoisyFlowMLP, ExploreNoiseNet) and agent/finetune/reinflow/train_ppo_flow_agent.py.
 *
 * Per epoch: a block of T steps of N environments (flowrl/ctl.h: the BC checkpoint's frozen
 * observation statistics, DPPO's running reward scaling, GAE), each action the last state x_K of
 * the chain of flowrl/reinflow.h, the chain (K + 1, A) and its normalised log-prob stored per row;
 * then --update-epochs passes of minibatches: the chain's log-prob under the current velocity and
 * noise networks (one forward of K·M rows each), ρ = exp(clamp(new) − clamp(old)) with both
 * clamped to [−1, 1], the clipped surrogate, −ent_coef·H and the value loss, one optimiser step of
 * the run loop over [velocity MLP, noise MLP] (actor group) and the value MLP (critic group).
 *
 * One t grid: every velocity and noise evaluation, at rollout and in the update, is at
 * t_k = 1 − k/K, k = 0..K−1, the left-endpoint Euler grid of the flow policy BC trained (ReinFlow's
 * get_logprobs grid linspace(0, 1 − dt, K) in its t' = 1 − t); ReinFlow's get_actions uses
 * linspace(0, 1, K) instead (samplers.md §8 quirk).
 *
 * Random numbers: row n's chain at environment step t of epoch e from Philox (seed,
 * FR_RNG_CTL_ACTION, e, n, t): elements 0..A−1 x_0, elements (k + 1)·A + d the noise of step k
 * (the acting layout of flowrl/ctl_bc.h); minibatch orders fr_ctl_minibatch_order; resets (seed,
 * FR_RNG_ENV_RESET, episode). No new Philox purpose. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/algo.h"
#include "flowrl/awm_elem.h"
#include "flowrl/ctl_algo.h"
#include "flowrl/ctl_bc.h"
#include "flowrl/env_ctl.h"
#include "flowrl/mlp.h"
#include "flowrl/philox.h"
#include "flowrl/reinflow.h"

typedef struct {
    char bc[FR_OPT_PATH_MAX];
    int64_t n_envs, n_steps, minibatch, update_epochs, repeat, hidden, n_hidden, steps, eval_episodes;
    double gamma, lambda, clip, ent_coef, vf_coef, target_kl, lr_critic, wd_critic;
    double sigma_min, sigma_max, hold, decay, randn_clip, denoised_clip, lp_min, lp_max;
    int reward_scale, obs_norm_update, noise_decay;
} rf_opts;

#define C rf_opts
static const fr_opt k_rows[] = {
    FR_OPT_STR(C, bc, "policy", "",
               "the flow policy's checkpoint (flowrl bc --policy flow); empty: a fresh flow policy of --hidden-dim x "
               "--n-hidden (ReinFlow's start without actor_policy_path)",
               FR_OPT_PATH),
    FR_OPT_I64(C, n_envs, "n_envs", "8", 1, 1 << 16, "environments stepped in lock-step (N)", 0),
    FR_OPT_I64(C, n_steps, "n_steps", "128", 1, 1 << 20, "steps of each environment per epoch (T); a batch is N·T", 0),
    FR_OPT_I64(C, minibatch, "minibatch_size", "256", 1, 1 << 24, "rows of a minibatch (one optimiser step)", 0),
    FR_OPT_I64(C, update_epochs, "update_epochs", "5", 1, 1000, "passes over the batch per epoch", 0),
    FR_OPT_I64(C, repeat, "repeat_samples", "1", 1, 100,
               "each pass orders R copies of the batch (ReinFlow's repeat_samples: 10)", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "64", 1, 8192, "width of the noise and value MLPs (and of a fresh policy)", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "2", 1, FR_MLP_MAX_LAYERS - 1,
               "hidden layers of the noise (tanh) and value (tanh) MLPs (and of a fresh policy, SiLU)", 0),
    FR_OPT_I64(C, steps, "denoising_steps", "0", 0, 64,
               "chain steps K (0: the checkpoint's flow steps; a fresh policy 4, ReinFlow's hopper)", 0),
    FR_OPT_F64(C, gamma, "gamma", "0.99", 0, 1, "discount γ", 0),
    FR_OPT_F64(C, lambda, "gae_lambda", "0.95", 0, 1, "GAE λ", 0),
    FR_OPT_F64(C, clip, "clip_coef", "0.01", 1e-6, 10, "PPO clip range ε", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, ent_coef, "ent_coef", "0.03", 0, 100, "weight of −H (the chain's entropy rate)", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, vf_coef, "vf_coef", "0.5", 0, 1e6, "value-loss weight", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, target_kl, "target_kl", "1", 0, 1e6,
               "stop the epoch's updates after a minibatch whose approx-KL exceeds it (0: never)", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, lr_critic, "lr_critic", "6.5e-4", 0, 10, "AdamW learning rate of the value MLP (0: --lr)",
               FR_OPT_RESUMABLE),
    FR_OPT_F64(C, wd_critic, "weight_decay_critic", "1e-5", 0, 10, "AdamW weight decay of the value MLP",
               FR_OPT_RESUMABLE),
    FR_OPT_F64(C, sigma_min, "min_std", "0.1", 1e-6, 10, "lower bound σmin of the learned noise", 0),
    FR_OPT_F64(C, sigma_max, "max_std", "0.24", 1e-6, 10, "upper bound σmax of the learned noise", 0),
    FR_OPT_BOOL(C, noise_decay, "noise_decay", "true",
                "learn_decay: σmax held for --max-noise-hold-ratio of the epochs, then cosine-annealed", 0),
    FR_OPT_F64(C, hold, "max_noise_hold_ratio", "0.35", 0, 1, "share of the epochs σmax is held", 0),
    FR_OPT_F64(C, decay, "max_noise_decay_ratio", "0.7", 0, 1,
               "σmax decays to (1 − r)·σmin + r·σmax", 0),
    FR_OPT_F64(C, randn_clip, "randn_clip_value", "3", 0, 100, "a step's draw is clamped to μ ± this·σ", 0),
    FR_OPT_F64(C, denoised_clip, "denoised_clip_value", "1", 1e-6, 100, "the transition means are clamped to ±this", 0),
    FR_OPT_F64(C, lp_min, "logprob_min", "-1", -1e9, 0, "old and new chain log-probs are clamped to [min, max]", 0),
    FR_OPT_F64(C, lp_max, "logprob_max", "1", 0, 1e9, "see --logprob-min", 0),
    FR_OPT_BOOL(C, reward_scale, "reward_scale", "true", "running reward scaling (DPPO's RunningRewardScaler)", 0),
    FR_OPT_BOOL(C, obs_norm_update, "obs_norm_update", "false",
                "the observation statistics keep merging (false: the checkpoint's, frozen, as ReinFlow's dataset ones)", 0),
    FR_OPT_I64(C, eval_episodes, "eval_episodes", "10", 1, 1 << 16,
               "episodes of each evaluation (the noise-free chain; episode ids from 2^31)", FR_OPT_RESUMABLE),
};
#undef C

typedef struct {
    fr_ctl_state c;             /* first: the shared entries (flowrl/ctl_algo.h) take the state as it is */
    const fr_env *env;
    const rf_opts *a;
    fr_backend *be;
    int64_t N, T, O, A, cap, M;
    int K;
    uint32_t seed;
    fr_gen_policy pol; /* kind flow: the velocity MLP */
    fr_mlp noise;
    float *chain;               /* (T·N, K + 1, A) the block's chains */
    float *evch;                /* (E, K + 1, A) an evaluation's */
    double lv_min, lv_max;      /* log σmin², log σmax² of this epoch */
    /* host scratch over R = K·max(M, N, E) rows (row k·R0 + i: step k of row i) */
    float *in_x, *in_obs, *in_nz; /* (R, A), (R, O), (R, 8 + O) */
    double *tt;                 /* (R,) */
    double *mu, *ls, *th;       /* (R, A) means, log σ, tanh h, row-major as (i, k, d) */
    double *gmu, *gls;          /* (R, A) their gradients */
    uint8_t *inside;            /* (R, A) 1: the mean's clamp passed */
    float *hout, *dvel, *dh, *dv, *rec; /* (R, A) noise outputs, (R, A), (R, A), (M,), (T·N,) */
    float *mb_obs;              /* (M, O) */
    double *lp_raw, *lp_new, *lp_old, *ent, *g, *adv_raw, *adv_n; /* (M,) */
    float *ratio;               /* (M,) */
    int64_t *perm;              /* (T·N·repeat,) */
    int64_t *mbidx;             /* (M,) a minibatch's rows */
    uint32_t epoch;
    int eval;                   /* 1: the noise-free chain */
    double sigma_mean;          /* mean σ of the last update's chains */
} rf_state;

static void rf_defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->run.seed = 1;
    ro->run.epochs = 100;
    ro->run.checkpoint_every = 10;
    ro->opt.lr = 4.5e-5;          /* ReinFlow hopper-v2 actor_lr */
    ro->opt.weight_decay = 0.0;   /* actor_weight_decay */
    ro->opt.max_grad_norm = 0.0f; /* ReinFlow's configs set no max_grad_norm */
    ro->opt.adam_eps = 1e-8;      /* torch.optim.AdamW's */
    ro->ev.eval_every = 10;
}

static fr_status rf_check(const fr_run_opts *ro, const void *ao)
{
    const rf_opts *a = ao;
    FR_TRY(fr_ctl_check_run(ro, "reinflow", a->minibatch, a->n_envs * a->n_steps * a->repeat,
                            "--n-envs x --n-steps x --repeat-samples"));
    if (a->sigma_min > a->sigma_max)
        return fr_fail(FR_ERR_ARG, "train: --min-std %g exceeds --max-std %g", a->sigma_min, a->sigma_max);
    if (a->lp_min >= a->lp_max)
        return fr_fail(FR_ERR_ARG, "train: --logprob-min %g must be below --logprob-max %g", a->lp_min, a->lp_max);
    return FR_OK;
}

static void rf_free(void *p)
{
    rf_state *s = p;
    if (!s) return;
    fr_gen_policy_free(&s->pol);
    fr_mlp_free(&s->noise);
    fr_ctl_state_free(&s->c);
    void *h[] = {s->chain, s->evch, s->in_x, s->in_obs, s->in_nz, s->tt, s->mu, s->ls, s->th, s->gmu, s->gls, s->inside, s->hout, s->dvel, s->dh,
                 s->dv, s->rec, s->mb_obs, s->lp_raw, s->lp_new, s->lp_old, s->ent, s->g, s->adv_raw,
                 s->adv_n, s->ratio, s->perm, s->mbidx};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    free(s);
}

/* The velocity and noise networks at every step of R0 rows: row i's step k is network row
 * k·R0 + i, its input obs (R0, O) and s->in_x's x_k (filled by the caller for k = 0 or all k). */
static fr_status nets_forward(rf_state *s, int64_t R0, int k0, int k1, const float *obs)
{
    const int64_t O = s->O, W = O + FR_FLOW_TEMB, R = (int64_t)(k1 - k0) * R0;
    for (int k = k0; k < k1; k++) {
        const double tk = 1.0 - (double)k / (double)s->K;
        float emb[FR_FLOW_TEMB];
        fr_flow_temb(tk, emb);
        for (int64_t i = 0; i < R0; i++) {
            const int64_t r = (int64_t)(k - k0) * R0 + i;
            s->tt[r] = tk;
            memcpy(s->in_obs + r * O, obs + i * O, (size_t)O * sizeof(float));
            /* ReinFlow's noise feature: [time_emb.detach(), cond_emb] */
            memcpy(s->in_nz + r * W, emb, sizeof emb);
            memcpy(s->in_nz + r * W + FR_FLOW_TEMB, obs + i * O, (size_t)O * sizeof(float));
        }
    }
    FR_TRY(fr_flow_policy_velocity(&s->pol.flow, R, s->in_obs, s->in_x, s->tt));
    return fr_mlp_forward_host(&s->noise, R, s->in_nz, s->hout);
}

/* μ, log σ and tanh h of network row r (step k) into the (i, k, d) slots at j. */
static void transition(rf_state *s, int64_t r, int k, const float *x, int64_t j)
{
    const double dt = (1.0 - (double)(k + 1) / (double)s->K) - (1.0 - (double)k / (double)s->K);
    fr_reinflow_transition(s->A, x, s->pol.flow.out_h + r * s->A, s->hout + r * s->A, dt, s->pol.flow.out_scale,
                           s->a->denoised_clip, s->lv_min, s->lv_max, s->mu + j, s->ls + j, s->th + j, s->inside + j);
}

/* One environment step's chains of N rows (flowrl/reinflow.h): actions, the chains' log-probs and
 * the values; the chains into the block (evaluation: the noise-free chain, x_0 = 0 as ReinFlow's
 * eval_mode keeps the means, into scratch). */
static fr_status act_cb(void *user, int64_t t, int64_t N, const float *obs, float *action, double *logp, double *value)
{
    rf_state *s = user;
    const rf_opts *a = s->a;
    const int64_t A = s->A, K = s->K, L = (K + 1) * A;
    float *ch = s->eval ? s->evch : s->chain + t * N * L; /* (N, K + 1, A) */
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < A; d++)
            ch[n * L + d] = s->eval ? 0.0f
                                    : fr_rng_normal(s->seed, FR_RNG_CTL_ACTION, s->epoch, (uint32_t)n, (uint32_t)t, (uint32_t)d);
    for (int k = 0; k < K; k++) {
        for (int64_t n = 0; n < N; n++) memcpy(s->in_x + n * A, ch + n * L + k * A, (size_t)A * sizeof(float));
        FR_TRY(nets_forward(s, N, k, k + 1, obs));
        for (int64_t n = 0; n < N; n++) {
            const int64_t j = (n * K + k) * A;
            transition(s, n, k, ch + n * L + k * A, j);
            float *xn = ch + n * L + (k + 1) * A;
            for (int64_t d = 0; d < A; d++) {
                const double m = s->mu[j + d], sg = fr_awm_exp(s->ls[j + d]);
                double x = m;
                if (!s->eval) {
                    const double xi = (double)fr_rng_normal(s->seed, FR_RNG_CTL_ACTION, s->epoch, (uint32_t)n, (uint32_t)t,
                                                            (uint32_t)((k + 1) * A + d));
                    const double lo = m - a->randn_clip * sg, hi = m + a->randn_clip * sg;
                    x = m + sg * xi;
                    x = x < lo ? lo : x > hi ? hi : x;
                }
                if (k == K - 1) x = x < -1.0 ? -1.0 : x > 1.0 ? 1.0 : x; /* act_min, act_max */
                xn[d] = (float)x;
            }
        }
    }
    for (int64_t n = 0; n < N; n++) {
        memcpy(action + n * A, ch + n * L + K * A, (size_t)A * sizeof(float));
        if (!s->eval) fr_reinflow_chain_logp((int)K, A, ch + n * L, s->mu + n * K * A, s->ls + n * K * A, &logp[n], NULL);
    }
    fr_gen_policy_unscale(&s->pol, N, action);
    return s->eval ? FR_OK : fr_ctl_value_cb(&s->c, N, obs, value);
}

/* The policy: the --policy checkpoint (a flow policy; its observation statistics) or a fresh one. */
static fr_status load_policy(fr_run *r, rf_state *s, int64_t cap)
{
    const rf_opts *a = s->a;
    if (!a->bc[0]) {
        FR_TRY(fr_gen_policy_new(&s->pol, FR_GEN_FLOW, r->be, s->O, s->A, a->hidden, (int)a->n_hidden, 4, cap));
        FR_TRY(fr_mlp_init_params(s->pol.net, s->seed, 4, 1.0f)); /* stream 4: a behaviour-cloned policy's */
        return fr_rms_init(&s->c.rms, s->O);
    }
    FR_TRY(fr_bc_load(a->bc, r->be, cap, &s->pol, &s->c.rms, NULL, 0));
    if (s->pol.kind != FR_GEN_FLOW)
        return fr_fail(FR_ERR_ARG, "train: --policy %s is a %s policy; --algo reinflow fine-tunes a flow policy (flowrl bc "
                       "--policy flow)", a->bc, fr_gen_kind_name(s->pol.kind));
    if (s->pol.O != s->O || s->pol.A != s->A)
        return fr_fail(FR_ERR_ARG, "train: --policy %s has %lld observations and %lld actions, %s %lld and %lld", a->bc,
                       (long long)s->pol.O, (long long)s->pol.A, s->env->desc, (long long)s->O, (long long)s->A);
    return FR_OK;
}

static fr_status rf_setup(fr_run *r, void **out)
{
    const rf_opts *a = r->ao;
    const fr_env *e = &r->env;
    FR_TRY(fr_ctl_check_env(e, "reinflow"));
    rf_state *s = fr_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    *out = s;
    s->env = e;
    s->a = a;
    s->be = r->be;
    s->N = a->n_envs;
    s->T = a->n_steps;
    s->O = e->obs_dim;
    s->A = e->action_dim;
    s->M = a->minibatch;
    s->seed = r->o->run.seed;
    /* K: the option, else the checkpoint's flow steps (read by a one-row load), else 4 */
    s->K = (int)a->steps;
    if (!s->K && a->bc[0]) {
        FR_TRY(load_policy(r, s, 1));
        s->K = s->pol.flow.steps;
        fr_gen_policy_free(&s->pol);
        fr_rms_free(&s->c.rms);
    }
    if (!s->K) s->K = 4;
    const int64_t TN = s->T * s->N, E = a->eval_episodes, K = s->K, A = s->A, O = s->O;
    int64_t R0 = s->M > s->N ? s->M : s->N;
    R0 = R0 > E ? R0 : E;
    const int64_t R = K * R0;
    s->cap = TN + s->N > R0 ? TN + s->N : R0;
    FR_TRY(load_policy(r, s, R));
    int64_t dn[FR_MLP_MAX_LAYERS + 1];
    const int L = (int)a->n_hidden + 1;
    dn[0] = FR_FLOW_TEMB + O;
    for (int l = 1; l < L; l++) dn[l] = a->hidden;
    dn[L] = A;
    FR_TRY(fr_mlp_new(&s->noise, r->be, "explore_noise", L, dn, FR_ACT_TANH, R));
    /* FR_RNG_INIT streams: 5 the noise network, 3 the value (every control algorithm's) */
    FR_TRY(fr_mlp_init_params(&s->noise, s->seed, 5, 1.0f));
    FR_TRY(fr_ctl_critic_new(&s->c, r->be, O, a->hidden, (int)a->n_hidden, FR_ACT_TANH, s->cap, s->seed));
    fr_ctl_params_add(&s->c, s->pol.net->params, s->pol.net->n_params);
    fr_ctl_params_add(&s->c, s->noise.params, s->noise.n_params);
    fr_ctl_params_critic(&s->c, a->lr_critic, a->wd_critic);
    FR_TRY(fr_ctl_state_new(&s->c, e, s->seed, s->N, s->T, a->gamma));
    const int64_t M = s->M, CL = (K + 1) * A;
    int ok = FR_ALLOC(s->chain, TN * CL) && FR_ALLOC(s->evch, R0 * CL) && FR_ALLOC(s->in_x, R * A) &&
             FR_ALLOC(s->in_obs, R * O) && FR_ALLOC(s->in_nz, R * (FR_FLOW_TEMB + O)) && FR_ALLOC(s->tt, R) &&
             FR_ALLOC(s->mu, R * A) && FR_ALLOC(s->ls, R * A) && FR_ALLOC(s->th, R * A) && FR_ALLOC(s->gmu, R * A) && FR_ALLOC(s->gls, R * A) && FR_ALLOC(s->inside, R * A) &&
             FR_ALLOC(s->hout, R * A) && FR_ALLOC(s->dvel, R * A) && FR_ALLOC(s->dh, R * A) &&
             FR_ALLOC(s->dv, M) && FR_ALLOC(s->rec, TN) && FR_ALLOC(s->mb_obs, M * O) && FR_ALLOC(s->lp_raw, M) &&
             FR_ALLOC(s->lp_new, M) && FR_ALLOC(s->lp_old, M) && FR_ALLOC(s->ent, M) && FR_ALLOC(s->g, M) &&
             FR_ALLOC(s->adv_raw, M) && FR_ALLOC(s->adv_n, M) && FR_ALLOC(s->ratio, M) &&
             FR_ALLOC(s->perm, TN * a->repeat) && FR_ALLOC(s->mbidx, M);
    return ok ? FR_OK : FR_ERR_NOMEM;
}

static void rf_header(fr_run *r, void *state)
{
    const rf_opts *a = r->ao;
    rf_state *s = state;
    fr_run_info(r, "reinflow: policy %s (%lld x %d SiLU, %s actions), chain K %d, noise MLP %lld x %lld tanh in "
                   "[%g, %g]%s; %lld envs x %lld steps an epoch, minibatch %lld x %lld passes (repeat %lld), gamma %g "
                   "lambda %g clip %g ent %g vf %g target_kl %g; obs statistics %s, reward scale %s; %s",
                a->bc[0] ? a->bc : "fresh", (long long)s->pol.net->dim[1], s->pol.net->L - 1,
                s->pol.act_scaled ? "scaled" : "raw", s->K, (long long)a->hidden, (long long)a->n_hidden, a->sigma_min,
                a->sigma_max, a->noise_decay ? " (learn_decay)" : "", (long long)a->n_envs, (long long)a->n_steps,
                (long long)a->minibatch, (long long)a->update_epochs, (long long)a->repeat, a->gamma, a->lambda, a->clip,
                a->ent_coef, a->vf_coef, a->target_kl, a->obs_norm_update ? "running" : "frozen",
                a->reward_scale ? "on" : "off", s->env->desc);
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* One minibatch of rows idx (M,): the loss's gradient into the parameters' zeroed gradients. */
static fr_status minibatch(rf_state *s, const int64_t *idx, int64_t M, fr_ctl_ppo_stats *st, double *v_loss,
                           double *entropy)
{
    const rf_opts *a = s->a;
    const fr_ctl_block *b = &s->c.blk;
    const int64_t O = s->O, A = s->A, K = s->K, CL = (K + 1) * A;
    for (int64_t i = 0; i < M; i++) {
        memcpy(s->mb_obs + i * O, b->obs + idx[i] * O, (size_t)O * sizeof(float));
        s->adv_raw[i] = b->adv[idx[i]];
        for (int64_t k = 0; k < K; k++)
            memcpy(s->in_x + (k * M + i) * A, s->chain + idx[i] * CL + k * A, (size_t)A * sizeof(float));
    }
    FR_TRY(nets_forward(s, M, 0, (int)K, s->mb_obs));
    FR_TRY(fr_mlp_forward_host(&s->c.vf, M, s->mb_obs, s->c.vout));
    double ent = 0.0, sig = 0.0;
    for (int64_t i = 0; i < M; i++) {
        const float *x = s->chain + idx[i] * CL;
        for (int k = 0; k < K; k++) transition(s, k * M + i, k, x + k * A, (i * K + k) * A);
        fr_reinflow_chain_logp((int)K, A, x, s->mu + i * K * A, s->ls + i * K * A, &s->lp_raw[i], &s->ent[i]);
        s->lp_new[i] = clampd(s->lp_raw[i], a->lp_min, a->lp_max);
        s->lp_old[i] = clampd(b->logp[idx[i]], a->lp_min, a->lp_max);
        ent += s->ent[i] / (double)M;
    }
    fr_ctl_adv_normalize(M, s->adv_raw, s->adv_n);
    fr_ctl_ppo_clip(M, s->lp_new, s->lp_old, s->adv_n, a->clip, s->g, st);
    /* μ's clamp and the log-prob's clamp pass the gradient inside their ranges (torch.clamp);
     * dμ/dout = dt·0.25, dlog σ/dh = (ℓmax − ℓmin)·(1 − tanh² h)/4 */
    const double dl = s->lv_max - s->lv_min, dt = -1.0 / (double)K, sc = s->pol.flow.out_scale;
    for (int64_t i = 0; i < M; i++) {
        s->ratio[i] = (float)fr_awm_exp(s->lp_new[i] - s->lp_old[i]);
        const double gi = s->lp_raw[i] >= a->lp_min && s->lp_raw[i] <= a->lp_max ? s->g[i] : 0.0;
        double *dmu = s->gmu + i * K * A, *dls = s->gls + i * K * A;
        fr_reinflow_chain_grad((int)K, A, s->chain + idx[i] * CL, s->mu + i * K * A, s->ls + i * K * A, gi,
                               -a->ent_coef / (double)M, dmu, dls);
        for (int64_t k = 0; k < K; k++)
            for (int64_t d = 0; d < A; d++) {
                const int64_t j = (i * K + k) * A + d, rr = (k * M + i) * A + d;
                s->dvel[rr] = s->inside[j] ? (float)(dmu[k * A + d] * dt * sc) : 0.0f;
                s->dh[rr] = (float)(dls[k * A + d] * dl * (1.0 - s->th[j] * s->th[j]) * 0.25);
                sig += fr_awm_exp(s->ls[j]);
            }
    }
    s->sigma_mean = sig / ((double)M * (double)K * (double)A);
    *v_loss = fr_ctl_value_loss(M, s->c.vout, b->ret, idx, 1, 0.5, a->vf_coef, s->dv);
    *entropy = ent;
    FR_TRY(fr_mlp_zero_grad(s->pol.net));
    FR_TRY(fr_mlp_zero_grad(&s->noise));
    FR_TRY(fr_mlp_zero_grad(&s->c.vf));
    FR_TRY(fr_mlp_backward_host(s->pol.net, K * M, s->dvel));
    FR_TRY(fr_mlp_backward_host(&s->noise, K * M, s->dh));
    return fr_mlp_backward_host(&s->c.vf, M, s->dv);
}

/* This epoch's noise range [σmin, σmax(e)] as log variances. */
static void noise_range(fr_run *r, rf_state *s, int64_t epoch)
{
    const rf_opts *a = s->a;
    const double smax = a->noise_decay ? fr_reinflow_sigma_max(epoch, r->o->run.epochs, a->sigma_min, a->sigma_max,
                                                                a->hold, a->decay)
                                       : a->sigma_max;
    s->lv_min = 2.0 * fr_awm_log(a->sigma_min);
    s->lv_max = 2.0 * fr_awm_log(smax);
}

static fr_status rf_epoch(fr_run *r, void *state)
{
    const rf_opts *a = r->ao;
    rf_state *s = state;
    const int64_t TN = s->T * s->N, RT = TN * a->repeat, M = a->minibatch, nb = RT / M > 1 ? RT / M : 1;
    s->epoch = (uint32_t)r->epoch;
    s->eval = 0;
    noise_range(r, s, r->epoch);
    const fr_ctl_policy p = {act_cb, fr_ctl_value_cb, s};
    const fr_ctl_collect_cfg cc = {a->obs_norm_update, a->reward_scale, a->gamma, a->lambda};
    FR_TRY(fr_ctl_algo_collect(r, &s->c, &p, &cc, 1, s->rec));
    FR_TRY(fr_ctl_rec_rows(r, "logp_old", s->rec, s->c.blk.logp, s->T, s->N, 1));
    fr_ctl_updates up = {0};
    double ent = 0.0;
    for (int64_t k = 0; k < a->update_epochs && !up.stop; k++) {
        /* ReinFlow's minibatch_generator_repeat: a permutation of the R copies, row = index / R
         * (torch.unravel_index over (T·N, R)) */
        fr_ctl_minibatch_order(s->seed, s->epoch, (uint32_t)k, RT, s->perm);
        for (int64_t j = 0; j < nb && !up.stop; j++) {
            const int64_t m = M < RT ? M : RT;
            for (int64_t i = 0; i < m; i++) s->mbidx[i] = s->perm[j * m + i] / a->repeat;
            FR_TRY(minibatch(s, s->mbidx, m, &up.st, &up.v_loss, &ent));
            const double loss = up.st.loss - a->ent_coef * ent + a->vf_coef * up.v_loss;
            FR_TRY(fr_ctl_update(r, &up, "ReinFlow", loss, m, s->ratio, a->target_kl));
        }
    }
    FR_TRY(fr_ctl_updates_end(r, &up, &s->c.vec, s->env, (r->epoch + 1) * TN));
    fr_run_metric(r, "entropy", ent);
    fr_run_metric(r, "std", s->sigma_mean);
    fr_run_metric(r, "max_std", fr_awm_exp(0.5 * s->lv_max));
    fr_run_metric(r, "updates", (double)up.u);
    return FR_OK;
}

/* The noise-free chain (ReinFlow's eval_mode: x_0 = 0 is our choice of its mean start, see the
 * docs) on --eval-episodes episodes, observations normalised by the (frozen) statistics. */
static fr_status rf_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    const rf_opts *a = r->ao;
    rf_state *s = state;
    const int64_t E = a->eval_episodes;
    noise_range(r, s, epoch);
    const fr_ctl_policy p = {act_cb, fr_ctl_value_cb, s};
    const fr_ctl_nets nets = {3, {"policy", "noise", "critic"}, {s->pol.net, &s->noise, &s->c.vf}, 0};
    return fr_ctl_algo_evaluate(r, s->env, s->seed, E, &s->c.rms, &p, &s->eval, key, epoch, s->T * s->N, &nets, score);
}

/* The smallest run (tests/test_algos.c): a fresh policy 8 x 1, chains of 2 steps, 2 environments
 * x 8 steps, minibatches of 4 over 2 copies, 2 passes. */
static void rf_tiny(fr_run_opts *ro, void *ao)
{
    rf_opts *a = ao;
    a->n_envs = 2;
    a->n_steps = 8;
    a->minibatch = 4;
    a->update_epochs = 2;
    a->repeat = 2;
    a->hidden = 8;
    a->n_hidden = 1;
    a->steps = 2;
    a->eval_episodes = 2;
    ro->run.epochs = 3;
    ro->run.checkpoint_every = 1;
    ro->run.keep_checkpoints = 0; /* as ppo-gaussian's: the kill-and-resume test needs checkpoint 2 */
    ro->ev.eval_every = 2;
}

static const char *const k_progress[] = {"return", "approx_kl", "std", NULL};

const fr_algo fr_algo_reinflow = {
    "reinflow",
    "ReinFlow: PPO on a flow policy's learned-noise Markov chain (--env control; from flowrl bc --policy flow)",
    "docs/algorithms/reinflow.md",
    "ReinFlow (docs/algorithms/reinflow.md): the flow policy of --policy (flowrl bc --policy flow) becomes a Markov chain "
    "of --denoising-steps Gaussian transitions whose std a noise MLP of (t, observation) learns in [--min-std, "
    "--max-std] (learn_decay: the upper bound cosine-annealed); PPO on the chain's normalised log-prob (clamped to "
    "[--logprob-min, --logprob-max], clip 0.01) with an entropy bonus and a value MLP: --n-envs environments x --n-steps "
    "steps an epoch with running reward scaling and GAE, then --update-epochs passes of --minibatch-size minibatches "
    "(one AdamW step each) with approx-KL early stop; evaluation: the noise-free chain's return.",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(rf_opts),
    rf_defaults,
    rf_check,
    NULL,
    rf_setup,
    rf_header,
    rf_epoch,
    fr_ctl_algo_save,
    fr_ctl_algo_load,
    k_progress,
    rf_free,
    rf_tiny,
    0,
    1,
    fr_ctl_algo_params,
    rf_evaluate,
    "control",
    FR_ALGO_PREFS_NONE, 0 /* no_lora */,
};
