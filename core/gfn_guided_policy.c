/* The sa and ssr policy networks of the guided-TB trainer on HyperGrid (flowrl/gfn_guided.h;
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
#include "flowrl/philox.h"
#include "core/gfn_guided_internal.h"

/* ---- the policy ------------------------------------------------------------------------------ */

fr_status fr_gtb_net_new(fr_gtb_trainer *t, gtb_net *n, int dir)
{
    const fr_gtb_opts *o = &t->o;
    const int L = (int)o->n_hidden + 1, A = t->A;
    int64_t dim[FR_MLP_MAX_LAYERS + 1];
    char name[32];
    n->ssr = o->policy == FR_GTB_SSR;
    n->n_out = dir == 0 ? A : A - 1;
    const int64_t rows_e = t->cap * (1 + A), rows_s = t->cap * A;
    for (int l = 1; l < L; l++) dim[l] = o->hidden;
    if (!n->ssr) {
        dim[0] = t->O;
        dim[L] = n->n_out;
        snprintf(name, sizeof name, "%s", dir == 0 ? "pf" : "pb");
        FR_TRY(fr_mlp_new(&n->head, t->be, name, L, dim, FR_ACT_RELU, t->cap));
        FR_TRY(fr_mlp_init_params(&n->head, o->seed, GTB_INIT_STREAM + 2 * dir, 1.0f));
    } else {
        dim[0] = t->O + 1;
        dim[L] = o->embed;
        snprintf(name, sizeof name, "%s.enc", dir == 0 ? "pf" : "pb");
        FR_TRY(fr_mlp_new(&n->enc, t->be, name, L, dim, FR_ACT_RELU, rows_e));
        FR_TRY(fr_mlp_init_params(&n->enc, o->seed, GTB_INIT_STREAM + 2 * dir, 1.0f));
        dim[0] = 2 * o->embed;
        dim[L] = 1;
        snprintf(name, sizeof name, "%s.scorer", dir == 0 ? "pf" : "pb");
        FR_TRY(fr_mlp_new(&n->head, t->be, name, L, dim, FR_ACT_RELU, rows_s));
        FR_TRY(fr_mlp_init_params(&n->head, o->seed, GTB_INIT_STREAM + 2 * dir + 1, 1.0f));
        n->dx = fr_dev_floats(t->be, rows_s * 2 * o->embed);
        if (!n->dx) return FR_ERR_NOMEM;
    }
    const int64_t in_w = n->ssr ? (t->O + 1 > 2 * o->embed ? t->O + 1 : 2 * o->embed) : t->O;
    const int64_t rows = n->ssr ? rows_e : t->cap, out_w = n->ssr ? o->embed : n->n_out;
    n->k = fr_malloc((size_t)t->cap * sizeof *n->k);
    n->chosen = fr_malloc((size_t)t->cap * sizeof *n->chosen);
    n->act = fr_malloc((size_t)(t->cap * A) * sizeof *n->act);
    n->lsm = fr_malloc((size_t)(t->cap * A) * sizeof *n->lsm);
    n->clipped = fr_malloc((size_t)(t->cap * A));
    n->in_h = fr_malloc((size_t)(rows * in_w) * sizeof(float));
    n->out_h = fr_malloc((size_t)(rows * out_w) * sizeof(float));
    n->dout_h = fr_malloc((size_t)(rows * out_w) * sizeof(float));
    n->dx_h = n->ssr ? fr_malloc((size_t)(rows_s * 2 * o->embed) * sizeof(float)) : NULL;
    if (!n->k || !n->chosen || !n->act || !n->lsm || !n->clipped || !n->in_h || !n->out_h || !n->dout_h ||
        (n->ssr && !n->dx_h))
        return FR_ERR_NOMEM;
    return FR_OK;
}

void fr_gtb_net_free(fr_backend *be, gtb_net *n)
{
    fr_mlp_free(&n->head);
    if (n->ssr) fr_mlp_free(&n->enc);
    if (be) fr_dev_free(be, n->dx);
    void *h[] = {n->k, n->chosen, n->act, n->lsm, n->clipped, n->in_h, n->out_h, n->dout_h, n->dx_h};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
}

/* The choices of s in direction dir: actions into act, the states they lead to into st (k, D) with
 * their terminal flags in term; returns k. */
int fr_gtb_choices(const fr_gtb_trainer *t, int dir, const int32_t *s, int32_t *act, int32_t *st, uint8_t *term)
{
    const fr_env *e = t->env;
    uint8_t mask[64];
    int k = 0;
    if (dir == 0) {
        e->gfn->forward_mask(e, s, mask);
        for (int a = 0; a < t->A; a++) {
            if (!mask[a]) continue;
            act[k] = a;
            term[k] = a == e->exit_action;
            if (term[k])
                memcpy(st + k * t->D, s, (size_t)t->D * sizeof *s);
            else
                e->gfn->step(e, s, a, st + k * t->D);
            k++;
        }
    } else {
        e->gfn->backward_mask(e, s, mask);
        for (int a = 0; a < t->A - 1; a++) {
            if (!mask[a]) continue;
            act[k] = a;
            term[k] = 0;
            e->gfn->back_step(e, s, a, st + k * t->D);
            k++;
        }
    }
    return k;
}

/* enc(s) ‖ terminal (ssr) or enc(s) (sa) into row. */
void fr_gtb_encode(const fr_gtb_trainer *t, const int32_t *s, int term, int ssr, float *row)
{
    t->env->gfn->encode(t->env, s, row);
    if (ssr) row[t->O] = (float)term;
}

/* Forward of Q queries (state (Q, D), chosen action (Q,) or NULL): log-softmax over each query's
 * choices into n->lsm, log-prob of the chosen one into logp (may be NULL). */
fr_status fr_gtb_policy_forward(fr_gtb_trainer *t, int dir, int64_t Q, const int32_t *state, const int32_t *action,
                                double *logp)
{
    gtb_net *n = &t->net[dir];
    const int A = t->A, D = t->D, E = (int)t->o.embed;
    const double c = t->o.logit_clip;
    if (Q > t->cap) return fr_fail(FR_ERR_ARG, "guided tb: %lld queries, capacity %lld", (long long)Q, (long long)t->cap);
    int32_t st[64 * 16];
    uint8_t term[64];
    n->Q = Q;
    int64_t re = 0, rs = 0;
    for (int64_t q = 0; q < Q; q++) {
        const int32_t *s = state + q * D;
        const int k = fr_gtb_choices(t, dir, s, n->act + q * A, st, term);
        if (k < 1) return fr_fail(FR_ERR_ARG, "guided tb: a query state has no %s", dir == 0 ? "child" : "parent");
        n->k[q] = k;
        n->chosen[q] = -1;
        for (int j = 0; action && j < k; j++)
            if (n->act[q * A + j] == action[q]) n->chosen[q] = j;
        if (action && n->chosen[q] < 0) return fr_fail(FR_ERR_ARG, "guided tb: action %d not allowed", (int)action[q]);
        if (!n->ssr) {
            fr_gtb_encode(t, s, 0, 0, n->in_h + q * t->O);
            continue;
        }
        fr_gtb_encode(t, s, 0, 1, n->in_h + re++ * (t->O + 1));
        for (int j = 0; j < k; j++) fr_gtb_encode(t, st + j * D, term[j], 1, n->in_h + re++ * (t->O + 1));
        rs += k;
    }
    float *logit = n->out_h; /* sa: (Q, n_out); ssr: the scorer's (rows_s,) after the encoder's pass */
    if (!n->ssr) {
        FR_TRY(fr_mlp_forward_host(&n->head, Q, n->in_h, n->out_h));
    } else {
        FR_TRY(fr_mlp_forward_host(&n->enc, re, n->in_h, n->out_h));
        float *sin = n->in_h; /* the encoder's input is spent: the scorer's (rs, 2E) (rows_e·max(O + 1, 2E) floats) */
        int64_t e0 = 0, r = 0;
        for (int64_t q = 0; q < Q; q++) {
            for (int j = 0; j < n->k[q]; j++, r++) {
                memcpy(sin + r * 2 * E, n->out_h + e0 * E, (size_t)E * sizeof(float));
                memcpy(sin + r * 2 * E + E, n->out_h + (e0 + 1 + j) * E, (size_t)E * sizeof(float));
            }
            e0 += 1 + n->k[q];
        }
        FR_TRY(fr_mlp_forward_host(&n->head, rs, sin, n->dx_h));
        logit = n->dx_h;
    }
    n->rows_e = re;
    n->rows_s = rs;
    int64_t r = 0;
    for (int64_t q = 0; q < Q; q++) {
        const int k = n->k[q];
        double *l = n->lsm + q * A, mx = -INFINITY, z = 0.0;
        for (int j = 0; j < k; j++) {
            const double v = n->ssr ? (double)logit[r + j] : (double)logit[q * n->n_out + n->act[q * A + j]];
            n->clipped[q * A + j] = v < -c || v > c;
            l[j] = v < -c ? -c : v > c ? c : v;
            if (l[j] > mx) mx = l[j];
        }
        for (int j = 0; j < k; j++) z += fr_awm_exp(l[j] - mx);
        const double lse = mx + fr_awm_log(z);
        for (int j = 0; j < k; j++) l[j] -= lse;
        if (logp) logp[q] = l[n->chosen[q]];
        r += k;
    }
    return FR_OK;
}

/* Σ_q g[q]·logp[q] of the last forward into the parameters' grads (added). */
fr_status fr_gtb_policy_backward(fr_gtb_trainer *t, int dir, const double *g)
{
    gtb_net *n = &t->net[dir];
    const int A = t->A, E = (int)t->o.embed;
    const int64_t Q = n->Q;
    if (!n->ssr) {
        memset(n->dout_h, 0, (size_t)(Q * n->n_out) * sizeof(float));
        for (int64_t q = 0; q < Q; q++)
            for (int j = 0; j < n->k[q]; j++) {
                const double d = g[q] * ((j == n->chosen[q]) - fr_awm_exp(n->lsm[q * A + j]));
                n->dout_h[q * n->n_out + n->act[q * A + j]] = n->clipped[q * A + j] ? 0.0f : (float)d;
            }
        return fr_mlp_backward_host(&n->head, Q, n->dout_h);
    }
    int64_t r = 0;
    for (int64_t q = 0; q < Q; q++)
        for (int j = 0; j < n->k[q]; j++, r++) {
            const double d = g[q] * ((j == n->chosen[q]) - fr_awm_exp(n->lsm[q * A + j]));
            n->dout_h[r] = n->clipped[q * A + j] ? 0.0f : (float)d;
        }
    FR_TRY(fr_h2d(t->be, n->head.dout, n->dout_h, (size_t)n->rows_s * sizeof(float)));
    fr_mlp_backward(&n->head, n->rows_s, n->dx);
    FR_TRY(fr_d2h(t->be, n->dx_h, n->dx, (size_t)(n->rows_s * 2 * E) * sizeof(float)));
    /* the embeddings' gradient: z(s) gathers every choice's first half, z(choice) its second */
    memset(n->dout_h, 0, (size_t)(n->rows_e * E) * sizeof(float));
    int64_t e0 = 0;
    r = 0;
    for (int64_t q = 0; q < Q; q++) {
        for (int j = 0; j < n->k[q]; j++, r++)
            for (int i = 0; i < E; i++) {
                n->dout_h[e0 * E + i] += n->dx_h[r * 2 * E + i];
                n->dout_h[(e0 + 1 + j) * E + i] += n->dx_h[r * 2 * E + E + i];
            }
        e0 += 1 + n->k[q];
    }
    return fr_mlp_backward_host(&n->enc, n->rows_e, n->dout_h);
}
