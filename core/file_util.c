/* Whole-file reads (flowrl/file_util.h). */
#include "flowrl/file_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

fr_status fr_read_file_max(const char *path, size_t max, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fr_fail(FR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return fr_fail(FR_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > max) {
        close(fd);
        return fr_fail(FR_ERR_NOMEM, "%s: %lld bytes, over the limit of %zu", path, (long long)sb.st_size, max);
    }
    size_t n = (size_t)sb.st_size, got = 0;
    char *b = fr_malloc(n + 1);
    if (!b) {
        close(fd);
        return FR_ERR_NOMEM;
    }
    /* the size from fstat bounds the read: a file that grows meanwhile is read to that size */
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            fr_status s = fr_fail(FR_ERR_IO, "%s: read failed: %s", path, r < 0 ? strerror(errno) : "file shrank");
            free(b);
            close(fd);
            return s;
        }
        got += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return FR_OK;
}

fr_status fr_read_file(const char *path, char **buf, size_t *len)
{
    return fr_read_file_max(path, FR_READ_FILE_MAX, buf, len);
}
