/* DGPO, Direct Group Preference Optimization (core/dgpo.c, core/algo/dgpo*.c, flowrl/dgpo.h;
 * docs/algorithms/dgpo.md): the check identity of spec §10 (at θ = ref every group weight is
 * exactly 0.5, in the objective and in a whole run's audit records, against the base and
 * against the EMA reference), the group sums against a direct float64 evaluation, the
 * gradient against its closed form, the PPO-style sample clip (dsm and KL), the times drawn
 * without replacement, the group-shared noise, the EMA decay, switch_ema_ref, and runs that
 * learn gmm2d's halfplane reward. The generic run properties are tests/test_algos.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/dgpo.h"
#include "flowrl/dgpo.h"
#include "flowrl/philox.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define REF fr_test_ref_be()

enum { MK = 3, MB = 8, MD = 11, MR = MK * MB };

/* A micro-batch of random inputs: two groups of 4 samples (ids 7 and 3), then near-target
 * model outputs v, and v_ref, v_old near v. */
typedef struct {
    float x0[MB * MD], eps[MR * MD], v[MR * MD], v_ref[MR * MD], v_old[MR * MD], adv[MB];
    int64_t group[MB];
} batch;

static void make_batch(batch *m, uint32_t seed)
{
    fr_rng_fill_normal(m->x0, MB * MD, seed, FR_RNG_TEST, 0, 0, 0);
    fr_rng_fill_normal(m->eps, MR * MD, seed, FR_RNG_TEST, 1, 0, 0);
    fr_rng_fill_normal(m->v, MR * MD, seed, FR_RNG_TEST, 2, 0, 0);
    fr_rng_fill_normal(m->v_ref, MR * MD, seed, FR_RNG_TEST, 3, 0, 0);
    fr_rng_fill_normal(m->v_old, MR * MD, seed, FR_RNG_TEST, 4, 0, 0);
    fr_rng_fill_normal(m->adv, MB, seed, FR_RNG_TEST, 5, 0, 0);
    for (int r = 0; r < MR; r++)
        for (int i = 0; i < MD; i++) {
            int j = r * MD + i;
            m->v[j] = (m->eps[j] - m->x0[(r % MB) * MD + i]) + 0.3f * m->v[j];
            m->v_ref[j] = m->v[j] + 0.05f * m->v_ref[j];
            m->v_old[j] = m->v[j] + 0.05f * m->v_old[j];
        }
    m->adv[1] = 6.5f; /* beyond the clamp at 5 */
    for (int i = 0; i < MB; i++) m->group[i] = i < 4 ? 7 : 3;
}

static double sqerr_row(const batch *m, const float *v, int r)
{
    double s = 0.0;
    for (int i = 0; i < MD; i++) {
        double d = (double)v[r * MD + i] - ((double)m->eps[r * MD + i] - (double)m->x0[(r % MB) * MD + i]);
        s += d * d;
    }
    return s / MD;
}

static double clampd(double x, double c) { return x < -c ? -c : (x > c ? c : x); }

/* §10 "Check": at θ = ref every w_g is exactly 0.5, whatever the advantages and groups; the
 * gradient is then the advantage-weighted flow-matching gradient with weight ½ (§22) plus the
 * KL's (nothing at v = v_ref). The same with use_ema_ref (d_ref of the EMA reference, v_old = v;
 * the KL to the base v_ref ≠ v stays). */
START_TEST(test_dgpo_w_half_at_ref)
{
    for (int ema = 0; ema <= 1; ema++) {
        batch m;
        make_batch(&m, 3 + (uint32_t)ema);
        memcpy(ema ? m.v_old : m.v_ref, m.v, sizeof m.v);
        fr_dgpo_params p = fr_dgpo_defaults();
        p.group_size = 4;
        p.use_ema_ref = ema;
        p.clip_dsm = 0; /* v_old = v_ref ≠ v (ema 0) would clip some rows */
        const double gout = 0.5;
        float grad[MR * MD];
        double d[MR], w[MR];
        fr_dgpo_stats st;
        ck_assert_int_eq(fr_dgpo_loss(REF, &p, MK, MB, MD, m.x0, m.eps, m.v, m.v_ref, m.v_old, m.group, m.adv, gout, grad, d,
                                      w, NULL, &st),
                         FR_OK);
        for (int r = 0; r < MR; r++) ck_assert_msg(w[r] == 0.5, "ema_ref %d: w[%d] = %.17g, want 0.5 exactly", ema, r, w[r]);
        ck_assert(st.w_min == 0.5 && st.w_max == 0.5);
        if (!ema) ck_assert(st.kl == 0.0);
        for (int r = 0; r < MR; r++) {
            const double a = clampd(m.adv[r % MB], 5.0);
            ck_assert_msg(fabs(d[r] - sqerr_row(&m, m.v, r)) <= 1e-12 * (1.0 + d[r]), "d[%d]", r);
            for (int i = 0; i < MD; i++) {
                const int j = r * MD + i;
                const double target = (double)m.eps[j] - (double)m.x0[(r % MB) * MD + i];
                const double want = 0.5 * a * gout * 2.0 * ((double)m.v[j] - target) / (double)(MR * MD) +
                                    gout * p.beta * 2.0 * ((double)m.v[j] - (double)m.v_ref[j]) / (double)(MR * MD);
                /* float32 rounding of ε − x0 and of the difference: ~1 ulp of the operands */
                const double tol = 1e-6 * gout / (double)(MR * MD) * (fabs((double)m.v[j]) + fabs(target) + 1.0) * (fabs(a) + 1.0);
                ck_assert_msg(fabs(grad[j] - want) <= tol, "ema_ref %d: grad[%d] %g, want %g", ema, j,
                              (double)grad[j], want);
            }
        }
    }
}
END_TEST

/* Away from ref: S_g and w against a direct float64 evaluation of the code's formula. */
START_TEST(test_dgpo_group_weights)
{
    batch m;
    make_batch(&m, 9);
    fr_dgpo_params p = fr_dgpo_defaults();
    p.group_size = 4;
    p.beta_dpo = 100.0;
    double w[MR], d[MR];
    fr_dgpo_stats st;
    ck_assert_int_eq(fr_dgpo_loss(REF, &p, MK, MB, MD, m.x0, m.eps, m.v, m.v_ref, m.v_old, m.group, m.adv, 1.0, NULL, d, w,
                                  NULL, &st),
                     FR_OK);
    double lsum = 0.0;
    for (int k = 0; k < MK; k++) {
        double S[2] = {0.0, 0.0};
        for (int i = 0; i < MB; i++) {
            const int r = k * MB + i;
            S[i >= 4] += clampd(m.adv[i], 5.0) * 100.0 * (sqerr_row(&m, m.v, r) - sqerr_row(&m, m.v_ref, r)) / 4.0;
        }
        ck_assert_msg(fabs(S[0]) > 1e-3 && fabs(S[1]) > 1e-3, "the case should move the weights off 0.5");
        for (int i = 0; i < MB; i++) {
            const int r = k * MB + i;
            const double want = 1.0 / (1.0 + exp(-S[i >= 4]));
            ck_assert_msg(fabs(w[r] - want) <= 1e-9, "k %d i %d: w %.17g, want %.17g", k, i, w[r], want);
            ck_assert(w[r] == w[k * MB + (i >= 4 ? 4 : 0)]); /* one weight per group */
            lsum += w[r] * clampd(m.adv[i], 5.0) * d[r] / (double)(MB * MK);
        }
    }
    ck_assert_msg(fabs(st.dgpo_loss - lsum) <= 1e-9 * (1.0 + fabs(lsum)), "dgpo_loss %.17g, want %.17g", st.dgpo_loss, lsum);
}
END_TEST

/* The PPO-style clip: ρ = exp(d_old − d), clipped iff (Ã > 0 and ρ > 1 + c) or (Ã <= 0 and ρ
 * < 1 − c); clip_dsm removes the row's policy gradient, clip_kl its KL gradient. */
START_TEST(test_dgpo_clip)
{
    batch m;
    make_batch(&m, 5);
    fr_dgpo_params p = fr_dgpo_defaults();
    p.group_size = 4;
    p.clip_range = 1e-2;
    p.beta = 0.0;
    uint8_t clip[MR];
    float g_dsm[MR * MD], g_none[MR * MD], g_kl[MR * MD], g_kl0[MR * MD];
    fr_dgpo_stats st;
    int nclip = 0, nfree = 0;
    p.clip_dsm = 1;
    ck_assert_int_eq(fr_dgpo_loss(REF, &p, MK, MB, MD, m.x0, m.eps, m.v, m.v_ref, m.v_old, m.group, m.adv, 1.0, g_dsm, NULL,
                                  NULL, clip, &st),
                     FR_OK);
    p.clip_dsm = 0;
    ck_assert_int_eq(fr_dgpo_loss(REF, &p, MK, MB, MD, m.x0, m.eps, m.v, m.v_ref, m.v_old, m.group, m.adv, 1.0, g_none, NULL,
                                  NULL, NULL, &st),
                     FR_OK);
    for (int r = 0; r < MR; r++) {
        const double a = clampd(m.adv[r % MB], 5.0);
        const double rho = exp(sqerr_row(&m, m.v_old, r) - sqerr_row(&m, m.v, r));
        const int want = a > 0.0 ? rho > 1.01 : rho < 0.99;
        ck_assert_msg(clip[r] == want, "row %d: A %g, rho %.9g: clipped %d, want %d", r, a, rho, clip[r], want);
        for (int i = 0; i < MD; i++) {
            const int j = r * MD + i;
            if (want) ck_assert(g_dsm[j] == 0.0f);
            else ck_assert(fr_test_bits_equal(g_dsm[j], g_none[j]));
        }
        nclip += want;
        nfree += !want;
    }
    ck_assert_msg(nclip > 0 && nfree > 0, "the case should clip some rows and not others (%d clipped)", nclip);
    /* clip_kl: the KL gradient of a clipped row goes; clip_dsm off, so only the KL differs */
    p.beta = 0.02;
    p.clip_kl = 1;
    ck_assert_int_eq(fr_dgpo_loss(REF, &p, MK, MB, MD, m.x0, m.eps, m.v, m.v_ref, m.v_old, m.group, m.adv, 1.0, g_kl, NULL,
                                  NULL, NULL, &st),
                     FR_OK);
    p.clip_kl = 0;
    ck_assert_int_eq(fr_dgpo_loss(REF, &p, MK, MB, MD, m.x0, m.eps, m.v, m.v_ref, m.v_old, m.group, m.adv, 1.0, g_kl0, NULL,
                                  NULL, NULL, &st),
                     FR_OK);
    for (int r = 0; r < MR; r++)
        for (int i = 0; i < MD; i++) {
            const int j = r * MD + i;
            ck_assert(fr_test_bits_equal(g_kl[j], clip[r] ? g_none[j] : g_kl0[j]));
            if (!clip[r]) ck_assert(!fr_test_bits_equal(g_kl0[j], g_none[j]) || m.v[j] == m.v_ref[j]);
        }
}
END_TEST

/* M indices of 0..trunc without replacement: distinct, in range, every index reachable, a
 * full draw is a permutation, and the draw depends on (seed, epoch) only. */
START_TEST(test_dgpo_times)
{
    int seen[7] = {0};
    for (uint32_t e = 0; e < 200; e++) {
        int64_t idx[4], again[4];
        ck_assert_int_eq(fr_dgpo_times(42, e, 4, 6, idx), FR_OK);
        ck_assert_int_eq(fr_dgpo_times(42, e, 4, 6, again), FR_OK);
        ck_assert(memcmp(idx, again, sizeof idx) == 0);
        for (int i = 0; i < 4; i++) {
            ck_assert(idx[i] >= 0 && idx[i] <= 6);
            seen[idx[i]]++;
            for (int j = 0; j < i; j++) ck_assert(idx[i] != idx[j]);
        }
    }
    for (int j = 0; j <= 6; j++) ck_assert_msg(seen[j] > 60, "index %d drawn %d times of 800", j, seen[j]);
    int64_t all[7], sum = 0;
    ck_assert_int_eq(fr_dgpo_times(1, 2, 7, 6, all), FR_OK);
    for (int j = 0; j < 7; j++) sum += all[j];
    ck_assert_int_eq(sum, 21);
    ck_assert_int_ne(fr_dgpo_times(1, 2, 8, 6, all), FR_OK);
    ck_assert_int_ne(fr_dgpo_times(1, 2, 0, 6, all), FR_OK);
}
END_TEST

/* The noise: samples with equal ids share ε at every time, and ε is the Philox normal at
 * (epoch, id, batch·K + k); x_t = (1 − t)·x0 + t·ε. */
START_TEST(test_dgpo_shared_noise)
{
    enum { K = 2, B = 4, D = 6 };
    const uint32_t ids[B] = {5, 5, 9, 9};
    float x0[B * D], t[K * B], eps[K * B * D], xt[K * B * D];
    fr_rng_fill_normal(x0, B * D, 1, FR_RNG_TEST, 0, 0, 0);
    for (int r = 0; r < K * B; r++) t[r] = r < B ? 0.75f : 0.25f;
    ck_assert_int_eq(fr_dgpo_noise(REF, 7, 3, 2, ids, K, B, D, x0, t, eps, xt), FR_OK);
    for (int k = 0; k < K; k++)
        for (int i = 0; i < B; i++)
            for (int e = 0; e < D; e++) {
                const int r = k * B + i, j = r * D + e;
                ck_assert(fr_test_bits_equal(eps[j], fr_rng_normal(7, FR_RNG_DGPO_NOISE, 3, ids[i], 2 * K + (uint32_t)k,
                                                                   (uint32_t)e)));
                ck_assert(fr_test_bits_equal(eps[j], eps[(k * B + (i & ~1)) * D + e])); /* the group's first sample */
                ck_assert(fabsf(xt[j] - ((1.0f - t[r]) * x0[i * D + e] + t[r] * eps[j])) <= 1e-6f);
            }
    ck_assert(!fr_test_bits_equal(eps[0], eps[2 * D])); /* another group */
    ck_assert(!fr_test_bits_equal(eps[0], eps[B * D])); /* another time */
}
END_TEST

START_TEST(test_dgpo_ema_decay)
{
    ck_assert(fr_dgpo_ema_decay(0.3, 0) == 0.0); /* the first step copies the policy */
    ck_assert(fr_dgpo_ema_decay(0.3, 100) == 0.1);
    ck_assert(fr_dgpo_ema_decay(0.3, 300) == 0.3);
    ck_assert(fr_dgpo_ema_decay(0.3, 5000) == 0.3);
}
END_TEST

/* ---- whole runs ------------------------------------------------------------------------------ */

typedef struct {
    int n_w, bad;
    double first_bad;
} w_tap;

/* every b<q>.w record of audit step 1 (epoch 1, before the optimiser step) */
static fr_status tap_w(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    w_tap *c = user;
    size_t l = strlen(name);
    if (step != 1 || name[0] != 'b' || l < 2 || strcmp(name + l - 2, ".w") != 0) return FR_OK;
    ck_assert(t->dtype == FR_F64);
    const double *w = t->data;
    for (int64_t i = 0; i < fr_tensor_numel(t); i++, c->n_w++)
        if (w[i] != 0.5 && !c->bad++) c->first_bad = w[i];
    return FR_OK;
}

/* The check as a run: in epoch 1 both micro-batches come before the epoch's one optimiser
 * step, so θ = the base = the EMA reference and every recorded w is exactly 0.5, with d_ref
 * of the base and of the EMA reference, on ref and on cuda-emu. */
START_TEST(test_dgpo_run_w_half_at_ref)
{
    const char *bks[] = {"ref", "cuda-emu"};
    for (int ema = 0; ema <= 1; ema++)
        for (int b = 0; b < 2; b++) {
            char run[32];
            snprintf(run, sizeof run, "half%d%d", ema, b);
            fr_rt_opts o;
            fr_rt_opts_init(&o, &fr_algo_dgpo, run, 1);
            snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "halfplane");
            o.ro.c.grad_accum = 2;
            ((fr_dgpo_opts *)o.ao)->use_ema_ref = ema;
            fr_backend be;
            if (!fr_test_backend_try(&be, "dgpo", bks[b], 1)) continue;
            w_tap c = {0, 0, 0.0};
            fr_run_env env = {&be, NULL, tap_w, &c};
            fr_run_result res;
            ck_assert_msg(fr_run_new(&o.ro, o.ao, &env, &res) == FR_OK, "%s: %s", bks[b], fr_last_error());
            const int64_t R = ((fr_dgpo_opts *)o.ao)->num_train_timesteps * o.ro.c.prompts * o.ro.c.group;
            ck_assert_msg(c.n_w == R, "%s: %d weights recorded, want %lld", bks[b], c.n_w, (long long)R);
            ck_assert_msg(c.bad == 0, "%s, use_ema_ref %d: %d weights differ from 0.5 (first %.17g)", bks[b], ema, c.bad,
                          c.first_bad);
            fr_rt_opts_free(&o);
        }
}
END_TEST

/* FNV-1a of the "samples" record of each of audit steps 1..4, and the ema_rollout metric */
typedef struct {
    uint64_t h[5];
    double ema[5];
} samples_tap;

static fr_status tap_samples(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    samples_tap *c = user;
    if (step < 1 || step > 4 || strcmp(name, "samples") != 0) return FR_OK;
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = t->data;
    for (size_t i = 0; i < fr_tensor_nbytes(t); i++) h = (h ^ p[i]) * 1099511628211ull;
    c->h[step] = h;
    return FR_OK;
}

static int epoch_ema(const fr_run_epoch_event *ev, void *user)
{
    samples_tap *c = user;
    if (ev->epoch >= 1 && ev->epoch <= 4) c->ema[ev->epoch] = fr_run_event_get(ev, "ema_rollout");
    return 0;
}

/* switch_ema_ref: with two optimiser steps per epoch and switch_ema_ref 2, epochs 1 and 2 roll
 * out from the policy (0 and 2 steps done, not > 2) and epochs 3 and 4 from the EMA reference:
 * the samples equal those of a run that never switches through epoch 2, and differ from
 * epoch 3 on (the reference trails the policy: d = 0.001·step). */
START_TEST(test_dgpo_switch_ema_ref)
{
    samples_tap c[2];
    memset(c, 0, sizeof c);
    for (int v = 0; v < 2; v++) {
        char run[32];
        snprintf(run, sizeof run, "switch%d", v);
        fr_rt_opts o;
        fr_rt_opts_init(&o, &fr_algo_dgpo, run, 4);
        snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "halfplane");
        o.ro.c.grad_accum = 1;
        ((fr_dgpo_opts *)o.ao)->switch_ema_ref = v ? 1000000 : 2;
        fr_backend be = fr_test_backend("ref", 0, 1);
        fr_run_cb cb = {epoch_ema, NULL, NULL, &c[v], NULL};
        fr_run_env env = {&be, &cb, tap_samples, &c[v]};
        fr_run_result res;
        ck_assert_msg(fr_run_new(&o.ro, o.ao, &env, &res) == FR_OK, "%s", fr_last_error());
        fr_rt_opts_free(&o);
    }
    for (int e = 1; e <= 4; e++) {
        ck_assert_msg(c[0].ema[e] == (e >= 3), "epoch %d: ema_rollout %g", e, c[0].ema[e]);
        ck_assert(c[1].ema[e] == 0.0);
        ck_assert_msg((c[0].h[e] == c[1].h[e]) == (e < 3), "epoch %d: samples %s", e,
                      c[0].h[e] == c[1].h[e] ? "equal after the switch" : "differ before the switch");
    }
}
END_TEST

/* DGPO learns gmm2d's halfplane reward from a fresh tiny base on each of 3 seeds, in two
 * variants: d_ref of the base with β_dpo = 1, and d_ref of the EMA reference (the code's
 * use_ema_ref) with the default β_dpo = 100. (With the base and β_dpo = 100 the group weights
 * saturate within a few epochs here: on this 2-d task |d − d_ref| is O(0.1), so |S_g| is tens
 * and σ(S_g) near 0 stops the update; docs/algorithms/dgpo.md.) */
START_TEST(test_dgpo_learns_halfplane)
{
    for (int variant = 0; variant <= 1; variant++)
    for (uint32_t seed = 1; seed <= 3; seed++) {
        char run[32];
        snprintf(run, sizeof run, "learn%d%u", variant, seed);
        fr_rt_opts o;
        fr_rt_opts_init(&o, &fr_algo_dgpo, run, 20);
        snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "halfplane");
        o.ro.run.seed = seed;
        o.ro.c.prompts = 4;
        o.ro.c.group = 8;
        o.ro.smp.num_steps = 10;
        o.ro.c.num_batches = 2;
        o.ro.c.grad_accum = 2;
        fr_dgpo_opts *ao = o.ao;
        ao->num_train_timesteps = 4;
        ao->trunc_steps = 6;
        ao->switch_ema_ref = 10;
        ao->use_ema_ref = variant;
        ao->beta_dpo = variant ? 100.0 : 1.0;
        o.ro.opt.lr = 1e-2;
        fr_rt_curve c = {NAN, {NAN, NAN, NAN}, 0};
        fr_run_cb cb = {fr_rt_curve_record, NULL, NULL, &c, NULL};
        ck_assert_msg(fr_rt_run(&o, "opt", 2, &cb, NULL) == FR_OK, "variant %d seed %u: %s", variant, seed, fr_last_error());
        double last = fr_rt_curve_last3(&c);
        ck_assert_msg(last > c.first + 0.2, "variant %d seed %u: halfplane reward %g -> %g (mean of the last 3 epochs), expected > +0.2",
                      variant, seed, c.first, last);
        fr_rt_opts_free(&o);
    }
}
END_TEST

Suite *suite_dgpo(void)
{
    Suite *s = suite_create("dgpo");
    TCase *tc = tcase_create("dgpo");
    tcase_add_test(tc, test_dgpo_w_half_at_ref);
    tcase_add_test(tc, test_dgpo_group_weights);
    tcase_add_test(tc, test_dgpo_clip);
    tcase_add_test(tc, test_dgpo_times);
    tcase_add_test(tc, test_dgpo_shared_noise);
    tcase_add_test(tc, test_dgpo_ema_decay);
    suite_add_tcase(s, tc);
    TCase *run = tcase_create("dgpo_run");
    tcase_add_checked_fixture(run, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(run, 120);
    tcase_add_test(run, test_dgpo_run_w_half_at_ref);
    tcase_add_test(run, test_dgpo_switch_ema_ref);
    tcase_add_test(run, test_dgpo_learns_halfplane);
    suite_add_tcase(s, run);
    return s;
}
