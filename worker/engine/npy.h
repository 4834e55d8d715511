/* A NumPy .npy writer (format version 1.0) for f32 matrices: the magic
 * "\x93NUMPY", version 1.0, a little-endian uint16 header length, then the
 * header dict {'descr': '<f4', 'fortran_order': False, 'shape': (R, C), }
 * padded with spaces and ended by a newline so that the data starts at byte
 * SF_NPY_HEADER_BYTES (a multiple of 64), then R * C little-endian floats.
 * Rows can be appended one batch at a time; the shape is written on close. */
#ifndef SCANFLASH_ENGINE_NPY_H
#define SCANFLASH_ENGINE_NPY_H

#include <stdint.h>
#include <stdio.h>

#include "scanflash/error.h"

enum { SF_NPY_HEADER_BYTES = 128 };

typedef struct sf_npy_writer {
  FILE *f;
  char path[1024];
  int64_t rows, cols;
} sf_npy_writer;

sf_status sf_npy_open(sf_npy_writer *w, const char *path, int64_t cols, sf_error *err);
/* Appends n rows of cols floats. */
sf_status sf_npy_append(sf_npy_writer *w, const float *data, int64_t n, sf_error *err);
/* Writes the final shape (rows appended so far, cols) and closes. */
sf_status sf_npy_close(sf_npy_writer *w, sf_error *err);
/* Closes without finishing (after an error); the file is removed. */
void sf_npy_abort(sf_npy_writer *w);

/* The whole matrix at once. */
sf_status sf_npy_write(const char *path, const float *data, int64_t rows, int64_t cols,
                       sf_error *err);

#endif
