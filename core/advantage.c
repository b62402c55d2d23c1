/* Advantage estimators (docs/algorithms/advantages.md §1.1, §1.4): group statistics in the canonical
 * orders of flowrl/reduce.h; see flowrl/advantage.h for every arithmetic decision. */
#include "flowrl/advantage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/advantage_internal.h"
#include "flowrl/philox.h"
#include "flowrl/reduce.h"

static int finite_f(float v) { return v == v && v - v == 0.0f; }

fr_status fr_adv_check_rewards(const char *fn, int64_t B, const float *r)
{
    if (B < 1 || B > ((int64_t)1 << 31)) return fr_fail(FR_ERR_ARG, "%s: batch %lld, expected >= 1", fn, (long long)B);
    for (int64_t i = 0; i < B; i++)
        if (!finite_f(r[i]))
            return fr_fail(FR_ERR_NUMERIC, "%s: reward[%lld] = %g, expected a finite value", fn, (long long)i,
                           (double)r[i]);
    return FR_OK;
}

fr_status fr_adv_check_eps(const char *fn, float eps)
{
    if (!(eps > 0.0f) || !finite_f(eps)) return fr_fail(FR_ERR_ARG, "%s: eps %g, expected finite > 0", fn, (double)eps);
    return FR_OK;
}

int fr_adv_all_equal(const float *x, int64_t n)
{
    for (int64_t i = 1; i < n; i++)
        if (x[i] != x[0]) return 0;
    return 1;
}

float fr_adv_group_mean(const float *x, int64_t n)
{
    /* the mean of equal values is the value; float64 numpy gets this exactly */
    return fr_adv_all_equal(x, n) ? x[0] : fr_mean_canonical(x, n);
}

void fr_adv_group_stats(const float *x, int64_t n, int ddof, float *mean, float *std)
{
    if (fr_adv_all_equal(x, n)) {
        *mean = x[0];
        *std = 0.0f;
        return;
    }
    float m = fr_mean_canonical(x, n);
    *mean = m;
    *std = sqrtf(fr_sumsq_centered_canonical(x, n, m) / (float)(n - ddof));
}

fr_status fr_adv_mean_std(const float *x, int64_t n, float *mean, float *std)
{
    if (!x || !mean || !std) return fr_fail(FR_ERR_ARG, "fr_adv_mean_std: NULL argument");
    FR_TRY(fr_adv_check_rewards("fr_adv_mean_std", n, x));
    fr_adv_group_stats(x, n, 0, mean, std);
    return FR_OK;
}

fr_status fr_adv_batch(int64_t B, const float *rewards, float eps, float *adv)
{
    if (!rewards || !adv) return fr_fail(FR_ERR_ARG, "fr_adv_batch: NULL array");
    FR_TRY(fr_adv_check_rewards("fr_adv_batch", B, rewards));
    FR_TRY(fr_adv_check_eps("fr_adv_batch", eps));
    float m, s;
    fr_adv_group_stats(rewards, B, 0, &m, &s);
    float den = s + eps;
    for (int64_t i = 0; i < B; i++) adv[i] = (rewards[i] - m) / den;
    return FR_OK;
}

typedef struct {
    int64_t g, i;
} gi_pair;

static int cmp_gi(const void *pa, const void *pb)
{
    const gi_pair *a = pa, *b = pb;
    if (a->g != b->g) return a->g < b->g ? -1 : 1;
    return a->i < b->i ? -1 : (a->i > b->i);
}

fr_status fr_adv_per_prompt(int64_t B, const float *rewards, const int64_t *group, int global_std, float eps,
                            float *adv)
{
    if (!rewards || !group || !adv) return fr_fail(FR_ERR_ARG, "fr_adv_per_prompt: NULL array");
    FR_TRY(fr_adv_check_rewards("fr_adv_per_prompt", B, rewards));
    FR_TRY(fr_adv_check_eps("fr_adv_per_prompt", eps));
    gi_pair *order = fr_malloc((size_t)B * sizeof *order);
    float *buf = fr_malloc((size_t)B * sizeof *buf);
    if (!order || !buf) {
        free(order);
        free(buf);
        return FR_ERR_NOMEM;
    }
    for (int64_t i = 0; i < B; i++) order[i] = (gi_pair){group[i], i};
    qsort(order, (size_t)B, sizeof *order, cmp_gi); /* by group, then sample order */
    float gm, gs = 0.0f;
    if (global_std) fr_adv_group_stats(rewards, B, 0, &gm, &gs); /* np.std(rewards): all gathered rewards */
    for (int64_t a = 0; a < B;) {
        int64_t e = a;
        while (e < B && order[e].g == order[a].g) {
            buf[e - a] = rewards[order[e].i];
            e++;
        }
        float m, s;
        fr_adv_group_stats(buf, e - a, 0, &m, &s);
        float den = (global_std ? gs : s) + eps;
        for (int64_t k = a; k < e; k++) adv[order[k].i] = (rewards[order[k].i] - m) / den;
        a = e;
    }
    free(order);
    free(buf);
    return FR_OK;
}

typedef struct {
    uint32_t w;
    int64_t k, i; /* rank among the dropped, sample index */
} drop_key;

static int cmp_drop(const void *pa, const void *pb)
{
    const drop_key *a = pa, *b = pb;
    if (a->w != b->w) return a->w < b->w ? -1 : 1;
    return a->k < b->k ? -1 : (a->k > b->k);
}

fr_status fr_adv_filter_zero(int64_t B, const float *adv, int64_t num_batches, uint32_t seed, uint32_t purpose,
                             uint32_t c0, uint32_t c1, uint8_t *keep, int64_t *kept)
{
    if (!adv || !keep || !kept) return fr_fail(FR_ERR_ARG, "fr_adv_filter_zero: NULL argument");
    if (B < 1 || B > ((int64_t)1 << 31) || num_batches < 1)
        return fr_fail(FR_ERR_ARG, "fr_adv_filter_zero: batch %lld, num_batches %lld, expected >= 1", (long long)B,
                       (long long)num_batches);
    int64_t nkeep = 0;
    for (int64_t i = 0; i < B; i++) {
        /* `advantages.abs().sum(dim=1) != 0`: a NaN advantage is kept (NaN != 0) */
        keep[i] = adv[i] != 0.0f;
        nkeep += keep[i];
    }
    int64_t rem = nkeep % num_batches;
    int64_t ndrop = B - nkeep;
    if (rem != 0 && ndrop >= num_batches - rem) {
        int64_t m = num_batches - rem;
        drop_key *d = fr_malloc((size_t)ndrop * sizeof *d);
        if (!d) return FR_ERR_NOMEM;
        int64_t k = 0;
        for (int64_t i = 0; i < B; i++)
            if (!keep[i]) {
                d[k].w = fr_rng_u32(seed, purpose, c0, c1, 0, (uint32_t)k);
                d[k].k = k;
                d[k].i = i;
                k++;
            }
        qsort(d, (size_t)ndrop, sizeof *d, cmp_drop);
        for (int64_t j = 0; j < m; j++) keep[d[j].i] = 1;
        nkeep += m;
        free(d);
    }
    *kept = nkeep;
    return FR_OK;
}

/* ---- DDPO deque tracker ------------------------------------------------------------- */

typedef struct {
    int64_t key;
    float *ring; /* buffer_size slots */
    int64_t head, len; /* oldest at ring[head] */
} ddpo_entry;

struct fr_ddpo_tracker {
    int64_t buffer_size, min_count;
    float eps;
    ddpo_entry *e; /* sorted by key */
    int64_t n, cap;
};

fr_status fr_ddpo_tracker_new(int64_t buffer_size, int64_t min_count, float eps, fr_ddpo_tracker **out)
{
    if (!out) return fr_fail(FR_ERR_ARG, "fr_ddpo_tracker_new: NULL output");
    *out = NULL;
    if (buffer_size < 1 || buffer_size > ((int64_t)1 << 24) || min_count < 0)
        return fr_fail(FR_ERR_ARG, "fr_ddpo_tracker_new: buffer_size %lld, min_count %lld, expected >= 1 and >= 0",
                       (long long)buffer_size, (long long)min_count);
    FR_TRY(fr_adv_check_eps("fr_ddpo_tracker_new", eps));
    fr_ddpo_tracker *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    t->buffer_size = buffer_size;
    t->min_count = min_count;
    t->eps = eps;
    *out = t;
    return FR_OK;
}

void fr_ddpo_tracker_free(fr_ddpo_tracker *t)
{
    if (!t) return;
    for (int64_t i = 0; i < t->n; i++) free(t->e[i].ring);
    free(t->e);
    free(t);
}

/* index of key, or -(insertion point) − 1 */
static int64_t find_key(const fr_ddpo_tracker *t, int64_t key)
{
    int64_t lo = 0, hi = t->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (t->e[mid].key < key) lo = mid + 1;
        else hi = mid;
    }
    return (lo < t->n && t->e[lo].key == key) ? lo : -lo - 1;
}

static fr_status get_entry(fr_ddpo_tracker *t, int64_t key, ddpo_entry **out)
{
    int64_t at = find_key(t, key);
    if (at >= 0) {
        *out = &t->e[at];
        return FR_OK;
    }
    at = -at - 1;
    if (t->n == t->cap) {
        int64_t nc = t->cap ? 2 * t->cap : 16;
        ddpo_entry *ne = realloc(t->e, (size_t)nc * sizeof *ne);
        if (!ne) return fr_fail(FR_ERR_NOMEM, "fr_ddpo_tracker: out of memory growing to %lld groups", (long long)nc);
        t->e = ne;
        t->cap = nc;
    }
    float *ring = fr_malloc((size_t)t->buffer_size * sizeof(float));
    if (!ring) return FR_ERR_NOMEM;
    memmove(t->e + at + 1, t->e + at, (size_t)(t->n - at) * sizeof *t->e);
    t->e[at] = (ddpo_entry){key, ring, 0, 0};
    t->n++;
    *out = &t->e[at];
    return FR_OK;
}

/* deque(maxlen).extend: append, dropping the oldest when full */
static void ring_push(ddpo_entry *e, int64_t cap, float v)
{
    if (e->len < cap) {
        e->ring[(e->head + e->len) % cap] = v;
        e->len++;
    } else {
        e->ring[e->head] = v;
        e->head = (e->head + 1) % cap;
    }
}

static void ring_copy(const ddpo_entry *e, int64_t cap, float *out)
{
    for (int64_t k = 0; k < e->len; k++) out[k] = e->ring[(e->head + k) % cap];
}

fr_status fr_ddpo_tracker_update(fr_ddpo_tracker *t, int64_t B, const float *rewards, const int64_t *group, float *adv)
{
    if (!t || !rewards || !group || !adv) return fr_fail(FR_ERR_ARG, "fr_ddpo_tracker_update: NULL argument");
    FR_TRY(fr_adv_check_rewards("fr_ddpo_tracker_update", B, rewards));
    gi_pair *order = fr_malloc((size_t)B * sizeof *order);
    float *buf = fr_malloc((size_t)(B > t->buffer_size ? B : t->buffer_size) * sizeof *buf);
    if (!order || !buf) {
        free(order);
        free(buf);
        return FR_ERR_NOMEM;
    }
    for (int64_t i = 0; i < B; i++) order[i] = (gi_pair){group[i], i};
    qsort(order, (size_t)B, sizeof *order, cmp_gi);
    float bm, bs;
    fr_adv_group_stats(rewards, B, 0, &bm, &bs); /* np.mean(rewards), np.std(rewards): the whole batch */
    fr_status st = FR_OK;
    for (int64_t a = 0; a < B;) {
        int64_t e = a;
        while (e < B && order[e].g == order[a].g) e++;
        ddpo_entry *en = NULL;
        st = get_entry(t, order[a].g, &en);
        if (st != FR_OK) break;
        for (int64_t k = a; k < e; k++) ring_push(en, t->buffer_size, rewards[order[k].i]);
        float m = bm, s = bs;
        if (en->len >= t->min_count) {
            ring_copy(en, t->buffer_size, buf);
            fr_adv_group_stats(buf, en->len, 0, &m, &s);
        }
        float den = s + t->eps;
        for (int64_t k = a; k < e; k++) adv[order[k].i] = (rewards[order[k].i] - m) / den;
        a = e;
    }
    free(order);
    free(buf);
    return st;
}

fr_status fr_ddpo_tracker_history(const fr_ddpo_tracker *t, int64_t group, float *out, int64_t cap, int64_t *n)
{
    if (!t || !n || (cap > 0 && !out)) return fr_fail(FR_ERR_ARG, "fr_ddpo_tracker_history: NULL argument");
    int64_t at = find_key(t, group);
    if (at < 0) {
        *n = 0;
        return FR_OK;
    }
    const ddpo_entry *e = &t->e[at];
    *n = e->len;
    if (cap < e->len)
        return fr_fail(FR_ERR_ARG, "fr_ddpo_tracker_history: capacity %lld < history %lld", (long long)cap,
                       (long long)e->len);
    ring_copy(e, t->buffer_size, out);
    return FR_OK;
}
