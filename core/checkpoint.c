/* Training checkpoints (flowrl/checkpoint.h). */
#include "flowrl/checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/buildinfo.h"

/* ts: a list shaped like m's parameters, in be's memory. */
static fr_status add_list(fr_st_file *f, fr_backend *be, const fr_model *m, const fr_tensor *ts,
                          const char *prefix)
{
    char nm[256];
    for (int i = 0; i < m->n_params; i++) {
        if ((size_t)snprintf(nm, sizeof nm, "%s%s", prefix, m->params[i].name) >= sizeof nm)
            return fr_fail(FR_ERR_ARG, "checkpoint: tensor name '%s%s' is too long", prefix,
                           m->params[i].name);
        FR_TRY(fr_dev_tensor_to_st(be, f, nm, &ts[i]));
    }
    return FR_OK;
}

fr_status fr_checkpoint_to_st(fr_st_file *f, const fr_model *m, const fr_ema *ema,
                              const fr_adamw_state *opt)
{
    f->digests = 1; /* every tensor, the caller's included, gets its digest when written */
    FR_TRY(fr_model_config_to_meta(&m->cfg, f));
    FR_TRY(fr_st_set_meta(f, "flowrl.version", fr_version()));
    FR_TRY(fr_model_values_to_st(m, f, ""));
    if (ema) {
        if (ema->n != m->n_params)
            return fr_fail(FR_ERR_ARG, "checkpoint: EMA holds %d tensors, the model %d", ema->n,
                           m->n_params);
        FR_TRY(add_list(f, ema->be, m, ema->shadow, "ema."));
    }
    if (opt) {
        if (opt->n != m->n_params)
            return fr_fail(FR_ERR_ARG, "checkpoint: AdamW state holds %d tensors, the model %d",
                           opt->n, m->n_params);
        FR_TRY(add_list(f, opt->be, m, opt->m, "optim.m."));
        FR_TRY(add_list(f, opt->be, m, opt->v, "optim.v."));
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRId64, opt->step);
        FR_TRY(fr_st_set_meta(f, "optim.step", buf));
    }
    return FR_OK;
}

static fr_status read_list(const fr_st_file *f, fr_backend *be, const fr_model *m, fr_tensor *ts,
                           const char *prefix)
{
    char nm[256];
    for (int i = 0; i < m->n_params; i++) {
        snprintf(nm, sizeof nm, "%s%s", prefix, m->params[i].name);
        FR_TRY(fr_dev_tensor_from_st(be, f, nm, &ts[i]));
    }
    return FR_OK;
}

/* FR_OK if every model.* metadata key of cfg has the same value in f; else names the
 * first that differs. */
static fr_status config_matches(const fr_st_file *f, const fr_model_config *cfg)
{
    fr_st_file want;
    fr_st_init(&want);
    fr_status s = fr_model_config_to_meta(cfg, &want);
    for (size_t i = 0; s == FR_OK && i < want.n_meta; i++) {
        const char *have = fr_st_get_meta(f, want.meta[i].key);
        if (!have)
            s = fr_fail(FR_ERR_FORMAT, "checkpoint metadata: missing '%s'", want.meta[i].key);
        else if (strcmp(have, want.meta[i].value) != 0)
            s = fr_fail(FR_ERR_MISMATCH, "checkpoint metadata: '%s' = '%s', expected '%s'",
                        want.meta[i].key, have, want.meta[i].value);
    }
    fr_st_free(&want);
    return s;
}

fr_status fr_checkpoint_from_st(const fr_st_file *f, fr_model *m, fr_ema *ema,
                                fr_adamw_state *opt)
{
    FR_TRY(config_matches(f, &m->cfg));
    FR_TRY(fr_model_values_from_st(m, f, ""));
    if (ema) {
        if (ema->n != m->n_params)
            return fr_fail(FR_ERR_ARG, "checkpoint: EMA holds %d tensors, the model %d", ema->n,
                           m->n_params);
        FR_TRY(read_list(f, ema->be, m, ema->shadow, "ema."));
    }
    if (opt) {
        if (opt->n != m->n_params)
            return fr_fail(FR_ERR_ARG, "checkpoint: AdamW state holds %d tensors, the model %d",
                           opt->n, m->n_params);
        FR_TRY(read_list(f, opt->be, m, opt->m, "optim.m."));
        FR_TRY(read_list(f, opt->be, m, opt->v, "optim.v."));
        const char *s = fr_st_get_meta(f, "optim.step");
        if (!s) return fr_fail(FR_ERR_FORMAT, "checkpoint metadata: missing 'optim.step'");
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || *end || v < 0)
            return fr_fail(FR_ERR_FORMAT,
                           "checkpoint metadata: 'optim.step' = '%s', expected an integer >= 0", s);
        opt->step = (int64_t)v;
    }
    return FR_OK;
}

fr_status fr_checkpoint_verify(const char *path)
{
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path)); /* checks the header, the layout and every stored digest */
    fr_st_free(&f);
    return FR_OK;
}
