/* Reading a whole file into memory: the one reader behind run comparisons, golden checks,
 * config.json and base digests. */
#ifndef FLOWRL_FILE_UTIL_H
#define FLOWRL_FILE_UTIL_H

#include <stddef.h>

#include "flowrl/status.h"

/* The bound fr_read_file applies: no file flowrl reads whole is near it. */
#define FR_READ_FILE_MAX ((size_t)1 << 30)

/* Reads the regular file at path into a malloc'ed buffer (*buf, freed by the caller) of
 * *len bytes followed by a NUL (so text parsers may use it as a string). A missing or
 * unreadable file or a non-regular one is FR_ERR_IO, a file over max bytes FR_ERR_NOMEM,
 * each naming path; on failure *buf is NULL and *len 0. */
fr_status fr_read_file_max(const char *path, size_t max, char **buf, size_t *len);

/* fr_read_file_max with max = FR_READ_FILE_MAX. */
fr_status fr_read_file(const char *path, char **buf, size_t *len);

#endif
