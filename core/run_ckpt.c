/* Checkpoints of a run (flowrl/run.h): weights, EMA, AdamW state, the DDPO tracker's history
 * and the algorithm's state, with the run's identity metadata. On load: the file's own
 * per-tensor digests (core/checkpoint.c), the metadata against config.json and the base, and
 * the parameters against audit.log's records of the same step, so a corrupted or foreign
 * checkpoint is refused with one line naming the file and the tensor. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run_internal.h"
#include "flowrl/buildinfo.h"
#include "flowrl/checkpoint.h"
#include "flowrl/digest.h"

/* DDPO's history as a (n_train, buffer) table and its lengths, so a resumed tracker has it. */
static fr_status ddpo_to_st(const fr_run *r, fr_st_file *f)
{
    const int64_t ng = r->task->n_train, cap = r->o->c.ddpo_buffer;
    fr_tensor h, n;
    int64_t sh[2] = {ng, cap};
    FR_TRY(fr_tensor_alloc(&h, FR_F32, 2, sh));
    fr_status s = fr_tensor_alloc(&n, FR_I64, 1, &ng);
    for (int64_t g = 0; g < ng && s == FR_OK; g++)
        s = fr_ddpo_tracker_history(r->priv->ddpo, g, (float *)h.data + g * cap, cap, (int64_t *)n.data + g);
    if (s == FR_OK) s = fr_st_add(f, "ddpo.history", &h);
    if (s == FR_OK) s = fr_st_add(f, "ddpo.count", &n);
    fr_tensor_free(&h);
    fr_tensor_free(&n);
    return s;
}

static fr_status ddpo_from_st(fr_run *r, const fr_st_file *f, const char *path)
{
    const int64_t ng = r->task->n_train, cap = r->o->c.ddpo_buffer;
    const fr_tensor *h = fr_st_get(f, "ddpo.history"), *n = fr_st_get(f, "ddpo.count");
    if (!h || !n || h->dtype != FR_F32 || h->ndim != 2 || h->shape[0] != ng || h->shape[1] != cap ||
        n->dtype != FR_I64 || n->ndim != 1 || n->shape[0] != ng)
        return fr_fail(FR_ERR_FORMAT, "%s: ddpo.history / ddpo.count missing or of the wrong shape", path);
    for (int64_t g = 0; g < ng; g++) {
        int64_t len = ((const int64_t *)n->data)[g];
        if (len < 0 || len > cap)
            return fr_fail(FR_ERR_FORMAT, "%s: ddpo.count[%lld] = %lld", path, (long long)g, (long long)len);
        if (len == 0) continue;
        /* appending the history oldest first rebuilds the deque exactly */
        int64_t *grp = fr_malloc((size_t)len * sizeof *grp);
        float *tmp = fr_malloc((size_t)len * sizeof *tmp);
        fr_status s = (grp && tmp) ? FR_OK : FR_ERR_NOMEM;
        for (int64_t k = 0; k < len && s == FR_OK; k++) grp[k] = g;
        if (s == FR_OK) s = fr_ddpo_tracker_update(r->priv->ddpo, len, (const float *)h->data + g * cap, grp, tmp);
        free(grp);
        free(tmp);
        FR_TRY(s);
    }
    return FR_OK;
}

/* An environment algorithm's list (no model configuration): values, AdamW moments and step. */
static fr_status env_params_to_st(fr_run *r, fr_st_file *f)
{
    f->digests = 1;
    FR_TRY(fr_st_set_meta(f, "flowrl.version", fr_version()));
    FR_TRY(fr_run_save_params(r, f, "", r->pol.values));
    FR_TRY(fr_run_save_params(r, f, "optim.m.", r->adam.m));
    FR_TRY(fr_run_save_params(r, f, "optim.v.", r->adam.v));
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, r->adam.step);
    return fr_st_set_meta(f, "optim.step", b);
}

static fr_status env_params_from_st(fr_run *r, const fr_st_file *f, const char *path)
{
    FR_TRY(fr_run_load_params(r, f, path, "", r->pol.values));
    FR_TRY(fr_run_load_params(r, f, path, "optim.m.", r->adam.m));
    FR_TRY(fr_run_load_params(r, f, path, "optim.v.", r->adam.v));
    const char *st = fr_st_get_meta(f, "optim.step");
    char *end = NULL;
    long long k = st ? strtoll(st, &end, 10) : -1;
    if (!st || end == st || *end || k < 0) return fr_fail(FR_ERR_FORMAT, "%s: metadata 'optim.step' is '%s', not a count", path, st ? st : "(absent)");
    r->adam.step = k;
    return FR_OK;
}

/* The EMA shadow of the adapter (--ema-decay with --lora-rank) as FR_LORA_EMA_FILE, through the
 * adapter "eval" that fr_run_eval_current evaluates it in: the public Flow-GRPO code evaluates the
 * EMA of its LoRA weights. Training reads neither. */
static fr_status save_ema_adapter(fr_run *r)
{
    char path[FR_TRAIN_PATH_MAX + 64];
    FR_TRY(fr_train_path(path, sizeof path, r->dir, FR_LORA_EMA_FILE));
    fr_model em;
    FR_TRY(fr_run_model_like(r, "eval", &em));
    fr_status s = fr_ema_copy_to(r->be, &r->ema, em.params, em.n_params);
    if (s == FR_OK) s = fr_lora_save(r->lora, em.adapter, r->base_digest, path);
    fr_model_free(&em);
    return s;
}

fr_status fr_run_save_checkpoint(fr_run *r, int64_t epoch)
{
    char rel[64], path[FR_TRAIN_PATH_MAX + 64], b[32];
    fr_checkpoint_name(epoch, rel, sizeof rel);
    FR_TRY(fr_train_path(path, sizeof path, r->dir, rel));
    fr_st_file f;
    fr_st_init(&f);
    fr_status s = r->algo->on_env ? env_params_to_st(r, &f)
                                  : fr_checkpoint_to_st(&f, &r->pol, r->have_ema ? &r->ema : NULL, &r->adam);
    if (s == FR_OK && r->priv->ddpo) s = ddpo_to_st(r, &f);
    if (s == FR_OK && r->algo->save) s = r->algo->save(r, r->priv->state, &f);
    if (s == FR_OK) s = fr_run_meta(r, &f);
    snprintf(b, sizeof b, "%lld", (long long)epoch);
    if (s == FR_OK) s = fr_st_set_meta(&f, "epoch", b);
    if (s == FR_OK) s = fr_st_set_meta(&f, "step", b);
    /* RNG coordinates of the next epoch: key (seed, purpose), c0 = epoch */
    snprintf(b, sizeof b, "%" PRIu32, r->o->run.seed);
    if (s == FR_OK) s = fr_st_set_meta(&f, "seed", b);
    snprintf(b, sizeof b, "%lld", (long long)epoch);
    if (s == FR_OK) s = fr_st_set_meta(&f, "rng.next_c0", b);
    snprintf(b, sizeof b, "%" PRIu64, r->priv->nfe_total);
    if (s == FR_OK) s = fr_st_set_meta(&f, "nfe.total", b);
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    /* LoRA: the trained adapter as a PEFT-keyed file beside the checkpoints (flowrl/lora.h), and
     * with an EMA the EMA of the adapter beside it */
    if (s == FR_OK && r->lora) s = fr_train_path(path, sizeof path, r->dir, FR_LORA_ADAPTER_FILE);
    if (s == FR_OK && r->lora) s = fr_lora_save(r->lora, 0, r->base_digest, path);
    if (s == FR_OK && r->lora && r->have_ema) s = save_ema_adapter(r);
    if (s == FR_OK) r->priv->ckpt_written++;
    if (s == FR_OK) s = fr_train_prune_checkpoints(r->dir, r->o->run.keep_checkpoints);
    return s;
}

/* The value a checkpoint written by cff6d07 stored under a renamed key: "train.<old>" where
 * the row's alias is "--old-name". */
static const char *meta_get(const fr_st_file *f, const fr_opts *o, const char *key)
{
    const char *have = fr_st_get_meta(f, key);
    if (have || strncmp(key, "train.", 6) != 0) return have;
    void *st;
    const fr_opt *row = fr_opts_find(o, key + 6, &st);
    if (!row || !row->alias || strncmp(row->alias, "--", 2) != 0) return NULL;
    char old[96];
    int w = snprintf(old, sizeof old, "train.%s", row->alias + 2);
    if (w < 0 || (size_t)w >= sizeof old) return NULL;
    for (char *c = old; *c; c++)
        if (*c == '-') *c = '_';
    return fr_st_get_meta(f, old);
}

/* Two texts of one option are the same value when they format alike after parsing (older
 * files may spell a number differently). */
static int same_value(const fr_opts *o, const char *key, const char *a, const char *b)
{
    if (strcmp(a, b) == 0) return 1;
    if (strncmp(key, "train.", 6) != 0) return 0;
    void *st;
    const fr_opt *row = fr_opts_find(o, key + 6, &st);
    if (!row || row->kind == FR_OPT_STR) return 0;
    unsigned char x[64], y[64];
    if (row->size > sizeof x) return 0;
    fr_opt probe = *row;
    probe.off = 0;
    char fa[128], fb[128];
    if (fr_opt_set(&probe, x, a, key) != FR_OK || fr_opt_set(&probe, y, b, key) != FR_OK) return 0;
    fr_opt_format(&probe, x, fa, sizeof fa);
    fr_opt_format(&probe, y, fb, sizeof fb);
    return strcmp(fa, fb) == 0;
}

/* The parameters' digests against audit.log's records of step `epoch` (where present). */
static fr_status cross_check_audit(fr_run *r, int64_t epoch, const char *path)
{
    char alog[FR_TRAIN_PATH_MAX + 32];
    FR_TRY(fr_train_path(alog, sizeof alog, r->dir, FR_AUDIT_LOG_NAME));
    fr_audit_log log;
    if (fr_audit_read(&log, alog) != FR_OK) return FR_OK; /* the resume path reports a bad log */
    const fr_audit_step *st = NULL;
    for (size_t i = 0; i < log.n_steps; i++)
        if (log.steps[i].step == epoch) st = &log.steps[i];
    fr_status s = FR_OK;
    for (int p = 0; st && p < r->pol.n_params && s == FR_OK; p++) {
        const char *name = r->pol.params[p].name;
        for (size_t k = 0; k < st->n; k++) {
            if (strcmp(st->recs[k].name, name) != 0) continue;
            fr_tensor h; /* the parameter copied out (backend memory) */
            s = fr_run_host_copy(r, &r->pol.values[p], &h);
            if (s != FR_OK) break;
            uint64_t d = fr_tensor_digest(&h);
            fr_tensor_free(&h);
            if (d != st->recs[k].digest)
                s = fr_fail(FR_ERR_MISMATCH,
                            "%s: tensor %s: digest %016" PRIx64 " differs from audit.log's step %lld record "
                            "%016" PRIx64 " (a corrupted or foreign checkpoint; --from-step N resumes from an "
                            "earlier one)",
                            path, name, d, (long long)epoch, st->recs[k].digest);
            break;
        }
    }
    fr_audit_log_free(&log);
    return s;
}

fr_status fr_run_load_checkpoint(fr_run *r, int64_t epoch)
{
    char rel[64], path[FR_TRAIN_PATH_MAX + 64];
    fr_checkpoint_name(epoch, rel, sizeof rel);
    FR_TRY(fr_train_path(path, sizeof path, r->dir, rel));
    fr_st_file f, want;
    FR_TRY(fr_st_read(&f, path)); /* verifies the per-tensor digests */
    fr_opts o;
    fr_run_bind(&o, r->o, r->algo, r->ao);
    fr_st_init(&want);
    fr_status s = fr_run_meta(r, &want);
    for (size_t i = 0; s == FR_OK && i < want.n_meta; i++) {
        const char *key = want.meta[i].key, *have = meta_get(&f, &o, key);
        /* an option newer than the checkpoint: its default is what the run used */
        void *st;
        const fr_opt *row = strncmp(key, "train.", 6) == 0 ? fr_opts_find(&o, key + 6, &st) : NULL;
        if (!have && row && row->def && same_value(&o, key, row->def, want.meta[i].value)) continue;
        if (!have || !same_value(&o, key, have, want.meta[i].value))
            s = fr_fail(FR_ERR_MISMATCH, "%s: metadata '%s' is '%s', config.json and the base give '%s'", path, key,
                        have ? have : "(absent)", want.meta[i].value);
    }
    fr_st_free(&want);
    if (s == FR_OK)
        s = r->algo->on_env ? env_params_from_st(r, &f, path)
                            : fr_checkpoint_from_st(&f, &r->pol, r->have_ema ? &r->ema : NULL, &r->adam);
    if (s == FR_OK && r->priv->ddpo) s = ddpo_from_st(r, &f, path);
    r->epoch = epoch; /* the epochs done, for the algorithm's load */
    /* the run's forward-equivalents so far (0 in a checkpoint older than the counter) */
    const char *nfe = fr_st_get_meta(&f, "nfe.total");
    char *end = NULL;
    r->priv->nfe_total = nfe ? strtoull(nfe, &end, 10) : 0;
    if (s == FR_OK && nfe && (end == nfe || *end))
        s = fr_fail(FR_ERR_FORMAT, "%s: metadata 'nfe.total' is '%s', not a count", path, nfe);
    if (s == FR_OK && r->algo->load) s = r->algo->load(r, r->priv->state, &f, path);
    fr_st_free(&f);
    if (s == FR_OK && r->priv->writer) s = cross_check_audit(r, epoch, path); /* rank 0 owns audit.log */
    return s;
}

fr_status fr_run_pick_checkpoint(const fr_run *r, int64_t from_step, int64_t *last)
{
    int64_t *steps, n;
    FR_TRY(fr_train_list_checkpoints(r->dir, &steps, &n));
    fr_status s = FR_OK;
    *last = n ? steps[n - 1] : 0;
    if (from_step > 0) {
        int found = 0;
        for (int64_t i = 0; i < n; i++) found |= steps[i] == from_step;
        if (!found) {
            char list[256] = "";
            for (int64_t i = 0; i < n; i++) {
                size_t l = strlen(list);
                snprintf(list + l, sizeof list - l, "%s%lld", i ? ", " : "", (long long)steps[i]);
            }
            s = fr_fail(FR_ERR_ARG, "train: %s has no checkpoint step-%lld (it has: %s)", r->dir, (long long)from_step,
                        n ? list : "none");
        }
        *last = from_step;
    }
    free(steps);
    return s;
}

/* A checkpoint that does not load: the message gains the newest older checkpoint that
 * verifies (per-tensor digests), to resume from with --from-step. */
void fr_run_offer_intact(const fr_run *r, int64_t bad, fr_status s)
{
    char first[1024];
    snprintf(first, sizeof first, "%s", fr_last_error());
    int64_t *steps, n, ok = 0;
    if (fr_train_list_checkpoints(r->dir, &steps, &n) != FR_OK) {
        fr_fail(s, "%s", first);
        return;
    }
    for (int64_t i = n - 1; i >= 0 && !ok; i--) {
        char rel[64], p[FR_TRAIN_PATH_MAX + 64];
        fr_checkpoint_name(steps[i], rel, sizeof rel);
        if (steps[i] < bad && fr_train_path(p, sizeof p, r->dir, rel) == FR_OK && fr_checkpoint_verify(p) == FR_OK)
            ok = steps[i];
    }
    free(steps);
    if (ok)
        fr_fail(s, "%s; step-%lld verifies: flowrl train --resume %s --from-step %lld", first, (long long)ok, r->dir,
                (long long)ok);
    else
        fr_fail(s, "%s; no earlier checkpoint verifies", first);
}
