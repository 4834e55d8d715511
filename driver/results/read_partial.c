/* sf_results_read_partial: the reader scanflash-report uses (read_partial.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/read_partial.h"
#include "results/results_internal.h"
#include "scanflash/files.h"

static void notef(sf_results_note_fn note, void *ctx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void notef(sf_results_note_fn note, void *ctx, const char *fmt, ...) {
  if (!note) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  note(ctx, line);
}

/* The rows of table t inside d. */
static void **data_rows(sf_results_data *d, rs_table t, int64_t **n) {
  switch (t) {
    case T_DEVICES: *n = &d->n_devices; return (void **)&d->devices;
    case T_PROBLEMS: *n = &d->n_problems; return (void **)&d->problems;
    case T_ITEMS: *n = &d->n_items; return (void **)&d->items;
    case T_REPEATS: *n = &d->n_repeats; return (void **)&d->repeats;
    case T_STEPS: *n = &d->n_steps; return (void **)&d->steps;
    case T_KERNELS: *n = &d->n_kernels; return (void **)&d->kernels;
    default: *n = NULL; return NULL;
  }
}

/* A journal's state as sf_results_data (live items only, children after
 * their item's order). */
static sf_status data_from_state(const rs_state *s, sf_results_data *out, sf_error *err) {
  memset(out, 0, sizeof *out);
  int64_t ni = 0, nr = 0, ns = 0, nk = 0;
  for (int64_t i = 0; i < s->n_items; i++) {
    if (!s->items[i].buf) continue;
    ni++;
    nr += s->items[i].n_repeats;
    ns += s->items[i].n_steps;
    nk += s->items[i].n_kernels;
  }
  rs_prov p;
  SF_TRY(rs_prov_copy(&p, &s->prov, err));
  out->schema_version = s->prov.schema_version;
  rs_prov_view(&p, &out->prov); /* out owns the strings now */
  out->devices = calloc((size_t)(s->n_devices ? s->n_devices : 1), sizeof *out->devices);
  out->problems = calloc((size_t)(s->n_problems ? s->n_problems : 1), sizeof *out->problems);
  out->items = calloc((size_t)(ni ? ni : 1), sizeof *out->items);
  out->repeats = calloc((size_t)(nr ? nr : 1), sizeof *out->repeats);
  out->steps = calloc((size_t)(ns ? ns : 1), sizeof *out->steps);
  out->kernels = calloc((size_t)(nk ? nk : 1), sizeof *out->kernels);
  if (!out->devices || !out->problems || !out->items || !out->repeats || !out->steps || !out->kernels) {
    sf_results_data_free(out);
    return sf_fail(err, SF_ERR_NOMEM, "out of memory (%lld items)", (long long)ni);
  }
  if (s->n_devices) memcpy(out->devices, s->devices, (size_t)s->n_devices * sizeof *out->devices);
  if (s->n_problems) memcpy(out->problems, s->problems, (size_t)s->n_problems * sizeof *out->problems);
  out->n_devices = s->n_devices;
  out->n_problems = s->n_problems;
  for (int64_t i = 0; i < s->n_items; i++) {
    const rs_rec *r = &s->items[i];
    if (!r->buf) continue;
    sf_results_item *it = &out->items[out->n_items++];
    it->item = *r->item;
    it->result = *r->result;
    memcpy(it->result.key, it->item.key, SF_KEY_LEN);
    for (int64_t k = 0; k < r->n_repeats; k++) {
      out->repeats[out->n_repeats] = r->repeats[k];
      memcpy(out->repeats[out->n_repeats++].key, it->item.key, SF_KEY_LEN);
    }
    for (int64_t k = 0; k < r->n_steps; k++) {
      out->steps[out->n_steps] = r->steps[k];
      memcpy(out->steps[out->n_steps++].key, it->item.key, SF_KEY_LEN);
    }
    for (int64_t k = 0; k < r->n_kernels; k++) {
      out->kernels[out->n_kernels] = r->kernels[k];
      memcpy(out->kernels[out->n_kernels++].key, it->item.key, SF_KEY_LEN);
    }
  }
  return SF_OK;
}

/* 1 when the journal was read into out; 0 when there is none (or it has no
 * header yet); an error when it cannot be read. */
static sf_status try_journal(const char *path, sf_results_data *out, int *used, sf_error *err) {
  *used = 0;
  char *jpath = rs_path_plus(path, ".journal");
  if (!jpath) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  sf_status rc = SF_OK;
  if (sf_file_exists(jpath)) {
    rs_state st;
    rs_journal_read_info ji;
    rc = rs_journal_read(jpath, &st, &ji, err);
    if (rc == SF_OK) {
      if (ji.have_header && st.have_prov) {
        rc = data_from_state(&st, out, err);
        if (rc == SF_OK) *used = 1;
      }
      rs_state_free(&st);
    }
  }
  free(jpath);
  return rc;
}

/* Which tables, fields and root attributes of PATH are missing. present[t]
 * is 0 for a missing table; field_ok[t][i] 0 for a missing field. Returns
 * how many things are missing, or -1 when the file cannot be inspected. */
static int inspect(const char *path, sf_results_note_fn note, void *ctx, unsigned char present[T_COUNT],
                   unsigned char field_ok[T_COUNT][64], int emit) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return -1;
  int missing = 0;
  for (int i = 0; i < RS_PROV_NSTR; i++) {
    const char *name = rs_prov_str_name(i);
    if (!strcmp(name, "slurm_job_id") || !strcmp(name, "sources")) continue;
    if (H5Aexists(f, name) == 0) {
      missing++;
      if (emit) notef(note, ctx, "%s: missing root attribute %s", path, name);
    }
  }
  for (int t = 0; t < T_COUNT; t++) {
    const rs_table_desc *d = &rs_tables[t];
    present[t] = 0;
    memset(field_ok[t], 0, 64);
    if (H5Lexists(f, d->name, H5P_DEFAULT) <= 0) {
      missing++;
      if (emit) notef(note, ctx, "%s: missing table /%s (read as empty)", path, d->name);
      continue;
    }
    hid_t ds = H5Dopen2(f, d->name, H5P_DEFAULT);
    hid_t ft = ds >= 0 ? H5Dget_type(ds) : H5I_INVALID_HID;
    if (ft >= 0 && H5Tget_class(ft) == H5T_COMPOUND) {
      present[t] = 1;
      for (int i = 0; i < d->n_fields && i < 64; i++) {
        field_ok[t][i] = H5Tget_member_index(ft, d->fields[i].name) >= 0;
        if (!field_ok[t][i]) {
          missing++;
          if (emit) notef(note, ctx, "%s: /%s: missing field '%s' (read as missing)", path, d->name, d->fields[i].name);
        }
      }
    }
    if (ft >= 0) H5Tclose(ft);
    if (ds >= 0) H5Dclose(ds);
  }
  H5Fclose(f);
  return missing;
}

/* Missing float fields read as NaN rather than 0. */
static void nan_fill(sf_results_data *d, const unsigned char present[T_COUNT], unsigned char field_ok[T_COUNT][64]) {
  for (int t = 0; t < T_COUNT; t++) {
    if (!present[t]) continue;
    const rs_table_desc *td = &rs_tables[t];
    int64_t *n;
    void **rows = data_rows(d, (rs_table)t, &n);
    if (!rows || !*rows) continue;
    for (int i = 0; i < td->n_fields && i < 64; i++) {
      if (field_ok[t][i] || td->fields[i].kind != FK_F64) continue;
      for (int64_t r = 0; r < *n; r++) {
        double nan = NAN;
        memcpy((char *)*rows + (size_t)r * td->row_size + td->fields[i].offset, &nan, sizeof nan);
      }
    }
  }
}

sf_status sf_results_read_partial(const char *path, int flags, sf_results_data *out, sf_results_note_fn note,
                                  void *note_ctx, sf_results_partial_info *info, sf_error *err) {
  sf_results_partial_info info0;
  if (!info) info = &info0;
  memset(info, 0, sizeof *info);
  memset(out, 0, sizeof *out);
  const int lenient = (flags & SF_RESULTS_READ_LENIENT) != 0;

  rs_h5quiet q;
  rs_h5_quiet(&q);
  int used = 0;
  sf_error jerr = {0};
  sf_status rc = try_journal(path, out, &used, &jerr);
  if (rc != SF_OK) {
    notef(note, note_ctx, "%s.journal: %s; reading %s alone", path, jerr.msg, path);
  } else if (used) {
    if (out->schema_version != SF_RESULTS_SCHEMA_VERSION && !lenient) {
      int32_t v = out->schema_version;
      sf_results_data_free(out);
      rs_h5_loud(&q);
      return sf_fail(err, SF_ERR_UNSUPPORTED, "%s.journal: schema_version %d is not supported (this scanflash reads %d)",
                     path, v, SF_RESULTS_SCHEMA_VERSION);
    }
    info->from_journal = 1;
    notef(note, note_ctx, "%s: run still going or not closed cleanly; reading its journal %s.journal", path, path);
    rs_h5_loud(&q);
    return SF_OK;
  }

  rc = sf_results_read(path, 0, out, err);
  if (rc == SF_OK) {
    rs_h5_loud(&q);
    return SF_OK;
  }
  /* Refused: is it a scanflash file of a schema we may read by name, that
   * only lacks parts? */
  sf_error perr = {0};
  int32_t version = 0;
  char sha[65];
  if (sf_results_probe(path, &version, sha, &perr) != SF_OK) {
    rs_h5_loud(&q);
    return rc; /* the strict reader's message */
  }
  if (version != SF_RESULTS_SCHEMA_VERSION && !lenient) {
    rs_h5_loud(&q);
    return rc;
  }
  unsigned char present[T_COUNT], field_ok[T_COUNT][64];
  int missing = inspect(path, note, note_ctx, present, field_ok, 0);
  if (missing <= 0 && version == SF_RESULTS_SCHEMA_VERSION) {
    rs_h5_loud(&q);
    return rc; /* nothing missing: the data itself is unreadable */
  }
  sf_error lerr = {0};
  if (sf_results_read(path, SF_RESULTS_READ_LENIENT, out, &lerr) != SF_OK) {
    rs_h5_loud(&q);
    *err = lerr;
    return lerr.code;
  }
  if (version != SF_RESULTS_SCHEMA_VERSION) {
    info->other_schema = 1;
    notef(note, note_ctx, "%s: schema_version %d (this scanflash reads %d); reading the fields it knows by name", path,
          version, SF_RESULTS_SCHEMA_VERSION);
  }
  if (missing > 0) {
    info->partial = 1;
    inspect(path, note, note_ctx, present, field_ok, 1);
    nan_fill(out, present, field_ok);
  }
  rs_h5_loud(&q);
  sf_error_clear(err);
  return SF_OK;
}
