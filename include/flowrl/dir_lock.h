/* An exclusive lock on a run directory for the life of a process, so two runs never write
 * the same audit log and checkpoints: flock(2) on DIR/.lock, which holds the holder's PID.
 * The kernel drops the lock when the holder exits, however it exits (SIGKILL included), so
 * a stale .lock file never blocks a later run. The descriptor is close-on-exec: reward
 * programs and other children started with exec do not keep the lock. */
#ifndef FLOWRL_DIR_LOCK_H
#define FLOWRL_DIR_LOCK_H

#include "flowrl/status.h"

#define FR_DIR_LOCK_NAME ".lock"

typedef struct {
    int fd; /* -1 when not held */
} fr_lock_file;

/* Takes the lock on DIR (which must exist) and writes this process's PID into DIR/.lock.
 * Held by another process (or another fr_dir_lock of this one): FR_ERR_IO
 * "DIR: locked by PID 1234 (another flowrl run)". On failure lock->fd is -1. */
fr_status fr_dir_lock(const char *dir, fr_lock_file *lock);

/* Releases a lock taken by fr_dir_lock (the file stays, emptied); a no-op when not held. */
void fr_dir_unlock(fr_lock_file *lock);

#endif
