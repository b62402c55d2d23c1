/* Preference files (flowrl/prefs.h, docs/preferences.md): the write/read round trip bit for bit,
 * one clear line per malformed or mismatched file, fr_prefs_make's pairs against the rollouts
 * they come from (shared x_T, ties dropped, independent of the batch), and `flowrl prefs make`
 * / `prefs show` on the tiny gmm2d base (the same bytes twice). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "flowrl/infer_ckpt.h"
#include "flowrl/philox.h"
#include "flowrl/prefs.h"
#include "flowrl/safetensors.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static char g_out[1 << 16];

/* N valid gmm2d pairs (seeded values, prompts i mod 8, r_w = 1 > r_l = i / (2N)). */
static void valid_prefs(fr_prefs *p, int64_t N, int with_xt)
{
    ck_assert_int_eq(fr_prefs_alloc(p, N, 2, with_xt), FR_OK);
    uint64_t s = 17;
    for (int64_t i = 0; i < 2 * N; i++) {
        p->x_w[i] = fr_test_uniform(&s, -5.0f, 5.0f);
        p->x_l[i] = fr_test_uniform(&s, -5.0f, 5.0f);
        if (with_xt) p->x_T[i] = fr_test_uniform(&s, -3.0f, 3.0f);
    }
    for (int64_t i = 0; i < N; i++) {
        p->prompt[i] = (int32_t)(i % 8);
        p->r_w[i] = 1.0f;
        p->r_l[i] = (float)i / (float)(2 * N);
    }
    snprintf(p->task, sizeof p->task, "gmm2d");
    snprintf(p->reward, sizeof p->reward, "mode");
    snprintf(p->tie_rule, sizeof p->tie_rule, FR_PREFS_TIE_RULE);
    snprintf(p->ckpt, sizeof p->ckpt, "some/base.safetensors");
    snprintf(p->ckpt_digest, sizeof p->ckpt_digest, "0123456789abcdef");
    snprintf(p->sampler, sizeof p->sampler, "sde");
    p->noise = 0.7f;
    p->steps = 10;
    p->cfg = 1.5f;
    p->seed = 3;
    p->attempts = N + 2;
    p->ties_dropped = 2;
}

static void assert_same(const fr_prefs *a, const fr_prefs *b)
{
    ck_assert_int_eq(a->N, b->N);
    ck_assert_int_eq(a->D, b->D);
    const size_t nd = (size_t)(a->N * a->D) * sizeof(float), n = (size_t)a->N * 4;
    ck_assert(memcmp(a->x_w, b->x_w, nd) == 0 && memcmp(a->x_l, b->x_l, nd) == 0);
    ck_assert(memcmp(a->prompt, b->prompt, n) == 0);
    ck_assert(memcmp(a->r_w, b->r_w, n) == 0 && memcmp(a->r_l, b->r_l, n) == 0);
    ck_assert_int_eq(a->x_T != NULL, b->x_T != NULL);
    if (a->x_T) ck_assert(memcmp(a->x_T, b->x_T, nd) == 0);
    ck_assert_str_eq(a->task, b->task);
    ck_assert_str_eq(a->reward, b->reward);
    ck_assert_str_eq(a->tie_rule, b->tie_rule);
    ck_assert_str_eq(a->ckpt, b->ckpt);
    ck_assert_str_eq(a->ckpt_digest, b->ckpt_digest);
    ck_assert_str_eq(a->sampler, b->sampler);
    ck_assert(fr_test_bits_equal(a->noise, b->noise) && fr_test_bits_equal(a->cfg, b->cfg));
    ck_assert_int_eq(a->steps, b->steps);
    ck_assert_uint_eq(a->seed, b->seed);
    ck_assert_int_eq(a->attempts, b->attempts);
    ck_assert_int_eq(a->ties_dropped, b->ties_dropped);
}

START_TEST(test_round_trip)
{
    char path[512];
    for (int xt = 0; xt < 2; xt++) {
        fr_prefs p, q, r;
        valid_prefs(&p, 9, xt);
        fr_rt_path(path, sizeof path, "p.safetensors");
        ck_assert_msg(fr_prefs_write(path, &p) == FR_OK, "%s", fr_last_error());
        ck_assert_msg(fr_prefs_read(path, NULL, &q) == FR_OK, "%s", fr_last_error());
        ck_assert_str_eq(q.flowrl_version, FR_VERSION);
        assert_same(&p, &q);
        ck_assert_int_eq(fr_prefs_read(path, &fr_task_gmm2d, &r), FR_OK);
        assert_same(&q, &r);
        /* written again: the same bytes */
        char path2[512];
        fr_rt_path(path2, sizeof path2, "p2.safetensors");
        ck_assert_int_eq(fr_prefs_write(path2, &q), FR_OK);
        size_t n1, n2;
        void *b1 = fr_test_slurp(path, &n1), *b2 = fr_test_slurp(path2, &n2);
        ck_assert(n1 == n2 && memcmp(b1, b2, n1) == 0);
        free(b1);
        free(b2);
        fr_prefs_free(&p);
        fr_prefs_free(&q);
        fr_prefs_free(&r);
    }
}
END_TEST

/* The valid file, changed by `edit` as a safetensors file (digests rewritten), at DIR/bad. */
typedef void (*st_edit)(fr_st_file *f);

static fr_st_entry *entry(fr_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) return &f->entries[i];
    ck_abort_msg("no tensor %s", name);
    return NULL;
}
static float *f32(fr_st_file *f, const char *name) { return entry(f, name)->t.data; }

static void e_nan(fr_st_file *f) { f32(f, "x_w")[3] = NAN; }
static void e_inf(fr_st_file *f) { f32(f, "r_l")[2] = INFINITY; }
static void e_xt_nan(fr_st_file *f) { f32(f, "x_T")[0] = NAN; }
static void e_prompt(fr_st_file *f) { ((int32_t *)entry(f, "prompt")->t.data)[4] = 8; }
static void e_prompt_neg(fr_st_file *f) { ((int32_t *)entry(f, "prompt")->t.data)[0] = -1; }
static void e_contradict(fr_st_file *f) { f32(f, "r_w")[5] = 0.0f; }
static void e_tie(fr_st_file *f) { f32(f, "r_w")[1] = f32(f, "r_l")[1]; }
static void e_dup(fr_st_file *f)
{
    /* row 8 := row 0 (prompt 0 both) */
    memcpy(f32(f, "x_w") + 16, f32(f, "x_w"), 8);
    memcpy(f32(f, "x_l") + 16, f32(f, "x_l"), 8);
}
static void e_version(fr_st_file *f) { ck_assert_int_eq(fr_st_set_meta(f, "format_version", "2"), FR_OK); }
static void e_format(fr_st_file *f) { ck_assert_int_eq(fr_st_set_meta(f, "format", "pickapic"), FR_OK); }
static void e_dmeta(fr_st_file *f) { ck_assert_int_eq(fr_st_set_meta(f, "D", "3"), FR_OK); }
static void e_reward(fr_st_file *f) { ck_assert_int_eq(fr_st_set_meta(f, "reward", "aesthetic"), FR_OK); }
static void e_steps(fr_st_file *f) { ck_assert_int_eq(fr_st_set_meta(f, "steps", "ten"), FR_OK); }
static void e_shape(fr_st_file *f) { entry(f, "x_l")->t.shape[0] = 8; }
static void e_xt_shape(fr_st_file *f) { entry(f, "x_T")->t.shape[0] = 8; }
static void e_dtype(fr_st_file *f) { entry(f, "prompt")->t.dtype = FR_F32; }
static void e_extra(fr_st_file *f)
{
    float v = 1.0f;
    int64_t one = 1;
    fr_tensor t = fr_tensor_f32(&v, 1, &one);
    ck_assert_int_eq(fr_st_add(f, "label", &t), FR_OK);
}
/* a copy without metadata key "ckpt_digest" / tensor "r_l" */
static void drop(fr_st_file *f, const char *key, const char *tensor)
{
    fr_st_file g;
    fr_st_init(&g);
    for (size_t i = 0; i < f->n; i++)
        if (!tensor || strcmp(f->entries[i].name, tensor)) ck_assert_int_eq(fr_st_add(&g, f->entries[i].name, &f->entries[i].t), FR_OK);
    for (size_t i = 0; i < f->n_meta; i++)
        if (!key || strcmp(f->meta[i].key, key)) ck_assert_int_eq(fr_st_set_meta(&g, f->meta[i].key, f->meta[i].value), FR_OK);
    g.digests = 1;
    fr_st_free(f);
    *f = g;
}
static void e_nokey(fr_st_file *f) { drop(f, "ckpt_digest", NULL); }
static void e_notensor(fr_st_file *f) { drop(f, NULL, "r_l"); }

static const char *bad_file(st_edit edit, char *path, size_t n)
{
    char good[512];
    fr_prefs p;
    valid_prefs(&p, 9, 1);
    fr_rt_path(good, sizeof good, "good.safetensors");
    ck_assert_int_eq(fr_prefs_write(good, &p), FR_OK);
    fr_prefs_free(&p);
    fr_st_file f;
    ck_assert_int_eq(fr_st_read(&f, good), FR_OK);
    edit(&f);
    fr_rt_path(path, n, "bad.safetensors");
    ck_assert_int_eq(fr_st_write(&f, path), FR_OK);
    fr_st_free(&f);
    return path;
}

/* One line naming the file and `field`, status want, *out left empty. */
static void assert_rejected(const char *path, const fr_task *task, fr_status want, const char *field, const char *what)
{
    fr_prefs q;
    memset(&q, 0xab, sizeof q);
    fr_status s = fr_prefs_read(path, task, &q);
    const char *msg = fr_last_error();
    ck_assert_msg(s == want, "%s: status %s (%s), want %s", what, fr_status_name(s), msg, fr_status_name(want));
    ck_assert_msg(strstr(msg, path) == msg, "%s: message does not start with the file: %s", what, msg);
    ck_assert_msg(strstr(msg, field) != NULL, "%s: message does not name %s: %s", what, field, msg);
    ck_assert_msg(strchr(msg, '\n') == NULL, "%s: more than one line: %s", what, msg);
    ck_assert(q.x_w == NULL && q.N == 0);
}

START_TEST(test_malformed)
{
    static const struct {
        const char *what;
        st_edit edit;
        const char *field;
    } cases[] = {
        {"NaN in x_w", e_nan, "tensor 'x_w' row 1 element 1: nan"},
        {"inf in r_l", e_inf, "tensor 'r_l' row 2: inf"},
        {"NaN in x_T", e_xt_nan, "tensor 'x_T' row 0"},
        {"unknown prompt id", e_prompt, "tensor 'prompt' row 4: prompt id 8"},
        {"negative prompt id", e_prompt_neg, "prompt id -1"},
        {"contradicting label", e_contradict, "row 5: r_w 0 <= r_l"},
        {"a tie", e_tie, "row 1: r_w"},
        {"duplicated pair", e_dup, "rows 0 and 8"},
        {"bad version", e_version, "metadata 'format_version': '2'"},
        {"bad format", e_format, "metadata 'format'"},
        {"D in metadata vs tensors", e_dmeta, "metadata 'D' is 3"},
        {"unknown reward", e_reward, "metadata 'reward'"},
        {"steps not a number", e_steps, "metadata 'steps'"},
        {"shape mismatch", e_shape, "tensor 'x_l': shape (8, 2), expected (9, 2)"},
        {"x_T shape mismatch", e_xt_shape, "tensor 'x_T'"},
        {"prompt dtype", e_dtype, "tensor 'prompt': dtype F32, expected I32"},
        {"extra tensor", e_extra, "tensor 'label'"},
        {"missing metadata key", e_nokey, "metadata 'ckpt_digest' is missing"},
        {"missing tensor", e_notensor, "tensor 'r_l' is missing"},
    };
    char path[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_rejected(bad_file(cases[i].edit, path, sizeof path), NULL, FR_ERR_FORMAT, cases[i].field,
                        cases[i].what);
}
END_TEST

static void e_none(fr_st_file *f) { (void)f; }

START_TEST(test_mismatched_and_truncated)
{
    char path[512], cut[512];
    bad_file(e_none, path, sizeof path);
    /* wrong D for the task asked */
    fr_task t3 = fr_task_gmm2d;
    t3.D = 3;
    assert_rejected(path, &t3, FR_ERR_FORMAT, "metadata 'D': 2, but task gmm2d has D = 3", "wrong D");
    /* another task: shapes' prompts, D */
    assert_rejected(path, &fr_task_shapes, FR_ERR_FORMAT, "metadata 'task': 'gmm2d', expected 'shapes'", "task");
    /* fewer training prompts than the file uses */
    fr_task t4 = fr_task_gmm2d;
    t4.n_train = 4;
    assert_rejected(path, &t4, FR_ERR_FORMAT, "prompt id 4 is not a training prompt", "train split");
    /* truncated: every cut of the file's tail (and of its header) */
    size_t n;
    unsigned char *b = fr_test_slurp(path, &n);
    fr_rt_path(cut, sizeof cut, "cut.safetensors");
    const size_t cuts[] = {n - 1, n - 40, 100, 9, 3};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        FILE *fp = fopen(cut, "wb");
        ck_assert(fp && fwrite(b, 1, cuts[i], fp) == cuts[i] && fclose(fp) == 0);
        assert_rejected(cut, NULL, FR_ERR_FORMAT, "", "truncated");
    }
    free(b);
    /* a flipped data bit: the digests catch it */
    b = fr_test_slurp(path, &n);
    b[n - 5] ^= 1;
    FILE *fp = fopen(cut, "wb");
    ck_assert(fp && fwrite(b, 1, n, fp) == n && fclose(fp) == 0);
    free(b);
    assert_rejected(cut, NULL, FR_ERR_FORMAT, "digest", "flipped bit");
    /* a missing file */
    fr_rt_path(cut, sizeof cut, "none.safetensors");
    assert_rejected(cut, NULL, FR_ERR_IO, "none.safetensors", "missing file");
}
END_TEST

START_TEST(test_write_refuses)
{
    char path[512];
    fr_rt_path(path, sizeof path, "w.safetensors");
    fr_prefs p;
    valid_prefs(&p, 4, 0);
    p.r_w[2] = p.r_l[2];
    ck_assert_int_eq(fr_prefs_write(path, &p), FR_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "r_w"));
    p.r_w[2] = 1.0f;
    snprintf(p.task, sizeof p.task, "mnist");
    ck_assert_int_eq(fr_prefs_write(path, &p), FR_ERR_ARG);
    ck_assert_int_eq(access(path, F_OK), -1); /* nothing written */
    fr_prefs_free(&p);
}
END_TEST

/* ---- making pairs ---------------------------------------------------------------------- */

static fr_rollout_cfg sde_cfg(fr_rollout_schedule *sched, int64_t T, uint32_t seed)
{
    fr_rollout_cfg c = fr_rollout_cfg_default(FR_SAMPLER_SDE);
    c.T = T;
    c.seed = seed;
    ck_assert_int_eq(fr_rollout_schedule_make(&c, FR_GRID_DIFFUSERS, 3.0, 1000, 0, sched), FR_OK);
    return c;
}

START_TEST(test_make_library)
{
    fr_backend *be = fr_test_ref_be();
    fr_infer_ckpt ck;
    ck_assert_int_eq(fr_infer_ckpt_load(&ck, be, fr_rt_base, 1, "gmm2d"), FR_OK);
    fr_rollout_schedule sched;
    fr_rollout_cfg c = sde_cfg(&sched, 5, 9);
    fr_prefs_make_opts o = {.pairs = 10, .max_attempts = 200, .reward_id = 1, .batch_pairs = 7};
    fr_prefs p, q;
    ck_assert_msg(fr_prefs_make(&ck.model, be, ck.task, &c, &o, &p) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(p.N, 10);
    ck_assert_int_eq(p.attempts, p.N + p.ties_dropped);
    ck_assert_int_gt(p.ties_dropped, 0); /* halfplane scores 0 or 1: ties are common */
    o.batch_pairs = 1;                   /* the batch never changes the pairs */
    ck_assert_int_eq(fr_prefs_make(&ck.model, be, ck.task, &c, &o, &q), FR_OK);
    snprintf(p.ckpt_digest, sizeof p.ckpt_digest, "0000000000000000");
    snprintf(q.ckpt_digest, sizeof q.ckpt_digest, "0000000000000000");
    assert_same(&p, &q);
    fr_prefs_free(&q);

    /* against the rollouts: attempt a samples prompt floor(u 8) twice from one x_T (the
     * trajectory's first state), the pair is the first non-tie attempts in order */
    fr_rollout_cfg g = c;
    g.x_T_key = FR_XT_GROUP;
    g.group_size = 2;
    g.c0 = FR_PREFS_C0;
    const int64_t A = p.attempts, D = 2, T = c.T;
    int *pid = malloc((size_t)(2 * A) * sizeof *pid);
    uint32_t *sid = malloc((size_t)(2 * A) * sizeof *sid);
    float *traj = fr_dev_floats(be, (T + 1) * 2 * A * D), *x = fr_dev_floats(be, 2 * A * D);
    float *th = malloc((size_t)((T + 1) * 2 * A * D) * sizeof *th), score[2];
    ck_assert(pid && sid && traj && x && th);
    for (int64_t a = 0; a < A; a++) {
        pid[2 * a] = pid[2 * a + 1] = (int)floor((double)fr_rng_uniform(9, FR_RNG_PREFS, (uint32_t)a, 0, 0, 0) * 8.0);
        sid[2 * a] = (uint32_t)(2 * a);
        sid[2 * a + 1] = (uint32_t)(2 * a + 1);
    }
    fr_rollout_traj tr = {.traj = traj};
    ck_assert_int_eq(fr_rollout(&ck.model, be, ck.task, &g, 2 * A, pid, sid, NULL, x, &tr), FR_OK);
    ck_assert_int_eq(fr_d2h(be, th, traj, (size_t)((T + 1) * 2 * A * D) * sizeof *th), FR_OK);
    int64_t k = 0, ties = 0;
    for (int64_t a = 0; a < A; a++) {
        const float *x0 = th + (T * 2 * A + 2 * a) * D, *x1 = x0 + D, *t0 = th + 2 * a * D;
        ck_assert(memcmp(t0, t0 + D, (size_t)D * 4) == 0); /* one x_T per pair */
        ck_assert_int_eq(fr_task_reward_batch(ck.task, 1, 1, &pid[2 * a], x0, &score[0], NULL), FR_OK);
        ck_assert_int_eq(fr_task_reward_batch(ck.task, 1, 1, &pid[2 * a], x1, &score[1], NULL), FR_OK);
        if (score[0] == score[1]) {
            ties++;
            continue;
        }
        const float *w = score[0] > score[1] ? x0 : x1, *l = score[0] > score[1] ? x1 : x0;
        ck_assert(memcmp(p.x_w + k * D, w, 8) == 0 && memcmp(p.x_l + k * D, l, 8) == 0);
        ck_assert(memcmp(p.x_T + k * D, t0, 8) == 0);
        ck_assert_int_eq(p.prompt[k], pid[2 * a]);
        ck_assert(p.r_w[k] > p.r_l[k]);
        k++;
    }
    ck_assert_int_eq(k, p.N);
    ck_assert_int_eq(ties, p.ties_dropped);

    /* the cap: FR_ERR_NUMERIC naming the ties; a deterministic sampler: FR_ERR_ARG */
    o.max_attempts = o.pairs;
    ck_assert_int_eq(fr_prefs_make(&ck.model, be, ck.task, &c, &o, &q), FR_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "ties"));
    ck_assert_ptr_null(q.x_w);
    g.kind = FR_SAMPLER_ODE;
    o.max_attempts = 100;
    ck_assert_int_eq(fr_prefs_make(&ck.model, be, ck.task, &g, &o, &q), FR_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "deterministic"));
    free(pid);
    free(sid);
    free(th);
    fr_dev_free(be, traj);
    fr_dev_free(be, x);
    fr_prefs_free(&p);
    fr_rollout_schedule_free(&sched);
    fr_infer_ckpt_free(&ck);
}
END_TEST

START_TEST(test_make_cli)
{
    char p1[512], p2[512];
    fr_rt_path(p1, sizeof p1, "a.safetensors");
    fr_rt_path(p2, sizeof p2, "b.safetensors");
    const char *args = "prefs make --task gmm2d --ckpt %s --pairs 12 --num-steps 6 --reward halfplane --seed 5 --progress off "
                       "--out %s";
    ck_assert_msg(fr_rt_cli(g_out, sizeof g_out, args, fr_rt_base, p1) == 0, "%s", g_out);
    ck_assert_ptr_nonnull(strstr(g_out, "12 pairs of task gmm2d (D 2)"));
    ck_assert_msg(fr_rt_cli(g_out, sizeof g_out, args, fr_rt_base, p2) == 0, "%s", g_out);
    size_t n1, n2;
    void *b1 = fr_test_slurp(p1, &n1), *b2 = fr_test_slurp(p2, &n2);
    ck_assert_msg(n1 == n2 && memcmp(b1, b2, n1) == 0, "prefs make twice: different bytes");
    free(b1);
    free(b2);
    fr_prefs p;
    ck_assert_int_eq(fr_prefs_read(p1, &fr_task_gmm2d, &p), FR_OK);
    ck_assert_int_eq(p.N, 12);
    ck_assert_int_gt(p.ties_dropped, 0);
    for (int64_t i = 0; i < p.N; i++) ck_assert(p.r_w[i] == 1.0f && p.r_l[i] == 0.0f);
    ck_assert_str_eq(p.sampler, "sde");
    ck_assert(p.noise == 0.7f && p.steps == 6 && p.seed == 5);
    ck_assert_str_eq(p.ckpt, fr_rt_base);
    ck_assert_ptr_nonnull(p.x_T);

    /* show: text and JSON */
    ck_assert_int_eq(fr_rt_cli(g_out, sizeof g_out, "prefs show %s", p1), 0);
    ck_assert_ptr_nonnull(strstr(g_out, "margin r_w - r_l: mean 1, min 1, max 1"));
    ck_assert_ptr_nonnull(strstr(g_out, "prompts covered: "));
    ck_assert_ptr_nonnull(strstr(g_out, "labels: reward halfplane, tie rule drop"));
    ck_assert_ptr_nonnull(strstr(g_out, "sampler sde noise 0.7, 6 steps, cfg 1, seed 5"));
    ck_assert_int_eq(fr_rt_cli(g_out, sizeof g_out, "prefs show %s --json", p1), 0);
    cJSON *j = cJSON_Parse(g_out);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "pairs")->valueint, 12);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "ties_dropped")->valueint, (int)p.ties_dropped);
    ck_assert(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "margin"), "min")->valuedouble == 1.0);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "provenance"), "ckpt_digest")->valuestring,
                     p.ckpt_digest);
    int covered = cJSON_GetObjectItem(j, "prompts_covered")->valueint;
    ck_assert(covered >= 1 && covered <= 8);
    cJSON_Delete(j);
    fr_prefs_free(&p);

    /* failures: one line each, exit 1 (runtime) or 2 (usage) */
    ck_assert_int_eq(fr_rt_cli(g_out, sizeof g_out, "prefs make --task gmm2d --ckpt %s --pairs 50 --max-attempts 50 --reward "
                               "halfplane --progress off --out %s", fr_rt_base, p2), 1);
    ck_assert_ptr_nonnull(strstr(g_out, "ties (equal rewards under halfplane) were dropped"));
    ck_assert_int_eq(fr_rt_cli(g_out, sizeof g_out, "prefs make --task gmm2d --ckpt %s --pairs 5 --sampler ode --out %s",
                               fr_rt_base, p2), 2);
    ck_assert_ptr_nonnull(strstr(g_out, "deterministic"));
    ck_assert_int_eq(fr_rt_cli(g_out, sizeof g_out, "prefs make --ckpt %s --out %s", fr_rt_base, p2), 2);
    ck_assert_int_eq(fr_rt_cli(g_out, sizeof g_out, "prefs show %s --task shapes", p1), 1);
    ck_assert_ptr_nonnull(strstr(g_out, "metadata 'task'"));
    ck_assert_int_eq(fr_rt_cli(g_out, sizeof g_out, "prefs frobnicate"), 2);
    ck_assert_int_eq(fr_rt_cli(g_out, sizeof g_out, "prefs --help"), 0);
    ck_assert_ptr_nonnull(strstr(g_out, "Usage: flowrl prefs make"));
}
END_TEST

Suite *suite_prefs(void)
{
    Suite *s = suite_create("prefs");
    TCase *tc = tcase_create("prefs");
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_mismatched_and_truncated);
    tcase_add_test(tc, test_write_refuses);
    tcase_add_test(tc, test_make_library);
    tcase_add_test(tc, test_make_cli);
    suite_add_tcase(s, tc);
    return s;
}
