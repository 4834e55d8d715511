/* Copies a chunk's k and v into the KV cache at positions past_len[b] + i.
 * A copy, so instantiated on the element size only. Grid: x over (token
 * position, block-sized part of its kv heads x dims) (grid-stride), y over
 * sequences; a thread copies one element of k and one of v.
 * A sequence whose chunk would pass max_len writes nothing and is reported
 * by the next sync/download. Workspace: none. */
#include "cuda_common.cuh"

template <typename E>
__global__ void kv_append_kernel(int n_kv_heads, int head_dim, int parts, const int64_t *__restrict__ start,
                                 const int32_t *__restrict__ len, const int32_t *__restrict__ past_len,
                                 const E *k, int64_t kts, int64_t khs, const E *v,
                                 int64_t vts, int64_t vhs, E *ck, E *cv, int64_t cbs, int64_t cps, int64_t chs,
                                 int64_t max_len, sf_cuda_status *st) {
  sf_pdl_release();
  sf_pdl_wait();
  const int b = blockIdx.y;
  /* The sequence's three words together: one memory round trip, not three. */
  const int64_t L = len[b], past = past_len ? past_len[b] : 0, s0 = start[b];
  if (past < 0 || past + L > max_len) {
    if (blockIdx.x == 0 && threadIdx.x == 0) sf_cuda_record(st, SF_CST_KV_APPEND, b, past + L, max_len);
    return;
  }
  const int per_token = n_kv_heads * head_dim;
  /* One element of k and one of v a thread: both loads issued before the
   * stores, so a thread waits one round trip (a decode step's token is a
   * few thousand elements: one element a thread spreads it over blocks). */
  for (int64_t w = blockIdx.x; w < L * parts; w += gridDim.x) {
    const int64_t i = w / parts;
    const int e = (int)(w % parts) * blockDim.x + threadIdx.x;
    if (e >= per_token) continue;
    const int64_t tok = s0 + i, pos = past + i;
    const int hh = e / head_dim, d = e % head_dim;
    const E kx = k[tok * kts + (int64_t)hh * khs + d], vx = v[tok * vts + (int64_t)hh * vhs + d];
    const int64_t dst = (int64_t)b * cbs + pos * cps + (int64_t)hh * chs + d;
    ck[dst] = kx;
    cv[dst] = vx;
  }
}

template <typename E>
static sf_status launch(sf_op_ctx *ctx, const sf_kv_append_params *p, sf_error *err) {
  const int per_token = p->n_kv_heads * p->head_dim;
  const int threads = per_token >= 256 ? 256 : (per_token >= 128 ? 128 : 64);
  const int parts = (per_token + threads - 1) / threads;
  dim3 grid(sf_grid_for(p->seqs.max_len * parts, 1, 1 << 20), (unsigned)p->seqs.batch);
  SF_CUDA_LAUNCH("kv_append_kernel", ctx, kv_append_kernel<E>, grid, threads, 0, p->n_kv_heads, p->head_dim, parts,
                 p->seqs.start, p->seqs.len, p->past_len, (const E *)p->k, p->k_token_stride, p->k_head_stride,
                 (const E *)p->v, p->v_token_stride, p->v_head_stride, (E *)p->cache.k, (E *)p->cache.v,
                 p->cache.batch_stride, p->cache.pos_stride, p->cache.head_stride, p->cache.max_len,
                 sf_cuda_impl_of(ctx)->d_status);
  return SF_OK;
}

extern "C" SF_CUDA_OP(kv_append, sf_kv_append_params) {
  if (p->dtype != SF_F32 && p->dtype != SF_BF16 && p->dtype != SF_F16)
    return sf_fail(err, SF_ERR_ARG, "kv_append: unknown dtype %d", (int)p->dtype);
  if (p->n_kv_heads <= 0 || p->head_dim <= 0)
    return sf_fail(err, SF_ERR_ARG, "kv_append: need n_kv_heads > 0 and head_dim > 0, got %d and %d",
                   (int)p->n_kv_heads, (int)p->head_dim);
  if (p->seqs.batch < 0 || p->seqs.max_len < 0)
    return sf_fail(err, SF_ERR_ARG, "kv_append: negative batch %d or max_len %lld", (int)p->seqs.batch,
                   (long long)p->seqs.max_len);
  if (p->seqs.batch > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "kv_append: batch %d > 65535", (int)p->seqs.batch);
  if (p->seqs.batch == 0 || p->seqs.max_len == 0) return SF_OK;
  if (!p->seqs.start || !p->seqs.len || !p->k || !p->v || !p->cache.k || !p->cache.v)
    return sf_fail(err, SF_ERR_ARG, "kv_append: seqs, k, v and the cache must be non-NULL");
  return p->dtype == SF_F32 ? launch<float>(ctx, p, err) : launch<uint16_t>(ctx, p, err);
}
