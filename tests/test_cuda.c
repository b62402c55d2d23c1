/* Suite `cuda`: the cuda backend's registration, device check and memory entries
 * (flowrl/cuda.h, gpu/).
 *  - Without the backend built in: "cuda" is not a backend name and --fast on it is
 *    FR_ERR_UNSUPPORTED.
 *  - Built in, no device (CI): fr_backend_get("cuda") and --fast fail with "cuda: no CUDA
 *    device (...)", every time (a failed init is not cached), and `flowrl info` says so.
 *  - Built in, with a device (tools/gpu_check.sh runs `check_flowrl cuda`): the memory
 *    entries (zero-filled allocation, copies each way, zero, sync), the first-failure rule
 *    (a failed copy is returned by every later memory call), and the registry: the cuda
 *    table either has a kernel for every compute entry or refuses to open naming how many
 *    are missing.
 * Each test runs in its own process (Check's fork mode), so CUDA state never crosses tests. */
#include <stdint.h>
#include <string.h>

#include <check.h>

#include "config.h"
#include "flowrl/ops.h"
#include "flowrl/ref_backend.h"
#include "tests/testutil.h"
#if FR_HAVE_CUDA
#include "flowrl/cuda.h"
#endif

#if !FR_HAVE_CUDA

START_TEST(test_not_built)
{
    for (const char *const *n = fr_backend_names(); *n; n++) ck_assert_str_ne(*n, "cuda");
    const fr_ops *ops = NULL;
    ck_assert_int_eq(fr_backend_get_mode("cuda", 1, &ops), FR_ERR_UNSUPPORTED);
    ck_assert_ptr_null(ops);
}
END_TEST

#else

static int have_device(void)
{
    char info[256];
    return fr_cuda_device_info(info, sizeof info) == FR_OK;
}

START_TEST(test_no_device)
{
    if (have_device()) return; /* test_device_memory and test_registry cover this machine */
    const fr_ops *ops = (const fr_ops *)1;
    for (int k = 0; k < 2; k++) { /* not cached: the second call reports again */
        ck_assert_int_eq(fr_backend_get("cuda", &ops), FR_ERR_UNSUPPORTED);
        ck_assert_ptr_null(ops);
        ck_assert_msg(strncmp(fr_last_error(), "cuda: no CUDA device (cudaGetDeviceCount: ", 42) == 0, "%s",
                      fr_last_error());
    }
    ck_assert_int_eq(fr_backend_get_mode("cuda", 1, &ops), FR_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(fr_last_error(), "no CUDA device"), "%s", fr_last_error());
    char blas[320];
    ck_assert_msg(strstr(fr_cuda_blas_describe(blas, sizeof blas), "no CUDA device"), "%s", blas);

    char out[8192];
    ck_assert_int_eq(fr_test_run_cli("info", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "cuda:        built (kernels for sm_") && strstr(out, "no CUDA device"), "%s", out);
    ck_assert_int_ne(fr_test_run_cli("golden check --backend cuda", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "cuda: no CUDA device"), "%s", out);
}
END_TEST

START_TEST(test_fast_names_cuda)
{
    const fr_ops *ops = NULL;
    ck_assert_int_eq(fr_backend_get_mode("ref", 1, &ops), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--backend=opt, --backend=cuda"), "%s", fr_last_error());
}
END_TEST

/* The memory entries of the cuda table on the device (fr_cuda_fill: no kernels needed). */
START_TEST(test_device_memory)
{
    if (!have_device()) return; /* test_no_device covers this machine */
    fr_ops t;
    memset(&t, 0, sizeof t);
    fr_ref_fill(&t);
    fr_cuda_fill(&t);
    ck_assert_int_eq(t.device, 1);
    enum { N = 1000 };
    float host[N], back[N];
    for (int i = 0; i < N; i++) host[i] = (float)i - 0.5f, back[i] = -1.0f;
    float *a = t.mem_alloc(N * sizeof(float)), *b = t.mem_alloc(N * sizeof(float));
    void *empty = t.mem_alloc(0);
    ck_assert_msg(a && b && empty, "%s", fr_last_error());
    ck_assert_msg(((uintptr_t)a & 63) == 0 && ((uintptr_t)b & 63) == 0, "not 64-byte aligned");
    ck_assert_int_eq(t.mem_d2h(back, a, sizeof back), FR_OK); /* zero-filled */
    for (int i = 0; i < N; i++) ck_assert_msg(back[i] == 0.0f, "alloc not zero at %d", i);
    ck_assert_int_eq(t.mem_h2d(a, host, sizeof host), FR_OK);
    ck_assert_int_eq(t.mem_d2d(b, a, sizeof host), FR_OK);
    ck_assert_int_eq(t.mem_zero(a, N / 2 * sizeof(float)), FR_OK);
    ck_assert_int_eq(t.mem_sync(), FR_OK);
    ck_assert_int_eq(t.mem_d2h(back, b, sizeof back), FR_OK);
    ck_assert_int_eq(memcmp(back, host, sizeof host), 0);
    ck_assert_int_eq(t.mem_d2h(back, a, sizeof back), FR_OK);
    for (int i = 0; i < N; i++) ck_assert(i < N / 2 ? back[i] == 0.0f : back[i] == host[i]);
    t.mem_free(a), t.mem_free(b), t.mem_free(empty), t.mem_free(NULL);
    ck_assert_int_eq(t.mem_sync(), FR_OK);
}
END_TEST

/* A failed call's message is returned by every later memory call: the first cause. */
START_TEST(test_first_failure_kept)
{
    if (!have_device()) return;
    fr_ops t;
    memset(&t, 0, sizeof t);
    fr_cuda_fill(&t);
    float *a = t.mem_alloc(64);
    ck_assert_ptr_nonnull(a);
    /* more bytes than the device has */
    ck_assert_ptr_null(t.mem_alloc((size_t)1 << 50));
    char first[512];
    snprintf(first, sizeof first, "%s", fr_last_error());
    ck_assert_msg(strstr(first, "cuda: cudaMalloc of "), "%s", first);
    float x = 1.0f;
    ck_assert_int_eq(t.mem_h2d(a, &x, sizeof x), FR_ERR_NOMEM);
    ck_assert_str_eq(fr_last_error(), first);
    ck_assert_int_eq(t.mem_sync(), FR_ERR_NOMEM);
    ck_assert_str_eq(fr_last_error(), first);
}
END_TEST

/* The registry opens cuda only with a kernel for every compute entry. */
START_TEST(test_registry)
{
    if (!have_device()) return;
    const fr_ops *ops = NULL;
    fr_status st = fr_backend_get("cuda", &ops);
    if (st != FR_OK) {
        ck_assert_int_eq(st, FR_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(fr_last_error(), "op entries have no kernel in kern/"), "%s", fr_last_error());
        return;
    }
    ck_assert_int_eq(ops->device, 1);
    ck_assert_str_eq(ops->name, "cuda");
    const fr_ops *ref = fr_test_ref_be()->ops;
    ck_assert(ops->gemm != ref->gemm && ops->adamw != ref->adamw && ops->mem_alloc != ref->mem_alloc);
}
END_TEST

#endif

Suite *suite_cuda(void)
{
    Suite *s = suite_create("cuda");
    TCase *tc = tcase_create("cuda");
    tcase_set_timeout(tc, 60);
#if FR_HAVE_CUDA
    tcase_add_test(tc, test_no_device);
    tcase_add_test(tc, test_fast_names_cuda);
    tcase_add_test(tc, test_device_memory);
    tcase_add_test(tc, test_first_failure_kept);
    tcase_add_test(tc, test_registry);
#else
    tcase_add_test(tc, test_not_built);
#endif
    suite_add_tcase(s, tc);
    return s;
}
