/* The engine's forward passes agree with themselves in every form, for the
 * three tiny presets (random weights from a printed seed, random ids):
 *   1. recurrent == parallel: token-by-token decode logits equal one-shot
 *      prefill logits at the same positions (also prefill k tokens, then
 *      decode the rest);
 *   2. chunked prefill (chunk sizes 1, 3, 5, 7, 16, 17, n-1; several do not
 *      divide n and several are below the Mamba-2 chunk of 16) equals one
 *      shot, at every position, and the carried state gives the same next
 *      decode step;
 *   3. a padded batch == a varlen batch == one sequence at a time, with
 *      different lengths in the batch, one-shot and chunked, then decode steps;
 *   4. logits stay finite (and not constant) through a deeper stack (12 layers).
 * 1-3 also run on tiny-transformer with 2 kv heads for its 4 query heads (GQA).
 * Tolerance: relative L2 error ||a-b||/||b|| per logits row <= 1e-4 (fp32;
 * observed errors are printed). */
#include "unit/test_engine_util.h"

#define TOL 1e-4

static uint64_t g_seed;
static double worst[N_TINY + 1][4];
/* Case p: tiny_presets[p], and p == N_TINY the GQA transformer. */
static const char *case_name(int p) { return p < N_TINY ? tiny_presets[p] : "tiny-transformer-gqa"; }

/* Max over rows of the relative error between two [rows, V] arrays. */
static double rows_err(const float *a, const float *b, int64_t rows, int64_t V) {
  double m = 0;
  for (int64_t r = 0; r < rows; r++) {
    double e = rel_err(a + r * V, b + r * V, V);
    if (!(e <= m)) m = e; /* NaN propagates */
  }
  return m;
}

static void note(int p, int kind, double e) {
  if (!(e <= worst[p][kind])) worst[p][kind] = e;
}

/* One-shot prefill logits at every position of one sequence. */
static void prefill_all(test_model *t, const int32_t *ids, int64_t n, int64_t chunk, float *all,
                        float *last) {
  sf_error err;
  sf_session *s = tm_session(t, 1, n + 4, chunk);
  const int32_t len = (int32_t)n;
  sf_batch_input in = {.layout = SF_BATCH_VARLEN, .ids = ids, .lens = &len};
  CHECK_OK(sf_session_prefill(s, &in, last, all, &err));
  sf_session_free(s);
}

static void test_decode_vs_prefill(int p, test_model *t, sf_rng *r) {
  sf_error err;
  const int64_t n = 37, V = t->m.cfg.vocab_size;
  int32_t ids[37];
  random_ids(r, ids, n, (int32_t)V);
  float *ref = xmalloc((size_t)(n * V) * 4), *last = xmalloc((size_t)V * 4);
  float *got = xmalloc((size_t)V * 4);
  prefill_all(t, ids, n, 0, ref, last);
  CHECK(all_finite(ref, n * V));
  CHECK_MSG(rows_err(last, ref + (n - 1) * V, 1, V) == 0.0, "last_logits is not the last row");

  /* Every token through decode, from an empty state. */
  sf_session *s = tm_session(t, 1, n, 0);
  double e = 0;
  for (int64_t i = 0; i < n; i++) {
    CHECK_OK(sf_session_decode(s, &ids[i], got, &err));
    double ei = rel_err(got, ref + i * V, V);
    if (!(ei <= e)) e = ei;
  }
  CHECK_EQ_I64(sf_session_length(s, 0), n);
  CHECK_MSG(e <= TOL, "%s: decode vs prefill: max rel err %.3g", case_name(p), e);
  note(p, 0, e);

  /* Prefill a prefix, decode the rest. */
  for (int64_t k = 1; k < n; k += 11) {
    CHECK_OK(sf_session_reset(s, &err));
    const int32_t len = (int32_t)k;
    sf_batch_input in = {.layout = SF_BATCH_VARLEN, .ids = ids, .lens = &len};
    CHECK_OK(sf_session_prefill(s, &in, got, NULL, &err));
    e = rel_err(got, ref + (k - 1) * V, V);
    for (int64_t i = k; i < n; i++) {
      CHECK_OK(sf_session_decode(s, &ids[i], got, &err));
      double ei = rel_err(got, ref + i * V, V);
      if (!(ei <= e)) e = ei;
    }
    CHECK_MSG(e <= TOL, "%s: prefill %lld + decode: max rel err %.3g", case_name(p), (long long)k, e);
    note(p, 0, e);
  }
  sf_session_free(s);
  free(ref);
  free(last);
  free(got);
}

static void test_chunked(int p, test_model *t, sf_rng *r) {
  sf_error err;
  const int64_t n = 41, V = t->m.cfg.vocab_size;
  int32_t ids[42];
  random_ids(r, ids, n + 1, (int32_t)V);
  float *ref = xmalloc((size_t)(n * V) * 4), *got = xmalloc((size_t)(n * V) * 4);
  float *ref_next = xmalloc((size_t)V * 4), *next = xmalloc((size_t)V * 4);
  float *last = xmalloc((size_t)V * 4);
  prefill_all(t, ids, n, 0, ref, last);
  /* one-shot + one decode step */
  {
    sf_session *s = tm_session(t, 1, n + 1, 0);
    const int32_t len = (int32_t)n;
    sf_batch_input in = {.layout = SF_BATCH_VARLEN, .ids = ids, .lens = &len};
    CHECK_OK(sf_session_prefill(s, &in, NULL, NULL, &err));
    CHECK_OK(sf_session_decode(s, &ids[n], ref_next, &err));
    sf_session_free(s);
  }
  const int64_t chunks[] = {1, 3, 5, 7, 16, 17, n - 1};
  for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
    sf_session *s = tm_session(t, 1, n + 1, chunks[c]);
    CHECK_EQ_I64(sf_session_chunk_tokens(s), chunks[c]);
    const int32_t len = (int32_t)n;
    sf_batch_input in = {.layout = SF_BATCH_VARLEN, .ids = ids, .lens = &len};
    CHECK_OK(sf_session_prefill(s, &in, last, got, &err));
    double e = rows_err(got, ref, n, V);
    double el = rel_err(last, ref + (n - 1) * V, V);
    CHECK_OK(sf_session_decode(s, &ids[n], next, &err));
    double en = rel_err(next, ref_next, V);
    CHECK_MSG(e <= TOL && el <= TOL && en <= TOL,
              "%s: chunk %lld: all %.3g, last %.3g, next decode %.3g", case_name(p),
              (long long)chunks[c], e, el, en);
    note(p, 1, e > en ? e : en);
    sf_session_free(s);
  }
  /* Two prefill calls (the second continues the first), chunked. */
  {
    sf_session *s = tm_session(t, 1, n, 6);
    int32_t l1 = 13, l2 = (int32_t)n - 13;
    sf_batch_input a = {.layout = SF_BATCH_VARLEN, .ids = ids, .lens = &l1};
    sf_batch_input b = {.layout = SF_BATCH_VARLEN, .ids = ids + 13, .lens = &l2};
    CHECK_OK(sf_session_prefill(s, &a, NULL, got, &err));
    CHECK_OK(sf_session_prefill(s, &b, NULL, got + 13 * V, &err));
    double e = rows_err(got, ref, n, V);
    CHECK_MSG(e <= TOL, "%s: two prefills: %.3g", case_name(p), e);
    note(p, 1, e);
    sf_session_free(s);
  }
  free(ref);
  free(got);
  free(ref_next);
  free(next);
  free(last);
}

/* Batch of 3 sequences of different lengths: padded == varlen == singles. */
static void test_batch(int p, test_model *t, sf_rng *r) {
  sf_error err;
  enum { B = 3, STRIDE = 40, STEPS = 3 };
  const int32_t lens[B] = {37, 5, 20};
  const int64_t V = t->m.cfg.vocab_size;
  int32_t padded[B * STRIDE], varlen[B * STRIDE], dec[STEPS][B];
  int64_t total = 0;
  for (int b = 0; b < B; b++) {
    random_ids(r, padded + b * STRIDE, STRIDE, (int32_t)V);
    memcpy(varlen + total, padded + b * STRIDE, (size_t)lens[b] * 4);
    total += lens[b];
  }
  for (int i = 0; i < STEPS; i++) random_ids(r, dec[i], B, (int32_t)V);

  /* singles: all rows, last logits and STEPS decode steps */
  float *ref_all = xmalloc((size_t)(total * V) * 4), *ref_dec = xmalloc((size_t)(STEPS * B * V) * 4);
  float *row = xmalloc((size_t)V * 4);
  int64_t off = 0;
  for (int b = 0; b < B; b++) {
    sf_session *s = tm_session(t, 1, lens[b] + STEPS, 0);
    sf_batch_input in = {.layout = SF_BATCH_VARLEN, .ids = varlen + off, .lens = &lens[b]};
    CHECK_OK(sf_session_prefill(s, &in, NULL, ref_all + off * V, &err));
    for (int i = 0; i < STEPS; i++) {
      CHECK_OK(sf_session_decode(s, &dec[i][b], row, &err));
      memcpy(ref_dec + ((int64_t)i * B + b) * V, row, (size_t)V * 4);
    }
    sf_session_free(s);
    off += lens[b];
  }

  float *all = xmalloc((size_t)(B * STRIDE * V) * 4), *last = xmalloc((size_t)(B * V) * 4);
  float *dl = xmalloc((size_t)(B * V) * 4);
  const int64_t chunks[] = {0, 7, 16};
  for (int layout = 0; layout < 2; layout++) {
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
      sf_session *s = tm_session(t, B, STRIDE + STEPS, chunks[c]);
      sf_batch_input in = {.layout = layout ? SF_BATCH_VARLEN : SF_BATCH_PADDED,
                           .ids = layout ? varlen : padded, .lens = lens, .row_stride = STRIDE};
      CHECK_OK(sf_session_prefill(s, &in, last, all, &err));
      double e = 0;
      off = 0;
      for (int b = 0; b < B; b++) {
        const float *got = layout ? all + off * V : all + (int64_t)b * STRIDE * V;
        double eb = rows_err(got, ref_all + off * V, lens[b], V);
        double el = rel_err(last + b * V, ref_all + (off + lens[b] - 1) * V, V);
        if (!(eb <= e)) e = eb;
        if (!(el <= e)) e = el;
        CHECK_EQ_I64(sf_session_length(s, b), lens[b]);
        off += lens[b];
      }
      for (int i = 0; i < STEPS; i++) {
        CHECK_OK(sf_session_decode(s, dec[i], dl, &err));
        double ed = rows_err(dl, ref_dec + (int64_t)i * B * V, B, V);
        if (!(ed <= e)) e = ed;
      }
      CHECK_MSG(e <= TOL, "%s: %s batch, chunk %lld vs singles: max rel err %.3g", case_name(p),
                layout ? "varlen" : "padded", (long long)chunks[c], e);
      note(p, 2, e);
      sf_session_free(s);
    }
  }
  free(ref_all);
  free(ref_dec);
  free(row);
  free(all);
  free(last);
  free(dl);
}

/* A 12-layer stack: logits finite and not degenerate, prefill and decode. */
static void test_deep_finite(int p, sf_rng *r) {
  sf_error err;
  test_model t;
  tm_init(&t, tiny_presets[p], 12, g_seed + 7);
  const int64_t n = 24, V = t.m.cfg.vocab_size;
  int32_t ids[25];
  random_ids(r, ids, n + 1, (int32_t)V);
  float *all = xmalloc((size_t)(n * V) * 4), *row = xmalloc((size_t)V * 4);
  sf_session *s = tm_session(&t, 1, n + 1, 5);
  const int32_t len = (int32_t)n;
  sf_batch_input in = {.layout = SF_BATCH_VARLEN, .ids = ids, .lens = &len};
  CHECK_OK(sf_session_prefill(s, &in, NULL, all, &err));
  CHECK_OK(sf_session_decode(s, &ids[n], row, &err));
  CHECK_MSG(all_finite(all, n * V) && all_finite(row, V), "%s: 12 layers: non-finite logits",
            tiny_presets[p]);
  double mn = row[0], mx = row[0];
  for (int64_t i = 0; i < V; i++) mn = row[i] < mn ? row[i] : mn, mx = row[i] > mx ? row[i] : mx;
  CHECK_MSG(mx - mn > 1e-3, "%s: 12 layers: constant logits (%g .. %g)", tiny_presets[p], mn, mx);
  /* Rows at different positions differ (the model is not ignoring its input). */
  CHECK(rel_err(all, all + (n - 1) * V, V) > 1e-3);
  sf_session_free(s);
  free(all);
  free(row);
  tm_free(&t);
}

int main(void) {
  g_seed = sf_test_seed();
  for (int p = 0; p <= N_TINY; p++) {
    sf_rng r;
    sf_rng_seed_stream(&r, g_seed, (uint64_t)p);
    test_model t;
    if (p < N_TINY) tm_init(&t, tiny_presets[p], 0, g_seed + (uint64_t)p);
    else tm_init_shape(&t, "tiny-transformer", 0, 2, g_seed + (uint64_t)p);
    test_decode_vs_prefill(p, &t, &r);
    test_chunked(p, &t, &r);
    test_batch(p, &t, &r);
    tm_free(&t);
    if (p < N_TINY) test_deep_finite(p, &r);
    printf("%-20s max rel err: decode vs prefill %.2e, chunked vs one-shot %.2e, "
           "batch vs singles %.2e\n",
           case_name(p), worst[p][0], worst[p][1], worst[p][2]);
  }
  return sf_test_finish("test_engine");
}
