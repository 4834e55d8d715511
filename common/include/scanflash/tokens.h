/* A growable array of token ids: what the tokenizer produces, prompt packing
 * assembles and the engine consumes. Lengths are 64-bit (contexts reach 4M). */
#ifndef SCANFLASH_TOKENS_H
#define SCANFLASH_TOKENS_H

#include <stdint.h>

#include "scanflash/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_tokens {
  int32_t *ids;
  int64_t n;
  int64_t cap;
} sf_tokens;

sf_status sf_tokens_reserve(sf_tokens *t, int64_t cap, sf_error *err);
sf_status sf_tokens_push(sf_tokens *t, int32_t id, sf_error *err);
sf_status sf_tokens_append(sf_tokens *t, const int32_t *ids, int64_t n, sf_error *err);
void sf_tokens_clear(sf_tokens *t); /* n = 0, keeps the buffer */
void sf_tokens_free(sf_tokens *t);

#ifdef __cplusplus
}
#endif
#endif
