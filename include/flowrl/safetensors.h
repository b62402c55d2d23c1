/* safetensors files (docs/design.md §5): checkpoints and golden tensors in the format PyTorch and
 * Hugging Face users already load.
 *
 * Layout (the Hugging Face safetensors format): an 8-byte little-endian u64 N, N bytes of a
 * UTF-8 JSON object
 *   {"__metadata__": {str: str}, "NAME": {"dtype": "F32", "shape": [..],
 *                                         "data_offsets": [begin, end]}, ...}
 * and then the data buffer; offsets are relative to the start of the buffer.
 *
 * Writing is byte-for-byte deterministic: "__metadata__" comes first (omitted when empty) with
 * its keys sorted by strcmp, then the tensors in insertion order, their data contiguous in
 * the same order; the JSON has no whitespace and is padded with spaces so that N is a
 * multiple of 8, as the reference implementation does. Files are written to
 * "PATH.tmp.<pid>", fsync'ed and renamed, so PATH is either the old file or the whole new
 * one; on failure the temporary file is removed.
 *
 * Reading validates everything and fails with FR_ERR_FORMAT and a message naming the label
 * (the path), the tensor and the field: header length 0, past the end of the file or over
 * 100 MB; a header that is not UTF-8 / not one JSON object / does not start with '{';
 * unknown dtypes; shapes with more than FR_MAX_DIMS dims, negative, non-integer or huge dims,
 * or an element count that overflows; data_offsets that are not two integers, run backwards,
 * leave the buffer, disagree with dtype x shape, or fail to tile the buffer exactly (no gaps,
 * overlaps or uncovered bytes); duplicate names; a __metadata__ that is not an object of
 * strings. Unknown fields inside a tensor entry are ignored (as the reference does);
 * a repeated known field is an error. JSON numbers are read by cJSON as doubles, so an
 * integral value written as 8.0 or 8e0 is accepted as 8; values above 2^53 are rejected.
 * Every tensor read is an owned copy (aligned, independent of the input buffer).
 *
 * Digests (checkpoint integrity): a file written with f->digests set carries one metadata
 * entry "digest.NAME" per tensor, the XXH3-64 of the tensor's data bytes as 16 lowercase hex
 * digits (fr_digest_bytes; in Python xxhash.xxh3_64_hexdigest(data)), and one of the header,
 * "digest.__metadata__" (a name no tensor can have): the XXH3-64 of "KEY\0VALUE\0" for every
 * other metadata entry in key order, then "NAME\0DTYPE\0D0,D1,...\0" for every tensor in data
 * order (dims in decimal). Reading a file that has any "digest." entry requires the header
 * digest to match, then one digest per tensor, none for an absent tensor, each matching;
 * else FR_ERR_FORMAT "LABEL: tensor 'NAME': digest X != stored Y (corrupted)" or "LABEL:
 * header (metadata and tensor table): digest X != stored Y (corrupted)". The entries are
 * then removed from the metadata and f->digests is set, so writing f again writes digests
 * of its current contents. Files without digest entries read as before.
 * Data bytes are little-endian, which is the host order on every platform flowrl builds on. */
#ifndef FLOWRL_SAFETENSORS_H
#define FLOWRL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/status.h"
#include "flowrl/tensor.h"

/* The reference implementation's limit on the header length, in bytes. */
#define FR_ST_MAX_HEADER 100000000u
/* The metadata key prefix of the per-tensor digests. */
#define FR_ST_DIGEST_PREFIX "digest."
#define FR_ST_HEADER_DIGEST_KEY "digest.__metadata__"

typedef struct {
    char *name;
    fr_tensor t; /* always owned (t.owned == 1) */
} fr_st_entry;

typedef struct {
    char *key;
    char *value;
} fr_st_meta;

typedef struct {
    fr_st_entry *entries; /* insertion order (= data order; after a read, file data order) */
    size_t n;
    size_t cap;
    fr_st_meta *meta; /* sorted by key (strcmp) */
    size_t n_meta;
    size_t cap_meta;
    int digests; /* write "digest.NAME" entries (see above); set by a read of a file with them */
} fr_st_file;

void fr_st_init(fr_st_file *f);
void fr_st_free(fr_st_file *f); /* frees every tensor and string; f is left empty */

/* Adds a copy of t under name. FR_ERR_ARG for a duplicate name, the reserved name
 * "__metadata__", a name that is not UTF-8, a CUDA tensor or an invalid shape. */
fr_status fr_st_add(fr_st_file *f, const char *name, const fr_tensor *t);
/* Like fr_st_add, but moves an owned tensor in without copying (a view is copied): on
 * success *t is left empty (data NULL, not owned); on failure *t is untouched. */
fr_status fr_st_add_take(fr_st_file *f, const char *name, fr_tensor *t);
/* Sets (or replaces) one metadata entry; key and value must be UTF-8. */
fr_status fr_st_set_meta(fr_st_file *f, const char *key, const char *value);

const fr_tensor *fr_st_get(const fr_st_file *f, const char *name); /* NULL if absent */
const char *fr_st_get_meta(const fr_st_file *f, const char *key);  /* NULL if absent */
/* Metadata `key` of f (read from path) as a decimal integer in [lo, hi]; FR_ERR_FORMAT naming
 * path, key and the value (or "(absent)") otherwise. */
fr_status fr_st_get_meta_i64(const fr_st_file *f, const char *path, const char *key, int64_t lo, int64_t hi,
                             int64_t *v);

/* Atomic write (see above). */
fr_status fr_st_write(const fr_st_file *f, const char *path);
/* The same bytes in a malloc'ed buffer (*buf freed by the caller), e.g. for archives. */
fr_status fr_st_write_mem(const fr_st_file *f, void **buf, size_t *len);

/* Reads into *f, which the call initializes (no fr_st_init needed); on failure *f is empty.
 * fr_st_read reads a regular file (bounded by its size); fr_st_read_mem parses len bytes
 * at buf, naming the input `label` in messages. */
fr_status fr_st_read(fr_st_file *f, const char *path);
fr_status fr_st_read_mem(fr_st_file *f, const void *buf, size_t len, const char *label);

#endif
