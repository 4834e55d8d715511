/* Copies a chunk's new k and v into the KV cache at positions past_len[b] + i,
 * fp32 reference. Every sequence is checked before anything is written, so a
 * rejected call leaves the cache as it was. */
#include <string.h>

#include "cpu_ops.h"

SF_CPU_OP(kv_append, sf_kv_append_params) {
  (void)ctx;
  SF_CPU_REQUIRE_F32("kv_append", p->dtype);
  const sf_seqs *s = &p->seqs;
  if (p->n_kv_heads <= 0 || p->head_dim <= 0)
    return sf_fail(err, SF_ERR_ARG, "kv_append: need n_kv_heads > 0 and head_dim > 0, got %d, %d",
                   (int)p->n_kv_heads, (int)p->head_dim);
  if (s->batch < 0 || s->max_len < 0)
    return sf_fail(err, SF_ERR_ARG, "kv_append: need batch >= 0 and max_len >= 0, got %d, %lld",
                   (int)s->batch, (long long)s->max_len);
  if (p->cache.max_len < 0)
    return sf_fail(err, SF_ERR_ARG, "kv_append: cache max_len %lld is negative",
                   (long long)p->cache.max_len);
  if (s->batch == 0) return SF_OK;
  if (!s->start || !s->len)
    return sf_fail(err, SF_ERR_ARG, "kv_append: seqs.start and seqs.len must be non-NULL");
  for (int32_t b = 0; b < s->batch; b++) {
    const int64_t len = s->len[b], past = p->past_len ? p->past_len[b] : 0;
    if (len < 0 || len > s->max_len || s->start[b] < 0)
      return sf_fail(err, SF_ERR_ARG,
                     "kv_append: sequence %d has start %lld, len %lld (need start >= 0, "
                     "0 <= len <= max_len = %lld)",
                     (int)b, (long long)s->start[b], (long long)len, (long long)s->max_len);
    if (past < 0)
      return sf_fail(err, SF_ERR_ARG, "kv_append: sequence %d has negative past_len %lld", (int)b,
                     (long long)past);
    if (past + len > p->cache.max_len)
      return sf_fail(err, SF_ERR_ARG,
                     "kv_append: sequence %d writes positions [%lld, %lld) past the cache's "
                     "max_len %lld",
                     (int)b, (long long)past, (long long)(past + len), (long long)p->cache.max_len);
  }
  if (!p->k || !p->v || !p->cache.k || !p->cache.v)
    return sf_fail(err, SF_ERR_ARG, "kv_append: k, v, cache.k and cache.v must be non-NULL");

  const sf_kv_cache_view *c = &p->cache;
  const size_t row = (size_t)p->head_dim * sizeof(float);
  const int64_t nb = s->batch, ml = s->max_len;
#pragma omp parallel for collapse(2) schedule(static) if (nb * ml * p->n_kv_heads * p->head_dim > 65536)
  for (int64_t b = 0; b < nb; b++)
    for (int64_t i = 0; i < ml; i++) {
      if (i >= s->len[b]) continue;
      const int64_t t = s->start[b] + i;
      const int64_t pos = (p->past_len ? p->past_len[b] : 0) + i;
      for (int32_t h = 0; h < p->n_kv_heads; h++) {
        const int64_t dst = b * c->batch_stride + pos * c->pos_stride + (int64_t)h * c->head_stride;
        memcpy((float *)c->k + dst, (const float *)p->k + t * p->k_token_stride + (int64_t)h * p->k_head_stride, row);
        memcpy((float *)c->v + dst, (const float *)p->v + t * p->v_token_stride + (int64_t)h * p->v_head_stride, row);
      }
    }
  return SF_OK;
}
