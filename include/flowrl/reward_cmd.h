/* External reward programs (docs/design.md §6, `--reward cmd:PROGRAM`): flowrl starts PROGRAM
 * once per run and scores each batch of samples by sending it over a pipe and reading back
 * one float32 per sample. The wire format is docs/reward-protocol.md; a template program is
 * examples/reward_brightness.py.
 *
 * Process
 *   - PROGRAM is run as `/bin/sh -c PROGRAM` (posix_spawn), so a user writes a command line
 *     as in a terminal: arguments, quoting, `cd dir && python3 r.py`. The child gets its
 *     own process group, so that stopping it stops everything the shell started too.
 *   - Its stdin and stdout are pipes to flowrl; its stderr is flowrl's stderr (its logs go
 *     there; anything it prints on stdout is read as an answer, so logs on stdout are an
 *     error).
 *   - SIGPIPE: a write to a program that has exited fails with EPIPE instead of killing
 *     flowrl. SIGPIPE is blocked in the calling thread around each write and a SIGPIPE that
 *     the write raised is consumed before the mask is restored; the process-wide
 *     disposition is never changed.
 *
 * Errors
 *   Every failure names the program and the batch index. A failure of the program (exit,
 *   crash, timeout, malformed / short / mismatched answer, a non-finite score) stops it
 *   (SIGKILL to its process group, then waitpid, so no zombie is left) and marks the handle
 *   failed: later calls return FR_ERR_IO naming the first error; only close remains useful.
 *   The caller's output array is written only when the whole batch succeeded. A bad
 *   argument (B <= 0, a non-finite sample) is reported before anything is sent and leaves
 *   the program running. */
#ifndef FLOWRL_REWARD_CMD_H
#define FLOWRL_REWARD_CMD_H

#include <stdint.h>

#include "flowrl/opts.h"
#include "flowrl/status.h"
#include "flowrl/task.h"

#define FR_REWARD_CMD_PREFIX "cmd:"    /* `--reward cmd:PROGRAM` */
#define FR_REWARD_CMD_TIMEOUT_S 60.0   /* default per-batch timeout */
#define FR_REWARD_CMD_CLOSE_GRACE_S 2.0 /* at most this long for an exit after EOF at close */
#define FR_REWARD_CMD_VERSION 1u       /* the protocol version of a score request */
#define FR_REWARD_CMD_VERSION_GRAD 2u  /* a request for scores and their gradients (§6) */

typedef struct fr_reward_cmd fr_reward_cmd;

typedef struct {
    double timeout_s; /* per batch, from the first byte sent to the last byte read;
                       * <= 0 means FR_REWARD_CMD_TIMEOUT_S */
    int C, H, W;      /* image dims sent in every request (C*H*W == D), or 0, 0, 0 */
    const char *cwd;  /* the program runs in this directory (its relative paths resolve
                       * there: a resumed run finds them from anywhere); NULL: the caller's */
} fr_reward_cmd_opts;

/* --reward-timeout SECONDS (timeout_s; default FR_REWARD_CMD_TIMEOUT_S): the option
 * engine's row over fr_reward_cmd_opts, for every command that takes `--reward cmd:`. */
extern const fr_opt fr_reward_cmd_rows[];
extern const int fr_reward_cmd_nrows;

/* PROGRAM of a reward spec "cmd:PROGRAM", or NULL when spec is not of that form (a
 * built-in reward name). An empty PROGRAM is returned as "" (fr_reward_cmd_open rejects it). */
const char *fr_reward_cmd_program(const char *spec);

/* Starts `sh -c program`. opts NULL: default timeout, no image dims. FR_ERR_IO if the
 * spawn fails. A program that does not exist is found only at the first batch (the shell
 * exits with status 127), since the shell, not flowrl, resolves the command. */
fr_status fr_reward_cmd_open(const char *program, const fr_reward_cmd_opts *opts,
                             fr_reward_cmd **out);

/* Sends batch `batch_index` and reads its scores. prompt_texts may be NULL (empty texts are
 * sent); each text is NUL-terminated. D must equal C*H*W when image dims were given.
 * On success scores holds B finite floats; on failure it is untouched. */
fr_status fr_reward_cmd_score(fr_reward_cmd *rc, uint32_t batch_index, int B, int D,
                              const int *prompt_ids,          // (B,)
                              const char *const *prompt_texts, // (B,) or NULL
                              const float *x,                 // (B, D)
                              float *scores);                 // (B,)

/* The same for samples of task t, sending t's prompt texts: the counterpart of
 * fr_task_reward_batch for the RL loop. t's (C, H, W) must match the dims rc was opened
 * with (open with opts {timeout, t->C, t->H, t->W}). */
fr_status fr_reward_cmd_score_task(fr_reward_cmd *rc, const fr_task *t, uint32_t batch_index,
                                   int B,
                                   const int *prompt_ids, // (B,)
                                   const float *x,        // (B, D)
                                   float *scores);        // (B,)

/* fr_reward_cmd_score with a version-2 request (docs/reward-protocol.md §6): the answer is
 * "FRRG", batch, B, B scores, then B·D gradients d score_b / d x_b, every one finite; grad
 * (B, D) is written only when the whole answer is valid. A version-1 program refuses the
 * request (it exits or answers "FRRS"): one line naming the program, the batch and the
 * version. */
fr_status fr_reward_cmd_score_grad(fr_reward_cmd *rc, uint32_t batch_index, int B, int D,
                                   const int *prompt_ids,           // (B,)
                                   const char *const *prompt_texts, // (B,) or NULL
                                   const float *x,                  // (B, D)
                                   float *scores,                   // (B,)
                                   float *grad);                    // (B, D)
fr_status fr_reward_cmd_score_grad_task(fr_reward_cmd *rc, const fr_task *t, uint32_t batch_index, int B,
                                        const int *prompt_ids, // (B,)
                                        const float *x,        // (B, D)
                                        float *scores,         // (B,)
                                        float *grad);          // (B, D)

/* Closes the program's stdin, waits up to min(timeout, FR_REWARD_CMD_CLOSE_GRACE_S) for it
 * to exit, then kills its process group and reaps it; frees rc (NULL is a no-op). Returns
 * FR_ERR_IO if a healthy program exited non-zero, by a signal, or had to be killed;
 * FR_OK for a handle that had already failed (its error was reported then). */
fr_status fr_reward_cmd_close(fr_reward_cmd *rc);

/* The child's pid while it runs, else -1 (for tests and logs). */
int fr_reward_cmd_pid(const fr_reward_cmd *rc);

#endif
