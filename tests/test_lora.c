/* LoRA (flowrl/lora.h, flowrl/linear.h): the linear layer with an adapter against double
 * arithmetic, a view's forward and gradients against the merged full model, bits across
 * backends and micro-batches, target selection, adapter files, and LoRA runs (Flow-GRPO, AWM,
 * DiffusionNFT, DGPO) resumed and on every backend; the view tests on the MLP and on a tiny DiT. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/audit.h"
#include "flowrl/linear.h"
#include "flowrl/lora.h"
#include "flowrl/model.h"
#include "flowrl/optim_step.h"
#include "flowrl/run.h"
#include "flowrl/safetensors.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static fr_model_config tiny_cfg(void)
{
    fr_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.preset, sizeof c.preset, "custom");
    c.D = 3, c.n_cond = 3, c.n_slots = 2, c.H = 8, c.F = 12, c.n_blocks = 2, c.E = 6;
    c.act = FR_ACT_GELU_TANH, c.pred = FR_PRED_VELOCITY, c.ln_eps = 1e-5f;
    return c;
}

/* A tiny DiT (tests/test_dit.c's): 2 channels of 4 × 4 in 2 × 2 patches, N = 4 image tokens and
 * the 2 prompt tokens, H = 12, two blocks of two heads; its layers run on B (adaln, time),
 * B·N (patch) and B·L (attention, MLP, out) rows. */
static fr_model_config tiny_dit_cfg(void)
{
    fr_model_config c = tiny_cfg();
    c.D = 32, c.H = 12;
    c.arch = FR_ARCH_DIT, c.img_c = 2, c.img_h = 4, c.img_w = 4, c.patch = 2, c.n_heads = 2;
    return c;
}

/* n floats U(lo, hi) from splitmix(*s) into backend memory p. */
static void fill_dev(fr_backend *be, float *p, int64_t n, uint64_t *s, float lo, float hi)
{
    float *h = malloc((size_t)n * sizeof *h);
    ck_assert(h != NULL);
    for (int64_t i = 0; i < n; i++) h[i] = fr_test_uniform(s, lo, hi);
    ck_assert(fr_h2d(be, p, h, (size_t)n * sizeof *h) == FR_OK);
    free(h);
}

static float *down(fr_backend *be, const float *p, int64_t n)
{
    float *h = malloc((size_t)n * sizeof *h);
    ck_assert(h && fr_d2h(be, h, p, (size_t)n * sizeof *h) == FR_OK);
    return h;
}

/* |got − want| ≤ tol·(scale + |want|): float sums of a few dozen terms of size ~1 */
static void near(const char *what, int64_t i, double got, double want, double scale, double tol)
{
    ck_assert_msg(isfinite(got) && fabs(got - want) <= tol * (scale + fabs(want)), "%s[%lld]: %.9g, expected %.9g", what,
                  (long long)i, got, want);
}

/* ---- the linear layer -------------------------------------------------------------------- */

/* y = zW^T + b + s(zA^T)B^T and its backward on ref against double sums (the formulas of
 * flowrl/linear.h); the gradients start from nonzero values (accumulation). */
START_TEST(test_linear_adapter_exact)
{
    fr_backend *be = fr_test_ref_be();
    enum { B = 5, N = 7, K = 6, R = 3 };
    const float sc = 2.5f;
    uint64_t s = 17;
    float z[B * K], w[N * K], b[N], a[R * K], bb[N * R], dy[B * N], g0 = 0.25f;
    for (int i = 0; i < B * K; i++) z[i] = fr_test_uniform(&s, -1, 1);
    for (int i = 0; i < N * K; i++) w[i] = fr_test_uniform(&s, -1, 1);
    for (int i = 0; i < N; i++) b[i] = fr_test_uniform(&s, -1, 1);
    for (int i = 0; i < R * K; i++) a[i] = fr_test_uniform(&s, -1, 1);
    for (int i = 0; i < N * R; i++) bb[i] = fr_test_uniform(&s, -1, 1);
    for (int i = 0; i < B * N; i++) dy[i] = fr_test_uniform(&s, -1, 1);
    float y[B * N], zs[B * R], dzs[B * R], dz[B * K], dw[N * K], db[N], ga[R * K], gb[N * R];
    for (int i = 0; i < N * K; i++) dw[i] = g0;
    for (int i = 0; i < N; i++) db[i] = g0;
    for (int i = 0; i < R * K; i++) ga[i] = g0;
    for (int i = 0; i < N * R; i++) gb[i] = g0;
    fr_lora_ad ad = {R, sc, a, bb, ga, gb};
    fr_linear_fwd(be, B, N, K, z, w, b, &ad, zs, y);
    fr_linear_bwd(be, B, N, K, z, w, dy, dw, db, &ad, zs, dzs, dz);
    double za[B][R], dza[B][R];
    for (int i = 0; i < B; i++)
        for (int r = 0; r < R; r++) {
            za[i][r] = 0.0, dza[i][r] = 0.0;
            for (int k = 0; k < K; k++) za[i][r] += (double)z[i * K + k] * a[r * K + k];
            for (int n = 0; n < N; n++) dza[i][r] += (double)dy[i * N + n] * bb[n * R + r];
            dza[i][r] *= sc;
        }
    for (int i = 0; i < B; i++)
        for (int n = 0; n < N; n++) {
            double want = b[n];
            for (int k = 0; k < K; k++) want += (double)z[i * K + k] * w[n * K + k];
            for (int r = 0; r < R; r++) want += sc * za[i][r] * bb[n * R + r];
            near("y", i * N + n, y[i * N + n], want, 10.0, 2e-6);
        }
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K; k++) {
            double want = 0.0;
            for (int n = 0; n < N; n++) want += (double)dy[i * N + n] * w[n * K + k];
            for (int r = 0; r < R; r++) want += dza[i][r] * a[r * K + k];
            near("dz", i * K + k, dz[i * K + k], want, 10.0, 2e-6);
        }
    for (int n = 0; n < N; n++) {
        double wdb = g0;
        for (int i = 0; i < B; i++) wdb += dy[i * N + n];
        near("db", n, db[n], wdb, 5.0, 2e-6);
        for (int k = 0; k < K; k++) {
            double want = g0;
            for (int i = 0; i < B; i++) want += (double)dy[i * N + n] * z[i * K + k];
            near("dW", n * K + k, dw[n * K + k], want, 5.0, 2e-6);
        }
        for (int r = 0; r < R; r++) {
            double want = g0;
            for (int i = 0; i < B; i++) want += (double)dy[i * N + n] * sc * za[i][r];
            near("dB", n * R + r, gb[n * R + r], want, 20.0, 2e-6);
        }
    }
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++) {
            double want = g0;
            for (int i = 0; i < B; i++) want += dza[i][r] * z[i * K + k];
            near("dA", r * K + k, ga[r * K + k], want, 20.0, 2e-6);
        }
    /* no adapter, no base gradient: only dz = dy W */
    float dz2[B * K];
    fr_linear_bwd(be, B, N, K, z, w, dy, NULL, NULL, NULL, NULL, NULL, dz2);
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K; k++) {
            double want = 0.0;
            for (int n = 0; n < N; n++) want += (double)dy[i * N + n] * w[n * K + k];
            near("dz (no adapter)", i * K + k, dz2[i * K + k], want, 10.0, 2e-6);
        }
}
END_TEST

/* ---- a view on a small model ------------------------------------------------------------- */

typedef struct {
    fr_lora L;
    fr_model pol, off;
    fr_model_ws ws, ws_off;
    float *x, *t, *o, *dout, *dx;
    int32_t *c;
    int64_t B, D;
} lview;

/* A model with random weights (every parameter U(-0.6, 0.6), LN weights near 1), LoRA rank 2,
 * alpha 3 on targets, adapter "default" randomised too (B nonzero) unless zero_b; a batch. */
static void lview_new(lview *v, fr_backend *be, const char *targets, int zero_b, int64_t B, int dit)
{
    fr_model_config cfg = dit ? tiny_dit_cfg() : tiny_cfg();
    fr_model base;
    ck_assert(fr_model_init(&base, be, &cfg, 3) == FR_OK);
    uint64_t s = 41;
    for (int i = 0; i < base.n_params; i++) {
        int ln = strstr(base.names[i], "ln.weight") || !strcmp(base.names[i], "norm.weight");
        fill_dev(be, base.values[i].data, fr_tensor_numel(&base.values[i]), &s, ln ? 0.7f : -0.6f, ln ? 1.3f : 0.6f);
    }
    ck_assert_msg(fr_lora_new(&v->L, &base, 2, 3.0, targets, 5) == FR_OK, "%s", fr_last_error());
    ck_assert(fr_lora_view(&v->pol, &v->L, 0, 1) == FR_OK);
    ck_assert(fr_lora_view(&v->off, &v->L, -1, 0) == FR_OK);
    if (!zero_b)
        for (int i = 1; i < v->pol.n_params; i += 2) fill_dev(be, v->pol.values[i].data, fr_tensor_numel(&v->pol.values[i]), &s, -0.5f, 0.5f);
    v->B = B, v->D = cfg.D;
    ck_assert(fr_model_ws_alloc(&v->ws, &v->pol, B, 1) == FR_OK);
    ck_assert(fr_model_ws_alloc(&v->ws_off, &v->off, B, 0) == FR_OK);
    v->x = fr_dev_floats(be, B * cfg.D), v->t = fr_dev_floats(be, B), v->o = fr_dev_floats(be, B * cfg.D);
    v->dout = fr_dev_floats(be, B * cfg.D), v->dx = fr_dev_floats(be, B * cfg.D);
    v->c = fr_dev_i32(be, B * cfg.n_slots);
    ck_assert(v->x && v->t && v->o && v->dout && v->dx && v->c);
    fill_dev(be, v->x, B * cfg.D, &s, -2.0f, 2.0f);
    fill_dev(be, v->dout, B * cfg.D, &s, -1.0f, 1.0f);
    float th[64];
    int32_t ch[128];
    for (int64_t i = 0; i < B; i++) th[i] = (float)(i * 997 % 1000);
    for (int64_t i = 0; i < B * cfg.n_slots; i++) ch[i] = (int32_t)(i % (cfg.n_cond + 1));
    ck_assert(fr_h2d(be, v->t, th, (size_t)B * sizeof(float)) == FR_OK);
    ck_assert(fr_h2d(be, v->c, ch, (size_t)(B * cfg.n_slots) * sizeof(int32_t)) == FR_OK);
}

static void lview_free(lview *v)
{
    fr_backend *be = v->pol.be;
    void *dev[] = {v->x, v->t, v->o, v->dout, v->dx, v->c};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(be, dev[i]);
    fr_model_ws_free(&v->ws), fr_model_ws_free(&v->ws_off);
    fr_model_free(&v->pol), fr_model_free(&v->off);
    fr_lora_free(&v->L);
}

/* Adapter "default" at its init (B = 0) runs the base: the view's output equals the base's
 * (adapter off) — y + 0 — and so does a model without LoRA; the off view has no parameters.
 * The MLP (default blocks.{0,1}.fc{1,2}) and the DiT (blocks.{0,1}.attn.{qkv,proj}). */
START_TEST(test_init_is_base)
{
    fr_backend *be = fr_test_ref_be();
    const int dit = _i;
    lview v;
    lview_new(&v, be, NULL, 1, 6, dit);
    ck_assert_int_eq(v.L.n_t, 4);
    ck_assert_str_eq(v.pol.names[0], dit ? "blocks.0.attn.qkv.lora_A.weight" : "blocks.0.fc1.lora_A.weight");
    ck_assert_int_eq(v.off.n_params, 0);
    ck_assert_int_eq(v.pol.n_params, 8);
    ck_assert(fr_model_forward(&v.pol, be, &v.ws, v.B, v.x, v.t, v.c, v.o) == FR_OK);
    float *a = down(be, v.o, v.B * v.D);
    ck_assert(fr_model_forward(&v.off, be, &v.ws_off, v.B, v.x, v.t, v.c, v.o) == FR_OK);
    float *b = down(be, v.o, v.B * v.D);
    ck_assert(fr_model_forward(&v.L.base, be, &v.ws_off, v.B, v.x, v.t, v.c, v.o) == FR_OK);
    float *c = down(be, v.o, v.B * v.D);
    for (int64_t i = 0; i < v.B * v.D; i++) {
        ck_assert_msg(a[i] == b[i], "[%lld] adapter at init %a, off %a", (long long)i, (double)a[i], (double)b[i]);
        ck_assert(fr_test_bits_equal(b[i], c[i]));
    }
    /* A of the init: U(-1/sqrt(K), 1/sqrt(K)), not all equal; B zero */
    float *A = down(be, v.pol.values[0].data, fr_tensor_numel(&v.pol.values[0]));
    const float bound = 1.0f / sqrtf((float)v.L.K[0]);
    for (int64_t i = 0; i < fr_tensor_numel(&v.pol.values[0]); i++) ck_assert(fabsf(A[i]) <= bound);
    ck_assert(A[0] != A[1]);
    free(a), free(b), free(c), free(A);
    lview_free(&v);
}
END_TEST

/* The view against the merged model W' = W + s·B·A (a full model of the same config): outputs
 * and dL/dx agree to float rounding, and the adapter's gradients are the chain rule of the
 * merged model's dW': dA = s Bᵀ dW', dB = s dW' Aᵀ (the merged model's dW' is checked against
 * finite differences in double by test_model / test_dit). The base's values are left
 * unchanged. On the DiT the targets run on B (time.fc2, adaln), B·N (patch) and B·L rows. */
START_TEST(test_view_equals_merged)
{
    fr_backend *be = fr_test_ref_be();
    const int dit = _i;
    lview v;
    lview_new(&v, be, dit ? "blocks.*.attn.qkv,blocks.1.fc2,time.fc2,patch,blocks.0.adaln,out" : "blocks.*.fc1,blocks.1.fc2,time.fc2,out", 0, 6, dit);
    ck_assert_int_eq(v.L.n_t, dit ? 7 : 5);
    fr_model m;
    ck_assert(fr_model_alloc(&m, be, &v.L.base.cfg) == FR_OK);
    ck_assert(fr_model_copy_values(&m, &v.L.base) == FR_OK);
    const double sc = v.L.scale;
    for (int t = 0; t < v.L.n_t; t++) {
        const int64_t N = v.L.N[t], K = v.L.K[t], R = v.L.r;
        float *A = down(be, v.pol.values[2 * t].data, R * K), *Bm = down(be, v.pol.values[2 * t + 1].data, N * R);
        float *W = down(be, m.values[v.L.pidx[t]].data, N * K);
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) {
                double d = 0.0;
                for (int64_t r = 0; r < R; r++) d += (double)Bm[n * R + r] * A[r * K + k];
                W[n * K + k] = (float)(W[n * K + k] + sc * d);
            }
        ck_assert(fr_h2d(be, m.values[v.L.pidx[t]].data, W, (size_t)(N * K) * sizeof(float)) == FR_OK);
        free(A), free(Bm), free(W);
    }
    fr_model_ws wm;
    ck_assert(fr_model_ws_alloc(&wm, &m, v.B, 1) == FR_OK);
    fr_model_zero_grad(&m, be);
    fr_model_zero_grad(&v.pol, be);
    ck_assert(fr_model_forward(&v.pol, be, &v.ws, v.B, v.x, v.t, v.c, v.o) == FR_OK);
    float *yo = down(be, v.o, v.B * v.D);
    ck_assert(fr_model_backward(&v.pol, be, &v.ws, v.dout, v.dx) == FR_OK);
    float *dxo = down(be, v.dx, v.B * v.D);
    ck_assert(fr_model_forward(&m, be, &wm, v.B, v.x, v.t, v.c, v.o) == FR_OK);
    float *ym = down(be, v.o, v.B * v.D);
    ck_assert(fr_model_backward(&m, be, &wm, v.dout, v.dx) == FR_OK);
    float *dxm = down(be, v.dx, v.B * v.D);
    for (int64_t i = 0; i < v.B * v.D; i++) {
        near("forward vs merged", i, yo[i], ym[i], 1.0, 1e-4);
        near("dL/dx vs merged", i, dxo[i], dxm[i], 1.0, 1e-4);
    }
    for (int t = 0; t < v.L.n_t; t++) {
        const int64_t N = v.L.N[t], K = v.L.K[t], R = v.L.r;
        float *A = down(be, v.pol.values[2 * t].data, R * K), *Bm = down(be, v.pol.values[2 * t + 1].data, N * R);
        float *gW = down(be, m.grads[v.L.pidx[t]].data, N * K);
        float *gA = down(be, v.pol.grads[2 * t].data, R * K), *gB = down(be, v.pol.grads[2 * t + 1].data, N * R);
        double mx = 0.0;
        for (int64_t i = 0; i < N * K; i++) mx = fmax(mx, fabs(gW[i]));
        for (int64_t r = 0; r < R; r++)
            for (int64_t k = 0; k < K; k++) {
                double want = 0.0;
                for (int64_t n = 0; n < N; n++) want += sc * Bm[n * R + r] * gW[n * K + k];
                near(v.pol.names[2 * t], r * K + k, gA[r * K + k], want, mx, 1e-4);
            }
        for (int64_t n = 0; n < N; n++)
            for (int64_t r = 0; r < R; r++) {
                double want = 0.0;
                for (int64_t k = 0; k < K; k++) want += sc * gW[n * K + k] * A[r * K + k];
                near(v.pol.names[2 * t + 1], n * R + r, gB[n * R + r], want, mx, 1e-4);
            }
        free(A), free(Bm), free(gW), free(gA), free(gB);
    }
    free(yo), free(dxo), free(ym), free(dxm);
    fr_model_ws_free(&wm);
    fr_model_free(&m);
    lview_free(&v);
}
END_TEST

/* L = Σ dout · view(x) in double. */
static double lview_loss(lview *v)
{
    ck_assert(fr_model_forward(&v->pol, v->pol.be, &v->ws, v->B, v->x, v->t, v->c, v->o) == FR_OK);
    float *o = down(v->pol.be, v->o, v->B * v->D), *d = down(v->pol.be, v->dout, v->B * v->D);
    double l = 0.0;
    for (int64_t i = 0; i < v->B * v->D; i++) l += (double)o[i] * d[i];
    free(o), free(d);
    return l;
}

/* The adapter gradients of a tiny DiT against central differences of L = Σ dout · out (float
 * forward, h = 1e-3, summed in double): every adapter tensor, targets on B·N (patch), B·L
 * (qkv, fc2) and B (adaln) rows, five coordinates each. */
START_TEST(test_fd_dit)
{
    fr_backend *be = fr_test_ref_be();
    lview v;
    lview_new(&v, be, "blocks.*.attn.qkv,patch,blocks.1.fc2,blocks.0.adaln", 0, 3, 1);
    fr_model_zero_grad(&v.pol, be);
    ck_assert(fr_model_forward(&v.pol, be, &v.ws, v.B, v.x, v.t, v.c, v.o) == FR_OK);
    ck_assert(fr_model_backward(&v.pol, be, &v.ws, v.dout, v.dx) == FR_OK);
    float *g = down(be, v.pol.arena_grads, v.L.arena_n);
    const float h = 1e-3f;
    int checked = 0;
    for (int i = 0; i < v.pol.n_params; i++) {
        const int64_t n = fr_tensor_numel(&v.pol.values[i]);
        float *val = v.pol.values[i].data;
        float *hv = down(be, val, n);
        for (int k = 0; k < 5; k++) {
            const int64_t j = (k * 7919 + i) % n;
            const float x0 = hv[j];
            double l[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                hv[j] = sgn ? x0 - h : x0 + h;
                ck_assert(fr_h2d(be, val, hv, (size_t)n * sizeof *hv) == FR_OK);
                l[sgn] = lview_loss(&v);
            }
            hv[j] = x0;
            ck_assert(fr_h2d(be, val, hv, (size_t)n * sizeof *hv) == FR_OK);
            const double fd = (l[0] - l[1]) / (2.0 * h), got = g[(val - v.L.arena[0]) + j];
            near(v.pol.names[i], j, got, fd, 1.0, 2e-2);
            checked += got != 0.0;
        }
        free(hv);
    }
    ck_assert_int_gt(checked, 20);
    free(g);
    lview_free(&v);
}
END_TEST

/* One backend's forward, dL/dx, adapter gradients and the adapter after a clip → AdamW step. */
typedef struct {
    float *out, *dx, *grads, *after;
    int64_t n_out, n_ad;
} lstep;

static void lstep_on(fr_backend *be, lstep *r, int micro, int dit)
{
    lview v;
    lview_new(&v, be, dit ? "attn.qkv,blocks.1.attn.proj,blocks.1.fc2,patch,final.adaln" : "fc1,blocks.1.fc2,in", 0, 6, dit);
    fr_model_zero_grad(&v.pol, be);
    if (micro) { /* rows 0..2, then 3..5, gradients accumulated */
        for (int k = 0; k < 2; k++) {
            ck_assert(fr_model_forward(&v.pol, be, &v.ws, 3, v.x + 3 * k * v.D, v.t + 3 * k, v.c + 3 * k * 2, v.o + 3 * k * v.D) == FR_OK);
            ck_assert(fr_model_backward(&v.pol, be, &v.ws, v.dout + 3 * k * v.D, v.dx + 3 * k * v.D) == FR_OK);
        }
    } else {
        ck_assert(fr_model_forward(&v.pol, be, &v.ws, v.B, v.x, v.t, v.c, v.o) == FR_OK);
        ck_assert(fr_model_backward(&v.pol, be, &v.ws, v.dout, v.dx) == FR_OK);
    }
    r->n_out = v.B * v.D;
    r->n_ad = v.L.arena_n;
    r->out = down(be, v.o, r->n_out);
    r->dx = down(be, v.dx, r->n_out);
    r->grads = down(be, v.pol.arena_grads, r->n_ad);
    fr_adamw_state adam;
    ck_assert(fr_adamw_state_init(be, &adam, v.pol.params, v.pol.n_params) == FR_OK);
    fr_optim_step_cfg oc = {0.05f, fr_adamw_cfg_default(), 1e-2, -1.0f, 1, FR_EMA_FIXED, 0, 1, NULL};
    float gn;
    ck_assert_msg(fr_optim_step(be, v.pol.params, v.pol.n_params, &adam, NULL, &oc, NULL, NULL, "lora", &gn) == FR_OK, "%s",
                  fr_last_error());
    r->after = down(be, v.L.arena[0], r->n_ad);
    fr_adamw_state_free(&adam);
    lview_free(&v);
}

static void lstep_free(lstep *r) { free(r->out), free(r->dx), free(r->grads), free(r->after); }

static void lstep_same(const lstep *a, const lstep *b, const char *who)
{
    ck_assert_msg(memcmp(a->out, b->out, (size_t)a->n_out * 4) == 0, "%s: forward differs", who);
    ck_assert_msg(memcmp(a->dx, b->dx, (size_t)a->n_out * 4) == 0, "%s: dL/dx differs", who);
    ck_assert_msg(memcmp(a->grads, b->grads, (size_t)a->n_ad * 4) == 0, "%s: adapter gradients differ", who);
    ck_assert_msg(memcmp(a->after, b->after, (size_t)a->n_ad * 4) == 0, "%s: adapter after AdamW differs", who);
}

/* ref = opt (1..3 threads) = cuda-emu bit for bit; two micro-batches = one batch; the MLP
 * and the DiT. */
START_TEST(test_backends_and_microbatches)
{
    const int dit = _i;
    lstep want, got;
    lstep_on(fr_test_ref_be(), &want, 0, dit);
    lstep_on(fr_test_ref_be(), &got, 1, dit);
    lstep_same(&want, &got, "ref, micro-batches");
    lstep_free(&got);
    for (const char *const *name = fr_backend_names(); *name; name++)
        for (int th = 1; th <= 3; th++) {
            fr_backend be;
            if (!fr_test_backend_try(&be, "lora", *name, th)) break;
            char who[64];
            snprintf(who, sizeof who, "%s, %d threads", *name, th);
            lstep_on(&be, &got, th == 2, dit);
            lstep_same(&want, &got, who);
            lstep_free(&got);
            fr_backend_close(&be);
            if (be.device) break;
        }
    lstep_free(&want);
}
END_TEST

/* Target patterns: names, PEFT suffixes, globs; errors name the pattern and the layers. */
START_TEST(test_targets)
{
    fr_backend *be = fr_test_ref_be();
    fr_model_config cfg = tiny_cfg();
    struct {
        const char *pat;
        int n;
    } cases[] = {{"", 4}, {"fc1", 3}, {"blocks.*.fc1,blocks.*.fc2", 4}, {"out,in", 2}, {"time.fc1, time.fc2", 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fr_model m;
        fr_lora L;
        ck_assert(fr_model_init(&m, be, &cfg, 1) == FR_OK);
        ck_assert_msg(fr_lora_new(&L, &m, 2, 2.0, cases[i].pat, 1) == FR_OK, "'%s': %s", cases[i].pat, fr_last_error());
        ck_assert_msg(L.n_t == cases[i].n, "'%s': %d targets", cases[i].pat, L.n_t);
        fr_lora_free(&L);
    }
    const char *bad[] = {"nope", "cond", "blocks.0.ln"};
    for (size_t i = 0; i < 3; i++) {
        fr_model m;
        fr_lora L;
        ck_assert(fr_model_init(&m, be, &cfg, 1) == FR_OK);
        ck_assert(fr_lora_new(&L, &m, 2, 2.0, bad[i], 1) == FR_ERR_ARG);
        ck_assert_msg(strstr(fr_last_error(), bad[i]) && strstr(fr_last_error(), "blocks.0.fc1"), "%s", fr_last_error());
    }
    fr_model m;
    fr_lora L;
    ck_assert(fr_model_init(&m, be, &cfg, 1) == FR_OK);
    ck_assert(fr_lora_new(&L, &m, 9, 2.0, "blocks.0.fc1", 1) == FR_ERR_ARG); /* rank > H = 8 */
    ck_assert_msg(strstr(fr_last_error(), "--lora-rank 9"), "%s", fr_last_error());
}
END_TEST

/* The adapter file: PEFT keys and shapes, metadata, read back into another set bit for bit;
 * another rank is refused naming the key. */
START_TEST(test_adapter_file)
{
    fr_backend *be = fr_test_ref_be();
    char dir[64], path[128];
    fr_test_mkdtemp(dir, sizeof dir, "lora");
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    lview v;
    lview_new(&v, be, NULL, 0, 2, 0);
    ck_assert_msg(fr_lora_save(&v.L, 0, "0123456789abcdef", path) == FR_OK, "%s", fr_last_error());
    fr_st_file f;
    ck_assert(fr_st_read(&f, path) == FR_OK);
    ck_assert_str_eq(fr_st_get_meta(&f, "lora.rank"), "2");
    ck_assert_str_eq(fr_st_get_meta(&f, "lora.alpha"), "3");
    ck_assert_str_eq(fr_st_get_meta(&f, "lora.targets"), "blocks.0.fc1,blocks.0.fc2,blocks.1.fc1,blocks.1.fc2");
    const fr_tensor *a = fr_st_get(&f, "base_model.model.blocks.1.fc1.lora_A.weight");
    const fr_tensor *b = fr_st_get(&f, "base_model.model.blocks.1.fc1.lora_B.weight");
    ck_assert(a && b && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 8 && b->shape[0] == 12 && b->shape[1] == 2);
    ck_assert_int_eq(f.n, 8);
    fr_st_free(&f);
    /* into a second set on the same base config, initialised from another seed */
    fr_model_config cfg = tiny_cfg();
    fr_model m2;
    fr_lora L2;
    ck_assert(fr_model_init(&m2, be, &cfg, 3) == FR_OK);
    ck_assert(fr_lora_new(&L2, &m2, 2, 3.0, NULL, 99) == FR_OK);
    ck_assert_msg(fr_lora_load(&L2, 0, path) == FR_OK, "%s", fr_last_error());
    float *x = down(be, v.L.arena[0], v.L.arena_n), *y = down(be, L2.arena[0], L2.arena_n);
    ck_assert(memcmp(x, y, (size_t)v.L.arena_n * 4) == 0);
    free(x), free(y);
    fr_lora_free(&L2);
    ck_assert(fr_model_init(&m2, be, &cfg, 3) == FR_OK);
    ck_assert(fr_lora_new(&L2, &m2, 3, 3.0, NULL, 99) == FR_OK);
    ck_assert(fr_lora_load(&L2, 0, path) == FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "lora.rank"), "%s", fr_last_error());
    fr_lora_free(&L2);
    lview_free(&v);
    remove(path);
    rmdir(dir);
}
END_TEST

/* A DiT's adapter file: PEFT keys of the DiT's module names (docs/lora.md), the default
 * targets in the metadata, read back into a set from another seed bit for bit, and a set made
 * from the file alone (fr_lora_from_file) runs the same forward. */
START_TEST(test_adapter_file_dit)
{
    fr_backend *be = fr_test_ref_be();
    char dir[64], path[128];
    fr_test_mkdtemp(dir, sizeof dir, "lora");
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    lview v;
    lview_new(&v, be, NULL, 0, 3, 1);
    ck_assert_msg(fr_lora_save(&v.L, 0, NULL, path) == FR_OK, "%s", fr_last_error());
    fr_st_file f;
    ck_assert(fr_st_read(&f, path) == FR_OK);
    ck_assert_str_eq(fr_st_get_meta(&f, "lora.targets"),
                     "blocks.0.attn.qkv,blocks.0.attn.proj,blocks.1.attn.qkv,blocks.1.attn.proj");
    const fr_tensor *a = fr_st_get(&f, "base_model.model.blocks.1.attn.qkv.lora_A.weight");
    const fr_tensor *b = fr_st_get(&f, "base_model.model.blocks.1.attn.qkv.lora_B.weight");
    const fr_tensor *pb = fr_st_get(&f, "base_model.model.blocks.0.attn.proj.lora_B.weight");
    ck_assert(a && b && pb && a->shape[0] == 2 && a->shape[1] == 12 && b->shape[0] == 36 && b->shape[1] == 2);
    ck_assert(pb->shape[0] == 12 && pb->shape[1] == 2);
    ck_assert_int_eq(f.n, 8);
    fr_st_free(&f);
    fr_model_config cfg = tiny_dit_cfg();
    fr_model m2;
    fr_lora L2;
    ck_assert(fr_model_init(&m2, be, &cfg, 3) == FR_OK);
    ck_assert(fr_lora_new(&L2, &m2, 2, 3.0, NULL, 99) == FR_OK);
    ck_assert_msg(fr_lora_load(&L2, 0, path) == FR_OK, "%s", fr_last_error());
    float *x = down(be, v.L.arena[0], v.L.arena_n), *y = down(be, L2.arena[0], L2.arena_n);
    ck_assert(memcmp(x, y, (size_t)v.L.arena_n * 4) == 0);
    free(x), free(y);
    fr_lora_free(&L2);
    /* the file alone on a copy of v's base: the same forward, bit for bit */
    ck_assert(fr_model_alloc(&m2, be, &cfg) == FR_OK && fr_model_copy_values(&m2, &v.L.base) == FR_OK);
    ck_assert_msg(fr_lora_from_file(&L2, &m2, path) == FR_OK, "%s", fr_last_error());
    fr_model p2;
    fr_model_ws w2;
    ck_assert(fr_lora_view(&p2, &L2, 0, 0) == FR_OK && fr_model_ws_alloc(&w2, &p2, v.B, 0) == FR_OK);
    ck_assert(fr_model_forward(&v.pol, be, &v.ws, v.B, v.x, v.t, v.c, v.o) == FR_OK);
    x = down(be, v.o, v.B * v.D);
    ck_assert(fr_model_forward(&p2, be, &w2, v.B, v.x, v.t, v.c, v.o) == FR_OK);
    y = down(be, v.o, v.B * v.D);
    ck_assert(memcmp(x, y, (size_t)(v.B * v.D) * 4) == 0);
    free(x), free(y);
    fr_model_ws_free(&w2), fr_model_free(&p2), fr_lora_free(&L2), fr_model_free(&m2);
    lview_free(&v);
    remove(path);
    rmdir(dir);
}
END_TEST

/* ---- runs --------------------------------------------------------------------------------- */

static const char *const k_lora_algos[] = {"flow-grpo", "awm", "nft", "dgpo", NULL};

static void lora_opts(fr_rt_opts *o, const char *algo, const char *run, int64_t epochs)
{
    const fr_algo *a;
    ck_assert(fr_algo_find(algo, &a) == FR_OK);
    fr_rt_opts_init(o, a, run, epochs);
    o->ro.c.lora_rank = 2;
    o->ro.c.lora_alpha = 4.0;
}

/* Each algorithm with --lora-rank 2: 3 epochs on ref equal 1 epoch resumed to 3 on opt (2
 * threads) and on cuda-emu, record for record (the adapter, its AdamW moments, the
 * second adapter of AWM / NFT / DGPO); the run writes adapter_model.safetensors; the base's
 * parameters are in no record (frozen). */
START_TEST(test_runs_resume_and_backends)
{
    for (const char *const *an = k_lora_algos; *an; an++) {
        char whole[64], part[64], emu[64], path[512];
        snprintf(whole, sizeof whole, "%s-whole", *an);
        snprintf(part, sizeof part, "%s-part", *an);
        snprintf(emu, sizeof emu, "%s-emu", *an);
        fr_rt_opts w, p, e;
        lora_opts(&w, *an, whole, 3);
        lora_opts(&p, *an, part, 1);
        lora_opts(&e, *an, emu, 3);
        ck_assert_msg(fr_rt_run(&w, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", *an, fr_last_error());
        ck_assert_msg(fr_rt_run(&p, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", *an, fr_last_error());
        fr_run_result res;
        ck_assert_msg(fr_rt_resume(part, 3, 0, "opt", 2, &res) == FR_OK, "%s resume: %s", *an, fr_last_error());
        fr_rt_assert_same_records(whole, part, 3);
        ck_assert_msg(fr_rt_run(&e, "cuda-emu", 1, NULL, NULL) == FR_OK, "%s: %s", *an, fr_last_error());
        fr_rt_assert_same_records(whole, emu, 3);
        char *rec = fr_rt_records(whole);
        ck_assert_msg(strstr(rec, "blocks.0.fc1.lora_B.weight") && !strstr(rec, " in.weight"), "%s: records", *an);
        free(rec);
        snprintf(path, sizeof path, "%s/%s/%s", fr_rt_dir, whole, FR_LORA_ADAPTER_FILE);
        FILE *fp = fopen(path, "rb");
        ck_assert_msg(fp != NULL, "%s: no %s", *an, path);
        fclose(fp);
        fr_rt_opts_free(&w), fr_rt_opts_free(&p), fr_rt_opts_free(&e);
    }
}
END_TEST

/* The tensors of file a under prefix pa equal those of file b under prefix pb, name for name
 * (the rest of each name the same), bit for bit; returns how many. */
static int same_tensors(const char *a, const char *pa, const char *b, const char *pb)
{
    fr_st_file fa, fb;
    ck_assert_msg(fr_st_read(&fa, a) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_st_read(&fb, b) == FR_OK, "%s", fr_last_error());
    int n = 0;
    char key[256];
    for (size_t i = 0; i < fa.n; i++) {
        const char *nm = fa.entries[i].name;
        if (strncmp(nm, pa, strlen(pa)) != 0) continue;
        snprintf(key, sizeof key, "%s%s", pb, nm + strlen(pa));
        const fr_tensor *x = &fa.entries[i].t, *y = fr_st_get(&fb, key);
        ck_assert_msg(y != NULL, "%s: no %s", b, key);
        ck_assert(x->dtype == FR_F32 && y->dtype == FR_F32 && fr_tensor_numel(x) == fr_tensor_numel(y));
        ck_assert_msg(memcmp(x->data, y->data, (size_t)fr_tensor_numel(x) * 4) == 0, "%s: %s differs", b, key);
        n++;
    }
    fr_st_free(&fa), fr_st_free(&fb);
    return n;
}

/* --ema-decay with --lora-rank (Flow-GRPO): the run writes adapter_ema.safetensors beside
 * adapter_model.safetensors, holding the EMA shadow of the adapter bit for bit (the last
 * checkpoint's ema.* tensors) under the adapter file's PEFT keys; it loads as an adapter
 * (fr_lora_from_file, `flowrl eval --adapter`); a run resumed from epoch 1 writes the same file;
 * a run without an EMA writes none. */
START_TEST(test_ema_adapter_file)
{
    char path[512], ema[512], ck[512], rel[64], out[8192];
    fr_rt_opts w, p, n;
    lora_opts(&w, "flow-grpo", "ema-whole", 3);
    lora_opts(&p, "flow-grpo", "ema-part", 1);
    lora_opts(&n, "flow-grpo", "no-ema", 1);
    w.ro.opt.ema_decay = p.ro.opt.ema_decay = 0.5f;
    w.ro.opt.ema_every = p.ro.opt.ema_every = 1;
    ck_assert_msg(fr_rt_run(&w, "ref", 1, NULL, NULL) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_rt_run(&p, "ref", 1, NULL, NULL) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_rt_run(&n, "ref", 1, NULL, NULL) == FR_OK, "%s", fr_last_error());
    fr_run_result res;
    ck_assert_msg(fr_rt_resume("ema-part", 3, 0, "opt", 2, &res) == FR_OK, "%s", fr_last_error());
    snprintf(ema, sizeof ema, "%s/ema-whole/%s", fr_rt_dir, FR_LORA_EMA_FILE);
    snprintf(ck, sizeof ck, "%s/ema-whole/%s", fr_rt_dir, fr_checkpoint_name(3, rel, sizeof rel));
    /* the EMA shadow of every adapter tensor, and nothing else */
    const int n_t = same_tensors(ck, "ema.", ema, FR_LORA_PEFT_PREFIX);
    ck_assert_int_eq(n_t, same_tensors(ema, FR_LORA_PEFT_PREFIX, ck, "ema."));
    ck_assert_int_gt(n_t, 0);
    fr_st_file f;
    ck_assert(fr_st_read(&f, ema) == FR_OK);
    ck_assert_int_eq((int)f.n, n_t);
    ck_assert_str_eq(fr_st_get_meta(&f, "lora.rank"), "2");
    ck_assert_str_eq(fr_st_get_meta(&f, "lora.alpha"), "4");
    ck_assert_str_eq(fr_st_get_meta(&f, "lora.adapter"), "eval");
    /* not the trained adapter: after 3 steps at decay 0.5 the shadow lags it */
    snprintf(path, sizeof path, "%s/ema-whole/%s", fr_rt_dir, FR_LORA_ADAPTER_FILE);
    fr_st_file g;
    ck_assert(fr_st_read(&g, path) == FR_OK);
    int differ = 0;
    for (size_t i = 0; i < f.n; i++) {
        const fr_tensor *y = fr_st_get(&g, f.entries[i].name);
        ck_assert(y != NULL);
        differ |= memcmp(f.entries[i].t.data, y->data, (size_t)fr_tensor_numel(y) * 4) != 0;
    }
    ck_assert_msg(differ, "adapter_ema equals adapter_model");
    fr_st_free(&g);
    /* the loader: a set made from the file alone holds the shadow */
    fr_model base;
    ck_assert_msg(fr_model_load(&base, fr_test_ref_be(), fr_rt_base) == FR_OK, "%s", fr_last_error());
    fr_lora L;
    ck_assert_msg(fr_lora_from_file(&L, &base, ema) == FR_OK, "%s", fr_last_error());
    fr_model v;
    ck_assert(fr_lora_view(&v, &L, 0, 0) == FR_OK && v.n_params == n_t);
    for (int i = 0; i < v.n_params; i++) {
        char key[256];
        snprintf(key, sizeof key, "%s%s", FR_LORA_PEFT_PREFIX, v.params[i].name);
        const fr_tensor *want = fr_st_get(&f, key);
        ck_assert_msg(want != NULL, "%s", key);
        float *got = down(fr_test_ref_be(), (const float *)v.values[i].data, fr_tensor_numel(want));
        ck_assert_msg(memcmp(got, want->data, (size_t)fr_tensor_numel(want) * 4) == 0, "%s", key);
        free(got);
    }
    fr_model_free(&v), fr_lora_free(&L), fr_model_free(&base);
    fr_st_free(&f);
    int rc = fr_rt_cli(out, sizeof out, "eval --ckpt %s --task gmm2d --n 2 --json --adapter %s", fr_rt_base, ema);
    ck_assert_msg(rc == 0 && strstr(out, "mean_score"), "flowrl eval --adapter %s: %d\n%s", ema, rc, out);
    /* resumed from epoch 1 on opt: the same file, byte for byte */
    snprintf(path, sizeof path, "%s/ema-part/%s", fr_rt_dir, FR_LORA_EMA_FILE);
    fr_test_assert_same_bytes(ema, path);
    /* no EMA, no file (the adapter file is there) */
    snprintf(path, sizeof path, "%s/no-ema/%s", fr_rt_dir, FR_LORA_EMA_FILE);
    ck_assert_msg(access(path, F_OK) != 0, "%s written without an EMA", path);
    snprintf(path, sizeof path, "%s/no-ema/%s", fr_rt_dir, FR_LORA_ADAPTER_FILE);
    ck_assert(access(path, F_OK) == 0);
    fr_rt_opts_free(&w), fr_rt_opts_free(&p), fr_rt_opts_free(&n);
}
END_TEST

/* The registry's flag (fr_algo.no_lora) decides: an algorithm that keeps a full copy of the policy
 * (DDO; Flow-DPO from another file) refuses --lora-rank with the one error line naming itself, before
 * anything runs; one whose flag is clear (Flow-GRPO) runs its epoch on the adapter. */
START_TEST(test_run_refused)
{
    static const char *const refused[] = {"ddo", "flow-dpo", NULL};
    for (const char *const *an = refused; *an; an++) {
        const fr_algo *a;
        ck_assert(fr_algo_find(*an, &a) == FR_OK && a->no_lora);
        char run[64], want[256];
        snprintf(run, sizeof run, "%s-lora", *an);
        snprintf(want, sizeof want, "--lora-rank: %s keeps a second full copy of the policy and does not run on LoRA "
                 "adapters yet (docs/lora.md lists the algorithms that do)", *an);
        fr_rt_opts o;
        lora_opts(&o, *an, run, 1);
        ck_assert(fr_rt_run(&o, "ref", 1, NULL, NULL) == FR_ERR_ARG);
        ck_assert_msg(strstr(fr_last_error(), want), "%s", fr_last_error());
        fr_rt_opts_free(&o);
    }
    const fr_algo *a;
    ck_assert(fr_algo_find("flow-grpo", &a) == FR_OK && !a->no_lora);
    fr_rt_opts o;
    lora_opts(&o, "flow-grpo", "flow-grpo-lora", 1);
    ck_assert_msg(fr_rt_run(&o, "ref", 1, NULL, NULL) == FR_OK, "%s", fr_last_error());
    fr_rt_opts_free(&o);
}
END_TEST

Suite *suite_lora(void)
{
    Suite *s = suite_create("lora");
    TCase *tc = tcase_create("lora");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_linear_adapter_exact);
    tcase_add_loop_test(tc, test_init_is_base, 0, 2); /* 0: the MLP, 1: the DiT */
    tcase_add_loop_test(tc, test_view_equals_merged, 0, 2);
    tcase_add_test(tc, test_fd_dit);
    tcase_add_loop_test(tc, test_backends_and_microbatches, 0, 2);
    tcase_add_test(tc, test_targets);
    tcase_add_test(tc, test_adapter_file);
    tcase_add_test(tc, test_adapter_file_dit);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("lora_runs");
    tcase_set_timeout(tr, 300);
    tcase_add_checked_fixture(tr, fr_rt_setup, fr_rt_teardown);
    tcase_add_test(tr, test_runs_resume_and_backends);
    tcase_add_test(tr, test_run_refused);
    tcase_add_test(tr, test_ema_adapter_file);
    suite_add_tcase(s, tr);
    return s;
}
