/* Digests in the safetensors metadata (include/flowrl/safetensors.h, "Digests"): one per
 * tensor and one of the header, written for files that ask for them (checkpoints) and
 * checked on every read of a file that carries them, so a flipped bit in a checkpoint is
 * refused instead of trained on. */
#include "flowrl/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/safetensors_internal.h"
#include "flowrl/digest.h"

#define PREFIX_LEN (sizeof FR_ST_DIGEST_PREFIX - 1)

static int is_digest_key(const char *key) { return strncmp(key, FR_ST_DIGEST_PREFIX, PREFIX_LEN) == 0; }

/* "digest.NAME" in a malloc'ed string (NULL, error recorded, when out of memory). */
static char *digest_key(const char *name)
{
    size_t n = strlen(name);
    char *k = fr_malloc(PREFIX_LEN + n + 1);
    if (!k) return NULL;
    memcpy(k, FR_ST_DIGEST_PREFIX, PREFIX_LEN);
    memcpy(k + PREFIX_LEN, name, n + 1);
    return k;
}

static void entry_digest_hex(const fr_st_entry *e, char hex[17])
{
    fr_digest_hex(fr_digest_bytes(e->t.data, fr_tensor_nbytes(&e->t)), hex);
}

static int update(XXH3_state_t *st, const char *s)
{
    return XXH3_64bits_update(st, s, strlen(s) + 1) == XXH_OK; /* the NUL separates fields */
}

/* The header digest: XXH3-64 over "KEY\0VALUE\0" for each metadata entry other than the
 * digests (sorted by key), then "NAME\0DTYPE\0D0,D1,..\0" for each tensor in data order. */
static fr_status header_digest_hex(const fr_st_file *f, char hex[17])
{
    XXH3_state_t *st = XXH3_createState();
    int ok = st && XXH3_64bits_reset(st) == XXH_OK;
    for (size_t i = 0; ok && i < f->n_meta; i++)
        if (!is_digest_key(f->meta[i].key)) ok = update(st, f->meta[i].key) && update(st, f->meta[i].value);
    for (size_t i = 0; ok && i < f->n; i++) {
        const fr_tensor *t = &f->entries[i].t;
        char dims[FR_MAX_DIMS * 21 + 1] = "";
        for (int d = 0, at = 0; d < t->ndim; d++)
            at += snprintf(dims + at, sizeof dims - (size_t)at, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        ok = update(st, f->entries[i].name) && update(st, fr_dtype_name(t->dtype)) && update(st, dims);
    }
    if (ok) fr_digest_hex(XXH3_64bits_digest(st), hex);
    XXH3_freeState(st);
    return ok ? FR_OK : fr_fail(FR_ERR_NOMEM, "safetensors: out of memory for the header digest");
}

fr_status fr_st_meta_for_write(const fr_st_file *f, fr_st_file *out)
{
    fr_st_init(out);
    fr_status s = FR_OK;
    for (size_t i = 0; s == FR_OK && i < f->n_meta; i++)
        if (!is_digest_key(f->meta[i].key)) s = fr_st_set_meta(out, f->meta[i].key, f->meta[i].value);
    char hex[17];
    if (s == FR_OK) s = header_digest_hex(f, hex);
    if (s == FR_OK) s = fr_st_set_meta(out, FR_ST_HEADER_DIGEST_KEY, hex);
    for (size_t i = 0; s == FR_OK && i < f->n; i++) {
        char *key = digest_key(f->entries[i].name);
        if (!key) s = FR_ERR_NOMEM;
        else {
            entry_digest_hex(&f->entries[i], hex);
            s = fr_st_set_meta(out, key, hex);
        }
        free(key);
    }
    if (s != FR_OK) fr_st_free(out);
    return s;
}

/* Drops every digest entry from the metadata (kept sorted). */
static void strip_digest_meta(fr_st_file *f)
{
    size_t k = 0;
    for (size_t i = 0; i < f->n_meta; i++) {
        if (is_digest_key(f->meta[i].key)) {
            free(f->meta[i].key);
            free(f->meta[i].value);
        } else {
            f->meta[k++] = f->meta[i];
        }
    }
    f->n_meta = k;
}

fr_status fr_st_check_digests(fr_st_file *f, const char *label)
{
    size_t n_keys = 0;
    for (size_t i = 0; i < f->n_meta; i++) n_keys += is_digest_key(f->meta[i].key);
    if (!n_keys) return FR_OK;
    /* the header first: with it intact, a tensor's name, dtype and shape are as written */
    const char *stored_hdr = fr_st_get_meta(f, FR_ST_HEADER_DIGEST_KEY);
    char hex[17];
    FR_TRY(header_digest_hex(f, hex));
    if (!stored_hdr)
        return fr_fail(FR_ERR_FORMAT, "%s: header: no stored digest '%s' beside the tensor digests "
                       "(corrupted header?)", label, FR_ST_HEADER_DIGEST_KEY);
    if (strcmp(hex, stored_hdr) != 0)
        return fr_fail(FR_ERR_FORMAT, "%s: header (metadata and tensor table): digest %s != stored %.40s "
                       "(corrupted)", label, hex, stored_hdr);
    n_keys--;
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->entries[i].name;
        char *key = digest_key(name);
        if (!key) return FR_ERR_NOMEM;
        const char *stored = fr_st_get_meta(f, key);
        free(key);
        if (!stored)
            return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s' has no stored digest (the file has digests for "
                           "other tensors; corrupted header?)", label, name);
        entry_digest_hex(&f->entries[i], hex);
        if (strcmp(hex, stored) != 0)
            return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.200s': digest %s != stored %.40s (corrupted)", label,
                           name, hex, stored);
    }
    /* every tensor matched its key, so a surplus key names no tensor */
    if (n_keys != f->n) {
        for (size_t i = 0; i < f->n_meta; i++)
            if (is_digest_key(f->meta[i].key) && strcmp(f->meta[i].key, FR_ST_HEADER_DIGEST_KEY) != 0 &&
                !fr_st_get(f, f->meta[i].key + PREFIX_LEN))
                return fr_fail(FR_ERR_FORMAT, "%s: metadata '%.200s' is the digest of a tensor the file does "
                               "not have (corrupted header?)", label, f->meta[i].key);
    }
    strip_digest_meta(f);
    f->digests = 1;
    return FR_OK;
}
