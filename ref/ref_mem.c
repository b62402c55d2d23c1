/* The memory entries of a host backend (ref, and opt, which inherits them): backend memory
 * is host memory, 64-byte aligned and zero-filled; copies are memcpy and nothing is
 * asynchronous. And host_for, in order on the calling thread (every backend but opt). */
#include <stdlib.h>
#include <string.h>

#include "ref/ref_internal.h"

void *fr_ref_mem_alloc(size_t bytes)
{
    /* aligned_alloc wants a multiple of the alignment; 0 bytes still gives a pointer */
    size_t n = bytes ? (bytes + 63) / 64 * 64 : 64;
    if (n < bytes) return NULL;
    void *p = aligned_alloc(64, n);
    if (p) memset(p, 0, n);
    return p;
}

void fr_ref_mem_free(void *p) { free(p); }

fr_status fr_ref_mem_copy(void *dst, const void *src, size_t bytes)
{
    if (bytes) memcpy(dst, src, bytes);
    return FR_OK;
}

fr_status fr_ref_mem_zero(void *p, size_t bytes)
{
    if (bytes) memset(p, 0, bytes);
    return FR_OK;
}

fr_status fr_ref_mem_sync(void) { return FR_OK; }

void fr_ref_host_for(int64_t n, void (*fn)(void *ctx, int64_t i), void *ctx)
{
    for (int64_t i = 0; i < n; i++) fn(ctx, i);
}
