/* Long sequences and 64-bit offsets for the Mamba ops.
 * 1. ~1M tokens at a tiny width: selective scan (dim 2, d_state 4) and SSD
 *    (1 head, head_dim 2, d_state 4), chunked == naive == double reference.
 *    SF_TEST_SHORT=1 shrinks it to 64K tokens (for slow sanitizer runs).
 * 2. Element offsets past 2^31: every op on a padded batch whose second
 *    sequence starts at row 2^21 + 1000 of rows 1024 floats wide (offset
 *    ~2.15e9 elements), states 2^31 + 7 floats apart, decode rows likewise;
 *    the buffers are MAP_NORESERVE mappings of which only the used pages
 *    are touched. The results must equal those of the same problem laid out
 *    compactly (an offset truncated to 32 bits would read or write
 *    elsewhere). Skipped with a note when the mapping is refused. */
#include <sys/mman.h>

#include "ops/op_table.h"
#include "ref/ref.h"
#include "test.h"
#include "unit/mamba_test_util.h"

static sf_op_ctx ctx;
static mref_rng rng;
static const double TOL = 1e-5;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- 1. a million tokens ---- */

static void test_long_scan(int64_t L) {
  const int64_t dim = 2, ds = 4;
  float *u = FALLOC(L * dim), *delta = FALLOC(L * dim), *z = FALLOC(L * dim), *B = FALLOC(L * ds), *C = FALLOC(L * ds);
  float A[8], D[2], bias[2], h0[8];
  for (int i = 0; i < 8; i++) A[i] = (float)-exp(mref_randn(&rng));
  mref_fill_randn(&rng, D, 2, 1.0);
  mref_fill_randn(&rng, bias, 2, 0.3);
  mref_fill_randn(&rng, h0, 8, 1.0);
  mref_fill_randn(&rng, u, L * dim, 1.0);
  mref_fill_randn(&rng, z, L * dim, 1.0);
  mref_fill_uniform(&rng, delta, L * dim, -4.0, 0.0);
  mref_fill_randn(&rng, B, L * ds, 1.0);
  mref_fill_randn(&rng, C, L * ds, 1.0);
  double *ro = DALLOC(L * dim), rh[8];
  ref_mamba_selective_scan(L, dim, ds, u, delta, bias, 1, A, B, C, D, z, h0, ro, rh);

  int64_t start = 0;
  int32_t len = (int32_t)L;
  float *out = FALLOC(L * dim), *outn = FALLOC(L * dim), st[8], stn[8];
  sf_selective_scan_params p = {.dtype = SF_F32, .dim = dim, .d_state = (int32_t)ds, .seqs = {1, L, &start, &len},
                                .u = u, .u_token_stride = dim, .delta = delta, .delta_token_stride = dim,
                                .delta_bias = bias, .delta_softplus = 1, .A = A, .B = B, .B_token_stride = ds,
                                .C = C, .C_token_stride = ds, .D = D, .z = z, .z_token_stride = dim,
                                .state = stn, .state_batch_stride = dim * ds, .has_initial_state = 1,
                                .out = outn, .out_token_stride = dim};
  sf_error err = {0};
  memcpy(stn, h0, sizeof h0);
  mref_fill_nan(outn, L * dim);
  double t = now();
  CHECK(ctx.ops->selective_scan_naive(&ctx, &p, &err) == SF_OK);
  double t_naive = now() - t;
  double en = mref_rel_err(outn, ro, L * dim), ens = mref_rel_err(stn, rh, 8);
  CHECK_MSG(en <= TOL && ens <= TOL, "long scan naive: out %.3g state %.3g", en, ens);
  const int32_t chunks[2] = {0, 1000};
  for (int i = 0; i < 2; i++) {
    p.chunk_size = chunks[i], p.state = st, p.out = out;
    memcpy(st, h0, sizeof h0);
    mref_fill_nan(out, L * dim);
    t = now();
    CHECK(ctx.ops->selective_scan(&ctx, &p, &err) == SF_OK);
    double t_chunk = now() - t;
    double e = mref_rel_err(out, ro, L * dim), es = mref_rel_err(st, rh, 8);
    double ec = mref_rel_err_f(out, outn, L * dim), ecs = mref_rel_err_f(st, stn, 8);
    CHECK_MSG(e <= TOL && es <= TOL && ec <= TOL && ecs <= TOL,
              "long scan chunk %d: vs double %.3g / %.3g, vs naive %.3g / %.3g", chunks[i], e, es, ec, ecs);
    printf("scan %lld tokens chunk %d: %.2f s (naive %.2f s); rel err vs double out %.3g state %.3g, vs naive %.3g\n",
           (long long)L, chunks[i], t_chunk, t_naive, e, es, ec);
  }
  free(u), free(delta), free(z), free(B), free(C), free(ro), free(out), free(outn);
}

static void test_long_ssd(int64_t L) {
  const int64_t P = 2, N = 4;
  float *x = FALLOC(L * P), *z = FALLOC(L * P), *dt = FALLOC(L), *B = FALLOC(L * N), *C = FALLOC(L * N);
  float A = (float)-exp(mref_randn(&rng)), D = (float)mref_randn(&rng), bias = (float)(0.3 * mref_randn(&rng)), S0[8];
  mref_fill_randn(&rng, S0, 8, 1.0);
  mref_fill_randn(&rng, x, L * P, 1.0);
  mref_fill_randn(&rng, z, L * P, 1.0);
  mref_fill_uniform(&rng, dt, L, -4.0, 0.0);
  mref_fill_randn(&rng, B, L * N, 1.0);
  mref_fill_randn(&rng, C, L * N, 1.0);
  double *ro = DALLOC(L * P), rS[8];
  ref_mamba_ssd(L, 1, P, 1, N, x, dt, &bias, 1, 0.0, INFINITY, &A, B, C, &D, z, S0, ro, rS);

  int64_t start = 0;
  int32_t len = (int32_t)L;
  float *out = FALLOC(L * P), *outn = FALLOC(L * P), st[8], stn[8];
  sf_ssd_params p = {.dtype = SF_F32, .n_heads = 1, .head_dim = (int32_t)P, .n_groups = 1, .d_state = (int32_t)N,
                     .seqs = {1, L, &start, &len}, .x = x, .x_token_stride = P, .dt = dt, .dt_token_stride = 1,
                     .dt_bias = &bias, .dt_softplus = 1, .dt_min = 0.0f, .dt_max = INFINITY, .A = &A,
                     .B = B, .B_token_stride = N, .C = C, .C_token_stride = N, .D = &D, .z = z, .z_token_stride = P,
                     .state = stn, .state_batch_stride = P * N, .has_initial_state = 1, .out = outn,
                     .out_token_stride = P};
  sf_error err = {0};
  memcpy(stn, S0, sizeof S0);
  mref_fill_nan(outn, L * P);
  double t = now();
  CHECK(ctx.ops->ssd_naive(&ctx, &p, &err) == SF_OK);
  double t_naive = now() - t;
  double en = mref_rel_err(outn, ro, L * P), ens = mref_rel_err(stn, rS, 8);
  CHECK_MSG(en <= TOL && ens <= TOL, "long ssd naive: out %.3g state %.3g", en, ens);
  p.state = st, p.out = out; /* chunk_size 0: the default 256 */
  memcpy(st, S0, sizeof S0);
  mref_fill_nan(out, L * P);
  t = now();
  CHECK(ctx.ops->ssd(&ctx, &p, &err) == SF_OK);
  double t_chunk = now() - t;
  double e = mref_rel_err(out, ro, L * P), es = mref_rel_err(st, rS, 8);
  double ec = mref_rel_err_f(out, outn, L * P), ecs = mref_rel_err_f(st, stn, 8);
  CHECK_MSG(e <= TOL && es <= TOL && ec <= TOL && ecs <= TOL, "long ssd: vs double %.3g / %.3g, vs naive %.3g / %.3g",
            e, es, ec, ecs);
  printf("ssd %lld tokens chunk 256: %.2f s (naive %.2f s); rel err vs double out %.3g state %.3g, vs naive %.3g\n",
         (long long)L, t_chunk, t_naive, e, es, ec);
  free(x), free(z), free(dt), free(B), free(C), free(ro), free(out), free(outn);
}

/* ---- 2. offsets past 2^31 elements ---- */

enum { RS = 1024 };                                  /* floats per row */
static const int64_t FAR = (INT64_C(1) << 21) + 1000; /* max_len: row of sequence 1 */
static const int64_t SFAR = (INT64_C(1) << 31) + 7;   /* state batch stride */

static void *map_big(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* The far layout: rows of sequence b at b * FAR; the near one: packed rows. */
typedef struct layout {
  float *rows, *state;
  int64_t start[2], max_len, state_stride;
} layout;

static void put_rows(const layout *l, const int32_t *len, const float *dense, int64_t w, int64_t col) {
  int64_t off = 0;
  for (int b = 0; b < 2; b++)
    for (int64_t t = 0; t < len[b]; t++, off++) memcpy(l->rows + (l->start[b] + t) * RS + col, dense + off * w, (size_t)w * sizeof(float));
}
static void get_rows(const layout *l, const int32_t *len, float *dense, int64_t w, int64_t col) {
  int64_t off = 0;
  for (int b = 0; b < 2; b++)
    for (int64_t t = 0; t < len[b]; t++, off++) memcpy(dense + off * w, l->rows + (l->start[b] + t) * RS + col, (size_t)w * sizeof(float));
}
/* Poisons the output columns 512..527 of every used row (and decode row). */
static void poison_out(const layout *l, const int32_t *len, int64_t decode_stride) {
  for (int b = 0; b < 2; b++) {
    for (int64_t t = 0; t < len[b]; t++) mref_fill_nan(l->rows + (l->start[b] + t) * RS + 512, 16);
    mref_fill_nan(l->rows + b * decode_stride + 512, 16);
  }
}
static void put_state(const layout *l, const float *s, int64_t n) {
  for (int b = 0; b < 2; b++) memcpy(l->state + b * l->state_stride, s + b * n, (size_t)n * sizeof(float));
}
static void get_state(const layout *l, float *s, int64_t n) {
  for (int b = 0; b < 2; b++) memcpy(s + b * n, l->state + b * l->state_stride, (size_t)n * sizeof(float));
}

static void test_far(void) {
  const size_t far_rows = (size_t)(2 * FAR), far_bytes = far_rows * RS * sizeof(float);
  const size_t state_bytes = (size_t)(SFAR + 4096) * sizeof(float);
  layout far = {map_big(far_bytes), map_big(state_bytes), {0, FAR}, FAR, SFAR};
  if (!far.rows || !far.state) {
    printf("NOTE: offsets past 2^31 not tested: a %zu-byte MAP_NORESERVE mapping was refused\n", far_bytes);
    if (far.rows) munmap(far.rows, far_bytes);
    if (far.state) munmap(far.state, state_bytes);
    return;
  }
  int32_t len[2] = {5, 300};
  const int64_t total = len[0] + len[1];
  layout near = {FALLOC(total * RS), FALLOC(2 * 4096), {0, len[0]}, len[1], 4096};
  CHECK((far.start[1] + len[1]) * RS > (INT64_C(1) << 31)); /* the case is what it claims */
  CHECK(SFAR > (INT64_C(1) << 31));

  /* columns of the fused row: inputs 0..63, outputs 512.. */
  enum { W = 12, NS = 64 };
  float *in = FALLOC(total * W), *st0 = FALLOC(2 * NS), *wts = FALLOC(64), *A = FALLOC(64), *D = FALLOC(16), *bias = FALLOC(16);
  float *got_far = FALLOC(total * W), *got_near = FALLOC(total * W), *s_far = FALLOC(2 * NS), *s_near = FALLOC(2 * NS);
  mref_fill_randn(&rng, in, total * W, 1.0);
  mref_fill_randn(&rng, st0, 2 * NS, 1.0);
  mref_fill_randn(&rng, wts, 64, 0.5);
  for (int i = 0; i < 64; i++) A[i] = (float)-exp(mref_randn(&rng));
  mref_fill_randn(&rng, D, 16, 1.0);
  mref_fill_randn(&rng, bias, 16, 0.3);
  layout *ls[2] = {&far, &near};
  sf_error err = {0};

  for (int op = 0; op < 5; op++) { /* conv1d, scan, scan naive, ssd, ssd naive */
    const char *names[5] = {"conv1d", "selective_scan", "selective_scan_naive", "ssd", "ssd_naive"};
    int64_t wo = 0, ns = 0;
    for (int k = 0; k < 2; k++) {
      layout *l = ls[k];
      poison_out(l, len, k ? RS : FAR * RS);
      put_rows(l, len, in, W, 0);
      sf_seqs seqs = {2, l->max_len, l->start, len};
      sf_status st = SF_ERR_INTERNAL;
      if (op == 0) { /* dim 4, width 4: x cols 0..3 */
        wo = 4, ns = 4 * 3;
        put_state(l, st0, ns);
        sf_conv1d_params p = {.dtype = SF_F32, .dim = 4, .width = 4, .silu = 1, .seqs = seqs, .x = l->rows,
                              .x_token_stride = RS, .weight = wts, .bias = bias, .conv_state = l->state,
                              .state_batch_stride = l->state_stride, .has_initial_state = 1,
                              .out = l->rows + 512, .out_token_stride = RS};
        st = ctx.ops->conv1d(&ctx, &p, &err);
      } else if (op <= 2) { /* dim 2, d_state 4: u 0..1, delta 2..3, B 4..7, C 8..11 */
        wo = 2, ns = 8;
        put_state(l, st0, ns);
        sf_selective_scan_params p = {.dtype = SF_F32, .dim = 2, .d_state = 4, .chunk_size = 7, .seqs = seqs,
                                      .u = l->rows, .u_token_stride = RS, .delta = l->rows + 2,
                                      .delta_token_stride = RS, .delta_bias = bias, .delta_softplus = 1, .A = A,
                                      .B = l->rows + 4, .B_token_stride = RS, .C = l->rows + 8, .C_token_stride = RS,
                                      .D = D, .z = l->rows + 6, .z_token_stride = RS, .state = l->state,
                                      .state_batch_stride = l->state_stride, .has_initial_state = 1,
                                      .out = l->rows + 512, .out_token_stride = RS};
        st = op == 1 ? ctx.ops->selective_scan(&ctx, &p, &err) : ctx.ops->selective_scan_naive(&ctx, &p, &err);
      } else { /* 2 heads, head_dim 3, 1 group, d_state 2: x 0..5, dt 6..7, B 8..9, C 10..11 */
        wo = 6, ns = 2 * 3 * 2;
        put_state(l, st0, ns);
        sf_ssd_params p = {.dtype = SF_F32, .n_heads = 2, .head_dim = 3, .n_groups = 1, .d_state = 2, .chunk_size = 16,
                           .seqs = seqs, .x = l->rows, .x_token_stride = RS, .dt = l->rows + 6, .dt_token_stride = RS,
                           .dt_bias = bias, .dt_softplus = 1, .dt_min = 0.0f, .dt_max = INFINITY, .A = A,
                           .B = l->rows + 8, .B_token_stride = RS, .C = l->rows + 10, .C_token_stride = RS, .D = D,
                           .z = l->rows + 3, .z_token_stride = RS, .state = l->state,
                           .state_batch_stride = l->state_stride, .has_initial_state = 1, .out = l->rows + 512,
                           .out_token_stride = RS};
        st = op == 3 ? ctx.ops->ssd(&ctx, &p, &err) : ctx.ops->ssd_naive(&ctx, &p, &err);
      }
      CHECK_MSG(st == SF_OK, "%s far: %s", names[op], err.msg);
      get_rows(l, len, k ? got_near : got_far, wo, 512);
      get_state(l, k ? s_near : s_far, ns);
    }
    CHECK_EQ_I64(mref_count_nan(got_near, total * wo), 0);
    CHECK_MSG(same(got_far, got_near, total * wo) && same(s_far, s_near, 2 * ns), "%s: far layout != near layout",
              names[op]);
  }

  /* decode ops: batch row 1 at element FAR * RS, states SFAR apart */
  for (int op = 0; op < 3; op++) {
    const char *names[3] = {"conv1d_update", "selective_state_update", "ssd_update"};
    int64_t wo = 0, ns = 0;
    for (int k = 0; k < 2; k++) {
      layout *l = ls[k];
      const int64_t bs = k ? RS : FAR * RS;
      poison_out(l, len, bs);
      for (int b = 0; b < 2; b++) memcpy(l->rows + b * bs, in + b * W, W * sizeof(float));
      sf_status st = SF_ERR_INTERNAL;
      if (op == 0) {
        wo = 4, ns = 12;
        put_state(l, st0, ns);
        sf_conv1d_update_params p = {.dtype = SF_F32, .batch = 2, .dim = 4, .width = 4, .silu = 1, .x = l->rows,
                                     .x_batch_stride = bs, .weight = wts, .bias = bias, .conv_state = l->state,
                                     .state_batch_stride = l->state_stride, .out = l->rows + 512,
                                     .out_batch_stride = bs};
        st = ctx.ops->conv1d_update(&ctx, &p, &err);
      } else if (op == 1) {
        wo = 2, ns = 8;
        put_state(l, st0, ns);
        sf_selective_state_update_params p = {
            .dtype = SF_F32, .batch = 2, .dim = 2, .d_state = 4, .x = l->rows, .x_batch_stride = bs,
            .dt = l->rows + 2, .dt_batch_stride = bs, .dt_bias = bias, .dt_softplus = 1, .A = A, .B = l->rows + 4,
            .B_batch_stride = bs, .C = l->rows + 8, .C_batch_stride = bs, .D = D, .z = l->rows + 6,
            .z_batch_stride = bs, .state = l->state, .state_batch_stride = l->state_stride, .out = l->rows + 512,
            .out_batch_stride = bs};
        st = ctx.ops->selective_state_update(&ctx, &p, &err);
      } else {
        wo = 6, ns = 12;
        put_state(l, st0, ns);
        sf_ssd_update_params p = {
            .dtype = SF_F32, .batch = 2, .n_heads = 2, .head_dim = 3, .n_groups = 1, .d_state = 2, .x = l->rows,
            .x_batch_stride = bs, .dt = l->rows + 6, .dt_batch_stride = bs, .dt_bias = bias, .dt_softplus = 1,
            .dt_min = 0.0f, .dt_max = INFINITY, .A = A, .B = l->rows + 8, .B_batch_stride = bs, .C = l->rows + 10,
            .C_batch_stride = bs, .D = D, .z = l->rows + 3, .z_batch_stride = bs, .state = l->state,
            .state_batch_stride = l->state_stride, .out = l->rows + 512, .out_batch_stride = bs};
        st = ctx.ops->ssd_update(&ctx, &p, &err);
      }
      CHECK_MSG(st == SF_OK, "%s far: %s", names[op], err.msg);
      for (int b = 0; b < 2; b++) memcpy((k ? got_near : got_far) + b * wo, l->rows + b * bs + 512, (size_t)wo * sizeof(float));
      get_state(l, k ? s_near : s_far, ns);
    }
    CHECK_EQ_I64(mref_count_nan(got_near, 2 * wo), 0);
    CHECK_MSG(same(got_far, got_near, 2 * wo) && same(s_far, s_near, 2 * ns), "%s: far layout != near layout", names[op]);
  }
  printf("offsets past 2^31 elements: all ops agree with the compact layout\n");
  munmap(far.rows, far_bytes);
  munmap(far.state, state_bytes);
  free(near.rows), free(near.state), free(in), free(st0), free(wts), free(A), free(D), free(bias);
  free(got_far), free(got_near), free(s_far), free(s_near);
}

int main(void) {
  rng.s = sf_test_seed();
  sf_error err = {0};
  REQUIRE(sf_cpu_ctx_init(&ctx, 0, &err) == SF_OK);
  const char *short_run = getenv("SF_TEST_SHORT");
  const int64_t L = short_run && *short_run && strcmp(short_run, "0") ? (INT64_C(1) << 16) + 37 : (INT64_C(1) << 20) + 37;
  if (L < (INT64_C(1) << 20)) printf("NOTE: SF_TEST_SHORT set: %lld tokens instead of 1M\n", (long long)L);
  test_long_scan(L);
  test_long_ssd(L);
  test_far();
  sf_cpu_ctx_destroy(&ctx);
  return sf_test_finish("test_ops_mamba_long");
}
