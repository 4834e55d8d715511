/* Decode attention (one query per sequence) with split-KV (flash-decoding).
 *
 * Pass 1: one block of 4 warps per (split, head, sequence). The keys
 * [0, cache_len[b]) are cut into num_splits contiguous parts of
 * ceil(cache_len / num_splits) keys (so the parts follow the actual length,
 * not max_len). Each warp walks every fourth key of its part: a dot product
 * over the lanes (head_dim <= 128, 4 channels a lane) and an online softmax
 * with the output in registers; the 4 warps merge through shared memory and
 * the block writes its normalised partial output and log-sum-exp (fp32) to
 * the workspace. Pass 2: one block per (head, sequence) merges the parts
 * with weights exp(lse_s - max lse). Empty parts have lse = -inf.
 * num_splits = 0 picks enough blocks for two waves of the device (at most
 * 64 parts). lse (optional) gets M + log(sum_s exp(lse_s - M)). A cache_len outside [1, max_len] writes nothing and is reported
 * by the next sync. Workspace: batch * n_heads * num_splits *
 * (head_dim + 1) * 4 bytes. */
#include "cuda_common.cuh"

enum { DEC_WARPS = 4, DEC_THREADS = 128, DEC_PER_LANE = 4, DEC_MAX_HD = 128 };

template <typename T>
__global__ void __launch_bounds__(DEC_THREADS)
decode_split_kernel(int n_heads, int group, int head_dim, float scale, const T *__restrict__ q, int64_t qbs,
                    int64_t qhs, const T *__restrict__ ck, const T *__restrict__ cv, int64_t cbs, int64_t cps,
                    int64_t chs, int64_t max_len, const int32_t *__restrict__ cache_len,
                    float *__restrict__ part_o, float *__restrict__ part_lse, sf_cuda_status *st) {
  __shared__ float sm_m[DEC_WARPS], sm_l[DEC_WARPS];
  __shared__ float sm_acc[DEC_WARPS][DEC_MAX_HD];
  const int split = blockIdx.x, h = blockIdx.y, b = blockIdx.z, S = gridDim.x;
  const int64_t n = cache_len[b];
  if (n < 1 || n > max_len) {
    if (split == 0 && h == 0 && threadIdx.x == 0) sf_cuda_record(st, SF_CST_DECODE_CACHE, b, n, max_len);
    return;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t chunk = (n + S - 1) / S;
  const int64_t k_lo = (int64_t)split * chunk, k_hi = min(n, k_lo + chunk);
  const int kh = h / group;
  const T *qh = q + (int64_t)b * qbs + (int64_t)h * qhs;
  const T *kb = ck + (int64_t)b * cbs + (int64_t)kh * chs;
  const T *vb = cv + (int64_t)b * cbs + (int64_t)kh * chs;

  float qv[DEC_PER_LANE], acc[DEC_PER_LANE];
#pragma unroll
  for (int i = 0; i < DEC_PER_LANE; i++) {
    const int d = lane + 32 * i;
    qv[i] = d < head_dim ? sf_to_f<T>(qh[d]) * scale : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t key = k_lo + warp; key < k_hi; key += DEC_WARPS) {
    const T *krow = kb + key * cps, *vrow = vb + key * cps;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < DEC_PER_LANE; i++) {
      const int d = lane + 32 * i;
      if (d < head_dim) s += qv[i] * sf_to_f<T>(krow[d]);
    }
    s = sf_warp_sum(s);
    const float m_new = fmaxf(m, s);
    const float alpha = expf(m - m_new), pk = expf(s - m_new);
    l = l * alpha + pk;
#pragma unroll
    for (int i = 0; i < DEC_PER_LANE; i++) {
      const int d = lane + 32 * i;
      acc[i] = acc[i] * alpha + (d < head_dim ? pk * sf_to_f<T>(vrow[d]) : 0.0f);
    }
    m = m_new;
  }
  if (lane == 0) { sm_m[warp] = m; sm_l[warp] = l; }
#pragma unroll
  for (int i = 0; i < DEC_PER_LANE; i++) sm_acc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < DEC_WARPS; w++) M = fmaxf(M, sm_m[w]);
  float L = 0.0f, wts[DEC_WARPS];
#pragma unroll
  for (int w = 0; w < DEC_WARPS; w++) {
    wts[w] = sm_m[w] == -INFINITY ? 0.0f : expf(sm_m[w] - M);
    L += sm_l[w] * wts[w];
  }
  const int64_t slot = ((int64_t)b * n_heads + h) * S + split;
  for (int d = threadIdx.x; d < head_dim; d += DEC_THREADS) {
    float o = 0.0f;
#pragma unroll
    for (int w = 0; w < DEC_WARPS; w++) o += sm_acc[w][d] * wts[w];
    part_o[slot * head_dim + d] = L > 0.0f ? o / L : 0.0f;
  }
  if (threadIdx.x == 0) part_lse[slot] = L > 0.0f ? M + logf(L) : -INFINITY;
}

template <typename T>
__global__ void decode_merge_kernel(int n_heads, int head_dim, int S, int64_t max_len,
                                    const int32_t *__restrict__ cache_len, const float *__restrict__ part_o,
                                    const float *__restrict__ part_lse, T *__restrict__ out, int64_t obs,
                                    int64_t ohs, float *__restrict__ lse, int64_t lbs) {
  const int h = blockIdx.x, b = blockIdx.y;
  const int64_t n = cache_len[b];
  if (n < 1 || n > max_len) return;
  const int64_t slot0 = ((int64_t)b * n_heads + h) * S;
  float M = -INFINITY;
  for (int s = 0; s < S; s++) M = fmaxf(M, part_lse[slot0 + s]);
  float wsum = 0.0f;
  for (int s = 0; s < S; s++) {
    const float ls = part_lse[slot0 + s];
    if (ls != -INFINITY) wsum += expf(ls - M);
  }
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float o = 0.0f;
    for (int s = 0; s < S; s++) {
      const float ls = part_lse[slot0 + s];
      if (ls != -INFINITY) o += expf(ls - M) * part_o[(slot0 + s) * head_dim + d];
    }
    out[(int64_t)b * obs + (int64_t)h * ohs + d] = sf_from_f<T>(wsum > 0.0f ? o / wsum : 0.0f);
  }
  if (lse && threadIdx.x == 0) lse[(int64_t)b * lbs + h] = M + logf(wsum);
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_attention_decode_params *p, int S, sf_error *err) {
  const size_t slots = (size_t)p->batch * p->n_heads * S;
  void *ws;
  SF_TRY(sf_cuda_workspace(ctx, slots * (p->head_dim + 1) * sizeof(float), &ws, err));
  float *part_o = (float *)ws, *part_lse = part_o + slots * p->head_dim;
  cudaStream_t s = sf_cuda_stream(ctx);
  dim3 g1((unsigned)S, (unsigned)p->n_heads, (unsigned)p->batch);
  decode_split_kernel<T><<<g1, DEC_THREADS, 0, s>>>(
      p->n_heads, p->n_heads / p->n_kv_heads, p->head_dim, p->scale, (const T *)p->q, p->q_batch_stride,
      p->q_head_stride, (const T *)p->cache.k, (const T *)p->cache.v, p->cache.batch_stride, p->cache.pos_stride,
      p->cache.head_stride, p->cache.max_len, p->cache_len, part_o, part_lse, sf_cuda_impl_of(ctx)->d_status);
  SF_CUDA_LAUNCHED("decode_split_kernel");
  dim3 g2((unsigned)p->n_heads, (unsigned)p->batch);
  decode_merge_kernel<T><<<g2, DEC_THREADS, 0, s>>>(p->n_heads, p->head_dim, S, p->cache.max_len, p->cache_len,
                                                    part_o, part_lse, (T *)p->out, p->out_batch_stride,
                                                    p->out_head_stride, p->lse, p->lse_batch_stride);
  SF_CUDA_LAUNCHED("decode_merge_kernel");
  return SF_OK;
}

extern "C" SF_CUDA_OP(attention_decode, sf_attention_decode_params) {
  if (p->n_heads <= 0 || p->n_kv_heads <= 0 || p->n_heads % p->n_kv_heads != 0)
    return sf_fail(err, SF_ERR_ARG, "attention_decode: n_heads %d must be a positive multiple of n_kv_heads %d",
                   (int)p->n_heads, (int)p->n_kv_heads);
  if (p->head_dim <= 0 || p->head_dim > DEC_MAX_HD)
    return sf_fail(err, p->head_dim <= 0 ? SF_ERR_ARG : SF_ERR_UNSUPPORTED,
                   "attention_decode: head_dim %d (the cuda kernel supports 1..%d)", (int)p->head_dim,
                   (int)DEC_MAX_HD);
  if (p->batch < 0 || p->num_splits < 0)
    return sf_fail(err, SF_ERR_ARG, "attention_decode: negative batch %d or num_splits %d", (int)p->batch,
                   (int)p->num_splits);
  if (p->batch > 65535 || p->n_heads > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "attention_decode: batch %d or n_heads %d > 65535", (int)p->batch,
                   (int)p->n_heads);
  if (p->batch == 0) return SF_OK;
  if (!p->q || !p->cache.k || !p->cache.v || !p->cache_len || !p->out)
    return sf_fail(err, SF_ERR_ARG, "attention_decode: q, the cache, cache_len and out must be non-NULL");
  int S = p->num_splits;
  if (S == 0) {
    const int64_t want = 2LL * sf_cuda_impl_of(ctx)->num_sms;
    const int64_t pairs = (int64_t)p->batch * p->n_heads;
    int64_t s = (want + pairs - 1) / pairs;
    const int64_t by_len = p->cache.max_len / 256 > 1 ? p->cache.max_len / 256 : 1;
    if (s > by_len) s = by_len;
    if (s > 64) s = 64;
    if (s < 1) s = 1;
    S = (int)s;
  }
  if (S > 65535) return sf_fail(err, SF_ERR_UNSUPPORTED, "attention_decode: num_splits %d > 65535", S);
  SF_DISPATCH(p->dtype, "attention_decode", launch<T>(ctx, p, S, err));
}
