/* The audit log reader and the resume-time truncation (format: include/flowrl/audit.h). */
#include "flowrl/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/audit_internal.h"
#include "flowrl/file_util.h"

enum { ST_HEADER, ST_BETWEEN, ST_RESUMED, ST_IN_STEP };

typedef struct {
    fr_audit_log *log;
    long line;
    int state;
    int64_t cur;               /* open step */
    fr_audit_record *recs;     /* records of the open step */
    size_t n, cap;
    size_t cap_steps, cap_env;
} parser;

static fr_status perr(parser *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static fr_status perr(parser *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fr_fail(FR_ERR_FORMAT, "%s:%ld: %s", p->log->label, p->line, msg);
}

static void free_recs(fr_audit_record *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].name);
        free(r[i].value_text);
    }
    free(r);
}

void fr_audit_log_free(fr_audit_log *log)
{
    if (!log) return;
    for (size_t i = 0; i < log->n_steps; i++) free_recs(log->steps[i].recs, log->steps[i].n);
    free(log->steps);
    for (size_t i = 0; i < log->n_env; i++) {
        free(log->env[i].key);
        free(log->env[i].value);
    }
    free(log->env);
    free(log->label);
    memset(log, 0, sizeof *log);
}

const char *fr_audit_env_get(const fr_audit_log *log, const char *key)
{
    for (size_t i = 0; i < log->n_env; i++)
        if (log->env[i].block == 0 && strcmp(log->env[i].key, key) == 0) return log->env[i].value;
    return NULL;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* A step number or a count: decimal digits, no sign, no leading zeros, <= max. */
static int parse_uint(const char *s, size_t n, int64_t max, int64_t *out)
{
    if (n == 0 || n > 19 || (n > 1 && s[0] == '0')) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        int d = s[i] - '0';
        if (v > (max - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

static int parse_shape(const char *s, size_t n, int *ndim, int64_t *shape)
{
    if (n < 2 || s[0] != '[' || s[n - 1] != ']') return 0;
    for (int i = 0; i < FR_MAX_DIMS; i++) shape[i] = 1;
    *ndim = 0;
    if (n == 2) return 1;
    size_t i = 1;
    while (i < n - 1) {
        size_t j = i;
        while (j < n - 1 && s[j] != ',') j++;
        if (*ndim == FR_MAX_DIMS) return 0;
        if (!parse_uint(s + i, j - i, INT64_MAX, &shape[*ndim])) return 0;
        (*ndim)++;
        if (j < n - 1 && j + 1 == n - 1) return 0; /* trailing comma */
        i = j + 1;
    }
    return fr_shape_numel(*ndim, shape) >= 0;
}

static int parse_digest(const char *s, size_t n, uint64_t *out)
{
    if (n != 16) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 1;
}

/* Splits a line at single spaces into exactly `want` fields (the last one takes the rest
 * when rest_ok). Returns the field count found, or -1 for empty fields. */
static int split(const char *s, size_t n, int want, int rest_ok, const char **f, size_t *fl)
{
    int k = 0;
    size_t i = 0;
    while (k < want) {
        size_t j = i;
        if (!(rest_ok && k == want - 1))
            while (j < n && s[j] != ' ') j++;
        else
            j = n;
        if (j == i) return -1;
        f[k] = s + i;
        fl[k] = j - i;
        k++;
        if (j == n) break;
        i = j + 1;
        if (i == n) return -1; /* trailing space */
    }
    if (k == want && f[k - 1] + fl[k - 1] != s + n) return want + 1; /* too many fields */
    return k;
}

static fr_status grow(parser *p, void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return FR_OK;
    size_t c = *cap ? 2 * *cap : 16;
    while (c < need) c *= 2;
    void *a = realloc(*arr, c * elem);
    if (!a) return fr_fail(FR_ERR_NOMEM, "%s: out of memory reading the audit log", p->log->label);
    *arr = a;
    *cap = c;
    return FR_OK;
}

static int cmp_rec_name(const void *a, const void *b)
{
    const fr_audit_record *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static fr_status dup_check(parser *p)
{
    if (p->n < 2) return FR_OK;
    fr_audit_record **v = malloc(p->n * sizeof *v);
    if (!v) return fr_fail(FR_ERR_NOMEM, "%s: out of memory", p->log->label);
    for (size_t i = 0; i < p->n; i++) v[i] = &p->recs[i];
    qsort(v, p->n, sizeof *v, cmp_rec_name);
    for (size_t i = 1; i < p->n; i++) {
        if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
            long l1 = v[i - 1]->line < v[i]->line ? v[i - 1]->line : v[i]->line;
            long l2 = v[i - 1]->line < v[i]->line ? v[i]->line : v[i - 1]->line;
            char name[FR_AUDIT_MAX_NAME + 1];
            snprintf(name, sizeof name, "%s", v[i]->name);
            free(v);
            p->line = l2;
            return perr(p, "record '%s' appears twice in step %" PRId64 " (first on line %ld)", name, p->cur, l1);
        }
    }
    free(v);
    return FR_OK;
}

static fr_status on_record(parser *p, const char *s, size_t n, int is_scalar)
{
    const char *f[6];
    size_t fl[6];
    const char *kw = is_scalar ? "scalar" : "step";
    int k = split(s, n, 6, 0, f, fl);
    if (k != 6)
        return perr(p, "%s record: expected '%s N NAME DTYPE %s DIGEST' (6 fields separated by single "
                    "spaces)", kw, kw, is_scalar ? "VALUE" : "SHAPE");
    int64_t step;
    if (!parse_uint(f[1], fl[1], FR_AUDIT_MAX_STEP, &step) || step < 1)
        return perr(p, "step number '%.*s' (expected 1 .. 2^62 in decimal without leading zeros)", (int)fl[1], f[1]);
    if (!fr_audit_name_ok(f[2], fl[2])) return perr(p, "record name (expected 1..255 printable ASCII bytes)");
    char dts[8];
    fr_dtype dt;
    snprintf(dts, sizeof dts, "%.*s", fl[3] < 7 ? (int)fl[3] : 7, f[3]);
    if (fl[3] > 6 || !fr_dtype_from_name(dts, &dt))
        return perr(p, "dtype '%.*s' (expected a safetensors dtype: F32, F64, I64, ...)", (int)fl[3], f[3]);
    fr_audit_record r;
    memset(&r, 0, sizeof r);
    r.kind = is_scalar ? FR_AUDIT_SCALAR : FR_AUDIT_TENSOR;
    r.dtype = dt;
    r.line = p->line;
    for (int i = 0; i < FR_MAX_DIMS; i++) r.shape[i] = 1;
    if (!parse_digest(f[5], fl[5], &r.digest))
        return perr(p, "digest '%.*s' (expected 16 lowercase hex digits)", (int)fl[5], f[5]);
    if (is_scalar) {
        if (dt != FR_F32 && dt != FR_F64) return perr(p, "scalar dtype %s (expected F32 or F64)", dts);
        char tmp[64];
        if (fl[4] >= sizeof tmp) return perr(p, "scalar value '%.*s' is too long", (int)fl[4], f[4]);
        memcpy(tmp, f[4], fl[4]);
        tmp[fl[4]] = '\0';
        const char *m = tmp[0] == '-' ? tmp + 1 : tmp;
        int hexform = strncmp(m, "0x", 2) == 0 || strcmp(m, "inf") == 0 || strcmp(m, "nan") == 0;
        char *end;
        double v = strtod(tmp, &end);
        if (!hexform || end != tmp + fl[4])
            return perr(p, "scalar value '%s' (expected a C99 hex float as %%a prints it)", tmp);
        if (dt == FR_F32 && !isnan(v) && (double)(float)v != v)
            return perr(p, "scalar value '%s' is not representable as F32", tmp);
        if (fr_audit_scalar_digest(dt, v) != r.digest)
            return perr(p, "digest %.*s does not match the scalar value %s", 16, f[5], tmp);
        r.value = v;
        if (!(r.value_text = strdup(tmp))) return fr_fail(FR_ERR_NOMEM, "%s: out of memory", p->log->label);
    } else if (!parse_shape(f[4], fl[4], &r.ndim, r.shape)) {
        return perr(p, "shape '%.*s' (expected [d0,d1,...] with 0..%d decimal dims, or [])", (int)fl[4], f[4],
                    FR_MAX_DIMS);
    }
    if (p->state == ST_IN_STEP && step != p->cur) {
        free(r.value_text);
        return perr(p, "record of step %" PRId64 " inside step %" PRId64 " (missing 'end-step %" PRId64 " K')",
                    step, p->cur, p->cur);
    }
    if (p->state != ST_IN_STEP) {
        int64_t last = p->log->n_steps ? p->log->steps[p->log->n_steps - 1].step : 0;
        if (step <= last) {
            free(r.value_text);
            return perr(p, "step %" PRId64 " after step %" PRId64 " (steps must increase)", step, last);
        }
        p->cur = step;
        p->n = 0;
        p->state = ST_IN_STEP;
    }
    fr_status st = grow(p, (void **)&p->recs, &p->cap, p->n + 1, sizeof *p->recs);
    if (st == FR_OK && !(r.name = dup_n(f[2], fl[2])))
        st = fr_fail(FR_ERR_NOMEM, "%s: out of memory", p->log->label);
    if (st != FR_OK) {
        free(r.value_text);
        return st;
    }
    p->recs[p->n++] = r;
    return FR_OK;
}

static fr_status on_end(parser *p, const char *s, size_t n, size_t end_offset)
{
    const char *f[3];
    size_t fl[3];
    int64_t step, k;
    if (split(s, n, 3, 0, f, fl) != 3) return perr(p, "expected 'end-step N K'");
    if (!parse_uint(f[1], fl[1], FR_AUDIT_MAX_STEP, &step) || step < 1)
        return perr(p, "step number '%.*s' (expected 1 .. 2^62 in decimal without leading zeros)", (int)fl[1], f[1]);
    if (!parse_uint(f[2], fl[2], INT64_MAX, &k)) return perr(p, "record count '%.*s' (expected decimal)", (int)fl[2], f[2]);
    if (p->state != ST_IN_STEP) return perr(p, "end-step %" PRId64 " without records of step %" PRId64, step, step);
    if (step != p->cur) return perr(p, "end-step %" PRId64 " closes step %" PRId64, step, p->cur);
    if ((size_t)k != p->n)
        return perr(p, "end-step %" PRId64 " says %" PRId64 " records, the step has %zu", step, k, p->n);
    FR_TRY(dup_check(p));
    fr_audit_log *log = p->log;
    FR_TRY(grow(p, (void **)&log->steps, &p->cap_steps, log->n_steps + 1, sizeof *log->steps));
    fr_audit_step *st = &log->steps[log->n_steps++];
    st->step = step;
    st->recs = p->recs;
    st->n = p->n;
    st->line = p->recs[0].line;
    st->end_offset = end_offset;
    log->n_records += p->n;
    p->recs = NULL;
    p->n = p->cap = 0;
    p->state = ST_BETWEEN;
    return FR_OK;
}

static fr_status on_env(parser *p, const char *s, size_t n)
{
    const char *f[3];
    size_t fl[3];
    if (p->state != ST_HEADER && p->state != ST_RESUMED)
        return perr(p, "env line outside the header or a resume block");
    if (split(s, n, 3, 1, f, fl) != 3 || !fr_audit_key_ok(f[1], fl[1]))
        return perr(p, "expected 'env KEY VALUE' (KEY: [A-Za-z0-9._-]+, VALUE non-empty)");
    fr_audit_log *log = p->log;
    FR_TRY(grow(p, (void **)&log->env, &p->cap_env, log->n_env + 1, sizeof *log->env));
    fr_audit_env_entry *e = &log->env[log->n_env];
    e->key = dup_n(f[1], fl[1]);
    e->value = dup_n(f[2], fl[2]);
    e->block = (int)log->n_resumes;
    e->line = p->line;
    log->n_env++;
    if (!e->key || !e->value) return fr_fail(FR_ERR_NOMEM, "%s: out of memory", log->label);
    return FR_OK;
}

static fr_status parse_lines(parser *p, const char *buf, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *s = buf + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        p->line++;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 || c == 0x7F)
                return perr(p, "control byte 0x%02x at column %zu (a text file of '\\n'-ended lines "
                            "expected)", c, i + 1);
        }
        if (!nl) {
            /* A last line without '\n': the process died while writing it. */
            if (p->line == 1) return perr(p, "the first line is incomplete (expected '" FR_AUDIT_MAGIC " 1')");
            p->log->torn_tail = 1;
            break;
        }
        size_t next = pos + n + 1;
        if (p->line == 1) {
            const char *f[2];
            size_t fl[2];
            int64_t v;
            if (split(s, n, 2, 0, f, fl) != 2 || fl[0] != strlen(FR_AUDIT_MAGIC) ||
                memcmp(f[0], FR_AUDIT_MAGIC, fl[0]) != 0 || !parse_uint(f[1], fl[1], INT64_MAX, &v))
                return perr(p, "not an audit log (expected '" FR_AUDIT_MAGIC " %d' as the first line)",
                            FR_AUDIT_FORMAT_VERSION);
            if (v != FR_AUDIT_FORMAT_VERSION)
                return perr(p, "audit log format version %" PRId64 " (this flowrl reads version %d)", v,
                            FR_AUDIT_FORMAT_VERSION);
            p->log->header_end = next;
        } else if (n >= 4 && memcmp(s, "env ", 4) == 0) {
            FR_TRY(on_env(p, s, n));
            if (p->state == ST_HEADER) p->log->header_end = next;
        } else if (n >= 5 && memcmp(s, "step ", 5) == 0) {
            FR_TRY(on_record(p, s, n, 0));
        } else if (n >= 7 && memcmp(s, "scalar ", 7) == 0) {
            FR_TRY(on_record(p, s, n, 1));
        } else if (n >= 9 && memcmp(s, "end-step ", 9) == 0) {
            FR_TRY(on_end(p, s, n, next));
        } else if (n == 6 && memcmp(s, "resume", 6) == 0) {
            if (p->state == ST_IN_STEP)
                return perr(p, "resume inside step %" PRId64 " (the log must be truncated to a complete step "
                            "before resuming)", p->cur);
            p->log->n_resumes++;
            p->state = ST_RESUMED;
        } else {
            return perr(p, "unknown line '%.*s' (expected step, scalar, end-step, env or resume)",
                        n > 40 ? 40 : (int)n, s);
        }
        pos = next;
    }
    if (p->line == 0) return fr_fail(FR_ERR_FORMAT, "%s: empty file (expected '" FR_AUDIT_MAGIC " %d')",
                                     p->log->label, FR_AUDIT_FORMAT_VERSION);
    if (p->state == ST_IN_STEP) {
        p->log->incomplete_step = p->cur;
        p->log->incomplete_records = p->n;
    }
    return FR_OK;
}

fr_status fr_audit_parse(fr_audit_log *log, const char *buf, size_t len, const char *label)
{
    if (!log) return fr_fail(FR_ERR_ARG, "fr_audit_parse: NULL log");
    memset(log, 0, sizeof *log);
    if (!(log->label = strdup(label ? label : "(audit log)"))) return fr_fail(FR_ERR_NOMEM, "out of memory");
    if (len && !buf) {
        fr_audit_log_free(log);
        return fr_fail(FR_ERR_ARG, "fr_audit_parse: NULL buffer");
    }
    parser p;
    memset(&p, 0, sizeof p);
    p.log = log;
    p.state = ST_HEADER;
    fr_status s = parse_lines(&p, buf, len);
    free_recs(p.recs, p.n);
    if (s != FR_OK) fr_audit_log_free(log);
    return s;
}

fr_status fr_audit_read(fr_audit_log *log, const char *path)
{
    char *buf;
    size_t len;
    if (log) memset(log, 0, sizeof *log);
    FR_TRY(fr_read_file_max(path, FR_AUDIT_MAX_BYTES, &buf, &len));
    fr_status s = fr_audit_parse(log, buf, len, path);
    free(buf);
    return s;
}

fr_status fr_audit_truncate_to_step(const char *path, int64_t step)
{
    if (!path || step < 0) return fr_fail(FR_ERR_ARG, "fr_audit_truncate_to_step: bad argument");
    char *buf;
    size_t len;
    FR_TRY(fr_read_file_max(path, FR_AUDIT_MAX_BYTES, &buf, &len));
    fr_audit_log log;
    fr_status s = fr_audit_parse(&log, buf, len, path);
    free(buf);
    if (s != FR_OK) return s;
    int64_t last = log.n_steps ? log.steps[log.n_steps - 1].step : 0;
    size_t cut = log.header_end;
    for (size_t i = 0; i < log.n_steps && log.steps[i].step <= step; i++) cut = log.steps[i].end_offset;
    fr_audit_log_free(&log);
    if (last < step)
        return fr_fail(FR_ERR_MISMATCH, "%s: cannot truncate to step %" PRId64 ": the log's last complete "
                       "step is %" PRId64 " (is the checkpoint newer than the log?)", path, step, last);
    if (cut >= len) return FR_OK;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fr_fail(FR_ERR_IO, "%s: cannot open for truncation: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)cut) != 0) s = fr_fail(FR_ERR_IO, "%s: ftruncate failed: %s", path, strerror(errno));
    else if (fsync(fd) != 0) s = fr_fail(FR_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    close(fd);
    return s;
}
