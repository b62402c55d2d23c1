/* GMFlow (flowrl/gmflow.h; docs/algorithms/gmflow.md; spec/more.md §10.1): the transition
 * coefficients against the spec's example, the spec's two checks (t_low = 0 gives the x0-GM;
 * K = 1 gives the Gaussian NLL), the NLL's gradient by central differences, the embedding
 * against its formula in double, the zero-initialised heads, and training / sampling bit for
 * bit on ref, opt (3 threads) and cuda-emu, a resumed run included; the same for the shapes
 * image network (the shared model with a GM-row head, flowrl/model.h out_D). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/backend.h"
#include "flowrl/gmflow.h"
#include "flowrl/philox.h"
#include "tests/suites.h"
#include "tests/audit_testutil.h"
#include "tests/testutil.h"

START_TEST(test_coefs_example)
{
    /* spec §10.1: sigma = 0.8, sigma' = 0.08; the spec prints 8 digits, so 5e-9 is its rounding */
    const fr_gmflow_coefs c = fr_gmflow_transition_coefs(0.8, 0.08);
    ck_assert_msg(fabs(c.c1 - 0.00217391) < 5e-9, "c1 %.10f", c.c1);
    ck_assert_msg(fabs(c.c2 - 0.91956522) < 5e-9, "c2 %.10f", c.c2);
    ck_assert_msg(fabs(sqrt(c.c3) - 0.07998109) < 5e-9, "sqrt c3 %.10f", sqrt(c.c3));
    /* c2 = beta alpha', c3 = beta sigma'^2 */
    ck_assert(fabs(c.c2 - c.beta * 0.92) < 1e-15 && fabs(c.c3 - c.beta * 0.0064) < 1e-15);
    const fr_gmflow_coefs z = fr_gmflow_transition_coefs(0.6, 0.0);
    ck_assert(z.c1 == 0.0 && z.c2 == 1.0 && z.c3 == 0.0 && z.beta == 1.0);
}
END_TEST

/* A head row of K components over D = 2, entries multiples of 2^-12 in (-2, 2) (so that
 * row ± 2^-10 is exact in float), from Philox (seed). */
static void random_row(int K, float *row, uint32_t seed, float logstd)
{
    const int64_t W = fr_gm_width(K, 2);
    for (int64_t j = 0; j < W; j++)
        row[j] = (float)((int)(fr_rng_u32(seed, 0, 0, 0, 0, (uint32_t)j) % 8192) - 4096) / 4096.0f * 1.5f;
    row[fr_gm_logstd_off(K, 2)] = logstd;
}

START_TEST(test_tlow_zero_is_x0_gm)
{
    enum { K = 5, D = 2 };
    float row[K * D + K + 1], x[D] = {0.375f, -1.25f};
    random_row(K, row, 7, -0.5f);
    double m[K * D], lw[K], var;
    const double sigma = 0.6;
    fr_gmflow_transition(K, D, row, x, sigma, 0.0, m, lw, &var);
    for (int k = 0; k < K; k++)
        for (int d = 0; d < D; d++)
            ck_assert_msg(m[k * D + d] == (double)x[d] - sigma * (double)row[k * D + d], "mean %d %d", k, d);
    const double sd = sigma * exp(-0.5);
    ck_assert_msg(fabs(var - sd * sd) < 1e-15, "var %.17g, x0-GM %.17g", var, sd * sd);
    double s = 0.0;
    for (int k = 0; k < K; k++) s += exp(lw[k]);
    ck_assert_msg(fabs(s - 1.0) < 1e-14, "weights sum to %.17g", s);
}
END_TEST

START_TEST(test_k1_gaussian_nll)
{
    const float row[4] = {0.25f, -0.75f, 0.5f, -0.3f}; /* mu (2), logit, log std */
    const float x[2] = {0.5f, 1.5f}, y[2] = {0.125f, 0.9f};
    const double cases[3][2] = {{0.8, 0.08}, {0.3, 0.03}, {1.0, 0.5}};
    for (int i = 0; i < 3; i++) {
        double m[2], lw[1], var;
        fr_gmflow_transition(1, 2, row, x, cases[i][0], cases[i][1], m, lw, &var);
        const double sd = sqrt(var), want = 0.5 * (pow((m[0] - y[0]) / sd, 2) + pow((m[1] - y[1]) / sd, 2)) + 2.0 * log(sd);
        const double got = fr_gmflow_nll_row(1, 2, row, x, y, cases[i][0], cases[i][1], NULL);
        ck_assert_msg(fabs(got - want) < 1e-12 * fmax(1.0, fabs(want)), "case %d: nll %.17g, want %.17g", i, got, want);
        ck_assert(lw[0] == 0.0);
    }
}
END_TEST

START_TEST(test_nll_grad_fd)
{
    enum { K = 4, D = 2 };
    const int64_t W = fr_gm_width(K, D);
    /* sigma, sigma', log std: the last one clamps the inverse std at 1e4 (std ~ 1e-6) */
    const double cases[4][3] = {{0.8, 0.08, 0.0}, {0.3, 0.03, -1.0}, {0.95, 0.5, 0.75}, {0.001, 0.0, -6.0}};
    const float h = 0x1p-10f;
    for (int c = 0; c < 4; c++) {
        float row[K * D + K + 1], x[D], y[D];
        random_row(K, row, 11 + (uint32_t)c, (float)cases[c][2]);
        for (int d = 0; d < D; d++) {
            x[d] = fr_rng_normal(3, 0, 1, (uint32_t)c, 0, (uint32_t)d);
            y[d] = (float)(0.5 * x[d]) + (float)cases[c][1] * fr_rng_normal(3, 0, 2, (uint32_t)c, 0, (uint32_t)d);
        }
        double g[K * D + K + 1];
        const double f0 = fr_gmflow_nll_row(K, D, row, x, y, cases[c][0], cases[c][1], g);
        ck_assert(isfinite(f0));
        for (int64_t j = 0; j < W; j++) {
            const float v = row[j];
            row[j] = v + h;
            const double fp = fr_gmflow_nll_row(K, D, row, x, y, cases[c][0], cases[c][1], NULL);
            row[j] = v - h;
            const double fm = fr_gmflow_nll_row(K, D, row, x, y, cases[c][0], cases[c][1], NULL);
            row[j] = v;
            const double fd = (fp - fm) / (2.0 * (double)h);
            /* central differences: truncation h^2 f'''/6 ~ 1e-6 relative for these smooth terms */
            ck_assert_msg(fabs(fd - g[j]) <= 1e-5 + 1e-4 * fabs(fd), "case %d entry %lld: analytic %.10g, fd %.10g", c,
                          (long long)j, g[j], fd);
        }
    }
}
END_TEST

START_TEST(test_embedding)
{
    enum { E = 16, D = 2 };
    float out[2 * E], x[D] = {1.5f, -3.25f};
    const float t = 437.5f;
    fr_gmflow_embed(E, D, t, x, out);
    for (int j = 0; j < E / 2; j++) {
        const double f = exp(-log(10000.0) * j / (E / 2 - 1)), a = (double)(t * (float)f);
        ck_assert_msg(fabs(out[j] - cos(a)) < 2e-6 && fabs(out[E / 2 + j] - sin(a)) < 2e-6, "time %d", j);
    }
    const int q = E / (2 * D);
    for (int c = 0; c < D; c++)
        for (int j = 0; j < q; j++) {
            const double period = exp(log(5e-3) + (log(50.0) - log(5e-3)) * j / (q - 1));
            const double a = (double)(x[c] * (float)(2.0 * M_PI / period));
            ck_assert_msg(fabs(out[E + 2 * q * c + j] - sin(a)) < 2e-6 && fabs(out[E + 2 * q * c + q + j] - cos(a)) < 2e-6,
                          "position %d %d", c, j);
        }
}
END_TEST

static const fr_gmflow_arch k_arch = {8, 2, 16, 24, 2, ""};

START_TEST(test_zero_init_heads)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    fr_gmflow_net g;
    ck_assert_int_eq(fr_gmflow_net_new(&g, &be, &k_arch, 4), FR_OK);
    ck_assert_int_eq(fr_gmflow_net_init(&g, 5), FR_OK);
    const int64_t W = fr_gm_width(8, 2);
    float t[3] = {1000.0f, 500.0f, 3.0f}, x[6] = {0.1f, 2.0f, -3.0f, 0.5f, 1.0f, -1.0f}, rows[3 * 25];
    ck_assert_int_eq(W, 25);
    ck_assert_int_eq(fr_gmflow_net_forward(&g, 3, t, x, rows), FR_OK);
    int nonzero_means = 0;
    for (int r = 0; r < 3; r++) {
        for (int j = (int)fr_gm_logit_off(8, 2); j < W; j++) ck_assert_msg(rows[r * W + j] == 0.0f, "row %d entry %d: %g", r, j, (double)rows[r * W + j]);
        for (int j = 0; j < 16; j++) nonzero_means += rows[r * W + j] != 0.0f;
    }
    ck_assert(nonzero_means > 0);
    fr_gmflow_net_free(&g);
    fr_backend_close(&be);
}
END_TEST

/* steps AdamW steps (resumed after `split` through a checkpoint when 0 < split < steps) on task
 * checkerboard (the 2-D network k_arch, batch 16, 64 samples of 3 GM-SDE steps) or shapes (the
 * image network of shapes-s, K_IMG, batch 3, N_IMG samples of 2 steps, prompts 13 i mod 52) on
 * backend bk: the digest of the raw and the EMA parameters, and the samples' bits. */
#define K_IMG 2
#define N_IMG 5
static uint64_t run_task(const char *tname, const char *bk, int threads, int steps, int split, float *samples)
{
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, bk, 0, threads) == FR_OK, "%s: %s", bk, fr_last_error());
    const fr_task *task;
    ck_assert_int_eq(fr_task_get(tname, &task), FR_OK);
    const int img = task->C != 0;
    fr_gmflow_train_cfg c = fr_gmflow_train_defaults();
    c.steps = steps, c.batch = img ? 3 : 16, c.warmup = img ? 1 : 2, c.lr = img ? 1e-3 : 1e-2, c.seed = img ? 4 : 9;
    fr_gmflow_net g;
    fr_adamw_state opt;
    fr_ema ema;
    if (img)
        ck_assert_msg(fr_gmflow_net_new_image(&g, &be, K_IMG, "shapes-s", task, c.batch) == FR_OK, "%s", fr_last_error());
    else
        ck_assert_int_eq(fr_gmflow_net_new(&g, &be, &k_arch, 16), FR_OK);
    ck_assert_int_eq(fr_gmflow_net_init(&g, c.seed), FR_OK);
    ck_assert_int_eq(fr_adamw_state_init(&be, &opt, g.params, g.n_params), FR_OK);
    ck_assert_int_eq(fr_ema_init(&be, &ema, g.params, g.n_params), FR_OK);
    double loss = 0.0;
    int64_t from = 0;
    if (split > 0 && split < steps) {
        fr_gmflow_train_cfg c1 = c;
        c1.steps = split;
        ck_assert_msg(fr_gmflow_train(&g, task, &c1, &opt, &ema, 0, NULL, NULL, &loss) == FR_OK, "%s", fr_last_error());
        char path[512];
        snprintf(path, sizeof path, "%s/gmflow_resume_%d.safetensors", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                 (int)getpid());
        ck_assert_msg(fr_gmflow_save(path, &g, &opt, &ema, tname, &c1, split) == FR_OK, "%s", fr_last_error());
        fr_adamw_state_free(&opt);
        fr_ema_free(&ema);
        fr_gmflow_net_free(&g);
        char tn[64];
        fr_gmflow_train_cfg back;
        ck_assert_msg(fr_gmflow_load(path, &be, 0, &g, &opt, &ema, &from, tn, &back) == FR_OK, "%s", fr_last_error());
        ck_assert(back.seed == c.seed && back.batch == c.batch && back.lr == c.lr && back.warmup == c.warmup &&
                  back.trans_ratio == c.trans_ratio && back.steps == split);
        ck_assert_str_eq(tn, tname);
        ck_assert_int_eq(from, split);
        ck_assert(img ? g.img != NULL && strcmp(g.a.preset, "shapes-s") == 0 : g.img == NULL);
        unlink(path);
    }
    ck_assert_msg(fr_gmflow_train(&g, task, &c, &opt, &ema, from, NULL, NULL, &loss) == FR_OK, "%s", fr_last_error());
    ck_assert(isfinite(loss));
    uint64_t dg, de;
    ck_assert_int_eq(fr_gmflow_net_digest(&g, &dg), FR_OK);
    int pr[N_IMG];
    for (int i = 0; i < N_IMG; i++) pr[i] = (13 * i) % 52;
    if (img)
        ck_assert_msg(fr_gmflow_sample_c(&g, N_IMG, 2, 6, pr, samples) == FR_OK, "%s", fr_last_error());
    else
        ck_assert_msg(fr_gmflow_sample(&g, 64, 3, 4, samples) == FR_OK, "%s", fr_last_error());
    /* the EMA's weights: part of the digest (they differ from the raw ones after 2+ steps) */
    ck_assert_int_eq(fr_ema_copy_to(&be, &ema, g.params, g.n_params), FR_OK);
    ck_assert_int_eq(fr_gmflow_net_digest(&g, &de), FR_OK);
    if (steps > 1) ck_assert(de != dg);
    dg ^= de * 0x9e3779b97f4a7c15ull;
    fr_ema_free(&ema);
    fr_adamw_state_free(&opt);
    fr_gmflow_net_free(&g);
    fr_backend_close(&be);
    return dg;
}

static uint64_t run(const char *bk, int threads, int steps, int split, float *samples)
{
    return run_task("checkerboard", bk, threads, steps, split, samples);
}

START_TEST(test_backends_bitwise_and_resume)
{
    float s_ref[128], s_o[128];
    const uint64_t d_ref = run("ref", 1, 4, 0, s_ref);
    const char *bks[] = {"opt", "cuda-emu"};
    const int th[] = {3, 1};
    for (int k = 0; k < 2; k++) {
        const uint64_t d = run(bks[k], th[k], 4, 0, s_o);
        ck_assert_msg(d == d_ref, "%s: parameters %016llx, ref %016llx", bks[k], (unsigned long long)d,
                      (unsigned long long)d_ref);
        ck_assert_msg(memcmp(s_o, s_ref, sizeof s_ref) == 0, "%s: samples differ from ref", bks[k]);
    }
    const uint64_t d_res = run("opt", 2, 4, 2, s_o);
    ck_assert_msg(d_res == d_ref, "resumed at 2: %016llx, uninterrupted %016llx", (unsigned long long)d_res,
                  (unsigned long long)d_ref);
    ck_assert(memcmp(s_o, s_ref, sizeof s_ref) == 0);
    /* training moved the parameters: a run of 1 step has another digest */
    ck_assert(run("opt", 1, 1, 0, s_o) != d_ref);
    for (int i = 0; i < 128; i++) ck_assert(isfinite(s_ref[i]));
}
END_TEST

static const char k_tiny[] = "--task checkerboard --batch 8 --components 3 --embed 8 --hidden 16 --layers 2";

/* `gmflow train` of the tiny network for 4 steps into DIR/g0 (ref, output out) and DIR/g1 (opt
 * with threads threads, output out2). */
static void train_ref_opt(const char *dir, int threads, char *out, char *out2, size_t n)
{
    char args[1024];
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "gmflow train %s --out %s/g%d.safetensors --steps 4 --backend %s --threads %d", k_tiny,
                 dir, k, k ? "opt" : "ref", k ? threads : 1);
        ck_assert_msg(fr_test_run_cli(args, k ? out2 : out, n) == 0, "%s: %s", args, k ? out2 : out);
    }
}

START_TEST(test_model_out_dim)
{
    fr_model_config c;
    ck_assert_int_eq(fr_model_preset("shapes-s", 768, 10, &c), FR_OK);
    ck_assert_int_eq(fr_model_out_dim(&c), 768);
    c.out_D = 100;
    ck_assert_int_eq(fr_model_config_check(&c), FR_ERR_ARG); /* the x0 head */
    ck_assert_msg(strstr(fr_last_error(), "out_D") != NULL, "%s", fr_last_error());
    c.head = FR_HEAD_VELOCITY, c.sigma_min = 0.0f;
    ck_assert_int_eq(fr_model_config_check(&c), FR_OK);
    const int64_t base = fr_model_config_num_params(&c) - (c.H * 100 + 100);
    c.out_D = 0;
    ck_assert_int_eq(fr_model_config_num_params(&c) - (c.H * 768 + 768), base);
    fr_st_file f;
    fr_st_init(&f);
    ck_assert_int_eq(fr_model_config_to_meta(&c, &f), FR_OK);
    ck_assert_ptr_null(fr_st_get_meta(&f, "model.out_D"));
    fr_st_free(&f);
    c.out_D = 100;
    fr_st_init(&f);
    ck_assert_int_eq(fr_model_config_to_meta(&c, &f), FR_OK);
    fr_model_config back;
    ck_assert_int_eq(fr_model_config_from_meta(&f, &back), FR_OK);
    ck_assert_int_eq(back.out_D, 100);
    fr_st_free(&f);
}
END_TEST

START_TEST(test_image_zero_rows)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "opt", 0, 1), FR_OK);
    const fr_task *task;
    ck_assert_int_eq(fr_task_get("shapes", &task), FR_OK);
    fr_gmflow_net g;
    ck_assert_msg(fr_gmflow_net_new_image(&g, &be, K_IMG, "shapes-s", task, 3) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_gmflow_net_init(&g, 3), FR_OK);
    const int64_t W = fr_gm_width(K_IMG, task->D);
    float *x = calloc((size_t)(3 * task->D), sizeof *x), *rows = malloc(sizeof(float) * (size_t)(3 * W));
    float t[3] = {900.0f, 300.0f, 10.0f};
    int pr[3] = {0, 7, 51};
    for (int i = 0; i < 3 * task->D; i++) x[i] = (float)((i % 17) - 8) / 8.0f;
    ck_assert_int_eq(fr_gmflow_net_forward_c(&g, 3, t, x, pr, rows), FR_OK);
    for (int64_t j = 0; j < 3 * W; j++) ck_assert_msg(rows[j] == 0.0f, "entry %lld: %g", (long long)j, (double)rows[j]);
    /* a too-wide batch is refused naming the rows */
    ck_assert_int_eq(fr_gmflow_net_forward_c(&g, 4, t, x, pr, rows), FR_ERR_ARG);
    free(x), free(rows);
    fr_gmflow_net_free(&g);
    /* a 2-D task is refused */
    const fr_task *cb;
    ck_assert_int_eq(fr_task_get("checkerboard", &cb), FR_OK);
    ck_assert_int_eq(fr_gmflow_net_new_image(&g, &be, K_IMG, "shapes-s", cb, 3), FR_ERR_ARG);
    fr_backend_close(&be);
}
END_TEST

/* The image network (docs/algorithms/gmflow.md §7): ref = opt (1, 3 threads) = cuda-emu, and a
 * run resumed through a checkpoint, bit for bit. */
START_TEST(test_image_bitwise_and_resume)
{
    const size_t n = (size_t)N_IMG * 768;
    float *s_ref = malloc(sizeof(float) * n), *s_o = malloc(sizeof(float) * n);
    const uint64_t d_ref = run_task("shapes", "ref", 1, 3, 0, s_ref);
    const char *bks[] = {"opt", "opt", "cuda-emu"};
    const int th[] = {1, 3, 1};
    for (int k = 0; k < 3; k++) {
        const uint64_t d = run_task("shapes", bks[k], th[k], 3, 0, s_o);
        ck_assert_msg(d == d_ref, "%s %d threads: parameters %016llx, ref %016llx", bks[k], th[k], (unsigned long long)d,
                      (unsigned long long)d_ref);
        ck_assert_msg(memcmp(s_o, s_ref, sizeof(float) * n) == 0, "%s: samples differ from ref", bks[k]);
    }
    const uint64_t d_res = run_task("shapes", "opt", 2, 3, 1, s_o);
    ck_assert_msg(d_res == d_ref, "resumed at 1: %016llx, uninterrupted %016llx", (unsigned long long)d_res,
                  (unsigned long long)d_ref);
    ck_assert(memcmp(s_o, s_ref, sizeof(float) * n) == 0);
    ck_assert(run_task("shapes", "opt", 1, 2, 0, s_o) != d_ref);
    for (size_t i = 0; i < n; i++) ck_assert(isfinite(s_ref[i]));
    free(s_ref), free(s_o);
}
END_TEST

/* The command on shapes: train on ref and opt (the same digest), sample with --swd (the accuracy
 * line and a .png grid), a bad preset named. */
START_TEST(test_cli_shapes)
{
    char dir[128], args[1024], out[8192], out2[8192];
    fr_test_mkdtemp(dir, sizeof dir, "gmflow-cli-shapes");
    const char *net = "--task shapes --batch 2 --components 2 --steps 2";
    snprintf(args, sizeof args, "gmflow train %s --out %s/g0.safetensors --backend ref", net, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s: %s", args, out);
    ck_assert_msg(strstr(out, "model preset shapes-s") != NULL, "%s", out);
    snprintf(args, sizeof args, "gmflow train %s --out %s/g1.safetensors --backend opt --threads 2", net, dir);
    ck_assert_msg(fr_test_run_cli(args, out2, sizeof out2) == 0, "%s: %s", args, out2);
    const char *da = strstr(out, "parameters digest"), *db = strstr(out2, "parameters digest");
    ck_assert_msg(da && db && strncmp(da, db, 34) == 0, "ref: %s\nopt: %s", out, out2);
    /* the image network's parameters are in its audit log, the same on ref and opt */
    snprintf(args, sizeof args, "audit %s/g0.audit.log %s/g1.audit.log", dir, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "identical through step 2") != NULL, "%s", out);
    snprintf(args, sizeof args, "%s/g0.audit.log", dir);
    size_t nlog;
    char *log = fr_test_slurp(args, &nlog);
    ck_assert_msg(strstr(log, "step 2 grad.gmflow.net.in.weight") && strstr(log, "step 2 optim.v.gmflow.net.in.weight"),
                  "%s", args);
    free(log);
    snprintf(args, sizeof args, "gmflow sample --ckpt %s/g0.safetensors --n 4 --steps 2 --swd 8 --out %s/s.png", dir, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "geneval accuracy (the detector, strict) over 4 samples") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "256 projections): ") != NULL, "%s", out);
    snprintf(args, sizeof args, "%s/s.png", dir);
    FILE *f = fopen(args, "rb");
    ck_assert_msg(f != NULL, "no %s", args);
    fclose(f);
    snprintf(args, sizeof args, "gmflow train %s --preset nope --out %s/g2.safetensors", net, dir);
    ck_assert_int_eq(fr_test_run_cli(args, out, sizeof out), 2);
    ck_assert_msg(strstr(out, "nope") != NULL, "%s", out);
    fr_test_rmtree(dir);
}
END_TEST

/* The command: train on ref and opt (the same digest), continue a checkpoint on cuda-emu to the
 * bytes of the uninterrupted run, sample to a file and a PNG with --swd, usage errors. */
START_TEST(test_cli)
{
    char dir[128], args[1024], out[8192], out2[8192], a[256], b[256];
    fr_test_mkdtemp(dir, sizeof dir, "gmflow-cli");
    const char *net = k_tiny;
    train_ref_opt(dir, 2, out, out2, sizeof out);
    const char *da = strstr(out, "parameters digest"), *db = strstr(out2, "parameters digest");
    ck_assert_msg(da && db && strncmp(da, db, 34) == 0, "ref: %s\nopt: %s", out, out2);
    /* 2 steps, then continued to 4 on cuda-emu: the same file as 4 steps at once */
    snprintf(args, sizeof args, "gmflow train %s --out %s/h.safetensors --steps 2 --backend ref", net, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    snprintf(args, sizeof args, "gmflow train --ckpt %s/h.safetensors --out %s/h4.safetensors --steps 4 --backend cuda-emu", dir, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    snprintf(a, sizeof a, "%s/g0.safetensors", dir);
    snprintf(b, sizeof b, "%s/h4.safetensors", dir);
    size_t na = 0, nb = 0;
    void *fa = fr_test_slurp(a, &na), *fb = fr_test_slurp(b, &nb);
    ck_assert_msg(fa && fb && na == nb && memcmp(fa, fb, na) == 0, "%s and %s differ", a, b);
    free(fa), free(fb);
    snprintf(args, sizeof args, "gmflow sample --ckpt %s/g0.safetensors --n 64 --steps 2 --out %s/s.safetensors --swd 64", dir, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    const char *w = strstr(out, "256 projections): ");
    double d = -1;
    ck_assert_msg(w && sscanf(w + 18, "%lf", &d) == 1 && d > 0 && isfinite(d), "%s", out);
    snprintf(args, sizeof args, "gmflow sample --ckpt %s/g0.safetensors --n 64 --out %s/s.png", dir, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    snprintf(a, sizeof a, "%s/s.png", dir);
    FILE *f = fopen(a, "rb");
    ck_assert_msg(f != NULL, "no %s", a);
    fclose(f);
    ck_assert_int_eq(fr_test_run_cli("gmflow train --steps 1", out, sizeof out), 2);
    ck_assert_int_eq(fr_test_run_cli("gmflow frobnicate", out, sizeof out), 2);
    ck_assert_int_eq(fr_test_run_cli("gmflow train --help", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "--components") != NULL, "%s", out);
    fr_test_rmtree(dir);
}
END_TEST

/* The audit log of `gmflow train` (flowrl/audit_train.h): ref = opt (3 threads) record for record;
 * a run killed during step 3 whose checkpoint holds step 2, continued to 4, equals the
 * uninterrupted log; another seed differs from step 1's loss on. */
START_TEST(test_audit)
{
    char dir[128], args[1024], out[8192], out2[8192], a[256], b[256], c[256];
    fr_test_mkdtemp(dir, sizeof dir, "gmflow-audit");
    const char *net = k_tiny;
    train_ref_opt(dir, 3, out, out2, sizeof out);
    snprintf(a, sizeof a, "%s/g0.audit.log", dir);
    snprintf(b, sizeof b, "%s/g1.audit.log", dir);
    fr_test_audit_identical(a, b, 4);
    snprintf(args, sizeof args, "gmflow train %s --out %s/h.safetensors --steps 2 --backend ref", net, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    snprintf(c, sizeof c, "%s/h.audit.log", dir);
    fr_test_audit_killed(a, c, 3);
    snprintf(args, sizeof args, "gmflow train --ckpt %s/h.safetensors --out %s/h4.safetensors --steps 4 --backend opt "
             "--threads 3 --audit %s/h4.log", dir, dir, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    snprintf(c, sizeof c, "%s/h4.log", dir);
    fr_test_audit_identical(a, c, 4);
    /* --checkpoint-every 2 writes --out at step 2 (the bytes a 2-step run writes, which continue
     * as above) and changes nothing else: the last file and the log are the uninterrupted run's */
    snprintf(args, sizeof args, "gmflow train %s --out %s/k.safetensors --steps 4 --checkpoint-every 2 --backend opt", net, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "/k.safetensors: step 2\n") && !strstr(out, "/k.safetensors: step 4\n"), "%s", out);
    snprintf(b, sizeof b, "%s/k.safetensors", dir);
    snprintf(c, sizeof c, "%s/g0.safetensors", dir);
    fr_test_assert_same_bytes(b, c);
    snprintf(c, sizeof c, "%s/k.audit.log", dir);
    fr_test_audit_identical(a, c, 4);
    snprintf(args, sizeof args, "gmflow train %s --out %s/s.safetensors --steps 4 --seed 2", net, dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%s", out);
    snprintf(c, sizeof c, "%s/s.audit.log", dir);
    fr_test_audit_differs_at(a, c, 1, "loss");
    fr_test_rmtree(dir);
}
END_TEST

Suite *suite_gmflow(void)
{
    Suite *s = suite_create("gmflow");
    TCase *tc = tcase_create("gmflow");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_coefs_example);
    tcase_add_test(tc, test_tlow_zero_is_x0_gm);
    tcase_add_test(tc, test_k1_gaussian_nll);
    tcase_add_test(tc, test_nll_grad_fd);
    tcase_add_test(tc, test_embedding);
    tcase_add_test(tc, test_zero_init_heads);
    tcase_add_test(tc, test_backends_bitwise_and_resume);
    tcase_add_test(tc, test_cli);
    tcase_add_test(tc, test_audit);
    tcase_add_test(tc, test_model_out_dim);
    tcase_add_test(tc, test_image_zero_rows);
    tcase_add_test(tc, test_image_bitwise_and_resume);
    tcase_add_test(tc, test_cli_shapes);
    suite_add_tcase(s, tc);
    return s;
}
