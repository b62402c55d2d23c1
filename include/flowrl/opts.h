/* The option engine: every option of every command and algorithm declared once, as a row
 * (flag, struct field, default, range, enum names, help, flags). From the rows come argv
 * parsing, `--help`, range errors, config.json (write and read back), checkpoint metadata
 * and the resume compatibility check, so an option cannot mean two things in two places.
 *
 * Rows point into a C struct by offset. A command's options are several groups (shared ones
 * such as FR_OPTS_BACKEND, FR_OPTS_SAMPLING, FR_OPTS_OPTIM, FR_OPTS_RUN, FR_OPTS_EVAL, then
 * its own), each with the index of the struct its offsets refer to, so a run's common options
 * (struct 0) and an algorithm's own (struct 1) are parsed and written in one pass.
 *
 *   static const fr_opt k_rows[] = {
 *       FR_OPT_F32(my_opts, lr, "lr", "3e-4", 0, 1, "AdamW learning rate", FR_OPT_RESUMABLE),
 *       ...
 *   };
 *
 * Naming: one meaning, one name, in every command; names follow the public configs'
 * vocabulary where one exists (flow_grpo's config: num_steps, guidance_scale, noise_level,
 * clip_range, adv_clip_max, beta, learning_rate → lr, max_grad_norm). The flag is the key with
 * '_' → '-' ("max_grad_norm" → --max-grad-norm). A renamed option keeps its old flag as
 * `alias` for one release: accepted, with one warning line on stderr naming the new flag. */
#ifndef FLOWRL_OPTS_H
#define FLOWRL_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "flowrl/status.h"

typedef enum {
    FR_OPT_I64,  /* int64_t */
    FR_OPT_U32,  /* uint32_t (seeds; decimal or 0x hex) */
    FR_OPT_INT,  /* int */
    FR_OPT_F32,  /* float: the text is parsed as double, range-checked, then rounded once */
    FR_OPT_F64,  /* double */
    FR_OPT_BOOL, /* int 0/1: a flag (--name sets 1, --no-name sets 0); JSON true/false */
    FR_OPT_TRI,  /* int -1 (auto) / 0 / 1: --name VALUE with VALUE in auto|on|off */
    FR_OPT_ENUM, /* int: index into names (NULL-terminated); --name NAME */
    FR_OPT_STR   /* char[size] */
} fr_opt_kind;

enum {
    FR_OPT_RESUMABLE = 1u << 0, /* --resume may change it (epochs, lr, intervals, eval, ...):
                                   not part of the checkpoint's identity metadata */
    FR_OPT_NOT_SAVED = 1u << 1, /* never in config.json nor metadata (backend, threads, fast,
                                   --force, --config): how a run is executed, not what it is */
    FR_OPT_PATH = 1u << 2,      /* FR_OPT_STR holding a file path: config.json stores it as
                                   given and also "<key>_abs" (resolved at write time), so a
                                   resume from another directory finds the file */
    FR_OPT_HIDDEN = 1u << 3     /* left out of --help (test-only switches) */
};

typedef struct {
    const char *key;                /* config.json / metadata key, e.g. "max_grad_norm" */
    fr_opt_kind kind;
    size_t off;                     /* offsetof(struct, field) */
    size_t size;                    /* FR_OPT_STR: buffer size; else sizeof the field */
    const char *def;                /* default as text, parsed like argv ("3e-4", "sde", "");
                                       NULL = leave the field as the struct initialiser has it */
    double lo, hi;                  /* inclusive range of numeric kinds (both 0: unchecked) */
    const char *const *names;       /* FR_OPT_ENUM: NULL-terminated value names */
    const char *help;               /* one line; the default is appended by --help */
    unsigned flags;                 /* FR_OPT_* above */
    const char *alias;              /* deprecated flag ("--steps"), or NULL; a single-dash
                                       alias ("-o") is a short form, accepted silently */
    const char *metavar;            /* "N", "X", "PATH" in --help; NULL = derived from kind */
} fr_opt;

/* Row constructors (the struct type T and field f give offset and size). */
#define FR_OPT_ROW_(T, f, key, kind, def, lo, hi, names, help, flags, alias, mv) \
    { (key), (kind), offsetof(T, f), sizeof(((T *)0)->f), (def), (lo), (hi), (names), (help), (flags), (alias), (mv) }
#define FR_OPT_I64(T, f, key, def, lo, hi, help, flags) FR_OPT_ROW_(T, f, key, FR_OPT_I64, def, lo, hi, NULL, help, flags, NULL, NULL)
#define FR_OPT_U32(T, f, key, def, help, flags) FR_OPT_ROW_(T, f, key, FR_OPT_U32, def, 0, 4294967295.0, NULL, help, flags, NULL, NULL)
#define FR_OPT_INT(T, f, key, def, lo, hi, help, flags) FR_OPT_ROW_(T, f, key, FR_OPT_INT, def, lo, hi, NULL, help, flags, NULL, NULL)
#define FR_OPT_F32(T, f, key, def, lo, hi, help, flags) FR_OPT_ROW_(T, f, key, FR_OPT_F32, def, lo, hi, NULL, help, flags, NULL, NULL)
#define FR_OPT_F64(T, f, key, def, lo, hi, help, flags) FR_OPT_ROW_(T, f, key, FR_OPT_F64, def, lo, hi, NULL, help, flags, NULL, NULL)
#define FR_OPT_BOOL(T, f, key, def, help, flags) FR_OPT_ROW_(T, f, key, FR_OPT_BOOL, def, 0, 1, NULL, help, flags, NULL, NULL)
#define FR_OPT_TRI(T, f, key, def, help, flags) FR_OPT_ROW_(T, f, key, FR_OPT_TRI, def, -1, 1, NULL, help, flags, NULL, NULL)
#define FR_OPT_ENUM(T, f, key, def, names, help, flags) FR_OPT_ROW_(T, f, key, FR_OPT_ENUM, def, 0, 0, names, help, flags, NULL, NULL)
#define FR_OPT_STR(T, f, key, def, help, flags) FR_OPT_ROW_(T, f, key, FR_OPT_STR, def, 0, 0, NULL, help, flags, NULL, NULL)

typedef struct {
    const char *title;  /* --help section ("Sampling", "Optimiser", "Flow-GRPO", ...) */
    const fr_opt *rows;
    int n;
    int which;          /* index into the structs array of every call below */
} fr_opt_group;

/* The set of options a command takes: groups over up to FR_OPTS_MAX_STRUCTS structs. */
#define FR_OPTS_MAX_GROUPS 16
#define FR_OPTS_MAX_STRUCTS 12
typedef struct {
    const char *cmd;                    /* "train", for messages: "flowrl train: ..." */
    fr_opt_group g[FR_OPTS_MAX_GROUPS];
    int ng;
    void *s[FR_OPTS_MAX_STRUCTS];       /* the structs the groups' offsets refer to */
} fr_opts;

/* Which rows argv set explicitly (for "the user changed X on resume"), by group and row. */
typedef struct {
    uint8_t set[FR_OPTS_MAX_GROUPS][64];
} fr_opts_seen;

/* Every row with a def gets its default. */
fr_status fr_opts_defaults(const fr_opts *o);

/* Parses argv[first..argc-1]. Options: "--flag VALUE", "--flag=VALUE", bool "--flag" /
 * "--no-flag"; positional arguments (not starting with "--", or after "--") go to
 * positional[0..*n_positional) up to max_positional (NULL/0: none allowed).
 * Errors are FR_ERR_ARG with one line: "unknown option --x (did you mean --y?)",
 * "--lr: '2e' is not a number", "--lr: 12 is outside [0, 1]", "--sampler: 'xx' is not one
 * of sde, cps, ...", "--epochs: missing value". A deprecated alias prints one warning line
 * "flowrl CMD: --steps is deprecated, use --num-steps" to stderr (once per process per alias).
 * seen may be NULL. "-h"/"--help" is not handled here (fr_opts_wants_help). */
fr_status fr_opts_parse(const fr_opts *o, int argc, char **argv, int first, const char **positional,
                        int max_positional, int *n_positional, fr_opts_seen *seen);

/* 1 if argv holds -h or --help. */
int fr_opts_wants_help(int argc, char **argv);

/* --help: for each group its title and one line per row (hidden rows skipped):
 *   "  --max-grad-norm X      global gradient-norm clip, 0 = off (1)"
 * with the default in parentheses as the row's current value (call after fr_opts_defaults). */
void fr_opts_help(const fr_opts *o, FILE *f);

/* Range / enum checks of every row's current value (values set by code or JSON, not argv):
 * FR_ERR_ARG "KEY: VALUE is outside [lo, hi]" naming the key. */
fr_status fr_opts_check(const fr_opts *o);

/* A row's value as text, the shortest form that reads back to the same bits
 * (floats "%.Ng" with the smallest N >= 6 (float) / 15 (double) that round-trips, the text
 * cff6d07's config.json and metadata hold; enums by name; bools true/false; tri auto/true/false). */
void fr_opt_format(const fr_opt *r, const void *st, char *buf, size_t n);
/* Sets a row from text, with range and enum checks; errors name `where` ("--lr",
 * "run/config.json: lr"). */
fr_status fr_opt_set(const fr_opt *r, void *st, const char *text, const char *where);

/* config.json: one JSON object, every saved row by key (FR_OPT_NOT_SAVED rows left out),
 * plus the extra string pairs (n_extra, may be 0) — e.g. "algo", "base_digest".
 * Written atomically (write, fsync, rename). */
typedef struct {
    const char *key, *value;
} fr_opts_kv;
fr_status fr_opts_write_json(const fr_opts *o, const fr_opts_kv *extra, int n_extra, const char *path);
/* Reads it back: known keys set their rows (aliases of renamed keys accepted: a row whose
 * `alias` is "--old-name" also accepts JSON key "old_name"); keys in `ignore` (NULL-terminated,
 * may be NULL) are skipped; any other key is FR_ERR_FORMAT "PATH: unknown key 'x'"; keys
 * missing from an older file keep their current values. A FR_OPT_PATH row given as a
 * relative path takes its "<key>_abs" when the file has one (the path was relative to the
 * directory the run started in). Value errors are FR_ERR_FORMAT "PATH: key: what". */
fr_status fr_opts_read_json(const fr_opts *o, const char *path, const char *const *ignore);
/* The string value of a top-level key of a JSON file into buf ("" if absent). */
fr_status fr_opts_json_string(const char *path, const char *key, char *buf, size_t n);

/* Checkpoint metadata: every saved, non-resumable row as "PREFIX<key>" = text (its
 * identity: a resume with a different value is refused). add(kv, user) receives each pair. */
typedef fr_status (*fr_opts_meta_fn)(const char *key, const char *value, void *user);
fr_status fr_opts_to_meta(const fr_opts *o, const char *prefix, fr_opts_meta_fn add, void *user);

/* Resume: `now` holds config.json's values overridden by argv (seen says which rows argv
 * set). A seen row that is not FR_OPT_RESUMABLE and whose value differs from `saved` is
 * FR_ERR_ARG "--noise cannot change on resume (the run has 0.7)". o and saved have the
 * same groups over different structs. */
fr_status fr_opts_resume_check(const fr_opts *now, const fr_opts *saved, const fr_opts_seen *seen);

/* The row for a key (NULL if none), and its struct. */
const fr_opt *fr_opts_find(const fr_opts *o, const char *key, void **st);
/* 1 if argv set the row of `key` (seen from fr_opts_parse), else 0. */
int fr_opts_seen_key(const fr_opts *o, const fr_opts_seen *seen, const char *key);

#endif
