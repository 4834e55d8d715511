/* The context-parallel scratch (worker/parallel/cp_scratch.h) on the cpu
 * backend: a kept scratch hands a call's slots the memory they had in the
 * last call, replaces a slot that is too small and adds slots; one not kept
 * frees everything at the call's end; the slot limit is an error. */
#include <stdio.h>

#include "ops/op_table.h"
#include "parallel/cp_scratch.h"
#include "test.h"

static void test_kept(sf_op_ctx *ctx) {
  sf_error err;
  sf_cp_scratch s;
  sf_cp_scratch_init(&s, ctx, 1);
  void *a = NULL, *b = NULL, *a2 = NULL, *b2 = NULL, *c = NULL;
  sf_cp_scratch_begin(&s);
  REQUIRE(sf_cp_scratch_alloc(&s, 100, &a, &err) == SF_OK);
  REQUIRE(sf_cp_scratch_alloc(&s, 200, &b, &err) == SF_OK);
  sf_cp_scratch_end(&s);
  CHECK_EQ_I64(s.held, 2);
  /* the next call, same order: slot 0 is reused, slot 1 grows, slot 2 is new */
  sf_cp_scratch_begin(&s);
  REQUIRE(sf_cp_scratch_alloc(&s, 64, &a2, &err) == SF_OK);
  REQUIRE(sf_cp_scratch_alloc(&s, 4096, &b2, &err) == SF_OK);
  REQUIRE(sf_cp_scratch_alloc(&s, 0, &c, &err) == SF_OK);
  CHECK(a2 == a);
  CHECK(b2 != NULL && c != NULL && c != a2 && c != b2);
  CHECK_EQ_I64((int64_t)s.cap[1], 4096);
  CHECK_EQ_I64((int64_t)s.cap[2], 1); /* empty shapes get one byte */
  /* the grown slot is usable to its new size */
  for (int i = 0; i < 4096; i++) ((unsigned char *)b2)[i] = (unsigned char)i;
  sf_cp_scratch_end(&s);
  CHECK_EQ_I64(s.held, 3);
  sf_cp_scratch_free(&s);
  CHECK_EQ_I64(s.held, 0);
  CHECK_EQ_I64(s.n, 0);
}

static void test_not_kept(sf_op_ctx *ctx) {
  sf_error err;
  sf_cp_scratch s;
  sf_cp_scratch_init(&s, ctx, 0);
  void *p = NULL;
  float *ninf = NULL;
  sf_cp_scratch_begin(&s);
  REQUIRE(sf_cp_scratch_alloc(&s, 1000, &p, &err) == SF_OK);
  REQUIRE(sf_cp_scratch_neg_inf(&s, 7, &ninf, &err) == SF_OK);
  for (int i = 0; i < 7; i++) CHECK(ninf[i] < 0 && ninf[i] * 0.5f == ninf[i]); /* -inf */
  CHECK_EQ_I64(s.held, 2);
  sf_cp_scratch_end(&s);
  CHECK_EQ_I64(s.held, 0);
}

static void test_slot_limit(sf_op_ctx *ctx) {
  sf_error err;
  sf_cp_scratch s;
  sf_cp_scratch_init(&s, ctx, 0);
  sf_cp_scratch_begin(&s);
  void *p = NULL;
  for (int i = 0; i < SF_CP_SCRATCH_MAX; i++) REQUIRE(sf_cp_scratch_alloc(&s, 8, &p, &err) == SF_OK);
  CHECK(sf_cp_scratch_alloc(&s, 8, &p, &err) == SF_ERR_INTERNAL);
  CHECK(p == NULL);
  sf_cp_scratch_end(&s);
  CHECK_EQ_I64(s.held, 0);
}

int main(void) {
  sf_op_ctx ctx;
  sf_error err;
  REQUIRE(sf_cpu_ctx_init(&ctx, 1, &err) == SF_OK);
  test_kept(&ctx);
  test_not_kept(&ctx);
  test_slot_limit(&ctx);
  return sf_test_finish("test_cp_scratch");
}
