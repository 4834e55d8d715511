/* The cuda backend's op table and its context setup (kernels/cuda).
 *
 * A context owns, per rank (no globals): a non-blocking stream, a cuBLAS
 * handle and a cuBLASLt handle bound to that stream, a 32 MiB cuBLAS/cuBLASLt
 * workspace, the op workspace (ctx->workspace, grown on demand by the ops
 * that need temporaries) and a small device status word for errors that only
 * the device can see (an embedding id out of range, a KV cache overflow).
 *
 * Semantics that differ from the cpu backend:
 *  - Every op is asynchronous on ctx->stream; host pointers in params (none
 *    but the sizes) are read before the launcher returns. sf_seqs start/len,
 *    past_len, cache_len, token ids and positions are DEVICE pointers.
 *  - upload is asynchronous on the stream (CUDA stages pageable host memory
 *    before cudaMemcpyAsync returns, so src may be reused at once; from pinned
 *    memory, keep src until the next sync). download and sync wait for the
 *    stream. zero is cudaMemsetAsync.
 *  - Errors the device detects (an id outside [0, vocab), positions past the
 *    cache's max_len) are recorded in the status word by the kernel, which
 *    skips the offending work, and reported by the next sync or download as
 *    SF_ERR_ARG ("embedding: token 5 has id 70000 outside [0, 50277)").
 *  - A cudaErrorMemoryAllocation (and CUBLAS_STATUS_ALLOC_FAILED) is returned
 *    as SF_ERR_NOMEM so that callers can record an OOM and go on; every other
 *    CUDA or cuBLAS failure is SF_ERR_DEVICE with "cuda: file.cu:123: call:
 *    message".
 *
 * Op workspace needs (ctx->workspace, grown by the op when too small; the
 * engine may reserve it up front with sf_cuda_workspace_reserve):
 *  - gemm: n * 4 bytes for the bias in the output type (only with a bias).
 *  - attention_naive: n_heads * Lq * Lk * 4 bytes (fp32 scores, softmax
 *    probabilities written in place) plus 6 * n_heads * batch pointers, where
 *    Lq = len[b], Lk = past_len[b] + len[b], for the largest sequence.
 *  - attention_decode: batch * n_heads * num_splits * (head_dim + 1) * 4
 *    bytes (partial outputs and log-sum-exps).
 *  - sample: none on the device; top-k sampling copies the logits to a host
 *    buffer owned by the context (batch * vocab * 4 bytes).
 *  - ssd (chunked tensor-core path): per 256-token chunk about 1.25 MiB at
 *    64 heads x 64 x d_state 128 (dt, cumulative sums, C·Bᵀ tiles, chunk
 *    states); long inputs run in windows of chunks so it stays <= 1 GiB.
 *    The exact formula is in kernels/cuda/ssd_chunked.cu.
 *  - all other ops: none. */
#ifndef SCANFLASH_OPS_OP_TABLE_CUDA_H
#define SCANFLASH_OPS_OP_TABLE_CUDA_H

#include "ops/op_table.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const sf_ops sf_ops_cuda;

/* Selects `device`, creates the stream, the cuBLAS/cuBLASLt handles and
 * their workspace. On failure everything created so far is released and ctx
 * is zeroed. */
sf_status sf_cuda_ctx_init(sf_op_ctx *ctx, int device, sf_error *err);
/* Waits for the stream and releases everything the context owns. */
void sf_cuda_ctx_destroy(sf_op_ctx *ctx);

/* Makes ctx->workspace at least `bytes` large now (waits for the stream when
 * it has to reallocate). */
sf_status sf_cuda_workspace_reserve(sf_op_ctx *ctx, size_t bytes, sf_error *err);

#ifdef __cplusplus
}
#endif
#endif
