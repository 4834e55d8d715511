/* The HDF5 side of the results file: types, creation, appends, rewrites.
 * Serial HDF5, default (oldest) format bounds so that HDF5 1.8+, h5py and
 * h5dump read it and no "file is open for writing" flag survives a kill. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results/results_internal.h"

void rs_h5_quiet(rs_h5quiet *q) {
  if (H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data) < 0) {
    q->fn = NULL;
    q->data = NULL;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void rs_h5_loud(const rs_h5quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->fn, q->data); }

typedef struct last_err {
  char *buf;
  size_t size;
} last_err;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *ctx) {
  last_err *le = ctx;
  if (n == 0 && e->desc) snprintf(le->buf, le->size, "%s", e->desc);
  return 0;
}

void rs_h5_last_error(char *buf, size_t size) {
  if (!size) return;
  buf[0] = '\0';
  last_err le = {buf, size};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &le);
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
}

/* ---- types ---- */

static hid_t enum_type(int file, int status) {
  hid_t t = H5Tenum_create(file ? H5T_STD_I32LE : H5T_NATIVE_INT32);
  if (t < 0) return t;
  if (status) {
    for (int32_t v = SF_STATUS_OK; v <= SF_STATUS_INTERRUPTED; v++)
      H5Tenum_insert(t, sf_item_status_name((sf_item_status)v), &v);
  } else {
    for (int32_t v = SF_ITEM_GENERATE; v <= SF_ITEM_KERNELS; v++)
      H5Tenum_insert(t, sf_item_kind_name((sf_item_kind)v), &v);
  }
  return t;
}

static hid_t field_type(const rs_field *f, int file) {
  switch (f->kind) {
    case FK_I32: return H5Tcopy(file ? H5T_STD_I32LE : H5T_NATIVE_INT32);
    case FK_I64: return H5Tcopy(file ? H5T_STD_I64LE : H5T_NATIVE_INT64);
    case FK_U64: return H5Tcopy(file ? H5T_STD_U64LE : H5T_NATIVE_UINT64);
    case FK_F64: return H5Tcopy(file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE);
    case FK_STATUS: return enum_type(file, 1);
    case FK_KIND: return enum_type(file, 0);
    case FK_STR: {
      hid_t t = H5Tcopy(H5T_C_S1);
      if (t < 0) return t;
      if (H5Tset_size(t, f->size) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
      }
      return t;
    }
  }
  return H5I_INVALID_HID;
}

hid_t rs_h5_type(rs_table t, int file, const unsigned char *present) {
  const rs_table_desc *d = &rs_tables[t];
  size_t total = 0;
  if (file)
    for (int i = 0; i < d->n_fields; i++) total += d->fields[i].size;
  hid_t ct = H5Tcreate(H5T_COMPOUND, file ? total : d->row_size);
  if (ct < 0) return ct;
  size_t off = 0;
  for (int i = 0; i < d->n_fields; i++) {
    const rs_field *f = &d->fields[i];
    if (present && !present[i]) continue;
    hid_t ft = field_type(f, file);
    herr_t rc = ft < 0 ? -1 : H5Tinsert(ct, f->name, file ? off : f->offset, ft);
    if (ft >= 0) H5Tclose(ft);
    if (rc < 0) {
      H5Tclose(ct);
      return H5I_INVALID_HID;
    }
    off += f->size;
  }
  return ct;
}

/* ---- attributes ---- */

/* Fixed-length (not variable-length) strings: they live in the object
 * header, while variable-length ones go to the global heap, whose reader in
 * HDF5 1.10 trusts sizes it reads and crashes on a corrupt file. */
static hid_t fixed_string_type(const char *value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return t;
  if (H5Tset_size(t, strlen(value) + 1) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 ||
      H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
    H5Tclose(t);
    return H5I_INVALID_HID;
  }
  return t;
}

static herr_t attr_string(hid_t obj, const char *name, const char *value) {
  hid_t t = fixed_string_type(value), sp = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
  herr_t rc = -1;
  if (t >= 0 && sp >= 0) {
    a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) rc = H5Awrite(a, t, value);
  }
  if (a >= 0) H5Aclose(a);
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  return rc;
}

/* A scalar string dataset: for a spec text too large for an attribute. */
static herr_t dataset_string(hid_t file, const char *name, const char *value) {
  hid_t t = fixed_string_type(value), sp = H5Screate(H5S_SCALAR), d = H5I_INVALID_HID;
  herr_t rc = -1;
  if (t >= 0 && sp >= 0) {
    d = H5Dcreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) rc = H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, value);
  }
  if (d >= 0) H5Dclose(d);
  if (sp >= 0) H5Sclose(sp);
  if (t >= 0) H5Tclose(t);
  return rc;
}

static herr_t attr_int(hid_t obj, const char *name, int32_t value) {
  hid_t sp = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
  herr_t rc = -1;
  if (sp >= 0) a = H5Acreate2(obj, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) rc = H5Awrite(a, H5T_NATIVE_INT32, &value);
  if (a >= 0) H5Aclose(a);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

static herr_t write_root_attrs(hid_t file, const rs_prov *p) {
  herr_t rc = attr_int(file, "schema_version", p->schema_version);
  if (rc >= 0) rc = attr_string(file, "format", "scanflash results");
  for (int i = 0; i < RS_PROV_NSTR && rc >= 0; i++) {
    const char *v = *rs_prov_str((rs_prov *)p, i);
    const char *name = rs_prov_str_name(i);
    if (!v[0] && (!strcmp(name, "slurm_job_id") || !strcmp(name, "sources"))) continue;
    /* An object header holds at most 64 KiB of attributes. */
    if (strlen(v) > RS_ATTR_MAX) rc = dataset_string(file, name, v);
    else rc = attr_string(file, name, v);
  }
  if (rc >= 0) rc = attr_int(file, "world_size", p->world_size);
  return rc;
}

/* ---- create / open / append ---- */

static void h5_reset(rs_h5 *h) {
  h->file = H5I_INVALID_HID;
  for (int t = 0; t < T_COUNT; t++) {
    h->ds[t] = H5I_INVALID_HID;
    h->mtype[t] = H5I_INVALID_HID;
    h->rows[t] = 0;
  }
}

static sf_status h5_fail(const char *path, const char *what, sf_error *err) {
  char msg[256];
  rs_h5_last_error(msg, sizeof msg);
  if (msg[0]) return sf_fail(err, SF_ERR_IO, "%s: %s (HDF5: %s)", path, what, msg);
  return sf_fail(err, SF_ERR_IO, "%s: %s", path, what);
}

static sf_status make_mtypes(rs_h5 *h, const char *path, sf_error *err) {
  for (int t = 0; t < T_COUNT; t++) {
    h->mtype[t] = rs_h5_type((rs_table)t, 0, NULL);
    if (h->mtype[t] < 0) return h5_fail(path, "cannot build the record types", err);
  }
  return SF_OK;
}

static sf_status create_table(rs_h5 *h, const char *path, rs_table t, sf_error *err) {
  const rs_table_desc *d = &rs_tables[t];
  hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = d->chunk_rows;
  hid_t sp = H5Screate_simple(1, &dims, &maxdims);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  hid_t ft = rs_h5_type(t, 1, NULL);
  sf_status rc = SF_OK;
  if (sp < 0 || dcpl < 0 || ft < 0 || H5Pset_chunk(dcpl, 1, &chunk) < 0) {
    rc = h5_fail(path, "cannot set up a table", err);
  } else {
    if (H5Zfilter_avail(H5Z_FILTER_SHUFFLE) > 0) H5Pset_shuffle(dcpl);
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) H5Pset_deflate(dcpl, 1);
    h->ds[t] = H5Dcreate2(h->file, d->name, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (h->ds[t] < 0) rc = h5_fail(path, "cannot create a table", err);
  }
  if (rc == SF_OK && attr_string(h->ds[t], "description", d->description) < 0)
    rc = h5_fail(path, "cannot write an attribute", err);
  for (int i = 0; i < d->n_fields && rc == SF_OK; i++) {
    if (!d->fields[i].unit) continue;
    char name[96];
    snprintf(name, sizeof name, "units:%s", d->fields[i].name);
    if (attr_string(h->ds[t], name, d->fields[i].unit) < 0) rc = h5_fail(path, "cannot write an attribute", err);
  }
  if (ft >= 0) H5Tclose(ft);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

sf_status rs_h5_create(const char *path, const rs_prov *prov, rs_h5 *h, sf_error *err) {
  h5_reset(h);
  h->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (h->file < 0) return h5_fail(path, "cannot create", err);
  sf_status rc = SF_OK;
  if (write_root_attrs(h->file, prov) < 0) rc = h5_fail(path, "cannot write the root attributes", err);
  for (int t = 0; t < T_COUNT && rc == SF_OK; t++) rc = create_table(h, path, (rs_table)t, err);
  if (rc == SF_OK) rc = make_mtypes(h, path, err);
  if (rc != SF_OK) rs_h5_close(h, path, NULL);
  return rc;
}

sf_status rs_h5_open_append(const char *path, rs_h5 *h, sf_error *err) {
  h5_reset(h);
  h->file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  if (h->file < 0) return h5_fail(path, "cannot open for writing", err);
  sf_status rc = SF_OK;
  for (int t = 0; t < T_COUNT && rc == SF_OK; t++) {
    h->ds[t] = H5Dopen2(h->file, rs_tables[t].name, H5P_DEFAULT);
    hid_t sp = h->ds[t] >= 0 ? H5Dget_space(h->ds[t]) : H5I_INVALID_HID;
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &h->rows[t], NULL) < 0)
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: table /%s is missing or malformed", path, rs_tables[t].name);
    if (sp >= 0) H5Sclose(sp);
  }
  if (rc == SF_OK) rc = make_mtypes(h, path, err);
  if (rc != SF_OK) rs_h5_close(h, path, NULL);
  return rc;
}

sf_status rs_h5_append(rs_h5 *h, const char *path, rs_table t, const void *rows, int64_t n, sf_error *err) {
  if (n <= 0) return SF_OK;
  hsize_t start = h->rows[t], count = (hsize_t)n, total = start + count;
  if (H5Dset_extent(h->ds[t], &total) < 0) return h5_fail(path, "cannot extend a table", err);
  hid_t fs = H5Dget_space(h->ds[t]);
  hid_t ms = H5Screate_simple(1, &count, NULL);
  herr_t rc = -1;
  if (fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) >= 0)
    rc = H5Dwrite(h->ds[t], h->mtype[t], ms, fs, H5P_DEFAULT, rows);
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  if (rc < 0) return h5_fail(path, "cannot write rows", err);
  h->rows[t] = total;
  return SF_OK;
}

sf_status rs_h5_append_rec(rs_h5 *h, const char *path, const rs_rec *rec, sf_error *err) {
  sf_results_item row;
  row.item = *rec->item;
  row.result = *rec->result;
  SF_TRY(rs_h5_append(h, path, T_ITEMS, &row, 1, err));
  SF_TRY(rs_h5_append(h, path, T_REPEATS, rec->repeats, rec->n_repeats, err));
  SF_TRY(rs_h5_append(h, path, T_STEPS, rec->steps, rec->n_steps, err));
  return rs_h5_append(h, path, T_KERNELS, rec->kernels, rec->n_kernels, err);
}

sf_status rs_h5_flush(rs_h5 *h, const char *path, sf_error *err) {
  if (H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0) return h5_fail(path, "flush failed", err);
  return SF_OK;
}

sf_status rs_h5_close(rs_h5 *h, const char *path, sf_error *err) {
  int bad = 0;
  for (int t = 0; t < T_COUNT; t++) {
    if (h->ds[t] >= 0 && H5Dclose(h->ds[t]) < 0) bad = 1;
    if (h->mtype[t] >= 0) H5Tclose(h->mtype[t]);
  }
  if (h->file >= 0 && H5Fclose(h->file) < 0) bad = 1;
  h5_reset(h);
  if (bad) return h5_fail(path, "close failed", err);
  return SF_OK;
}

/* ---- rewriting from a state ---- */

/* Rows gathered per table and appended in batches. */
typedef struct batch {
  unsigned char *rows;
  int64_t n, cap;
} batch;

enum { BATCH_BYTES = 16 << 20 };

static sf_status batch_flush(rs_h5 *h, const char *path, rs_table t, batch *b, sf_error *err) {
  sf_status rc = rs_h5_append(h, path, t, b->rows, b->n, err);
  b->n = 0;
  return rc;
}

static sf_status batch_add(rs_h5 *h, const char *path, rs_table t, batch *b, const void *rows, int64_t n,
                           sf_error *err) {
  size_t rs = rs_tables[t].row_size;
  if (!b->rows) {
    b->cap = BATCH_BYTES / (int64_t)rs;
    b->rows = malloc((size_t)b->cap * rs);
    if (!b->rows) return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", path);
  }
  while (n > 0) {
    int64_t k = b->cap - b->n < n ? b->cap - b->n : n;
    memcpy(b->rows + (size_t)b->n * rs, rows, (size_t)k * rs);
    b->n += k;
    n -= k;
    rows = (const char *)rows + (size_t)k * rs;
    if (b->n == b->cap) SF_TRY(batch_flush(h, path, t, b, err));
  }
  return SF_OK;
}

sf_status rs_h5_write_state(const char *path, const char *tmp, const rs_state *s, rs_skip_fn skip, void *ctx,
                            sf_error *err) {
  rs_h5 h;
  SF_TRY(rs_h5_create(tmp, &s->prov, &h, err));
  sf_status rc = rs_h5_append(&h, tmp, T_DEVICES, s->devices, s->n_devices, err);
  if (rc == SF_OK) rc = rs_h5_append(&h, tmp, T_PROBLEMS, s->problems, s->n_problems, err);
  batch b[T_COUNT];
  memset(b, 0, sizeof b);
  for (int64_t i = 0; i < s->n_items && rc == SF_OK; i++) {
    const rs_rec *rec = &s->items[i];
    if (!rec->buf || (skip && skip(ctx, rec))) continue;
    sf_results_item row;
    row.item = *rec->item;
    row.result = *rec->result;
    rc = batch_add(&h, tmp, T_ITEMS, &b[T_ITEMS], &row, 1, err);
    if (rc == SF_OK) rc = batch_add(&h, tmp, T_REPEATS, &b[T_REPEATS], rec->repeats, rec->n_repeats, err);
    if (rc == SF_OK) rc = batch_add(&h, tmp, T_STEPS, &b[T_STEPS], rec->steps, rec->n_steps, err);
    if (rc == SF_OK) rc = batch_add(&h, tmp, T_KERNELS, &b[T_KERNELS], rec->kernels, rec->n_kernels, err);
  }
  for (int t = 0; t < T_COUNT; t++) {
    if (rc == SF_OK && b[t].n) rc = batch_flush(&h, tmp, (rs_table)t, &b[t], err);
    free(b[t].rows);
  }
  sf_status crc = rs_h5_close(&h, tmp, rc == SF_OK ? err : NULL);
  if (rc == SF_OK) rc = crc;
  if (rc == SF_OK) rc = rs_fsync_path(tmp, err);
  if (rc == SF_OK && rename(tmp, path) != 0)
    rc = sf_fail(err, SF_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
  if (rc != SF_OK) {
    unlink(tmp);
    return rc;
  }
  return rs_fsync_dir_of(path, err);
}
