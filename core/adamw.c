/* The step-dependent AdamW scalars, computed once per step so that every backend uses
 * the same float values (fr_adamw_elem, flowrl/elem.h, uses them as given). */
#include "flowrl/adamw.h"

#include <math.h>

/* beta^t in double by repeated squaring: a fixed sequence of correctly rounded double
 * multiplies (no libm pow, whose last bits vary between libraries). */
static double pow_by_squaring(double beta, int64_t t)
{
    double r = 1.0, b = beta;
    for (; t > 0; t >>= 1) {
        if (t & 1) r *= b;
        b *= b;
    }
    return r;
}

/* torch.optim.AdamW (_single_tensor_adamw, torch 1.13) computes these in Python double from
 * the double hyper-parameters, and each float kernel receives its scalar rounded once
 * (Scalar.to<float>()):
 *   decay = 1 - lr*wd, alpha 1 - beta1, value 1 - beta2, step_size = lr / (1 - beta1^t),
 *   bc2_sqrt = sqrt(1 - beta2^t); beta1, beta2, eps as given.
 * We do the same. Forming 1 - beta2 from a float-rounded beta2 instead gives a value
 * 1.3e-5 relative off for beta2 = 0.999 (1 - 0.999f = 0.00099998713). beta^t: torch uses
 * libm pow; repeated squaring differs from it by a few double ulps, which moves the float
 * only on a rounding tie (test_adamw_prepare bounds it by 1 float ulp). step is the 1-based count after
 * this update; step < 1 gives step_size = inf (1 - beta^0 = 0), which the caller must not
 * ask for. */
fr_adamw_hp fr_adamw_prepare(double lr, double beta1, double beta2, double eps,
                             double weight_decay, int64_t step)
{
    fr_adamw_hp hp;
    hp.step = step;
    hp.decay = (float)(1.0 - lr * weight_decay);
    hp.beta1 = (float)beta1;
    hp.one_minus_beta1 = (float)(1.0 - beta1);
    hp.beta2 = (float)beta2;
    hp.one_minus_beta2 = (float)(1.0 - beta2);
    hp.bc2_sqrt = (float)sqrt(1.0 - pow_by_squaring(beta2, step));
    hp.eps = (float)eps;
    hp.step_size = (float)(lr / (1.0 - pow_by_squaring(beta1, step)));
    return hp;
}
