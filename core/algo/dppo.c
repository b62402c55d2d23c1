/* DPPO, Diffusion Policy Policy Optimization, on a control environment
 * (docs/algorithms/dppo.md; spec objectives.md §14, samplers.md §7; irom-princeton/dppo@cc7234a
 * model/diffusion/diffusion_ppo.py, diffusion_vpg.py, agent/finetune/train_ppo_diffusion_agent.py):
 * `flowrl train --algo dppo --env NAME --policy CKPT` fine-tunes a `flowrl bc --policy ddpm`
 * checkpoint (without --policy: a fresh DDPM policy of --policy-hidden-dim x --policy-n-hidden, the tiny runs).
 *
 * The denoising MDP: each action comes from the DDPM chain x_T → … → x_0 (flowrl/ddpm_policy.h);
 * the last K = --ft-denoising-steps steps (t = K−1 .. 0) run the fine-tuned copy of the network,
 * the earlier ones the frozen base, and each fine-tuned step is its own Gaussian "action":
 *   x̂0 = clip(√(1/ᾱ_t)·x_{t+1} − √(1/ᾱ_t − 1)·ε̂, ±denoised_clip_value),
 *   μ = c_x0(t)·x̂0 + c_xt(t)·x_{t+1},  x_t = μ + max(sd_t, min_sampling_denoising_std)·clip(z, ±randn_clip_value)
 * (sd_t = √max(β̃_t, 1e-20); x_T = z unclipped; evaluation: DPPO's deterministic chain, sd floored
 * at 1e-3 and 0 at t = 0). The chain (K + 1 states) and the per-step log-probabilities
 * logp = mean_d clamp(log N(x_t; μ, max(sd_t, min_logprob_denoising_std)²), −5, 2) are kept per
 * environment step; the value network sees the observation; GAE over environment steps
 * (flowrl/ctl.h).
 *
 * Update: --update-epochs passes over the T·N·K (environment step, denoising step) pairs in
 * minibatches of --minibatch-size pairs (pair u = row·K + i, i = 0 the noisiest fine-tuned step;
 * torch.unravel_index's order), each: the new log-probabilities through the fine-tuned network,
 * the advantages normalised over the minibatch, clamped to their [q_lo, q_hi] quantiles and
 * multiplied by gamma_denoising^(K − i − 1), the clipped surrogate with the clip of step i
 * ε_i = base + (c − base)·(e^{rate·i/(K−1)} − 1)/(e^{rate} − 1), plus vf_coef·½·mean (V − R)²;
 * one optimiser step of the run loop over [fine-tuned network, value network] (two AdamW groups:
 * --lr, --lr-critic); approx-KL early stop. DDPM's η is 1: the entropy term is inert and left out.
 *
 * Random numbers: the chain's noise of (epoch, environment n, step t) from Philox (seed,
 * FR_RNG_CTL_ACTION, epoch, n, t) elements j·A + d (step j's noise; j = T: x_T), as
 * fr_gen_policy_act draws it (evaluation: c0 = 2^32 − 1); the pair orders fr_ctl_minibatch_order;
 * resets (seed, FR_RNG_ENV_RESET, episode). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/algo.h"
#include "flowrl/awm_elem.h"
#include "flowrl/ctl_algo.h"
#include "flowrl/ctl_bc.h"
#include "flowrl/dppo.h"
#include "flowrl/mlp.h"
#include "flowrl/philox.h"

typedef struct {
    int64_t n_envs, n_steps, minibatch, update_epochs, hidden, n_hidden, pol_hidden, pol_n_hidden, denoising_steps, ft_steps;
    int64_t eval_episodes;
    double gamma, lambda, gamma_den, clip, clip_base, clip_rate, min_sample_std, min_logp_std, randn_clip, x0_clip;
    double vf_coef, target_kl, lr_critic, adv_q_lo, adv_q_hi;
    int obs_norm, reward_scale;
    char policy[FR_OPT_PATH_MAX];
} dppo_opts;

#define C dppo_opts
static const fr_opt k_rows[] = {
    FR_OPT_ROW_(C, policy, "policy", FR_OPT_STR, "", 0, 0, NULL,
                "the `flowrl bc --policy ddpm` checkpoint to fine-tune (empty: a fresh DDPM policy of --policy-hidden-dim x "
                "--policy-n-hidden and --denoising-steps)", FR_OPT_PATH, NULL, "CKPT"),
    FR_OPT_I64(C, n_envs, "n_envs", "8", 1, 1 << 16, "environments stepped in lock-step (N)", 0),
    FR_OPT_I64(C, n_steps, "n_steps", "64", 1, 1 << 20, "steps of each environment per epoch (T); a batch is N·T", 0),
    FR_OPT_I64(C, ft_steps, "ft_denoising_steps", "10", 1, FR_DDPM_MAX_T,
               "the last K denoising steps that run the fine-tuned network and form the denoising MDP", 0),
    FR_OPT_I64(C, minibatch, "minibatch_size", "512", 1, 1 << 24,
               "(environment step, denoising step) pairs of a minibatch (one optimiser step)", 0),
    FR_OPT_I64(C, update_epochs, "update_epochs", "5", 1, 1000, "passes over the N·T·K pairs per epoch", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "64", 1, 8192, "width of the value MLP", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "2", 1, FR_MLP_MAX_LAYERS - 1, "hidden layers of the value MLP (tanh)", 0),
    FR_OPT_I64(C, pol_hidden, "policy_hidden_dim", "64", 1, 8192,
               "width of a fresh policy (flowrl bc's default; a checkpoint has its own)", 0),
    FR_OPT_I64(C, pol_n_hidden, "policy_n_hidden", "4", 1, FR_MLP_MAX_LAYERS - 1,
               "hidden layers (SiLU) of a fresh policy (flowrl bc's default; a checkpoint has its own)", 0),
    FR_OPT_I64(C, denoising_steps, "denoising_steps", "20", 1, FR_DDPM_MAX_T,
               "denoising steps of a fresh policy (a checkpoint has its own)", 0),
    FR_OPT_F64(C, gamma, "gamma", "0.99", 0, 1, "discount γ", 0),
    FR_OPT_F64(C, lambda, "gae_lambda", "0.95", 0, 1, "GAE λ", 0),
    FR_OPT_F64(C, gamma_den, "gamma_denoising", "0.99", 0, 1,
               "denoising discount: step i's advantage times gamma_denoising^(K − i − 1)", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, clip, "clip_ploss_coef", "0.01", 1e-6, 10, "PPO clip range of the last denoising step (c)",
               FR_OPT_RESUMABLE),
    FR_OPT_F64(C, clip_base, "clip_ploss_coef_base", "0.01", 1e-6, 10, "PPO clip range of the noisiest fine-tuned step",
               FR_OPT_RESUMABLE),
    FR_OPT_F64(C, clip_rate, "clip_ploss_coef_rate", "3", 1e-6, 100,
               "rate of the exponential clip schedule from base to c over the fine-tuned steps", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, min_sample_std, "min_sampling_denoising_std", "0.1", 0, 10,
               "floor of every denoising step's sampling std (exploration)", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, min_logp_std, "min_logprob_denoising_std", "0.1", 1e-6, 10,
               "floor of the std in the denoising steps' log-probabilities", 0),
    FR_OPT_F64(C, randn_clip, "randn_clip_value", "3", 1e-6, 100, "|z| clip of each denoising step's noise", 0),
    FR_OPT_F64(C, x0_clip, "denoised_clip_value", "1", 1e-6, 100, "clip of the predicted x̂0 at every step", 0),
    FR_OPT_F64(C, adv_q_lo, "clip_advantage_lower_quantile", "0", 0, 1,
               "advantages clamped below at this quantile of the minibatch (0: none)", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, adv_q_hi, "clip_advantage_upper_quantile", "1", 0, 1,
               "advantages clamped above at this quantile of the minibatch (1: none)", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, vf_coef, "vf_coef", "0.5", 0, 1e6, "value-loss weight", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, target_kl, "target_kl", "1", 0, 1e6,
               "stop the epoch's updates after a minibatch whose approx-KL exceeds it (0: never)", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, lr_critic, "lr_critic", "1e-3", 0, 10, "AdamW learning rate of the value MLP (0: --lr)", FR_OPT_RESUMABLE),
    FR_OPT_BOOL(C, obs_norm, "obs_norm", "false",
                "running observation normalisation (off: the checkpoint's demonstration statistics, frozen, as DPPO's "
                "dataset normalisation)", 0),
    FR_OPT_BOOL(C, reward_scale, "reward_scale", "true", "running reward scaling (DPPO's RunningRewardScaler)", 0),
    FR_OPT_I64(C, eval_episodes, "eval_episodes", "10", 1, 1 << 16,
               "episodes of each evaluation (the deterministic chain; episode ids from 2^31)", FR_OPT_RESUMABLE),
};
#undef C

typedef struct {
    fr_ctl_state c;                /* first: the shared entries (flowrl/ctl_algo.h) take the state as it is */
    const fr_env *env;
    const dppo_opts *a;
    fr_backend *be;
    int64_t N, T, O, A, K, cap, cap_base, P; /* P: T·N·K pairs; cap_base: the base's rows */
    int Td;                        /* denoising steps */
    uint32_t seed;
    fr_gen_policy ft, base;        /* the fine-tuned copy (its parameters train) and the frozen base */
    int has_base;                  /* K < Td: the early steps run the base */
    /* per rollout row (T·N): the chain's fine-tuned part (K + 1, A) and the K log-probabilities */
    float *chain;
    double *lp_old;
    /* host scratch */
    float *z;                          /* (cap, (Td + 1)·A) a row's chain noise */
    float *x, *rec;                    /* (cap, A), (T·N·K,) */
    float *mb_obs, *mb_x, *mb_xn, *dout, *dv, *ratio; /* (mb, O), (mb, A) x 3, (mb,) x 2 */
    int *mb_i, *mb_t, *tt;             /* (mb,) x 2, (cap,) */
    double *lp_new, *lp_o, *g, *adv_raw, *adv_n, *clip_i; /* (mb,) */
    int64_t *perm;                     /* (P,) */
    uint32_t epoch;                    /* the epoch the act callback draws for */
    int eval;                          /* 1: the deterministic chain */
} dppo_state;

static void dppo_defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->run.seed = 1;
    ro->run.epochs = 100;
    ro->run.checkpoint_every = 10;
    ro->opt.lr = 1e-4;              /* DPPO gym: actor_lr 1e-4, critic_lr 1e-3 */
    ro->opt.weight_decay = 0.0;
    ro->opt.max_grad_norm = 0.0f;   /* DPPO's gym configs set no max_grad_norm */
    ro->opt.adam_eps = 1e-8;        /* torch.optim.AdamW's */
    ro->ev.eval_every = 10;
}

static fr_status dppo_check(const fr_run_opts *ro, const void *ao)
{
    const dppo_opts *a = ao;
    FR_TRY(fr_ctl_check_run(ro, "dppo", 0, 0, NULL)); /* the minibatch of pairs: setup checks it */
    if (a->adv_q_lo > a->adv_q_hi)
        return fr_fail(FR_ERR_ARG, "train: --clip-advantage-lower-quantile %g exceeds --clip-advantage-upper-quantile %g",
                       a->adv_q_lo, a->adv_q_hi);
    if (!a->policy[0] && a->ft_steps > a->denoising_steps)
        return fr_fail(FR_ERR_ARG, "train: --ft-denoising-steps %lld exceeds --denoising-steps %lld",
                       (long long)a->ft_steps, (long long)a->denoising_steps);
    return FR_OK;
}

static void dppo_free(void *p)
{
    dppo_state *s = p;
    if (!s) return;
    fr_gen_policy_free(&s->ft);
    if (s->has_base) fr_gen_policy_free(&s->base);
    fr_ctl_state_free(&s->c);
    void *h[] = {s->chain, s->lp_old, s->z, s->x, s->rec, s->mb_obs, s->mb_x, s->mb_xn, s->dout, s->dv,
                 s->ratio, s->mb_i, s->mb_t, s->tt, s->lp_new, s->lp_o, s->g, s->adv_raw, s->adv_n, s->clip_i, s->perm};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    free(s);
}

/* The chain of R rows of normalised observations obs at environment step t of epoch c0 into
 * action (R, A) (unscaled to the action range); with keep, rows row0 .. row0 + R − 1 of the chain
 * store and their log-probabilities. */
static fr_status run_chain(dppo_state *s, int64_t R, const float *obs, uint32_t c0, uint32_t t,
                           int det, int keep, int64_t row0, float *action)
{
    const dppo_opts *a = s->a;
    const int64_t A = s->A, K = s->K, Lz = (int64_t)(s->Td + 1) * A;
    fr_ddpm_policy *pf = &s->ft.ddpm;
    for (int64_t n = 0; n < R; n++)
        for (int64_t e = 0; e < Lz; e++)
            s->z[n * Lz + e] = fr_rng_normal(s->seed, FR_RNG_CTL_ACTION, c0, (uint32_t)n, t, (uint32_t)e);
    for (int64_t n = 0; n < R; n++)
        for (int64_t d = 0; d < A; d++) s->x[n * A + d] = s->z[n * Lz + (int64_t)s->Td * A + d];
    double mu[64];
    for (int td = s->Td - 1; td >= 0; td--) {
        const int ft = td < K;
        fr_ddpm_policy *p = ft ? pf : &s->base.ddpm;
        for (int64_t n = 0; n < R; n++) s->tt[n] = td;
        if (keep && td == K - 1)
            for (int64_t n = 0; n < R; n++)
                memcpy(s->chain + (row0 + n) * (K + 1) * A, s->x + n * A, (size_t)A * sizeof(float));
        FR_TRY(fr_ddpm_policy_eps(p, R, obs, s->x, s->tt));
        double sd = pf->sd[td];
        if (det) sd = td == 0 ? 0.0 : sd > 1e-3 ? sd : 1e-3;
        else sd = sd > a->min_sample_std ? sd : a->min_sample_std;
        for (int64_t n = 0; n < R; n++) {
            float *x = s->x + n * A;
            fr_dppo_step_mean(pf, td, A, x, p->out_h + n * A, a->x0_clip, mu, NULL);
            for (int64_t d = 0; d < A; d++) {
                double zz = (double)s->z[n * Lz + (int64_t)td * A + d];
                zz = zz < -a->randn_clip ? -a->randn_clip : zz > a->randn_clip ? a->randn_clip : zz;
                x[d] = (float)(mu[d] + sd * zz);
            }
            if (keep && ft) {
                const int64_t row = row0 + n, i = K - 1 - td;
                memcpy(s->chain + (row * (K + 1) + i + 1) * A, x, (size_t)A * sizeof(float));
                s->lp_old[row * K + i] = fr_dppo_step_logp(pf, td, A, x, mu, a->min_logp_std, NULL);
            }
        }
    }
    memcpy(action, s->x, (size_t)(R * A) * sizeof(float));
    fr_gen_policy_unscale(&s->ft, R, action);
    return FR_OK;
}

static fr_status act_cb(void *user, int64_t t, int64_t N, const float *obs, float *action, double *logp, double *value)
{
    dppo_state *s = user;
    if (s->eval) return run_chain(s, N, obs, UINT32_MAX, (uint32_t)t, 1, 0, 0, action);
    FR_TRY(run_chain(s, N, obs, s->epoch, (uint32_t)t, 0, 1, t * N, action));
    /* the block's logp: the sum of the row's K step log-probabilities (bookkeeping only) */
    for (int64_t n = 0; n < N; n++) {
        double l = 0.0;
        for (int64_t i = 0; i < s->K; i++) l += s->lp_old[(t * N + n) * s->K + i];
        logp[n] = l;
    }
    return fr_ctl_value_cb(&s->c, N, obs, value);
}

/* The policies: both from --policy (the base frozen), or a fresh DDPM policy (stream 4, as
 * behaviour cloning's) copied. */
static fr_status load_policies(fr_run *r, dppo_state *s)
{
    const dppo_opts *a = r->ao;
    const fr_env *e = &r->env;
    if (!a->policy[0]) {
        const int64_t Td = a->denoising_steps;
        s->has_base = a->ft_steps < Td;
        FR_TRY(fr_gen_policy_new(&s->ft, FR_GEN_DDPM, r->be, s->O, s->A, a->pol_hidden, (int)a->pol_n_hidden, (int)Td, s->cap));
        FR_TRY(fr_mlp_init_params(s->ft.net, s->seed, 4, 1.0f));
        if (s->has_base) {
            FR_TRY(fr_gen_policy_new(&s->base, FR_GEN_DDPM, r->be, s->O, s->A, a->pol_hidden, (int)a->pol_n_hidden, (int)Td, s->cap_base));
            FR_TRY(fr_mlp_init_params(s->base.net, s->seed, 4, 1.0f));
        }
        return fr_rms_init(&s->c.rms, s->O);
    }
    char env[64];
    FR_TRY(fr_bc_load(a->policy, r->be, s->cap, &s->ft, &s->c.rms, env, sizeof env));
    if (s->ft.kind != FR_GEN_DDPM)
        return fr_fail(FR_ERR_ARG, "train: --policy %s is a %s policy; --algo dppo fine-tunes a ddpm one (flowrl bc "
                       "--policy ddpm)", a->policy, fr_gen_kind_name(s->ft.kind));
    if (s->ft.O != s->O || s->ft.A != s->A)
        return fr_fail(FR_ERR_ARG, "train: --policy %s has %lld observations and %lld actions (env %s); %s has %lld and %lld",
                       a->policy, (long long)s->ft.O, (long long)s->ft.A, env, e->desc, (long long)s->O, (long long)s->A);
    if (a->ft_steps > s->ft.ddpm.T)
        return fr_fail(FR_ERR_ARG, "train: --ft-denoising-steps %lld exceeds the %d denoising steps of %s",
                       (long long)a->ft_steps, s->ft.ddpm.T, a->policy);
    s->has_base = a->ft_steps < s->ft.ddpm.T;
    if (!s->has_base) return FR_OK;
    fr_rms tmp;
    fr_status st = fr_bc_load(a->policy, r->be, s->cap_base, &s->base, &tmp, NULL, 0);
    fr_rms_free(&tmp);
    return st;
}

static fr_status dppo_setup(fr_run *r, void **out)
{
    const dppo_opts *a = r->ao;
    const fr_env *e = &r->env;
    FR_TRY(fr_ctl_check_env(e, "dppo"));
    dppo_state *s = fr_calloc(1, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    *out = s;
    s->env = e;
    s->a = a;
    s->be = r->be;
    s->N = a->n_envs;
    s->T = a->n_steps;
    s->O = e->obs_dim;
    s->A = e->action_dim;
    s->K = a->ft_steps;
    s->seed = r->o->run.seed;
    const int64_t mb = a->minibatch, TN = s->T * s->N;
    s->P = TN * s->K;
    if (mb > s->P)
        return fr_fail(FR_ERR_ARG, "train: --minibatch-size %lld exceeds the %lld (step, denoising step) pairs of an epoch "
                       "(--n-envs x --n-steps x --ft-denoising-steps)", (long long)mb, (long long)s->P);
    s->cap = TN + s->N;
    if (mb > s->cap) s->cap = mb;
    if (a->eval_episodes > s->cap) s->cap = a->eval_episodes;
    s->cap_base = s->N > a->eval_episodes ? s->N : a->eval_episodes; /* the base acts in rollouts and evaluations */
    FR_TRY(load_policies(r, s));
    s->Td = s->ft.ddpm.T;
    FR_TRY(fr_ctl_critic_new(&s->c, r->be, s->O, a->hidden, (int)a->n_hidden, FR_ACT_TANH, s->cap, s->seed));
    fr_ctl_params_add(&s->c, s->ft.net->params, s->ft.net->n_params);
    fr_ctl_params_critic(&s->c, a->lr_critic, -1.0);
    FR_TRY(fr_ctl_state_new(&s->c, e, s->seed, s->N, s->T, a->gamma));
    const int64_t A = s->A, K = s->K, Lz = (int64_t)(s->Td + 1) * A;
    int ok = FR_ALLOC(s->chain, TN * (K + 1) * A) && FR_ALLOC(s->lp_old, s->P) && FR_ALLOC(s->z, s->cap * Lz) &&
             FR_ALLOC(s->x, s->cap * A) && FR_ALLOC(s->rec, s->P) &&
             FR_ALLOC(s->mb_obs, mb * s->O) && FR_ALLOC(s->mb_x, mb * A) && FR_ALLOC(s->mb_xn, mb * A) &&
             FR_ALLOC(s->dout, mb * A) && FR_ALLOC(s->dv, mb) && FR_ALLOC(s->ratio, mb) && FR_ALLOC(s->mb_i, mb) && FR_ALLOC(s->mb_t, mb) &&
             FR_ALLOC(s->tt, s->cap) && FR_ALLOC(s->lp_new, mb) && FR_ALLOC(s->lp_o, mb) && FR_ALLOC(s->g, mb) &&
             FR_ALLOC(s->adv_raw, mb) && FR_ALLOC(s->adv_n, mb) && FR_ALLOC(s->clip_i, mb) &&
             FR_ALLOC(s->perm, s->P);
    return ok ? FR_OK : FR_ERR_NOMEM;
}

static void dppo_header(fr_run *r, void *state)
{
    const dppo_opts *a = r->ao;
    dppo_state *s = state;
    fr_run_info(r, "dppo: %s; %lld envs x %lld steps an epoch, last %lld of %d denoising steps fine-tuned, minibatch %lld "
                   "pairs x %lld passes, clip %g..%g (rate %g), gamma %g lambda %g gamma_denoising %g, min std sampling "
                   "%g logprob %g, randn clip %g, x0 clip %g, vf %g target_kl %g; obs norm %s, reward scale %s; %s",
                a->policy[0] ? a->policy : "a fresh policy", (long long)a->n_envs, (long long)a->n_steps, (long long)s->K,
                s->Td, (long long)a->minibatch, (long long)a->update_epochs, a->clip_base, a->clip, a->clip_rate, a->gamma,
                a->lambda, a->gamma_den, a->min_sample_std, a->min_logp_std, a->randn_clip, a->x0_clip, a->vf_coef,
                a->target_kl, a->obs_norm ? "running" : "frozen", a->reward_scale ? "on" : "off", s->env->desc);
}

/* One minibatch of pairs idx (M,): the loss's gradient into the parameters' zeroed gradients. */
static fr_status minibatch(fr_run *r, dppo_state *s, const int64_t *idx, int64_t M, fr_ctl_ppo_stats *st, double *v_loss)
{
    const dppo_opts *a = r->ao;
    const fr_ctl_block *b = &s->c.blk;
    const int64_t O = s->O, A = s->A, K = s->K;
    fr_ddpm_policy *p = &s->ft.ddpm;
    for (int64_t j = 0; j < M; j++) {
        const int64_t row = idx[j] / K, i = idx[j] % K;
        memcpy(s->mb_obs + j * O, b->obs + row * O, (size_t)O * sizeof(float));
        memcpy(s->mb_x + j * A, s->chain + (row * (K + 1) + i) * A, (size_t)A * sizeof(float));
        memcpy(s->mb_xn + j * A, s->chain + (row * (K + 1) + i + 1) * A, (size_t)A * sizeof(float));
        s->mb_i[j] = (int)i;
        s->mb_t[j] = (int)(K - 1 - i);
        s->lp_o[j] = s->lp_old[idx[j]];
        s->adv_raw[j] = b->adv[row];
    }
    FR_TRY(fr_ddpm_policy_eps(p, M, s->mb_obs, s->mb_x, s->mb_t));
    const fr_dppo_cfg c = {K, a->x0_clip, a->min_logp_std, a->gamma_den, a->clip, a->clip_base, a->clip_rate, a->adv_q_lo,
                           a->adv_q_hi};
    FR_TRY(fr_dppo_policy_loss(p, &c, M, p->out_h, s->mb_x, s->mb_xn, s->mb_i, s->lp_o, s->adv_raw, s->lp_new, s->adv_n,
                               s->clip_i, s->g, s->dout, st));
    for (int64_t j = 0; j < M; j++) s->ratio[j] = (float)fr_awm_exp(s->lp_new[j] - s->lp_o[j]);
    FR_TRY(fr_mlp_forward_host(&s->c.vf, M, s->mb_obs, s->c.vout));
    *v_loss = fr_ctl_value_loss(M, s->c.vout, b->ret, idx, K, 0.5, a->vf_coef, s->dv);
    FR_TRY(fr_mlp_zero_grad(s->ft.net));
    FR_TRY(fr_mlp_zero_grad(&s->c.vf));
    FR_TRY(fr_mlp_backward_host(s->ft.net, M, s->dout));
    return fr_mlp_backward_host(&s->c.vf, M, s->dv);
}

static fr_status dppo_epoch(fr_run *r, void *state)
{
    const dppo_opts *a = r->ao;
    dppo_state *s = state;
    const int64_t TN = s->T * s->N, M = a->minibatch, nb = s->P / M > 1 ? s->P / M : 1;
    s->epoch = (uint32_t)r->epoch;
    s->eval = 0;
    const fr_ctl_policy p = {act_cb, fr_ctl_value_cb, s};
    const fr_ctl_collect_cfg cc = {a->obs_norm, a->reward_scale, a->gamma, a->lambda};
    FR_TRY(fr_ctl_algo_collect(r, &s->c, &p, &cc, 1, s->rec));
    FR_TRY(fr_ctl_rec_rows(r, "logp_old", s->rec, s->lp_old, s->T, s->N, s->K));
    fr_ctl_updates up = {0};
    for (int64_t k = 0; k < a->update_epochs && !up.stop; k++) {
        fr_ctl_minibatch_order(s->seed, s->epoch, (uint32_t)k, s->P, s->perm);
        for (int64_t j = 0; j < nb && !up.stop; j++) {
            FR_TRY(minibatch(r, s, s->perm + j * M, M, &up.st, &up.v_loss));
            FR_TRY(fr_ctl_update(r, &up, "DPPO", up.st.loss + a->vf_coef * up.v_loss, M, s->ratio, a->target_kl));
        }
    }
    FR_TRY(fr_ctl_updates_end(r, &up, &s->c.vec, s->env, (r->epoch + 1) * TN));
    fr_run_metric(r, "updates", (double)up.u);
    return FR_OK;
}

/* --eval-episodes episodes of the deterministic chain (fr_ctl_evaluate: ids from 2^31, one per
 * environment, each to its end; noise c0 = 2^32 − 1), observations normalised with the current
 * statistics (not updated): the mean return. */
static fr_status dppo_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    const dppo_opts *a = r->ao;
    dppo_state *s = state;
    const fr_ctl_policy p = {act_cb, fr_ctl_value_cb, s};
    const fr_ctl_nets nets = {2, {"actor", "critic"}, {s->ft.net, &s->c.vf}, 0};
    return fr_ctl_algo_evaluate(r, s->env, s->seed, a->eval_episodes, &s->c.rms, &p, &s->eval, key, epoch, s->T * s->N,
                                &nets, score);
}

/* The smallest run (tests/test_algos.c): a fresh policy 8 x 1 of 4 denoising steps, the last 2
 * fine-tuned; 2 environments x 8 steps, minibatches of 8 of the 32 pairs, 2 passes. */
static void dppo_tiny(fr_run_opts *ro, void *ao)
{
    dppo_opts *a = ao;
    a->n_envs = 2;
    a->n_steps = 8;
    a->denoising_steps = 4;
    a->ft_steps = 2;
    a->minibatch = 8;
    a->update_epochs = 2;
    a->hidden = 8;
    a->n_hidden = 1;
    a->pol_hidden = 8;
    a->pol_n_hidden = 1;
    a->eval_episodes = 2;
    ro->run.epochs = 3;
    ro->run.checkpoint_every = 1;
    /* every checkpoint kept: the kill-and-resume test must find checkpoint 2 */
    ro->run.keep_checkpoints = 0;
    ro->ev.eval_every = 2;
}

static const char *const k_progress[] = {"return", "approx_kl", "clipfrac", NULL};

const fr_algo fr_algo_dppo = {
    "dppo",
    "DPPO: PPO on the denoising MDP of a DDPM policy (--env; fine-tunes a flowrl bc --policy ddpm checkpoint)",
    "docs/algorithms/dppo.md",
    "Diffusion Policy Policy Optimization (docs/algorithms/dppo.md; Ren et al. 2024, irom-princeton/dppo): --policy, a "
    "`flowrl bc --policy ddpm` checkpoint, acts through its DDPM chain with the last --ft-denoising-steps steps run by a "
    "fine-tuned copy (sampling std floored at --min-sampling-denoising-std, noise clipped at --randn-clip-value, x0 at "
    "--denoised-clip-value); --n-envs x --n-steps environment steps an epoch with GAE over them, then --update-epochs "
    "passes of --minibatch-size (environment step, denoising step) pairs: each pair's log-probability ratio in the "
    "clipped surrogate with the per-step clip schedule (--clip-ploss-coef, _base, _rate) and the denoising discount "
    "(--gamma-denoising), plus the value loss; approx-KL early stop; evaluation: the deterministic chain's return.",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(dppo_opts),
    dppo_defaults,
    dppo_check,
    NULL,
    dppo_setup,
    dppo_header,
    dppo_epoch,
    fr_ctl_algo_save,
    fr_ctl_algo_load,
    k_progress,
    dppo_free,
    dppo_tiny,
    0,
    1,
    fr_ctl_algo_params,
    dppo_evaluate,
    "control",
    FR_ALGO_PREFS_NONE, 0 /* no_lora */,
};
