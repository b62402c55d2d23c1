/* The option engine (flowrl/opts.h): a row's value from text and back, defaults, checks.
 * argv and --help are core/opts_argv.c; config.json, metadata and the resume check are
 * core/opts_json.c. */
#include "flowrl/opts.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/enum_names.h"
#include "opts_internal.h"

static void *field(const fr_opt *r, void *st) { return (char *)st + r->off; }
static const void *cfield(const fr_opt *r, const void *st) { return (const char *)st + r->off; }

void fr_opt_flag(const fr_opt *r, char *buf, size_t n)
{
    snprintf(buf, n, "--%s", r->key);
    for (char *p = buf + 2; *p; p++)
        if (*p == '_') *p = '-';
}

/* A bound as text: integral values in full ("4294967295"), others as %g. */
static void fmt_bound(double v, char *b, size_t n)
{
    if (v == floor(v) && fabs(v) < 1e15) snprintf(b, n, "%.0f", v);
    else snprintf(b, n, "%g", v);
}

static int has_range(const fr_opt *r) { return r->lo != 0.0 || r->hi != 0.0; }

static fr_status out_of_range(const fr_opt *r, const char *where, const char *text)
{
    char lo[32], hi[32];
    fmt_bound(r->lo, lo, sizeof lo);
    fmt_bound(r->hi, hi, sizeof hi);
    return fr_fail(FR_ERR_ARG, "%s: %s is outside [%s, %s]", where, text, lo, hi);
}

/* The shortest "%.Ng" that reads back to the same bits, N from 6 (float) / 15 (double)
 * up: the convention of config.json and checkpoint metadata since cff6d07, so that a
 * value formatted now compares equal, as text, to one written then. The float check is
 * (float)strtod, the way fr_opt_set reads it back, so the round trip is exact by
 * construction. */
void fr_opt_fmt_f32(float v, char *b, size_t n)
{
    for (int p = 6; p <= 9; p++) {
        snprintf(b, n, "%.*g", p, (double)v);
        if ((float)strtod(b, NULL) == v) return;
    }
}

void fr_opt_fmt_f64(double v, char *b, size_t n)
{
    for (int p = 15; p <= 17; p++) {
        snprintf(b, n, "%.*g", p, v);
        if (strtod(b, NULL) == v) return;
    }
}

void fr_opt_format(const fr_opt *r, const void *st, char *buf, size_t n)
{
    const void *p = cfield(r, st);
    const char *name;
    switch (r->kind) {
    case FR_OPT_I64: snprintf(buf, n, "%lld", (long long)*(const int64_t *)p); break;
    case FR_OPT_U32: snprintf(buf, n, "%u", *(const uint32_t *)p); break;
    case FR_OPT_INT: snprintf(buf, n, "%d", *(const int *)p); break;
    case FR_OPT_F32: fr_opt_fmt_f32(*(const float *)p, buf, n); break;
    case FR_OPT_F64: fr_opt_fmt_f64(*(const double *)p, buf, n); break;
    case FR_OPT_BOOL: snprintf(buf, n, "%s", *(const int *)p ? "true" : "false"); break;
    case FR_OPT_TRI:
        snprintf(buf, n, "%s", *(const int *)p < 0 ? "auto" : *(const int *)p ? "true" : "false");
        break;
    case FR_OPT_ENUM:
        name = fr_enum_name(r->names, *(const int *)p);
        snprintf(buf, n, "%s", name ? name : "?");
        break;
    case FR_OPT_STR: snprintf(buf, n, "%s", (const char *)p); break;
    }
}

/* Stores a number already parsed (argv text or JSON), after the integer and range checks. */
fr_status fr_opt_set_num(const fr_opt *r, void *st, double v, const char *where, const char *text)
{
    void *p = field(r, st);
    int integral = r->kind == FR_OPT_I64 || r->kind == FR_OPT_U32 || r->kind == FR_OPT_INT;
    if (!isfinite(v)) return fr_fail(FR_ERR_ARG, "%s: '%s' is not a finite number", where, text);
    if (integral && (v != floor(v) || fabs(v) > 9e15))
        return fr_fail(FR_ERR_ARG, "%s: '%s' is not an integer", where, text);
    if (has_range(r) && !(v >= r->lo && v <= r->hi)) return out_of_range(r, where, text);
    switch (r->kind) {
    case FR_OPT_I64: *(int64_t *)p = (int64_t)v; break;
    case FR_OPT_U32:
        if (v < 0 || v > 4294967295.0) return fr_fail(FR_ERR_ARG, "%s: '%s' is not a 32-bit unsigned integer", where, text);
        *(uint32_t *)p = (uint32_t)v;
        break;
    case FR_OPT_INT:
        if (fabs(v) > 2147483647.0) return fr_fail(FR_ERR_ARG, "%s: '%s' does not fit an int", where, text);
        *(int *)p = (int)v;
        break;
    case FR_OPT_F32:
        if (!isfinite((float)v)) return fr_fail(FR_ERR_ARG, "%s: '%s' overflows a float", where, text);
        *(float *)p = (float)v;
        break;
    case FR_OPT_F64: *(double *)p = v; break;
    default: return fr_fail(FR_ERR_ARG, "%s: not a numeric option", where);
    }
    return FR_OK;
}

/* 0/1 from true|false|on|off|1|0|yes|no, -1 if none. */
static int parse_bool(const char *s)
{
    static const char *const yes[] = {"true", "on", "1", "yes", NULL}, *const no[] = {"false", "off", "0", "no", NULL};
    for (int i = 0; yes[i]; i++) {
        if (strcmp(s, yes[i]) == 0) return 1;
        if (strcmp(s, no[i]) == 0) return 0;
    }
    return -1;
}

fr_status fr_opt_set(const fr_opt *r, void *st, const char *text, const char *where)
{
    void *p = field(r, st);
    char *end;
    int b, v;
    switch (r->kind) {
    case FR_OPT_I64:
    case FR_OPT_INT:
    case FR_OPT_U32: {
        /* integers exactly (no detour through double), seeds also as 0x hex */
        errno = 0;
        long long i = 0;
        unsigned long long u = 0;
        if (r->kind == FR_OPT_U32) {
            if (*text == '-') return fr_fail(FR_ERR_ARG, "%s: '%s' is not a 32-bit unsigned integer", where, text);
            /* decimal, or hex after 0x; never octal ("010" is ten) */
            int hex = text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
            u = strtoull(text, &end, hex ? 16 : 10);
        } else {
            i = strtoll(text, &end, 10);
        }
        if (end == text || *end != '\0') return fr_fail(FR_ERR_ARG, "%s: '%s' is not an integer", where, text);
        if (errno == ERANGE || (r->kind == FR_OPT_U32 && u > 0xFFFFFFFFull))
            return fr_fail(FR_ERR_ARG, "%s: '%s' is too large", where, text);
        double d = r->kind == FR_OPT_U32 ? (double)u : (double)i;
        if (has_range(r) && !(d >= r->lo && d <= r->hi)) return out_of_range(r, where, text);
        if (r->kind == FR_OPT_I64) *(int64_t *)p = i;
        else if (r->kind == FR_OPT_U32) *(uint32_t *)p = (uint32_t)u;
        else return fr_opt_set_num(r, st, d, where, text);
        return FR_OK;
    }
    case FR_OPT_F32:
    case FR_OPT_F64: {
        errno = 0;
        double d = strtod(text, &end);
        if (end == text || *end != '\0') return fr_fail(FR_ERR_ARG, "%s: '%s' is not a number", where, text);
        return fr_opt_set_num(r, st, d, where, text);
    }
    case FR_OPT_BOOL:
        if ((b = parse_bool(text)) < 0) return fr_fail(FR_ERR_ARG, "%s: '%s' is not one of true, false", where, text);
        *(int *)p = b;
        return FR_OK;
    case FR_OPT_TRI:
        b = strcmp(text, "auto") == 0 ? -1 : parse_bool(text);
        if (b < 0 && strcmp(text, "auto") != 0)
            return fr_fail(FR_ERR_ARG, "%s: '%s' is not one of auto, on, off", where, text);
        *(int *)p = b;
        return FR_OK;
    case FR_OPT_ENUM:
        for (v = 0; r->names[v]; v++)
            if (strcmp(text, r->names[v]) == 0) {
                *(int *)p = v;
                return FR_OK;
            }
        {
            char list[256];
            fr_enum_list(r->names, ", ", list, sizeof list);
            return fr_fail(FR_ERR_ARG, "%s: '%s' is not one of %s", where, text, list);
        }
    case FR_OPT_STR:
        if (strlen(text) >= r->size)
            return fr_fail(FR_ERR_ARG, "%s: '%.40s...' is longer than %zu bytes", where, text, r->size - 1);
        memcpy(p, text, strlen(text) + 1);
        return FR_OK;
    }
    return fr_fail(FR_ERR_ARG, "%s: unknown option kind %d", where, (int)r->kind);
}

fr_status fr_opts_defaults(const fr_opts *o)
{
    char fa[96], fb[96];
    for (int g = 0; g < o->ng; g++)
        for (int i = 0; i < o->g[g].n; i++) {
            const fr_opt *r = &o->g[g].rows[i];
            if (r->def) FR_TRY(fr_opt_set(r, o->s[o->g[g].which], r->def, r->key));
            /* one flag, one row: a second row with the same flag would never be reached */
            fr_opt_flag(r, fa, sizeof fa);
            for (int h = 0; h <= g; h++)
                for (int j = 0; j < (h == g ? i : o->g[h].n); j++) {
                    fr_opt_flag(&o->g[h].rows[j], fb, sizeof fb);
                    if (strcmp(fa, fb) == 0) return fr_fail(FR_ERR_ARG, "flowrl %s: option %s declared twice", o->cmd, fa);
                }
        }
    return FR_OK;
}

fr_status fr_opts_check(const fr_opts *o)
{
    char text[FR_OPT_TEXT_MAX];
    for (int g = 0; g < o->ng; g++)
        for (int i = 0; i < o->g[g].n; i++) {
            const fr_opt *r = &o->g[g].rows[i];
            const void *p = cfield(r, o->s[o->g[g].which]);
            double v;
            switch (r->kind) {
            case FR_OPT_I64: v = (double)*(const int64_t *)p; break;
            case FR_OPT_U32: v = (double)*(const uint32_t *)p; break;
            case FR_OPT_INT: v = (double)*(const int *)p; break;
            case FR_OPT_F32: v = (double)*(const float *)p; break;
            case FR_OPT_F64: v = *(const double *)p; break;
            case FR_OPT_ENUM:
                if (!fr_enum_name(r->names, *(const int *)p))
                    return fr_fail(FR_ERR_ARG, "%s: %d is not a value of the option", r->key, *(const int *)p);
                continue;
            default: continue;
            }
            fr_opt_format(r, o->s[o->g[g].which], text, sizeof text);
            if (!isfinite(v)) return fr_fail(FR_ERR_ARG, "%s: %s is not a finite number", r->key, text);
            if (has_range(r) && !(v >= r->lo && v <= r->hi)) return out_of_range(r, r->key, text);
        }
    return FR_OK;
}

const fr_opt *fr_opts_find(const fr_opts *o, const char *key, void **st)
{
    for (int g = 0; g < o->ng; g++)
        for (int i = 0; i < o->g[g].n; i++)
            if (strcmp(o->g[g].rows[i].key, key) == 0) {
                if (st) *st = o->s[o->g[g].which];
                return &o->g[g].rows[i];
            }
    return NULL;
}

int fr_opts_seen_key(const fr_opts *o, const fr_opts_seen *seen, const char *key)
{
    for (int g = 0; g < o->ng; g++)
        for (int i = 0; i < o->g[g].n && i < (int)sizeof seen->set[0]; i++)
            if (strcmp(o->g[g].rows[i].key, key) == 0) return seen->set[g][i];
    return 0;
}

int fr_opts_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    }
    return 0;
}
