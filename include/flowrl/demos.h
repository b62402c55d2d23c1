/* Demonstrations (docs/demos.md): E episodes of a control environment (flowrl/env.h) — N steps
 * in all — as one safetensors file (flowrl/safetensors.h, with digests), written by `flowrl
 * expert` (a scripted expert) and by evaluations of a policy, read by behaviour cloning.
 *
 * Tensors (step-major; episode e is steps [episode_start[e], episode_start[e + 1])):
 *   obs           (N, obs_dim) F32     the observation the action was taken at
 *   action        (N, action_dim) F32  the action as the policy gave it (the env clips)
 *   reward        (N,) F64             the step's reward
 *   done          (N,) U8              1: the step ended the episode in a terminal state (only an
 *                                      episode's last step may have it; a last step without it
 *                                      was truncated at max_steps)
 *   episode_start (E + 1,) I64         0 = start[0] < start[1] < ... < start[E] = N
 *   episode       (E,) I64             the reset index of each episode (its Philox coordinate)
 *   final_obs     (E, obs_dim) F32     the observation after each episode's last step
 *   success       (E,) U8              optional: the environment's success flag of the episode
 *   state         (N, state_dim) F64   optional: the environment's own state at each obs
 * Metadata (strings): format "flowrl.demos", format_version "1", env (a registry name, or
 * "cmd:PROGRAM"), env_desc (the instance's line), env_options (a JSON object of its options
 * as `flowrl envs` prints them), seed, policy ("expert:nav2d", ...), obs_dim, action_dim,
 * state_dim (0 without state), max_steps, flowrl_version.
 *
 * Every failure is one line naming the file and the field: FR_ERR_FORMAT for a missing or
 * wrong tensor, dtype, shape or metadata, a non-finite value, episode offsets that are not
 * increasing or do not end at N, a done flag before an episode's last step, an episode longer
 * than max_steps; FR_ERR_IO for an unreadable file. */
#ifndef FLOWRL_DEMOS_H
#define FLOWRL_DEMOS_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/status.h"

#define FR_DEMOS_FORMAT "flowrl.demos"
#define FR_DEMOS_VERSION "1"
#define FR_DEMOS_ENV_MAX 1032 /* "cmd:" + a program of FR_ENV_CMD_PROGRAM_MAX bytes */

typedef struct fr_demos {
    int64_t N, E;            /* steps, episodes */
    int obs_dim, action_dim; /* widths */
    int state_dim;           /* 0: no state tensor */
    int has_success;         /* 1: success (E,) is set */
    float *obs;              /* (N, obs_dim) */
    float *action;           /* (N, action_dim) */
    double *reward;          /* (N,) */
    uint8_t *done;           /* (N,) */
    double *state;           /* (N, state_dim) or NULL */
    int64_t *episode_start;  /* (E + 1,) */
    int64_t *episode;        /* (E,) */
    float *final_obs;        /* (E, obs_dim) */
    uint8_t *success;        /* (E,) or NULL */
    /* metadata */
    char env[FR_DEMOS_ENV_MAX];
    char env_desc[96];
    char *env_options;       /* JSON object text (malloc'ed) or NULL */
    uint32_t seed;
    char policy[64];
    int max_steps;
    char flowrl_version[32];
    /* growth (fr_demos_push_*) */
    int64_t cap_n, cap_e;
} fr_demos;

void fr_demos_init(fr_demos *d, int obs_dim, int action_dim, int state_dim, int has_success);
void fr_demos_free(fr_demos *d); /* d is left empty */

/* Appends a step of the current episode (state may be NULL when state_dim is 0). */
fr_status fr_demos_push_step(fr_demos *d, const float *obs, const float *action, double reward, int done,
                             const double *state);
/* Closes the current episode (steps pushed since the last close; at least one): its reset index,
 * final observation and success flag (ignored without has_success). */
fr_status fr_demos_end_episode(fr_demos *d, int64_t episode, const float *final_obs, int success);

/* Checks d as fr_demos_read checks a file and writes it atomically (digests on); label names
 * path in messages. An empty flowrl_version is written as this build's. */
fr_status fr_demos_write(const char *path, const fr_demos *d);
/* Reads and checks (above) into *out (initialized by the call; empty on failure). */
fr_status fr_demos_read(const char *path, fr_demos *out);
fr_status fr_demos_read_mem(const void *buf, size_t len, const char *label, fr_demos *out);

/* Per-episode figures: *ret_mean, *ret_std (population) of the episode returns (Σ reward in
 * float64, step order), *len_mean, *success_rate (NAN without success flags). Any may be NULL. */
void fr_demos_summary(const fr_demos *d, double *ret_mean, double *ret_std, double *len_mean, double *success_rate);
/* The return of episode e (Σ reward over its steps in step order). */
double fr_demos_return(const fr_demos *d, int64_t e);

#endif
