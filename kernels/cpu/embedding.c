/* Embedding lookup: out[t, :] = table[ids[t], :] (fp32 reference). */
#include <string.h>

#include "cpu_ops.h"

SF_CPU_OP(embedding, sf_embedding_params) {
  (void)ctx;
  SF_CPU_REQUIRE_F32("embedding", p->dtype);
  if (p->n_tokens < 0 || p->d < 0)
    return sf_fail(err, SF_ERR_ARG, "embedding: negative size (n_tokens %lld, d %lld)",
                   (long long)p->n_tokens, (long long)p->d);
  if (p->vocab <= 0) return sf_fail(err, SF_ERR_ARG, "embedding: vocab %d must be > 0", (int)p->vocab);
  if (p->table_row_stride < p->d || p->out_row_stride < p->d)
    return sf_fail(err, SF_ERR_ARG,
                   "embedding: row strides (table %lld, out %lld) must be >= d = %lld",
                   (long long)p->table_row_stride, (long long)p->out_row_stride, (long long)p->d);
  if (p->n_tokens == 0 || p->d == 0) return SF_OK;
  if (!p->ids || !p->table || !p->out)
    return sf_fail(err, SF_ERR_ARG, "embedding: ids, table and out must be non-NULL");

  /* Check every id before writing anything, so a bad id leaves out untouched. */
  for (int64_t t = 0; t < p->n_tokens; t++) {
    int32_t id = p->ids[t];
    if (id < 0 || id >= p->vocab)
      return sf_fail(err, SF_ERR_ARG, "embedding: token %lld has id %d outside [0, %d)",
                     (long long)t, (int)id, (int)p->vocab);
  }

  const float *table = (const float *)p->table;
  float *out = (float *)p->out;
  const int64_t n = p->n_tokens, d = p->d;
#pragma omp parallel for schedule(static) if (n * d > 32768)
  for (int64_t t = 0; t < n; t++)
    memcpy(out + t * p->out_row_stride, table + (int64_t)p->ids[t] * p->table_row_stride,
           (size_t)d * sizeof(float));
  return SF_OK;
}
