/* The GEMM shapes of a model preset, shared by bench_gemm.c (CPU) and bench_cuda_gemm.c:
 * every distinct linear layer K -> N (in D->H, time.fc1 E->H, time.fc2 H->H, fc1 H->F,
 * fc2 F->H, out H->D) as its forward y = x W^T (gemm(0,1,B,N,K)), input gradient
 * dx = dy W (gemm(0,0,B,K,N)) and weight gradient dW += dy^T x (gemm(1,0,N,K,B,
 * accumulate)). Header-only. */
#ifndef FLOWRL_BENCH_GEMM_SHAPES_H
#define FLOWRL_BENCH_GEMM_SHAPES_H

#include <stdlib.h>
#include <string.h>

#include "flowrl/cond.h"
#include "flowrl/model.h"
#include "flowrl/task.h"

static const char *const bench_gemm_kinds[3] = {"fwd NT", "dx NN", "dW TN+"};

typedef struct {
    int ta, tb, acc;
    int64_t M, N, K;
} bench_gemm_shape;

/* The model config of `preset` on `task_name` (NULL: gmm2d for gmm2d-* presets, else shapes). */
static inline fr_status bench_preset_config(const char *preset, const char *task_name, fr_model_config *cfg)
{
    const fr_task *task;
    int64_t n_cond = 0, n_slots = 0;
    if (!task_name) task_name = strncmp(preset, "gmm2d", 5) == 0 ? "gmm2d" : "shapes";
    FR_TRY(fr_task_get(task_name, &task));
    fr_cond_dims(task, &n_cond, &n_slots);
    return fr_model_preset(preset, task->D, n_cond, cfg);
}

/* The distinct layers K -> N of cfg, in the order above; returns how many (<= 6). */
static inline int bench_gemm_layers(const fr_model_config *cfg, int64_t layers[6][2])
{
    int64_t cand[6][2] = {{cfg->D, cfg->H}, {cfg->E, cfg->H}, {cfg->H, cfg->H},
                          {cfg->H, cfg->F}, {cfg->F, cfg->H}, {cfg->H, cfg->D}};
    int nl = 0;
    for (int i = 0; i < 6; i++) {
        int dup = 0;
        for (int j = 0; j < nl; j++) dup |= layers[j][0] == cand[i][0] && layers[j][1] == cand[i][1];
        if (!dup) layers[nl][0] = cand[i][0], layers[nl][1] = cand[i][1], nl++;
    }
    return nl;
}

/* "64,256" into batches[0..max): how many, or -1 for a value below 1. */
static inline int bench_parse_batches(const char *arg, int64_t *batches, int max)
{
    int nb = 0;
    for (char *p = (char *)arg; *p && nb < max; nb++) {
        batches[nb] = strtoll(p, &p, 10);
        if (batches[nb] < 1) return -1;
        if (*p == ',') p++;
    }
    return nb;
}

/* The GEMM of kind 0 (forward), 1 (input gradient) or 2 (weight gradient) of a layer
 * Kin -> Nout at batch B. */
static inline bench_gemm_shape bench_gemm_shape_of(int kind, int64_t B, int64_t Kin, int64_t Nout)
{
    bench_gemm_shape s = {0, 0, 0, 0, 0, 0};
    if (kind == 0) s.ta = 0, s.tb = 1, s.acc = 0, s.M = B, s.N = Nout, s.K = Kin;
    if (kind == 1) s.ta = 0, s.tb = 0, s.acc = 0, s.M = B, s.N = Kin, s.K = Nout;
    if (kind == 2) s.ta = 1, s.tb = 0, s.acc = 1, s.M = Nout, s.N = Kin, s.K = B;
    return s;
}

#endif
