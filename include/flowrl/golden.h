/* The golden-file suite (golden/, golden/README.md; docs/algorithms/numerics.md §6; docs/design.md §8.4 "Tests").
 *
 * A case is one computation with tiny inputs: one op of the op table, one sampler step, one
 * advantage estimator, one objective, later one whole training update. Its file
 * golden/<case>.safetensors holds every input needed to recompute it ("in.*" tensors;
 * float scalars as 0-d tensors, integer and enum parameters as "param.*" metadata), the
 * reference outputs ("out.*"), and metadata: format version, case name, flowrl version,
 * generating command, the Philox coordinates of every drawn input ("rng.in.*"), and how any
 * derived input was formed ("derived.in.*"). golden/MANIFEST lists every file's and every
 * tensor's XXH3-64 digest (flowrl/digest.h). The set is written only by
 * `flowrl golden gen --force` (FR_GOLDEN_COMMAND), never edited by hand.
 *
 * Inputs: value_i = lo + (hi − lo)·u_i (uniform) or scale·z_i (normal), float32, with
 * u_i = fr_rng_uniform / z_i = fr_rng_normal(FR_GOLDEN_SEED, FR_RNG_GOLDEN, c0, c1, 0, i),
 * c0 = the low 32 bits of the XXH3-64 of the case name, c1 = the draw's index in the case.
 *
 * Checking recomputes the outputs from the stored inputs with a chosen backend, in its
 * memory (inputs copied in, outputs copied out: a device backend such as cuda-emu computes
 * every case on the device), and compares them with the stored outputs: bit for bit
 * (FR_GOLDEN_BITWISE: ref, and the canonical opt/cuda-emu/cuda, whose contract is bitwise
 * equality with ref), or within the case's fast_tol (FR_GOLDEN_TOLERANCE: --fast paths).
 * It also checks every digest against the MANIFEST, so a flipped input bit is reported
 * even where it would not move an output. */
#ifndef FLOWRL_GOLDEN_H
#define FLOWRL_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/safetensors.h"
#include "flowrl/status.h"

#define FR_GOLDEN_FORMAT "1"
#define FR_GOLDEN_SEED 0x601DE4u /* key word 0 of every golden draw (key word 1: FR_RNG_GOLDEN) */
#define FR_GOLDEN_COMMAND "flowrl golden gen --force"
#define FR_GOLDEN_MANIFEST "MANIFEST"

/* What a case exercises, for the honest label of a match (golden/README.md "Verdicts"):
 * an op-table slot is offsetof(fr_ops, entry). */
#define FR_GOLDEN_SHARED (-1L) /* no op-table entry: core/ code that every backend runs */
#define FR_GOLDEN_ALL_OPS (-2L) /* many op-table entries (whole updates) */

/* |got − want| <= abs + rel·|want| per element (llm.c test_gpt2.cu's mixed form,
 * docs/algorithms/numerics.md §6.2); NaN never passes. */
typedef struct {
    float abs, rel;
} fr_golden_tol;

typedef struct fr_golden_case fr_golden_case;
/* The backend and the backend memory of one computation (core/golden_internal.h). */
typedef struct fr_golden_dev fr_golden_dev;

/* Input drawing context of a generator (core/golden.c). */
typedef struct {
    fr_st_file *f;
    uint32_t c0;      /* the case's counter word 0 */
    uint32_t next_c1; /* the next draw's counter word 1 */
} fr_golden_in;

struct fr_golden_case {
    const char *name; /* "op.gemm_nn": also the file name without .safetensors */
    const char *what; /* one line for `flowrl golden list` */
    long slot;        /* offsetof(fr_ops, entry), FR_GOLDEN_SHARED or FR_GOLDEN_ALL_OPS */
    int arg;          /* case-specific: activation, binop, gemm flags, sampler kind, ... */
    fr_golden_tol fast_tol; /* for FR_GOLDEN_TOLERANCE; the why is at the registry entry */
    /* Draws / forms the inputs into g->f ("in.*" tensors, "param.*", "rng.*", "derived.*"). */
    fr_status (*inputs)(const fr_golden_case *c, fr_golden_in *g);
    /* Adds the "out.*" tensors computed from the inputs of `in` with the backend d->be to
     * `out`, in that backend's memory: inputs go up with fr_h2d, outputs come back with
     * fr_d2h (the fr_gd_* helpers; the caller reads the outputs back and frees). */
    fr_status (*compute)(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                         fr_st_file *out);
};

/* The registry, in a fixed order (ops, samplers, advantages, objectives). */
size_t fr_golden_count(void);
const fr_golden_case *fr_golden_get(size_t i);
const fr_golden_case *fr_golden_find(const char *name); /* NULL if none */
/* "op", "shared" or "ops" (several op-table entries) for listings. */
const char *fr_golden_kind_name(const fr_golden_case *c);

/* The whole file of a case: inputs drawn, outputs by the ref table, metadata. */
fr_status fr_golden_build(const fr_golden_case *c, fr_st_file *f);

/* Writes every case and then MANIFEST into dir (which must exist). Without force, fails
 * with FR_ERR_ARG, writing nothing, if dir already holds MANIFEST or any case file. */
fr_status fr_golden_gen(const char *dir, int force);

/* ---- checking ------------------------------------------------------------------------ */

typedef struct fr_golden_manifest fr_golden_manifest;

/* Reads dir/MANIFEST (FR_ERR_IO / FR_ERR_FORMAT naming the line). */
fr_status fr_golden_manifest_read(const char *dir, fr_golden_manifest **out);
void fr_golden_manifest_free(fr_golden_manifest *m);
const char *fr_golden_manifest_version(const fr_golden_manifest *m); /* flowrl that wrote it */
/* Case names the MANIFEST lists that the registry does not know, one at a time (NULL at
 * the end): a stale set. */
const char *fr_golden_manifest_unknown(const fr_golden_manifest *m, size_t i);

typedef enum {
    FR_GOLDEN_BITWISE = 0,
    FR_GOLDEN_TOLERANCE = 1
} fr_golden_mode;

typedef enum {
    FR_GOLDEN_OK = 0,         /* the backend computed it and matched */
    FR_GOLDEN_OK_SHARED,      /* matched, but the case runs core/ code every backend shares */
    FR_GOLDEN_OK_FALLBACK,    /* matched, but the backend's entry is the ref entry */
    FR_GOLDEN_FAIL,
    FR_GOLDEN_NOT_SUPPORTED
} fr_golden_verdict;

typedef struct {
    fr_golden_verdict verdict;
    double max_abs;   /* over every F32 output element */
    int64_t max_ulp;  /* over every F32 output element (INT64_MAX for a NaN) */
    char detail[768]; /* why it failed / what was compared */
} fr_golden_result;

/* Checks one case of dir against the MANIFEST m on backend be (its table's name decides the
 * OK labels: a non-ref table matching through a ref entry or shared code gets
 * OK_FALLBACK / OK_SHARED). A problem with the case (missing file, digest mismatch, wrong
 * outputs) is a FAIL in *r, not an error status; the status is for out-of-memory only. */
fr_status fr_golden_check_case(const fr_golden_case *c, const char *dir,
                               const fr_golden_manifest *m, fr_backend *be,
                               fr_golden_mode mode, fr_golden_result *r);

/* The per-element comparison of one output tensor (exposed for tests). Returns 1 if it
 * passes in `mode` with `tol`; *max_abs, *max_ulp and *worst (flat index, −1 if none)
 * describe the largest difference. Different dtypes or shapes never pass. */
int fr_golden_compare(const fr_tensor *got, const fr_tensor *want, fr_golden_mode mode,
                      fr_golden_tol tol, double *max_abs, int64_t *max_ulp, int64_t *worst);

#endif
