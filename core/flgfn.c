/* FL-GFN on the set task (flowrl/flgfn.h; docs/algorithms/flgfn.md): the environment with the
 * public code's item energies (ling-pan/FL-GFN@b777e17f set/gflownet.py main(), copied as data),
 * the FL-DB and DB losses, and a trainer (the MLP of flowrl/mlp.h through the op table; the
 * log-softmaxes, the loss and the draws are float64 host code, so every backend gives ref's bits). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/digest.h"
#include "flowrl/flgfn.h"
#include "flowrl/mlp.h"
#include "flowrl/philox.h"

/* ---- the environment ------------------------------------------------------------------------ */
/* set/gflownet.py main(): intermediate_energies of --size small / medium / large */
static const double k_energy_small[30] = {
    0.6961474461702144, 0.883494921538938, -0.2745059751263419, 0.883494921538938, 0.7442282139370466,
    0.7442282139370466, -0.40046449111789073, 0.6261749162235306, -0.4381397850674522, 0.4110535720923896,
    -0.4381397850674522, 0.8206350287761408, 0.6961474461702144, 0.013149744911117978, 0.6961474461702144,
    0.4110535720923896, 0.013149744911117978, -0.40046449111789073, -0.4381397850674522, 0.883494921538938,
    0.7442282139370466, -0.2745059751263419, 0.6261749162235306, 0.6261749162235306, 0.8206350287761408,
    -0.40046449111789073, 0.8206350287761408, -0.2745059751263419, 0.4110535720923896, 0.013149744911117978
};
static const double k_energy_medium[80] = {
    -0.5230497555411129, 0.5731802451199923, 0.6881812517688572, -0.7866830411595669, -0.41860806745880197,
    0.7396350970666805, 0.5731802451199923, 0.7396350970666805, -0.7866830411595669, 0.6009291618806774,
    0.6881812517688572, -0.5230497555411129, -0.7837872949891345, -0.7837872949891345, -0.41860806745880197,
    -0.7866830411595669, 0.6009291618806774, -0.41860806745880197, -0.3855205729595568, -0.5230497555411129,
    -0.5230497555411129, -0.41860806745880197, 0.2961218224370139, 0.6881812517688572, 0.6009291618806774,
    -0.7837872949891345, 0.2961218224370139, -0.7866830411595669, 0.5731802451199923, 0.2961218224370139,
    -0.3855205729595568, -0.41860806745880197, -0.5230497555411129, -0.7837872949891345, 0.7396350970666805,
    -0.41860806745880197, 0.6009291618806774, -0.41860806745880197, 0.2961218224370139, -0.5230497555411129,
    0.2961218224370139, 0.6881812517688572, -0.5230497555411129, -0.7837872949891345, 0.6881812517688572,
    0.2961218224370139, 0.6881812517688572, 0.5731802451199923, 0.5731802451199923, 0.6881812517688572,
    -0.3855205729595568, -0.3855205729595568, -0.5230497555411129, 0.5731802451199923, 0.2961218224370139,
    -0.7837872949891345, -0.41860806745880197, 0.7396350970666805, 0.6881812517688572, -0.3855205729595568,
    0.7396350970666805, 0.6009291618806774, -0.7837872949891345, -0.7866830411595669, 0.6009291618806774,
    0.5731802451199923, 0.7396350970666805, -0.7866830411595669, 0.2961218224370139, -0.7866830411595669,
    0.6009291618806774, 0.6009291618806774, 0.5731802451199923, 0.7396350970666805, -0.3855205729595568,
    0.7396350970666805, -0.7866830411595669, -0.3855205729595568, -0.3855205729595568, -0.7837872949891345
};
static const double k_energy_large[100] = {
    -0.15382957507887518, -0.15382957507887518, -0.8596854107736154, -0.8596854107736154, 0.13832182722858843,
    -0.4589997720511263, 0.9244538380742333, -0.4589997720511263, -0.5938789622812419, 0.7326989860019331,
    0.3925029176153736, 0.7231982581431591, 0.7326989860019331, -0.8596854107736154, 0.9244538380742333,
    -0.5938789622812419, -0.5938789622812419, 0.13832182722858843, -0.5596177369051512, 0.7326989860019331,
    -0.5596177369051512, -0.8596854107736154, 0.13832182722858843, 0.9244538380742333, 0.7231982581431591,
    -0.15382957507887518, -0.15382957507887518, -0.5938789622812419, 0.9244538380742333, 0.13832182722858843,
    0.9244538380742333, 0.3925029176153736, -0.15382957507887518, 0.3925029176153736, -0.4589997720511263,
    -0.4589997720511263, -0.8596854107736154, 0.13832182722858843, -0.8596854107736154, -0.5596177369051512,
    0.13832182722858843, -0.8596854107736154, 0.13832182722858843, 0.7326989860019331, 0.9244538380742333,
    0.7231982581431591, 0.13832182722858843, 0.7231982581431591, -0.4589997720511263, -0.15382957507887518,
    0.7326989860019331, -0.5938789622812419, -0.5938789622812419, -0.5596177369051512, 0.9244538380742333,
    0.7231982581431591, 0.7231982581431591, -0.8596854107736154, 0.7326989860019331, -0.4589997720511263,
    0.3925029176153736, -0.5938789622812419, 0.7326989860019331, 0.3925029176153736, 0.9244538380742333,
    -0.4589997720511263, -0.5596177369051512, -0.15382957507887518, 0.3925029176153736, -0.5938789622812419,
    -0.15382957507887518, -0.5938789622812419, 0.13832182722858843, 0.7326989860019331, -0.5596177369051512,
    -0.8596854107736154, -0.15382957507887518, -0.5596177369051512, 0.9244538380742333, 0.3925029176153736,
    -0.4589997720511263, -0.8596854107736154, 0.7326989860019331, 0.7231982581431591, -0.4589997720511263,
    -0.5596177369051512, -0.5596177369051512, 0.3925029176153736, 0.3925029176153736, 0.7231982581431591,
    0.13832182722858843, -0.15382957507887518, 0.7231982581431591, 0.7231982581431591, -0.5596177369051512,
    -0.5938789622812419, 0.7326989860019331, -0.4589997720511263, 0.3925029176153736, 0.9244538380742333
};

typedef struct {
    int size; /* fr_set_size */
} set_opts;

typedef struct {
    int D, n;
    const double *E;
} set_impl;

static const char *const k_sizes[] = {"small", "medium", "large", NULL};

#define O set_opts
static const fr_opt k_rows[] = {
    FR_OPT_ENUM(O, size, "size", "small", k_sizes, "small: 20 of 30 items, medium: 60 of 80, large: 80 of 100", 0),
};
#undef O

static fr_status create(const void *ov, fr_env *e)
{
    const set_opts *o = ov;
    set_impl *im = fr_malloc(sizeof *im);
    if (!im) return FR_ERR_NOMEM;
    static const int k_D[3] = {30, 80, 100}, k_n[3] = {20, 60, 80};
    const double *const k_E[3] = {k_energy_small, k_energy_medium, k_energy_large};
    im->D = k_D[o->size];
    im->n = k_n[o->size];
    im->E = k_E[o->size];
    e->impl = im;
    e->state_dim = im->D;
    e->obs_dim = im->D;
    e->n_actions = im->D;
    e->action_dim = 0;
    e->exit_action = -1;
    e->max_steps = im->n;
    e->n_states = 0;
    e->gfn = NULL;
    e->ctl = NULL;
    snprintf(e->desc, sizeof e->desc, "set %s: %d of %d items", k_sizes[o->size], im->n, im->D);
    return FR_OK;
}

int fr_set_items(const fr_env *e) { return ((const set_impl *)e->impl)->D; }
int fr_set_size_of(const fr_env *e) { return ((const set_impl *)e->impl)->n; }
const double *fr_set_energies(const fr_env *e) { return ((const set_impl *)e->impl)->E; }

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double fr_set_max_log_r(const fr_env *e)
{
    const set_impl *im = e->impl;
    double sorted[100], s = 0.0;
    memcpy(sorted, im->E, (size_t)im->D * sizeof *sorted);
    qsort(sorted, (size_t)im->D, sizeof *sorted, cmp_double);
    for (int i = 0; i < im->n; i++) s += sorted[i];
    return -s;
}

/* e_k of the weights w (D,) without item skip (−1: none), k <= n, by the DP over items (float64). */
static double esp(const double *w, int D, int skip, int k)
{
    double e[101] = {1.0};
    for (int i = 0; i < D; i++) {
        if (i == skip) continue;
        for (int j = k; j > 0; j--) e[j] += e[j - 1] * w[i];
    }
    return e[k];
}

double fr_set_target_mean_log_r(const fr_env *e, double *log_z)
{
    const set_impl *im = e->impl;
    double w[100] = {0}, m = 0.0;
    for (int a = 0; a < im->D; a++) w[a] = fr_awm_exp(-im->E[a]);
    const double Z = esp(w, im->D, -1, im->n);
    for (int a = 0; a < im->D; a++) m -= w[a] * esp(w, im->D, a, im->n - 1) / Z * im->E[a];
    if (log_z) *log_z = fr_awm_log(Z);
    return m;
}

const fr_env_class fr_env_set = {
    "set",
    "FL-GFN's set task: choose set_size of action_dim items, R(x) = prod exp(-E[a]) (the public code's energies)",
    "docs/algorithms/flgfn.md",
    "set",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(set_opts),
    create,
};

/* ---- the loss ------------------------------------------------------------------------------- */
fr_status fr_flgfn_loss(fr_flgfn_loss_kind k, int pin, int64_t B, int n, const double *lpf, const double *lpb,
                        const double *logf, const double *energy, double *loss, double *resid, double *g_lpf,
                        double *g_lpb, double *g_logf)
{
    if (B < 1 || n < 1) return fr_fail(FR_ERR_ARG, "flgfn loss: %lld trajectories of %d steps", (long long)B, n);
    const double scale = 2.0 / ((double)B * (double)n);
    double sum = 0.0;
    if (g_logf)
        for (int64_t i = 0; i < B * (n + 1); i++) g_logf[i] = 0.0;
    for (int64_t b = 0; b < B; b++) {
        double log_r = 0.0; /* DB's log R(x) = −Σ E */
        for (int t = 0; t < n; t++) log_r -= energy[b * n + t];
        for (int t = 0; t < n; t++) {
            const int64_t i = b * n + t, f0 = b * (n + 1) + t;
            const double pf = lpf[i], pb = lpb[i], F0 = logf[f0], E = energy[i];
            const int last = t == n - 1;
            /* the next state's log-flow: FL-DB pinned at the end (0), DB's last is log R(x) */
            const int use_next = k == FR_FLGFN_FLDB ? !(last && pin) : !last;
            const double F1 = use_next ? logf[f0 + 1] : (k == FR_FLGFN_DB ? log_r : 0.0);
            if (!isfinite(pf) || !isfinite(pb) || !isfinite(F0) || !isfinite(F1) || !isfinite(E))
                return fr_fail(FR_ERR_NUMERIC, "flgfn loss: a non-finite input at trajectory %lld step %d", (long long)b, t);
            const double d = F0 + pf - pb - F1 + (k == FR_FLGFN_FLDB ? E : 0.0);
            if (resid) resid[i] = d;
            sum += d * d;
            const double g = scale * d;
            if (g_lpf) g_lpf[i] = g;
            if (g_lpb) g_lpb[i] = -g;
            if (g_logf) {
                g_logf[f0] += g;
                if (use_next) g_logf[f0 + 1] -= g;
            }
        }
    }
    *loss = sum / ((double)B * (double)n);
    return FR_OK;
}

/* ---- the trainer ---------------------------------------------------------------------------- */
#define FLGFN_INIT_STREAM 23 /* fr_mlp_init_params's stream */

struct fr_flgfn_trainer {
    fr_backend *be;
    const fr_env *env;
    fr_flgfn_opts o;
    int D, n;
    fr_mlp net;
    int64_t cap; /* rows: B (n + 1) */
    float *in_h, *out_h, *dout_h;
    int32_t *act; /* (B, n) */
    double *lpf, *lpb, *logf, *en, *glpf, *glpb, *glogf;
};

fr_status fr_flgfn_trainer_new(fr_flgfn_trainer **out, fr_backend *be, const fr_env *env, const fr_flgfn_opts *o)
{
    *out = NULL;
    if (env->cls != &fr_env_set) return fr_fail(FR_ERR_ARG, "flgfn: the environment must be set (got %s)", env->cls->name);
    if (o->batch < 1 || o->hidden < 1 || o->n_hidden < 1 || o->n_hidden >= FR_MLP_MAX_LAYERS ||
        !(o->epsilon >= 0.0 && o->epsilon <= 1.0))
        return fr_fail(FR_ERR_ARG, "flgfn: batch %lld, hidden %lld x %lld, epsilon %g out of range", (long long)o->batch,
                       (long long)o->hidden, (long long)o->n_hidden, o->epsilon);
    fr_flgfn_trainer *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->be = be;
    t->env = env;
    t->o = *o;
    t->D = fr_set_items(env);
    t->n = fr_set_size_of(env);
    const int L = (int)o->n_hidden + 1;
    int64_t dim[FR_MLP_MAX_LAYERS + 1];
    dim[0] = t->D;
    for (int l = 1; l < L; l++) dim[l] = o->hidden;
    dim[L] = 2 * t->D + 1;
    const int64_t B = o->batch, n = t->n, O = dim[L];
    t->cap = B * (n + 1);
    FR_TRY(fr_mlp_new(&t->net, be, "model", L, dim, FR_ACT_RELU, t->cap));
    FR_TRY(fr_mlp_init_params(&t->net, o->seed, FLGFN_INIT_STREAM, 1.0f));
    t->in_h = fr_malloc((size_t)(t->cap * t->D) * sizeof(float));
    t->out_h = fr_malloc((size_t)(t->cap * O) * sizeof(float));
    t->dout_h = fr_malloc((size_t)(t->cap * O) * sizeof(float));
    t->act = fr_malloc((size_t)(B * n) * sizeof(int32_t));
    double **d[] = {&t->lpf, &t->lpb, &t->en, &t->glpf, &t->glpb};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) *d[i] = fr_malloc((size_t)(B * n) * sizeof(double));
    t->logf = fr_malloc((size_t)t->cap * sizeof(double));
    t->glogf = fr_malloc((size_t)t->cap * sizeof(double));
    if (!t->in_h || !t->out_h || !t->dout_h || !t->act || !t->lpf || !t->lpb || !t->en || !t->glpf || !t->glpb ||
        !t->logf || !t->glogf)
        return FR_ERR_NOMEM;
    return FR_OK;
}

void fr_flgfn_trainer_free(fr_flgfn_trainer *t)
{
    if (!t) return;
    fr_mlp_free(&t->net);
    void *host[] = {t->in_h, t->out_h, t->dout_h, t->act, t->lpf, t->lpb, t->logf, t->en, t->glpf, t->glpb, t->glogf};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
    free(t);
}

int fr_flgfn_trainer_params(fr_flgfn_trainer *t, fr_param **ps)
{
    *ps = t->net.params;
    return t->net.n_params;
}

/* Masked log-softmax (float64) of D logits z, scaled by `scale` (0: uniform, the code's rand_pb),
 * over mask[k] == want. */
static void log_softmax(const float *z, double scale, const float *mask, float want, int D, double *lsm)
{
    double m = -INFINITY, s = 0.0;
    for (int k = 0; k < D; k++)
        if (mask[k] == want && scale * (double)z[k] > m) m = scale * (double)z[k];
    for (int k = 0; k < D; k++)
        if (mask[k] == want) s += fr_awm_exp(scale * (double)z[k] - m);
    const double lse = m + fr_awm_log(s);
    for (int k = 0; k < D; k++) lsm[k] = mask[k] == want ? scale * (double)z[k] - lse : -INFINITY;
}

/* R trajectories in lock-step from s0 (rows of in_h: the current states), actions into act (R, n),
 * draws (seed, purpose, c0, trajectory, step) from (1 − ε)·P_F + ε·uniform over the free items. */
static fr_status sample(fr_flgfn_trainer *t, int64_t R, double eps, uint32_t purpose, uint32_t c0, int32_t *act)
{
    const int D = t->D, O = 2 * D + 1;
    float *cur = fr_calloc((size_t)(R * D), sizeof *cur);
    double *lsm = fr_malloc((size_t)D * sizeof *lsm);
    fr_status s = cur && lsm ? FR_OK : FR_ERR_NOMEM;
    for (int step = 0; step < t->n && s == FR_OK; step++) {
        s = fr_mlp_forward_host(&t->net, R, cur, t->out_h);
        for (int64_t b = 0; b < R && s == FR_OK; b++) {
            float *st = cur + b * D;
            log_softmax(t->out_h + b * O, 1.0, st, 0.0f, D, lsm);
            const double u = (double)fr_rng_uniform(t->o.seed, purpose, c0, (uint32_t)b, (uint32_t)step, 0);
            const int free_n = D - step;
            double c = 0.0;
            int a = -1;
            for (int k = 0; k < D; k++) {
                if (st[k] != 0.0f) continue;
                a = k;
                c += (1.0 - eps) * fr_awm_exp(lsm[k]) + eps / (double)free_n;
                if (u < c) break;
            }
            act[b * t->n + step] = a;
            st[a] = 1.0f;
        }
    }
    free(cur);
    free(lsm);
    return s;
}

fr_status fr_flgfn_trainer_grad(fr_flgfn_trainer *t, int64_t e, double *loss)
{
    const int D = t->D, n = t->n, O = 2 * D + 1;
    const int64_t B = t->o.batch;
    FR_TRY(sample(t, B, t->o.epsilon, FR_RNG_FLGFN_ACTION, (uint32_t)e, t->act));
    /* every visited state s_0..s_n of each trajectory as rows b (n + 1) + t */
    for (int64_t b = 0; b < B; b++) {
        float *row = t->in_h + b * (n + 1) * D;
        memset(row, 0, (size_t)D * sizeof *row);
        for (int s = 0; s < n; s++) {
            memcpy(row + (s + 1) * D, row + s * D, (size_t)D * sizeof *row);
            row[(s + 1) * D + t->act[b * n + s]] = 1.0f;
        }
    }
    FR_TRY(fr_mlp_forward_host(&t->net, t->cap, t->in_h, t->out_h));
    double *lsm = fr_malloc((size_t)(2 * D) * sizeof *lsm), *lsb = lsm + D;
    if (!lsm) return FR_ERR_NOMEM;
    const double pb_scale = t->o.uniform_pb ? 0.0 : 1.0;
    for (int64_t b = 0; b < B; b++)
        for (int s = 0; s <= n; s++) {
            const int64_t r = b * (n + 1) + s;
            t->logf[r] = (double)t->out_h[r * O + 2 * D];
            if (s == n) continue;
            const int a = t->act[b * n + s];
            log_softmax(t->out_h + r * O, 1.0, t->in_h + r * D, 0.0f, D, lsm);
            log_softmax(t->out_h + (r + 1) * O + D, pb_scale, t->in_h + (r + 1) * D, 1.0f, D, lsb);
            t->lpf[b * n + s] = lsm[a];
            t->lpb[b * n + s] = lsb[a];
            t->en[b * n + s] = fr_set_energies(t->env)[a];
        }
    fr_status st = fr_flgfn_loss(t->o.loss, t->o.pin, B, n, t->lpf, t->lpb, t->logf, t->en, loss, NULL, t->glpf,
                                 t->glpb, t->glogf);
    /* the outputs' gradient: P_F logits at s_t, P_B logits at s_{t+1} (none when uniform), log F̃ */
    memset(t->dout_h, 0, (size_t)(t->cap * O) * sizeof *t->dout_h);
    for (int64_t b = 0; b < B && st == FR_OK; b++)
        for (int s = 0; s <= n; s++) {
            const int64_t r = b * (n + 1) + s;
            float *g = t->dout_h + r * O;
            g[2 * D] = (float)t->glogf[r];
            if (s == n) continue;
            const int a = t->act[b * n + s];
            log_softmax(t->out_h + r * O, 1.0, t->in_h + r * D, 0.0f, D, lsm);
            const double gf = t->glpf[b * n + s];
            for (int k = 0; k < D; k++)
                if (t->in_h[r * D + k] == 0.0f) g[k] = (float)(gf * ((k == a ? 1.0 : 0.0) - fr_awm_exp(lsm[k])));
            if (t->o.uniform_pb) continue;
            log_softmax(t->out_h + (r + 1) * O + D, 1.0, t->in_h + (r + 1) * D, 1.0f, D, lsb);
            const double gb = t->glpb[b * n + s];
            float *g1 = t->dout_h + (r + 1) * O + D;
            for (int k = 0; k < D; k++)
                if (t->in_h[(r + 1) * D + k] == 1.0f) g1[k] = (float)(gb * ((k == a ? 1.0 : 0.0) - fr_awm_exp(lsb[k])));
        }
    free(lsm);
    FR_TRY(st);
    FR_TRY(fr_mlp_zero_grad(&t->net));
    return fr_mlp_backward_host(&t->net, t->cap, t->dout_h);
}

static int cmp_desc(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

fr_status fr_flgfn_trainer_eval(fr_flgfn_trainer *t, int64_t n_samples, double *mean_log_r, double *top_r)
{
    const int D = t->D, n = t->n;
    const int64_t B = t->o.batch;
    const int64_t chunks = (n_samples + B - 1) / B;
    int32_t *act = fr_malloc((size_t)(chunks * B * n) * sizeof *act);
    uint8_t *sets = fr_calloc((size_t)(chunks * B * D), 1);
    double *logr = fr_malloc((size_t)(chunks * B) * sizeof *logr);
    fr_status s = act && sets && logr ? FR_OK : FR_ERR_NOMEM;
    for (int64_t c = 0; c < chunks && s == FR_OK; c++) s = sample(t, B, 0.0, FR_RNG_FLGFN_EVAL, (uint32_t)c, act + c * B * n);
    double sum = 0.0;
    int64_t uniq = 0;
    for (int64_t i = 0; i < n_samples && s == FR_OK; i++) {
        uint8_t *set = sets + uniq * D;
        double lr = 0.0;
        for (int k = 0; k < n; k++) {
            set[act[i * n + k]] = 1;
            lr -= fr_set_energies(t->env)[act[i * n + k]];
        }
        sum += lr;
        int dup = 0;
        for (int64_t j = 0; j < uniq && !dup; j++) dup = memcmp(sets + j * D, set, (size_t)D) == 0;
        if (dup) memset(set, 0, (size_t)D);
        else logr[uniq++] = lr;
    }
    if (s == FR_OK) {
        qsort(logr, (size_t)uniq, sizeof *logr, cmp_desc);
        const int64_t k = uniq < 100 ? uniq : 100;
        double tr = 0.0;
        for (int64_t i = 0; i < k; i++) tr += fr_awm_exp(logr[i]);
        if (mean_log_r) *mean_log_r = sum / (double)n_samples;
        if (top_r) *top_r = tr / (double)k;
    }
    free(act);
    free(sets);
    free(logr);
    return s;
}

fr_status fr_flgfn_trainer_digest(fr_flgfn_trainer *t, uint64_t *digest, int64_t *n_params)
{
    if (n_params) *n_params = fr_mlp_numel(&t->net);
    return fr_mlp_digest(&t->net, digest);
}
