/* A model's split update gathered whole (core/model_dist.h). */
#include "core/model_dist.h"

#include <stdlib.h>

#include "flowrl/dist.h"

/* t (rows, row_floats) in backend memory, rows fr_dist_block(rows, 1) computed by each rank */
static fr_status whole_rows(fr_backend *be, fr_status s, const fr_tensor *t, int64_t rows, int64_t row_floats)
{
    const size_t bytes = (size_t)(rows * row_floats) * sizeof(float);
    float *h = s == FR_OK ? fr_malloc(bytes ? bytes : 1) : NULL;
    if (s == FR_OK && !h) s = FR_ERR_NOMEM;
    if (s == FR_OK) s = fr_d2h(be, h, t->data, bytes);
    s = fr_dist_gather_rows(s, h, 1, rows, (size_t)row_floats * sizeof *h, 1);
    if (s == FR_OK) s = fr_h2d(be, t->data, h, bytes);
    free(h);
    return s;
}

fr_status fr_model_dist_whole_grads(fr_status s, fr_model *m)
{
    for (int i = 0; i < m->n_params; i++)
        if (fr_model_dw_split(m, i)) {
            const fr_tensor *g = &m->grads[i];
            s = whole_rows(m->be, s, g, g->shape[0], fr_tensor_numel(g) / g->shape[0]);
        }
    return s;
}

fr_status fr_model_dist_whole_params(fr_status s, fr_model *m, fr_adamw_state *adam)
{
    for (int i = 0; i < m->n_params; i++) {
        const int64_t n = fr_tensor_numel(&m->values[i]);
        s = whole_rows(m->be, s, &m->values[i], n, 1);
        s = whole_rows(m->be, s, &adam->m[i], n, 1);
        s = whole_rows(m->be, s, &adam->v[i], n, 1);
    }
    return s;
}
