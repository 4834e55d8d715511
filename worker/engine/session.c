/* Session lifetime: sizing and allocating the inference state, the small
 * batch-description arrays and the activation scratch; reset and accessors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "parallel/transport_api.h"

sf_status sf_session_alloc(sf_session *s, size_t bytes, void **ptr, sf_error *err) {
  if (s->n_allocs >= SF_SESSION_MAX_ALLOCS)
    return sf_fail(err, SF_ERR_INTERNAL, "session: more than %d allocations", SF_SESSION_MAX_ALLOCS);
  SF_TRY(s->ops->alloc(s->ctx, bytes, ptr, err));
  s->allocs[s->n_allocs++] = *ptr;
  return SF_OK;
}

/* Per-family scratch widths and state sizes (see engine_internal.h). */
static void plan_family(sf_session *s) {
  const sf_model_config *c = &s->model->cfg;
  const int64_t b = s->batch, w1 = c->d_conv > 0 ? c->d_conv - 1 : 0;
  memset(s->buf_width, 0, sizeof s->buf_width);
  switch (c->arch) {
    case SF_ARCH_MAMBA1: {
      const int64_t di = c->d_inner;
      s->conv_dim = di;
      s->buf_width[0] = 2 * di;
      s->buf_width[1] = di;
      s->buf_width[2] = (int64_t)c->dt_rank + 2 * (int64_t)c->d_state;
      s->buf_width[3] = di;
      s->buf_width[4] = di;
      s->conv_layer_elems = b * di * w1;
      s->ssm_layer_elems = b * di * c->d_state;
      break;
    }
    case SF_ARCH_MAMBA2: {
      const int64_t di = c->d_inner, gn = (int64_t)c->n_groups * c->d_state;
      s->conv_dim = di + 2 * gn;
      s->buf_width[0] = 2 * di + 2 * gn + c->ssm_heads;
      s->buf_width[1] = s->conv_dim;
      s->buf_width[2] = di;
      s->conv_layer_elems = b * s->conv_dim * w1;
      s->ssm_layer_elems = b * (int64_t)c->ssm_heads * c->ssm_head_dim * c->d_state;
      break;
    }
    case SF_ARCH_TRANSFORMER: {
      const int64_t hd = c->head_dim;
      s->buf_width[0] = c->d_model;
      s->buf_width[1] = ((int64_t)c->n_heads + 2 * (int64_t)c->n_kv_heads) * hd;
      s->buf_width[2] = (int64_t)c->n_heads * hd;
      s->buf_width[3] = c->d_ff;
      s->kv_layer_elems = b * s->cache_cap * c->n_kv_heads * hd;
      break;
    }
  }
}

/* The arena: every buffer sized at creation is carved from one backend
 * allocation (one cudaMalloc per item on the GPU, none in timed regions),
 * zeroed once (scratch rows past a sequence's end are read by row-wise ops,
 * so they must hold finite values). */
enum { SF_ARENA_ALIGN = 256, SF_ARENA_MAX = 32 };

typedef struct arena_plan {
  void **field[SF_ARENA_MAX];
  size_t offset[SF_ARENA_MAX];
  int n;
  size_t bytes;
} arena_plan;

static void plan_buf(arena_plan *a, void *field, size_t bytes) {
  a->field[a->n] = (void **)field;
  a->offset[a->n++] = a->bytes;
  a->bytes += (bytes + SF_ARENA_ALIGN - 1) / SF_ARENA_ALIGN * SF_ARENA_ALIGN;
}

static sf_status allocate(sf_session *s, sf_error *err) {
  const sf_model_config *c = &s->model->cfg;
  const int64_t L = c->n_layers, b = s->batch, rows = s->max_rows;
  const size_t esz = s->esz, dm = (size_t)s->d_model;
  arena_plan a = {.n = 0};

  /* state */
  if (c->arch == SF_ARCH_TRANSFORMER) {
    const size_t kv = (size_t)(L * s->kv_layer_elems) * esz;
    plan_buf(&a, &s->k_cache, kv);
    plan_buf(&a, &s->v_cache, kv);
    s->state_bytes = (int64_t)(2 * kv);
  } else {
    const size_t conv = (size_t)(L * s->conv_layer_elems) * esz;
    const size_t ssm = (size_t)(L * s->ssm_layer_elems) * sizeof(float);
    plan_buf(&a, &s->conv_state, conv);
    plan_buf(&a, &s->ssm_state, ssm);
    s->state_bytes = (int64_t)(conv + ssm);
  }
  const size_t state_end = a.bytes;

  /* batch description */
  plan_buf(&a, &s->d_ids, (size_t)rows * sizeof(int32_t));
  plan_buf(&a, &s->d_pos, (size_t)rows * sizeof(int32_t));
  plan_buf(&a, &s->d_start, (size_t)b * sizeof(int64_t));
  plan_buf(&a, &s->d_seqlen, (size_t)b * sizeof(int32_t));
  plan_buf(&a, &s->d_past, (size_t)b * sizeof(int32_t));
  plan_buf(&a, &s->d_cache_len, (size_t)b * sizeof(int32_t));
  plan_buf(&a, &s->d_dec_start, (size_t)b * sizeof(int64_t));
  plan_buf(&a, &s->d_dec_len, (size_t)b * sizeof(int32_t));
  plan_buf(&a, &s->d_gather, (size_t)b * sizeof(int32_t));
  plan_buf(&a, &s->d_sampled, (size_t)b * sizeof(int32_t));
  if (s->cp) plan_buf(&a, &s->d_cp_dec_len, (size_t)b * sizeof(int32_t));

  /* scratch */
  plan_buf(&a, &s->x, (size_t)rows * dm * s->rsz);
  plan_buf(&a, &s->h, (size_t)rows * dm * esz);
  for (int i = 0; i < SF_NBUF; i++)
    if (s->buf_width[i]) plan_buf(&a, &s->buf[i], (size_t)(rows * s->buf_width[i]) * esz);
  plan_buf(&a, &s->last_h, (size_t)b * dm * s->rsz);
  plan_buf(&a, &s->logits, (size_t)b * (size_t)s->vocab * sizeof(float));
  if (s->cp) plan_buf(&a, &s->cp_rows, (size_t)s->cp_k * (size_t)b * dm * s->rsz);
  s->scratch_bytes = (int64_t)(a.bytes - state_end);

  void *arena;
  SF_TRY(sf_session_alloc(s, a.bytes, &arena, err));
  for (int i = 0; i < a.n; i++) *a.field[i] = (char *)arena + a.offset[i];
  SF_TRY(s->ops->zero(s->ctx, arena, a.bytes, err));

  /* decode: sequence b is token b, one long */
  for (int32_t i = 0; i < s->batch; i++) {
    s->h_start[i] = i;
    s->h_seqlen[i] = 1;
  }
  SF_TRY(s->ops->upload(s->ctx, s->d_dec_start, s->h_start, (size_t)b * sizeof(int64_t), err));
  SF_TRY(s->ops->upload(s->ctx, s->d_dec_len, s->h_seqlen, (size_t)b * sizeof(int32_t), err));
  return SF_OK;
}

/* chunk_tokens here is what the caller asked for; with a group t it is
 * ignored: a rank's share of max_len tokens per sequence (its most rows in
 * the one prefill pass) sizes the scratch, and its share of the positions
 * the KV cache (cp_shard.h's bounds: a zigzag share is at most
 * 2 ceil(L / 2k) tokens, a Mamba piece ceil(L / k), and a rank stores at
 * most ceil(P / k) + 2 of positions [0, P) with decode tokens). */
static sf_status create(const sf_model *model, int32_t batch, int64_t max_len, int64_t chunk_tokens,
                        sf_transport *t, sf_session **out, sf_error *err) {
  *out = NULL;
  if (!model || !model->ctx || !model->ctx->ops)
    return sf_fail(err, SF_ERR_ARG, "session: the model has no backend");
  if (batch < 1) return sf_fail(err, SF_ERR_ARG, "session: batch %d must be >= 1", (int)batch);
  if (max_len < 1)
    return sf_fail(err, SF_ERR_ARG, "session: max_len %lld must be >= 1", (long long)max_len);
  if (max_len > INT32_MAX)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "session: max_len %lld exceeds the int32 positions",
                   (long long)max_len);
  if (chunk_tokens < 0)
    return sf_fail(err, SF_ERR_ARG, "session: chunk_tokens %lld must be >= 0",
                   (long long)chunk_tokens);
  SF_TRY(sf_model_config_validate(&model->cfg, err));
  const sf_model_config *c = &model->cfg;
  if (c->arch == SF_ARCH_TRANSFORMER &&
      (c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads != 0 || c->rot_dim % 2 != 0))
    return sf_fail(err, SF_ERR_ARG, "session: bad attention shape (heads %d, kv heads %d, rot_dim %d)",
                   (int)c->n_heads, (int)c->n_kv_heads, (int)c->rot_dim);

  if (t && (t->size < 1 || t->rank < 0 || t->rank >= t->size))
    return sf_fail(err, SF_ERR_ARG, "session: bad context-parallel group (rank %d of %d)", t->rank, t->size);
  int64_t cache_cap = max_len;
  if (t) {
    const int64_t k = t->size;
    if (c->arch == SF_ARCH_TRANSFORMER) {
      chunk_tokens = 2 * ((max_len + 2 * k - 1) / (2 * k));
      cache_cap = (max_len + k - 1) / k + 2;
      if (cache_cap > max_len) cache_cap = max_len;
    } else {
      chunk_tokens = (max_len + k - 1) / k;
    }
  }
  if (chunk_tokens == 0 || chunk_tokens > max_len) chunk_tokens = max_len;
  if ((int64_t)batch * chunk_tokens > INT32_MAX)
    return sf_fail(err, SF_ERR_UNSUPPORTED,
                   "session: batch %d x chunk %lld tokens exceeds 2^31 rows: use a smaller --chunk",
                   (int)batch, (long long)chunk_tokens);

  int fused;
  SF_TRY(sf_engine_fusions(&fused, err));
  sf_session *s = calloc(1, sizeof *s);
  if (!s) return sf_fail(err, SF_ERR_NOMEM, "session: out of host memory");
  s->fused = fused;
  s->model = model;
  s->ctx = model->ctx;
  s->ops = model->ctx->ops;
  s->dt = s->ops->act_dtype;
  s->esz = sf_dtype_size(s->dt);
  s->rdt = SF_F32;
  s->rsz = sizeof(float);
  s->x_f32 = s->dt != SF_F32;
  s->graphs = t == NULL; /* context-parallel decode steps run eagerly (engine.h) */
  s->cp = t;
  for (int i = 0; i < 2; i++) sf_cp_scratch_init(&s->cp_scratch[i], model->ctx, 1);
  s->cp_rank = t ? t->rank : 0;
  s->cp_k = t ? t->size : 1;
  s->cache_cap = cache_cap;
  s->batch = batch;
  s->vocab = c->vocab_size;
  s->d_model = c->d_model;
  s->max_len = max_len;
  s->chunk_tokens = chunk_tokens;
  s->max_rows = (int64_t)batch * chunk_tokens;

  const size_t b = (size_t)batch, rows = (size_t)s->max_rows;
  s->len = calloc(b, sizeof *s->len);
  s->h_ids = calloc(rows, sizeof *s->h_ids);
  s->h_pos = calloc(rows, sizeof *s->h_pos);
  s->h_start = calloc(b, sizeof *s->h_start);
  s->h_seqlen = calloc(b, sizeof *s->h_seqlen);
  s->h_past = calloc(b, sizeof *s->h_past);
  s->h_gather = calloc(b, sizeof *s->h_gather);
  s->h_gather_b = calloc(b, sizeof *s->h_gather_b);
  s->h_cache_len = calloc(b, sizeof *s->h_cache_len);
  s->h_inoff = calloc(b, sizeof *s->h_inoff);
  s->cp_prompt = calloc(b, sizeof *s->cp_prompt);
  s->cp_kv = calloc(b, sizeof *s->cp_kv);
  s->cp_owner = calloc(b, sizeof *s->cp_owner);
  if (!s->cp_prompt || !s->cp_kv || !s->cp_owner || !s->h_cache_len || !s->h_inoff || !s->len || !s->h_ids || !s->h_pos || !s->h_start || !s->h_seqlen || !s->h_past ||
      !s->h_gather || !s->h_gather_b) {
    sf_session_free(s);
    return sf_fail(err, SF_ERR_NOMEM, "session: out of host memory");
  }
  plan_family(s);
  if (allocate(s, err) != SF_OK) {
    sf_session_free(s);
    if (t)
      return sf_fail_context(err, "session (batch %d, max_len %lld, rank %d of a context-parallel group of %d: "
                             "%lld tokens per sequence, %lld KV positions)",
                             (int)batch, (long long)max_len, t->rank, t->size, (long long)chunk_tokens,
                             (long long)cache_cap);
    return sf_fail_context(err, "session (batch %d, max_len %lld, chunk %lld)", (int)batch,
                           (long long)max_len, (long long)chunk_tokens);
  }
  *out = s;
  return SF_OK;
}

sf_status sf_session_create(const sf_model *model, int32_t batch, int64_t max_len,
                            int64_t chunk_tokens, sf_session **out, sf_error *err) {
  return create(model, batch, max_len, chunk_tokens, NULL, out, err);
}

sf_status sf_session_create_parallel(const sf_model *model, int32_t batch, int64_t max_len,
                                     sf_transport *t, sf_session **out, sf_error *err) {
  *out = NULL;
  if (!t) return sf_fail(err, SF_ERR_ARG, "session: a context-parallel session needs its group's transport");
  return create(model, batch, max_len, 0, t, out, err);
}

sf_transport *sf_session_transport(const sf_session *s) { return s->cp; }

void sf_session_free(sf_session *s) {
  if (!s) return;
  if (s->decode_graph) s->ops->graph_free(s->ctx, s->decode_graph);
  for (int i = 0; i < 2; i++) sf_cp_scratch_free(&s->cp_scratch[i]);
  for (int i = s->n_allocs - 1; i >= 0; i--) s->ops->free(s->ctx, s->allocs[i]);
  free(s->len);
  free(s->h_ids);
  free(s->h_pos);
  free(s->h_start);
  free(s->h_seqlen);
  free(s->h_past);
  free(s->h_gather);
  free(s->h_gather_b);
  free(s->h_cache_len);
  free(s->h_inoff);
  free(s->cp_prompt);
  free(s->cp_kv);
  free(s->cp_owner);
  free(s);
}

static sf_status reset(sf_session *s, sf_error *err) {
  const sf_model_config *c = &s->model->cfg;
  const int64_t L = c->n_layers;
  if (c->arch == SF_ARCH_TRANSFORMER) {
    /* Positions past a sequence's length are never read: zeroing is for tidiness
     * only, and cheap next to a prefill that fills them. */
    SF_TRY(s->ops->zero(s->ctx, s->k_cache, (size_t)(L * s->kv_layer_elems) * s->esz, err));
    SF_TRY(s->ops->zero(s->ctx, s->v_cache, (size_t)(L * s->kv_layer_elems) * s->esz, err));
  } else {
    SF_TRY(s->ops->zero(s->ctx, s->conv_state, (size_t)(L * s->conv_layer_elems) * s->esz, err));
    SF_TRY(s->ops->zero(s->ctx, s->ssm_state, (size_t)(L * s->ssm_layer_elems) * sizeof(float), err));
  }
  return SF_OK;
}

sf_status sf_session_reset(sf_session *s, sf_error *err) {
  const sf_status rc = reset(s, err);
  for (int32_t b = 0; b < s->batch; b++) s->len[b] = 0, s->cp_kv[b] = 0, s->cp_prompt[b] = 0;
  s->head_pending = 0;
  s->cp_shared = 0;
  return sf_engine_cp_end(s, rc, err); /* collective for a context-parallel session */
}

int32_t sf_session_batch(const sf_session *s) { return s->batch; }
int64_t sf_session_max_len(const sf_session *s) { return s->max_len; }
int64_t sf_session_chunk_tokens(const sf_session *s) { return s->chunk_tokens; }
int64_t sf_session_length(const sf_session *s, int32_t b) {
  return b >= 0 && b < s->batch ? s->len[b] : -1;
}
int64_t sf_session_state_bytes(const sf_session *s) { return s->state_bytes; }
int64_t sf_session_scratch_bytes(const sf_session *s) { return s->scratch_bytes; }
