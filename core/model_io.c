/* Model checkpoints: config in the safetensors __metadata__, parameters as named F32
 * tensors (flowrl/model.h, docs/design.md §5). */
#include "flowrl/model.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_ddpm_betas[FR_DDPM_BETAS_COUNT + 1] = {"linear", "scaled_linear", NULL};

fr_status fr_model_config_to_meta(const fr_model_config *cfg, fr_st_file *f)
{
    char buf[64];
    FR_TRY(fr_st_set_meta(f, "model.preset", cfg->preset));
    struct {
        const char *key;
        int64_t v;
    } ints[] = {{"model.D", cfg->D},       {"model.n_cond", cfg->n_cond},
                {"model.n_slots", cfg->n_slots},
                {"model.H", cfg->H},       {"model.F", cfg->F},
                {"model.n_blocks", cfg->n_blocks}, {"model.E", cfg->E}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        snprintf(buf, sizeof buf, "%" PRId64, ints[i].v);
        FR_TRY(fr_st_set_meta(f, ints[i].key, buf));
    }
    FR_TRY(fr_st_set_meta(f, "model.act", fr_act_name(cfg->act)));
    FR_TRY(fr_st_set_meta(f, "model.pred", fr_pred_name(cfg->pred)));
    snprintf(buf, sizeof buf, "%.9g", (double)cfg->ln_eps);
    FR_TRY(fr_st_set_meta(f, "model.ln_eps", buf));
    /* velocity-head files keep the keys they had before heads existed */
    if (cfg->head != FR_HEAD_VELOCITY) {
        FR_TRY(fr_st_set_meta(f, "model.head", fr_head_name(cfg->head)));
        snprintf(buf, sizeof buf, "%.9g", (double)cfg->sigma_min);
        FR_TRY(fr_st_set_meta(f, "model.sigma_min", buf));
    }
    if (cfg->out_D) { /* D-wide heads keep the keys they had before out_D */
        snprintf(buf, sizeof buf, "%" PRId64, cfg->out_D);
        FR_TRY(fr_st_set_meta(f, "model.out_D", buf));
    }
    if (cfg->arch != FR_ARCH_MLP) { /* MLP files keep the keys they had before DiTs */
        FR_TRY(fr_st_set_meta(f, "model.arch", fr_arch_name(cfg->arch)));
        struct {
            const char *key;
            int64_t v;
        } dit[] = {{"model.img_c", cfg->img_c}, {"model.img_h", cfg->img_h}, {"model.img_w", cfg->img_w},
                   {"model.patch", cfg->patch}, {"model.n_heads", cfg->n_heads}};
        for (size_t i = 0; i < sizeof dit / sizeof dit[0]; i++) {
            snprintf(buf, sizeof buf, "%" PRId64, dit[i].v);
            FR_TRY(fr_st_set_meta(f, dit[i].key, buf));
        }
    }
    if (fr_model_eps_head(cfg)) { /* the keys pretraining writes for the samplers, same text */
        FR_TRY(fr_st_set_meta(f, "ddpm.schedule", k_ddpm_betas[cfg->ddpm_betas]));
        snprintf(buf, sizeof buf, "%.9g", cfg->beta_start);
        FR_TRY(fr_st_set_meta(f, "ddpm.beta_start", buf));
        snprintf(buf, sizeof buf, "%.9g", cfg->beta_end);
        FR_TRY(fr_st_set_meta(f, "ddpm.beta_end", buf));
        snprintf(buf, sizeof buf, "%" PRId64, cfg->n_train);
        FR_TRY(fr_st_set_meta(f, "ddpm.n_train", buf));
    }
    return FR_OK;
}

static fr_status meta(const fr_st_file *f, const char *key, const char **out)
{
    *out = fr_st_get_meta(f, key);
    if (!*out) return fr_fail(FR_ERR_FORMAT, "checkpoint metadata: missing '%s'", key);
    return FR_OK;
}

static fr_status meta_float(const fr_st_file *f, const char *key, float *out)
{
    const char *s;
    FR_TRY(meta(f, key, &s));
    char *end;
    errno = 0;
    *out = strtof(s, &end);
    if (errno || end == s || *end)
        return fr_fail(FR_ERR_FORMAT, "checkpoint metadata: '%s' = '%s', expected a number", key, s);
    return FR_OK;
}

static fr_status meta_double(const fr_st_file *f, const char *key, double *out)
{
    const char *s;
    FR_TRY(meta(f, key, &s));
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (errno || end == s || *end)
        return fr_fail(FR_ERR_FORMAT, "checkpoint metadata: '%s' = '%s', expected a number", key, s);
    return FR_OK;
}

static fr_status meta_int(const fr_st_file *f, const char *key, int64_t *out)
{
    const char *s;
    FR_TRY(meta(f, key, &s));
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return fr_fail(FR_ERR_FORMAT, "checkpoint metadata: '%s' = '%s', expected an integer", key, s);
    *out = (int64_t)v;
    return FR_OK;
}

fr_status fr_model_config_from_meta(const fr_st_file *f, fr_model_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    const char *s;
    FR_TRY(meta(f, "model.preset", &s));
    if (strlen(s) >= sizeof cfg->preset)
        return fr_fail(FR_ERR_FORMAT, "checkpoint metadata: 'model.preset' is too long");
    snprintf(cfg->preset, sizeof cfg->preset, "%s", s);
    FR_TRY(meta_int(f, "model.D", &cfg->D));
    FR_TRY(meta_int(f, "model.n_cond", &cfg->n_cond));
    FR_TRY(meta_int(f, "model.n_slots", &cfg->n_slots));
    FR_TRY(meta_int(f, "model.H", &cfg->H));
    FR_TRY(meta_int(f, "model.F", &cfg->F));
    FR_TRY(meta_int(f, "model.n_blocks", &cfg->n_blocks));
    FR_TRY(meta_int(f, "model.E", &cfg->E));
    if (fr_st_get_meta(f, "model.out_D")) FR_TRY(meta_int(f, "model.out_D", &cfg->out_D));
    FR_TRY(meta(f, "model.act", &s));
    if (!fr_act_from_name(s, &cfg->act))
        return fr_fail(FR_ERR_FORMAT, "checkpoint metadata: 'model.act' = '%s' is unknown", s);
    FR_TRY(meta(f, "model.pred", &s));
    if (!fr_pred_from_name(s, &cfg->pred))
        return fr_fail(FR_ERR_FORMAT,
                       "checkpoint metadata: 'model.pred' = '%s', expected velocity or epsilon", s);
    FR_TRY(meta_float(f, "model.ln_eps", &cfg->ln_eps));
    s = fr_st_get_meta(f, "model.head");
    cfg->head = FR_HEAD_VELOCITY;
    if (s) {
        if (!fr_head_from_name(s, &cfg->head))
            return fr_fail(FR_ERR_FORMAT,
                           "checkpoint metadata: 'model.head' = '%s', expected velocity or x0", s);
        FR_TRY(meta_float(f, "model.sigma_min", &cfg->sigma_min));
    }
    if (fr_model_eps_head(cfg)) {
        FR_TRY(meta(f, "ddpm.schedule", &s));
        int k = 0;
        while (k_ddpm_betas[k] && strcmp(k_ddpm_betas[k], s) != 0) k++;
        if (!k_ddpm_betas[k])
            return fr_fail(FR_ERR_FORMAT,
                           "checkpoint metadata: 'ddpm.schedule' = '%s', expected linear or scaled_linear "
                           "(the epsilon model's x0 head)", s);
        cfg->ddpm_betas = (fr_ddpm_betas)k;
        FR_TRY(meta_double(f, "ddpm.beta_start", &cfg->beta_start));
        FR_TRY(meta_double(f, "ddpm.beta_end", &cfg->beta_end));
        FR_TRY(meta_int(f, "ddpm.n_train", &cfg->n_train));
    }
    s = fr_st_get_meta(f, "model.arch");
    cfg->arch = FR_ARCH_MLP;
    if (s) {
        if (!fr_arch_from_name(s, &cfg->arch))
            return fr_fail(FR_ERR_FORMAT, "checkpoint metadata: 'model.arch' = '%s', expected mlp or dit", s);
        if (cfg->arch == FR_ARCH_DIT) {
            FR_TRY(meta_int(f, "model.img_c", &cfg->img_c));
            FR_TRY(meta_int(f, "model.img_h", &cfg->img_h));
            FR_TRY(meta_int(f, "model.img_w", &cfg->img_w));
            FR_TRY(meta_int(f, "model.patch", &cfg->patch));
            FR_TRY(meta_int(f, "model.n_heads", &cfg->n_heads));
        }
    }
    if (fr_model_config_check(cfg) != FR_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", fr_last_error());
        return fr_fail(FR_ERR_FORMAT, "checkpoint metadata: %s", msg);
    }
    return FR_OK;
}

/* Prefixes the last error message with the path (copied first: fr_fail writes the buffer
 * that fr_last_error returns). */
static fr_status with_path(fr_status s, const char *path)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", fr_last_error());
    return fr_fail(s, "%s: %s", path, msg);
}

static fr_status full_name(char *buf, size_t n, const char *prefix, const char *name)
{
    if ((size_t)snprintf(buf, n, "%s%s", prefix ? prefix : "", name) >= n)
        return fr_fail(FR_ERR_ARG, "tensor name prefix '%s' is too long", prefix);
    return FR_OK;
}

fr_status fr_dev_tensor_to_st(fr_backend *be, fr_st_file *f, const char *name, const fr_tensor *t)
{
    fr_tensor h;
    FR_TRY(fr_tensor_alloc(&h, t->dtype, t->ndim, t->shape));
    fr_status s = fr_d2h(be, h.data, t->data, fr_tensor_nbytes(t));
    if (s == FR_OK) s = fr_st_add_take(f, name, &h);
    fr_tensor_free(&h); /* empty when taken */
    return s;
}

fr_status fr_dev_tensor_from_st(fr_backend *be, const fr_st_file *f, const char *name, fr_tensor *t)
{
    char a[64], b[64];
    const fr_tensor *h = fr_st_get(f, name);
    if (!h) return fr_fail(FR_ERR_FORMAT, "checkpoint: tensor '%s' is missing", name);
    if (h->dtype != FR_F32 || !fr_tensor_same_shape(h, t))
        return fr_fail(FR_ERR_FORMAT, "checkpoint: tensor '%s' is %s %s, expected F32 %s", name,
                       fr_dtype_name(h->dtype), fr_shape_str(h->ndim, h->shape, a, sizeof a),
                       fr_shape_str(t->ndim, t->shape, b, sizeof b));
    return fr_h2d(be, t->data, h->data, fr_tensor_nbytes(t));
}

fr_status fr_model_values_to_st(const fr_model *m, fr_st_file *f, const char *prefix)
{
    char nm[256];
    for (int i = 0; i < m->n_params; i++) {
        FR_TRY(full_name(nm, sizeof nm, prefix, m->params[i].name));
        FR_TRY(fr_dev_tensor_to_st(m->be, f, nm, m->params[i].value));
    }
    return FR_OK;
}

fr_status fr_model_values_from_st(fr_model *m, const fr_st_file *f, const char *prefix)
{
    char nm[256];
    for (int i = 0; i < m->n_params; i++) {
        FR_TRY(full_name(nm, sizeof nm, prefix, m->params[i].name));
        FR_TRY(fr_dev_tensor_from_st(m->be, f, nm, m->params[i].value));
    }
    return FR_OK;
}

fr_status fr_model_save(const fr_model *m, const char *path)
{
    fr_st_file f;
    fr_st_init(&f);
    f.digests = 1;
    fr_status s = fr_model_config_to_meta(&m->cfg, &f);
    if (s == FR_OK) s = fr_model_values_to_st(m, &f, "");
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    return s;
}

fr_status fr_model_load(fr_model *m, fr_backend *be, const char *path)
{
    memset(m, 0, sizeof *m);
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path));
    fr_model_config cfg;
    fr_status s = fr_model_config_from_meta(&f, &cfg);
    if (s != FR_OK) s = with_path(s, path);
    if (s == FR_OK) s = fr_model_alloc(m, be, &cfg);
    if (s == FR_OK) {
        s = fr_model_values_from_st(m, &f, "");
        if (s != FR_OK) {
            s = with_path(s, path);
            fr_model_free(m);
        }
    }
    fr_st_free(&f);
    return s;
}
