/* `flowrl golden gen`: every case file, then golden/MANIFEST (golden/README.md "MANIFEST").
 *
 * MANIFEST, one record per line, fields separated by one space:
 *   # comment lines
 *   format 1
 *   flowrl VERSION
 *   command flowrl golden gen --force
 *   seed 0x00601de4 purpose 11
 *   file CASE BYTES XXH3          XXH3-64 of the whole file
 *   tensor CASE NAME DTYPE SHAPE XXH3   fr_tensor_digest; SHAPE "[6,13]", "[]" for 0-d */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/golden_internal.h"
#include "flowrl/atomic_file.h"
#include "flowrl/buildinfo.h"
#include "flowrl/digest.h"
#include "flowrl/philox.h"

static void case_path(const char *dir, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s.safetensors", dir, name);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void shape_str(const fr_tensor *t, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
}

static fr_status gen_case(const fr_golden_case *c, const char *dir, FILE *mf)
{
    fr_st_file f;
    FR_TRY(fr_golden_build(c, &f));
    void *buf = NULL;
    size_t len = 0;
    char path[4096], hex[17];
    case_path(dir, c->name, path, sizeof path);
    fr_status s = fr_st_write_mem(&f, &buf, &len);
    if (s == FR_OK) s = fr_st_write(&f, path);
    if (s == FR_OK) {
        fr_digest_hex(fr_digest_bytes(buf, len), hex);
        fprintf(mf, "file %s %zu %s\n", c->name, len, hex);
        for (size_t i = 0; i < f.n; i++) {
            char sh[96];
            shape_str(&f.entries[i].t, sh, sizeof sh);
            fr_digest_hex(fr_tensor_digest(&f.entries[i].t), hex);
            fprintf(mf, "tensor %s %s %s %s %s\n", c->name, f.entries[i].name,
                    fr_dtype_name(f.entries[i].t.dtype), sh, hex);
        }
    }
    free(buf);
    fr_st_free(&f);
    return s;
}

/* MANIFEST: a header, then every case's lines as gen_case writes its file. */
static fr_status write_manifest(FILE *mf, const char *tmp, void *user)
{
    (void)tmp;
    const char *dir = user;
    fprintf(mf, "# flowrl golden set (golden/README.md): written by `%s`; never edit by hand.\n"
                "# file CASE BYTES XXH3-64(file) / tensor CASE NAME DTYPE SHAPE XXH3-64(tensor)\n",
            FR_GOLDEN_COMMAND);
    fprintf(mf, "format %s\nflowrl %s\ncommand %s\nseed 0x%08x purpose %d\n", FR_GOLDEN_FORMAT,
            fr_version(), FR_GOLDEN_COMMAND, FR_GOLDEN_SEED, FR_RNG_GOLDEN);
    fr_status s = FR_OK;
    for (size_t i = 0; i < fr_golden_count() && s == FR_OK; i++)
        s = gen_case(fr_golden_get(i), dir, mf);
    return s;
}

fr_status fr_golden_gen(const char *dir, int force)
{
    char path[4096];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fr_fail(FR_ERR_IO, "golden gen: %s is not a directory", dir);
    snprintf(path, sizeof path, "%s/%s", dir, FR_GOLDEN_MANIFEST);
    if (!force) {
        if (exists(path))
            return fr_fail(FR_ERR_ARG, "golden gen: %s exists; pass --force to overwrite the set", path);
        for (size_t i = 0; i < fr_golden_count(); i++) {
            char p[4096];
            case_path(dir, fr_golden_get(i)->name, p, sizeof p);
            if (exists(p))
                return fr_fail(FR_ERR_ARG, "golden gen: %s exists; pass --force to overwrite the set", p);
        }
    }
    return fr_atomic_write(path, write_manifest, (void *)dir);
}
