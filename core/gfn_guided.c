/* The guided-TB trainer with the sa or ssr policy on HyperGrid (flowrl/gfn_guided.h;
 * docs/algorithms/gfn-guided.md; maxwshen/gflownet@4203ec04 gflownet/policy.py BasePolicySA /
 * BasePolicySSR, gflownet/GFNs/basegfn.py, gflownet/trainers.py).
 *
 * States carry a terminal flag: the exit child of s is (s, 1), whose only parent is s (P_B = 1).
 * A policy answers queries (state s, direction): the choices are s's children (direction 0: the
 * allowed actions, the exit last as the forward mask orders it) or parents (1: the backward mask),
 * every one a distinct state on HyperGrid. sa: one MLP on enc(s) gives a logit per action; ssr:
 * an encoder MLP on enc(s) ‖ terminal gives z, a scorer MLP on z(s) ‖ z(choice) gives one logit per
 * choice. Logits are clipped to [−c, c] (no gradient outside) and log-softmaxed over the choices
 * in float64 on the host; the networks run through the op table (flowrl/mlp.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/digest.h"
#include "flowrl/gfn_guided.h"
#include "flowrl/mlp.h"
#include "flowrl/philox.h"
#include "core/gfn_guided_internal.h"

fr_gtb_opts fr_gtb_opts_default(void)
{
    fr_gtb_opts o = {FR_GTB_SA, 1, FR_GTB_PB_GUIDE, 0.5, 16, 16, 2, 16, 0.1, 1.0, 0, 50.0, 10.0, 5.0, 0.0, 1};
    return o;
}

/* ---- the trainer ----------------------------------------------------------------------------- */

static int gather(fr_param *dst, gtb_net *n)
{
    int c = 0;
    if (n->ssr)
        for (int p = 0; p < n->enc.n_params; p++) dst[c++] = n->enc.params[p];
    for (int p = 0; p < n->head.n_params; p++) dst[c++] = n->head.params[p];
    return c;
}

fr_status fr_gtb_trainer_new(fr_gtb_trainer **out, fr_backend *be, const fr_env *env, const fr_gtb_opts *o)
{
    *out = NULL;
    if (env->cls != &fr_env_hypergrid || env->n_states <= 0)
        return fr_fail(FR_ERR_ARG, "guided tb: the environment must be an enumerable hypergrid (got %s)", env->cls->name);
    if (env->state_dim > 16 || env->n_actions > 64)
        return fr_fail(FR_ERR_ARG, "guided tb: --ndim %d, at most 16", env->state_dim);
    if (o->batch < 1 || o->hidden < 1 || o->n_hidden < 1 || o->n_hidden >= FR_MLP_MAX_LAYERS || o->embed < 1 ||
        !(o->w >= 0.0 && o->w <= 1.0) || !(o->epsilon >= 0.0 && o->epsilon <= 1.0) || !(o->logit_clip > 0.0) ||
        !(o->clip_norm >= 0.0) || !isfinite(o->init_log_z) || !isfinite(o->log_z_floor) || !isfinite(o->guide_temperature))
        return fr_fail(FR_ERR_ARG, "guided tb: an option is out of range (batch %lld, hidden %lld x %lld, embed %lld, w %g, "
                                   "epsilon %g, logit clip %g, clip norm %g)",
                       (long long)o->batch, (long long)o->hidden, (long long)o->n_hidden, (long long)o->embed, o->w,
                       o->epsilon, o->logit_clip, o->clip_norm);
    fr_gtb_trainer *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->be = be;
    t->env = env;
    t->o = *o;
    t->D = env->state_dim;
    t->A = env->n_actions;
    t->O = env->obs_dim;
    t->T = env->max_steps;
    t->cap = o->batch * t->T;
    if (t->cap < 256) t->cap = 256;
    FR_TRY(fr_gtb_net_new(t, &t->net[0], 0));
    FR_TRY(fr_gtb_net_new(t, &t->net[1], 1));
    t->n_f = gather(t->ps, &t->net[0]);
    t->n_b = gather(t->ps + t->n_f, &t->net[1]);
    t->z_dev = fr_dev_floats(be, 2);
    if (!t->z_dev) return FR_ERR_NOMEM;
    int64_t one[1] = {1};
    t->zv = fr_tensor_f32(t->z_dev, 1, one);
    t->zg = fr_tensor_f32(t->z_dev + 1, 1, one);
    t->ps[t->n_f + t->n_b] = (fr_param){"log_z", &t->zv, &t->zg};
    float z[2] = {(float)o->init_log_z, 0.0f};
    FR_TRY(fr_h2d(be, t->z_dev, z, sizeof z));
    const int64_t B = o->batch, N = env->n_states, T = t->T, D = t->D;
    t->seen = fr_calloc((size_t)N, 1);
    t->obs = fr_malloc((size_t)(N * D) * sizeof *t->obs);
    t->obs_r = fr_malloc((size_t)N * sizeof *t->obs_r);
    t->target = fr_malloc((size_t)N * sizeof *t->target);
    t->bact = fr_malloc((size_t)(B * T) * sizeof *t->bact);
    t->blen = fr_malloc((size_t)B * sizeof *t->blen);
    t->bx = fr_malloc((size_t)(B * D) * sizeof *t->bx);
    t->cur = fr_malloc((size_t)(B * D) * sizeof *t->cur);
    t->qs = fr_malloc((size_t)(t->cap * D) * sizeof *t->qs);
    t->qa = fr_malloc((size_t)t->cap * sizeof *t->qa);
    double **d[] = {&t->logr, &t->lpg, &t->fwd, &t->back, &t->pb, &t->gf, &t->gb};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (!(*d[i] = fr_malloc((size_t)B * sizeof(double)))) return FR_ERR_NOMEM;
    t->lpf_q = fr_malloc((size_t)t->cap * sizeof(double));
    t->lpb_q = fr_malloc((size_t)t->cap * sizeof(double));
    t->gq = fr_malloc((size_t)t->cap * sizeof(double));
    if (!t->seen || !t->obs || !t->obs_r || !t->target || !t->bact || !t->blen || !t->bx || !t->cur || !t->qs ||
        !t->qa || !t->lpf_q || !t->lpb_q || !t->gq)
        return FR_ERR_NOMEM;
    return fr_env_target(env, t->target, NULL, NULL, NULL);
}

void fr_gtb_trainer_free(fr_gtb_trainer *t)
{
    if (!t) return;
    fr_gtb_net_free(t->be, &t->net[0]);
    fr_gtb_net_free(t->be, &t->net[1]);
    if (t->be) fr_dev_free(t->be, t->z_dev);
    void *h[] = {t->seen, t->obs, t->obs_r, t->target, t->bact, t->blen, t->bx, t->cur, t->qs, t->qa, t->logr,
                 t->lpg, t->fwd, t->back, t->pb, t->gf, t->gb, t->lpf_q, t->lpb_q, t->gq};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    free(t);
}

int fr_gtb_trainer_params(fr_gtb_trainer *t, fr_param **ps, int *n_f, int *n_b)
{
    *ps = t->ps;
    if (n_f) *n_f = t->n_f;
    if (n_b) *n_b = t->n_b;
    return t->n_f + t->n_b + 1;
}

fr_status fr_gtb_trainer_logp(fr_gtb_trainer *t, int dir, int64_t Q, const int32_t *state, const int32_t *action,
                              double *logp, const double *g)
{
    FR_TRY(fr_gtb_policy_forward(t, dir, Q, state, action, logp));
    return g ? fr_gtb_policy_backward(t, dir, g) : FR_OK;
}

/* A draw among k choices of probabilities exp(lsm) (or p when lsm is NULL), u in [0, 1). */
static int draw(const double *lsm, const double *p, int k, double u)
{
    double c = 0.0;
    for (int j = 0; j < k; j++) {
        c += lsm ? fr_awm_exp(lsm[j]) : p[j];
        if (u < c) return j;
    }
    return k - 1;
}

static void observe(fr_gtb_trainer *t, const int32_t *x)
{
    const fr_env *e = t->env;
    const int64_t i = e->gfn->index(e, x);
    if (t->seen[i]) return;
    t->seen[i] = 1;
    memcpy(t->obs + t->n_obs * t->D, x, (size_t)t->D * sizeof *x);
    t->obs_r[t->n_obs++] = fr_awm_exp(e->gfn->log_reward(e, x));
    t->modes += e->gfn->is_mode(e, x);
}

/* B trajectories from s0 under P_F, ε-uniform over the children (basegfn.py batch_fwd_sample):
 * actions into bact, lengths into blen, x into bx. */
static fr_status sample_forward(fr_gtb_trainer *t, int64_t B, double eps, uint32_t e)
{
    const int D = t->D, A = t->A, T = t->T;
    int32_t *idx = fr_malloc((size_t)B * sizeof *idx);
    if (!idx) return FR_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++) {
        t->env->gfn->initial(t->env, t->cur + b * D);
        t->blen[b] = 0;
    }
    fr_status s = FR_OK;
    for (int step = 0; step < T && s == FR_OK; step++) {
        int64_t Q = 0;
        for (int64_t b = 0; b < B; b++)
            if (t->blen[b] == step && (step == 0 || t->bact[b * T + step - 1] != t->env->exit_action)) {
                memcpy(t->qs + Q * D, t->cur + b * D, (size_t)D * sizeof(int32_t));
                idx[Q++] = (int32_t)b;
            }
        if (Q == 0) break;
        s = fr_gtb_policy_forward(t, 0, Q, t->qs, NULL, NULL);
        for (int64_t q = 0; q < Q && s == FR_OK; q++) {
            const int64_t b = idx[q];
            const int k = t->net[0].k[q];
            const double u0 = fr_rng_uniform(t->o.seed, FR_RNG_GTB_ONLINE, e, (uint32_t)b, (uint32_t)step, 0);
            const double u1 = fr_rng_uniform(t->o.seed, FR_RNG_GTB_ONLINE, e, (uint32_t)b, (uint32_t)step, 1);
            const int j = u0 < eps ? (int)(u1 * k < k ? u1 * k : k - 1) : draw(t->net[0].lsm + q * A, NULL, k, u1);
            const int a = t->net[0].act[q * A + j];
            t->bact[b * T + step] = a;
            t->blen[b] = step + 1;
            if (a != t->env->exit_action) t->env->gfn->step(t->env, t->cur + b * D, a, t->cur + b * D);
        }
    }
    for (int64_t b = 0; b < B; b++) memcpy(t->bx + b * D, t->cur + b * D, (size_t)D * sizeof(int32_t));
    free(idx);
    return s;
}

/* B trajectories back from bx to s0 under P_B (basegfn.py batch_back_sample, no exploration). */
static fr_status sample_backward(fr_gtb_trainer *t, int64_t B, uint32_t e)
{
    const int D = t->D, A = t->A, T = t->T;
    int32_t *idx = fr_malloc((size_t)B * sizeof *idx), *rev = fr_malloc((size_t)(B * T) * sizeof *rev);
    if (!idx || !rev) {
        free(idx);
        free(rev);
        return FR_ERR_NOMEM;
    }
    int32_t s0[16];
    t->env->gfn->initial(t->env, s0);
    for (int64_t b = 0; b < B; b++) {
        memcpy(t->cur + b * D, t->bx + b * D, (size_t)D * sizeof(int32_t));
        t->blen[b] = 0;
    }
    fr_status s = FR_OK;
    for (int step = 0; step < T && s == FR_OK; step++) {
        int64_t Q = 0;
        for (int64_t b = 0; b < B; b++)
            if (t->blen[b] == step && memcmp(t->cur + b * D, s0, (size_t)D * sizeof(int32_t)) != 0) {
                memcpy(t->qs + Q * D, t->cur + b * D, (size_t)D * sizeof(int32_t));
                idx[Q++] = (int32_t)b;
            }
        if (Q == 0) break;
        s = fr_gtb_policy_forward(t, 1, Q, t->qs, NULL, NULL);
        for (int64_t q = 0; q < Q && s == FR_OK; q++) {
            const int64_t b = idx[q];
            const double u = fr_rng_uniform(t->o.seed, FR_RNG_GTB_BACK, e, (uint32_t)b, (uint32_t)step, 0);
            const int a = t->net[1].act[q * A + draw(t->net[1].lsm + q * A, NULL, t->net[1].k[q], u)];
            rev[b * T + step] = a;
            t->blen[b] = step + 1;
            t->env->gfn->back_step(t->env, t->cur + b * D, a, t->cur + b * D);
        }
    }
    for (int64_t b = 0; b < B; b++) { /* forward order, then the exit */
        const int n = t->blen[b];
        for (int i = 0; i < n; i++) t->bact[b * T + i] = rev[b * T + n - 1 - i];
        t->bact[b * T + n] = t->env->exit_action;
        t->blen[b] = n + 1;
    }
    free(idx);
    free(rev);
    return s;
}

/* A guide trajectory to each bx (guide.py guide_sample) with its log-probability into lpg. */
static void sample_guide(fr_gtb_trainer *t, int64_t B, uint32_t e, int u)
{
    const int D = t->D, T = t->T;
    int32_t act[64], node[16];
    double p[64];
    for (int64_t b = 0; b < B; b++) {
        const int32_t *x = t->bx + b * D;
        t->env->gfn->initial(t->env, node);
        double lp = 0.0;
        int n = 0;
        for (;;) {
            /* the uniform guide: no observed x scores, so every valid child is equally likely */
            const int64_t n_obs = t->o.uniform_guide ? 0 : t->n_obs;
            const int k = fr_gtb_guide_probs(t->env, node, x, n_obs, t->obs, t->obs_r, t->o.guide_temperature, act, p);
            const double r = fr_rng_uniform(t->o.seed, FR_RNG_GTB_GUIDE, e, (uint32_t)(2 * b + u), (uint32_t)n, 0);
            const int j = draw(NULL, p, k, r);
            lp += fr_awm_log(p[j]);
            t->bact[b * T + n++] = act[j];
            if (act[j] == t->env->exit_action) break;
            t->env->gfn->step(t->env, node, act[j], node);
        }
        t->blen[b] = n;
        t->lpg[b] = lp;
    }
}

/* trainers.py __biased_sample_xs: B/2 x from those with r >= the 90th percentile, B/2 from r <=
 * it, with replacement (random.choices), into bx; B − 2⌊B/2⌋ trailing slots are dropped. */
static int64_t select_offline(fr_gtb_trainer *t, uint32_t e)
{
    const int64_t n = t->n_obs, half = t->o.batch / 2;
    if (n < 10) return 0;
    const double thr = fr_gtb_percentile90(t->obs_r, n);
    int64_t n_top = 0, n_bot = 0;
    for (int64_t i = 0; i < n; i++) {
        n_top += t->obs_r[i] >= thr;
        n_bot += t->obs_r[i] <= thr;
    }
    for (int64_t b = 0; b < 2 * half; b++) {
        const int top = b < half;
        const int64_t m = top ? n_top : n_bot;
        const double u = fr_rng_uniform(t->o.seed, FR_RNG_GTB_OFFLINE, e, (uint32_t)b, 0, 0);
        int64_t want = (int64_t)(u * (double)m);
        if (want >= m) want = m - 1;
        for (int64_t i = 0; i < n; i++)
            if ((top ? t->obs_r[i] >= thr : t->obs_r[i] <= thr) && want-- == 0) {
                memcpy(t->bx + b * t->D, t->obs + i * t->D, (size_t)t->D * sizeof(int32_t));
                break;
            }
    }
    return 2 * half;
}

fr_status fr_gtb_trainer_grad(fr_gtb_trainer *t, int64_t e, int u, int *trained, double *l_tb, double *l_b)
{
    const int D = t->D, T = t->T;
    const fr_env *env = t->env;
    const uint32_t ep = (uint32_t)e;
    int64_t B = t->o.batch;
    *trained = 0;
    *l_tb = *l_b = NAN;
    if (u == 0) {
        FR_TRY(sample_forward(t, B, t->o.epsilon, ep));
        for (int64_t b = 0; b < B; b++) observe(t, t->bx + b * D);
        if (t->o.guided) sample_guide(t, B, ep, 0);
    } else {
        if ((B = select_offline(t, ep)) == 0) return FR_OK;
        if (t->o.guided)
            sample_guide(t, B, ep, 1);
        else
            FR_TRY(sample_backward(t, B, ep));
    }
    /* the queries: P_F of every step, P_B of every non-exit step */
    int64_t qf = 0, qb = 0;
    int32_t *qbs = fr_malloc((size_t)(t->cap * D) * sizeof *qbs), *qba = fr_malloc((size_t)t->cap * sizeof *qba);
    if (!qbs || !qba) {
        free(qbs);
        free(qba);
        return FR_ERR_NOMEM;
    }
    int32_t s[16];
    for (int64_t b = 0; b < B; b++) {
        env->gfn->initial(env, s);
        for (int i = 0; i < t->blen[b]; i++) {
            const int a = t->bact[b * T + i];
            memcpy(t->qs + qf * D, s, (size_t)D * sizeof *s);
            t->qa[qf++] = a;
            if (a == env->exit_action) break;
            env->gfn->step(env, s, a, s);
            memcpy(qbs + qb * D, s, (size_t)D * sizeof *s);
            qba[qb++] = a;
        }
        t->logr[b] = env->gfn->log_reward(env, t->bx + b * D);
    }
    fr_status st = fr_gtb_policy_forward(t, 0, qf, t->qs, t->qa, t->lpf_q);
    if (st == FR_OK) st = fr_gtb_policy_forward(t, 1, qb, qbs, qba, t->lpb_q);
    free(qbs);
    free(qba);
    FR_TRY(st);
    float z;
    FR_TRY(fr_d2h(t->be, &z, t->z_dev, sizeof z));
    int64_t jf = 0, jb = 0;
    for (int64_t b = 0; b < B; b++) {
        const int n = t->blen[b];
        t->fwd[b] = (double)z;
        t->back[b] = t->logr[b];
        t->pb[b] = 0.0;
        for (int i = 0; i < n; i++) t->fwd[b] += t->lpf_q[jf++];
        for (int i = 0; i < n - 1; i++) {
            t->back[b] += t->lpb_q[jb];
            t->pb[b] += t->lpb_q[jb++];
        }
    }
    fr_gtb_batch gb = {B, t->fwd, t->back, t->pb, t->logr, t->o.guided ? t->lpg : NULL, t->o.w, t->o.pb_target};
    FR_TRY(fr_gtb_loss(&gb, l_tb, l_b, NULL, t->gf, t->gb));
    /* gradients: every step of b carries its chain's coefficient; log Z the sum of g_fwd */
    for (int p = 0; p < t->n_f + t->n_b; p++)
        FR_TRY(fr_dev_zero(t->be, t->ps[p].grad->data, (size_t)fr_tensor_numel(t->ps[p].grad) * sizeof(float)));
    double gz = 0.0;
    jf = jb = 0;
    for (int64_t b = 0; b < B; b++) {
        gz += t->gf[b];
        for (int i = 0; i < t->blen[b]; i++) t->gq[jf++] = t->gf[b];
    }
    FR_TRY(fr_gtb_policy_backward(t, 0, t->gq));
    for (int64_t b = 0; b < B; b++)
        for (int i = 0; i < t->blen[b] - 1; i++) t->gq[jb++] = t->gb[b];
    FR_TRY(fr_gtb_policy_backward(t, 1, t->gq));
    const float g2[1] = {(float)gz};
    FR_TRY(fr_h2d(t->be, t->z_dev + 1, g2, sizeof g2));
    if (t->o.clip_norm > 0.0) { /* basegfn.py: each policy's parameters clipped on their own; log Z not */
        FR_TRY(fr_clip_grad_norm(t->be, t->ps, t->n_f, (float)t->o.clip_norm, NULL));
        FR_TRY(fr_clip_grad_norm(t->be, t->ps + t->n_f, t->n_b, (float)t->o.clip_norm, NULL));
    }
    *trained = 1;
    return FR_OK;
}

fr_status fr_gtb_trainer_clamp_log_z(fr_gtb_trainer *t)
{
    float z;
    FR_TRY(fr_d2h(t->be, &z, t->z_dev, sizeof z));
    const float lo = (float)t->o.log_z_floor;
    if (!(z >= lo)) {
        if (isnan(z)) return fr_fail(FR_ERR_NUMERIC, "guided tb: log Z is NaN");
        z = lo;
        FR_TRY(fr_h2d(t->be, t->z_dev, &z, sizeof z));
    }
    return FR_OK;
}

fr_status fr_gtb_trainer_eval(fr_gtb_trainer *t, double *l1, double *log_z, int64_t *modes, int64_t *observed)
{
    const fr_env *e = t->env;
    const int64_t N = e->n_states, A = t->A, D = t->D;
    if (log_z) {
        float z;
        FR_TRY(fr_d2h(t->be, &z, t->z_dev, sizeof z));
        *log_z = (double)z;
    }
    if (modes) *modes = t->modes;
    if (observed) *observed = t->n_obs;
    if (!l1) return FR_OK;
    double *lp = fr_malloc((size_t)(N * A) * sizeof *lp), *pt = fr_malloc((size_t)N * sizeof *pt);
    fr_status s = lp && pt ? FR_OK : FR_ERR_NOMEM;
    for (int64_t i0 = 0; i0 < N && s == FR_OK; i0 += t->cap) {
        const int64_t Q = N - i0 < t->cap ? N - i0 : t->cap;
        for (int64_t q = 0; q < Q; q++) e->gfn->state_at(e, i0 + q, t->qs + q * D);
        s = fr_gtb_policy_forward(t, 0, Q, t->qs, NULL, NULL);
        for (int64_t q = 0; q < Q && s == FR_OK; q++) {
            double *row = lp + (i0 + q) * A;
            for (int a = 0; a < A; a++) row[a] = -INFINITY;
            for (int j = 0; j < t->net[0].k[q]; j++) row[t->net[0].act[q * A + j]] = t->net[0].lsm[q * A + j];
        }
    }
    if (s == FR_OK) s = fr_env_exact_pt(e, lp, pt);
    if (s == FR_OK) *l1 = fr_env_l1(pt, t->target, N);
    free(lp);
    free(pt);
    return s;
}

fr_status fr_gtb_trainer_save(fr_gtb_trainer *t, fr_st_file *f)
{
    const int64_t n = t->env->n_states + 1;
    fr_tensor v;
    FR_TRY(fr_tensor_alloc(&v, FR_I64, 1, &n));
    int64_t *d = v.data;
    d[0] = t->n_obs;
    for (int64_t i = 0; i + 1 < n; i++) d[i + 1] = i < t->n_obs ? t->env->gfn->index(t->env, t->obs + i * t->D) : -1;
    return fr_st_add_take(f, "gtb.observed", &v);
}

fr_status fr_gtb_trainer_load(fr_gtb_trainer *t, const fr_st_file *f, const char *path)
{
    const int64_t N = t->env->n_states;
    const fr_tensor *v = fr_st_get(f, "gtb.observed");
    if (!v || v->dtype != FR_I64 || v->ndim != 1 || v->shape[0] != N + 1)
        return fr_fail(FR_ERR_FORMAT, "%s: gtb.observed missing or not I64 (%lld,)", path, (long long)(N + 1));
    const int64_t *d = v->data;
    if (d[0] < 0 || d[0] > N) return fr_fail(FR_ERR_FORMAT, "%s: gtb.observed count %lld", path, (long long)d[0]);
    memset(t->seen, 0, (size_t)N);
    t->n_obs = t->modes = 0;
    int32_t x[16];
    for (int64_t i = 0; i < d[0]; i++) {
        if (d[i + 1] < 0 || d[i + 1] >= N) return fr_fail(FR_ERR_FORMAT, "%s: gtb.observed[%lld] out of range", path, (long long)i);
        t->env->gfn->state_at(t->env, d[i + 1], x);
        observe(t, x);
    }
    return FR_OK;
}

fr_status fr_gtb_trainer_digest(fr_gtb_trainer *t, uint64_t *digest, int64_t *n_params)
{
    const int n = t->n_f + t->n_b + 1;
    int64_t total = 0;
    for (int p = 0; p < n; p++) total += fr_tensor_numel(t->ps[p].value);
    float *h = fr_malloc((size_t)total * sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    fr_status s = FR_OK;
    int64_t off = 0;
    for (int p = 0; p < n && s == FR_OK; p++) {
        const int64_t m = fr_tensor_numel(t->ps[p].value);
        s = fr_d2h(t->be, h + off, t->ps[p].value->data, (size_t)m * sizeof *h);
        off += m;
    }
    if (s == FR_OK) *digest = fr_digest_bytes(h, (size_t)total * sizeof *h);
    if (n_params) *n_params = total;
    free(h);
    return s;
}
