/* Context-parallel attention over k ranks (one transport group), built on
 * the op table's attention, attention_decode, attention_merge and
 * kv_append, so it runs on any backend whose transport can move its
 * buffers.
 *
 * Prefill (ring attention over zigzag shards, cp_shard.h): rank r holds
 * blocks r and 2k-1-r of every sequence (q, k, v after rotary with global
 * positions). Its own K/V shard is packed into a ring buffer; in k steps
 * the shard of rank (r - s) mod k is attended to and passed on to r + 1
 * while the one of r - 1 arrives (k - 1 sendrecvs of K and V together). A
 * (query block i, key block j) pair is causal when i = j (only the rank's
 * own shard, step 0, one causal call over both blocks), fully visible when
 * j < i, and skipped when j > i; fully visible pairs are one attention call
 * with causal off and past_len = keys - queries (so every query sees the
 * whole key block; the even split keeps that >= 0). Each call writes a
 * partial output and its log-sum-exp, merged into the output (the op
 * table's attention_merge).
 * Every step costs each rank the same two blocks' worth of scores:
 *   source rank < r: its block j < r against both of r's blocks;
 *   source rank > r: both its blocks against r's late block 2k-1-r.
 *
 * Decode: every rank has the same query (activations are replicated); each
 * attends over its own shard of the cache (attention_decode with lse), the
 * k partial outputs and lse are all-gathered and merged in rank order, so
 * every rank ends with the same, bitwise identical output. Who stores a new
 * token's K/V: sf_cp_decode_owner (cp_shard.h).
 *
 * Both are collective over the group: every rank calls them with the same
 * batch and sequence lengths. An error on one rank is an error on all
 * (t->agree before the ring and after it, and before decode's all-gather),
 * so no rank is left waiting in a transfer. Scratch memory comes through
 * the op table: from `scratch` when given (kept across calls: one per
 * session and call kind, cp_scratch.h), else allocated and freed per call. */
#ifndef SCANFLASH_PARALLEL_CP_ATTENTION_H
#define SCANFLASH_PARALLEL_CP_ATTENTION_H

#include "ops/op_table.h"
#include "parallel/cp_scratch.h"
#include "parallel/transport_api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Causal prefill of whole sequences (no past: the prompt in one pass).
 * Sequence b has seq_len[b] tokens in all; this rank's
 * sf_cp_zigzag_len(seq_len[b], k, rank) of them sit in rows
 * local_start[b] + i of q, k, v and out (block r first, then block
 * 2k-1-r). seq_len and local_start are HOST arrays, the same seq_len on
 * every rank; tensors in backend memory, strided as for the attention op. */
typedef struct sf_cp_prefill_params {
  sf_dtype dtype;
  int32_t n_heads, n_kv_heads, head_dim;
  float scale;
  int32_t batch;
  const int64_t *seq_len;
  const int64_t *local_start;
  const void *q; int64_t q_token_stride, q_head_stride;
  const void *k; int64_t k_token_stride, k_head_stride;
  const void *v; int64_t v_token_stride, v_head_stride;
  void *out; int64_t out_token_stride, out_head_stride;
} sf_cp_prefill_params;

sf_status sf_cp_attention_prefill(sf_op_ctx *ctx, sf_transport *t, sf_cp_scratch *scratch,
                                  const sf_cp_prefill_params *p, sf_error *err);

/* One decode step: q[b] (the same on every rank) over this rank's shard of
 * the KV cache, which holds cache_len[b] tokens of sequence b
 * (sf_cp_cache_len; 0 is allowed, at least one rank must hold a token).
 * cache_len is a HOST array; the rest as for attention_decode. out is
 * written on every rank. */
typedef struct sf_cp_decode_params {
  sf_dtype dtype;
  int32_t batch, n_heads, n_kv_heads, head_dim;
  float scale;
  const void *q; int64_t q_batch_stride, q_head_stride;
  sf_kv_cache_view cache;
  const int32_t *cache_len;
  int32_t num_splits;             /* per rank; 0 = backend chooses */
  void *out; int64_t out_batch_stride, out_head_stride;
} sf_cp_decode_params;

sf_status sf_cp_attention_decode(sf_op_ctx *ctx, sf_transport *t, sf_cp_scratch *scratch,
                                 const sf_cp_decode_params *p, sf_error *err);

#ifdef __cplusplus
}
#endif
#endif
