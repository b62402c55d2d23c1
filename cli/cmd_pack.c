/* flowrl pack RUNDIR -o FILE.tar.zst: a run directory as one deterministic archive
 * (include/flowrl/archive.h). */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/archive.h"

static void help(void)
{
    printf("Usage: flowrl pack RUNDIR -o FILE.tar.zst [--force]\n\n"
           "Packs a run directory (config.json, metrics.jsonl, audit.log, checkpoints/,\n"
           "samples/, ...) into one zstd-compressed tar via libarchive. The archive is\n"
           "deterministic: members sorted by path, relative to RUNDIR (no top-level folder),\n"
           "mtime 0, uid/gid 0, modes 0644/0755, zstd level %d, so the same run packs to the\n"
           "same bytes. Only regular files and directories are stored (a symlink is an\n"
           "error). FILE is written through a temporary file and renamed, so it is never\n"
           "half-written. `flowrl audit` and `flowrl tensors` read such archives in place;\n"
           "to extract: mkdir R && tar -C R -xf FILE.tar.zst\n\n"
           "Options:\n"
           "  -o FILE     the archive to write (must end in .tar.zst, must not be inside RUNDIR)\n"
           "  --force     replace FILE if it exists\n"
           "  -h, --help  this text\n\n"
           "Exit status: 0 packed, 1 failure (FILE exists, unreadable RUNDIR, ...), 2 usage error.\n",
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

int cmd_pack(int argc, char **argv)
{
    if (fr_cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *dir = NULL, *out = NULL;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "flowrl pack: %s needs a FILE\n", argv[i]);
                return 2;
            }
            out = argv[++i];
        } else if (strcmp(argv[i], "--force") == 0) {
            force = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "flowrl pack: unknown option '%s' (flowrl pack --help)\n", argv[i]);
            return 2;
        } else if (dir) {
            fprintf(stderr, "flowrl pack: one RUNDIR expected, got '%s' and '%s'\n", dir, argv[i]);
            return 2;
        } else {
            dir = argv[i];
        }
    }
    if (!dir || !out) {
        fprintf(stderr, "Usage: flowrl pack RUNDIR -o FILE.tar.zst [--force]   (flowrl pack --help)\n");
        return 2;
    }
    size_t lo = strlen(out);
    if (lo < 9 || strcmp(out + lo - 8, ".tar.zst") != 0) {
        fprintf(stderr, "flowrl pack: the archive name must end in .tar.zst (got '%s')\n", out);
        return 2;
    }
    if (inside(dir, out)) {
        fprintf(stderr, "flowrl pack: %s would be inside the run directory %s; write it elsewhere\n", out, dir);
        return 2;
    }
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
