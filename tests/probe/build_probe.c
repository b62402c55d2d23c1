/* The build record and the contract self-test of core/buildinfo.c, compiled with the
 * Makefile's flags and the caller's CFLAGS (tests/check_build.sh): one line per field,
 * exit 1 if the self-test fails. */
#include <stdio.h>

#include "flowrl/buildinfo.h"

int main(void)
{
    fr_status st = fr_fp_selftest();
    printf("compiler %s\ntarget %s\nflags %s\nselftest %s\n", fr_build_compiler(), fr_build_target(),
           fr_build_flags(), st == FR_OK ? "ok" : fr_last_error());
    return st == FR_OK ? 0 : 1;
}
