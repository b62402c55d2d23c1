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

/* torch.optim.AdamW (_single_tensor_adam) computes these in Python double:
 *   decay = 1 - lr*wd, step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t).
 * We do the same in double from the float hyper-parameters and round each to float once.
 * step is the 1-based count after this update; step < 1 gives step_size = inf (1 - beta^0
 * = 0), which the caller must not ask for. */
fr_adamw_hp fr_adamw_prepare(float lr, float beta1, float beta2, float eps,
                             float weight_decay, int64_t step)
{
    fr_adamw_hp hp;
    hp.lr = lr;
    hp.beta1 = beta1;
    hp.beta2 = beta2;
    hp.eps = eps;
    hp.weight_decay = weight_decay;
    hp.step = step;
    hp.decay = (float)(1.0 - (double)lr * (double)weight_decay);
    hp.step_size = (float)((double)lr / (1.0 - pow_by_squaring(beta1, step)));
    hp.bc2_sqrt = (float)sqrt(1.0 - pow_by_squaring(beta2, step));
    return hp;
}
