/* Where one RL epoch's time goes, and how close it runs to its GEMMs (issue 15).
 *
 *   bench_profile [--algo flow-grpo] [--base PATH | --preset shapes-m] [--threads N] [--epochs K]
 *                 [--json FILE] [--title TEXT] [--pairs P] [-- TRAIN-OPTIONS...]
 *
 * One process, canonical opt at N threads (pin it with taskset for "1 core"):
 *  1. the epoch time: a run of `flowrl train --algo ALGO` defaults (eval off, no checkpoints, plus
 *     TRAIN-OPTIONS, parsed like flowrl train's) of 1 + K epochs; the median of epochs 2..K+1
 *     (epoch 1 warms up); nothing is timed inside it;
 *  2. the profile: a second run of 2 epochs on the same backend with flowrl/profile.h's timing
 *     table installed; the table is reset when epoch 1 ends and read when epoch 2 ends, so it
 *     covers epoch 2 (and the metrics line between them);
 *  3. the GEMM-only bound: every GEMM shape the profiled epoch called, timed alone on the same
 *     backend and thread count (median of 3 samples of >= 20 ms of back-to-back calls, as
 *     bench_gemm), times its number of calls; with the epoch's GEMM FLOPs, the rate. A shape
 *     whose B lay in a frozen range (flowrl/ops.h freeze: the rollout's weights, packed once per
 *     rollout by opt) is its own row, timed alone with its B frozen too (packed by the untimed
 *     first call, so the bound leaves out the one packing per rollout that the epoch pays);
 *  4. the same ratio measured interleaved (the gate's reading): a third run of 1 + K epochs in
 *     which every epoch's end (epoch-end callback, outside the epoch's clock) replays the profiled
 *     epoch's GEMM calls alone: each shape of step 3, after one untimed call, called back to back
 *     its number of calls (timed), on the same backend and buffers made once before the run. Epoch
 *     1 and its replay warm up; then P pairs (epoch i, the replay right after it; --pairs P,
 *     default 15), each with its ratio replay / epoch; reported: the median of the P pair ratios
 *     and their interquartile range, in wall and in CPU time.
 * "% of the GEMM-only bound" = bound / epoch time (100%: the epoch is nothing but its GEMMs at
 * their isolated speed). Why step 4: steps 1 and 3 run seconds apart, and a shared VM's speed
 * drifts by more than the gate's margin between them (one process's ratio moved by +-15 points
 * from round to round); a pair's two halves run a fraction of a second apart, so a slow spell
 * lands on both and cancels in their ratio, and the median over pairs drops the pairs it split.
 * The epoch after a replay starts with the replay's buffers in cache instead of the previous
 * epoch's. --base PATH trains from a
 * checkpoint; --preset P from a one-step
 * pretrain of P on shapes (timing only: its rewards are noise, so pass a reward that scores every
 * sample differently, e.g. -- --reward cmd:...). --pairs 0 skips step 4. Prints Markdown; --json
 * writes the numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowrl/algo.h"
#include "flowrl/opts.h"
#include "flowrl/opt.h"
#include "flowrl/pretrain.h"
#include "flowrl/profile.h"
#include "flowrl/run.h"

#include "bench/bench_util.h"

#define MAX_EPOCHS 64
#define MAX_PROF_ROWS 512

/* Step 4's replay of an epoch's GEMM calls: one buffer set per shape, made before the run. */
typedef struct {
    fr_backend *be;
    const fr_profile_row *rows; /* the profiled epoch's rows (GEMMs and the rest) */
    int n_rows;
    float **A, **B, **C;
} gemm_replay;

typedef struct {
    double secs[MAX_EPOCHS];
    double cpu[MAX_EPOCHS]; /* the process's CPU time at each epoch's end */
    int n;
    int profile;   /* 1: reset after epoch 1, capture after epoch 2 */
    int cpu_clock; /* the profile in CPU time (one thread) */
    char *table;   /* fr_profile_print's Markdown of the window */
    double t_reset, window_s;
    fr_profile_row rows[MAX_PROF_ROWS];
    int n_rows;
    double pool_wait_s;
    uint64_t pool_jobs;
    gemm_replay *replay; /* step 4: replay at each epoch's end */
    double replay_s[MAX_EPOCHS], replay_cpu[MAX_EPOCHS]; /* the replay after epoch i */
    double cpu_after[MAX_EPOCHS];                        /* the CPU clock when that replay ended */
} epoch_log;

/* The process's CPU time: on a loaded machine one thread's CPU time is what it would have taken
 * alone (less cache and frequency effects); with more threads it sums them (spinning included). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double replay_gemms(gemm_replay *rp, double *cpu);

static int on_epoch(const fr_run_epoch_event *ev, void *user)
{
    epoch_log *l = (epoch_log *)user;
    if (l->n < MAX_EPOCHS) l->cpu[l->n] = cpu_s(), l->secs[l->n++] = ev->seconds;
    if (l->replay && l->n <= MAX_EPOCHS) { /* outside the epoch's clock (the next epoch starts its own) */
        l->replay_s[l->n - 1] = replay_gemms(l->replay, &l->replay_cpu[l->n - 1]);
        l->cpu_after[l->n - 1] = cpu_s();
    }
    if (l->profile && l->n == 1) {
        fr_profile_reset();
        l->t_reset = l->cpu_clock ? cpu_s() : bu_now_s();
    } else if (l->profile && l->n == 2) {
        l->window_s = (l->cpu_clock ? cpu_s() : bu_now_s()) - l->t_reset;
        l->n_rows = fr_profile_rows(l->rows, MAX_PROF_ROWS);
        if (l->n_rows > MAX_PROF_ROWS) l->n_rows = MAX_PROF_ROWS;
        fr_profile_pool(&l->pool_wait_s, &l->pool_jobs);
        /* the table of exactly this window (not the run's end, nor the GEMM timings after it) */
        size_t len = 0;
        FILE *mf = open_memstream(&l->table, &len);
        if (mf) fr_profile_print(mf, l->window_s), fclose(mf);
    }
    return 0;
}

static void info_quiet(const char *line, void *user) { (void)line, (void)user; }

/* One run of `epochs` epochs into dir on be; extra: TRAIN-OPTIONS. */
static fr_status train(const fr_algo *a, const char *base, int epochs, const char *dir, fr_backend *be, int argc,
                       char **argv, int first, epoch_log *log)
{
    fr_run_opts ro;
    void *ao = calloc(1, a->opts_size ? a->opts_size : 1);
    if (!ao) return FR_ERR_NOMEM;
    fr_opts o;
    fr_status s = fr_run_opts_defaults(&o, &ro, a, ao);
    if (s == FR_OK && first < argc) s = fr_opts_parse(&o, argc, argv, first, NULL, 0, NULL, NULL);
    if (s == FR_OK) {
        snprintf(ro.c.base, sizeof ro.c.base, "%s", base);
        snprintf(ro.run.out, sizeof ro.run.out, "%s", dir);
        ro.run.epochs = epochs;
        ro.run.checkpoint_every = 0;
        ro.ev.eval_n = 0;
        fr_run_cb cb = {.on_epoch = on_epoch, .on_info = info_quiet, .user = log};
        fr_run_env env = {be, &cb, NULL, NULL};
        fr_run_result res;
        s = fr_run_new(&ro, ao, &env, &res);
    }
    free(ao);
    return s;
}

static double fill_seed(float *x, int64_t n, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(seed >> 40) * 0x1p-24 - 0.5) * 0.1f;
    }
    return 0;
}

/* Seconds per call of one GEMM shape alone on be: median of 3 samples of >= 20 ms; *cpu: the same
 * in process CPU time. */
static double gemm_alone(fr_backend *be, const fr_profile_row *r, double *cpu)
{
    *cpu = 0;
    float *A = malloc(sizeof(float) * (size_t)(r->M * r->K)), *B = malloc(sizeof(float) * (size_t)(r->K * r->N));
    float *C = calloc((size_t)(r->M * r->N), sizeof(float));
    if (!A || !B || !C) {
        free(A), free(B), free(C);
        return 0;
    }
    fill_seed(A, r->M * r->K, 1), fill_seed(B, r->K * r->N, 2);
    double smp[3], csmp[3];
    const size_t b_bytes = sizeof(float) * (size_t)(r->K * r->N);
    if (r->frozen_b) fr_freeze(be, B, b_bytes, 1); /* as in the epoch: B packed once (the warm-up) */
    be->ops->gemm(r->ta, r->tb, r->M, r->N, r->K, A, B, C, r->acc); /* warm-up */
    for (int k = 0; k < 3; k++) {
        int n = 0;
        double t0 = bu_now_s(), c0 = cpu_s(), t;
        do {
            if (r->acc && n % 64 == 63) memset(C, 0, sizeof(float) * (size_t)(r->M * r->N)); /* stay finite */
            be->ops->gemm(r->ta, r->tb, r->M, r->N, r->K, A, B, C, r->acc);
            n++;
        } while ((t = bu_now_s() - t0) < 0.02);
        smp[k] = t / n;
        csmp[k] = (cpu_s() - c0) / n;
    }
    if (r->frozen_b) fr_freeze(be, B, b_bytes, 0);
    free(A), free(B), free(C);
    *cpu = bu_median(csmp, 3);
    return bu_median(smp, 3);
}

static void replay_free(gemm_replay *rp)
{
    for (int i = 0; i < rp->n_rows && rp->A; i++) free(rp->A[i]), free(rp->B[i]), free(rp->C[i]);
    free(rp->A), free(rp->B), free(rp->C);
    rp->A = rp->B = rp->C = NULL;
}

static int replay_init(gemm_replay *rp, fr_backend *be, const fr_profile_row *rows, int n_rows)
{
    *rp = (gemm_replay){be, rows, n_rows, calloc((size_t)n_rows + 1, sizeof(float *)),
                        calloc((size_t)n_rows + 1, sizeof(float *)), calloc((size_t)n_rows + 1, sizeof(float *))};
    if (!rp->A || !rp->B || !rp->C) return replay_free(rp), -1;
    for (int i = 0; i < n_rows; i++) {
        const fr_profile_row *r = &rows[i];
        if (!r->is_gemm) continue;
        rp->A[i] = malloc(sizeof(float) * (size_t)(r->M * r->K));
        rp->B[i] = malloc(sizeof(float) * (size_t)(r->K * r->N));
        rp->C[i] = calloc((size_t)(r->M * r->N), sizeof(float));
        if (!rp->A[i] || !rp->B[i] || !rp->C[i]) return replay_free(rp), -1;
        fill_seed(rp->A[i], r->M * r->K, 1), fill_seed(rp->B[i], r->K * r->N, 2);
    }
    return 0;
}

/* One replay of the epoch's GEMM calls: each shape one untimed call (its buffers warm, as in
 * gemm_alone's samples), then its number of calls back to back, timed; the sum over the shapes in
 * seconds (wall), *cpu: the process's CPU time. The accumulating shapes' outputs are zeroed before
 * each shape and every 64 calls (as gemm_alone) so that they stay finite. */
static double replay_gemms(gemm_replay *rp, double *cpu)
{
    double t = 0;
    *cpu = 0;
    for (int i = 0; i < rp->n_rows; i++) {
        const fr_profile_row *r = &rp->rows[i];
        if (!r->is_gemm) continue;
        if (r->acc) memset(rp->C[i], 0, sizeof(float) * (size_t)(r->M * r->N));
        const size_t b_bytes = sizeof(float) * (size_t)(r->K * r->N);
        if (r->frozen_b) fr_freeze(rp->be, rp->B[i], b_bytes, 1); /* packed once, by the untimed call */
        rp->be->ops->gemm(r->ta, r->tb, r->M, r->N, r->K, rp->A[i], rp->B[i], rp->C[i], r->acc);
        double t0 = bu_now_s(), c0 = cpu_s();
        for (uint64_t c = 0; c < r->calls; c++) {
            if (r->acc && c % 64 == 63) memset(rp->C[i], 0, sizeof(float) * (size_t)(r->M * r->N));
            rp->be->ops->gemm(r->ta, r->tb, r->M, r->N, r->K, rp->A[i], rp->B[i], rp->C[i], r->acc);
        }
        t += bu_now_s() - t0;
        *cpu += cpu_s() - c0;
        if (r->frozen_b) fr_freeze(rp->be, rp->B[i], b_bytes, 0);
    }
    return t;
}

/* The q-quantile (0..1) of v[0..n) (sorts v), linear between order statistics. */
static double quantile(double *v, int n, double q)
{
    if (n <= 0) return 0.0;
    qsort(v, (size_t)n, sizeof *v, bu_cmp_double);
    double x = q * (n - 1);
    int i = (int)x;
    return i + 1 < n ? v[i] + (x - i) * (v[i + 1] - v[i]) : v[n - 1];
}

/* Step 4's reading: the median and quartiles of the pairs' ratios (bound / epoch), wall and CPU. */
typedef struct {
    int n;
    double med, q1, q3, cmed, cq1, cq3, epoch_med, replay_med;
    double ratio[MAX_EPOCHS], cratio[MAX_EPOCHS];
} pair_stats;

static void pairs_of(const epoch_log *l, pair_stats *ps)
{
    double r[MAX_EPOCHS], c[MAX_EPOCHS], e[MAX_EPOCHS], b[MAX_EPOCHS];
    ps->n = 0;
    for (int i = 1; i < l->n; i++) { /* epoch 0 and its replay: the warm-up */
        double ecpu = l->cpu[i] - l->cpu_after[i - 1]; /* from the last replay's end to this epoch's end */
        r[ps->n] = l->replay_s[i] / l->secs[i];
        c[ps->n] = l->replay_cpu[i] / ecpu;
        ps->ratio[ps->n] = r[ps->n], ps->cratio[ps->n] = c[ps->n];
        e[ps->n] = l->secs[i], b[ps->n] = l->replay_s[i];
        ps->n++;
    }
    ps->med = quantile(r, ps->n, 0.5), ps->q1 = quantile(r, ps->n, 0.25), ps->q3 = quantile(r, ps->n, 0.75);
    ps->cmed = quantile(c, ps->n, 0.5), ps->cq1 = quantile(c, ps->n, 0.25), ps->cq3 = quantile(c, ps->n, 0.75);
    ps->epoch_med = quantile(e, ps->n, 0.5), ps->replay_med = quantile(b, ps->n, 0.5);
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_profile [--algo NAME] [--base PATH | --preset NAME] [--threads N] [--epochs K] "
                    "[--json FILE] [--title TEXT] [--pairs P] [-- TRAIN-OPTIONS...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *algo = "flow-grpo", *base = NULL, *preset = NULL, *json = NULL, *title = NULL;
    int threads = 1, epochs = 5, first = argc, pairs = 15;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            first = i + 1;
            break;
        } else if (strcmp(argv[i], "--algo") == 0 && i + 1 < argc) algo = argv[++i];
        else if (strcmp(argv[i], "--base") == 0 && i + 1 < argc) base = argv[++i];
        else if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) preset = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) json = argv[++i];
        else if (strcmp(argv[i], "--title") == 0 && i + 1 < argc) title = argv[++i];
        else if (strcmp(argv[i], "--pairs") == 0 && i + 1 < argc) pairs = atoi(argv[++i]);
        else return usage();
    }
    if ((!base) == (!preset) || threads < 1 || epochs < 1 || epochs >= MAX_EPOCHS || pairs < 0 || pairs >= MAX_EPOCHS)
        return usage();
    const fr_algo *a;
    fr_backend be;
    if (fr_algo_find(algo, &a) != FR_OK || fr_backend_open(&be, "opt", 0, threads) != FR_OK) {
        fprintf(stderr, "bench_profile: %s\n", fr_last_error());
        return 1;
    }
    char root[] = "/tmp/flowrl-bench-profile-XXXXXX", path[512];
    if (!mkdtemp(root)) {
        perror("bench_profile: mkdtemp");
        return 1;
    }
    int rc = 1;
    if (preset) { /* a one-step pretrain: the network's shapes, not a useful base */
        fr_pretrain_cfg pc = fr_pretrain_defaults();
        pc.task = "shapes";
        pc.preset = preset;
        pc.steps = 1;
        pc.batch = 8;
        snprintf(path, sizeof path, "%s/base.safetensors", root);
        pc.out = path;
        fr_pretrain_result pr;
        if (fr_pretrain(&pc, &be, NULL, NULL, &pr) != FR_OK) goto fail;
        base = path;
    }
    char dir[600];
    epoch_log plain = {0};
    snprintf(dir, sizeof dir, "%s/plain", root);
    if (train(a, base, 1 + epochs, dir, &be, argc, argv, first, &plain) != FR_OK) goto fail;
    static epoch_log prof; /* large: not on the stack */
    prof.profile = 1;
    prof.cpu_clock = threads == 1; /* one thread: CPU time, robust to a loaded machine */
    fr_profile_use_cpu_time(prof.cpu_clock);
    fr_backend pbe = be;
    pbe.ops = fr_profile_ops(be.ops);
    if (!pbe.ops) {
        fprintf(stderr, "bench_profile: the op table is already profiled (unset FLOWRL_PROFILE)\n");
        goto out;
    }
    snprintf(dir, sizeof dir, "%s/prof", root);
    if (train(a, base, 2, dir, &pbe, argc, argv, first, &prof) != FR_OK) goto fail;
    double epoch_s = bu_median(plain.secs + 1, plain.n - 1), ecpu[MAX_EPOCHS];
    for (int i = 1; i < plain.n; i++) ecpu[i - 1] = plain.cpu[i] - plain.cpu[i - 1];
    double epoch_cpu = bu_median(ecpu, plain.n - 1);

    /* the GEMM-only bound of the profiled epoch's shapes */
    double bound = 0, bound_cpu = 0, flops = 0, in_epoch = 0;
    static double alone_s[MAX_PROF_ROWS]; /* seconds per call of each GEMM row alone */
    for (int i = 0; i < prof.n_rows; i++) {
        const fr_profile_row *r = &prof.rows[i];
        if (!r->is_gemm) continue;
        double c, t = alone_s[i] = gemm_alone(&be, r, &c);
        bound += t * (double)r->calls;
        bound_cpu += c * (double)r->calls;
        flops += 2.0 * (double)r->M * (double)r->N * (double)r->K * (double)r->calls;
        in_epoch += r->seconds;
    }
    /* step 4: the interleaved pairs (after step 3, so that its figures stay those of before) */
    static epoch_log inter; /* large: not on the stack */
    static pair_stats ps;
    gemm_replay rp = {0};
    if (pairs) {
        if (replay_init(&rp, &be, prof.rows, prof.n_rows) != 0) {
            fprintf(stderr, "bench_profile: out of memory for the GEMM replay\n");
            goto out;
        }
        inter.replay = &rp;
        snprintf(dir, sizeof dir, "%s/pairs", root);
        fr_status ps_s = train(a, base, 1 + pairs, dir, &be, argc, argv, first, &inter);
        replay_free(&rp);
        if (ps_s != FR_OK) goto fail;
        pairs_of(&inter, &ps);
    }
    double load = bu_loadavg();
    printf("### %s\n\n", title ? title : algo);
    printf("`bench_profile --algo %s %s %s --threads %d --epochs %d --pairs %d%s`: canonical opt, %d thread%s; load average "
           "%.2f. Epoch (median of %d, unprofiled): **%.3f s**. GEMMs: %.3f GFLOP per epoch; alone, at this "
           "thread count, %.3f s (%.1f GFLOP/s): **%.0f%% of the GEMM-only bound** (bound / epoch). Inside the "
           "profiled epoch the GEMMs took %.3f s (%.1f GFLOP/s). Profiled epoch %.3f s (the table's total: "
           "%.3f s from the end of epoch 1 to the end of epoch 2). In process CPU time (all threads; robust to "
           "load at one thread): epoch %.3f s, GEMMs alone %.3f s, %.0f%%.\n\n",
           algo, preset ? "--preset" : "--base", preset ? preset : base, threads, epochs, pairs,
           first < argc ? " -- ..." : "", threads, threads > 1 ? "s" : "", load, plain.n - 1, epoch_s,
           flops * 1e-9, bound, flops * 1e-9 / bound, 100 * bound / epoch_s, in_epoch, flops * 1e-9 / in_epoch,
           prof.secs[1], prof.window_s, epoch_cpu, bound_cpu, 100 * bound_cpu / epoch_cpu);
    if (pairs)
        printf("Interleaved (the gate's reading): a third run whose every epoch is followed by one replay of "
               "the epoch's GEMM calls alone; %d pairs (epoch, replay) after a warm-up pair, epochs %.3f s and "
               "replays %.3f s (medians): **%.0f%% of the GEMM-only bound** (median of the pairs' ratios; "
               "interquartile range %.0f-%.0f%%); in CPU time %.0f%% (%.0f-%.0f%%). Steps 1 and 3 above run "
               "seconds apart, a pair's halves a fraction of a second apart: a drift of the machine's speed "
               "lands on both halves of a pair and cancels in its ratio.\n\n",
               ps.n, ps.epoch_med, ps.replay_med, 100 * ps.med, 100 * ps.q1, 100 * ps.q3, 100 * ps.cmed,
               100 * ps.cq1, 100 * ps.cq3);
    /* the profile of epoch 2 */
    printf("The profile below: self %s of epoch 2.\n\n",
           prof.cpu_clock ? "CPU times (the thread's CPU clock; total = the process's CPU time over the epoch)"
                          : "wall times");
    fputs(prof.table ? prof.table : "(no profile table: out of memory)\n", stdout);
    free(prof.table);
    printf("\n");
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            perror(json);
            goto out;
        }
        fprintf(f, "{\"algo\": \"%s\", \"threads\": %d, \"epochs\": [", algo, threads);
        for (int i = 1; i < plain.n; i++) fprintf(f, "%s%.6f", i > 1 ? ", " : "", plain.secs[i]);
        fprintf(f, "], \"epoch_s\": %.6f, \"gemm_flops\": %.0f, \"gemm_bound_s\": %.6f, \"gemm_in_epoch_s\": %.6f, \"epoch_cpu_s\": %.6f, \"gemm_bound_cpu_s\": %.6f, "
                   "\"profiled_epoch_s\": %.6f, \"window_s\": %.6f, \"pool_wait_s\": %.6f, \"pool_jobs\": %llu, "
                   "\"load\": %.2f, \"profile_clock\": \"%s\", ",
                epoch_s, flops, bound, in_epoch, epoch_cpu, bound_cpu, prof.secs[1], prof.window_s, prof.pool_wait_s,
                (unsigned long long)prof.pool_jobs, load, prof.cpu_clock ? "cpu" : "wall");
        if (pairs) {
            fprintf(f, "\"pairs\": {\"n\": %d, \"median\": %.6f, \"q1\": %.6f, \"q3\": %.6f, \"cpu_median\": %.6f, "
                       "\"cpu_q1\": %.6f, \"cpu_q3\": %.6f, \"epoch_median_s\": %.6f, \"replay_median_s\": %.6f, "
                       "\"ratios\": [",
                    ps.n, ps.med, ps.q1, ps.q3, ps.cmed, ps.cq1, ps.cq3, ps.epoch_med, ps.replay_med);
            for (int i = 0; i < ps.n; i++) fprintf(f, "%s%.6f", i ? ", " : "", ps.ratio[i]);
            fprintf(f, "], \"cpu_ratios\": [");
            for (int i = 0; i < ps.n; i++) fprintf(f, "%s%.6f", i ? ", " : "", ps.cratio[i]);
            fprintf(f, "]}, ");
        }
        fprintf(f, "\"rows\": [");
        for (int i = 0; i < prof.n_rows; i++) {
            const fr_profile_row *r = &prof.rows[i];
            fprintf(f, "%s{\"group\": \"%s\", \"what\": \"%s\", \"calls\": %llu, \"seconds\": %.6f", i ? ", " : "",
                    r->group, r->what, (unsigned long long)r->calls, r->seconds);
            if (r->is_gemm) fprintf(f, ", \"alone_s\": %.6f", alone_s[i] * (double)r->calls);
            fprintf(f, "}");
        }
        fprintf(f, "]}\n");
        fclose(f);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "bench_profile: %s\n", fr_last_error());
out:
    bu_rmtree(root);
    return rc;
}
