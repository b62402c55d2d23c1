/* libFuzzer target for the run-archive reader (core/archive.c over libarchive): the input
 * becomes an in-memory file (memfd) that is sniffed, listed and whose first members are
 * read, as `flowrl audit` / `compare` do with a packed run. Any status but a crash, an
 * out-of-bounds access or a leak is fine; a failure must leave a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "flowrl/archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_fd = -1;
static char g_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_fd < 0) {
        g_fd = memfd_create("fuzz_archive", 0);
        if (g_fd < 0) abort();
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    if (ftruncate(g_fd, 0) != 0 || pwrite(g_fd, data, size, 0) != (ssize_t)size) abort();
    (void)fr_archive_sniff(g_path);
    fr_archive_member *m = NULL;
    size_t n = 0;
    fr_status s = fr_archive_list(g_path, &m, &n);
    if (s != FR_OK) {
        if (fr_last_error()[0] == '\0') abort();
        return 0;
    }
    for (size_t i = 0, tried = 0; i < n && tried < 4; i++) {
        if (m[i].is_dir || !m[i].name) continue;
        tried++;
        void *buf = NULL;
        size_t len = 0;
        int found = 0;
        s = fr_archive_read_member(g_path, m[i].name, 1u << 20, &buf, &len, &found);
        if (s == FR_OK && found && ((const char *)buf)[len] != '\0') abort(); /* the spare NUL */
        if (s != FR_OK && fr_last_error()[0] == '\0') abort();
        free(buf);
    }
    /* a member that is not there */
    void *buf = NULL;
    size_t len = 0;
    int found = 1;
    s = fr_archive_read_member(g_path, "no/such/member", 1u << 20, &buf, &len, &found);
    if (s == FR_OK && found) abort();
    free(buf);
    fr_archive_members_free(m, n);
    return 0;
}
