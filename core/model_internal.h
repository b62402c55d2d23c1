/* Parameter indices of the model's list (flowrl/model.h gives the order). */
#ifndef FLOWRL_CORE_MODEL_INTERNAL_H
#define FLOWRL_CORE_MODEL_INTERNAL_H

#include "flowrl/model.h"

enum {
    FR_MP_IN_W = 0,
    FR_MP_IN_B,
    FR_MP_T1_W,
    FR_MP_T1_B,
    FR_MP_T2_W,
    FR_MP_T2_B,
    FR_MP_COND,
    FR_MP_BLOCK0 /* then 6 per block, then the head */
};
enum { FR_MPB_LN_W = 0, FR_MPB_LN_B, FR_MPB_FC1_W, FR_MPB_FC1_B, FR_MPB_FC2_W, FR_MPB_FC2_B };
enum { FR_MPH_NORM_W = 0, FR_MPH_NORM_B, FR_MPH_OUT_W, FR_MPH_OUT_B };

#define FR_MP_BLOCK(k, j) (FR_MP_BLOCK0 + 6 * (int)(k) + (j))
#define FR_MP_HEAD(nb, j) (FR_MP_BLOCK0 + 6 * (int)(nb) + (j))

/* The DiT's list (core/dit.c gives the names and shapes). */
enum {
    FR_DP_PATCH_W = 0,
    FR_DP_PATCH_B,
    FR_DP_POS,
    FR_DP_T1_W,
    FR_DP_T1_B,
    FR_DP_T2_W,
    FR_DP_T2_B,
    FR_DP_COND,
    FR_DP_PPOS,
    FR_DP_BLOCK0 /* then 10 per block, then the head */
};
enum {
    FR_DPB_ADA_W = 0, FR_DPB_ADA_B, FR_DPB_QKV_W, FR_DPB_QKV_B, FR_DPB_PROJ_W, FR_DPB_PROJ_B,
    FR_DPB_FC1_W, FR_DPB_FC1_B, FR_DPB_FC2_W, FR_DPB_FC2_B, FR_DPB_COUNT
};
enum { FR_DPH_ADA_W = 0, FR_DPH_ADA_B, FR_DPH_OUT_W, FR_DPH_OUT_B, FR_DPH_COUNT };

#define FR_DP_BLOCK(k, j) (FR_DP_BLOCK0 + FR_DPB_COUNT * (int)(k) + (j))
#define FR_DP_HEAD(nb, j) (FR_DP_BLOCK0 + FR_DPB_COUNT * (int)(nb) + (j))

/* One parameter of a model's list: its name, shape and init (model.h, dit.c). */
typedef struct {
    char name[48];
    int ndim;
    int64_t shape[2];
    enum { INIT_ZERO, INIT_ONE, INIT_LINEAR, INIT_NORMAL, INIT_NORMAL_SMALL } init;
    int64_t fan_in;
} fr_param_spec;

/* A DiT workspace's LoRA scratch (docs/algorithms/dit.md §5): zs holds each target's s·z A^T,
 * one slot of `slot` floats (cap_B·L·r: a layer runs on B, B·N or B·L rows) per target when
 * per_target (keep: the backward reads them), else one slot reused; dzs (slot floats) is the
 * backward's scratch. All NULL when the view runs no adapter. */
typedef struct {
    float *zs, *dzs;
    int64_t slot;
    int per_target;
} fr_lora_scratch;

/* core/model_linear.c, the DiT's layers: y (B,N) = z (B,K) W^T + b for the weight at list index
 * w (N,K) and its bias at w + 1 (fr_linear_fwd), plus the adapter's term when the view adapts
 * w (fr_lora_layer); the backward adds dW += dy^T z (this process's rows of a split dW,
 * fr_model_dw_split), db += rows of dy (neither in a LoRA view: the base is frozen), the
 * adapter's dA, dB when the view trains it, and sets (or, dz_accumulate, adds) dz = dy W (+ the
 * adapter's path) unless dz is NULL. */
void fr_model_linear(const fr_model *m, fr_backend *be, const fr_lora_scratch *ls, int w, int64_t B, const float *z,
                     float *y);
fr_status fr_model_linear_bwd(fr_model *m, fr_backend *be, const fr_lora_scratch *ls, int w, int64_t B, const float *z,
                              const float *dy, float *dz, int dz_accumulate);
/* core/model.c: dW rows [lo, hi) (N, K) += dy[:, lo:hi]^T z (the many-process split). */
fr_status fr_model_dw_rows(fr_backend *be, int64_t B, int64_t N, int64_t K, int64_t lo, int64_t hi, const float *z,
                           const float *dy, float *dw);
/* The output head after the last layer (model.h): for the x0 heads, out = the head of xo
 * (den: the row's divisors kept for backward, or NULL); for the velocity head nothing (the
 * last layer wrote out). head_bwd turns dout into dL/d(last layer output) in place in xo
 * (x0 heads; returns xo) or returns dout; head_dx finishes dx (B,D) with the head's own
 * path from x. */
void fr_model_head_fwd(const fr_model *m, fr_backend *be, int64_t B, const float *t, const float *x,
                       const float *xo, float *den, float *out);
const float *fr_model_head_bwd(const fr_model *m, fr_backend *be, int64_t B, const float *den, const float *dout,
                               float *xo, float *dxh, int want_dx);
void fr_model_head_dx(const fr_model *m, fr_backend *be, int64_t B, const float *xo, const float *dxh, float *dx);

/* core/dit.c: the DiT's half of the model functions. */
fr_status fr_dit_config_check(const fr_model_config *cfg); /* FR_OK for the MLP */
int fr_dit_dw_split(const fr_model_config *cfg, int i);   /* fr_model_dw_split of a DiT */
int64_t fr_dit_num_params(const fr_model_config *cfg);
double fr_dit_flops(const fr_model_config *cfg);
int fr_dit_n_specs(const fr_model_config *cfg);
int fr_dit_make_specs(const fr_model_config *cfg, fr_param_spec *s); /* returns the count */
fr_status fr_dit_ws_alloc(fr_model_ws *ws, const fr_model *m, int64_t cap_B, int keep);
void fr_dit_ws_free(fr_model_ws *ws);
fr_status fr_dit_forward(const fr_model *m, fr_backend *be, fr_model_ws *ws, int64_t B, const float *x,
                         const float *t, const int32_t *c, float *out);
fr_status fr_dit_backward(fr_model *m, fr_backend *be, fr_model_ws *ws, const float *dout, float *dx);

#endif
