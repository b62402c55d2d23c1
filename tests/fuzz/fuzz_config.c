/* libFuzzer target for the config.json reader (fr_opts_read_json, core/opts_json.c) over
 * the option set of `flowrl train --algo flow-grpo` (fr_run_opts_bind): any bytes must set
 * the options or fail with FR_ERR_FORMAT / FR_ERR_NOMEM and a message, never crash, read
 * out of bounds or leak. A file that reads must also round-trip: written back by
 * fr_opts_write_json and read into fresh structs, every saved row formats to the same
 * text (path rows excepted: a relative path reads back as its "<key>_abs").
 * The reader takes a path, so each input is written to a per-process temporary file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/algo.h"
#include "flowrl/opts.h"
#include "flowrl/run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the keys `flowrl train` itself skips (core/run.c, cli/cmd_train.c) */
static const char *const k_ignore[] = {"resolved", "base_digest", "base_abs", "out_abs", NULL};

typedef struct {
    fr_opts o;
    fr_run_opts ro;
    void *ao;
} bound;

/* The train options with their defaults, as cmd_train sets them up before --config. */
static int bind_train(bound *b, const fr_algo *a)
{
    memset(b, 0, sizeof *b);
    b->ao = calloc(1, a->opts_size ? a->opts_size : 1);
    if (!b->ao) return 0;
    if (fr_run_opts_defaults(&b->o, &b->ro, a, b->ao) != FR_OK) abort(); /* the rows' defaults must parse */
    return 1;
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

/* Every saved, non-path row of x and y formats to the same text. */
static void same_values(const bound *x, const bound *y)
{
    for (int g = 0; g < x->o.ng; g++)
        for (int i = 0; i < x->o.g[g].n; i++) {
            const fr_opt *r = &x->o.g[g].rows[i];
            if (r->flags & (FR_OPT_NOT_SAVED | FR_OPT_PATH)) continue;
            char tx[FR_OPT_PATH_MAX + 64], ty[FR_OPT_PATH_MAX + 64];
            fr_opt_format(r, x->o.s[x->o.g[g].which], tx, sizeof tx);
            fr_opt_format(r, y->o.s[y->o.g[g].which], ty, sizeof ty);
            if (strcmp(tx, ty) != 0) {
                fprintf(stderr, "fuzz_config: %s reads back as '%s', was '%s'\n", r->key, ty, tx);
                abort();
            }
        }
}

static char in_path[64], out_path[64];

/* libFuzzer ends with exit(): the temporary files go with it */
static void remove_files(void)
{
    unlink(in_path);
    unlink(out_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!in_path[0]) {
        snprintf(in_path, sizeof in_path, "/tmp/fuzz_config.%d.json", (int)getpid());
        snprintf(out_path, sizeof out_path, "/tmp/fuzz_config.%d.out.json", (int)getpid());
        atexit(remove_files);
    }
    const fr_algo *a;
    if (fr_algo_find("flow-grpo", &a) != FR_OK) abort();
    if (!write_file(in_path, data, size)) return 0;
    bound b, back;
    if (!bind_train(&b, a)) return 0;
    fr_status s = fr_opts_read_json(&b.o, in_path, k_ignore);
    if (s != FR_OK) {
        if (s != FR_ERR_FORMAT && s != FR_ERR_NOMEM) abort();
        if (fr_last_error()[0] == '\0') abort();
        free(b.ao);
        return 0;
    }
    /* values the reader accepted are in range: the engine's own check agrees */
    if (fr_opts_check(&b.o) != FR_OK) {
        fprintf(stderr, "fuzz_config: read, then fr_opts_check: %s\n", fr_last_error());
        abort();
    }
    if (fr_opts_write_json(&b.o, NULL, 0, out_path) == FR_OK && bind_train(&back, a)) {
        if (fr_opts_read_json(&back.o, out_path, k_ignore) != FR_OK) {
            fprintf(stderr, "fuzz_config: written config does not read back: %s\n", fr_last_error());
            abort();
        }
        same_values(&b, &back);
        free(back.ao);
    }
    free(b.ao);
    return 0;
}
