/* Reading safetensors files and buffers with full validation (the rules:
 * include/flowrl/safetensors.h). The JSON header is parsed by cJSON (docs/design.md §4); this
 * file only checks what the JSON says. */
#include "flowrl/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/safetensors_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; a big-endian host needs byte swaps here"
#endif

/* Integers read from JSON doubles are exact only up to 2^53. */
#define ST_MAX_JSON_INT 9007199254740992.0

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
        e->key = fr_st_dup_str(c->string);
        e->value = e->key ? fr_st_dup_str(c->valuestring) : NULL;
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
    size_t bad = fr_st_utf8_bad_at(h, n);
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
        char *nm = fr_st_dup_str(infos[i].name);
        if (!nm || (s = fr_st_push_entry(f, nm, &t)) != FR_OK) {
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
    if (s == FR_OK) s = fr_st_check_digests(f, label);
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
    if (s == FR_OK) s = fr_st_check_digests(f, path);
done:
    free(hdr);
    fclose(fp);
    if (s != FR_OK) fr_st_free(f);
    return s;
}
