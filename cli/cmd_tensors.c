/* flowrl tensors FILE [--meta]: one line per tensor (name, dtype, shape, XXH3-64 digest of
 * the tensor as fr_tensor_digest defines it), in file data order, columns aligned. FILE may
 * also be a member of a run archive (include/flowrl/archive.h): ARCHIVE:MEMBER or
 * ARCHIVE --member MEMBER; ARCHIVE alone lists its safetensors members. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/archive.h"
#include "flowrl/digest.h"
#include "flowrl/runcompare.h"
#include "flowrl/safetensors.h"
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f, "Usage: flowrl tensors FILE [--meta]\n"
           "       flowrl tensors ARCHIVE:MEMBER [--meta]\n"
           "       flowrl tensors ARCHIVE --member MEMBER [--meta]\n"
           "       flowrl tensors ARCHIVE\n\n"
           "Lists the tensors of a safetensors file, one per line in data order:\n"
           "  NAME  DTYPE  SHAPE  DIGEST\n"
           "DIGEST is the XXH3-64 tensor digest (16 hex digits; it covers dtype, shape and\n"
           "bytes, with NaN payloads canonicalised). The file is fully validated first; a\n"
           "malformed file gives one error line and exit status 1.\n\n"
           "A safetensors file inside a run archive (flowrl pack) is read in place, e.g.\n"
           "  flowrl tensors run.tar.zst:checkpoints/step-3.safetensors\n"
           "(an existing file named FILE wins over the ARCHIVE:MEMBER reading of its name).\n"
           "ARCHIVE alone lists its .safetensors members, one path per line.\n");
}

/* Control bytes and backslashes escaped so that every entry stays on one line; an empty
 * string shows as "" so that it is visible. */
static char *escape(const char *s)
{
    size_t n = strlen(s);
    if (!n) return strdup("\"\"");
    char *out = malloc(4 * n + 1), *o = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\') o += sprintf(o, "\\\\");
        else if (*p == '\n') o += sprintf(o, "\\n");
        else if (*p == '\t') o += sprintf(o, "\\t");
        else if (*p < 0x20 || *p == 0x7F) o += sprintf(o, "\\x%02x", *p);
        else *o++ = (char)*p;
    }
    *o = '\0';
    return out;
}

/* Terminal columns of a UTF-8 string, counted as code points. */
static int columns(const char *s)
{
    int w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

static void pad(int n)
{
    for (; n > 0; n--) putchar(' ');
}

static int list(const fr_st_file *f, int want_meta)
{
    char **names = calloc(f->n ? f->n : 1, sizeof *names);
    char(*shapes)[96] = calloc(f->n ? f->n : 1, sizeof *shapes);
    int rc = 0;
    if (!names || !shapes) {
        rc = fr_cli_error("tensors", "out of memory");
        goto done;
    }
    int wn = 4, wd = 4, ws = 5;
    for (size_t i = 0; i < f->n; i++) {
        const fr_tensor *t = &f->entries[i].t;
        if (!(names[i] = escape(f->entries[i].name))) {
            rc = fr_cli_error("tensors", "out of memory");
            goto done;
        }
        fr_shape_str(t->ndim, t->shape, shapes[i], sizeof shapes[i]);
        if (columns(names[i]) > wn) wn = columns(names[i]);
        if ((int)strlen(fr_dtype_name(t->dtype)) > wd) wd = (int)strlen(fr_dtype_name(t->dtype));
        if ((int)strlen(shapes[i]) > ws) ws = (int)strlen(shapes[i]);
    }
    for (size_t i = 0; i < f->n; i++) {
        const fr_tensor *t = &f->entries[i].t;
        char hex[17];
        fr_digest_hex(fr_tensor_digest(t), hex);
        fputs(names[i], stdout);
        pad(wn - columns(names[i]) + 2);
        printf("%-*s  %-*s  %s\n", wd, fr_dtype_name(t->dtype), ws, shapes[i], hex);
    }
    if (want_meta) {
        printf("__metadata__ (%zu)\n", f->n_meta);
        for (size_t i = 0; i < f->n_meta; i++) { /* f->meta is kept sorted by key */
            char *k = escape(f->meta[i].key), *v = escape(f->meta[i].value);
            if (k && v) printf("  %s = %s\n", k, v);
            else rc = fr_cli_error("tensors", "out of memory");
            free(k);
            free(v);
            if (rc) break;
        }
    }
done:
    if (names)
        for (size_t i = 0; i < f->n; i++) free(names[i]);
    free(names);
    free(shapes);
    return rc;
}

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The archive's .safetensors members, one per line. */
static int list_members(const char *archive)
{
    fr_archive_member *m;
    size_t n, shown = 0;
    if (fr_archive_list(archive, &m, &n) != FR_OK) return fr_cli_error("tensors", "%s", fr_last_error());
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(m[i].name);
        if (!m[i].is_dir && l > 12 && strcmp(m[i].name + l - 12, ".safetensors") == 0) {
            printf("%s\n", m[i].name);
            shown++;
        }
    }
    fr_archive_members_free(m, n);
    if (!shown) fprintf(stderr, "flowrl tensors: %s holds no .safetensors member\n", archive);
    return 0;
}

typedef struct {
    int meta;
    char member[1024];
} tensors_opts;

static const fr_opt k_rows[] = {
    FR_OPT_BOOL(tensors_opts, meta, "meta", "false", "also print the __metadata__ map, sorted by key", 0),
    FR_OPT_ROW_(tensors_opts, member, "member", FR_OPT_STR, "", 0, 0, NULL, "the member of ARCHIVE to read", 0, NULL,
                "MEMBER"),
};

int cmd_tensors(int argc, char **argv)
{
    tensors_opts to;
    fr_opts o = {.cmd = "tensors", .s = {&to}};
    fr_opts_add(&o, "Options", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("tensors", FR_ERR_IO);
    const char *path = NULL, *member = NULL;
    int n_pos = 0;
    int rc = fr_cli_opts(&o, argc, argv, usage, &path, 1, &n_pos, NULL);
    if (rc >= 0) return rc;
    if (!n_pos) return fr_cli_usage("tensors", "a FILE is required");
    const int want_meta = to.meta;
    if (to.member[0]) member = to.member;
    /* ARCHIVE:MEMBER, split at the last ':' whose left part is an existing file. */
    char archive[4096] = "";
    if (!member && !is_file(path)) {
        for (size_t l = strlen(path); l-- > 0 && !member;) {
            if (path[l] != ':' || l >= sizeof archive) continue;
            memcpy(archive, path, l);
            archive[l] = '\0';
            if (is_file(archive)) member = path + l + 1;
        }
    } else if (member) {
        snprintf(archive, sizeof archive, "%s", path);
    }
    if (member && !fr_archive_sniff(archive)) {
        fprintf(stderr, "flowrl tensors: %s is not an archive (MEMBER given: %s)\n", archive, member);
        return 2;
    }
    if (member && !*member) {
        fprintf(stderr, "flowrl tensors: empty MEMBER after '%s:'\n", archive);
        return 2;
    }
    if (!member && fr_archive_sniff(path)) return list_members(path);
    fr_st_file f;
    fr_status st;
    char label[8192];
    if (member) {
        void *buf;
        size_t len;
        snprintf(label, sizeof label, "%s:%s", archive, member);
        if (fr_archive_read_member(archive, member, FR_RUN_MAX_CHECKPOINT_BYTES, &buf, &len, NULL) != FR_OK)
            return fr_cli_error("tensors", "%s", fr_last_error());
        st = fr_st_read_mem(&f, buf, len, label);
        free(buf);
    } else {
        snprintf(label, sizeof label, "%s", path);
        st = fr_st_read(&f, path);
    }
    if (st != FR_OK) {
        const char *msg = fr_last_error();
        /* The reader's messages start with the path; allocation failures may not. */
        if (strncmp(msg, label, strlen(label)) == 0) return fr_cli_error("tensors", "%s", msg);
        return fr_cli_error("tensors", "%s: %s", label, msg);
    }
    rc = list(&f, want_meta);
    fr_st_free(&f);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
        rc = fr_cli_error("tensors", "writing to stdout failed");
    return rc;
}
