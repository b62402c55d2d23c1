/* What this build of flowrl is: version, the floating-point flags of the determinism
 * contract, CPU features. Printed by `flowrl info` and at the top of every run. */
#ifndef FLOWRL_BUILDINFO_H
#define FLOWRL_BUILDINFO_H

#include <stddef.h>

#include "flowrl/status.h"

const char *fr_version(void);
/* The compiler flags the library was built with (the user's CFLAGS and the contract's
 * included; -I, -D and -W left out). */
const char *fr_build_flags(void);
/* The compiler and its version ("gcc 12.2.0", "clang 14.0.6"), from its own macros. */
const char *fr_build_compiler(void);
/* The architecture the library was compiled for ("x86_64", "aarch64", ...). */
const char *fr_build_target(void);
/* Run-time proof that the library was compiled without FMA contraction and without
 * fast-math: FR_OK, or FR_ERR_MISMATCH with what is wrong. */
fr_status fr_fp_selftest(void);
/* "avx2 fma avx512f ..." for the running CPU, into buf. */
const char *fr_cpu_features(char *buf, size_t n);

#endif
