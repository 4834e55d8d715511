/* Item records and the in-memory state a journal or a file replays into. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/results_internal.h"

#define ALIGN8(x) (((x) + 7u) & ~(size_t)7u)
enum { COUNTS_SIZE = 24 }; /* n_repeats, n_steps, n_kernels as uint64 */

static void rec_layout(int64_t nr, int64_t ns, int64_t nk, size_t off[6]) {
  off[0] = RS_FRAME_HDR + COUNTS_SIZE;                                    /* work item */
  off[1] = ALIGN8(off[0] + sizeof(sf_work_item));                         /* result */
  off[2] = ALIGN8(off[1] + sizeof(sf_item_result));                       /* repeats */
  off[3] = ALIGN8(off[2] + (size_t)nr * sizeof(sf_repeat_result));        /* steps */
  off[4] = ALIGN8(off[3] + (size_t)ns * sizeof(sf_step_result));          /* kernels */
  off[5] = ALIGN8(off[4] + (size_t)nk * sizeof(sf_kernel_result));        /* end */
}

static void rec_point(rs_rec *rec, const size_t off[6]) {
  rec->item = (sf_work_item *)(void *)(rec->buf + off[0]);
  rec->result = (sf_item_result *)(void *)(rec->buf + off[1]);
  rec->repeats = (sf_repeat_result *)(void *)(rec->buf + off[2]);
  rec->steps = (sf_step_result *)(void *)(rec->buf + off[3]);
  rec->kernels = (sf_kernel_result *)(void *)(rec->buf + off[4]);
}

static int key_ok(const char *key) { return key[0] && memchr(key, '\0', SF_KEY_LEN) != NULL; }

sf_status rs_rec_build(rs_rec *rec, const sf_work_item *item, const sf_item_result *result,
                       const sf_repeat_result *repeats, int64_t n_repeats, const sf_step_result *steps,
                       int64_t n_steps, const sf_kernel_result *kernels, int64_t n_kernels,
                       sf_error *err) {
  memset(rec, 0, sizeof *rec);
  if (!item || !result) return sf_fail(err, SF_ERR_ARG, "results: item and result are required");
  if (!key_ok(item->key)) return sf_fail(err, SF_ERR_ARG, "results: work item with an empty or unterminated key");
  if (strncmp(item->key, result->key, SF_KEY_LEN))
    return sf_fail(err, SF_ERR_ARG, "results: result key '%.16s' is not the item's key '%s'", result->key,
                   item->key);
  const int64_t lim = (int64_t)1 << 40;
  if (n_repeats < 0 || n_steps < 0 || n_kernels < 0 || n_repeats > lim || n_steps > lim || n_kernels > lim ||
      (n_repeats && !repeats) || (n_steps && !steps) || (n_kernels && !kernels))
    return sf_fail(err, SF_ERR_ARG, "results: item %s: bad record counts", item->key);
  size_t off[6];
  rec_layout(n_repeats, n_steps, n_kernels, off);
  rec->buf = calloc(1, off[5]);
  if (!rec->buf) return sf_fail(err, SF_ERR_NOMEM, "results: out of memory (item %s)", item->key);
  rec->size = off[5];
  uint64_t counts[3] = {(uint64_t)n_repeats, (uint64_t)n_steps, (uint64_t)n_kernels};
  memcpy(rec->buf + RS_FRAME_HDR, counts, sizeof counts);
  rec_point(rec, off);
  rec->n_repeats = n_repeats;
  rec->n_steps = n_steps;
  rec->n_kernels = n_kernels;

  sf_results_item row;
  memcpy(&row.item, item, sizeof *item);
  memcpy(&row.result, result, sizeof *result);
  sf_results_item norm;
  rs_row_copy(T_ITEMS, &norm, &row);
  *rec->item = norm.item;
  *rec->result = norm.result;
  for (int64_t i = 0; i < n_repeats; i++) {
    rs_row_copy(T_REPEATS, &rec->repeats[i], &repeats[i]);
    memcpy(rec->repeats[i].key, rec->item->key, SF_KEY_LEN);
  }
  for (int64_t i = 0; i < n_steps; i++) {
    rs_row_copy(T_STEPS, &rec->steps[i], &steps[i]);
    memcpy(rec->steps[i].key, rec->item->key, SF_KEY_LEN);
  }
  for (int64_t i = 0; i < n_kernels; i++) {
    rs_row_copy(T_KERNELS, &rec->kernels[i], &kernels[i]);
    memcpy(rec->kernels[i].key, rec->item->key, SF_KEY_LEN);
  }
  return SF_OK;
}

sf_status rs_rec_parse(rs_rec *rec, unsigned char *buf, size_t size, sf_error *err) {
  memset(rec, 0, sizeof *rec);
  uint64_t c[3];
  if (size < RS_FRAME_HDR + COUNTS_SIZE) {
    free(buf);
    return sf_fail(err, SF_ERR_FORMAT, "item record too short");
  }
  memcpy(c, buf + RS_FRAME_HDR, sizeof c);
  const uint64_t lim = (uint64_t)1 << 40;
  size_t off[6];
  if (c[0] > lim || c[1] > lim || c[2] > lim) goto bad;
  rec_layout((int64_t)c[0], (int64_t)c[1], (int64_t)c[2], off);
  if (off[5] != size) goto bad;
  rec->buf = buf;
  rec->size = size;
  rec->n_repeats = (int64_t)c[0];
  rec->n_steps = (int64_t)c[1];
  rec->n_kernels = (int64_t)c[2];
  rec_point(rec, off);
  if (!key_ok(rec->item->key)) {
    rs_rec_free(rec);
    return sf_fail(err, SF_ERR_FORMAT, "item record with a bad key");
  }
  return SF_OK;
bad:
  free(buf);
  return sf_fail(err, SF_ERR_FORMAT, "item record sizes do not add up");
}

void rs_rec_free(rs_rec *rec) {
  free(rec->buf);
  memset(rec, 0, sizeof *rec);
}

/* ---- state ---- */

void rs_state_init(rs_state *s) { memset(s, 0, sizeof *s); }

void rs_state_free(rs_state *s) {
  rs_prov_free(&s->prov);
  free(s->devices);
  free(s->problems);
  for (int64_t i = 0; i < s->n_items; i++) rs_rec_free(&s->items[i]);
  free(s->items);
  rs_keymap_free(&s->index);
  rs_keymap_free(&s->problem_index);
  memset(s, 0, sizeof *s);
}

static sf_status grow(void **p, int64_t *cap, int64_t need, size_t elem, sf_error *err) {
  if (need <= *cap) return SF_OK;
  int64_t c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  void *np = realloc(*p, (size_t)c * elem);
  if (!np) return sf_fail(err, SF_ERR_NOMEM, "results: out of memory (%lld rows)", (long long)c);
  *p = np;
  *cap = c;
  return SF_OK;
}

sf_status rs_state_add_item(rs_state *s, rs_rec *rec, sf_error *err) {
  sf_status rc = grow((void **)&s->items, &s->cap_items, s->n_items + 1, sizeof *s->items, err);
  if (rc != SF_OK) {
    rs_rec_free(rec);
    return rc;
  }
  int64_t old = rs_keymap_get(&s->index, rec->item->key);
  rc = rs_keymap_put(&s->index, rec->item->key, s->n_items, err);
  if (rc != SF_OK) {
    rs_rec_free(rec);
    return rc;
  }
  if (old >= 0) rs_rec_free(&s->items[old]);
  s->items[s->n_items++] = *rec;
  memset(rec, 0, sizeof *rec);
  return SF_OK;
}

rs_rec *rs_state_find(const rs_state *s, const char *key) {
  int64_t i = rs_keymap_get(&s->index, key);
  return i >= 0 && s->items[i].buf ? &s->items[i] : NULL;
}

int64_t rs_state_live_items(const rs_state *s) { return s->index.count; }

static int same_device(const sf_results_device *a, const sf_results_device *b) {
  return a->rank == b->rank && a->device == b->device && !strncmp(a->host, b->host, sizeof a->host) &&
         !strncmp(a->uuid, b->uuid, sizeof a->uuid);
}

sf_status rs_state_add_devices(rs_state *s, const sf_results_device *rows, int64_t n,
                               sf_results_device *new_rows, int64_t *added, sf_error *err) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) {
    sf_results_device d;
    rs_row_copy(T_DEVICES, &d, &rows[i]);
    int dup = 0;
    for (int64_t j = 0; j < s->n_devices && !dup; j++) dup = same_device(&s->devices[j], &d);
    if (dup) continue;
    SF_TRY(grow((void **)&s->devices, &s->cap_devices, s->n_devices + 1, sizeof d, err));
    s->devices[s->n_devices++] = d;
    if (new_rows) new_rows[k] = d;
    k++;
  }
  if (added) *added = k;
  return SF_OK;
}

sf_status rs_state_add_problems(rs_state *s, const sf_results_problem *rows, int64_t n,
                                sf_results_problem *new_rows, int64_t *added, sf_error *err) {
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) {
    char key[SF_KEY_LEN];
    snprintf(key, sizeof key, "p%d", rows[i].index);
    if (rs_keymap_get(&s->problem_index, key) >= 0) continue;
    sf_results_problem p;
    rs_row_copy(T_PROBLEMS, &p, &rows[i]);
    SF_TRY(grow((void **)&s->problems, &s->cap_problems, s->n_problems + 1, sizeof p, err));
    SF_TRY(rs_keymap_put(&s->problem_index, key, s->n_problems, err));
    s->problems[s->n_problems++] = p;
    if (new_rows) new_rows[k] = p;
    k++;
  }
  if (added) *added = k;
  return SF_OK;
}

/* Rows of one child table grouped by item: order[first[s] .. first[s+1]) are
 * the rows of item s (in file order). */
static sf_status group_rows(const rs_keymap *items, const void *rows, int64_t n, size_t row_size,
                            int64_t n_items, int64_t **first_out, int64_t **order_out, sf_error *err) {
  int64_t *slot = malloc((size_t)(n ? n : 1) * sizeof *slot);
  int64_t *first = calloc((size_t)n_items + 2, sizeof *first);
  int64_t *order = malloc((size_t)(n ? n : 1) * sizeof *order);
  if (!slot || !first || !order) {
    free(slot);
    free(first);
    free(order);
    return sf_fail(err, SF_ERR_NOMEM, "results: out of memory (%lld rows)", (long long)n);
  }
  for (int64_t i = 0; i < n; i++) {
    const char *key = (const char *)rows + (size_t)i * row_size; /* key is the first field */
    slot[i] = rs_keymap_get(items, key);
    if (slot[i] >= 0) first[slot[i] + 1]++;
  }
  for (int64_t s = 0; s < n_items; s++) first[s + 1] += first[s];
  int64_t *pos = calloc((size_t)n_items + 1, sizeof *pos);
  if (!pos) {
    free(slot);
    free(first);
    free(order);
    return sf_fail(err, SF_ERR_NOMEM, "results: out of memory");
  }
  for (int64_t i = 0; i < n; i++)
    if (slot[i] >= 0) order[first[slot[i]] + pos[slot[i]]++] = i;
  free(pos);
  free(slot);
  *first_out = first;
  *order_out = order;
  return SF_OK;
}

sf_status rs_state_from_data(rs_state *s, const sf_results_data *d, sf_error *err) {
  rs_state_init(s);
  sf_status rc = SF_OK;
  rs_keymap slots = {0}; /* key -> the last /items row with it */
  int64_t *first[3] = {0}, *order[3] = {0};
  void *tmp[3] = {0};

  s->have_prov = 1;
  sf_results_provenance pv = d->prov;
  rc = rs_prov_from(&s->prov, &pv, err);
  if (rc != SF_OK) goto done;
  s->prov.schema_version = d->schema_version;
  rc = rs_state_add_devices(s, d->devices, d->n_devices, NULL, NULL, err);
  if (rc == SF_OK) rc = rs_state_add_problems(s, d->problems, d->n_problems, NULL, NULL, err);
  for (int64_t i = 0; i < d->n_items && rc == SF_OK; i++)
    if (d->items[i].item.key[0]) rc = rs_keymap_put(&slots, d->items[i].item.key, i, err);
  if (rc != SF_OK) goto done;

  const void *crows[3] = {d->repeats, d->steps, d->kernels};
  const int64_t cn[3] = {d->n_repeats, d->n_steps, d->n_kernels};
  const size_t csz[3] = {sizeof(sf_repeat_result), sizeof(sf_step_result), sizeof(sf_kernel_result)};
  for (int c = 0; c < 3 && rc == SF_OK; c++)
    rc = group_rows(&slots, crows[c], cn[c], csz[c], d->n_items, &first[c], &order[c], err);
  if (rc != SF_OK) goto done;
  for (int c = 0; c < 3; c++) {
    tmp[c] = malloc(csz[c] * (size_t)(cn[c] ? cn[c] : 1));
    if (!tmp[c]) {
      rc = sf_fail(err, SF_ERR_NOMEM, "results: out of memory");
      goto done;
    }
  }
  for (int64_t i = 0; i < d->n_items && rc == SF_OK; i++) {
    const sf_results_item *it = &d->items[i];
    if (!it->item.key[0] || rs_keymap_get(&slots, it->item.key) != i) continue; /* a duplicate: last wins */
    int64_t nc[3];
    for (int c = 0; c < 3; c++) {
      nc[c] = first[c][i + 1] - first[c][i];
      for (int64_t j = 0; j < nc[c]; j++)
        memcpy((char *)tmp[c] + (size_t)j * csz[c], (const char *)crows[c] + (size_t)order[c][first[c][i] + j] * csz[c],
               csz[c]);
    }
    rs_rec rec;
    rc = rs_rec_build(&rec, &it->item, &it->result, tmp[0], nc[0], tmp[1], nc[1], tmp[2], nc[2], err);
    if (rc == SF_OK) rc = rs_state_add_item(s, &rec, err);
  }
done:
  for (int c = 0; c < 3; c++) {
    free(first[c]);
    free(order[c]);
    free(tmp[c]);
  }
  rs_keymap_free(&slots);
  if (rc != SF_OK) rs_state_free(s);
  return rc;
}
