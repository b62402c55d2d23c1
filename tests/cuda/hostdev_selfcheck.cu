/* CUDA self-check of the shared FR_HOSTDEV element functions (docs/design.md §1.2).
 *
 * `make check` compiles this file with nvcc --fmad=false whenever nvcc is present, which
 * proves that every shared header builds for the device. Run on a machine with a GPU
 * (`make cuda-selfcheck`), it evaluates Philox, the normal stream, the transcendental
 * functions, the activations and the sampler elements on the device and on the host, and
 * requires identical bits: the Random123 pattern of one KAT checked by kat_c and kat_cuda
 * (docs/algorithms/numerics.md §4). Exit code 0 = every value equal, 1 = a mismatch, 77 = no GPU. */
#include <cstdio>
#include <cstring>
#include <cuda_runtime.h>

/* Every header with FR_HOSTDEV functions (`grep -l FR_HOSTDEV` over include/flowrl/; the
 * Makefile's cuda-selfcheck rule fails when one is missing here). */
extern "C" {
#include "flowrl/attn_elem.h"
#include "flowrl/awm_elem.h"
#include "flowrl/detmath.h"
#include "flowrl/elem.h"
#include "flowrl/embed.h"
#include "flowrl/grpo_elem.h"
#include "flowrl/hostdev.h"
#include "flowrl/kernel.h"
#include "flowrl/model_elem.h"
#include "flowrl/nft_elem.h"
#include "flowrl/noising.h"
#include "flowrl/philox.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/reduce.h"
#include "flowrl/sampler_elem.h"
#include "flowrl/schedule.h"
}

enum { N_FUNCS = 32 };

/* Value k of input i: the same code on host and device. Cases 16.. call every element
 * function of attn_elem.h, embed.h, grpo_elem.h, model_elem.h, pretrain_elem.h, schedule.h and the
 * thread-coordinate helpers of kernel.h (a function nvcc never emits for the device is not
 * checked by compiling alone); u is a second input in (0, 1) for the arguments that must
 * lie there. */
FR_HOSTDEV static float eval_case(int k, float x, uint32_t i)
{
    float u = fr_u32_to_uniform(fr_rng_u32(5, FR_RNG_TEST, 1, 1, 1, i));
    fr_ppo_clip pc = fr_ppo_clip_make(0.2);
    switch (k) {
    case 16: return fr_temb_elem(1000.0f * u, (int64_t)(i % 64), 32);
    case 17: {
        const float row[2] = {x, u};
        return fr_adv_clamp_elem(x, 5.0f) + fr_temb_freq((int64_t)(i % 32), 32) +
               fr_embed_elem(row, 2, 1, (int32_t)(i & 1), 0);
    }
    case 18: {
        float r = fr_ppo_ratio_elem(u, 0.5f * u + 0.25f * x);
        return fr_ppo_term_elem(r, 0.7f, pc) + fr_ppo_clamp_elem(r, pc);
    }
    case 19: {
        float r = fr_ppo_ratio_elem(u, 0.75f * u);
        return fr_ppo_dterm_elem(r, -0.3f, pc, 1.5f) + (float)fr_ppo_is_clipped_elem(r, pc);
    }
    case 20: return fr_guard_logratio_elem(x, 0.25f * x, 0.1f, 2.0f) + fr_ppo_max_elem(x, 1.0f);
    case 21: return fr_gauss_dlogp_dmu_elem(x, 0.5f, fr_gauss_row_scale(0.3f, 4.0f, 0.02f));
    case 22: return fr_cps_dlogp_dmu_elem(x, 0.5f, 0.3f) + fr_kl_dmu_elem(x, 0.25f, 0.1f);
    case 23:
        return fr_sde_dmean_dv(fr_sde_coef_make(u, 0.9f * u, 0.95f, 0.7f)) +
               fr_cps_dmean_dv(fr_cps_coef_make(u, 0.9f * u, 0.7f)) +
               fr_dance_dmean_dv(fr_dance_coef_make(u, 0.9f * u, 0.5f)) +
               fr_ddim_dmean_deps(fr_ddim_coef_make(0.9f * u, u, 0.5f, 1.0f));
    case 24: {
        float d = fr_x0_head_denom(u, 1e-3f);
        return fr_x0_head_velocity(x, 0.5f * x, d) + fr_x0_head_grad(x, d) + fr_x0_head_grad_x0(0.5f * x, d);
    }
    case 25: return fr_flow_noised_elem(x, 0.3f, u) + fr_flow_target_elem(x, 0.3f);
    case 26: {
        float a, b;
        fr_ddpm_coefs(u, &a, &b);
        return fr_ddpm_noised_elem(x, 0.3f, a, b);
    }
    case 27:
        return fr_logit_normal_sigma(4.0f * u - 2.0f, 0.0f, 1.0f) + (float)fr_rng_below(i * 2654435761u, 1000) +
               fr_mse_grad_elem(x, 0.5f, 0.01f);
    case 28:
        return fr_shift_f(u, 3.0f) + (float)fr_shift_d((double)u, 3.0) + fr_timestep_quantized(u) +
               fr_timestep_diffusers(u) + (float)fr_ddim_prev_timestep((int64_t)(i % 1000), 50, 1000);
    case 29: {
        fr_kidx k;
        k.block = fr_dim3_make(i % 7, i % 5, 0);
        k.thread = fr_dim3_make(i % 32, i % 4, i % 2);
        k.grid = fr_grid_1d((int64_t)i, 256);
        k.bdim = fr_dim3_make(32, 4, 2);
        k.iter = 0;
        return (float)(fr_kidx_global_x(&k) + 3 * fr_kidx_global_y(&k) + 5 * fr_kidx_local(&k) +
                       7 * (int64_t)fr_dim3_x(i % 9).x + 11 * (int64_t)k.grid.x);
    }
    case 30: { /* the eps x0 head over a 4-row table, t up to 5 (the last row clamped) */
        const float tab[8] = {0.99f, 0.9f, 0.5f, 0.1f, 0.05f, 0.3f, 0.8f, 0.99f};
        float a, s;
        fr_eps_head_coefs(tab, 4, 5.0f * u, &a, &s);
        return fr_eps_head_eps(x, 0.5f * x, a, s) + fr_eps_head_grad_x0(0.25f * x, a, s) +
               fr_eps_head_grad_x(x, s) + (float)fr_eps_head_row(5.0f * u, 4);
    }
    case 31: { /* attn_elem.h: a softmax row of 5 (and its backward), adaLN and the gate, a 3-token column */
        float r[5] = {x, 0.5f * x, -x, u, -0.0f}, p[5], dp[5] = {u, -u, 0.25f, x, 1.0f}, dx[5];
        fr_softmax_row(r, 5, 0.125f, p);
        fr_softmax_bwd_row(p, dp, 5, 0.125f, dx);
        float col[3] = {x, u, -x}, dy[3] = {u, 0.5f, -u}, dcol[3], dsh, dsc, dg;
        fr_adaln_mod_bwd_col(3, 1, col, 0.3f * u, dy, dcol, &dsh, &dsc);
        dg = fr_gate_bwd_col(3, 1, 0.7f, col, dy, NULL);
        return p[0] + p[4] + dx[1] + dx[3] + fr_softmax_max(r, 5, -1.0f) + fr_adaln_mod_elem(x, u, 0.5f * u) +
               fr_adaln_mod_dx_elem(u, x) + fr_gate_elem(x, u, 0.5f) + dcol[2] + dsh + dsc + dg;
    }
    case 0: return fr_expf(x);
    case 1: return fr_expm1f(x);
    case 2: return fr_logf(x);
    case 3: return fr_log1pf(x);
    case 4: return fr_sinf(x);
    case 5: return fr_cosf(x);
    case 6: return fr_tanhf(x);
    case 7: return fr_sigmoidf(x);
    case 8: return fr_softplusf(x);
    case 9: return fr_rng_normal(7, FR_RNG_TEST, 1, 2, 3, i);
    case 10: return fr_rng_uniform(7, FR_RNG_TEST, 1, 2, 3, i);
    case 11: return fr_act_elem(FR_ACT_GELU_TANH, x);
    case 12: return fr_act_bwd_elem(FR_ACT_SILU, x, 0.75f);
    case 13: {
        fr_sde_coef c = fr_sde_coef_make(0.8f, 0.7f, 0.95f, 0.7f);
        return fr_sde_mean_elem(x, 0.5f * x - 1.0f, c);
    }
    case 14: {
        fr_gauss_coef c = fr_gauss_coef_make(0.3f);
        return fr_gauss_logp_elem(x, 0.25f, c);
    }
    default: {
        fr_u32x4 ctr = {{i, 0, 0, 0}};
        fr_u32x4 o = fr_philox4x32_10(ctr, 0, 0);
        return __builtin_bit_cast(float, o.v[i & 3] & 0x7F7FFFFFu);
    }
    }
}

FR_HOSTDEV static float input_of(uint32_t i)
{
    /* a spread over many binades, both signs */
    uint32_t w = fr_rng_u32(3, FR_RNG_TEST, 9, 9, 9, i);
    float u = fr_u32_to_uniform(w);
    float mag = fr_expf(40.0f * u - 20.0f);
    return (i & 1) ? -mag : mag;
}

__global__ void kernel(int n, float *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    for (int k = 0; k < N_FUNCS; k++) {
        float x = input_of((uint32_t)i);
        if (k == 2 || k == 3) x = x < 0 ? -x : x; /* log domain */
        out[k * n + i] = eval_case(k, x, (uint32_t)i);
    }
}

int main()
{
    int dev = 0;
    if (cudaGetDeviceCount(&dev) != cudaSuccess || dev == 0) {
        printf("cuda-selfcheck: no CUDA device, nothing to compare\n");
        return 77;
    }
    const int n = 1 << 16;
    float *d_out = nullptr;
    static float gpu[N_FUNCS * n], cpu[N_FUNCS * n];
    if (cudaMalloc(&d_out, sizeof gpu) != cudaSuccess) return fprintf(stderr, "cudaMalloc failed\n"), 1;
    kernel<<<(n + 255) / 256, 256>>>(n, d_out);
    if (cudaMemcpy(gpu, d_out, sizeof gpu, cudaMemcpyDeviceToHost) != cudaSuccess)
        return fprintf(stderr, "kernel or copy failed: %s\n", cudaGetErrorString(cudaGetLastError())), 1;
    cudaFree(d_out);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < N_FUNCS; k++) {
            float x = input_of((uint32_t)i);
            if (k == 2 || k == 3) x = x < 0 ? -x : x;
            cpu[k * n + i] = eval_case(k, x, (uint32_t)i);
        }
    int bad = 0;
    for (int k = 0; k < N_FUNCS; k++) {
        int diff = 0, first = -1;
        for (int i = 0; i < n; i++)
            if (memcmp(&gpu[k * n + i], &cpu[k * n + i], 4) != 0 && !(gpu[k * n + i] != gpu[k * n + i] && cpu[k * n + i] != cpu[k * n + i])) {
                if (first < 0) first = i;
                diff++;
            }
        printf("case %2d: %s", k, diff ? "FAIL" : "OK");
        if (diff) printf(" (%d of %d differ, first at %d: gpu %a cpu %a)", diff, n, first, gpu[k * n + first], cpu[k * n + first]);
        printf("\n");
        bad += diff != 0;
    }
    printf("cuda-selfcheck: %d of %d cases bitwise equal\n", N_FUNCS - bad, N_FUNCS);
    return bad ? 1 : 0;
}
