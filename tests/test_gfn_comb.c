/* Graph combinatorial optimisation with GFlowNets (flowrl/gfn_comb.h; spec more.md §8.2;
 * docs/algorithms/gfn-comb.md): the spec's path-graph values, each task's transitions by hand,
 * reachable terminals = valid solutions whose best is the brute-force optimum, the edge ops
 * ref = opt = cuda-emu bit for bit, the FL-DB telescoping identity, the trainer's bits on every
 * backend, and training beating the untrained policy on MIS. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/backend.h"
#include "flowrl/digest.h"
#include "flowrl/gfn_comb.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static fr_graph path3(void)
{
    const int32_t e[] = {0, 1, 1, 2};
    fr_graph g;
    ck_assert_int_eq(fr_graph_new(&g, 3, 2, e), FR_OK);
    return g;
}

/* spec §8.2 Checks: terminals {1} (1/3) and {0, 2} (2/3) under the uniform policy; #parents of
 * (1, 0, 1) = 2; P({1}) = e / (e + e²) = 0.268941 at κ = 1. */
START_TEST(test_comb_path_graph)
{
    fr_graph g = path3();
    double pt[27], tg[27];
    ck_assert_int_eq(fr_comb_exact(FR_COMB_MIS, &g, 1.0, NULL, NULL, pt, tg), 2);
    const int8_t x1[] = {0, 1, 0}, x02[] = {1, 0, 1};
    const int64_t c1 = fr_comb_code(3, x1), c02 = fr_comb_code(3, x02);
    ck_assert_double_eq_tol(pt[c1], 1.0 / 3.0, 1e-15);
    ck_assert_double_eq_tol(pt[c02], 2.0 / 3.0, 1e-15);
    ck_assert_int_eq(fr_comb_parents(FR_COMB_MIS, 3, x02), 2);
    ck_assert_double_eq_tol(tg[c1], 0.268941, 5e-7);
    ck_assert_double_eq_tol(tg[c1], exp(1.0) / (exp(1.0) + exp(2.0)), 1e-15);
    /* the step from s0 at node 0 decides node 1 */
    int8_t s[3], s2[3];
    fr_comb_initial(3, s);
    fr_comb_step(FR_COMB_MIS, &g, s, 0, s2);
    ck_assert(s2[0] == 1 && s2[1] == 0 && s2[2] == 2);
    fr_graph_free(&g);
}
END_TEST

/* util.py's rules by hand on the path 0–1–2 and the triangle with a tail 0–1, 1–2, 0–2, 2–3. */
START_TEST(test_comb_rules_by_hand)
{
    const int32_t e[] = {0, 1, 1, 2, 0, 2, 2, 3};
    fr_graph g;
    ck_assert_int_eq(fr_graph_new(&g, 4, 4, e), FR_OK);
    int8_t s[4], t[4];
    /* MaxClique: pick 3: nodes not adjacent to 3 (0, 1) → 0 */
    fr_comb_initial(4, s);
    fr_comb_step(FR_COMB_CLIQUE, &g, s, 3, t);
    ck_assert(t[0] == 0 && t[1] == 0 && t[2] == 2 && t[3] == 1);
    fr_comb_step(FR_COMB_CLIQUE, &g, t, 2, t);
    ck_assert(fr_comb_done(4, t) && fr_comb_value(FR_COMB_CLIQUE, &g, t) == 2.0);
    /* MaxCut: pick 2 (degree 3): every neighbour has one 1-neighbour and ≥ 1 0/2-neighbours,
     * except 3 (its only neighbour is 2): 1 > 0 → 0 */
    fr_comb_initial(4, s);
    fr_comb_step(FR_COMB_MAXCUT, &g, s, 2, t);
    ck_assert(t[0] == 2 && t[1] == 2 && t[2] == 1 && t[3] == 0);
    ck_assert_double_eq(fr_comb_value(FR_COMB_MAXCUT, &g, t), 3.0); /* 2 as 0: edges 0–2, 1–2, 2–3 cut */
    /* MDS: delete 3: its neighbour 2 keeps 3 dominated only if 2 stays (3 is a 0 with in-set
     * degree 1) → 2 → 1 */
    fr_comb_initial(4, s);
    fr_comb_step(FR_COMB_MDS, &g, s, 3, t);
    ck_assert(t[0] == 2 && t[1] == 2 && t[2] == 1 && t[3] == 0);
    ck_assert_int_eq(fr_comb_parents(FR_COMB_MDS, 4, t), 1);
    fr_comb_step(FR_COMB_MDS, &g, t, 0, t); /* 1's only in-set neighbour left is 2 and itself */
    ck_assert(t[0] == 0 && t[2] == 1);
    ck_assert_double_eq(fr_comb_brute_force(FR_COMB_MDS, &g), -1.0);    /* {2} dominates */
    ck_assert_double_eq(fr_comb_brute_force(FR_COMB_CLIQUE, &g), 3.0);  /* {0, 1, 2} */
    ck_assert_double_eq(fr_comb_brute_force(FR_COMB_MIS, &g), 2.0);
    ck_assert_double_eq(fr_comb_brute_force(FR_COMB_MAXCUT, &g), 3.0);
    fr_graph_free(&g);
}
END_TEST

static int valid(fr_comb_task task, const fr_graph *g, const int8_t *s)
{
    const int n = g->n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            if (i == j) continue;
            const int a = g->adj[i * n + j];
            if (task == FR_COMB_MIS && s[i] == 1 && s[j] == 1 && a) return 0;
            if (task == FR_COMB_CLIQUE && s[i] == 1 && s[j] == 1 && !a) return 0;
        }
    if (task == FR_COMB_MDS)
        for (int i = 0; i < n; i++) {
            int dom = s[i] == 1;
            for (int j = 0; j < n; j++) dom |= g->adj[i * n + j] && s[j] == 1;
            if (!dom) return 0;
        }
    return 1;
}

/* On Erdős–Rényi graphs of 8–10 nodes: every terminal reachable from s0 is a valid solution and
 * the best of them is the brute-force optimum (MIS, MaxClique, MDS: the optimum is maximal /
 * minimal, so reachable); MaxCut's best reachable cut is at most the optimum. */
START_TEST(test_comb_terminals_vs_brute_force)
{
    for (int task = 0; task < 4; task++)
        for (uint32_t id = 0; id < 3; id++) {
            fr_graph g;
            const int n = 8 + (int)id;
            ck_assert_int_eq(fr_graph_er(&g, n, 0.35, 7, id), FR_OK);
            int64_t N = 1;
            for (int i = 0; i < n; i++) N *= 3;
            double *pt = malloc((size_t)N * sizeof *pt);
            ck_assert_int_gt(fr_comb_exact((fr_comb_task)task, &g, 1.0, NULL, NULL, pt, NULL), 0);
            double best = -INFINITY, mass = 0.0;
            int8_t s[FR_COMB_MAX_NODES];
            for (int64_t c = 0; c < N; c++) {
                if (pt[c] == 0.0) continue;
                int64_t r = c;
                for (int i = 0; i < n; i++, r /= 3) s[i] = (int8_t)(r % 3);
                ck_assert(fr_comb_done(n, s));
                ck_assert_msg(valid((fr_comb_task)task, &g, s), "task %d graph %u: an invalid terminal", task, id);
                double u = fr_comb_value((fr_comb_task)task, &g, s);
                if (u > best) best = u;
                mass += pt[c];
            }
            ck_assert_double_eq_tol(mass, 1.0, 1e-12);
            const double opt = fr_comb_brute_force((fr_comb_task)task, &g);
            if (task == FR_COMB_MAXCUT) ck_assert(best <= opt);
            else ck_assert_msg(best == opt, "task %d graph %u: best reachable %g, optimum %g", task, id, best, opt);
            free(pt);
            fr_graph_free(&g);
        }
}
END_TEST

/* edge_gather / edge_scatter_add on opt (1 and 3 threads) and cuda-emu equal ref bit for bit,
 * and ref equals the sum written out here (a chain of float adds in edge order). */
static void run_edge_ops(const char *backend, int threads, float *agg, float *back)
{
    fr_graph g;
    ck_assert_int_eq(fr_graph_er(&g, 40, 0.3, 3, 0), FR_OK);
    const int64_t N = g.n, E = 2 * g.m, H = 37;
    int32_t *dst = malloc((size_t)E * 4), *ptr_s = calloc((size_t)N + 1, 4), *eid = malloc((size_t)E * 4);
    for (int v = 0; v < N; v++)
        for (int k = g.ptr[v]; k < g.ptr[v + 1]; k++) dst[k] = v;
    for (int64_t e = 0; e < E; e++) ptr_s[g.src[e] + 1]++;
    for (int64_t v = 0; v < N; v++) ptr_s[v + 1] += ptr_s[v];
    int32_t *fill = calloc((size_t)N, 4);
    for (int64_t e = 0; e < E; e++) eid[ptr_s[g.src[e]] + fill[g.src[e]]++] = (int32_t)e;
    float *x = malloc((size_t)(N * H) * sizeof *x);
    fr_rng_fill_normal(x, N * H, 5, FR_RNG_TEST, 0, 0, 0);
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, backend, 0, threads) == FR_OK, "%s", fr_last_error());
    int32_t *d_ptr = fr_dev_i32(&be, N + 1), *d_src = fr_dev_i32(&be, E), *d_dst = fr_dev_i32(&be, E);
    int32_t *d_ptrs = fr_dev_i32(&be, N + 1), *d_eid = fr_dev_i32(&be, E);
    float *d_x = fr_dev_floats(&be, N * H), *d_m = fr_dev_floats(&be, E * H), *d_o = fr_dev_floats(&be, N * H);
    ck_assert_int_eq(fr_h2d(&be, d_ptr, g.ptr, (size_t)(N + 1) * 4), FR_OK);
    ck_assert_int_eq(fr_h2d(&be, d_src, g.src, (size_t)E * 4), FR_OK);
    ck_assert_int_eq(fr_h2d(&be, d_dst, dst, (size_t)E * 4), FR_OK);
    ck_assert_int_eq(fr_h2d(&be, d_ptrs, ptr_s, (size_t)(N + 1) * 4), FR_OK);
    ck_assert_int_eq(fr_h2d(&be, d_eid, eid, (size_t)E * 4), FR_OK);
    ck_assert_int_eq(fr_h2d(&be, d_x, x, (size_t)(N * H) * 4), FR_OK);
    be.ops->copy(N * H, d_x, d_o);
    be.ops->edge_gather(E, H, d_src, N, d_x, d_m);
    be.ops->edge_scatter_add(N, H, d_ptr, NULL, E, d_m, d_o);
    ck_assert_int_eq(fr_d2h(&be, agg, d_o, (size_t)(N * H) * 4), FR_OK);
    be.ops->fill(N * H, 0.0f, d_o);
    be.ops->edge_gather(E, H, d_dst, N, d_x, d_m);
    be.ops->edge_scatter_add(N, H, d_ptrs, d_eid, E, d_m, d_o);
    ck_assert_int_eq(fr_d2h(&be, back, d_o, (size_t)(N * H) * 4), FR_OK);
    void *dv[] = {d_ptr, d_src, d_dst, d_ptrs, d_eid, d_x, d_m, d_o};
    for (int i = 0; i < 8; i++) fr_dev_free(&be, dv[i]);
    fr_backend_close(&be);
    /* the definition by hand */
    for (int64_t v = 0; v < N; v++)
        for (int64_t j = 0; j < H; j++) {
            float a = x[v * H + j], b = 0.0f;
            for (int k = g.ptr[v]; k < g.ptr[v + 1]; k++) a = a + x[g.src[k] * H + j];
            for (int k = ptr_s[v]; k < ptr_s[v + 1]; k++) b = b + x[dst[eid[k]] * H + j];
            ck_assert_msg(memcmp(&a, &agg[v * H + j], 4) == 0 && memcmp(&b, &back[v * H + j], 4) == 0,
                          "%s: node %lld col %lld differs from the chain in edge order", backend, (long long)v, (long long)j);
        }
    free(dst), free(ptr_s), free(eid), free(fill), free(x);
    fr_graph_free(&g);
}

START_TEST(test_comb_edge_ops_backends)
{
    const int64_t n = 40 * 37;
    float a[40 * 37], b[40 * 37];
    run_edge_ops("ref", 1, a, b);
    run_edge_ops("opt", 1, a, b);
    run_edge_ops("opt", 3, a, b);
    fr_backend probe;
    if (fr_backend_open(&probe, "cuda-emu", 0, 1) == FR_OK) {
        fr_backend_close(&probe);
        run_edge_ops("cuda-emu", 1, a, b);
    }
    (void)n;
}
END_TEST

static fr_comb_opts small_opts(fr_comb_task task)
{
    fr_comb_opts o = fr_comb_opts_default();
    o.task = task;
    o.hidden = 16;
    o.layers = 3;
    o.max_nodes = 10;
    o.bsit = 4;
    o.tstep = 3;
    o.tbatch = 16;
    o.kappa1 = 4.0;
    o.anneal_graphs = 64;
    o.seed = 3;
    return o;
}

/* Telescoping (spec §8.2 Checks): the FL-DB residuals of a complete trajectory sum to
 * log F̃(s0) + Σ log P_F − Σ log P_B − κ·u(x) (TB with log Z = log F̃(s0)). */
START_TEST(test_comb_fldb_telescoping)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    for (int task = 0; task < 4; task++) {
        fr_comb_opts o = small_opts((fr_comb_task)task);
        fr_comb_trainer *t;
        ck_assert_msg(fr_comb_trainer_new(&t, &be, &o) == FR_OK, "%s", fr_last_error());
        fr_graph g;
        ck_assert_int_eq(fr_graph_er(&g, 9, 0.4, 11, (uint32_t)task), FR_OK);
        int8_t st[FR_COMB_MAX_NODES + 1][FR_COMB_MAX_NODES];
        int act[FR_COMB_MAX_NODES], L = 0;
        double lp[FR_COMB_MAX_NODES], logf0, sum_pf = 0.0, sum_pb = 0.0;
        const double kappa = 2.5;
        fr_comb_initial(g.n, st[0]);
        ck_assert_int_eq(fr_comb_policy(t, &g, st[0], lp, &logf0), FR_OK);
        while (!fr_comb_done(g.n, st[L])) {
            ck_assert_int_eq(fr_comb_policy(t, &g, st[L], lp, NULL), FR_OK);
            int v = 0;
            while (st[L][v] != 2) v++;
            v = (v + L) % g.n; /* some undecided node */
            while (st[L][v] != 2) v = (v + 1) % g.n;
            act[L] = v;
            sum_pf += lp[v];
            fr_comb_step((fr_comb_task)task, &g, st[L], v, st[L + 1]);
            sum_pb += -log((double)fr_comb_parents((fr_comb_task)task, g.n, st[L + 1]));
            L++;
        }
        int8_t flat[(FR_COMB_MAX_NODES + 1) * FR_COMB_MAX_NODES];
        for (int i = 0; i <= L; i++) memcpy(flat + i * g.n, st[i], (size_t)g.n);
        double r[FR_COMB_MAX_NODES], sum = 0.0;
        ck_assert_int_eq(fr_comb_residuals(t, &g, L, flat, act, kappa, r), FR_OK);
        for (int i = 0; i < L; i++) sum += r[i];
        const double u0 = fr_comb_value((fr_comb_task)task, &g, st[0]);
        const double want = logf0 + sum_pf - sum_pb - kappa * fr_comb_value((fr_comb_task)task, &g, st[L]) + kappa * u0;
        ck_assert_msg(fabs(sum - want) < 1e-9, "task %d: Σ residuals %.12g, telescoped %.12g", task, sum, want);
        fr_graph_free(&g);
        fr_comb_trainer_free(t);
    }
    fr_backend_close(&be);
}
END_TEST

static uint64_t train_digest(const char *backend, int threads, fr_comb_task task, double *loss)
{
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, backend, 0, threads) == FR_OK, "%s", fr_last_error());
    fr_comb_opts o = small_opts(task);
    fr_comb_trainer *t;
    ck_assert_msg(fr_comb_trainer_new(&t, &be, &o) == FR_OK, "%s", fr_last_error());
    fr_graph gs[4];
    for (int i = 0; i < 4; i++) ck_assert_int_eq(fr_graph_er(&gs[i], 8 + i % 3, 0.35, 9, (uint32_t)i), FR_OK);
    for (int it = 0; it < 2; it++) ck_assert_msg(fr_comb_train_iter(t, gs, 4, loss) == FR_OK, "%s", fr_last_error());
    ck_assert(isfinite(*loss));
    uint64_t d;
    ck_assert_int_eq(fr_comb_digest(t, &d), FR_OK);
    for (int i = 0; i < 4; i++) fr_graph_free(&gs[i]);
    fr_comb_trainer_free(t);
    fr_backend_close(&be);
    return d;
}

/* Two iterations (rollouts, 3 Adam steps each) of MIS and MaxCut: the same parameters and loss on
 * ref, opt at 1 and 3 threads and cuda-emu; FL-DB and DB differ. */
START_TEST(test_comb_trainer_backends_bitwise)
{
    const fr_comb_task tasks[] = {FR_COMB_MIS, FR_COMB_MAXCUT};
    for (int k = 0; k < 2; k++) {
        double lr, l;
        const uint64_t dr = train_digest("ref", 1, tasks[k], &lr);
        ck_assert(train_digest("opt", 1, tasks[k], &l) == dr && l == lr);
        ck_assert(train_digest("opt", 3, tasks[k], &l) == dr && l == lr);
        fr_backend probe;
        if (fr_backend_open(&probe, "cuda-emu", 0, 1) == FR_OK) {
            fr_backend_close(&probe);
            ck_assert_msg(train_digest("cuda-emu", 1, tasks[k], &l) == dr && l == lr, "cuda-emu differs from ref");
        }
    }
}
END_TEST

static fr_comb_trainer *g_pf_t;
static const fr_graph *g_pf_g;
static void trained_pf(void *ctx, const int8_t *s, double *logp)
{
    (void)ctx;
    ck_assert_int_eq(fr_comb_policy(g_pf_t, g_pf_g, s, logp, NULL), FR_OK);
}

/* E_{P_T}[u] of the policy on held-out graphs, exactly (DP over the state DAG). */
static double exact_mean(fr_comb_trainer *t, fr_comb_task task, const fr_graph *gs, int G)
{
    double m = 0.0;
    for (int i = 0; i < G; i++) {
        int64_t N = 1;
        for (int k = 0; k < gs[i].n; k++) N *= 3;
        double *pt = malloc((size_t)N * sizeof *pt);
        g_pf_t = t, g_pf_g = &gs[i];
        ck_assert_int_gt(fr_comb_exact(task, &gs[i], 1.0, trained_pf, NULL, pt, NULL), 0);
        int8_t s[FR_COMB_MAX_NODES];
        for (int64_t c = 0; c < N; c++) {
            if (pt[c] == 0.0) continue;
            int64_t r = c;
            for (int k = 0; k < gs[i].n; k++, r /= 3) s[k] = (int8_t)(r % 3);
            m += pt[c] * fr_comb_value(task, &gs[i], s) / G;
        }
        free(pt);
    }
    return m;
}

/* 20 iterations of FL-DB on G(10, 0.3) graphs raise the exact expected MIS size on 4 held-out
 * graphs by more than 0.2 (the bench miniature, docs/algorithms/gfn-comb.md §6, measured +0.3 to
 * +0.6 after 200 iterations); the sampled mean agrees with the exact one. */
START_TEST(test_comb_training_beats_untrained)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "opt", 0, 1), FR_OK);
    fr_comb_opts o = small_opts(FR_COMB_MIS);
    o.hidden = 32;
    o.bsit = 8;
    o.tstep = 10;
    o.tbatch = 64;
    o.anneal_graphs = 80;
    fr_comb_trainer *t;
    ck_assert_int_eq(fr_comb_trainer_new(&t, &be, &o), FR_OK);
    fr_graph test[4];
    for (int i = 0; i < 4; i++) ck_assert_int_eq(fr_graph_er(&test[i], 10, 0.3, 1, 1000000u + (uint32_t)i), FR_OK);
    const double before = exact_mean(t, FR_COMB_MIS, test, 4);
    for (int it = 0; it < 20; it++) {
        fr_graph gs[8];
        for (int i = 0; i < 8; i++) ck_assert_int_eq(fr_graph_er(&gs[i], 10, 0.3, 3, (uint32_t)(it * 8 + i)), FR_OK);
        double loss;
        ck_assert_int_eq(fr_comb_train_iter(t, gs, 8, &loss), FR_OK);
        for (int i = 0; i < 8; i++) fr_graph_free(&gs[i]);
    }
    const double after = exact_mean(t, FR_COMB_MIS, test, 4);
    ck_assert_msg(after > before + 0.2, "E[|MIS|] %.4f after training, %.4f before", after, before);
    double smp = 0.0;
    for (int i = 0; i < 4; i++) {
        double m;
        ck_assert_int_eq(fr_comb_sample(t, &test[i], (uint32_t)i, 256, &m, NULL), FR_OK);
        smp += m / 4;
    }
    ck_assert_msg(fabs(smp - after) < 0.1, "sampled %.4f, exact %.4f", smp, after); /* 1024 draws: se < 0.03 */
    for (int i = 0; i < 4; i++) fr_graph_free(&test[i]);
    fr_comb_trainer_free(t);
    fr_backend_close(&be);
}
END_TEST

Suite *suite_gfn_comb(void)
{
    Suite *s = suite_create("gfn_comb");
    TCase *tc = tcase_create("comb");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_comb_path_graph);
    tcase_add_test(tc, test_comb_rules_by_hand);
    tcase_add_test(tc, test_comb_terminals_vs_brute_force);
    tcase_add_test(tc, test_comb_edge_ops_backends);
    tcase_add_test(tc, test_comb_fldb_telescoping);
    tcase_add_test(tc, test_comb_trainer_backends_bitwise);
    tcase_add_test(tc, test_comb_training_beats_untrained);
    suite_add_tcase(s, tc);
    return s;
}
