/* pi-Flow imitation distillation (flowrl/piflow.h; spec more.md §10.2 "Imitation loss";
 * Lakonik/piFlow@4229541 demo/train_piflow_dit_imagenet_toymodel.py): the student MLP, the
 * teacher, the loss and its gradient, the AdamW loop with its checkpoint, and both samplers. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/audit_train.h"
#include "flowrl/buildinfo.h"
#include "flowrl/cond.h"
#include "flowrl/gm.h"
#include "flowrl/philox.h"
#include "flowrl/piflow.h"
#include "piflow_internal.h"

#define PIFLOW_FORMAT "flowrl.piflow"

/* ---- the student --------------------------------------------------------------------------- */

fr_status fr_piflow_student_new(fr_piflow_student *st, fr_backend *be, int K, int D, int H, int n_hidden, int64_t cap)
{
    memset(st, 0, sizeof *st);
    if (K < 1 || K > FR_PIFLOW_MAX_K || D < 1 || D > FR_PIFLOW_MAX_D || n_hidden < 1 || n_hidden > FR_MLP_MAX_LAYERS - 1)
        return fr_fail(FR_ERR_ARG, "piflow student: K %d, D %d, %d hidden layers: expected 1..%d, 1..%d, 1..%d", K, D,
                       n_hidden, FR_PIFLOW_MAX_K, FR_PIFLOW_MAX_D, FR_MLP_MAX_LAYERS - 1);
    int64_t dim[FR_MLP_MAX_LAYERS + 1];
    dim[0] = D;
    for (int l = 1; l <= n_hidden; l++) dim[l] = H;
    dim[n_hidden + 1] = fr_gm_width(K, D);
    st->K = K;
    st->D = D;
    st->H = H;
    st->n_hidden = n_hidden;
    return fr_mlp_new(&st->net, be, "student", n_hidden + 1, dim, FR_ACT_SILU, cap);
}

void fr_piflow_student_free(fr_piflow_student *st)
{
    if (st->img) fr_piflow_student_free_image(st);
    fr_mlp_free(&st->net);
}

fr_status fr_piflow_student_init(fr_piflow_student *st, uint32_t seed)
{
    if (st->img) return fr_gmflow_net_init(st->img, seed); /* its zero out layer: every row 0 */
    fr_mlp *m = &st->net;
    FR_TRY(fr_mlp_init_params(m, seed, 0, 1.0f));
    /* the logit and log-std outputs start at 0 (GMFlow's zero-initialised heads) */
    const int L = m->L, K = st->K, D = st->D;
    const int64_t W = m->dim[L], Hin = m->dim[L - 1], off = fr_gm_logit_off(K, D);
    float *w = fr_malloc((size_t)(W * Hin) * sizeof *w), *b = fr_malloc((size_t)W * sizeof *b);
    fr_status s = w && b ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) s = fr_d2h(m->be, w, m->vals[2 * (L - 1)].data, (size_t)(W * Hin) * sizeof *w);
    if (s == FR_OK) s = fr_d2h(m->be, b, m->vals[2 * (L - 1) + 1].data, (size_t)W * sizeof *b);
    if (s == FR_OK) {
        for (int64_t r = off; r < W; r++) {
            memset(w + r * Hin, 0, (size_t)Hin * sizeof *w);
            b[r] = 0.0f;
        }
        s = fr_h2d(m->be, m->vals[2 * (L - 1)].data, w, (size_t)(W * Hin) * sizeof *w);
    }
    if (s == FR_OK) s = fr_h2d(m->be, m->vals[2 * (L - 1) + 1].data, b, (size_t)W * sizeof *b);
    free(w);
    free(b);
    return s;
}

/* ---- the loss ------------------------------------------------------------------------------ */

fr_status fr_piflow_imitation_loss(int K, int D, int64_t B, int N, int substeps, const float *rows, const float *x_s,
                                   const double *nt, fr_piflow_teacher_fn teacher, void *user, double *loss,
                                   float *drow)
{
    const int64_t W = fr_gm_width(K, D);
    fr_piflow_gm *g = fr_malloc((size_t)B * sizeof *g);
    float *xt = fr_malloc((size_t)(B * D) * sizeof *xt), *tt = fr_malloc((size_t)B * sizeof *tt);
    float *ut = fr_malloc((size_t)(B * D) * sizeof *ut);
    double *acc = fr_calloc((size_t)(B * W), sizeof *acc), *gr = fr_malloc((size_t)W * sizeof *gr);
    fr_status s = g && xt && tt && ut && acc && gr ? FR_OK : FR_ERR_NOMEM;
    for (int64_t b = 0; b < B && s == FR_OK; b++) s = fr_piflow_gm_from_row(&g[b], K, D, rows + b * W, x_s + b * D, 1.0);
    const double scale = 1.0 / ((double)N * (double)B * (double)D); /* mean over (B, D), then over N */
    double L = 0.0;
    for (int n = 0; n < N && s == FR_OK; n++) {
        for (int64_t b = 0; b < B; b++) {
            double x[FR_PIFLOW_MAX_D];
            for (int c = 0; c < D; c++) x[c] = g[b].x_s[c];
            fr_piflow_rollout(&g[b], 1.0, nt[b * N + n], substeps, x); /* the detached policy */
            for (int c = 0; c < D; c++) xt[b * D + c] = (float)x[c];
            tt[b] = (float)nt[b * N + n];
        }
        s = teacher(user, B, xt, tt, ut);
        for (int64_t b = 0; b < B && s == FR_OK; b++) {
            double x[FR_PIFLOW_MAX_D], pi[FR_PIFLOW_MAX_D], du[FR_PIFLOW_MAX_D];
            for (int c = 0; c < D; c++) x[c] = (double)xt[b * D + c];
            const double t = (double)tt[b];
            fr_piflow_pi(&g[b], x, t, pi);
            for (int c = 0; c < D; c++) {
                const double r = pi[c] - (double)ut[b * D + c];
                L += r * r * scale;
                du[c] = 2.0 * r * scale;
            }
            fr_piflow_pi_grad(&g[b], x, t, du, gr);
            for (int64_t i = 0; i < W; i++) acc[b * W + i] += gr[i];
        }
    }
    if (s == FR_OK) {
        *loss = L;
        for (int64_t i = 0; i < B * W; i++) drow[i] = (float)acc[i];
    }
    void *h[] = {g, xt, tt, ut, acc, gr};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    return s;
}

/* ---- the teacher --------------------------------------------------------------------------- */

fr_status fr_piflow_teacher_load(fr_piflow_teacher *t, fr_backend *be, const char *path, int64_t cap)
{
    memset(t, 0, sizeof *t);
    FR_TRY(fr_infer_ckpt_load(&t->ck, be, path, 1, NULL));
    fr_status s = FR_OK;
    const fr_model_config *cfg = &t->ck.model.cfg;
    if (cfg->pred != FR_PRED_VELOCITY)
        s = fr_fail(FR_ERR_ARG, "%s: the teacher must be a velocity model (flowrl pretrain without --pred epsilon)", path);
    if (s == FR_OK && cfg->D > FR_PIFLOW_MAX_D)
        s = fr_fail(FR_ERR_ARG, "%s: D = %lld, pi-Flow's host policy takes D <= %d", path, (long long)cfg->D, FR_PIFLOW_MAX_D);
    if (s == FR_OK) s = fr_model_ws_alloc(&t->ws, &t->ck.model, cap, 0);
    if (s != FR_OK) {
        fr_infer_ckpt_free(&t->ck);
        return s;
    }
    t->be = be;
    t->cap = cap;
    t->D = cfg->D;
    t->dx = fr_dev_floats(be, cap * cfg->D);
    t->dt = fr_dev_floats(be, cap);
    t->du = fr_dev_floats(be, cap * cfg->D);
    t->dc = fr_dev_i32(be, cap * cfg->n_slots);
    t->c_h = fr_calloc((size_t)(cap * cfg->n_slots), sizeof *t->c_h); /* id 0 in every slot */
    s = t->dx && t->dt && t->du && t->dc && t->c_h ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) s = fr_h2d(be, t->dc, t->c_h, (size_t)(cap * cfg->n_slots) * sizeof *t->c_h);
    if (s != FR_OK) fr_piflow_teacher_free(t);
    return s;
}

void fr_piflow_teacher_free(fr_piflow_teacher *t)
{
    if (!t->be) return;
    fr_dev_free(t->be, t->dx);
    fr_dev_free(t->be, t->dt);
    fr_dev_free(t->be, t->du);
    fr_dev_free(t->be, t->dc);
    free(t->c_h);
    fr_model_ws_free(&t->ws);
    fr_infer_ckpt_free(&t->ck);
    memset(t, 0, sizeof *t);
}

fr_status fr_piflow_teacher_set_prompts(fr_piflow_teacher *t, int64_t B, const int *prompts)
{
    if (B > t->cap) return fr_fail(FR_ERR_ARG, "piflow teacher: %lld prompts, sized for %lld", (long long)B, (long long)t->cap);
    FR_TRY(fr_cond_ids(t->ck.task, B, prompts, t->c_h));
    return fr_h2d(t->be, t->dc, t->c_h, (size_t)(B * t->ck.model.cfg.n_slots) * sizeof *t->c_h);
}

fr_status fr_piflow_teacher_velocity(void *teacher, int64_t B, const float *x, const float *t, float *u)
{
    fr_piflow_teacher *T = teacher;
    if (B > T->cap) return fr_fail(FR_ERR_ARG, "piflow teacher: %lld rows, sized for %lld", (long long)B, (long long)T->cap);
    float *tm = fr_malloc((size_t)B * sizeof *tm);
    if (!tm) return FR_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++) tm[b] = 1000.0f * t[b]; /* model time 1000 σ (flowrl/model.h) */
    fr_status s = fr_h2d(T->be, T->dx, x, (size_t)(B * T->D) * sizeof *x);
    if (s == FR_OK) s = fr_h2d(T->be, T->dt, tm, (size_t)B * sizeof *tm);
    if (s == FR_OK) s = fr_model_forward(&T->ck.model, T->be, &T->ws, B, T->dx, T->dt, T->dc, T->du);
    if (s == FR_OK) s = fr_d2h(T->be, u, T->du, (size_t)(B * T->D) * sizeof *u);
    free(tm);
    return s;
}

fr_status fr_piflow_teacher_sample(fr_piflow_teacher *t, int64_t n, int steps, uint32_t seed, float *out)
{
    return fr_piflow_teacher_sample_c(t, n, steps, seed, NULL, out);
}

fr_status fr_piflow_teacher_sample_c(fr_piflow_teacher *t, int64_t n, int steps, uint32_t seed, const int *prompts,
                                     float *out)
{
    const int64_t D = t->D;
    float *ts = fr_malloc((size_t)t->cap * sizeof *ts), *u = fr_malloc((size_t)(t->cap * D) * sizeof *u);
    fr_status s = ts && u ? FR_OK : FR_ERR_NOMEM;
    for (int64_t i = 0; i < n * D; i++)
        out[i] = fr_rng_normal(seed, FR_RNG_PIFLOW_SAMPLE, (uint32_t)(i / D), 1, 0, (uint32_t)(i % D));
    for (int64_t r0 = 0; r0 < n && s == FR_OK; r0 += t->cap) {
        const int64_t B = n - r0 < t->cap ? n - r0 : t->cap;
        float *x = out + r0 * D;
        if (prompts && s == FR_OK) s = fr_piflow_teacher_set_prompts(t, B, prompts + r0);
        for (int k = 0; k < steps && s == FR_OK; k++) {
            const double sg = 1.0 - (double)k / steps, sn = 1.0 - (double)(k + 1) / steps;
            const float dt = (float)(sn - sg);
            for (int64_t b = 0; b < B; b++) ts[b] = (float)sg;
            s = fr_piflow_teacher_velocity(t, B, x, ts, u);
            for (int64_t i = 0; i < B * D && s == FR_OK; i++) x[i] = x[i] + dt * u[i];
        }
    }
    free(ts);
    free(u);
    return s;
}

/* ---- sampling the student ------------------------------------------------------------------ */

fr_status fr_piflow_student_sample(fr_piflow_student *st, int64_t n, int substeps, uint32_t seed, float *out)
{
    const int D = st->D, K = st->K;
    const int64_t W = fr_gm_width(K, D), cap = st->img ? st->img->cap : st->net.cap;
    float *rows = fr_malloc((size_t)(cap * W) * sizeof *rows);
    fr_piflow_gm *g = fr_malloc(sizeof *g); /* tens of kB at image D: not on the stack */
    double *x = fr_malloc(sizeof(double) * (size_t)D);
    fr_status s = rows && g && x ? FR_OK : FR_ERR_NOMEM;
    for (int64_t i = 0; i < n * D; i++)
        out[i] = fr_rng_normal(seed, FR_RNG_PIFLOW_SAMPLE, (uint32_t)(i / D), 0, 0, (uint32_t)(i % D));
    for (int64_t r0 = 0; r0 < n && s == FR_OK; r0 += cap) {
        const int64_t B = n - r0 < cap ? n - r0 : cap;
        s = fr_piflow_student_rows(st, B, out + r0 * D, r0, rows); /* the one network call */
        for (int64_t b = 0; b < B && s == FR_OK; b++) {
            s = fr_piflow_gm_from_row(g, K, D, rows + b * W, out + (r0 + b) * D, 1.0);
            if (s != FR_OK) break;
            for (int c = 0; c < D; c++) x[c] = g->x_s[c];
            fr_piflow_rollout(g, 1.0, 0.0, substeps, x);
            for (int c = 0; c < D; c++) out[(r0 + b) * D + c] = (float)x[c];
        }
    }
    free(rows), free(g), free(x);
    return s;
}

/* ---- the checkpoint ------------------------------------------------------------------------ */

typedef struct {
    const char *key;
    char val[64];
} meta_kv;

/* The keys a resumed run must match, with this run's values. */
static int run_meta(const fr_piflow_student *st, const fr_piflow_train_opts *o, meta_kv *kv)
{
    int n = 0;
#define KV(k, ...) (kv[n].key = (k), snprintf(kv[n].val, sizeof kv[n].val, __VA_ARGS__), n++)
    KV("piflow.K", "%d", st->K);
    KV("piflow.D", "%d", st->D);
    KV("piflow.hidden", "%d", st->H);
    KV("piflow.n_hidden", "%d", st->n_hidden);
    KV("piflow.batch", "%lld", (long long)o->batch);
    KV("piflow.n_inter", "%d", o->n_inter);
    KV("piflow.substeps", "%d", o->substeps);
    KV("piflow.lr", "%.17g", o->lr);
    KV("piflow.beta1", "%.17g", o->beta1);
    KV("piflow.beta2", "%.17g", o->beta2);
    KV("piflow.weight_decay", "%.17g", o->weight_decay);
    KV("piflow.seed", "%u", (unsigned)o->seed);
#undef KV
    return n;
}

/* The AdamW moments as "optim.m.<name>" / "optim.v.<name>" into f (save) or from it. */
static fr_status optim_tensors(const fr_piflow_student *st, fr_adamw_state *adam, fr_st_file *f, int save)
{
    char nm[96];
    int np;
    fr_piflow_student_params((fr_piflow_student *)st, &np);
    for (int p = 0; p < np; p++)
        for (int mv = 0; mv < 2; mv++) {
            snprintf(nm, sizeof nm, "optim.%s.%s", mv ? "v" : "m", fr_piflow_student_name(st, p));
            fr_tensor *t = mv ? &adam->v[p] : &adam->m[p];
            FR_TRY(save ? fr_dev_tensor_to_st(adam->be, f, nm, t) : fr_dev_tensor_from_st(adam->be, f, nm, t));
        }
    return FR_OK;
}

static fr_status save_ckpt(fr_piflow_student *st, const fr_adamw_state *adam, const fr_piflow_train_opts *o,
                           int64_t step, const char *path)
{
    fr_st_file f;
    fr_st_init(&f);
    f.digests = 1;
    meta_kv kv[16];
    const int nk = run_meta(st, o, kv);
    char buf[32];
    fr_status s = fr_piflow_student_save_net(st, &f);
    if (s == FR_OK) s = optim_tensors(st, (fr_adamw_state *)adam, &f, 1);
    if (s == FR_OK) s = fr_st_set_meta(&f, "format", PIFLOW_FORMAT);
    if (s == FR_OK) s = fr_st_set_meta(&f, "flowrl.version", fr_version());
    for (int i = 0; i < nk && s == FR_OK; i++) s = fr_st_set_meta(&f, kv[i].key, kv[i].val);
    snprintf(buf, sizeof buf, "%" PRId64, step);
    if (s == FR_OK) s = fr_st_set_meta(&f, "piflow.step", buf);
    snprintf(buf, sizeof buf, "%" PRId64, adam->step);
    if (s == FR_OK) s = fr_st_set_meta(&f, "optim.step", buf);
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    return s;
}

static fr_status check_format(const fr_st_file *f, const char *path)
{
    const char *fmt = fr_st_get_meta(f, "format");
    if (!fmt || strcmp(fmt, PIFLOW_FORMAT) != 0)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'format' is '%s', expected '%s' (a flowrl piflow train checkpoint)",
                       path, fmt ? fmt : "(absent)", PIFLOW_FORMAT);
    return FR_OK;
}

fr_status fr_piflow_student_load(fr_piflow_student *st, fr_backend *be, const char *path, int64_t cap)
{
    memset(st, 0, sizeof *st);
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path));
    int64_t K = 0, D = 0, H = 0, L = 0;
    fr_status s = check_format(&f, path);
    if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "piflow.K", 1, FR_PIFLOW_MAX_K, &K);
    if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "piflow.D", 1, FR_PIFLOW_MAX_D, &D);
    if (s == FR_OK && fr_st_get_meta(&f, "piflow.preset")) { /* an image student */
        s = fr_piflow_student_new_image_st(st, be, (int)K, &f, path, cap);
    } else {
        if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "piflow.hidden", 1, 1 << 16, &H);
        if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "piflow.n_hidden", 1, FR_MLP_MAX_LAYERS - 1, &L);
        if (s == FR_OK) s = fr_piflow_student_new(st, be, (int)K, (int)D, (int)H, (int)L, cap);
    }
    if (s == FR_OK) s = fr_piflow_student_load_net(st, &f, path);
    if (s != FR_OK) fr_piflow_student_free(st);
    fr_st_free(&f);
    return s;
}

/* Continues the run of path: the same options (names the first that differs), the parameters,
 * the AdamW moments and the step. */
static fr_status resume_ckpt(fr_piflow_student *st, fr_adamw_state *adam, const fr_piflow_train_opts *o,
                             const char *path, int64_t *step)
{
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path));
    meta_kv kv[16];
    const int nk = run_meta(st, o, kv);
    fr_status s = check_format(&f, path);
    for (int i = 0; i < nk && s == FR_OK; i++) {
        const char *have = fr_st_get_meta(&f, kv[i].key);
        if (!have || strcmp(have, kv[i].val) != 0)
            s = fr_fail(FR_ERR_MISMATCH, "%s: metadata '%s' is '%s', this run has '%s' (resume with the same options)",
                        path, kv[i].key, have ? have : "(absent)", kv[i].val);
    }
    if (s == FR_OK) s = fr_piflow_student_load_net(st, &f, path);
    if (s == FR_OK) s = optim_tensors(st, adam, &f, 0);
    if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "piflow.step", 0, o->steps, step);
    if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "optim.step", 0, INT64_MAX, &adam->step);
    fr_st_free(&f);
    return s;
}

/* ---- the loop ------------------------------------------------------------------------------ */

fr_piflow_train_opts fr_piflow_train_opts_default(void)
{
    fr_piflow_train_opts o = {.steps = 2000, .batch = 256, .n_inter = 2, .substeps = FR_PIFLOW_SUBSTEPS, .lr = 1e-3,
                              .beta1 = 0.9, .beta2 = 0.95, .weight_decay = 0.0, .seed = 0, .ckpt_every = 0};
    return o;
}

/* The student's checkpoint name of parameter p, for its audit records. */
static const char *student_name(const void *st, int p)
{
    return fr_piflow_student_name(st, p);
}

fr_status fr_piflow_train(fr_piflow_student *st, fr_piflow_teacher *t, const fr_piflow_train_opts *o,
                          const char *out_path, const char *resume_path,
                          fr_piflow_progress progress, void *user)
{
    const int K = st->K, D = st->D, N = o->n_inter;
    const int64_t B = o->batch, W = fr_gm_width(K, D);
    if (t->D != D) return fr_fail(FR_ERR_ARG, "piflow: the teacher's D is %lld, the student's %d", (long long)t->D, D);
    const int64_t scap = st->img ? st->img->cap : st->net.cap;
    if (B > scap || B > t->cap || N < 1)
        return fr_fail(FR_ERR_ARG, "piflow: batch %lld (rows %lld and %lld), %d intermediate times", (long long)B,
                       (long long)scap, (long long)t->cap, N);
    int np;
    fr_param *params = fr_piflow_student_params(st, &np);
    fr_adamw_state adam;
    FR_TRY(fr_adamw_state_init(t->be, &adam, params, np));
    fr_adamw_cfg cfg = fr_adamw_cfg_default();
    cfg.beta1 = o->beta1;
    cfg.beta2 = o->beta2;
    cfg.weight_decay = o->weight_decay;
    int64_t step = 0;
    fr_status s = resume_path ? resume_ckpt(st, &adam, o, resume_path, &step) : fr_piflow_student_init(st, o->seed);
    float *xs = fr_malloc((size_t)(B * D) * sizeof *xs), *rows = fr_malloc((size_t)(B * W) * sizeof *rows);
    float *drow = fr_malloc((size_t)(B * W) * sizeof *drow);
    double *nt = fr_malloc((size_t)(B * N) * sizeof *nt);
    int *pr = fr_malloc((size_t)B * sizeof *pr);
    if (s == FR_OK && !(xs && rows && drow && nt && pr)) s = FR_ERR_NOMEM;
    for (; step < o->steps && s == FR_OK; step++) {
        const uint32_t k = (uint32_t)step;
        for (int64_t b = 0; b < B; b++) {
            for (int c = 0; c < D; c++) xs[b * D + c] = fr_rng_normal(o->seed, FR_RNG_PIFLOW_NOISE, k, (uint32_t)b, 0, (uint32_t)c);
            for (int n = 0; n < N; n++) {
                /* torch.rand(N).clamp(min=EPS) */
                const double u = (double)fr_rng_uniform(o->seed, FR_RNG_PIFLOW_TIME, k, (uint32_t)b, (uint32_t)n, 0);
                nt[b * N + n] = u < FR_PIFLOW_T_MIN ? FR_PIFLOW_T_MIN : u;
            }
        }
        double loss = 0.0;
        s = fr_piflow_student_rows(st, B, xs, (int64_t)step * B, rows);
        if (s == FR_OK && st->img) { /* the teacher sees each sample's prompt (the 2-D teacher: prompt 0) */
            for (int64_t b = 0; b < B; b++) pr[b] = fr_piflow_prompt(st, (int64_t)step * B + b);
            s = fr_piflow_teacher_set_prompts(t, B, pr);
        }
        if (s == FR_OK)
            s = fr_piflow_imitation_loss(K, D, B, N, o->substeps, rows, xs, nt, fr_piflow_teacher_velocity, t, &loss, drow);
        if (s == FR_OK && !isfinite(loss))
            s = fr_fail(FR_ERR_NUMERIC, "piflow: step %lld: the loss is %g", (long long)step + 1, loss);
        if (s == FR_OK) s = fr_piflow_student_backward(st, B, drow);
        if (s == FR_OK) s = fr_adamw_step(t->be, &adam, params, np, &cfg, o->lr);
        if (s == FR_OK && o->audit) {
            const fr_audit_params v = {t->be, params, np, student_name, st};
            s = fr_audit_train_step_params(o->audit, step + 1, loss, &v, &adam, NULL);
        }
        uint64_t dg = 0;
        if (s == FR_OK && progress) s = fr_piflow_student_digest(st, &dg);
        if (s == FR_OK && progress) progress(user, step + 1, loss, dg);
        if (s == FR_OK && o->ckpt_every > 0 && (step + 1) % o->ckpt_every == 0 && step + 1 < o->steps)
            s = save_ckpt(st, &adam, o, step + 1, out_path);
    }
    if (s == FR_OK) s = save_ckpt(st, &adam, o, step, out_path);
    fr_adamw_state_free(&adam);
    free(xs);
    free(rows);
    free(drow);
    free(nt);
    free(pr);
    return s;
}
