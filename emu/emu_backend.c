/* cuda-emu's op table (flowrl/emu.h): the guarded arena as memory, and every compute entry
 * from kern/ (the same sources nvcc compiles into `cuda`), launched by emu/emu_launch.c. */
#include "emu/emu_internal.h"

#include <string.h>

#include "kern/kern_fill.h"

/* A copy's device side must lie inside one live allocation and its host side outside the
 * arena: a swapped or stale pointer is the first cause, named here. */
static fr_status check_dev(const char *what, const void *p, size_t bytes)
{
    if (!fr_emu_is_device_range(p, bytes))
        return fr_fail(FR_ERR_ARG, "cuda-emu: %s %p (+%zu bytes) is not inside a live device allocation", what, p, bytes);
    return FR_OK;
}

static fr_status check_host(const char *what, const void *p)
{
    if (fr_emu_is_device(p)) return fr_fail(FR_ERR_ARG, "cuda-emu: %s %p is device memory, expected host memory", what, p);
    return FR_OK;
}

static fr_status emu_h2d(void *dst, const void *src, size_t bytes)
{
    if (!bytes) return FR_OK;
    FR_TRY(check_dev("h2d destination", dst, bytes));
    FR_TRY(check_host("h2d source", src));
    fr_emu_open();
    memcpy(dst, src, bytes);
    fr_emu_close();
    return FR_OK;
}

static fr_status emu_d2h(void *dst, const void *src, size_t bytes)
{
    if (!bytes) return FR_OK;
    FR_TRY(check_dev("d2h source", src, bytes));
    FR_TRY(check_host("d2h destination", dst));
    fr_emu_open();
    memcpy(dst, src, bytes);
    fr_emu_close();
    return FR_OK;
}

static fr_status emu_d2d(void *dst, const void *src, size_t bytes)
{
    if (!bytes) return FR_OK;
    FR_TRY(check_dev("d2d destination", dst, bytes));
    FR_TRY(check_dev("d2d source", src, bytes));
    fr_emu_open();
    memmove(dst, src, bytes);
    fr_emu_close();
    return FR_OK;
}

static fr_status emu_zero(void *p, size_t bytes)
{
    if (!bytes) return FR_OK;
    FR_TRY(check_dev("memset destination", p, bytes));
    fr_emu_open();
    memset(p, 0, bytes);
    fr_emu_close();
    return FR_OK;
}

static fr_status emu_sync(void) { return FR_OK; }

fr_status fr_emu_init(fr_ops *ops)
{
    ops->mem_alloc = fr_emu_mem_alloc;
    ops->mem_free = fr_emu_mem_free;
    ops->mem_h2d = emu_h2d;
    ops->mem_d2h = emu_d2h;
    ops->mem_d2d = emu_d2d;
    ops->mem_zero = emu_zero;
    ops->mem_sync = emu_sync;
    ops->device = 1;
    fr_kern_fill(ops);
    return FR_OK;
}
