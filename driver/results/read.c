/* Reading a results file back, with one-line errors for anything that is
 * not a readable schema-v1 file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "results/results_internal.h"

/* Checks the path before HDF5 sees it, for errno-based messages. */
static sf_status check_path(const char *path, sf_error *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sf_fail(err, SF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  int ok = fstat(fd, &st) == 0;
  close(fd);
  if (!ok || !S_ISREG(st.st_mode)) return sf_fail(err, SF_ERR_IO, "%s: not a regular file", path);
  return SF_OK;
}

static sf_status open_file(const char *path, hid_t *file, sf_error *err) {
  SF_TRY(check_path(path, err));
  htri_t is = H5Fis_hdf5(path);
  if (is == 0) return sf_fail(err, SF_ERR_FORMAT, "%s: not an HDF5 file", path);
  /* Strong close: closing the file closes whatever a failed read of a
   * corrupt file left open inside HDF5. */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0) H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
  *file = is > 0 ? H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT) : H5I_INVALID_HID;
  if (fapl >= 0) H5Pclose(fapl);
  if (*file < 0) {
    char msg[256];
    rs_h5_last_error(msg, sizeof msg);
    if (is < 0) return sf_fail(err, SF_ERR_FORMAT, "%s: not an HDF5 file", path);
    return sf_fail(err, SF_ERR_FORMAT, "%s: corrupt or truncated HDF5 file%s%s%s", path, msg[0] ? " (HDF5: " : "",
                   msg, msg[0] ? ")" : "");
  }
  return SF_OK;
}

static sf_status read_schema_version(const char *path, hid_t file, int32_t *v, sf_error *err) {
  htri_t ex = H5Aexists(file, "schema_version");
  if (ex < 0) return sf_fail(err, SF_ERR_FORMAT, "%s: corrupt HDF5 file (cannot read the root attributes)", path);
  if (ex == 0) return sf_fail(err, SF_ERR_FORMAT, "%s: not a scanflash results file (no schema_version attribute)", path);
  hid_t a = H5Aopen(file, "schema_version", H5P_DEFAULT);
  hid_t at = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  herr_t rc = -1;
  if (at >= 0 && H5Tget_class(at) == H5T_INTEGER) rc = H5Aread(a, H5T_NATIVE_INT32, v);
  if (at >= 0) H5Tclose(at);
  if (a >= 0) H5Aclose(a);
  if (rc < 0) return sf_fail(err, SF_ERR_FORMAT, "%s: schema_version is not an integer", path);
  return SF_OK;
}

/* A string attribute (variable or fixed length) as a malloc'd string; a
 * missing one is "" (*found = 0). */
static sf_status read_string_attr(const char *path, hid_t obj, const char *name, char **out, int *found,
                                  sf_error *err) {
  *out = NULL;
  *found = 0;
  htri_t ex = H5Aexists(obj, name);
  if (ex < 0) return sf_fail(err, SF_ERR_FORMAT, "%s: corrupt HDF5 file (cannot read attribute %s)", path, name);
  if (ex == 0) {
    *out = strdup("");
    return *out ? SF_OK : sf_fail(err, SF_ERR_NOMEM, "out of memory");
  }
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  hid_t sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
  sf_status rc = SF_OK;
  if (ft < 0 || sp < 0 || H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) {
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: attribute %s is not a string", path, name);
  } else if (H5Tis_variable_str(ft) > 0) {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(ft));
    char *v = NULL;
    if (H5Aread(a, mt, &v) < 0) {
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: cannot read attribute %s (corrupt file)", path, name);
    } else {
      *out = strdup(v ? v : "");
      if (v) H5free_memory(v);
      if (!*out) rc = sf_fail(err, SF_ERR_NOMEM, "out of memory");
    }
    H5Tclose(mt);
  } else {
    size_t n = H5Tget_size(ft);
    char *v = calloc(1, n + 1);
    hid_t mt = H5Tcopy(ft);
    if (!v) {
      rc = sf_fail(err, SF_ERR_NOMEM, "out of memory");
    } else if (H5Aread(a, mt, v) < 0) {
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: cannot read attribute %s (corrupt file)", path, name);
      free(v);
    } else {
      *out = v;
    }
    if (mt >= 0) H5Tclose(mt);
  }
  if (sp >= 0) H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  if (a >= 0) H5Aclose(a);
  if (rc == SF_OK) *found = 1;
  return rc;
}

/* A root string too long for an attribute is a scalar string dataset of the
 * same name (see RS_ATTR_MAX). *found = 0 when there is none. */
static sf_status read_string_dataset(const char *path, hid_t file, const char *name, char **out, int *found,
                                     sf_error *err) {
  *found = 0;
  htri_t ex = H5Lexists(file, name, H5P_DEFAULT);
  if (ex <= 0) return SF_OK;
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  hid_t ft = d >= 0 ? H5Dget_type(d) : H5I_INVALID_HID;
  hid_t sp = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
  sf_status rc = SF_OK;
  if (ft < 0 || sp < 0 || H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) != 0 ||
      H5Sget_simple_extent_npoints(sp) != 1) {
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: /%s is not a fixed-length string", path, name);
  } else {
    size_t n = H5Tget_size(ft);
    char *v = calloc(1, n + 1);
    if (!v) rc = sf_fail(err, SF_ERR_NOMEM, "out of memory");
    else if (H5Dread(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: cannot read /%s (corrupt file)", path, name);
      free(v);
    } else {
      free(*out);
      *out = v;
      *found = 1;
    }
  }
  if (sp >= 0) H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  if (d >= 0) H5Dclose(d);
  return rc;
}

static sf_status read_int_attr(const char *path, hid_t obj, const char *name, int32_t *v, sf_error *err) {
  *v = 0;
  htri_t ex = H5Aexists(obj, name);
  if (ex < 0) return sf_fail(err, SF_ERR_FORMAT, "%s: corrupt HDF5 file (cannot read attribute %s)", path, name);
  if (ex == 0) return SF_OK;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  herr_t rc = a >= 0 ? H5Aread(a, H5T_NATIVE_INT32, v) : -1;
  if (a >= 0) H5Aclose(a);
  if (rc < 0) return sf_fail(err, SF_ERR_FORMAT, "%s: attribute %s is not an integer", path, name);
  return SF_OK;
}

static sf_status check_file_type(const char *path, const char *name, rs_table t, hid_t ft, int lenient,
                                 sf_error *err) {
  if (!lenient) {
    hid_t want = rs_h5_type(t, 1, NULL);
    htri_t eq = want >= 0 ? H5Tequal(ft, want) : -1;
    if (want >= 0) H5Tclose(want);
    if (eq > 0) return SF_OK;
    /* Say which field when one is missing: the common, readable case. */
    const rs_table_desc *d = &rs_tables[t];
    for (int i = 0; i < d->n_fields; i++)
      if (H5Tget_member_index(ft, d->fields[i].name) < 0)
        return sf_fail(err, SF_ERR_FORMAT, "%s: /%s: missing field '%s'", path, name, d->fields[i].name);
    return sf_fail(err, SF_ERR_FORMAT, "%s: /%s: its fields are not schema %d's (corrupt file?)", path, name,
                   SF_RESULTS_SCHEMA_VERSION);
  }
  size_t size = H5Tget_size(ft);
  int nm = H5Tget_nmembers(ft);
  if (size == 0 || nm < 0) return sf_fail(err, SF_ERR_FORMAT, "%s: /%s: bad row type (corrupt file)", path, name);
  for (int i = 0; i < nm; i++) {
    hid_t mt = H5Tget_member_type(ft, (unsigned)i);
    size_t ms = mt >= 0 ? H5Tget_size(mt) : 0;
    size_t off = H5Tget_member_offset(ft, (unsigned)i);
    if (mt >= 0) H5Tclose(mt);
    if (ms == 0 || off > size || ms > size - off)
      return sf_fail(err, SF_ERR_FORMAT, "%s: /%s: bad row type (corrupt file)", path, name);
  }
  return SF_OK;
}

/* Reads table t into a calloc'd array of C rows. */
static sf_status read_table(const char *path, hid_t file, rs_table t, int lenient, void **rows_out,
                            int64_t *n_out, sf_error *err) {
  const rs_table_desc *d = &rs_tables[t];
  *rows_out = NULL;
  *n_out = 0;
  htri_t ex = H5Lexists(file, d->name, H5P_DEFAULT);
  if (ex < 0) return sf_fail(err, SF_ERR_FORMAT, "%s: corrupt HDF5 file (cannot look up /%s)", path, d->name);
  if (ex == 0) {
    if (lenient) return SF_OK;
    return sf_fail(err, SF_ERR_FORMAT, "%s: missing table /%s", path, d->name);
  }
  hid_t ds = H5Dopen2(file, d->name, H5P_DEFAULT);
  if (ds < 0) return sf_fail(err, SF_ERR_FORMAT, "%s: /%s is not a table (cannot open it as a dataset)", path, d->name);
  hid_t ft = H5Dget_type(ds), sp = H5Dget_space(ds), mt = H5I_INVALID_HID;
  sf_status rc = SF_OK;
  unsigned char present[64];
  hsize_t n = 0;
  void *rows = NULL;
  if (ft < 0 || sp < 0) {
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: /%s: cannot read its type (corrupt file)", path, d->name);
    goto done;
  }
  if (H5Tget_class(ft) != H5T_COMPOUND || H5Sget_simple_extent_ndims(sp) != 1) {
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: /%s is not a table (a 1-D compound dataset)", path, d->name);
    goto done;
  }
  H5Sget_simple_extent_dims(sp, &n, NULL);
  /* HDF5 trusts the type it decodes from the file when it converts rows: a
   * corrupt type message would make it copy out of bounds. Schema v1
   * tables have exactly the type this build writes; a lenient read at
   * least checks that every member lies inside the row. */
  rc = check_file_type(path, d->name, t, ft, lenient, err);
  struct stat fst;
  int64_t file_size = stat(path, &fst) == 0 ? (int64_t)fst.st_size : INT64_MAX / 2;
  if (rc != SF_OK) goto done;
  /* gzip cannot shrink rows more than ~1000x: more rows than that is a
   * corrupt dataspace, not a table. */
  if (n > (hsize_t)file_size / (H5Tget_size(ft) ? H5Tget_size(ft) : 1) * 1100 + 4096) {
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: /%s claims %llu rows, more than the file can hold (corrupt file)", path,
                 d->name, (unsigned long long)n);
    goto done;
  }
  int n_present = 0;
  for (int i = 0; i < d->n_fields; i++) {
    present[i] = H5Tget_member_index(ft, d->fields[i].name) >= 0;
    n_present += present[i];
    if (!present[i] && !lenient) {
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: /%s: missing field '%s'", path, d->name, d->fields[i].name);
      goto done;
    }
  }
  rows = calloc(n ? (size_t)n : 1, d->row_size);
  if (!rows) {
    rc = sf_fail(err, SF_ERR_NOMEM, "%s: out of memory (/%s has %llu rows)", path, d->name, (unsigned long long)n);
    goto done;
  }
  if (n && n_present) {
    mt = rs_h5_type(t, 0, present);
    if (mt < 0 || H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: /%s: cannot read rows (corrupt or truncated file)", path, d->name);
      goto done;
    }
  }
  /* Whatever the file held, strings end inside their buffers. */
  for (hsize_t r = 0; r < n; r++) {
    char *row = (char *)rows + (size_t)r * d->row_size;
    for (int i = 0; i < d->n_fields; i++)
      if (d->fields[i].kind == FK_STR) row[d->fields[i].offset + d->fields[i].size - 1] = '\0';
    if (t == T_ITEMS) {
      sf_results_item *it = (sf_results_item *)(void *)row;
      memcpy(it->result.key, it->item.key, SF_KEY_LEN);
    }
  }
done:
  if (mt >= 0) H5Tclose(mt);
  if (sp >= 0) H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  H5Dclose(ds);
  if (rc != SF_OK) {
    free(rows);
    return rc;
  }
  *rows_out = rows;
  *n_out = (int64_t)n;
  return SF_OK;
}

void sf_results_data_free(sf_results_data *d) {
  if (!d) return;
  rs_prov p;
  memset(&p, 0, sizeof p);
  for (int i = 0; i < RS_PROV_NSTR; i++) {
    const char *const *src[RS_PROV_NSTR] = {
        &d->prov.tool_version, &d->prov.git_sha,      &d->prov.build_features, &d->prov.spec_text,
        &d->prov.spec_sha256,  &d->prov.dataset_sha256, &d->prov.tokenizer_sha256, &d->prov.slurm_job_id,
        &d->prov.created,      &d->prov.host,          &d->prov.sources};
    *rs_prov_str(&p, i) = (char *)*src[i];
  }
  rs_prov_free(&p);
  free(d->devices);
  free(d->problems);
  free(d->items);
  free(d->repeats);
  free(d->steps);
  free(d->kernels);
  memset(d, 0, sizeof *d);
}

static sf_status read_all_tables(const char *path, hid_t file, int flags, sf_results_data *out, sf_error *err) {
  const int lenient = (flags & SF_RESULTS_READ_LENIENT) != 0;
  SF_TRY(read_schema_version(path, file, &out->schema_version, err));
  if (out->schema_version != SF_RESULTS_SCHEMA_VERSION && !lenient)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "%s: schema_version %d is not supported (this scanflash reads %d)", path,
                   out->schema_version, SF_RESULTS_SCHEMA_VERSION);
  rs_prov p;
  memset(&p, 0, sizeof p);
  sf_status rc = SF_OK;
  for (int i = 0; i < RS_PROV_NSTR && rc == SF_OK; i++) {
    const char *name = rs_prov_str_name(i);
    int found;
    rc = read_string_attr(path, file, name, rs_prov_str(&p, i), &found, err);
    if (rc == SF_OK && !found) rc = read_string_dataset(path, file, name, rs_prov_str(&p, i), &found, err);
    int optional = !strcmp(name, "slurm_job_id") || !strcmp(name, "sources");
    if (rc == SF_OK && !found && !optional && !lenient)
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: missing root attribute %s", path, name);
  }
  if (rc == SF_OK) rc = read_int_attr(path, file, "world_size", &p.world_size, err);
  for (int i = 0; i < RS_PROV_NSTR; i++)
    if (!*rs_prov_str(&p, i)) *rs_prov_str(&p, i) = strdup(""); /* set before an error: never NULL */
  p.schema_version = out->schema_version;
  rs_prov_view(&p, &out->prov); /* out owns the strings now */
  if (rc != SF_OK) return rc;
  for (int i = 0; i < RS_PROV_NSTR; i++)
    if (!*rs_prov_str(&p, i)) return sf_fail(err, SF_ERR_NOMEM, "out of memory");

  struct {
    rs_table t;
    void **rows;
    int64_t *n;
  } tabs[T_COUNT] = {
      {T_ITEMS, (void **)&out->items, &out->n_items},
      {T_REPEATS, (void **)&out->repeats, &out->n_repeats},
      {T_STEPS, (void **)&out->steps, &out->n_steps},
      {T_KERNELS, (void **)&out->kernels, &out->n_kernels},
      {T_DEVICES, (void **)&out->devices, &out->n_devices},
      {T_PROBLEMS, (void **)&out->problems, &out->n_problems},
  };
  for (int i = 0; i < T_COUNT; i++) SF_TRY(read_table(path, file, tabs[i].t, lenient, tabs[i].rows, tabs[i].n, err));
  return SF_OK;
}

sf_status sf_results_read(const char *path, int flags, sf_results_data *out, sf_error *err) {
  memset(out, 0, sizeof *out);
  rs_h5quiet q;
  rs_h5_quiet(&q);
  hid_t file;
  sf_status rc = open_file(path, &file, err);
  if (rc == SF_OK) {
    rc = read_all_tables(path, file, flags, out, err);
    if (H5Fclose(file) < 0 && rc == SF_OK) rc = sf_fail(err, SF_ERR_FORMAT, "%s: corrupt HDF5 file (close failed)", path);
  }
  rs_h5_loud(&q);
  if (rc != SF_OK) sf_results_data_free(out);
  return rc;
}

sf_status sf_results_probe(const char *path, int32_t *schema_version, char spec_sha256[65], sf_error *err) {
  rs_h5quiet q;
  rs_h5_quiet(&q);
  hid_t file;
  spec_sha256[0] = '\0';
  sf_status rc = open_file(path, &file, err);
  if (rc == SF_OK) {
    rc = read_schema_version(path, file, schema_version, err);
    char *sha = NULL;
    int found;
    if (rc == SF_OK) rc = read_string_attr(path, file, "spec_sha256", &sha, &found, err);
    if (rc == SF_OK) snprintf(spec_sha256, 65, "%s", sha);
    free(sha);
    H5Fclose(file);
  }
  rs_h5_loud(&q);
  return rc;
}
