/* Suite `backends`: every backend of fr_backend_names() runs every compute entry of the op table
 * through its own memory (fr_dev_alloc, fr_h2d, the op, fr_d2h) on seeded random inputs and
 * must give ref's bits: every buffer an op receives, inputs included, is read back and compared
 * with ref's run on host copies (memcmp; two NaNs match, docs/determinism.md "Limits of the
 * promise"). Shapes straddle the tiles of kern/ (GEMM 64 × 64 × 16, 256-thread blocks, the
 * 1024-element move tile) with 1-sized and empty edges, all four ta/tb, accumulate 0/1 and
 * NULL optional arguments. A device backend (be->device) must also have replaced every
 * compute entry: a ref entry left in its table would read device memory from the host.
 * Replay a failure with FLOWRL_TEST_SEED=<seed printed>. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "flowrl/adamw.h"
#include "flowrl/backend.h"
#include "flowrl/ops.h"
#include "flowrl/ref_backend.h"
#include "tests/ops_check.h"

/* ---- buffers: host copies for ref, backend copies for the backend under test --------------- */

#define BS_MAX 12

/* One backend's run: ref's handle and the backend's, the input generator and the seed that
 * replays it. */
typedef struct {
    fr_backend *ref, *be;
    uint64_t *rng;
    uint64_t seed;
} bctx;

typedef struct {
    int n;
    int64_t count[BS_MAX];
    size_t elem[BS_MAX]; /* 4: float, 8: double */
    void *host[BS_MAX];  /* ref runs on these */
    void *dev[BS_MAX];   /* the backend runs on these (bs_upload) */
    const bctx *c;
} bufset;

static void bs_init(bufset *b, const bctx *c)
{
    memset(b, 0, sizeof *b);
    b->c = c;
}

/* A buffer of count random elements (float: uniform in [-1, 1) times 2^e, e in [-8, 8], so that
 * sums in different orders lose different low bits; double: e in [-4, 4]); returns its index.
 * The host copy may be edited before bs_upload. */
static int bs_add(bufset *b, int64_t count, size_t elem)
{
    ck_assert_int_lt(b->n, BS_MAX);
    int i = b->n++;
    b->count[i] = count;
    b->elem[i] = elem;
    b->host[i] = calloc((size_t)(count > 0 ? count : 1), elem);
    ck_assert_ptr_nonnull(b->host[i]);
    for (int64_t j = 0; j < count; j++) {
        float u = fr_test_uniform(b->c->rng, -1.0f, 1.0f);
        int e = (int)(fr_test_next(b->c->rng) % 17) - 8;
        if (elem == sizeof(float)) ((float *)b->host[i])[j] = ldexpf(u, e);
        else ((double *)b->host[i])[j] = ldexp((double)u, e / 2);
    }
    return i;
}

static int bs_f32(bufset *b, int64_t n) { return bs_add(b, n, sizeof(float)); }
static int bs_f64(bufset *b, int64_t n) { return bs_add(b, n, sizeof(double)); }
static float *bs_host_f32(bufset *b, int i) { return (float *)b->host[i]; }

static size_t bs_bytes(const bufset *b, int i) { return (size_t)(b->count[i] > 0 ? b->count[i] : 1) * b->elem[i]; }

/* Copies every host buffer into fresh backend memory. */
static void bs_upload(bufset *b)
{
    fr_backend *be = b->c->be;
    for (int i = 0; i < b->n; i++) {
        b->dev[i] = fr_dev_alloc(be, bs_bytes(b, i));
        ck_assert_msg(b->dev[i] != NULL, "%s", fr_last_error());
        ck_assert_int_eq(fr_h2d(be, b->dev[i], b->host[i], bs_bytes(b, i)), FR_OK);
    }
}

/* bs_init, k float buffers of n elements, bs_upload. */
static void bs_start(bufset *b, const bctx *c, int k, int64_t n)
{
    bs_init(b, c);
    for (int i = 0; i < k; i++) bs_f32(b, n);
    bs_upload(b);
}

/* Runs the statement after it twice: o = ref on the host copies, then o = ops on the backend
 * copies; F(i) and DBL(i) are buffer i of the side running. */
#define BOTH_SIDES(b, c)                                                                                        \
    for (int side_ = 0; side_ < 2; side_++)                                                                     \
        for (const fr_ops *o = side_ ? (c)->be->ops : (c)->ref->ops; o; o = NULL)                               \
            for (void **p = side_ ? (b).dev : (b).host; p; p = NULL)
#define F(i) ((float *)p[i])
#define DBL(i) ((double *)p[i])

/* Index of the first element where a and b differ (two NaNs match), or -1. */
static int64_t first_diff_f32(const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0 && !(isnan(a[i]) && isnan(b[i]))) return i;
    return -1;
}

static int64_t first_diff_f64(const double *a, const double *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(double)) != 0 && !(isnan(a[i]) && isnan(b[i]))) return i;
    return -1;
}

/* Reads every buffer back, compares it with ref's, frees both sides; the format names the
 * case. */
static void bs_check(bufset *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bs_check(bufset *b, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    fr_backend *be = b->c->be;
    for (int i = 0; i < b->n; i++) {
        void *got = malloc(bs_bytes(b, i));
        ck_assert_ptr_nonnull(got);
        ck_assert_int_eq(fr_d2h(be, got, b->dev[i], bs_bytes(b, i)), FR_OK);
        int64_t d;
        double want_v = 0, got_v = 0;
        if (b->elem[i] == sizeof(float)) {
            d = first_diff_f32((const float *)b->host[i], (const float *)got, b->count[i]);
            if (d >= 0) want_v = ((const float *)b->host[i])[d], got_v = ((const float *)got)[d];
        } else {
            d = first_diff_f64((const double *)b->host[i], (const double *)got, b->count[i]);
            if (d >= 0) want_v = ((const double *)b->host[i])[d], got_v = ((const double *)got)[d];
        }
        free(got);
        ck_assert_msg(d < 0, "%s %s (seed 0x%llx): buffer %d element %lld: ref %a, %s %a", be->name, what,
                      (unsigned long long)b->c->seed, i, (long long)d, want_v, be->name, got_v);
    }
    for (int i = 0; i < b->n; i++) {
        free(b->host[i]);
        fr_dev_free(be, b->dev[i]);
    }
    b->n = 0;
}

/* A handle on every backend built in (threads 2 where a backend has threads); one that cannot
 * start here (cuda without a device) is skipped with a line saying so. */
#define MAX_BACKENDS 16
static int backend_handles(fr_backend *bes)
{
    const char *const *all = fr_backend_names();
    int n = 0;
    for (int i = 0; all[i] && n < MAX_BACKENDS; i++) {
        if (fr_backend_open(&bes[n], all[i], 0, 2) != FR_OK) {
            printf("backends: %s NOT SUPPORTED here (%s)\n", all[i], fr_last_error());
            continue;
        }
        n++;
    }
    ck_assert_int_gt(n, 0);
    return n;
}

/* Runs fn (returning its case count) for every backend, each from the same seed. */
static void for_each_backend(const char *what, uint64_t seed, int (*fn)(const bctx *c))
{
    fr_backend bes[MAX_BACKENDS];
    const int nb = backend_handles(bes);
    for (int bi = 0; bi < nb; bi++) {
        uint64_t rng = seed;
        bctx c = {fr_test_ref_be(), &bes[bi], &rng, seed};
        int cases = fn(&c);
        ck_assert_int_eq(fr_dev_sync(&bes[bi]), FR_OK);
        printf("backends: %s %s: %d cases OK\n", bes[bi].name, what, cases);
        fr_backend_close(&bes[bi]);
    }
}

/* ---- GEMM ------------------------------------------------------------------------------------- */

typedef struct {
    int64_t M, N, K;
} shape3;

/* 1 × 1, K = 0 and 1, single rows and columns, tile edges (64, 16) and one past them, several
 * k-tiles, several blocks in both directions. */
static const shape3 k_gemm_shapes[] = {
    {1, 1, 1},   {1, 1, 0},   {4, 3, 0},   {3, 5, 1},    {1, 17, 9},   {5, 1, 100},  {7, 9, 13},
    {64, 64, 16}, {65, 63, 17}, {63, 65, 33}, {130, 70, 40}, {16, 200, 5}, {100, 3, 64}, {2, 129, 48},
};

static int gemm_cases(const bctx *c)
{
    int cases = 0;
    for (size_t si = 0; si < sizeof k_gemm_shapes / sizeof k_gemm_shapes[0]; si++)
        for (int v = 0; v < 8; v++) {
            const int ta = v & 1, tb = (v >> 1) & 1, acc = (v >> 2) & 1;
            const int64_t M = k_gemm_shapes[si].M, N = k_gemm_shapes[si].N, K = k_gemm_shapes[si].K;
            bufset b;
            bs_init(&b, c);
            float *A = bs_host_f32(&b, bs_f32(&b, M * K));
            bs_f32(&b, K * N);
            float *C = bs_host_f32(&b, bs_f32(&b, M * N));
            /* a zero row of op(A) and −0 in C: a chain that starts from −0 and adds +0
             * products shows any fmaf with padding (it would give +0) */
            for (int64_t k = 0; k < K && M > 1; k++) A[ta ? k * M + 1 : K + k] = 0.0f;
            for (int64_t i = 0; i < M * N; i += 3) C[i] = -0.0f;
            bs_upload(&b);
            BOTH_SIDES(b, c) o->gemm(ta, tb, M, N, K, F(0), F(1), F(2), acc);
            bs_check(&b, "gemm ta %d tb %d M %lld N %lld K %lld acc %d", ta, tb, (long long)M,
                     (long long)N, (long long)K, acc);
            cases++;
        }
    return cases;
}

START_TEST(test_gemm) { for_each_backend("gemm", ops_seed(0xb4c0001), gemm_cases); }
END_TEST

/* ---- elementwise, activations, copy ------------------------------------------------------------ */

static const int64_t k_lengths[] = {0, 1, 7, 255, 256, 257, 1000};
#define N_LENGTHS (int)(sizeof k_lengths / sizeof k_lengths[0])

static int eltwise_cases(const bctx *c)
{
    int cases = 0;
    for (int li = 0; li < N_LENGTHS; li++) {
        const int64_t n = k_lengths[li];
        bufset b;
        for (int op = 0; op < FR_BIN_COUNT; op++) {
            bs_start(&b, c, 3, n);
            BOTH_SIDES(b, c)
            {
                o->binary((fr_binop)op, n, F(0), F(1), F(2));
                o->binary((fr_binop)op, n, F(0), F(2), F(0)); /* out aliasing an input */
            }
            bs_check(&b, "binary %d n %lld", op, (long long)n);
            cases++;
        }
        for (int op = 0; op < FR_UN_COUNT; op++) {
            bs_start(&b, c, 2, n);
            BOTH_SIDES(b, c) o->unary((fr_unop)op, n, F(0), F(1));
            bs_check(&b, "unary %d n %lld", op, (long long)n);
            cases++;
        }
        bs_start(&b, c, 3, n);
        BOTH_SIDES(b, c)
        {
            o->axpby(n, 0.7f, F(0), -1.3f, F(1));
            o->scale(n, -3.1f, F(0), F(2));
            o->fill(n, -0.0f, F(0));
        }
        bs_check(&b, "axpby, scale, fill n %lld", (long long)n);
        cases += 3;
        for (int act = 0; act < FR_ACT_COUNT; act++)
            for (int acc = 0; acc < 2; acc++) {
                bs_start(&b, c, 3, n);
                BOTH_SIDES(b, c)
                {
                    o->act_bwd((fr_act)act, n, F(0), F(1), F(2), acc);
                    o->act_fwd((fr_act)act, n, F(0), F(acc ? 0 : 1)); /* in place with acc */
                }
                bs_check(&b, "act %d acc %d n %lld", act, acc, (long long)n);
                cases += 2;
            }
        for (int act = 0; act < FR_ACT_COUNT; act++) { /* MeanFlow's JVP: separate, then in place */
            bs_start(&b, c, 4, n);
            BOTH_SIDES(b, c)
            {
                o->act_jvp((fr_act)act, n, F(0), F(1), F(2), F(3));
                o->act_jvp((fr_act)act, n, F(3), F(1), F(3), F(1));
            }
            bs_check(&b, "act_jvp %d n %lld", act, (long long)n);
            cases++;
        }
    }
    return cases;
}

START_TEST(test_eltwise)
{
    for_each_backend("binary, unary, axpby, scale, fill, act_fwd, act_bwd, act_jvp", ops_seed(0xb4c0002), eltwise_cases);
}
END_TEST

/* copy has memmove semantics: disjoint, and overlapping either way by less than, and more
 * than, one move tile (1024 elements). */
static int copy_cases(const bctx *c)
{
    static const int64_t shifts[] = {1, 3, 700, 1100, -1, -5, -1030, -2000};
    int cases = 0;
    bufset b;
    for (int li = 0; li < N_LENGTHS; li++) {
        const int64_t n = k_lengths[li];
        bs_start(&b, c, 2, n);
        BOTH_SIDES(b, c) o->copy(n, F(0), F(1));
        bs_check(&b, "copy n %lld", (long long)n);
        cases++;
    }
    for (size_t hi = 0; hi < sizeof shifts / sizeof shifts[0]; hi++)
        for (int64_t n = 1; n <= 2600; n += 1299) {
            const int64_t src = 2100, dst = src + shifts[hi];
            bs_start(&b, c, 1, 6000);
            BOTH_SIDES(b, c) o->copy(n, F(0) + src, F(0) + dst);
            bs_check(&b, "overlapping copy n %lld shift %lld", (long long)n, (long long)shifts[hi]);
            cases++;
        }
    return cases;
}

START_TEST(test_copy) { for_each_backend("copy", ops_seed(0xb4c0003), copy_cases); }
END_TEST

/* ---- bias, row reductions, layer norm ---------------------------------------------------------- */

typedef struct {
    int64_t M, N;
} shape2;

/* Rows and columns of 1, 0 rows or columns, lengths around the 8 lanes and the 256-thread
 * block. */
static const shape2 k_row_shapes[] = {{1, 1}, {0, 5}, {5, 0}, {3, 8}, {5, 29}, {9, 257}, {300, 17}, {2, 1000}};
#define N_ROW_SHAPES (int)(sizeof k_row_shapes / sizeof k_row_shapes[0])

static int bias_rows_cases(const bctx *c)
{
    int cases = 0;
    for (int si = 0; si < N_ROW_SHAPES; si++)
        for (int acc = 0; acc < 2; acc++) {
            const int64_t M = k_row_shapes[si].M, N = k_row_shapes[si].N;
            bufset b;
            bs_init(&b, c);
            bs_f32(&b, M * N);
            bs_f32(&b, N);
            bs_f32(&b, M);
            bs_f32(&b, M);
            bs_upload(&b);
            BOTH_SIDES(b, c)
            {
                o->bias_grad(M, N, F(0), F(1), acc);
                o->bias_add(M, N, F(0), F(1));
                o->row_sum(M, N, F(0), F(2));
                o->row_mean(M, N, F(0), F(3));
            }
            bs_check(&b, "bias_grad, bias_add, row_sum, row_mean M %lld N %lld acc %d",
                     (long long)M, (long long)N, acc);
            cases += 4;
        }
    return cases;
}

START_TEST(test_bias_rows)
{
    for_each_backend("bias_add, bias_grad, row_sum, row_mean", ops_seed(0xb4c0004), bias_rows_cases);
}
END_TEST

/* The forward's mean and rstd feed the backward; with and without gamma / beta, dgamma / dbeta
 * and accumulation. */
static int layernorm_cases(const bctx *c)
{
    int cases = 0;
    for (int si = 0; si < N_ROW_SHAPES; si++)
        for (int v = 0; v < 8; v++) {
            const int affine = v & 1, params = (v >> 1) & 1, acc = (v >> 2) & 1;
            const int64_t M = k_row_shapes[si].M, D = k_row_shapes[si].N;
            bufset b;
            bs_init(&b, c);
            const int ix = bs_f32(&b, M * D), iy = bs_f32(&b, M * D), im = bs_f32(&b, M), ir = bs_f32(&b, M);
            const int ig = bs_f32(&b, D), ib = bs_f32(&b, D);
            const int idy = bs_f32(&b, M * D), idx = bs_f32(&b, M * D), idg = bs_f32(&b, D), idb = bs_f32(&b, D);
            bs_upload(&b);
            BOTH_SIDES(b, c)
            {
                float *gamma = affine ? F(ig) : NULL, *beta = affine ? F(ib) : NULL;
                o->layernorm_fwd(M, D, F(ix), gamma, beta, 1e-5f, F(iy), F(im), F(ir));
                o->layernorm_bwd(M, D, F(ix), gamma, F(im), F(ir), F(idy), F(idx), params ? F(idg) : NULL,
                                 params ? F(idb) : NULL, acc);
            }
            bs_check(&b, "layernorm M %lld D %lld affine %d dgamma/dbeta %d acc %d", (long long)M,
                     (long long)D, affine, params, acc);
            cases += 2;
        }
    return cases;
}

START_TEST(test_layernorm)
{
    for_each_backend("layernorm_fwd, layernorm_bwd", ops_seed(0xb4c0005), layernorm_cases);
}
END_TEST

/* ---- whole-vector reductions ------------------------------------------------------------------- */

static int sum_norm_cases(const bctx *c)
{
    static const int64_t lens[] = {0, 1, 7, 8, 9, 1000, 4097};
    const int nl = (int)(sizeof lens / sizeof lens[0]);
    int cases = 0;
    bufset b;
    for (int li = 0; li < nl; li++) {
        bs_init(&b, c);
        bs_f32(&b, lens[li]);
        bs_f32(&b, 1);
        bs_upload(&b);
        BOTH_SIDES(b, c) o->sum(lens[li], F(0), F(1));
        bs_check(&b, "sum n %lld", (long long)lens[li]);
        cases++;
    }
    /* count tensors of lengths from lens (empty ones included), in index order */
    for (int count = 0; count <= 4; count++) {
        int64_t ns[4];
        bs_init(&b, c);
        for (int t = 0; t < count; t++) bs_f32(&b, ns[t] = lens[(t * 3 + count) % nl]);
        const int io = bs_f32(&b, 1);
        bs_upload(&b);
        BOTH_SIDES(b, c)
        {
            const float *xs[4];
            for (int t = 0; t < count; t++) xs[t] = F(t);
            o->global_norm(count, xs, ns, F(io));
        }
        bs_check(&b, "global_norm count %d", count);
        cases++;
    }
    return cases;
}

START_TEST(test_sum_norm)
{
    for_each_backend("sum, global_norm", ops_seed(0xb4c0006), sum_norm_cases);
}
END_TEST

/* ---- AdamW -------------------------------------------------------------------------------------- */

static int adamw_cases(const bctx *c)
{
    int cases = 0;
    for (int li = 0; li < N_LENGTHS; li++)
        for (int64_t step = 1; step <= 1001; step += 500) {
            const int64_t n = k_lengths[li];
            const fr_adamw_hp hp = fr_adamw_prepare(1e-3, 0.9, 0.999, 1e-8, 0.01, step);
            bufset b;
            bs_init(&b, c);
            bs_f32(&b, n);
            bs_f32(&b, n);
            bs_f32(&b, n);
            float *v = bs_host_f32(&b, bs_f32(&b, n));
            for (int64_t i = 0; i < n; i++) v[i] = fabsf(v[i]); /* a second moment */
            bs_upload(&b);
            BOTH_SIDES(b, c) o->adamw(n, F(0), F(1), F(2), F(3), &hp);
            bs_check(&b, "adamw n %lld step %lld", (long long)n, (long long)step);
            cases++;
        }
    return cases;
}

START_TEST(test_adamw) { for_each_backend("adamw", ops_seed(0xb4c0007), adamw_cases); }
END_TEST

/* ---- flow matching and AWM ----------------------------------------------------------------------- */

typedef struct {
    int64_t R, B, D;
} shape_rbd;

static const shape_rbd k_flow_shapes[] = {{1, 1, 1}, {6, 3, 5}, {8, 4, 33}, {4, 4, 0}, {300, 100, 3}, {2, 2, 1000}};

static int flow_cases(const bctx *c)
{
    int cases = 0;
    for (size_t si = 0; si < sizeof k_flow_shapes / sizeof k_flow_shapes[0]; si++)
        for (int v = 0; v < 4; v++) {
            const int64_t R = k_flow_shapes[si].R, B = k_flow_shapes[si].B, D = k_flow_shapes[si].D;
            const int opt1 = v & 1, opt2 = (v >> 1) & 1; /* which optional arguments are given */
            bufset b;
            bs_init(&b, c);
            const int iv = bs_f32(&b, R * D), ie = bs_f32(&b, R * D), ix = bs_f32(&b, B * D);
            const int it = bs_f32(&b, R * D), ig = bs_f32(&b, R * D), irs = bs_f32(&b, R), il = bs_f32(&b, 1);
            const int im = bs_f64(&b, R), im2 = bs_f64(&b, R), icb = bs_f64(&b, R), ice = bs_f64(&b, R);
            bs_upload(&b);
            BOTH_SIDES(b, c)
            {
                o->flow_target(R, B, D, F(ix), F(ie), F(it));
                o->fm_loss(R, D, F(iv), F(it), opt1 ? F(irs) : NULL, opt2 ? F(il) : NULL, F(ig));
                o->awm_sqerr(R, B, D, F(iv), F(ie), F(ix), DBL(im));
                o->row_msd_f64(R, D, F(iv), F(ie), DBL(im2));
                o->kl_grad_add(R, D, F(iv), opt1 ? F(ie) : NULL, DBL(icb), opt2 ? F(it) : NULL, DBL(ice), F(ig));
            }
            bs_check(&b, "flow_target, fm_loss, awm_sqerr, row_msd_f64, kl_grad_add R %lld B %lld D %lld v %d",
                     (long long)R, (long long)B, (long long)D, v);
            cases += 5;
            const double d = v == 0 ? 0.999 : 0.5 + 0.1 * v;
            bs_init(&b, c);
            bs_f32(&b, R * D);
            bs_f32(&b, R * D);
            bs_upload(&b);
            BOTH_SIDES(b, c) o->ema_lerp(R * D, d, F(0), F(1));
            bs_check(&b, "ema_lerp n %lld d %g", (long long)(R * D), d);
            cases++;
        }
    return cases;
}

START_TEST(test_flow)
{
    for_each_backend("flow_target, fm_loss, awm_sqerr, row_msd_f64, kl_grad_add, ema_lerp", ops_seed(0xb4c0008),
                     flow_cases);
}
END_TEST

/* ---- DiffusionNFT ---------------------------------------------------------------------------- */

static int nft_cases(const bctx *c)
{
    int cases = 0;
    for (size_t si = 0; si < sizeof k_flow_shapes / sizeof k_flow_shapes[0]; si++)
        for (int v = 0; v < 2; v++) {
            const int64_t R = k_flow_shapes[si].R, B = k_flow_shapes[si].B, D = k_flow_shapes[si].D;
            const fr_nft_coef co = {v ? 0.3f : 1.0f, v ? (float)(1.0 - 0.3) : 0.0f, v ? (float)(1.0 + 0.3) : 2.0f};
            bufset b;
            bs_init(&b, c);
            const int it = bs_f32(&b, R), ixt = bs_f32(&b, R * D), iv = bs_f32(&b, R * D), ivo = bs_f32(&b, R * D);
            const int ix = bs_f32(&b, B * D), ig = bs_f32(&b, R * D), icp = bs_f64(&b, 2 * R), io = bs_f64(&b, 4 * R);
            bs_upload(&b);
            BOTH_SIDES(b, c)
            {
                o->nft_rows(R, B, D, co, F(it), F(ixt), F(iv), F(ivo), F(ix), DBL(io));
                o->nft_grad(R, B, D, co, F(it), F(ixt), F(iv), F(ivo), F(ix), DBL(icp), F(ig));
            }
            bs_check(&b, "nft_rows, nft_grad R %lld B %lld D %lld beta %g", (long long)R, (long long)B, (long long)D,
                     (double)co.b);
            cases += 2;
        }
    return cases;
}

START_TEST(test_nft) { for_each_backend("nft_rows, nft_grad", ops_seed(0xb4c0009), nft_cases); }
END_TEST

/* ---- a device backend replaced every compute entry ------------------------------------------- */

/* The compute entries are the function pointers from gemm up to mode (flowrl/ops.h), so an
 * entry added to the table later is covered without a change here. */
START_TEST(test_device_tables_have_no_ref_entry)
{
    fr_ops reft;
    memset(&reft, 0, sizeof reft);
    fr_ref_fill(&reft);
    typedef void (*entry_fn)(void);
    const size_t first = offsetof(fr_ops, gemm), end = offsetof(fr_ops, mode);
    ck_assert_uint_eq((end - first) % sizeof(entry_fn), 0);
    fr_backend bes[MAX_BACKENDS];
    const int nb = backend_handles(bes);
    int devices = 0;
    for (int bi = 0; bi < nb; bi++) {
        const fr_ops *ops = bes[bi].ops;
        if (!bes[bi].device) continue;
        devices++;
        int entries = 0;
        for (size_t off = first; off < end; off += sizeof(entry_fn)) {
            entry_fn mine, refs;
            memcpy(&mine, (const char *)ops + off, sizeof mine);
            memcpy(&refs, (const char *)&reft + off, sizeof refs);
            ck_assert_msg(refs != NULL, "ref leaves the op entry at byte %zu of fr_ops empty", off);
            ck_assert_msg(mine != refs, "%s: compute entry %d of fr_ops (0 = gemm, byte %zu) is still ref's",
                          bes[bi].name, entries, off);
            entries++;
        }
        printf("backends: %s (device): all %d compute entries are its own\n", bes[bi].name, entries);
    }
    if (!devices) printf("backends: no device backend in this build\n");
}
END_TEST

Suite *suite_backends(void)
{
    Suite *s = suite_create("backends");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_gemm);
    tcase_add_test(tc, test_eltwise);
    tcase_add_test(tc, test_copy);
    tcase_add_test(tc, test_bias_rows);
    tcase_add_test(tc, test_layernorm);
    tcase_add_test(tc, test_sum_norm);
    tcase_add_test(tc, test_adamw);
    tcase_add_test(tc, test_flow);
    tcase_add_test(tc, test_nft);
    tcase_add_test(tc, test_device_tables_have_no_ref_entry);
    suite_add_tcase(s, tc);
    return s;
}
