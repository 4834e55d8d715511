/* Small helpers the cpu Mamba op tests (test_ops_mamba_*.c) share. */
#ifndef SCANFLASH_TESTS_MAMBA_TEST_UTIL_H
#define SCANFLASH_TESTS_MAMBA_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static inline void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  REQUIRE(p);
  return p;
}
#define FALLOC(n) ((float *)xmalloc((size_t)(n) * sizeof(float)))
#define DALLOC(n) ((double *)xmalloc((size_t)(n) * sizeof(double)))

/* The larger of two errors; NaN wins so a NaN is never hidden. */
static inline double worst(double a, double b) { return isnan(a) || isnan(b) ? NAN : (a > b ? a : b); }
/* Bit-identical arrays (the padded/varlen/one-at-a-time equalities). */
static inline int same(const float *a, const float *b, int64_t n) {
  return n == 0 || !memcmp(a, b, (size_t)n * sizeof(float));
}
static inline int64_t total_of(int32_t batch, const int32_t *len) {
  int64_t t = 0;
  for (int32_t b = 0; b < batch; b++) t += len[b];
  return t;
}

#endif
