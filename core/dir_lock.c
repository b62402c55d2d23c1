/* Run-directory locks (flowrl/dir_lock.h). flock rather than fcntl locks: an fcntl lock
 * belongs to the process and is dropped when any descriptor of the file is closed, and is
 * not visible between two descriptors of one process; a flock belongs to the open file. */
#include "flowrl/dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* The PID the holder wrote, or 0 when it has not written it yet (or the file is odd). */
static long holder_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return end != buf && (*end == '\n' || *end == '\0') && pid > 0 ? pid : 0;
}

fr_status fr_dir_lock(const char *dir, fr_lock_file *lock)
{
    lock->fd = -1;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, FR_DIR_LOCK_NAME) >= sizeof path)
        return fr_fail(FR_ERR_ARG, "%s: path too long for a lock file", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return fr_fail(FR_ERR_IO, "%s: cannot open %s: %s", dir, FR_DIR_LOCK_NAME, strerror(errno));
    int r;
    while ((r = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {}
    if (r != 0) {
        int e = errno;
        long pid = e == EWOULDBLOCK ? holder_pid(fd) : 0;
        close(fd);
        if (e != EWOULDBLOCK) return fr_fail(FR_ERR_IO, "%s: cannot lock %s: %s", dir, FR_DIR_LOCK_NAME, strerror(e));
        if (pid) return fr_fail(FR_ERR_IO, "%s: locked by PID %ld (another flowrl run)", dir, pid);
        return fr_fail(FR_ERR_IO, "%s: locked by another process that has not written its PID yet "
                       "(another flowrl run)", dir);
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        fr_status s = fr_fail(FR_ERR_IO, "%s: cannot write the PID into %s: %s", dir, FR_DIR_LOCK_NAME, strerror(errno));
        close(fd);
        return s;
    }
    lock->fd = fd;
    return FR_OK;
}

void fr_dir_unlock(fr_lock_file *lock)
{
    if (lock->fd < 0) return;
    /* Emptied before the lock drops, so a reader never sees a PID that no longer holds it.
     * The file is not removed: unlinking it would let a waiter lock the old inode while a
     * newcomer locks a new one. A failed truncate changes nothing: the lock drops anyway. */
    int rc = ftruncate(lock->fd, 0);
    (void)rc;
    close(lock->fd);
    lock->fd = -1;
}
