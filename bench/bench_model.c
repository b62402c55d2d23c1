/* One training step's forward + backward of a model preset (default shapes-s: D = 768,
 * n_cond = 110, n_slots = 5) with ref, opt at 1 thread and opt at 2 threads; prints
 * milliseconds per step (median of reps) and whether opt's outputs and gradients equal
 * ref's bitwise.
 *
 *   bench_model [--preset NAME] [--batch B] [--reps N] [--no-ref] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowrl/backend.h"
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

static int step(fr_model *m, fr_backend *be, fr_model_ws *ws, int64_t B, const float *x,
                const float *t, const int32_t *c, const float *dout, float *out)
{
    fr_model_zero_grad(m, be);
    if (fr_model_forward(m, be, ws, B, x, t, c, out) != FR_OK) return 0;
    return fr_model_backward(m, be, ws, dout, NULL) == FR_OK;
}

int main(int argc, char **argv)
{
    const char *preset = "shapes-s";
    int64_t B = 64;
    int reps = 5, do_ref = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) preset = argv[++i];
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) B = atoll(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-ref") == 0) do_ref = 0;
        else {
            fprintf(stderr, "usage: bench_model [--preset NAME] [--batch B] [--reps N] [--no-ref]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 100 || B < 1) return 2;
    fr_model_config cfg;
    fr_model m;
    fr_model_ws ws;
    fr_backend ref;
    if (fr_model_preset(preset, 768, 110, &cfg) != FR_OK) goto fail;
    cfg.n_slots = 5;
    if (fr_backend_open(&ref, "ref", 0, 1) != FR_OK || fr_model_init(&m, &ref, &cfg, 1) != FR_OK ||
        fr_model_ws_alloc(&ws, &m, B, 1) != FR_OK)
        goto fail;
    /* parameters off their init (fc2/out start at 0), so every path does real work */
    uint64_t s = 12345;
    for (int i = 0; i < m.n_params; i++) {
        float *v = (float *)m.values[i].data;
        for (int64_t k = 0; k < fr_tensor_numel(&m.values[i]); k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            v[k] += (float)((double)(s >> 40) * 0x1p-24 - 0.5) * 0.1f;
        }
    }
    int64_t D = cfg.D, P = fr_model_num_params(&m);
    float *x = malloc(sizeof(float) * (size_t)(B * D)), *t = malloc(sizeof(float) * (size_t)B);
    float *dout = malloc(sizeof(float) * (size_t)(B * D)), *out = malloc(sizeof(float) * (size_t)(B * D));
    float *out_ref = malloc(sizeof(float) * (size_t)(B * D)), *g_ref = malloc(sizeof(float) * (size_t)P);
    float *g_opt = malloc(sizeof(float) * (size_t)P);
    int32_t *c = malloc(sizeof(int32_t) * (size_t)(B * cfg.n_slots));
    for (int64_t i = 0; i < B * D; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f, dout[i] = (float)((i * 13) % 29) / 29.0f - 0.5f;
    for (int64_t i = 0; i < B; i++) t[i] = (float)(i * 997 % 1000);
    for (int64_t i = 0; i < B * cfg.n_slots; i++) c[i] = (int32_t)(i * 7 % (cfg.n_cond + 1));

    printf("model %s (D=%lld H=%lld F=%lld blocks=%lld), batch %lld, forward+backward, ms/step "
           "(median of %d)\n", preset, (long long)D, (long long)cfg.H, (long long)cfg.F,
           (long long)cfg.n_blocks, (long long)B, reps);
    const char *names[3] = {"ref", "opt 1 thread", "opt 2 threads"};
    double ms[3] = {0, 0, 0};
    for (int conf = do_ref ? 0 : 1; conf < 3; conf++) {
        fr_backend opt, *be = &ref;
        if (conf > 0) {
            if (fr_backend_open(&opt, "opt", 0, conf) != FR_OK) goto fail;
            be = &opt;
        }
        double smp[100];
        int n = conf == 0 && reps > 3 ? 3 : reps;
        if (!step(&m, be, &ws, B, x, t, c, dout, out)) goto fail; /* warm-up */
        for (int r = 0; r < n; r++) {
            double t0 = now_s();
            if (!step(&m, be, &ws, B, x, t, c, dout, out)) goto fail;
            smp[r] = (now_s() - t0) * 1e3;
        }
        qsort(smp, (size_t)n, sizeof *smp, cmp_double);
        ms[conf] = smp[n / 2];
        float *g = conf == 0 ? g_ref : g_opt;
        int64_t off = 0;
        for (int i = 0; i < m.n_params; i++) {
            int64_t k = fr_tensor_numel(&m.grads[i]);
            memcpy(g + off, m.grads[i].data, sizeof(float) * (size_t)k);
            off += k;
        }
        const char *bits = "-";
        if (conf == 0) memcpy(out_ref, out, sizeof(float) * (size_t)(B * D));
        else if (do_ref)
            bits = memcmp(out, out_ref, sizeof(float) * (size_t)(B * D)) == 0 &&
                           memcmp(g_opt, g_ref, sizeof(float) * (size_t)P) == 0
                       ? "bitwise equal to ref"
                       : "DIFFERS from ref";
        printf("  %-14s %9.2f ms  (%.1fx ref)  %s\n", names[conf], ms[conf],
               ms[0] > 0 ? ms[0] / ms[conf] : 0.0, bits);
    }
    return 0;
fail:
    fprintf(stderr, "bench_model: %s\n", fr_last_error());
    return 1;
}
