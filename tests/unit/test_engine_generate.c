/* Greedy generation on the three tiny presets: deterministic for a seed
 * (two models built from the same seed generate the same ids and logits),
 * each token is the argmax of the logits reported for it, a batch generates
 * what its sequences generate alone, EOS stops a sequence, a different
 * weights seed changes the logits; and the session's errors (too long,
 * bad ids, a non-fresh session for generate) are errors, not crashes. */
#include "unit/test_engine_util.h"

enum { G = 10, MAXB = 2 };

typedef struct capture {
  float *rows;        /* [G][batch][V] */
  int64_t n, V;
  int32_t batch;
} capture;

static sf_status on_logits(void *user, int64_t row, const float *logits, int32_t batch,
                           int32_t vocab, sf_error *err) {
  capture *c = user;
  if (row != c->n || batch != c->batch || vocab != c->V || row >= G)
    return sf_fail(err, SF_ERR_INTERNAL, "unexpected logits row %lld", (long long)row);
  memcpy(c->rows + row * batch * vocab, logits, (size_t)batch * (size_t)vocab * 4);
  c->n++;
  return SF_OK;
}

static int32_t argmax(const float *x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return (int32_t)best;
}

/* Generates G tokens for `batch` prompts of lens from a fresh model. */
static void gen(const char *preset, uint64_t seed, int32_t batch, const int32_t *ids,
                const int32_t *lens, int32_t eos, int32_t *out, int32_t *out_n, capture *cap) {
  sf_error err;
  test_model t;
  tm_init(&t, preset, 0, seed);
  int32_t mx = 0;
  for (int b = 0; b < batch; b++) mx = lens[b] > mx ? lens[b] : mx;
  sf_session *s = tm_session(&t, batch, mx + G, 4);
  cap->n = 0;
  cap->V = t.m.cfg.vocab_size;
  cap->batch = batch;
  sf_batch_input in = {.layout = SF_BATCH_VARLEN, .ids = ids, .lens = lens};
  sf_generate_opts o = {.max_new_tokens = G, .eos_id = eos, .on_logits = on_logits, .user = cap};
  sf_generate_stats st;
  memset(&st, 0, sizeof st);
  CHECK_OK(sf_generate(s, &in, &o, out, out_n, &st, &err));
  int64_t total = 0;
  for (int b = 0; b < batch; b++) total += lens[b];
  CHECK_EQ_I64(st.prompt_tokens, total);
  if (eos < 0) {
    CHECK_EQ_I64(st.decode_steps, G - 1);
    CHECK_EQ_I64(st.decode_tokens, (G - 1) * batch);
    CHECK_EQ_I64(cap->n, G);
  }
  CHECK(st.prefill_s >= 0 && st.decode_s >= 0);
  /* generate needs a fresh session */
  CHECK(sf_generate(s, &in, &o, out, out_n, &st, &err) == SF_ERR_ARG);
  sf_session_free(s);
  tm_free(&t);
}

static void test_generate(const char *preset, uint64_t seed, sf_rng *r) {
  sf_model_config cfg;
  sf_error err;
  REQUIRE(sf_model_preset(preset, &cfg, &err) == SF_OK);
  const int64_t V = cfg.vocab_size;
  int32_t ids[40];
  random_ids(r, ids, 40, (int32_t)V);
  const int32_t lens[MAXB] = {23, 17};
  int32_t out1[MAXB * G], out2[MAXB * G], outb[MAXB * G], n1[MAXB], n2[MAXB], nb[MAXB];
  capture c1 = {xmalloc((size_t)(G * MAXB * V) * 4), 0, 0, 0};
  capture c2 = {xmalloc((size_t)(G * MAXB * V) * 4), 0, 0, 0};

  /* same seed twice: identical ids and logits */
  gen(preset, seed, 1, ids, lens, -1, out1, n1, &c1);
  gen(preset, seed, 1, ids, lens, -1, out2, n2, &c2);
  CHECK_EQ_I64(n1[0], G);
  CHECK_MSG(n1[0] == n2[0] && !memcmp(out1, out2, sizeof(int32_t) * G), "%s: not deterministic", preset);
  CHECK_MSG(!memcmp(c1.rows, c2.rows, (size_t)(G * V) * 4), "%s: logits not deterministic", preset);
  CHECK(all_finite(c1.rows, G * V));
  /* token i is the argmax of logits row i */
  for (int i = 0; i < G; i++)
    CHECK_MSG(out1[i] == argmax(c1.rows + i * V, V), "%s: token %d is not the argmax of its row",
              preset, i);
  printf("%s seed %llu: greedy ids", preset, (unsigned long long)seed);
  for (int i = 0; i < G; i++) printf(" %d", out1[i]);
  printf("\n");

  /* batch of two == each alone */
  gen(preset, seed, 2, ids, lens, -1, outb, nb, &c2);
  int32_t single[G], ns;
  capture c3 = {xmalloc((size_t)(G * V) * 4), 0, 0, 0};
  gen(preset, seed, 1, ids + lens[0], &lens[1], -1, single, &ns, &c3);
  CHECK_MSG(!memcmp(outb, out1, sizeof(int32_t) * G), "%s: batch row 0 differs from alone", preset);
  CHECK_MSG(!memcmp(outb + G, single, sizeof(int32_t) * G), "%s: batch row 1 differs from alone", preset);
  double e = 0;
  for (int i = 0; i < G; i++) {
    double e0 = rel_err(c2.rows + (int64_t)i * 2 * V, c1.rows + i * V, V);
    double e1 = rel_err(c2.rows + ((int64_t)i * 2 + 1) * V, c3.rows + i * V, V);
    e = e0 > e ? e0 : e;
    e = e1 > e ? e1 : e;
  }
  CHECK_MSG(e <= 1e-4, "%s: batch vs alone logits: %.3g", preset, e);

  /* EOS: stop at the 4th token's id (the first position it occurs) */
  const int32_t eos = out1[3];
  int first = 0;
  while (out1[first] != eos) first++;
  int32_t oute[G], ne;
  gen(preset, seed, 1, ids, lens, eos, oute, &ne, &c3);
  CHECK_EQ_I64(ne, first + 1);
  CHECK_EQ_I64(c3.n, first + 1);
  CHECK(!memcmp(oute, out1, sizeof(int32_t) * (size_t)ne));

  /* another weights seed: other logits */
  gen(preset, seed + 1, 1, ids, lens, -1, out2, n2, &c2);
  CHECK_MSG(rel_err(c2.rows, c1.rows, V) > 1e-2, "%s: the weights seed does not matter", preset);
  free(c1.rows);
  free(c2.rows);
  free(c3.rows);
}

static void test_errors(const char *preset, uint64_t seed) {
  sf_error err;
  test_model t;
  tm_init(&t, preset, 0, seed);
  const int32_t V = t.m.cfg.vocab_size;
  sf_session *s = tm_session(&t, 2, 8, 3);
  int32_t ids[16] = {0};
  int32_t lens[2] = {8, 9};
  sf_batch_input in = {.layout = SF_BATCH_VARLEN, .ids = ids, .lens = lens};
  CHECK(sf_session_prefill(s, &in, NULL, NULL, &err) == SF_ERR_ARG); /* 9 > max_len 8 */
  lens[1] = 3;
  in.layout = SF_BATCH_PADDED;
  in.row_stride = 4;
  CHECK(sf_session_prefill(s, &in, NULL, NULL, &err) == SF_ERR_ARG); /* 8 > row stride */
  in.layout = SF_BATCH_VARLEN;
  ids[2] = V;
  CHECK(sf_session_prefill(s, &in, NULL, NULL, &err) == SF_ERR_ARG); /* id out of range */
  ids[2] = 1;
  lens[1] = -1;
  CHECK(sf_session_prefill(s, &in, NULL, NULL, &err) == SF_ERR_ARG);
  lens[1] = 3;
  CHECK_EQ_I64(sf_session_length(s, 0), 0); /* nothing consumed by the failures */
  CHECK_OK(sf_session_prefill(s, &in, NULL, NULL, &err));
  int32_t d[2] = {1, 2};
  CHECK(sf_session_decode(s, d, NULL, &err) == SF_ERR_ARG); /* sequence 0 is full */
  CHECK_OK(sf_session_reset(s, &err));
  CHECK_EQ_I64(sf_session_length(s, 1), 0);
  d[1] = -5;
  CHECK(sf_session_decode(s, d, NULL, &err) == SF_ERR_ARG);
  CHECK(sf_session_state_bytes(s) > 0 && sf_session_scratch_bytes(s) > 0);
  sf_session_free(s);

  sf_session *bad = NULL;
  CHECK(sf_session_create(&t.m, 0, 8, 0, &bad, &err) == SF_ERR_ARG && !bad);
  CHECK(sf_session_create(&t.m, 1, 0, 0, &bad, &err) == SF_ERR_ARG && !bad);
  CHECK(sf_session_create(&t.m, 1, 8, -1, &bad, &err) == SF_ERR_ARG && !bad);
  /* generate: prompt + G - 1 must fit */
  s = tm_session(&t, 1, 10, 0);
  int32_t l = 5, out[8], n;
  sf_batch_input one = {.layout = SF_BATCH_VARLEN, .ids = ids, .lens = &l};
  sf_generate_opts o = {.max_new_tokens = 7, .eos_id = -1};
  CHECK(sf_generate(s, &one, &o, out, &n, NULL, &err) == SF_ERR_ARG);
  o.max_new_tokens = 6;
  CHECK_OK(sf_generate(s, &one, &o, out, &n, NULL, &err));
  CHECK_EQ_I64(n, 6);
  CHECK_EQ_I64(sf_session_length(s, 0), 10);
  CHECK_OK(sf_session_reset(s, &err));
  o.max_new_tokens = -1;
  CHECK(sf_generate(s, &one, &o, out, &n, NULL, &err) == SF_ERR_ARG);
  o.max_new_tokens = 0;
  CHECK_OK(sf_generate(s, &one, &o, out, &n, NULL, &err));
  CHECK_EQ_I64(n, 0);
  sf_session_free(s);
  tm_free(&t);
}

int main(void) {
  const uint64_t seed = sf_test_seed();
  for (int p = 0; p < N_TINY; p++) {
    sf_rng r;
    sf_rng_seed_stream(&r, seed, 100 + (uint64_t)p);
    test_generate(tiny_presets[p], seed + (uint64_t)p, &r);
    test_errors(tiny_presets[p], seed);
  }
  return sf_test_finish("test_engine_generate");
}
