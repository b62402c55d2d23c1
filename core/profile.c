/* The timing table over an op table (flowrl/profile.h): each entry below starts a frame, calls
 * the wrapped table's entry and closes the frame; a frame's self time is its time less its
 * children's, so nested regions and ops are each counted once. */
#include "flowrl/profile.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowrl/opt.h"
#include "flowrl/range_set.h"

/* Entry ids: one per op entry the table times, then the host regions. */
enum {
    P_MEM_ALLOC, P_MEM_FREE, P_H2D, P_D2H, P_D2D, P_ZERO, P_SYNC,
    P_GEMM, P_BIAS_ADD, P_BIAS_GRAD, P_ACT_FWD, P_ACT_BWD, P_LN_FWD, P_LN_BWD,
    P_BINARY, P_UNARY, P_AXPBY, P_SCALE, P_FILL, P_COPY, P_ROW_SUM, P_ROW_MEAN, P_SUM,
    P_GLOBAL_NORM, P_ADAMW, P_FM_LOSS, P_FLOW_TARGET, P_AWM_SQERR, P_ROW_MSD, P_KL_GRAD_ADD,
    P_EMA_LERP, P_NFT_ROWS, P_NFT_GRAD, P_TEMB, P_EMBED_GATHER, P_EMBED_SCATTER, P_X0_FWD,
    P_X0_BWD, P_EPS_FWD, P_EPS_BWD, P_NOISE_MIX, P_SAMPLER_STEP, P_SAMPLER_LOGPROB, P_CFG,
    P_FLOW_X0, P_RNG_NORMAL, P_NOISE_FM, P_GATHER_ROWS, P_LOGP_BWD, P_ROW_SUMSQ_DIFF, P_KL_GRAD,
    P_GUARD_GRAD, P_ACT_FWD_SAVE, P_ACT_BWD_SAVED, P_REGION0, P_N = P_REGION0 + FR_PROF_N_REGIONS
};

static const struct {
    const char *name, *group;
} k_entries[P_N] = {
    {"mem_alloc", "copies and memory"}, {"mem_free", "copies and memory"},
    {"mem_h2d", "copies and memory"}, {"mem_d2h", "copies and memory"},
    {"mem_d2d", "copies and memory"}, {"mem_zero", "copies and memory"},
    {"mem_sync", "copies and memory"}, {"gemm", "GEMM"},
    {"bias_add", "element-wise"}, {"bias_grad", "element-wise"},
    {"act_fwd", "element-wise"}, {"act_bwd", "element-wise"},
    {"layernorm_fwd", "layer norm"}, {"layernorm_bwd", "layer norm"},
    {"binary", "element-wise"}, {"unary", "element-wise"},
    {"axpby", "element-wise"}, {"scale", "element-wise"},
    {"fill", "element-wise"}, {"copy", "copies and memory"},
    {"row_sum", "reductions"}, {"row_mean", "reductions"},
    {"sum", "reductions"}, {"global_norm", "optimizer"},
    {"adamw", "optimizer"}, {"fm_loss", "objectives"},
    {"flow_target", "objectives"}, {"awm_sqerr", "objectives"},
    {"row_msd_f64", "objectives"}, {"kl_grad_add", "objectives"},
    {"ema_lerp", "optimizer"}, {"nft_rows", "objectives"},
    {"nft_grad", "objectives"}, {"temb_sinusoidal", "model (embeddings, heads)"},
    {"embed_gather_add", "model (embeddings, heads)"}, {"embed_scatter_add", "model (embeddings, heads)"},
    {"x0_head_fwd", "model (embeddings, heads)"}, {"x0_head_bwd", "model (embeddings, heads)"},
    {"eps_head_fwd", "model (embeddings, heads)"}, {"eps_head_bwd", "model (embeddings, heads)"},
    {"noise_mix", "samplers and noise"}, {"sampler_step", "samplers and noise"},
    {"sampler_logprob", "log-probs"}, {"cfg_combine", "samplers and noise"},
    {"flow_x0", "samplers and noise"}, {"rng_normal_rows", "samplers and noise"},
    {"noise_fm", "samplers and noise"}, {"gather_rows", "copies and memory"},
    {"logp_backward", "log-probs"}, {"row_sumsq_diff", "objectives"},
    {"kl_grad", "objectives"}, {"guard_grad", "objectives"},
    {"act_fwd_save", "element-wise"}, {"act_bwd_saved", "element-wise"},
    {"rewards", "rewards"}, {"audit records", "audit records"},
};

static const char *const k_group_order[] = {
    "GEMM", "element-wise", "layer norm", "model (embeddings, heads)", "samplers and noise", "log-probs",
    "objectives", "reductions", "optimizer", "copies and memory", "rewards", "audit records",
};
#define N_GROUPS (int)(sizeof k_group_order / sizeof k_group_order[0])

#define MAX_ROWS 512
#define MAX_DEPTH 32

typedef struct {
    double t0, child;
    int row; /* -1: a frame opened before the last reset (closed uncounted) */
} frame;

static struct {
    const fr_ops *in; /* the wrapped table */
    fr_ops table;
    int on;
    pthread_t owner;
    fr_profile_row rows[MAX_ROWS];
    int n_rows;
    int row_of[P_N][FR_ACT_COUNT]; /* 1 + index into rows; 0: not yet seen (GEMM: by search) */
    frame stack[MAX_DEPTH];
    int depth, overflow; /* overflow: frames past MAX_DEPTH, not kept */
    unsigned gen; /* bumped by reset: frames of an older generation are dropped */
    unsigned frame_gen[MAX_DEPTH];
    double pool_wait0;
    uint64_t pool_jobs0;
    int thread_cpu; /* fr_profile_use_cpu_time */
} g;

void fr_profile_use_cpu_time(int on) { g.thread_cpu = on != 0; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(g.thread_cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int timed(void) { return g.on && pthread_equal(pthread_self(), g.owner); }

static int new_row(int id, const char *what)
{
    if (g.n_rows >= MAX_ROWS) return -1;
    fr_profile_row *r = &g.rows[g.n_rows];
    memset(r, 0, sizeof *r);
    r->group = k_entries[id].group;
    snprintf(r->what, sizeof r->what, "%s", what);
    return g.n_rows++;
}

static int row_for(int id, int sub)
{
    int *slot = &g.row_of[id][sub];
    if (!*slot) {
        char what[48];
        if (id == P_ACT_FWD || id == P_ACT_BWD || id == P_ACT_FWD_SAVE || id == P_ACT_BWD_SAVED) {
            static const char *const acts[FR_ACT_COUNT] = {"identity", "silu", "gelu_tanh", "tanh", "sigmoid",
                                                           "relu"};
            snprintf(what, sizeof what, "%s %s", k_entries[id].name, (unsigned)sub < FR_ACT_COUNT ? acts[sub] : "?");
        } else {
            snprintf(what, sizeof what, "%s", k_entries[id].name);
        }
        *slot = new_row(id, what) + 1;
    }
    return *slot - 1;
}

/* The frozen ranges (the op table's freeze), mirrored so that a GEMM's row can say whether its
 * B lay in one (opt packs such a B once per frozen period: another cost than a plain call). */
static struct {
    pthread_mutex_t lock;
    fr_range_set set;
} g_frozen = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void w_freeze(const void *p, size_t bytes, int frozen)
{
    int ended;
    pthread_mutex_lock(&g_frozen.lock);
    (void)fr_range_set_freeze(&g_frozen.set, p, bytes, frozen, &ended);
    pthread_mutex_unlock(&g_frozen.lock);
    if (g.in->freeze) g.in->freeze(p, bytes, frozen);
}

static int in_frozen(const void *p, size_t bytes)
{
    pthread_mutex_lock(&g_frozen.lock);
    int in = fr_range_set_find(&g_frozen.set, p, bytes) >= 0;
    pthread_mutex_unlock(&g_frozen.lock);
    return in;
}

static int gemm_row(int ta, int tb, int acc, int64_t M, int64_t N, int64_t K, int frozen_b)
{
    for (int i = 0; i < g.n_rows; i++) {
        const fr_profile_row *r = &g.rows[i];
        if (r->is_gemm && r->ta == ta && r->tb == tb && r->acc == acc && r->M == M && r->N == N && r->K == K &&
            r->frozen_b == frozen_b)
            return i;
    }
    char what[48];
    const char *kind = !ta && tb ? "fwd NT" : !ta && !tb ? "dx NN" : ta && !tb ? "dW TN" : "TT";
    snprintf(what, sizeof what, "%s%s %lldx%lldx%lld%s", kind, acc ? "+" : "", (long long)M, (long long)N, (long long)K,
             frozen_b ? " B frozen" : "");
    int i = new_row(P_GEMM, what);
    if (i >= 0) {
        fr_profile_row *r = &g.rows[i];
        r->is_gemm = 1, r->ta = ta, r->tb = tb, r->acc = acc, r->M = M, r->N = N, r->K = K, r->frozen_b = frozen_b;
    }
    return i;
}

/* A frame for row (or -1: counted nowhere but still a child of its parent). */
static void enter(int row)
{
    if (g.depth >= MAX_DEPTH) {
        g.overflow++;
        return;
    }
    frame *f = &g.stack[g.depth];
    g.frame_gen[g.depth++] = g.gen;
    f->row = row, f->child = 0.0, f->t0 = now_s();
}

static void leave(void)
{
    if (g.overflow > 0) {
        g.overflow--;
        return;
    }
    if (g.depth <= 0) return;
    double t = now_s();
    frame *f = &g.stack[--g.depth];
    if (g.frame_gen[g.depth] != g.gen) return; /* opened before a reset */
    double dt = t - f->t0;
    if (f->row >= 0) {
        g.rows[f->row].calls++;
        g.rows[f->row].seconds += dt - f->child;
    }
    if (g.depth > 0) g.stack[g.depth - 1].child += dt;
}

void fr_profile_begin(fr_prof_region r)
{
    if (timed() && (unsigned)r < FR_PROF_N_REGIONS) enter(row_for(P_REGION0 + (int)r, 0));
}

void fr_profile_end(fr_prof_region r)
{
    if (timed() && (unsigned)r < FR_PROF_N_REGIONS) leave();
}

/* One wrapper per entry: time `call` as entry id (sub: the activation). */
#define TIMED(id, sub, call)                          \
    do {                                              \
        if (!timed()) {                               \
            call;                                     \
        } else {                                      \
            enter(row_for(id, sub));                  \
            call;                                     \
            leave();                                  \
        }                                             \
    } while (0)

static void *w_mem_alloc(size_t bytes)
{
    void *p;
    TIMED(P_MEM_ALLOC, 0, p = g.in->mem_alloc(bytes));
    return p;
}
static void w_mem_free(void *p) { TIMED(P_MEM_FREE, 0, g.in->mem_free(p)); }
static fr_status w_h2d(void *d, const void *s, size_t n)
{
    fr_status st;
    TIMED(P_H2D, 0, st = g.in->mem_h2d(d, s, n));
    return st;
}
static fr_status w_d2h(void *d, const void *s, size_t n)
{
    fr_status st;
    TIMED(P_D2H, 0, st = g.in->mem_d2h(d, s, n));
    return st;
}
static fr_status w_d2d(void *d, const void *s, size_t n)
{
    fr_status st;
    TIMED(P_D2D, 0, st = g.in->mem_d2d(d, s, n));
    return st;
}
static fr_status w_zero(void *p, size_t n)
{
    fr_status st;
    TIMED(P_ZERO, 0, st = g.in->mem_zero(p, n));
    return st;
}
static fr_status w_sync(void)
{
    fr_status st;
    TIMED(P_SYNC, 0, st = g.in->mem_sync());
    return st;
}

static void w_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                   int acc)
{
    if (!timed()) {
        g.in->gemm(ta, tb, M, N, K, A, B, C, acc);
        return;
    }
    enter(gemm_row(ta, tb, acc, M, N, K, in_frozen(B, (size_t)(K * N) * sizeof(float))));
    g.in->gemm(ta, tb, M, N, K, A, B, C, acc);
    leave();
}

static void w_bias_add(int64_t M, int64_t N, float *y, const float *b) { TIMED(P_BIAS_ADD, 0, g.in->bias_add(M, N, y, b)); }
static void w_bias_grad(int64_t M, int64_t N, const float *dy, float *db, int acc)
{
    TIMED(P_BIAS_GRAD, 0, g.in->bias_grad(M, N, dy, db, acc));
}
static void w_act_fwd(fr_act a, int64_t n, const float *x, float *y)
{
    TIMED(P_ACT_FWD, (unsigned)a < FR_ACT_COUNT ? (int)a : 0, g.in->act_fwd(a, n, x, y));
}
static void w_act_bwd(fr_act a, int64_t n, const float *x, const float *dy, float *dx, int acc)
{
    TIMED(P_ACT_BWD, (unsigned)a < FR_ACT_COUNT ? (int)a : 0, g.in->act_bwd(a, n, x, dy, dx, acc));
}
static void w_act_fwd_save(fr_act a, int64_t n, const float *x, float *y, float *s)
{
    TIMED(P_ACT_FWD_SAVE, (unsigned)a < FR_ACT_COUNT ? (int)a : 0, g.in->act_fwd_save(a, n, x, y, s));
}
static void w_act_bwd_saved(fr_act a, int64_t n, const float *x, const float *s, const float *dy, float *dx, int acc)
{
    TIMED(P_ACT_BWD_SAVED, (unsigned)a < FR_ACT_COUNT ? (int)a : 0, g.in->act_bwd_saved(a, n, x, s, dy, dx, acc));
}
static void w_ln_fwd(int64_t M, int64_t D, const float *x, const float *gm, const float *bt, float eps, float *y,
                     float *mean, float *rstd)
{
    TIMED(P_LN_FWD, 0, g.in->layernorm_fwd(M, D, x, gm, bt, eps, y, mean, rstd));
}
static void w_ln_bwd(int64_t M, int64_t D, const float *x, const float *gm, const float *mean, const float *rstd,
                     const float *dy, float *dx, float *dg, float *db, int acc)
{
    TIMED(P_LN_BWD, 0, g.in->layernorm_bwd(M, D, x, gm, mean, rstd, dy, dx, dg, db, acc));
}
static void w_binary(fr_binop op, int64_t n, const float *a, const float *b, float *out)
{
    TIMED(P_BINARY, 0, g.in->binary(op, n, a, b, out));
}
static void w_unary(fr_unop op, int64_t n, const float *x, float *out) { TIMED(P_UNARY, 0, g.in->unary(op, n, x, out)); }
static void w_axpby(int64_t n, float al, const float *x, float be, float *y)
{
    TIMED(P_AXPBY, 0, g.in->axpby(n, al, x, be, y));
}
static void w_scale(int64_t n, float al, const float *x, float *y) { TIMED(P_SCALE, 0, g.in->scale(n, al, x, y)); }
static void w_fill(int64_t n, float v, float *y) { TIMED(P_FILL, 0, g.in->fill(n, v, y)); }
static void w_copy(int64_t n, const float *s, float *d) { TIMED(P_COPY, 0, g.in->copy(n, s, d)); }
static void w_row_sum(int64_t M, int64_t N, const float *x, float *o) { TIMED(P_ROW_SUM, 0, g.in->row_sum(M, N, x, o)); }
static void w_row_mean(int64_t M, int64_t N, const float *x, float *o)
{
    TIMED(P_ROW_MEAN, 0, g.in->row_mean(M, N, x, o));
}
static void w_sum(int64_t n, const float *x, float *o) { TIMED(P_SUM, 0, g.in->sum(n, x, o)); }
static void w_global_norm(int c, const float *const *xs, const int64_t *ns, float *o)
{
    TIMED(P_GLOBAL_NORM, 0, g.in->global_norm(c, xs, ns, o));
}
static void w_adamw(int64_t n, float *p, const float *gr, float *m, float *v, const fr_adamw_hp *hp)
{
    TIMED(P_ADAMW, 0, g.in->adamw(n, p, gr, m, v, hp));
}
static void w_fm_loss(int64_t R, int64_t D, const float *v, const float *t, const float *rs, float *loss, float *gr)
{
    TIMED(P_FM_LOSS, 0, g.in->fm_loss(R, D, v, t, rs, loss, gr));
}
static void w_flow_target(int64_t R, int64_t B, int64_t D, const float *x0, const float *eps, float *t)
{
    TIMED(P_FLOW_TARGET, 0, g.in->flow_target(R, B, D, x0, eps, t));
}
static void w_awm_sqerr(int64_t R, int64_t B, int64_t D, const float *v, const float *eps, const float *x0, double *m)
{
    TIMED(P_AWM_SQERR, 0, g.in->awm_sqerr(R, B, D, v, eps, x0, m));
}
static void w_row_msd(int64_t R, int64_t D, const float *a, const float *b, double *m)
{
    TIMED(P_ROW_MSD, 0, g.in->row_msd_f64(R, D, a, b, m));
}
static void w_kl_grad_add(int64_t R, int64_t D, const float *a, const float *b1, const double *cb, const float *b2,
                          const double *ce, float *gr)
{
    TIMED(P_KL_GRAD_ADD, 0, g.in->kl_grad_add(R, D, a, b1, cb, b2, ce, gr));
}
static void w_ema_lerp(int64_t n, double d, const float *th, float *ema)
{
    TIMED(P_EMA_LERP, 0, g.in->ema_lerp(n, d, th, ema));
}
static void w_nft_rows(int64_t R, int64_t B, int64_t D, fr_nft_coef c, const float *t, const float *xt,
                       const float *v, const float *vo, const float *x0, double *out)
{
    TIMED(P_NFT_ROWS, 0, g.in->nft_rows(R, B, D, c, t, xt, v, vo, x0, out));
}
static void w_nft_grad(int64_t R, int64_t B, int64_t D, fr_nft_coef c, const float *t, const float *xt,
                       const float *v, const float *vo, const float *x0, const double *cpn, float *gr)
{
    TIMED(P_NFT_GRAD, 0, g.in->nft_grad(R, B, D, c, t, xt, v, vo, x0, cpn, gr));
}
static void w_temb(int64_t B, int64_t E, const float *t, float *emb) { TIMED(P_TEMB, 0, g.in->temb_sinusoidal(B, E, t, emb)); }
static void w_embed_gather(int64_t B, int64_t S, int64_t H, int64_t n, const float *tab, const int32_t *c, float *h)
{
    TIMED(P_EMBED_GATHER, 0, g.in->embed_gather_add(B, S, H, n, tab, c, h));
}
static void w_embed_scatter(int64_t B, int64_t S, int64_t H, int64_t n, const int32_t *c, const float *dh,
                            float *dtab)
{
    TIMED(P_EMBED_SCATTER, 0, g.in->embed_scatter_add(B, S, H, n, c, dh, dtab));
}
static void w_x0_fwd(int64_t B, int64_t D, float sm, const float *t, const float *x, const float *xo, float *den,
                     float *out)
{
    TIMED(P_X0_FWD, 0, g.in->x0_head_fwd(B, D, sm, t, x, xo, den, out));
}
static void w_x0_bwd(int64_t B, int64_t D, const float *den, const float *dout, float *dxo)
{
    TIMED(P_X0_BWD, 0, g.in->x0_head_bwd(B, D, den, dout, dxo));
}
static void w_eps_fwd(int64_t B, int64_t D, int64_t n, const float *tab, const float *t, const float *x,
                      const float *xo, float *coef, float *out)
{
    TIMED(P_EPS_FWD, 0, g.in->eps_head_fwd(B, D, n, tab, t, x, xo, coef, out));
}
static void w_eps_bwd(int64_t B, int64_t D, const float *coef, const float *dout, float *dxo, float *dx)
{
    TIMED(P_EPS_BWD, 0, g.in->eps_head_bwd(B, D, coef, dout, dxo, dx));
}
static void w_noise_mix(int64_t R, int64_t B, int64_t D, const float *x0, const float *eps, const float *a,
                        const float *s, float *x)
{
    TIMED(P_NOISE_MIX, 0, g.in->noise_mix(R, B, D, x0, eps, a, s, x));
}
static void w_sampler_step(int64_t B, int64_t D, fr_step_coef q, const float *x, const float *mo, const float *x0p,
                           const float *xi, float *xn, float *mean, float *logp)
{
    TIMED(P_SAMPLER_STEP, 0, g.in->sampler_step(B, D, q, x, mo, x0p, xi, xn, mean, logp));
}
static void w_sampler_logprob(int64_t B, int64_t D, fr_step_coef q, const float *x, const float *mo,
                              const float *x0p, const float *xn, const float *mi, float *mout, float *logp)
{
    TIMED(P_SAMPLER_LOGPROB, 0, g.in->sampler_logprob(B, D, q, x, mo, x0p, xn, mi, mout, logp));
}
static void w_cfg(int64_t n, float gs, const float *vu, const float *vc, float *out)
{
    TIMED(P_CFG, 0, g.in->cfg_combine(n, gs, vu, vc, out));
}
static void w_flow_x0(int64_t n, float sigma, const float *x, const float *v, float *x0)
{
    TIMED(P_FLOW_X0, 0, g.in->flow_x0(n, sigma, x, v, x0));
}
static void w_rng_normal(int64_t R, int64_t D, uint32_t seed, uint32_t pur, uint32_t c0, int64_t n1,
                         const uint32_t *c1, uint32_t c2, float *out)
{
    TIMED(P_RNG_NORMAL, 0, g.in->rng_normal_rows(R, D, seed, pur, c0, n1, c1, c2, out));
}
static void w_noise_fm(int64_t R, int64_t n1, int64_t D, uint32_t seed, uint32_t pur, uint32_t c0, uint32_t c2,
                       const uint32_t *ids, const float *x0, const float *t, float *xt, float *eps)
{
    TIMED(P_NOISE_FM, 0, g.in->noise_fm(R, n1, D, seed, pur, c0, c2, ids, x0, t, xt, eps));
}
static void w_gather_rows(int64_t R, int64_t D, const int32_t *idx, int64_t ns, const float *src, float *dst)
{
    TIMED(P_GATHER_ROWS, 0, g.in->gather_rows(R, D, idx, ns, src, dst));
}
static void w_logp_bwd(int64_t B, int64_t D, int cps, float tv, const float *xn, const float *mean,
                       const float *gl, float *gm, int acc)
{
    TIMED(P_LOGP_BWD, 0, g.in->logp_backward(B, D, cps, tv, xn, mean, gl, gm, acc));
}
static void w_row_sumsq_diff(int64_t R, int64_t D, const float *a, const float *b, float *out)
{
    TIMED(P_ROW_SUMSQ_DIFF, 0, g.in->row_sumsq_diff(R, D, a, b, out));
}
static void w_kl_grad(int64_t n, float gk, const float *mean, const float *mr, float *gr, int acc)
{
    TIMED(P_KL_GRAD, 0, g.in->kl_grad(n, gk, mean, mr, gr, acc));
}
static void w_guard_grad(int64_t B, int64_t D, const float *xn, const float *mean, const float *mo, const float *gd,
                         const float *gm, float *gr, int acc)
{
    TIMED(P_GUARD_GRAD, 0, g.in->guard_grad(B, D, xn, mean, mo, gd, gm, gr, acc));
}

const fr_ops *fr_profile_ops(const fr_ops *inner)
{
    if (!inner) return NULL;
    if (g.in == inner) return &g.table;
    if (g.in) return NULL;
    g.in = inner;
    g.table = *inner; /* entries added after this file keep inner's (untimed, in "other") */
    fr_ops *t = &g.table;
    t->mem_alloc = w_mem_alloc, t->mem_free = w_mem_free, t->mem_h2d = w_h2d, t->mem_d2h = w_d2h;
    t->mem_d2d = w_d2d, t->mem_zero = w_zero, t->mem_sync = w_sync;
    t->freeze = w_freeze, t->gemm = w_gemm, t->bias_add = w_bias_add, t->bias_grad = w_bias_grad;
    t->act_fwd = w_act_fwd, t->act_bwd = w_act_bwd, t->layernorm_fwd = w_ln_fwd, t->layernorm_bwd = w_ln_bwd;
    t->binary = w_binary, t->unary = w_unary, t->axpby = w_axpby, t->scale = w_scale, t->fill = w_fill;
    t->copy = w_copy, t->row_sum = w_row_sum, t->row_mean = w_row_mean, t->sum = w_sum;
    t->global_norm = w_global_norm, t->adamw = w_adamw, t->fm_loss = w_fm_loss, t->flow_target = w_flow_target;
    t->awm_sqerr = w_awm_sqerr, t->row_msd_f64 = w_row_msd, t->kl_grad_add = w_kl_grad_add;
    t->ema_lerp = w_ema_lerp, t->nft_rows = w_nft_rows, t->nft_grad = w_nft_grad;
    t->temb_sinusoidal = w_temb, t->embed_gather_add = w_embed_gather, t->embed_scatter_add = w_embed_scatter;
    t->x0_head_fwd = w_x0_fwd, t->x0_head_bwd = w_x0_bwd, t->eps_head_fwd = w_eps_fwd, t->eps_head_bwd = w_eps_bwd;
    t->noise_mix = w_noise_mix, t->sampler_step = w_sampler_step, t->sampler_logprob = w_sampler_logprob;
    t->cfg_combine = w_cfg, t->flow_x0 = w_flow_x0, t->rng_normal_rows = w_rng_normal, t->noise_fm = w_noise_fm;
    t->gather_rows = w_gather_rows, t->logp_backward = w_logp_bwd, t->row_sumsq_diff = w_row_sumsq_diff;
    t->kl_grad = w_kl_grad, t->guard_grad = w_guard_grad;
    t->act_fwd_save = w_act_fwd_save, t->act_bwd_saved = w_act_bwd_saved;
    g.owner = pthread_self();
    g.on = 1;
    fr_opt_pool_timing(1);
    fr_profile_reset();
    return &g.table;
}

void fr_profile_reset(void)
{
    g.n_rows = 0;
    memset(g.row_of, 0, sizeof g.row_of);
    g.gen++;
    fr_opt_pool_stats(&g.pool_wait0, &g.pool_jobs0);
}

int fr_profile_rows(fr_profile_row *rows, int max)
{
    for (int i = 0; i < g.n_rows && i < max; i++) rows[i] = g.rows[i];
    return g.n_rows;
}

void fr_profile_pool(double *wait_s, uint64_t *jobs)
{
    double w;
    uint64_t j;
    fr_opt_pool_stats(&w, &j);
    if (wait_s) *wait_s = w - g.pool_wait0;
    if (jobs) *jobs = j - g.pool_jobs0;
}

static int by_seconds(const void *a, const void *b)
{
    double x = ((const fr_profile_row *)a)->seconds, y = ((const fr_profile_row *)b)->seconds;
    return x < y ? 1 : x > y ? -1 : 0;
}

void fr_profile_print(FILE *f, double total_s)
{
    fr_profile_row rows[MAX_ROWS];
    int n = fr_profile_rows(rows, MAX_ROWS);
    double sum = 0, gsec[N_GROUPS] = {0};
    uint64_t gcalls[N_GROUPS] = {0};
    for (int i = 0; i < n; i++) {
        sum += rows[i].seconds;
        for (int k = 0; k < N_GROUPS; k++)
            if (strcmp(rows[i].group, k_group_order[k]) == 0) gsec[k] += rows[i].seconds, gcalls[k] += rows[i].calls;
    }
    if (total_s <= 0) total_s = sum;
    double wait_s;
    uint64_t jobs;
    fr_profile_pool(&wait_s, &jobs);
    fprintf(f, "| group | calls | seconds | share |\n|---|---|---|---|\n");
    for (int k = 0; k < N_GROUPS; k++)
        if (gcalls[k])
            fprintf(f, "| %s | %llu | %.4f | %.1f%% |\n", k_group_order[k], (unsigned long long)gcalls[k], gsec[k],
                    100 * gsec[k] / total_s);
    fprintf(f, "| other host code (not an op entry or region) | - | %.4f | %.1f%% |\n", total_s - sum,
            100 * (total_s - sum) / total_s);
    fprintf(f, "| *of the ops above: the pool's caller waiting for its workers* | %llu jobs | %.4f | %.1f%% |\n\n",
            (unsigned long long)jobs, wait_s, 100 * wait_s / total_s);
    qsort(rows, (size_t)n, sizeof *rows, by_seconds);
    fprintf(f, "| group | entry | calls | seconds | share | GFLOP/s |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const fr_profile_row *r = &rows[i];
        fprintf(f, "| %s | %s | %llu | %.4f | %.1f%% |", r->group, r->what, (unsigned long long)r->calls, r->seconds,
                100 * r->seconds / total_s);
        if (r->is_gemm && r->seconds > 0)
            fprintf(f, " %.1f |\n", 2e-9 * (double)r->M * (double)r->N * (double)r->K * (double)r->calls / r->seconds);
        else
            fprintf(f, " - |\n");
    }
}

static char g_env_path[1024];

static void write_at_exit(void)
{
    FILE *f = strcmp(g_env_path, "-") == 0 ? stderr : fopen(g_env_path, "w");
    if (!f) return;
    fprintf(f, "flowrl profile (FLOWRL_PROFILE): the whole process, self times\n\n");
    fr_profile_print(f, 0.0);
    if (f != stderr) fclose(f);
}

const fr_ops *fr_profile_from_env(const fr_ops *inner)
{
    const char *p = getenv("FLOWRL_PROFILE");
    if (!p || !*p) return inner;
    const fr_ops *t = fr_profile_ops(inner);
    if (!t) return inner; /* another table is being profiled */
    if (!g_env_path[0]) {
        snprintf(g_env_path, sizeof g_env_path, "%s", p);
        atexit(write_at_exit);
    }
    return t;
}
