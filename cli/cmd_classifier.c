/* flowrl classifier: train the shapes classifier on the detector's labels and write it as
 * safetensors, or measure a saved one against the detector (flowrl/classifier.h;
 * docs/algorithms/draft.md §2.1). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/classifier.h"

typedef struct {
    char out[1024];
    int64_t images, epochs, batch, hidden, eval_images;
    float lr;
    uint32_t seed, eval_seed;
} clf_opts;

static const fr_opt k_rows[] = {
    FR_OPT_ROW_(clf_opts, out, "out", FR_OPT_STR, "", 0, 0, NULL, "train: the safetensors file to write (required)", 0,
                NULL, "FILE"),
    FR_OPT_I64(clf_opts, images, "images", "8192", 1, 1000000, "train: training images", 0),
    FR_OPT_I64(clf_opts, epochs, "epochs", "10", 0, 100000, "train: passes over the images", 0),
    FR_OPT_I64(clf_opts, batch, "batch", "32", 1, 1000000, "train: minibatch size (one Adam step each)", 0),
    FR_OPT_I64(clf_opts, hidden, "hidden", "32", 1, 4096, "train: hidden width H", 0),
    FR_OPT_F32(clf_opts, lr, "lr", "1e-2", 1e-8, 10, "train: Adam's step size", 0),
    FR_OPT_U32(clf_opts, seed, "seed", "0", "train: data, initialisation and order", 0),
    FR_OPT_I64(clf_opts, eval_images, "eval_images", "1024", 1, 1000000, "held-out images for the agreement", 0),
    FR_OPT_U32(clf_opts, eval_seed, "eval_seed", "1", "the held-out images' seed (not the training seed)", 0),
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: flowrl classifier train --out FILE [--images N --epochs E --batch B --hidden H --lr LR --seed S]\n"
               "       flowrl classifier eval FILE [--eval-images N --eval-seed S]\n\n"
               "The shapes task's frozen classifier (docs/algorithms/draft.md §2.1): an MLP over the image giving per\n"
               "prompt the probability that the detector calls the image correct, trained on the detector's labels\n"
               "of task samples, noisy samples and unions of two samples. Its log-probability of the prompt's label\n"
               "is the differentiable reward `--reward classifier` (the default configuration, trained in-process:\n"
               "`classifier train` with no options writes the same weights). Both modes print the agreement with\n"
               "the detector on held-out images: over every (image, prompt) verdict, and on each image's own prompt.\n");
}

static int report(const fr_clf *m, const clf_opts *r)
{
    fr_clf_eval ev;
    if (fr_clf_evaluate(m, r->eval_seed, r->eval_images, &ev) != FR_OK) return fr_cli_status("classifier", FR_ERR_ARG);
    printf("agreement with the detector on %lld held-out images (seed %u): %.2f%% of all (image, prompt) verdicts, "
           "%.2f%% on the image's own prompt (the detector passes %.1f%% of those)\n",
           (long long)ev.n, (unsigned)r->eval_seed, 100.0 * ev.acc_all, 100.0 * ev.acc_own, 100.0 * ev.pos_rate_own);
    return fflush(stdout) != 0 || ferror(stdout) ? fr_cli_error("classifier", "write error on stdout") : 0;
}

int cmd_classifier(int argc, char **argv)
{
    clf_opts r;
    fr_opts o = {.cmd = "classifier", .s = {&r}};
    fr_opts_add(&o, "Options", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("classifier", FR_ERR_IO);
    const char *pos[2] = {NULL, NULL};
    int n_pos = 0;
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, pos, 2, &n_pos, &seen);
    if (rc >= 0) return rc;
    if (n_pos < 1 || (strcmp(pos[0], "train") != 0 && strcmp(pos[0], "eval") != 0))
        return fr_cli_usage("classifier", "which mode: train or eval");
    fr_clf m;
    if (strcmp(pos[0], "eval") == 0) {
        if (n_pos != 2) return fr_cli_usage("classifier", "eval needs the classifier's file");
        if (fr_clf_load(pos[1], &m) != FR_OK) return fr_cli_error("classifier", "%s", fr_last_error());
        rc = report(&m, &r);
        fr_clf_free(&m);
        return rc;
    }
    if (n_pos != 1 || !r.out[0]) return fr_cli_usage("classifier", "train needs --out FILE");
    if (r.eval_seed == r.seed) return fr_cli_usage("classifier", "--eval-seed must differ from --seed (held-out images)");
    const fr_clf_config c = {r.images, r.epochs, r.batch, r.hidden, r.lr, r.seed};
    if (fr_clf_train(&c, &m) != FR_OK) return fr_cli_status("classifier", FR_ERR_ARG);
    printf("trained: %lld images x %lld epochs, hidden %lld, final mean loss %.6f\n", (long long)c.n,
           (long long)c.epochs, (long long)c.hidden, (double)m.train_loss);
    if (fr_clf_save(&m, r.out) != FR_OK) {
        fr_clf_free(&m);
        return fr_cli_error("classifier", "%s", fr_last_error());
    }
    rc = report(&m, &r);
    fr_clf_free(&m);
    return rc;
}
