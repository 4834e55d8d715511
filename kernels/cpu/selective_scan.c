/* Mamba-1 selective scan, fp32 reference (the semantics of
 * selective_scan_ref): per sequence b, channel c and state n
 *   dt      = delta[t,c] + delta_bias[c]   (softplus, threshold 20, if asked)
 *   h[c,n]  = exp(dt * A[c,n]) * h[c,n] + dt * B[t,n] * u[t,c]
 *   y[t,c]  = sum_n C[t,n] h[c,n] + D[c] u[t,c];   y *= silu(z[t,c]) if z
 *
 * Two forms, parallel over (sequence, channel):
 * - sf_cpu_selective_scan (chunked): the structure of the GPU kernel. The
 *   sequence is cut into chunks of chunk_size tokens (0 = 2048). Inside a
 *   chunk each state element is scanned from zero as the composition of the
 *   affine steps h -> a*h + b, i.e. (P_t, Q_t) with P_t = prod a and Q_t the
 *   zero-start scan; the state carried in from the previous chunk enters only
 *   as h_t = P_t * h_carry + Q_t, and the chunk hands P_end*h_carry + Q_end on.
 * - sf_cpu_selective_scan_naive: the plain sequential recurrence (the
 *   "standard implementation" baseline).
 * Every token of a channel is read before that token's output is written,
 * so out may alias u (same token stride). */
#include <math.h>
#include <stdlib.h>

#include "cpu_common.h"


enum { SCAN_DEFAULT_CHUNK = 2048 };


static sf_status check_params(const char *op, const sf_selective_scan_params *p, sf_error *err) {
  if (p->dim < 1) return sf_fail(err, SF_ERR_ARG, "%s: dim must be >= 1, got %lld", op, (long long)p->dim);
  if (p->d_state < 1) return sf_fail(err, SF_ERR_ARG, "%s: d_state must be >= 1, got %d", op, p->d_state);
  if (p->chunk_size < 0)
    return sf_fail(err, SF_ERR_ARG, "%s: chunk_size must be >= 1 (0 = default), got %d", op, p->chunk_size);
  SF_TRY(sf_cpu_check_seqs(op, &p->seqs, err));
  if (p->seqs.batch > 0 && (!p->u || !p->delta || !p->A || !p->B || !p->C || !p->state || !p->out))
    return sf_fail(err, SF_ERR_ARG, "%s: u, delta, A, B, C, state and out are required", op);
  if (p->seqs.batch > 1 && p->state_batch_stride < p->dim * p->d_state)
    return sf_fail(err, SF_ERR_ARG, "%s: state_batch_stride %lld < dim * d_state = %lld (states overlap)", op,
                   (long long)p->state_batch_stride, (long long)(p->dim * p->d_state));
  return SF_OK;
}

/* What one token contributes, shared by both forms. */
typedef struct scan_token {
  float dt, u;
  const float *B, *C;
} scan_token;

static inline scan_token load_token(const sf_selective_scan_params *p, int64_t row, int64_t c) {
  scan_token k;
  const float *u = p->u, *delta = p->delta, *B = p->B, *C = p->C;
  k.u = u[row * p->u_token_stride + c];
  float dt = delta[row * p->delta_token_stride + c] + (p->delta_bias ? p->delta_bias[c] : 0.0f);
  k.dt = p->delta_softplus ? sf_softplus_f(dt) : dt;
  k.B = B + row * p->B_token_stride;
  k.C = C + row * p->C_token_stride;
  return k;
}

static inline void store_output(const sf_selective_scan_params *p, int64_t row, int64_t c, float u, float y) {
  if (p->D) y += p->D[c] * u;
  if (p->z) y *= sf_silu_f(((const float *)p->z)[row * p->z_token_stride + c]);
  ((float *)p->out)[row * p->out_token_stride + c] = y;
}

/* Sequential recurrence over h[0..d_state) of channel c of sequence b. */
static void scan_naive_channel(const sf_selective_scan_params *p, int32_t b, int64_t c, float *h) {
  const int64_t ds = p->d_state;
  const float *A = p->A + c * ds;
  const int64_t t0 = p->seqs.start[b], len = p->seqs.len[b];
  for (int64_t t = 0; t < len; t++) {
    const int64_t row = t0 + t;
    scan_token k = load_token(p, row, c);
    const float dtu = k.dt * k.u;
    float y = 0.0f;
    for (int64_t n = 0; n < ds; n++) {
      h[n] = expf(k.dt * A[n]) * h[n] + dtu * k.B[n];
      y += k.C[n] * h[n];
    }
    store_output(p, row, c, k.u, y);
  }
}

/* Chunked form: h holds the carried state; P, Q are d_state scratch. */
static void scan_chunked_channel(const sf_selective_scan_params *p, int64_t chunk, int32_t b, int64_t c,
                                 float *h, float *P, float *Q) {
  const int64_t ds = p->d_state;
  const float *A = p->A + c * ds;
  const int64_t t0 = p->seqs.start[b], len = p->seqs.len[b];
  for (int64_t c0 = 0; c0 < len; c0 += chunk) {
    const int64_t n_tok = len - c0 < chunk ? len - c0 : chunk;
    for (int64_t n = 0; n < ds; n++) P[n] = 1.0f, Q[n] = 0.0f;
    for (int64_t t = 0; t < n_tok; t++) {
      const int64_t row = t0 + c0 + t;
      scan_token k = load_token(p, row, c);
      const float dtu = k.dt * k.u;
      float y = 0.0f;
      for (int64_t n = 0; n < ds; n++) {
        const float a = expf(k.dt * A[n]);
        P[n] *= a;                          /* transition from the chunk start */
        Q[n] = a * Q[n] + dtu * k.B[n];     /* scan from a zero state */
        y += k.C[n] * (P[n] * h[n] + Q[n]); /* prefix from the previous chunks */
      }
      store_output(p, row, c, k.u, y);
    }
    for (int64_t n = 0; n < ds; n++) h[n] = P[n] * h[n] + Q[n];
  }
}

static sf_status run_scan(sf_op_ctx *ctx, const sf_selective_scan_params *p, int chunked, const char *op,
                          sf_error *err) {
  SF_CPU_REQUIRE_F32(op, p->dtype);
  SF_TRY(check_params(op, p, err));
  const int32_t batch = p->seqs.batch;
  if (batch == 0) return SF_OK;
  const int64_t dim = p->dim, ds = p->d_state;
  const int64_t chunk = p->chunk_size > 0 ? p->chunk_size : SCAN_DEFAULT_CHUNK;
  const int nt = sf_cpu_threads(ctx, (double)batch * (double)p->seqs.max_len * (double)dim * (double)ds);
  const int64_t per_thread = 2 * ds; /* P, Q */
  float *scratch = NULL;
  if (chunked) {
    scratch = malloc((size_t)nt * (size_t)per_thread * sizeof(float));
    if (!scratch) return sf_fail(err, SF_ERR_NOMEM, "%s: cannot allocate %d x %lld floats of scratch", op, nt,
                                 (long long)per_thread);
  }

#pragma omp parallel num_threads(nt)
  {
    float *P = chunked ? scratch + (int64_t)sf_cpu_thread_id() * per_thread : NULL;
    float *Q = chunked ? P + ds : NULL;
#pragma omp for collapse(2) schedule(dynamic, 16)
    for (int32_t b = 0; b < batch; b++) {
      for (int64_t c = 0; c < dim; c++) {
        float *h = p->state + (int64_t)b * p->state_batch_stride + c * ds;
        if (!p->has_initial_state)
          for (int64_t n = 0; n < ds; n++) h[n] = 0.0f;
        if (chunked) scan_chunked_channel(p, chunk, b, c, h, P, Q);
        else scan_naive_channel(p, b, c, h);
      }
    }
  }
  free(scratch);
  return SF_OK;
}

SF_CPU_OP(selective_scan, sf_selective_scan_params) { return run_scan(ctx, p, 1, "selective_scan", err); }

SF_CPU_OP(selective_scan_naive, sf_selective_scan_params) {
  return run_scan(ctx, p, 0, "selective_scan_naive", err);
}
