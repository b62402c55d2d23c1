/* Every Check suite of the test runner. Add a suite: write tests/test_NAME.c with
 * `Suite *suite_NAME(void)` and add one line to FR_SUITES. */
#ifndef FLOWRL_TEST_SUITES_H
#define FLOWRL_TEST_SUITES_H

#include <check.h>

#define FR_SUITES(X)                                                                       \
    X(philox)                                                                              \
    X(emu)                                                                                 \
    X(detmath)                                                                             \
    X(tensor)                                                                              \
    X(digest)                                                                              \
    X(ops)                                                                                 \
    X(ops_grad)                                                                            \
    X(ops_model)                                                                           \
    X(ops_sampler)                                                                         \
    X(ops_traj)                                                                            \
    X(safetensors)                                                                         \
    X(model)                                                                               \
    X(lora)                                                                                \
    X(dit)                                                                                 \
    X(schedule)                                                                            \
    X(samplers)                                                                            \
    X(objectives)                                                                          \
    X(adv_local)                                                                           \
    X(awm)                                                                                 \
    X(nft)                                                                                 \
    X(tasks)                                                                               \
    X(png)                                                                                 \
    X(pretrain)                                                                            \
    X(audit)                                                                               \
    X(cli)                                                                                 \
    X(opts)                                                                                \
    X(opt)                                                                                 \
    X(opt_frozen)                                                                          \
    X(profile)                                                                             \
    X(backends)                                                                            \
    X(reward_cmd)                                                                          \
    X(rollout)                                                                             \
    X(rollout_engine)                                                                      \
    X(flash)                                                                               \
    X(chunk)                                                                               \
    X(family)                                                                              \
    X(noise_search)                                                                        \
    X(branch_grpo)                                                                         \
    X(g2rpo)                                                                               \
    X(traj)                                                                                \
    X(golden)                                                                              \
    X(capi)                                                                                \
    X(train)                                                                               \
    X(algos)                                                                               \
    X(runs)                                                                                \
    X(awm_run)                                                                             \
    X(dgpo)                                                                                \
    X(dpo)                                                                                 \
    X(dro)                                                                                 \
    X(rgrad)                                                                               \
    X(rwr)                                                                                 \
    X(ddo)                                                                                 \
    X(balanced_dpo)                                                                        \
    X(smpo)                                                                                \
    X(fast)                                                                                \
    X(cuda)                                                                                \
    X(integrity)                                                                           \
    X(plots)                                                                               \
    X(task_render)                                                                         \
    X(prefs)                                                                               \
    X(pair_pref)                                                                           \
    X(d3po)                                                                                \
    X(pxpo)                                                                                \
    X(classifier)                                                                          \
    X(spo)                                                                                 \
    X(gfn)                                                                                 \
    X(gfn_diffusion)                                                                       \
    X(gfn_diffusion_expl)                                                                  \
    X(gfn_diffusion_ls)                                                                    \
    X(gfn_diffusion_pis)                                                                   \
    X(gfn_box)                                                                             \
    X(gfn_comb)                                                                            \
    X(env_ctl)                                                                             \
    X(ctl)                                                                                 \
    X(meanflow)                                                                            \
    X(fpo)                                                                                 \
    X(reinflow)                                                                            \
    X(dppo)                                                                                \
    X(gfn_losses)                                                                          \
    X(gfn_ext)                                                                             \
    X(afn)                                                                                 \
    X(flgfn)                                                                               \
    X(piflow)                                                                              \
    X(gmflow)                                                                              \
    X(gfn_guided)                                                                          \
    X(gfn_oc)                                                                              \
    X(torch)

/* Weak, so that a suite whose file is missing is reported by the runner as a failure
 * instead of breaking the link of every other suite. */
#define FR_DECLARE_SUITE(name) Suite *suite_##name(void) __attribute__((weak));
FR_SUITES(FR_DECLARE_SUITE)

#endif
