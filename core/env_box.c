/* The Box environment (flowrl/gfn_box.h; docs/envs.md §8; spec gflownets.md §6; torchgfn 1.2.1
 * GFNOrg/torchgfn@13c059a2 src/gfn/gym/box.py): continuous states in [0, 1]², its reward, log Z,
 * the exact target mass of a grid's cells and target samples. The policy's distributions are
 * core/gfn_box_dist.c, the trainer core/gfn_box.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gfn_box.h"
#include "flowrl/philox.h"

#define O fr_box_opts
static const fr_opt k_rows[] = {
    FR_OPT_F64(O, delta, "delta", "0.25", 1e-3, 1, "step length: the first step anywhere in the quarter disk of this radius, then exactly this long", 0),
    FR_OPT_F64(O, r0, "r0", "0.1", 0, 1e6, "reward R0 (everywhere)", 0),
    FR_OPT_F64(O, r1, "r1", "0.5", 0, 1e6, "reward R1 (every |x_d - 0.5| > 0.25)", 0),
    FR_OPT_F64(O, r2, "r2", "2.0", 0, 1e6, "reward R2 (every 0.3 < |x_d - 0.5| < 0.4)", 0),
    FR_OPT_F64(O, epsilon, "exit_epsilon", "1e-10", 0, 0.5, "a coordinate >= 1 - exit_epsilon forces the exit (train_box.py: 1e-10)", 0),
};
#undef O

const fr_box_opts *fr_box_of(const fr_env *e) { return e && e->cls == &fr_env_box ? e->impl : NULL; }

/* torchgfn: ax = |x − 0.5| of the float32 state, compared with Python floats (so in float32),
 * reward = R0 + (0.25 < ax).prod·R1 + ((0.3 < ax)·(ax < 0.4)).prod·R2, a float32 tensor. */
float fr_box_reward(const fr_box_opts *o, const double *x)
{
    int ring = 1, band = 1;
    for (int d = 0; d < 2; d++) {
        const float ax = fabsf((float)x[d] - 0.5f);
        ring &= 0.25f < ax;
        band &= 0.3f < ax && ax < 0.4f;
    }
    float r = (float)o->r0 + (ring ? (float)o->r1 : 0.0f);
    return r + (band ? (float)o->r2 : 0.0f);
}

double fr_box_log_z(const fr_box_opts *o)
{
    return fr_awm_log(o->r0 + (2 * 0.25) * (2 * 0.25) * o->r1 + (2 * 0.1) * (2 * 0.1) * o->r2);
}

int fr_box_must_exit(const fr_box_opts *o, const double *s)
{
    const double u = 1.0 - s[0], v = 1.0 - s[1];
    return sqrt(u * u + v * v) <= o->delta || s[0] >= 1.0 - o->epsilon || s[1] >= 1.0 - o->epsilon;
}

/* The length of [a, b) ∩ the set {t : lo < |t − ½| < hi} (two intervals). */
static double overlap(double a, double b, double lo, double hi)
{
    const double iv[2][2] = {{0.5 - hi, 0.5 - lo}, {0.5 + lo, 0.5 + hi}};
    double len = 0.0;
    for (int k = 0; k < 2; k++) {
        const double l = a > iv[k][0] ? a : iv[k][0], r = b < iv[k][1] ? b : iv[k][1];
        if (r > l) len += r - l;
    }
    return len;
}

void fr_box_target_cells(const fr_box_opts *o, int G, double *p)
{
    const double z = o->r0 + 0.25 * o->r1 + 0.04 * o->r2;
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) {
            const double ax = (double)i / G, bx = (double)(i + 1) / G, ay = (double)j / G, by = (double)(j + 1) / G;
            /* the ring |t − ½| > ¼ within [0, 1]: hi = ½ */
            const double m = o->r0 * (bx - ax) * (by - ay) + o->r1 * overlap(ax, bx, 0.25, 0.5) * overlap(ay, by, 0.25, 0.5) +
                             o->r2 * overlap(ax, bx, 0.3, 0.4) * overlap(ay, by, 0.3, 0.4);
            p[i * G + j] = m / z;
        }
}

static double u53(uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t k)
{
    const uint32_t hi = fr_rng_u32(seed, purpose, c0, c1, c2, 2 * k) >> 5, lo = fr_rng_u32(seed, purpose, c0, c1, c2, 2 * k + 1) >> 6;
    return ((double)hi * 67108864.0 + (double)lo + 0.5) / 9007199254740992.0;
}

/* Rejection from Uniform[0, 1]² with the bound R0 + R1 + R2 (train_box.py's R0 + max(R1, R2) is
 * below the band's reward, which under-weights the band: docs/algorithms/gfn-box.md §5). */
void fr_box_target_sample(const fr_box_opts *o, uint32_t seed, uint32_t i, double *x)
{
    const double bound = o->r0 + o->r1 + o->r2;
    for (uint32_t k = 0;; k++) {
        x[0] = u53(seed, FR_RNG_BOX_TARGET, i, k, 0, 0);
        x[1] = u53(seed, FR_RNG_BOX_TARGET, i, k, 0, 1);
        if (u53(seed, FR_RNG_BOX_TARGET, i, k, 0, 2) * bound < (double)fr_box_reward(o, x) || k >= 1000000) return;
    }
}

static fr_status create(const void *ov, fr_env *e)
{
    const fr_box_opts *o = ov;
    if (o->r0 <= 0.0) return fr_fail(FR_ERR_ARG, "box: --r0 %g, expected > 0 (log R must be finite everywhere)", o->r0);
    fr_box_opts *copy = fr_malloc(sizeof *copy);
    if (!copy) return FR_ERR_NOMEM;
    *copy = *o;
    e->impl = copy;
    e->state_dim = 2;
    e->obs_dim = 2;
    e->n_actions = 0;
    e->action_dim = 2;
    e->exit_action = -1;
    /* x + y grows by at least δ at every step after the first and stays ≤ 2: at most 1 + ⌊2/δ⌋
     * steps, then the exit */
    e->max_steps = 2 + (int)floor(2.0 / o->delta);
    e->n_states = 0;
    snprintf(e->desc, sizeof e->desc, "box delta=%g R0=%g R1=%g R2=%g", o->delta, o->r0, o->r1, o->r2);
    return FR_OK;
}

const fr_env_class fr_env_box = {
    "box",
    "torchgfn's Box: continuous [0,1]^2, steps of length delta (quarter disk first), exit, ring R1 / band R2 over R0",
    "docs/envs.md",
    "gfn-continuous",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(fr_box_opts),
    create,
};
