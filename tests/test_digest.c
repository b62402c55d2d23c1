/* XXH3-64 known answers (docs/algorithms/numerics.md §5) and tensor digests. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "flowrl/digest.h"
#include "tests/suites.h"

START_TEST(test_known_answers)
{
    ck_assert_msg(fr_digest_selftest() == FR_OK, "%s", fr_last_error());
    ck_assert(fr_digest_bytes(NULL, 0) == 0x2D06800538D394C2ull);
    ck_assert(fr_digest_bytes("abc", 3) == 0x78AF5F94892F3950ull);
    ck_assert(XXH64("abc", 3, 0) == 0x44BC2CF5AD770999ull);
    ck_assert(XXH64("a", 1, 0) == 0xD24EC4F1A98C6E5Bull);
    ck_assert(XXH3_64bits_withSeed(NULL, 0, 11400714785074694797ull) == 0xA8A6B918B2F0364Aull);
    char hex[17];
    fr_digest_hex(0x2D06800538D394C2ull, hex);
    ck_assert_str_eq(hex, "2d06800538d394c2");
    fr_digest_hex(1, hex);
    ck_assert_str_eq(hex, "0000000000000001");
}
END_TEST

START_TEST(test_tensor_digest)
{
    float a[6] = {1, 2, 3, 4, 5, 6};
    fr_tensor t23 = fr_tensor_f32(a, 2, (int64_t[]){2, 3});
    fr_tensor t32 = fr_tensor_f32(a, 2, (int64_t[]){3, 2});
    fr_tensor t6 = fr_tensor_f32(a, 1, (int64_t[]){6});
    uint64_t d = fr_tensor_digest(&t23);
    /* shape and dtype are part of the digest */
    ck_assert(d != fr_tensor_digest(&t32) && d != fr_tensor_digest(&t6));
    int32_t ia[6];
    memcpy(ia, a, sizeof a);
    fr_tensor ti = fr_tensor_view(ia, FR_I32, 2, (int64_t[]){2, 3});
    ck_assert(d != fr_tensor_digest(&ti));
    /* one flipped bit changes it */
    uint32_t u;
    memcpy(&u, &a[4], 4);
    u ^= 1;
    memcpy(&a[4], &u, 4);
    ck_assert(d != fr_tensor_digest(&t23));
    u ^= 1;
    memcpy(&a[4], &u, 4);
    ck_assert(d == fr_tensor_digest(&t23));
    /* NaN payloads are canonicalised; the sign of zero is not */
    float n1[2] = {NAN, 0.0f}, n2[2] = {-NAN, 0.0f}, n3[2] = {NAN, -0.0f};
    uint32_t pay = 0x7FC00123u;
    memcpy(&n2[0], &pay, 4);
    fr_tensor a1 = fr_tensor_f32(n1, 1, (int64_t[]){2}), a2 = fr_tensor_f32(n2, 1, (int64_t[]){2}),
              a3 = fr_tensor_f32(n3, 1, (int64_t[]){2});
    ck_assert(fr_tensor_digest(&a1) == fr_tensor_digest(&a2));
    ck_assert(fr_tensor_digest(&a1) != fr_tensor_digest(&a3));
    /* a larger tensor crosses the internal chunking; equal content, equal digest */
    enum { N = 3000 };
    static float big1[N], big2[N];
    for (int i = 0; i < N; i++) big1[i] = big2[i] = (float)i * 0.25f;
    fr_tensor b1 = fr_tensor_f32(big1, 1, (int64_t[]){N}), b2 = fr_tensor_f32(big2, 1, (int64_t[]){N});
    ck_assert(fr_tensor_digest(&b1) == fr_tensor_digest(&b2));
    big2[N - 1] = -big2[N - 1];
    ck_assert(fr_tensor_digest(&b1) != fr_tensor_digest(&b2));
}
END_TEST

/* The digest's definition, computed in one piece: XXH3-64 of the dtype's name, ndim and the
 * shape as u64 little-endian, then the data with every NaN replaced by the canonical quiet NaN. */
static uint64_t digest_by_definition(const char *dtype, int64_t n, const void *canon, size_t esz)
{
    size_t hl = strlen(dtype), nbytes = (size_t)n * esz;
    unsigned char *buf = malloc(hl + 16 + nbytes);
    ck_assert(buf != NULL);
    memcpy(buf, dtype, hl);
    uint64_t hdr[2] = {1, (uint64_t)n};
    for (int i = 0; i < 16; i++) buf[hl + i] = (unsigned char)(hdr[i / 8] >> (8 * (i % 8)));
    memcpy(buf + hl + 16, canon, nbytes);
    uint64_t d = XXH3_64bits(buf, hl + 16 + nbytes);
    free(buf);
    return d;
}

/* Tensors over several of the digest's 16 KiB blocks with NaNs of other payloads in the first, a
 * middle and the last (partial) block, floats and doubles: the blockwise digest equals the
 * definition's, and equals that of the same tensor holding canonical NaNs. */
START_TEST(test_digest_blocks)
{
    enum { NF = 3 * 4096 + 123, ND = 3 * 2048 + 77 };
    static float f[NF], fc[NF];
    static double g[ND], gc[ND];
    for (int i = 0; i < NF; i++) f[i] = fc[i] = (float)(i % 977) * 0.125f - 50.0f;
    for (int i = 0; i < ND; i++) g[i] = gc[i] = (double)(i % 499) * 0.0625 - 9.0;
    const int at_f[] = {7, 2 * 4096 + 5, NF - 1}, at_d[] = {0, 2048 + 3, ND - 2};
    for (int k = 0; k < 3; k++) {
        uint32_t u = 0x7FC00000u | (uint32_t)(k + 1) | (k == 1 ? 0x80000000u : 0u), c = 0x7FC00000u;
        memcpy(&f[at_f[k]], &u, 4), memcpy(&fc[at_f[k]], &c, 4);
        uint64_t v = 0x7FF8000000000000ull | (uint64_t)(k + 7), cd = 0x7FF8000000000000ull;
        memcpy(&g[at_d[k]], &v, 8), memcpy(&gc[at_d[k]], &cd, 8);
    }
    fr_tensor tf = fr_tensor_f32(f, 1, (int64_t[]){NF}), tfc = fr_tensor_f32(fc, 1, (int64_t[]){NF});
    ck_assert(fr_tensor_digest(&tf) == digest_by_definition("F32", NF, fc, 4));
    ck_assert(fr_tensor_digest(&tf) == fr_tensor_digest(&tfc));
    fr_tensor tg = fr_tensor_view(g, FR_F64, 1, (int64_t[]){ND}), tgc = fr_tensor_view(gc, FR_F64, 1, (int64_t[]){ND});
    ck_assert(fr_tensor_digest(&tg) == digest_by_definition("F64", ND, gc, 8));
    ck_assert(fr_tensor_digest(&tg) == fr_tensor_digest(&tgc));
    /* without NaNs: the plain blocks */
    fr_tensor head = fr_tensor_f32(fc + 8, 1, (int64_t[]){2 * 4096});
    ck_assert(fr_tensor_digest(&head) == digest_by_definition("F32", 2 * 4096, fc + 8, 4));
}
END_TEST

Suite *suite_digest(void)
{
    Suite *s = suite_create("digest");
    TCase *tc = tcase_create("digest");
    tcase_add_test(tc, test_known_answers);
    tcase_add_test(tc, test_tensor_digest);
    tcase_add_test(tc, test_digest_blocks);
    suite_add_tcase(s, tc);
    return s;
}
