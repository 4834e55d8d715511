/* Safetensors reader and writer: a round trip through a file the test writes
 * (F32, F16, BF16, scalars, empty tensors, metadata, conversions on read),
 * and malformed files written to a temp dir, each rejected with a one-line
 * error naming the file (and the tensor where there is one). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/safetensors.h"
#include "ops/convert.h"
#include "scanflash/rng.h"
#include "test.h"

static char tmpdir[] = "/tmp/sf_test_safetensors_XXXXXX";

static char *tmp_path(const char *name) {
  static char buf[8][512];
  static int next = 0;
  char *p = buf[next++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
  return p;
}

/* 8-byte little-endian length (hlen, or the header's length when < 0), the
 * header text, then data. */
static void write_raw(const char *path, const char *header, long long hlen, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  REQUIRE(f);
  unsigned long long len = hlen < 0 ? (unsigned long long)strlen(header) : (unsigned long long)hlen;
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(len >> (8 * i));
  REQUIRE(fwrite(b, 1, 8, f) == 8);
  REQUIRE(fwrite(header, 1, strlen(header), f) == strlen(header));
  if (n) REQUIRE(fwrite(data, 1, n, f) == n);
  REQUIRE(fclose(f) == 0);
}

static void expect_open_fails(const char *name, const char *header, long long hlen, size_t data_len,
                              const char *want) {
  static unsigned char zeros[4096];
  REQUIRE(data_len <= sizeof zeros);
  const char *path = tmp_path(name);
  write_raw(path, header, hlen, zeros, data_len);
  sf_safetensors st;
  sf_error err;
  sf_error_clear(&err);
  sf_status rc = sf_safetensors_open(path, &st, &err);
  CHECK_MSG(rc != SF_OK, "%s opened", name);
  CHECK_MSG(strstr(err.msg, want) != NULL, "%s: '%s' lacks '%s'", name, err.msg, want);
  CHECK_MSG(strstr(err.msg, path) != NULL, "%s: '%s' does not name the file", name, err.msg);
  CHECK(strchr(err.msg, '\n') == NULL);
  CHECK(st.tensors == NULL && st.n == 0 && st.fd == -1);
  sf_safetensors_close(&st); /* harmless on a failed open */
}

static void test_round_trip(void) {
  float a[12];
  for (int i = 0; i < 12; i++) a[i] = (float)i * 0.25f - 1.0f;
  float src16[5] = {1.0f, -2.5f, 0.333251953125f, 65504.0f, -0.0f};
  uint16_t h[5], bf[12];
  for (int i = 0; i < 5; i++) h[i] = sf_f32_to_f16(src16[i]);
  for (int i = 0; i < 12; i++) bf[i] = sf_f32_to_bf16((float)i * -0.125f + 3.0f);
  float scalar = 42.5f;
  int64_t sa[2] = {3, 4}, sh[1] = {5}, sb[3] = {2, 3, 2}, se[2] = {0, 3};
  sf_st_write_tensor ts[] = {
      {"weights.a", SF_F32, 2, sa, a},
      {"half", SF_F16, 1, sh, h},
      {"model.layers.0.bf", SF_BF16, 3, sb, bf},
      {"scalar", SF_F32, 0, NULL, &scalar},
      {"empty", SF_F32, 2, se, NULL},
  };
  const char *meta[] = {"format", "pt", "note", "quote \" and \\ backslash"};
  const char *path = tmp_path("round.safetensors");
  sf_error err;
  sf_status rc = sf_safetensors_write(path, ts, 5, meta, 2, &err);
  CHECK_MSG(rc == SF_OK, "%s", err.msg);
  CHECK(access(tmp_path("round.safetensors.tmp"), F_OK) != 0);

  sf_safetensors st;
  rc = sf_safetensors_open(path, &st, &err);
  CHECK_MSG(rc == SF_OK, "%s", err.msg);
  if (rc != SF_OK) return;
  CHECK_EQ_I64(st.n, 5); /* __metadata__ is not a tensor */
  CHECK(st.data_start % 8 == 0);
  CHECK(sf_safetensors_find(&st, "__metadata__") == NULL);
  CHECK(sf_safetensors_find(&st, "missing") == NULL);

  const sf_st_tensor *t = sf_safetensors_find(&st, "weights.a");
  REQUIRE(t);
  CHECK(t->supported && t->dtype == SF_F32 && !strcmp(t->dtype_name, "F32"));
  CHECK(t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 4 && sf_st_tensor_numel(t) == 12);
  float got[12];
  CHECK(sf_safetensors_read(&st, t, 0, 12, got, SF_F32, &err) == SF_OK);
  CHECK(memcmp(got, a, sizeof a) == 0);
  float part[3];
  CHECK(sf_safetensors_read(&st, t, 7, 3, part, SF_F32, &err) == SF_OK);
  CHECK(part[0] == a[7] && part[2] == a[9]);
  uint16_t as_bf[12];
  CHECK(sf_safetensors_read(&st, t, 0, 12, as_bf, SF_BF16, &err) == SF_OK);
  for (int i = 0; i < 12; i++) CHECK(as_bf[i] == sf_f32_to_bf16(a[i]));
  CHECK(sf_safetensors_read(&st, t, 10, 3, part, SF_F32, &err) == SF_ERR_INTERNAL);

  t = sf_safetensors_find(&st, "half");
  REQUIRE(t);
  CHECK(t->dtype == SF_F16 && t->elem_size == 2 && t->ndim == 1 && t->shape[0] == 5);
  uint16_t h2[5];
  float hf[5];
  CHECK(sf_safetensors_read(&st, t, 0, 5, h2, SF_F16, &err) == SF_OK);
  CHECK(memcmp(h2, h, sizeof h) == 0);
  CHECK(sf_safetensors_read(&st, t, 0, 5, hf, SF_F32, &err) == SF_OK);
  for (int i = 0; i < 5; i++) CHECK(hf[i] == src16[i]);

  t = sf_safetensors_find(&st, "model.layers.0.bf");
  REQUIRE(t);
  CHECK(t->dtype == SF_BF16 && t->ndim == 3 && t->shape[2] == 2);
  uint16_t bf2[12];
  float bff[12];
  CHECK(sf_safetensors_read(&st, t, 0, 12, bf2, SF_BF16, &err) == SF_OK);
  CHECK(memcmp(bf2, bf, sizeof bf) == 0);
  CHECK(sf_safetensors_read(&st, t, 0, 12, bff, SF_F32, &err) == SF_OK);
  for (int i = 0; i < 12; i++) CHECK(bff[i] == sf_bf16_to_f32(bf[i]));

  t = sf_safetensors_find(&st, "scalar");
  REQUIRE(t);
  float s2 = 0;
  CHECK(t->ndim == 0 && sf_st_tensor_numel(t) == 1);
  CHECK(sf_safetensors_read(&st, t, 0, 1, &s2, SF_F32, &err) == SF_OK && s2 == 42.5f);
  t = sf_safetensors_find(&st, "empty");
  REQUIRE(t);
  CHECK(sf_st_tensor_numel(t) == 0 && t->begin == t->end);
  CHECK(sf_safetensors_read(&st, t, 0, 0, got, SF_F32, &err) == SF_OK);
  sf_safetensors_close(&st);
  sf_safetensors_close(&st); /* twice is harmless */

  /* Writer argument errors. */
  sf_st_write_tensor dup[] = {{"x", SF_F32, 1, sh, a}, {"x", SF_F32, 1, sh, a}};
  CHECK(sf_safetensors_write(path, dup, 2, NULL, 0, &err) == SF_ERR_ARG && strstr(err.msg, "x given twice"));
  sf_st_write_tensor bad[] = {{"__metadata__", SF_F32, 1, sh, a}};
  CHECK(sf_safetensors_write(path, bad, 1, NULL, 0, &err) == SF_ERR_ARG);
  CHECK(sf_safetensors_write("/nonexistent-dir/x.safetensors", ts, 1, NULL, 0, &err) == SF_ERR_IO);
  CHECK(strstr(err.msg, "/nonexistent-dir/x.safetensors.tmp") != NULL);
}

/* Tensors we never read may have any safetensors dtype (masks, ids): the
 * file opens, and reading one is an error naming it. */
static void test_other_dtypes(void) {
  const char *path = tmp_path("ints.safetensors");
  unsigned char data[16 + 3 + 4] = {0};
  write_raw(path,
            "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
            "\"mask\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[16,19]},"
            "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[19,23]},"
            "\"__metadata__\":{\"format\":\"pt\"}}",
            -1, data, sizeof data);
  sf_safetensors st;
  sf_error err;
  sf_status rc = sf_safetensors_open(path, &st, &err);
  CHECK_MSG(rc == SF_OK, "%s", err.msg);
  if (rc != SF_OK) return;
  CHECK_EQ_I64(st.n, 3);
  const sf_st_tensor *ids = sf_safetensors_find(&st, "ids");
  REQUIRE(ids);
  CHECK(!ids->supported && ids->elem_size == 8);
  float out[2];
  CHECK(sf_safetensors_read(&st, ids, 0, 2, out, SF_F32, &err) == SF_ERR_UNSUPPORTED);
  CHECK(strstr(err.msg, path) && strstr(err.msg, "ids") && strstr(err.msg, "I64"));
  const sf_st_tensor *w = sf_safetensors_find(&st, "w");
  REQUIRE(w);
  CHECK(sf_safetensors_read(&st, w, 0, 1, out, SF_F32, &err) == SF_OK && out[0] == 0.0f);
  sf_safetensors_close(&st);
}

static void test_malformed(void) {
  sf_safetensors st;
  sf_error err;
  CHECK(sf_safetensors_open(tmp_path("does-not-exist"), &st, &err) == SF_ERR_IO);
  CHECK(strstr(err.msg, "cannot open") != NULL);

  {
    const char *p = tmp_path("short.safetensors");
    FILE *f = fopen(p, "wb");
    REQUIRE(f && fwrite("abc", 1, 3, f) == 3 && fclose(f) == 0);
    CHECK(sf_safetensors_open(p, &st, &err) == SF_ERR_FORMAT);
    CHECK(strstr(err.msg, "too short") && strstr(err.msg, p));
  }
  const char *ok_entry = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  expect_open_fails("zero_len.safetensors", ok_entry, 0, 8, "header length is 0");
  expect_open_fails("long_len.safetensors", ok_entry, 100000, 8, "beyond the file size");
  expect_open_fails("huge_len.safetensors", ok_entry, (long long)1 << 62, 8, "beyond the file size");
  expect_open_fails("not_json.safetensors", "{\"t\": [1, 2", -1, 0, "not valid JSON");
  expect_open_fails("array.safetensors", "[1, 2, 3]", -1, 0, "not a JSON object");
  expect_open_fails("trailing.safetensors", "{} x", -1, 0, "data after the JSON object");
  expect_open_fails("not_entry.safetensors", "{\"t\": 5}", -1, 0, "tensor t: entry is not an object");
  expect_open_fails("no_dtype.safetensors", "{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8,
                    "tensor t: missing dtype");
  expect_open_fails("bad_dtype.safetensors",
                    "{\"t\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8,
                    "tensor t: unknown dtype 'Q7'");
  expect_open_fails("no_shape.safetensors", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", -1, 8,
                    "tensor t: missing shape");
  expect_open_fails("neg_shape.safetensors",
                    "{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", -1, 8,
                    "tensor t: shape[0] is not a non-negative integer");
  expect_open_fails("frac_shape.safetensors",
                    "{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", -1, 8,
                    "tensor t: shape[0]");
  expect_open_fails("big_shape.safetensors",
                    "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
                    -1, 8, "tensor t: shape is too large");
  expect_open_fails("no_offsets.safetensors", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", -1, 8,
                    "tensor t: data_offsets is not [begin, end]");
  expect_open_fails("one_offset.safetensors",
                    "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", -1, 8,
                    "tensor t: data_offsets is not [begin, end]");
  expect_open_fails("reversed.safetensors",
                    "{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", -1, 8,
                    "tensor t: data_offsets [8, 0] end before begin");
  expect_open_fails("size_mismatch.safetensors",
                    "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 16,
                    "tensor t: data_offsets [0, 8] hold 8 bytes, shape x F32 needs 12");
  expect_open_fails("bf16_mismatch.safetensors",
                    "{\"t\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", -1, 16,
                    "shape x BF16 needs 8");
  expect_open_fails("out_of_range.safetensors",
                    "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", -1, 16,
                    "tensor t: data_offsets [8, 24] beyond the 16 data bytes");
  expect_open_fails("truncated.safetensors",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F16\",\"shape\":[64],\"data_offsets\":[8,136]}}",
                    -1, 100,
                    "tensor b: data_offsets [8, 136] beyond the 100 data bytes in the file (truncated?)");
  expect_open_fails("overlap.safetensors",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                    -1, 16, "tensors a and b overlap");
  expect_open_fails("duplicate.safetensors",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                    -1, 8, "tensor a appears twice");

  /* A header length beyond the 100 MiB cap (the file is sparse). */
  {
    const char *p = tmp_path("cap.safetensors");
    write_raw(p, "{}", 150LL << 20, NULL, 0);
    REQUIRE(truncate(p, 200LL << 20) == 0);
    CHECK(sf_safetensors_open(p, &st, &err) == SF_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "exceeds the 100 MiB limit") != NULL, "%s", err.msg);
    unlink(p);
  }

  /* A file cut short after it was opened: the read fails cleanly. */
  {
    const char *p = tmp_path("shrinks.safetensors");
    float v[64] = {0};
    int64_t shape[1] = {64};
    sf_st_write_tensor w[] = {{"v", SF_F32, 1, shape, v}};
    REQUIRE(sf_safetensors_write(p, w, 1, NULL, 0, &err) == SF_OK);
    REQUIRE(sf_safetensors_open(p, &st, &err) == SF_OK);
    REQUIRE(truncate(p, st.data_start + 100) == 0);
    const sf_st_tensor *t = sf_safetensors_find(&st, "v");
    REQUIRE(t);
    CHECK(sf_safetensors_read(&st, t, 0, 64, v, SF_F32, &err) == SF_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "unexpected end of file") && strstr(err.msg, p), "%s", err.msg);
    uint16_t hv[64];
    CHECK(sf_safetensors_read(&st, t, 0, 64, hv, SF_BF16, &err) == SF_ERR_FORMAT);
    sf_safetensors_close(&st);
  }
}

/* Random corruption of a valid file's header and length: every outcome is
 * either a clean open (then every tensor reads or fails cleanly) or a
 * one-line error; never a crash (the sanitizer build checks memory). */
static void test_mutations(uint64_t seed) {
  float v[6] = {1, 2, 3, 4, 5, 6};
  int64_t s2[2] = {2, 3}, s1[1] = {6};
  sf_st_write_tensor ts[] = {{"a", SF_F32, 2, s2, v}, {"b", SF_BF16, 1, s1, v}, {"c", SF_F16, 1, s1, v}};
  const char *good = tmp_path("good.safetensors"), *bad = tmp_path("mutant.safetensors");
  sf_error err;
  REQUIRE(sf_safetensors_write(good, ts, 3, NULL, 0, &err) == SF_OK);
  FILE *f = fopen(good, "rb");
  REQUIRE(f);
  unsigned char buf[1024];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  REQUIRE(n > 8 && n < sizeof buf);
  uint64_t st = seed;
  int opened = 0;
  for (int iter = 0; iter < 2000; iter++) {
    unsigned char m[1024];
    memcpy(m, buf, n);
    int edits = 1 + (int)(sf_splitmix64(&st) % 4);
    for (int e = 0; e < edits; e++) {
      size_t at = (size_t)(sf_splitmix64(&st) % n);
      static const char alphabet[] = "0123456789[]{},:\"-. eE";
      m[at] = sf_splitmix64(&st) % 2 ? (unsigned char)alphabet[sf_splitmix64(&st) % (sizeof alphabet - 1)]
                                     : (unsigned char)sf_splitmix64(&st);
    }
    size_t len = n - (size_t)(sf_splitmix64(&st) % 3 == 0 ? sf_splitmix64(&st) % 16 : 0);
    FILE *o = fopen(bad, "wb");
    REQUIRE(o && fwrite(m, 1, len, o) == len && fclose(o) == 0);
    sf_safetensors x;
    sf_error_clear(&err);
    if (sf_safetensors_open(bad, &x, &err) != SF_OK) {
      CHECK(err.msg[0] && strchr(err.msg, '\n') == NULL);
      continue;
    }
    opened++;
    for (int32_t i = 0; i < x.n; i++) {
      int64_t numel = sf_st_tensor_numel(&x.tensors[i]);
      if (numel > 4096) continue;
      float out[4096];
      (void)sf_safetensors_read(&x, &x.tensors[i], 0, numel, out, SF_F32, &err);
    }
    sf_safetensors_close(&x);
  }
  printf("mutations: %d of 2000 still opened\n", opened);
}

static void cleanup(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void) {
  uint64_t seed = sf_test_seed();
  REQUIRE(mkdtemp(tmpdir) != NULL);
  test_round_trip();
  test_other_dtypes();
  test_malformed();
  test_mutations(seed);
  cleanup();
  return sf_test_finish("test_safetensors");
}
