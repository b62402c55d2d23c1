/* GMFlow's image network (flowrl/gmflow.h; docs/algorithms/gmflow.md §7): the shared
 * conditional model of flowrl/model.h (a shapes preset, the velocity head) with its last layer
 * widened to the GM row (out_D = K·D + K + 1, flowrl/gm.h), the sample's prompt as its condition
 * (flowrl/cond.h). Everything through the op table; the rows come back to the host (one fr_d2h)
 * for the NLL and the sampler's draws, and dL/drow goes back with one fr_h2d, as for the 2-D
 * network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/cond.h"
#include "flowrl/digest.h"
#include "flowrl/gmflow.h"
#include "gmflow_internal.h"

struct fr_gmflow_image {
    fr_model m;
    fr_model_ws ws;        /* keep: the training's backward follows the forward */
    const fr_task *task;
    float *dx, *dt, *drows; /* backend (cap, D), (cap,), (cap, W) */
    int32_t *dc;           /* backend (cap, n_slots) */
    int32_t *c_h;          /* host (cap, n_slots) */
    int *pid;              /* host (cap,): prompt 0 where the caller gives none */
    char (*names)[64];     /* "gmflow.net.<name>" (n_params) */
};

static void set_params(fr_gmflow_net *g)
{
    struct fr_gmflow_image *im = g->img;
    g->params = im->m.params, g->n_params = im->m.n_params;
    for (int p = 0; p < im->m.n_params; p++) snprintf(im->names[p], sizeof im->names[p], "gmflow.net.%s", im->m.names[p]);
}

fr_status fr_gmflow_net_new_image_cfg(fr_gmflow_net *g, fr_backend *be, int K, const fr_model_config *cfg,
                                      const fr_task *task, int64_t cap)
{
    memset(g, 0, sizeof *g);
    if (task->C == 0 || cfg->D != task->D || K < 1 || K > 64 || cap < 1)
        return fr_fail(FR_ERR_ARG, "gmflow: the image network needs an image task of D %lld (task %s, D %d), K in "
                       "[1, 64] (K %d) and rows >= 1", (long long)cfg->D, task->name, task->D, K);
    if (cfg->arch != FR_ARCH_MLP || cfg->head != FR_HEAD_VELOCITY || cfg->out_D != fr_gm_width(K, task->D))
        return fr_fail(FR_ERR_ARG, "gmflow: the image network is the MLP model with the velocity head of out_D %lld "
                       "(K %d): got arch %s, head %s, out_D %lld", (long long)fr_gm_width(K, task->D), K,
                       fr_arch_name(cfg->arch), fr_head_name(cfg->head), (long long)cfg->out_D);
    struct fr_gmflow_image *im = calloc(1, sizeof *im);
    if (!im) return FR_ERR_NOMEM;
    g->img = im;
    g->cap = cap;
    g->a.K = K, g->a.D = task->D, g->a.E = (int)cfg->E, g->a.hidden = (int)cfg->H, g->a.layers = (int)cfg->n_blocks;
    snprintf(g->a.preset, sizeof g->a.preset, "%s", cfg->preset);
    im->task = task;
    const int64_t W = cfg->out_D, S = cfg->n_slots;
    fr_status s = fr_model_alloc(&im->m, be, cfg);
    if (s == FR_OK) s = fr_model_ws_alloc(&im->ws, &im->m, cap, 1);
    if (s == FR_OK) {
        im->dx = fr_dev_floats(be, cap * task->D), im->dt = fr_dev_floats(be, cap);
        im->drows = fr_dev_floats(be, cap * W), im->dc = fr_dev_i32(be, cap * S);
        im->c_h = malloc(sizeof(int32_t) * (size_t)(cap * S)), im->pid = calloc((size_t)cap, sizeof(int));
        im->names = malloc(sizeof *im->names * (size_t)im->m.n_params);
        if (!im->dx || !im->dt || !im->drows || !im->dc || !im->c_h || !im->pid || !im->names) s = FR_ERR_NOMEM;
    }
    if (s == FR_OK) set_params(g);
    if (s != FR_OK) fr_gmflow_image_free(g);
    return s;
}

fr_status fr_gmflow_net_new_image(fr_gmflow_net *g, fr_backend *be, int K, const char *preset, const fr_task *task,
                                  int64_t cap)
{
    memset(g, 0, sizeof *g);
    fr_model_config cfg;
    int64_t n_cond, n_slots;
    fr_cond_dims(task, &n_cond, &n_slots);
    FR_TRY(fr_model_preset(preset, task->D, n_cond, &cfg));
    cfg.n_slots = n_slots;
    cfg.head = FR_HEAD_VELOCITY, cfg.sigma_min = 0.0f; /* the row is the prediction itself */
    cfg.out_D = fr_gm_width(K, task->D);
    return fr_gmflow_net_new_image_cfg(g, be, K, &cfg, task, cap);
}

void fr_gmflow_image_free(fr_gmflow_net *g)
{
    struct fr_gmflow_image *im = g->img;
    if (!im) return;
    fr_backend *be = im->m.be;
    fr_model_ws_free(&im->ws);
    if (be) {
        fr_dev_free(be, im->dx), fr_dev_free(be, im->dt), fr_dev_free(be, im->drows), fr_dev_free(be, im->dc);
        fr_model_free(&im->m);
    }
    free(im->c_h), free(im->pid), free(im->names);
    free(im);
    g->img = NULL;
    g->params = NULL, g->n_params = 0;
}

fr_status fr_gmflow_image_init(fr_gmflow_net *g, uint32_t seed)
{
    struct fr_gmflow_image *im = g->img;
    fr_backend *be = im->m.be;
    const fr_model_config cfg = im->m.cfg;
    fr_model fresh;
    FR_TRY(fr_model_init(&fresh, be, &cfg, seed));
    fr_status s = fr_model_copy_values(&im->m, &fresh);
    fr_model_free(&fresh);
    return s;
}

fr_status fr_gmflow_image_forward(fr_gmflow_net *g, int64_t R, const float *t, const float *x, const int *prompts,
                                  float *rows)
{
    struct fr_gmflow_image *im = g->img;
    fr_backend *be = im->m.be;
    const int64_t D = g->a.D, W = im->m.cfg.out_D;
    if (R < 1 || R > g->cap) return fr_fail(FR_ERR_ARG, "gmflow: %lld rows, the network holds 1..%lld", (long long)R, (long long)g->cap);
    FR_TRY(fr_cond_ids(im->task, R, prompts ? prompts : im->pid, im->c_h));
    FR_TRY(fr_h2d(be, im->dx, x, sizeof(float) * (size_t)(R * D)));
    FR_TRY(fr_h2d(be, im->dt, t, sizeof(float) * (size_t)R));
    FR_TRY(fr_h2d(be, im->dc, im->c_h, sizeof(int32_t) * (size_t)(R * im->m.cfg.n_slots)));
    FR_TRY(fr_model_forward(&im->m, be, &im->ws, R, im->dx, im->dt, im->dc, im->drows));
    return fr_d2h(be, rows, im->drows, sizeof(float) * (size_t)(R * W));
}

fr_status fr_gmflow_net_backward(fr_gmflow_net *g, int64_t R, const float *dout)
{
    if (!g->img) {
        FR_TRY(fr_mlp_zero_grad(&g->net));
        return fr_mlp_backward_host(&g->net, R, dout);
    }
    struct fr_gmflow_image *im = g->img;
    fr_backend *be = im->m.be;
    if (R != im->ws.B) return fr_fail(FR_ERR_ARG, "gmflow: backward of %lld rows after a forward of %lld", (long long)R, (long long)im->ws.B);
    fr_model_zero_grad(&im->m, be);
    FR_TRY(fr_h2d(be, im->drows, dout, sizeof(float) * (size_t)(R * im->m.cfg.out_D)));
    return fr_model_backward(&im->m, be, &im->ws, im->drows, NULL);
}

const char *fr_gmflow_net_param_name(const fr_gmflow_net *g, int p)
{
    return g->img ? g->img->names[p] : g->net.names[p];
}

fr_status fr_gmflow_net_digest(fr_gmflow_net *g, uint64_t *digest)
{
    if (!g->img) return fr_mlp_digest(&g->net, digest);
    const fr_model *m = &g->img->m;
    const int64_t n = fr_model_arena_floats(m);
    float *h = malloc(sizeof(float) * (size_t)n);
    if (!h) return FR_ERR_NOMEM;
    fr_status s = fr_d2h(m->be, h, m->arena_values, sizeof(float) * (size_t)n);
    if (s == FR_OK) *digest = fr_digest_bytes(h, sizeof(float) * (size_t)n);
    free(h);
    return s;
}

fr_status fr_gmflow_image_save(fr_gmflow_net *g, fr_st_file *f)
{
    FR_TRY(fr_st_set_meta(f, "gmflow.preset", g->a.preset));
    FR_TRY(fr_model_config_to_meta(&g->img->m.cfg, f));
    return fr_model_values_to_st(&g->img->m, f, "gmflow.net.");
}

fr_status fr_gmflow_image_load(fr_gmflow_net *g, const fr_st_file *f)
{
    return fr_model_values_from_st(&g->img->m, f, "gmflow.net.");
}
