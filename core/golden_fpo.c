/* Golden cases of FPO's clipped surrogate of the CFM-loss ratio (flowrl/fpo.h; spec objectives.md
 * §12; docs/algorithms/fpo.md): M = 6 actions of S = 4 Monte-Carlo pairs, the pairs' CFM losses at
 * rollout and now and the actions' raw advantages, to the normalised advantages' ratios, the
 * surrogate's loss, approx-KL, clip fraction and dL/dℓ_new per pair. Host float64 code every
 * backend runs (FR_GOLDEN_SHARED); the losses themselves come from the flow policy's network
 * (fr_flow_policy_cfm, tests/test_ctl.c). Cases: averaged (one ratio per action), per pair (one
 * ratio per pair, the difference clipped to ±3, two pairs exactly at a bound), and on-policy
 * (ℓ_new = ℓ_old: every ratio exactly 1, the §12 check). */
#include "core/golden_internal.h"
#include "flowrl/fpo.h"

enum { FM = 6, FS = 4, FMS = FM * FS };

/* arg: 0 averaged, 1 per pair, 2 averaged at the rollout's losses */
static fr_status fpo_in(const fr_golden_case *c, fr_golden_in *g)
{
    const int64_t ms[2] = {FM, FS}, m1[1] = {FM};
    FR_TRY(fr_gi_scalar_f64(g, "clip", 0.05));
    FR_TRY(fr_gi_param(g, "average", c->arg != 1));
    float *lo, *dl, *adv;
    FR_TRY(fr_gi_uniform(g, "l_old_f32", 2, ms, 0.0f, 2.0f, &lo));
    /* averaged: a few percent apart (ratios on both sides of 1 ± 0.05); per pair: up to ±4 */
    FR_TRY(fr_gi_normal(g, "dl", 2, ms, c->arg == 1 ? 2.0f : 0.05f, &dl));
    FR_TRY(fr_gi_normal(g, "adv", 1, m1, 1.0f, &adv));
    double l_old[FMS], l_new[FMS], a[FM];
    for (int k = 0; k < FMS; k++) {
        l_old[k] = (double)lo[k];
        l_new[k] = c->arg == 2 ? l_old[k] : l_old[k] - (double)dl[k];
    }
    if (c->arg == 1) { /* two differences exactly at the bounds: half the gradient passes */
        l_new[1] = l_old[1] - 3.0;
        l_new[6] = l_old[6] + 3.0;
    }
    for (int i = 0; i < FM; i++) a[i] = 3.0 * (double)adv[i] + 0.5; /* raw GAE values, not centred */
    FR_TRY(fr_gi_tensor(g, "l_old", FR_F64, 2, ms, l_old, "in.l_old_f32 as float64"));
    FR_TRY(fr_gi_tensor(g, "l_new", FR_F64, 2, ms, l_new,
                        c->arg == 2 ? "in.l_old (on-policy)"
                        : c->arg == 1 ? "in.l_old - in.dl, float64; then l_new[1] = l_old[1] - 3, l_new[6] = l_old[6] + 3"
                                      : "in.l_old - in.dl, float64"));
    return fr_gi_tensor(g, "adv_raw", FR_F64, 1, m1, a, "3 in.adv + 0.5, float64");
}

static fr_status fpo_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)d;
    double clip;
    long long avg;
    const int64_t ms[2] = {FM, FS}, m1[1] = {FM};
    const double *lo, *ln, *adv;
    FR_TRY(fr_go_scalar_f64(in, "clip", &clip));
    FR_TRY(fr_go_param(in, "average", 0, 1, &avg));
    FR_TRY(fr_go_exact(in, "l_old", FR_F64, 2, ms, (const void **)&lo));
    FR_TRY(fr_go_exact(in, "l_new", FR_F64, 2, ms, (const void **)&ln));
    FR_TRY(fr_go_exact(in, "adv_raw", FR_F64, 1, m1, (const void **)&adv));
    const int64_t nr[1] = {avg ? FM : FMS};
    double *ratio, *gl, work[4 * FMS + FM];
    FR_TRY(fr_go_out(out, "ratio", FR_F64, 1, nr, (void **)&ratio));
    FR_TRY(fr_go_out(out, "grad_l_new", FR_F64, 2, ms, (void **)&gl));
    fr_ctl_ppo_stats st;
    if (fr_fpo_surrogate(FM, FS, lo, ln, adv, clip, (int)avg, work, ratio, gl, &st) != nr[0])
        return fr_fail(FR_ERR_FORMAT, "golden %s: the surrogate's ratio count", c->name);
    FR_TRY(fr_go_out_scalar_f64(out, "loss", st.loss));
    FR_TRY(fr_go_out_scalar_f64(out, "approx_kl", st.approx_kl));
    return fr_go_out_scalar_f64(out, "clipfrac", st.clipfrac);
}

#define T_SHARED {0.0f, 0.0f}

const fr_golden_case fr_golden_cases_fpo[] = {
    {"fpo.surrogate_avg", "FPO M 6 actions x S 4 pairs, averaged: exp(mean old CFM loss - mean new), clip 0.05: ratios, "
                          "loss, approx-KL, clip fraction, dL/dl_new per pair (objectives.md §12)",
     FR_GOLDEN_SHARED, 0, T_SHARED, fpo_in, fpo_run},
    {"fpo.surrogate_pair", "FPO per pair: exp(clip(old - new, +-3)), two differences at a bound (half gradient): ratios, "
                           "loss, approx-KL, clip fraction, dL/dl_new (objectives.md §12)",
     FR_GOLDEN_SHARED, 1, T_SHARED, fpo_in, fpo_run},
    {"fpo.on_policy", "FPO averaged at the rollout's losses: every ratio exactly 1, dL/dl_new = -A_norm/(M S) (§12 check)",
     FR_GOLDEN_SHARED, 2, T_SHARED, fpo_in, fpo_run},
};
const size_t fr_golden_n_fpo = sizeof fr_golden_cases_fpo / sizeof fr_golden_cases_fpo[0];
