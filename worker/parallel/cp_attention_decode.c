/* Context-parallel decode (cp_attention.h): attention_decode over this
 * rank's shard, an all-gather of the partial outputs and log-sum-exps, and
 * the same k-way merge (attention_merge, in rank order) on every rank.
 *
 * The k parts are in the activation dtype (what attention_decode writes and
 * the all-gather moves: half the bytes of f32 on cuda). With f32 (cpu) they
 * are merged straight into the output. With bf16/f16 over k > 2 ranks they
 * are merged into a small f32 accumulator ([batch][n_heads][head_dim]) and
 * copied into the output at the end (a merge into an lse of -inf), so the
 * output is rounded to 16 bits once instead of k-1 times (sf_cp_f32_acc). */
#include <stdlib.h>

#include "parallel/cp_attention.h"
#include "parallel/cp_scratch.h"

typedef struct partial {
  void *out;    /* [batch][n_heads][head_dim] */
  float *lse;   /* [batch][n_heads] */
} partial;

/* attention_decode over this rank's shard. A sequence of which the shard
 * holds nothing (a short prompt over many ranks) keeps lse -inf and drops
 * out of the merge; the op refuses empty caches, so the others then go one
 * by one. */
static sf_status local_attention(sf_cp_scratch *s, const sf_cp_decode_params *p, const partial *pt,
                                 sf_error *err) {
  sf_op_ctx *ctx = s->ctx;
  const int64_t hd = p->head_dim, row = (int64_t)p->n_heads * hd;
  int32_t empty = 0;
  for (int32_t b = 0; b < p->batch; b++) {
    if (p->cache_len[b] < 0)
      return sf_fail(err, SF_ERR_ARG, "context-parallel decode: sequence %d has cache_len %d", (int)b,
                     (int)p->cache_len[b]);
    empty += p->cache_len[b] == 0;
  }
  void *lens = NULL;
  SF_TRY(sf_cp_scratch_upload(s, p->cache_len, (size_t)p->batch * sizeof(int32_t), &lens, err));
  sf_attention_decode_params a = {
      .dtype = p->dtype, .batch = p->batch, .n_heads = p->n_heads, .n_kv_heads = p->n_kv_heads,
      .head_dim = p->head_dim, .scale = p->scale, .q = p->q, .q_batch_stride = p->q_batch_stride,
      .q_head_stride = p->q_head_stride, .cache = p->cache, .cache_len = lens,
      .num_splits = p->num_splits, .out = pt->out, .out_batch_stride = row, .out_head_stride = hd,
      .lse = pt->lse, .lse_batch_stride = p->n_heads};
  if (!empty) {
    if (ctx->ops->attention_decode(ctx, &a, err) != SF_OK)
      return sf_fail_context(err, "context-parallel decode: attention_decode");
    return SF_OK;
  }
  SF_TRY(sf_cp_fill_neg_inf(ctx, pt->lse, (size_t)p->batch * (size_t)p->n_heads, err));
  for (int32_t b = 0; b < p->batch; b++) {
    if (p->cache_len[b] == 0) continue;
    sf_attention_decode_params one = a;
    one.batch = 1;
    one.q = sf_cp_elem(p->q, b * p->q_batch_stride, p->dtype);
    one.cache.k = sf_cp_elem(p->cache.k, b * p->cache.batch_stride, p->dtype);
    one.cache.v = sf_cp_elem(p->cache.v, b * p->cache.batch_stride, p->dtype);
    one.cache_len = (const int32_t *)lens + b;
    one.out = sf_cp_elem(pt->out, b * row, p->dtype);
    one.lse = pt->lse + (int64_t)b * p->n_heads;
    if (ctx->ops->attention_decode(ctx, &one, err) != SF_OK)
      return sf_fail_context(err, "context-parallel decode: attention_decode of sequence %d", (int)b);
  }
  return SF_OK;
}

static sf_status run(sf_cp_scratch *s, sf_transport *t, const sf_cp_decode_params *p, sf_error *err) {
  sf_op_ctx *ctx = s->ctx;
  const size_t esz = sf_dtype_size(p->dtype), k = (size_t)t->size;
  const int64_t hd = p->head_dim, row = (int64_t)p->n_heads * hd;
  const size_t out_bytes = (size_t)p->batch * (size_t)row * esz;
  const size_t lse_n = (size_t)p->batch * (size_t)p->n_heads;
  /* The batch as one "sequence" of batch rows for the merge. */
  const int64_t h_start = 0;
  const int32_t h_len = p->batch;
  const int f32_acc = sf_cp_f32_acc(p->dtype, t->size);
  partial mine, all;
  void *d_start = NULL, *d_len = NULL, *acc = NULL;
  float *out_lse = NULL, *acc_lse = NULL; /* both start -inf: nothing merged yet */
  sf_status st = SF_OK;
  if (p->batch < 0 || p->n_heads <= 0 || p->head_dim <= 0 || !p->cache_len)
    st = sf_fail(err, SF_ERR_ARG,
                 "context-parallel decode: need batch >= 0, n_heads, head_dim > 0 and cache_len, "
                 "got %d, %d, %d, %s",
                 (int)p->batch, (int)p->n_heads, (int)p->head_dim, p->cache_len ? "set" : "NULL");
  if (st == SF_OK) st = sf_cp_scratch_alloc(s, out_bytes, &mine.out, err);
  if (st == SF_OK) st = sf_cp_scratch_alloc(s, lse_n * sizeof(float), (void **)&mine.lse, err);
  if (st == SF_OK) st = sf_cp_scratch_alloc(s, k * out_bytes, &all.out, err);
  if (st == SF_OK) st = sf_cp_scratch_alloc(s, k * lse_n * sizeof(float), (void **)&all.lse, err);
  if (st == SF_OK) st = sf_cp_scratch_neg_inf(s, lse_n, &out_lse, err);
  if (st == SF_OK && f32_acc) st = sf_cp_scratch_alloc(s, lse_n * (size_t)hd * sizeof(float), &acc, err);
  if (st == SF_OK && f32_acc) st = sf_cp_scratch_neg_inf(s, lse_n, &acc_lse, err);
  if (st == SF_OK) st = sf_cp_scratch_upload(s, &h_start, sizeof h_start, &d_start, err);
  if (st == SF_OK) st = sf_cp_scratch_upload(s, &h_len, sizeof h_len, &d_len, err);
  if (st == SF_OK) st = local_attention(s, p, &mine, err);
  /* Before the all-gathers, which every rank must reach. */
  SF_TRY(t->agree(t, st, err));

  if (t->allgather(t, mine.out, all.out, out_bytes, err) != SF_OK ||
      t->allgather(t, mine.lse, all.lse, lse_n * sizeof(float), err) != SF_OK)
    return sf_fail_context(err, "context-parallel decode");
  /* Rank order on every rank: the same sums in the same order, so every
   * rank's output is the same to the bit. The target: the output, or the
   * f32 accumulator (dense rows). */
  sf_attention_merge_params mp = {
      .dtype = p->dtype, .out_dtype = p->dtype, .n_heads = p->n_heads, .head_dim = p->head_dim,
      .seqs = {.batch = 1, .max_len = p->batch, .start = d_start, .len = d_len},
      .out = p->out, .out_token_stride = p->out_batch_stride, .out_head_stride = p->out_head_stride,
      .lse = out_lse, .lse_token_stride = p->n_heads, .part_token_stride = row, .part_head_stride = hd,
      .part_lse_token_stride = p->n_heads};
  if (f32_acc) {
    mp.out_dtype = SF_F32;
    mp.out = acc;
    mp.out_token_stride = row;
    mp.out_head_stride = hd;
    mp.lse = acc_lse;
  }
  for (size_t j = 0; j < k; j++) {
    mp.part = sf_cp_elem(all.out, (int64_t)j * p->batch * row, p->dtype);
    mp.part_lse = all.lse + j * lse_n;
    if (ctx->ops->attention_merge(ctx, &mp, err) != SF_OK) return sf_fail_context(err, "context-parallel decode");
  }
  if (f32_acc) {
    /* Into the output, whose lse is still -inf: a copy, rounded once. */
    sf_attention_merge_params cp = mp;
    cp.dtype = SF_F32;
    cp.out_dtype = p->dtype;
    cp.out = p->out;
    cp.out_token_stride = p->out_batch_stride;
    cp.out_head_stride = p->out_head_stride;
    cp.lse = out_lse;
    cp.part = acc;
    cp.part_lse = acc_lse;
    if (ctx->ops->attention_merge(ctx, &cp, err) != SF_OK) return sf_fail_context(err, "context-parallel decode");
  }
  return SF_OK;
}

sf_status sf_cp_attention_decode(sf_op_ctx *ctx, sf_transport *t, sf_cp_scratch *scratch,
                                 const sf_cp_decode_params *p, sf_error *err) {
  if (p->batch == 0) return SF_OK; /* the same on every rank */
  sf_cp_scratch local, *s = scratch;
  if (!s) sf_cp_scratch_init(&local, ctx, 0), s = &local;
  sf_cp_scratch_begin(s);
  const sf_status st = run(s, t, p, err);
  sf_cp_scratch_end(s);
  return st;
}
