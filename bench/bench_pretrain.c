/* One pretraining step (fr_pretrain with the defaults of `flowrl pretrain`: batch 128, the
 * task's default preset, AdamW, clipping, EMA; no checkpoint written) on ref, canonical opt
 * and opt --fast at 1 and 2 threads, for gmm2d (gmm2d-s) and shapes (shapes-s). A step's
 * time is the wall time between consecutive step callbacks, so it covers the data
 * sampling, forward, backward, clipping, AdamW and EMA of that step; the first step of each
 * run (model init, buffers) is not counted. Each round runs every configuration for
 * `steps` steps (round-robin over configurations, against load drift); the median is over
 * all counted steps of all rounds. Prints Markdown.
 *
 *   bench_pretrain [--tasks gmm2d,shapes] [--rounds N] [--steps S] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/pretrain.h"

#include "bench/bench_util.h"

#define MAX_SAMPLES 1024

typedef struct {
    double last;
    double *t;
    int n, cap;
} step_log;

static int on_step(const fr_pretrain_event *ev, void *user)
{
    step_log *l = (step_log *)user;
    double now = bu_now_s();
    if (ev->step > 1 && l->n < l->cap) l->t[l->n++] = now - l->last;
    l->last = now;
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = 5, steps = 4;
    char tasks_arg[64] = "gmm2d,shapes";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc)
            snprintf(tasks_arg, sizeof tasks_arg, "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: bench_pretrain [--tasks gmm2d,shapes] [--rounds N] [--steps S]\n");
            return 2;
        }
    }
    if (rounds < 1 || steps < 2 || rounds * (steps - 1) > MAX_SAMPLES) return 2;
    bu_conf confs[BU_N_CONF];
    int nconf = bu_confs(confs);
    fr_pretrain_cfg d = fr_pretrain_defaults();
    printf("### One pretraining step\n\n");
    printf("`flowrl pretrain` defaults (batch %lld, %s), %d rounds x %d steps per configuration "
           "(round-robin), first step of each run not counted: ms per step, median of %d steps. "
           "speed-up = ref / this.\n\n",
           (long long)d.batch, "the task's default preset", rounds, steps, rounds * (steps - 1));
    printf("| task | preset | config | ms/step (median) | min | max | speed-up vs ref | load avg |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    static double buf[BU_N_CONF][MAX_SAMPLES];
    static char notes[1024];
    for (char *tok = strtok(tasks_arg, ","); tok; tok = strtok(NULL, ",")) {
        step_log logs[BU_N_CONF];
        for (int k = 0; k < nconf; k++) logs[k] = (step_log){0, buf[k], 0, MAX_SAMPLES};
        double load_sum = 0;
        int nload = 0;
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < nconf; k++) {
                fr_pretrain_cfg pc = fr_pretrain_defaults();
                pc.task = tok;
                pc.steps = steps;
                fr_pretrain_result res;
                load_sum += bu_loadavg(), nload++;
                bu_use(&confs[k]);
                logs[k].last = bu_now_s();
                if (fr_pretrain(&pc, &confs[k].be, on_step, &logs[k], &res) != FR_OK) {
                    fprintf(stderr, "bench_pretrain: %s %s: %s\n", tok, confs[k].name,
                            fr_last_error());
                    return 1;
                }
            }
        double ref_med = 0, meds[BU_N_CONF];
        for (int k = 0; k < nconf; k++) {
            double med = 1e3 * bu_median(logs[k].t, logs[k].n);
            meds[k] = med;
            if (k == 0) ref_med = med;
            printf("| %s | %s | %s | %.2f | %.2f | %.2f | %.1fx | %.2f |\n", tok,
                   fr_pretrain_default_preset(tok), confs[k].name, med, 1e3 * logs[k].t[0],
                   1e3 * logs[k].t[logs[k].n - 1], ref_med / med, load_sum / nload);
        }
        if (nconf == BU_N_CONF)
            snprintf(notes + strlen(notes), sizeof notes - strlen(notes),
                     "- %s: --fast / canonical step time %.2f (1t) / %.2f (2t), target <= 1 -> "
                     "%s.\n",
                     tok, meds[3] / meds[1], meds[4] / meds[2],
                     meds[3] <= meds[1] && meds[4] <= meds[2] ? "**met**" : "**MISSED**");
        fflush(stdout);
    }
    printf("\n%s", notes);
    return 0;
}
