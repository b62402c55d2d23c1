/* Chunk-GRPO's chunk boundaries (flowrl/chunk.h, docs/algorithms/flow-grpo.md §8): the
 * relative L1 distance of a trajectory's successive latents and the greedy equal-share cut,
 * on cases worked by hand and on seeded sweeps. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "flowrl/chunk.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define SEED 0xC4C4ull

static void assert_bounds(const int64_t *got, const int64_t *want, int64_t K, const char *ctx)
{
    for (int64_t k = 0; k <= K; k++)
        ck_assert_msg(got[k] == want[k], "%s: start[%lld] = %lld, expected %lld", ctx, (long long)k,
                      (long long)got[k], (long long)want[k]);
}

/* T 2, N 2, D 2 (time-major (T+1, N, D)):
 *   x_0 = [(1, −1), (2, 0)],  x_1 = [(1.5, −1), (2, 1)],  x_2 = [(0, 0), (0, 1)]
 *   d_0 = ((0.5 / 2) + (1 / 2)) / 2 = 0.375
 *   d_1 = ((2.5 / 2.5) + (2 / 3)) / 2 = 5/6 */
START_TEST(test_rel_l1_by_hand)
{
    const float traj[12] = {1, -1, 2, 0, 1.5f, -1, 2, 1, 0, 0, 0, 1};
    float d[2];
    ck_assert_msg(fr_traj_rel_l1(traj, 2, 2, 2, d) == FR_OK, "%s", fr_last_error());
    ck_assert(d[0] == 0.375f);
    ck_assert(d[1] == (float)((1.0 + 2.0 / 3.0) / 2.0));
    ck_assert_int_le(fr_test_ulps(d[1], (float)(5.0 / 6.0)), 1);
    /* scale invariance: ×2 is exact in float, so the ratios are the same bits */
    float t2[12], e[2];
    for (int i = 0; i < 12; i++) t2[i] = 2.0f * traj[i];
    ck_assert(fr_traj_rel_l1(t2, 2, 2, 2, e) == FR_OK);
    ck_assert(fr_test_bits_equal(d[0], e[0]) && fr_test_bits_equal(d[1], e[1]));
    /* a sample alone: the mean over one sample is its ratio */
    const float one[3] = {4, 3, 1}; /* T 2, N 1, D 1 */
    ck_assert(fr_traj_rel_l1(one, 2, 1, 1, e) == FR_OK);
    ck_assert(e[0] == 0.25f && e[1] == (float)(2.0 / 3.0));
}
END_TEST

/* ‖x_i‖₁ = 0: r = 1 if x_{i+1} ≠ 0 (the step adds all of it), 0 if both are 0; an all-zero
 * trajectory has d = 0, and its chunks are the equal split. */
START_TEST(test_rel_l1_zeros)
{
    /* T 3, N 2, D 2: sample 0 goes 0 -> 0 -> (0, 2) -> (0, 1); sample 1 stays 0 */
    const float traj[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0};
    float d[3];
    ck_assert(fr_traj_rel_l1(traj, 3, 2, 2, d) == FR_OK);
    ck_assert(d[0] == 0.0f);
    ck_assert(d[1] == 0.5f);  /* (1 + 0) / 2 */
    ck_assert(d[2] == 0.25f); /* (0.5 + 0) / 2 */
    const float zeros[5 * 3 * 4] = {0};
    float z[4];
    int64_t start[3];
    ck_assert(fr_traj_rel_l1(zeros, 4, 3, 4, z) == FR_OK);
    for (int i = 0; i < 4; i++) ck_assert(z[i] == 0.0f);
    ck_assert(fr_chunk_bounds(z, 4, 2, start) == FR_OK);
    const int64_t half[3] = {0, 2, 4};
    assert_bounds(start, half, 2, "all-zero trajectory");
}
END_TEST

START_TEST(test_rel_l1_errors)
{
    float traj[12] = {1, -1, 2, 0, 1.5f, -1, 2, 1, 0, 0, 0, 1}, d[2];
    const float bad[2] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        float t[12];
        memcpy(t, traj, sizeof t);
        t[7] = bad[k]; /* x_1, sample 1 */
        ck_assert_int_eq(fr_traj_rel_l1(t, 2, 2, 2, d), FR_ERR_NUMERIC);
        ck_assert_msg(strstr(fr_last_error(), "step 0, sample 1") && !strchr(fr_last_error(), '\n'), "%s",
                      fr_last_error());
    }
    ck_assert_int_eq(fr_traj_rel_l1(NULL, 2, 2, 2, d), FR_ERR_ARG);
    ck_assert_int_eq(fr_traj_rel_l1(traj, 2, 2, 2, NULL), FR_ERR_ARG);
    const int64_t shapes[3][3] = {{0, 2, 2}, {2, 0, 2}, {2, 2, 0}};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(fr_traj_rel_l1(traj, shapes[k][0], shapes[k][1], shapes[k][2], d), FR_ERR_ARG);
        ck_assert(!strchr(fr_last_error(), '\n'));
    }
}
END_TEST

/* Worked cuts: P_j the prefix sums, j_k the least j with K·P_j >= k·Σ d, then the clamps. */
START_TEST(test_bounds_by_hand)
{
    int64_t s[8];
    const float spike_mid[5] = {0, 0, 10, 0, 0};
    ck_assert(fr_chunk_bounds(spike_mid, 5, 2, s) == FR_OK);
    assert_bounds(s, (const int64_t[]){0, 3, 5}, 2, "spike mid K 2"); /* P_3 = 10 = half */
    ck_assert(fr_chunk_bounds(spike_mid, 5, 3, s) == FR_OK);
    assert_bounds(s, (const int64_t[]){0, 3, 4, 5}, 3, "spike mid K 3"); /* j_2 = 3, pushed to 4 */
    const float spike_end[5] = {0, 0, 0, 0, 10};
    ck_assert(fr_chunk_bounds(spike_end, 5, 3, s) == FR_OK);
    assert_bounds(s, (const int64_t[]){0, 3, 4, 5}, 3, "spike end K 3"); /* j = 5, pulled to 3, 4 */
    const float spike_start[5] = {10, 0, 0, 0, 0};
    ck_assert(fr_chunk_bounds(spike_start, 5, 3, s) == FR_OK);
    assert_bounds(s, (const int64_t[]){0, 1, 2, 5}, 3, "spike start K 3");
    /* the early steps move most, as in a flow sampler: 4, 2, 1, 1 (Σ 8) */
    const float decay[4] = {4, 2, 1, 1};
    ck_assert(fr_chunk_bounds(decay, 4, 2, s) == FR_OK);
    assert_bounds(s, (const int64_t[]){0, 1, 4}, 2, "decay K 2"); /* 2·P_1 = 8 >= 8 */
    ck_assert(fr_chunk_bounds(decay, 4, 3, s) == FR_OK);
    assert_bounds(s, (const int64_t[]){0, 1, 2, 4}, 3, "decay K 3"); /* 3·P_2 = 18 >= 16 */
    const float uni6[6] = {1, 1, 1, 1, 1, 1};
    ck_assert(fr_chunk_bounds(uni6, 6, 4, s) == FR_OK);
    assert_bounds(s, (const int64_t[]){0, 2, 3, 5, 6}, 4, "uniform T 6 K 4"); /* ceil(1.5), 3, ceil(4.5) */
    ck_assert(fr_chunk_bounds(decay, 4, 1, s) == FR_OK);
    assert_bounds(s, (const int64_t[]){0, 4}, 1, "K 1");
    ck_assert(fr_chunk_bounds(spike_end, 5, 5, s) == FR_OK);
    assert_bounds(s, (const int64_t[]){0, 1, 2, 3, 4, 5}, 5, "K = T");
    ck_assert(fr_chunk_bounds(decay, 1, 1, s) == FR_OK);
    assert_bounds(s, (const int64_t[]){0, 1}, 1, "T 1");
}
END_TEST

/* Equal d (any value) and all-zero d give start[k] = ceil(k·T/K); K = T gives one step per
 * chunk and K = 1 one chunk, whatever d. */
START_TEST(test_bounds_uniform)
{
    static float d[64], z[64];
    int64_t s[65];
    uint64_t rs = SEED;
    for (int64_t T = 1; T <= 60; T++) {
        const float u = fr_test_uniform(&rs, 0.01f, 3.0f);
        for (int64_t i = 0; i < T; i++) d[i] = u, z[i] = 0.0f;
        for (int64_t K = 1; K <= T; K++)
            for (int w = 0; w < 2; w++) {
                ck_assert(fr_chunk_bounds(w ? z : d, T, K, s) == FR_OK);
                for (int64_t k = 0; k <= K; k++)
                    ck_assert_msg(s[k] == (k * T + K - 1) / K, "%s d %g T %lld K %lld: start[%lld] = %lld",
                                  w ? "zero" : "equal", (double)u, (long long)T, (long long)K, (long long)k,
                                  (long long)s[k]);
            }
        for (int64_t i = 0; i < T; i++) d[i] = fr_test_uniform(&rs, 0.0f, 1.0f);
        ck_assert(fr_chunk_bounds(d, T, T, s) == FR_OK);
        for (int64_t k = 0; k <= T; k++) ck_assert(s[k] == k);
        ck_assert(fr_chunk_bounds(d, T, 1, s) == FR_OK);
        ck_assert(s[0] == 0 && s[1] == T);
    }
}
END_TEST

/* Seeded random d (some zeros, some spikes): the cut equals the rule computed afresh for
 * each k (a scan from 0, not the one-pass scan of the library), the chunks are non-empty,
 * and every chunk holds its share: P_{start[k]} brackets k/K of the total unless a clamp
 * moved the cut. */
START_TEST(test_bounds_sweep)
{
    static float d[48];
    int64_t s[49];
    uint64_t rs = SEED + 1;
    for (int rep = 0; rep < 40; rep++) {
        const int64_t T = 1 + (int64_t)(fr_test_next(&rs) % 48);
        for (int64_t i = 0; i < T; i++) {
            const uint64_t r = fr_test_next(&rs) % 10;
            d[i] = r == 0 ? 0.0f : (r == 1 ? fr_test_uniform(&rs, 5.0f, 50.0f) : fr_test_uniform(&rs, 0.0f, 1.0f));
        }
        double total = 0.0;
        for (int64_t i = 0; i < T; i++) total += d[i];
        for (int64_t K = 1; K <= T; K++) {
            ck_assert(fr_chunk_bounds(d, T, K, s) == FR_OK);
            ck_assert(s[0] == 0 && s[K] == T);
            for (int64_t k = 1; k <= K; k++) {
                ck_assert_msg(s[k] > s[k - 1], "seed %llx rep %d T %lld K %lld: empty chunk %lld", SEED + 1, rep,
                              (long long)T, (long long)K, (long long)k - 1);
                if (k == K) break;
                int64_t j = 0;
                double P = 0.0;
                while (j < T && (double)K * P < (double)k * (total > 0.0 ? total : (double)T)) {
                    P += total > 0.0 ? (double)d[j] : 1.0;
                    j++;
                }
                int64_t want = j < s[k - 1] + 1 ? s[k - 1] + 1 : j;
                if (want > T - K + k) want = T - K + k;
                ck_assert_msg(s[k] == want, "seed %llx rep %d T %lld K %lld: start[%lld] = %lld, rule %lld",
                              SEED + 1, rep, (long long)T, (long long)K, (long long)k, (long long)s[k],
                              (long long)want);
            }
        }
    }
}
END_TEST

START_TEST(test_bounds_errors)
{
    const float d[4] = {1, 2, 3, 4};
    int64_t s[6];
    const int64_t TK[4][2] = {{0, 1}, {4, 0}, {4, 5}, {-1, 1}};
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(fr_chunk_bounds(d, TK[k][0], TK[k][1], s), FR_ERR_ARG);
        ck_assert_msg(strstr(fr_last_error(), "chunks") && !strchr(fr_last_error(), '\n'), "%s", fr_last_error());
    }
    const float bad[3] = {-1.0f, NAN, INFINITY};
    for (int k = 0; k < 3; k++) {
        float e[4] = {1, 2, 3, 4};
        e[2] = bad[k];
        ck_assert_int_eq(fr_chunk_bounds(e, 4, 2, s), FR_ERR_ARG);
        ck_assert_msg(strstr(fr_last_error(), "d[2]") && !strchr(fr_last_error(), '\n'), "%s", fr_last_error());
    }
    ck_assert_int_eq(fr_chunk_bounds(NULL, 4, 2, s), FR_ERR_ARG);
    ck_assert_int_eq(fr_chunk_bounds(d, 4, 2, NULL), FR_ERR_ARG);
}
END_TEST

Suite *suite_chunk(void)
{
    Suite *s = suite_create("chunk");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_rel_l1_by_hand);
    tcase_add_test(tc, test_rel_l1_zeros);
    tcase_add_test(tc, test_rel_l1_errors);
    tcase_add_test(tc, test_bounds_by_hand);
    tcase_add_test(tc, test_bounds_uniform);
    tcase_add_test(tc, test_bounds_sweep);
    tcase_add_test(tc, test_bounds_errors);
    suite_add_tcase(s, tc);
    return s;
}
