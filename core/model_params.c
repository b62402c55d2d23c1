/* The model's named parameters: layout, allocation and init (flowrl/model.h). */
#include "flowrl/model.h"
#include "flowrl/philox.h"
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each tensor starts on a 64-byte boundary of the arenas (16 floats), for SIMD kernels. */
#define ALIGN_FLOATS 16

typedef struct {
    char name[48];
    int ndim;
    int64_t shape[2];
    enum { INIT_ZERO, INIT_ONE, INIT_LINEAR, INIT_NORMAL } init;
    int64_t fan_in;
} param_spec;

static int make_specs(const fr_model_config *c, param_spec *s)
{
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
    P2("out.weight", c->D, c->H, INIT_ZERO, c->H);
    P1("out.bias", c->D, INIT_ZERO);
#undef P1
#undef P2
    return n;
}

static int n_specs(const fr_model_config *c) { return (int)(FR_MP_BLOCK0 + 6 * c->n_blocks + 4); }

fr_status fr_model_alloc(fr_model *m, const fr_model_config *cfg)
{
    memset(m, 0, sizeof *m);
    FR_TRY(fr_model_config_check(cfg));
    int n = n_specs(cfg);
    param_spec *s = fr_calloc((size_t)n, sizeof *s);
    if (!s) return FR_ERR_NOMEM;
    int got = make_specs(cfg, s);
    (void)got; /* == n by construction of n_specs */
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        int64_t ne = s[i].shape[0] * s[i].shape[1];
        total += (ne + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    }
    m->cfg = *cfg;
    m->n_params = n;
    m->params = fr_calloc((size_t)n, sizeof *m->params);
    m->values = fr_calloc((size_t)n, sizeof *m->values);
    m->grads = fr_calloc((size_t)n, sizeof *m->grads);
    m->names = fr_calloc((size_t)n, sizeof *m->names);
    size_t bytes = (size_t)total * sizeof(float);
    m->arena_values = aligned_alloc(64, bytes);
    m->arena_grads = aligned_alloc(64, bytes);
    if (!m->params || !m->values || !m->grads || !m->names || !m->arena_values ||
        !m->arena_grads) {
        free(s);
        fr_model_free(m);
        return fr_fail(FR_ERR_NOMEM, "model: cannot allocate %lld parameters", (long long)total);
    }
    memset(m->arena_values, 0, bytes);
    memset(m->arena_grads, 0, bytes);
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        memcpy(m->names[i], s[i].name, sizeof m->names[i]);
        m->values[i] = fr_tensor_f32(m->arena_values + off, s[i].ndim, s[i].shape);
        m->grads[i] = fr_tensor_f32(m->arena_grads + off, s[i].ndim, s[i].shape);
        m->params[i].name = m->names[i];
        m->params[i].value = &m->values[i];
        m->params[i].grad = &m->grads[i];
        int64_t ne = s[i].shape[0] * s[i].shape[1];
        off += (ne + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    }
    free(s);
    return FR_OK;
}

fr_status fr_model_init(fr_model *m, const fr_model_config *cfg, uint32_t seed)
{
    FR_TRY(fr_model_alloc(m, cfg));
    int n = m->n_params;
    param_spec *s = fr_calloc((size_t)n, sizeof *s);
    if (!s) {
        fr_model_free(m);
        return FR_ERR_NOMEM;
    }
    make_specs(cfg, s);
    for (int i = 0; i < n; i++) {
        float *p = (float *)m->values[i].data;
        int64_t ne = fr_tensor_numel(&m->values[i]);
        switch (s[i].init) {
        case INIT_ZERO: break; /* the arena is zeroed */
        case INIT_ONE:
            for (int64_t j = 0; j < ne; j++) p[j] = 1.0f;
            break;
        case INIT_LINEAR: {
            /* torch.nn.Linear: kaiming_uniform_(a = sqrt(5)) = U(-1/sqrt(fan_in), +). */
            float bound = 1.0f / sqrtf((float)s[i].fan_in);
            fr_rng_fill_uniform(p, ne, seed, FR_RNG_INIT, (uint32_t)i, 0, 0);
            for (int64_t j = 0; j < ne; j++) p[j] = (2.0f * p[j] - 1.0f) * bound;
            break;
        }
        case INIT_NORMAL:
            fr_rng_fill_normal(p, ne, seed, FR_RNG_INIT, (uint32_t)i, 0, 0);
            break;
        }
    }
    free(s);
    return FR_OK;
}

void fr_model_free(fr_model *m)
{
    free(m->params);
    free(m->values);
    free(m->grads);
    free(m->names);
    free(m->arena_values);
    free(m->arena_grads);
    memset(m, 0, sizeof *m);
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
