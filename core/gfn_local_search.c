/* Local search GFlowNets (docs/algorithms/gfn.md §10; spec gflownets.md §10; Kim et al., ICLR 2024,
 * as torchgfn GFNOrg/torchgfn@f39bfc96 src/gfn/samplers.py LocalSearchSampler computes it): each
 * fresh trajectory τ with terminal state x is refined o.ls_rounds times by back-and-forth search:
 *   1. a whole backward trajectory τ_B from x to s0 drawn with P_B (Philox (seed,
 *      FR_RNG_GFN_LS_BACK, iteration, trajectory, step, round));
 *   2. K = ⌈α·(n − 1)⌉ (n: the actions of the searched τ, exit included), the junction the state of
 *      τ_B K steps before x; τ' = τ_B's prefix up to it, rebuilt with P_F (ε 0, temperature 1;
 *      Philox (seed, FR_RNG_GFN_LS_FWD, iteration, trajectory, step, round)) to a new x';
 *   3. accept τ' greedily (log R(x) <= log R(x'), torchgfn's default) or by Metropolis–Hastings
 *      (fr_gfn_ls_accept, u = Philox (seed, FR_RNG_GFN_LS_ACCEPT, iteration, trajectory, 0, round));
 *      an accepted τ' is the next round's τ.
 * The batch trains on the fresh trajectories and the refined ones (the last accepted, else the
 * fresh one): "the union of the sampled and the refined trajectories" (spec §10). torchgfn's
 * sampler instead appends every reconstruction, accepted or not, and uses acceptance only to
 * choose what the next round searches from. Every reconstruction evaluates R at its x', so each
 * counts as a sample (t->trajectories) and toward the modes found. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/philox.h"
#include "gfn_train_internal.h"

int fr_gfn_ls_accept(int mh, double logr_new, double logr_old, double lpb_old, double lpf_new, double lpb_new,
                     double lpf_old, double u, double *log_a)
{
    double la = logr_new + lpb_old + lpf_new - logr_old - lpb_new - lpf_old;
    if (la > 0.0) la = 0.0; /* torch.clamp_max(…, 0) */
    if (log_a) *log_a = la;
    if (!mh) return logr_old <= logr_new;
    return u < fr_awm_exp(la); /* torch.rand(…) < exp(log A); a NaN ratio rejects */
}

/* log P_B(· | s) over the non-exit actions into lsm (A − 1,) from the network's row out (learned
 * head) or uniform over the parents; returns the number of parents. */
static int pb_row(const fr_gfn_trainer *t, const float *out, const int32_t *s, double *lsm)
{
    uint8_t m[GFN_MAX_A];
    const int A = t->A;
    t->env->gfn->backward_mask(t->env, s, m);
    int n = 0;
    for (int a = 0; a < A - 1; a++) n += m[a];
    if (n == 0) return 0;
    if (t->pb_col >= 0) {
        fr_gfn_log_softmax(out + t->pb_col, m, A - 1, lsm);
    } else {
        for (int a = 0; a < A - 1; a++) lsm[a] = m[a] ? -fr_awm_log((double)n) : -INFINITY;
    }
    return n;
}

/* Step 1: τ_B of every trajectory b (terminal state of slot base + b) into lb_st / lb_act / lb_len,
 * with log P_B(s_k | s_{k+1}) in lb_lpb, in forward order (s0 first, the exit last). */
static fr_status backtrack(fr_gfn_trainer *t, int64_t base, uint32_t round)
{
    const fr_env *e = t->env;
    const int64_t B = t->o.batch, T = e->max_steps, D = e->state_dim;
    int32_t *rows = t->ln_st; /* scratch: rebuilt later */
    int64_t *who = t->perm;   /* scratch (bcap >= B) */
    /* reversed first: lb_st[b, j] the state j backward steps before x */
    for (int64_t b = 0; b < B; b++) {
        memcpy(t->lb_st + b * T * D, t->st + ((base + b) * T + t->len[base + b] - 1) * D, (size_t)D * sizeof(int32_t));
        t->lb_len[b] = -1;
    }
    fr_status s = FR_OK;
    for (int64_t j = 0; j < T && s == FR_OK; j++) {
        int64_t R = 0;
        for (int64_t b = 0; b < B; b++)
            if (t->lb_len[b] < 0) {
                memcpy(rows + R * D, t->lb_st + (b * T + j) * D, (size_t)D * sizeof *rows);
                who[R++] = b;
            }
        if (R == 0) break;
        if (t->pb_col >= 0) s = fr_gfn_net_rows(t, R, rows);
        for (int64_t r = 0; r < R && s == FR_OK; r++) {
            const int64_t b = who[r];
            const int32_t *sj = t->lb_st + (b * T + j) * D;
            double lsm[GFN_MAX_A];
            if (pb_row(t, t->out_h + r * t->O, sj, lsm) == 0) { /* s0: j backward steps */
                t->lb_len[b] = (int32_t)(j + 1);
                continue;
            }
            if (j == T - 1) {
                s = fr_fail(FR_ERR_ARG, "gfn: local search: %s: no s0 within %lld backward steps", e->desc, (long long)T);
                break;
            }
            const double u = ((double)fr_rng_u32(t->o.seed, FR_RNG_GFN_LS_BACK, (uint32_t)t->iter, (uint32_t)b,
                                                  (uint32_t)j, round) + 0.5) * (1.0 / 4294967296.0);
            double cum = 0.0;
            int pick = -1;
            for (int a = 0; a < t->A - 1; a++) {
                if (lsm[a] == -INFINITY) continue;
                cum += fr_awm_exp(lsm[a]);
                pick = a;
                if (u < cum) break;
            }
            t->lb_act[b * T + j] = pick;
            t->lb_lpb[b * T + j] = lsm[pick];
            e->gfn->back_step(e, sj, pick, t->lb_st + (b * T + j + 1) * D);
        }
    }
    /* reverse to forward order: m = len − 1 non-exit steps, state k = reversed state m − k,
     * action k (s_k → s_{k+1}) = reversed action m − 1 − k, the exit at k = m */
    for (int64_t b = 0; b < B && s == FR_OK; b++) {
        const int64_t m = t->lb_len[b] - 1;
        int32_t *sb = t->lb_st + b * T * D, *ab = t->lb_act + b * T;
        double *pb = t->lb_lpb + b * T;
        for (int64_t k = 0; k < m - k; k++)
            for (int64_t d = 0; d < D; d++) {
                const int32_t v = sb[k * D + d];
                sb[k * D + d] = sb[(m - k) * D + d];
                sb[(m - k) * D + d] = v;
            }
        for (int64_t k = 0; k < m - 1 - k; k++) {
            const int32_t a = ab[k];
            ab[k] = ab[m - 1 - k];
            ab[m - 1 - k] = a;
            const double p = pb[k];
            pb[k] = pb[m - 1 - k];
            pb[m - 1 - k] = p;
        }
        ab[m] = e->exit_action;
    }
    return s;
}

/* Step 3's Metropolis–Hastings log-probs under the current policy: lpf_old[b] = Σ log P_F of τ_B
 * from the junction k0[b] to its exit, lpb_new[b] = Σ log P_B of τ' from k0[b] to x'. */
static fr_status mh_terms(fr_gfn_trainer *t, double *lpf_old, double *lpb_new)
{
    const fr_env *e = t->env;
    const int64_t B = t->o.batch, T = e->max_steps, D = e->state_dim;
    int64_t R = 0;
    int32_t *buf = fr_malloc((size_t)(2 * B * T * D) * sizeof *buf);
    if (!buf) return FR_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++) { /* τ_B's states k0 .. m, then τ''s states k0 + 1 .. len' − 1 */
        for (int64_t k = t->ls_k0[b]; k < t->lb_len[b]; k++, R++)
            memcpy(buf + R * D, t->lb_st + (b * T + k) * D, (size_t)D * sizeof *buf);
        for (int64_t k = t->ls_k0[b] + 1; k < t->ln_len[b]; k++, R++)
            memcpy(buf + R * D, t->ln_st + (b * T + k) * D, (size_t)D * sizeof *buf);
    }
    fr_status s = fr_gfn_net_rows(t, R, buf);
    R = 0;
    for (int64_t b = 0; b < B && s == FR_OK; b++) {
        double lsm[GFN_MAX_A];
        uint8_t m[GFN_MAX_A];
        lpf_old[b] = 0.0;
        lpb_new[b] = 0.0;
        for (int64_t k = t->ls_k0[b]; k < t->lb_len[b]; k++, R++) {
            e->gfn->forward_mask(e, buf + R * D, m);
            fr_gfn_log_softmax(t->out_h + R * t->O, m, t->A, lsm);
            lpf_old[b] += lsm[t->lb_act[b * T + k]];
        }
        for (int64_t k = t->ls_k0[b] + 1; k < t->ln_len[b]; k++, R++) { /* P_B(s_{k−1} | s_k) */
            pb_row(t, t->out_h + R * t->O, buf + R * D, lsm);
            lpb_new[b] += lsm[t->ln_act[b * T + k - 1]];
        }
    }
    free(buf);
    return s;
}

fr_status fr_gfn_local_search(fr_gfn_trainer *t, int64_t *accepted)
{
    const fr_env *e = t->env;
    const int64_t B = t->o.batch, T = e->max_steps, D = e->state_dim;
    int64_t acc = 0;
    /* the refined slots start as the fresh trajectories */
    memcpy(t->st + B * T * D, t->st, (size_t)(B * T * D) * sizeof(int32_t));
    memcpy(t->act + B * T, t->act, (size_t)(B * T) * sizeof(int32_t));
    memcpy(t->len + B, t->len, (size_t)B * sizeof(int32_t));
    double *lpf_old = fr_malloc((size_t)(2 * B) * sizeof *lpf_old), *lpb_new = lpf_old + B;
    fr_status s = lpf_old ? FR_OK : FR_ERR_NOMEM;
    for (int64_t round = 0; round < t->o.ls_rounds && s == FR_OK; round++) {
        s = backtrack(t, B, (uint32_t)round);
        for (int64_t b = 0; b < B && s == FR_OK; b++) {
            /* K = ⌈α (n − 1)⌉ of the searched τ; the junction K steps before x on τ_B */
            const int64_t n = t->len[B + b], K = (int64_t)ceil(t->o.ls_back_ratio * (double)(n - 1));
            int64_t k0 = t->lb_len[b] - 1 - K;
            k0 = k0 < 0 ? 0 : k0;
            t->ls_k0[b] = (int32_t)k0;
            memcpy(t->ln_st + b * T * D, t->lb_st + b * T * D, (size_t)((k0 + 1) * D) * sizeof(int32_t));
            memcpy(t->ln_act + b * T, t->lb_act + b * T, (size_t)k0 * sizeof(int32_t));
        }
        if (s == FR_OK)
            s = fr_gfn_sample_into(t, FR_RNG_GFN_LS_FWD, (uint32_t)t->iter, (uint32_t)round, 0.0, 1.0, 0.0, B, t->ln_st,
                                   t->ln_act, t->ln_len, t->ls_k0, t->ln_lpf);
        for (int64_t b = 0; b < B && s == FR_OK; b++)
            if (t->ln_len[b] <= t->ls_k0[b] || t->ln_act[b * T + t->ln_len[b] - 1] != e->exit_action)
                s = fr_fail(FR_ERR_NUMERIC, "gfn: local search: rebuilt trajectory %lld did not exit", (long long)b);
        if (s == FR_OK && t->o.ls_mh) s = mh_terms(t, lpf_old, lpb_new);
        for (int64_t b = 0; b < B && s == FR_OK; b++) {
            const int32_t *x = t->st + ((B + b) * T + t->len[B + b] - 1) * D;
            const int32_t *xn = t->ln_st + (b * T + t->ln_len[b] - 1) * D;
            fr_gfn_visit(t, xn); /* R was evaluated at x': a sample */
            const int64_t k0 = t->ls_k0[b];
            double lpb_old = 0.0, lpf_new = 0.0;
            for (int64_t k = k0; k + 1 < t->lb_len[b]; k++) lpb_old += t->lb_lpb[b * T + k];
            for (int64_t k = k0; k < t->ln_len[b]; k++) lpf_new += t->ln_lpf[b * T + k];
            const double u = t->o.ls_mh ? ((double)fr_rng_u32(t->o.seed, FR_RNG_GFN_LS_ACCEPT, (uint32_t)t->iter,
                                                              (uint32_t)b, 0, (uint32_t)round) + 0.5) * (1.0 / 4294967296.0)
                                        : 0.0;
            if (!fr_gfn_ls_accept(t->o.ls_mh, fr_gfn_log_reward(t, xn), fr_gfn_log_reward(t, x), lpb_old, lpf_new,
                                  t->o.ls_mh ? lpb_new[b] : 0.0, t->o.ls_mh ? lpf_old[b] : 0.0, u, NULL))
                continue;
            acc++;
            const int64_t n = t->ln_len[b];
            memcpy(t->st + (B + b) * T * D, t->ln_st + b * T * D, (size_t)(n * D) * sizeof(int32_t));
            memcpy(t->act + (B + b) * T, t->ln_act + b * T, (size_t)n * sizeof(int32_t));
            t->len[B + b] = (int32_t)n;
        }
        t->trajectories += B;
    }
    free(lpf_old);
    t->nb = 2 * B;
    if (accepted) *accepted = acc;
    return s;
}
