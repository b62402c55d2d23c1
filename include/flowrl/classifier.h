/* A small frozen classifier for the shapes task trained on its detector's labels (spec more.md §1
 * miniature; docs/algorithms/draft.md §2.1): a one-hidden-layer MLP over the 16x16x3 image giving,
 * per prompt p, the logit of "the detector calls this image correct for p" (70 independent
 * sigmoids: an image can be correct for several prompts). Its log-probability of the prompt's label,
 * log σ(z_p(x)), is a differentiable shapes reward (`--reward classifier`) with d/dx in closed form,
 * for DRaFT, AlignProp, ReFL and `flowrl optimize`.
 *
 * Training is a pure function of the config (Philox purposes FR_RNG_CLF_*, one thread, float32 in a
 * fixed order, flowrl's tanh / sigmoid / softplus), so `flowrl classifier train` writes the same
 * bytes everywhere and the reward's built-in copy (fr_clf_builtin: the default config, trained once
 * per process on first use) equals the file it writes.
 *
 * Data: image i of a seed is the task's sample of a Philox-drawn prompt, as it is (i mod 4 = 0),
 * with Gaussian noise of a drawn std in [0, 0.6) (1), united by element-wise max with the sample of
 * another drawn prompt (2: extra or overlapping objects), or both (3); its label row is the
 * detector's verdict for every prompt. */
#ifndef FLOWRL_CLASSIFIER_H
#define FLOWRL_CLASSIFIER_H

#include <stdint.h>

#include "flowrl/status.h"

typedef struct {
    int64_t n;      /* training images */
    int64_t epochs; /* passes over them */
    int64_t batch;  /* minibatch size (one Adam step each) */
    int64_t hidden; /* H */
    float lr;       /* Adam's step size (β 0.9, 0.999, ε 1e-8, no decay) */
    uint32_t seed;  /* data, initialisation and order */
} fr_clf_config;

/* n 8192, epochs 10, batch 32, hidden 32, lr 1e-2, seed 0 (the reward's). */
void fr_clf_config_default(fr_clf_config *c);

typedef struct {
    fr_clf_config cfg;
    int64_t D, H, K;        /* input (3·16·16), hidden, prompts (70) */
    float *w1, *b1, *w2, *b2; /* (H, D), (H,), (K, H), (K,): owned, one block */
    float train_loss;       /* the last epoch's mean loss */
} fr_clf;

fr_status fr_clf_train(const fr_clf_config *c, fr_clf *out);
void fr_clf_free(fr_clf *m);
/* safetensors: w1, b1, w2, b2 and the config as metadata (clf.*). */
fr_status fr_clf_save(const fr_clf *m, const char *path);
fr_status fr_clf_load(const char *path, fr_clf *out);

/* score = log σ(z_p(x)) and, unless grad is NULL, grad (D,) = d score / d x. */
fr_status fr_clf_logprob(const fr_clf *m, int prompt, const float *x, // x: (D,)
                         float *score, float *grad);                   // grad: (D,) or NULL

/* Agreement with the detector on n held-out images of `seed` (a seed the classifier did not
 * train on): over every (image, prompt) verdict, and over (image, its own drawn prompt), the
 * verdict being σ(z_p) > 0.5 against the detector's correct. */
typedef struct {
    int64_t n;
    double acc_all, acc_own, pos_rate_own; /* pos_rate_own: share of own prompts the detector passes */
} fr_clf_eval;
fr_status fr_clf_evaluate(const fr_clf *m, uint32_t seed, int64_t n, fr_clf_eval *ev);

/* The reward's classifier: fr_clf_train of the default config, trained on the first call of the
 * process (a second or so) and kept. */
fr_status fr_clf_builtin(const fr_clf **out);

#endif
