/* The item runner on tiny models (cpu backend): records and metrics of
 * generate and prefill items, per-sequence generation lengths, chunked
 * prefill, the model cache, and every way an item ends other than ok
 * (skipped, injected failure, timeout, interrupted, oom). */
#include <math.h>

#include "model/model.h"
#include "runner/runner.h"
#include "runner/runner_internal.h"
#include "scanflash/rng.h"
#include "test.h"

static sf_work_item make_item(const char *key, sf_item_kind kind, int32_t batch, int32_t gen) {
  sf_work_item w;
  memset(&w, 0, sizeof w);
  snprintf(w.key, sizeof w.key, "%s", key);
  w.kind = kind;
  snprintf(w.arch, sizeof w.arch, "test");
  snprintf(w.model, sizeof w.model, "tiny");
  snprintf(w.dtype, sizeof w.dtype, "f32");
  w.batch = batch;
  w.gen = gen;
  w.repeats = 3;
  w.warmup = 1;
  w.gpus = 1;
  w.seed = 7;
  w.est_bytes = 12345;
  return w;
}

typedef struct seqs {
  int32_t ids[4096];
  int32_t lens[8], gen[8];
  sf_runner_batch in;
} seqs;

static void make_seqs(seqs *s, sf_rng *rng, int32_t batch, const int32_t *lens, const int32_t *gen, int32_t vocab) {
  int64_t off = 0;
  for (int32_t b = 0; b < batch; b++) {
    s->lens[b] = lens[b];
    s->gen[b] = gen ? gen[b] : 0;
    for (int32_t i = 0; i < lens[b]; i++) s->ids[off + i] = (int32_t)sf_rng_below(rng, (uint64_t)vocab);
    off += lens[b];
  }
  s->in = (sf_runner_batch){.batch = batch, .ids = s->ids, .lens = s->lens, .gen = s->gen};
}

static int poll_count;
static int poll_after(void *user) { return ++poll_count > *(int *)user; }

static void test_stats(void) {
  const double x[] = {4, 1, 3, 2};
  CHECK(fabs(sf_stat_median(x, 4) - 2.5) < 1e-12);
  CHECK(fabs(sf_stat_quantile(x, 4, 0.0) - 1) < 1e-12);
  CHECK(fabs(sf_stat_quantile(x, 4, 1.0) - 4) < 1e-12);
  CHECK(fabs(sf_stat_quantile(x, 4, 0.9) - 3.7) < 1e-12); /* numpy.quantile([1,2,3,4], 0.9) */
  CHECK(x[0] == 4);                                       /* input untouched */
  CHECK(isnan(sf_stat_median(x, 0)));
  CHECK(sf_stat_cv(x, 1) == 0);
  const double y[] = {1, 3};
  CHECK(fabs(sf_stat_cv(y, 2) - sqrt(2.0) / 2.0) < 1e-12);
}

/* A generate item with different generation lengths per sequence. */
static void test_generate(sf_runner *r, const sf_model_config *cfg, sf_rng *rng, const char *name) {
  seqs s;
  const int32_t lens[2] = {40, 23}, gen[2] = {5, 3};
  make_seqs(&s, rng, 2, lens, gen, cfg->vocab_size);
  sf_work_item it = make_item("00000000000000a1", SF_ITEM_GENERATE, 2, SF_GEN_CANONICAL);
  sf_runner_model m = {.cfg = cfg};
  sf_runner_output out;
  sf_error err;
  CHECK(sf_runner_run(r, &it, &m, &s.in, &out, &err) == SF_OK);
  const sf_item_result *res = &out.result;
  CHECK_MSG(res->status == SF_STATUS_OK, "%s: %s", name, res->message);
  CHECK_STR_EQ(res->key, it.key);
  CHECK_EQ_I64(out.n_repeats, 3);
  CHECK_EQ_I64(out.n_steps, 3 * 4); /* max(gen) - 1 steps per repeat */
  CHECK_EQ_I64(res->prompt_tokens, 63);
  CHECK_EQ_I64(res->generated_tokens, 8);
  for (int64_t i = 0; i < out.n_repeats; i++) {
    CHECK_EQ_I64(out.repeats[i].repeat, i);
    CHECK_STR_EQ(out.repeats[i].key, it.key);
    CHECK(out.repeats[i].prefill_s > 0 && out.repeats[i].decode_s > 0);
    CHECK(fabs(out.repeats[i].total_s - out.repeats[i].prefill_s - out.repeats[i].decode_s) < 1e-12);
    CHECK(isnan(out.repeats[i].energy_j));
  }
  for (int64_t i = 0; i < out.n_steps; i++) {
    CHECK_EQ_I64(out.steps[i].repeat, i / 4);
    CHECK_EQ_I64(out.steps[i].step, i % 4);
    CHECK_EQ_I64(out.steps[i].position, 40 + i % 4); /* the longest sequence's cache */
    CHECK(out.steps[i].latency_s > 0);
  }
  CHECK(res->ttft_s > 0 && isfinite(res->prefill_tok_s) && isfinite(res->decode_tok_s) && isfinite(res->e2e_tok_s));
  CHECK(fabs(res->prefill_tok_s * res->ttft_s - 63) < 1e-6);
  CHECK(res->tpot_p50_s <= res->tpot_p90_s && res->tpot_p90_s <= res->tpot_p99_s);
  CHECK(res->prefill_cv >= 0);
  CHECK(res->weights_bytes > 0 && res->peak_bytes > res->weights_bytes);
  if (cfg->arch == SF_ARCH_TRANSFORMER) CHECK(res->kv_cache_bytes > 0 && res->state_bytes == 0);
  else CHECK(res->state_bytes > 0 && res->kv_cache_bytes == 0);
  CHECK(res->est_bytes > 0 && res->est_bytes != 12345); /* re-estimated with the real lengths */
  CHECK(isnan(res->energy_j) && isnan(res->j_per_token) && isnan(res->ref_max_rel_err));
  CHECK(res->t_end >= res->t_start && res->t_start > 1.6e9);
  CHECK_EQ_I64(res->device, -1);
  CHECK(res->host[0]);

  /* The same item again reuses the model (no re-initialisation). */
  const void *weights = r->model.tensors[0].data;
  CHECK(sf_runner_run(r, &it, &m, &s.in, &out, &err) == SF_OK && out.result.status == SF_STATUS_OK);
  CHECK(r->have_model && r->model.tensors[0].data == weights);
  /* Another seed builds another model. */
  it.seed = 8;
  CHECK(sf_runner_run(r, &it, &m, &s.in, &out, &err) == SF_OK && out.result.status == SF_STATUS_OK);
  CHECK_EQ_I64(r->model_seed, 8);

  /* Chunked prefill: 16 tokens per sequence per engine call, same records. */
  it.prefill_chunk = 16;
  CHECK(sf_runner_run(r, &it, &m, &s.in, &out, &err) == SF_OK);
  CHECK_MSG(out.result.status == SF_STATUS_OK, "%s chunked: %s", name, out.result.message);
  CHECK_EQ_I64(out.n_steps, 12);
}

static void test_prefill(sf_runner *r, const sf_model_config *cfg, sf_rng *rng) {
  seqs s;
  const int32_t lens[1] = {50};
  make_seqs(&s, rng, 1, lens, NULL, cfg->vocab_size);
  sf_work_item it = make_item("00000000000000b2", SF_ITEM_PREFILL, 1, 0);
  it.repeats = 2;
  sf_runner_model m = {.cfg = cfg};
  sf_runner_output out;
  sf_error err;
  CHECK(sf_runner_run(r, &it, &m, &s.in, &out, &err) == SF_OK);
  CHECK_MSG(out.result.status == SF_STATUS_OK, "%s", out.result.message);
  CHECK_EQ_I64(out.n_repeats, 2);
  CHECK_EQ_I64(out.n_steps, 0);
  CHECK_EQ_I64(out.result.generated_tokens, 0);
  CHECK(out.result.ttft_s > 0 && isnan(out.result.decode_tok_s) && isnan(out.result.tpot_p50_s));
  CHECK(out.repeats[0].decode_s == 0);
}

static void test_not_run(sf_runner *r, const sf_model_config *cfg, sf_rng *rng) {
  seqs s;
  const int32_t lens[1] = {30}, gen[1] = {400};
  make_seqs(&s, rng, 1, lens, gen, cfg->vocab_size);
  sf_runner_model m = {.cfg = cfg};
  sf_runner_output out;
  sf_error err;

  sf_work_item k = make_item("00000000000000c3", SF_ITEM_KERNELS, 1, 0);
  CHECK(sf_runner_run(r, &k, &m, NULL, &out, &err) == SF_OK);
  CHECK(out.result.status == SF_STATUS_SKIPPED && strstr(out.result.message, "need the cuda backend"));

  sf_work_item g = make_item("00000000000000c4", SF_ITEM_GENERATE, 1, 400);
  g.gpus = 4;
  CHECK(sf_runner_run(r, &g, &m, NULL, &out, &err) == SF_OK);
  CHECK(out.result.status == SF_STATUS_SKIPPED);
  CHECK_STR_EQ(out.result.message, "needs 4 GPUs: a context-parallel item runs on a group of 4 ranks of one node "
                                   "(scanflash run hands it to one)");
  g.gpus = 1;

  /* The injected failure (the runner was created with this key). */
  sf_work_item f = make_item("00000000deadbeef", SF_ITEM_GENERATE, 1, 400);
  CHECK(sf_runner_run(r, &f, &m, &s.in, &out, &err) == SF_OK);
  CHECK(out.result.status == SF_STATUS_ERROR);
  CHECK_STR_EQ(out.result.message, "injected failure (SCANFLASH_FAIL_ITEM)");
  CHECK_EQ_I64(out.n_repeats, 0);

  /* A deadline that passes during the item: timeout, no records. */
  g.timeout_s = 0.02;
  g.repeats = 50;
  CHECK(sf_runner_run(r, &g, &m, &s.in, &out, &err) == SF_OK);
  CHECK_MSG(out.result.status == SF_STATUS_TIMEOUT, "status %d: %s", out.result.status, out.result.message);
  CHECK(strstr(out.result.message, "timed out after") != NULL);
  CHECK_EQ_I64(out.n_repeats + out.n_steps, 0);
  CHECK(isnan(out.result.ttft_s));
  g.timeout_s = 0;
  g.repeats = 1;

  /* The poll asks to stop at the 10th check point: interrupted mid-decode. */
  int limit = 10;
  poll_count = 0;
  r->cfg.poll = poll_after;
  r->cfg.poll_user = &limit;
  CHECK(sf_runner_run(r, &g, &m, &s.in, &out, &err) == SF_OK);
  CHECK_MSG(out.result.status == SF_STATUS_INTERRUPTED, "%s", out.result.message);
  CHECK(strstr(out.result.message, "before decode step") != NULL);
  r->cfg.poll = NULL;

  /* Bad inputs are the caller's bug, not the item's status. */
  s.lens[0] = 0;
  CHECK(sf_runner_run(r, &g, &m, &s.in, &out, &err) == SF_ERR_ARG);
}

#if defined(__SANITIZE_ADDRESS__)
#define SF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SF_ASAN 1
#endif
#endif

/* An embedding too large for memory: status oom, and the runner goes on. */
static void test_oom(sf_runner *r, const sf_model_config *tiny, sf_rng *rng) {
#ifdef SF_ASAN
  (void)r, (void)tiny, (void)rng;
  printf("oom case skipped under AddressSanitizer (it aborts on huge allocations)\n");
#else
  sf_model_config big = *tiny;
  big.vocab_size = 1 << 30; /* 1G x 64 x 4 bytes = 256 GiB */
  seqs s;
  const int32_t lens[1] = {10}, gen[1] = {2};
  make_seqs(&s, rng, 1, lens, gen, tiny->vocab_size);
  sf_work_item it = make_item("00000000000000d5", SF_ITEM_GENERATE, 1, 2);
  sf_runner_model m = {.cfg = &big};
  sf_runner_output out;
  sf_error err;
  CHECK(sf_runner_run(r, &it, &m, &s.in, &out, &err) == SF_OK);
  CHECK_MSG(out.result.status == SF_STATUS_OOM, "status %d: %s", out.result.status, out.result.message);
  CHECK(!r->have_model);
  m.cfg = tiny;
  CHECK(sf_runner_run(r, &it, &m, &s.in, &out, &err) == SF_OK && out.result.status == SF_STATUS_OK);
#endif
}

int main(void) {
  sf_rng rng;
  sf_rng_seed(&rng, sf_test_seed());
  test_stats();
  sf_runner_config rc = {.rank = 3, .num_threads = 0, .fail_key = "00000000deadbeef"};
  sf_runner *r = NULL;
  sf_error err;
  REQUIRE(sf_runner_create(&rc, &r, &err) == SF_OK);
  sf_runner_device d;
  sf_runner_describe(r, &d);
  CHECK_STR_EQ(d.backend, "cpu");
  CHECK(d.device == -1 && d.memory_bytes > 0 && d.name[0]);

  static const char *const presets[] = {"tiny-mamba1", "tiny-mamba2", "tiny-transformer"};
  for (int p = 0; p < 3; p++) {
    sf_model_config cfg;
    REQUIRE(sf_model_preset(presets[p], &cfg, &err) == SF_OK);
    test_generate(r, &cfg, &rng, presets[p]);
    test_prefill(r, &cfg, &rng);
    if (p == 2) {
      test_not_run(r, &cfg, &rng);
      test_oom(r, &cfg, &rng);
    }
  }
  sf_runner_free(r);
  return sf_test_finish("test_runner");
}
