/* The algorithm registry (flowrl/algo.h): one line per algorithm. */
#include <stdio.h>
#include <string.h>

#include "flowrl/algo.h"

extern const fr_algo fr_algo_flow_grpo;
extern const fr_algo fr_algo_awm;
extern const fr_algo fr_algo_dgpo;
extern const fr_algo fr_algo_nft;
extern const fr_algo fr_algo_dance_grpo;
extern const fr_algo fr_algo_mix_grpo;
extern const fr_algo fr_algo_tempflow_grpo;
extern const fr_algo fr_algo_chunk_grpo;
extern const fr_algo fr_algo_g2rpo;
extern const fr_algo fr_algo_smart_grpo;
extern const fr_algo fr_algo_ddpo;
extern const fr_algo fr_algo_pxpo;
extern const fr_algo fr_algo_d3po;
extern const fr_algo fr_algo_spo;
extern const fr_algo fr_algo_branch_grpo;
extern const fr_algo fr_algo_diffusion_dpo;
extern const fr_algo fr_algo_flow_dpo;
extern const fr_algo fr_algo_dro;
extern const fr_algo fr_algo_flow_rwr;
extern const fr_algo fr_algo_ddo;
extern const fr_algo fr_algo_balanced_dpo;
extern const fr_algo fr_algo_smpo;
extern const fr_algo fr_algo_gfn_tb, fr_algo_gfn_db, fr_algo_gfn_subtb, fr_algo_gfn_zvar, fr_algo_gfn_fm, fr_algo_gfn_mdb,
    fr_algo_gfn_rtb, fr_algo_gfn_op;
extern const fr_algo fr_algo_gfn_diffusion;
extern const fr_algo fr_algo_gfn_box;
extern const fr_algo fr_algo_afn, fr_algo_fl_gfn; /* issue 22: adversarial flow networks, FL-GFN */
extern const fr_algo fr_algo_gfn_comb;
extern const fr_algo fr_algo_gfn_guided; /* issue 22: guided TB, the ssr policy */
extern const fr_algo fr_algo_gfn_oc, fr_algo_gfn_oc_ft; /* issue 22 §8.1: OC-GFN */
extern const fr_algo fr_algo_ppo_gaussian;
extern const fr_algo fr_algo_draft, fr_algo_alignprop, fr_algo_refl;
extern const fr_algo fr_algo_fpo;
extern const fr_algo fr_algo_reinflow;
extern const fr_algo fr_algo_dppo;

static const fr_algo *const k_algos[] = {
    &fr_algo_flow_grpo,
    &fr_algo_awm,
    &fr_algo_dgpo,
    &fr_algo_nft,
    &fr_algo_dance_grpo,
    &fr_algo_mix_grpo,
    &fr_algo_tempflow_grpo,
    &fr_algo_chunk_grpo,
    &fr_algo_g2rpo,
    &fr_algo_smart_grpo,
    &fr_algo_ddpo,
    &fr_algo_pxpo,
    &fr_algo_d3po,
    &fr_algo_spo,
    &fr_algo_branch_grpo,
    &fr_algo_diffusion_dpo,
    &fr_algo_flow_dpo,
    &fr_algo_dro,
    &fr_algo_draft,
    &fr_algo_alignprop,
    &fr_algo_refl,
    &fr_algo_flow_rwr,
    &fr_algo_ddo,
    &fr_algo_balanced_dpo,
    &fr_algo_smpo,
    &fr_algo_gfn_tb,
    &fr_algo_gfn_db,
    &fr_algo_gfn_subtb,
    &fr_algo_gfn_zvar,
    &fr_algo_gfn_fm,
    &fr_algo_gfn_mdb,
    &fr_algo_gfn_rtb,
    &fr_algo_gfn_op,
    &fr_algo_gfn_diffusion,
    &fr_algo_gfn_box,
    &fr_algo_afn,
    &fr_algo_fl_gfn,
    &fr_algo_gfn_comb,
    &fr_algo_gfn_guided,
    &fr_algo_gfn_oc,
    &fr_algo_gfn_oc_ft,
    &fr_algo_ppo_gaussian,
    &fr_algo_fpo,
    &fr_algo_reinflow,
    &fr_algo_dppo,
    NULL,
};

const fr_algo *const *fr_algos(void) { return k_algos; }

const fr_algo *fr_algo_default(void) { return k_algos[0]; }

fr_status fr_algo_find(const char *name, const fr_algo **out)
{
    for (const fr_algo *const *a = k_algos; *a; a++)
        if (name && strcmp((*a)->name, name) == 0) {
            *out = *a;
            return FR_OK;
        }
    char list[512] = "";
    for (const fr_algo *const *a = k_algos; *a; a++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", a == k_algos ? "" : ", ", (*a)->name);
    }
    return fr_fail(FR_ERR_ARG, "unknown algorithm '%s' (known: %s; `flowrl algos` describes them)", name ? name : "",
                   list);
}
