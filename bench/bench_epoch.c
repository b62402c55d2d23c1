/* One Flow-GRPO epoch (the run loop, fr_run_new, with the defaults of `flowrl train`, epochs = 1,
 * held-out eval off: eval_n = 0) on ref, canonical opt and opt --fast at 1 and 2 threads,
 * for gmm2d and shapes. The base of each task is a freshly initialised model of the task's
 * default preset (one pretraining step on opt, written to a temp dir): the epoch's cost
 * does not depend on the base's quality, except through the samples the zero-advantage
 * filter drops -- the "kept" column shows that count, identical for ref and opt (bitwise
 * equal) and within a few for --fast. An untrained shapes model draws nothing the detector
 * credits, so every reward is 0 and the epoch trains nothing: --pretrain-steps G,S pretrains
 * the bases for that many steps (batch 128, opt) first. --shapes-base PATH uses a
 * checkpoint instead.
 *
 *   bench_epoch [--tasks gmm2d,shapes] [--reps N] [--ref-reps N] [--pretrain-steps G[,S]]
 *               [--shapes-base PATH]
 *
 * Times: "epoch" is the trainer's own epoch time (fr_run_epoch_event.seconds: rollout,
 * rewards, advantages, updates; not the checkpoint and metrics writing), "call" the wall
 * time of the whole fr_run_new (base loading, run directory, checkpoint). Median of
 * reps runs; the configurations run round-robin (ref, opt 1t, opt 2t, fast 1t, fast 2t,
 * ref, ...) so that load from other processes spreads over all of them. Prints Markdown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/flow_grpo.h"
#include "flowrl/algo.h"
#include "flowrl/pretrain.h"

#include "bench/bench_util.h"

#define MAX_REPS 32

typedef struct {
    double epoch_s;
    int64_t kept, n_samples, n_updates;
    float reward_mean;
} epoch_out;

static int on_epoch(const fr_run_epoch_event *ev, void *user)
{
    epoch_out *o = (epoch_out *)user;
    o->epoch_s = ev->seconds;
    o->kept = (int64_t)fr_run_event_get(ev, "kept");
    o->n_samples = (int64_t)fr_run_event_get(ev, "samples");
    o->n_updates = (int64_t)fr_run_event_get(ev, "updates");
    o->reward_mean = (float)fr_run_event_get(ev, "reward_mean");
    return 0;
}

/* flowrl train's Flow-GRPO defaults: the option rows' defaults, then the algorithm's. */
typedef struct {
    fr_run_opts ro;
    fr_flow_grpo_opts ao;
} fg_opts;

static void fg_defaults(const fr_algo *a, fg_opts *o)
{
    fr_run_opts_defaults(NULL, &o->ro, a, &o->ao);
}

static int make_base(const char *task, int64_t steps, const char *path)
{
    fr_backend opt;
    if (fr_backend_open(&opt, "opt", 0, 0) != FR_OK) return 0;
    fr_pretrain_cfg pc = fr_pretrain_defaults();
    pc.task = task;
    pc.steps = steps;
    if (steps == 1) pc.batch = 8;
    pc.out = path;
    fr_pretrain_result pr;
    return fr_pretrain(&pc, &opt, NULL, NULL, &pr) == FR_OK;
}

int main(int argc, char **argv)
{
    int reps = 5, ref_reps = -1;
    int64_t pre_steps[2] = {1, 1}; /* gmm2d, shapes */
    const char *shapes_base = NULL;
    char tasks_arg[64] = "gmm2d,shapes";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--ref-reps") == 0 && i + 1 < argc) ref_reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--shapes-base") == 0 && i + 1 < argc) shapes_base = argv[++i];
        else if (strcmp(argv[i], "--pretrain-steps") == 0 && i + 1 < argc) {
            char *p = argv[++i];
            pre_steps[0] = strtoll(p, &p, 10);
            pre_steps[1] = *p == ',' ? strtoll(p + 1, NULL, 10) : pre_steps[0];
            if (pre_steps[0] < 1 || pre_steps[1] < 1) return 2;
        } else if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc)
            snprintf(tasks_arg, sizeof tasks_arg, "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: bench_epoch [--tasks gmm2d,shapes] [--reps N] [--ref-reps N] "
                            "[--pretrain-steps G[,S]] [--shapes-base PATH]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS) return 2;
    if (ref_reps < 0 || ref_reps > reps) ref_reps = reps;
    char root[] = "/tmp/flowrl-bench-epoch-XXXXXX";
    if (!mkdtemp(root)) {
        perror("bench_epoch: mkdtemp");
        return 1;
    }
    bu_conf confs[BU_N_CONF];
    int nconf = bu_confs(confs);
    const fr_algo *fg;
    if (fr_algo_find("flow-grpo", &fg) != FR_OK) {
        fprintf(stderr, "bench_epoch: %s\n", fr_last_error());
        return 1;
    }
    fg_opts dd;
    fg_defaults(fg, &dd);
    const fr_run_opts *d = &dd.ro;
    printf("### One Flow-GRPO epoch\n\n");
    printf("`flowrl train` defaults (P %lld x G %lld samples, %s sampler T %lld, %lld batches, "
           "grad accum %lld), epochs 1, eval off. Seconds, median of %d runs (ref: %d); "
           "configurations round-robin. epoch = the trainer's epoch time; call = the whole "
           "run (fr_run_new). speed-up = ref epoch / this epoch (target: opt >= 10x).\n\n",
           (long long)d->c.prompts, (long long)d->c.group, fr_sampler_name(d->smp.sampler),
           (long long)d->smp.num_steps, (long long)d->c.num_batches, (long long)d->c.grad_accum, reps, ref_reps);
    printf("| task | base | config | epoch s (median) | min | max | call s (median) | speed-up vs "
           "ref | kept / samples | updates | reward mean | load avg |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    int rc = 0;
    static char notes[2048];
    for (char *tok = strtok(tasks_arg, ","); tok; tok = strtok(NULL, ",")) {
        char base[FR_OPT_PATH_MAX];
        int64_t ps = pre_steps[strcmp(tok, "shapes") == 0];
        char base_desc[64] = "fresh init";
        if (ps > 1) snprintf(base_desc, sizeof base_desc, "%lld pretraining steps", (long long)ps);
        if (strcmp(tok, "shapes") == 0 && shapes_base) {
            snprintf(base, sizeof base, "%s", shapes_base);
            snprintf(base_desc, sizeof base_desc, "given checkpoint");
        } else {
            snprintf(base, sizeof base, "%s/base-%s.safetensors", root, tok);
            if (!make_base(tok, ps, base)) {
                fprintf(stderr, "bench_epoch: base for %s: %s\n", tok, fr_last_error());
                rc = 1;
                continue;
            }
        }
        double ep[BU_N_CONF][MAX_REPS], call[BU_N_CONF][MAX_REPS];
        epoch_out last[BU_N_CONF];
        double load_sum = 0;
        int nload = 0;
        for (int r = 0; r < reps && rc == 0; r++)
            for (int k = 0; k < nconf; k++) {
                if (k == 0 && strcmp(confs[k].backend, "ref") == 0 && r >= ref_reps) continue;
                fg_opts o;
                fg_defaults(fg, &o);
                snprintf(o.ro.c.base, sizeof o.ro.c.base, "%s", base);
                o.ro.run.epochs = 1;
                o.ro.ev.eval_n = 0;
                snprintf(o.ro.run.out, sizeof o.ro.run.out, "%s/run-%s-%d-%d", root, tok, k, r);
                epoch_out eo = {0};
                fr_run_cb cb = {.on_epoch = on_epoch, .user = &eo};
                fr_run_env env = {&confs[k].be, &cb, NULL, NULL};
                fr_run_result res;
                load_sum += bu_loadavg(), nload++;
                bu_use(&confs[k]);
                double t0 = bu_now_s();
                fr_status s = fr_run_new(&o.ro, &o.ao, &env, &res);
                double t1 = bu_now_s();
                bu_rmtree(o.ro.run.out);
                if (s != FR_OK) {
                    fprintf(stderr, "bench_epoch: %s %s: %s\n", tok, confs[k].name, fr_last_error());
                    rc = 1;
                    break;
                }
                ep[k][r] = eo.epoch_s, call[k][r] = t1 - t0, last[k] = eo;
            }
        if (rc) break;
        double ref_med = 0, meds[BU_N_CONF];
        for (int k = 0; k < nconf; k++) {
            int n = (k == 0 && strcmp(confs[k].backend, "ref") == 0) ? ref_reps : reps;
            double med = bu_median(ep[k], n), cmed = bu_median(call[k], n);
            meds[k] = med;
            if (k == 0) ref_med = med;
            printf("| %s | %s | %s | %.3f | %.3f | %.3f | %.3f | %s%.1fx%s | %lld / %lld | %lld | "
                   "%.4f | %.2f |\n",
                   tok, base_desc, confs[k].name, med, ep[k][0], ep[k][n - 1], cmed,
                   k > 0 && ref_med / med < 10 ? "**" : "", ref_med / med,
                   k > 0 && ref_med / med < 10 ? "**" : "", (long long)last[k].kept,
                   (long long)last[k].n_samples, (long long)last[k].n_updates,
                   (double)last[k].reward_mean, nload ? load_sum / nload : -1.0);
        }
        if (nconf == BU_N_CONF) {
            char line[512];
            snprintf(line, sizeof line,
                     "- %s: opt vs ref %.1fx (1 thread) / %.1fx (2 threads), target 10x -> %s; "
                     "--fast / canonical epoch time %.2f (1t) / %.2f (2t), target <= 1 -> %s.\n",
                     tok, ref_med / meds[1], ref_med / meds[2],
                     ref_med / meds[1] >= 10 || ref_med / meds[2] >= 10 ? "**met**" : "**MISSED**",
                     meds[3] / meds[1], meds[4] / meds[2],
                     meds[3] <= meds[1] && meds[4] <= meds[2] ? "**met**" : "**MISSED**");
            snprintf(notes + strlen(notes), sizeof notes - strlen(notes), "%s", line);
        }
        fflush(stdout);
    }
    printf("\n%s", notes);
    bu_rmtree(root);
    return rc;
}
