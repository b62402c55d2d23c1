/* libFuzzer target for the audit-log reader (core/audit_read.c): any bytes must parse or
 * fail with FR_ERR_FORMAT / FR_ERR_NOMEM and a message, never crash, read out of bounds or
 * leak; a failed parse leaves the log empty. The input is not NUL-terminated, as a file
 * read into memory need not be. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fr_audit_log log;
    /* an exact-size copy, so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    fr_status s = fr_audit_parse(&log, buf, size, "fuzz");
    free(buf);
    if (s != FR_OK) {
        if (s != FR_ERR_FORMAT && s != FR_ERR_NOMEM) abort();
        if (fr_last_error()[0] == '\0' || log.n_steps) abort();
        return 0;
    }
    for (size_t i = 1; i < log.n_steps; i++)
        if (log.steps[i].end_offset < log.steps[i - 1].end_offset) abort();
    if (log.n_steps && log.steps[log.n_steps - 1].end_offset > size) abort();
    (void)fr_audit_env_get(&log, "flowrl.version");
    fr_audit_log_free(&log);
    return 0;
}
