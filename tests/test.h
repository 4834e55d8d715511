/* A minimal unit-test harness: CHECK records a failure and goes on, so one
 * run reports every broken case; the test returns the failure count (as its
 * exit status, 0 = pass). Random inputs come from a seed that is printed and
 * can be fixed with SF_TEST_SEED to replay a failure. */
#ifndef SCANFLASH_TEST_H
#define SCANFLASH_TEST_H

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int sf_test_failures = 0;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
      sf_test_failures++;                                                        \
    }                                                                            \
  } while (0)

#define CHECK_MSG(cond, ...)                                                     \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);  \
      fprintf(stderr, __VA_ARGS__);                                              \
      fputc('\n', stderr);                                                       \
      sf_test_failures++;                                                        \
    }                                                                            \
  } while (0)

#define CHECK_EQ_I64(a, b)                                                               \
  do {                                                                                   \
    long long sf_a_ = (long long)(a), sf_b_ = (long long)(b);                            \
    CHECK_MSG(sf_a_ == sf_b_, "%s = %lld, %s = %lld", #a, sf_a_, #b, sf_b_);             \
  } while (0)

#define CHECK_STR_EQ(a, b)                                                               \
  do {                                                                                   \
    const char *sf_a_ = (a), *sf_b_ = (b);                                               \
    CHECK_MSG(sf_a_ && sf_b_ && !strcmp(sf_a_, sf_b_), "'%s' != '%s'", sf_a_ ? sf_a_ : "(null)", \
              sf_b_ ? sf_b_ : "(null)");                                                 \
  } while (0)

/* Stops the test: a precondition (data file, allocation) is missing. */
#define REQUIRE(cond)                                                            \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

/* Exit status ctest treats as "skipped" (SKIP_RETURN_CODE 77). */
#define SF_TEST_SKIP(...)                   \
  do {                                      \
    fprintf(stdout, "SKIPPED: " __VA_ARGS__); \
    fputc('\n', stdout);                    \
    exit(77);                               \
  } while (0)

/* A fresh seed each run unless SF_TEST_SEED is set; printed either way. */
static inline uint64_t sf_test_seed(void) {
  const char *s = getenv("SF_TEST_SEED");
  uint64_t seed = s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) ^ ((uint64_t)clock() << 20));
  printf("seed %" PRIu64 " (replay with SF_TEST_SEED=%" PRIu64 ")\n", seed, seed);
  return seed;
}

/* Path from an environment variable the test harness sets; skip when unset. */
static inline const char *sf_test_env_path(const char *var) {
  const char *p = getenv(var);
  if (!p || !*p) SF_TEST_SKIP("%s is not set (run through ctest)", var);
  return p;
}

static inline int sf_test_finish(const char *name) {
  if (sf_test_failures) fprintf(stderr, "%s: %d check(s) failed\n", name, sf_test_failures);
  else printf("%s: all checks passed\n", name);
  return sf_test_failures ? 1 : 0;
}

#endif
