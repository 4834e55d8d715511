/* results_keys: what a results file holds, one line per item, for the MPI
 * shell tests: "KEY STATUS REPEATS STEPS MESSAGE" (the child row counts of
 * the key), after checking that the file reads back and that no key has two
 * /items rows and no child row lacks its item. Exit 1 with one line on
 * stderr otherwise. Not installed.
 *
 *   results_keys FILE                 the lines
 *   results_keys FILE --attr NAME     a root attribute (spec_text, spec_sha256, ...)
 *   results_keys FILE --metrics       per item: key arch model context batch status
 *                                     ttft_s prefill_tok_s decode_tok_s e2e_tok_s
 *                                     tpot_p50_s peak_bytes rank */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/results.h"

static int64_t find(const sf_results_data *d, const char *key) {
  for (int64_t i = 0; i < d->n_items; i++)
    if (!strcmp(d->items[i].item.key, key)) return i;
  return -1;
}

int main(int argc, char **argv) {
  const int metrics = argc == 3 && !strcmp(argv[2], "--metrics");
  if (argc != 2 && !metrics && !(argc == 4 && !strcmp(argv[2], "--attr"))) {
    fprintf(stderr, "usage: results_keys FILE [--attr NAME | --metrics]\n");
    return 2;
  }
  sf_results_data d;
  sf_error err;
  sf_error_clear(&err);
  if (sf_results_read(argv[1], 0, &d, &err) != SF_OK) {
    fprintf(stderr, "results_keys: %s\n", err.msg);
    return 1;
  }
  int rc = 0;
  if (argc == 4) {
    const sf_results_provenance *p = &d.prov;
    const char *v = !strcmp(argv[3], "spec_text")     ? p->spec_text
                    : !strcmp(argv[3], "spec_sha256") ? p->spec_sha256
                    : !strcmp(argv[3], "dataset_sha256") ? p->dataset_sha256
                    : !strcmp(argv[3], "tokenizer_sha256") ? p->tokenizer_sha256
                                                          : NULL;
    if (!v) {
      fprintf(stderr, "results_keys: unknown attribute %s\n", argv[3]);
      rc = 1;
    } else {
      printf("%s\n", v);
    }
    sf_results_data_free(&d);
    return rc;
  }
  int64_t *reps = calloc((size_t)d.n_items + 1, sizeof *reps), *steps = calloc((size_t)d.n_items + 1, sizeof *steps);
  if (!reps || !steps) {
    fprintf(stderr, "results_keys: out of memory\n");
    return 1;
  }
  for (int64_t i = 0; i < d.n_items && !rc; i++)
    if (find(&d, d.items[i].item.key) != i) {
      fprintf(stderr, "results_keys: %s: key %s has two /items rows\n", argv[1], d.items[i].item.key);
      rc = 1;
    }
  for (int64_t i = 0; i < d.n_repeats && !rc; i++) {
    int64_t k = find(&d, d.repeats[i].key);
    if (k < 0) {
      fprintf(stderr, "results_keys: %s: a /repeats row has key %s with no item\n", argv[1], d.repeats[i].key);
      rc = 1;
    } else reps[k]++;
  }
  for (int64_t i = 0; i < d.n_steps && !rc; i++) {
    int64_t k = find(&d, d.steps[i].key);
    if (k < 0) {
      fprintf(stderr, "results_keys: %s: a /decode_steps row has key %s with no item\n", argv[1], d.steps[i].key);
      rc = 1;
    } else steps[k]++;
  }
  for (int64_t i = 0; i < d.n_items && !rc && metrics; i++) {
    const sf_work_item *w = &d.items[i].item;
    const sf_item_result *r = &d.items[i].result;
    printf("%s %s %s %lld %d %s %.6g %.6g %.6g %.6g %.6g %lld %d\n", w->key, w->arch, w->model, (long long)w->context,
           (int)w->batch, sf_item_status_name((sf_item_status)r->status), r->ttft_s, r->prefill_tok_s, r->decode_tok_s,
           r->e2e_tok_s, r->tpot_p50_s, (long long)r->peak_bytes, (int)r->rank);
  }
  for (int64_t i = 0; i < d.n_items && !rc && !metrics; i++) {
    const sf_item_result *r = &d.items[i].result;
    printf("%s %s %lld %lld %s\n", d.items[i].item.key, sf_item_status_name((sf_item_status)r->status),
           (long long)reps[i], (long long)steps[i], r->message);
  }
  free(reps);
  free(steps);
  sf_results_data_free(&d);
  return rc;
}
