/* fr_rng_fill_normal on AVX2+FMA hardware (flowrl/philox.h FR_PHILOX_AVX2): eight Philox blocks
 * and their Box-Muller pairs at a time, the lane-by-lane port of fr_rng_fill_normal_row in
 * opt/opt_vtrig.h (header-only; suite opt checks it against the scalar row): the same bits. The
 * host's own draws use it (a trajectory's noise drawn again for its audit record: issue 15);
 * ref's rng_normal_rows keeps the scalar row. */
#include "flowrl/philox.h"

#if FR_PHILOX_AVX2
#include "opt/opt_vtrig.h"

FR_AVX2 void fr_rng_fill_normal_avx2(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1,
                                     uint32_t c2)
{
    fr_v_fill_normal_row(out, n, seed, purpose, c0, c1, c2);
}
#endif
