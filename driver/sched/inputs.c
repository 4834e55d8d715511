/* An item's sequences from the corpus: every rank builds them itself from
 * the item's positions (model_index, first_problem), so work items stay
 * small fixed-size structs. */
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

int64_t sf_sched_solution_tokens(const sf_corpus *c, int32_t p) {
  const int64_t n = c->document[p].n - c->prompt[p].n;
  return n > 0 ? n : 0;
}

static sf_status grow(sf_sched_batch *b, int32_t batch, sf_error *err) {
  if (batch <= b->cap) return SF_OK;
  int32_t *l = realloc(b->lens, (size_t)batch * sizeof *l);
  if (l) b->lens = l;
  int32_t *g = realloc(b->gen, (size_t)batch * sizeof *g);
  if (g) b->gen = g;
  int32_t *p = realloc(b->problems, (size_t)batch * sizeof *p);
  if (p) b->problems = p;
  if (!l || !g || !p) return sf_fail(err, SF_ERR_NOMEM, "out of host memory for a batch of %d", (int)batch);
  b->cap = batch;
  return SF_OK;
}

sf_status sf_sched_build_batch(const sf_spec *spec, const sf_corpus *c, const sf_work_item *item,
                               sf_sched_batch *b, sf_runner_batch *out, sf_error *err) {
  memset(out, 0, sizeof *out);
  if (item->batch < 1 || item->first_problem < 0 || spec->n_problems < 1)
    return sf_fail(err, SF_ERR_INTERNAL, "item %s has no problems to run", item->key);
  if (item->context > INT32_MAX)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "context %lld exceeds the engine's int32 positions",
                   (long long)item->context);
  SF_TRY(grow(b, item->batch, err));
  sf_plan_item pi;
  memset(&pi, 0, sizeof pi);
  pi.item = *item;
  sf_plan_item_problems(spec, &pi, b->problems);
  sf_tokens_clear(&b->ids);
  for (int32_t g = 0; g < item->batch; g++) {
    const int32_t p = b->problems[g];
    if (p < 0 || p >= c->n)
      return sf_fail(err, SF_ERR_INTERNAL, "problem %d is not in the dataset (%d problems)", (int)p, (int)c->n);
    const sf_tokens *seq;
    if (item->context == 0) {
      seq = &c->prompt[p];
    } else {
      sf_status rc = sf_pack_context(c, p, item->context, item->seed, &b->one, NULL, err);
      if (rc != SF_OK) return rc;
      seq = &b->one;
    }
    SF_TRY(sf_tokens_append(&b->ids, seq->ids, seq->n, err));
    b->lens[g] = (int32_t)seq->n;
    if (item->kind != SF_ITEM_GENERATE) b->gen[g] = 0;
    else if (item->gen == SF_GEN_CANONICAL) {
      const int64_t n = sf_sched_solution_tokens(c, p);
      b->gen[g] = n < 1 ? 1 : n > INT32_MAX ? INT32_MAX : (int32_t)n;
    } else b->gen[g] = item->gen;
  }
  out->batch = item->batch;
  out->ids = b->ids.ids;
  out->lens = b->lens;
  out->gen = b->gen;
  return SF_OK;
}

void sf_sched_batch_free(sf_sched_batch *b) {
  sf_tokens_free(&b->ids);
  sf_tokens_free(&b->one);
  free(b->lens);
  free(b->gen);
  free(b->problems);
  memset(b, 0, sizeof *b);
}
