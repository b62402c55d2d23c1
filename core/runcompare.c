/* `flowrl audit A B`: the first step and tensor where two runs diverge (docs/design.md §2;
 * include/flowrl/runcompare.h). */
#include "flowrl/runcompare.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flowrl/archive.h"
#include "flowrl/audit.h"
#include "flowrl/digest.h"
#include "flowrl/file_util.h"
#include "flowrl/safetensors.h"

typedef enum { SRC_DIR, SRC_ARCHIVE, SRC_LOG } src_kind;

typedef struct {
    const char *path;
    src_kind kind;
    char side; /* 'A' or 'B' */
} run_src;

static fr_status src_open(run_src *r, const char *path, char side)
{
    struct stat sb;
    r->path = path;
    r->side = side;
    if (stat(path, &sb) != 0) return fr_fail(FR_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) r->kind = SRC_DIR;
    else if (S_ISREG(sb.st_mode)) r->kind = fr_archive_sniff(path) ? SRC_ARCHIVE : SRC_LOG;
    else return fr_fail(FR_ERR_ARG, "%s: not a run directory, archive or audit log", path);
    return FR_OK;
}

/* "DIR/member", "ARCHIVE:member" or the log's own path, for messages. */
static void src_label(const run_src *r, const char *member, char *buf, size_t n)
{
    if (r->kind == SRC_DIR) snprintf(buf, n, "%s/%s", r->path, member);
    else if (r->kind == SRC_ARCHIVE) snprintf(buf, n, "%s:%s", r->path, member);
    else snprintf(buf, n, "%s", r->path);
}

/* The file at path, or *found = 0 when it does not exist. */
static fr_status read_file_bounded(const char *path, size_t max, void **buf, size_t *len, int *found)
{
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) return FR_OK;
    char *b;
    FR_TRY(fr_read_file_max(path, max, &b, len));
    *buf = b;
    *found = 1;
    return FR_OK;
}

/* A member of the run; *found = 0 when it is absent (never for the log itself). */
static fr_status src_read(const run_src *r, const char *member, size_t max, void **buf, size_t *len, int *found)
{
    *buf = NULL;
    *len = 0;
    *found = 0;
    char p[8192];
    switch (r->kind) {
    case SRC_DIR:
        snprintf(p, sizeof p, "%s/%s", r->path, member);
        return read_file_bounded(p, max, buf, len, found);
    case SRC_ARCHIVE:
        return fr_archive_read_member(r->path, member, max, buf, len, found);
    case SRC_LOG:
        if (strcmp(member, FR_AUDIT_LOG_NAME) != 0) return FR_OK;
        return read_file_bounded(r->path, max, buf, len, found);
    }
    return FR_OK;
}

static fr_status src_log(const run_src *r, fr_audit_log *log)
{
    void *buf;
    size_t len;
    int found;
    char label[8192];
    src_label(r, FR_AUDIT_LOG_NAME, label, sizeof label);
    memset(log, 0, sizeof *log);
    FR_TRY(src_read(r, FR_AUDIT_LOG_NAME, FR_AUDIT_MAX_BYTES, &buf, &len, &found));
    if (!found) return fr_fail(FR_ERR_IO, "%s: no audit log in this run", label);
    fr_status s = fr_audit_parse(log, buf, len, label);
    free(buf);
    return s;
}

/* ---- the report ---- */

static fr_status add_line(fr_runs_cmp *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static fr_status add_line(fr_runs_cmp *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    char **l = n >= 0 ? realloc(c->lines, (c->n_lines + 1) * sizeof *l) : NULL;
    if (!l) {
        free(s);
        return fr_fail(FR_ERR_NOMEM, "audit: out of memory");
    }
    c->lines = l;
    c->lines[c->n_lines++] = s;
    return FR_OK;
}

void fr_runs_cmp_free(fr_runs_cmp *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n_lines; i++) free(c->lines[i]);
    free(c->lines);
    free(c->diff_name);
    memset(c, 0, sizeof *c);
}

static const char *shape_of(const fr_audit_record *r, char *buf, size_t n)
{
    size_t u = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < r->ndim && u < n; i++)
        u += (size_t)snprintf(buf + u, n - u, i ? ",%" PRId64 : "%" PRId64, r->shape[i]);
    if (u < n) snprintf(buf + u, n - u, "]");
    return buf;
}

static const char *describe(const fr_audit_record *r, char *buf, size_t n)
{
    char sh[128], hex[17];
    fr_digest_hex(r->digest, hex);
    if (r->kind == FR_AUDIT_SCALAR) snprintf(buf, n, "scalar %s %s digest %s", fr_dtype_name(r->dtype), r->value_text, hex);
    else snprintf(buf, n, "%s %s digest %s", fr_dtype_name(r->dtype), shape_of(r, sh, sizeof sh), hex);
    return buf;
}

static const char *coord_str(const fr_tensor_diff *d, int ndim, char *buf, size_t n)
{
    size_t u = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && u < n; i++)
        u += (size_t)snprintf(buf + u, n - u, i ? ",%" PRId64 : "%" PRId64, d->first_coord[i]);
    if (u < n) snprintf(buf + u, n - u, "]");
    return buf;
}

static fr_status report_elements(fr_runs_cmp *c, const fr_tensor_diff *d, int ndim, const char *where)
{
    char co[128], ulp[32];
    if (!d->has_ulp) snprintf(ulp, sizeof ulp, "n/a (integer dtype)");
    else if (d->max_ulp == UINT64_MAX) snprintf(ulp, sizeof ulp, "inf (NaN vs number)");
    else snprintf(ulp, sizeof ulp, "%" PRIu64, d->max_ulp);
    if (d->n_differ == 0)
        return add_line(c, "  elements (%s): all %" PRId64 " bit-equal (the tensors stored there are not the "
                        "ones the log digested)", where, d->numel);
    return add_line(c, "  elements (%s): %" PRId64 " of %" PRId64 " differ, first at index %" PRId64 " %s "
                    "(A %a, B %a); max abs diff %.9g, max ulp diff %s",
                    where, d->n_differ, d->numel, d->first_index, coord_str(d, ndim, co, sizeof co), d->first_a,
                    d->first_b, d->max_abs, ulp);
}

/* Loads tensor NAME of checkpoints/step-<N>.safetensors from one side; *have = 0 with a
 * note in *why when it is not there. */
static fr_status load_ckpt(const run_src *r, int64_t step, const char *name, fr_tensor *t, int *have,
                           char *why, size_t nwhy)
{
    char member[128], label[8192];
    void *buf;
    size_t len;
    int found;
    *have = 0;
    fr_checkpoint_name(step, member, sizeof member);
    src_label(r, member, label, sizeof label);
    if (r->kind == SRC_LOG) {
        snprintf(why, nwhy, "%c is a bare audit log (no checkpoints)", r->side);
        return FR_OK;
    }
    if (src_read(r, member, FR_RUN_MAX_CHECKPOINT_BYTES, &buf, &len, &found) != FR_OK) {
        snprintf(why, nwhy, "%c: %s", r->side, fr_last_error());
        return FR_OK;
    }
    if (!found) {
        snprintf(why, nwhy, "%c has no %s", r->side, member);
        return FR_OK;
    }
    fr_st_file f;
    fr_status s = fr_st_read_mem(&f, buf, len, label);
    free(buf);
    if (s != FR_OK) {
        snprintf(why, nwhy, "%c: %s", r->side, fr_last_error());
        return FR_OK;
    }
    const fr_tensor *src = fr_st_get(&f, name);
    if (!src) {
        snprintf(why, nwhy, "%c's %s does not keep '%s'", r->side, member, name);
        fr_st_free(&f);
        return FR_OK;
    }
    s = fr_tensor_clone(t, src);
    fr_st_free(&f);
    if (s == FR_OK) *have = 1;
    return s;
}

static fr_status element_details(fr_runs_cmp *c, const run_src *ra, const run_src *rb, int64_t step,
                                 const fr_audit_record *x, const fr_audit_record *y)
{
    char member[128], why[8192] = "";
    fr_checkpoint_name(step, member, sizeof member);
    if (x->kind == FR_AUDIT_SCALAR) {
        double va = x->value, vb = y->value;
        float fa = (float)va, fb = (float)vb;
        fr_tensor ta = x->dtype == FR_F32 ? fr_tensor_view(&fa, FR_F32, 0, NULL) : fr_tensor_view(&va, FR_F64, 0, NULL);
        fr_tensor tb = x->dtype == FR_F32 ? fr_tensor_view(&fb, FR_F32, 0, NULL) : fr_tensor_view(&vb, FR_F64, 0, NULL);
        FR_TRY(fr_tensor_diff_compute(&ta, &tb, &c->elements));
        c->has_elements = 1;
        return report_elements(c, &c->elements, 0, "values in the logs");
    }
    fr_tensor ta, tb;
    int ha = 0, hb = 0;
    FR_TRY(load_ckpt(ra, step, x->name, &ta, &ha, why, sizeof why));
    if (ha) {
        fr_status s = load_ckpt(rb, step, y->name, &tb, &hb, why, sizeof why);
        if (s != FR_OK) {
            fr_tensor_free(&ta);
            return s;
        }
    }
    if (!ha || !hb) {
        if (ha) fr_tensor_free(&ta);
        return add_line(c, "  elements: not kept (%s)", why);
    }
    fr_status s = FR_OK;
    if (ta.dtype != tb.dtype || !fr_tensor_same_shape(&ta, &tb)) {
        s = add_line(c, "  elements: the checkpoint tensors differ in dtype or shape (%s vs %s)",
                     fr_dtype_name(ta.dtype), fr_dtype_name(tb.dtype));
    } else {
        s = fr_tensor_diff_compute(&ta, &tb, &c->elements);
        if (s == FR_OK) {
            c->has_elements = 1;
            s = report_elements(c, &c->elements, ta.ndim, member);
        }
        if (s == FR_OK && fr_tensor_digest(&ta) != x->digest)
            s = add_line(c, "note: A's %s holds a '%s' whose digest is not the audit record's (checkpoint "
                         "convention of flowrl/audit.h broken?)", member, x->name);
        if (s == FR_OK && fr_tensor_digest(&tb) != y->digest)
            s = add_line(c, "note: B's %s holds a '%s' whose digest is not the audit record's (checkpoint "
                         "convention of flowrl/audit.h broken?)", member, y->name);
    }
    fr_tensor_free(&ta);
    fr_tensor_free(&tb);
    return s;
}

static const fr_audit_record *find(const fr_audit_step *s, const char *name, size_t hint)
{
    if (hint < s->n && strcmp(s->recs[hint].name, name) == 0) return &s->recs[hint];
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->recs[i].name, name) == 0) return &s->recs[i];
    return NULL;
}

static fr_status through_line(fr_runs_cmp *c, const char *prefix)
{
    if (c->through_steps == 0) return add_line(c, "%sno step in common is identical", prefix);
    return add_line(c, "%sidentical through step %" PRId64 " (%zu step%s, %zu record%s)", prefix, c->through_step,
                    c->through_steps, c->through_steps == 1 ? "" : "s", c->through_records,
                    c->through_records == 1 ? "" : "s");
}

/* The first difference inside steps sa / sb (same number), or 0 records differing. */
static fr_status compare_step(fr_runs_cmp *c, const run_src *ra, const run_src *rb, const fr_audit_step *sa,
                              const fr_audit_step *sb, int *differ)
{
    char da[512], db[512];
    *differ = 0;
    for (size_t i = 0; i < sa->n; i++) {
        const fr_audit_record *x = &sa->recs[i], *y = find(sb, x->name, i);
        if (y && y->kind == x->kind && y->digest == x->digest) continue;
        *differ = 1;
        c->verdict = FR_RUNS_DIFFER;
        c->diff_step = sa->step;
        if (!(c->diff_name = strdup(x->name))) return fr_fail(FR_ERR_NOMEM, "audit: out of memory");
        FR_TRY(add_line(c, "differ at step %" PRId64 ", %s '%s'", sa->step,
                        x->kind == FR_AUDIT_SCALAR ? "scalar" : "tensor", x->name));
        FR_TRY(add_line(c, "  A: %s (line %ld)", describe(x, da, sizeof da), x->line));
        if (!y) {
            FR_TRY(add_line(c, "  B: no record '%s' in step %" PRId64 " (line %ld)", x->name, sb->step, sb->line));
        } else {
            FR_TRY(add_line(c, "  B: %s (line %ld)", describe(y, db, sizeof db), y->line));
            if (y->kind == x->kind && y->dtype == x->dtype && y->ndim == x->ndim &&
                memcmp(y->shape, x->shape, sizeof x->shape) == 0)
                FR_TRY(element_details(c, ra, rb, sa->step, x, y));
            else
                FR_TRY(add_line(c, "  the records differ in kind, dtype or shape"));
        }
        return through_line(c, "");
    }
    for (size_t i = 0; i < sb->n; i++) {
        const fr_audit_record *y = &sb->recs[i];
        if (find(sa, y->name, i)) continue;
        *differ = 1;
        c->verdict = FR_RUNS_DIFFER;
        c->diff_step = sb->step;
        if (!(c->diff_name = strdup(y->name))) return fr_fail(FR_ERR_NOMEM, "audit: out of memory");
        FR_TRY(add_line(c, "differ at step %" PRId64 ", %s '%s'", sb->step,
                        y->kind == FR_AUDIT_SCALAR ? "scalar" : "tensor", y->name));
        FR_TRY(add_line(c, "  A: no record '%s' in step %" PRId64 " (line %ld)", y->name, sa->step, sa->line));
        FR_TRY(add_line(c, "  B: %s (line %ld)", describe(y, db, sizeof db), y->line));
        return through_line(c, "");
    }
    return FR_OK;
}

static fr_status env_notes(fr_runs_cmp *c, const fr_audit_log *a, const fr_audit_log *b)
{
    for (size_t i = 0; i < a->n_env; i++) {
        if (a->env[i].block) continue;
        const char *vb = fr_audit_env_get(b, a->env[i].key);
        if (!vb) FR_TRY(add_line(c, "note: environment: %s is '%s' in A, absent in B", a->env[i].key, a->env[i].value));
        else if (strcmp(vb, a->env[i].value) != 0)
            FR_TRY(add_line(c, "note: environment: %s is '%s' in A, '%s' in B", a->env[i].key, a->env[i].value, vb));
    }
    for (size_t i = 0; i < b->n_env; i++)
        if (!b->env[i].block && !fr_audit_env_get(a, b->env[i].key))
            FR_TRY(add_line(c, "note: environment: %s is absent in A, '%s' in B", b->env[i].key, b->env[i].value));
    return FR_OK;
}

static fr_status log_notes(fr_runs_cmp *c, const fr_audit_log *l, char side)
{
    if (l->n_resumes)
        FR_TRY(add_line(c, "note: %c was resumed %zu time%s (its resume blocks' environments are not compared)",
                        side, l->n_resumes, l->n_resumes == 1 ? "" : "s"));
    if (l->incomplete_step)
        FR_TRY(add_line(c, "note: %c's step %" PRId64 " is incomplete (%zu records, no end-step: killed mid-step?); "
                        "not compared", side, l->incomplete_step, l->incomplete_records));
    else if (l->torn_tail)
        FR_TRY(add_line(c, "note: %c's last line is torn (no newline); ignored", side));
    return FR_OK;
}

static fr_status compare_logs(fr_runs_cmp *c, const run_src *ra, const run_src *rb, const fr_audit_log *a,
                              const fr_audit_log *b)
{
    size_t n = a->n_steps < b->n_steps ? a->n_steps : b->n_steps;
    for (size_t i = 0; i < n; i++) {
        const fr_audit_step *sa = &a->steps[i], *sb = &b->steps[i];
        if (sa->step != sb->step) {
            const fr_audit_step *lo = sa->step < sb->step ? sa : sb;
            c->verdict = FR_RUNS_DIFFER;
            c->diff_step = lo->step;
            FR_TRY(add_line(c, "differ at step %" PRId64 ": it is in %c only (line %ld); %c's next step is %" PRId64,
                            lo->step, lo == sa ? 'A' : 'B', lo->line, lo == sa ? 'B' : 'A',
                            lo == sa ? sb->step : sa->step));
            return through_line(c, "");
        }
        int differ;
        FR_TRY(compare_step(c, ra, rb, sa, sb, &differ));
        if (differ) return FR_OK;
        c->through_step = sa->step;
        c->through_steps++;
        c->through_records += sa->n;
    }
    if (a->n_steps == b->n_steps) {
        c->verdict = FR_RUNS_IDENTICAL;
        if (n == 0) return add_line(c, "identical: neither run has a complete step");
        return through_line(c, "");
    }
    const fr_audit_log *lng = a->n_steps > b->n_steps ? a : b;
    char L = lng == a ? 'A' : 'B', S = lng == a ? 'B' : 'A';
    c->verdict = FR_RUNS_PREFIX;
    FR_TRY(through_line(c, ""));
    return add_line(c, "%c ends there; %c continues to step %" PRId64 " (%zu more complete step%s)", S, L,
                    lng->steps[lng->n_steps - 1].step, lng->n_steps - n, lng->n_steps - n == 1 ? "" : "s");
}

fr_status fr_runs_compare(const char *a, const char *b, fr_runs_cmp *out)
{
    memset(out, 0, sizeof *out);
    run_src ra, rb;
    FR_TRY(src_open(&ra, a, 'A'));
    FR_TRY(src_open(&rb, b, 'B'));
    fr_audit_log la, lb;
    FR_TRY(src_log(&ra, &la));
    fr_status s = src_log(&rb, &lb);
    if (s != FR_OK) {
        fr_audit_log_free(&la);
        return s;
    }
    s = compare_logs(out, &ra, &rb, &la, &lb);
    if (s == FR_OK) s = log_notes(out, &la, 'A');
    if (s == FR_OK) s = log_notes(out, &lb, 'B');
    if (s == FR_OK) s = env_notes(out, &la, &lb);
    fr_audit_log_free(&la);
    fr_audit_log_free(&lb);
    return s;
}
