/* The Box GFlowNet trainer (flowrl/gfn_box.h; docs/algorithms/gfn-box.md; torchgfn 1.2.1
 * tutorials/examples/train_box.py): the P_F network (BoxPFNeuralNet: an MLP of the state to 1 + 3K
 * raw outputs) with the s0 parameters (its PFs0, 5·K0 raw values, zeros at the start), the P_B
 * network (BoxPBNeuralNet, 3K outputs) or the uniform P_B, log Z for TB, the state flow for DB and
 * SubTB (BoxStateFlowModule: an MLP to log F(s), its s0 value a scalar), trajectories sampled in
 * lock-step, the loss and its gradient, and the evaluation.
 *
 * The networks run through the op table (fr_mlp): only the visited states (2 floats a row) cross to
 * the backend and their outputs (1 + 3K, 3K a row) come back; the distributions, the draws, the
 * loss and the outputs' gradient are float64 host code (core/gfn_box_dist.c), so every backend
 * gives the bits of ref. The s0 parameters and log Z (5·K0 + 1 floats) cross to the host once per
 * iteration and their gradients back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/digest.h"
#include "flowrl/gfn_box.h"
#include "flowrl/gfn_train.h"
#include "flowrl/mlp.h"
#include "flowrl/philox.h"

struct fr_box_trainer {
    fr_backend *be;
    const fr_env *env;
    fr_box_opts bo;
    fr_box_train_opts o;
    int64_t B, T, cap, Of, Ob, S0; /* outputs of P_F (1 + 3K) and P_B (3K), s0 parameters (5 K0) */
    fr_mlp pf, pb, lf;  /* lf: the state flow (DB, SubTB) */
    int has_pb, has_f;
    float *f0_v, *f0_g;   /* backend (1,), (1,): log F(s0) (DB, SubTB) */
    fr_tensor f0_tv, f0_tg;
    float *s0_v, *s0_g, *z_v, *z_g;   /* backend (S0,), (S0,), (1,), (1,) */
    fr_tensor s0_tv, s0_tg, z_tv, z_tg;
    fr_param params[4 * FR_MLP_MAX_LAYERS + 2];
    int n_params, n_net;
    /* host */
    double *st;      /* (B, T + 1, 2) states of the current batch */
    double *act;     /* (B, T, 2) actions (the last of each trajectory: exit) */
    int32_t *len;    /* (B,) actions, exit included */
    double *logr;    /* (B,) */
    float *in_h, *out_h, *pbo_h, *dout_h; /* (cap, 2), (cap, Of), (cap, Ob), (cap, max(Of, Ob)) */
    double *gout, *gpb, *gs0, *w;        /* (cap, Of), (cap, Ob), (B, S0), (B,) */
    int32_t *row_b;  /* (cap,) the trajectory of each row */
    double *wf, *wb; /* (cap,) each row's weight of its P_F / P_B gradient; (B,) w: of the s0 step */
    /* DB, SubTB: per-step log-probs, flows and their gradients (B, T) (flowrl/gfn.h's layout) */
    double *lpf, *lpb, *lfl, *gpf_s, *gpb_s, *gfl_s;
    float *fo_h;     /* (cap,) the flow network's outputs */
    int64_t iter;
};

fr_box_train_opts fr_box_train_opts_default(void)
{
    fr_box_train_opts o = {.loss = FR_BOX_TB, .batch = 128, .hidden = 128, .n_hidden = 4,
                           .pol = {.K0 = 4, .K = 2, .cmin = 0.1, .cmax = 5.1}, .seed = 1, .lambda = 0.9,
                           .weighting = FR_SUBTB_GEOMETRIC_WITHIN};
    return o;
}

static fr_status check_opts(const fr_env *env, const fr_box_train_opts *o)
{
    if (!fr_box_of(env)) return fr_fail(FR_ERR_ARG, "gfn-box: --env %s is not the box environment", env->desc);
    if ((unsigned)o->loss > FR_BOX_SUBTB) return fr_fail(FR_ERR_ARG, "gfn-box: loss %d", (int)o->loss);
    if (o->loss == FR_BOX_SUBTB && (!(o->lambda > 0.0) || !isfinite(o->lambda) || !fr_gfn_weighting_name(o->weighting)))
        return fr_fail(FR_ERR_ARG, "gfn-box: subtb lambda %g (expected > 0), weighting %d", o->lambda, (int)o->weighting);
    if (o->batch < 1 || o->batch > (1 << 20)) return fr_fail(FR_ERR_ARG, "gfn-box: --batch-size %lld is outside [1, 2^20]", (long long)o->batch);
    if (o->hidden < 1 || o->hidden > 8192) return fr_fail(FR_ERR_ARG, "gfn-box: --hidden-dim %lld is outside [1, 8192]", (long long)o->hidden);
    if (o->n_hidden < 1 || o->n_hidden >= FR_MLP_MAX_LAYERS)
        return fr_fail(FR_ERR_ARG, "gfn-box: --n-hidden %lld is outside [1, %d]", (long long)o->n_hidden, FR_MLP_MAX_LAYERS - 1);
    if (o->pol.K0 < 1 || o->pol.K0 > 64 || o->pol.K < 1 || o->pol.K > 64)
        return fr_fail(FR_ERR_ARG, "gfn-box: --n-components-s0 %d / --n-components %d outside [1, 64]", o->pol.K0, o->pol.K);
    if (!(o->pol.cmin > 0.0 && o->pol.cmax > o->pol.cmin))
        return fr_fail(FR_ERR_ARG, "gfn-box: concentrations [%g, %g]: need 0 < min < max", o->pol.cmin, o->pol.cmax);
    return FR_OK;
}

static int has_log_z(const fr_box_trainer *t) { return t->o.loss == FR_BOX_TB; }

fr_status fr_box_trainer_new(fr_box_trainer **out, fr_backend *be, const fr_env *env, const fr_box_train_opts *o)
{
    *out = NULL;
    FR_TRY(check_opts(env, o));
    fr_box_trainer *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    t->be = be;
    t->env = env;
    t->bo = *fr_box_of(env);
    t->o = *o;
    t->B = o->batch;
    t->T = env->max_steps;
    t->cap = t->B * t->T;
    t->Of = 1 + 3 * o->pol.K;
    t->Ob = 3 * o->pol.K;
    t->S0 = 5 * o->pol.K0;
    t->has_pb = !o->uniform_pb;
    t->has_f = o->loss == FR_BOX_DB || o->loss == FR_BOX_SUBTB;
    int64_t dim[FR_MLP_MAX_LAYERS + 1];
    const int L = (int)o->n_hidden + 1;
    dim[0] = 2;
    for (int l = 1; l < L; l++) dim[l] = o->hidden;
    dim[L] = t->Of;
    /* torchgfn's NeuralNet uses ELU; the op table has ReLU (docs/algorithms/gfn-box.md §6) */
    fr_status s = fr_mlp_new(&t->pf, be, "pf", L, dim, FR_ACT_RELU, t->cap);
    if (s == FR_OK) s = fr_mlp_init_params(&t->pf, o->seed, 1, 1.0f);
    dim[L] = t->Ob;
    if (s == FR_OK && t->has_pb) s = fr_mlp_new(&t->pb, be, "pb", L, dim, FR_ACT_RELU, t->cap);
    if (s == FR_OK && t->has_pb) s = fr_mlp_init_params(&t->pb, o->seed, 2, 1.0f);
    dim[L] = 1;
    if (s == FR_OK && t->has_f) s = fr_mlp_new(&t->lf, be, "logf", L, dim, FR_ACT_RELU, t->cap);
    if (s == FR_OK && t->has_f) s = fr_mlp_init_params(&t->lf, o->seed, 3, 1.0f);
    if (s == FR_OK && t->has_f) {
        t->f0_v = fr_dev_floats(be, 1);
        t->f0_g = fr_dev_floats(be, 1);
        if (!t->f0_v || !t->f0_g) s = FR_ERR_NOMEM;
        if (s == FR_OK) s = fr_dev_zero(be, t->f0_v, sizeof(float)); /* logZ_value: torch.tensor(0.0) */
    }
    if (s == FR_OK) {
        t->s0_v = fr_dev_floats(be, t->S0);
        t->s0_g = fr_dev_floats(be, t->S0);
        t->z_v = fr_dev_floats(be, 1);
        t->z_g = fr_dev_floats(be, 1);
        if (!t->s0_v || !t->s0_g || !t->z_v || !t->z_g) s = FR_ERR_NOMEM;
    }
    if (s == FR_OK) s = fr_dev_zero(be, t->s0_v, (size_t)t->S0 * sizeof(float)); /* PFs0: zeros */
    if (s == FR_OK) {
        const float z = (float)o->init_log_z;
        s = fr_h2d(be, t->z_v, &z, sizeof z);
    }
    if (s == FR_OK) {
        int64_t n0[1] = {t->S0}, one[1] = {1};
        t->s0_tv = fr_tensor_f32(t->s0_v, 1, n0);
        t->s0_tg = fr_tensor_f32(t->s0_g, 1, n0);
        t->z_tv = fr_tensor_f32(t->z_v, 1, one);
        t->z_tg = fr_tensor_f32(t->z_g, 1, one);
        int n = 0;
        for (int p = 0; p < t->pf.n_params; p++) t->params[n++] = t->pf.params[p];
        t->params[n++] = (fr_param){"pf_s0", &t->s0_tv, &t->s0_tg};
        for (int p = 0; t->has_pb && p < t->pb.n_params; p++) t->params[n++] = t->pb.params[p];
        t->n_net = n;
        if (has_log_z(t)) t->params[n++] = (fr_param){"log_z", &t->z_tv, &t->z_tg};
        if (t->has_f) {
            for (int p = 0; p < t->lf.n_params; p++) t->params[n++] = t->lf.params[p];
            t->f0_tv = fr_tensor_f32(t->f0_v, 1, one);
            t->f0_tg = fr_tensor_f32(t->f0_g, 1, one);
            t->params[n++] = (fr_param){"log_f_s0", &t->f0_tv, &t->f0_tg};
        }
        t->n_params = n;
        const int64_t B = t->B, T = t->T, cap = t->cap, wd = t->Of > t->Ob ? t->Of : t->Ob;
        t->st = fr_calloc((size_t)(B * (T + 1) * 2), sizeof(double));
        t->act = fr_calloc((size_t)(B * T * 2), sizeof(double));
        t->len = fr_calloc((size_t)B, sizeof(int32_t));
        t->logr = fr_calloc((size_t)B, sizeof(double));
        t->in_h = fr_malloc((size_t)(cap * 2) * sizeof(float));
        t->out_h = fr_malloc((size_t)(cap * t->Of) * sizeof(float));
        t->pbo_h = fr_malloc((size_t)(cap * t->Ob) * sizeof(float));
        t->dout_h = fr_malloc((size_t)(cap * wd) * sizeof(float));
        t->gout = fr_malloc((size_t)(cap * t->Of) * sizeof(double));
        t->gpb = fr_malloc((size_t)(cap * t->Ob) * sizeof(double));
        t->gs0 = fr_malloc((size_t)(B * t->S0) * sizeof(double));
        t->w = fr_malloc((size_t)B * sizeof(double));
        t->row_b = fr_malloc((size_t)cap * sizeof(int32_t));
        t->wf = fr_malloc((size_t)cap * sizeof(double));
        t->wb = fr_malloc((size_t)cap * sizeof(double));
        if (!t->st || !t->act || !t->len || !t->logr || !t->in_h || !t->out_h || !t->pbo_h || !t->dout_h || !t->gout ||
            !t->gpb || !t->gs0 || !t->w || !t->row_b || !t->wf || !t->wb)
            s = FR_ERR_NOMEM;
        if (s == FR_OK && t->has_f) {
            double **d[] = {&t->lpf, &t->lpb, &t->lfl, &t->gpf_s, &t->gpb_s, &t->gfl_s};
            for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
                if (!(*d[i] = fr_calloc((size_t)(B * T), sizeof(double)))) s = FR_ERR_NOMEM;
            if (!(t->fo_h = fr_malloc((size_t)cap * sizeof(float)))) s = FR_ERR_NOMEM;
        }
    }
    if (s != FR_OK) {
        fr_box_trainer_free(t);
        return s;
    }
    *out = t;
    return FR_OK;
}

void fr_box_trainer_free(fr_box_trainer *t)
{
    if (!t) return;
    fr_mlp_free(&t->pf);
    fr_mlp_free(&t->pb);
    fr_mlp_free(&t->lf);
    void *dev[] = {t->s0_v, t->s0_g, t->z_v, t->z_g, t->f0_v, t->f0_g};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(t->be, dev[i]);
    void *host[] = {t->st,   t->act, t->len, t->logr, t->in_h, t->out_h, t->pbo_h, t->dout_h, t->gout,  t->gpb,  t->gs0,
                    t->w,    t->row_b, t->wf, t->wb,  t->lpf,  t->lpb,   t->lfl,   t->gpf_s,  t->gpb_s, t->gfl_s, t->fo_h};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
    free(t);
}

int fr_box_trainer_params(fr_box_trainer *t, fr_param **ps, int *n_net)
{
    *ps = t->params;
    *n_net = t->n_net;
    return t->n_params;
}

#define ST(t, b, k) ((t)->st + ((b) * ((t)->T + 1) + (k)) * 2)
#define ACT(t, b, k) ((t)->act + ((b) * (t)->T + (k)) * 2)

/* n trajectories (n ≤ B) of the current policy in lock-step into st, act, len, logr; trajectory
 * b's draws from Philox (seed, purpose, c0, j0 + b, step). */
static fr_status sample_batch(fr_box_trainer *t, int64_t n, uint32_t purpose, uint32_t c0, uint32_t j0)
{
    const fr_box_opts *bo = &t->bo;
    float s0f[5 * 64];
    double s0p[5 * 64], out[1 + 3 * 64];
    FR_TRY(fr_d2h(t->be, s0f, t->s0_v, (size_t)t->S0 * sizeof(float)));
    for (int64_t i = 0; i < t->S0; i++) s0p[i] = (double)s0f[i];
    int32_t *live = t->row_b;
    for (int64_t b = 0; b < n; b++) {
        int ex;
        ST(t, b, 0)[0] = ST(t, b, 0)[1] = 0.0;
        FR_TRY(fr_box_sample_pf(bo, &t->o.pol, ST(t, b, 0), s0p, t->o.seed, purpose, c0, j0 + (uint32_t)b, 0, ACT(t, b, 0), &ex));
        ST(t, b, 1)[0] = ACT(t, b, 0)[0];
        ST(t, b, 1)[1] = ACT(t, b, 0)[1];
        t->len[b] = 0;
    }
    for (int64_t k = 1;; k++) {
        int64_t R = 0;
        for (int64_t b = 0; b < n; b++)
            if (t->len[b] == 0) {
                live[R] = (int32_t)b;
                t->in_h[2 * R] = (float)ST(t, b, k)[0];
                t->in_h[2 * R + 1] = (float)ST(t, b, k)[1];
                R++;
            }
        if (R == 0) break;
        if (k >= t->T) return fr_fail(FR_ERR_NUMERIC, "gfn-box: a trajectory longer than %lld steps", (long long)t->T);
        FR_TRY(fr_mlp_forward_host(&t->pf, R, t->in_h, t->out_h));
        for (int64_t r = 0; r < R; r++) {
            const int64_t b = live[r];
            int ex;
            for (int64_t i = 0; i < t->Of; i++) out[i] = (double)t->out_h[r * t->Of + i];
            FR_TRY(fr_box_sample_pf(bo, &t->o.pol, ST(t, b, k), out, t->o.seed, purpose, c0, j0 + (uint32_t)b, (uint32_t)k,
                                    ACT(t, b, k), &ex));
            if (ex) {
                t->len[b] = (int32_t)(k + 1);
                t->logr[b] = fr_awm_log((double)fr_box_reward(bo, ST(t, b, k)));
            } else {
                ST(t, b, k + 1)[0] = ST(t, b, k)[0] + ACT(t, b, k)[0];
                ST(t, b, k + 1)[1] = ST(t, b, k)[1] + ACT(t, b, k)[1];
            }
        }
    }
    return FR_OK;
}

/* DB / SubTB (fr_gfn_loss on the per-step log-probs of t->lpf, t->lpb): the state flow of the R rows
 * (log F(s0) the scalar), the loss into *loss, each row's P_F / P_B weight (wf, wb) and each s0
 * step's (w) from the loss's gradient, and the flow's gradient through its network and into f0_g. */
static fr_status flow_loss(fr_box_trainer *t, int64_t R, double *loss)
{
    const int64_t B = t->B, T = t->T;
    float f0;
    FR_TRY(fr_mlp_forward_host(&t->lf, R, t->in_h, t->fo_h));
    FR_TRY(fr_d2h(t->be, &f0, t->f0_v, sizeof f0));
    for (int64_t b = 0, r = 0; b < B; b++) {
        t->lfl[b * T] = (double)f0;
        for (int64_t k = 1; k < t->len[b]; k++, r++) t->lfl[b * T + k] = (double)t->fo_h[r];
    }
    const fr_gfn_batch gb = {.B = B, .L = T, .len = t->len, .logpf = t->lpf, .logpb = t->lpb, .logf = t->lfl,
                             .logr = t->logr, .lambda = t->o.lambda, .weighting = t->o.weighting,
                             .regression = FR_GFN_SQUARE};
    fr_gfn_grad g = {.logpf = t->gpf_s, .logpb = t->gpb_s, .logf = t->gfl_s};
    const size_t bt = (size_t)(B * T) * sizeof(double);
    memset(t->gpf_s, 0, bt);
    memset(t->gpb_s, 0, bt);
    memset(t->gfl_s, 0, bt);
    FR_TRY(fr_gfn_loss(t->o.loss == FR_BOX_DB ? FR_GFN_DB : FR_GFN_SUBTB, &gb, loss, NULL, &g));
    double g0 = 0.0;
    for (int64_t b = 0, r = 0; b < B; b++) {
        t->w[b] = t->gpf_s[b * T];
        g0 += t->gfl_s[b * T];
        for (int64_t k = 1; k < t->len[b]; k++, r++) {
            t->wf[r] = t->gpf_s[b * T + k];
            t->wb[r] = t->gpb_s[b * T + k - 1];
            t->dout_h[r] = (float)t->gfl_s[b * T + k];
        }
    }
    FR_TRY(fr_mlp_zero_grad(&t->lf));
    FR_TRY(fr_mlp_backward_host(&t->lf, R, t->dout_h));
    const float gf0 = (float)g0;
    return fr_h2d(t->be, t->f0_g, &gf0, sizeof gf0);
}

fr_status fr_box_trainer_grad(fr_box_trainer *t, fr_box_step_info *info)
{
    const fr_box_opts *bo = &t->bo;
    const fr_box_policy *pol = &t->o.pol;
    const int64_t B = t->B, T = t->T, Of = t->Of, Ob = t->Ob, S0 = t->S0;
    const uint32_t it = (uint32_t)t->iter;
    FR_TRY(sample_batch(t, B, FR_RNG_BOX_ACTION, it, 0));
    /* rows: every visited state but s0 and the sink, trajectory-major (P_F of its action, P_B of
     * the action that led there) */
    int64_t R = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 1; k < t->len[b]; k++) {
            t->row_b[R] = (int32_t)b;
            t->in_h[2 * R] = (float)ST(t, b, k)[0];
            t->in_h[2 * R + 1] = (float)ST(t, b, k)[1];
            R++;
        }
    FR_TRY(fr_mlp_forward_host(&t->pf, R, t->in_h, t->out_h));
    if (t->has_pb) FR_TRY(fr_mlp_forward_host(&t->pb, R, t->in_h, t->pbo_h));
    float s0f[5 * 64], zf = 0.0f;
    double s0p[5 * 64], out[1 + 3 * 64], pbo[3 * 64];
    FR_TRY(fr_d2h(t->be, s0f, t->s0_v, (size_t)S0 * sizeof(float)));
    for (int64_t i = 0; i < S0; i++) s0p[i] = (double)s0f[i];
    if (has_log_z(t)) FR_TRY(fr_d2h(t->be, &zf, t->z_v, sizeof zf));
    memset(t->gout, 0, (size_t)(R * Of) * sizeof(double));
    memset(t->gpb, 0, (size_t)(R * Ob) * sizeof(double));
    memset(t->gs0, 0, (size_t)(B * S0) * sizeof(double));
    /* s_b = Σ log P_F − Σ log P_B − log R, with each row's gradient at unit weight */
    double *sb = t->w, lr_sum = 0.0, len_sum = 0.0;
    int64_t r = 0;
    for (int64_t b = 0; b < B; b++) {
        double lp, sum = 0.0;
        FR_TRY(fr_box_log_pf(bo, pol, ST(t, b, 0), ACT(t, b, 0), 0, s0p, 1.0, t->gs0 + b * S0, &lp));
        sum += lp;
        if (t->has_f) t->lpf[b * T] = lp;
        for (int64_t k = 1; k < t->len[b]; k++, r++) {
            for (int64_t i = 0; i < Of; i++) out[i] = (double)t->out_h[r * Of + i];
            FR_TRY(fr_box_log_pf(bo, pol, ST(t, b, k), ACT(t, b, k), k == t->len[b] - 1, out, 1.0, t->gout + r * Of, &lp));
            sum += lp;
            if (t->has_f) t->lpf[b * T + k] = lp;
            for (int64_t i = 0; t->has_pb && i < Ob; i++) pbo[i] = (double)t->pbo_h[r * Ob + i];
            FR_TRY(fr_box_log_pb(bo, pol, ST(t, b, k), ACT(t, b, k - 1), t->has_pb ? pbo : NULL, 1.0, t->gpb + r * Ob, &lp));
            sum -= lp;
            if (t->has_f) t->lpb[b * T + k - 1] = lp;
        }
        sb[b] = sum - t->logr[b];
        lr_sum += t->logr[b];
        len_sum += t->len[b];
    }
    double loss = 0.0, gz = 0.0;
    if (t->has_f) {
        FR_TRY(flow_loss(t, R, &loss)); /* DB, SubTB: the rows' weights from fr_gfn_loss */
    } else {
        /* TB: r_b = log Z + s_b, loss mean r², w_b = 2 r_b / B; ZVar: (s_b − mean s) */
        double shift = (double)zf;
        if (t->o.loss == FR_BOX_ZVAR) {
            shift = 0.0;
            for (int64_t b = 0; b < B; b++) shift += sb[b];
            shift = -shift / (double)B;
        }
        for (int64_t b = 0; b < B; b++) {
            const double res = shift + sb[b];
            loss += res * res;
            sb[b] = 2.0 * res / (double)B; /* now the weight */
            gz += sb[b];
        }
        loss /= (double)B;
        for (int64_t q = 0; q < R; q++) { /* P_F rows × w_b, P_B rows × −w_b */
            t->wf[q] = sb[t->row_b[q]];
            t->wb[q] = -sb[t->row_b[q]];
        }
    }
    /* the outputs' gradients: each row's at unit weight times its weight */
    for (int64_t q = 0; q < R; q++)
        for (int64_t i = 0; i < Of; i++) t->dout_h[q * Of + i] = (float)(t->gout[q * Of + i] * t->wf[q]);
    FR_TRY(fr_mlp_zero_grad(&t->pf));
    FR_TRY(fr_mlp_backward_host(&t->pf, R, t->dout_h));
    if (t->has_pb) {
        for (int64_t q = 0; q < R; q++)
            for (int64_t i = 0; i < Ob; i++) t->dout_h[q * Ob + i] = (float)(t->gpb[q * Ob + i] * t->wb[q]);
        FR_TRY(fr_mlp_zero_grad(&t->pb));
        FR_TRY(fr_mlp_backward_host(&t->pb, R, t->dout_h));
    }
    for (int64_t i = 0; i < S0; i++) {
        double g = 0.0;
        for (int64_t b = 0; b < B; b++) g += t->gs0[b * S0 + i] * sb[b];
        s0f[i] = (float)g;
    }
    FR_TRY(fr_h2d(t->be, t->s0_g, s0f, (size_t)S0 * sizeof(float)));
    if (has_log_z(t)) {
        const float g = (float)gz;
        FR_TRY(fr_h2d(t->be, t->z_g, &g, sizeof g));
    }
    t->iter++;
    info->iteration = t->iter;
    info->loss = loss;
    info->log_r_mean = lr_sum / (double)B;
    info->len_mean = len_sum / (double)B;
    return isfinite(loss) ? FR_OK : fr_fail(FR_ERR_NUMERIC, "gfn-box: iteration %lld: the loss is %g", (long long)t->iter, loss);
}

static double grid_point(int i) { return 0.001 + (double)i * (0.999 / 99.0); } /* np.linspace(0.001, 1, 100) */

double fr_box_kde_jsd(const double *a, int64_t na, const double *b, int64_t nb, double h)
{
    enum { N = 100 };
    static double pa[N * N], pb[N * N];
    const double *xs[2] = {a, b};
    const int64_t ns[2] = {na, nb};
    double *ps[2] = {pa, pb};
    for (int m = 0; m < 2; m++) {
        double tot = 0.0;
        for (int i = 0; i < N; i++)     /* np.meshgrid(x, y): point (x_j, y_i) at i·N + j */
            for (int j = 0; j < N; j++) {
                const double gx = grid_point(j), gy = grid_point(i);
                double d = 0.0;
                for (int64_t k = 0; k < ns[m]; k++) {
                    const double dx = gx - xs[m][2 * k], dy = gy - xs[m][2 * k + 1];
                    d += fr_awm_exp(-sqrt(dx * dx + dy * dy) / h);
                }
                ps[m][i * N + j] = d;
                tot += d;
            }
        for (int i = 0; i < N * N; i++) ps[m][i] /= tot;
    }
    return fr_gfn_jsd(pa, pb, N * N);
}

fr_status fr_box_trainer_eval(fr_box_trainer *t, int64_t n, int G, int64_t kde, fr_box_eval *ev, double *xs)
{
    if (n < 1 || G < 1 || G > 1000 || kde < 0) return fr_fail(FR_ERR_ARG, "gfn-box: evaluation of %lld samples on %d bins", (long long)n, G);
    double *x = xs ? xs : fr_malloc((size_t)(2 * n) * sizeof *x);
    double *ph = fr_calloc((size_t)G * G, sizeof *ph), *pt = fr_malloc((size_t)G * G * sizeof *pt);
    double *ys = kde > 0 ? fr_malloc((size_t)(2 * kde) * sizeof *ys) : NULL;
    fr_status s = x && ph && pt && (kde == 0 || ys) ? FR_OK : FR_ERR_NOMEM;
    for (int64_t j0 = 0; j0 < n && s == FR_OK; j0 += t->B) {
        const int64_t m = n - j0 < t->B ? n - j0 : t->B;
        s = sample_batch(t, m, FR_RNG_BOX_EVAL, 0, (uint32_t)j0);
        for (int64_t b = 0; b < m && s == FR_OK; b++) {
            const double *xt = ST(t, b, t->len[b] - 1);
            x[2 * (j0 + b)] = xt[0];
            x[2 * (j0 + b) + 1] = xt[1];
            int i = (int)floor(xt[0] * G), j = (int)floor(xt[1] * G);
            i = i < 0 ? 0 : i >= G ? G - 1 : i;
            j = j < 0 ? 0 : j >= G ? G - 1 : j;
            ph[i * G + j] += 1.0;
        }
    }
    if (s == FR_OK) {
        for (int64_t i = 0; i < (int64_t)G * G; i++) ph[i] /= (double)n;
        fr_box_target_cells(&t->bo, G, pt);
        ev->l1 = fr_env_l1(ph, pt, (int64_t)G * G);
        ev->jsd = fr_gfn_jsd(ph, pt, (int64_t)G * G);
        ev->kde_jsd = NAN;
        if (kde > 0) {
            for (int64_t i = 0; i < kde; i++) fr_box_target_sample(&t->bo, t->o.seed, (uint32_t)i, ys + 2 * i);
            ev->kde_jsd = fr_box_kde_jsd(x, n, ys, kde, 0.1);
        }
        ev->log_z_true = fr_box_log_z(&t->bo);
        ev->log_z = NAN;
        if (has_log_z(t) || t->has_f) {
            float z;
            s = fr_d2h(t->be, &z, t->has_f ? t->f0_v : t->z_v, sizeof z);
            ev->log_z = (double)z;
        }
    }
    if (!xs) free(x);
    free(ph);
    free(pt);
    free(ys);
    return s;
}

fr_status fr_box_trainer_save(fr_box_trainer *t, fr_st_file *f)
{
    int64_t shape[1] = {1};
    fr_tensor c;
    FR_TRY(fr_tensor_alloc(&c, FR_I64, 1, shape));
    ((int64_t *)c.data)[0] = t->iter;
    return fr_st_add_take(f, "box.counters", &c);
}

fr_status fr_box_trainer_load(fr_box_trainer *t, const fr_st_file *f, const char *path)
{
    const fr_tensor *c = fr_st_get(f, "box.counters");
    if (!c || c->dtype != FR_I64 || fr_tensor_numel(c) != 1)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor box.counters is absent or not I64 (1,)", path);
    t->iter = ((const int64_t *)c->data)[0];
    return FR_OK;
}

fr_status fr_box_trainer_digest(fr_box_trainer *t, uint64_t *digest, int64_t *n_params)
{
    uint64_t d[4] = {0, 0, 0, 0};
    FR_TRY(fr_mlp_digest(&t->pf, &d[0]));
    if (t->has_pb) FR_TRY(fr_mlp_digest(&t->pb, &d[1]));
    float h[5 * 64 + 1];
    FR_TRY(fr_d2h(t->be, h, t->s0_v, (size_t)t->S0 * sizeof(float)));
    FR_TRY(fr_d2h(t->be, h + t->S0, t->z_v, sizeof(float)));
    d[2] = fr_digest_bytes(h, (size_t)(t->S0 + 1) * sizeof(float));
    if (t->has_f) { /* the state flow and log F(s0) */
        uint64_t df[2];
        float f0;
        FR_TRY(fr_mlp_digest(&t->lf, &df[0]));
        FR_TRY(fr_d2h(t->be, &f0, t->f0_v, sizeof f0));
        df[1] = fr_digest_bytes(&f0, sizeof f0);
        d[3] = fr_digest_bytes(df, sizeof df);
    }
    *digest = fr_digest_bytes(d, sizeof d);
    if (n_params)
        *n_params = fr_mlp_numel(&t->pf) + (t->has_pb ? fr_mlp_numel(&t->pb) : 0) + t->S0 + (has_log_z(t) ? 1 : 0) +
                    (t->has_f ? fr_mlp_numel(&t->lf) + 1 : 0);
    return FR_OK;
}
