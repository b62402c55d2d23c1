/* Training checkpoints: everything a run needs to continue bit for bit, in one
 * safetensors file (docs/design.md §5; written atomically by fr_st_write).
 *
 * Tensors, in this order (each group in the model's parameter order, flowrl/model.h):
 *   NAME            the model's parameters (so fr_model_load reads a checkpoint as a model)
 *   ema.NAME        the EMA shadow weights            (when an EMA is given)
 *   optim.m.NAME    AdamW first moments               (when an optimizer state is given)
 *   optim.v.NAME    AdamW second moments
 * Metadata: the model config keys of fr_model_config_to_meta, "flowrl.version" and, with
 * an optimizer state, "optim.step" (PyTorch's state["step"], decimal). The caller adds
 * its own keys (task, step, seed, options) before writing. No time stamps, host names or
 * paths: the same run writes the same bytes. The file carries a "digest.NAME" entry per
 * tensor (flowrl/safetensors.h, "Digests"), the caller's tensors included, and every read
 * of it (fr_st_read) checks them: a flipped bit is FR_ERR_FORMAT naming file and tensor. */
#ifndef FLOWRL_CHECKPOINT_H
#define FLOWRL_CHECKPOINT_H

#include "flowrl/model.h"
#include "flowrl/optim.h"
#include "flowrl/safetensors.h"
#include "flowrl/status.h"

/* Adds the tensors and metadata above to f (ema and opt may be NULL). */
fr_status fr_checkpoint_to_st(fr_st_file *f, const fr_model *m, const fr_ema *ema,
                              const fr_adamw_state *opt);

/* Reads them back into an allocated model and (when not NULL) an initialised EMA and
 * AdamW state of the same parameter list. Every requested tensor must be present, F32
 * and of the parameter's shape (FR_ERR_FORMAT naming it); the file's model config must
 * equal m->cfg (FR_ERR_MISMATCH naming the first differing key). */
fr_status fr_checkpoint_from_st(const fr_st_file *f, fr_model *m, fr_ema *ema,
                                fr_adamw_state *opt);

/* FR_OK when the checkpoint at path reads (header, layout) and every stored tensor digest
 * matches its data; else the error of fr_st_read, naming path (and the tensor). A file
 * written before digests existed is checked for its format only. */
fr_status fr_checkpoint_verify(const char *path);

#endif
