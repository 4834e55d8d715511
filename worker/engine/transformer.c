/* One GPT-NeoX / Pythia layer (Hugging Face GPTNeoXLayer):
 *   a = LN1(x); qkv = a . Wqkv^T + b      one GEMM; GPT-NeoX layout
 *                                          [tokens, heads, 3, head_dim], read
 *                                          through strides (no copies)
 *   rotary (NeoX halves) on the first rot_dim dims of q and k, absolute positions
 *   kv_append, then attention over the cache (tiled op; decode: split-KV op),
 *   scale 1/sqrt(head_dim)
 *   parallel_residual:  x = x + dense(attn) + mlp(LN2(x))  (LN2 taken before
 *                       the attention add)
 *   else:               x = x + dense(attn); x = x + mlp(LN2(x))
 *   mlp(u) = fc_out(GELU_exact(fc_in(u)))
 * Both residual adds are folded into the dense and fc_out GEMMs (accumulate,
 * with their biases), GELU into fc_in's (sf_gemm_params has_act: one kernel
 * a layer fewer in decode). Likewise LN1 and LN2 of a parallel-residual
 * layer run as one norm call and the rotary of q and k as one rotary call
 * (SCANFLASH_UNFUSED=norm_pair,rotary_pair splits them).
 * Context parallel (cp_attention.h): prefill stores the rank's zigzag share
 * in its cache and runs ring attention over the group; decode stores the
 * token where it is owned (d_cp_dec_len) and attends over the shards, the
 * partial outputs merged by log-sum-exp on every rank. */
#include <math.h>

#include "engine/engine_internal.h"
#include "parallel/cp_attention.h"

/* Where q, k and v sit in a qkv row: offset of head 0 and stride between heads. */
typedef struct qkv_layout {
  int64_t q_off, k_off, v_off, q_hs, kv_hs;
} qkv_layout;

static qkv_layout layout_of(const sf_model_config *c) {
  const int64_t hd = c->head_dim;
  qkv_layout q;
  if (c->n_kv_heads == c->n_heads) {
    /* GPT-NeoX: the rows of head h are q_h, k_h, v_h. */
    q.q_off = 0; q.k_off = hd; q.v_off = 2 * hd; q.q_hs = 3 * hd; q.kv_hs = 3 * hd;
  } else {
    /* GQA (custom shapes): all q heads, then the k heads, then the v heads. */
    q.q_off = 0; q.k_off = (int64_t)c->n_heads * hd;
    q.v_off = ((int64_t)c->n_heads + c->n_kv_heads) * hd; q.q_hs = hd; q.kv_hs = hd;
  }
  return q;
}

static sf_status layer_norm(sf_session *s, int64_t rows, const sf_tensor *w, const sf_tensor *b,
                            void *out, const char *what, sf_error *err) {
  sf_norm_params n = sf_engine_norm_of_x(s, SF_NORM_LAYER, s->x, rows, w, b, out);
  if (s->ops->norm(s->ctx, &n, err) != SF_OK) return sf_fail_context(err, "%s", what);
  return SF_OK;
}

/* Parallel residual: LN1 (into s->h) and LN2 (into ln2) normalise the same
 * x, so one call takes the row statistics once and writes both (one kernel a
 * layer fewer in a decode step). */
static sf_status layer_norm_pair(sf_session *s, int64_t rows, const sf_transformer_layer *w, void *ln2,
                                 sf_error *err) {
  sf_norm_params n = sf_engine_norm_of_x(s, SF_NORM_LAYER, s->x, rows, w->ln1_w, w->ln1_b, s->h);
  n.weight2 = w->ln2_w->data;
  n.bias2 = w->ln2_b ? w->ln2_b->data : NULL;
  n.out2 = ln2;
  n.out2_row_stride = n.out_row_stride;
  if (s->ops->norm(s->ctx, &n, err) != SF_OK)
    return sf_fail_context(err, "input_layernorm and post_attention_layernorm");
  return SF_OK;
}

/* Attention of a context-parallel pass over the group (a collective that
 * agrees its own status: a failure ends the pass on every rank). */
static sf_status cp_attention(sf_session *s, const sf_pass *pass, const qkv_layout *L, sf_kv_cache_view cache,
                              const void *q, const void *k, const void *v, void *attn, float scale,
                              sf_status st, sf_error *err) {
  const sf_model_config *c = &s->model->cfg;
  const int64_t wqkv = s->buf_width[1], hd = c->head_dim, wattn = (int64_t)c->n_heads * hd;
  sf_error ce;
  sf_status rc;
  if (pass->decode) {
    sf_cp_decode_params a = {
        .dtype = s->dt, .batch = s->batch, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads,
        .head_dim = c->head_dim, .scale = scale, .q = q, .q_batch_stride = wqkv, .q_head_stride = L->q_hs,
        .cache = cache, .cache_len = s->h_cache_len, .num_splits = 0, .out = attn,
        .out_batch_stride = wattn, .out_head_stride = hd};
    rc = sf_cp_attention_decode(s->ctx, s->cp, &s->cp_scratch[1], &a, st == SF_OK ? err : &ce);
  } else {
    sf_cp_prefill_params a = {
        .dtype = s->dt, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
        .scale = scale, .batch = s->batch, .seq_len = s->cp_prompt, .local_start = s->h_start,
        .q = q, .q_token_stride = wqkv, .q_head_stride = L->q_hs,
        .k = k, .k_token_stride = wqkv, .k_head_stride = L->kv_hs,
        .v = v, .v_token_stride = wqkv, .v_head_stride = L->kv_hs,
        .out = attn, .out_token_stride = wattn, .out_head_stride = hd};
    rc = sf_cp_attention_prefill(s->ctx, s->cp, &s->cp_scratch[0], &a, st == SF_OK ? err : &ce);
  }
  return sf_engine_cp_after(s, st, rc, 1, err, "context-parallel attention");
}

sf_status sf_transformer_layer_forward(sf_session *s, const sf_pass *pass, int32_t layer,
                                       sf_error *err) {
  const sf_model_config *c = &s->model->cfg;
  const sf_transformer_layer *w = &s->model->transformer[layer];
  const int64_t rows = pass->rows, d = c->d_model, hd = c->head_dim;
  const int64_t wqkv = s->buf_width[1], wattn = (int64_t)c->n_heads * hd;
  const size_t esz = s->esz;
  void *ln2 = s->buf[0], *qkv = s->buf[1], *attn = s->buf[2], *ff = s->buf[3];
  const qkv_layout L = layout_of(c);
  sf_status st = s->cp_st;

  if (c->parallel_residual && SF_FUSED(s, SF_FUSE_NORM_PAIR)) {
    SF_LAYER_STEP(st, layer_norm_pair(s, rows, w, ln2, err));
  } else {
    SF_LAYER_STEP(st, layer_norm(s, rows, w->ln1_w, w->ln1_b, s->h, "input_layernorm", err));
    if (c->parallel_residual)
      SF_LAYER_STEP(st, layer_norm(s, rows, w->ln2_w, w->ln2_b, ln2, "post_attention_layernorm", err));
  }
  SF_LAYER_STEP(st, sf_engine_gemm(s, rows, wqkv, d, s->h, d, w->qkv_w, w->qkv_b, qkv, wqkv, 0,
                                   "query_key_value", err));

  void *q = sf_elem(qkv, L.q_off, esz), *k = sf_elem(qkv, L.k_off, esz);
  void *v = sf_elem(qkv, L.v_off, esz);
  if (c->rot_dim > 0) {
    sf_rotary_params r = {.dtype = s->dt, .n_tokens = rows, .n_heads = c->n_heads,
                          .head_dim = c->head_dim, .rot_dim = c->rot_dim, .base = c->rotary_base,
                          .x = q, .x_token_stride = wqkv, .x_head_stride = L.q_hs,
                          .positions = s->d_pos};
    if (SF_FUSED(s, SF_FUSE_ROTARY_PAIR)) {
      /* q and k in one call: one kernel a layer fewer in a decode step. */
      r.x2 = k;
      r.n_heads2 = c->n_kv_heads;
      r.x2_head_stride = L.kv_hs;
      SF_LAYER_OP(st, s->ops->rotary(s->ctx, &r, err), "rotary (q and k)");
    } else {
      SF_LAYER_OP(st, s->ops->rotary(s->ctx, &r, err), "rotary (q)");
      r.n_heads = c->n_kv_heads;
      r.x = k;
      r.x_head_stride = L.kv_hs;
      SF_LAYER_OP(st, s->ops->rotary(s->ctx, &r, err), "rotary (k)");
    }
  }

  const int64_t pos_stride = (int64_t)c->n_kv_heads * hd;
  sf_kv_cache_view cache = {
      .k = sf_elem(s->k_cache, layer * s->kv_layer_elems, esz),
      .v = sf_elem(s->v_cache, layer * s->kv_layer_elems, esz),
      .batch_stride = s->cache_cap * pos_stride, .pos_stride = pos_stride, .head_stride = hd,
      .max_len = s->cache_cap};
  /* Decode tokens are sequences of one (of none where another rank of a
   * context-parallel group stores the token). */
  sf_seqs dec_seqs = {.batch = s->batch, .max_len = 1, .start = s->d_dec_start,
                      .len = s->cp ? s->d_cp_dec_len : s->d_dec_len};
  sf_kv_append_params ap = {
      .dtype = s->dt, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
      .seqs = pass->decode ? dec_seqs : pass->seqs, .past_len = s->d_past,
      .k = k, .k_token_stride = wqkv, .k_head_stride = L.kv_hs,
      .v = v, .v_token_stride = wqkv, .v_head_stride = L.kv_hs, .cache = cache};
  SF_LAYER_OP(st, s->ops->kv_append(s->ctx, &ap, err), "kv_append");

  const float scale = (float)(1.0 / sqrt((double)hd));
  if (s->cp) {
    st = cp_attention(s, pass, &L, cache, q, k, v, attn, scale, st, err);
    if (s->cp_shared) return st;
  } else if (pass->decode) {
    sf_attention_decode_params a = {
        .dtype = s->dt, .batch = s->batch, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads,
        .head_dim = c->head_dim, .scale = scale, .q = q, .q_batch_stride = wqkv,
        .q_head_stride = L.q_hs, .cache = cache, .cache_len = s->d_cache_len, .num_splits = 0,
        .out = attn, .out_batch_stride = wattn, .out_head_stride = hd};
    SF_LAYER_OP(st, s->ops->attention_decode(s->ctx, &a, err), "attention_decode");
  } else {
    sf_attention_params a = {
        .dtype = s->dt, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads,
        .head_dim = c->head_dim, .scale = scale, .causal = 1, .seqs = pass->seqs,
        .past_len = s->d_past, .q = q, .q_token_stride = wqkv, .q_head_stride = L.q_hs,
        .cache = cache, .out = attn, .out_token_stride = wattn, .out_head_stride = hd};
    SF_LAYER_OP(st, s->ops->attention(s->ctx, &a, err), "attention");
  }
  SF_LAYER_STEP(st, sf_engine_gemm(s, rows, d, wattn, attn, wattn, w->dense_w, w->dense_b, s->x, d, 1,
                                   "dense", err));

  if (!c->parallel_residual)
    SF_LAYER_STEP(st, layer_norm(s, rows, w->ln2_w, w->ln2_b, ln2, "post_attention_layernorm", err));
  sf_gemm_params fc_in = {.dtype = s->dt, .out_dtype = s->dt, .m = rows, .n = c->d_ff, .k = d, .a = ln2, .lda = d,
                          .w = w->fc_in_w->data, .ldw = d, .bias = w->fc_in_b ? w->fc_in_b->data : NULL, .c = ff,
                          .ldc = c->d_ff, .has_act = 1, .act = SF_ACT_GELU};
  SF_LAYER_OP(st, s->ops->gemm(s->ctx, &fc_in, err), "dense_h_to_4h and gelu");
  SF_LAYER_STEP(st, sf_engine_gemm(s, rows, d, c->d_ff, ff, c->d_ff, w->fc_out_w, w->fc_out_b, s->x, d, 1,
                                   "dense_4h_to_h", err));
  return st;
}
