/* fr_rng_fill_normal's row for FMA hardware (flowrl/philox.h FR_PHILOX_FMA): every inline function
 * of the headers below (fr_logf, fr_sinf, fr_cosf, ...) is built here with fmaf as an instruction.
 * The arithmetic is the same (-ffp-contract=off: nothing else fuses), so are the bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("fma")
#endif

#include "flowrl/philox.h"

#if FR_PHILOX_FMA
void fr_rng_fill_normal_fma(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1,
                            uint32_t c2)
{
    fr_rng_fill_normal_row(out, n, seed, purpose, c0, c1, c2);
}
#endif
