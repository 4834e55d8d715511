/* Standard attention, the baseline of the report (Figure 8's "standard
 * implementation"): materialises every score.
 *
 * The sequence lengths and past lengths are read back to the host first
 * (one small copy and a wait), then, per sequence b, with Lq = len[b] and
 * Lk = past_len[b] + len[b]:
 *   1. S_h = scale Q_h K_h^T for every head h in one cublasGemmBatchedEx
 *      (bf16/f16/f32 in, fp32 out): the fp32 scores [n_heads, Lq, Lk] live
 *      in the op workspace. Column-major, S_h^T (Lk x Lq) = K_h (op T on
 *      the k x Lk view of the cache) times Q_h^T.
 *   2. A masked softmax kernel, one block per (query row, head): row max,
 *      sum of exponentials, then P = exp(S - max) / sum written over the
 *      same row in the activation type (16-bit P is written into the first
 *      half of each fp32 row, chunk by chunk behind a barrier, so its row
 *      stride is 2 Lk elements). lse when asked for.
 *   3. O_h = P_h V_h, a second batched GEMM, straight into out.
 * GQA: head h reads kv head h / (n_heads / n_kv_heads) through the pointer
 * arrays. Workspace: n_heads * Lq * Lk * 4 bytes for the largest sequence
 * plus 6 * n_heads * batch pointers. */
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"

static cudaDataType_t cuda_type(sf_dtype t) {
  return t == SF_F32 ? CUDA_R_32F : (t == SF_BF16 ? CUDA_R_16BF : CUDA_R_16F);
}

template <typename T>
__global__ void naive_softmax_kernel(float *scores, int64_t Lq, int64_t Lk, int64_t past, int causal,
                                     float *__restrict__ lse, int64_t lts, int64_t tok0) {
  __shared__ float scratch[32];
  const int h = blockIdx.y;
  const int64_t i = blockIdx.x;
  float *srow = scores + ((int64_t)h * Lq + i) * Lk;
  const int64_t n_valid = causal ? min(past + i + 1, Lk) : Lk;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < n_valid; j += blockDim.x) m = fmaxf(m, srow[j]);
  m = sf_block_max(m, scratch);
  float l = 0.0f;
  for (int64_t j = threadIdx.x; j < n_valid; j += blockDim.x) l += expf(srow[j] - m);
  l = sf_block_sum(l, scratch);
  const float inv = 1.0f / l;
  T *prow = (T *)srow;
  for (int64_t base = 0; base < Lk; base += blockDim.x) {
    const int64_t j = base + threadIdx.x;
    float p = 0.0f;
    if (j < n_valid) p = expf(srow[j] - m) * inv;
    __syncthreads(); /* this chunk's scores are read before any of it is overwritten */
    if (j < Lk) prow[j] = sf_from_f<T>(p);
  }
  if (lse && threadIdx.x == 0) lse[(tok0 + i) * lts + h] = m + logf(l);
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_attention_params *p, const int64_t *h_start,
                        const int32_t *h_len, const int32_t *h_past, sf_error *err) {
  sf_cuda_impl *impl = sf_cuda_impl_of(ctx);
  const int B = p->seqs.batch, H = p->n_heads, group = p->n_heads / p->n_kv_heads;
  size_t score_bytes = 0;
  for (int b = 0; b < B; b++) {
    const int64_t Lq = h_len[b], Lk = h_past[b] + (int64_t)h_len[b];
    if (h_len[b] < 0 || h_past[b] < 0 || Lk > p->cache.max_len)
      return sf_fail(err, SF_ERR_ARG,
                     "attention_naive: sequence %d has len %d and past_len %d; the cache holds %lld positions",
                     b, (int)h_len[b], (int)h_past[b], (long long)p->cache.max_len);
    const size_t need = (size_t)H * (size_t)Lq * (size_t)Lk * sizeof(float);
    if (need > score_bytes) score_bytes = need;
  }
  const size_t n_ptr = (size_t)6 * H * B;
  const size_t ptr_bytes = sf_align_up(n_ptr * sizeof(void *), 256);
  void *ws;
  SF_TRY(sf_cuda_workspace(ctx, ptr_bytes + score_bytes, &ws, err));
  const void **d_ptrs = (const void **)ws;
  float *scores = (float *)((char *)ws + ptr_bytes);

  const void **h_ptrs = (const void **)malloc(n_ptr * sizeof(void *));
  if (!h_ptrs) return sf_fail(err, SF_ERR_NOMEM, "attention_naive: cannot allocate %zu host pointers", n_ptr);
  const size_t esz = sizeof(T);
  for (int b = 0; b < B; b++) {
    const int64_t Lq = h_len[b], Lk = h_past[b] + (int64_t)h_len[b];
    const void **pp = h_ptrs + (size_t)6 * H * b;
    for (int h = 0; h < H; h++) {
      const int kh = h / group;
      const char *kbase = (const char *)p->cache.k + esz * (size_t)(b * p->cache.batch_stride + kh * p->cache.head_stride);
      const char *vbase = (const char *)p->cache.v + esz * (size_t)(b * p->cache.batch_stride + kh * p->cache.head_stride);
      pp[0 * H + h] = kbase;
      pp[1 * H + h] = (const char *)p->q + esz * (size_t)(h_start[b] * p->q_token_stride + h * p->q_head_stride);
      pp[2 * H + h] = scores + (size_t)h * Lq * Lk;
      pp[3 * H + h] = vbase;
      pp[4 * H + h] = (const char *)(scores + (size_t)h * Lq * Lk);
      pp[5 * H + h] = (char *)p->out + esz * (size_t)(h_start[b] * p->out_token_stride + h * p->out_head_stride);
    }
  }
  cudaError_t ce = cudaMemcpyAsync(d_ptrs, h_ptrs, n_ptr * sizeof(void *), cudaMemcpyHostToDevice, impl->stream);
  if (ce == cudaSuccess) ce = cudaStreamSynchronize(impl->stream);
  free(h_ptrs);
  SF_CUDA_TRY(ce);

  const cudaDataType_t tt = cuda_type(p->dtype);
  const float zero = 0.0f, one = 1.0f, scale = p->scale;
  for (int b = 0; b < B; b++) {
    const int64_t Lq = h_len[b], past = h_past[b], Lk = past + Lq;
    if (Lq == 0) continue;
    const void **pp = d_ptrs + (size_t)6 * H * b;
    SF_CUBLAS_TRY(cublasGemmBatchedEx_64(impl->blas, CUBLAS_OP_T, CUBLAS_OP_N, Lk, Lq, p->head_dim, &scale,
                                         pp + 0 * H, tt, p->cache.pos_stride, pp + 1 * H, tt, p->q_token_stride,
                                         &zero, (void *const *)(pp + 2 * H), CUDA_R_32F, Lk, H,
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    dim3 grid((unsigned)Lq, (unsigned)H);
    const int threads = Lk >= 1024 ? 256 : 128;
    naive_softmax_kernel<T><<<grid, threads, 0, impl->stream>>>(scores, Lq, Lk, past, p->causal, p->lse,
                                                               p->lse_token_stride, h_start[b]);
    SF_CUDA_LAUNCHED("naive_softmax_kernel");
    const int64_t p_ld = sizeof(T) == 4 ? Lk : 2 * Lk;
    SF_CUBLAS_TRY(cublasGemmBatchedEx_64(impl->blas, CUBLAS_OP_N, CUBLAS_OP_N, p->head_dim, Lq, Lk, &one,
                                         pp + 3 * H, tt, p->cache.pos_stride, pp + 4 * H, tt, p_ld, &zero,
                                         (void *const *)(pp + 5 * H), tt, p->out_token_stride, H,
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
  return SF_OK;
}

extern "C" SF_CUDA_OP(attention_naive, sf_attention_params) {
  if (p->n_heads <= 0 || p->n_kv_heads <= 0 || p->n_heads % p->n_kv_heads != 0)
    return sf_fail(err, SF_ERR_ARG, "attention_naive: n_heads %d must be a positive multiple of n_kv_heads %d",
                   (int)p->n_heads, (int)p->n_kv_heads);
  if (p->head_dim <= 0) return sf_fail(err, SF_ERR_ARG, "attention_naive: head_dim %d", (int)p->head_dim);
  if (p->seqs.batch < 0 || p->seqs.max_len < 0)
    return sf_fail(err, SF_ERR_ARG, "attention_naive: negative batch %d or max_len %lld", (int)p->seqs.batch,
                   (long long)p->seqs.max_len);
  if (p->n_heads > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "attention_naive: n_heads %d > 65535", (int)p->n_heads);
  if (p->seqs.batch == 0 || p->seqs.max_len == 0) return SF_OK;
  if (!p->seqs.start || !p->seqs.len || !p->q || !p->cache.k || !p->cache.v || !p->out)
    return sf_fail(err, SF_ERR_ARG, "attention_naive: seqs, q, the cache and out must be non-NULL");
  if (p->dtype != SF_F32 && p->dtype != SF_BF16 && p->dtype != SF_F16)
    return sf_fail(err, SF_ERR_ARG, "attention_naive: unknown dtype %d", (int)p->dtype);

  const int B = p->seqs.batch;
  size_t bytes = (size_t)B * (sizeof(int64_t) + 2 * sizeof(int32_t));
  char *h = (char *)malloc(bytes);
  if (!h) return sf_fail(err, SF_ERR_NOMEM, "attention_naive: cannot allocate %zu host bytes", bytes);
  int64_t *h_start = (int64_t *)h;
  int32_t *h_len = (int32_t *)(h_start + B), *h_past = h_len + B;
  cudaStream_t s = sf_cuda_stream(ctx);
  cudaError_t ce = cudaMemcpyAsync(h_start, p->seqs.start, B * sizeof(int64_t), cudaMemcpyDeviceToHost, s);
  if (ce == cudaSuccess) ce = cudaMemcpyAsync(h_len, p->seqs.len, B * sizeof(int32_t), cudaMemcpyDeviceToHost, s);
  if (ce == cudaSuccess && p->past_len)
    ce = cudaMemcpyAsync(h_past, p->past_len, B * sizeof(int32_t), cudaMemcpyDeviceToHost, s);
  if (ce == cudaSuccess) ce = cudaStreamSynchronize(s);
  if (ce != cudaSuccess) {
    free(h);
    SF_CUDA_TRY(ce);
  }
  if (!p->past_len) memset(h_past, 0, B * sizeof(int32_t));
  sf_status rc;
  switch (p->dtype) {
    case SF_BF16: rc = launch<__nv_bfloat16>(ctx, p, h_start, h_len, h_past, err); break;
    case SF_F16: rc = launch<__half>(ctx, p, h_start, h_len, h_past, err); break;
    default: rc = launch<float>(ctx, p, h_start, h_len, h_past, err); break;
  }
  free(h);
  return rc;
}
