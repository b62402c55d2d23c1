/* The public PIS networks of the diffusion sampler (--pis-architectures; core/gfn_diffusion_pis.c,
 * docs/algorithms/gfn-diffusion.md §1, §6): the parameter count of the public model, the
 * gradient of every kind of the networks' tensors against central differences in float64 of the
 * float64 loss, and a short CLI run the same bytes on ref, opt at 1 and 3 threads and cuda-emu. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/gfn_diffusion.h"
#include "flowrl/safetensors.h"
#include "tests/gfn_diffusion_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* GFNOrg/gfn-diffusion@255b499 energy_sampling/models/architectures.py at train.py's defaults
 * (hidden_dim = s_emb_dim = t_emb_dim = harmonics_dim = 64, joint_layers 2, lgv_layers 3,
 * langevin_scaling_per_dimension off), the README's TB + Expl. + LP on 25GMM (D = 2), counted
 * by hand from the modules' definitions:
 *   TimeEncodingPIS   φ 64 + Linear(128, 64) 8,256 + Linear(64, 64) 4,160            = 12,480
 *   StateEncodingPIS  Linear(2, 64)                                                  =    192
 *   JointPolicyPIS    2 × Linear(64, 64) 8,320 + Linear(64, 2·2) 260                 =  8,580
 *   LangevinScalingModelPIS  φ 64 + Linear(128, 64) 8,256 + 2 × Linear(64, 64) 8,320
 *                            + Linear(64, 1) 65                                      = 16,705
 *   flow_model (log Z, tb)                                                           =      1
 * total 37,958 (sum(p.numel() for p in GFN(...).parameters())). */
START_TEST(test_parameter_count)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    fr_env e = target(&fr_env_gmm25);
    fr_gfnd_opts o = fr_gfnd_opts_default();
    o.batch = 2;
    o.langevin = 1;
    o.pis_architectures = 1;
    const int64_t want[2] = {37958, 37958 - 16705}; /* with and without --langevin */
    for (int lgv = 1; lgv >= 0; lgv--) {
        o.langevin = lgv;
        fr_gfnd_trainer *t;
        ck_assert_msg(fr_gfnd_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
        uint64_t dg;
        int64_t n;
        ck_assert_int_eq(fr_gfnd_trainer_digest(t, &dg, &n), FR_OK);
        ck_assert_msg(n == want[1 - lgv], "langevin %d: %lld parameters, the public model %lld", lgv, (long long)n,
                      (long long)want[1 - lgv]);
        fr_param *ps;
        int np;
        const int nt = fr_gfnd_trainer_params(t, &ps, &np);
        ck_assert_int_eq(nt - np, 1); /* log Z alone in the second group */
        ck_assert_str_eq(ps[nt - 1].name, "log_z");
        fr_gfnd_trainer_free(t);
    }
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* More tensors than the trainer's list holds is refused (it overflowed the list before: the
 * default networks at --n-hidden 14 with NN2(t) and a flow network need 93 of 65), for the default
 * and the PIS networks alike; the largest PIS model that fits is built. */
START_TEST(test_too_many_tensors)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    fr_env e = target(&fr_env_gmm25);
    fr_gfnd_opts o = tiny_opts(FR_GFND_DB);
    o.batch = 2;
    o.steps = 2;
    o.hidden = 4;
    o.langevin = o.langevin_time_scale = 1;
    o.n_hidden = 14;
    fr_gfnd_trainer *t = NULL;
    ck_assert_int_eq(fr_gfnd_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_ptr_null(t);
    o.n_hidden = 2;
    o.pis_architectures = 1;
    o.joint_layers = 14;
    o.lgv_layers = 15;
    ck_assert_int_eq(fr_gfnd_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    o.joint_layers = 10; /* 2·(29) + 33 = 91 */
    ck_assert_int_eq(fr_gfnd_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    o.joint_layers = 5, o.lgv_layers = 11; /* 2·19 + 25 = 63 */
    ck_assert_msg(fr_gfnd_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    fr_gfnd_step_info info;
    ck_assert_int_eq(fr_gfnd_trainer_grad(t, &info), FR_OK);
    fr_gfnd_trainer_free(t);
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* Central differences in float64 of the float64 loss, h = 2^-8 (v ± h exact in float32 for
 * |v| < 2^15·h): the networks are float32, so the difference carries their rounding (measured
 * 2026-12-07: at most 7e-6 absolute, 2.5e-3 relative, on these cases with losses 6–57) and an
 * O(h²) curvature term. The tolerance 1e-2·|fd| + 2e-6·|loss| is above both; a wrong path (a
 * missing factor, a sign, a transposed index) moves the gradient by O(|fd|). Every tensor kind: the state embedding, a joint layer, the
 * head, the time path's φ and both its layers, NN2(t)'s φ, first and last layers (tb and
 * tb-avg, on a backward iteration: the states do not move with the parameters), and the flow
 * network's (db, a forward iteration: the states do not depend on the flow). */
START_TEST(test_grad_fd)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    fr_env e = target(&fr_env_gmm25);
    static const struct {
        const char *name;
        int64_t j;
    } k_pol[] = {{"drift.0.wx", 3},        {"drift.0.bias", 5},   {"drift.1.weight", 17}, {"drift.2.bias", 2},
                 {"drift.3.weight", 9},    {"drift.3.bias", 0},   {"drift.3.bias", 1},    {"drift.t.phase", 1},
                 {"drift.t.phase", 3},     {"drift.t.0.weight", 6}, {"drift.t.1.weight", 20}, {"drift.t.1.bias", 4},
                 {"lgv.phase", 2},         {"lgv.0.weight", 11},  {"lgv.2.bias", 7},      {"lgv.3.weight", 5},
                 {"lgv.3.bias", 0}},
      k_flow[] = {{"flow.0.wx", 1},  {"flow.1.weight", 30}, {"flow.3.bias", 0},
                  {"flow.t.phase", 0}, {"flow.t.0.bias", 3}, {"flow.t.1.weight", 40}};
    const float h = 0x1p-8f;
    for (int k = 0; k < 3; k++) {
        fr_gfnd_opts o = tiny_opts(k == 0 ? FR_GFND_TB : k == 1 ? FR_GFND_TB_AVG : FR_GFND_DB);
        o.pis_architectures = 1;
        o.langevin = k < 2;
        o.both_ways = k < 2;
        o.learned_variance = k == 1;
        o.init_log_z = 0.3;
        fr_st_file f;
        fr_st_init(&f);
        fr_gfnd_trainer *t0;
        ck_assert_int_eq(fr_gfnd_trainer_new(&t0, &be, &e, &o), FR_OK);
        /* the zero-initialised heads give the earlier layers no gradient: one Adam-free nudge of
         * every parameter first (a forward iteration's gradient, scaled), then the checkpoint */
        fr_gfnd_step_info info;
        ck_assert_int_eq(fr_gfnd_trainer_grad(t0, &info), FR_OK);
        fr_param *ps;
        int np;
        const int n = fr_gfnd_trainer_params(t0, &ps, &np);
        for (int p = 0; p < n; p++) {
            const int64_t c = fr_tensor_numel(ps[p].value);
            float *v = malloc((size_t)c * sizeof *v);
            ck_assert_int_eq(fr_d2h(&be, v, ps[p].value->data, (size_t)c * sizeof *v), FR_OK);
            for (int64_t i = 0; i < c; i++) v[i] += 0.05f * (float)((i * 7 + p * 3) % 11 - 5) / 5.0f;
            ck_assert_int_eq(fr_h2d(&be, ps[p].value->data, v, (size_t)c * sizeof *v), FR_OK);
            free(v);
        }
        ck_assert_int_eq(fr_gfnd_trainer_save(t0, &f), FR_OK);
        /* the nudged parameters: save them as the trainers' start through a tensor copy */
        float *arena_copy[64];
        int64_t cnt[64];
        ck_assert_int_le(n, 64);
        for (int p = 0; p < n; p++) {
            cnt[p] = fr_tensor_numel(ps[p].value);
            arena_copy[p] = malloc((size_t)cnt[p] * sizeof(float));
            ck_assert_int_eq(fr_d2h(&be, arena_copy[p], ps[p].value->data, (size_t)cnt[p] * sizeof(float)), FR_OK);
        }
        fr_gfnd_trainer_free(t0);
        const size_t nc = k < 2 ? sizeof k_pol / sizeof k_pol[0] : sizeof k_flow / sizeof k_flow[0];
        for (size_t c = 0; c < nc; c++) {
            const char *at = k < 2 ? k_pol[c].name : k_flow[c].name;
            const int64_t j = k < 2 ? k_pol[c].j : k_flow[c].j;
            if (strncmp(at, "lgv", 3) == 0 && !o.langevin) continue;
            double l[3];
            float g = 0.0f;
            for (int s = 0; s < 3; s++) {
                /* a fresh trainer at the nudged parameters and the checkpoint's iteration and buffer */
                fr_gfnd_trainer *t;
                ck_assert_int_eq(fr_gfnd_trainer_new(&t, &be, &e, &o), FR_OK);
                ck_assert_int_eq(fr_gfnd_trainer_load(t, &f, "mem"), FR_OK);
                fr_param *qs;
                int nq;
                ck_assert_int_eq(fr_gfnd_trainer_params(t, &qs, &nq), n);
                int at_p = -1;
                for (int p = 0; p < n; p++) {
                    ck_assert_int_eq(fr_h2d(&be, qs[p].value->data, arena_copy[p], (size_t)cnt[p] * sizeof(float)), FR_OK);
                    if (strcmp(qs[p].name, at) == 0) at_p = p;
                }
                ck_assert_msg(at_p >= 0, "no tensor %s", at);
                float v = arena_copy[at_p][j] + (s == 1 ? h : s == 2 ? -h : 0.0f);
                ck_assert_int_eq(fr_h2d(&be, (float *)qs[at_p].value->data + j, &v, sizeof v), FR_OK);
                ck_assert_int_eq(fr_gfnd_trainer_grad(t, &info), FR_OK);
                ck_assert_int_eq(info.backward, k < 2);
                l[s] = info.loss;
                if (s == 0) ck_assert_int_eq(fr_d2h(&be, &g, (float *)qs[at_p].grad->data + j, sizeof g), FR_OK);
                fr_gfnd_trainer_free(t);
            }
            const double fd = (l[1] - l[2]) / (2.0 * (double)h);
            ck_assert_msg(isfinite(fd) && fabs(fd - (double)g) <= 1e-2 * fabs(fd) + 2e-6 * fabs(l[0]) && g != 0.0f,
                          "%s %s[%lld]: grad %.9g, fd %.9g (loss %.6g)", fr_gfnd_loss_name(o.loss), at, (long long)j,
                          (double)g, fd, l[0]);
        }
        for (int p = 0; p < n; p++) free(arena_copy[p]);
        fr_st_free(&f);
    }
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* A short CLI run (TB, Langevin, exploration) on 25GMM: its final evaluation line, parameter count and
 * digest are the same bytes on ref, opt at 1 and 3 threads and cuda-emu, and differ without the option. */
START_TEST(test_cli_backends)
{
    const char *base = "--algo gfn-diffusion --env gmm25 --loss tb --langevin --exploration 0.2 --batch-size 8 --steps 10 "
                       "--hidden-dim 16 --harmonics 4 --epochs 6 --eval-samples 50 --eval-every 0 --checkpoint-every 0";
    /* gfnd_cli_line asserts the "parameters N, digest D" line itself */
    gfnd_option_same_on_backends("gfnd_pis", base, "--pis-architectures");
}
END_TEST

Suite *suite_gfn_diffusion_pis(void)
{
    Suite *s = suite_create("gfn_diffusion_pis");
    TCase *tc = tcase_create("pis");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_parameter_count);
    tcase_add_test(tc, test_too_many_tensors);
    tcase_add_test(tc, test_grad_fd);
    tcase_add_test(tc, test_cli_backends);
    suite_add_tcase(s, tc);
    return s;
}
