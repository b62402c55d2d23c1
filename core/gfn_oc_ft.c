/* OC-GFN fine-tuning to a downstream reward (flowrl/gfn_oc.h; docs/algorithms/gfn-oc.md §3; spec
 * more.md §8.1). The spec's marginalisation P(a | s) ∝ Σ_y R(y)·F(s, a | y) has, for a conditional
 * with R(x | y) = 1[x = y] (so F(s0 | y) = Z(y) = 1 up to the floor), the terminal distribution of
 * "draw y ∝ R(y) once at s0, then follow P_F(· | s, y)": flowrl's amortised predictor is that draw,
 * q(y) = softmax_y g(enc y), an MLP over the outcome's encoding, trained with trajectory balance on
 * the composed sampler (the outcome choice is its first step, the frozen conditional the rest):
 *   r_b = log Z + log q(y_b) − log R(x_b),  loss = mean_b r_b²,
 * where x_b is the terminal the conditional reached for y_b (with a perfect conditional x_b = y_b
 * and this is TB of the one-step GFlowNet over outcomes). The conditional is not updated. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/digest.h"
#include "flowrl/gfn_oc.h"
#include "flowrl/mlp.h"
#include "flowrl/philox.h"
#include "gfn_train_internal.h"

struct fr_oc_ft {
    fr_backend *be;
    const fr_env *env;
    fr_oc_ft_opts o;
    fr_gfn_trainer *cond;  /* the frozen conditional (o.outcome, DB) */
    int64_t n;             /* outcomes = states */
    double *pty;           /* (n, n) P_T(x | y) of the frozen conditional, exact */
    double *target;        /* (n,) R(x)/Z */
    double log_z_true;
    fr_mlp g;              /* the outcome predictor: (n, obs) → (n, 1) logits, its input every outcome's encoding */
    float *z_dev;          /* backend (2,): log Z, its gradient */
    fr_tensor zv, zg;
    fr_param all[2 * FR_MLP_MAX_LAYERS + 1];
    float *logit_h, *dlogit_h; /* (n,) host */
    int64_t iter, trajectories;
};

fr_status fr_oc_ft_new(fr_oc_ft **out, fr_backend *be, const fr_env *env, const fr_oc_ft_opts *o)
{
    *out = NULL;
    if (o->q_hidden < 1 || o->q_hidden > 8192)
        return fr_fail(FR_ERR_ARG, "gfn-oc-ft: --q-hidden %lld is outside [1, 8192]", (long long)o->q_hidden);
    fr_oc_ft *f = fr_calloc(1, sizeof *f);
    if (!f) return FR_ERR_NOMEM;
    f->be = be;
    f->env = env;
    f->o = *o;
    f->o.pretrained = NULL; /* borrowed only here */
    fr_gfn_opts co = fr_gfn_opts_default();
    co.loss = FR_GFN_DB;
    co.outcome = 1;
    co.batch = o->batch;
    co.hidden = o->hidden;
    co.n_hidden = o->n_hidden;
    co.seed = o->seed;
    co.oc_log_floor = o->oc_log_floor;
    fr_status s = fr_gfn_trainer_new(&f->cond, be, env, &co);
    if (s == FR_OK && o->pretrained && o->pretrained[0]) {
        fr_st_file st;
        fr_st_init(&st);
        s = fr_st_read(&st, o->pretrained);
        if (s == FR_OK) s = fr_gfn_load_policy(f->cond, &st, o->pretrained);
        fr_st_free(&st);
    }
    const int64_t n = env->n_states, I = env->obs_dim;
    f->n = n;
    if (s == FR_OK) {
        f->pty = fr_malloc((size_t)(n * n) * sizeof *f->pty);
        f->target = fr_malloc((size_t)n * sizeof *f->target);
        f->logit_h = fr_malloc((size_t)n * sizeof *f->logit_h);
        f->dlogit_h = fr_malloc((size_t)n * sizeof *f->dlogit_h);
        f->z_dev = fr_dev_floats(be, 2);
        if (!f->pty || !f->target || !f->logit_h || !f->dlogit_h || !f->z_dev) s = FR_ERR_NOMEM;
    }
    if (s == FR_OK) s = fr_gfn_oc_eval(f->cond, NULL, NULL, NULL, f->pty);
    if (s == FR_OK) s = fr_env_target(env, f->target, &f->log_z_true, NULL, NULL);
    const int64_t dim[3] = {I, o->q_hidden, 1};
    if (s == FR_OK) s = fr_mlp_new(&f->g, be, "oc_q", 2, dim, FR_ACT_RELU, n);
    /* the last layer at 0.1 of torch's init: q starts near uniform over the outcomes */
    if (s == FR_OK) s = fr_mlp_init_params(&f->g, o->seed, FR_RNG_OC_FT_OUTCOME, 0.1f);
    if (s == FR_OK) { /* g's input rows: every outcome's encoding, uploaded once */
        float *in = fr_malloc((size_t)(n * I) * sizeof *in);
        int32_t st[GFN_MAX_A];
        if (!in) s = FR_ERR_NOMEM;
        for (int64_t y = 0; y < n && s == FR_OK; y++) {
            env->gfn->state_at(env, y, st);
            env->gfn->encode(env, st, in + y * I);
        }
        if (s == FR_OK) s = fr_h2d(be, fr_mlp_in(&f->g), in, (size_t)(n * I) * sizeof *in);
        free(in);
    }
    const float z[2] = {(float)o->init_log_z, 0.0f};
    if (s == FR_OK) s = fr_h2d(be, f->z_dev, z, sizeof z);
    if (s != FR_OK) {
        fr_oc_ft_free(f);
        return s;
    }
    const int64_t one[1] = {1};
    f->zv = fr_tensor_f32(f->z_dev, 1, one);
    f->zg = fr_tensor_f32(f->z_dev + 1, 1, one);
    *out = f;
    return FR_OK;
}

void fr_oc_ft_free(fr_oc_ft *f)
{
    if (!f) return;
    fr_gfn_trainer_free(f->cond);
    if (f->g.be) fr_mlp_free(&f->g);
    fr_dev_free(f->be, f->z_dev);
    free(f->pty);
    free(f->target);
    free(f->logit_h);
    free(f->dlogit_h);
    free(f);
}

int fr_oc_ft_params(fr_oc_ft *f, fr_param **ps, int *n_net)
{
    for (int p = 0; p < f->g.n_params; p++) f->all[p] = f->g.params[p];
    f->all[f->g.n_params] = (fr_param){"log_z", &f->zv, &f->zg};
    *ps = f->all;
    *n_net = f->g.n_params;
    return f->g.n_params + 1;
}

/* log q (n,) = the masked-free log-softmax of g's logits over every outcome, float64. */
static fr_status log_q(fr_oc_ft *f, double *lq)
{
    fr_mlp_forward(&f->g, f->n);
    FR_TRY(fr_d2h(f->be, f->logit_h, fr_mlp_out(&f->g), (size_t)f->n * sizeof(float)));
    double m = -INFINITY, s = 0.0;
    for (int64_t y = 0; y < f->n; y++) m = (double)f->logit_h[y] > m ? (double)f->logit_h[y] : m;
    for (int64_t y = 0; y < f->n; y++) s += fr_awm_exp((double)f->logit_h[y] - m);
    const double lse = m + fr_awm_log(s);
    for (int64_t y = 0; y < f->n; y++) lq[y] = (double)f->logit_h[y] - lse;
    return FR_OK;
}

double fr_oc_ft_loss(int64_t n, const double *lq, int64_t B, const int64_t *y, const double *logr, double log_z,
                     float *dlogit, double *g_log_z)
{
    double sum = 0.0, gz = 0.0;
    for (int64_t b = 0; b < B; b++) {
        const double r = log_z + lq[y[b]] - logr[b];
        sum += r * r;
        gz += 2.0 * r / (double)B;
    }
    if (dlogit) {
        for (int64_t j = 0; j < n; j++) dlogit[j] = (float)(-gz * fr_awm_exp(lq[j]));
        for (int64_t b = 0; b < B; b++) dlogit[y[b]] = (float)((double)dlogit[y[b]] + 2.0 * (log_z + lq[y[b]] - logr[b]) / (double)B);
    }
    if (g_log_z) *g_log_z = gz;
    return sum / (double)B;
}

fr_status fr_oc_ft_grad(fr_oc_ft *f, double *loss)
{
    fr_gfn_trainer *c = f->cond;
    const fr_env *e = f->env;
    const int64_t n = f->n, B = f->o.batch, T = e->max_steps, D = e->state_dim;
    double *lq = fr_malloc((size_t)n * sizeof *lq), *lr = fr_malloc((size_t)B * sizeof *lr);
    fr_status s = lq && lr ? log_q(f, lq) : FR_ERR_NOMEM;
    for (int64_t b = 0; b < B && s == FR_OK; b++) { /* y_b ~ q by its CDF in index order */
        const double u = ((double)fr_rng_u32(f->o.seed, FR_RNG_OC_FT_OUTCOME, (uint32_t)f->iter, (uint32_t)b, 0, 0) + 0.5) *
                         (1.0 / 4294967296.0);
        double cum = 0.0;
        int64_t y = n - 1;
        for (int64_t j = 0; j < n; j++) {
            cum += fr_awm_exp(lq[j]);
            if (u < cum) {
                y = j;
                break;
            }
        }
        c->goal[b] = y;
        fr_gfn_oc_encode(c, y, c->pref + b * c->ncw); /* trajectory b's conditioning */
    }
    if (s == FR_OK)
        s = fr_gfn_sample_into(c, FR_RNG_OC_FT_ACTION, (uint32_t)f->iter, 0, 0.0, 1.0, 0.0, B, c->st, c->act, c->len, NULL, NULL);
    float z[2];
    if (s == FR_OK) s = fr_d2h(f->be, z, f->z_dev, sizeof z);
    double gz = 0.0, l = 0.0;
    if (s == FR_OK) {
        for (int64_t b = 0; b < B; b++) lr[b] = e->gfn->log_reward(e, c->st + (b * T + c->len[b] - 1) * D);
        l = fr_oc_ft_loss(n, lq, B, c->goal, lr, (double)z[0], f->dlogit_h, &gz);
        s = fr_mlp_zero_grad(&f->g);
    }
    if (s == FR_OK) s = fr_mlp_backward_host(&f->g, n, f->dlogit_h);
    const float gzf = (float)gz;
    if (s == FR_OK) s = fr_h2d(f->be, f->z_dev + 1, &gzf, sizeof gzf);
    if (s == FR_OK) {
        *loss = l;
        f->iter++;
        f->trajectories += B;
    }
    free(lq);
    free(lr);
    return s;
}

fr_status fr_oc_ft_eval(fr_oc_ft *f, double *l1, double *log_z_err, double *log_z, double *q_l1, double *floor_l1)
{
    const int64_t n = f->n;
    double *lq = fr_malloc((size_t)n * sizeof *lq), *p = fr_calloc((size_t)n, sizeof *p), *pf = fr_calloc((size_t)n, sizeof *pf);
    fr_status s = lq && p && pf ? log_q(f, lq) : FR_ERR_NOMEM;
    float z[2];
    if (s == FR_OK) s = fr_d2h(f->be, z, f->z_dev, sizeof z);
    if (s == FR_OK) {
        double ql = 0.0;
        for (int64_t y = 0; y < n; y++) {
            const double qy = fr_awm_exp(lq[y]);
            ql += fabs(qy - f->target[y]);
            for (int64_t x = 0; x < n; x++) {
                p[x] += qy * f->pty[y * n + x];
                pf[x] += f->target[y] * f->pty[y * n + x];
            }
        }
        if (l1) *l1 = fr_env_l1(p, f->target, n);
        if (floor_l1) *floor_l1 = fr_env_l1(pf, f->target, n);
        if (q_l1) *q_l1 = ql;
        if (log_z) *log_z = (double)z[0];
        if (log_z_err) *log_z_err = fabs((double)z[0] - f->log_z_true);
    }
    free(lq);
    free(p);
    free(pf);
    return s;
}

fr_status fr_oc_ft_save(fr_oc_ft *f, fr_st_file *st)
{
    int64_t two = 2;
    fr_tensor c;
    FR_TRY(fr_tensor_alloc(&c, FR_I64, 1, &two));
    ((int64_t *)c.data)[0] = f->iter;
    ((int64_t *)c.data)[1] = f->trajectories;
    return fr_st_add_take(st, "ocft.counters", &c);
}

fr_status fr_oc_ft_load(fr_oc_ft *f, const fr_st_file *st, const char *path)
{
    const fr_tensor *c = fr_st_get(st, "ocft.counters");
    if (!c || c->dtype != FR_I64 || c->ndim != 1 || c->shape[0] != 2)
        return fr_fail(FR_ERR_FORMAT, "%s: ocft.counters missing or not I64 (2,)", path);
    f->iter = ((const int64_t *)c->data)[0];
    f->trajectories = ((const int64_t *)c->data)[1];
    return FR_OK;
}

int64_t fr_oc_ft_trajectories(const fr_oc_ft *f) { return f->trajectories; }

fr_status fr_oc_ft_digest(fr_oc_ft *f, uint64_t *digest, int64_t *n_params)
{
    uint64_t d[2];
    float z[2];
    FR_TRY(fr_mlp_digest(&f->g, &d[0]));
    FR_TRY(fr_d2h(f->be, z, f->z_dev, sizeof z));
    d[1] = fr_digest_bytes(z, sizeof z[0]);
    *digest = fr_digest_bytes(d, sizeof d);
    if (n_params) *n_params = fr_mlp_numel(&f->g) + 1;
    return FR_OK;
}
