/* The safetensors container in memory: tensors, sorted metadata and the checks on what is
 * added (the format and the rules: include/flowrl/safetensors.h). Writing is in
 * safetensors_write.c, reading and validation in safetensors_read.c, per-tensor digests in
 * safetensors_digest.c. */
#include "flowrl/safetensors.h"

#include <stdlib.h>
#include <string.h>

#include "core/safetensors_internal.h"

void fr_st_init(fr_st_file *f) { memset(f, 0, sizeof *f); }

void fr_st_free(fr_st_file *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->entries[i].name);
        fr_tensor_free(&f->entries[i].t);
    }
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->entries);
    free(f->meta);
    fr_st_init(f);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
 * Returns the offset of the first bad byte, or n if all is well. */
size_t fr_st_utf8_bad_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return i;
        }
        if (n - i < len) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
        i += len;
    }
    return n;
}

static int is_utf8(const char *s)
{
    size_t n = strlen(s);
    return fr_st_utf8_bad_at((const unsigned char *)s, n) == n;
}

char *fr_st_dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = fr_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static size_t find_entry(const fr_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) return i;
    return (size_t)-1;
}

/* Binary search in the sorted metadata: the index of key, or where it would go (*found 0). */
static size_t meta_slot(const fr_st_file *f, const char *key, int *found)
{
    size_t lo = 0, hi = f->n_meta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->meta[mid].key, key);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = 0;
    return lo;
}

static fr_status check_new_name(const fr_st_file *f, const char *name)
{
    if (strcmp(name, "__metadata__") == 0)
        return fr_fail(FR_ERR_ARG, "safetensors: \"__metadata__\" is reserved, not a tensor name");
    if (!is_utf8(name)) return fr_fail(FR_ERR_ARG, "safetensors: tensor name is not valid UTF-8");
    if (find_entry(f, name) != (size_t)-1)
        return fr_fail(FR_ERR_ARG, "safetensors: tensor '%.200s' added twice", name);
    return FR_OK;
}

fr_status fr_st_check_tensor(const char *name, const fr_tensor *t)
{
    if ((unsigned)t->dtype >= FR_DTYPE_COUNT || t->ndim < 0 || t->ndim > FR_MAX_DIMS ||
        fr_tensor_numel(t) < 0)
        return fr_fail(FR_ERR_ARG, "safetensors: tensor '%.200s': invalid dtype or shape", name);
    if (t->device != FR_DEVICE_CPU)
        return fr_fail(FR_ERR_ARG, "safetensors: tensor '%.200s' is not in host memory", name);
    if (fr_tensor_nbytes(t) && !t->data)
        return fr_fail(FR_ERR_ARG, "safetensors: tensor '%.200s' has no data", name);
    return FR_OK;
}

/* Appends (name, *t) taking both; on failure neither is consumed. */
fr_status fr_st_push_entry(fr_st_file *f, char *name, const fr_tensor *t)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 8;
        fr_st_entry *e = realloc(f->entries, cap * sizeof *e);
        if (!e) return fr_fail(FR_ERR_NOMEM, "safetensors: out of memory for %zu tensors", cap);
        f->entries = e;
        f->cap = cap;
    }
    f->entries[f->n].name = name;
    f->entries[f->n].t = *t;
    f->n++;
    return FR_OK;
}

fr_status fr_st_add_take(fr_st_file *f, const char *name, fr_tensor *t)
{
    FR_TRY(check_new_name(f, name));
    FR_TRY(fr_st_check_tensor(name, t));
    fr_tensor own;
    if (t->owned) own = *t;
    else FR_TRY(fr_tensor_clone(&own, t));
    char *nm = fr_st_dup_str(name);
    fr_status s = nm ? fr_st_push_entry(f, nm, &own) : FR_ERR_NOMEM;
    if (s != FR_OK) {
        free(nm);
        if (!t->owned) fr_tensor_free(&own);
        return s;
    }
    if (t->owned) {
        t->data = NULL;
        t->owned = 0;
    }
    return FR_OK;
}

fr_status fr_st_add(fr_st_file *f, const char *name, const fr_tensor *t)
{
    FR_TRY(check_new_name(f, name));
    FR_TRY(fr_st_check_tensor(name, t));
    fr_tensor copy;
    FR_TRY(fr_tensor_clone(&copy, t));
    fr_status s = fr_st_add_take(f, name, &copy);
    if (s != FR_OK) fr_tensor_free(&copy);
    return s;
}

fr_status fr_st_set_meta(fr_st_file *f, const char *key, const char *value)
{
    if (!is_utf8(key) || !is_utf8(value))
        return fr_fail(FR_ERR_ARG, "safetensors: metadata '%.200s' is not valid UTF-8", key);
    int found;
    size_t at = meta_slot(f, key, &found);
    char *v = fr_st_dup_str(value);
    if (!v) return FR_ERR_NOMEM;
    if (found) {
        free(f->meta[at].value);
        f->meta[at].value = v;
        return FR_OK;
    }
    char *k = fr_st_dup_str(key);
    if (!k) {
        free(v);
        return FR_ERR_NOMEM;
    }
    if (f->n_meta == f->cap_meta) {
        size_t cap = f->cap_meta ? 2 * f->cap_meta : 8;
        fr_st_meta *m = realloc(f->meta, cap * sizeof *m);
        if (!m) {
            free(k);
            free(v);
            return fr_fail(FR_ERR_NOMEM, "safetensors: out of memory for %zu metadata", cap);
        }
        f->meta = m;
        f->cap_meta = cap;
    }
    memmove(f->meta + at + 1, f->meta + at, (f->n_meta - at) * sizeof *f->meta);
    f->meta[at].key = k;
    f->meta[at].value = v;
    f->n_meta++;
    return FR_OK;
}

const fr_tensor *fr_st_get(const fr_st_file *f, const char *name)
{
    size_t i = find_entry(f, name);
    return i == (size_t)-1 ? NULL : &f->entries[i].t;
}

const char *fr_st_get_meta(const fr_st_file *f, const char *key)
{
    int found;
    size_t at = meta_slot(f, key, &found);
    return found ? f->meta[at].value : NULL;
}

fr_status fr_st_get_meta_i64(const fr_st_file *f, const char *path, const char *key, int64_t lo, int64_t hi, int64_t *v)
{
    const char *m = fr_st_get_meta(f, key);
    char *end = NULL;
    long long x = m ? strtoll(m, &end, 10) : 0;
    if (!m || end == m || *end || x < lo || x > hi)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s' is '%s', expected an integer in [%lld, %lld]", path, key,
                       m ? m : "(absent)", (long long)lo, (long long)hi);
    *v = x;
    return FR_OK;
}
