/* Comparing two runs bit for bit (docs/design.md §2): `flowrl audit A B`. Each side is a run
 * directory, a run archive (flowrl pack, include/flowrl/archive.h) or a bare audit.log.
 *
 * The audit logs (include/flowrl/audit.h) are compared step by step over their complete
 * steps; within a step, records are matched by name (A's order first, then names only B
 * has). The first record whose digest, dtype, shape or kind differs -- or a step or record
 * present on one side only -- is the first difference. When both sides keep
 * checkpoints/step-<N>.safetensors with a tensor of that name (the convention of audit.h),
 * both are loaded and compared element by element (fr_tensor_diff); scalar records are
 * compared from the exact values in the log. Environment lines are never compared; their
 * differences, resumes and incomplete trailing steps are reported as notes. */
#ifndef FLOWRL_RUNCOMPARE_H
#define FLOWRL_RUNCOMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/status.h"
#include "flowrl/tensor.h"

/* A checkpoint member larger than this is not loaded for the element comparison. */
#define FR_RUN_MAX_CHECKPOINT_BYTES ((size_t)1 << 34)

typedef struct {
    int64_t numel;
    int64_t n_differ;     /* elements whose bits differ (NaN vs NaN counts as equal, as in the digest) */
    int64_t first_index;  /* row-major index of the first differing element; -1 if none */
    int64_t first_coord[FR_MAX_DIMS];
    double first_a, first_b; /* the values there, converted to double */
    double max_abs;       /* max |a - b| in double (inf when one side is inf or NaN and the other not) */
    int has_ulp;          /* float dtypes (F32, F64, F16, BF16) */
    uint64_t max_ulp;     /* max ulp distance: |ord(a) - ord(b)| over the monotone integer image of the
                             bits, so +0 and -0 are 1 apart; UINT64_MAX for NaN vs a number */
} fr_tensor_diff;

/* Element-wise comparison of two CPU tensors of the same dtype and shape (else FR_ERR_ARG). */
fr_status fr_tensor_diff_compute(const fr_tensor *a, const fr_tensor *b, fr_tensor_diff *d);

typedef enum {
    FR_RUNS_IDENTICAL = 0, /* same complete steps, every record equal */
    FR_RUNS_PREFIX = 1,    /* equal as far as the shorter run goes; the other has more steps */
    FR_RUNS_DIFFER = 2     /* a first difference was found */
} fr_runs_verdict;

typedef struct {
    fr_runs_verdict verdict;
    int64_t through_step;   /* last step of the identical common part (0: none) */
    size_t through_steps;   /* steps and records compared equal up to there */
    size_t through_records;
    int64_t diff_step;      /* FR_RUNS_DIFFER: the step of the first difference */
    char *diff_name;        /* its record, NULL when a whole step is on one side only */
    int has_elements;       /* the element comparison below was done */
    fr_tensor_diff elements;
    char **lines;           /* the report, one line each: verdict, details, then "note: ..." */
    size_t n_lines;
} fr_runs_cmp;

/* Fills *out (free with fr_runs_cmp_free, also after a failure). A side that cannot be read
 * or a malformed log is an error (FR_ERR_IO / FR_ERR_FORMAT with the file and line). */
fr_status fr_runs_compare(const char *a, const char *b, fr_runs_cmp *out);
void fr_runs_cmp_free(fr_runs_cmp *c);

#endif
