/* The pieces tests/test_gfn_diffusion.c and tests/test_gfn_diffusion_expl.c share: an energy
 * target by class, the trainer's tiny options, and the backends compared with ref. */
#ifndef FLOWRL_TESTS_GFN_DIFFUSION_TESTUTIL_H
#define FLOWRL_TESTS_GFN_DIFFUSION_TESTUTIL_H

#include <check.h>
#include <string.h>

#include <stdlib.h>

#include "flowrl/backend.h"
#include "flowrl/digest.h"
#include "flowrl/env.h"
#include "flowrl/gfn_diffusion.h"
#include "flowrl/status.h"
#include "tests/testutil.h"

/* The energy target of class c at its defaults. */
static inline fr_env target(const fr_env_class *c)
{
    fr_env e;
    ck_assert_msg(fr_env_create(c, NULL, &e) == FR_OK, "%s", fr_last_error());
    ck_assert_ptr_nonnull(e.energy);
    ck_assert_ptr_null(e.gfn);
    ck_assert_ptr_null(e.ctl);
    return e;
}

/* A trainer of loss k with o's tiny sizes on backend name. */
static inline fr_gfnd_opts tiny_opts(fr_gfnd_loss k)
{
    fr_gfnd_opts o = fr_gfnd_opts_default();
    o.loss = k;
    o.batch = 16;
    o.steps = 8;
    o.hidden = 16;
    o.harmonics = 4;
    o.seed = 5;
    return o;
}

/* The backends compared with ref: opt at 1 and 3 threads, cuda-emu where it is built. */
static const struct {
    const char *name;
    int threads;
} k_vs_ref[] = {{"opt", 1}, {"opt", 3}, {"cuda-emu", 1}};
#define N_VS_REF (sizeof k_vs_ref / sizeof k_vs_ref[0])

static inline int vs_ref_here(size_t i)
{
    fr_backend probe;
    if (strcmp(k_vs_ref[i].name, "cuda-emu") != 0) return 1;
    if (fr_backend_open(&probe, "cuda-emu", 0, 1) != FR_OK) return 0;
    fr_backend_close(&probe);
    return 1;
}

/* `flowrl train <args> --backend B --threads N --out <a temporary dir>` must succeed; its final
 * evaluation line and the "parameters N, digest D" line into line (the run's bytes as a string). */
static inline void gfnd_cli_line(const char *tag, const char *args, const char *backend, int threads, char *line, size_t n)
{
    static char out[1 << 14];
    char dir[256], cmd[1600];
    fr_test_mkdtemp(dir, sizeof dir, tag);
    snprintf(cmd, sizeof cmd, "train %s --backend %s --threads %d --out %s/r", args, backend, threads, dir);
    ck_assert_msg(fr_test_run_cli(cmd, out, sizeof out) == 0, "%s", out);
    const char *ev = strstr(out, "eval after"), *dg = strstr(out, "parameters ");
    ck_assert_msg(ev && dg && strstr(dg, "digest "), "%s", out);
    snprintf(line, n, "%.*s | %.*s", (int)strcspn(ev, "\n"), ev, (int)strcspn(dg, "\n"), dg);
    fr_test_rmtree(dir);
}

/* An option's short CLI run: `train <base> <option>` on ref differs from `train <base>` (the option is
 * not a no-op), and every backend of k_vs_ref gives ref's line byte for byte. */
static inline void gfnd_option_same_on_backends(const char *tag, const char *base, const char *option)
{
    char args[1200], want[512], got[512], off[512];
    snprintf(args, sizeof args, "%s %s", base, option);
    gfnd_cli_line(tag, args, "ref", 1, want, sizeof want);
    gfnd_cli_line(tag, base, "ref", 1, off, sizeof off);
    ck_assert_msg(strcmp(want, off) != 0, "%s changed nothing: %s", option, want);
    for (size_t i = 0; i < N_VS_REF; i++) {
        if (!vs_ref_here(i)) continue;
        gfnd_cli_line(tag, args, k_vs_ref[i].name, k_vs_ref[i].threads, got, sizeof got);
        ck_assert_msg(strcmp(got, want) == 0, "%s at %d threads: %s; ref: %s", k_vs_ref[i].name, k_vs_ref[i].threads,
                      got, want);
    }
}

/* A digest of the trainer's gradients (every parameter's grad bytes). */
static inline uint64_t grads_digest(fr_backend *be, fr_gfnd_trainer *t)
{
    fr_param *ps;
    int np;
    const int n = fr_gfnd_trainer_params(t, &ps, &np);
    uint64_t d = 0;
    for (int p = 0; p < n; p++) {
        const int64_t c = fr_tensor_numel(ps[p].grad);
        float *g = malloc((size_t)c * sizeof *g);
        ck_assert_int_eq(fr_d2h(be, g, ps[p].grad->data, (size_t)c * sizeof *g), FR_OK);
        d ^= fr_digest_bytes(g, (size_t)c * sizeof *g) + (uint64_t)p;
        free(g);
    }
    return d;
}

#endif
