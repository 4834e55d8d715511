/* Ring attention prefill over zigzag shards (the algorithm is described in
 * cp_attention.h). Everything the ops read lives in backend memory: the
 * rows of this rank's two blocks (sf_seqs), past_len per call, two ring
 * buffers of [K | V] shards, a partial output and two log-sum-exp arrays,
 * and with 16-bit activations over k > 2 ranks an f32 accumulator.
 *
 * Where the merges go: step 0 (the diagonal) writes the output itself; with
 * f32 activations (the cpu backend) every later step's partial attention is
 * merged straight into it. With bf16/f16 (cuda) each such merge would round
 * the output to 16 bits again, k-1 times over the ring; instead steps
 * 1..k-1 are merged into an f32 accumulator (attention_merge with
 * out_dtype f32 over 16-bit parts), and one last merge folds it into the
 * output: one rounding, whatever k (sf_cp_f32_acc says when). */
#include <stdint.h>
#include <stdlib.h>

#include "parallel/cp_attention.h"
#include "parallel/cp_scratch.h"
#include "parallel/cp_shard.h"

/* This rank's rows: all of a sequence's, its block a (block r: the first
 * len_a rows) and its block b (block 2k-1-r: the rest), as sf_seqs in
 * backend memory, plus a past_len array filled per call. */
typedef struct rows {
  sf_seqs all, a, b;
  int32_t *past;      /* backend, [batch] */
  int32_t *h_past;    /* host staging for it */
  int64_t *h_lens;    /* host: [batch] len_a, then [batch] len_b */
  int64_t n_rows;     /* rows spanned by the local tensors */
  int64_t cap;        /* ring buffer positions per sequence */
} rows;

static int64_t max_of(const int32_t *v, int32_t n) {
  int64_t m = 0;
  for (int32_t i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
  return m;
}

static sf_status make_rows(sf_cp_scratch *s, const sf_cp_prefill_params *p, const sf_transport *t,
                           rows *w, void **host, sf_error *err) {
  const int32_t B = p->batch;
  const int k = t->size;
  /* Host, int64: start_all, start_b, h_lens; int32: len_all, len_a, len_b, h_past. */
  char *h = malloc((size_t)B * (4 * sizeof(int64_t) + 4 * sizeof(int32_t)) + 1);
  *host = h;
  if (!h) return sf_fail(err, SF_ERR_NOMEM, "context-parallel prefill: cannot allocate %d rows", (int)B);
  int64_t *start_all = (int64_t *)h, *start_b = start_all + B;
  w->h_lens = start_b + B;
  int32_t *len_all = (int32_t *)(w->h_lens + 2 * B), *len_a = len_all + B, *len_b = len_a + B;
  w->h_past = len_b + B;
  w->n_rows = 0;
  w->cap = 0;
  for (int32_t b = 0; b < B; b++) {
    if (p->seq_len[b] < 0 || p->local_start[b] < 0 || p->seq_len[b] > INT32_MAX)
      return sf_fail(err, SF_ERR_ARG, "context-parallel prefill: sequence %d has length %lld, local start %lld",
                     (int)b, (long long)p->seq_len[b], (long long)p->local_start[b]);
    sf_cp_span blk[2];
    sf_cp_zigzag(p->seq_len[b], k, t->rank, blk);
    start_all[b] = p->local_start[b];
    start_b[b] = p->local_start[b] + blk[0].len;
    len_a[b] = (int32_t)blk[0].len;
    len_b[b] = (int32_t)blk[1].len;
    len_all[b] = len_a[b] + len_b[b];
    w->h_lens[b] = len_a[b];
    w->h_lens[B + b] = len_b[b];
    const int64_t end = start_all[b] + len_all[b];
    w->n_rows = end > w->n_rows ? end : w->n_rows;
    /* Any rank's shard: at most two blocks of the larger size. */
    const int64_t blk_max = (p->seq_len[b] + 2 * k - 1) / (2 * k);
    w->cap = 2 * blk_max > w->cap ? 2 * blk_max : w->cap;
  }
  void *d64 = NULL, *d32 = NULL, *dp = NULL;
  SF_TRY(sf_cp_scratch_upload(s, start_all, 2 * (size_t)B * sizeof(int64_t), &d64, err));
  SF_TRY(sf_cp_scratch_upload(s, len_all, 3 * (size_t)B * sizeof(int32_t), &d32, err));
  SF_TRY(sf_cp_scratch_alloc(s, (size_t)B * sizeof(int32_t), &dp, err));
  const int64_t *ds = d64;
  const int32_t *dl = d32;
  w->all = (sf_seqs){.batch = B, .max_len = max_of(len_all, B), .start = ds, .len = dl};
  w->a = (sf_seqs){.batch = B, .max_len = max_of(len_a, B), .start = ds, .len = dl + B};
  w->b = (sf_seqs){.batch = B, .max_len = max_of(len_b, B), .start = ds + B, .len = dl + 2 * B};
  w->past = dp;
  return SF_OK;
}

/* past_len[b] = keys[b] - queries[b]: with causal off, the queries of
 * sequence b then see exactly the first keys[b] positions of the shard. */
static sf_status set_past(sf_op_ctx *ctx, const sf_cp_prefill_params *p, const rows *w,
                          const sf_cp_span *src, int both_blocks, const int64_t *queries,
                          sf_error *err) {
  for (int32_t b = 0; b < p->batch; b++) {
    const int64_t keys = src[2 * b].len + (both_blocks ? src[2 * b + 1].len : 0);
    w->h_past[b] = (int32_t)(keys - queries[b]);
  }
  return ctx->ops->upload(ctx, w->past, w->h_past, (size_t)p->batch * sizeof(int32_t), err);
}

static sf_kv_cache_view ring_view(const sf_cp_prefill_params *p, const rows *w, void *buf) {
  const int64_t ps = (int64_t)p->n_kv_heads * p->head_dim;
  sf_kv_cache_view c = {.k = buf, .v = sf_cp_elem(buf, p->batch * w->cap * ps, p->dtype),
                        .batch_stride = w->cap * ps, .pos_stride = ps, .head_stride = p->head_dim,
                        .max_len = w->cap};
  return c;
}

static sf_status attend(sf_op_ctx *ctx, const sf_cp_prefill_params *p, sf_kv_cache_view cache,
                        sf_seqs q, const int32_t *past, int causal, void *out, int64_t ots, int64_t ohs,
                        float *lse, sf_error *err) {
  sf_attention_params a = {
      .dtype = p->dtype, .n_heads = p->n_heads, .n_kv_heads = p->n_kv_heads,
      .head_dim = p->head_dim, .scale = p->scale, .causal = causal, .seqs = q, .past_len = past,
      .q = p->q, .q_token_stride = p->q_token_stride, .q_head_stride = p->q_head_stride,
      .cache = cache, .out = out, .out_token_stride = ots, .out_head_stride = ohs,
      .lse = lse, .lse_token_stride = p->n_heads};
  if (ctx->ops->attention(ctx, &a, err) != SF_OK)
    return sf_fail_context(err, "context-parallel prefill: attention");
  return SF_OK;
}

typedef struct bufs {
  void *ring[2];      /* [K | V] shards: the one attended to, the one arriving */
  void *part;         /* partial output, [rows][n_heads][head_dim] */
  float *lse, *part_lse;
  void *acc;          /* f32 [rows][n_heads][head_dim], or NULL: merge into out */
  float *acc_lse;     /* its lse, -inf until a step reaches the row */
  size_t ring_bytes;
} bufs;

/* acc (+)= part over the rows of seqs; lses [row][n_heads]. */
static sf_status merge(sf_op_ctx *ctx, const sf_cp_prefill_params *p, sf_seqs seqs, sf_dtype out_dtype, void *out,
                       int64_t ots, int64_t ohs, float *lse, sf_dtype part_dtype, const void *part,
                       const float *part_lse, sf_error *err) {
  const int64_t hd = p->head_dim, pts = (int64_t)p->n_heads * hd;
  sf_attention_merge_params mp = {
      .dtype = part_dtype, .out_dtype = out_dtype, .n_heads = p->n_heads, .head_dim = p->head_dim,
      .seqs = seqs, .out = out, .out_token_stride = ots, .out_head_stride = ohs, .lse = lse,
      .lse_token_stride = p->n_heads, .part = part, .part_token_stride = pts, .part_head_stride = hd,
      .part_lse = part_lse, .part_lse_token_stride = p->n_heads};
  if (ctx->ops->attention_merge(ctx, &mp, err) != SF_OK)
    return sf_fail_context(err, "context-parallel prefill");
  return SF_OK;
}

/* Step s >= 1: the shard of rank src (blocks src[2b], src[2b+1]) against
 * this rank's queries, merged into out (or the f32 accumulator). */
static sf_status ring_step(sf_op_ctx *ctx, const sf_cp_prefill_params *p, const rows *w, const bufs *m,
                           void *shard, int src_rank, int rank, const sf_cp_span *src, sf_error *err) {
  const int64_t B = p->batch, hd = p->head_dim, pts = (int64_t)p->n_heads * hd;
  const sf_kv_cache_view cache = ring_view(p, w, shard);
  const int64_t *len_a = w->h_lens, *len_b = w->h_lens + B;
  sf_seqs merged;
  if (src_rank < rank) {
    /* Its early block src < r is before both of ours. */
    SF_TRY(set_past(ctx, p, w, src, 0, len_a, err));
    SF_TRY(attend(ctx, p, cache, w->a, w->past, 0, m->part, pts, hd, m->part_lse, err));
    SF_TRY(set_past(ctx, p, w, src, 0, len_b, err));
    SF_TRY(attend(ctx, p, cache, w->b, w->past, 0, m->part, pts, hd, m->part_lse, err));
    merged = w->all;
  } else {
    /* Both its blocks (src < k <= 2k-1-src < 2k-1-r) are before our late
     * block and after our early one. */
    SF_TRY(set_past(ctx, p, w, src, 1, len_b, err));
    SF_TRY(attend(ctx, p, cache, w->b, w->past, 0, m->part, pts, hd, m->part_lse, err));
    merged = w->b;
  }
  if (m->acc)
    return merge(ctx, p, merged, SF_F32, m->acc, pts, hd, m->acc_lse, p->dtype, m->part, m->part_lse, err);
  return merge(ctx, p, merged, p->dtype, p->out, p->out_token_stride, p->out_head_stride, m->lse, p->dtype,
               m->part, m->part_lse, err);
}

static sf_status alloc_bufs(sf_cp_scratch *s, const sf_transport *t, const sf_cp_prefill_params *p,
                            const rows *w, bufs *m, sf_error *err) {
  const size_t esz = sf_dtype_size(p->dtype), hd = (size_t)p->head_dim;
  const size_t lse_bytes = (size_t)w->n_rows * (size_t)p->n_heads * sizeof(float);
  const size_t part_bytes = (size_t)w->n_rows * (size_t)p->n_heads * hd * esz;
  void *lse = NULL, *part_lse = NULL;
  m->ring_bytes = 2 * (size_t)p->batch * (size_t)w->cap * (size_t)p->n_kv_heads * hd * esz;
  SF_TRY(sf_cp_scratch_alloc(s, m->ring_bytes, &m->ring[0], err));
  if (t->size > 1) {
    SF_TRY(sf_cp_scratch_alloc(s, m->ring_bytes, &m->ring[1], err));
    SF_TRY(sf_cp_scratch_alloc(s, part_bytes, &m->part, err));
    SF_TRY(sf_cp_scratch_alloc(s, lse_bytes, &part_lse, err));
  }
  if (sf_cp_f32_acc(p->dtype, t->size)) {
    SF_TRY(sf_cp_scratch_alloc(s, (size_t)w->n_rows * (size_t)p->n_heads * hd * sizeof(float), &m->acc, err));
    SF_TRY(sf_cp_scratch_neg_inf(s, (size_t)w->n_rows * (size_t)p->n_heads, &m->acc_lse, err));
  }
  SF_TRY(sf_cp_scratch_alloc(s, lse_bytes, &lse, err));
  m->lse = lse;
  m->part_lse = part_lse;
  return SF_OK;
}

/* The ring. A rank whose computing fails keeps passing the shards (the
 * schedule does not depend on the data) and returns its first error; only
 * a failed transfer stops it at once. */
static sf_status ring(sf_op_ctx *ctx, sf_transport *t, const sf_cp_prefill_params *p, const rows *w,
                      const bufs *m, sf_cp_span *src, sf_error *err) {
  const int k = t->size, r = t->rank;
  /* Our own shard into the ring layout: kv_append is the strided copy. */
  sf_kv_cache_view own = ring_view(p, w, m->ring[0]);
  sf_kv_append_params ap = {
      .dtype = p->dtype, .n_kv_heads = p->n_kv_heads, .head_dim = p->head_dim, .seqs = w->all,
      .k = p->k, .k_token_stride = p->k_token_stride, .k_head_stride = p->k_head_stride,
      .v = p->v, .v_token_stride = p->v_token_stride, .v_head_stride = p->v_head_stride,
      .cache = own};
  sf_status st = ctx->ops->kv_append(ctx, &ap, err);
  if (st != SF_OK) sf_fail_context(err, "context-parallel prefill: packing the local K/V");

  /* Step 0, the diagonal: one causal call over both our blocks against our
   * shard laid out the same way (block a keys, then block b keys) gives
   * block a causal in itself and block b all of a plus causal in itself. */
  if (st == SF_OK)
    st = attend(ctx, p, own, w->all, NULL, 1, p->out, p->out_token_stride, p->out_head_stride, m->lse, err);

  int cur = 0;
  for (int step = 1; step < k; step++) {
    /* Pass what we hold to r + 1, take r - 1's: it held rank (r - step)'s. */
    sf_error terr;
    if (t->sendrecv(t, m->ring[cur], sf_transport_peer(t, 1), m->ring[1 - cur], sf_transport_peer(t, -1),
                    m->ring_bytes, &terr) != SF_OK) {
      *err = terr;
      return sf_fail_context(err, "context-parallel prefill: ring step %d", step);
    }
    cur = 1 - cur;
    const int src_rank = sf_transport_peer(t, -step);
    for (int32_t b = 0; b < p->batch; b++) sf_cp_zigzag(p->seq_len[b], k, src_rank, src + 2 * b);
    if (st == SF_OK) st = ring_step(ctx, p, w, m, m->ring[cur], src_rank, r, src, err);
  }
  /* The accumulated steps 1..k-1 into step 0's output: its one rounding. */
  if (st == SF_OK && m->acc)
    st = merge(ctx, p, w->all, p->dtype, p->out, p->out_token_stride, p->out_head_stride, m->lse, SF_F32, m->acc,
               m->acc_lse, err);
  return st;
}

sf_status sf_cp_attention_prefill(sf_op_ctx *ctx, sf_transport *t, sf_cp_scratch *scratch,
                                  const sf_cp_prefill_params *p, sf_error *err) {
  if (p->batch == 0) return SF_OK; /* batch and seq_len are the same on every rank */
  sf_cp_scratch local, *s = scratch;
  if (!s) sf_cp_scratch_init(&local, ctx, 0), s = &local;
  sf_cp_scratch_begin(s);
  rows w = {0};
  bufs m = {{NULL, NULL}, NULL, NULL, NULL, NULL, NULL, 0};
  void *host = NULL;
  sf_cp_span *src = NULL;
  sf_status st = SF_OK;
  if (p->batch < 0 || p->n_heads <= 0 || p->n_kv_heads <= 0 || p->head_dim <= 0)
    st = sf_fail(err, SF_ERR_ARG,
                 "context-parallel prefill: need batch >= 0 and n_heads, n_kv_heads, head_dim > 0, "
                 "got %d, %d, %d, %d",
                 (int)p->batch, (int)p->n_heads, (int)p->n_kv_heads, (int)p->head_dim);
  else if (!p->seq_len || !p->local_start)
    st = sf_fail(err, SF_ERR_ARG, "context-parallel prefill: seq_len and local_start are required");
  else if (!(src = malloc(2 * (size_t)p->batch * sizeof *src)))
    st = sf_fail(err, SF_ERR_NOMEM, "context-parallel prefill: out of host memory");
  if (st == SF_OK) st = make_rows(s, p, t, &w, &host, err);
  if (st == SF_OK) st = alloc_bufs(s, t, p, &w, &m, err);
  /* Nobody enters the ring unless everybody can; nobody leaves it thinking
   * all went well when a peer's part failed. */
  st = t->agree(t, st, err);
  if (st == SF_OK) {
    st = ring(ctx, t, p, &w, &m, src, err);
    if (st == SF_OK) st = ctx->ops->sync(ctx, err); /* errors the device found */
    st = t->agree(t, st, err);
  }
  sf_cp_scratch_end(s);
  free(host);
  free(src);
  return st;
}
