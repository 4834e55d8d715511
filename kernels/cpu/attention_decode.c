/* Decode attention, split-KV (flash-decoding), fp32 reference.
 *
 * One query per (sequence b, head h) at position cache_len[b] - 1 attends to
 * cache positions [0, L), L = cache_len[b]. The keys are cut into ns parts,
 * part s = [s L / ns, (s + 1) L / ns) (empty parts when ns > L):
 *   phase 1, in parallel over (b, h, s): each part gives its normalised
 *     partial output o_s and log-sum-exp lse_s (an online softmax over
 *     blocks of 256 keys); an empty part gives lse_s = -inf;
 *   phase 2, in parallel over (b, h): with M = max_s lse_s and
 *     w_s = exp(lse_s - M), out = sum_s w_s o_s / sum_s w_s.
 * ns = num_splits, or when 0: ceil(L / 256) capped at 64 per sequence. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "cpu_ops.h"

enum { KEY_BLOCK = 256, AUTO_SPLIT_KEYS = 256, AUTO_SPLIT_MAX = 64 };

static int64_t splits_for(const sf_attention_decode_params *p, int64_t L) {
  if (p->num_splits > 0) return p->num_splits;
  int64_t ns = (L + AUTO_SPLIT_KEYS - 1) / AUTO_SPLIT_KEYS;
  if (ns > AUTO_SPLIT_MAX) ns = AUTO_SPLIT_MAX;
  return ns < 1 ? 1 : ns;
}

static inline float dot_f(const float *a, const float *b, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* Keys [j0, j1) of one (b, h): o = softmax-weighted v (normalised), returns lse. */
static float partial(const sf_attention_decode_params *p, int32_t b, int32_t h, int64_t j0,
                     int64_t j1, float *o, float *sc) {
  const int64_t D = p->head_dim;
  const int32_t kvh = h / (p->n_heads / p->n_kv_heads);
  const float *q = (const float *)p->q + (int64_t)b * p->q_batch_stride + (int64_t)h * p->q_head_stride;
  const int64_t off = (int64_t)b * p->cache.batch_stride + (int64_t)kvh * p->cache.head_stride;
  const float *k = (const float *)p->cache.k + off, *v = (const float *)p->cache.v + off;
  const int64_t ps = p->cache.pos_stride;
  float m = -INFINITY, l = 0.0f;
  for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
  for (int64_t c0 = j0; c0 < j1; c0 += KEY_BLOCK) {
    const int64_t c1 = c0 + KEY_BLOCK < j1 ? c0 + KEY_BLOCK : j1;
    float mloc = -INFINITY;
    for (int64_t j = c0; j < c1; j++) {
      sc[j - c0] = p->scale * dot_f(q, k + j * ps, D);
      if (sc[j - c0] > mloc) mloc = sc[j - c0];
    }
    const float m_new = m > mloc ? m : mloc;
    if (m_new == -INFINITY) continue;
    const float alpha = expf(m - m_new);
    float sum = 0.0f;
    for (int64_t j = c0; j < c1; j++) {
      sc[j - c0] = expf(sc[j - c0] - m_new);
      sum += sc[j - c0];
    }
    l = l * alpha + sum;
    m = m_new;
    for (int64_t d = 0; d < D; d++) o[d] *= alpha;
    for (int64_t j = c0; j < c1; j++) {
      const float pj = sc[j - c0];
      const float *vj = v + j * ps;
#pragma omp simd
      for (int64_t d = 0; d < D; d++) o[d] += pj * vj[d];
    }
  }
  if (l == 0.0f) return -INFINITY; /* empty part */
  const float inv = 1.0f / l;
  for (int64_t d = 0; d < D; d++) o[d] *= inv;
  return m + logf(l);
}

SF_CPU_OP(attention_decode, sf_attention_decode_params) {
  (void)ctx;
  SF_CPU_REQUIRE_F32("attention_decode", p->dtype);
  if (p->batch < 0 || p->n_heads <= 0 || p->n_kv_heads <= 0 || p->head_dim <= 0)
    return sf_fail(err, SF_ERR_ARG,
                   "attention_decode: need batch >= 0 and n_heads, n_kv_heads, head_dim > 0, "
                   "got %d, %d, %d, %d",
                   (int)p->batch, (int)p->n_heads, (int)p->n_kv_heads, (int)p->head_dim);
  if (p->n_heads % p->n_kv_heads != 0)
    return sf_fail(err, SF_ERR_ARG,
                   "attention_decode: n_heads %d is not a multiple of n_kv_heads %d (GQA)",
                   (int)p->n_heads, (int)p->n_kv_heads);
  if (!isfinite(p->scale))
    return sf_fail(err, SF_ERR_ARG, "attention_decode: scale %g must be finite", (double)p->scale);
  if (p->num_splits < 0)
    return sf_fail(err, SF_ERR_ARG, "attention_decode: num_splits %d must be >= 0 (0 = choose)",
                   (int)p->num_splits);
  if (p->batch == 0) return SF_OK;
  if (!p->cache_len)
    return sf_fail(err, SF_ERR_ARG, "attention_decode: cache_len must be non-NULL");
  int64_t ns_max = 1;
  for (int32_t b = 0; b < p->batch; b++) {
    const int64_t L = p->cache_len[b];
    if (L < 1 || L > p->cache.max_len)
      return sf_fail(err, SF_ERR_ARG,
                     "attention_decode: sequence %d has cache_len %lld outside [1, %lld] (the "
                     "query's own k/v must be in the cache)",
                     (int)b, (long long)L, (long long)p->cache.max_len);
    const int64_t ns = splits_for(p, L);
    if (ns > ns_max) ns_max = ns;
  }
  if (!p->q || !p->out || !p->cache.k || !p->cache.v)
    return sf_fail(err, SF_ERR_ARG, "attention_decode: q, out, cache.k and cache.v must be non-NULL");

  const int64_t D = p->head_dim, H = p->n_heads, B = p->batch;
  /* Partials: [B][H][ns_max][D] outputs and [B][H][ns_max] lse. */
  const double slots = (double)B * (double)H * (double)ns_max;
  if (slots * (double)(D + 1) * sizeof(float) > (double)SIZE_MAX / 2)
    return sf_fail(err, SF_ERR_NOMEM, "attention_decode: %d splits need too much memory",
                   (int)p->num_splits);
  float *po = malloc((size_t)(B * H * ns_max * D) * sizeof(float));
  float *pl = malloc((size_t)(B * H * ns_max) * sizeof(float));
  if (!po || !pl) {
    free(po);
    free(pl);
    return sf_fail(err, SF_ERR_NOMEM, "attention_decode: cannot allocate %lld partials",
                   (long long)(B * H * ns_max));
  }

  int nomem = 0;
  const int64_t tasks = B * H * ns_max;
#pragma omp parallel if (tasks > 1)
  {
    float *sc = malloc(KEY_BLOCK * sizeof *sc);
    if (!sc) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; t++) {
      if (!sc) continue;
      const int32_t b = (int32_t)(t / (H * ns_max));
      const int32_t h = (int32_t)(t / ns_max % H);
      const int64_t s = t % ns_max;
      const int64_t L = p->cache_len[b], ns = splits_for(p, L);
      if (s >= ns) continue;
      const int64_t j0 = s * L / ns, j1 = (s + 1) * L / ns;
      pl[t] = partial(p, b, h, j0, j1, po + t * D, sc);
    }
    free(sc);
  }
  if (nomem) {
    free(po);
    free(pl);
    return sf_fail(err, SF_ERR_NOMEM, "attention_decode: cannot allocate a score block");
  }

  /* The merge is light: fork only when there is real work. */
#pragma omp parallel for schedule(static) if (B * H * ns_max * D > 65536)
  for (int64_t bh = 0; bh < B * H; bh++) {
    const int32_t b = (int32_t)(bh / H), h = (int32_t)(bh % H);
    const int64_t ns = splits_for(p, p->cache_len[b]);
    const float *lse = pl + bh * ns_max, *o = po + bh * ns_max * D;
    float M = -INFINITY;
    for (int64_t s = 0; s < ns; s++)
      if (lse[s] > M) M = lse[s];
    float *out = (float *)p->out + (int64_t)b * p->out_batch_stride + (int64_t)h * p->out_head_stride;
    for (int64_t d = 0; d < D; d++) out[d] = 0.0f;
    float wsum = 0.0f;
    for (int64_t s = 0; s < ns; s++) {
      if (lse[s] == -INFINITY) continue; /* empty part */
      const float w = expf(lse[s] - M);
      wsum += w;
      for (int64_t d = 0; d < D; d++) out[d] += w * o[s * D + d];
    }
    const float inv = 1.0f / wsum;
    for (int64_t d = 0; d < D; d++) out[d] *= inv;
    /* The merged log-sum-exp: M + log(sum_s exp(lse_s - M)). */
    if (p->lse) p->lse[(int64_t)b * p->lse_batch_stride + h] = M + logf(wsum);
  }
  free(po);
  free(pl);
  return SF_OK;
}
