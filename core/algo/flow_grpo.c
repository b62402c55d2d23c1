/* Flow-GRPO (docs/algorithms/flow-grpo.md) on the run loop (flowrl/run.h, flowrl/algo.h):
 * `flowrl train --algo flow-grpo`.
 *
 * Per epoch e (audit step e + 1):
 *   1. prompts   fr_run_prompts
 *   2. rollout   G samples per prompt, sample id s = p·G + g, c0 = e, with the SDE (or CPS)
 *                sampler over T steps, storing x_j, x_{j+1}, μ_j and logp_j of every step
 *   3. rewards   fr_run_rewards;   4. advantages   fr_run_advantages, then the zero filter
 *                (fr_adv_filter_zero, purpose FR_RNG_ADV_FILTER, c0 = e)
 *   5. batches   the kept samples in the order of the keys u32(seed, FR_RNG_SHUFFLE, e, 0, 0,
 *                k) (ties by index), cut into num_batches equal batches
 *   6. updates   for each batch and trained step j: recompute v_θ (the rollout's CFG when
 *                train_cfg), logp_θ with the rollout's own step, PPO-clip (or GRPO-Guard)
 *                and β·KL to the frozen base; gradients scaled by 1/(grad_accum·n_trained);
 *                after every grad_accum batches one optimiser step (fr_run_optimizer_step).
 * Trained steps: 0..int(T·timestep_fraction)−1; Flow-GRPO-Fast's random window (one draw
 * per epoch) or MixGRPO's progressive window (steps outside run with noise 0).
 *
 * audit.log records of an epoch, in this order: window (I64 [start, len]), prompts (I32
 * (P,)), noise.x_T (N, D), noise.xi (T, N, D: ξ of each step by coordinate, 0 where the step
 * draws none), traj (T+1, N, D), mean (T, N, D), logp_old (T, N), rewards (N,), reward_mean,
 * reward_std, adv (N,), keep (U8 (N,)), order (I64 (K,); absent when K = 0), then per
 * optimiser step k: u<k>.ratio ((grad_accum, n_trained, b)), u<k>.loss, u<k>.grad_norm,
 * u<k>.grad.<NAME>; then kl, clipfrac, approx_kl; then the loop's state records. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/flow_grpo.h"
#include "flowrl/advantage.h"
#include "flowrl/audit.h"
#include "flowrl/philox.h"
#include "flowrl/traj_objective.h"

typedef struct {
    fr_flow_grpo_opts o;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    fr_mix_window mix;
    fr_traj_trainer tr;          /* policy, reference, guidance, objective (flowrl/traj_objective.h) */
    fr_traj_guard_params prm;    /* the objective's parameters (prm.ppo for PPO-clip) */
    fr_traj_ws ws;
    int have_ws;
    int64_t N, D, T, bmax;
    fr_backend *be;
    /* epoch buffers in backend memory: the rollout's outputs */
    float *traj, *mean, *logp, *x;      /* (T+1,N,D), (T,N,D), (T,N), (N,D) */
    /* host: per-sample values, the copies of logp and x, and ξ regenerated for the audit */
    float *step_noise;                  /* (T,) */
    int *prompts, *pid, *correct;       /* (P,), (N,), (N,) */
    uint32_t *sid;                      /* (N,) */
    int64_t *group, *order;             /* (N,) */
    float *logp_h, *x_h, *xi;           /* (T,N), (N,D), (T,N,D) */
    float *reward, *adv;                /* (N,) */
    uint8_t *keep;                      /* (N,) */
    float *ratios;                      /* (grad_accum, n_trained, b) of one update */
} fg_state;

static int cfg_on(const fr_run_opts *ro, const fr_flow_grpo_opts *o)
{
    return o->train_cfg < 0 ? ro->smp.cfg != 1.0f : o->train_cfg;
}

static int64_t fast_r1(const fr_run_opts *ro, const fr_flow_grpo_opts *o)
{
    return o->window_hi >= 0 ? o->window_hi : ro->smp.num_steps / 2;
}

void fr_fg_free(void *p)
{
    fg_state *t = p;
    if (!t) return;
    if (t->have_ws) fr_traj_ws_free(&t->ws);
    fr_rollout_schedule_free(&t->sched);
    void *dev[] = {t->traj, t->mean, t->logp, t->x};
    void *bufs[] = {t->step_noise, t->prompts, t->pid,    t->correct, t->sid,  t->group, t->order,
                    t->logp_h,     t->x_h,     t->xi,     t->reward,  t->adv,  t->keep,  t->ratios};
    fr_run_free_bufs(t->be, dev, sizeof dev / sizeof dev[0], bufs, sizeof bufs / sizeof bufs[0]);
    free(t);
}

fr_status fr_fg_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    fg_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_flow_grpo_opts *)r->ao;
    t->D = r->pol.cfg.D;
    t->T = ro->smp.num_steps;
    t->N = ro->c.prompts * ro->c.group;
    t->bmax = t->N / ro->c.num_batches;
    const int64_t N = t->N, D = t->D, T = t->T;
    if (t->o.window == FR_FG_WINDOW_MIX) {
        FR_TRY(fr_mix_window_init(&t->mix, T));
        t->mix.window = t->o.mix_window;
        t->mix.iters_per_group = t->o.mix_iters;
    }
    FR_TRY(fr_run_rollout_cfg(r, &t->rc, &t->sched));
    /* the update: PPO-clip or GRPO-Guard with β·KL, CFG recomputed as the rollout formed it */
    t->prm.ppo = (fr_ppo_params){ro->c.clip_range, ro->c.adv_clip};
    t->prm.bias = t->o.guard == FR_FG_GUARD_BATCH ? FR_GUARD_BIAS_BATCH : FR_GUARD_BIAS_SAMPLE;
    const int guard = t->o.guard != FR_FG_GUARD_OFF;
    t->tr = (fr_traj_trainer){&r->pol,
                              r->have_ref ? &r->ref : NULL,
                              r->be,
                              {ro->smp.cfg, cfg_on(ro, &t->o)},
                              guard ? &fr_traj_guard : &fr_traj_ppo,
                              guard ? (const void *)&t->prm : (const void *)&t->prm.ppo,
                              ro->c.beta,
                              t->o.kl_form};
    FR_TRY(fr_traj_ws_alloc(&t->ws, &t->tr, t->bmax));
    t->have_ws = 1;
    t->be = r->be;
    if (!(t->traj = fr_dev_floats(r->be, (T + 1) * N * D)) || !(t->mean = fr_dev_floats(r->be, T * N * D)) ||
        !(t->logp = fr_dev_floats(r->be, T * N)) || !(t->x = fr_dev_floats(r->be, N * D)))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->step_noise, T) || !FR_ALLOC(t->prompts, ro->c.prompts) || !FR_ALLOC(t->pid, N) || !FR_ALLOC(t->correct, N) ||
        !FR_ALLOC(t->sid, N) || !FR_ALLOC(t->group, N) || !FR_ALLOC(t->order, N) || !FR_ALLOC(t->logp_h, T * N) ||
        !FR_ALLOC(t->x_h, N * D) || !FR_ALLOC(t->xi, T * N * D) || !FR_ALLOC(t->reward, N) || !FR_ALLOC(t->adv, N) ||
        !FR_ALLOC(t->keep, N) || !FR_ALLOC(t->ratios, ro->c.grad_accum * T * t->bmax))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* ---- one epoch ----------------------------------------------------------------------------- */

/* Trained steps [start, start + len) and the per-step noise of epoch e. */
static fr_status epoch_window(const fr_run *r, fg_state *t, uint32_t e, int64_t *start, int64_t *len)
{
    const fr_run_opts *ro = r->o;
    if (t->o.window == FR_FG_WINDOW_NONE) {
        *start = 0;
        FR_TRY(fr_train_steps(t->T, ro->c.timestep_fraction, len));
        t->rc.step_noise = NULL; /* FG: every step stochastic, the first T_train trained */
        return FR_OK;
    }
    if (t->o.window == FR_FG_WINDOW_FAST)
        /* one draw per epoch: flowrl rolls out an epoch in one call (call = 0, rank = 0) */
        FR_TRY(fr_fast_window(ro->run.seed, e, 0, 0, t->T, t->o.window_lo, fast_r1(ro, &t->o), t->o.window_size, start,
                              len));
    else
        fr_mix_window_get(&t->mix, start, len);
    for (int64_t i = 0; i < t->T; i++) t->step_noise[i] = (i >= *start && i < *start + *len) ? ro->smp.noise_level : 0.0f;
    t->rc.step_noise = t->step_noise;
    return FR_OK;
}

/* ξ of every step by coordinate, as fr_rollout draws it (zero where it draws none): drawn
 * again on the host for the audit record, so it never crosses. */
static fr_status regen_noise(const fr_run *r, fg_state *t, uint32_t e)
{
    const int64_t N = t->N, D = t->D;
    for (int64_t i = 0; i < t->T; i++) {
        fr_step p = fr_rollout_step(&t->rc, i);
        fr_step_std sd;
        FR_TRY(fr_sampler_std(&p, &sd));
        float *dst = t->xi + i * N * D;
        if (sd.std == 0.0f) {
            memset(dst, 0, (size_t)(N * D) * sizeof *dst);
            continue;
        }
        for (int64_t s = 0; s < N; s++)
            fr_rng_fill_normal(dst + s * D, D, r->o->run.seed, FR_RNG_SAMPLER_NOISE, e, t->sid[s], (uint32_t)i);
    }
    return FR_OK;
}

typedef struct {
    double kl, clipfrac, approx_kl, loss;
    float rmin, rmax;
    int64_t n_terms;
    float last_gn;
} epoch_stats;

/* Loss and gradient of one (batch, step j): the shared trajectory micro-step
 * (flowrl/traj_objective.h: gather, guided forward, log-prob, PPO-clip or Guard, β·KL,
 * dμ/dv, guided backward). ratio receives the b ratios. */
static fr_status micro_step(fr_run *r, fg_state *t, const int64_t *rows, int64_t b, int64_t j, float gout,
                            float *ratio, epoch_stats *es, float *loss_acc)
{
    const fr_traj_data d = {t->N, t->traj, t->mean, t->logp_h, t->adv, t->pid, r->task, &t->rc};
    fr_traj_stats st;
    FR_TRY(fr_traj_micro_step(&t->tr, &t->ws, &d, rows, b, j, gout, ratio, &st));
    if (!isfinite(st.loss))
        return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: loss %g at step %lld (policy %g, KL %g): the policy diverged",
                       (long long)r->epoch + 1, (double)st.loss, (long long)j, (double)st.obj, (double)st.kl);
    *loss_acc += st.loss * gout; /* FG logs loss / divisor (grpo.h "averaging") */
    es->kl += st.kl;
    es->clipfrac += st.clipfrac;
    es->approx_kl += st.approx_kl;
    es->n_terms++;
    if (st.ratio_min < es->rmin) es->rmin = st.ratio_min;
    if (st.ratio_max > es->rmax) es->rmax = st.ratio_max;
    return FR_OK;
}

static fr_status updates(fr_run *r, fg_state *t, int64_t K, int64_t ws0, int64_t wl, epoch_stats *es)
{
    const fr_run_opts *ro = r->o;
    char name[FR_AUDIT_MAX_NAME + 1];
    const int64_t nb = ro->c.num_batches, ga = ro->c.grad_accum, b = K / nb;
    int64_t u = 0;
    if (b > 0 && wl > 0) {
        int64_t divisor;
        FR_TRY(fr_grpo_accum_divisor(ga, wl, &divisor));
        const float gout = 1.0f / (float)divisor;
        for (int64_t q0 = 0; q0 < nb; q0 += ga, u++) {
            fr_model_zero_grad(&r->pol, r->be);
            float uloss = 0.0f;
            for (int64_t q = q0; q < q0 + ga; q++)
                for (int64_t j = ws0; j < ws0 + wl; j++)
                    FR_TRY(micro_step(r, t, t->order + q * b, b, j, gout, t->ratios + ((q - q0) * wl + (j - ws0)) * b,
                                      es, &uloss));
            snprintf(name, sizeof name, "u%lld.ratio", (long long)u);
            FR_TRY(fr_run_rec_f32(r, name, t->ratios, 3, ga, wl, b));
            snprintf(name, sizeof name, "u%lld.loss", (long long)u);
            FR_TRY(fr_run_rec_scalar(r, name, uloss));
            fr_run_update_event ue = {r->epoch + 1, u, ga * wl * b, t->ratios, uloss};
            fr_run_update(r, &ue);
            FR_TRY(fr_run_optimizer_step(r, u, &es->last_gn));
            es->loss += uloss;
        }
    }
    fr_run_metric(r, "updates", (double)u);
    fr_run_metric(r, "loss", u ? es->loss / (double)u : NAN);
    return FR_OK;
}

fr_status fr_fg_epoch(fr_run *r, void *state)
{
    fg_state *t = state;
    const fr_run_opts *ro = r->o;
    const uint32_t e = (uint32_t)r->epoch;
    const int64_t N = t->N, D = t->D, T = t->T, G = ro->c.group;

    int64_t ws0, wl;
    FR_TRY(epoch_window(r, t, e, &ws0, &wl));
    for (int64_t j = ws0; j < ws0 + wl; j++) {
        fr_step p = fr_rollout_step(&t->rc, j);
        fr_step_std sd;
        FR_TRY(fr_sampler_std(&p, &sd));
        if (!(sd.std > 0.0f))
            return fr_fail(FR_ERR_ARG, "train: trained step %lld has std 0 (no density; e.g. cps's last step): "
                                       "lower --timestep-fraction", (long long)j);
    }
    int64_t wv[2] = {ws0, wl};
    int64_t sh2 = 2;
    fr_tensor wt = fr_tensor_view(wv, FR_I64, 1, &sh2);
    FR_TRY(fr_run_rec_tensor(r, "window", &wt));

    /* 1. prompts, 2. rollout */
    FR_TRY(fr_run_prompts(r, t->prompts));
    for (int64_t s = 0; s < N; s++) {
        t->pid[s] = t->prompts[s / G];
        t->sid[s] = (uint32_t)s;
        t->group[s] = t->pid[s];
    }
    t->rc.c0 = e;
    fr_rollout_traj tj = {t->traj, t->mean, t->logp, NULL};
    FR_TRY(fr_run_rollout(r, &r->pol, &t->rc, N, t->pid, t->sid, t->x, &tj));
    /* what crosses: the final samples (the reward's input) and the old log-probs (the PPO
     * core's) once; the trajectory and the means only for their audit digests */
    FR_TRY(fr_run_reward_input(r, t->x_h, t->x, N * D)); /* the reward's input, once */
    FR_TRY(fr_d2h(r->be, t->logp_h, t->logp, (size_t)(T * N) * sizeof(float)));
    FR_TRY(fr_run_check_finite(r, "rollout sample", t->x_h, N * D));
    FR_TRY(fr_run_rec_dev_f32(r, "noise.x_T", t->traj, 2, N, D, 1));
    FR_TRY(regen_noise(r, t, e));
    FR_TRY(fr_run_rec_f32(r, "noise.xi", t->xi, 3, T, N, D));
    FR_TRY(fr_run_rec_dev_f32(r, "traj", t->traj, 3, T + 1, N, D));
    FR_TRY(fr_run_rec_dev_f32(r, "mean", t->mean, 3, T, N, D));
    FR_TRY(fr_run_rec_f32(r, "logp_old", t->logp_h, 2, T, N, 1));

    /* 3. rewards, 4. advantages and the zero filter */
    FR_TRY(fr_run_rewards(r, N, t->pid, t->x_h, t->reward, t->correct));
    FR_TRY(fr_run_advantages(r, N, t->reward, t->group, t->adv));
    int64_t kept;
    FR_TRY(fr_adv_filter_zero(N, t->adv, ro->c.num_batches, ro->run.seed, FR_RNG_ADV_FILTER, e, 0, t->keep, &kept));
    fr_tensor kt = fr_tensor_view(t->keep, FR_U8, 1, &N);
    FR_TRY(fr_run_rec_tensor(r, "keep", &kt));

    /* 5. batches */
    int64_t K;
    FR_TRY(fr_run_shuffle(r, t->N, t->keep, t->order, &K));
    if (K > 0) {
        fr_tensor ot = fr_tensor_view(t->order, FR_I64, 1, &K);
        FR_TRY(fr_run_rec_tensor(r, "order", &ot));
    }
    fr_run_metric(r, "kept", (double)K);
    fr_run_metric(r, "samples", (double)N);

    /* 6. inner updates */
    epoch_stats es = {0, 0, 0, 0, INFINITY, -INFINITY, 0, NAN};
    FR_TRY(updates(r, t, K, ws0, wl, &es));
    const double nterm = es.n_terms ? (double)es.n_terms : NAN;
    const float kl = (float)(es.kl / nterm), clipfrac = (float)(es.clipfrac / nterm),
                approx_kl = (float)(es.approx_kl / nterm);
    FR_TRY(fr_run_rec_scalar(r, "kl", kl));
    FR_TRY(fr_run_rec_scalar(r, "clipfrac", clipfrac));
    FR_TRY(fr_run_rec_scalar(r, "approx_kl", approx_kl));
    fr_run_metric(r, "kl", kl);
    fr_run_metric(r, "clipfrac", clipfrac);
    fr_run_metric(r, "approx_kl", approx_kl);
    fr_run_metric(r, "ratio_min", es.n_terms ? es.rmin : NAN);
    fr_run_metric(r, "ratio_max", es.n_terms ? es.rmax : NAN);
    fr_run_metric(r, "grad_norm", es.last_gn);
    fr_run_metric(r, "window_start", (double)ws0);
    fr_run_metric(r, "window_len", (double)wl);
    if (t->o.window == FR_FG_WINDOW_MIX) fr_mix_window_update(&t->mix);
    return FR_OK;
}

/* MixGRPO's window after `epoch` epochs (one update per epoch): nothing to read back. */
fr_status fr_fg_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    fg_state *t = state;
    (void)f;
    (void)path;
    for (int64_t e = 0; t->o.window == FR_FG_WINDOW_MIX && e < r->epoch; e++) fr_mix_window_update(&t->mix);
    return FR_OK;
}

void fr_fg_header(fr_run *r, void *state)
{
    fg_state *t = state;
    const int cfg_train = t->tr.guidance.on;
    const fr_run_opts *ro = r->o;
    int64_t tt = 0;
    fr_train_steps(ro->smp.num_steps, ro->c.timestep_fraction, &tt);
    fr_run_info(r, "sampler %s, %lld steps (%s grid, shift %g), noise %g, cfg %g (train cfg %s); window %s, %lld trained steps",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid), ro->smp.shift,
                (double)ro->smp.noise_level, (double)ro->smp.cfg, cfg_train ? "on" : "off",
                fr_flow_grpo_window_names[t->o.window],
                t->o.window == FR_FG_WINDOW_NONE   ? (long long)tt
                : t->o.window == FR_FG_WINDOW_FAST ? (long long)(t->o.window_size > 0 ? t->o.window_size : ro->smp.num_steps - 1)
                                                   : (long long)t->o.mix_window);
    fr_run_info(r, "clip %g, beta %g (%s form), adv %s%s, guard %s; %lld batches, grad accum %lld", ro->c.clip_range,
                (double)ro->c.beta, fr_flow_grpo_kl_names[t->o.kl_form], fr_train_adv_name(ro->c.adv),
                ro->c.adv == FR_TRAIN_ADV_PROMPT ? (ro->c.global_std ? " (global std)" : " (group std)") : "",
                fr_flow_grpo_guard_names[t->o.guard], (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
}
