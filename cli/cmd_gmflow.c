/* flowrl gmflow: train a GMFlow network on a 2-D task or shapes, sample it by GM-SDE, and measure
 * a sample set (or a flow base's Euler samples) by the sliced W2 against the task's data and, on
 * shapes, the detector's accuracy (flowrl/gmflow.h, flowrl/swd.h; docs/algorithms/gmflow.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/sampling_opts.h"
#include "flowrl/audit_train.h"
#include "flowrl/backend.h"
#include "flowrl/gmflow.h"
#include "flowrl/swd.h"

#define SWD_PROJ 256 /* projections of the sliced W2 */
#define SWD_REFS 4   /* reference sets it is averaged over */

typedef struct {
    char task[32], preset[32], out[FR_OPT_PATH_MAX], ckpt[FR_OPT_PATH_MAX], audit[FR_OPT_PATH_MAX];
    int64_t steps, n, batch, warmup, swd, ckpt_every;
    int K, embed, hidden, layers, force, ema;
    double lr, weight_decay, trans_ratio;
    uint32_t seed, data_seed;
} gm_opts;

#define ROW(f, key, kind, def, lo, hi, help, mv) FR_OPT_ROW_(gm_opts, f, key, kind, def, lo, hi, NULL, help, 0, NULL, mv)
static const fr_opt k_rows[] = {
    ROW(task, "task", FR_OPT_STR, "checkerboard", 0, 0, "train: checkerboard, gmm2d or shapes (images, prompt-conditioned)",
        "NAME"),
    ROW(preset, "preset", FR_OPT_STR, "shapes-s", 0, 0,
        "train, shapes: the model preset of the image network (its velocity head widened to the GM row; "
        "--embed, --hidden, --layers are the 2-D network's)", "P"),
    ROW(out, "out", FR_OPT_STR, "", 0, 0,
        "train: the checkpoint to write (required); sample: a .png scatter plot or a .safetensors file of the samples",
        "FILE"),
    ROW(ckpt, "ckpt", FR_OPT_STR, "", 0, 0, "sample: the checkpoint; train: continue it (resume)", "FILE"),
    ROW(audit, "audit", FR_OPT_STR, "", 0, 0,
        "train: the audit log of every step (default: --out with .safetensors replaced by .audit.log; "
        "with --ckpt it continues --ckpt's log)", "FILE"),
    FR_OPT_I64(gm_opts, steps, "steps", "-1", -1, 100000000,
               "train: AdamW steps (default 2000; 0 writes the initial network); sample: GM-SDE steps (default 8)", 0),
    FR_OPT_I64(gm_opts, batch, "batch", "256", 1, 65536, "train: samples per step", 0),
    FR_OPT_I64(gm_opts, ckpt_every, "checkpoint_every", "0", 0, 100000000,
               "train: also write --out every N steps (a killed run continues from it with --ckpt)", 0),
    FR_OPT_I64(gm_opts, warmup, "warmup", "100", 0, 100000000, "train: linear lr warm-up steps", 0),
    FR_OPT_F64(gm_opts, lr, "lr", "1e-3", 1e-12, 10, "train: AdamW learning rate (GMFlow's toy: 2e-4 at batch 4096)", 0),
    FR_OPT_F64(gm_opts, weight_decay, "weight_decay", "0", 0, 10, "train: AdamW weight decay", 0),
    FR_OPT_F64(gm_opts, trans_ratio, "trans_ratio", "0.9", 0, 1, "train: t_low = (1 - trans_ratio) t_high", 0),
    FR_OPT_INT(gm_opts, K, "components", "64", 1, 1024, "train: mixture components K", 0),
    FR_OPT_INT(gm_opts, embed, "embed", "64", 4, 4096, "train: time and position embedding widths E (input 2E)", 0),
    FR_OPT_INT(gm_opts, hidden, "hidden", "256", 1, 8192, "train: MLP width", 0),
    FR_OPT_INT(gm_opts, layers, "layers", "3", 1, FR_MLP_MAX_LAYERS - 1, "train: hidden SiLU layers", 0),
    FR_OPT_U32(gm_opts, seed, "seed", "1", "train: init, data, times and noise; sample: the sampler's noise", 0),
    FR_OPT_BOOL(gm_opts, force, "force", "false", "train: replace an existing --out", 0),
    FR_OPT_BOOL(gm_opts, ema, "ema", "true", "sample: with the EMA weights (the Karras EMA, gamma 7), else the raw ones", 0),
};
/* swd-base's --out (the main command's is in k_rows) */
static const fr_opt k_out_row[] = {
    FR_OPT_ROW_(gm_opts, out, "out", FR_OPT_STR, "", 0, 0, NULL, "a .png scatter plot or a .safetensors file of the samples",
                0, NULL, "FILE"),
};
/* sample's and swd-base's measurement (swd-base takes the sampling options of `flowrl sample`) */
static const fr_opt k_swd_rows[] = {
    FR_OPT_I64(gm_opts, n, "n", "4096", 1, 1 << 22, "sample, swd-base: how many samples", 0),
    FR_OPT_I64(gm_opts, swd, "swd", "0", 0, 1 << 22,
               "sample, swd-base: the sliced W2 against this many data samples of the task (0: none)", 0),
    FR_OPT_U32(gm_opts, data_seed, "data_seed", "1000", "the first data seed of --swd (its sets use data_seed + 0..7; not a training seed)", 0),
};
#undef ROW

static void usage(FILE *f)
{
    fprintf(f, "Usage: flowrl gmflow train --task checkerboard|gmm2d|shapes --out CKPT [--steps N] [options]\n"
               "       flowrl gmflow sample --ckpt CKPT --n N --steps S [--out X.png|X.safetensors] [--swd M]\n"
               "       flowrl gmflow swd-base --ckpt FLOW_BASE [--num-steps S] [sampling options] --n N --swd M\n\n"
               "GMFlow (docs/algorithms/gmflow.md; Lakonik/GMFlow, arXiv 2504.05304): an MLP over a sin-cos\n"
               "embedding of (t, x) whose head is a K-component Gaussian mixture over the velocity (means, logits,\n"
               "one log-std), trained by the NLL of x_low under the reverse-transition mixture from x_high\n"
               "(t_low = 0.1 t_high), AdamW, every random number from Philox: the same command writes the same\n"
               "checkpoint bytes on every backend. train --ckpt C continues C to --steps with C's training\n"
               "options (seed, batch, lr, warm-up, trans_ratio, weight decay), bit for bit.\n"
               "train writes an audit log (default CKPT.audit.log beside --out; --audit FILE): every step's\n"
               "loss, gradient norm and the digests of the gradients, parameters, AdamW moments and EMA;\n"
               "`flowrl audit A.audit.log B.audit.log` compares two runs; train --ckpt continues C's log.\n"
               "sample: first-order GM-SDE on sigma_i = 1 - i/S then 0 (the second-order sampler is not\n"
               "implemented). swd-base: a flow base of `flowrl pretrain` sampled by `flowrl sample`'s options,\n"
               "measured as `sample --swd` measures GMFlow (the miniature's rectified-flow comparison).\n"
               "shapes (docs/algorithms/gmflow.md §7): the network is the shared model of --preset (shapes-s)\n"
               "with its velocity head widened to the GM row (K*768 + K + 1), conditioned on the sample's\n"
               "prompt (training and sampling: sample i has training prompt i mod 52); sample and swd-base\n"
               "also print the detector's accuracy of the samples.\n");
}

/* n samples of the task's data (prompt fr_task_prompt_in_turn(i)) of seed into out */
static fr_status task_samples(const fr_task *t, uint32_t seed, int64_t n, float *out)
{
    for (int64_t i = 0; i < n; i++) FR_TRY(t->sample(fr_task_prompt_in_turn(t, i), seed, (uint32_t)i, out + i * t->D));
    return FR_OK;
}

/* The sliced W2 of x against SWD_REFS reference sets of --swd data samples (seeds data_seed + 2r),
 * averaged (one set's value moves by about ±0.03 on checkerboard at 4096 samples), and the same
 * for N fresh data samples (seeds data_seed + 2r + 1): the floor the metric reaches. */
static int do_swd(const char *CMD, const fr_task *t, const float *x, int64_t N, const gm_opts *g)
{
    if (g->swd <= 0) return 0;
    float *data = malloc(sizeof(float) * (size_t)(g->swd * t->D)), *fresh = malloc(sizeof(float) * (size_t)(N * t->D));
    fr_status s = data && fresh ? FR_OK : FR_ERR_NOMEM;
    double w = 0.0, floor = 0.0;
    for (uint32_t r = 0; r < SWD_REFS && s == FR_OK; r++) {
        double a = 0.0, b = 0.0;
        s = task_samples(t, g->data_seed + 2 * r, g->swd, data);
        if (s == FR_OK) s = task_samples(t, g->data_seed + 2 * r + 1, N, fresh);
        if (s == FR_OK) s = fr_sliced_w2(x, N, data, g->swd, t->D, SWD_PROJ, g->data_seed + 2 * r, &a);
        if (s == FR_OK) s = fr_sliced_w2(fresh, N, data, g->swd, t->D, SWD_PROJ, g->data_seed + 2 * r, &b);
        w += a / SWD_REFS;
        floor += b / SWD_REFS;
    }
    free(fresh);
    free(data);
    if (s != FR_OK) return fr_cli_status(CMD, s);
    printf("sliced W2 against %lld data samples of %s (mean over %d sets, data seeds %u + 2r, %d projections): %.6f "
           "(%lld fresh data samples: %.6f)\n", (long long)g->swd, t->name, SWD_REFS, (unsigned)g->data_seed, SWD_PROJ, w,
           (long long)N, floor);
    return 0;
}

typedef struct {
    int64_t every;
    fr_audit *audit; /* every step's records (flowrl/audit_train.h) */
    fr_backend *be;  /* the network's */
    fr_gmflow_net *net;
    const fr_adamw_state *opt;
    const fr_ema *ema;
    const gm_opts *g;           /* --out and --checkpoint-every */
    const char *task;
    const fr_gmflow_train_cfg *c;
    fr_status s; /* the audit's or the checkpoint's failure, which stops the loop */
} gm_progress;

static const char *net_name(const void *net, int p)
{
    return fr_gmflow_net_param_name(net, p);
}

static int progress(int64_t step, double loss, void *user)
{
    gm_progress *p = user;
    if (step % p->every == 0) printf("step %lld  nll %.6f\n", (long long)step, loss), fflush(stdout);
    const fr_audit_params v = {p->be, p->net->params, p->net->n_params, net_name, p->net};
    p->s = fr_audit_train_step_params(p->audit, step, loss, &v, p->opt, p->ema);
    if (p->s == FR_OK && p->g->ckpt_every > 0 && step % p->g->ckpt_every == 0 && step < p->c->steps) {
        p->s = fr_gmflow_save(p->g->out, p->net, p->opt, p->ema, p->task, p->c, step);
        if (p->s == FR_OK) printf("checkpoint %s: step %lld\n", p->g->out, (long long)step), fflush(stdout);
    }
    return p->s != FR_OK;
}

/* The run's audit log: --audit or next to --out, continuing --ckpt's at step from. */
static fr_status open_audit(const gm_opts *g, int64_t from, const fr_backend *be, fr_audit **a)
{
    char path[FR_OPT_PATH_MAX + 16];
    const fr_audit_train_cfg ac = {g->audit, g->out, g->ckpt, from, NULL, "gmflow train", NULL, 0};
    FR_TRY(fr_audit_train_open(a, &ac, be, path, sizeof path));
    printf("audit log %s\n", path);
    return FR_OK;
}

static int train(const char *CMD, const gm_opts *g, fr_backend *be)
{
    if (!g->out[0]) return fr_cli_usage(CMD, "train needs --out CKPT");
    if (!g->force && access(g->out, F_OK) == 0 && strcmp(g->out, g->ckpt) != 0)
        return fr_cli_usage(CMD, "%s exists (--force replaces it)", g->out);
    fr_gmflow_train_cfg c = fr_gmflow_train_defaults();
    c.steps = g->steps >= 0 ? g->steps : c.steps;
    c.batch = g->batch, c.warmup = g->warmup, c.lr = g->lr, c.weight_decay = g->weight_decay;
    c.trans_ratio = g->trans_ratio, c.seed = g->seed;
    char task_name[64];
    snprintf(task_name, sizeof task_name, "%s", g->task);
    fr_gmflow_net net;
    fr_adamw_state opt;
    fr_ema ema;
    int64_t from = 0;
    fr_status s;
    if (g->ckpt[0]) { /* the checkpoint's training configuration; --steps the new end */
        s = fr_gmflow_load(g->ckpt, be, 0, &net, &opt, &ema, &from, task_name, &c);
        if (s != FR_OK) return fr_cli_status(CMD, s);
        c.steps = g->steps >= 0 ? g->steps : c.steps;
    } else {
        const fr_gmflow_arch a = {g->K, 2, g->embed, g->hidden, g->layers, ""};
        const fr_task *tk = NULL;
        s = fr_task_get(task_name, &tk);
        if (s == FR_OK)
            s = tk->C ? fr_gmflow_net_new_image(&net, be, g->K, g->preset, tk, c.batch) : fr_gmflow_net_new(&net, be, &a, c.batch);
        if (s == FR_OK) s = fr_gmflow_net_init(&net, c.seed);
        if (s == FR_OK) s = fr_adamw_state_init(be, &opt, net.params, net.n_params);
        if (s == FR_OK) s = fr_ema_init(be, &ema, net.params, net.n_params);
        else if (net.net.be || net.img) fr_gmflow_net_free(&net);
        if (s != FR_OK) return fr_cli_status(CMD, s);
    }
    const fr_task *t = NULL;
    s = fr_task_get(task_name, &t);
    if (s == FR_OK && (t->D != net.a.D || (t->C != 0) != (net.img != NULL)))
        s = fr_fail(FR_ERR_ARG, "gmflow: task %s (D %d) does not fit the network (D %d, %s)", task_name, t->D, net.a.D,
                    net.img ? "image" : "2-D");
    if (s == FR_OK) {
        char line[128];
        fr_backend_line(be, line, sizeof line);
        int64_t np = 0;
        for (int p = 0; p < net.n_params; p++) np += fr_tensor_numel(net.params[p].value);
        printf("%s\ngmflow train: task %s, K %d, %s%s, embed %d, %d x %d (%lld parameters), steps %lld..%lld of batch "
               "%lld, lr %g (warm-up %lld), trans_ratio %g, seed %u\n",
               line, task_name, net.a.K, net.img ? "model preset " : "2-D MLP", net.a.preset, net.a.E, net.a.layers,
               net.a.hidden, (long long)np,
               (long long)from, (long long)c.steps, (long long)c.batch, c.lr, (long long)c.warmup, c.trans_ratio,
               (unsigned)c.seed);
        fflush(stdout);
        gm_progress pg = {c.steps >= 10 ? c.steps / 10 : 1, NULL, be, &net, &opt, &ema, g, task_name, &c, FR_OK};
        double last = 0.0;
        s = open_audit(g, from, be, &pg.audit);
        if (s == FR_OK) s = fr_gmflow_train(&net, t, &c, &opt, &ema, from, progress, &pg, &last);
        if (s == FR_OK) s = pg.s;
        const fr_status sc = fr_audit_close(pg.audit);
        if (s == FR_OK) s = sc;
        if (s == FR_OK) s = fr_gmflow_save(g->out, &net, &opt, &ema, task_name, &c, c.steps > from ? c.steps : from);
        uint64_t dg = 0;
        if (s == FR_OK) s = fr_gmflow_net_digest(&net, &dg);
        if (s == FR_OK)
            printf("wrote %s: step %lld, last nll %.6f, parameters digest %016llx\n", g->out,
                   (long long)(c.steps > from ? c.steps : from), last, (unsigned long long)dg);
    }
    fr_ema_free(&ema);
    fr_adamw_state_free(&opt);
    fr_gmflow_net_free(&net);
    return s == FR_OK ? 0 : fr_cli_status(CMD, s);
}

static int write_samples(const fr_task *t, const char *out, const float *x, int64_t N)
{
    size_t n = strlen(out);
    if (n > 12 && strcmp(out + n - 12, ".safetensors") == 0) {
        fr_st_file f;
        fr_st_init(&f);
        fr_tensor h;
        int64_t shape[2] = {N, t->D};
        fr_status s = fr_tensor_alloc(&h, FR_F32, 2, shape);
        if (s == FR_OK) memcpy(h.data, x, sizeof(float) * (size_t)(N * t->D)), s = fr_st_add_take(&f, "samples", &h);
        if (s == FR_OK) s = fr_st_write(&f, out);
        fr_st_free(&f);
        return s;
    }
    int *pid = calloc((size_t)N, sizeof *pid);
    if (!pid) return FR_ERR_NOMEM;
    fr_status s = fr_task_render(t, out, (int)N, pid, x, 0, 1);
    free(pid);
    return s;
}

static int sample(const char *CMD, const gm_opts *g, fr_backend *be)
{
    if (!g->ckpt[0]) return fr_cli_usage(CMD, "sample needs --ckpt CKPT");
    const int steps = g->steps >= 0 ? (int)g->steps : 8;
    fr_gmflow_net net;
    char task_name[64];
    int64_t step = 0;
    const int64_t cap = g->n < 4096 ? g->n : 4096;
    fr_ema ema;
    memset(&ema, 0, sizeof ema);
    fr_status s = fr_gmflow_load(g->ckpt, be, cap, &net, NULL, g->ema ? &ema : NULL, &step, task_name, NULL);
    if (s != FR_OK) return fr_cli_status(CMD, s);
    if (g->ema) { /* sample the EMA weights */
        s = fr_ema_copy_to(be, &ema, net.params, net.n_params);
        fr_ema_free(&ema);
        if (s != FR_OK) {
            fr_gmflow_net_free(&net);
            return fr_cli_status(CMD, s);
        }
    }
    const fr_task *t = NULL;
    float *x = malloc(sizeof(float) * (size_t)(g->n * net.a.D));
    s = x ? fr_task_get(task_name, &t) : FR_ERR_NOMEM;
    if (s == FR_OK) {
        printf("gmflow sample: %s (task %s, K %d, step %lld, %s weights), %lld samples, GM-SDE order 1, %d steps, seed %u\n",
               g->ckpt, task_name, net.a.K, (long long)step, g->ema ? "EMA" : "raw", (long long)g->n, steps,
               (unsigned)g->seed);
        int *pid = malloc(sizeof(int) * (size_t)g->n);
        s = pid ? FR_OK : FR_ERR_NOMEM;
        for (int64_t i = 0; s == FR_OK && i < g->n; i++) pid[i] = fr_task_prompt_in_turn(t, i);
        if (s == FR_OK) s = fr_gmflow_sample_c(&net, g->n, steps, g->seed, pid, x);
        free(pid);
    }
    if (s == FR_OK && g->out[0]) {
        s = write_samples(t, g->out, x, g->n);
        if (s == FR_OK) printf("wrote %s\n", g->out);
    }
    int rc = s == FR_OK ? do_swd(CMD, t, x, g->n, g) : fr_cli_status(CMD, s);
    if (rc == 0 && s == FR_OK) rc = fr_cli_print_accuracy(CMD, t, x, g->n);
    free(x);
    fr_gmflow_net_free(&net);
    return rc;
}

/* A flow base of `flowrl pretrain`, sampled with `flowrl sample`'s options, then --swd. */
static int swd_base(int argc, char **argv)
{
    static const char *CMD = "gmflow swd-base";
    fr_cli_sampling_args a;
    gm_opts g;
    fr_opts o = {.cmd = CMD, .s = {&g}};
    fr_opts_add(&o, "Measurement", k_swd_rows, (int)(sizeof k_swd_rows / sizeof k_swd_rows[0]), 0);
    fr_opts_add(&o, "Output", k_out_row, 1, 0);
    fr_cli_sampling_add(&o, &a, 1);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status(CMD, FR_ERR_IO);
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, NULL, 0, NULL, &seen);
    if (rc >= 0) return rc;
    fr_cli_sampling sm;
    rc = fr_cli_sampling_setup(&o, &seen, &a, &sm);
    if (rc) return rc;
    const fr_task *t = sm.ck.task;
    const int64_t N = g.n;
    int *pid = calloc((size_t)N, sizeof *pid);
    uint32_t *sid = malloc(sizeof *sid * (size_t)N);
    float *x = malloc(sizeof(float) * (size_t)(N * t->D));
    fr_status s = pid && sid && x ? FR_OK : FR_ERR_NOMEM;
    for (int64_t i = 0; s == FR_OK && i < N; i++) sid[i] = (uint32_t)i, pid[i] = fr_task_prompt_in_turn(t, i);
    char line[256];
    fr_cli_sampler_line(&sm, line, sizeof line);
    if (s == FR_OK) printf("swd-base: %s (task %s), %lld samples, sampler %s, seed %u\n", a.m.ckpt, t->name, (long long)N, line, sm.seed);
    sm.rc.c0 = FR_ROLLOUT_C0_SAMPLE;
    if (s == FR_OK) s = fr_rollout_to_host(&sm.ck.model, &sm.be, t, &sm.rc, N, pid, sid, x);
    if (s == FR_OK && g.out[0] && (s = write_samples(t, g.out, x, N)) == FR_OK) printf("wrote %s\n", g.out);
    rc = s == FR_OK ? do_swd(CMD, t, x, N, &g) : fr_cli_status(CMD, s);
    if (rc == 0) rc = fr_cli_print_accuracy(CMD, t, x, N);
    free(pid), free(sid), free(x);
    fr_cli_sampling_free(&sm);
    return rc;
}

int cmd_gmflow(int argc, char **argv)
{
    static const char *CMD = "gmflow";
    if (argc >= 2 && strcmp(argv[1], "swd-base") == 0) return swd_base(argc - 1, argv + 1);
    gm_opts g;
    fr_backend_opts bk;
    fr_opts o = {.cmd = CMD, .s = {&g, &bk}};
    fr_opts_add(&o, "GMFlow", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    fr_opts_add(&o, "Measurement", k_swd_rows, (int)(sizeof k_swd_rows / sizeof k_swd_rows[0]), 0);
    fr_opts_add(&o, "Backend", fr_backend_rows, fr_backend_nrows, 1);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status(CMD, FR_ERR_IO);
    const char *pos[1] = {NULL};
    int n_pos = 0;
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, pos, 1, &n_pos, &seen);
    if (rc >= 0) return rc;
    if (n_pos != 1 || (strcmp(pos[0], "train") != 0 && strcmp(pos[0], "sample") != 0))
        return fr_cli_usage(CMD, "which mode: train, sample or swd-base");
    fr_backend be;
    rc = fr_cli_resolve_backend(CMD, &bk, &be);
    if (rc) return rc;
    rc = strcmp(pos[0], "train") == 0 ? train(CMD, &g, &be) : sample(CMD, &g, &be);
    fr_backend_close(&be);
    return rc;
}
