/* Counter-based randomness: Philox4x32-10 (Salmon et al., SC11; docs/algorithms/numerics.md §4).
 *
 * Every random number in flowrl is a pure function of its coordinates, never of the
 * order in which it is drawn (docs/design.md §1.5):
 *
 *     key     = (seed, purpose)
 *     counter = (c0, c1, c2, idx / 4)      word idx % 4 of the output block
 *
 * c0..c2 are caller-chosen coordinates (e.g. epoch, sample, step) and idx the element.
 * So the same noise comes out of any backend, thread count, batch split or resumed run.
 *
 * Uniforms: u = ((w >> 9) + 0.5) * 2^-23, exactly representable, in [2^-24, 1 - 2^-24],
 * never 0 or 1. Normals: Box-Muller on the words pairs (w0,w1) and (w2,w3) of a block:
 *     r = sqrt(-2 log u(w_even)), theta = 2 pi u(w_odd)
 *     lane 0: r cos theta   lane 1: r sin theta   lane 2, 3: the same with (w2, w3)
 * through flowrl's own log/sin/cos, so |z| <= sqrt(-2 log 2^-24) = 5.77 (the tail beyond
 * is truncated, probability ~8e-9). */
#ifndef FLOWRL_PHILOX_H
#define FLOWRL_PHILOX_H

#include <stdint.h>

#include "flowrl/detmath.h"
#include "flowrl/hostdev.h"

#define FR_PHILOX_M0 0xD2511F53u
#define FR_PHILOX_M1 0xCD9E8D57u
#define FR_PHILOX_W0 0x9E3779B9u
#define FR_PHILOX_W1 0xBB67AE85u

/* What a random stream is for: part of the key, so streams of different purposes never
 * overlap even with equal coordinates. Values are part of the file formats (audit logs,
 * golden cases): append, never renumber. */
typedef enum {
    FR_RNG_TEST = 0,
    FR_RNG_INIT = 1,           /* parameter initialisation */
    FR_RNG_TASK_DATA = 2,      /* training data of a built-in task */
    FR_RNG_TASK_EVAL = 3,      /* evaluation seeds of a built-in task */
    FR_RNG_PRETRAIN_NOISE = 4, /* epsilon of flow-matching / DDPM pretraining */
    FR_RNG_PRETRAIN_TIME = 5,  /* sigma / t of pretraining */
    FR_RNG_CFG_DROPOUT = 6,    /* condition dropout */
    FR_RNG_SAMPLER_INIT = 7,   /* x_T of a rollout */
    FR_RNG_SAMPLER_NOISE = 8,  /* per-step noise xi of stochastic samplers */
    FR_RNG_PROMPTS = 9,        /* prompt choice per epoch */
    FR_RNG_WINDOW = 10,        /* random SDE windows */
    FR_RNG_GOLDEN = 11,        /* inputs of golden cases */
    FR_RNG_ADV_FILTER = 12,    /* re-enabling dropped zero-advantage samples */
    FR_RNG_SHUFFLE = 13,       /* re-batching of an epoch's samples */
    FR_RNG_AWM_TIMES = 14,     /* AWM training times of a micro-batch (flowrl/awm.h) */
    FR_RNG_AWM_NOISE = 15,     /* AWM noise epsilon of each (sample, training time) */
    FR_RNG_NFT_TIMES = 16,     /* DiffusionNFT per-sample permutation of the sampler grid (flowrl/nft.h) */
    FR_RNG_NFT_NOISE = 17,     /* DiffusionNFT noise epsilon of each (sample, training time) */
    FR_RNG_DGPO_TIMES = 20,    /* DGPO training times of an epoch (flowrl/dgpo.h) */
    FR_RNG_DGPO_NOISE = 21,    /* DGPO noise epsilon of each (group, micro-batch, training time) */
    FR_RNG_NOISE_SEARCH = 22,  /* Smart-GRPO's candidate and final noises (flowrl/noise_search.h) */
    FR_RNG_STEP_SELECT = 23,   /* trained steps of a sample (DanceGRPO's per-sample permutation) */
    FR_RNG_PREFS = 24,         /* prompt of each attempt of `flowrl prefs make` (flowrl/prefs.h) */
    FR_RNG_DPO_ORDER = 25,     /* Diffusion-/Flow-DPO: order of a preference file's pairs per pass (core/algo/dpo.c) */
    FR_RNG_DPO_TIME = 26,      /* Diffusion-/Flow-DPO: the training time of each (pair slot, draw) */
    FR_RNG_DPO_NOISE = 27,     /* Diffusion-/Flow-DPO: the noise epsilon of each (pair slot, draw), shared by w and l */
    FR_RNG_SPO_CHOICE = 28,    /* SPO: the candidate a chain continues from (flowrl/spo.h) */
    /* Diffusion-DRO (flowrl/dro.h, core/algo/dro.c): numbered apart from the other issue-12
     * methods' purposes (written in parallel branches); the diffusion-dro rows of BENCHMARKS.md's
     * bench_prefs section ran with these */
    FR_RNG_DRO_PICK = 40,      /* (trajectory, step) rows drawn from the replay buffer */
    FR_RNG_DRO_DATA = 41,      /* expert-data order, prompt drop and timestep jitter of a refresh */
    FR_RNG_DRO_NOISE = 42,     /* the expert rows' fresh noise and the refreshed trajectories' x_T */
    /* environments (flowrl/env.h; issues 13 and 18), numbered apart from parallel branches */
    FR_RNG_ENV_RESET = 50,     /* a control environment's reset of (episode, ...) */
    FR_RNG_GFN_ACTION = 51,    /* a GFlowNet trajectory's action draw of (epoch, trajectory, step) */
    FR_RNG_GFN_EVAL = 52,      /* the action draws of a GFlowNet's sampled evaluation (batch, trajectory, step) */
    FR_RNG_GFN_REPLAY = 55,    /* a GFlowNet replay buffer's draw of (iteration, draw) (numbered apart from parallel branches) */
    /* OP-GFN, local search, multi-objective GFlowNets (issue 13's branch gfnext: 80-84) */
    FR_RNG_GFN_OP_PAIR = 80,   /* OP-GFN: the batch permutation pairing the trajectories of (iteration) */
    FR_RNG_GFN_LS_BACK = 81,   /* local search: the P_B draw of (iteration, trajectory, step, round) */
    FR_RNG_GFN_LS_FWD = 82,    /* local search: the rebuild's P_F draw of (iteration, trajectory, step, round) */
    FR_RNG_GFN_LS_ACCEPT = 83, /* local search: the Metropolis–Hastings uniform of (iteration, trajectory, 0, round) */
    FR_RNG_GFN_PREF = 84,      /* multi-objective: the preference ω ~ Dirichlet of (iteration, trajectory, component) */
    /* issue 13's branch gfnfin (100-104) */
    FR_RNG_GFN_BETA = 100,     /* multi-objective: the drawn β of (iteration, trajectory, 0), elements 0, 1, ... */
    /* energy targets and diffusion samplers as GFlowNets (flowrl/gfn_diffusion.h; issue 13),
     * numbered apart from the parallel GFlowNet branches */
    FR_RNG_ENERGY_SAMPLE = 60, /* an energy target's ground-truth sample (sample, block, try) */
    FR_RNG_GFND_NOISE = 61,    /* the Euler-Maruyama noise of a training trajectory (iteration, trajectory, step) */
    FR_RNG_GFND_EVAL = 62,     /* the forward noise of the evaluation's trajectories (0, trajectory, step) */
    FR_RNG_GFND_BACK = 63,     /* the Brownian-bridge noise of the evaluation's backward trajectories (0, trajectory, step) */
    /* control learning (flowrl/ctl.h, docs/control.md; issue 18's branch ctlrl), numbered apart
     * from the energy targets' 60-63 (branch gfndiff) */
    FR_RNG_CTL_ACTION = 70,    /* a policy's action noise of (epoch, environment, step) */
    FR_RNG_CTL_SHUFFLE = 71,   /* the minibatch order of (epoch, update epoch) */
    FR_RNG_CTL_BC = 72,        /* behaviour cloning's order, times and noise */
    FR_RNG_CTL_FPO = 76,       /* FPO's Monte-Carlo pairs of (epoch, row t·N + n, 0: ε / 1: τ) (73-75 left to the
                                * branches beside it) */
    /* reward gradients through the sampler (docs/algorithms/draft.md; issue 21's branch rgrad, 90-94) */
    FR_RNG_RGRAD_CUT = 90,     /* AlignProp's cut step / ReFL's gradient step of (epoch, 0, 0) */
    /* issue 21's preference variants (branch prefmore: 95-99; reward gradients: 90-94) */
    FR_RNG_RWR_TIME = 95,      /* Flow-RWR: the training time of each (epoch, sample, draw) (flowrl/rwr.h) */
    FR_RNG_RWR_NOISE = 96,     /* Flow-RWR: the noise epsilon of each (epoch, sample, draw) */
    FR_RNG_DDO_TIME = 97,      /* DDO: the training time of each (epoch, row id) (core/algo/ddo.c) */
    FR_RNG_DDO_NOISE = 98,     /* DDO: the noise epsilon of each (epoch, row id), shared by policy and reference */
    /* SmPO (core/algo/smpo.c, docs/algorithms/smpo.md; issue 21's branch smpo: 105-109) */
    FR_RNG_SMPO_TIME = 105,    /* the DDPM time t of each (epoch, pair slot), shared by w and l */
    FR_RNG_SMPO_ORDER = 106,   /* the walk over the preference file: the order of (pass, 0) */
    /* the shapes classifier (flowrl/classifier.h; issue 21's branch pxpo: 110-114) */
    FR_RNG_CLF_DATA = 110,     /* an image's prompts, noise std (0, image, 0) and noise (1, image, 0) */
    FR_RNG_CLF_INIT = 111,     /* the initial weights (layer, 0, 0) */
    FR_RNG_CLF_ORDER = 112,    /* the minibatch order of each (epoch, 0) */
    /* the Box environment and its GFlowNet (flowrl/gfn_box.h; issue 13's branch gfnbox: 85-89) */
    FR_RNG_BOX_ACTION = 85,    /* a training trajectory's draws of (iteration, trajectory, step) */
    FR_RNG_BOX_EVAL = 86,      /* the evaluation's trajectories (0, trajectory, step) */
    FR_RNG_BOX_TARGET = 87,    /* the target's rejection samples (sample, try, 0) */
    /* graph combinatorial optimisation with GFlowNets (flowrl/gfn_comb.h; issue 22's branch gcomb: 115-119) */
    FR_RNG_COMB_GRAPH = 115,   /* an Erdős–Rényi graph's edge coins of (graph id, pair index) */
    FR_RNG_COMB_ACTION = 116,  /* a training rollout's action draw of (iteration, graph, step) */
    FR_RNG_COMB_ORDER = 117,   /* the transition order of (iteration, gradient step) */
    FR_RNG_COMB_EVAL = 118,    /* an evaluation rollout's action draw of (graph, sample, step) */
    /* adversarial flow networks and the FL-GFN set task (issue 22's branch afn: 120-124) */
    FR_RNG_AFN_GAME = 120,     /* AFlowNet self-play: a move's draws of (epoch, game, move) (flowrl/afn.h) */
    FR_RNG_FLGFN_ACTION = 121, /* FL-GFN set task: a training trajectory's draws of (epoch, trajectory, step) (flowrl/flgfn.h) */
    FR_RNG_FLGFN_EVAL = 122,   /* FL-GFN: the evaluation's sets (chunk, trajectory, step) */
    /* MeanFlow policies (flowrl/meanflow_policy.h; issue 22's branch meanflow: 135-139) */
    FR_RNG_MF_TIME = 135,      /* MeanFlow BC: the times (t, r) and the r = t rows of (step) */
    /* GMFlow (flowrl/gmflow.h: 140-144) */
    FR_RNG_GMFLOW_TIME = 140,   /* a training pair's t_high of (step, sample, 0) */
    FR_RNG_GMFLOW_NOISE = 141,  /* a training pair's noise of (step, sample, 0: x_low / 1: x_high) */
    FR_RNG_GMFLOW_SAMPLE = 142, /* GM-SDE: the start (0, sample, 0) and step i's noise (i + 1, sample, 0) */
    FR_RNG_GMFLOW_PICK = 143,   /* GM-SDE: step i's mixture component of (i, sample, 0) */
    FR_RNG_GMFLOW_X0 = 144,     /* GM-SDE: step i's Gaussian draw of x0 of (i, sample, 0) */
    /* OC-GFN (issue 22 §8.1; docs/algorithms/gfn-oc.md, flowrl/gfn_oc.h) */
    FR_RNG_OC_GOAL = 130,      /* a pre-training trajectory's outcome y of (iteration, trajectory, 0) */
    FR_RNG_OC_RELABEL = 131,   /* its hindsight coin of (iteration, trajectory, 0) */
    FR_RNG_OC_FT_OUTCOME = 132,/* fine-tuning: the outcome y ~ q of (iteration, trajectory, 0) */
    FR_RNG_OC_FT_ACTION = 133, /* fine-tuning: the conditional policy's draws of (iteration, trajectory, step) */
    /* sample-set metrics (flowrl/swd.h: 150) */
    FR_RNG_SWD_DIR = 150,      /* a sliced-Wasserstein projection's direction (projection, 0, 0) */
    /* pi-Flow (flowrl/piflow.h: 155-159) */
    FR_RNG_PIFLOW_NOISE = 155,  /* a training x_s of (step, sample, 0) */
    FR_RNG_PIFLOW_TIME = 156,   /* a training intermediate time of (step, sample, n) */
    FR_RNG_PIFLOW_SAMPLE = 157, /* sampling: the student's x_s (sample, 0, 0), the teacher's x(1) (sample, 1, 0) */
    /* guided TB and the ssr policy (flowrl/gfn_guided.h; issue 22's branch gtb: 125-129) */
    FR_RNG_GTB_ONLINE = 125,   /* an online trajectory's draws of (round, trajectory, step), 0: the ε coin, 1: the child */
    FR_RNG_GTB_GUIDE = 126,    /* a guide trajectory's draw of (round, 2·trajectory + batch, step) */
    FR_RNG_GTB_OFFLINE = 127,  /* the offline x of (round, draw) */
    FR_RNG_GTB_BACK = 128,     /* plain TB's offline trajectories drawn back with P_B of (round, trajectory, step) */
    /* the diffusion samplers' replay buffer and local search (flowrl/gfn_diffusion_ls.h; issue 13's branch
     * gfn13: 160-169) */
    FR_RNG_GFND_REPLAY = 160,     /* a buffer draw of (iteration, 0: the search's start / 1: the training batch, 0) */
    FR_RNG_GFND_LS_NOISE = 161,   /* MALA's proposal noise of (iteration, chain, search step) */
    FR_RNG_GFND_LS_ACCEPT = 162,  /* MALA's acceptance coins of (iteration, search step, 0), element = chain */
    FR_RNG_GFND_BWD = 163         /* the bridge noise of a backward training trajectory of (iteration, trajectory, step) */
} fr_rng_purpose;

typedef struct {
    uint32_t v[4];
} fr_u32x4;

FR_HOSTDEV static inline void fr_philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

/* Philox4x32 with R rounds; the key is bumped before rounds 2..R (docs/algorithms/numerics.md §4). */
FR_HOSTDEV static inline fr_u32x4 fr_philox4x32_r(int rounds, fr_u32x4 ctr, uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < rounds; r++) {
        if (r > 0) {
            k0 += FR_PHILOX_W0;
            k1 += FR_PHILOX_W1;
        }
        uint32_t hi0, lo0, hi1, lo1;
        fr_philox_mulhilo(FR_PHILOX_M0, ctr.v[0], &hi0, &lo0);
        fr_philox_mulhilo(FR_PHILOX_M1, ctr.v[2], &hi1, &lo1);
        fr_u32x4 n = {{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
        ctr = n;
    }
    return ctr;
}

FR_HOSTDEV static inline fr_u32x4 fr_philox4x32_10(fr_u32x4 ctr, uint32_t k0, uint32_t k1)
{
    return fr_philox4x32_r(10, ctr, k0, k1);
}

/* The block holding element idx of stream (seed, purpose, c0, c1, c2). */
FR_HOSTDEV static inline fr_u32x4 fr_rng_block(uint32_t seed, uint32_t purpose, uint32_t c0,
                                               uint32_t c1, uint32_t c2, uint32_t block)
{
    fr_u32x4 ctr = {{c0, c1, c2, block}};
    return fr_philox4x32_10(ctr, seed, purpose);
}

FR_HOSTDEV static inline float fr_u32_to_uniform(uint32_t w)
{
    return ((float)(w >> 9) + 0.5f) * 0x1.0p-23f;
}

/* Box-Muller's radius and angle of two words (a caller that wants both lanes of a pair computes
 * them once: opt/opt_rows.c). */
FR_HOSTDEV static inline float fr_box_muller_r(uint32_t wr) { return sqrtf(-2.0f * fr_logf(fr_u32_to_uniform(wr))); }
FR_HOSTDEV static inline float fr_box_muller_theta(uint32_t wt) { return 6.28318530717958647692f * fr_u32_to_uniform(wt); }

/* Box-Muller of two words; lane 0 -> cos, lane 1 -> sin. */
FR_HOSTDEV static inline float fr_box_muller(uint32_t wr, uint32_t wt, int lane)
{
    float r = fr_box_muller_r(wr);
    float theta = fr_box_muller_theta(wt);
    return r * (lane ? fr_sinf(theta) : fr_cosf(theta));
}

/* Normal j (0..3) of a block: lanes 0, 1 from words (w0, w1), lanes 2, 3 from (w2, w3). */
FR_HOSTDEV static inline float fr_rng_block_normal(fr_u32x4 b, int j)
{
    const int pair = j >> 1;
    return fr_box_muller(b.v[2 * pair], b.v[2 * pair + 1], j & 1);
}

FR_HOSTDEV static inline uint32_t fr_rng_u32(uint32_t seed, uint32_t purpose, uint32_t c0,
                                             uint32_t c1, uint32_t c2, uint32_t idx)
{
    return fr_rng_block(seed, purpose, c0, c1, c2, idx >> 2).v[idx & 3];
}

FR_HOSTDEV static inline float fr_rng_uniform(uint32_t seed, uint32_t purpose, uint32_t c0,
                                              uint32_t c1, uint32_t c2, uint32_t idx)
{
    return fr_u32_to_uniform(fr_rng_u32(seed, purpose, c0, c1, c2, idx));
}

FR_HOSTDEV static inline float fr_rng_normal(uint32_t seed, uint32_t purpose, uint32_t c0,
                                             uint32_t c1, uint32_t c2, uint32_t idx)
{
    return fr_rng_block_normal(fr_rng_block(seed, purpose, c0, c1, c2, idx >> 2), (int)(idx & 3));
}

/* fr_rng_fill_normal's body: fr_rng_block_normal of each element, each Box-Muller pair's radius and
 * angle computed once for both of its lanes (the same expressions as fr_box_muller: the same bits). */
static inline void fr_rng_fill_normal_row(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0,
                                          uint32_t c1, uint32_t c2)
{
    for (int64_t i = 0; i < n; i += 4) {
        fr_u32x4 b = fr_rng_block(seed, purpose, c0, c1, c2, (uint32_t)(i >> 2));
        for (int p = 0; p < 2 && i + 2 * p < n; p++) {
            float r = fr_box_muller_r(b.v[2 * p]), theta = fr_box_muller_theta(b.v[2 * p + 1]);
            out[i + 2 * p] = r * fr_cosf(theta);
            if (i + 2 * p + 1 < n) out[i + 2 * p + 1] = r * fr_sinf(theta);
        }
    }
}

/* x86-64 gcc: fr_rng_fill_normal_row compiled for FMA hardware (core/philox_fma.c); call it only
 * where the CPU has FMA (fr_rng_fill_normal does). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define FR_PHILOX_FMA 1
void fr_rng_fill_normal_fma(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1,
                            uint32_t c2);
/* and eight blocks at a time with AVX2 (core/philox_avx2.c); call it only where the CPU has AVX2
 * and FMA (fr_rng_fill_normal does) */
#define FR_PHILOX_AVX2 1
void fr_rng_fill_normal_avx2(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1,
                             uint32_t c2);
#else
#define FR_PHILOX_FMA 0
#define FR_PHILOX_AVX2 0
#endif

/* perm (n,) = the permutation of 0..n−1 that sorts the keys fr_rng_u32(seed, purpose, c0, c1,
 * 0, i) ascending, ties by index (what torch.randperm is to the public code; a pure function of
 * its coordinates). n < 2^32. */
void fr_rng_perm(int64_t *perm, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1);

/* out[i] = fr_rng_uniform(..., i) / fr_rng_normal(..., i), i < n (n < 2^32). One block
 * per four elements. */
void fr_rng_fill_uniform(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0,
                         uint32_t c1, uint32_t c2);
void fr_rng_fill_normal(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0,
                        uint32_t c1, uint32_t c2);
/* fr_rng_fill_normal without vectors (fr_rng_fill_normal_row, with fmaf as an instruction where the
 * CPU has it): ref's rng_normal_rows, and opt's under FLOWRL_OPT_NO_SIMD. The same bits. */
void fr_rng_fill_normal_scalar(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0,
                               uint32_t c1, uint32_t c2);

#endif
