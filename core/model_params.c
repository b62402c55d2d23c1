/* The model's named parameters: layout, allocation and init (flowrl/model.h). */
#include "flowrl/lora.h"
#include "flowrl/model.h"
#include "flowrl/philox.h"
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef fr_param_spec param_spec;

static int make_specs(const fr_model_config *c, param_spec *s)
{
    if (c->arch == FR_ARCH_DIT) return fr_dit_make_specs(c, s);
    int n = 0;
#define P2(nm, r, k, how, fan)                                                             \
    do {                                                                                   \
        snprintf(s[n].name, sizeof s[n].name, "%s", nm);                                   \
        s[n].ndim = 2, s[n].shape[0] = (r), s[n].shape[1] = (k), s[n].init = (how);        \
        s[n].fan_in = (fan), n++;                                                          \
    } while (0)
#define P1(nm, r, how)                                                                     \
    do {                                                                                   \
        snprintf(s[n].name, sizeof s[n].name, "%s", nm);                                   \
        s[n].ndim = 1, s[n].shape[0] = (r), s[n].shape[1] = 1, s[n].init = (how);          \
        s[n].fan_in = 0, n++;                                                              \
    } while (0)
    P2("in.weight", c->H, c->D, INIT_LINEAR, c->D);
    P1("in.bias", c->H, INIT_ZERO);
    P2("time.fc1.weight", c->H, c->E, INIT_LINEAR, c->E);
    P1("time.fc1.bias", c->H, INIT_ZERO);
    P2("time.fc2.weight", c->H, c->H, INIT_LINEAR, c->H);
    P1("time.fc2.bias", c->H, INIT_ZERO);
    P2("cond.weight", c->n_cond + 1, c->H, INIT_NORMAL, 0);
    for (int64_t k = 0; k < c->n_blocks; k++) {
        char nm[48];
        snprintf(nm, sizeof nm, "blocks.%lld.ln.weight", (long long)k);
        P1(nm, c->H, INIT_ONE);
        snprintf(nm, sizeof nm, "blocks.%lld.ln.bias", (long long)k);
        P1(nm, c->H, INIT_ZERO);
        snprintf(nm, sizeof nm, "blocks.%lld.fc1.weight", (long long)k);
        P2(nm, c->F, c->H, INIT_LINEAR, c->H);
        snprintf(nm, sizeof nm, "blocks.%lld.fc1.bias", (long long)k);
        P1(nm, c->F, INIT_ZERO);
        snprintf(nm, sizeof nm, "blocks.%lld.fc2.weight", (long long)k);
        P2(nm, c->H, c->F, INIT_ZERO, c->F);
        snprintf(nm, sizeof nm, "blocks.%lld.fc2.bias", (long long)k);
        P1(nm, c->H, INIT_ZERO);
    }
    P1("norm.weight", c->H, INIT_ONE);
    P1("norm.bias", c->H, INIT_ZERO);
    P2("out.weight", fr_model_out_dim(c), c->H, INIT_ZERO, c->H);
    P1("out.bias", fr_model_out_dim(c), INIT_ZERO);
#undef P1
#undef P2
    return n;
}

static int n_specs(const fr_model_config *c)
{
    return c->arch == FR_ARCH_DIT ? fr_dit_n_specs(c) : (int)(FR_MP_BLOCK0 + 6 * c->n_blocks + 4);
}

fr_status fr_model_alloc(fr_model *m, fr_backend *be, const fr_model_config *cfg)
{
    memset(m, 0, sizeof *m);
    FR_TRY(fr_model_config_check(cfg));
    int n = n_specs(cfg);
    param_spec *s = fr_calloc((size_t)n, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    int got = make_specs(cfg, s);
    (void)got; /* == n by construction of n_specs */
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += fr_arena_slot(s[i].shape[0] * s[i].shape[1]);
    m->cfg = *cfg;
    m->be = be;
    m->adapter = -1;
    m->n_params = n;
    m->params = fr_calloc((size_t)n, sizeof *m->params);
    m->values = fr_calloc((size_t)n, sizeof *m->values);
    m->grads = fr_calloc((size_t)n, sizeof *m->grads);
    m->names = fr_calloc((size_t)n, sizeof *m->names);
    m->arena_values = fr_dev_floats(be, total); /* zero-filled */
    m->arena_grads = fr_dev_floats(be, total);
    if (!m->params || !m->values || !m->grads || !m->names || !m->arena_values ||
        !m->arena_grads) {
        free(s);
        fr_model_free(m);
        return fr_fail(FR_ERR_NOMEM, "model: cannot allocate %lld parameters", (long long)total);
    }
    if (fr_model_eps_head(cfg)) { /* the head's (2, n_train) table, made once on the host */
        float *tab = fr_malloc((size_t)(2 * cfg->n_train) * sizeof *tab);
        m->head_tab = fr_dev_floats(be, 2 * cfg->n_train);
        fr_status st = tab && m->head_tab ? fr_model_eps_head_table(cfg, tab) : FR_ERR_NOMEM;
        if (st == FR_OK) st = fr_h2d(be, m->head_tab, tab, (size_t)(2 * cfg->n_train) * sizeof *tab);
        free(tab);
        if (st != FR_OK) {
            free(s);
            fr_model_free(m);
            return st;
        }
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        memcpy(m->names[i], s[i].name, sizeof m->names[i]);
        m->values[i] = fr_tensor_f32(m->arena_values + off, s[i].ndim, s[i].shape);
        m->grads[i] = fr_tensor_f32(m->arena_grads + off, s[i].ndim, s[i].shape);
        m->values[i].device = m->grads[i].device = be->device ? FR_DEVICE_CUDA : FR_DEVICE_CPU;
        m->params[i].name = m->names[i];
        m->params[i].value = &m->values[i];
        m->params[i].grad = &m->grads[i];
        off += fr_arena_slot(s[i].shape[0] * s[i].shape[1]);
    }
    m->w = m->values;
    free(s);
    return FR_OK;
}

/* The init of one parameter (model.h) into p (ne zeros, host memory). */
static void init_values(const param_spec *sp, int index, uint32_t seed, float *p, int64_t ne)
{
    switch (sp->init) {
    case INIT_ZERO: break;
    case INIT_ONE:
        for (int64_t j = 0; j < ne; j++) p[j] = 1.0f;
        break;
    case INIT_LINEAR: {
        /* torch.nn.Linear: kaiming_uniform_(a = sqrt(5)) = U(-1/sqrt(fan_in), +). */
        float bound = 1.0f / sqrtf((float)sp->fan_in);
        fr_rng_fill_uniform(p, ne, seed, FR_RNG_INIT, (uint32_t)index, 0, 0);
        for (int64_t j = 0; j < ne; j++) p[j] = (2.0f * p[j] - 1.0f) * bound;
        break;
    }
    case INIT_NORMAL:
        fr_rng_fill_normal(p, ne, seed, FR_RNG_INIT, (uint32_t)index, 0, 0);
        break;
    case INIT_NORMAL_SMALL: /* N(0, 0.02²): ViT's / DiT's learned position embeddings */
        fr_rng_fill_normal(p, ne, seed, FR_RNG_INIT, (uint32_t)index, 0, 0);
        for (int64_t j = 0; j < ne; j++) p[j] = p[j] * 0.02f;
        break;
    }
}

fr_status fr_model_init(fr_model *m, fr_backend *be, const fr_model_config *cfg, uint32_t seed)
{
    FR_TRY(fr_model_alloc(m, be, cfg));
    const int n = m->n_params;
    param_spec *s = fr_calloc((size_t)n, sizeof *s);
    /* the whole arena on the host (its padding zero), then one copy across */
    const int64_t total = fr_model_arena_floats(m);
    float *host = fr_calloc((size_t)total, sizeof(float));
    fr_status st = s && host ? FR_OK : FR_ERR_NOMEM;
    if (st == FR_OK) {
        make_specs(cfg, s);
        for (int i = 0; i < n; i++)
            init_values(&s[i], i, seed, host + ((float *)m->values[i].data - m->arena_values),
                        fr_tensor_numel(&m->values[i]));
        st = fr_h2d(be, m->arena_values, host, (size_t)total * sizeof(float));
    }
    free(s);
    free(host);
    if (st != FR_OK) fr_model_free(m);
    return st;
}

void fr_model_free(fr_model *m)
{
    free(m->params);
    free(m->values);
    free(m->grads);
    free(m->names);
    if (m->be) { /* a LoRA view borrows its values (the adapter's arena) and the head table */
        if (!m->lora) fr_dev_free(m->be, m->arena_values);
        fr_dev_free(m->be, m->arena_grads);
        if (!m->lora) fr_dev_free(m->be, m->head_tab);
    }
    memset(m, 0, sizeof *m);
}

int64_t fr_model_arena_floats(const fr_model *m)
{
    int64_t total = 0;
    for (int i = 0; i < m->n_params; i++) total += fr_arena_slot(fr_tensor_numel(&m->values[i]));
    return total;
}

void fr_model_freeze(const fr_model *m, fr_backend *be, int frozen)
{
    const fr_model *owner = m->lora ? &m->lora->base : m;
    if (owner->arena_values)
        fr_freeze(be, owner->arena_values, (size_t)fr_model_arena_floats(owner) * sizeof(float), frozen);
}

fr_status fr_model_copy_values(fr_model *dst, const fr_model *src)
{
    int same = dst->n_params == src->n_params && dst->be == src->be;
    for (int i = 0; same && i < src->n_params; i++) same = fr_tensor_same_shape(&dst->values[i], &src->values[i]);
    if (!same) return fr_fail(FR_ERR_ARG, "fr_model_copy_values: the models differ in shapes or backend");
    return fr_d2d(dst->be, dst->arena_values, src->arena_values, (size_t)fr_model_arena_floats(src) * sizeof(float));
}

fr_param *fr_model_param(fr_model *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

void fr_model_zero_grad(const fr_model *m, fr_backend *be)
{
    fr_params_zero_grad(be, m->params, m->n_params);
}

int64_t fr_model_num_params(const fr_model *m) { return fr_params_numel(m->params, m->n_params); }
