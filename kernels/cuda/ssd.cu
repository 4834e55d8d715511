/* Mamba-2 SSD: the op's dispatch and its sequential fallback. The chunked
 * tensor-core path (ssd_chunked.cu) takes head_dim 64, d_state 64/128,
 * chunk_size 0/256, bf16/f16 with 16-byte aligned x/B/C/z/out and token
 * strides a multiple of 8; every other shape runs the sequential recurrence
 * below: a block of 128 threads covers 16 channels p of one (head,
 * sequence); each channel's d_state <= 128 states are spread over 8 adjacent
 * lanes (16 registers a lane, n = sub + 8 j), so y = C . S takes a 3-step
 * shuffle. dt, the per-head decay exp(dt A) and the gate in fp32; chunk_size
 * has no effect on it (the recurrence is the same function). d_state > 128
 * runs the naive kernel. The final state is written to state. Workspace:
 * none for the sequential kernel (the chunked path's: ssd_chunked.cu). */
#include "cuda_common.cuh"

enum { SSD_THREADS = 128, SSD_LANES = 8, SSD_PER_LANE = 16, SSD_CH = SSD_THREADS / SSD_LANES };

sf_status sf_cuda_ssd_check(const sf_ssd_params *p, const char *name, sf_error *err);
int sf_cuda_ssd_chunked_ok(const sf_ssd_params *p);
sf_status sf_cuda_ssd_chunked(sf_op_ctx *ctx, const sf_ssd_params *p, int stages, sf_error *err);

template <typename T>
__global__ void __launch_bounds__(SSD_THREADS)
ssd_kernel(int n_heads, int head_dim, int heads_per_group, int d_state, const int64_t *__restrict__ start,
           const int32_t *__restrict__ len, const T *x, int64_t xts, const T *__restrict__ dtp,
           int64_t dtts, const float *__restrict__ dt_bias, int softplus, float dt_min, float dt_max,
           const float *__restrict__ A, const T *__restrict__ Bm, int64_t Bts, const T *__restrict__ Cm, int64_t Cts,
           const float *__restrict__ D, const T *__restrict__ z, int64_t zts, float *__restrict__ state, int64_t sbs,
           int has_init, T *out, int64_t ots) {
  const int b = blockIdx.z, h = blockIdx.y;
  const int pch = blockIdx.x * SSD_CH + threadIdx.x / SSD_LANES, sub = threadIdx.x % SSD_LANES;
  const bool valid = pch < head_dim; /* no early return: the lanes shuffle together */
  const int g = h / heads_per_group;
  const int64_t L = len[b], s0 = start[b];
  float *hs = state + (int64_t)b * sbs + ((int64_t)h * head_dim + (valid ? pch : 0)) * d_state;
  float S[SSD_PER_LANE];
#pragma unroll
  for (int j = 0; j < SSD_PER_LANE; j++) {
    const int n = sub + SSD_LANES * j;
    S[j] = (valid && has_init && n < d_state) ? hs[n] : 0.0f;
  }
  const float Ah = A[h], dtb = dt_bias ? dt_bias[h] : 0.0f, Dh = D ? D[h] : 0.0f;
  const int64_t ch = (int64_t)h * head_dim + pch;
  for (int64_t i = 0; i < L; i++) {
    const int64_t tok = s0 + i;
    float dt = sf_ldg<T>(dtp + tok * dtts + h) + dtb;
    if (softplus) dt = sf_softplus(dt);
    dt = fminf(fmaxf(dt, dt_min), dt_max);
    const float dA = expf(dt * Ah);
    const float xv = valid ? sf_to_f<T>(x[tok * xts + ch]) : 0.0f;
    const T *Bt = Bm + tok * Bts + (int64_t)g * d_state, *Ct = Cm + tok * Cts + (int64_t)g * d_state;
    float y = 0.0f;
#pragma unroll
    for (int j = 0; j < SSD_PER_LANE; j++) {
      const int n = sub + SSD_LANES * j;
      if (n < d_state) {
        S[j] = dA * S[j] + dt * sf_ldg<T>(Bt + n) * xv;
        y += sf_ldg<T>(Ct + n) * S[j];
      }
    }
    y += __shfl_xor_sync(0xffffffffu, y, 4);
    y += __shfl_xor_sync(0xffffffffu, y, 2);
    y += __shfl_xor_sync(0xffffffffu, y, 1);
    if (valid && sub == 0) {
      y += Dh * xv;
      if (z) y *= sf_silu(sf_to_f<T>(z[tok * zts + ch]));
      out[tok * ots + ch] = sf_from_f<T>(y);
    }
  }
  if (valid) {
#pragma unroll
    for (int j = 0; j < SSD_PER_LANE; j++) {
      const int n = sub + SSD_LANES * j;
      if (n < d_state) hs[n] = S[j];
    }
  }
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_ssd_params *p, sf_error *err) {
  dim3 grid((unsigned)((p->head_dim + SSD_CH - 1) / SSD_CH), (unsigned)p->n_heads, (unsigned)p->seqs.batch);
  ssd_kernel<T><<<grid, SSD_THREADS, 0, sf_cuda_stream(ctx)>>>(
      p->n_heads, p->head_dim, p->n_heads / p->n_groups, p->d_state, p->seqs.start, p->seqs.len, (const T *)p->x,
      p->x_token_stride, (const T *)p->dt, p->dt_token_stride, p->dt_bias, p->dt_softplus, p->dt_min, p->dt_max, p->A,
      (const T *)p->B, p->B_token_stride, (const T *)p->C, p->C_token_stride, p->D, (const T *)p->z,
      p->z_token_stride, p->state, p->state_batch_stride, p->has_initial_state, (T *)p->out, p->out_token_stride);
  SF_CUDA_LAUNCHED("ssd_kernel");
  return SF_OK;
}

/* Shared with ssd_naive.cu. */
sf_status sf_cuda_ssd_check(const sf_ssd_params *p, const char *name, sf_error *err) {
  if (p->n_heads <= 0 || p->head_dim <= 0 || p->d_state <= 0 || p->n_groups <= 0 || p->n_heads % p->n_groups != 0)
    return sf_fail(err, SF_ERR_ARG,
                   "%s: need n_heads, head_dim, d_state > 0 and n_groups dividing n_heads (got %d, %d, %d, %d)", name,
                   (int)p->n_heads, (int)p->head_dim, (int)p->d_state, (int)p->n_groups);
  if (p->seqs.batch < 0 || p->seqs.max_len < 0 || p->chunk_size < 0)
    return sf_fail(err, SF_ERR_ARG, "%s: negative batch %d, max_len %lld or chunk_size %d", name, (int)p->seqs.batch,
                   (long long)p->seqs.max_len, (int)p->chunk_size);
  if (isnan(p->dt_min) || isnan(p->dt_max) || p->dt_min > p->dt_max)
    return sf_fail(err, SF_ERR_ARG, "%s: dt clamp [%g, %g] is empty", name, (double)p->dt_min, (double)p->dt_max);
  const int64_t width = (int64_t)p->n_heads * p->head_dim;
  if (p->x_token_stride < width || p->out_token_stride < width || (p->z && p->z_token_stride < width) ||
      p->dt_token_stride < p->n_heads || p->B_token_stride < (int64_t)p->n_groups * p->d_state ||
      p->C_token_stride < (int64_t)p->n_groups * p->d_state)
    return sf_fail(err, SF_ERR_ARG,
                   "%s: token strides must cover n_heads * head_dim = %lld (x, z, out), n_heads (dt) and "
                   "n_groups * d_state (B, C)",
                   name, (long long)width);
  if (p->seqs.batch > 65535 || p->n_heads > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "%s: batch %d or n_heads %d > 65535", name, (int)p->seqs.batch,
                   (int)p->n_heads);
  if (p->seqs.batch > 0 && (!p->seqs.start || !p->seqs.len || !p->x || !p->dt || !p->A || !p->B || !p->C ||
                            !p->state || !p->out))
    return sf_fail(err, SF_ERR_ARG, "%s: seqs, x, dt, A, B, C, state and out must be non-NULL", name);
  return SF_OK;
}

/* Tuning and reference entry (bench_mamba): variant 0 is what the op runs,
 * 1 the sequential kernel (any shape with d_state <= 128), 2 the chunked
 * path (SF_ERR_UNSUPPORTED where it does not apply), 3 the chunked path with
 * 32-state blocks in stage 2; 10, 11, 12 run only the chunked path's stage
 * 1, 2 or 3, 13 stage 2 with 32-state blocks (per-stage timing after a full
 * call). */
extern "C" sf_status sf_cuda_ssd_variant(sf_op_ctx *ctx, const sf_ssd_params *p, int variant, sf_error *err) {
  SF_TRY(sf_cuda_ssd_check(p, "ssd", err));
  if (p->seqs.batch == 0) return SF_OK;
  const int chunked = sf_cuda_ssd_chunked_ok(p);
  if ((variant == 2 || variant == 3 || variant >= 10) && !chunked)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "ssd: the chunked path does not take this shape or layout");
  if (variant >= 10 && variant <= 12) return sf_cuda_ssd_chunked(ctx, p, 1 << (variant - 10), err);
  if (variant == 13) return sf_cuda_ssd_chunked(ctx, p, 2 | 8, err);
  if (variant == 3) return sf_cuda_ssd_chunked(ctx, p, 7 | 8, err);
  if (variant != 1 && chunked) return sf_cuda_ssd_chunked(ctx, p, 7, err);
  if (p->d_state > SSD_LANES * SSD_PER_LANE) return sf_cuda_ssd_naive(ctx, p, err);
  SF_DISPATCH(p->dtype, "ssd", launch<T>(ctx, p, err));
}

extern "C" SF_CUDA_OP(ssd, sf_ssd_params) { return sf_cuda_ssd_variant(ctx, p, 0, err); }
