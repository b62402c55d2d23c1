/* Resuming a run (flowrl/run.h fr_run_resume): the saved config.json with the caller's
 * overrides, the checkpoint to continue from, the audit log and metrics cut back to it, and the
 * checkpoints of an abandoned branch removed; then the one run loop of core/run.c. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/run_internal.h"
#include "flowrl/checkpoint.h"
#include "flowrl/dist.h"
#include "flowrl/file_util.h"

fr_status fr_run_resume(const fr_run_resume_req *rq, const fr_run_env *env, fr_run_result *res)
{
    fr_run_result_init(res);
    char path[FR_TRAIN_PATH_MAX + 32], algo[64];
    FR_TRY(fr_train_path(path, sizeof path, rq->dir, FR_TRAIN_CONFIG_NAME));
    struct stat stc;
    if (stat(path, &stc) != 0)
        return fr_fail(FR_ERR_ARG, "train: %s is not a run (no %s): start one with --out %s", rq->dir,
                       FR_TRAIN_CONFIG_NAME, rq->dir);
    FR_TRY(fr_opts_json_string(path, "algo", algo, sizeof algo));
    const fr_algo *a;
    FR_TRY(fr_algo_find(algo[0] ? algo : fr_algo_default()->name, &a));
    fr_run_opts saved, ro;
    memset(&saved, 0, sizeof saved);
    void *eo_saved = NULL, *eo = NULL;
    if (a->on_env) {
        char env_name[1040];
        const fr_env_class *ec;
        FR_TRY(fr_opts_json_string(path, "env", env_name, sizeof env_name));
        FR_TRY(fr_env_find(env_name, &ec));
        eo_saved = fr_calloc(1, ec->opts_size ? ec->opts_size : 1);
        eo = fr_calloc(1, ec->opts_size ? ec->opts_size : 1);
        if (!eo_saved || !eo) {
            free(eo_saved);
            free(eo);
            return FR_ERR_NOMEM;
        }
        saved.env_class = ec;
        saved.env_opts = eo_saved;
    }
    void *ao_saved = fr_calloc(1, a->opts_size ? a->opts_size : 1), *ao = fr_calloc(1, a->opts_size ? a->opts_size : 1);
    fr_status s = FR_OK;
    if (!ao_saved || !ao) {
        s = FR_ERR_NOMEM;
        goto out;
    }
    fr_opts o_saved;
    static const char *const ignore[] = {"resolved", "base_digest", "base_abs", NULL};
    /* keys an older config.json does not hold keep the defaults */
    s = fr_run_opts_defaults(&o_saved, &saved, a, ao_saved);
    if (s == FR_OK) s = fr_opts_read_json(&o_saved, path, ignore);
    /* a relative base path is resolved against the directory the run was created from */
    char abs[FR_OPT_PATH_MAX];
    struct stat stb;
    if (s == FR_OK && saved.c.base[0] != '/' && stat(saved.c.base, &stb) != 0 &&
        fr_opts_json_string(path, "base_abs", abs, sizeof abs) == FR_OK && abs[0])
        snprintf(saved.c.base, sizeof saved.c.base, "%s", abs);
    ro = saved;
    if (a->opts_size) memcpy(ao, ao_saved, a->opts_size);
    if (eo) {
        memcpy(eo, eo_saved, saved.env_class->opts_size);
        ro.env_opts = eo;
    }
    snprintf(ro.run.out, sizeof ro.run.out, "%s", rq->dir); /* the run may have moved */
    int64_t epochs_before = saved.run.epochs;
    int changed = 0;
    if (s == FR_OK && rq->override) {
        fr_opts o_now;
        fr_run_bind(&o_now, &ro, a, ao);
        fr_opts_seen seen;
        memset(&seen, 0, sizeof seen);
        s = rq->override(&o_now, &seen, rq->override_user);
        if (s == FR_OK) s = fr_opts_resume_check(&o_now, &o_saved, &seen);
        for (int g = 0; g < FR_OPTS_MAX_GROUPS; g++)
            for (int k = 0; k < 64; k++) changed |= seen.set[g][k];
        snprintf(ro.run.out, sizeof ro.run.out, "%s", rq->dir);
    }
    if (s == FR_OK) s = fr_run_check_opts(&ro, a, ao);
    fr_run r;
    struct fr_run_private pv;
    fr_run_init(&r, &pv, &ro, a, ao, env);
    if (s != FR_OK) goto out;
    if (pv.writer) s = fr_dir_lock(r.dir, &pv.lock);
    if (s == FR_OK) s = fr_run_setup(&r);
    int64_t last = 0;
    /* the other ranks list the checkpoints after rank 0 (which removes stale temporaries) */
    if (s == FR_OK && pv.writer) s = fr_run_pick_checkpoint(&r, rq->from_step, &last);
    s = fr_dist_agree(s);
    if (s == FR_OK && !pv.writer) s = fr_run_pick_checkpoint(&r, rq->from_step, &last);
    if (s == FR_OK && ro.run.epochs < last)
        s = fr_fail(FR_ERR_ARG, "train: --epochs %lld is below the %lld epochs %s has done", (long long)ro.run.epochs,
                    (long long)last, r.dir);
    if (s == FR_OK && last > 0) {
        s = fr_run_load_checkpoint(&r, last);
        if (s == FR_ERR_FORMAT || s == FR_ERR_MISMATCH) fr_run_offer_intact(&r, last, s);
    }
    char alog[FR_TRAIN_PATH_MAX + 32];
    if (!pv.writer) { /* the rest prepares the run directory: rank 0's */
        if (s == FR_OK) s = fr_run_loop(&r, last, res);
        s = fr_run_finish(&r, s, 0);
        goto out;
    }
    if (s == FR_OK) s = fr_train_path(alog, sizeof alog, r.dir, FR_AUDIT_LOG_NAME);
    if (s == FR_OK) s = fr_audit_truncate_to_step(alog, last);
    if (s == FR_OK) s = fr_train_metrics_truncate(r.dir, last, &pv.curve);
    /* the checkpoints after step `last` (--from-step) belong to the abandoned branch */
    int64_t *steps = NULL, n = 0;
    if (s == FR_OK) s = fr_train_list_checkpoints(r.dir, &steps, &n);
    for (int64_t i = 0; s == FR_OK && i < n; i++)
        if (steps[i] > last) {
            char rel[64], p[FR_TRAIN_PATH_MAX + 64];
            fr_checkpoint_name(steps[i], rel, sizeof rel);
            if (fr_train_path(p, sizeof p, r.dir, rel) == FR_OK && remove(p) != 0)
                s = fr_fail(FR_ERR_IO, "%s: %s", p, strerror(errno));
        }
    free(steps);
    if (s == FR_OK && (ro.run.epochs != epochs_before || changed)) s = fr_run_write_config(&r);
    if (s == FR_OK) s = fr_run_open_audit(&r);
    if (s == FR_OK) {
        fr_run_header(&r);
        fr_run_info(&r, "resuming %s at epoch %lld of %lld", r.dir, (long long)last, (long long)ro.run.epochs);
        int found = 0;
        s = fr_train_eval_json_get(r.dir, "before", &found, &res->acc_before, &res->score_before);
        if (s == FR_OK && !found && ro.ev.eval_n > 0 && !a->on_env) {
            /* the run stopped before its first evaluation finished: evaluate the base */
            fr_infer_ckpt ck;
            s = fr_infer_ckpt_load(&ck, r.be, ro.c.base, !ro.c.base_raw, ro.c.task);
            if (s == FR_OK) s = fr_run_evaluate(&r, &ck.model, "before", 0, &res->acc_before, &res->score_before);
            fr_infer_ckpt_free(&ck);
        }
    }
    if (s == FR_OK) s = fr_run_loop(&r, last, res);
    s = fr_run_finish(&r, s, 0);
out:
    free(ao_saved);
    free(ao);
    free(eo_saved);
    free(eo);
    return s;
}
