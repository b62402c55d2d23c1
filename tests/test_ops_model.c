/* Suite `ops_model`: the op table's model section (flowrl/ops.h: temb_sinusoidal,
 * embed_gather_add, embed_scatter_add, x0_head_fwd, x0_head_bwd, eps_head_fwd, eps_head_bwd,
 * noise_mix), run through
 * backend memory (fr_dev_alloc, fr_h2d, the entry, fr_d2h):
 *   - ref gives the bits of the host loops the entries replaced (core/embed.c, core/model.c,
 *     core/pretrain.c and core/awm_time.c as of 05cd9b4, written out below as old_*);
 *   - every backend built in (fr_backend_names(): opt, cuda-emu's kernels in guarded device
 *     memory, ...) gives ref's bits;
 *   - the ids the gather and scatter cannot use: NaN in the sample's row, nothing elsewhere.
 * Replay a failure with FLOWRL_TEST_SEED=<seed printed>. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "flowrl/backend.h"
#include "flowrl/embed.h"
#include "flowrl/model_elem.h"
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

/* core/pretrain.c's make_batch (B rows, flow or DDPM) and core/awm_time.c (R = K·B rows,
 * flow): row r mixes x0[r mod B]. */
static void old_noised(int64_t R, int64_t B, int64_t D, int ddpm, const float *x0, const float *eps,
                       const float *sigma, const float *sa, const float *s1a, float *x)
{
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < D; i++) {
            float x0i = x0[(r % B) * D + i], e = eps[r * D + i];
            x[r * D + i] = ddpm ? sa[r] * x0i + s1a[r] * e : (1.0f - sigma[r]) * x0i + sigma[r] * e;
        }
}

/* ---- one input set and every entry's outputs on it -------------------------------------- */

typedef struct {
    int64_t B, S, H, n_rows, E, D, K;
} shape;

/* (B, S, H, n_rows, E, D, K): the last ones have few table rows and many samples, so most
 * rows receive several samples, whose order matters to the scatter; H = 300 spreads a row
 * over several blocks of threads. */
static const shape k_shapes[] = {
    {1, 1, 1, 1, 2, 1, 1}, {9, 3, 17, 10, 66, 13, 3}, {33, 4, 64, 9, 8, 5, 1},
    {40, 1, 300, 3, 130, 21, 2}, {64, 2, 33, 2, 64, 3, 3},
};
#define N_SHAPES (int)(sizeof k_shapes / sizeof k_shapes[0])

typedef struct {
    shape z;
    int ddpm;
    float sigma_min;
    float *t;              /* (B,) timesteps in [0, 1000] */
    float *table, *h0;     /* (n_rows, H), (B, H) */
    int32_t *c;            /* (B, S) ids in [0, n_rows) */
    float *dh, *dt0;       /* (B, H) over many binades, (n_rows, H) */
    float *x, *xo, *dout;  /* (B, D) */
    float *x0, *eps;       /* (B, D), (R, D) */
    float *sigma, *ca, *cs; /* (R,): σ, and the coefficients a, s of noise_mix */
    float *etab, *te;      /* eps x0 head: (2, N_ETAB) a, s; (B,) timesteps, some outside the table */
} inputs;

enum { N_ETAB = 7 };

typedef struct {
    float *emb, *h, *dtable;      /* (B, E), (B, H), (n_rows, H) */
    float *v, *den, *v_inplace;   /* (B, D), (B,), (B, D): x0 head forward with den, then in place */
    float *dxo, *dxo_inplace;     /* (B, D) */
    float *xmix;                  /* (R, D) */
    float *e, *coef, *e_inplace;  /* eps x0 head: (B, D), (2, B), (B, D) */
    float *edxo, *edx, *edxo_inplace; /* (B, D) */
} outputs;

static float *host_floats(int64_t n) { return ops_alloc(n); }

static void inputs_make(inputs *in, const shape *z, int ddpm, uint64_t *s)
{
    memset(in, 0, sizeof *in);
    in->z = *z;
    in->ddpm = ddpm;
    in->sigma_min = 0.02f;
    const int64_t B = z->B, H = z->H, D = z->D, R = z->K * z->B;
    in->t = host_floats(B);
    ops_fill_uniform(s, in->t, B, 0.0f, 1000.0f);
    in->t[0] = 0.0f; /* σ below sigma_min: the x0 head's floor */
    if (B > 2) in->t[1] = 1000.0f, in->t[2] = 999.0f;
    in->table = host_floats(z->n_rows * H);
    ops_fill_uniform(s, in->table, z->n_rows * H, -2.0f, 2.0f);
    in->h0 = host_floats(B * H);
    ops_fill_uniform(s, in->h0, B * H, -1.0f, 1.0f);
    in->c = (int32_t *)calloc((size_t)(B * z->S), sizeof(int32_t));
    ck_assert(in->c != NULL);
    for (int64_t i = 0; i < B * z->S; i++) in->c[i] = (int32_t)(fr_test_next(s) % (uint64_t)z->n_rows);
    in->c[B * z->S - 1] = (int32_t)(z->n_rows - 1); /* the null row */
    in->dh = host_floats(B * H);
    for (int64_t i = 0; i < B * H; i++)
        in->dh[i] = ldexpf(fr_test_uniform(s, -1.0f, 1.0f), (int)(fr_test_next(s) % 24) - 12);
    in->dt0 = host_floats(z->n_rows * H);
    ops_fill_uniform(s, in->dt0, z->n_rows * H, -1.0f, 1.0f);
    in->x = host_floats(B * D), in->xo = host_floats(B * D), in->dout = host_floats(B * D);
    ops_fill_uniform(s, in->x, B * D, -3.0f, 3.0f);
    ops_fill_uniform(s, in->xo, B * D, -3.0f, 3.0f);
    ops_fill_uniform(s, in->dout, B * D, -1.0f, 1.0f);
    in->x0 = host_floats(B * D), in->eps = host_floats(R * D);
    ops_fill_uniform(s, in->x0, B * D, -2.0f, 2.0f);
    ops_fill_uniform(s, in->eps, R * D, -3.0f, 3.0f);
    in->sigma = host_floats(R), in->ca = host_floats(R), in->cs = host_floats(R);
    for (int64_t r = 0; r < R; r++) {
        float u = fr_test_uniform(s, 0.0f, 1.0f);
        in->sigma[r] = r == 0 ? 0.0f : r == 1 ? 1.0f : u; /* σ = 0 gives x0, σ = 1 gives ε */
        if (ddpm) fr_ddpm_coefs(u, &in->ca[r], &in->cs[r]);
        else in->ca[r] = 1.0f - in->sigma[r], in->cs[r] = in->sigma[r];
    }
    in->etab = host_floats(2 * N_ETAB), in->te = host_floats(B);
    ops_fill_uniform(s, in->etab, N_ETAB, 0.0f, 1.0f);
    ops_fill_uniform(s, in->etab + N_ETAB, N_ETAB, 0.05f, 1.0f);
    for (int64_t b = 0; b < B; b++) in->te[b] = floorf(fr_test_uniform(s, 0.0f, (float)N_ETAB));
    in->te[0] = -1.0f; /* clamped to row 0 */
    if (B > 2) in->te[1] = 2.5f, in->te[2] = 1000.0f; /* ⌊t⌋; clamped to the last row */
}

static void inputs_free(inputs *in)
{
    void *p[] = {in->t, in->table, in->h0, in->c, in->dh, in->dt0, in->x, in->xo,
                 in->dout, in->x0, in->eps, in->sigma, in->ca, in->cs, in->etab, in->te};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

static void outputs_free(outputs *out)
{
    void *p[] = {out->emb, out->h, out->dtable, out->v, out->den, out->v_inplace, out->dxo, out->dxo_inplace, out->xmix,
               out->e, out->coef, out->e_inplace, out->edxo, out->edx, out->edxo_inplace};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

/* ---- backend memory ----------------------------------------------------------------------- */

/* n bytes of backend memory holding a copy of host src (zeros when src is NULL). */
static void *up(fr_backend *be, const void *src, size_t bytes)
{
    void *p = fr_dev_alloc(be, bytes);
    ck_assert_msg(p != NULL, "%s: %s", be->name, fr_last_error());
    if (src) ck_assert_msg(fr_h2d(be, p, src, bytes) == FR_OK, "%s: h2d: %s", be->name, fr_last_error());
    return p;
}

#define UPF(be, src, n) ((float *)up((be), (src), (size_t)(n) * sizeof(float)))

/* A host copy of n floats of backend memory p, which is freed. */
static float *down(fr_backend *be, float *p, int64_t n)
{
    float *h = host_floats(n);
    ck_assert_msg(fr_d2h(be, h, p, (size_t)n * sizeof(float)) == FR_OK, "%s: d2h: %s", be->name, fr_last_error());
    fr_dev_free(be, p);
    return h;
}

/* Every entry on in, through be's memory. */
static void outputs_run(fr_backend *be, const inputs *in, outputs *out)
{
    const fr_ops *o = be->ops;
    const shape *z = &in->z;
    const int64_t B = z->B, H = z->H, D = z->D, R = z->K * z->B, nt = z->n_rows * H;
    float *t = UPF(be, in->t, B), *table = UPF(be, in->table, nt), *dh = UPF(be, in->dh, B * H);
    int32_t *c = (int32_t *)up(be, in->c, (size_t)(B * z->S) * sizeof(int32_t));
    float *x = UPF(be, in->x, B * D), *xo = UPF(be, in->xo, B * D), *dout = UPF(be, in->dout, B * D);
    float *x0 = UPF(be, in->x0, B * D), *eps = UPF(be, in->eps, R * D), *ca = UPF(be, in->ca, R),
          *cs = UPF(be, in->cs, R);

    float *emb = UPF(be, NULL, B * z->E);
    o->temb_sinusoidal(B, z->E, t, emb);
    out->emb = down(be, emb, B * z->E);
    float *h = UPF(be, in->h0, B * H);
    o->embed_gather_add(B, z->S, H, z->n_rows, table, c, h);
    out->h = down(be, h, B * H);
    float *dt = UPF(be, in->dt0, nt);
    o->embed_scatter_add(B, z->S, H, z->n_rows, c, dh, dt);
    out->dtable = down(be, dt, nt);

    float *v = UPF(be, NULL, B * D), *den = UPF(be, NULL, B), *xa = UPF(be, in->x, B * D);
    o->x0_head_fwd(B, D, in->sigma_min, t, x, xo, den, v);
    o->x0_head_fwd(B, D, in->sigma_min, t, xa, xo, NULL, xa); /* the inference form, out = x */
    out->v = down(be, v, B * D);
    out->v_inplace = down(be, xa, B * D);
    float *dxo = UPF(be, NULL, B * D), *da = UPF(be, in->dout, B * D);
    o->x0_head_bwd(B, D, den, dout, dxo);
    o->x0_head_bwd(B, D, den, da, da);
    out->den = down(be, den, B);
    out->dxo = down(be, dxo, B * D);
    out->dxo_inplace = down(be, da, B * D);

    float *xm = UPF(be, NULL, R * D);
    o->noise_mix(R, B, D, x0, eps, ca, cs, xm);
    out->xmix = down(be, xm, R * D);

    float *etab = UPF(be, in->etab, 2 * N_ETAB), *te = UPF(be, in->te, B);
    float *e = UPF(be, NULL, B * D), *coef = UPF(be, NULL, 2 * B), *ea = UPF(be, in->x, B * D);
    o->eps_head_fwd(B, D, N_ETAB, etab, te, x, xo, coef, e);
    o->eps_head_fwd(B, D, N_ETAB, etab, te, ea, xo, NULL, ea); /* the inference form, out = x */
    out->e = down(be, e, B * D);
    out->e_inplace = down(be, ea, B * D);
    float *edxo = UPF(be, NULL, B * D), *edx = UPF(be, NULL, B * D), *eda = UPF(be, in->dout, B * D);
    o->eps_head_bwd(B, D, coef, dout, edxo, edx);
    o->eps_head_bwd(B, D, coef, eda, eda, NULL);
    out->coef = down(be, coef, 2 * B);
    out->edxo = down(be, edxo, B * D);
    out->edx = down(be, edx, B * D);
    out->edxo_inplace = down(be, eda, B * D);

    void *ins[] = {t, table, dh, c, x, xo, dout, x0, eps, ca, cs, etab, te};
    for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++) fr_dev_free(be, ins[i]);
}

static void assert_bits(const char *who, const char *what, const float *got, const float *want, int64_t n,
                        uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fr_test_bits_equal(got[i], want[i]), "%s: %s: element %lld is %a, expected %a (seed %#llx)", who,
                      what, (long long)i, (double)got[i], (double)want[i], (unsigned long long)seed);
}

static void outputs_assert_equal(const char *who, const inputs *in, const outputs *got, const outputs *want,
                                 uint64_t seed)
{
    const shape *z = &in->z;
    const int64_t B = z->B, D = z->D;
    assert_bits(who, "temb_sinusoidal", got->emb, want->emb, B * z->E, seed);
    assert_bits(who, "embed_gather_add", got->h, want->h, B * z->H, seed);
    assert_bits(who, "embed_scatter_add", got->dtable, want->dtable, z->n_rows * z->H, seed);
    assert_bits(who, "x0_head_fwd", got->v, want->v, B * D, seed);
    assert_bits(who, "x0_head_fwd den", got->den, want->den, B, seed);
    assert_bits(who, "x0_head_fwd in place", got->v_inplace, want->v_inplace, B * D, seed);
    assert_bits(who, "x0_head_bwd", got->dxo, want->dxo, B * D, seed);
    assert_bits(who, "x0_head_bwd in place", got->dxo_inplace, want->dxo_inplace, B * D, seed);
    assert_bits(who, "noise_mix", got->xmix, want->xmix, z->K * B * D, seed);
    assert_bits(who, "eps_head_fwd", got->e, want->e, B * D, seed);
    assert_bits(who, "eps_head_fwd coef", got->coef, want->coef, 2 * B, seed);
    assert_bits(who, "eps_head_fwd in place", got->e_inplace, want->e_inplace, B * D, seed);
    assert_bits(who, "eps_head_bwd dxo", got->edxo, want->edxo, B * D, seed);
    assert_bits(who, "eps_head_bwd dx", got->edx, want->edx, B * D, seed);
    assert_bits(who, "eps_head_bwd in place", got->edxo_inplace, want->edxo_inplace, B * D, seed);
}

/* The old loops' outputs on in. */
static void outputs_old(const inputs *in, outputs *out)
{
    const shape *z = &in->z;
    const int64_t B = z->B, H = z->H, D = z->D, R = z->K * z->B, nt = z->n_rows * H;
    out->emb = host_floats(B * z->E);
    old_temb(B, z->E, in->t, out->emb);
    out->h = host_floats(B * H);
    memcpy(out->h, in->h0, (size_t)(B * H) * sizeof(float));
    old_gather(B, z->S, H, in->table, in->c, out->h);
    out->dtable = host_floats(nt);
    memcpy(out->dtable, in->dt0, (size_t)nt * sizeof(float));
    old_scatter(B, z->S, H, in->c, in->dh, out->dtable);
    out->v = host_floats(B * D), out->den = host_floats(B), out->v_inplace = host_floats(B * D);
    old_x0_fwd(B, D, in->sigma_min, in->t, in->x, in->xo, out->den, out->v);
    old_x0_fwd(B, D, in->sigma_min, in->t, in->x, in->xo, NULL, out->v_inplace);
    out->dxo = host_floats(B * D), out->dxo_inplace = host_floats(B * D);
    old_x0_bwd(B, D, out->den, in->dout, out->dxo);
    memcpy(out->dxo_inplace, out->dxo, (size_t)(B * D) * sizeof(float));
    out->xmix = host_floats(R * D);
    old_noised(R, B, D, in->ddpm, in->x0, in->eps, in->sigma, in->ca, in->cs, out->xmix);
    /* the eps x0 head (new with the entries): the formulas of flowrl/model_elem.h written out,
     * the row's table index by hand */
    out->e = host_floats(B * D), out->coef = host_floats(2 * B), out->e_inplace = host_floats(B * D);
    out->edxo = host_floats(B * D), out->edx = host_floats(B * D), out->edxo_inplace = host_floats(B * D);
    for (int64_t b = 0; b < B; b++) {
        const float tb = in->te[b];
        const int64_t i = tb < 0.0f ? 0 : tb > (float)(N_ETAB - 1) ? N_ETAB - 1 : (int64_t)tb;
        const float a = in->etab[i], sc = in->etab[N_ETAB + i];
        out->coef[b] = a, out->coef[B + b] = sc;
        for (int64_t j = b * D; j < (b + 1) * D; j++) {
            out->e[j] = out->e_inplace[j] = (in->x[j] - a * in->xo[j]) / sc;
            out->edxo[j] = out->edxo_inplace[j] = -((in->dout[j] * a) / sc);
            out->edx[j] = in->dout[j] / sc;
        }
    }
}

/* ---- tests --------------------------------------------------------------------------------- */

START_TEST(test_ref_is_old_loops)
{
    const uint64_t seed = ops_seed(0x40de11);
    uint64_t s = seed;
    for (int k = 0; k < N_SHAPES; k++)
        for (int ddpm = 0; ddpm < 2; ddpm++) {
            inputs in;
            outputs got, want;
            inputs_make(&in, &k_shapes[k], ddpm, &s);
            outputs_run(fr_test_ref_be(), &in, &got);
            outputs_old(&in, &want);
            outputs_assert_equal("ref", &in, &got, &want, seed);
            for (int64_t i = 0; i < in.z.D; i++) /* flow: σ = 0 gives x0, σ = 1 gives ε exactly */
                ck_assert(ddpm || in.z.K * in.z.B < 2 || (got.xmix[i] == in.x0[i] && got.xmix[in.z.D + i] == in.eps[in.z.D + i]));
            outputs_free(&got), outputs_free(&want), inputs_free(&in);
        }
}
END_TEST

START_TEST(test_backends_equal_ref)
{
    const uint64_t seed = ops_seed(0x40de12);
    for (const char *const *name = fr_backend_names(); *name; name++) {
        fr_backend be;
        if (!fr_test_backend_try(&be, "ops_model", *name, 3)) continue;
        uint64_t s = seed;
        for (int k = 0; k < N_SHAPES; k++)
            for (int ddpm = 0; ddpm < 2; ddpm++) {
                inputs in;
                outputs got, want;
                inputs_make(&in, &k_shapes[k], ddpm, &s);
                outputs_run(&be, &in, &got);
                outputs_run(fr_test_ref_be(), &in, &want);
                outputs_assert_equal(*name, &in, &got, &want, seed);
                outputs_free(&got), outputs_free(&want), inputs_free(&in);
            }
        fr_backend_close(&be);
    }
}
END_TEST

/* An id outside [0, n_rows), on every backend: the gather fills its sample's row with NaN and
 * reads nothing outside the table; the scatter skips it; every other element keeps the old
 * loop's bits. */
START_TEST(test_bad_ids)
{
    enum { B = 4, S = 2, H = 5, NR = 3 };
    float table[NR * H], h0[B * H], want[B * H], dh[B * H], dt0[NR * H], dt_want[NR * H];
    for (int i = 0; i < NR * H; i++) table[i] = (float)i * 0.25f, dt0[i] = dt_want[i] = (float)-i;
    for (int i = 0; i < B * H; i++) h0[i] = want[i] = 1.0f / (float)(i + 1), dh[i] = (float)i * 0.5f;
    const int32_t c[B * S] = {0, 2, -1, 1, 1, 3, 2, 2}; /* samples 1 and 2 each hold one bad id */
    const int32_t c_ok[B * S] = {0, 2, 0, 1, 1, 0, 2, 2};
    old_gather(B, S, H, table, c_ok, want);
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            if (c[b * S + s] >= 0 && c[b * S + s] < NR) old_scatter(1, 1, H, &c[b * S + s], dh + b * H, dt_want);
    for (const char *const *name = fr_backend_names(); *name; name++) {
        fr_backend be;
        if (!fr_test_backend_try(&be, "ops_model", *name, 2)) continue;
        float *d_table = UPF(&be, table, NR * H), *d_h = UPF(&be, h0, B * H), *d_dh = UPF(&be, dh, B * H),
              *d_dt = UPF(&be, dt0, NR * H);
        int32_t *d_c = (int32_t *)up(&be, c, sizeof c);
        be.ops->embed_gather_add(B, S, H, NR, d_table, d_c, d_h);
        be.ops->embed_scatter_add(B, S, H, NR, d_c, d_dh, d_dt);
        float *h = down(&be, d_h, B * H), *dt = down(&be, d_dt, NR * H);
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < H; j++) {
                float g = h[b * H + j];
                if (b == 1 || b == 2)
                    ck_assert_msg(isnan(g), "%s: gather: sample %lld, element %lld is %g, expected NaN", *name,
                                  (long long)b, (long long)j, (double)g);
                else
                    ck_assert(fr_test_bits_equal(g, want[b * H + j]));
            }
        assert_bits(*name, "embed_scatter_add with bad ids", dt, dt_want, NR * H, 0);
        free(h), free(dt);
        fr_dev_free(&be, d_table), fr_dev_free(&be, d_dh), fr_dev_free(&be, d_c);
        fr_backend_close(&be);
    }
}
END_TEST

Suite *suite_ops_model(void)
{
    Suite *s = suite_create("ops_model");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ref_is_old_loops);
    tcase_add_test(tc, test_backends_equal_ref);
    tcase_add_test(tc, test_bad_ids);
    suite_add_tcase(s, tc);
    return s;
}
