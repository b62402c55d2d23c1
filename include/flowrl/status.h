/* Status codes and the last-error message (thread-local). Library functions return an
 * fr_status; the message says what failed, naming the file / field / expected value. */
#ifndef FLOWRL_STATUS_H
#define FLOWRL_STATUS_H

#include <stddef.h>

typedef enum {
    FR_OK = 0,
    FR_ERR_ARG,         /* bad argument or option value */
    FR_ERR_IO,          /* open / read / write / rename failed */
    FR_ERR_FORMAT,      /* malformed file contents */
    FR_ERR_NOMEM,       /* allocation failed or a size is absurd */
    FR_ERR_UNSUPPORTED, /* a backend or build option is not available */
    FR_ERR_NUMERIC,     /* NaN / inf where a finite value is required */
    FR_ERR_MISMATCH     /* a comparison found a difference */
} fr_status;

/* Records a printf-style message for the calling thread and returns `s`, so that
 * `return fr_fail(FR_ERR_IO, "%s: %s", path, strerror(errno));` reads in one line. The message
 * is always one line: control bytes of the formatted text (a newline echoed from a corrupted
 * file's strings) become '?'. */
fr_status fr_fail(fr_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The message of the last failure on this thread ("" if none). */
const char *fr_last_error(void);
const char *fr_status_name(fr_status s);

/* Allocation that never returns NULL silently: on failure it records an error naming the
 * call site and returns NULL (llm.c's mallocCheck, but recoverable). */
void *fr_malloc_at(size_t n, const char *file, int line);
void *fr_calloc_at(size_t count, size_t size, const char *file, int line);
#define fr_malloc(n) fr_malloc_at((n), __FILE__, __LINE__)
#define fr_calloc(c, s) fr_calloc_at((c), (s), __FILE__, __LINE__)

/* Propagate a failed status: FR_TRY(expr); */
#define FR_TRY(expr)                                                                       \
    do {                                                                                   \
        fr_status fr_try_s_ = (expr);                                                      \
        if (fr_try_s_ != FR_OK) return fr_try_s_;                                          \
    } while (0)

#endif
