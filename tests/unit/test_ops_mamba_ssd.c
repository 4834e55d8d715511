/* cpu ssd (chunked, state-space dual), ssd_naive (sequential recurrence) and
 * ssd_update against the double reference: outputs and final states for
 * chunk sizes 1, 7, 64, 256 and the default with lengths that are not
 * multiples, n_groups 1 and 2, head_dim 64 and small odd ones, d_state 16
 * and 128; chunked == naive; padded == varlen == one sequence at a time
 * (exact); two calls carrying the state == one call; prefill then
 * token-by-token updates == a longer prefill; D, z, dt_bias, softplus,
 * initial state and the dt clamp on and off. Inputs are views into one fused
 * row laid out like Mamba-2's in_proj output ([z, x, B, C, dt]). */
#include "ops/op_table.h"
#include "ref/ref.h"
#include "test.h"
#include "unit/mamba_test_util.h"

static sf_op_ctx ctx;
static mref_rng rng;
/* fp32 vs double, relative L2 (seen: below 1e-6 over 150 seeds). */
static const double TOL = 1e-5;
static double max_err_ref = 0.0, max_err_naive = 0.0, max_err_update = 0.0, max_err_split = 0.0;

typedef struct ssd_shape { int64_t H, P, G, N; } ssd_shape;

typedef struct ssd_in {
  ssd_shape s;
  const float *A, *D, *dt_bias; /* D, dt_bias may be NULL */
  int softplus;
  float dt_min, dt_max;
  int32_t batch;
  const int32_t *len;
  const float *x, *z, *dt, *B, *C; /* dense [total][H*P | H*P | H | G*N | G*N]; z may be NULL */
  const float *S0;                 /* [batch][H*P*N] or NULL */
} ssd_in;

enum { NT = 5 }; /* token tensors: x, z, dt, B, C */
static void widths(const ssd_shape *s, int64_t w[NT]) {
  w[0] = s->H * s->P, w[1] = s->H * s->P, w[2] = s->H, w[3] = s->G * s->N, w[4] = s->G * s->N;
}
static int64_t state_size(const ssd_shape *s) { return s->H * s->P * s->N; }

static int g_inplace = 0; /* ssd_run writes out over x (ssd_naive only) */

/* Fused row: [1 pad][z HP][x HP][B GN][C GN][dt H][2 pad]; out rows [2 pad][HP][1 pad]. */
static sf_status ssd_run(const ssd_in *in, int naive, int32_t chunk, int padded, float *out, float *state) {
  mref_batch bt;
  mref_batch_init(&bt, in->batch, in->len, padded, (int64_t)(mref_next(&rng) % 3));
  const ssd_shape *s = &in->s;
  const int64_t HP = s->H * s->P, GN = s->G * s->N, ss = state_size(s), nb = in->batch;
  const int64_t cz = 1, cx = cz + HP, cB = cx + HP, cC = cB + GN, cdt = cC + GN, rs = cdt + s->H + 2;
  const int64_t os = HP + 3, sbs = ss + 3;
  float *row = FALLOC(bt.rows * rs), *obuf = FALLOC(bt.rows * os), *sbuf = FALLOC(nb * sbs);
  mref_fill_nan(row, bt.rows * rs);
  mref_fill_nan(obuf, bt.rows * os);
  mref_fill_nan(sbuf, nb * sbs);
  mref_scatter(&bt, in->x, HP, row, rs, cx);
  if (in->z) mref_scatter(&bt, in->z, HP, row, rs, cz);
  mref_scatter(&bt, in->B, GN, row, rs, cB);
  mref_scatter(&bt, in->C, GN, row, rs, cC);
  mref_scatter(&bt, in->dt, s->H, row, rs, cdt);
  if (in->S0)
    for (int64_t b = 0; b < nb; b++) memcpy(sbuf + b * sbs, in->S0 + b * ss, (size_t)ss * sizeof(float));
  sf_ssd_params p = {
      .dtype = SF_F32, .n_heads = (int32_t)s->H, .head_dim = (int32_t)s->P, .n_groups = (int32_t)s->G,
      .d_state = (int32_t)s->N, .chunk_size = chunk, .seqs = {in->batch, bt.max_len, bt.start, bt.len},
      .x = row + cx, .x_token_stride = rs, .dt = row + cdt, .dt_token_stride = rs, .dt_bias = in->dt_bias,
      .dt_softplus = in->softplus, .dt_min = in->dt_min, .dt_max = in->dt_max, .A = in->A,
      .B = row + cB, .B_token_stride = rs, .C = row + cC, .C_token_stride = rs, .D = in->D,
      .z = in->z ? row + cz : NULL, .z_token_stride = rs, .state = sbuf, .state_batch_stride = sbs,
      .has_initial_state = in->S0 != NULL, .out = g_inplace ? row + cx : obuf + 2,
      .out_token_stride = g_inplace ? rs : os};
  sf_error err = {0};
  sf_status st = naive ? ctx.ops->ssd_naive(&ctx, &p, &err) : ctx.ops->ssd(&ctx, &p, &err);
  CHECK_MSG(st == SF_OK, "ssd: %s", err.msg);
  if (g_inplace) {
    mref_gather(&bt, row, rs, cx, HP, out);
  } else {
    CHECK_EQ_I64(mref_count_touched(&bt, obuf, os, 2, HP), 0);
    mref_gather(&bt, obuf, os, 2, HP, out);
  }
  for (int64_t b = 0; b < nb; b++) {
    memcpy(state + b * ss, sbuf + b * sbs, (size_t)ss * sizeof(float));
    for (int64_t i = ss; i < sbs; i++) CHECK(isnan(sbuf[b * sbs + i]));
  }
  free(row), free(obuf), free(sbuf);
  mref_batch_free(&bt);
  return st;
}

static void ssd_ref(const ssd_in *in, double *out, double *state) {
  const ssd_shape *s = &in->s;
  int64_t w[NT], off = 0;
  widths(s, w);
  for (int32_t b = 0; b < in->batch; b++) {
    ref_mamba_ssd(in->len[b], s->H, s->P, s->G, s->N, in->x + off * w[0], in->dt + off * w[2], in->dt_bias,
                  in->softplus, in->dt_min, in->dt_max, in->A, in->B + off * w[3], in->C + off * w[4], in->D,
                  in->z ? in->z + off * w[1] : NULL, in->S0 ? in->S0 + b * state_size(s) : NULL,
                  out + off * w[0], state + b * state_size(s));
    off += in->len[b];
  }
}

/* Random data; flags: 1 D, 2 z, 4 dt_bias, 8 softplus, 16 initial state, 32 dt clamp. */
typedef struct ssd_data {
  float *A, *D, *bias, *tok[NT], *S0;
} ssd_data;

static void ssd_data_make(ssd_data *d, ssd_in *in, ssd_shape s, int32_t batch, const int32_t *len, int flags) {
  const int64_t total = total_of(batch, len);
  int64_t w[NT];
  widths(&s, w);
  d->A = FALLOC(s.H), d->D = FALLOC(s.H), d->bias = FALLOC(s.H), d->S0 = FALLOC(batch * state_size(&s));
  for (int k = 0; k < NT; k++) d->tok[k] = FALLOC(total * w[k]);
  for (int64_t h = 0; h < s.H; h++) d->A[h] = (float)-exp(mref_randn(&rng));
  mref_fill_randn(&rng, d->D, s.H, 1.0);
  mref_fill_randn(&rng, d->S0, batch * state_size(&s), 1.0);
  mref_fill_randn(&rng, d->tok[0], total * w[0], 1.0); /* x */
  mref_fill_randn(&rng, d->tok[1], total * w[1], 1.0); /* z */
  mref_fill_randn(&rng, d->tok[3], total * w[3], 1.0); /* B */
  mref_fill_randn(&rng, d->tok[4], total * w[4], 1.0); /* C */
  if (flags & 8) {
    mref_fill_uniform(&rng, d->tok[2], total * w[2], -4.0, 0.0);
    mref_fill_randn(&rng, d->bias, s.H, 0.3);
  } else {
    mref_fill_uniform(&rng, d->tok[2], total * w[2], 0.001, 0.6);
    mref_fill_uniform(&rng, d->bias, s.H, 0.0, 0.1);
  }
  ssd_in v = {s, d->A, (flags & 1) ? d->D : NULL, (flags & 4) ? d->bias : NULL, (flags & 8) != 0,
              (flags & 32) ? 0.05f : 0.0f, (flags & 32) ? 0.4f : INFINITY, batch, len, d->tok[0],
              (flags & 2) ? d->tok[1] : NULL, d->tok[2], d->tok[3], d->tok[4], (flags & 16) ? d->S0 : NULL};
  *in = v;
}

static void ssd_data_free(ssd_data *d) {
  free(d->A), free(d->D), free(d->bias), free(d->S0);
  for (int k = 0; k < NT; k++) free(d->tok[k]);
}

/* Packs token ranges of every token tensor (see mref_slice); z follows in. */
static void slice_in(const ssd_in *in, const ssd_data *d, const int32_t *from, const int32_t *count, float *dst[NT],
                     ssd_in *out) {
  mref_batch dense;
  mref_batch_init(&dense, in->batch, in->len, 0, 0);
  int64_t w[NT];
  widths(&in->s, w);
  const int64_t t = total_of(in->batch, count);
  for (int k = 0; k < NT; k++) {
    dst[k] = FALLOC(t * w[k]);
    mref_slice(&dense, d->tok[k], w[k], from, count, dst[k]);
  }
  *out = *in;
  out->len = count, out->x = dst[0], out->z = in->z ? dst[1] : NULL, out->dt = dst[2], out->B = dst[3], out->C = dst[4];
  mref_batch_free(&dense);
}

static void test_prefill(ssd_shape s, int32_t batch, const int32_t *len, int flags, int layouts) {
  const int64_t total = total_of(batch, len), HP = s.H * s.P, no = total * HP, ns = batch * state_size(&s);
  ssd_data d;
  ssd_in in;
  ssd_data_make(&d, &in, s, batch, len, flags);
  double *ro = DALLOC(no), *rs = DALLOC(ns);
  ssd_ref(&in, ro, rs);
  float *on = FALLOC(no), *sn = FALLOC(ns), *oc = FALLOC(no), *sc = FALLOC(ns), *o2 = FALLOC(no), *s2 = FALLOC(ns);
  ssd_run(&in, 1, 0, 1, on, sn);
  double eo = mref_rel_err(on, ro, no), es = mref_rel_err(sn, rs, ns);
  max_err_ref = worst(max_err_ref, worst(eo, es));
  CHECK_MSG(eo <= TOL && es <= TOL, "ssd_naive H%lld P%lld G%lld N%lld flags %d: out %.3g state %.3g", (long long)s.H,
            (long long)s.P, (long long)s.G, (long long)s.N, flags, eo, es);
  CHECK_EQ_I64(mref_count_nan(on, no), 0);
  const int32_t chunks[5] = {1, 7, 64, 256, 0};
  for (int i = 0; i < 5; i++) {
    ssd_run(&in, 0, chunks[i], 1, oc, sc);
    eo = mref_rel_err(oc, ro, no), es = mref_rel_err(sc, rs, ns);
    max_err_ref = worst(max_err_ref, worst(eo, es));
    CHECK_MSG(eo <= TOL && es <= TOL, "ssd chunk %d H%lld P%lld G%lld N%lld flags %d: out %.3g state %.3g", chunks[i],
              (long long)s.H, (long long)s.P, (long long)s.G, (long long)s.N, flags, eo, es);
    eo = mref_rel_err_f(oc, on, no), es = mref_rel_err_f(sc, sn, ns);
    max_err_naive = worst(max_err_naive, worst(eo, es));
    CHECK_MSG(eo <= TOL && es <= TOL, "ssd chunk %d vs naive: out %.3g state %.3g", chunks[i], eo, es);
  }
  if (!layouts) goto done;

  /* ssd_naive: out may alias x (same rows) */
  ssd_run(&in, 1, 0, 1, oc, sc);
  g_inplace = 1;
  ssd_run(&in, 1, 0, 1, o2, s2);
  g_inplace = 0;
  CHECK_MSG(same(oc, o2, no) && same(sc, s2, ns), "ssd_naive: in place != out of place");

  /* padded == varlen == one sequence at a time (exact) */
  for (int naive = 0; naive < 2; naive++) {
    ssd_run(&in, naive, 7, 1, oc, sc);
    ssd_run(&in, naive, 7, 0, o2, s2);
    CHECK_MSG(same(oc, o2, no) && same(sc, s2, ns), "ssd naive=%d: varlen != padded", naive);
    int64_t off = 0;
    for (int32_t b = 0; b < batch; b++) {
      int32_t from[8] = {0}, cnt[8] = {0};
      from[b] = 0, cnt[b] = len[b];
      float *part[NT];
      ssd_in one;
      slice_in(&in, &d, from, cnt, part, &one);
      one.batch = 1, one.len = &len[b], one.S0 = in.S0 ? in.S0 + b * state_size(&s) : NULL;
      /* slice_in packed only sequence b (the others have count 0) */
      ssd_run(&one, naive, 7, b % 2, o2, s2);
      CHECK_MSG(same(o2, oc + off * HP, len[b] * HP) && same(s2, sc + b * state_size(&s), state_size(&s)),
                "ssd naive=%d: seq %d alone != batch", naive, b);
      for (int k = 0; k < NT; k++) free(part[k]);
      off += len[b];
    }
  }

  /* two calls carrying the state == one call */
  {
    int32_t from0[8] = {0}, n1[8], n2[8];
    for (int32_t b = 0; b < batch; b++) {
      n1[b] = (int32_t)(mref_next(&rng) % (uint64_t)(len[b] + 1));
      n2[b] = len[b] - n1[b];
    }
    const int64_t t1 = total_of(batch, n1), t2 = total_of(batch, n2);
    mref_batch dense;
    mref_batch_init(&dense, batch, len, 0, 0);
    float *p1[NT], *p2[NT];
    ssd_in c1, c2;
    slice_in(&in, &d, from0, n1, p1, &c1);
    slice_in(&in, &d, n1, n2, p2, &c2);
    float *o1 = FALLOC(t1 * HP), *s1 = FALLOC(ns), *oo2 = FALLOC(t2 * HP), *ss2 = FALLOC(ns);
    float *e1 = FALLOC(t1 * HP), *e2 = FALLOC(t2 * HP);
    for (int naive = 0; naive < 2; naive++) {
      const int32_t chunk = naive ? 0 : 7;
      ssd_run(&in, naive, chunk, 1, oc, sc);
      ssd_run(&c1, naive, chunk, 1, o1, s1);
      c2.S0 = s1;
      ssd_run(&c2, naive, chunk, 0, oo2, ss2);
      mref_slice(&dense, oc, HP, from0, n1, e1);
      mref_slice(&dense, oc, HP, n1, n2, e2);
      if (naive) {
        CHECK_MSG(same(o1, e1, t1 * HP) && same(oo2, e2, t2 * HP) && same(ss2, sc, ns), "ssd_naive: two calls != one");
      } else {
        double e = worst(worst(mref_rel_err_f(o1, e1, t1 * HP), mref_rel_err_f(oo2, e2, t2 * HP)),
                         mref_rel_err_f(ss2, sc, ns));
        max_err_split = worst(max_err_split, e);
        CHECK_MSG(e <= TOL, "ssd: two calls vs one %.3g", e);
      }
    }
    for (int k = 0; k < NT; k++) free(p1[k]), free(p2[k]);
    free(o1), free(s1), free(oo2), free(ss2), free(e1), free(e2);
    mref_batch_free(&dense);
  }
done:
  free(ro), free(rs), free(on), free(sn), free(oc), free(sc), free(o2), free(s2);
  ssd_data_free(&d);
}

/* Chunked prefill of L-k tokens then k ssd_update steps == chunked prefill of L. */
static void test_update(ssd_shape s, int flags) {
  const int32_t batch = 3, steps = 5;
  int32_t len[3] = {steps, steps + 1, steps + 2 + (int32_t)(mref_next(&rng) % 60)}, pre[3], from0[3] = {0};
  for (int b = 0; b < batch; b++) pre[b] = len[b] - steps;
  const int64_t HP = s.H * s.P, GN = s.G * s.N, ss = state_size(&s), ns = batch * ss;
  const int64_t total = total_of(batch, len);
  ssd_data d;
  ssd_in in;
  ssd_data_make(&d, &in, s, batch, len, flags);
  float *of = FALLOC(total * HP), *sfull = FALLOC(ns);
  ssd_run(&in, 0, 16, 1, of, sfull);
  float *pp[NT];
  ssd_in pin;
  slice_in(&in, &d, from0, pre, pp, &pin);
  float *po = FALLOC(total_of(batch, pre) * HP), *state = FALLOC(ns);
  ssd_run(&pin, 0, 16, 0, po, state);

  mref_batch dense;
  mref_batch_init(&dense, batch, len, 0, 0);
  /* decode rows [z HP][x HP][B GN][C GN][dt H][1 pad] */
  const int64_t cz = 0, cx = HP, cB = 2 * HP, cC = cB + GN, cdt = cC + GN, rs = cdt + s.H + 1;
  const int64_t obs = HP + 2, sbs = ss + 1;
  float *row = FALLOC(batch * rs), *ob = FALLOC(batch * obs), *sb = FALLOC(batch * sbs), *before = FALLOC(batch * sbs);
  /* every step's outputs and states, compared at the end in one norm */
  const int64_t no = steps * batch * HP, nh = steps * batch * ss;
  float *got = FALLOC(no), *want = FALLOC(no), *sgot = FALLOC(ns), *hgot = FALLOC(nh);
  double *ro = DALLOC(no), *rh = DALLOC(nh);
  mref_fill_nan(sb, batch * sbs);
  for (int64_t b = 0; b < batch; b++) memcpy(sb + b * sbs, state + b * ss, (size_t)ss * sizeof(float));
  for (int32_t j = 0; j < steps; j++) {
    mref_fill_nan(row, batch * rs);
    mref_fill_nan(ob, batch * obs);
    for (int64_t b = 0; b < batch; b++) {
      int64_t t = dense.dense_off[b] + pre[b] + j;
      memcpy(row + b * rs + cz, d.tok[1] + t * HP, (size_t)HP * sizeof(float));
      memcpy(row + b * rs + cx, d.tok[0] + t * HP, (size_t)HP * sizeof(float));
      memcpy(row + b * rs + cB, d.tok[3] + t * GN, (size_t)GN * sizeof(float));
      memcpy(row + b * rs + cC, d.tok[4] + t * GN, (size_t)GN * sizeof(float));
      memcpy(row + b * rs + cdt, d.tok[2] + t * s.H, (size_t)s.H * sizeof(float));
      memcpy(want + (j * batch + b) * HP, of + t * HP, (size_t)HP * sizeof(float));
    }
    memcpy(before, sb, (size_t)(batch * sbs) * sizeof(float));
    sf_ssd_update_params u = {
        .dtype = SF_F32, .batch = batch, .n_heads = (int32_t)s.H, .head_dim = (int32_t)s.P, .n_groups = (int32_t)s.G,
        .d_state = (int32_t)s.N, .x = row + cx, .x_batch_stride = rs, .dt = row + cdt, .dt_batch_stride = rs,
        .dt_bias = in.dt_bias, .dt_softplus = in.softplus, .dt_min = in.dt_min, .dt_max = in.dt_max, .A = in.A,
        .B = row + cB, .B_batch_stride = rs, .C = row + cC, .C_batch_stride = rs, .D = in.D,
        .z = in.z ? row + cz : NULL, .z_batch_stride = rs, .state = sb, .state_batch_stride = sbs,
        .out = ob + 1, .out_batch_stride = obs};
    sf_error err = {0};
    CHECK_MSG(ctx.ops->ssd_update(&ctx, &u, &err) == SF_OK, "ssd_update: %s", err.msg);
    for (int64_t b = 0; b < batch; b++) {
      const float *r = row + b * rs;
      ref_mamba_ssd_update(s.H, s.P, s.G, s.N, r + cx, r + cdt, in.dt_bias, in.softplus, in.dt_min, in.dt_max, in.A,
                           r + cB, r + cC, in.D, in.z ? r + cz : NULL, before + b * sbs, ro + (j * batch + b) * HP,
                           rh + (j * batch + b) * ss);
      memcpy(hgot + (j * batch + b) * ss, sb + b * sbs, (size_t)ss * sizeof(float));
      CHECK(isnan(ob[b * obs]) && isnan(ob[b * obs + HP + 1]) && isnan(sb[b * sbs + ss]));
      memcpy(got + (j * batch + b) * HP, ob + b * obs + 1, (size_t)HP * sizeof(float));
    }
  }
  double e_ref = worst(mref_rel_err(got, ro, no), mref_rel_err(hgot, rh, nh));
  double e_pre = mref_rel_err_f(got, want, no);
  for (int64_t b = 0; b < batch; b++) memcpy(sgot + b * ss, sb + b * sbs, (size_t)ss * sizeof(float));
  e_pre = worst(e_pre, mref_rel_err_f(sgot, sfull, ns));
  max_err_update = worst(max_err_update, worst(e_ref, e_pre));
  CHECK_MSG(e_ref <= TOL, "ssd_update vs double: %.3g", e_ref);
  CHECK_MSG(e_pre <= TOL, "ssd prefill + updates vs longer prefill: %.3g", e_pre);

  mref_batch_free(&dense);
  for (int k = 0; k < NT; k++) free(pp[k]);
  free(of), free(sfull), free(po), free(state), free(row), free(ob), free(sb), free(before), free(got), free(want);
  free(sgot), free(hgot), free(ro), free(rh);
  ssd_data_free(&d);
}

/* The status, and a one-line message naming the op and `key` (what is wrong). */
static void expect_fail(sf_status got, sf_status want, const sf_error *err, const char *op, const char *what,
                        const char *key) {
  CHECK_MSG(got == want, "%s: status %s, want %s", what, sf_status_name(got), sf_status_name(want));
  CHECK_MSG(err->msg[0] && strstr(err->msg, op) && strstr(err->msg, key) && !strchr(err->msg, '\n'),
            "%s: message '%s' (want '%s')", what, err->msg, key);
}

static void test_errors(void) {
  float buf[256] = {0}, st[256] = {0}, out[256];
  int64_t start[2] = {0, 2};
  int32_t len[2] = {2, 2}, big[2] = {3, 2};
  /* 2 heads, head_dim 2, 2 groups, d_state 2; rows of 16 */
  sf_ssd_params ok = {.dtype = SF_F32, .n_heads = 2, .head_dim = 2, .n_groups = 2, .d_state = 2,
                      .seqs = {2, 2, start, len}, .x = buf, .x_token_stride = 16, .dt = buf, .dt_token_stride = 16,
                      .dt_max = INFINITY, .A = buf, .B = buf, .B_token_stride = 16, .C = buf, .C_token_stride = 16,
                      .state = st, .state_batch_stride = 8, .out = out, .out_token_stride = 16};
  sf_error err = {0};
  CHECK(ctx.ops->ssd(&ctx, &ok, &err) == SF_OK);
  CHECK(ctx.ops->ssd_naive(&ctx, &ok, &err) == SF_OK);
  for (int naive = 0; naive < 2; naive++) {
    sf_status (*f)(sf_op_ctx *, const sf_ssd_params *, sf_error *) = naive ? ctx.ops->ssd_naive : ctx.ops->ssd;
    const char *op = naive ? "ssd_naive" : "ssd";
    sf_ssd_params p;
    p = ok, p.n_heads = 3, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "n_heads % n_groups", "multiple of n_groups");
    p = ok, p.d_state = 0, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "d_state 0", "d_state");
    p = ok, p.head_dim = 0, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "head_dim 0", "head_dim");
    p = ok, p.chunk_size = -4, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "chunk -4", "chunk_size");
    p = ok, p.dt_min = 1.0f, p.dt_max = 0.5f, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "dt_min > dt_max", "dt_min");
    p = ok, p.dtype = SF_BF16, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_UNSUPPORTED, &err, op, "bf16", "f32");
    p = ok, p.seqs.len = big, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "len > max_len", "max_len");
    p = ok, p.C = NULL, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "C NULL", "required");
    p = ok, p.state_batch_stride = 7, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "overlapping states", "overlap");
  }
  sf_ssd_update_params u = {.dtype = SF_F32, .batch = 2, .n_heads = 2, .head_dim = 2, .n_groups = 2, .d_state = 2,
                            .x = buf, .x_batch_stride = 16, .dt = buf, .dt_batch_stride = 16, .dt_max = INFINITY,
                            .A = buf, .B = buf, .B_batch_stride = 16, .C = buf, .C_batch_stride = 16, .state = st,
                            .state_batch_stride = 8, .out = out, .out_batch_stride = 16};
  CHECK(ctx.ops->ssd_update(&ctx, &u, &err) == SF_OK);
  sf_ssd_update_params q;
  q = u, q.n_groups = 3, sf_error_clear(&err);
  expect_fail(ctx.ops->ssd_update(&ctx, &q, &err), SF_ERR_ARG, &err, "ssd_update", "n_heads % n_groups", "multiple of n_groups");
  q = u, q.dtype = SF_F16, sf_error_clear(&err);
  expect_fail(ctx.ops->ssd_update(&ctx, &q, &err), SF_ERR_UNSUPPORTED, &err, "ssd_update", "f16", "f32");
  q = u, q.dt_min = NAN, sf_error_clear(&err);
  expect_fail(ctx.ops->ssd_update(&ctx, &q, &err), SF_ERR_ARG, &err, "ssd_update", "dt_min NaN", "dt_min");
}

int main(void) {
  rng.s = sf_test_seed();
  sf_error err = {0};
  REQUIRE(sf_cpu_ctx_init(&ctx, 0, &err) == SF_OK);
  /* every flag combination on a small odd shape with 2 groups */
  for (int flags = 0; flags < 64; flags++) {
    int32_t len[3] = {20 + (int32_t)(mref_next(&rng) % 60), 0, 1 + (int32_t)(mref_next(&rng) % 9)};
    test_prefill((ssd_shape){4, 3, 2, 5}, 3, len, flags, flags % 4 == 0);
  }
  /* model-like shapes: head_dim 64, d_state 16 / 128, lengths past a 256 chunk */
  {
    int32_t len[4] = {300, 0, 1, 45};
    test_prefill((ssd_shape){2, 64, 1, 16}, 4, len, 1 | 2 | 4 | 8 | 16, 1);
  }
  {
    int32_t len[2] = {261, 9};
    test_prefill((ssd_shape){1, 64, 1, 128}, 2, len, 1 | 8 | 16 | 32, 1);
  }
  {
    int32_t len[2] = {140, 70};
    test_prefill((ssd_shape){4, 5, 2, 128}, 2, len, 1 | 2 | 8 | 16, 1);
    test_prefill((ssd_shape){2, 1, 2, 16}, 2, len, 8 | 16, 1);
  }
  for (int flags = 0; flags < 64; flags += 7) test_update((ssd_shape){4, 3, 2, 5}, flags);
  test_update((ssd_shape){4, 64, 1, 128}, 1 | 2 | 4 | 8 | 16 | 32); /* multi-threaded */
  test_update((ssd_shape){4, 5, 2, 16}, 1 | 8 | 16);
  test_errors();
  printf("max rel err: vs double %.3g, chunked vs naive %.3g, two calls vs one %.3g, updates %.3g (tol %.0e)\n",
         max_err_ref, max_err_naive, max_err_split, max_err_update, TOL);
  sf_cpu_ctx_destroy(&ctx);
  return sf_test_finish("test_ops_mamba_ssd");
}
