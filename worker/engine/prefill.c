/* Prefill: a padded or varlen batch cut into chunks of chunk_tokens per
 * sequence. Chunk c holds tokens [c*T, (c+1)*T) of every sequence (fewer, or
 * none, for shorter ones), laid out as the input was (padded: start[b] =
 * b * the chunk's longest length; varlen: packed), and runs the whole model
 * over them; the state (Mamba) or KV cache (Transformer) carries between
 * chunks. Each sequence's last token's hidden row is gathered (through the
 * embedding op, the hidden rows as its table) when its chunk passes, and the
 * head runs once at the end over those rows. A context-parallel session
 * takes another road (parallel.c). */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

sf_status sf_engine_check_input(sf_session *s, const sf_batch_input *in, int64_t *max_new,
                                sf_error *err) {
  if (!in || !in->lens || !in->ids)
    return sf_fail(err, SF_ERR_ARG, "prefill: ids and lens are required");
  if (in->layout != SF_BATCH_PADDED && in->layout != SF_BATCH_VARLEN)
    return sf_fail(err, SF_ERR_ARG, "prefill: unknown batch layout %d", (int)in->layout);
  int64_t off = 0, mx = 0;
  for (int32_t b = 0; b < s->batch; b++) {
    const int64_t n = in->lens[b];
    if (n < 0) return sf_fail(err, SF_ERR_ARG, "prefill: sequence %d has length %lld", (int)b, (long long)n);
    if (in->layout == SF_BATCH_PADDED && n > in->row_stride)
      return sf_fail(err, SF_ERR_ARG, "prefill: sequence %d has %lld tokens, more than the row stride %lld",
                     (int)b, (long long)n, (long long)in->row_stride);
    if (s->len[b] + n > s->max_len)
      return sf_fail(err, SF_ERR_ARG,
                     "prefill: sequence %d would hold %lld tokens, more than the session's max_len %lld",
                     (int)b, (long long)(s->len[b] + n), (long long)s->max_len);
    s->h_inoff[b] = in->layout == SF_BATCH_PADDED ? (int64_t)b * in->row_stride : off;
    const int32_t *ids = in->ids + s->h_inoff[b];
    for (int64_t i = 0; i < n; i++)
      if (ids[i] < 0 || ids[i] >= s->vocab)
        return sf_fail(err, SF_ERR_ARG, "prefill: token %lld of sequence %d has id %d outside [0, %d)",
                       (long long)i, (int)b, (int)ids[i], (int)s->vocab);
    off += n;
    if (n > mx) mx = n;
  }
  *max_new = mx;
  return SF_OK;
}

/* Lays out chunk [off, off + T) of every sequence in the host staging arrays;
 * returns the pass's rows and tpad (its longest sequence). */
static void plan_chunk(sf_session *s, const sf_batch_input *in, int64_t off, int64_t *rows_out,
                       int64_t *tpad_out, int32_t *n_end_out) {
  const int64_t T = s->chunk_tokens;
  int64_t tpad = 0;
  for (int32_t b = 0; b < s->batch; b++) {
    int64_t nb = in->lens[b] - off;
    nb = nb < 0 ? 0 : nb > T ? T : nb;
    s->h_seqlen[b] = (int32_t)nb;
    if (nb > tpad) tpad = nb;
  }
  int64_t rows = 0;
  int32_t n_end = 0;
  for (int32_t b = 0; b < s->batch; b++) {
    const int64_t nb = s->h_seqlen[b];
    s->h_start[b] = in->layout == SF_BATCH_PADDED ? (int64_t)b * tpad : rows;
    rows = in->layout == SF_BATCH_PADDED ? rows + tpad : rows + nb;
    s->h_past[b] = (int32_t)s->len[b];
    const int32_t *ids = in->ids + s->h_inoff[b] + off;
    for (int64_t i = 0; i < nb; i++) {
      s->h_ids[s->h_start[b] + i] = ids[i];
      s->h_pos[s->h_start[b] + i] = (int32_t)(s->len[b] + i);
    }
    /* Padding rows: a valid id and position, so every row stays finite. */
    if (in->layout == SF_BATCH_PADDED)
      for (int64_t i = nb; i < tpad; i++) s->h_ids[s->h_start[b] + i] = 0, s->h_pos[s->h_start[b] + i] = 0;
    if (nb > 0 && off + nb == in->lens[b]) {
      s->h_gather[n_end] = (int32_t)(s->h_start[b] + nb - 1);
      s->h_gather_b[n_end] = b;
      n_end++;
    }
  }
  *rows_out = rows;
  *tpad_out = tpad;
  *n_end_out = n_end;
}

static sf_status run_chunk(sf_session *s, const sf_batch_input *in, int64_t off, float *all_logits,
                           sf_error *err) {
  const sf_ops *o = s->ops;
  const int32_t B = s->batch;
  const int64_t d = s->d_model, V = s->vocab;
  int64_t rows, tpad;
  int32_t n_end;
  plan_chunk(s, in, off, &rows, &tpad, &n_end);
  if (rows == 0) return SF_OK;
  int has_init = 0;
  for (int32_t b = 0; b < B; b++) has_init |= s->len[b] > 0;

  SF_TRY(o->upload(s->ctx, s->d_ids, s->h_ids, (size_t)rows * sizeof(int32_t), err));
  SF_TRY(o->upload(s->ctx, s->d_pos, s->h_pos, (size_t)rows * sizeof(int32_t), err));
  SF_TRY(o->upload(s->ctx, s->d_start, s->h_start, (size_t)B * sizeof(int64_t), err));
  SF_TRY(o->upload(s->ctx, s->d_seqlen, s->h_seqlen, (size_t)B * sizeof(int32_t), err));
  SF_TRY(o->upload(s->ctx, s->d_past, s->h_past, (size_t)B * sizeof(int32_t), err));
  if (n_end) SF_TRY(o->upload(s->ctx, s->d_gather, s->h_gather, (size_t)n_end * sizeof(int32_t), err));

  sf_pass pass = {.decode = 0, .rows = rows, .has_initial_state = has_init,
                  .seqs = {.batch = B, .max_len = tpad, .start = s->d_start, .len = s->d_seqlen}};
  SF_TRY(sf_forward_body(s, &pass, err));

  /* The last hidden row of every sequence that ends in this chunk. */
  for (int32_t j = 0; j < n_end; j++) {
    sf_embedding_params g = {.dtype = s->rdt, .n_tokens = 1, .d = d, .vocab = (int32_t)rows,
                             .ids = s->d_gather + j, .table = s->x, .table_row_stride = d,
                             .out = sf_elem(s->last_h, s->h_gather_b[j] * d, s->rsz),
                             .out_row_stride = d};
    if (o->embedding(s->ctx, &g, err) != SF_OK) return sf_fail_context(err, "gather last rows");
  }

  if (all_logits) {
    SF_TRY(sf_forward_head(s, s->x, rows, s->logits_all, err));
    for (int32_t b = 0; b < B; b++) {
      const int64_t nb = s->h_seqlen[b];
      if (!nb) continue;
      SF_TRY(o->download(s->ctx, all_logits + (s->h_inoff[b] + off) * V,
                         s->logits_all + s->h_start[b] * V, (size_t)(nb * V) * sizeof(float), err));
    }
  }
  for (int32_t b = 0; b < B; b++) s->len[b] += s->h_seqlen[b];
  return SF_OK;
}

sf_status sf_session_prefill(sf_session *s, const sf_batch_input *in, float *last_logits,
                             float *all_logits, sf_error *err) {
  if (s->cp) return sf_engine_cp_prefill(s, in, last_logits, all_logits, err);
  int64_t max_new = 0;
  SF_TRY(sf_engine_check_input(s, in, &max_new, err));
  if (max_new == 0) return SF_OK;
  if (all_logits && !s->logits_all) {
    void *p;
    const size_t bytes = (size_t)(s->max_rows * s->vocab) * sizeof(float);
    SF_TRY(sf_session_alloc(s, bytes, &p, err));
    s->logits_all = p;
    s->scratch_bytes += (int64_t)bytes;
  }
  for (int64_t off = 0; off < max_new; off += s->chunk_tokens) {
    sf_status rc = run_chunk(s, in, off, all_logits, err);
    if (rc != SF_OK)
      return sf_fail_context(err, "prefill chunk at token %lld", (long long)off);
  }
  /* The vocab-wide head runs once, when logits are needed: a prompt fed in
   * several calls (chunked by the caller) must not pay it per call. */
  s->head_pending = 1;
  if (!last_logits) return SF_OK;
  SF_TRY(sf_forward_head(s, s->last_h, s->batch, s->logits, err));
  s->head_pending = 0;
  if (last_logits)
    for (int32_t b = 0; b < s->batch; b++) {
      if (!in->lens[b]) continue;
      const size_t V = (size_t)s->vocab;
      SF_TRY(s->ops->download(s->ctx, last_logits + (size_t)b * V, s->logits + (size_t)b * V,
                              V * sizeof(float), err));
    }
  return SF_OK;
}
