/* Helpers shared by the engine tests: tiny models on the cpu backend, random
 * ids, relative errors. */
#ifndef SCANFLASH_TEST_ENGINE_UTIL_H
#define SCANFLASH_TEST_ENGINE_UTIL_H

#include "engine/engine.h"
#include "model/model.h"
#include "ops/op_table.h"
#include "scanflash/rng.h"
#include "test.h"

static const char *const tiny_presets[] = {"tiny-mamba1", "tiny-mamba2", "tiny-transformer"};
enum { N_TINY = 3 };

typedef struct test_model {
  sf_op_ctx ctx;
  sf_model m;
} test_model;

/* A cpu model of configuration cfg with seeded random weights. */
static inline void tm_init_cfg(test_model *t, const sf_model_config *cfg, uint64_t seed) {
  sf_error err;
  REQUIRE(sf_cpu_ctx_init(&t->ctx, 0, &err) == SF_OK);
  if (sf_model_init_random(cfg, &t->ctx, seed, &t->m, &err) != SF_OK) {
    fprintf(stderr, "%s\n", err.msg);
    REQUIRE(0);
  }
}

/* A preset (n_layers, n_kv_heads overridden when > 0) with random weights. */
static inline void tm_init_shape(test_model *t, const char *preset, int32_t layers, int32_t kv_heads,
                                 uint64_t seed) {
  sf_error err;
  sf_model_config cfg;
  if (sf_model_preset(preset, &cfg, &err) != SF_OK) {
    fprintf(stderr, "%s\n", err.msg);
    REQUIRE(0);
  }
  if (layers > 0) cfg.n_layers = layers;
  if (kv_heads > 0) cfg.n_kv_heads = kv_heads;
  tm_init_cfg(t, &cfg, seed);
}

static inline void tm_init(test_model *t, const char *preset, int32_t layers, uint64_t seed) {
  tm_init_shape(t, preset, layers, 0, seed);
}

static inline void tm_free(test_model *t) {
  sf_model_free(&t->m);
  sf_cpu_ctx_destroy(&t->ctx);
}

static inline sf_session *tm_session(test_model *t, int32_t batch, int64_t max_len, int64_t chunk) {
  sf_error err;
  sf_session *s = NULL;
  if (sf_session_create(&t->m, batch, max_len, chunk, &s, &err) != SF_OK) {
    fprintf(stderr, "session: %s\n", err.msg);
    REQUIRE(0);
  }
  return s;
}

static inline void random_ids(sf_rng *r, int32_t *ids, int64_t n, int32_t vocab) {
  for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)sf_rng_below(r, (uint64_t)vocab);
}

/* ||a - b|| / ||b|| over n floats (double accumulation). */
static inline double rel_err(const float *a, const float *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)a[i] - (double)b[i];
    num += d * d;
    den += (double)b[i] * (double)b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

static inline int all_finite(const float *a, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(a[i])) return 0;
  return 1;
}

static inline void *xmalloc(size_t n) {
  void *p = calloc(n ? n : 1, 1);
  REQUIRE(p);
  return p;
}

/* expr returns sf_status and fills `err` (an sf_error in scope). */
#define CHECK_OK(expr)                                                         \
  do {                                                                         \
    sf_status rc_ = (expr);                                                    \
    CHECK_MSG(rc_ == SF_OK, "%s -> %s: %s", #expr, sf_status_name(rc_), err.msg); \
  } while (0)

#endif
