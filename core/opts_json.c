/* The option engine's files: config.json, checkpoint metadata, the resume check
 * (flowrl/opts.h). */
#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/atomic_file.h"
#include "opts_internal.h"

#define MAX_CONFIG_BYTES (1u << 20) /* a config.json is a few kB; more is not one */

static int saved(const fr_opt *r) { return !(r->flags & FR_OPT_NOT_SAVED); }

/* The file's bytes, NUL-terminated (malloc'ed). */
static fr_status read_text(const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return fr_fail(FR_ERR_IO, "%s: %s", path, strerror(errno));
    char *buf = fr_malloc(MAX_CONFIG_BYTES + 1);
    if (!buf) {
        fclose(f);
        return FR_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, MAX_CONFIG_BYTES + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return fr_fail(FR_ERR_IO, "%s: read error", path);
    }
    if (n > MAX_CONFIG_BYTES) {
        free(buf);
        return fr_fail(FR_ERR_FORMAT, "%s: larger than %u bytes", path, MAX_CONFIG_BYTES);
    }
    buf[n] = '\0';
    *out = buf;
    return FR_OK;
}

static fr_status parse_object(const char *path, cJSON **root)
{
    char *txt;
    FR_TRY(read_text(path, &txt));
    *root = cJSON_Parse(txt);
    free(txt);
    if (!*root || !cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return fr_fail(FR_ERR_FORMAT, "%s: not a JSON object", path);
    }
    return FR_OK;
}

/* An absolute form of path, without requiring it to exist: realpath if it does, else
 * the working directory joined with it. */
static void absolute(const char *path, char *buf, size_t n)
{
    char rp[PATH_MAX], cwd[PATH_MAX];
    int w = 0;
    if (!path[0]) buf[0] = '\0';
    else if (realpath(path, rp)) w = snprintf(buf, n, "%s", rp);
    else if (path[0] == '/' || !getcwd(cwd, sizeof cwd)) w = snprintf(buf, n, "%s", path);
    else w = snprintf(buf, n, "%.*s/%s", (int)(n / 2), cwd, path);
    if (w < 0 || (size_t)w >= n) buf[0] = '\0'; /* too long to record: the path as given only */
}

/* ---- write ---------------------------------------------------------------------------- */

static int add_row(cJSON *root, const fr_opt *r, const void *st)
{
    char b[FR_OPT_TEXT_MAX];
    fr_opt_format(r, st, b, sizeof b);
    switch (r->kind) {
    case FR_OPT_I64:
    case FR_OPT_U32:
    case FR_OPT_INT:
    case FR_OPT_F32:
    case FR_OPT_F64: return cJSON_AddRawToObject(root, r->key, b) != NULL; /* exact text */
    case FR_OPT_BOOL: return cJSON_AddBoolToObject(root, r->key, *(const int *)((const char *)st + r->off)) != NULL;
    case FR_OPT_TRI:
    case FR_OPT_ENUM: return cJSON_AddStringToObject(root, r->key, b) != NULL;
    case FR_OPT_STR:
        if (!cJSON_AddStringToObject(root, r->key, b)) return 0;
        if (r->flags & FR_OPT_PATH) {
            char key[128], abs[FR_OPT_TEXT_MAX];
            snprintf(key, sizeof key, "%s_abs", r->key);
            absolute(b, abs, sizeof abs);
            return cJSON_AddStringToObject(root, key, abs) != NULL;
        }
        return 1;
    }
    return 0;
}

static fr_status write_text(FILE *fp, const char *tmp, void *user)
{
    const char *txt = user;
    if (fputs(txt, fp) == EOF || fputc('\n', fp) == EOF) return fr_fail(FR_ERR_IO, "%s: write failed", tmp);
    return FR_OK;
}

fr_status fr_opts_write_json(const fr_opts *o, const fr_opts_kv *extra, int n_extra, const char *path)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    for (int k = 0; ok && k < n_extra; k++) ok = cJSON_AddStringToObject(root, extra[k].key, extra[k].value) != NULL;
    for (int g = 0; ok && g < o->ng; g++)
        for (int i = 0; ok && i < o->g[g].n; i++)
            if (saved(&o->g[g].rows[i])) ok = add_row(root, &o->g[g].rows[i], o->s[o->g[g].which]);
    char *txt = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!txt) return fr_fail(FR_ERR_NOMEM, "%s: out of memory building the JSON", path);
    fr_status s = fr_atomic_write(path, write_text, txt);
    free(txt);
    return s;
}

/* ---- read ----------------------------------------------------------------------------- */

/* The row a JSON key names: its own key, or the old spelling of a renamed option
 * (alias "--old-name" → key "old_name"). */
static const fr_opt *row_of_key(const fr_opts *o, const char *key, void **st)
{
    const fr_opt *r = fr_opts_find(o, key, st);
    if (r) return r;
    for (int g = 0; g < o->ng; g++)
        for (int i = 0; i < o->g[g].n; i++) {
            const char *a = o->g[g].rows[i].alias;
            if (!a || strncmp(a, "--", 2) != 0) continue;
            size_t k = 0;
            for (a += 2; a[k] && key[k] && (a[k] == '-' ? '_' : a[k]) == key[k]; k++) {}
            if (!a[k] && !key[k]) {
                *st = o->s[o->g[g].which];
                return &o->g[g].rows[i];
            }
        }
    return NULL;
}

static fr_status set_from_json(const fr_opt *r, void *st, const cJSON *it, const char *where)
{
    char text[64];
    switch (r->kind) {
    case FR_OPT_I64:
    case FR_OPT_U32:
    case FR_OPT_INT:
    case FR_OPT_F32:
    case FR_OPT_F64:
        if (!cJSON_IsNumber(it)) return fr_fail(FR_ERR_ARG, "%s: expected a number", where);
        snprintf(text, sizeof text, "%.17g", it->valuedouble);
        return fr_opt_set_num(r, st, it->valuedouble, where, text);
    case FR_OPT_BOOL:
    case FR_OPT_TRI:
        if (cJSON_IsBool(it)) return fr_opt_set(r, st, cJSON_IsTrue(it) ? "true" : "false", where);
        /* fall through - TRI is written as a string ("auto") */
    case FR_OPT_ENUM:
    case FR_OPT_STR:
        if (!cJSON_IsString(it)) return fr_fail(FR_ERR_ARG, "%s: expected a string", where);
        return fr_opt_set(r, st, it->valuestring, where);
    }
    return fr_fail(FR_ERR_ARG, "%s: unknown option kind", where);
}

static int ignored(const char *key, const char *const *ignore)
{
    for (; ignore && *ignore; ignore++)
        if (strcmp(key, *ignore) == 0) return 1;
    return 0;
}

/* "<key>_abs" of a FR_OPT_PATH row: the row, else NULL. */
static const fr_opt *path_row_of_abs(const fr_opts *o, const char *key, void **st)
{
    size_t l = strlen(key);
    char base[128];
    if (l <= 4 || l - 4 >= sizeof base || strcmp(key + l - 4, "_abs") != 0) return NULL;
    memcpy(base, key, l - 4);
    base[l - 4] = '\0';
    const fr_opt *r = fr_opts_find(o, base, st);
    return r && r->kind == FR_OPT_STR && (r->flags & FR_OPT_PATH) ? r : NULL;
}

fr_status fr_opts_read_json(const fr_opts *o, const char *path, const char *const *ignore)
{
    cJSON *root;
    FR_TRY(parse_object(path, &root));
    fr_status s = FR_OK;
    for (const cJSON *it = root->child; it && s == FR_OK; it = it->next) {
        if (ignored(it->string, ignore)) continue;
        void *st;
        char where[FR_OPT_PATH_MAX + 128];
        snprintf(where, sizeof where, "%s: %s", path, it->string);
        const fr_opt *r = row_of_key(o, it->string, &st);
        if (r && saved(r)) {
            if (set_from_json(r, st, it, where) != FR_OK) {
                char m[FR_OPT_PATH_MAX + 256];
                snprintf(m, sizeof m, "%s", fr_last_error());
                s = fr_fail(FR_ERR_FORMAT, "%s", m);
            }
        } else if (!path_row_of_abs(o, it->string, &st)) {
            s = fr_fail(FR_ERR_FORMAT, "%s: unknown key '%s'", path, it->string);
        }
    }
    /* A relative path was relative to the directory the run started in, which "<key>_abs"
     * recorded: use that, so a resume from elsewhere finds the file (issue 14 item 7). */
    for (const cJSON *it = root->child; it && s == FR_OK; it = it->next) {
        void *st;
        const fr_opt *r = ignored(it->string, ignore) ? NULL : path_row_of_abs(o, it->string, &st);
        char *p = r ? (char *)st + r->off : NULL;
        if (!p || !p[0] || p[0] == '/' || !cJSON_IsString(it) || !it->valuestring[0]) continue;
        if (strlen(it->valuestring) >= r->size)
            s = fr_fail(FR_ERR_FORMAT, "%s: %s is longer than %zu bytes", path, it->string, r->size - 1);
        else memcpy(p, it->valuestring, strlen(it->valuestring) + 1);
    }
    cJSON_Delete(root);
    return s;
}

fr_status fr_opts_json_string(const char *path, const char *key, char *buf, size_t n)
{
    cJSON *root;
    FR_TRY(parse_object(path, &root));
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    fr_status s = FR_OK;
    if (n) buf[0] = '\0';
    if (it && !cJSON_IsString(it)) s = fr_fail(FR_ERR_FORMAT, "%s: %s is not a string", path, key);
    else if (it && strlen(it->valuestring) >= n) s = fr_fail(FR_ERR_FORMAT, "%s: %s is too long", path, key);
    else if (it) memcpy(buf, it->valuestring, strlen(it->valuestring) + 1);
    cJSON_Delete(root);
    return s;
}

/* ---- metadata and resume ---------------------------------------------------------------- */

fr_status fr_opts_to_meta(const fr_opts *o, const char *prefix, fr_opts_meta_fn add, void *user)
{
    char key[160], val[FR_OPT_TEXT_MAX];
    for (int g = 0; g < o->ng; g++)
        for (int i = 0; i < o->g[g].n; i++) {
            const fr_opt *r = &o->g[g].rows[i];
            if (!saved(r) || (r->flags & FR_OPT_RESUMABLE)) continue;
            snprintf(key, sizeof key, "%s%s", prefix ? prefix : "", r->key);
            fr_opt_format(r, o->s[o->g[g].which], val, sizeof val);
            FR_TRY(add(key, val, user));
        }
    return FR_OK;
}

fr_status fr_opts_resume_check(const fr_opts *now, const fr_opts *saved_o, const fr_opts_seen *seen)
{
    if (now->ng != saved_o->ng) return fr_fail(FR_ERR_ARG, "fr_opts_resume_check: the option sets differ");
    char a[FR_OPT_TEXT_MAX], b[FR_OPT_TEXT_MAX], flag[96];
    for (int g = 0; g < now->ng; g++)
        for (int i = 0; i < now->g[g].n && i < (int)sizeof seen->set[0]; i++) {
            const fr_opt *r = &now->g[g].rows[i];
            if (!seen->set[g][i] || !saved(r) || (r->flags & FR_OPT_RESUMABLE)) continue;
            fr_opt_format(r, now->s[now->g[g].which], a, sizeof a);
            fr_opt_format(r, saved_o->s[saved_o->g[g].which], b, sizeof b);
            if (strcmp(a, b) == 0) continue;
            fr_opt_flag(r, flag, sizeof flag);
            return fr_fail(FR_ERR_ARG, "%s cannot change on resume (the run has %s)", flag, b);
        }
    return FR_OK;
}
