/* Sampling from fp32 logits.
 *
 * Greedy (top_k <= 1 or temperature <= 0): argmax per row on the device, one
 * block per row, lowest id on ties (NaN logits never win).
 *
 * Top-k: the rows are copied to a host buffer owned by the context and the
 * cpu backend's sample op draws the ids, which are then uploaded. Why on the
 * host: the draw must follow the counter-based stream (seed, step, row)
 * exactly as the cpu op does, so that a run replays bit for bit on either
 * backend; doing it with the one implementation guarantees that, and costs a
 * batch x vocab x 4 byte copy once per decode step (about 200 KB a row),
 * small next to a decode step. A device top-k with the same stream can
 * replace it later. The call waits for the stream in this case.
 * Workspace: none on the device; host batch * (vocab + 1) * 4 bytes. */
#include <limits.h>
#include <string.h>
#include <stdlib.h>

#include "cuda_common.cuh"

enum { ARGMAX_ILP = 8, ARGMAX_THREADS = 1024 };

__global__ void argmax_kernel(int32_t batch, int32_t vocab, const float *logits,
                              int64_t stride, int32_t *__restrict__ out_ids) {
  sf_pdl_release();
  sf_pdl_wait();
  __shared__ float sv[32];
  __shared__ int si[32];
  for (int64_t r = blockIdx.x; r < batch; r += gridDim.x) {
    const float *row = logits + r * stride;
    float bv = -INFINITY;
    int bi = INT_MAX;
    /* ARGMAX_ILP independent loads in flight per thread: one row is a
     * latency-bound walk otherwise (batch 1 runs on a single block). */
    for (int i0 = threadIdx.x; i0 < vocab; i0 += ARGMAX_ILP * blockDim.x) {
      float v[ARGMAX_ILP];
#pragma unroll
      for (int u = 0; u < ARGMAX_ILP; u++) {
        const int i = i0 + u * blockDim.x;
        v[u] = i < vocab ? row[i] : -INFINITY; /* the lm head's output: a plain load (sf_ld) */
      }
#pragma unroll
      for (int u = 0; u < ARGMAX_ILP; u++) {
        const int i = i0 + u * blockDim.x;
        if (i < vocab && (v[u] > bv || (v[u] == bv && i < bi))) { bv = v[u]; bi = i; }
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) { sv[warp] = bv; si[warp] = bi; }
    __syncthreads();
    if (warp == 0) {
      bv = lane < nw ? sv[lane] : -INFINITY;
      bi = lane < nw ? si[lane] : INT_MAX;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
      }
      if (lane == 0) out_ids[r] = bi == INT_MAX ? 0 : bi; /* all NaN: id 0 */
    }
  }
}

static sf_status sample_topk_host(sf_op_ctx *ctx, const sf_sample_params *p, sf_error *err) {
  sf_cuda_impl *impl = sf_cuda_impl_of(ctx);
  const size_t row_bytes = (size_t)p->vocab * sizeof(float);
  const size_t need = (size_t)p->batch * row_bytes + (size_t)p->batch * sizeof(int32_t);
  if (impl->host_buf_bytes < need) {
    free(impl->host_buf);
    impl->host_buf_bytes = 0;
    impl->host_buf = malloc(need);
    if (!impl->host_buf) return sf_fail(err, SF_ERR_NOMEM, "sample: cannot allocate %zu host bytes", need);
    impl->host_buf_bytes = need;
  }
  float *h_logits = (float *)impl->host_buf;
  int32_t *h_ids = (int32_t *)((char *)impl->host_buf + (size_t)p->batch * row_bytes);
  SF_CUDA_TRY(cudaMemcpy2DAsync(h_logits, row_bytes, p->logits, (size_t)p->logits_row_stride * sizeof(float),
                                row_bytes, (size_t)p->batch, cudaMemcpyDeviceToHost, impl->stream));
  SF_CUDA_TRY(cudaStreamSynchronize(impl->stream));
  sf_op_ctx cpu;
  memset(&cpu, 0, sizeof cpu);
  cpu.ops = &sf_ops_cpu;
  cpu.device = -1;
  sf_sample_params hp = *p;
  hp.logits = h_logits;
  hp.logits_row_stride = p->vocab;
  hp.out_ids = h_ids;
  SF_TRY(sf_ops_cpu.sample(&cpu, &hp, err));
  SF_CUDA_TRY(cudaMemcpyAsync(p->out_ids, h_ids, (size_t)p->batch * sizeof(int32_t), cudaMemcpyHostToDevice,
                              impl->stream));
  SF_CUDA_TRY(cudaStreamSynchronize(impl->stream));
  return SF_OK;
}

extern "C" SF_CUDA_OP(sample, sf_sample_params) {
  if (p->batch < 0 || p->vocab <= 0)
    return sf_fail(err, SF_ERR_ARG, "sample: need batch >= 0 and vocab > 0, got %d and %d", (int)p->batch,
                   (int)p->vocab);
  if (p->logits_row_stride < p->vocab)
    return sf_fail(err, SF_ERR_ARG, "sample: logits row stride %lld must be >= vocab = %d",
                   (long long)p->logits_row_stride, (int)p->vocab);
  if (isnan(p->temperature) || isinf(p->temperature))
    return sf_fail(err, SF_ERR_ARG, "sample: temperature %g must be finite", (double)p->temperature);
  if (p->batch == 0) return SF_OK;
  if (!p->logits || !p->out_ids) return sf_fail(err, SF_ERR_ARG, "sample: logits and out_ids must be non-NULL");
  const int greedy = p->top_k <= 1 || p->temperature <= 0.0f;
  if (!greedy) return sample_topk_host(ctx, p, err);
  SF_CUDA_LAUNCH("argmax_kernel", ctx, argmax_kernel, sf_grid_for(p->batch, 1, 1 << 16), ARGMAX_THREADS, 0, p->batch,
                 p->vocab, p->logits, p->logits_row_stride, p->out_ids);
  return SF_OK;
}
