/* The environment loop of the control machinery (flowrl/ctl.h; docs/control.md §1): N
 * environments in lock-step with truncation and episode statistics, and the collection of a
 * rollout block (normalise, act, step, bootstrap, scale, GAE). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/ctl.h"
#include "flowrl/demos.h"
#include "flowrl/run.h"

static fr_status reset_one(fr_ctl_vec *v, int64_t n)
{
    const fr_env *e = v->env;
    const int64_t id = v->next_episode++;
    if (id >= (int64_t)UINT32_MAX)
        return fr_fail(FR_ERR_ARG, "ctl: %s: episode id %lld exceeds 2^32", e->desc, (long long)id);
    v->ep_id[n] = id;
    v->ep_len[n] = 0;
    v->ep_ret[n] = 0.0;
    v->first[n] = 1;
    return e->ctl->reset(e, v->seed, (uint32_t)id, v->state + n * e->state_dim, v->obs + n * e->obs_dim);
}

/* Appends environment n's action (A,) to its episode's (replay environments). */
static fr_status keep_action(fr_ctl_vec *v, int64_t n, const float *action)
{
    const int64_t A = v->env->action_dim, t = v->ep_len[n];
    if (t >= v->ep_cap[n]) {
        const int64_t cap = v->ep_cap[n] ? 2 * v->ep_cap[n] : 64;
        float *p = realloc(v->ep_act[n], (size_t)(cap * A) * sizeof *p);
        if (!p) return FR_ERR_NOMEM;
        v->ep_act[n] = p;
        v->ep_cap[n] = cap;
    }
    memcpy(v->ep_act[n] + t * A, action, (size_t)A * sizeof *action);
    return FR_OK;
}

fr_status fr_ctl_vec_new(fr_ctl_vec *v, const fr_env *env, uint32_t seed, int64_t N, int64_t first_episode)
{
    memset(v, 0, sizeof *v);
    if (!env->ctl) return fr_fail(FR_ERR_ARG, "ctl: %s is not a control environment", env->desc);
    if (N < 1) return fr_fail(FR_ERR_ARG, "ctl: %lld environments", (long long)N);
    v->env = env;
    v->seed = seed;
    v->N = N;
    v->next_episode = first_episode;
    v->state = fr_calloc((size_t)(N * (env->state_dim > 0 ? env->state_dim : 1)), sizeof *v->state);
    v->obs = fr_calloc((size_t)(N * env->obs_dim), sizeof *v->obs);
    v->ep_id = fr_calloc((size_t)N, sizeof *v->ep_id);
    v->ep_len = fr_calloc((size_t)N, sizeof *v->ep_len);
    v->ep_ret = fr_calloc((size_t)N, sizeof *v->ep_ret);
    v->first = fr_calloc((size_t)N, 1);
    fr_status s = v->state && v->obs && v->ep_id && v->ep_len && v->ep_ret && v->first ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK && env->ctl->replay) {
        v->ep_act = fr_calloc((size_t)N, sizeof *v->ep_act);
        v->ep_cap = fr_calloc((size_t)N, sizeof *v->ep_cap);
        if (!v->ep_act || !v->ep_cap) s = FR_ERR_NOMEM;
    }
    for (int64_t n = 0; n < N && s == FR_OK; n++) s = reset_one(v, n);
    if (s != FR_OK) fr_ctl_vec_free(v);
    return s;
}

void fr_ctl_vec_free(fr_ctl_vec *v)
{
    if (!v) return;
    for (int64_t n = 0; v->ep_act && n < v->N; n++) free(v->ep_act[n]);
    void *h[] = {v->state, v->obs, v->ep_id, v->ep_len, v->ep_ret, v->first, v->ep_act, v->ep_cap};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    memset(v, 0, sizeof *v);
}

void fr_ctl_vec_stats_reset(fr_ctl_vec *v)
{
    v->done_n = v->done_terminal = v->done_success = 0;
    v->done_ret_sum = v->done_len_sum = 0.0;
}

fr_status fr_ctl_vec_step(fr_ctl_vec *v, const float *action, double *reward, uint8_t *term, uint8_t *end,
                          float *final_obs, uint8_t *success)
{
    const fr_env *e = v->env;
    const int64_t O = e->obs_dim, A = e->n_actions > 0 ? 1 : e->action_dim;
    for (int64_t n = 0; n < v->N; n++) {
        int done = 0;
        double r = 0.0;
        float *obs = v->obs + n * O;
        if (v->ep_act) FR_TRY(keep_action(v, n, action + n * A));
        FR_TRY(e->ctl->step(e, v->state + n * e->state_dim, action + n * A, obs, &r, &done));
        if (!isfinite(r))
            return fr_fail(FR_ERR_NUMERIC, "ctl: %s: episode %lld step %lld: the reward is %g", e->desc,
                           (long long)v->ep_id[n], (long long)v->ep_len[n], r);
        v->first[n] = 0;
        v->ep_len[n]++;
        v->ep_ret[n] += r;
        reward[n] = r;
        term[n] = done ? 1 : 0;
        end[n] = done || v->ep_len[n] >= e->max_steps;
        if (success) success[n] = 0;
        if (final_obs) memcpy(final_obs + n * O, obs, (size_t)O * sizeof *obs);
        if (end[n]) {
            v->done_n++;
            v->done_terminal += term[n];
            const int ok = e->ctl->success ? e->ctl->success(e, v->state + n * e->state_dim) != 0 : 0;
            v->done_success += ok;
            if (success) success[n] = (uint8_t)ok;
            v->done_ret_sum += v->ep_ret[n];
            v->done_len_sum += (double)v->ep_len[n];
            FR_TRY(reset_one(v, n));
        }
    }
    return FR_OK;
}

/* The longest episode in flight (at least 1: the actions tensor is never empty). */
static int64_t longest(const fr_ctl_vec *v)
{
    int64_t L = 1;
    for (int64_t n = 0; n < v->N; n++) L = v->ep_len[n] > L ? v->ep_len[n] : L;
    return L;
}

fr_status fr_ctl_vec_save(const fr_ctl_vec *v, fr_st_file *f, const char *prefix)
{
    const fr_env *e = v->env;
    const int64_t N = v->N;
    FR_TRY(fr_ctl_st_put(f, prefix, "state", FR_F64, v->state, N * e->state_dim));
    FR_TRY(fr_ctl_st_put(f, prefix, "obs", FR_F32, v->obs, N * e->obs_dim));
    FR_TRY(fr_ctl_st_put(f, prefix, "ep_id", FR_I64, v->ep_id, N));
    FR_TRY(fr_ctl_st_put(f, prefix, "ep_len", FR_I64, v->ep_len, N));
    FR_TRY(fr_ctl_st_put(f, prefix, "ep_ret", FR_F64, v->ep_ret, N));
    FR_TRY(fr_ctl_st_put(f, prefix, "first", FR_U8, v->first, N));
    FR_TRY(fr_ctl_st_put(f, prefix, "next_episode", FR_I64, &v->next_episode, 1));
    if (!v->ep_act) return FR_OK;
    const int64_t A = e->action_dim, L = longest(v);
    float *all = fr_calloc((size_t)(N * L * A), sizeof *all);
    if (!all) return FR_ERR_NOMEM;
    for (int64_t n = 0; n < N; n++)
        if (v->ep_len[n]) memcpy(all + n * L * A, v->ep_act[n], (size_t)(v->ep_len[n] * A) * sizeof *all);
    const fr_status s = fr_ctl_st_put(f, prefix, "actions", FR_F32, all, N * L * A);
    free(all);
    return s;
}

/* A resumed replay environment: episode n reset and its kept actions replayed in the program,
 * which must arrive at the checkpoint's observation. */
static fr_status replay_one(fr_ctl_vec *v, int64_t n, const float *acts, float *obs)
{
    const fr_env *e = v->env;
    const int64_t A = e->action_dim, O = e->obs_dim, len = v->ep_len[n];
    double *st = v->state + n * e->state_dim;
    const int64_t cap = len > 64 ? len : 64;
    float *p = realloc(v->ep_act[n], (size_t)(cap * A) * sizeof *p);
    if (!p) return FR_ERR_NOMEM;
    memcpy(p, acts, (size_t)(len * A) * sizeof *p);
    v->ep_act[n] = p;
    v->ep_cap[n] = cap;
    FR_TRY(e->ctl->reset(e, v->seed, (uint32_t)v->ep_id[n], st, obs));
    for (int64_t t = 0; t < len; t++) {
        double r;
        int done = 0;
        FR_TRY(e->ctl->step(e, st, acts + t * A, obs, &r, &done));
        if (done)
            return fr_fail(FR_ERR_FORMAT, "ctl: resuming %s: episode %lld ended at step %lld of its replay, the checkpoint "
                           "had it running at step %lld: the environment is not a function of (seed, episode, actions)",
                           e->desc, (long long)v->ep_id[n], (long long)t, (long long)len);
    }
    for (int64_t i = 0; i < O; i++)
        if (memcmp(&obs[i], &v->obs[n * O + i], sizeof *obs) != 0)
            return fr_fail(FR_ERR_FORMAT, "ctl: resuming %s: episode %lld replayed to step %lld gives observation element "
                           "%lld = %.9g, the checkpoint has %.9g: the environment is not a function of (seed, episode, "
                           "actions)", e->desc, (long long)v->ep_id[n], (long long)len, (long long)i, (double)obs[i],
                           (double)v->obs[n * O + i]);
    return FR_OK;
}

fr_status fr_ctl_vec_load(fr_ctl_vec *v, const fr_st_file *f, const char *path, const char *prefix)
{
    const fr_env *e = v->env;
    const int64_t N = v->N;
    FR_TRY(fr_ctl_st_get(f, path, prefix, "state", FR_F64, v->state, N * e->state_dim));
    FR_TRY(fr_ctl_st_get(f, path, prefix, "obs", FR_F32, v->obs, N * e->obs_dim));
    FR_TRY(fr_ctl_st_get(f, path, prefix, "ep_id", FR_I64, v->ep_id, N));
    FR_TRY(fr_ctl_st_get(f, path, prefix, "ep_len", FR_I64, v->ep_len, N));
    FR_TRY(fr_ctl_st_get(f, path, prefix, "ep_ret", FR_F64, v->ep_ret, N));
    FR_TRY(fr_ctl_st_get(f, path, prefix, "first", FR_U8, v->first, N));
    FR_TRY(fr_ctl_st_get(f, path, prefix, "next_episode", FR_I64, &v->next_episode, 1));
    if (!v->ep_act) return FR_OK;
    for (int64_t n = 0; n < N; n++)
        if (v->ep_len[n] < 0 || v->ep_len[n] >= e->max_steps)
            return fr_fail(FR_ERR_FORMAT, "%s: tensor %s.ep_len: environment %lld at step %lld, expected 0..%d", path, prefix,
                           (long long)n, (long long)v->ep_len[n], e->max_steps - 1);
    const int64_t A = e->action_dim, O = e->obs_dim, L = longest(v);
    float *all = fr_malloc((size_t)(N * L * A) * sizeof *all), *obs = fr_malloc((size_t)O * sizeof *obs);
    fr_status s = all && obs ? fr_ctl_st_get(f, path, prefix, "actions", FR_F32, all, N * L * A) : FR_ERR_NOMEM;
    for (int64_t n = 0; n < N && s == FR_OK; n++) s = replay_one(v, n, all + n * L * A, obs);
    free(all);
    free(obs);
    return s;
}

/* ---- a block ------------------------------------------------------------------------------ */

fr_status fr_ctl_block_new(fr_ctl_block *b, int64_t T, int64_t N, int64_t O, int64_t A)
{
    memset(b, 0, sizeof *b);
    b->T = T;
    b->N = N;
    b->O = O;
    b->A = A;
    const size_t n = (size_t)(T * N);
    b->obs = fr_calloc(n * (size_t)O, sizeof *b->obs);
    b->fin_obs = fr_calloc(n * (size_t)O, sizeof *b->fin_obs);
    b->act = fr_calloc(n * (size_t)A, sizeof *b->act);
    double **d[] = {&b->logp, &b->value, &b->reward, &b->next_value, &b->adv, &b->ret, &b->raw_reward};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) *d[i] = fr_calloc(n, sizeof(double));
    b->first = fr_calloc(n, 1);
    b->term = fr_calloc(n, 1);
    b->end = fr_calloc(n, 1);
    int ok = b->obs && b->fin_obs && b->act && b->first && b->term && b->end;
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) ok = ok && *d[i];
    if (!ok) {
        fr_ctl_block_free(b);
        return FR_ERR_NOMEM;
    }
    return FR_OK;
}

void fr_ctl_block_free(fr_ctl_block *b)
{
    if (!b) return;
    void *h[] = {b->obs, b->fin_obs, b->act, b->logp, b->value, b->reward, b->next_value, b->adv, b->ret,
                 b->raw_reward, b->first, b->term, b->end};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    memset(b, 0, sizeof *b);
}

fr_status fr_ctl_collect(fr_ctl_vec *v, fr_rms *rms, fr_ctl_reward_scaler *scaler, const fr_ctl_policy *p,
                         const fr_ctl_collect_cfg *c, fr_ctl_block *b)
{
    const int64_t T = b->T, N = b->N, O = b->O, A = b->A;
    if (N != v->N || O != v->env->obs_dim)
        return fr_fail(FR_ERR_ARG, "ctl: a block of %lld x %lld for %lld environments of %d observations",
                       (long long)N, (long long)O, (long long)v->N, v->env->obs_dim);
    /* the truncated rows, then the observation after the block: one value pass */
    int64_t *trunc = fr_malloc((size_t)(T * N + 1) * sizeof *trunc);
    float *vin = fr_malloc((size_t)((T + 1) * N * O) * sizeof *vin);
    double *vout = fr_malloc((size_t)((T + 1) * N) * sizeof *vout);
    fr_status s = trunc && vin && vout ? FR_OK : FR_ERR_NOMEM;
    int64_t n_trunc = 0;
    for (int64_t t = 0; t < T && s == FR_OK; t++) {
        const int64_t r0 = t * N;
        memcpy(b->first + r0, v->first, (size_t)N);
        if (rms) {
            if (c->obs_norm_update) fr_rms_update_f32(rms, N, v->obs);
            fr_ctl_obs_normalize(rms, N, v->obs, b->obs + r0 * O);
        } else {
            memcpy(b->obs + r0 * O, v->obs, (size_t)(N * O) * sizeof(float));
        }
        s = p->act(p->user, t, N, b->obs + r0 * O, b->act + r0 * A, b->logp + r0, b->value + r0);
        if (s == FR_OK)
            s = fr_ctl_vec_step(v, b->act + r0 * A, b->raw_reward + r0, b->term + r0, b->end + r0, b->fin_obs + r0 * O, NULL);
        for (int64_t n = 0; n < N && s == FR_OK; n++)
            if (b->end[r0 + n] && !b->term[r0 + n]) trunc[n_trunc++] = r0 + n;
    }
    if (s == FR_OK) {
        for (int64_t k = 0; k < n_trunc; k++)
            memcpy(vin + k * O, b->fin_obs + trunc[k] * O, (size_t)O * sizeof(float));
        if (rms) fr_ctl_obs_normalize(rms, n_trunc, vin, vin);
        float *after = vin + n_trunc * O;
        if (rms) fr_ctl_obs_normalize(rms, N, v->obs, after);
        else memcpy(after, v->obs, (size_t)(N * O) * sizeof(float));
        s = p->value(p->user, n_trunc + N, vin, vout);
    }
    if (s == FR_OK) {
        for (int64_t t = 0; t < T; t++)
            for (int64_t n = 0; n < N; n++) {
                const int64_t i = t * N + n;
                b->next_value[i] = b->term[i] ? 0.0 : b->end[i] ? NAN : t + 1 < T ? b->value[i + N] : vout[n_trunc + n];
            }
        for (int64_t k = 0; k < n_trunc; k++) b->next_value[trunc[k]] = vout[k];
        if (scaler) s = fr_ctl_reward_scale(scaler, T, b->raw_reward, b->first, b->reward);
        else memcpy(b->reward, b->raw_reward, (size_t)(T * N) * sizeof(double));
    }
    if (s == FR_OK) fr_ctl_gae(T, N, c->gamma, c->lambda, b->reward, b->value, b->next_value, b->end, b->adv, b->ret);
    free(trunc);
    free(vin);
    free(vout);
    return s;
}

/* The evaluation's episodes into d (fr_ctl_evaluate's recording): step t of environment n at row
 * t·E + n of obs (T, E, O), act (T, E, A), rew (T, E); len (E,), fin (E, O), succ (E,). */
static fr_status eval_record(fr_demos *d, const fr_env *e, int64_t E, const float *obs, const float *act,
                             const double *rew, const int64_t *len, const uint8_t *term, const float *fin,
                             const uint8_t *succ)
{
    const int64_t O = e->obs_dim, A = e->n_actions > 0 ? 1 : e->action_dim;
    for (int64_t n = 0; n < E; n++) {
        for (int64_t t = 0; t < len[n]; t++) {
            const int64_t i = t * E + n;
            FR_TRY(fr_demos_push_step(d, obs + i * O, act + i * A, rew[i], t == len[n] - 1 && term[n], NULL));
        }
        FR_TRY(fr_demos_end_episode(d, FR_CTL_EVAL_FIRST_EPISODE + n, fin + n * O, succ[n]));
    }
    return FR_OK;
}

fr_status fr_ctl_evaluate(const fr_env *e, uint32_t seed, int64_t E, const fr_rms *rms, const fr_ctl_policy *p,
                          fr_ctl_eval *out)
{
    const int64_t O = e->obs_dim, A = e->n_actions > 0 ? 1 : e->action_dim, T = e->max_steps;
    fr_demos *rec = e->eval_record;
    if (rec) fr_demos_init(rec, (int)O, (int)A, 0, e->ctl->success != NULL);
    fr_ctl_vec v;
    FR_TRY(fr_ctl_vec_new(&v, e, seed, E, FR_CTL_EVAL_FIRST_EPISODE));
    float *obs = fr_malloc((size_t)(E * O) * sizeof *obs), *act = fr_malloc((size_t)(E * A) * sizeof *act);
    double *rew = fr_malloc((size_t)E * sizeof *rew), *ret = fr_calloc((size_t)E, sizeof *ret);
    uint8_t *term = fr_malloc((size_t)E), *end = fr_malloc((size_t)E), *live = fr_malloc((size_t)E);
    uint8_t *succ = fr_malloc((size_t)E);
    fr_status s = obs && act && rew && ret && term && end && live && succ ? FR_OK : FR_ERR_NOMEM;
    /* the recording: every step's raw observation, action and reward, each episode's end */
    float *r_obs = NULL, *r_act = NULL, *r_fin = NULL, *fin = NULL;
    double *r_rew = NULL;
    int64_t *r_len = NULL;
    uint8_t *r_term = NULL, *r_succ = NULL;
    if (rec && s == FR_OK) {
        r_obs = fr_malloc((size_t)(T * E * O) * sizeof *r_obs);
        r_act = fr_malloc((size_t)(T * E * A) * sizeof *r_act);
        r_rew = fr_malloc((size_t)(T * E) * sizeof *r_rew);
        r_fin = fr_malloc((size_t)(E * O) * sizeof *r_fin);
        fin = fr_malloc((size_t)(E * O) * sizeof *fin);
        r_len = fr_calloc((size_t)E, sizeof *r_len);
        r_term = fr_calloc((size_t)E, 1);
        r_succ = fr_calloc((size_t)E, 1);
        s = r_obs && r_act && r_rew && r_fin && fin && r_len && r_term && r_succ ? FR_OK : FR_ERR_NOMEM;
    }
    int64_t n_succ = 0, n_term = 0;
    if (s == FR_OK) memset(live, 1, (size_t)E);
    for (int t = 0; t < T && s == FR_OK; t++) {
        if (rms) fr_ctl_obs_normalize(rms, E, v.obs, obs);
        else memcpy(obs, v.obs, (size_t)(E * O) * sizeof *obs);
        if (rec) memcpy(r_obs + (int64_t)t * E * O, v.obs, (size_t)(E * O) * sizeof *obs);
        s = p->act(p->user, t, E, obs, act, NULL, NULL);
        if (s == FR_OK && rec) memcpy(r_act + (int64_t)t * E * A, act, (size_t)(E * A) * sizeof *act);
        if (s == FR_OK) s = fr_ctl_vec_step(&v, act, rew, term, end, fin, succ);
        for (int64_t n = 0; n < E && s == FR_OK; n++)
            if (live[n]) {
                ret[n] += rew[n];
                if (rec) {
                    r_rew[(int64_t)t * E + n] = rew[n];
                    r_len[n] = t + 1;
                }
                if (end[n]) {
                    live[n] = 0;
                    n_succ += succ[n];
                    n_term += term[n];
                    if (rec) {
                        memcpy(r_fin + n * O, fin + n * O, (size_t)O * sizeof *fin);
                        r_term[n] = term[n];
                        r_succ[n] = succ[n];
                    }
                }
            }
    }
    double m = 0.0;
    for (int64_t n = 0; n < E; n++) m += ret[n] / (double)E;
    out->ret_mean = m;
    out->success = e->ctl->success ? (double)n_succ / (double)E : NAN;
    out->terminal = n_term;
    if (rec && s == FR_OK) s = eval_record(rec, e, E, r_obs, r_act, r_rew, r_len, r_term, r_fin, r_succ);
    void *h[] = {obs, act, rew, ret, term, end, live, succ, r_obs, r_act, r_rew, r_fin, fin, r_len, r_term, r_succ};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    fr_ctl_vec_free(&v);
    return s;
}

fr_status fr_ctl_state_save(fr_st_file *f, const fr_ctl_vec *v, const fr_rms *rms, const fr_ctl_reward_scaler *sc)
{
    FR_TRY(fr_ctl_vec_save(v, f, "ctl.env"));
    FR_TRY(fr_rms_save(rms, f, "ctl.obs_rms"));
    return fr_ctl_reward_scaler_save(sc, f, "ctl.reward_scaler");
}

fr_status fr_ctl_state_load(const fr_st_file *f, const char *path, fr_ctl_vec *v, fr_rms *rms, fr_ctl_reward_scaler *sc)
{
    FR_TRY(fr_ctl_vec_load(v, f, path, "ctl.env"));
    FR_TRY(fr_rms_load(rms, f, path, "ctl.obs_rms"));
    return fr_ctl_reward_scaler_load(sc, f, path, "ctl.reward_scaler");
}

void fr_ctl_episode_metrics(struct fr_run *r, const fr_ctl_vec *v, const fr_env *e, int64_t env_steps)
{
    fr_run_metric(r, "return", v->done_n ? v->done_ret_sum / (double)v->done_n : NAN);
    fr_run_metric(r, "episodes", (double)v->done_n);
    if (e->ctl->success) fr_run_metric(r, "success", v->done_n ? (double)v->done_success / (double)v->done_n : NAN);
    fr_run_metric(r, "env_steps", (double)env_steps);
}
