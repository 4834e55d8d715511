/* Loading: every input file through the results reader, then one in-memory
 * set with unique keys (shards merged the way `scanflash merge` does: ok
 * first, then other finished statuses, then error/timeout, then
 * interrupted; among equals the latest t_end), each item with its own
 * child rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

enum { MAX_DUP_NOTES = 20 };

/* The reader's notes about one file, held until the file is kept (a file
 * that is refused gets its one-line reason only). */
typedef struct held_notes {
  char **lines;
  int n;
} held_notes;

static void reader_note(void *ctx, const char *line) {
  held_notes *h = ctx;
  char **nl = realloc(h->lines, (size_t)(h->n + 1) * sizeof *nl);
  if (!nl) return;
  h->lines = nl;
  if ((h->lines[h->n] = strdup(line))) h->n++;
}

static void held_flush(held_notes *h, int emit) {
  for (int i = 0; i < h->n; i++) {
    if (emit) rp_note("%s", h->lines[i]);
    free(h->lines[i]);
  }
  free(h->lines);
  h->lines = NULL;
  h->n = 0;
}

static int held_has(const held_notes *h, const char *what) {
  for (int i = 0; i < h->n; i++)
    if (strstr(h->lines[i], what)) return 1;
  return 0;
}

static int cmp_rep(const void *a, const void *b) {
  const sf_repeat_result *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c ? c : (x->repeat > y->repeat) - (x->repeat < y->repeat);
}

static int cmp_step(const void *a, const void *b) {
  const sf_step_result *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  if (c) return c;
  if (x->repeat != y->repeat) return (x->repeat > y->repeat) - (x->repeat < y->repeat);
  return (x->step > y->step) - (x->step < y->step);
}

static int cmp_kern(const void *a, const void *b) {
  const sf_kernel_result *x = a, *y = b;
  return strcmp(x->key, y->key);
}

/* [lo, hi) of key in rows sorted by key; rows are `size` bytes, key first. */
static int64_t lower_bound(const void *rows, int64_t n, size_t size, const char *key, int upper) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    int c = strcmp((const char *)rows + (size_t)mid * size, key);
    if (upper ? c <= 0 : c < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static int status_rank(int32_t s) {
  switch (s) {
    case SF_STATUS_OK: return 3;
    case SF_STATUS_OOM:
    case SF_STATUS_OOM_PREDICTED:
    case SF_STATUS_SKIPPED: return 2;
    case SF_STATUS_ERROR:
    case SF_STATUS_TIMEOUT: return 1;
    default: return 0;
  }
}

typedef struct cand {
  const sf_results_item *row;
  int file;
  int64_t pos; /* order of reading: file, then row */
} cand;

/* By key; for one key the one to keep first. */
static int cmp_cand(const void *a, const void *b) {
  const cand *x = a, *y = b;
  int c = strcmp(x->row->item.key, y->row->item.key);
  if (c) return c;
  int rx = status_rank(x->row->result.status), ry = status_rank(y->row->result.status);
  if (rx != ry) return ry - rx;
  if (x->row->result.t_end != y->row->result.t_end) return x->row->result.t_end > y->row->result.t_end ? -1 : 1;
  return (x->pos < y->pos) ? 1 : (x->pos > y->pos) ? -1 : 0; /* the later input wins ties */
}

static sf_status sort_children(rp_input *in, sf_error *err) {
  const sf_results_data *d = &in->d;
  in->rep_sorted = malloc((size_t)(d->n_repeats ? d->n_repeats : 1) * sizeof *in->rep_sorted);
  in->step_sorted = malloc((size_t)(d->n_steps ? d->n_steps : 1) * sizeof *in->step_sorted);
  in->kern_sorted = malloc((size_t)(d->n_kernels ? d->n_kernels : 1) * sizeof *in->kern_sorted);
  if (!in->rep_sorted || !in->step_sorted || !in->kern_sorted)
    return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", in->path);
  if (d->n_repeats) memcpy(in->rep_sorted, d->repeats, (size_t)d->n_repeats * sizeof *d->repeats);
  if (d->n_steps) memcpy(in->step_sorted, d->steps, (size_t)d->n_steps * sizeof *d->steps);
  if (d->n_kernels) memcpy(in->kern_sorted, d->kernels, (size_t)d->n_kernels * sizeof *d->kernels);
  qsort(in->rep_sorted, (size_t)d->n_repeats, sizeof *in->rep_sorted, cmp_rep);
  qsort(in->step_sorted, (size_t)d->n_steps, sizeof *in->step_sorted, cmp_step);
  qsort(in->kern_sorted, (size_t)d->n_kernels, sizeof *in->kern_sorted, cmp_kern);
  return SF_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Child rows whose key has no /items row in their file. */
static int64_t count_orphans(const rp_input *in) {
  const sf_results_data *d = &in->d;
  const char **keys = malloc((size_t)(d->n_items ? d->n_items : 1) * sizeof *keys);
  if (!keys) return 0;
  for (int64_t i = 0; i < d->n_items; i++) keys[i] = d->items[i].item.key;
  qsort(keys, (size_t)d->n_items, sizeof *keys, cmp_str);
  int64_t orphans = 0;
  const struct {
    const void *rows;
    int64_t n;
    size_t size;
  } tabs[3] = {{in->rep_sorted, d->n_repeats, sizeof(sf_repeat_result)},
               {in->step_sorted, d->n_steps, sizeof(sf_step_result)},
               {in->kern_sorted, d->n_kernels, sizeof(sf_kernel_result)}};
  for (int t = 0; t < 3; t++)
    for (int64_t r = 0; r < tabs[t].n; r++) {
      const char *k = (const char *)tabs[t].rows + (size_t)r * tabs[t].size;
      if (!bsearch(&k, keys, (size_t)d->n_items, sizeof *keys, cmp_str)) orphans++;
    }
  free(keys);
  return orphans;
}

sf_status rp_load(rp_set *s, const char *const *paths, int n, int lenient, const char *label, sf_error *err) {
  memset(s, 0, sizeof *s);
  s->files = calloc((size_t)(n > 0 ? n : 1), sizeof *s->files);
  if (!s->files) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  s->n_files = n;
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    rp_input *in = &s->files[i];
    in->path = strdup(paths[i]);
    if (!in->path) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    sf_error rerr = {0};
    sf_results_partial_info info;
    held_notes held = {0};
    if (sf_results_read_partial(paths[i], lenient ? SF_RESULTS_READ_LENIENT : 0, &in->d, reader_note, &held, &info,
                                &rerr) != SF_OK) {
      held_flush(&held, 0);
      if (rerr.code == SF_ERR_NOMEM) return sf_fail(err, SF_ERR_NOMEM, "%s", rerr.msg);
      if (rerr.code == SF_ERR_UNSUPPORTED && !lenient)
        rp_note("%s%s (use --force to read it by field name)", label, rerr.msg);
      else
        rp_note("%s%s", label, rerr.msg);
      continue;
    }
    /* Read in part, and nothing of /items: as good as refused. */
    if (info.partial && in->d.n_items == 0 && (held_has(&held, "table /items") || held_has(&held, "/items: missing"))) {
      const char *why = held_has(&held, "table /items") ? "missing table /items" : "/items lacks fields";
      held_flush(&held, 0);
      sf_results_data_free(&in->d);
      rp_note("%s%s: %s (nothing to report from it)", label, paths[i], why);
      continue;
    }
    held_flush(&held, 1);
    in->loaded = 1;
    in->from_journal = info.from_journal;
    in->partial = info.partial || info.other_schema;
    s->n_loaded++;
    SF_TRY(sort_children(in, err));
    int64_t orphans = count_orphans(in);
    if (orphans) {
      rp_note("%s: %lld child rows (repeats, decode steps, kernels) belong to no item; left out", in->path,
              (long long)orphans);
      s->n_orphans += orphans;
    }
    total += in->d.n_items;
  }
  int first = -1;
  for (int i = 0; i < n; i++) {
    if (!s->files[i].loaded) continue;
    if (first < 0) {
      first = i;
    } else if (strcmp(s->files[i].d.prov.spec_sha256, s->files[first].d.prov.spec_sha256)) {
      rp_note("%s%s and %s come from different specs; their items are reported together", label,
              s->files[first].path, s->files[i].path);
    }
  }

  cand *c = malloc((size_t)(total ? total : 1) * sizeof *c);
  s->items = calloc((size_t)(total ? total : 1), sizeof *s->items);
  if (!c || !s->items) {
    free(c);
    return sf_fail(err, SF_ERR_NOMEM, "out of memory (%lld items)", (long long)total);
  }
  int64_t m = 0, empty = 0;
  for (int i = 0; i < n; i++) {
    if (!s->files[i].loaded) continue;
    for (int64_t r = 0; r < s->files[i].d.n_items; r++) {
      if (!s->files[i].d.items[r].item.key[0]) {
        empty++;
        continue;
      }
      c[m].row = &s->files[i].d.items[r];
      c[m].file = i;
      c[m].pos = m;
      m++;
    }
  }
  if (empty) rp_note("%s%lld items without a key left out", label, (long long)empty);
  qsort(c, (size_t)m, sizeof *c, cmp_cand);
  int64_t dup_notes = 0;
  for (int64_t k = 0; k < m;) {
    int64_t e = k + 1;
    while (e < m && !strcmp(c[e].row->item.key, c[k].row->item.key)) e++;
    for (int64_t j = k + 1; j < e; j++) {
      s->n_duplicates++;
      if (dup_notes++ < MAX_DUP_NOTES)
        rp_note("%sduplicate key %s: in %s (%s) and %s (%s); kept the one from %s", label, c[k].row->item.key,
                s->files[c[k].file].path, sf_item_status_name((sf_item_status)c[k].row->result.status),
                s->files[c[j].file].path, sf_item_status_name((sf_item_status)c[j].row->result.status),
                s->files[c[k].file].path);
    }
    rp_item *it = &s->items[s->n_items++];
    rp_input *in = &s->files[c[k].file];
    it->row = c[k].row;
    it->file = c[k].file;
    in->kept_items++;
    const char *key = it->row->item.key;
    const sf_results_data *d = &in->d;
    int64_t lo = lower_bound(in->rep_sorted, d->n_repeats, sizeof *in->rep_sorted, key, 0);
    int64_t hi = lower_bound(in->rep_sorted, d->n_repeats, sizeof *in->rep_sorted, key, 1);
    it->repeats = in->rep_sorted + lo;
    it->n_repeats = hi - lo;
    lo = lower_bound(in->step_sorted, d->n_steps, sizeof *in->step_sorted, key, 0);
    hi = lower_bound(in->step_sorted, d->n_steps, sizeof *in->step_sorted, key, 1);
    it->steps = in->step_sorted + lo;
    it->n_steps = hi - lo;
    lo = lower_bound(in->kern_sorted, d->n_kernels, sizeof *in->kern_sorted, key, 0);
    hi = lower_bound(in->kern_sorted, d->n_kernels, sizeof *in->kern_sorted, key, 1);
    it->kernels = in->kern_sorted + lo;
    it->n_kernels = hi - lo;
    k = e;
  }
  if (dup_notes > MAX_DUP_NOTES)
    rp_note("%s... and %lld more duplicate keys", label, (long long)(dup_notes - MAX_DUP_NOTES));
  free(c);
  return SF_OK;
}

void rp_set_free(rp_set *s) {
  for (int i = 0; i < s->n_files; i++) {
    rp_input *in = &s->files[i];
    free(in->path);
    if (in->loaded) sf_results_data_free(&in->d);
    free(in->rep_sorted);
    free(in->step_sorted);
    free(in->kern_sorted);
  }
  free(s->files);
  free(s->items);
  memset(s, 0, sizeof *s);
}
