/* flowrl info: what this build is and what it can run. */
#include <archive.h>
#include <cJSON.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "cli/commands.h"
#include "config.h"
#include "flowrl/buildinfo.h"
#include "flowrl/digest.h"
#include "flowrl/ops.h"
#include "flowrl/opt.h"
#if FR_HAVE_OPENBLAS
#include <cblas.h>
#endif
#if FR_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif
#if FR_HAVE_CUDA
#include "flowrl/cuda.h"
#endif

static void usage(FILE *f)
{
    fprintf(f, "Usage: flowrl info\n\nPrints the version, the compiler, target architecture and flags of the\n"
               "build (and a run-time check of the determinism contract's flags), the backends\n"
               "compiled in, the CUDA device (when the cuda backend is built in), CPU features,\n"
               "the opt path this CPU takes and the versions of the libraries flowrl links.\n"
               "It takes no options.\n");
}

int cmd_info(int argc, char **argv)
{
    fr_opts o = {.cmd = "info"};
    int rc = fr_cli_opts(&o, argc, argv, usage, NULL, 0, NULL, NULL);
    if (rc >= 0) return rc;
    char buf[256];
    printf("flowrl %s\n", fr_version());
    printf("configure:   %s\n", FR_CONFIGURE_ARGS[0] ? FR_CONFIGURE_ARGS : "(no options)");
    printf("compiler:    %s, for %s\n", fr_build_compiler(), fr_build_target());
    printf("build flags: %s\n", fr_build_flags());
    fr_status fp = fr_fp_selftest();
    printf("fp contract: %s\n", fp == FR_OK ? "ok (no FMA contraction, no fast-math, no excess precision)"
                                             : fr_last_error());
    printf("backends:   ");
    for (const char *const *b = fr_backend_names(); *b; b++) printf(" %s", *b);
    printf("\n");
#if FR_HAVE_CUDA
    char blas[320];
    if (fr_cuda_device_info(buf, sizeof buf) == FR_OK)
        printf("cuda:        %s; kernels built for %s\ncuda --fast: %s\n", buf, fr_cuda_built_arch(),
               fr_cuda_blas_describe(blas, sizeof blas));
    else /* "cuda: no CUDA device (cudaGetDeviceCount: ...)" */
        printf("cuda:        built (kernels for %s); %s\n", fr_cuda_built_arch(),
               strncmp(fr_last_error(), "cuda: ", 6) == 0 ? fr_last_error() + 6 : fr_last_error());
#else
    printf("cuda:        not built in (./configure found no nvcc)\n");
#endif
    printf("cpu:         %s\n", fr_cpu_features(buf, sizeof buf));
    printf("opt path:    %s\n", fr_opt_simd_name());
    printf("libraries:\n");
    unsigned v = XXH_versionNumber();
    fr_status xs = fr_digest_selftest();
    printf("  xxHash     %u.%u.%u (self-test %s)\n", v / 10000, v / 100 % 100, v % 100,
           xs == FR_OK ? "ok" : "FAILED");
    printf("  cJSON      %s\n", cJSON_Version());
    printf("  libpng     %s\n", png_get_libpng_ver(NULL));
    printf("  libarchive %s\n", archive_version_details());
#if FR_HAVE_OPENBLAS
    printf("  OpenBLAS   %s\n", openblas_get_config());
#else
    printf("  OpenBLAS   not built in (--fast GEMMs unavailable)\n");
#endif
#if FR_HAVE_ONEDNN
    const dnnl_version_t *dv = dnnl_version();
    printf("  oneDNN     %d.%d.%d (cpu runtime %s)\n", dv->major, dv->minor, dv->patch,
           dv->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : dv->cpu_runtime == DNNL_RUNTIME_SEQ ? "sequential" : "threadpool/tbb");
#else
    printf("  oneDNN     not built in (--fast fused ops unavailable)\n");
#endif
    if (fflush(stdout) != 0 || ferror(stdout)) return fr_cli_error("info", "write error on stdout");
    return fp == FR_OK && xs == FR_OK ? 0 : 1;
}
