/* The machine's single-precision peak for the benchmarks (BENCHMARKS.md):
 *   peak = cores x GHz x FLOP/cycle/core,
 * FLOP/cycle = 32 (two 256-bit FMA pipes x 8 float lanes x 2 FLOP per FMA; Zen 4 runs
 * AVX-512 as two 256-bit halves, so AVX-512 does not raise it there -- the measured
 * AVX-512 FMA rate printed beside it shows whether that holds on the machine at hand).
 * The clock is measured, not read: a chain of dependent 64-bit integer adds retires one
 * add per cycle. Wall time (CLOCK_MONOTONIC), best of 10 samples of >= 20 ms, so that a
 * sample not preempted by other processes gives the number (the thread CPU clock is no use
 * here: in this KVM guest it ran 2.3x faster than wall time and than the TSC). The clock is
 * read every ~10^6 operations. The FMA rates run 12 independent accumulators (more than
 * latency 4 x 2 pipes), timed the same way. Header-only: bench programs
 * include it; nothing in the library depends on it. */
#ifndef FLOWRL_BENCH_PEAK_H
#define FLOWRL_BENCH_PEAK_H

#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BENCH_ASSUMED_FLOP_PER_CYCLE 32.0

/* 12 independent FMA chains in named registers (an array would live in memory). */
#define BENCH_FMA12(f)                                                                     \
    do {                                                                                   \
        a0 = f(a0, m, c), a1 = f(a1, m, c), a2 = f(a2, m, c), a3 = f(a3, m, c);             \
        a4 = f(a4, m, c), a5 = f(a5, m, c), a6 = f(a6, m, c), a7 = f(a7, m, c);             \
        a8 = f(a8, m, c), a9 = f(a9, m, c), a10 = f(a10, m, c), a11 = f(a11, m, c);         \
    } while (0)

static double bench_wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GHz: the best of 10 samples of >= 20 ms of dependent adds (1 cycle each). */
static double bench_measure_ghz(void)
{
    double best = 0;
    for (int s = 0; s < 10; s++) {
        uint64_t x = 0, n = 0;
        double t0 = bench_wall_s(), t;
        do {
            for (int k = 0; k < 1000; k++)
                __asm__ volatile(".rept 1000\n\taddq $1, %0\n\t.endr" : "+r"(x));
            n += 1000000;
        } while ((t = bench_wall_s() - t0) < 0.02);
        double ghz = (double)n / t * 1e-9;
        if (ghz > best) best = ghz;
    }
    return best;
}

/* GFLOP/s of one core running 256-bit FMAs (12 accumulators), best of 10 samples. */
__attribute__((target("avx2,fma"))) static double bench_fma256_gflops(void)
{
    double best = 0;
    for (int s = 0; s < 10; s++) {
        __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
        /* distinct starting values, or the compiler merges the chains into one */
        __m256 a0 = _mm256_set1_ps(1), a1 = _mm256_set1_ps(2), a2 = _mm256_set1_ps(3), a3 = _mm256_set1_ps(4), a4 = _mm256_set1_ps(5), a5 = _mm256_set1_ps(6);
        __m256 a6 = _mm256_set1_ps(7), a7 = _mm256_set1_ps(8), a8 = _mm256_set1_ps(9), a9 = _mm256_set1_ps(10), a10 = _mm256_set1_ps(11), a11 = _mm256_set1_ps(12);
        uint64_t n = 0;
        double t0 = bench_wall_s(), t;
        do {
            for (int k = 0; k < 100000; k++)
                BENCH_FMA12(_mm256_fmadd_ps);
            n += 100000 * 12;
        } while ((t = bench_wall_s() - t0) < 0.02);
        float sink[8];
        a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)), _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
        a0 = _mm256_add_ps(a0, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
        _mm256_storeu_ps(sink, a0);
        __asm__ volatile("" : : "r"(sink) : "memory");
        double g = (double)n * 16.0 / t * 1e-9; /* 8 lanes x 2 FLOP */
        if (g > best) best = g;
    }
    return best;
}

/* The same with 512-bit FMAs (0 when the CPU lacks AVX-512F). */
__attribute__((target("avx512f"))) static double bench_fma512_run(void)
{
    double best = 0;
    for (int s = 0; s < 10; s++) {
        __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
        /* distinct starting values, or the compiler merges the chains into one */
        __m512 a0 = _mm512_set1_ps(1), a1 = _mm512_set1_ps(2), a2 = _mm512_set1_ps(3), a3 = _mm512_set1_ps(4), a4 = _mm512_set1_ps(5), a5 = _mm512_set1_ps(6);
        __m512 a6 = _mm512_set1_ps(7), a7 = _mm512_set1_ps(8), a8 = _mm512_set1_ps(9), a9 = _mm512_set1_ps(10), a10 = _mm512_set1_ps(11), a11 = _mm512_set1_ps(12);
        uint64_t n = 0;
        double t0 = bench_wall_s(), t;
        do {
            for (int k = 0; k < 100000; k++)
                BENCH_FMA12(_mm512_fmadd_ps);
            n += 100000 * 12;
        } while ((t = bench_wall_s() - t0) < 0.02);
        float sink[16];
        a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
        a0 = _mm512_add_ps(a0, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
        _mm512_storeu_ps(sink, a0);
        __asm__ volatile("" : : "r"(sink) : "memory");
        double g = (double)n * 32.0 / t * 1e-9; /* 16 lanes x 2 FLOP */
        if (g > best) best = g;
    }
    return best;
}

static double bench_fma512_gflops(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? bench_fma512_run() : 0.0;
}

typedef struct {
    double ghz;          /* measured */
    double fma256, fma512; /* measured GFLOP/s of one core */
    double peak1;        /* GFLOP/s of one core: ghz x 32 */
} bench_peak;

static bench_peak bench_peak_measure(void)
{
    bench_peak p;
    p.ghz = bench_measure_ghz();
    p.fma256 = bench_fma256_gflops();
    p.fma512 = bench_fma512_gflops();
    p.peak1 = p.ghz * BENCH_ASSUMED_FLOP_PER_CYCLE;
    return p;
}

#endif
