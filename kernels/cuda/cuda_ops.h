/* The cuda backend's op functions (one .cu file each), gathered by
 * op_table_cuda.c. C-compatible: the table is C11, the launchers are
 * extern "C" functions in CUDA C++ files. */
#ifndef SCANFLASH_KERNELS_CUDA_OPS_H
#define SCANFLASH_KERNELS_CUDA_OPS_H

#include "ops/op_table_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SF_CUDA_OP(name, params) sf_status sf_cuda_##name(sf_op_ctx *ctx, const params *p, sf_error *err)

/* memory (cuda_ctx.cu) */
sf_status sf_cuda_alloc(sf_op_ctx *ctx, size_t bytes, void **ptr, sf_error *err);
void sf_cuda_free(sf_op_ctx *ctx, void *ptr);
sf_status sf_cuda_upload(sf_op_ctx *ctx, void *dst, const void *src, size_t bytes, sf_error *err);
sf_status sf_cuda_download(sf_op_ctx *ctx, void *dst, const void *src, size_t bytes, sf_error *err);
sf_status sf_cuda_zero(sf_op_ctx *ctx, void *dst, size_t bytes, sf_error *err);
sf_status sf_cuda_sync(sf_op_ctx *ctx, sf_error *err);
sf_status sf_cuda_mem_info(sf_op_ctx *ctx, int64_t *free_bytes, int64_t *total_bytes, sf_error *err);

/* graphs (cuda_graph.cu) */
sf_status sf_cuda_graph_begin(sf_op_ctx *ctx, sf_error *err);
sf_status sf_cuda_graph_end(sf_op_ctx *ctx, void **graph, sf_error *err);
sf_status sf_cuda_graph_launch(sf_op_ctx *ctx, void *graph, sf_error *err);
void sf_cuda_graph_free(sf_op_ctx *ctx, void *graph);

/* The gemm op's path for decode shapes (gemm_small_m.cu): m <= this many rows
 * (at 4 and 8 rows cuBLASLt was faster on an H100: 3.4 / 5.6 ms decode steps
 * of mamba-1.4b against 2.4 ms at 16 rows). */
enum { SF_CUDA_GEMV_MAX_M = 2 };
/* *done = 0 when the shape or alignment does not suit it (cuBLASLt runs). */
sf_status sf_cuda_gemm_small_m(sf_op_ctx *ctx, const sf_gemm_params *p, int *done, sf_error *err);
/* The same kernel with its tuning chosen (bench_gemv): words = 16-byte loads
 * per lane per round (4, 8, 16), split = warps per output column (1..8). */
sf_status sf_cuda_gemm_small_m_variant(sf_op_ctx *ctx, const sf_gemm_params *p, int words, int split,
                                       sf_error *err);

SF_CUDA_OP(embedding, sf_embedding_params);
SF_CUDA_OP(norm, sf_norm_params);
SF_CUDA_OP(gemm, sf_gemm_params);
SF_CUDA_OP(rotary, sf_rotary_params);
SF_CUDA_OP(activation, sf_activation_params);
SF_CUDA_OP(sample, sf_sample_params);
SF_CUDA_OP(kv_append, sf_kv_append_params);
SF_CUDA_OP(attention, sf_attention_params);
SF_CUDA_OP(attention_naive, sf_attention_params);
SF_CUDA_OP(attention_decode, sf_attention_decode_params);
SF_CUDA_OP(attention_merge, sf_attention_merge_params);
SF_CUDA_OP(conv1d, sf_conv1d_params);
SF_CUDA_OP(conv1d_update, sf_conv1d_update_params);
SF_CUDA_OP(selective_scan, sf_selective_scan_params);
SF_CUDA_OP(selective_scan_naive, sf_selective_scan_params);
SF_CUDA_OP(selective_state_update, sf_selective_state_update_params);
SF_CUDA_OP(mamba1_decode, sf_mamba1_decode_params);
SF_CUDA_OP(ssd, sf_ssd_params);
SF_CUDA_OP(ssd_naive, sf_ssd_params);
SF_CUDA_OP(ssd_update, sf_ssd_update_params);

#ifdef __cplusplus
}
#endif
#endif
