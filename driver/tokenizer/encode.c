/* sf_tokenizer_encode: the pipeline of tok_internal.h, as nested splits.
 * Each stage hands its pieces to the next through a callback, so no list of
 * pieces is ever built. */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

typedef struct encode_ctx {
  sf_tokenizer *tok;
  sf_tokens *out;
} encode_ctx;

/* Stage 4-5: one pre-tokenized word -> BPE ids. */
static sf_status on_word(void *vctx, const char *s, size_t len, int32_t id, sf_error *err) {
  encode_ctx *c = vctx;
  (void)id;
  return sf_bpe_word(c->tok, s, len, c->out, err);
}

/* Stage 3b: a piece of normalized text, or a normalized added token. */
static sf_status on_normalized_piece(void *vctx, const char *s, size_t len, int32_t id, sf_error *err) {
  encode_ctx *c = vctx;
  if (id >= 0) return sf_tokens_push(c->out, id, err);
  return sf_pretok_split(c->tok, s, len, on_word, c, err);
}

/* Stage 2-3a: a piece of raw text, or a non-normalized added token. */
static sf_status on_raw_piece(void *vctx, const char *s, size_t len, int32_t id, sf_error *err) {
  encode_ctx *c = vctx;
  if (id >= 0) return sf_tokens_push(c->out, id, err);
  const char *norm = s;
  size_t norm_len = len;
  int owned = 0;
  if (c->tok->nfc) SF_TRY(sf_nfc(s, len, &norm, &norm_len, &owned, err));
  sf_status rc = sf_added_split(c->tok, &c->tok->norm_set, norm, norm_len, on_normalized_piece, c, err);
  if (owned) free((void *)norm);
  return rc;
}

sf_status sf_tokenizer_encode(sf_tokenizer *tok, const char *text, size_t len, sf_tokens *out,
                              sf_error *err) {
  if (!tok || (!text && len)) return sf_fail(err, SF_ERR_ARG, "tokenizer: encode of a NULL text");
  size_t bad = sf_utf8_invalid_at(text, len);
  if (bad < len) return sf_fail(err, SF_ERR_FORMAT, "invalid UTF-8 at byte %zu", bad);
  encode_ctx c = {tok, out};
  int64_t n0 = out->n;
  sf_status rc = sf_added_split(tok, &tok->raw_set, text, len, on_raw_piece, &c, err);
  if (rc != SF_OK) out->n = n0; /* append all or nothing */
  return rc;
}
