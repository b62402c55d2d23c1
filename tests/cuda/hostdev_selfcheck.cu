/* CUDA self-check of the shared FR_HOSTDEV element functions (DESIGN.md §1 (2)).
 *
 * `make check` compiles this file with nvcc --fmad=false whenever nvcc is present, which
 * proves that every shared header builds for the device. Run on a machine with a GPU
 * (`make cuda-selfcheck`), it evaluates Philox, the normal stream, the transcendental
 * functions, the activations and the sampler elements on the device and on the host, and
 * requires identical bits: the Random123 pattern of one KAT checked by kat_c and kat_cuda
 * (spec/numerics.md §4). Exit code 0 = every value equal, 1 = a mismatch, 77 = no GPU. */
#include <cstdio>
#include <cstring>
#include <cuda_runtime.h>

extern "C" {
#include "flowrl/awm_elem.h"
#include "flowrl/detmath.h"
#include "flowrl/elem.h"
#include "flowrl/philox.h"
#include "flowrl/reduce.h"
#include "flowrl/sampler_elem.h"
}

enum { N_FUNCS = 16 };

/* Value k of input i: the same code on host and device. */
FR_HOSTDEV static float eval_case(int k, float x, uint32_t i)
{
    switch (k) {
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
