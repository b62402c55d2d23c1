/* Run archives through libarchive (include/flowrl/archive.h; docs/design.md §4, §5). */
#include "flowrl/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *path; /* relative to the packed directory */
    int is_dir;
} walk_entry;

typedef struct {
    walk_entry *e;
    size_t n, cap;
} walk_list;

static void walk_free(walk_list *w)
{
    for (size_t i = 0; i < w->n; i++) free(w->e[i].path);
    free(w->e);
}

static fr_status walk_add(walk_list *w, const char *rel, int is_dir)
{
    if (w->n == w->cap) {
        size_t c = w->cap ? 2 * w->cap : 64;
        walk_entry *e = realloc(w->e, c * sizeof *e);
        if (!e) return fr_fail(FR_ERR_NOMEM, "pack: out of memory");
        w->e = e;
        w->cap = c;
    }
    if (!(w->e[w->n].path = strdup(rel))) return fr_fail(FR_ERR_NOMEM, "pack: out of memory");
    w->e[w->n++].is_dir = is_dir;
    return FR_OK;
}

/* Collects every entry under root/rel (rel "" for the root itself, which is not listed). */
static fr_status walk(walk_list *w, const char *root, const char *rel)
{
    char dirpath[4096];
    if ((size_t)snprintf(dirpath, sizeof dirpath, "%s%s%s", root, *rel ? "/" : "", rel) >= sizeof dirpath)
        return fr_fail(FR_ERR_ARG, "%s/%s: path too long", root, rel);
    DIR *d = opendir(dirpath);
    if (!d) return fr_fail(FR_ERR_IO, "%s: cannot open directory: %s", dirpath, strerror(errno));
    fr_status s = FR_OK;
    struct dirent *e;
    while (s == FR_OK && (errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char child[4096], full[4096];
        if ((size_t)snprintf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= sizeof child ||
            (size_t)snprintf(full, sizeof full, "%s/%s", root, child) >= sizeof full) {
            s = fr_fail(FR_ERR_ARG, "%s/%s: path too long", dirpath, e->d_name);
            break;
        }
        struct stat sb;
        if (lstat(full, &sb) != 0) {
            s = fr_fail(FR_ERR_IO, "%s: %s", full, strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            s = walk_add(w, child, 1);
            if (s == FR_OK) s = walk(w, root, child);
        } else if (S_ISREG(sb.st_mode)) {
            s = walk_add(w, child, 0);
        } else {
            s = fr_fail(FR_ERR_UNSUPPORTED, "%s: %s (a run archive stores regular files and directories only)",
                        full, S_ISLNK(sb.st_mode) ? "symbolic link" : "special file");
        }
    }
    if (s == FR_OK && errno) s = fr_fail(FR_ERR_IO, "%s: readdir failed: %s", dirpath, strerror(errno));
    closedir(d);
    return s;
}

static fr_status arch_err(struct archive *a, const char *path, const char *what)
{
    const char *m = archive_error_string(a);
    return fr_fail(FR_ERR_IO, "%s: %s: %s", path, what, m ? m : "libarchive error");
}

/* Streams one regular file into the archive; its size must not change while packing. */
static fr_status put_file(struct archive *a, struct archive_entry *ent, const char *full, const char *out)
{
    int fd = open(full, O_RDONLY);
    if (fd < 0) return fr_fail(FR_ERR_IO, "%s: cannot open: %s", full, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return fr_fail(FR_ERR_IO, "%s: not a regular file any more", full);
    }
    archive_entry_set_size(ent, sb.st_size);
    fr_status s = FR_OK;
    if (archive_write_header(a, ent) != ARCHIVE_OK) s = arch_err(a, out, "writing a header");
    static char buf[1 << 16];
    int64_t left = sb.st_size;
    while (s == FR_OK && left > 0) {
        ssize_t r = read(fd, buf, left < (int64_t)sizeof buf ? (size_t)left : sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            s = fr_fail(FR_ERR_IO, "%s: %s while packing", full, r < 0 ? strerror(errno) : "file shrank");
            break;
        }
        if (archive_write_data(a, buf, (size_t)r) != r) s = arch_err(a, out, "writing data");
        left -= r;
    }
    char extra;
    if (s == FR_OK && read(fd, &extra, 1) > 0) s = fr_fail(FR_ERR_IO, "%s: file grew while packing", full);
    close(fd);
    return s;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const walk_entry *)a)->path, ((const walk_entry *)b)->path);
}

static fr_status write_archive(const walk_list *w, const char *dir, int fd, const char *out)
{
    struct archive *a = archive_write_new();
    if (!a) return fr_fail(FR_ERR_NOMEM, "%s: archive_write_new failed", out);
    fr_status s = FR_OK;
    char opt[64];
    snprintf(opt, sizeof opt, "zstd:compression-level=%d", FR_ARCHIVE_ZSTD_LEVEL);
    if (archive_write_add_filter_zstd(a) != ARCHIVE_OK || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_options(a, opt) != ARCHIVE_OK || archive_write_open_fd(a, fd) != ARCHIVE_OK)
        s = arch_err(a, out, "setting up zstd-compressed tar output");
    struct archive_entry *ent = archive_entry_new();
    if (!ent && s == FR_OK) s = fr_fail(FR_ERR_NOMEM, "%s: archive_entry_new failed", out);
    for (size_t i = 0; s == FR_OK && i < w->n; i++) {
        archive_entry_clear(ent);
        archive_entry_set_pathname(ent, w->e[i].path);
        archive_entry_set_filetype(ent, w->e[i].is_dir ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(ent, w->e[i].is_dir ? 0755 : 0644);
        archive_entry_set_uid(ent, 0);
        archive_entry_set_gid(ent, 0);
        archive_entry_set_mtime(ent, 0, 0);
        if (w->e[i].is_dir) {
            archive_entry_set_size(ent, 0);
            if (archive_write_header(a, ent) != ARCHIVE_OK) s = arch_err(a, out, "writing a header");
        } else {
            char full[8192];
            snprintf(full, sizeof full, "%s/%s", dir, w->e[i].path);
            s = put_file(a, ent, full, out);
        }
    }
    if (ent) archive_entry_free(ent);
    if (archive_write_close(a) != ARCHIVE_OK && s == FR_OK) s = arch_err(a, out, "finishing the archive");
    archive_write_free(a);
    return s;
}

fr_status fr_archive_pack_dir(const char *dir, const char *out, int force)
{
    if (!dir || !out) return fr_fail(FR_ERR_ARG, "fr_archive_pack_dir: NULL argument");
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return fr_fail(FR_ERR_ARG, "%s: not a directory", dir);
    if (!force && lstat(out, &sb) == 0)
        return fr_fail(FR_ERR_ARG, "%s exists (use --force to overwrite)", out);
    walk_list w = {0};
    fr_status s = walk(&w, dir, "");
    if (s != FR_OK) {
        walk_free(&w);
        return s;
    }
    /* Byte order of the relative paths: the same on every machine and locale. */
    if (w.n) qsort(w.e, w.n, sizeof *w.e, cmp_entry);
    char tmp[4096];
    int fd = -1;
    if (s == FR_OK) {
        if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid()) >= sizeof tmp)
            s = fr_fail(FR_ERR_ARG, "%s: path too long", out);
        else if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0644)) < 0)
            s = fr_fail(FR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    if (s == FR_OK) s = write_archive(&w, dir, fd, out);
    walk_free(&w);
    if (fd >= 0) {
        if (s == FR_OK && fsync(fd) != 0) s = fr_fail(FR_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
        if (close(fd) != 0 && s == FR_OK) s = fr_fail(FR_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
        if (s == FR_OK) {
            if (force) {
                if (rename(tmp, out) != 0) s = fr_fail(FR_ERR_IO, "%s: rename failed: %s", out, strerror(errno));
            } else if (link(tmp, out) != 0) {
                /* link() refuses to replace an OUT that appeared meanwhile (no race). */
                s = errno == EEXIST ? fr_fail(FR_ERR_ARG, "%s exists (use --force to overwrite)", out)
                                    : fr_fail(FR_ERR_IO, "%s: cannot create: %s", out, strerror(errno));
            }
        }
        unlink(tmp); /* after rename it is gone already; after link it is the second name */
    }
    return s;
}

/* ---- reading ---- */

static const char *strip_dot(const char *p)
{
    while (p[0] == '.' && p[1] == '/') p += 2;
    return p;
}

static fr_status open_read(struct archive **out, const char *path)
{
    struct archive *a = archive_read_new();
    if (!a) return fr_fail(FR_ERR_NOMEM, "%s: archive_read_new failed", path);
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        fr_status s = arch_err(a, path, "cannot open as a tar archive");
        archive_read_free(a);
        return s;
    }
    *out = a;
    return FR_OK;
}

void fr_archive_members_free(fr_archive_member *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) free(m[i].name);
    free(m);
}

fr_status fr_archive_list(const char *path, fr_archive_member **members, size_t *n)
{
    *members = NULL;
    *n = 0;
    struct archive *a;
    FR_TRY(open_read(&a, path));
    fr_archive_member *m = NULL;
    size_t cnt = 0, cap = 0;
    fr_status s = FR_OK;
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if (cnt == cap) {
            size_t c = cap ? 2 * cap : 32;
            fr_archive_member *mm = realloc(m, c * sizeof *mm);
            if (!mm) {
                s = fr_fail(FR_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            m = mm;
            cap = c;
        }
        const char *name = strip_dot(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
        size_t l = strlen(name);
        int is_dir = archive_entry_filetype(e) == AE_IFDIR;
        if (is_dir && l && name[l - 1] == '/') l--;
        char *nm = malloc(l + 1);
        if (!nm) {
            s = fr_fail(FR_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        memcpy(nm, name, l);
        nm[l] = '\0';
        m[cnt].name = nm;
        m[cnt].is_dir = is_dir;
        m[cnt].size = is_dir ? 0 : (uint64_t)archive_entry_size(e);
        cnt++;
    }
    if (s == FR_OK && r != ARCHIVE_EOF) s = arch_err(a, path, "reading the member list");
    archive_read_free(a);
    if (s != FR_OK) {
        fr_archive_members_free(m, cnt);
        return s;
    }
    *members = m;
    *n = cnt;
    return FR_OK;
}

fr_status fr_archive_read_member(const char *path, const char *member, size_t max_bytes, void **buf,
                                 size_t *len, int *found)
{
    *buf = NULL;
    *len = 0;
    if (found) *found = 0;
    struct archive *a;
    FR_TRY(open_read(&a, path));
    const char *want = strip_dot(member);
    fr_status s = FR_OK;
    struct archive_entry *e;
    int r, hit = 0;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (!name || strcmp(strip_dot(name), want) != 0) continue;
        hit = 1;
        if (archive_entry_filetype(e) != AE_IFREG) {
            s = fr_fail(FR_ERR_ARG, "%s: member %s is not a regular file", path, want);
            break;
        }
        int64_t size = archive_entry_size(e);
        if (!archive_entry_size_is_set(e) || size < 0) {
            s = fr_fail(FR_ERR_FORMAT, "%s: member %s has no size in its header", path, want);
            break;
        }
        if ((uint64_t)size > max_bytes) {
            s = fr_fail(FR_ERR_NOMEM, "%s: member %s is %lld bytes, over the limit of %zu", path, want,
                        (long long)size, max_bytes);
            break;
        }
        char *b = malloc((size_t)size + 1);
        if (!b) {
            s = fr_fail(FR_ERR_NOMEM, "%s: out of memory for member %s (%lld bytes)", path, want, (long long)size);
            break;
        }
        size_t got = 0;
        while (got < (size_t)size) {
            la_ssize_t k = archive_read_data(a, b + got, (size_t)size - got);
            if (k <= 0) {
                s = k < 0 ? arch_err(a, path, "reading a member")
                          : fr_fail(FR_ERR_FORMAT, "%s: member %s is truncated", path, want);
                break;
            }
            got += (size_t)k;
        }
        if (s != FR_OK) {
            free(b);
            break;
        }
        b[got] = '\0';
        *buf = b;
        *len = got;
        break;
    }
    if (s == FR_OK && !hit && r != ARCHIVE_EOF) s = arch_err(a, path, "reading the archive");
    archive_read_free(a);
    if (s != FR_OK) return s;
    if (!hit) {
        if (found) return FR_OK;
        return fr_fail(FR_ERR_ARG, "%s: no member named %s", path, want);
    }
    if (found) *found = 1;
    return FR_OK;
}

int fr_archive_sniff(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char h[512];
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    static const struct {
        const char *magic;
        size_t len;
    } k_magic[] = {
        {"\x28\xb5\x2f\xfd", 4},         /* zstd */
        {"\x1f\x8b", 2},                 /* gzip */
        {"\xfd" "7zXZ\x00", 6},          /* xz */
        {"BZh", 3},                      /* bzip2 */
        {"\x04\x22\x4d\x18", 4},         /* lz4 */
    };
    for (size_t i = 0; i < sizeof k_magic / sizeof k_magic[0]; i++)
        if (n >= k_magic[i].len && memcmp(h, k_magic[i].magic, k_magic[i].len) == 0) return 1;
    return n >= 262 && memcmp(h + 257, "ustar", 5) == 0;
}
