/* Attention over a KV cache: prefill (causal, GQA, chunked via past_len) and
 * decode (one query per sequence, split-KV with a log-sum-exp merge). */
#ifndef SCANFLASH_OPS_ATTENTION_H
#define SCANFLASH_OPS_ATTENTION_H

#include "ops/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A KV cache: k[b][pos][kv_head][0..head_dim). Shared by the ops below. */
typedef struct sf_kv_cache_view {
  void *k; void *v;
  int64_t batch_stride, pos_stride, head_stride;  /* same for k and v */
  int64_t max_len;                                /* positions per sequence */
} sf_kv_cache_view;

/* Copies the new tokens' k and v into the cache at positions
 * past_len[b] + i. Writing past max_len is an error. */
typedef struct sf_kv_append_params {
  sf_dtype dtype;
  int32_t n_kv_heads, head_dim;
  sf_seqs seqs;
  const int32_t *past_len;        /* [batch]; NULL = all zero */
  const void *k; int64_t k_token_stride, k_head_stride;
  const void *v; int64_t v_token_stride, v_head_stride;
  sf_kv_cache_view cache;
} sf_kv_append_params;

/* Prefill: query i of sequence b sits at position p = past_len[b] + i and
 * attends to cache positions [0, p] when causal ([0, past_len[b] + len[b])
 * otherwise); the chunk's own k/v must already be in the cache. Query head h
 * reads kv head h / (n_heads / n_kv_heads) (GQA). out = softmax(scale q k^T) v.
 * lse (optional) receives the natural-log sum of exp(scale q k^T) per
 * (token, head), for merging partial attentions. */
typedef struct sf_attention_params {
  sf_dtype dtype;
  int32_t n_heads, n_kv_heads, head_dim;
  float scale;
  int causal;
  sf_seqs seqs;
  const int32_t *past_len;        /* [batch]; NULL = all zero */
  const void *q; int64_t q_token_stride, q_head_stride;
  sf_kv_cache_view cache;
  void *out; int64_t out_token_stride, out_head_stride;
  float *lse; int64_t lse_token_stride;           /* [tokens, n_heads]; may be NULL */
  int32_t block_q, block_k;       /* tiles of the tiled algorithm; 0 = default */
} sf_attention_params;

/* Decode: one query per sequence at position cache_len[b] - 1 (its own k/v
 * already appended), attending to cache positions [0, cache_len[b]). The
 * keys are cut into num_splits contiguous parts, each reduced to a partial
 * output and log-sum-exp, then merged. */
typedef struct sf_attention_decode_params {
  sf_dtype dtype;
  int32_t batch, n_heads, n_kv_heads, head_dim;
  float scale;
  const void *q; int64_t q_batch_stride, q_head_stride;
  sf_kv_cache_view cache;
  const int32_t *cache_len;       /* [batch] */
  int32_t num_splits;             /* 0 = backend chooses */
  void *out; int64_t out_batch_stride, out_head_stride;
  float *lse; int64_t lse_batch_stride;  /* [batch, n_heads] log-sum-exp (context-parallel
                                            merges); may be NULL */
} sf_attention_decode_params;

/* Merging partial attentions by log-sum-exp (context parallelism: ring
 * attention merges each key block's result into its output, decode merges
 * the ranks' shards). Two attentions of the same query over disjoint key
 * sets, (o_a, lse_a) and (o_b, lse_b), make the attention over their union:
 *   m = max(lse_a, lse_b), w_a = exp(lse_a - m), w_b = exp(lse_b - m)
 *   o = (w_a o_a + w_b o_b) / (w_a + w_b),  lse = m + log(w_a + w_b).
 * Here acc (out, lse) <- acc (+) part (part, part_lse), in place, for every
 * row of seqs (token-major: row start[b] + i, i < len[b]) and every head;
 * rows outside seqs are untouched. An acc row with lse -inf holds nothing
 * yet: it takes part as it is (converted to out_dtype) and its old output is
 * never read, so it may start as garbage (NaN included); a part row with
 * lse -inf changes nothing (its output is never read either). The lses are
 * fp32, [row * token_stride + head]; math in fp32 on every backend.
 *
 * out_dtype may differ from dtype so that an accumulator can stay in f32
 * while the partial attentions are bf16/f16 (as the attention ops write
 * them): k merges into a 16-bit output round k times, into an f32 one once
 * (a last merge of the f32 accumulator into the 16-bit output, or into an
 * output whose lse is -inf, which is a converting copy). The cpu backend
 * takes f32 for both. out and part must not overlap. */
typedef struct sf_attention_merge_params {
  sf_dtype dtype;                 /* part (the partial attention) */
  sf_dtype out_dtype;             /* out (the accumulator); set it: 0 is f32 */
  int32_t n_heads, head_dim;
  sf_seqs seqs;
  void *out; int64_t out_token_stride, out_head_stride;
  float *lse; int64_t lse_token_stride;
  const void *part; int64_t part_token_stride, part_head_stride;
  const float *part_lse; int64_t part_lse_token_stride;
} sf_attention_merge_params;

#ifdef __cplusplus
}
#endif
#endif
