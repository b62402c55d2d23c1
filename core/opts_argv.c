/* The option engine's command line: argv parsing and --help (flowrl/opts.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/enum_names.h"
#include "opts_internal.h"

/* ---- lookup ------------------------------------------------------------------------- */

typedef struct {
    int g, i;      /* group and row */
    int negated;   /* --no-NAME of a bool row */
    int via_alias; /* matched the row's alias */
} hit;

static int find_flag(const fr_opts *o, const char *name, hit *h)
{
    char flag[96];
    for (int pass = 0; pass < 3; pass++)
        for (int g = 0; g < o->ng; g++)
            for (int i = 0; i < o->g[g].n; i++) {
                const fr_opt *r = &o->g[g].rows[i];
                fr_opt_flag(r, flag, sizeof flag);
                int ok = pass == 0   ? strcmp(name, flag) == 0
                         : pass == 1 ? r->alias && strcmp(name, r->alias) == 0
                                     : r->kind == FR_OPT_BOOL && strncmp(name, "--no-", 5) == 0 &&
                                           strcmp(name + 5, flag + 2) == 0;
                if (ok) {
                    *h = (hit){g, i, pass == 2, pass == 1};
                    return 1;
                }
            }
    return 0;
}

/* Levenshtein distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[128];
    if (lb >= sizeof row / sizeof row[0]) return (size_t)-1;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* The closest flag (a prefix of it, or a few edits away), or "" if none is close. */
static void suggest(const fr_opts *o, const char *name, char *best, size_t n)
{
    size_t best_d = (size_t)-1, len = strlen(name);
    best[0] = '\0';
    char flag[96];
    for (int g = 0; g < o->ng; g++)
        for (int i = 0; i < o->g[g].n; i++) {
            const fr_opt *r = &o->g[g].rows[i];
            if (r->flags & FR_OPT_HIDDEN) continue;
            fr_opt_flag(r, flag, sizeof flag);
            size_t d = strncmp(flag, name, len) == 0 && len > 3 ? 1 : edit_distance(name, flag);
            if (d < best_d) {
                best_d = d;
                snprintf(best, n, "%s", flag);
            }
        }
    if (best_d > 2 + len / 6) best[0] = '\0';
}

/* ---- parsing ------------------------------------------------------------------------ */

/* One warning per deprecated alias per process. */
static void warn_alias(const fr_opts *o, const fr_opt *r)
{
    static const char *warned[64];
    static int n_warned;
    if (strncmp(r->alias, "--", 2) != 0) return; /* a short form ("-o"), not deprecated */
    for (int k = 0; k < n_warned; k++)
        if (warned[k] == r->alias) return;
    if (n_warned < 64) warned[n_warned++] = r->alias;
    char flag[96];
    fr_opt_flag(r, flag, sizeof flag);
    fprintf(stderr, "flowrl %s: %s is deprecated, use %s\n", o->cmd, r->alias, flag);
}

fr_status fr_opts_parse(const fr_opts *o, int argc, char **argv, int first, const char **positional,
                        int max_positional, int *n_positional, fr_opts_seen *seen)
{
    int n_pos = 0, only_pos = 0;
    if (seen) memset(seen, 0, sizeof *seen);
    if (n_positional) *n_positional = 0;
    for (int g = 0; g < o->ng; g++)
        if (seen && o->g[g].n > (int)sizeof seen->set[0])
            return fr_fail(FR_ERR_ARG, "flowrl %s: group %s has more than %zu rows", o->cmd, o->g[g].title,
                           sizeof seen->set[0]);
    for (int a = first; a < argc; a++) {
        const char *arg = argv[a];
        if (!only_pos && strcmp(arg, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            if (n_pos >= max_positional) {
                if (max_positional == 0) return fr_fail(FR_ERR_ARG, "unexpected argument '%s'", arg);
                return fr_fail(FR_ERR_ARG, "at most %d argument%s expected, got also '%s'", max_positional,
                               max_positional == 1 ? "" : "s", arg);
            }
            positional[n_pos++] = arg;
            if (n_positional) *n_positional = n_pos;
            continue;
        }
        /* "--name=value" or "--name [value]" */
        char name[96];
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, arg, len);
        name[len] = '\0';
        hit h;
        if (!find_flag(o, name, &h)) {
            char best[96];
            suggest(o, name, best, sizeof best);
            if (best[0]) return fr_fail(FR_ERR_ARG, "unknown option %s (did you mean %s?)", name, best);
            return fr_fail(FR_ERR_ARG, "unknown option %s", name);
        }
        const fr_opt *r = &o->g[h.g].rows[h.i];
        void *st = o->s[o->g[h.g].which];
        if (h.via_alias) warn_alias(o, r);
        if (r->kind == FR_OPT_BOOL) {
            if (eq && h.negated) return fr_fail(FR_ERR_ARG, "%s takes no value", name);
            if (eq) FR_TRY(fr_opt_set(r, st, eq + 1, name));
            else *(int *)((char *)st + r->off) = !h.negated;
        } else {
            const char *v = eq ? eq + 1 : NULL;
            /* the next word, unless it is the next option ("--out --force": no value) */
            if (!v && a + 1 < argc && strncmp(argv[a + 1], "--", 2) != 0) v = argv[++a];
            if (!v) return fr_fail(FR_ERR_ARG, "%s: missing value", name);
            FR_TRY(fr_opt_set(r, st, v, name));
        }
        if (seen) seen->set[h.g][h.i] = 1;
    }
    return FR_OK;
}

/* ---- --help --------------------------------------------------------------------------- */

static void metavar(const fr_opt *r, char *b, size_t n)
{
    if (r->metavar) {
        snprintf(b, n, "%s", r->metavar);
        return;
    }
    switch (r->kind) {
    case FR_OPT_I64:
    case FR_OPT_U32:
    case FR_OPT_INT: snprintf(b, n, "N"); break;
    case FR_OPT_F32:
    case FR_OPT_F64: snprintf(b, n, "X"); break;
    case FR_OPT_TRI: snprintf(b, n, "auto|on|off"); break;
    case FR_OPT_ENUM: fr_enum_list(r->names, "|", b, n); break;
    case FR_OPT_STR: snprintf(b, n, "%s", (r->flags & FR_OPT_PATH) ? "PATH" : "TEXT"); break;
    case FR_OPT_BOOL: b[0] = '\0'; break;
    }
}

#define HELP_COL 28   /* where the help text starts */
#define HELP_WIDTH 96 /* and where it wraps */

/* text from column col (the cursor is there), wrapped at spaces before HELP_WIDTH, each
 * further line indented to col */
static void wrap(FILE *f, const char *text, int col)
{
    int x = col;
    while (*text) {
        while (*text == ' ') text++;
        size_t w = strcspn(text, " ");
        if (x > col && x + 1 + (int)w > HELP_WIDTH) {
            fprintf(f, "\n%*s", col, "");
            x = col;
        }
        if (x > col) x += fprintf(f, " ");
        x += fprintf(f, "%.*s", (int)w, text);
        text += w;
    }
    fputc('\n', f);
}

void fr_opts_help(const fr_opts *o, FILE *f)
{
    for (int g = 0; g < o->ng; g++) {
        int visible = 0;
        for (int i = 0; i < o->g[g].n; i++) visible += !(o->g[g].rows[i].flags & FR_OPT_HIDDEN);
        if (!visible) continue;
        fprintf(f, "\n%s:\n", o->g[g].title);
        const void *st = o->s[o->g[g].which];
        for (int i = 0; i < o->g[g].n; i++) {
            const fr_opt *r = &o->g[g].rows[i];
            if (r->flags & FR_OPT_HIDDEN) continue;
            char flag[96], mv[128], left[256], val[FR_OPT_TEXT_MAX], text[FR_OPT_TEXT_MAX + 512];
            fr_opt_flag(r, flag, sizeof flag);
            metavar(r, mv, sizeof mv);
            fr_opt_format(r, st, val, sizeof val);
            int on = r->kind == FR_OPT_BOOL && *(const int *)((const char *)st + r->off);
            if (on) snprintf(left, sizeof left, "  --[no-]%s", flag + 2); /* on by default */
            else snprintf(left, sizeof left, "  %s%s%s", flag, mv[0] ? " " : "", mv);
            int w = fprintf(f, "%s", left);
            if (w >= HELP_COL) {
                fputc('\n', f);
                w = 0;
            }
            fprintf(f, "%*s", HELP_COL - w, "");
            /* the current value as the default; none for a bool (--[no-] says it) or "" */
            snprintf(text, sizeof text, "%s%s%s%s", r->help ? r->help : "", r->kind != FR_OPT_BOOL && val[0] ? " (" : "",
                     r->kind != FR_OPT_BOOL ? val : "", r->kind != FR_OPT_BOOL && val[0] ? ")" : "");
            wrap(f, text, HELP_COL);
        }
    }
}
