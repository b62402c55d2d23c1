/* Behaviour cloning of a flow policy, its checkpoint, and its evaluation (flowrl/ctl_bc.h;
 * docs/control.md §5). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/ctl_bc.h"
#include "flowrl/optim.h"
#include "flowrl/philox.h"

fr_status fr_bc_train(fr_flow_policy *p, fr_rms *rms, const fr_demos *d, const fr_bc_opts *o,
                      void (*progress)(int64_t step, double loss, void *user), void *user)
{
    const int64_t O = p->O, A = p->A, B = o->batch, N = d->N;
    if (d->obs_dim != O || d->action_dim != A)
        return fr_fail(FR_ERR_ARG, "bc: the demonstrations have %d observations and %d actions, the policy %lld and %lld",
                       d->obs_dim, d->action_dim, (long long)O, (long long)A);
    if (N < 1) return fr_fail(FR_ERR_ARG, "bc: the demonstrations hold no step");
    if (B > p->cap) return fr_fail(FR_ERR_ARG, "bc: --batch-size %lld exceeds the policy's %lld rows", (long long)B, (long long)p->cap);
    fr_rms_update_f32(rms, N, d->obs);
    FR_TRY(fr_mlp_init_params(&p->net, o->seed, 4, 1.0f));
    fr_adamw_state adam;
    FR_TRY(fr_adamw_state_init(p->net.be, &adam, p->net.params, p->net.n_params));
    fr_adamw_cfg cfg = fr_adamw_cfg_default();
    cfg.weight_decay = 0.0;
    float *obs = fr_malloc((size_t)(B * O) * sizeof *obs), *act = fr_malloc((size_t)(B * A) * sizeof *act);
    float *eps = fr_malloc((size_t)(B * A) * sizeof *eps), *raw = fr_malloc((size_t)(B * O) * sizeof *raw);
    double *t = fr_malloc((size_t)B * sizeof *t), *loss = fr_malloc((size_t)B * sizeof *loss);
    double *g = fr_malloc((size_t)B * sizeof *g);
    fr_status s = obs && act && eps && raw && t && loss && g ? FR_OK : FR_ERR_NOMEM;
    for (int64_t b = 0; b < B && s == FR_OK; b++) g[b] = 1.0 / (double)B;
    for (int64_t k = 0; k < o->steps && s == FR_OK; k++) {
        for (int64_t b = 0; b < B; b++) {
            const int64_t i = (int64_t)(fr_rng_u32(o->seed, FR_RNG_CTL_BC, (uint32_t)k, 0, 0, (uint32_t)b) % (uint32_t)N);
            memcpy(raw + b * O, d->obs + i * O, (size_t)O * sizeof *raw);
            memcpy(act + b * A, d->action + i * A, (size_t)A * sizeof *act);
            t[b] = (double)fr_rng_uniform(o->seed, FR_RNG_CTL_BC, (uint32_t)k, 1, 0, (uint32_t)b);
            for (int64_t j = 0; j < A; j++)
                eps[b * A + j] = fr_rng_normal(o->seed, FR_RNG_CTL_BC, (uint32_t)k, 2, (uint32_t)b, (uint32_t)j);
        }
        fr_ctl_obs_normalize(rms, B, raw, obs);
        s = fr_mlp_zero_grad(&p->net);
        if (s == FR_OK) s = fr_flow_policy_cfm(p, B, obs, act, eps, t, FR_FLOW_LOSS_U, loss, g);
        double lm = 0.0;
        for (int64_t b = 0; b < B; b++) lm += loss[b] / (double)B;
        if (s == FR_OK && !isfinite(lm)) s = fr_fail(FR_ERR_NUMERIC, "bc: step %lld: the CFM loss is %g", (long long)k + 1, lm);
        if (s == FR_OK) s = fr_adamw_step(p->net.be, &adam, p->net.params, p->net.n_params, &cfg, o->lr);
        if (s == FR_OK && progress && ((k + 1) % 100 == 0 || k + 1 == o->steps)) progress(k + 1, lm, user);
    }
    fr_adamw_state_free(&adam);
    void *h[] = {obs, act, eps, raw, t, loss, g};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    return s;
}

static fr_status meta_i(fr_st_file *f, const char *k, long long v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    return fr_st_set_meta(f, k, b);
}

fr_status fr_bc_save(const char *path, fr_flow_policy *p, const fr_rms *rms, const char *env, const char *desc,
                     const fr_bc_opts *o)
{
    fr_st_file f;
    fr_st_init(&f);
    f.digests = 1;
    char b[32];
    snprintf(b, sizeof b, "%.17g", p->out_scale);
    fr_status s = fr_mlp_save(&p->net, &f);
    if (s == FR_OK) s = fr_rms_save(rms, &f, "ctl.obs_rms");
    if (s == FR_OK) s = fr_st_set_meta(&f, "format", FR_CTL_POLICY_FORMAT);
    if (s == FR_OK) s = fr_st_set_meta(&f, "format_version", "1");
    if (s == FR_OK) s = fr_st_set_meta(&f, "kind", "flow");
    if (s == FR_OK) s = fr_st_set_meta(&f, "env", env);
    if (s == FR_OK) s = fr_st_set_meta(&f, "env_desc", desc);
    if (s == FR_OK) s = meta_i(&f, "obs_dim", p->O);
    if (s == FR_OK) s = meta_i(&f, "action_dim", p->A);
    if (s == FR_OK) s = meta_i(&f, "hidden_dim", p->net.dim[1]);
    if (s == FR_OK) s = meta_i(&f, "n_hidden", p->net.L - 1);
    if (s == FR_OK) s = meta_i(&f, "flow_steps", p->steps);
    if (s == FR_OK) s = fr_st_set_meta(&f, "out_scale", b);
    if (s == FR_OK) s = meta_i(&f, "bc_steps", o->steps);
    if (s == FR_OK) s = meta_i(&f, "seed", o->seed);
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    return s;
}

static fr_status meta_int(const fr_st_file *f, const char *path, const char *k, int64_t lo, int64_t hi, int64_t *v)
{
    const char *m = fr_st_get_meta(f, k);
    char *end = NULL;
    long long x = m ? strtoll(m, &end, 10) : 0;
    if (!m || end == m || *end || x < lo || x > hi)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s' is '%s', expected an integer in [%lld, %lld]", path, k,
                       m ? m : "(absent)", (long long)lo, (long long)hi);
    *v = x;
    return FR_OK;
}

fr_status fr_bc_load(const char *path, fr_backend *be, int64_t cap, fr_flow_policy *p, fr_rms *rms, char *env,
                     size_t env_n)
{
    memset(p, 0, sizeof *p);
    memset(rms, 0, sizeof *rms);
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path));
    const char *fmt = fr_st_get_meta(&f, "format"), *kind = fr_st_get_meta(&f, "kind");
    fr_status s = FR_OK;
    if (!fmt || strcmp(fmt, FR_CTL_POLICY_FORMAT) != 0 || !kind || strcmp(kind, "flow") != 0)
        s = fr_fail(FR_ERR_FORMAT, "%s: metadata format '%s' kind '%s', expected '%s' 'flow'", path, fmt ? fmt : "(absent)",
                    kind ? kind : "(absent)", FR_CTL_POLICY_FORMAT);
    int64_t O = 0, A = 0, H = 0, L = 0, K = 0;
    if (s == FR_OK) s = meta_int(&f, path, "obs_dim", 1, 1 << 16, &O);
    if (s == FR_OK) s = meta_int(&f, path, "action_dim", 1, 1 << 16, &A);
    if (s == FR_OK) s = meta_int(&f, path, "hidden_dim", 1, 1 << 16, &H);
    if (s == FR_OK) s = meta_int(&f, path, "n_hidden", 1, FR_MLP_MAX_LAYERS - 1, &L);
    if (s == FR_OK) s = meta_int(&f, path, "flow_steps", 1, 1 << 20, &K);
    if (s == FR_OK) s = fr_flow_policy_new(p, be, O, A, H, (int)L, cap);
    if (s == FR_OK) {
        p->steps = (int)K;
        s = fr_mlp_load(&p->net, &f, path);
    }
    if (s == FR_OK) s = fr_rms_init(rms, O);
    if (s == FR_OK) s = fr_rms_load(rms, &f, path, "ctl.obs_rms");
    if (s == FR_OK && env) snprintf(env, env_n, "%s", fr_st_get_meta(&f, "env") ? fr_st_get_meta(&f, "env") : "");
    fr_st_free(&f);
    if (s != FR_OK) {
        fr_flow_policy_free(p);
        fr_rms_free(rms);
    }
    return s;
}

fr_status fr_flow_policy_evaluate(fr_flow_policy *p, const fr_rms *rms, const fr_env *e, uint32_t seed, int64_t E,
                                  double *ret_mean, double *success)
{
    const int64_t O = p->O, A = p->A;
    if (E > p->cap) return fr_fail(FR_ERR_ARG, "eval: %lld episodes exceed the policy's %lld rows", (long long)E, (long long)p->cap);
    if (e->obs_dim != O || e->action_dim != A || !e->ctl)
        return fr_fail(FR_ERR_ARG, "eval: %s does not fit a policy of %lld observations and %lld actions", e->desc,
                       (long long)O, (long long)A);
    fr_ctl_vec v;
    FR_TRY(fr_ctl_vec_new(&v, e, seed, E, (int64_t)1 << 31));
    float *obs = fr_malloc((size_t)(E * O) * sizeof *obs), *eps = fr_malloc((size_t)(E * A) * sizeof *eps);
    float *act = fr_malloc((size_t)(E * A) * sizeof *act);
    double *rew = fr_malloc((size_t)E * sizeof *rew), *ret = fr_calloc((size_t)E, sizeof *ret);
    uint8_t *term = fr_malloc((size_t)E), *end = fr_malloc((size_t)E), *live = fr_malloc((size_t)E);
    uint8_t *succ = fr_malloc((size_t)E);
    fr_status s = obs && eps && act && rew && ret && term && end && live && succ ? FR_OK : FR_ERR_NOMEM;
    int64_t n_succ = 0;
    if (s == FR_OK) memset(live, 1, (size_t)E);
    for (int t = 0; t < e->max_steps && s == FR_OK; t++) {
        fr_ctl_obs_normalize(rms, E, v.obs, obs);
        for (int64_t n = 0; n < E; n++)
            for (int64_t j = 0; j < A; j++)
                eps[n * A + j] = fr_rng_normal(seed, FR_RNG_CTL_ACTION, UINT32_MAX, (uint32_t)n, (uint32_t)t, (uint32_t)j);
        s = fr_flow_policy_sample(p, E, obs, eps, act);
        if (s == FR_OK) s = fr_ctl_vec_step(&v, act, rew, term, end, NULL, succ);
        for (int64_t n = 0; n < E && s == FR_OK; n++)
            if (live[n]) {
                ret[n] += rew[n];
                if (end[n]) {
                    live[n] = 0;
                    n_succ += succ[n];
                }
            }
    }
    double m = 0.0;
    for (int64_t n = 0; n < E; n++) m += ret[n] / (double)E;
    *ret_mean = m;
    *success = e->ctl->success ? (double)n_succ / (double)E : NAN;
    void *h[] = {obs, eps, act, rew, ret, term, end, live, succ};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    fr_ctl_vec_free(&v);
    return s;
}
