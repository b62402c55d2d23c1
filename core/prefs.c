/* Preference files: writing, reading and the checks both apply (flowrl/prefs.h,
 * docs/preferences.md). */
#include "flowrl/prefs.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "flowrl/digest.h"
#include "flowrl/safetensors.h"
#include "flowrl/sampler.h"

fr_status fr_prefs_alloc(fr_prefs *p, int64_t N, int64_t D, int with_xt)
{
    memset(p, 0, sizeof *p);
    p->attempts = p->ties_dropped = -1;
    if (N < 1 || N > FR_PREFS_MAX_PAIRS || D < 1 || D > (INT64_C(1) << 24))
        return fr_fail(FR_ERR_ARG, "preference pairs: N = %" PRId64 ", D = %" PRId64 ", expected 1 <= N <= 2^30, "
                       "1 <= D <= 2^24", N, D);
    const size_t nd = (size_t)N * (size_t)D;
    p->N = N;
    p->D = D;
    p->x_w = fr_calloc(nd, sizeof(float));
    p->x_l = fr_calloc(nd, sizeof(float));
    p->prompt = fr_calloc((size_t)N, sizeof(int32_t));
    p->r_w = fr_calloc((size_t)N, sizeof(float));
    p->r_l = fr_calloc((size_t)N, sizeof(float));
    if (with_xt) p->x_T = fr_calloc(nd, sizeof(float));
    if (!p->x_w || !p->x_l || !p->prompt || !p->r_w || !p->r_l || (with_xt && !p->x_T)) {
        fr_prefs_free(p);
        return FR_ERR_NOMEM;
    }
    return FR_OK;
}

void fr_prefs_free(fr_prefs *p)
{
    free(p->x_w);
    free(p->x_l);
    free(p->prompt);
    free(p->r_w);
    free(p->r_l);
    free(p->x_T);
    memset(p, 0, sizeof *p);
    p->attempts = p->ties_dropped = -1;
}

/* ---- the checks of a file's contents (flowrl/prefs.h) ----------------------------------- */

static fr_status check_finite(const char *label, const char *name, const float *v, int64_t N, int64_t D)
{
    for (int64_t i = 0; i < N * D; i++)
        if (!isfinite(v[i])) {
            if (D == 1)
                return fr_fail(FR_ERR_FORMAT, "%s: tensor '%s' row %" PRId64 ": %g, expected a finite value", label,
                               name, i, (double)v[i]);
            return fr_fail(FR_ERR_FORMAT, "%s: tensor '%s' row %" PRId64 " element %" PRId64
                           ": %g, expected a finite value", label, name, i / D, i % D, (double)v[i]);
        }
    return FR_OK;
}

typedef struct {
    uint64_t h;
    int64_t row;
} row_hash;

static int cmp_row_hash(const void *a, const void *b)
{
    const row_hash *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static int same_pair(const fr_prefs *p, int64_t i, int64_t j)
{
    const size_t rb = (size_t)p->D * sizeof(float);
    return p->prompt[i] == p->prompt[j] && memcmp(p->x_w + i * p->D, p->x_w + j * p->D, rb) == 0 &&
           memcmp(p->x_l + i * p->D, p->x_l + j * p->D, rb) == 0;
}

/* Two rows with the same (prompt, x_w, x_l) bits: hash each row, sort, compare neighbours
 * of equal hash bit for bit; names the first such pair of rows in row order. */
static fr_status check_duplicates(const char *label, const fr_prefs *p)
{
    const int64_t N = p->N, D = p->D;
    const size_t rb = (size_t)D * sizeof(float);
    row_hash *h = fr_malloc((size_t)N * sizeof *h);
    unsigned char *row = fr_malloc(sizeof(int32_t) + 2 * rb);
    if (!h || !row) {
        free(h);
        free(row);
        return FR_ERR_NOMEM;
    }
    for (int64_t i = 0; i < N; i++) {
        memcpy(row, &p->prompt[i], sizeof(int32_t));
        memcpy(row + sizeof(int32_t), p->x_w + i * D, rb);
        memcpy(row + sizeof(int32_t) + rb, p->x_l + i * D, rb);
        h[i].h = fr_digest_bytes(row, sizeof(int32_t) + 2 * rb);
        h[i].row = i;
    }
    free(row);
    qsort(h, (size_t)N, sizeof *h, cmp_row_hash);
    int64_t first = -1, second = -1;
    for (int64_t a = 0; a < N; a++)
        for (int64_t b = a + 1; b < N && h[b].h == h[a].h; b++)
            if (same_pair(p, h[a].row, h[b].row) && (second < 0 || h[b].row < second)) {
                first = h[a].row;
                second = h[b].row;
            }
    free(h);
    if (second >= 0)
        return fr_fail(FR_ERR_FORMAT, "%s: rows %" PRId64 " and %" PRId64 " hold the same pair (prompt, x_w, x_l): "
                       "duplicated pairs", label, first, second);
    return FR_OK;
}

static fr_status check_meta(const char *label, const fr_prefs *p, const fr_task *t)
{
    if (p->D != t->D)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'D': %" PRId64 ", but task %s has D = %d", label, p->D, t->name,
                       t->D);
    int rid;
    if (fr_task_reward_id(t, p->reward, &rid) != FR_OK)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'reward': '%s' is not a reward of task %s", label, p->reward,
                       t->name);
    if (strcmp(p->tie_rule, FR_PREFS_TIE_RULE) != 0)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'tie_rule': '%s', expected '" FR_PREFS_TIE_RULE "'", label,
                       p->tie_rule);
    fr_sampler_kind k;
    if (fr_sampler_from_name(p->sampler, &k) != FR_OK)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'sampler': '%s' is not a sampler of flowrl", label, p->sampler);
    if (!isfinite(p->noise) || p->noise < 0.0f)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'noise': %g, expected a finite value >= 0", label,
                       (double)p->noise);
    if (!isfinite(p->cfg))
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'cfg': %g, expected a finite value", label, (double)p->cfg);
    if (p->steps < 1)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'steps': %" PRId64 ", expected >= 1", label, p->steps);
    if (strlen(p->ckpt_digest) != 16 || strspn(p->ckpt_digest, "0123456789abcdef") != 16)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'ckpt_digest': '%s', expected 16 lowercase hex digits", label,
                       p->ckpt_digest);
    return FR_OK;
}

/* Every check of flowrl/prefs.h on a filled p, against task t. */
static fr_status check_prefs(const char *label, const fr_prefs *p, const fr_task *t)
{
    FR_TRY(check_meta(label, p, t));
    const int64_t N = p->N, D = p->D;
    FR_TRY(check_finite(label, "x_w", p->x_w, N, D));
    FR_TRY(check_finite(label, "x_l", p->x_l, N, D));
    FR_TRY(check_finite(label, "r_w", p->r_w, N, 1));
    FR_TRY(check_finite(label, "r_l", p->r_l, N, 1));
    if (p->x_T) FR_TRY(check_finite(label, "x_T", p->x_T, N, D));
    for (int64_t i = 0; i < N; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= t->n_train)
            return fr_fail(FR_ERR_FORMAT, "%s: tensor 'prompt' row %" PRId64 ": prompt id %d is not a training "
                           "prompt of task %s (ids [0, %d))", label, i, (int)p->prompt[i], t->name, t->n_train);
    for (int64_t i = 0; i < N; i++)
        if (!(p->r_w[i] > p->r_l[i]))
            return fr_fail(FR_ERR_FORMAT, "%s: tensors 'r_w', 'r_l' row %" PRId64 ": r_w %.9g <= r_l %.9g: the "
                           "label contradicts its rewards (x_w must have the higher reward; ties are dropped)",
                           label, i, (double)p->r_w[i], (double)p->r_l[i]);
    return check_duplicates(label, p);
}

/* ---- writing ---------------------------------------------------------------------------- */

static fr_status add_tensor(fr_st_file *f, const char *name, void *data, fr_dtype dt, int ndim, int64_t N,
                            int64_t D)
{
    int64_t shape[2] = {N, D};
    fr_tensor t = fr_tensor_view(data, dt, ndim, shape);
    return fr_st_add(f, name, &t);
}

static fr_status set_meta_fmt(fr_st_file *f, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static fr_status set_meta_fmt(fr_st_file *f, const char *key, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return fr_st_set_meta(f, key, buf);
}

void fr_prefs_fmt_f32(float v, char out[32])
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(out, 32, "%.*g", prec, (double)v);
        if (strtof(out, NULL) == v) return;
    }
}

static fr_status fill_st(fr_st_file *f, const fr_prefs *p)
{
    const int64_t N = p->N, D = p->D;
    FR_TRY(add_tensor(f, "x_w", p->x_w, FR_F32, 2, N, D));
    FR_TRY(add_tensor(f, "x_l", p->x_l, FR_F32, 2, N, D));
    FR_TRY(add_tensor(f, "prompt", p->prompt, FR_I32, 1, N, 0));
    FR_TRY(add_tensor(f, "r_w", p->r_w, FR_F32, 1, N, 0));
    FR_TRY(add_tensor(f, "r_l", p->r_l, FR_F32, 1, N, 0));
    if (p->x_T) FR_TRY(add_tensor(f, "x_T", p->x_T, FR_F32, 2, N, D));
    FR_TRY(fr_st_set_meta(f, "format", FR_PREFS_FORMAT));
    FR_TRY(fr_st_set_meta(f, "format_version", FR_PREFS_VERSION));
    FR_TRY(fr_st_set_meta(f, "task", p->task));
    FR_TRY(set_meta_fmt(f, "D", "%" PRId64, D));
    FR_TRY(fr_st_set_meta(f, "reward", p->reward));
    FR_TRY(fr_st_set_meta(f, "tie_rule", p->tie_rule));
    FR_TRY(fr_st_set_meta(f, "ckpt", p->ckpt));
    FR_TRY(fr_st_set_meta(f, "ckpt_digest", p->ckpt_digest));
    FR_TRY(fr_st_set_meta(f, "sampler", p->sampler));
    char num[32];
    fr_prefs_fmt_f32(p->noise, num);
    FR_TRY(fr_st_set_meta(f, "noise", num));
    FR_TRY(set_meta_fmt(f, "steps", "%" PRId64, p->steps));
    fr_prefs_fmt_f32(p->cfg, num);
    FR_TRY(fr_st_set_meta(f, "cfg", num));
    FR_TRY(set_meta_fmt(f, "seed", "%" PRIu32, p->seed));
    FR_TRY(fr_st_set_meta(f, "flowrl_version", p->flowrl_version[0] ? p->flowrl_version : FR_VERSION));
    if (p->attempts >= 0) FR_TRY(set_meta_fmt(f, "attempts", "%" PRId64, p->attempts));
    if (p->ties_dropped >= 0) FR_TRY(set_meta_fmt(f, "ties_dropped", "%" PRId64, p->ties_dropped));
    f->digests = 1;
    return FR_OK;
}

fr_status fr_prefs_write(const char *path, const fr_prefs *p)
{
    const fr_task *t;
    if (fr_task_get(p->task, &t) != FR_OK)
        return fr_fail(FR_ERR_ARG, "%s: metadata 'task': %s", path, fr_last_error());
    if (p->N < 1 || p->D < 1 || !p->x_w || !p->x_l || !p->prompt || !p->r_w || !p->r_l)
        return fr_fail(FR_ERR_ARG, "%s: no pairs to write (N = %" PRId64 ")", path, p->N);
    fr_status s = check_prefs(path, p, t);
    if (s != FR_OK) return s == FR_ERR_FORMAT ? FR_ERR_ARG : s;
    fr_st_file f;
    fr_st_init(&f);
    s = fill_st(&f, p);
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    return s;
}

/* ---- reading ---------------------------------------------------------------------------- */

static const char *const k_required[] = {"format", "format_version", "task", "D", "reward", "tie_rule", "ckpt",
                                         "ckpt_digest", "sampler", "noise", "steps", "cfg", "seed",
                                         "flowrl_version", NULL};
static const char *const k_optional[] = {"attempts", "ties_dropped", NULL};
static const char *const k_tensors[] = {"x_w", "x_l", "prompt", "r_w", "r_l", "x_T", NULL};

static int in_list(const char *const *l, const char *s)
{
    for (; *l; l++)
        if (strcmp(*l, s) == 0) return 1;
    return 0;
}

static fr_status meta_str(const char *label, const fr_st_file *f, const char *key, char *out, size_t cap)
{
    const char *v = fr_st_get_meta(f, key);
    if (strlen(v) >= cap)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s': %zu bytes, at most %zu", label, key, strlen(v), cap - 1);
    memcpy(out, v, strlen(v) + 1);
    return FR_OK;
}

static fr_status meta_i64(const char *label, const fr_st_file *f, const char *key, int64_t lo, int64_t hi,
                          int64_t *out)
{
    const char *v = fr_st_get_meta(f, key);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!v[0] || *end || errno || x < lo || x > hi || (v[0] != '-' && (v[0] < '0' || v[0] > '9')))
        return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s': '%.64s', expected an integer in [%" PRId64 ", %" PRId64
                       "]", label, key, v, lo, hi);
    *out = x;
    return FR_OK;
}

static fr_status meta_f32(const char *label, const fr_st_file *f, const char *key, float *out)
{
    const char *v = fr_st_get_meta(f, key);
    char *end;
    float x = strtof(v, &end);
    if (!v[0] || *end || !isfinite(x))
        return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s': '%.64s', expected a finite number", label, key, v);
    *out = x;
    return FR_OK;
}

/* Tensor name of f with dtype dt and shape (N, D) (ndim 2) or (N,); N is x_w's. */
static fr_status get_tensor(const char *label, const fr_st_file *f, const char *name, fr_dtype dt, int ndim,
                            int64_t N, int64_t D, const fr_tensor **out)
{
    const fr_tensor *t = fr_st_get(f, name);
    *out = t;
    if (!t) return fr_fail(FR_ERR_FORMAT, "%s: tensor '%s' is missing", label, name);
    if (t->dtype != dt)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%s': dtype %s, expected %s", label, name,
                       fr_dtype_name(t->dtype), fr_dtype_name(dt));
    int ok = t->ndim == ndim && t->shape[0] == N && (ndim == 1 || t->shape[1] == D);
    if (!ok) {
        char got[96] = "(", want[64];
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%" PRId64, i ? ", " : "", t->shape[i]);
        snprintf(got + strlen(got), sizeof got - strlen(got), ")");
        if (ndim == 2) snprintf(want, sizeof want, "(%" PRId64 ", %" PRId64 ")", N, D);
        else snprintf(want, sizeof want, "(%" PRId64 ",)", N);
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%s': shape %s, expected %s (N pairs of D = %" PRId64
                       " values, N from x_w)", label, name, got, want, D);
    }
    return FR_OK;
}

static fr_status from_st(const char *label, const fr_st_file *f, const fr_task *task, fr_prefs *p)
{
    for (const char *const *k = k_required; *k; k++)
        if (!fr_st_get_meta(f, *k)) return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s' is missing", label, *k);
    for (size_t i = 0; i < f->n_meta; i++)
        if (!in_list(k_required, f->meta[i].key) && !in_list(k_optional, f->meta[i].key))
            return fr_fail(FR_ERR_FORMAT, "%s: metadata '%.64s' is not a key of the format", label, f->meta[i].key);
    for (size_t i = 0; i < f->n; i++)
        if (!in_list(k_tensors, f->entries[i].name))
            return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.64s' is not a tensor of the format", label,
                           f->entries[i].name);
    if (strcmp(fr_st_get_meta(f, "format"), FR_PREFS_FORMAT) != 0)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'format': '%.64s', expected '" FR_PREFS_FORMAT "'", label,
                       fr_st_get_meta(f, "format"));
    if (strcmp(fr_st_get_meta(f, "format_version"), FR_PREFS_VERSION) != 0)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'format_version': '%.64s', this flowrl reads version "
                       FR_PREFS_VERSION, label, fr_st_get_meta(f, "format_version"));
    const char *tname = fr_st_get_meta(f, "task");
    if (task && strcmp(tname, task->name) != 0)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'task': '%.64s', expected '%s'", label, tname, task->name);
    if (!task && fr_task_get(tname, &task) != FR_OK)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'task': %s", label, fr_last_error());

    int64_t D, v;
    FR_TRY(meta_i64(label, f, "D", 1, INT64_C(1) << 24, &D));
    const fr_tensor *xw, *xl, *pr, *rw, *rl, *xt = NULL;
    xw = fr_st_get(f, "x_w");
    if (!xw) return fr_fail(FR_ERR_FORMAT, "%s: tensor 'x_w' is missing", label);
    if (xw->ndim != 2 || xw->shape[0] < 1)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor 'x_w': %d dims, expected (N, D) with N >= 1", label, xw->ndim);
    const int64_t N = xw->shape[0];
    if (N > FR_PREFS_MAX_PAIRS)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor 'x_w': %" PRId64 " pairs, at most 2^30", label, N);
    if (xw->shape[1] != D)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor 'x_w': shape (%" PRId64 ", %" PRId64 "), but metadata 'D' is %"
                       PRId64, label, N, xw->shape[1], D);
    FR_TRY(get_tensor(label, f, "x_w", FR_F32, 2, N, D, &xw));
    FR_TRY(get_tensor(label, f, "x_l", FR_F32, 2, N, D, &xl));
    FR_TRY(get_tensor(label, f, "prompt", FR_I32, 1, N, D, &pr));
    FR_TRY(get_tensor(label, f, "r_w", FR_F32, 1, N, D, &rw));
    FR_TRY(get_tensor(label, f, "r_l", FR_F32, 1, N, D, &rl));
    if (fr_st_get(f, "x_T")) FR_TRY(get_tensor(label, f, "x_T", FR_F32, 2, N, D, &xt));

    FR_TRY(fr_prefs_alloc(p, N, D, xt != NULL));
    const size_t nd = (size_t)N * (size_t)D * sizeof(float);
    memcpy(p->x_w, xw->data, nd);
    memcpy(p->x_l, xl->data, nd);
    if (xt) memcpy(p->x_T, xt->data, nd);
    memcpy(p->prompt, pr->data, (size_t)N * sizeof(int32_t));
    memcpy(p->r_w, rw->data, (size_t)N * sizeof(float));
    memcpy(p->r_l, rl->data, (size_t)N * sizeof(float));
    FR_TRY(meta_str(label, f, "task", p->task, sizeof p->task));
    FR_TRY(meta_str(label, f, "reward", p->reward, sizeof p->reward));
    FR_TRY(meta_str(label, f, "tie_rule", p->tie_rule, sizeof p->tie_rule));
    FR_TRY(meta_str(label, f, "ckpt", p->ckpt, sizeof p->ckpt));
    FR_TRY(meta_str(label, f, "ckpt_digest", p->ckpt_digest, sizeof p->ckpt_digest));
    FR_TRY(meta_str(label, f, "sampler", p->sampler, sizeof p->sampler));
    FR_TRY(meta_str(label, f, "flowrl_version", p->flowrl_version, sizeof p->flowrl_version));
    FR_TRY(meta_f32(label, f, "noise", &p->noise));
    FR_TRY(meta_f32(label, f, "cfg", &p->cfg));
    FR_TRY(meta_i64(label, f, "steps", 1, INT64_C(1) << 40, &p->steps));
    FR_TRY(meta_i64(label, f, "seed", 0, UINT32_MAX, &v));
    p->seed = (uint32_t)v;
    if (fr_st_get_meta(f, "attempts")) FR_TRY(meta_i64(label, f, "attempts", N, INT64_MAX, &p->attempts));
    if (fr_st_get_meta(f, "ties_dropped"))
        FR_TRY(meta_i64(label, f, "ties_dropped", 0, INT64_MAX, &p->ties_dropped));
    return check_prefs(label, p, task);
}

static fr_status read_st(fr_st_file *f, const char *label, const fr_task *task, fr_prefs *out)
{
    fr_status s = from_st(label, f, task, out);
    fr_st_free(f);
    if (s != FR_OK) fr_prefs_free(out);
    return s;
}

fr_status fr_prefs_read(const char *path, const fr_task *task, fr_prefs *out)
{
    memset(out, 0, sizeof *out);
    out->attempts = out->ties_dropped = -1;
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path)); /* its messages start with path */
    return read_st(&f, path, task, out);
}

fr_status fr_prefs_read_mem(const void *buf, size_t len, const char *label, const fr_task *task, fr_prefs *out)
{
    memset(out, 0, sizeof *out);
    out->attempts = out->ties_dropped = -1;
    fr_st_file f;
    FR_TRY(fr_st_read_mem(&f, buf, len, label));
    return read_st(&f, label, task, out);
}

fr_status fr_prefs_load_dev(fr_backend *be, const char *path, const fr_task *task, int with_l, float **x,
                            int32_t **prompt, int64_t *N, char hex[17])
{
    fr_prefs p;
    *x = NULL;
    *prompt = NULL;
    fr_status s = fr_prefs_read(path, task, &p);
    if (s != FR_OK) return fr_fail(s, "train: --prefs: %s", fr_last_error());
    const size_t rows = (size_t)(p.N * p.D) * sizeof(float);
    s = fr_file_digest_hex(path, hex);
    if (s == FR_OK && (!(*prompt = fr_malloc((size_t)p.N * sizeof(int32_t))) ||
                       !(*x = fr_dev_floats(be, (with_l ? 2 : 1) * p.N * p.D))))
        s = FR_ERR_NOMEM;
    if (s == FR_OK) s = fr_h2d(be, *x, p.x_w, rows);
    if (s == FR_OK && with_l) s = fr_h2d(be, *x + p.N * p.D, p.x_l, rows);
    if (s == FR_OK) memcpy(*prompt, p.prompt, (size_t)p.N * sizeof(int32_t));
    *N = p.N;
    fr_prefs_free(&p);
    if (s != FR_OK) {
        fr_dev_free(be, *x);
        free(*prompt);
        *x = NULL;
        *prompt = NULL;
        return fr_fail(s, "train: --prefs: %s: %s", path, s == FR_ERR_NOMEM ? "out of memory" : fr_last_error());
    }
    return FR_OK;
}
