/* The .npy writer: NumPy format v1.0 header (magic, version, length, the
 * dict with descr '<f4', fortran_order False and the shape), data aligned to
 * 64 bytes, little-endian f32 values; streamed rows give the final shape;
 * aborting removes the file; unwritable paths are errors. */
#include <unistd.h>

#include "engine/npy.h"
#include "test.h"

static unsigned char *slurp(const char *path, long *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)*size + 1);
  REQUIRE(b && fread(b, 1, (size_t)*size, f) == (size_t)*size);
  fclose(f);
  b[*size] = 0;
  return b;
}

/* Checks the header of path and returns the data offset (0 on failure). */
static long check_header(const unsigned char *b, long size, const char *shape) {
  if (size < 10 || memcmp(b, "\x93NUMPY\x01\x00", 8)) return 0;
  long hl = b[8] | (b[9] << 8);
  long off = 10 + hl;
  CHECK_MSG(off % 64 == 0, "data offset %ld not 64-aligned", off);
  CHECK(b[off - 1] == '\n');
  char want[160];
  snprintf(want, sizeof want, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
  CHECK_MSG(!strncmp((const char *)b + 10, want, strlen(want)), "header '%.*s'", (int)hl, b + 10);
  for (long i = 10 + (long)strlen(want); i < off - 1; i++) CHECK(b[i] == ' ');
  return off;
}

int main(void) {
  sf_error err;
  char dir[] = "/tmp/sf_npy_XXXXXX";
  REQUIRE(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/a.npy", dir);

  /* whole matrix */
  float m[3 * 5];
  for (int i = 0; i < 15; i++) m[i] = (float)i * 0.5f - 3.25f;
  CHECK(sf_npy_write(path, m, 3, 5, &err) == SF_OK);
  long size = 0;
  unsigned char *b = slurp(path, &size);
  REQUIRE(b);
  long off = check_header(b, size, "(3, 5)");
  CHECK(off > 0);
  CHECK_EQ_I64(size, off + 15 * 4);
  for (int i = 0; i < 15 && off; i++) {
    const unsigned char *q = b + off + 4 * i;
    uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    float v;
    memcpy(&v, &u, 4);
    CHECK(v == m[i]);
  }
  free(b);

  /* streamed rows: shape fixed on close */
  sf_npy_writer w;
  CHECK(sf_npy_open(&w, path, 4, &err) == SF_OK);
  for (int r = 0; r < 7; r++) CHECK(sf_npy_append(&w, m, 1, &err) == SF_OK);
  CHECK(sf_npy_append(&w, m, 2, &err) == SF_OK);
  CHECK(sf_npy_close(&w, &err) == SF_OK);
  b = slurp(path, &size);
  REQUIRE(b);
  off = check_header(b, size, "(9, 4)");
  CHECK_EQ_I64(size, off + 9 * 4 * 4);
  free(b);

  /* zero rows, and a large shape still fits the fixed header */
  CHECK(sf_npy_write(path, m, 0, 50280, &err) == SF_OK);
  b = slurp(path, &size);
  REQUIRE(b);
  CHECK(check_header(b, size, "(0, 50280)") == 128);
  CHECK_EQ_I64(size, 128);
  free(b);

  /* abort removes the file */
  CHECK(sf_npy_open(&w, path, 4, &err) == SF_OK);
  sf_npy_abort(&w);
  CHECK(access(path, F_OK) != 0);

  /* unwritable */
  CHECK(sf_npy_write("/nonexistent-dir/x.npy", m, 1, 1, &err) == SF_ERR_IO);
  CHECK(strstr(err.msg, "/nonexistent-dir/x.npy") != NULL);
  rmdir(dir);
  return sf_test_finish("test_engine_npy");
}
