/* Trajectory-PPO training, one (micro-batch, step j) at a time, shared by the algorithms
 * that train on the transitions of their own rollouts (the Flow-GRPO family:
 * docs/algorithms/flow-grpo.md §2-§8). An algorithm supplies an fr_traj_objective (its policy term);
 * fr_traj_micro_step does the rest, as flowrl/grpo.h chains it:
 *   1. gather rows: x_j, x_{j+1} (traj[j+1], or x_next[j] when given), μ_old, logp_old of step j
 *      and the advantages
 *   2. v_θ = fr_guided_forward(policy, x_j)             (the rollout's guidance)
 *   3. μ_θ, logp_θ = fr_sampler_logprob(step_j, x_j, v_θ, x_{j+1})
 *   4. β > 0: μ_ref = fr_sampler_mean(step_j, x_j, fr_guided_forward(ref, x_j)); when the
 *      objective asks for it (wants_logp_ref): μ_ref, logp_ref = fr_sampler_logprob(step_j,
 *      x_j, that forward, x_{j+1}), the frozen reference's log-prob of the stored transition
 *      by the same op as logp_θ (so logp_ref == logp_θ bitwise at θ = ref)
 *   5. L_obj, g_μ = objective->loss(...)                (writes g_μ = gout·dL_obj/dμ_θ)
 *   6. β > 0: L_KL, g_μ += fr_kl_loss(μ_θ, μ_ref, kl_std, gout·β)
 *   7. g_v = g_μ·fr_grpo_dmean_dv(step_j), fr_guided_backward(policy, g_v)
 * Loss = L_obj + β·L_KL; the policy's gradients accumulate (zero them per optimiser step).
 *
 * Per-element weights (fr_traj_data.weight, optional; PXPO's per-pixel rewards,
 * docs/algorithms/pxpo.md): with a weight row w (D,) per rollout row, every log-prob of
 * steps 3–4 and the objective's logp_old is the weighted one, mean_D(w·ℓ) (fr_sampler_logprob_w;
 * logp_old recomputed from the rollout's μ), and the objective's g_μ is multiplied by w before
 * the KL's is added (dL/dμ_d = dL/dlogp·w_d·dℓ_d/dμ_d/D), so every objective whose loss reaches μ
 * only through the log-probs takes weights unchanged; w ≡ 1 gives the unweighted step bit for
 * bit. The KL term stays unweighted. An objective that reads μ itself (GRPO-Guard) sets
 * no_weights and refuses them.
 *
 * Memory (flowrl/backend.h): the rollout's tensors, the gathered rows and every (b, D) array
 * are backend memory; the per-sample arrays (log-probs, advantages, ratios, prompt ids) are
 * host memory. Per micro-step the b row indices cross (fr_h2d) for the row gathers, the b
 * log-probs logp_θ (and logp_ref, when asked for) cross to the host (fr_d2h) for the PPO
 * core, and its b-long gradient crosses back (fr_h2d). */
#ifndef FLOWRL_TRAJ_OBJECTIVE_H
#define FLOWRL_TRAJ_OBJECTIVE_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/grpo.h"
#include "flowrl/guidance.h"
#include "flowrl/model.h"
#include "flowrl/rollout.h"
#include "flowrl/sampler.h"
#include "flowrl/status.h"
#include "flowrl/task.h"

/* The gathered rows of one micro-batch at step j (b rows, D dims). */
typedef struct {
    int64_t b, D;
    fr_step step;          /* the rollout's step j (fr_rollout_step) */
    const float *x;        /* (b, D) x_j                          backend */
    const float *x_next;   /* (b, D) x_{j+1}                      backend */
    const float *mean_old; /* (b, D) μ of the rollout             backend */
    const float *logp_old; /* (b,)   log-prob of the rollout      host */
    const float *adv;      /* (b,)   advantages (unclamped, flowrl/grpo.h)  host */
    const float *mean;     /* (b, D) μ_θ                          backend */
    const float *logp;     /* (b,)   logp_θ                       host */
    const float *mean_ref; /* (b, D) μ of the frozen reference; NULL when β = 0  backend */
    float *scratch;        /* (b,)   host, for the objective (e.g. dL/dlogp_θ) */
    float *dscratch;       /* (b,)   backend, the same for op entries */
    const int64_t *rows;   /* (b,)   host: the rows' indices into the rollout */
    const float *logp_ref; /* (b,)   log-prob of the frozen reference; NULL unless the objective's
                            *        wants_logp_ref      host */
} fr_traj_batch;

/* What an objective reports of one (batch, j) (logged, not optimised); kl and loss are
 * filled by fr_traj_micro_step. */
typedef struct {
    float obj;       /* L_obj */
    float approx_kl, clipfrac, ratio_min, ratio_max, ratio_mean; /* as fr_ppo_stats */
    float kl;        /* L_KL (0 when β = 0) */
    float loss;      /* L_obj + β·L_KL */
} fr_traj_stats;

typedef struct {
    const char *name;
    /* Writes g_mean (b, D, backend) = gout·dL_obj/dμ_θ, ratio (b, host) and st's objective
     * fields. params: the objective's own (see each instance). */
    fr_status (*loss)(fr_backend *be, const fr_traj_batch *tb, int64_t j, const void *params, float gout,
                      float *g_mean, // (b, D) out
                      float *ratio,  // (b,) out
                      fr_traj_stats *st);
    /* 1: the trainer gives the objective tb->logp_ref (and needs a reference, whatever β) */
    int wants_logp_ref;
    /* 1: the loss reads μ_θ beyond the log-probs, so per-element weights are refused */
    int no_weights;
} fr_traj_objective;

/* Flow-GRPO's PPO-clip term (docs/algorithms/flow-grpo.md §2; fr_ppo_policy then fr_logp_backward).
 * params: const fr_ppo_params *. */
extern const fr_traj_objective fr_traj_ppo;

/* GRPO-Guard (docs/algorithms/flow-grpo.md §3; fr_guard_policy, sde only). params: const
 * fr_traj_guard_params *. */
typedef struct {
    fr_ppo_params ppo;
    fr_guard_bias bias;
} fr_traj_guard_params;
extern const fr_traj_objective fr_traj_guard;

/* Chunk-GRPO's chunk-level PPO-clip (docs/algorithms/flow-grpo.md §8): the ratio of step j of
 * row r is its chunk's ρ_c = exp(lr[c·N + r]), lr the chunk's mean log-ratio
 * mean_{t∈c}(logp_θ,t − logp_old,t) computed before the step by the caller (fr_traj_logp), the
 * clip acts on ρ_c, and step j carries 1/cs_c of the chunk's loss and gradient
 * (dρ_c/dlogp_θ,j = ρ_c/cs_c). One-step chunks give fr_traj_ppo bit for bit. */
typedef struct {
    fr_ppo_params ppo;
    int64_t N;            /* rollout rows */
    const int64_t *chunk; /* (T,) the chunk of each step */
    const int64_t *size;  /* (n_chunks,) steps per chunk */
    const float *lr;      /* (n_chunks, N) host: the chunks' mean log-ratios */
} fr_traj_chunk_params;
extern const fr_traj_objective fr_traj_chunk;

/* DDPO-SF, the score-function form of DDPO (docs/algorithms/ddpo.md §3): L = −mean_b(Â·logp_θ),
 * Â = clamp(A, ±adv_clip_max), g_logp = −Â·gout/b; no ratio in the loss (the ratios
 * exp(logp_θ − logp_old) are reported; clip_range unused, clipfrac 0). params: const
 * fr_ppo_params *. */
extern const fr_traj_objective fr_traj_score_function;

/* The pair preference objective of D3PO and SPO (docs/algorithms/d3po.md §2; spec objectives.md
 * §17, §18), against the frozen reference (wants_logp_ref). Rows 2i, 2i+1 of the micro-batch are
 * partners (the same step j); h (by rollout row) is +1 for a winner, −1 for a loser, 0 for both
 * rows of a pair without a preference. Per row r = clamp(exp(logp_θ − logp_ref), 1 − ε, 1 + ε),
 * per pair z = β·(h0·log r0 + h1·log r1) and term = −log σ(z) = softplus(−z);
 * L = mean over the b/2 pairs. dL/dlogp_θ of a row = −σ(−z)·β·h/(b/2) inside the band
 * [1 − ε, 1 + ε] (ends included, as torch.clamp) and 0 outside it (the clamp's quirk), then
 * the logp backward. float32 with flowrl's exp, log, sigmoid and softplus (detmath.h) in the
 * public code's order: at θ = ref logp_θ == logp_ref bitwise, so r = exp(0) = 1, log r = 0,
 * z = 0 and every term is softplus(0) bitwise (log 2 rounded). ratio (b,) receives the
 * unclamped exp(logp_θ − logp_ref); st: clipfrac = share of rows outside the band, approx_kl
 * = ½·mean (logp_θ − logp_ref)². params: const fr_traj_pair_params *. */
typedef struct {
    float beta;     /* β, a float32 scalar as torch multiplies a float32 tensor by it */
    double eps;     /* ε; the band's ends are (float)(1 ± ε), as torch.clamp rounds a Python float */
    const float *h; /* (N,) host, by rollout row: +1, −1 or 0 */
} fr_traj_pair_params;
extern const fr_traj_objective fr_traj_pair_pref;
/* One pair's term and its dterm/dlogp_θ of both rows (g[0..1], before the mean's 1/(b/2)
 * and gout), as fr_traj_pair_pref computes them; r[0..1] the clamped ratios. */
float fr_traj_pair_term(const fr_traj_pair_params *prm, const float logp[2], const float logp_ref[2],
                        const float h[2], float r[2], float g[2]);

/* The end of an objective on host per-row log-probs (DDPO-SF, the pair preference): st's
 * approx_kl = ½·mean(dlogp²), clipfrac = n_clip / b, ratio_min / ratio_max (a NaN ratio makes
 * both NaN) and ratio_mean over the b rows; then tb->scratch (b,), which holds dL/dlogp_θ,
 * crosses to the backend and runs the logp backward into g_mean (b, D). */
fr_status fr_traj_rows_finish(fr_backend *be, const fr_traj_batch *tb,
                              const float *dlogp, // (b,) logp_θ − logp of the ratio's denominator
                              const float *ratio, // (b,)
                              int64_t n_clip, float *g_mean, fr_traj_stats *st);

/* An epoch's rollout as fr_rollout wrote it (time-major), with what a step reads. */
typedef struct {
    int64_t N;                /* rows of the rollout */
    const float *traj;        /* (T+1, N, D) backend */
    const float *mean;        /* (T, N, D)   backend */
    const float *logp;        /* (T, N)      host (the rollout's log-probs, copied out once) */
    const float *adv;         /* (N,)        host */
    const int *prompt_ids;    /* (N,)        host */
    const fr_task *task;
    const fr_rollout_cfg *rc; /* the rollout's config (step scalars, time input) */
    /* (T, N, D) backend or NULL: x_{j+1} of row r at step j when the transitions do not chain
     * (SPO's candidate pairs share x_j and only one continues, flowrl/spo.h); NULL: traj[j+1] */
    const float *x_next;
    /* (N, D) backend or NULL: per-element log-prob weights of each row (above); NULL: none */
    const float *weight;
} fr_traj_data;

/* Who trains and how. */
typedef struct {
    fr_model *policy;               /* receives the gradients (accumulated) */
    const fr_model *ref;            /* frozen reference; NULL iff beta == 0 and the objective
                                     * does not want logp_ref */
    fr_backend *be;
    fr_guidance guidance;           /* recomputed in training (the rollout's, or off) */
    const fr_traj_objective *objective;
    const void *params;             /* the objective's */
    float beta;                     /* KL weight, >= 0 */
    fr_kl_form kl_form;
} fr_traj_trainer;

/* The buffers of micro-batches of up to cap rows, owned: the guided workspaces of the
 * policy (keep) and of the reference (when beta > 0 or the objective wants logp_ref), and
 * the gathered rows. */
typedef struct {
    int64_t cap, D, S;
    fr_backend *be;
    fr_guided_ws pol, ref;
    int have_ref;
    /* backend: (cap, D) rows, (cap,) log-probs, scratch and row indices */
    float *x, *x_next, *mean_old, *v, *mean, *g_mean, *v_ref, *mean_ref, *dlogp, *dscratch, *dlogp_ref;
    float *wrow, *dlogp_old; /* (cap, D) the rows' weights, (cap,) their weighted logp_old */
    int32_t *didx;
    void *dblk;
    /* host: (cap,) per-sample values and row indices, (cap, S) condition ids
     * (fr_guided_forward's are host) */
    float *logp_old, *adv, *logp, *scratch, *logp_ref;
    int *pid;
    int32_t *idx, *c;
    void *blk;
} fr_traj_ws;

fr_status fr_traj_ws_alloc(fr_traj_ws *w, const fr_traj_trainer *tr, int64_t cap);
void fr_traj_ws_free(fr_traj_ws *w);

/* Loss and gradient of rows (b,) (indices into the rollout) at step j; gout is the loss's
 * upstream gradient (1/fr_grpo_accum_divisor, flowrl/grpo.h). ratio (b,) receives the
 * ratios. FR_ERR_NUMERIC if the loss is not finite. */
fr_status fr_traj_micro_step(const fr_traj_trainer *tr, fr_traj_ws *w, const fr_traj_data *d,
                             const int64_t *rows, // (b,)
                             int64_t b, int64_t j, float gout,
                             float *ratio,        // (b,) out
                             fr_traj_stats *st);

/* One micro-step of an update: rows (b,) of d at step j, with its gout. */
typedef struct {
    const fr_traj_data *d;
    const int64_t *rows; /* (b,) host */
    int64_t b, j;
    float gout;
} fr_traj_part;

/* The n micro-steps of parts[] as fr_traj_micro_step would run them one after the other — the
 * same bits: ratio (Σb,) and st (n,) as each call's, the same gradients accumulated — with one
 * forward of the policy (and one of the reference) and one backward over all Σb rows
 * (≤ w->cap) instead of n. Why the bits agree: the network is row-wise, so each row's forward is
 * the same whatever rows share the call, and every gradient the backward accumulates (GEMM,
 * bias, layer-norm and embedding gradients) is one chain over the rows in order (flowrl/ops.h),
 * which a micro-step's backward continues where the previous one stopped; steps 3–6 run per
 * part on its slice, in order. Guidance in training must be off (fr_traj_can_fuse): its [x; x]
 * forward puts a part's unconditional rows after its conditional ones. */
fr_status fr_traj_fused_step(const fr_traj_trainer *tr, fr_traj_ws *w, const fr_traj_part *parts, int64_t n,
                             float *ratio,        // (Σb,) out, host
                             fr_traj_stats *st);  // (n,) out
int fr_traj_can_fuse(const fr_traj_trainer *tr);
/* How many fr_traj_fused_step calls of two or more parts succeeded in this process (tests: the
 * fused path ran). */
unsigned long fr_traj_fused_calls(void);

/* Steps 1–3 only, at the policy's current parameters: logp (b,) host = logp_θ of rows (b,) at
 * step j (no reference, no loss, no backward; the forward counts in the backend's work). */
fr_status fr_traj_logp(const fr_traj_trainer *tr, fr_traj_ws *w, const fr_traj_data *d,
                       const int64_t *rows, // (b,)
                       int64_t b, int64_t j,
                       float *logp);        // (b,) out

#endif
