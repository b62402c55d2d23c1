/* --fast against the canonical opt kernels (flowrl/fast.h): each vendor-capable op at the
 * shapes a model preset runs (every linear layer's forward NT, input-gradient NN and
 * weight-gradient TN+ GEMM; layer norm forward/backward over (B,H); the activation over
 * (B,F) and (B,H)), canonical opt vs the vendor kernel (policy FR_FAST_ALWAYS), at 1 and
 * 2 threads; then one model forward+backward step with the opt table and the fast table
 * (the default rule). Microseconds / milliseconds: median of `reps` samples, each sample
 * repeating the call until >= 10 ms have passed. "rule" says what fr_fast_supports picks.
 *
 *   bench_fast [--preset NAME] [--batch B] [--reps N] [--threads LIST e.g. 1,2] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowrl/backend.h"
#include "flowrl/fast.h"
#include "flowrl/model.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef enum { OP_GEMM, OP_LN_FWD, OP_LN_BWD, OP_ACT_FWD, OP_ACT_BWD } op_kind;

typedef struct {
    op_kind kind;
    int ta, tb, acc;
    int64_t M, N, K;
    fr_act act;
    float *a, *b, *c, *d, *e, *f, *g, *h; /* operands, sized generously */
} call_t;

static void call(fr_backend *be, const call_t *c)
{
    switch (c->kind) {
    case OP_GEMM: be->ops->gemm(c->ta, c->tb, c->M, c->N, c->K, c->a, c->b, c->c, c->acc); break;
    case OP_LN_FWD: be->ops->layernorm_fwd(c->M, c->N, c->a, c->b, c->c, 1e-5f, c->d, c->e, c->f); break;
    case OP_LN_BWD:
        be->ops->layernorm_bwd(c->M, c->N, c->a, c->b, c->e, c->f, c->g, c->d, c->c, c->h, 1);
        break;
    case OP_ACT_FWD: be->ops->act_fwd(c->act, c->M, c->a, c->d); break;
    case OP_ACT_BWD: be->ops->act_bwd(c->act, c->M, c->a, c->g, c->d, 0); break;
    }
}

/* Median seconds per call. */
static double time_call(fr_backend *be, const call_t *c, int reps)
{
    double s[64];
    call(be, c); /* warm-up: primitive creation, thread start */
    for (int r = 0; r < reps; r++) {
        int n = 0;
        double t0 = now_s(), t;
        do {
            call(be, c);
            n++;
            t = now_s();
        } while (t - t0 < 0.01);
        s[r] = (t - t0) / n;
    }
    qsort(s, (size_t)reps, sizeof s[0], cmp_double);
    return s[reps / 2];
}

static int rule_picks(const call_t *c, int threads)
{
    fr_fast_shape s = {.ta = c->ta, .tb = c->tb, .M = c->M, .N = c->N, .K = c->K, .act = c->act,
                       .has_affine = 1, .threads = threads};
    static const fr_fast_op map[] = {FR_FAST_GEMM, FR_FAST_LN_FWD, FR_FAST_LN_BWD,
                                     FR_FAST_ACT_FWD, FR_FAST_ACT_BWD};
    fr_fast_policy p = fr_fast_get_policy();
    fr_fast_set_policy(FR_FAST_RULE);
    int r = fr_fast_supports(map[c->kind], &s);
    fr_fast_set_policy(p);
    return r;
}

static void fill_rand(float *x, int64_t n, unsigned *state)
{
    for (int64_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        x[i] = (float)((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

int main(int argc, char **argv)
{
    const char *preset = "shapes-s";
    int64_t B = 64;
    int reps = 5;
    int threads[8] = {1, 2}, nthreads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) preset = argv[++i];
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) B = atoll(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            nthreads = 0;
            for (char *p = argv[++i]; *p && nthreads < 8; nthreads++) {
                threads[nthreads] = (int)strtol(p, &p, 10);
                if (*p == ',') p++;
            }
        } else {
            fprintf(stderr, "usage: bench_fast [--preset NAME] [--batch B] [--reps N] "
                            "[--threads 1,2]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 64 || B < 1 || nthreads < 1) return 2;
    int is_shapes = strncmp(preset, "shapes", 6) == 0;
    fr_model_config cfg;
    if (fr_model_preset(preset, is_shapes ? 768 : 2, is_shapes ? 110 : 8, &cfg) != FR_OK) {
        fprintf(stderr, "bench_fast: %s\n", fr_last_error());
        return 1;
    }
    if (is_shapes) cfg.n_slots = 5;
    fr_backend opt, fast;
    if (fr_backend_open(&opt, "opt", 0, 0) != FR_OK || fr_backend_open(&fast, "opt", 1, 0) != FR_OK) {
        fprintf(stderr, "bench_fast: %s\n", fr_last_error());
        return 1;
    }
    char desc[512];
    printf("# %s, B = %lld: %s\n", preset, (long long)B, fr_fast_describe(desc, sizeof desc));

    int64_t D = cfg.D, H = cfg.H, F = cfg.F, E = cfg.E;
    int64_t big = B * (D > F ? D : F) + D * F + H * F + D * H + 16;
    if (big < F * F) big = F * F;
    float *buf[8];
    unsigned st = 12345u;
    for (int i = 0; i < 8; i++) {
        buf[i] = malloc((size_t)big * sizeof(float));
        if (!buf[i]) return 1;
        fill_rand(buf[i], big, &st);
    }
    /* rstd must be positive: LN backward reads e (mean) and f (rstd) */
    for (int64_t i = 0; i < big; i++) buf[5][i] = 1.0f + 0.5f * buf[5][i];

    int64_t layers[][2] = {{D, H}, {E, H}, {H, H}, {H, F}, {F, H}, {H, D}}; /* K -> N */
    const char *lname[] = {"in", "time.fc1", "time.fc2", "fc1", "fc2", "out"};
    call_t calls[64];
    char names[64][48];
    int nc = 0;
    for (int l = 0; l < 6; l++) {
        int64_t K = layers[l][0], N = layers[l][1];
        call_t f = {.kind = OP_GEMM, .ta = 0, .tb = 1, .M = B, .N = N, .K = K};
        call_t dx = {.kind = OP_GEMM, .ta = 0, .tb = 0, .M = B, .N = K, .K = N};
        call_t dw = {.kind = OP_GEMM, .ta = 1, .tb = 0, .M = N, .N = K, .K = B, .acc = 1};
        snprintf(names[nc], 48, "gemm %s fwd NT", lname[l]), calls[nc++] = f;
        snprintf(names[nc], 48, "gemm %s dx NN", lname[l]), calls[nc++] = dx;
        snprintf(names[nc], 48, "gemm %s dW TN+", lname[l]), calls[nc++] = dw;
    }
    call_t lf = {.kind = OP_LN_FWD, .M = B, .N = H};
    call_t lb = {.kind = OP_LN_BWD, .M = B, .N = H};
    snprintf(names[nc], 48, "layernorm fwd"), calls[nc++] = lf;
    snprintf(names[nc], 48, "layernorm bwd+"), calls[nc++] = lb;
    int64_t an[2] = {B * F, B * H};
    for (int i = 0; i < 2; i++) {
        call_t af = {.kind = OP_ACT_FWD, .M = an[i], .act = cfg.act};
        call_t ab = {.kind = OP_ACT_BWD, .M = an[i], .act = cfg.act};
        snprintf(names[nc], 48, "%s fwd", fr_act_name(cfg.act)), calls[nc++] = af;
        snprintf(names[nc], 48, "%s bwd", fr_act_name(cfg.act)), calls[nc++] = ab;
    }
    for (int i = 0; i < nc; i++) {
        calls[i].a = buf[0], calls[i].b = buf[1], calls[i].c = buf[2], calls[i].d = buf[3];
        calls[i].e = buf[4], calls[i].f = buf[5], calls[i].g = buf[6], calls[i].h = buf[7];
    }

    printf("%-22s %6s %6s %6s %4s %10s %10s %7s %5s\n", "op", "M", "N", "K", "thr", "opt us",
           "vendor us", "v/opt", "rule");
    for (int ti = 0; ti < nthreads; ti++) {
        if (fr_backend_open(&fast, "opt", 1, threads[ti]) != FR_OK) return 1;
        for (int i = 0; i < nc; i++) {
            fr_fast_set_policy(FR_FAST_ALWAYS);
            double tv = time_call(&fast, &calls[i], reps);
            fr_fast_set_policy(FR_FAST_NEVER);
            double to = time_call(&fast, &calls[i], reps);
            fr_fast_set_policy(FR_FAST_RULE);
            printf("%-22s %6lld %6lld %6lld %4d %10.1f %10.1f %6.0f%% %5s\n", names[i],
                   (long long)calls[i].M, (long long)calls[i].N, (long long)calls[i].K,
                   threads[ti], 1e6 * to, 1e6 * tv, 100.0 * tv / to,
                   rule_picks(&calls[i], threads[ti]) ? "vend" : "opt");
        }
    }

    /* one training step of the model, opt vs fast (rule) */
    fr_model m;
    fr_model_ws ws;
    if (fr_model_init(&m, &opt, &cfg, 1) != FR_OK || fr_model_ws_alloc(&ws, &m, B, 1) != FR_OK) {
        fprintf(stderr, "bench_fast: %s\n", fr_last_error());
        return 1;
    }
    float *x = malloc((size_t)(B * D) * sizeof(float)), *t = malloc((size_t)B * sizeof(float));
    float *out = malloc((size_t)(B * D) * sizeof(float));
    float *dout = malloc((size_t)(B * D) * sizeof(float));
    int32_t *c = malloc((size_t)(B * cfg.n_slots) * sizeof(int32_t));
    if (!x || !t || !out || !dout || !c) return 1;
    fill_rand(x, B * D, &st);
    fill_rand(dout, B * D, &st);
    for (int64_t i = 0; i < B; i++) t[i] = 1000.0f * (float)(i + 1) / (float)(B + 1);
    for (int64_t i = 0; i < B * cfg.n_slots; i++) c[i] = (int32_t)(i % (cfg.n_cond + 1));
    printf("\nmodel %s forward+backward, B = %lld (ms, median of %d)\n", preset, (long long)B,
           reps);
    for (int ti = 0; ti < nthreads; ti++) {
        if (fr_backend_open(&opt, "opt", 0, threads[ti]) != FR_OK ||
            fr_backend_open(&fast, "opt", 1, threads[ti]) != FR_OK)
            return 1;
        double ms[2];
        for (int k = 0; k < 2; k++) {
            fr_backend *be = k ? &fast : &opt;
            double s[64];
            for (int r = -1; r < reps; r++) {
                int n = 0;
                double t0 = now_s(), t1;
                do {
                    fr_model_zero_grad(&m, be);
                    if (fr_model_forward(&m, be, &ws, B, x, t, c, out) != FR_OK ||
                        fr_model_backward(&m, be, &ws, dout, NULL) != FR_OK) {
                        fprintf(stderr, "bench_fast: %s\n", fr_last_error());
                        return 1;
                    }
                    n++;
                    t1 = now_s();
                } while (t1 - t0 < 0.05);
                if (r >= 0) s[r] = (t1 - t0) / n;
            }
            qsort(s, (size_t)reps, sizeof s[0], cmp_double);
            ms[k] = 1e3 * s[reps / 2];
        }
        printf("threads %d: opt %.3f ms, fast %.3f ms (fast/opt %.0f%%)\n", threads[ti], ms[0],
               ms[1], 100.0 * ms[1] / ms[0]);
    }
    fr_model_ws_free(&ws);
    fr_model_free(&m);
    for (int i = 0; i < 8; i++) free(buf[i]);
    free(x), free(t), free(out), free(dout), free(c);
    return 0;
}
