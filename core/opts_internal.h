/* Shared by core/opts*.c (the option engine, flowrl/opts.h). */
#ifndef FLOWRL_OPTS_INTERNAL_H
#define FLOWRL_OPTS_INTERNAL_H

#include <stddef.h>

#include "flowrl/opt_groups.h"
#include "flowrl/opts.h"

/* Longest value text: a path, or a double's 24 characters. */
#define FR_OPT_TEXT_MAX (FR_OPT_PATH_MAX + 64)

/* "--max-grad-norm" for key "max_grad_norm". */
void fr_opt_flag(const fr_opt *r, char *buf, size_t n);
/* The shortest text that reads back (fr_opt_set) to the same float / double. */
void fr_opt_fmt_f32(float v, char *b, size_t n);
void fr_opt_fmt_f64(double v, char *b, size_t n);
/* Sets a numeric row from a parsed number (integer and range checks; text for messages). */
fr_status fr_opt_set_num(const fr_opt *r, void *st, double v, const char *where, const char *text);

#endif
