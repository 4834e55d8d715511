/* Setup step 3 on rank 0 (sched.h): the plan, the results file (created,
 * or resumed: finished keys are skipped), its /problems and /devices rows,
 * and the queue of this run's items, largest estimated cost first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/driver_internal.h"
#include "scanflash/files.h"

/* The spec's hash for resume and merge: the canonical text without the
 * run-time limits (item_timeout, device_mem), which may change between a
 * run and its --resume without changing any item's key. */
static void spec_hash(const char *canonical, char out[65]) {
  size_t n = strlen(canonical), w = 0;
  char *t = malloc(n + 1);
  if (!t) {
    sf_sha256_hex(canonical, n, out);
    return;
  }
  for (const char *p = canonical; *p;) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) + 1 : strlen(p);
    if (strncmp(p, "item_timeout:", 13) && strncmp(p, "device_mem:", 11)) {
      memcpy(t + w, p, len);
      w += len;
    }
    p += len;
  }
  sf_sha256_hex(t, w, out);
  free(t);
}

static int skip_finished(void *user, const sf_work_item *item) {
  return sf_results_is_finished((const sf_results *)user, item->key);
}

static sf_status write_tables(sf_driver *d, const sf_results_device *devices, sf_error *err) {
  const sf_rank *rk = d->rk;
  const sf_spec *s = rk->spec;
  sf_results_problem *rows = calloc((size_t)s->n_problems, sizeof *rows);
  if (!rows) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  for (int32_t i = 0; i < s->n_problems; i++) {
    const int32_t p = s->problems[i];
    rows[i].index = p;
    snprintf(rows[i].task_id, sizeof rows[i].task_id, "%s", rk->set.items[p].task_id);
    rows[i].prompt_tokens = rk->corpus.prompt[p].n;
    rows[i].solution_tokens = sf_sched_solution_tokens(&rk->corpus, p);
    sf_sha256_hex(rk->set.items[p].prompt, strlen(rk->set.items[p].prompt), rows[i].prompt_sha256);
  }
  sf_status rc = sf_results_write_problems(d->res, rows, s->n_problems, err);
  free(rows);
  SF_TRY(rc);
  for (int i = 0; i < rk->size; i++)
    if (devices[i].backend[0]) SF_TRY(sf_results_write_devices(d->res, &devices[i], 1, err));
  return SF_OK;
}

static sf_status open_results(sf_driver *d, sf_error *err) {
  const sf_rank *rk = d->rk;
  char sha[65];
  spec_hash(rk->spec->canonical, sha);
  sf_results_provenance prov = {.spec_text = rk->spec->canonical, .spec_sha256 = sha,
                                .dataset_sha256 = rk->data_sha, .tokenizer_sha256 = rk->tok_sha,
                                .world_size = rk->size};
  return sf_results_open(d->opts->output, &prov, d->opts->resume ? SF_RESULTS_RESUME : SF_RESULTS_CREATE,
                         d->opts->retry_failed ? SF_RESULTS_RETRY_FAILED : 0, &d->res, err);
}

static void say_start(const sf_driver *d) {
  const sf_rank *rk = d->rk;
  if (rk->quiet) return;
  const sf_results_open_info *in = sf_results_info(d->res);
  if (!in->fresh)
    fprintf(stderr, SF_RUN_PROG ": resuming %s: %lld item(s) recorded, %lld finished, %lld to run again%s\n",
            d->opts->output, (long long)in->items, (long long)in->finished, (long long)in->to_retry,
            in->from_journal ? " (rebuilt from the journal: the last run did not close it)" : "");
  char shard[64] = "";
  if (d->opts->shard_count > 0)
    snprintf(shard, sizeof shard, ", shard %d/%d (%d items in other shards)", d->opts->shard_index,
             d->opts->shard_count, (int)d->n_other);
  char threads[48];
  const char *omp = getenv("OMP_NUM_THREADS");
  if (rk->threads > 0) snprintf(threads, sizeof threads, "%d", rk->threads);
  else snprintf(threads, sizeof threads, "OMP_NUM_THREADS=%s", omp ? omp : "default");
  if (rk->backend == SF_BACKEND_CUDA) snprintf(threads, sizeof threads, "one GPU");
  else snprintf(threads + strlen(threads), sizeof threads - strlen(threads), " thread(s)");
  fprintf(stderr, SF_RUN_PROG ": sweep '%s': %d item(s) to run (%d finished before%s) on %d rank(s)%s, backend %s, "
          "%s per rank -> %s\n",
          rk->spec->name, (int)d->queue.n_items, (int)d->n_before, shard, rk->size,
          rk->size > 1 ? " (rank 0 drives)" : "", rk->backend == SF_BACKEND_CUDA ? "cuda" : "cpu", threads,
          d->opts->output);
}

/* The workers by node (then rank), and each worker's node range in that
 * order, for context-parallel groups. Alone, rank 0 is a node of one. */
static const int *cmp_nodes;
static int by_node(const void *a, const void *b) {
  const int x = *(const int *)a, y = *(const int *)b;
  if (cmp_nodes[x] != cmp_nodes[y]) return cmp_nodes[x] < cmp_nodes[y] ? -1 : 1;
  return x < y ? -1 : x > y;
}

static void order_workers(sf_driver *d) {
  const int size = d->rk->size, first = size > 1 ? 1 : 0;
  d->n_order = 0;
  for (int w = first; w < size; w++) d->order[d->n_order++] = w;
  cmp_nodes = d->node;
  qsort(d->order, (size_t)d->n_order, sizeof *d->order, by_node);
  cmp_nodes = NULL;
  for (int i = 0; i < d->n_order;) {
    int j = i;
    while (j < d->n_order && d->node[d->order[j]] == d->node[d->order[i]]) j++;
    for (int m = i; m < j; m++) d->node_lo[d->order[m]] = i, d->node_hi[d->order[m]] = j;
    i = j;
  }
}

/* The largest set of workers of one node with distinct GPUs (cuda; every
 * worker on cpu): the most GPUs an item can have. */
static int largest_group(const sf_driver *d) {
  int best = 0;
  for (int i = 0; i < d->n_order; i = d->node_hi[d->order[i]]) {
    int n = 0;
    for (int v = i; v < d->node_hi[d->order[i]]; v++) {
      const int rv = d->order[v];
      int dup = 0; /* a lower worker of the node has the same GPU */
      for (int u = i; u < v && d->gpu[rv][0] && !dup; u++) dup = !strcmp(d->gpu[d->order[u]], d->gpu[rv]);
      n += !dup;
    }
    best = n > best ? n : best;
  }
  return best < SF_WIRE_MAX_GROUP ? best : SF_WIRE_MAX_GROUP;
}

int sf_driver_prepare(sf_driver **out, sf_rank *rk, const sf_run_options *opts, const sf_results_device *devices,
                      const int *nodes) {
  *out = NULL;
  sf_driver *d = calloc(1, sizeof *d);
  if (!d) {
    fprintf(stderr, SF_RUN_PROG ": out of memory\n");
    return SF_SCHED_EXIT_FAILURE;
  }
  d->rk = rk;
  d->opts = opts;
  sf_error err;
  sf_error_clear(&err);
  sf_status rc = sf_spec_expand(rk->spec, &d->queue, &err);
  if (rc == SF_OK) rc = open_results(d, &err);
  if (rc == SF_OK) rc = write_tables(d, devices, &err);
  if (rc == SF_OK) {
    sf_sched_queue(&d->queue, opts->shard_index, opts->shard_count, skip_finished, d->res, &d->n_before, &d->n_other);
    d->busy = malloc((size_t)rk->size * sizeof *d->busy);
    d->abort_sent = calloc((size_t)rk->size, 1);
    d->active = calloc((size_t)rk->size, 1);
    d->idle = calloc((size_t)rk->size, 1);
    d->leads = calloc((size_t)rk->size, 1);
    d->assigned = calloc((size_t)d->queue.n_items + 1, 1);
    d->node = calloc((size_t)rk->size, sizeof *d->node);
    d->gpu = calloc((size_t)rk->size, sizeof *d->gpu);
    d->order = calloc((size_t)rk->size, sizeof *d->order);
    d->node_lo = calloc((size_t)rk->size, sizeof *d->node_lo);
    d->node_hi = calloc((size_t)rk->size, sizeof *d->node_hi);
    if (!d->busy || !d->abort_sent || !d->active || !d->idle || !d->leads || !d->assigned || !d->node || !d->gpu ||
        !d->order || !d->node_lo || !d->node_hi)
      rc = sf_fail(&err, SF_ERR_NOMEM, "out of memory");
  }
  if (rc == SF_OK) {
    for (int i = 0; i < rk->size; i++) {
      d->node[i] = nodes[i];
      if (!strcmp(devices[i].backend, "cuda")) snprintf(d->gpu[i], sizeof d->gpu[i], "%s", devices[i].uuid);
    }
    order_workers(d);
    d->max_group = largest_group(d);
  }
  if (rc != SF_OK) {
    fprintf(stderr, SF_RUN_PROG ": %s\n", err.msg);
    sf_driver_free(d);
    return SF_SCHED_EXIT_FAILURE;
  }
  for (int i = 0; i < rk->size; i++) d->busy[i] = -1;
  say_start(d);
  *out = d;
  return SF_SCHED_EXIT_OK;
}

void sf_driver_free(sf_driver *d) {
  if (!d) return;
  if (d->res) sf_results_abort(d->res); /* only on error paths: run closes it */
  sf_plan_free(&d->queue);
  free(d->busy);
  free(d->abort_sent);
  free(d->active);
  free(d->idle);
  free(d->leads);
  free(d->assigned);
  free(d->node);
  free(d->gpu);
  free(d->order);
  free(d->node_lo);
  free(d->node_hi);
  free(d->fails);
  free(d);
}

