/* Shared by the audit log writer (core/audit.c), its environment block (core/audit_env.c)
 * and its reader (core/audit_read.c). Not a public header. */
#ifndef FLOWRL_CORE_AUDIT_INTERNAL_H
#define FLOWRL_CORE_AUDIT_INTERNAL_H

#include <stdio.h>
#include <string.h>

#include "flowrl/audit.h"
#include "flowrl/digest.h"

#define FR_AUDIT_MAGIC "flowrl-audit"

/* NAME: 1..FR_AUDIT_MAX_NAME bytes of 0x21..0x7E. */
static inline int fr_audit_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > FR_AUDIT_MAX_NAME) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7E) return 0;
    return 1;
}

/* KEY: [A-Za-z0-9._-]+ */
static inline int fr_audit_key_ok(const char *s, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* The digest of a scalar record: that of the 0-d tensor of its dtype (F32 or F64). */
static inline uint64_t fr_audit_scalar_digest(fr_dtype dt, double v)
{
    float f = (float)v;
    fr_tensor t = dt == FR_F32 ? fr_tensor_view(&f, FR_F32, 0, NULL) : fr_tensor_view(&v, FR_F64, 0, NULL);
    return fr_tensor_digest(&t);
}

/* Writes `env KEY VALUE\n` with control bytes of VALUE replaced by spaces and an empty
 * VALUE written as "-". Returns 0 on success. */
int fr_audit_put_env(FILE *f, const char *key, const char *value);
/* The env lines of the header / a resume block (see audit.h for the keys). */
fr_status fr_audit_write_env(FILE *f, const fr_audit_opts *opts, const char *path);

#endif
