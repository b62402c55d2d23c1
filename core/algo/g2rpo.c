/* G²RPO, Granular-GRPO (docs/algorithms/flow-grpo.md §7; bcmi/Granular-GRPO
 * fastvideo/train_g2rpo_hps.py @ 04ee954) on the family engine (core/algo/traj_family.h):
 * `flowrl train --algo g2rpo`.
 *
 * Per epoch e, P prompts, G members each, the SDE steps k of --eta-step-list (n_k of them) and
 * the granularities g of --granular-list (n_g, g = 1 first):
 *   rows        N = n_k·P·G in the order [k][p][m]: row s = (i·P + p)·G + m for the i-th k; its
 *               sample id p·G + m (the same for every k: one x_T and one ODE anchor per prompt),
 *               c0 = e.
 *   rollout k   a prefix tree of the P·G rows of k with one split of width G at k and noise
 *               only at k (flowrl/rollout.h "Shared noise"): the members share x_T and the ODE
 *               anchor x_0..x_k (computed once per prompt), take one Flow-GRPO SDE step at k
 *               with their own ξ (keyed by (sample id, k)), and finish by ODE on the full grid.
 *               Its trajectory, means and log-probs are copied into the engine's time-major
 *               arrays (backend to backend).
 *   g >= 2      from the same x_{k+1} (the buffer of rollout k, so bit for bit G2's shared SDE
 *               step), an ODE continuation on fr_g2rpo_grid(σ, k, g)[k+1:]: its final sample.
 *   rewards     of every row per granularity; g = 1 through fr_run_rewards (records rewards,
 *               reward_mean, reward_std; the metric reward_mean), the others as rewards.g<g>.
 *   advantages  fr_adv_local_group_sum over the granularities, groups = the G members of one
 *               (k, p) (unbiased std, eps 1e-8): G2's sum over granularities (its sum over
 *               reward models is a sum over the run's one reward).
 *   update      per k (in list order) one optimiser step: PPO-clip (clip, adv clip) of step k
 *               over that k's P·G rows, the objective's mean over them (G2: mean over the group,
 *               averaged over GPUs of one prompt each); no KL. Update k + 1 runs after the
 *               optimiser step of update k, so only update 0 has ratio 1 exactly.
 *
 * audit.log records of an epoch: prompts, traj (T+1, N, D), mean (T, N, D), noise.xi (T, N, D:
 * ξ of step k on the rows of k, 0 elsewhere), logp_old (T, N), rewards, reward_mean, reward_std,
 * then per g >= 2 x.g<g> (N, D: the samples its reward scores) and rewards.g<g> (N,), adv (N,),
 * per optimiser step u<u>.ratio ((P·G,)), u<u>.loss, u<u>.grad_norm, u<u>.grad.<NAME>; kl,
 * clipfrac, approx_kl; then the loop's state records. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/g2rpo.h"
#include "core/algo/traj_family.h"
#include "flowrl/advantage.h"
#include "flowrl/philox.h"

typedef struct {
    fr_g2rpo_opts o;
    int64_t ks[FR_G2RPO_MAX_STEPS], nk, gs[FR_G2RPO_MAX_GRAN], ng;
    int64_t B; /* P·G rows per k */
    fr_ppo_params prm;
    fr_rollout_branch br;
    fr_tf tf;
    float *sc_traj, *sc_mean, *sc_logp; /* backend (T+1, B, D), (T, B, D), (T, B): rollout k */
    float *xg;                          /* backend (n_g − 1, N, D): the samples of g >= 2 */
    float *xg_h, *rew, *grid;           /* host (n_g − 1, N, D), (n_g, N), (T+1,) */
    int64_t *rows;                      /* (B,) */
    char names[FR_G2RPO_MAX_GRAN][3][32]; /* per g >= 2: x.g<g>, rewards.g<g>, reward_mean.g<g> */
} g2_state;

fr_status fr_g2rpo_parse_list(const char *s, const char *flag, int64_t lo, int64_t hi, int64_t *out, int64_t cap,
                              int64_t *n)
{
    const char *p = s;
    *n = 0;
    for (;;) {
        char *end;
        errno = 0;
        long long v = (*p >= '0' && *p <= '9') ? strtoll(p, &end, 10) : (end = (char *)p, 0);
        if (end == p || errno)
            return fr_fail(FR_ERR_ARG, "train: g2rpo: %s '%s': expected comma-separated integers", flag, s);
        if (v < lo || v > hi)
            return fr_fail(FR_ERR_ARG, "train: g2rpo: %s '%s': %lld is outside %lld..%lld", flag, s, v, (long long)lo,
                           (long long)hi);
        if (*n > 0 && v <= out[*n - 1])
            return fr_fail(FR_ERR_ARG, "train: g2rpo: %s '%s': the values must increase", flag, s);
        if (*n == cap) return fr_fail(FR_ERR_ARG, "train: g2rpo: %s '%s': more than %lld values", flag, s, (long long)cap);
        out[(*n)++] = v;
        if (*end == '\0') return FR_OK;
        if (*end != ',') return fr_fail(FR_ERR_ARG, "train: g2rpo: %s '%s': expected comma-separated integers", flag, s);
        p = end + 1;
    }
}

void fr_g2rpo_grid(const float *sigmas, int64_t T, int64_t k, int64_t g, float *out, int64_t *len)
{
    int64_t n = 0;
    for (int64_t i = 0; i < k + 2; i++) out[n++] = sigmas[i];
    for (int64_t i = k + 2; i <= T; i += g) out[n++] = sigmas[i];
    out[n - 1] = 0.0f;
    *len = n;
}

static fr_status parse_opts(const fr_run_opts *ro, const fr_g2rpo_opts *o, int64_t *ks, int64_t *nk, int64_t *gs,
                            int64_t *ng)
{
    const int64_t T = ro->smp.num_steps;
    if (o->eta_steps[0] == '\0') { /* 0..T/2 − 1: G2's 0..7 at T 16 */
        *nk = T / 2 < FR_G2RPO_MAX_STEPS ? T / 2 : FR_G2RPO_MAX_STEPS;
        for (int64_t i = 0; i < *nk; i++) ks[i] = i;
    } else
        FR_TRY(fr_g2rpo_parse_list(o->eta_steps, "--eta-step-list", 0, T - 2, ks, FR_G2RPO_MAX_STEPS, nk));
    FR_TRY(fr_g2rpo_parse_list(o->granular, "--granular-list", 1, 1000000, gs, FR_G2RPO_MAX_GRAN, ng));
    if (gs[0] != 1)
        return fr_fail(FR_ERR_ARG, "train: g2rpo: --granular-list '%s': the list starts with 1 (the full grid: the "
                                   "trained trajectory and reward_mean)", o->granular);
    return FR_OK;
}

static void g2_free(void *p)
{
    g2_state *t = p;
    if (!t) return;
    void *dev[] = {t->sc_traj, t->sc_mean, t->sc_logp, t->xg};
    void *bufs[] = {t->xg_h, t->rew, t->grid, t->rows};
    fr_run_free_bufs(t->tf.be, dev, sizeof dev / sizeof dev[0], bufs, sizeof bufs / sizeof bufs[0]);
    fr_tf_free(&t->tf);
    free(t);
}

static fr_status g2_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    g2_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_g2rpo_opts *)r->ao;
    FR_TRY(parse_opts(ro, &t->o, t->ks, &t->nk, t->gs, &t->ng));
    t->prm = (fr_ppo_params){ro->c.clip_range, ro->c.adv_clip};
    t->B = ro->c.prompts * ro->c.group;
    FR_TRY(fr_tf_setup(r, &t->tf, t->nk * t->B, ro->smp.cfg != 1.0f, &fr_traj_ppo, &t->prm, FR_KL_CODE));
    fr_tf *f = &t->tf;
    f->rc.time_quantized = 1; /* G2's ⌊1000·σ⌋ input, in rollout and training */
    t->br = (fr_rollout_branch){0, f->G, 1.0f};
    const int64_t N = f->N, D = f->D, T = f->T, B = t->B, ne = t->ng - 1;
    if (!(t->sc_traj = fr_dev_floats(r->be, (T + 1) * B * D)) || !(t->sc_mean = fr_dev_floats(r->be, T * B * D)) ||
        !(t->sc_logp = fr_dev_floats(r->be, T * B)) || (ne > 0 && !(t->xg = fr_dev_floats(r->be, ne * N * D))))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->xg_h, ne * N * D + 1) || !FR_ALLOC(t->rew, t->ng * N) || !FR_ALLOC(t->grid, T + 1) ||
        !FR_ALLOC(t->rows, B))
        return FR_ERR_NOMEM;
    for (int64_t gi = 1; gi < t->ng; gi++) {
        snprintf(t->names[gi][0], sizeof t->names[gi][0], "x.g%lld", (long long)t->gs[gi]);
        snprintf(t->names[gi][1], sizeof t->names[gi][1], "rewards.g%lld", (long long)t->gs[gi]);
        snprintf(t->names[gi][2], sizeof t->names[gi][2], "reward_mean.g%lld", (long long)t->gs[gi]);
    }
    return FR_OK;
}

/* Rollout i (step k) of the B rows [i·B, (i + 1)·B): the tree into scratch, copied into the
 * engine's arrays; ξ of step k regenerated on the host for the audit; then the continuations of
 * the granularities g >= 2 from its x_{k+1}. */
static fr_status rollout_k(fr_run *r, g2_state *t, int64_t i)
{
    fr_tf *f = &t->tf;
    const int64_t N = f->N, D = f->D, T = f->T, B = t->B, k = t->ks[i], s0 = i * B;
    const size_t fl = sizeof(float);
    for (int64_t j = 0; j < T; j++) f->step_noise[j] = j == k ? r->o->smp.noise_level : 0.0f;
    t->br.at = k;
    fr_rollout_cfg rk = f->rc;
    rk.step_noise = f->step_noise;
    rk.branch = &t->br;
    rk.n_branch = 1;
    rk.c0 = (uint32_t)r->epoch;
    fr_rollout_traj tj = {t->sc_traj, t->sc_mean, t->sc_logp, NULL, NULL};
    FR_TRY(fr_run_rollout(r, &r->pol, &rk, B, f->pid + s0, f->sid + s0, f->x + s0 * D, &tj));
    for (int64_t j = 0; j <= T; j++) {
        FR_TRY(fr_d2d(r->be, f->traj + (j * N + s0) * D, t->sc_traj + j * B * D, (size_t)(B * D) * fl));
        if (j == T) break;
        FR_TRY(fr_d2d(r->be, f->mean + (j * N + s0) * D, t->sc_mean + j * B * D, (size_t)(B * D) * fl));
        FR_TRY(fr_d2d(r->be, f->logp + j * N + s0, t->sc_logp + j * B, (size_t)B * fl));
    }
    for (int64_t b = 0; b < B; b++)
        fr_rng_fill_normal(f->xi + (k * N + s0 + b) * D, D, r->o->run.seed, FR_RNG_SAMPLER_NOISE, rk.c0,
                           fr_rollout_noise_owner(&rk, f->sid[s0 + b], k), (uint32_t)k);
    for (int64_t gi = 1; gi < t->ng; gi++) {
        int64_t len;
        fr_g2rpo_grid(f->rc.sigmas, T, k, t->gs[gi], t->grid, &len);
        fr_rollout_cfg rc = f->rc; /* deterministic: level 0 at every step is the Euler step */
        rc.sigmas = t->grid + k + 1;
        rc.T = len - k - 2;
        rc.noise = 0.0f;
        rc.c0 = rk.c0;
        FR_TRY(fr_rollout(&r->pol, r->be, r->task, &rc, B, f->pid + s0, f->sid + s0, t->sc_traj + (k + 1) * B * D,
                          t->xg + ((gi - 1) * N + s0) * D, NULL));
    }
    return FR_OK;
}

/* The rewards of granularities g >= 2 (after fr_run_rewards' of g = 1), their records and metrics. */
static fr_status granular_rewards(fr_run *r, g2_state *t)
{
    fr_tf *f = &t->tf;
    const int64_t N = f->N, D = f->D;
    for (int64_t gi = 1; gi < t->ng; gi++) {
        float *xh = t->xg_h + (gi - 1) * N * D, *rw = t->rew + gi * N;
        FR_TRY(fr_run_reward_input(r, xh, t->xg + (gi - 1) * N * D, N * D));
        FR_TRY(fr_run_check_finite(r, "rollout sample", xh, N * D));
        FR_TRY(fr_run_rec_f32(r, t->names[gi][0], xh, 2, N, D, 1));
        FR_TRY(fr_run_reward_split(r, N, f->pid, xh, rw, f->correct));
        FR_TRY(fr_run_rec_f32(r, t->names[gi][1], rw, 1, N, 1, 1));
        float mean, std;
        FR_TRY(fr_adv_mean_std(rw, N, &mean, &std));
        fr_run_metric(r, t->names[gi][2], mean);
    }
    return FR_OK;
}

static fr_status g2_epoch(fr_run *r, void *state)
{
    g2_state *t = state;
    fr_tf *f = &t->tf;
    const int64_t N = f->N, D = f->D, T = f->T, B = t->B, G = f->G, P = r->o->c.prompts;
    for (int64_t i = 0; i < t->nk; i++) FR_TRY(fr_tf_check_trained(f, t->ks[i]));
    FR_TRY(fr_run_prompts(r, f->prompts));
    for (int64_t s = 0; s < N; s++) {
        f->pid[s] = f->prompts[(s / G) % P];
        f->sid[s] = (uint32_t)(s % B);
        f->group[s] = s / G;
    }
    memset(f->xi, 0, (size_t)(T * N * D) * sizeof *f->xi);
    for (int64_t i = 0; i < t->nk; i++) FR_TRY(rollout_k(r, t, i));
    FR_TRY(fr_run_reward_input(r, f->x_h, f->x, N * D));
    FR_TRY(fr_d2h(r->be, f->logp_h, f->logp, (size_t)(T * N) * sizeof(float)));
    FR_TRY(fr_run_check_finite(r, "rollout sample", f->x_h, N * D));
    FR_TRY(fr_run_rec_dev_f32(r, "traj", f->traj, 3, T + 1, N, D));
    FR_TRY(fr_run_rec_dev_f32(r, "mean", f->mean, 3, T, N, D));
    FR_TRY(fr_run_rec_f32(r, "noise.xi", f->xi, 3, T, N, D));
    FR_TRY(fr_run_rec_f32(r, "logp_old", f->logp_h, 2, T, N, 1));
    FR_TRY(fr_run_rewards(r, N, f->pid, f->x_h, t->rew, f->correct));
    FR_TRY(granular_rewards(r, t));
    FR_TRY(fr_adv_local_group_sum(t->ng, N, t->rew, G, FR_ADV_EPS_LOCAL, f->adv));
    FR_TRY(fr_run_rec_f32(r, "adv", f->adv, 1, N, 1, 1));
    fr_tf_plan_reset(f);
    for (int64_t i = 0; i < t->nk; i++) {
        for (int64_t b = 0; b < B; b++) t->rows[b] = i * B + b;
        FR_TRY(fr_tf_plan_update(f, 1, B, 1, 1));
        FR_TRY(fr_tf_plan_micro(f, t->ks[i], t->rows, B, 1.0f, NULL));
    }
    fr_run_metric(r, "samples", (double)N);
    fr_run_metric(r, "scored", (double)(t->ng * N));
    FR_TRY(fr_tf_run_plan(r, f));
    return fr_tf_finish(r, f);
}

static void g2_header(fr_run *r, void *state)
{
    g2_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s at one step k per rollout, ode elsewhere; %lld steps (%s grid, shift %g, quantised time), "
                   "noise %g, cfg %g",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid), ro->smp.shift,
                (double)ro->smp.noise_level, (double)ro->smp.cfg);
    fr_run_info(r, "SDE steps k %lld..%lld (%lld, one optimiser step each), granularities %s, G %lld members per prompt; "
                   "clip %g, adv clip %g, no KL",
                (long long)t->ks[0], (long long)t->ks[t->nk - 1], (long long)t->nk, t->o.granular, (long long)ro->c.group,
                ro->c.clip_range, (double)ro->c.adv_clip);
}

/* ---- options ------------------------------------------------------------------------------ */

#define O fr_g2rpo_opts
static const fr_opt k_rows[] = {
    FR_OPT_STR(O, eta_steps, "eta_step_list", "",
               "the SDE steps k (increasing, <= T-2): a rollout and one optimiser step each; \"\" = 0..T/2-1 "
               "(G2's 0..7 at T 16; flowrl choice for other T)", 0),
    FR_OPT_STR(O, granular, "granular_list", "1,2",
               "continuation grid strides g (increasing, 1 first): s[:k+2] ++ s[k+2::g], advantages summed over g", 0),
};
#undef O

/* G2's finetune_g2rpo_hps.sh on a CPU: the Flow-GRPO sde step at η 0.7, T 16 on s(linspace)
 * with shift 3, quantised time, steps 0..7, granularities {1, 2}, clip 1e-4, adv clip 5, no KL;
 * lr is the run's. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_fastvideo(ro, FR_SAMPLER_SDE, 16, 0.7f, 1e-4);
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    int64_t ks[FR_G2RPO_MAX_STEPS], gs[FR_G2RPO_MAX_GRAN], nk, ng;
    static const fr_sampler_kind kinds[] = {FR_SAMPLER_SDE}; /* G2's stochastic step is Flow-GRPO's sde step */
    FR_TRY(fr_tf_check_common(ro, "g2rpo", kinds, 1, 2, FR_TF_LOCAL_GROUPS | FR_TF_NO_KL));
    return parse_opts(ro, ao, ks, &nk, gs, &ng);
}

static void tiny(fr_run_opts *ro, void *ao)
{
    fr_g2rpo_opts *o = ao;
    ro->smp.num_steps = 4;
    ro->c.prompts = 2;
    ro->c.group = 4;
    ro->c.clip_range = 0.2;
    ro->opt.lr = 3e-3;
    o->eta_steps[0] = '\0'; /* 0..T/2 − 1 = {0, 1} */
    snprintf(o->granular, sizeof o->granular, "1,2");
}

static const char *const k_progress[] = {"clipfrac", "ratio_min", "ratio_max", NULL};

const fr_algo fr_algo_g2rpo = {
    .name = "g2rpo",
    .summary = "G2RPO (Granular-GRPO): one SDE step per rollout from a shared ODE anchor, multi-granularity advantages",
    .doc = "docs/algorithms/flow-grpo.md",
    .help = "G2RPO fine-tuning: per epoch and SDE step k of --eta-step-list, each prompt's G members share x_T and\n"
            "the ODE anchor x_0..x_k, take one Flow-GRPO SDE step at k and finish by ODE, once per granularity g of\n"
            "--granular-list (grid s[:k+2] ++ s[k+2::g]); advantages = sum over g of local-group advantages; one\n"
            "PPO-clip optimiser step per k on step k; no KL.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_g2rpo_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = fr_tf_needs_ref_beta,
    .setup = g2_setup,
    .header = g2_header,
    .epoch = g2_epoch,
    .progress_keys = k_progress,
    .free = g2_free,
    .tiny = tiny,
};
