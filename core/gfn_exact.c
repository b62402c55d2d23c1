/* Exact quantities of an enumerable GFlowNet environment (flowrl/env.h; docs/algorithms/gfn.md
 * §5.1): the target R/Z and log Z, and the terminating distribution P_T of a forward policy by
 * one pass over the DAG in canonical (topological) order, torchgfn's
 * env.exact_terminating_distribution. Float64 throughout; sums in index order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/env.h"

#define FR_ENV_MAX_DIM 64

static fr_status need_enumerable(const fr_env *e, const char *what)
{
    if (!e->gfn || e->n_states <= 0)
        return fr_fail(FR_ERR_UNSUPPORTED, "%s: %s needs an enumerable GFlowNet environment (n_states > 0)", e->desc,
                       what);
    if (e->state_dim > FR_ENV_MAX_DIM || e->n_actions > FR_ENV_MAX_DIM + 1)
        return fr_fail(FR_ERR_UNSUPPORTED, "%s: %s: state_dim %d exceeds %d", e->desc, what, e->state_dim, FR_ENV_MAX_DIM);
    return FR_OK;
}

fr_status fr_env_target(const fr_env *e, double *p, double *log_z, int64_t *n_modes, double *mode_mass)
{
    FR_TRY(need_enumerable(e, "the exact target"));
    const int64_t n = e->n_states;
    double *r = fr_malloc((size_t)n * sizeof *r);
    if (!r) return FR_ERR_NOMEM;
    int32_t s[FR_ENV_MAX_DIM];
    double z = 0.0, zm = 0.0;
    int64_t modes = 0;
    for (int64_t i = 0; i < n; i++) {
        e->gfn->state_at(e, i, s);
        r[i] = fr_awm_exp(e->gfn->log_reward(e, s));
        z += r[i];
        if (e->gfn->is_mode(e, s)) {
            modes++;
            zm += r[i];
        }
    }
    if (p)
        for (int64_t i = 0; i < n; i++) p[i] = r[i] / z;
    free(r);
    if (log_z) *log_z = fr_awm_log(z);
    if (n_modes) *n_modes = modes;
    if (mode_mass) *mode_mass = zm / z;
    return FR_OK;
}

fr_status fr_env_exact_pt(const fr_env *e, const double *logpf, double *pt)
{
    FR_TRY(need_enumerable(e, "the exact P_T"));
    const int64_t n = e->n_states;
    const int A = e->n_actions;
    double *u = fr_calloc((size_t)n, sizeof *u);
    if (!u) return FR_ERR_NOMEM;
    int32_t s[FR_ENV_MAX_DIM], c[FR_ENV_MAX_DIM];
    uint8_t fwd[FR_ENV_MAX_DIM + 1];
    e->gfn->initial(e, s);
    u[e->gfn->index(e, s)] = 1.0;
    /* every parent precedes its children in index order, so u(s) is complete when s is reached */
    for (int64_t i = 0; i < n; i++) {
        e->gfn->state_at(e, i, s);
        e->gfn->forward_mask(e, s, fwd);
        const double *lp = logpf + i * A;
        pt[i] = fwd[e->exit_action] ? u[i] * fr_awm_exp(lp[e->exit_action]) : 0.0;
        for (int a = 0; a < A; a++) {
            if (a == e->exit_action || !fwd[a] || u[i] == 0.0) continue;
            e->gfn->step(e, s, a, c);
            int64_t j = e->gfn->index(e, c);
            if (j <= i) {
                free(u);
                return fr_fail(FR_ERR_ARG, "%s: action %d from state %lld leads to %lld: the index is not topological",
                               e->desc, a, (long long)i, (long long)j);
            }
            u[j] += u[i] * fr_awm_exp(lp[a]);
        }
    }
    free(u);
    return FR_OK;
}

double fr_env_l1(const double *a, const double *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += fabs(a[i] - b[i]);
    return s;
}
