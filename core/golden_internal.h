/* Helpers of the golden case files (core/golden_*.c); see flowrl/golden.h. */
#ifndef FLOWRL_GOLDEN_INTERNAL_H
#define FLOWRL_GOLDEN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/golden.h"
#include "flowrl/model.h"
#include "flowrl/sampler.h"

/* ---- generator side: every helper adds "in.<name>" to g->f ----------------------------- */

/* Draws lo + (hi − lo)·u_i (uniform) / scale·z_i (normal) and records the coordinates in
 * "rng.in.<name>". *data (may be NULL) points into the stored tensor, for edits that a
 * "derived.in.<name>" note must then describe. */
fr_status fr_gi_uniform(fr_golden_in *g, const char *name, int ndim, const int64_t *shape,
                        float lo, float hi, float **data);
fr_status fr_gi_normal(fr_golden_in *g, const char *name, int ndim, const int64_t *shape,
                       float scale, float **data);
/* A 0-d float32 / float64 input. */
fr_status fr_gi_scalar(fr_golden_in *g, const char *name, float v);
fr_status fr_gi_scalar_f64(fr_golden_in *g, const char *name, double v);
/* An input formed by the generator (not drawn); how says how ("derived.in.<name>"). */
fr_status fr_gi_tensor(fr_golden_in *g, const char *name, fr_dtype dt, int ndim,
                       const int64_t *shape, const void *data, const char *how);
/* "param.<key>" metadata. */
fr_status fr_gi_param(fr_golden_in *g, const char *key, long long v);
fr_status fr_gi_param_str(fr_golden_in *g, const char *key, const char *v);
/* A free-form note on the case ("note.<key>"). */
fr_status fr_gi_note(fr_golden_in *g, const char *key, const char *v);

/* ---- compute side ------------------------------------------------------------------------ */

/* "in.<name>", which must be F32 with ndim dims; shape (may be NULL) receives the dims.
 * FR_ERR_FORMAT naming the tensor otherwise. */
fr_status fr_go_f32(const fr_st_file *in, const char *name, int ndim, int64_t *shape,
                    const float **data);
/* "in.<name>" of dtype dt with the exact shape given. */
fr_status fr_go_exact(const fr_st_file *in, const char *name, fr_dtype dt, int ndim,
                      const int64_t *shape, const void **data);
fr_status fr_go_scalar(const fr_st_file *in, const char *name, float *v);
fr_status fr_go_scalar_f64(const fr_st_file *in, const char *name, double *v);
fr_status fr_go_param(const fr_st_file *in, const char *key, long long lo, long long hi,
                      long long *v);
/* Adds a zeroed "out.<name>" and returns its data. */
fr_status fr_go_out(fr_st_file *out, const char *name, fr_dtype dt, int ndim,
                    const int64_t *shape, void **data);
fr_status fr_go_out_f32(fr_st_file *out, const char *name, int ndim, const int64_t *shape,
                        float **data);
fr_status fr_go_out_scalar(fr_st_file *out, const char *name, float v);
fr_status fr_go_out_scalar_f64(fr_st_file *out, const char *name, double v);

/* ---- compute side: backend memory ---------------------------------------------------------
 * A case computes in the memory of the backend under test. Its inputs go up (fr_h2d into
 * fr_dev_alloc'd buffers), the op entries and library functions run on them, and its
 * outputs come back (fr_d2h). For ref and opt backend memory is host memory: the same
 * copies, the same bits. The harness (fr_golden_build, fr_golden_check_case) opens the scope
 * with fr_gd_begin and closes it with fr_gd_end, which reads every fr_gd_out output back
 * into its "out.*" tensor once the computation has returned FR_OK, and frees every buffer
 * either way (so a case may return early). */

enum { FR_GD_MAX = 48 }; /* buffers of one case */

struct fr_golden_dev {
    fr_backend *be;
    int n;
    struct {
        void *dev;   /* backend memory */
        void *host;  /* the "out.*" tensor's data it is read back into; NULL: input, scratch */
        size_t bytes;
    } buf[FR_GD_MAX];
};

void fr_gd_begin(fr_golden_dev *d, fr_backend *be);
/* s == FR_OK: every output read back (a failed copy is the status); then frees all. */
fr_status fr_gd_end(fr_golden_dev *d, fr_status s);
/* n bytes of zeroed backend memory (scratch). */
fr_status fr_gd_alloc(fr_golden_dev *d, size_t bytes, void **dev);
/* A copy of host bytes in backend memory. */
fr_status fr_gd_up(fr_golden_dev *d, const void *host, size_t bytes, void **dev);
/* fr_go_f32 / fr_go_exact, the data uploaded: *dev is backend memory. */
fr_status fr_gd_f32(fr_golden_dev *d, const fr_st_file *in, const char *name, int ndim, int64_t *shape,
                    const float **dev);
fr_status fr_gd_exact(fr_golden_dev *d, const fr_st_file *in, const char *name, fr_dtype dt, int ndim,
                      const int64_t *shape, const void **dev);
/* fr_go_out, in backend memory: *dev starts as a copy of init (host, NULL: zeros) and is
 * read back into "out.<name>" by fr_gd_end. */
fr_status fr_gd_out(fr_golden_dev *d, fr_st_file *out, const char *name, fr_dtype dt, int ndim,
                    const int64_t *shape, const void *init, void **dev);
fr_status fr_gd_out_f32(fr_golden_dev *d, fr_st_file *out, const char *name, int ndim, const int64_t *shape,
                        const float *init, float **dev);
/* Reads the fr_gd_out buffer dev back now (per-sample values the host goes on with) and
 * gives its "out.*" tensor's data; fr_gd_end reads it again at the end. */
fr_status fr_gd_read(fr_golden_dev *d, const void *dev, void **host);

/* The fr_step of a sampler or objective case from its inputs (core/golden_samplers.c):
 * "param.sampler" must name k; the scalars the kind reads are 0-d inputs. */
fr_status fr_golden_read_step(const fr_st_file *in, fr_sampler_kind k, fr_step *p);

/* The tiny gmm2d model of epoch.flow_grpo (core/golden_epoch.c): its config as param.model.* and
 * every parameter drawn as in.<NAME> (none zero); and that model loaded from a case's inputs into
 * be's memory (fr_model_free it). */
fr_status fr_golden_model_in(fr_golden_in *g);
fr_status fr_golden_model_from_in(fr_backend *be, const fr_st_file *in, fr_model *m);

/* The ref table (for generators that form derived inputs, e.g. layernorm statistics). */
const fr_ops *fr_golden_ref_ops(void);

/* The activation cases' inputs and computations (core/golden_act.c), rows of the ops table. */
fr_status fr_golden_act_fwd_in(const fr_golden_case *c, fr_golden_in *g);
fr_status fr_golden_act_bwd_in(const fr_golden_case *c, fr_golden_in *g);
fr_status fr_golden_act_jvp_in(const fr_golden_case *c, fr_golden_in *g);
fr_status fr_golden_act_fwd_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out);
fr_status fr_golden_act_bwd_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out);
fr_status fr_golden_act_jvp_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out);
/* core/golden_eps_head.c: the eps x0 head's forward and backward */
fr_status fr_golden_eps_fwd_in(const fr_golden_case *c, fr_golden_in *g);
fr_status fr_golden_eps_bwd_in(const fr_golden_case *c, fr_golden_in *g);
fr_status fr_golden_eps_fwd_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out);
fr_status fr_golden_eps_bwd_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out);

/* ---- the case tables of each family ------------------------------------------------------ */

extern const fr_golden_case fr_golden_cases_ops[];
extern const size_t fr_golden_n_ops;
extern const fr_golden_case fr_golden_cases_attn[]; /* core/golden_attn.c: the DiT's ops */
extern const size_t fr_golden_n_attn;
extern const fr_golden_case fr_golden_cases_samplers[];
extern const size_t fr_golden_n_samplers;
extern const fr_golden_case fr_golden_cases_advantages[];
extern const size_t fr_golden_n_advantages;
extern const fr_golden_case fr_golden_cases_objectives[];
extern const size_t fr_golden_n_objectives;
extern const fr_golden_case fr_golden_cases_epoch[];
extern const size_t fr_golden_n_epoch;
extern const fr_golden_case fr_golden_cases_awm[];
extern const size_t fr_golden_n_awm;
extern const fr_golden_case fr_golden_cases_dgpo[];
extern const size_t fr_golden_n_dgpo;
extern const fr_golden_case fr_golden_cases_nft[];
extern const size_t fr_golden_n_nft;
extern const fr_golden_case fr_golden_cases_pair_dpo[];
extern const size_t fr_golden_n_pair_dpo;
extern const fr_golden_case fr_golden_cases_dro[];
extern const size_t fr_golden_n_dro;
extern const fr_golden_case fr_golden_cases_dppo[];
extern const size_t fr_golden_n_dppo;
extern const fr_golden_case fr_golden_cases_gfn[];
extern const size_t fr_golden_n_gfn;
extern const fr_golden_case fr_golden_cases_gfn_diffusion[];
extern const size_t fr_golden_n_gfn_diffusion;
extern const fr_golden_case fr_golden_cases_rgrad[];
extern const size_t fr_golden_n_rgrad;
extern const fr_golden_case fr_golden_cases_pxpo[];
extern const size_t fr_golden_n_pxpo;
extern const fr_golden_case fr_golden_cases_prefmore[]; /* issue 21: Flow-RWR, ... (core/golden_prefmore.c) */
extern const size_t fr_golden_n_prefmore;
extern const fr_golden_case fr_golden_cases_gfn_box[];
extern const size_t fr_golden_n_gfn_box;
extern const fr_golden_case fr_golden_cases_afn[];
extern const size_t fr_golden_n_afn;
extern const fr_golden_case fr_golden_cases_gtb[]; /* issue 22: guided TB */
extern const size_t fr_golden_n_gtb;
extern const fr_golden_case fr_golden_cases_fpo[];
extern const size_t fr_golden_n_fpo;
extern const fr_golden_case fr_golden_cases_reinflow[];
extern const size_t fr_golden_n_reinflow;
extern const fr_golden_case fr_golden_cases_lora[]; /* issue 20: the LoRA linear layer (core/golden_lora.c) */
extern const size_t fr_golden_n_lora;
extern const fr_golden_case fr_golden_cases_graph[]; /* issue 22: edge_gather, edge_scatter_add (core/golden_graph.c) */
extern const size_t fr_golden_n_graph;
extern const fr_golden_case fr_golden_cases_piflow[]; /* issue 22 §10.2: pi-Flow's policy and loss (core/golden_piflow.c) */
extern const size_t fr_golden_n_piflow;
extern const fr_golden_case fr_golden_cases_gmflow[]; /* issue 22 §10.1: GMFlow's NLL (core/golden_gmflow.c) */
extern const size_t fr_golden_n_gmflow;

#endif
