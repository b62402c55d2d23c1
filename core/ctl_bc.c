/* Generative control policies behind one handle, behaviour cloning, its checkpoint, and the
 * evaluation (flowrl/ctl_bc.h; docs/control.md §5). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/ctl_bc.h"
#include "flowrl/model.h"
#include "flowrl/optim.h"
#include "flowrl/philox.h"

static const char *const k_kinds[] = {"flow", "ddpm", "meanflow"};

const char *fr_gen_kind_name(fr_gen_kind k) { return (unsigned)k < 3 ? k_kinds[k] : NULL; }

fr_status fr_gen_kind_parse(const char *s, fr_gen_kind *k)
{
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, k_kinds[i]) == 0) {
            *k = (fr_gen_kind)i;
            return FR_OK;
        }
    return fr_fail(FR_ERR_ARG, "policy kind '%s' is not one of flow, ddpm, meanflow", s ? s : "");
}

static int noise_len(const fr_gen_policy *g) { return g->kind == FR_GEN_DDPM ? (g->ddpm.T + 1) * (int)g->A : (int)g->A; }

fr_status fr_gen_policy_new(fr_gen_policy *g, fr_gen_kind kind, fr_backend *be, int64_t O, int64_t A, int64_t hidden,
                            int n_hidden, int steps, int64_t cap)
{
    memset(g, 0, sizeof *g);
    g->kind = kind;
    g->O = O;
    g->A = A;
    g->cap = cap;
    if (kind == FR_GEN_FLOW) {
        FR_TRY(fr_flow_policy_new(&g->flow, be, O, A, hidden, n_hidden, cap));
        if (steps < 1) {
            fr_gen_policy_free(g);
            return fr_fail(FR_ERR_ARG, "flow policy: %d Euler steps", steps);
        }
        g->flow.steps = steps;
        g->net = &g->flow.net;
    } else if (kind == FR_GEN_MEANFLOW) {
        FR_TRY(fr_mf_policy_new(&g->mf, be, O, A, hidden, n_hidden, cap));
        g->net = &g->mf.net;
    } else {
        FR_TRY(fr_ddpm_policy_new(&g->ddpm, be, O, A, hidden, n_hidden, steps, cap));
        g->net = &g->ddpm.net;
    }
    g->noise = fr_malloc((size_t)(cap * noise_len(g)) * sizeof *g->noise);
    g->act_lo = fr_malloc((size_t)A * sizeof *g->act_lo);
    g->act_hi = fr_malloc((size_t)A * sizeof *g->act_hi);
    if (!g->noise || !g->act_lo || !g->act_hi) {
        fr_gen_policy_free(g);
        return FR_ERR_NOMEM;
    }
    for (int64_t j = 0; j < A; j++) {
        g->act_lo[j] = -1.0;
        g->act_hi[j] = 1.0;
    }
    return FR_OK;
}

void fr_gen_policy_free(fr_gen_policy *g)
{
    if (!g) return;
    if (g->kind == FR_GEN_FLOW) fr_flow_policy_free(&g->flow);
    else if (g->kind == FR_GEN_MEANFLOW) fr_mf_policy_free(&g->mf);
    else fr_ddpm_policy_free(&g->ddpm);
    free(g->noise);
    free(g->act_lo);
    free(g->act_hi);
    memset(g, 0, sizeof *g);
}

void fr_gen_policy_unscale(const fr_gen_policy *g, int64_t R, float *a)
{
    if (!g->act_scaled) return;
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < g->A; j++) {
            float *x = a + r * g->A + j;
            *x = (float)(((double)*x + 1.0) * 0.5 * (g->act_hi[j] - g->act_lo[j]) + g->act_lo[j]);
        }
}

fr_status fr_gen_policy_act(fr_gen_policy *g, int64_t R, const float *obs, uint32_t seed, uint32_t c0, uint32_t t,
                            float *action)
{
    if (R > g->cap) return fr_fail(FR_ERR_ARG, "policy: %lld rows, sized for %lld", (long long)R, (long long)g->cap);
    const int64_t A = g->A, L = noise_len(g);
    fr_status s;
    if (g->kind != FR_GEN_DDPM) {
        for (int64_t n = 0; n < R; n++)
            for (int64_t j = 0; j < A; j++)
                g->noise[n * A + j] = fr_rng_normal(seed, FR_RNG_CTL_ACTION, c0, (uint32_t)n, t, (uint32_t)j);
        s = g->kind == FR_GEN_FLOW ? fr_flow_policy_sample(&g->flow, R, obs, g->noise, action)
                                   : fr_mf_policy_sample(&g->mf, R, obs, g->noise, action);
    } else {
        /* DDPM: z laid out (T + 1, R, A) for fr_ddpm_policy_sample, drawn per row as (T + 1)·A values */
        for (int64_t n = 0; n < R; n++)
            for (int64_t e = 0; e < L; e++)
                g->noise[(e / A) * R * A + n * A + e % A] =
                    fr_rng_normal(seed, FR_RNG_CTL_ACTION, c0, (uint32_t)n, t, (uint32_t)e);
        s = fr_ddpm_policy_sample(&g->ddpm, R, obs, g->noise, action);
    }
    if (s == FR_OK) fr_gen_policy_unscale(g, R, action);
    return s;
}

/* ---- behaviour cloning -------------------------------------------------------------------- */

static fr_status bc_resume(const char *path, fr_gen_policy *g, const fr_rms *rms, const fr_bc_opts *o,
                           fr_adamw_state *adam, int64_t *step);

fr_status fr_bc_train(fr_gen_policy *g, fr_rms *rms, const fr_demos *d, const fr_bc_opts *o,
                      void (*progress)(int64_t step, double loss, void *user), void *user)
{
    const int64_t O = g->O, A = g->A, B = o->batch, N = d->N;
    if (d->obs_dim != O || d->action_dim != A)
        return fr_fail(FR_ERR_ARG, "bc: the demonstrations have %d observations and %d actions, the policy %lld and %lld",
                       d->obs_dim, d->action_dim, (long long)O, (long long)A);
    if (N < 1) return fr_fail(FR_ERR_ARG, "bc: the demonstrations hold no step");
    if (B > g->cap) return fr_fail(FR_ERR_ARG, "bc: --batch-size %lld exceeds the policy's %lld rows", (long long)B, (long long)g->cap);
    fr_rms_update_f32(rms, N, d->obs);
    g->act_scaled = o->action_scale != 0;
    for (int64_t j = 0; j < A && g->act_scaled; j++) {
        g->act_lo[j] = g->act_hi[j] = (double)d->action[j];
        for (int64_t i = 1; i < N; i++) {
            const double a = (double)d->action[i * A + j];
            if (a < g->act_lo[j]) g->act_lo[j] = a;
            if (a > g->act_hi[j]) g->act_hi[j] = a;
        }
    }
    FR_TRY(fr_mlp_init_params(g->net, o->seed, 4, 1.0f));
    fr_adamw_state adam;
    FR_TRY(fr_adamw_state_init(g->net->be, &adam, g->net->params, g->net->n_params));
    int64_t k0 = 0;
    if (o->resume) {
        const fr_status rs = bc_resume(o->resume, g, rms, o, &adam, &k0);
        if (rs != FR_OK) {
            fr_adamw_state_free(&adam);
            return rs;
        }
    }
    fr_adamw_cfg cfg = fr_adamw_cfg_default();
    cfg.weight_decay = 0.0;
    float *obs = fr_malloc((size_t)(B * O) * sizeof *obs), *act = fr_malloc((size_t)(B * A) * sizeof *act);
    float *eps = fr_malloc((size_t)(B * A) * sizeof *eps), *raw = fr_malloc((size_t)(B * O) * sizeof *raw);
    double *t = fr_malloc((size_t)B * sizeof *t), *loss = fr_malloc((size_t)B * sizeof *loss);
    double *r = fr_malloc((size_t)B * sizeof *r);
    double *w = fr_malloc((size_t)B * sizeof *w);
    int *ti = fr_malloc((size_t)B * sizeof *ti);
    fr_status s = obs && act && eps && raw && t && r && loss && w && ti ? FR_OK : FR_ERR_NOMEM;
    for (int64_t b = 0; b < B && s == FR_OK; b++) w[b] = 1.0 / (double)B;
    for (int64_t k = k0; k < o->steps && s == FR_OK; k++) {
        const uint32_t kk = (uint32_t)k;
        for (int64_t b = 0; b < B; b++) {
            const int64_t i = (int64_t)(fr_rng_u32(o->seed, FR_RNG_CTL_BC, kk, 0, 0, (uint32_t)b) % (uint32_t)N);
            memcpy(raw + b * O, d->obs + i * O, (size_t)O * sizeof *raw);
            for (int64_t j = 0; j < A; j++) {
                const double a = (double)d->action[i * A + j];
                act[b * A + j] = g->act_scaled
                                     ? (float)(2.0 * (a - g->act_lo[j]) / (g->act_hi[j] - g->act_lo[j] + 1e-6) - 1.0)
                                     : (float)a;
            }
            if (g->kind == FR_GEN_FLOW) t[b] = (double)fr_rng_uniform(o->seed, FR_RNG_CTL_BC, kk, 1, 0, (uint32_t)b);
            else if (g->kind == FR_GEN_DDPM) ti[b] = (int)(fr_rng_u32(o->seed, FR_RNG_CTL_BC, kk, 1, 0, (uint32_t)b) % (uint32_t)g->ddpm.T);
            for (int64_t j = 0; j < A; j++)
                eps[b * A + j] = fr_rng_normal(o->seed, FR_RNG_CTL_BC, kk, 2, (uint32_t)b, (uint32_t)j);
        }
        fr_ctl_obs_normalize(rms, B, raw, obs);
        s = fr_mlp_zero_grad(g->net);
        double lm = 0.0;
        if (s == FR_OK && g->kind == FR_GEN_MEANFLOW) {
            fr_mf_loss ml;
            s = fr_mf_times(B, g->mf.flow_ratio, o->seed, FR_RNG_MF_TIME, kk, t, r);
            if (s == FR_OK) s = fr_mf_policy_loss(&g->mf, B, obs, act, eps, t, r, 1, &ml);
            lm = ml.loss;
        } else if (s == FR_OK) {
            s = g->kind == FR_GEN_FLOW ? fr_flow_policy_cfm(&g->flow, B, obs, act, eps, t, FR_FLOW_LOSS_U, loss, w)
                                       : fr_ddpm_policy_loss(&g->ddpm, B, obs, act, eps, ti, loss, w);
            for (int64_t b = 0; b < B; b++) lm += loss[b] / (double)B;
        }
        if (s == FR_OK && !isfinite(lm)) s = fr_fail(FR_ERR_NUMERIC, "bc: step %lld: the loss is %g", (long long)k + 1, lm);
        if (s == FR_OK) s = fr_adamw_step(g->net->be, &adam, g->net->params, g->net->n_params, &cfg, o->lr);
        if (s == FR_OK && o->on_step) s = o->on_step(o->on_step_user, k + 1, lm, &adam);
        if (s == FR_OK && progress && ((k + 1) % 100 == 0 || k + 1 == o->steps)) progress(k + 1, lm, user);
    }
    fr_adamw_state_free(&adam);
    void *h[] = {obs, act, eps, raw, t, r, loss, w, ti};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    return s;
}

/* ---- the checkpoint ------------------------------------------------------------------------ */

static fr_status meta_i(fr_st_file *f, const char *k, long long v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    return fr_st_set_meta(f, k, b);
}

static fr_status meta_f(fr_st_file *f, const char *k, double v)
{
    char b[32];
    snprintf(b, sizeof b, "%.17g", v);
    return fr_st_set_meta(f, k, b);
}

/* The Adam moments as optim.m.<name> / optim.v.<name> into f (save) or from it. */
static fr_status moments(fr_st_file *f, const fr_gen_policy *g, const fr_adamw_state *adam, int save)
{
    char nm[96];
    for (int p = 0; p < g->net->n_params; p++)
        for (int mv = 0; mv < 2; mv++) {
            snprintf(nm, sizeof nm, "optim.%c.%s", mv ? 'v' : 'm', g->net->names[p]);
            fr_tensor *t = mv ? &adam->v[p] : &adam->m[p];
            FR_TRY(save ? fr_dev_tensor_to_st(adam->be, f, nm, t) : fr_dev_tensor_from_st(adam->be, f, nm, t));
        }
    return FR_OK;
}

fr_status fr_bc_save(const char *path, fr_gen_policy *g, const fr_rms *rms, const char *env, const char *desc,
                     const fr_bc_opts *o)
{
    return fr_bc_save_state(path, g, rms, env, desc, o, NULL, 0);
}

fr_status fr_bc_save_state(const char *path, fr_gen_policy *g, const fr_rms *rms, const char *env, const char *desc,
                           const fr_bc_opts *o, const fr_adamw_state *adam, int64_t step)
{
    fr_st_file f;
    fr_st_init(&f);
    f.digests = 1;
    fr_status s = fr_mlp_save(g->net, &f);
    if (s == FR_OK && adam) s = moments(&f, g, adam, 1);
    if (s == FR_OK && adam) s = meta_i(&f, "optim.step", adam->step);
    if (s == FR_OK && adam) s = meta_i(&f, "bc_step", step);
    if (s == FR_OK && adam) s = meta_i(&f, "bc_batch", o->batch);
    if (s == FR_OK && adam) s = meta_f(&f, "bc_lr", o->lr);
    if (s == FR_OK) s = fr_rms_save(rms, &f, "ctl.obs_rms");
    if (s == FR_OK && g->act_scaled) s = fr_ctl_st_put(&f, "ctl.action", "lo", FR_F64, g->act_lo, g->A);
    if (s == FR_OK && g->act_scaled) s = fr_ctl_st_put(&f, "ctl.action", "hi", FR_F64, g->act_hi, g->A);
    if (s == FR_OK) s = meta_i(&f, "action_scale", g->act_scaled);
    if (s == FR_OK) s = fr_st_set_meta(&f, "format", FR_CTL_POLICY_FORMAT);
    if (s == FR_OK) s = fr_st_set_meta(&f, "format_version", "1");
    if (s == FR_OK) s = fr_st_set_meta(&f, "kind", fr_gen_kind_name(g->kind));
    if (s == FR_OK) s = fr_st_set_meta(&f, "env", env);
    if (s == FR_OK) s = fr_st_set_meta(&f, "env_desc", desc);
    if (s == FR_OK) s = meta_i(&f, "obs_dim", g->O);
    if (s == FR_OK) s = meta_i(&f, "action_dim", g->A);
    if (s == FR_OK) s = meta_i(&f, "hidden_dim", g->net->dim[1]);
    if (s == FR_OK) s = meta_i(&f, "n_hidden", g->net->L - 1);
    if (s == FR_OK && g->kind != FR_GEN_MEANFLOW)
        s = g->kind == FR_GEN_FLOW ? meta_i(&f, "flow_steps", g->flow.steps) : meta_i(&f, "denoising_steps", g->ddpm.T);
    if (s == FR_OK && g->kind == FR_GEN_MEANFLOW) {
        char w[32];
        snprintf(w, sizeof w, "%.17g", g->mf.disp_weight);
        s = fr_st_set_meta(&f, "dispersive_weight", w);
    }
    if (s == FR_OK) s = meta_i(&f, "bc_steps", o->steps);
    if (s == FR_OK) s = meta_i(&f, "seed", o->seed);
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    return s;
}

fr_status fr_bc_load(const char *path, fr_backend *be, int64_t cap, fr_gen_policy *g, fr_rms *rms, char *env,
                     size_t env_n)
{
    memset(g, 0, sizeof *g);
    memset(rms, 0, sizeof *rms);
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path));
    const char *fmt = fr_st_get_meta(&f, "format"), *kind = fr_st_get_meta(&f, "kind");
    fr_gen_kind k = FR_GEN_FLOW;
    fr_status s = FR_OK;
    if (!fmt || strcmp(fmt, FR_CTL_POLICY_FORMAT) != 0 || fr_gen_kind_parse(kind, &k) != FR_OK)
        s = fr_fail(FR_ERR_FORMAT, "%s: metadata format '%s' kind '%s', expected '%s' and flow, ddpm or meanflow", path,
                    fmt ? fmt : "(absent)", kind ? kind : "(absent)", FR_CTL_POLICY_FORMAT);
    int64_t O = 0, A = 0, H = 0, L = 0, K = 1;
    if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "obs_dim", 1, 1 << 16, &O);
    if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "action_dim", 1, 1 << 16, &A);
    if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "hidden_dim", 1, 1 << 16, &H);
    if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "n_hidden", 1, FR_MLP_MAX_LAYERS - 1, &L);
    if (s == FR_OK && k != FR_GEN_MEANFLOW)
        s = fr_st_get_meta_i64(&f, path, k == FR_GEN_FLOW ? "flow_steps" : "denoising_steps", 1, FR_DDPM_MAX_T, &K);
    if (s == FR_OK) s = fr_gen_policy_new(g, k, be, O, A, H, (int)L, (int)K, cap);
    if (s == FR_OK) s = fr_mlp_load(g->net, &f, path);
    if (s == FR_OK) s = fr_rms_init(rms, O);
    if (s == FR_OK) s = fr_rms_load(rms, &f, path, "ctl.obs_rms");
    int64_t sc = 0;
    if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "action_scale", 0, 1, &sc);
    if (s == FR_OK && sc) {
        g->act_scaled = 1;
        s = fr_ctl_st_get(&f, path, "ctl.action", "lo", FR_F64, g->act_lo, A);
        if (s == FR_OK) s = fr_ctl_st_get(&f, path, "ctl.action", "hi", FR_F64, g->act_hi, A);
    }
    if (s == FR_OK && env) snprintf(env, env_n, "%s", fr_st_get_meta(&f, "env") ? fr_st_get_meta(&f, "env") : "");
    fr_st_free(&f);
    if (s != FR_OK) {
        fr_gen_policy_free(g);
        fr_rms_free(rms);
    }
    return s;
}

/* ---- evaluation ----------------------------------------------------------------------------- */

typedef struct {
    fr_gen_policy *g;
    uint32_t seed;
} gen_eval;

static fr_status gen_act(void *user, int64_t t, int64_t N, const float *obs, float *action, double *logp, double *value)
{
    (void)logp;
    (void)value;
    gen_eval *ge = user;
    return fr_gen_policy_act(ge->g, N, obs, ge->seed, UINT32_MAX, (uint32_t)t, action);
}

fr_status fr_gen_policy_evaluate(fr_gen_policy *g, const fr_rms *rms, const fr_env *e, uint32_t seed, int64_t E,
                                 double *ret_mean, double *success)
{
    if (E > g->cap) return fr_fail(FR_ERR_ARG, "eval: %lld episodes exceed the policy's %lld rows", (long long)E, (long long)g->cap);
    if (e->obs_dim != g->O || e->action_dim != g->A || !e->ctl)
        return fr_fail(FR_ERR_ARG, "eval: %s does not fit a policy of %lld observations and %lld actions", e->desc,
                       (long long)g->O, (long long)g->A);
    gen_eval ge = {g, seed};
    const fr_ctl_policy pol = {gen_act, NULL, &ge};
    fr_ctl_eval ev;
    FR_TRY(fr_ctl_evaluate(e, seed, E, rms, &pol, &ev));
    *ret_mean = ev.ret_mean;
    *success = ev.success;
    return FR_OK;
}

/* ---- resuming ------------------------------------------------------------------------------- */

/* FR_ERR_MISMATCH unless metadata key of f is want. */
static fr_status same_meta(const fr_st_file *f, const char *path, const char *key, const char *want)
{
    const char *have = fr_st_get_meta(f, key);
    if (have && strcmp(have, want) == 0) return FR_OK;
    return fr_fail(FR_ERR_MISMATCH, "%s: metadata '%s' is '%s', this run has '%s' (resume with the same options)", path,
                   key, have ? have : "(absent)", want);
}

/* FR_ERR_MISMATCH unless the n doubles of tensor PREFIX.what in f are x, bit for bit. */
static fr_status same_f64(const fr_st_file *f, const char *path, const char *prefix, const char *what, const double *x,
                          int64_t n)
{
    double *have = fr_malloc((size_t)n * sizeof *have);
    if (!have) return FR_ERR_NOMEM;
    fr_status s = fr_ctl_st_get(f, path, prefix, what, FR_F64, have, n);
    if (s == FR_OK && memcmp(have, x, (size_t)n * sizeof *x) != 0)
        s = fr_fail(FR_ERR_MISMATCH, "%s: %s.%s differs from this run's demonstrations' (resume with the same --demos)",
                    path, prefix, what);
    free(have);
    return s;
}

static fr_status bc_resume(const char *path, fr_gen_policy *g, const fr_rms *rms, const fr_bc_opts *o,
                           fr_adamw_state *adam, int64_t *step)
{
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path));
    char v[5][32];
    snprintf(v[0], sizeof v[0], "%lld", (long long)g->O);
    snprintf(v[1], sizeof v[1], "%lld", (long long)g->A);
    snprintf(v[2], sizeof v[2], "%lld", (long long)o->batch);
    snprintf(v[3], sizeof v[3], "%.17g", o->lr);
    snprintf(v[4], sizeof v[4], "%u", (unsigned)o->seed);
    const char *keys[] = {"format", "kind", "obs_dim", "action_dim", "bc_batch", "bc_lr", "seed"};
    const char *want[] = {FR_CTL_POLICY_FORMAT, fr_gen_kind_name(g->kind), v[0], v[1], v[2], v[3], v[4]};
    fr_status s = FR_OK;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && s == FR_OK; i++) s = same_meta(&f, path, keys[i], want[i]);
    if (s == FR_OK) s = same_f64(&f, path, "ctl.obs_rms", "mean", rms->mean, g->O);
    if (s == FR_OK) s = same_f64(&f, path, "ctl.obs_rms", "var", rms->var, g->O);
    if (s == FR_OK && g->act_scaled) s = same_f64(&f, path, "ctl.action", "lo", g->act_lo, g->A);
    if (s == FR_OK && g->act_scaled) s = same_f64(&f, path, "ctl.action", "hi", g->act_hi, g->A);
    if (s == FR_OK) s = fr_mlp_load(g->net, &f, path);
    if (s == FR_OK) s = moments(&f, g, adam, 0);
    if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "optim.step", 0, INT64_MAX, &adam->step);
    if (s == FR_OK) s = fr_st_get_meta_i64(&f, path, "bc_step", 0, o->steps - 1, step);
    fr_st_free(&f);
    return s;
}
