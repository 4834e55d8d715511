/* Merging partial attentions by log-sum-exp: two attentions of the same
 * query over disjoint key sets, (o_a, lse_a) and (o_b, lse_b), make the
 * attention over their union:
 *   m = max(lse_a, lse_b), w_a = exp(lse_a - m), w_b = exp(lse_b - m)
 *   o = (w_a o_a + w_b o_b) / (w_a + w_b),  lse = m + log(w_a + w_b).
 * Ring attention merges each (query block, key block) result into its
 * output; context-parallel decode merges the ranks' shards. */
#ifndef SCANFLASH_PARALLEL_CP_MERGE_H
#define SCANFLASH_PARALLEL_CP_MERGE_H

#include "ops/op_table.h"

#ifdef __cplusplus
extern "C" {
#endif

/* acc <- acc (+) part over the rows of seqs (token-major, as the ops lay
 * them out: row start[b] + i, i < len[b]) and every head. An accumulator
 * row with lse -inf holds nothing yet: it takes part as it is and its
 * output is never read (so it may start as garbage); a part row with lse
 * -inf changes nothing. out may be the caller's strided output; lse and
 * part_lse are fp32, [row * stride + head]. Pointers in backend memory. */
typedef struct sf_cp_merge_params {
  sf_dtype dtype;                 /* out and part */
  int32_t n_heads, head_dim;
  sf_seqs seqs;
  void *out; int64_t out_token_stride, out_head_stride;
  float *lse; int64_t lse_token_stride;
  const void *part; int64_t part_token_stride, part_head_stride;
  const float *part_lse; int64_t part_lse_token_stride;
} sf_cp_merge_params;

/* Runs on ctx's backend: the cpu one on the host now; a cuda kernel is the
 * next backend (an SF_ERR_UNSUPPORTED error until then). */
sf_status sf_cp_attention_merge(sf_op_ctx *ctx, const sf_cp_merge_params *p, sf_error *err);

#ifdef __cplusplus
}
#endif
#endif
