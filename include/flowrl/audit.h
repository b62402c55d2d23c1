/* The audit trail of a run directory (docs/design.md §2): RUNDIR/audit.log holds, for every
 * training step, the XXH3-64 digest (fr_tensor_digest) of each tensor that matters, so that
 * two runs can be compared bit for bit without keeping the tensors.
 *
 * ---- audit.log, format version 1 ----------------------------------------------------------
 * A text file of lines, each ended by '\n' (no '\r', no blank lines, no comments); fields are
 * separated by exactly one space. Grammar, in order:
 *
 *   flowrl-audit 1                          magic + format version: always the first line
 *   env KEY VALUE                           0 or more: the environment (see below)
 *   then any sequence of
 *     step N NAME DTYPE SHAPE DIGEST        a tensor record
 *     scalar N NAME DTYPE VALUE DIGEST      a scalar record (a loss, a mean reward, ...)
 *     end-step N K                          step N is complete and holds K records
 *     resume                                the run was reopened (resumed) here; it may be
 *     env KEY VALUE                         followed by env lines for the new process
 *
 *   N       the step number: decimal, 1 .. 2^62, no sign, no leading zeros. A step is the
 *           records with number N followed by `end-step N K`; steps are strictly increasing
 *           in the file (gaps are allowed) and never interleave. Step 0 does not exist: it
 *           stands for "before the first step" (see the checkpoint convention below).
 *   NAME    1..255 bytes of printable ASCII other than space (0x21..0x7E), unique within a
 *           step; use '/' or '.' for hierarchy ("params/fc1.w", "grads/fc1.w", "adam.m/fc1.w").
 *   DTYPE   a safetensors dtype name (F32, F64, I64, ...); scalars are F32 or F64.
 *   SHAPE   "[d0,d1,...]" in decimal, no spaces, 0..4 dims; "[]" for a 0-d tensor.
 *   DIGEST  16 lowercase hex digits: fr_tensor_digest of the tensor (dtype, shape, bytes;
 *           NaN payloads canonicalised). For a scalar it is the digest of the 0-d tensor of
 *           that dtype holding VALUE, so scalar digests compare like tensor digests.
 *   VALUE   the scalar as C's "%a" prints it (exact hex float: -0x1.8p-3, 0x0p+0, inf, nan),
 *           so humans can read it and tools can recover the exact bits. The reader checks that
 *           DIGEST is the digest of VALUE.
 *   K       the number of records of step N (a check against lost lines).
 *   KEY     [A-Za-z0-9._-]+; VALUE: the rest of the line, at least one byte, no control
 *           characters (the writer replaces them by spaces and writes "-" for an empty value).
 *
 * env lines are allowed only in the header block and right after a `resume` line. The writer
 * fills in: format.version, flowrl.version, build.compiler, build.target, build.flags,
 * build.configure, fp.selftest, backend, threads, cpu.features, opt.path, host.arch, lib.xxhash, lib.cjson, lib.libpng,
 * lib.libarchive, lib.openblas + openblas.threads, lib.onednn (when built in), and every
 * caller-supplied extra (the CUDA backend adds gpu.name, gpu.arch, gpu.sm_count,
 * cuda.toolkit, cuda.driver: docs/algorithms/numerics.md §7 item 7). Environment lines are not part of
 * the comparison; `flowrl audit` reports their differences as notes.
 *
 * A run killed mid-step leaves records of its last step without `end-step` (and possibly a
 * last line without '\n'): the reader reports that step as incomplete and never compares it;
 * the writer refuses to append to such a log until fr_audit_truncate_to_step has cut it back.
 *
 * ---- Checkpoint convention (THE convention for the training loop) -------------------------
 *   RUNDIR/checkpoints/step-<N>.safetensors   (N in decimal, no padding: step-3, step-120)
 * holds the state after step N completed (parameters, optimizer state, RNG coordinates in
 * __metadata__); step-0 is the state before the first step. A tensor stored in it under the
 * same NAME as an audit record of step N must be that record's tensor (same digest): this is
 * what lets `flowrl audit` load both sides of a differing record and report element
 * differences. Resuming from step-<N>.safetensors: fr_audit_truncate_to_step(log, N), then
 * fr_audit_open (which appends a `resume` block) and continue with step N+1 (or the next
 * audited step). */
#ifndef FLOWRL_AUDIT_H
#define FLOWRL_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/status.h"
#include "flowrl/tensor.h"

#define FR_AUDIT_FORMAT_VERSION 1
#define FR_AUDIT_MAX_NAME 255
#define FR_AUDIT_MAX_STEP ((int64_t)1 << 62)
/* A log larger than this is refused by the reader (bounds reads from archives too). */
#define FR_AUDIT_MAX_BYTES ((size_t)1 << 30)
/* The names inside a run directory. */
#define FR_AUDIT_LOG_NAME "audit.log"
#define FR_CHECKPOINT_DIR "checkpoints"
/* "checkpoints/step-<N>.safetensors" into buf (relative to the run directory). */
const char *fr_checkpoint_name(int64_t step, char *buf, size_t n);

/* ---- writer ---- */

typedef struct {
    const char *key;
    const char *value;
} fr_audit_kv;

typedef struct {
    const char *backend;      /* "ref", "opt", "cuda" (+ " --fast"); NULL is written as "-" */
    int threads;              /* worker threads of the backend */
    const fr_audit_kv *extra; /* more env lines, e.g. {"gpu.arch", "sm_90"} */
    size_t n_extra;
    int fsync;                /* 1: fsync after every end-step (slower, survives power loss) */
} fr_audit_opts;

typedef struct fr_audit fr_audit;

/* Opens (creating if needed) an audit log for appending. A new or empty file gets the magic
 * line and the env header; an existing one is read first (strictly: a malformed log is
 * FR_ERR_FORMAT) and must end at a complete step (else FR_ERR_FORMAT naming the incomplete
 * step: call fr_audit_truncate_to_step first); a `resume` line and env lines are appended,
 * and the next step must be numbered above the log's last complete step. */
fr_status fr_audit_open(fr_audit **out, const char *path, const fr_audit_opts *opts);
/* Starts step N (1 <= N <= FR_AUDIT_MAX_STEP, above every step already in the log). */
fr_status fr_audit_begin_step(fr_audit *a, int64_t step);
/* One record of the open step. Tensors must be on the CPU (copy device tensors first or
 * pass a digest computed on the device through fr_audit_digest). FR_ERR_ARG for an invalid
 * or duplicate name, no open step, a bad shape. */
fr_status fr_audit_tensor(fr_audit *a, const char *name, const fr_tensor *t);
/* fr_audit_tensor with t's digest (fr_tensor_digest(t)) computed by the caller, for a caller
 * that digests a step's tensors on several threads and writes their records in order: the
 * same checks, the same line. */
fr_status fr_audit_tensor_digested(fr_audit *a, const char *name, const fr_tensor *t, uint64_t digest);
fr_status fr_audit_digest(fr_audit *a, const char *name, fr_dtype dt, int ndim, const int64_t *shape,
                          uint64_t digest);
fr_status fr_audit_scalar_f32(fr_audit *a, const char *name, float v);
fr_status fr_audit_scalar_f64(fr_audit *a, const char *name, double v);
/* Writes `end-step N K` and flushes (fsync'ed when opts->fsync). */
fr_status fr_audit_end_step(fr_audit *a);
/* The last complete step written or found in the log (0 if none). */
int64_t fr_audit_last_step(const fr_audit *a);
/* Closes the file and frees a (NULL is fine). With a step still open its records stay in
 * the file as an incomplete step and the call returns FR_ERR_ARG saying so. */
fr_status fr_audit_close(fr_audit *a);

/* Cuts the log at PATH back to its header and its complete steps numbered <= N (N = 0: the
 * header only), dropping everything after (later steps, an incomplete step, a torn last
 * line, resume blocks). FR_ERR_MISMATCH if the log's last complete step is below N (the
 * checkpoint is newer than the log); FR_ERR_FORMAT for a malformed log. The cut is one
 * ftruncate (atomic for the file's readers) followed by fsync. */
fr_status fr_audit_truncate_to_step(const char *path, int64_t step);

/* ---- reader ---- */

typedef enum { FR_AUDIT_TENSOR = 0, FR_AUDIT_SCALAR = 1 } fr_audit_kind;

typedef struct {
    fr_audit_kind kind;
    char *name;
    fr_dtype dtype;
    int ndim;
    int64_t shape[FR_MAX_DIMS]; /* unused entries are 1 */
    uint64_t digest;
    double value;               /* scalars only */
    char *value_text;           /* scalars only: VALUE as written */
    long line;                  /* 1-based line number in the log */
} fr_audit_record;

typedef struct {
    int64_t step;
    fr_audit_record *recs; /* file order */
    size_t n;
    long line;             /* line of its first record */
    size_t end_offset;     /* byte offset just past its end-step line */
} fr_audit_step;

typedef struct {
    char *key;
    char *value;
    int block; /* 0: the header; k: after the k-th resume line */
    long line;
} fr_audit_env_entry;

typedef struct {
    char *label;                /* path (or archive:member) for messages */
    fr_audit_env_entry *env;
    size_t n_env;
    size_t n_resumes;
    fr_audit_step *steps;       /* complete steps only */
    size_t n_steps;
    size_t n_records;           /* over the complete steps */
    size_t header_end;          /* byte offset just past the header block */
    /* A trailing step without end-step (a run killed mid-step): not part of steps[]. */
    int64_t incomplete_step;    /* 0 if none */
    size_t incomplete_records;  /* its complete record lines */
    int torn_tail;              /* 1: the file ends with a line without '\n' (ignored) */
} fr_audit_log;

/* Parses len bytes; label names the input in messages, which have the form
 * "LABEL:LINE: what is wrong (what was expected)". On failure *log is empty. */
fr_status fr_audit_parse(fr_audit_log *log, const char *buf, size_t len, const char *label);
/* Reads and parses a file (at most FR_AUDIT_MAX_BYTES). */
fr_status fr_audit_read(fr_audit_log *log, const char *path);
void fr_audit_log_free(fr_audit_log *log);
/* The value of env KEY in block 0 (the header), NULL if absent. */
const char *fr_audit_env_get(const fr_audit_log *log, const char *key);

#endif
