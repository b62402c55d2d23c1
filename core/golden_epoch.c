/* Golden case of a whole training update: one Flow-GRPO epoch of a tiny gmm2d model
 * (golden/README.md "epoch.flow_grpo"; flowrl/run.h, core/algo/flow_grpo.c; docs/algorithms/advantages.md §1.1; docs/algorithms/flow-grpo.md §2;
 * docs/algorithms/samplers.md §3).
 *
 * Inputs: the model's parameters (in.<NAME>, the checkpoint names of flowrl/model.h, drawn
 * from the golden Philox stream; the frozen KL reference is the same weights, as
 * the run loop makes it from the base), its config (param.model.*, the checkpoint's
 * model.* metadata) and every option the epoch's bits depend on (float options as 0-d
 * tensors, integers and names as param.*). The computation writes a base checkpoint and
 * runs fr_run_new with an audit tap for one epoch into a temporary directory with the backend under
 * test; every audit.log record of the epoch becomes out.<NAME> with the tensor whose digest
 * the record holds (a 0-d F32 for a scalar record). So each MANIFEST digest of an output is
 * also the digest that audit.log prints for that record. */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/golden_internal.h"
#include "flowrl/audit.h"
#include "flowrl/cond.h"
#include "flowrl/digest.h"
#include "core/algo/flow_grpo.h"
#include "flowrl/enum_names.h"
#include "flowrl/run.h"
#include "flowrl/model.h"
#include "flowrl/task.h"

/* The model: gmm2d-s narrowed to H 8, F 16, E 8, one block (about 550 parameters), so the
 * file stays small while every layer kind (linear, embedding, layer norm, SiLU, residual)
 * is in the graph. */
enum { EP_H = 8, EP_F = 16, EP_E = 8, EP_BLOCKS = 1 };

static fr_status epoch_config(fr_model_config *mc)
{
    int64_t n_cond, n_slots;
    fr_cond_dims(&fr_task_gmm2d, &n_cond, &n_slots);
    FR_TRY(fr_model_preset("gmm2d-s", fr_task_gmm2d.D, n_cond, mc));
    mc->n_slots = n_slots;
    mc->H = EP_H;
    mc->F = EP_F;
    mc->E = EP_E;
    mc->n_blocks = EP_BLOCKS;
    snprintf(mc->preset, sizeof mc->preset, "custom");
    return fr_model_config_check(mc);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The tiny model's config (param.model.*) and parameters (in.<NAME>), shared with the
 * reward-gradient cases (core/golden_rgrad.c). */
fr_status fr_golden_model_in(fr_golden_in *g)
{
    fr_model_config mc;
    FR_TRY(epoch_config(&mc));
    /* the config as the checkpoint's metadata, each key under param. */
    fr_st_file meta;
    fr_st_init(&meta);
    fr_status s = fr_model_config_to_meta(&mc, &meta);
    for (size_t i = 0; s == FR_OK && i < meta.n_meta; i++) s = fr_gi_param_str(g, meta.meta[i].key, meta.meta[i].value);
    fr_st_free(&meta);
    FR_TRY(s);

    /* Parameters, every one drawn (none zero, unlike fr_model_init's zero output layer, so
     * that every gradient is nonzero): Linear weights U(±1/sqrt(fan_in)) as torch.nn.Linear,
     * the condition table N(0, 1) as torch.nn.Embedding, layer-norm gains U(0.5, 1.5),
     * biases U(±0.2). */
    fr_model m;
    fr_backend host; /* the model only lends its parameter list */
    FR_TRY(fr_backend_open(&host, "ref", 0, 1));
    FR_TRY(fr_model_alloc(&m, &host, &mc));
    for (int i = 0; s == FR_OK && i < m.n_params; i++) {
        const char *nm = m.params[i].name;
        const fr_tensor *v = m.params[i].value;
        if (strcmp(nm, "cond.weight") == 0) {
            s = fr_gi_normal(g, nm, v->ndim, v->shape, 1.0f, NULL);
        } else if (v->ndim == 2) {
            float b = (float)(1.0 / sqrt((double)v->shape[1]));
            s = fr_gi_uniform(g, nm, v->ndim, v->shape, -b, b, NULL);
        } else if (ends_with(nm, "ln.weight") || ends_with(nm, "norm.weight")) {
            s = fr_gi_uniform(g, nm, v->ndim, v->shape, 0.5f, 1.5f, NULL);
        } else {
            s = fr_gi_uniform(g, nm, v->ndim, v->shape, -0.2f, 0.2f, NULL);
        }
    }
    fr_model_free(&m);
    return s;
}

static fr_status epoch_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    fr_status s = fr_golden_model_in(g);
    FR_TRY(s);
    /* the note's text is part of the golden file (it names cff6d07's trainer; today the run
     * loop, core/run.c, copies the base into both) */
    FR_TRY(fr_gi_note(g, "params", "in.<NAME>: the policy before the epoch and the frozen KL reference "
                                   "(fr_grpo_train_run copies the base into both)"));

    /* Options: Flow-GRPO's defaults scaled down, with CFG 1.5 on in training
     * and a learning rate / clip range that move the policy enough that the second update's
     * ratios straddle the clip band. */
    FR_TRY(fr_gi_param_str(g, "task", fr_task_gmm2d.name));
    FR_TRY(fr_gi_param_str(g, "reward", fr_task_gmm2d.reward_names[0]));
    FR_TRY(fr_gi_param(g, "seed", 7));
    FR_TRY(fr_gi_param_str(g, "sampler", fr_sampler_name(FR_SAMPLER_SDE)));
    FR_TRY(fr_gi_param(g, "T", 4));
    FR_TRY(fr_gi_param_str(g, "grid", fr_grid_name(FR_GRID_DIFFUSERS)));
    FR_TRY(fr_gi_scalar_f64(g, "shift", 3.0));
    FR_TRY(fr_gi_scalar(g, "noise", 0.7f));
    FR_TRY(fr_gi_scalar(g, "cfg", 1.5f));
    FR_TRY(fr_gi_param(g, "train_cfg", 1));
    FR_TRY(fr_gi_param(g, "P", 2));
    FR_TRY(fr_gi_param(g, "G", 4));
    FR_TRY(fr_gi_scalar_f64(g, "timestep_fraction", 0.99));
    FR_TRY(fr_gi_param_str(g, "window", fr_flow_grpo_window_names[FR_FG_WINDOW_NONE]));
    FR_TRY(fr_gi_param_str(g, "guard", fr_flow_grpo_guard_names[FR_FG_GUARD_OFF]));
    FR_TRY(fr_gi_scalar_f64(g, "clip_range", 2e-3));
    FR_TRY(fr_gi_scalar(g, "adv_clip", FR_GRPO_ADV_CLIP_MAX));
    FR_TRY(fr_gi_scalar(g, "beta", 0.04f));
    FR_TRY(fr_gi_param_str(g, "kl_form", fr_flow_grpo_kl_names[FR_KL_CODE]));
    FR_TRY(fr_gi_param_str(g, "adv", fr_train_adv_name(FR_TRAIN_ADV_PROMPT)));
    FR_TRY(fr_gi_param(g, "global_std", 1));
    FR_TRY(fr_gi_param(g, "num_batches", 4));
    FR_TRY(fr_gi_param(g, "grad_accum", 2));
    FR_TRY(fr_gi_scalar(g, "lr", 1e-3f));
    FR_TRY(fr_gi_scalar(g, "beta1", 0.9f));
    FR_TRY(fr_gi_scalar(g, "beta2", 0.999f));
    FR_TRY(fr_gi_scalar(g, "adam_eps", 1e-8f));
    FR_TRY(fr_gi_scalar(g, "weight_decay", 1e-4f));
    FR_TRY(fr_gi_scalar(g, "max_grad_norm", 1.0f));
    FR_TRY(fr_gi_param_str(g, "ema", "off"));
    FR_TRY(fr_gi_param(g, "epochs", 1));
    return fr_gi_note(g, "unused", "window none, adv prompt and EMA off leave fast_*, mix_*, ddpo_* and "
                                   "ema_every unread; rollout_batch does not change the bits; no evaluation");
}

/* ---- compute ------------------------------------------------------------------------------ */

static fr_status enum_param(const fr_st_file *in, const char *key, const char **v)
{
    char k[64];
    snprintf(k, sizeof k, "param.%s", key);
    *v = fr_st_get_meta(in, k);
    return *v ? FR_OK : fr_fail(FR_ERR_FORMAT, "golden: metadata %s is missing", k);
}

static fr_status int_param(const fr_st_file *in, const char *key, long long lo, long long hi, int64_t *v)
{
    long long x;
    FR_TRY(fr_go_param(in, key, lo, hi, &x));
    *v = x;
    return FR_OK;
}

/* Every option from the file; the ones it does not hold keep Flow-GRPO's defaults, which
 * this configuration never reads (note.unused). fr_run_new checks them. */
static fr_status read_opts(const fr_st_file *in, fr_run_opts *o, fr_flow_grpo_opts *fo)
{
    FR_TRY(fr_run_opts_defaults(NULL, o, &fr_algo_flow_grpo, fo));
    const char *sv;
    int64_t iv;
    int e;
    FR_TRY(enum_param(in, "task", &sv));
    snprintf(o->c.task, sizeof o->c.task, "%s", sv);
    FR_TRY(enum_param(in, "reward", &sv));
    snprintf(o->c.reward, sizeof o->c.reward, "%s", sv);
    FR_TRY(int_param(in, "seed", 0, UINT32_MAX, &iv));
    o->run.seed = (uint32_t)iv;
    FR_TRY(enum_param(in, "sampler", &sv));
    FR_TRY(fr_sampler_from_name(sv, &o->smp.sampler));
    FR_TRY(int_param(in, "T", 1, 1000, &o->smp.num_steps));
    FR_TRY(enum_param(in, "grid", &sv));
    FR_TRY(fr_grid_from_name(sv, &o->smp.grid));
    FR_TRY(fr_go_scalar_f64(in, "shift", &o->smp.shift));
    FR_TRY(fr_go_scalar(in, "noise", &o->smp.noise_level));
    FR_TRY(fr_go_scalar(in, "cfg", &o->smp.cfg));
    FR_TRY(int_param(in, "train_cfg", -1, 1, &iv));
    fo->train_cfg = (int)iv;
    FR_TRY(int_param(in, "P", 1, 1 << 16, &o->c.prompts));
    FR_TRY(int_param(in, "G", 1, 1 << 16, &o->c.group));
    FR_TRY(fr_go_scalar_f64(in, "timestep_fraction", &o->c.timestep_fraction));
    FR_TRY(enum_param(in, "window", &sv));
    FR_TRY(fr_enum_parse(fr_flow_grpo_window_names, sv, &e, "window"));
    fo->window = (fr_fg_window)e;
    FR_TRY(enum_param(in, "guard", &sv));
    FR_TRY(fr_enum_parse(fr_flow_grpo_guard_names, sv, &e, "guard"));
    fo->guard = (fr_fg_guard)e;
    FR_TRY(fr_go_scalar_f64(in, "clip_range", &o->c.clip_range));
    FR_TRY(fr_go_scalar(in, "adv_clip", &o->c.adv_clip));
    FR_TRY(fr_go_scalar(in, "beta", &o->c.beta));
    FR_TRY(enum_param(in, "kl_form", &sv));
    FR_TRY(fr_enum_parse(fr_flow_grpo_kl_names, sv, &e, "kl_form"));
    fo->kl_form = (fr_kl_form)e;
    FR_TRY(enum_param(in, "adv", &sv));
    if (strcmp(sv, "prompt") != 0) return fr_fail(FR_ERR_FORMAT, "golden: param.adv '%s', this case runs 'prompt'", sv);
    o->c.adv = FR_TRAIN_ADV_PROMPT;
    FR_TRY(int_param(in, "global_std", 0, 1, &iv));
    o->c.global_std = (int)iv;
    FR_TRY(int_param(in, "num_batches", 1, 1 << 16, &o->c.num_batches));
    FR_TRY(int_param(in, "grad_accum", 1, 1 << 16, &o->c.grad_accum));
    /* the case stores its AdamW hyper-parameters as F32 (written before they were double):
     * widened, as a float32 torch config would be */
    float lr, b1, b2, eps, wd;
    FR_TRY(fr_go_scalar(in, "lr", &lr));
    FR_TRY(fr_go_scalar(in, "beta1", &b1));
    FR_TRY(fr_go_scalar(in, "beta2", &b2));
    FR_TRY(fr_go_scalar(in, "adam_eps", &eps));
    FR_TRY(fr_go_scalar(in, "weight_decay", &wd));
    o->opt.lr = lr;
    o->opt.adam_beta1 = b1;
    o->opt.adam_beta2 = b2;
    o->opt.adam_eps = eps;
    o->opt.weight_decay = wd;
    FR_TRY(fr_go_scalar(in, "max_grad_norm", &o->opt.max_grad_norm));
    FR_TRY(enum_param(in, "ema", &sv));
    if (strcmp(sv, "off") != 0) return fr_fail(FR_ERR_FORMAT, "golden: param.ema '%s', this case runs without EMA", sv);
    o->opt.ema_decay = -1.0f;
    FR_TRY(int_param(in, "epochs", 1, 1, &o->run.epochs));
    o->ev.eval_n = 0;
    o->run.keep_checkpoints = 0;
    return FR_OK;
}

fr_status fr_golden_model_from_in(fr_backend *be, const fr_st_file *in, fr_model *m)
{
    fr_st_file meta;
    fr_st_init(&meta);
    fr_status s = FR_OK;
    for (size_t i = 0; s == FR_OK && i < in->n_meta; i++)
        if (strncmp(in->meta[i].key, "param.model.", 12) == 0)
            s = fr_st_set_meta(&meta, in->meta[i].key + 6, in->meta[i].value);
    fr_model_config mc;
    if (s == FR_OK) s = fr_model_config_from_meta(&meta, &mc);
    fr_st_free(&meta);
    FR_TRY(s);
    FR_TRY(fr_model_alloc(m, be, &mc));
    s = fr_model_values_from_st(m, in, "in.");
    if (s != FR_OK) fr_model_free(m);
    return s;
}

/* The base checkpoint at path: the config of param.model.*, the values of in.<NAME>. */
static fr_status write_base(fr_backend *be, const fr_st_file *in, const char *path)
{
    fr_model m;
    FR_TRY(fr_golden_model_from_in(be, in, &m));
    fr_status s = fr_model_save(&m, path);
    fr_model_free(&m);
    return s;
}

typedef struct {
    fr_st_file *out;
} tap_ctx;

static fr_status tap(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    tap_ctx *c = user;
    if (step != 1) return fr_fail(FR_ERR_ARG, "golden epoch: a record of step %lld, expected one epoch", (long long)step);
    char key[FR_AUDIT_MAX_NAME + 8];
    snprintf(key, sizeof key, "out.%s", name);
    return fr_st_add(c->out, key, t);
}

/* The tap saw exactly the records audit.log holds: same names in the same order, and each
 * tensor's digest is the record's digest (so out.* is "every intermediate the audit log
 * names", with the bits it digested). */
static fr_status same_as_log(const char *run, const fr_st_file *out)
{
    char path[FR_OPT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", run, FR_AUDIT_LOG_NAME);
    fr_audit_log log;
    FR_TRY(fr_audit_read(&log, path));
    fr_status s = FR_OK;
    if (log.n_steps != 1 || log.steps[0].n != out->n)
        s = fr_fail(FR_ERR_MISMATCH, "golden epoch: %s has %zu steps, %zu records; the tap saw %zu", path,
                    log.n_steps, log.n_steps ? log.steps[0].n : 0, out->n);
    for (size_t k = 0; s == FR_OK && k < out->n; k++) {
        const fr_audit_record *r = &log.steps[0].recs[k];
        if (strcmp(out->entries[k].name + 4, r->name) != 0 || fr_tensor_digest(&out->entries[k].t) != r->digest)
            s = fr_fail(FR_ERR_MISMATCH, "golden epoch: record %zu of %s is %s, the tap saw %s (or its digest differs)",
                        k, path, r->name, out->entries[k].name);
    }
    fr_audit_log_free(&log);
    return s;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static fr_status epoch_compute(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    fr_run_opts o;
    fr_flow_grpo_opts fo;
    FR_TRY(read_opts(in, &o, &fo));
    const char *tmp = getenv("TMPDIR");
    char dir[FR_OPT_PATH_MAX / 2], base[FR_OPT_PATH_MAX];
    int w = snprintf(dir, sizeof dir, "%s/flowrl-golden-epoch-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (w < 0 || (size_t)w >= sizeof dir) return fr_fail(FR_ERR_ARG, "golden epoch: TMPDIR '%s' is too long", tmp);
    if (!mkdtemp(dir)) return fr_fail(FR_ERR_IO, "golden epoch: mkdtemp %s: %s", dir, strerror(errno));
    snprintf(base, sizeof base, "%s/base.safetensors", dir);
    snprintf(o.c.base, sizeof o.c.base, "%s", base);
    snprintf(o.run.out, sizeof o.run.out, "%s/run", dir);
    fr_status s = write_base(d->be, in, base);
    if (s == FR_OK) {
        tap_ctx tc = {out};
        fr_run_result res;
        fr_run_env env = {d->be, NULL, tap, &tc};
        s = fr_run_new(&o, &fo, &env, &res);
        if (s == FR_OK && res.epochs_done != 1)
            s = fr_fail(FR_ERR_ARG, "golden epoch: the run did %lld epochs", (long long)res.epochs_done);
        if (s == FR_OK) s = same_as_log(o.run.out, out);
    }
    /* the run directory is scratch: its records are in `out` */
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && s == FR_OK)
        s = fr_fail(FR_ERR_IO, "golden epoch: cannot remove %s: %s", dir, strerror(errno));
    return s;
}

/* --fast tolerance, measured on this case (golden/README.md "Tolerances"): with every vendor
 * kernel forced (FR_FAST_ALWAYS), 1, 2 and 3 threads, the largest |got − want| is 4.8e-7
 * (out.u1.ratio, |want| ~ 1), the largest relative difference 4.5e-4 at a gradient element
 * of |want| 1.6e-6 (cancellation). With rel 1e-5 every element passes from abs 1.6e-9 on;
 * with abs 1e-8 from rel 6.4e-7 on: (1e-8, 1e-5) left 6x and 16x there. On an AMD EPYC (OpenBLAS's Zen
 * kernels) out.mean, of scale 1, differs by 1 ulp of 1.0 at |want| 0.006 (rel 2e-5): abs is 2 ulp of
 * 1.0, 2.4e-7 (golden/README.md "Tolerances"). A clip-band or
 * zero-advantage decision that flips under the vendor kernels would move a gradient by far
 * more and fail, as it should. */
const fr_golden_case fr_golden_cases_epoch[] = {
    {"epoch.flow_grpo",
     "one Flow-GRPO epoch of a tiny gmm2d model (H 8, 1 block): 8 SDE rollouts of 4 steps, CFG 1.5, "
     "per-prompt advantages, 2 AdamW updates of 2 accumulated batches, beta 0.04 KL",
     FR_GOLDEN_ALL_OPS, 0, {2.4e-7f, 1e-5f}, epoch_in, epoch_compute},
};
const size_t fr_golden_n_epoch = sizeof fr_golden_cases_epoch / sizeof fr_golden_cases_epoch[0];
