/* cpu reference ops, basic set: embedding, norms, gemm, rotary, activations,
 * sampling. Random inputs (seed printed; SF_TEST_SEED replays), compared with
 * the double references in tests/ref by ||out - ref|| / ||ref||, outputs
 * poisoned with NaN before each call so an unwritten element fails, strided
 * views with padding that must stay untouched, and every documented bad
 * parameter rejected with the right status and a message.
 *
 * Tolerances (relative L2 against the double reference):
 *   embedding exact; norms 1e-5; gemm 1e-5; rotary 1e-5; activations 1e-6. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/convert.h"
#include "ops/op_table.h"
#include "ref/ref.h"
#include "scanflash/rng.h"
#include "test.h"

static sf_rng rng;
static sf_op_ctx ctx;
static const sf_ops *ops = &sf_ops_cpu;

#define TOL_NORM 1e-5
#define TOL_GEMM 1e-5
#define TOL_ROTARY 1e-5
#define TOL_ACT 1e-6
#define SENTINEL 12345.0f

static float *fmalloc(int64_t n) {
  float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
  REQUIRE(p);
  return p;
}
static double *dmalloc(int64_t n) {
  double *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
  REQUIRE(p);
  return p;
}
static void fill_normal(float *p, int64_t n, float scale, float offset) {
  for (int64_t i = 0; i < n; i++) p[i] = offset + scale * sf_rng_normal(&rng);
}
static void fill_const(float *p, int64_t n, float v) {
  for (int64_t i = 0; i < n; i++) p[i] = v;
}

/* ||out - ref|| / ||ref|| over rows x d of a strided fp32 output; counts NaNs. */
typedef struct cmp { double rel, max_abs; int64_t nans; } cmp;
static cmp compare_rows(const float *out, int64_t stride, const double *ref, int64_t rows, int64_t d) {
  cmp c = {0, 0, 0};
  double num = 0, den = 0;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < d; i++) {
      double o = out[r * stride + i], e = ref[r * d + i];
      if (isnan(o)) { c.nans++; continue; }
      num += (o - e) * (o - e);
      den += e * e;
      if (fabs(o - e) > c.max_abs) c.max_abs = fabs(o - e);
    }
  c.rel = den > 0 ? sqrt(num / den) : sqrt(num);
  return c;
}

#define CHECK_CMP(what, c, tol)                                                                  \
  do {                                                                                           \
    cmp c_ = (c);                                                                                \
    printf("  %-44s rel %.2e  max abs %.2e  (tol %.0e)\n", what, c_.rel, c_.max_abs, (double)(tol)); \
    CHECK_MSG(c_.nans == 0, "%s: %lld NaN outputs (unwritten?)", what, (long long)c_.nans);     \
    CHECK_MSG(c_.rel <= (tol), "%s: rel err %.3e > %.0e", what, c_.rel, (double)(tol));          \
  } while (0)

/* Elements [d, stride) of each row must still hold SENTINEL. */
static int64_t padding_changed(const float *p, int64_t rows, int64_t d, int64_t stride) {
  int64_t bad = 0;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = d; i < stride; i++) bad += p[r * stride + i] != SENTINEL;
  return bad;
}

/* A bad call: the expected status and a message naming the op. */
#define CHECK_FAILS(call, want, op_name)                                                 \
  do {                                                                                   \
    sf_error e_ = {0};                                                                   \
    sf_status s_ = (call);                                                               \
    CHECK_MSG(s_ == (want), "%s returned %s, want %s", #call, sf_status_name(s_),        \
              sf_status_name(want));                                                     \
    CHECK_MSG(e_.code == s_ || s_ == SF_OK, "error code not set");                       \
    CHECK_MSG(strstr(e_.msg, op_name) != NULL, "message '%s' does not name %s", e_.msg, \
              op_name);                                                                  \
    printf("  rejected: %s\n", e_.msg);                                                  \
  } while (0)
/* The call expression passes &e_, the error the macro declares. */

/* ---------------------------------------------------------------- embedding */
static void test_embedding(void) {
  printf("embedding\n");
  const int32_t vocab = 101;
  const int64_t d = 37, n = 23, ts = 40, os = 41;
  float *table = fmalloc(vocab * ts), *out = fmalloc(n * os);
  int32_t ids[23];
  fill_normal(table, vocab * ts, 1, 0);
  for (int64_t t = 0; t < n; t++) ids[t] = (int32_t)sf_rng_below(&rng, (uint64_t)vocab);
  ids[0] = 0;
  ids[n - 1] = vocab - 1;
  fill_const(out, n * os, SENTINEL);
  for (int64_t t = 0; t < n; t++) fill_const(out + t * os, d, NAN);
  sf_embedding_params p = {.dtype = SF_F32, .n_tokens = n, .d = d, .vocab = vocab, .ids = ids,
                           .table = table, .table_row_stride = ts, .out = out, .out_row_stride = os};
  sf_error err = {0};
  CHECK_EQ_I64(ops->embedding(&ctx, &p, &err), SF_OK);
  int64_t diff = 0;
  for (int64_t t = 0; t < n; t++)
    for (int64_t i = 0; i < d; i++) diff += out[t * os + i] != table[(int64_t)ids[t] * ts + i];
  CHECK_EQ_I64(diff, 0);
  CHECK_EQ_I64(padding_changed(out, n, d, os), 0);

  /* Bad id: exact message, out untouched. */
  ids[5] = vocab;
  for (int64_t t = 0; t < n; t++) fill_const(out + t * os, d, NAN);
  sf_error e1 = {0};
  CHECK_EQ_I64(ops->embedding(&ctx, &p, &e1), SF_ERR_ARG);
  CHECK_STR_EQ(e1.msg, "embedding: token 5 has id 101 outside [0, 101)");
  int64_t touched = 0;
  for (int64_t t = 0; t < n; t++)
    for (int64_t i = 0; i < d; i++) touched += !isnan(out[t * os + i]);
  CHECK_EQ_I64(touched, 0);
  ids[5] = -1;
  CHECK_FAILS(ops->embedding(&ctx, &p, &e_), SF_ERR_ARG, "embedding");
  ids[5] = 3;
  sf_embedding_params q = p;
  q.out_row_stride = d - 1;
  CHECK_FAILS(ops->embedding(&ctx, &q, &e_), SF_ERR_ARG, "embedding");
  q = p;
  q.dtype = SF_BF16;
  CHECK_FAILS(ops->embedding(&ctx, &q, &e_), SF_ERR_UNSUPPORTED, "embedding");
  free(table);
  free(out);
}

/* ---------------------------------------------------------------- norms */
static void run_norm(const char *what, sf_norm_kind kind, int64_t rows, int64_t d, int64_t group,
                     int with_bias, int in_place) {
  const int64_t xs = d + 3, zs = d + 5, os = in_place ? xs : d + 8;
  const float eps = 1e-5f;
  float *x = fmalloc(rows * xs), *z = fmalloc(rows * zs), *w = fmalloc(d), *b = fmalloc(d);
  float *out = in_place ? x : fmalloc(rows * os);
  double *ref = dmalloc(rows * d);
  fill_normal(x, rows * xs, 2.0f, kind == SF_NORM_LAYER ? 3.0f : 0.0f);
  fill_normal(z, rows * zs, 1.5f, 0);
  fill_normal(w, d, 0.5f, 1.0f);
  fill_normal(b, d, 0.5f, 0);
  const int64_t g = group ? group : d;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * xs;
    double *rr = ref + r * d;
    if (kind == SF_NORM_RMS) ref_rms_norm(xr, w, d, eps, rr);
    else if (kind == SF_NORM_LAYER) ref_layer_norm(xr, w, with_bias ? b : NULL, d, eps, rr);
    else ref_gated_rms_norm(xr, z + r * zs, w, d, g, eps, rr);
  }
  for (int64_t r = 0; r < rows; r++) fill_const(x + r * xs + d, xs - d, SENTINEL);
  if (!in_place) {
    fill_const(out, rows * os, SENTINEL);
    for (int64_t r = 0; r < rows; r++) fill_const(out + r * os, d, NAN);
  }
  sf_norm_params p = {.kind = kind, .dtype = SF_F32, .n_rows = rows, .d = d, .group_size = group,
                      .eps = eps, .x = x, .x_row_stride = xs, .z = z, .z_row_stride = zs,
                      .weight = w, .bias = with_bias ? b : NULL, .out = out, .out_row_stride = os};
  sf_error err = {0};
  CHECK_MSG(ops->norm(&ctx, &p, &err) == SF_OK, "%s: %s", what, err.msg);
  CHECK_CMP(what, compare_rows(out, os, ref, rows, d), TOL_NORM);
  CHECK_EQ_I64(padding_changed(out, rows, d, os), 0);
  free(x); free(z); free(w); free(b); free(ref);
  if (!in_place) free(out);
}

static void test_norm(void) {
  printf("norm\n");
  run_norm("rms d=37 strided", SF_NORM_RMS, 13, 37, 0, 0, 0);
  run_norm("rms d=768 in place", SF_NORM_RMS, 5, 768, 0, 0, 1);
  run_norm("layer d=37 bias strided", SF_NORM_LAYER, 13, 37, 0, 1, 0);
  run_norm("layer d=64 no bias in place", SF_NORM_LAYER, 9, 64, 0, 0, 1);
  run_norm("gated rms d=48 group 16", SF_NORM_GATED_RMS, 11, 48, 16, 0, 0);
  run_norm("gated rms d=37 group 0 (= d) in place", SF_NORM_GATED_RMS, 6, 37, 0, 0, 1);

  float x[8] = {0}, w[8] = {0}, z[8] = {0};
  sf_norm_params p = {.kind = SF_NORM_GATED_RMS, .dtype = SF_F32, .n_rows = 1, .d = 8,
                      .group_size = 3, .eps = 1e-5f, .x = x, .x_row_stride = 8, .z = z,
                      .z_row_stride = 8, .weight = w, .out = x, .out_row_stride = 8};
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_ARG, "norm");   /* group does not divide d */
  p.group_size = 4;
  p.z = NULL;
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_ARG, "norm");   /* gated without z */
  p.kind = SF_NORM_RMS;
  p.d = 0;
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_ARG, "norm");
  p.d = 8;
  p.eps = -1.0f;
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_ARG, "norm");
  p.eps = 1e-5f;
  p.x_row_stride = 7;
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_ARG, "norm");
  p.x_row_stride = 8;
  p.kind = (sf_norm_kind)7;
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_ARG, "norm");
  p.kind = SF_NORM_RMS;
  p.dtype = SF_F16;
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_UNSUPPORTED, "norm");
}

/* The paired form (weight2: a second output from the same statistics, as
 * GPT-NeoX's two LayerNorms of one x): both outputs against two separate
 * double references, and bit for bit against two separate unpaired calls.
 * bf16: the inputs rounded to bf16 values (the cpu op computes in f32 only,
 * on the values a 16-bit device op sees). */
static void run_norm_pair(sf_norm_kind kind, int64_t rows, int64_t d, int bias1, int bias2,
                          int in_place, int x_f32, int bf16) {
  char what[96];
  snprintf(what, sizeof what, "%s pair rows=%lld d=%lld%s%s%s%s%s",
           kind == SF_NORM_RMS ? "rms" : "layer", (long long)rows, (long long)d,
           bias1 ? " bias" : "", bias2 ? " bias2" : "", in_place ? " in place" : "",
           x_f32 ? " x_f32" : "", bf16 ? " bf16 values" : "");
  const int64_t xs = d + 3, os = in_place ? xs : d + 8, os2 = d + 5;
  const float eps = 1e-5f;
  float *x = fmalloc(rows * xs), *x0 = fmalloc(rows * xs), *out2 = fmalloc(rows * os2);
  float *w = fmalloc(d), *b = fmalloc(d), *w2 = fmalloc(d), *b2 = fmalloc(d);
  float *out = in_place ? x : fmalloc(rows * os);
  float *sep = fmalloc(rows * xs), *sep2 = fmalloc(rows * os2);
  double *ref = dmalloc(rows * d), *ref2 = dmalloc(rows * d);
  fill_normal(x, rows * xs, 2.0f, kind == SF_NORM_LAYER ? 3.0f : 0.0f);
  fill_normal(w, d, 0.5f, 1.0f);
  fill_normal(b, d, 0.5f, 0);
  fill_normal(w2, d, 0.5f, -1.0f);
  fill_normal(b2, d, 0.5f, 0.5f);
  float *const rnd[] = {x, w, b, w2, b2};
  const int64_t rnd_n[] = {rows * xs, d, d, d, d};
  for (int a = 0; bf16 && a < 5; a++)
    for (int64_t i = 0; i < rnd_n[a]; i++) rnd[a][i] = sf_bf16_to_f32(sf_f32_to_bf16(rnd[a][i]));
  const float *bb = bias1 ? b : NULL, *bb2 = bias2 ? b2 : NULL;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * xs;
    if (kind == SF_NORM_RMS) {
      ref_rms_norm(xr, w, d, eps, ref + r * d);
      ref_rms_norm(xr, w2, d, eps, ref2 + r * d);
    } else {
      ref_layer_norm(xr, w, bb, d, eps, ref + r * d);
      ref_layer_norm(xr, w2, bb2, d, eps, ref2 + r * d);
    }
  }
  for (int64_t r = 0; r < rows; r++) fill_const(x + r * xs + d, xs - d, SENTINEL);
  memcpy(x0, x, (size_t)(rows * xs) * sizeof(float));
  if (!in_place) {
    fill_const(out, rows * os, SENTINEL);
    for (int64_t r = 0; r < rows; r++) fill_const(out + r * os, d, NAN);
  }
  fill_const(out2, rows * os2, SENTINEL);
  for (int64_t r = 0; r < rows; r++) fill_const(out2 + r * os2, d, NAN);
  sf_norm_params p = {.kind = kind, .dtype = SF_F32, .x_f32 = x_f32, .n_rows = rows, .d = d,
                      .eps = eps, .x = x, .x_row_stride = xs, .weight = w, .bias = bb,
                      .out = out, .out_row_stride = os, .weight2 = w2, .bias2 = bb2,
                      .out2 = out2, .out2_row_stride = os2};
  sf_error err = {0};
  CHECK_MSG(ops->norm(&ctx, &p, &err) == SF_OK, "%s: %s", what, err.msg);
  char w1s[112], w2s[112];
  snprintf(w1s, sizeof w1s, "%s: out", what);
  snprintf(w2s, sizeof w2s, "%s: out2", what);
  CHECK_CMP(w1s, compare_rows(out, os, ref, rows, d), TOL_NORM);
  CHECK_CMP(w2s, compare_rows(out2, os2, ref2, rows, d), TOL_NORM);
  CHECK_EQ_I64(padding_changed(out, rows, d, os), 0);
  CHECK_EQ_I64(padding_changed(out2, rows, d, os2), 0);

  /* The same as two unpaired calls, bit for bit. */
  sf_norm_params q = p;
  q.weight2 = q.bias2 = NULL;
  q.out2 = NULL;
  q.x = x0;
  q.out = sep;
  q.out_row_stride = xs;
  CHECK_MSG(ops->norm(&ctx, &q, &err) == SF_OK, "%s: %s", what, err.msg);
  q.weight = w2;
  q.bias = bb2;
  q.out = sep2;
  q.out_row_stride = os2;
  CHECK_MSG(ops->norm(&ctx, &q, &err) == SF_OK, "%s: %s", what, err.msg);
  int64_t diff = 0;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < d; i++)
      diff += memcmp(&out[r * os + i], &sep[r * xs + i], sizeof(float)) != 0 ||
              memcmp(&out2[r * os2 + i], &sep2[r * os2 + i], sizeof(float)) != 0;
  CHECK_MSG(diff == 0, "%s: %lld elements differ from two separate calls", what, (long long)diff);

  /* Without weight2 there is no second output: out2 left untouched. */
  q = p;
  q.weight2 = NULL;
  q.x = x0;
  q.out = sep;
  q.out_row_stride = xs;
  fill_const(out2, rows * os2, SENTINEL);
  CHECK_MSG(ops->norm(&ctx, &q, &err) == SF_OK, "%s: %s", what, err.msg);
  CHECK_EQ_I64(padding_changed(out2, rows, 0, os2), 0);
  free(x); free(x0); free(out2); free(w); free(b); free(w2); free(b2); free(sep); free(sep2);
  free(ref); free(ref2);
  if (!in_place) free(out);
}

static void test_norm_pair(void) {
  printf("norm pair (weight2)\n");
  run_norm_pair(SF_NORM_LAYER, 13, 37, 1, 1, 0, 0, 0);
  run_norm_pair(SF_NORM_LAYER, 3, 2048, 1, 0, 0, 1, 1);   /* Pythia-1.4b decode, f32 residual */
  run_norm_pair(SF_NORM_LAYER, 1, 2048, 0, 1, 1, 0, 1);
  run_norm_pair(SF_NORM_LAYER, 9, 64, 0, 0, 1, 0, 0);
  run_norm_pair(SF_NORM_RMS, 5, 768, 0, 0, 0, 1, 0);
  run_norm_pair(SF_NORM_RMS, 1, 2048, 0, 0, 1, 0, 1);

  float x[16] = {0}, w[8] = {0}, z[8] = {0}, o[8], o2[8];
  sf_norm_params p = {.kind = SF_NORM_LAYER, .dtype = SF_F32, .n_rows = 1, .d = 8, .eps = 1e-5f,
                      .x = x, .x_row_stride = 8, .z = z, .z_row_stride = 8, .weight = w,
                      .out = o, .out_row_stride = 8, .weight2 = w, .out2 = o2,
                      .out2_row_stride = 8};
  sf_error e0 = {0};
  CHECK_EQ_I64(ops->norm(&ctx, &p, &e0), SF_OK);
  p.kind = SF_NORM_GATED_RMS;
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_ARG, "norm");   /* gated: no second output */
  p.kind = SF_NORM_RMS;
  p.out2_row_stride = 7;
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_ARG, "norm");
  p.out2_row_stride = 8;
  p.out2 = NULL;
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_ARG, "norm");
  p.out2 = o;                                                   /* aliases out */
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_ARG, "norm");
  p.out2 = x;                                                   /* aliases x */
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_ARG, "norm");
  p.out2 = o2;
  p.dtype = SF_BF16;
  CHECK_FAILS(ops->norm(&ctx, &p, &e_), SF_ERR_UNSUPPORTED, "norm");
}

/* ---------------------------------------------------------------- gemm */
static void run_gemm(int64_t m, int64_t n, int64_t k, int64_t pad, int with_bias, int accumulate) {
  char what[96];
  snprintf(what, sizeof what, "gemm m=%lld n=%lld k=%lld%s%s", (long long)m, (long long)n,
           (long long)k, with_bias ? " bias" : "", accumulate ? " accumulate" : "");
  const int64_t lda = k + pad, ldw = k + 2 * pad, ldc = n + pad + 1;
  float *a = fmalloc(m * lda), *w = fmalloc(n * ldw), *bias = fmalloc(n), *c = fmalloc(m * ldc);
  float *ad = fmalloc(m * k), *wd = fmalloc(n * k), *c0 = fmalloc(m * n);
  double *ref = dmalloc(m * n);
  fill_normal(a, m * lda, 1, 0);
  fill_normal(w, n * ldw, 1, 0);
  fill_normal(bias, n, 1, 0);
  for (int64_t i = 0; i < m; i++) memcpy(ad + i * k, a + i * lda, (size_t)k * sizeof(float));
  for (int64_t j = 0; j < n; j++) memcpy(wd + j * k, w + j * ldw, (size_t)k * sizeof(float));
  ref_gemm(ad, wd, with_bias ? bias : NULL, m, n, k, ref);
  fill_const(c, m * ldc, SENTINEL);
  fill_normal(c0, m * n, 1, 0);
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      c[i * ldc + j] = accumulate ? c0[i * n + j] : NAN;
      if (accumulate) ref[i * n + j] += c0[i * n + j];
    }
  sf_gemm_params p = {.dtype = SF_F32, .out_dtype = SF_F32, .m = m, .n = n, .k = k, .a = a,
                      .lda = lda, .w = w, .ldw = ldw, .bias = with_bias ? bias : NULL, .c = c,
                      .ldc = ldc, .accumulate = accumulate};
  sf_error err = {0};
  CHECK_MSG(ops->gemm(&ctx, &p, &err) == SF_OK, "%s: %s", what, err.msg);
  CHECK_CMP(what, compare_rows(c, ldc, ref, m, n), TOL_GEMM);
  CHECK_EQ_I64(padding_changed(c, m, n, ldc), 0);
  free(a); free(w); free(bias); free(c); free(ad); free(wd); free(c0); free(ref);
}

static void test_gemm(void) {
  printf("gemm\n");
  run_gemm(37, 29, 67, 3, 1, 0);
  run_gemm(1, 300, 256, 0, 0, 0);      /* decode row */
  run_gemm(70, 130, 300, 5, 1, 0);     /* crosses 64 x 64 tiles and 256-wide k blocks */
  run_gemm(70, 130, 300, 5, 1, 1);     /* residual add folded in */
  run_gemm(5, 3, 1, 0, 0, 1);
  run_gemm(6, 7, 0, 0, 1, 0);          /* k = 0: c = bias */

  float buf[64] = {0};
  sf_gemm_params p = {.dtype = SF_F32, .out_dtype = SF_F32, .m = 2, .n = 2, .k = 4, .a = buf,
                      .lda = 4, .w = buf, .ldw = 4, .c = buf + 32, .ldc = 2};
  p.lda = 3;
  CHECK_FAILS(ops->gemm(&ctx, &p, &e_), SF_ERR_ARG, "gemm");
  p.lda = 4;
  p.ldc = 1;
  CHECK_FAILS(ops->gemm(&ctx, &p, &e_), SF_ERR_ARG, "gemm");
  p.ldc = 2;
  p.m = -1;
  CHECK_FAILS(ops->gemm(&ctx, &p, &e_), SF_ERR_ARG, "gemm");
  p.m = 2;
  p.out_dtype = SF_BF16;
  CHECK_FAILS(ops->gemm(&ctx, &p, &e_), SF_ERR_UNSUPPORTED, "gemm");
}

/* ---------------------------------------------------------------- rotary */
/* x is the q slice of a packed qkv [tokens, heads, 3, head_dim] (GPT-NeoX):
 * k and v slices must come out unchanged, q rotated per head. */
static void run_rotary(int64_t n_tokens, int32_t heads, int32_t head_dim, int32_t rot_dim) {
  char what[96];
  snprintf(what, sizeof what, "rotary tokens=%lld heads=%d head_dim=%d rot=%d (qkv)",
           (long long)n_tokens, heads, head_dim, rot_dim);
  const int64_t hs = 3 * (int64_t)head_dim, ts = heads * hs + 2;
  float *qkv = fmalloc(n_tokens * ts), *orig = fmalloc(n_tokens * ts);
  double *ref = dmalloc(n_tokens * heads * head_dim);
  int32_t *pos = malloc((size_t)n_tokens * sizeof *pos);
  REQUIRE(pos);
  fill_normal(qkv, n_tokens * ts, 1, 0);
  for (int64_t t = 0; t < n_tokens; t++)
    pos[t] = t == 0 ? 0 : t == 1 ? 1 : t == 2 ? 1048575 : (int32_t)sf_rng_below(&rng, 1u << 20);
  memcpy(orig, qkv, (size_t)(n_tokens * ts) * sizeof(float));
  for (int64_t t = 0; t < n_tokens; t++)
    for (int32_t h = 0; h < heads; h++)
      ref_rotary(qkv + t * ts + h * hs, head_dim, rot_dim, 10000.0, pos[t],
                 ref + (t * heads + h) * head_dim);
  sf_rotary_params p = {.dtype = SF_F32, .n_tokens = n_tokens, .n_heads = heads,
                        .head_dim = head_dim, .rot_dim = rot_dim, .base = 10000.0f, .x = qkv,
                        .x_token_stride = ts, .x_head_stride = hs, .positions = pos};
  sf_error err = {0};
  CHECK_MSG(ops->rotary(&ctx, &p, &err) == SF_OK, "%s: %s", what, err.msg);
  /* Gather q heads densely for the comparison. */
  float *qd = fmalloc(n_tokens * heads * head_dim);
  int64_t other_changed = 0, pass_changed = 0;
  for (int64_t t = 0; t < n_tokens; t++) {
    for (int32_t h = 0; h < heads; h++) {
      const int64_t o = t * ts + h * hs;
      memcpy(qd + (t * heads + h) * head_dim, qkv + o, (size_t)head_dim * sizeof(float));
      for (int64_t i = head_dim; i < hs; i++) other_changed += qkv[o + i] != orig[o + i];
      for (int64_t i = rot_dim; i < head_dim; i++) pass_changed += qkv[o + i] != orig[o + i];
    }
    for (int64_t i = heads * hs; i < ts; i++) other_changed += qkv[t * ts + i] != orig[t * ts + i];
  }
  CHECK_CMP(what, compare_rows(qd, head_dim, ref, n_tokens * heads, head_dim), TOL_ROTARY);
  CHECK_EQ_I64(other_changed, 0);
  CHECK_EQ_I64(pass_changed, 0);
  free(qkv); free(orig); free(ref); free(pos); free(qd);
}

static void test_rotary(void) {
  printf("rotary\n");
  run_rotary(9, 5, 64, 16);    /* Pythia: 25% of head_dim 64 */
  run_rotary(7, 3, 128, 32);
  run_rotary(6, 2, 24, 24);    /* full rotation, small head */
  run_rotary(5, 4, 37, 10);    /* odd head_dim */

  float x[64] = {0};
  int32_t pos[2] = {0, 1};
  sf_rotary_params p = {.dtype = SF_F32, .n_tokens = 2, .n_heads = 1, .head_dim = 16,
                        .rot_dim = 15, .base = 10000.0f, .x = x, .x_token_stride = 16,
                        .x_head_stride = 16, .positions = pos};
  CHECK_FAILS(ops->rotary(&ctx, &p, &e_), SF_ERR_ARG, "rotary");  /* odd rot_dim */
  p.rot_dim = 18;
  CHECK_FAILS(ops->rotary(&ctx, &p, &e_), SF_ERR_ARG, "rotary");  /* rot_dim > head_dim */
  p.rot_dim = 8;
  p.base = 0.0f;
  CHECK_FAILS(ops->rotary(&ctx, &p, &e_), SF_ERR_ARG, "rotary");
  p.base = 10000.0f;
  pos[1] = -3;
  CHECK_FAILS(ops->rotary(&ctx, &p, &e_), SF_ERR_ARG, "rotary");
  pos[1] = 1;
  p.dtype = SF_BF16;
  CHECK_FAILS(ops->rotary(&ctx, &p, &e_), SF_ERR_UNSUPPORTED, "rotary");
}

/* The paired form: q (x) and k (x2) of one qkv buffer rotated in one call,
 * against per-head double references and bit for bit against two separate
 * calls. gqa: the layout [q heads | k heads | v heads] with n_heads2 k heads
 * (n_heads2 may differ from n_heads); else GPT-NeoX [heads, 3, head_dim]. */
static void run_rotary_pair(int64_t n_tokens, int32_t heads, int32_t heads2, int32_t head_dim,
                            int32_t rot_dim, int gqa) {
  char what[112];
  snprintf(what, sizeof what, "rotary pair tokens=%lld heads=%d+%d head_dim=%d rot=%d (%s)",
           (long long)n_tokens, heads, heads2, head_dim, rot_dim, gqa ? "gqa" : "qkv");
  const int64_t hd = head_dim;
  const int64_t q_hs = gqa ? hd : 3 * hd, k_hs = q_hs, k_off = gqa ? heads * hd : hd;
  const int64_t ts = (gqa ? (heads + 2 * (int64_t)heads2) * hd : heads * 3 * hd) + 2;
  const int64_t n = n_tokens * ts;
  float *qkv = fmalloc(n), *orig = fmalloc(n), *sep = fmalloc(n);
  double *ref = dmalloc(n);
  int32_t *pos = malloc((size_t)n_tokens * sizeof *pos);
  REQUIRE(pos);
  fill_normal(qkv, n, 1, 0);
  for (int64_t t = 0; t < n_tokens; t++)
    pos[t] = t == 0 ? 1048575 : (int32_t)sf_rng_below(&rng, 1u << 20);
  memcpy(orig, qkv, (size_t)n * sizeof(float));
  memcpy(sep, qkv, (size_t)n * sizeof(float));
  /* ref: every element as it must come out (rotated heads, the rest as is). */
  for (int64_t i = 0; i < n; i++) ref[i] = qkv[i];
  for (int64_t t = 0; t < n_tokens; t++) {
    for (int32_t h = 0; h < heads; h++) {
      const int64_t o = t * ts + h * q_hs;
      ref_rotary(qkv + o, head_dim, rot_dim, 10000.0, pos[t], ref + o);
    }
    for (int32_t h = 0; h < heads2; h++) {
      const int64_t o = t * ts + k_off + h * k_hs;
      ref_rotary(qkv + o, head_dim, rot_dim, 10000.0, pos[t], ref + o);
    }
  }
  sf_rotary_params p = {.dtype = SF_F32, .n_tokens = n_tokens, .n_heads = heads,
                        .head_dim = head_dim, .rot_dim = rot_dim, .base = 10000.0f, .x = qkv,
                        .x_token_stride = ts, .x_head_stride = q_hs, .positions = pos,
                        .x2 = qkv + k_off, .n_heads2 = heads2, .x2_head_stride = k_hs};
  sf_error err = {0};
  CHECK_MSG(ops->rotary(&ctx, &p, &err) == SF_OK, "%s: %s", what, err.msg);
  CHECK_CMP(what, compare_rows(qkv, n, ref, 1, n), TOL_ROTARY);
  /* The elements outside the rotated channels exactly as they were. */
  int64_t untouched_changed = 0;
  for (int64_t i = 0; i < n; i++)
    untouched_changed += ref[i] == (double)orig[i] && qkv[i] != orig[i];
  CHECK_EQ_I64(untouched_changed, 0);

  sf_rotary_params q = {.dtype = SF_F32, .n_tokens = n_tokens, .n_heads = heads,
                        .head_dim = head_dim, .rot_dim = rot_dim, .base = 10000.0f, .x = sep,
                        .x_token_stride = ts, .x_head_stride = q_hs, .positions = pos};
  CHECK_MSG(ops->rotary(&ctx, &q, &err) == SF_OK, "%s: %s", what, err.msg);
  q.x = sep + k_off;
  q.n_heads = heads2;
  q.x_head_stride = k_hs;
  CHECK_MSG(ops->rotary(&ctx, &q, &err) == SF_OK, "%s: %s", what, err.msg);
  CHECK_MSG(memcmp(qkv, sep, (size_t)n * sizeof(float)) == 0,
            "%s: differs from two separate calls", what);
  free(qkv); free(orig); free(sep); free(ref); free(pos);
}

static void test_rotary_pair(void) {
  printf("rotary pair (x2)\n");
  run_rotary_pair(9, 5, 5, 64, 16, 0);    /* Pythia layout */
  run_rotary_pair(1, 16, 16, 128, 32, 0); /* Pythia-1.4b decode */
  run_rotary_pair(7, 8, 2, 128, 32, 1);   /* GQA: 2 k heads */
  run_rotary_pair(3, 3, 1, 37, 10, 1);    /* odd head_dim */
  run_rotary_pair(4, 0, 2, 24, 24, 1);    /* k heads only */

  float x[64];
  for (int i = 0; i < 64; i++) x[i] = (float)i;
  int32_t pos[2] = {0, 5};
  sf_rotary_params p = {.dtype = SF_F32, .n_tokens = 2, .n_heads = 1, .head_dim = 16,
                        .rot_dim = 8, .base = 10000.0f, .x = x, .x_token_stride = 32,
                        .x_head_stride = 16, .positions = pos, .x2 = x + 16, .n_heads2 = -1,
                        .x2_head_stride = 16};
  CHECK_FAILS(ops->rotary(&ctx, &p, &e_), SF_ERR_ARG, "rotary");  /* n_heads2 < 0 */
  /* x2 NULL: n_heads2 is ignored, x2's heads untouched. */
  p.x2 = NULL;
  p.n_heads2 = 1;
  sf_error e0 = {0};
  CHECK_EQ_I64(ops->rotary(&ctx, &p, &e0), SF_OK);
  int64_t k_changed = 0;
  for (int t = 0; t < 2; t++)
    for (int i = 16; i < 32; i++) k_changed += x[t * 32 + i] != (float)(t * 32 + i);
  CHECK_EQ_I64(k_changed, 0);
  CHECK(x[32] != 32.0f);  /* token 1's q rotated (position 5) */
}

/* ---------------------------------------------------------------- activations */
static void run_act(sf_act_kind kind, const char *what, int in_place) {
  const int64_t rows = 7, d = 37, xs = 40, os = in_place ? xs : 43;
  float *x = fmalloc(rows * xs), *out = in_place ? x : fmalloc(rows * os);
  double *ref = dmalloc(rows * d);
  for (int64_t i = 0; i < rows * xs; i++) x[i] = -30.0f + 60.0f * sf_rng_uniform(&rng);
  x[0] = 20.0f;  /* threshold edge: softplus is log1p(exp(20)) here, x only above */
  x[1] = 20.5f;
  x[2] = 0.0f;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < d; i++) {
      double v = x[r * xs + i];
      ref[r * d + i] = kind == SF_ACT_GELU ? ref_gelu(v) : kind == SF_ACT_SILU ? ref_silu(v)
                                                                               : ref_softplus(v);
    }
  for (int64_t r = 0; r < rows; r++) fill_const(x + r * xs + d, xs - d, SENTINEL);
  if (!in_place) {
    fill_const(out, rows * os, SENTINEL);
    for (int64_t r = 0; r < rows; r++) fill_const(out + r * os, d, NAN);
  }
  sf_activation_params p = {.kind = kind, .dtype = SF_F32, .n_rows = rows, .d = d, .x = x,
                            .x_row_stride = xs, .out = out, .out_row_stride = os};
  sf_error err = {0};
  CHECK_MSG(ops->activation(&ctx, &p, &err) == SF_OK, "%s: %s", what, err.msg);
  CHECK_CMP(what, compare_rows(out, os, ref, rows, d), TOL_ACT);
  CHECK_EQ_I64(padding_changed(out, rows, d, os), 0);
  if (kind == SF_ACT_SOFTPLUS) {
    CHECK(out[1] == 20.5f);                              /* x > 20 passes through */
    CHECK(fabs(out[0] - log1p(exp(20.0))) < 1e-5);
  }
  free(x); free(ref);
  if (!in_place) free(out);
}

static void test_activation(void) {
  printf("activation\n");
  run_act(SF_ACT_GELU, "gelu (erf) strided", 0);
  run_act(SF_ACT_SILU, "silu strided", 0);
  run_act(SF_ACT_SOFTPLUS, "softplus strided", 0);
  run_act(SF_ACT_GELU, "gelu in place", 1);
  run_act(SF_ACT_SOFTPLUS, "softplus in place", 1);
  float x[4] = {0};
  sf_activation_params p = {.kind = (sf_act_kind)9, .dtype = SF_F32, .n_rows = 1, .d = 4,
                            .x = x, .x_row_stride = 4, .out = x, .out_row_stride = 4};
  CHECK_FAILS(ops->activation(&ctx, &p, &e_), SF_ERR_ARG, "activation");
  p.kind = SF_ACT_SILU;
  p.out_row_stride = 3;
  CHECK_FAILS(ops->activation(&ctx, &p, &e_), SF_ERR_ARG, "activation");
  p.out_row_stride = 4;
  p.dtype = SF_BF16;
  CHECK_FAILS(ops->activation(&ctx, &p, &e_), SF_ERR_UNSUPPORTED, "activation");
}

/* ---------------------------------------------------------------- sampling */
static int32_t plain_argmax(const float *l, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; i++)
    if (l[i] > l[best]) best = i;
  return best;
}

/* Is id among the k largest of l (ties: any id whose value is >= the k-th largest)? */
static int in_top_k(const float *l, int32_t n, int32_t k, int32_t id) {
  int32_t above = 0;
  for (int32_t i = 0; i < n; i++) above += l[i] > l[id];
  return above < k;
}

static sf_status sample(const float *l, int32_t batch, int32_t vocab, int64_t stride, int32_t k,
                        float temp, uint64_t seed, uint64_t step, int32_t *ids) {
  sf_sample_params p = {.batch = batch, .vocab = vocab, .logits = l, .logits_row_stride = stride,
                        .top_k = k, .temperature = temp, .seed = seed, .step = step,
                        .out_ids = ids};
  sf_error err = {0};
  sf_status s = ops->sample(&ctx, &p, &err);
  CHECK_MSG(s == SF_OK, "sample: %s", err.msg);
  return s;
}

static void test_sample(void) {
  printf("sample\n");
  const int32_t B = 4, V = 1000;
  const int64_t S = 1003;
  float *l = fmalloc(B * S);
  int32_t ids[4], ids2[4];
  fill_normal(l, B * S, 3, 0);
  /* Row 2: a tie at the max between ids 123 and 500 -> 123. */
  l[2 * S + 500] = l[2 * S + plain_argmax(l + 2 * S, V)] + 1.0f;
  l[2 * S + 123] = l[2 * S + 500];
  /* Row 3: the max in the stride padding must be ignored. */
  l[3 * S + V + 1] = 1e30f;
  /* Sampling seeds come from the test seed too, so every run draws afresh. */
  const uint64_t s1 = sf_rng_next(&rng), s2 = sf_rng_next(&rng), s3 = sf_rng_next(&rng);
  for (int v = 0; v < 3; v++) {
    const int32_t k = v == 0 ? 1 : v == 1 ? 50 : 0;
    const float temp = v == 1 ? 0.0f : 1.0f;
    for (int i = 0; i < B; i++) ids[i] = -7;
    sample(l, B, V, S, k, temp, s1, 0, ids);
    for (int b = 0; b < B; b++) CHECK_EQ_I64(ids[b], plain_argmax(l + b * S, V));
    CHECK_EQ_I64(ids[2], 123);
  }
  printf("  greedy (top_k 1, temperature 0, top_k 0) == argmax, ties -> lowest id\n");

  /* Top-k: every draw among the top k; replayable; rows and steps independent. */
  const int32_t K = 5;
  int out_of_top = 0, replay_diff = 0, steps_differ = 0, seed_differ = 0, rows_differ = 0;
  int32_t first[4];
  for (int b = 0; b < B; b++) memcpy(l + b * S, l, (size_t)V * sizeof(float)); /* equal rows */
  for (uint64_t step = 0; step < 200; step++) {
    sample(l, B, V, S, K, 0.7f, s1, step, ids);
    sample(l, B, V, S, K, 0.7f, s1, step, ids2);
    if (step == 0) memcpy(first, ids, sizeof first);
    for (int b = 0; b < B; b++) {
      out_of_top += !(ids[b] >= 0 && ids[b] < V && in_top_k(l + b * S, V, K, ids[b]));
      replay_diff += ids[b] != ids2[b];
      steps_differ += ids[b] != first[b];
      rows_differ += ids[b] != ids[0];
    }
    sample(l, B, V, S, K, 0.7f, s2, step, ids2);
    for (int b = 0; b < B; b++) seed_differ += ids[b] != ids2[b];
  }
  printf("  top-k 5: %d of 800 draws outside the top 5, %d replay mismatches; "
         "%d/%d/%d draws differ across steps/rows/seeds\n",
         out_of_top, replay_diff, steps_differ, rows_differ, seed_differ);
  CHECK_EQ_I64(out_of_top, 0);
  CHECK_EQ_I64(replay_diff, 0);
  CHECK(steps_differ > 0);
  CHECK(rows_differ > 0);
  CHECK(seed_differ > 0);

  /* Distribution: frequencies over many steps match softmax(l / T) on the top k. */
  {
    const int32_t V2 = 20, K2 = 4;
    const float T = 0.5f;
    const int N = 20000;
    float l2[20];
    for (int i = 0; i < V2; i++) l2[i] = -2.0f + 0.1f * (float)i;  /* top 4: ids 16..19 */
    l2[3] = 0.05f;  /* ... and id 3, displacing 16 */
    double top[4] = {l2[3], l2[17], l2[18], l2[19]}, prob[4];
    const int32_t top_id[4] = {3, 17, 18, 19};
    ref_softmax_t(top, K2, T, prob);
    int count[20] = {0};
    int32_t id;
    for (int s = 0; s < N; s++) {
      sample(l2, 1, V2, V2, K2, T, s3, (uint64_t)s, &id);
      if (id >= 0 && id < V2) count[id]++;
    }
    /* Each frequency within 5 binomial standard deviations of its probability. */
    double worst = 0;
    int outside = N;
    for (int j = 0; j < 4; j++) {
      double f = (double)count[top_id[j]] / N, sigma = sqrt(prob[j] * (1 - prob[j]) / N);
      outside -= count[top_id[j]];
      if (fabs(f - prob[j]) / sigma > worst) worst = fabs(f - prob[j]) / sigma;
    }
    printf("  top-k 4 at T=0.5, %d draws: max |freq - p| = %.2f sigma (tol 5), %d outside\n", N,
           worst, outside);
    CHECK(worst < 5.0);
    CHECK_EQ_I64(outside, 0);
  }

  /* top_k above vocab is clamped to vocab. */
  {
    float l3[3] = {0.1f, 0.2f, 0.3f};
    int seen[3] = {0};
    for (uint64_t s = 0; s < 300; s++) {
      sample(l3, 1, 3, 3, 10, 1.0f, s2, s, ids);
      if (ids[0] >= 0 && ids[0] < 3) seen[ids[0]]++;
    }
    CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
    CHECK_EQ_I64(seen[0] + seen[1] + seen[2], 300);
  }

  sf_sample_params p = {.batch = 1, .vocab = 0, .logits = l, .logits_row_stride = S, .top_k = 5,
                        .temperature = 1.0f, .out_ids = ids};
  CHECK_FAILS(ops->sample(&ctx, &p, &e_), SF_ERR_ARG, "sample");
  p.vocab = V;
  p.logits_row_stride = V - 1;
  CHECK_FAILS(ops->sample(&ctx, &p, &e_), SF_ERR_ARG, "sample");
  p.logits_row_stride = S;
  p.temperature = NAN;
  CHECK_FAILS(ops->sample(&ctx, &p, &e_), SF_ERR_ARG, "sample");
  free(l);
}

int main(void) {
  uint64_t seed = sf_test_seed();
  sf_rng_seed(&rng, seed);
  sf_error err = {0};
  REQUIRE(sf_cpu_ctx_init(&ctx, 0, &err) == SF_OK);
  test_embedding();
  test_norm();
  test_norm_pair();
  test_gemm();
  test_rotary();
  test_rotary_pair();
  test_activation();
  test_sample();
  sf_cpu_ctx_destroy(&ctx);
  return sf_test_finish("test_ops_basic");
}
