/* The LSE merge of cp_merge.h. The backend is picked by the op table's name
 * (not an op-table entry: only context parallelism needs it); the cpu
 * version runs here on the host, fp32 like the rest of that backend. */
#include <math.h>
#include <string.h>

#include "parallel/cp_merge.h"

static void merge_row(const sf_cp_merge_params *p, int64_t row) {
  for (int32_t h = 0; h < p->n_heads; h++) {
    float *lse = p->lse + row * p->lse_token_stride + h;
    const float lb = p->part_lse[row * p->part_lse_token_stride + h];
    if (lb == -INFINITY) continue;
    float *o = (float *)p->out + row * p->out_token_stride + (int64_t)h * p->out_head_stride;
    const float *ob = (const float *)p->part + row * p->part_token_stride + (int64_t)h * p->part_head_stride;
    const float la = *lse;
    if (la == -INFINITY) {
      memcpy(o, ob, (size_t)p->head_dim * sizeof(float));
      *lse = lb;
      continue;
    }
    const float m = la > lb ? la : lb;
    const float wa = expf(la - m), wb = expf(lb - m), inv = 1.0f / (wa + wb);
    for (int32_t d = 0; d < p->head_dim; d++) o[d] = (wa * o[d] + wb * ob[d]) * inv;
    *lse = m + logf(wa + wb);
  }
}

static sf_status merge_cpu(const sf_cp_merge_params *p, sf_error *err) {
  if (p->dtype != SF_F32)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "attention merge: the cpu backend computes in f32, got %s",
                   sf_dtype_name(p->dtype));
  for (int32_t b = 0; b < p->seqs.batch; b++)
    for (int64_t i = 0; i < p->seqs.len[b]; i++) merge_row(p, p->seqs.start[b] + i);
  return SF_OK;
}

sf_status sf_cp_attention_merge(sf_op_ctx *ctx, const sf_cp_merge_params *p, sf_error *err) {
  if (p->n_heads <= 0 || p->head_dim <= 0 || p->seqs.batch < 0)
    return sf_fail(err, SF_ERR_ARG, "attention merge: need n_heads, head_dim > 0 and batch >= 0, got %d, %d, %d",
                   (int)p->n_heads, (int)p->head_dim, (int)p->seqs.batch);
  if (p->seqs.batch == 0) return SF_OK;
  if (!strcmp(ctx->ops->name, "cpu")) return merge_cpu(p, err);
  return sf_fail(err, SF_ERR_UNSUPPORTED, "attention merge: no %s implementation yet", ctx->ops->name);
}
