/* The option engine (core/opts*.c, flowrl/opts.h), the shared groups (core/opt_groups.c)
 * and the enum-name helpers (core/enum_names.c). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/enum_names.h"
#include "flowrl/opt_groups.h"
#include "flowrl/ops.h"
#include "flowrl/opts.h"
#include "flowrl/reward_cmd.h"
#include "tests/suites.h"
#include "tests/testutil.h"

typedef struct {
    int64_t n;
    uint32_t seed;
    int k;
    float lr, eps, free_f;
    double x;
    int flag, tri, kind, secret;
    char path[128];
} t_opts;

static const char *const k_kinds[] = {"alpha", "beta", "gamma", NULL};

static const fr_opt k_rows[] = {
    FR_OPT_ROW_(t_opts, n, "num_steps", FR_OPT_I64, "10", 1, 100, NULL, "steps", 0, "--steps", NULL),
    FR_OPT_U32(t_opts, seed, "seed", "42", "seed", 0),
    FR_OPT_INT(t_opts, k, "k", "3", -5, 5, "an int", FR_OPT_RESUMABLE),
    FR_OPT_F32(t_opts, lr, "lr", "3e-4", 0, 1, "learning rate", FR_OPT_RESUMABLE),
    FR_OPT_F32(t_opts, eps, "eps", "1e-8", 0, 1, "epsilon", 0),
    FR_OPT_F32(t_opts, free_f, "free_f", "0", 0, 0, "an unchecked float", 0),
    FR_OPT_F64(t_opts, x, "x", "0.1", 0, 0, "a double", 0),
    FR_OPT_BOOL(t_opts, flag, "flag", "false", "a switch", 0),
    FR_OPT_TRI(t_opts, tri, "tri", "auto", "a tri-state", 0),
    FR_OPT_ENUM(t_opts, kind, "kind", "beta", k_kinds, "a kind", 0),
    FR_OPT_ROW_(t_opts, path, "path", FR_OPT_STR, "", 0, 0, NULL, "a file", FR_OPT_PATH, NULL, NULL),
    FR_OPT_BOOL(t_opts, secret, "secret", "false", "a test-only switch", FR_OPT_HIDDEN),
};

static t_opts g_t;
static fr_backend_opts g_b;
static fr_opts g_o;
static fr_opts_seen g_seen;
static char g_dir[256];

static void setup(void)
{
    memset(&g_t, 0, sizeof g_t);
    memset(&g_b, 0, sizeof g_b);
    g_o = (fr_opts){.cmd = "test"};
    g_o.s[0] = &g_t;
    g_o.s[1] = &g_b;
    fr_opts_add(&g_o, "Test", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    fr_opts_add(&g_o, "Backend", fr_backend_rows, fr_backend_nrows, 1);
    ck_assert_int_eq(fr_opts_defaults(&g_o), FR_OK);
    fr_test_mkdtemp(g_dir, sizeof g_dir, "opts");
}

static void teardown(void) { fr_test_rmtree(g_dir); }

/* Parses a space-separated command line (no quoting) after the command word. */
static fr_status parse(const char *line, const char **pos, int max_pos, int *n_pos)
{
    static char buf[1024];
    char *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "test %s", line);
    for (char *t = strtok(buf, " "); t && argc < 64; t = strtok(NULL, " ")) argv[argc++] = t;
    return fr_opts_parse(&g_o, argc, argv, 1, pos, max_pos, n_pos, &g_seen);
}

static void expect_error(const char *line, const char *msg)
{
    fr_status s = parse(line, NULL, 0, NULL);
    ck_assert_msg(s == FR_ERR_ARG, "'%s': status %d", line, (int)s);
    ck_assert_msg(strcmp(fr_last_error(), msg) == 0, "'%s': got \"%s\", want \"%s\"", line, fr_last_error(), msg);
}

START_TEST(test_defaults)
{
    ck_assert_int_eq(g_t.n, 10);
    ck_assert_uint_eq(g_t.seed, 42);
    ck_assert_int_eq(g_t.k, 3);
    ck_assert(fr_test_bits_equal(g_t.lr, 3e-4f));
    ck_assert(fr_test_bits_equal(g_t.eps, 1e-8f));
    ck_assert(g_t.x == 0.1);
    ck_assert_int_eq(g_t.flag, 0);
    ck_assert_int_eq(g_t.tri, -1);
    ck_assert_int_eq(g_t.kind, 1);
    ck_assert_str_eq(g_t.path, "");
    ck_assert_int_eq(g_b.threads, 0);
}
END_TEST

START_TEST(test_every_kind_parses)
{
    const char *pos[2];
    int n_pos;
    ck_assert_int_eq(parse("--num-steps 7 --seed 0x10 --k=-2 --lr 0.1 pos1 --x=1e-300 --flag --tri off "
                           "--kind gamma --path a/b --backend ref --threads 3 pos2",
                           pos, 2, &n_pos),
                     FR_OK);
    ck_assert_int_eq(g_t.n, 7);
    ck_assert_uint_eq(g_t.seed, 16);
    ck_assert_int_eq(g_t.k, -2);
    ck_assert(fr_test_bits_equal(g_t.lr, 0.1f));
    ck_assert(g_t.x == 1e-300);
    ck_assert_int_eq(g_t.flag, 1);
    ck_assert_int_eq(g_t.tri, 0);
    ck_assert_int_eq(g_t.kind, 2);
    ck_assert_str_eq(g_t.path, "a/b");
    ck_assert_str_eq(g_b.backend, "ref");
    ck_assert_int_eq(g_b.threads, 3);
    ck_assert_int_eq(n_pos, 2);
    ck_assert_str_eq(pos[0], "pos1");
    ck_assert_str_eq(pos[1], "pos2");
    ck_assert_int_eq(g_seen.set[0][0], 1);
    ck_assert_int_eq(g_seen.set[0][5], 0); /* free_f not given */
    ck_assert_int_eq(parse("--no-flag --tri=on -- --not-an-option", pos, 2, &n_pos), FR_OK);
    ck_assert_int_eq(g_t.flag, 0);
    ck_assert_int_eq(g_t.tri, 1);
    ck_assert_int_eq(n_pos, 1);
    ck_assert_str_eq(pos[0], "--not-an-option");
    ck_assert_int_eq(parse("--seed 010", NULL, 0, NULL), FR_OK);
    ck_assert_uint_eq(g_t.seed, 10); /* decimal, not octal */
    ck_assert_int_eq(parse("--flag=true --tri auto --seed 4294967295", NULL, 0, NULL), FR_OK);
    ck_assert_int_eq(g_t.flag, 1);
    ck_assert_int_eq(g_t.tri, -1);
    ck_assert_uint_eq(g_t.seed, 4294967295u);
}
END_TEST

START_TEST(test_errors_name_the_flag)
{
    expect_error("--num-steps 0", "--num-steps: 0 is outside [1, 100]");
    expect_error("--num-steps 101", "--num-steps: 101 is outside [1, 100]");
    expect_error("--num-steps 2.5", "--num-steps: '2.5' is not an integer");
    expect_error("--lr 2e", "--lr: '2e' is not a number");
    expect_error("--lr 12", "--lr: 12 is outside [0, 1]");
    expect_error("--lr nan", "--lr: 'nan' is not a finite number");
    expect_error("--free-f 1e39", "--free-f: '1e39' overflows a float");
    expect_error("--seed -1", "--seed: '-1' is not a 32-bit unsigned integer");
    expect_error("--seed 4294967296", "--seed: '4294967296' is too large");
    expect_error("--kind delta", "--kind: 'delta' is not one of alpha, beta, gamma");
    expect_error("--tri maybe", "--tri: 'maybe' is not one of auto, on, off");
    expect_error("--k", "--k: missing value");
    expect_error("--k --flag", "--k: missing value");
    expect_error("--num-step 3", "unknown option --num-step (did you mean --num-steps?)");
    expect_error("--thread 3", "unknown option --thread (did you mean --threads?)");
    expect_error("--zzzzzzzzzz", "unknown option --zzzzzzzzzz");
    expect_error("--no-flag=1", "--no-flag takes no value");
    expect_error("--no-lr", "unknown option --no-lr (did you mean --lr?)");
    expect_error("stray", "unexpected argument 'stray'");
    const char *pos[1];
    int n;
    ck_assert_int_eq(parse("a b", pos, 1, &n), FR_ERR_ARG);
    ck_assert_str_eq(fr_last_error(), "at most 1 argument expected, got also 'b'");
    /* a value set by code is checked too, naming the key */
    g_t.lr = 5.0f;
    ck_assert_int_eq(fr_opts_check(&g_o), FR_ERR_ARG);
    ck_assert_str_eq(fr_last_error(), "lr: 5 is outside [0, 1]");
    g_t.lr = 0.5f;
    g_t.kind = 7;
    ck_assert_int_eq(fr_opts_check(&g_o), FR_ERR_ARG);
    g_t.kind = 0;
    ck_assert_int_eq(fr_opts_check(&g_o), FR_OK);
}
END_TEST

/* Runs parse with stderr sent to a file; returns what was written there. */
static void parse_capturing_stderr(const char *line, char *err, size_t n)
{
    char path[300];
    snprintf(path, sizeof path, "%s/stderr", g_dir);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    fr_status s = parse(line, NULL, 0, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(fd);
    close(saved);
    ck_assert_msg(s == FR_OK, "%s", fr_last_error());
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t got = fread(err, 1, n - 1, f);
    err[got] = '\0';
    fclose(f);
}

START_TEST(test_alias_warns_once_and_works)
{
    char err[512];
    parse_capturing_stderr("--steps 5", err, sizeof err);
    ck_assert_int_eq(g_t.n, 5);
    ck_assert_int_eq(g_seen.set[0][0], 1);
    ck_assert_str_eq(err, "flowrl test: --steps is deprecated, use --num-steps\n");
    parse_capturing_stderr("--steps=6", err, sizeof err);
    ck_assert_int_eq(g_t.n, 6);
    ck_assert_str_eq(err, ""); /* once per process */
    /* errors through the alias name what the user typed */
    expect_error("--steps 0", "--steps: 0 is outside [1, 100]");
}
END_TEST

static void file_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

START_TEST(test_json_round_trip_is_bit_exact)
{
    char path[300];
    file_path(path, sizeof path, "config.json");
    uint64_t rng = 12345; /* printed on failure */
    for (int trial = 0; trial < 300; trial++) {
        t_opts want = g_t;
        if (trial > 0) { /* trial 0: the defaults 3e-4f, 1e-8f, 0.1 */
            uint32_t u;
            uint64_t d;
            do {
                u = (uint32_t)fr_test_next(&rng);
                memcpy(&want.free_f, &u, 4);
            } while (!isfinite(want.free_f));
            do {
                d = fr_test_next(&rng);
                memcpy(&want.x, &d, 8);
            } while (!isfinite(want.x));
            want.lr = fr_test_uniform(&rng, 0.0f, 1.0f);
            want.seed = (uint32_t)fr_test_next(&rng);
            want.n = 1 + (int64_t)(fr_test_next(&rng) % 100);
        }
        g_t = want;
        fr_opts_kv extra[] = {{"algo", "test-algo"}};
        ck_assert_int_eq(fr_opts_write_json(&g_o, extra, 1, path), FR_OK);
        memset(&g_t, 0, sizeof g_t);
        ck_assert_int_eq(fr_opts_read_json(&g_o, path, (const char *const[]){"algo", NULL}), FR_OK);
        ck_assert_msg(fr_test_bits_equal(g_t.free_f, want.free_f), "seed 12345 trial %d: %.9g", trial,
                      (double)want.free_f);
        ck_assert_msg(memcmp(&g_t.x, &want.x, 8) == 0, "seed 12345 trial %d: %.17g", trial, want.x);
        ck_assert(fr_test_bits_equal(g_t.lr, want.lr) && fr_test_bits_equal(g_t.eps, want.eps));
        ck_assert(g_t.seed == want.seed && g_t.n == want.n && g_t.kind == want.kind && g_t.tri == want.tri);
    }
    char algo[32];
    ck_assert_int_eq(fr_opts_json_string(path, "algo", algo, sizeof algo), FR_OK);
    ck_assert_str_eq(algo, "test-algo");
    ck_assert_int_eq(fr_opts_json_string(path, "nothing", algo, sizeof algo), FR_OK);
    ck_assert_str_eq(algo, "");
    /* the shortest text, as cff6d07 wrote it */
    char b[64];
    g_t.lr = 3e-4f;
    fr_opt_format(&k_rows[3], &g_t, b, sizeof b);
    ck_assert_str_eq(b, "0.0003");
    g_t.x = 0.1;
    fr_opt_format(&k_rows[6], &g_t, b, sizeof b);
    ck_assert_str_eq(b, "0.1");
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_json_keys)
{
    char path[300], want[400];
    file_path(path, sizeof path, "c.json");
    /* unknown keys fail naming the file and key; NOT_SAVED rows are not keys of the file */
    write_file(path, "{\"lr\": 0.5, \"bogus\": 1}");
    ck_assert_int_eq(fr_opts_read_json(&g_o, path, NULL), FR_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: unknown key 'bogus'", path);
    ck_assert_str_eq(fr_last_error(), want);
    write_file(path, "{\"threads\": 2}");
    ck_assert_int_eq(fr_opts_read_json(&g_o, path, NULL), FR_ERR_FORMAT);
    /* old spelling of a renamed key; missing keys keep their values; ignored keys */
    write_file(path, "{\"steps\": 9, \"resolved\": {\"x\": 1}}");
    ck_assert_int_eq(fr_opts_read_json(&g_o, path, (const char *const[]){"resolved", NULL}), FR_OK);
    ck_assert_int_eq(g_t.n, 9);
    ck_assert_int_eq(g_t.k, 3);
    /* bad values name the file and key */
    write_file(path, "{\"lr\": 3}");
    ck_assert_int_eq(fr_opts_read_json(&g_o, path, NULL), FR_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: lr: 3 is outside [0, 1]", path);
    ck_assert_str_eq(fr_last_error(), want);
    write_file(path, "{\"kind\": 1}");
    ck_assert_int_eq(fr_opts_read_json(&g_o, path, NULL), FR_ERR_FORMAT);
    write_file(path, "[1]");
    ck_assert_int_eq(fr_opts_read_json(&g_o, path, NULL), FR_ERR_FORMAT);
    /* NOT_SAVED rows stay out of the file; a PATH row records its absolute form, which a
     * later read uses in place of the relative one */
    ck_assert_int_eq(parse("--path rel/f.txt --threads 5", NULL, 0, NULL), FR_OK);
    ck_assert_int_eq(fr_opts_write_json(&g_o, NULL, 0, path), FR_OK);
    char abs[64];
    ck_assert_int_eq(fr_opts_json_string(path, "path_abs", abs, sizeof abs), FR_OK);
    ck_assert_msg(abs[0] == '/' && strstr(abs, "/rel/f.txt"), "%s", abs);
    ck_assert_int_eq(fr_opts_json_string(path, "threads", abs, sizeof abs), FR_OK);
    ck_assert_str_eq(abs, "");
    ck_assert_int_eq(fr_opts_read_json(&g_o, path, NULL), FR_OK);
    ck_assert_msg(g_t.path[0] == '/' && strstr(g_t.path, "/rel/f.txt"), "%s", g_t.path);
}
END_TEST

static int g_n_meta;
static char g_meta[32][64];
static fr_status collect(const char *key, const char *value, void *user)
{
    (void)user;
    ck_assert_int_lt(g_n_meta, 32);
    snprintf(g_meta[g_n_meta++], sizeof g_meta[0], "%s=%s", key, value);
    return FR_OK;
}

START_TEST(test_meta_and_resume_check)
{
    g_n_meta = 0;
    ck_assert_int_eq(fr_opts_to_meta(&g_o, "t.", collect, NULL), FR_OK);
    /* saved, non-resumable rows only: not k, lr (resumable), nor the backend group */
    const char *want[] = {"t.num_steps=10", "t.seed=42", "t.eps=1e-08", "t.free_f=0", "t.x=0.1",
                          "t.flag=false", "t.tri=auto", "t.kind=beta", "t.path=", "t.secret=false"};
    ck_assert_int_eq(g_n_meta, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < g_n_meta; i++) ck_assert_str_eq(g_meta[i], want[i]);

    /* the run as saved, and now = saved + argv */
    t_opts saved_t = g_t;
    fr_backend_opts saved_b = g_b;
    fr_opts saved = g_o;
    saved.s[0] = &saved_t;
    saved.s[1] = &saved_b;
    ck_assert_int_eq(parse("--lr 0.5 --k 1 --threads 2 --seed 42", NULL, 0, NULL), FR_OK);
    ck_assert_int_eq(fr_opts_resume_check(&g_o, &saved, &g_seen), FR_OK);
    g_t = saved_t;
    ck_assert_int_eq(parse("--lr 0.5 --seed 7", NULL, 0, NULL), FR_OK);
    ck_assert_int_eq(fr_opts_resume_check(&g_o, &saved, &g_seen), FR_ERR_ARG);
    ck_assert_str_eq(fr_last_error(), "--seed cannot change on resume (the run has 42)");
    g_t = saved_t;
    ck_assert_int_eq(parse("--num-steps 11", NULL, 0, NULL), FR_OK);
    ck_assert_int_eq(fr_opts_resume_check(&g_o, &saved, &g_seen), FR_ERR_ARG);
    ck_assert_str_eq(fr_last_error(), "--num-steps cannot change on resume (the run has 10)");
}
END_TEST

START_TEST(test_help_lists_every_visible_row)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    g_t.flag = 1;
    fr_opts_help(&g_o, f);
    fclose(f);
    char flag[96];
    for (int g = 0; g < g_o.ng; g++) {
        char title[64];
        snprintf(title, sizeof title, "\n%s:\n", g_o.g[g].title);
        ck_assert_msg(strstr(buf, title), "%s", buf);
        for (int i = 0; i < g_o.g[g].n; i++) {
            const fr_opt *r = &g_o.g[g].rows[i];
            snprintf(flag, sizeof flag, "--%s", r->key);
            for (char *p = flag; *p; p++)
                if (*p == '_') *p = '-';
            int shown = strstr(buf, flag + 2) != NULL;
            ck_assert_msg(shown == !(r->flags & FR_OPT_HIDDEN), "%s: %s", flag, buf);
        }
    }
    ck_assert_msg(strstr(buf, "  --lr X") && strstr(buf, "learning rate (0.0003)"), "%s", buf);
    ck_assert_msg(strstr(buf, "  --kind alpha|beta|gamma") && strstr(buf, "a kind (beta)"), "%s", buf);
    ck_assert_msg(strstr(buf, "  --[no-]flag "), "%s", buf); /* on: --no-flag turns it off */
    ck_assert_msg(strstr(buf, "  --path PATH "), "%s", buf);
    free(buf);
}
END_TEST

START_TEST(test_shared_groups)
{
    /* every group at once: no flag declared twice, every default inside its range */
    fr_backend_opts b;
    fr_sampling_opts s;
    fr_optim_opts o;
    fr_evalrun_opts e;
    fr_runctl_opts r;
    fr_opts all = {.cmd = "test", .s = {&b, &s, &o}};
    fr_opts_add(&all, "Backend", fr_backend_rows, fr_backend_nrows, 0);
    fr_opts_add(&all, "Sampling", fr_sampling_rows, fr_sampling_nrows, 1);
    fr_opts_add(&all, "Optimiser", fr_optim_rows, fr_optim_nrows, 2);
    all.s[3] = &e;
    fr_opts_add(&all, "Evaluation", fr_evalrun_rows, fr_evalrun_nrows, 3);
    ck_assert_int_eq(fr_opts_defaults(&all), FR_OK);
    ck_assert_int_eq(fr_opts_check(&all), FR_OK);
    fr_opts run = {.cmd = "test", .s = {&r}};
    fr_opts_add(&run, "Run", fr_runctl_rows, fr_runctl_nrows, 0);
    ck_assert_int_eq(fr_opts_defaults(&run), FR_OK);
    ck_assert_int_eq(fr_opts_check(&run), FR_OK);
    ck_assert_int_eq(s.sampler, FR_SAMPLER_ODE);
    ck_assert_int_eq(s.num_steps, 40);
    ck_assert(o.adam_beta2 == 0.999 && o.adam_eps == 1e-8 && o.max_grad_norm == 1.0f); /* double, as torch */
    ck_assert_int_eq(o.lr_schedule, FR_LR_CONSTANT);
    /* the reward program's timeout row defaults to the library's constant */
    fr_reward_cmd_opts ro = {0};
    fr_opts rw = {.cmd = "test", .s = {&ro}};
    fr_opts_add(&rw, "Reward program", fr_reward_cmd_rows, fr_reward_cmd_nrows, 0);
    ck_assert_int_eq(fr_opts_defaults(&rw), FR_OK);
    ck_assert(ro.timeout_s == FR_REWARD_CMD_TIMEOUT_S);
    /* the backend: "" = opt when built in (else ref); threads only on opt */
    fr_backend be;
    b.threads = 2;
    ck_assert_int_eq(fr_backend_opts_resolve(&b, &be), FR_OK);
    int have_opt = 0;
    for (const char *const *n = fr_backend_names(); *n; n++) have_opt |= strcmp(*n, "opt") == 0;
    ck_assert_str_eq(be.name, have_opt ? "opt" : "ref");
    ck_assert_int_eq(be.threads, have_opt ? 2 : 1);
    snprintf(b.backend, sizeof b.backend, "ref");
    ck_assert_int_eq(fr_backend_opts_resolve(&b, &be), FR_OK);
    ck_assert_str_eq(be.name, "ref");
    ck_assert_int_eq(be.threads, 1);
    snprintf(b.backend, sizeof b.backend, "nope");
    ck_assert_int_eq(fr_backend_opts_resolve(&b, &be), FR_ERR_ARG);
    /* a second row with an existing flag is refused */
    fr_opts dup = {.cmd = "test", .s = {&b, &b}};
    fr_opts_add(&dup, "A", fr_backend_rows, fr_backend_nrows, 0);
    fr_opts_add(&dup, "B", fr_backend_rows + 1, 1, 1);
    ck_assert_int_eq(fr_opts_defaults(&dup), FR_ERR_ARG);
    ck_assert_str_eq(fr_last_error(), "flowrl test: option --fast declared twice");
}
END_TEST

/* config.json as cff6d07 wrote it (flowrl train --algo flow-grpo --base b.st --out run1
 * --epochs 1 --prompts 2 --group 2 --steps 3 --backend ref --eval-n 0), read with the
 * shared groups: old keys ("steps", "noise", "ema") land on the renamed rows, bit for bit. */
static const char k_cff6d07_config[] =
    "{\"algo\": \"flow-grpo\", \"base\": \"b.st\", \"task\": \"gmm2d\", \"reward\": \"\", \"base_raw\": false,\n"
    "\"epochs\": 1, \"seed\": 42, \"sampler\": \"sde\", \"steps\": 3, \"grid\": \"diffusers\", \"shift\": 3,\n"
    "\"noise\": 0.7, \"cfg\": 1, \"train_cfg\": \"auto\", \"prompts\": 2, \"group\": 2, \"rollout_batch\": 64,\n"
    "\"timestep_fraction\": 0.99, \"window\": \"none\", \"fast_window\": 2, \"fast_range_lo\": 0,\n"
    "\"fast_range_hi\": -1, \"mix_window\": 4, \"mix_iters\": 25, \"guard\": \"off\", \"clip_range\": 0.0001,\n"
    "\"adv_clip\": 5, \"beta\": 0.04, \"kl_form\": \"code\", \"adv\": \"prompt\", \"global_std\": true,\n"
    "\"ddpo_buffer\": 16, \"ddpo_min_count\": 16, \"num_batches\": 4, \"grad_accum\": 2, \"lr\": 0.0003,\n"
    "\"adam_beta1\": 0.9, \"adam_beta2\": 0.999, \"adam_eps\": 1e-08, \"weight_decay\": 0.0001,\n"
    "\"max_grad_norm\": 1, \"ema\": -1, \"ema_every\": 8, \"eval_steps\": 40, \"eval_n\": 0,\n"
    "\"keep_checkpoints\": 2, \"out\": \"run1\", \"resolved\": {\"train_cfg\": false, \"trained_steps\": 2}}\n";

START_TEST(test_reads_cff6d07_config)
{
    fr_sampling_opts s;
    fr_optim_opts o;
    fr_evalrun_opts e;
    fr_runctl_opts r;
    fr_opts all = {.cmd = "test", .s = {&s, &o, &e, &r}};
    fr_opts_add(&all, "Sampling", fr_sampling_rows, fr_sampling_nrows, 0);
    fr_opts_add(&all, "Optimiser", fr_optim_rows, fr_optim_nrows, 1);
    fr_opts_add(&all, "Evaluation", fr_evalrun_rows, fr_evalrun_nrows, 2);
    fr_opts_add(&all, "Run", fr_runctl_rows, fr_runctl_nrows, 3);
    ck_assert_int_eq(fr_opts_defaults(&all), FR_OK);
    char path[300];
    file_path(path, sizeof path, "config.json");
    write_file(path, k_cff6d07_config);
    /* the Flow-GRPO keys are the algorithm's rows (not these groups) */
    static const char *const algo_keys[] = {"algo", "base", "task", "reward", "base_raw", "train_cfg", "prompts",
                                            "group", "timestep_fraction", "window", "fast_window", "fast_range_lo",
                                            "fast_range_hi", "mix_window", "mix_iters", "guard", "clip_range",
                                            "adv_clip", "beta", "kl_form", "adv", "global_std", "ddpo_buffer",
                                            "ddpo_min_count", "num_batches", "grad_accum", "resolved", NULL};
    ck_assert_msg(fr_opts_read_json(&all, path, algo_keys) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(s.sampler, FR_SAMPLER_SDE);
    ck_assert_int_eq(s.num_steps, 3);
    ck_assert(fr_test_bits_equal(s.noise_level, 0.7f) && s.shift == 3.0 && s.rollout_batch == 64);
    ck_assert(fr_test_bits_equal(o.lr, 3e-4f) && fr_test_bits_equal(o.adam_eps, 1e-8f));
    ck_assert(fr_test_bits_equal(o.weight_decay, 1e-4f) && fr_test_bits_equal(o.adam_beta2, 0.999f));
    ck_assert(o.ema_decay == -1.0f && o.ema_every == 8 && o.max_grad_norm == 1.0f);
    ck_assert(e.eval_steps == 40 && e.eval_n == 0);
    ck_assert(r.seed == 42 && r.epochs == 1 && r.keep_checkpoints == 2);
    ck_assert_msg(strcmp(r.out, "run1") == 0, "%s", r.out); /* no out_abs in an old file */
}
END_TEST

START_TEST(test_enum_names)
{
    int v = -1;
    ck_assert_str_eq(fr_enum_name(k_kinds, 2), "gamma");
    ck_assert_ptr_null(fr_enum_name(k_kinds, 3));
    ck_assert_ptr_null(fr_enum_name(k_kinds, -1));
    ck_assert_int_eq(fr_enum_parse(k_kinds, "beta", &v, "kind"), FR_OK);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(fr_enum_parse(k_kinds, "delta", &v, "kind"), FR_ERR_ARG);
    ck_assert_str_eq(fr_last_error(), "unknown kind 'delta' (alpha, beta, gamma)");
    /* the library's own names go through it */
    fr_sampler_kind k;
    ck_assert_int_eq(fr_sampler_from_name("dpm", &k), FR_OK);
    ck_assert_int_eq(k, FR_SAMPLER_DPM);
    ck_assert_str_eq(fr_sampler_name(FR_SAMPLER_DDIM), "ddim");
    ck_assert_ptr_null(fr_sampler_name(FR_SAMPLER_COUNT));
    ck_assert_str_eq(fr_grid_name(FR_GRID_LINEAR), "linear");
}
END_TEST

/* A group over a struct index the set cannot hold is a programming error: abort, never a
 * write past fr_opts.s (what an eval with five structs did before the limit was 8). */
START_TEST(test_too_many_structs_aborts)
{
    fr_opts o = {.cmd = "test"};
    fr_opts_add(&o, "Backend", fr_backend_rows, fr_backend_nrows, FR_OPTS_MAX_STRUCTS);
}
END_TEST

Suite *suite_opts(void)
{
    Suite *s = suite_create("opts");
    TCase *tc = tcase_create("opts");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_every_kind_parses);
    tcase_add_test(tc, test_errors_name_the_flag);
    tcase_add_test(tc, test_alias_warns_once_and_works);
    tcase_add_test(tc, test_json_round_trip_is_bit_exact);
    tcase_add_test(tc, test_json_keys);
    tcase_add_test(tc, test_meta_and_resume_check);
    tcase_add_test(tc, test_help_lists_every_visible_row);
    tcase_add_test(tc, test_shared_groups);
    tcase_add_test(tc, test_reads_cff6d07_config);
    tcase_add_test(tc, test_enum_names);
    tcase_add_test_raise_signal(tc, test_too_many_structs_aborts, SIGABRT);
    suite_add_tcase(s, tc);
    return s;
}
