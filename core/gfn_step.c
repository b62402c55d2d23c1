/* One GFlowNet iteration (core/gfn_train_internal.h; docs/algorithms/gfn.md §3): sample the batch,
 * the policy's log-probs at ε = 0, the loss of core/gfn_loss.c, its gradient back to the head's
 * logits, the update; FM's own update over the log edge flows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/philox.h"
#include "gfn_train_internal.h"

/* FM (§3.6): rows are, per trajectory b in order, each non-initial state s_k (0 < k < n; torchgfn's
 * intermediary_states include the terminal one)
 * followed by its parents (backward actions in order), then the B terminating states. */
fr_status fr_gfn_fm_step(fr_gfn_trainer *t, fr_gfn_step_info *info)
{
    const fr_env *e = t->env;
    const int64_t B = t->o.batch, T = e->max_steps, D = e->state_dim;
    const int A = t->A, O = t->O;
    int32_t *rows = fr_malloc((size_t)(t->cap * D) * sizeof *rows);
    int64_t *srow = fr_malloc((size_t)(B * T) * sizeof *srow);
    int32_t *n_in = fr_malloc((size_t)(B * T) * sizeof *n_in), *n_out = fr_malloc((size_t)(B * T) * sizeof *n_out);
    double *fin = fr_malloc((size_t)(B * T * D) * sizeof *fin), *fout = fr_malloc((size_t)(B * T * A) * sizeof *fout);
    double *gin = fr_malloc((size_t)(B * T * D) * sizeof *gin), *gout = fr_malloc((size_t)(B * T * A) * sizeof *gout);
    double *fx = fr_malloc((size_t)B * sizeof *fx), *gx = fr_malloc((size_t)B * sizeof *gx);
    fr_status s = rows && srow && n_in && n_out && fin && fout && gin && gout && fx && gx ? FR_OK : FR_ERR_NOMEM;
    int64_t R = 0, M = 0;
    uint8_t m[GFN_MAX_A];
    for (int64_t b = 0; b < B && s == FR_OK; b++)
        for (int64_t k = 1; k < t->len[b]; k++) {
            const int32_t *sk = t->st + (b * T + k) * D;
            srow[M] = R;
            memcpy(rows + R * D, sk, (size_t)D * sizeof *rows);
            R++;
            e->gfn->backward_mask(e, sk, m);
            n_in[M] = 0;
            for (int d = 0; d < A - 1; d++)
                if (m[d]) {
                    e->gfn->back_step(e, sk, d, rows + R * D);
                    R++;
                    n_in[M]++;
                }
            M++;
        }
    const int64_t xrow = R;
    for (int64_t b = 0; b < B && s == FR_OK; b++) {
        memcpy(rows + R * D, t->st + (b * T + t->len[b] - 1) * D, (size_t)D * sizeof *rows);
        R++;
    }
    if (s == FR_OK) s = fr_gfn_net_rows(t, R, rows);
    int64_t oi = 0, oo = 0;
    for (int64_t j = 0; j < M && s == FR_OK; j++) {
        const int64_t r = srow[j];
        int c = 0;
        e->gfn->backward_mask(e, rows + r * D, m);
        for (int d = 0; d < A - 1; d++)
            if (m[d]) fin[oi++] = (double)t->out_h[(r + 1 + c++) * O + d]; /* log F(parent → s) via action d */
        e->gfn->forward_mask(e, rows + r * D, m);
        n_out[j] = 0;
        for (int a = 0; a < A; a++)
            if (m[a]) {
                fout[oo++] = (double)t->out_h[r * O + a];
                n_out[j]++;
            }
    }
    for (int64_t b = 0; b < B && s == FR_OK; b++) fx[b] = (double)t->out_h[(xrow + b) * O + e->exit_action];
    double loss = 0.0;
    if (s == FR_OK) s = fr_gfn_fm_loss(M, n_in, fin, n_out, fout, B, fx, t->logr, 1.0, &loss, gin, gout, gx);
    if (s == FR_OK) {
        memset(t->dout_h, 0, (size_t)(R * O) * sizeof(float));
        oi = oo = 0;
        for (int64_t j = 0; j < M; j++) {
            const int64_t r = srow[j];
            int c = 0;
            e->gfn->backward_mask(e, rows + r * D, m);
            for (int d = 0; d < A - 1; d++)
                if (m[d]) t->dout_h[(r + 1 + c++) * O + d] = (float)gin[oi++];
            e->gfn->forward_mask(e, rows + r * D, m);
            for (int a = 0; a < A; a++)
                if (m[a]) t->dout_h[r * O + a] = (float)gout[oo++];
        }
        for (int64_t b = 0; b < B; b++) t->dout_h[(xrow + b) * O + e->exit_action] = (float)gx[b];
        s = fr_gfn_net_update(t, R, 0.0);
    }
    void *host[] = {rows, srow, n_in, n_out, fin, fout, gin, gout, fx, gx};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
    if (s == FR_OK && info) {
        info->iteration = t->iter;
        info->trajectories = t->trajectories;
        info->loss = loss;
        info->modes_found = t->modes_found;
        info->ls_accepted = 0;
        info->log_z = NAN;
    }
    return s;
}

fr_status fr_gfn_trainer_step(fr_gfn_trainer *t, fr_gfn_step_info *info)
{
    const fr_env *e = t->env;
    const int64_t T = e->max_steps, D = e->state_dim;
    const int A = t->A, O = t->O;
    if (t->nc > 0) fr_gfn_draw_prefs(t); /* §13: each trajectory's ω */
    if (t->nc > 0) FR_TRY(fr_gfn_draw_betas(t)); /* and its β when drawn */
    if (t->o.outcome) fr_gfn_oc_draw_goals(t); /* OC-GFN: each trajectory's outcome y (core/gfn_oc.c) */
    FR_TRY(fr_gfn_sample(t, FR_RNG_GFN_ACTION, (uint32_t)t->iter, t->o.epsilon, t->o.temperature, t->o.sf_bias));
    for (int64_t b = 0; b < t->o.batch; b++) fr_gfn_visit(t, t->st + (b * T + t->len[b] - 1) * D); /* modes: the fresh trajectories */
    int64_t accepted = 0;
    if (t->o.ls_rounds > 0) FR_TRY(fr_gfn_local_search(t, &accepted)); /* slots [batch, 2 batch): the refined ones */
    const int64_t B = t->nb;
    /* the visited states s_0 .. s_{n−1} of every trajectory as rows, in (b, k) order */
    int64_t R = 0;
    int32_t *rows = fr_malloc((size_t)(B * T * D) * sizeof *rows);
    int64_t *first = fr_malloc((size_t)B * sizeof *first);
    if (!rows || !first) {
        free(rows);
        free(first);
        return FR_ERR_NOMEM;
    }
    fr_status s = t->o.replay > 0 ? fr_gfn_replay(t) : FR_OK;
    if (t->o.outcome) fr_gfn_oc_relabel(t); /* OC-GFN: hindsight y := x on a coin */
    const int need_rs = t->o.forward_looking || t->o.loss == FR_GFN_MDB;
    for (int64_t b = 0; b < B && s == FR_OK; b++) {
        first[b] = R;
        memcpy(rows + R * D, t->st + b * T * D, (size_t)(t->len[b] * D) * sizeof *rows);
        for (int64_t k = 0; t->ncw > 0 && k < t->len[b]; k++) fr_gfn_cond_row(t, R + k, t->pref + b * t->ncw);
        R += t->len[b];
        t->logr[b] = t->o.outcome ? fr_gfn_oc_log_reward(t, b)
                     : t->nc > 0 ? fr_gfn_mo_log_reward(t, t->st + (b * T + t->len[b] - 1) * D, t->pref + b * t->ncw,
                                                      t->beta_b[b])
                               : fr_gfn_log_reward(t, t->st + (b * T + t->len[b] - 1) * D);
        for (int64_t k = 0; need_rs && k < t->len[b]; k++) t->logrs[b * T + k] = fr_gfn_log_reward(t, t->st + (b * T + k) * D);
    }
    if (s == FR_OK && t->o.loss == FR_GFN_FM) {
        free(rows);
        free(first);
        return fr_gfn_fm_step(t, info);
    }
    if (s == FR_OK && t->prior) { /* RTB: the frozen prior's log P_F of each action */
        s = fr_gfn_net_rows(t->prior, R, rows);
        for (int64_t b = 0; b < B && s == FR_OK; b++)
            for (int64_t k = 0; k < t->len[b]; k++) {
                const int64_t r = first[b] + k;
                uint8_t m[GFN_MAX_A];
                double lsm[GFN_MAX_A];
                e->gfn->forward_mask(e, rows + r * D, m);
                fr_gfn_log_softmax(t->prior->out_h + r * O, m, A, lsm);
                t->logprior[b * T + k] = lsm[t->act[b * T + k]];
            }
    }
    if (s == FR_OK) s = fr_gfn_net_rows(t, R, rows);
    float zf[2];
    if (s == FR_OK) s = fr_d2h(t->be, zf, t->z_dev, sizeof zf);
    if (s != FR_OK) {
        free(rows);
        free(first);
        return s;
    }
    /* log-probs under the current policy (ε = 0, §2), float64 */
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < t->len[b]; k++) {
            const int64_t r = first[b] + k;
            uint8_t m[GFN_MAX_A];
            double lsm[GFN_MAX_A];
            e->gfn->forward_mask(e, rows + r * D, m);
            fr_gfn_log_softmax(t->out_h + r * O, m, A, lsm);
            t->logpf[b * T + k] = lsm[t->act[b * T + k]];
            t->logpfx[b * T + k] = lsm[e->exit_action];
            if (t->f_col >= 0) t->logf[b * T + k] = (double)t->out_h[r * O + t->f_col];
            if (k + 1 < t->len[b]) { /* P_B(s_k | s_{k+1}) through the same action */
                e->gfn->backward_mask(e, rows + (r + 1) * D, m);
                if (t->pb_col >= 0) {
                    fr_gfn_log_softmax(t->out_h + (r + 1) * O + t->pb_col, m, A - 1, lsm);
                    t->logpb[b * T + k] = lsm[t->act[b * T + k]];
                } else {
                    int n = 0;
                    for (int a = 0; a < A - 1; a++) n += m[a];
                    t->logpb[b * T + k] = -fr_awm_log((double)n);
                }
            }
        }
    const int mdb = t->o.loss == FR_GFN_MDB;
    fr_gfn_batch gb = {.B = B, .L = T, .len = t->len, .logpf = t->logpf, .logpb = t->logpb,
                       .logf = t->f_col >= 0 ? t->logf : NULL, .logr = t->logr, .log_z = (double)zf[0],
                       .lambda = t->o.lambda, .logrs = need_rs ? t->logrs : NULL, .logpf_exit = mdb ? t->logpfx : NULL,
                       .logprior = t->prior ? t->logprior : NULL, .beta = t->o.beta,
                       .forward_looking = t->o.forward_looking, .weighting = t->o.weighting,
                       .regression = t->o.regression, .linex_alpha = t->o.linex_alpha, .perm = t->perm, .util = t->util};
    if (t->o.loss == FR_GFN_OP) { /* OP-GFN (§9): the reward enters only through comparisons of u = log R */
        fr_rng_perm(t->perm, B, t->o.seed, FR_RNG_GFN_OP_PAIR, (uint32_t)t->iter, 0);
        memcpy(t->util, t->logr, (size_t)B * sizeof *t->util);
    }
    fr_gfn_grad g = {.logpf = t->gpf, .logpb = t->gpb, .logf = t->f_col >= 0 ? t->gf : NULL,
                     .logpf_exit = mdb ? t->gpfx : NULL};
    double loss = 0.0;
    s = fr_gfn_loss(t->o.loss, &gb, &loss, NULL, &g);
    /* the logits' gradient: d lsm[a] / d z_j = δ_aj − softmax_j over the allowed j */
    memset(t->dout_h, 0, (size_t)(R * O) * sizeof(float));
    /* OP-GFN's KL(P_B ‖ uniform) term: kl_weight · the mean over the R − B states s_k, k >= 1 */
    const double kw = t->pb_col >= 0 ? t->o.kl_weight : 0.0, kl_n = (double)(R - B);
    double kl_sum = 0.0;
    double *dz = fr_calloc((size_t)O, sizeof *dz);
    if (s == FR_OK && !dz) s = FR_ERR_NOMEM;
    for (int64_t b = 0; b < B && s == FR_OK; b++)
        for (int64_t k = 0; k < t->len[b]; k++) {
            const int64_t r = first[b] + k;
            const int a = t->act[b * T + k];
            uint8_t m[GFN_MAX_A];
            double lsm[GFN_MAX_A];
            memset(dz, 0, (size_t)O * sizeof *dz);
            e->gfn->forward_mask(e, rows + r * D, m);
            fr_gfn_log_softmax(t->out_h + r * O, m, A, lsm);
            const double gp = t->gpf[b * T + k];
            for (int j = 0; j < A; j++)
                if (m[j]) dz[j] = gp * ((j == a ? 1.0 : 0.0) - fr_awm_exp(lsm[j]));
            if (mdb) { /* MDB: log P_F(exit | s_k) enters too */
                const double gx = t->gpfx[b * T + k];
                for (int j = 0; j < A; j++)
                    if (m[j]) dz[j] += gx * ((j == e->exit_action ? 1.0 : 0.0) - fr_awm_exp(lsm[j]));
            }
            if (t->f_col >= 0) dz[t->f_col] = t->gf[b * T + k];
            /* row r's P_B head is the backward policy at s_k of the edge s_{k−1} → s_k */
            if (t->pb_col >= 0 && k > 0) {
                const int ap = t->act[b * T + k - 1];
                const double gb2 = t->gpb[b * T + k - 1];
                e->gfn->backward_mask(e, rows + r * D, m);
                fr_gfn_log_softmax(t->out_h + r * O + t->pb_col, m, A - 1, lsm);
                for (int j = 0; j < A - 1; j++)
                    if (m[j]) dz[t->pb_col + j] = gb2 * ((j == ap ? 1.0 : 0.0) - fr_awm_exp(lsm[j]));
                if (kw > 0.0) {
                    double gk[GFN_MAX_A];
                    kl_sum += fr_gfn_kl_uniform(lsm, m, A - 1, gk);
                    for (int j = 0; j < A - 1; j++) dz[t->pb_col + j] += (kw / kl_n) * gk[j];
                }
            }
            for (int j = 0; j < O; j++) t->dout_h[r * O + j] = (float)dz[j];
        }
    free(dz);
    free(rows);
    free(first);
    if (s != FR_OK) return s;
    if (kw > 0.0 && kl_n > 0.0) loss += kw * (kl_sum / kl_n);
    FR_TRY(fr_gfn_net_update(t, R, g.log_z));
    if (info) {
        info->iteration = t->iter;
        info->trajectories = t->trajectories;
        info->loss = loss;
        info->modes_found = t->modes_found;
        info->ls_accepted = accepted;
        info->log_z = NAN; /* fr_gfn_trainer_grad: the caller reads it after its optimiser step */
        if (!t->grad_only) FR_TRY(fr_gfn_trainer_log_z(t, &info->log_z));
    }
    return FR_OK;
}

fr_status fr_gfn_trainer_grad(fr_gfn_trainer *t, fr_gfn_step_info *info)
{
    t->grad_only = 1;
    fr_status s = fr_gfn_trainer_step(t, info);
    t->grad_only = 0;
    return s;
}
