/* XXH3-64 known answers (docs/algorithms/numerics.md §5) and tensor digests. */
#include <math.h>
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

Suite *suite_digest(void)
{
    Suite *s = suite_create("digest");
    TCase *tc = tcase_create("digest");
    tcase_add_test(tc, test_known_answers);
    tcase_add_test(tc, test_tensor_digest);
    suite_add_tcase(s, tc);
    return s;
}
