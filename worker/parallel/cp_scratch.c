/* The scratch list of cp_scratch.h. */
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

void sf_cp_scratch_free(sf_cp_scratch *s) {
  sf_error ignored;
  /* The cuda ops are asynchronous: nothing may be freed under a running kernel. */
  if (s->n) s->ctx->ops->sync(s->ctx, &ignored);
  while (s->n > 0) s->ctx->ops->free(s->ctx, s->ptr[--s->n]);
}
