/* The options every algorithm shares (flowrl/run.h fr_run_common), their binding with the
 * shared groups and the algorithm's own rows, config.json and the identity metadata. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run_internal.h"
#include "flowrl/reward_cmd.h"

static const char *const k_adv_names[] = {"prompt", "batch", "ddpo", NULL};

const char *fr_train_adv_name(fr_train_adv a)
{
    return ((int)a >= 0 && (int)a < 3) ? k_adv_names[a] : NULL;
}

#define C fr_run_common
/* prompts_per_epoch and group_size keep cff6d07's spellings `--prompts`, `--group` as
 * deprecated aliases (and its config.json keys "prompts", "group"). */

static const fr_opt k_inputs[] = {
    FR_OPT_STR(C, algo, "algo", "flow-grpo", "algorithm (`flowrl algos` lists them)", 0),
    FR_OPT_STR(C, base, "base", "", "base checkpoint: policy init and KL reference (required; identified by its digest)",
               FR_OPT_PATH | FR_OPT_RESUMABLE),
    FR_OPT_STR(C, task, "task", "", "gmm2d, checkerboard or shapes, for a checkpoint without 'task' metadata", 0),
    FR_OPT_STR(C, reward, "reward", "",
               "a task reward (gmm2d: mode, halfplane, sqdist; shapes: geneval, strict, classifier, redquad) or cmd:PROGRAM "
               "(docs/reward-protocol.md); default the task's first", 0),
    FR_OPT_STR(C, workdir, "workdir", "",
               "the directory the run was started in (set by the run; a reward program runs there)",
               FR_OPT_RESUMABLE | FR_OPT_HIDDEN),
    FR_OPT_BOOL(C, base_raw, "base_raw", "false", "start from the base's raw weights, not its ema.* weights", 0),
    {"prompts_per_epoch", FR_OPT_I64, offsetof(C, prompts), sizeof(int64_t), "8", 1, 1 << 20, NULL,
     "P: prompts per epoch", 0, "--prompts", "P"},
    {"group_size", FR_OPT_I64, offsetof(C, group), sizeof(int64_t), "8", 1, 1 << 20, NULL,
     "G: samples per prompt", 0, "--group", "G"},
};

/* An environment algorithm's inputs (fr_algo.on_env): no base, task or reward. */
static const fr_opt k_env_inputs[] = {
    FR_OPT_STR(C, algo, "algo", "flow-grpo", "algorithm (`flowrl algos` lists them)", 0),
    FR_OPT_STR(C, env, "env", "hypergrid", "the environment (`flowrl envs` lists them with their options)", 0),
};

static const fr_opt k_adv[] = {
    FR_OPT_ENUM(C, adv, "adv", "prompt", k_adv_names,
                "advantages: prompt (per-prompt stat tracker), batch (no tracking) or ddpo (DDPO's buffered tracker)", 0),
    FR_OPT_BOOL(C, global_std, "global_std", "true", "prompt tracker: std over the whole batch", 0),
    FR_OPT_I64(C, ddpo_buffer, "ddpo_buffer", "16", 1, 1 << 20, "ddpo: history per prompt", 0),
    FR_OPT_I64(C, ddpo_min_count, "ddpo_min_count", "16", 1, 1 << 20, "ddpo: batch statistics below this history", 0),
    FR_OPT_F32(C, adv_clip, "adv_clip", "5", 0, 1e6, "advantage clamp", 0),
};

static const fr_opt k_update[] = {
    FR_OPT_I64(C, num_batches, "num_batches", "4", 1, 1 << 20, "batches per epoch", 0),
    FR_OPT_I64(C, grad_accum, "grad_accum", "2", 1, 1 << 20, "batches per optimizer step", 0),
    FR_OPT_F64(C, timestep_fraction, "timestep_fraction", "0.99", 1e-9, 1, "share of the sampler steps trained", 0),
    FR_OPT_F64(C, clip_range, "clip_range", "1e-4", 0, 10, "PPO clip range of the ratio", 0),
    FR_OPT_F32(C, beta, "beta", "0.04", 0, 1e6, "KL weight (to the frozen base)", 0),
};

static const fr_opt k_health[] = {
    FR_OPT_I64(C, warn_zero_adv, "warn_zero_adv", "5", 0, 1e9,
               "warn when every advantage was zero this many epochs in a row, 0 = never", FR_OPT_RESUMABLE),
    FR_OPT_F64(C, warn_kl, "warn_kl", "1", 0, 1e30,
               "warn when the epoch's KL or approx-KL exceeds this, 0 = never", FR_OPT_RESUMABLE),
};
static const fr_opt k_lora[] = {
    FR_OPT_I64(C, lora_rank, "lora_rank", "0", 0, 4096,
               "LoRA rank r: train rank-r adapters on the --lora-targets layers, the base frozen and, adapter off, the "
               "KL reference (docs/lora.md); 0 = full fine-tuning", 0),
    FR_OPT_F64(C, lora_alpha, "lora_alpha", "0", 0, 1e9, "LoRA alpha: the adapter's scale is alpha / r; 0 = r (scale 1, PEFT's r 8, alpha 8)", 0),
    FR_OPT_STR(C, lora_targets, "lora_targets", "",
               "comma-separated module patterns (name, PEFT suffix or glob); default the model's: blocks.*.fc1,blocks.*.fc2 "
               "for the residual MLP", 0),
};
#undef C

static void add(fr_opts *o, const char *title, const fr_opt *rows, int n, void *st)
{
    int which = -1;
    for (int i = 0; i < FR_OPTS_MAX_STRUCTS; i++)
        if (o->s[i] == st || !o->s[i]) {
            which = i;
            break;
        }
    o->s[which] = st;
    fr_opts_add(o, title, rows, n, which);
}

#define N(a) ((int)(sizeof a / sizeof a[0]))

/* An environment algorithm's groups: the run, the environment and its options, the algorithm's,
 * the optimiser, the evaluation, the health checks and the backend. */
static void bind_env(fr_opts *o, fr_run_opts *ro, const fr_algo *a, void *ao)
{
    add(o, "Run", fr_runctl_rows, fr_runctl_nrows, &ro->run);
    add(o, "Environment", k_env_inputs, N(k_env_inputs), &ro->c);
    if (ro->env_class && ro->env_class->n_rows) add(o, ro->env_class->name, ro->env_class->rows, ro->env_class->n_rows, ro->env_opts);
    if (a->n_rows) add(o, a->name, a->rows, a->n_rows, ao);
    add(o, "Optimiser", fr_optim_rows, fr_optim_nrows, &ro->opt);
    add(o, "Evaluation", fr_evalrun_rows, fr_evalrun_nrows, &ro->ev);
    add(o, "Health checks", k_health, N(k_health), &ro->c);
    add(o, "Backend", fr_backend_rows, fr_backend_nrows, &ro->be);
}

void fr_run_opts_bind(fr_opts *o, fr_run_opts *ro, const fr_algo *a, void *ao)
{
    if (a && a->on_env) {
        bind_env(o, ro, a, ao);
        return;
    }
    add(o, "Run", fr_runctl_rows, fr_runctl_nrows, &ro->run);
    add(o, "Inputs", k_inputs, N(k_inputs), &ro->c);
    add(o, "Sampling (rollouts)", fr_sampling_rows, fr_sampling_nrows, &ro->smp);
    if (a && a->n_rows) add(o, a->name, a->rows, a->n_rows, ao);
    add(o, "Advantages", k_adv, N(k_adv), &ro->c);
    add(o, "Update", k_update, N(k_update), &ro->c);
    add(o, "Optimiser", fr_optim_rows, fr_optim_nrows, &ro->opt);
    add(o, "LoRA", k_lora, N(k_lora), &ro->c);
    add(o, "Evaluation", fr_evalrun_rows, fr_evalrun_nrows, &ro->ev);
    add(o, "Reward program", fr_reward_cmd_rows, fr_reward_cmd_nrows, &ro->rw);
    add(o, "Health checks", k_health, N(k_health), &ro->c);
    add(o, "Backend", fr_backend_rows, fr_backend_nrows, &ro->be);
}

fr_status fr_run_opts_defaults(fr_opts *o, fr_run_opts *ro, const fr_algo *a, void *ao)
{
    fr_opts local;
    if (!o) o = &local;
    memset(o, 0, sizeof *o);
    const fr_env_class *ec = ro->env_class;
    void *eo = ro->env_opts;
    memset(ro, 0, sizeof *ro);
    if (a->on_env && ec && eo) {
        ro->env_class = ec;
        ro->env_opts = eo;
    }
    if (a->opts_size) memset(ao, 0, a->opts_size);
    o->cmd = "train";
    fr_run_opts_bind(o, ro, a, ao);
    FR_TRY(fr_opts_defaults(o));
    ro->run.seed = 42; /* FG config/base.py */
    ro->run.epochs = 20;
    ro->run.checkpoint_every = 1;
    ro->run.keep_checkpoints = 2;
    ro->smp.cfg = 1.0f; /* tiny models: the public nocfg configs' g = 1 */
    ro->smp.rollout_batch = 64;
    ro->opt.lr = 3e-4;
    ro->opt.lr_schedule = FR_LR_CONSTANT;
    ro->opt.warmup = 0;
    ro->opt.weight_decay = 1e-4;
    ro->opt.max_grad_norm = 1.0f;
    ro->opt.ema_decay = -1.0f;
    ro->ev.eval_steps = 40; /* FG geneval_sd3: 40 eval steps */
    ro->ev.eval_n = 8;
    if (a->defaults) a->defaults(ro, ao);
    snprintf(ro->c.algo, sizeof ro->c.algo, "%s", a->name);
    if (ro->env_class) snprintf(ro->c.env, sizeof ro->c.env, "%s", ro->env_class->name);
    return FR_OK;
}

void fr_run_bind(fr_opts *o, const fr_run_opts *ro, const fr_algo *a, const void *ao)
{
    memset(o, 0, sizeof *o);
    o->cmd = "train";
    /* the engine reads through the pointers only for the const uses below */
    fr_run_opts_bind(o, (fr_run_opts *)ro, a, (void *)ao);
}

/* ---- config.json ------------------------------------------------------------------------ */

fr_status fr_run_write_config(const fr_run *r)
{
    char path[FR_TRAIN_PATH_MAX + 32];
    FR_TRY(fr_train_path(path, sizeof path, r->dir, FR_TRAIN_CONFIG_NAME));
    fr_opts o;
    fr_run_bind(&o, r->o, r->algo, r->ao);
    fr_opts_kv extra[] = {{"base_digest", r->base_digest}};
    return fr_opts_write_json(&o, extra, r->algo->on_env ? 0 : 1, path);
}

typedef struct {
    fr_st_file *f;
} meta_ctx;

static fr_status meta_add(const char *key, const char *value, void *user)
{
    meta_ctx *m = user;
    return fr_st_set_meta(m->f, key, value);
}

fr_status fr_run_meta(const fr_run *r, fr_st_file *f)
{
    if (r->algo->on_env) {
        FR_TRY(fr_st_set_meta(f, "env", r->env.desc));
    } else {
        FR_TRY(fr_st_set_meta(f, "task", r->task->name));
        FR_TRY(fr_st_set_meta(f, "base.digest", r->base_digest));
    }
    FR_TRY(fr_st_set_meta(f, "algo", r->algo->name));
    fr_opts o;
    fr_run_bind(&o, r->o, r->algo, r->ao);
    meta_ctx m = {f};
    return fr_opts_to_meta(&o, "train.", meta_add, &m);
}
