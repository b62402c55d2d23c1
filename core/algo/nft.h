/* DiffusionNFT's options and the functions of its registry row (core/algo/nft*.c; the
 * objective is core/nft.c, flowrl/nft.h). */
#ifndef FLOWRL_CORE_ALGO_NFT_H
#define FLOWRL_CORE_ALGO_NFT_H

#include "flowrl/algo.h"
#include "flowrl/nft.h"

typedef struct {
    double nft_beta;          /* β of the implicit policies (`config.beta`) */
    fr_nft_adv_mode adv_mode; /* all */
    int64_t decay_type;       /* the old policy's decay: 0, 1 (default) or 2 */
} fr_nft_opts;

/* The objective's parameters of a run's options (the KL weight is the common --beta). */
fr_status fr_nft_opts_params(const fr_run_opts *ro, const fr_nft_opts *o, fr_nft_params *p);

/* core/algo/nft.c */
fr_status fr_nft_algo_setup(fr_run *r, void **state);
void fr_nft_algo_header(fr_run *r, void *state);
fr_status fr_nft_algo_epoch(fr_run *r, void *state);
fr_status fr_nft_algo_save(fr_run *r, void *state, fr_st_file *f);
fr_status fr_nft_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path);
void fr_nft_algo_free(void *state);

extern const fr_algo fr_algo_nft;

#endif
