/* GPU op tests: every op of the cuda backend against the cpu backend.
 *
 * For each case, random inputs (seed printed; SF_TEST_SEED replays) are
 * rounded on the host to the case's dtype (bf16, f16 or f32); the cpu backend
 * computes on those rounded values in f32 and the cuda backend on the 16-bit
 * values. Both outputs start poisoned (NaN; 0xFF bytes on the device), so an
 * element the cpu op leaves untouched (padding, tokens past len[b]) must stay
 * NaN on the device too, and an element it writes must be written. The
 * comparison is ||out - ref|| / ||ref|| over the written elements, plus a
 * count of elements outside |out - ref| <= etol (|ref| + rms(ref)); NaN never
 * passes. Tolerances (rel / per element): bf16 1e-2 / 4e-2, f16 2e-3 / 8e-3,
 * f32 1e-4 / 1e-3; fp32 states and log-sum-exps 1e-4 / 1e-3; copies exact.
 * Attention outputs get u(dt) max|v| more per element (p_rounding).
 *
 * Usage: test_gpu_ops [--small] [--cpu-selfcheck]
 *   --small          only the small cases (for compute-sanitizer); also
 *                    SF_GPU_TEST_SMALL=1.
 *   --cpu-selfcheck  runs the harness with the cpu backend in the device's
 *                    place, every case in f32: checks the test itself on a
 *                    machine without a GPU. It is NOT a GPU test.
 * Without a CUDA device it prints "SKIPPED: ..." and exits 77. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/convert.h"
#include "ops/op_table.h"
#include "ops/op_table_cuda.h"
#include "scanflash/rng.h"
#include "test.h"

static sf_rng rng;
static sf_op_ctx gctx, cctx;
static const sf_ops *G = &sf_ops_cuda;
static const sf_ops *C = &sf_ops_cpu;
static int selfcheck = 0, small_only = 0;
static int n_cases = 0, n_failed = 0;
static int case_err = 0;

#define TOL_STATE 1e-4
#define ETOL_STATE 1e-3

/* ------------------------------------------------------------ host helpers */

static float *fvec(int64_t n) {
  float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
  REQUIRE(p);
  return p;
}
static void fill_normal(float *p, int64_t n, float scale, float offset) {
  for (int64_t i = 0; i < n; i++) p[i] = offset + scale * sf_rng_normal(&rng);
}
static void fill_uniform(float *p, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * sf_rng_uniform(&rng);
}
static void fill_nan(float *p, int64_t n) {
  for (int64_t i = 0; i < n; i++) p[i] = NAN;
}
static sf_dtype eff(sf_dtype dt) { return selfcheck ? SF_F32 : dt; }
/* p = f32(dt(p)): the values the 16-bit device op will see. */
static void round_as(float *p, int64_t n, sf_dtype dt) {
  if (dt == SF_BF16)
    for (int64_t i = 0; i < n; i++) p[i] = sf_bf16_to_f32(sf_f32_to_bf16(p[i]));
  else if (dt == SF_F16)
    for (int64_t i = 0; i < n; i++) p[i] = sf_f16_to_f32(sf_f32_to_f16(p[i]));
}
static int32_t max_i32(const int32_t *a, int n) {
  int32_t m = 0;
  for (int i = 0; i < n; i++) m = a[i] > m ? a[i] : m;
  return m;
}

/* ---------------------------------------------------------- device helpers */

enum { ARENA_MAX = 1024 };
static void *arena[ARENA_MAX];
static int arena_n = 0;

static void begin_case(void) { case_err = 0; }

static void gpu_ok(sf_status rc, const sf_error *e, const char *what) {
  if (rc != SF_OK) {
    printf("    %s failed: %s: %s\n", what, sf_status_name(rc), e->msg);
    case_err = 1;
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
/* Long cases print how long the call took: one call and a sync, a rough
 * indication for the optimised kernels to come, not a benchmark. */
static void print_time(const char *op, double t0) {
  sf_error e = {0};
  gpu_ok(G->sync(&gctx, &e), &e, "sync");
  printf("    %s: %.1f ms (one call + sync; not a benchmark)\n", op, 1e3 * (now_s() - t0));
}

static void *dalloc(size_t bytes) {
  void *p = NULL;
  sf_error e = {0};
  sf_status rc = G->alloc(&gctx, bytes, &p, &e);
  if (rc != SF_OK) {
    fprintf(stderr, "device alloc of %zu bytes failed: %s\n", bytes, e.msg);
    exit(1);
  }
  REQUIRE(arena_n < ARENA_MAX);
  arena[arena_n++] = p;
  return p;
}
static void arena_free(void) {
  sf_error e = {0};
  G->sync(&gctx, &e);
  for (int i = 0; i < arena_n; i++) G->free(&gctx, arena[i]);
  arena_n = 0;
}
static void dput(void *d, const void *h, size_t bytes) {
  sf_error e = {0};
  gpu_ok(G->upload(&gctx, d, h, bytes, &e), &e, "upload");
}
static void *dup_raw(const void *h, size_t bytes) {
  void *d = dalloc(bytes);
  dput(d, h, bytes);
  return d;
}
/* n elements of h, converted to dt, in new device memory. */
static void *dup_as(const float *h, int64_t n, sf_dtype dt) {
  const size_t bytes = (size_t)n * sf_dtype_size(dt);
  void *tmp = malloc(bytes ? bytes : 1);
  REQUIRE(tmp);
  sf_convert(tmp, dt, h, SF_F32, n);
  void *d = dup_raw(tmp, bytes);
  free(tmp);
  return d;
}
/* n elements of dt filled with 0xFF bytes (NaN in every dtype). */
static void *dpoison(int64_t n, sf_dtype dt) {
  const size_t bytes = (size_t)n * sf_dtype_size(dt);
  void *tmp = malloc(bytes ? bytes : 1);
  REQUIRE(tmp);
  memset(tmp, 0xFF, bytes);
  void *d = dup_raw(tmp, bytes);
  free(tmp);
  return d;
}
/* Waits for the device, then copies n elements of dt back as f32. */
static void fetch_as(float *h, const void *d, int64_t n, sf_dtype dt) {
  const size_t bytes = (size_t)n * sf_dtype_size(dt);
  void *tmp = malloc(bytes ? bytes : 1);
  REQUIRE(tmp);
  sf_error e = {0};
  sf_status rc = G->download(&gctx, tmp, d, bytes, &e);
  gpu_ok(rc, &e, "download");
  if (rc == SF_OK) sf_convert(h, SF_F32, tmp, dt, n);
  else fill_nan(h, n);
  free(tmp);
}

/* ------------------------------------------------------------- comparison */

static double tol_of(sf_dtype dt) { return dt == SF_BF16 ? 1e-2 : (dt == SF_F16 ? 2e-3 : 1e-4); }
static double etol_of(sf_dtype dt) { return dt == SF_BF16 ? 4e-2 : (dt == SF_F16 ? 8e-3 : 1e-3); }

typedef struct res {
  double rel;
  int64_t wrong, n, nans, touched;
  int64_t worst;           /* index of the element furthest outside its bound; -1 = none */
  double worst_got, worst_ref, worst_excess;
  double rms;              /* of the reference */
} res;

/* Where ref is NaN the op must leave the element untouched (still NaN).
 * An element passes within etol (|ref| + rms(ref)) + atol. */
static res compare_abs(const float *got, const float *ref, int64_t n, double etol, double atol) {
  res r = {0, 0, 0, 0, 0, -1, 0, 0, 0, 0};
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(ref[i])) continue;
    den += (double)ref[i] * ref[i];
    r.n++;
  }
  const double rms = r.n ? sqrt(den / (double)r.n) : 0.0;
  for (int64_t i = 0; i < n; i++) {
    const double g = got[i], e = ref[i];
    if (isnan(e)) {
      if (!isnan(g)) r.touched++;
      continue;
    }
    if (isnan(g) || isinf(g)) {
      r.nans++;
      r.wrong++;
      continue;
    }
    num += (g - e) * (g - e);
    const double excess = fabs(g - e) / (etol * (fabs(e) + rms) + atol);
    if (excess > 1.0) {
      r.wrong++;
      if (excess > r.worst_excess) r.worst = i, r.worst_got = g, r.worst_ref = e, r.worst_excess = excess;
    }
  }
  r.rms = rms;
  r.rel = den > 0 ? sqrt(num / den) : sqrt(num);
  if (r.nans) r.rel = NAN;
  return r;
}

static res compare(const float *got, const float *ref, int64_t n, double etol) {
  return compare_abs(got, ref, n, etol, 0.0);
}

/* The tensor-core attention rounds P to dt before P . V, as FlashAttention
 * does: that alone moves an output by up to u(dt) max|v| (u the unit
 * roundoff) however small the output is, so the per-element bound of an
 * attention output has that much more. Seen without it (seed
 * 404692036098): one element of 1.1M, a near-zero output (-0.00067, rms of
 * the outputs 0.097) of a row led by few keys, came out -0.0053 in every
 * variant alike, 1.2x the relative bound. */
static double p_rounding(sf_dtype dt, const float *v, int64_t n) {
  const double u = dt == SF_BF16 ? 0x1p-8 : dt == SF_F16 ? 0x1p-11 : 0.0;
  double vmax = 0.0;
  for (int64_t i = 0; i < n; i++)
    if (!isnan(v[i]) && fabs(v[i]) > vmax) vmax = fabs(v[i]);
  return u * vmax;
}

static void row(const char *op, const char *shape, sf_dtype dt, res r, double tol) {
  const int pass = !case_err && r.nans == 0 && r.touched == 0 && r.wrong == 0 && !isnan(r.rel) &&
                   r.rel <= tol && r.n > 0;
  printf("%-24s %-58s %-4s %9.2e %9lld/%-9lld %s\n", op, shape, sf_dtype_name(dt), r.rel,
         (long long)r.wrong, (long long)r.n, pass ? "pass" : "FAIL");
  if (r.nans) printf("    %lld outputs NaN/inf or unwritten\n", (long long)r.nans);
  if (r.touched) printf("    %lld elements written that must stay untouched\n", (long long)r.touched);
  if (r.wrong > 0 && r.worst_excess > 0)
    printf("    worst at element %lld: got %.6g, reference %.6g (reference rms %.3g): %.1fx its bound\n",
           (long long)r.worst, r.worst_got, r.worst_ref, r.rms, r.worst_excess);
  if (r.n == 0) printf("    nothing compared\n");
  n_cases++;
  if (!pass) n_failed++;
}

static void row_check(const char *op, const char *what, int ok) {
  const int pass = ok && !case_err;
  printf("%-24s %-58s %-4s %9s %19s %s\n", op, what, "-", "-", "-", pass ? "pass" : "FAIL");
  n_cases++;
  if (!pass) n_failed++;
}

/* The cpu reference must run; when it cannot, the case fails (no reference). */
static int cpu_ok(sf_status rc, const sf_error *e, const char *op) {
  if (rc == SF_OK) return 1;
  printf("%-24s cpu reference failed: %s: %s\n", op, sf_status_name(rc), e->msg);
  n_cases++;
  n_failed++;
  return 0;
}

/* ---------------------------------------------------------------- batches */

typedef struct hseqs {
  int32_t batch;
  int64_t max_len, rows;
  int64_t start[16];
  int32_t len[16];
} hseqs;

static hseqs make_seqs(int batch, const int32_t *lens, int padded) {
  hseqs s;
  memset(&s, 0, sizeof s);
  REQUIRE(batch <= 16);
  s.batch = batch;
  s.max_len = max_i32(lens, batch);
  int64_t off = 0;
  for (int b = 0; b < batch; b++) {
    s.len[b] = lens[b];
    s.start[b] = padded ? (int64_t)b * s.max_len : off;
    off += lens[b];
  }
  s.rows = padded ? (int64_t)batch * s.max_len : off;
  return s;
}
static sf_seqs seqs_host(const hseqs *s) {
  sf_seqs q = {s->batch, s->max_len, s->start, s->len};
  return q;
}
static sf_seqs seqs_dev(const hseqs *s) {
  sf_seqs q = {s->batch, s->max_len, dup_raw(s->start, sizeof(int64_t) * (size_t)s->batch),
               dup_raw(s->len, sizeof(int32_t) * (size_t)s->batch)};
  return q;
}
static const char *layout(int padded) { return padded ? "padded" : "varlen"; }
static void lens_str(char *buf, size_t cap, int batch, const int32_t *lens) {
  size_t o = 0;
  o += (size_t)snprintf(buf + o, cap - o, "{");
  for (int b = 0; b < batch && o < cap; b++) o += (size_t)snprintf(buf + o, cap - o, b ? ",%d" : "%d", lens[b]);
  if (o < cap) snprintf(buf + o, cap - o, "}");
}

/* ================================================================== ops */

static void t_embedding(sf_dtype dt0, int64_t n, int64_t d, int32_t vocab) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int64_t ts = d + 5, os = d + 3;
  float *table = fvec(vocab * ts), *ref = fvec(n * os), *got = fvec(n * os);
  int32_t *ids = malloc((size_t)n * sizeof *ids);
  REQUIRE(ids);
  fill_normal(table, vocab * ts, 1, 0);
  round_as(table, vocab * ts, dt);
  for (int64_t t = 0; t < n; t++) ids[t] = (int32_t)sf_rng_below(&rng, (uint64_t)vocab);
  ids[0] = 0;
  ids[n - 1] = vocab - 1;
  fill_nan(ref, n * os);
  sf_error e = {0};
  sf_embedding_params p = {.dtype = SF_F32, .n_tokens = n, .d = d, .vocab = vocab, .ids = ids, .table = table,
                           .table_row_stride = ts, .out = ref, .out_row_stride = os};
  char shape[128];
  snprintf(shape, sizeof shape, "tokens %lld d %lld vocab %d", (long long)n, (long long)d, (int)vocab);
  if (cpu_ok(C->embedding(&cctx, &p, &e), &e, "embedding")) {
    sf_embedding_params g = p;
    g.dtype = dt;
    g.ids = dup_raw(ids, (size_t)n * sizeof *ids);
    g.table = dup_as(table, vocab * ts, dt);
    g.out = dpoison(n * os, dt);
    gpu_ok(G->embedding(&gctx, &g, &e), &e, "embedding");
    fetch_as(got, g.out, n * os, dt);
    row("embedding", shape, dt, compare(got, ref, n * os, 0.0), 0.0);

    /* A bad id is reported (by the call or, on the device, the next sync) and cleared. */
    begin_case();
    ids[n / 2] = vocab + 7;
    dput((void *)g.ids, ids, (size_t)n * sizeof *ids);
    sf_error e1 = {0}, e2 = {0}, e3 = {0};
    sf_status r1 = G->embedding(&gctx, &g, &e1);
    sf_status r2 = r1 == SF_OK ? G->sync(&gctx, &e2) : r1;
    const char *msg = r1 == SF_OK ? e2.msg : e1.msg;
    char want[96];
    snprintf(want, sizeof want, "has id %d outside [0, %d)", (int)(vocab + 7), (int)vocab);
    printf("    bad id: %s\n", msg);
    const int ok = r2 == SF_ERR_ARG && strstr(msg, "embedding") && strstr(msg, want);
    const int cleared = G->sync(&gctx, &e3) == SF_OK;
    row_check("embedding", "id outside [0, vocab) reported, then cleared", ok && cleared);
  }
  arena_free();
  free(table), free(ref), free(got), free(ids);
}

static void t_norm(sf_norm_kind kind, sf_dtype dt0, int64_t rows, int64_t d, int64_t group, int alias, int bias) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int64_t xs = d + 8, zs = d + 16, os = alias ? xs : d + 4;
  float *x = fvec(rows * xs), *z = fvec(rows * zs), *w = fvec(d), *b = fvec(d);
  float *ref = fvec(rows * os), *got = fvec(rows * os);
  fill_normal(x, rows * xs, 2.0f, 0.5f);
  fill_normal(z, rows * zs, 1.5f, 0.0f);
  fill_normal(w, d, 0.5f, 1.0f);
  fill_normal(b, d, 0.2f, 0.0f);
  round_as(x, rows * xs, dt), round_as(z, rows * zs, dt), round_as(w, d, dt), round_as(b, d, dt);
  float *xc = alias ? ref : x;
  if (alias) memcpy(ref, x, (size_t)(rows * xs) * sizeof(float));
  else fill_nan(ref, rows * os);
  sf_norm_params p = {.kind = kind, .dtype = SF_F32, .n_rows = rows, .d = d, .group_size = group, .eps = 1e-5f,
                      .x = xc, .x_row_stride = xs, .z = kind == SF_NORM_GATED_RMS ? z : NULL, .z_row_stride = zs,
                      .weight = w, .bias = bias ? b : NULL, .out = ref, .out_row_stride = os};
  sf_error e = {0};
  const char *kn = kind == SF_NORM_RMS ? "rms" : (kind == SF_NORM_LAYER ? "layer" : "gated_rms");
  char op[32], shape[128];
  snprintf(op, sizeof op, "norm (%s)", kn);
  snprintf(shape, sizeof shape, "rows %lld d %lld%s%s%s", (long long)rows, (long long)d,
           kind == SF_NORM_GATED_RMS ? " groups" : "", kind == SF_NORM_GATED_RMS ? (group ? " of d/4" : " 1") : "",
           alias ? " in place" : "");
  if (cpu_ok(C->norm(&cctx, &p, &e), &e, op)) {
    sf_norm_params g = p;
    g.dtype = dt;
    g.x = dup_as(x, rows * xs, dt);
    g.z = p.z ? dup_as(z, rows * zs, dt) : NULL;
    g.weight = dup_as(w, d, dt);
    g.bias = p.bias ? dup_as(b, d, dt) : NULL;
    g.out = alias ? (void *)g.x : dpoison(rows * os, dt);
    gpu_ok(G->norm(&gctx, &g, &e), &e, op);
    fetch_as(got, g.out, rows * os, dt);
    row(op, shape, dt, compare(got, ref, rows * os, etol_of(dt)), tol_of(dt));
  }
  arena_free();
  free(x), free(z), free(w), free(b), free(ref), free(got);
}

/* The paired norm (weight2, e.g. GPT-NeoX's two LayerNorms of one x): one
 * device call writes out and out2, against two separate cpu calls. x_f32:
 * x is an f32 residual stream (not rounded to dt); alias: out is x. */
static void t_norm_pair(sf_norm_kind kind, sf_dtype dt0, int64_t rows, int64_t d, int bias, int x_f32, int alias) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int64_t xs = d + 8, os = alias ? xs : d + 4, os2 = d + 12;
  float *x = fvec(rows * xs), *w = fvec(d), *b = fvec(d), *w2 = fvec(d), *b2 = fvec(d);
  float *ref = fvec(rows * os), *ref2 = fvec(rows * os2), *got = fvec(rows * os), *got2 = fvec(rows * os2);
  fill_normal(x, rows * xs, 2.0f, 0.5f);
  fill_normal(w, d, 0.5f, 1.0f), fill_normal(b, d, 0.2f, 0.0f);
  fill_normal(w2, d, 0.5f, -1.0f), fill_normal(b2, d, 0.2f, 0.3f);
  if (!x_f32) round_as(x, rows * xs, dt);
  round_as(w, d, dt), round_as(b, d, dt), round_as(w2, d, dt), round_as(b2, d, dt);
  if (alias) memcpy(ref, x, (size_t)(rows * xs) * sizeof(float));
  else fill_nan(ref, rows * os);
  fill_nan(ref2, rows * os2);
  const int layer = kind == SF_NORM_LAYER;
  sf_norm_params p = {.kind = kind, .dtype = SF_F32, .n_rows = rows, .d = d, .eps = 1e-5f, .x = x,
                      .x_row_stride = xs, .weight = w, .bias = bias && layer ? b : NULL, .out = ref,
                      .out_row_stride = os};
  sf_norm_params p2 = p;
  p2.weight = w2, p2.bias = bias && layer ? b2 : NULL, p2.out = ref2, p2.out_row_stride = os2;
  sf_error e = {0};
  char op[40], shape[128];
  snprintf(op, sizeof op, "norm pair (%s)", layer ? "layer" : "rms");
  snprintf(shape, sizeof shape, "rows %lld d %lld%s%s%s", (long long)rows, (long long)d,
           bias && layer ? " +bias" : "", x_f32 ? " x f32" : "", alias ? " out in place" : "");
  if (cpu_ok(C->norm(&cctx, &p2, &e), &e, op) && cpu_ok(C->norm(&cctx, &p, &e), &e, op)) {
    sf_norm_params g = p;
    g.dtype = dt;
    g.x_f32 = x_f32;
    g.x = dup_as(x, rows * xs, x_f32 ? SF_F32 : dt);
    g.weight = dup_as(w, d, dt);
    g.bias = p.bias ? dup_as(b, d, dt) : NULL;
    g.out = alias ? (void *)g.x : dpoison(rows * os, dt);
    g.weight2 = dup_as(w2, d, dt);
    g.bias2 = p2.bias ? dup_as(b2, d, dt) : NULL;
    g.out2 = dpoison(rows * os2, dt);
    g.out2_row_stride = os2;
    gpu_ok(G->norm(&gctx, &g, &e), &e, op);
    fetch_as(got, g.out, rows * os, dt);
    fetch_as(got2, g.out2, rows * os2, dt);
    char shape2[160];
    snprintf(shape2, sizeof shape2, "%s: out2", shape);
    row(op, shape, dt, compare(got, ref, rows * os, etol_of(dt)), tol_of(dt));
    row(op, shape2, dt, compare(got2, ref2, rows * os2, etol_of(dt)), tol_of(dt));
  }
  arena_free();
  free(x), free(w), free(b), free(w2), free(b2), free(ref), free(ref2), free(got), free(got2);
}

/* act >= 0: the activation epilogue (sf_gemm_params has_act): the cpu runs
 * the product and the activation as ops; the cuda weight stream applies it
 * in its kernel at one or two rows (k a multiple of 8), other shapes run the
 * activation op after the product. */
static void t_gemm_act(sf_dtype dt0, sf_dtype odt0, int64_t m, int64_t n, int64_t k, int bias, int acc, int act) {
  const sf_dtype dt = eff(dt0), odt = eff(odt0);
  begin_case();
  /* ldw a multiple of 8 when k is (the decode path's condition), odd otherwise */
  const int64_t lda = k + 8, ldw = k % 8 ? k + 3 : k + 8, ldc = n + 5;
  float *a = fvec(m * lda), *w = fvec(n * ldw), *bv = fvec(n), *c0 = fvec(m * ldc);
  float *ref = fvec(m * ldc), *got = fvec(m * ldc);
  fill_normal(a, m * lda, 1.0f, 0.0f);
  fill_normal(w, n * ldw, 0.1f, 0.0f);
  fill_normal(bv, n, 1.0f, 0.0f);
  fill_normal(c0, m * ldc, 1.0f, 0.0f);
  round_as(a, m * lda, dt), round_as(w, n * ldw, dt), round_as(bv, n, dt), round_as(c0, m * ldc, odt);
  if (acc) memcpy(ref, c0, (size_t)(m * ldc) * sizeof(float));
  else fill_nan(ref, m * ldc);
  sf_gemm_params p = {.dtype = SF_F32, .out_dtype = SF_F32, .m = m, .n = n, .k = k, .a = a, .lda = lda,
                      .w = w, .ldw = ldw, .bias = bias ? bv : NULL, .c = ref, .ldc = ldc, .accumulate = acc,
                      .has_act = act >= 0, .act = act >= 0 ? (sf_act_kind)act : SF_ACT_GELU};
  sf_error e = {0};
  char shape[128];
  static const char *const act_name[] = {" gelu", " silu", " softplus"};
  snprintf(shape, sizeof shape, "m %lld n %lld k %lld%s%s%s -> %s", (long long)m, (long long)n, (long long)k,
           bias ? " +bias" : "", acc ? " +=" : "", act >= 0 ? act_name[act] : "", sf_dtype_name(odt));
  if (cpu_ok(C->gemm(&cctx, &p, &e), &e, "gemm")) {
    sf_gemm_params g = p;
    g.dtype = dt;
    g.out_dtype = odt;
    g.a = dup_as(a, m * lda, dt);
    g.w = dup_as(w, n * ldw, dt);
    g.bias = bias ? dup_as(bv, n, dt) : NULL;
    g.c = acc ? dup_as(c0, m * ldc, odt) : dpoison(m * ldc, odt);
    gpu_ok(G->gemm(&gctx, &g, &e), &e, "gemm");
    fetch_as(got, g.c, m * ldc, odt);
    row("gemm", shape, dt, compare(got, ref, m * ldc, etol_of(odt)), tol_of(odt));
  }
  arena_free();
  free(a), free(w), free(bv), free(c0), free(ref), free(got);
}

static void t_gemm(sf_dtype dt0, sf_dtype odt0, int64_t m, int64_t n, int64_t k, int bias, int acc) {
  t_gemm_act(dt0, odt0, m, n, k, bias, acc, -1);
}

/* The conv update epilogue (sf_gemm_params conv_update): Mamba decode's
 * in_proj, whose columns [col0, col0 + dim) feed the causal conv. The cpu
 * runs the product and then the conv1d_update op; the cuda weight stream
 * (one or two rows) runs the conv in its kernel, other shapes the op after.
 * The conv reads the product rounded to dt on the GPU and unrounded on the
 * cpu, so the state is compared with the output's tolerance. */
static void t_gemm_conv(sf_dtype dt0, int64_t m, int64_t n, int64_t k, int64_t col0, int64_t dim, int W, int bias) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int64_t ldc = n, sbs = dim * (W - 1) + 8, os = dim + 8;
  float *a = fvec(m * k), *w = fvec(n * k), *cw = fvec(dim * W), *cb = fvec(dim), *st = fvec(m * sbs);
  float *rc = fvec(m * ldc), *ro = fvec(m * os), *rs = fvec(m * sbs);
  float *gc = fvec(m * ldc), *go = fvec(m * os), *gs = fvec(m * sbs);
  fill_normal(a, m * k, 1.0f, 0.0f), fill_normal(w, n * k, 0.05f, 0.0f);
  fill_normal(cw, dim * W, 0.5f, 0.0f), fill_normal(cb, dim, 0.5f, 0.0f), fill_normal(st, m * sbs, 1.0f, 0.0f);
  round_as(a, m * k, dt), round_as(w, n * k, dt), round_as(cw, dim * W, dt), round_as(cb, dim, dt);
  round_as(st, m * sbs, dt);
  fill_nan(rc, m * ldc), fill_nan(ro, m * os);
  memcpy(rs, st, (size_t)(m * sbs) * sizeof(float));
  sf_conv1d_update_params cv = {.dtype = SF_F32, .batch = (int32_t)m, .dim = dim, .width = W, .silu = 1,
                                .x = rc + col0, .x_batch_stride = ldc, .weight = cw, .bias = bias ? cb : NULL,
                                .conv_state = rs, .state_batch_stride = sbs, .out = ro, .out_batch_stride = os};
  sf_gemm_params p = {.dtype = SF_F32, .out_dtype = SF_F32, .m = m, .n = n, .k = k, .a = a, .lda = k, .w = w,
                      .ldw = k, .c = rc, .ldc = ldc, .conv_update = &cv};
  sf_error e = {0};
  char shape[128];
  snprintf(shape, sizeof shape, "m %lld n %lld k %lld conv [%lld, +%lld) w %d%s", (long long)m, (long long)n,
           (long long)k, (long long)col0, (long long)dim, W, bias ? " +bias" : "");
  if (cpu_ok(C->gemm(&cctx, &p, &e), &e, "gemm + conv update")) {
    sf_gemm_params g = p;
    sf_conv1d_update_params gv = cv;
    g.dtype = g.out_dtype = gv.dtype = dt;
    g.a = dup_as(a, m * k, dt);
    g.w = dup_as(w, n * k, dt);
    g.c = dpoison(m * ldc, dt);
    gv.x = (char *)g.c + col0 * (int64_t)sf_dtype_size(dt);
    gv.weight = dup_as(cw, dim * W, dt);
    gv.bias = bias ? dup_as(cb, dim, dt) : NULL;
    gv.conv_state = dup_as(st, m * sbs, dt);
    gv.out = dpoison(m * os, dt);
    g.conv_update = &gv;
    gpu_ok(G->gemm(&gctx, &g, &e), &e, "gemm + conv update");
    fetch_as(gc, g.c, m * ldc, dt);
    fetch_as(go, gv.out, m * os, dt);
    fetch_as(gs, gv.conv_state, m * sbs, dt);
    row("gemm", shape, dt, compare(gc, rc, m * ldc, etol_of(dt)), tol_of(dt));
    row("gemm", "  ...its conv output", dt, compare(go, ro, m * os, etol_of(dt)), tol_of(dt));
    row("gemm", "  ...its conv_state", dt, compare(gs, rs, m * sbs, etol_of(dt)), tol_of(dt));
  }
  arena_free();
  free(a), free(w), free(cw), free(cb), free(st), free(rc), free(ro), free(rs), free(gc), free(go), free(gs);
}

/* Random rotary inputs: x (n values, rounded to dt; ref a copy the cpu
 * rotates in place; got for the device's result) and n_tok positions up to
 * max_pos (the first one max_pos). */
static int32_t *rotary_inputs(sf_dtype dt, int64_t n, int64_t n_tok, int max_pos, float **x, float **ref,
                              float **got) {
  *x = fvec(n), *ref = fvec(n), *got = fvec(n);
  int32_t *pos = malloc((size_t)n_tok * sizeof *pos);
  REQUIRE(pos);
  fill_normal(*x, n, 1.0f, 0.0f);
  round_as(*x, n, dt);
  for (int64_t t = 0; t < n_tok; t++) pos[t] = (int32_t)sf_rng_below(&rng, (uint64_t)max_pos + 1);
  pos[0] = max_pos;
  memcpy(*ref, *x, (size_t)n * sizeof(float));
  return pos;
}

static void t_rotary(sf_dtype dt0, int64_t n_tok, int H, int hd, int rot, int max_pos) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int64_t hs = hd + 4, ts = (int64_t)H * hs + 7, n = n_tok * ts;
  float *x, *ref, *got;
  int32_t *pos = rotary_inputs(dt, n, n_tok, max_pos, &x, &ref, &got);
  sf_rotary_params p = {.dtype = SF_F32, .n_tokens = n_tok, .n_heads = H, .head_dim = hd, .rot_dim = rot,
                        .base = 10000.0f, .x = ref, .x_token_stride = ts, .x_head_stride = hs, .positions = pos};
  sf_error e = {0};
  char shape[128];
  snprintf(shape, sizeof shape, "tokens %lld heads %d hd %d rot %d pos <= %d", (long long)n_tok, H, hd, rot, max_pos);
  if (cpu_ok(C->rotary(&cctx, &p, &e), &e, "rotary")) {
    sf_rotary_params g = p;
    g.dtype = dt;
    g.x = dup_as(x, n, dt);
    g.positions = dup_raw(pos, (size_t)n_tok * sizeof *pos);
    gpu_ok(G->rotary(&gctx, &g, &e), &e, "rotary");
    fetch_as(got, g.x, n, dt);
    row("rotary", shape, dt, compare(got, ref, n, etol_of(dt)), tol_of(dt));
  }
  arena_free();
  free(x), free(ref), free(got), free(pos);
}

/* The paired rotary: q (x) and k (x2) of one qkv buffer in one device call,
 * against two separate cpu calls. gqa: [q heads | k heads | v heads] with
 * H2 k heads; else GPT-NeoX [heads, 3, head_dim] (H2 = H). */
static void t_rotary_pair(sf_dtype dt0, int64_t n_tok, int H, int H2, int hd, int rot, int max_pos, int gqa) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int64_t q_hs = gqa ? hd : 3 * (int64_t)hd, k_off = gqa ? (int64_t)H * hd : hd;
  const int64_t ts = (gqa ? ((int64_t)H + 2 * (int64_t)H2) * hd : (int64_t)H * 3 * hd) + 5, n = n_tok * ts;
  float *x, *ref, *got;
  int32_t *pos = rotary_inputs(dt, n, n_tok, max_pos, &x, &ref, &got);
  sf_rotary_params p = {.dtype = SF_F32, .n_tokens = n_tok, .n_heads = H, .head_dim = hd, .rot_dim = rot,
                        .base = 10000.0f, .x = ref, .x_token_stride = ts, .x_head_stride = q_hs, .positions = pos};
  sf_rotary_params pk = p;
  pk.n_heads = H2, pk.x = ref + k_off;
  sf_error e = {0};
  char shape[128];
  snprintf(shape, sizeof shape, "tokens %lld heads %d+%d hd %d rot %d pos <= %d %s", (long long)n_tok, H, H2, hd,
           rot, max_pos, gqa ? "gqa" : "qkv");
  if (cpu_ok(C->rotary(&cctx, &p, &e), &e, "rotary pair") && cpu_ok(C->rotary(&cctx, &pk, &e), &e, "rotary pair")) {
    sf_rotary_params g = p;
    g.dtype = dt;
    g.x = dup_as(x, n, dt);
    g.positions = dup_raw(pos, (size_t)n_tok * sizeof *pos);
    g.x2 = (char *)g.x + k_off * (int64_t)sf_dtype_size(dt);
    g.n_heads2 = H2;
    g.x2_head_stride = q_hs;
    gpu_ok(G->rotary(&gctx, &g, &e), &e, "rotary pair");
    fetch_as(got, g.x, n, dt);
    row("rotary pair", shape, dt, compare(got, ref, n, etol_of(dt)), tol_of(dt));
  }
  arena_free();
  free(x), free(ref), free(got), free(pos);
}

static void t_activation(sf_act_kind kind, sf_dtype dt0, int64_t rows, int64_t d, int alias) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int64_t xs = d + 3, os = alias ? xs : d + 6;
  float *x = fvec(rows * xs), *ref = fvec(rows * os), *got = fvec(rows * os);
  fill_normal(x, rows * xs, 4.0f, 0.0f);
  x[0] = 25.0f; /* softplus's linear branch */
  x[1] = -30.0f;
  round_as(x, rows * xs, dt);
  if (alias) memcpy(ref, x, (size_t)(rows * xs) * sizeof(float));
  else fill_nan(ref, rows * os);
  sf_activation_params p = {.kind = kind, .dtype = SF_F32, .n_rows = rows, .d = d, .x = alias ? ref : x,
                            .x_row_stride = xs, .out = ref, .out_row_stride = os};
  const char *kn = kind == SF_ACT_GELU ? "gelu" : (kind == SF_ACT_SILU ? "silu" : "softplus");
  char op[32], shape[128];
  snprintf(op, sizeof op, "activation (%s)", kn);
  snprintf(shape, sizeof shape, "rows %lld d %lld%s", (long long)rows, (long long)d, alias ? " in place" : "");
  sf_error e = {0};
  if (cpu_ok(C->activation(&cctx, &p, &e), &e, op)) {
    sf_activation_params g = p;
    g.dtype = dt;
    g.x = dup_as(x, rows * xs, dt);
    g.out = alias ? (void *)g.x : dpoison(rows * os, dt);
    gpu_ok(G->activation(&gctx, &g, &e), &e, op);
    fetch_as(got, g.out, rows * os, dt);
    row(op, shape, dt, compare(got, ref, rows * os, etol_of(dt)), tol_of(dt));
  }
  arena_free();
  free(x), free(ref), free(got);
}

static void t_sample(int32_t batch, int32_t vocab, int32_t top_k, float temp, uint64_t step) {
  begin_case();
  const int64_t ls = vocab + 3;
  float *l = fvec(batch * ls);
  fill_normal(l, batch * ls, 3.0f, 0.0f);
  /* Planted ties (lowest id wins) and NaNs (never chosen). */
  l[0 * ls + 5] = 50.0f, l[0 * ls + vocab - 1] = 50.0f, l[0 * ls + 100] = 50.0f;
  if (batch > 1) l[1 * ls + 7] = NAN, l[1 * ls + 8] = 40.0f, l[1 * ls + 9] = 40.0f;
  if (batch > 2) for (int32_t i = 0; i < vocab; i++) l[2 * ls + i] = -1.0f;
  int32_t *ref = malloc((size_t)batch * sizeof *ref), *got = malloc((size_t)batch * sizeof *got);
  REQUIRE(ref && got);
  sf_sample_params p = {.batch = batch, .vocab = vocab, .logits = l, .logits_row_stride = ls, .top_k = top_k,
                        .temperature = temp, .seed = 1234567, .step = step, .out_ids = ref};
  sf_error e = {0};
  char shape[128];
  snprintf(shape, sizeof shape, "batch %d vocab %d top_k %d T %.2f", batch, vocab, top_k, (double)temp);
  if (cpu_ok(C->sample(&cctx, &p, &e), &e, "sample")) {
    sf_sample_params g = p;
    g.logits = dup_raw(l, (size_t)(batch * ls) * sizeof(float));
    int32_t *d_ids = dpoison(batch, SF_F32); /* 0xFF bytes: id -1 */
    g.out_ids = d_ids;
    gpu_ok(G->sample(&gctx, &g, &e), &e, "sample");
    sf_error e2 = {0};
    gpu_ok(G->download(&gctx, got, d_ids, (size_t)batch * sizeof *got, &e2), &e2, "download");
    res r = {.n = batch, .worst = -1};
    for (int32_t b = 0; b < batch; b++) r.wrong += got[b] != ref[b];
    r.rel = r.wrong ? 1.0 : 0.0;
    row("sample", shape, SF_F32, r, 0.0);
    if (r.wrong)
      for (int32_t b = 0; b < batch; b++) printf("    row %d: got %d, cpu %d\n", b, got[b], ref[b]);
  }
  arena_free();
  free(l), free(ref), free(got);
}

static void t_kv_append(sf_dtype dt0, int batch, const int32_t *lens, int padded, int KVH, int hd,
                        const int32_t *past) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  hseqs s = make_seqs(batch, lens, padded);
  int32_t need = 0;
  for (int b = 0; b < batch; b++) need = (past ? past[b] : 0) + lens[b] > need ? (past ? past[b] : 0) + lens[b] : need;
  const int64_t cmax = need + 3, ks = (int64_t)KVH * hd + 4, hst = hd + 2, ps = KVH * hst, bs = cmax * ps + 8;
  const int64_t nk = s.rows * ks, nc = batch * bs;
  float *k = fvec(nk), *v = fvec(nk), *rk = fvec(nc), *rv = fvec(nc), *gk = fvec(nc), *gv = fvec(nc);
  fill_normal(k, nk, 1, 0), fill_normal(v, nk, 1, 0);
  round_as(k, nk, dt), round_as(v, nk, dt);
  fill_nan(rk, nc), fill_nan(rv, nc);
  sf_kv_append_params p = {.dtype = SF_F32, .n_kv_heads = KVH, .head_dim = hd, .seqs = seqs_host(&s),
                           .past_len = past, .k = k, .k_token_stride = ks, .k_head_stride = hd, .v = v,
                           .v_token_stride = ks, .v_head_stride = hd,
                           .cache = {rk, rv, bs, ps, hst, cmax}};
  sf_error e = {0};
  char shape[160], ls[64];
  lens_str(ls, sizeof ls, batch, lens);
  snprintf(shape, sizeof shape, "%s lens %s kv_heads %d hd %d%s", layout(padded), ls, KVH, hd,
           past ? " past>0" : "");
  if (cpu_ok(C->kv_append(&cctx, &p, &e), &e, "kv_append")) {
    sf_kv_append_params g = p;
    g.dtype = dt;
    g.seqs = seqs_dev(&s);
    g.past_len = past ? dup_raw(past, (size_t)batch * sizeof *past) : NULL;
    g.k = dup_as(k, nk, dt), g.v = dup_as(v, nk, dt);
    g.cache.k = dpoison(nc, dt), g.cache.v = dpoison(nc, dt);
    gpu_ok(G->kv_append(&gctx, &g, &e), &e, "kv_append");
    fetch_as(gk, g.cache.k, nc, dt), fetch_as(gv, g.cache.v, nc, dt);
    res r = compare(gk, rk, nc, 0.0), r2 = compare(gv, rv, nc, 0.0);
    r.wrong += r2.wrong, r.n += r2.n, r.nans += r2.nans, r.touched += r2.touched;
    r.rel = r.rel > r2.rel ? r.rel : r2.rel;
    row("kv_append", shape, dt, r, 0.0);

    /* Writing past max_len is reported and writes nothing of that sequence. */
    begin_case();
    g.cache.max_len = need - 1;
    sf_error e1 = {0}, e2 = {0}, e3 = {0};
    sf_status r1 = G->kv_append(&gctx, &g, &e1);
    sf_status rs = r1 == SF_OK ? G->sync(&gctx, &e2) : r1;
    const char *msg = r1 == SF_OK ? e2.msg : e1.msg;
    printf("    overflow: %s\n", msg);
    const int cleared = G->sync(&gctx, &e3) == SF_OK;
    row_check("kv_append", "past_len + len > max_len reported, then cleared",
              rs == SF_ERR_ARG && strstr(msg, "kv_append") != NULL && cleared);
  }
  arena_free();
  free(k), free(v), free(rk), free(rv), free(gk), free(gv);
}

/* Prefill attention (tiled or naive). The cache holds random k/v at every
 * position, also past past_len + len, which must not be read. */
/* The tuning entry of kernels/cuda/attention.cu: tensor-core variant
 * `variant` of the prefill kernel (SF_ERR_UNSUPPORTED when the params or the
 * variant do not fit); info gets block_q, block_k, warps, flags, is-default. */
sf_status sf_cuda_attention_variant(sf_op_ctx *ctx, const sf_attention_params *p, int variant, int info[5],
                                    sf_error *err);

/* When set, cache positions at and past past_len + len hold NaN (an
 * unwritten cache): a kernel that lets them into the result (0 * NaN in
 * P V) fails. Not for the naive op, whose score GEMM spans the cache. */
static int attn_poison_tail = 0;

static void t_attention(int naive, sf_dtype dt0, int batch, const int32_t *lens, int padded, int H, int KVH,
                        int hd, int causal, const int32_t *past) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  hseqs s = make_seqs(batch, lens, padded);
  int32_t need = 0;
  for (int b = 0; b < batch; b++) need = (past ? past[b] : 0) + lens[b] > need ? (past ? past[b] : 0) + lens[b] : need;
  const int64_t cmax = need + 5, ps = (int64_t)KVH * hd, bs = cmax * ps, nc = batch * bs;
  const int64_t qts = (int64_t)H * hd + 8, ots = (int64_t)H * hd + 4, lts = H + 1;
  const int64_t nq = s.rows * qts, no = s.rows * ots, nl = s.rows * lts;
  float *q = fvec(nq), *k = fvec(nc), *v = fvec(nc), *ro = fvec(no), *go = fvec(no), *rl = fvec(nl), *gl = fvec(nl);
  fill_normal(q, nq, 1, 0), fill_normal(k, nc, 1, 0), fill_normal(v, nc, 1, 0);
  round_as(q, nq, dt), round_as(k, nc, dt), round_as(v, nc, dt);
  if (attn_poison_tail && !naive)
    for (int b = 0; b < batch; b++)
      for (int64_t pos = (past ? past[b] : 0) + lens[b]; pos < cmax; pos++)
        fill_nan(k + b * bs + pos * ps, ps), fill_nan(v + b * bs + pos * ps, ps);
  fill_nan(ro, no), fill_nan(rl, nl);
  const char *op = naive ? "attention_naive" : "attention";
  sf_attention_params p = {.dtype = SF_F32, .n_heads = H, .n_kv_heads = KVH, .head_dim = hd,
                           .scale = 1.0f / sqrtf((float)hd), .causal = causal, .seqs = seqs_host(&s),
                           .past_len = past, .q = q, .q_token_stride = qts, .q_head_stride = hd,
                           .cache = {k, v, bs, ps, hd, cmax}, .out = ro, .out_token_stride = ots,
                           .out_head_stride = hd, .lse = rl, .lse_token_stride = lts};
  sf_error e = {0};
  char shape[160], ls[64];
  lens_str(ls, sizeof ls, batch, lens);
  snprintf(shape, sizeof shape, "%s lens %s heads %d/%d hd %d%s%s%s", layout(padded), ls, H, KVH, hd,
           causal ? " causal" : "", past ? " past>0" : "", attn_poison_tail && !naive ? " NaN tail" : "");
  sf_status rc = naive ? C->attention_naive(&cctx, &p, &e) : C->attention(&cctx, &p, &e);
  if (cpu_ok(rc, &e, op)) {
    sf_attention_params g = p;
    g.dtype = dt;
    g.seqs = seqs_dev(&s);
    g.past_len = past ? dup_raw(past, (size_t)batch * sizeof *past) : NULL;
    g.q = dup_as(q, nq, dt);
    g.cache.k = dup_as(k, nc, dt), g.cache.v = dup_as(v, nc, dt);
    g.out = dpoison(no, dt);
    g.lse = dpoison(nl, SF_F32);
    gpu_ok(naive ? G->attention_naive(&gctx, &g, &e) : G->attention(&gctx, &g, &e), &e, op);
    fetch_as(go, g.out, no, dt);
    fetch_as(gl, g.lse, nl, SF_F32);
    const double p_tol = p_rounding(dt, v, nc);
    row(op, shape, dt, compare_abs(go, ro, no, etol_of(dt), p_tol), tol_of(dt));
    row(op, "  ...its lse", SF_F32, compare(gl, rl, nl, ETOL_STATE), TOL_STATE);
    /* Every tensor-core variant of the cuda backend on the same inputs (the
     * op runs one of them; the others are kept for tuning). */
    for (int var = 0; !naive && !selfcheck && var < 32; var++) {
      begin_case();
      int info[5] = {0, 0, 0, 0, 0};
      sf_error ev = {0};
      g.out = dpoison(no, dt);
      g.lse = dpoison(nl, SF_F32);
      const sf_status rv = sf_cuda_attention_variant(&gctx, &g, var, info, &ev);
      if (rv == SF_ERR_UNSUPPORTED) break; /* head_dim/layout without tensor cores, or no more variants */
      gpu_ok(rv, &ev, "attention variant");
      fetch_as(go, g.out, no, dt);
      fetch_as(gl, g.lse, nl, SF_F32);
      char vop[32], vshape[96];
      snprintf(vop, sizeof vop, "attention v%d", var);
      snprintf(vshape, sizeof vshape, "  ...%s variant %dx%d, %d warps, flags %d%s",
               (info[3] & 4) ? "wgmma" : "mma.sync", info[0], info[1], info[2], info[3],
               info[4] ? " (the op's)" : "");
      row(vop, vshape, dt, compare_abs(go, ro, no, etol_of(dt), p_tol), tol_of(dt));
      row(vop, "  ...its lse", SF_F32, compare(gl, rl, nl, ETOL_STATE), TOL_STATE);
    }
  }
  arena_free();
  free(q), free(k), free(v), free(ro), free(go), free(rl), free(gl);
}

/* aligned: cache strides multiples of 8 elements (the 16-byte fast path of
 * the cuda kernel); otherwise odd strides (its fallback). */
static void t_decode_l(sf_dtype dt0, int batch, int H, int KVH, int hd, const int32_t *cache_len, int splits,
                       int aligned) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int64_t cmax = max_i32(cache_len, batch) + 9, ps = (int64_t)KVH * hd + (aligned ? 8 : 2);
  const int64_t bs = cmax * ps + (aligned ? 16 : 5);
  const int64_t nc = batch * bs, qbs = (int64_t)H * hd + 3, obs = (int64_t)H * hd + 5, lbs = H + 2;
  const int64_t nq = batch * qbs, no = batch * obs, nl = batch * lbs;
  float *q = fvec(nq), *k = fvec(nc), *v = fvec(nc), *ro = fvec(no), *go = fvec(no), *rl = fvec(nl), *gl = fvec(nl);
  fill_normal(q, nq, 1, 0), fill_normal(k, nc, 1, 0), fill_normal(v, nc, 1, 0);
  round_as(q, nq, dt), round_as(k, nc, dt), round_as(v, nc, dt);
  fill_nan(ro, no), fill_nan(rl, nl);
  sf_attention_decode_params p = {.dtype = SF_F32, .batch = batch, .n_heads = H, .n_kv_heads = KVH,
                                  .head_dim = hd, .scale = 1.0f / sqrtf((float)hd), .q = q,
                                  .q_batch_stride = qbs, .q_head_stride = hd, .cache = {k, v, bs, ps, hd, cmax},
                                  .cache_len = cache_len, .num_splits = splits, .out = ro,
                                  .out_batch_stride = obs, .out_head_stride = hd, .lse = rl,
                                  .lse_batch_stride = lbs};
  sf_error e = {0};
  char shape[160], ls[64];
  lens_str(ls, sizeof ls, batch, cache_len);
  snprintf(shape, sizeof shape, "cache_len %s heads %d/%d hd %d splits %d%s", ls, H, KVH, hd, splits,
           aligned ? " aligned" : "");
  if (cpu_ok(C->attention_decode(&cctx, &p, &e), &e, "attention_decode")) {
    sf_attention_decode_params g = p;
    g.dtype = dt;
    g.q = dup_as(q, nq, dt);
    g.cache.k = dup_as(k, nc, dt), g.cache.v = dup_as(v, nc, dt);
    g.cache_len = dup_raw(cache_len, (size_t)batch * sizeof *cache_len);
    g.out = dpoison(no, dt);
    g.lse = dpoison(nl, SF_F32);
    gpu_ok(G->attention_decode(&gctx, &g, &e), &e, "attention_decode");
    fetch_as(go, g.out, no, dt);
    fetch_as(gl, g.lse, nl, SF_F32);
    row("attention_decode", shape, dt, compare(go, ro, no, etol_of(dt)), tol_of(dt));
    row("attention_decode", "  ...its lse", SF_F32, compare(gl, rl, nl, ETOL_STATE), TOL_STATE);
  }
  arena_free();
  free(q), free(k), free(v), free(ro), free(go), free(rl), free(gl);
}

static void t_decode(sf_dtype dt0, int batch, int H, int KVH, int hd, const int32_t *cache_len, int splits) {
  t_decode_l(dt0, batch, H, KVH, hd, cache_len, splits, 0);
}

/* attention_merge: acc (+)= part by log-sum-exp, out and part dtypes
 * independent (an f32 accumulator over bf16 parts and its final fold into a
 * bf16 output, as the context-parallel code uses them). Random outputs and
 * lses in [-6, 6); about 1 in 8 (row, head) pairs has lse -inf on the
 * accumulator side (its output NaN garbage, which must be replaced by the
 * part), 1 in 8 on the part side (part NaN, accumulator untouched), a few
 * both (nothing happens: output NaN and lse -inf stay). Rows outside seqs
 * and stride gaps are NaN and must stay so. aligned: head_dim and strides
 * give 16-byte rows (the kernel's vector path); else odd strides. */
static void t_merge(sf_dtype out0, sf_dtype part0, int batch, const int32_t *lens, int padded, int H, int hd,
                    int aligned) {
  const sf_dtype odt = eff(out0), pdt = eff(part0);
  begin_case();
  hseqs s = make_seqs(batch, lens, padded);
  const int64_t ohs = aligned ? hd + 8 : hd + 1, ots = aligned ? H * ohs + 16 : H * ohs + 3;
  const int64_t phs = aligned ? hd : hd + 3, pts = aligned ? H * phs : H * phs + 1, lts = H + 1, plts = H + 3;
  const int64_t no = s.rows * ots, np = s.rows * pts, nl = s.rows * lts, npl = s.rows * plts;
  float *o = fvec(no), *pt = fvec(np), *l = fvec(nl), *pl = fvec(npl), *go = fvec(no), *gl = fvec(nl);
  fill_nan(o, no), fill_nan(pt, np), fill_nan(l, nl), fill_nan(pl, npl);
  int64_t n_acc = 0, n_part = 0, n_both = 0, item = 0;
  for (int b = 0; b < batch; b++)
    for (int64_t i = 0; i < lens[b]; i++)
      for (int h = 0; h < H; h++, item++) {
        const int64_t r = s.start[b] + i;
        /* the first three pairs force each case; then at random */
        const int u = item < 3 ? (int)item : (int)sf_rng_below(&rng, 8);
        const int acc_empty = u == 0 || u == 2, part_empty = u == 1 || u == 2;
        fill_normal(o + r * ots + h * ohs, hd, 1, 0);
        fill_normal(pt + r * pts + h * phs, hd, 1, 0);
        fill_uniform(l + r * lts + h, 1, -6, 6);
        fill_uniform(pl + r * plts + h, 1, -6, 6);
        if (acc_empty) l[r * lts + h] = -INFINITY, fill_nan(o + r * ots + h * ohs, hd);
        if (part_empty) pl[r * plts + h] = -INFINITY, fill_nan(pt + r * pts + h * phs, hd);
        n_acc += acc_empty && !part_empty, n_part += part_empty && !acc_empty, n_both += acc_empty && part_empty;
      }
  round_as(o, no, odt), round_as(pt, np, pdt);
  float *ro = fvec(no), *rl = fvec(nl);
  memcpy(ro, o, (size_t)no * sizeof(float));
  memcpy(rl, l, (size_t)nl * sizeof(float));
  sf_attention_merge_params p = {.dtype = SF_F32, .out_dtype = SF_F32, .n_heads = H, .head_dim = hd,
                                 .seqs = seqs_host(&s), .out = ro, .out_token_stride = ots, .out_head_stride = ohs,
                                 .lse = rl, .lse_token_stride = lts, .part = pt, .part_token_stride = pts,
                                 .part_head_stride = phs, .part_lse = pl, .part_lse_token_stride = plts};
  sf_error e = {0};
  char shape[160], ls[64];
  lens_str(ls, sizeof ls, batch, lens);
  snprintf(shape, sizeof shape, "%s lens %s heads %d hd %d part %s%s", layout(padded), ls, H, hd,
           sf_dtype_name(pdt), aligned ? " aligned" : "");
  printf("    lse -inf pairs: %lld accumulator, %lld part, %lld both, of %lld\n", (long long)n_acc, (long long)n_part,
         (long long)n_both, (long long)item);
  if (cpu_ok(C->attention_merge(&cctx, &p, &e), &e, "attention_merge")) {
    sf_attention_merge_params g = p;
    g.dtype = pdt, g.out_dtype = odt;
    g.seqs = seqs_dev(&s);
    g.out = dup_as(o, no, odt);
    g.lse = dup_raw(l, (size_t)nl * sizeof(float));
    g.part = dup_as(pt, np, pdt);
    g.part_lse = dup_raw(pl, (size_t)npl * sizeof(float));
    gpu_ok(G->attention_merge(&gctx, &g, &e), &e, "attention_merge");
    fetch_as(go, g.out, no, odt);
    fetch_as(gl, g.lse, nl, SF_F32);
    /* An lse of -inf compares as "must stay untouched" (NaN), so a -inf
     * where the reference has one passes and anything else does not. */
    for (int64_t i = 0; i < nl; i++) {
      if (rl[i] == -INFINITY) rl[i] = NAN;
      if (gl[i] == -INFINITY) gl[i] = NAN;
    }
    row("attention_merge", shape, odt, compare(go, ro, no, etol_of(odt)), tol_of(odt));
    row("attention_merge", "  ...its lse", SF_F32, compare(gl, rl, nl, ETOL_STATE), TOL_STATE);
  }
  arena_free();
  free(o), free(pt), free(l), free(pl), free(go), free(gl), free(ro), free(rl);
}

static void t_conv1d(sf_dtype dt0, int batch, const int32_t *lens, int padded, int64_t dim, int W, int silu,
                     int has_init, int bias, int alias) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  hseqs s = make_seqs(batch, lens, padded);
  const int64_t xs = dim + 3, os = alias ? xs : dim + 1, sbs = dim * (W - 1) + 2;
  const int64_t nx = s.rows * xs, no = s.rows * os, ns = batch * sbs;
  float *x = fvec(nx), *w = fvec(dim * W), *bv = fvec(dim), *st = fvec(ns);
  float *ro = fvec(no), *go = fvec(no), *rs = fvec(ns), *gs = fvec(ns);
  fill_normal(x, nx, 1, 0), fill_normal(w, dim * W, 0.5f, 0), fill_normal(bv, dim, 0.5f, 0), fill_normal(st, ns, 1, 0);
  round_as(x, nx, dt), round_as(w, dim * W, dt), round_as(bv, dim, dt), round_as(st, ns, dt);
  if (alias) memcpy(ro, x, (size_t)nx * sizeof(float));
  else fill_nan(ro, no);
  memcpy(rs, st, (size_t)ns * sizeof(float));
  sf_conv1d_params p = {.dtype = SF_F32, .dim = dim, .width = W, .silu = silu, .seqs = seqs_host(&s),
                        .x = alias ? ro : x, .x_token_stride = xs, .weight = w, .bias = bias ? bv : NULL,
                        .conv_state = rs, .state_batch_stride = sbs, .has_initial_state = has_init, .out = ro,
                        .out_token_stride = os};
  sf_error e = {0};
  char shape[160], ls[64];
  lens_str(ls, sizeof ls, batch, lens);
  snprintf(shape, sizeof shape, "%s lens %s dim %lld w %d%s%s%s", layout(padded), ls, (long long)dim, W,
           silu ? " silu" : "", has_init ? " init" : "", alias ? " in place" : "");
  if (cpu_ok(C->conv1d(&cctx, &p, &e), &e, "conv1d")) {
    sf_conv1d_params g = p;
    g.dtype = dt;
    g.seqs = seqs_dev(&s);
    g.x = dup_as(x, nx, dt);
    g.weight = dup_as(w, dim * W, dt);
    g.bias = bias ? dup_as(bv, dim, dt) : NULL;
    g.conv_state = dup_as(st, ns, dt);
    g.out = alias ? (void *)g.x : dpoison(no, dt);
    gpu_ok(G->conv1d(&gctx, &g, &e), &e, "conv1d");
    fetch_as(go, g.out, no, dt);
    fetch_as(gs, g.conv_state, ns, dt);
    row("conv1d", shape, dt, compare(go, ro, no, etol_of(dt)), tol_of(dt));
    row("conv1d", "  ...its conv_state (copies: exact)", dt, compare(gs, rs, ns, 0.0), 0.0);
  }
  arena_free();
  free(x), free(w), free(bv), free(st), free(ro), free(go), free(rs), free(gs);
}

static void t_conv1d_update(sf_dtype dt0, int batch, int64_t dim, int W, int alias) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int64_t xs = dim + 1, os = alias ? xs : dim + 2, sbs = dim * (W - 1) + 1;
  const int64_t nx = batch * xs, no = batch * os, ns = batch * sbs;
  float *x = fvec(nx), *w = fvec(dim * W), *bv = fvec(dim), *st = fvec(ns);
  float *ro = fvec(no), *go = fvec(no), *rs = fvec(ns), *gs = fvec(ns);
  fill_normal(x, nx, 1, 0), fill_normal(w, dim * W, 0.5f, 0), fill_normal(bv, dim, 0.5f, 0), fill_normal(st, ns, 1, 0);
  round_as(x, nx, dt), round_as(w, dim * W, dt), round_as(bv, dim, dt), round_as(st, ns, dt);
  if (alias) memcpy(ro, x, (size_t)nx * sizeof(float));
  else fill_nan(ro, no);
  memcpy(rs, st, (size_t)ns * sizeof(float));
  sf_conv1d_update_params p = {.dtype = SF_F32, .batch = batch, .dim = dim, .width = W, .silu = 1,
                               .x = alias ? ro : x, .x_batch_stride = xs, .weight = w, .bias = bv,
                               .conv_state = rs, .state_batch_stride = sbs, .out = ro, .out_batch_stride = os};
  sf_error e = {0};
  char shape[128];
  snprintf(shape, sizeof shape, "batch %d dim %lld w %d silu%s", batch, (long long)dim, W, alias ? " in place" : "");
  if (cpu_ok(C->conv1d_update(&cctx, &p, &e), &e, "conv1d_update")) {
    sf_conv1d_update_params g = p;
    g.dtype = dt;
    g.x = dup_as(x, nx, dt);
    g.weight = dup_as(w, dim * W, dt);
    g.bias = dup_as(bv, dim, dt);
    g.conv_state = dup_as(st, ns, dt);
    g.out = alias ? (void *)g.x : dpoison(no, dt);
    gpu_ok(G->conv1d_update(&gctx, &g, &e), &e, "conv1d_update");
    fetch_as(go, g.out, no, dt);
    fetch_as(gs, g.conv_state, ns, dt);
    row("conv1d_update", shape, dt, compare(go, ro, no, etol_of(dt)), tol_of(dt));
    row("conv1d_update", "  ...its conv_state (copies: exact)", dt, compare(gs, rs, ns, 0.0), 0.0);
  }
  arena_free();
  free(x), free(w), free(bv), free(st), free(ro), free(go), free(rs), free(gs);
}

/* Mamba-1 scan inputs laid out as the engine has them: B and C are column
 * slices of one x_dbl row [dt_rank | B | C]. */
typedef struct scan_case {
  int naive;
  sf_dtype dt;
  int batch;
  const int32_t *lens;
  int padded;
  int64_t dim;
  int ds, has_z, has_D, has_bias, softplus, has_init, chunk;
  int sample_only; /* long case: compare every 997th output row (all of the state) */
  int aligned;     /* 16-byte aligned rows (token strides a multiple of 8): the vectorized loads */
} scan_case;

static void t_scan(scan_case sc) {
  const sf_dtype dt = eff(sc.dt);
  begin_case();
  hseqs s = make_seqs(sc.batch, sc.lens, sc.padded);
  const int64_t dim = sc.dim, ds = sc.ds, R = sc.aligned ? 8 : 5, d8 = (dim + 7) / 8 * 8;
  const int64_t us = sc.aligned ? d8 + 8 : dim + 2, ds_ = sc.aligned ? d8 + 16 : dim + 1;
  const int64_t zs = sc.aligned ? d8 + 24 : dim + 3, os = sc.aligned ? d8 + 8 : dim + 2;
  const int64_t xds = sc.aligned ? R + 2 * ((ds + 7) / 8 * 8) + 8 : R + 2 * ds + 1;
  const int64_t sbs = dim * ds + 3;
  const int64_t nu = s.rows * us, nd = s.rows * ds_, nz = s.rows * zs, nx = s.rows * xds, no = s.rows * os;
  const int64_t ns = sc.batch * sbs;
  const int64_t cofs = sc.aligned ? (ds + 7) / 8 * 8 : ds; /* C after B in the x_dbl row */
  float *u = fvec(nu), *dl = fvec(nd), *z = fvec(nz), *xd = fvec(nx), *A = fvec(dim * ds), *D = fvec(dim);
  float *db = fvec(dim), *st = fvec(ns), *ro = fvec(no), *go = fvec(no), *rs = fvec(ns), *gs = fvec(ns);
  fill_normal(u, nu, 1, 0), fill_normal(z, nz, 1, 0);
  if (sc.softplus) fill_normal(dl, nd, 0.5f, -1.0f);
  else fill_uniform(dl, nd, 0.01f, 0.2f); /* dt itself: positive, or the state grows without bound */
  fill_normal(xd, nx, 1, 0);
  for (int64_t i = 0; i < dim * ds; i++) A[i] = -(1.0f + (float)(i % ds)) * (0.5f + sf_rng_uniform(&rng));
  fill_normal(D, dim, 0.5f, 1.0f), fill_uniform(db, dim, -4.0f, -1.0f), fill_normal(st, ns, 1, 0);
  round_as(u, nu, dt), round_as(dl, nd, dt), round_as(z, nz, dt), round_as(xd, nx, dt);
  fill_nan(ro, no);
  memcpy(rs, st, (size_t)ns * sizeof(float));
  sf_selective_scan_params p = {.dtype = SF_F32, .dim = dim, .d_state = sc.ds, .chunk_size = sc.chunk,
                                .seqs = seqs_host(&s), .u = u, .u_token_stride = us, .delta = dl,
                                .delta_token_stride = ds_, .delta_bias = sc.has_bias ? db : NULL,
                                .delta_softplus = sc.softplus, .A = A, .B = xd + R, .B_token_stride = xds,
                                .C = xd + R + cofs, .C_token_stride = xds, .D = sc.has_D ? D : NULL,
                                .z = sc.has_z ? z : NULL, .z_token_stride = zs, .state = rs,
                                .state_batch_stride = sbs, .has_initial_state = sc.has_init, .out = ro,
                                .out_token_stride = os};
  const char *op = sc.naive ? "selective_scan_naive" : "selective_scan";
  sf_error e = {0};
  char shape[160], ls[64];
  lens_str(ls, sizeof ls, sc.batch, sc.lens);
  snprintf(shape, sizeof shape, "%s lens %s dim %lld N %d%s%s%s%s", layout(sc.padded), ls, (long long)dim, sc.ds,
           sc.has_z ? " z" : "", sc.has_init ? " init" : "", sc.softplus ? " softplus" : "",
           sc.aligned ? " al16" : "");
  sf_status rc = sc.naive ? C->selective_scan_naive(&cctx, &p, &e) : C->selective_scan(&cctx, &p, &e);
  if (cpu_ok(rc, &e, op)) {
    sf_selective_scan_params g = p;
    g.dtype = dt;
    g.seqs = seqs_dev(&s);
    g.u = dup_as(u, nu, dt);
    g.delta = dup_as(dl, nd, dt);
    g.delta_bias = sc.has_bias ? dup_as(db, dim, SF_F32) : NULL;
    g.A = dup_as(A, dim * ds, SF_F32);
    void *dxd = dup_as(xd, nx, dt);
    const size_t esz = sf_dtype_size(dt);
    g.B = (char *)dxd + R * esz;
    g.C = (char *)dxd + (R + cofs) * esz;
    g.D = sc.has_D ? dup_as(D, dim, SF_F32) : NULL;
    g.z = sc.has_z ? dup_as(z, nz, dt) : NULL;
    g.state = dup_as(st, ns, SF_F32);
    g.out = dpoison(no, dt);
    const double t0 = now_s();
    gpu_ok(sc.naive ? G->selective_scan_naive(&gctx, &g, &e) : G->selective_scan(&gctx, &g, &e), &e, op);
    if (sc.sample_only) print_time(op, t0);
    fetch_as(go, g.out, no, dt);
    fetch_as(gs, g.state, ns, SF_F32);
    if (sc.sample_only) /* keep every 997th row: the others become "not compared" */
      for (int64_t r = 0; r < s.rows; r++)
        if (r % 997) fill_nan(ro + r * os, os), fill_nan(go + r * os, os);
    row(op, shape, dt, compare(go, ro, no, etol_of(dt)), tol_of(dt));
    row(op, "  ...its final state (fp32)", SF_F32, compare(gs, rs, ns, ETOL_STATE), TOL_STATE);
  }
  arena_free();
  free(u), free(dl), free(z), free(xd), free(A), free(D), free(db), free(st), free(ro), free(go), free(rs), free(gs);
}

/* R > 0: the fused dt_proj (dt_rank R). dt_low, B and C are then the
 * columns of one x_proj row [dt_low R][B ds][C ds] as in the engine, and the
 * reference is the unfused form: the cpu GEMM, its output rounded to the
 * case's dtype (as the device GEMM writes it), the cpu update. dt_proj's
 * inputs lie on a coarse grid (multiples of 1/64 and 1/16, small) so that
 * every fp32 partial sum is exact: the backends sum in different orders,
 * and a sum that differed in its last bit could round to a 16-bit dt one
 * ulp apart, far outside the state's tolerance. */
static void t_state_update_r(sf_dtype dt0, int batch, int64_t dim, int ds, int has_z, int alias, int aligned, int R) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int64_t xs = dim + 1, dts = dim + 2, bcs = R ? R + 2 * ds : 2 * ds + 3, zs = dim + 4, os = alias ? xs : dim + 5;
  const int64_t sbs = dim * ds + (aligned ? 4 : 2); /* aligned: 16-byte state rows, the vector kernel */
  const int64_t nx = batch * xs, nd = batch * dts, nb = batch * bcs, nz = batch * zs, no = batch * os, ns = batch * sbs;
  float *x = fvec(nx), *dtv = fvec(nd), *bc = fvec(nb), *z = fvec(nz), *A = fvec(dim * ds), *D = fvec(dim);
  float *db = fvec(dim), *st = fvec(ns), *ro = fvec(no), *go = fvec(no), *rs = fvec(ns), *gs = fvec(ns);
  float *W = fvec(dim * R);
  fill_normal(x, nx, 1, 0), fill_normal(dtv, nd, 0.5f, -1.0f), fill_normal(bc, nb, 1, 0), fill_normal(z, nz, 1, 0);
  for (int64_t i = 0; i < dim * ds; i++) A[i] = -(1.0f + (float)(i % ds));
  fill_normal(D, dim, 0.5f, 1.0f), fill_uniform(db, dim, -4.0f, -1.0f), fill_normal(st, ns, 1, 0);
  for (int64_t i = 0; i < dim * R; i++) W[i] = (float)((int)sf_rng_below(&rng, 17) - 8) / 64.0f;
  for (int64_t b = 0; b < batch; b++)
    for (int64_t k = 0; k < R; k++) bc[b * bcs + k] = (float)((int)sf_rng_below(&rng, 33) - 16) / 16.0f;
  round_as(x, nx, dt), round_as(dtv, nd, dt), round_as(bc, nb, dt), round_as(z, nz, dt);
  if (alias) memcpy(ro, x, (size_t)nx * sizeof(float));
  else fill_nan(ro, no);
  memcpy(rs, st, (size_t)ns * sizeof(float));
  sf_selective_state_update_params p = {
      .dtype = SF_F32, .batch = batch, .dim = dim, .d_state = ds, .x = alias ? ro : x, .x_batch_stride = xs,
      .dt = dtv, .dt_batch_stride = dts, .dt_bias = db, .dt_softplus = 1, .A = A, .B = bc + R, .B_batch_stride = bcs,
      .C = bc + R + ds, .C_batch_stride = bcs, .D = D, .z = has_z ? z : NULL, .z_batch_stride = zs, .state = rs,
      .state_batch_stride = sbs, .out = ro, .out_batch_stride = os};
  sf_gemm_params dp = {.dtype = SF_F32, .out_dtype = SF_F32, .m = batch, .n = dim, .k = R, .a = bc, .lda = bcs,
                       .w = W, .ldw = R, .c = dtv, .ldc = dts};
  sf_error e = {0};
  char shape[128];
  snprintf(shape, sizeof shape, "batch %d dim %lld N %d%s%s%s", batch, (long long)dim, ds, has_z ? " z" : "",
           alias ? " in place" : "", aligned ? " al16" : "");
  int ref_ok = 1;
  if (R) {
    snprintf(shape + strlen(shape), sizeof shape - strlen(shape), " dt_proj R %d", R);
    ref_ok = cpu_ok(C->gemm(&cctx, &dp, &e), &e, "selective_state_update (dt_proj)");
    round_as(dtv, nd, dt);
  }
  if (ref_ok && cpu_ok(C->selective_state_update(&cctx, &p, &e), &e, "selective_state_update")) {
    sf_selective_state_update_params g = p;
    g.dtype = dt;
    g.x = dup_as(x, nx, dt);
    g.dt = dup_as(dtv, nd, dt);
    g.dt_bias = dup_as(db, dim, SF_F32);
    g.A = dup_as(A, dim * ds, SF_F32);
    void *dbc = dup_as(bc, nb, dt);
    g.B = (char *)dbc + R * sf_dtype_size(dt);
    g.C = (char *)dbc + (R + ds) * sf_dtype_size(dt);
    if (R) g.dt = dbc, g.dt_batch_stride = bcs, g.dt_proj_w = dup_as(W, dim * R, dt), g.dt_rank = R;
    g.D = dup_as(D, dim, SF_F32);
    g.z = has_z ? dup_as(z, nz, dt) : NULL;
    g.state = dup_as(st, ns, SF_F32);
    g.out = alias ? (void *)g.x : dpoison(no, dt);
    gpu_ok(G->selective_state_update(&gctx, &g, &e), &e, "selective_state_update");
    fetch_as(go, g.out, no, dt);
    fetch_as(gs, g.state, ns, SF_F32);
    row("selective_state_update", shape, dt, compare(go, ro, no, etol_of(dt)), tol_of(dt));
    row("selective_state_update", "  ...its state (fp32)", SF_F32, compare(gs, rs, ns, ETOL_STATE), TOL_STATE);
  }
  arena_free();
  free(x), free(dtv), free(bc), free(z), free(A), free(D), free(db), free(st), free(ro), free(go), free(rs), free(gs);
  free(W);
}
static void t_state_update(sf_dtype dt0, int batch, int64_t dim, int ds, int has_z, int alias, int aligned) {
  t_state_update_r(dt0, batch, dim, ds, has_z, alias, aligned, 0);
}

/* The whole-step op mamba1_decode (cuda only: one persistent kernel) against
 * the layers run as cpu ops, unfused, each output rounded to the case's
 * dtype where the device writes it in that type (h, in_proj's output, xc,
 * x_proj's output, delta, y). What remains are summation orders, and where
 * one moves a 16-bit value by an ulp the next op carries it on, so x and
 * both states are held to the dtype's tolerance. */
typedef struct md_host {
  float *norm_w, *in_w, *conv_w, *conv_b, *xp_w, *dt_w, *out_w, *dt_b, *A, *D, *conv_st, *ssm_st;
} md_host;

static void md_layer_ref(const md_host *h, sf_dtype dt, int64_t d, int64_t di, int N, int R, int W, float *x,
                         int *ok) {
  const int64_t nx = R + 2 * N;
  float *hn = fvec(d), *xz = fvec(2 * di), *xc = fvec(di), *xd = fvec(nx), *delta = fvec(di), *y = fvec(di);
  sf_error e = {0};
  sf_norm_params n = {.kind = SF_NORM_RMS, .dtype = SF_F32, .n_rows = 1, .d = d, .eps = 1e-5f, .x = x,
                      .x_row_stride = d, .weight = h->norm_w, .out = hn, .out_row_stride = d};
  sf_gemm_params in = {.dtype = SF_F32, .out_dtype = SF_F32, .m = 1, .n = 2 * di, .k = d, .a = hn, .lda = d,
                       .w = h->in_w, .ldw = d, .c = xz, .ldc = 2 * di};
  sf_conv1d_update_params cv = {.dtype = SF_F32, .batch = 1, .dim = di, .width = W, .silu = 1, .x = xz,
                                .x_batch_stride = 2 * di, .weight = h->conv_w, .bias = h->conv_b,
                                .conv_state = h->conv_st, .state_batch_stride = di * (W - 1), .out = xc,
                                .out_batch_stride = di};
  sf_gemm_params xp = {.dtype = SF_F32, .out_dtype = SF_F32, .m = 1, .n = nx, .k = di, .a = xc, .lda = di,
                       .w = h->xp_w, .ldw = di, .c = xd, .ldc = nx};
  sf_gemm_params dp = {.dtype = SF_F32, .out_dtype = SF_F32, .m = 1, .n = di, .k = R, .a = xd, .lda = nx,
                       .w = h->dt_w, .ldw = R, .c = delta, .ldc = di};
  sf_selective_state_update_params u = {
      .dtype = SF_F32, .batch = 1, .dim = di, .d_state = N, .x = xc, .x_batch_stride = di, .dt = delta,
      .dt_batch_stride = di, .dt_bias = h->dt_b, .dt_softplus = 1, .A = h->A, .B = xd + R, .B_batch_stride = nx,
      .C = xd + R + N, .C_batch_stride = nx, .D = h->D, .z = xz + di, .z_batch_stride = 2 * di,
      .state = h->ssm_st, .state_batch_stride = di * N, .out = y, .out_batch_stride = di};
  sf_gemm_params op = {.dtype = SF_F32, .out_dtype = SF_F32, .m = 1, .n = d, .k = di, .a = y, .lda = di,
                       .w = h->out_w, .ldw = di, .c = x, .ldc = d, .accumulate = 1};
  *ok = *ok && cpu_ok(C->norm(&cctx, &n, &e), &e, "mamba1_decode (norm)");
  round_as(hn, d, dt);
  *ok = *ok && cpu_ok(C->gemm(&cctx, &in, &e), &e, "mamba1_decode (in_proj)");
  round_as(xz, 2 * di, dt);
  *ok = *ok && cpu_ok(C->conv1d_update(&cctx, &cv, &e), &e, "mamba1_decode (conv1d_update)");
  round_as(xc, di, dt);
  *ok = *ok && cpu_ok(C->gemm(&cctx, &xp, &e), &e, "mamba1_decode (x_proj)");
  round_as(xd, nx, dt);
  *ok = *ok && cpu_ok(C->gemm(&cctx, &dp, &e), &e, "mamba1_decode (dt_proj)");
  round_as(delta, di, dt);
  *ok = *ok && cpu_ok(C->selective_state_update(&cctx, &u, &e), &e, "mamba1_decode (state update)");
  round_as(y, di, dt);
  *ok = *ok && cpu_ok(C->gemm(&cctx, &op, &e), &e, "mamba1_decode (out_proj)");
  free(hn), free(xz), free(xc), free(xd), free(delta), free(y);
}

/* The weight stream's tuning (sf_mamba1_decode_params), 0 for the defaults. */
typedef struct md_tuning {
  int inflight, ahead, slot_bytes;
} md_tuning;

static void t_mamba1_decode(sf_dtype dt0, int layers, int64_t d, int64_t di, int N, int R, int W, int biases,
                            md_tuning tu) {
  const sf_dtype dt = eff(dt0);
  char shape[128], tuning[64] = "";
  if (tu.inflight || tu.ahead) snprintf(tuning, sizeof tuning, " inflight %d ahead %d", tu.inflight, tu.ahead);
  if (tu.slot_bytes) snprintf(tuning + strlen(tuning), sizeof tuning - strlen(tuning), " slot %d", tu.slot_bytes);
  snprintf(shape, sizeof shape, "%d layers d %lld di %lld N %d R %d W %d%s%s", layers, (long long)d, (long long)di,
           N, R, W, biases ? " +biases, D" : "", tuning);
  if (!G->mamba1_decode) {
    printf("%-24s %-58s skipped: the %s backend has no such op\n", "mamba1_decode", shape, G->name);
    return;
  }
  begin_case();
  const int64_t nx = R + 2 * N, ncs = di * (W - 1);
  md_host *h = calloc((size_t)layers, sizeof *h);
  sf_mamba1_layer_ptrs *L = calloc((size_t)layers, sizeof *L);
  REQUIRE(h && L);
  float *x = fvec(d), *rx = fvec(d), *gx = fvec(d);
  fill_normal(x, d, 1.0f, 0.0f);
  memcpy(rx, x, (size_t)d * sizeof(float));
  for (int l = 0; l < layers; l++) {
    md_host *m = &h[l];
    m->norm_w = fvec(d), m->in_w = fvec(2 * di * d), m->conv_w = fvec(di * W), m->conv_b = biases ? fvec(di) : NULL;
    m->xp_w = fvec(nx * di), m->dt_w = fvec(di * R), m->out_w = fvec(d * di), m->dt_b = biases ? fvec(di) : NULL;
    m->A = fvec(di * N), m->D = biases ? fvec(di) : NULL, m->conv_st = fvec(ncs), m->ssm_st = fvec(di * N);
    fill_normal(m->norm_w, d, 0.1f, 1.0f), round_as(m->norm_w, d, dt);
    fill_normal(m->in_w, 2 * di * d, 1.0f / sqrtf((float)d), 0.0f), round_as(m->in_w, 2 * di * d, dt);
    fill_normal(m->conv_w, di * W, 0.5f, 0.0f), round_as(m->conv_w, di * W, dt);
    if (biases) fill_normal(m->conv_b, di, 0.5f, 0.0f), round_as(m->conv_b, di, dt);
    fill_normal(m->xp_w, nx * di, 1.0f / sqrtf((float)di), 0.0f), round_as(m->xp_w, nx * di, dt);
    fill_normal(m->dt_w, di * R, 1.0f / sqrtf((float)R), 0.0f), round_as(m->dt_w, di * R, dt);
    fill_normal(m->out_w, d * di, 0.5f / sqrtf((float)di), 0.0f), round_as(m->out_w, d * di, dt);
    if (biases) fill_uniform(m->dt_b, di, -4.0f, -1.0f), fill_normal(m->D, di, 0.5f, 1.0f);
    for (int64_t i = 0; i < di * N; i++) m->A[i] = -(1.0f + (float)(i % N));
    fill_normal(m->conv_st, ncs, 1.0f, 0.0f), round_as(m->conv_st, ncs, dt);
    fill_normal(m->ssm_st, di * N, 1.0f, 0.0f);
    L[l] = (sf_mamba1_layer_ptrs){
        .norm_w = dup_as(m->norm_w, d, dt), .in_proj_w = dup_as(m->in_w, 2 * di * d, dt),
        .conv_w = dup_as(m->conv_w, di * W, dt), .conv_b = biases ? dup_as(m->conv_b, di, dt) : NULL,
        .x_proj_w = dup_as(m->xp_w, nx * di, dt), .dt_proj_w = dup_as(m->dt_w, di * R, dt),
        .out_proj_w = dup_as(m->out_w, d * di, dt), .dt_bias = biases ? dup_as(m->dt_b, di, SF_F32) : NULL,
        .A = dup_as(m->A, di * N, SF_F32), .D = biases ? dup_as(m->D, di, SF_F32) : NULL,
        .conv_state = W > 1 ? dup_as(m->conv_st, ncs, dt) : NULL, .ssm_state = dup_as(m->ssm_st, di * N, SF_F32)};
  }
  sf_mamba1_decode_params p = {.dtype = dt, .n_layers = layers, .d_model = d, .d_inner = di, .d_state = N,
                               .dt_rank = R, .d_conv = W, .eps = 1e-5f, .x = dup_as(x, d, SF_F32), .layers = L,
                               .inflight = tu.inflight, .l2_ahead = tu.ahead, .slot_bytes = tu.slot_bytes};
  sf_error e = {0};
  gpu_ok(G->mamba1_decode(&gctx, &p, &e), &e, "mamba1_decode");
  fetch_as(gx, p.x, d, SF_F32);
  int ok = 1;
  for (int l = 0; l < layers; l++) md_layer_ref(&h[l], dt, d, di, N, R, W, rx, &ok);
  if (ok) {
    row("mamba1_decode", shape, dt, compare(gx, rx, d, etol_of(dt)), tol_of(dt));
    float *gc = fvec(ncs), *gs = fvec(di * N);
    for (int l = 0; l < layers; l++) {
      char what[64];
      if (W > 1) {
        fetch_as(gc, L[l].conv_state, ncs, dt);
        snprintf(what, sizeof what, "  ...layer %d conv_state", l);
        row("mamba1_decode", what, dt, compare(gc, h[l].conv_st, ncs, etol_of(dt)), tol_of(dt));
      }
      fetch_as(gs, L[l].ssm_state, di * N, SF_F32);
      snprintf(what, sizeof what, "  ...layer %d ssm_state (fp32)", l);
      row("mamba1_decode", what, SF_F32, compare(gs, h[l].ssm_st, di * N, etol_of(dt)), tol_of(dt));
    }
    free(gc), free(gs);
  }
  arena_free();
  for (int l = 0; l < layers; l++) {
    md_host *m = &h[l];
    free(m->norm_w), free(m->in_w), free(m->conv_w), free(m->conv_b), free(m->xp_w), free(m->dt_w);
    free(m->out_w), free(m->dt_b), free(m->A), free(m->D), free(m->conv_st), free(m->ssm_st);
  }
  free(h), free(L), free(x), free(rx), free(gx);
}

/* Shapes the persistent kernel does not take are SF_ERR_UNSUPPORTED (the
 * engine then runs the ops), bad sizes SF_ERR_ARG, each with a message. */
static void t_mamba1_decode_refusals(void) {
  if (!G->mamba1_decode) return;
  begin_case();
  sf_mamba1_layer_ptrs L = {0};
  float x = 0;
  sf_mamba1_decode_params p = {.dtype = SF_BF16, .n_layers = -1, .d_model = 64, .d_inner = 128, .d_state = 16,
                               .dt_rank = 8, .d_conv = 4, .x = &x, .layers = &L};
  sf_error e = {0};
  sf_status rc = G->mamba1_decode(&gctx, &p, &e);
  printf("    n_layers -1: %s\n", e.msg);
  row_check("mamba1_decode", "n_layers -1 is SF_ERR_ARG", rc == SF_ERR_ARG && strstr(e.msg, "layers -1"));
  p.n_layers = 1;
  rc = G->mamba1_decode(&gctx, &p, &e);
  printf("    a layer without weights: %s\n", e.msg);
  row_check("mamba1_decode", "missing weights are SF_ERR_ARG", rc == SF_ERR_ARG && strstr(e.msg, "layer 0"));
  p.slot_bytes = 100;
  rc = G->mamba1_decode(&gctx, &p, &e);
  printf("    slot_bytes 100: %s\n", e.msg);
  row_check("mamba1_decode", "a ring slot of 100 bytes is SF_ERR_ARG", rc == SF_ERR_ARG && strstr(e.msg, "slot_bytes 100"));
  p.slot_bytes = 0, p.stream_only = 1, p.dtype = SF_F16;
  rc = G->mamba1_decode(&gctx, &p, &e);
  printf("    stream_only in f16: %s\n", e.msg);
  row_check("mamba1_decode", "stream_only in f16 is SF_ERR_UNSUPPORTED",
            rc == SF_ERR_UNSUPPORTED && strstr(e.msg, "stream_only"));
}

/* Mamba-2 inputs as the engine has them: B and C are column slices of one
 * xBC row, dt a slice of another. ref_naive: the cpu reference is ssd_naive
 * (the long case: the chunked cpu form is slow there). */
typedef struct ssd_case {
  int naive;
  sf_dtype dt;
  int batch;
  const int32_t *lens;
  int padded;
  int H, P, Gr, N, has_z, has_D, has_bias, softplus;
  float dt_min, dt_max;
  int has_init, chunk, ref_naive, sample_only;
  int aligned; /* 16-byte aligned rows (x/B/C/z/out token strides a multiple of 8) */
} ssd_case;

static void t_ssd(ssd_case sc) {
  const sf_dtype dt = eff(sc.dt);
  begin_case();
  hseqs s = make_seqs(sc.batch, sc.lens, sc.padded);
  const int64_t W = (int64_t)sc.H * sc.P, GN = (int64_t)sc.Gr * sc.N;
  const int64_t xs = sc.aligned ? W + 8 : W + 3, dts = sc.H + 1, bcs = sc.aligned ? 2 * GN + 8 : 2 * GN + 5;
  const int64_t zs = sc.aligned ? W + 16 : W + 2, os = sc.aligned ? W + 24 : W + 1;
  const int64_t sbs = W * sc.N + 4;
  /* The chunked tensor-core path (ssd_chunked.cu) takes these cases; its final
   * state accumulates fp32-scaled products (split in two 16-bit parts), so it
   * is held to the fp32 state tolerance like the other paths. */
  const int chunked = !sc.naive && (dt == SF_BF16 || dt == SF_F16) && sc.P == 64 && (sc.N == 64 || sc.N == 128) &&
                      (sc.chunk == 0 || sc.chunk == 256) && sc.aligned && GN % 8 == 0;
  const int64_t nx = s.rows * xs, nd = s.rows * dts, nb = s.rows * bcs, nz = s.rows * zs, no = s.rows * os;
  const int64_t ns = sc.batch * sbs;
  float *x = fvec(nx), *dtv = fvec(nd), *bc = fvec(nb), *z = fvec(nz), *A = fvec(sc.H), *D = fvec(sc.H);
  float *db = fvec(sc.H), *st = fvec(ns), *ro = fvec(no), *go = fvec(no), *rs = fvec(ns), *gs = fvec(ns);
  fill_normal(x, nx, 1, 0), fill_normal(dtv, nd, 0.5f, sc.softplus ? -1.0f : 0.05f), fill_normal(bc, nb, 1, 0);
  fill_normal(z, nz, 1, 0);
  fill_uniform(A, sc.H, -8.0f, -0.5f), fill_normal(D, sc.H, 0.5f, 1.0f), fill_uniform(db, sc.H, -4.0f, -1.0f);
  fill_normal(st, ns, 1, 0);
  round_as(x, nx, dt), round_as(dtv, nd, dt), round_as(bc, nb, dt), round_as(z, nz, dt);
  fill_nan(ro, no);
  memcpy(rs, st, (size_t)ns * sizeof(float));
  sf_ssd_params p = {.dtype = SF_F32, .n_heads = sc.H, .head_dim = sc.P, .n_groups = sc.Gr, .d_state = sc.N,
                     .chunk_size = sc.chunk, .seqs = seqs_host(&s), .x = x, .x_token_stride = xs, .dt = dtv,
                     .dt_token_stride = dts, .dt_bias = sc.has_bias ? db : NULL, .dt_softplus = sc.softplus,
                     .dt_min = sc.dt_min, .dt_max = sc.dt_max, .A = A, .B = bc, .B_token_stride = bcs,
                     .C = bc + GN, .C_token_stride = bcs, .D = sc.has_D ? D : NULL, .z = sc.has_z ? z : NULL,
                     .z_token_stride = zs, .state = rs, .state_batch_stride = sbs,
                     .has_initial_state = sc.has_init, .out = ro, .out_token_stride = os};
  const char *op = sc.naive ? "ssd_naive" : "ssd";
  sf_error e = {0};
  char shape[160], ls[64];
  lens_str(ls, sizeof ls, sc.batch, sc.lens);
  snprintf(shape, sizeof shape, "%s lens %s H %d P %d G %d N %d%s%s%s%s", layout(sc.padded), ls, sc.H, sc.P,
           sc.Gr, sc.N, sc.has_z ? " z" : "", sc.has_init ? " init" : "", isinf(sc.dt_max) ? "" : " clamp",
           chunked ? " [chunked]" : "");
  sf_status rc = (sc.naive || sc.ref_naive) ? C->ssd_naive(&cctx, &p, &e) : C->ssd(&cctx, &p, &e);
  if (cpu_ok(rc, &e, op)) {
    sf_ssd_params g = p;
    g.dtype = dt;
    g.seqs = seqs_dev(&s);
    g.x = dup_as(x, nx, dt);
    g.dt = dup_as(dtv, nd, dt);
    g.dt_bias = sc.has_bias ? dup_as(db, sc.H, SF_F32) : NULL;
    g.A = dup_as(A, sc.H, SF_F32);
    void *dbc = dup_as(bc, nb, dt);
    g.B = dbc;
    g.C = (char *)dbc + GN * sf_dtype_size(dt);
    g.D = sc.has_D ? dup_as(D, sc.H, SF_F32) : NULL;
    g.z = sc.has_z ? dup_as(z, nz, dt) : NULL;
    g.state = dup_as(st, ns, SF_F32);
    g.out = dpoison(no, dt);
    const double t0 = now_s();
    gpu_ok(sc.naive ? G->ssd_naive(&gctx, &g, &e) : G->ssd(&gctx, &g, &e), &e, op);
    if (sc.sample_only) print_time(op, t0);
    fetch_as(go, g.out, no, dt);
    fetch_as(gs, g.state, ns, SF_F32);
    if (sc.sample_only)
      for (int64_t r = 0; r < s.rows; r++)
        if (r % 997) fill_nan(ro + r * os, os), fill_nan(go + r * os, os);
    /* The chunked path rounds each chunk's decayed scores (C.B^T . exp(segsum) . dt,
     * terms of size ~|C||B|dt) to 16 bits before their product with x, as
     * mamba_ssm's kernels do; with d_state 128 a few outputs in a million
     * land up to ~1.2x the usual element bound (seen on the H100: 1.2x at
     * 1 of 256,000 and 2 of 1,049,088 elements, overall error 2.7e-3), so
     * its element bound is twice the usual; the norm bound stays. */
    const double etol = chunked ? 2 * etol_of(dt) : etol_of(dt);
    row(op, shape, dt, compare(go, ro, no, etol), tol_of(dt));
    row(op, "  ...its final state (fp32)", SF_F32, compare(gs, rs, ns, ETOL_STATE), TOL_STATE);
  }
  arena_free();
  free(x), free(dtv), free(bc), free(z), free(A), free(D), free(db), free(st), free(ro), free(go), free(rs), free(gs);
}

static void t_ssd_update(sf_dtype dt0, int batch, int H, int P, int Gr, int N, int has_z, int alias, int aligned) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int64_t W = (int64_t)H * P, GN = (int64_t)Gr * N;
  const int64_t xs = W + 1, dts = H + 2, bcs = 2 * GN + 3, zs = W + 4, os = alias ? xs : W + 5;
  const int64_t sbs = W * N + (aligned ? 4 : 2); /* aligned: 16-byte state rows, the vector kernel */
  const int64_t nx = batch * xs, nd = batch * dts, nb = batch * bcs, nz = batch * zs, no = batch * os, ns = batch * sbs;
  float *x = fvec(nx), *dtv = fvec(nd), *bc = fvec(nb), *z = fvec(nz), *A = fvec(H), *D = fvec(H);
  float *db = fvec(H), *st = fvec(ns), *ro = fvec(no), *go = fvec(no), *rs = fvec(ns), *gs = fvec(ns);
  fill_normal(x, nx, 1, 0), fill_normal(dtv, nd, 0.5f, -1.0f), fill_normal(bc, nb, 1, 0), fill_normal(z, nz, 1, 0);
  fill_uniform(A, H, -8.0f, -0.5f), fill_normal(D, H, 0.5f, 1.0f), fill_uniform(db, H, -4.0f, -1.0f);
  fill_normal(st, ns, 1, 0);
  round_as(x, nx, dt), round_as(dtv, nd, dt), round_as(bc, nb, dt), round_as(z, nz, dt);
  if (alias) memcpy(ro, x, (size_t)nx * sizeof(float));
  else fill_nan(ro, no);
  memcpy(rs, st, (size_t)ns * sizeof(float));
  sf_ssd_update_params p = {.dtype = SF_F32, .batch = batch, .n_heads = H, .head_dim = P, .n_groups = Gr,
                            .d_state = N, .x = alias ? ro : x, .x_batch_stride = xs, .dt = dtv,
                            .dt_batch_stride = dts, .dt_bias = db, .dt_softplus = 1, .dt_min = 0.0f,
                            .dt_max = INFINITY, .A = A, .B = bc, .B_batch_stride = bcs, .C = bc + GN,
                            .C_batch_stride = bcs, .D = D, .z = has_z ? z : NULL, .z_batch_stride = zs,
                            .state = rs, .state_batch_stride = sbs, .out = ro, .out_batch_stride = os};
  sf_error e = {0};
  char shape[128];
  snprintf(shape, sizeof shape, "batch %d H %d P %d G %d N %d%s%s%s", batch, H, P, Gr, N, has_z ? " z" : "",
           alias ? " in place" : "", aligned ? " al16" : "");
  if (cpu_ok(C->ssd_update(&cctx, &p, &e), &e, "ssd_update")) {
    sf_ssd_update_params g = p;
    g.dtype = dt;
    g.x = dup_as(x, nx, dt);
    g.dt = dup_as(dtv, nd, dt);
    g.dt_bias = dup_as(db, H, SF_F32);
    g.A = dup_as(A, H, SF_F32);
    void *dbc = dup_as(bc, nb, dt);
    g.B = dbc;
    g.C = (char *)dbc + GN * sf_dtype_size(dt);
    g.D = dup_as(D, H, SF_F32);
    g.z = has_z ? dup_as(z, nz, dt) : NULL;
    g.state = dup_as(st, ns, SF_F32);
    g.out = alias ? (void *)g.x : dpoison(no, dt);
    gpu_ok(G->ssd_update(&gctx, &g, &e), &e, "ssd_update");
    fetch_as(go, g.out, no, dt);
    fetch_as(gs, g.state, ns, SF_F32);
    row("ssd_update", shape, dt, compare(go, ro, no, etol_of(dt)), tol_of(dt));
    row("ssd_update", "  ...its state (fp32)", SF_F32, compare(gs, rs, ns, ETOL_STATE), TOL_STATE);
  }
  arena_free();
  free(x), free(dtv), free(bc), free(z), free(A), free(D), free(db), free(st), free(ro), free(go), free(rs), free(gs);
}

/* Long prefill attention: batch 1, 1 head, head_dim 64, causal. The device
 * computes every row; the cpu computes a sample of query rows, each as a
 * one-token sequence at its position (past_len = position) over the same
 * cache (batch_stride 0), which is exactly that row of the long prefill. */
static void t_attention_long(int naive, sf_dtype dt0, int32_t L) {
  const sf_dtype dt = eff(dt0);
  begin_case();
  const int hd = 64, NS = 16;
  const int64_t n = (int64_t)L * hd;
  float *q = fvec(n), *k = fvec(n), *v = fvec(n), *go = fvec(n);
  fill_normal(q, n, 1, 0), fill_normal(k, n, 1, 0), fill_normal(v, n, 1, 0);
  round_as(q, n, dt), round_as(k, n, dt), round_as(v, n, dt);
  const char *op = naive ? "attention_naive" : "attention";
  char shape[128];
  snprintf(shape, sizeof shape, "LONG L %d heads 1 hd 64 causal (%d rows vs cpu)", (int)L, NS);
  int32_t len32 = L;
  hseqs s = make_seqs(1, &len32, 1);
  sf_attention_params g = {.dtype = dt, .n_heads = 1, .n_kv_heads = 1, .head_dim = hd,
                           .scale = 1.0f / sqrtf((float)hd), .causal = 1, .seqs = seqs_dev(&s), .past_len = NULL,
                           .q = dup_as(q, n, dt), .q_token_stride = hd, .q_head_stride = hd,
                           .cache = {dup_as(k, n, dt), dup_as(v, n, dt), n, hd, hd, L},
                           .out = dpoison(n, dt), .out_token_stride = hd, .out_head_stride = hd,
                           .lse = NULL, .lse_token_stride = 1};
  sf_error e = {0};
  const double t0 = now_s();
  gpu_ok(naive ? G->attention_naive(&gctx, &g, &e) : G->attention(&gctx, &g, &e), &e, op);
  print_time(op, t0);
  fetch_as(go, g.out, n, dt);

  /* The sampled rows on the cpu. */
  int32_t rows[16] = {0, 1, 63, 64, 65, L - 1, L - 64, L / 2};
  for (int i = 8; i < NS; i++) rows[i] = (int32_t)sf_rng_below(&rng, (uint64_t)L);
  int64_t st1[16];
  int32_t ln1[16];
  float *qs = fvec(NS * hd), *ro = fvec(NS * hd), *gs = fvec(NS * hd);
  for (int i = 0; i < NS; i++) {
    st1[i] = i, ln1[i] = 1;
    memcpy(qs + i * hd, q + (int64_t)rows[i] * hd, hd * sizeof(float));
    memcpy(gs + i * hd, go + (int64_t)rows[i] * hd, hd * sizeof(float));
  }
  fill_nan(ro, NS * hd);
  sf_attention_params p = {.dtype = SF_F32, .n_heads = 1, .n_kv_heads = 1, .head_dim = hd,
                           .scale = 1.0f / sqrtf((float)hd), .causal = 1, .seqs = {NS, 1, st1, ln1},
                           .past_len = rows, .q = qs, .q_token_stride = hd, .q_head_stride = hd,
                           .cache = {k, v, 0, hd, hd, L}, .out = ro, .out_token_stride = hd,
                           .out_head_stride = hd, .lse = NULL, .lse_token_stride = 1};
  if (cpu_ok(C->attention(&cctx, &p, &e), &e, op)) row(op, shape, dt, compare(gs, ro, NS * hd, etol_of(dt)), tol_of(dt));
  /* Every row written, none NaN. */
  int64_t bad = 0;
  for (int64_t i = 0; i < n; i++) bad += !isfinite(go[i]);
  char what[96];
  snprintf(what, sizeof what, "  ...all %d rows written and finite (%lld bad)", (int)L, (long long)bad);
  row_check(op, what, bad == 0);
  arena_free();
  free(q), free(k), free(v), free(go), free(qs), free(ro), free(gs);
}

/* ================================================================== main */

static int parse_flag(int argc, char **argv, const char *f) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], f)) return 1;
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  selfcheck = parse_flag(argc, argv, "--cpu-selfcheck");
  const char *se = getenv("SF_GPU_TEST_SMALL");
  small_only = parse_flag(argc, argv, "--small") || (se && *se && strcmp(se, "0"));
  sf_error err = {0};
  if (selfcheck) {
    printf("harness self-check: the cpu backend stands in for the device, every case in f32 "
           "(NOT a GPU test)\n");
    G = &sf_ops_cpu;
    REQUIRE(sf_cpu_ctx_init(&gctx, 0, &err) == SF_OK);
  } else {
    int ndev = 0;
    cudaError_t ce = cudaGetDeviceCount(&ndev);
    if (ce != cudaSuccess) SF_TEST_SKIP("no CUDA device (cudaGetDeviceCount: %s)", cudaGetErrorString(ce));
    if (ndev == 0) SF_TEST_SKIP("no CUDA device (cudaGetDeviceCount returned 0)");
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
      printf("device 0: %s, sm_%d%d, %d SMs, %.1f GiB\n", prop.name, prop.major, prop.minor,
             prop.multiProcessorCount, (double)prop.totalGlobalMem / (1 << 30));
    if (sf_cuda_ctx_init(&gctx, 0, &err) != SF_OK) {
      fprintf(stderr, "sf_cuda_ctx_init: %s\n", err.msg);
      return 1;
    }
  }
  REQUIRE(sf_cpu_ctx_init(&cctx, 0, &err) == SF_OK);
  uint64_t seed = sf_test_seed();
  sf_rng_seed(&rng, seed);
  printf("%-24s %-58s %-4s %9s %19s %s\n", "op", "case", "type", "rel err", "#wrong/n", "result");

  /* memory: an impossible allocation is SF_ERR_NOMEM with a message. */
  {
    begin_case();
    void *ptr = NULL;
    sf_error e = {0};
    sf_status rc = G->alloc(&gctx, (size_t)1 << 52, &ptr, &e);
    printf("    4 PiB alloc: %s\n", e.msg);
    row_check("alloc", "4 PiB is SF_ERR_NOMEM", rc == SF_ERR_NOMEM && (selfcheck || strstr(e.msg, "cudaMalloc")));
  }

  t_embedding(SF_BF16, 37, 96, 1000);
  t_embedding(SF_F32, 5, 33, 17);

  t_norm(SF_NORM_RMS, SF_BF16, 33, 1000, 0, 0, 0);
  t_norm(SF_NORM_RMS, SF_F16, 4, 2560, 0, 1, 0);
  t_norm(SF_NORM_LAYER, SF_BF16, 17, 768, 0, 0, 1);
  t_norm(SF_NORM_LAYER, SF_F32, 3, 50, 0, 0, 0);
  t_norm(SF_NORM_GATED_RMS, SF_BF16, 9, 1024, 256, 0, 0);
  t_norm(SF_NORM_GATED_RMS, SF_F16, 5, 200, 0, 1, 0);
  /* both outputs from one call: Pythia-1.4b decode (d 2048, batch 1 and 3,
   * f32 residual), wide rows, and more rows than twice the SMs */
  t_norm_pair(SF_NORM_LAYER, SF_BF16, 1, 2048, 1, 1, 0);
  t_norm_pair(SF_NORM_LAYER, SF_BF16, 3, 2048, 1, 1, 0);
  t_norm_pair(SF_NORM_LAYER, SF_F16, 3, 2048, 1, 0, 1);
  t_norm_pair(SF_NORM_LAYER, SF_BF16, 17, 768, 0, 0, 0);
  t_norm_pair(SF_NORM_LAYER, SF_F16, 300, 1024, 1, 1, 0);
  t_norm_pair(SF_NORM_RMS, SF_BF16, 1, 2560, 0, 1, 0);
  t_norm_pair(SF_NORM_RMS, SF_F16, 5, 200, 0, 0, 1);

  t_gemm(SF_BF16, SF_BF16, 67, 130, 200, 1, 0);
  t_gemm(SF_BF16, SF_F32, 1, 1003, 256, 0, 0);
  t_gemm(SF_BF16, SF_BF16, 33, 64, 96, 0, 1);
  t_gemm(SF_BF16, SF_F32, 19, 77, 45, 1, 1);
  t_gemm(SF_F16, SF_F16, 64, 128, 128, 1, 1);
  t_gemm(SF_F32, SF_F32, 13, 29, 31, 1, 0);
  /* decode shapes: the weight-streaming path (k, lda, ldw multiples of 8),
   * and its fallbacks (odd k; more rows than it takes) */
  t_gemm(SF_BF16, SF_F32, 1, 2050, 2048, 1, 1);
  t_gemm(SF_BF16, SF_BF16, 3, 517, 4096, 1, 0);
  t_gemm(SF_F16, SF_F32, 8, 300, 1024, 0, 1);
  t_gemm(SF_BF16, SF_BF16, 5, 129, 264, 0, 0);
  t_gemm(SF_BF16, SF_F32, 2, 77, 45, 1, 1);
  t_gemm(SF_BF16, SF_BF16, 9, 130, 256, 1, 1);
  /* the weight stream's variants: columns split over 4 and 8 warps (narrow
   * products), 16 words a lane (4096-wide rows), rows shorter than a warp */
  t_gemm(SF_BF16, SF_BF16, 1, 160, 4096, 0, 0);
  t_gemm(SF_BF16, SF_F32, 2, 37, 8192, 1, 1);
  t_gemm(SF_BF16, SF_F32, 1, 2048, 4096, 0, 1);
  t_gemm(SF_F16, SF_F16, 2, 4096, 128, 1, 0);
  /* activation epilogue: in the weight stream, and the op after the product */
  t_gemm_act(SF_BF16, SF_BF16, 1, 1003, 2048, 1, 0, SF_ACT_GELU);
  t_gemm_act(SF_BF16, SF_BF16, 2, 517, 1024, 0, 0, SF_ACT_GELU);
  t_gemm_act(SF_F16, SF_F16, 1, 300, 4096, 1, 0, SF_ACT_SILU);
  /* in_proj with the conv update: Mamba-1 (x | z), Mamba-2 (z | xBC | dt), a cuBLASLt shape */
  t_gemm_conv(SF_BF16, 1, 8192, 2048, 0, 4096, 4, 1);
  t_gemm_conv(SF_BF16, 2, 8192 + 2 * 128 + 64, 2048, 4096, 4096 + 2 * 128, 4, 1);
  t_gemm_conv(SF_F16, 1, 1000, 512, 100, 500, 4, 0);
  t_gemm_conv(SF_BF16, 5, 640, 256, 0, 320, 4, 1);
  t_gemm_conv(SF_BF16, 1, 96, 64, 8, 40, 1, 1);
  t_gemm_act(SF_BF16, SF_BF16, 67, 130, 256, 1, 0, SF_ACT_GELU);
  t_gemm_act(SF_BF16, SF_BF16, 1, 77, 40, 1, 0, SF_ACT_SOFTPLUS);

  t_rotary(SF_BF16, 29, 4, 64, 64, 4000);
  t_rotary(SF_F16, 17, 3, 128, 32, 1000000);
  t_rotary(SF_F32, 5, 2, 80, 80, 100);
  /* q and k in one call: Pythia-1.4b decode and prefill, GQA (k heads != q heads) */
  t_rotary_pair(SF_BF16, 1, 16, 16, 128, 32, 4000, 0);
  t_rotary_pair(SF_BF16, 29, 16, 16, 128, 32, 1000000, 0);
  t_rotary_pair(SF_F16, 7, 8, 2, 128, 32, 1000000, 1);
  t_rotary_pair(SF_BF16, 3, 32, 8, 64, 64, 100, 1);
  t_rotary_pair(SF_F16, 1, 4, 1, 80, 20, 70000, 1);

  for (int kind = 0; kind < 3; kind++) {
    t_activation((sf_act_kind)kind, SF_BF16, 7, 300, 0);
    t_activation((sf_act_kind)kind, SF_F32, 3, 65, kind == 1);
  }
  t_activation(SF_ACT_SILU, SF_F16, 4, 129, 1);

  t_sample(4, 50277, 1, 1.0f, 0);
  t_sample(3, 1000, 5, 0.0f, 3);
  t_sample(5, 50277, 40, 0.8f, 7);
  t_sample(2, 100, 200, 1.3f, 11);

  {
    const int32_t l3[] = {70, 1, 129}, p3[] = {0, 37, 5}, l2[] = {33, 200}, p2[] = {10, 0};
    t_kv_append(SF_BF16, 3, l3, 1, 2, 64, p3);
    t_kv_append(SF_F16, 2, l2, 0, 1, 128, NULL);

    const int32_t l1[] = {100}, l65[] = {65};
    for (int naive = 0; naive < 2; naive++) {
      t_attention(naive, SF_BF16, 1, l1, 1, 4, 4, 64, 1, NULL);
      t_attention(naive, SF_BF16, 3, l3, 1, 8, 2, 128, 1, p3);
      t_attention(naive, SF_F16, 2, l2, 0, 2, 1, 64, 0, p2);
      t_attention(naive, SF_BF16, 2, l2, 0, 4, 2, 128, 1, p2);
      t_attention(naive, SF_BF16, 1, l65, 1, 2, 1, 80, 1, NULL);
    }
    /* tensor-core prefill paths (bf16/f16, head_dim 64/128): ragged varlen,
     * L not a multiple of the tiles, GQA, past_len > 0, non-causal */
    {
      const int32_t lr3[] = {1000, 333, 1}, lg2[] = {700, 1500}, pg2[] = {300, 0}, lp2[] = {513, 257},
                    pp2[] = {0, 1000}, l2k[] = {2048}, lc4[] = {129, 64, 191, 1}, pc4[] = {7, 64, 0, 500};
      t_attention(0, SF_BF16, 3, lr3, 0, 4, 4, 128, 0, NULL);
      t_attention(0, SF_BF16, 3, lr3, 0, 4, 2, 128, 1, NULL);
      t_attention(0, SF_BF16, 2, lg2, 0, 8, 2, 64, 1, pg2);
      t_attention(0, SF_F16, 2, lp2, 1, 2, 2, 128, 1, pp2);
      t_attention(0, SF_F16, 2, lg2, 1, 4, 1, 64, 0, pg2);
      t_attention(0, SF_BF16, 1, l2k, 1, 2, 1, 64, 0, NULL);
      t_attention(0, SF_BF16, 4, lc4, 0, 6, 3, 128, 1, pc4);
      t_attention(0, SF_BF16, 4, lc4, 1, 3, 3, 64, 0, pc4);
      /* many key tiles of the wgmma path (sm_90): chunked prefill with past
       * > len and GQA 4, and f16 with ragged lengths */
      const int32_t lw2[] = {1536, 1100}, pw2[] = {0, 2100}, lw3[] = {777, 1, 1280};
      t_attention(0, SF_BF16, 2, lw2, 0, 8, 2, 128, 1, pw2);
      t_attention(0, SF_F16, 3, lw3, 1, 4, 2, 64, 1, NULL);
      t_attention(0, SF_F16, 3, lw3, 0, 2, 2, 128, 0, NULL);
      attn_poison_tail = 1; /* NaN past each sequence's keys */
      t_attention(0, SF_BF16, 3, lw3, 0, 4, 2, 128, 0, NULL);
      t_attention(0, SF_BF16, 2, lw2, 1, 4, 4, 64, 1, pw2);
      attn_poison_tail = 0;
    }

    const int32_t c3[] = {1, 777, 4096}, c2[] = {300, 33};
    t_decode(SF_BF16, 3, 8, 2, 128, c3, 0);
    t_decode(SF_BF16, 3, 8, 2, 128, c3, 7);
    t_decode(SF_F16, 2, 4, 4, 64, c2, 0);
    t_decode(SF_BF16, 2, 2, 1, 80, c2, 100);
    /* the 16-byte fast path: MHA, GQA groups 2, 4, 6 (two head chunks), 8 */
    {
      const int32_t c2b[] = {5000, 17}, c1[] = {40000};
      t_decode_l(SF_BF16, 3, 8, 2, 128, c3, 0, 1);
      t_decode_l(SF_BF16, 3, 8, 2, 128, c3, 7, 1);
      t_decode_l(SF_F16, 2, 4, 4, 64, c2, 0, 1);
      t_decode_l(SF_F16, 2, 4, 4, 64, c2, 100, 1);
      t_decode_l(SF_BF16, 2, 12, 2, 128, c2b, 0, 1);
      t_decode_l(SF_BF16, 2, 16, 2, 64, c2b, 0, 1);
      t_decode_l(SF_BF16, 2, 4, 2, 128, c2b, 3, 1);
      t_decode_l(SF_BF16, 1, 16, 16, 128, c1, 0, 1);
    }

    /* the log-sum-exp merge: both paths of the kernel (16-byte vectors,
     * scalar), every lane-group size (head_dim 16..128), each dtype pair the
     * context-parallel code uses, batch > 1 with ragged lengths, strided out */
    {
      const int32_t lm3[] = {5, 1, 17}, lm2[] = {7, 3}, lm1[] = {300}, lm4[] = {2, 0, 9, 1};
      t_merge(SF_BF16, SF_BF16, 3, lm3, 0, 8, 128, 1);
      t_merge(SF_F32, SF_BF16, 2, lm2, 1, 4, 64, 1);
      t_merge(SF_BF16, SF_F32, 3, lm3, 0, 2, 128, 1);
      t_merge(SF_F32, SF_F32, 2, lm2, 1, 3, 80, 0);
      t_merge(SF_F16, SF_F16, 4, lm4, 0, 5, 64, 0);
      t_merge(SF_F32, SF_F16, 4, lm4, 1, 6, 16, 1);
      t_merge(SF_BF16, SF_BF16, 2, lm2, 1, 3, 80, 1);
      t_merge(SF_BF16, SF_BF16, 1, lm1, 0, 16, 128, 1);
      t_merge(SF_F32, SF_BF16, 1, lm1, 0, 32, 32, 0);
    }

    const int32_t lc3[] = {50, 1, 2}, lc2[] = {17, 64};
    t_conv1d(SF_BF16, 3, lc3, 1, 96, 4, 1, 1, 1, 0);
    t_conv1d(SF_F16, 2, lc2, 0, 130, 4, 0, 0, 0, 0);
    t_conv1d(SF_BF16, 2, lc2, 0, 64, 2, 1, 1, 1, 1);
    t_conv1d(SF_F32, 3, lc3, 1, 40, 3, 1, 1, 0, 0);
    t_conv1d_update(SF_BF16, 3, 200, 4, 0);
    t_conv1d_update(SF_F16, 2, 64, 4, 1);

    const int32_t ls2[] = {300, 17}, ls3[] = {5, 129, 64};
    for (int naive = 0; naive < 2; naive++) {
      t_scan((scan_case){naive, SF_BF16, 2, ls2, 1, 40, 16, 1, 1, 1, 1, 1, 0, 0, 0});
      t_scan((scan_case){naive, SF_F16, 3, ls3, 0, 33, 16, 0, 1, 1, 1, 0, 64, 0, 0});
      t_scan((scan_case){naive, SF_BF16, 3, ls3, 1, 20, 7, 1, 0, 0, 0, 1, 0, 0, 0});
      t_scan((scan_case){naive, SF_BF16, 2, ls2, 0, 16, 24, 1, 1, 1, 1, 1, 0, 0, 0});
    }
    /* the chunked scan with 16-byte loads: the mamba-1.4b layer width, a
     * partial channel group, ragged varlen, an empty sequence */
    {
      const int32_t la2[] = {300, 17}, la3[] = {129, 5, 1000}, la1[] = {777}, la0[] = {0, 513};
      t_scan((scan_case){0, SF_BF16, 2, la2, 1, 4096, 16, 1, 1, 1, 1, 1, 0, 0, 1});
      t_scan((scan_case){0, SF_F16, 3, la3, 0, 64, 16, 0, 1, 1, 1, 0, 0, 0, 1});
      t_scan((scan_case){0, SF_BF16, 1, la1, 1, 40, 16, 1, 1, 0, 1, 1, 2048, 0, 1});
      t_scan((scan_case){0, SF_BF16, 2, la0, 0, 48, 16, 1, 0, 0, 0, 1, 0, 0, 1});
    }
    t_state_update(SF_BF16, 3, 100, 16, 1, 0, 0);
    t_state_update(SF_F16, 2, 64, 16, 0, 1, 0);
    t_state_update(SF_BF16, 5, 4096, 16, 1, 0, 1);
    t_state_update(SF_F16, 3, 100, 8, 0, 1, 1);
    t_state_update(SF_BF16, 2, 64, 32, 1, 0, 1);
    /* dt_proj fused: the vector kernel (N 16, al16) and the scalar one (N 12),
     * 16-byte words of the weight (R 128: rows and the x_proj row stride a
     * multiple of 16 bytes) and single elements (R 7), mamba-1.4b's width
     * and a partial channel group (dim 100) */
    t_state_update_r(SF_BF16, 1, 4096, 16, 1, 0, 1, 128);
    t_state_update_r(SF_F16, 2, 4096, 16, 1, 0, 1, 128);
    t_state_update_r(SF_BF16, 2, 100, 16, 1, 1, 1, 7);
    t_state_update_r(SF_F16, 1, 100, 16, 0, 0, 1, 7);
    t_state_update_r(SF_BF16, 2, 4096, 12, 1, 0, 0, 128);
    t_state_update_r(SF_F16, 1, 100, 12, 1, 0, 0, 128);
    t_state_update_r(SF_BF16, 1, 4096, 12, 0, 1, 0, 7);
    t_state_update_r(SF_F16, 2, 100, 12, 1, 0, 0, 7);
    /* the whole decode step of Mamba-1 in one kernel: tiny widths (64 rows a
     * ring chunk, most blocks without an x_proj row), f16 with three
     * layers, and mamba-1.4b's layer shapes; then the ring's other shapes
     * (8 KiB slots all in flight: a chunk to one warp; to three, to four) */
    const md_tuning dflt = {0, 0, 0};
    t_mamba1_decode(SF_BF16, 2, 64, 128, 16, 8, 4, 1, dflt);
    t_mamba1_decode(SF_F16, 3, 256, 512, 16, 16, 4, 0, dflt);
    t_mamba1_decode(SF_BF16, 2, 2048, 4096, 16, 128, 4, 1, dflt);
    t_mamba1_decode(SF_BF16, 2, 2048, 4096, 16, 128, 4, 1, (md_tuning){3, 16, 0}); /* throttled, L2 ahead */
    t_mamba1_decode(SF_BF16, 2, 2048, 4096, 16, 128, 4, 1, (md_tuning){32, 0, 8192});
    t_mamba1_decode(SF_BF16, 2, 64, 128, 16, 8, 4, 1, (md_tuning){32, 0, 8192});
    t_mamba1_decode(SF_F16, 2, 256, 512, 16, 16, 4, 1, (md_tuning){0, 0, 24576});
    t_mamba1_decode(SF_BF16, 2, 2048, 4096, 16, 128, 4, 0, (md_tuning){0, 0, 32768});
    t_mamba1_decode_refusals();

    const int32_t ld2[] = {130, 9}, ld3[] = {64, 3, 257};
    for (int naive = 0; naive < 2; naive++) {
      t_ssd((ssd_case){naive, SF_BF16, 2, ld2, 1, 4, 32, 2, 64, 1, 1, 1, 1, 0.0f, INFINITY, 1, 0, 0, 0, 0});
      t_ssd((ssd_case){naive, SF_F16, 3, ld3, 0, 2, 64, 1, 128, 0, 1, 1, 1, 0.0f, INFINITY, 0, 64, 0, 0, 0});
      t_ssd((ssd_case){naive, SF_BF16, 2, ld2, 0, 3, 16, 3, 16, 1, 0, 1, 1, 0.01f, 0.5f, 1, 32, 0, 0, 0});
      t_ssd((ssd_case){naive, SF_BF16, 1, ld2, 1, 2, 8, 1, 200, 0, 1, 0, 0, 0.0f, INFINITY, 1, 0, 0, 0, 0});
    }
    /* the chunked tensor-core SSD: L not a multiple of 256, ragged varlen
     * with an empty and a 1-token sequence, initial state, ngroups 2, the dt
     * clamp, f16 with d_state 64, the mamba2-1.3b layer (64 heads) */
    {
      const int32_t lb1[] = {1000}, lb3[] = {300, 1, 517}, lb2[] = {256, 700}, lb0[] = {0, 2049}, lb64[] = {700};
      t_ssd((ssd_case){0, SF_BF16, 1, lb1, 1, 4, 64, 1, 128, 1, 1, 1, 1, 0.0f, INFINITY, 1, 0, 0, 0, 1});
      t_ssd((ssd_case){0, SF_BF16, 3, lb3, 0, 4, 64, 2, 128, 0, 1, 1, 1, 0.01f, 0.3f, 0, 256, 0, 0, 1});
      t_ssd((ssd_case){0, SF_F16, 2, lb2, 1, 2, 64, 1, 64, 1, 0, 1, 1, 0.0f, INFINITY, 1, 0, 0, 0, 1});
      t_ssd((ssd_case){0, SF_BF16, 2, lb0, 0, 8, 64, 1, 128, 1, 1, 0, 1, 0.0f, INFINITY, 1, 0, 0, 0, 1});
      t_ssd((ssd_case){0, SF_BF16, 1, lb64, 1, 64, 64, 1, 128, 0, 1, 1, 1, 0.0f, INFINITY, 0, 0, 0, 0, 1});
    }
    t_ssd_update(SF_BF16, 3, 4, 32, 2, 64, 1, 0, 0);
    t_ssd_update(SF_F16, 2, 2, 64, 1, 128, 0, 1, 0);
    t_ssd_update(SF_BF16, 4, 8, 64, 2, 128, 1, 0, 1);
    t_ssd_update(SF_BF16, 2, 2, 64, 1, 256, 0, 1, 1);
    t_ssd_update(SF_F16, 3, 4, 32, 1, 16, 1, 0, 1);
  }

  if (!small_only) {
    printf("-- long cases\n");
    t_attention_long(0, SF_BF16, selfcheck ? 2048 : 131072);
    {
      const int32_t cl[] = {selfcheck ? 4096 : 131072};
      t_decode(SF_BF16, 1, 1, 1, 64, cl, 0);
    }
    const int32_t l1m[] = {1 << 20};
    for (int naive = 0; naive < 2; naive++) {
      t_scan((scan_case){naive, SF_BF16, 1, l1m, 1, 16, 16, 1, 1, 1, 1, 1, 0, 1, 0});
      t_ssd((ssd_case){naive, SF_BF16, 1, l1m, 1, 2, 8, 1, 16, 1, 1, 1, 1, 0.0f, INFINITY, 1, 0, 1, 1, 0});
    }
    /* the fast paths at 1M tokens: 64-bit offsets, every window of the chunked SSD */
    t_scan((scan_case){0, SF_BF16, 1, l1m, 1, 64, 16, 1, 1, 1, 1, 1, 0, 1, 1});
    t_ssd((ssd_case){0, SF_BF16, 1, l1m, 1, 2, 64, 1, 128, 1, 1, 1, 1, 0.0f, INFINITY, 1, 0, 1, 1, 1});
  }

  printf("%d case(s), %d failed%s\n", n_cases, n_failed, selfcheck ? " (cpu self-check, not a GPU test)" : "");
  if (selfcheck) sf_cpu_ctx_destroy(&gctx);
  else sf_cuda_ctx_destroy(&gctx);
  sf_cpu_ctx_destroy(&cctx);
  return n_failed ? 1 : 0;
}
