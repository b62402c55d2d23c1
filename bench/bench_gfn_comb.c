/* The miniature of graph combinatorial optimisation with GFlowNets (docs/algorithms/gfn-comb.md
 * §6; spec more.md §8.2 Miniature): train FL-DB on a stream of Erdős–Rényi graphs, then on held-out
 * graphs compare the sampler's mean solution value with the brute-force optimum and with the
 * untrained start, per seed; on graphs of at most 12 nodes also the exact expectation under P_T
 * (DP over the state DAG) and under the target exp(κ u)/Z.
 *
 *   build/bench_gfn_comb [task mis|clique|mds|maxcut] [n] [p] [iterations] [seeds] [backend]
 *   make build/bench_gfn_comb && nice -n 10 build/bench_gfn_comb mis 10 0.3 150 3 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowrl/gfn_comb.h"

#define N_TEST 10
#define K_SAMPLES 32
#define TEST_ID0 1000000u /* held-out graph ids: never drawn for training */

typedef struct {
    fr_comb_trainer *t;
} pf_ctx;

static fr_graph *cur_g;

static void pf(void *ctx, const int8_t *s, double *logp)
{
    pf_ctx *c = ctx;
    if (fr_comb_policy(c->t, cur_g, s, logp, NULL) != FR_OK) {
        fprintf(stderr, "policy: %s\n", fr_last_error());
        exit(1);
    }
}

/* mean sampled value, mean exact E_PT[u], mean target E[u] over the held-out graphs */
static int evaluate(fr_comb_trainer *t, fr_comb_task task, fr_graph *tg, double kappa, double *smp, double *ex, double *tgt)
{
    *smp = *ex = *tgt = 0.0;
    for (int i = 0; i < N_TEST; i++) {
        double mean;
        if (fr_comb_sample(t, &tg[i], (uint32_t)i, K_SAMPLES, &mean, NULL) != FR_OK) return 1;
        *smp += mean / N_TEST;
        if (tg[i].n > 12) continue;
        int64_t N = 1;
        for (int k = 0; k < tg[i].n; k++) N *= 3;
        double *pt = malloc((size_t)N * sizeof *pt), *p = malloc((size_t)N * sizeof *p);
        pf_ctx c = {t};
        cur_g = &tg[i];
        if (!pt || !p || fr_comb_exact(task, &tg[i], kappa, pf, &c, pt, p) < 0) return 1;
        int8_t s[FR_COMB_MAX_NODES];
        for (int64_t code = 0; code < N; code++) {
            if (pt[code] == 0.0 && p[code] == 0.0) continue;
            int64_t r = code;
            for (int k = 0; k < tg[i].n; k++, r /= 3) s[k] = (int8_t)(r % 3);
            const double u = fr_comb_value(task, &tg[i], s);
            *ex += pt[code] * u / N_TEST;
            *tgt += p[code] * u / N_TEST;
        }
        free(pt);
        free(p);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *names[] = {"mis", "clique", "mds", "maxcut"};
    fr_comb_task task = FR_COMB_MIS;
    if (argc > 1)
        for (int k = 0; k < 4; k++)
            if (!strcmp(argv[1], names[k])) task = (fr_comb_task)k;
    const int n = argc > 2 ? atoi(argv[2]) : 10;
    const double p = argc > 3 ? atof(argv[3]) : 0.3;
    const int iters = argc > 4 ? atoi(argv[4]) : 150;
    const int seeds = argc > 5 ? atoi(argv[5]) : 3;
    const char *backend = argc > 6 ? argv[6] : "opt";
    fr_graph tg[N_TEST];
    double opt = 0.0;
    for (int i = 0; i < N_TEST; i++) {
        if (fr_graph_er(&tg[i], n, p, 1, TEST_ID0 + (uint32_t)i) != FR_OK) return 1;
        opt += fr_comb_brute_force(task, &tg[i]) / N_TEST;
    }
    printf("task %s, G(n=%d, p=%g), %d iterations, %d held-out graphs x %d samples, backend %s\n", names[task], n, p, iters,
           N_TEST, K_SAMPLES, backend);
    printf("brute-force optimum (mean over held-out graphs): %.4f\n", opt);
    printf("%-5s %-10s %-10s %-10s %-10s %-10s %-10s %-8s\n", "seed", "untrained", "exact0", "trained", "exact", "target",
           "kappa", "secs");
    for (int seed = 1; seed <= seeds; seed++) {
        fr_backend be;
        if (fr_backend_open(&be, backend, 0, 1) != FR_OK) {
            fprintf(stderr, "%s\n", fr_last_error());
            return 1;
        }
        fr_comb_opts o = fr_comb_opts_default();
        o.task = task;
        o.hidden = 32;
        o.layers = 3;
        o.max_nodes = n;
        o.bsit = 8;
        o.tstep = 10;
        o.tbatch = 64;
        o.lr = 1e-3;
        o.kappa0 = 1.0;
        o.kappa1 = 4.0; /* spec's miniature: κ <= 4 */
        o.anneal_graphs = (int64_t)iters * o.bsit / 2;
        o.seed = (uint32_t)seed;
        fr_comb_trainer *t;
        if (fr_comb_trainer_new(&t, &be, &o) != FR_OK) {
            fprintf(stderr, "%s\n", fr_last_error());
            return 1;
        }
        double s0, e0, g0, s1, e1, g1;
        if (evaluate(t, task, tg, o.kappa1, &s0, &e0, &g0)) return 1;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int it = 0; it < iters; it++) {
            fr_graph gs[8];
            for (int i = 0; i < o.bsit; i++)
                if (fr_graph_er(&gs[i], n, p, (uint32_t)seed, (uint32_t)(it * o.bsit + i)) != FR_OK) return 1;
            double loss;
            if (fr_comb_train_iter(t, gs, o.bsit, &loss) != FR_OK) {
                fprintf(stderr, "%s\n", fr_last_error());
                return 1;
            }
            for (int i = 0; i < o.bsit; i++) fr_graph_free(&gs[i]);
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (evaluate(t, task, tg, o.kappa1, &s1, &e1, &g1)) return 1;
        printf("%-5d %-10.4f %-10.4f %-10.4f %-10.4f %-10.4f %-10.3g %-8.1f\n", seed, s0, e0, s1, e1, g1, fr_comb_kappa(t),
               (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec));
        fflush(stdout);
        fr_comb_trainer_free(t);
        fr_backend_close(&be);
    }
    for (int i = 0; i < N_TEST; i++) fr_graph_free(&tg[i]);
    return 0;
}
