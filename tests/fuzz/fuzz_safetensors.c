/* libFuzzer target for the safetensors reader (`make fuzz`): any input must give FR_OK or
 * FR_ERR_FORMAT (never a crash, an out-of-bounds read or a leak), and an accepted input
 * must survive a write/read round trip unchanged (per-tensor digests included: a file that
 * carries them is read only when they match, and written back with the same digests). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fr_st_file f, g;
    fr_status s = fr_st_read_mem(&f, data, size, "fuzz");
    if (s != FR_OK && s != FR_ERR_FORMAT) abort();
    if (s != FR_OK) {
        if (fr_last_error()[0] == '\0' || f.n || f.n_meta) abort();
        return 0;
    }
    void *buf;
    size_t len;
    if (fr_st_write_mem(&f, &buf, &len) != FR_OK) abort();
    if (fr_st_read_mem(&g, buf, len, "fuzz-rewrite") != FR_OK) abort();
    if (g.n != f.n || g.n_meta != f.n_meta || g.digests != f.digests) abort();
    for (size_t i = 0; i < f.n; i++) {
        const fr_tensor *a = &f.entries[i].t, *b = &g.entries[i].t;
        if (strcmp(f.entries[i].name, g.entries[i].name) || a->dtype != b->dtype ||
            !fr_tensor_same_shape(a, b) ||
            memcmp(a->data, b->data, fr_tensor_nbytes(a)) != 0)
            abort();
    }
    for (size_t i = 0; i < f.n_meta; i++)
        if (strcmp(f.meta[i].key, g.meta[i].key) || strcmp(f.meta[i].value, g.meta[i].value)) abort();
    free(buf);
    fr_st_free(&f);
    fr_st_free(&g);
    return 0;
}
