/* The inference engine: the forward passes of the three model families
 * (Mamba-1, Mamba-2, GPT-NeoX / Pythia) over the op table, with a session
 * that owns the per-sequence inference state, batched and chunked prefill,
 * one-token decode steps and a greedy generation loop.
 *
 * A session holds, in the model's backend memory:
 *   Mamba-1      per layer conv state [batch, d_inner, d_conv-1] (act dtype)
 *                and SSM state [batch, d_inner, d_state] (f32);
 *   Mamba-2      per layer conv state [batch, d_inner + 2*n_groups*d_state,
 *                d_conv-1] and SSM state [batch, heads, head_dim, d_state] (f32);
 *   Transformer  per layer K and V caches [batch, max_len, n_kv_heads, head_dim];
 * the length of every sequence (tokens consumed so far: the next token's
 * absolute position), and activation scratch for one prefill chunk
 * (batch * chunk_tokens tokens), which decode steps reuse.
 *
 * Prefill appends tokens to each sequence (a fresh session starts at length 0)
 * in chunks of chunk_tokens per sequence that carry the state (Mamba:
 * has_initial_state) or the KV cache (past_len), so any chunk size gives the
 * same logits as one pass. Decode consumes one token per sequence through the
 * update ops (conv1d_update + selective_state_update / ssd_update) or
 * kv_append + attention_decode. Nothing here prints or exits; every failure is
 * an sf_error (after a failed prefill or decode, reset the session).
 *
 * The residual stream is f32 on every backend (mamba_ssm's residual_in_fp32;
 * Pythia's bf16 residual is kept in f32 too, which only adds precision): the
 * embedding widens into it, norms read it in f32 and write the activation
 * dtype, and the residual adds are GEMMs accumulating in f32.
 *
 * All state and scratch of a session is one backend allocation (the arena),
 * made at creation, so no allocation happens inside a timed prefill or
 * decode step. */
#ifndef SCANFLASH_ENGINE_H
#define SCANFLASH_ENGINE_H

#include <stdint.h>

#include "model/model.h"
#include "ops/op_table.h"
#include "scanflash/error.h"

typedef struct sf_session sf_session;

/* batch sequences of at most max_len tokens each (prompt + generated);
 * chunk_tokens: prefill chunk per sequence (0 = max_len, one pass). */
sf_status sf_session_create(const sf_model *model, int32_t batch, int64_t max_len,
                            int64_t chunk_tokens, sf_session **out, sf_error *err);
void sf_session_free(sf_session *s);

/* Context parallel (issue 8; docs/context-parallel.md): a session of one
 * rank of a group of k = t->size ranks (t: parallel/transport_api.h; each
 * rank holds the same model) that run the same batch together. Every call
 * on such a session is collective: all ranks make it with the same
 * arguments (the whole prompts, the same decode ids) and it returns the
 * same status on every rank (one rank's failure is every rank's, through
 * t->agree). What each rank holds:
 *   Transformer  the prompt cut into 2k zigzag blocks, rank r holding blocks
 *                r and 2k-1-r (rotary at their global positions); prefill
 *                is ring attention over the group; the decode token at
 *                position p is stored by rank p mod k and every rank attends
 *                over its own shard, the k partial outputs merged by
 *                log-sum-exp (the same on every rank). The KV cache of a
 *                rank holds ceil(max_len / k) + 2 positions per sequence.
 *   Mamba-1/2    the prompt cut into k contiguous pieces, layer states
 *                passed rank r -> r+1 per layer (a wavefront); the final
 *                states, on rank k-1, are then sent to every rank, so decode
 *                is replicated (state is small).
 * Activation scratch is sized for one rank's share of max_len tokens per
 * sequence. After the prefill the last prompt token's hidden row is
 * all-gathered, so every rank computes the same logits; decode activations
 * are replicated, so every rank ends each step with the same logits as a
 * one-rank session (up to the order of the attention sums). Restrictions:
 * the whole prompt goes in one sf_session_prefill call on a fresh (or
 * reset) session, every sequence has >= 1 token, no all_logits, and decode
 * steps run without backend graphs (the step's host-side agreement and
 * per-call scratch cannot be captured). A one-rank group (k = 1) is a
 * plain session run through the same code. */
typedef struct sf_transport sf_transport;
sf_status sf_session_create_parallel(const sf_model *model, int32_t batch, int64_t max_len,
                                     sf_transport *t, sf_session **out, sf_error *err);
/* The session's group, NULL for a one-rank session. */
sf_transport *sf_session_transport(const sf_session *s);

/* Every sequence back to length 0 (state and cache zeroed). */
sf_status sf_session_reset(sf_session *s, sf_error *err);

int32_t sf_session_batch(const sf_session *s);
int64_t sf_session_max_len(const sf_session *s);
int64_t sf_session_chunk_tokens(const sf_session *s);
/* Tokens sequence b has consumed (prefill + decode). */
int64_t sf_session_length(const sf_session *s, int32_t b);
/* Backend bytes of the inference state (conv + SSM state, or KV cache) and of
 * the activation scratch (including the logits buffers allocated so far). */
int64_t sf_session_state_bytes(const sf_session *s);
int64_t sf_session_scratch_bytes(const sf_session *s);

/* A batch of token ids on the host. Padded: sequence b's ids at
 * ids + b * row_stride (row_stride >= every len). Varlen: packed, sequence b
 * starting at the sum of the previous lens. The layout is kept all the way
 * down: a padded batch reaches the ops as an sf_seqs with start[b] = b * stride
 * (the chunk's longest length), a varlen batch as packed sf_seqs. */
typedef enum sf_batch_layout { SF_BATCH_PADDED, SF_BATCH_VARLEN } sf_batch_layout;

typedef struct sf_batch_input {
  sf_batch_layout layout;
  const int32_t *ids;
  const int32_t *lens;      /* [batch], >= 0 each (0: that sequence takes no tokens) */
  int64_t row_stride;       /* padded only */
} sf_batch_input;

/* Feeds in->lens[b] tokens to every sequence b (batch = the session's),
 * appended after what it already holds. Outputs (host, f32, either may be NULL):
 *   last_logits [batch, vocab]: the logits at each sequence's last new token
 *     (rows of sequences given 0 tokens are left untouched);
 *   all_logits: the logits at every new token, laid out like the input ids
 *     (padded: [batch, row_stride, vocab], padding rows untouched; varlen:
 *     [sum lens, vocab]). Costs a vocab-wide GEMM over every token (tests).
 * The session keeps the last positions for sf_session_sample, which runs the
 * lm head then when last_logits was NULL (so chunk-by-chunk calls pay it once). */
sf_status sf_session_prefill(sf_session *s, const sf_batch_input *in, float *last_logits,
                             float *all_logits, sf_error *err);

/* One token per sequence (ids: host [batch]); logits (host [batch, vocab], f32)
 * may be NULL. */
sf_status sf_session_decode(sf_session *s, const int32_t *ids, float *logits, sf_error *err);

/* Decode steps replayed from a backend graph (CUDA graphs; on by default
 * where the backend has them): the first step of a session runs eagerly, the
 * second is captured, every later one is a single launch. Off: every step
 * issues its ops (the reference path, and for comparisons). */
void sf_session_set_graphs(sf_session *s, int on);
/* Non-zero once the session replays its decode step from a graph. */
int sf_session_graphs_active(const sf_session *s);
/* Non-zero when the last decode step ran every layer as one backend op
 * (Mamba-1 at batch 1 on the cuda backend: one persistent kernel). */
int sf_session_persistent_active(const sf_session *s);

/* Greedy choice (argmax, lowest id on ties; the backend's sample op) from the
 * logits of the last prefill / decode call: out_ids host [batch]. */
sf_status sf_session_sample(sf_session *s, int32_t *out_ids, sf_error *err);

/* Greedy generation on top of a session. */
typedef sf_status (*sf_logits_fn)(void *user, int64_t row, const float *logits, int32_t batch,
                                  int32_t vocab, sf_error *err);

typedef struct sf_generate_opts {
  int32_t max_new_tokens;   /* >= 0 */
  int32_t eos_id;           /* a sequence stops after producing it; < 0: never stop */
  /* Optional: called with host logits [batch, vocab] for row 0 = the last
   * prompt position, then row i = the logits after feeding generated token i
   * (i = 1 .. steps): the argmax of row i is generated token i + 1. Fetching
   * them is inside the timed regions. */
  sf_logits_fn on_logits;
  void *user;
} sf_generate_opts;

typedef struct sf_generate_stats {
  int64_t prompt_tokens;    /* sum of prompt lens */
  int64_t decode_steps;     /* decode calls: new tokens - 1 (0 when none or EOS at once) */
  int64_t decode_tokens;    /* decode_steps * batch */
  double prefill_s;         /* prefill + first-token choice (TTFT), backend synced */
  double decode_s;          /* the decode steps and their token choices */
} sf_generate_stats;

/* Prefill of prompt into a session (it must be fresh or reset), then decode
 * until max_new_tokens per sequence, or until every sequence has produced
 * eos_id (a finished sequence keeps stepping with the rest, its further
 * tokens dropped). out_ids: host [batch, max_new_tokens]; out_n: [batch]
 * tokens produced per sequence (EOS included). stats may be NULL. */
sf_status sf_generate(sf_session *s, const sf_batch_input *prompt, const sf_generate_opts *opts,
                      int32_t *out_ids, int32_t *out_n, sf_generate_stats *stats, sf_error *err);

/* Seconds on a monotonic clock (clock_gettime(CLOCK_MONOTONIC)). */
double sf_engine_now(void);

#endif
