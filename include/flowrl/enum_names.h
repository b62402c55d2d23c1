/* One convention for enum names: a NULL-terminated array of names indexed by the enum's
 * value, and these helpers. Every fr_X_name / fr_X_from_name pair is a two-line wrapper,
 * and the option engine (flowrl/opts.h) takes the same arrays for FR_OPT_ENUM rows. */
#ifndef FLOWRL_ENUM_NAMES_H
#define FLOWRL_ENUM_NAMES_H

#include <stddef.h>

#include "flowrl/status.h"

/* names[v], or NULL when v is not an index of names. */
const char *fr_enum_name(const char *const *names, int v);
/* The index of s in names; FR_ERR_ARG "unknown WHAT 's' (a, b or c)" if absent. */
fr_status fr_enum_parse(const char *const *names, const char *s, int *v, const char *what);
/* "a, b, c" (sep between names) into buf; truncated to n. */
void fr_enum_list(const char *const *names, const char *sep, char *buf, size_t n);

#endif
