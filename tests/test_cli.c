/* The CLI's own commands (info, rng) and its argument handling: the option engine as the
 * commands use it (renamed flags and their aliases, --help, exit status 2 for usage errors
 * and 1 for runtime failures in every command), pretrain --force, pack of a non-run,
 * eval --reward cmd:PROGRAM and --reward-timeout. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/suites.h"
#include "tests/testutil.h"

static char g_out[1 << 16];

START_TEST(test_rng_philox_kat)
{
    ck_assert_int_eq(fr_test_run_cli("rng philox --key 0,0 --counter 0,0,0,0", g_out, sizeof g_out), 0);
    ck_assert_str_eq(g_out, "6627e8d5 e169c58d bc57ac4c 9b00dbd8\n");
    ck_assert_int_eq(fr_test_run_cli("rng philox --key 0xa4093822,0x299f31d0 --counter "
                                     "0x243f6a88,0x85a308d3,0x13198a2e,0x03707344",
                                     g_out, sizeof g_out), 0);
    ck_assert_str_eq(g_out, "d16cfe09 94fdcceb 5001e420 24126ea1\n");
    ck_assert_int_eq(fr_test_run_cli("rng philox --key 0xffffffff,0xffffffff --counter "
                                     "0xffffffff,0xffffffff,0xffffffff,0xffffffff --rounds 7",
                                     g_out, sizeof g_out), 0);
    ck_assert_str_eq(g_out, "5207ddc2 45165e59 4d8ee751 8c52f662\n");
}
END_TEST

START_TEST(test_rng_streams)
{
    ck_assert_int_eq(fr_test_run_cli("rng normal --seed 1 --purpose 0 --coords 0,0,0 --count 3", g_out, sizeof g_out), 0);
    int lines = 0;
    for (char *p = g_out; *p; p++) lines += *p == '\n';
    ck_assert_int_eq(lines, 3);
    ck_assert_int_eq(fr_test_run_cli("rng uniform --seed 1 --purpose 0 --coords 0,0,0 --count 1", g_out, sizeof g_out), 0);
    float u = strtof(g_out, NULL);
    ck_assert(u > 0.0f && u < 1.0f);
}
END_TEST

START_TEST(test_rng_bad_args)
{
    static const char *bad[] = {
        "rng philox --key 0 --counter 0,0,0,0",       /* one key word */
        "rng philox --key 0,0 --counter 0,0,0",       /* three counter words */
        "rng philox --key 0,0x1ffffffff --counter 0,0,0,0", /* > 32 bits */
        "rng philox --key 0,0 --counter 0,0,0,0 --rounds 0",
        "rng philox --key 0,0 --counter 0,0,0,0 --bogus",
        "rng philox --key",
        "rng mersenne",
        "rng",
        "no-such-command",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = fr_test_run_cli(bad[i], g_out, sizeof g_out);
        ck_assert_msg(rc == 2, "'%s' exited %d, want 2 (usage error)", bad[i], rc);
        ck_assert_msg(strstr(g_out, "flowrl") != NULL, "'%s' printed no message: %s", bad[i], g_out);
    }
}
END_TEST

START_TEST(test_info)
{
    ck_assert_int_eq(fr_test_run_cli("info", g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "fp contract: ok") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "-ffp-contract=off") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "backends:    ref") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "self-test ok") != NULL, "%s", g_out);
}
END_TEST

START_TEST(test_help)
{
    ck_assert_int_eq(fr_test_run_cli("--help", g_out, sizeof g_out), 0);
    ck_assert(strstr(g_out, "Commands:") != NULL);
    /* every listed command answers --help with exit 0 and a Usage line */
    char *p = strstr(g_out, "Commands:\n");
    ck_assert_ptr_nonnull(p);
    p += strlen("Commands:\n");
    int n = 0;
    char list[1 << 12];
    snprintf(list, sizeof list, "%s", p);
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64], args[128], out[8192];
        if (sscanf(line, " %63s", name) != 1) continue;
        snprintf(args, sizeof args, "%s --help", name);
        int rc = fr_test_run_cli(args, out, sizeof out);
        ck_assert_msg(rc == 0 && strstr(out, "Usage:") != NULL, "flowrl %s --help: rc %d: %s", name, rc, out);
        n++;
    }
    ck_assert_int_ge(n, 3);
    ck_assert_int_eq(fr_test_run_cli("", g_out, sizeof g_out), 2);
}
END_TEST

/* ---- the option engine in the commands ----------------------------------------------- */

static char g_dir[256];

static void make_dir(void) { fr_test_mkdtemp(g_dir, sizeof g_dir, "cli"); }

static void remove_dir(void) { fr_test_rmtree(g_dir); }

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* A tiny gmm2d base (2 steps on ref) at DIR/base.safetensors. */
static void make_base(char *path, size_t n)
{
    char args[512];
    snprintf(path, n, "%s/base.safetensors", g_dir);
    snprintf(args, sizeof args,
             "pretrain --task gmm2d --out %s --max-train-steps 2 --train-batch-size 4 --backend ref --progress off",
             path);
    int rc = fr_test_run_cli(args, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "%s: exit %d: %s", args, rc, g_out);
}

START_TEST(test_alias_same_as_new_name)
{
    static char want[1 << 12];
    ck_assert_int_eq(fr_test_run_cli("schedule --grid linear --num-steps 25", want, sizeof want), 0);
    /* the old spelling: one warning line naming the new flag, then the same output */
    ck_assert_int_eq(fr_test_run_cli("schedule --grid linear --steps 3 --steps 25", g_out, sizeof g_out), 0);
    const char *warn = "flowrl schedule: --steps is deprecated, use --num-steps\n";
    ck_assert_msg(strncmp(g_out, warn, strlen(warn)) == 0, "%s", g_out);
    ck_assert_str_eq(g_out + strlen(warn), want);
    /* renamed flags of the other commands are accepted and warned about */
    static const char *old[][2] = {
        {"eval --steps 0", "--steps is deprecated, use --num-steps"},
        {"eval --noise 0.5 --n 0", "--noise is deprecated, use --noise-level"},
        {"sample --batch 0", "--batch is deprecated, use --rollout-batch"},
        {"sample --prompts x --n -1", "--prompts is deprecated, use --prompt-file"},
        {"pretrain --steps 0", "--steps is deprecated, use --max-train-steps"},
        {"pretrain --batch 0", "--batch is deprecated, use --train-batch-size"},
        {"pretrain --clip -1", "--clip is deprecated, use --max-grad-norm"},
        {"pretrain --ema 2", "--ema is deprecated, use --ema-decay"},
        {"pretrain --schedule linear", "--schedule is deprecated, use --lr-schedule"},
        {"pretrain --save-every -1", "--save-every is deprecated, use --checkpoint-every"},
    };
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++) {
        int rc = fr_test_run_cli(old[i][0], g_out, sizeof g_out);
        ck_assert_msg(rc == 2 && strstr(g_out, old[i][1]), "'%s': exit %d: %s", old[i][0], rc, g_out);
    }
}
END_TEST

START_TEST(test_engine_help_and_errors)
{
    ck_assert_int_eq(fr_test_run_cli("pretrain --help", g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "\nOptimiser:\n") && strstr(g_out, "  --max-grad-norm X") &&
                      strstr(g_out, "  --lr X") && strstr(g_out, "(0.001)") && strstr(g_out, "--max-train-steps N"),
                  "%s", g_out);
    ck_assert_int_eq(fr_test_run_cli("eval --help", g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "  --reward-timeout X") && strstr(g_out, "(60)") && strstr(g_out, "\nSampling:\n"),
                  "%s", g_out);
    /* one line naming the flag; a typo gets a suggestion */
    ck_assert_int_eq(fr_test_run_cli("sample --ckpt x --out y.png --num-step 3", g_out, sizeof g_out), 2);
    ck_assert_str_eq(g_out, "flowrl sample: unknown option --num-step (did you mean --num-steps?) (flowrl sample --help)\n");
    ck_assert_int_eq(fr_test_run_cli("pretrain --task gmm2d --out x --max-grad-norm 1e30", g_out, sizeof g_out), 2);
    ck_assert_str_eq(g_out, "flowrl pretrain: --max-grad-norm: 1e30 is outside [0, 1000000000] (flowrl pretrain --help)\n");
}
END_TEST

/* Usage errors exit 2 and runtime failures 1, in every command (audit: 2 for an unreadable
 * run, as documented, since 1 means "the runs differ"). */
START_TEST(test_exit_status_per_command)
{
    make_dir();
    char base[300];
    make_base(base, sizeof base);
    static const char *usage[] = {
        "info extra",
        "rng philox --key 0,0 --counter 0,0,0,0 --rounds 17",
        "schedule --grid diffusers --num-steps 0",
        "tensors --bogus",
        "sample --ckpt %s --out %s/x.png --num-steps 0",
        "sample --ckpt %s --out %s/x.png --sampler ddim",
        "eval --ckpt %s --n 0 --backend ref%s",
        "eval --ckpt %s --reward nope --backend ref%s",
        "pretrain --task gmm2d --out %s/x --lr abc",
        "audit onlyone",
        "pack",
        "golden gen --fast",
        "golden list --dir d",
    };
    char args[1024];
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        snprintf(args, sizeof args, usage[i], strstr(usage[i], "ckpt") ? base : g_dir, g_dir);
        if (strstr(usage[i], "%s%s")) snprintf(args, sizeof args, usage[i], base, "");
        int rc = fr_test_run_cli(args, g_out, sizeof g_out);
        ck_assert_msg(rc == 2, "'%s' exited %d, want 2: %s", args, rc, g_out);
        ck_assert_msg(count_lines(g_out) == 1 && strncmp(g_out, "flowrl ", 7) == 0, "'%s': %s", args, g_out);
    }
    static const char *runtime[] = {
        "info >/dev/full",
        "rng philox --key 0,0 --counter 0,0,0,0 >/dev/full",
        "schedule --grid linear --num-steps 4 >/dev/full",
        "tensors %s/missing.safetensors",
        "sample --ckpt %s/missing.safetensors --out %s/x.png",
        "eval --ckpt %s/missing.safetensors",
        "pretrain --task gmm2d --out %s/no/such/dir/x --max-train-steps 1 --progress off",
        "pack %s -o %s/../not-a-run.tar.zst",
        "golden check --backend ref --dir %s/no-golden",
    };
    for (size_t i = 0; i < sizeof runtime / sizeof runtime[0]; i++) {
        snprintf(args, sizeof args, runtime[i], g_dir, g_dir);
        int rc = fr_test_run_cli(args, g_out, sizeof g_out);
        ck_assert_msg(rc == 1, "'%s' exited %d, want 1: %s", args, rc, g_out);
    }
    remove_dir();
}
END_TEST

START_TEST(test_pretrain_needs_force)
{
    make_dir();
    char base[300], args[1024];
    make_base(base, sizeof base);
    struct stat before, after;
    ck_assert_int_eq(stat(base, &before), 0);
    snprintf(args, sizeof args, "pretrain --task gmm2d --out %s --max-train-steps 3 --backend ref --progress off", base);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 2);
    ck_assert_msg(strstr(g_out, "exists; --force replaces it") && count_lines(g_out) == 1, "%s", g_out);
    ck_assert_int_eq(stat(base, &after), 0);
    ck_assert(before.st_ino == after.st_ino && before.st_mtime == after.st_mtime);
    snprintf(args, sizeof args, "pretrain --task gmm2d --out %s --max-train-steps 3 --backend ref --progress off --force",
             base);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 0);
    snprintf(args, sizeof args, "tensors --meta %s", base);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "step = 3"), "%s", g_out);
    remove_dir();
}
END_TEST

START_TEST(test_pack_refuses_a_non_run)
{
    make_dir();
    char args[1024], path[300];
    snprintf(path, sizeof path, "%s/d", g_dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(args, sizeof args, "pack %s -o %s/d.tar.zst", path, g_dir);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 1);
    ck_assert_msg(count_lines(g_out) == 1 && strstr(g_out, "is not a run directory (no audit.log and config.json"),
                  "%s", g_out);
    snprintf(path, sizeof path, "%s/d.tar.zst", g_dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    remove_dir();
}
END_TEST

#define python fr_test_python

START_TEST(test_eval_reward_program)
{
    make_dir();
    char base[300], args[2048];
    make_base(base, sizeof base);
    /* the mock answers every batch; an external reward has scores but no accuracy */
    snprintf(args, sizeof args,
             "eval --ckpt %s --n 2 --num-steps 2 --rollout-batch 5 --backend ref "
             "--reward \"cmd:%s '%s/tests/reward_progs/mock_reward.py' ok\"",
             base, python(), fr_test_src());
    int rc = fr_test_run_cli(args, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, g_out);
    ck_assert_msg(strstr(g_out, "reward cmd:") && strstr(g_out, "\noverall ") && strstr(g_out, "       -         -"),
                  "%s", g_out);
    /* a program that never answers: the --reward-timeout, not the default 60 s */
    snprintf(args, sizeof args,
             "eval --ckpt %s --n 1 --num-steps 2 --backend ref --reward-timeout 0.5 "
             "--reward \"cmd:%s '%s/tests/reward_progs/mock_reward.py' hang %s/pid\"",
             base, python(), fr_test_src(), g_dir);
    rc = fr_test_run_cli(args, g_out, sizeof g_out);
    ck_assert_msg(rc == 1 && strstr(g_out, "0.5 s timeout"), "exit %d: %s", rc, g_out);
    ck_assert_int_eq(fr_test_run_cli("eval --ckpt x --reward cmd: --backend ref", g_out, sizeof g_out), 2);
    ck_assert_int_eq(fr_test_run_cli("eval --ckpt x --reward-timeout 0", g_out, sizeof g_out), 2);
    remove_dir();
}
END_TEST

/* eval --x0-clip X: the ddim sampler's x0-hat clamp (flowrl/rollout.h x0_clip), default none; every
 * sample then lies within X + sqrt(1 - abar_0)·|eps-hat| of 0, so the spread stays bounded where the
 * unclipped chain of an untrained epsilon model diverges; refused for the flow samplers. */
START_TEST(test_eval_x0_clip)
{
    make_dir();
    char base[300], eps[300], args[1024];
    static char plain[1 << 16];
    make_base(base, sizeof base);
    snprintf(eps, sizeof eps, "%s/eps.safetensors", g_dir);
    snprintf(args, sizeof args,
             "pretrain --task gmm2d --pred epsilon --out %s --max-train-steps 2 --train-batch-size 4 --backend ref "
             "--progress off", eps);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 0);
    snprintf(args, sizeof args, "eval --ckpt %s --n 4 --num-steps 5 --backend ref --json", eps);
    ck_assert_int_eq(fr_test_run_cli(args, plain, sizeof plain), 0);
    ck_assert_msg(strstr(plain, "\"x0_clip\":\t0,") != NULL, "%s", plain);
    snprintf(args, sizeof args, "eval --ckpt %s --n 4 --num-steps 5 --backend ref --json --x0-clip 1", eps);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "\"x0_clip\":\t1,") != NULL, "%s", g_out);
    const char *key = "\"diversity\":", *d0 = strstr(plain, key), *d1 = strstr(g_out, key);
    ck_assert_msg(d0 && d1, "no diversity: %s", g_out);
    double div0 = strtod(d0 + strlen(key), NULL), div1 = strtod(d1 + strlen(key), NULL);
    ck_assert_msg(div1 < 2.5 && div1 != div0, "diversity %g unclipped, %g clipped", div0, div1);
    snprintf(args, sizeof args, "eval --ckpt %s --n 1 --num-steps 2 --backend ref --x0-clip 1", base);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 2);
    ck_assert_msg(strstr(g_out, "--x0-clip") != NULL, "%s", g_out);
    remove_dir();
}
END_TEST

Suite *suite_cli(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rng_philox_kat);
    tcase_add_test(tc, test_rng_streams);
    tcase_add_test(tc, test_rng_bad_args);
    tcase_add_test(tc, test_info);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_alias_same_as_new_name);
    tcase_add_test(tc, test_engine_help_and_errors);
    tcase_add_test(tc, test_exit_status_per_command);
    tcase_add_test(tc, test_pretrain_needs_force);
    tcase_add_test(tc, test_pack_refuses_a_non_run);
    tcase_add_test(tc, test_eval_reward_program);
    tcase_add_test(tc, test_eval_x0_clip);
    suite_add_tcase(s, tc);
    return s;
}
