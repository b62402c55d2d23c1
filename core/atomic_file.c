#include "flowrl/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

fr_status fr_atomic_write(const char *path, fr_atomic_writer write, void *user)
{
    /* unique per process and call: threads may write side by side */
    static atomic_uint counter;
    size_t n = strlen(path) + 48;
    char *tmp = fr_malloc(n);
    if (!tmp) return FR_ERR_NOMEM;
    snprintf(tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1u));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) {
        fr_status s = fr_fail(FR_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return s;
    }
    FILE *fp = fdopen(fd, "wb");
    fr_status s = FR_OK;
    if (!fp) {
        s = fr_fail(FR_ERR_IO, "%s: fdopen: %s", tmp, strerror(errno));
        close(fd);
    } else {
        s = write(fp, tmp, user);
        if (s == FR_OK && (fflush(fp) != 0 || ferror(fp)))
            s = fr_fail(FR_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        if (s == FR_OK && fsync(fileno(fp)) != 0)
            s = fr_fail(FR_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
        if (fclose(fp) != 0 && s == FR_OK)
            s = fr_fail(FR_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    }
    if (s == FR_OK && rename(tmp, path) != 0)
        s = fr_fail(FR_ERR_IO, "%s: rename from %s failed: %s", path, tmp, strerror(errno));
    if (s != FR_OK) unlink(tmp);
    free(tmp);
    return s;
}

typedef struct {
    const void *data;
    size_t len;
} bytes;

static fr_status write_bytes(FILE *fp, const char *tmp, void *user)
{
    const bytes *b = user;
    if (b->len && fwrite(b->data, 1, b->len, fp) != b->len)
        return fr_fail(FR_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return FR_OK;
}

fr_status fr_atomic_write_bytes(const char *path, const void *data, size_t len)
{
    bytes b = {data, len};
    return fr_atomic_write(path, write_bytes, &b);
}
