/* Philox4x32 known answers (docs/algorithms/numerics.md §4) and the coordinate-addressed streams. */
#include <math.h>
#include <stdio.h>

#include "flowrl/philox.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* Random123 tests/kat_vectors lines 27-29 (10 rounds) and the 7-round vectors. */
static const struct {
    int rounds;
    uint32_t ctr[4], key[2], expect[4];
} k_kat[] = {
    {10, {0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {10, {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {10, {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    {7, {0, 0, 0, 0}, {0, 0}, {0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48}},
    {7, {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
     {0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662}},
    {7, {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
     {0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a}},
};

START_TEST(test_kat)
{
    fr_u32x4 c = {{k_kat[_i].ctr[0], k_kat[_i].ctr[1], k_kat[_i].ctr[2], k_kat[_i].ctr[3]}};
    fr_u32x4 o = fr_philox4x32_r(k_kat[_i].rounds, c, k_kat[_i].key[0], k_kat[_i].key[1]);
    for (int j = 0; j < 4; j++)
        ck_assert_msg(o.v[j] == k_kat[_i].expect[j], "KAT %d word %d: got %08x want %08x", _i, j,
                      o.v[j], k_kat[_i].expect[j]);
    if (k_kat[_i].rounds == 10) {
        fr_u32x4 o10 = fr_philox4x32_10(c, k_kat[_i].key[0], k_kat[_i].key[1]);
        ck_assert(o10.v[0] == o.v[0] && o10.v[3] == o.v[3]);
    }
}
END_TEST

START_TEST(test_uniform_range)
{
    /* the extreme words map strictly inside (0,1), and exactly onto (k + 0.5) 2^-23 */
    ck_assert(fr_u32_to_uniform(0) == 0x1.0p-24f);
    ck_assert(fr_u32_to_uniform(0xffffffffu) == 1.0f - 0x1.0p-24f);
    ck_assert(fr_u32_to_uniform(0xffffffffu) < 1.0f);
    float buf[4096];
    fr_rng_fill_uniform(buf, 4096, 7, FR_RNG_TEST, 1, 2, 3);
    double mean = 0;
    for (int i = 0; i < 4096; i++) {
        ck_assert(buf[i] > 0.0f && buf[i] < 1.0f);
        mean += buf[i];
    }
    mean /= 4096;
    /* std of the mean of 4096 U(0,1) is 0.0045; 5 sigma */
    ck_assert_msg(fabs(mean - 0.5) < 0.0226, "uniform mean %g", mean);
}
END_TEST

START_TEST(test_normal_moments)
{
    enum { N = 1 << 16 };
    static float z[N];
    fr_rng_fill_normal(z, N, 12345, FR_RNG_TEST, 0, 0, 0);
    double m1 = 0, m2 = 0, m4 = 0, maxabs = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(isfinite(z[i]), "normal %d not finite", i);
        m1 += z[i];
        m2 += (double)z[i] * z[i];
        m4 += (double)z[i] * z[i] * z[i] * z[i];
        if (fabs(z[i]) > maxabs) maxabs = fabs(z[i]);
    }
    m1 /= N, m2 /= N, m4 /= N;
    /* standard errors for N = 65536: mean 0.0039, var 0.0055, 4th moment ~0.04; 5 sigma */
    ck_assert_msg(fabs(m1) < 0.02, "mean %g", m1);
    ck_assert_msg(fabs(m2 - 1) < 0.03, "variance %g", m2);
    ck_assert_msg(fabs(m4 - 3) < 0.2, "4th moment %g", m4);
    ck_assert_msg(maxabs <= 5.78, "|z| %g beyond the Box-Muller bound", maxabs);
}
END_TEST

START_TEST(test_coordinate_addressed)
{
    /* element i of a fill equals the single draw at idx i, whatever n or where it starts */
    float a[37], b[11];
    fr_rng_fill_normal(a, 37, 99, FR_RNG_SAMPLER_NOISE, 3, 4, 5);
    fr_rng_fill_normal(b, 11, 99, FR_RNG_SAMPLER_NOISE, 3, 4, 5);
    for (int i = 0; i < 37; i++) {
        float s = fr_rng_normal(99, FR_RNG_SAMPLER_NOISE, 3, 4, 5, (uint32_t)i);
        ck_assert_msg(fr_test_bits_equal(a[i], s), "fill vs single at %d", i);
        if (i < 11) ck_assert(fr_test_bits_equal(a[i], b[i]));
    }
    float u[9];
    fr_rng_fill_uniform(u, 9, 99, FR_RNG_TEST, 0, 0, 0);
    for (int i = 0; i < 9; i++)
        ck_assert(fr_test_bits_equal(u[i], fr_rng_uniform(99, FR_RNG_TEST, 0, 0, 0, (uint32_t)i)));
    /* every coordinate, the seed and the purpose change the stream */
    float base = fr_rng_normal(1, 2, 3, 4, 5, 6);
    ck_assert(!fr_test_bits_equal(base, fr_rng_normal(0, 2, 3, 4, 5, 6)));
    ck_assert(!fr_test_bits_equal(base, fr_rng_normal(1, 3, 3, 4, 5, 6)));
    ck_assert(!fr_test_bits_equal(base, fr_rng_normal(1, 2, 0, 4, 5, 6)));
    ck_assert(!fr_test_bits_equal(base, fr_rng_normal(1, 2, 3, 0, 5, 6)));
    ck_assert(!fr_test_bits_equal(base, fr_rng_normal(1, 2, 3, 4, 0, 6)));
    ck_assert(!fr_test_bits_equal(base, fr_rng_normal(1, 2, 3, 4, 5, 7)));
    /* the stream is the documented construction: key (seed, purpose), counter (c0,c1,c2,i/4) */
    fr_u32x4 ctr = {{3, 4, 5, 1}};
    fr_u32x4 blk = fr_philox4x32_10(ctr, 1, 2);
    ck_assert(fr_rng_u32(1, 2, 3, 4, 5, 6) == blk.v[2]);
}
END_TEST

Suite *suite_philox(void)
{
    Suite *s = suite_create("philox");
    TCase *tc = tcase_create("philox");
    tcase_add_loop_test(tc, test_kat, 0, (int)(sizeof k_kat / sizeof k_kat[0]));
    tcase_add_test(tc, test_uniform_range);
    tcase_add_test(tc, test_normal_moments);
    tcase_add_test(tc, test_coordinate_addressed);
    suite_add_tcase(s, tc);
    return s;
}
