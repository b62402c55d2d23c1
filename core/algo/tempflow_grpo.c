/* TempFlow-GRPO (docs/algorithms/flow-grpo.md §8; arXiv 2508.04324, no public code) on the family
 * engine (core/algo/traj_family.h): `flowrl train --algo tempflow-grpo`.
 *
 * Per epoch: one branching step k drawn as Flow-GRPO-Fast draws a window of one step
 * (fr_fast_window, W = 1, start in [branch_lo, branch_hi − 1]); each prompt's G samples share x_T
 * and the deterministic ODE prefix x_0..x_k (a prefix tree with one split of width G at k,
 * flowrl/rollout.h), take one SDE step at k with their own noise, and run the ODE to the end: the
 * terminal reward is a process reward of step k. Advantages, zero filter and batches as
 * Flow-GRPO; the update trains step k only, its gradient scaled by the noise-aware weight
 * w_k = σ_k·√Δt = the step's std (fr_sampler_std), favouring early steps. The paper normalises
 * the weight in a way the spec marks [unverified]: flowrl leaves the normalisation out (w_k
 * multiplies the loss as it is); --no-noise-weight drops the weight.
 *
 * flowrl choices (no public code): one k per epoch for every prompt (the paper branches per
 * group); k's range [0, T/2) by default (--branch-lo, --branch-hi); the rest Flow-GRPO's.
 *
 * audit.log records of an epoch: window (I64 [k, 1]), weight, then Flow-GRPO's records. */
#include <stddef.h>
#include <stdlib.h>

#include "core/algo/traj_family.h"
#include "flowrl/advantage.h"
#include "flowrl/philox.h"

typedef struct {
    int noise_weight;
    int64_t lo, hi;
} fr_tempflow_opts;

typedef struct {
    fr_tempflow_opts o;
    fr_ppo_params prm;
    fr_rollout_branch br;
    fr_tf tf;
} tempflow_state;

static void tempflow_free(void *p)
{
    tempflow_state *t = p;
    if (!t) return;
    fr_tf_free(&t->tf);
    free(t);
}

static int64_t range_hi(const fr_run_opts *ro, const fr_tempflow_opts *o)
{
    return o->hi >= 0 ? o->hi : ro->smp.num_steps / 2;
}

static fr_status tempflow_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    tempflow_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_tempflow_opts *)r->ao;
    t->prm = (fr_ppo_params){ro->c.clip_range, ro->c.adv_clip};
    FR_TRY(fr_tf_setup(r, &t->tf, 0, ro->smp.cfg != 1.0f, &fr_traj_ppo, &t->prm, FR_KL_CODE));
    fr_tf *f = &t->tf;
    t->br = (fr_rollout_branch){0, f->G, 1.0f};
    f->rc.branch = &t->br;
    f->rc.n_branch = 1;
    f->rc.step_noise = f->step_noise;
    return FR_OK;
}

static fr_status tempflow_epoch(fr_run *r, void *state)
{
    tempflow_state *t = state;
    fr_tf *f = &t->tf;
    const fr_run_opts *ro = r->o;
    const uint32_t e = (uint32_t)r->epoch;
    int64_t k, len;
    FR_TRY(fr_fast_window(ro->run.seed, e, 0, 0, f->T, t->o.lo, range_hi(ro, &t->o), 1, &k, &len));
    for (int64_t i = 0; i < f->T; i++) f->step_noise[i] = i == k ? ro->smp.noise_level : 0.0f;
    t->br.at = k;
    FR_TRY(fr_tf_check_trained(f, k));
    FR_TRY(fr_tf_rec_window(r, k, 1));
    fr_step p = fr_rollout_step(&f->rc, k);
    fr_step_std sd;
    FR_TRY(fr_sampler_std(&p, &sd));
    const float w = t->o.noise_weight ? sd.std : 1.0f;
    FR_TRY(fr_run_rec_scalar(r, "weight", w));

    FR_TRY(fr_tf_rollout(r, f, NULL));
    int64_t K;
    FR_TRY(fr_tf_fg_batches(r, f, &K));
    FR_TRY(fr_tf_update_batches(r, f, K, k, 1, w));
    fr_run_metric(r, "branch_step", (double)k);
    fr_run_metric(r, "step_weight", w);
    return FR_OK;
}

static void tempflow_header(fr_run *r, void *state)
{
    tempflow_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s at the branching step, ode elsewhere; %lld steps (%s grid, shift %g), noise %g, cfg %g",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid), ro->smp.shift,
                (double)ro->smp.noise_level, (double)ro->smp.cfg);
    fr_run_info(r, "branching step drawn per epoch from %lld..%lld, G %lld branches per prompt, weight %s; clip %g, "
                   "beta %g",
                (long long)t->o.lo, (long long)range_hi(ro, &t->o) - 1, (long long)ro->c.group,
                t->o.noise_weight ? "sigma_t*sqrt(dt) (unnormalised)" : "off", ro->c.clip_range, (double)ro->c.beta);
}

/* ---- options ------------------------------------------------------------------------------ */

#define O fr_tempflow_opts
static const fr_opt k_rows[] = {
    FR_OPT_BOOL(O, noise_weight, "noise_weight", "true",
                "scale the step's gradient by its noise level sigma_t*sqrt(dt) (unnormalised: flowrl choice)", 0),
    {"branch_lo", FR_OPT_I64, offsetof(O, lo), sizeof(int64_t), "0", 0, 10000, NULL,
     "the branching step is drawn from LO..HI-1 each epoch (flowrl choice)", 0, "--branch-lo", "LO"},
    {"branch_hi", FR_OPT_I64, offsetof(O, hi), sizeof(int64_t), "-1", -1, 10000, NULL, "HI of that range, -1 = T/2", 0,
     "--branch-hi", "HI"},
};
#undef O

/* Flow-GRPO's values (the paper builds on its code): sde T 10 (diffusers grid, shift 3), a 0.7,
 * clip 1e-4, beta 0.04. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_flow_grpo(ro);
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const fr_tempflow_opts *o = ao;
    const int64_t T = ro->smp.num_steps, hi = range_hi(ro, o);
    static const fr_sampler_kind kinds[] = {FR_SAMPLER_SDE, FR_SAMPLER_DANCE};
    FR_TRY(fr_tf_check_common(ro, "tempflow-grpo", kinds, 2, 2, 0));
    if (!(o->lo < hi && hi <= T))
        return fr_fail(FR_ERR_ARG, "train: tempflow-grpo: --branch-lo %lld, --branch-hi %lld: need LO < HI <= T = %lld",
                       (long long)o->lo, (long long)hi, (long long)T);
    return FR_OK;
}

static void tiny(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_tiny(ro);
}

static const char *const k_progress[] = {"kl", "clipfrac", "branch_step", "kept", NULL};

const fr_algo fr_algo_tempflow_grpo = {
    .name = "tempflow-grpo",
    .summary = "TempFlow-GRPO: ODE prefix shared per prompt, one SDE branching step, noise-aware step weight",
    .doc = "docs/algorithms/flow-grpo.md",
    .help = "TempFlow-GRPO fine-tuning (paper only; flowrl's choices are marked): per epoch one branching step k;\n"
            "each prompt's G samples share x_T and the ODE prefix, take one SDE step at k and finish by ODE, so the\n"
            "reward credits step k; Flow-GRPO's advantages and PPO-clip + KL on step k, its gradient weighted by\n"
            "the step's noise level sigma_t*sqrt(dt) (the paper's normalisation is left out).",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_tempflow_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = fr_tf_needs_ref_beta,
    .setup = tempflow_setup,
    .header = tempflow_header,
    .epoch = tempflow_epoch,
    .progress_keys = k_progress,
    .free = tempflow_free,
    .tiny = tiny,
};
