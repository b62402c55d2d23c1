/* Parameter indices of the model's list (flowrl/model.h gives the order). */
#ifndef FLOWRL_CORE_MODEL_INTERNAL_H
#define FLOWRL_CORE_MODEL_INTERNAL_H

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

#endif
