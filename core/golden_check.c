/* `flowrl golden check`: recompute each case from its stored inputs and compare, and check
 * every digest against golden/MANIFEST (flowrl/golden.h, golden/README.md "Verdicts"). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/digest.h"
#include "flowrl/file_util.h"

/* ---- MANIFEST -------------------------------------------------------------------------------- */

typedef struct {
    char *casename, *name; /* name NULL for a "file" record */
    char *dtype, *shape, *digest;
    long long bytes;
} mrec;

struct fr_golden_manifest {
    char version[64];
    mrec *r;
    size_t n;
    char **unknown; /* case names the registry does not know */
    size_t n_unknown;
};

void fr_golden_manifest_free(fr_golden_manifest *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->r[i].casename);
        free(m->r[i].name);
        free(m->r[i].dtype);
        free(m->r[i].shape);
        free(m->r[i].digest);
    }
    for (size_t i = 0; i < m->n_unknown; i++) free(m->unknown[i]);
    free(m->unknown);
    free(m->r);
    free(m);
}

const char *fr_golden_manifest_version(const fr_golden_manifest *m) { return m->version; }

const char *fr_golden_manifest_unknown(const fr_golden_manifest *m, size_t i)
{
    return i < m->n_unknown ? m->unknown[i] : NULL;
}

static int is_hex16(const char *s)
{
    if (strlen(s) != 16) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    return 1;
}

static fr_status add_unknown(fr_golden_manifest *m, const char *name)
{
    for (size_t i = 0; i < m->n_unknown; i++)
        if (strcmp(m->unknown[i], name) == 0) return FR_OK;
    char **u = realloc(m->unknown, (m->n_unknown + 1) * sizeof *u);
    if (!u) return fr_fail(FR_ERR_NOMEM, "golden: out of memory");
    m->unknown = u;
    if (!(m->unknown[m->n_unknown] = strdup(name))) return fr_fail(FR_ERR_NOMEM, "golden: out of memory");
    m->n_unknown++;
    return FR_OK;
}

static fr_status parse_line(fr_golden_manifest *m, char *line, const char *path, int lineno,
                            int *have_format)
{
    char *tok[8];
    int nt = 0;
    for (char *save = NULL, *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (nt == 8) return fr_fail(FR_ERR_FORMAT, "%s:%d: too many fields", path, lineno);
        tok[nt++] = t;
    }
    if (nt == 0) return FR_OK;
    if (strcmp(tok[0], "format") == 0 && nt == 2) {
        if (strcmp(tok[1], FR_GOLDEN_FORMAT) != 0)
            return fr_fail(FR_ERR_FORMAT, "%s:%d: format %s, this flowrl reads format %s", path,
                           lineno, tok[1], FR_GOLDEN_FORMAT);
        *have_format = 1;
        return FR_OK;
    }
    if (strcmp(tok[0], "flowrl") == 0 && nt == 2) {
        snprintf(m->version, sizeof m->version, "%s", tok[1]);
        return FR_OK;
    }
    if (strcmp(tok[0], "command") == 0 || strcmp(tok[0], "seed") == 0) return FR_OK;
    int is_file = strcmp(tok[0], "file") == 0 && nt == 4;
    int is_tensor = strcmp(tok[0], "tensor") == 0 && nt == 6;
    if (!is_file && !is_tensor)
        return fr_fail(FR_ERR_FORMAT, "%s:%d: expected 'file CASE BYTES DIGEST' or 'tensor CASE NAME DTYPE SHAPE DIGEST'",
                       path, lineno);
    const char *dg = tok[nt - 1];
    if (!is_hex16(dg)) return fr_fail(FR_ERR_FORMAT, "%s:%d: digest '%s' is not 16 hex digits", path, lineno, dg);
    mrec r = {0};
    if (is_file) {
        char *end;
        r.bytes = strtoll(tok[2], &end, 10);
        if (*end || r.bytes <= 0) return fr_fail(FR_ERR_FORMAT, "%s:%d: bad byte count '%s'", path, lineno, tok[2]);
    }
    mrec *nr = realloc(m->r, (m->n + 1) * sizeof *nr);
    if (!nr) return fr_fail(FR_ERR_NOMEM, "golden: out of memory");
    m->r = nr;
    r.casename = strdup(tok[1]);
    r.digest = strdup(dg);
    if (is_tensor) {
        r.name = strdup(tok[2]);
        r.dtype = strdup(tok[3]);
        r.shape = strdup(tok[4]);
    }
    m->r[m->n++] = r;
    if (!r.casename || !r.digest || (is_tensor && (!r.name || !r.dtype || !r.shape)))
        return fr_fail(FR_ERR_NOMEM, "golden: out of memory");
    if (!fr_golden_find(tok[1])) FR_TRY(add_unknown(m, tok[1]));
    return FR_OK;
}

fr_status fr_golden_manifest_read(const char *dir, fr_golden_manifest **out)
{
    char path[4096], line[1024];
    snprintf(path, sizeof path, "%s/%s", dir, FR_GOLDEN_MANIFEST);
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) return fr_fail(FR_ERR_IO, "%s: %s (generate the set with `%s`)", path, strerror(errno), FR_GOLDEN_COMMAND);
    fr_golden_manifest *m = calloc(1, sizeof *m);
    if (!m) {
        fclose(f);
        return fr_fail(FR_ERR_NOMEM, "golden: out of memory");
    }
    fr_status s = FR_OK;
    int lineno = 0, have_format = 0;
    while (s == FR_OK && fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = '\0';
        else if (!feof(f)) s = fr_fail(FR_ERR_FORMAT, "%s:%d: line too long", path, lineno);
        if (s == FR_OK && line[0] != '#') s = parse_line(m, line, path, lineno, &have_format);
    }
    fclose(f);
    if (s == FR_OK && !have_format) s = fr_fail(FR_ERR_FORMAT, "%s: no 'format' line", path);
    if (s != FR_OK) {
        fr_golden_manifest_free(m);
        return s;
    }
    *out = m;
    return FR_OK;
}

static const mrec *find_rec(const fr_golden_manifest *m, const char *casename, const char *name)
{
    for (size_t i = 0; i < m->n; i++) {
        const mrec *r = &m->r[i];
        if (strcmp(r->casename, casename) != 0) continue;
        if (name ? (r->name && strcmp(r->name, name) == 0) : !r->name) return r;
    }
    return NULL;
}

/* ---- comparison ------------------------------------------------------------------------------ */

static int64_t ord(float x)
{
    int32_t i;
    memcpy(&i, &x, 4);
    return i < 0 ? (int64_t)INT32_MIN - i : i;
}

int fr_golden_compare(const fr_tensor *got, const fr_tensor *want, fr_golden_mode mode,
                      fr_golden_tol tol, double *max_abs, int64_t *max_ulp, int64_t *worst)
{
    *max_abs = 0.0;
    *max_ulp = 0;
    *worst = -1;
    if (got->dtype != want->dtype || !fr_tensor_same_shape(got, want)) return 0;
    int64_t n = fr_tensor_numel(want);
    size_t es = fr_dtype_size(want->dtype);
    int pass = 1;
    for (int64_t i = 0; i < n; i++) {
        const char *pg = (const char *)got->data + (size_t)i * es;
        const char *pw = (const char *)want->data + (size_t)i * es;
        if (memcmp(pg, pw, es) == 0) continue;
        if (want->dtype != FR_F32) { /* integers and masks: exact or nothing */
            if (pass) *worst = i;
            pass = 0;
            continue;
        }
        float g, w;
        memcpy(&g, pg, 4);
        memcpy(&w, pw, 4);
        double d = fabs((double)g - (double)w);
        int64_t u = (isnan(g) || isnan(w)) ? INT64_MAX : llabs(ord(g) - ord(w));
        int ok = mode == FR_GOLDEN_TOLERANCE && !isnan(g) && !isnan(w) &&
                 d <= (double)tol.abs + (double)tol.rel * fabs((double)w);
        if (isnan(d) || d > *max_abs) *max_abs = isnan(d) ? INFINITY : d;
        if (*worst < 0 || u > *max_ulp) {
            *max_ulp = u;
            *worst = i;
        }
        if (!ok) pass = 0;
    }
    return pass;
}

/* ---- one case -------------------------------------------------------------------------------- */

#define APPEND(r, ...)                                                                       \
    do {                                                                                     \
        size_t used_ = strlen((r)->detail);                                                  \
        if (used_ < sizeof (r)->detail)                                                      \
            snprintf((r)->detail + used_, sizeof (r)->detail - used_, __VA_ARGS__);          \
    } while (0)

/* Digests of the file and of each tensor against the MANIFEST; mismatches named in r. */
static int check_digests(const fr_golden_case *c, const fr_golden_manifest *m, const void *buf,
                         size_t len, const fr_st_file *f, fr_golden_result *r)
{
    int ok = 1;
    char hex[17];
    const mrec *fr = find_rec(m, c->name, NULL);
    fr_digest_hex(fr_digest_bytes(buf, len), hex);
    if (!fr) {
        APPEND(r, "%sno 'file' record in MANIFEST", r->detail[0] ? "; " : "");
        ok = 0;
    } else if (fr->bytes != (long long)len || strcmp(fr->digest, hex) != 0) {
        APPEND(r, "%sfile digest mismatch vs MANIFEST", r->detail[0] ? "; " : "");
        ok = 0;
    }
    int first = 1;
    for (size_t i = 0; i < f->n; i++) {
        const mrec *tr = find_rec(m, c->name, f->entries[i].name);
        fr_digest_hex(fr_tensor_digest(&f->entries[i].t), hex);
        if (tr && strcmp(tr->digest, hex) == 0 && strcmp(tr->dtype, fr_dtype_name(f->entries[i].t.dtype)) == 0)
            continue;
        APPEND(r, "%s%s%s", first ? (r->detail[0] ? "; digest mismatch vs MANIFEST: " : "digest mismatch vs MANIFEST: ") : ", ",
               f->entries[i].name, tr ? "" : " (not listed)");
        first = 0;
        ok = 0;
    }
    for (size_t i = 0; i < m->n; i++) /* listed but absent */
        if (m->r[i].name && strcmp(m->r[i].casename, c->name) == 0 && !fr_st_get(f, m->r[i].name)) {
            APPEND(r, "%s%s missing from the file", r->detail[0] ? "; " : "", m->r[i].name);
            ok = 0;
        }
    return ok;
}

/* Recomputed outputs against the stored ones. */
static int check_outputs(const fr_golden_case *c, const fr_st_file *f, const fr_st_file *got,
                         fr_golden_mode mode, fr_golden_result *r)
{
    int ok = 1;
    for (size_t i = 0; i < f->n; i++) {
        const char *nm = f->entries[i].name;
        if (strncmp(nm, "out.", 4) != 0) continue;
        const fr_tensor *g = fr_st_get(got, nm);
        if (!g) {
            APPEND(r, "%s%s not recomputed", r->detail[0] ? "; " : "", nm);
            ok = 0;
            continue;
        }
        double ma;
        int64_t mu, worst;
        int pass = fr_golden_compare(g, &f->entries[i].t, mode, c->fast_tol, &ma, &mu, &worst);
        if (ma > r->max_abs) r->max_abs = ma;
        if (mu > r->max_ulp) r->max_ulp = mu;
        if (pass) continue;
        ok = 0;
        if (g->dtype != f->entries[i].t.dtype || !fr_tensor_same_shape(g, &f->entries[i].t))
            APPEND(r, "%s%s: dtype/shape differ", r->detail[0] ? "; " : "", nm);
        else if (g->dtype != FR_F32)
            APPEND(r, "%s%s: differs at [%lld]", r->detail[0] ? "; " : "", nm, (long long)worst);
        else if (mu == INT64_MAX)
            APPEND(r, "%s%s: NaN at [%lld]", r->detail[0] ? "; " : "", nm, (long long)worst);
        else
            APPEND(r, "%s%s: max abs %.3g, max ulp %lld at [%lld]", r->detail[0] ? "; " : "", nm,
                   ma, (long long)mu, (long long)worst);
    }
    for (size_t i = 0; i < got->n; i++)
        if (!fr_st_get(f, got->entries[i].name)) {
            APPEND(r, "%s%s not in the file", r->detail[0] ? "; " : "", got->entries[i].name);
            ok = 0;
        }
    return ok;
}

static int uses_ref_entry(const fr_golden_case *c, fr_backend *be)
{
    const fr_ops *ref = fr_golden_ref_ops();
    if (!ref || c->slot < 0) return 0;
    void (*a)(void), (*b)(void);
    memcpy(&a, (const char *)be->ops + c->slot, sizeof a);
    memcpy(&b, (const char *)ref + c->slot, sizeof b);
    return a == b;
}

fr_status fr_golden_check_case(const fr_golden_case *c, const char *dir,
                               const fr_golden_manifest *m, fr_backend *be,
                               fr_golden_mode mode, fr_golden_result *r)
{
    memset(r, 0, sizeof *r);
    r->verdict = FR_GOLDEN_FAIL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, c->name);
    char *buf = NULL;
    size_t len = 0;
    if (fr_read_file(path, &buf, &len) != FR_OK) {
        APPEND(r, "%s", fr_last_error());
        return FR_OK;
    }
    fr_st_file f, got;
    fr_st_init(&got);
    if (fr_st_read_mem(&f, buf, len, path) != FR_OK) {
        APPEND(r, "%s", fr_last_error());
        free(buf);
        return FR_OK;
    }
    const char *fmt = fr_st_get_meta(&f, "golden.format"), *nm = fr_st_get_meta(&f, "golden.case");
    int ok = 1;
    if (!fmt || strcmp(fmt, FR_GOLDEN_FORMAT) != 0 || !nm || strcmp(nm, c->name) != 0) {
        APPEND(r, "%.200s: metadata golden.format '%s' / golden.case '%s', expected '%s' / '%s'", path,
               fmt ? fmt : "(missing)", nm ? nm : "(missing)", FR_GOLDEN_FORMAT, c->name);
        ok = 0;
    }
    if (ok) {
        fr_golden_dev d;
        fr_gd_begin(&d, be);
        fr_status s = fr_gd_end(&d, c->compute(c, &d, &f, &got));
        if (s == FR_ERR_NOMEM) {
            fr_st_free(&f);
            fr_st_free(&got);
            free(buf);
            return s;
        }
        if (s != FR_OK) {
            APPEND(r, "recompute failed: %s", fr_last_error());
            ok = 0;
        } else {
            ok = check_outputs(c, &f, &got, mode, r);
        }
    }
    ok &= check_digests(c, m, buf, len, &f, r);
    fr_st_free(&f);
    fr_st_free(&got);
    free(buf);
    if (!ok) return FR_OK;
    if (strcmp(be->ops->name, "ref") == 0) r->verdict = FR_GOLDEN_OK;
    else if (c->slot == FR_GOLDEN_SHARED) r->verdict = FR_GOLDEN_OK_SHARED;
    else if (uses_ref_entry(c, be)) r->verdict = FR_GOLDEN_OK_FALLBACK;
    else r->verdict = FR_GOLDEN_OK;
    return FR_OK;
}
