/* pi-Flow (arXiv 2510.14974; docs/algorithms/piflow.md; spec more.md §10.2): a student network,
 * called once at (x_s, σ_s), outputs a GM head row (flowrl/gm.h) over the velocity u; the
 * network-free GMFlow policy built from that row gives a velocity π(x, σ) at any later state,
 * and an Euler rollout of π in σ is the student's sample. Imitation distillation trains the row
 * so that π matches a teacher's velocity along the policy's own (detached) trajectory.
 *
 * The policy (Lakonik/piFlow@4229541 lakonlab/models/diffusions/piflow_policies/gmflow.py and
 * gmflow.py gmflow_posterior_mean_jit), with α = 1 − σ (flowrl's rectified flow, σ = t):
 *   x0-GM:   m_k = x_s − σ_s μ_k (D,),  v = σ_s² e^{2s} (shared),  log w_k = log_softmax(a)_k
 *   at (x, σ):  ζ = (α/σ)² − (α_s/σ_s)²,  ν = α x/σ² − α_s x_s/σ_s²          (σ, σ_s ≥ eps)
 *               d = max(1 + v ζ, eps)
 *               m_k' = (v ν + m_k)/d,  ℓ_k = log w_k + Σ_c m_kc (ν_c − ½ ζ m_kc)/d
 *               w' = softmax(ℓ),  E[x0] = Σ_k w_k' m_k'
 *   π(x, σ) = (x − E[x0]) / max(σ, eps),  eps = 1e-6 (GMFlowPolicy's default)
 * Exact for the shared variance only (the spec's quirk). At (x_s, σ_s) ζ = 0 and ν = 0, so
 * π = (x_s − Σ w_k m_k)/σ_s = Σ w_k μ_k.
 *
 * Everything here is host double: the head row of one sample (K·D + K + 1 floats) against D
 * coordinates (D = 2 in the miniature), exp and log flowrl's own float64 ones (fr_awm_exp /
 * fr_awm_log, flowrl/awm_elem.h), sums in index order, so the bits are the same on every
 * machine and backend; the network around it runs through the op table. */
#ifndef FLOWRL_PIFLOW_H
#define FLOWRL_PIFLOW_H

#include <stdint.h>

#include "flowrl/audit.h"
#include "flowrl/backend.h"
#include "flowrl/gmflow.h"
#include "flowrl/infer_ckpt.h"
#include "flowrl/mlp.h"
#include "flowrl/model.h"
#include "flowrl/status.h"

#define FR_PIFLOW_MAX_K 64
#define FR_PIFLOW_MAX_D 1024        /* shapes: 768 */
#define FR_PIFLOW_MAX_KD 8192       /* K·D at most (the per-sample state below is host double) */
#define FR_PIFLOW_EPS 1e-6          /* GMFlowPolicy's eps: the floor of σ, σ_s and d */
#define FR_PIFLOW_SUBSTEPS 128      /* the rollout's substeps per unit of σ (TOTAL_SUBSTEPS) */
#define FR_PIFLOW_T_MIN 1e-4        /* the intermediate times' floor (the trainer's EPS) */

/* The x0-space GM of one sample, from its head row. */
typedef struct {
    int K, D;
    double sigma_s;                                   /* σ_s */
    double x_s[FR_PIFLOW_MAX_D];                      /* x_s (D,) */
    double m[FR_PIFLOW_MAX_KD];                       /* m_k = x_s − σ_s μ_k (K, D) */
    double logw[FR_PIFLOW_MAX_K];                     /* log_softmax of the logits (K,) */
    double var;                                       /* v = σ_s² e^{2s} */
} fr_piflow_gm;

/* The posterior of the x0-GM at (x, σ) (the formulas above). */
typedef struct {
    double zeta, denom;                               /* ζ, d (after the floor) */
    int clamped;                                      /* 1: d was floored (no gradient through it) */
    double sigma;                                     /* max(σ, eps) */
    double nu[FR_PIFLOW_MAX_D];                       /* ν (D,) */
    double mp[FR_PIFLOW_MAX_KD];                      /* m_k' (K, D) */
    double w[FR_PIFLOW_MAX_K];                        /* w' (K,) */
    double mean[FR_PIFLOW_MAX_D];                     /* E[x0 | x, σ] (D,) */
} fr_piflow_post;

/* g from one head row (fr_gm_width(K, D) floats: means, logits, log-std) at (x_s, σ_s);
 * FR_ERR_ARG for K or D outside 1..MAX or K·D over FR_PIFLOW_MAX_KD, FR_ERR_NUMERIC for a
 * non-finite row. */
fr_status fr_piflow_gm_from_row(fr_piflow_gm *g, int K, int D,
                                const float *row, // (K·D + K + 1,)
                                const float *x_s, // (D,)
                                double sigma_s);
void fr_piflow_posterior(const fr_piflow_gm *g, const double *x, double sigma, fr_piflow_post *p);
/* u (D,) = π(x, σ). */
void fr_piflow_pi(const fr_piflow_gm *g, const double *x, double sigma, double *u);
/* x (D,) from its value at σ_from to σ_to ≤ σ_from: Euler in σ with n = max(1, round((σ_from −
 * σ_to)·substeps)) equal substeps (round half to even, torch's round), σ' = max(σ − h, 0),
 * x += π(x, σ)(σ' − σ); the policy only, no network call. */
void fr_piflow_rollout(const fr_piflow_gm *g, double sigma_from, double sigma_to, int substeps, double *x);
/* drow (K·D + K + 1,) = d(du · π(x, σ))/d(row): the gradient of a loss whose gradient with
 * respect to π is du (D,), through the row only (x is the detached rollout's state, x_s the
 * network's input: neither is differentiated). Overwrites drow. */
void fr_piflow_pi_grad(const fr_piflow_gm *g, const double *x, double sigma, const double *du, double *drow);

/* ---- imitation distillation (core/piflow_train.c) ---------------------------------------- */

/* The student: an MLP of D inputs (x_s; σ_s = 1, the 1-NFE student, so σ_s is not an input),
 * n_hidden SiLU layers of width H, and the GM row out (fr_gm_width(K, D)); torch's Linear init,
 * then the logit and log-std outputs' weights and biases set to 0 (initial w_k = 1/K, s = 0, as
 * GMFlow's heads). Parameters "student.<2l>.weight" / ".bias". */
typedef struct {
    int K, D, H, n_hidden;
    fr_mlp net;
    /* An image task's student (fr_piflow_student_new_image), or NULL: GMFlow's image network
     * (flowrl/gmflow.h: the shared model of a preset, its velocity head widened to the row),
     * conditioned on the sample's prompt, called at model time 1000 (σ_s = 1); then H and
     * n_hidden are the model's H and n_blocks and net is unused. */
    fr_gmflow_net *img;
    const fr_task *task; /* the image student's task (its prompts' condition ids) */
} fr_piflow_student;

fr_status fr_piflow_student_new(fr_piflow_student *st, fr_backend *be, int K, int D, int H, int n_hidden, int64_t cap);
/* The image student over task (an image task) with model preset `preset` (e.g. shapes-s). Its
 * checkpoint carries piflow.preset, piflow.task and the model's config (model.*). Sample i of a
 * run (training step k: i = k·B + b; sampling: i) has prompt i mod task->n_train. */
fr_status fr_piflow_student_new_image(fr_piflow_student *st, fr_backend *be, int K, const char *preset,
                                      const fr_task *task, int64_t cap);
void fr_piflow_student_free(fr_piflow_student *st);
/* The student's trainable parameters (*n of them): the MLP's or the image network's. */
fr_param *fr_piflow_student_params(fr_piflow_student *st, int *n);
/* XXH3-64 of the parameters' values (the run's printed digest). */
fr_status fr_piflow_student_digest(fr_piflow_student *st, uint64_t *digest);
fr_status fr_piflow_student_init(fr_piflow_student *st, uint32_t seed);

typedef struct {
    int64_t steps, batch;   /* AdamW steps, x_s per step */
    int n_inter;            /* N intermediate times per x_s (2) */
    int substeps;           /* the rollout's substeps per unit of σ (128) */
    double lr, beta1, beta2, weight_decay;
    uint32_t seed;
    int64_t ckpt_every;     /* write the checkpoint every N steps (0: at the end only) */
    fr_audit *audit;        /* NULL, or the log every step is recorded in (flowrl/audit_train.h) */
} fr_piflow_train_opts;

fr_piflow_train_opts fr_piflow_train_opts_default(void);

/* One imitation loss over B rows (the trainer's step, also the golden case): the student's rows
 * (B, W) at x_s (B, D), σ_s = 1; for each n < N and sample b the time t_bn (nt, (B·N,) b-major),
 * the detached rollout from (x_s, 1) to t_bn, the teacher's velocity there (u_teacher: called
 * once per n with the B states, returns (B, D) floats), then
 *   L = (1/N) Σ_n mean_{b,c} (π(x_t, t) − u_teacher)²,
 * *loss = L, drow (B, W) = dL/drow (floats, the MLP backward's input). */
typedef fr_status (*fr_piflow_teacher_fn)(void *user, int64_t B, const float *x, // (B, D)
                                          const float *t, // (B,)
                                          float *u);      // (B, D)
fr_status fr_piflow_imitation_loss(int K, int D, int64_t B, int N, int substeps,
                                   const float *rows, // (B, W)
                                   const float *x_s,  // (B, D)
                                   const double *nt,  // (B·N,)
                                   fr_piflow_teacher_fn teacher, void *user, double *loss,
                                   float *drow);      // (B, W)

/* The teacher: a flowrl velocity checkpoint (flowrl pretrain), called unconditionally with the
 * task's prompt id 0 (no classifier-free guidance: an unconditional 2-D teacher). */
typedef struct {
    fr_infer_ckpt ck;      /* the model and its task */
    fr_model_ws ws;
    float *dx, *dt, *du;   /* backend (cap, D), (cap,), (cap, D) */
    int32_t *dc;           /* backend (cap, S) */
    int32_t *c_h;          /* host (cap, S) */
    int64_t cap;
    int64_t D;
    fr_backend *be;
} fr_piflow_teacher;

fr_status fr_piflow_teacher_load(fr_piflow_teacher *t, fr_backend *be, const char *path, int64_t cap);
void fr_piflow_teacher_free(fr_piflow_teacher *t);
/* The condition of the next calls' rows: prompts (B,) (row b has prompt prompts[b]; the load
 * sets prompt 0 everywhere). */
fr_status fr_piflow_teacher_set_prompts(fr_piflow_teacher *t, int64_t B, const int *prompts);
/* u (B, D) = v(x, σ) for B <= cap host rows (model time 1000 σ). */
fr_status fr_piflow_teacher_velocity(void *teacher, int64_t B, const float *x, const float *t, float *u);
/* n teacher samples (n, D): x(1) ~ N(0, I) from Philox (seed, FR_RNG_PIFLOW_SAMPLE, i, 1, 0,
 * lane d), Euler on σ_i = 1 − i/steps. */
fr_status fr_piflow_teacher_sample(fr_piflow_teacher *t, int64_t n, int steps, uint32_t seed, float *out);
/* The same with sample i's prompt prompts[i] (NULL: prompt 0, fr_piflow_teacher_sample). */
fr_status fr_piflow_teacher_sample_c(fr_piflow_teacher *t, int64_t n, int steps, uint32_t seed, const int *prompts,
                                     float *out);

/* The student's samples (n, D): x_s ~ N(0, I) from Philox (seed, FR_RNG_PIFLOW_SAMPLE, i, 0, 0,
 * lane d), one network call, then the policy's rollout from σ = 1 to 0. */
fr_status fr_piflow_student_sample(fr_piflow_student *st, int64_t n, int substeps, uint32_t seed, float *out);

/* Distillation: steps of the imitation loss (x_s from Philox (seed, FR_RNG_PIFLOW_NOISE, step,
 * b, 0, lane d), t from (seed, FR_RNG_PIFLOW_TIME, step, b, n)) and AdamW; a checkpoint at path
 * every ckpt_every steps and at the end; resume_path (or NULL) continues one bit for bit.
 * progress (or NULL) gets every step's loss and the parameters' digest. */
typedef void (*fr_piflow_progress)(void *user, int64_t step, double loss, uint64_t digest);
fr_status fr_piflow_train(fr_piflow_student *st, fr_piflow_teacher *t, const fr_piflow_train_opts *o,
                          const char *out_path, const char *resume_path,
                          fr_piflow_progress progress, void *user);

/* Reads a student checkpoint (fr_piflow_train's) into an allocated student of cap rows. */
fr_status fr_piflow_student_load(fr_piflow_student *st, fr_backend *be, const char *path, int64_t cap);

#endif
