/* The pi-Flow student's two networks behind one set of calls (core/piflow_image.c): the 2-D MLP
 * (st->net) or the image task's GMFlow image network (st->img). Used by core/piflow_train.c. */
#ifndef FLOWRL_PIFLOW_INTERNAL_H
#define FLOWRL_PIFLOW_INTERNAL_H

#include "flowrl/piflow.h"

/* Sample i's prompt: i mod n_train of the image student's task (0 for the 2-D student). */
int fr_piflow_prompt(const fr_piflow_student *st, int64_t i);
/* The head rows (B, W) at x_s (B, D) of samples first .. first + B − 1 (their prompts). */
fr_status fr_piflow_student_rows(fr_piflow_student *st, int64_t B, const float *x_s, int64_t first, float *rows);
/* Zeroes the gradients, then the backward of the last rows with dL/drow (B, W) host. */
fr_status fr_piflow_student_backward(fr_piflow_student *st, int64_t B, const float *drow);
/* Parameter p's checkpoint name. */
const char *fr_piflow_student_name(const fr_piflow_student *st, int p);
/* The network's values (and the image network's configuration) into f / from f. */
fr_status fr_piflow_student_save_net(fr_piflow_student *st, fr_st_file *f);
fr_status fr_piflow_student_load_net(fr_piflow_student *st, const fr_st_file *f, const char *path);
/* An image student from a checkpoint's piflow.preset / piflow.task / model.* (K its piflow.K). */
fr_status fr_piflow_student_new_image_st(fr_piflow_student *st, fr_backend *be, int K, const fr_st_file *f,
                                         const char *path, int64_t cap);
void fr_piflow_student_free_image(fr_piflow_student *st);

#endif
