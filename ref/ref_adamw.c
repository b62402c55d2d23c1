/* AdamW over fr_adamw_elem (flowrl/elem.h; PyTorch semantics, formula there). */
#include "flowrl/elem.h"
#include "ref/ref_internal.h"

void fr_ref_adamw(int64_t n,
                  float *p,       // (n,) parameters, updated
                  const float *g, // (n,) gradients
                  float *m,       // (n,) first moment, updated
                  float *v,       // (n,) second moment, updated
                  const fr_adamw_hp *hp)
{
    for (int64_t i = 0; i < n; i++) fr_adamw_elem(&p[i], g[i], &m[i], &v[i], hp);
}
