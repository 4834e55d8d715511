/* Decode: one token per sequence, row b = sequence b, through the update ops
 * (Mamba) or kv_append + attention_decode (Transformer); and the greedy choice
 * from the last logits. */
#include "engine/engine_internal.h"

/* The step's ops: every layer over one token per sequence, then the head. */
static sf_status step_ops(sf_session *s, sf_error *err) {
  sf_pass pass = {.decode = 1, .rows = s->batch};
  SF_TRY(sf_forward_body(s, &pass, err));
  return sf_forward_head(s, s->x, s->batch, s->logits, err);
}

/* Every input of a step lives at a fixed device address (ids, positions and
 * lengths are uploaded before it), so one capture serves every later step of
 * the session. The first step runs eagerly so the ops size their workspaces
 * outside the capture. */
static sf_status step(sf_session *s, sf_error *err) {
  const sf_ops *o = s->ops;
  if (!s->graphs || !o->graph_begin) return step_ops(s, err);
  if (s->decode_graph && s->ctx->workspace != s->graph_workspace) {
    /* An op grew (moved) the workspace since the capture: the graph's
     * kernels hold the old address. */
    o->graph_free(s->ctx, s->decode_graph);
    s->decode_graph = NULL;
    s->eager_steps = 0;
  }
  if (!s->decode_graph) {
    if (s->eager_steps++ == 0) return step_ops(s, err);
    SF_TRY(o->graph_begin(s->ctx, err));
    sf_status rc = step_ops(s, err);
    sf_error end_err;
    sf_error_clear(&end_err);
    /* Leave capture mode whatever happened; the ops' own error comes first. */
    sf_status rc_end = o->graph_end(s->ctx, &s->decode_graph, rc == SF_OK ? err : &end_err);
    if (rc != SF_OK) return rc;
    if (rc_end != SF_OK) return sf_fail_context(err, "capturing the decode step");
    s->graph_workspace = s->ctx->workspace;
  }
  return o->graph_launch(s->ctx, s->decode_graph, err);
}

sf_status sf_session_decode(sf_session *s, const int32_t *ids, float *logits, sf_error *err) {
  const sf_ops *o = s->ops;
  const int32_t B = s->batch;
  if (s->cp) return sf_engine_cp_decode(s, ids, logits, err);
  if (!ids) return sf_fail(err, SF_ERR_ARG, "decode: ids are required");
  for (int32_t b = 0; b < B; b++) {
    if (s->len[b] + 1 > s->max_len)
      return sf_fail(err, SF_ERR_ARG, "decode: sequence %d is full (max_len %lld)", (int)b,
                     (long long)s->max_len);
    if (ids[b] < 0 || ids[b] >= s->vocab)
      return sf_fail(err, SF_ERR_ARG, "decode: sequence %d has id %d outside [0, %d)", (int)b,
                     (int)ids[b], (int)s->vocab);
    s->h_past[b] = (int32_t)s->len[b];
    s->h_cache_len[b] = (int32_t)s->len[b] + 1;
  }
  SF_TRY(o->upload(s->ctx, s->d_ids, ids, (size_t)B * sizeof(int32_t), err));
  /* A token's absolute position is the number of tokens before it. */
  SF_TRY(o->upload(s->ctx, s->d_pos, s->h_past, (size_t)B * sizeof(int32_t), err));
  SF_TRY(o->upload(s->ctx, s->d_past, s->h_past, (size_t)B * sizeof(int32_t), err));
  SF_TRY(o->upload(s->ctx, s->d_cache_len, s->h_cache_len, (size_t)B * sizeof(int32_t), err));

  sf_status rc = step(s, err);
  if (rc != SF_OK) return sf_fail_context(err, "decode");
  s->head_pending = 0;
  for (int32_t b = 0; b < B; b++) s->len[b]++;
  if (logits)
    SF_TRY(o->download(s->ctx, logits, s->logits, (size_t)B * (size_t)s->vocab * sizeof(float), err));
  return SF_OK;
}

void sf_session_set_graphs(sf_session *s, int on) {
  s->graphs = on != 0 && !s->cp; /* context-parallel steps run eagerly (engine.h) */
  if (!s->graphs && s->decode_graph) {
    s->ops->graph_free(s->ctx, s->decode_graph);
    s->decode_graph = NULL;
  }
}

int sf_session_graphs_active(const sf_session *s) { return s->decode_graph != NULL; }
int sf_session_persistent_active(const sf_session *s) { return s->persistent_ran; }

sf_status sf_session_logits_ready(sf_session *s, sf_error *err) {
  if (!s->head_pending) return SF_OK;
  SF_TRY(sf_forward_head(s, s->last_h, s->batch, s->logits, err));
  s->head_pending = 0;
  return SF_OK;
}

static sf_status sample(sf_session *s, int32_t *out_ids, sf_error *err) {
  SF_TRY(sf_session_logits_ready(s, err));
  sf_sample_params p = {.batch = s->batch, .vocab = s->vocab, .logits = s->logits,
                        .logits_row_stride = s->vocab, .top_k = 1, .temperature = 0.0f,
                        .seed = 0, .step = 0, .out_ids = s->d_sampled};
  if (s->ops->sample(s->ctx, &p, err) != SF_OK) return sf_fail_context(err, "sample");
  return s->ops->download(s->ctx, out_ids, s->d_sampled, (size_t)s->batch * sizeof(int32_t), err);
}

/* Every rank of a context-parallel group holds the same logits, so each
 * samples on its own; the call still agrees its status. */
sf_status sf_session_sample(sf_session *s, int32_t *out_ids, sf_error *err) {
  s->cp_shared = 0;
  return sf_engine_cp_end(s, sample(s, out_ids, err), err);
}
