/* Runs that cannot lie (issue "verified resume, locked run directories, the first error kept,
 * collapse flagged"): each case failed at cff6d07. A corrupted checkpoint is refused and
 * --from-step resumes from an intact one; a run directory is locked; a mid-epoch failure
 * reaches the user as its first cause; collapse and divergence are flagged; a run that
 * fails before its first checkpoint leaves nothing that blocks a retry, nor does a SIGKILL
 * during its start-up; a relative base is
 * found from any working directory; checkpoint and evaluation intervals; a warm-up lr
 * schedule; resumable hyper-parameters; --log-every; the reward program's timeout. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flowrl/dir_lock.h"
#include "flowrl/model.h"
#include "flowrl/optim_step.h"
#include "flowrl/pretrain.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* The tiny flow-grpo run as CLI arguments (without --out / --epochs). */
static const char *tiny_args(char *b, size_t n)
{
    snprintf(b, n,
             "--base %s --task gmm2d --prompts-per-epoch 2 --group-size 4 --num-steps 4 --num-batches 2 --grad-accum 1 "
             "--clip-range 0.2 --lr 3e-3 --seed 11 --eval-n 0 --backend ref",
             fr_rt_base);
    return b;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

START_TEST(test_corrupted_checkpoint_refused)
{
    char out[16384], a[1024], p[512];
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train %s --out %s/c --epochs 3", tiny_args(a, sizeof a), fr_rt_dir), 0);
    /* one bit of tensor data near the end of the newest checkpoint */
    snprintf(p, sizeof p, "%s/c/checkpoints/step-3.safetensors", fr_rt_dir);
    size_t n;
    unsigned char *buf = fr_test_slurp(p, &n);
    buf[n - 5] ^= 0x10;
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
    free(buf);
    int rc = fr_rt_cli(out, sizeof out, "train --resume %s/c --epochs 5", fr_rt_dir);
    ck_assert_msg(rc == 1, "a corrupted checkpoint: exit %d, expected 1:\n%s", rc, out);
    ck_assert_msg(strstr(out, "step-3.safetensors") && strstr(out, "tensor"), "the message names no file / tensor:\n%s",
                  out);
    ck_assert_msg(strstr(out, "--from-step 2") != NULL, "the message does not offer the intact step-2:\n%s", out);
    /* the previous intact checkpoint (keep 2) */
    rc = fr_rt_cli(out, sizeof out, "train --resume %s/c --from-step 2 --epochs 5", fr_rt_dir);
    ck_assert_msg(rc == 0, "--from-step 2: exit %d:\n%s", rc, out);
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train %s --out %s/whole --epochs 5", tiny_args(a, sizeof a), fr_rt_dir),
                     0);
    fr_rt_assert_same_records("whole", "c", 5);
    /* a step that does not exist lists the ones that do */
    rc = fr_rt_cli(out, sizeof out, "train --resume %s/c --from-step 1", fr_rt_dir);
    ck_assert_msg(rc == 2 && strstr(out, "step-1") && strstr(out, "4, 5"), "--from-step 1: exit %d:\n%s", rc, out);
}
END_TEST

START_TEST(test_run_dir_locked)
{
    char out[16384], a[1024], dir[512];
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train %s --out %s/l --epochs 1", tiny_args(a, sizeof a), fr_rt_dir), 0);
    fr_lock_file lk = {-1};
    ck_assert_int_eq(fr_dir_lock(fr_rt_path(dir, sizeof dir, "l"), &lk), FR_OK);
    int rc = fr_rt_cli(out, sizeof out, "train --resume %s/l --epochs 2", fr_rt_dir);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    ck_assert_msg(rc == 1 && strstr(out, pid), "a locked run: exit %d, no holder PID %s:\n%s", rc, pid, out);
    fr_dir_unlock(&lk);
    rc = fr_rt_cli(out, sizeof out, "train --resume %s/l --epochs 2", fr_rt_dir);
    ck_assert_msg(rc == 0, "after unlock: exit %d:\n%s", rc, out);
    /* two new runs into one directory: the second is refused, the first's log stays readable */
    rc = fr_rt_cli(out, sizeof out, "train %s --out %s/l --epochs 1", tiny_args(a, sizeof a), fr_rt_dir);
    ck_assert_msg(rc == 2 && strstr(out, "already holds a run"), "second run into l: exit %d:\n%s", rc, out);
    /* --force replaces it: the old run's checkpoints go, the new one starts at step 1 */
    rc = fr_rt_cli(out, sizeof out, "train %s --out %s/l --epochs 1 --force", tiny_args(a, sizeof a), fr_rt_dir);
    ck_assert_msg(rc == 0, "--force: exit %d:\n%.2000s", rc, out);
    char p[512];
    snprintf(p, sizeof p, "%s/l/checkpoints/step-2.safetensors", fr_rt_dir);
    ck_assert_msg(!exists(p), "--force left the old run's %s", p);
    char *rec = fr_rt_records("l");
    ck_assert_msg(strstr(rec, "end-step 1 ") && !strstr(rec, "end-step 2 "), "--force: audit.log:\n%.2000s", rec);
    free(rec);
}
END_TEST

/* The first cause of a mid-epoch failure reaches the user (cff6d07 said "audit.log: closed
 * with step N open"), and a run that fails before its first checkpoint leaves nothing behind. */
START_TEST(test_first_error_kept)
{
    char out[16384], a[1024], p[512], mock[1024];
    snprintf(mock, sizeof mock, "python3 %s/tests/reward_progs/mock_reward.py", fr_test_src());
    struct {
        const char *reward, *want;
    } cases[] = {
        {"cmd:/nonexistent/reward-program", "/nonexistent/reward-program"},
        {"cmd:%s exit", "exit"},
        {"cmd:%s nan", "is nan"},
        {"cmd:%s wrong_batch", "batch"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char reward[1200], run[32];
        snprintf(reward, sizeof reward, cases[i].reward, mock);
        snprintf(run, sizeof run, "e%zu", i);
        int rc = fr_rt_cli(out, sizeof out, "train %s --out %s/%s --epochs 2 --reward '%s'", tiny_args(a, sizeof a),
                           fr_rt_dir, run, reward);
        ck_assert_msg(rc == 1, "%s: exit %d:\n%s", reward, rc, out);
        ck_assert_msg(strstr(out, cases[i].want) != NULL && strstr(out, "closed with step") == NULL,
                      "%s: the first cause ('%s') is not what the user sees:\n%s", reward, cases[i].want, out);
        /* nothing that blocks a retry */
        snprintf(p, sizeof p, "%s/%s/config.json", fr_rt_dir, run);
        ck_assert_msg(!exists(p), "%s: a failed new run left %s", reward, p);
        rc = fr_rt_cli(out, sizeof out, "train %s --out %s/%s --epochs 1", tiny_args(a, sizeof a), fr_rt_dir, run);
        ck_assert_msg(rc == 0, "%s: the retry into the same --out: exit %d:\n%s", reward, rc, out);
    }
}
END_TEST

START_TEST(test_collapse_and_divergence_flagged)
{
    char out[16384], a[1024], p[512];
    /* a constant reward: every advantage zero, nothing learned */
    int rc = fr_rt_cli(out, sizeof out,
                       "train %s --out %s/z --epochs 4 --warn-zero-adv 3 --reward 'cmd:python3 %s/tests/reward_progs/"
                       "mock_reward.py const'",
                       tiny_args(a, sizeof a), fr_rt_dir, fr_test_src());
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "every advantage was zero for 3 epochs"), "no collapse warning:\n%s", out);
    ck_assert_msg(strstr(out, "constant reward") != NULL, "the warning does not say why:\n%.2000s", out);
    /* a policy whose samples overflow: a stop naming the first non-finite value, exit 1 */
    fr_model m;
    ck_assert_int_eq(fr_model_load(&m, fr_test_ref_be(), fr_rt_base), FR_OK);
    for (int i = 0; i < m.n_params; i++) {
        float *v = m.values[i].data;
        for (int64_t k = 0; k < fr_tensor_numel(&m.values[i]); k++) v[k] = v[k] * 1e19f + 1e19f;
    }
    ck_assert_int_eq(fr_model_save(&m, fr_rt_path(p, sizeof p, "huge.safetensors")), FR_OK);
    fr_model_free(&m);
    rc = fr_rt_cli(out, sizeof out,
                   "train --base %s --task gmm2d --prompts-per-epoch 2 --group-size 4 --num-steps 4 --num-batches 2 "
                   "--grad-accum 1 --eval-n 0 --backend ref --out %s/d --epochs 3",
                   p, fr_rt_dir);
    ck_assert_msg(rc == 1 && strstr(out, "diverged") && strstr(out, "rollout sample["),
                  "divergence: exit %d:\n%.2000s", rc, out);
    /* a KL threshold */
    rc = fr_rt_cli(out, sizeof out, "train %s --out %s/k --epochs 3 --warn-kl 1e-12 --reward halfplane",
                   tiny_args(a, sizeof a), fr_rt_dir);
    ck_assert_msg(rc == 0 && strstr(out, "exceeds --warn-kl"), "no KL warning: exit %d:\n%s", rc, out);
}
END_TEST

START_TEST(test_resume_from_other_cwd)
{
    char out[16384], cmd[4096];
    const char *bin = getenv("FLOWRL_BIN");
    ck_assert_ptr_nonnull(bin);
    /* a relative base and a reward program given by a relative path */
    snprintf(cmd, sizeof cmd, "cp %s/tests/reward_progs/mock_reward.py %s/", fr_test_src(), fr_rt_dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "cd %s && %s train --base base.safetensors --task gmm2d --out rel --epochs 1 --prompts-per-epoch 2 "
             "--group-size 4 --num-steps 4 --num-batches 2 --grad-accum 1 --eval-n 0 --backend ref "
             "--reward 'cmd:python3 mock_reward.py ok' > /dev/null 2>&1",
             fr_rt_dir, bin);
    ck_assert_int_eq(system(cmd), 0);
    int rc = fr_rt_cli(out, sizeof out, "train --resume %s/rel --epochs 2", fr_rt_dir);
    ck_assert_msg(rc == 0, "resume from another directory: exit %d:\n%s", rc, out);
    /* --epochs below the epochs done is refused, and config.json is not rewritten */
    rc = fr_rt_cli(out, sizeof out, "train --resume %s/rel --epochs 1", fr_rt_dir);
    ck_assert_msg(rc == 2 && strstr(out, "below"), "--epochs 1 after 2: exit %d:\n%s", rc, out);
    char p[512];
    size_t n;
    snprintf(p, sizeof p, "%s/rel/config.json", fr_rt_dir);
    char *cfg = fr_test_slurp(p, &n);
    ck_assert_msg(strstr(cfg, "\"epochs\":\t2") != NULL, "config.json was rewritten:\n%s", cfg);
    free(cfg);
}
END_TEST

/* A SIGKILL during start-up (after the run directory, its checkpoints/ and the lock, before
 * config.json is renamed into place) leaves a directory with nothing to resume: --out must
 * take it (found by tools/fault_trial.sh; before, "already holds a run", and the --resume it
 * suggested failed on the missing config.json). A file in checkpoints/ still counts. */
START_TEST(test_startup_leftover_reused)
{
    char out[16384], a[1024], p[512];
    const char *dirs[] = {"s", "s/checkpoints"};
    for (int i = 0; i < 2; i++) ck_assert_int_eq(mkdir(fr_rt_path(p, sizeof p, dirs[i]), 0777), 0);
    const char *files[] = {"s/.lock", "s/config.json.tmp.999.0", "k/checkpoints/step-1.safetensors"};
    ck_assert_int_eq(mkdir(fr_rt_path(p, sizeof p, "k"), 0777), 0);
    ck_assert_int_eq(mkdir(fr_rt_path(p, sizeof p, "k/checkpoints"), 0777), 0);
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(fr_rt_path(p, sizeof p, files[i]), "w");
        ck_assert_ptr_nonnull(f);
        fputs("{\"seed\": ", f); /* a torn write */
        fclose(f);
    }
    int rc = fr_rt_cli(out, sizeof out, "train %s --out %s/s --epochs 2", tiny_args(a, sizeof a), fr_rt_dir);
    ck_assert_msg(rc == 0, "--out over a start-up leftover: exit %d:\n%s", rc, out);
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train %s --out %s/fresh --epochs 2", tiny_args(a, sizeof a), fr_rt_dir),
                     0);
    fr_rt_assert_same_records("fresh", "s", 2);
    rc = fr_rt_cli(out, sizeof out, "train %s --out %s/k --epochs 2", tiny_args(a, sizeof a), fr_rt_dir);
    ck_assert_msg(rc == 2 && strstr(out, "already holds a run"), "a checkpoint file in --out: exit %d:\n%s", rc, out);
    ck_assert(exists(fr_rt_path(p, sizeof p, "k/checkpoints/step-1.safetensors")));
}
END_TEST

/* A start refused by another run's lock removes none of that run's files (it did with
 * --force: the refused process cleaned up "its" new run, config.json and audit.log of the
 * live one; found by tools/fault_trial.sh's two --out R at once). */
START_TEST(test_refused_start_removes_nothing)
{
    char out[16384], a[1024], p[512];
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train %s --out %s/live --epochs 1", tiny_args(a, sizeof a), fr_rt_dir),
                     0);
    fr_lock_file lk = {-1};
    ck_assert_int_eq(fr_dir_lock(fr_rt_path(p, sizeof p, "live"), &lk), FR_OK); /* the "live" run */
    const char *starts[] = {"--force --out", "--out"};
    for (int i = 0; i < 2; i++) {
        int rc = fr_rt_cli(out, sizeof out, "train %s %s %s/live --epochs 1", tiny_args(a, sizeof a), starts[i], fr_rt_dir);
        ck_assert_msg(rc != 0, "%s of a locked run: exit 0:\n%s", starts[i], out);
        const char *files[] = {"live/config.json", "live/audit.log", "live/checkpoints/step-1.safetensors"};
        for (int k = 0; k < 3; k++)
            ck_assert_msg(exists(fr_rt_path(p, sizeof p, files[k])), "%s of a locked run removed %s:\n%s", starts[i],
                          files[k], out);
    }
    fr_dir_unlock(&lk);
}
END_TEST

START_TEST(test_intervals)
{
    char out[16384], a[1024], p[512];
    int rc = fr_rt_cli(out, sizeof out,
                       "train %s --out %s/i --epochs 5 --checkpoint-every 2 --keep-checkpoints 0 --eval-every 2 "
                       "--eval-n 2 --log-every 2",
                       tiny_args(a, sizeof a), fr_rt_dir);
    ck_assert_msg(rc == 0, "exit %d:\n%s", rc, out);
    for (int s = 1; s <= 5; s++) {
        snprintf(p, sizeof p, "%s/i/checkpoints/step-%d.safetensors", fr_rt_dir, s);
        ck_assert_msg(exists(p) == (s == 2 || s == 4 || s == 5), "checkpoint step-%d: %s", s,
                      exists(p) ? "written" : "missing");
    }
    snprintf(p, sizeof p, "%s/i/eval.json", fr_rt_dir);
    size_t n;
    char *ev = fr_test_slurp(p, &n);
    ck_assert_msg(strstr(ev, "\"before\"") && strstr(ev, "\"epoch-2\"") && strstr(ev, "\"epoch-4\"") &&
                      strstr(ev, "\"after\""),
                  "eval.json:\n%s", ev);
    free(ev);
    /* --log-every 2: epochs 2, 4 and the last */
    ck_assert_ptr_nonnull(strstr(out, "epoch 2/5"));
    ck_assert_ptr_null(strstr(out, "epoch 3/5"));
    ck_assert_ptr_nonnull(strstr(out, "epoch 5/5"));
    /* resume with a resumable change (lr) is taken; a non-resumable one is refused */
    rc = fr_rt_cli(out, sizeof out, "train --resume %s/i --epochs 6 --lr 1e-3", fr_rt_dir);
    ck_assert_msg(rc == 0, "--lr on resume: exit %d:\n%s", rc, out);
    rc = fr_rt_cli(out, sizeof out, "train --resume %s/i --epochs 7 --noise-level 0.5", fr_rt_dir);
    ck_assert_msg(rc == 2 && strstr(out, "--noise-level"), "--noise-level on resume: exit %d:\n%s", rc, out);
}
END_TEST

START_TEST(test_lr_schedule)
{
    /* constant with no warm-up is lr exactly (the bits of every run before schedules existed) */
    ck_assert(fr_lr_at(3e-4, 0.0, FR_LR_CONSTANT, 0, 17, 100) == 3e-4);
    /* linear warm-up from lr/W, in double as torch's schedulers */
    ck_assert(fr_lr_at(1e-3, 0.0, FR_LR_CONSTANT, 10, 0, 100) == 1e-3 * 1.0 / 10.0);
    ck_assert(fr_lr_at(1e-3, 0.0, FR_LR_CONSTANT, 10, 9, 100) == 1e-3);
    /* cosine: lr at the end of warm-up, lr_min at the end, the midpoint in between */
    ck_assert(fr_lr_at(1e-3, 1e-5, FR_LR_COSINE, 10, 10, 110) == 1e-3);
    ck_assert_double_eq_tol(fr_lr_at(1e-3, 1e-5, FR_LR_COSINE, 10, 110, 110), 1e-5, 1e-12);
    ck_assert_double_eq_tol(fr_lr_at(1e-3, 0.0, FR_LR_COSINE, 0, 50, 100), 5e-4, 1e-9);
    /* pretraining's schedule is this function */
    fr_pretrain_cfg c = fr_pretrain_defaults();
    c.steps = 1000;
    for (int64_t s = 0; s < 1000; s += 37)
        ck_assert(fr_pretrain_lr(&c, s) == fr_lr_at(c.lr, c.lr_min, c.schedule, fr_pretrain_warmup(&c), s, c.steps));
    /* a run with warm-up: the audit shows a different first update than without */
    char out[16384], a[1024];
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train %s --out %s/w0 --epochs 1", tiny_args(a, sizeof a), fr_rt_dir), 0);
    ck_assert_int_eq(
        fr_rt_cli(out, sizeof out, "train %s --out %s/w1 --epochs 1 --warmup 4", tiny_args(a, sizeof a), fr_rt_dir), 0);
    char *r0 = fr_rt_records("w0"), *r1 = fr_rt_records("w1");
    ck_assert_msg(strcmp(r0, r1) != 0, "--warmup 4 changed nothing");
    free(r0);
    free(r1);
}
END_TEST

START_TEST(test_reward_timeout_option)
{
    char out[16384], a[1024];
    int rc = fr_rt_cli(out, sizeof out,
                       "train %s --out %s/t --epochs 1 --reward-timeout 0.5 --reward 'cmd:python3 %s/tests/reward_progs/"
                       "mock_reward.py hang %s/t.pid'",
                       tiny_args(a, sizeof a), fr_rt_dir, fr_test_src(), fr_rt_dir);
    ck_assert_msg(rc == 1 && strstr(out, "0.5"), "a hanging reward program with --reward-timeout 0.5: exit %d:\n%s", rc,
                  out);
}
END_TEST

/* A run directory written by cff6d07 (tests/corpus/cff6d07_run: `flowrl train --algo flow-grpo
 * --base base.safetensors --out run --epochs 2 --prompts 2 --group 4 --steps 4 --num-batches 2
 * --grad-accum 1 --clip-range 0.2 --lr 3e-3 --eval-n 0 --reward halfplane`, relative base path)
 * still resumes: its options read back through the renamed keys, its checkpoint's identity
 * metadata matches, and the log keeps its two epochs and gains a third. */
START_TEST(test_cff6d07_run_resumes)
{
    char out[16384], cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -r %s/tests/corpus/cff6d07_run %s/old", fr_test_src(), fr_rt_dir);
    ck_assert_int_eq(system(cmd), 0);
    char *before = fr_rt_records("old/run");
    const char *bin = getenv("FLOWRL_BIN");
    snprintf(cmd, sizeof cmd, "cd %s/old && %s train --resume run --epochs 3 --backend ref > %s/old.log 2>&1", fr_rt_dir,
             bin, fr_rt_dir);
    int rc = system(cmd);
    char p[512];
    size_t n;
    snprintf(p, sizeof p, "%s/old.log", fr_rt_dir);
    char *log = fr_test_slurp(p, &n);
    ck_assert_msg(rc == 0, "resuming cff6d07's run: status %d:\n%.3000s", rc, log);
    free(log);
    char *after = fr_rt_records("old/run");
    ck_assert_msg(strncmp(after, before, strlen(before)) == 0, "the resumed log changed cff6d07's two epochs");
    ck_assert_ptr_nonnull(strstr(after, "end-step 3 "));
    free(before);
    free(after);
    rc = fr_rt_cli(out, sizeof out, "audit %s/old/run %s/tests/corpus/cff6d07_run/run --prefix-ok", fr_rt_dir,
                   fr_test_src());
    ck_assert_msg(rc == 0, "flowrl audit of the resumed and the original run: exit %d:\n%.2000s", rc, out);
}
END_TEST

Suite *suite_runs(void)
{
    Suite *s = suite_create("runs");
    TCase *tc = tcase_create("runs");
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_corrupted_checkpoint_refused);
    tcase_add_test(tc, test_run_dir_locked);
    tcase_add_test(tc, test_first_error_kept);
    tcase_add_test(tc, test_collapse_and_divergence_flagged);
    tcase_add_test(tc, test_resume_from_other_cwd);
    tcase_add_test(tc, test_startup_leftover_reused);
    tcase_add_test(tc, test_refused_start_removes_nothing);
    tcase_add_test(tc, test_intervals);
    tcase_add_test(tc, test_lr_schedule);
    tcase_add_test(tc, test_reward_timeout_option);
    tcase_add_test(tc, test_cff6d07_run_resumes);
    suite_add_tcase(s, tc);
    return s;
}
