/* Shared by core/safetensors*.c: the container's helpers and the per-tensor digests. */
#ifndef FLOWRL_CORE_SAFETENSORS_INTERNAL_H
#define FLOWRL_CORE_SAFETENSORS_INTERNAL_H

#include <stddef.h>

#include "flowrl/safetensors.h"

/* Strict UTF-8 (RFC 3629): the offset of the first bad byte of s[0..n), or n. */
size_t fr_st_utf8_bad_at(const unsigned char *s, size_t n);
char *fr_st_dup_str(const char *s); /* NULL (error recorded) when out of memory */
/* FR_ERR_ARG naming the tensor unless t is a valid host tensor with data. */
fr_status fr_st_check_tensor(const char *name, const fr_tensor *t);
/* Appends (name, *t) taking both; on failure neither is consumed. */
fr_status fr_st_push_entry(fr_st_file *f, char *name, const fr_tensor *t);

/* The metadata a write of f puts in the header: f's entries, and with f->digests a fresh
 * "digest.NAME" entry per tensor in place of any stored ones. out is initialised here and
 * freed by the caller (fr_st_free). */
fr_status fr_st_meta_for_write(const fr_st_file *f, fr_st_file *out);
/* After a successful parse: when f's metadata has digest entries, checks every tensor
 * against its own (FR_ERR_FORMAT naming label and the tensor), then removes them from the
 * metadata and sets f->digests. */
fr_status fr_st_check_digests(fr_st_file *f, const char *label);

#endif
