/* libFuzzer target for the reward program's answer parser (core/reward_cmd_reply.c): the
 * first 2 bytes pick the request (B in 1..256, the batch index), the rest is the answer
 * frame. A frame is accepted only when it is exactly "FRRS", that batch, that B and B
 * finite scores; anything else is FR_ERR_FORMAT / FR_ERR_NUMERIC with a reason. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/reward_cmd_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int B = 1 + data[0];
    uint32_t batch = data[1];
    int with_ids = data[1] & 1; /* the message names prompt ids, or not */
    data += 2;
    size -= 2;
    unsigned char *frame = malloc(size ? size : 1); /* exact size: ASan sees overreads */
    float *scores = malloc((size_t)B * sizeof *scores);
    int *ids = malloc((size_t)B * sizeof *ids);
    if (!frame || !scores || !ids) abort();
    memcpy(frame, data, size);
    for (int b = 0; b < B; b++) {
        ids[b] = b;
        scores[b] = -1.0f;
    }
    char why[512] = "";
    fr_status s = fr_rc_reply_parse(frame, size, batch, B, with_ids ? ids : NULL, scores, why, sizeof why);
    if (s == FR_OK) {
        if (size != 12u + 4u * (size_t)B || memcmp(frame, "FRRS", 4) != 0) abort();
        for (int b = 0; b < B; b++)
            if (!isfinite(scores[b]) || memcmp(&scores[b], frame + 12 + 4 * b, 4) != 0) abort();
    } else {
        if ((s != FR_ERR_FORMAT && s != FR_ERR_NUMERIC) || why[0] == '\0' || !memchr(why, '\0', sizeof why)) abort();
        for (int b = 0; b < B; b++)
            if (scores[b] != -1.0f) abort(); /* untouched on failure */
    }
    free(frame);
    free(scores);
    free(ids);
    return 0;
}
