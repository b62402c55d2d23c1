/* opt's frozen ranges (the op table's freeze, opt/opt_frozen.c): a GEMM whose B lies in a frozen
 * range reads a packed copy made on its first call, and gives ref's bits on every call, at every
 * thread count; the copy lives exactly as long as the range is frozen. */
#include <check.h>
#include <math.h>
#include <string.h>

#include "flowrl/ops.h"
#include "flowrl/opt.h"
#include "opt/opt_internal.h"
#include "tests/ops_check.h"

static fr_backend *opt_be(void)
{
    static fr_backend be;
    if (!be.ops) be = fr_test_backend("opt", 0, 0);
    return &be;
}

typedef struct {
    int64_t M, N, K;
} shape3;

/* Edges of the 6x16 tile and of the k tile (KC = 256), a rollout's and an update's forward,
 * N not a multiple of 16, K = 1. */
static const shape3 k_shapes[] = {
    {1, 1, 1}, {7, 17, 13}, {6, 16, 256}, {13, 33, 513}, {64, 512, 256}, {288, 256, 768}, {100, 40, 300}, {5, 3, 1},
};

static const int k_threads[] = {1, 2, 3};

/* C = op(A) op(B) (+ C0 when acc) by ref, then by opt with B inside a frozen range (at an
 * offset into it, the range longer than B) twice per thread count: the first call packs, the
 * second reads the packed copy; every result must equal ref's bits. */
static void check_frozen_case(int ta, int tb, int acc, const shape3 *g, uint64_t *s)
{
    fr_backend *ref = fr_test_ref_be(), *opt = opt_be();
    const int64_t M = g->M, N = g->N, K = g->K, pad = 37;
    float *A = ops_alloc(M * K), *range = ops_alloc(K * N + 2 * pad), *B = range + pad;
    float *C0 = ops_alloc(M * N), *Cr = ops_alloc(M * N), *Co = ops_alloc(M * N);
    ops_fill_uniform(s, A, M * K, -1.0f, 1.0f);
    ops_fill_uniform(s, range, K * N + 2 * pad, -1.0f, 1.0f);
    ops_fill_uniform(s, C0, M * N, -1.0f, 1.0f);
    memcpy(Cr, C0, sizeof(float) * (size_t)(M * N));
    ref->ops->gemm(ta, tb, M, N, K, A, B, Cr, acc);
    opt->ops->freeze(range, sizeof(float) * (size_t)(K * N + 2 * pad), 1);
    ck_assert_int_eq(fr_opt_frozen_ranges(), 1);
    for (size_t t = 0; t < sizeof k_threads / sizeof k_threads[0]; t++) {
        fr_opt_set_threads(k_threads[t]);
        for (int call = 0; call < 2; call++) {
            memcpy(Co, C0, sizeof(float) * (size_t)(M * N));
            opt->ops->gemm(ta, tb, M, N, K, A, B, Co, acc);
            ASSERT_SAME(Cr, Co, M * N, "frozen gemm ta=%d tb=%d acc=%d M=%lld N=%lld K=%lld threads=%d call %d", ta,
                        tb, acc, (long long)M, (long long)N, (long long)K, k_threads[t], call);
        }
    }
    fr_opt_set_threads(0);
    opt->ops->freeze(range, sizeof(float) * (size_t)(K * N + 2 * pad), 0);
    ck_assert_int_eq(fr_opt_frozen_ranges(), 0);
    free(A), free(range), free(C0), free(Cr), free(Co);
}

START_TEST(test_frozen_gemm_bitwise)
{
    uint64_t s = ops_seed(0xf2023);
    for (size_t c = 0; c < sizeof k_shapes / sizeof k_shapes[0]; c++)
        for (int v = 0; v < 8; v++) check_frozen_case(v & 1, (v >> 1) & 1, (v >> 2) & 1, &k_shapes[c], &s);
}
END_TEST

/* The packed copy is what a frozen B's GEMM reads, for as long as the range is frozen, and only
 * then. Shown by breaking the promise on purpose: B written while frozen leaves the result of
 * the old B (the copy was read; a cache that were never used would fail here); after the range
 * is unfrozen the new B's product is computed (the copy was dropped); a B only partly inside a
 * frozen range is never cached; nested freezes of one range keep it frozen until the last. */
START_TEST(test_frozen_lifetime)
{
    fr_backend *ref = fr_test_ref_be(), *opt = opt_be();
    const int64_t M = 64, N = 48, K = 40;
    uint64_t s = ops_seed(0xf2024);
    float *A = ops_alloc(M * K), *B = ops_alloc(K * N), *B2 = ops_alloc(K * N);
    float *C_old = ops_alloc(M * N), *C_new = ops_alloc(M * N), *Co = ops_alloc(M * N);
    ops_fill_uniform(&s, A, M * K, -1.0f, 1.0f);
    ops_fill_uniform(&s, B, K * N, -1.0f, 1.0f);
    ops_fill_uniform(&s, B2, K * N, -1.0f, 1.0f);
    ref->ops->gemm(0, 1, M, N, K, A, B, C_old, 0);
    ref->ops->gemm(0, 1, M, N, K, A, B2, C_new, 0);
    const size_t bytes = sizeof(float) * (size_t)(K * N);
    /* the portable path (FLOWRL_OPT_NO_SIMD, no AVX2 or NEON) packs nothing, so it caches nothing:
     * a write to a frozen B is then seen at once */
    const float *C_kept = fr_opt_simd_active() ? C_old : C_new;

    opt->ops->freeze(B, bytes, 1);
    opt->ops->freeze(B, bytes, 1); /* nested */
    opt->ops->gemm(0, 1, M, N, K, A, B, Co, 0);
    ASSERT_SAME(C_old, Co, M * N, "frozen B, first call");
    float *B_saved = ops_alloc(K * N);
    memcpy(B_saved, B, bytes);
    memcpy(B, B2, bytes); /* the promise broken: the packed copy still holds the old B */
    opt->ops->gemm(0, 1, M, N, K, A, B, Co, 0);
    ASSERT_SAME(C_kept, Co, M * N, "frozen B written in place: the packed copy was not read (or, portable: was)");
    opt->ops->freeze(B, bytes, 0);
    ck_assert_int_eq(fr_opt_frozen_ranges(), 1); /* still frozen once */
    opt->ops->gemm(0, 1, M, N, K, A, B, Co, 0);
    ASSERT_SAME(C_kept, Co, M * N, "after the inner unfreeze the range is still frozen");
    opt->ops->freeze(B, bytes, 0);
    ck_assert_int_eq(fr_opt_frozen_ranges(), 0);
    opt->ops->gemm(0, 1, M, N, K, A, B, Co, 0);
    ASSERT_SAME(C_new, Co, M * N, "unfrozen: the new B's product (the packed copy dropped)");

    /* B's last float outside the frozen range: packed per call, so B's writes are seen */
    memcpy(B, B_saved, bytes);
    opt->ops->freeze(B, bytes - sizeof(float), 1);
    opt->ops->gemm(0, 1, M, N, K, A, B, Co, 0);
    ASSERT_SAME(C_old, Co, M * N, "B partly frozen, first call");
    memcpy(B, B2, bytes);
    opt->ops->gemm(0, 1, M, N, K, A, B, Co, 0);
    ASSERT_SAME(C_new, Co, M * N, "B partly inside a frozen range was cached");
    opt->ops->freeze(B, bytes - sizeof(float), 0);
    ck_assert_int_eq(fr_opt_frozen_ranges(), 0);
    free(A), free(B), free(B2), free(B_saved), free(C_old), free(C_new), free(Co);
}
END_TEST

Suite *suite_opt_frozen(void)
{
    Suite *s = suite_create("opt_frozen");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_frozen_gemm_bitwise);
    tcase_add_test(tc, test_frozen_lifetime);
    suite_add_tcase(s, tc);
    return s;
}
