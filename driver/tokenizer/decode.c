/* sf_tokenizer_decode: HF's Tokenizer::decode with skip_special_tokens off.
 * Each id's bytes were prepared at load (tokenizer_load.c: the ByteLevel
 * decoder applied to the token's text); here they are concatenated and the
 * result made valid UTF-8 the way Rust's from_utf8_lossy does, so a token
 * that ends inside a multi-byte character shows as U+FFFD. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

sf_status sf_tokenizer_decode(const sf_tokenizer *tok, const int32_t *ids, int64_t n, char **text,
                              size_t *len, sf_error *err) {
  *text = NULL;
  if (len) *len = 0;
  if (n < 0 || (n > 0 && !ids)) return sf_fail(err, SF_ERR_ARG, "decode: bad id array");
  size_t total = 0;
  for (int64_t i = 0; i < n; i++) {
    int32_t id = ids[i];
    if (id < 0 || id >= tok->n_ids || tok->dec_off[id] < 0)
      return sf_fail(err, SF_ERR_ARG, "decode: unknown token id %d at position %lld (vocabulary has ids 0..%d)",
                     (int)id, (long long)i, (int)tok->n_ids - 1);
    total += tok->dec_len[id];
  }
  char *bytes = malloc(total + 1);
  if (!bytes) return sf_fail(err, SF_ERR_NOMEM, "decode: out of memory for %zu bytes", total + 1);
  size_t o = 0;
  for (int64_t i = 0; i < n; i++) {
    memcpy(bytes + o, tok->dec_bytes + tok->dec_off[ids[i]], tok->dec_len[ids[i]]);
    o += tok->dec_len[ids[i]];
  }
  size_t out_len;
  sf_status rc = sf_utf8_lossy(bytes, o, text, &out_len, err);
  free(bytes);
  if (rc == SF_OK && len) *len = out_len;
  return rc;
}
