/* The GPT-NeoX-20B byte-level BPE, read from a Hugging Face tokenizer.json,
 * with the semantics of the Hugging Face tokenizers library. */
#ifndef SCANFLASH_TOKENIZER_H
#define SCANFLASH_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "scanflash/error.h"
#include "scanflash/tokens.h"

typedef struct sf_tokenizer sf_tokenizer;

sf_status sf_tokenizer_load(const char *path, sf_tokenizer **out, sf_error *err);
void sf_tokenizer_free(sf_tokenizer *tok);

/* Appends the ids of text (UTF-8, len bytes) to out. Invalid UTF-8 is an
 * error naming the byte offset. Not thread-safe (per-word cache): one
 * tokenizer per thread. */
sf_status sf_tokenizer_encode(sf_tokenizer *tok, const char *text, size_t len, sf_tokens *out,
                              sf_error *err);

/* Decodes ids to a malloc'd NUL-terminated UTF-8 string. Unknown ids are an
 * error. Byte sequences that do not form valid UTF-8 decode as U+FFFD. */
sf_status sf_tokenizer_decode(const sf_tokenizer *tok, const int32_t *ids, int64_t n, char **text,
                              size_t *len, sf_error *err);

int32_t sf_tokenizer_vocab_size(const sf_tokenizer *tok); /* 1 + largest id (50277) */
int32_t sf_tokenizer_eos_id(const sf_tokenizer *tok);     /* <|endoftext|> */

#endif
