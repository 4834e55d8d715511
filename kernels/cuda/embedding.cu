/* Embedding lookup: out[t, :] = table[ids[t], :]. A copy, so instantiated on
 * the element size only, or widened to f32 (out_f32: the residual stream).
 * One block per token (grid-stride). An id outside [0, vocab) leaves its row
 * unwritten and is reported by the next sync/download (the device status
 * word). Workspace: none. */
#include "cuda_common.cuh"

/* A row copy, or a widening to f32 (the residual stream) from bf16 / f16. */
template <typename EO, typename E>
__device__ __forceinline__ EO convert(E v) { return v; }
template <>
__device__ __forceinline__ float convert<float, __nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float convert<float, __half>(__half v) { return __half2float(v); }

template <typename E, typename EO>
__global__ void embedding_kernel(const int32_t *__restrict__ ids, int64_t n_tokens, int64_t d,
                                 int32_t vocab, const E *__restrict__ table, int64_t table_stride,
                                 EO *__restrict__ out, int64_t out_stride, sf_cuda_status *st) {
  sf_pdl_release();
  sf_pdl_wait();
  for (int64_t t = blockIdx.x; t < n_tokens; t += gridDim.x) {
    const int32_t id = __ldg(ids + t);
    if (id < 0 || id >= vocab) {
      if (threadIdx.x == 0) sf_cuda_record(st, SF_CST_EMBED_ID, t, id, vocab);
      continue;
    }
    const E *src = table + (int64_t)id * table_stride;
    EO *dst = out + t * out_stride;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) dst[i] = convert<EO>(__ldg(src + i));
  }
}

template <typename E, typename EO>
static sf_status launch(sf_op_ctx *ctx, const sf_embedding_params *p, sf_error *err) {
  const int threads = p->d >= 256 ? 256 : (p->d >= 128 ? 128 : 64);
  const unsigned blocks = sf_grid_for(p->n_tokens, 1, 1 << 20);
  SF_CUDA_LAUNCH("embedding_kernel", ctx, embedding_kernel<E, EO>, blocks, threads, 0, p->ids, p->n_tokens, p->d,
                 p->vocab, (const E *)p->table, p->table_row_stride, (EO *)p->out, p->out_row_stride,
                 sf_cuda_impl_of(ctx)->d_status);
  return SF_OK;
}

extern "C" SF_CUDA_OP(embedding, sf_embedding_params) {
  if (p->dtype != SF_F32 && p->dtype != SF_BF16 && p->dtype != SF_F16)
    return sf_fail(err, SF_ERR_ARG, "embedding: unknown dtype %d", (int)p->dtype);
  if (p->n_tokens < 0 || p->d < 0)
    return sf_fail(err, SF_ERR_ARG, "embedding: negative size (n_tokens %lld, d %lld)",
                   (long long)p->n_tokens, (long long)p->d);
  if (p->vocab <= 0) return sf_fail(err, SF_ERR_ARG, "embedding: vocab %d must be > 0", (int)p->vocab);
  if (p->table_row_stride < p->d || p->out_row_stride < p->d)
    return sf_fail(err, SF_ERR_ARG,
                   "embedding: row strides (table %lld, out %lld) must be >= d = %lld",
                   (long long)p->table_row_stride, (long long)p->out_row_stride, (long long)p->d);
  if (p->n_tokens == 0 || p->d == 0) return SF_OK;
  if (!p->ids || !p->table || !p->out)
    return sf_fail(err, SF_ERR_ARG, "embedding: ids, table and out must be non-NULL");
  if (p->dtype == SF_F32) return launch<float, float>(ctx, p, err);
  if (!p->out_f32) return launch<uint16_t, uint16_t>(ctx, p, err);
  return p->dtype == SF_BF16 ? launch<__nv_bfloat16, float>(ctx, p, err)
                             : launch<__half, float>(ctx, p, err);
}
