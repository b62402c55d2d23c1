/* The reward program's answer frame (docs/reward-protocol.md §3), parsed without any I/O so
 * that core/reward_cmd.c and the fuzz target share one parser. Internal. */
#ifndef FLOWRL_REWARD_CMD_REPLY_H
#define FLOWRL_REWARD_CMD_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/status.h"

#define FR_RC_RESP_HEADER 12u /* "FRRS", batch, B (little-endian u32s) */

/* Checks the 12-byte header h against the request (batch, B): FR_OK, or FR_ERR_FORMAT with
 * what is wrong in why (for "reward program `P`, batch N: <why>; it ..."). */
fr_status fr_rc_reply_header(const unsigned char *h /* [12] */, uint32_t batch, int B, char *why,
                             size_t cap);

/* fr_rc_reply_header with the expected magic ("FRRS" scores, "FRRG" scores and gradients). */
fr_status fr_rc_reply_header_magic(const unsigned char *h /* [12] */, const char *magic, uint32_t batch, int B,
                                   char *why, size_t cap);

/* The B·D gradients of a version-2 answer (g: 4·B·D bytes) into grad when every one is
 * finite; else FR_ERR_NUMERIC naming the first bad one and grad untouched. */
fr_status fr_rc_reply_grads(const unsigned char *g, int B, int D, const int *prompt_ids, float *grad, char *why,
                            size_t cap);

/* The B scores after the header (s: 4·B bytes, little-endian f32) into scores, when every
 * one is finite; else FR_ERR_NUMERIC with why naming the first bad one (and its prompt id,
 * from prompt_ids when not NULL) and scores untouched. */
fr_status fr_rc_reply_scores(const unsigned char *s /* [4·B] */, int B, const int *prompt_ids,
                             float *scores /* [B] */, char *why, size_t cap);

/* A whole frame of len bytes: header, exactly B scores, nothing after them (FR_ERR_FORMAT
 * for a short or long frame). */
fr_status fr_rc_reply_parse(const unsigned char *buf, size_t len, uint32_t batch, int B,
                            const int *prompt_ids, float *scores /* [B] */, char *why, size_t cap);

/* Bytes quoted for a message, other than printable ASCII as \xNN: "done\x0a". */
void fr_rc_show_bytes(const unsigned char *b, size_t n, char *out, size_t cap);

#endif
