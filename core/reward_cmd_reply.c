/* Parsing the reward program's answer (core/reward_cmd_reply.h). */
#include "core/reward_cmd_reply.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void fr_rc_show_bytes(const unsigned char *b, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    o += (size_t)snprintf(out + o, cap - o, "\"");
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        int plain = b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\';
        o += (size_t)snprintf(out + o, cap - o, plain ? "%c" : "\\x%02x", b[i]);
    }
    snprintf(out + o, cap - o, "\"");
}

fr_status fr_rc_reply_header(const unsigned char *h, uint32_t batch, int B, char *why, size_t cap)
{
    return fr_rc_reply_header_magic(h, "FRRS", batch, B, why, cap);
}

fr_status fr_rc_reply_header_magic(const unsigned char *h, const char *magic, uint32_t batch, int B, char *why,
                                   size_t cap)
{
    if (memcmp(h, magic, 4) != 0) {
        char shown[80];
        fr_rc_show_bytes(h, FR_RC_RESP_HEADER, shown, sizeof shown);
        snprintf(why, cap, "answer starts with %s, expected the magic \"%s\"%s (logs belong on stderr)", shown, magic,
                 strcmp(magic, "FRRG") == 0 ? " of a gradient answer (protocol version 2)" : "");
        return FR_ERR_FORMAT;
    }
    uint32_t a_batch = get_u32(h + 4), a_B = get_u32(h + 8);
    if (a_batch != batch) {
        snprintf(why, cap, "answer is for batch %u", a_batch);
        return FR_ERR_FORMAT;
    }
    if (a_B != (uint32_t)B) {
        snprintf(why, cap, "answer has %u scores, expected %d", a_B, B);
        return FR_ERR_FORMAT;
    }
    return FR_OK;
}

fr_status fr_rc_reply_scores(const unsigned char *s, int B, const int *prompt_ids, float *scores, char *why,
                             size_t cap)
{
    for (int b = 0; b < B; b++) {
        uint32_t u = get_u32(s + 4 * b);
        float v;
        memcpy(&v, &u, 4);
        if (!isfinite(v)) {
            if (prompt_ids)
                snprintf(why, cap, "score %d (prompt %d) is %g; scores must be finite", b, prompt_ids[b], (double)v);
            else
                snprintf(why, cap, "score %d is %g; scores must be finite", b, (double)v);
            return FR_ERR_NUMERIC;
        }
    }
    for (int b = 0; b < B; b++) {
        uint32_t u = get_u32(s + 4 * b);
        memcpy(&scores[b], &u, 4);
    }
    return FR_OK;
}

fr_status fr_rc_reply_parse(const unsigned char *buf, size_t len, uint32_t batch, int B, const int *prompt_ids,
                            float *scores, char *why, size_t cap)
{
    size_t want = FR_RC_RESP_HEADER + 4u * (size_t)B;
    if (len < FR_RC_RESP_HEADER) {
        snprintf(why, cap, "answer cut short: %zu of %zu bytes, then end of output", len, want);
        return FR_ERR_FORMAT;
    }
    fr_status s = fr_rc_reply_header(buf, batch, B, why, cap);
    if (s != FR_OK) return s;
    if (len < want) {
        snprintf(why, cap, "answer cut short: %zu of %zu bytes, then end of output", len, want);
        return FR_ERR_FORMAT;
    }
    if (len > want) {
        char shown[80];
        fr_rc_show_bytes(buf + want, len - want < 16 ? len - want : 16, shown, sizeof shown);
        snprintf(why, cap, "wrote more than its answer: %s follows the %d scores (logs belong on stderr)", shown, B);
        return FR_ERR_FORMAT;
    }
    return fr_rc_reply_scores(buf + FR_RC_RESP_HEADER, B, prompt_ids, scores, why, cap);
}

fr_status fr_rc_reply_grads(const unsigned char *g, int B, int D, const int *prompt_ids, float *grad, char *why,
                            size_t cap)
{
    const size_t n = (size_t)B * (size_t)D;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = get_u32(g + 4 * i);
        float v;
        memcpy(&v, &u, 4);
        if (!isfinite(v)) {
            const size_t b = i / (size_t)D;
            snprintf(why, cap, "gradient of sample %zu (prompt %d) element %zu is %g; gradients must be finite", b,
                     prompt_ids ? prompt_ids[b] : -1, i % (size_t)D, (double)v);
            return FR_ERR_NUMERIC;
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = get_u32(g + 4 * i);
        memcpy(&grad[i], &u, 4);
    }
    return FR_OK;
}
