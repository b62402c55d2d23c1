/* The guided-TB trainer's internals shared by core/gfn_guided.c (the trainer) and
 * core/gfn_guided_policy.c (the sa / ssr policy networks); not part of the public API. */
#ifndef FLOWRL_CORE_GFN_GUIDED_INTERNAL_H
#define FLOWRL_CORE_GFN_GUIDED_INTERNAL_H

#include <stdint.h>

#include "flowrl/gfn_guided.h"
#include "flowrl/mlp.h"

#define GTB_INIT_STREAM 125 /* fr_mlp_init_params's streams 125.. (one per network) */

typedef struct {
    int ssr, n_out;
    fr_mlp head; /* sa: the logits; ssr: the scorer */
    fr_mlp enc;  /* ssr: the encoder */
    float *dx;   /* ssr: backend (scorer rows, 2E), the scorer input's gradient */
    /* the last forward's queries: k[q] choices at act[q·A + j] with probabilities p, clipped flags */
    int64_t Q, rows_e, rows_s;
    int32_t *k, *act, *chosen;
    double *lsm;
    uint8_t *clipped;
    float *in_h, *out_h, *dout_h, *dx_h;
} gtb_net;

struct fr_gtb_trainer {
    fr_backend *be;
    const fr_env *env;
    fr_gtb_opts o;
    int D, A, O, T; /* state dims, actions (exit included), obs width, longest trajectory */
    int64_t cap;    /* queries per forward */
    gtb_net net[2]; /* P_F, P_B */
    float *z_dev;
    fr_tensor zv, zg;
    fr_param ps[4 * FR_MLP_MAX_LAYERS + 1];
    int n_f, n_b;
    /* the observed x in observation order */
    uint8_t *seen;
    int32_t *obs;
    double *obs_r;
    int64_t n_obs, modes;
    /* a batch: act (B, T), len (B,), x (B, D), chains */
    int32_t *bact, *blen, *bx, *qs, *qa, *cur;
    double *logr, *lpg, *fwd, *back, *pb, *gf, *gb, *lpf_q, *lpb_q, *gq, *target;
};

/* The policy networks (core/gfn_guided_policy.c): a direction's network (0: P_F, 1: P_B) and its
 * buffers; the choices (children or parents) of state s; a state's encoding row; the log-softmax
 * over the choices of Q queries, with logp[q] the chosen action's (action NULL: none); the
 * backward of the last forward given g = dL/dlogp (Q,). */
fr_status fr_gtb_net_new(fr_gtb_trainer *t, gtb_net *n, int dir);
void fr_gtb_net_free(fr_backend *be, gtb_net *n);
int fr_gtb_choices(const fr_gtb_trainer *t, int dir, const int32_t *s, int32_t *act, int32_t *st, uint8_t *term);
void fr_gtb_encode(const fr_gtb_trainer *t, const int32_t *s, int term, int ssr, float *row);
fr_status fr_gtb_policy_forward(fr_gtb_trainer *t, int dir, int64_t Q, const int32_t *state, const int32_t *action,
                                double *logp);
fr_status fr_gtb_policy_backward(fr_gtb_trainer *t, int dir, const double *g);

#endif
