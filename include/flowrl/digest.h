/* XXH3-64 digests of tensors and buffers (docs/design.md §2, docs/algorithms/numerics.md §5).
 * A tensor digest covers its dtype name, its ndim, each dim (as little-endian u64) and
 * its bytes; for F32/F64 every NaN is hashed as the canonical quiet NaN (payloads are not
 * part of the contract) while -0.0 stays distinct from +0.0. */
#ifndef FLOWRL_DIGEST_H
#define FLOWRL_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/tensor.h"

uint64_t fr_digest_bytes(const void *data, size_t n);
uint64_t fr_tensor_digest(const fr_tensor *t);
/* The digest of a whole file's bytes as 16 hex digits (a base checkpoint's identity:
 * run.base_digest, a preference file's provenance). */
fr_status fr_file_digest_hex(const char *path, char hex[17]);
/* 16 lowercase hex digits + NUL. */
void fr_digest_hex(uint64_t d, char out[17]);
/* Known-answer self test of the linked xxHash (docs/algorithms/numerics.md §5); FR_OK or a message. */
fr_status fr_digest_selftest(void);

#endif
