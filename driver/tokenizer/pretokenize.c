/* The ByteLevel pre-tokenizer: GPT-2's regex splits normalized text into the
 * words that BPE merges within. HF compiles it with Oniguruma:
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * and keeps both the matches and any text between them (Isolated). We use
 * PCRE2 with UTF + UCP. One difference is spelled out: Oniguruma's \s is the
 * Unicode White_Space property, while PCRE2's \s also matches U+180E (it is
 * \p{Z} plus \h plus \v). So \s is written as an explicit White_Space class
 * below; \p{L} and \p{N} mean the same in both engines. */
#include <stdio.h>

#include "tokenizer/tok_internal.h"

#define WS "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS
    "]+";

sf_status sf_pretok_init(sf_tokenizer *tok, sf_error *err) {
  int code;
  PCRE2_SIZE at;
  tok->re = pcre2_compile((PCRE2_SPTR)gpt2_pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                          &code, &at, NULL);
  if (!tok->re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof msg);
    return sf_fail(err, SF_ERR_INTERNAL, "tokenizer: pre-tokenizer regex does not compile at %zu: %s",
                   (size_t)at, (const char *)msg);
  }
  /* JIT when this PCRE2 has it; pcre2_match falls back to the interpreter
   * by itself when the JIT compile did not happen. */
  (void)pcre2_jit_compile(tok->re, PCRE2_JIT_COMPLETE);
  tok->md = pcre2_match_data_create_from_pattern(tok->re, NULL);
  if (!tok->md) return sf_fail(err, SF_ERR_NOMEM, "tokenizer: out of memory for regex match data");
  return SF_OK;
}

void sf_pretok_free(sf_tokenizer *tok) {
  pcre2_match_data_free(tok->md);
  pcre2_code_free(tok->re);
  tok->md = NULL;
  tok->re = NULL;
}

sf_status sf_pretok_split(sf_tokenizer *tok, const char *s, size_t len, sf_piece_fn fn, void *ctx,
                          sf_error *err) {
  if (!tok->use_regex) return len ? fn(ctx, s, len, -1, err) : SF_OK;
  size_t off = 0;
  while (off < len) {
    /* The text was validated once up front, so PCRE2 need not re-check it
     * on every call (that would make the loop quadratic). */
    int rc = pcre2_match(tok->re, (PCRE2_SPTR)s, len, off, PCRE2_NO_UTF_CHECK, tok->md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      return sf_fail(err, SF_ERR_INTERNAL, "tokenizer: pre-tokenizer regex failed at byte %zu: %s",
                     off, (const char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(tok->md);
    size_t ms = ov[0], me = ov[1];
    if (ms > off) SF_TRY(fn(ctx, s + off, ms - off, -1, err)); /* Isolated keeps gaps */
    if (me == ms) { /* cannot happen (every branch consumes), but never loop */
      uint32_t cp;
      me = ms + sf_utf8_next(s + ms, len - ms, &cp);
      SF_TRY(fn(ctx, s + ms, me - ms, -1, err));
    } else {
      SF_TRY(fn(ctx, s + ms, me - ms, -1, err));
    }
    off = me;
  }
  if (off < len) SF_TRY(fn(ctx, s + off, len - off, -1, err));
  return SF_OK;
}
