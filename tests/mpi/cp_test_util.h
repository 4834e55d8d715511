/* What the context-parallel tests (test_cp_*.c, under mpirun) share: MPI and
 * the group's transport, the cpu op context, the same random inputs on every
 * rank (a fixed seed, SF_TEST_SEED to change it), comparisons, and one exit
 * status for the whole job. */
#ifndef SCANFLASH_TESTS_CP_TEST_UTIL_H
#define SCANFLASH_TESTS_CP_TEST_UTIL_H

#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_table.h"
#include "parallel/transport.h"
#include "scanflash/rng.h"
#include "test.h"

#define CP_TOL 1e-5 /* relative L2, fp32: only the order of the sums differs */

static double cp_worst = 0; /* the largest error seen, for the summary */

typedef struct cp_env {
  sf_op_ctx ctx;
  sf_transport *t;
  int rank, k;
  sf_rng rng;
} cp_env;

static inline void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  REQUIRE(p);
  return p;
}
#define FALLOC(n) ((float *)xmalloc((size_t)(n) * sizeof(float)))

/* Every rank draws the same stream: inputs are global, each rank keeps its shard. */
static inline void fill_normal(cp_env *e, float *p, int64_t n, float scale) {
  for (int64_t i = 0; i < n; i++) p[i] = scale * sf_rng_normal(&e->rng);
}
static inline void fill_nan(float *p, int64_t n) {
  for (int64_t i = 0; i < n; i++) p[i] = NAN;
}

/* ||got - want|| / ||want|| over n values; a NaN anywhere gives NaN. */
static inline double rel_err(const float *got, const float *want, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(got[i]) || isnan(want[i])) return NAN;
    const double d = (double)got[i] - want[i];
    num += d * d;
    den += (double)want[i] * want[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Checks one comparison and reports it with the rank. */
#define CHECK_CLOSE(e, what, err_value)                                                       \
  do {                                                                                        \
    const double sf_e_ = (err_value);                                                         \
    cp_worst = isnan(sf_e_) || sf_e_ > cp_worst ? sf_e_ : cp_worst;                           \
    CHECK_MSG(sf_e_ <= CP_TOL, "rank %d/%d: %s: relative error %.3g > %g", (e)->rank, (e)->k, \
              what, sf_e_, CP_TOL);                                                           \
  } while (0)

/* A call's status: a failure is a failed check with its message. */
static inline int cp_ok(const cp_env *e, sf_status st, const sf_error *err, const char *what) {
  CHECK_MSG(st == SF_OK, "rank %d/%d: %s: %s", e->rank, e->k, what, err->msg);
  return st == SF_OK;
}

static inline void cp_init(cp_env *e, int *argc, char ***argv) {
  MPI_Init(argc, argv);
  sf_error err;
  REQUIRE(sf_cpu_ctx_init(&e->ctx, 1, &err) == SF_OK);
  REQUIRE(sf_transport_mpi_create(MPI_COMM_WORLD, &e->t, &err) == SF_OK);
  e->rank = e->t->rank;
  e->k = e->t->size;
  const char *s = getenv("SF_TEST_SEED");
  uint64_t seed = s ? strtoull(s, NULL, 0) : 8;
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  if (e->rank == 0) printf("k = %d ranks, seed %llu (SF_TEST_SEED)\n", e->k, (unsigned long long)seed);
  sf_rng_seed(&e->rng, seed);
}

/* The job's exit status: every rank's failures added up. */
static inline int cp_finish(cp_env *e) {
  int total = 0;
  double worst = 0;
  MPI_Allreduce(&sf_test_failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&cp_worst, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (e->rank == 0)
    printf("%s: %d failed checks over %d ranks; largest relative error %.3g (tolerance %g)\n",
           total ? "FAIL" : "PASS", total, e->k, worst, CP_TOL);
  sf_transport_destroy(e->t);
  sf_cpu_ctx_destroy(&e->ctx);
  MPI_Finalize();
  return total ? 1 : 0;
}

#endif
