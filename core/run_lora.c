/* LoRA in the run loop (flowrl/lora.h, docs/lora.md): the policy as a view of an adapter on the
 * loaded base, and the run's other models as views of further adapters on the same base. */
#include <string.h>

#include "core/run_internal.h"

/* --lora-rank > 0 (flowrl/lora.h): the loaded base moves into r->lora, the policy becomes the
 * view of its trained adapter "default" (init from the run's seed). An algorithm whose extra models
 * are not views yet (fr_algo.no_lora) is refused. */
fr_status fr_run_setup_lora(fr_run *r)
{
    const fr_run_common *c = &r->o->c;
    if (r->algo->no_lora)
        return fr_fail(FR_ERR_ARG, "--lora-rank: %s keeps a second full copy of the policy and does not run on LoRA "
                       "adapters yet (docs/lora.md lists the algorithms that do)", r->algo->name);
    if (!FR_ALLOC(r->lora, 1)) return FR_ERR_NOMEM;
    const double alpha = c->lora_alpha > 0.0 ? c->lora_alpha : (double)c->lora_rank;
    FR_TRY(fr_lora_new(r->lora, &r->pol, c->lora_rank, alpha, c->lora_targets, r->o->run.seed));
    return fr_lora_view(&r->pol, r->lora, 0, 1);
}

fr_status fr_run_model_like(fr_run *r, const char *adapter, fr_model *m)
{
    memset(m, 0, sizeof *m);
    if (!r->lora) return fr_model_alloc(m, r->be, &r->pol.cfg);
    int a;
    FR_TRY(fr_lora_adapter(r->lora, adapter, &a));
    return fr_lora_view(m, r->lora, a, 0);
}
