/* GMFlow's network, training and GM-SDE sampler (flowrl/gmflow.h; spec/more.md §10.1;
 * Lakonik/GMFlow@c3697df lib/models/architecture/toymodels.py GMFlowMLP2DDenoiser,
 * lib/models/diffusions/gmflow.py forward_train / forward_test, configs/gmflow_checkerboard_k64.py).
 *
 * The network runs through the op table (an fr_mlp); its inputs (the embeddings) are computed
 * on the host in float and its head rows come back to the host, where the NLL, its gradient
 * and the sampler's mixture draws are computed in double (core/gmflow.c). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/buildinfo.h"
#include "flowrl/detmath.h"
#include "flowrl/gmflow.h"
#include "flowrl/model.h"
#include "flowrl/optim_step.h"
#include "flowrl/philox.h"
#include "flowrl/pretrain.h"
#include "gmflow_internal.h"

#define GM_T_EPS 1e-4 /* forward_train's eps: t_high >= eps, t_low <= t_high − eps */
#define GM_POS_MIN_PERIOD 5e-3
#define GM_POS_MAX_PERIOD 50.0
#define GM_TWO_PI 6.28318530717958647692

void fr_gmflow_embed(int E, int D, float t, const float *x, float *out)
{
    const int half = E / 2, q = E / (2 * D);
    for (int j = 0; j < half; j++) {
        const float f = (float)fr_awm_exp(-9.21034037197618273607 * (double)j / (double)(half - 1)); /* ln 10000 */
        const float a = t * f;
        out[j] = fr_cosf(a); /* flip_sin_to_cos: cos first */
        out[half + j] = fr_sinf(a);
    }
    const double l0 = fr_awm_log(GM_POS_MIN_PERIOD), l1 = fr_awm_log(GM_POS_MAX_PERIOD);
    for (int c = 0; c < D; c++) {
        float *o = out + E + 2 * q * c;
        for (int j = 0; j < q; j++) {
            const double period = fr_awm_exp(l0 + (l1 - l0) * (double)j / (double)(q > 1 ? q - 1 : 1));
            const float a = x[c] * (float)(GM_TWO_PI / period);
            o[j] = fr_sinf(a);
            o[q + j] = fr_cosf(a);
        }
    }
}

fr_status fr_gmflow_net_new(fr_gmflow_net *g, fr_backend *be, const fr_gmflow_arch *a, int64_t cap)
{
    memset(g, 0, sizeof *g);
    if (a->K < 1 || a->K > 1024 || a->D < 1 || a->D > 64 || a->E < 4 || a->E % (2 * a->D) || a->E / 2 < 2 ||
        a->hidden < 1 || a->layers < 1 || a->layers > FR_MLP_MAX_LAYERS - 1)
        return fr_fail(FR_ERR_ARG, "gmflow: K %d, D %d, embed %d, hidden %d, layers %d: expected K in [1, 1024], "
                       "embed a multiple of 2 D (>= 4), layers in [1, %d]", a->K, a->D, a->E, a->hidden, a->layers,
                       FR_MLP_MAX_LAYERS - 1);
    int64_t dim[FR_MLP_MAX_LAYERS + 1];
    dim[0] = 2 * a->E;
    for (int l = 1; l <= a->layers; l++) dim[l] = a->hidden;
    dim[a->layers + 1] = fr_gm_width(a->K, a->D);
    g->a = *a;
    g->cap = cap;
    FR_TRY(fr_mlp_new(&g->net, be, "gmflow.net", a->layers + 1, dim, FR_ACT_SILU, cap));
    g->params = g->net.params, g->n_params = g->net.n_params;
    g->emb = malloc(sizeof(float) * (size_t)(cap * dim[0]));
    if (!g->emb) {
        fr_mlp_free(&g->net);
        return FR_ERR_NOMEM;
    }
    return FR_OK;
}

void fr_gmflow_net_free(fr_gmflow_net *g)
{
    if (!g) return;
    if (g->img) fr_gmflow_image_free(g);
    fr_mlp_free(&g->net);
    free(g->emb);
    g->emb = NULL;
}

fr_status fr_gmflow_net_init(fr_gmflow_net *g, uint32_t seed)
{
    if (g->img) return fr_gmflow_image_init(g, seed);
    FR_TRY(fr_mlp_init_params(&g->net, seed, 0, 1.0f));
    /* zero the logit and log-std rows of the last layer (toymodels.py init_weights) */
    const int L = g->net.L, K = g->a.K, D = g->a.D;
    const int64_t in = g->net.dim[L - 1], first = fr_gm_logit_off(K, D), n = K + 1;
    float *z = calloc((size_t)(n * in), sizeof *z);
    if (!z) return FR_ERR_NOMEM;
    fr_status s = fr_h2d(g->net.be, (float *)g->net.vals[2 * (L - 1)].data + first * in, z, sizeof *z * (size_t)(n * in));
    if (s == FR_OK) s = fr_h2d(g->net.be, (float *)g->net.vals[2 * (L - 1) + 1].data + first, z, sizeof *z * (size_t)n);
    free(z);
    return s;
}

fr_status fr_gmflow_net_forward(fr_gmflow_net *g, int64_t R, const float *t, const float *x, float *rows)
{
    return fr_gmflow_net_forward_c(g, R, t, x, NULL, rows);
}

fr_status fr_gmflow_net_forward_c(fr_gmflow_net *g, int64_t R, const float *t, const float *x, const int *prompts,
                                  float *rows)
{
    if (g->img) return fr_gmflow_image_forward(g, R, t, x, prompts, rows);
    const int E2 = 2 * g->a.E;
    for (int64_t r = 0; r < R; r++) fr_gmflow_embed(g->a.E, g->a.D, t[r], x + r * g->a.D, g->emb + r * E2);
    return fr_mlp_forward_host(&g->net, R, g->emb, rows);
}

fr_gmflow_train_cfg fr_gmflow_train_defaults(void)
{
    /* configs/gmflow_checkerboard_k64.py: AdamW lr 2e-4, weight decay 0, trans_ratio 0.9,
     * warm-up 1000 of 200k iterations of batch 4096; flowrl's miniature defaults are smaller */
    fr_gmflow_train_cfg c = {.steps = 2000, .batch = 256, .warmup = 100, .lr = 1e-3, .weight_decay = 0.0,
                             .trans_ratio = 0.9, .seed = 1};
    return c;
}

fr_status fr_gmflow_pair(const fr_task *task, const fr_gmflow_train_cfg *c, int64_t k, int64_t b, float *t_high,
                         double *sigma, double *sigma_to, float *x_low, float *x_high)
{
    const int D = task->D;
    if (D > FR_GMFLOW_MAX_D)
        return fr_fail(FR_ERR_ARG, "gmflow: task %s has D = %d (at most %d)", task->name, D, FR_GMFLOW_MAX_D);
    float x0[FR_GMFLOW_MAX_D];
    const uint32_t idx = (uint32_t)(k * c->batch + b);
    FR_TRY(task->sample(fr_gmflow_prompt(task, c, k, b), c->seed, idx, x0)); /* the training prompts in turn */
    const float u = fr_rng_uniform(c->seed, FR_RNG_GMFLOW_TIME, (uint32_t)k, (uint32_t)b, 0, 0);
    double th = (1.0 - (double)u) * 1000.0;
    if (th < GM_T_EPS) th = GM_T_EPS;
    double tl = th * (1.0 - c->trans_ratio);
    if (tl > th - GM_T_EPS) tl = th - GM_T_EPS;
    if (tl < 0.0) tl = 0.0;
    const double sh = th / 1000.0, sl = tl / 1000.0, ah = 1.0 - sh, al = 1.0 - sl;
    const double ratio = ah / al, st = sqrt(fmax(sh * sh - (ah * sl / al) * (ah * sl / al), 0.0));
    for (int d = 0; d < D; d++) {
        const double e0 = (double)fr_rng_normal(c->seed, FR_RNG_GMFLOW_NOISE, (uint32_t)k, (uint32_t)b, 0, (uint32_t)d);
        const double e1 = (double)fr_rng_normal(c->seed, FR_RNG_GMFLOW_NOISE, (uint32_t)k, (uint32_t)b, 1, (uint32_t)d);
        const double xl = al * (double)x0[d] + sl * e0;
        x_low[d] = (float)xl;
        x_high[d] = (float)(xl * ratio + st * e1);
    }
    *t_high = (float)th;
    *sigma = (double)*t_high / 1000.0; /* the network's time and the loss's sigma agree */
    *sigma_to = sl;
    return FR_OK;
}

int fr_gmflow_prompt(const fr_task *task, const fr_gmflow_train_cfg *c, int64_t k, int64_t b)
{
    return fr_task_prompt_in_turn(task, (int64_t)(uint32_t)(k * c->batch + b));
}

/* The Karras EMA's decay after update t >= 1 (configs/gmflow_checkerboard_k64.py momentum_policy
 * 'karras', gamma 7): (1 − 1/t)^(γ + 1), by three squarings in double. */
static float karras_decay(int64_t t)
{
    double b = 1.0 - 1.0 / (double)t;
    b = b * b;
    b = b * b;
    return (float)(b * b);
}

fr_status fr_gmflow_train(fr_gmflow_net *g, const fr_task *task, const fr_gmflow_train_cfg *c, fr_adamw_state *opt,
                          fr_ema *ema, int64_t from_step, fr_gmflow_progress cb, void *user, double *last_loss)
{
    const int K = g->a.K, D = g->a.D;
    const int64_t B = c->batch, W = fr_gm_width(K, D);
    if (task->D != D) return fr_fail(FR_ERR_ARG, "gmflow: task %s has D = %d, the network %d", task->name, task->D, D);
    if (B > g->cap) return fr_fail(FR_ERR_ARG, "gmflow: batch %" PRId64 " over the network's %" PRId64 " rows", B, g->cap);
    float *t = malloc(sizeof(float) * (size_t)B), *xl = malloc(sizeof(float) * (size_t)(B * D));
    float *xh = malloc(sizeof(float) * (size_t)(B * D)), *rows = malloc(sizeof(float) * (size_t)(B * W));
    float *dout = malloc(sizeof(float) * (size_t)(B * W));
    double *sg = malloc(sizeof(double) * (size_t)B), *sgt = malloc(sizeof(double) * (size_t)B);
    int *pr = malloc(sizeof(int) * (size_t)B);
    fr_status s = t && xl && xh && rows && dout && sg && sgt && pr ? FR_OK : FR_ERR_NOMEM;
    fr_adamw_cfg ac = fr_adamw_cfg_default();
    ac.weight_decay = c->weight_decay;
    for (int64_t k = from_step; k < c->steps && s == FR_OK; k++) {
        for (int64_t b = 0; b < B && s == FR_OK; b++) {
            s = fr_gmflow_pair(task, c, k, b, &t[b], &sg[b], &sgt[b], xl + b * D, xh + b * D);
            pr[b] = fr_gmflow_prompt(task, c, k, b);
        }
        if (s == FR_OK) s = fr_gmflow_net_forward_c(g, B, t, xh, pr, rows);
        if (s != FR_OK) break;
        const double loss = fr_gmflow_nll(B, K, D, rows, xh, xl, sg, sgt, dout);
        if (!isfinite(loss)) {
            s = fr_fail(FR_ERR_NUMERIC, "gmflow: step %" PRId64 ": the NLL is %g", k, loss);
            break;
        }
        s = fr_gmflow_net_backward(g, B, dout);
        if (s == FR_OK)
            s = fr_adamw_step(opt->be, opt, g->params, g->n_params, &ac,
                              fr_lr_at(c->lr, 0.0, FR_LR_CONSTANT, c->warmup, k, c->steps));
        if (s == FR_OK && ema) s = fr_ema_update(ema->be, ema, g->params, g->n_params, karras_decay(k + 1));
        if (last_loss) *last_loss = loss;
        if (s == FR_OK && cb && cb(k + 1, loss, user)) break;
    }
    free(t), free(xl), free(xh), free(rows), free(dout), free(sg), free(sgt), free(pr);
    return s;
}

/* Draws x̂0 from the x0-GM of one head row at (x, σ): component k with P(k) = w_k by the
 * inverse CDF of u (the weights summed in component order), then means x − σ μ_k plus σ e^s
 * times a standard normal per coordinate. */
static void draw_x0(int K, int D, const float *row, const float *x, double sigma, double u, const float *z, double *x0)
{
    double lw[1024];
    const float *a = row + fr_gm_logit_off(K, D);
    double mx = (double)a[0], sum = 0.0;
    for (int k = 1; k < K; k++)
        if ((double)a[k] > mx) mx = (double)a[k];
    for (int k = 0; k < K; k++) sum += (lw[k] = fr_awm_exp((double)a[k] - mx));
    int pick = K - 1;
    double acc = 0.0;
    for (int k = 0; k < K; k++) {
        acc += lw[k] / sum;
        if (u < acc) {
            pick = k;
            break;
        }
    }
    const float *mu = row + fr_gm_mean_off(K, D, pick);
    const double sd = sigma * fr_awm_exp((double)row[fr_gm_logstd_off(K, D)]);
    for (int d = 0; d < D; d++) x0[d] = ((double)x[d] - sigma * (double)mu[d]) + sd * (double)z[d];
}

fr_status fr_gmflow_sample(fr_gmflow_net *g, int64_t N, int steps, uint32_t seed, float *out)
{
    return fr_gmflow_sample_c(g, N, steps, seed, NULL, out);
}

fr_status fr_gmflow_sample_c(fr_gmflow_net *g, int64_t N, int steps, uint32_t seed, const int *prompts, float *out)
{
    const int K = g->a.K, D = g->a.D;
    const int64_t W = fr_gm_width(K, D), C = g->cap;
    if (steps < 1) return fr_fail(FR_ERR_ARG, "gmflow sample: %d steps (at least 1)", steps);
    for (int64_t n = 0; n < N; n++)
        for (int d = 0; d < D; d++) out[n * D + d] = fr_rng_normal(seed, FR_RNG_GMFLOW_SAMPLE, 0, (uint32_t)n, 0, (uint32_t)d);
    float *t = malloc(sizeof(float) * (size_t)C), *rows = malloc(sizeof(float) * (size_t)(C * W));
    fr_status s = t && rows ? FR_OK : FR_ERR_NOMEM;
    for (int i = 0; i < steps && s == FR_OK; i++) {
        const double sg = 1.0 - (double)i / (double)steps, sgt = 1.0 - (double)(i + 1) / (double)steps;
        const fr_gmflow_coefs cf = fr_gmflow_transition_coefs(sg, sgt);
        const double noise = sqrt(cf.beta) * sgt;
        for (int64_t n0 = 0; n0 < N && s == FR_OK; n0 += C) {
            const int64_t R = N - n0 < C ? N - n0 : C;
            for (int64_t r = 0; r < R; r++) t[r] = (float)(sg * 1000.0);
            s = fr_gmflow_net_forward_c(g, R, t, out + n0 * D, prompts ? prompts + n0 : NULL, rows);
            for (int64_t r = 0; r < R && s == FR_OK; r++) {
                const uint32_t n = (uint32_t)(n0 + r);
                float z[FR_GMFLOW_MAX_D];
                double x0[FR_GMFLOW_MAX_D];
                for (int d = 0; d < D; d++) z[d] = fr_rng_normal(seed, FR_RNG_GMFLOW_X0, (uint32_t)i, n, 0, (uint32_t)d);
                const double u = (double)fr_rng_uniform(seed, FR_RNG_GMFLOW_PICK, (uint32_t)i, n, 0, 0);
                float *x = out + (int64_t)n * D;
                draw_x0(K, D, rows + r * W, x, sg, u, z, x0);
                for (int d = 0; d < D; d++) {
                    const double xi = (double)fr_rng_normal(seed, FR_RNG_GMFLOW_SAMPLE, (uint32_t)i + 1, n, 0, (uint32_t)d);
                    x[d] = (float)(cf.c1 * (double)x[d] + cf.c2 * x0[d] + noise * xi);
                }
            }
        }
    }
    free(t), free(rows);
    return s;
}

/* ---- checkpoint -------------------------------------------------------------------- */

static fr_status set_meta_i64(fr_st_file *f, const char *key, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return fr_st_set_meta(f, key, buf);
}

/* The tensors ts (one per parameter, in be's memory) as "PREFIX<name>" into f (save) or from it. */
static fr_status param_list(fr_st_file *f, fr_gmflow_net *g, fr_backend *be, fr_tensor *ts, const char *prefix, int save)
{
    char nm[96];
    for (int p = 0; p < g->n_params; p++) {
        snprintf(nm, sizeof nm, "%s%s", prefix, fr_gmflow_net_param_name(g, p));
        FR_TRY(save ? fr_dev_tensor_to_st(be, f, nm, &ts[p]) : fr_dev_tensor_from_st(be, f, nm, &ts[p]));
    }
    return FR_OK;
}

fr_status fr_gmflow_save(const char *path, fr_gmflow_net *g, const fr_adamw_state *opt, const fr_ema *ema,
                         const char *task, const fr_gmflow_train_cfg *c, int64_t step)
{
    fr_st_file f;
    fr_st_init(&f);
    f.digests = 1;
    char buf[64];
    fr_status s = fr_st_set_meta(&f, "flowrl.version", fr_version());
    if (s == FR_OK) s = fr_st_set_meta(&f, "gmflow.task", task);
    if (s == FR_OK) s = set_meta_i64(&f, "gmflow.K", g->a.K);
    if (s == FR_OK) s = set_meta_i64(&f, "gmflow.D", g->a.D);
    if (s == FR_OK) s = set_meta_i64(&f, "gmflow.embed", g->a.E);
    if (s == FR_OK) s = set_meta_i64(&f, "gmflow.hidden", g->a.hidden);
    if (s == FR_OK) s = set_meta_i64(&f, "gmflow.layers", g->a.layers);
    if (s == FR_OK) s = fr_st_set_meta(&f, "gmflow.embedding", "time: Timesteps(embed, flip_sin_to_cos, shift 1); "
                                                              "position: sin-cos, periods 5e-3..50");
    if (s == FR_OK) s = set_meta_i64(&f, "gmflow.step", step);
    if (s == FR_OK) s = set_meta_i64(&f, "gmflow.steps", c->steps);
    if (s == FR_OK) s = set_meta_i64(&f, "gmflow.batch", c->batch);
    if (s == FR_OK) s = set_meta_i64(&f, "gmflow.warmup", c->warmup);
    if (s == FR_OK) s = set_meta_i64(&f, "gmflow.seed", c->seed);
    if (s == FR_OK) snprintf(buf, sizeof buf, "%.17g", c->lr), s = fr_st_set_meta(&f, "gmflow.lr", buf);
    if (s == FR_OK) snprintf(buf, sizeof buf, "%.17g", c->weight_decay), s = fr_st_set_meta(&f, "gmflow.weight_decay", buf);
    if (s == FR_OK) snprintf(buf, sizeof buf, "%.17g", c->trans_ratio), s = fr_st_set_meta(&f, "gmflow.trans_ratio", buf);
    if (s == FR_OK) s = g->img ? fr_gmflow_image_save(g, &f) : fr_mlp_save(&g->net, &f);
    if (s == FR_OK && opt) s = param_list(&f, g, opt->be, opt->m, "optim.m.", 1);
    if (s == FR_OK && opt) s = param_list(&f, g, opt->be, opt->v, "optim.v.", 1);
    if (s == FR_OK && ema) s = param_list(&f, g, ema->be, ema->shadow, "ema.", 1);
    if (s == FR_OK && opt) s = set_meta_i64(&f, "optim.step", opt->step);
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    return s;
}

static fr_status meta_i64(const fr_st_file *f, const char *path, const char *key, int64_t *v)
{
    const char *s = fr_st_get_meta(f, key);
    char *end;
    long long x = s ? strtoll(s, &end, 10) : 0;
    if (!s || end == s || *end)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s' is %s, expected an integer (a flowrl gmflow checkpoint)", path,
                       key, s ? s : "absent");
    *v = (int64_t)x;
    return FR_OK;
}

static fr_status meta_f64(const fr_st_file *f, const char *path, const char *key, double *v)
{
    const char *s = fr_st_get_meta(f, key);
    char *end;
    double x = s ? strtod(s, &end) : 0.0;
    if (!s || end == s || *end)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s' is %s, expected a number (a flowrl gmflow checkpoint)", path, key,
                       s ? s : "absent");
    *v = x;
    return FR_OK;
}

/* The training configuration a checkpoint was written with. */
static fr_status read_cfg(const fr_st_file *f, const char *path, fr_gmflow_train_cfg *c)
{
    int64_t seed = 0;
    FR_TRY(meta_i64(f, path, "gmflow.steps", &c->steps));
    FR_TRY(meta_i64(f, path, "gmflow.batch", &c->batch));
    FR_TRY(meta_i64(f, path, "gmflow.warmup", &c->warmup));
    FR_TRY(meta_i64(f, path, "gmflow.seed", &seed));
    FR_TRY(meta_f64(f, path, "gmflow.lr", &c->lr));
    FR_TRY(meta_f64(f, path, "gmflow.weight_decay", &c->weight_decay));
    FR_TRY(meta_f64(f, path, "gmflow.trans_ratio", &c->trans_ratio));
    c->seed = (uint32_t)seed;
    return FR_OK;
}

fr_status fr_gmflow_load(const char *path, fr_backend *be, int64_t cap, fr_gmflow_net *g, fr_adamw_state *opt,
                         fr_ema *ema, int64_t *step, char *task, fr_gmflow_train_cfg *cfg)
{
    memset(g, 0, sizeof *g);
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path));
    int64_t v[6] = {0};
    const char *keys[6] = {"gmflow.K", "gmflow.D", "gmflow.embed", "gmflow.hidden", "gmflow.layers", "gmflow.step"};
    fr_status s = FR_OK;
    for (int i = 0; i < 6 && s == FR_OK; i++) s = meta_i64(&f, path, keys[i], &v[i]);
    const fr_gmflow_arch a = {(int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], ""};
    fr_gmflow_train_cfg c = fr_gmflow_train_defaults();
    if (s == FR_OK && (cfg || cap <= 0)) s = read_cfg(&f, path, &c);
    if (s == FR_OK && cfg) *cfg = c;
    if (s == FR_OK && fr_st_get_meta(&f, "gmflow.preset")) { /* the image network */
        fr_model_config mc;
        const fr_task *t = NULL;
        const char *tn = fr_st_get_meta(&f, "gmflow.task");
        s = fr_model_config_from_meta(&f, &mc);
        if (s == FR_OK) s = fr_task_get(tn ? tn : "", &t);
        if (s == FR_OK) s = fr_gmflow_net_new_image_cfg(g, be, a.K, &mc, t, cap > 0 ? cap : c.batch);
        if (s == FR_OK) s = fr_gmflow_image_load(g, &f);
    } else {
        if (s == FR_OK) s = fr_gmflow_net_new(g, be, &a, cap > 0 ? cap : c.batch);
        if (s == FR_OK) s = fr_mlp_load(&g->net, &f, path);
    }
    if (s == FR_OK && opt) {
        int64_t os = 0;
        s = fr_adamw_state_init(be, opt, g->params, g->n_params);
        if (s == FR_OK) s = param_list(&f, g, be, opt->m, "optim.m.", 0);
        if (s == FR_OK) s = param_list(&f, g, be, opt->v, "optim.v.", 0);
        if (s == FR_OK) s = meta_i64(&f, path, "optim.step", &os);
        if (s == FR_OK) opt->step = os;
    }
    if (s == FR_OK && ema) {
        s = fr_ema_init(be, ema, g->params, g->n_params);
        if (s == FR_OK) s = param_list(&f, g, be, ema->shadow, "ema.", 0);
    }
    if (s == FR_OK && step) *step = v[5];
    if (s == FR_OK && task) {
        const char *tn = fr_st_get_meta(&f, "gmflow.task");
        snprintf(task, 64, "%s", tn ? tn : "");
    }
    if (s != FR_OK && (g->net.be || g->img)) fr_gmflow_net_free(g);
    fr_st_free(&f);
    return s;
}
