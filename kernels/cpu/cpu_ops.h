/* The cpu backend's op functions (one file each), gathered by op_table_cpu.c.
 * fp32 only: these are the reference implementations the cuda kernels are
 * checked against, so they favour clarity and 64-bit indexing over speed
 * (OpenMP over heads/channels/rows keeps tiny-model runs quick). */
#ifndef SCANFLASH_KERNELS_CPU_OPS_H
#define SCANFLASH_KERNELS_CPU_OPS_H

#include "ops/op_table.h"

#define SF_CPU_OP(name, params) sf_status sf_cpu_##name(sf_op_ctx *ctx, const params *p, sf_error *err)

SF_CPU_OP(embedding, sf_embedding_params);
SF_CPU_OP(norm, sf_norm_params);
SF_CPU_OP(gemm, sf_gemm_params);
SF_CPU_OP(rotary, sf_rotary_params);
SF_CPU_OP(activation, sf_activation_params);
SF_CPU_OP(sample, sf_sample_params);
SF_CPU_OP(kv_append, sf_kv_append_params);
SF_CPU_OP(attention, sf_attention_params);
SF_CPU_OP(attention_naive, sf_attention_params);
SF_CPU_OP(attention_decode, sf_attention_decode_params);
SF_CPU_OP(attention_merge, sf_attention_merge_params);
SF_CPU_OP(conv1d, sf_conv1d_params);
SF_CPU_OP(conv1d_update, sf_conv1d_update_params);
SF_CPU_OP(selective_scan, sf_selective_scan_params);
SF_CPU_OP(selective_scan_naive, sf_selective_scan_params);
SF_CPU_OP(selective_state_update, sf_selective_state_update_params);
SF_CPU_OP(ssd, sf_ssd_params);
SF_CPU_OP(ssd_naive, sf_ssd_params);
SF_CPU_OP(ssd_update, sf_ssd_update_params);

/* Shared argument checks of attention and attention_naive. */
sf_status sf_cpu_attention_validate(const char *op, const sf_attention_params *p, sf_error *err);

/* Every cpu op starts with this: the cpu backend computes in fp32 only. */
#define SF_CPU_REQUIRE_F32(op, dt)                                                          \
  do {                                                                                      \
    if ((dt) != SF_F32)                                                                     \
      return sf_fail(err, SF_ERR_UNSUPPORTED, "%s: the cpu backend computes in f32, got %s", \
                     op, sf_dtype_name(dt));                                                \
  } while (0)

#endif
