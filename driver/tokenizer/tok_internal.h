/* The tokenizer's internals, shared by its source files and by nothing else.
 *
 * Pipeline of sf_tokenizer_encode, following Hugging Face `tokenizers`
 * (TokenizerImpl::encode with this file's components):
 *   1. validate UTF-8;
 *   2. split the raw text on the added tokens with normalized=false
 *      (added_tokens.c, leftmost-longest);
 *   3. NFC-normalize each remaining piece (utf8.c), then split it on the
 *      added tokens with normalized=true, matched in their normalized form;
 *   4. pre-tokenize what is left with the GPT-2 regex (pretokenize.c);
 *   5. BPE-merge the bytes of each regex piece by merge rank (bpe.c).
 * Decoding (decode.c) is the ByteLevel decoder plus lossy UTF-8. */
#ifndef SCANFLASH_TOKENIZER_INTERNAL_H
#define SCANFLASH_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "scanflash/error.h"
#include "scanflash/tokens.h"
#include "tokenizer/hashmap.h"
#include "tokenizer/tokenizer.h"

/* One entry of tokenizer.json's added_tokens. */
typedef struct sf_added_token {
  char *content;      /* as written in the file */
  size_t content_len;
  char *pattern;      /* what is matched: content, or NFC(content) when normalized */
  size_t pattern_len;
  int32_t id;
  int special, normalized, lstrip, rstrip, single_word;
} sf_added_token;

/* The added tokens of one kind (normalized or not), indexed by first byte
 * with the longest pattern first, so the first hit at a position is the
 * leftmost-longest match that HF's Aho-Corasick (MatchKind::LeftmostLongest)
 * reports. */
typedef struct sf_added_set {
  int32_t *order;       /* indices into tok->added */
  int32_t n;
  int32_t bucket[257];  /* order[bucket[b] .. bucket[b+1]) begin with byte b */
} sf_added_set;

typedef struct sf_bpe_symbol {
  int32_t id;
  int32_t prev, next; /* -1 at the ends */
  int32_t len;        /* bytes covered; 0 once merged into its left neighbour */
} sf_bpe_symbol;

typedef struct sf_bpe_merge {
  uint32_t rank;
  int32_t pos;
  int32_t new_id;
} sf_bpe_merge;

struct sf_tokenizer {
  char *path;

  /* model (BPE) */
  sf_strmap vocab;          /* byte-level token text -> id */
  int32_t model_vocab_n;    /* entries of model.vocab (HF's get_vocab_size) */
  sf_pairmap merges;        /* (left id, right id) -> (rank, merged id) */
  int32_t byte_id[256];     /* id of the one-byte token of each byte */
  int ignore_merges;        /* model.ignore_merges: whole words in vocab skip BPE */

  /* ids -> bytes, for decode (HF: id_to_token, then the ByteLevel decoder) */
  int32_t n_ids;            /* 1 + largest id */
  int64_t *dec_off;         /* n_ids entries; -1: no token has this id */
  uint32_t *dec_len;
  char *dec_bytes;

  /* added tokens */
  sf_added_token *added;
  int32_t n_added;
  sf_added_set raw_set;     /* normalized == false: matched in the raw text */
  sf_added_set norm_set;    /* normalized == true: matched after NFC */

  int nfc;                  /* normalizer: 1 NFC, 0 none */
  int use_regex;            /* ByteLevel use_regex (default true) */
  pcre2_code *re;
  pcre2_match_data *md;

  /* per-word cache: word bytes -> offset into cache_ids ([n, id1..idn]) */
  sf_strmap cache;
  int32_t *cache_ids;
  size_t cache_ids_n, cache_ids_cap;

  /* scratch for one BPE word */
  sf_bpe_symbol *syms;
  size_t syms_cap;
  sf_bpe_merge *heap;
  size_t heap_cap;

  int32_t eos_id;           /* <|endoftext|>, -1 when absent */
};

/* bytelevel.c: GPT-2's reversible byte <-> code point table. */
uint32_t sf_bytelevel_char(uint8_t byte);
int sf_bytelevel_byte(uint32_t cp); /* -1 when cp is not in the alphabet */

/* utf8.c */
/* Offset of the first byte that does not start a valid UTF-8 sequence, or
 * len when all of s is valid. */
size_t sf_utf8_invalid_at(const char *s, size_t len);
/* One code point at s (valid UTF-8 assumed); returns its byte length. */
size_t sf_utf8_next(const char *s, size_t len, uint32_t *cp);
size_t sf_utf8_encode(uint32_t cp, char out[4]);
/* Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes
 * U+FFFD. *out is malloc'd and NUL-terminated. */
sf_status sf_utf8_lossy(const char *in, size_t len, char **out, size_t *out_len, sf_error *err);
/* NFC of s. *out is s itself (when nothing can change) or a malloc'd buffer
 * that the caller frees when *owned. */
sf_status sf_nfc(const char *s, size_t len, const char **out, size_t *out_len, int *owned,
                 sf_error *err);
/* Unicode White_Space (Rust's char::is_whitespace and regex \s). */
int sf_is_white_space(uint32_t cp);

/* added_tokens.c */
sf_status sf_added_set_build(const sf_tokenizer *tok, sf_added_set *set, int normalized,
                             sf_error *err);
void sf_added_set_free(sf_added_set *set);
/* Calls fn for each piece of s in order: an added token (id >= 0) or the text
 * between them (id == -1). Mirrors AddedVocabulary::find_matches. */
typedef sf_status (*sf_piece_fn)(void *ctx, const char *s, size_t len, int32_t id, sf_error *err);
sf_status sf_added_split(const sf_tokenizer *tok, const sf_added_set *set, const char *s, size_t len,
                         sf_piece_fn fn, void *ctx, sf_error *err);

/* pretokenize.c */
sf_status sf_pretok_init(sf_tokenizer *tok, sf_error *err);
void sf_pretok_free(sf_tokenizer *tok);
/* Calls fn(ctx, word, len, -1, err) for each piece of the ByteLevel split. */
sf_status sf_pretok_split(sf_tokenizer *tok, const char *s, size_t len, sf_piece_fn fn, void *ctx,
                          sf_error *err);

/* bpe.c */
sf_status sf_bpe_init(sf_tokenizer *tok, sf_error *err);
void sf_bpe_free(sf_tokenizer *tok);
/* Appends the ids of one pre-tokenized word (raw bytes). */
sf_status sf_bpe_word(sf_tokenizer *tok, const char *word, size_t len, sf_tokens *out, sf_error *err);

#endif
