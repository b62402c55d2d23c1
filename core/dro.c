/* Diffusion-DRO's hinge ranking loss and the replay buffer's draws (flowrl/dro.h,
 * docs/algorithms/dro.md): the hinge on the host; the row errors and the gradient through the
 * shared row plumbing of the pair losses (flowrl/row_err.h). */
#include "flowrl/dro.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/philox.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/row_err.h"

#define MAX_ROWS ((int64_t)1 << 24)

fr_status fr_dro_hinge(int64_t B, double margin, double gout, const double *e_exp, const double *e_exp_ref,
                       const double *e_pol, const double *e_pol_ref, double *diff, double *term, double *coef,
                       double *loss)
{
    if (B < 1 || B > MAX_ROWS) return fr_fail(FR_ERR_ARG, "fr_dro_hinge: B %lld, expected 1..2^24", (long long)B);
    if (!isfinite(margin) || !isfinite(gout))
        return fr_fail(FR_ERR_ARG, "fr_dro_hinge: margin %g, gout %g, expected finite", margin, gout);
    if (!e_exp || !e_exp_ref || !e_pol || !e_pol_ref) return fr_fail(FR_ERR_ARG, "fr_dro_hinge: NULL row errors");
    double *tm = fr_malloc((size_t)B * sizeof *tm);
    if (!tm) return FR_ERR_NOMEM;
    for (int64_t i = 0; i < B; i++) {
        /* `loss_expert - loss_expert0`, `loss_policy - loss_policy0`, their difference */
        const double d = (e_exp[i] - e_exp_ref[i]) - (e_pol[i] - e_pol_ref[i]);
        const double z = d + margin;
        tm[i] = z > 0.0 ? z : 0.0; /* torch.maximum(diff + margin, 0) */
        if (diff) diff[i] = d;
        if (coef) coef[i] = ((z > 0.0 ? 1.0 : z == 0.0 ? 0.5 : 0.0) * gout) / (double)B;
    }
    if (loss) *loss = fr_awm_lanes_mean(tm, B);
    if (term) memcpy(term, tm, (size_t)B * sizeof *tm);
    free(tm);
    return FR_OK;
}

typedef struct {
    double margin, gout;
    double *diff, *term; /* (B,) */
    fr_dro_stats *st;
} loss_ctx;

/* fr_row_err_fn over rows [expert (B); policy (B)]: the hinge, its statistics and the row scales
 * s_i = (float)((h_i·gout)·(2/(B·D))) formed from h_i directly, −s_i on the policy rows */
static fr_status hinge_rows(void *ctx, int64_t R, int64_t D, const double *e, const double *e_ref, float *scale)
{
    loss_ctx *c = ctx;
    const int64_t B = R / 2;
    fr_dro_stats *st = c->st;
    const double *e_exp = e, *e_pol = e + B, *e_exp_ref = e_ref, *e_pol_ref = e_ref + B;
    FR_TRY(fr_dro_hinge(B, c->margin, c->gout, e_exp, e_exp_ref, e_pol, e_pol_ref, c->diff, c->term, NULL, &st->loss));
    int64_t active = 0;
    for (int64_t i = 0; i < B; i++) active += c->diff[i] + c->margin > 0.0;
    st->active = (double)active / (double)B;
    st->diff_mean = fr_awm_lanes_mean(c->diff, B);
    st->e_exp = fr_awm_lanes_mean(e_exp, B);
    st->e_pol = fr_awm_lanes_mean(e_pol, B);
    st->e_exp_ref = fr_awm_lanes_mean(e_exp_ref, B);
    st->e_pol_ref = fr_awm_lanes_mean(e_pol_ref, B);
    if (scale) {
        const double two_over_n = 2.0 / (double)(B * D);
        for (int64_t i = 0; i < B; i++) {
            const double z = c->diff[i] + c->margin, h = z > 0.0 ? 1.0 : z == 0.0 ? 0.5 : 0.0;
            scale[i] = (float)((h * c->gout) * two_over_n);
            scale[B + i] = -scale[i];
        }
    }
    return FR_OK;
}

fr_status fr_dro_loss(fr_backend *be, double margin, int64_t B, int64_t D, const float *out, const float *out_ref,
                      const float *target, double gout, float *grad, double *e_out, double *diff_out, double *term_out,
                      fr_dro_stats *st)
{
    const char *fn = "fr_dro_loss";
    if (B < 1 || D < 1 || B > MAX_ROWS || D > ((int64_t)1 << 30) || 2 * B > ((int64_t)1 << 40) / D)
        return fr_fail(FR_ERR_ARG, "%s: shape B %lld, D %lld, expected each >= 1", fn, (long long)B, (long long)D);
    if (!be || !out || !out_ref || !target || !st) return fr_fail(FR_ERR_ARG, "%s: NULL argument", fn);
    const int64_t R = 2 * B;
    memset(st, 0, sizeof *st);
    /* host: e (4B: θ rows [expert; policy], then ref rows), diff, term (B each) */
    double *w = fr_malloc((size_t)(6 * B) * sizeof(double));
    if (!w) return FR_ERR_NOMEM;
    double *e = w, *diff = e + 4 * B, *term = diff + B;
    loss_ctx c = {margin, gout, diff, term, st};
    fr_status s = fr_row_err_loss(be, R, D, out, out_ref, target, hinge_rows, &c, grad, e, e + R);
    if (s == FR_OK) {
        /* (4, B): e_θ^exp, e_θ^pol, e_ref^exp, e_ref^pol */
        if (e_out) memcpy(e_out, e, (size_t)(4 * B) * sizeof(double));
        if (diff_out) memcpy(diff_out, diff, (size_t)B * sizeof(double));
        if (term_out) memcpy(term_out, term, (size_t)B * sizeof(double));
    }
    free(w);
    return s;
}

fr_status fr_dro_pick(uint32_t seed, uint32_t m, int64_t n, int64_t T, int64_t b, int64_t *pos, int64_t *step)
{
    if (n < 1 || T < 1 || b < 1 || n > MAX_ROWS || T > MAX_ROWS || b > MAX_ROWS || !pos || !step)
        return fr_fail(FR_ERR_ARG, "fr_dro_pick: buffer of %lld trajectories of %lld steps, %lld rows, expected each >= 1",
                       (long long)n, (long long)T, (long long)b);
    if (b <= n) {
        int64_t *perm = fr_malloc((size_t)n * sizeof *perm);
        if (!perm) return FR_ERR_NOMEM;
        fr_rng_perm(perm, n, seed, FR_RNG_DRO_PICK, m, 0); /* `torch.randperm(N)[:batch_size]` */
        memcpy(pos, perm, (size_t)b * sizeof *perm);
        free(perm);
    } else {
        for (int64_t i = 0; i < b; i++) /* `torch.randint(0, N, (batch_size,))` */
            pos[i] = fr_rng_below(fr_rng_u32(seed, FR_RNG_DRO_PICK, m, (uint32_t)i, 1, 0), (uint32_t)n);
    }
    for (int64_t i = 0; i < b; i++) /* `torch.randint(0, T, (batch_size,))` */
        step[i] = fr_rng_below(fr_rng_u32(seed, FR_RNG_DRO_PICK, m, (uint32_t)i, 2, 0), (uint32_t)T);
    return FR_OK;
}
