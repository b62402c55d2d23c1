/* The diffusion-sampler trainer's insides shared by core/gfn_diffusion.c (networks, set-up, the
 * policy of a row, trajectories) and core/gfn_diffusion_step.c (the gradient of an iteration,
 * evaluation, checkpoints); docs/algorithms/gfn-diffusion.md. */
#ifndef FLOWRL_GFN_DIFFUSION_INTERNAL_H
#define FLOWRL_GFN_DIFFUSION_INTERNAL_H

#include <math.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gfn_diffusion.h"
#include "flowrl/gfn_diffusion_ls.h"

#define LOG_2PI 1.8378770664093454836
#define ND_MAX_L 16

/* The public PIS networks' time path (--pis-architectures; GFNOrg/gfn-diffusion@255b499
 * energy_sampling/models/architectures.py TimeEncodingPIS, LangevinScalingModelPIS; core/gfn_diffusion_pis.c):
 * features (sin, cos)(pe_j·t + φ_j), pe = linspace(0.1, 100, hf), φ learned, then
 * Linear → GELU → … → Linear over the T steps' rows (one row a step). */
typedef struct {
    int L;                       /* linear layers */
    int64_t hf;                  /* frequencies */
    int64_t dim[ND_MAX_L + 1];   /* dim[0] = 2·hf, dim[L] = outputs */
    int n;                       /* tensors: φ (hf,), then (W, b) per layer */
    fr_tensor *vals, *grads;     /* views into the trainer's arenas */
    float *feat;                 /* backend (T, 2·hf) the features of the current φ */
    float *pre[ND_MAX_L], *post[ND_MAX_L]; /* backend (T, dim[l+1]); pre[L-1] NULL when the output is the caller's */
    float *g0, *g1;              /* backend (T, max dim) the backward's row gradients */
    float *feat_h, *dfeat_h;     /* host (T, 2·hf) */
    float *phase_h;              /* host (hf,) */
} tnet;

typedef struct {
    int L;                       /* linear layers */
    int64_t dim[ND_MAX_L + 1];   /* dim[0] = D (the x part of layer 0's input), dim[L] = outputs */
    int n;                       /* tensors: W_x, W_t, b_0, then (W, b) per later layer (pis: W_x, b_0, then (W, b)) */
    int o1;                      /* index of layer 1's weight among them: 3 (pis: 2) */
    fr_tensor *vals, *grads;     /* views into the trainer's arenas */
    float *c;                    /* (T, dim[1]) W_t·e(t_k) + b_0 of the current weights (pis: tn's output + b_0) */
    float *dc;                   /* (T, dim[1]) the time rows' gradient */
    float *pre[ND_MAX_L], *post[ND_MAX_L]; /* (cap, dim[l+1]) */
    int pis;                     /* the PIS form: layer 0's time part is tn (its tensors follow the n above) */
    tnet tn;
} mlp;

struct fr_gfnd_trainer {
    fr_backend *be;
    const fr_env *env;
    fr_gfnd_opts o;
    int64_t D, T, B, E;          /* E = 2·harmonics */
    int64_t Op;                  /* drift outputs: D means [+ D log-variances] [+ 1 Langevin scale] */
    int has_flow, has_z;
    int lgv_time;                /* NN2(t): its own MLP of [0, e(t)] (langevin_time_scale) */
    mlp pol, flow, lgv;
    int pis;                     /* --pis-architectures: pol and flow in the PIS form, NN2(t) the tnet lgvp */
    tnet lgvp;
    float *x0;                   /* backend (T, D) zeros: the time-only MLP's x */
    float *lgv_h;                /* (T,) NN2(t_k) */
    double *lgv_d;               /* (T,) its gradient */
    int n_params, n_pol;
    fr_tensor vals[4 * ND_MAX_L + 1], grads[4 * ND_MAX_L + 1];
    fr_param params[4 * ND_MAX_L + 1];
    char names[4 * ND_MAX_L + 1][32];
    float *arena_v, *arena_g;    /* backend: every parameter, then log Z */
    int64_t arena_n;
    float *temb;                 /* backend (T, E) */
    float *x;                    /* backend (cap, D) */
    float *d0, *d1;              /* backend (cap, wmax) */
    int64_t cap;                 /* T·B rows */
    /* host */
    float *xin_h, *out_h, *fout_h, *dout_h; /* (cap, D), (cap, Op), (cap,), (cap, max(Op, 1)) */
    double *xs;                  /* (T + 1, B, D) the states */
    double *glr;                 /* (T, B, D) ∇log R at x_k (langevin) */
    double *logpf, *logpb, *logf, *logr, *gpf, *gf; /* (B, T), (B, T), (B, T + 1), (B,), ... */
    double log_z_true;
    int64_t iter;
    fr_gfnd_replay *buf, *buf_ls; /* both_ways: the forward batches' x_T; local_search: MALA's output */
};

static inline double fr_gfnd_clip(double v, double c) { return v < -c ? -c : v > c ? c : v; }
static inline double fr_gfnd_tanh(double v)
{
    const double e = fr_awm_exp(-2.0 * fabs(v)), r = (1.0 - e) / (1.0 + e);
    return v < 0.0 ? -r : r;
}

/* The current weights' time rows, and NN2(t_k) of every step (langevin_time_scale) to the host. */
fr_status fr_gfnd_prepare(fr_gfnd_trainer *t);
/* The gradients (into the zeroed grads) of all T·n rows of inputs x whose output gradient is in t->d0. */
fr_status fr_gfnd_mlp_backward(fr_gfnd_trainer *t, mlp *m, const float *x, int64_t n);

/* ---- the PIS networks (core/gfn_diffusion_pis.c) ---- */
/* Layout over the arena from *off (tensors named prefix.*): the drift / flow network in the PIS form
 * (W_x, b_0, joint_layers (W, b) of H, the head of out; then its time path prefix.t.*), or NN2(t)'s tnet. */
void fr_gfnd_pis_mlp_layout(fr_gfnd_trainer *t, mlp *m, const char *prefix, int64_t out, int64_t *off);
void fr_gfnd_pis_lgv_layout(fr_gfnd_trainer *t, tnet *n, const char *prefix, int64_t *off);
/* torch's init from Philox (seed, FR_RNG_INIT, parameter, 2, 0) element j: Linear U(±1/√fan_in), φ N(0, 1);
 * zero_last: the last layer 0 and its bias (bias0 ≥ 0: every bias entry that value). h: the host arena. */
void fr_gfnd_pis_mlp_init(fr_gfnd_trainer *t, const mlp *m, int zero_last, float *h);
void fr_gfnd_tnet_init(fr_gfnd_trainer *t, const tnet *n, int zero_last, float bias0, float *h);
fr_status fr_gfnd_tnet_alloc(fr_gfnd_trainer *t, tnet *n, int own_out);
void fr_gfnd_tnet_free(fr_backend *be, tnet *n);
/* The T rows' outputs (T, dim[L]) into out (or n->pre[L-1] when out is NULL). */
fr_status fr_gfnd_tnet_forward(fr_gfnd_trainer *t, tnet *n, float *out);
/* The gradients (into the zeroed grads) from the outputs' gradient dout (backend (T, dim[L])); φ's on the host. */
fr_status fr_gfnd_tnet_backward(fr_gfnd_trainer *t, tnet *n, const float *dout);
/* NN2 of a row of step k with drift outputs out (0 without langevin). */
double fr_gfnd_lgv_scale(const fr_gfnd_trainer *t, const float *out, int64_t k);
/* mean (D,), logvar (D,) of a row of step k from its outputs out and ∇log R g. */
void fr_gfnd_pf_params(const fr_gfnd_trainer *t, const float *out, int64_t k, const double *g, double *mean,
                       double *logvar);
/* log P_F(x1 | x0) of a row; noise (D,) may be NULL. */
double fr_gfnd_log_pf(const fr_gfnd_trainer *t, const double *x0, const double *x1, const double *mean,
                      const double *logvar, double *noise);
/* log F_k of a row (db, subtb). */
double fr_gfnd_log_flow(const fr_gfnd_trainer *t, float f, const double *x, int64_t k);
/* Step k's network outputs for n rows of states xs_k (n, D) into t->out_h (and t->fout_h). */
fr_status fr_gfnd_forward_step(fr_gfnd_trainer *t, const double *xs_k, int64_t n, int64_t k, int flow);
/* n forward trajectories from 0 (noise Philox (seed, purpose, c0, c1_base + b, k)), exploration e. */
fr_status fr_gfnd_sample_fwd(fr_gfnd_trainer *t, int64_t n, uint32_t purpose, uint32_t c0, uint32_t c1_base, double e,
                             int flow);
/* From the n terminal states at step T of t->xs, τ ~ P_B back to 0 and log P_F along τ. */
fr_status fr_gfnd_back_traj(fr_gfnd_trainer *t, int64_t n, uint32_t purpose, uint32_t c0, uint32_t c1_base);
/* TB's log Z parameter. */
fr_status fr_gfnd_log_z_param(fr_gfnd_trainer *t, double *z);

#endif
