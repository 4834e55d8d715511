/* UTF-8 helpers: validation and NFC through utf8proc; the lossy decoding that
 * HF's ByteLevel decoder gets from Rust's String::from_utf8_lossy. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

size_t sf_utf8_invalid_at(const char *s, size_t len) {
  const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
  size_t i = 0;
  while (i < len) {
    if (p[i] < 0x80) { /* ASCII needs no call */
      i++;
      continue;
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
    if (n <= 0 || cp < 0) return i; /* also rejects overlongs and surrogates */
    i += (size_t)n;
  }
  return len;
}

size_t sf_utf8_next(const char *s, size_t len, uint32_t *cp) {
  utf8proc_int32_t c = 0;
  utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &c);
  if (n <= 0) { /* cannot happen on validated text; step one byte to make progress */
    *cp = 0xfffd;
    return 1;
  }
  *cp = (uint32_t)c;
  return (size_t)n;
}

size_t sf_utf8_encode(uint32_t cp, char out[4]) {
  return (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)out);
}

/* Length of the valid sequence starting at p[0], or 0 with *bad set to how
 * many bytes form the maximal invalid prefix (Rust's Utf8Chunks rules, which
 * are Unicode's "substitution of maximal subparts"). */
static size_t lossy_step(const unsigned char *p, size_t n, size_t *bad) {
  unsigned char b0 = p[0];
  if (b0 < 0x80) return 1;
  unsigned char b1 = n > 1 ? p[1] : 0, b2 = n > 2 ? p[2] : 0, b3 = n > 3 ? p[3] : 0;
#define CONT(b) ((b) >= 0x80 && (b) <= 0xbf)
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    if (CONT(b1)) return 2;
    *bad = 1;
    return 0;
  }
  if (b0 >= 0xe0 && b0 <= 0xef) {
    int ok1 = (b0 == 0xe0)   ? (b1 >= 0xa0 && b1 <= 0xbf)
              : (b0 == 0xed) ? (b1 >= 0x80 && b1 <= 0x9f)
                             : CONT(b1);
    if (!ok1) { *bad = 1; return 0; }
    if (!CONT(b2)) { *bad = 2; return 0; }
    return 3;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    int ok1 = (b0 == 0xf0)   ? (b1 >= 0x90 && b1 <= 0xbf)
              : (b0 == 0xf4) ? (b1 >= 0x80 && b1 <= 0x8f)
                             : CONT(b1);
    if (!ok1) { *bad = 1; return 0; }
    if (!CONT(b2)) { *bad = 2; return 0; }
    if (!CONT(b3)) { *bad = 3; return 0; }
    return 4;
  }
#undef CONT
  *bad = 1; /* 0x80..0xc1, 0xf5..0xff never start a sequence */
  return 0;
}

sf_status sf_utf8_lossy(const char *in, size_t len, char **out, size_t *out_len, sf_error *err) {
  /* worst case: every byte becomes U+FFFD (3 bytes) */
  char *buf = malloc(len * 3 + 1);
  if (!buf) return sf_fail(err, SF_ERR_NOMEM, "decode: out of memory for %zu bytes", len * 3 + 1);
  const unsigned char *p = (const unsigned char *)in;
  size_t i = 0, o = 0;
  while (i < len) {
    size_t bad = 0, ok = lossy_step(p + i, len - i, &bad);
    if (ok) {
      memcpy(buf + o, p + i, ok);
      o += ok;
      i += ok;
    } else {
      memcpy(buf + o, "\xef\xbf\xbd", 3);
      o += 3;
      i += bad;
    }
  }
  buf[o] = '\0';
  *out = buf;
  *out_len = o;
  return SF_OK;
}

sf_status sf_nfc(const char *s, size_t len, const char **out, size_t *out_len, int *owned,
                 sf_error *err) {
  /* Code points below U+0300 are all NFC_QC=Yes with combining class 0, so a
   * piece made only of them (ASCII code, most of the dataset) is already NFC
   * and the copy through utf8proc is skipped. */
  const unsigned char *p = (const unsigned char *)s;
  int trivial = 1;
  for (size_t i = 0; i < len; i++) {
    if (p[i] >= 0xcc) { /* lead bytes of U+0300 and above */
      trivial = 0;
      break;
    }
  }
  if (trivial) {
    *out = s;
    *out_len = len;
    *owned = 0;
    return SF_OK;
  }
  utf8proc_uint8_t *dst = NULL;
  utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                                    UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  if (n < 0) return sf_fail(err, SF_ERR_FORMAT, "NFC normalization failed: %s", utf8proc_errmsg(n));
  *out = (const char *)dst;
  *out_len = (size_t)n;
  *owned = 1;
  return SF_OK;
}

int sf_is_white_space(uint32_t cp) {
  /* Unicode PropList.txt White_Space (stable since Unicode 6.3) */
  return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
         cp == 0x205f || cp == 0x3000;
}
