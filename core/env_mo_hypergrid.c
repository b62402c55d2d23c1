/* A 2-objective HyperGrid for multi-objective GFlowNets (docs/envs.md §9; spec gflownets.md §11):
 * torchgfn's HyperGrid dynamics in D = 2 (states {0..H-1}², increment or exit, exit always
 * allowed; core/env_hypergrid.c) with the two objectives of the Branin–Currin grid of
 * yhangchen/OP-GFN@369e9108 multi/grid_cond_gfn.py (after Jain et al., ICML 2023, §6.1): at
 * x = s/(H−1)·2 − 1 ∈ [−1, 1]²,
 *   R_1 = branin(x) = 1 − (t1² + t2 + 10)/308.13, u = 15(x_0/2 + ½) − 5, v = 15(x_1/2 + ½),
 *         t1 = v − 5.1/(4π²)·u² + (5/π)·u − 6, t2 = 10(1 − 1/(8π))·cos u;
 *   R_2 = currin(x) = (1 − e^{−1/(2 x_1' + 1e-10)})·(2300x_0'³ + 1900x_0'² + 2092x_0' + 60)
 *         / (100x_0'³ + 500x_0'² + 4x_0' + 20) / 13.77, x' = x/2 + ½;
 * both in float64, both > 0 on every grid (min R_1 = 2.9e-6, min R_2 = 0.0857). The public
 * grid ends an episode at the edge (the original grid, spec §1.3); this one keeps torchgfn's exit.
 * The single-objective view (log_reward, for a trainer without preferences) is the equal-weight
 * scalarisation log(½R_1 + ½R_2); a mode is a Pareto-optimal cell (no cell at least as good in
 * both objectives and better in one), enumerated at creation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/env.h"

typedef struct {
    int height;
} mo_opts;

typedef struct {
    int height;
    double *r;       /* (H², 2) R_1, R_2 of every cell in canonical order */
    uint8_t *pareto; /* (H²,) */
} mo_impl;

#define O mo_opts
static const fr_opt k_rows[] = {
    FR_OPT_INT(O, height, "height", "16", 2, 64, "grid height H (coordinates 0..H-1; the Pareto front is enumerated)", 0),
};
#undef O

static const mo_impl *mo(const fr_env *e) { return e->impl; }

void fr_mo_hypergrid_objectives(int H, const int32_t *s, double *r)
{
    const double pi = 3.14159265358979323846;
    const double x0 = (double)s[0] / (double)(H - 1) * 2.0 - 1.0, x1 = (double)s[1] / (double)(H - 1) * 2.0 - 1.0;
    const double u = 15.0 * (x0 / 2.0 + 0.5) - 5.0, v = 15.0 * (x1 / 2.0 + 0.5);
    const double t1 = v - 5.1 / (4.0 * pi * pi) * u * u + 5.0 / pi * u - 6.0, t2 = 10.0 * (1.0 - 1.0 / (8.0 * pi)) * cos(u);
    r[0] = 1.0 - (t1 * t1 + t2 + 10.0) / 308.13;
    const double a = x0 / 2.0 + 0.5, b = x1 / 2.0 + 0.5;
    const double f = 1.0 - exp(-1.0 / (2.0 * b + 1e-10));
    r[1] = f * (2300.0 * a * a * a + 1900.0 * a * a + 2092.0 * a + 60.0) / (100.0 * a * a * a + 500.0 * a * a + 4.0 * a + 20.0) /
           13.77;
}

static void initial(const fr_env *e, int32_t *s) { memset(s, 0, (size_t)e->state_dim * sizeof *s); }

static void encode(const fr_env *e, const int32_t *s, float *obs)
{
    const int H = mo(e)->height;
    memset(obs, 0, (size_t)e->obs_dim * sizeof *obs);
    for (int d = 0; d < 2; d++) obs[d * H + s[d]] = 1.0f;
}

static void forward_mask(const fr_env *e, const int32_t *s, uint8_t *fwd)
{
    for (int d = 0; d < 2; d++) fwd[d] = s[d] < mo(e)->height - 1;
    fwd[2] = 1;
}

static void backward_mask(const fr_env *e, const int32_t *s, uint8_t *bwd)
{
    (void)e;
    for (int d = 0; d < 2; d++) bwd[d] = s[d] > 0;
}

static void step(const fr_env *e, const int32_t *s, int a, int32_t *s_next)
{
    (void)e;
    memmove(s_next, s, 2 * sizeof *s);
    s_next[a] += 1;
}

static void back_step(const fr_env *e, const int32_t *s, int a, int32_t *s_prev)
{
    (void)e;
    memmove(s_prev, s, 2 * sizeof *s);
    s_prev[a] -= 1;
}

static int64_t index_of(const fr_env *e, const int32_t *s) { return (int64_t)s[0] * mo(e)->height + s[1]; }

static void state_at(const fr_env *e, int64_t i, int32_t *s)
{
    s[0] = (int32_t)(i / mo(e)->height);
    s[1] = (int32_t)(i % mo(e)->height);
}

static void objectives(const fr_env *e, const int32_t *x, double *r)
{
    const double *c = mo(e)->r + 2 * index_of(e, x);
    r[0] = c[0];
    r[1] = c[1];
}

static double log_reward(const fr_env *e, const int32_t *x)
{
    double r[2];
    objectives(e, x, r);
    return fr_awm_log(0.5 * r[0] + 0.5 * r[1]);
}

static int is_mode(const fr_env *e, const int32_t *s) { return mo(e)->pareto[index_of(e, s)]; }

static const fr_env_gfn_ops k_ops = {initial, encode, forward_mask, backward_mask, step, back_step, log_reward,
                                     index_of, state_at, is_mode, objectives};

static fr_status create(const void *ov, fr_env *e)
{
    const mo_opts *o = ov;
    const int H = o->height;
    const int64_t n = (int64_t)H * H;
    /* one block (fr_env_free frees impl): the struct, then r, then pareto */
    mo_impl *m = fr_malloc(sizeof *m + (size_t)(2 * n) * sizeof(double) + (size_t)n);
    if (!m) return FR_ERR_NOMEM;
    m->height = H;
    m->r = (double *)(m + 1);
    m->pareto = (uint8_t *)(m->r + 2 * n);
    for (int64_t i = 0; i < n; i++) {
        const int32_t s[2] = {(int32_t)(i / H), (int32_t)(i % H)};
        fr_mo_hypergrid_objectives(H, s, m->r + 2 * i);
    }
    for (int64_t i = 0; i < n; i++) { /* O(n²) over at most 4096 cells */
        const double *a = m->r + 2 * i;
        int dominated = 0;
        for (int64_t j = 0; j < n && !dominated; j++) {
            const double *b = m->r + 2 * j;
            dominated = b[0] >= a[0] && b[1] >= a[1] && (b[0] > a[0] || b[1] > a[1]);
        }
        m->pareto[i] = (uint8_t)!dominated;
    }
    e->impl = m;
    e->state_dim = 2;
    e->obs_dim = 2 * H;
    e->n_actions = 3;
    e->action_dim = 0;
    e->exit_action = 2;
    e->max_steps = 2 * (H - 1) + 1;
    e->n_states = n;
    e->n_objectives = 2;
    e->gfn = &k_ops;
    snprintf(e->desc, sizeof e->desc, "mo-hypergrid D=2 H=%d (branin, currin)", H);
    return FR_OK;
}

const fr_env_class fr_env_mo_hypergrid = {
    "mo-hypergrid",
    "2-objective HyperGrid (D 2): torchgfn's dynamics, objectives Branin and Currin (OP-GFN / MOGFN's grid); "
    "modes = the Pareto front",
    "docs/envs.md",
    "gfn",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(mo_opts),
    create,
};
