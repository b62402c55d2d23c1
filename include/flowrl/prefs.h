/* Preference data as files (docs/preferences.md): N pairs (x_w preferred over x_l) of
 * samples of one task's prompts, labelled by a task reward, in one safetensors file
 * (flowrl/safetensors.h), for the preference methods: Diffusion-DPO (spec/objectives.md §15),
 * D3PO (§17), Flow-DPO (spec/more.md §7.1).
 *
 * Tensors (F32 unless said):
 *   x_w    (N, D)   the preferred sample of each pair
 *   x_l    (N, D)   the rejected one
 *   prompt (N,) I32 the prompt id (a training prompt of the task: [0, n_train))
 *   r_w    (N,)     the reward that labelled x_w, r_w > r_l
 *   r_l    (N,)
 *   x_T    (N, D)   optional: the initial noise both samples started from (D3PO)
 * Metadata (string values): format "flowrl.prefs", format_version "1", task, D, reward (a
 * reward name of the task), tie_rule ("drop"), and the provenance: ckpt, ckpt_digest
 * (XXH3-64 of the checkpoint file, as run.base_digest), seed, sampler, noise, steps, cfg,
 * flowrl_version; optional attempts and ties_dropped (what `flowrl prefs make` drew).
 * The file carries safetensors digests (digest.NAME), so a flipped bit is caught.
 *
 * Every failure is one line naming the file and the field: FR_ERR_FORMAT for a malformed
 * or inconsistent file (missing or bad metadata, wrong format_version, a missing tensor,
 * wrong dtype or shape, D != the task's, a prompt id outside the task's training prompts,
 * a NaN or inf, r_w <= r_l (a label that contradicts its rewards; ties are dropped, never
 * written), two identical (prompt, x_w, x_l) rows, a truncated file, a file of another task
 * than the one asked for), FR_ERR_IO for an unreadable one. */
#ifndef FLOWRL_PREFS_H
#define FLOWRL_PREFS_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/model.h"
#include "flowrl/progress.h"
#include "flowrl/rollout.h"
#include "flowrl/status.h"
#include "flowrl/task.h"

#define FR_PREFS_FORMAT "flowrl.prefs"
#define FR_PREFS_VERSION "1"
#define FR_PREFS_TIE_RULE "drop"
/* c0 domain of the sampler streams of `flowrl prefs make` (flowrl/rollout.h's domains). */
#define FR_PREFS_C0 0x9F3E0000u
/* The most pairs a file may hold (sample ids 2a, 2a + 1 of attempt a stay below 2^32). */
#define FR_PREFS_MAX_PAIRS (INT64_C(1) << 30)

typedef struct {
    int64_t N, D;
    float *x_w, *x_l;   /* (N, D) */
    int32_t *prompt;    /* (N,) */
    float *r_w, *r_l;   /* (N,) */
    float *x_T;         /* (N, D) or NULL */
    /* metadata */
    char task[32];
    char reward[64];
    char tie_rule[16];
    char ckpt[1024];
    char ckpt_digest[17];
    char sampler[32];   /* a sampler name (flowrl/sampler.h) */
    float noise;        /* its noise level a (sde, cps), η (dance, ddim) */
    int64_t steps;
    float cfg;
    uint32_t seed;
    char flowrl_version[32];
    int64_t attempts, ties_dropped; /* -1: not recorded */
} fr_prefs;

/* Allocates the arrays of N pairs of D values (x_T if with_xt), zeroed, metadata empty,
 * attempts and ties_dropped -1. */
fr_status fr_prefs_alloc(fr_prefs *p, int64_t N, int64_t D, int with_xt);
void fr_prefs_free(fr_prefs *p); /* p is left empty */

/* Checks p as fr_prefs_read checks a file (against the task p->task names) and writes it
 * atomically; the message of a failure names path. An empty flowrl_version is written as
 * this build's. */
fr_status fr_prefs_write(const char *path, const fr_prefs *p);

/* Reads and checks (above) the file at path into *out (initialized by the call; empty on
 * failure). task: the task the file must be of, or NULL for the built-in task it names. */
fr_status fr_prefs_read(const char *path, const fr_task *task, fr_prefs *out);
/* The same for len bytes at buf, named label in messages. */
fr_status fr_prefs_read_mem(const void *buf, size_t len, const char *label, const fr_task *task, fr_prefs *out);

/* A training run's preference file (Diffusion-DPO, Flow-DPO, Diffusion-DRO): read and checked
 * against task, its rows copied to be once. x (backend, allocated here): the N x_w rows, then
 * with with_l the N x_l rows, of D values; prompt (host, allocated here; (N,)); hex the file's
 * digest (flowrl/digest.h). On failure nothing is left allocated and the message starts
 * "train: --prefs: ". */
fr_status fr_prefs_load_dev(fr_backend *be, const char *path, const fr_task *task, int with_l,
                            float **x,         // (N or 2N, D) backend
                            int32_t **prompt,  // (N,) host
                            int64_t *N, char hex[17]);

/* The shortest "%.Ng" (N = 6 .. 9) that reads back as v: how noise and cfg are written. */
void fr_prefs_fmt_f32(float v, char out[32]);

/* ---- making pairs from a model (flowrl prefs make) ------------------------------------ */

typedef struct {
    int64_t pairs;        /* N >= 1 */
    int64_t max_attempts; /* prompts drawn at most, >= pairs */
    int reward_id;        /* the labelling reward of the task */
    int64_t batch_pairs;  /* attempts per rollout (never changes the bits), >= 1 */
    fr_progress *progress; /* NULL: none; else updated with the pairs kept */
} fr_prefs_make_opts;

/* Attempt a = 0, 1, ... draws the training prompt floor(u·n_train), u = the uniform
 * (seed, FR_RNG_PREFS, a, 0, 0) element 0, and samples it twice from one shared x_T: rows
 * with sample ids 2a, 2a + 1, x_T_key FR_XT_GROUP, group_size 2, c0 FR_PREFS_C0, key
 * rc->seed (the sampler must be stochastic so that the two differ). The two are scored by
 * the reward; equal scores are a tie and dropped, else the higher is x_w. Pairs are kept in
 * attempt order until N: a pure function of (model, rc, task, reward, seed, N). Fills out
 * (tensors, x_T, task, reward, tie_rule, sampler, noise, steps, cfg, seed, attempts,
 * ties_dropped; the caller sets ckpt and ckpt_digest). Not N pairs within max_attempts:
 * FR_ERR_NUMERIC naming the pairs kept and the ties dropped. */
fr_status fr_prefs_make(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *rc,
                        const fr_prefs_make_opts *o, fr_prefs *out);

#endif
