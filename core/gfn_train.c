/* The GFlowNet trainer (flowrl/gfn_train.h; docs/algorithms/gfn.md §2–§5): set-up, the parameter
 * list, log Z, the checkpoint counters and the digest. The network, sampling, the iteration and
 * the evaluation are core/gfn_net.c, gfn_sample.c, gfn_step.c and gfn_eval.c
 * (core/gfn_train_internal.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/digest.h"
#include "flowrl/philox.h"
#include "gfn_train_internal.h"

fr_gfn_opts fr_gfn_opts_default(void)
{
    fr_gfn_opts o = {.loss = FR_GFN_TB, .batch = 128, .hidden = 256, .n_hidden = 2, .lr = 1e-3, .lr_z = 0.1,
                     .temperature = 1.0, .lambda = 0.9, .seed = 1, .weighting = FR_SUBTB_GEOMETRIC_WITHIN,
                     .regression = FR_GFN_SQUARE, .linex_alpha = 1.0, .log_reward_clip_min = -INFINITY,
                     .beta = 1.0, .ls_back_ratio = 0.5, .mo_beta = 1.0, .kl_weight = 0.0,
                     .mo_beta_dist = 0, .mo_beta_a = 1.0, .mo_beta_b = 1.0, .mo_beta_therm = 32,
                     .oc_log_floor = -10.0, .oc_relabel = 0.5};
    return o;
}

/* ---- set-up ------------------------------------------------------------------------------ */

double fr_gfn_log_reward(const fr_gfn_trainer *t, const int32_t *s)
{
    double lr = t->env->gfn->log_reward(t->env, s);
    return lr < t->o.log_reward_clip_min ? t->o.log_reward_clip_min : lr;
}

static fr_status check_opts(const fr_env *env, const fr_gfn_opts *o)
{
    if (!env->gfn || env->n_states <= 0)
        return fr_fail(FR_ERR_ARG, "gfn: --env %s is not an enumerable GFlowNet environment", env->desc);
    if (env->n_actions > GFN_MAX_A) return fr_fail(FR_ERR_ARG, "gfn: %s has %d actions (at most %d)", env->desc, env->n_actions, GFN_MAX_A);
    if (!fr_gfn_loss_name(o->loss)) return fr_fail(FR_ERR_ARG, "gfn: --loss %d is not a loss", (int)o->loss);
    if (o->batch < 1 || o->batch > (1 << 20)) return fr_fail(FR_ERR_ARG, "gfn: --batch-size %lld is outside [1, 2^20]", (long long)o->batch);
    if (o->hidden < 1 || o->hidden > 8192) return fr_fail(FR_ERR_ARG, "gfn: --hidden-dim %lld is outside [1, 8192]", (long long)o->hidden);
    if (o->n_hidden < 1 || o->n_hidden >= GFN_MAX_LAYERS)
        return fr_fail(FR_ERR_ARG, "gfn: --n-hidden %lld is outside [1, %d]", (long long)o->n_hidden, GFN_MAX_LAYERS - 1);
    if (!(o->epsilon >= 0.0 && o->epsilon <= 1.0)) return fr_fail(FR_ERR_ARG, "gfn: --epsilon %g is outside [0, 1]", o->epsilon);
    if (!(o->temperature > 0.0) || !isfinite(o->temperature) || !isfinite(o->sf_bias))
        return fr_fail(FR_ERR_ARG, "gfn: --temperature %g must be > 0 and --sf-bias %g finite", o->temperature, o->sf_bias);
    if (!(o->lr > 0.0) || !(o->lr_z > 0.0)) return fr_fail(FR_ERR_ARG, "gfn: --lr %g / --lr-z %g must be > 0", o->lr, o->lr_z);
    if (!(o->lambda > 0.0)) return fr_fail(FR_ERR_ARG, "gfn: --subtb-lambda %g must be > 0", o->lambda);
    if (o->loss != FR_GFN_RTB && o->prior && o->prior[0])
        return fr_fail(FR_ERR_ARG, "gfn: --prior applies to rtb, not %s", fr_gfn_loss_name(o->loss));
    if (!isfinite(o->beta)) return fr_fail(FR_ERR_ARG, "gfn: --beta %g must be finite", o->beta);
    if (!fr_gfn_weighting_name(o->weighting)) return fr_fail(FR_ERR_ARG, "gfn: --subtb-weighting %d is not a weighting", (int)o->weighting);
    if (o->weighting == FR_SUBTB_GEOMETRIC && o->lambda == 1.0)
        return fr_fail(FR_ERR_ARG, "gfn: --subtb-weighting geometric needs --subtb-lambda != 1");
    if (!fr_gfn_regression_name(o->regression)) return fr_fail(FR_ERR_ARG, "gfn: --regression %d is not a regression", (int)o->regression);
    if (o->regression == FR_GFN_LINEX && !(o->linex_alpha != 0.0 && isfinite(o->linex_alpha)))
        return fr_fail(FR_ERR_ARG, "gfn: --linex-alpha %g must be finite and nonzero", o->linex_alpha);
    if (o->forward_looking && o->loss != FR_GFN_DB && o->loss != FR_GFN_SUBTB)
        return fr_fail(FR_ERR_ARG, "gfn: --forward-looking applies to db and subtb, not %s", fr_gfn_loss_name(o->loss));
    if (isnan(o->log_reward_clip_min) || o->log_reward_clip_min == INFINITY)
        return fr_fail(FR_ERR_ARG, "gfn: --log-reward-clip-min %g must be a number or -inf", o->log_reward_clip_min);
    if (o->ls_rounds < 0 || o->ls_rounds > 1000) return fr_fail(FR_ERR_ARG, "gfn: --local-search %lld is outside [0, 1000]", (long long)o->ls_rounds);
    if (o->ls_rounds > 0 && !(o->ls_back_ratio > 0.0 && o->ls_back_ratio <= 1.0))
        return fr_fail(FR_ERR_ARG, "gfn: --ls-back-ratio %g is outside (0, 1]", o->ls_back_ratio);
    if (o->ls_rounds > 0 && (o->loss == FR_GFN_FM || o->replay > 0))
        return fr_fail(FR_ERR_ARG, "gfn: --local-search applies to the trajectory losses without --replay-buffer, not %s%s",
                       fr_gfn_loss_name(o->loss), o->replay > 0 ? " with a replay buffer" : "");
    if (o->preference) {
        if (env->n_objectives != 2 || !env->gfn->objectives)
            return fr_fail(FR_ERR_ARG, "gfn: --preference needs an environment with 2 objectives (mo-hypergrid), not %s", env->desc);
        if (o->loss != FR_GFN_TB && o->loss != FR_GFN_DB && o->loss != FR_GFN_SUBTB && o->loss != FR_GFN_ZVAR)
            return fr_fail(FR_ERR_ARG, "gfn: --preference applies to tb, db, subtb and zvar, not %s", fr_gfn_loss_name(o->loss));
        if (o->forward_looking || o->replay > 0 || o->ls_rounds > 0)
            return fr_fail(FR_ERR_ARG, "gfn: --preference does not combine with --forward-looking, --replay-buffer or --local-search");
        if (!(o->mo_beta > 0.0) || !isfinite(o->mo_beta)) return fr_fail(FR_ERR_ARG, "gfn: --mo-beta %g must be > 0", o->mo_beta);
        const double a = o->mo_beta_a, b = o->mo_beta_b;
        const int dist_ok = o->mo_beta_dist == 0 || (o->mo_beta_dist == 1 && a > 0.0 && b > 0.0) ||
                            (o->mo_beta_dist == 2 && a >= 0.0 && b > a) || (o->mo_beta_dist == 3 && a > 0.0 && b > a) ||
                            (o->mo_beta_dist == 4 && a > 0.0 && b > 0.0);
        if (o->mo_beta_dist < 0 || o->mo_beta_dist > 4 || !dist_ok || !isfinite(a) || !isfinite(b))
            return fr_fail(FR_ERR_ARG, "gfn: --mo-beta-dist %d with parameters (%g, %g): gamma needs a, b > 0, uniform 0 <= a "
                                       "< b, loguniform 0 < a < b, beta a, b > 0",
                           o->mo_beta_dist, a, b);
        if (o->mo_beta_dist != 0 && (o->mo_beta_therm < 2 || o->mo_beta_therm > GFN_MAX_THERM))
            return fr_fail(FR_ERR_ARG, "gfn: --mo-beta-therm %d is outside [2, %d]", o->mo_beta_therm, GFN_MAX_THERM);
    }
    if (o->outcome) FR_TRY(fr_gfn_oc_check(env, o));
    if (!(o->kl_weight >= 0.0) || !isfinite(o->kl_weight)) return fr_fail(FR_ERR_ARG, "gfn: --kl-weight %g must be >= 0", o->kl_weight);
    if (o->kl_weight > 0.0 && (o->uniform_pb || o->loss == FR_GFN_FM || o->loss == FR_GFN_RTB))
        return fr_fail(FR_ERR_ARG, "gfn: --kl-weight needs a learned P_B: not with %s", o->uniform_pb ? "--uniform-pb" : fr_gfn_loss_name(o->loss));
    if (o->replay != 0 && (o->replay < o->batch || o->replay > (1 << 24)))
        return fr_fail(FR_ERR_ARG, "gfn: --replay-buffer %lld must be 0 (off) or in [--batch-size %lld, 2^24]",
                       (long long)o->replay, (long long)o->batch);
    return FR_OK;
}

/* torch.nn.Linear's default init: weight and bias U(−1/√fan_in, 1/√fan_in), from Philox
 * (seed, FR_RNG_INIT, parameter index, 1, 0) element i (c1 = 1 keeps it apart from fr_model). */
static fr_status init_params(fr_gfn_trainer *t)
{
    float *h = fr_malloc((size_t)t->arena_n * sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    memset(h, 0, (size_t)t->arena_n * sizeof *h);
    int64_t off = 0;
    for (int p = 0; p < t->n_params; p++) {
        int l = p / 2;
        float bound = 1.0f / sqrtf((float)t->dim[l]);
        int64_t n = fr_tensor_numel(&t->vals[p]);
        for (int64_t i = 0; i < n; i++)
            h[off + i] = (2.0f * fr_rng_uniform(t->o.seed, FR_RNG_INIT, (uint32_t)p, 1, 0, (uint32_t)i) - 1.0f) * bound;
        off += fr_arena_slot(n);
    }
    fr_status s = fr_h2d(t->be, t->arena_v, h, (size_t)t->arena_n * sizeof *h);
    free(h);
    float z[2] = {(float)t->o.init_log_z, 0.0f};
    if (s == FR_OK) s = fr_h2d(t->be, t->z_dev, z, sizeof z);
    return s;
}

/* RTB's prior (§3.8) and OC-GFN's pre-trained network: trunk.* and the first O rows of head.* of
 * checkpoint path into t's network (the trunk's shapes must be t's: --hidden-dim, --n-hidden). */
fr_status fr_gfn_load_policy(fr_gfn_trainer *t, const fr_st_file *f, const char *path)
{
    float *h = fr_calloc((size_t)t->arena_n, sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    fr_status s = FR_OK;
    int64_t off = 0;
    for (int p = 0; p < t->n_params && s == FR_OK; p++) {
        const fr_tensor *w = fr_st_get(f, t->names[p]);
        const fr_tensor *want = &t->vals[p];
        const int head = p >= t->n_params - 2;
        const int64_t n = fr_tensor_numel(want);
        const int cols_ok = want->ndim == 1 || (w && w->ndim == 2 && w->shape[1] == want->shape[1]);
        if (!w || w->dtype != FR_F32 || w->ndim != want->ndim || !cols_ok ||
            (head ? w->shape[0] < want->shape[0] : w->shape[0] != want->shape[0])) {
            char shape[48];
            if (want->ndim == 2)
                snprintf(shape, sizeof shape, "(%lld, %lld)", (long long)want->shape[0], (long long)want->shape[1]);
            else
                snprintf(shape, sizeof shape, "(%lld)", (long long)want->shape[0]);
            s = fr_fail(FR_ERR_FORMAT, "%s: prior tensor %s missing or not F32 %s%s (the run's --hidden-dim and --n-hidden "
                                       "must be the prior's)",
                        path, t->names[p], head ? "with at least the rows of " : "", shape);
        } else {
            memcpy(h + off, w->data, (size_t)n * sizeof *h); /* row-major: the first rows of the head */
        }
        off += fr_arena_slot(n);
    }
    if (s == FR_OK) s = fr_h2d(t->be, t->arena_v, h, (size_t)t->arena_n * sizeof *h);
    free(h);
    return s;
}

/* RTB's prior network (a P_F-only copy) from o.prior, into t->prior and t, and the target
 * p_prior_T(x)·R(x)^β / Z (§3.8). */
static fr_status rtb_setup(fr_gfn_trainer *t)
{
    fr_gfn_opts po = t->o;
    po.loss = FR_GFN_TB;
    po.uniform_pb = 1; /* head: the A P_F logits, as t's */
    po.replay = 0;
    po.prior = NULL;
    FR_TRY(fr_gfn_trainer_new(&t->prior, t->be, t->env, &po));
    if (t->o.prior && t->o.prior[0]) {
        fr_st_file f;
        fr_st_init(&f);
        fr_status s = fr_st_read(&f, t->o.prior);
        if (s == FR_OK) s = fr_gfn_load_policy(t->prior, &f, t->o.prior);
        if (s == FR_OK) s = fr_gfn_load_policy(t, &f, t->o.prior);
        fr_st_free(&f);
        FR_TRY(s);
    }
    const int64_t n = t->env->n_states, D = t->env->state_dim;
    double *pt = fr_malloc((size_t)n * sizeof *pt), l1, z = 0.0;
    int32_t *x = fr_malloc((size_t)D * sizeof *x);
    fr_status s = pt && x ? fr_gfn_trainer_eval(t->prior, &l1, NULL, pt) : FR_ERR_NOMEM;
    for (int64_t i = 0; i < n && s == FR_OK; i++) {
        t->env->gfn->state_at(t->env, i, x);
        t->target[i] = pt[i] * fr_awm_exp(t->o.beta * fr_gfn_log_reward(t, x));
        z += t->target[i];
    }
    for (int64_t i = 0; i < n && s == FR_OK; i++) t->target[i] /= z;
    if (s == FR_OK) t->log_z_true = fr_awm_log(z);
    free(pt);
    free(x);
    return s;
}

fr_status fr_gfn_trainer_new(fr_gfn_trainer **out, fr_backend *be, const fr_env *env, const fr_gfn_opts *o)
{
    *out = NULL;
    FR_TRY(check_opts(env, o));
    fr_gfn_trainer *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    t->be = be;
    t->env = env;
    t->o = *o;
    t->A = env->n_actions;
    t->O = t->A;
    if (o->preference && o->loss == FR_GFN_TB) { /* log Z(ω) = log F(s0 | ω): SubTB's TB weighting (§13) */
        t->o.loss = FR_GFN_SUBTB;
        t->o.weighting = FR_SUBTB_TB;
        o = &t->o;
    }
    t->nc = o->preference ? env->n_objectives : 0;
    t->ncw = t->nc + (o->preference && o->mo_beta_dist != 0 ? o->mo_beta_therm : 0);
    t->eval_w[0] = t->eval_w[1] = 0.5;
    if (o->outcome) t->ncw = env->obs_dim; /* OC-GFN: the outcome y encoded like a state (core/gfn_oc.c) */
    t->pb_col = t->f_col = -1;
    /* FM: the A columns are the log edge flows, the sampler's logits (§3.6) */
    if (!o->uniform_pb && o->loss != FR_GFN_FM && o->loss != FR_GFN_RTB) { /* RTB has no P_B */
        t->pb_col = t->O;
        t->O += t->A - 1;
    }
    if (o->loss == FR_GFN_DB || o->loss == FR_GFN_SUBTB) t->f_col = t->O++;
    t->L = (int)o->n_hidden + 1;
    t->dim[0] = env->obs_dim + t->ncw;
    for (int l = 1; l < t->L; l++) t->dim[l] = o->hidden;
    t->dim[t->L] = t->O;
    t->n_params = 2 * t->L;
    for (int l = 0; l < t->L; l++) {
        t->arena_n += fr_arena_slot(t->dim[l + 1] * t->dim[l]) + fr_arena_slot(t->dim[l + 1]);
        if (l < t->L - 1) {
            snprintf(t->names[2 * l], sizeof t->names[0], "trunk.%d.weight", 2 * l);
            snprintf(t->names[2 * l + 1], sizeof t->names[0], "trunk.%d.bias", 2 * l);
        } else {
            snprintf(t->names[2 * l], sizeof t->names[0], "head.weight");
            snprintf(t->names[2 * l + 1], sizeof t->names[0], "head.bias");
        }
    }
    const int64_t B = o->ls_rounds > 0 ? 2 * o->batch : o->batch, T = env->max_steps, D = env->state_dim;
    t->bcap = B;
    /* rows of one forward: the visited states; FM also every parent of each (at most D) */
    t->cap = o->loss == FR_GFN_FM ? B * T * (D + 1) : B * T;
    fr_status s = FR_OK;
    t->arena_v = fr_dev_floats(be, t->arena_n);
    t->arena_g = fr_dev_floats(be, t->arena_n);
    t->z_dev = fr_dev_floats(be, 2);
    t->x = fr_dev_floats(be, t->cap * t->dim[0]);
    int64_t wmax = t->dim[0] > t->O ? t->dim[0] : t->O;
    if (o->hidden > wmax) wmax = o->hidden;
    t->d0 = fr_dev_floats(be, t->cap * wmax);
    t->d1 = fr_dev_floats(be, t->cap * wmax);
    if (!t->arena_v || !t->arena_g || !t->z_dev || !t->x || !t->d0 || !t->d1) s = FR_ERR_NOMEM;
    for (int l = 0; l < t->L && s == FR_OK; l++) {
        t->pre[l] = fr_dev_floats(be, t->cap * t->dim[l + 1]);
        if (!t->pre[l]) s = FR_ERR_NOMEM;
        if (l < t->L - 1 && s == FR_OK && !(t->post[l] = fr_dev_floats(be, t->cap * t->dim[l + 1]))) s = FR_ERR_NOMEM;
    }
    int64_t off = 0;
    for (int l = 0; l < t->L && s == FR_OK; l++) {
        int64_t ws[2] = {t->dim[l + 1], t->dim[l]}, bs[1] = {t->dim[l + 1]};
        t->vals[2 * l] = fr_tensor_f32(t->arena_v + off, 2, ws);
        t->grads[2 * l] = fr_tensor_f32(t->arena_g + off, 2, ws);
        off += fr_arena_slot(ws[0] * ws[1]);
        t->vals[2 * l + 1] = fr_tensor_f32(t->arena_v + off, 1, bs);
        t->grads[2 * l + 1] = fr_tensor_f32(t->arena_g + off, 1, bs);
        off += fr_arena_slot(bs[0]);
    }
    for (int p = 0; p < t->n_params; p++) t->params[p] = (fr_param){t->names[p], &t->vals[p], &t->grads[p]};
    int64_t one[1] = {1};
    if (s == FR_OK) {
        t->zv = fr_tensor_f32(t->z_dev, 1, one);
        t->zg = fr_tensor_f32(t->z_dev + 1, 1, one);
        t->zp = (fr_param){"log_z", &t->zv, &t->zg};
        s = init_params(t);
    }
    if (s == FR_OK) s = fr_adamw_state_init(be, &t->adam, t->params, t->n_params);
    if (s == FR_OK) s = fr_adamw_state_init(be, &t->adam_z, &t->zp, 1);
    const int64_t n = env->n_states;
    if (s == FR_OK) {
        t->obs_h = fr_malloc((size_t)(t->cap * t->dim[0]) * sizeof(float));
        t->pref = fr_calloc((size_t)(B * (t->ncw ? t->ncw : 1)), sizeof(double));
        t->beta_b = fr_calloc((size_t)B, sizeof(double));
        t->cond_rows = fr_calloc((size_t)(t->cap * (t->ncw ? t->ncw : 1)), sizeof(float));
        t->out_h = fr_malloc((size_t)(t->cap * t->O) * sizeof(float));
        t->dout_h = fr_malloc((size_t)(t->cap * t->O) * sizeof(float));
        t->st = fr_malloc((size_t)(B * T * D) * sizeof(int32_t));
        t->act = fr_malloc((size_t)(B * T) * sizeof(int32_t));
        t->len = fr_malloc((size_t)B * sizeof(int32_t));
        t->logr = fr_malloc((size_t)B * sizeof(double));
        t->goal = fr_calloc((size_t)B, sizeof(int64_t));
        t->perm = fr_malloc((size_t)B * sizeof(int64_t));
        t->util = fr_malloc((size_t)B * sizeof(double));
        double **dd[10] = {&t->logpf, &t->logpb, &t->logf, &t->gpf, &t->gpb, &t->gf, &t->logrs, &t->logpfx, &t->gpfx,
                           &t->logprior};
        for (int k = 0; k < 10; k++) *dd[k] = fr_calloc((size_t)(B * T), sizeof(double));
        t->visited = fr_calloc((size_t)n, 1);
        t->target = fr_malloc((size_t)n * sizeof(double));
        if (!t->obs_h || !t->out_h || !t->dout_h || !t->st || !t->act || !t->len || !t->logr || !t->logpf || !t->logpb ||
            !t->logf || !t->gpf || !t->gpb || !t->gf || !t->logrs || !t->logpfx || !t->gpfx || !t->logprior || !t->visited || !t->target ||
            !t->perm || !t->util || !t->pref || !t->beta_b || !t->cond_rows || !t->goal)
            s = FR_ERR_NOMEM;
        if (s == FR_OK && o->ls_rounds > 0) {
            const int64_t b = o->batch;
            int32_t **ii[7] = {&t->lb_st, &t->lb_act, &t->lb_len, &t->ln_st, &t->ln_act, &t->ln_len, &t->ls_k0};
            const int64_t ni[7] = {b * T * D, b * T, b, b * T * D, b * T, b, b};
            for (int k = 0; k < 7; k++)
                if (!(*ii[k] = fr_calloc((size_t)ni[k], sizeof(int32_t)))) s = FR_ERR_NOMEM;
            double **dd2[2] = {&t->lb_lpb, &t->ln_lpf};
            for (int k = 0; k < 2; k++)
                if (!(*dd2[k] = fr_calloc((size_t)(b * T), sizeof(double)))) s = FR_ERR_NOMEM;
        }
        if (s == FR_OK && o->replay > 0) {
            t->rb_st = fr_calloc((size_t)(o->replay * T * D), sizeof(int32_t));
            t->rb_act = fr_calloc((size_t)(o->replay * T), sizeof(int32_t));
            t->rb_len = fr_calloc((size_t)o->replay, sizeof(int32_t));
            if (!t->rb_st || !t->rb_act || !t->rb_len) s = FR_ERR_NOMEM;
        }
    }
    if (s == FR_OK) s = fr_env_target(env, t->target, &t->log_z_true, NULL, NULL);
    if (s == FR_OK && o->loss == FR_GFN_RTB) s = rtb_setup(t);
    if (s == FR_OK && t->nc > 0) s = fr_gfn_beta_setup(t);
    if (s == FR_OK && t->nc > 0) s = fr_gfn_mo_target(t, t->eval_w);
    if (s == FR_OK && o->outcome) fr_gfn_oc_target(t, 0);
    if (s != FR_OK) {
        fr_gfn_trainer_free(t);
        return s;
    }
    *out = t;
    return FR_OK;
}

void fr_gfn_trainer_free(fr_gfn_trainer *t)
{
    if (!t) return;
    fr_backend *be = t->be;
    fr_gfn_trainer_free(t->prior);
    if (t->adam.m) fr_adamw_state_free(&t->adam);
    if (t->adam_z.m) fr_adamw_state_free(&t->adam_z);
    void *dev[] = {t->arena_v, t->arena_g, t->z_dev, t->x, t->d0, t->d1};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(be, dev[i]);
    for (int l = 0; l < t->L; l++) {
        fr_dev_free(be, t->pre[l]);
        fr_dev_free(be, t->post[l]);
    }
    void *host[] = {t->obs_h, t->out_h, t->dout_h, t->st, t->act, t->len, t->logr, t->logpf, t->logpb,
                    t->logf, t->gpf, t->gpb, t->gf, t->logrs, t->logpfx, t->gpfx, t->logprior, t->visited, t->target,
                    t->rb_st, t->rb_act, t->rb_len, t->perm, t->util, t->lb_st, t->lb_act, t->lb_len, t->ln_st,
                    t->ln_act, t->ln_len, t->ls_k0, t->lb_lpb, t->ln_lpf, t->pref, t->cond_rows, t->beta_b, t->goal};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
    free(t);
}

fr_status fr_gfn_trainer_log_z(fr_gfn_trainer *t, double *log_z)
{
    *log_z = NAN;
    if (fr_gfn_has_log_z(t)) {
        float z[2];
        FR_TRY(fr_d2h(t->be, z, t->z_dev, sizeof z));
        *log_z = (double)z[0];
    } else if (t->f_col >= 0) {
        int32_t s0[GFN_MAX_A];
        t->env->gfn->initial(t->env, s0);
        if (t->ncw > 0) fr_gfn_cond_row(t, 0, t->eval_w);
        FR_TRY(fr_gfn_net_rows(t, 1, s0));
        *log_z = (double)t->out_h[t->f_col];
        if (t->o.forward_looking) *log_z += fr_gfn_log_reward(t, s0); /* log F(s0) = log F̃(s0) + log R(s0) */
    }
    return FR_OK;
}

int64_t fr_gfn_trainer_modes(const fr_gfn_trainer *t) { return t->modes_found; }

void fr_gfn_visit(fr_gfn_trainer *t, const int32_t *x)
{
    const int64_t xi = t->env->gfn->index(t->env, x);
    if (t->visited[xi]) return;
    t->visited[xi] = 1;
    t->modes_found += t->env->gfn->is_mode(t->env, x);
}

int fr_gfn_trainer_params(fr_gfn_trainer *t, fr_param **ps, int *n_net)
{
    for (int p = 0; p < t->n_params; p++) t->all[p] = t->params[p];
    int n = t->n_params;
    if (fr_gfn_has_log_z(t)) t->all[n++] = t->zp;
    *ps = t->all;
    *n_net = t->n_params;
    return n;
}

/* The counters a resumed trainer needs to draw the same actions and report the same modes: the
 * iterations and trajectories done and the terminal states sampled so far. */
fr_status fr_gfn_trainer_save(fr_gfn_trainer *t, fr_st_file *f)
{
    int64_t three = 3, n = t->env->n_states;
    fr_tensor c, v;
    FR_TRY(fr_tensor_alloc(&c, FR_I64, 1, &three));
    ((int64_t *)c.data)[0] = t->iter;
    ((int64_t *)c.data)[1] = t->trajectories;
    ((int64_t *)c.data)[2] = t->modes_found;
    fr_status s = fr_st_add_take(f, "gfn.counters", &c);
    if (s == FR_OK) s = fr_tensor_alloc(&v, FR_U8, 1, &n);
    if (s == FR_OK) {
        memcpy(v.data, t->visited, (size_t)n);
        s = fr_st_add_take(f, "gfn.visited", &v);
    }
    if (s != FR_OK || t->o.replay == 0) return s;
    const int64_t N = t->o.replay, T = t->env->max_steps, D = t->env->state_dim, one = 1;
    int64_t sh_st[3] = {N, T, D}, sh_act[2] = {N, T};
    fr_tensor rc, rs, ra, rl;
    if ((s = fr_tensor_alloc(&rc, FR_I64, 1, &one)) != FR_OK) return s;
    *(int64_t *)rc.data = t->rb_count;
    if ((s = fr_st_add_take(f, "gfn.replay.count", &rc)) != FR_OK) return s;
    if ((s = fr_tensor_alloc(&rs, FR_I32, 3, sh_st)) != FR_OK) return s;
    memcpy(rs.data, t->rb_st, (size_t)(N * T * D) * sizeof(int32_t));
    if ((s = fr_st_add_take(f, "gfn.replay.states", &rs)) != FR_OK) return s;
    if ((s = fr_tensor_alloc(&ra, FR_I32, 2, sh_act)) != FR_OK) return s;
    memcpy(ra.data, t->rb_act, (size_t)(N * T) * sizeof(int32_t));
    if ((s = fr_st_add_take(f, "gfn.replay.actions", &ra)) != FR_OK) return s;
    if ((s = fr_tensor_alloc(&rl, FR_I32, 1, &N)) != FR_OK) return s;
    memcpy(rl.data, t->rb_len, (size_t)N * sizeof(int32_t));
    return fr_st_add_take(f, "gfn.replay.len", &rl);
}

fr_status fr_gfn_trainer_load(fr_gfn_trainer *t, const fr_st_file *f, const char *path)
{
    const fr_tensor *c = fr_st_get(f, "gfn.counters"), *v = fr_st_get(f, "gfn.visited");
    if (!c || c->dtype != FR_I64 || c->ndim != 1 || c->shape[0] != 3)
        return fr_fail(FR_ERR_FORMAT, "%s: gfn.counters missing or not I64 (3,)", path);
    if (!v || v->dtype != FR_U8 || v->ndim != 1 || v->shape[0] != t->env->n_states)
        return fr_fail(FR_ERR_FORMAT, "%s: gfn.visited missing or not U8 (%lld,)", path, (long long)t->env->n_states);
    t->iter = ((const int64_t *)c->data)[0];
    t->trajectories = ((const int64_t *)c->data)[1];
    memcpy(t->visited, v->data, (size_t)t->env->n_states);
    t->modes_found = ((const int64_t *)c->data)[2];
    if (t->o.replay == 0) return FR_OK;
    const int64_t N = t->o.replay, T = t->env->max_steps, D = t->env->state_dim;
    const fr_tensor *rc = fr_st_get(f, "gfn.replay.count"), *rs = fr_st_get(f, "gfn.replay.states"),
                    *ra = fr_st_get(f, "gfn.replay.actions"), *rl = fr_st_get(f, "gfn.replay.len");
    if (!rc || rc->dtype != FR_I64 || rc->ndim != 1 || rc->shape[0] != 1)
        return fr_fail(FR_ERR_FORMAT, "%s: gfn.replay.count missing or not I64 (1,) (a run without --replay-buffer?)", path);
    if (!rs || rs->dtype != FR_I32 || rs->ndim != 3 || rs->shape[0] != N || rs->shape[1] != T || rs->shape[2] != D)
        return fr_fail(FR_ERR_FORMAT, "%s: gfn.replay.states missing or not I32 (%lld, %lld, %lld)", path, (long long)N,
                       (long long)T, (long long)D);
    if (!ra || ra->dtype != FR_I32 || ra->ndim != 2 || ra->shape[0] != N || ra->shape[1] != T)
        return fr_fail(FR_ERR_FORMAT, "%s: gfn.replay.actions missing or not I32 (%lld, %lld)", path, (long long)N, (long long)T);
    if (!rl || rl->dtype != FR_I32 || rl->ndim != 1 || rl->shape[0] != N)
        return fr_fail(FR_ERR_FORMAT, "%s: gfn.replay.len missing or not I32 (%lld,)", path, (long long)N);
    t->rb_count = *(const int64_t *)rc->data;
    memcpy(t->rb_st, rs->data, (size_t)(N * T * D) * sizeof(int32_t));
    memcpy(t->rb_act, ra->data, (size_t)(N * T) * sizeof(int32_t));
    memcpy(t->rb_len, rl->data, (size_t)N * sizeof(int32_t));
    return FR_OK;
}

fr_status fr_gfn_trainer_digest(fr_gfn_trainer *t, uint64_t *digest, int64_t *n_params)
{
    float *h = fr_malloc((size_t)(t->arena_n + 1) * sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    fr_status s = fr_d2h(t->be, h, t->arena_v, (size_t)t->arena_n * sizeof *h);
    if (s == FR_OK) s = fr_d2h(t->be, h + t->arena_n, t->z_dev, sizeof *h);
    if (s == FR_OK) *digest = fr_digest_bytes(h, (size_t)(t->arena_n + 1) * sizeof *h);
    if (n_params) {
        int64_t c = 1;
        for (int p = 0; p < t->n_params; p++) c += fr_tensor_numel(&t->vals[p]);
        *n_params = c;
    }
    free(h);
    return s;
}
