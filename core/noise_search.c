/* Smart-GRPO's noise search (flowrl/noise_search.h; docs/algorithms/samplers.md §14): per
 * round, draw K noises per prompt from N(μ, σ²), decode each in one step, score, refit μ and
 * σ from the top E. */
#include "flowrl/noise_search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rollout_internal.h"
#include "flowrl/cond.h"
#include "flowrl/guidance.h"
#include "flowrl/philox.h"
#include "flowrl/sampler.h"

/* Bounds that keep every counter (r·K + k, r <= R) and element index below 2^32. */
#define MAX_ROUNDS 1024
#define MAX_CANDIDATES 65536
#define MAX_GROUP 65536

fr_noise_search_cfg fr_noise_search_cfg_default(void)
{
    fr_noise_search_cfg c;
    memset(&c, 0, sizeof c);
    /* flowrl choices, the reasons in docs/algorithms/samplers.md §14 */
    c.rounds = 2;
    c.candidates = 16;
    c.elites = 4;
    c.init_std = 1.0f; /* μ = 0: the model's prior N(0, I) */
    c.min_std = 0.25f;
    return c;
}

fr_status fr_noise_search_cfg_check(const fr_noise_search_cfg *c)
{
    if (!c) return fr_fail(FR_ERR_ARG, "noise search: NULL config");
    if (c->rounds < 1 || c->rounds > MAX_ROUNDS)
        return fr_fail(FR_ERR_ARG, "noise search: rounds %lld, expected 1 .. %d", (long long)c->rounds, MAX_ROUNDS);
    if (c->candidates < 2 || c->candidates > MAX_CANDIDATES)
        return fr_fail(FR_ERR_ARG, "noise search: candidates %lld, expected 2 .. %d", (long long)c->candidates,
                       MAX_CANDIDATES);
    if (c->elites < 1 || c->elites > c->candidates)
        return fr_fail(FR_ERR_ARG, "noise search: elites %lld, expected 1 .. candidates (%lld)", (long long)c->elites,
                       (long long)c->candidates);
    if (!(c->init_std > 0.0f && c->init_std <= 1e6f))
        return fr_fail(FR_ERR_ARG, "noise search: init_std %g, expected in (0, 1e6]", (double)c->init_std);
    if (!(c->min_std >= 0.0f && c->min_std <= c->init_std))
        return fr_fail(FR_ERR_ARG, "noise search: min_std %g, expected in [0, init_std = %g]", (double)c->min_std,
                       (double)c->init_std);
    return FR_OK;
}

/* ---- the refit ---------------------------------------------------------------------- */

/* a ranks before b: higher reward, then the lower index. */
static int ranks_before(const float *reward, int64_t a, int64_t b)
{
    return reward[a] > reward[b] || (reward[a] == reward[b] && a < b);
}

fr_status fr_noise_search_refit(int64_t K, int64_t E, int64_t D, const float *z, const float *reward, float min_std,
                                float *mu, float *sigma, int64_t *elite)
{
    if (K < 1 || E < 1 || E > K || D < 1 || !z || !reward || !mu || !sigma || !(min_std >= 0.0f))
        return fr_fail(FR_ERR_ARG, "fr_noise_search_refit: K %lld, E %lld, D %lld, min_std %g or a NULL array",
                       (long long)K, (long long)E, (long long)D, (double)min_std);
    for (int64_t k = 0; k < K; k++)
        if (!isfinite(reward[k]))
            return fr_fail(FR_ERR_NUMERIC, "noise search: reward of candidate %lld is %g, expected a finite value",
                           (long long)k, (double)reward[k]);
    int64_t *rank = fr_malloc((size_t)K * sizeof *rank);
    int64_t *set = fr_malloc((size_t)E * sizeof *set);
    if (!rank || !set) {
        free(rank);
        free(set);
        return FR_ERR_NOMEM;
    }
    for (int64_t k = 0; k < K; k++) { /* insertion sort: K is small, the order total */
        int64_t i = k;
        for (; i > 0 && ranks_before(reward, k, rank[i - 1]); i--) rank[i] = rank[i - 1];
        rank[i] = k;
    }
    if (elite) memcpy(elite, rank, (size_t)E * sizeof *elite);
    memcpy(set, rank, (size_t)E * sizeof *set);
    for (int64_t e = 1; e < E; e++) { /* the elites in index order: μ, σ depend on the set only */
        int64_t v = set[e], i = e;
        for (; i > 0 && set[i - 1] > v; i--) set[i] = set[i - 1];
        set[i] = v;
    }
    const float fE = (float)E;
    for (int64_t j = 0; j < D; j++) {
        float s = 0.0f;
        for (int64_t e = 0; e < E; e++) s += z[set[e] * D + j];
        const float m = s / fE;
        float q = 0.0f;
        for (int64_t e = 0; e < E; e++) {
            const float d = z[set[e] * D + j] - m;
            q = fmaf(d, d, q);
        }
        const float sd = sqrtf(q / fE);
        mu[j] = m;
        sigma[j] = sd > min_std ? sd : min_std;
    }
    free(rank);
    free(set);
    return FR_OK;
}

/* ---- the search ----------------------------------------------------------------------- */

/* Rows (n, D) of draws from N(μ, σ²): row i = fmaf(σ, ε, μ), ε = normals (seed,
 * FR_RNG_NOISE_SEARCH, c0, id, c2_first + i) (flowrl/noise_search.h "Randomness"). */
static void draw(const fr_rollout_cfg *rc, uint32_t id, uint32_t c2_first, int64_t n, int64_t D, const float *mu,
                 const float *sigma, float *z)
{
    for (int64_t i = 0; i < n; i++) {
        float *row = z + i * D;
        fr_rng_fill_normal(row, D, rc->seed, FR_RNG_NOISE_SEARCH, rc->c0, id, c2_first + (uint32_t)i);
        for (int64_t j = 0; j < D; j++) row[j] = fmaf(sigma[j], row[j], mu[j]);
    }
}

/* Host and backend buffers of one search. */
typedef struct {
    fr_guided_ws g;
    float *zb, *vb, *x0b;   /* backend (cap, D) each */
    void *blk;              /* backend, all of the above */
    float *z, *x0, *rw;     /* host (P·K, D), (P·K, D), (P·K,) */
    float *mu, *sd;         /* host (P, D) each */
    int64_t *elite;         /* host (E,): a refit's elites, best first */
    int *pid;               /* host (P·K,): the prompt of each candidate */
    int32_t *c;             /* host (cap, S) */
    void *hblk;             /* host, all of the above */
} search_bufs;

static void bufs_free(fr_backend *be, search_bufs *w)
{
    fr_guided_ws_free(&w->g);
    fr_dev_free(be, w->blk);
    free(w->hblk);
    memset(w, 0, sizeof *w);
}

static fr_status bufs_alloc(fr_backend *be, search_bufs *w, const fr_model *m, int64_t cap, int64_t P, int64_t K,
                            int64_t E, fr_guidance gd)
{
    memset(w, 0, sizeof *w);
    const int64_t D = m->cfg.D, S = m->cfg.n_slots, N = P * K;
    w->blk = fr_dev_alloc(be, (size_t)(3 * cap * D) * sizeof(float));
    w->hblk = fr_malloc((size_t)E * sizeof(int64_t) + (size_t)(2 * N * D + N + 2 * P * D) * sizeof(float) +
                        (size_t)N * sizeof(int) + (size_t)(cap * S) * sizeof(int32_t));
    if (!w->blk || !w->hblk) {
        bufs_free(be, w);
        return FR_ERR_NOMEM;
    }
    float *f = w->blk;
    w->zb = f, f += cap * D;
    w->vb = f, f += cap * D;
    w->x0b = f;
    w->elite = w->hblk;
    float *h = (float *)(w->elite + E);
    w->z = h, h += N * D;
    w->x0 = h, h += N * D;
    w->rw = h, h += N;
    w->mu = h, h += P * D;
    w->sd = h, h += P * D;
    w->pid = (int *)h;
    w->c = (int32_t *)(w->pid + N);
    fr_status s = fr_guided_ws_alloc(&w->g, be, m, cap, gd, 0);
    if (s != FR_OK) bufs_free(be, w);
    return s;
}

/* x0 (N, D) host = the one-step decode z − σ_0·v(z, t_in) of z (N, D) host, cap rows per
 * forward. */
static fr_status decode(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *rc,
                        search_bufs *w, int64_t N, int64_t cap)
{
    const int64_t D = m->cfg.D;
    const float sigma0 = rc->sigmas[0], t_in = fr_rollout_time(rc, 0);
    for (int64_t r0 = 0; r0 < N; r0 += cap) {
        const int64_t b = N - r0 < cap ? N - r0 : cap;
        const size_t bytes = (size_t)(b * D) * sizeof(float);
        FR_TRY(fr_cond_ids(task, b, w->pid + r0, w->c));
        FR_TRY(fr_h2d(be, w->zb, w->z + r0 * D, bytes));
        FR_TRY(fr_guided_forward(m, be, &w->g, b, w->zb, t_in, w->c, w->vb));
        FR_TRY(fr_flow_x0(be, b * D, sigma0, w->zb, w->vb, w->x0b));
        FR_TRY(fr_d2h(be, w->x0 + r0 * D, w->x0b, bytes));
    }
    return FR_OK;
}

static fr_status run_search(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *rc,
                            const fr_noise_search_cfg *c, int64_t P, const int *prompt_ids, const uint32_t *ids,
                            fr_noise_reward_fn reward, void *user, int64_t G, float *x_T, fr_noise_search_out *out,
                            search_bufs *w, int64_t cap)
{
    const int64_t D = m->cfg.D, K = c->candidates, E = c->elites, R = c->rounds, N = P * K;
    for (int64_t i = 0; i < P * D; i++) w->mu[i] = 0.0f, w->sd[i] = c->init_std;
    for (int64_t i = 0; i < N; i++) w->pid[i] = prompt_ids[i / K];
    for (int64_t r = 0; r < R; r++) {
        for (int64_t p = 0; p < P; p++)
            draw(rc, ids[p], (uint32_t)(r * K), K, D, w->mu + p * D, w->sd + p * D, w->z + p * K * D);
        FR_TRY(decode(m, be, task, rc, w, N, cap));
        FR_TRY(reward(user, N, w->pid, w->x0, w->rw));
        for (int64_t i = 0; i < N; i++)
            if (!isfinite(w->rw[i]))
                return fr_fail(FR_ERR_NUMERIC,
                               "noise search: round %lld, prompt %d, candidate %lld: reward %g, expected a finite value",
                               (long long)r, w->pid[i], (long long)(i % K), (double)w->rw[i]);
        double sum = 0.0, top = 0.0;
        for (int64_t p = 0; p < P; p++) {
            FR_TRY(fr_noise_search_refit(K, E, D, w->z + p * K * D, w->rw + p * K, c->min_std, w->mu + p * D,
                                         w->sd + p * D, w->elite));
            top += w->rw[p * K + w->elite[0]];
            for (int64_t k = 0; k < K; k++) sum += w->rw[p * K + k];
        }
        if (out && out->mean_reward) out->mean_reward[r] = (float)(sum / (double)N);
        if (out && out->top_reward) out->top_reward[r] = (float)(top / (double)P);
    }
    /* the final draws reuse the candidate buffer: G rows per prompt */
    float *xt = w->z;
    float *xt_own = NULL;
    if (G > K) {
        xt = xt_own = fr_malloc((size_t)(P * G * D) * sizeof *xt);
        if (!xt) return FR_ERR_NOMEM;
    }
    for (int64_t p = 0; p < P; p++)
        draw(rc, ids[p], (uint32_t)(R * K), G, D, w->mu + p * D, w->sd + p * D, xt + p * G * D);
    fr_status s = fr_h2d(be, x_T, xt, (size_t)(P * G * D) * sizeof *xt);
    free(xt_own);
    if (s == FR_OK && out) {
        if (out->mu) memcpy(out->mu, w->mu, (size_t)(P * D) * sizeof *out->mu);
        if (out->sigma) memcpy(out->sigma, w->sd, (size_t)(P * D) * sizeof *out->sigma);
    }
    return s;
}

fr_status fr_noise_search(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *rc,
                          const fr_noise_search_cfg *c, int64_t P, const int *prompt_ids, const uint32_t *ids,
                          fr_noise_reward_fn reward, void *user, int64_t G, float *x_T, fr_noise_search_out *out)
{
    if (!m || !be || !task || !rc || !reward || !x_T || (P > 0 && (!prompt_ids || !ids)))
        return fr_fail(FR_ERR_ARG, "noise search: NULL model, backend, task, rollout config, reward, x_T or ids");
    FR_TRY(fr_noise_search_cfg_check(c));
    FR_TRY(fr_rollout_check_cfg(m, task, rc));
    if (rc->kind == FR_SAMPLER_DDIM)
        return fr_fail(FR_ERR_ARG, "noise search: the one-step decode x0 = z - sigma*v needs a flow sampler "
                                   "(ode, sde, cps, dance, dpm), not ddim");
    if (G < 1 || G > MAX_GROUP)
        return fr_fail(FR_ERR_ARG, "noise search: group size %lld, expected 1 .. %d", (long long)G, MAX_GROUP);
    const int64_t D = m->cfg.D, K = c->candidates, KG = K > G ? K : G;
    if (P < 0 || P > ((int64_t)1 << 31) / KG || P * KG * D > ((int64_t)1 << 31))
        return fr_fail(FR_ERR_ARG, "noise search: %lld prompts of %lld rows of %lld elements, expected at most 2^31",
                       (long long)P, (long long)KG, (long long)D);
    if (out) out->rows = 0;
    if (P == 0) return FR_OK;
    const int64_t N = P * K, cap = rc->batch > 0 && rc->batch < N ? rc->batch : N;
    const fr_guidance gd = fr_guidance_from_scale(rc->cfg);
    search_bufs w;
    FR_TRY(bufs_alloc(be, &w, m, cap, P, K, c->elites, gd));
    fr_status s = run_search(m, be, task, rc, c, P, prompt_ids, ids, reward, user, G, x_T, out, &w, cap);
    bufs_free(be, &w);
    if (s == FR_OK && out) out->rows = c->rounds * N * (gd.on ? 2 : 1);
    return s;
}
