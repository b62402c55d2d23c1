/* Held-out evaluation: accuracy per prompt kind (flowrl/evaluate.h). */
#include "flowrl/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rollout_internal.h"
#include "flowrl/cond.h"
#include "flowrl/enum_names.h"
#include "flowrl/guidance.h"

const char *const fr_split_names[] = {"train", "eval", NULL};

const char *fr_split_name(fr_split s) { return fr_enum_name(fr_split_names, (int)s); }

fr_status fr_split_from_name(const char *s, fr_split *out)
{
    int v;
    FR_TRY(fr_enum_parse(fr_split_names, s, &v, "split"));
    *out = (fr_split)v;
    return FR_OK;
}

void fr_split_range(const fr_task *t, fr_split s, int *first, int *n)
{
    *first = s == FR_SPLIT_TRAIN ? 0 : t->eval_first;
    *n = s == FR_SPLIT_TRAIN ? t->n_train : t->n_eval;
}

fr_eval_opts fr_eval_opts_default(void)
{
    fr_eval_opts o;
    o.split = FR_SPLIT_EVAL;
    o.n = 16;
    o.seed = FR_EVAL_SEED;
    o.reward_id = 0;
    o.score = NULL;
    o.score_user = NULL;
    return o;
}

void fr_eval_result_free(fr_eval_result *r)
{
    free(r->prompt_ids);
    free(r->prompt_correct);
    free(r->prompt_score);
    free(r->group_prompts);
    free(r->group_samples);
    free(r->group_correct);
    free(r->group_score);
    free(r->prompt_diversity);
    free(r->group_diversity);
    free(r->prompt_kl);
    free(r->group_kl);
    memset(r, 0, sizeof *r);
}

static fr_status result_alloc(fr_eval_result *r, int n_prompts, int n_groups)
{
    memset(r, 0, sizeof *r);
    r->n_prompts = n_prompts;
    r->n_groups = n_groups;
    r->prompt_ids = fr_calloc((size_t)n_prompts, sizeof *r->prompt_ids);
    r->prompt_correct = fr_calloc((size_t)n_prompts, sizeof *r->prompt_correct);
    r->prompt_score = fr_calloc((size_t)n_prompts, sizeof *r->prompt_score);
    r->group_prompts = fr_calloc((size_t)n_groups, sizeof *r->group_prompts);
    r->group_samples = fr_calloc((size_t)n_groups, sizeof *r->group_samples);
    r->group_correct = fr_calloc((size_t)n_groups, sizeof *r->group_correct);
    r->group_score = fr_calloc((size_t)n_groups, sizeof *r->group_score);
    r->prompt_diversity = fr_calloc((size_t)n_prompts, sizeof *r->prompt_diversity);
    r->group_diversity = fr_calloc((size_t)n_groups, sizeof *r->group_diversity);
    r->prompt_kl = fr_calloc((size_t)n_prompts, sizeof *r->prompt_kl);
    r->group_kl = fr_calloc((size_t)n_groups, sizeof *r->group_kl);
    if (!r->prompt_ids || !r->prompt_correct || !r->prompt_score || !r->group_prompts || !r->group_samples ||
        !r->group_correct || !r->group_score || !r->prompt_diversity || !r->group_diversity || !r->prompt_kl ||
        !r->group_kl) {
        fr_eval_result_free(r);
        return FR_ERR_NOMEM;
    }
    return FR_OK;
}

/* Mean over the pairs i < j of ‖x_i − x_j‖ / √D of n samples (n, D), in double, in order. */
static double mean_pair_distance(const float *x, int64_t n, int64_t D)
{
    if (n < 2) return 0.0;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) {
            double ss = 0.0;
            for (int64_t d = 0; d < D; d++) {
                const double v = (double)x[i * D + d] - (double)x[j * D + d];
                ss += v * v;
            }
            sum += sqrt(ss);
        }
    return sum / ((double)n * (double)(n - 1) / 2.0) / sqrt((double)D);
}

fr_status fr_evaluate(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *rc,
                      const fr_eval_opts *opts, fr_eval_result *res)
{
    if (!m || !be || !task || !rc || !opts || !res) return fr_fail(FR_ERR_ARG, "fr_evaluate: NULL argument");
    memset(res, 0, sizeof *res);
    if (opts->n < 1 || opts->n > FR_EVAL_MAX_N)
        return fr_fail(FR_ERR_ARG, "evaluate: %d samples per prompt, expected 1 .. %d", opts->n, FR_EVAL_MAX_N);
    if (!opts->score && (opts->reward_id < 0 || opts->reward_id >= task->n_rewards))
        return fr_fail(FR_ERR_ARG, "evaluate: reward id %d outside [0, %d) of task %s", opts->reward_id,
                       task->n_rewards, task->name);
    if (!fr_split_name(opts->split)) return fr_fail(FR_ERR_ARG, "evaluate: invalid split %d", (int)opts->split);
    int first, n_prompts;
    fr_split_range(task, opts->split, &first, &n_prompts);
    if (n_prompts < 1)
        return fr_fail(FR_ERR_ARG, "evaluate: task %s has no %s prompts", task->name, fr_split_name(opts->split));
    if ((int64_t)first + n_prompts > (int64_t)(UINT32_MAX / FR_EVAL_MAX_N))
        return fr_fail(FR_ERR_ARG, "evaluate: prompt ids up to %d exceed the sample-id range", first + n_prompts);

    fr_rollout_cfg c = *rc;
    c.seed = opts->seed;
    c.c0 = FR_ROLLOUT_C0_EVAL;
    const int64_t D = task->D, n = opts->n, N = (int64_t)n_prompts * n;
    const int64_t chunk = rc->batch > 0 && rc->batch < N ? rc->batch : N;

    FR_TRY(result_alloc(res, n_prompts, task->n_groups));
    res->n = opts->n;
    int *pid = fr_malloc((size_t)chunk * sizeof *pid);
    uint32_t *sid = fr_malloc((size_t)chunk * sizeof *sid);
    int *correct = fr_malloc((size_t)chunk * sizeof *correct);
    float *score = fr_malloc((size_t)chunk * sizeof *score);
    float *x = fr_malloc((size_t)(chunk * D) * sizeof *x); /* host: the reward's input */
    float *cur = fr_malloc((size_t)(n * D) * sizeof *cur); /* the samples of the prompt being drawn */
    fr_status s = (pid && sid && correct && score && x && cur) ? FR_OK : FR_ERR_NOMEM;

    /* samples in order: prompt-major, then k; row r of the whole run is (r / n, r % n) */
    for (int64_t r0 = 0; r0 < N && s == FR_OK; r0 += chunk) {
        const int64_t b = N - r0 < chunk ? N - r0 : chunk;
        for (int64_t j = 0; j < b; j++) {
            int64_t r = r0 + j;
            pid[j] = first + (int)(r / n);
            sid[j] = (uint32_t)pid[j] * (uint32_t)FR_EVAL_MAX_N + (uint32_t)(r % n);
        }
        s = fr_rollout_to_host(m, be, task, &c, b, pid, sid, x);
        if (s == FR_OK && opts->score) {
            memset(correct, 0, (size_t)b * sizeof *correct);
            s = opts->score(opts->score_user, (uint32_t)(r0 / chunk), (int)b, pid, x, score);
        } else if (s == FR_OK) {
            s = fr_task_reward_batch(task, opts->reward_id, (int)b, pid, x, score, correct);
        }
        for (int64_t j = 0; j < b && s == FR_OK; j++) {
            const int pi = pid[j] - first;
            res->prompt_ids[pi] = pid[j];
            res->prompt_correct[pi] += correct[j] != 0;
            res->prompt_score[pi] += (double)score[j];
            const int64_t k = (r0 + j) % n; /* a prompt's samples may span chunks */
            memcpy(cur + k * D, x + j * D, (size_t)D * sizeof *cur);
            if (k == n - 1) res->prompt_diversity[pi] = mean_pair_distance(cur, n, D);
        }
    }
    free(cur);
    free(pid);
    free(sid);
    free(correct);
    free(score);
    free(x);
    if (s != FR_OK) {
        fr_eval_result_free(res);
        return s;
    }

    double total = 0.0;
    for (int pi = 0; pi < n_prompts; pi++) {
        const int g = task->prompt_group(res->prompt_ids[pi]);
        if (g < 0 || g >= task->n_groups) {
            fr_eval_result_free(res);
            return fr_fail(FR_ERR_ARG, "evaluate: task %s puts prompt %d in group %d, outside [0, %d)", task->name,
                           first + pi, g, task->n_groups);
        }
        res->group_prompts[g]++;
        res->group_samples[g] += n;
        res->group_correct[g] += res->prompt_correct[pi];
        res->group_score[g] += res->prompt_score[pi];
        res->group_diversity[g] += res->prompt_diversity[pi];
        res->diversity += res->prompt_diversity[pi];
        total += res->prompt_score[pi];
        res->correct += res->prompt_correct[pi];
        res->prompt_score[pi] /= (double)n;
    }
    for (int g = 0; g < task->n_groups; g++) {
        res->group_score[g] = res->group_samples[g] ? res->group_score[g] / (double)res->group_samples[g] : NAN;
        res->group_diversity[g] = res->group_prompts[g] ? res->group_diversity[g] / res->group_prompts[g] : NAN;
    }
    res->diversity /= (double)n_prompts;
    res->samples = N;
    res->score = total / (double)N;
    return FR_OK;
}

/* ---- KL to a reference (fr_eval_kl) -------------------------------------------------------- */

typedef struct {
    fr_backend *be;
    int64_t T, D, S, cap;
    float *traj, *mean, *x, *v_ref, *mean_ref, *rows; /* backend */
    int have_ws;
    fr_guided_ws ref;
    int *pid;                                         /* host */
    uint32_t *sid;
    int32_t *c;
    float *rows_h;
    double *kl, *two_var;
} kl_work;

static void kl_work_free(kl_work *w)
{
    fr_dev_free(w->be, w->traj);
    fr_dev_free(w->be, w->mean);
    fr_dev_free(w->be, w->x);
    fr_dev_free(w->be, w->v_ref);
    fr_dev_free(w->be, w->mean_ref);
    fr_dev_free(w->be, w->rows);
    if (w->have_ws) fr_guided_ws_free(&w->ref);
    free(w->pid);
    free(w->sid);
    free(w->c);
    free(w->rows_h);
    free(w->kl);
    free(w->two_var);
}

static fr_status kl_work_alloc(kl_work *w, fr_backend *be, const fr_model *ref, const fr_task *task,
                               const fr_rollout_cfg *c, int64_t cap)
{
    memset(w, 0, sizeof *w);
    int64_t n_cond;
    fr_cond_dims(task, &n_cond, &w->S);
    w->be = be;
    w->T = c->T;
    w->D = task->D;
    w->cap = cap;
    const int64_t T = w->T, D = w->D;
    w->traj = fr_dev_floats(be, (T + 1) * cap * D);
    w->mean = fr_dev_floats(be, T * cap * D);
    w->x = fr_dev_floats(be, cap * D);
    w->v_ref = fr_dev_floats(be, cap * D);
    w->mean_ref = fr_dev_floats(be, cap * D);
    w->rows = fr_dev_floats(be, cap);
    w->pid = fr_malloc((size_t)cap * sizeof *w->pid);
    w->sid = fr_malloc((size_t)cap * sizeof *w->sid);
    w->c = fr_malloc((size_t)(cap * w->S) * sizeof *w->c);
    w->rows_h = fr_malloc((size_t)cap * sizeof *w->rows_h);
    w->kl = fr_malloc((size_t)cap * sizeof *w->kl);
    w->two_var = fr_malloc((size_t)T * sizeof *w->two_var);
    if (!w->traj || !w->mean || !w->x || !w->v_ref || !w->mean_ref || !w->rows || !w->pid || !w->sid || !w->c ||
        !w->rows_h || !w->kl || !w->two_var)
        return FR_ERR_NOMEM;
    for (int64_t i = 0; i < T; i++) {
        fr_step p = fr_rollout_step(c, i);
        fr_step_std sd;
        FR_TRY(fr_sampler_std(&p, &sd));
        if (!fr_sampler_is_stochastic(c->kind) || !(sd.std > 0.0f))
            return fr_fail(FR_ERR_ARG, "eval KL: step %lld of the %s sampler has std %g: the path KL needs a "
                                       "stochastic step (noise level > 0) at every step",
                           (long long)i, fr_sampler_name(c->kind), (double)sd.std);
        w->two_var[i] = 2.0 * (double)sd.std * (double)sd.std;
    }
    FR_TRY(fr_guided_ws_alloc(&w->ref, be, ref, cap, fr_guidance_from_scale(c->cfg), 0));
    w->have_ws = 1;
    return FR_OK;
}

/* w->kl[j] = Σ_t Σ_d (μ_m − μ_ref)² / (2σ_t²) of the b samples (pid, sid) of w. */
static fr_status kl_chunk(kl_work *w, const fr_model *m, const fr_model *ref, const fr_task *task,
                          const fr_rollout_cfg *c, int64_t b)
{
    fr_backend *be = w->be;
    const int64_t D = w->D;
    fr_rollout_traj tj = {w->traj, w->mean, NULL, NULL, NULL};
    FR_TRY(fr_rollout(m, be, task, c, b, w->pid, w->sid, NULL, w->x, &tj));
    FR_TRY(fr_cond_ids(task, b, w->pid, w->c));
    for (int64_t j = 0; j < b; j++) w->kl[j] = 0.0;
    for (int64_t i = 0; i < w->T; i++) {
        const fr_step p = fr_rollout_step(c, i);
        const float *xt = w->traj + i * b * D; /* time-major (T+1, b, D) */
        FR_TRY(fr_guided_forward(ref, be, &w->ref, b, xt, fr_rollout_time(c, i), w->c, w->v_ref));
        FR_TRY(fr_sampler_mean(be, &p, b, D, xt, w->v_ref, NULL, w->mean_ref));
        be->ops->row_sumsq_diff(b, D, w->mean + i * b * D, w->mean_ref, w->rows);
        FR_TRY(fr_d2h(be, w->rows_h, w->rows, (size_t)b * sizeof *w->rows_h));
        for (int64_t j = 0; j < b; j++) w->kl[j] += (double)w->rows_h[j] / w->two_var[i];
    }
    return FR_OK;
}

fr_status fr_eval_kl(const fr_model *m, const fr_model *ref, fr_backend *be, const fr_task *task,
                     const fr_rollout_cfg *rc, const fr_eval_opts *opts, fr_eval_result *res)
{
    if (!m || !ref || !be || !task || !rc || !opts || !res) return fr_fail(FR_ERR_ARG, "fr_eval_kl: NULL argument");
    int first, n_prompts;
    fr_split_range(task, opts->split, &first, &n_prompts);
    if (!res->prompt_kl || res->n_prompts != n_prompts || res->n != opts->n || n_prompts < 1)
        return fr_fail(FR_ERR_ARG, "eval KL: the result is not fr_evaluate's for these options");
    fr_rollout_cfg c = *rc;
    c.seed = opts->seed;
    c.c0 = FR_ROLLOUT_C0_EVAL;
    FR_TRY(fr_rollout_check_cfg(m, task, &c));
    FR_TRY(fr_rollout_check_cfg(ref, task, &c));
    const int64_t n = opts->n, N = (int64_t)n_prompts * n;
    const int64_t chunk = rc->batch > 0 && rc->batch < N ? rc->batch : N;
    kl_work w;
    fr_status s = kl_work_alloc(&w, be, ref, task, &c, chunk);
    for (int pi = 0; pi < n_prompts; pi++) res->prompt_kl[pi] = 0.0;
    for (int64_t r0 = 0; r0 < N && s == FR_OK; r0 += chunk) {
        const int64_t b = N - r0 < chunk ? N - r0 : chunk;
        for (int64_t j = 0; j < b; j++) { /* the samples of fr_evaluate */
            w.pid[j] = first + (int)((r0 + j) / n);
            w.sid[j] = (uint32_t)w.pid[j] * (uint32_t)FR_EVAL_MAX_N + (uint32_t)((r0 + j) % n);
        }
        s = kl_chunk(&w, m, ref, task, &c, b);
        for (int64_t j = 0; j < b && s == FR_OK; j++) res->prompt_kl[w.pid[j] - first] += w.kl[j];
    }
    kl_work_free(&w);
    if (s != FR_OK) return s;
    double total = 0.0;
    for (int g = 0; g < res->n_groups; g++) res->group_kl[g] = 0.0;
    for (int pi = 0; pi < n_prompts; pi++) {
        res->group_kl[task->prompt_group(first + pi)] += res->prompt_kl[pi]; /* checked by fr_evaluate */
        total += res->prompt_kl[pi];
        res->prompt_kl[pi] /= (double)n;
    }
    for (int g = 0; g < res->n_groups; g++)
        res->group_kl[g] = res->group_samples[g] ? res->group_kl[g] / (double)res->group_samples[g] : NAN;
    res->kl = total / (double)N;
    res->kl_per_dim = res->kl / (double)task->D;
    res->have_kl = 1;
    return FR_OK;
}
