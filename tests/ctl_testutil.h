/* Shared by the control tests (test_ctl.c, test_meanflow.c): a tiny demonstration set. */
#ifndef FLOWRL_TESTS_CTL_TESTUTIL_H
#define FLOWRL_TESTS_CTL_TESTUTIL_H

#include <stdio.h>

#include <check.h>

#include "flowrl/demos.h"
#include "tests/testutil.h"

/* Demonstrations of a = (2 o0, −o1) at 64 random observations (8 episodes of 8 steps, env "line"). */
static inline void fr_test_tiny_demos(fr_demos *d)
{
    fr_demos_init(d, 2, 2, 0, 0);
    uint64_t seed = 77;
    for (int e = 0; e < 8; e++) {
        float o[2] = {0};
        for (int k = 0; k < 8; k++) {
            o[0] = fr_test_uniform(&seed, -1.0f, 1.0f);
            o[1] = fr_test_uniform(&seed, -1.0f, 1.0f);
            const float act[2] = {2.0f * o[0], -o[1]};
            ck_assert_int_eq(fr_demos_push_step(d, o, act, 0.0, 0, NULL), FR_OK);
        }
        ck_assert_int_eq(fr_demos_end_episode(d, e, o, 0), FR_OK);
    }
    snprintf(d->env, sizeof d->env, "line");
}

#endif
