/* The audit log writer (format: include/flowrl/audit.h; docs/design.md §2). */
#include "flowrl/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/audit_internal.h"

struct fr_audit {
    FILE *f;
    char *path;
    int fsync;
    int broken;        /* a write failed: every later call fails */
    int64_t last_step; /* last complete step, 0 if none */
    int64_t cur_step;  /* open step, 0 if none */
    char **names;      /* names of the open step's records, for the duplicate check */
    size_t n, cap;
};

const char *fr_checkpoint_name(int64_t step, char *buf, size_t n)
{
    snprintf(buf, n, FR_CHECKPOINT_DIR "/step-%" PRId64 ".safetensors", step);
    return buf;
}

static fr_status io_fail(fr_audit *a, const char *what)
{
    a->broken = 1;
    return fr_fail(FR_ERR_IO, "%s: %s failed: %s", a->path, what, strerror(errno ? errno : EIO));
}

static fr_status check_opts(const fr_audit_opts *opts, const char *path)
{
    if (!opts) return FR_OK;
    if (opts->n_extra && !opts->extra) return fr_fail(FR_ERR_ARG, "%s: n_extra > 0 but extra is NULL", path);
    for (size_t i = 0; i < opts->n_extra; i++) {
        const char *k = opts->extra[i].key;
        if (!k || !fr_audit_key_ok(k, strlen(k)))
            return fr_fail(FR_ERR_ARG, "%s: env key '%s' is not [A-Za-z0-9._-]+", path, k ? k : "(null)");
    }
    return FR_OK;
}

fr_status fr_audit_open(fr_audit **out, const char *path, const fr_audit_opts *opts)
{
    if (!out || !path) return fr_fail(FR_ERR_ARG, "fr_audit_open: NULL argument");
    *out = NULL;
    FR_TRY(check_opts(opts, path));
    int64_t last = 0;
    int existing = 0;
    struct stat sb;
    if (stat(path, &sb) == 0 && sb.st_size > 0) {
        fr_audit_log log;
        FR_TRY(fr_audit_read(&log, path));
        if (log.incomplete_step || log.torn_tail) {
            int64_t inc = log.incomplete_step;
            int64_t lastc = log.n_steps ? log.steps[log.n_steps - 1].step : 0;
            fr_audit_log_free(&log);
            if (inc)
                return fr_fail(FR_ERR_FORMAT,
                               "%s: step %" PRId64 " is incomplete (no end-step: killed mid-step?); "
                               "call fr_audit_truncate_to_step(path, %" PRId64 ") or to the step of "
                               "the checkpoint you resume from",
                               path, inc, lastc);
            return fr_fail(FR_ERR_FORMAT, "%s: the last line is torn (no newline); call "
                           "fr_audit_truncate_to_step(path, %" PRId64 ") first", path, lastc);
        }
        last = log.n_steps ? log.steps[log.n_steps - 1].step : 0;
        fr_audit_log_free(&log);
        existing = 1;
    }
    fr_audit *a = fr_calloc(1, sizeof *a);
    if (!a) return FR_ERR_NOMEM;
    a->path = strdup(path);
    a->fsync = opts ? opts->fsync : 0;
    a->last_step = last;
    if (!a->path) {
        free(a);
        return fr_fail(FR_ERR_NOMEM, "fr_audit_open: out of memory");
    }
    errno = 0;
    a->f = fopen(path, "a");
    if (!a->f) {
        fr_status s = fr_fail(FR_ERR_IO, "%s: cannot open for appending: %s", path, strerror(errno));
        free(a->path);
        free(a);
        return s;
    }
    fr_status s = FR_OK;
    if (existing ? fputs("resume\n", a->f) < 0 : fprintf(a->f, FR_AUDIT_MAGIC " %d\n", FR_AUDIT_FORMAT_VERSION) < 0)
        s = io_fail(a, "write");
    if (s == FR_OK) s = fr_audit_write_env(a->f, opts, path);
    if (s == FR_OK && fflush(a->f) != 0) s = io_fail(a, "flush");
    if (s != FR_OK) {
        fclose(a->f);
        free(a->path);
        free(a);
        return s;
    }
    *out = a;
    return FR_OK;
}

int64_t fr_audit_last_step(const fr_audit *a) { return a ? a->last_step : 0; }

static fr_status usable(const fr_audit *a, const char *fn)
{
    if (!a) return fr_fail(FR_ERR_ARG, "%s: NULL audit log", fn);
    if (a->broken) return fr_fail(FR_ERR_IO, "%s: an earlier write to %s failed", fn, a->path);
    return FR_OK;
}

fr_status fr_audit_begin_step(fr_audit *a, int64_t step)
{
    FR_TRY(usable(a, "fr_audit_begin_step"));
    if (a->cur_step)
        return fr_fail(FR_ERR_ARG, "%s: step %" PRId64 " begun while step %" PRId64 " is open (no end_step)",
                       a->path, step, a->cur_step);
    if (step < 1 || step > FR_AUDIT_MAX_STEP)
        return fr_fail(FR_ERR_ARG, "%s: step %" PRId64 " out of range (1 .. 2^62)", a->path, step);
    if (step <= a->last_step)
        return fr_fail(FR_ERR_ARG, "%s: step %" PRId64 " is not above the last complete step %" PRId64,
                       a->path, step, a->last_step);
    a->cur_step = step;
    a->n = 0;
    return FR_OK;
}

/* Validates NAME for the open step and remembers it. */
static fr_status add_name(fr_audit *a, const char *name)
{
    if (!a->cur_step) return fr_fail(FR_ERR_ARG, "%s: record '%s' outside a step (call fr_audit_begin_step)",
                                     a->path, name ? name : "(null)");
    if (!name || !fr_audit_name_ok(name, strlen(name)))
        return fr_fail(FR_ERR_ARG, "%s: step %" PRId64 ": record name '%s' must be 1..%d bytes of printable "
                       "ASCII without spaces", a->path, a->cur_step, name ? name : "(null)", FR_AUDIT_MAX_NAME);
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->names[i], name) == 0)
            return fr_fail(FR_ERR_ARG, "%s: step %" PRId64 ": duplicate record name '%s'", a->path, a->cur_step, name);
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        char **nn = realloc(a->names, cap * sizeof *nn);
        if (!nn) return fr_fail(FR_ERR_NOMEM, "%s: out of memory", a->path);
        a->names = nn;
        a->cap = cap;
    }
    if (!(a->names[a->n] = strdup(name))) return fr_fail(FR_ERR_NOMEM, "%s: out of memory", a->path);
    a->n++;
    return FR_OK;
}

fr_status fr_audit_digest(fr_audit *a, const char *name, fr_dtype dt, int ndim, const int64_t *shape,
                          uint64_t digest)
{
    FR_TRY(usable(a, "fr_audit_digest"));
    if ((unsigned)dt >= FR_DTYPE_COUNT || ndim < 0 || ndim > FR_MAX_DIMS || (ndim && !shape) ||
        fr_shape_numel(ndim, shape) < 0)
        return fr_fail(FR_ERR_ARG, "%s: step %" PRId64 ": record '%s': invalid dtype or shape", a->path,
                       a->cur_step, name ? name : "(null)");
    FR_TRY(add_name(a, name));
    char hex[17];
    fr_digest_hex(digest, hex);
    int bad = fprintf(a->f, "step %" PRId64 " %s %s [", a->cur_step, name, fr_dtype_name(dt)) < 0;
    for (int i = 0; i < ndim; i++) bad |= fprintf(a->f, i ? ",%" PRId64 : "%" PRId64, shape[i]) < 0;
    bad |= fprintf(a->f, "] %s\n", hex) < 0;
    return bad ? io_fail(a, "write") : FR_OK;
}

fr_status fr_audit_tensor(fr_audit *a, const char *name, const fr_tensor *t)
{
    const int ok = t && t->device == FR_DEVICE_CPU && (fr_tensor_numel(t) == 0 || t->data);
    return fr_audit_tensor_digested(a, name, t, ok ? fr_tensor_digest(t) : 0); /* else refused there */
}

fr_status fr_audit_tensor_digested(fr_audit *a, const char *name, const fr_tensor *t, uint64_t digest)
{
    FR_TRY(usable(a, "fr_audit_tensor"));
    if (!t) return fr_fail(FR_ERR_ARG, "%s: record '%s': NULL tensor", a->path, name ? name : "(null)");
    if (t->device != FR_DEVICE_CPU)
        return fr_fail(FR_ERR_ARG, "%s: record '%s': tensor is not on the CPU (copy it, or pass a device "
                       "digest to fr_audit_digest)", a->path, name ? name : "(null)");
    if (fr_tensor_numel(t) > 0 && !t->data)
        return fr_fail(FR_ERR_ARG, "%s: record '%s': tensor has no data", a->path, name ? name : "(null)");
    return fr_audit_digest(a, name, t->dtype, t->ndim, t->shape, digest);
}

static fr_status scalar(fr_audit *a, const char *name, fr_dtype dt, double v)
{
    FR_TRY(usable(a, "fr_audit_scalar"));
    FR_TRY(add_name(a, name));
    char hex[17];
    fr_digest_hex(fr_audit_scalar_digest(dt, v), hex);
    if (fprintf(a->f, "scalar %" PRId64 " %s %s %a %s\n", a->cur_step, name, fr_dtype_name(dt), v, hex) < 0)
        return io_fail(a, "write");
    return FR_OK;
}

fr_status fr_audit_scalar_f32(fr_audit *a, const char *name, float v) { return scalar(a, name, FR_F32, v); }
fr_status fr_audit_scalar_f64(fr_audit *a, const char *name, double v) { return scalar(a, name, FR_F64, v); }

fr_status fr_audit_end_step(fr_audit *a)
{
    FR_TRY(usable(a, "fr_audit_end_step"));
    if (!a->cur_step) return fr_fail(FR_ERR_ARG, "%s: end_step without an open step", a->path);
    errno = 0;
    if (fprintf(a->f, "end-step %" PRId64 " %zu\n", a->cur_step, a->n) < 0) return io_fail(a, "write");
    if (fflush(a->f) != 0) return io_fail(a, "flush");
    if (a->fsync && fsync(fileno(a->f)) != 0) return io_fail(a, "fsync");
    for (size_t i = 0; i < a->n; i++) free(a->names[i]);
    a->n = 0;
    a->last_step = a->cur_step;
    a->cur_step = 0;
    return FR_OK;
}

fr_status fr_audit_close(fr_audit *a)
{
    if (!a) return FR_OK;
    fr_status s = FR_OK;
    int64_t open_step = a->cur_step;
    errno = 0;
    if (fclose(a->f) != 0 && !a->broken)
        s = fr_fail(FR_ERR_IO, "%s: close failed: %s", a->path, strerror(errno ? errno : EIO));
    else if (a->broken)
        s = fr_fail(FR_ERR_IO, "%s: an earlier write failed; the log may be incomplete", a->path);
    else if (open_step)
        s = fr_fail(FR_ERR_ARG, "%s: closed with step %" PRId64 " open: it stays in the log as an "
                    "incomplete step", a->path, open_step);
    for (size_t i = 0; i < a->n; i++) free(a->names[i]);
    free(a->names);
    free(a->path);
    free(a);
    return s;
}
