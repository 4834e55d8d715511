/* The tokenized corpus: every problem's prompt and its prompt + canonical
 * solution, tokenized once. Kept apart from pack.c (which also has
 * sf_corpus_free) so packing links without the tokenizer: unit tests build
 * corpora by hand. */
#include <stdlib.h>
#include <string.h>

#include "prompts/prompts.h"

sf_status sf_corpus_build(const sf_problem_set *set, sf_tokenizer *tok, sf_corpus *out, sf_error *err) {
  memset(out, 0, sizeof *out);
  if (!set || set->n <= 0) return sf_fail(err, SF_ERR_ARG, "corpus: no problems");
  sf_corpus c = {0};
  c.n = set->n;
  c.prompt = calloc((size_t)c.n, sizeof *c.prompt);
  c.document = calloc((size_t)c.n, sizeof *c.document);
  c.task_id = calloc((size_t)c.n, sizeof *c.task_id);
  char *joined = NULL;
  size_t joined_cap = 0;
  sf_status rc = SF_OK;
  if (!c.prompt || !c.document || !c.task_id) rc = sf_fail(err, SF_ERR_NOMEM, "corpus: out of memory");
  for (int32_t i = 0; i < c.n && rc == SF_OK; i++) {
    const sf_problem *p = &set->items[i];
    if (!(c.task_id[i] = strdup(p->task_id))) {
      rc = sf_fail(err, SF_ERR_NOMEM, "corpus: out of memory");
      break;
    }
    size_t np = strlen(p->prompt), ns = strlen(p->canonical_solution);
    if (np + ns + 1 > joined_cap) {
      size_t cap = (np + ns + 1) * 2;
      char *nj = realloc(joined, cap);
      if (!nj) {
        rc = sf_fail(err, SF_ERR_NOMEM, "corpus: out of memory");
        break;
      }
      joined = nj;
      joined_cap = cap;
    }
    memcpy(joined, p->prompt, np);
    memcpy(joined + np, p->canonical_solution, ns);
    joined[np + ns] = '\0';
    rc = sf_tokenizer_encode(tok, p->prompt, np, &c.prompt[i], err);
    if (rc != SF_OK) {
      sf_fail_context(err, "%s: prompt", p->task_id);
      break;
    }
    rc = sf_tokenizer_encode(tok, joined, np + ns, &c.document[i], err);
    if (rc != SF_OK) sf_fail_context(err, "%s: prompt + canonical_solution", p->task_id);
  }
  free(joined);
  if (rc != SF_OK) {
    sf_corpus_free(&c);
    return rc;
  }
  *out = c;
  return SF_OK;
}
