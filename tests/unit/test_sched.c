/* The scheduler's pieces that need no MPI job: the wire format (round trip,
 * and every malformed report refused), the queue (shard, skip, largest cost
 * first), progress and ETA, the spec's canonical text reproducing every key
 * (workers expand what rank 0 broadcasts), and an item's sequences built
 * from the real corpus (skipped without the data files). */
#include <math.h>

#include "data/humaneval.h"
#include "prompts/prompts.h"
#include "scanflash/files.h"
#include "sched/sched_internal.h"
#include "sched/wire.h"
#include "spec/spec.h"
#include "test.h"

static void test_wire(void) {
  sf_item_result res;
  memset(&res, 0, sizeof res);
  snprintf(res.key, sizeof res.key, "0123456789abcdef");
  res.status = SF_STATUS_ERROR;
  snprintf(res.message, sizeof res.message, "boom");
  res.ttft_s = 1.5;
  sf_repeat_result reps[3];
  sf_step_result steps[5];
  memset(reps, 0, sizeof reps);
  memset(steps, 0, sizeof steps);
  for (int i = 0; i < 3; i++) reps[i].prefill_s = i + 0.25;
  for (int i = 0; i < 5; i++) steps[i].position = 100 + i;
  void *buf;
  size_t size;
  sf_error err;
  REQUIRE(sf_wire_pack(SF_WIRE_RESULT, 2, 1, &res, reps, 3, steps, 5, NULL, 0, NULL, &buf, &size, &err) == SF_OK);
  sf_wire_msg m;
  CHECK(sf_wire_unpack(buf, size, &m, &err) == SF_OK);
  CHECK(m.h.kind == SF_WIRE_RESULT && m.h.rank == 2 && m.h.signalled == 1);
  CHECK(m.h.n_repeats == 3 && m.h.n_steps == 5 && m.h.n_kernels == 0 && !m.text);
  CHECK_STR_EQ(m.result->key, "0123456789abcdef");
  CHECK_STR_EQ(m.result->message, "boom");
  CHECK(m.result->ttft_s == 1.5 && m.repeats[2].prefill_s == 2.25 && m.steps[4].position == 104);
  CHECK(((uintptr_t)m.steps & 7) == 0);

  /* Truncated, padded, foreign, lying about its counts: refused. */
  CHECK(sf_wire_unpack(buf, size - 1, &m, &err) == SF_ERR_FORMAT);
  CHECK(strstr(err.msg, "malformed report") != NULL);
  CHECK(sf_wire_unpack(buf, 10, &m, &err) == SF_ERR_FORMAT);
  unsigned char *bigger = malloc(size + 8);
  REQUIRE(bigger);
  memcpy(bigger, buf, size);
  CHECK(sf_wire_unpack(bigger, size + 8, &m, &err) == SF_ERR_FORMAT);
  free(bigger);
  sf_wire_header *h = buf;
  h->magic ^= 1;
  CHECK(sf_wire_unpack(buf, size, &m, &err) == SF_ERR_FORMAT && strstr(err.msg, "magic"));
  h->magic ^= 1;
  h->n_steps = -1;
  CHECK(sf_wire_unpack(buf, size, &m, &err) == SF_ERR_FORMAT);
  h->n_steps = 4;
  CHECK(sf_wire_unpack(buf, size, &m, &err) == SF_ERR_FORMAT);
  h->n_steps = 5;
  h->kind = 9;
  CHECK(sf_wire_unpack(buf, size, &m, &err) == SF_ERR_FORMAT);
  free(buf);

  /* Fatal reports carry their text; requests nothing. */
  REQUIRE(sf_wire_pack(SF_WIRE_FATAL, 1, 0, NULL, NULL, 0, NULL, 0, NULL, 0, "out of memory", &buf, &size, &err) ==
          SF_OK);
  CHECK(sf_wire_unpack(buf, size, &m, &err) == SF_OK && m.h.kind == SF_WIRE_FATAL);
  CHECK_STR_EQ(m.text, "out of memory");
  ((char *)buf)[size - 1] = 'x';
  CHECK(sf_wire_unpack(buf, size, &m, &err) == SF_ERR_FORMAT);
  free(buf);
  REQUIRE(sf_wire_pack(SF_WIRE_REQUEST, 1, 0, NULL, NULL, 0, NULL, 0, NULL, 0, NULL, &buf, &size, &err) == SF_OK);
  CHECK(size == sizeof(sf_wire_header));
  CHECK(sf_wire_unpack(buf, size, &m, &err) == SF_OK && m.h.kind == SF_WIRE_REQUEST && !m.result);
  free(buf);
  CHECK(sf_wire_pack(SF_WIRE_RESULT, 1, 0, NULL, NULL, 0, NULL, 0, NULL, 0, NULL, &buf, &size, &err) != SF_OK);
  /* A context-parallel member's "done": the item's key as its text, no rows. */
  REQUIRE(sf_wire_pack(SF_WIRE_DONE, 3, 0, NULL, NULL, 0, NULL, 0, NULL, 0, "00000000deadbeef", &buf, &size, &err) ==
          SF_OK);
  CHECK(sf_wire_unpack(buf, size, &m, &err) == SF_OK && m.h.kind == SF_WIRE_DONE && !m.result && m.h.rank == 3);
  CHECK_STR_EQ(m.text, "00000000deadbeef");
  free(buf);
}

static sf_status spec_of(const char *const *args, int n, sf_spec *spec, sf_error *err) {
  char *argv[32];
  char *rest[33];
  int n_rest;
  for (int i = 0; i < n; i++) argv[i] = (char *)args[i];
  return sf_spec_from_args(n, argv, NULL, spec, &n_rest, rest, err);
}

static int skip_odd_cost(void *user, const sf_work_item *w) {
  (void)user;
  return w->index % 3 == 1;
}

static void test_queue_and_canonical(void) {
  static const char *const args[] = {"run",          "--model", "tiny-mamba1,tiny-transformer", "--context", "256,512,1k",
                                     "--batch",      "1,2",     "--problems",                   "0-4",       "--gen",
                                     "8,canonical",  "--kind",  "generate,prefill"};
  sf_spec spec;
  sf_error err;
  REQUIRE(spec_of(args, (int)(sizeof args / sizeof *args), &spec, &err) == SF_OK);
  sf_plan all, q;
  REQUIRE(sf_spec_expand(&spec, &all, &err) == SF_OK);
  REQUIRE(sf_spec_expand(&spec, &q, &err) == SF_OK);

  /* Workers expand the canonical text: the same items, keys and estimates. */
  sf_spec again;
  REQUIRE(sf_spec_parse_yaml(spec.canonical, strlen(spec.canonical), "canonical", &again, &err) == SF_OK);
  sf_plan p2;
  REQUIRE(sf_spec_expand(&again, &p2, &err) == SF_OK);
  CHECK_EQ_I64(p2.n_items, all.n_items);
  for (int32_t i = 0; i < all.n_items && i < p2.n_items; i++) {
    CHECK_STR_EQ(p2.items[i].item.key, all.items[i].item.key);
    CHECK(p2.items[i].item.est_cost == all.items[i].item.est_cost);
    CHECK(p2.items[i].item.model_index == all.items[i].item.model_index);
    CHECK(p2.items[i].item.first_problem == all.items[i].item.first_problem);
  }
  CHECK_STR_EQ(again.canonical, spec.canonical);
  sf_plan_free(&p2);
  sf_spec_free(&again);

  int32_t skipped, other;
  sf_sched_queue(&q, 1, 2, skip_odd_cost, NULL, &skipped, &other);
  int32_t want = 0, want_skip = 0;
  for (int32_t i = 0; i < all.n_items; i++)
    if (i % 2 == 1) {
      if (i % 3 == 1) want_skip++;
      else want++;
    }
  CHECK_EQ_I64(q.n_items, want);
  CHECK_EQ_I64(skipped, want_skip);
  CHECK_EQ_I64(other, all.n_items - all.n_items / 2);
  for (int32_t i = 0; i < q.n_items; i++) {
    CHECK(q.items[i].item.index % 2 == 1 && q.items[i].item.index % 3 != 1);
    if (i) CHECK(q.items[i - 1].item.est_cost >= q.items[i].item.est_cost);
  }
  sf_plan_free(&q);
  sf_plan_free(&all);
  sf_spec_free(&spec);

  /* The spec files shipped in sweeps/ round-trip too. */
  const char *src = getenv("SF_SOURCE_DIR");
  if (src) {
    char path[4096];
    snprintf(path, sizeof path, "%s/sweeps/tiny.yaml", src);
    sf_spec a, b;
    sf_plan pa, pb;
    REQUIRE(sf_spec_load_file(path, &a, &err) == SF_OK);
    REQUIRE(sf_spec_parse_yaml(a.canonical, strlen(a.canonical), "canonical", &b, &err) == SF_OK);
    REQUIRE(sf_spec_expand(&a, &pa, &err) == SF_OK && sf_spec_expand(&b, &pb, &err) == SF_OK);
    CHECK_EQ_I64(pa.n_items, pb.n_items);
    for (int32_t i = 0; i < pa.n_items && i < pb.n_items; i++) CHECK_STR_EQ(pa.items[i].item.key, pb.items[i].item.key);
    sf_plan_free(&pa);
    sf_plan_free(&pb);
    sf_spec_free(&a);
    sf_spec_free(&b);
  }
}

static void test_progress(void) {
  sf_progress p;
  sf_progress_init(&p, 4, 10.0, 1000.0);
  p.t_first_run = 1000.0;
  sf_work_item w;
  memset(&w, 0, sizeof w);
  w.est_cost = 2.5;
  w.repeats = 2;
  w.warmup = 1;
  sf_item_result ok, bad;
  memset(&ok, 0, sizeof ok);
  memset(&bad, 0, sizeof bad);
  ok.prompt_tokens = 100;
  ok.generated_tokens = 10;
  bad.status = SF_STATUS_ERROR;
  sf_progress_item(&p, &w, &ok, 1);
  sf_progress_item(&p, &w, &bad, 1);
  char line[256];
  sf_progress_line(&p, 1010.0, line, sizeof line);
  /* 5 of 10 cost units in 10 s: 10 s to go; 330 tokens in 10 s. */
  CHECK_MSG(!strcmp(line, "2/4 items, 1 failed, 33 tok/s, 00:10 elapsed, ETA 00:10"), "'%s'", line);
  char d[32];
  sf_format_duration(3725, d, sizeof d);
  CHECK_STR_EQ(d, "1:02:05");
  sf_format_duration(NAN, d, sizeof d);
  CHECK_STR_EQ(d, "?");
  sf_progress_init(&p, 4, 10.0, 1000.0);
  sf_progress_line(&p, 1001.0, line, sizeof line);
  CHECK(strstr(line, "ETA ?") != NULL);
}

/* Items' sequences from the real corpus. */
static void test_batch(void) {
  const char *data = getenv("SF_TEST_DATA"), *tokp = getenv("SF_TEST_TOKENIZER");
  if (!data || !tokp || !sf_file_exists(data) || !sf_file_exists(tokp)) {
    printf("batch cases skipped: SF_TEST_DATA / SF_TEST_TOKENIZER not set or missing\n");
    return;
  }
  sf_error err;
  sf_problem_set set = {0};
  sf_tokenizer *tok = NULL;
  sf_corpus c = {0};
  REQUIRE(sf_humaneval_load(data, &set, &err) == SF_OK);
  REQUIRE(sf_tokenizer_load(tokp, &tok, &err) == SF_OK);
  REQUIRE(sf_corpus_build(&set, tok, &c, &err) == SF_OK);
  static const char *const args[] = {"run", "--model", "tiny-mamba1", "--context", "0,512", "--batch", "3",
                                     "--problems", "5,9,20,33", "--gen", "canonical"};
  sf_spec spec;
  REQUIRE(spec_of(args, (int)(sizeof args / sizeof *args), &spec, &err) == SF_OK);
  sf_plan plan;
  REQUIRE(sf_spec_expand(&spec, &plan, &err) == SF_OK);
  sf_sched_batch b;
  memset(&b, 0, sizeof b);
  int seen_natural = 0, seen_packed = 0;
  for (int32_t i = 0; i < plan.n_items; i++) {
    const sf_work_item *w = &plan.items[i].item;
    sf_runner_batch in;
    REQUIRE(sf_sched_build_batch(&spec, &c, w, &b, &in, &err) == SF_OK);
    CHECK_EQ_I64(in.batch, 3);
    int64_t off = 0;
    for (int32_t g = 0; g < 3; g++) {
      const int32_t p = spec.problems[(w->first_problem + g) % spec.n_problems];
      if (w->context == 0) {
        CHECK_EQ_I64(in.lens[g], c.prompt[p].n);
        CHECK(!memcmp(in.ids + off, c.prompt[p].ids, (size_t)in.lens[g] * sizeof(int32_t)));
        seen_natural++;
      } else {
        CHECK_EQ_I64(in.lens[g], 512);
        /* ends with the problem's prompt */
        CHECK(!memcmp(in.ids + off + 512 - c.prompt[p].n, c.prompt[p].ids, (size_t)c.prompt[p].n * sizeof(int32_t)));
        seen_packed++;
      }
      CHECK_EQ_I64(in.gen[g], c.document[p].n - c.prompt[p].n);
      off += in.lens[g];
    }
  }
  CHECK(seen_natural == 6 && seen_packed == 6); /* 2 groups of 3 (the last wraps) per context */
  sf_sched_batch_free(&b);
  sf_plan_free(&plan);
  sf_spec_free(&spec);
  sf_corpus_free(&c);
  sf_tokenizer_free(tok);
  sf_problem_set_free(&set);
}

int main(void) {
  test_wire();
  test_queue_and_canonical();
  test_progress();
  test_batch();
  return sf_test_finish("test_sched");
}
