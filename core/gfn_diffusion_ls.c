/* The replay buffer and MALA local search of the diffusion samplers (flowrl/gfn_diffusion_ls.h;
 * docs/algorithms/gfn-diffusion.md §8; read from GFNOrg/gfn-diffusion@255b499
 * energy_sampling/buffer.py and langevin.py, written here anew). Host float64; draws from Philox. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gfn_diffusion_ls.h"
#include "flowrl/philox.h"
#include "flowrl/tensor.h"

struct fr_gfnd_replay {
    int64_t cap, D, n, next; /* items held, the slot the next item overwrites */
    int64_t seq_next;        /* insertion number of the next item (ties of log R: the older first) */
    int rank;
    double rank_weight;
    double *x, *logr;        /* (cap, D), (cap,) */
    int64_t *seq;            /* (cap,) */
    int64_t *order;          /* (cap,) slots by rank: log R descending, then seq ascending */
    double *cum;             /* (cap,) cum[r] = Σ_{i ≤ r} 1 / (rank_weight·n + i) */
    int dirty;               /* order and cum stale */
};

fr_status fr_gfnd_replay_new(fr_gfnd_replay **out, int64_t cap, int64_t D, int rank, double rank_weight)
{
    *out = NULL;
    if (cap < 1 || D < 1 || !(rank_weight >= 0.0))
        return fr_fail(FR_ERR_ARG, "gfn-diffusion: replay buffer of %lld items of %lld dims, rank weight %g", (long long)cap,
                       (long long)D, rank_weight);
    fr_gfnd_replay *r = fr_calloc(1, sizeof *r);
    if (!r) return FR_ERR_NOMEM;
    r->cap = cap;
    r->D = D;
    r->rank = rank;
    r->rank_weight = rank_weight;
    r->x = fr_malloc((size_t)(cap * D) * sizeof *r->x);
    r->logr = fr_malloc((size_t)cap * sizeof *r->logr);
    r->seq = fr_malloc((size_t)cap * sizeof *r->seq);
    r->order = fr_malloc((size_t)cap * sizeof *r->order);
    r->cum = fr_malloc((size_t)cap * sizeof *r->cum);
    if (!r->x || !r->logr || !r->seq || !r->order || !r->cum) {
        fr_gfnd_replay_free(r);
        return FR_ERR_NOMEM;
    }
    *out = r;
    return FR_OK;
}

void fr_gfnd_replay_free(fr_gfnd_replay *r)
{
    if (!r) return;
    free(r->x);
    free(r->logr);
    free(r->seq);
    free(r->order);
    free(r->cum);
    free(r);
}

int64_t fr_gfnd_replay_size(const fr_gfnd_replay *r) { return r->n; }

fr_status fr_gfnd_replay_add(fr_gfnd_replay *r, const double *x, const double *logr, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        memcpy(r->x + r->next * r->D, x + i * r->D, (size_t)r->D * sizeof *x);
        r->logr[r->next] = logr[i];
        r->seq[r->next] = r->seq_next++;
        r->next = (r->next + 1) % r->cap;
        if (r->n < r->cap) r->n++;
    }
    if (n > 0) r->dirty = 1;
    return FR_OK;
}

/* A total order: log R descending (NaN last), then the older item first. */
static const fr_gfnd_replay *g_sort_r;
static int by_rank(const void *pa, const void *pb)
{
    const int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    const double la = g_sort_r->logr[a], lb = g_sort_r->logr[b];
    const int na = isnan(la), nb = isnan(lb);
    if (na != nb) return na - nb;
    if (!na && la != lb) return la > lb ? -1 : 1;
    return g_sort_r->seq[a] < g_sort_r->seq[b] ? -1 : g_sort_r->seq[a] > g_sort_r->seq[b];
}

/* buffer.py: ranks = argsort(argsort(−log R)), weights 1 / (1e-2·N + rank) (the code writes the
 * README's rank_weight 0.01 as a literal; here the option). */
static void refresh(fr_gfnd_replay *r)
{
    if (!r->dirty) return;
    for (int64_t i = 0; i < r->n; i++) r->order[i] = i;
    g_sort_r = r; /* qsort has no context argument in C11; the trainer is single-threaded on the host */
    qsort(r->order, (size_t)r->n, sizeof *r->order, by_rank);
    g_sort_r = NULL;
    double s = 0.0;
    for (int64_t i = 0; i < r->n; i++) {
        s += 1.0 / (r->rank_weight * (double)r->n + (double)i);
        r->cum[i] = s;
    }
    r->dirty = 0;
}

fr_status fr_gfnd_replay_sample(fr_gfnd_replay *r, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1,
                                double *x, double *logr, int64_t *rank)
{
    if (r->n == 0) return fr_fail(FR_ERR_ARG, "gfn-diffusion: a draw from an empty replay buffer");
    refresh(r);
    for (int64_t i = 0; i < n; i++) {
        /* a uniform of 53 bits in [0, 1) from two words */
        const uint32_t hi = fr_rng_u32(seed, purpose, c0, c1, 0, (uint32_t)(2 * i)) >> 5;
        const uint32_t lo = fr_rng_u32(seed, purpose, c0, c1, 0, (uint32_t)(2 * i + 1)) >> 6;
        const double u = ((double)hi * 67108864.0 + (double)lo) * 0x1.0p-53;
        int64_t k;
        if (r->rank) { /* the first rank whose cumulative weight exceeds u·W */
            const double v = u * r->cum[r->n - 1];
            int64_t lo_i = 0, hi_i = r->n - 1;
            while (lo_i < hi_i) {
                const int64_t mid = lo_i + (hi_i - lo_i) / 2;
                if (r->cum[mid] > v) hi_i = mid;
                else lo_i = mid + 1;
            }
            k = lo_i;
        } else {
            k = (int64_t)(u * (double)r->n);
            if (k >= r->n) k = r->n - 1;
        }
        const int64_t slot = r->rank ? r->order[k] : k;
        memcpy(x + i * r->D, r->x + slot * r->D, (size_t)r->D * sizeof *x);
        logr[i] = r->logr[slot];
        if (rank) rank[i] = k;
    }
    return FR_OK;
}

static fr_status add_copy(fr_st_file *f, const char *prefix, const char *what, fr_dtype dt, int nd, const int64_t *shape,
                          const void *src, size_t bytes)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    fr_tensor t;
    FR_TRY(fr_tensor_alloc(&t, dt, nd, shape));
    if (bytes) memcpy(t.data, src, bytes);
    return fr_st_add_take(f, name, &t);
}

fr_status fr_gfnd_replay_save(const fr_gfnd_replay *r, fr_st_file *f, const char *prefix)
{
    const int64_t two = 2, xs[2] = {r->n, r->D};
    const int64_t meta[2] = {r->next, r->seq_next};
    FR_TRY(add_copy(f, prefix, "meta", FR_I64, 1, &two, meta, sizeof meta));
    if (r->n == 0) return FR_OK;
    FR_TRY(add_copy(f, prefix, "x", FR_F64, 2, xs, r->x, (size_t)(r->n * r->D) * sizeof(double)));
    FR_TRY(add_copy(f, prefix, "logr", FR_F64, 1, &r->n, r->logr, (size_t)r->n * sizeof(double)));
    return add_copy(f, prefix, "seq", FR_I64, 1, &r->n, r->seq, (size_t)r->n * sizeof(int64_t));
}

static const fr_tensor *get(const fr_st_file *f, const char *prefix, const char *what, fr_dtype dt, int nd, int64_t d0,
                            int64_t d1)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    const fr_tensor *t = fr_st_get(f, name);
    if (!t || t->dtype != dt || t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1)) return NULL;
    return t;
}

fr_status fr_gfnd_replay_load(fr_gfnd_replay *r, const fr_st_file *f, const char *prefix, const char *path)
{
    const fr_tensor *m = get(f, prefix, "meta", FR_I64, 1, 2, 0);
    if (!m) return fr_fail(FR_ERR_FORMAT, "%s: %s.meta missing or not I64 (2,)", path, prefix);
    const int64_t *mv = m->data;
    char name[128];
    snprintf(name, sizeof name, "%s.logr", prefix);
    const fr_tensor *l = fr_st_get(f, name);
    const int64_t n = l ? l->shape[0] : 0;
    if (mv[0] < 0 || mv[0] >= r->cap || n > r->cap || (n < r->cap && mv[0] != n))
        return fr_fail(FR_ERR_FORMAT, "%s: %s holds %lld items, next slot %lld: not a buffer of %lld", path, prefix,
                       (long long)n, (long long)mv[0], (long long)r->cap);
    r->n = n;
    r->next = mv[0];
    r->seq_next = mv[1];
    r->dirty = 1;
    if (n == 0) return FR_OK;
    const fr_tensor *x = get(f, prefix, "x", FR_F64, 2, n, r->D), *lr = get(f, prefix, "logr", FR_F64, 1, n, 0),
                    *sq = get(f, prefix, "seq", FR_I64, 1, n, 0);
    if (!x || !lr || !sq)
        return fr_fail(FR_ERR_FORMAT, "%s: %s.x (%lld, %lld) F64, .logr, .seq (%lld,) expected", path, prefix,
                       (long long)n, (long long)r->D, (long long)n);
    memcpy(r->x, x->data, (size_t)(n * r->D) * sizeof(double));
    memcpy(r->logr, lr->data, (size_t)n * sizeof(double));
    memcpy(r->seq, sq->data, (size_t)n * sizeof(int64_t));
    return FR_OK;
}

/* ---- MALA (langevin.py) ------------------------------------------------------------------------ */

double fr_gfnd_mala_log_accept(const double *x, const double *xn, const double *g, const double *gn, double lr,
                               double lrn, double h, int64_t D)
{
    double qf = 0.0, qb = 0.0;
    for (int64_t d = 0; d < D; d++) {
        const double a = xn[d] - x[d] - h * g[d], b = x[d] - xn[d] - h * gn[d];
        qf += a * a;
        qb += b * b;
    }
    return (lrn - lr) + (-qb / (4.0 * h)) - (-qf / (4.0 * h));
}

fr_status fr_gfnd_local_search(const fr_env *env, const fr_gfnd_ls_opts *o, int64_t n, double *x, double *lr,
                               uint32_t seed, uint32_t c0, fr_gfnd_replay *out, fr_gfnd_ls_info *info)
{
    const int64_t D = env->state_dim, keep_max = (o->iters > o->burn_in + 1 ? o->iters - o->burn_in - 1 : 0) * n;
    if (!(o->step > 0.0) || o->iters < 0 || o->burn_in < 0)
        return fr_fail(FR_ERR_ARG, "gfn-diffusion: local search of %lld iterations, burn-in %lld, step %g",
                       (long long)o->iters, (long long)o->burn_in, o->step);
    double *g = fr_malloc((size_t)(3 * n * D) * sizeof *g), *xn = g + n * D, *gn = xn + n * D;
    double *lrn = fr_malloc((size_t)n * sizeof *lrn);
    double *kx = fr_malloc((size_t)(keep_max * D + 1) * sizeof *kx), *kl = fr_malloc((size_t)(keep_max + 1) * sizeof *kl);
    if (!g || !lrn || !kx || !kl) {
        free(g), free(lrn), free(kx), free(kl);
        return FR_ERR_NOMEM;
    }
    /* langevin.py: log R and its gradient by autograd, with no clip and no NaN fix */
    for (int64_t b = 0; b < n; b++) lr[b] = env->energy->grad_log_reward(env, x + b * D, g + b * D);
    int64_t kept = 0, acc_window = 0, tot_window = 0, acc_all = 0;
    double h = o->step, rate = 0.0;
    for (int64_t i = 0; i < o->iters; i++) {
        if (o->schedule && i > 0) h = rate > o->target_rate ? h + 0.01 * h : h - 0.01 * h; /* adjust_ld_step */
        const double s2h = sqrt(2.0 * h);
        for (int64_t b = 0; b < n; b++) {
            for (int64_t d = 0; d < D; d++)
                xn[b * D + d] = x[b * D + d] + h * g[b * D + d] +
                                s2h * (double)fr_rng_normal(seed, FR_RNG_GFND_LS_NOISE, c0, (uint32_t)b, (uint32_t)i, (uint32_t)d);
            lrn[b] = env->energy->grad_log_reward(env, xn + b * D, gn + b * D);
        }
        for (int64_t b = 0; b < n; b++) {
            double la = fr_gfnd_mala_log_accept(x + b * D, xn + b * D, g + b * D, gn + b * D, lr[b], lrn[b], h, D);
            if (la > 0.0) la = 0.0; /* torch.clamp(max = 0) keeps a NaN: exp(NaN) rejects */
            const double u = (double)fr_rng_uniform(seed, FR_RNG_GFND_LS_ACCEPT, c0, (uint32_t)i, 0, (uint32_t)b);
            if (!(u < fr_awm_exp(la))) continue;
            acc_window++;
            if (i > o->burn_in) {
                memcpy(kx + kept * D, xn + b * D, (size_t)D * sizeof *kx);
                kl[kept++] = lrn[b];
            }
            memcpy(x + b * D, xn + b * D, (size_t)D * sizeof *x);
            memcpy(g + b * D, gn + b * D, (size_t)D * sizeof *g);
            lr[b] = lrn[b];
        }
        tot_window += n;
        if (i % 5 == 0) { /* the rate of the window since the last reading */
            rate = (double)acc_window / (double)tot_window;
            acc_all += acc_window;
            acc_window = tot_window = 0;
        }
    }
    acc_all += acc_window;
    fr_status s = out ? fr_gfnd_replay_add(out, kx, kl, kept) : FR_OK;
    if (info) {
        info->kept = kept;
        info->accept_rate = o->iters > 0 ? (double)acc_all / (double)(o->iters * n) : 0.0;
        info->last_step = h;
    }
    free(g), free(lrn), free(kx), free(kl);
    return s;
}
