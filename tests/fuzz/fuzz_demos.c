/* libFuzzer target for the demonstrations reader (flowrl/demos.h, `make fuzz`): any input must
 * give FR_OK or one line of FR_ERR_FORMAT (never a crash, an out-of-bounds read or a leak), and an
 * accepted file must survive a write/read round trip unchanged. Seeds: tests/corpus/demos. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/demos.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_tmp[64];

static void remove_tmp(void) { unlink(g_tmp); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fr_demos d, q;
    fr_status s = fr_demos_read_mem(data, size, "fuzz", &d);
    if (s != FR_OK && s != FR_ERR_FORMAT) abort();
    if (s != FR_OK) {
        const char *msg = fr_last_error();
        if (strncmp(msg, "fuzz", 4) != 0 || strchr(msg, '\n') || d.obs || d.N) abort();
        return 0;
    }
    if (!g_tmp[0]) {
        snprintf(g_tmp, sizeof g_tmp, "/tmp/fuzz_demos.%d.safetensors", (int)getpid());
        atexit(remove_tmp);
    }
    if (fr_demos_write(g_tmp, &d) != FR_OK) abort();
    if (fr_demos_read(g_tmp, &q) != FR_OK) abort();
    const size_t n = (size_t)d.N, e = (size_t)d.E;
    if (q.N != d.N || q.E != d.E || q.obs_dim != d.obs_dim || q.action_dim != d.action_dim ||
        q.state_dim != d.state_dim || q.has_success != d.has_success || memcmp(d.obs, q.obs, n * d.obs_dim * 4) ||
        memcmp(d.action, q.action, n * d.action_dim * 4) || memcmp(d.reward, q.reward, n * 8) ||
        memcmp(d.done, q.done, n) || memcmp(d.episode_start, q.episode_start, (e + 1) * 8) ||
        memcmp(d.episode, q.episode, e * 8) || memcmp(d.final_obs, q.final_obs, e * d.obs_dim * 4) ||
        (d.state_dim && memcmp(d.state, q.state, n * d.state_dim * 8)) ||
        (d.has_success && memcmp(d.success, q.success, e)) || strcmp(d.env, q.env) || strcmp(d.policy, q.policy) ||
        strcmp(d.env_options, q.env_options) || d.seed != q.seed || d.max_steps != q.max_steps)
        abort();
    fr_demos_free(&d);
    fr_demos_free(&q);
    return 0;
}
