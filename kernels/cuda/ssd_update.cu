/* Mamba-2 SSD decode step: the recurrence for one token per sequence, the
 * state updated in place (fp32); memory-bound on the state (read + write).
 * The vector kernel: a warp takes rows (sequence, head, channel p) of the
 * state, LPR = min(32, d_state / 4) lanes a row with 4 (8 for d_state 256)
 * consecutive states each (16-byte loads and stores, coalesced), 4 rounds
 * of 32 / LPR rows, the loads of all rounds issued first; B, C, dt and the
 * decay are loaded once per warp; y is reduced over the row's lanes with
 * shuffles. d_state in {4, 8, ..., 256} (powers of two) with a 16-byte
 * aligned state and state_batch_stride a multiple of 4 take it; other
 * layouts run the scalar kernel (one thread per (sequence, head, channel),
 * any d_state). Workspace: none. */
#include "cuda_common.cuh"

template <typename T>
__global__ void ssd_update_kernel(int head_dim, int heads_per_group, int d_state, const T *x,
                                  int64_t xbs, const T *dtp, int64_t dtbs, const float *__restrict__ dt_bias,
                                  int softplus, float dt_min, float dt_max, const float *__restrict__ A,
                                  const T *Bm, int64_t Bbs, const T *Cm, int64_t Cbs,
                                  const float *__restrict__ D, const T *z, int64_t zbs, float *state,
                                  int64_t sbs, T *out, int64_t obs) {
  sf_pdl_release();
  sf_pdl_wait();
  const int b = blockIdx.z, h = blockIdx.y;
  const int pch = blockIdx.x * blockDim.x + threadIdx.x;
  if (pch >= head_dim) return;
  const int g = h / heads_per_group;
  const int64_t ch = (int64_t)h * head_dim + pch;
  float dt = sf_to_f<T>(dtp[(int64_t)b * dtbs + h]) + (dt_bias ? dt_bias[h] : 0.0f);
  if (softplus) dt = sf_softplus(dt);
  dt = fminf(fmaxf(dt, dt_min), dt_max);
  const float dA = expf(dt * A[h]);
  const float xv = sf_to_f<T>(x[(int64_t)b * xbs + ch]);
  float *hs = state + (int64_t)b * sbs + ch * d_state;
  const T *Bt = Bm + (int64_t)b * Bbs + (int64_t)g * d_state, *Ct = Cm + (int64_t)b * Cbs + (int64_t)g * d_state;
  float y = 0.0f;
  for (int n = 0; n < d_state; n++) {
    const float sn = dA * hs[n] + dt * sf_ld<T>(Bt + n) * xv;
    hs[n] = sn;
    y += sf_ld<T>(Ct + n) * sn;
  }
  y += (D ? D[h] : 0.0f) * xv;
  if (z) y *= sf_silu(sf_to_f<T>(z[(int64_t)b * zbs + ch]));
  out[(int64_t)b * obs + ch] = sf_from_f<T>(y);
}

enum { SSDU_ROUNDS = 4 };

template <typename T, int VPL>
__global__ void __launch_bounds__(128) ssd_update_vec_kernel(
    int head_dim, int heads_per_group, int d_state, int lg_lpr, const T *x, int64_t xbs, const T *dtp,
    int64_t dtbs, const float *__restrict__ dt_bias, int softplus, float dt_min, float dt_max,
    const float *__restrict__ A, const T *Bm, int64_t Bbs, const T *Cm, int64_t Cbs,
    const float *__restrict__ D, const T *z, int64_t zbs, float *state, int64_t sbs, T *out,
    int64_t obs) {
  sf_pdl_release();
  sf_pdl_wait();
  const int b = blockIdx.z, h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int lpr = 1 << lg_lpr, sub = lane & (lpr - 1), rsub = lane >> lg_lpr, rpi = 32 >> lg_lpr;
  const int row0 = (blockIdx.x * 4 + warp) * (SSDU_ROUNDS * rpi);
  if (row0 >= head_dim) return; /* whole warp */
  const int g = h / heads_per_group;
  float dt = sf_to_f<T>(dtp[(int64_t)b * dtbs + h]) + (dt_bias ? dt_bias[h] : 0.0f);
  if (softplus) dt = sf_softplus(dt);
  dt = fminf(fmaxf(dt, dt_min), dt_max);
  const float dA = expf(dt * A[h]);
  const T *Bt = Bm + (int64_t)b * Bbs + (int64_t)g * d_state, *Ct = Cm + (int64_t)b * Cbs + (int64_t)g * d_state;
  float bq[VPL][4], cq[VPL][4];
#pragma unroll
  for (int v = 0; v < VPL; v++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int n = 4 * (sub + lpr * v) + e;
      bq[v][e] = sf_ld<T>(Bt + n);
      cq[v][e] = sf_ld<T>(Ct + n);
    }
  float *sh = state + (int64_t)b * sbs + (int64_t)h * head_dim * d_state;
  float4 s[SSDU_ROUNDS][VPL];
  float xv[SSDU_ROUNDS];
#pragma unroll
  for (int r = 0; r < SSDU_ROUNDS; r++) {
    const int p = row0 + r * rpi + rsub;
    const bool ok = p < head_dim;
    xv[r] = ok ? sf_to_f<T>(x[(int64_t)b * xbs + (int64_t)h * head_dim + p]) : 0.0f;
#pragma unroll
    for (int v = 0; v < VPL; v++)
      s[r][v] = ok ? reinterpret_cast<const float4 *>(sh + (int64_t)p * d_state)[sub + lpr * v]
                   : make_float4(0.f, 0.f, 0.f, 0.f);
  }
#pragma unroll
  for (int r = 0; r < SSDU_ROUNDS; r++) {
    const int p = row0 + r * rpi + rsub;
    const bool ok = p < head_dim;
    const float dx = dt * xv[r];
    float y = 0.0f;
#pragma unroll
    for (int v = 0; v < VPL; v++) {
      float4 &t = s[r][v];
      t.x = dA * t.x + dx * bq[v][0];
      t.y = dA * t.y + dx * bq[v][1];
      t.z = dA * t.z + dx * bq[v][2];
      t.w = dA * t.w + dx * bq[v][3];
      y += cq[v][0] * t.x + cq[v][1] * t.y + cq[v][2] * t.z + cq[v][3] * t.w;
      if (ok) reinterpret_cast<float4 *>(sh + (int64_t)p * d_state)[sub + lpr * v] = t;
    }
    for (int o = lpr >> 1; o > 0; o >>= 1) y += __shfl_xor_sync(0xffffffffu, y, o);
    if (ok && sub == 0) {
      const int64_t ch = (int64_t)h * head_dim + p;
      y += (D ? D[h] : 0.0f) * xv[r];
      if (z) y *= sf_silu(sf_to_f<T>(z[(int64_t)b * zbs + ch]));
      out[(int64_t)b * obs + ch] = sf_from_f<T>(y);
    }
  }
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_ssd_update_params *p, sf_error *err) {
  int lg = -1;
  for (int l = 0; l <= 6; l++)
    if (4 << l == p->d_state) lg = l;
  if (lg >= 0 && ((uintptr_t)p->state & 15) == 0 && p->state_batch_stride % 4 == 0) {
    const int lg_lpr = lg > 5 ? 5 : lg, rows_per_block = 4 * SSDU_ROUNDS * (32 >> lg_lpr);
    dim3 grid((unsigned)((p->head_dim + rows_per_block - 1) / rows_per_block), (unsigned)p->n_heads,
              (unsigned)p->batch);
#define SSDU_ARGS                                                                                                  \
  p->head_dim, p->n_heads / p->n_groups, p->d_state, lg_lpr, (const T *)p->x, p->x_batch_stride, (const T *)p->dt, \
      p->dt_batch_stride, p->dt_bias, p->dt_softplus, p->dt_min, p->dt_max, p->A, (const T *)p->B,                \
      p->B_batch_stride, (const T *)p->C, p->C_batch_stride, p->D, (const T *)p->z, p->z_batch_stride, p->state,   \
      p->state_batch_stride, (T *)p->out, p->out_batch_stride
    if (lg > 5)
      SF_CUDA_LAUNCH("ssd_update_vec_kernel", ctx, ssd_update_vec_kernel<T, 2>, grid, 128, 0, SSDU_ARGS);
    else
      SF_CUDA_LAUNCH("ssd_update_vec_kernel", ctx, ssd_update_vec_kernel<T, 1>, grid, 128, 0, SSDU_ARGS);
#undef SSDU_ARGS
    return SF_OK;
  }
  const int threads = p->head_dim >= 128 ? 128 : (p->head_dim >= 64 ? 64 : 32);
  dim3 grid((unsigned)((p->head_dim + threads - 1) / threads), (unsigned)p->n_heads, (unsigned)p->batch);
  SF_CUDA_LAUNCH("ssd_update_kernel", ctx, ssd_update_kernel<T>, grid, threads, 0, p->head_dim,
                 p->n_heads / p->n_groups, p->d_state, (const T *)p->x, p->x_batch_stride, (const T *)p->dt,
                 p->dt_batch_stride, p->dt_bias, p->dt_softplus, p->dt_min, p->dt_max, p->A, (const T *)p->B,
                 p->B_batch_stride, (const T *)p->C, p->C_batch_stride, p->D, (const T *)p->z, p->z_batch_stride,
                 p->state, p->state_batch_stride, (T *)p->out, p->out_batch_stride);
  return SF_OK;
}

extern "C" SF_CUDA_OP(ssd_update, sf_ssd_update_params) {
  if (p->n_heads <= 0 || p->head_dim <= 0 || p->d_state <= 0 || p->n_groups <= 0 || p->n_heads % p->n_groups != 0 ||
      p->batch < 0)
    return sf_fail(err, SF_ERR_ARG,
                   "ssd_update: need n_heads, head_dim, d_state > 0, n_groups dividing n_heads, batch >= 0 "
                   "(got %d, %d, %d, %d, %d)",
                   (int)p->n_heads, (int)p->head_dim, (int)p->d_state, (int)p->n_groups, (int)p->batch);
  if (isnan(p->dt_min) || isnan(p->dt_max) || p->dt_min > p->dt_max)
    return sf_fail(err, SF_ERR_ARG, "ssd_update: dt clamp [%g, %g] is empty", (double)p->dt_min, (double)p->dt_max);
  if (p->batch > 65535 || p->n_heads > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "ssd_update: batch %d or n_heads %d > 65535", (int)p->batch,
                   (int)p->n_heads);
  if (p->batch == 0) return SF_OK;
  if (!p->x || !p->dt || !p->A || !p->B || !p->C || !p->state || !p->out)
    return sf_fail(err, SF_ERR_ARG, "ssd_update: x, dt, A, B, C, state and out must be non-NULL");
  SF_DISPATCH(p->dtype, "ssd_update", launch<T>(ctx, p, err));
}
