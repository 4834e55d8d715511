/* cpu conv1d and conv1d_update against the double reference, and the layout
 * and chunking invariances: padded == varlen == one sequence at a time,
 * two calls carrying conv_state == one call, prefill then token-by-token
 * updates == a longer prefill. Tolerance vs double: 1e-6 (a <= 8-term fp32
 * sum and a silu); the invariances are exact (the same arithmetic). */
#include "ops/op_table.h"
#include "ref/ref.h"
#include "test.h"
#include "unit/mamba_test_util.h"

static sf_op_ctx ctx;
static mref_rng rng;
static const double TOL = 1e-6;
static double max_err = 0.0;

typedef struct conv_in {
  int64_t dim;
  int width, silu;
  const float *w, *bias;
  int32_t batch;
  const int32_t *len;
  const float *x;    /* dense [total][dim] */
  const float *hist; /* [batch][dim * (width-1)], or NULL: has_initial_state = 0 */
} conv_in;

/* Runs conv1d with x and out as column views of wider rows and a padded
 * state buffer, everything poisoned; checks nothing outside the outputs is
 * written; returns dense out [total][dim] and state [batch][dim*(width-1)]. */
static sf_status conv_run(const conv_in *in, int padded, float *out, float *state) {
  mref_batch bt;
  mref_batch_init(&bt, in->batch, in->len, padded, (int64_t)(mref_next(&rng) % 3));
  const int64_t dim = in->dim, k = in->width - 1;
  const int64_t xs = dim + 1 + (int64_t)(mref_next(&rng) % 3), os = dim + 2;
  const int64_t sbs = dim * k + 3, nb = in->batch;
  float *xbuf = FALLOC(bt.rows * xs), *obuf = FALLOC(bt.rows * os), *sbuf = FALLOC(nb * sbs);
  mref_fill_nan(xbuf, bt.rows * xs);
  mref_fill_nan(obuf, bt.rows * os);
  mref_fill_nan(sbuf, nb * sbs); /* NaN unless an initial state is given: must not be read */
  mref_scatter(&bt, in->x, dim, xbuf, xs, 1);
  if (in->hist)
    for (int64_t b = 0; b < nb; b++) memcpy(sbuf + b * sbs, in->hist + b * dim * k, (size_t)(dim * k) * sizeof(float));
  sf_conv1d_params p = {
      .dtype = SF_F32, .dim = dim, .width = in->width, .silu = in->silu,
      .seqs = {.batch = in->batch, .max_len = bt.max_len, .start = bt.start, .len = bt.len},
      .x = xbuf + 1, .x_token_stride = xs, .weight = in->w, .bias = in->bias,
      .conv_state = sbuf, .state_batch_stride = sbs, .has_initial_state = in->hist != NULL,
      .out = obuf + 1, .out_token_stride = os};
  sf_error err = {0};
  sf_status st = ctx.ops->conv1d(&ctx, &p, &err);
  CHECK_MSG(st == SF_OK, "conv1d: %s", err.msg);
  CHECK_EQ_I64(mref_count_touched(&bt, obuf, os, 1, dim), 0);
  mref_gather(&bt, obuf, os, 1, dim, out);
  for (int64_t b = 0; b < nb; b++) {
    memcpy(state + b * dim * k, sbuf + b * sbs, (size_t)(dim * k) * sizeof(float));
    for (int64_t i = dim * k; i < sbs; i++) CHECK(isnan(sbuf[b * sbs + i])); /* gap untouched */
  }
  free(xbuf), free(obuf), free(sbuf);
  mref_batch_free(&bt);
  return st;
}

static void conv_ref(const conv_in *in, double *out, double *state) {
  const int64_t dim = in->dim, k = in->width - 1;
  int64_t off = 0;
  for (int32_t b = 0; b < in->batch; b++) {
    ref_mamba_conv1d(in->len[b], dim, in->width, in->silu, in->x + off * dim, in->w, in->bias,
                     in->hist ? in->hist + b * dim * k : NULL, out + off * dim, state + b * dim * k);
    off += in->len[b];
  }
}

/* dim_req 0: a random small dim */
static void test_prefill(int width, int silu, int has_bias, int init, int64_t dim_req) {
  const int64_t dim = dim_req ? dim_req : 1 + (int64_t)(mref_next(&rng) % 37), k = width - 1;
  int32_t len[5] = {5 + (int32_t)(mref_next(&rng) % 36), 0, 1, 2, (int32_t)(mref_next(&rng) % 11)};
  const int32_t batch = 5;
  const int64_t total = total_of(batch, len);
  float *w = FALLOC(dim * width), *bias = FALLOC(dim), *x = FALLOC(total * dim), *hist = FALLOC(batch * dim * k);
  mref_fill_randn(&rng, w, dim * width, 0.5);
  mref_fill_randn(&rng, bias, dim, 1.0);
  mref_fill_randn(&rng, x, total * dim, 1.0);
  mref_fill_randn(&rng, hist, batch * dim * k, 1.0);
  conv_in in = {dim, width, silu, w, has_bias ? bias : NULL, batch, len, x, init ? hist : NULL};

  double *ro = DALLOC(total * dim), *rs = DALLOC(batch * dim * k);
  float *op = FALLOC(total * dim), *sp = FALLOC(batch * dim * k);
  float *ov = FALLOC(total * dim), *sv = FALLOC(batch * dim * k);
  conv_ref(&in, ro, rs);
  conv_run(&in, 1, op, sp);
  double eo = mref_rel_err(op, ro, total * dim), es = mref_rel_err(sp, rs, batch * dim * k);
  max_err = worst(max_err, worst(eo, es));
  CHECK_MSG(eo <= TOL && es <= TOL, "conv1d w%d silu%d bias%d init%d dim %lld: out err %.3g state err %.3g", width,
            silu, has_bias, init, (long long)dim, eo, es);
  CHECK_EQ_I64(mref_count_nan(op, total * dim), 0);

  /* varlen == padded */
  conv_run(&in, 0, ov, sv);
  CHECK(same(ov, op, total * dim) && same(sv, sp, batch * dim * k));

  /* one sequence at a time == the batch */
  int64_t off = 0;
  for (int32_t b = 0; b < batch; b++) {
    conv_in one = in;
    one.batch = 1, one.len = &len[b], one.x = x + off * dim, one.hist = init ? hist + b * dim * k : NULL;
    float *o1 = FALLOC(len[b] * dim), *s1 = FALLOC(dim * k);
    conv_run(&one, b % 2, o1, s1);
    CHECK_MSG(same(o1, op + off * dim, len[b] * dim) && same(s1, sp + b * dim * k, dim * k), "conv1d seq %d alone", b);
    free(o1), free(s1);
    off += len[b];
  }

  /* two calls carrying conv_state == one call; splits shorter than width-1 included */
  int32_t from0[5] = {0}, n1[5], n2[5];
  for (int32_t b = 0; b < batch; b++) {
    n1[b] = len[b] ? (int32_t)(mref_next(&rng) % (uint64_t)(len[b] + 1)) : 0;
    if (b == 0) n1[b] = len[b] > 1 ? 1 : 0; /* a first part shorter than width-1 */
    n2[b] = len[b] - n1[b];
  }
  const int64_t t1 = total_of(batch, n1), t2 = total_of(batch, n2);
  mref_batch dense;
  mref_batch_init(&dense, batch, len, 0, 0);
  float *x1 = FALLOC(t1 * dim), *x2 = FALLOC(t2 * dim), *o1 = FALLOC(t1 * dim), *o2 = FALLOC(t2 * dim);
  float *s1 = FALLOC(batch * dim * k), *s2 = FALLOC(batch * dim * k);
  float *e1 = FALLOC(t1 * dim), *e2 = FALLOC(t2 * dim);
  mref_slice(&dense, x, dim, from0, n1, x1);
  mref_slice(&dense, x, dim, n1, n2, x2);
  mref_slice(&dense, op, dim, from0, n1, e1);
  mref_slice(&dense, op, dim, n1, n2, e2);
  conv_in c1 = in, c2 = in;
  c1.len = n1, c1.x = x1;
  conv_run(&c1, 1, o1, s1);
  c2.len = n2, c2.x = x2, c2.hist = s1;
  conv_run(&c2, 0, o2, s2);
  CHECK_MSG(same(o1, e1, t1 * dim) && same(o2, e2, t2 * dim) && same(s2, sp, batch * dim * k),
            "conv1d w%d: two calls != one call", width);

  /* in place: out = x (same rows) */
  {
    mref_batch bt;
    mref_batch_init(&bt, batch, len, 1, 0);
    const int64_t st = dim + 1;
    float *buf = FALLOC(bt.rows * st), *sbuf = FALLOC(batch * dim * k), *got = FALLOC(total * dim);
    mref_fill_nan(buf, bt.rows * st);
    mref_scatter(&bt, x, dim, buf, st, 0);
    if (init) memcpy(sbuf, hist, (size_t)(batch * dim * k) * sizeof(float));
    sf_conv1d_params p = {.dtype = SF_F32, .dim = dim, .width = width, .silu = silu,
                          .seqs = {batch, bt.max_len, bt.start, bt.len}, .x = buf, .x_token_stride = st,
                          .weight = w, .bias = in.bias, .conv_state = sbuf, .state_batch_stride = dim * k,
                          .has_initial_state = init, .out = buf, .out_token_stride = st};
    sf_error err = {0};
    CHECK(ctx.ops->conv1d(&ctx, &p, &err) == SF_OK);
    mref_gather(&bt, buf, st, 0, dim, got);
    CHECK_MSG(same(got, op, total * dim), "conv1d in place");
    free(buf), free(sbuf), free(got);
    mref_batch_free(&bt);
  }

  mref_batch_free(&dense);
  free(x1), free(x2), free(o1), free(o2), free(s1), free(s2), free(e1), free(e2);
  free(w), free(bias), free(x), free(hist), free(ro), free(rs), free(op), free(sp), free(ov), free(sv);
}

/* Prefill of L-k tokens, then k conv1d_update steps == prefill of L tokens. */
static void test_update(int width, int silu, int64_t dim_req) {
  const int32_t batch = 3, steps = 4;
  const int64_t dim = dim_req ? dim_req : 1 + (int64_t)(mref_next(&rng) % 20), k = width - 1;
  int32_t len[3] = {steps, steps + 1, steps + 2 + (int32_t)(mref_next(&rng) % 19)}, pre[3];
  for (int b = 0; b < batch; b++) pre[b] = len[b] - steps;
  const int64_t total = total_of(batch, len), tp = total_of(batch, pre);
  float *w = FALLOC(dim * width), *bias = FALLOC(dim), *x = FALLOC(total * dim), *hist = FALLOC(batch * dim * k);
  mref_fill_randn(&rng, w, dim * width, 0.5);
  mref_fill_randn(&rng, bias, dim, 1.0);
  mref_fill_randn(&rng, x, total * dim, 1.0);
  mref_fill_randn(&rng, hist, batch * dim * k, 1.0);
  conv_in full = {dim, width, silu, w, bias, batch, len, x, hist};
  float *of = FALLOC(total * dim), *sf = FALLOC(batch * dim * k);
  conv_run(&full, 1, of, sf);

  mref_batch dense;
  mref_batch_init(&dense, batch, len, 0, 0);
  int32_t from0[3] = {0, 0, 0};
  float *xp = FALLOC(tp * dim), *op = FALLOC(tp * dim), *state = FALLOC(batch * dim * k);
  mref_slice(&dense, x, dim, from0, pre, xp);
  conv_in prefill = full;
  prefill.len = pre, prefill.x = xp;
  conv_run(&prefill, 0, op, state);

  const int64_t xbs = dim + 2, obs = dim + 1, sbs = dim * k + 1;
  float *xb = FALLOC(batch * xbs), *ob = FALLOC(batch * obs), *sb = FALLOC(batch * sbs);
  /* every step against the double reference of that step from the state the op
   * sees, in one norm at the end (a row of a few channels can cancel) */
  const int64_t no = steps * batch * dim, nh = steps * batch * dim * k;
  double *ro = DALLOC(no), *rs = DALLOC(nh);
  float *got = FALLOC(no), *hgot = FALLOC(nh);
  for (int64_t b = 0; b < batch; b++) memcpy(sb + b * sbs, state + b * dim * k, (size_t)(dim * k) * sizeof(float));
  for (int32_t j = 0; j < steps; j++) {
    mref_fill_nan(xb, batch * xbs);
    mref_fill_nan(ob, batch * obs);
    for (int64_t b = 0; b < batch; b++)
      memcpy(xb + b * xbs, x + (dense.dense_off[b] + pre[b] + j) * dim, (size_t)dim * sizeof(float));
    sf_conv1d_update_params u = {.dtype = SF_F32, .batch = batch, .dim = dim, .width = width, .silu = silu,
                                 .x = xb, .x_batch_stride = xbs, .weight = w, .bias = bias,
                                 .conv_state = sb, .state_batch_stride = sbs, .out = ob, .out_batch_stride = obs};
    sf_error err = {0};
    float *sb_before = FALLOC(batch * sbs);
    memcpy(sb_before, sb, (size_t)(batch * sbs) * sizeof(float));
    CHECK_MSG(ctx.ops->conv1d_update(&ctx, &u, &err) == SF_OK, "conv1d_update: %s", err.msg);
    for (int64_t b = 0; b < batch; b++) {
      const int64_t i = j * batch + b;
      ref_mamba_conv1d(1, dim, width, silu, xb + b * xbs, w, bias, sb_before + b * sbs, ro + i * dim, rs + i * dim * k);
      memcpy(got + i * dim, ob + b * obs, (size_t)dim * sizeof(float));
      memcpy(hgot + i * dim * k, sb + b * sbs, (size_t)(dim * k) * sizeof(float));
      CHECK(isnan(ob[b * obs + dim])); /* gap untouched */
      CHECK_MSG(same(ob + b * obs, of + (dense.dense_off[b] + pre[b] + j) * dim, dim),
                "conv1d_update w%d step %d seq %lld != prefill", width, j, (long long)b);
    }
    free(sb_before);
  }
  double e_ref = worst(mref_rel_err(got, ro, no), mref_rel_err(hgot, rs, nh));
  CHECK_MSG(e_ref <= TOL, "conv1d_update w%d vs double: %.3g", width, e_ref);
  max_err = worst(max_err, e_ref);
  for (int64_t b = 0; b < batch; b++)
    CHECK_MSG(same(sb + b * sbs, sf + b * dim * k, dim * k), "conv1d_update w%d final state", width);

  mref_batch_free(&dense);
  free(w), free(bias), free(x), free(hist), free(of), free(sf), free(xp), free(op), free(state);
  free(xb), free(ob), free(sb), free(ro), free(rs), free(got), free(hgot);
}

/* Mamba decode's in_proj with its conv update epilogue (sf_gemm_params
 * conv_update): c = a . w^T in full, and the conv's columns [col0, col0 +
 * dim) of c convolved with the carried state, against the double reference
 * (ref_gemm, then ref_mamba_conv1d of one token after the state). */
static void test_gemm_conv(int64_t m, int64_t n, int64_t k, int64_t col0, int64_t dim, int width) {
  const int64_t ldc = n + 3, sbs = dim * (width - 1) + 2, os = dim + 1, hk = width - 1;
  float *a = FALLOC(m * k), *w = FALLOC(n * k), *cw = FALLOC(dim * width), *cb = FALLOC(dim);
  float *c = FALLOC(m * ldc), *st = FALLOC(m * sbs), *out = FALLOC(m * os), *hist = FALLOC(dim * (hk ? hk : 1));
  double *rc = DALLOC(m * n), *ro = DALLOC(dim), *rs = DALLOC(dim * (hk ? hk : 1));
  float *x1 = FALLOC(dim);
  mref_fill_randn(&rng, a, m * k, 1.0), mref_fill_randn(&rng, w, n * k, 0.2);
  mref_fill_randn(&rng, cw, dim * width, 0.5), mref_fill_randn(&rng, cb, dim, 0.5);
  mref_fill_randn(&rng, st, m * sbs, 1.0);
  mref_fill_nan(c, m * ldc), mref_fill_nan(out, m * os);
  float *st0 = FALLOC(m * sbs);
  memcpy(st0, st, (size_t)(m * sbs) * sizeof(float));
  sf_conv1d_update_params cv = {.dtype = SF_F32, .batch = (int32_t)m, .dim = dim, .width = width, .silu = 1,
                                .x = c + col0, .x_batch_stride = ldc, .weight = cw, .bias = cb,
                                .conv_state = st, .state_batch_stride = sbs, .out = out, .out_batch_stride = os};
  sf_gemm_params g = {.dtype = SF_F32, .out_dtype = SF_F32, .m = m, .n = n, .k = k, .a = a, .lda = k, .w = w,
                      .ldw = k, .c = c, .ldc = ldc, .conv_update = &cv};
  sf_error err = {0};
  CHECK_MSG(ctx.ops->gemm(&ctx, &g, &err) == SF_OK, "gemm with conv update: %s", err.msg);
  ref_gemm(a, w, NULL, m, n, k, rc);
  double worst = 0.0;
  for (int64_t r = 0; r < m; r++) {
    float *got_c = FALLOC(n);
    memcpy(got_c, c + r * ldc, (size_t)n * sizeof(float));
    double *want_c = rc + r * n;
    /* the conv sees the product's columns as the op computed them */
    for (int64_t ch = 0; ch < dim; ch++) x1[ch] = got_c[col0 + ch];
    for (int64_t ch = 0; ch < dim; ch++)
      for (int j = 0; j < hk; j++) hist[ch * hk + j] = st0[r * sbs + ch * hk + j];
    ref_mamba_conv1d(1, dim, width, 1, x1, cw, cb, hk ? hist : NULL, ro, rs);
    double e = 0.0;
    for (int64_t j = 0; j < n; j++) e = fmax(e, fabs(got_c[j] - want_c[j]) / (1.0 + fabs(want_c[j])));
    for (int64_t ch = 0; ch < dim; ch++) e = fmax(e, fabs(out[r * os + ch] - ro[ch]) / (1.0 + fabs(ro[ch])));
    for (int64_t i = 0; i < dim * hk; i++) e = fmax(e, fabs(st[r * sbs + (i / hk) * hk + i % hk] - rs[i]));
    worst = fmax(worst, e);
    CHECK_EQ_I64(mref_count_nan(out + r * os, dim), 0);
    free(got_c);
  }
  CHECK_MSG(worst <= 1e-5, "gemm + conv update m %lld n %lld col0 %lld dim %lld w %d: err %.3g", (long long)m,
            (long long)n, (long long)col0, (long long)dim, width, worst);

  /* The view contract (ops/basic.h): x must be columns of c. */
  sf_conv1d_update_params bad = cv;
  bad.x = c + n - dim + 1; /* runs past column n */
  g.conv_update = &bad;
  sf_error_clear(&err);
  CHECK(ctx.ops->gemm(&ctx, &g, &err) == SF_ERR_ARG && strstr(err.msg, "columns of c"));
  bad = cv, bad.x_batch_stride = ldc + 1, sf_error_clear(&err);
  CHECK(ctx.ops->gemm(&ctx, &g, &err) == SF_ERR_ARG && strstr(err.msg, "columns of c"));
  bad = cv, g.accumulate = 1, sf_error_clear(&err);
  CHECK(ctx.ops->gemm(&ctx, &g, &err) == SF_ERR_ARG && strstr(err.msg, "accumulate"));
  free(a), free(w), free(cw), free(cb), free(c), free(st), free(st0), free(out), free(hist), free(rc), free(ro);
  free(rs), free(x1);
}

/* The status, and a one-line message naming the op and `key` (what is wrong). */
static void expect_fail(sf_status got, sf_status want, const sf_error *err, const char *what, const char *key) {
  CHECK_MSG(got == want, "%s: status %s, want %s", what, sf_status_name(got), sf_status_name(want));
  CHECK_MSG(err->msg[0] && strstr(err->msg, "conv1d") && strstr(err->msg, key) && !strchr(err->msg, '\n'),
            "%s: message '%s' (want '%s')", what, err->msg, key);
}

static void test_errors(void) {
  float x[16] = {0}, w[32] = {0}, st[256] = {0}, out[16];
  int64_t start[2] = {0, 2};
  int32_t len[2] = {2, 2}, badlen[2] = {2, 3};
  sf_conv1d_params ok = {.dtype = SF_F32, .dim = 2, .width = 3, .seqs = {2, 2, start, len}, .x = x,
                         .x_token_stride = 2, .weight = w, .conv_state = st, .state_batch_stride = 64,
                         .out = out, .out_token_stride = 2};
  sf_error err = {0};
  CHECK(ctx.ops->conv1d(&ctx, &ok, &err) == SF_OK);
  sf_conv1d_params p;
  p = ok, p.width = 0, sf_error_clear(&err);
  expect_fail(ctx.ops->conv1d(&ctx, &p, &err), SF_ERR_ARG, &err, "width 0", "width must be");
  p = ok, p.width = 9, sf_error_clear(&err);
  expect_fail(ctx.ops->conv1d(&ctx, &p, &err), SF_ERR_ARG, &err, "width 9", "width must be");
  p = ok, p.dim = 0, sf_error_clear(&err);
  expect_fail(ctx.ops->conv1d(&ctx, &p, &err), SF_ERR_ARG, &err, "dim 0", "dim");
  p = ok, p.dtype = SF_BF16, sf_error_clear(&err);
  expect_fail(ctx.ops->conv1d(&ctx, &p, &err), SF_ERR_UNSUPPORTED, &err, "bf16", "f32");
  p = ok, p.seqs.len = badlen, sf_error_clear(&err);
  expect_fail(ctx.ops->conv1d(&ctx, &p, &err), SF_ERR_ARG, &err, "len > max_len", "max_len");
  p = ok, p.x = NULL, sf_error_clear(&err);
  expect_fail(ctx.ops->conv1d(&ctx, &p, &err), SF_ERR_ARG, &err, "x NULL", "required");
  p = ok, p.conv_state = NULL, sf_error_clear(&err);
  expect_fail(ctx.ops->conv1d(&ctx, &p, &err), SF_ERR_ARG, &err, "conv_state NULL", "conv_state");
  p = ok, p.state_batch_stride = 3, sf_error_clear(&err);
  expect_fail(ctx.ops->conv1d(&ctx, &p, &err), SF_ERR_ARG, &err, "overlapping states", "overlap");

  sf_conv1d_update_params u = {.dtype = SF_F32, .batch = 2, .dim = 2, .width = 3, .x = x, .x_batch_stride = 2,
                               .weight = w, .conv_state = st, .state_batch_stride = 4, .out = out,
                               .out_batch_stride = 2};
  CHECK(ctx.ops->conv1d_update(&ctx, &u, &err) == SF_OK);
  sf_conv1d_update_params q;
  q = u, q.width = 0, sf_error_clear(&err);
  expect_fail(ctx.ops->conv1d_update(&ctx, &q, &err), SF_ERR_ARG, &err, "update width 0", "width");
  q = u, q.dtype = SF_F16, sf_error_clear(&err);
  expect_fail(ctx.ops->conv1d_update(&ctx, &q, &err), SF_ERR_UNSUPPORTED, &err, "update f16", "f32");
  q = u, q.batch = -1, sf_error_clear(&err);
  expect_fail(ctx.ops->conv1d_update(&ctx, &q, &err), SF_ERR_ARG, &err, "update batch -1", "batch");
}

int main(void) {
  rng.s = sf_test_seed();
  sf_error err = {0};
  REQUIRE(sf_cpu_ctx_init(&ctx, 0, &err) == SF_OK);
  for (int width = 1; width <= 4; width++)
    for (int v = 0; v < 4; v++)
      for (int init = 0; init < 2; init++) test_prefill(width, v & 1, v >> 1, init, 0);
  test_prefill(8, 1, 1, 1, 0);
  for (int width = 1; width <= 4; width++) test_update(width, width % 2, 0);
  /* wide enough for the ops to go multi-threaded (they stay serial below ~64K MACs) */
  test_prefill(4, 1, 1, 1, 400);
  test_update(4, 1, 8192);
  test_errors();
  test_gemm_conv(1, 64, 24, 0, 32, 4);  /* Mamba-1: x then z */
  test_gemm_conv(2, 90, 16, 20, 60, 4); /* Mamba-2: z, then xBC, then dt */
  test_gemm_conv(3, 10, 8, 3, 7, 1);    /* no state */
  printf("max rel err vs double: %.3g (tol %.0e)\n", max_err, TOL);
  sf_cpu_ctx_destroy(&ctx);
  return sf_test_finish("test_ops_mamba_conv");
}
