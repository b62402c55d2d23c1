#include "flowrl/buildinfo.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

#ifndef FR_BUILD_FLAGS
#define FR_BUILD_FLAGS "unknown"
#endif

const char *fr_version(void) { return FR_VERSION; }

const char *fr_build_flags(void) { return FR_BUILD_FLAGS; }

#define FR_STR_(x) #x
#define FR_STR(x) FR_STR_(x)

const char *fr_build_compiler(void)
{
#if defined(__clang__)
    return "clang " FR_STR(__clang_major__) "." FR_STR(__clang_minor__) "." FR_STR(__clang_patchlevel__);
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown C compiler";
#endif
}

const char *fr_build_target(void)
{
#if defined(__x86_64__)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#elif defined(__i386__)
    return "i386";
#elif defined(__arm__)
    return "arm";
#else
    return "unknown";
#endif
}

/* a*b + c with a*b = 1 - 2^-46 exactly: the unfused result rounds a*b to 1 first and gives
 * 0; a contracted (fused) one gives -2^-46. volatile keeps the compiler from folding. */
static float mul_add(float a, float b, float c) { return a * b + c; }

fr_status fr_fp_selftest(void)
{
    volatile float a = 1.0f + 0x1.0p-23f, b = 1.0f - 0x1.0p-23f, c = -1.0f;
    float unfused = mul_add(a, b, c);
    float fused = fmaf(a, b, c);
    if (fused != -0x1.0p-46f)
        return fr_fail(FR_ERR_MISMATCH, "fmaf is not correctly rounded on this machine");
    if (unfused != 0.0f)
        return fr_fail(FR_ERR_MISMATCH,
                       "a*b+c was contracted into an FMA: build with -ffp-contract=off");
#if defined(__FAST_MATH__)
    return fr_fail(FR_ERR_MISMATCH, "built with -ffast-math, which breaks the determinism contract");
#endif
    volatile float big = 0x1.0p127f;
    volatile float r = (big * 4.0f) / 4.0f; /* inf / 4 = inf unless excess precision is kept */
    if (!isinf(r)) return fr_fail(FR_ERR_MISMATCH, "float arithmetic keeps excess precision (x87?)");
    return FR_OK;
}

const char *fr_cpu_features(char *buf, size_t n)
{
    buf[0] = '\0';
#if defined(__x86_64__) || defined(__i386__)
    static const char *const k_feats[] = {"sse4.2", "avx", "avx2", "fma", "avx512f"};
    __builtin_cpu_init();
    size_t used = 0;
    for (size_t i = 0; i < sizeof k_feats / sizeof k_feats[0]; i++) {
        int has = 0;
        if (strcmp(k_feats[i], "sse4.2") == 0) has = __builtin_cpu_supports("sse4.2");
        else if (strcmp(k_feats[i], "avx") == 0) has = __builtin_cpu_supports("avx");
        else if (strcmp(k_feats[i], "avx2") == 0) has = __builtin_cpu_supports("avx2");
        else if (strcmp(k_feats[i], "fma") == 0) has = __builtin_cpu_supports("fma");
        else if (strcmp(k_feats[i], "avx512f") == 0) has = __builtin_cpu_supports("avx512f");
        if (has && used < n) used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? " " : "", k_feats[i]);
    }
#else
    snprintf(buf, n, "(feature detection only on x86)");
#endif
    if (!buf[0]) snprintf(buf, n, "(none of sse4.2 avx avx2 fma avx512f)");
    return buf;
}
