/* Local-group and tree advantages (docs/algorithms/advantages.md §1.2, §1.3): hand-computed
 * cases, equal rewards giving exactly 0, float64 re-implementations of the public code's
 * formulas (torch.std unbiased, + 1e-8), and the argument checks. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/advantage.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* The float32 results against float64 formulas: an error is measured in float32 ulps of
 * `scale`, the size of what it is made of. A = (r − mean)/(std + eps) inherits the error of
 * the canonical mean (a few roundings of max|r| for these group sizes, divided by std) and
 * of std and the division (a few roundings of |A|), so scale = max|r|/std + |A|; a node
 * reward is a mean or a softmax-weighted mean of rewards, scale = max|r|. Measured: at most
 * 0.92 (groups), 1.15 (tree A) and 1.03 (tree R) ulps of the scale; the runs print theirs. */
#define MAX_ERR 4.0

/* Asserts the error bound and returns the error in ulps of the scale. */
static double close_to(float got, double want, double scale, const char *what, uint64_t seed, int64_t i)
{
    double err = fabs((double)got - want) / (FLT_EPSILON * (scale > 0 ? scale : 1.0));
    ck_assert_msg(err <= MAX_ERR, "seed %llx %s[%lld]: %.9g, float64 %.17g (%.1f ulps of %.3g)", (unsigned long long)seed,
                  what, (long long)i, (double)got, want, err, scale);
    return err;
}

static double test_normal(uint64_t *s)
{
    double u1 = ((double)(fr_test_next(s) >> 11) + 0.5) * 0x1.0p-53;
    double u2 = (double)(fr_test_next(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* torch: mean, std(unbiased), (r − mean)/(std + 1e-8), here in float64; scale per sample. */
static void d_local(int64_t B, const float *r, int64_t G, double *A, double *scale)
{
    for (int64_t a = 0; a < B; a += G) {
        double m = 0, v = 0, mr = 0;
        for (int64_t i = a; i < a + G; i++) m += r[i];
        m /= (double)G;
        for (int64_t i = a; i < a + G; i++) v += (r[i] - m) * (r[i] - m), mr = fmax(mr, fabs(r[i]));
        double s = sqrt(v / (double)(G - 1));
        for (int64_t i = a; i < a + G; i++) {
            A[i] = (r[i] - m) / (s + 1e-8);
            scale[i] = mr / (s + 1e-8) + fabs(A[i]);
        }
    }
}

/* Rewards of P groups of G: a random offset and spread per group, every fourth group equal. */
static void make_groups(uint64_t *seed, int64_t P, int64_t G, float *r)
{
    for (int64_t p = 0; p < P; p++) {
        double base = 10.0 * test_normal(seed), spread = exp(2.0 * test_normal(seed));
        int equal = fr_test_next(seed) % 4 == 0;
        for (int64_t k = 0; k < G; k++) r[p * G + k] = (float)(equal ? base : base + spread * test_normal(seed));
    }
}

static int one_line(void) { return strchr(fr_last_error(), '\n') == NULL && fr_last_error()[0] != '\0'; }

/* ---- §1.2 local groups ----------------------------------------------------------------- */

START_TEST(test_local_hand)
{
    /* group {1, 2, 3, 4}: mean 2.5, unbiased variance 5/3; group {5, 5, 5, 5}: exactly 0 */
    const float r[8] = {1, 2, 3, 4, 5, 5, 5, 5};
    float a[8];
    ck_assert_int_eq(fr_adv_local_group(8, r, 4, FR_ADV_EPS_LOCAL, a), FR_OK);
    double s = sqrt(5.0 / 3.0);
    for (int i = 0; i < 4; i++) close_to(a[i], (r[i] - 2.5) / (s + 1e-8), 3.0, "hand", 0, i);
    ck_assert(fabs(a[3] - 1.161895) < 1e-6); /* 1.5/1.2909944 */
    for (int i = 4; i < 8; i++) ck_assert(a[i] == 0.0f && !signbit(a[i]));
    /* two samples: ±1/√2 whatever the rewards (std = |r0 − r1|/√2) */
    const float p[2] = {0.25f, 7.0f};
    ck_assert_int_eq(fr_adv_local_group(2, p, 2, FR_ADV_EPS_LOCAL, a), FR_OK);
    close_to(a[0], -M_SQRT1_2, 1.0, "pair", 0, 0);
    close_to(a[1], M_SQRT1_2, 1.0, "pair", 0, 1);
    /* equal rewards whose float32 sum rounds (7 × 0.1f): still exactly 0 */
    float same[7] = {0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
    ck_assert_int_eq(fr_adv_local_group(7, same, 7, FR_ADV_EPS_LOCAL, a), FR_OK);
    for (int i = 0; i < 7; i++) ck_assert(a[i] == 0.0f);
}
END_TEST

START_TEST(test_local_vs_float64)
{
    enum { MAXB = 256 };
    double worst = 0;
    for (int trial = 0; trial < 40; trial++) {
        uint64_t seed0 = 0x10CA1u + 7919u * (uint64_t)trial, seed = seed0;
        int64_t G = 2 + (int64_t)(fr_test_next(&seed) % 23), P = 1 + (int64_t)(fr_test_next(&seed) % 8), B = P * G;
        float r[MAXB], a[MAXB];
        double d[MAXB], sc[MAXB];
        make_groups(&seed, P, G, r);
        ck_assert_int_eq(fr_adv_local_group(B, r, G, FR_ADV_EPS_LOCAL, a), FR_OK);
        d_local(B, r, G, d, sc);
        for (int64_t i = 0; i < B; i++) {
            worst = fmax(worst, close_to(a[i], d[i], sc[i], "A", seed0, i));
            if (d[i] == 0.0) ck_assert_msg(a[i] == 0.0f, "seed %llx: equal group gave %g", (unsigned long long)seed0, (double)a[i]);
        }
    }
    printf("adv_local: fr_adv_local_group within %.2f ulps of the scale of float64 (bound %g)\n", worst, MAX_ERR);
}
END_TEST

START_TEST(test_local_sum)
{
    enum { NG = 3, G = 6, P = 4, B = G * P };
    for (int trial = 0; trial < 10; trial++) {
        uint64_t seed0 = 0x5u + 131u * (uint64_t)trial, seed = seed0;
        float r[NG * B], a[B], row[NG][B];
        double want[B], scale[B];
        for (int g = 0; g < NG; g++) make_groups(&seed, P, G, r + g * B);
        ck_assert_int_eq(fr_adv_local_group_sum(NG, B, r, G, FR_ADV_EPS_LOCAL, a), FR_OK);
        /* bit for bit: ((0 + a_0) + a_1) + a_2 of the single-granularity estimator */
        for (int g = 0; g < NG; g++) ck_assert_int_eq(fr_adv_local_group(B, r + g * B, G, FR_ADV_EPS_LOCAL, row[g]), FR_OK);
        for (int i = 0; i < B; i++) {
            float acc = 0.0f;
            for (int g = 0; g < NG; g++) acc = acc + row[g][i];
            ck_assert_msg(fr_test_bits_equal(a[i], acc), "seed %llx [%d]: %a vs %a", (unsigned long long)seed0, i, (double)a[i],
                          (double)acc);
        }
        /* and against float64 */
        for (int i = 0; i < B; i++) want[i] = scale[i] = 0;
        for (int g = 0; g < NG; g++) {
            double d[B], sc[B];
            d_local(B, r + g * B, G, d, sc);
            for (int i = 0; i < B; i++) want[i] += d[i], scale[i] += sc[i];
        }
        for (int i = 0; i < B; i++) close_to(a[i], want[i], scale[i], "sum", seed0, i);
    }
    /* one granularity is the plain estimator; an equal group sums to +0 */
    const float r1[4] = {3, 3, 3, 3};
    float a1[4];
    ck_assert_int_eq(fr_adv_local_group_sum(1, 4, r1, 2, FR_ADV_EPS_LOCAL, a1), FR_OK);
    for (int i = 0; i < 4; i++) ck_assert(a1[i] == 0.0f && !signbit(a1[i]));
}
END_TEST

START_TEST(test_local_errors)
{
    float r[6] = {1, 2, 3, 4, 5, 6}, a[6];
    ck_assert_int_eq(fr_adv_local_group(6, r, 1, FR_ADV_EPS_LOCAL, a), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "group size 1 has no std") && one_line(), "%s", fr_last_error());
    ck_assert_int_eq(fr_adv_local_group(6, r, 4, FR_ADV_EPS_LOCAL, a), FR_ERR_ARG);
    ck_assert(one_line());
    ck_assert_int_eq(fr_adv_local_group(6, r, 0, FR_ADV_EPS_LOCAL, a), FR_ERR_ARG);
    ck_assert_int_eq(fr_adv_local_group(0, r, 2, FR_ADV_EPS_LOCAL, a), FR_ERR_ARG);
    ck_assert_int_eq(fr_adv_local_group(6, NULL, 2, FR_ADV_EPS_LOCAL, a), FR_ERR_ARG);
    ck_assert_int_eq(fr_adv_local_group(6, r, 2, 0.0f, a), FR_ERR_ARG);
    ck_assert_int_eq(fr_adv_local_group_sum(0, 6, r, 2, FR_ADV_EPS_LOCAL, a), FR_ERR_ARG);
    ck_assert_int_eq(fr_adv_local_group_sum(2, 3, r, 1, FR_ADV_EPS_LOCAL, a), FR_ERR_ARG);
    r[4] = NAN;
    ck_assert_int_eq(fr_adv_local_group(6, r, 3, FR_ADV_EPS_LOCAL, a), FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "reward[4]") && one_line(), "%s", fr_last_error());
    r[4] = 5;
    r[5] = INFINITY; /* row 1 of (2, 3) */
    ck_assert_int_eq(fr_adv_local_group_sum(2, 3, r, 3, FR_ADV_EPS_LOCAL, a), FR_ERR_NUMERIC);
    ck_assert(one_line());
}
END_TEST

/* ---- §1.3 the tree --------------------------------------------------------------------- */

/* float64 re-implementation of compute_node_rewards_from_leaves and
 * compute_hierarchical_advantages_by_depth on one tree, node by node (recursively). */
typedef struct {
    int64_t B, n_split;
    const int64_t *width;
    int64_t span[8];
    const float *r, *lp; /* lp NULL: mean of the leaves */
} dtree;

static double d_node(const dtree *t, int64_t d, int64_t a)
{
    if (d == t->n_split) return t->r[a];
    if (!t->lp) {
        double m = 0;
        for (int64_t s = a; s < a + t->span[d]; s++) m += t->r[s];
        return m / (double)t->span[d];
    }
    int64_t W = t->width[d], cs = t->span[d + 1];
    double mx = -INFINITY, S = 0, R = 0;
    for (int64_t c = 0; c < W; c++) mx = fmax(mx, t->lp[d * t->B + a + c * cs]);
    for (int64_t c = 0; c < W; c++) S += exp(t->lp[d * t->B + a + c * cs] - mx);
    for (int64_t c = 0; c < W; c++) R += exp(t->lp[d * t->B + a + c * cs] - mx) / S * d_node(t, d + 1, a + c * cs);
    return R;
}

/* adv, R (n_split + 1, B) broadcast to leaves; scale per entry of adv. */
static void d_tree(const dtree *t, double *adv, double *R, double *scale)
{
    int64_t L = t->span[0];
    for (int64_t d = 0; d <= t->n_split; d++)
        for (int64_t tr = 0; tr < t->B; tr += L) {
            int64_t nd = L / t->span[d];
            double m = 0, v = 0, mr = 0, Rj[64];
            for (int64_t j = 0; j < nd; j++) m += Rj[j] = d_node(t, d, tr + j * t->span[d]);
            m /= (double)nd;
            for (int64_t j = 0; j < nd; j++) v += (Rj[j] - m) * (Rj[j] - m), mr = fmax(mr, fabs(Rj[j]));
            double s = nd > 1 ? sqrt(v / (double)(nd - 1)) : 0.0;
            for (int64_t j = 0; j < nd; j++)
                for (int64_t k = 0; k < t->span[d]; k++) {
                    int64_t i = d * t->B + tr + j * t->span[d] + k;
                    R[i] = Rj[j];
                    adv[i] = (nd == 1 || s < 1e-6) ? 0.0 : (Rj[j] - m) / (s + 1e-8);
                    scale[i] = mr / (s + 1e-8) + fabs(adv[i]);
                }
        }
}

static dtree make_dtree(int64_t B, int64_t n_split, const int64_t *width, const float *r, const float *lp)
{
    dtree t = {B, n_split, width, {0}, r, lp};
    int64_t L = 1;
    for (int64_t k = 0; k < n_split; k++) L *= width[k];
    t.span[0] = L;
    for (int64_t d = 1; d <= n_split; d++) t.span[d] = t.span[d - 1] / width[d - 1];
    return t;
}

/* One edge log-prob per node, shared by its leaves (the public code's per-element mean of
 * a Gaussian log-density, around −1 in these units). */
static void make_logp(uint64_t *seed, int64_t B, int64_t n_split, const int64_t *span, float *lp)
{
    for (int64_t d = 1; d <= n_split; d++)
        for (int64_t s = 0; s < B; s += span[d]) {
            float v = (float)(-1.0 + 0.5 * test_normal(seed));
            for (int64_t k = 0; k < span[d]; k++) lp[(d - 1) * B + s + k] = v;
        }
}

START_TEST(test_tree_hand)
{
    /* 2×2 trees: {1, 2, 3, 5}, {2, 2, 2, 2}, {1, 3, 3, 1} */
    const int64_t w[2] = {2, 2};
    const float r[12] = {1, 2, 3, 5, 2, 2, 2, 2, 1, 3, 3, 1};
    float a[3 * 12], R[3 * 12];
    ck_assert_int_eq(fr_adv_tree(12, r, 2, w, 0, NULL, FR_ADV_EPS_LOCAL, a, R), FR_OK);
    /* depth 0: one node per tree -> 0; its R is the tree's mean */
    const float R0[3] = {2.75f, 2.0f, 2.0f};
    for (int s = 0; s < 12; s++) ck_assert(a[s] == 0.0f && R[s] == R0[s / 4]);
    /* depth 1: nodes {1.5, 4}: ±1/√2; {2, 2} and {2, 2}: 0 */
    const float R1[6] = {1.5f, 4.0f, 2.0f, 2.0f, 2.0f, 2.0f};
    for (int s = 0; s < 12; s++) ck_assert(R[12 + s] == R1[s / 2]);
    for (int s = 0; s < 4; s++) close_to(a[12 + s], s < 2 ? -M_SQRT1_2 : M_SQRT1_2, 1.0, "depth 1", 0, s);
    for (int s = 4; s < 12; s++) ck_assert(a[12 + s] == 0.0f);
    /* depth 2, the leaves: tree 0 mean 2.75, variance 8.75/3; tree 1: 0; tree 2 mean 2, variance 4/3 */
    for (int s = 0; s < 12; s++) ck_assert(R[24 + s] == r[s]);
    for (int s = 0; s < 4; s++) close_to(a[24 + s], (r[s] - 2.75) / (sqrt(8.75 / 3) + 1e-8), 3.0, "tree 0 leaves", 0, s);
    for (int s = 4; s < 8; s++) ck_assert(a[24 + s] == 0.0f);
    for (int s = 8; s < 12; s++) close_to(a[24 + s], (r[s] - 2.0) / (sqrt(4.0 / 3) + 1e-8), 3.0, "tree 2 leaves", 0, s);

    /* a depth with one node: no splits (every leaf its own tree), and a width-1 split */
    float a0[4], R0b[4];
    ck_assert_int_eq(fr_adv_tree(4, r, 0, NULL, 0, NULL, FR_ADV_EPS_LOCAL, a0, R0b), FR_OK);
    for (int s = 0; s < 4; s++) ck_assert(a0[s] == 0.0f && R0b[s] == r[s]);
    const int64_t w1[2] = {1, 4};
    ck_assert_int_eq(fr_adv_tree(4, r, 2, w1, 0, NULL, FR_ADV_EPS_LOCAL, a, R), FR_OK);
    for (int s = 0; s < 8; s++) ck_assert(a[s] == 0.0f && R[s] == 2.75f);

    /* a depth whose std is below 1e-6 (but not 0) gives 0: nodes 1 and 1 + 2^-23 */
    const float tiny[4] = {1.0f, 1.0f, 1.0f + FLT_EPSILON, 1.0f + FLT_EPSILON};
    ck_assert_int_eq(fr_adv_tree(4, tiny, 2, w, 0, NULL, FR_ADV_EPS_LOCAL, a, R), FR_OK);
    for (int s = 0; s < 12; s++) ck_assert(a[s] == 0.0f);
}
END_TEST

START_TEST(test_tree_prob_weighted_hand)
{
    /* leaves {1, 2, 3, 5}; edge log-probs into the leaves {0, ln 3, 0, 0}, into the depth-1
     * nodes {0, 0, ln 3, ln 3}: R(0,1) = 1/4·1 + 3/4·2 = 1.75, R(2,3) = 4, the root
     * 1/4·1.75 + 3/4·4 = 3.4375 */
    const int64_t w[2] = {2, 2};
    const float r[4] = {1, 2, 3, 5};
    float l3 = (float)log(3.0);
    const float lp[8] = {0, 0, l3, l3, 0, l3, 0, 0};
    float a[12], R[12];
    ck_assert_int_eq(fr_adv_tree(4, r, 2, w, 1, lp, FR_ADV_EPS_LOCAL, a, R), FR_OK);
    /* the weights come from ln 3 rounded to float and fr_expf (<= 1 ulp): a few ulps of 5 */
    for (int s = 0; s < 4; s++) close_to(R[s], 3.4375, 5.0, "root R", 0, s);
    for (int s = 0; s < 4; s++) close_to(R[4 + s], s < 2 ? 1.75 : 4.0, 5.0, "depth-1 R", 0, s);
    for (int s = 0; s < 4; s++) ck_assert(R[8 + s] == r[s] && a[s] == 0.0f);
    for (int s = 0; s < 4; s++) close_to(a[4 + s], s < 2 ? -M_SQRT1_2 : M_SQRT1_2, 1.0, "depth-1 A", 0, s);
    /* equal log-probs: the plain mean of the children */
    const float lz[8] = {0};
    ck_assert_int_eq(fr_adv_tree(4, r, 2, w, 1, lz, FR_ADV_EPS_LOCAL, a, R), FR_OK);
    ck_assert(R[0] == 2.75f && R[4] == 1.5f && R[6] == 4.0f);
}
END_TEST

START_TEST(test_tree_vs_float64)
{
    static const int64_t shapes[][5] = {
        /* n_split, widths */
        {4, 2, 2, 2, 2}, /* BranchGRPO's 0,3,6,9: 16 leaves */
        {2, 3, 2, 0, 0}, {3, 2, 1, 3, 0}, {1, 4, 0, 0, 0}, {2, 4, 4, 0, 0},
    };
    enum { MAXB = 96 };
    double worst_A = 0, worst_R = 0;
    for (int si = 0; si < (int)(sizeof shapes / sizeof shapes[0]); si++)
        for (int prob = 0; prob < 2; prob++)
            for (int trial = 0; trial < 6; trial++) {
                uint64_t seed0 = 0x7EEu + 1009u * (uint64_t)(si * 100 + prob * 10 + trial), seed = seed0;
                int64_t ns = shapes[si][0];
                const int64_t *w = &shapes[si][1];
                dtree t0 = make_dtree(1, ns, w, NULL, NULL);
                int64_t L = t0.span[0], T = MAXB / L < 3 ? MAXB / L : 3, B = T * L;
                float r[MAXB], lp[4 * MAXB], a[5 * MAXB], R[5 * MAXB];
                double da[5 * MAXB], dR[5 * MAXB], sc[5 * MAXB];
                make_groups(&seed, T, L, r);
                make_logp(&seed, B, ns, t0.span, lp);
                ck_assert_int_eq(fr_adv_tree(B, r, ns, w, prob, prob ? lp : NULL, FR_ADV_EPS_LOCAL, a, R), FR_OK);
                dtree t = make_dtree(B, ns, w, r, prob ? lp : NULL);
                d_tree(&t, da, dR, sc);
                for (int64_t i = 0; i < (ns + 1) * B; i++) {
                    double mr = 0;
                    for (int64_t s = 0; s < B; s++) mr = fmax(mr, fabs(r[s]));
                    worst_R = fmax(worst_R, close_to(R[i], dR[i], mr, "R", seed0, i));
                    if (da[i] == 0.0) ck_assert_msg(a[i] == 0.0f, "seed %llx: A[%lld] = %g, float64 0", (unsigned long long)seed0,
                                                    (long long)i, (double)a[i]);
                    else worst_A = fmax(worst_A, close_to(a[i], da[i], sc[i], "A", seed0, i));
                }
            }
    printf("adv_local: fr_adv_tree within %.2f ulps (A) and %.2f ulps (R) of the scale of float64 (bound %g)\n", worst_A,
           worst_R, MAX_ERR);
}
END_TEST

START_TEST(test_tree_errors)
{
    const int64_t w[2] = {2, 2}, w0[1] = {0};
    float r[8] = {1, 2, 3, 4, 5, 6, 7, 8}, lp[16] = {0}, a[24], R[24];
    ck_assert_int_eq(fr_adv_tree(6, r, 2, w, 0, NULL, FR_ADV_EPS_LOCAL, a, R), FR_ERR_ARG); /* 6 % 4 */
    ck_assert(one_line());
    ck_assert_int_eq(fr_adv_tree(8, r, 1, w0, 0, NULL, FR_ADV_EPS_LOCAL, a, R), FR_ERR_ARG);
    ck_assert_int_eq(fr_adv_tree(8, r, -1, w, 0, NULL, FR_ADV_EPS_LOCAL, a, R), FR_ERR_ARG);
    ck_assert_int_eq(fr_adv_tree(8, r, 2, NULL, 0, NULL, FR_ADV_EPS_LOCAL, a, R), FR_ERR_ARG);
    ck_assert_int_eq(fr_adv_tree(8, r, 2, w, 1, NULL, FR_ADV_EPS_LOCAL, a, R), FR_ERR_ARG);
    ck_assert_int_eq(fr_adv_tree(8, r, 2, w, 0, NULL, FR_ADV_EPS_LOCAL, a, NULL), FR_ERR_ARG);
    ck_assert_int_eq(fr_adv_tree(8, r, 2, w, 0, NULL, -1.0f, a, R), FR_ERR_ARG);
    /* the edge into a depth-1 node is shared by its two leaves */
    lp[1] = 0.5f;
    ck_assert_int_eq(fr_adv_tree(8, r, 2, w, 1, lp, FR_ADV_EPS_LOCAL, a, R), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "logp[0][1]") && one_line(), "%s", fr_last_error());
    lp[1] = 0.0f;
    lp[8 + 3] = NAN;
    ck_assert_int_eq(fr_adv_tree(8, r, 2, w, 1, lp, FR_ADV_EPS_LOCAL, a, R), FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "logp[1][3]") && one_line(), "%s", fr_last_error());
    lp[8 + 3] = 0.0f;
    r[7] = -INFINITY;
    ck_assert_int_eq(fr_adv_tree(8, r, 2, w, 0, NULL, FR_ADV_EPS_LOCAL, a, R), FR_ERR_NUMERIC);
    ck_assert(one_line());
}
END_TEST

/* ---- against the public code in torch ------------------------------------------------- */

/* The cases of tests/torch/adv_local_ref.py: local groups (DanceGRPO's 12, G²RPO's two
 * granularities, pairs) and trees given as sampler steps (BranchGRPO's T = 20 with splits at
 * 0, 3, 6, 9; a tree whose first split is not at step 0; widths 3 and 4). */
enum { TB = 48, TMAXS = 4, TMAXT = 20 };
typedef struct {
    int64_t kind, n_gran, G, B, T, n_split, split[TMAXS], width[TMAXS], prob;
    float r[2 * TB], lp[TMAXS * TB];
} torch_case;

static const torch_case k_torch_cases[] = {
    {.kind = 0, .n_gran = 1, .G = 12, .B = 48},
    {.kind = 0, .n_gran = 2, .G = 12, .B = 24},
    {.kind = 0, .n_gran = 1, .G = 2, .B = 16},
    {.kind = 1, .B = 32, .T = 20, .n_split = 4, .split = {0, 3, 6, 9}, .width = {2, 2, 2, 2}, .prob = 0},
    {.kind = 1, .B = 32, .T = 20, .n_split = 4, .split = {0, 3, 6, 9}, .width = {2, 2, 2, 2}, .prob = 1},
    {.kind = 1, .B = 36, .T = 6, .n_split = 2, .split = {1, 4}, .width = {3, 2}, .prob = 1},
    {.kind = 1, .B = 24, .T = 5, .n_split = 1, .split = {2}, .width = {4}, .prob = 0},
};
#define N_TORCH (int)(sizeof k_torch_cases / sizeof k_torch_cases[0])

static void write_i64(FILE *f, int64_t v) { ck_assert(fwrite(&v, sizeof v, 1, f) == 1); }

/* Runs the script on the cases; out gets its floats in order. */
static void run_torch(const torch_case *cs, int n, float *out, size_t n_out)
{
    const char *py = fr_test_torch_python();
    ck_assert_msg(py != NULL, "adv_local: no python3 imports torch ($FLOWRL_PYTHON, /usr/bin/python3, python3); "
                              "./configure --install-deps installs python3-torch");
    char in[] = "/tmp/flowrl_advl_in_XXXXXX", outp[] = "/tmp/flowrl_advl_out_XXXXXX";
    int fi = mkstemp(in), fo = mkstemp(outp);
    ck_assert(fi >= 0 && fo >= 0);
    close(fo);
    FILE *f = fdopen(fi, "wb");
    ck_assert_ptr_nonnull(f);
    write_i64(f, n);
    for (int c = 0; c < n; c++) {
        const torch_case *t = &cs[c];
        write_i64(f, t->kind);
        if (t->kind == 0) {
            write_i64(f, t->n_gran), write_i64(f, t->B), write_i64(f, t->G);
            ck_assert(fwrite(t->r, sizeof(float), (size_t)(t->n_gran * t->B), f) == (size_t)(t->n_gran * t->B));
        } else {
            write_i64(f, t->B), write_i64(f, t->T), write_i64(f, t->n_split);
            for (int64_t k = 0; k < t->n_split; k++) write_i64(f, t->split[k]);
            for (int64_t k = 0; k < t->n_split; k++) write_i64(f, t->width[k]);
            write_i64(f, t->prob);
            ck_assert(fwrite(t->r, sizeof(float), (size_t)t->B, f) == (size_t)t->B);
            ck_assert(fwrite(t->lp, sizeof(float), (size_t)(t->n_split * t->B), f) == (size_t)(t->n_split * t->B));
        }
    }
    ck_assert_int_eq(fclose(f), 0);
    char cmd[2048], msg[4096];
    snprintf(cmd, sizeof cmd, "%s %s/tests/torch/adv_local_ref.py --in %s --out %s 2>&1", py, fr_test_src(), in, outp);
    int rc = fr_test_run_sh(cmd, msg, sizeof msg);
    unlink(in);
    ck_assert_msg(rc == 0, "adv_local: `%s` exited %d:\n%s", cmd, rc, msg);
    f = fopen(outp, "rb");
    ck_assert_ptr_nonnull(f);
    size_t got = fread(out, sizeof(float), n_out, f);
    int extra = fgetc(f);
    fclose(f);
    unlink(outp);
    ck_assert_msg(got == n_out && extra == EOF, "adv_local: %s holds not the %zu floats expected", outp, n_out);
}

/* flowrl and torch float32 each within ~1 ulp of the scale of float64 (test_*_vs_float64);
 * between them twice that. Where float64 gives exactly 0 (a group or depth of equal
 * rewards) flowrl gives 0 and torch may not: its float32 mean of equal values can round,
 * and (r − mean)/(std + 1e-8) then turns the rounding into |A| up to ~1 (docs §1.2); those
 * entries are counted, not compared. */
START_TEST(test_against_torch)
{
    static torch_case cs[N_TORCH];
    memcpy(cs, k_torch_cases, sizeof cs);
    size_t n_out = 0;
    for (int c = 0; c < N_TORCH; c++) {
        torch_case *t = &cs[c];
        uint64_t seed = 0x70C4u + 31u * (uint64_t)c;
        if (t->kind == 0) {
            for (int64_t g = 0; g < t->n_gran; g++) make_groups(&seed, t->B / t->G, t->G, t->r + g * t->B);
            n_out += (size_t)t->B;
        } else {
            dtree d0 = make_dtree(t->B, t->n_split, t->width, NULL, NULL);
            make_groups(&seed, t->B / d0.span[0], d0.span[0], t->r);
            make_logp(&seed, t->B, t->n_split, d0.span, t->lp);
            n_out += 2 * (size_t)((t->T + 1) * t->B);
        }
    }
    float *out = malloc(n_out * sizeof *out);
    ck_assert_ptr_nonnull(out);
    run_torch(cs, N_TORCH, out, n_out);
    const float *o = out;
    double worst = 0;
    int compared = 0, torch_noise = 0;
    for (int c = 0; c < N_TORCH; c++) {
        const torch_case *t = &cs[c];
        int64_t B = t->B;
        if (t->kind == 0) {
            float a[2 * TB];
            double want[TB] = {0}, scale[TB] = {0}, d[TB], sc[TB];
            ck_assert_int_eq(fr_adv_local_group_sum(t->n_gran, B, t->r, t->G, FR_ADV_EPS_LOCAL, a), FR_OK);
            for (int64_t g = 0; g < t->n_gran; g++) {
                d_local(B, t->r + g * B, t->G, d, sc);
                for (int64_t i = 0; i < B; i++) want[i] += d[i], scale[i] += sc[i];
            }
            for (int64_t i = 0; i < B; i++, o++) {
                if (want[i] == 0.0) {
                    torch_noise += *o != 0.0f;
                    continue;
                }
                double err = fabs((double)a[i] - (double)*o) / (FLT_EPSILON * scale[i]);
                ck_assert_msg(err <= 2 * MAX_ERR, "case %d [%lld]: flowrl %.9g, torch %.9g (%.1f ulps of %.3g)", c,
                              (long long)i, (double)a[i], (double)*o, err, scale[i]);
                worst = fmax(worst, err), compared++;
            }
        } else {
            int64_t ns = t->n_split;
            float a[(TMAXS + 1) * TB], R[(TMAXS + 1) * TB];
            double da[(TMAXS + 1) * TB], dR[(TMAXS + 1) * TB], sc[(TMAXS + 1) * TB];
            ck_assert_int_eq(fr_adv_tree(B, t->r, ns, t->width, (int)t->prob, t->lp, FR_ADV_EPS_LOCAL, a, R), FR_OK);
            dtree dt = make_dtree(B, ns, t->width, t->r, t->prob ? t->lp : NULL);
            d_tree(&dt, da, dR, sc);
            const float *tA = o, *tR = o + (t->T + 1) * B;
            double mr = 0;
            for (int64_t s = 0; s < B; s++) mr = fmax(mr, fabs(t->r[s]));
            for (int64_t k = 0; k <= t->T; k++) {
                int64_t d = 0; /* the node after step k − 1 lies below the splits at steps < k */
                while (d < ns && t->split[d] < k) d++;
                for (int64_t s = 0; s < B; s++) {
                    int64_t i = d * B + s;
                    float ta = tA[k * B + s], tr = tR[k * B + s];
                    double eR = fabs((double)R[i] - (double)tr) / (FLT_EPSILON * mr);
                    ck_assert_msg(eR <= 2 * MAX_ERR, "case %d step-depth %lld leaf %lld: R flowrl %.9g, torch %.9g", c,
                                  (long long)k, (long long)s, (double)R[i], (double)tr);
                    if (da[i] == 0.0) {
                        torch_noise += ta != 0.0f;
                        continue;
                    }
                    double err = fabs((double)a[i] - (double)ta) / (FLT_EPSILON * sc[i]);
                    ck_assert_msg(err <= 2 * MAX_ERR, "case %d step-depth %lld leaf %lld: A flowrl %.9g, torch %.9g (%.1f ulps of %.3g)",
                                  c, (long long)k, (long long)s, (double)a[i], (double)ta, err, sc[i]);
                    worst = fmax(worst, err), compared++;
                }
            }
            o += 2 * (t->T + 1) * B;
        }
    }
    free(out);
    printf("adv_local: %d advantages within %.2f ulps of the scale of torch's (bound %g); %d entries where float64 "
           "gives 0 are nonzero in torch\n",
           compared, worst, 2 * MAX_ERR, torch_noise);
}
END_TEST

Suite *suite_adv_local(void)
{
    Suite *s = suite_create("adv_local");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_local_hand);
    tcase_add_test(tc, test_local_vs_float64);
    tcase_add_test(tc, test_local_sum);
    tcase_add_test(tc, test_local_errors);
    tcase_add_test(tc, test_tree_hand);
    tcase_add_test(tc, test_tree_prob_weighted_hand);
    tcase_add_test(tc, test_tree_vs_float64);
    tcase_add_test(tc, test_tree_errors);
    suite_add_tcase(s, tc);
    /* The PyTorch peer imports torch (seconds on a loaded machine): its own case and timeout. */
    TCase *peer = tcase_create("torch");
    tcase_add_test(peer, test_against_torch);
    tcase_set_timeout(peer, 120);
    suite_add_tcase(s, peer);
    return s;
}
