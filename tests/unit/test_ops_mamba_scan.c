/* cpu selective_scan (chunked), selective_scan_naive and
 * selective_state_update against the double reference: outputs and final
 * states, chunk sizes 1, a non-divisor of L, > L and the default; chunked ==
 * naive; padded == varlen == one sequence at a time (exact: the same
 * arithmetic); two calls carrying the state == one call; prefill then
 * token-by-token updates == a longer prefill; the update with dt_proj
 * fused == dt_proj then the update. Inputs are views into one fused row (as
 * the x_proj output is), outputs poisoned with NaN. */
#include "ops/op_table.h"
#include "ref/ref.h"
#include "test.h"
#include "unit/mamba_test_util.h"

static sf_op_ctx ctx;
static mref_rng rng;
/* fp32 vs double, relative L2: the recurrence is a contraction (decays < 1)
 * so errors stay at a few ulp per step (seen: below 2e-6 over 150 seeds). */
static const double TOL = 1e-5;
static double max_err_ref = 0.0, max_err_naive = 0.0, max_err_update = 0.0, max_err_split = 0.0;

typedef struct scan_in {
  int64_t dim, ds;
  const float *A, *D, *delta_bias; /* D, delta_bias may be NULL */
  int softplus;
  int32_t batch;
  const int32_t *len;
  const float *u, *delta, *B, *C, *z; /* dense [total][dim or ds]; z may be NULL */
  const float *h0;                    /* [batch][dim*ds] or NULL */
} scan_in;

static int g_inplace = 0; /* scan_run writes out over u */

/* Fused input row: [1 pad][u dim][delta dim][B ds][C ds][z dim][2 pad]. */
static sf_status scan_run(const scan_in *in, int naive, int32_t chunk, int padded, float *out, float *state) {
  mref_batch bt;
  mref_batch_init(&bt, in->batch, in->len, padded, (int64_t)(mref_next(&rng) % 3));
  const int64_t dim = in->dim, ds = in->ds, nb = in->batch;
  const int64_t cu = 1, cd = cu + dim, cB = cd + dim, cC = cB + ds, cz = cC + ds, rs = cz + dim + 2;
  const int64_t os = dim + 3, sbs = dim * ds + 2;
  float *row = FALLOC(bt.rows * rs), *obuf = FALLOC(bt.rows * os), *sbuf = FALLOC(nb * sbs);
  mref_fill_nan(row, bt.rows * rs);
  mref_fill_nan(obuf, bt.rows * os);
  mref_fill_nan(sbuf, nb * sbs);
  mref_scatter(&bt, in->u, dim, row, rs, cu);
  mref_scatter(&bt, in->delta, dim, row, rs, cd);
  mref_scatter(&bt, in->B, ds, row, rs, cB);
  mref_scatter(&bt, in->C, ds, row, rs, cC);
  if (in->z) mref_scatter(&bt, in->z, dim, row, rs, cz);
  if (in->h0)
    for (int64_t b = 0; b < nb; b++) memcpy(sbuf + b * sbs, in->h0 + b * dim * ds, (size_t)(dim * ds) * sizeof(float));
  sf_selective_scan_params p = {
      .dtype = SF_F32, .dim = dim, .d_state = (int32_t)ds, .chunk_size = chunk,
      .seqs = {in->batch, bt.max_len, bt.start, bt.len},
      .u = row + cu, .u_token_stride = rs, .delta = row + cd, .delta_token_stride = rs,
      .delta_bias = in->delta_bias, .delta_softplus = in->softplus, .A = in->A,
      .B = row + cB, .B_token_stride = rs, .C = row + cC, .C_token_stride = rs, .D = in->D,
      .z = in->z ? row + cz : NULL, .z_token_stride = rs,
      .state = sbuf, .state_batch_stride = sbs, .has_initial_state = in->h0 != NULL,
      .out = g_inplace ? row + cu : obuf + 2, .out_token_stride = g_inplace ? rs : os};
  sf_error err = {0};
  sf_status st = naive ? ctx.ops->selective_scan_naive(&ctx, &p, &err) : ctx.ops->selective_scan(&ctx, &p, &err);
  CHECK_MSG(st == SF_OK, "selective_scan: %s", err.msg);
  if (g_inplace) {
    mref_gather(&bt, row, rs, cu, dim, out);
  } else {
    CHECK_EQ_I64(mref_count_touched(&bt, obuf, os, 2, dim), 0);
    mref_gather(&bt, obuf, os, 2, dim, out);
  }
  for (int64_t b = 0; b < nb; b++) {
    memcpy(state + b * dim * ds, sbuf + b * sbs, (size_t)(dim * ds) * sizeof(float));
    for (int64_t i = dim * ds; i < sbs; i++) CHECK(isnan(sbuf[b * sbs + i]));
  }
  free(row), free(obuf), free(sbuf);
  mref_batch_free(&bt);
  return st;
}

static void scan_ref(const scan_in *in, double *out, double *state) {
  const int64_t dim = in->dim, ds = in->ds;
  int64_t off = 0;
  for (int32_t b = 0; b < in->batch; b++) {
    ref_mamba_selective_scan(in->len[b], dim, ds, in->u + off * dim, in->delta + off * dim, in->delta_bias,
                             in->softplus, in->A, in->B + off * ds, in->C + off * ds, in->D,
                             in->z ? in->z + off * dim : NULL, in->h0 ? in->h0 + b * dim * ds : NULL,
                             out + off * dim, state + b * dim * ds);
    off += in->len[b];
  }
}

/* Random problem data; flags: 1 D, 2 z, 4 delta_bias, 8 softplus, 16 initial state. */
typedef struct scan_data {
  float *A, *D, *bias, *u, *delta, *B, *C, *z, *h0;
} scan_data;

static void scan_data_make(scan_data *d, scan_in *in, int64_t dim, int64_t ds, int32_t batch, const int32_t *len,
                           int flags) {
  const int64_t total = total_of(batch, len);
  d->A = FALLOC(dim * ds), d->D = FALLOC(dim), d->bias = FALLOC(dim);
  d->u = FALLOC(total * dim), d->delta = FALLOC(total * dim), d->z = FALLOC(total * dim);
  d->B = FALLOC(total * ds), d->C = FALLOC(total * ds), d->h0 = FALLOC(batch * dim * ds);
  for (int64_t i = 0; i < dim * ds; i++) d->A[i] = (float)-exp(mref_randn(&rng));
  mref_fill_randn(&rng, d->D, dim, 1.0);
  mref_fill_randn(&rng, d->u, total * dim, 1.0);
  mref_fill_randn(&rng, d->z, total * dim, 1.0);
  mref_fill_randn(&rng, d->B, total * ds, 1.0);
  mref_fill_randn(&rng, d->C, total * ds, 1.0);
  mref_fill_randn(&rng, d->h0, batch * dim * ds, 1.0);
  if (flags & 8) { /* pre-softplus dt around -4..0, a bias of a few tenths */
    mref_fill_uniform(&rng, d->delta, total * dim, -4.0, 0.0);
    mref_fill_randn(&rng, d->bias, dim, 0.3);
  } else { /* dt used as is: keep it positive */
    mref_fill_uniform(&rng, d->delta, total * dim, 0.001, 0.6);
    mref_fill_uniform(&rng, d->bias, dim, 0.0, 0.1);
  }
  scan_in s = {dim, ds, d->A, (flags & 1) ? d->D : NULL, (flags & 4) ? d->bias : NULL, (flags & 8) != 0,
               batch, len, d->u, d->delta, d->B, d->C, (flags & 2) ? d->z : NULL, (flags & 16) ? d->h0 : NULL};
  *in = s;
}

static void scan_data_free(scan_data *d) {
  free(d->A), free(d->D), free(d->bias), free(d->u), free(d->delta), free(d->B), free(d->C), free(d->z), free(d->h0);
}

static void test_prefill(int64_t dim, int64_t ds, int flags) {
  const int32_t batch = 4;
  int32_t len[4] = {30 + (int32_t)(mref_next(&rng) % 61), 0, 1, (int32_t)(mref_next(&rng) % 21)};
  const int64_t total = total_of(batch, len), no = total * dim, ns = batch * dim * ds;
  scan_data d;
  scan_in in;
  scan_data_make(&d, &in, dim, ds, batch, len, flags);
  double *ro = DALLOC(no), *rs = DALLOC(ns);
  scan_ref(&in, ro, rs);

  float *on = FALLOC(no), *sn = FALLOC(ns), *oc = FALLOC(no), *sc = FALLOC(ns), *o2 = FALLOC(no), *s2 = FALLOC(ns);
  scan_run(&in, 1, 0, 1, on, sn);
  double eo = mref_rel_err(on, ro, no), es = mref_rel_err(sn, rs, ns);
  max_err_ref = worst(max_err_ref, worst(eo, es));
  CHECK_MSG(eo <= TOL && es <= TOL, "naive dim %lld ds %lld flags %d: out %.3g state %.3g", (long long)dim,
            (long long)ds, flags, eo, es);
  CHECK_EQ_I64(mref_count_nan(on, no), 0);

  const int32_t chunks[5] = {1, 7, 16, len[0] + 5, 0}; /* 7: not a divisor of len[0] unless by chance */
  for (int i = 0; i < 5; i++) {
    scan_run(&in, 0, chunks[i], 1, oc, sc);
    eo = mref_rel_err(oc, ro, no), es = mref_rel_err(sc, rs, ns);
    max_err_ref = worst(max_err_ref, worst(eo, es));
    CHECK_MSG(eo <= TOL && es <= TOL, "chunked %d dim %lld ds %lld flags %d: out %.3g state %.3g", chunks[i],
              (long long)dim, (long long)ds, flags, eo, es);
    eo = mref_rel_err_f(oc, on, no), es = mref_rel_err_f(sc, sn, ns);
    max_err_naive = worst(max_err_naive, worst(eo, es));
    CHECK_MSG(eo <= TOL && es <= TOL, "chunked %d vs naive: out %.3g state %.3g", chunks[i], eo, es);
  }

  /* out may alias u (same rows), for both forms */
  for (int naive = 0; naive < 2; naive++) {
    scan_run(&in, naive, 7, 1, oc, sc);
    g_inplace = 1;
    scan_run(&in, naive, 7, 1, o2, s2);
    g_inplace = 0;
    CHECK_MSG(same(oc, o2, no) && same(sc, s2, ns), "scan naive=%d: in place != out of place", naive);
  }

  /* padded == varlen == one sequence at a time, for both forms */
  for (int naive = 0; naive < 2; naive++) {
    scan_run(&in, naive, 7, 1, oc, sc);
    scan_run(&in, naive, 7, 0, o2, s2);
    CHECK_MSG(same(oc, o2, no) && same(sc, s2, ns), "scan naive=%d: varlen != padded", naive);
    int64_t off = 0;
    for (int32_t b = 0; b < batch; b++) {
      scan_in one = in;
      one.batch = 1, one.len = &len[b];
      one.u = in.u + off * dim, one.delta = in.delta + off * dim, one.z = in.z ? in.z + off * dim : NULL;
      one.B = in.B + off * ds, one.C = in.C + off * ds, one.h0 = in.h0 ? in.h0 + b * dim * ds : NULL;
      scan_run(&one, naive, 7, b % 2, o2, s2);
      CHECK_MSG(same(o2, oc + off * dim, len[b] * dim) && same(s2, sc + b * dim * ds, dim * ds),
                "scan naive=%d: seq %d alone != batch", naive, b);
      off += len[b];
    }
  }

  /* two calls carrying the state == one call (chunk boundaries move: tolerance for
   * the chunked form, exact for the naive one) */
  {
    int32_t from0[4] = {0}, n1[4], n2[4];
    for (int32_t b = 0; b < batch; b++) {
      n1[b] = (int32_t)(mref_next(&rng) % (uint64_t)(len[b] + 1));
      n2[b] = len[b] - n1[b];
    }
    const int64_t t1 = total_of(batch, n1), t2 = total_of(batch, n2);
    mref_batch dense;
    mref_batch_init(&dense, batch, len, 0, 0);
    float *parts[2][6];
    const int32_t *cnt[2] = {n1, n2}, *from[2] = {from0, n1};
    const int64_t tt[2] = {t1, t2};
    for (int k = 0; k < 2; k++) {
      float *const srcs[6] = {(float *)in.u, (float *)in.delta, d.z, (float *)in.B, (float *)in.C, NULL};
      for (int j = 0; j < 5; j++) {
        int64_t w = j < 3 ? dim : ds;
        parts[k][j] = FALLOC(tt[k] * w);
        mref_slice(&dense, srcs[j], w, from[k], cnt[k], parts[k][j]);
      }
      parts[k][5] = FALLOC(tt[k] * dim); /* expected output slice */
    }
    for (int naive = 0; naive < 2; naive++) {
      float *full_o = FALLOC(no), *full_s = FALLOC(ns), *po[2], *ps = FALLOC(ns), *ps2 = FALLOC(ns);
      scan_run(&in, naive, 5, 1, full_o, full_s);
      for (int k = 0; k < 2; k++) {
        scan_in c = in;
        c.len = cnt[k], c.u = parts[k][0], c.delta = parts[k][1], c.z = in.z ? parts[k][2] : NULL;
        c.B = parts[k][3], c.C = parts[k][4];
        if (k == 1) c.h0 = ps;
        po[k] = FALLOC(tt[k] * dim);
        scan_run(&c, naive, 5, k, po[k], k == 0 ? ps : ps2);
        mref_slice(&dense, full_o, dim, from[k], cnt[k], parts[k][5]);
      }
      if (naive) {
        CHECK_MSG(same(po[0], parts[0][5], t1 * dim) && same(po[1], parts[1][5], t2 * dim) && same(ps2, full_s, ns),
                  "naive scan: two calls != one call");
      } else {
        double e = worst(worst(mref_rel_err_f(po[0], parts[0][5], t1 * dim), mref_rel_err_f(po[1], parts[1][5], t2 * dim)),
                         mref_rel_err_f(ps2, full_s, ns));
        max_err_split = worst(max_err_split, e);
        CHECK_MSG(e <= TOL, "chunked scan: two calls vs one call %.3g", e);
      }
      free(full_o), free(full_s), free(po[0]), free(po[1]), free(ps), free(ps2);
    }
    for (int k = 0; k < 2; k++)
      for (int j = 0; j < 6; j++) free(parts[k][j]);
    mref_batch_free(&dense);
  }

  free(ro), free(rs), free(on), free(sn), free(oc), free(sc), free(o2), free(s2);
  scan_data_free(&d);
}

/* Chunked prefill of L-k tokens then k selective_state_update steps ==
 * chunked prefill of L tokens; each step also against the double reference. */
static void test_update(int64_t dim, int64_t ds, int flags) {
  const int32_t batch = 3, steps = 5;
  int32_t len[3] = {steps, steps + 1, steps + 2 + (int32_t)(mref_next(&rng) % 40)}, pre[3], from0[3] = {0};
  for (int b = 0; b < batch; b++) pre[b] = len[b] - steps;
  const int64_t total = total_of(batch, len), tp = total_of(batch, pre), ns = batch * dim * ds;
  scan_data d;
  scan_in in;
  scan_data_make(&d, &in, dim, ds, batch, len, flags);
  float *of = FALLOC(total * dim), *sfull = FALLOC(ns);
  scan_run(&in, 0, 16, 1, of, sfull);

  mref_batch dense;
  mref_batch_init(&dense, batch, len, 0, 0);
  scan_in pin = in;
  float *pu = FALLOC(tp * dim), *pd = FALLOC(tp * dim), *pz = FALLOC(tp * dim), *pB = FALLOC(tp * ds),
        *pC = FALLOC(tp * ds), *po = FALLOC(tp * dim), *state = FALLOC(ns);
  mref_slice(&dense, in.u, dim, from0, pre, pu);
  mref_slice(&dense, in.delta, dim, from0, pre, pd);
  mref_slice(&dense, d.z, dim, from0, pre, pz);
  mref_slice(&dense, in.B, ds, from0, pre, pB);
  mref_slice(&dense, in.C, ds, from0, pre, pC);
  pin.len = pre, pin.u = pu, pin.delta = pd, pin.z = in.z ? pz : NULL, pin.B = pB, pin.C = pC;
  scan_run(&pin, 0, 16, 0, po, state);

  /* decode rows: [x dim][dt dim][B ds][C ds][z dim][1 pad] per batch row */
  const int64_t cx = 0, cdt = dim, cB = 2 * dim, cC = cB + ds, cz = cC + ds, rs = cz + dim + 1;
  const int64_t obs = dim + 2, sbs = dim * ds + 3;
  float *row = FALLOC(batch * rs), *ob = FALLOC(batch * obs), *sb = FALLOC(batch * sbs), *before = FALLOC(batch * sbs);
  /* every step's outputs and states, compared at the end in one norm (a
   * single row of a few channels can cancel to almost nothing) */
  const int64_t no = steps * batch * dim, nh = steps * batch * dim * ds;
  float *got = FALLOC(no), *want = FALLOC(no), *hgot = FALLOC(nh);
  double *ro = DALLOC(no), *rh = DALLOC(nh);
  mref_fill_nan(sb, batch * sbs);
  for (int64_t b = 0; b < batch; b++) memcpy(sb + b * sbs, state + b * dim * ds, (size_t)(dim * ds) * sizeof(float));
  for (int32_t j = 0; j < steps; j++) {
    mref_fill_nan(row, batch * rs);
    mref_fill_nan(ob, batch * obs);
    for (int64_t b = 0; b < batch; b++) {
      int64_t t = dense.dense_off[b] + pre[b] + j;
      memcpy(row + b * rs + cx, in.u + t * dim, (size_t)dim * sizeof(float));
      memcpy(row + b * rs + cdt, in.delta + t * dim, (size_t)dim * sizeof(float));
      memcpy(row + b * rs + cB, in.B + t * ds, (size_t)ds * sizeof(float));
      memcpy(row + b * rs + cC, in.C + t * ds, (size_t)ds * sizeof(float));
      memcpy(row + b * rs + cz, d.z + t * dim, (size_t)dim * sizeof(float));
      memcpy(want + (j * batch + b) * dim, of + t * dim, (size_t)dim * sizeof(float));
    }
    memcpy(before, sb, (size_t)(batch * sbs) * sizeof(float));
    sf_selective_state_update_params u = {
        .dtype = SF_F32, .batch = batch, .dim = dim, .d_state = (int32_t)ds,
        .x = row + cx, .x_batch_stride = rs, .dt = row + cdt, .dt_batch_stride = rs,
        .dt_bias = in.delta_bias, .dt_softplus = in.softplus, .A = in.A,
        .B = row + cB, .B_batch_stride = rs, .C = row + cC, .C_batch_stride = rs, .D = in.D,
        .z = in.z ? row + cz : NULL, .z_batch_stride = rs, .state = sb, .state_batch_stride = sbs,
        .out = ob + 1, .out_batch_stride = obs};
    sf_error err = {0};
    CHECK_MSG(ctx.ops->selective_state_update(&ctx, &u, &err) == SF_OK, "selective_state_update: %s", err.msg);
    for (int64_t b = 0; b < batch; b++) {
      const float *r = row + b * rs;
      ref_mamba_selective_state_update(dim, ds, r + cx, r + cdt, in.delta_bias, in.softplus, in.A, r + cB, r + cC,
                                       in.D, in.z ? r + cz : NULL, before + b * sbs, ro + (j * batch + b) * dim,
                                       rh + (j * batch + b) * dim * ds);
      memcpy(hgot + (j * batch + b) * dim * ds, sb + b * sbs, (size_t)(dim * ds) * sizeof(float));
      CHECK(isnan(ob[b * obs]) && isnan(ob[b * obs + dim + 1]) && isnan(sb[b * sbs + dim * ds]));
      memcpy(got + (j * batch + b) * dim, ob + b * obs + 1, (size_t)dim * sizeof(float));
    }
  }
  double e_ref = worst(mref_rel_err(got, ro, no), mref_rel_err(hgot, rh, nh));
  double e_pre = mref_rel_err_f(got, want, no);
  float *sgot = FALLOC(ns);
  for (int64_t b = 0; b < batch; b++) memcpy(sgot + b * dim * ds, sb + b * sbs, (size_t)(dim * ds) * sizeof(float));
  e_pre = worst(e_pre, mref_rel_err_f(sgot, sfull, ns));
  max_err_update = worst(max_err_update, worst(e_ref, e_pre));
  CHECK_MSG(e_ref <= TOL, "selective_state_update vs double: %.3g", e_ref);
  CHECK_MSG(e_pre <= TOL, "prefill + updates vs longer prefill: %.3g", e_pre);

  mref_batch_free(&dense);
  free(of), free(sfull), free(pu), free(pd), free(pz), free(pB), free(pC), free(po), free(state);
  free(row), free(ob), free(sb), free(before), free(got), free(want), free(hgot), free(ro), free(rh), free(sgot);
  scan_data_free(&d);
}

/* The fused dt_proj (dt_proj_w set): dt points at dt_low, the first R
 * columns of an x_proj-like row [dt_low R][B ds][C ds][1 pad] that also
 * holds B and C; against the unfused definition in double: delta =
 * dt_proj_w . dt_low (ref_gemm) rounded to the dtype (f32, the only one
 * the cpu backend computes in), then the reference update. */
static void test_update_dt_proj(int64_t dim, int64_t ds, int64_t R, int32_t batch) {
  int32_t len[3] = {1, 1, 1};
  REQUIRE(batch <= 3);
  scan_data d;
  scan_in in;
  scan_data_make(&d, &in, dim, ds, batch, len, 31); /* delta unused: dt comes from dt_low */
  const int64_t rs = R + 2 * ds + 1, obs = dim + 2, sbs = dim * ds + 3, no = batch * dim, nh = batch * dim * ds;
  float *W = FALLOC(dim * R), *row = FALLOC(batch * rs), *ob = FALLOC(batch * obs), *sb = FALLOC(batch * sbs);
  float *got = FALLOC(no), *hgot = FALLOC(nh), *delta = FALLOC(dim);
  double *dd = DALLOC(dim), *ro = DALLOC(no), *rh = DALLOC(nh);
  mref_fill_randn(&rng, W, dim * R, 1.0 / sqrt((double)R)); /* raw dt ~ N(0, 1) */
  mref_fill_nan(row, batch * rs), mref_fill_nan(ob, batch * obs), mref_fill_nan(sb, batch * sbs);
  for (int64_t b = 0; b < batch; b++) {
    mref_fill_randn(&rng, row + b * rs, R, 1.0);
    memcpy(row + b * rs + R, in.B + b * ds, (size_t)ds * sizeof(float));
    memcpy(row + b * rs + R + ds, in.C + b * ds, (size_t)ds * sizeof(float));
    memcpy(sb + b * sbs, in.h0 + b * dim * ds, (size_t)(dim * ds) * sizeof(float));
  }
  sf_selective_state_update_params u = {
      .dtype = SF_F32, .batch = batch, .dim = dim, .d_state = (int32_t)ds,
      .x = in.u, .x_batch_stride = dim, .dt = row, .dt_batch_stride = rs,
      .dt_bias = in.delta_bias, .dt_softplus = in.softplus, .A = in.A,
      .B = row + R, .B_batch_stride = rs, .C = row + R + ds, .C_batch_stride = rs, .D = in.D,
      .z = in.z, .z_batch_stride = dim, .state = sb, .state_batch_stride = sbs,
      .out = ob + 1, .out_batch_stride = obs, .dt_proj_w = W, .dt_rank = (int32_t)R};
  sf_error err = {0};
  CHECK_MSG(ctx.ops->selective_state_update(&ctx, &u, &err) == SF_OK, "fused dt_proj: %s", err.msg);
  for (int64_t b = 0; b < batch; b++) {
    const float *r = row + b * rs;
    ref_gemm(r, W, NULL, 1, dim, R, dd);
    for (int64_t c = 0; c < dim; c++) delta[c] = (float)dd[c]; /* the dt_proj GEMM's output in the dtype */
    ref_mamba_selective_state_update(dim, ds, in.u + b * dim, delta, in.delta_bias, in.softplus, in.A, r + R,
                                     r + R + ds, in.D, in.z + b * dim, in.h0 + b * dim * ds, ro + b * dim,
                                     rh + b * dim * ds);
    CHECK(isnan(ob[b * obs]) && isnan(ob[b * obs + dim + 1]) && isnan(sb[b * sbs + dim * ds]));
    memcpy(got + b * dim, ob + b * obs + 1, (size_t)dim * sizeof(float));
    memcpy(hgot + b * dim * ds, sb + b * sbs, (size_t)(dim * ds) * sizeof(float));
  }
  const double e = worst(mref_rel_err(got, ro, no), mref_rel_err(hgot, rh, nh));
  max_err_update = worst(max_err_update, e);
  CHECK_MSG(e <= TOL, "fused dt_proj dim %lld ds %lld R %lld batch %d vs double: %.3g", (long long)dim, (long long)ds,
            (long long)R, batch, e);
  free(W), free(row), free(ob), free(sb), free(got), free(hgot), free(delta), free(dd), free(ro), free(rh);
  scan_data_free(&d);
}

/* The status, and a one-line message naming the op and `key` (what is wrong). */
static void expect_fail(sf_status got, sf_status want, const sf_error *err, const char *op, const char *what,
                        const char *key) {
  CHECK_MSG(got == want, "%s: status %s, want %s", what, sf_status_name(got), sf_status_name(want));
  CHECK_MSG(err->msg[0] && strstr(err->msg, op) && strstr(err->msg, key) && !strchr(err->msg, '\n'),
            "%s: message '%s' (want '%s')", what, err->msg, key);
}

static void test_errors(void) {
  float buf[64] = {0}, st[64] = {0}, out[64];
  int64_t start[2] = {0, 2};
  int32_t len[2] = {2, 2}, neg[2] = {2, -1};
  sf_selective_scan_params ok = {.dtype = SF_F32, .dim = 2, .d_state = 2, .seqs = {2, 2, start, len},
                                 .u = buf, .u_token_stride = 2, .delta = buf, .delta_token_stride = 2,
                                 .A = buf, .B = buf, .B_token_stride = 2, .C = buf, .C_token_stride = 2,
                                 .state = st, .state_batch_stride = 4, .out = out, .out_token_stride = 2};
  sf_error err = {0};
  CHECK(ctx.ops->selective_scan(&ctx, &ok, &err) == SF_OK);
  CHECK(ctx.ops->selective_scan_naive(&ctx, &ok, &err) == SF_OK);
  for (int naive = 0; naive < 2; naive++) {
    sf_status (*f)(sf_op_ctx *, const sf_selective_scan_params *, sf_error *) =
        naive ? ctx.ops->selective_scan_naive : ctx.ops->selective_scan;
    const char *op = naive ? "selective_scan_naive" : "selective_scan";
    sf_selective_scan_params p;
    p = ok, p.d_state = 0, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "d_state 0", "d_state");
    p = ok, p.dim = 0, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "dim 0", "dim");
    p = ok, p.chunk_size = -1, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "chunk -1", "chunk_size");
    p = ok, p.dtype = SF_BF16, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_UNSUPPORTED, &err, op, "bf16", "f32");
    p = ok, p.seqs.len = neg, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "negative len", "len[");
    p = ok, p.B = NULL, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "B NULL", "required");
    p = ok, p.state_batch_stride = 3, sf_error_clear(&err);
    expect_fail(f(&ctx, &p, &err), SF_ERR_ARG, &err, op, "overlapping states", "overlap");
  }
  sf_selective_state_update_params u = {.dtype = SF_F32, .batch = 2, .dim = 2, .d_state = 2, .x = buf,
                                        .x_batch_stride = 2, .dt = buf, .dt_batch_stride = 2, .A = buf,
                                        .B = buf, .B_batch_stride = 2, .C = buf, .C_batch_stride = 2,
                                        .state = st, .state_batch_stride = 4, .out = out, .out_batch_stride = 2};
  CHECK(ctx.ops->selective_state_update(&ctx, &u, &err) == SF_OK);
  sf_selective_state_update_params q;
  q = u, q.d_state = 0, sf_error_clear(&err);
  expect_fail(ctx.ops->selective_state_update(&ctx, &q, &err), SF_ERR_ARG, &err, "selective_state_update", "d_state 0", "d_state");
  q = u, q.dtype = SF_F16, sf_error_clear(&err);
  expect_fail(ctx.ops->selective_state_update(&ctx, &q, &err), SF_ERR_UNSUPPORTED, &err, "selective_state_update", "f16", "f32");
  q = u, q.state = NULL, sf_error_clear(&err);
  expect_fail(ctx.ops->selective_state_update(&ctx, &q, &err), SF_ERR_ARG, &err, "selective_state_update", "state NULL", "required");
  q = u, q.dt_proj_w = buf, q.dt_rank = 2;
  CHECK(ctx.ops->selective_state_update(&ctx, &q, &err) == SF_OK);
  q.dt_rank = 0, sf_error_clear(&err);
  expect_fail(ctx.ops->selective_state_update(&ctx, &q, &err), SF_ERR_ARG, &err, "selective_state_update", "dt_rank 0", "dt_rank");
  q.dt_rank = 2, q.dtype = SF_BF16, sf_error_clear(&err);
  expect_fail(ctx.ops->selective_state_update(&ctx, &q, &err), SF_ERR_UNSUPPORTED, &err, "selective_state_update", "fused bf16", "f32");
}

int main(void) {
  rng.s = sf_test_seed();
  sf_error err = {0};
  REQUIRE(sf_cpu_ctx_init(&ctx, 0, &err) == SF_OK);
  /* every flag combination at a small width, then the model-like d_state 16 */
  for (int flags = 0; flags < 32; flags++) test_prefill(1 + (int64_t)(mref_next(&rng) % 5), 1 + (int64_t)(mref_next(&rng) % 6), flags);
  test_prefill(24, 16, 31);
  test_prefill(8, 16, 8 | 16);
  for (int flags = 0; flags < 32; flags += 3) test_update(1 + (int64_t)(mref_next(&rng) % 9), 1 + (int64_t)(mref_next(&rng) % 16), flags);
  test_update(16, 16, 31);
  test_update(2048, 16, 31); /* wide enough to go multi-threaded (serial below ~64K MACs) */
  for (int i = 0; i < 8; i++) /* dt_rank 5, 16; d_state 16, 5 (no multiple of 4); batch 1, 3 */
    test_update_dt_proj(1 + (int64_t)(mref_next(&rng) % 40), i & 1 ? 5 : 16, i & 2 ? 16 : 5, i & 4 ? 3 : 1);
  test_update_dt_proj(2048, 16, 16, 3); /* multi-threaded */
  test_errors();
  printf("max rel err: vs double %.3g, chunked vs naive %.3g, two calls vs one %.3g, updates %.3g (tol %.0e)\n",
         max_err_ref, max_err_naive, max_err_split, max_err_update, TOL);
  sf_cpu_ctx_destroy(&ctx);
  return sf_test_finish("test_ops_mamba_scan");
}
