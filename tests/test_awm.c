/* AWM, Advantage Weighted Matching (core/awm.c, core/awm_time.c, flowrl/awm.h;
 * docs/algorithms/awm.md): the on-policy reductions (zero advantages give a zero gradient;
 * ρ ≡ 1 and ∇ = −Ã·∇ℓ bit for bit; Uniform with Ã = 1 is pretraining's flow-matching
 * gradient bit for bit), every weighting's gradient against finite differences in double,
 * the ghuber weight, sum_first vs exp_first, the time strata, the noise coordinates, the
 * EMA decay, and a numeric check against tests/awm_ref.py (numpy, float64). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "flowrl/awm.h"
#include "flowrl/fm_loss.h"
#include "flowrl/philox.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/schedule.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* The reference backend (the loops of ref/ref_flow.c). */
#define REF fr_test_ref_be()

enum { MK = 3, MB = 4, MD = 13, MR = MK * MB };

/* A micro-batch of random inputs (Philox FR_RNG_TEST, coordinates (seed, draw, 0)). */
typedef struct {
    float t[MR], x0[MB * MD], eps[MR * MD], v[MR * MD], v_ref[MR * MD], v_ema[MR * MD], adv[MB];
} batch;

static void make_batch(batch *m, uint32_t seed)
{
    fr_rng_fill_normal(m->x0, MB * MD, seed, FR_RNG_TEST, 0, 0, 0);
    fr_rng_fill_normal(m->eps, MR * MD, seed, FR_RNG_TEST, 1, 0, 0);
    fr_rng_fill_normal(m->v, MR * MD, seed, FR_RNG_TEST, 2, 0, 0);
    /* v near the target, so m is O(0.1) and every weighting is well away from its kinks */
    for (int r = 0; r < MR; r++)
        for (int i = 0; i < MD; i++) {
            int j = r * MD + i;
            m->v[j] = (m->eps[j] - m->x0[(r % MB) * MD + i]) + 0.3f * m->v[j];
        }
    fr_rng_fill_normal(m->v_ref, MR * MD, seed, FR_RNG_TEST, 3, 0, 0);
    fr_rng_fill_normal(m->v_ema, MR * MD, seed, FR_RNG_TEST, 4, 0, 0);
    for (int j = 0; j < MR * MD; j++) {
        m->v_ref[j] = m->v[j] + 0.1f * m->v_ref[j];
        m->v_ema[j] = m->v[j] + 0.05f * m->v_ema[j];
    }
    for (int r = 0; r < MR; r++) m->t[r] = 0.1f + 0.8f * fr_rng_uniform(seed, FR_RNG_TEST, 5, 0, 0, (uint32_t)(r / MB));
    for (int b = 0; b < MB; b++) m->adv[b] = 4.0f * fr_rng_normal(seed, FR_RNG_TEST, 6, 0, 0, (uint32_t)b);
}

static fr_awm_params no_kl(fr_awm_weighting w)
{
    fr_awm_params p = fr_awm_defaults();
    p.weighting = w;
    p.beta = 0.0;
    p.ema_beta = 0.0;
    return p;
}

static const fr_awm_weighting k_all_w[] = {FR_AWM_W_UNIFORM, FR_AWM_W_GHUBER, FR_AWM_W_T, FR_AWM_W_T2,
                                           FR_AWM_W_HUBER};

/* ---- on-policy reductions -------------------------------------------------------------- */

START_TEST(test_zero_advantage_zero_gradient)
{
    batch m;
    make_batch(&m, 11);
    memset(m.adv, 0, sizeof m.adv);
    double old[MR];
    for (int wi = 0; wi < 5; wi++)
        for (int mode = 0; mode < 2; mode++)
            for (int off = 0; off < 2; off++) {
                fr_awm_params p = no_kl(k_all_w[wi]);
                p.ratio_mode = (fr_awm_ratio_mode)mode;
                ck_assert_int_eq(fr_awm_logprob(REF, &p, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, old, NULL), FR_OK);
                for (int r = 0; r < MR; r++) old[r] += 0.05 * (r % 3) - 0.04; /* ratios off 1 */
                float g[MR * MD];
                fr_awm_stats st;
                ck_assert_int_eq(fr_awm_loss(REF, &p, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, off ? old : NULL,
                                             m.adv, 1.0, g, NULL, NULL, &st),
                                 FR_OK);
                for (int j = 0; j < MR * MD; j++)
                    ck_assert_msg(g[j] == 0.0f, "w %d mode %d off %d: grad[%d] = %g", wi, mode, off, j, (double)g[j]);
                ck_assert(st.policy_loss == 0.0);
            }
}
END_TEST

/* Weighting Uniform, Ã = 1 (A = 5 before the /5), β = 0, EMA-KL off: pretraining's
 * flow-matching gradient (fr_fm_loss with its 2/n scale, on targets formed as pretraining
 * forms them) on the same noised samples, bit for bit. */
START_TEST(test_uniform_equals_pretraining)
{
    enum { K = 3, B = 5, D = 37, R = K * B };
    static float x0[B * D], eps[R * D], xt[R * D], v[R * D], tg[R * D], g_awm[R * D], g_pre[R * D];
    float t[R], adv[B];
    uint32_t ids[B];
    fr_rng_fill_normal(x0, B * D, 5, FR_RNG_TEST, 10, 0, 0);
    for (int b = 0; b < B; b++) {
        ids[b] = (uint32_t)(40 + 3 * b);
        adv[b] = 5.0f;
    }
    fr_awm_time_cfg tc = fr_awm_time_defaults();
    tc.K = K;
    tc.type = FR_AWM_TIME_UNIFORM;
    ck_assert_int_eq(fr_awm_times(&tc, 5, 2, 1, B, 14, NULL, NULL, t), FR_OK);
    ck_assert_int_eq(fr_awm_noise(REF, 5, 2, ids, K, B, D, x0, t, eps, xt), FR_OK);
    /* a stand-in model output: v = x_t·0.5 + drawn noise */
    fr_rng_fill_normal(v, R * D, 5, FR_RNG_TEST, 11, 0, 0);
    for (int j = 0; j < R * D; j++) v[j] = xt[j] * 0.5f + v[j];
    for (int r = 0; r < R; r++)
        for (int i = 0; i < D; i++) tg[r * D + i] = fr_flow_target_elem(x0[(r % B) * D + i], eps[r * D + i]);
    float loss_pre;
    ck_assert_int_eq(fr_fm_loss(REF, R, D, v, tg, NULL, &loss_pre, g_pre), FR_OK);
    fr_awm_params p = no_kl(FR_AWM_W_UNIFORM);
    for (int mode = 0; mode < 2; mode++) {
        p.ratio_mode = (fr_awm_ratio_mode)mode;
        fr_awm_stats st;
        ck_assert_int_eq(
            fr_awm_loss(REF, &p, K, B, D, t, x0, eps, v, NULL, NULL, NULL, adv, 1.0, g_awm, NULL, NULL, &st), FR_OK);
        for (int j = 0; j < R * D; j++)
            ck_assert_msg(fr_test_bits_equal(g_awm[j], g_pre[j]), "mode %d elem %d: awm %a, pretrain %a", mode, j,
                          (double)g_awm[j], (double)g_pre[j]);
        ck_assert(st.policy_loss == -1.0); /* mean of −Ã·1 */
    }
    /* the pretraining loss is the mean of the float64 m's, to float32 accuracy */
    double m[R], sum = 0.0;
    ck_assert_int_eq(fr_awm_logprob(REF, &p, K, B, D, t, x0, eps, v, m, NULL, NULL), FR_OK);
    for (int r = 0; r < R; r++) sum += m[r];
    ck_assert_double_eq_tol(sum / R, (double)loss_pre, 1e-6 * fabs(sum / R));
}
END_TEST

/* On-policy: every ratio is exactly 1 and the gradient is exactly −Ã·∇ℓ, i.e. the row
 * coefficient (Ã·w·gout)·2/(R·D) times (v − v*) with no trace of the PPO form; passing
 * ℓ_old = ℓ_θ explicitly gives the same bits. */
START_TEST(test_on_policy_exact)
{
    batch m;
    make_batch(&m, 12);
    const double gout = 1.0 / 3.0;
    for (int wi = 0; wi < 5; wi++)
        for (int mode = 0; mode < 2; mode++) {
            fr_awm_params p = no_kl(k_all_w[wi]);
            p.ratio_mode = (fr_awm_ratio_mode)mode;
            float g[MR * MD], g2[MR * MD];
            double lp[MR], w[MR], ratio[MR];
            fr_awm_stats st, st2;
            ck_assert_int_eq(fr_awm_loss(REF, &p, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, NULL, m.adv, gout, g,
                                         lp, ratio, &st),
                             FR_OK);
            int n_ratio = mode == 0 ? MR : MB;
            for (int i = 0; i < n_ratio; i++) ck_assert(ratio[i] == 1.0);
            ck_assert(st.ratio_min == 1.0 && st.ratio_max == 1.0 && st.clipfrac == 0.0);
            ck_assert_int_eq(fr_awm_logprob(REF, &p, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, w), FR_OK);
            for (int r = 0; r < MR; r++) {
                double a = fr_awm_adv_elem(m.adv[r % MB], 5.0, 1.0);
                float c = (float)((a * w[r] * gout) * (2.0 / (double)(MR * MD)));
                for (int i = 0; i < MD; i++) {
                    int j = r * MD + i;
                    float want = fr_mse_grad_elem(m.v[j], fr_flow_target_elem(m.x0[(r % MB) * MD + i], m.eps[j]), c);
                    ck_assert_msg(fr_test_bits_equal(g[j], want), "w %d mode %d elem %d: %a vs %a", wi, mode, j,
                                  (double)g[j], (double)want);
                }
            }
            ck_assert_int_eq(fr_awm_loss(REF, &p, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, lp, m.adv, gout, g2,
                                         NULL, NULL, &st2),
                             FR_OK);
            ck_assert(memcmp(g, g2, sizeof g) == 0);
            ck_assert(st.loss == st2.loss);
        }
}
END_TEST

/* exp_first and sum_first: on-policy both reduce to −Ã·∇ℓ (the same bits); with K = 1 they
 * are the same objective off-policy too; with K > 1 off-policy they differ. */
START_TEST(test_sum_first_vs_exp_first)
{
    batch m;
    make_batch(&m, 13);
    fr_awm_params pe = no_kl(FR_AWM_W_GHUBER), ps = pe;
    pe.clip_range = 0.01;
    ps.clip_range = 0.01;
    ps.ratio_mode = FR_AWM_RATIO_SUM_FIRST;
    float ge[MR * MD], gs[MR * MD];
    fr_awm_stats se, ss;
    ck_assert_int_eq(fr_awm_loss(REF, &pe, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, NULL, m.adv, 1.0, ge, NULL, NULL, &se), FR_OK);
    ck_assert_int_eq(fr_awm_loss(REF, &ps, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, NULL, m.adv, 1.0, gs, NULL, NULL, &ss), FR_OK);
    ck_assert(memcmp(ge, gs, sizeof ge) == 0);
    /* the same value, mean_r −Ã over K·B rows vs mean_b −Ã over B: different roundings */
    ck_assert_double_eq_tol(se.loss, ss.loss, 1e-15);
    /* off-policy, K = 1: identical; the first MB rows of the batch */
    double old[MR];
    ck_assert_int_eq(fr_awm_logprob(REF, &pe, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, old, NULL), FR_OK);
    for (int r = 0; r < MR; r++) old[r] += 0.004 * (r % 5) - 0.008;
    ck_assert_int_eq(fr_awm_loss(REF, &pe, 1, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, old, m.adv, 1.0, ge, NULL, NULL, &se), FR_OK);
    ck_assert_int_eq(fr_awm_loss(REF, &ps, 1, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, old, m.adv, 1.0, gs, NULL, NULL, &ss), FR_OK);
    ck_assert(memcmp(ge, gs, (size_t)MB * MD * sizeof(float)) == 0);
    ck_assert(se.loss == ss.loss && se.clipfrac == ss.clipfrac);
    /* off-policy, K = 3: one ratio per sample against one per row */
    double re[MR], rs[MB];
    ck_assert_int_eq(fr_awm_loss(REF, &pe, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, old, m.adv, 1.0, ge, NULL, re, &se), FR_OK);
    ck_assert_int_eq(fr_awm_loss(REF, &ps, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, old, m.adv, 1.0, gs, NULL, rs, &ss), FR_OK);
    for (int b = 0; b < MB; b++) {
        double mo = 0.0;
        for (int k = 0; k < MK; k++) mo += old[k * MB + b];
        double ln = 0.0;
        for (int k = 0; k < MK; k++) ln += log(re[k * MB + b]); /* = ℓ − ℓ_old per row */
        ck_assert_double_eq_tol(log(rs[b]), ln / MK, 1e-12);
    }
    ck_assert(se.loss != ss.loss);
}
END_TEST

/* ---- gradients against finite differences ------------------------------------------------- */

static double loss_at(const fr_awm_params *p, batch *m, const double *old)
{
    fr_awm_stats st;
    ck_assert_int_eq(fr_awm_loss(REF, p, MK, MB, MD, m->t, m->x0, m->eps, m->v, m->v_ref, m->v_ema, old, m->adv, 1.0,
                                 NULL, NULL, NULL, &st),
                     FR_OK);
    return st.loss;
}

/* Central differences in float64 of the float64 loss, step h = 2^-11 in float32 (exact
 * v ± h for |v| < 8); the error is O(h²·L''') ~ 1e-6 relative, far above the loss's float64
 * noise (~1e-15/h) and below the tolerance. The gradient itself is float32 (~1e-7). */
START_TEST(test_gradient_finite_differences)
{
    batch m;
    make_batch(&m, 14);
    double old[MR];
    for (int wi = 0; wi < 5; wi++)
        for (int mode = 0; mode < 2; mode++)
            for (int kl = 0; kl < 2; kl++) {
                fr_awm_params p = fr_awm_defaults();
                p.weighting = k_all_w[wi];
                p.ratio_mode = (fr_awm_ratio_mode)mode;
                p.clip_range = 0.2;
                p.beta = kl ? 0.3 : 0.0;
                p.ema_beta = kl ? 0.7 : 0.0;
                p.kl_weight = FR_AWM_KL_ELBO;
                ck_assert_int_eq(fr_awm_logprob(REF, &p, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, old, NULL), FR_OK);
                /* off-policy ratios inside the band: the PPO form is smooth there */
                for (int r = 0; r < MR; r++) old[r] += 0.01 * (r % 4) - 0.015;
                float g[MR * MD];
                fr_awm_stats st;
                ck_assert_int_eq(fr_awm_loss(REF, &p, MK, MB, MD, m.t, m.x0, m.eps, m.v, m.v_ref, m.v_ema, old, m.adv,
                                             1.0, g, NULL, NULL, &st),
                                 FR_OK);
                ck_assert(st.clipfrac == 0.0);
                double gmax = 0.0;
                for (int j = 0; j < MR * MD; j++) gmax = fmax(gmax, fabs((double)g[j]));
                ck_assert(gmax > 1e-4);
                for (int j = 0; j < MR * MD; j++) {
                    const float h = 0x1p-11f, v0 = m.v[j];
                    m.v[j] = v0 + h;
                    double lp = loss_at(&p, &m, old);
                    m.v[j] = v0 - h;
                    double lm = loss_at(&p, &m, old);
                    m.v[j] = v0;
                    double fd = (lp - lm) / ((double)(v0 + h) - (double)(v0 - h));
                    ck_assert_msg(fabs(fd - (double)g[j]) <= 1e-5 * fabs(fd) + 2e-5 * gmax,
                                  "weighting %s mode %d kl %d elem %d: grad %.9g, fd %.9g",
                                  fr_awm_weighting_name(p.weighting), mode, kl, j, (double)g[j], fd);
                }
            }
}
END_TEST

/* ghuber: w = −dℓ/dm is exactly t·(m + 1e-10)^(p−1) (the §9 "Check"), close to libm's pow,
 * and each row's gradient is w times the Uniform row's. */
START_TEST(test_ghuber_weight)
{
    batch m;
    make_batch(&m, 15);
    double mm[MR], w[MR], lp[MR];
    const double pw[] = {0.25, 0.5, 1.0};
    for (int k = 0; k < 3; k++) {
        fr_awm_params p = no_kl(FR_AWM_W_GHUBER);
        p.ghuber_power = pw[k];
        ck_assert_int_eq(fr_awm_logprob(REF, &p, MK, MB, MD, m.t, m.x0, m.eps, m.v, mm, lp, w), FR_OK);
        for (int r = 0; r < MR; r++) {
            ck_assert(w[r] == (double)m.t[r] * fr_awm_pow(mm[r] + 1e-10, pw[k] - 1.0));
            double want = (double)m.t[r] * pow(mm[r] + 1e-10, pw[k] - 1.0);
            ck_assert_double_eq_tol(w[r], want, 1e-13 * want);
            double lwant = -(pow(mm[r] + 1e-10, pw[k]) - pow(1e-10, pw[k])) * (double)m.t[r] / pw[k];
            ck_assert_double_eq_tol(lp[r], lwant, 1e-13 * fabs(lwant));
        }
    }
    /* p = 1: the t weighting up to the 1e-10 offset */
    fr_awm_params pg = no_kl(FR_AWM_W_GHUBER), pu = no_kl(FR_AWM_W_UNIFORM);
    float gg[MR * MD], gu[MR * MD];
    fr_awm_stats st;
    ck_assert_int_eq(fr_awm_logprob(REF, &pg, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, w), FR_OK);
    ck_assert_int_eq(fr_awm_loss(REF, &pg, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, NULL, m.adv, 1.0, gg, NULL, NULL, &st), FR_OK);
    ck_assert_int_eq(fr_awm_loss(REF, &pu, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, NULL, NULL, m.adv, 1.0, gu, NULL, NULL, &st), FR_OK);
    for (int j = 0; j < MR * MD; j++)
        ck_assert_double_eq_tol((double)gg[j], w[j / MD] * (double)gu[j], 3e-7 * fabs((double)gg[j]) + 1e-30);
}
END_TEST

/* flowrl's float64 exp / log / pow / Φ⁻¹ against libm, and exp(0) = 1 exactly. */
START_TEST(test_float64_functions)
{
    ck_assert(fr_awm_exp(0.0) == 1.0);
    ck_assert(fr_awm_log(1.0) == 0.0);
    double we = 0.0, wl = 0.0, wp = 0.0, wn = 0.0;
    for (int i = 0; i < 20000; i++) {
        double x = -700.0 + 1400.0 * i / 20000.0 + 1e-7 * i;
        we = fmax(we, fabs(fr_awm_exp(x) - exp(x)) / exp(x));
        double y = exp(-40.0 + 80.0 * i / 20000.0) * (1.0 + 1e-9 * i);
        if (fabs(log(y)) > 0.1) wl = fmax(wl, fabs(fr_awm_log(y) - log(y)) / fabs(log(y)));
        wp = fmax(wp, fabs(fr_awm_pow(y + 1e-10, -0.75) - pow(y + 1e-10, -0.75)) / pow(y + 1e-10, -0.75));
        double q = (i + 0.5) / 20000.0, z = fr_awm_ndtri(q);
        wn = fmax(wn, fabs(0.5 * erfc(-z / sqrt(2.0)) - q) / q);
    }
    ck_assert_msg(we <= 2.5e-16 && wl <= 5e-16 && wp <= 1e-14 && wn <= 1e-13, "exp %g log %g pow %g ndtri %g", we,
                  wl, wp, wn);
    ck_assert_double_eq_tol(fr_awm_ndtri(1e-12), -7.034483825301132, 1e-12);
    ck_assert(fr_awm_ndtri(0.5) == 0.0);
}
END_TEST

/* ---- time selection ---------------------------------------------------------------------- */

START_TEST(test_strata)
{
    fr_awm_time_cfg c = fr_awm_time_defaults();
    int64_t lo[8], hi[8];
    ck_assert_int_eq(fr_awm_strata(&c, 14, lo, hi), FR_OK);
    const int64_t want[7] = {1, 2, 4, 6, 8, 10, 12};
    for (int k = 0; k < 6; k++) {
        ck_assert_int_eq(lo[k], want[k]);
        ck_assert_int_eq(hi[k], want[k + 1]);
    }
    c.type = FR_AWM_TIME_DISCRETE; /* linspace(0, 12, 7) = 0, 2, ..., 12 */
    ck_assert_int_eq(fr_awm_strata(&c, 14, lo, hi), FR_OK);
    for (int k = 0; k < 6; k++) ck_assert(lo[k] == 2 * k && hi[k] == 2 * k + 2);
    c.type = FR_AWM_TIME_DISCRETE_WITH_INIT; /* 0, then linspace(1, 12, 6) = 1, 3.2, 5.4, 7.6, 9.8, 12 */
    ck_assert_int_eq(fr_awm_strata(&c, 14, lo, hi), FR_OK);
    const int64_t wi[7] = {0, 1, 3, 5, 7, 9, 12};
    ck_assert(lo[0] == 0 && hi[0] == 0);
    for (int k = 1; k < 6; k++) ck_assert(lo[k] == wi[k] && hi[k] == wi[k + 1]);
    c.type = FR_AWM_TIME_DISCRETE_WO_INIT;
    c.fraction = 0.05; /* M = 0 < 1 */
    ck_assert_int_eq(fr_awm_strata(&c, 14, lo, hi), FR_ERR_ARG);
    c.type = FR_AWM_TIME_UNIFORM;
    ck_assert_int_eq(fr_awm_strata(&c, 14, lo, hi), FR_ERR_ARG);
}
END_TEST

START_TEST(test_times_discrete)
{
    float sig[15];
    ck_assert_int_eq(fr_sigmas_diffusers(14, 3.0, sig), FR_OK);
    fr_awm_time_cfg c = fr_awm_time_defaults();
    int64_t lo[6], hi[6], idx[6];
    ck_assert_int_eq(fr_awm_strata(&c, 14, lo, hi), FR_OK);
    int hit[14] = {0};
    float t[6 * 3];
    for (uint32_t e = 0; e < 50; e++)
        for (uint32_t mb = 0; mb < 4; mb++) {
            ck_assert_int_eq(fr_awm_times(&c, 9, e, mb, 3, 14, sig, idx, t), FR_OK);
            for (int k = 0; k < 6; k++) {
                ck_assert_msg(idx[k] >= lo[k] && idx[k] < hi[k], "stratum %d: idx %lld", k, (long long)idx[k]);
                hit[idx[k]]++;
                float tk = (sig[idx[k]] * 1000.0f) / 1000.0f;
                for (int b = 0; b < 3; b++) ck_assert(fr_test_bits_equal(t[k * 3 + b], tk)); /* shared by the batch */
            }
        }
    ck_assert_int_eq(hit[0], 0); /* wo_init: never t = 1 */
    for (int j = 1; j < 12; j++) ck_assert_msg(hit[j] > 0, "index %d never drawn", j);
    ck_assert_int_eq(hit[12] + hit[13], 0);
    /* a different micro-batch index draws different times somewhere */
    int64_t i2[6];
    int differ = 0;
    for (uint32_t mb = 1; mb < 8 && !differ; mb++) {
        ck_assert_int_eq(fr_awm_times(&c, 9, 0, 0, 3, 14, sig, idx, t), FR_OK);
        ck_assert_int_eq(fr_awm_times(&c, 9, 0, mb, 3, 14, sig, i2, t), FR_OK);
        differ = memcmp(idx, i2, sizeof idx) != 0;
    }
    ck_assert(differ);
    ck_assert_int_eq(fr_awm_times(&c, 9, 0, 0, 3, 14, NULL, idx, t), FR_ERR_ARG);
}
END_TEST

/* uniform: per column b one value in each stratum [0.2 + 0.8k/K, 0.2 + 0.8(k+1)/K] (after the
 * shift), in a per-sample order; logit_normal: shared, >= 0.01, one value per quantile
 * stratum. */
START_TEST(test_times_continuous)
{
    enum { K = 6, B = 5 };
    fr_awm_time_cfg c = fr_awm_time_defaults();
    c.type = FR_AWM_TIME_UNIFORM;
    float t[K * B];
    ck_assert_int_eq(fr_awm_times(&c, 3, 1, 2, B, 14, NULL, NULL, t), FR_OK);
    int st[K][B];
    for (int b = 0; b < B; b++) {
        int seen[K] = {0};
        for (int k = 0; k < K; k++) {
            double u = t[k * B + b] / (3.0 - 2.0 * t[k * B + b]); /* the shift's inverse */
            st[k][b] = (int)floor((u - 0.2) / 0.8 * K);
            ck_assert_msg(st[k][b] >= 0 && st[k][b] < K, "b %d k %d: t %g", b, k, (double)t[k * B + b]);
            seen[st[k][b]]++;
        }
        for (int k = 0; k < K; k++) ck_assert_int_eq(seen[k], 1);
    }
    int orders_differ = 0;
    for (int b = 1; b < B; b++)
        for (int k = 0; k < K; k++) orders_differ |= st[k][b] != st[k][0];
    ck_assert(orders_differ);
    c.type = FR_AWM_TIME_LOGIT_NORMAL;
    ck_assert_int_eq(fr_awm_times(&c, 3, 1, 2, B, 14, NULL, NULL, t), FR_OK);
    int seen_ln[K] = {0};
    for (int k = 0; k < K; k++) {
        ck_assert(t[k * B] >= 0.01f);
        for (int b = 1; b < B; b++) ck_assert(fr_test_bits_equal(t[k * B + b], t[k * B]));
        double s = t[k * B] / (3.0 - 2.0 * t[k * B]); /* unshift, then logit, then Φ */
        double z = log(s / (1.0 - s)), q = 0.5 * erfc(-z / sqrt(2.0));
        int sk = (int)floor(q * K);
        ck_assert(sk >= 0 && sk < K);
        seen_ln[sk]++;
    }
    for (int k = 0; k < K; k++) ck_assert_int_eq(seen_ln[k], 1);
}
END_TEST

/* ε of (sample id, k) does not depend on the batch it is computed in; x_t is the
 * rectified-flow line. */
START_TEST(test_noise)
{
    enum { K = 2, B = 3, D = 7 };
    float x0[B * D], t[K * B] = {0.9f, 0.9f, 0.9f, 0.25f, 0.25f, 0.25f}, eps[K * B * D], xt[K * B * D];
    uint32_t ids[B] = {7, 2, 30};
    fr_rng_fill_normal(x0, B * D, 1, FR_RNG_TEST, 20, 0, 0);
    ck_assert_int_eq(fr_awm_noise(REF, 4, 6, ids, K, B, D, x0, t, eps, xt), FR_OK);
    for (int k = 0; k < K; k++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < D; i++) {
                int j = (k * B + b) * D + i;
                ck_assert(fr_test_bits_equal(eps[j], fr_rng_normal(4, FR_RNG_AWM_NOISE, 6, ids[b], (uint32_t)k, (uint32_t)i)));
                ck_assert(fr_test_bits_equal(xt[j], (1.0f - t[k * B + b]) * x0[b * D + i] + t[k * B + b] * eps[j]));
            }
    /* sample 30 alone, as batch row 0 */
    float e1[K * D], x1[K * D], t1[K] = {0.9f, 0.25f};
    ck_assert_int_eq(fr_awm_noise(REF, 4, 6, ids + 2, K, 1, D, x0 + 2 * D, t1, e1, x1), FR_OK);
    for (int k = 0; k < K; k++) ck_assert(memcmp(e1 + k * D, eps + (k * B + 2) * D, D * sizeof(float)) == 0);
}
END_TEST

/* ---- EMA ----------------------------------------------------------------------------------- */

START_TEST(test_ema_decay)
{
    ck_assert(fr_awm_ema_decay(FR_AWM_DECAY_LINEAR, 0.3, 0) == 0.0);
    ck_assert(fr_awm_ema_decay(FR_AWM_DECAY_LINEAR, 0.3, 100) == 0.001 * 100.0);
    ck_assert(fr_awm_ema_decay(FR_AWM_DECAY_LINEAR, 0.3, 299) == 0.001 * 299.0);
    ck_assert(fr_awm_ema_decay(FR_AWM_DECAY_LINEAR, 0.3, 301) == 0.3);
    ck_assert(fr_awm_ema_decay(FR_AWM_DECAY_LINEAR, 0.3, 100000) == 0.3);
    ck_assert(fr_awm_ema_decay(FR_AWM_DECAY_CONSTANT, 0.3, 5) == 0.3);
    float th[5] = {1.0f, -2.0f, 0.5f, 3.0f, 1e-3f}, e[5] = {0.25f, 4.0f, -1.0f, 3.0f, 7.0f}, e0[5];
    memcpy(e0, e, sizeof e);
    ck_assert_int_eq(fr_awm_ema_update(REF, 5, 0.0, th, e), FR_OK); /* d = 0 (step 0): a copy */
    ck_assert(memcmp(e, th, sizeof e) == 0);
    memcpy(e, e0, sizeof e);
    ck_assert_int_eq(fr_awm_ema_update(REF, 5, 0.1, th, e), FR_OK);
    for (int i = 0; i < 5; i++) ck_assert(fr_test_bits_equal(e[i], e0[i] * 0.1f + th[i] * 0.9f));
    ck_assert_int_eq(fr_awm_ema_update(REF, 5, 1.5, th, e), FR_ERR_ARG);
}
END_TEST

/* ---- options ------------------------------------------------------------------------------- */

START_TEST(test_params)
{
    fr_awm_params p = fr_awm_defaults();
    ck_assert_int_eq(fr_awm_params_check(&p), FR_OK);
    ck_assert_str_eq(fr_awm_weighting_name(p.weighting), "ghuber");
    fr_awm_weighting w;
    ck_assert_int_eq(fr_awm_weighting_parse("t**2", &w), FR_OK);
    ck_assert_int_eq(w, FR_AWM_W_T2);
    ck_assert_int_eq(fr_awm_weighting_parse("t^2", &w), FR_ERR_ARG);
    fr_awm_time_type tt;
    ck_assert_int_eq(fr_awm_time_parse("logit_normal", &tt), FR_OK);
    ck_assert_int_eq(tt, FR_AWM_TIME_LOGIT_NORMAL);
    fr_awm_ratio_mode rm;
    ck_assert_int_eq(fr_awm_ratio_parse("sum_first", &rm), FR_OK);
    fr_awm_kl_weight kw;
    ck_assert_int_eq(fr_awm_kl_weight_parse("ELBO", &kw), FR_OK);
    p.ghuber_power = 0.0;
    ck_assert_int_eq(fr_awm_params_check(&p), FR_ERR_ARG);
    p = fr_awm_defaults();
    p.adv_clip_max = 0.0;
    ck_assert_int_eq(fr_awm_params_check(&p), FR_ERR_ARG);
    /* β > 0 needs v_ref */
    batch m;
    make_batch(&m, 16);
    fr_awm_stats st;
    p = fr_awm_defaults();
    ck_assert_int_eq(fr_awm_loss(REF, &p, MK, MB, MD, m.t, m.x0, m.eps, m.v, NULL, m.v_ema, NULL, m.adv, 1.0, NULL, NULL, NULL, &st), FR_ERR_ARG);
}
END_TEST

/* ---- the numpy reference ---------------------------------------------------------------- */

/* tests/awm_ref.py's output (`python3 tests/awm_ref.py --c`, pasted), 9 cases × (loss,
 * policy_loss, kl, ema_kl, ℓ (R), grad (R·D)); test_numpy_script_matches reruns the script. */
static const double k_numpy_ref[] = {
    -3.49999999999999978e-01, -3.49999999999999978e-01, 0.00000000000000000e+00,
    0.00000000000000000e+00, -3.07291666666666685e-01, -3.04687500000000000e+00,
    -1.77604166666666674e+00, -1.19791666666666674e+00, 2.08333333333333322e-02,
    6.25000000000000000e-02, 1.45833333333333343e-01, 2.49999999999999979e-02,
    8.12500000000000028e-02, 1.25000000000000000e-01, -1.25000000000000000e-01,
    -8.33333333333333287e-02, 3.54166666666666685e-01, 6.87499999999999917e-02,
    1.87499999999999993e-02, 6.25000000000000000e-02, -3.49999999999999978e-01,
    -3.49999999999999978e-01, 0.00000000000000000e+00, 0.00000000000000000e+00,
    -2.22413142260404140e+00, -3.95406839553566414e+00, -1.72688437219062285e+00,
    -1.56452744547350675e+00, 3.78579365230114276e-02, 1.13573809569034290e-01,
    2.65005555661080028e-01, 8.13036969925350246e-03, 2.64237015225738843e-02,
    4.06518484962675175e-02, -3.04685241392969319e-02, -2.03123494261979558e-02,
    8.63274850613413025e-02, 2.25156254089048068e-02, 6.14062511151949268e-03,
    2.04687503717316428e-02, -3.49999999999999978e-01, -3.49999999999999978e-01,
    0.00000000000000000e+00, 0.00000000000000000e+00, -2.30468750000000000e-01,
    -2.28515625000000000e+00, -6.66015625000000000e-01, -4.49218750000000000e-01,
    1.56250000000000000e-02, 4.68750000000000000e-02, 1.09375000000000000e-01,
    1.87499999999999993e-02, 6.09374999999999986e-02, 9.37500000000000000e-02,
    -4.68750000000000000e-02, -3.12500000000000000e-02, 1.32812500000000000e-01,
    2.57812499999999951e-02, 7.03124999999999931e-03, 2.34375000000000000e-02,
    -3.49999999999999978e-01, -3.49999999999999978e-01, 0.00000000000000000e+00,
    0.00000000000000000e+00, -1.72851562500000000e-01, -1.71386718750000000e+00,
    -2.49755859375000000e-01, -1.68457031250000000e-01, 1.17187500000000000e-02,
    3.51562500000000000e-02, 8.20312500000000000e-02, 1.40624999999999986e-02,
    4.57031249999999903e-02, 7.03124999999999861e-02, -1.75781250000000000e-02,
    -1.17187500000000000e-02, 4.98046875000000000e-02, 9.66796874999999861e-03,
    2.63671874999999974e-03, 8.78906249999999827e-03, -3.49999999999999978e-01,
    -3.49999999999999978e-01, 0.00000000000000000e+00, 0.00000000000000000e+00,
    -4.15746709306712869e-01, -1.30914000412482157e+00, -4.99752049755302963e-01,
    -4.10431423034746778e-01, 1.40933630227598836e-02, 4.22800890682796526e-02,
    9.86535411593191941e-02, 5.37086155520760927e-03, 1.74553000544247286e-02,
    2.68543077760380437e-02, -1.75867143599002067e-02, -1.17244762399334717e-02,
    4.98290240197172551e-02, 1.17777049643617224e-02, 3.21210135391683353e-03,
    1.07070045130561124e-02, -3.18562255094486491e-01, -3.18562255094486491e-01,
    0.00000000000000000e+00, 0.00000000000000000e+00, -2.22413142260404140e+00,
    -3.95406839553566414e+00, -1.72688437219062285e+00, -1.56452744547350675e+00,
    3.71082991539871607e-02, 1.11324897461961489e-01, 2.59758094077910118e-01,
    1.09748511473864007e-02, 3.56682662290057975e-02, 5.48742557369319983e-02,
    -3.03468934662600061e-02, -2.02312623108400064e-02, 8.59828648210700236e-02,
    0.00000000000000000e+00, 0.00000000000000000e+00, 0.00000000000000000e+00,
    -3.45535856430965294e-01, -3.45535856430965294e-01, 0.00000000000000000e+00,
    0.00000000000000000e+00, -2.22413142260404140e+00, -3.95406839553566414e+00,
    -1.72688437219062285e+00, -1.56452744547350675e+00, 3.74063561857101504e-02,
    1.12219068557130444e-01, 2.61844493299971004e-01, 0.00000000000000000e+00,
    0.00000000000000000e+00, 0.00000000000000000e+00, -3.01050868346901986e-02,
    -2.00700578897934669e-02, 8.52977460316222263e-02, 0.00000000000000000e+00,
    0.00000000000000000e+00, 0.00000000000000000e+00, 4.72576822916666750e-01,
    -3.49999999999999978e-01, 1.18880208333333348e+00, 8.19010416666666741e-01,
    -3.07291666666666685e-01, -3.04687500000000000e+00, -1.77604166666666674e+00,
    -1.19791666666666674e+00, 6.29374999999999934e-02, 2.49937500000000007e-01,
    1.24437500000000020e-01, 1.49999999999999994e-01, -2.58333333333332638e-03,
    -1.67666666666666631e-01, 8.39583333333333154e-02, -8.32083333333333286e-02,
    5.00687499999999952e-01, 5.37499999999999090e-03, 1.01770833333333324e-01,
    2.91916666666666658e-01, 5.42583548718186814e-02, -3.49999999999999978e-01,
    1.22280686040385422e+00, 8.01179868581214150e-01, -2.22413142260404140e+00,
    -3.95406839553566414e+00, -1.72688437219062285e+00, -1.56452744547350675e+00,
    4.50929148798995469e-02, 1.45440310715876486e-01, 2.61271144697240609e-01,
    2.93888761347719726e-02, 1.20812958474107550e-02, -9.29146928957721302e-03,
    1.47748596186633718e-01, -2.00997643920119567e-02, 2.11504639357864732e-01,
    -3.21187283768973875e-02, 7.64708405880547420e-02, 2.15763535110604310e-01,
};

enum { NK = 2, NB = 2, ND = 3, NR = NK * NB, N_PER_CASE = 4 + NR + NR * ND, N_CASES = 9 };

static float val(int i, int a, int s) { return (float)(((i * i + i * a + s) % 17 - 8) / 8.0); }

/* The cases of awm_ref.py's CASES, in order. */
static void numpy_case(int c, double *out)
{
    float x0[NB * ND], eps[NR * ND], v[NR * ND], vr[NR * ND], ve[NR * ND];
    for (int b = 0; b < NB; b++)
        for (int i = 0; i < ND; i++) x0[b * ND + i] = val(b * ND + i, 5, 1);
    for (int j = 0; j < NR * ND; j++) {
        eps[j] = val(j, 7, 3);
        v[j] = val(j, 3, 11);
        vr[j] = val(j, 11, 4);
        ve[j] = val(j, 13, 9);
    }
    float t[NR] = {0.75f, 0.75f, 0.375f, 0.375f}, adv[NB] = {7.0f, -1.5f};
    const double off[NR] = {0.02, -0.3, 0.004, 0.5};
    static const fr_awm_weighting cw[N_CASES] = {FR_AWM_W_UNIFORM, FR_AWM_W_GHUBER, FR_AWM_W_T,
                                                 FR_AWM_W_T2,      FR_AWM_W_HUBER,  FR_AWM_W_GHUBER,
                                                 FR_AWM_W_GHUBER,  FR_AWM_W_UNIFORM, FR_AWM_W_GHUBER};
    fr_awm_params p = no_kl(cw[c]);
    p.clip_range = c == 5 || c == 6 ? 0.01 : 1.0;
    if (c == 6) p.ratio_mode = FR_AWM_RATIO_SUM_FIRST;
    if (c == 7) {
        p.beta = 0.003;
        p.ema_beta = 1.0;
    }
    if (c == 8) {
        p.beta = 0.003;
        p.ema_beta = 0.5;
        p.kl_weight = p.kl_ema_weight = FR_AWM_KL_ELBO;
    }
    double old[NR], lp[NR];
    ck_assert_int_eq(fr_awm_logprob(REF, &p, NK, NB, ND, t, x0, eps, v, NULL, old, NULL), FR_OK);
    for (int r = 0; r < NR; r++) old[r] += off[r];
    float g[NR * ND];
    fr_awm_stats st;
    ck_assert_int_eq(fr_awm_loss(REF, &p, NK, NB, ND, t, x0, eps, v, vr, ve, c == 5 || c == 6 ? old : NULL, adv, 1.0, g,
                                 lp, NULL, &st),
                     FR_OK);
    out[0] = st.loss;
    out[1] = st.policy_loss;
    out[2] = st.kl;
    out[3] = st.ema_kl;
    for (int r = 0; r < NR; r++) out[4 + r] = lp[r];
    for (int j = 0; j < NR * ND; j++) out[4 + NR + j] = g[j];
}

START_TEST(test_numpy_reference)
{
    ck_assert_int_eq((int)(sizeof k_numpy_ref / sizeof k_numpy_ref[0]), N_CASES * N_PER_CASE);
    for (int c = 0; c < N_CASES; c++) {
        double got[N_PER_CASE];
        const double *want = k_numpy_ref + c * N_PER_CASE;
        numpy_case(c, got);
        double gmax = 0.0;
        for (int j = 4 + NR; j < N_PER_CASE; j++) gmax = fmax(gmax, fabs(want[j]));
        for (int j = 0; j < N_PER_CASE; j++) {
            /* float64 values: flowrl's pow is within ~20 ulp of libm's; float32 gradients:
             * the difference and product roundings (exact here: dyadic inputs) plus the
             * row coefficient's and the KL sum's roundings, a few float32 ulp */
            double tol = j < 4 + NR ? 1e-13 * fabs(want[j]) + 1e-15 : 4.0 * 0x1p-24 * fabs(want[j]) + 1e-7 * gmax;
            ck_assert_msg(fabs(got[j] - want[j]) <= tol && got[j] == got[j], "case %d value %d: flowrl %.17g, numpy %.17g",
                          c, j, got[j], want[j]);
        }
    }
}
END_TEST

/* The embedded list is the script's current output (run when a python3 with numpy exists), to
 * within numpy's own spread across CPUs: its pow / exp dispatch to SIMD code by CPU (an AMD EPYC
 * gives 1 ulp more than the Intel machine the list was written on in value 27), so a float64 value
 * may move by a few ulp and a float32 gradient by one float32 ulp. */
START_TEST(test_numpy_script_matches)
{
    const char *py = NULL;
    static const char *const cands[] = {"python3", "/usr/bin/python3"};
    for (int i = 0; i < 2 && !py; i++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) py = cands[i];
    }
    if (!py) {
        printf("awm: numpy not found for python3 or /usr/bin/python3: tests/awm_ref.py NOT rerun\n");
        return;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s/tests/awm_ref.py", py, fr_test_src());
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    int n = 0;
    double x;
    while (fscanf(f, "%lf", &x) == 1) {
        ck_assert_msg(n < N_CASES * N_PER_CASE, "the script printed more than %d values", N_CASES * N_PER_CASE);
        const double want = k_numpy_ref[n];
        const double tol = n % N_PER_CASE < 4 + NR ? 16.0 * 0x1p-53 * fabs(want) : 0x1p-24 * fabs(want);
        ck_assert_msg(fabs(x - want) <= tol, "value %d: script %.17g, embedded %.17g", n, x, want);
        n++;
    }
    int st = pclose(f);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(n, N_CASES * N_PER_CASE);
}
END_TEST

Suite *suite_awm(void)
{
    Suite *s = suite_create("awm");
    TCase *tc = tcase_create("awm");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_zero_advantage_zero_gradient);
    tcase_add_test(tc, test_uniform_equals_pretraining);
    tcase_add_test(tc, test_on_policy_exact);
    tcase_add_test(tc, test_sum_first_vs_exp_first);
    tcase_add_test(tc, test_gradient_finite_differences);
    tcase_add_test(tc, test_ghuber_weight);
    tcase_add_test(tc, test_float64_functions);
    tcase_add_test(tc, test_strata);
    tcase_add_test(tc, test_times_discrete);
    tcase_add_test(tc, test_times_continuous);
    tcase_add_test(tc, test_noise);
    tcase_add_test(tc, test_ema_decay);
    tcase_add_test(tc, test_params);
    tcase_add_test(tc, test_numpy_reference);
    tcase_add_test(tc, test_numpy_script_matches);
    suite_add_tcase(s, tc);
    return s;
}
