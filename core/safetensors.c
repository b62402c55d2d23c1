/* safetensors read/write with full validation; the format and the rules are described in
 * include/flowrl/safetensors.h. The JSON header is parsed and printed by cJSON (DESIGN.md §4);
 * this file only checks what the JSON says. */
#include "flowrl/safetensors.h"

#include "flowrl/atomic_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; a big-endian host needs byte swaps here"
#endif

/* Integers read from JSON doubles are exact only up to 2^53. */
#define ST_MAX_JSON_INT 9007199254740992.0

/* ---- the in-memory container ------------------------------------------------------- */

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
static size_t utf8_bad_at(const unsigned char *s, size_t n)
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
    return utf8_bad_at((const unsigned char *)s, n) == n;
}

static char *dup_str(const char *s)
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

static fr_status check_tensor(const char *name, const fr_tensor *t)
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
static fr_status push_entry(fr_st_file *f, char *name, const fr_tensor *t)
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
    FR_TRY(check_tensor(name, t));
    fr_tensor own;
    if (t->owned) own = *t;
    else FR_TRY(fr_tensor_clone(&own, t));
    char *nm = dup_str(name);
    fr_status s = nm ? push_entry(f, nm, &own) : FR_ERR_NOMEM;
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
    FR_TRY(check_tensor(name, t));
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
    char *v = dup_str(value);
    if (!v) return FR_ERR_NOMEM;
    if (found) {
        free(f->meta[at].value);
        f->meta[at].value = v;
        return FR_OK;
    }
    char *k = dup_str(key);
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

/* ---- writing ------------------------------------------------------------------------ */

static cJSON *json_u64(uint64_t v)
{
    /* A raw item prints the decimal digits exactly (no detour through double). */
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(buf);
}

static int add_u64_array(cJSON *obj, const char *key, const uint64_t *v, int n)
{
    cJSON *arr = cJSON_AddArrayToObject(obj, key);
    if (!arr) return 0;
    for (int i = 0; i < n; i++) {
        cJSON *x = json_u64(v[i]);
        if (!x || !cJSON_AddItemToArray(arr, x)) {
            cJSON_Delete(x);
            return 0;
        }
    }
    return 1;
}

/* The padded header (N = *len, a multiple of 8) and the total data size. */
static fr_status build_header(const fr_st_file *f, char **out, size_t *len, uint64_t *data_len)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) goto nomem;
    if (f->n_meta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        if (!m) goto nomem;
        for (size_t i = 0; i < f->n_meta; i++)
            if (!cJSON_AddStringToObject(m, f->meta[i].key, f->meta[i].value)) goto nomem;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < f->n; i++) {
        const fr_tensor *t = &f->entries[i].t;
        FR_TRY(check_tensor(f->entries[i].name, t));
        cJSON *e = cJSON_AddObjectToObject(root, f->entries[i].name);
        if (!e || !cJSON_AddStringToObject(e, "dtype", fr_dtype_name(t->dtype))) goto nomem;
        uint64_t dims[FR_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) dims[d] = (uint64_t)t->shape[d];
        uint64_t offs[2] = {off, off + fr_tensor_nbytes(t)};
        if (!add_u64_array(e, "shape", dims, t->ndim) || !add_u64_array(e, "data_offsets", offs, 2))
            goto nomem;
        off = offs[1];
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    root = NULL;
    if (!json) goto nomem;
    size_t n = strlen(json), padded = (n + 7) / 8 * 8;
    char *hdr = fr_malloc(padded);
    if (!hdr) {
        cJSON_free(json);
        return FR_ERR_NOMEM;
    }
    memcpy(hdr, json, n);
    memset(hdr + n, ' ', padded - n);
    cJSON_free(json);
    *out = hdr;
    *len = padded;
    *data_len = off;
    return FR_OK;
nomem:
    cJSON_Delete(root);
    return fr_fail(FR_ERR_NOMEM, "safetensors: out of memory building the header");
}

static void put_u64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

fr_status fr_st_write_mem(const fr_st_file *f, void **buf, size_t *len)
{
    char *hdr;
    size_t hlen;
    uint64_t dlen;
    FR_TRY(build_header(f, &hdr, &hlen, &dlen));
    unsigned char *out = fr_malloc(8 + hlen + dlen);
    if (!out) {
        free(hdr);
        return FR_ERR_NOMEM;
    }
    put_u64le(out, hlen);
    memcpy(out + 8, hdr, hlen);
    free(hdr);
    size_t at = 8 + hlen;
    for (size_t i = 0; i < f->n; i++) {
        size_t nb = fr_tensor_nbytes(&f->entries[i].t);
        if (nb) memcpy(out + at, f->entries[i].t.data, nb);
        at += nb;
    }
    *buf = out;
    *len = at;
    return FR_OK;
}

static fr_status write_all(FILE *fp, const void *p, size_t n, const char *path)
{
    if (n && fwrite(p, 1, n, fp) != n)
        return fr_fail(FR_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return FR_OK;
}

static fr_status write_stream(const fr_st_file *f, FILE *fp, const char *tmp)
{
    char *hdr;
    size_t hlen;
    uint64_t dlen;
    FR_TRY(build_header(f, &hdr, &hlen, &dlen));
    unsigned char n8[8];
    put_u64le(n8, hlen);
    fr_status s = write_all(fp, n8, 8, tmp);
    if (s == FR_OK) s = write_all(fp, hdr, hlen, tmp);
    free(hdr);
    for (size_t i = 0; i < f->n && s == FR_OK; i++)
        s = write_all(fp, f->entries[i].t.data, fr_tensor_nbytes(&f->entries[i].t), tmp);
    return s;
}

static fr_status write_st(FILE *fp, const char *tmp, void *user)
{
    return write_stream(user, fp, tmp);
}

fr_status fr_st_write(const fr_st_file *f, const char *path)
{
    return fr_atomic_write(path, write_st, (void *)f);
}

/* ---- reading ------------------------------------------------------------------------ */

typedef struct {
    const char *name; /* points into the cJSON tree */
    fr_dtype dtype;
    int ndim;
    int64_t shape[FR_MAX_DIMS];
    uint64_t begin, end;
    size_t order; /* position in the header: ties between empty tensors keep header order */
} st_info;

/* Where the tensor bytes come from: a memory buffer or an open file. */
typedef struct {
    const unsigned char *mem;
    FILE *fp;
    uint64_t data_start; /* 8 + N: file offset of the data buffer */
    const char *label;
} st_source;

static const char *json_type_name(const cJSON *x)
{
    if (cJSON_IsNumber(x)) return "a number";
    if (cJSON_IsString(x)) return "a string";
    if (cJSON_IsArray(x)) return "an array";
    if (cJSON_IsObject(x)) return "an object";
    if (cJSON_IsBool(x)) return "a boolean";
    if (cJSON_IsNull(x)) return "null";
    return "an invalid value";
}

/* A JSON number that is a non-negative integer <= 2^53; otherwise a message. */
static fr_status json_uint(const cJSON *x, const char *label, const char *tname, const char *field,
                           int idx, uint64_t *out)
{
    char where[64];
    if (idx >= 0) snprintf(where, sizeof where, "%s[%d]", field, idx);
    else snprintf(where, sizeof where, "%s", field);
    if (!cJSON_IsNumber(x))
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': %s is %s, expected a non-negative integer",
                       label, tname, where, json_type_name(x));
    double v = x->valuedouble;
    if (v != v || v < 0)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': %s = %.17g is negative", label, tname,
                       where, v);
    if (v > ST_MAX_JSON_INT)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': %s = %.17g is too large (limit 2^53)",
                       label, tname, where, v);
    uint64_t u = (uint64_t)v;
    if ((double)u != v)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': %s = %.17g is not an integer", label,
                       tname, where, v);
    *out = u;
    return FR_OK;
}

/* The one child of obj named key; a second one is an error (cJSON keeps both). */
static fr_status unique_field(const cJSON *obj, const char *key, const char *label, const char *tname,
                              const cJSON **out)
{
    *out = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (!c->string || strcmp(c->string, key) != 0) continue;
        if (*out)
            return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': field '%s' appears twice", label,
                           tname, key);
        *out = c;
    }
    if (!*out)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': missing field '%s'", label, tname, key);
    return FR_OK;
}

static fr_status parse_entry(const cJSON *e, const char *label, uint64_t buf_len, st_info *info)
{
    const char *tn = e->string;
    info->name = tn;
    if (!cJSON_IsObject(e))
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': entry is %s, expected an object", label,
                       tn, json_type_name(e));
    const cJSON *dt, *sh, *of;
    FR_TRY(unique_field(e, "dtype", label, tn, &dt));
    FR_TRY(unique_field(e, "shape", label, tn, &sh));
    FR_TRY(unique_field(e, "data_offsets", label, tn, &of));

    if (!cJSON_IsString(dt))
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': dtype is %s, expected a string", label,
                       tn, json_type_name(dt));
    if (!fr_dtype_from_name(dt->valuestring, &info->dtype))
        return fr_fail(FR_ERR_FORMAT,
                       "%s: tensor '%.200s': unknown dtype '%.40s' (flowrl reads F32 F64 F16 BF16 "
                       "I64 I32 I16 I8 U64 U32 U16 U8 BOOL)",
                       label, tn, dt->valuestring);

    if (!cJSON_IsArray(sh))
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': shape is %s, expected an array", label,
                       tn, json_type_name(sh));
    int nd = cJSON_GetArraySize(sh);
    if (nd > FR_MAX_DIMS)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': shape has %d dims; flowrl tensors have "
                       "at most %d", label, tn, nd, FR_MAX_DIMS);
    info->ndim = nd;
    /* numel and bytes in u64 with overflow checks (the dims are <= 2^53 each). */
    uint64_t numel = 1;
    int overflow = 0;
    int d = 0;
    for (const cJSON *x = sh->child; x; x = x->next, d++) {
        uint64_t v;
        FR_TRY(json_uint(x, label, tn, "shape", d, &v));
        info->shape[d] = (int64_t)v;
        if (v && numel > UINT64_MAX / v) overflow = 1;
        else numel *= v;
    }
    for (int k = nd; k < FR_MAX_DIMS; k++) info->shape[k] = 1;
    size_t esz = fr_dtype_size(info->dtype);
    if (overflow || numel > (uint64_t)INT64_MAX || numel > UINT64_MAX / esz) {
        char sb[128];
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': shape %s has too many elements (its "
                       "byte count does not fit in 63 bits)", label, tn,
                       fr_shape_str(nd, info->shape, sb, sizeof sb));
    }
    uint64_t nbytes = numel * esz;

    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': data_offsets must be an array of 2 "
                       "integers [begin, end]", label, tn);
    FR_TRY(json_uint(of->child, label, tn, "data_offsets", 0, &info->begin));
    FR_TRY(json_uint(of->child->next, label, tn, "data_offsets", 1, &info->end));
    if (info->begin > info->end)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': data_offsets [%llu, %llu] run backwards "
                       "(begin > end)", label, tn, (unsigned long long)info->begin,
                       (unsigned long long)info->end);
    if (info->end > buf_len)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': data_offsets end %llu is past the end "
                       "of the %llu-byte data buffer", label, tn, (unsigned long long)info->end,
                       (unsigned long long)buf_len);
    if (info->end - info->begin != nbytes) {
        char sb[128];
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': data_offsets [%llu, %llu] span %llu "
                       "bytes but %s %s needs %llu", label, tn, (unsigned long long)info->begin,
                       (unsigned long long)info->end, (unsigned long long)(info->end - info->begin),
                       fr_dtype_name(info->dtype), fr_shape_str(nd, info->shape, sb, sizeof sb),
                       (unsigned long long)nbytes);
    }
    return FR_OK;
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(((const st_info *)a)->name, ((const st_info *)b)->name);
}

static int cmp_by_offset(const void *a, const void *b)
{
    const st_info *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(((const fr_st_meta *)a)->key, ((const fr_st_meta *)b)->key);
}

/* Fills f->meta (sorted by key) from the __metadata__ object; sorting once keeps a header
 * with millions of keys O(n log n). */
static fr_status parse_metadata(const cJSON *m, const char *label, fr_st_file *f)
{
    if (cJSON_IsNull(m)) return FR_OK; /* the reference reads null as "no metadata" */
    if (!cJSON_IsObject(m))
        return fr_fail(FR_ERR_FORMAT, "%s: __metadata__ is %s, expected an object of strings", label,
                       json_type_name(m));
    size_t count = 0;
    for (const cJSON *c = m->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return fr_fail(FR_ERR_FORMAT, "%s: __metadata__['%.200s'] is %s, expected a string",
                           label, c->string, json_type_name(c));
        count++;
    }
    if (!count) return FR_OK;
    f->meta = fr_calloc(count, sizeof *f->meta);
    if (!f->meta) return FR_ERR_NOMEM;
    f->cap_meta = count;
    for (const cJSON *c = m->child; c; c = c->next) {
        fr_st_meta *e = &f->meta[f->n_meta];
        e->key = dup_str(c->string);
        e->value = e->key ? dup_str(c->valuestring) : NULL;
        if (!e->value) {
            free(e->key);
            return FR_ERR_NOMEM;
        }
        f->n_meta++;
    }
    qsort(f->meta, count, sizeof *f->meta, cmp_meta);
    for (size_t i = 1; i < count; i++)
        if (strcmp(f->meta[i - 1].key, f->meta[i].key) == 0)
            return fr_fail(FR_ERR_FORMAT, "%s: __metadata__ key '%.200s' appears twice", label,
                           f->meta[i].key);
    return FR_OK;
}

/* Byte-level checks before JSON: UTF-8, no control bytes (JSON allows none outside the
 * whitespace, and none unescaped in strings), no \u0000 escape (it would silently truncate
 * a C string name). */
static fr_status check_header_bytes(const unsigned char *h, size_t n, const char *label)
{
    if (h[0] != '{')
        return fr_fail(FR_ERR_FORMAT, "%s: header does not start with '{' (byte 0x%02x); not a "
                       "safetensors file", label, h[0]);
    size_t bad = utf8_bad_at(h, n);
    if (bad != n)
        return fr_fail(FR_ERR_FORMAT, "%s: header is not valid UTF-8 (byte %zu)", label, bad);
    for (size_t i = 0; i < n; i++) {
        if (h[i] < 0x20 && h[i] != ' ' && h[i] != '\t' && h[i] != '\n' && h[i] != '\r')
            return fr_fail(FR_ERR_FORMAT, "%s: header has control byte 0x%02x at byte %zu", label,
                           h[i], i);
        if (h[i] == '\\') {
            size_t run = 0;
            while (i + run < n && h[i + run] == '\\') run++;
            if ((run & 1) && n - (i + run) >= 5 && memcmp(h + i + run, "u0000", 5) == 0)
                return fr_fail(FR_ERR_FORMAT, "%s: header has a \\u0000 escape at byte %zu "
                               "(names and metadata may not contain NUL)", label, i + run - 1);
            i += run - 1;
        }
    }
    return FR_OK;
}

static fr_status load_data(const st_source *src, const st_info *in, fr_tensor *t)
{
    FR_TRY(fr_tensor_alloc(t, in->dtype, in->ndim, in->shape));
    size_t n = (size_t)(in->end - in->begin);
    if (!n) return FR_OK;
    if (src->mem) {
        memcpy(t->data, src->mem + src->data_start + in->begin, n);
        return FR_OK;
    }
    /* Entries arrive in offset order and tile the buffer, so the file is read sequentially. */
    if (fread(t->data, 1, n, src->fp) != n) {
        fr_tensor_free(t);
        return fr_fail(FR_ERR_IO, "%s: tensor '%.200s': short read (file changed while reading?)",
                       src->label, in->name);
    }
    return FR_OK;
}

/* Validates the header (hdr, n bytes; NUL at hdr[n]) against a data buffer of buf_len bytes
 * and fills f with the metadata and tensors. */
static fr_status parse_all(fr_st_file *f, const char *hdr, size_t n, uint64_t buf_len,
                           const st_source *src)
{
    const char *label = src->label;
    FR_TRY(check_header_bytes((const unsigned char *)hdr, n, label));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, n, &end, 0);
    if (!root) {
        size_t at = end && end >= hdr && end <= hdr + n ? (size_t)(end - hdr) : 0;
        return fr_fail(FR_ERR_FORMAT, "%s: header is not valid JSON (near byte %zu of %zu)", label,
                       at, n);
    }
    fr_status s = FR_OK;
    st_info *infos = NULL;
    for (const char *p = end; p < hdr + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            s = fr_fail(FR_ERR_FORMAT, "%s: header has bytes after the JSON object (byte %zu)",
                        label, (size_t)(p - hdr));
            goto done;
        }
    }
    if (!cJSON_IsObject(root)) {
        s = fr_fail(FR_ERR_FORMAT, "%s: header is %s, expected a JSON object", label,
                    json_type_name(root));
        goto done;
    }
    size_t count = 0;
    const cJSON *meta = NULL;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") != 0) {
            count++;
            continue;
        }
        if (meta) {
            s = fr_fail(FR_ERR_FORMAT, "%s: __metadata__ appears twice", label);
            goto done;
        }
        meta = c;
    }
    if (meta && (s = parse_metadata(meta, label, f)) != FR_OK) goto done;
    infos = count ? fr_calloc(count, sizeof *infos) : NULL;
    if (count && !infos) {
        s = FR_ERR_NOMEM;
        goto done;
    }
    size_t k = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c == meta) continue;
        if ((s = parse_entry(c, label, buf_len, &infos[k])) != FR_OK) goto done;
        infos[k].order = k;
        k++;
    }
    if (count) qsort(infos, count, sizeof *infos, cmp_by_name);
    for (size_t i = 1; i < count; i++) {
        if (strcmp(infos[i - 1].name, infos[i].name) == 0) {
            s = fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s' appears twice in the header", label,
                        infos[i].name);
            goto done;
        }
    }
    /* The reference's rule: sorted by offset, the tensors tile the buffer exactly. */
    if (count) qsort(infos, count, sizeof *infos, cmp_by_offset);
    uint64_t at = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < count; i++) {
        if (infos[i].begin != at) {
            char pb[240];
            if (prev) snprintf(pb, sizeof pb, "tensor '%.200s' ends", prev);
            else snprintf(pb, sizeof pb, "the buffer starts");
            s = fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': data_offsets begin %llu, but %s at "
                        "%llu (%s; tensors must tile the data buffer)", label, infos[i].name,
                        (unsigned long long)infos[i].begin, pb, (unsigned long long)at,
                        infos[i].begin > at ? "a gap" : "an overlap");
            goto done;
        }
        at = infos[i].end;
        prev = infos[i].name;
    }
    if (at != buf_len) {
        s = fr_fail(FR_ERR_FORMAT, "%s: the tensors cover %llu bytes of the %llu-byte data buffer "
                    "(the rest belongs to no tensor)", label, (unsigned long long)at,
                    (unsigned long long)buf_len);
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        fr_tensor t;
        if ((s = load_data(src, &infos[i], &t)) != FR_OK) goto done;
        char *nm = dup_str(infos[i].name);
        if (!nm || (s = push_entry(f, nm, &t)) != FR_OK) {
            if (!nm) s = FR_ERR_NOMEM;
            free(nm);
            fr_tensor_free(&t);
            goto done;
        }
    }
done:
    free(infos);
    cJSON_Delete(root);
    return s;
}

static uint64_t get_u64le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Checks the 8-byte prefix against the total size; returns N. */
static fr_status check_prefix(const unsigned char *p8, uint64_t total, const char *label, size_t *n)
{
    uint64_t hl = get_u64le(p8);
    if (hl == 0)
        return fr_fail(FR_ERR_FORMAT, "%s: header length is 0 (the header must be a JSON object)",
                       label);
    if (hl > FR_ST_MAX_HEADER)
        return fr_fail(FR_ERR_FORMAT, "%s: header length %llu is over the %u-byte limit", label,
                       (unsigned long long)hl, FR_ST_MAX_HEADER);
    if (hl > total - 8)
        return fr_fail(FR_ERR_FORMAT, "%s: header length %llu is past the end of the file (%llu "
                       "bytes after the 8-byte length)", label, (unsigned long long)hl,
                       (unsigned long long)(total - 8));
    *n = (size_t)hl;
    return FR_OK;
}

static fr_status too_short(const char *label, uint64_t total)
{
    return fr_fail(FR_ERR_FORMAT, "%s: %llu bytes; a safetensors file starts with an 8-byte header "
                   "length", label, (unsigned long long)total);
}

fr_status fr_st_read_mem(fr_st_file *f, const void *buf, size_t len, const char *label)
{
    fr_st_init(f);
    if (!label) label = "(memory)";
    if (len < 8) return too_short(label, len);
    size_t n;
    FR_TRY(check_prefix(buf, len, label, &n));
    /* cJSON gets its own NUL-terminated copy: the input need not be terminated. */
    char *hdr = fr_malloc(n + 1);
    if (!hdr) return FR_ERR_NOMEM;
    memcpy(hdr, (const unsigned char *)buf + 8, n);
    hdr[n] = '\0';
    st_source src = {.mem = buf, .data_start = 8 + (uint64_t)n, .label = label};
    fr_status s = parse_all(f, hdr, n, len - 8 - n, &src);
    free(hdr);
    if (s != FR_OK) fr_st_free(f);
    return s;
}

fr_status fr_st_read(fr_st_file *f, const char *path)
{
    fr_st_init(f);
    FILE *fp = fopen(path, "rb");
    if (!fp) return fr_fail(FR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    fr_status s = FR_OK;
    char *hdr = NULL;
    if (fstat(fileno(fp), &st) != 0) {
        s = fr_fail(FR_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        s = fr_fail(FR_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    uint64_t total = (uint64_t)st.st_size;
    unsigned char p8[8];
    if (total < 8) {
        s = too_short(path, total);
        goto done;
    }
    if (fread(p8, 1, 8, fp) != 8) {
        s = fr_fail(FR_ERR_IO, "%s: read failed", path);
        goto done;
    }
    size_t n;
    if ((s = check_prefix(p8, total, path, &n)) != FR_OK) goto done;
    hdr = fr_malloc(n + 1);
    if (!hdr) {
        s = FR_ERR_NOMEM;
        goto done;
    }
    if (fread(hdr, 1, n, fp) != n) {
        s = fr_fail(FR_ERR_IO, "%s: short read of the %zu-byte header", path, n);
        goto done;
    }
    hdr[n] = '\0';
    st_source src = {.fp = fp, .data_start = 8 + (uint64_t)n, .label = path};
    s = parse_all(f, hdr, n, total - 8 - n, &src);
done:
    free(hdr);
    fclose(fp);
    if (s != FR_OK) fr_st_free(f);
    return s;
}
