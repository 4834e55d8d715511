/* GPT-2's byte-level alphabet (bytes_to_unicode in openai/gpt-2 encoder.py,
 * HF ByteLevel): every byte maps to a printable code point, so BPE works on
 * strings and the vocabulary is valid JSON. Printable bytes !..~, ¡..¬ and
 * ®..ÿ map to themselves; the other 68 bytes, in increasing order, map to
 * U+0100, U+0101, ... (so ' ' -> 'Ġ' U+0120, '\n' -> 'Ċ' U+010A).
 * Computed by formula instead of a table: the mapping is fixed. */
#include "tokenizer/tok_internal.h"

static int self_mapped(uint32_t b) {
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

uint32_t sf_bytelevel_char(uint8_t byte) {
  uint32_t b = byte;
  if (self_mapped(b)) return b;
  if (b <= 0x20) return 0x100 + b;                 /* 33 bytes: 0x00..0x20 */
  if (b >= 0x7f && b <= 0xa0) return 0x121 + (b - 0x7f); /* 34 bytes: 0x7f..0xa0 */
  return 0x143;                                    /* 0xad, the last one */
}

int sf_bytelevel_byte(uint32_t cp) {
  if (cp <= 0xff) return self_mapped(cp) ? (int)cp : -1;
  if (cp <= 0x120) return (int)(cp - 0x100);
  if (cp <= 0x142) return (int)(cp - 0x121 + 0x7f);
  if (cp == 0x143) return 0xad;
  return -1;
}
