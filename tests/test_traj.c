/* Guidance written once (flowrl/guidance.h) and the trajectory-PPO micro-step
 * (flowrl/traj_objective.h). The micro-step is checked against the Flow-GRPO trainer
 * itself: an epoch's audit records (the golden case epoch.flow_grpo, written by the
 * trainer of cff6d07, and live runs of the run loop (audit tap) with GRPO-Guard, CPS, the
 * Fast window and the guidance variants) are replayed through fr_traj_micro_step +
 * clip + AdamW, and every ratio, loss, gradient and parameter must match bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/guidance.h"
#include "core/algo/flow_grpo.h"
#include "flowrl/enum_names.h"
#include "flowrl/run.h"
#include "flowrl/optim.h"
#include "flowrl/safetensors.h"
#include "flowrl/sampler_elem.h"
#include "flowrl/traj_objective.h"
#include "tests/model_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define SEED 0x7EA1ull

static int same(const void *a, const void *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }

static void grads_of(const fr_model *m, float *out)
{
    for (int i = 0; i < m->n_params; i++) {
        const int64_t n = fr_tensor_numel(&m->grads[i]);
        memcpy(out, m->grads[i].data, (size_t)n * sizeof(float));
        out += n;
    }
}

/* Guidance on (g 2.5, and g 1 through both branches) and off: v is the hand-written
 * 2b-row forward + fr_cfg_elem; the backward's gradients are those of the formula
 * g_c = g_v·g, g_u = g_v + (−(g_v·g)) written out here, and of the trainer's op sequence
 * (be->ops->scale, be->ops->binary SUB), bit for bit. */
START_TEST(test_guided_bitwise)
{
    fr_backend *be = fr_test_ref_be();
    const fr_task *t = &fr_task_gmm2d;
    fr_model m;
    fr_test_make_model(&m, t, FR_PRED_VELOCITY, SEED);
    enum { B = 5 };
    const int64_t D = m.cfg.D, S = m.cfg.n_slots, P = fr_model_num_params(&m);
    int pid[B] = {0, 4, 4, -1, 7};
    int32_t c[2 * B * 4];
    ck_assert_int_le(S, 4);
    ck_assert(fr_cond_ids(t, B, pid, c) == FR_OK);
    uint64_t rs = SEED;
    float x[B * 2], gv[B * 2], v[B * 2], out[2 * B * 2], xin[2 * B * 2], tin[2 * B], dout[2 * B * 2],
        dop[2 * B * 2];
    for (int i = 0; i < B * D; i++) x[i] = fr_test_uniform(&rs, -2.0f, 2.0f), gv[i] = fr_test_uniform(&rs, -1.0f, 1.0f);
    float *ga = malloc((size_t)P * sizeof(float)), *gb = malloc((size_t)P * sizeof(float)),
          *gc = malloc((size_t)P * sizeof(float));
    ck_assert(ga && gb && gc);
    const fr_guidance cases[3] = {{2.5f, 1}, {1.0f, 1}, {2.5f, 0}};
    for (int k = 0; k < 3; k++) {
        const fr_guidance gd = cases[k];
        const float tv = 731.25f;
        fr_guided_ws w;
        ck_assert(fr_guided_ws_alloc(&w, be, &m, B, gd, 1) == FR_OK);
        fr_model_zero_grad(&m, be);
        ck_assert(fr_guided_forward(&m, be, &w, B, x, tv, c, v) == FR_OK);
        ck_assert(fr_guided_backward(&m, be, &w, gv) == FR_OK);
        grads_of(&m, ga);
        fr_guided_ws_free(&w);

        /* by hand: rows [0, B) conditional, [B, 2B) null */
        const int64_t R = gd.on ? 2 * B : B;
        fr_model_ws ws;
        ck_assert(fr_model_ws_alloc(&ws, &m, R, 1) == FR_OK);
        for (int64_t r = 0; r < R; r++) tin[r] = tv;
        memcpy(xin, x, sizeof x);
        memcpy(xin + B * D, x, sizeof x);
        for (int64_t i = 0; i < B * S; i++) c[B * S + i] = (int32_t)m.cfg.n_cond;
        for (int pass = 0; pass < 2; pass++) {
            fr_model_zero_grad(&m, be);
            ck_assert(fr_model_forward(&m, be, &ws, R, xin, tin, c, out) == FR_OK);
            for (int64_t i = 0; i < B * D; i++) {
                const float want = gd.on ? fr_cfg_elem(out[B * D + i], out[i], gd.scale) : out[i];
                ck_assert_msg(fr_test_bits_equal(v[i], want), "g %g on %d: v[%lld]", (double)gd.scale, gd.on, (long long)i);
                dout[i] = gd.on ? gv[i] * gd.scale : gv[i];
                dout[B * D + i] = gv[i] + (-(gv[i] * gd.scale));
            }
            if (pass == 1 && gd.on) { /* grpo_train.c's micro_step */
                be->ops->scale(B * D, gd.scale, gv, dop);
                be->ops->binary(FR_BIN_SUB, B * D, gv, dop, dop + B * D);
                ck_assert(same(dop, dout, 2 * B * D));
            }
            ck_assert(fr_model_backward(&m, be, &ws, pass == 1 && gd.on ? dop : dout, NULL) == FR_OK);
            grads_of(&m, pass ? gc : gb);
        }
        for (int64_t i = 0; i < P; i++)
            ck_assert_msg(fr_test_bits_equal(ga[i], gb[i]) && fr_test_bits_equal(ga[i], gc[i]) && ga[i] == ga[i],
                          "g %g on %d: gradient %lld %a vs %a (seed %llx)", (double)gd.scale, gd.on, (long long)i,
                          (double)ga[i], (double)gb[i], SEED);
        fr_model_ws_free(&ws);
    }
    fr_guided_ws w;
    ck_assert(fr_guided_ws_alloc(&w, be, &m, 2, cases[0], 1) == FR_OK);
    ck_assert(fr_guided_forward(&m, be, &w, 3, x, 1.0f, c, v) == FR_ERR_ARG);
    fr_guided_ws_free(&w);
    free(ga);
    free(gb);
    free(gc);
    fr_model_free(&m);
}
END_TEST

/* ---- replaying an epoch of the trainer -------------------------------------------------- */

static const float *rec_f32(const fr_st_file *rec, const char *name, int64_t n)
{
    char key[160];
    snprintf(key, sizeof key, "out.%s", name);
    const fr_tensor *t = fr_st_get(rec, key);
    ck_assert_msg(t != NULL, "record %s missing", name);
    ck_assert_msg(t->dtype == FR_F32 && fr_tensor_numel(t) == n, "record %s: %lld elements, want %lld", name,
                  (long long)fr_tensor_numel(t), (long long)n);
    return t->data;
}

static void assert_rec(const fr_st_file *rec, const char *name, const float *got, int64_t n, const char *ctx)
{
    const float *want = rec_f32(rec, name, n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fr_test_bits_equal(got[i], want[i]), "%s: %s[%lld] = %a, the trainer wrote %a", ctx, name,
                      (long long)i, (double)got[i], (double)want[i]);
}

/* The options of an epoch to replay (those of a Flow-GRPO run that matter here). */
typedef struct {
    int64_t P, G, T, num_batches, grad_accum;
    fr_sampler_kind sampler;
    fr_grid grid;
    double shift, clip_range;
    float noise, cfg, adv_clip, beta, max_grad_norm;
    double lr, beta1, beta2, adam_eps, weight_decay; /* as the run's (double) */
    uint32_t seed;
    int train_cfg;
    fr_kl_form kl_form;
    fr_fg_guard guard;
    fr_fg_window window;
} rp_opts;

static rp_opts rp_defaults(void)
{
    rp_opts o = {8,    8,    10,   4,    2,    FR_SAMPLER_SDE, FR_GRID_DIFFUSERS, 3.0, 1e-4, 0.7f, 1.0f, 5.0f, 0.04f,
                 1.0f, 3e-4, 0.9, 0.999, 1e-8, 1e-4, 42,             -1,                FR_KL_CODE, FR_FG_GUARD_OFF,
                 FR_FG_WINDOW_NONE};
    return o;
}

/* The trainer's epoch (records rec of options o, policy pol before the epoch) redone with
 * fr_traj_micro_step; every update's ratios, loss, gradient norm and clipped gradients and
 * the parameters after the epoch must be the trainer's. */
static void replay(const fr_st_file *rec, const rp_opts *o, fr_model *pol, const char *ctx)
{
    fr_backend *be = fr_test_ref_be();
    const int64_t N = o->P * o->G, D = pol->cfg.D, T = o->T;
    fr_rollout_schedule sched;
    fr_rollout_cfg rc = fr_rollout_cfg_default(o->sampler);
    rc.T = T;
    rc.noise = o->noise;
    rc.cfg = o->cfg;
    rc.seed = o->seed;
    ck_assert(fr_rollout_schedule_make(&rc, o->grid, o->shift, 0, 0, &sched) == FR_OK);
    const fr_tensor *wt = fr_st_get(rec, "out.window");
    ck_assert(wt && wt->dtype == FR_I64 && fr_tensor_numel(wt) == 2);
    const int64_t ws0 = ((const int64_t *)wt->data)[0], wl = ((const int64_t *)wt->data)[1];
    float *lev = malloc((size_t)T * sizeof *lev);
    ck_assert(lev);
    for (int64_t i = 0; i < T; i++) lev[i] = i >= ws0 && i < ws0 + wl ? o->noise : 0.0f;
    rc.step_noise = lev;

    const fr_tensor *pt = fr_st_get(rec, "out.prompts"), *ot = fr_st_get(rec, "out.order");
    ck_assert_msg(pt && pt->dtype == FR_I32 && ot && ot->dtype == FR_I64, "%s: prompts / order records", ctx);
    int *pid = malloc((size_t)N * sizeof *pid);
    ck_assert(pid);
    for (int64_t s = 0; s < N; s++) pid[s] = ((const int32_t *)pt->data)[s / o->G];
    const fr_traj_data d = {N,   rec_f32(rec, "traj", (T + 1) * N * D), rec_f32(rec, "mean", T * N * D),
                            rec_f32(rec, "logp_old", T * N), rec_f32(rec, "adv", N), pid, &fr_task_gmm2d, &rc,
                            NULL, NULL};
    const int64_t K = fr_tensor_numel(ot), nb = o->num_batches, ga = o->grad_accum, b = K / nb;
    const int64_t *order = ot->data;
    ck_assert_msg(b > 0 && wl > 0, "%s: nothing trained (K %lld, window %lld)", ctx, (long long)K, (long long)wl);

    fr_model ref;
    const int with_ref = o->beta > 0.0f;
    if (with_ref) {
        ck_assert(fr_model_alloc(&ref, fr_test_ref_be(), &pol->cfg) == FR_OK);
        for (int i = 0; i < pol->n_params; i++)
            memcpy(ref.values[i].data, pol->values[i].data, fr_tensor_nbytes(&pol->values[i]));
    }
    const fr_traj_guard_params gp = {{o->clip_range, o->adv_clip},
                                     o->guard == FR_FG_GUARD_BATCH ? FR_GUARD_BIAS_BATCH : FR_GUARD_BIAS_SAMPLE};
    const int cfg_on = o->train_cfg < 0 ? o->cfg != 1.0f : o->train_cfg;
    const fr_traj_trainer tr = {pol,
                                with_ref ? &ref : NULL,
                                be,
                                {o->cfg, cfg_on},
                                o->guard == FR_FG_GUARD_OFF ? &fr_traj_ppo : &fr_traj_guard,
                                o->guard == FR_FG_GUARD_OFF ? (const void *)&gp.ppo : (const void *)&gp,
                                o->beta,
                                o->kl_form};
    fr_traj_ws w;
    ck_assert_msg(fr_traj_ws_alloc(&w, &tr, b) == FR_OK, "%s", fr_last_error());
    fr_adamw_state opt;
    ck_assert(fr_adamw_state_init(fr_test_ref_be(), &opt, pol->params, pol->n_params) == FR_OK);
    const fr_adamw_cfg ac = {o->beta1, o->beta2, o->adam_eps, o->weight_decay};
    int64_t divisor;
    ck_assert(fr_grpo_accum_divisor(ga, wl, &divisor) == FR_OK);
    const float gout = 1.0f / (float)divisor;
    float *ratios = malloc((size_t)(ga * wl * b) * sizeof *ratios);
    ck_assert(ratios);
    char name[160];
    int64_t u = 0;
    for (int64_t q0 = 0; q0 < nb; q0 += ga, u++) {
        fr_model_zero_grad(pol, be);
        float uloss = 0.0f;
        for (int64_t q = q0; q < q0 + ga; q++)
            for (int64_t j = ws0; j < ws0 + wl; j++) {
                fr_traj_stats st;
                fr_status s = fr_traj_micro_step(&tr, &w, &d, order + q * b, b, j, gout,
                                                 ratios + ((q - q0) * wl + (j - ws0)) * b, &st);
                ck_assert_msg(s == FR_OK, "%s: %s", ctx, fr_last_error());
                uloss += st.loss * gout;
            }
        snprintf(name, sizeof name, "u%lld.ratio", (long long)u);
        assert_rec(rec, name, ratios, ga * wl * b, ctx);
        snprintf(name, sizeof name, "u%lld.loss", (long long)u);
        assert_rec(rec, name, &uloss, 1, ctx);
        float gn = NAN;
        if (o->max_grad_norm > 0.0f) ck_assert(fr_clip_grad_norm(be, pol->params, pol->n_params, o->max_grad_norm, &gn) == FR_OK);
        snprintf(name, sizeof name, "u%lld.grad_norm", (long long)u);
        assert_rec(rec, name, &gn, 1, ctx);
        for (int i = 0; i < pol->n_params; i++) {
            snprintf(name, sizeof name, "u%lld.grad.%s", (long long)u, pol->params[i].name);
            assert_rec(rec, name, pol->grads[i].data, fr_tensor_numel(&pol->grads[i]), ctx);
        }
        ck_assert(fr_adamw_step(be, &opt, pol->params, pol->n_params, &ac, o->lr) == FR_OK);
    }
    for (int i = 0; i < pol->n_params; i++)
        assert_rec(rec, pol->params[i].name, pol->values[i].data, fr_tensor_numel(&pol->values[i]), ctx);
    free(ratios);
    fr_adamw_state_free(&opt);
    fr_traj_ws_free(&w);
    if (with_ref) fr_model_free(&ref);
    free(pid);
    free(lev);
    fr_rollout_schedule_free(&sched);
}

static const char *meta(const fr_st_file *f, const char *key)
{
    char k[160];
    snprintf(k, sizeof k, "param.%s", key);
    const char *v = fr_st_get_meta(f, k);
    ck_assert_msg(v != NULL, "golden: %s missing", k);
    return v;
}

static int64_t iparam(const fr_st_file *f, const char *key)
{
    long long v;
    ck_assert_msg(fr_go_param(f, key, -1, 1 << 20, &v) == FR_OK, "%s", fr_last_error());
    return v;
}

static float fparam(const fr_st_file *f, const char *key)
{
    float v;
    ck_assert_msg(fr_go_scalar(f, key, &v) == FR_OK, "%s", fr_last_error());
    return v;
}

static double dparam(const fr_st_file *f, const char *key)
{
    double v;
    ck_assert_msg(fr_go_scalar_f64(f, key, &v) == FR_OK, "%s", fr_last_error());
    return v;
}

/* golden/epoch.flow_grpo: the epoch of cff6d07's trainer (CFG 1.5, β 0.04, 2 updates of
 * 2 accumulated batches, the second off-policy) redone by fr_traj_micro_step. */
START_TEST(test_golden_epoch)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/epoch.flow_grpo.safetensors", fr_test_src());
    fr_st_file f;
    ck_assert_msg(fr_st_read(&f, path) == FR_OK, "%s", fr_last_error());
    rp_opts o = rp_defaults();
    int e;
    ck_assert(fr_sampler_from_name(meta(&f, "sampler"), &o.sampler) == FR_OK);
    ck_assert(fr_grid_from_name(meta(&f, "grid"), &o.grid) == FR_OK);
    ck_assert(fr_enum_parse(fr_flow_grpo_window_names, meta(&f, "window"), &e, "window") == FR_OK);
    o.window = (fr_fg_window)e;
    ck_assert(fr_enum_parse(fr_flow_grpo_guard_names, meta(&f, "guard"), &e, "guard") == FR_OK);
    o.guard = (fr_fg_guard)e;
    ck_assert(fr_enum_parse(fr_flow_grpo_kl_names, meta(&f, "kl_form"), &e, "kl_form") == FR_OK);
    o.kl_form = (fr_kl_form)e;
    o.seed = (uint32_t)iparam(&f, "seed");
    o.T = iparam(&f, "T");
    o.train_cfg = (int)iparam(&f, "train_cfg");
    o.P = iparam(&f, "P");
    o.G = iparam(&f, "G");
    o.num_batches = iparam(&f, "num_batches");
    o.grad_accum = iparam(&f, "grad_accum");
    o.shift = dparam(&f, "shift");
    o.clip_range = dparam(&f, "clip_range");
    o.noise = fparam(&f, "noise");
    o.cfg = fparam(&f, "cfg");
    o.adv_clip = fparam(&f, "adv_clip");
    o.beta = fparam(&f, "beta");
    o.lr = fparam(&f, "lr");
    o.beta1 = fparam(&f, "beta1");
    o.beta2 = fparam(&f, "beta2");
    o.adam_eps = fparam(&f, "adam_eps");
    o.weight_decay = fparam(&f, "weight_decay");
    o.max_grad_norm = fparam(&f, "max_grad_norm");
    /* the model: param.model.* is the checkpoint metadata, in.<NAME> the weights */
    fr_st_file mm;
    fr_st_init(&mm);
    for (size_t i = 0; i < f.n_meta; i++)
        if (strncmp(f.meta[i].key, "param.model.", 12) == 0)
            ck_assert(fr_st_set_meta(&mm, f.meta[i].key + 6, f.meta[i].value) == FR_OK);
    fr_model_config mc;
    ck_assert(fr_model_config_from_meta(&mm, &mc) == FR_OK);
    fr_st_free(&mm);
    fr_model pol;
    ck_assert(fr_model_alloc(&pol, fr_test_ref_be(), &mc) == FR_OK);
    ck_assert(fr_model_values_from_st(&pol, &f, "in.") == FR_OK);
    ck_assert(o.guard == FR_FG_GUARD_OFF && o.beta > 0.0f && o.cfg != 1.0f);
    replay(&f, &o, &pol, "golden epoch.flow_grpo");
    fr_model_free(&pol);
    fr_st_free(&f);
}
END_TEST

static fr_status tap(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    char key[160];
    snprintf(key, sizeof key, "out.%s", name);
    return step == 1 ? fr_st_add(user, key, t) : FR_OK;
}

typedef struct {
    const char *label;
    fr_sampler_kind sampler;
    fr_fg_guard guard;
    float cfg, beta;
    int train_cfg;
    fr_kl_form kl_form;
    fr_fg_window window;
    double clip_range;
} live_case;

/* One epoch of the run loop (fr_run_new with an audit tap) per case, replayed. */
START_TEST(test_live_epochs)
{
    char dir[] = "/tmp/flowrl-traj-XXXXXX", base[64], run[96];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(base, sizeof base, "%s/base.safetensors", dir);
    fr_model m0;
    fr_test_make_model(&m0, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED + 1);
    ck_assert(fr_model_save(&m0, base) == FR_OK);
    const live_case cases[] = {
        {"guard batch, cfg 1.5, kl", FR_SAMPLER_SDE, FR_FG_GUARD_BATCH, 1.5f, 0.04f, -1, FR_KL_CODE, FR_FG_WINDOW_NONE, 2e-3},
        {"guard sample, no cfg, no kl", FR_SAMPLER_SDE, FR_FG_GUARD_SAMPLE, 1.0f, 0.0f, -1, FR_KL_CODE, FR_FG_WINDOW_NONE, 2e-3},
        {"cps, paper kl, cfg 1 on, fast", FR_SAMPLER_CPS, FR_FG_GUARD_OFF, 1.0f, 0.1f, 1, FR_KL_PAPER, FR_FG_WINDOW_FAST, 1e-5},
        {"sde, rollout cfg 2, train cfg off", FR_SAMPLER_SDE, FR_FG_GUARD_OFF, 2.0f, 0.04f, 0, FR_KL_CODE, FR_FG_WINDOW_NONE, 1e-3},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const live_case *c = &cases[k];
        const fr_algo *a = &fr_algo_flow_grpo;
        fr_run_opts ro;
        fr_flow_grpo_opts fo;
        ck_assert(fr_run_opts_defaults(NULL, &ro, a, &fo) == FR_OK);
        snprintf(ro.c.base, sizeof ro.c.base, "%s", base);
        snprintf(ro.c.task, sizeof ro.c.task, "gmm2d");
        snprintf(run, sizeof run, "%s/run%zu", dir, k);
        snprintf(ro.run.out, sizeof ro.run.out, "%s", run);
        ro.run.epochs = 1;
        ro.run.seed = 3 + (uint32_t)k;
        ro.ev.eval_n = 0;
        ro.c.prompts = 3;
        ro.c.group = 4;
        ro.smp.num_steps = 5;
        ro.smp.sampler = c->sampler;
        ro.smp.noise_level = c->sampler == FR_SAMPLER_CPS ? 0.8f : 0.7f;
        fo.guard = c->guard;
        ro.smp.cfg = c->cfg;
        fo.train_cfg = c->train_cfg;
        ro.c.beta = c->beta;
        fo.kl_form = c->kl_form;
        fo.window = c->window;
        fo.window_size = 2;
        fo.window_lo = 0;
        fo.window_hi = 4;
        ro.c.clip_range = c->clip_range;
        ro.c.num_batches = 2;
        ro.c.grad_accum = 1;
        ro.opt.lr = 3e-3f;
        ro.opt.ema_decay = -1.0f;
        fr_st_file rec;
        fr_st_init(&rec);
        fr_run_result res;
        fr_run_env env = {fr_test_ref_be(), NULL, tap, &rec};
        fr_status s = fr_run_new(&ro, &fo, &env, &res);
        ck_assert_msg(s == FR_OK, "%s: %s", c->label, fr_last_error());
        rp_opts o = rp_defaults();
        o.P = ro.c.prompts;
        o.G = ro.c.group;
        o.T = ro.smp.num_steps;
        o.num_batches = ro.c.num_batches;
        o.grad_accum = ro.c.grad_accum;
        o.sampler = ro.smp.sampler;
        o.grid = ro.smp.grid;
        o.shift = ro.smp.shift;
        o.clip_range = ro.c.clip_range;
        o.noise = ro.smp.noise_level;
        o.cfg = ro.smp.cfg;
        o.adv_clip = ro.c.adv_clip;
        o.beta = ro.c.beta;
        o.lr = ro.opt.lr;
        o.beta1 = ro.opt.adam_beta1;
        o.beta2 = ro.opt.adam_beta2;
        o.adam_eps = ro.opt.adam_eps;
        o.weight_decay = ro.opt.weight_decay;
        o.max_grad_norm = ro.opt.max_grad_norm;
        o.seed = ro.run.seed;
        o.train_cfg = fo.train_cfg;
        o.kl_form = fo.kl_form;
        o.guard = fo.guard;
        o.window = fo.window;
        fr_model pol;
        ck_assert(fr_model_load(&pol, fr_test_ref_be(), base) == FR_OK);
        replay(&rec, &o, &pol, c->label);
        fr_model_free(&pol);
        fr_st_free(&rec);
    }
    fr_model_free(&m0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *suite_traj(void)
{
    Suite *s = suite_create("traj");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_guided_bitwise);
    tcase_add_test(tc, test_golden_epoch);
    tcase_add_test(tc, test_live_epochs);
    suite_add_tcase(s, tc);
    return s;
}
