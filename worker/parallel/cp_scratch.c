/* The scratch list of cp_scratch.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/cp_scratch.h"

void sf_cp_scratch_init(sf_cp_scratch *s, sf_op_ctx *ctx, int keep) {
  memset(s, 0, sizeof *s);
  s->ctx = ctx;
  s->keep = keep;
}

void sf_cp_scratch_begin(sf_cp_scratch *s) { s->n = 0; }

void sf_cp_scratch_end(sf_cp_scratch *s) {
  if (!s->keep) sf_cp_scratch_free(s);
}

sf_status sf_cp_scratch_alloc(sf_cp_scratch *s, size_t bytes, void **out, sf_error *err) {
  *out = NULL;
  if (s->n == SF_CP_SCRATCH_MAX)
    return sf_fail(err, SF_ERR_INTERNAL, "context parallel: more than %d scratch buffers", SF_CP_SCRATCH_MAX);
  if (!bytes) bytes = 1;
  const int i = s->n;
  if (i < s->held && s->cap[i] >= bytes) {
    *out = s->ptr[i];
    s->n++;
    return SF_OK;
  }
  if (i < s->held) { /* too small: replaced, once the ops that use it are done */
    SF_TRY(s->ctx->ops->sync(s->ctx, err));
    if (s->ptr[i]) s->ctx->ops->free(s->ctx, s->ptr[i]);
    s->ptr[i] = NULL, s->cap[i] = 0;
  }
  SF_TRY(s->ctx->ops->alloc(s->ctx, bytes, out, err));
  s->ptr[i] = *out, s->cap[i] = bytes;
  if (i == s->held) s->held++;
  s->n++;
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
  if (s->held) s->ctx->ops->sync(s->ctx, &ignored);
  for (int i = 0; i < s->held; i++)
    if (s->ptr[i]) s->ctx->ops->free(s->ctx, s->ptr[i]);
  memset(s->ptr, 0, sizeof s->ptr);
  memset(s->cap, 0, sizeof s->cap);
  s->held = s->n = 0;
}
