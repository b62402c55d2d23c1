/* The reference op table: every entry of fr_ops, from ref/. Other backends start from
 * this table and override what they implement (core/backend.c). */
#include "ref/ref_internal.h"
#include "flowrl/ref_backend.h"

void fr_ref_fill(fr_ops *ops)
{
    ops->name = "ref";
    ops->mem_alloc = fr_ref_mem_alloc;
    ops->mem_free = fr_ref_mem_free;
    ops->mem_h2d = fr_ref_mem_copy;
    ops->mem_d2h = fr_ref_mem_copy;
    ops->mem_d2d = fr_ref_mem_copy;
    ops->mem_zero = fr_ref_mem_zero;
    ops->mem_sync = fr_ref_mem_sync;
    ops->device = 0;
    ops->host_for = fr_ref_host_for;
    ops->gemm = fr_ref_gemm;
    ops->bias_add = fr_ref_bias_add;
    ops->bias_grad = fr_ref_bias_grad;
    ops->act_fwd = fr_ref_act_fwd;
    ops->act_bwd = fr_ref_act_bwd;
    ops->act_jvp = fr_ref_act_jvp;
    ops->act_fwd_save = fr_ref_act_fwd_save;
    ops->act_bwd_saved = fr_ref_act_bwd_saved;
    ops->layernorm_fwd = fr_ref_layernorm_fwd;
    ops->layernorm_bwd = fr_ref_layernorm_bwd;
    ops->binary = fr_ref_binary;
    ops->unary = fr_ref_unary;
    ops->axpby = fr_ref_axpby;
    ops->scale = fr_ref_scale;
    ops->fill = fr_ref_fill_const;
    ops->copy = fr_ref_copy;
    ops->row_sum = fr_ref_row_sum;
    ops->row_mean = fr_ref_row_mean;
    ops->sum = fr_ref_sum;
    ops->global_norm = fr_ref_global_norm;
    ops->adamw = fr_ref_adamw;
    ops->fm_loss = fr_ref_fm_loss;
    ops->flow_target = fr_ref_flow_target;
    ops->awm_sqerr = fr_ref_awm_sqerr;
    ops->row_msd_f64 = fr_ref_row_msd_f64;
    ops->kl_grad_add = fr_ref_kl_grad_add;
    ops->ema_lerp = fr_ref_ema_lerp;
    fr_ref_fill_model(ops);
    fr_ref_fill_attn(ops);
    fr_ref_fill_sampler(ops);
    fr_ref_fill_traj(ops);
    fr_ref_fill_nft(ops);
    fr_ref_fill_graph(ops);
}
