#include "flowrl/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_msg[1024];

fr_status fr_fail(fr_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* through a copy: an argument may be fr_last_error() itself ("x: %s", fr_last_error()) */
    char m[sizeof g_msg];
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    memcpy(g_msg, m, sizeof m);
    /* one line whatever the arguments hold (a corrupted file's stored strings are echoed):
     * control bytes, a newline among them, become '?' */
    for (char *c = g_msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    return s;
}

const char *fr_last_error(void) { return g_msg; }

const char *fr_status_name(fr_status s)
{
    switch (s) {
    case FR_OK: return "ok";
    case FR_ERR_ARG: return "bad argument";
    case FR_ERR_IO: return "i/o error";
    case FR_ERR_FORMAT: return "format error";
    case FR_ERR_NOMEM: return "out of memory";
    case FR_ERR_UNSUPPORTED: return "unsupported";
    case FR_ERR_NUMERIC: return "numeric error";
    case FR_ERR_MISMATCH: return "mismatch";
    }
    return "unknown status";
}

void *fr_malloc_at(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p) fr_fail(FR_ERR_NOMEM, "%s:%d: malloc(%zu) failed", file, line, n);
    return p;
}

void *fr_calloc_at(size_t count, size_t size, const char *file, int line)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) fr_fail(FR_ERR_NOMEM, "%s:%d: calloc(%zu, %zu) failed", file, line, count, size);
    return p;
}
