/* Prefill attention, tiled with an online softmax: the FlashAttention-2
 * algorithm the cuda kernel uses, in fp32.
 *
 * One task = (sequence b, query head h, block of block_q queries). It walks
 * the visible keys in blocks of block_k; for each query row it keeps a running
 * max m, a running sum l of exp(s - m) and an unnormalised output O:
 *   S = scale q K^T (masked to -inf past the query's position when causal)
 *   m' = max(m, rowmax S);  P = exp(S - m');  a = exp(m - m')
 *   l = a l + rowsum P;     O = a O + P V;    m = m'
 * and at the end out = O / l, lse = m + log l. Query i of sequence b sits at
 * position past_len[b] + i and sees cache positions [0, past_len[b] + i]
 * (causal) or [0, past_len[b] + len[b]). Query head h reads kv head
 * h / (n_heads / n_kv_heads). Tasks run in parallel (OpenMP); each row's sums
 * are formed in a fixed order, so results do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>

#include "cpu_ops.h"

enum { DEFAULT_BLOCK_Q = 64, DEFAULT_BLOCK_K = 64 };

/* Shared with attention_naive.c: checks everything the two prefill ops need. */

sf_status sf_cpu_attention_validate(const char *op, const sf_attention_params *p, sf_error *err) {
  SF_CPU_REQUIRE_F32(op, p->dtype);
  const sf_seqs *s = &p->seqs;
  if (p->n_heads <= 0 || p->n_kv_heads <= 0 || p->head_dim <= 0)
    return sf_fail(err, SF_ERR_ARG, "%s: need n_heads, n_kv_heads, head_dim > 0, got %d, %d, %d",
                   op, (int)p->n_heads, (int)p->n_kv_heads, (int)p->head_dim);
  if (p->n_heads % p->n_kv_heads != 0)
    return sf_fail(err, SF_ERR_ARG, "%s: n_heads %d is not a multiple of n_kv_heads %d (GQA)", op,
                   (int)p->n_heads, (int)p->n_kv_heads);
  if (!isfinite(p->scale))
    return sf_fail(err, SF_ERR_ARG, "%s: scale %g must be finite", op, (double)p->scale);
  if (p->block_q < 0 || p->block_k < 0)
    return sf_fail(err, SF_ERR_ARG, "%s: block sizes (block_q %d, block_k %d) must be >= 0", op,
                   (int)p->block_q, (int)p->block_k);
  if (s->batch < 0 || s->max_len < 0)
    return sf_fail(err, SF_ERR_ARG, "%s: need batch >= 0 and max_len >= 0, got %d, %lld", op,
                   (int)s->batch, (long long)s->max_len);
  if (p->cache.max_len < 0)
    return sf_fail(err, SF_ERR_ARG, "%s: cache max_len %lld is negative", op,
                   (long long)p->cache.max_len);
  if (p->lse && p->lse_token_stride < p->n_heads)
    return sf_fail(err, SF_ERR_ARG, "%s: lse token stride %lld must be >= n_heads = %d", op,
                   (long long)p->lse_token_stride, (int)p->n_heads);
  if (s->batch == 0) return SF_OK;
  if (!s->start || !s->len)
    return sf_fail(err, SF_ERR_ARG, "%s: seqs.start and seqs.len must be non-NULL", op);
  for (int32_t b = 0; b < s->batch; b++) {
    const int64_t len = s->len[b], past = p->past_len ? p->past_len[b] : 0;
    if (len < 0 || len > s->max_len || s->start[b] < 0)
      return sf_fail(err, SF_ERR_ARG,
                     "%s: sequence %d has start %lld, len %lld (need start >= 0, "
                     "0 <= len <= max_len = %lld)",
                     op, (int)b, (long long)s->start[b], (long long)len, (long long)s->max_len);
    if (past < 0)
      return sf_fail(err, SF_ERR_ARG, "%s: sequence %d has negative past_len %lld", op, (int)b,
                     (long long)past);
    if (past + len > p->cache.max_len)
      return sf_fail(err, SF_ERR_ARG,
                     "%s: sequence %d needs cache positions [0, %lld) but the cache holds %lld", op,
                     (int)b, (long long)(past + len), (long long)p->cache.max_len);
  }
  if (!p->q || !p->out || !p->cache.k || !p->cache.v)
    return sf_fail(err, SF_ERR_ARG, "%s: q, out, cache.k and cache.v must be non-NULL", op);
  return SF_OK;
}

static inline float dot_f(const float *a, const float *b, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

typedef struct tile_buf {
  float *s;   /* [block_q][block_k] scores, then probabilities */
  float *o;   /* [block_q][head_dim] unnormalised output */
  float *m;   /* [block_q] running max */
  float *l;   /* [block_q] running sum */
} tile_buf;

static void attend_block(const sf_attention_params *p, int32_t b, int32_t h, int64_t i0,
                         int64_t bq, int64_t bk, tile_buf *tb) {
  const sf_seqs *sq = &p->seqs;
  const int64_t len = sq->len[b], start = sq->start[b];
  const int64_t past = p->past_len ? p->past_len[b] : 0;
  const int64_t i1 = i0 + bq < len ? i0 + bq : len, nq = i1 - i0;
  const int64_t D = p->head_dim;
  const int32_t kvh = h / (p->n_heads / p->n_kv_heads);
  const float scale = p->scale;
  /* Keys any query of this block may see: [0, kv_end). */
  const int64_t kv_end = p->causal ? past + i1 : past + len;
  const float *kbase = (const float *)p->cache.k + (int64_t)b * p->cache.batch_stride +
                       (int64_t)kvh * p->cache.head_stride;
  const float *vbase = (const float *)p->cache.v + (int64_t)b * p->cache.batch_stride +
                       (int64_t)kvh * p->cache.head_stride;
  const int64_t ps = p->cache.pos_stride;

  for (int64_t r = 0; r < nq; r++) {
    tb->m[r] = -INFINITY;
    tb->l[r] = 0.0f;
    for (int64_t d = 0; d < D; d++) tb->o[r * D + d] = 0.0f;
  }

  for (int64_t j0 = 0; j0 < kv_end; j0 += bk) {
    const int64_t j1 = j0 + bk < kv_end ? j0 + bk : kv_end;
    for (int64_t r = 0; r < nq; r++) {
      const float *qr = (const float *)p->q + (start + i0 + r) * p->q_token_stride +
                        (int64_t)h * p->q_head_stride;
      const int64_t pos = past + i0 + r;
      /* Keys [j0, lim) of this block are visible to row r. */
      int64_t lim = p->causal ? (pos + 1 < j1 ? pos + 1 : j1) : j1;
      if (lim <= j0) continue; /* the whole block is masked for this row */
      float *sr = tb->s + r * bk;
      float mloc = -INFINITY;
      for (int64_t j = j0; j < lim; j++) {
        const float v = scale * dot_f(qr, kbase + j * ps, D);
        sr[j - j0] = v;
        mloc = v > mloc ? v : mloc;
      }
      const float m_old = tb->m[r];
      const float m_new = m_old > mloc ? m_old : mloc;
      if (m_new == -INFINITY) continue; /* every visible score is -inf so far */
      const float alpha = expf(m_old - m_new); /* 0 on the first visible block */
      float sum = 0.0f;
      for (int64_t j = j0; j < lim; j++) {
        const float e = expf(sr[j - j0] - m_new);
        sr[j - j0] = e;
        sum += e;
      }
      tb->l[r] = tb->l[r] * alpha + sum;
      tb->m[r] = m_new;
      float *orow = tb->o + r * D;
      for (int64_t d = 0; d < D; d++) orow[d] *= alpha;
      for (int64_t j = j0; j < lim; j++) {
        const float pj = sr[j - j0];
        const float *vj = vbase + j * ps;
#pragma omp simd
        for (int64_t d = 0; d < D; d++) orow[d] += pj * vj[d];
      }
    }
  }

  for (int64_t r = 0; r < nq; r++) {
    const int64_t t = start + i0 + r;
    float *out = (float *)p->out + t * p->out_token_stride + (int64_t)h * p->out_head_stride;
    const float inv = 1.0f / tb->l[r];
    for (int64_t d = 0; d < D; d++) out[d] = tb->o[r * D + d] * inv;
    if (p->lse) p->lse[t * p->lse_token_stride + h] = tb->m[r] + logf(tb->l[r]);
  }
}

SF_CPU_OP(attention, sf_attention_params) {
  (void)ctx;
  SF_TRY(sf_cpu_attention_validate("attention", p, err));
  const sf_seqs *s = &p->seqs;
  if (s->batch == 0 || s->max_len == 0) return SF_OK;
  int64_t bq = p->block_q ? p->block_q : DEFAULT_BLOCK_Q;
  int64_t bk = p->block_k ? p->block_k : DEFAULT_BLOCK_K;
  /* Tiles larger than any sequence or the cache hold nothing more: clamp them
   * (same tiling, smaller buffers). */
  if (bq > s->max_len) bq = s->max_len;
  if (bk > p->cache.max_len) bk = p->cache.max_len > 0 ? p->cache.max_len : 1;
  const int64_t nqb = (s->max_len + bq - 1) / bq;
  const int64_t tasks = (int64_t)s->batch * p->n_heads * nqb;
  int nomem = 0;
#pragma omp parallel
  {
    tile_buf tb;
    tb.s = malloc((size_t)(bq * bk) * sizeof(float));
    tb.o = malloc((size_t)(bq * p->head_dim) * sizeof(float));
    tb.m = malloc((size_t)bq * sizeof(float));
    tb.l = malloc((size_t)bq * sizeof(float));
    const int ok = tb.s && tb.o && tb.m && tb.l;
    if (!ok) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
      if (!ok) continue;
      const int32_t b = (int32_t)(t / (p->n_heads * nqb));
      const int32_t h = (int32_t)(t / nqb % p->n_heads);
      const int64_t i0 = t % nqb * bq;
      if (i0 >= s->len[b]) continue;
      attend_block(p, b, h, i0, bq, bk, &tb);
    }
    free(tb.s);
    free(tb.o);
    free(tb.m);
    free(tb.l);
  }
  if (nomem)
    return sf_fail(err, SF_ERR_NOMEM, "attention: cannot allocate tiles of %lld x %lld", (long long)bq,
                   (long long)bk);
  return SF_OK;
}
