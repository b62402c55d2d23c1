/* The golden case of the LoRA linear layer (flowrl/linear.h, docs/lora.md): forward and
 * backward of y = (z W^T + b) + (s · z A^T) B^T with the base frozen (no dW, db), through the op
 * entries fr_linear_fwd / fr_linear_bwd call. The PyTorch re-implementation of
 * python/tests/test_lora_torch.py reads it. */
#include "core/golden_internal.h"
#include "flowrl/linear.h"

/* B 5 rows, N 19 out (a SIMD register and a tail), K 13 in, rank 3, alpha 6 (scale 2) */
enum { LB = 5, LN = 19, LK = 13, LR = 3 };
#define L_ALPHA 6.0
#define L_RANK 3

static fr_status lora_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    FR_TRY(fr_gi_param(g, "rank", L_RANK));
    FR_TRY(fr_gi_scalar_f64(g, "alpha", L_ALPHA));
    FR_TRY(fr_gi_uniform(g, "z", 2, (int64_t[]){LB, LK}, -1.0f, 1.0f, NULL));
    FR_TRY(fr_gi_uniform(g, "weight", 2, (int64_t[]){LN, LK}, -1.0f, 1.0f, NULL));
    FR_TRY(fr_gi_uniform(g, "bias", 1, (int64_t[]){LN}, -1.0f, 1.0f, NULL));
    FR_TRY(fr_gi_uniform(g, "lora_A", 2, (int64_t[]){LR, LK}, -0.5f, 0.5f, NULL));
    FR_TRY(fr_gi_uniform(g, "lora_B", 2, (int64_t[]){LN, LR}, -0.5f, 0.5f, NULL));
    return fr_gi_uniform(g, "dy", 2, (int64_t[]){LB, LN}, -1.0f, 1.0f, NULL);
}

static fr_status lora_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    long long r;
    double alpha;
    FR_TRY(fr_go_param(in, "rank", 1, 64, &r));
    FR_TRY(fr_go_scalar_f64(in, "alpha", &alpha));
    int64_t sz[2], sw[2], sa[2], sb[2], sdy[2];
    const float *z, *w, *b, *a, *bb, *dy;
    FR_TRY(fr_gd_f32(d, in, "z", 2, sz, &z));
    FR_TRY(fr_gd_f32(d, in, "weight", 2, sw, &w));
    FR_TRY(fr_gd_exact(d, in, "bias", FR_F32, 1, (int64_t[]){sw[0]}, (const void **)&b));
    FR_TRY(fr_gd_f32(d, in, "lora_A", 2, sa, &a));
    FR_TRY(fr_gd_f32(d, in, "lora_B", 2, sb, &bb));
    FR_TRY(fr_gd_f32(d, in, "dy", 2, sdy, &dy));
    const int64_t B = sz[0], K = sz[1], N = sw[0];
    if (sw[1] != K || sa[0] != r || sa[1] != K || sb[0] != N || sb[1] != r || sdy[0] != B || sdy[1] != N)
        return fr_fail(FR_ERR_FORMAT, "golden lora.linear: the inputs' shapes disagree");
    float *y, *zs, *dz, *ga, *gb, *dzs;
    FR_TRY(fr_gd_out_f32(d, out, "y", 2, (int64_t[]){B, N}, NULL, &y));
    FR_TRY(fr_gd_out_f32(d, out, "zs", 2, (int64_t[]){B, r}, NULL, &zs));
    FR_TRY(fr_gd_out_f32(d, out, "dz", 2, (int64_t[]){B, K}, NULL, &dz));
    FR_TRY(fr_gd_out_f32(d, out, "grad.lora_A", 2, sa, NULL, &ga));
    FR_TRY(fr_gd_out_f32(d, out, "grad.lora_B", 2, sb, NULL, &gb));
    FR_TRY(fr_gd_alloc(d, (size_t)(B * r) * sizeof(float), (void **)&dzs));
    const fr_lora_ad ad = {r, (float)(alpha / (double)r), a, bb, ga, gb};
    fr_linear_fwd(d->be, B, N, K, z, w, b, &ad, zs, y);
    fr_linear_bwd(d->be, B, N, K, z, w, dy, NULL, NULL, &ad, zs, dzs, dz);
    return FR_OK;
}

/* --fast: the GEMMs' bound (core/golden_ops.c T_DOT) over K = 13 plus the rank-3 chain on
 * values of size <= 13·0.25 and a scale of 2: 1e-5 absolute, 16u relative */
const fr_golden_case fr_golden_cases_lora[] = {
    {"lora.linear", "LoRA linear, base frozen: y (5,19) = (z W^T + b) + (2 · z A^T) B^T, rank 3, alpha 6; dz, "
                    "dA, dB from dy (docs/lora.md)",
     FR_GOLDEN_ALL_OPS, 0, {1e-5f, 16.0f * 5.9604645e-8f}, lora_in, lora_run},
};
const size_t fr_golden_n_lora = sizeof fr_golden_cases_lora / sizeof fr_golden_cases_lora[0];
