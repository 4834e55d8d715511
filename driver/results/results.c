/* The results writer: open (create or resume), durable item writes, close.
 *
 * Invariants:
 *  - The journal holds every record ever reported, in order; replaying it
 *    with "the last record of a key wins" gives the file's content.
 *  - While a writer is open, the .h5 holds every key of the journal except
 *    the ones this run will retry (pending), and never two rows for a key.
 *  - A journal present at open means the last run did not close cleanly:
 *    the .h5 is then rewritten from the journal (RESULTS.h5.tmp, renamed
 *    over), whatever state the kill left it in.
 *  - A clean close writes the pending keys back, verifies the .h5 against
 *    the index by reading it, and only then removes the journal.
 *  - RESULTS.h5.lock (flock) keeps two writers off one file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "results/results_internal.h"
#include "scanflash/files.h"

typedef struct entry {
  char key[SF_KEY_LEN];
  int32_t status;
  unsigned char in_h5, pending;
  double t_start, t_end;
  int64_t n_repeats, n_steps, n_kernels;
  int64_t pend_slot; /* index in r->pending when pending */
} entry;

struct sf_results {
  char *path, *jpath, *jtmp, *htmp, *lockpath;
  int jfd, lockfd;
  rs_h5 h;
  int h5_open;
  int retry_failed;
  rs_state meta;     /* provenance, devices, problems (no items) */
  rs_keymap keys;    /* key -> entries[] */
  entry *entries;
  int64_t n_entries, cap_entries;
  rs_rec *pending;   /* records of keys to retry, until rewritten or closed */
  int64_t n_pending;
  sf_results_open_info info;
};

int sf_results_status_finished(int32_t status, int retry_failed) {
  switch (status) {
    case SF_STATUS_OK:
    case SF_STATUS_OOM:
    case SF_STATUS_OOM_PREDICTED:
    case SF_STATUS_SKIPPED: return 1;
    case SF_STATUS_ERROR:
    case SF_STATUS_TIMEOUT: return !retry_failed;
    default: return 0;
  }
}

static entry *find_entry(const sf_results *r, const char *key) {
  int64_t i = rs_keymap_get(&r->keys, key);
  return i >= 0 ? &r->entries[i] : NULL;
}

static void entry_set(entry *e, const rs_rec *rec) {
  e->status = rec->result->status;
  e->t_start = rec->result->t_start;
  e->t_end = rec->result->t_end;
  e->n_repeats = rec->n_repeats;
  e->n_steps = rec->n_steps;
  e->n_kernels = rec->n_kernels;
}

static sf_status put_entry(sf_results *r, const rs_rec *rec, entry **out, sf_error *err) {
  entry *e = find_entry(r, rec->item->key);
  if (!e) {
    if (r->n_entries == r->cap_entries) {
      int64_t c = r->cap_entries ? r->cap_entries * 2 : 256;
      entry *ne = realloc(r->entries, (size_t)c * sizeof *ne);
      if (!ne) return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory (key index)", r->path);
      r->entries = ne;
      r->cap_entries = c;
    }
    SF_TRY(rs_keymap_put(&r->keys, rec->item->key, r->n_entries, err));
    e = &r->entries[r->n_entries++];
    memset(e, 0, sizeof *e);
    memcpy(e->key, rec->item->key, SF_KEY_LEN);
    e->pend_slot = -1;
  }
  entry_set(e, rec);
  *out = e;
  return SF_OK;
}

static void free_handle(sf_results *r) {
  if (r->h5_open) rs_h5_close(&r->h, r->path, NULL);
  if (r->jfd >= 0) close(r->jfd);
  if (r->lockfd >= 0) {
    unlink(r->lockpath);
    close(r->lockfd);
  }
  rs_state_free(&r->meta);
  rs_keymap_free(&r->keys);
  free(r->entries);
  for (int64_t i = 0; i < r->n_pending; i++) rs_rec_free(&r->pending[i]);
  free(r->pending);
  free(r->path);
  free(r->jpath);
  free(r->jtmp);
  free(r->htmp);
  free(r->lockpath);
  free(r);
}

static int skip_pending(void *ctx, const rs_rec *rec) {
  const sf_results *r = ctx;
  const entry *e = find_entry(r, rec->item->key);
  return e && e->pending;
}

static int skip_not_finished(void *ctx, const rs_rec *rec) {
  const int *retry_failed = ctx;
  return !sf_results_status_finished(rec->result->status, *retry_failed);
}

static sf_status check_spec(const char *path, const rs_prov *file, const rs_prov *want, int spec_given,
                            sf_error *err) {
  if (file->schema_version != SF_RESULTS_SCHEMA_VERSION)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "%s: schema_version %d is not supported (this scanflash reads %d)", path,
                   file->schema_version, SF_RESULTS_SCHEMA_VERSION);
  if (spec_given && strcmp(file->spec_sha256, want->spec_sha256))
    return sf_fail(err, SF_ERR_ARG,
                   "%s: was written from another spec (spec_sha256 %.12s..., this run's %.12s...); resume "
                   "with the same spec or write a new file",
                   path, file->spec_sha256, want->spec_sha256);
  return SF_OK;
}

/* Index entries, pending records and metadata from a replayed state (taken). */
static sf_status adopt_state(sf_results *r, rs_state *st, sf_error *err) {
  for (int64_t i = 0; i < st->n_items; i++) {
    rs_rec *rec = &st->items[i];
    if (!rec->buf) continue;
    entry *e;
    SF_TRY(put_entry(r, rec, &e, err));
    r->info.items++;
    if (sf_results_status_finished(rec->result->status, r->retry_failed)) {
      r->info.finished++;
      e->in_h5 = 1;
      continue;
    }
    r->info.to_retry++;
    rs_rec *np = realloc(r->pending, (size_t)(r->n_pending + 1) * sizeof *np);
    if (!np) return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", r->path);
    r->pending = np;
    e->pending = 1;
    e->pend_slot = r->n_pending;
    r->pending[r->n_pending++] = *rec;
    memset(rec, 0, sizeof *rec); /* taken: the state no longer frees it */
  }
  rs_prov_free(&r->meta.prov);
  r->meta.prov = st->prov;
  memset(&st->prov, 0, sizeof st->prov);
  r->meta.have_prov = 1;
  SF_TRY(rs_state_add_devices(&r->meta, st->devices, st->n_devices, NULL, NULL, err));
  return rs_state_add_problems(&r->meta, st->problems, st->n_problems, NULL, NULL, err);
}

static sf_status take_lock(sf_results *r, sf_error *err) {
  r->lockfd = open(r->lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (r->lockfd < 0) return sf_fail(err, SF_ERR_IO, "%s: cannot create: %s", r->lockpath, strerror(errno));
  if (flock(r->lockfd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(r->lockfd);
    r->lockfd = -1; /* not ours: leave the file */
    if (e == EWOULDBLOCK)
      return sf_fail(err, SF_ERR_IO, "%s: in use by another scanflash process (%s is locked)", r->path, r->lockpath);
    return sf_fail(err, SF_ERR_IO, "%s: cannot lock: %s", r->lockpath, strerror(e));
  }
  return SF_OK;
}

static sf_status unlink_if_there(const char *path, sf_error *err) {
  if (unlink(path) != 0 && errno != ENOENT) return sf_fail(err, SF_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
  return SF_OK;
}

static sf_status open_fresh(sf_results *r, const rs_prov *want, sf_error *err) {
  rs_state st;
  rs_state_init(&st);
  sf_status rc = rs_prov_copy(&st.prov, want, err);
  st.have_prov = 1;
  if (rc == SF_OK) rc = rs_journal_write_state(r->jpath, r->jtmp, &st, err);
  if (rc == SF_OK) rc = rs_h5_write_state(r->path, r->htmp, &st, NULL, NULL, err);
  if (rc == SF_OK) rc = rs_journal_open_append(r->jpath, -1, &r->jfd, err);
  if (rc == SF_OK) rc = adopt_state(r, &st, err);
  rs_state_free(&st);
  r->info.fresh = 1;
  return rc;
}

static sf_status open_resume(sf_results *r, const rs_prov *want, int spec_given, sf_error *err) {
  int have_h5 = sf_file_exists(r->path), have_j = sf_file_exists(r->jpath);
  rs_state st;
  rs_state_init(&st);
  sf_status rc = SF_OK;
  if (have_j) {
    rs_journal_read_info ji;
    SF_TRY(rs_journal_read(r->jpath, &st, &ji, err));
    if (!ji.have_header) { /* killed while the journal was being created: nothing was reported */
      rs_state_free(&st);
      have_j = 0;
    } else {
      rc = check_spec(r->path, &st.prov, want, spec_given, err);
      /* Rewrite the .h5 from the journal: whatever the kill left, it is replaced atomically. */
      if (rc == SF_OK) rc = rs_journal_open_append(r->jpath, ji.valid_end, &r->jfd, err);
      if (rc == SF_OK) rc = rs_h5_write_state(r->path, r->htmp, &st, skip_not_finished, &r->retry_failed, err);
      if (rc == SF_OK) rc = adopt_state(r, &st, err);
      r->info.from_journal = 1;
      r->info.rebuilt = 1;
      r->info.torn_bytes = ji.file_size - ji.valid_end;
      rs_state_free(&st);
      return rc;
    }
  }
  if (!have_h5) {
    SF_TRY(unlink_if_there(r->jpath, err));
    return open_fresh(r, want, err);
  }
  /* A file that was closed cleanly (or merged): its own rows are the truth. */
  sf_results_data d;
  rc = sf_results_read(r->path, 0, &d, err);
  if (rc == SF_ERR_FORMAT) return sf_fail_context(err, "cannot resume (no journal to rebuild from)");
  if (rc != SF_OK) return rc;
  rs_prov fp;
  sf_results_provenance fv = d.prov;
  rc = rs_prov_from(&fp, &fv, err);
  if (rc == SF_OK) {
    fp.schema_version = d.schema_version;
    rc = check_spec(r->path, &fp, want, spec_given, err);
    rs_prov_free(&fp);
  }
  if (rc == SF_OK) rc = rs_state_from_data(&st, &d, err);
  int64_t n_rows_items = d.n_items, n_child = d.n_repeats + d.n_steps + d.n_kernels;
  sf_results_data_free(&d);
  if (rc != SF_OK) return rc;
  /* Rows the state dropped (a duplicate key, rows without an item) or keys to
   * retry mean the .h5 must be rewritten; the journal comes first. */
  int64_t kept_child = 0;
  int need_rewrite = n_rows_items != rs_state_live_items(&st);
  for (int64_t i = 0; i < st.n_items; i++) {
    const rs_rec *rec = &st.items[i];
    if (!rec->buf) continue;
    kept_child += rec->n_repeats + rec->n_steps + rec->n_kernels;
    if (!sf_results_status_finished(rec->result->status, r->retry_failed)) need_rewrite = 1;
  }
  if (kept_child != n_child) need_rewrite = 1;
  rc = rs_journal_write_state(r->jpath, r->jtmp, &st, err);
  if (rc == SF_OK) rc = rs_journal_open_append(r->jpath, -1, &r->jfd, err);
  if (rc == SF_OK && need_rewrite) {
    rc = rs_h5_write_state(r->path, r->htmp, &st, skip_not_finished, &r->retry_failed, err);
    r->info.rebuilt = 1;
  }
  if (rc == SF_OK) rc = adopt_state(r, &st, err);
  rs_state_free(&st);
  return rc;
}

sf_status sf_results_open(const char *path, const sf_results_provenance *prov, sf_results_mode mode, int flags,
                          sf_results **out, sf_error *err) {
  *out = NULL;
  if (!path || !path[0]) return sf_fail(err, SF_ERR_ARG, "results: no output file given");
  if (mode != SF_RESULTS_CREATE && mode != SF_RESULTS_RESUME)
    return sf_fail(err, SF_ERR_ARG, "results: bad open mode %d", (int)mode);
  sf_results *r = calloc(1, sizeof *r);
  if (!r) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  r->jfd = r->lockfd = -1;
  r->retry_failed = (flags & SF_RESULTS_RETRY_FAILED) != 0;
  rs_state_init(&r->meta);
  r->path = strdup(path);
  r->jpath = rs_path_plus(path, ".journal");
  r->jtmp = rs_path_plus(path, ".journal.tmp");
  r->htmp = rs_path_plus(path, ".tmp");
  r->lockpath = rs_path_plus(path, ".lock");
  if (!r->path || !r->jpath || !r->jtmp || !r->htmp || !r->lockpath) {
    free_handle(r);
    return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  }
  rs_h5quiet q;
  rs_h5_quiet(&q);
  rs_prov want;
  sf_status rc = take_lock(r, err);
  int have_want = 0;
  if (rc == SF_OK) {
    rc = rs_prov_from(&want, prov, err);
    have_want = rc == SF_OK;
  }
  const int spec_given = prov && (prov->spec_text || prov->spec_sha256);
  if (rc == SF_OK && mode == SF_RESULTS_CREATE) {
    if (!(flags & SF_RESULTS_OVERWRITE) && (sf_file_exists(r->path) || sf_file_exists(r->jpath)))
      rc = sf_fail(err, SF_ERR_IO, "%s: already exists; resume it or allow overwriting it", r->path);
    if (rc == SF_OK) rc = unlink_if_there(r->jpath, err);
    if (rc == SF_OK) rc = unlink_if_there(r->path, err);
    if (rc == SF_OK) rc = open_fresh(r, &want, err);
  } else if (rc == SF_OK) {
    rc = open_resume(r, &want, spec_given, err);
  }
  if (rc == SF_OK) {
    rc = rs_h5_open_append(r->path, &r->h, err);
    r->h5_open = rc == SF_OK;
  }
  if (have_want) rs_prov_free(&want);
  rs_h5_loud(&q);
  if (rc != SF_OK) {
    free_handle(r);
    return rc;
  }
  *out = r;
  return SF_OK;
}

const sf_results_open_info *sf_results_info(const sf_results *r) { return &r->info; }

int sf_results_is_finished(const sf_results *r, const char *key) {
  const entry *e = key ? find_entry(r, key) : NULL;
  return e && sf_results_status_finished(e->status, r->retry_failed);
}

int sf_results_lookup(const sf_results *r, const char *key, int32_t *status) {
  const entry *e = key ? find_entry(r, key) : NULL;
  if (e && status) *status = e->status;
  return e != NULL;
}

/* Rewrites the .h5 from the journal (all keys but the pending ones). */
static sf_status rebuild_h5(sf_results *r, sf_error *err) {
  if (r->h5_open) {
    rs_h5_close(&r->h, r->path, NULL);
    r->h5_open = 0;
  }
  rs_state st;
  rs_journal_read_info ji;
  SF_TRY(rs_journal_read(r->jpath, &st, &ji, err));
  sf_status rc = rs_h5_write_state(r->path, r->htmp, &st, skip_pending, r, err);
  rs_state_free(&st);
  if (rc == SF_OK) rc = rs_h5_open_append(r->path, &r->h, err);
  r->h5_open = rc == SF_OK;
  if (rc == SF_OK)
    for (int64_t i = 0; i < r->n_entries; i++) r->entries[i].in_h5 = !r->entries[i].pending;
  return rc;
}

/* Appends to the .h5; on any HDF5 failure, rewrites it from the journal. */
static sf_status h5_append_or_rebuild(sf_results *r, rs_table t, const rs_rec *rec, const void *rows, int64_t n,
                                      sf_error *err) {
  sf_status rc = SF_ERR_IO;
  if (r->h5_open) {
    rc = rec ? rs_h5_append_rec(&r->h, r->path, rec, err) : rs_h5_append(&r->h, r->path, t, rows, n, err);
    if (rc == SF_OK) rc = rs_h5_flush(&r->h, r->path, err);
  }
  if (rc == SF_OK) return SF_OK;
  sf_error first = {0};
  if (err) first = *err;
  if (rebuild_h5(r, err) == SF_OK) return SF_OK;
  if (err) *err = first;
  return rc == SF_OK ? SF_ERR_IO : rc;
}

sf_status sf_results_write_item(sf_results *r, const sf_work_item *item, const sf_item_result *result,
                                const sf_repeat_result *repeats, int64_t n_repeats, const sf_step_result *steps,
                                int64_t n_steps, const sf_kernel_result *kernels, int64_t n_kernels,
                                sf_error *err) {
  if (!r) return sf_fail(err, SF_ERR_ARG, "results: not open");
  rs_rec rec;
  SF_TRY(rs_rec_build(&rec, item, result, repeats, n_repeats, steps, n_steps, kernels, n_kernels, err));
  rs_h5quiet q;
  rs_h5_quiet(&q);
  sf_status rc = rs_journal_append(r->jfd, r->jpath, J_ITEM, rec.buf, rec.size, err);
  /* From here the item is durable: the journal has it. */
  entry *e = NULL;
  int replace = 0;
  if (rc == SF_OK) {
    entry *old = find_entry(r, rec.item->key);
    replace = old && old->in_h5;
    if (old && old->pending) {
      rs_rec_free(&r->pending[old->pend_slot]);
      old->pending = 0;
      old->pend_slot = -1;
    }
    rc = put_entry(r, &rec, &e, err);
  }
  if (rc == SF_OK) {
    if (replace) {
      rc = rebuild_h5(r, err); /* the key's old rows must go: rewrite */
    } else {
      rc = h5_append_or_rebuild(r, T_ITEMS, &rec, NULL, 0, err);
      if (rc == SF_OK) e->in_h5 = 1;
    }
  }
  rs_rec_free(&rec);
  rs_h5_loud(&q);
  return rc;
}

static sf_status write_rows(sf_results *r, rs_table t, const void *rows, int64_t n, sf_error *err) {
  if (!r) return sf_fail(err, SF_ERR_ARG, "results: not open");
  if (n < 0 || (n && !rows)) return sf_fail(err, SF_ERR_ARG, "results: bad row count");
  if (n == 0) return SF_OK;
  size_t rs = rs_tables[t].row_size;
  void *fresh = malloc((size_t)n * rs);
  if (!fresh) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  int64_t added = 0;
  rs_state tmp; /* dedup against what is there without changing it before the journal has it */
  sf_status rc = SF_OK;
  rs_state_init(&tmp);
  if (t == T_DEVICES) {
    rc = rs_state_add_devices(&tmp, r->meta.devices, r->meta.n_devices, NULL, NULL, err);
    if (rc == SF_OK) rc = rs_state_add_devices(&tmp, rows, n, fresh, &added, err);
  } else {
    rc = rs_state_add_problems(&tmp, r->meta.problems, r->meta.n_problems, NULL, NULL, err);
    if (rc == SF_OK) rc = rs_state_add_problems(&tmp, rows, n, fresh, &added, err);
  }
  rs_state_free(&tmp);
  if (rc != SF_OK || added == 0) {
    free(fresh);
    return rc;
  }
  rs_h5quiet q;
  rs_h5_quiet(&q);
  size_t size;
  unsigned char *buf = rs_frame_rows(t, fresh, added, &size);
  if (!buf) rc = sf_fail(err, SF_ERR_NOMEM, "out of memory");
  if (rc == SF_OK) rc = rs_journal_append(r->jfd, r->jpath, t == T_DEVICES ? J_DEVICES : J_PROBLEMS, buf, size, err);
  if (rc == SF_OK) {
    if (t == T_DEVICES) rc = rs_state_add_devices(&r->meta, fresh, added, NULL, NULL, err);
    else rc = rs_state_add_problems(&r->meta, fresh, added, NULL, NULL, err);
  }
  if (rc == SF_OK) rc = h5_append_or_rebuild(r, t, NULL, fresh, added, err);
  free(buf);
  free(fresh);
  rs_h5_loud(&q);
  return rc;
}

sf_status sf_results_write_devices(sf_results *r, const sf_results_device *rows, int64_t n, sf_error *err) {
  return write_rows(r, T_DEVICES, rows, n, err);
}

sf_status sf_results_write_problems(sf_results *r, const sf_results_problem *rows, int64_t n, sf_error *err) {
  return write_rows(r, T_PROBLEMS, rows, n, err);
}

/* Reads the closed .h5 back and checks it against the index. */
static sf_status verify(sf_results *r, sf_error *err) {
  sf_results_data d;
  SF_TRY(sf_results_read(r->path, 0, &d, err));
  sf_status rc = SF_OK;
  int64_t *seen = calloc((size_t)r->n_entries + 1, 3 * sizeof *seen + 1);
  if (!seen) {
    sf_results_data_free(&d);
    return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  }
  int64_t *reps = seen, *steps = seen + r->n_entries, *kerns = seen + 2 * r->n_entries;
  unsigned char *item_seen = (unsigned char *)(seen + 3 * r->n_entries);
  if (d.n_items != r->n_entries || d.n_devices != r->meta.n_devices || d.n_problems != r->meta.n_problems)
    rc = sf_fail(err, SF_ERR_INTERNAL, "%s: holds %lld items, %lld devices, %lld problems; expected %lld, %lld, %lld",
                 r->path, (long long)d.n_items, (long long)d.n_devices, (long long)d.n_problems,
                 (long long)r->n_entries, (long long)r->meta.n_devices, (long long)r->meta.n_problems);
  for (int64_t i = 0; i < d.n_items && rc == SF_OK; i++) {
    int64_t k = rs_keymap_get(&r->keys, d.items[i].item.key);
    const entry *e = k >= 0 ? &r->entries[k] : NULL;
    if (!e || item_seen[k] || e->status != d.items[i].result.status ||
        memcmp(&e->t_end, &d.items[i].result.t_end, sizeof e->t_end))
      rc = sf_fail(err, SF_ERR_INTERNAL, "%s: /items row %lld (key %s) does not match the journal", r->path,
                   (long long)i, d.items[i].item.key);
    else item_seen[k] = 1;
  }
  struct {
    const void *rows;
    int64_t n;
    size_t size;
    int64_t *count;
  } ch[3] = {{d.repeats, d.n_repeats, sizeof *d.repeats, reps},
             {d.steps, d.n_steps, sizeof *d.steps, steps},
             {d.kernels, d.n_kernels, sizeof *d.kernels, kerns}};
  for (int c = 0; c < 3 && rc == SF_OK; c++)
    for (int64_t i = 0; i < ch[c].n && rc == SF_OK; i++) {
      int64_t k = rs_keymap_get(&r->keys, (const char *)ch[c].rows + (size_t)i * ch[c].size);
      if (k < 0) rc = sf_fail(err, SF_ERR_INTERNAL, "%s: a child row has a key with no item", r->path);
      else ch[c].count[k]++;
    }
  for (int64_t k = 0; k < r->n_entries && rc == SF_OK; k++) {
    const entry *e = &r->entries[k];
    if (reps[k] != e->n_repeats || steps[k] != e->n_steps || kerns[k] != e->n_kernels)
      rc = sf_fail(err, SF_ERR_INTERNAL, "%s: item %s has the wrong number of child rows", r->path, e->key);
  }
  free(seen);
  sf_results_data_free(&d);
  return rc;
}

sf_status sf_results_close(sf_results *r, sf_error *err) {
  if (!r) return SF_OK;
  rs_h5quiet q;
  rs_h5_quiet(&q);
  sf_status rc = SF_OK;
  /* Keys that were to be retried but were not run again keep their old
   * result: none is pending any more, so a rewrite from the journal (when
   * an append fails) includes them all and the appends stop there. */
  for (int64_t i = 0; i < r->n_entries; i++) {
    if (r->entries[i].pending) r->entries[i].in_h5 = 1;
    r->entries[i].pending = 0;
    r->entries[i].pend_slot = -1;
  }
  int appended_all = r->h5_open;
  for (int64_t i = 0; i < r->n_pending && appended_all; i++)
    if (r->pending[i].buf && rs_h5_append_rec(&r->h, r->path, &r->pending[i], NULL) != SF_OK) appended_all = 0;
  if (appended_all && r->n_pending && rs_h5_flush(&r->h, r->path, NULL) != SF_OK) appended_all = 0;
  if (!appended_all) rc = rebuild_h5(r, err);
  for (int64_t i = 0; i < r->n_pending; i++) rs_rec_free(&r->pending[i]);
  r->n_pending = 0;
  if (rc == SF_OK && r->h5_open) {
    rc = rs_h5_close(&r->h, r->path, err);
    r->h5_open = 0;
  }
  if (rc == SF_OK) rc = rs_fsync_path(r->path, err);
  if (rc == SF_OK) rc = verify(r, err);
  if (rc != SF_OK) { /* one more try from the journal before giving up */
    sf_error first = {0};
    if (err) first = *err;
    sf_status rc2 = rebuild_h5(r, NULL);
    if (rc2 == SF_OK) {
      rs_h5_close(&r->h, r->path, NULL);
      r->h5_open = 0;
      rc2 = verify(r, NULL);
    }
    if (rc2 != SF_OK) {
      if (err) *err = first;
      sf_fail_context(err, "results not closed cleanly; the journal %s stays for --resume", r->jpath);
    } else {
      rc = SF_OK;
    }
  }
  if (rc == SF_OK) {
    close(r->jfd);
    r->jfd = -1;
    rc = unlink_if_there(r->jpath, err);
    unlink(r->htmp); /* a rewrite killed in an earlier run may have left them */
    unlink(r->jtmp);
    if (rc == SF_OK) rc = rs_fsync_dir_of(r->path, err);
  }
  rs_h5_loud(&q);
  free_handle(r);
  return rc;
}

void sf_results_abort(sf_results *r) {
  if (!r) return;
  rs_h5quiet q;
  rs_h5_quiet(&q);
  free_handle(r);
  rs_h5_loud(&q);
}
