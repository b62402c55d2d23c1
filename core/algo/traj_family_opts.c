/* The Flow-GRPO family's shared option pieces (core/algo/traj_family.h): the defaults of the two
 * code bases the members come from, the checks every member makes, the tiny configuration's
 * common part, and the shared rollout settings. */
#include <stdio.h>
#include <string.h>

#include "core/algo/traj_family.h"

void fr_tf_defaults_flow_grpo(fr_run_opts *ro)
{
    ro->smp.sampler = FR_SAMPLER_SDE;
    ro->smp.num_steps = 10; /* FG geneval_sd3: 10 training steps */
    ro->smp.noise_level = 0.7f;
    ro->c.clip_range = 1e-4;
    ro->c.beta = 0.04f;
}

void fr_tf_defaults_ddim(fr_run_opts *ro)
{
    ro->smp.sampler = FR_SAMPLER_DDIM;
    ro->smp.num_steps = 10;
    ro->smp.noise_level = 1.0f;
    ro->c.beta = 0.0f;
}

void fr_tf_defaults_fastvideo(fr_run_opts *ro, fr_sampler_kind kind, int64_t T, float eta, double clip)
{
    ro->smp.sampler = kind;
    ro->smp.grid = FR_GRID_LINEAR;
    ro->smp.shift = 3.0;
    ro->smp.num_steps = T;
    ro->smp.noise_level = eta;
    ro->c.clip_range = clip;
    ro->c.adv_clip = 5.0f;
    ro->c.beta = 0.0f;
}

fr_status fr_tf_check_common(const fr_run_opts *ro, const char *name, const fr_sampler_kind *kinds, int n_kinds,
                             int64_t min_T, unsigned flags)
{
    int ok = 0;
    char list[128] = "";
    for (int i = 0; i < n_kinds; i++) {
        ok |= ro->smp.sampler == kinds[i];
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i == 0 ? "" : i == n_kinds - 1 ? " or " : ", ", fr_sampler_name(kinds[i]));
    }
#define BAD(fmt, ...) return fr_fail(FR_ERR_ARG, "train: %s: " fmt, name, __VA_ARGS__)
    if (!ok) BAD("--sampler %s: %s trains the %s sampler", fr_sampler_name(ro->smp.sampler), name, list);
    if (ro->smp.num_steps < min_T) BAD("--num-steps %lld: at least %lld", (long long)ro->smp.num_steps, (long long)min_T);
    if (!(ro->smp.noise_level > 0.0f)) BAD("--noise-level %g: the SDE step needs a noise level > 0", (double)ro->smp.noise_level);
    if (!(ro->c.clip_range > 0.0 && ro->c.clip_range < 1.0))
        BAD("--clip-range %g: the PPO clip needs 0 < c < 1 (the ratio is clipped to [1 - c, 1 + c])", ro->c.clip_range);
    if ((flags & FR_TF_LOCAL_GROUPS) && ro->c.group < 2)
        BAD("--group-size %lld: local-group advantages need G >= 2 (an unbiased std)", (long long)ro->c.group);
    if ((flags & FR_TF_NO_KL) && ro->c.beta != 0.0f)
        BAD("--beta %g: %s has no KL term (no reference model)", (double)ro->c.beta, name);
    return FR_OK;
#undef BAD
}

void fr_tf_tiny(fr_run_opts *ro)
{
    ro->smp.num_steps = 4;
    ro->c.prompts = 2;
    ro->c.group = 4;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 1;
    ro->c.clip_range = 0.2; /* lets the tiny policy move, so later epochs differ from the first */
    ro->opt.lr = 3e-3;
}

int fr_tf_needs_ref_beta(const fr_run_opts *ro, const void *ao)
{
    (void)ao;
    return ro->c.beta > 0.0f;
}

void fr_tf_group_x_T(fr_tf *f)
{
    f->rc.x_T_key = FR_XT_GROUP;
    f->rc.group_size = f->G;
}

void fr_tf_fastvideo_rollout(fr_tf *f, int same_noise)
{
    f->rc.time_quantized = 1;
    if (same_noise) fr_tf_group_x_T(f);
}

void fr_tf_header_ddim(fr_run *r)
{
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s, %lld steps, eta %g, cfg %g%s", fr_sampler_name(ro->smp.sampler),
                (long long)ro->smp.num_steps, (double)ro->smp.noise_level, (double)ro->smp.cfg,
                ro->smp.cfg != 1.0f ? " (also in training)" : "");
}
