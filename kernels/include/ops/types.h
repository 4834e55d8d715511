/* Types every op shares: element types, the batch layout of sequence ops and
 * the per-rank op context. All sizes and strides are int64 and counted in
 * elements (not bytes), so views (a slice of a fused projection, one head of
 * a packed qkv) need no copies and no offset overflows at 1M+ tokens. */
#ifndef SCANFLASH_OPS_TYPES_H
#define SCANFLASH_OPS_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "scanflash/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sf_dtype { SF_F32 = 0, SF_BF16 = 1, SF_F16 = 2 } sf_dtype;

static inline size_t sf_dtype_size(sf_dtype t) { return t == SF_F32 ? 4 : 2; }
const char *sf_dtype_name(sf_dtype t);

/* Sequences in a batch. Token-major tensors hold every sequence's tokens
 * along one token dimension: sequence b occupies tokens
 * [start[b], start[b] + len[b]). Padded batches use start[b] = b * max_len
 * (positions past len[b] are ignored and left untouched); varlen batches pack
 * them (start = exclusive prefix sum of len). start/len live in backend
 * memory (host for cpu, device for cuda); batch and max_len are host values
 * so launchers can size grids; max_len >= every len[b], for varlen batches too. */
typedef struct sf_seqs {
  int32_t batch;
  int64_t max_len;
  const int64_t *start;
  const int32_t *len;
} sf_seqs;

typedef struct sf_ops sf_ops;

/* One per rank (no globals): everything an op may need besides its params. */
typedef struct sf_op_ctx {
  const sf_ops *ops;
  int device;             /* CUDA device ordinal; -1 for cpu */
  void *stream;           /* cudaStream_t; NULL for cpu */
  void *blas;             /* cublasHandle_t; NULL for cpu */
  void *blas_lt;          /* cublasLtHandle_t; NULL for cpu */
  void *workspace;        /* backend memory for op temporaries */
  size_t workspace_bytes;
  int num_threads;        /* cpu: OpenMP threads (0 = runtime default) */
  /* Backend memory held through alloc and the op workspace, now and the most
   * since the caller last set mem_peak = mem_live (the runner does per item).
   * Counted by the cuda backend; 0 on cpu (its memory is the engine's sums). */
  int64_t mem_live, mem_peak;
  void *impl;             /* backend-private state */
} sf_op_ctx;

#ifdef __cplusplus
}
#endif
#endif
