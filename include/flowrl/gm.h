/* The Gaussian-mixture output of a GMFlow / pi-Flow network (docs/algorithms/gmflow.md,
 * piflow.md): one row per sample holds, over the D-vector velocity u,
 *
 *   [ mu_0 (D) | mu_1 (D) | ... | mu_{K-1} (D) | a_0 ... a_{K-1} | s ]
 *
 * K component means (component-major), K logits whose log_softmax is log w_k, and one log-std s
 * shared by every component and coordinate (GMFlow's GMFlowMLP2DDenoiser: Lakonik/GMFlow@c3697df
 * lib/models/architecture/toymodels.py). Both algorithms read a row through these offsets so
 * that one network file serves either. */
#ifndef FLOWRL_GM_H
#define FLOWRL_GM_H

#include <stdint.h>

static inline int64_t fr_gm_width(int K, int D) { return (int64_t)K * D + K + 1; }
static inline int64_t fr_gm_mean_off(int K, int D, int k) { (void)K; return (int64_t)k * D; }
static inline int64_t fr_gm_logit_off(int K, int D) { return (int64_t)K * D; }
static inline int64_t fr_gm_logstd_off(int K, int D) { return (int64_t)K * D + K; }

#endif
