/* Mamba-1 selective state update: the scan's recurrence for one token per
 * sequence (decode), the state updated in place (fp32). Memory-bound on the
 * state (read + write): the vector kernel gives each thread 4 consecutive
 * states of one (sequence, channel) (16-byte load and store of the state and
 * of A, coalesced across the warp), d_state / 4 threads a channel (a power
 * of two up to 32) reduce y with shuffles. Other layouts (d_state not such
 * a multiple of 4, state or A not 16-byte aligned) run the scalar kernel:
 * one thread per (sequence, channel), any d_state.
 * With dt_proj_w the op also does dt_proj (delta = dt_proj_w . dt_low), so
 * a decode step runs one kernel fewer per layer (each costs ~2 us however
 * little it does): the threads of a channel (one in the scalar kernel)
 * split the dot product, each an interleaved share of the weight row in
 * 16-byte words where dt_rank and the alignment allow (else one element at
 * a time), summed with the same shuffles as y. The weight (1 MiB in bf16 at
 * mamba-1.4b) is then the larger stream; it is a constant of the step, so
 * the first words are loaded before waiting for the predecessor (x_proj,
 * whose output dt_low is read only after the wait). Workspace: none. */
#include "selective_state_update.cuh"

/* The fused dt_proj. L is the unit of a load: uint4 (16 bytes of T) or T;
 * a thread takes the words q, q + tpc, ... of the nw words of a row, the
 * first DTW_PRE of them loaded before the wait (evict-first: not read again
 * this step, as the GEMM's weights). */
enum { DTW_PRE = 4 };

template <typename L>
__device__ __forceinline__ void dtw_prefetch(L (&pre)[DTW_PRE], const L *w, int nw, int q, int tpc) {
#pragma unroll
  for (int u = 0; u < DTW_PRE; u++) pre[u] = q + u * tpc < nw ? __ldcs(w + q + u * tpc) : L();
}

/* This thread's share of dot(w, d) (d: dt_low, read after the wait). */
template <typename T, typename L>
__device__ __forceinline__ float dtw_dot(const L (&pre)[DTW_PRE], const L *w, const L *d, int nw, int q,
                                         int tpc) {
  float s = 0.0f;
#pragma unroll
  for (int u = 0; u < DTW_PRE; u++)
    if (q + u * tpc < nw) s += dtw_word_dot<T>(pre[u], d[q + u * tpc]);
  for (int i = q + DTW_PRE * tpc; i < nw; i += tpc) s += dtw_word_dot<T>(__ldcs(w + i), d[i]);
  return s;
}

/* Channel c's dt before bias and softplus: dt[b, c], or with the fused
 * dt_proj (nw > 0) the group's dot product rounded to T as the GEMM would
 * write it. dtb: row b of dt; every lane of the warp calls it when tpc > 1. */
template <typename T, typename L>
__device__ __forceinline__ float raw_dt(const L (&pre)[DTW_PRE], const L *w, const T *dtb, int64_t c, int nw, int q,
                                        int tpc) {
  if (nw == 0) return sf_to_f<T>(dtb[c]);
  const float s = group_sum(dtw_dot<T>(pre, w, reinterpret_cast<const L *>(dtb), nw, q, tpc), tpc);
  return sf_to_f<T>(sf_from_f<T>(s));
}

template <typename T, typename L>
__global__ void selective_state_update_kernel(int32_t batch, int64_t dim, int d_state, const T *x,
                                              int64_t xbs, const T *dtp, int64_t dtbs,
                                              const T *__restrict__ dtw, int dt_rank,
                                              const float *__restrict__ dt_bias, int softplus,
                                              const float *__restrict__ A, const T *Bm, int64_t Bbs,
                                              const T *Cm, int64_t Cbs, const float *__restrict__ D,
                                              const T *z, int64_t zbs, float *state, int64_t sbs,
                                              T *out, int64_t obs) {
  sf_pdl_release();
  const int b = blockIdx.y;
  const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int nw = dtw && c < dim ? dt_rank / (int)(sizeof(L) / sizeof(T)) : 0;
  const L *wr = nw ? reinterpret_cast<const L *>(dtw + c * dt_rank) : nullptr;
  L pre[DTW_PRE];
  dtw_prefetch(pre, wr, nw, 0, 1);
  sf_pdl_wait();
  if (c >= dim || b >= batch) return;
  float dt = raw_dt<T>(pre, wr, dtp + (int64_t)b * dtbs, c, nw, 0, 1) + (dt_bias ? dt_bias[c] : 0.0f);
  if (softplus) dt = sf_softplus(dt);
  const float xv = sf_to_f<T>(x[(int64_t)b * xbs + c]);
  float *hs = state + (int64_t)b * sbs + c * d_state;
  const T *Bt = Bm + (int64_t)b * Bbs, *Ct = Cm + (int64_t)b * Cbs;
  float y = 0.0f;
  for (int n = 0; n < d_state; n++) {
    const float hn = expf(dt * A[c * d_state + n]) * hs[n] + dt * sf_ld<T>(Bt + n) * xv;
    hs[n] = hn;
    y += sf_ld<T>(Ct + n) * hn;
  }
  y += (D ? D[c] : 0.0f) * xv;
  if (z) y *= sf_silu(sf_to_f<T>(z[(int64_t)b * zbs + c]));
  out[(int64_t)b * obs + c] = sf_from_f<T>(y);
}

template <typename T, typename L>
__global__ void __launch_bounds__(128) selective_state_update_vec_kernel(
    int64_t dim, int d_state, int lg_tpc, const T *x, int64_t xbs, const T *dtp, int64_t dtbs,
    const T *__restrict__ dtw, int dt_rank, const float *__restrict__ dt_bias, int softplus,
    const float *__restrict__ A, const T *Bm, int64_t Bbs, const T *Cm, int64_t Cbs,
    const float *__restrict__ D, const T *z, int64_t zbs, float *state, int64_t sbs, T *out,
    int64_t obs) {
  sf_pdl_release();
  const int b = blockIdx.y, tpc = 1 << lg_tpc;
  const int64_t gt = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t c = gt >> lg_tpc;
  const int q = (int)(gt & (tpc - 1));
  const bool ok = c < dim; /* whole channel groups are in or out: the shuffles stay within a group */
  const int64_t cc = ok ? c : 0;
  /* nw the same for every lane: all of them take part in raw_dt's shuffles */
  const int nw = dtw ? dt_rank / (int)(sizeof(L) / sizeof(T)) : 0;
  const L *wr = nw ? reinterpret_cast<const L *>(dtw + cc * dt_rank) : nullptr;
  L pre[DTW_PRE];
  dtw_prefetch(pre, wr, nw, q, tpc);
  sf_pdl_wait();
  float4 *sp = reinterpret_cast<float4 *>(state + (int64_t)b * sbs + cc * d_state) + q;
  const float4 s = ok ? *sp : make_float4(0.f, 0.f, 0.f, 0.f);
  const float4 a4 = __ldg(reinterpret_cast<const float4 *>(A + cc * d_state) + q);
  const T *Bt = Bm + (int64_t)b * Bbs + 4 * q, *Ct = Cm + (int64_t)b * Cbs + 4 * q;
  const float b0 = sf_ld<T>(Bt), b1 = sf_ld<T>(Bt + 1), b2 = sf_ld<T>(Bt + 2), b3 = sf_ld<T>(Bt + 3);
  const float e0 = sf_ld<T>(Ct), e1 = sf_ld<T>(Ct + 1), e2 = sf_ld<T>(Ct + 2), e3 = sf_ld<T>(Ct + 3);
  const float dt = sf_ssu_dt(raw_dt<T>(pre, wr, dtp + (int64_t)b * dtbs, cc, nw, q, tpc),
                             dt_bias ? dt_bias[cc] : 0.0f, softplus);
  const float xv = sf_to_f<T>(x[(int64_t)b * xbs + cc]);
  float4 n4 = s;
  const float y = group_sum(sf_ssu_states4(dt, xv, a4, n4, make_float4(b0, b1, b2, b3), make_float4(e0, e1, e2, e3)),
                            tpc);
  if (ok) {
    *sp = n4;
    if (q == 0)
      out[(int64_t)b * obs + cc] =
          sf_ssu_out<T>(y, D ? D[cc] : 0.0f, xv, z != nullptr, z ? sf_to_f<T>(z[(int64_t)b * zbs + cc]) : 0.0f);
  }
}

static int ilog2_exact(int v) {
  int l = 0;
  while ((1 << l) < v) l++;
  return (1 << l) == v ? l : -1;
}

template <typename T, typename L>
static sf_status launch_as(sf_op_ctx *ctx, const sf_selective_state_update_params *p, sf_error *err) {
  const T *dtw = (const T *)p->dt_proj_w;
  const int lg = p->d_state % 4 == 0 ? ilog2_exact(p->d_state / 4) : -1;
  if (lg >= 0 && lg <= 5 && ((uintptr_t)p->state & 15) == 0 && ((uintptr_t)p->A & 15) == 0 &&
      p->state_batch_stride % 4 == 0) {
    const int64_t threads = p->dim << lg;
    dim3 grid((unsigned)((threads + 127) / 128), (unsigned)p->batch);
    SF_CUDA_LAUNCH("selective_state_update_vec_kernel", ctx, selective_state_update_vec_kernel<T, L>, grid, 128, 0,
                   p->dim, p->d_state, lg, (const T *)p->x, p->x_batch_stride, (const T *)p->dt, p->dt_batch_stride,
                   dtw, (int)p->dt_rank, p->dt_bias, p->dt_softplus, p->A, (const T *)p->B, p->B_batch_stride,
                   (const T *)p->C, p->C_batch_stride, p->D, (const T *)p->z, p->z_batch_stride, p->state,
                   p->state_batch_stride, (T *)p->out, p->out_batch_stride);
    return SF_OK;
  }
  dim3 grid((unsigned)((p->dim + 127) / 128), (unsigned)p->batch);
  SF_CUDA_LAUNCH("selective_state_update_kernel", ctx, selective_state_update_kernel<T, L>, grid, 128, 0, p->batch,
                 p->dim, p->d_state, (const T *)p->x, p->x_batch_stride, (const T *)p->dt, p->dt_batch_stride, dtw,
                 (int)p->dt_rank, p->dt_bias, p->dt_softplus, p->A, (const T *)p->B, p->B_batch_stride,
                 (const T *)p->C, p->C_batch_stride, p->D, (const T *)p->z, p->z_batch_stride, p->state,
                 p->state_batch_stride, (T *)p->out, p->out_batch_stride);
  return SF_OK;
}

/* The fused dt_proj in 16-byte words when every row of the weight and of
 * dt_low starts 16-byte aligned, else element by element. */
template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_selective_state_update_params *p, sf_error *err) {
  const int64_t row = p->dt_rank * (int64_t)sizeof(T), bstride = p->dt_batch_stride * (int64_t)sizeof(T);
  const bool w16 = p->dt_proj_w && row % 16 == 0 && ((uintptr_t)p->dt_proj_w & 15) == 0 &&
                   ((uintptr_t)p->dt & 15) == 0 && (p->batch == 1 || bstride % 16 == 0);
  return w16 ? launch_as<T, uint4>(ctx, p, err) : launch_as<T, T>(ctx, p, err);
}

extern "C" SF_CUDA_OP(selective_state_update, sf_selective_state_update_params) {
  SF_TRY(sf_selective_state_update_check(p, err));
  if (p->batch > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "selective_state_update: batch %d > 65535", (int)p->batch);
  if (p->batch == 0) return SF_OK;
  SF_DISPATCH(p->dtype, "selective_state_update", launch<T>(ctx, p, err));
}
