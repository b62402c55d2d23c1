/* Enum names (flowrl/enum_names.h). */
#include "flowrl/enum_names.h"

#include <stdio.h>
#include <string.h>

const char *fr_enum_name(const char *const *names, int v)
{
    if (v < 0) return NULL;
    for (int i = 0; names[i]; i++)
        if (i == v) return names[i];
    return NULL;
}

void fr_enum_list(const char *const *names, const char *sep, char *buf, size_t n)
{
    size_t w = 0;
    if (n) buf[0] = '\0';
    for (int i = 0; names[i] && w < n; i++) {
        int k = snprintf(buf + w, n - w, "%s%s", i ? sep : "", names[i]);
        if (k < 0) break;
        w += (size_t)k;
    }
}

fr_status fr_enum_parse(const char *const *names, const char *s, int *v, const char *what)
{
    for (int i = 0; s && names[i]; i++)
        if (strcmp(s, names[i]) == 0) {
            *v = i;
            return FR_OK;
        }
    char list[256];
    fr_enum_list(names, ", ", list, sizeof list);
    return fr_fail(FR_ERR_ARG, "unknown %s '%s' (%s)", what, s ? s : "(null)", list);
}
