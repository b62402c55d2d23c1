/* The opt backend's thread pool: nt-1 persistent workers plus the calling thread.
 *
 * One job at a time: the caller publishes (fn, ctx, nt) under a generation number,
 * wakes the workers and runs part 0 itself. Parts 1..nt-1 are claimed from a counter
 * tagged with the generation, by workers as they arrive and, once its part is done, by
 * the caller: the caller then waits only for parts a worker has started, never for a
 * worker still waking up (on a busy machine, or after a pause between ops, that wake-up
 * costs more than a small op). A part's work depends on its index only, never on the
 * thread that runs it. Under fr_opt_set_split_all or fr_opt_set_fixed_parts (the tests that prove the split) each
 * worker runs exactly its own part, and the caller waits for all of them.
 * Workers spin briefly on the generation before sleeping on a condition variable, so
 * back-to-back ops (a model step is hundreds of them) do not pay a futex wake each.
 *
 * Safety rules (see flowrl/opt.h): a trylock on `busy` admits one caller at a time; any
 * other caller (another thread, or a task calling an op) runs all parts itself. After
 * fork() the child starts with no workers (pthread_atfork), and the atexit join only
 * touches workers of the process that created them. */
#include "opt/opt_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Spin iterations before sleeping (a pause is ~40 ns on a Zen 4, so ~80 us): long enough
 * to bridge the gap between consecutive ops of a model step, short enough not to steal
 * much from other processes when the machine is oversubscribed. */
#define SPIN_ITERS 2000

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    pthread_mutex_t busy; /* held by the caller thread for the duration of a job */
    pthread_t th[FR_OPT_MAX_THREADS];
    int n_workers;            /* started workers: ids 1..n_workers */
    _Atomic unsigned long gen; /* job generation; workers wait for it to change */
    _Atomic int pending;       /* parts 1..nt-1 of the current job not yet finished */
    /* (gen mod 2^32) << 32 | the next unclaimed part: a claim is a compare-and-swap, so a
     * worker that read an older job's fields can never claim a part of a newer one */
    _Atomic uint64_t claim;
    int stop;
    fr_opt_task fn;
    void *ctx;
    int nt;
    int fixed; /* split_all: worker id runs part id, nobody claims */
    unsigned long start_gen[FR_OPT_MAX_THREADS]; /* gen when worker id was created */
    pid_t owner; /* process whose threads these are */
} pool_t;

static pool_t g_pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv_work = PTHREAD_COND_INITIALIZER,
    .cv_done = PTHREAD_COND_INITIALIZER,
    .busy = PTHREAD_MUTEX_INITIALIZER,
};
static _Atomic int g_threads; /* 0: default */
static _Atomic unsigned long g_worker_parts; /* parts run by worker threads (tests) */
static _Atomic unsigned char g_worker_ran[FR_OPT_MAX_THREADS]; /* worker id has run a part */
static _Atomic int g_split_all;
static _Atomic int g_fixed_parts;
/* fr_opt_pool_timing: the caller's wait for its workers, timed only when asked (flowrl/profile.h) */
static _Atomic int g_wait_timing;
static _Atomic unsigned long long g_wait_ns, g_jobs;

void fr_opt_pool_timing(int on) { atomic_store(&g_wait_timing, on != 0); }

void fr_opt_pool_stats(double *wait_s, uint64_t *jobs)
{
    *wait_s = 1e-9 * (double)atomic_load(&g_wait_ns);
    *jobs = atomic_load(&g_jobs);
}

static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

unsigned long fr_opt_worker_parts(void) { return atomic_load(&g_worker_parts); }

int fr_opt_workers_used(void)
{
    int n = 0;
    for (int i = 1; i < FR_OPT_MAX_THREADS; i++) n += atomic_load(&g_worker_ran[i]) != 0;
    return n;
}

void fr_opt_set_split_all(int on) { atomic_store(&g_split_all, on != 0); }

void fr_opt_set_fixed_parts(int on) { atomic_store(&g_fixed_parts, on != 0); }

int fr_opt_split_all(void) { return atomic_load(&g_split_all); }
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    return n > FR_OPT_MAX_THREADS ? FR_OPT_MAX_THREADS : (int)n;
}

void fr_opt_set_threads(int n)
{
    if (n > FR_OPT_MAX_THREADS) n = FR_OPT_MAX_THREADS;
    atomic_store(&g_threads, n > 0 ? n : 0);
}

int fr_opt_get_threads(void)
{
    int n = atomic_load(&g_threads);
    return n > 0 ? n : online_cpus();
}

static uint64_t claim_word(unsigned long gen, int part) { return (uint64_t)(uint32_t)gen << 32 | (uint32_t)part; }

/* Runs part `part` of the current job on thread id (0: the caller) and counts it done. */
static void run_part(fr_opt_task fn, void *ctx, int part, int nt, int id)
{
    fn(ctx, part, nt);
    if (id) {
        atomic_fetch_add_explicit(&g_worker_parts, 1, memory_order_relaxed);
        atomic_store_explicit(&g_worker_ran[id], 1, memory_order_relaxed);
    }
    if (atomic_fetch_sub_explicit(&g_pool.pending, 1, memory_order_acq_rel) == 1 && id) {
        pthread_mutex_lock(&g_pool.mu);
        pthread_cond_signal(&g_pool.cv_done);
        pthread_mutex_unlock(&g_pool.mu);
    }
}

/* Claims and runs parts of job gen until none is left (or a newer job has replaced it). */
static void run_claimed(unsigned long gen, fr_opt_task fn, void *ctx, int nt, int id)
{
    uint64_t w = atomic_load_explicit(&g_pool.claim, memory_order_acquire);
    while (w >> 32 == (uint32_t)gen && (int)(uint32_t)w < nt) {
        if (atomic_compare_exchange_weak_explicit(&g_pool.claim, &w, w + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            run_part(fn, ctx, (int)(uint32_t)w, nt, id);
            w = atomic_load_explicit(&g_pool.claim, memory_order_acquire);
        } /* else w now holds the current word */
    }
}

static void *worker_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    unsigned long seen = g_pool.start_gen[id]; /* written before pthread_create */
    for (;;) {
        unsigned long g = atomic_load_explicit(&g_pool.gen, memory_order_acquire);
        for (int spin = 0; g == seen && spin < SPIN_ITERS; spin++) {
            /* yield now and then: on a busy machine the caller may share this core */
            if (spin % 64 == 63) sched_yield();
            else CPU_RELAX();
            g = atomic_load_explicit(&g_pool.gen, memory_order_acquire);
        }
        pthread_mutex_lock(&g_pool.mu);
        while ((g = atomic_load(&g_pool.gen)) == seen && !g_pool.stop)
            pthread_cond_wait(&g_pool.cv_work, &g_pool.mu);
        int stop = g_pool.stop;
        fr_opt_task fn = g_pool.fn;
        void *ctx = g_pool.ctx;
        int nt = g_pool.nt, fixed = g_pool.fixed;
        pthread_mutex_unlock(&g_pool.mu);
        if (stop) break;
        seen = g;
        if (!fixed) run_claimed(g, fn, ctx, nt, id);
        else if (id < nt) run_part(fn, ctx, id, nt, id);
    }
    return NULL;
}

static void pool_join(void)
{
    if (g_pool.owner != getpid() || g_pool.n_workers == 0) return;
    /* exit() while another thread is inside an op: leave the workers to the exit */
    if (pthread_mutex_trylock(&g_pool.busy) != 0) return;
    pthread_mutex_lock(&g_pool.mu);
    g_pool.stop = 1;
    pthread_cond_broadcast(&g_pool.cv_work);
    pthread_mutex_unlock(&g_pool.mu);
    for (int i = 0; i < g_pool.n_workers; i++) pthread_join(g_pool.th[i], NULL);
    g_pool.n_workers = 0;
    g_pool.stop = 0;
    pthread_mutex_unlock(&g_pool.busy);
}

/* In the child of a fork only the forking thread exists: forget the parent's workers and
 * re-create the locks (one may have been held by a thread that is gone). */
static void pool_after_fork_child(void)
{
    pthread_mutex_init(&g_pool.mu, NULL);
    pthread_mutex_init(&g_pool.busy, NULL);
    pthread_cond_init(&g_pool.cv_work, NULL);
    pthread_cond_init(&g_pool.cv_done, NULL);
    g_pool.n_workers = 0;
    g_pool.stop = 0;
    atomic_store(&g_pool.pending, 0);
    g_pool.owner = getpid();
}

static void pool_once(void)
{
    g_pool.owner = getpid();
    pthread_atfork(NULL, NULL, pool_after_fork_child);
    atexit(pool_join);
}

/* Called with `busy` held: starts workers up to ids 1..want-1; returns how many parts
 * can run (fewer if a thread could not be created). */
static int pool_grow(int want)
{
    while (g_pool.n_workers < want - 1) {
        int id = g_pool.n_workers + 1;
        pthread_t t;
        g_pool.start_gen[id] = atomic_load(&g_pool.gen);
        if (pthread_create(&t, NULL, worker_main, (void *)(intptr_t)id) != 0) break;
        g_pool.th[g_pool.n_workers++] = t;
    }
    return g_pool.n_workers + 1 < want ? g_pool.n_workers + 1 : want;
}

static void run_serial(int nt, fr_opt_task fn, void *ctx)
{
    for (int t = 0; t < nt; t++) fn(ctx, t, nt);
}

void fr_opt_run(int nt, fr_opt_task fn, void *ctx)
{
    int max = fr_opt_get_threads();
    if (nt > max) nt = max;
    if (nt <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_once(&g_once, pool_once);
    if (pthread_mutex_trylock(&g_pool.busy) != 0) {
        run_serial(nt, fn, ctx);
        return;
    }
    int parts = pool_grow(nt);
    if (parts <= 1) { /* no worker could be started: same parts, one thread */
        pthread_mutex_unlock(&g_pool.busy);
        run_serial(nt, fn, ctx);
        return;
    }
    /* With fewer workers than asked for, the job is split into fewer parts. */
    pthread_mutex_lock(&g_pool.mu);
    g_pool.fn = fn;
    g_pool.ctx = ctx;
    g_pool.nt = parts;
    g_pool.fixed = fr_opt_split_all() || atomic_load(&g_fixed_parts);
    atomic_store(&g_pool.pending, parts - 1);
    unsigned long gen = atomic_load(&g_pool.gen) + 1;
    atomic_store_explicit(&g_pool.claim, claim_word(gen, 1), memory_order_release);
    atomic_store_explicit(&g_pool.gen, gen, memory_order_release);
    pthread_cond_broadcast(&g_pool.cv_work);
    pthread_mutex_unlock(&g_pool.mu);

    fn(ctx, 0, parts);
    if (!g_pool.fixed) run_claimed(gen, fn, ctx, parts, 0); /* the parts no worker has started yet */

    int timing = atomic_load_explicit(&g_wait_timing, memory_order_relaxed);
    unsigned long long t0 = timing ? now_ns() : 0;
    for (int spin = 0; atomic_load_explicit(&g_pool.pending, memory_order_acquire) != 0 &&
                       spin < SPIN_ITERS;
         spin++) {
        if (spin % 64 == 63) sched_yield(); /* a worker may be waiting for this core */
        else CPU_RELAX();
    }
    if (atomic_load_explicit(&g_pool.pending, memory_order_acquire) != 0) {
        pthread_mutex_lock(&g_pool.mu);
        while (atomic_load(&g_pool.pending) != 0) pthread_cond_wait(&g_pool.cv_done, &g_pool.mu);
        pthread_mutex_unlock(&g_pool.mu);
    }
    if (timing) atomic_fetch_add(&g_wait_ns, now_ns() - t0), atomic_fetch_add(&g_jobs, 1);
    pthread_mutex_unlock(&g_pool.busy);
}

int fr_opt_range_parts(int64_t n, int64_t align, int64_t min_chunk)
{
    if (n <= 0) return 1;
    if (align < 1) align = 1;
    if (min_chunk < align || fr_opt_split_all()) min_chunk = align;
    int64_t parts = n / min_chunk;
    int max = fr_opt_get_threads();
    if (parts > max) parts = max;
    return parts < 1 ? 1 : (int)parts;
}

typedef struct {
    int64_t n, align, n_chunks;
    _Atomic int64_t next;
    fr_opt_range_fn fn;
    void *ctx;
} range_job;

/* Threads take chunks from a shared counter (about three per thread, so a thread slowed
 * by a busy machine is covered by the others); chunk c is [c*n/nc, (c+1)*n/nc) with both
 * ends rounded down to a multiple of align (the last ends at n). */
static void range_part(void *arg, int t, int nt)
{
    (void)t, (void)nt;
    range_job *j = (range_job *)arg;
    int64_t units = (j->n + j->align - 1) / j->align;
    for (;;) {
        int64_t ch = atomic_fetch_add(&j->next, 1);
        if (ch >= j->n_chunks) break;
        int64_t b = units * ch / j->n_chunks * j->align, e = units * (ch + 1) / j->n_chunks * j->align;
        if (e > j->n || ch == j->n_chunks - 1) e = j->n;
        if (b < e) j->fn(j->ctx, b, e);
    }
}

void fr_opt_parallel_range(int64_t n, int64_t align, int64_t min_chunk, fr_opt_range_fn fn,
                           void *ctx)
{
    if (n <= 0) return;
    int nt = fr_opt_range_parts(n, align, min_chunk);
    if (nt <= 1) {
        fn(ctx, 0, n);
        return;
    }
    range_job j = {.n = n, .align = align < 1 ? 1 : align, .fn = fn, .ctx = ctx};
    if (fr_opt_split_all()) min_chunk = j.align;
    /* about three chunks per thread, none below min_chunk */
    int64_t nc = 3 * (int64_t)nt, max_nc = n / (min_chunk > j.align ? min_chunk : j.align);
    j.n_chunks = nc < max_nc ? nc : (max_nc > nt ? max_nc : nt);
    atomic_init(&j.next, 0);
    fr_opt_run(nt, range_part, &j);
}

typedef struct {
    int64_t n;
    _Atomic int64_t next;
    void (*fn)(void *ctx, int64_t i);
    void *ctx;
} for_job;

/* Each thread takes the next job from a shared counter: job 0 goes first (a caller puts its
 * longest job there). */
static void for_part(void *arg, int t, int nt)
{
    (void)t, (void)nt;
    for_job *j = (for_job *)arg;
    for (int64_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) j->fn(j->ctx, i);
}

void fr_opt_host_for(int64_t n, void (*fn)(void *ctx, int64_t i), void *ctx)
{
    int nt = fr_opt_get_threads();
    if (nt > n) nt = (int)n;
    if (nt <= 1) {
        for (int64_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    for_job j = {.n = n, .fn = fn, .ctx = ctx};
    atomic_init(&j.next, 0);
    fr_opt_run(nt, for_part, &j);
}
