/* A model's split update gathered whole (core/model_dist.h). */
#include "core/model_dist.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "flowrl/dist.h"
#if FR_HAVE_CUDA
#include "flowrl/cuda.h"
#include "flowrl/progress.h"
#endif

/* buf (outer, rows, row_floats) in backend memory, rows fr_dist_block(rows, 1) of each slice
 * computed by each rank */
static fr_status whole_rows(fr_backend *be, fr_status s, float *buf, int64_t outer, int64_t rows, int64_t row_floats)
{
#if FR_HAVE_CUDA
    if (fr_cuda_nccl_joined()) { /* GPU to GPU (FLOWRL_NCCL=1), after the same agreement */
        FR_TRY(fr_dist_agree(s));
        for (int64_t o = 0; s == FR_OK && o < outer; o++) {
            uint64_t got = 0;
            const double t0 = fr_now_seconds();
            s = fr_cuda_nccl_gather_rows(buf + o * rows * row_floats, rows, row_floats, &got);
            fr_dist_count(got, fr_now_seconds() - t0);
        }
        return s;
    }
#else
    (void)be;
#endif
    const size_t bytes = (size_t)(outer * rows * row_floats) * sizeof(float);
    float *h = s == FR_OK ? fr_malloc(bytes ? bytes : 1) : NULL;
    if (s == FR_OK && !h) s = FR_ERR_NOMEM;
    if (s == FR_OK) s = fr_d2h(be, h, buf, bytes);
    s = fr_dist_gather_rows(s, h, outer, rows, (size_t)row_floats * sizeof *h, 1);
    if (s == FR_OK) s = fr_h2d(be, buf, h, bytes);
    free(h);
    return s;
}

/* what the two gathers below received, for the metrics */
static uint64_t g_bytes = 0;

uint64_t fr_model_dist_recv_bytes(void) { return g_bytes; }

fr_status fr_model_dist_whole_grads(fr_status s, fr_model *m)
{
    const uint64_t b0 = fr_dist_recv_bytes();
    for (int i = 0; i < m->n_params; i++)
        if (fr_model_dw_split(m, i)) {
            const fr_tensor *g = &m->grads[i];
            s = whole_rows(m->be, s, g->data, 1, g->shape[0], fr_tensor_numel(g) / g->shape[0]);
        }
    g_bytes += fr_dist_recv_bytes() - b0;
    return s;
}

fr_status fr_model_dist_whole_params(fr_status s, fr_model *m, fr_adamw_state *adam)
{
    const uint64_t b0 = fr_dist_recv_bytes();
    for (int i = 0; i < m->n_params; i++) {
        const int64_t n = fr_tensor_numel(&m->values[i]);
        s = whole_rows(m->be, s, (&m->values[i])->data, 1, n, 1);
        s = whole_rows(m->be, s, (&adam->m[i])->data, 1, n, 1);
        s = whole_rows(m->be, s, (&adam->v[i])->data, 1, n, 1);
    }
    g_bytes += fr_dist_recv_bytes() - b0;
    return s;
}

fr_status fr_model_dist_rows(fr_backend *be, fr_status s, float *buf, int64_t outer, int64_t rows, int64_t row_floats)
{
    const uint64_t b0 = fr_dist_recv_bytes();
    s = whole_rows(be, s, buf, outer, rows, row_floats);
    g_bytes += fr_dist_recv_bytes() - b0;
    return s;
}

fr_status fr_model_dist_transport(fr_status s, const fr_backend *be)
{
    const char *v = getenv("FLOWRL_NCCL");
    if (fr_dist_size() == 1 || !v || strcmp(v, "1") != 0) return s;
#if FR_HAVE_CUDA
    if (s == FR_OK && strcmp(be->name, "cuda") != 0)
        s = fr_fail(FR_ERR_ARG, "FLOWRL_NCCL=1 gathers between GPUs: it needs --backend cuda (this run: %s)", be->name);
    if (s == FR_OK && !fr_cuda_nccl_built())
        s = fr_fail(FR_ERR_UNSUPPORTED, "FLOWRL_NCCL=1: this flowrl was built without NCCL (./configure found no nccl.h)");
    char id[FR_CUDA_NCCL_ID_BYTES];
    memset(id, 0, sizeof id);
    if (s == FR_OK && fr_dist_rank() == 0) s = fr_cuda_nccl_unique_id(id);
    s = fr_dist_bcast(s, id, sizeof id, 0);
    if (s == FR_OK) s = fr_cuda_nccl_join(fr_dist_rank(), fr_dist_size(), id);
    return fr_dist_agree(s);
#else
    (void)be;
    return fr_dist_agree(s == FR_OK ? fr_fail(FR_ERR_UNSUPPORTED, "FLOWRL_NCCL=1: this flowrl was built without CUDA") : s);
#endif
}

void fr_model_dist_transport_end(void)
{
#if FR_HAVE_CUDA
    fr_cuda_nccl_leave();
#endif
}
