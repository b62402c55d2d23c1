/* The child-process half of core/reward_cmd.c: spawn `sh -c PROGRAM` with piped
 * stdin/stdout, bounded-time pipe I/O that survives SIGPIPE, and stop-and-reap. Internal. */
#ifndef FLOWRL_REWARD_CMD_PROC_H
#define FLOWRL_REWARD_CMD_PROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;   /* > 0 while the child exists (running or not yet reaped), else -1 */
    int to_fd;   /* our end of the child's stdin, -1 once closed */
    int from_fd; /* our end of the child's stdout, -1 once closed */
} fr_rcproc;

typedef enum {
    FR_RCIO_OK = 0,
    FR_RCIO_TIMEOUT, /* the deadline passed */
    FR_RCIO_CLOSED,  /* EOF on read, EPIPE on write: the child closed its end (or exited) */
    FR_RCIO_EARLY,   /* write: the child wrote to stdout before reading all its input */
    FR_RCIO_ERRNO    /* another system error, in errno */
} fr_rcio;

/* Spawns `/bin/sh -c program` in a new process group, with default signal dispositions
 * and an empty signal mask; stderr is inherited. Returns 0, or an errno value. */
int fr_rcproc_spawn(fr_rcproc *p, const char *program);

/* The same in directory cwd (NULL or "": the caller's): `cd -- 'CWD' && PROGRAM`, the
 * directory quoted for sh. ENOMEM if the command line cannot be allocated. */
int fr_rcproc_spawn_in(fr_rcproc *p, const char *cwd, const char *program);

/* Monotonic clock, seconds. */
double fr_rcproc_now(void);

/* Writes n bytes to the child's stdin before `deadline` (fr_rcproc_now() time); *done =
 * bytes written. */
fr_rcio fr_rcproc_write(fr_rcproc *p, const void *buf, size_t n, double deadline,
                        size_t *done);

/* Reads exactly n bytes from the child's stdout before `deadline`; *got = bytes read. */
fr_rcio fr_rcproc_read(fr_rcproc *p, void *buf, size_t n, double deadline, size_t *got);

/* Bytes the child has already written beyond what was read (a non-blocking read of up to
 * n bytes into buf); 0 if none or at EOF. */
size_t fr_rcproc_pending(fr_rcproc *p, void *buf, size_t n);

/* Closes the child's stdin, waits up to wait_s for it to exit, then SIGKILLs its process
 * group (whatever the shell started) and reaps it. Writes how it ended into how ("exited
 * with status 3", "was killed by signal 11 (SIGSEGV)", "did not exit within 2 s; killed")
 * and returns 1 if it exited with status 0 by itself, else 0. Safe to call when pid < 0
 * (writes "had already been stopped"). */
int fr_rcproc_stop(fr_rcproc *p, double wait_s, char *how, size_t cap);

#endif
