/* Prefill attention, the plain way (the "standard implementation" baseline):
 * for each (sequence, token, head) the full row of scores s_j = scale q.k_j
 * over the visible keys, its max, exp(s_j - max), their sum, and
 * out = sum_j exp(s_j - max) v_j / sum; lse = max + log(sum). Same contract
 * as the tiled op (see attention.c / ops/attention.h), fp32. */
#include <math.h>
#include <stdlib.h>

#include "cpu_ops.h"

/* Defined in attention.c. */

SF_CPU_OP(attention_naive, sf_attention_params) {
  (void)ctx;
  SF_TRY(sf_cpu_attention_validate("attention_naive", p, err));
  const sf_seqs *s = &p->seqs;
  if (s->batch == 0 || s->max_len == 0) return SF_OK;
  /* The longest score row any query needs. */
  int64_t row_max = 1;
  for (int32_t b = 0; b < s->batch; b++) {
    const int64_t n = (p->past_len ? p->past_len[b] : 0) + s->len[b];
    if (n > row_max) row_max = n;
  }
  const int64_t D = p->head_dim, H = p->n_heads, group = p->n_heads / p->n_kv_heads;
  const int64_t tasks = (int64_t)s->batch * s->max_len * H;
  int nomem = 0;
#pragma omp parallel
  {
    float *sc = malloc((size_t)row_max * sizeof *sc);
    float *acc = malloc((size_t)D * sizeof *acc);
    const int ok = sc && acc;
    if (!ok) {
#pragma omp atomic write
      nomem = 1;
    }
#pragma omp for schedule(dynamic, 8)
    for (int64_t t = 0; t < tasks; t++) {
      if (!ok) continue;
      const int32_t b = (int32_t)(t / (s->max_len * H));
      const int64_t i = t / H % s->max_len;
      const int32_t h = (int32_t)(t % H);
      if (i >= s->len[b]) continue;
      const int64_t past = p->past_len ? p->past_len[b] : 0;
      const int64_t tok = s->start[b] + i;
      const int64_t n_keys = p->causal ? past + i + 1 : past + s->len[b];
      const float *q = (const float *)p->q + tok * p->q_token_stride + (int64_t)h * p->q_head_stride;
      const int64_t kv_off = (int64_t)b * p->cache.batch_stride + (h / group) * p->cache.head_stride;
      const float *k = (const float *)p->cache.k + kv_off;
      const float *v = (const float *)p->cache.v + kv_off;

      float mx = -INFINITY;
      for (int64_t j = 0; j < n_keys; j++) {
        const float *kj = k + j * p->cache.pos_stride;
        float dot = 0.0f;
        for (int64_t d = 0; d < D; d++) dot += q[d] * kj[d];
        sc[j] = p->scale * dot;
        if (sc[j] > mx) mx = sc[j];
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < n_keys; j++) {
        sc[j] = expf(sc[j] - mx);
        sum += sc[j];
      }
      for (int64_t d = 0; d < D; d++) acc[d] = 0.0f;
      for (int64_t j = 0; j < n_keys; j++) {
        const float *vj = v + j * p->cache.pos_stride;
        for (int64_t d = 0; d < D; d++) acc[d] += sc[j] * vj[d];
      }
      float *out = (float *)p->out + tok * p->out_token_stride + (int64_t)h * p->out_head_stride;
      for (int64_t d = 0; d < D; d++) out[d] = acc[d] / sum;
      if (p->lse) p->lse[tok * p->lse_token_stride + h] = mx + logf(sum);
    }
    free(sc);
    free(acc);
  }
  if (nomem)
    return sf_fail(err, SF_ERR_NOMEM, "attention_naive: cannot allocate a %lld-key score row",
                   (long long)row_max);
  return SF_OK;
}
