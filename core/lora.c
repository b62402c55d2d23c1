/* LoRA adapters on a frozen base (flowrl/lora.h, docs/lora.md). */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/lora.h"
#include "flowrl/philox.h"
#include "flowrl/safetensors.h"

#define FR_ALLOC_L(p, n) (((p) = fr_calloc((size_t)(n), sizeof *(p))) != NULL)

/* The module of base parameter i ("M" of a 2-dim "M.weight"), or 0. cond.weight is an
 * embedding table, not a linear layer. */
static int module_of(const fr_model *m, int i, char *mod, size_t n)
{
    const char *nm = m->params[i].name;
    size_t l = strlen(nm);
    if (m->values[i].ndim != 2 || l < 8 || strcmp(nm + l - 7, ".weight") != 0 || strcmp(nm, "cond.weight") == 0) return 0;
    if (l - 7 >= n) return 0;
    memcpy(mod, nm, l - 7);
    mod[l - 7] = '\0';
    return 1;
}

static int pattern_selects(const char *pat, const char *mod)
{
    size_t lp = strlen(pat), lm = strlen(mod);
    if (strcmp(pat, mod) == 0 || fnmatch(pat, mod, 0) == 0) return 1;
    return lm > lp && mod[lm - lp - 1] == '.' && strcmp(mod + lm - lp, pat) == 0; /* PEFT's suffix */
}

/* sel[i] = 1 for the base parameters the comma list pats selects; FR_ERR_ARG for a pattern
 * that selects none. */
static fr_status select_targets(const fr_model *m, const char *pats, int *sel)
{
    char buf[FR_LORA_TARGETS_MAX];
    if (snprintf(buf, sizeof buf, "%s", pats) >= (int)sizeof buf)
        return fr_fail(FR_ERR_ARG, "--lora-targets: longer than %d characters", FR_LORA_TARGETS_MAX - 1);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ') p++;
        int hit = 0;
        char mod[64];
        for (int i = 0; i < m->n_params; i++)
            if (module_of(m, i, mod, sizeof mod) && pattern_selects(p, mod)) sel[i] = hit = 1;
        if (!hit) {
            char have[1024] = "";
            size_t used = 0;
            for (int i = 0; i < m->n_params && used + 70 < sizeof have; i++)
                if (module_of(m, i, mod, sizeof mod)) used += (size_t)snprintf(have + used, sizeof have - used, "%s%s", used ? ", " : "", mod);
            return fr_fail(FR_ERR_ARG, "--lora-targets: '%s' selects no linear layer of the %s model (its layers: %s)", p,
                           m->cfg.preset, have);
        }
    }
    return FR_OK;
}

const char *fr_lora_default_targets(const fr_model_config *cfg)
{
    return cfg->arch == FR_ARCH_DIT ? FR_LORA_DIT_TARGETS : FR_LORA_MLP_TARGETS;
}

void fr_lora_free(fr_lora *L)
{
    if (!L) return;
    for (int a = 0; a < L->n_ad; a++) fr_dev_free(L->base.be, L->arena[a]);
    free(L->pidx);
    free(L->tidx);
    free(L->N);
    free(L->K);
    free(L->names);
    free(L->off);
    if (L->base.params) fr_model_free(&L->base);
    memset(L, 0, sizeof *L);
}

/* Adapter 0 = PEFT's default init (flowrl/lora.h): A uniform (counter c1 = 1), B zero. */
static fr_status init_default(fr_lora *L, uint32_t seed)
{
    float *h = fr_calloc((size_t)L->arena_n, sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    for (int t = 0; t < L->n_t; t++) {
        const int64_t n = L->r * L->K[t];
        const float bound = 1.0f / sqrtf((float)L->K[t]);
        float *a = h + L->off[2 * t];
        fr_rng_fill_uniform(a, n, seed, FR_RNG_INIT, (uint32_t)L->pidx[t], 1, 0);
        for (int64_t j = 0; j < n; j++) a[j] = (2.0f * a[j] - 1.0f) * bound;
    }
    fr_status s = fr_h2d(L->base.be, L->arena[0], h, (size_t)L->arena_n * sizeof *h);
    free(h);
    return s;
}

fr_status fr_lora_new(fr_lora *L, fr_model *base, int64_t r, double alpha, const char *targets, uint32_t seed)
{
    memset(L, 0, sizeof *L);
    if (base->lora) return fr_fail(FR_ERR_ARG, "lora: the base is itself a LoRA view");
    if (!(alpha > 0.0) || !isfinite(alpha)) return fr_fail(FR_ERR_ARG, "--lora-alpha %g: expected a positive number", alpha);
    L->base = *base;
    memset(base, 0, sizeof *base);
    L->base.w = L->base.values;
    L->r = r;
    L->alpha = alpha;
    L->scale = (float)(alpha / (double)r);
    const int n = L->base.n_params;
    int *sel = fr_calloc((size_t)n, sizeof *sel);
    if (!sel || !FR_ALLOC_L(L->tidx, n)) {
        free(sel);
        fr_lora_free(L);
        return FR_ERR_NOMEM;
    }
    fr_status s = select_targets(&L->base, targets && targets[0] ? targets : fr_lora_default_targets(&L->base.cfg), sel);
    for (int i = 0; i < n; i++) L->n_t += sel[i];
    if (s == FR_OK && !(FR_ALLOC_L(L->pidx, L->n_t) && FR_ALLOC_L(L->N, L->n_t) && FR_ALLOC_L(L->K, L->n_t) &&
                        FR_ALLOC_L(L->names, 2 * L->n_t) && FR_ALLOC_L(L->off, 2 * L->n_t)))
        s = FR_ERR_NOMEM;
    for (int i = 0, t = 0; s == FR_OK && i < n; i++) {
        L->tidx[i] = -1;
        if (!sel[i]) continue;
        char mod[64];
        module_of(&L->base, i, mod, sizeof mod);
        L->tidx[i] = t;
        L->pidx[t] = i;
        L->N[t] = L->base.values[i].shape[0];
        L->K[t] = L->base.values[i].shape[1];
        if (r < 1 || r > L->N[t] || r > L->K[t])
            s = fr_fail(FR_ERR_ARG, "--lora-rank %lld: expected 1..%lld for layer %s (%lld x %lld)", (long long)r,
                        (long long)(L->N[t] < L->K[t] ? L->N[t] : L->K[t]), mod, (long long)L->N[t], (long long)L->K[t]);
        if (strlen(mod) + sizeof ".lora_A.weight" > sizeof L->names[0])
            s = fr_fail(FR_ERR_ARG, "lora: module name %s longer than %zu characters", mod, sizeof L->names[0] - sizeof ".lora_A.weight");
        else {
            snprintf(L->names[2 * t], sizeof L->names[0], "%.33s.lora_A.weight", mod);
            snprintf(L->names[2 * t + 1], sizeof L->names[0], "%.33s.lora_B.weight", mod);
        }
        L->off[2 * t] = L->arena_n;
        L->arena_n += fr_arena_slot(r * L->K[t]);
        L->off[2 * t + 1] = L->arena_n;
        L->arena_n += fr_arena_slot(L->N[t] * r);
        t++;
    }
    free(sel);
    int a0;
    if (s == FR_OK) s = fr_lora_adapter(L, "default", &a0);
    if (s == FR_OK) s = init_default(L, seed);
    if (s != FR_OK) fr_lora_free(L);
    return s;
}

fr_status fr_lora_adapter(fr_lora *L, const char *name, int *idx)
{
    for (int a = 0; a < L->n_ad; a++)
        if (strcmp(L->ad_names[a], name) == 0) return *idx = a, FR_OK;
    if (L->n_ad == FR_LORA_MAX_ADAPTERS) return fr_fail(FR_ERR_ARG, "lora: more than %d adapters", FR_LORA_MAX_ADAPTERS);
    if (strlen(name) >= sizeof L->ad_names[0]) return fr_fail(FR_ERR_ARG, "lora: adapter name '%s' too long", name);
    if (!(L->arena[L->n_ad] = fr_dev_floats(L->base.be, L->arena_n))) /* zero-filled */
        return fr_fail(FR_ERR_NOMEM, "lora: cannot allocate adapter '%s'", name);
    snprintf(L->ad_names[L->n_ad], sizeof L->ad_names[0], "%s", name);
    *idx = L->n_ad++;
    return FR_OK;
}

fr_status fr_lora_copy(fr_lora *L, int dst, int src)
{
    return fr_d2d(L->base.be, L->arena[dst], L->arena[src], (size_t)L->arena_n * sizeof(float));
}

fr_status fr_lora_view(fr_model *v, fr_lora *L, int adapter, int trainable)
{
    memset(v, 0, sizeof *v);
    const fr_model *b = &L->base;
    v->cfg = b->cfg;
    v->be = b->be;
    v->head_tab = b->head_tab;
    v->w = b->values;
    v->lora = L;
    v->adapter = adapter;
    if (adapter < 0) return FR_OK; /* the base: no parameters of its own */
    if (adapter >= L->n_ad) return fr_fail(FR_ERR_ARG, "lora: no adapter %d", adapter);
    const int n = 2 * L->n_t;
    v->n_params = n;
    v->arena_values = L->arena[adapter];
    int ok = FR_ALLOC_L(v->params, n) && FR_ALLOC_L(v->values, n) && FR_ALLOC_L(v->names, n);
    if (ok && trainable) ok = FR_ALLOC_L(v->grads, n) && (v->arena_grads = fr_dev_floats(v->be, L->arena_n)) != NULL;
    if (!ok) {
        fr_model_free(v);
        return fr_fail(FR_ERR_NOMEM, "lora: cannot allocate a view of adapter '%s'", L->ad_names[adapter]);
    }
    for (int i = 0; i < n; i++) {
        const int t = i / 2;
        int64_t shape[2] = {i % 2 ? L->N[t] : L->r, i % 2 ? L->r : L->K[t]};
        memcpy(v->names[i], L->names[i], sizeof v->names[i]);
        v->values[i] = fr_tensor_f32(L->arena[adapter] + L->off[i], 2, shape);
        v->values[i].device = b->values[0].device;
        v->params[i].name = v->names[i];
        v->params[i].value = &v->values[i];
        if (trainable) {
            v->grads[i] = fr_tensor_f32(v->arena_grads + L->off[i], 2, shape);
            v->grads[i].device = v->values[i].device;
            v->params[i].grad = &v->grads[i];
        }
    }
    return FR_OK;
}

int fr_lora_layer(const fr_model *m, int i, fr_lora_ad *ad)
{
    const fr_lora *L = m->lora;
    if (!L || m->adapter < 0 || L->tidx[i] < 0) return 0;
    const int t = L->tidx[i];
    const float *arena = L->arena[m->adapter];
    ad->r = L->r;
    ad->scale = L->scale;
    ad->a = arena + L->off[2 * t];
    ad->b = arena + L->off[2 * t + 1];
    ad->ga = m->grads ? (float *)m->grads[2 * t].data : NULL;
    ad->gb = m->grads ? (float *)m->grads[2 * t + 1].data : NULL;
    return 1;
}

fr_status fr_lora_targets_string(const fr_lora *L, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int t = 0; t < L->n_t; t++) {
        const char *nm = L->names[2 * t];
        int l = (int)(strlen(nm) - strlen(".lora_A.weight"));
        int w = snprintf(buf + used, n - used, "%s%.*s", t ? "," : "", l, nm);
        if (w < 0 || (size_t)w >= n - used) return fr_fail(FR_ERR_ARG, "lora: the target list exceeds %zu characters", n);
        used += (size_t)w;
    }
    return FR_OK;
}

fr_status fr_lora_save(const fr_lora *L, int adapter, const char *base_digest, const char *path)
{
    fr_model v;
    FR_TRY(fr_lora_view(&v, (fr_lora *)L, adapter, 0));
    fr_st_file f;
    fr_st_init(&f);
    f.digests = 1;
    char buf[FR_LORA_TARGETS_MAX * 4], key[128];
    snprintf(buf, sizeof buf, "%lld", (long long)L->r);
    fr_status s = fr_st_set_meta(&f, "lora.rank", buf);
    snprintf(buf, sizeof buf, "%.17g", L->alpha);
    if (s == FR_OK) s = fr_st_set_meta(&f, "lora.alpha", buf);
    if (s == FR_OK) s = fr_lora_targets_string(L, buf, sizeof buf);
    if (s == FR_OK) s = fr_st_set_meta(&f, "lora.targets", buf);
    if (s == FR_OK) s = fr_st_set_meta(&f, "lora.adapter", L->ad_names[adapter]);
    if (s == FR_OK && base_digest) s = fr_st_set_meta(&f, "lora.base_digest", base_digest);
    if (s == FR_OK) s = fr_model_config_to_meta(&L->base.cfg, &f);
    for (int i = 0; i < v.n_params && s == FR_OK; i++) {
        snprintf(key, sizeof key, "%s%s", FR_LORA_PEFT_PREFIX, v.params[i].name);
        s = fr_dev_tensor_to_st(v.be, &f, key, &v.values[i]);
    }
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    fr_model_free(&v);
    return s;
}

static fr_status expect_meta(const fr_st_file *f, const char *path, const char *key, const char *want)
{
    const char *got = fr_st_get_meta(f, key);
    if (!got || strcmp(got, want) != 0)
        return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s' is '%s', this base's adapters have '%s'", path, key,
                       got ? got : "(absent)", want);
    return FR_OK;
}

fr_status fr_lora_load(fr_lora *L, int adapter, const char *path)
{
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path));
    fr_model v;
    fr_status s = fr_lora_view(&v, L, adapter, 0);
    if (s != FR_OK) {
        fr_st_free(&f);
        return s;
    }
    char buf[FR_LORA_TARGETS_MAX * 4], key[128];
    snprintf(buf, sizeof buf, "%lld", (long long)L->r);
    s = expect_meta(&f, path, "lora.rank", buf);
    snprintf(buf, sizeof buf, "%.17g", L->alpha);
    if (s == FR_OK) s = expect_meta(&f, path, "lora.alpha", buf);
    if (s == FR_OK) s = fr_lora_targets_string(L, buf, sizeof buf);
    if (s == FR_OK) s = expect_meta(&f, path, "lora.targets", buf);
    for (int i = 0; i < v.n_params && s == FR_OK; i++) {
        snprintf(key, sizeof key, "%s%s", FR_LORA_PEFT_PREFIX, v.params[i].name);
        s = fr_dev_tensor_from_st(v.be, &f, key, &v.values[i]);
    }
    fr_model_free(&v);
    fr_st_free(&f);
    return s;
}

fr_status fr_lora_from_file(fr_lora *L, fr_model *base, const char *path)
{
    memset(L, 0, sizeof *L);
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path));
    const char *rk = fr_st_get_meta(&f, "lora.rank"), *al = fr_st_get_meta(&f, "lora.alpha");
    const char *tg = fr_st_get_meta(&f, "lora.targets");
    char *e1 = NULL, *e2 = NULL;
    long long r = rk ? strtoll(rk, &e1, 10) : 0;
    double alpha = al ? strtod(al, &e2) : 0.0;
    char targets[FR_LORA_TARGETS_MAX];
    fr_status s = FR_OK;
    if (!rk || !al || !tg || *e1 || *e2 || r < 1)
        s = fr_fail(FR_ERR_FORMAT, "%s: not a flowrl adapter file (metadata lora.rank, lora.alpha, lora.targets: %s, %s, %s)",
                    path, rk ? rk : "absent", al ? al : "absent", tg ? tg : "absent");
    else if (snprintf(targets, sizeof targets, "%s", tg) >= (int)sizeof targets)
        s = fr_fail(FR_ERR_FORMAT, "%s: metadata lora.targets longer than %d characters", path, FR_LORA_TARGETS_MAX - 1);
    fr_st_free(&f);
    FR_TRY(s);
    FR_TRY(fr_lora_new(L, base, r, alpha, targets, 0));
    s = fr_lora_load(L, 0, path);
    if (s != FR_OK) fr_lora_free(L);
    return s;
}
