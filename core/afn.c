/* Adversarial flow networks on tic-tac-toe (flowrl/afn.h; docs/algorithms/afn.md §2–§4): the
 * residual and loss of spec more.md §8.3 (GFNOrg/AdversarialFlowNetworks@4154f73c src/tb.py
 * compute_loss), and a trainer: the policy MLP through the op table, lock-step self-play by
 * Philox coordinates, the loss's gradient back through the masked log-softmax, and the
 * optimal-move metric against flowrl's own minimax. The network's logits cross to the host once
 * per forward and their gradient back once per epoch; everything else is float64 host code, so
 * every backend gives the bits of ref. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/afn.h"
#include "flowrl/awm_elem.h"
#include "flowrl/digest.h"
#include "flowrl/mlp.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"

#define AFN_INIT_STREAM 22 /* fr_mlp_init_params's stream: (seed, FR_RNG_INIT, p, 22, 0, i) */

/* ---- the loss ------------------------------------------------------------------------------- */
fr_status fr_afn_loss(int64_t B, const double *lp, const int32_t *nA, const int32_t *len, const int8_t *outcome,
                      double log_z0, double lambda, double *loss, double *resid, double *g_lp, double *g_log_z)
{
    if (B < 1) return fr_fail(FR_ERR_ARG, "afn loss: batch %lld, expected >= 1", (long long)B);
    double sum = 0.0, gz = 0.0;
    for (int64_t b = 0; b < B; b++) {
        const int n = len[b];
        if (n < 1 || n > 9) return fr_fail(FR_ERR_ARG, "afn loss: game %lld has %d moves, expected 1..9", (long long)b, n);
        double r = log_z0;
        for (int t = 0; t < n - 1; t++) { /* the game-ending move t = n − 1 is in neither sum */
            const double v = lp[b * 9 + t];
            if (!isfinite(v) || nA[b * 9 + t] < 1)
                return fr_fail(FR_ERR_NUMERIC, "afn loss: log pi[%lld, %d] = %g with %d legal moves", (long long)b, t, v,
                               nA[b * 9 + t]);
            const double term = v + fr_awm_log((double)nA[b * 9 + t]); /* the branch adjustment */
            r = (t & 1) ? r - term : r + term;
        }
        r -= (double)outcome[b] * lambda; /* log R0: +λ, −λ or 0 */
        if (resid) resid[b] = r;
        sum += r * r;
        const double g = 2.0 * r / (double)B;
        gz += g;
        if (g_lp)
            for (int t = 0; t < 9; t++) g_lp[b * 9 + t] = t < n - 1 ? ((t & 1) ? -g : g) : 0.0;
    }
    *loss = sum / (double)B;
    if (g_log_z) *g_log_z = gz;
    return FR_OK;
}

/* ---- the trainer ---------------------------------------------------------------------------- */
struct fr_afn_trainer {
    fr_backend *be;
    fr_afn_opts o;
    fr_mlp net;                       /* π's logits, parameters "pi.<k>.weight" / ".bias" */
    fr_param params[2 * FR_MLP_MAX_LAYERS + 1]; /* the network's, then log Z0 */
    fr_tensor zv, zg;
    float *z_dev;                     /* backend (2,): log Z0, its gradient */
    int64_t cap;                      /* rows of one forward (batch · 9) */
    float *obs_h, *out_h, *dout_h;    /* host (cap, 28), (cap, 9), (cap, 9) */
    int8_t *boards;                   /* (batch, 9, 9): the board before each move */
    int32_t *act, *len, *nA;          /* (batch, 9), (batch,), (batch, 9) */
    int8_t *outcome;                  /* (batch,) */
    double *lp, *glp;                 /* (batch, 9) */
};


fr_afn_opts fr_afn_opts_default(void)
{
    fr_afn_opts o = {512, 128, 2, 10.0, 2.0, 0.0, 1};
    return o;
}

static void encode(const int8_t *board, float *obs)
{
    memset(obs, 0, 28 * sizeof *obs);
    for (int i = 0; i < 9; i++) obs[3 * i + board[i]] = 1.0f;
    obs[27] = (float)fr_ttt_to_move(board);
}

/* The logits (R, 9) into t->out_h of the boards (R, 9) (R <= cap). */
static fr_status logits(fr_afn_trainer *t, int64_t R, const int8_t *boards)
{
    for (int64_t r = 0; r < R; r++) encode(boards + r * 9, t->obs_h + r * 28);
    return fr_mlp_forward_host(&t->net, R, t->obs_h, t->out_h);
}

/* The masked log-softmax (float64) of 9 logits z over the legal moves into lsm (−inf elsewhere). */
static void log_softmax(const float *z, const uint8_t *mask, double *lsm)
{
    double m = -INFINITY, s = 0.0;
    for (int k = 0; k < 9; k++)
        if (mask[k] && (double)z[k] > m) m = (double)z[k];
    for (int k = 0; k < 9; k++)
        if (mask[k]) s += fr_awm_exp((double)z[k] - m);
    const double lse = m + fr_awm_log(s);
    for (int k = 0; k < 9; k++) lsm[k] = mask[k] ? (double)z[k] - lse : -INFINITY;
}

fr_status fr_afn_trainer_new(fr_afn_trainer **out, fr_backend *be, const fr_afn_opts *o)
{
    *out = NULL;
    if (o->batch < 1 || o->hidden < 1 || o->n_hidden < 1 || o->n_hidden >= FR_MLP_MAX_LAYERS)
        return fr_fail(FR_ERR_ARG, "afn: batch %lld, hidden %lld x %lld: expected >= 1 and fewer than %d layers",
                       (long long)o->batch, (long long)o->hidden, (long long)o->n_hidden, FR_MLP_MAX_LAYERS);
    if (!(o->lambda > 0.0) || !isfinite(o->lambda) || !(o->epsilon >= 0.0 && o->epsilon <= 1.0) ||
        !(o->temperature > 0.0) || !isfinite(o->temperature))
        return fr_fail(FR_ERR_ARG, "afn: lambda %g and temperature %g must be > 0, epsilon %g in [0, 1]", o->lambda,
                       o->temperature, o->epsilon);
    fr_afn_trainer *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->be = be;
    t->o = *o;
    const int L = (int)o->n_hidden + 1;
    int64_t dim[FR_MLP_MAX_LAYERS + 1];
    dim[0] = 28;
    for (int l = 1; l < L; l++) dim[l] = o->hidden;
    dim[L] = 9;
    const int64_t B = o->batch;
    t->cap = B * 9;
    FR_TRY(fr_mlp_new(&t->net, be, "pi", L, dim, FR_ACT_RELU, t->cap));
    FR_TRY(fr_mlp_init_params(&t->net, o->seed, AFN_INIT_STREAM, 1.0f));
    for (int p = 0; p < t->net.n_params; p++) t->params[p] = t->net.params[p];
    if (!(t->z_dev = fr_dev_floats(be, 2))) return FR_ERR_NOMEM;
    const int64_t one[1] = {1};
    t->zv = fr_tensor_f32(t->z_dev, 1, one);
    t->zg = fr_tensor_f32(t->z_dev + 1, 1, one);
    t->params[t->net.n_params] = (fr_param){"log_z0", &t->zv, &t->zg};
    const float z[2] = {0.0f, 0.0f}; /* log Z0 = 0 (the public code's init) */
    FR_TRY(fr_h2d(be, t->z_dev, z, sizeof z));
    t->obs_h = fr_malloc((size_t)(t->cap * 28) * sizeof(float));
    t->out_h = fr_malloc((size_t)(t->cap * 9) * sizeof(float));
    t->dout_h = fr_malloc((size_t)(t->cap * 9) * sizeof(float));
    t->boards = fr_malloc((size_t)(B * 81));
    t->act = fr_malloc((size_t)(B * 9) * sizeof(int32_t));
    t->nA = fr_malloc((size_t)(B * 9) * sizeof(int32_t));
    t->len = fr_malloc((size_t)B * sizeof(int32_t));
    t->outcome = fr_malloc((size_t)B);
    t->lp = fr_malloc((size_t)(B * 9) * sizeof(double));
    t->glp = fr_malloc((size_t)(B * 9) * sizeof(double));
    if (!t->obs_h || !t->out_h || !t->dout_h || !t->boards || !t->act || !t->nA || !t->len || !t->outcome || !t->lp ||
        !t->glp)
        return FR_ERR_NOMEM;
    return FR_OK;
}

void fr_afn_trainer_free(fr_afn_trainer *t)
{
    if (!t) return;
    fr_mlp_free(&t->net);
    fr_dev_free(t->be, t->z_dev);
    void *host[] = {t->obs_h, t->out_h, t->dout_h, t->boards, t->act, t->nA, t->len, t->outcome, t->lp, t->glp};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
    free(t);
}

int fr_afn_trainer_params(fr_afn_trainer *t, fr_param **ps, int *n_net)
{
    *ps = t->params;
    *n_net = t->net.n_params;
    return t->net.n_params + 1;
}

fr_status fr_afn_trainer_log_z(fr_afn_trainer *t, double *log_z0)
{
    float z;
    FR_TRY(fr_d2h(t->be, &z, t->z_dev, sizeof z));
    *log_z0 = (double)z;
    return FR_OK;
}

/* Self-play of epoch e: every game in lock-step, a move drawn from (1 − ε)·softmax(z/τ) + ε·uniform
 * over the legal moves by one Philox uniform (seed, FR_RNG_AFN_GAME, e, game, move) and the inverse CDF
 * in float64. Fills boards (the board before each move), act, nA, len and outcome. */
static fr_status self_play(fr_afn_trainer *t, int64_t e)
{
    const int64_t B = t->o.batch;
    int8_t *cur = fr_calloc((size_t)(B * 9), 1), *rows = fr_malloc((size_t)(B * 9));
    int64_t *who = fr_malloc((size_t)B * sizeof *who);
    fr_status s = cur && rows && who ? FR_OK : FR_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++) t->len[b] = 0;
    for (int m = 0; m < 9 && s == FR_OK; m++) {
        int64_t R = 0;
        for (int64_t b = 0; b < B; b++)
            if (!fr_ttt_over(cur + b * 9)) {
                memcpy(rows + R * 9, cur + b * 9, 9);
                who[R++] = b;
            }
        if (R == 0) break;
        s = logits(t, R, rows);
        for (int64_t r = 0; r < R && s == FR_OK; r++) {
            const int64_t b = who[r];
            int8_t *bd = cur + b * 9;
            uint8_t mask[9];
            double lsm[9];
            const int n = fr_ttt_legal(bd, mask);
            float z[9];
            for (int k = 0; k < 9; k++) z[k] = (float)((double)t->out_h[r * 9 + k] / t->o.temperature);
            log_softmax(z, mask, lsm);
            const double u = (double)fr_rng_uniform(t->o.seed, FR_RNG_AFN_GAME, (uint32_t)e, (uint32_t)b, (uint32_t)m, 0);
            double c = 0.0;
            int a = -1;
            for (int k = 0; k < 9; k++) {
                if (!mask[k]) continue;
                a = k; /* the last legal move if rounding leaves u above the total */
                c += (1.0 - t->o.epsilon) * fr_awm_exp(lsm[k]) + t->o.epsilon / (double)n;
                if (u < c) break;
            }
            memcpy(t->boards + (b * 9 + m) * 9, bd, 9);
            t->act[b * 9 + m] = a;
            t->nA[b * 9 + m] = n;
            bd[a] = (int8_t)(1 + (m & 1));
            t->len[b] = m + 1;
            if (fr_ttt_over(bd)) {
                const int w = fr_ttt_winner(bd);
                t->outcome[b] = (int8_t)(w == 1 ? 1 : w == 2 ? -1 : 0);
            }
        }
    }
    free(cur);
    free(rows);
    free(who);
    return s;
}

fr_status fr_afn_trainer_grad(fr_afn_trainer *t, int64_t e, double *loss, double *decisive)
{
    const int64_t B = t->o.batch;
    FR_TRY(self_play(t, e));
    /* the rows the loss reads: every move but the game-ending one */
    int64_t R = 0;
    for (int64_t b = 0; b < B; b++)
        for (int m = 0; m < t->len[b] - 1; m++) memmove(t->boards + R++ * 9, t->boards + (b * 9 + m) * 9, 9);
    /* (the copy runs forward over the same array: row R <= b·9 + m always) */
    FR_TRY(logits(t, R, t->boards));
    int64_t r = 0;
    double lsm_all[9];
    for (int64_t b = 0; b < B; b++)
        for (int m = 0; m < 9; m++) {
            t->lp[b * 9 + m] = 0.0;
            if (m >= t->len[b] - 1) continue;
            uint8_t mask[9];
            fr_ttt_legal(t->boards + r * 9, mask);
            log_softmax(t->out_h + r * 9, mask, lsm_all);
            t->lp[b * 9 + m] = lsm_all[t->act[b * 9 + m]];
            r++;
        }
    double L, gz, z0;
    FR_TRY(fr_afn_trainer_log_z(t, &z0));
    FR_TRY(fr_afn_loss(B, t->lp, t->nA, t->len, t->outcome, z0, t->o.lambda, &L, NULL, t->glp, &gz));
    /* dL/dz_k = g·(δ_{k,a} − π_k) on each row */
    r = 0;
    for (int64_t b = 0; b < B; b++)
        for (int m = 0; m < t->len[b] - 1; m++, r++) {
            uint8_t mask[9];
            fr_ttt_legal(t->boards + r * 9, mask);
            log_softmax(t->out_h + r * 9, mask, lsm_all);
            const double g = t->glp[b * 9 + m];
            for (int k = 0; k < 9; k++) {
                const double p = mask[k] ? fr_awm_exp(lsm_all[k]) : 0.0;
                t->dout_h[r * 9 + k] = (float)(g * ((k == t->act[b * 9 + m] ? 1.0 : 0.0) - p));
            }
        }
    FR_TRY(fr_mlp_zero_grad(&t->net));
    FR_TRY(fr_mlp_backward_host(&t->net, R, t->dout_h));
    const float gzf = (float)gz;
    FR_TRY(fr_h2d(t->be, t->z_dev + 1, &gzf, sizeof gzf));
    if (loss) *loss = L;
    if (decisive) {
        int64_t d = 0;
        for (int64_t b = 0; b < B; b++) d += t->outcome[b] != 0;
        *decisive = (double)d / (double)B;
    }
    return FR_OK;
}

fr_status fr_afn_trainer_optimal(fr_afn_trainer *t, double *frac, double *mass)
{
    const int n = fr_ttt_positions(NULL);
    int32_t *codes = fr_malloc((size_t)n * sizeof *codes);
    int8_t *rows = fr_malloc((size_t)t->cap * 9);
    fr_status s = codes && rows ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) fr_ttt_positions(codes);
    const uint16_t *opt = fr_ttt_optimal();
    int64_t hit = 0;
    double msum = 0.0;
    for (int i0 = 0; i0 < n && s == FR_OK; i0 += (int)t->cap) {
        const int R = n - i0 < t->cap ? n - i0 : (int)t->cap;
        for (int r = 0; r < R; r++) fr_ttt_board(codes[i0 + r], rows + r * 9);
        s = logits(t, R, rows);
        for (int r = 0; r < R && s == FR_OK; r++) {
            uint8_t mask[9];
            double lsm[9];
            fr_ttt_legal(rows + r * 9, mask);
            log_softmax(t->out_h + r * 9, mask, lsm);
            const uint16_t bits = opt[codes[i0 + r]];
            int best = -1;
            double m = 0.0;
            for (int k = 0; k < 9; k++) {
                if (!mask[k]) continue;
                if (best < 0 || lsm[k] > lsm[best]) best = k;
                if (bits >> k & 1) m += fr_awm_exp(lsm[k]);
            }
            hit += bits >> best & 1;
            msum += m;
        }
    }
    free(codes);
    free(rows);
    if (s != FR_OK) return s;
    if (frac) *frac = (double)hit / (double)n;
    if (mass) *mass = msum / (double)n;
    return FR_OK;
}

fr_status fr_afn_trainer_digest(fr_afn_trainer *t, uint64_t *digest, int64_t *n_params)
{
    uint64_t d;
    float z;
    FR_TRY(fr_mlp_digest(&t->net, &d));
    FR_TRY(fr_d2h(t->be, &z, t->z_dev, sizeof z));
    const uint64_t both[2] = {d, fr_digest_bytes(&z, sizeof z)};
    *digest = fr_digest_bytes(both, sizeof both);
    if (n_params) *n_params = fr_mlp_numel(&t->net) + 1;
    return FR_OK;
}
