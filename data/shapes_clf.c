/* The shapes classifier (flowrl/classifier.h): data from the task and its detector, an MLP
 * D -> H (tanh) -> K logits trained by Adam on the mean binary cross-entropy, its reward
 * log σ(z_p) with the gradient to the image, and agreement with the detector.
 *
 * Shapes: x (D,) with D = 3·16·16; h (H,) = tanh(W1 x + b1); z (K,) = W2 h + b2, K = 70 prompts.
 * Loss of a minibatch of b images: mean over b·K of softplus(z) − y·z (= −y log σ(z) − (1 − y)
 * log(1 − σ(z))), so dL/dz = (σ(z) − y)/(b·K). Every sum is a plain loop in index order. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/shapes_internal.h"
#include "flowrl/classifier.h"
#include "flowrl/detmath.h"
#include "flowrl/philox.h"
#include "flowrl/safetensors.h"

enum { CD = FR_SHAPES_D, CK = FR_SHAPES_N_PROMPTS };

void fr_clf_config_default(fr_clf_config *c)
{
    *c = (fr_clf_config){8192, 10, 32, 32, 1e-2f, 0};
}

void fr_clf_free(fr_clf *m)
{
    if (m) free(m->w1);
    if (m) memset(m, 0, sizeof *m);
}

static fr_status clf_alloc(fr_clf *m, const fr_clf_config *c)
{
    memset(m, 0, sizeof *m);
    if (c->n < 1 || c->epochs < 0 || c->batch < 1 || c->hidden < 1 || c->hidden > 4096 || !(c->lr > 0.0f))
        return fr_fail(FR_ERR_ARG, "classifier: n %lld, epochs %lld, batch %lld, hidden %lld, lr %g: expected n, batch "
                                   ">= 1, epochs >= 0, hidden in [1, 4096], lr > 0",
                       (long long)c->n, (long long)c->epochs, (long long)c->batch, (long long)c->hidden, (double)c->lr);
    m->cfg = *c;
    m->D = CD;
    m->H = c->hidden;
    m->K = CK;
    const int64_t np = m->H * m->D + m->H + m->K * m->H + m->K;
    m->w1 = fr_calloc((size_t)np, sizeof(float));
    if (!m->w1) return FR_ERR_NOMEM;
    m->b1 = m->w1 + m->H * m->D;
    m->w2 = m->b1 + m->H;
    m->b2 = m->w2 + m->K * m->H;
    return FR_OK;
}

static int64_t n_params(const fr_clf *m) { return m->H * m->D + m->H + m->K * m->H + m->K; }

/* Uniform integer in [0, n) from one word (multiply-shift, as data/shapes.c). */
static int uniform_int(uint32_t w, int n) { return (int)(((uint64_t)w * (uint32_t)n) >> 32); }

/* Image i of seed (see flowrl/classifier.h) and its label row y (K,) (NULL: none); *own = its drawn
 * prompt. */
static fr_status example(uint32_t seed, uint32_t i, float *x, float *y, int *own)
{
    const int q = uniform_int(fr_rng_u32(seed, FR_RNG_CLF_DATA, 0, i, 0, 0), CK);
    *own = q;
    FR_TRY(fr_shapes_sample(q, seed, i, x));
    const int kind = (int)(i % 4);
    if (kind >= 2) {
        float other[CD];
        const int q2 = uniform_int(fr_rng_u32(seed, FR_RNG_CLF_DATA, 0, i, 0, 1), CK);
        FR_TRY(fr_shapes_sample(q2, seed ^ 0x9E3779B9u, i, other));
        for (int d = 0; d < CD; d++) x[d] = x[d] > other[d] ? x[d] : other[d];
    }
    if (kind == 1 || kind == 3) {
        const float std = 0.6f * fr_rng_uniform(seed, FR_RNG_CLF_DATA, 0, i, 0, 2);
        for (int d = 0; d < CD; d++) x[d] = x[d] + std * fr_rng_normal(seed, FR_RNG_CLF_DATA, 1, i, 0, (uint32_t)d);
    }
    if (!y) return FR_OK;
    fr_shapes_detection det;
    FR_TRY(fr_shapes_detect(x, &det));
    for (int p = 0; p < CK; p++) {
        float s;
        int ok;
        FR_TRY(fr_shapes_score(p, &det, &s, &ok));
        y[p] = ok ? 1.0f : 0.0f;
    }
    return FR_OK;
}

/* The network's input u = (x + 1)/2 in [0, 1]: the black background is 0 and adds nothing to
 * the pre-activations (with x itself, the 768 background values pushed every unit into tanh's
 * flat tails within a few Adam steps). */
static float input(float x) { return (x + 1.0f) * 0.5f; }

/* h (H,) and z (K,) of image x. */
static void forward(const fr_clf *m, const float *x, float *h, float *z)
{
    for (int64_t j = 0; j < m->H; j++) {
        const float *w = m->w1 + j * m->D;
        float a = m->b1[j];
        for (int64_t d = 0; d < m->D; d++) a = a + w[d] * input(x[d]);
        h[j] = fr_tanhf(a);
    }
    for (int64_t k = 0; k < m->K; k++) {
        const float *w = m->w2 + k * m->H;
        float a = m->b2[k];
        for (int64_t j = 0; j < m->H; j++) a = a + w[j] * h[j];
        z[k] = a;
    }
}

/* Adam (no decay), float32: m ← β1 m + (1 − β1) g, v ← β2 v + (1 − β2) g², p ← p − lr·m̂/(√v̂ + ε);
 * pw (2,) carries β1^t, β2^t as running products (no libm pow, whose last bits vary). */
static void adam(float *p, const float *g, float *mo, float *ve, int64_t n, float lr, float *pw)
{
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    pw[0] = pw[0] * b1;
    pw[1] = pw[1] * b2;
    const float c1 = 1.0f - pw[0], c2 = 1.0f - pw[1];
    for (int64_t i = 0; i < n; i++) {
        mo[i] = b1 * mo[i] + (1.0f - b1) * g[i];
        ve[i] = b2 * ve[i] + (1.0f - b2) * (g[i] * g[i]);
        p[i] = p[i] - lr * (mo[i] / c1) / (sqrtf(ve[i] / c2) + eps);
    }
}

fr_status fr_clf_train(const fr_clf_config *c, fr_clf *out)
{
    FR_TRY(clf_alloc(out, c));
    fr_clf *m = out;
    const int64_t n = c->n, H = m->H, K = m->K, D = m->D, P = n_params(m);
    /* initialisation: U(−1/√fan_in, 1/√fan_in) (torch's nn.Linear bound), biases 0 */
    for (int64_t i = 0; i < H * D; i++)
        m->w1[i] = (2.0f * fr_rng_uniform(c->seed, FR_RNG_CLF_INIT, 0, 0, 0, (uint32_t)i) - 1.0f) / sqrtf((float)D);
    for (int64_t i = 0; i < K * H; i++)
        m->w2[i] = (2.0f * fr_rng_uniform(c->seed, FR_RNG_CLF_INIT, 1, 0, 0, (uint32_t)i) - 1.0f) / sqrtf((float)H);
    float *x = fr_malloc((size_t)(n * D) * sizeof *x), *y = fr_malloc((size_t)(n * K) * sizeof *y);
    float *g = fr_calloc((size_t)(3 * P), sizeof *g);
    int64_t *order = fr_malloc((size_t)n * sizeof *order);
    float *h = fr_malloc((size_t)(H + 2 * K) * sizeof *h); /* h (H,), z (K,), dz (K,) */
    fr_status s = x && y && g && order && h ? FR_OK : FR_ERR_NOMEM;
    for (int64_t i = 0; s == FR_OK && i < n; i++) {
        int own;
        s = example(c->seed, (uint32_t)i, x + i * D, y + i * K, &own);
    }
    float *mo = g + P, *ve = g + 2 * P, *dz = h + H + K, *z = h + H;
    float pw[2] = {1.0f, 1.0f};
    for (int64_t e = 0; s == FR_OK && e < c->epochs; e++) {
        fr_rng_perm(order, n, c->seed, FR_RNG_CLF_ORDER, (uint32_t)e, 0);
        double loss = 0.0;
        for (int64_t b0 = 0; b0 < n; b0 += c->batch) {
            const int64_t bn = b0 + c->batch <= n ? c->batch : n - b0;
            const float inv = 1.0f / (float)(bn * K);
            memset(g, 0, (size_t)P * sizeof *g);
            float *gw1 = g, *gb1 = g + H * D, *gw2 = gb1 + H, *gb2 = gw2 + K * H;
            for (int64_t r = 0; r < bn; r++) {
                const int64_t i = order[b0 + r];
                const float *xi = x + i * D, *yi = y + i * K;
                forward(m, xi, h, z);
                float dh[4096];
                for (int64_t k = 0; k < K; k++) {
                    loss += (double)(fr_softplusf(z[k]) - yi[k] * z[k]);
                    dz[k] = (fr_sigmoidf(z[k]) - yi[k]) * inv;
                    gb2[k] = gb2[k] + dz[k];
                }
                for (int64_t j = 0; j < H; j++) dh[j] = 0.0f;
                for (int64_t k = 0; k < K; k++)
                    for (int64_t j = 0; j < H; j++) {
                        gw2[k * H + j] = gw2[k * H + j] + dz[k] * h[j];
                        dh[j] = dh[j] + dz[k] * m->w2[k * H + j];
                    }
                for (int64_t j = 0; j < H; j++) {
                    const float da = dh[j] * (1.0f - h[j] * h[j]);
                    gb1[j] = gb1[j] + da;
                    for (int64_t d = 0; d < D; d++) gw1[j * D + d] = gw1[j * D + d] + da * input(xi[d]);
                }
            }
            adam(m->w1, g, mo, ve, P, c->lr, pw);
        }
        m->train_loss = (float)(loss / (double)(n * K));
    }
    free(x);
    free(y);
    free(g);
    free(order);
    free(h);
    if (s != FR_OK) fr_clf_free(m);
    return s;
}

fr_status fr_clf_logprob(const fr_clf *m, int prompt, const float *x, float *score, float *grad)
{
    if (!m || !m->w1 || prompt < 0 || prompt >= m->K)
        return fr_fail(FR_ERR_ARG, "classifier: prompt %d outside [0, %lld) or no model", prompt,
                       m ? (long long)m->K : 0LL);
    for (int64_t d = 0; d < m->D; d++)
        if (!isfinite(x[d]))
            return fr_fail(FR_ERR_NUMERIC, "classifier: element %lld of the image is %g, expected a finite value",
                           (long long)d, (double)x[d]);
    float h[4096], z[CK];
    forward(m, x, h, z);
    const float zp = z[prompt];
    *score = -fr_softplusf(-zp); /* log σ(z_p) */
    if (!grad) return FR_OK;
    /* d log σ(z)/dz = σ(−z); dz/dh_j = W2[p, j]; dh_j/da_j = 1 − h_j²; da_j/dx = W1[j, :]/2 */
    const float gz = fr_sigmoidf(-zp) * 0.5f;
    for (int64_t d = 0; d < m->D; d++) grad[d] = 0.0f;
    for (int64_t j = 0; j < m->H; j++) {
        const float da = gz * m->w2[prompt * m->H + j] * (1.0f - h[j] * h[j]);
        const float *w = m->w1 + j * m->D;
        for (int64_t d = 0; d < m->D; d++) grad[d] = grad[d] + da * w[d];
    }
    return FR_OK;
}

fr_status fr_clf_evaluate(const fr_clf *m, uint32_t seed, int64_t n, fr_clf_eval *ev)
{
    if (n < 1) return fr_fail(FR_ERR_ARG, "classifier evaluate: %lld images, expected >= 1", (long long)n);
    int64_t agree = 0, agree_own = 0, pos_own = 0;
    float x[CD], y[CK], h[4096], z[CK];
    for (int64_t i = 0; i < n; i++) {
        int own;
        FR_TRY(example(seed, (uint32_t)i, x, y, &own));
        forward(m, x, h, z);
        for (int k = 0; k < CK; k++) agree += (z[k] > 0.0f) == (y[k] > 0.5f);
        agree_own += (z[own] > 0.0f) == (y[own] > 0.5f);
        pos_own += y[own] > 0.5f;
    }
    ev->n = n;
    ev->acc_all = (double)agree / (double)(n * CK);
    ev->acc_own = (double)agree_own / (double)n;
    ev->pos_rate_own = (double)pos_own / (double)n;
    return FR_OK;
}

fr_status fr_clf_save(const fr_clf *m, const char *path)
{
    fr_st_file f;
    fr_st_init(&f);
    const int64_t s1[2] = {m->H, m->D}, s2[1] = {m->H}, s3[2] = {m->K, m->H}, s4[1] = {m->K};
    fr_tensor t1 = fr_tensor_view(m->w1, FR_F32, 2, s1), t2 = fr_tensor_view(m->b1, FR_F32, 1, s2),
              t3 = fr_tensor_view(m->w2, FR_F32, 2, s3), t4 = fr_tensor_view(m->b2, FR_F32, 1, s4);
    char v[5][32];
    snprintf(v[0], sizeof v[0], "%lld", (long long)m->cfg.n);
    snprintf(v[1], sizeof v[1], "%lld", (long long)m->cfg.epochs);
    snprintf(v[2], sizeof v[2], "%lld", (long long)m->cfg.batch);
    snprintf(v[3], sizeof v[3], "%a", (double)m->cfg.lr);
    snprintf(v[4], sizeof v[4], "%u", (unsigned)m->cfg.seed);
    fr_status s = fr_st_add(&f, "w1", &t1);
    if (s == FR_OK) s = fr_st_add(&f, "b1", &t2);
    if (s == FR_OK) s = fr_st_add(&f, "w2", &t3);
    if (s == FR_OK) s = fr_st_add(&f, "b2", &t4);
    if (s == FR_OK) s = fr_st_set_meta(&f, "format", "flowrl shapes classifier 1");
    if (s == FR_OK) s = fr_st_set_meta(&f, "clf.n", v[0]);
    if (s == FR_OK) s = fr_st_set_meta(&f, "clf.epochs", v[1]);
    if (s == FR_OK) s = fr_st_set_meta(&f, "clf.batch", v[2]);
    if (s == FR_OK) s = fr_st_set_meta(&f, "clf.lr", v[3]);
    if (s == FR_OK) s = fr_st_set_meta(&f, "clf.seed", v[4]);
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    return s;
}

static fr_status get_f32(const fr_st_file *f, const char *path, const char *name, int nd, int64_t d0, int64_t d1,
                         const float **out)
{
    const fr_tensor *t = fr_st_get(f, name);
    if (!t || t->dtype != FR_F32 || t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1))
        return fr_fail(FR_ERR_FORMAT, "%s: tensor %s missing or not F32 of shape (%lld%s%lld)", path, name,
                       (long long)d0, nd == 2 ? ", " : "", nd == 2 ? (long long)d1 : 0LL);
    *out = t->data;
    return FR_OK;
}

fr_status fr_clf_load(const char *path, fr_clf *out)
{
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path));
    const char *fmt = fr_st_get_meta(&f, "format");
    const fr_tensor *b1 = fr_st_get(&f, "b1");
    fr_status s = fmt && strcmp(fmt, "flowrl shapes classifier 1") == 0 && b1 && b1->ndim == 1
                      ? FR_OK
                      : fr_fail(FR_ERR_FORMAT, "%s: not a flowrl shapes classifier (metadata format, tensor b1)", path);
    fr_clf_config c;
    fr_clf_config_default(&c);
    if (s == FR_OK) {
        c.hidden = b1->shape[0];
        s = clf_alloc(out, &c);
    }
    const float *p[4];
    if (s == FR_OK) s = get_f32(&f, path, "w1", 2, out->H, out->D, &p[0]);
    if (s == FR_OK) s = get_f32(&f, path, "b1", 1, out->H, 0, &p[1]);
    if (s == FR_OK) s = get_f32(&f, path, "w2", 2, out->K, out->H, &p[2]);
    if (s == FR_OK) s = get_f32(&f, path, "b2", 1, out->K, 0, &p[3]);
    if (s == FR_OK) {
        memcpy(out->w1, p[0], (size_t)(out->H * out->D) * sizeof(float));
        memcpy(out->b1, p[1], (size_t)out->H * sizeof(float));
        memcpy(out->w2, p[2], (size_t)(out->K * out->H) * sizeof(float));
        memcpy(out->b2, p[3], (size_t)out->K * sizeof(float));
    } else
        fr_clf_free(out);
    fr_st_free(&f);
    return s;
}

static fr_clf g_builtin;
static fr_status g_builtin_status;
static pthread_once_t g_builtin_once = PTHREAD_ONCE_INIT;

static void train_builtin(void)
{
    fr_clf_config c;
    fr_clf_config_default(&c);
    g_builtin_status = fr_clf_train(&c, &g_builtin);
}

fr_status fr_clf_builtin(const fr_clf **out)
{
    pthread_once(&g_builtin_once, train_builtin);
    *out = g_builtin_status == FR_OK ? &g_builtin : NULL;
    return g_builtin_status == FR_OK
               ? FR_OK
               : fr_fail(g_builtin_status, "shapes classifier: its training failed (status %d)", (int)g_builtin_status);
}
