/* Generic properties of every registered algorithm (flowrl/algo.h), without naming one, on
 * its tiny gmm2d configuration: the same run twice writes the same bytes; a stopped and
 * resumed run writes the records of an uninterrupted one (library, and CLI after SIGKILL);
 * opt at 1, 2, 3 threads equals ref, with proof that worker threads ran; SIGINT / SIGTERM
 * stop at an epoch boundary with 130 / 143 and resume; config.json reads back into the same
 * run (--config); every out-of-range option value is one clear line with exit status 2; every
 * device backend (cuda-emu in CI) runs to ref's records, moving only per-sample values, the
 * reward's input and the audit records across the host/backend boundary. */
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flowrl/audit.h"
#include "flowrl/cond.h"
#include "flowrl/env.h"
#include "flowrl/model.h"
#include "flowrl/task.h"
#include "flowrl/traj_objective.h"
#include "flowrl/opt.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* Runs body for every algorithm; the run names get the algorithm's name as prefix. */
#define FOR_EACH_ALGO(a) for (const fr_algo *const *a##_p = fr_algos(), *a; (a = *a##_p) != NULL; a##_p++)

static const char *rn(char *buf, size_t n, const fr_algo *a, const char *what)
{
    snprintf(buf, n, "%s-%s", a->name, what);
    return buf;
}

START_TEST(test_same_bytes_twice)
{
    FOR_EACH_ALGO(a) {
        char n1[64], n2[64];
        fr_rt_opts x, y;
        fr_rt_opts_init(&x, a, rn(n1, sizeof n1, a, "a"), 2);
        fr_rt_opts_init(&y, a, rn(n2, sizeof n2, a, "b"), 2);
        ck_assert_msg(fr_rt_run(&x, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        ck_assert_msg(fr_rt_run(&y, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        fr_rt_assert_same_records(n1, n2, 2);
        char p1[512], p2[512];
        size_t l1, l2;
        snprintf(p1, sizeof p1, "%s/%s/checkpoints/step-2.safetensors", fr_rt_dir, n1);
        snprintf(p2, sizeof p2, "%s/%s/checkpoints/step-2.safetensors", fr_rt_dir, n2);
        char *b1 = fr_test_slurp(p1, &l1), *b2 = fr_test_slurp(p2, &l2);
        ck_assert_msg(l1 == l2 && memcmp(b1, b2, l1) == 0, "%s: checkpoint bytes differ", a->name);
        free(b1);
        free(b2);
        /* the epochs really differ from each other (the update moved the policy) */
        char *rec = fr_rt_records(n1);
        ck_assert_ptr_nonnull(strstr(rec, "end-step 2 "));
        free(rec);
        fr_rt_opts_free(&x);
        fr_rt_opts_free(&y);
    }
}
END_TEST

START_TEST(test_resume_equals_uninterrupted)
{
    FOR_EACH_ALGO(a) {
        char whole[64], part[64];
        fr_rt_opts w, p;
        fr_rt_opts_init(&w, a, rn(whole, sizeof whole, a, "whole"), 3);
        fr_rt_opts_init(&p, a, rn(part, sizeof part, a, "part"), 1);
        ck_assert_msg(fr_rt_run(&w, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        ck_assert_msg(fr_rt_run(&p, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        fr_run_result res;
        ck_assert_msg(fr_rt_resume(part, 3, 0, "opt", 2, &res) == FR_OK, "%s resume: %s", a->name, fr_last_error());
        ck_assert_int_eq(res.first_epoch, 1);
        ck_assert_int_eq(res.epochs_done, 3);
        fr_rt_assert_same_records(whole, part, 3);
        fr_rt_opts_free(&w);
        fr_rt_opts_free(&p);
    }
}
END_TEST

/* Large enough that the opt kernels split across threads (rows of 2 × 64 × ... samples). */
/* A loop test, one algorithm per iteration (_i: its index in fr_algos()), each under the case's
 * timeout: the whole registry at four runs each took longer than one timeout under ASan. */
START_TEST(test_opt_threads_equal_ref)
{
    {
        const fr_algo *a = fr_algos()[_i];
        char rr[64];
        fr_rt_opts r;
        fr_rt_opts_init(&r, a, rn(rr, sizeof rr, a, "ref"), 2);
        if (a->on_env) { /* an environment algorithm at its tiny configuration with networks 256 wide and
                          * every op split across the threads (fr_opt_set_split_all); at the defaults, FPO's
                          * 512 updates of 512 rows an epoch take minutes on ref */
            fr_opts bo;
            ck_assert_int_eq(fr_run_opts_defaults(&bo, &r.ro, a, r.ao), FR_OK);
            if (a->tiny) a->tiny(&r.ro, r.ao);
            char *wide[] = {"train", "--hidden-dim", "256"};
            ck_assert_msg(fr_opts_parse(&bo, 3, wide, 1, NULL, 0, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
            snprintf(r.ro.run.out, sizeof r.ro.run.out, "%s/%s", fr_rt_dir, rr);
            r.ro.run.epochs = 2;
            r.ro.run.seed = 11;
            r.ro.ev.eval_n = 0;
        }
        r.ro.c.prompts = 8;
        r.ro.c.group = 64;
        r.ro.c.num_batches = 1;
        r.ro.c.grad_accum = 1;
        r.ro.smp.rollout_batch = 1024;
        r.ro.smp.cfg = 1.5f;
        ck_assert_msg(fr_rt_run(&r, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        for (int th = 1; th <= 3; th++) {
            char run[64];
            snprintf(run, sizeof run, "%s-opt%d", a->name, th);
            fr_rt_opts o = r;
            snprintf(o.ro.run.out, sizeof o.ro.run.out, "%s/%s", fr_rt_dir, run);
            fr_opt_set_threads(th);
            fr_opt_set_split_all(a->on_env); /* tiny networks: every op split, so the workers do run */
            fr_opt_set_fixed_parts(1); /* each worker its own part: a busy machine cannot leave them idle */
            unsigned long before = fr_opt_worker_parts();
            fr_status s = fr_rt_run(&o, "opt", th, NULL, NULL);
            unsigned long ran = fr_opt_worker_parts() - before;
            fr_opt_set_split_all(0);
            fr_opt_set_fixed_parts(0);
            fr_opt_set_threads(0);
            ck_assert_msg(s == FR_OK, "%s opt %d threads: %s", a->name, th, fr_last_error());
            /* the promise is about threads: with 2 and 3, workers must have done part of the work */
            if (th == 1)
                ck_assert_msg(ran == 0, "%s: 1 thread ran %lu worker parts", a->name, ran);
            else
                ck_assert_msg(ran > 0, "%s: %d threads, but no worker thread ran a part (the test proves nothing)",
                              a->name, th);
            fr_rt_assert_same_records(rr, run, 2);
        }
        fr_rt_opts_free(&r);
    }
}
END_TEST

/* The fused update (fr_traj_fused_step: an update's micro-steps in one forward and one backward)
 * writes the records of the micro-steps one by one (FLOWRL_FUSE=0), on ref and on opt at 2
 * threads; an algorithm whose updates never fuse (no trajectory micro-steps, or guidance in
 * training) is run all the same and must agree. */
START_TEST(test_fused_equals_one_by_one)
{
    const fr_algo *a = fr_algos()[_i];
    char one[64], fused[64], fused_opt[64];
    fr_rt_opts r;
    fr_rt_opts_init(&r, a, rn(one, sizeof one, a, "one"), 2);
    if (!a->on_env) r.ro.smp.cfg = 1.0f; /* the tiny config otherwise: an update's steps (and batches) fuse */
    setenv("FLOWRL_FUSE", "0", 1);
    fr_status s = fr_rt_run(&r, "ref", 1, NULL, NULL);
    unsetenv("FLOWRL_FUSE");
    ck_assert_msg(s == FR_OK, "%s: %s", a->name, fr_last_error());
    unsigned long before = fr_traj_fused_calls();
    fr_rt_opts f = r, g = r;
    snprintf(f.ro.run.out, sizeof f.ro.run.out, "%s/%s", fr_rt_dir, rn(fused, sizeof fused, a, "fused"));
    snprintf(g.ro.run.out, sizeof g.ro.run.out, "%s/%s", fr_rt_dir, rn(fused_opt, sizeof fused_opt, a, "fused-opt"));
    ck_assert_msg(fr_rt_run(&f, "ref", 1, NULL, NULL) == FR_OK, "%s fused: %s", a->name, fr_last_error());
    fr_opt_set_threads(2);
    s = fr_rt_run(&g, "opt", 2, NULL, NULL);
    fr_opt_set_threads(0);
    ck_assert_msg(s == FR_OK, "%s fused, opt: %s", a->name, fr_last_error());
    fr_rt_assert_same_records(one, fused, 2);
    fr_rt_assert_same_records(one, fused_opt, 2);
    const int ran = fr_traj_fused_calls() > before;
    fr_rt_opts_free(&r);
    /* the flow-grpo row must exercise it: a silent fallback would prove nothing */
    ck_assert_msg(ran || strcmp(a->name, "flow-grpo") != 0, "flow-grpo: no fused update ran");
}
END_TEST

/* `flowrl train` arguments of an algorithm's tiny run (backend ref), as argv. */
typedef struct {
    const char *v[48];
    char store[16][256];
    int n, ns;
} argv_b;

static void arg(argv_b *b, const char *s) { b->v[b->n++] = s; }
static void argf(argv_b *b, const char *flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->store[b->ns], sizeof b->store[0], fmt, ap);
    va_end(ap);
    b->v[b->n++] = flag;
    b->v[b->n++] = b->store[b->ns++];
}

/* The CLI form of fr_rt_opts_init: the tiny() values are passed through config.json
 * (--config), which is itself part of what is tested. */
static void cli_args(argv_b *b, const fr_algo *a, const char *run, int64_t epochs, const char *cfg_path)
{
    memset(b, 0, sizeof *b);
    arg(b, "train");
    argf(b, "--algo", "%s", a->name);
    argf(b, "--config", "%s", cfg_path);
    argf(b, "--out", "%s/%s", fr_rt_dir, run);
    argf(b, "--epochs", "%lld", (long long)epochs);
    arg(b, "--backend");
    arg(b, "ref");
    b->v[b->n] = NULL;
}

/* Every epoch's crossings of the host/backend boundary are metrics (copies.*, from the
 * handle's counters): with gradient clipping on, each optimiser step reads its norm back
 * (one d2h); metrics.jsonl carries the keys. */
typedef struct {
    int epochs;
    double v[4][8]; /* [key][epoch - 1] */
} copies_seen;

static const char *const k_copy_keys[4] = {"copies.h2d_calls", "copies.h2d_bytes", "copies.d2h_calls",
                                           "copies.d2h_bytes"};

static int record_copies(const fr_run_epoch_event *ev, void *user)
{
    copies_seen *c = user;
    if (ev->epoch >= 1 && ev->epoch <= 8) {
        for (int k = 0; k < 4; k++) c->v[k][ev->epoch - 1] = fr_run_event_get(ev, k_copy_keys[k]);
        c->epochs = (int)ev->epoch;
    }
    return 0;
}

START_TEST(test_copy_metrics)
{
    FOR_EACH_ALGO(a) {
        char run[64], path[512];
        fr_rt_opts o;
        fr_rt_opts_init(&o, a, rn(run, sizeof run, a, "copies"), 2);
        if (a->on_env) o.ro.opt.max_grad_norm = 1.0f; /* torchgfn does not clip: clipping on, to see its norm */
        ck_assert(o.ro.opt.max_grad_norm > 0.0f);
        copies_seen c = {0};
        fr_run_cb cb = {record_copies, NULL, NULL, &c, NULL};
        ck_assert_msg(fr_rt_run(&o, "ref", 1, &cb, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        ck_assert_int_eq(c.epochs, 2);
        for (int e = 0; e < 2; e++) {
            for (int k = 0; k < 4; k++)
                ck_assert_msg(c.v[k][e] >= 0.0, "%s epoch %d: %s = %g", a->name, e + 1, k_copy_keys[k], c.v[k][e]);
            ck_assert_msg(c.v[2][e] >= 1.0 && c.v[3][e] >= 4.0,
                          "%s epoch %d: %g d2h calls, %g bytes: the clipped norm never came back", a->name, e + 1,
                          c.v[2][e], c.v[3][e]);
        }
        snprintf(path, sizeof path, "%s/%s/metrics.jsonl", fr_rt_dir, run);
        size_t n;
        char *txt = fr_test_slurp(path, &n);
        for (int k = 0; k < 4; k++)
            ck_assert_msg(strstr(txt, k_copy_keys[k]), "%s: no %s in %s", a->name, k_copy_keys[k], path);
        free(txt);
        fr_rt_opts_free(&o);
    }
}
END_TEST

/* The NFE metrics (flowrl/backend.h fr_work_stats, docs/design.md): rows through the network
 * per epoch, forward and backward, and the run's forward-equivalents nfe.total = Σ (forward
 * + 2·backward). The held-out evaluations (before, every epoch, after) are not counted: a run
 * with them counts what a run without them counts; and a resumed run's nfe.total is the
 * uninterrupted run's. */
static const char *const k_nfe_keys[] = {"nfe.forward_rows", "nfe.backward_rows", "nfe.total", NULL};

START_TEST(test_nfe_metrics)
{
    FOR_EACH_ALGO(a) {
        char plain[64], evald[64], part[64];
        fr_rt_opts p, e, q;
        fr_rt_opts_init(&p, a, rn(plain, sizeof plain, a, "nfe"), 3);
        fr_rt_opts_init(&e, a, rn(evald, sizeof evald, a, "nfe-eval"), 3);
        fr_rt_opts_init(&q, a, rn(part, sizeof part, a, "nfe-part"), 1);
        e.ro.ev.eval_n = 2;
        e.ro.ev.eval_every = 1;
        fr_rt_metrics mp = {k_nfe_keys, {{0}}, 0}, me = {k_nfe_keys, {{0}}, 0};
        fr_run_cb cbp = {fr_rt_metrics_record, NULL, NULL, &mp, NULL}, cbe = {fr_rt_metrics_record, NULL, NULL, &me, NULL};
        ck_assert_msg(fr_rt_run(&p, "ref", 1, &cbp, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        ck_assert_msg(fr_rt_run(&e, "ref", 1, &cbe, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        ck_assert_int_eq(mp.epochs, 3);
        ck_assert_int_eq(me.epochs, 3);
        double total = 0.0;
        for (int k = 0; k < 3; k++) {
            ck_assert_msg(mp.v[0][k] > 0.0 && mp.v[1][k] > 0.0, "%s epoch %d: %g forward, %g backward rows", a->name,
                          k + 1, mp.v[0][k], mp.v[1][k]);
            total += mp.v[0][k] + 2.0 * mp.v[1][k];
            ck_assert_msg(mp.v[2][k] == total, "%s epoch %d: nfe.total %g, the epochs sum to %g", a->name, k + 1,
                          mp.v[2][k], total);
            for (int m = 0; m < 3; m++)
                ck_assert_msg(me.v[m][k] == mp.v[m][k], "%s epoch %d: %s %g with evaluations, %g without", a->name,
                              k + 1, k_nfe_keys[m], me.v[m][k], mp.v[m][k]);
        }
        /* resumed: the checkpoint carries the count (metadata nfe.total) */
        ck_assert_msg(fr_rt_run(&q, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        fr_run_result res;
        ck_assert_msg(fr_rt_resume(part, 3, 0, "ref", 1, &res) == FR_OK, "%s resume: %s", a->name, fr_last_error());
        char path[512];
        size_t n;
        snprintf(path, sizeof path, "%s/%s/metrics.jsonl", fr_rt_dir, part);
        char *txt = fr_test_slurp(path, &n), *last = txt;
        for (char *l = strchr(txt, '\n'); l && l[1]; l = strchr(l + 1, '\n')) last = l + 1;
        char want[64];
        snprintf(want, sizeof want, "\"nfe.total\":%.17g", mp.v[2][2]);
        ck_assert_msg(strstr(last, want) != NULL, "%s: resumed run's last metrics line has no %s: %s", a->name, want,
                      last);
        free(txt);
        fr_rt_opts_free(&p);
        fr_rt_opts_free(&e);
        fr_rt_opts_free(&q);
    }
}
END_TEST

/* Runs fn(a, backend name) for every backend whose memory is a device's (cuda-emu always;
 * cuda where a device answers), after closing the probe handle. */
#define FOR_EACH_DEVICE_BACKEND(name)                                                              \
    for (const char *const *name##_p = fr_backend_names(), *name; (name = *name##_p) != NULL; name##_p++) \
        if (device_backend(name))

static int device_backend(const char *name)
{
    fr_backend be;
    if (!fr_test_backend_try(&be, "algos", name, 1)) return 0;
    const int dev = be.device;
    fr_backend_close(&be);
    return dev;
}

/* Every device backend runs each algorithm's tiny configuration, with a held-out evaluation
 * before and after every epoch and a resume, to ref's audit records bit for bit: the whole
 * run (rollouts, rewards' input, updates, EMA, checkpoints, evaluation, sample grids) in
 * device memory the host cannot touch (cuda-emu stops the process on any host access). */
START_TEST(test_device_backends_equal_ref)
{
    FOR_EACH_ALGO(a) {
        char rr[64];
        fr_rt_opts r;
        fr_rt_opts_init(&r, a, rn(rr, sizeof rr, a, "dref"), 2);
        r.ro.ev.eval_n = 2;
        r.ro.ev.eval_every = 1;
        ck_assert_msg(fr_rt_run(&r, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        FOR_EACH_DEVICE_BACKEND(bk) {
            char run[64];
            fr_rt_opts o = r;
            snprintf(run, sizeof run, "%s-%s", a->name, bk);
            snprintf(o.ro.run.out, sizeof o.ro.run.out, "%s/%s", fr_rt_dir, run);
            o.ro.run.epochs = 1;
            ck_assert_msg(fr_rt_run(&o, bk, 1, NULL, NULL) == FR_OK, "%s on %s: %s", a->name, bk, fr_last_error());
            fr_run_result res;
            ck_assert_msg(fr_rt_resume(run, 2, 0, bk, 1, &res) == FR_OK, "%s resume on %s: %s", a->name, bk,
                          fr_last_error());
            fr_rt_assert_same_records(rr, run, 2);
        }
        fr_rt_opts_free(&r);
    }
}
END_TEST

/* What an epoch moves across the host/backend boundary on a device backend: the reward's
 * input (N·D floats, once), the tensors the audit log records, and per-sample values only.
 * On shapes (D = 768) one more batch-wide tensor would be N·D·4 = 24 KiB, several times the
 * per-sample budget of 32 bytes per sample and step for each pass (rollout, update). */
typedef struct {
    int epochs;
    double h2d[4], d2h[4], record[4], reward[4];
    double scored[4]; /* rows whose reward's input crossed (metric "scored"; NAN: the P·G samples) */
    /* a host-driven search's D-wide crossings, reported apart (Smart-GRPO: search.*; NAN: none) */
    double search_rows[4], search_h2d[4], search_d2h[4];
    double grad_h2d[4]; /* a reward gradient's upload (N·D floats, copies.h2d_reward_grad_bytes; NAN: none) */
    double map_h2d[4];  /* a per-pixel reward map's upload (N·H·W floats, copies.h2d_reward_map_bytes; NAN: none) */
    double kept; /* samples that reached an update, over the epochs (metric "kept") */
} dev_copies;

static int record_dev_copies(const fr_run_epoch_event *ev, void *user)
{
    dev_copies *c = user;
    if (ev->epoch >= 1 && ev->epoch <= 4) {
        const int e = (int)ev->epoch - 1;
        c->h2d[e] = fr_run_event_get(ev, "copies.h2d_bytes");
        c->d2h[e] = fr_run_event_get(ev, "copies.d2h_bytes");
        c->record[e] = fr_run_event_get(ev, "copies.d2h_record_bytes");
        c->reward[e] = fr_run_event_get(ev, "copies.d2h_reward_bytes");
        c->scored[e] = fr_run_event_get(ev, "scored");
        c->search_rows[e] = fr_run_event_get(ev, "search.rows");
        c->search_h2d[e] = fr_run_event_get(ev, "search.h2d_bytes");
        c->search_d2h[e] = fr_run_event_get(ev, "search.d2h_bytes");
        c->grad_h2d[e] = fr_run_event_get(ev, "copies.h2d_reward_grad_bytes");
        c->map_h2d[e] = fr_run_event_get(ev, "copies.h2d_reward_map_bytes");
        const double k = fr_run_event_get(ev, "kept");
        c->kept += k == k ? k : 1.0; /* an algorithm without the metric updates every sample */
        c->epochs = (int)ev->epoch;
    }
    return 0;
}

/* An environment algorithm's epoch on a device backend: no reward input; beyond the audit records
 * only each network row's input (obs_dim floats, + action_dim + 16 for a generative policy) in and its outputs (at most 2A + 1 logits: P_F,
 * P_B, log F) out and their gradient in, counted by the run's own NFE metrics, and a few scalars. */
static const char *const k_env_copy_keys[] = {"copies.h2d_bytes", "copies.d2h_bytes", "copies.d2h_record_bytes",
                                              "copies.d2h_reward_bytes", "nfe.forward_rows", "nfe.backward_rows", NULL};

static void env_device_copies(const fr_algo *a)
{
    FOR_EACH_DEVICE_BACKEND(bk) {
        char run[64];
        fr_rt_opts o;
        fr_rt_opts_init(&o, a, rn(run, sizeof run, a, "devcopies"), 2);
        fr_env env;
        ck_assert_int_eq(fr_env_create(o.ro.env_class, o.ro.env_opts, &env), FR_OK);
        /* a generative policy's row also carries its action-space state and a time embedding (<= 16) */
        /* outputs: logits (or means and log-stds) and a flow or value per row; a continuous GFlowNet's
         * Beta-mixture head (the Box: 1 + 3K, K = 2 components) at most 4 per action dimension, + 1 */
        const double I = env.obs_dim + env.action_dim + 16.0,
                     O = env.n_actions ? 2.0 * (env.n_actions + env.action_dim) + 1.0 : 4.0 * env.action_dim + 1.0;
        fr_env_free(&env);
        fr_rt_metrics m = {k_env_copy_keys, {{0}}, 0};
        fr_run_cb cb = {fr_rt_metrics_record, NULL, NULL, &m, NULL};
        ck_assert_msg(fr_rt_run(&o, bk, 1, &cb, NULL) == FR_OK, "%s on %s: %s", a->name, bk, fr_last_error());
        ck_assert_int_eq(m.epochs, 2);
        for (int e = 0; e < 2; e++) {
            const double h2d = m.v[0][e], d2h = m.v[1][e], rec = m.v[2][e], rew = m.v[3][e], fwd = m.v[4][e],
                         bwd = m.v[5][e];
            ck_assert_msg(fwd > 0.0 && bwd > 0.0, "%s on %s, epoch %d: %g forward, %g backward rows", a->name, bk, e + 1,
                          fwd, bwd);
            ck_assert_msg(rew == 0.0 && rec > 0.0, "%s on %s, epoch %d: reward input %g bytes, records %g", a->name, bk,
                          e + 1, rew, rec);
            const double slack = 256.0; /* scalars: log Z's gradient, the loss, a norm */
            ck_assert_msg(d2h - rec <= 4.0 * fwd * O + slack && h2d <= 4.0 * (fwd * I + bwd * O) + slack,
                          "%s on %s, epoch %d: %g bytes d2h beyond the records, %g h2d, for %g rows forward and %g "
                          "backward (a row's input %g floats, its outputs at most %g)",
                          a->name, bk, e + 1, d2h - rec, h2d, fwd, bwd, I, O);
        }
        fr_rt_opts_free(&o);
    }
}

START_TEST(test_device_epoch_copies)
{
    char base[400];
    const fr_task *task;
    ck_assert_int_eq(fr_task_get("shapes", &task), FR_OK);
    FOR_EACH_ALGO(a) {
        if (a->on_env) {
            env_device_copies(a);
            continue;
        }
        const double params = fr_rt_small_shapes_base(base, sizeof base, a->base_pred);
        FOR_EACH_DEVICE_BACKEND(bk) {
            char run[64];
            fr_rt_opts o;
            fr_rt_opts_init(&o, a, rn(run, sizeof run, a, "devcopies"), 2);
            snprintf(o.ro.c.base, sizeof o.ro.c.base, "%s", base);
            snprintf(o.ro.c.task, sizeof o.ro.c.task, "shapes");
            fr_rt_set_prefs(&o, "shapes");
            /* a graded reward (the mock program's sum of x[d]·(d+1)), so that a fresh model's
             * samples score apart and the updates run */
            snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "cmd:%s '%s/tests/reward_progs/mock_reward.py' ok",
                     fr_test_python(), fr_test_src());
            dev_copies c = {0};
            fr_run_cb cb = {record_dev_copies, NULL, NULL, &c, NULL};
            ck_assert_msg(fr_rt_run(&o, bk, 1, &cb, NULL) == FR_OK, "%s on %s: %s", a->name, bk, fr_last_error());
            ck_assert_int_eq(c.epochs, 2);
            ck_assert_msg(c.kept > 0, "%s on %s: no sample kept, the update passes did not run", a->name, bk);
            const double N = (double)(o.ro.c.prompts * o.ro.c.group), D = (double)task->D;
            const double steps = (double)(o.ro.smp.num_steps > 8 ? o.ro.smp.num_steps : 8);
            const double budget = 32.0 * N * steps * 2.0; /* 2: rollout and update passes */
            for (int e = 0; e < 2; e++) {
                double sh = 0.0, sd = 0.0;
                if (c.search_rows[e] == c.search_rows[e]) {
                    /* the search's decodes out (one D-wide row per candidate) and its candidates and the N
                     * searched x_T in, plus per-row condition ids: exactly what it says, nothing more */
                    sh = c.search_h2d[e], sd = c.search_d2h[e];
                    ck_assert_msg(sd == c.search_rows[e] * D * 4.0 &&
                                      sh >= (c.search_rows[e] + N) * D * 4.0 && sh <= (c.search_rows[e] + N) * D * 4.0 + budget,
                                  "%s on %s, epoch %d: the search moved %g bytes in, %g out for %g candidates", a->name, bk,
                                  e + 1, sh, sd, c.search_rows[e]);
                }
                c.d2h[e] -= sd;
                c.h2d[e] -= sh;
                if (c.grad_h2d[e] == c.grad_h2d[e]) { /* the reward gradient's N·D floats in, exactly once */
                    ck_assert_msg(c.grad_h2d[e] == N * D * 4.0 && c.h2d[e] >= c.grad_h2d[e],
                                  "%s on %s, epoch %d: reward gradient %g bytes in, want %g", a->name, bk, e + 1,
                                  c.grad_h2d[e], N * D * 4.0);
                    c.h2d[e] -= c.grad_h2d[e];
                }
                if (c.map_h2d[e] == c.map_h2d[e]) { /* PXPO's per-pixel map: N·H·W floats in, exactly once */
                    const double HW = (double)(task->H * task->W);
                    ck_assert_msg(c.map_h2d[e] == N * HW * 4.0 && c.h2d[e] >= c.map_h2d[e],
                                  "%s on %s, epoch %d: reward map %g bytes in, want %g", a->name, bk, e + 1, c.map_h2d[e],
                                  N * HW * 4.0);
                    c.h2d[e] -= c.map_h2d[e];
                }
                const double other = c.d2h[e] - c.record[e] - c.reward[e];
                /* G²RPO scores each of its rows once per granularity and says so; an offline
                 * algorithm (pairs from a preference file) scores none and says 0 */
                const double scored = c.scored[e] == c.scored[e] ? c.scored[e] : N;
                ck_assert_msg((scored >= N || scored == 0.0) && c.reward[e] == scored * D * 4.0,
                              "%s on %s, epoch %d: the reward's input crossed %g bytes, want %g", a->name, bk, e + 1,
                              c.reward[e], scored * D * 4.0);
                ck_assert_msg(c.record[e] >= 4.0 * params, "%s on %s, epoch %d: %g record bytes < the policy's %g", a->name,
                              bk, e + 1, c.record[e], 4.0 * params);
                ck_assert_msg(other >= 0.0 && other <= budget && c.h2d[e] <= budget,
                              "%s on %s, epoch %d: %g bytes d2h beyond records and the reward's input, %g h2d; "
                              "per-sample budget %g (a batch-wide tensor is %g)",
                              a->name, bk, e + 1, other, c.h2d[e], budget, N * D * 4.0);
                ck_assert_msg(N * D * 4.0 > 2.0 * budget, "the budget no longer separates per-sample values from tensors");
            }
            fr_rt_opts_free(&o);
        }
    }
}
END_TEST

/* The epsilon algorithms on a shapes base with the eps x0 head (the default of `pretrain --task
 * shapes --pred epsilon`; the gmm2d bases above keep gmm2d-s's velocity head): rollouts, DDIM
 * steps and backward passes through eps_head_fwd/bwd. 3 epochs on ref; the same on opt at 2
 * threads, and a 1-epoch ref run resumed on opt to 3, give the ref run's records bit for bit. */
START_TEST(test_eps_head_base)
{
    char base[400];
    int ran = 0;
    FOR_EACH_ALGO(a) {
        if (a->base_pred != FR_PRED_EPSILON) continue;
        fr_rt_small_shapes_base(base, sizeof base, a->base_pred);
        char nw[64], no[64], np[64];
        fr_rt_opts w, o, p;
        fr_rt_opts_init(&w, a, rn(nw, sizeof nw, a, "ehead"), 3);
        fr_rt_opts_init(&o, a, rn(no, sizeof no, a, "ehead-opt"), 3);
        fr_rt_opts_init(&p, a, rn(np, sizeof np, a, "ehead-part"), 1);
        fr_rt_opts *all[] = {&w, &o, &p};
        for (int i = 0; i < 3; i++) {
            snprintf(all[i]->ro.c.base, sizeof all[i]->ro.c.base, "%s", base);
            snprintf(all[i]->ro.c.task, sizeof all[i]->ro.c.task, "shapes");
            fr_rt_set_prefs(all[i], "shapes");
            /* a graded reward, so that a fresh model's samples score apart and the updates run */
            snprintf(all[i]->ro.c.reward, sizeof all[i]->ro.c.reward, "cmd:%s '%s/tests/reward_progs/mock_reward.py' ok",
                     fr_test_python(), fr_test_src());
        }
        ck_assert_msg(fr_rt_run(&w, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        ck_assert_msg(fr_rt_run(&o, "opt", 2, NULL, NULL) == FR_OK, "%s opt: %s", a->name, fr_last_error());
        ck_assert_msg(fr_rt_run(&p, "ref", 1, NULL, NULL) == FR_OK, "%s part: %s", a->name, fr_last_error());
        fr_run_result res;
        ck_assert_msg(fr_rt_resume(np, 3, 0, "opt", 2, &res) == FR_OK, "%s resume: %s", a->name, fr_last_error());
        ck_assert_int_eq(res.epochs_done, 3);
        fr_rt_assert_same_records(nw, no, 3);
        fr_rt_assert_same_records(nw, np, 3);
        /* the base really has the head */
        fr_model m;
        ck_assert_int_eq(fr_model_load(&m, fr_test_ref_be(), base), FR_OK);
        ck_assert(fr_model_eps_head(&m.cfg));
        fr_model_free(&m);
        char *rec = fr_rt_records(nw);
        ck_assert_ptr_nonnull(strstr(rec, "end-step 3 "));
        free(rec);
        for (int i = 0; i < 3; i++) fr_rt_opts_free(all[i]);
        ran++;
    }
    ck_assert_int_gt(ran, 0);
}
END_TEST

/* A config.json of the tiny configuration: a 1-epoch library run writes it. */
static void tiny_config(const fr_algo *a, const char *name, char *path, size_t n)
{
    char run[64];
    fr_rt_opts o;
    fr_rt_opts_init(&o, a, rn(run, sizeof run, a, name), 1);
    ck_assert_msg(fr_rt_run(&o, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
    snprintf(path, n, "%s/%s/config.json", fr_rt_dir, run);
    fr_rt_opts_free(&o);
}

START_TEST(test_cli_sigkill_then_resume)
{
    FOR_EACH_ALGO(a) {
        char cfg[512], killed[64], whole[64], out[16384];
        tiny_config(a, "cfgkill", cfg, sizeof cfg);
        argv_b b;
        cli_args(&b, a, rn(killed, sizeof killed, a, "killed"), 200, cfg);
        pid_t pid = fr_rt_spawn(b.v);
        fr_rt_wait_checkpoint(killed, 2, pid);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                      "%s: the child finished before SIGKILL (status %d)", a->name, status);
        /* resume on another backend and thread count, 3 epochs past what the log holds */
        char p[512];
        snprintf(p, sizeof p, "%s/%s/audit.log", fr_rt_dir, killed);
        fr_audit_log log;
        ck_assert_int_eq(fr_audit_read(&log, p), FR_OK);
        const int64_t E = (int64_t)log.n_steps + 3;
        fr_audit_log_free(&log);
        int rc = fr_rt_cli(out, sizeof out, "train --resume %s/%s --epochs %lld --backend opt --threads 2", fr_rt_dir,
                           killed, (long long)E);
        ck_assert_msg(rc == 0, "%s: resume exited %d:\n%.3000s", a->name, rc, out);
        fr_rt_opts w;
        fr_rt_opts_init(&w, a, rn(whole, sizeof whole, a, "whole"), E);
        ck_assert_msg(fr_rt_run(&w, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        fr_rt_assert_same_records(whole, killed, E);
        fr_rt_opts_free(&w);
    }
}
END_TEST

static void signal_case(const fr_algo *a, int sig, int want_status)
{
    char cfg[512], run[64], out[16384], p[512];
    tiny_config(a, sig == SIGINT ? "cfgint" : "cfgterm", cfg, sizeof cfg);
    argv_b b;
    cli_args(&b, a, rn(run, sizeof run, a, sig == SIGINT ? "int" : "term"), 100000, cfg);
    pid_t pid = fr_rt_spawn(b.v);
    fr_rt_wait_checkpoint(run, 1, pid);
    ck_assert_int_eq(kill(pid, sig), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == want_status, "%s: signal %d: status %d, expected exit %d",
                  a->name, sig, status, want_status);
    /* the log ends at a complete epoch, and that epoch has its checkpoint */
    snprintf(p, sizeof p, "%s/%s/audit.log", fr_rt_dir, run);
    fr_audit_log log;
    ck_assert_int_eq(fr_audit_read(&log, p), FR_OK);
    ck_assert_int_eq(log.incomplete_step, 0);
    ck_assert_int_ge(log.n_steps, 1);
    int64_t last = log.steps[log.n_steps - 1].step;
    fr_audit_log_free(&log);
    snprintf(p, sizeof p, "%s/%s/checkpoints/step-%lld.safetensors", fr_rt_dir, run, (long long)last);
    struct stat st;
    ck_assert_msg(stat(p, &st) == 0, "%s: no checkpoint for the last logged epoch %lld", a->name, (long long)last);
    int rc = fr_rt_cli(out, sizeof out, "train --resume %s/%s --epochs %lld", fr_rt_dir, run, (long long)last + 1);
    ck_assert_msg(rc == 0, "%s: resume exited %d:\n%.3000s", a->name, rc, out);
}

START_TEST(test_cli_signals_stop_at_epoch)
{
    FOR_EACH_ALGO(a) {
        signal_case(a, SIGINT, 130);
        signal_case(a, SIGTERM, 143);
    }
}
END_TEST

/* --config RUN/config.json reproduces the run: same config.json (but out), same records. */
START_TEST(test_config_round_trip)
{
    FOR_EACH_ALGO(a) {
        char cfg[512], again[64], out[16384], src[64];
        tiny_config(a, "cfgsrc", cfg, sizeof cfg);
        rn(src, sizeof src, a, "cfgsrc");
        rn(again, sizeof again, a, "again");
        int rc = fr_rt_cli(out, sizeof out, "train --config %s --out %s/%s --backend ref", cfg, fr_rt_dir, again);
        ck_assert_msg(rc == 0, "%s: --config exited %d:\n%.3000s", a->name, rc, out);
        fr_rt_assert_same_records(src, again, 1);
        char p2[512];
        size_t l1, l2;
        snprintf(p2, sizeof p2, "%s/%s/config.json", fr_rt_dir, again);
        char *c1 = fr_test_slurp(cfg, &l1), *c2 = fr_test_slurp(p2, &l2);
        /* identical but for "out" (and its resolved form) */
        char *o1 = strstr(c1, "\"out\""), *o2 = strstr(c2, "\"out\"");
        ck_assert_ptr_nonnull(o1);
        ck_assert_ptr_nonnull(o2);
        ck_assert_msg((size_t)(o1 - c1) == (size_t)(o2 - c2) && memcmp(c1, c2, (size_t)(o1 - c1)) == 0,
                      "%s: config.json before \"out\" differs:\n%s\n---\n%s", a->name, c1, c2);
        free(c1);
        free(c2);
    }
}
END_TEST

/* Every numeric option of every algorithm (common rows included): a value above its range
 * is refused before anything is written, in one line naming the flag, exit status 2. */
START_TEST(test_bad_values_one_line_exit_2)
{
    FOR_EACH_ALGO(a) {
        fr_rt_opts o;
        fr_rt_opts_init(&o, a, "bad", 1);
        fr_opts all;
        memset(&all, 0, sizeof all);
        fr_run_opts_bind(&all, &o.ro, a, o.ao);
        int tried = 0;
        for (int g = 0; g < all.ng; g++)
            for (int i = 0; i < all.g[g].n; i++) {
                const fr_opt *r = &all.g[g].rows[i];
                int numeric = r->kind == FR_OPT_I64 || r->kind == FR_OPT_INT || r->kind == FR_OPT_F32 ||
                              r->kind == FR_OPT_F64;
                if (!numeric || (r->lo == 0 && r->hi == 0) || r->hi >= 1e15) continue;
                char flag[96], out[8192];
                snprintf(flag, sizeof flag, "--%s", r->key);
                for (char *c = flag + 2; *c; c++)
                    if (*c == '_') *c = '-';
                double bad = r->hi > 0 ? r->hi * 10 + 1 : r->hi + 1;
                char base[1100] = ""; /* an environment algorithm has no --base */
                if (!a->on_env) snprintf(base, sizeof base, "--base %s", o.ro.c.base);
                int rc = fr_rt_cli(out, sizeof out, "train --algo %s %s --out %s/bad %s %.17g", a->name, base,
                                   fr_rt_dir, flag, bad);
                ck_assert_msg(rc == 2, "%s %s %g: exit %d, expected 2:\n%s", a->name, flag, bad, rc, out);
                ck_assert_msg(strstr(out, flag) != NULL, "%s %s: the message does not name the flag:\n%s", a->name,
                              flag, out);
                int lines = 0;
                for (const char *c = out; *c; c++) lines += *c == '\n';
                ck_assert_msg(lines == 1, "%s %s: %d lines, expected one:\n%s", a->name, flag, lines, out);
                char p[512];
                struct stat st;
                snprintf(p, sizeof p, "%s/bad", fr_rt_dir);
                ck_assert_msg(stat(p, &st) != 0, "%s %s: a refused run left %s", a->name, flag, p);
                tried++;
            }
        ck_assert_msg(tried >= 10, "%s: only %d numeric options checked", a->name, tried);
        fr_rt_opts_free(&o);
    }
}
END_TEST

START_TEST(test_algos_listed)
{
    char list[8192], out[16384];
    ck_assert_int_eq(fr_rt_cli(list, sizeof list, "algos"), 0);
    FOR_EACH_ALGO(a) {
        ck_assert_msg(strstr(list, a->name) && strstr(list, a->doc), "flowrl algos does not list %s:\n%.2000s", a->name,
                      list);
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", fr_test_src(), a->doc);
        ck_assert_msg(stat(p, &st) == 0, "%s: its docs page %s does not exist", a->name, a->doc);
        ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train --algo %s --help", a->name), 0);
        ck_assert_msg(strstr(out, a->doc) != NULL, "train --algo %s --help does not cite %s", a->name, a->doc);
    }
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train --algo no-such-algo --base x --out y"), 2);
    ck_assert_msg(strstr(out, "known:") != NULL, "an unknown --algo does not list the known ones:\n%.2000s", out);
}
END_TEST

/* flowrl algos --json: every registered algorithm in the registry's order, with its docs page, the
 * prediction of its base (what bench/bench_algos.py reads to give DDPO an epsilon base) and whether it
 * reads a preference file (what it reads to give the offline methods one). */
START_TEST(test_algos_json)
{
    char out[16384];
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "algos --json"), 0);
    const char *p = out;
    FOR_EACH_ALGO(a) {
        char want[512];
        snprintf(want, sizeof want, "\"name\":\t\"%s\"", a->name);
        const char *at = strstr(p, want);
        ck_assert_msg(at != NULL, "algos --json: %s missing or out of the registry's order:\n%.2000s", a->name, out);
        const char *next = strstr(at + 1, "\"name\":");
        snprintf(want, sizeof want, "\"trains_on\":\t\"%s\"", a->on_env ? "env" : "base");
        const char *on = strstr(at, want);
        ck_assert_msg(on && (!next || on < next), "algos --json: %s does not say %s", a->name, want);
        snprintf(want, sizeof want, "\"base_pred\":\t\"%s\"", fr_pred_name((fr_pred)a->base_pred));
        const char *bp = strstr(at, "\"base_pred\":");
        if (a->on_env) /* no base: no base_pred */
            ck_assert_msg(!bp || (next && bp > next), "algos --json: %s trains on an environment but has a base_pred", a->name);
        else
            ck_assert_msg((bp = strstr(at, want)) && (!next || bp < next), "algos --json: %s does not say base_pred %s",
                          a->name, fr_pred_name((fr_pred)a->base_pred));
        /* env_kind: said exactly for the algorithms that train on an environment (bench_control.py's rows) */
        const char *ek = strstr(at, "\"env_kind\":");
        snprintf(want, sizeof want, "\"env_kind\":\t\"%s\"", a->env_kind ? a->env_kind : "gfn");
        if (a->on_env)
            ck_assert_msg((ek = strstr(at, want)) && (!next || ek < next), "algos --json: %s does not say %s", a->name, want);
        else
            ck_assert_msg(!ek || (next && ek > next), "algos --json: %s trains a base but has an env_kind", a->name);
        /* prefs: said exactly for the algorithms with a --prefs option, and as the registry says */
        int has_row = 0;
        for (int i = 0; i < a->n_rows; i++) has_row |= strcmp(a->rows[i].key, "prefs") == 0;
        ck_assert_msg(has_row == (a->prefs != FR_ALGO_PREFS_NONE), "%s: --prefs option %d but registry prefs %d", a->name,
                      has_row, a->prefs);
        const char *pf = strstr(at, "\"prefs\":");
        if (a->prefs == FR_ALGO_PREFS_NONE)
            ck_assert_msg(!pf || (next && pf > next), "algos --json: %s reads no preference file but has prefs", a->name);
        else {
            snprintf(want, sizeof want, "\"prefs\":\t\"%s\"", a->prefs == FR_ALGO_PREFS_REQUIRED ? "required" : "optional");
            ck_assert_msg((pf = strstr(at, want)) && (!next || pf < next), "algos --json: %s does not say %s", a->name, want);
        }
        snprintf(want, sizeof want, "\"doc\":\t\"%s\"", a->doc);
        const char *doc = strstr(at, want);
        ck_assert_msg(doc && (!next || doc < next), "algos --json: %s does not cite %s", a->name, a->doc);
        p = at + 1;
    }
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "algos --yaml"), 2);
    ck_assert_msg(strstr(out, "--yaml") != NULL, "algos: an unknown option is not named:\n%.2000s", out);
}
END_TEST

Suite *suite_algos(void)
{
    Suite *s = suite_create("algos");
    TCase *tc = tcase_create("algos");
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_same_bytes_twice);
    tcase_add_test(tc, test_resume_equals_uninterrupted);
    int n_algos = 0;
    while (fr_algos()[n_algos]) n_algos++;
    tcase_add_loop_test(tc, test_opt_threads_equal_ref, 0, n_algos);
    tcase_add_loop_test(tc, test_fused_equals_one_by_one, 0, n_algos);
    tcase_add_test(tc, test_cli_sigkill_then_resume);
    tcase_add_test(tc, test_cli_signals_stop_at_epoch);
    tcase_add_test(tc, test_config_round_trip);
    tcase_add_test(tc, test_bad_values_one_line_exit_2);
    tcase_add_test(tc, test_algos_listed);
    tcase_add_test(tc, test_algos_json);
    tcase_add_test(tc, test_copy_metrics);
    tcase_add_test(tc, test_nfe_metrics);
    tcase_add_test(tc, test_device_backends_equal_ref);
    tcase_add_test(tc, test_device_epoch_copies);
    tcase_add_test(tc, test_eps_head_base);
    suite_add_tcase(s, tc);
    return s;
}
