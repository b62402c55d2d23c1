/* flowrl pack RUNDIR -o FILE.tar.zst: a run directory as one deterministic archive
 * (include/flowrl/archive.h). */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "flowrl/archive.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: flowrl pack RUNDIR -o FILE.tar.zst [--force]\n\n"
           "Packs a run directory (config.json, metrics.jsonl, audit.log, checkpoints/,\n"
           "samples/, ...) into one zstd-compressed tar via libarchive. The archive is\n"
           "deterministic: members sorted by path, relative to RUNDIR (no top-level folder),\n"
           "mtime 0, uid/gid 0, modes 0644/0755, zstd level %d, so the same run packs to the\n"
           "same bytes. Only regular files and directories are stored (a symlink is an\n"
           "error). FILE is written through a temporary file and renamed, so it is never\n"
           "half-written. `flowrl audit` and `flowrl tensors` read such archives in place;\n"
           "to extract: mkdir R && tar -C R -xf FILE.tar.zst\n"
           "RUNDIR must be a run directory (audit.log and config.json in it).\n\n"
           "Exit status: 0 packed, 1 failure (FILE exists, RUNDIR not a run or unreadable, ...),\n"
           "2 usage error.\n",
           FR_ARCHIVE_ZSTD_LEVEL);
}

/* 1 if OUT would land inside DIR (compared by resolved paths). */
static int inside(const char *dir, const char *out)
{
    char rd[PATH_MAX], ro[PATH_MAX], tmp[PATH_MAX];
    if (!realpath(dir, rd)) return 0;
    snprintf(tmp, sizeof tmp, "%s", out);
    if (!realpath(dirname(tmp), ro)) return 0;
    size_t l = strlen(rd);
    return strcmp(ro, rd) == 0 || (strncmp(ro, rd, l) == 0 && (ro[l] == '/' || rd[l - 1] == '/'));
}

typedef struct {
    char output[FR_OPT_PATH_MAX];
    int force;
} pack_opts;

static const fr_opt k_rows[] = {
    FR_OPT_ROW_(pack_opts, output, "output", FR_OPT_STR, "", 0, 0, NULL,
                "-o FILE: the archive to write (must end in .tar.zst, must not be inside RUNDIR)", FR_OPT_PATH, "-o",
                "FILE"),
    FR_OPT_BOOL(pack_opts, force, "force", "false", "replace FILE if it exists", 0),
};

/* A run directory holds audit.log and config.json (flowrl train writes both first). */
static int is_run(const char *dir)
{
    char p[PATH_MAX];
    struct stat sb;
    snprintf(p, sizeof p, "%s/audit.log", dir);
    if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
    snprintf(p, sizeof p, "%s/config.json", dir);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

int cmd_pack(int argc, char **argv)
{
    pack_opts po;
    fr_opts o = {.cmd = "pack", .s = {&po}};
    fr_opts_add(&o, "Options", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("pack", FR_ERR_IO);
    const char *dir = NULL;
    int n_pos = 0;
    int rc = fr_cli_opts(&o, argc, argv, usage, &dir, 1, &n_pos, NULL);
    if (rc >= 0) return rc;
    if (!n_pos || !po.output[0]) return fr_cli_usage("pack", "RUNDIR and -o FILE.tar.zst are required");
    const char *out = po.output;
    const int force = po.force;
    size_t lo = strlen(out);
    if (lo < 9 || strcmp(out + lo - 8, ".tar.zst") != 0) {
        fprintf(stderr, "flowrl pack: the archive name must end in .tar.zst (got '%s')\n", out);
        return 2;
    }
    if (inside(dir, out)) {
        fprintf(stderr, "flowrl pack: %s would be inside the run directory %s; write it elsewhere\n", out, dir);
        return 2;
    }
    if (!is_run(dir))
        return fr_cli_error("pack", "%s is not a run directory (no audit.log and config.json in it)", dir);
    if (fr_archive_pack_dir(dir, out, force) != FR_OK) return fr_cli_error("pack", "%s", fr_last_error());
    fr_archive_member *m;
    size_t n;
    if (fr_archive_list(out, &m, &n) != FR_OK) return fr_cli_error("pack", "%s", fr_last_error());
    size_t files = 0;
    unsigned long long bytes = 0;
    for (size_t i = 0; i < n; i++)
        if (!m[i].is_dir) {
            files++;
            bytes += m[i].size;
        }
    fr_archive_members_free(m, n);
    printf("%s: %zu files, %zu directories, %llu bytes before compression\n", out, files, n - files, bytes);
    return 0;
}
