/* The run directory of `flowrl train` besides audit.log and the checkpoints' contents:
 * metrics.jsonl, eval.json, curve.svg, samples/NAME.png, checkpoint listing and pruning
 * (flowrl/run.h). Every file that is rewritten goes through a temporary + rename. */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/run_internal.h"
#include "flowrl/atomic_file.h"
#include "flowrl/file_util.h"
#include "flowrl/audit.h"
#include "flowrl/png.h"
#include "flowrl/plot_svg.h"
#include "flowrl/sample_grid.h"

fr_status fr_train_path(char *buf, size_t n, const char *dir, const char *name)
{
    int w = snprintf(buf, n, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= n) return fr_fail(FR_ERR_ARG, "train: path '%s/%s' is too long", dir, name);
    return FR_OK;
}

/* ---- curve ----------------------------------------------------------------------------- */

void fr_train_curve_free(fr_train_curve *c)
{
    free(c->reward);
    free(c->acc);
    free(c->eval_epoch);
    free(c->eval_acc);
    memset(c, 0, sizeof *c);
}

static fr_status grow2(double **a, double **b, int64_t *cap, int64_t n)
{
    if (n < *cap) return FR_OK;
    int64_t nc = *cap ? 2 * *cap : 64;
    double *x = realloc(*a, (size_t)nc * sizeof *x);
    if (!x) return fr_fail(FR_ERR_NOMEM, "train: curve of %lld points", (long long)nc);
    *a = x;
    double *y = realloc(*b, (size_t)nc * sizeof *y);
    if (!y) return fr_fail(FR_ERR_NOMEM, "train: curve of %lld points", (long long)nc);
    *b = y;
    *cap = nc;
    return FR_OK;
}

fr_status fr_train_curve_push_eval(fr_train_curve *c, double epoch, double acc)
{
    FR_TRY(grow2(&c->eval_epoch, &c->eval_acc, &c->cap_eval, c->n_eval));
    c->eval_epoch[c->n_eval] = epoch;
    c->eval_acc[c->n_eval] = acc;
    c->n_eval++;
    return FR_OK;
}

fr_status fr_train_curve_push(fr_train_curve *c, double reward, double acc)
{
    FR_TRY(grow2(&c->reward, &c->acc, &c->cap, c->n));
    c->reward[c->n] = reward;
    c->acc[c->n] = acc;
    c->n++;
    return FR_OK;
}

fr_status fr_train_curve_write_svg(const fr_train_curve *c, const char *title, const char *path)
{
    fr_curve_series sr[3] = {
        {"reward mean", NULL, c->reward, c->n, FR_CURVE_SMOOTHED, NULL, 0},
        {"training accuracy", NULL, c->acc, c->n, FR_CURVE_SMOOTHED, NULL, 0},
        {"held-out accuracy", c->eval_epoch, c->eval_acc, c->n_eval, FR_CURVE_POINTS, NULL, 0},
    };
    /* the axis is fitted to the data (rewards outside [0, 1] included) */
    fr_curve_axes ax = {title, "epoch", "reward / accuracy", 0, 0, 0.0, 1.0};
    return fr_curve_svg_write(path, sr, 3, &ax);
}

/* ---- metrics.jsonl ---------------------------------------------------------------------- */

static void add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

fr_status fr_train_metrics_append(const char *dir, const fr_run_epoch_event *ev)
{
    char path[FR_TRAIN_PATH_MAX + 32];
    FR_TRY(fr_train_path(path, sizeof path, dir, FR_TRAIN_METRICS_NAME));
    cJSON *o = cJSON_CreateObject();
    if (!o) return FR_ERR_NOMEM;
    cJSON_AddNumberToObject(o, "epoch", (double)ev->epoch);
    for (int k = 0; k < ev->n; k++) add_num(o, ev->m[k].key, ev->m[k].value);
    add_num(o, "seconds", ev->seconds);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return FR_ERR_NOMEM;
    FILE *f = fopen(path, "ab");
    fr_status s = FR_OK;
    if (!f)
        s = fr_fail(FR_ERR_IO, "%s: %s", path, strerror(errno));
    else {
        int ok = fprintf(f, "%s\n", txt) > 0;
        ok = (fclose(f) == 0) && ok;
        if (!ok) s = fr_fail(FR_ERR_IO, "%s: write failed", path);
    }
    free(txt);
    return s;
}

static double json_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

fr_status fr_train_metrics_truncate(const char *dir, int64_t n, fr_train_curve *curve)
{
    char path[FR_TRAIN_PATH_MAX + 32];
    FR_TRY(fr_train_path(path, sizeof path, dir, FR_TRAIN_METRICS_NAME));
    char *buf = NULL;
    size_t len = 0;
    if (n == 0) {
        struct stat st;
        if (stat(path, &st) != 0) return FR_OK;
        return fr_atomic_write_bytes(path, "", 0);
    }
    FR_TRY(fr_read_file(path, &buf, &len));
    size_t pos = 0;
    fr_status s = FR_OK;
    for (int64_t i = 0; i < n && s == FR_OK; i++) {
        char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl) {
            s = fr_fail(FR_ERR_MISMATCH, "%s: %lld complete lines, the checkpoint is at epoch %lld", path,
                        (long long)i, (long long)n);
            break;
        }
        cJSON *o = cJSON_ParseWithLength(buf + pos, (size_t)(nl - (buf + pos)));
        if (!o)
            s = fr_fail(FR_ERR_FORMAT, "%s: line %lld is not JSON", path, (long long)i + 1);
        else if (json_num(o, "epoch") != (double)(i + 1))
            s = fr_fail(FR_ERR_FORMAT, "%s: line %lld is not epoch %lld", path, (long long)i + 1, (long long)i + 1);
        else
            s = fr_train_curve_push(curve, json_num(o, "reward_mean"), json_num(o, "accuracy"));
        cJSON_Delete(o);
        pos = (size_t)(nl - buf) + 1;
    }
    if (s == FR_OK && pos != len) s = fr_atomic_write_bytes(path, buf, pos);
    free(buf);
    return s;
}

/* ---- checkpoints ---------------------------------------------------------------------- */

/* N of "step-N.safetensors" (decimal, no sign, no leading zero), else -1. */
static int64_t ckpt_step(const char *name)
{
    static const char pre[] = "step-", suf[] = ".safetensors";
    size_t n = strlen(name), lp = sizeof pre - 1, ls = sizeof suf - 1;
    if (n <= lp + ls || strncmp(name, pre, lp) != 0 || strcmp(name + n - ls, suf) != 0) return -1;
    int64_t v = 0;
    for (size_t i = lp; i < n - ls; i++) {
        if (name[i] < '0' || name[i] > '9' || (i == lp && name[i] == '0' && n - ls - lp > 1)) return -1;
        if (v > FR_AUDIT_MAX_STEP / 10) return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

fr_status fr_train_list_checkpoints(const char *dir, int64_t **steps, int64_t *n)
{
    char cdir[FR_TRAIN_PATH_MAX + 32];
    FR_TRY(fr_train_path(cdir, sizeof cdir, dir, FR_CHECKPOINT_DIR));
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(cdir);
    if (!d) return errno == ENOENT ? FR_OK : fr_fail(FR_ERR_IO, "%s: %s", cdir, strerror(errno));
    fr_status s = FR_OK;
    int64_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && s == FR_OK) {
        int64_t k = ckpt_step(e->d_name);
        if (k < 0 && strstr(e->d_name, ".safetensors.tmp.") != NULL) { /* an interrupted write */
            char p[FR_TRAIN_PATH_MAX + 320];
            if (snprintf(p, sizeof p, "%s/%s", cdir, e->d_name) < (int)sizeof p && remove(p) != 0)
                s = fr_fail(FR_ERR_IO, "%s: %s", p, strerror(errno));
            continue;
        }
        if (k < 0) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *ns = realloc(*steps, (size_t)cap * sizeof *ns);
            if (!ns) {
                s = fr_fail(FR_ERR_NOMEM, "%s: listing", cdir);
                break;
            }
            *steps = ns;
        }
        (*steps)[(*n)++] = k;
    }
    closedir(d);
    if (s != FR_OK) {
        free(*steps);
        *steps = NULL;
        *n = 0;
        return s;
    }
    if (*n) qsort(*steps, (size_t)*n, sizeof **steps, cmp_i64);
    return FR_OK;
}

fr_status fr_train_prune_checkpoints(const char *dir, int64_t keep)
{
    if (keep <= 0) return FR_OK;
    int64_t *st, n;
    FR_TRY(fr_train_list_checkpoints(dir, &st, &n));
    fr_status s = FR_OK;
    for (int64_t i = 0; i + keep < n && s == FR_OK; i++) {
        char rel[64], p[FR_TRAIN_PATH_MAX + 64];
        fr_checkpoint_name(st[i], rel, sizeof rel);
        s = fr_train_path(p, sizeof p, dir, rel);
        if (s == FR_OK && remove(p) != 0) s = fr_fail(FR_ERR_IO, "%s: %s", p, strerror(errno));
    }
    free(st);
    return s;
}

/* ---- eval.json -------------------------------------------------------------------------- */

static cJSON *eval_obj(const fr_task *t, const fr_eval_result *r, int64_t epoch)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "epoch", (double)epoch);
    cJSON_AddNumberToObject(o, "samples", (double)r->samples);
    cJSON_AddNumberToObject(o, "correct", (double)r->correct);
    cJSON_AddNumberToObject(o, "accuracy", r->samples ? (double)r->correct / (double)r->samples : 0.0);
    cJSON_AddNumberToObject(o, "mean_score", r->score);
    cJSON *g = cJSON_AddObjectToObject(o, "groups");
    for (int k = 0; g && k < r->n_groups; k++) {
        if (r->group_samples[k] == 0) continue;
        cJSON *gi = cJSON_CreateObject();
        if (!gi) break;
        cJSON_AddNumberToObject(gi, "prompts", r->group_prompts[k]);
        cJSON_AddNumberToObject(gi, "accuracy", (double)r->group_correct[k] / (double)r->group_samples[k]);
        cJSON_AddNumberToObject(gi, "mean_score", r->group_score[k]);
        cJSON_AddItemToObject(g, t->group_names[k], gi);
    }
    return o;
}

static fr_status eval_read(const char *path, cJSON **root)
{
    *root = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return FR_OK;
    char *buf;
    size_t len;
    FR_TRY(fr_read_file(path, &buf, &len));
    *root = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!*root || !cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return fr_fail(FR_ERR_FORMAT, "%s: not a JSON object", path);
    }
    return FR_OK;
}

fr_status fr_train_eval_json_set(const char *dir, const char *key, const fr_task *t, const fr_eval_result *r,
                                 int64_t epoch)
{
    char path[FR_TRAIN_PATH_MAX + 32];
    FR_TRY(fr_train_path(path, sizeof path, dir, FR_TRAIN_EVAL_NAME));
    cJSON *root;
    FR_TRY(eval_read(path, &root));
    if (!root && !(root = cJSON_CreateObject())) return FR_ERR_NOMEM;
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    cJSON *o = eval_obj(t, r, epoch);
    if (o) cJSON_AddItemToObject(root, key, o);
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!o || !txt) {
        free(txt);
        return FR_ERR_NOMEM;
    }
    size_t n = strlen(txt);
    char *nl = realloc(txt, n + 2);
    if (!nl) {
        free(txt);
        return FR_ERR_NOMEM;
    }
    nl[n] = '\n';
    fr_status s = fr_atomic_write_bytes(path, nl, n + 1);
    free(nl);
    return s;
}

fr_status fr_train_eval_json_get(const char *dir, const char *key, int *found, double *acc, double *score)
{
    char path[FR_TRAIN_PATH_MAX + 32];
    FR_TRY(fr_train_path(path, sizeof path, dir, FR_TRAIN_EVAL_NAME));
    cJSON *root;
    *found = 0;
    FR_TRY(eval_read(path, &root));
    const cJSON *o = root ? cJSON_GetObjectItemCaseSensitive(root, key) : NULL;
    if (o) {
        *acc = json_num(o, "accuracy");
        *score = json_num(o, "mean_score");
        *found = isfinite(*acc);
    }
    cJSON_Delete(root);
    return FR_OK;
}

/* ---- sample pictures -------------------------------------------------------------------- */

fr_status fr_train_sample_grid(const char *dir, const char *name, const fr_model *const *models,
                               const char *const *titles, int n_models, fr_backend *be, const fr_task *t,
                               int reward_id, const fr_rollout_cfg *rc, int64_t n_per_prompt)
{
    char sdir[FR_TRAIN_PATH_MAX + 32], path[FR_TRAIN_PATH_MAX + 64];
    FR_TRY(fr_train_path(sdir, sizeof sdir, dir, "samples"));
    if (mkdir(sdir, 0777) != 0 && errno != EEXIST) return fr_fail(FR_ERR_IO, "%s: %s", sdir, strerror(errno));
    FR_TRY(fr_train_path(path, sizeof path, sdir, name));
    int first, np;
    fr_split_range(t, FR_SPLIT_EVAL, &first, &np);
    const int64_t k = n_per_prompt, N = (int64_t)np * k, D = t->D;
    if (N <= 0 || n_models < 1 || n_models > 4) return FR_OK;
    int *pid = fr_malloc((size_t)N * sizeof *pid), *rows = fr_malloc((size_t)np * sizeof *rows);
    uint32_t *sid = fr_malloc((size_t)N * sizeof *sid);
    float *x = fr_malloc((size_t)(n_models * N * D) * sizeof *x);
    fr_status s = (pid && rows && sid && x) ? FR_OK : FR_ERR_NOMEM;
    /* the eval streams (flowrl/evaluate.h): these are the first k samples fr_evaluate scores */
    fr_rollout_cfg c = *rc;
    c.seed = FR_EVAL_SEED;
    c.c0 = FR_ROLLOUT_C0_EVAL;
    for (int64_t i = 0; i < N && s == FR_OK; i++) {
        pid[i] = first + (int)(i / k);
        sid[i] = (uint32_t)pid[i] * (uint32_t)FR_EVAL_MAX_N + (uint32_t)(i % k);
    }
    for (int p = 0; p < np && s == FR_OK; p++) rows[p] = first + p;
    const float *xs[4];
    for (int m = 0; m < n_models && s == FR_OK; m++) {
        xs[m] = x + m * N * D;
        s = fr_rollout_to_host(models[m], be, t, &c, N, pid, sid, x + m * N * D);
    }
    /* one row per prompt, labelled, each sample framed by the detector's verdict */
    if (s == FR_OK) s = fr_sample_grid_prompts(path, t, reward_id, np, rows, (int)k, n_models, titles, xs, NULL);
    free(pid);
    free(rows);
    free(sid);
    free(x);
    return s;
}
