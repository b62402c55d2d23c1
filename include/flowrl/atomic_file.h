/* Write-then-rename (docs/design.md §8.3 "Nothing half-written is left behind"): every file flowrl
 * writes -- checkpoints, golden cases, PNGs, run-directory files -- goes through here. */
#ifndef FLOWRL_ATOMIC_FILE_H
#define FLOWRL_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "flowrl/status.h"

/* Fills fp (open for writing, binary); tmp names the file for messages. */
typedef fr_status (*fr_atomic_writer)(FILE *fp, const char *tmp, void *user);

/* Creates a temporary file beside path (unique per process and call, O_EXCL, mode 0666
 * less the umask), lets write fill it, flushes, fsyncs, closes and renames it over path.
 * On any failure the temporary file is removed and path is left as it was. */
fr_status fr_atomic_write(const char *path, fr_atomic_writer write, void *user);

/* The same for a buffer (curve.svg, metrics.jsonl cut back on resume). */
fr_status fr_atomic_write_bytes(const char *path, const void *data, size_t len);

#endif
