/* Context-parallel sessions (engine.h, docs/context-parallel.md): the
 * prefill of a prompt shared out over the group (zigzag blocks for the
 * Transformer, contiguous pieces for Mamba), the replicated decode step, and
 * the failure protocol that keeps every rank in step.
 *
 * Failures: every call is collective, and no rank may leave while another
 * waits in a transfer. Inside a pass a rank that fails keeps up (its ops are
 * skipped, its collectives still made: forward.c) and the call ends with
 * t->agree, so every rank returns the failure; the attention collectives
 * agree their own status, and a failure there ends the pass at once on
 * every rank (cp_shared). Checks of the arguments come before any
 * collective: they are the same on every rank (same arguments). */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "parallel/cp_shard.h"
#include "parallel/transport_api.h"

sf_status sf_engine_cp_end(sf_session *s, sf_status rc, sf_error *err) {
  if (!s->cp || s->cp_shared) return rc;
  sf_error mine = *err;
  const sf_status st = s->cp->agree(s->cp, rc, err);
  /* agree leaves err alone where this rank failed; elsewhere it names the
   * failed rank, which is what the caller reports. */
  if (rc != SF_OK) *err = mine;
  return st;
}

sf_status sf_engine_cp_after(sf_session *s, sf_status st, sf_status rc, int shared, sf_error *err,
                             const char *what) {
  if (rc == SF_OK) return st;
  if (shared) s->cp_shared = 1;
  if (st != SF_OK) return st;
  return sf_fail_context(err, "%s", what);
}

/* The rank of the group holding global position p of a sequence of L
 * tokens (p < L) in its prefill share. */
static int owner_of(const sf_session *s, int64_t L, int64_t p) {
  const int transformer = s->model->cfg.arch == SF_ARCH_TRANSFORMER;
  for (int r = 0; r < s->cp_k; r++) {
    sf_cp_span b[2];
    int n = 1;
    if (transformer) {
      sf_cp_zigzag(L, s->cp_k, r, b);
      n = 2;
    } else {
      b[0] = sf_cp_piece(L, s->cp_k, r);
    }
    for (int i = 0; i < n; i++)
      if (p >= b[i].start && p < b[i].start + b[i].len) return r;
  }
  return s->cp_k - 1; /* not reached for p < L */
}

/* This rank's tokens of the batch, packed (sequence b's rows from h_start[b],
 * h_seqlen[b] of them: block r then block 2k-1-r, or piece r), with their
 * global positions. Returns the rows, or -1 when they do not fit the
 * scratch (cannot happen: creation sized it for any share). */
static int64_t plan_shares(sf_session *s, const sf_batch_input *in, int64_t *max_local) {
  const int transformer = s->model->cfg.arch == SF_ARCH_TRANSFORMER;
  int64_t rows = 0, mx = 0;
  for (int32_t b = 0; b < s->batch; b++) {
    const int64_t L = in->lens[b];
    sf_cp_span span[2];
    int n = 1;
    if (transformer) {
      sf_cp_zigzag(L, s->cp_k, s->cp_rank, span);
      n = 2;
    } else {
      span[0] = sf_cp_piece(L, s->cp_k, s->cp_rank);
    }
    const int32_t *ids = in->ids + s->h_inoff[b];
    if (rows + span[0].len + (n > 1 ? span[1].len : 0) > s->max_rows) return -1;
    s->h_start[b] = rows;
    for (int i = 0; i < n; i++)
      for (int64_t j = 0; j < span[i].len; j++, rows++) {
        s->h_ids[rows] = ids[span[i].start + j];
        s->h_pos[rows] = (int32_t)(span[i].start + j);
      }
    s->h_seqlen[b] = (int32_t)(rows - s->h_start[b]);
    s->h_past[b] = 0;
    if (s->h_seqlen[b] > mx) mx = s->h_seqlen[b];
    s->cp_prompt[b] = L;
    s->cp_owner[b] = owner_of(s, L, L - 1);
  }
  *max_local = mx;
  return rows;
}

/* Mamba: the final states (on rank k-1, which ran the last piece of every
 * sequence) to every other rank, so decode runs replicated. */
static sf_status share_states(sf_session *s, sf_error *err) {
  const int64_t L = s->model->cfg.n_layers;
  const size_t conv = (size_t)(L * s->conv_layer_elems) * s->esz;
  const size_t ssm = (size_t)(L * s->ssm_layer_elems) * sizeof(float);
  sf_transport *t = s->cp;
  const int last = s->cp_k - 1;
  if (s->cp_rank != last) {
    if ((conv && t->recv(t, s->conv_state, conv, last, err) != SF_OK) ||
        t->recv(t, s->ssm_state, ssm, last, err) != SF_OK)
      return sf_fail_context(err, "context-parallel prefill: final states from rank %d", last);
    return SF_OK;
  }
  for (int r = 0; r < last; r++)
    if ((conv && t->send(t, s->conv_state, conv, r, err) != SF_OK) ||
        t->send(t, s->ssm_state, ssm, r, err) != SF_OK)
      return sf_fail_context(err, "context-parallel prefill: final states to rank %d", r);
  return SF_OK;
}

/* The last prompt token's hidden row of every sequence: the owner gathers
 * it into last_h, the group all-gathers last_h, and every rank picks the
 * owners' rows, so every rank's head computes the same logits. */
static sf_status share_last_rows(sf_session *s, sf_error *err) {
  const int32_t B = s->batch;
  const int64_t d = s->d_model;
  const sf_ops *o = s->ops;
  SF_TRY(s->cp->allgather(s->cp, s->last_h, s->cp_rows, (size_t)B * (size_t)d * s->rsz, err));
  for (int32_t b = 0; b < B; b++) s->h_gather[b] = s->cp_owner[b] * B + b;
  SF_TRY(o->upload(s->ctx, s->d_gather, s->h_gather, (size_t)B * sizeof(int32_t), err));
  sf_embedding_params g = {.dtype = s->rdt, .n_tokens = B, .d = d, .vocab = s->cp_k * B,
                           .ids = s->d_gather, .table = s->cp_rows, .table_row_stride = d,
                           .out = s->last_h, .out_row_stride = d};
  if (o->embedding(s->ctx, &g, err) != SF_OK) return sf_fail_context(err, "picking the last rows");
  return SF_OK;
}

/* This rank's own last rows (sequences whose last prompt token it holds). */
static sf_status gather_own_rows(sf_session *s, int64_t rows, sf_error *err) {
  const int64_t d = s->d_model;
  for (int32_t b = 0; b < s->batch; b++) {
    if (s->cp_owner[b] != s->cp_rank) continue;
    s->h_gather[b] = (int32_t)(s->h_start[b] + s->h_seqlen[b] - 1);
    SF_TRY(s->ops->upload(s->ctx, s->d_gather + b, s->h_gather + b, sizeof(int32_t), err));
    sf_embedding_params g = {.dtype = s->rdt, .n_tokens = 1, .d = d, .vocab = (int32_t)rows,
                             .ids = s->d_gather + b, .table = s->x, .table_row_stride = d,
                             .out = sf_elem(s->last_h, b * d, s->rsz), .out_row_stride = d};
    if (s->ops->embedding(s->ctx, &g, err) != SF_OK) return sf_fail_context(err, "gather last rows");
  }
  return SF_OK;
}

static sf_status upload_pass(sf_session *s, int64_t rows, sf_error *err) {
  const sf_ops *o = s->ops;
  const size_t B = (size_t)s->batch;
  if (rows > 0) {
    SF_TRY(o->upload(s->ctx, s->d_ids, s->h_ids, (size_t)rows * sizeof(int32_t), err));
    SF_TRY(o->upload(s->ctx, s->d_pos, s->h_pos, (size_t)rows * sizeof(int32_t), err));
  }
  SF_TRY(o->upload(s->ctx, s->d_start, s->h_start, B * sizeof(int64_t), err));
  SF_TRY(o->upload(s->ctx, s->d_seqlen, s->h_seqlen, B * sizeof(int32_t), err));
  return o->upload(s->ctx, s->d_past, s->h_past, B * sizeof(int32_t), err);
}

sf_status sf_engine_cp_prefill(sf_session *s, const sf_batch_input *in, float *last_logits,
                               float *all_logits, sf_error *err) {
  const int32_t B = s->batch;
  const int transformer = s->model->cfg.arch == SF_ARCH_TRANSFORMER;
  /* Argument checks: the same on every rank, before any collective. */
  if (all_logits)
    return sf_fail(err, SF_ERR_UNSUPPORTED,
                   "context-parallel prefill: no all_logits (each rank holds only its share of the tokens)");
  for (int32_t b = 0; b < B; b++)
    if (s->len[b] != 0)
      return sf_fail(err, SF_ERR_UNSUPPORTED,
                     "context-parallel prefill: the whole prompt goes in one call on a fresh (or reset) "
                     "session; sequence %d already holds %lld tokens",
                     (int)b, (long long)s->len[b]);
  int64_t max_new = 0;
  SF_TRY(sf_engine_check_input(s, in, &max_new, err));
  for (int32_t b = 0; b < B; b++) {
    if (in->lens[b] < 1)
      return sf_fail(err, SF_ERR_ARG, "context-parallel prefill: sequence %d has no tokens", (int)b);
  }
  int64_t max_local = 0;
  const int64_t rows = plan_shares(s, in, &max_local);
  if (rows < 0)
    return sf_fail(err, SF_ERR_INTERNAL, "context-parallel prefill: rank %d's share exceeds its %lld rows",
                   s->cp_rank, (long long)s->max_rows);

  s->cp_shared = 0;
  s->cp_st = upload_pass(s, rows, err);
  sf_pass pass = {.decode = 0, .rows = rows, .has_initial_state = 0,
                  .seqs = {.batch = B, .max_len = max_local, .start = s->d_start, .len = s->d_seqlen}};
  sf_status st = sf_forward_body(s, &pass, err);
  /* The ring buffers served every layer of this pass; decode does not need
   * them (at a million tokens they are gigabytes). */
  sf_cp_scratch_free(&s->cp_scratch[0]);
  if (s->cp_shared) return sf_fail_context(err, "context-parallel prefill");
  if (st == SF_OK) st = gather_own_rows(s, rows, err);
  st = sf_engine_cp_end(s, st, err);
  if (st != SF_OK) return sf_fail_context(err, "context-parallel prefill");

  /* Everyone is through the body: the last rows (and Mamba's states) to every rank. */
  st = share_last_rows(s, err);
  if (st == SF_OK && !transformer) st = share_states(s, err);
  for (int32_t b = 0; b < B; b++) {
    s->len[b] = in->lens[b];
    s->cp_kv[b] = transformer ? s->h_seqlen[b] : 0;
  }
  s->head_pending = 1;
  if (st == SF_OK && last_logits) {
    st = sf_forward_head(s, s->last_h, B, s->logits, err);
    if (st == SF_OK) s->head_pending = 0;
    const size_t V = (size_t)s->vocab;
    if (st == SF_OK)
      st = s->ops->download(s->ctx, last_logits, s->logits, (size_t)B * V * sizeof(float), err);
  }
  st = sf_engine_cp_end(s, st, err);
  if (st != SF_OK) return sf_fail_context(err, "context-parallel prefill");
  return SF_OK;
}

sf_status sf_engine_cp_decode(sf_session *s, const int32_t *ids, float *logits, sf_error *err) {
  const sf_ops *o = s->ops;
  const int32_t B = s->batch;
  const int transformer = s->model->cfg.arch == SF_ARCH_TRANSFORMER;
  if (!ids) return sf_fail(err, SF_ERR_ARG, "decode: ids are required");
  for (int32_t b = 0; b < B; b++) {
    if (s->len[b] + 1 > s->max_len)
      return sf_fail(err, SF_ERR_ARG, "decode: sequence %d is full (max_len %lld)", (int)b,
                     (long long)s->max_len);
    if (s->len[b] < 1)
      return sf_fail(err, SF_ERR_ARG, "decode: sequence %d has no prompt (context-parallel sessions prefill first)",
                     (int)b);
    if (ids[b] < 0 || ids[b] >= s->vocab)
      return sf_fail(err, SF_ERR_ARG, "decode: sequence %d has id %d outside [0, %d)", (int)b,
                     (int)ids[b], (int)s->vocab);
  }
  /* Position len[b] everywhere (rotary); its K/V stored by its owner, after
   * the owner's cache (cp_shard.h), and every rank attends over its own. */
  for (int32_t b = 0; b < B; b++) {
    const int own = transformer && sf_cp_decode_owner(s->len[b], s->cp_k) == s->cp_rank;
    s->h_pos[b] = (int32_t)s->len[b];
    s->h_past[b] = (int32_t)s->cp_kv[b];
    s->h_seqlen[b] = own;
    s->h_cache_len[b] = (int32_t)s->cp_kv[b] + own;
  }
  s->cp_shared = 0;
  sf_status st = o->upload(s->ctx, s->d_ids, ids, (size_t)B * sizeof(int32_t), err);
  if (st == SF_OK) st = o->upload(s->ctx, s->d_pos, s->h_pos, (size_t)B * sizeof(int32_t), err);
  if (st == SF_OK) st = o->upload(s->ctx, s->d_past, s->h_past, (size_t)B * sizeof(int32_t), err);
  if (st == SF_OK && transformer)
    st = o->upload(s->ctx, s->d_cp_dec_len, s->h_seqlen, (size_t)B * sizeof(int32_t), err);
  s->cp_st = st;
  sf_pass pass = {.decode = 1, .rows = B};
  st = sf_forward_body(s, &pass, err);
  if (s->cp_shared) return sf_fail_context(err, "decode");
  if (st == SF_OK) st = sf_forward_head(s, s->x, B, s->logits, err);
  if (st == SF_OK && logits)
    st = o->download(s->ctx, logits, s->logits, (size_t)B * (size_t)s->vocab * sizeof(float), err);
  st = sf_engine_cp_end(s, st, err);
  if (st != SF_OK) return sf_fail_context(err, "decode");
  s->head_pending = 0;
  for (int32_t b = 0; b < B; b++) {
    s->len[b]++;
    s->cp_kv[b] += s->h_seqlen[b];
  }
  return SF_OK;
}
