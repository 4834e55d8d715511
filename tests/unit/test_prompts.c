/* Context packing on a synthetic corpus built by hand (no tokenizer): exact
 * length, ends with the prompt, never p's own document, documents whole
 * except the trimmed first one, each cycle a permutation of the others,
 * determinism per seed, the suffix property, the documented recipe, errors.
 * Token ids encode their owner: problem q's prompt token j is 1000q + j and
 * its solution token j is 1000q + 500 + j, so q = id / 1000. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prompts/prompts.h"
#include "scanflash/rng.h"
#include "test.h"

static sf_corpus make_corpus(int32_t n, sf_rng *rng, int with_names) {
  sf_corpus c = {0};
  c.n = n;
  c.prompt = calloc((size_t)n, sizeof *c.prompt);
  c.document = calloc((size_t)n, sizeof *c.document);
  c.task_id = with_names ? calloc((size_t)n, sizeof *c.task_id) : NULL;
  REQUIRE(c.prompt && c.document && (!with_names || c.task_id));
  sf_error err;
  for (int32_t q = 0; q < n; q++) {
    int64_t np = 3 + (int64_t)sf_rng_below(rng, 60), ns = 1 + (int64_t)sf_rng_below(rng, 200);
    for (int64_t j = 0; j < np; j++) {
      REQUIRE(sf_tokens_push(&c.prompt[q], (int32_t)(1000 * q + j), &err) == SF_OK);
      REQUIRE(sf_tokens_push(&c.document[q], (int32_t)(1000 * q + j), &err) == SF_OK);
    }
    for (int64_t j = 0; j < ns; j++)
      REQUIRE(sf_tokens_push(&c.document[q], (int32_t)(1000 * q + 500 + j), &err) == SF_OK);
    if (with_names) {
      char name[32];
      snprintf(name, sizeof name, "HumanEval/%d", (int)q);
      c.task_id[q] = strdup(name);
    }
  }
  return c;
}

/* The recipe of prompts.h written out independently: list the documents
 * nearest-first until they cover the filler, lay them out farthest-first,
 * keep the last F tokens, append the prompt. */
static void reference(const sf_corpus *c, int32_t p, int64_t L, uint64_t seed, sf_tokens *out,
                      sf_pack_stats *st) {
  sf_error err;
  sf_tokens_free(out);
  memset(st, 0, sizeof *st);
  const sf_tokens *pr = &c->prompt[p];
  if (L == 0) L = pr->n;
  int64_t F = L - pr->n;
  int32_t m = 0, *others = malloc((size_t)c->n * sizeof *others), *perm = malloc((size_t)c->n * sizeof *perm);
  for (int32_t q = 0; q < c->n; q++)
    if (q != p && c->document[q].n > 0) others[m++] = q;
  int32_t *order = NULL;
  int64_t n_order = 0, cap = 0, total = 0, cycles = 0;
  for (uint64_t k = 0; total < F; k++) {
    memcpy(perm, others, (size_t)m * sizeof *perm);
    sf_rng rng;
    sf_rng_seed_stream(&rng, seed, ((uint64_t)p << 40) | k);
    sf_rng_shuffle_i32(&rng, perm, m);
    cycles = (int64_t)k + 1;
    for (int32_t j = 0; j < m && total < F; j++) {
      if (n_order == cap) {
        cap = cap ? 2 * cap : 64;
        order = realloc(order, (size_t)cap * sizeof *order);
      }
      order[n_order++] = perm[j];
      total += c->document[perm[j]].n;
    }
  }
  sf_tokens all = {0};
  for (int64_t i = n_order - 1; i >= 0; i--)
    REQUIRE(sf_tokens_append(&all, c->document[order[i]].ids, c->document[order[i]].n, &err) == SF_OK);
  REQUIRE(sf_tokens_append(out, all.ids + (all.n - F), F, &err) == SF_OK);
  REQUIRE(sf_tokens_append(out, pr->ids, pr->n, &err) == SF_OK);
  st->tokens = L;
  st->prompt_tokens = pr->n;
  st->filler_tokens = F;
  st->documents = n_order;
  st->cycles = F > 0 ? cycles : 0;
  st->first_doc_trimmed = total - F;
  sf_tokens_free(&all);
  free(order);
  free(others);
  free(perm);
}

static int same_tokens(const int32_t *a, const int32_t *b, int64_t n) {
  return n == 0 || memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* Structural checks that need no RNG: returns 0 when the context is sound. */
static int check_structure(const sf_corpus *c, int32_t p, int64_t L, const sf_tokens *t,
                           const sf_pack_stats *st) {
  int before = sf_test_failures;
  const sf_tokens *pr = &c->prompt[p];
  CHECK_EQ_I64(t->n, L);
  CHECK_EQ_I64(st->tokens, L);
  CHECK_EQ_I64(st->prompt_tokens, pr->n);
  CHECK_EQ_I64(st->filler_tokens, L - pr->n);
  if (t->n != L || L < pr->n) return 1;
  CHECK(same_tokens(t->ids + L - pr->n, pr->ids, pr->n));
  /* Walk the filler backwards document by document. */
  int32_t m = 0;
  for (int32_t q = 0; q < c->n; q++) m += q != p && c->document[q].n > 0;
  int64_t pos = L - pr->n, docs = 0, trimmed = 0;
  char *seen = calloc((size_t)c->n, 1);
  while (pos > 0) {
    int32_t q = t->ids[pos - 1] / 1000;
    if (q < 0 || q >= c->n || q == p) {
      CHECK_MSG(0, "token %d at %lld belongs to problem %d (p = %d)", t->ids[pos - 1], (long long)pos - 1, q, p);
      break;
    }
    const sf_tokens *d = &c->document[q];
    int64_t len = d->n < pos ? d->n : pos;
    if (!same_tokens(t->ids + pos - len, d->ids + d->n - len, len)) {
      CHECK_MSG(0, "filler at [%lld, %lld) is not the end of document %d", (long long)(pos - len),
                (long long)pos, q);
      break;
    }
    if (docs % m == 0) memset(seen, 0, (size_t)c->n);
    CHECK_MSG(!seen[q], "document %d twice in cycle %lld", q, (long long)(docs / m));
    seen[q] = 1;
    trimmed = d->n - len;
    pos -= len;
    docs++;
  }
  free(seen);
  CHECK_EQ_I64(st->documents, docs);
  CHECK_EQ_I64(st->cycles, (docs + m - 1) / m);
  CHECK_EQ_I64(st->first_doc_trimmed, trimmed);
  return sf_test_failures != before;
}

/* Packs, checks structure and the reference; returns the packed tokens in out. */
static void pack_and_check(const sf_corpus *c, int32_t p, int64_t L, uint64_t seed, sf_tokens *out,
                           sf_pack_stats *st) {
  sf_error err;
  sf_status rc = sf_pack_context(c, p, L, seed, out, st, &err);
  CHECK_MSG(rc == SF_OK, "p=%d L=%lld: %s", p, (long long)L, err.msg);
  if (rc != SF_OK) return;
  if (check_structure(c, p, L, out, st)) {
    fprintf(stderr, "  (structure failed at p=%d L=%lld seed=%llu)\n", p, (long long)L, (unsigned long long)seed);
    return;
  }
  sf_tokens ref = {0};
  sf_pack_stats rst;
  reference(c, p, L, seed, &ref, &rst);
  CHECK_MSG(ref.n == out->n && same_tokens(ref.ids, out->ids, ref.n), "p=%d L=%lld differs from the recipe", p,
            (long long)L);
  CHECK(memcmp(&rst, st, sizeof rst) == 0);
  sf_tokens_free(&ref);
}

static int64_t others_total(const sf_corpus *c, int32_t p) {
  int64_t s = 0;
  for (int32_t q = 0; q < c->n; q++)
    if (q != p) s += c->document[q].n;
  return s;
}

static void test_lengths(const sf_corpus *c, sf_rng *rng) {
  sf_tokens t = {0};
  sf_pack_stats st;
  for (int32_t p = 0; p < c->n; p++) {
    int64_t P = c->prompt[p].n, cyc = others_total(c, p);
    uint64_t seed = sf_rng_next(rng);
    /* every L from the prompt length through three cycles and a bit (for a
     * few problems; random lengths in that range for the rest) */
    if (p < 4)
      for (int64_t L = P; L <= P + 3 * cyc + 3; L++) pack_and_check(c, p, L, seed, &t, &st);
    else
      for (int i = 0; i < 100; i++)
        pack_and_check(c, p, P + (int64_t)sf_rng_below(rng, 3 * (uint64_t)cyc + 4), seed, &t, &st);
    /* a few long ones */
    for (int i = 0; i < 5; i++)
      pack_and_check(c, p, P + (int64_t)sf_rng_below(rng, 200 * (uint64_t)cyc), seed, &t, &st);
  }
  sf_tokens_free(&t);
}

static void test_boundaries(const sf_corpus *c) {
  sf_tokens t = {0};
  sf_pack_stats st;
  sf_error err;
  const int32_t p = 3;
  const uint64_t seed = 12345;
  const int64_t P = c->prompt[p].n, cyc = others_total(c, p);

  /* L = P: the prompt alone, no filler. */
  pack_and_check(c, p, P, seed, &t, &st);
  CHECK_EQ_I64(st.filler_tokens, 0);
  CHECK_EQ_I64(st.documents, 0);
  CHECK_EQ_I64(st.cycles, 0);
  CHECK_EQ_I64(st.first_doc_trimmed, 0);
  /* L = P + 1: one token, the last of the nearest document. */
  pack_and_check(c, p, P + 1, seed, &t, &st);
  CHECK_EQ_I64(st.documents, 1);
  CHECK_EQ_I64(st.cycles, 1);
  int32_t nearest = t.ids[0] / 1000;
  CHECK_EQ_I64(st.first_doc_trimmed, c->document[nearest].n - 1);
  /* Exactly the nearest document: nothing trimmed. */
  int64_t d0 = c->document[nearest].n;
  pack_and_check(c, p, P + d0, seed, &t, &st);
  CHECK_EQ_I64(st.documents, 1);
  CHECK_EQ_I64(st.first_doc_trimmed, 0);
  CHECK(same_tokens(t.ids, c->document[nearest].ids, d0));
  /* One more token starts the second document. */
  pack_and_check(c, p, P + d0 + 1, seed, &t, &st);
  CHECK_EQ_I64(st.documents, 2);
  /* Exactly one full cycle, then one token into the second. */
  pack_and_check(c, p, P + cyc, seed, &t, &st);
  CHECK_EQ_I64(st.cycles, 1);
  CHECK_EQ_I64(st.documents, c->n - 1);
  CHECK_EQ_I64(st.first_doc_trimmed, 0);
  pack_and_check(c, p, P + cyc + 1, seed, &t, &st);
  CHECK_EQ_I64(st.cycles, 2);
  CHECK_EQ_I64(st.documents, c->n);
  /* Multi-cycle, cut exactly at the end of cycle 10, and 7 tokens later. */
  pack_and_check(c, p, P + 10 * cyc, seed, &t, &st);
  CHECK_EQ_I64(st.cycles, 10);
  CHECK_EQ_I64(st.documents, 10 * (c->n - 1));
  CHECK_EQ_I64(st.first_doc_trimmed, 0);
  pack_and_check(c, p, P + 10 * cyc + 7, seed, &t, &st);
  CHECK_EQ_I64(st.cycles, 11);

  /* Cycles use fresh orders: over 10 cycles of 11 documents, not all the same. */
  sf_tokens_free(&t);
  REQUIRE(sf_pack_context(c, p, P + 10 * cyc, seed, &t, &st, &err) == SF_OK);
  int32_t firsts[10];
  int64_t pos = t.n - P;
  int64_t cycle_docs = 0;
  int k = 0;
  while (pos > 0 && k < 10) { /* the nearest document of each cycle */
    int32_t q = t.ids[pos - 1] / 1000;
    if (cycle_docs % (c->n - 1) == 0) firsts[k++] = q;
    pos -= c->document[q].n;
    cycle_docs++;
  }
  int distinct = 0;
  for (int i = 1; i < k; i++) distinct += firsts[i] != firsts[0];
  CHECK_MSG(distinct > 0, "every cycle starts with document %d: orders repeat", firsts[0]);
  sf_tokens_free(&t);
}

static void test_determinism_and_suffix(const sf_corpus *c, sf_rng *rng) {
  sf_tokens a = {0}, b = {0};
  sf_pack_stats sa, sb;
  sf_error err;
  for (int i = 0; i < 200; i++) {
    int32_t p = (int32_t)sf_rng_below(rng, (uint64_t)c->n);
    int64_t P = c->prompt[p].n, cyc = others_total(c, p);
    uint64_t seed = sf_rng_below(rng, 4);
    int64_t L1 = P + (int64_t)sf_rng_below(rng, 5 * (uint64_t)cyc);
    int64_t L2 = L1 + (int64_t)sf_rng_below(rng, 5 * (uint64_t)cyc);
    REQUIRE(sf_pack_context(c, p, L1, seed, &a, &sa, &err) == SF_OK);
    REQUIRE(sf_pack_context(c, p, L2, seed, &b, &sb, &err) == SF_OK);
    CHECK_MSG(same_tokens(a.ids, b.ids + (L2 - L1), L1), "p=%d: L=%lld is not a suffix of L=%lld", p,
              (long long)L1, (long long)L2);
    /* same inputs, same ids */
    REQUIRE(sf_pack_context(c, p, L2, seed, &a, &sa, &err) == SF_OK);
    CHECK(a.n == b.n && same_tokens(a.ids, b.ids, a.n));
    CHECK(memcmp(&sa, &sb, sizeof sa) == 0);
  }
  /* Another seed gives another order; another problem another order too. */
  int64_t L = c->prompt[0].n + 3 * others_total(c, 0);
  REQUIRE(sf_pack_context(c, 0, L, 1, &a, &sa, &err) == SF_OK);
  REQUIRE(sf_pack_context(c, 0, L, 2, &b, &sb, &err) == SF_OK);
  CHECK(a.n == b.n && !same_tokens(a.ids, b.ids, a.n));
  REQUIRE(sf_pack_context(c, 0, L, 1, &b, &sb, &err) == SF_OK);
  CHECK(a.n == b.n && same_tokens(a.ids, b.ids, a.n));
  /* p = 1 and p = 2 share 10 other documents; their nearest-first orders differ. */
  REQUIRE(sf_pack_context(c, 1, c->prompt[1].n + others_total(c, 1), 7, &a, &sa, &err) == SF_OK);
  REQUIRE(sf_pack_context(c, 2, c->prompt[2].n + others_total(c, 2), 7, &b, &sb, &err) == SF_OK);
  int32_t oa[16], ob[16];
  int na = 0, nb = 0;
  for (int64_t pos = a.n - c->prompt[1].n; pos > 0 && na < 16; pos -= c->document[oa[na++]].n)
    oa[na] = a.ids[pos - 1] / 1000;
  for (int64_t pos = b.n - c->prompt[2].n; pos > 0 && nb < 16; pos -= c->document[ob[nb++]].n)
    ob[nb] = b.ids[pos - 1] / 1000;
  int same_order = 1, ia = 0, ib = 0;
  while (ia < na && ib < nb) { /* compare with 1 and 2 removed */
    if (oa[ia] == 2) { ia++; continue; }
    if (ob[ib] == 1) { ib++; continue; }
    same_order &= oa[ia++] == ob[ib++];
  }
  CHECK_MSG(!same_order, "problems 1 and 2 got the same filler order");
  sf_tokens_free(&a);
  sf_tokens_free(&b);
}

static void test_errors(sf_corpus *c) {
  sf_tokens t = {0};
  sf_pack_stats st;
  sf_error err;
  const int32_t p = 5;
  const int64_t P = c->prompt[p].n;
  char want[512];

  /* natural mode: the bare prompt, whatever was in out before */
  REQUIRE(sf_tokens_push(&t, 424242, &err) == SF_OK);
  CHECK(sf_pack_context(c, p, 0, 9, &t, &st, &err) == SF_OK);
  CHECK(t.n == P && same_tokens(t.ids, c->prompt[p].ids, P));
  CHECK_EQ_I64(st.tokens, P);
  CHECK_EQ_I64(st.prompt_tokens, P);
  CHECK_EQ_I64(st.filler_tokens, 0);
  CHECK_EQ_I64(st.documents, 0);
  CHECK(sf_pack_context(c, p, 0, 9, &t, NULL, &err) == SF_OK); /* stats optional */

  CHECK(sf_pack_context(c, p, P - 1, 0, &t, &st, &err) == SF_ERR_ARG);
  snprintf(want, sizeof want,
           "context %lld is shorter than the prompt of HumanEval/5 (%lld tokens); natural mode (context 0) gives the bare prompt",
           (long long)(P - 1), (long long)P);
  CHECK_STR_EQ(err.msg, want);
  CHECK_EQ_I64(t.n, 0);
  CHECK(sf_pack_context(c, p, 1, 0, &t, &st, &err) == SF_ERR_ARG);
  CHECK(sf_pack_context(c, p, -1, 0, &t, &st, &err) == SF_ERR_ARG);
  CHECK(sf_pack_context(c, -1, 100, 0, &t, &st, &err) == SF_ERR_ARG);
  CHECK(sf_pack_context(c, c->n, 100, 0, &t, &st, &err) == SF_ERR_ARG);

  /* Without names the message uses the index. */
  char **names = c->task_id;
  c->task_id = NULL;
  CHECK(sf_pack_context(c, p, P - 1, 0, &t, &st, &err) == SF_ERR_ARG);
  CHECK_MSG(strstr(err.msg, "prompt of problem #5 (") != NULL, "%s", err.msg);
  c->task_id = names;

  /* One problem: the prompt fits, any filler does not. */
  sf_corpus one = *c;
  one.n = 1;
  int64_t P0 = c->prompt[0].n;
  CHECK(sf_pack_context(&one, 0, P0, 0, &t, &st, &err) == SF_OK);
  CHECK(t.n == P0 && same_tokens(t.ids, c->prompt[0].ids, P0));
  CHECK(sf_pack_context(&one, 0, 0, 0, &t, &st, &err) == SF_OK);
  CHECK(sf_pack_context(&one, 0, P0 + 1, 0, &t, &st, &err) == SF_ERR_ARG);
  CHECK_MSG(strstr(err.msg, "no other problem") != NULL, "%s", err.msg);
  CHECK_EQ_I64(t.n, 0);

  /* Empty documents are skipped, not looped over forever. */
  sf_corpus holes = *c;
  holes.n = 3;
  sf_tokens saved = c->document[1];
  c->document[1].n = 0;
  CHECK(sf_pack_context(&holes, 0, P0 + 5 * c->document[2].n + 3, 0, &t, &st, &err) == SF_OK);
  CHECK_EQ_I64(st.cycles, 6);
  CHECK(check_structure(&holes, 0, P0 + 5 * c->document[2].n + 3, &t, &st) == 0);
  sf_tokens saved2 = c->document[2];
  c->document[2].n = 0;
  CHECK(sf_pack_context(&holes, 0, P0 + 1, 0, &t, &st, &err) == SF_ERR_ARG);
  c->document[1] = saved;
  c->document[2] = saved2;
  sf_tokens_free(&t);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_4m(const sf_corpus *c) {
  const int64_t L = 4194304;
  sf_tokens t = {0}, ref = {0};
  sf_pack_stats st, rst;
  sf_error err;
  double t0 = now_s();
  sf_status rc = sf_pack_context(c, 7, L, 3, &t, &st, &err);
  double dt = now_s() - t0;
  CHECK_MSG(rc == SF_OK, "%s", err.msg);
  if (rc != SF_OK) return;
  printf("synthetic 4M context: %.1f ms, %lld documents, %lld cycles\n", dt * 1e3, (long long)st.documents,
         (long long)st.cycles);
  CHECK(check_structure(c, 7, L, &t, &st) == 0);
  reference(c, 7, L, 3, &ref, &rst);
  CHECK(ref.n == t.n && same_tokens(ref.ids, t.ids, L));
  CHECK(memcmp(&rst, &st, sizeof st) == 0);
  sf_tokens_free(&t);
  sf_tokens_free(&ref);
}

int main(void) {
  sf_rng rng;
  sf_rng_seed(&rng, sf_test_seed());
  sf_corpus c = make_corpus(12, &rng, 1);
  test_lengths(&c, &rng);
  test_boundaries(&c);
  test_determinism_and_suffix(&c, &rng);
  test_errors(&c);
  test_4m(&c);
  sf_corpus_free(&c);
  CHECK(c.n == 0 && c.prompt == NULL && c.document == NULL && c.task_id == NULL);
  return sf_test_finish("test_prompts");
}
