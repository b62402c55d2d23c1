/* The environment block of an audit log: every vendor guarantee is conditional on library
 * versions, thread counts and the hardware, so each log records them
 * (docs/algorithms/numerics.md §7 item 7). */
#include <archive.h>
#include <cJSON.h>
#include <png.h>
#include <stdio.h>
#include <sys/utsname.h>
#include <xxhash.h>

#include "config.h"
#include "core/audit_internal.h"
#include "flowrl/buildinfo.h"
#include "flowrl/opt.h"
#if FR_HAVE_OPENBLAS
#include <cblas.h>
#endif
#if FR_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

int fr_audit_put_env(FILE *f, const char *key, const char *value)
{
    if (fprintf(f, "env %s ", key) < 0) return -1;
    if (!value || !*value) return fputs("-\n", f) < 0 ? -1 : 0;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if (fputc(*p < 0x20 || *p == 0x7F ? ' ' : *p, f) == EOF) return -1;
    return fputc('\n', f) == EOF ? -1 : 0;
}

fr_status fr_audit_write_env(FILE *f, const fr_audit_opts *opts, const char *path)
{
    char buf[512];
    int bad = 0;
    bad |= fr_audit_put_env(f, "format.version", "1");
    bad |= fr_audit_put_env(f, "flowrl.version", fr_version());
    bad |= fr_audit_put_env(f, "build.compiler", fr_build_compiler());
    bad |= fr_audit_put_env(f, "build.target", fr_build_target());
    bad |= fr_audit_put_env(f, "build.flags", fr_build_flags());
    bad |= fr_audit_put_env(f, "build.configure", FR_CONFIGURE_ARGS[0] ? FR_CONFIGURE_ARGS : "(no options)");
    bad |= fr_audit_put_env(f, "fp.selftest", fr_fp_selftest() == FR_OK ? "ok" : fr_last_error());
    bad |= fr_audit_put_env(f, "backend", opts ? opts->backend : NULL);
    snprintf(buf, sizeof buf, "%d", opts ? opts->threads : 0);
    bad |= fr_audit_put_env(f, "threads", buf);
    bad |= fr_audit_put_env(f, "cpu.features", fr_cpu_features(buf, sizeof buf));
    bad |= fr_audit_put_env(f, "opt.path", fr_opt_simd_name());
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(buf, sizeof buf, "%s %s %s", u.machine, u.sysname, u.release);
        bad |= fr_audit_put_env(f, "host.arch", buf);
    }
    unsigned v = XXH_versionNumber();
    snprintf(buf, sizeof buf, "%u.%u.%u", v / 10000, v / 100 % 100, v % 100);
    bad |= fr_audit_put_env(f, "lib.xxhash", buf);
    bad |= fr_audit_put_env(f, "lib.cjson", cJSON_Version());
    bad |= fr_audit_put_env(f, "lib.libpng", png_get_libpng_ver(NULL));
    /* Composed from the single getters: archive_version_details() of libarchive 3.6 leaks a
     * buffer on every call. */
    const char *zstd = archive_libzstd_version(), *z = archive_zlib_version();
    snprintf(buf, sizeof buf, "%s zlib/%s libzstd/%s", archive_version_string(), z ? z : "none", zstd ? zstd : "none");
    bad |= fr_audit_put_env(f, "lib.libarchive", buf);
#if FR_HAVE_OPENBLAS
    bad |= fr_audit_put_env(f, "lib.openblas", openblas_get_config());
    snprintf(buf, sizeof buf, "%d", openblas_get_num_threads());
    bad |= fr_audit_put_env(f, "openblas.threads", buf);
#endif
#if FR_HAVE_ONEDNN
    const dnnl_version_t *dv = dnnl_version();
    snprintf(buf, sizeof buf, "%d.%d.%d", dv->major, dv->minor, dv->patch);
    bad |= fr_audit_put_env(f, "lib.onednn", buf);
#endif
    if (opts) {
        for (size_t i = 0; i < opts->n_extra; i++) {
            const char *k = opts->extra[i].key;
            if (!k || !fr_audit_key_ok(k, strlen(k)))
                return fr_fail(FR_ERR_ARG, "%s: env key '%s' is not [A-Za-z0-9._-]+", path, k ? k : "(null)");
            bad |= fr_audit_put_env(f, k, opts->extra[i].value);
        }
    }
    if (bad) return fr_fail(FR_ERR_IO, "%s: writing the environment block failed", path);
    return FR_OK;
}
