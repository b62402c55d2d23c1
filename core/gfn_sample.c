/* GFlowNet trajectory sampling (core/gfn_train_internal.h; docs/algorithms/gfn.md §2): the batch in
 * lock-step, each action a pure function of its Philox coordinates and the parameters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/philox.h"
#include "gfn_train_internal.h"


/* The batch's trajectories, in lock-step: at step k every unfinished trajectory b draws its
 * action from p = (1 − ε)·P_F' + ε·Uniform(allowed), P_F' the softmax of (logits − sf_bias at the
 * exit) / temperature, with u = Philox (seed, purpose, c0, b, k, c3)
 * (training: FR_RNG_GFN_ACTION, c0 = the iteration, c3 = 0), the first allowed action whose
 * cumulative probability exceeds u. */
fr_status fr_gfn_sample(fr_gfn_trainer *t, uint32_t purpose, uint32_t c0, double epsilon, double temperature,
                        double sf_bias)
{
    fr_status s = fr_gfn_sample_into(t, purpose, c0, 0, epsilon, temperature, sf_bias, t->o.batch, t->st, t->act,
                                     t->len, NULL, NULL);
    t->nb = t->o.batch;
    return s;
}

/* n trajectories into st (n, T, D), act (n, T), len (n,); trajectory b starts at step k0[b] from
 * its state st[b, k0[b]] (its prefix already there; k0 NULL: every one at s0, step 0); lpf (n, T)
 * (may be NULL) gets log P'(a_k | s_k) of each drawn action under the sampling softmax (the
 * policy's log P_F at ε 0, temperature 1, sf_bias 0). */
fr_status fr_gfn_sample_into(fr_gfn_trainer *t, uint32_t purpose, uint32_t c0, uint32_t c3, double epsilon,
                             double temperature, double sf_bias, int64_t n, int32_t *st, int32_t *act, int32_t *len,
                             const int32_t *k0, double *lpf)
{
    const fr_env *e = t->env;
    const int64_t B = n, T = e->max_steps, D = e->state_dim;
    const int A = t->A;
    int32_t *rows = fr_malloc((size_t)(B * D) * sizeof *rows);
    int64_t *who = fr_malloc((size_t)B * sizeof *who);
    if (!rows || !who) {
        free(rows);
        free(who);
        return FR_ERR_NOMEM;
    }
    for (int64_t b = 0; b < B; b++) {
        if (!k0) e->gfn->initial(e, st + b * T * D);
        len[b] = 0;
    }
    fr_status s = FR_OK;
    for (int64_t k = 0; k < T && s == FR_OK; k++) {
        int64_t R = 0;
        for (int64_t b = 0; b < B; b++)
            if (len[b] == 0 && (!k0 || k >= k0[b])) {
                memcpy(rows + R * D, st + (b * T + k) * D, (size_t)D * sizeof *rows);
                if (t->ncw > 0) fr_gfn_cond_row(t, R, t->pref + b * t->ncw); /* trajectory b's ω [, β] or outcome y */
                who[R++] = b;
            }
        if (R == 0) { /* all finished, or (k0) none started yet */
            int64_t left = 0;
            for (int64_t b = 0; b < B; b++) left += len[b] == 0;
            if (left == 0) break;
            continue;
        }
        s = fr_gfn_net_rows(t, R, rows);
        for (int64_t r = 0; r < R && s == FR_OK; r++) {
            const int64_t b = who[r];
            const int32_t *sk = st + (b * T + k) * D;
            uint8_t fwd[GFN_MAX_A];
            double lsm[GFN_MAX_A];
            e->gfn->forward_mask(e, sk, fwd);
            /* torchgfn's sampling logits: the exit's minus sf_bias, all divided by the temperature */
            float z[GFN_MAX_A];
            for (int a = 0; a < A; a++) {
                double v = (double)t->out_h[r * t->O + a] - (a == e->exit_action ? sf_bias : 0.0);
                z[a] = (float)(v / temperature);
            }
            fr_gfn_log_softmax(z, fwd, A, lsm);
            int n_ok = 0;
            for (int a = 0; a < A; a++) n_ok += fwd[a];
            double u = ((double)fr_rng_u32(t->o.seed, purpose, c0, (uint32_t)b, (uint32_t)k, c3) + 0.5) * (1.0 / 4294967296.0);
            double cum = 0.0;
            int pick = -1;
            for (int a = 0; a < A; a++) {
                if (!fwd[a]) continue;
                double p = (1.0 - epsilon) * fr_awm_exp(lsm[a]) + epsilon / (double)n_ok;
                cum += p;
                pick = a;
                if (u < cum) break;
            }
            if (pick < 0) {
                s = fr_fail(FR_ERR_ARG, "gfn: %s: trajectory %lld has no allowed action at step %lld", e->desc,
                            (long long)b, (long long)k);
                break;
            }
            act[b * T + k] = pick;
            if (lpf) lpf[b * T + k] = lsm[pick];
            if (pick == e->exit_action || k == T - 1) {
                len[b] = (int32_t)(k + 1);
                if (pick != e->exit_action)
                    s = fr_fail(FR_ERR_ARG, "gfn: %s: trajectory %lld did not exit within %lld steps", e->desc,
                                (long long)b, (long long)T);
            } else {
                e->gfn->step(e, sk, pick, st + (b * T + k + 1) * D);
            }
        }
    }
    free(rows);
    free(who);
    return s;
}

/* torchgfn's ReplayBuffer (containers/replay_buffer.py) as train_hypergrid.py uses it: add the
 * fresh batch (extend, keep the last N), then train on `sample(batch_size)`, a uniform draw without
 * replacement from the whole buffer (the fresh batch included). The draw is a partial Fisher–Yates
 * over the buffer's positions, oldest first: draw i takes position i + ⌊u·(n − i)⌋ of the
 * remaining ones, u = Philox (seed, FR_RNG_GFN_REPLAY, iteration, i) / 2³². */
fr_status fr_gfn_replay(fr_gfn_trainer *t)
{
    const fr_env *e = t->env;
    const int64_t B = t->o.batch, N = t->o.replay, T = e->max_steps, D = e->state_dim;
    for (int64_t b = 0; b < B; b++) {
        const int64_t slot = (t->rb_count + b) % N;
        const int64_t n = t->len[b]; /* slots past the trajectory are zero (the checkpoint's bytes) */
        memset(t->rb_st + slot * T * D, 0, (size_t)(T * D) * sizeof(int32_t));
        memset(t->rb_act + slot * T, 0, (size_t)T * sizeof(int32_t));
        memcpy(t->rb_st + slot * T * D, t->st + b * T * D, (size_t)(n * D) * sizeof(int32_t));
        memcpy(t->rb_act + slot * T, t->act + b * T, (size_t)n * sizeof(int32_t));
        t->rb_len[slot] = (int32_t)n;
    }
    t->rb_count += B;
    const int64_t n = t->rb_count < N ? t->rb_count : N, oldest = t->rb_count < N ? 0 : t->rb_count % N;
    int64_t *pos = fr_malloc((size_t)n * sizeof *pos);
    if (!pos) return FR_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) pos[i] = (oldest + i) % N;
    for (int64_t i = 0; i < B; i++) {
        uint64_t u = fr_rng_u32(t->o.seed, FR_RNG_GFN_REPLAY, (uint32_t)t->iter, (uint32_t)i, 0, 0);
        int64_t j = i + (int64_t)((u * (uint64_t)(n - i)) >> 32), slot = pos[j];
        pos[j] = pos[i];
        pos[i] = slot;
        memcpy(t->st + i * T * D, t->rb_st + slot * T * D, (size_t)(T * D) * sizeof(int32_t));
        memcpy(t->act + i * T, t->rb_act + slot * T, (size_t)T * sizeof(int32_t));
        t->len[i] = t->rb_len[slot];
    }
    free(pos);
    return FR_OK;
}
