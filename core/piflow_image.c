/* pi-Flow's student on an image task (flowrl/piflow.h; docs/algorithms/piflow.md §7): GMFlow's
 * image network (flowrl/gmflow.h, core/gmflow_image.c: the shared model with its velocity head
 * widened to the GM row) at model time 1000 (σ_s = 1), conditioned on the sample's prompt; and
 * the calls that make the 2-D MLP student and it one student for core/piflow_train.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/gm.h"
#include "piflow_internal.h"

fr_status fr_piflow_student_new_image(fr_piflow_student *st, fr_backend *be, int K, const char *preset,
                                      const fr_task *task, int64_t cap)
{
    memset(st, 0, sizeof *st);
    if (K < 1 || K > FR_PIFLOW_MAX_K || task->D > FR_PIFLOW_MAX_D || (int64_t)K * task->D > FR_PIFLOW_MAX_KD)
        return fr_fail(FR_ERR_ARG, "piflow student: K %d, task %s of D %d: expected K 1..%d, D <= %d, K·D <= %d", K,
                       task->name, task->D, FR_PIFLOW_MAX_K, FR_PIFLOW_MAX_D, FR_PIFLOW_MAX_KD);
    st->img = calloc(1, sizeof *st->img);
    if (!st->img) return FR_ERR_NOMEM;
    fr_status s = fr_gmflow_net_new_image(st->img, be, K, preset, task, cap);
    if (s != FR_OK) {
        free(st->img);
        st->img = NULL;
        return s;
    }
    st->K = K, st->D = task->D, st->H = st->img->a.hidden, st->n_hidden = st->img->a.layers, st->task = task;
    return FR_OK;
}

fr_status fr_piflow_student_new_image_st(fr_piflow_student *st, fr_backend *be, int K, const fr_st_file *f,
                                         const char *path, int64_t cap)
{
    memset(st, 0, sizeof *st);
    const char *tn = fr_st_get_meta(f, "piflow.task");
    const fr_task *task = NULL;
    fr_model_config mc;
    fr_status s = tn ? fr_task_get(tn, &task)
                     : fr_fail(FR_ERR_FORMAT, "%s: metadata 'piflow.task' is absent (an image student names its task)", path);
    if (s == FR_OK) s = fr_model_config_from_meta(f, &mc);
    if (s == FR_OK && !(st->img = calloc(1, sizeof *st->img))) s = FR_ERR_NOMEM;
    if (s == FR_OK) s = fr_gmflow_net_new_image_cfg(st->img, be, K, &mc, task, cap);
    if (s != FR_OK) {
        free(st->img);
        st->img = NULL;
        return s;
    }
    st->K = K, st->D = task->D, st->H = (int)mc.H, st->n_hidden = (int)mc.n_blocks, st->task = task;
    return FR_OK;
}

void fr_piflow_student_free_image(fr_piflow_student *st)
{
    fr_gmflow_net_free(st->img);
    free(st->img);
    st->img = NULL;
}

int fr_piflow_prompt(const fr_piflow_student *st, int64_t i)
{
    return st->img ? fr_task_prompt_in_turn(st->task, i) : 0;
}

fr_status fr_piflow_student_rows(fr_piflow_student *st, int64_t B, const float *x_s, int64_t first, float *rows)
{
    if (!st->img) return fr_mlp_forward_host(&st->net, B, x_s, rows);
    float *t = malloc(sizeof(float) * (size_t)B);
    int *pr = malloc(sizeof(int) * (size_t)B);
    fr_status s = t && pr ? FR_OK : FR_ERR_NOMEM;
    for (int64_t b = 0; s == FR_OK && b < B; b++) t[b] = 1000.0f, pr[b] = fr_piflow_prompt(st, first + b); /* σ_s = 1 */
    if (s == FR_OK) s = fr_gmflow_net_forward_c(st->img, B, t, x_s, pr, rows);
    free(t), free(pr);
    return s;
}

fr_status fr_piflow_student_backward(fr_piflow_student *st, int64_t B, const float *drow)
{
    if (st->img) return fr_gmflow_net_backward(st->img, B, drow);
    FR_TRY(fr_mlp_zero_grad(&st->net));
    return fr_mlp_backward_host(&st->net, B, drow);
}

fr_param *fr_piflow_student_params(fr_piflow_student *st, int *n)
{
    *n = st->img ? st->img->n_params : st->net.n_params;
    return st->img ? st->img->params : st->net.params;
}

const char *fr_piflow_student_name(const fr_piflow_student *st, int p)
{
    return st->img ? fr_gmflow_net_param_name(st->img, p) : st->net.names[p];
}

fr_status fr_piflow_student_digest(fr_piflow_student *st, uint64_t *digest)
{
    return st->img ? fr_gmflow_net_digest(st->img, digest) : fr_mlp_digest(&st->net, digest);
}

fr_status fr_piflow_student_save_net(fr_piflow_student *st, fr_st_file *f)
{
    if (!st->img) return fr_mlp_save(&st->net, f);
    FR_TRY(fr_st_set_meta(f, "piflow.task", st->task->name));
    FR_TRY(fr_st_set_meta(f, "piflow.preset", st->img->a.preset));
    return fr_gmflow_image_save(st->img, f);
}

fr_status fr_piflow_student_load_net(fr_piflow_student *st, const fr_st_file *f, const char *path)
{
    return st->img ? fr_gmflow_image_load(st->img, f) : fr_mlp_load(&st->net, f, path);
}
