/* Pictures of samples (fr_task_render in flowrl/task.h). */
#include <stdlib.h>
#include <string.h>

#include "data/task_internal.h"

/* matplotlib's tab10: prompt id p is drawn in k_tab10[p mod 10] */
static const uint8_t k_tab10[10][3] = {{31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                                       {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                       {188, 189, 34},  {23, 190, 207}};

fr_status fr_task_scatter_png(const char *path, int N, const int *prompt_ids, const float *x,
                              const fr_scatter_opts *o)
{
    uint8_t *col = fr_malloc((size_t)(N > 0 ? N : 1) * 3);
    if (!col) return FR_ERR_NOMEM;
    for (int i = 0; i < N; i++) {
        int p = prompt_ids[i] % 10;
        memcpy(col + 3 * i, k_tab10[p < 0 ? p + 10 : p], 3);
    }
    fr_status s = fr_png_write_scatter(path, x, N, col, o);
    free(col);
    return s;
}

fr_status fr_task_render(const fr_task *t, const char *path, int N, const int *prompt_ids, const float *x,
                         int cols, int scale)
{
    if (N < 0 || (N > 0 && (!prompt_ids || !x)))
        return fr_fail(FR_ERR_ARG, "%s: picture of task %s: bad arguments (N %d)", path, t->name, N);
    if (t->render) return t->render(t, path, N, prompt_ids, x, cols, scale);
    if (t->C > 0) return fr_png_write_grid(path, x, N, t->C, t->H, t->W, cols, scale);
    if (t->D == 2) {
        fr_scatter_opts o = fr_scatter_opts_default();
        float marks[2 * 16];
        if (t->scatter_marks) {
            o.n_marks = t->scatter_marks(t, marks, 16, &o.ring_radius);
            o.marks = marks;
        }
        return fr_task_scatter_png(path, N, prompt_ids, x, &o);
    }
    return fr_fail(FR_ERR_UNSUPPORTED, "%s: task %s has %d-dimensional samples and no picture for them", path,
                   t->name, t->D);
}
