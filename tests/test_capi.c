/* Suite `capi`: the stable C API (flowrl/capi.h) that python/ (flowrl_verify) binds.
 *  - the version query matches the header; errors are status codes with flowrl's message;
 *  - every golden case is enumerable: info resolves (an op case names its op-table entry),
 *    and for one case of each family the case built through the API, recomputed from its
 *    own inputs through flowrl_golden_compute on opt, gives the built outputs bit for bit;
 *  - the array entry points give the committed golden outputs bit for bit (sampler.sde
 *    through flowrl_sampler_step, obj.flow_grpo through flowrl_ppo_policy) on ref and on
 *    cuda-emu (the arrays staged through guarded device memory);
 *  - a tensor set round-trips through a safetensors file. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "flowrl/capi.h"
#include "flowrl/status.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static const void *tensor(const flowrl_tensors *t, const char *name, int64_t *n)
{
    for (int64_t i = 0; i < flowrl_tensors_count(t); i++) {
        const char *nm;
        const void *data;
        int64_t bytes;
        ck_assert_int_eq(flowrl_tensors_get(t, i, &nm, NULL, NULL, NULL, &data, &bytes), FLOWRL_OK);
        if (strcmp(nm, name) == 0) {
            if (n) *n = bytes;
            return data;
        }
    }
    ck_abort_msg("tensor %s missing", name);
    return NULL;
}

static flowrl_tensors *committed(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/%s.safetensors", fr_test_src(), name);
    flowrl_tensors *t = NULL;
    ck_assert_msg(flowrl_tensors_read(path, &t) == FLOWRL_OK, "%s", flowrl_last_error());
    return t;
}

START_TEST(test_version_and_errors)
{
    ck_assert_int_eq(flowrl_api_version(), FLOWRL_API_VERSION);
    ck_assert_str_eq(flowrl_version(), FR_VERSION);
    flowrl_step *s = NULL;
    ck_assert_int_eq(flowrl_step_new("sdee", &s), 1);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(flowrl_last_error(), "sdee") != NULL, "%s", flowrl_last_error());
    ck_assert_str_eq(flowrl_status_name(1), fr_status_name(FR_ERR_ARG));
    ck_assert_int_eq(flowrl_step_new("sde", &s), FLOWRL_OK);
    ck_assert_int_ne(flowrl_step_set(s, "sigmaa", 0.5), FLOWRL_OK);
    ck_assert_msg(strstr(flowrl_last_error(), "sigmaa") != NULL, "%s", flowrl_last_error());
    flowrl_step_free(s);
}
END_TEST

START_TEST(test_golden_registry)
{
    int64_t n = flowrl_golden_count();
    ck_assert_int_gt(n, 50);
    ck_assert_ptr_null(flowrl_golden_name(n));
    for (int64_t i = 0; i < n; i++) {
        const char *what, *kind, *fn;
        float ta, tr;
        ck_assert_msg(flowrl_golden_info(flowrl_golden_name(i), &what, &kind, &fn, &ta, &tr) == FLOWRL_OK, "%s",
                      flowrl_last_error());
        ck_assert(strcmp(kind, "op") == 0 ? fn != NULL : fn == NULL);
    }
    flowrl_backend *opt;
    ck_assert_msg(flowrl_backend_open("opt", 0, 2, &opt) == FLOWRL_OK, "%s", flowrl_last_error());
    const char *some[] = {"op.layernorm_bwd", "sampler.dpm", "adv.per_prompt_group_std", "obj.guard_batch",
                          "awm.kl", "dgpo.loss", "nft.kl"};
    for (size_t k = 0; k < sizeof some / sizeof some[0]; k++) {
        flowrl_tensors *c, *out;
        ck_assert_msg(flowrl_golden_build(some[k], &c) == FLOWRL_OK, "%s", flowrl_last_error());
        ck_assert_msg(flowrl_golden_compute(opt, some[k], c, &out) == FLOWRL_OK, "%s", flowrl_last_error());
        ck_assert_int_gt(flowrl_tensors_count(out), 0);
        for (int64_t i = 0; i < flowrl_tensors_count(out); i++) {
            const char *nm;
            const void *data;
            int64_t bytes, want_bytes;
            flowrl_tensors_get(out, i, &nm, NULL, NULL, NULL, &data, &bytes);
            const void *want = tensor(c, nm, &want_bytes);
            ck_assert_msg(bytes == want_bytes && memcmp(data, want, (size_t)bytes) == 0, "%s %s", some[k], nm);
        }
        flowrl_tensors_free(out);
        flowrl_tensors_free(c);
    }
    flowrl_backend_close(opt);
    ck_assert_int_ne(flowrl_golden_build("sampler.nope", &(flowrl_tensors *){NULL}), FLOWRL_OK);
    ck_assert_msg(strstr(flowrl_last_error(), "sampler.nope") != NULL, "%s", flowrl_last_error());
}
END_TEST

static float scalar(const flowrl_tensors *t, const char *name) { return *(const float *)tensor(t, name, NULL); }

START_TEST(test_arrays_match_golden)
{
    const char *backends[] = {NULL, "cuda-emu"};
    for (size_t b = 0; b < 2; b++) {
        flowrl_backend *be = NULL;
        if (backends[b]) ck_assert_msg(flowrl_backend_open(backends[b], 0, 1, &be) == FLOWRL_OK, "%s", flowrl_last_error());
        flowrl_tensors *t = committed("sampler.sde");
        flowrl_step *s;
        ck_assert_int_eq(flowrl_step_new("sde", &s), FLOWRL_OK);
        const char *f[] = {"sigma", "sigma_next", "sigma1", "noise"};
        for (int i = 0; i < 4; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "in.%s", f[i]);
            ck_assert_int_eq(flowrl_step_set(s, f[i], scalar(t, nm)), FLOWRL_OK);
        }
        int64_t bytes;
        tensor(t, "in.x", &bytes);
        int64_t B = 3, D = bytes / 4 / 3;
        float xn[64], mean[64], logp[3], sd, sdd;
        ck_assert_int_le(B * D, 64);
        ck_assert_msg(flowrl_sampler_step(be, s, B, D, tensor(t, "in.x", NULL), tensor(t, "in.model_out", NULL), NULL,
                                          tensor(t, "in.xi", NULL), xn, mean, logp, &sd, &sdd) == FLOWRL_OK,
                      "%s", flowrl_last_error());
        ck_assert(memcmp(xn, tensor(t, "out.x_next", NULL), (size_t)(B * D) * 4) == 0);
        ck_assert(memcmp(mean, tensor(t, "out.mean", NULL), (size_t)(B * D) * 4) == 0);
        ck_assert(memcmp(logp, tensor(t, "out.logp", NULL), (size_t)B * 4) == 0);
        ck_assert(sdd == scalar(t, "out.std_dev") && sd == scalar(t, "out.std"));
        flowrl_step_free(s);
        flowrl_tensors_free(t);

        /* the PPO core of obj.flow_grpo, from the committed logp_new */
        t = committed("obj.flow_grpo");
        float g[8], r[8], st[6];
        ck_assert_int_eq(flowrl_ppo_policy(8, *(const double *)tensor(t, "in.clip_range", NULL), scalar(t, "in.adv_clip_max"),
                                           tensor(t, "out.logp_new", NULL), tensor(t, "in.logp_old", NULL),
                                           tensor(t, "in.adv", NULL), scalar(t, "in.gout"), g, r, st),
                         FLOWRL_OK);
        ck_assert(memcmp(g, tensor(t, "out.grad_logp_new", NULL), sizeof g) == 0);
        ck_assert(memcmp(r, tensor(t, "out.ratio", NULL), sizeof r) == 0);
        ck_assert(st[0] == scalar(t, "out.loss_policy") && st[5] == scalar(t, "out.ratio_mean"));
        flowrl_tensors_free(t);
        flowrl_backend_close(be);
    }
}
END_TEST

START_TEST(test_tensors_roundtrip)
{
    flowrl_tensors *t, *u;
    ck_assert_int_eq(flowrl_tensors_new(&t), FLOWRL_OK);
    int64_t sh[2] = {2, 3};
    int64_t v[6] = {1, 2, 3, 4, 5, -6};
    ck_assert_int_eq(flowrl_tensors_add(t, "a", "I64", 2, sh, v), FLOWRL_OK);
    ck_assert_int_ne(flowrl_tensors_add(t, "a", "I64", 2, sh, v), FLOWRL_OK);
    ck_assert_int_ne(flowrl_tensors_add(t, "b", "Q8", 2, sh, v), FLOWRL_OK);
    ck_assert_int_eq(flowrl_tensors_meta_set(t, "k", "v"), FLOWRL_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/flowrl-capi-%d.safetensors", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    ck_assert_int_eq(flowrl_tensors_write(t, path), FLOWRL_OK);
    ck_assert_int_eq(flowrl_tensors_read(path, &u), FLOWRL_OK);
    remove(path);
    const char *name, *dt, *key, *val;
    int nd;
    int64_t shape[4];
    const void *data;
    ck_assert_int_eq(flowrl_tensors_get(u, 0, &name, &dt, &nd, shape, &data, NULL), FLOWRL_OK);
    ck_assert(strcmp(name, "a") == 0 && strcmp(dt, "I64") == 0 && nd == 2 && shape[1] == 3);
    ck_assert(memcmp(data, v, sizeof v) == 0);
    ck_assert_int_eq(flowrl_tensors_meta_get(u, 0, &key, &val), FLOWRL_OK);
    ck_assert(strcmp(key, "k") == 0 && strcmp(val, "v") == 0);
    ck_assert_int_ne(flowrl_tensors_get(u, 1, &name, NULL, NULL, NULL, NULL, NULL), FLOWRL_OK);
    flowrl_tensors_free(t);
    flowrl_tensors_free(u);
}
END_TEST

Suite *suite_capi(void)
{
    Suite *s = suite_create("capi");
    TCase *tc = tcase_create("capi");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_version_and_errors);
    tcase_add_test(tc, test_golden_registry);
    tcase_add_test(tc, test_arrays_match_golden);
    tcase_add_test(tc, test_tensors_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}
