/* Options of the Flow-GRPO training loop: defaults, checks, config.json
 * (flowrl/grpo_train.h). One table lists every option once, so config.json, the checkpoint
 * metadata and the resume path cannot disagree on a key. */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/grpo_train.h"
#include "core/grpo_train_internal.h"
#include "flowrl/atomic_file.h"
#include "flowrl/schedule.h"

fr_grpo_train_opts fr_grpo_train_defaults(void)
{
    fr_grpo_train_opts o;
    memset(&o, 0, sizeof o);
    o.epochs = 20;
    o.seed = 42; /* FG config/base.py */
    o.sampler = FR_SAMPLER_SDE;
    o.T = 10; /* FG geneval_sd3: 10 training steps, 40 eval steps (objectives.md §2) */
    o.grid = FR_GRID_DIFFUSERS;
    o.shift = FR_DEFAULT_SHIFT;
    o.noise = 0.7f;
    o.cfg = 1.0f; /* tiny models: the nocfg configs' g = 1 */
    o.train_cfg = -1;
    o.P = 8;
    o.G = 8;
    o.rollout_batch = 64;
    o.timestep_fraction = 0.99;
    o.window = FR_TRAIN_WINDOW_NONE;
    o.fast_w = 2; /* FG base sde_window_size, range (0, T/2) as the fast configs */
    o.fast_r0 = 0;
    o.fast_r1 = -1;
    o.mix_w = 4; /* MIX group_size 4, iters_per_group 25 */
    o.mix_iters = 25;
    o.guard = FR_TRAIN_GUARD_OFF;
    o.clip_range = 1e-4; /* FG; see cmd_train's help for the measured alternative */
    o.adv_clip = FR_GRPO_ADV_CLIP_MAX;
    o.beta = 0.04f; /* FG geneval_sd3, code form (objectives.md §2 quirk 1) */
    o.kl_form = FR_KL_CODE;
    o.adv = FR_TRAIN_ADV_PROMPT;
    o.global_std = 1;
    o.ddpo_buffer = 16;
    o.ddpo_min_count = 16;
    o.num_batches = 4;
    o.grad_accum = 2;
    o.lr = 3e-4f;
    o.beta1 = 0.9f;
    o.beta2 = 0.999f;
    o.adam_eps = 1e-8f;
    o.weight_decay = 1e-4f;
    o.max_grad_norm = 1.0f;
    o.ema = -1.0f;
    o.ema_every = 8;
    o.eval_steps = 40;
    o.eval_n = 8;
    o.keep_checkpoints = 2;
    return o;
}

/* ---- names ------------------------------------------------------------------------------ */

static const char *const k_adv[] = {"prompt", "batch", "ddpo"};
static const char *const k_window[] = {"none", "fast", "mix"};
static const char *const k_guard[] = {"off", "batch", "sample"};
static const char *const k_klform[] = {"code", "paper"};

static fr_status from_name(const char *what, const char *const *names, int n, const char *s, int *out)
{
    for (int i = 0; i < n; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *out = i;
            return FR_OK;
        }
    char list[128] = "";
    for (int i = 0; i < n; i++) {
        strncat(list, names[i], sizeof list - strlen(list) - 1);
        if (i + 1 < n) strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    return fr_fail(FR_ERR_ARG, "unknown %s '%s' (%s)", what, s ? s : "(null)", list);
}

#define NAME_FNS(fn, type, arr, what)                                                                     \
    const char *fr_##fn##_name(type v) { return ((int)v >= 0 && (int)v < 3 && arr[(int)v]) ? arr[(int)v] : NULL; } \
    fr_status fr_##fn##_from_name(const char *s, type *out)                                               \
    {                                                                                                     \
        int i;                                                                                            \
        FR_TRY(from_name(what, arr, (int)(sizeof arr / sizeof arr[0]), s, &i));                           \
        *out = (type)i;                                                                                   \
        return FR_OK;                                                                                     \
    }

NAME_FNS(train_adv, fr_train_adv, k_adv, "advantage estimator")
NAME_FNS(train_window, fr_train_window, k_window, "window")
NAME_FNS(train_guard, fr_train_guard, k_guard, "GRPO-Guard mode")
const char *fr_kl_form_name(fr_kl_form f) { return ((int)f == 0 || (int)f == 1) ? k_klform[f] : NULL; }
fr_status fr_kl_form_from_name(const char *s, fr_kl_form *out)
{
    int i;
    FR_TRY(from_name("KL form", k_klform, 2, s, &i));
    *out = (fr_kl_form)i;
    return FR_OK;
}

/* ---- checks ----------------------------------------------------------------------------- */

static int fin(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

int64_t fr_train_fast_r1(const fr_grpo_train_opts *o) { return o->fast_r1 >= 0 ? o->fast_r1 : o->T / 2; }

int fr_train_cfg_on(const fr_grpo_train_opts *o) { return o->train_cfg < 0 ? o->cfg != 1.0f : o->train_cfg; }

fr_status fr_grpo_train_check(const fr_grpo_train_opts *o)
{
#define BAD(...) return fr_fail(FR_ERR_ARG, "train: " __VA_ARGS__)
    if (!o->base[0]) BAD("--base is required");
    if (!o->out[0]) BAD("--out is required");
    if (o->epochs < 1 || o->epochs > 100000000) BAD("epochs = %lld, expected 1 .. 1e8", (long long)o->epochs);
    if (o->sampler != FR_SAMPLER_SDE && o->sampler != FR_SAMPLER_CPS)
        BAD("sampler '%s': training supports sde and cps", fr_sampler_name(o->sampler) ? fr_sampler_name(o->sampler) : "?");
    if (o->T < 2 || o->T > 10000) BAD("steps = %lld, expected 2 .. 10000", (long long)o->T);
    if (!fr_grid_name(o->grid)) BAD("invalid grid %d", (int)o->grid);
    if (!fin(o->shift, 1e-6, 1e6)) BAD("shift = %g, expected (0, 1e6]", o->shift);
    if (!fin(o->noise, 0.0, 100.0) || !(o->noise > 0.0f)) BAD("noise = %g, expected 0 < a <= 100", (double)o->noise);
    if (!fin(o->cfg, -1e6, 1e6)) BAD("cfg = %g is not finite", (double)o->cfg);
    if (o->train_cfg < -1 || o->train_cfg > 1) BAD("train_cfg = %d, expected -1, 0 or 1", o->train_cfg);
    if (o->P < 1 || o->P > 4096 || o->G < 1 || o->G > 4096)
        BAD("prompts %lld x group %lld, expected 1 .. 4096 each", (long long)o->P, (long long)o->G);
    if (o->rollout_batch < 1 || o->rollout_batch > (1 << 20))
        BAD("rollout batch = %lld, expected 1 .. 2^20", (long long)o->rollout_batch);
    if (!fin(o->timestep_fraction, 0.0, 1.0)) BAD("timestep_fraction = %g, expected [0, 1]", o->timestep_fraction);
    if (!fr_train_window_name(o->window)) BAD("invalid window %d", (int)o->window);
    if (o->window == FR_TRAIN_WINDOW_FAST) {
        int64_t r1 = fr_train_fast_r1(o);
        if (o->fast_w < 0 || o->fast_w >= o->T || (o->fast_w > 0 && !(o->fast_r0 >= 0 && o->fast_r0 <= r1 - o->fast_w && r1 <= o->T)))
            BAD("fast window %lld in range [%lld, %lld] with %lld steps: need 0 <= W < T and 0 <= r0 <= r1 - W, r1 <= T",
                (long long)o->fast_w, (long long)o->fast_r0, (long long)r1, (long long)o->T);
    }
    if (o->window == FR_TRAIN_WINDOW_MIX) {
        if (o->T < 3) BAD("the mix window needs at least 3 steps");
        if (o->mix_w < 1 || o->mix_w > o->T || o->mix_iters < 1 || o->mix_iters > 100000000)
            BAD("mix window %lld, %lld epochs per shift: expected 1 .. T and >= 1", (long long)o->mix_w,
                (long long)o->mix_iters);
    }
    if (!fr_train_guard_name(o->guard)) BAD("invalid guard mode %d", (int)o->guard);
    if (o->guard != FR_TRAIN_GUARD_OFF && o->sampler != FR_SAMPLER_SDE)
        BAD("GRPO-Guard is defined for the sde sampler only (objectives.md §3)");
    if (!fin(o->clip_range, 0.0, 1.0) || !(o->clip_range > 0.0)) BAD("clip range = %g, expected (0, 1]", o->clip_range);
    if (!(o->adv_clip > 0.0f)) BAD("adv clip = %g, expected > 0", (double)o->adv_clip);
    if (!fin(o->beta, 0.0, 1e6)) BAD("beta = %g, expected >= 0", (double)o->beta);
    if (!fr_kl_form_name(o->kl_form)) BAD("invalid KL form %d", (int)o->kl_form);
    if (!fr_train_adv_name(o->adv)) BAD("invalid advantage estimator %d", (int)o->adv);
    if (o->global_std != 0 && o->global_std != 1) BAD("global_std = %d, expected 0 or 1", o->global_std);
    if (o->ddpo_buffer < 1 || o->ddpo_buffer > 65536 || o->ddpo_min_count < 0 || o->ddpo_min_count > 65536)
        BAD("ddpo buffer %lld, min count %lld: expected 1 .. 65536, 0 .. 65536", (long long)o->ddpo_buffer,
            (long long)o->ddpo_min_count);
    if (o->num_batches < 1 || o->grad_accum < 1 || o->num_batches % o->grad_accum != 0)
        BAD("num_batches %lld, grad_accum %lld: expected >= 1 with grad_accum dividing num_batches",
            (long long)o->num_batches, (long long)o->grad_accum);
    if ((o->P * o->G) % o->num_batches != 0)
        BAD("prompts x group = %lld samples is not a multiple of num_batches %lld", (long long)(o->P * o->G),
            (long long)o->num_batches);
    if (!fin(o->lr, 0.0, 10.0) || !(o->lr > 0.0f)) BAD("lr = %g, expected 0 < lr <= 10", (double)o->lr);
    if (!fin(o->beta1, 0.0, 1.0) || !(o->beta1 < 1.0f) || !fin(o->beta2, 0.0, 1.0) || !(o->beta2 < 1.0f))
        BAD("AdamW betas (%g, %g), expected [0, 1)", (double)o->beta1, (double)o->beta2);
    if (!fin(o->adam_eps, 0.0, 1.0) || !(o->adam_eps > 0.0f)) BAD("AdamW eps = %g, expected (0, 1]", (double)o->adam_eps);
    if (!fin(o->weight_decay, 0.0, 1.0)) BAD("weight decay = %g, expected [0, 1]", (double)o->weight_decay);
    if (!fin(o->max_grad_norm, 0.0, 1e30)) BAD("max grad norm = %g, expected >= 0 (0 = off)", (double)o->max_grad_norm);
    if (!(o->ema < 0.0f) && !(fin(o->ema, 0.0, 1.0) && o->ema < 1.0f)) BAD("ema = %g, expected 0 <= decay < 1 (or off)", (double)o->ema);
    if (o->ema_every < 1) BAD("ema every = %lld, expected >= 1", (long long)o->ema_every);
    if (o->eval_steps < 1 || o->eval_steps > 10000 || o->eval_n < 0 || o->eval_n > 4096)
        BAD("eval %lld steps x %lld samples: expected 1 .. 10000 and 0 .. 4096", (long long)o->eval_steps,
            (long long)o->eval_n);
    if (o->keep_checkpoints < 0) BAD("keep checkpoints = %lld, expected >= 0", (long long)o->keep_checkpoints);
    /* epoch and sample ids are Philox coordinates */
    if ((uint64_t)o->epochs >= UINT32_MAX / 2 || (uint64_t)(o->P * o->G) > UINT32_MAX / 2) BAD("run too large");
    return FR_OK;
#undef BAD
}

/* ---- the option table ------------------------------------------------------------------- */

typedef enum { K_I64, K_U32, K_F32, K_F64, K_BOOL, K_TRI, K_STR, K_ENUM } kind;

typedef struct {
    const char *key;
    kind k;
    size_t off;
    size_t cap;                                  /* K_STR */
    const char *(*name)(int);                    /* K_ENUM */
    fr_status (*parse)(const char *, int *);     /* K_ENUM */
} opt_row;

static const char *n_sampler(int v) { return fr_sampler_name((fr_sampler_kind)v); }
static fr_status p_sampler(const char *s, int *v)
{
    fr_sampler_kind k;
    FR_TRY(fr_sampler_from_name(s, &k));
    *v = (int)k;
    return FR_OK;
}
static const char *n_grid(int v) { return fr_grid_name((fr_grid)v); }
static fr_status p_grid(const char *s, int *v)
{
    fr_grid g;
    FR_TRY(fr_grid_from_name(s, &g));
    *v = (int)g;
    return FR_OK;
}
#define ENUM_WRAP(fn, type)                                                                 \
    static const char *n_##fn(int v) { return fr_##fn##_name((type)v); }                   \
    static fr_status p_##fn(const char *s, int *v)                                          \
    {                                                                                       \
        type x;                                                                             \
        FR_TRY(fr_##fn##_from_name(s, &x));                                                 \
        *v = (int)x;                                                                        \
        return FR_OK;                                                                       \
    }
ENUM_WRAP(train_window, fr_train_window)
ENUM_WRAP(train_guard, fr_train_guard)
ENUM_WRAP(train_adv, fr_train_adv)
ENUM_WRAP(kl_form, fr_kl_form)

#define O(f) offsetof(fr_grpo_train_opts, f)
static const opt_row k_rows[] = {
    {"base", K_STR, O(base), FR_TRAIN_PATH_MAX, NULL, NULL},
    {"task", K_STR, O(task), 32, NULL, NULL},
    {"reward", K_STR, O(reward), FR_TRAIN_PATH_MAX, NULL, NULL},
    {"base_raw", K_BOOL, O(base_raw), 0, NULL, NULL},
    {"epochs", K_I64, O(epochs), 0, NULL, NULL},
    {"seed", K_U32, O(seed), 0, NULL, NULL},
    {"sampler", K_ENUM, O(sampler), 0, n_sampler, p_sampler},
    {"steps", K_I64, O(T), 0, NULL, NULL},
    {"grid", K_ENUM, O(grid), 0, n_grid, p_grid},
    {"shift", K_F64, O(shift), 0, NULL, NULL},
    {"noise", K_F32, O(noise), 0, NULL, NULL},
    {"cfg", K_F32, O(cfg), 0, NULL, NULL},
    {"train_cfg", K_TRI, O(train_cfg), 0, NULL, NULL},
    {"prompts", K_I64, O(P), 0, NULL, NULL},
    {"group", K_I64, O(G), 0, NULL, NULL},
    {"rollout_batch", K_I64, O(rollout_batch), 0, NULL, NULL},
    {"timestep_fraction", K_F64, O(timestep_fraction), 0, NULL, NULL},
    {"window", K_ENUM, O(window), 0, n_train_window, p_train_window},
    {"fast_window", K_I64, O(fast_w), 0, NULL, NULL},
    {"fast_range_lo", K_I64, O(fast_r0), 0, NULL, NULL},
    {"fast_range_hi", K_I64, O(fast_r1), 0, NULL, NULL},
    {"mix_window", K_I64, O(mix_w), 0, NULL, NULL},
    {"mix_iters", K_I64, O(mix_iters), 0, NULL, NULL},
    {"guard", K_ENUM, O(guard), 0, n_train_guard, p_train_guard},
    {"clip_range", K_F64, O(clip_range), 0, NULL, NULL},
    {"adv_clip", K_F32, O(adv_clip), 0, NULL, NULL},
    {"beta", K_F32, O(beta), 0, NULL, NULL},
    {"kl_form", K_ENUM, O(kl_form), 0, n_kl_form, p_kl_form},
    {"adv", K_ENUM, O(adv), 0, n_train_adv, p_train_adv},
    {"global_std", K_BOOL, O(global_std), 0, NULL, NULL},
    {"ddpo_buffer", K_I64, O(ddpo_buffer), 0, NULL, NULL},
    {"ddpo_min_count", K_I64, O(ddpo_min_count), 0, NULL, NULL},
    {"num_batches", K_I64, O(num_batches), 0, NULL, NULL},
    {"grad_accum", K_I64, O(grad_accum), 0, NULL, NULL},
    {"lr", K_F32, O(lr), 0, NULL, NULL},
    {"adam_beta1", K_F32, O(beta1), 0, NULL, NULL},
    {"adam_beta2", K_F32, O(beta2), 0, NULL, NULL},
    {"adam_eps", K_F32, O(adam_eps), 0, NULL, NULL},
    {"weight_decay", K_F32, O(weight_decay), 0, NULL, NULL},
    {"max_grad_norm", K_F32, O(max_grad_norm), 0, NULL, NULL},
    {"ema", K_F32, O(ema), 0, NULL, NULL},
    {"ema_every", K_I64, O(ema_every), 0, NULL, NULL},
    {"eval_steps", K_I64, O(eval_steps), 0, NULL, NULL},
    {"eval_n", K_I64, O(eval_n), 0, NULL, NULL},
    {"keep_checkpoints", K_I64, O(keep_checkpoints), 0, NULL, NULL},
    {"out", K_STR, O(out), FR_TRAIN_PATH_MAX, NULL, NULL},
};
#undef O
#define N_ROWS (sizeof k_rows / sizeof k_rows[0])

/* The shortest %.Ng that reads back to the same value. */
static void fmt_f32(char *b, size_t n, float v)
{
    for (int p = 6; p <= 9; p++) {
        snprintf(b, n, "%.*g", p, (double)v);
        if (strtof(b, NULL) == v) return;
    }
}
static void fmt_f64(char *b, size_t n, double v)
{
    for (int p = 15; p <= 17; p++) {
        snprintf(b, n, "%.*g", p, v);
        if (strtod(b, NULL) == v) return;
    }
}

/* Each option as text (the checkpoint metadata "train.<key>" and the JSON values). */
static void row_text(const opt_row *r, const fr_grpo_train_opts *o, char *b, size_t n)
{
    const char *p = (const char *)o + r->off;
    switch (r->k) {
    case K_I64: snprintf(b, n, "%lld", (long long)*(const int64_t *)p); break;
    case K_U32: snprintf(b, n, "%u", *(const uint32_t *)p); break;
    case K_F32: fmt_f32(b, n, *(const float *)p); break;
    case K_F64: fmt_f64(b, n, *(const double *)p); break;
    case K_BOOL: snprintf(b, n, "%s", *(const int *)p ? "true" : "false"); break;
    case K_TRI: snprintf(b, n, "%s", *(const int *)p < 0 ? "auto" : *(const int *)p ? "true" : "false"); break;
    case K_STR: snprintf(b, n, "%s", p); break;
    case K_ENUM: snprintf(b, n, "%s", r->name(*(const int *)p)); break;
    }
}

fr_status fr_train_opts_to_meta(const fr_grpo_train_opts *o, fr_st_file *f)
{
    char key[64], val[FR_TRAIN_PATH_MAX + 8];
    for (size_t i = 0; i < N_ROWS; i++) {
        /* the output directory is where the run lives, not what it computes */
        if (strcmp(k_rows[i].key, "out") == 0 || strcmp(k_rows[i].key, "epochs") == 0) continue;
        snprintf(key, sizeof key, "train.%s", k_rows[i].key);
        row_text(&k_rows[i], o, val, sizeof val);
        FR_TRY(fr_st_set_meta(f, key, val));
    }
    return FR_OK;
}

fr_status fr_grpo_train_opts_write_json(const fr_grpo_train_opts *o, const char *base_digest, const char *path)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return FR_ERR_NOMEM;
    cJSON_AddStringToObject(root, "algo", "flow-grpo");
    for (size_t i = 0; i < N_ROWS; i++) {
        const opt_row *r = &k_rows[i];
        const char *p = (const char *)o + r->off;
        char b[FR_TRAIN_PATH_MAX + 8];
        switch (r->k) {
        case K_I64: cJSON_AddNumberToObject(root, r->key, (double)*(const int64_t *)p); break;
        case K_U32: cJSON_AddNumberToObject(root, r->key, (double)*(const uint32_t *)p); break;
        case K_F32:
        case K_F64:
            /* the shortest text that reads back to the same float / double */
            row_text(r, o, b, sizeof b);
            cJSON_AddRawToObject(root, r->key, b);
            break;
        case K_BOOL: cJSON_AddBoolToObject(root, r->key, *(const int *)p); break;
        case K_TRI:
        case K_STR:
        case K_ENUM:
            row_text(r, o, b, sizeof b);
            cJSON_AddStringToObject(root, r->key, b);
            break;
        }
    }
    /* resolved values of the "auto" options, for the reader (ignored when read back) */
    cJSON *res = cJSON_AddObjectToObject(root, "resolved");
    int64_t tt = 0;
    fr_train_steps(o->T, o->timestep_fraction, &tt);
    if (res) {
        cJSON_AddBoolToObject(res, "train_cfg", fr_train_cfg_on(o));
        cJSON_AddNumberToObject(res, "trained_steps", o->window == FR_TRAIN_WINDOW_FAST
                                                          ? (double)(o->fast_w > 0 ? o->fast_w : o->T - 1)
                                                      : o->window == FR_TRAIN_WINDOW_MIX ? (double)o->mix_w
                                                                                         : (double)tt);
        cJSON_AddNumberToObject(res, "fast_range_hi", (double)fr_train_fast_r1(o));
        cJSON_AddNumberToObject(res, "samples_per_epoch", (double)(o->P * o->G));
        cJSON_AddNumberToObject(res, "optimizer_steps_per_epoch", (double)(o->num_batches / o->grad_accum));
        cJSON_AddStringToObject(res, "base_digest", base_digest ? base_digest : "");
    }
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) return FR_ERR_NOMEM;
    fr_status s = fr_train_write_file_atomic(path, txt, strlen(txt), 1);
    free(txt);
    return s;
}

fr_status fr_grpo_train_opts_read_json(fr_grpo_train_opts *o, const char *path)
{
    size_t len;
    char *buf;
    FR_TRY(fr_train_read_file(path, &buf, &len));
    cJSON *root = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fr_fail(FR_ERR_FORMAT, "%s: not a JSON object", path);
    }
    *o = fr_grpo_train_defaults();
    fr_status s = FR_OK;
    for (cJSON *it = root->child; it && s == FR_OK; it = it->next) {
        if (strcmp(it->string, "resolved") == 0) continue;
        if (strcmp(it->string, "algo") == 0) {
            if (!cJSON_IsString(it) || strcmp(it->valuestring, "flow-grpo") != 0)
                s = fr_fail(FR_ERR_FORMAT, "%s: algo is not \"flow-grpo\"", path);
            continue;
        }
        const opt_row *r = NULL;
        for (size_t i = 0; i < N_ROWS; i++)
            if (strcmp(it->string, k_rows[i].key) == 0) r = &k_rows[i];
        if (!r) {
            s = fr_fail(FR_ERR_FORMAT, "%s: unknown key '%s'", path, it->string);
            break;
        }
        char *p = (char *)o + r->off;
        int ok = 1;
        switch (r->k) {
        case K_I64: ok = cJSON_IsNumber(it) && it->valuedouble == floor(it->valuedouble) && fabs(it->valuedouble) < 9e15;
            if (ok) *(int64_t *)p = (int64_t)it->valuedouble;
            break;
        case K_U32: ok = cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble <= 4294967295.0 &&
                         it->valuedouble == floor(it->valuedouble);
            if (ok) *(uint32_t *)p = (uint32_t)it->valuedouble;
            break;
        case K_F32: ok = cJSON_IsNumber(it);
            if (ok) *(float *)p = (float)it->valuedouble;
            break;
        case K_F64: ok = cJSON_IsNumber(it);
            if (ok) *(double *)p = it->valuedouble;
            break;
        case K_BOOL: ok = cJSON_IsBool(it);
            if (ok) *(int *)p = cJSON_IsTrue(it);
            break;
        case K_TRI:
            ok = cJSON_IsString(it) &&
                 (strcmp(it->valuestring, "auto") == 0 || strcmp(it->valuestring, "true") == 0 ||
                  strcmp(it->valuestring, "false") == 0);
            if (ok) *(int *)p = it->valuestring[0] == 'a' ? -1 : it->valuestring[0] == 't';
            break;
        case K_STR: ok = cJSON_IsString(it) && strlen(it->valuestring) < r->cap;
            if (ok) snprintf(p, r->cap, "%s", it->valuestring);
            break;
        case K_ENUM: {
            int v;
            ok = cJSON_IsString(it) && r->parse(it->valuestring, &v) == FR_OK;
            if (ok) *(int *)p = v;
            break;
        }
        }
        if (!ok) s = fr_fail(FR_ERR_FORMAT, "%s: key '%s' has a bad value", path, it->string);
    }
    cJSON_Delete(root);
    if (s == FR_OK) {
        s = fr_grpo_train_check(o);
        if (s != FR_OK) {
            char m[512];
            snprintf(m, sizeof m, "%s", fr_last_error());
            s = fr_fail(FR_ERR_FORMAT, "%s: %s", path, m);
        }
    }
    return s;
}

/* ---- small file helpers (grpo_train_internal.h) --------------------------------------- */

fr_status fr_train_read_file(const char *path, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fr_fail(FR_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *b = fr_malloc(cap + 1);
    if (!b) {
        fclose(f);
        return FR_ERR_NOMEM;
    }
    for (;;) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        if (cap > ((size_t)1 << 30)) {
            free(b);
            fclose(f);
            return fr_fail(FR_ERR_FORMAT, "%s: larger than 1 GiB", path);
        }
        char *nb = realloc(b, 2 * cap + 1);
        if (!nb) {
            free(b);
            fclose(f);
            return fr_fail(FR_ERR_NOMEM, "%s: out of memory", path);
        }
        b = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b);
        return fr_fail(FR_ERR_IO, "%s: read error", path);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return FR_OK;
}

typedef struct {
    const char *data;
    size_t len;
    int newline;
} text_job;

static fr_status write_text(FILE *fp, const char *tmp, void *user)
{
    const text_job *j = user;
    if ((j->len && fwrite(j->data, 1, j->len, fp) != j->len) || (j->newline && fputc('\n', fp) == EOF))
        return fr_fail(FR_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return FR_OK;
}

fr_status fr_train_write_file_atomic(const char *path, const char *data, size_t len, int newline)
{
    text_job j = {data, len, newline};
    return fr_atomic_write(path, write_text, &j);
}
