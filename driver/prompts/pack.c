/* Context packing: exactly L tokens ending with a problem's prompt. The
 * recipe (seeded order, cycles, backwards fill) is spelled out in prompts.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prompts/prompts.h"
#include "scanflash/rng.h"

void sf_corpus_free(sf_corpus *c) {
  if (!c) return;
  for (int32_t i = 0; i < c->n; i++) {
    if (c->prompt) sf_tokens_free(&c->prompt[i]);
    if (c->document) sf_tokens_free(&c->document[i]);
    if (c->task_id) free(c->task_id[i]);
  }
  free(c->prompt);
  free(c->document);
  free(c->task_id);
  memset(c, 0, sizeof *c);
}

static const char *problem_name(const sf_corpus *c, int32_t p, char *buf, size_t len) {
  if (c->task_id && c->task_id[p]) return c->task_id[p];
  snprintf(buf, len, "problem #%d", (int)p);
  return buf;
}

sf_status sf_pack_context(const sf_corpus *c, int32_t problem, int64_t context_len, uint64_t seed,
                          sf_tokens *out, sf_pack_stats *stats, sf_error *err) {
  sf_tokens_clear(out);
  if (stats) memset(stats, 0, sizeof *stats);
  if (!c || c->n <= 0 || !c->prompt || !c->document) return sf_fail(err, SF_ERR_ARG, "pack: empty corpus");
  if (c->n > (1 << 24)) /* the stream id holds p in 24 bits (prompts.h) */
    return sf_fail(err, SF_ERR_UNSUPPORTED, "pack: %d problems is more than the 2^24 supported", (int)c->n);
  if (problem < 0 || problem >= c->n)
    return sf_fail(err, SF_ERR_ARG, "pack: problem index %d is out of range (corpus has %d)", (int)problem, (int)c->n);
  if (context_len < 0)
    return sf_fail(err, SF_ERR_ARG, "context %lld is negative", (long long)context_len);

  const sf_tokens *prompt = &c->prompt[problem];
  const int64_t P = prompt->n;
  char namebuf[32];

  if (context_len == 0) { /* natural mode */
    SF_TRY(sf_tokens_append(out, prompt->ids, P, err));
    if (stats) {
      stats->tokens = P;
      stats->prompt_tokens = P;
    }
    return SF_OK;
  }
  if (context_len < P)
    return sf_fail(err, SF_ERR_ARG,
                   "context %lld is shorter than the prompt of %s (%lld tokens); natural mode (context 0) gives the bare prompt",
                   (long long)context_len, problem_name(c, problem, namebuf, sizeof namebuf), (long long)P);

  const int64_t F = context_len - P; /* filler tokens */
  int32_t *perm = NULL;
  int64_t m = 0;
  if (F > 0) {
    perm = malloc((size_t)c->n * sizeof *perm);
    if (!perm) return sf_fail(err, SF_ERR_NOMEM, "pack: out of memory");
    for (int32_t q = 0; q < c->n; q++)
      if (q != problem && c->document[q].n > 0) perm[m++] = q;
    if (m == 0) {
      free(perm);
      return sf_fail(err, SF_ERR_ARG,
                     "context %lld needs %lld filler tokens before the prompt of %s (%lld tokens), but the "
                     "dataset has no other problem to draw them from",
                     (long long)context_len, (long long)F, problem_name(c, problem, namebuf, sizeof namebuf),
                     (long long)P);
    }
  }

  sf_status rc = sf_tokens_reserve(out, context_len, err);
  if (rc != SF_OK) {
    free(perm);
    return rc;
  }
  int32_t *ids = out->ids;
  memcpy(ids + F, prompt->ids, (size_t)P * sizeof *ids);

  /* Fill [0, F) from the end. Each cycle shuffles the ascending list of
   * others afresh (the shuffle is applied to the sorted list, not to the
   * previous cycle's order, so cycle k depends only on (seed, p, k)). */
  int64_t pos = F, documents = 0, cycles = 0, trimmed = 0;
  int32_t *sorted = NULL;
  if (F > 0) {
    sorted = malloc((size_t)m * sizeof *sorted);
    if (!sorted) {
      free(perm);
      return sf_fail(err, SF_ERR_NOMEM, "pack: out of memory");
    }
    memcpy(sorted, perm, (size_t)m * sizeof *sorted);
  }
  for (uint64_t k = 0; pos > 0; k++) {
    sf_rng rng;
    memcpy(perm, sorted, (size_t)m * sizeof *perm);
    sf_rng_seed_stream(&rng, seed, ((uint64_t)(uint32_t)problem << 40) | k);
    sf_rng_shuffle_i32(&rng, perm, m);
    cycles++;
    for (int64_t j = 0; j < m && pos > 0; j++) {
      const sf_tokens *d = &c->document[perm[j]];
      documents++;
      if (d->n <= pos) {
        pos -= d->n;
        memcpy(ids + pos, d->ids, (size_t)d->n * sizeof *ids);
      } else {
        trimmed = d->n - pos;
        memcpy(ids, d->ids + trimmed, (size_t)pos * sizeof *ids);
        pos = 0;
      }
    }
  }
  free(sorted);
  free(perm);
  out->n = context_len;
  if (stats) {
    stats->tokens = context_len;
    stats->prompt_tokens = P;
    stats->filler_tokens = F;
    stats->documents = documents;
    stats->cycles = cycles;
    stats->first_doc_trimmed = trimmed;
  }
  return SF_OK;
}
