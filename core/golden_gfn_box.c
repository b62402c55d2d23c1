/* Golden cases of the Box environment and its policy (docs/envs.md §8, docs/algorithms/gfn-box.md
 * §2): a step of each kind (s0's quarter disk, steps inside the square and at its top edge, an
 * exit, a forced exit) with its log P_F, log P_B, their gradients in the raw outputs, the next
 * state, the reward and the draws of P_F; and the exact cell target with target samples. Host
 * code every backend runs (FR_GOLDEN_SHARED): float64. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/env_ctl.h"
#include "flowrl/gfn_box.h"
#include "flowrl/philox.h"

enum { BN = 10, BK0 = 3, BK = 2, BW = 5 * BK0 > 1 + 3 * BK ? 5 * BK0 : 1 + 3 * BK, BG = 10, BS = 6 };

static const fr_box_opts k_box = {0.25, 0.1, 0.5, 2.0, 1e-10};
static const fr_box_policy k_pol = {BK0, BK, 0.1, 5.1};

static fr_status step_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    const int64_t s2[2] = {BN, 2}, n1[1] = {BN}, w[2] = {BN, BW}, b[2] = {BN, 3 * BK};
    float *st;
    FR_TRY(fr_gi_uniform(g, "states_f32", 2, s2, 0.02f, 0.98f, &st));
    st[0] = st[1] = 0.0f;                /* row 0: s0 */
    st[2] = 0.85f, st[3] = 0.9f;         /* row 1: the exit is forced */
    st[4] = 0.3f, st[5] = 0.9f;          /* row 2: the top edge restricts the angles */
    FR_TRY(fr_st_set_meta(g->f, "derived.in.states_f32",
                          "drawn, then row 0 set to s0 (0, 0), row 1 to (0.85, 0.9) (forced exit), row 2 to (0.3, 0.9)"));
    FR_TRY(fr_gi_uniform(g, "u_f32", 2, s2, 0.05f, 0.95f, NULL));
    const int32_t ex[BN] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    FR_TRY(fr_gi_tensor(g, "is_exit", FR_I32, 1, n1, ex, "rows 1 (forced) and 5 exit"));
    FR_TRY(fr_gi_normal(g, "pf_out_f32", 2, w, 1.5f, NULL));
    FR_TRY(fr_gi_normal(g, "pb_out_f32", 2, b, 1.5f, NULL));
    FR_TRY(fr_gi_param(g, "k0", BK0));
    FR_TRY(fr_gi_param(g, "k", BK));
    FR_TRY(fr_gi_param(g, "draw_seed", 5));
    FR_TRY(fr_gi_scalar_f64(g, "delta", k_box.delta));
    return fr_gi_note(g, "policy", "concentrations [0.1, 5.1]; R0 0.1, R1 0.5, R2 2, exit epsilon 1e-10");
}

/* The action of row i: s0: radius u0·δ at angle u1·π/2; else δ at angle min + (max − min)·u0 of
 * the allowed range (fr_box_angles), with flowrl's sin / cos (fr_ctl_sincos). */
static fr_status step_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    (void)d;
    const int64_t s2[2] = {BN, 2}, n1[1] = {BN}, w[2] = {BN, BW}, b[2] = {BN, 3 * BK};
    const float *st32, *u32, *pf32, *pb32;
    const int32_t *ex;
    double delta;
    FR_TRY(fr_go_exact(in, "states_f32", FR_F32, 2, s2, (const void **)&st32));
    FR_TRY(fr_go_exact(in, "u_f32", FR_F32, 2, s2, (const void **)&u32));
    FR_TRY(fr_go_exact(in, "is_exit", FR_I32, 1, n1, (const void **)&ex));
    FR_TRY(fr_go_exact(in, "pf_out_f32", FR_F32, 2, w, (const void **)&pf32));
    FR_TRY(fr_go_exact(in, "pb_out_f32", FR_F32, 2, b, (const void **)&pb32));
    FR_TRY(fr_go_scalar_f64(in, "delta", &delta));
    fr_box_opts bo = k_box;
    bo.delta = delta;
    double *act, *nxt, *lpf, *lpb, *gpf, *gpb, *rew, *dr, *forced;
    int32_t *dex;
    FR_TRY(fr_go_out(out, "actions", FR_F64, 2, s2, (void **)&act));
    FR_TRY(fr_go_out(out, "next_states", FR_F64, 2, s2, (void **)&nxt));
    FR_TRY(fr_go_out(out, "logpf", FR_F64, 1, n1, (void **)&lpf));
    FR_TRY(fr_go_out(out, "logpb", FR_F64, 1, n1, (void **)&lpb));
    FR_TRY(fr_go_out(out, "grad_pf_out", FR_F64, 2, w, (void **)&gpf));
    FR_TRY(fr_go_out(out, "grad_pb_out", FR_F64, 2, b, (void **)&gpb));
    FR_TRY(fr_go_out(out, "reward", FR_F64, 1, n1, (void **)&rew));
    FR_TRY(fr_go_out(out, "forced_exit", FR_F64, 1, n1, (void **)&forced));
    FR_TRY(fr_go_out(out, "draw_actions", FR_F64, 2, s2, (void **)&dr));
    FR_TRY(fr_go_out(out, "draw_exit", FR_I32, 1, n1, (void **)&dex));
    for (int i = 0; i < BN; i++) {
        const double s[2] = {(double)st32[2 * i], (double)st32[2 * i + 1]};
        double pf[BW], pb[3 * BK];
        for (int k = 0; k < BW; k++) pf[k] = (double)pf32[i * BW + k];
        for (int k = 0; k < 3 * BK; k++) pb[k] = (double)pb32[i * 3 * BK + k];
        double *a = act + 2 * i;
        const double pi2 = 1.57079632679489661923;
        if (ex[i]) {
            a[0] = a[1] = -INFINITY;
        } else if (s[0] == 0.0 && s[1] == 0.0) {
            double sn, cs;
            fr_ctl_sincos(pi2 * u32[2 * i + 1], &sn, &cs);
            a[0] = delta * u32[2 * i] * cs;
            a[1] = delta * u32[2 * i] * sn;
        } else {
            double amin, amax, sn, cs;
            fr_box_angles(delta, 1, s, &amin, &amax);
            fr_ctl_sincos(pi2 * (amin + (amax - amin) * u32[2 * i]), &sn, &cs);
            a[0] = delta * cs;
            a[1] = delta * sn;
        }
        rew[i] = (double)fr_box_reward(&bo, s);
        forced[i] = fr_box_must_exit(&bo, s);
        FR_TRY(fr_box_log_pf(&bo, &k_pol, s, a, ex[i], pf, 1.0, gpf + i * BW, &lpf[i]));
        nxt[2 * i] = ex[i] ? s[0] : s[0] + a[0];
        nxt[2 * i + 1] = ex[i] ? s[1] : s[1] + a[1];
        lpb[i] = 0.0; /* P_B of an exit edge is 1 */
        if (!ex[i]) FR_TRY(fr_box_log_pb(&bo, &k_pol, nxt + 2 * i, a, pb, 1.0, gpb + i * 3 * BK, &lpb[i]));
        int e;
        FR_TRY(fr_box_sample_pf(&bo, &k_pol, s, pf, 5, FR_RNG_BOX_ACTION, 0, (uint32_t)i, 1, dr + 2 * i, &e));
        dex[i] = e;
    }
    return FR_OK;
}

static fr_status target_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    FR_TRY(fr_gi_param(g, "bins", BG));
    FR_TRY(fr_gi_param(g, "sample_seed", 3));
    return fr_gi_scalar_f64(g, "delta", k_box.delta);
}

static fr_status target_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    (void)d;
    (void)in;
    const int64_t g2[1] = {BG * BG}, s2[2] = {BS, 2};
    double *p, *x;
    FR_TRY(fr_go_out(out, "cells", FR_F64, 1, g2, (void **)&p));
    FR_TRY(fr_go_out(out, "samples", FR_F64, 2, s2, (void **)&x));
    fr_box_target_cells(&k_box, BG, p);
    for (int i = 0; i < BS; i++) fr_box_target_sample(&k_box, 3, (uint32_t)i, x + 2 * i);
    return fr_go_out_scalar_f64(out, "log_z", fr_box_log_z(&k_box));
}

#define T_SHARED {0.0f, 0.0f}

const fr_golden_case fr_golden_cases_gfn_box[] = {
    {"box.step", "Box (delta 0.25): 10 rows (s0, a forced exit, the top edge, an exit, steps): actions, next states, "
                 "log P_F, log P_B and their gradients in the raw outputs (K0 3, K 2), rewards, draws of P_F "
                 "(docs/algorithms/gfn-box.md §2)",
     FR_GOLDEN_SHARED, 0, T_SHARED, step_in, step_run},
    {"box.target", "Box: the exact R/Z of the 10 x 10 cells, 6 target samples at seed 3, log Z = log 0.305 "
                   "(docs/envs.md §8)",
     FR_GOLDEN_SHARED, 0, T_SHARED, target_in, target_run},
};
const size_t fr_golden_n_gfn_box = sizeof fr_golden_cases_gfn_box / sizeof fr_golden_cases_gfn_box[0];
