/* Child process plumbing for external reward programs (include/flowrl/reward_cmd.h). */
#include "core/reward_cmd_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int fr_rcproc_spawn_in(fr_rcproc *p, const char *cwd, const char *program)
{
    if (!cwd || !*cwd) return fr_rcproc_spawn(p, program);
    size_t q = 0;
    for (const char *c = cwd; *c; c++) q += *c == '\'' ? 4 : 1;
    char *cmd = malloc(q + strlen(program) + 16);
    if (!cmd) {
        p->pid = -1;
        p->to_fd = p->from_fd = -1;
        return ENOMEM;
    }
    char *w = cmd + sprintf(cmd, "cd -- '");
    for (const char *c = cwd; *c; c++) {
        if (*c == '\'') w += sprintf(w, "'\\''");
        else *w++ = *c;
    }
    sprintf(w, "' && %s", program);
    const int err = fr_rcproc_spawn(p, cmd);
    free(cmd);
    return err;
}

double fr_rcproc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* poll() timeout for the time left until deadline, rounded up so that a wait never ends
 * just before the deadline and spins. */
static int ms_left(double deadline)
{
    double left = deadline - fr_rcproc_now();
    if (left <= 0) return 0;
    double ms = left * 1e3 + 1.0;
    return ms > 1e9 ? 1000000000 : (int)ms;
}

/* A copy of fd at a number >= 3 with O_CLOEXEC, closing fd: the child's dup2 onto 0 and 1
 * must never find a source fd that is itself 0 or 1 (flowrl started with a closed stdin). */
static int high_cloexec(int fd)
{
    if (fd >= 3) return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return h;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

int fr_rcproc_spawn(fr_rcproc *p, const char *program)
{
    p->pid = -1;
    p->to_fd = p->from_fd = -1;
    int in[2] = {-1, -1}, out[2] = {-1, -1}; /* in: child's stdin; out: child's stdout */
    int err = 0;
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        err = errno;
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        if ((in[i] = high_cloexec(in[i])) < 0 || (out[i] = high_cloexec(out[i])) < 0) {
            err = errno;
            goto fail;
        }
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    if ((err = posix_spawn_file_actions_init(&fa)) != 0) goto fail;
    if ((err = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        goto fail;
    }
    /* dup2 clears FD_CLOEXEC on 0 and 1; every other pipe end closes at exec. */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE); /* SIG_IGN would survive exec if flowrl's caller set it */
    if ((err = posix_spawn_file_actions_adddup2(&fa, in[0], 0)) == 0 &&
        (err = posix_spawn_file_actions_adddup2(&fa, out[1], 1)) == 0 &&
        (err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                   POSIX_SPAWN_SETSIGDEF)) == 0 &&
        (err = posix_spawnattr_setpgroup(&attr, 0)) == 0 &&
        (err = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
        (err = posix_spawnattr_setsigdefault(&attr, &defaults)) == 0) {
        char *argv[] = {"sh", "-c", (char *)program, NULL};
        err = posix_spawn(&p->pid, "/bin/sh", &fa, &attr, argv, environ);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (err != 0) {
        p->pid = -1;
        goto fail;
    }
    close(in[0]);
    close(out[1]);
    p->to_fd = in[1];
    p->from_fd = out[0];
    /* Non-blocking on our side: every wait is a poll() with the batch deadline. */
    fcntl(p->to_fd, F_SETFL, fcntl(p->to_fd, F_GETFL) | O_NONBLOCK);
    fcntl(p->from_fd, F_SETFL, fcntl(p->from_fd, F_GETFL) | O_NONBLOCK);
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        close_fd(&in[i]);
        close_fd(&out[i]);
    }
    return err ? err : EIO;
}

/* write() that returns EPIPE instead of raising SIGPIPE: block it in this thread, and
 * consume the SIGPIPE this write raised (unless one was already pending) before restoring
 * the mask, leaving the process-wide disposition alone. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t n)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t w = write(fd, buf, n);
    int e = errno;
    if (w < 0 && e == EPIPE && !was_pending) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {}
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return w;
}

fr_rcio fr_rcproc_write(fr_rcproc *p, const void *buf, size_t n, double deadline,
                        size_t *done)
{
    const unsigned char *c = buf;
    *done = 0;
    if (p->to_fd < 0) return FR_RCIO_CLOSED;
    while (*done < n) {
        /* Watch stdout too: a program that prints before reading its input would otherwise
         * deadlock with us (both blocked on full pipes) until the timeout. */
        struct pollfd pf[2] = {{p->to_fd, POLLOUT, 0}, {p->from_fd, POLLIN, 0}};
        int r = poll(pf, 2, ms_left(deadline));
        if (r < 0) {
            if (errno == EINTR) continue;
            return FR_RCIO_ERRNO;
        }
        if (r == 0) return FR_RCIO_TIMEOUT;
        if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            /* Output before all input was read is a protocol error; EOF means it exited
             * (or closed stdout), which the caller reports from its exit status. */
            return (pf[1].revents & POLLIN) ? FR_RCIO_EARLY : FR_RCIO_CLOSED;
        }
        if (!(pf[0].revents & (POLLOUT | POLLERR | POLLHUP))) continue;
        ssize_t w = write_nosigpipe(p->to_fd, c + *done, n - *done);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            if (errno == EPIPE) return FR_RCIO_CLOSED;
            return FR_RCIO_ERRNO;
        }
        *done += (size_t)w;
    }
    return FR_RCIO_OK;
}

fr_rcio fr_rcproc_read(fr_rcproc *p, void *buf, size_t n, double deadline, size_t *got)
{
    unsigned char *c = buf;
    *got = 0;
    if (p->from_fd < 0) return FR_RCIO_CLOSED;
    while (*got < n) {
        ssize_t g = read(p->from_fd, c + *got, n - *got);
        if (g > 0) {
            *got += (size_t)g;
            continue;
        }
        if (g == 0) return FR_RCIO_CLOSED;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return FR_RCIO_ERRNO;
        struct pollfd pf = {p->from_fd, POLLIN, 0};
        int r = poll(&pf, 1, ms_left(deadline));
        if (r < 0 && errno != EINTR) return FR_RCIO_ERRNO;
        if (r == 0) return FR_RCIO_TIMEOUT;
    }
    return FR_RCIO_OK;
}

size_t fr_rcproc_pending(fr_rcproc *p, void *buf, size_t n)
{
    if (p->from_fd < 0) return 0;
    ssize_t g;
    do g = read(p->from_fd, buf, n);
    while (g < 0 && errno == EINTR);
    return g > 0 ? (size_t)g : 0;
}

static const char *signame(int sig)
{
    switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    default: return "a signal";
    }
}

static void describe(int st, char *how, size_t cap)
{
    if (WIFSIGNALED(st)) {
        int s = WTERMSIG(st);
        snprintf(how, cap, "was killed by signal %d (%s)", s, signame(s));
        return;
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    /* The shell's own codes (POSIX sh: 127 not found, 126 not executable, 128+n signal n
     * for the command it ran when it did not exec it). */
    if (code == 127)
        snprintf(how, cap, "exited with status 127 (the shell found no such command)");
    else if (code == 126)
        snprintf(how, cap, "exited with status 126 (the shell could not execute the command)");
    else if (code > 128 && code < 128 + 32)
        snprintf(how, cap, "exited with status %d (the shell's code for signal %d, %s)", code,
                 code - 128, signame(code - 128));
    else
        snprintf(how, cap, "exited with status %d", code);
}

int fr_rcproc_stop(fr_rcproc *p, double wait_s, char *how, size_t cap)
{
    close_fd(&p->to_fd);
    if (p->pid <= 0) {
        close_fd(&p->from_fd);
        snprintf(how, cap, "had already been stopped");
        return 0;
    }
    /* WNOWAIT: see the exit without reaping, so that the process group id stays reserved
     * (a zombie keeps it) until the group kill below has been sent. */
    double deadline = fr_rcproc_now() + wait_s;
    int exited = 0;
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && si.si_pid == p->pid) {
            exited = 1;
            break;
        }
        if (r < 0 && errno != EINTR) break; /* ECHILD: someone else reaped it */
        if (fr_rcproc_now() >= deadline) break;
        const struct timespec nap = {0, 2000000}; /* 2 ms */
        nanosleep(&nap, NULL);
    }
    kill(-p->pid, SIGKILL); /* everything the shell started, even after the shell exited */
    if (!exited) kill(p->pid, SIGKILL);
    int st = 0, ok = 0;
    pid_t r;
    do r = waitpid(p->pid, &st, 0);
    while (r < 0 && errno == EINTR);
    if (r != p->pid)
        snprintf(how, cap, "could not be reaped (%s)", strerror(errno));
    else if (!exited && wait_s > 0)
        snprintf(how, cap, "did not exit within %g s after its input was closed; killed",
                 wait_s);
    else if (!exited)
        snprintf(how, cap, "was stopped (SIGKILL)");
    else {
        describe(st, how, cap);
        ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    p->pid = -1;
    close_fd(&p->from_fd);
    return ok;
}
