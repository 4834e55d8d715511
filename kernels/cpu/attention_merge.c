/* attention_merge on the cpu: acc <- acc (+) part by log-sum-exp (the
 * semantics are in ops/attention.h). fp32 throughout, like the rest of this
 * backend; the reference the cuda kernel is checked against, and the merge
 * of the context-parallel path under mpirun on the cpu backend. */
#include <math.h>
#include <string.h>

#include "cpu_common.h"

/* One (row, head): a -inf part changes nothing, a -inf accumulator takes
 * the part as it is (without reading its old output, which may be garbage). */
static void merge_head(const sf_attention_merge_params *p, int64_t row, int32_t h) {
  float *lse = p->lse + row * p->lse_token_stride + h;
  const float lb = p->part_lse[row * p->part_lse_token_stride + h];
  if (lb == -INFINITY) return;
  float *o = (float *)p->out + row * p->out_token_stride + (int64_t)h * p->out_head_stride;
  const float *ob = (const float *)p->part + row * p->part_token_stride + (int64_t)h * p->part_head_stride;
  const float la = *lse;
  if (la == -INFINITY) {
    memcpy(o, ob, (size_t)p->head_dim * sizeof(float));
    *lse = lb;
    return;
  }
  const float m = la > lb ? la : lb;
  const float wa = expf(la - m), wb = expf(lb - m), inv = 1.0f / (wa + wb);
  for (int32_t d = 0; d < p->head_dim; d++) o[d] = (wa * o[d] + wb * ob[d]) * inv;
  *lse = m + logf(wa + wb);
}

SF_CPU_OP(attention_merge, sf_attention_merge_params) {
  static const char *op = "attention_merge";
  SF_CPU_REQUIRE_F32(op, p->dtype);
  SF_CPU_REQUIRE_F32(op, p->out_dtype);
  if (p->n_heads <= 0 || p->head_dim <= 0)
    return sf_fail(err, SF_ERR_ARG, "%s: need n_heads > 0 and head_dim > 0, got %d and %d", op, (int)p->n_heads,
                   (int)p->head_dim);
  SF_TRY(sf_cpu_check_seqs(op, &p->seqs, err));
  if (p->seqs.batch == 0 || p->seqs.max_len == 0) return SF_OK;
  if (!p->out || !p->lse || !p->part || !p->part_lse)
    return sf_fail(err, SF_ERR_ARG, "%s: out, lse, part and part_lse are required", op);
  for (int32_t b = 0; b < p->seqs.batch; b++) {
    const int64_t s0 = p->seqs.start[b], n = (int64_t)p->seqs.len[b] * p->n_heads;
    const int nt = sf_cpu_threads(ctx, (double)n * p->head_dim);
    (void)nt; /* without OpenMP */
    /* Every (row, head) is independent: no two iterations touch the same data. */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t i = 0; i < n; i++) merge_head(p, s0 + i / p->n_heads, (int32_t)(i % p->n_heads));
  }
  return SF_OK;
}
