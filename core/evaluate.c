/* Held-out evaluation: accuracy per prompt kind (flowrl/evaluate.h). */
#include "flowrl/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/enum_names.h"

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
    if (!r->prompt_ids || !r->prompt_correct || !r->prompt_score || !r->group_prompts || !r->group_samples ||
        !r->group_correct || !r->group_score) {
        fr_eval_result_free(r);
        return FR_ERR_NOMEM;
    }
    return FR_OK;
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
    float *x_dev = fr_dev_floats(be, chunk * D);
    fr_status s = (pid && sid && correct && score && x && x_dev) ? FR_OK : FR_ERR_NOMEM;

    /* samples in order: prompt-major, then k; row r of the whole run is (r / n, r % n) */
    for (int64_t r0 = 0; r0 < N && s == FR_OK; r0 += chunk) {
        const int64_t b = N - r0 < chunk ? N - r0 : chunk;
        for (int64_t j = 0; j < b; j++) {
            int64_t r = r0 + j;
            pid[j] = first + (int)(r / n);
            sid[j] = (uint32_t)pid[j] * (uint32_t)FR_EVAL_MAX_N + (uint32_t)(r % n);
        }
        s = fr_rollout(m, be, task, &c, b, pid, sid, NULL, x_dev, NULL);
        if (s == FR_OK) s = fr_d2h(be, x, x_dev, (size_t)(b * D) * sizeof *x);
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
        }
    }
    free(pid);
    free(sid);
    free(correct);
    free(score);
    free(x);
    fr_dev_free(be, x_dev);
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
        total += res->prompt_score[pi];
        res->correct += res->prompt_correct[pi];
        res->prompt_score[pi] /= (double)n;
    }
    for (int g = 0; g < task->n_groups; g++)
        res->group_score[g] = res->group_samples[g] ? res->group_score[g] / (double)res->group_samples[g] : NAN;
    res->samples = N;
    res->score = total / (double)N;
    return FR_OK;
}
