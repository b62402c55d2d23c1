/* flowrl bc: behaviour cloning of a flow or DDPM policy from a demonstrations file
 * (flowrl/ctl_bc.h; docs/control.md §5), then its evaluation on the environment. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/audit_train.h"
#include "flowrl/backend.h"
#include "flowrl/ctl_bc.h"
#include "flowrl/digest.h"
#include "flowrl/env.h"
#include "flowrl/env_ctl.h"

typedef struct {
    char demos[FR_OPT_PATH_MAX], out[FR_OPT_PATH_MAX], env[64], resume[FR_OPT_PATH_MAX], audit[FR_OPT_PATH_MAX];
    int64_t steps, batch, hidden, n_hidden, eval_episodes, ckpt_every;
    int kind, flow_steps, denoising_steps, action_scale;
    double lr, disp_weight;
    uint32_t seed;
} bc_opts;

static const char *const k_kinds[] = {"flow", "ddpm", "meanflow", NULL}; /* fr_gen_kind's order */

#define ROW(f, key, kind, def, lo, hi, help, mv) FR_OPT_ROW_(bc_opts, f, key, kind, def, lo, hi, NULL, help, 0, NULL, mv)
static const fr_opt k_rows[] = {
    ROW(demos, "demos", FR_OPT_STR, "", 0, 0, "the demonstrations (flowrl/demos.h; required)", "FILE"),
    ROW(out, "out", FR_OPT_STR, "", 0, 0, "the policy checkpoint to write (required)", "CKPT"),
    ROW(env, "env", FR_OPT_STR, "", 0, 0, "the evaluation's environment at its defaults (default: the demonstrations' env with their options)", "NAME"),
    FR_OPT_ENUM(bc_opts, kind, "policy", "flow", k_kinds,
                "flow: FPO's flow policy (Euler from noise); ddpm: DPPO's DDPM policy (epsilon prediction); "
                "meanflow: MP1's MeanFlow policy (one step from noise, docs/algorithms/meanflow.md)", 0),
    FR_OPT_INT(bc_opts, flow_steps, "flow_steps", "10", 1, 1000, "the flow policy's Euler steps", 0),
    FR_OPT_F64(bc_opts, disp_weight, "dispersive_weight", "0.5", 0, 100,
               "MeanFlow: the weight of the dispersive term (MP1's 0.5; 0 leaves it out)", 0),
    FR_OPT_INT(bc_opts, denoising_steps, "denoising_steps", "20", 1, FR_DDPM_MAX_T, "the DDPM policy's denoising steps", 0),
    FR_OPT_BOOL(bc_opts, action_scale, "action_scale", "true",
                "learn the actions scaled to [-1, 1] by the demonstrations' min and max (DPPO's normalisation)", 0),
    FR_OPT_I64(bc_opts, steps, "steps", "5000", 1, 100000000, "Adam steps", 0),
    FR_OPT_I64(bc_opts, batch, "batch_size", "256", 1, 1 << 20, "rows per step", 0),
    FR_OPT_I64(bc_opts, hidden, "hidden_dim", "64", 1, 8192, "width of the policy MLP", 0),
    FR_OPT_I64(bc_opts, n_hidden, "n_hidden", "4", 1, FR_MLP_MAX_LAYERS - 1, "hidden layers (SiLU)", 0),
    FR_OPT_F64(bc_opts, lr, "lr", "1e-3", 1e-12, 10, "Adam learning rate", 0),
    FR_OPT_U32(bc_opts, seed, "seed", "1", "init, batches, noise and the evaluation's episodes", 0),
    FR_OPT_I64(bc_opts, eval_episodes, "eval_episodes", "100", 0, 1 << 16, "episodes of the evaluation (0: none)", 0),
    FR_OPT_I64(bc_opts, ckpt_every, "checkpoint_every", "0", 0, 100000000,
               "also write --out (with the Adam state) every N steps (0: after the last step only)", 0),
    ROW(resume, "resume", FR_OPT_STR, "", 0, 0, "continue this checkpoint of the same options and demonstrations bit for bit", "CKPT"),
    ROW(audit, "audit", FR_OPT_STR, "", 0, 0,
        "the audit log of every step (default: --out with .safetensors replaced by .audit.log; with --resume it "
        "continues --resume's log)", "FILE"),
};
#undef ROW

static void usage(FILE *f)
{
    fprintf(f, "Usage: flowrl bc --demos FILE --out CKPT [--policy flow|ddpm|meanflow] [--env NAME] [--steps N] [options]\n\n"
               "Behaviour cloning of a generative policy on a demonstrations file (`flowrl expert` writes them;\n"
               "docs/control.md §4-§5): a flow policy (FPO's playground convention, CFM loss, Euler from noise)\n"
               "or a DDPM policy (DPPO's, epsilon prediction, cosine schedule), or a MeanFlow policy (MP1's\n"
               "average-velocity objective with its JVP, acting in one step). Observation statistics of the\n"
               "demonstrations, Adam on the denoising loss, then --eval-episodes episodes of the policy with\n"
               "their mean return and success rate. The checkpoint is what the control algorithms fine-tune;\n"
               "it holds the Adam state, so --resume CKPT continues an interrupted run (--checkpoint-every N)\n"
               "bit for bit. An audit log (default CKPT.audit.log beside --out; --audit FILE) holds every\n"
               "step's loss, gradient norm and the digests of the gradients, parameters and Adam moments;\n"
               "`flowrl audit A.audit.log B.audit.log` compares two runs.\n");
}

/* nav2d: the successful evaluation episodes by the goal they reached (the nearest to the final
 * position), the modes a multi-modal policy keeps (docs/algorithms/meanflow.md §4). */
static void print_modes(const fr_env *e, const fr_demos *rec)
{
    const fr_nav2d_opts *o = e->impl;
    int64_t n[64] = {0};
    const int K = o->goals < 64 ? o->goals : 64;
    for (int64_t i = 0; i < rec->E; i++) {
        if (!rec->success || !rec->success[i]) continue;
        int best = 0;
        double bd = INFINITY;
        for (int k = 0; k < K; k++) {
            double g[2];
            fr_nav2d_goal(o, k, g);
            const double dx = rec->final_obs[i * rec->obs_dim] - g[0], dy = rec->final_obs[i * rec->obs_dim + 1] - g[1];
            if (dx * dx + dy * dy < bd) {
                bd = dx * dx + dy * dy;
                best = k;
            }
        }
        n[best]++;
    }
    printf("modes: successes by goal");
    for (int k = 0; k < K; k++) printf(" %lld", (long long)n[k]);
    printf("\n");
}

static void progress(int64_t step, double loss, void *user)
{
    const bc_opts *b = user;
    if (step % 1000 == 0 || step == b->steps)
        printf("step %lld/%lld  %s %.6f\n", (long long)step, (long long)b->steps,
               b->kind == FR_GEN_MEANFLOW ? "meanflow_loss" : "cfm_loss", loss);
    fflush(stdout);
}

/* After every Adam step: the audit record, and --out every --checkpoint-every steps and after the last. */
typedef struct {
    const bc_opts *b;
    fr_gen_policy *p;
    const fr_rms *rms;
    const char *env, *desc;
    const fr_bc_opts *bo;
    fr_audit *audit;
} bc_step_ctx;

static fr_status on_step(void *user, int64_t step, double loss, const fr_adamw_state *adam)
{
    bc_step_ctx *c = user;
    FR_TRY(fr_audit_train_step(c->audit, step, loss, c->p->net, adam, NULL));
    if (step == c->b->steps || (c->b->ckpt_every > 0 && step % c->b->ckpt_every == 0))
        FR_TRY(fr_bc_save_state(c->b->out, c->p, c->rms, c->env, c->desc, c->bo, adam, step));
    return FR_OK;
}

/* The run's audit log: --audit or beside --out, continuing --resume's at its step. */
static fr_status open_audit(const bc_opts *b, const fr_backend *be, fr_audit **log)
{
    char dd[17], path[FR_OPT_PATH_MAX + 16];
    FR_TRY(fr_file_digest_hex(b->demos, dd));
    const fr_audit_kv kv[] = {{"run.demos_digest", dd}, {"run.policy", k_kinds[b->kind]}};
    const fr_audit_train_cfg ac = {b->audit, b->out, b->resume, 0, "bc_step", "bc", kv, 2};
    FR_TRY(fr_audit_train_open(log, &ac, be, path, sizeof path));
    printf("audit log %s\n", path);
    return FR_OK;
}

int cmd_bc(int argc, char **argv)
{
    static const char *CMD = "bc";
    bc_opts b;
    fr_backend_opts bk;
    fr_opts o = {.cmd = "bc", .s = {&b, &bk}};
    fr_opts_add(&o, "Behaviour cloning", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    fr_opts_add(&o, "Backend", fr_backend_rows, fr_backend_nrows, 1);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status(CMD, FR_ERR_IO);
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, NULL, 0, NULL, &seen);
    if (rc >= 0) return rc;
    if (!b.demos[0] || !b.out[0]) return fr_cli_usage(CMD, "--demos FILE and --out CKPT are required");
    fr_demos d;
    fr_status s = fr_demos_read(b.demos, &d);
    if (s != FR_OK) return fr_cli_status(CMD, s);
    /* the evaluation's environment: --env at its defaults, else the demonstrations' own with their
     * options (nav2d's harder setting, docs/envs.md §4.1, is the options of its demonstrations) */
    const fr_env_class *ec = NULL;
    fr_env env;
    memset(&env, 0, sizeof env);
    if (b.env[0]) {
        s = fr_env_find(b.env, &ec);
        if (s == FR_OK) s = fr_env_create(ec, NULL, &env);
    } else {
        void *eo = NULL;
        s = fr_env_spec(d.env, &ec, &eo);
        free(eo);
        if (s == FR_OK) s = fr_env_from_demos(&d, &env);
    }
    if (s == FR_OK && (!env.ctl || env.obs_dim != d.obs_dim || env.action_dim != d.action_dim))
        s = fr_fail(FR_ERR_ARG, "--env %s: %d observations and %d actions, the demonstrations %d and %d", env.desc,
                    env.obs_dim, env.action_dim, d.obs_dim, d.action_dim);
    if (s != FR_OK) {
        fr_demos_free(&d);
        fr_env_free(&env);
        return fr_cli_status(CMD, s);
    }
    fr_backend be;
    rc = fr_cli_resolve_backend(CMD, &bk, &be);
    if (rc) {
        fr_demos_free(&d);
        fr_env_free(&env);
        return rc;
    }
    char line[128];
    fr_backend_line(&be, line, sizeof line);
    const int psteps = b.kind == FR_GEN_FLOW ? b.flow_steps : b.kind == FR_GEN_DDPM ? b.denoising_steps : 1;
    printf("%s\nbc: %s, %lld steps of %lld episodes; %s policy (%d steps) %lld x %lld SiLU, %lld Adam steps of %lld rows, "
           "lr %g, seed %u\n",
           line, env.desc, (long long)d.N, (long long)d.E, k_kinds[b.kind], psteps, (long long)b.hidden,
           (long long)b.n_hidden, (long long)b.steps, (long long)b.batch, b.lr, b.seed);
    const int64_t cap = b.batch > b.eval_episodes ? b.batch : b.eval_episodes;
    fr_gen_policy p;
    fr_rms rms = {0};
    fr_bc_opts bo = {.steps = b.steps, .batch = b.batch, .lr = b.lr, .seed = b.seed, .action_scale = b.action_scale};
    s = fr_gen_policy_new(&p, (fr_gen_kind)b.kind, &be, d.obs_dim, d.action_dim, b.hidden, (int)b.n_hidden, psteps, cap);
    if (s == FR_OK && b.kind == FR_GEN_MEANFLOW) {
        p.mf.disp_weight = b.disp_weight;
        printf("bc: MeanFlow, one step; dispersive weight %g\n", b.disp_weight);
    }
    if (s == FR_OK) s = fr_rms_init(&rms, d.obs_dim);
    bc_step_ctx sc = {&b, &p, &rms, ec->name, env.desc, &bo, NULL};
    bo.resume = b.resume[0] ? b.resume : NULL;
    bo.on_step = on_step;
    bo.on_step_user = &sc;
    if (s == FR_OK) s = open_audit(&b, &be, &sc.audit);
    if (s == FR_OK) s = fr_bc_train(&p, &rms, &d, &bo, progress, &b);
    const fr_status ac = fr_audit_close(sc.audit);
    if (s == FR_OK) s = ac;
    if (s == FR_OK) printf("wrote %s\n", b.out);
    if (s == FR_OK && b.eval_episodes > 0) {
        double ret, succ;
        fr_demos rec;
        const int nav = env.cls == &fr_env_nav2d;
        if (nav) {
            fr_demos_init(&rec, env.obs_dim, env.action_dim, 0, 1);
            env.eval_record = &rec;
        }
        s = fr_gen_policy_evaluate(&p, &rms, &env, b.seed, b.eval_episodes, &ret, &succ);
        if (nav) {
            env.eval_record = NULL;
            if (s == FR_OK) print_modes(&env, &rec);
            fr_demos_free(&rec);
        }
        double dr, dsd, dl, ds;
        fr_demos_summary(&d, &dr, &dsd, &dl, &ds);
        if (s == FR_OK)
            printf("eval: %lld episodes, return %.4f, success %.4f (demonstrations: return %.4f, success %.4f)\n",
                   (long long)b.eval_episodes, ret, succ, dr, ds);
    }
    fr_gen_policy_free(&p);
    fr_rms_free(&rms);
    fr_demos_free(&d);
    fr_env_free(&env);
    fr_backend_close(&be);
    return s == FR_OK ? 0 : fr_cli_status(CMD, s);
}
