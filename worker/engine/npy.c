/* .npy (v1.0) writer for f32 [rows, cols]; see npy.h. */
#include "engine/npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int host_is_little_endian(void) {
  const uint16_t one = 1;
  return *(const unsigned char *)&one == 1;
}

static sf_status write_header(sf_npy_writer *w, sf_error *err) {
  char h[SF_NPY_HEADER_BYTES];
  memset(h, ' ', sizeof h);
  memcpy(h, "\x93NUMPY\x01\x00", 8);
  const unsigned len = SF_NPY_HEADER_BYTES - 10;
  h[8] = (char)(len & 0xff);
  h[9] = (char)(len >> 8);
  char dict[SF_NPY_HEADER_BYTES];
  int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                   (long long)w->rows, (long long)w->cols);
  if (n < 0 || n > (int)len - 1)
    return sf_fail(err, SF_ERR_INTERNAL, "%s: npy header too long", w->path);
  memcpy(h + 10, dict, (size_t)n);
  h[SF_NPY_HEADER_BYTES - 1] = '\n';
  if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->f) != sizeof h)
    return sf_fail(err, SF_ERR_IO, "%s: cannot write: %s", w->path, strerror(errno));
  return SF_OK;
}

sf_status sf_npy_open(sf_npy_writer *w, const char *path, int64_t cols, sf_error *err) {
  memset(w, 0, sizeof *w);
  if (cols < 0) return sf_fail(err, SF_ERR_ARG, "%s: negative column count", path);
  if (strlen(path) >= sizeof w->path) return sf_fail(err, SF_ERR_ARG, "npy path too long");
  strcpy(w->path, path);
  w->cols = cols;
  w->f = fopen(path, "wb");
  if (!w->f) return sf_fail(err, SF_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  sf_status rc = write_header(w, err);
  if (rc != SF_OK) sf_npy_abort(w);
  return rc;
}

sf_status sf_npy_append(sf_npy_writer *w, const float *data, int64_t n, sf_error *err) {
  if (!w->f) return sf_fail(err, SF_ERR_ARG, "npy writer is not open");
  const size_t count = (size_t)(n * w->cols);
  if (host_is_little_endian()) {
    if (fwrite(data, sizeof(float), count, w->f) != count)
      return sf_fail(err, SF_ERR_IO, "%s: cannot write: %s", w->path, strerror(errno));
  } else {
    for (size_t i = 0; i < count; i++) {
      unsigned char b[4], le[4];
      memcpy(b, data + i, 4);
      le[0] = b[3]; le[1] = b[2]; le[2] = b[1]; le[3] = b[0];
      if (fwrite(le, 1, 4, w->f) != 4)
        return sf_fail(err, SF_ERR_IO, "%s: cannot write: %s", w->path, strerror(errno));
    }
  }
  w->rows += n;
  return SF_OK;
}

sf_status sf_npy_close(sf_npy_writer *w, sf_error *err) {
  if (!w->f) return sf_fail(err, SF_ERR_ARG, "npy writer is not open");
  sf_status rc = write_header(w, err);
  if (rc != SF_OK) {
    sf_npy_abort(w);
    return rc;
  }
  int bad = fclose(w->f) != 0;
  w->f = NULL;
  if (bad) {
    remove(w->path);
    return sf_fail(err, SF_ERR_IO, "%s: cannot write: %s", w->path, strerror(errno));
  }
  return SF_OK;
}

void sf_npy_abort(sf_npy_writer *w) {
  if (!w->f) return;
  fclose(w->f);
  w->f = NULL;
  remove(w->path);
}

sf_status sf_npy_write(const char *path, const float *data, int64_t rows, int64_t cols,
                       sf_error *err) {
  sf_npy_writer w;
  SF_TRY(sf_npy_open(&w, path, cols, err));
  sf_status rc = sf_npy_append(&w, data, rows, err);
  if (rc != SF_OK) {
    sf_npy_abort(&w);
    return rc;
  }
  return sf_npy_close(&w, err);
}
