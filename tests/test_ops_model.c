/* Suite `ops_model`: the op table's model section (flowrl/ops.h: temb_sinusoidal,
 * embed_gather_add, embed_scatter_add, x0_head_fwd, x0_head_bwd, noise_mix).
 *   - ref's entries give the bits of the host loops they replaced (core/embed.c, core/model.c
 *     and core/pretrain.c as of 05cd9b4, written out below as old_*);
 *   - the ids the gather and scatter cannot use: NaN in the sample's row, nothing elsewhere.
 * Replay a failure with FLOWRL_TEST_SEED=<seed printed>. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "flowrl/embed.h"
#include "flowrl/model_elem.h"
#include "flowrl/ops.h"
#include "flowrl/pretrain_elem.h"
#include "tests/ops_check.h"

/* ---- the host loops as they were ------------------------------------------------------ */

static void old_temb(int64_t B, int64_t E, const float *t, float *emb)
{
    int64_t half = E / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < E; j++) emb[b * E + j] = fr_temb_elem(t[b], j, half);
}

static void old_gather(int64_t B, int64_t S, int64_t H, const float *table, const int32_t *c, float *h)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            const float *row = table + (int64_t)c[b * S + s] * H;
            for (int64_t j = 0; j < H; j++) h[b * H + j] = h[b * H + j] + row[j];
        }
}

static void old_scatter(int64_t B, int64_t S, int64_t H, const int32_t *c, const float *dh, float *dtable)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            float *row = dtable + (int64_t)c[b * S + s] * H;
            for (int64_t j = 0; j < H; j++) row[j] = row[j] + dh[b * H + j];
        }
}

/* core/model.c's x0 head, forward (keep = 1 stores den) and backward. */
static void old_x0_fwd(int64_t B, int64_t D, float sigma_min, const float *t, const float *x, const float *xo,
                       float *den, float *out)
{
    for (int64_t b = 0; b < B; b++) {
        float d = fr_x0_head_denom(t[b], sigma_min);
        if (den) den[b] = d;
        const float *xb = x + b * D, *ob = xo + b * D;
        float *vb = out + b * D;
        for (int64_t i = 0; i < D; i++) vb[i] = fr_x0_head_velocity(xb[i], ob[i], d);
    }
}

static void old_x0_bwd(int64_t B, int64_t D, const float *den, const float *dout, float *dxo)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < D; i++) dxo[b * D + i] = -fr_x0_head_grad(dout[b * D + i], den[b]);
}

/* core/pretrain.c's make_batch (B rows) and core/awm_time.c (R = K·B rows): flow and DDPM. */
static float old_flow_noised(float x0, float eps, float sigma) { return (1.0f - sigma) * x0 + sigma * eps; }
static float old_ddpm_noised(float x0, float eps, float sa, float s1a) { return sa * x0 + s1a * eps; }

/* ---- helpers ----------------------------------------------------------------------------- */

static void assert_bits(const char *what, const float *got, const float *want, int64_t n, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fr_test_bits_equal(got[i], want[i]), "%s: element %lld is %a, expected %a (seed %#llx)", what,
                      (long long)i, (double)got[i], (double)want[i], (unsigned long long)seed);
}

static int32_t *ids_alloc(int64_t n)
{
    int32_t *p = (int32_t *)calloc((size_t)(n > 0 ? n : 1), sizeof(int32_t));
    ck_assert(p != NULL);
    return p;
}

/* ---- time embedding -------------------------------------------------------------------- */

START_TEST(test_temb_is_old_loop)
{
    const fr_ops *ops = ops_ref();
    const uint64_t seed = ops_seed(0x7e4b01);
    uint64_t s = seed;
    const int64_t Es[] = {2, 8, 64, 130};
    for (size_t e = 0; e < sizeof Es / sizeof Es[0]; e++) {
        const int64_t B = 9, E = Es[e];
        float *t = ops_alloc(B), *got = ops_alloc(B * E), *want = ops_alloc(B * E);
        ops_fill_uniform(&s, t, B, 0.0f, 1000.0f);
        t[0] = 0.0f, t[1] = 1000.0f, t[2] = 999.0f; /* the ends of flow time and DDPM's last step */
        ops->temb_sinusoidal(B, E, t, got);
        old_temb(B, E, t, want);
        assert_bits("temb_sinusoidal", got, want, B * E, seed);
        free(t), free(got), free(want);
    }
}
END_TEST

/* ---- condition table ------------------------------------------------------------------- */

/* One case of the gather (scatter = 0) or the scatter against the old loop: ids drawn from
 * [0, n_rows), the last one the null row. dh spans many binades, so a scatter that added a
 * row's samples in another order would change bits. */
static void table_case(const fr_ops *ops, int scatter, int64_t B, int64_t S, int64_t H, int64_t n_rows, uint64_t *s,
                       uint64_t seed)
{
    const int64_t n_out = scatter ? n_rows * H : B * H;
    float *table = ops_alloc(n_rows * H), *dh = ops_alloc(B * H), *got = ops_alloc(n_out), *want = ops_alloc(n_out);
    int32_t *c = ids_alloc(B * S);
    ops_fill_uniform(s, table, n_rows * H, -2.0f, 2.0f);
    for (int64_t i = 0; i < B * H; i++)
        dh[i] = ldexpf(fr_test_uniform(s, -1.0f, 1.0f), (int)(fr_test_next(s) % 24) - 12);
    ops_fill_uniform(s, got, n_out, -1.0f, 1.0f);
    memcpy(want, got, (size_t)n_out * sizeof(float));
    for (int64_t i = 0; i < B * S; i++) c[i] = (int32_t)(fr_test_next(s) % (uint64_t)n_rows);
    c[B * S - 1] = (int32_t)(n_rows - 1);
    if (scatter) {
        ops->embed_scatter_add(B, S, H, n_rows, c, dh, got);
        old_scatter(B, S, H, c, dh, want);
    } else {
        ops->embed_gather_add(B, S, H, n_rows, table, c, got);
        old_gather(B, S, H, table, c, want);
    }
    assert_bits(scatter ? "embed_scatter_add" : "embed_gather_add", got, want, n_out, seed);
    free(table), free(dh), free(got), free(want), free(c);
}

START_TEST(test_table_ops_are_old_loops)
{
    const uint64_t seed = ops_seed(0x9a7e01);
    uint64_t s = seed;
    /* (B, S, H, n_rows); the last ones have few rows and many samples: most rows receive
     * several samples, whose order matters to the scatter */
    const int64_t shapes[][4] = {{1, 1, 1, 1},  {7, 1, 5, 4},    {6, 3, 17, 10}, {33, 4, 64, 9},
                                 {40, 1, 5, 3}, {25, 3, 17, 4}, {64, 2, 33, 2}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        for (int scatter = 0; scatter < 2; scatter++)
            table_case(ops_ref(), scatter, shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3], &s, seed);
}
END_TEST

/* An id outside [0, n_rows): the gather fills its sample's row with NaN and reads nothing
 * outside the table; the scatter skips it; every other element keeps the old loop's bits. */
START_TEST(test_bad_ids)
{
    const fr_ops *ops = ops_ref();
    const int64_t B = 4, S = 2, H = 5, n_rows = 3;
    float table[3 * 5], h[4 * 5], want[4 * 5], dh[4 * 5], dt[3 * 5], dt_want[3 * 5];
    for (int i = 0; i < 15; i++) table[i] = (float)i * 0.25f, dt[i] = dt_want[i] = (float)-i;
    for (int i = 0; i < 20; i++) h[i] = want[i] = 1.0f / (float)(i + 1), dh[i] = (float)i * 0.5f;
    int32_t c[8] = {0, 2, -1, 1, 1, 3, 2, 2}; /* samples 1 and 2 each hold one bad id */
    int32_t c_ok[8] = {0, 2, 0, 1, 1, 0, 2, 2};
    ops->embed_gather_add(B, S, H, n_rows, table, c, h);
    old_gather(B, S, H, table, c_ok, want);
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < H; j++) {
            float g = h[b * H + j];
            if (b == 1 || b == 2) ck_assert_msg(isnan(g), "gather: sample %lld, element %lld is %g, expected NaN",
                                                (long long)b, (long long)j, (double)g);
            else ck_assert(fr_test_bits_equal(g, want[b * H + j]));
        }
    /* the scatter of c equals the old scatter of c without the bad slots */
    ops->embed_scatter_add(B, S, H, n_rows, c, dh, dt);
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            int32_t id = c[b * S + s];
            if (id < 0 || id >= n_rows) continue;
            old_scatter(1, 1, H, &id, dh + b * H, dt_want);
        }
    assert_bits("embed_scatter_add with bad ids", dt, dt_want, n_rows * H, 0);
}
END_TEST

/* ---- x0 head --------------------------------------------------------------------------- */

START_TEST(test_x0_head_is_old_loop)
{
    const fr_ops *ops = ops_ref();
    const uint64_t seed = ops_seed(0x40ead1);
    uint64_t s = seed;
    const int64_t B = 11, D = 13;
    const float sigma_min = 0.02f;
    float *t = ops_alloc(B), *x = ops_alloc(B * D), *xo = ops_alloc(B * D), *dout = ops_alloc(B * D);
    float *out = ops_alloc(B * D), *want = ops_alloc(B * D), *den = ops_alloc(B), *den_want = ops_alloc(B);
    ops_fill_uniform(&s, t, B, 0.0f, 1000.0f);
    t[0] = 0.0f, t[1] = 5.0f; /* below sigma_min: the floor */
    ops_fill_uniform(&s, x, B * D, -3.0f, 3.0f);
    ops_fill_uniform(&s, xo, B * D, -3.0f, 3.0f);
    ops_fill_uniform(&s, dout, B * D, -1.0f, 1.0f);

    ops->x0_head_fwd(B, D, sigma_min, t, x, xo, den, out);
    old_x0_fwd(B, D, sigma_min, t, x, xo, den_want, want);
    assert_bits("x0_head_fwd out", out, want, B * D, seed);
    assert_bits("x0_head_fwd den", den, den_want, B, seed);
    /* inference form (no den) and out aliasing x */
    float *xa = ops_alloc(B * D);
    memcpy(xa, x, (size_t)(B * D) * sizeof(float));
    ops->x0_head_fwd(B, D, sigma_min, t, xa, xo, NULL, xa);
    assert_bits("x0_head_fwd in place", xa, want, B * D, seed);

    ops->x0_head_bwd(B, D, den, dout, out);
    old_x0_bwd(B, D, den_want, dout, want);
    assert_bits("x0_head_bwd", out, want, B * D, seed);
    memcpy(xa, dout, (size_t)(B * D) * sizeof(float));
    ops->x0_head_bwd(B, D, den, xa, xa);
    assert_bits("x0_head_bwd in place", xa, want, B * D, seed);
    free(t), free(x), free(xo), free(dout), free(out), free(want), free(den), free(den_want), free(xa);
}
END_TEST

/* ---- forward process ------------------------------------------------------------------- */

START_TEST(test_noise_mix_is_old_loop)
{
    const fr_ops *ops = ops_ref();
    const uint64_t seed = ops_seed(0x2015e1);
    uint64_t s = seed;
    const int64_t K = 3, B = 5, R = K * B, D = 21;
    float *x0 = ops_alloc(B * D), *eps = ops_alloc(R * D), *a = ops_alloc(R), *sg = ops_alloc(R);
    float *got = ops_alloc(R * D), *want = ops_alloc(R * D);
    ops_fill_uniform(&s, x0, B * D, -2.0f, 2.0f);
    ops_fill_uniform(&s, eps, R * D, -3.0f, 3.0f);
    ops_fill_uniform(&s, sg, R, 0.0f, 1.0f);
    sg[0] = 0.0f, sg[1] = 1.0f;
    /* flow: a = 1 − σ, s = σ */
    for (int64_t r = 0; r < R; r++) a[r] = 1.0f - sg[r];
    ops->noise_mix(R, B, D, x0, eps, a, sg, got);
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < D; i++) want[r * D + i] = old_flow_noised(x0[(r % B) * D + i], eps[r * D + i], sg[r]);
    assert_bits("noise_mix (flow)", got, want, R * D, seed);
    for (int64_t i = 0; i < D; i++) /* σ = 0 gives x0, σ = 1 gives ε exactly */
        ck_assert(got[i] == x0[i] && got[D + i] == eps[D + i]);
    /* DDPM: (√ᾱ, √(1−ᾱ)) per row, B rows */
    for (int64_t r = 0; r < B; r++) {
        float ab = fr_test_uniform(&s, 0.0f, 1.0f);
        fr_ddpm_coefs(ab, &a[r], &sg[r]);
    }
    ops->noise_mix(B, B, D, x0, eps, a, sg, got);
    for (int64_t r = 0; r < B; r++)
        for (int64_t i = 0; i < D; i++) want[r * D + i] = old_ddpm_noised(x0[r * D + i], eps[r * D + i], a[r], sg[r]);
    assert_bits("noise_mix (ddpm)", got, want, B * D, seed);
    free(x0), free(eps), free(a), free(sg), free(got), free(want);
}
END_TEST

Suite *suite_ops_model(void)
{
    Suite *s = suite_create("ops_model");
    TCase *tc = tcase_create("ref");
    tcase_add_test(tc, test_temb_is_old_loop);
    tcase_add_test(tc, test_table_ops_are_old_loops);
    tcase_add_test(tc, test_bad_ids);
    tcase_add_test(tc, test_x0_head_is_old_loop);
    tcase_add_test(tc, test_noise_mix_is_old_loop);
    suite_add_tcase(s, tc);
    return s;
}
