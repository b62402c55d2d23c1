/* pi-Flow (flowrl/piflow.h; spec more.md §10.2): the policy's checks, its gradient by finite
 * differences, the imitation loss's gradient, and the trainer on ref and opt (bitwise, resumed). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/checkpoint.h"
#include "flowrl/gm.h"
#include "flowrl/piflow.h"
#include "flowrl/safetensors.h"
#include "flowrl/task.h"
#include "tests/model_testutil.h"
#include "tests/audit_testutil.h"
#include "tests/testutil.h"

/* A random head row: means U(-2, 2), logits U(-1, 1), log-std logstd. */
static void random_row(uint64_t *rs, int K, int D, float logstd, float *row)
{
    for (int i = 0; i < K * D; i++) row[i] = fr_test_uniform(rs, -2.0f, 2.0f);
    for (int k = 0; k < K; k++) row[fr_gm_logit_off(K, D) + k] = fr_test_uniform(rs, -1.0f, 1.0f);
    row[fr_gm_logstd_off(K, D)] = logstd;
}

/* Spec check 1: at (x_s, σ_s) the policy velocity is Σ w_k μ_k. */
START_TEST(test_pi_at_source)
{
    uint64_t rs = 11;
    const int K = 5, D = 3;
    const double sig[] = {1.0, 0.7, 0.3};
    for (int it = 0; it < 3; it++) {
        float row[64], xs[3];
        random_row(&rs, K, D, -0.4f, row);
        for (int c = 0; c < D; c++) xs[c] = fr_test_uniform(&rs, -1.5f, 1.5f);
        fr_piflow_gm g;
        ck_assert_int_eq(fr_piflow_gm_from_row(&g, K, D, row, xs, sig[it]), FR_OK);
        double x[3], u[3], mx = -1e300, z = 0, w[5];
        for (int c = 0; c < D; c++) x[c] = xs[c];
        fr_piflow_pi(&g, x, sig[it], u);
        for (int k = 0; k < K; k++) mx = fmax(mx, row[fr_gm_logit_off(K, D) + k]);
        for (int k = 0; k < K; k++) z += (w[k] = exp(row[fr_gm_logit_off(K, D) + k] - mx));
        for (int c = 0; c < D; c++) {
            double want = 0;
            for (int k = 0; k < K; k++) want += w[k] / z * row[k * D + c];
            /* a few double roundings through x_s − σ_s μ_k and back */
            ck_assert_msg(fabs(u[c] - want) < 1e-12, "sigma_s %g c %d: pi %.17g, sum w mu %.17g", sig[it], c, u[c], want);
        }
    }
}
END_TEST

/* Spec check 2: K = 1 and v → 0: π(x, σ) = (x − m)/σ and the Euler rollout follows the straight
 * line x(σ) = m + (σ/σ_s)(x_s − m) exactly, landing on m. */
START_TEST(test_k1_straight_line)
{
    uint64_t rs = 12;
    const int K = 1, D = 2;
    float row[8], xs[2] = {0.8f, -1.3f};
    random_row(&rs, K, D, -30.0f, row); /* v = e^-60 σ_s² */
    const double sigma_s = 0.9;
    fr_piflow_gm g;
    ck_assert_int_eq(fr_piflow_gm_from_row(&g, K, D, row, xs, sigma_s), FR_OK);
    double m[2] = {g.m[0], g.m[1]};
    double x[2] = {0.1, 2.0}, u[2];
    fr_piflow_pi(&g, x, 0.35, u);
    for (int c = 0; c < D; c++) ck_assert_msg(fabs(u[c] - (x[c] - m[c]) / 0.35) < 1e-12, "c %d: %.17g", c, u[c]);
    const double ends[] = {0.5, 0.123, 0.0};
    const int subs[] = {128, 7};
    for (int si = 0; si < 2; si++)
        for (int e = 0; e < 3; e++) {
            double y[2] = {xs[0], xs[1]};
            fr_piflow_rollout(&g, sigma_s, ends[e], subs[si], y);
            for (int c = 0; c < D; c++) {
                const double want = m[c] + ends[e] / sigma_s * ((double)xs[c] - m[c]);
                ck_assert_msg(fabs(y[c] - want) < 1e-12, "to sigma %g, %d substeps, c %d: %.17g, want %.17g", ends[e],
                              subs[si], c, y[c], want);
            }
        }
}
END_TEST

/* fr_piflow_pi_grad against central differences of du · π in double (rows perturbed in float:
 * the difference quotient divides by the float step actually taken). */
START_TEST(test_pi_grad_fd)
{
    uint64_t rs = 13;
    const int K = 4, D = 2;
    const int64_t W = fr_gm_width(K, D);
    for (int it = 0; it < 6; it++) {
        float row[64], xs[2];
        random_row(&rs, K, D, fr_test_uniform(&rs, -1.5f, 0.3f), row);
        for (int c = 0; c < D; c++) xs[c] = fr_test_uniform(&rs, -1.5f, 1.5f);
        const double sigma_s = it < 3 ? 1.0 : 0.8, sigma = 0.05 + 0.12 * it;
        double x[2] = {fr_test_uniform(&rs, -2.0f, 2.0f), fr_test_uniform(&rs, -2.0f, 2.0f)};
        double du[2] = {fr_test_uniform(&rs, -1.0f, 1.0f), fr_test_uniform(&rs, -1.0f, 1.0f)}, drow[64];
        fr_piflow_gm g;
        ck_assert_int_eq(fr_piflow_gm_from_row(&g, K, D, row, xs, sigma_s), FR_OK);
        fr_piflow_pi_grad(&g, x, sigma, du, drow);
        for (int64_t i = 0; i < W; i++) {
            float rp[64], rm[64];
            memcpy(rp, row, sizeof rp);
            memcpy(rm, row, sizeof rm);
            rp[i] = row[i] + 1e-3f;
            rm[i] = row[i] - 1e-3f;
            double f[2];
            for (int side = 0; side < 2; side++) {
                fr_piflow_gm h;
                ck_assert_int_eq(fr_piflow_gm_from_row(&h, K, D, side ? rm : rp, xs, sigma_s), FR_OK);
                double u[2];
                fr_piflow_pi(&h, x, sigma, u);
                f[side] = du[0] * u[0] + du[1] * u[1];
            }
            const double fd = (f[0] - f[1]) / ((double)rp[i] - (double)rm[i]);
            /* central difference with step 1e-3: O(h²) truncation on O(1..100) curvatures */
            ck_assert_msg(fabs(fd - drow[i]) <= 1e-4 * (1.0 + fabs(fd)), "it %d element %lld: analytic %.10g, fd %.10g",
                          it, (long long)i, drow[i], fd);
        }
    }
}
END_TEST

/* A teacher of closed form, u = A x + b t, that records the states it was called at. */
typedef struct {
    float xt[4][64 * 2], tt[4][64];
    int calls;
} fake_teacher;

static fr_status fake_velocity(void *user, int64_t B, const float *x, const float *t, float *u)
{
    fake_teacher *f = user;
    for (int64_t b = 0; b < B; b++) {
        u[b * 2] = 0.5f * x[b * 2] - 0.2f * x[b * 2 + 1] + t[b];
        u[b * 2 + 1] = 0.3f * x[b * 2] + 0.9f * x[b * 2 + 1] - 2.0f * t[b];
    }
    memcpy(f->xt[f->calls], x, (size_t)(B * 2) * sizeof *x);
    memcpy(f->tt[f->calls], t, (size_t)B * sizeof *t);
    f->calls++;
    return FR_OK;
}

/* The imitation loss's value and gradient: the loss recomputed from the recorded rollout states,
 * and its row gradient by central differences with those states held (the rollout is detached). */
START_TEST(test_imitation_loss_grad)
{
    uint64_t rs = 14;
    const int K = 3, D = 2, N = 2;
    const int64_t B = 4, W = fr_gm_width(K, D);
    float rows[4 * 16], xs[4 * 2], drow[4 * 16];
    double nt[4 * 2];
    for (int64_t b = 0; b < B; b++) {
        random_row(&rs, K, D, fr_test_uniform(&rs, -1.0f, 0.0f), rows + b * W);
        for (int c = 0; c < D; c++) xs[b * D + c] = fr_test_uniform(&rs, -2.0f, 2.0f);
        for (int n = 0; n < N; n++) nt[b * N + n] = fr_test_uniform(&rs, 0.0f, 1.0f) + 1e-4;
    }
    static fake_teacher ft;
    memset(&ft, 0, sizeof ft);
    double loss = 0;
    ck_assert_int_eq(fr_piflow_imitation_loss(K, D, B, N, 128, rows, xs, nt, fake_velocity, &ft, &loss, drow), FR_OK);
    ck_assert_int_eq(ft.calls, N);
    /* the recorded states are the detached policy's rollout */
    for (int64_t b = 0; b < B; b++)
        for (int n = 0; n < N; n++) {
            fr_piflow_gm g;
            ck_assert_int_eq(fr_piflow_gm_from_row(&g, K, D, rows + b * W, xs + b * D, 1.0), FR_OK);
            double x[2] = {xs[b * D], xs[b * D + 1]};
            fr_piflow_rollout(&g, 1.0, nt[b * N + n], 128, x);
            for (int c = 0; c < D; c++) ck_assert(ft.xt[n][b * D + c] == (float)x[c]);
        }
    /* L(rows) with the states fixed */
    double want = 0;
    const int64_t i_probe[] = {0, 3, 6, 8, 9, 16 + 1, 16 + 7, 32 + 6, 48 + 5, 48 + 9};
    for (int side = -1; side < (int)(sizeof i_probe / sizeof i_probe[0]); side++) {
        for (int pm = 0; pm < (side < 0 ? 1 : 2); pm++) {
            float r2[4 * 16];
            memcpy(r2, rows, sizeof r2);
            if (side >= 0) r2[i_probe[side]] += pm ? -1e-3f : 1e-3f;
            double L = 0;
            for (int64_t b = 0; b < B; b++) {
                fr_piflow_gm g;
                ck_assert_int_eq(fr_piflow_gm_from_row(&g, K, D, r2 + b * W, xs + b * D, 1.0), FR_OK);
                for (int n = 0; n < N; n++) {
                    double x[2] = {ft.xt[n][b * D], ft.xt[n][b * D + 1]}, u[2], ut[2];
                    const float *xf = ft.xt[n] + b * D;
                    const float tf = ft.tt[n][b];
                    ut[0] = 0.5f * xf[0] - 0.2f * xf[1] + tf;
                    ut[1] = 0.3f * xf[0] + 0.9f * xf[1] - 2.0f * tf;
                    fr_piflow_pi(&g, x, (double)tf, u);
                    for (int c = 0; c < D; c++) L += (u[c] - (double)(float)ut[c]) * (u[c] - (double)(float)ut[c]);
                }
            }
            L /= (double)(N * B * D);
            if (side < 0) {
                want = L;
                ck_assert_msg(fabs(loss - want) <= 1e-12 * (1 + want), "loss %.17g, recomputed %.17g", loss, want);
            } else if (pm == 0) {
                want = L;
            } else {
                const int64_t i = i_probe[side];
                const double fd = (want - L) / ((double)(rows[i] + 1e-3f) - (double)(rows[i] - 1e-3f));
                ck_assert_msg(fabs(fd - (double)drow[i]) <= 1e-4 * (1.0 + fabs(fd)), "row element %lld: %.9g, fd %.9g",
                              (long long)i, (double)drow[i], fd);
            }
        }
    }
}
END_TEST

/* A tiny velocity model of task tname (checkerboard, shapes) as a teacher checkpoint. */
static void write_teacher_of(const char *path, const char *tname)
{
    const fr_task *t;
    ck_assert_int_eq(fr_task_get(tname, &t), FR_OK);
    fr_model m;
    fr_test_make_model(&m, t, FR_PRED_VELOCITY, 21);
    fr_st_file f;
    fr_st_init(&f);
    ck_assert_int_eq(fr_checkpoint_to_st(&f, &m, NULL, NULL), FR_OK);
    ck_assert_int_eq(fr_st_set_meta(&f, "task", tname), FR_OK);
    ck_assert_int_eq(fr_st_write(&f, path), FR_OK);
    fr_st_free(&f);
    fr_model_free(&m);
}

static void write_teacher(const char *path) { write_teacher_of(path, "checkerboard"); }

static void digest_progress(void *user, int64_t step, double loss, uint64_t digest)
{
    uint64_t *d = user;
    (void)loss;
    d[step - 1] = digest;
}

/* Trains the tiny student steps steps on backend bk (threads th), optionally resumed from
 * resume; digests (steps,) receive the parameters' digest after each step. */
static void train_tiny(const char *bk, int th, const char *teacher, const char *out, const char *resume, int64_t steps,
                       uint64_t *digests)
{
    fr_backend be = fr_test_backend(bk, 0, th);
    fr_piflow_teacher t;
    ck_assert_msg(fr_piflow_teacher_load(&t, &be, teacher, 8) == FR_OK, "%s", fr_last_error());
    fr_piflow_student st;
    if (t.ck.task->C) /* the image student: GMFlow's network of shapes-s, K 2 */
        ck_assert_msg(fr_piflow_student_new_image(&st, &be, 2, "shapes-s", t.ck.task, 8) == FR_OK, "%s", fr_last_error());
    else
        ck_assert_int_eq(fr_piflow_student_new(&st, &be, 3, 2, 16, 2, 8), FR_OK);
    fr_piflow_train_opts o = fr_piflow_train_opts_default();
    o.steps = steps;
    o.batch = 8;
    o.substeps = 32;
    o.lr = 1e-2;
    o.seed = 5;
    ck_assert_msg(fr_piflow_train(&st, &t, &o, out, resume, digest_progress, digests) == FR_OK, "%s", fr_last_error());
    fr_piflow_student_free(&st);
    fr_piflow_teacher_free(&t);
    fr_backend_close(&be);
}

/* ref = opt (1 and 2 threads) = cuda-emu bit for bit; a run stopped at step 2 and resumed equals
 * the uninterrupted one; the parameters move; the student samples alike on every backend. On
 * task tname: checkerboard (the 2-D student) or shapes (the image student, prompt-conditioned). */
static void bitwise_resume(const char *tname)
{
    const int img = strcmp(tname, "shapes") == 0;
    const int D = img ? 768 : 2;
    char dir[128], teacher[192], a[192], b[192], c[192];
    fr_test_mkdtemp(dir, sizeof dir, "piflow");
    snprintf(teacher, sizeof teacher, "%s/teacher.safetensors", dir);
    snprintf(a, sizeof a, "%s/a.safetensors", dir);
    snprintf(b, sizeof b, "%s/b.safetensors", dir);
    snprintf(c, sizeof c, "%s/c.safetensors", dir);
    write_teacher_of(teacher, tname);
    uint64_t dref[4], d[4];
    train_tiny("ref", 1, teacher, a, NULL, 4, dref);
    ck_assert(dref[0] != dref[3]);
    const char *bks[] = {"opt", "opt", "cuda-emu"};
    const int ths[] = {1, 2, 1};
    for (int k = 0; k < 3; k++) {
        train_tiny(bks[k], ths[k], teacher, b, NULL, 4, d);
        for (int i = 0; i < 4; i++) ck_assert_msg(d[i] == dref[i], "%s x%d step %d: %016llx, ref %016llx", bks[k], ths[k],
                                                  i + 1, (unsigned long long)d[i], (unsigned long long)dref[i]);
    }
    size_t na, nb;
    void *fa = fr_test_slurp(a, &na), *fb = fr_test_slurp(b, &nb);
    ck_assert_msg(na == nb && memcmp(fa, fb, na) == 0, "checkpoints of ref and cuda-emu differ");
    free(fb);
    /* stop at 2, resume to 4 */
    train_tiny("opt", 2, teacher, c, NULL, 2, d);
    ck_assert(d[1] == dref[1]);
    train_tiny("opt", 2, teacher, c, c, 4, d);
    ck_assert_msg(d[2] == dref[2] && d[3] == dref[3], "resumed: %016llx, uninterrupted %016llx", (unsigned long long)d[3],
                  (unsigned long long)dref[3]);
    fb = fr_test_slurp(c, &nb);
    ck_assert_msg(na == nb && memcmp(fa, fb, na) == 0, "the resumed checkpoint differs from the uninterrupted one");
    free(fa);
    free(fb);
    /* sampling: one network row per sample, the same points on ref and opt */
    float *xr = malloc(sizeof(float) * 8 * (size_t)D), *xo = malloc(sizeof(float) * 8 * (size_t)D);
    for (int k = 0; k < 2; k++) {
        fr_backend be = fr_test_backend(k ? "opt" : "ref", 0, k ? 2 : 1);
        fr_piflow_student st;
        ck_assert_msg(fr_piflow_student_load(&st, &be, a, 4) == FR_OK, "%s", fr_last_error());
        ck_assert(img == (st.img != NULL));
        const uint64_t r0 = be.work.fwd_rows;
        ck_assert_int_eq(fr_piflow_student_sample(&st, 8, 128, 3, k ? xo : xr), FR_OK);
        ck_assert_int_eq((int)(be.work.fwd_rows - r0), 8);
        fr_piflow_student_free(&st);
        fr_backend_close(&be);
    }
    ck_assert(memcmp(xr, xo, sizeof(float) * 8 * (size_t)D) == 0);
    for (int i = 0; i < 8 * D; i++) ck_assert(isfinite(xr[i]));
    free(xr), free(xo);
    /* a resume with other options names the key */
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_piflow_teacher t;
    ck_assert_int_eq(fr_piflow_teacher_load(&t, &be, teacher, 8), FR_OK);
    fr_piflow_student st;
    if (img)
        ck_assert_int_eq(fr_piflow_student_new_image(&st, &be, 2, "shapes-s", t.ck.task, 8), FR_OK);
    else
        ck_assert_int_eq(fr_piflow_student_new(&st, &be, 3, 2, 16, 2, 8), FR_OK);
    fr_piflow_train_opts o = fr_piflow_train_opts_default();
    o.steps = 4;
    o.batch = 8;
    o.substeps = 32;
    o.lr = 1e-2;
    o.seed = 6;
    ck_assert_int_eq(fr_piflow_train(&st, &t, &o, c, a, NULL, NULL), FR_ERR_MISMATCH);
    ck_assert_msg(strstr(fr_last_error(), "piflow.seed") != NULL, "%s", fr_last_error());
    fr_piflow_student_free(&st);
    fr_piflow_teacher_free(&t);
    fr_backend_close(&be);
    fr_test_rmtree(dir);
}

START_TEST(test_trainer_bitwise_resume) { bitwise_resume("checkerboard"); }
END_TEST

/* The image student (docs/algorithms/piflow.md §7): the same checks on shapes. */
START_TEST(test_image_bitwise_resume) { bitwise_resume("shapes"); }
END_TEST

/* The student's initial head: every logit and the log-std 0 (w_k = 1/K, s = 0). */
START_TEST(test_student_zero_heads)
{
    fr_piflow_student st;
    ck_assert_int_eq(fr_piflow_student_new(&st, fr_test_ref_be(), 8, 2, 16, 2, 4), FR_OK);
    ck_assert_int_eq(fr_piflow_student_init(&st, 9), FR_OK);
    float in[8] = {0.3f, -1.0f, 2.0f, 0.5f, -0.7f, 0.1f, 1.2f, -2.2f}, out[4 * 25];
    ck_assert_int_eq(fr_mlp_forward_host(&st.net, 4, in, out), FR_OK);
    int nonzero_means = 0;
    for (int b = 0; b < 4; b++) {
        for (int i = 0; i < 16; i++) nonzero_means += out[b * 25 + i] != 0.0f;
        for (int i = 16; i < 25; i++) ck_assert(out[b * 25 + i] == 0.0f);
    }
    ck_assert_int_gt(nonzero_means, 0);
    fr_piflow_student_free(&st);
}
END_TEST

/* The command on a shapes teacher: the image student, ref = opt (the digest lines), sample and
 * teacher with the accuracy line and a .png grid. */
START_TEST(test_cli_shapes)
{
    char dir[128], teacher[192], args[1024], out[8192], out2[8192];
    fr_test_mkdtemp(dir, sizeof dir, "piflow-cli-shapes");
    snprintf(teacher, sizeof teacher, "%s/teacher.safetensors", dir);
    write_teacher_of(teacher, "shapes");
    const char *bks[] = {"ref", "opt --threads 2"};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "piflow train --teacher %s --out %s/s%d.safetensors --steps 2 --batch-size 2 --k 2 "
                 "--substeps 8 --log-every 1 --backend %s", teacher, dir, k, bks[k]);
        ck_assert_msg(fr_test_run_cli(args, k ? out2 : out, sizeof out) == 0, "%s: %s", args, k ? out2 : out);
    }
    ck_assert_msg(strstr(out, "model preset shapes-s") != NULL, "%s", out);
    const char *da = strstr(out, "step 2/2"), *db = strstr(out2, "step 2/2");
    ck_assert_msg(da && db && strncmp(da, db, 50) == 0, "ref: %s\nopt: %s", out, out2);
    /* the image student's parameters are in its audit log, the same on ref and opt */
    snprintf(args, sizeof args, "audit %s/s0.audit.log %s/s1.audit.log", dir, dir);
    ck_assert_msg(fr_test_run_cli(args, out2, sizeof out2) == 0, "%s", out2);
    ck_assert_msg(strstr(out2, "identical through step 2") != NULL, "%s", out2);
    size_t nlog;
    snprintf(args, sizeof args, "%s/s0.audit.log", dir);
    char *log = fr_test_slurp(args, &nlog);
    ck_assert_msg(strstr(log, "step 2 grad.") && strstr(log, "step 2 optim.m."), "%s", args);
    free(log);
    snprintf(args, sizeof args, "piflow sample --ckpt %s/s0.safetensors --n 3 --out %s/s.png", dir, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "1.00 network rows per sample") && strstr(out, "geneval accuracy"), "%s", out);
    snprintf(args, sizeof args, "piflow teacher --ckpt %s --n 3 --num-steps 2 --out %s/t.safetensors", teacher, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "geneval accuracy (the detector, strict) over 3 samples") != NULL, "%s", out);
    fr_test_rmtree(dir);
}
END_TEST

/* The command: train on ref and opt (the same digest line), sample, teacher, swd, the PNG, usage errors. */
START_TEST(test_cli)
{
    char dir[128], teacher[192], args[1024], out[8192], out2[8192];
    fr_test_mkdtemp(dir, sizeof dir, "piflow-cli");
    snprintf(teacher, sizeof teacher, "%s/teacher.safetensors", dir);
    write_teacher(teacher);
    const char *bks[] = {"ref", "opt --threads 2"};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "piflow train --teacher %s --out %s/s%d.safetensors --steps 3 --batch-size 8 --k 3 "
                 "--hidden 16 --n-hidden 2 --substeps 16 --log-every 1 --backend %s", teacher, dir, k, bks[k]);
        ck_assert_msg(fr_test_run_cli(args, k ? out2 : out, sizeof out) == 0, "%s: %s", args, k ? out2 : out);
    }
    const char *da = strstr(out, "step 3/3"), *db = strstr(out2, "step 3/3");
    ck_assert_msg(da && db && strncmp(da, db, 60) == 0, "ref: %s\nopt: %s", out, out2);
    snprintf(args, sizeof args, "piflow sample --ckpt %s/s0.safetensors --n 64 --out %s/a.safetensors", dir, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "1.00 network rows per sample") != NULL, "%s", out);
    snprintf(args, sizeof args, "piflow teacher --ckpt %s --n 64 --num-steps 4 --out %s/b.safetensors", teacher, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "4.00 network rows per sample") != NULL, "%s", out);
    snprintf(args, sizeof args, "piflow swd %s/a.safetensors %s/b.safetensors 64", dir, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    double d = -1;
    ck_assert_msg(sscanf(out, "sliced_w2 %lf", &d) == 1 && d > 0 && isfinite(d), "%s", out);
    snprintf(args, sizeof args, "piflow sample --ckpt %s/s0.safetensors --n 64 --out %s/a.png", dir, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    snprintf(args, sizeof args, "%s/a.png", dir);
    FILE *f = fopen(args, "rb");
    ck_assert_msg(f != NULL, "no %s", args);
    fclose(f);
    ck_assert_int_eq(fr_test_run_cli("piflow train --steps 1", out, sizeof out), 2);
    ck_assert_int_eq(fr_test_run_cli("piflow frobnicate", out, sizeof out), 2);
    ck_assert_int_eq(fr_test_run_cli("piflow train --help", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "--teacher") != NULL, "%s", out);
    fr_test_rmtree(dir);
}
END_TEST

/* The audit log of `piflow train` (flowrl/audit_train.h): ref = opt (3 threads) record for record;
 * a run killed during step 3 of 4 after its --checkpoint-every 2 checkpoint, resumed, equals the
 * uninterrupted log; another seed differs from step 1's loss on. */
START_TEST(test_audit)
{
    char dir[128], teacher[192], args[1024], out[8192], a[256], c[256];
    fr_test_mkdtemp(dir, sizeof dir, "piflow-audit");
    snprintf(teacher, sizeof teacher, "%s/teacher.safetensors", dir);
    write_teacher(teacher);
    const char *net = "--batch-size 8 --k 3 --hidden 16 --n-hidden 2 --substeps 16";
    const char *bks[] = {"ref", "opt --threads 3"};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "piflow train --teacher %s --out %s/s%d.safetensors --steps 4 %s --backend %s", teacher,
                 dir, k, net, bks[k]);
        ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s: %s", args, out);
    }
    snprintf(a, sizeof a, "%s/s0.audit.log", dir);
    snprintf(c, sizeof c, "%s/s1.audit.log", dir);
    fr_test_audit_identical(a, c, 4);
    /* the checkpoint of step 2 (a run of 2 steps writes the bytes of a longer run's step 2) */
    snprintf(args, sizeof args, "piflow train --teacher %s --out %s/k.safetensors --steps 2 --checkpoint-every 2 %s",
             teacher, dir, net);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    snprintf(c, sizeof c, "%s/k.audit.log", dir);
    fr_test_audit_killed(a, c, 3);
    snprintf(args, sizeof args, "piflow train --teacher %s --out %s/k.safetensors --resume %s/k.safetensors --steps 4 "
             "%s --backend opt --threads 3", teacher, dir, dir, net);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    fr_test_audit_identical(a, c, 4);
    snprintf(args, sizeof args, "piflow train --teacher %s --out %s/e.safetensors --steps 4 %s --seed 2", teacher, dir, net);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    snprintf(c, sizeof c, "%s/e.audit.log", dir);
    fr_test_audit_differs_at(a, c, 1, "loss");
    fr_test_rmtree(dir);
}
END_TEST

Suite *suite_piflow(void)
{
    Suite *s = suite_create("piflow");
    TCase *tc = tcase_create("piflow");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pi_at_source);
    tcase_add_test(tc, test_k1_straight_line);
    tcase_add_test(tc, test_pi_grad_fd);
    tcase_add_test(tc, test_imitation_loss_grad);
    tcase_add_test(tc, test_student_zero_heads);
    tcase_add_test(tc, test_trainer_bitwise_resume);
    tcase_add_test(tc, test_image_bitwise_resume);
    tcase_add_test(tc, test_cli_shapes);
    tcase_add_test(tc, test_cli);
    tcase_add_test(tc, test_audit);
    suite_add_tcase(s, tc);
    return s;
}
