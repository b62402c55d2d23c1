/* Run archives (docs/design.md §5): a run directory packed into one .tar.zst by libarchive, and
 * members read back out of it without extracting.
 *
 * Packing is deterministic, so the same run directory packs to the same bytes on any
 * machine: a POSIX tar (pax restricted: plain ustar headers, a pax extension only where
 * ustar cannot hold a name), zstd-compressed at level 3; members are the directory's
 * entries, paths relative to it ("audit.log", "checkpoints/", "checkpoints/step-3.safetensors",
 * no leading "./" and no top-level folder: extract with `mkdir R && tar -C R -xf run.tar.zst`),
 * sorted by strcmp of the path; every header has mtime 0, uid/gid 0, no user/group names,
 * mode 0644 for files and 0755 for directories. Only regular files and directories are
 * stored: a symbolic link or a special file is FR_ERR_UNSUPPORTED naming it. The archive is
 * written to "OUT.tmp.<pid>", fsync'ed and then moved to OUT (which is never overwritten
 * unless `force`), so OUT is never half-written.
 *
 * Reading accepts any tar that libarchive reads, with any of its compression filters; a
 * member name is matched after stripping leading "./". Tar has no index: a lookup
 * decompresses the archive up to the member (the first member of that name wins). */
#ifndef FLOWRL_ARCHIVE_H
#define FLOWRL_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/status.h"

#define FR_ARCHIVE_ZSTD_LEVEL 3

/* Packs directory DIR into OUT. FR_ERR_ARG if OUT exists and !force, or DIR is not a
 * directory; FR_ERR_IO / FR_ERR_UNSUPPORTED with the path on failure (no OUT is left). */
fr_status fr_archive_pack_dir(const char *dir, const char *out, int force);

typedef struct {
    char *name;    /* relative path, directories without a trailing '/' */
    uint64_t size; /* bytes (0 for a directory) */
    int is_dir;
} fr_archive_member;

/* Every member in archive order (*members freed with fr_archive_members_free). */
fr_status fr_archive_list(const char *path, fr_archive_member **members, size_t *n);
void fr_archive_members_free(fr_archive_member *members, size_t n);

/* Reads regular-file member MEMBER of archive PATH into a malloc'ed buffer (*buf freed by the
 * caller; one spare NUL byte follows the data). A member over max_bytes is FR_ERR_NOMEM naming
 * its size. A missing member: *found = 0 and FR_OK when found is not NULL, else FR_ERR_ARG. */
fr_status fr_archive_read_member(const char *path, const char *member, size_t max_bytes, void **buf,
                                 size_t *len, int *found);

/* 1 if PATH is a regular file that starts like an archive (a zstd, gzip, xz, bzip2 or lz4
 * stream, or an uncompressed tar), else 0. Audit logs and safetensors files never do. */
int fr_archive_sniff(const char *path);

#endif
