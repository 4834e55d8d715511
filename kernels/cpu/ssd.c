/* Mamba-2 SSD, chunked (state-space dual) form, fp32 reference: the
 * algorithm of the Mamba-2 paper / mamba_ssm's ssd_combined, computed per
 * (sequence, head) in parallel. For head h, group g = h / (n_heads/n_groups),
 * a chunk of Q tokens [c0, c0+Q) and the state S0 [head_dim, d_state] at the
 * chunk start:
 *
 *  1. dt_s = clamp(softplus?(dt[s,h] + dt_bias[h]), dt_min, dt_max) and
 *     a_s = dt_s * A[h]; cum_l = a_c0 + ... + a_l (the dA cumulative sum).
 *  2. Intra-chunk (diagonal block), the masked "attention-like" form
 *     Y_diag = (C Bᵀ ∘ L) (dt ∘ X), L[l,s] = exp(cum_l - cum_s) for s <= l,
 *     0 above the diagonal. The segment sum cum_l - cum_s = a_{s+1}+...+a_l is
 *     accumulated directly (the stable segsum), not as a difference of
 *     cumulative sums.
 *  3. Inter-chunk (off-diagonal) output: Y_off[l] = exp(cum_l) C_l · S0.
 *  4. Chunk state: S_end = exp(cum_last) S0 + sum_s exp(cum_last - cum_s)
 *     dt_s x_s B_sᵀ, the decay to chunk end again a direct (suffix) sum.
 *  5. State passing: chunks run in order, S_end is the next chunk's S0; the
 *     first S0 is the initial state (or zero), the last S_end is written back.
 *  y = Y_diag + Y_off + D[h] x, then y *= silu(z) when z is given.
 * chunk_size 0 means 256. out must not alias x (the intra-chunk form reads
 * earlier tokens of the chunk after their outputs are written). */
#include <math.h>
#include <stdlib.h>

#include "cpu_common.h"


enum { SSD_DEFAULT_CHUNK = 256 };


/* Per-thread scratch for one chunk of Q tokens. */
typedef struct ssd_scratch {
  float *dt;   /* [Q] clamped dt */
  float *a;    /* [Q] dt * A */
  float *cum;  /* [Q] inclusive cumulative sum of a */
  float *tail; /* [Q] a_{s+1} + ... + a_{Q-1}: log-decay from token s to chunk end */
  float *y;    /* [head_dim] */
} ssd_scratch;

static void ssd_head(const sf_ssd_params *p, int64_t chunk, int32_t b, int32_t h, const ssd_scratch *w) {
  const int64_t P = p->head_dim, N = p->d_state;
  const int32_t g = h / (p->n_heads / p->n_groups);
  const float *X = p->x, *DT = p->dt, *Bm = p->B, *Cm = p->C, *Z = p->z;
  float *out = p->out;
  const float A = p->A[h], D = p->D ? p->D[h] : 0.0f, bias = p->dt_bias ? p->dt_bias[h] : 0.0f;
  float *S = p->state + (int64_t)b * p->state_batch_stride + (int64_t)h * P * N; /* [P, N] */
  if (!p->has_initial_state)
    for (int64_t i = 0; i < P * N; i++) S[i] = 0.0f;

  const int64_t t0 = p->seqs.start[b], len = p->seqs.len[b];
  for (int64_t c0 = 0; c0 < len; c0 += chunk) {
    const int64_t Q = len - c0 < chunk ? len - c0 : chunk;
    const int64_t r0 = t0 + c0; /* first row of the chunk */

    /* 1. dt, dA and its cumulative sums (prefix, and suffix to chunk end). */
    float acc = 0.0f;
    for (int64_t s = 0; s < Q; s++) {
      float v = DT[(r0 + s) * p->dt_token_stride + h] + bias;
      if (p->dt_softplus) v = sf_softplus_f(v);
      v = fminf(fmaxf(v, p->dt_min), p->dt_max);
      w->dt[s] = v;
      w->a[s] = v * A;
      acc += w->a[s];
      w->cum[s] = acc;
    }
    acc = 0.0f;
    for (int64_t s = Q - 1; s >= 0; s--) {
      w->tail[s] = acc;
      acc += w->a[s];
    }

    /* 2 + 3. Outputs of the chunk, from S (the state at the chunk start). */
    for (int64_t l = 0; l < Q; l++) {
      const int64_t rl = r0 + l;
      const float *Cl = Cm + rl * p->C_token_stride + (int64_t)g * N;
      const float *xl = X + rl * p->x_token_stride + (int64_t)h * P;
      const float e_in = expf(w->cum[l]);
      for (int64_t i = 0; i < P; i++) {
        const float *Si = S + i * N;
        float dot = 0.0f;
        for (int64_t n = 0; n < N; n++) dot += Cl[n] * Si[n];
        w->y[i] = e_in * dot;
      }
      float seg = 0.0f; /* a_{s+1} + ... + a_l */
      for (int64_t s = l; s >= 0; s--) {
        if (s < l) seg += w->a[s + 1];
        const int64_t rs = r0 + s;
        const float *Bs = Bm + rs * p->B_token_stride + (int64_t)g * N;
        const float *xs = X + rs * p->x_token_stride + (int64_t)h * P;
        float cb = 0.0f;
        for (int64_t n = 0; n < N; n++) cb += Cl[n] * Bs[n];
        const float m = cb * expf(seg) * w->dt[s]; /* (C Bᵀ ∘ L)[l,s] times dt_s */
        for (int64_t i = 0; i < P; i++) w->y[i] += m * xs[i];
      }
      float *ol = out + rl * p->out_token_stride + (int64_t)h * P;
      const float *zl = Z ? Z + rl * p->z_token_stride + (int64_t)h * P : NULL;
      for (int64_t i = 0; i < P; i++) {
        float v = w->y[i] + D * xl[i];
        if (zl) v *= sf_silu_f(zl[i]);
        ol[i] = v;
      }
    }

    /* 4 + 5. The state at the chunk end becomes the next chunk's start. */
    const float e_all = expf(w->cum[Q - 1]);
    for (int64_t i = 0; i < P * N; i++) S[i] *= e_all;
    for (int64_t s = 0; s < Q; s++) {
      const int64_t rs = r0 + s;
      const float *Bs = Bm + rs * p->B_token_stride + (int64_t)g * N;
      const float *xs = X + rs * p->x_token_stride + (int64_t)h * P;
      const float ws = expf(w->tail[s]) * w->dt[s];
      for (int64_t i = 0; i < P; i++) {
        const float coef = ws * xs[i];
        float *Si = S + i * N;
        for (int64_t n = 0; n < N; n++) Si[n] += coef * Bs[n];
      }
    }
  }
}

SF_CPU_OP(ssd, sf_ssd_params) {
  SF_CPU_REQUIRE_F32("ssd", p->dtype);
  SF_TRY(sf_cpu_check_ssd("ssd", p, err));
  const int32_t batch = p->seqs.batch, heads = p->n_heads;
  if (batch == 0) return SF_OK;
  const int64_t chunk = p->chunk_size > 0 ? p->chunk_size : SSD_DEFAULT_CHUNK;
  /* No chunk holds more than max_len tokens: size the scratch by that. */
  const int64_t q = chunk < p->seqs.max_len ? chunk : (p->seqs.max_len > 0 ? p->seqs.max_len : 1);
  const int64_t per_thread = 4 * q + p->head_dim;
  const double work = (double)batch * heads * (double)p->seqs.max_len * (double)(p->head_dim + q) * p->d_state;
  const int nt = sf_cpu_threads(ctx, work);
  float *scratch = malloc((size_t)nt * (size_t)per_thread * sizeof(float));
  if (!scratch)
    return sf_fail(err, SF_ERR_NOMEM, "ssd: cannot allocate %d x %lld floats of scratch", nt, (long long)per_thread);

#pragma omp parallel num_threads(nt)
  {
    float *base = scratch + (int64_t)sf_cpu_thread_id() * per_thread;
    const ssd_scratch w = {base, base + q, base + 2 * q, base + 3 * q, base + 4 * q};
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int32_t b = 0; b < batch; b++)
      for (int32_t h = 0; h < heads; h++) ssd_head(p, chunk, b, h, &w);
  }
  free(scratch);
  return SF_OK;
}
