#include "scanflash/tokens.h"

#include <stdlib.h>
#include <string.h>

sf_status sf_tokens_reserve(sf_tokens *t, int64_t cap, sf_error *err) {
  if (cap <= t->cap) return SF_OK;
  int64_t want = t->cap ? t->cap : 64;
  while (want < cap) want *= 2;
  int32_t *ids = realloc(t->ids, (size_t)want * sizeof *ids);
  if (!ids) return sf_fail(err, SF_ERR_NOMEM, "out of memory for %lld token ids", (long long)want);
  t->ids = ids;
  t->cap = want;
  return SF_OK;
}

sf_status sf_tokens_push(sf_tokens *t, int32_t id, sf_error *err) {
  if (t->n == t->cap) SF_TRY(sf_tokens_reserve(t, t->n + 1, err));
  t->ids[t->n++] = id;
  return SF_OK;
}

sf_status sf_tokens_append(sf_tokens *t, const int32_t *ids, int64_t n, sf_error *err) {
  SF_TRY(sf_tokens_reserve(t, t->n + n, err));
  if (n) memcpy(t->ids + t->n, ids, (size_t)n * sizeof *ids);
  t->n += n;
  return SF_OK;
}

void sf_tokens_clear(sf_tokens *t) { t->n = 0; }

void sf_tokens_free(sf_tokens *t) {
  free(t->ids);
  t->ids = NULL;
  t->n = t->cap = 0;
}
