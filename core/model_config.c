/* Model presets, config validation, parameter and FLOP counts (flowrl/model.h). */
#include "flowrl/model.h"
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/enum_names.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/schedule.h"
#include "flowrl/task.h"

typedef struct {
    const char *name;
    int64_t H, F, n_blocks, E;
    fr_act act;
    fr_head head;
    float sigma_min;
    fr_arch arch;
    int64_t n_heads, patch; /* DiT: on the shapes task's images (FR_SHAPES_C, _H, _W) */
} preset_row;

/* Sized for the ref backend on a 2-core laptop: gmm2d-s trains in seconds, shapes-s in
 * minutes (FLOPs per sample from fr_model_config_flops, listed in docs by the report). */
static const preset_row k_presets[] = {
    {"gmm2d-s", 64, 128, 3, 32, FR_ACT_SILU, FR_HEAD_VELOCITY, 0.0f, FR_ARCH_MLP, 0, 0},
    {"shapes-s", 256, 512, 3, 64, FR_ACT_GELU_TANH, FR_HEAD_X0, FR_X0_HEAD_SIGMA_MIN, FR_ARCH_MLP, 0, 0},
    {"shapes-m", 512, 1024, 4, 128, FR_ACT_GELU_TANH, FR_HEAD_X0, FR_X0_HEAD_SIGMA_MIN, FR_ARCH_MLP, 0, 0},
    /* DiTs of about the parameter count of shapes-s / shapes-m (docs/algorithms/dit.md):
     * 16 tokens of 4 × 4 patches plus the prompt's tokens */
    {"shapes-dit-s", 128, 512, 4, 64, FR_ACT_GELU_TANH, FR_HEAD_X0, FR_X0_HEAD_SIGMA_MIN, FR_ARCH_DIT, 4, 4},
    {"shapes-dit-m", 256, 1024, 4, 128, FR_ACT_GELU_TANH, FR_HEAD_X0, FR_X0_HEAD_SIGMA_MIN, FR_ARCH_DIT, 8, 4},
};
#define N_PRESETS (int)(sizeof k_presets / sizeof k_presets[0])

static const char *const k_preset_names[] = {"gmm2d-s", "shapes-s", "shapes-m", "shapes-dit-s", "shapes-dit-m", NULL};

const char *const *fr_model_preset_names(void) { return k_preset_names; }

fr_status fr_model_preset(const char *name, int64_t D, int64_t n_cond, fr_model_config *cfg)
{
    for (int i = 0; i < N_PRESETS; i++) {
        if (strcmp(name, k_presets[i].name) != 0) continue;
        memset(cfg, 0, sizeof *cfg);
        snprintf(cfg->preset, sizeof cfg->preset, "%s", name);
        cfg->D = D;
        cfg->n_cond = n_cond;
        cfg->n_slots = 1;
        cfg->H = k_presets[i].H;
        cfg->F = k_presets[i].F;
        cfg->n_blocks = k_presets[i].n_blocks;
        cfg->E = k_presets[i].E;
        cfg->act = k_presets[i].act;
        cfg->pred = FR_PRED_VELOCITY;
        cfg->ln_eps = 1e-5f;
        cfg->head = k_presets[i].head;
        cfg->sigma_min = k_presets[i].sigma_min;
        if (k_presets[i].arch == FR_ARCH_DIT) {
            if (D != FR_SHAPES_D)
                return fr_fail(FR_ERR_ARG, "model preset '%s' is for the shapes task's %dx%dx%d images (D = %d), "
                               "not D = %lld", name, FR_SHAPES_C, FR_SHAPES_H, FR_SHAPES_W, FR_SHAPES_D, (long long)D);
            cfg->arch = FR_ARCH_DIT;
            cfg->img_c = FR_SHAPES_C, cfg->img_h = FR_SHAPES_H, cfg->img_w = FR_SHAPES_W;
            cfg->patch = k_presets[i].patch;
            cfg->n_heads = k_presets[i].n_heads;
        }
        return fr_model_config_check(cfg);
    }
    return fr_fail(FR_ERR_ARG, "unknown model preset '%s' (known: gmm2d-s, shapes-s, shapes-m, shapes-dit-s, "
                   "shapes-dit-m)", name);
}

/* Bounds keep every tensor under 2^31 elements (Philox element index, int64 products). */
#define MAX_DIM ((int64_t)1 << 20)

fr_status fr_model_config_check(const fr_model_config *cfg)
{
    if (memchr(cfg->preset, '\0', sizeof cfg->preset) == NULL)
        return fr_fail(FR_ERR_ARG, "model config: preset name is not terminated");
    struct {
        const char *name;
        int64_t v, lo, hi;
    } f[] = {
        {"D", cfg->D, 1, MAX_DIM},          {"n_cond", cfg->n_cond, 0, MAX_DIM},
        {"n_slots", cfg->n_slots, 1, 64},
        {"H", cfg->H, 1, MAX_DIM / 16},     {"F", cfg->F, 1, MAX_DIM / 16},
        {"n_blocks", cfg->n_blocks, 0, FR_MODEL_MAX_BLOCKS},
        {"E", cfg->E, 2, MAX_DIM},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v < f[i].lo || f[i].v > f[i].hi)
            return fr_fail(FR_ERR_ARG, "model config: %s = %lld, expected %lld..%lld", f[i].name,
                           (long long)f[i].v, (long long)f[i].lo, (long long)f[i].hi);
    if (cfg->E % 2 != 0)
        return fr_fail(FR_ERR_ARG, "model config: E = %lld, expected an even number",
                       (long long)cfg->E);
    if ((int)cfg->act < 0 || cfg->act >= FR_ACT_COUNT)
        return fr_fail(FR_ERR_ARG, "model config: act = %d is not an activation", (int)cfg->act);
    if ((int)cfg->pred < 0 || cfg->pred >= FR_PRED_COUNT)
        return fr_fail(FR_ERR_ARG, "model config: pred = %d, expected velocity or epsilon",
                       (int)cfg->pred);
    if (!(cfg->ln_eps > 0.0f) || !isfinite(cfg->ln_eps))
        return fr_fail(FR_ERR_ARG, "model config: ln_eps = %g, expected a positive number",
                       (double)cfg->ln_eps);
    if ((int)cfg->head < 0 || cfg->head >= FR_HEAD_COUNT)
        return fr_fail(FR_ERR_ARG, "model config: head = %d, expected velocity or x0", (int)cfg->head);
    if (fr_model_eps_head(cfg)) {
        if ((int)cfg->ddpm_betas < 0 || cfg->ddpm_betas >= FR_DDPM_BETAS_COUNT)
            return fr_fail(FR_ERR_ARG, "model config: ddpm_betas = %d, expected linear or scaled_linear",
                           (int)cfg->ddpm_betas);
        if (!(cfg->beta_start > 0.0 && cfg->beta_start < 1.0) || !(cfg->beta_end > 0.0 && cfg->beta_end < 1.0))
            return fr_fail(FR_ERR_ARG, "model config: beta_start = %g, beta_end = %g, expected numbers in (0, 1)",
                           cfg->beta_start, cfg->beta_end);
        if (cfg->n_train < 2 || cfg->n_train > 100000)
            return fr_fail(FR_ERR_ARG, "model config: n_train = %lld, expected 2 .. 100000", (long long)cfg->n_train);
    } else if (cfg->ddpm_betas != FR_DDPM_LINEAR || cfg->beta_start != 0.0 || cfg->beta_end != 0.0 ||
               cfg->n_train != 0) {
        return fr_fail(FR_ERR_ARG, "model config: ddpm_betas, beta_start, beta_end, n_train are for the x0 head "
                                   "of an epsilon model; expected 0");
    }
    if (cfg->head == FR_HEAD_X0 ? !(cfg->sigma_min > 0.0f && cfg->sigma_min <= 1.0f)
                                : cfg->sigma_min != 0.0f)
        return fr_fail(FR_ERR_ARG, "model config: sigma_min = %g, expected %s", (double)cfg->sigma_min,
                       cfg->head == FR_HEAD_X0 ? "0 < sigma_min <= 1 for the x0 head"
                                               : "0 for the velocity head");
    if (cfg->out_D < 0 || cfg->out_D > MAX_DIM)
        return fr_fail(FR_ERR_ARG, "model config: out_D = %lld, expected 0 (= D) .. %lld", (long long)cfg->out_D,
                       (long long)MAX_DIM);
    if (cfg->out_D && cfg->out_D != cfg->D && (cfg->head != FR_HEAD_VELOCITY || cfg->arch != FR_ARCH_MLP))
        return fr_fail(FR_ERR_ARG, "model config: out_D = %lld (D %lld) needs the MLP with the velocity head",
                       (long long)cfg->out_D, (long long)cfg->D);
    FR_TRY(fr_dit_config_check(cfg));
    /* Largest tensors: (F,H) and (n_cond+1,H) and (D,H) stay below 2^31 elements. */
    int64_t big[] = {cfg->F * cfg->H, (cfg->n_cond + 1) * cfg->H, cfg->D * cfg->H,
                     cfg->E * cfg->H, fr_model_out_dim(cfg) * cfg->H};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        if (big[i] >= ((int64_t)1 << 31))
            return fr_fail(FR_ERR_ARG, "model config: a weight of %lld elements is too large",
                           (long long)big[i]);
    return FR_OK;
}

int64_t fr_model_out_dim(const fr_model_config *cfg) { return cfg->out_D ? cfg->out_D : cfg->D; }

int64_t fr_model_config_num_params(const fr_model_config *c)
{
    if (c->arch == FR_ARCH_DIT) return fr_dit_num_params(c);
    int64_t H = c->H, F = c->F, D = c->D, E = c->E;
    int64_t input = D * H + H;
    int64_t time = E * H + H + H * H + H;
    int64_t cond = (c->n_cond + 1) * H;
    int64_t block = 2 * H + F * H + F + H * F + H;
    const int64_t O = fr_model_out_dim(c);
    int64_t head = 2 * H + H * O + O;
    return input + time + cond + c->n_blocks * block + head;
}

double fr_model_config_flops(const fr_model_config *c)
{
    if (c->arch == FR_ARCH_DIT) return fr_dit_flops(c);
    double H = (double)c->H, F = (double)c->F, D = (double)c->D, E = (double)c->E;
    double macs = D * H + E * H + H * H + (double)c->n_blocks * 2.0 * H * F + H * (double)fr_model_out_dim(c);
    return 2.0 * macs;
}

const char *const fr_pred_names[FR_PRED_COUNT + 1] = {"velocity", "epsilon", NULL};
const char *const fr_head_names[FR_HEAD_COUNT + 1] = {"velocity", "x0", NULL};
const char *const fr_arch_names[FR_ARCH_COUNT + 1] = {"mlp", "dit", NULL};
const char *const fr_act_names[FR_ACT_COUNT + 1] = {"identity", "silu", "gelu_tanh", "tanh", "sigmoid", "relu", NULL};

/* "?" for a value outside the enum: these names go into messages and metadata as text */
static const char *name_or_q(const char *const *names, int v)
{
    const char *n = fr_enum_name(names, v);
    return n ? n : "?";
}

static int index_of(const char *const *names, const char *s)
{
    int v;
    return fr_enum_parse(names, s, &v, "name") == FR_OK ? v : -1;
}

const char *fr_pred_name(fr_pred p) { return name_or_q(fr_pred_names, (int)p); }
const char *fr_head_name(fr_head h) { return name_or_q(fr_head_names, (int)h); }
const char *fr_act_name(fr_act a) { return name_or_q(fr_act_names, (int)a); }
const char *fr_arch_name(fr_arch a) { return name_or_q(fr_arch_names, (int)a); }

int fr_arch_from_name(const char *s, fr_arch *out)
{
    int i = index_of(fr_arch_names, s);
    if (i >= 0) *out = (fr_arch)i;
    return i >= 0;
}

int fr_pred_from_name(const char *s, fr_pred *out)
{
    int i = index_of(fr_pred_names, s);
    if (i >= 0) *out = (fr_pred)i;
    return i >= 0;
}

int fr_head_from_name(const char *s, fr_head *out)
{
    int i = index_of(fr_head_names, s);
    if (i >= 0) *out = (fr_head)i;
    return i >= 0;
}

int fr_act_from_name(const char *s, fr_act *out)
{
    int i = index_of(fr_act_names, s);
    if (i >= 0) *out = (fr_act)i;
    return i >= 0;
}

int fr_model_eps_head(const fr_model_config *cfg)
{
    return cfg->head == FR_HEAD_X0 && cfg->pred == FR_PRED_EPSILON;
}

fr_status fr_model_eps_head_table(const fr_model_config *cfg, float *tab)
{
    const int64_t n = cfg->n_train;
    float *betas = fr_malloc((size_t)n * sizeof *betas);
    if (!betas) return FR_ERR_NOMEM;
    fr_status s = cfg->ddpm_betas == FR_DDPM_SCALED_LINEAR
                      ? fr_betas_scaled_linear(n, cfg->beta_start, cfg->beta_end, betas)
                      : fr_betas_linear(n, cfg->beta_start, cfg->beta_end, betas);
    if (s == FR_OK) s = fr_alphas_cumprod(n, betas, tab); /* ᾱ into the first row */
    free(betas);
    if (s != FR_OK) return s;
    for (int64_t i = 0; i < n; i++) {
        float a, sd;
        fr_ddpm_coefs(tab[i], &a, &sd);
        tab[i] = a;
        tab[n + i] = sd > cfg->sigma_min ? sd : cfg->sigma_min;
    }
    return FR_OK;
}
