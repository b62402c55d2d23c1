/* Writing safetensors files and buffers, byte for byte deterministic (the layout:
 * include/flowrl/safetensors.h). The JSON header is printed by cJSON (docs/design.md §4). */
#include "flowrl/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors_internal.h"
#include "flowrl/atomic_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; a big-endian host needs byte swaps here"
#endif

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

/* The "__metadata__" object (none when empty): f's entries, with fresh per-tensor digests
 * when f asks for them. 0 when out of memory. */
static int add_metadata(cJSON *root, const fr_st_file *f)
{
    fr_st_file dm; /* holds only metadata */
    if (f->digests) {
        if (fr_st_meta_for_write(f, &dm) != FR_OK) return 0;
        f = &dm;
    }
    int ok = 1;
    if (f->n_meta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (size_t i = 0; ok && i < f->n_meta; i++)
            ok = cJSON_AddStringToObject(m, f->meta[i].key, f->meta[i].value) != NULL;
    }
    if (f == &dm) fr_st_free(&dm);
    return ok;
}

/* The padded header (N = *len, a multiple of 8) and the total data size. */
static fr_status build_header(const fr_st_file *f, char **out, size_t *len, uint64_t *data_len)
{
    for (size_t i = 0; i < f->n; i++) FR_TRY(fr_st_check_tensor(f->entries[i].name, &f->entries[i].t));
    cJSON *root = cJSON_CreateObject();
    if (!root || !add_metadata(root, f)) goto nomem;
    uint64_t off = 0;
    for (size_t i = 0; i < f->n; i++) {
        const fr_tensor *t = &f->entries[i].t;
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
