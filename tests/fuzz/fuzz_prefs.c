/* libFuzzer target for the preference-file reader (flowrl/prefs.h, `make fuzz`): any input must
 * give FR_OK or one line of FR_ERR_FORMAT (never a crash, an out-of-bounds read or a leak),
 * and an accepted file must survive a write/read round trip unchanged. Seeds: tests/corpus/prefs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/prefs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_tmp[64];

static void remove_tmp(void) { unlink(g_tmp); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fr_prefs p, q;
    fr_status s = fr_prefs_read_mem(data, size, "fuzz", NULL, &p);
    if (s != FR_OK && s != FR_ERR_FORMAT) abort();
    if (s != FR_OK) {
        const char *msg = fr_last_error();
        if (strncmp(msg, "fuzz", 4) != 0 || strchr(msg, '\n') || p.x_w || p.N) abort();
        return 0;
    }
    if (!g_tmp[0]) {
        snprintf(g_tmp, sizeof g_tmp, "/tmp/fuzz_prefs.%d.safetensors", (int)getpid());
        atexit(remove_tmp);
    }
    if (fr_prefs_write(g_tmp, &p) != FR_OK) abort();
    if (fr_prefs_read(g_tmp, NULL, &q) != FR_OK) abort();
    const size_t nd = (size_t)(p.N * p.D) * sizeof(float), n = (size_t)p.N * 4;
    if (q.N != p.N || q.D != p.D || memcmp(p.x_w, q.x_w, nd) || memcmp(p.x_l, q.x_l, nd) ||
        memcmp(p.prompt, q.prompt, n) || memcmp(p.r_w, q.r_w, n) || memcmp(p.r_l, q.r_l, n) ||
        (p.x_T == NULL) != (q.x_T == NULL) || (p.x_T && memcmp(p.x_T, q.x_T, nd)) || strcmp(p.ckpt, q.ckpt) ||
        strcmp(p.sampler, q.sampler) || p.seed != q.seed || p.steps != q.steps || p.attempts != q.attempts)
        abort();
    fr_prefs_free(&p);
    fr_prefs_free(&q);
    return 0;
}
