/* Mamba-2 SSD as the plain sequential recurrence, fp32 reference (the
 * baseline the chunked form is checked against). Per sequence b, head h
 * (group g = h / (n_heads/n_groups)), channel p, state n, token by token:
 *   dt        = clamp(softplus?(dt[t,h] + dt_bias[h]), dt_min, dt_max)
 *   S[h,p,n]  = exp(dt * A[h]) * S[h,p,n] + dt * B[t,g,n] * x[t,h,p]
 *   y[t,h,p]  = sum_n C[t,g,n] S[h,p,n] + D[h] x[t,h,p];  y *= silu(z) if z
 * Parallel over (sequence, head); S lives in the state buffer throughout.
 * A token's inputs are read before its output is written, so out may alias
 * x (same token stride). */
#include <math.h>

#include "cpu_ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static inline float softplus_f(float v) { return v > 20.0f ? v : log1pf(expf(v)); }
static inline float silu_f(float v) { return v / (1.0f + expf(-v)); }

/* Threads for about `work` multiply-adds: one below ~64K (a fork/join costs
 * more than it saves there), else ctx->num_threads or the OpenMP default. */
static int num_threads(const sf_op_ctx *ctx, double work) {
#ifdef _OPENMP
  if (work < 65536.0) return 1;
  return ctx && ctx->num_threads > 0 ? ctx->num_threads : omp_get_max_threads();
#else
  (void)ctx, (void)work;
  return 1;
#endif
}

static sf_status check_seqs(const char *op, const sf_seqs *s, sf_error *err) {
  if (s->batch < 0) return sf_fail(err, SF_ERR_ARG, "%s: seqs.batch must be >= 0, got %d", op, s->batch);
  if (s->max_len < 0)
    return sf_fail(err, SF_ERR_ARG, "%s: seqs.max_len must be >= 0, got %lld", op, (long long)s->max_len);
  if (s->batch > 0 && (!s->start || !s->len))
    return sf_fail(err, SF_ERR_ARG, "%s: seqs.start and seqs.len are required", op);
  for (int32_t b = 0; b < s->batch; b++) {
    if (s->len[b] < 0 || s->len[b] > s->max_len)
      return sf_fail(err, SF_ERR_ARG, "%s: seqs.len[%d] = %d is outside [0, max_len = %lld]", op, b,
                     s->len[b], (long long)s->max_len);
    if (s->start[b] < 0)
      return sf_fail(err, SF_ERR_ARG, "%s: seqs.start[%d] = %lld is negative", op, b, (long long)s->start[b]);
  }
  return SF_OK;
}

static sf_status check_params(const sf_ssd_params *p, sf_error *err) {
  const char *op = "ssd_naive";
  if (p->n_heads < 1 || p->head_dim < 1 || p->n_groups < 1 || p->d_state < 1)
    return sf_fail(err, SF_ERR_ARG, "%s: n_heads %d, head_dim %d, n_groups %d, d_state %d must all be >= 1", op,
                   p->n_heads, p->head_dim, p->n_groups, p->d_state);
  if (p->n_heads % p->n_groups)
    return sf_fail(err, SF_ERR_ARG, "%s: n_heads %d is not a multiple of n_groups %d", op, p->n_heads,
                   p->n_groups);
  if (p->chunk_size < 0) /* unused by the recurrence, checked for a common contract */
    return sf_fail(err, SF_ERR_ARG, "%s: chunk_size must be >= 1 (0 = default), got %d", op, p->chunk_size);
  if (!(p->dt_min <= p->dt_max))
    return sf_fail(err, SF_ERR_ARG, "%s: dt_min %g > dt_max %g", op, (double)p->dt_min, (double)p->dt_max);
  SF_TRY(check_seqs(op, &p->seqs, err));
  if (p->seqs.batch > 0 && (!p->x || !p->dt || !p->A || !p->B || !p->C || !p->state || !p->out))
    return sf_fail(err, SF_ERR_ARG, "%s: x, dt, A, B, C, state and out are required", op);
  const int64_t per_seq = (int64_t)p->n_heads * p->head_dim * p->d_state;
  if (p->seqs.batch > 1 && p->state_batch_stride < per_seq)
    return sf_fail(err, SF_ERR_ARG, "%s: state_batch_stride %lld < n_heads * head_dim * d_state = %lld (states overlap)",
                   op, (long long)p->state_batch_stride, (long long)per_seq);
  return SF_OK;
}

SF_CPU_OP(ssd_naive, sf_ssd_params) {
  SF_CPU_REQUIRE_F32("ssd_naive", p->dtype);
  SF_TRY(check_params(p, err));
  const int32_t batch = p->seqs.batch, heads = p->n_heads;
  const int64_t P = p->head_dim, N = p->d_state;
  const int32_t heads_per_group = p->n_heads / p->n_groups;
  const float *X = p->x, *DT = p->dt, *Bm = p->B, *Cm = p->C, *Z = p->z;
  float *out = p->out;
  const int nt = num_threads(ctx, (double)batch * heads * (double)p->seqs.max_len * (double)P * (double)N);

#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(nt)
  for (int32_t b = 0; b < batch; b++) {
    for (int32_t h = 0; h < heads; h++) {
      const int64_t g = h / heads_per_group;
      const float A = p->A[h], D = p->D ? p->D[h] : 0.0f, bias = p->dt_bias ? p->dt_bias[h] : 0.0f;
      float *S = p->state + (int64_t)b * p->state_batch_stride + (int64_t)h * P * N;
      if (!p->has_initial_state)
        for (int64_t i = 0; i < P * N; i++) S[i] = 0.0f;
      const int64_t t0 = p->seqs.start[b], len = p->seqs.len[b];
      for (int64_t t = 0; t < len; t++) {
        const int64_t row = t0 + t;
        float dt = DT[row * p->dt_token_stride + h] + bias;
        if (p->dt_softplus) dt = softplus_f(dt);
        dt = fminf(fmaxf(dt, p->dt_min), p->dt_max);
        const float da = expf(dt * A);
        const float *B = Bm + row * p->B_token_stride + g * N;
        const float *C = Cm + row * p->C_token_stride + g * N;
        const float *x = X + row * p->x_token_stride + (int64_t)h * P;
        const float *z = Z ? Z + row * p->z_token_stride + (int64_t)h * P : NULL;
        float *o = out + row * p->out_token_stride + (int64_t)h * P;
        for (int64_t i = 0; i < P; i++) {
          const float xi = x[i], dtx = dt * xi;
          float *Si = S + i * N;
          float y = 0.0f;
          for (int64_t n = 0; n < N; n++) {
            Si[n] = da * Si[n] + dtx * B[n];
            y += C[n] * Si[n];
          }
          y += D * xi;
          if (z) y *= silu_f(z[i]);
          o[i] = y;
        }
      }
    }
  }
  return SF_OK;
}
