/* Smart-GRPO (docs/algorithms/samplers.md §14; arXiv 2510.02654, no public code) on the family
 * engine (core/algo/traj_family.h): `flowrl train --algo smart-grpo`.
 *
 * Flow-GRPO's epoch whose rollouts start from searched noises: before the rollout, for each of
 * the epoch's P prompts, a cross-entropy-method search over its initial-noise distribution
 * N(μ, diag σ²) (fr_noise_search, flowrl/noise_search.h): R rounds of K candidates decoded in one
 * step (x̂0 = z − σ_0·v), scored by the run's reward (fr_run_score), μ and σ refit on the top E;
 * the group's G initial noises are G draws from the final distribution. The rest is Flow-GRPO:
 * SDE steps, per-prompt advantages, zero filter, batches, PPO-clip + β·KL.
 *
 * flowrl choices (the paper gives none of these; `--help` lists them): R 2, K 16, E 4, σ floor
 * 0.25 (so a group's G draws stay apart), search id = the group's first sample id, the final
 * noises drawn rather than the top-G candidates (docs/algorithms/samplers.md §14). The search's
 * network rows count in nfe.*; its rewards are not the epoch's (they score one-step decodes).
 * The search runs its refits on the host: per epoch R·P·K candidates cross to the backend and
 * their decodes back (D-wide each), plus the N searched x_T; the metrics search.h2d_bytes and
 * search.d2h_bytes report these apart from the loop's per-sample crossings (moving the refit to
 * the backend would need column reductions the op table does not have yet).
 *
 * audit.log records of an epoch: window, prompts, search.mean_reward (R,), search.top_reward
 * (R,), then Flow-GRPO's records from noise.x_T (the searched x_T) on. noise.xi as Flow-GRPO's. */
#include <stddef.h>
#include <stdlib.h>

#include "core/algo/traj_family.h"
#include "flowrl/advantage.h"
#include "flowrl/noise_search.h"
#include "flowrl/philox.h"

typedef struct {
    int64_t rounds, candidates, elites;
    float min_std;
} fr_smart_opts;

typedef struct {
    fr_smart_opts o;
    fr_noise_search_cfg sc;
    fr_ppo_params prm;
    fr_tf tf;
    int64_t n_train;
    float *x_init;             /* (N, D) backend */
    uint32_t *ids;             /* (P,) */
    float *mean_r, *top_r;     /* (R,) */
} smart_state;

static void smart_free(void *p)
{
    smart_state *t = p;
    if (!t) return;
    if (t->tf.be) fr_dev_free(t->tf.be, t->x_init);
    free(t->ids);
    free(t->mean_r);
    free(t->top_r);
    fr_tf_free(&t->tf);
    free(t);
}

static fr_status score(void *user, int64_t n, const int *pid, const float *x0, float *reward)
{
    return fr_run_score(user, n, pid, x0, reward);
}

/* The searched x_T of the epoch's groups. */
static fr_status search(fr_run *r, fr_tf *f, void *ctx, const float **x_init)
{
    smart_state *t = ctx;
    const int64_t P = r->o->c.prompts, R = t->sc.rounds;
    for (int64_t p = 0; p < P; p++) t->ids[p] = (uint32_t)(p * f->G);
    fr_noise_search_out out = {t->mean_r, t->top_r, NULL, NULL, 0};
    const fr_copy_stats c0 = r->be->copies;
    FR_TRY(fr_noise_search(&r->pol, r->be, r->task, &f->rc, &t->sc, P, f->prompts, t->ids, score, r, f->G, t->x_init, &out));
    /* the search is host-driven (the refit runs on the host): its D-wide crossings, the
     * candidates in and their one-step decodes out, are reported apart from the loop's */
    const fr_copy_stats dc = fr_copy_stats_since(&r->be->copies, &c0);
    fr_run_metric(r, "search.rows", (double)(R * P * t->sc.candidates));
    fr_run_metric(r, "search.h2d_bytes", (double)dc.h2d_bytes);
    fr_run_metric(r, "search.d2h_bytes", (double)dc.d2h_bytes);
    FR_TRY(fr_run_rec_f32(r, "search.mean_reward", t->mean_r, 1, R, 1, 1));
    FR_TRY(fr_run_rec_f32(r, "search.top_reward", t->top_r, 1, R, 1, 1));
    fr_run_metric(r, "search_first", t->mean_r[0]);
    fr_run_metric(r, "search_top", t->top_r[R - 1]);
    *x_init = t->x_init;
    return FR_OK;
}

static fr_status smart_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    smart_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_smart_opts *)r->ao;
    t->sc = fr_noise_search_cfg_default();
    t->sc.rounds = t->o.rounds;
    t->sc.candidates = t->o.candidates;
    t->sc.elites = t->o.elites;
    t->sc.min_std = t->o.min_std;
    t->prm = (fr_ppo_params){ro->c.clip_range, ro->c.adv_clip};
    FR_TRY(fr_train_steps(ro->smp.num_steps, ro->c.timestep_fraction, &t->n_train));
    FR_TRY(fr_tf_setup(r, &t->tf, 0, ro->smp.cfg != 1.0f, &fr_traj_ppo, &t->prm, FR_KL_CODE));
    fr_tf *f = &t->tf;
    if (!(t->x_init = fr_dev_floats(r->be, f->N * f->D)) || !FR_ALLOC(t->ids, ro->c.prompts) ||
        !FR_ALLOC(t->mean_r, t->sc.rounds) || !FR_ALLOC(t->top_r, t->sc.rounds))
        return FR_ERR_NOMEM;
    f->make_x_init = search;
    f->hook_ctx = t;
    return FR_OK;
}

static fr_status smart_epoch(fr_run *r, void *state)
{
    smart_state *t = state;
    fr_tf *f = &t->tf;
    for (int64_t j = 0; j < t->n_train; j++) FR_TRY(fr_tf_check_trained(f, j));
    FR_TRY(fr_tf_rec_window(r, 0, t->n_train));
    FR_TRY(fr_tf_rollout(r, f, NULL));
    int64_t K;
    FR_TRY(fr_tf_fg_batches(r, f, &K));
    return fr_tf_update_batches(r, f, K, 0, t->n_train, 1.0f);
}

static void smart_header(fr_run *r, void *state)
{
    smart_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s, %lld steps (%s grid, shift %g), noise %g, cfg %g, %lld trained steps",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid), ro->smp.shift,
                (double)ro->smp.noise_level, (double)ro->smp.cfg, (long long)t->n_train);
    fr_run_info(r, "noise search per prompt: %lld rounds x %lld candidates (one-step decodes), top %lld refit, sigma floor "
                   "%g; clip %g, beta %g",
                (long long)t->sc.rounds, (long long)t->sc.candidates, (long long)t->sc.elites, (double)t->sc.min_std,
                ro->c.clip_range, (double)ro->c.beta);
}

/* ---- options ------------------------------------------------------------------------------ */

#define O fr_smart_opts
static const fr_opt k_rows[] = {
    FR_OPT_I64(O, rounds, "search_rounds", "2", 1, 1000, "R: refits of the noise distribution per prompt (flowrl choice)", 0),
    FR_OPT_I64(O, candidates, "search_candidates", "16", 2, 100000,
               "K: noises decoded in one step per prompt and round (flowrl choice)", 0),
    FR_OPT_I64(O, elites, "search_elites", "4", 1, 100000, "E: the top-E candidates refit mu and sigma (flowrl choice)", 0),
    FR_OPT_F32(O, min_std, "search_min_std", "0.25", 0, 1,
               "floor on the refit sigma, keeps a group's draws apart (flowrl choice)", 0),
};
#undef O

/* Flow-GRPO's values: sde T 10 (diffusers grid, shift 3), a 0.7, clip 1e-4, beta 0.04. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_flow_grpo(ro);
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const fr_smart_opts *o = ao;
    static const fr_sampler_kind kinds[] = {FR_SAMPLER_SDE, FR_SAMPLER_CPS, FR_SAMPLER_DANCE};
    FR_TRY(fr_tf_check_common(ro, "smart-grpo", kinds, 3, 2, 0));
    if (o->elites > o->candidates)
        return fr_fail(FR_ERR_ARG, "train: smart-grpo: --search-elites %lld exceeds --search-candidates %lld",
                       (long long)o->elites, (long long)o->candidates);
    return FR_OK;
}

static void tiny(fr_run_opts *ro, void *ao)
{
    fr_smart_opts *o = ao;
    fr_tf_tiny(ro);
    o->rounds = 2;
    o->candidates = 4;
    o->elites = 2;
}

static const char *const k_progress[] = {"kl", "clipfrac", "search_top", "kept", NULL};

const fr_algo fr_algo_smart_grpo = {
    .name = "smart-grpo",
    .summary = "Smart-GRPO: Flow-GRPO from searched initial noises (cross-entropy search, one-step decodes)",
    .doc = "docs/algorithms/samplers.md",
    .help = "Smart-GRPO fine-tuning (paper only; flowrl's choices are marked): per epoch and prompt, a cross-entropy\n"
            "search over the initial-noise distribution (R rounds of K one-step decodes scored by the reward, mu and\n"
            "sigma refit on the top E); the group's G noises are drawn from the result; then Flow-GRPO's epoch.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_smart_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = fr_tf_needs_ref_beta,
    .setup = smart_setup,
    .header = smart_header,
    .epoch = smart_epoch,
    .progress_keys = k_progress,
    .free = smart_free,
    .tiny = tiny,
};
