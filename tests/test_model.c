/* The residual MLP (flowrl/model.h) and its training state (flowrl/optim.h): parameter
 * counts, init, forward against an independent double-precision forward, backward against
 * central finite differences of that double forward, micro-batch accumulation, AdamW,
 * clipping, EMA and checkpoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/checkpoint.h"
#include "flowrl/dist.h"
#include "flowrl/model.h"
#include "flowrl/model_elem.h"
#include "flowrl/optim.h"
#include "flowrl/optim_step.h"
#include "flowrl/safetensors.h"
#include "tests/suites.h"
#include "tests/model_testutil.h"
#include "tests/testutil.h"

/* The small config of the gradient tests: every tensor has a handful of elements. */
static fr_model_config small_cfg(fr_act act, int64_t n_blocks)
{
    fr_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.preset, sizeof c.preset, "custom");
    c.D = 3, c.n_cond = 3, c.n_slots = 1, c.H = 8, c.F = 12, c.n_blocks = n_blocks, c.E = 6;
    c.act = act, c.pred = FR_PRED_VELOCITY, c.ln_eps = 1e-5f;
    return c;
}

/* Replaces every parameter with seeded random values (the init zeroes fc2 and out, which
 * would leave most gradients at exactly 0 and the test blind): weights U(-0.7, 0.7),
 * LN weights U(0.6, 1.4). Drawn on the host, copied into the model's backend memory. */
static void randomize(fr_model *m, uint64_t seed)
{
    uint64_t s = seed;
    const int64_t total = fr_model_arena_floats(m);
    float *host = calloc((size_t)total, sizeof *host);
    ck_assert(host != NULL);
    for (int i = 0; i < m->n_params; i++) {
        float *p = host + ((float *)m->params[i].value->data - m->arena_values);
        int is_ln = strstr(m->params[i].name, "ln.weight") || !strcmp(m->params[i].name, "norm.weight");
        for (int64_t j = 0; j < fr_tensor_numel(m->params[i].value); j++)
            p[j] = is_ln ? fr_test_uniform(&s, 0.6f, 1.4f) : fr_test_uniform(&s, -0.7f, 0.7f);
    }
    ck_assert(fr_h2d(m->be, m->arena_values, host, (size_t)total * sizeof *host) == FR_OK);
    free(host);
}

/* ---- the double-precision reference forward --------------------------------------- */

typedef struct {
    fr_model_config cfg;
    int n;
    const char **names;
    double **p;
    int64_t *numel;
} dnet;

static void dnet_from(dnet *d, const fr_model *m)
{
    d->cfg = m->cfg;
    d->n = m->n_params;
    d->names = calloc((size_t)d->n, sizeof *d->names);
    d->p = calloc((size_t)d->n, sizeof *d->p);
    d->numel = calloc((size_t)d->n, sizeof *d->numel);
    for (int i = 0; i < d->n; i++) {
        d->names[i] = m->params[i].name;
        d->numel[i] = fr_tensor_numel(m->params[i].value);
        d->p[i] = malloc((size_t)d->numel[i] * sizeof(double));
        const float *v = m->params[i].value->data;
        for (int64_t j = 0; j < d->numel[i]; j++) d->p[i][j] = v[j];
    }
}

static void dnet_free(dnet *d)
{
    for (int i = 0; i < d->n; i++) free(d->p[i]);
    free(d->p);
    free(d->names);
    free(d->numel);
}

/* Looked up by name, so the reference also checks the documented names and shapes. */
static const double *dp(const dnet *d, const char *name, int64_t numel)
{
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->names[i], name)) {
            ck_assert_msg(d->numel[i] == numel, "%s has %lld elements, expected %lld", name,
                          (long long)d->numel[i], (long long)numel);
            return d->p[i];
        }
    ck_abort_msg("no parameter named %s", name);
    return NULL;
}

static double d_act(fr_act a, double x)
{
    switch (a) {
    case FR_ACT_SILU: return x / (1.0 + exp(-x));
    case FR_ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case FR_ACT_TANH: return tanh(x);
    default: ck_abort_msg("activation %d not used by these tests", (int)a); return 0;
    }
}

/* y (B,N) = z (B,K) W^T + b. */
static void d_linear(int64_t B, int64_t N, int64_t K, const double *z, const double *w,
                     const double *b, double *y)
{
    for (int64_t i = 0; i < B; i++)
        for (int64_t o = 0; o < N; o++) {
            double acc = b[o];
            for (int64_t k = 0; k < K; k++) acc += z[i * K + k] * w[o * K + k];
            y[i * N + o] = acc;
        }
}

static void d_layernorm(int64_t B, int64_t N, const double *x, const double *g, const double *b,
                        double eps, double *y)
{
    for (int64_t i = 0; i < B; i++) {
        double mu = 0, var = 0;
        for (int64_t j = 0; j < N; j++) mu += x[i * N + j];
        mu /= (double)N;
        for (int64_t j = 0; j < N; j++) var += (x[i * N + j] - mu) * (x[i * N + j] - mu);
        var /= (double)N;
        for (int64_t j = 0; j < N; j++)
            y[i * N + j] = (x[i * N + j] - mu) / sqrt(var + eps) * g[j] + b[j];
    }
}

/* The network of flowrl/model.h, written from its comment; returns sum(w * out). */
static double d_forward(const dnet *d, int64_t B, const double *x, const float *t,
                        const int32_t *c, const double *w, double *out)
{
    const fr_model_config *f = &d->cfg;
    int64_t D = f->D, H = f->H, F = f->F, E = f->E, half = E / 2;
    double *h = calloc((size_t)(B * H), sizeof *h), *tmp = calloc((size_t)(B * H), sizeof *h);
    double *z = calloc((size_t)(B * (H > E ? H : E)), sizeof *h);
    double *u = calloc((size_t)(B * F), sizeof *h), *ln = calloc((size_t)(B * H), sizeof *h);
    double *o = calloc((size_t)(B * D), sizeof *o);
    d_linear(B, H, D, x, dp(d, "in.weight", H * D), dp(d, "in.bias", H), h);
    for (int64_t i = 0; i < B; i++)
        for (int64_t k = 0; k < half; k++) {
            double fr = exp(-log(10000.0) * (double)k / (double)half);
            z[i * E + k] = cos((double)t[i] * fr);
            z[i * E + half + k] = sin((double)t[i] * fr);
        }
    d_linear(B, H, E, z, dp(d, "time.fc1.weight", H * E), dp(d, "time.fc1.bias", H), tmp);
    for (int64_t j = 0; j < B * H; j++) z[j] = d_act(f->act, tmp[j]);
    d_linear(B, H, H, z, dp(d, "time.fc2.weight", H * H), dp(d, "time.fc2.bias", H), tmp);
    const double *table = dp(d, "cond.weight", (f->n_cond + 1) * H);
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < H; j++) {
            h[i * H + j] += tmp[i * H + j];
            for (int64_t s = 0; s < f->n_slots; s++) h[i * H + j] += table[c[i * f->n_slots + s] * H + j];
        }
    for (int64_t k = 0; k < f->n_blocks; k++) {
        char nm[6][64];
        const char *suf[6] = {"ln.weight", "ln.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
        for (int q = 0; q < 6; q++) snprintf(nm[q], sizeof nm[q], "blocks.%lld.%s", (long long)k, suf[q]);
        d_layernorm(B, H, h, dp(d, nm[0], H), dp(d, nm[1], H), (double)f->ln_eps, ln);
        d_linear(B, F, H, ln, dp(d, nm[2], F * H), dp(d, nm[3], F), u);
        for (int64_t j = 0; j < B * F; j++) u[j] = d_act(f->act, u[j]);
        d_linear(B, H, F, u, dp(d, nm[4], H * F), dp(d, nm[5], H), tmp);
        for (int64_t j = 0; j < B * H; j++) h[j] += tmp[j];
    }
    d_layernorm(B, H, h, dp(d, "norm.weight", H), dp(d, "norm.bias", H), (double)f->ln_eps, ln);
    d_linear(B, D, H, ln, dp(d, "out.weight", D * H), dp(d, "out.bias", D), o);
    if (fr_model_eps_head(f)) /* o is x̂0: ε̂ = (x − √ᾱ·x̂0) / max(√(1−ᾱ), sigma_min), ᾱ in double */
        for (int64_t i = 0; i < B; i++) {
            const int64_t n = f->n_train, ti = t[i] < 0.0f ? 0 : t[i] > (float)(n - 1) ? n - 1 : (int64_t)floor(t[i]);
            double ab = 1.0;
            for (int64_t k = 0; k <= ti; k++) /* linear betas: β_k = β0 + (β1 − β0)·k/(n − 1) */
                ab *= 1.0 - (f->beta_start + (f->beta_end - f->beta_start) * (double)k / (double)(n - 1));
            const double a = sqrt(ab), sd = sqrt(1.0 - ab), s = sd > f->sigma_min ? sd : (double)f->sigma_min;
            for (int64_t j = 0; j < D; j++) o[i * D + j] = (x[i * D + j] - a * o[i * D + j]) / s;
        }
    else if (f->head == FR_HEAD_X0) /* o is x̂0: v = (x − x̂0) / max(t/1000, sigma_min) */
        for (int64_t i = 0; i < B; i++) {
            double sg = (double)t[i] / 1000.0, dn = sg > f->sigma_min ? sg : (double)f->sigma_min;
            for (int64_t j = 0; j < D; j++) o[i * D + j] = (x[i * D + j] - o[i * D + j]) / dn;
        }
    double L = 0;
    for (int64_t j = 0; j < B * D; j++) L += w[j] * o[j];
    if (out) memcpy(out, o, (size_t)(B * D) * sizeof *o);
    free(h), free(tmp), free(z), free(u), free(ln), free(o);
    return L;
}

/* ---- finite-difference check of the whole network --------------------------------- */

/* Float backward vs the central difference (L(p+eps) - L(p-eps)) / 2eps of the double
 * forward, for EVERY parameter element and every input element of a small net.
 * eps = 1e-5: truncation error ~eps^2 |L'''| ~ 1e-10, double rounding ~1e-16/eps ~ 1e-11,
 * so the FD value is exact to ~1e-9 and the comparison measures only the float32
 * forward/backward. That error is a few float ulps (~1e-7 relative) per op, amplified by
 * the depth (about 12 ops) and by sums of O(1) terms; the tolerance
 *   |g - g_fd| <= 5e-4 |g_fd| + 5e-5 max_j |g_fd_j| (over the tensor)
 * was measured to leave a margin of 30x or more (FLOWRL_TEST_VERBOSE=1 prints the worst
 * error / tolerance; 0.03 at most for these four configs), while a wrong formula (a dropped
 * term, a transposed weight, a wrong index) gives errors of the order of the tensor's
 * scale. Each tensor
 * must also have a non-negligible gradient (scale > 1e-3), so the check is never vacuous;
 * NaN fails every comparison. Inputs: x ~ U(-1.5, 1.5), t ~ U(0, 1000), all ids incl. the
 * null id, loss L = sum(w * out), w ~ U(-1, 1). */
static void fd_check(fr_act act, int64_t n_blocks, fr_head head, fr_pred pred, uint64_t seed)
{
    fr_backend *be = fr_test_ref_be();
    fr_model_config cfg = small_cfg(act, n_blocks);
    cfg.head = head;
    cfg.sigma_min = head == FR_HEAD_X0 ? 0.05f : 0.0f;
    const int eps_head = head == FR_HEAD_X0 && pred == FR_PRED_EPSILON;
    if (eps_head) fr_test_eps_head(&cfg);
    cfg.n_slots = 2; /* the condition embedding sums two table rows per sample */
    fr_model m;
    ck_assert_msg(fr_model_init(&m, fr_test_ref_be(), &cfg, 7) == FR_OK, "%s", fr_last_error());
    randomize(&m, seed);
    enum { B = 5 };
    int64_t D = cfg.D;
    uint64_t s = seed ^ 0xABCDEFull;
    float x[B * 3], t[B], w[B * 3], out[B * 3], dx[B * 3];
    double xd[B * 3], wd[B * 3], outd[B * 3];
    int32_t c[B * 2] = {0, 1, 1, 1, 2, 0, 3, 3, 1, 2}; /* 3 = the null id; (B, n_slots) */
    for (int i = 0; i < B * D; i++) {
        x[i] = fr_test_uniform(&s, -1.5f, 1.5f), xd[i] = x[i];
        w[i] = fr_test_uniform(&s, -1.0f, 1.0f), wd[i] = w[i];
    }
    for (int i = 0; i < B; i++) t[i] = fr_test_uniform(&s, 0.0f, 1000.0f);
    t[1] = 20.0f; /* x0 head: sigma = 0.02 < sigma_min, the floored divisor */
    if (eps_head) { /* integer steps as DDPM feeds them; t = 3: √(1−ᾱ) = 0.023 < sigma_min, floored */
        for (int i = 0; i < B; i++) t[i] = floorf(t[i]);
        t[1] = 3.0f, t[3] = 999.0f;
    }

    fr_model_ws ws;
    ck_assert(fr_model_ws_alloc(&ws, &m, B, 1) == FR_OK);
    fr_model_zero_grad(&m, be);
    ck_assert_msg(fr_model_forward(&m, be, &ws, B, x, t, c, out) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_model_backward(&m, be, &ws, w, dx) == FR_OK, "%s", fr_last_error());

    dnet d;
    dnet_from(&d, &m);
    d_forward(&d, B, xd, t, c, wd, outd);
    /* Forward: float vs double. The float sinusoid argument t * f_k (t up to 1000) is off
     * by up to half an ulp of 1000 (3e-5 rad), which moves the features by as much; the
     * rest is float rounding. 1e-3 (1 + |out|) bounds both with margin. */
    for (int i = 0; i < B * D; i++)
        ck_assert_msg(fabs((double)out[i] - outd[i]) <= 1e-3 * (1.0 + fabs(outd[i])),
                      "act %d seed %llu: out[%d] = %.9g, double reference %.9g", (int)act,
                      (unsigned long long)seed, i, (double)out[i], outd[i]);

    const double eps = 1e-5;
    double worst = 0; /* largest err / tolerance, printed with FLOWRL_TEST_VERBOSE=1 */
    for (int i = 0; i <= m.n_params; i++) {
        /* i == n_params: the input x. */
        int64_t n = i < m.n_params ? d.numel[i] : B * D;
        double *p = i < m.n_params ? d.p[i] : xd;
        const float *g = i < m.n_params ? m.params[i].grad->data : dx;
        const char *name = i < m.n_params ? d.names[i] : "input x";
        double *fd = malloc((size_t)n * sizeof *fd), scale = 0;
        for (int64_t j = 0; j < n; j++) {
            double keep = p[j];
            p[j] = keep + eps;
            double lp = d_forward(&d, B, xd, t, c, wd, NULL);
            p[j] = keep - eps;
            double lm = d_forward(&d, B, xd, t, c, wd, NULL);
            p[j] = keep;
            fd[j] = (lp - lm) / (2 * eps);
            if (fabs(fd[j]) > scale) scale = fabs(fd[j]);
        }
        ck_assert_msg(scale > 1e-3, "act %d seed %llu: %s has no gradient to check (max %g)",
                      (int)act, (unsigned long long)seed, name, scale);
        for (int64_t j = 0; j < n; j++) {
            double err = fabs((double)g[j] - fd[j]);
            if (err / (5e-4 * fabs(fd[j]) + 5e-5 * scale) > worst)
                worst = err / (5e-4 * fabs(fd[j]) + 5e-5 * scale);
            ck_assert_msg(err <= 5e-4 * fabs(fd[j]) + 5e-5 * scale,
                          "act %d blocks %lld head %d seed %llu: d%s[%lld] = %.9g, finite difference %.9g",
                          (int)act, (long long)n_blocks, (int)head, (unsigned long long)seed, name,
                          (long long)j, (double)g[j], fd[j]);
        }
        free(fd);
    }
    if (getenv("FLOWRL_TEST_VERBOSE"))
        fprintf(stderr, "fd act %d blocks %lld head %d: worst error / tolerance = %.3g\n",
                (int)act, (long long)n_blocks, (int)head, worst);
    dnet_free(&d);
    fr_model_ws_free(&ws);
    fr_model_free(&m);
}

START_TEST(test_fd_silu) { fd_check(FR_ACT_SILU, 2, FR_HEAD_VELOCITY, FR_PRED_VELOCITY, 101); }
END_TEST
START_TEST(test_fd_gelu) { fd_check(FR_ACT_GELU_TANH, 2, FR_HEAD_VELOCITY, FR_PRED_VELOCITY, 202); }
END_TEST
START_TEST(test_fd_tanh_one_block) { fd_check(FR_ACT_TANH, 1, FR_HEAD_VELOCITY, FR_PRED_VELOCITY, 303); }
END_TEST
START_TEST(test_fd_no_blocks) { fd_check(FR_ACT_SILU, 0, FR_HEAD_VELOCITY, FR_PRED_VELOCITY, 404); }
END_TEST
START_TEST(test_fd_x0_head) { fd_check(FR_ACT_GELU_TANH, 2, FR_HEAD_X0, FR_PRED_VELOCITY, 505); }
END_TEST
START_TEST(test_fd_x0_head_no_blocks) { fd_check(FR_ACT_SILU, 0, FR_HEAD_X0, FR_PRED_VELOCITY, 606); }
END_TEST
/* The eps x0 head: ε̂ = (x − √ᾱ_t·x̂0) / max(√(1−ᾱ_t), sigma_min) against ᾱ_t computed in double
 * from the linear betas, rows at t = 3 (the floor), 999 and in between. */
START_TEST(test_fd_eps_head) { fd_check(FR_ACT_GELU_TANH, 2, FR_HEAD_X0, FR_PRED_EPSILON, 707); }
END_TEST
START_TEST(test_fd_eps_head_no_blocks) { fd_check(FR_ACT_SILU, 0, FR_HEAD_X0, FR_PRED_EPSILON, 808); }
END_TEST

/* The eps x0 head's config: the schedule is checked, travels in the ddpm.* keys and comes back
 * equal; a file without them is refused naming the key; an old-format epsilon checkpoint
 * (no model.head) loads as the velocity head with no schedule; the table's floor. */
START_TEST(test_eps_head_config)
{
    fr_model_config e = small_cfg(FR_ACT_SILU, 1);
    fr_test_eps_head(&e);
    ck_assert_msg(fr_model_config_check(&e) == FR_OK, "%s", fr_last_error());
    ck_assert(fr_model_eps_head(&e));
    fr_model_config bad = e;
    bad.n_train = 1;
    ck_assert_int_eq(fr_model_config_check(&bad), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "n_train") != NULL, "%s", fr_last_error());
    bad = e, bad.beta_end = 1.5;
    ck_assert_int_eq(fr_model_config_check(&bad), FR_ERR_ARG);
    bad = e, bad.ddpm_betas = (fr_ddpm_betas)5;
    ck_assert_int_eq(fr_model_config_check(&bad), FR_ERR_ARG);
    bad = e, bad.head = FR_HEAD_VELOCITY, bad.sigma_min = 0.0f; /* a schedule without the head */
    ck_assert_int_eq(fr_model_config_check(&bad), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "n_train") != NULL, "%s", fr_last_error());

    fr_st_file f;
    fr_st_init(&f);
    ck_assert(fr_model_config_to_meta(&e, &f) == FR_OK);
    ck_assert_str_eq(fr_st_get_meta(&f, "ddpm.schedule"), "linear");
    ck_assert_str_eq(fr_st_get_meta(&f, "ddpm.beta_start"), "0.0001"); /* pretraining's text */
    ck_assert_str_eq(fr_st_get_meta(&f, "ddpm.beta_end"), "0.02");
    ck_assert_str_eq(fr_st_get_meta(&f, "ddpm.n_train"), "1000");
    fr_model_config back;
    ck_assert_msg(fr_model_config_from_meta(&f, &back) == FR_OK, "%s", fr_last_error());
    ck_assert(memcmp(&back, &e, sizeof e) == 0);
    fr_model_config sl = e;
    sl.ddpm_betas = FR_DDPM_SCALED_LINEAR, sl.beta_start = 0.00085, sl.beta_end = 0.012;
    fr_st_file g;
    fr_st_init(&g);
    ck_assert(fr_model_config_to_meta(&sl, &g) == FR_OK);
    ck_assert_str_eq(fr_st_get_meta(&g, "ddpm.schedule"), "scaled_linear");
    ck_assert(fr_model_config_from_meta(&g, &back) == FR_OK);
    ck_assert(memcmp(&back, &sl, sizeof sl) == 0);
    fr_st_free(&g);
    ck_assert(fr_st_set_meta(&f, "ddpm.schedule", "cosine") == FR_OK);
    ck_assert_int_eq(fr_model_config_from_meta(&f, &back), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "ddpm.schedule") != NULL, "%s", fr_last_error());
    fr_st_free(&f);
    fr_st_init(&f); /* the head's keys without the schedule's */
    ck_assert(fr_model_config_to_meta(&e, &f) == FR_OK);
    fr_st_file h;
    fr_st_init(&h);
    for (size_t i = 0; i < f.n_meta; i++)
        if (strncmp(f.meta[i].key, "ddpm.n_train", 12) != 0) ck_assert(fr_st_set_meta(&h, f.meta[i].key, f.meta[i].value) == FR_OK);
    ck_assert_int_eq(fr_model_config_from_meta(&h, &back), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "ddpm.n_train") != NULL, "%s", fr_last_error());
    fr_st_free(&h);
    fr_st_free(&f);

    /* an epsilon checkpoint of the old format: no model.head, ddpm.* from pretraining */
    fr_model_config old = small_cfg(FR_ACT_SILU, 1);
    old.pred = FR_PRED_EPSILON;
    fr_st_init(&f);
    ck_assert(fr_model_config_to_meta(&old, &f) == FR_OK);
    ck_assert_ptr_null(fr_st_get_meta(&f, "model.head"));
    ck_assert_ptr_null(fr_st_get_meta(&f, "ddpm.schedule"));
    ck_assert(fr_st_set_meta(&f, "ddpm.schedule", "linear") == FR_OK);
    ck_assert(fr_st_set_meta(&f, "ddpm.n_train", "1000") == FR_OK);
    ck_assert_msg(fr_model_config_from_meta(&f, &back) == FR_OK, "%s", fr_last_error());
    ck_assert(memcmp(&back, &old, sizeof old) == 0);
    ck_assert_int_eq(back.head, FR_HEAD_VELOCITY);
    fr_st_free(&f);

    /* the table: √ᾱ and the floored √(1−ᾱ) from float32 betas; t = 0: √β_0 = 0.01 floored to
     * 0.05, t = 999: ᾱ ≈ 4e-5 */
    float tab[2000];
    ck_assert(fr_model_eps_head_table(&e, tab) == FR_OK);
    ck_assert(fabsf(tab[0] - sqrtf(1.0f - 1e-4f)) <= 1e-7f);
    ck_assert(tab[1000] == 0.05f);
    ck_assert(fabs(tab[999] - 0.00635) < 2e-4 && fabs(tab[1999] - 1.0) < 1e-4);
    int floored = 0;
    for (int i = 0; i < 1000; i++) floored += tab[1000 + i] == 0.05f;
    ck_assert_int_eq(floored, 11); /* √(1−ᾱ_t) < 0.05 for t = 0 .. 10 with the linear betas */
    /* a NaN timestep reads no row and makes the row's coefficients NaN (its output NaN) */
    float ca, cs;
    ck_assert_int_eq(fr_eps_head_row(NAN, 1000), -1);
    fr_eps_head_coefs(tab, 1000, NAN, &ca, &cs);
    ck_assert(isnan(ca) && isnan(cs));
    fr_eps_head_coefs(tab, 1000, 1e9f, &ca, &cs);
    ck_assert(ca == tab[999] && cs == tab[1999]);
}
END_TEST

/* ---- counts, init, forward --------------------------------------------------------- */

/* Counted from the architecture, independently of core/model_config.c:
 * in H(D+1), time H(E+1) + H(H+1), cond (n_cond+1)H, per block 2H + F(H+1) + H(F+1),
 * head 2H + D(H+1). */
static int64_t expected_params(int64_t D, int64_t nc, int64_t H, int64_t F, int64_t nb, int64_t E)
{
    return H * (D + 1) + H * (E + 1) + H * (H + 1) + (nc + 1) * H +
           nb * (2 * H + F * (H + 1) + H * (F + 1)) + 2 * H + D * (H + 1);
}

START_TEST(test_param_counts)
{
    struct {
        const char *name;
        int64_t D, nc, H, F, nb, E;
    } rows[] = {
        {"gmm2d-s", 2, 8, 64, 128, 3, 32},
        {"shapes-s", 768, 64, 256, 512, 3, 64},
        {"shapes-m", 768, 64, 512, 1024, 4, 128},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        fr_model_config c;
        ck_assert_msg(fr_model_preset(rows[i].name, rows[i].D, rows[i].nc, &c) == FR_OK, "%s",
                      fr_last_error());
        ck_assert(c.H == rows[i].H && c.F == rows[i].F && c.n_blocks == rows[i].nb &&
                  c.E == rows[i].E && c.D == rows[i].D && c.n_cond == rows[i].nc);
        int64_t want = expected_params(rows[i].D, rows[i].nc, rows[i].H, rows[i].F, rows[i].nb, rows[i].E);
        ck_assert_int_eq(fr_model_config_num_params(&c), want);
        fr_model m;
        ck_assert(fr_model_alloc(&m, fr_test_ref_be(), &c) == FR_OK);
        ck_assert_int_eq(fr_model_num_params(&m), want);
        ck_assert_int_eq(m.n_params, 7 + 6 * rows[i].nb + 4);
        fr_model_free(&m);
    }
    fr_model_config c;
    ck_assert_int_eq(fr_model_preset("no-such", 2, 1, &c), FR_ERR_ARG);
    ck_assert_int_eq(fr_model_preset("gmm2d-s", 0, 1, &c), FR_ERR_ARG);
    c = small_cfg(FR_ACT_SILU, 1);
    c.E = 5;
    ck_assert_int_eq(fr_model_config_check(&c), FR_ERR_ARG);
}
END_TEST

START_TEST(test_names_and_shapes)
{
    fr_model_config c = small_cfg(FR_ACT_SILU, 2);
    fr_model m;
    ck_assert(fr_model_alloc(&m, fr_test_ref_be(), &c) == FR_OK);
    struct {
        const char *name;
        int ndim;
        int64_t r, k;
    } want[] = {
        {"in.weight", 2, 8, 3},        {"in.bias", 1, 8, 1},
        {"time.fc1.weight", 2, 8, 6},  {"time.fc2.weight", 2, 8, 8},
        {"cond.weight", 2, 4, 8},      {"blocks.1.ln.weight", 1, 8, 1},
        {"blocks.1.fc1.weight", 2, 12, 8}, {"blocks.1.fc1.bias", 1, 12, 1},
        {"blocks.0.fc2.weight", 2, 8, 12}, {"norm.bias", 1, 8, 1},
        {"out.weight", 2, 3, 8},       {"out.bias", 1, 3, 1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        fr_param *p = fr_model_param(&m, want[i].name);
        ck_assert_msg(p != NULL, "missing %s", want[i].name);
        ck_assert_int_eq(p->value->ndim, want[i].ndim);
        ck_assert_int_eq(p->value->shape[0], want[i].r);
        if (want[i].ndim == 2) ck_assert_int_eq(p->value->shape[1], want[i].k);
        ck_assert(fr_tensor_same_shape(p->value, p->grad));
    }
    ck_assert_ptr_null(fr_model_param(&m, "blocks.2.ln.weight"));
    fr_model_free(&m);
}
END_TEST

START_TEST(test_init)
{
    fr_model_config c;
    ck_assert(fr_model_preset("gmm2d-s", 2, 8, &c) == FR_OK);
    fr_model a, b, d;
    ck_assert(fr_model_init(&a, fr_test_ref_be(), &c, 1234) == FR_OK);
    ck_assert(fr_model_init(&b, fr_test_ref_be(), &c, 1234) == FR_OK);
    ck_assert(fr_model_init(&d, fr_test_ref_be(), &c, 1235) == FR_OK);
    for (int i = 0; i < a.n_params; i++) {
        const char *nm = a.params[i].name;
        size_t bytes = fr_tensor_nbytes(a.params[i].value);
        ck_assert_msg(memcmp(a.params[i].value->data, b.params[i].value->data, bytes) == 0,
                      "%s differs between two inits with seed 1234", nm);
        const float *p = a.params[i].value->data;
        int64_t n = fr_tensor_numel(a.params[i].value);
        int random = strstr(nm, "weight") && !strstr(nm, "ln.") && strcmp(nm, "norm.weight") &&
                     !(strstr(nm, "blocks.") && strstr(nm, "fc2")) && strcmp(nm, "out.weight");
        if (random) {
            ck_assert_msg(memcmp(p, d.params[i].value->data, bytes) != 0,
                          "%s is the same for seeds 1234 and 1235", nm);
        }
        double bound = strcmp(nm, "cond.weight") ? 1.0 / sqrt((double)a.params[i].value->shape[1]) : 6.0;
        double sum = 0, sumsq = 0;
        for (int64_t j = 0; j < n; j++) {
            ck_assert(isfinite(p[j]));
            sum += p[j], sumsq += (double)p[j] * p[j];
            if (random) ck_assert_msg(fabs(p[j]) <= bound, "%s[%lld] = %g", nm, (long long)j, (double)p[j]);
            else if (strstr(nm, "ln.weight") || !strcmp(nm, "norm.weight")) ck_assert(p[j] == 1.0f);
            else ck_assert_msg(p[j] == 0.0f, "%s[%lld] = %g, expected 0", nm, (long long)j, (double)p[j]);
        }
        if (random && n >= 1000) {
            /* U(-b, b) has variance b^2/3; N(0,1) has 1. 1000+ samples: within 15%. */
            double var = sumsq / n - (sum / n) * (sum / n);
            double want = strcmp(nm, "cond.weight") ? bound * bound / 3.0 : 1.0;
            ck_assert_msg(fabs(var / want - 1.0) < 0.15, "%s: variance %g, expected %g", nm, var, want);
        }
    }
    /* Init is a function of (seed, parameter index): a deeper model starts with the same
     * first tensors. */
    fr_model e;
    c.n_blocks = 5;
    ck_assert(fr_model_init(&e, fr_test_ref_be(), &c, 1234) == FR_OK);
    for (int i = 0; i < 7 + 6 * 3; i++)
        ck_assert(memcmp(a.params[i].value->data, e.params[i].value->data,
                         fr_tensor_nbytes(a.params[i].value)) == 0);
    fr_model_free(&a), fr_model_free(&b), fr_model_free(&d), fr_model_free(&e);
}
END_TEST

START_TEST(test_forward_presets)
{
    fr_backend *be = fr_test_ref_be();
    struct {
        const char *name;
        int64_t D, nc;
        fr_head head;
    } rows[] = {{"gmm2d-s", 2, 8, FR_HEAD_VELOCITY}, {"shapes-s", 768, 20, FR_HEAD_X0}};
    for (size_t r = 0; r < 2; r++) {
        fr_model_config c;
        ck_assert(fr_model_preset(rows[r].name, rows[r].D, rows[r].nc, &c) == FR_OK);
        ck_assert_int_eq(c.head, rows[r].head);
        fr_model m;
        ck_assert(fr_model_init(&m, fr_test_ref_be(), &c, 5) == FR_OK);
        enum { B = 3 };
        int64_t D = c.D;
        float *x = malloc((size_t)(B * D) * sizeof *x), *out = malloc((size_t)(B * D) * sizeof *x);
        float t[B] = {0.0f, 500.0f, 1000.0f};
        int32_t cid[B] = {0, (int32_t)rows[r].nc, 1};
        uint64_t s = 77;
        for (int64_t i = 0; i < B * D; i++) x[i] = fr_test_uniform(&s, -2.0f, 2.0f);
        fr_model_ws ws;
        ck_assert(fr_model_ws_alloc(&ws, &m, B, 0) == FR_OK);
        ck_assert(fr_model_forward(&m, be, &ws, B, x, t, cid, out) == FR_OK);
        /* The output layer starts at zero: a velocity head outputs exactly 0, an x0 head
         * (x̂0 = 0) outputs x / max(sigma, sigma_min), sigma = 0, 0.5, 1. */
        float den[B] = {c.sigma_min, 0.5f, 1.0f};
        for (int64_t i = 0; i < B * D; i++) {
            float want = c.head == FR_HEAD_X0 ? x[i] / den[i / D] : 0.0f;
            ck_assert_msg(fr_test_bits_equal(out[i], want), "%s head %s: out[%lld] = %.9g, expected %.9g",
                          rows[r].name, fr_head_name(c.head), (long long)i, (double)out[i], (double)want);
        }
        randomize(&m, 9);
        ck_assert(fr_model_forward(&m, be, &ws, B, x, t, cid, out) == FR_OK);
        int nonzero = 0;
        for (int64_t i = 0; i < B * D; i++) {
            ck_assert_msg(isfinite(out[i]), "%s: out[%lld] = %g", rows[r].name, (long long)i, (double)out[i]);
            nonzero += out[i] != 0.0f;
        }
        ck_assert_int_gt(nonzero, B * D / 2);
        /* A bad id makes its own sample's output NaN (embed_gather_add) and leaves the other
         * rows' bits; too big a batch is refused. */
        float *good = malloc((size_t)(B * D) * sizeof *good);
        memcpy(good, out, (size_t)(B * D) * sizeof *good);
        int32_t bad[B] = {0, (int32_t)rows[r].nc + 1, 1};
        for (int k = 0; k < 2; k++, bad[1] = -1) {
            ck_assert(fr_model_forward(&m, be, &ws, B, x, t, bad, out) == FR_OK);
            for (int64_t i = 0; i < B * D; i++)
                ck_assert_msg(i / D == 1 ? isnan(out[i]) : fr_test_bits_equal(out[i], good[i]),
                              "%s, id %d: out[%lld] = %g", rows[r].name, (int)bad[1], (long long)i, (double)out[i]);
        }
        free(good);
        ck_assert_int_eq(fr_model_forward(&m, be, &ws, B + 1, x, t, cid, out), FR_ERR_ARG);
        /* An inference workspace has no activations for a backward. */
        ck_assert_int_eq(fr_model_backward(&m, be, &ws, out, NULL), FR_ERR_ARG);
        fr_model_ws_free(&ws);
        free(x), free(out);
        fr_model_free(&m);
    }
}
END_TEST

/* Rows are independent and the parameter gradients continue their batch chains from the
 * old value, so (a) the forward of a row does not depend on the batch, keep or not, and
 * (b) two micro-batches run in order give the same gradient bits as one batch. */
START_TEST(test_microbatch_bitwise)
{
    fr_backend *be = fr_test_ref_be();
    fr_model_config c = small_cfg(FR_ACT_GELU_TANH, 2);
    c.H = 16, c.F = 24, c.D = 5;
    if (_i == 1) c.head = FR_HEAD_X0, c.sigma_min = 0.05f; /* loop index: the three heads */
    if (_i == 2) fr_test_eps_head(&c);
    fr_model m;
    ck_assert(fr_model_init(&m, fr_test_ref_be(), &c, 3) == FR_OK);
    randomize(&m, 11);
    enum { B = 6, D = 5 };
    float x[B * D], t[B], w[B * D], out1[B * D], out2[B * D], out3[B * D], dx1[B * D], dx2[B * D];
    int32_t cid[B] = {3, 0, 2, 1, 3, 0};
    uint64_t s = 12;
    for (int i = 0; i < B * D; i++) x[i] = fr_test_uniform(&s, -1, 1), w[i] = fr_test_uniform(&s, -1, 1);
    for (int i = 0; i < B; i++) t[i] = fr_test_uniform(&s, 0, 1000);
    t[2] = 10.0f; /* below the x0 head's sigma_min */

    fr_model_ws ws, wi;
    ck_assert(fr_model_ws_alloc(&ws, &m, B, 1) == FR_OK);
    ck_assert(fr_model_ws_alloc(&wi, &m, B, 0) == FR_OK);
    int64_t np = fr_model_num_params(&m);
    (void)np;
    fr_model_zero_grad(&m, be);
    ck_assert(fr_model_forward(&m, be, &ws, B, x, t, cid, out1) == FR_OK);
    ck_assert(fr_model_backward(&m, be, &ws, w, dx1) == FR_OK);
    float **g1 = calloc((size_t)m.n_params, sizeof *g1);
    for (int i = 0; i < m.n_params; i++) {
        size_t bytes = fr_tensor_nbytes(m.params[i].grad);
        g1[i] = malloc(bytes);
        memcpy(g1[i], m.params[i].grad->data, bytes);
    }
    fr_model_zero_grad(&m, be);
    for (int h = 0; h < 2; h++) {
        int o = h * 3;
        ck_assert(fr_model_forward(&m, be, &ws, 3, x + o * D, t + o, cid + o, out2 + o * D) == FR_OK);
        ck_assert(fr_model_backward(&m, be, &ws, w + o * D, dx2 + o * D) == FR_OK);
    }
    for (int r = 0; r < B; r++) /* one row at a time, inference workspace */
        ck_assert(fr_model_forward(&m, be, &wi, 1, x + r * D, t + r, cid + r, out3 + r * D) == FR_OK);
    ck_assert(memcmp(out1, out2, sizeof out1) == 0);
    ck_assert(memcmp(out1, out3, sizeof out1) == 0);
    ck_assert(memcmp(dx1, dx2, sizeof dx1) == 0);
    /* out may alias x (forward) and dx may alias dout (backward) */
    float xa[B * D], wa[B * D];
    memcpy(xa, x, sizeof xa);
    ck_assert(fr_model_forward(&m, be, &wi, B, xa, t, cid, xa) == FR_OK);
    ck_assert(memcmp(out1, xa, sizeof out1) == 0);
    memcpy(wa, w, sizeof wa);
    ck_assert(fr_model_forward(&m, be, &ws, B, x, t, cid, out2) == FR_OK);
    fr_model_zero_grad(&m, be);
    ck_assert(fr_model_backward(&m, be, &ws, wa, wa) == FR_OK);
    ck_assert(memcmp(dx1, wa, sizeof dx1) == 0);
    for (int i = 0; i < m.n_params; i++) {
        ck_assert_msg(memcmp(g1[i], m.params[i].grad->data, fr_tensor_nbytes(m.params[i].grad)) == 0,
                      "gradient of %s: two micro-batches differ from one batch", m.params[i].name);
        free(g1[i]);
    }
    free(g1);
    /* Accumulation really adds: a second backward of the same forward doubles the
     * gradient (up to rounding: the second chain starts from the first sum, so the bits
     * of 2x are not guaranteed). */
    fr_model_zero_grad(&m, be);
    ck_assert(fr_model_forward(&m, be, &ws, B, x, t, cid, out1) == FR_OK);
    ck_assert(fr_model_backward(&m, be, &ws, w, NULL) == FR_OK);
    fr_param *p = fr_model_param(&m, "blocks.1.fc1.weight");
    float keep = ((float *)p->grad->data)[5];
    ck_assert(keep != 0.0f);
    ck_assert(fr_model_backward(&m, be, &ws, w, NULL) == FR_OK);
    float twice = ((float *)p->grad->data)[5];
    ck_assert_msg(fabsf(twice - 2.0f * keep) <= 1e-5f * fabsf(keep), "head %d: %.9g after two backwards, %.9g after one",
                  _i, (double)twice, (double)keep);
    fr_model_ws_free(&ws), fr_model_ws_free(&wi);
    fr_model_free(&m);
}
END_TEST

/* The head field: presets, validation, metadata (old files without "model.head" load as
 * velocity) and the workspace check. */
START_TEST(test_head_config)
{
    fr_model_config c;
    ck_assert(fr_model_preset("shapes-s", 768, 20, &c) == FR_OK);
    ck_assert_int_eq(c.head, FR_HEAD_X0);
    ck_assert(c.sigma_min == 0.05f);
    ck_assert(fr_model_preset("gmm2d-s", 2, 8, &c) == FR_OK);
    ck_assert_int_eq(c.head, FR_HEAD_VELOCITY);
    ck_assert(c.sigma_min == 0.0f);
    ck_assert_str_eq(fr_head_name(FR_HEAD_X0), "x0");
    fr_head h;
    ck_assert(fr_head_from_name("velocity", &h) && h == FR_HEAD_VELOCITY);
    ck_assert(!fr_head_from_name("eps", &h));

    fr_model_config x = small_cfg(FR_ACT_SILU, 1);
    x.head = FR_HEAD_X0, x.sigma_min = 0.05f;
    ck_assert_int_eq(fr_model_config_check(&x), FR_OK);
    fr_model_config bad = x;
    bad.pred = FR_PRED_EPSILON; /* an epsilon model's x0 head needs its DDPM schedule */
    ck_assert_int_eq(fr_model_config_check(&bad), FR_ERR_ARG);
    bad = x, bad.sigma_min = 0.0f;
    ck_assert_int_eq(fr_model_config_check(&bad), FR_ERR_ARG);
    bad = x, bad.sigma_min = NAN;
    ck_assert_int_eq(fr_model_config_check(&bad), FR_ERR_ARG);
    bad = x, bad.head = FR_HEAD_VELOCITY; /* sigma_min 0.05 would not survive a save */
    ck_assert_int_eq(fr_model_config_check(&bad), FR_ERR_ARG);
    bad = x, bad.head = (fr_head)7;
    ck_assert_int_eq(fr_model_config_check(&bad), FR_ERR_ARG);

    /* metadata round trip; a velocity config writes no head keys (the old format) */
    fr_st_file f;
    fr_st_init(&f);
    ck_assert(fr_model_config_to_meta(&x, &f) == FR_OK);
    ck_assert_str_eq(fr_st_get_meta(&f, "model.head"), "x0");
    fr_model_config back;
    ck_assert_msg(fr_model_config_from_meta(&f, &back) == FR_OK, "%s", fr_last_error());
    ck_assert(memcmp(&back, &x, sizeof x) == 0);
    ck_assert(fr_st_set_meta(&f, "model.head", "eps") == FR_OK);
    ck_assert_int_eq(fr_model_config_from_meta(&f, &back), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "model.head") != NULL, "%s", fr_last_error());
    fr_st_free(&f);
    fr_st_init(&f);
    fr_model_config v = small_cfg(FR_ACT_SILU, 1);
    ck_assert(fr_model_config_to_meta(&v, &f) == FR_OK);
    ck_assert_ptr_null(fr_st_get_meta(&f, "model.head"));
    ck_assert_ptr_null(fr_st_get_meta(&f, "model.sigma_min"));
    ck_assert(fr_model_config_from_meta(&f, &back) == FR_OK);
    ck_assert(memcmp(&back, &v, sizeof v) == 0);
    ck_assert(fr_st_set_meta(&f, "model.head", "x0") == FR_OK); /* without model.sigma_min */
    ck_assert_int_eq(fr_model_config_from_meta(&f, &back), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "model.sigma_min") != NULL, "%s", fr_last_error());
    fr_st_free(&f);

    /* a workspace of the other head is refused */
    fr_model mv, mx;
    ck_assert(fr_model_init(&mv, fr_test_ref_be(), &v, 1) == FR_OK);
    ck_assert(fr_model_init(&mx, fr_test_ref_be(), &x, 1) == FR_OK);
    fr_model_ws wv;
    ck_assert(fr_model_ws_alloc(&wv, &mv, 1, 1) == FR_OK);
    float in[3] = {0.5f, -0.5f, 1.0f}, o[3], t = 300.0f;
    int32_t cid = 0;
    ck_assert_int_eq(fr_model_forward(&mx, fr_test_ref_be(), &wv, 1, in, &t, &cid, o), FR_ERR_ARG);
    ck_assert_int_eq(fr_model_forward(&mv, fr_test_ref_be(), &wv, 1, in, &t, &cid, o), FR_OK);
    fr_model_ws_free(&wv);
    fr_model_free(&mv), fr_model_free(&mx);
}
END_TEST

/* ---- optimizer, clipping, EMA ------------------------------------------------------- */

/* Fills every gradient with seeded values in [-a, a]. */
static void random_grads(fr_model *m, uint64_t seed, float a)
{
    uint64_t s = seed;
    for (int i = 0; i < m->n_params; i++) {
        float *g = m->params[i].grad->data;
        for (int64_t j = 0; j < fr_tensor_numel(m->params[i].grad); j++) g[j] = fr_test_uniform(&s, -a, a);
    }
}

static float **snapshot(const fr_model *m, int grads)
{
    float **s = calloc((size_t)m->n_params, sizeof *s);
    for (int i = 0; i < m->n_params; i++) {
        const fr_tensor *t = grads ? m->params[i].grad : m->params[i].value;
        s[i] = malloc(fr_tensor_nbytes(t));
        memcpy(s[i], t->data, fr_tensor_nbytes(t));
    }
    return s;
}

static void free_snapshot(float **s, int n)
{
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

/* Two AdamW steps against PyTorch's formula evaluated in double:
 *   p <- p (1 - lr wd);  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
 *   p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * float vs double differs by a few ulps of p per step: tolerance 1e-6 (|p| + lr). */
START_TEST(test_adamw)
{
    fr_backend *be = fr_test_ref_be();
    fr_model_config c = small_cfg(FR_ACT_SILU, 1);
    fr_model m;
    ck_assert(fr_model_init(&m, fr_test_ref_be(), &c, 1) == FR_OK);
    randomize(&m, 2);
    fr_adamw_state st;
    ck_assert(fr_adamw_state_init(fr_test_ref_be(), &st, m.params, m.n_params) == FR_OK);
    ck_assert_int_eq(st.step, 0);
    fr_adamw_cfg ac = fr_adamw_cfg_default();
    ac.weight_decay = 0.1f;
    const float lr = 0.01f;
    float **p0 = snapshot(&m, 0);
    double **pd = calloc((size_t)m.n_params, sizeof *pd), **md = calloc((size_t)m.n_params, sizeof *md),
           **vd = calloc((size_t)m.n_params, sizeof *vd);
    for (int i = 0; i < m.n_params; i++) {
        int64_t n = fr_tensor_numel(m.params[i].value);
        pd[i] = malloc((size_t)n * sizeof(double)), md[i] = calloc((size_t)n, sizeof(double)),
        vd[i] = calloc((size_t)n, sizeof(double));
        for (int64_t j = 0; j < n; j++) pd[i][j] = p0[i][j];
    }
    for (int step = 1; step <= 2; step++) {
        random_grads(&m, 40 + step, 2.0f);
        ck_assert(fr_adamw_step(be, &st, m.params, m.n_params, &ac, lr) == FR_OK);
        ck_assert_int_eq(st.step, step);
        double b1 = ac.beta1, b2 = ac.beta2;
        for (int i = 0; i < m.n_params; i++) {
            const float *p = m.params[i].value->data, *g = m.params[i].grad->data;
            for (int64_t j = 0; j < fr_tensor_numel(m.params[i].value); j++) {
                double gd = g[j];
                pd[i][j] *= 1.0 - (double)lr * ac.weight_decay;
                md[i][j] = b1 * md[i][j] + (1 - b1) * gd;
                vd[i][j] = b2 * vd[i][j] + (1 - b2) * gd * gd;
                double denom = sqrt(vd[i][j]) / sqrt(1 - pow(b2, step)) + ac.eps;
                pd[i][j] -= lr / (1 - pow(b1, step)) * md[i][j] / denom;
                ck_assert_msg(fabs(p[j] - pd[i][j]) <= 1e-6 * (fabs(pd[i][j]) + lr),
                              "step %d %s[%lld]: %.9g, double formula %.9g", step, m.params[i].name,
                              (long long)j, (double)p[j], pd[i][j]);
                if (step == 1) ck_assert(p[j] != p0[i][j]);
            }
        }
    }
    /* A list that does not match the state is refused. */
    ck_assert_int_eq(fr_adamw_step(be, &st, m.params, m.n_params - 1, &ac, lr), FR_ERR_ARG);
    for (int i = 0; i < m.n_params; i++) free(pd[i]), free(md[i]), free(vd[i]);
    free(pd), free(md), free(vd);
    free_snapshot(p0, m.n_params);
    fr_adamw_state_free(&st);
    fr_model_free(&m);
}
END_TEST

static double grad_norm_d(const fr_model *m)
{
    double s = 0;
    for (int i = 0; i < m->n_params; i++) {
        const float *g = m->params[i].grad->data;
        for (int64_t j = 0; j < fr_tensor_numel(m->params[i].grad); j++) s += (double)g[j] * g[j];
    }
    return sqrt(s);
}

START_TEST(test_clip)
{
    fr_backend *be = fr_test_ref_be();
    fr_model_config c = small_cfg(FR_ACT_SILU, 2);
    fr_model m;
    ck_assert(fr_model_alloc(&m, fr_test_ref_be(), &c) == FR_OK);
    random_grads(&m, 5, 1.0f);
    double T = grad_norm_d(&m);
    float total;
    /* max_norm above the norm: gradients untouched, bit for bit. */
    float **g0 = snapshot(&m, 1);
    ck_assert(fr_clip_grad_norm(be, m.params, m.n_params, (float)(2 * T), &total) == FR_OK);
    ck_assert_msg(fabs(total - T) <= 1e-5 * T, "norm %.9g, double %.9g", (double)total, T);
    for (int i = 0; i < m.n_params; i++)
        ck_assert(memcmp(g0[i], m.params[i].grad->data, fr_tensor_nbytes(m.params[i].grad)) == 0);
    /* max_norm = T/4: every gradient scaled by coef = max/(total + 1e-6), new norm ~ T/4. */
    float maxn = (float)(T / 4);
    ck_assert(fr_clip_grad_norm(be, m.params, m.n_params, maxn, &total) == FR_OK);
    float coef = maxn / (total + 1e-6f);
    for (int i = 0; i < m.n_params; i++) {
        const float *g = m.params[i].grad->data;
        for (int64_t j = 0; j < fr_tensor_numel(m.params[i].grad); j++)
            ck_assert(fr_test_bits_equal(g[j], g0[i][j] * coef));
    }
    double after = grad_norm_d(&m);
    ck_assert_msg(fabs(after - maxn) <= 1e-5 * maxn, "norm after clipping %.9g, max %.9g", after, (double)maxn);
    /* A NaN gradient: FR_ERR_NUMERIC and nothing scaled. */
    float **g1 = snapshot(&m, 1);
    ((float *)m.params[3].grad->data)[0] = NAN;
    ck_assert_int_eq(fr_clip_grad_norm(be, m.params, m.n_params, 1e-3f, &total), FR_ERR_NUMERIC);
    ck_assert(isnan(total));
    ck_assert(memcmp(g1[5], m.params[5].grad->data, fr_tensor_nbytes(m.params[5].grad)) == 0);
    free_snapshot(g0, m.n_params);
    free_snapshot(g1, m.n_params);
    fr_model_free(&m);
}
END_TEST

START_TEST(test_ema)
{
    fr_backend *be = fr_test_ref_be();
    fr_model_config c = small_cfg(FR_ACT_SILU, 1);
    fr_model m, m2;
    ck_assert(fr_model_init(&m, fr_test_ref_be(), &c, 1) == FR_OK);
    ck_assert(fr_model_alloc(&m2, fr_test_ref_be(), &c) == FR_OK);
    fr_ema e;
    ck_assert(fr_ema_init(be, &e, m.params, m.n_params) == FR_OK);
    float **s0 = snapshot(&m, 0);
    randomize(&m, 8);
    const float decay = 0.9f;
    ck_assert(fr_ema_update(be, &e, m.params, m.n_params, decay) == FR_OK);
    /* shadow = fmaf(1 - decay, p, decay * shadow), and ~ the formula in double. */
    for (int i = 0; i < m.n_params; i++) {
        const float *p = m.params[i].value->data, *sh = e.shadow[i].data;
        for (int64_t j = 0; j < fr_tensor_numel(m.params[i].value); j++) {
            float want = fmaf(1.0f - decay, p[j], decay * s0[i][j]);
            ck_assert(fr_test_bits_equal(sh[j], want));
            double dd = 0.9 * s0[i][j] + 0.1 * p[j];
            ck_assert(fabs(sh[j] - dd) <= 1e-6 * (1 + fabs(dd)));
        }
    }
    ck_assert(fr_ema_copy_to(be, &e, m2.params, m2.n_params) == FR_OK);
    ck_assert(memcmp(m2.arena_values, e.shadow[0].data, 4) == 0);
    /* decay 0: the shadow becomes the weights exactly. */
    ck_assert(fr_ema_update(be, &e, m.params, m.n_params, 0.0f) == FR_OK);
    for (int i = 0; i < m.n_params; i++)
        ck_assert(memcmp(e.shadow[i].data, m.params[i].value->data, fr_tensor_nbytes(m.params[i].value)) == 0);
    ck_assert_int_eq(fr_ema_update(be, &e, m.params, m.n_params, 1.5f), FR_ERR_ARG);
    free_snapshot(s0, m.n_params);
    fr_ema_free(&e);
    fr_model_free(&m), fr_model_free(&m2);
}
END_TEST

/* ---- checkpoints ---------------------------------------------------------------------- */

START_TEST(test_save_load)
{
    fr_backend *be = fr_test_ref_be();
    char dir[] = "/tmp/flowrl-model-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    fr_model_config c = small_cfg(FR_ACT_GELU_TANH, 2);
    c.pred = FR_PRED_EPSILON;
    c.ln_eps = 1e-6f;
    fr_model m, l;
    ck_assert(fr_model_init(&m, fr_test_ref_be(), &c, 99) == FR_OK);
    randomize(&m, 3);
    ck_assert_msg(fr_model_save(&m, path) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_model_load(&l, fr_test_ref_be(), path) == FR_OK, "%s", fr_last_error());
    ck_assert(memcmp(&l.cfg, &m.cfg, sizeof m.cfg) == 0);
    for (int i = 0; i < m.n_params; i++)
        ck_assert(memcmp(l.params[i].value->data, m.params[i].value->data,
                         fr_tensor_nbytes(m.params[i].value)) == 0);
    /* Same outputs from the loaded model. */
    float x[6] = {0.1f, -0.2f, 0.3f, 1, 2, 3}, t[2] = {10, 900}, o1[6], o2[6];
    int32_t cid[2] = {3, 1};
    fr_model_ws ws;
    ck_assert(fr_model_ws_alloc(&ws, &m, 2, 0) == FR_OK);
    ck_assert(fr_model_forward(&m, be, &ws, 2, x, t, cid, o1) == FR_OK);
    ck_assert(fr_model_forward(&l, be, &ws, 2, x, t, cid, o2) == FR_OK);
    ck_assert(memcmp(o1, o2, sizeof o1) == 0);
    fr_model_ws_free(&ws);

    /* A file with a missing tensor or a wrong shape is refused, naming the tensor. */
    fr_st_file f;
    fr_st_init(&f);
    ck_assert(fr_model_config_to_meta(&m.cfg, &f) == FR_OK);
    for (int i = 0; i < m.n_params - 1; i++) ck_assert(fr_st_add(&f, m.params[i].name, m.params[i].value) == FR_OK);
    ck_assert(fr_st_write(&f, path) == FR_OK);
    fr_model bad;
    ck_assert_int_eq(fr_model_load(&bad, fr_test_ref_be(), path), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "out.bias") != NULL, "%s", fr_last_error());
    float z[4] = {0};
    fr_tensor wrong = fr_tensor_f32(z, 1, (int64_t[]){4});
    ck_assert(fr_st_add(&f, "out.bias", &wrong) == FR_OK);
    ck_assert(fr_st_write(&f, path) == FR_OK);
    ck_assert_int_eq(fr_model_load(&bad, fr_test_ref_be(), path), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "out.bias") != NULL, "%s", fr_last_error());
    ck_assert(fr_st_set_meta(&f, "model.act", "swish") == FR_OK);
    ck_assert(fr_st_write(&f, path) == FR_OK);
    ck_assert_int_eq(fr_model_load(&bad, fr_test_ref_be(), path), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "model.act") != NULL, "%s", fr_last_error());
    fr_st_free(&f);
    unlink(path);
    rmdir(dir);
    fr_model_free(&m), fr_model_free(&l);
}
END_TEST

/* ---- every backend through backend memory ------------------------------------------- */

/* What one training step of a model leaves, on the host. */
typedef struct {
    float *out, *dx, *out2; /* (B,D): forward, dL/dx, forward after the step */
    float gn;
    void *ckpt, *ckpt2;     /* the checkpoint's bytes, and after a read back into fresh state */
    size_t len, len2;
} step_result;

enum { BK_B = 5, BK_CAP = 7 };

static float *bk_down(fr_backend *be, const float *p, int64_t n)
{
    float *h = malloc((size_t)n * sizeof *h);
    ck_assert(h && fr_d2h(be, h, p, (size_t)n * sizeof *h) == FR_OK);
    return h;
}

/* Model, workspace, AdamW and EMA in be's memory: forward, backward, clip → AdamW → EMA,
 * forward again, the checkpoint written and read back into a second model and state. */
static void step_on(fr_backend *be, const fr_model_config *cfg, step_result *r)
{
    const int64_t B = BK_B, D = cfg->D, S = cfg->n_slots;
    fr_model m, m2;
    fr_model_ws ws;
    fr_adamw_state adam, adam2;
    fr_ema ema, ema2;
    ck_assert_msg(fr_model_init(&m, be, cfg, 4) == FR_OK, "%s: %s", be->name, fr_last_error());
    randomize(&m, 21);
    ck_assert(fr_model_ws_alloc(&ws, &m, BK_CAP, 1) == FR_OK);
    ck_assert(fr_adamw_state_init(be, &adam, m.params, m.n_params) == FR_OK);
    ck_assert(fr_ema_init(be, &ema, m.params, m.n_params) == FR_OK);

    float x[BK_B * 8], t[BK_B] = {0.0f, 1.0f, 250.0f, 999.0f, 1000.0f}, dout[BK_B * 8];
    int32_t c[BK_B * 2];
    uint64_t s = 99;
    for (int64_t i = 0; i < B * D; i++) x[i] = fr_test_uniform(&s, -2.0f, 2.0f), dout[i] = fr_test_uniform(&s, -1.0f, 1.0f);
    for (int64_t i = 0; i < B * S; i++) c[i] = (int32_t)(i % (cfg->n_cond + 1)); /* the null id included */
    float *dx_ = fr_dev_floats(be, B * D), *dt = fr_dev_floats(be, B), *dd = fr_dev_floats(be, B * D);
    float *dout_ = fr_dev_floats(be, B * D), *o = fr_dev_floats(be, B * D);
    int32_t *dc = fr_dev_i32(be, B * S);
    ck_assert(dx_ && dt && dd && dout_ && o && dc);
    ck_assert(fr_h2d(be, dx_, x, sizeof(float) * (size_t)(B * D)) == FR_OK);
    ck_assert(fr_h2d(be, dt, t, sizeof t) == FR_OK);
    ck_assert(fr_h2d(be, dout_, dout, sizeof(float) * (size_t)(B * D)) == FR_OK);
    ck_assert(fr_h2d(be, dc, c, sizeof(int32_t) * (size_t)(B * S)) == FR_OK);

    fr_model_zero_grad(&m, be);
    ck_assert(fr_model_forward(&m, be, &ws, B, dx_, dt, dc, o) == FR_OK);
    r->out = bk_down(be, o, B * D);
    ck_assert(fr_model_backward(&m, be, &ws, dout_, dd) == FR_OK);
    r->dx = bk_down(be, dd, B * D);
    fr_optim_step_cfg oc = {0.05f, fr_adamw_cfg_default(), 1e-2, 0.9f, 1, FR_EMA_FIXED, 0, 1, NULL};
    ck_assert_msg(fr_optim_step(be, m.params, m.n_params, &adam, &ema, &oc, NULL, NULL, "test", &r->gn) == FR_OK, "%s",
                  fr_last_error());
    ck_assert(r->gn > 0.05f); /* the clip scaled the gradients */
    ck_assert(fr_model_forward(&m, be, &ws, B, dx_, dt, dc, o) == FR_OK);
    r->out2 = bk_down(be, o, B * D);

    fr_st_file f;
    fr_st_init(&f);
    ck_assert(fr_checkpoint_to_st(&f, &m, &ema, &adam) == FR_OK);
    ck_assert(fr_st_write_mem(&f, &r->ckpt, &r->len) == FR_OK);
    ck_assert(fr_model_alloc(&m2, be, cfg) == FR_OK);
    ck_assert(fr_adamw_state_init(be, &adam2, m2.params, m2.n_params) == FR_OK);
    ck_assert(fr_ema_init(be, &ema2, m2.params, m2.n_params) == FR_OK);
    ck_assert_msg(fr_checkpoint_from_st(&f, &m2, &ema2, &adam2) == FR_OK, "%s", fr_last_error());
    fr_st_free(&f);
    fr_st_init(&f);
    ck_assert(fr_checkpoint_to_st(&f, &m2, &ema2, &adam2) == FR_OK);
    ck_assert(fr_st_write_mem(&f, &r->ckpt2, &r->len2) == FR_OK);
    fr_st_free(&f);

    void *dev[] = {dx_, dt, dd, dout_, o, dc};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(be, dev[i]);
    fr_ema_free(&ema), fr_ema_free(&ema2);
    fr_adamw_state_free(&adam), fr_adamw_state_free(&adam2);
    fr_model_ws_free(&ws);
    fr_model_free(&m), fr_model_free(&m2);
}

static void step_result_free(step_result *r)
{
    free(r->out), free(r->dx), free(r->out2), free(r->ckpt), free(r->ckpt2);
}

/* The model and its training state on every backend built in (cuda-emu: kernels in guarded
 * device memory, every host access a stop) give ref's bits: outputs, input gradient, the
 * norm, and the checkpoint (weights, EMA, AdamW moments) byte for byte, also after a read
 * back. Both heads, two condition slots. */
START_TEST(test_backends_equal_ref)
{
    fr_model_config cfg = small_cfg(FR_ACT_GELU_TANH, 2);
    cfg.n_slots = 2;
    for (int head = 0; head < 3; head++) {
        cfg.head = head ? FR_HEAD_X0 : FR_HEAD_VELOCITY;
        cfg.sigma_min = head ? 0.01f : 0.0f;
        if (head == 2) fr_test_eps_head(&cfg); /* the eps x0 head (its table in device memory) */
        step_result want;
        step_on(fr_test_ref_be(), &cfg, &want);
        ck_assert(want.len == want.len2 && memcmp(want.ckpt, want.ckpt2, want.len) == 0);
        for (const char *const *name = fr_backend_names(); *name; name++) {
            fr_backend be;
        if (!fr_test_backend_try(&be, "model", *name, 2)) continue;
            step_result got;
            step_on(&be, &cfg, &got);
            const int64_t n = BK_B * cfg.D;
            ck_assert_msg(memcmp(got.out, want.out, (size_t)n * sizeof(float)) == 0, "%s: forward differs", *name);
            ck_assert_msg(memcmp(got.dx, want.dx, (size_t)n * sizeof(float)) == 0, "%s: dL/dx differs", *name);
            ck_assert_msg(fr_test_bits_equal(got.gn, want.gn), "%s: norm %a vs %a", *name, (double)got.gn, (double)want.gn);
            ck_assert_msg(memcmp(got.out2, want.out2, (size_t)n * sizeof(float)) == 0, "%s: forward after the step", *name);
            ck_assert_msg(got.len == want.len && memcmp(got.ckpt, want.ckpt, want.len) == 0, "%s: checkpoint differs", *name);
            ck_assert_msg(got.len2 == want.len && memcmp(got.ckpt2, want.ckpt, want.len) == 0, "%s: read back", *name);
            step_result_free(&got);
            fr_backend_close(&be);
        }
        step_result_free(&want);
    }
}
END_TEST

/* Many processes (docs/determinism.md "Many processes"): part k of R = 3 of the split update.
 * The backward (two micro-batches accumulated) with m.dw_parts = 3 computes rows
 * fr_dist_block(N, 1, k, 3) of each linear weight's gradient and every other gradient whole,
 * each with the whole backward's bits (the other rows stay zero); fr_adamw_step_part from the
 * whole gradients updates exactly part k's elements of every tensor, with the whole step's bits.
 * want_g, want_v: the whole run's (parts = 1: computed here and returned). */
static void split_on(fr_backend *be, const fr_model_config *cfg, int part, int parts, float **want_g, float **want_v)
{
    const int64_t B = BK_B, D = cfg->D, S = cfg->n_slots;
    fr_model m;
    fr_model_ws ws;
    fr_adamw_state adam;
    ck_assert_msg(fr_model_init(&m, be, cfg, 4) == FR_OK, "%s: %s", be->name, fr_last_error());
    randomize(&m, 23);
    m.dw_part = part;
    m.dw_parts = parts;
    ck_assert(fr_model_ws_alloc(&ws, &m, BK_CAP, 1) == FR_OK);
    ck_assert(fr_adamw_state_init(be, &adam, m.params, m.n_params) == FR_OK);
    float x[BK_B * 8], t[BK_B] = {0.0f, 1.0f, 250.0f, 999.0f, 1000.0f}, dout[2][BK_B * 8];
    int32_t c[BK_B * 2];
    uint64_t s = 7;
    for (int64_t i = 0; i < B * D; i++)
        x[i] = fr_test_uniform(&s, -2.0f, 2.0f), dout[0][i] = fr_test_uniform(&s, -1.0f, 1.0f),
        dout[1][i] = fr_test_uniform(&s, -1.0f, 1.0f);
    for (int64_t i = 0; i < B * S; i++) c[i] = (int32_t)(i % (cfg->n_cond + 1));
    float *dx = fr_dev_floats(be, B * D), *dt = fr_dev_floats(be, B), *dd = fr_dev_floats(be, B * D);
    float *o = fr_dev_floats(be, B * D);
    int32_t *dc = fr_dev_i32(be, B * S);
    ck_assert(dx && dt && dd && o && dc);
    ck_assert(fr_h2d(be, dx, x, sizeof(float) * (size_t)(B * D)) == FR_OK);
    ck_assert(fr_h2d(be, dt, t, sizeof t) == FR_OK);
    ck_assert(fr_h2d(be, dc, c, sizeof(int32_t) * (size_t)(B * S)) == FR_OK);
    fr_model_zero_grad(&m, be);
    for (int mb = 0; mb < 2; mb++) {
        ck_assert(fr_h2d(be, dd, dout[mb], sizeof(float) * (size_t)(B * D)) == FR_OK);
        ck_assert(fr_model_forward(&m, be, &ws, B, dx, dt, dc, o) == FR_OK);
        ck_assert_msg(fr_model_backward(&m, be, &ws, dd, NULL) == FR_OK, "%s", fr_last_error());
    }
    const int64_t total = fr_model_arena_floats(&m);
    float *g = bk_down(be, m.arena_grads, total), *v0 = bk_down(be, m.arena_values, total);
    if (parts > 1) /* AdamW from the whole gradients */
        ck_assert(fr_h2d(be, m.arena_grads, *want_g, (size_t)total * sizeof(float)) == FR_OK);
    const fr_adamw_cfg ac = fr_adamw_cfg_default();
    ck_assert(fr_adamw_step_part(be, &adam, m.params, m.n_params, &ac, 1e-2, part, parts) == FR_OK);
    float *v = bk_down(be, m.arena_values, total);
    if (parts == 1) {
        *want_g = g, *want_v = v;
    } else {
        for (int i = 0; i < m.n_params; i++) {
            const int64_t off = (float *)m.params[i].value->data - m.arena_values, n = fr_tensor_numel(m.params[i].value);
            const int64_t rows = m.params[i].value->shape[0], K = n / rows;
            int64_t lo, hi;
            fr_dist_block(rows, 1, part, parts, &lo, &hi);
            for (int64_t j = 0; j < n; j++) {
                const int mine_g = !fr_model_dw_split(&m, i) || (j / K >= lo && j / K < hi);
                ck_assert_msg(mine_g ? fr_test_bits_equal(g[off + j], (*want_g)[off + j]) : g[off + j] == 0.0f,
                              "%s: part %d of %d: %s grad[%lld] %a, whole %a", be->name, part, parts, m.params[i].name,
                              (long long)j, (double)g[off + j], (double)(*want_g)[off + j]);
            }
            fr_dist_block(n, 1, part, parts, &lo, &hi);
            for (int64_t j = 0; j < n; j++)
                ck_assert_msg(fr_test_bits_equal(v[off + j], j >= lo && j < hi ? (*want_v)[off + j] : v0[off + j]),
                              "%s: part %d of %d: %s value[%lld] after AdamW", be->name, part, parts, m.params[i].name,
                              (long long)j);
        }
        free(g), free(v);
    }
    free(v0);
    void *dev[] = {dx, dt, dd, o, dc};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(be, dev[i]);
    fr_adamw_state_free(&adam);
    fr_model_ws_free(&ws);
    fr_model_free(&m);
}

START_TEST(test_split_update)
{
    fr_model_config cfg = small_cfg(FR_ACT_SILU, 2);
    float *want_g = NULL, *want_v = NULL;
    split_on(fr_test_ref_be(), &cfg, 0, 1, &want_g, &want_v);
    for (const char *const *name = fr_backend_names(); *name; name++) {
        fr_backend be;
        if (!fr_test_backend_try(&be, "model", *name, 2)) continue;
        for (int k = 0; k < 3; k++) split_on(&be, &cfg, k, 3, &want_g, &want_v);
        fr_backend_close(&be);
    }
    free(want_g), free(want_v);
}
END_TEST

Suite *suite_model(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_param_counts);
    tcase_add_test(tc, test_names_and_shapes);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_forward_presets);
    tcase_add_test(tc, test_fd_silu);
    tcase_add_test(tc, test_fd_gelu);
    tcase_add_test(tc, test_fd_tanh_one_block);
    tcase_add_test(tc, test_fd_no_blocks);
    tcase_add_test(tc, test_fd_x0_head);
    tcase_add_test(tc, test_fd_x0_head_no_blocks);
    tcase_add_test(tc, test_fd_eps_head);
    tcase_add_test(tc, test_fd_eps_head_no_blocks);
    tcase_add_test(tc, test_eps_head_config);
    tcase_add_test(tc, test_head_config);
    tcase_add_loop_test(tc, test_microbatch_bitwise, 0, 3);
    tcase_add_test(tc, test_adamw);
    tcase_add_test(tc, test_clip);
    tcase_add_test(tc, test_ema);
    tcase_add_test(tc, test_save_load);
    tcase_add_test(tc, test_backends_equal_ref);
    tcase_add_test(tc, test_split_update);
    suite_add_tcase(s, tc);
    return s;
}
