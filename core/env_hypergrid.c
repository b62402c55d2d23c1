/* HyperGrid as torchgfn defines it (GFNOrg/torchgfn@f39bfc96 src/gfn/gym/hypergrid.py;
 * docs/envs.md §1): states {0..H-1}^D from s0 = 0, actions "increment d" (d < D) and exit (D),
 * always allowed, OriginalReward with its float32 ring and band. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/env.h"

#define O fr_hypergrid_opts
static const fr_opt k_rows[] = {
    FR_OPT_INT(O, ndim, "ndim", "2", 1, 16, "grid dimension D", 0),
    FR_OPT_INT(O, height, "height", "8", 2, 4096, "grid height H (coordinates 0..H-1)", 0),
    FR_OPT_F64(O, r0, "r0", "0.1", 0, 1e6, "OriginalReward R0 (everywhere)", 0),
    FR_OPT_F64(O, r1, "r1", "0.5", 0, 1e6, "OriginalReward R1 (outer ring: every |s_d/(H-1) - 0.5| > 0.25)", 0),
    FR_OPT_F64(O, r2, "r2", "2.0", 0, 1e6, "OriginalReward R2 (band: every 0.3 < |s_d/(H-1) - 0.5| < 0.4)", 0),
};
#undef O

static const fr_hypergrid_opts *hg(const fr_env *e) { return e->impl; }

/* torchgfn: ax = abs(states / (height - 1) - 0.5), a float32 tensor; Python-float thresholds
 * 0.25 + 1e-12 etc. are compared in float32 (docs/envs.md §1.2: the precision trap), and
 * R0 + prod·R1 + prod·R2 is a float32 sum in that order. */
float fr_hypergrid_reward(const fr_hypergrid_opts *o, const int32_t *x)
{
    const double eps = 1e-12;
    const float lo_ring = (float)(0.25 + eps), lo_band = (float)(0.3 + eps), hi_band = (float)(0.4 - eps);
    const float hm1 = (float)(o->height - 1);
    int ring = 1, band = 1;
    for (int d = 0; d < o->ndim; d++) {
        float a = (float)x[d] / hm1 - 0.5f;
        a = a < 0.0f ? -a : a;
        ring &= lo_ring < a;
        band &= (lo_band < a) & (a < hi_band);
    }
    float r = (float)o->r0 + (float)ring * (float)o->r1;
    return r + (float)band * (float)o->r2;
}

static void initial(const fr_env *e, int32_t *s) { memset(s, 0, (size_t)e->state_dim * sizeof *s); }

/* KHotPreprocessor: the one-hot of each coordinate, concatenated: obs (H·D,). */
static void encode(const fr_env *e, const int32_t *s, float *obs)
{
    const int H = hg(e)->height;
    memset(obs, 0, (size_t)e->obs_dim * sizeof *obs);
    for (int d = 0; d < e->state_dim; d++) obs[d * H + s[d]] = 1.0f;
}

static void forward_mask(const fr_env *e, const int32_t *s, uint8_t *fwd)
{
    const int H = hg(e)->height;
    for (int d = 0; d < e->state_dim; d++) fwd[d] = s[d] < H - 1;
    fwd[e->exit_action] = 1; /* exit is always allowed, even at s0 */
}

static void backward_mask(const fr_env *e, const int32_t *s, uint8_t *bwd)
{
    for (int d = 0; d < e->state_dim; d++) bwd[d] = s[d] > 0;
}

static void step(const fr_env *e, const int32_t *s, int a, int32_t *s_next)
{
    memmove(s_next, s, (size_t)e->state_dim * sizeof *s);
    s_next[a] += 1;
}

static void back_step(const fr_env *e, const int32_t *s, int a, int32_t *s_prev)
{
    memmove(s_prev, s, (size_t)e->state_dim * sizeof *s);
    s_prev[a] -= 1;
}

/* log of the float32 reward, in float64 (torchgfn takes a float32 log; flowrl's losses are
 * float64, docs/algorithms/gfn.md §3). */
static double log_reward(const fr_env *e, const int32_t *x) { return fr_awm_log((double)fr_hypergrid_reward(hg(e), x)); }

/* Σ_j s_j·H^{D−1−j}: every increment raises it, so the order is topological. */
static int64_t index_of(const fr_env *e, const int32_t *s)
{
    int64_t i = 0;
    for (int d = 0; d < e->state_dim; d++) i = i * hg(e)->height + s[d];
    return i;
}

static void state_at(const fr_env *e, int64_t i, int32_t *s)
{
    for (int d = e->state_dim - 1; d >= 0; d--) {
        s[d] = (int32_t)(i % hg(e)->height);
        i /= hg(e)->height;
    }
}

/* torchgfn's mode_mask: reward >= R0 + R1 + R2, the threshold a Python float (float64 sum)
 * compared with the float32 reward tensor, so in float32. */
static int is_mode(const fr_env *e, const int32_t *s)
{
    const fr_hypergrid_opts *o = hg(e);
    return fr_hypergrid_reward(o, s) >= (float)(o->r0 + o->r1 + o->r2);
}

static const fr_env_gfn_ops k_ops = {initial, encode, forward_mask, backward_mask, step,
                                     back_step, log_reward, index_of, state_at, is_mode, NULL};

static fr_status create(const void *ov, fr_env *e)
{
    const fr_hypergrid_opts *o = ov;
    if (o->r0 <= 0.0)
        return fr_fail(FR_ERR_ARG, "hypergrid: --r0 %g, expected > 0 (log R must be finite at every cell)", o->r0);
    double n = 1.0;
    for (int d = 0; d < o->ndim; d++) n *= o->height;
    fr_hypergrid_opts *copy = fr_malloc(sizeof *copy);
    if (!copy) return FR_ERR_NOMEM;
    *copy = *o;
    e->impl = copy;
    e->state_dim = o->ndim;
    e->obs_dim = o->ndim * o->height;
    e->n_actions = o->ndim + 1;
    e->action_dim = 0;
    e->exit_action = o->ndim;
    e->max_steps = o->ndim * (o->height - 1) + 1;
    e->n_states = n <= (double)FR_HYPERGRID_MAX_STATES ? (int64_t)n : 0;
    e->gfn = &k_ops;
    e->ctl = NULL;
    snprintf(e->desc, sizeof e->desc, "hypergrid D=%d H=%d R0=%g R1=%g R2=%g", o->ndim, o->height, o->r0, o->r1, o->r2);
    return FR_OK;
}

const fr_env_class fr_env_hypergrid = {
    "hypergrid",
    "torchgfn's HyperGrid: {0..H-1}^D, increment or exit, OriginalReward (ring R1, band R2 over R0)",
    "docs/envs.md",
    "gfn",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(fr_hypergrid_opts),
    create,
};
