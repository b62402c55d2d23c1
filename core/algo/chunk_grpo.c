/* Chunk-GRPO (docs/algorithms/flow-grpo.md §8; arXiv 2510.21583, later GCPO; no public code) on
 * the family engine (core/algo/traj_family.h): `flowrl train --algo chunk-grpo`.
 *
 * Flow-GRPO's epoch (sde rollout, per-prompt advantages, zero filter, batches, β·KL) with the
 * trained steps 0..T_train−1 cut into K chunks of consecutive steps, and the chunk as the unit
 * of the importance ratio: ρ_c = (Π_{t∈c} r_t)^{1/cs_c} = exp(mean_{t∈c} log r_t), clipped per
 * chunk (fr_traj_chunk, flowrl/traj_objective.h). Before each optimiser step a forward pass over
 * the step's micro-steps computes every chunk's mean log-ratio at the current parameters; the
 * micro-steps then train with it (the extra forward is counted in nfe.*).
 *
 * flowrl choices (the paper leaves them open): the boundaries are recomputed every epoch from
 * the epoch's own rollout, by fr_chunk_bounds over fr_traj_rel_l1 of the trained steps (equal
 * shares of the mean relative L1 change between successive latents, flowrl/chunk.h); K = 4 by
 * default (--chunks); no weighted chunk sampling; each chunk's loss counts like one of
 * Flow-GRPO's steps (divided by grad_accum·T_train), so K = T_train is Flow-GRPO bit for bit.
 *
 * audit.log records of an epoch: Flow-GRPO's, with rel_l1 (T_train,) and chunks (I64 (K+1,):
 * the chunk starts and T_train) after logp_old's neighbours, before the advantages. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/traj_family.h"
#include "flowrl/advantage.h"
#include "flowrl/chunk.h"
#include "flowrl/philox.h"

typedef struct {
    int64_t chunks;
} fr_chunk_opts;

typedef struct {
    fr_chunk_opts o;
    fr_traj_chunk_params prm;
    fr_tf tf;
    int64_t n_train, K;
    int64_t *start, *chunk, *size; /* (K+1,), (T,), (K,) */
    float *lr, *d, *logp;           /* (K, N), (T_train,), (N,) */
} chunk_state;

static void chunk_free(void *p)
{
    chunk_state *t = p;
    if (!t) return;
    fr_tf_free(&t->tf);
    void *bufs[] = {t->start, t->chunk, t->size, t->lr, t->d, t->logp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(t);
}

/* The chunks' mean log-ratios at the current parameters over optimiser step u's micro-steps. */
static fr_status chunk_ratios(fr_run *r, fr_tf *f, int64_t u, void *ctx)
{
    chunk_state *t = ctx;
    const fr_tf_update *up = &f->upd[u];
    memset(t->lr, 0, (size_t)(t->K * f->N) * sizeof *t->lr);
    for (int64_t k = 0; k < up->n; k++) {
        const fr_tf_micro *m = &f->micro[up->first + k];
        const fr_traj_data d = fr_tf_data(r, f, m);
        const int64_t *rows = f->plan_rows + m->off;
        FR_TRY(fr_traj_logp(&f->tr, &f->ws, &d, rows, m->b, m->j, t->logp));
        float *lr = t->lr + t->chunk[m->j] * f->N;
        for (int64_t i = 0; i < m->b; i++) lr[rows[i]] += t->logp[i] - f->logp_h[m->j * f->N + rows[i]];
    }
    for (int64_t c = 0; c < t->K; c++)
        for (int64_t s = 0; s < f->N; s++) t->lr[c * f->N + s] /= (float)t->size[c];
    return FR_OK;
}

static fr_status chunk_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    chunk_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_chunk_opts *)r->ao;
    FR_TRY(fr_train_steps(ro->smp.num_steps, ro->c.timestep_fraction, &t->n_train));
    t->K = t->o.chunks;
    FR_TRY(fr_tf_setup(r, &t->tf, 0, ro->smp.cfg != 1.0f, &fr_traj_chunk, &t->prm, FR_KL_CODE));
    fr_tf *f = &t->tf;
    if (!FR_ALLOC(t->start, t->K + 1) || !FR_ALLOC(t->chunk, f->T) || !FR_ALLOC(t->size, t->K) ||
        !FR_ALLOC(t->lr, t->K * f->N) || !FR_ALLOC(t->d, t->n_train) || !FR_ALLOC(t->logp, f->N))
        return FR_ERR_NOMEM;
    t->prm = (fr_traj_chunk_params){{ro->c.clip_range, ro->c.adv_clip}, f->N, t->chunk, t->size, t->lr};
    f->before_update = chunk_ratios;
    f->hook_ctx = t;
    return FR_OK;
}

/* This epoch's chunks: fr_chunk_bounds over the relative L1 changes of the trained steps. */
static fr_status chunk_bounds(fr_run *r, chunk_state *t)
{
    fr_tf *f = &t->tf;
    const int64_t T1 = t->n_train, N = f->N, D = f->D;
    FR_TRY(fr_traj_rel_l1_dev(r->be, f->traj, T1, N, D, t->d));
    FR_TRY(fr_chunk_bounds(t->d, T1, t->K, t->start));
    for (int64_t c = 0; c < t->K; c++) {
        t->size[c] = t->start[c + 1] - t->start[c];
        for (int64_t j = t->start[c]; j < t->start[c + 1]; j++) t->chunk[j] = c;
    }
    FR_TRY(fr_run_rec_f32(r, "rel_l1", t->d, 1, T1, 1, 1));
    int64_t n = t->K + 1;
    fr_tensor st = fr_tensor_view(t->start, FR_I64, 1, &n);
    return fr_run_rec_tensor(r, "chunks", &st);
}

static fr_status chunk_epoch(fr_run *r, void *state)
{
    chunk_state *t = state;
    fr_tf *f = &t->tf;
    for (int64_t j = 0; j < t->n_train; j++) FR_TRY(fr_tf_check_trained(f, j));
    FR_TRY(fr_tf_rec_window(r, 0, t->n_train));
    FR_TRY(fr_tf_rollout(r, f, NULL));
    FR_TRY(chunk_bounds(r, t));
    int64_t K;
    FR_TRY(fr_tf_fg_batches(r, f, &K));
    FR_TRY(fr_tf_update_batches(r, f, K, 0, t->n_train, 1.0f));
    fr_run_metric(r, "chunks", (double)t->K);
    fr_run_metric(r, "first_chunk_len", (double)t->size[0]);
    return FR_OK;
}

static void chunk_header(fr_run *r, void *state)
{
    chunk_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s, %lld steps (%s grid, shift %g), noise %g, cfg %g; %lld trained steps in %lld chunks "
                   "(relative-L1 boundaries per epoch)",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid), ro->smp.shift,
                (double)ro->smp.noise_level, (double)ro->smp.cfg, (long long)t->n_train, (long long)t->K);
    fr_run_info(r, "chunk ratio = geometric mean of its steps' ratios, clip %g, beta %g; %lld batches, grad accum %lld",
                ro->c.clip_range, (double)ro->c.beta, (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
}

/* ---- options ------------------------------------------------------------------------------ */

#define O fr_chunk_opts
static const fr_opt k_rows[] = {
    FR_OPT_I64(O, chunks, "chunks", "4", 1, 10000,
               "K: chunks of the trained steps (flowrl choice; K = trained steps is Flow-GRPO)", 0),
};
#undef O

/* Flow-GRPO's values (the method is a change of Flow-GRPO's ratio): sde T 10, diffusers grid,
 * a 0.7, clip 1e-4, beta 0.04. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_flow_grpo(ro);
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const fr_chunk_opts *o = ao;
    int64_t n;
    static const fr_sampler_kind kinds[] = {FR_SAMPLER_SDE, FR_SAMPLER_CPS, FR_SAMPLER_DANCE};
    FR_TRY(fr_tf_check_common(ro, "chunk-grpo", kinds, 3, 2, 0));
    FR_TRY(fr_train_steps(ro->smp.num_steps, ro->c.timestep_fraction, &n));
    if (o->chunks > n)
        return fr_fail(FR_ERR_ARG, "train: chunk-grpo: --chunks %lld: at most the %lld trained steps (--timestep-fraction %g "
                       "of %lld)", (long long)o->chunks, (long long)n, ro->c.timestep_fraction, (long long)ro->smp.num_steps);
    return FR_OK;
}

static void tiny(fr_run_opts *ro, void *ao)
{
    fr_chunk_opts *o = ao;
    fr_tf_tiny(ro);
    o->chunks = 2;
}

static const char *const k_progress[] = {"kl", "clipfrac", "first_chunk_len", "kept", NULL};

const fr_algo fr_algo_chunk_grpo = {
    .name = "chunk-grpo",
    .summary = "Chunk-GRPO: Flow-GRPO with chunks of consecutive steps as the unit of the clipped ratio",
    .doc = "docs/algorithms/flow-grpo.md",
    .help = "Chunk-GRPO fine-tuning (paper only; flowrl's choices are marked): Flow-GRPO's epoch with the trained\n"
            "steps cut into K chunks at relative-L1 boundaries of the epoch's trajectories; each chunk's ratio is\n"
            "the geometric mean of its steps' ratios, clipped per chunk. --chunks = trained steps is Flow-GRPO.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_chunk_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = fr_tf_needs_ref_beta,
    .setup = chunk_setup,
    .header = chunk_header,
    .epoch = chunk_epoch,
    .progress_keys = k_progress,
    .free = chunk_free,
    .tiny = tiny,
};
