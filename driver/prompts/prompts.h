/* Context packing (DESIGN "Workload"): a context of length L for problem p is
 * the other problems' prompt + canonical solution, in a seeded order, cycled
 * as needed, trimmed at the front at a token boundary, then p's prompt:
 * exactly L tokens. Natural mode is the bare prompt. */
#ifndef SCANFLASH_PROMPTS_H
#define SCANFLASH_PROMPTS_H

#include <stdint.h>

#include "data/humaneval.h"
#include "scanflash/error.h"
#include "scanflash/tokens.h"
#include "tokenizer/tokenizer.h"

/* Every problem tokenized once: its prompt, and its prompt + canonical
 * solution (one string, tokenized as a whole). */
typedef struct sf_corpus {
  int32_t n;
  sf_tokens *prompt;
  sf_tokens *document;
} sf_corpus;

sf_status sf_corpus_build(const sf_problem_set *set, sf_tokenizer *tok, sf_corpus *out, sf_error *err);
void sf_corpus_free(sf_corpus *c);

typedef struct sf_pack_stats {
  int64_t tokens;            /* = L, or the prompt length in natural mode */
  int64_t prompt_tokens;     /* p's prompt */
  int64_t filler_tokens;     /* tokens before the prompt */
  int64_t documents;         /* whole or partial documents in the filler */
  int64_t cycles;            /* passes over the other problems (partial counts) */
  int64_t first_doc_trimmed; /* tokens cut from the front of the first document */
} sf_pack_stats;

/* context_len == 0 means natural mode (the bare prompt). A context shorter
 * than the prompt is an error. stats may be NULL. out is cleared first. */
sf_status sf_pack_context(const sf_corpus *c, int32_t problem, int64_t context_len, uint64_t seed,
                          sf_tokens *out, sf_pack_stats *stats, sf_error *err);

#endif
