/* Golden case of ReinFlow's chain (flowrl/reinflow.h, docs/algorithms/reinflow.md; spec
 * samplers.md §8, objectives.md §13): B = 3 chains of K = 3 steps of A = 2 dims, from the stored
 * chain x (B, K + 1, A) and the two networks' outputs at each step (velocity out, noise h; (B, K,
 * A)) to the transitions' means (clamped to ±1) and log σ under the noise range [0.1, 0.24], the
 * chains' normalised log-probs and entropies, and the gradient of Σ_b g_b·logp_b + g_ent·H_b with
 * respect to μ and log σ. Host float64 code that every backend shares (FR_GOLDEN_SHARED).
 *
 * The chain is formed as the rollout forms it: x_{k+1} = clamp(μ_k + σ_k·ξ, μ_k ± 3σ_k), x_K
 * clamped to [−1, 1], rounded to float; in.out is scaled so that some means leave [−1, 1]. */
#include <stddef.h>

#include "core/golden_internal.h"
#include "flowrl/awm_elem.h"
#include "flowrl/reinflow.h"

enum { RB = 3, RK = 3, RA = 2 };

static double rf_dt(int k) { return (1.0 - (double)(k + 1) / RK) - (1.0 - (double)k / RK); }

static fr_status rf_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    const int64_t sx[3] = {RB, RK + 1, RA}, sn[3] = {RB, RK, RA};
    const double lmin = 2.0 * fr_awm_log(0.1), lmax = 2.0 * fr_awm_log(0.24);
    FR_TRY(fr_gi_scalar_f64(g, "lv_min", lmin));
    FR_TRY(fr_gi_scalar_f64(g, "lv_max", lmax));
    FR_TRY(fr_gi_scalar_f64(g, "g_ent", -0.03 / RB));
    FR_TRY(fr_gi_note(g, "lv", "log sigma^2 of sigma_min 0.1 and sigma_max 0.24 (hopper-v2); g_ent = -ent_coef/B"));
    FR_TRY(fr_gi_param(g, "K", RK));
    float *out, *h, *xi, *x0, *gl;
    FR_TRY(fr_gi_normal(g, "out", 3, sn, 6.0f, &out));
    FR_TRY(fr_gi_normal(g, "h", 3, sn, 1.5f, &h));
    FR_TRY(fr_gi_normal(g, "xi", 3, sn, 1.0f, &xi));
    FR_TRY(fr_gi_normal(g, "x0", 2, (int64_t[]){RB, RA}, 1.0f, &x0));
    FR_TRY(fr_gi_normal(g, "g", 1, (int64_t[]){RB}, 0.1f, &gl));
    float x[RB * (RK + 1) * RA];
    for (int b = 0; b < RB; b++) {
        float *xb = x + b * (RK + 1) * RA;
        for (int d = 0; d < RA; d++) xb[d] = x0[b * RA + d];
        for (int k = 0; k < RK; k++) {
            double mu[RA], ls[RA], th[RA];
            uint8_t in[RA];
            const int64_t o = (b * RK + k) * RA;
            fr_reinflow_transition(RA, xb + k * RA, out + o, h + o, rf_dt(k), 0.25, 1.0, lmin, lmax, mu, ls, th, in);
            for (int d = 0; d < RA; d++) {
                const double sg = fr_awm_exp(ls[d]);
                double v = mu[d] + sg * (double)xi[o + d];
                v = v < mu[d] - 3.0 * sg ? mu[d] - 3.0 * sg : v > mu[d] + 3.0 * sg ? mu[d] + 3.0 * sg : v;
                if (k == RK - 1) v = v < -1.0 ? -1.0 : v > 1.0 ? 1.0 : v;
                xb[(k + 1) * RA + d] = (float)v;
            }
        }
    }
    return fr_gi_tensor(g, "x", FR_F32, 3, sx, x,
                        "x[:, 0] = in.x0; x[:, k+1] = clamp(mu_k + sigma_k in.xi[:, k], mu_k +- 3 sigma_k), the last "
                        "clamped to [-1, 1], float32 (the rollout's chain)");
}

static fr_status rf_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    (void)d;
    double lmin, lmax, gent;
    FR_TRY(fr_go_scalar_f64(in, "lv_min", &lmin));
    FR_TRY(fr_go_scalar_f64(in, "lv_max", &lmax));
    FR_TRY(fr_go_scalar_f64(in, "g_ent", &gent));
    const int64_t sx[3] = {RB, RK + 1, RA}, sn[3] = {RB, RK, RA}, sb[1] = {RB};
    const float *x, *vo, *h, *gl;
    FR_TRY(fr_go_exact(in, "x", FR_F32, 3, sx, (const void **)&x));
    FR_TRY(fr_go_exact(in, "out", FR_F32, 3, sn, (const void **)&vo));
    FR_TRY(fr_go_exact(in, "h", FR_F32, 3, sn, (const void **)&h));
    FR_TRY(fr_go_exact(in, "g", FR_F32, 1, sb, (const void **)&gl));
    double *mu, *ls, *lp, *ent, *dmu, *dls;
    FR_TRY(fr_go_out(out, "mu", FR_F64, 3, sn, (void **)&mu));
    FR_TRY(fr_go_out(out, "log_sigma", FR_F64, 3, sn, (void **)&ls));
    FR_TRY(fr_go_out(out, "logp", FR_F64, 1, sb, (void **)&lp));
    FR_TRY(fr_go_out(out, "entropy", FR_F64, 1, sb, (void **)&ent));
    FR_TRY(fr_go_out(out, "dmu", FR_F64, 3, sn, (void **)&dmu));
    FR_TRY(fr_go_out(out, "dlog_sigma", FR_F64, 3, sn, (void **)&dls));
    for (int b = 0; b < RB; b++) {
        const float *xb = x + b * (RK + 1) * RA;
        for (int k = 0; k < RK; k++) {
            const int64_t o = (b * RK + k) * RA;
            double th[RA];
            uint8_t inside[RA];
            fr_reinflow_transition(RA, xb + k * RA, vo + o, h + o, rf_dt(k), 0.25, 1.0, lmin, lmax, mu + o, ls + o, th,
                                   inside);
        }
        const int64_t o = b * RK * RA;
        fr_reinflow_chain_logp(RK, RA, xb, mu + o, ls + o, &lp[b], &ent[b]);
        fr_reinflow_chain_grad(RK, RA, xb, mu + o, ls + o, (double)gl[b], gent, dmu + o, dls + o);
    }
    return FR_OK;
}

#define T_SHARED {0.0f, 0.0f}

const fr_golden_case fr_golden_cases_reinflow[] = {
    {"reinflow.chain", "ReinFlow chain B 3 x K 3 x A 2: clamped means, bounded log sigma, normalised chain log-prob "
                       "and entropy, their gradient w.r.t. mu and log sigma (samplers.md §8, objectives.md §13)",
     FR_GOLDEN_SHARED, 0, T_SHARED, rf_in, rf_run},
};
const size_t fr_golden_n_reinflow = sizeof fr_golden_cases_reinflow / sizeof fr_golden_cases_reinflow[0];
