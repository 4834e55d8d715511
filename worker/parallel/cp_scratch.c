/* The scratch list of cp_scratch.h. */
#include <math.h>
#include <stdlib.h>

#include "parallel/cp_scratch.h"

sf_status sf_cp_scratch_alloc(sf_cp_scratch *s, size_t bytes, void **out, sf_error *err) {
  *out = NULL;
  if (s->n == SF_CP_SCRATCH_MAX)
    return sf_fail(err, SF_ERR_INTERNAL, "context parallel: more than %d scratch buffers", SF_CP_SCRATCH_MAX);
  SF_TRY(s->ctx->ops->alloc(s->ctx, bytes ? bytes : 1, out, err));
  s->ptr[s->n++] = *out;
  return SF_OK;
}

sf_status sf_cp_scratch_upload(sf_cp_scratch *s, const void *src, size_t bytes, void **out, sf_error *err) {
  SF_TRY(sf_cp_scratch_alloc(s, bytes, out, err));
  return bytes ? s->ctx->ops->upload(s->ctx, *out, src, bytes, err) : SF_OK;
}

sf_status sf_cp_fill_neg_inf(sf_op_ctx *ctx, float *dst, size_t n, sf_error *err) {
  float *h = malloc((n ? n : 1) * sizeof(float));
  if (!h) return sf_fail(err, SF_ERR_NOMEM, "context parallel: out of host memory for %zu lses", n);
  for (size_t i = 0; i < n; i++) h[i] = -INFINITY;
  /* Freed at once: upload returns when src may be reused (cuda stages
   * pageable host memory before cudaMemcpyAsync returns). */
  const sf_status st = n ? ctx->ops->upload(ctx, dst, h, n * sizeof(float), err) : SF_OK;
  free(h);
  return st;
}

sf_status sf_cp_scratch_neg_inf(sf_cp_scratch *s, size_t n, float **out, sf_error *err) {
  void *d = NULL;
  *out = NULL;
  SF_TRY(sf_cp_scratch_alloc(s, n * sizeof(float), &d, err));
  *out = d;
  return sf_cp_fill_neg_inf(s->ctx, d, n, err);
}

void sf_cp_scratch_free(sf_cp_scratch *s) {
  sf_error ignored;
  /* The cuda ops are asynchronous: nothing may be freed under a running kernel. */
  if (s->n) s->ctx->ops->sync(s->ctx, &ignored);
  while (s->n > 0) s->ctx->ops->free(s->ctx, s->ptr[--s->n]);
}
