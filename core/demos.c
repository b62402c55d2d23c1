/* Demonstration files (flowrl/demos.h, docs/demos.md): building a set step by step, writing,
 * reading and the checks both apply. */
#include "flowrl/demos.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/buildinfo.h"
#include "flowrl/safetensors.h"

#define MAX_WIDTH 4096 /* obs_dim, action_dim, state_dim */

void fr_demos_init(fr_demos *d, int obs_dim, int action_dim, int state_dim, int has_success)
{
    memset(d, 0, sizeof *d);
    d->obs_dim = obs_dim;
    d->action_dim = action_dim;
    d->state_dim = state_dim;
    d->has_success = has_success;
}

void fr_demos_free(fr_demos *d)
{
    free(d->obs);
    free(d->action);
    free(d->reward);
    free(d->done);
    free(d->state);
    free(d->episode_start);
    free(d->episode);
    free(d->final_obs);
    free(d->success);
    free(d->env_options);
    memset(d, 0, sizeof *d);
}

static fr_status grow(void **p, int64_t n, size_t elem)
{
    void *q = realloc(*p, (size_t)n * elem);
    if (!q) return fr_fail(FR_ERR_NOMEM, "demonstrations: out of memory for %" PRId64 " rows", n);
    *p = q;
    return FR_OK;
}

fr_status fr_demos_push_step(fr_demos *d, const float *obs, const float *action, double reward, int done,
                             const double *state)
{
    if (d->N == d->cap_n) {
        const int64_t c = d->cap_n ? 2 * d->cap_n : 256;
        FR_TRY(grow((void **)&d->obs, c * d->obs_dim, sizeof(float)));
        FR_TRY(grow((void **)&d->action, c * d->action_dim, sizeof(float)));
        FR_TRY(grow((void **)&d->reward, c, sizeof(double)));
        FR_TRY(grow((void **)&d->done, c, 1));
        if (d->state_dim) FR_TRY(grow((void **)&d->state, c * d->state_dim, sizeof(double)));
        d->cap_n = c;
    }
    const int64_t i = d->N++;
    memcpy(d->obs + i * d->obs_dim, obs, (size_t)d->obs_dim * sizeof(float));
    memcpy(d->action + i * d->action_dim, action, (size_t)d->action_dim * sizeof(float));
    d->reward[i] = reward;
    d->done[i] = done ? 1 : 0;
    if (d->state_dim) memcpy(d->state + i * d->state_dim, state, (size_t)d->state_dim * sizeof(double));
    return FR_OK;
}

fr_status fr_demos_end_episode(fr_demos *d, int64_t episode, const float *final_obs, int success)
{
    if (!d->episode_start) {
        FR_TRY(grow((void **)&d->episode_start, 1, sizeof(int64_t)));
        d->episode_start[0] = 0;
    }
    if (d->N == d->episode_start[d->E])
        return fr_fail(FR_ERR_ARG, "demonstrations: episode %" PRId64 " has no step", episode);
    if (d->E == d->cap_e) {
        const int64_t c = d->cap_e ? 2 * d->cap_e : 64;
        FR_TRY(grow((void **)&d->episode_start, c + 1, sizeof(int64_t)));
        FR_TRY(grow((void **)&d->episode, c, sizeof(int64_t)));
        FR_TRY(grow((void **)&d->final_obs, c * d->obs_dim, sizeof(float)));
        if (d->has_success) FR_TRY(grow((void **)&d->success, c, 1));
        d->cap_e = c;
    }
    const int64_t e = d->E++;
    d->episode_start[e + 1] = d->N;
    d->episode[e] = episode;
    memcpy(d->final_obs + e * d->obs_dim, final_obs, (size_t)d->obs_dim * sizeof(float));
    if (d->has_success) d->success[e] = success ? 1 : 0;
    return FR_OK;
}

double fr_demos_return(const fr_demos *d, int64_t e)
{
    double r = 0.0;
    for (int64_t i = d->episode_start[e]; i < d->episode_start[e + 1]; i++) r += d->reward[i];
    return r;
}

void fr_demos_summary(const fr_demos *d, double *ret_mean, double *ret_std, double *len_mean, double *success_rate)
{
    double s = 0.0, ss = 0.0, succ = 0.0;
    for (int64_t e = 0; e < d->E; e++) {
        const double r = fr_demos_return(d, e);
        s += r;
        if (d->has_success) succ += d->success[e];
    }
    const double n = d->E > 0 ? (double)d->E : NAN, m = s / n;
    for (int64_t e = 0; e < d->E; e++) {
        const double r = fr_demos_return(d, e) - m;
        ss += r * r;
    }
    if (ret_mean) *ret_mean = m;
    if (ret_std) *ret_std = sqrt(ss / n);
    if (len_mean) *len_mean = (double)d->N / n;
    if (success_rate) *success_rate = d->has_success ? succ / n : NAN;
}

/* ---- the checks of a set (a file's or one about to be written) ---------------------------- */

static fr_status check_f32(const char *label, const char *name, const float *v, int64_t n, int w)
{
    for (int64_t i = 0; i < n * w; i++)
        if (!isfinite(v[i]))
            return fr_fail(FR_ERR_FORMAT, "%s: tensor '%s' row %" PRId64 " element %" PRId64 ": %g, expected a finite "
                           "value", label, name, i / w, i % w, (double)v[i]);
    return FR_OK;
}

static fr_status check_f64(const char *label, const char *name, const double *v, int64_t n, int w)
{
    for (int64_t i = 0; i < n * w; i++)
        if (!isfinite(v[i]))
            return fr_fail(FR_ERR_FORMAT, "%s: tensor '%s' row %" PRId64 " element %" PRId64 ": %g, expected a finite "
                           "value", label, name, i / w, i % w, v[i]);
    return FR_OK;
}

static fr_status check_demos(const char *label, const fr_demos *d)
{
    if (d->obs_dim < 1 || d->obs_dim > MAX_WIDTH || d->action_dim < 1 || d->action_dim > MAX_WIDTH ||
        d->state_dim < 0 || d->state_dim > MAX_WIDTH)
        return fr_fail(FR_ERR_FORMAT, "%s: widths obs_dim %d, action_dim %d, state_dim %d, expected 1..%d (state_dim "
                       "0..%d)", label, d->obs_dim, d->action_dim, d->state_dim, MAX_WIDTH, MAX_WIDTH);
    if (d->E < 1 || d->N < d->E)
        return fr_fail(FR_ERR_FORMAT, "%s: %" PRId64 " episodes of %" PRId64 " steps, expected at least one episode "
                       "and one step per episode", label, d->E, d->N);
    if (d->max_steps < 1)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'max_steps': %d, expected >= 1", label, d->max_steps);
    if (!d->env[0]) return fr_fail(FR_ERR_FORMAT, "%s: metadata 'env' is empty", label);
    if (d->episode_start[0] != 0 || d->episode_start[d->E] != d->N)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor 'episode_start': runs from %" PRId64 " to %" PRId64 ", expected 0 "
                       "to N = %" PRId64, label, d->episode_start[0], d->episode_start[d->E], d->N);
    for (int64_t e = 0; e < d->E; e++) {
        const int64_t a = d->episode_start[e], b = d->episode_start[e + 1];
        if (b <= a)
            return fr_fail(FR_ERR_FORMAT, "%s: tensor 'episode_start': episode %" PRId64 " spans [%" PRId64 ", %" PRId64
                           "), expected at least one step", label, e, a, b);
        if (b - a > d->max_steps)
            return fr_fail(FR_ERR_FORMAT, "%s: episode %" PRId64 " has %" PRId64 " steps, more than max_steps %d", label,
                           e, b - a, d->max_steps);
        for (int64_t i = a; i < b; i++)
            if (d->done[i] > 1 || (d->done[i] && i != b - 1))
                return fr_fail(FR_ERR_FORMAT, "%s: tensor 'done' row %" PRId64 ": %u inside episode %" PRId64 " (steps "
                               "[%" PRId64 ", %" PRId64 ")), expected 1 only at an episode's last step", label, i,
                               d->done[i], e, a, b);
        if (e > 0 && d->episode[e] <= d->episode[e - 1])
            return fr_fail(FR_ERR_FORMAT, "%s: tensor 'episode': %" PRId64 " after %" PRId64 ", expected increasing "
                           "reset indices", label, d->episode[e], d->episode[e - 1]);
        if (d->episode[e] < 0 || d->episode[e] > UINT32_MAX)
            return fr_fail(FR_ERR_FORMAT, "%s: tensor 'episode' row %" PRId64 ": %" PRId64 ", expected a u32", label, e,
                           d->episode[e]);
        if (d->has_success && d->success[e] > 1)
            return fr_fail(FR_ERR_FORMAT, "%s: tensor 'success' row %" PRId64 ": %u, expected 0 or 1", label, e,
                           d->success[e]);
    }
    FR_TRY(check_f32(label, "obs", d->obs, d->N, d->obs_dim));
    FR_TRY(check_f32(label, "action", d->action, d->N, d->action_dim));
    FR_TRY(check_f64(label, "reward", d->reward, d->N, 1));
    FR_TRY(check_f32(label, "final_obs", d->final_obs, d->E, d->obs_dim));
    if (d->state_dim) FR_TRY(check_f64(label, "state", d->state, d->N, d->state_dim));
    return FR_OK;
}

/* ---- writing ------------------------------------------------------------------------------ */

static fr_status add(fr_st_file *f, const char *name, void *data, fr_dtype dt, int64_t n, int w)
{
    const int64_t shape[2] = {n, w};
    fr_tensor t = fr_tensor_view(data, dt, w > 0 ? 2 : 1, shape);
    return fr_st_add(f, name, &t);
}

/* An integer metadata value. */
static fr_status meta_num(fr_st_file *f, const char *key, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return fr_st_set_meta(f, key, buf);
}

static fr_status fill(fr_st_file *f, const fr_demos *d)
{
    FR_TRY(add(f, "obs", d->obs, FR_F32, d->N, d->obs_dim));
    FR_TRY(add(f, "action", d->action, FR_F32, d->N, d->action_dim));
    FR_TRY(add(f, "reward", d->reward, FR_F64, d->N, 0));
    FR_TRY(add(f, "done", d->done, FR_U8, d->N, 0));
    FR_TRY(add(f, "episode_start", d->episode_start, FR_I64, d->E + 1, 0));
    FR_TRY(add(f, "episode", d->episode, FR_I64, d->E, 0));
    FR_TRY(add(f, "final_obs", d->final_obs, FR_F32, d->E, d->obs_dim));
    if (d->has_success) FR_TRY(add(f, "success", d->success, FR_U8, d->E, 0));
    if (d->state_dim) FR_TRY(add(f, "state", d->state, FR_F64, d->N, d->state_dim));
    FR_TRY(fr_st_set_meta(f, "format", FR_DEMOS_FORMAT));
    FR_TRY(fr_st_set_meta(f, "format_version", FR_DEMOS_VERSION));
    FR_TRY(fr_st_set_meta(f, "env", d->env));
    FR_TRY(fr_st_set_meta(f, "env_desc", d->env_desc));
    FR_TRY(fr_st_set_meta(f, "env_options", d->env_options ? d->env_options : "{}"));
    FR_TRY(meta_num(f, "seed", d->seed));
    FR_TRY(fr_st_set_meta(f, "policy", d->policy));
    FR_TRY(meta_num(f, "obs_dim", d->obs_dim));
    FR_TRY(meta_num(f, "action_dim", d->action_dim));
    FR_TRY(meta_num(f, "state_dim", d->state_dim));
    FR_TRY(meta_num(f, "max_steps", d->max_steps));
    return fr_st_set_meta(f, "flowrl_version", d->flowrl_version[0] ? d->flowrl_version : fr_version());
}

fr_status fr_demos_write(const char *path, const fr_demos *d)
{
    FR_TRY(check_demos(path, d));
    fr_st_file f;
    fr_st_init(&f);
    f.digests = 1;
    fr_status s = fill(&f, d);
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    return s;
}

/* ---- reading ------------------------------------------------------------------------------ */

static const char *const k_meta[] = {"format", "format_version", "env", "env_desc", "env_options", "seed", "policy",
                                     "obs_dim", "action_dim", "state_dim", "max_steps", "flowrl_version", NULL};

static fr_status meta_str(const char *label, const fr_st_file *f, const char *key, char *out, size_t cap)
{
    const char *v = fr_st_get_meta(f, key);
    if (strlen(v) >= cap)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s': %zu bytes, at most %zu", label, key, strlen(v), cap - 1);
    memcpy(out, v, strlen(v) + 1);
    return FR_OK;
}

static fr_status meta_int(const char *label, const fr_st_file *f, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const char *v = fr_st_get_meta(f, key);
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s': '%.64s', expected an integer in [%" PRId64 ", %" PRId64 "]",
                       label, key, v, lo, hi);
    *out = x;
    return FR_OK;
}

/* Tensor name of dtype dt and shape (n) or (n, w) (w 0: one dimension) moved into *dst. */
static fr_status take(const char *label, fr_st_file *f, const char *name, fr_dtype dt, int64_t n, int w, void **dst)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->entries[i].name, name) != 0) continue;
        fr_tensor *t = &f->entries[i].t;
        char got[64], want[64];
        const int64_t shape[2] = {n, w};
        if (t->dtype != dt || t->ndim != (w > 0 ? 2 : 1) || t->shape[0] != n || (w > 0 && t->shape[1] != w))
            return fr_fail(FR_ERR_FORMAT, "%s: tensor '%s': %s %s, expected %s %s", label, name, fr_dtype_name(t->dtype),
                           fr_shape_str(t->ndim, t->shape, got, sizeof got), fr_dtype_name(dt),
                           fr_shape_str(w > 0 ? 2 : 1, shape, want, sizeof want));
        *dst = t->data;
        t->data = NULL;
        t->owned = 0;
        return FR_OK;
    }
    return fr_fail(FR_ERR_FORMAT, "%s: tensor '%s' is missing", label, name);
}

static fr_status from_st(const char *label, fr_st_file *f, fr_demos *d)
{
    for (const char *const *k = k_meta; *k; k++)
        if (!fr_st_get_meta(f, *k)) return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s' is missing", label, *k);
    if (strcmp(fr_st_get_meta(f, "format"), FR_DEMOS_FORMAT) != 0)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'format': '%.64s', expected '" FR_DEMOS_FORMAT "'", label,
                       fr_st_get_meta(f, "format"));
    if (strcmp(fr_st_get_meta(f, "format_version"), FR_DEMOS_VERSION) != 0)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata 'format_version': '%.64s', this flowrl reads version " FR_DEMOS_VERSION,
                       label, fr_st_get_meta(f, "format_version"));
    int64_t od, ad, sd, ms, seed;
    FR_TRY(meta_int(label, f, "obs_dim", 1, MAX_WIDTH, &od));
    FR_TRY(meta_int(label, f, "action_dim", 1, MAX_WIDTH, &ad));
    FR_TRY(meta_int(label, f, "state_dim", 0, MAX_WIDTH, &sd));
    FR_TRY(meta_int(label, f, "max_steps", 1, INT32_MAX, &ms));
    FR_TRY(meta_int(label, f, "seed", 0, UINT32_MAX, &seed));
    const fr_tensor *es = fr_st_get(f, "episode_start");
    if (!es) return fr_fail(FR_ERR_FORMAT, "%s: tensor 'episode_start' is missing", label);
    if (es->ndim != 1 || es->shape[0] < 2)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor 'episode_start': %d dims of %" PRId64 ", expected (E + 1,) with E >= 1",
                       label, es->ndim, es->shape[0]);
    const fr_tensor *rw = fr_st_get(f, "reward");
    if (!rw) return fr_fail(FR_ERR_FORMAT, "%s: tensor 'reward' is missing", label);
    fr_demos_init(d, (int)od, (int)ad, (int)sd, fr_st_get(f, "success") != NULL);
    d->E = es->shape[0] - 1;
    d->N = rw->shape[0];
    d->max_steps = (int)ms;
    d->seed = (uint32_t)seed;
    FR_TRY(take(label, f, "obs", FR_F32, d->N, d->obs_dim, (void **)&d->obs));
    FR_TRY(take(label, f, "action", FR_F32, d->N, d->action_dim, (void **)&d->action));
    FR_TRY(take(label, f, "reward", FR_F64, d->N, 0, (void **)&d->reward));
    FR_TRY(take(label, f, "done", FR_U8, d->N, 0, (void **)&d->done));
    FR_TRY(take(label, f, "episode_start", FR_I64, d->E + 1, 0, (void **)&d->episode_start));
    FR_TRY(take(label, f, "episode", FR_I64, d->E, 0, (void **)&d->episode));
    FR_TRY(take(label, f, "final_obs", FR_F32, d->E, d->obs_dim, (void **)&d->final_obs));
    if (d->has_success) FR_TRY(take(label, f, "success", FR_U8, d->E, 0, (void **)&d->success));
    if (d->state_dim) FR_TRY(take(label, f, "state", FR_F64, d->N, d->state_dim, (void **)&d->state));
    for (size_t i = 0; i < f->n; i++)
        if (f->entries[i].t.data)
            return fr_fail(FR_ERR_FORMAT, "%s: tensor '%.64s' is not part of the format%s", label, f->entries[i].name,
                           strcmp(f->entries[i].name, "state") == 0 ? " (metadata 'state_dim' is 0)" : "");
    d->cap_n = d->N;
    d->cap_e = d->E;
    FR_TRY(meta_str(label, f, "env", d->env, sizeof d->env));
    FR_TRY(meta_str(label, f, "env_desc", d->env_desc, sizeof d->env_desc));
    FR_TRY(meta_str(label, f, "policy", d->policy, sizeof d->policy));
    FR_TRY(meta_str(label, f, "flowrl_version", d->flowrl_version, sizeof d->flowrl_version));
    const char *eo = fr_st_get_meta(f, "env_options");
    if (!(d->env_options = fr_malloc(strlen(eo) + 1))) return FR_ERR_NOMEM;
    memcpy(d->env_options, eo, strlen(eo) + 1);
    return check_demos(label, d);
}

fr_status fr_demos_read_mem(const void *buf, size_t len, const char *label, fr_demos *out)
{
    memset(out, 0, sizeof *out);
    fr_st_file f;
    fr_st_init(&f);
    fr_status s = fr_st_read_mem(&f, buf, len, label);
    if (s == FR_OK) s = from_st(label, &f, out);
    fr_st_free(&f);
    if (s != FR_OK) fr_demos_free(out);
    return s;
}

fr_status fr_demos_read(const char *path, fr_demos *out)
{
    memset(out, 0, sizeof *out);
    fr_st_file f;
    fr_st_init(&f);
    fr_status s = fr_st_read(&f, path);
    if (s == FR_OK) s = from_st(path, &f, out);
    fr_st_free(&f);
    if (s != FR_OK) fr_demos_free(out);
    return s;
}
