/* Context packing (DESIGN "Workload"): a context of length L for problem p is
 * the other problems' prompt + canonical solution, in a seeded order, cycled
 * as needed, trimmed at the front at a token boundary, then p's prompt:
 * exactly L tokens. Natural mode is the bare prompt.
 *
 * The exact recipe (portable: the same ids on every machine for the same
 * data, tokenizer, problem, L and seed):
 *
 *   others  = the indices q != p with a non-empty document, ascending
 *             (m of them);
 *   cycle k = 0, 1, 2, ...: a fresh permutation of `others`, drawn by
 *             sf_rng_shuffle_i32 from an sf_rng seeded with
 *             sf_rng_seed_stream(seed, ((uint64_t)p << 40) | k) (p < 2^24),
 *             applied to the ascending list each time, so orders differ
 *             between problems and between cycles (long contexts are not
 *             periodic) and cycle k depends only on (seed, p, k);
 *   filler  = built backwards from the prompt: the document nearest to the
 *             prompt is cycle 0's first, the one before it cycle 0's
 *             second, ...; after cycle 0's last comes cycle 1's first. Where
 *             L - P tokens are reached, the document there is cut and only
 *             its last tokens are kept (the trim at the front).
 *   context = filler ++ prompt(p).
 *
 * Documents are joined with no separator (token sequences concatenated,
 * not re-tokenized). Because the filler grows backwards, the context of
 * length L is a suffix of the context of length L + k for the same problem
 * and seed. */
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
  char **task_id; /* owned copies; may be NULL in a hand-built corpus (errors then say "problem #i") */
} sf_corpus;

sf_status sf_corpus_build(const sf_problem_set *set, sf_tokenizer *tok, sf_corpus *out, sf_error *err);
/* Frees what sf_corpus_build made (and zeroes c). */
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
 * than the prompt is an error, and so is any filler when p has no other
 * documents to draw from (a one-problem dataset). stats may be NULL. out is
 * cleared first and grown once to context_len; its ids are written in place.
 * Cost: O(L) copies plus one shuffle of m indices per cycle. */
sf_status sf_pack_context(const sf_corpus *c, int32_t problem, int64_t context_len, uint64_t seed,
                          sf_tokens *out, sf_pack_stats *stats, sf_error *err);

#endif
