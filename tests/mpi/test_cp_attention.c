/* Context-parallel attention on the cpu backend over MPI (run under mpirun
 * with k ranks): on random inputs, every rank's rows of the ring-attention
 * prefill over zigzag shards equal the attention op over the whole
 * sequence, and context-parallel decode steps (new K/V stored by
 * sf_cp_decode_owner) equal attention_decode over the whole cache, on every
 * rank and bitwise the same on all of them. Shapes: batch 1 to 3, lengths
 * not divisible by 2k, lengths below k (empty shards), GQA. Local tensors
 * are strided views of a fused [q | k | v] row with a gap row between
 * sequences, and start as NaN so an unwritten row fails. The sharding rules
 * are checked for every k up to 8 as well: zigzag blocks, Mamba pieces and
 * shard lengths with decode tokens cover each position once. A failure on one
 * rank (a bad argument before the ring, a failing op inside it, a failing
 * decode) is an error on every rank, and nobody hangs. */
#include "cp_test_util.h"
#include "parallel/cp_attention.h"
#include "parallel/cp_shard.h"

enum { MAX_BATCH = 4, GEN = 3 };

typedef struct shape {
  const char *name;
  int32_t batch;
  int64_t len[MAX_BATCH];
  int32_t H, KV, D;
} shape;

static const shape shapes[] = {
    {"batch 1, L 64, MHA", 1, {64}, 4, 4, 16},
    {"batch 2, L 37+50, GQA 4/2", 2, {37, 50}, 4, 2, 8},
    {"batch 2, L 5+3 (shorter than 2k), GQA 2/1", 2, {5, 3}, 2, 1, 8},
    {"batch 3, L 129+1+70, GQA 6/3", 3, {129, 1, 70}, 6, 3, 32},
};

/* The whole batch, the same on every rank: packed token-major q, k, v, the
 * decode steps' q and new K/V, and the full KV cache the references use. */
typedef struct global {
  int64_t T, Lmax, start[MAX_BATCH];
  int32_t len32[MAX_BATCH];
  float *q, *k, *v;        /* [T][heads][D] */
  float *qd, *kd, *vd;     /* [GEN][batch][heads][D] */
  float *ck, *cv;          /* [batch][Lmax][KV][D] */
} global;

static sf_kv_cache_view full_cache(const shape *s, const global *g) {
  const int64_t ps = (int64_t)s->KV * s->D;
  sf_kv_cache_view c = {.k = g->ck, .v = g->cv, .batch_stride = g->Lmax * ps, .pos_stride = ps,
                        .head_stride = s->D, .max_len = g->Lmax};
  return c;
}

static void make_global(cp_env *e, const shape *s, global *g) {
  g->T = 0;
  g->Lmax = 0;
  for (int32_t b = 0; b < s->batch; b++) {
    g->start[b] = g->T;
    g->len32[b] = (int32_t)s->len[b];
    g->T += s->len[b];
    if (s->len[b] + GEN > g->Lmax) g->Lmax = s->len[b] + GEN;
  }
  const int64_t qh = (int64_t)s->H * s->D, kvh = (int64_t)s->KV * s->D;
  g->q = FALLOC(g->T * qh), g->k = FALLOC(g->T * kvh), g->v = FALLOC(g->T * kvh);
  g->qd = FALLOC(GEN * s->batch * qh), g->kd = FALLOC(GEN * s->batch * kvh), g->vd = FALLOC(GEN * s->batch * kvh);
  fill_normal(e, g->q, g->T * qh, 1.0f);
  fill_normal(e, g->k, g->T * kvh, 1.0f);
  fill_normal(e, g->v, g->T * kvh, 1.0f);
  fill_normal(e, g->qd, GEN * s->batch * qh, 1.0f);
  fill_normal(e, g->kd, GEN * s->batch * kvh, 1.0f);
  fill_normal(e, g->vd, GEN * s->batch * kvh, 1.0f);
  g->ck = FALLOC(s->batch * g->Lmax * kvh), g->cv = FALLOC(s->batch * g->Lmax * kvh);
  fill_nan(g->ck, s->batch * g->Lmax * kvh);
  fill_nan(g->cv, s->batch * g->Lmax * kvh);
}

static void free_global(global *g) {
  free(g->q), free(g->k), free(g->v), free(g->qd), free(g->kd), free(g->vd), free(g->ck), free(g->cv);
}

/* The one-rank prefill: kv_append of the whole batch, then causal attention. */
static void reference_prefill(cp_env *e, const shape *s, global *g, float *out) {
  sf_error err;
  const sf_seqs seqs = {.batch = s->batch, .max_len = g->Lmax, .start = g->start, .len = g->len32};
  const int64_t qh = (int64_t)s->H * s->D, kvh = (int64_t)s->KV * s->D;
  sf_kv_append_params ap = {.dtype = SF_F32, .n_kv_heads = s->KV, .head_dim = s->D, .seqs = seqs,
                            .k = g->k, .k_token_stride = kvh, .k_head_stride = s->D,
                            .v = g->v, .v_token_stride = kvh, .v_head_stride = s->D,
                            .cache = full_cache(s, g)};
  cp_ok(e, sf_ops_cpu.kv_append(&e->ctx, &ap, &err), &err, "reference kv_append");
  sf_attention_params a = {.dtype = SF_F32, .n_heads = s->H, .n_kv_heads = s->KV, .head_dim = s->D,
                           .scale = 1.0f / sqrtf((float)s->D), .causal = 1, .seqs = seqs,
                           .q = g->q, .q_token_stride = qh, .q_head_stride = s->D,
                           .cache = full_cache(s, g), .out = out, .out_token_stride = qh,
                           .out_head_stride = s->D};
  cp_ok(e, sf_ops_cpu.attention(&e->ctx, &a, &err), &err, "reference attention");
}

/* This rank's shard: rows [lstart[b], + zigzag_len) of a fused [q | k | v]
 * buffer, one unused (NaN) row after each sequence. */
typedef struct local {
  int64_t rows, W, lstart[MAX_BATCH], n[MAX_BATCH];
  int32_t *pos[MAX_BATCH];   /* global position of each local row */
  float *qkv, *out;
} local;

static void make_local(cp_env *e, const shape *s, const global *g, local *l) {
  const int64_t qh = (int64_t)s->H * s->D, kvh = (int64_t)s->KV * s->D;
  l->W = qh + 2 * kvh;
  l->rows = 0;
  for (int32_t b = 0; b < s->batch; b++) {
    l->lstart[b] = l->rows;
    l->n[b] = sf_cp_zigzag_len(s->len[b], e->k, e->rank);
    l->pos[b] = xmalloc((size_t)l->n[b] * sizeof(int32_t));
    sf_cp_zigzag_positions(s->len[b], e->k, e->rank, l->pos[b]);
    l->rows += l->n[b] + 1;
  }
  l->qkv = FALLOC(l->rows * l->W);
  l->out = FALLOC(l->rows * qh);
  fill_nan(l->qkv, l->rows * l->W);
  fill_nan(l->out, l->rows * qh);
  for (int32_t b = 0; b < s->batch; b++)
    for (int64_t i = 0; i < l->n[b]; i++) {
      const int64_t src = g->start[b] + l->pos[b][i];
      float *row = l->qkv + (l->lstart[b] + i) * l->W;
      memcpy(row, g->q + src * qh, (size_t)qh * sizeof(float));
      memcpy(row + qh, g->k + src * kvh, (size_t)kvh * sizeof(float));
      memcpy(row + qh + kvh, g->v + src * kvh, (size_t)kvh * sizeof(float));
    }
}

static void free_local(const shape *s, local *l) {
  for (int32_t b = 0; b < s->batch; b++) free(l->pos[b]);
  free(l->qkv), free(l->out);
}

static void test_prefill(cp_env *e, const shape *s, const global *g, const float *ref, local *l) {
  sf_error err;
  const int64_t qh = (int64_t)s->H * s->D, kvh = (int64_t)s->KV * s->D;
  sf_cp_prefill_params p = {
      .dtype = SF_F32, .n_heads = s->H, .n_kv_heads = s->KV, .head_dim = s->D,
      .scale = 1.0f / sqrtf((float)s->D), .batch = s->batch, .seq_len = s->len, .local_start = l->lstart,
      .q = l->qkv, .q_token_stride = l->W, .q_head_stride = s->D,
      .k = l->qkv + qh, .k_token_stride = l->W, .k_head_stride = s->D,
      .v = l->qkv + qh + kvh, .v_token_stride = l->W, .v_head_stride = s->D,
      .out = l->out, .out_token_stride = qh, .out_head_stride = s->D};
  if (!cp_ok(e, sf_cp_attention_prefill(&e->ctx, e->t, NULL, &p, &err), &err, "sf_cp_attention_prefill")) return;
  /* This rank's rows against the reference rows at their global positions. */
  int64_t n = 0;
  for (int32_t b = 0; b < s->batch; b++) n += l->n[b];
  float *got = FALLOC(n * qh), *want = FALLOC(n * qh);
  int64_t i = 0;
  for (int32_t b = 0; b < s->batch; b++)
    for (int64_t j = 0; j < l->n[b]; j++, i++) {
      memcpy(got + i * qh, l->out + (l->lstart[b] + j) * qh, (size_t)qh * sizeof(float));
      memcpy(want + i * qh, ref + (g->start[b] + l->pos[b][j]) * qh, (size_t)qh * sizeof(float));
    }
  char what[160];
  snprintf(what, sizeof what, "%s: prefill (%lld local rows)", s->name, (long long)n);
  CHECK_CLOSE(e, what, rel_err(got, want, n * qh));
  free(got), free(want);
}

/* GEN decode steps: the new token at position L + t goes into the full
 * cache (reference) and into its owner's shard; both attentions compared. */
static void test_decode(cp_env *e, const shape *s, global *g, const local *l) {
  sf_error err;
  const int64_t qh = (int64_t)s->H * s->D, kvh = (int64_t)s->KV * s->D;
  int64_t Lloc = 1;
  for (int32_t b = 0; b < s->batch; b++) Lloc = l->n[b] + GEN > Lloc ? l->n[b] + GEN : Lloc;
  /* The shard: [batch][Lloc][KV][D]; prefill tokens in local order, NaN after. */
  float *sk = FALLOC(s->batch * Lloc * kvh), *sv = FALLOC(s->batch * Lloc * kvh);
  fill_nan(sk, s->batch * Lloc * kvh);
  fill_nan(sv, s->batch * Lloc * kvh);
  int32_t n_loc[MAX_BATCH];
  for (int32_t b = 0; b < s->batch; b++) {
    n_loc[b] = (int32_t)l->n[b];
    for (int64_t i = 0; i < l->n[b]; i++) {
      const int64_t src = (g->start[b] + l->pos[b][i]) * kvh, dst = (b * Lloc + i) * kvh;
      memcpy(sk + dst, g->k + src, (size_t)kvh * sizeof(float));
      memcpy(sv + dst, g->v + src, (size_t)kvh * sizeof(float));
    }
  }
  float *ref = FALLOC(s->batch * qh), *out = FALLOC(s->batch * qh), *all = FALLOC(e->k * s->batch * qh);
  /* One scratch kept over the steps, as a session keeps it: its buffers are
   * reused and grow with the cache. */
  sf_cp_scratch keep;
  sf_cp_scratch_init(&keep, &e->ctx, 1);
  for (int t = 0; t < GEN; t++) {
    int32_t full_len[MAX_BATCH];
    for (int32_t b = 0; b < s->batch; b++) {
      const int64_t p = s->len[b] + t;
      const float *nk = g->kd + (t * s->batch + b) * kvh, *nv = g->vd + (t * s->batch + b) * kvh;
      memcpy(g->ck + (b * g->Lmax + p) * kvh, nk, (size_t)kvh * sizeof(float));
      memcpy(g->cv + (b * g->Lmax + p) * kvh, nv, (size_t)kvh * sizeof(float));
      full_len[b] = (int32_t)(p + 1);
      if (sf_cp_decode_owner(p, e->k) == e->rank) {
        memcpy(sk + (b * Lloc + n_loc[b]) * kvh, nk, (size_t)kvh * sizeof(float));
        memcpy(sv + (b * Lloc + n_loc[b]) * kvh, nv, (size_t)kvh * sizeof(float));
        n_loc[b]++;
      }
      CHECK_EQ_I64(n_loc[b], sf_cp_cache_len(s->len[b], p + 1, e->k, e->rank));
    }
    const float *q = g->qd + t * s->batch * qh;
    sf_attention_decode_params a = {
        .dtype = SF_F32, .batch = s->batch, .n_heads = s->H, .n_kv_heads = s->KV, .head_dim = s->D,
        .scale = 1.0f / sqrtf((float)s->D), .q = q, .q_batch_stride = qh, .q_head_stride = s->D,
        .cache = full_cache(s, g), .cache_len = full_len, .out = ref, .out_batch_stride = qh,
        .out_head_stride = s->D};
    cp_ok(e, sf_ops_cpu.attention_decode(&e->ctx, &a, &err), &err, "reference attention_decode");

    const int64_t ps = kvh;
    sf_cp_decode_params p = {
        .dtype = SF_F32, .batch = s->batch, .n_heads = s->H, .n_kv_heads = s->KV, .head_dim = s->D,
        .scale = 1.0f / sqrtf((float)s->D), .q = q, .q_batch_stride = qh, .q_head_stride = s->D,
        .cache = {.k = sk, .v = sv, .batch_stride = Lloc * ps, .pos_stride = ps, .head_stride = s->D,
                  .max_len = Lloc},
        .cache_len = n_loc, .out = out, .out_batch_stride = qh, .out_head_stride = s->D};
    fill_nan(out, s->batch * qh);
    if (!cp_ok(e, sf_cp_attention_decode(&e->ctx, e->t, &keep, &p, &err), &err, "sf_cp_attention_decode")) break;
    char what[160];
    snprintf(what, sizeof what, "%s: decode step %d", s->name, t);
    CHECK_CLOSE(e, what, rel_err(out, ref, s->batch * qh));
    /* Every rank must hold the same output, to the bit. */
    MPI_Allgather(out, (int)(s->batch * qh), MPI_FLOAT, all, (int)(s->batch * qh), MPI_FLOAT, MPI_COMM_WORLD);
    for (int j = 1; j < e->k; j++)
      CHECK_MSG(!memcmp(all, all + j * s->batch * qh, (size_t)(s->batch * qh) * sizeof(float)),
                "%s: rank %d's output differs from rank 0's", what, j);
  }
  sf_cp_scratch_free(&keep);
  free(sk), free(sv), free(ref), free(out), free(all);
}

/* cp_shard.h's rules, for lengths 0..40 and k = 1..8 (plain arithmetic:
 * every rank checks all of it). */
static void test_rules(void) {
  int32_t pos[64];
  for (int k = 1; k <= 8; k++)
    for (int64_t L = 0; L <= 40; L++) {
      int seen[41] = {0}, seen_piece[41] = {0};
      int64_t prev = INT64_MAX, cache_total = 0;
      for (int r = 0; r < k; r++) {
        const int64_t n = sf_cp_zigzag_len(L, k, r);
        sf_cp_zigzag_positions(L, k, r, pos);
        for (int64_t i = 0; i < n; i++) seen[pos[i]]++;
        const sf_cp_span pc = sf_cp_piece(L, k, r);
        for (int64_t i = 0; i < pc.len; i++) seen_piece[pc.start + i]++;
        cache_total += sf_cp_cache_len(L, L + 7, k, r);
      }
      for (int64_t i = 0; i < 2 * k; i++) { /* block sizes never grow */
        const int64_t len = sf_cp_split(L, 2 * k, i).len;
        CHECK_MSG(len <= prev, "L %lld, k %d: block %lld is longer than the one before", (long long)L, k, (long long)i);
        prev = len;
      }
      for (int64_t i = 0; i < L; i++)
        CHECK_MSG(seen[i] == 1 && seen_piece[i] == 1, "L %lld, k %d: position %lld held %d / %d times", (long long)L,
                  k, (long long)i, seen[i], seen_piece[i]);
      CHECK_EQ_I64(cache_total, L + 7);
    }
}

/* Every rank's call failed; the others' messages name the failed rank. */
static void expect_group_error(cp_env *e, sf_status st, const sf_error *err, int bad_rank, const char *what) {
  CHECK_MSG(st != SF_OK, "rank %d/%d: %s: succeeded though rank %d failed", e->rank, e->k, what, bad_rank);
  char name[32];
  snprintf(name, sizeof name, "rank %d of %d failed", bad_rank, e->k);
  if (st != SF_OK && e->rank != bad_rank)
    CHECK_MSG(strstr(err->msg, name) != NULL, "rank %d/%d: %s: message '%s' does not say '%s'", e->rank,
              e->k, what, err->msg, name);
}

static void test_errors(cp_env *e, const shape *s, const local *l) {
  sf_error err;
  const int64_t qh = (int64_t)s->H * s->D, kvh = (int64_t)s->KV * s->D;
  const int bad = e->k - 1;
  int64_t lstart[MAX_BATCH];
  memcpy(lstart, l->lstart, sizeof lstart);
  if (e->rank == bad) lstart[0] = -1; /* refused before the ring */
  sf_cp_prefill_params p = {
      .dtype = SF_F32, .n_heads = s->H, .n_kv_heads = s->KV, .head_dim = s->D, .scale = 1.0f,
      .batch = s->batch, .seq_len = s->len, .local_start = lstart,
      .q = l->qkv, .q_token_stride = l->W, .q_head_stride = s->D,
      .k = l->qkv + qh, .k_token_stride = l->W, .k_head_stride = s->D,
      .v = l->qkv + qh + kvh, .v_token_stride = l->W, .v_head_stride = s->D,
      .out = l->out, .out_token_stride = qh, .out_head_stride = s->D};
  sf_error_clear(&err);
  expect_group_error(e, sf_cp_attention_prefill(&e->ctx, e->t, NULL, &p, &err), &err, bad, "prefill, bad start");
  p.local_start = l->lstart;
  if (e->rank == bad) p.q = NULL; /* the attention op fails inside the ring */
  sf_error_clear(&err);
  expect_group_error(e, sf_cp_attention_prefill(&e->ctx, e->t, NULL, &p, &err), &err, bad, "prefill, failing op");

  float *q = FALLOC(s->batch * qh), *out = FALLOC(s->batch * qh), *kv = FALLOC(s->batch * kvh);
  fill_normal(e, q, s->batch * qh, 1.0f);
  fill_normal(e, kv, s->batch * kvh, 1.0f);
  int32_t len[MAX_BATCH];
  for (int32_t b = 0; b < s->batch; b++) len[b] = e->rank == bad ? 2 : 1; /* 2 > max_len: refused */
  sf_cp_decode_params d = {
      .dtype = SF_F32, .batch = s->batch, .n_heads = s->H, .n_kv_heads = s->KV, .head_dim = s->D,
      .scale = 1.0f, .q = q, .q_batch_stride = qh, .q_head_stride = s->D,
      .cache = {.k = kv, .v = kv, .batch_stride = kvh, .pos_stride = kvh, .head_stride = s->D, .max_len = 1},
      .cache_len = len, .out = out, .out_batch_stride = qh, .out_head_stride = s->D};
  sf_error_clear(&err);
  expect_group_error(e, sf_cp_attention_decode(&e->ctx, e->t, NULL, &d, &err), &err, bad, "decode, failing op");
  free(q), free(out), free(kv);
}

int main(int argc, char **argv) {
  cp_env e;
  cp_init(&e, &argc, &argv);
  test_rules();
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    const shape *s = &shapes[i];
    global g;
    local l;
    make_global(&e, s, &g);
    float *ref = FALLOC(g.T * s->H * s->D);
    reference_prefill(&e, s, &g, ref);
    make_local(&e, s, &g, &l);
    test_prefill(&e, s, &g, ref, &l);
    test_decode(&e, s, &g, &l);
    if (i == 1 && e.k > 1) test_errors(&e, s, &l);
    if (e.rank == 0) printf("%s: done\n", s->name);
    free(ref);
    free_local(s, &l);
    free_global(&g);
  }
  return cp_finish(&e);
}
