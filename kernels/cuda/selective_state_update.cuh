/* The arithmetic of one Mamba-1 state update (ops/mamba.h
 * sf_selective_state_update_params) in the layout of the op's vector
 * kernel: tpc threads a channel (a power of two up to 32, aligned lanes of
 * a warp), each with 4 consecutive states; dt_proj's row split over them
 * in 16-byte words (thread q takes words q, q + tpc, ...). Shared by the op
 * (selective_state_update.cu) and the persistent Mamba-1 step
 * (mamba1_decode.cu), so the two agree to the bit for the same inputs. */
#pragma once
#include "cuda_common.cuh"

/* Sum over the tpc (a power of two) aligned lanes of a channel group. */
__device__ __forceinline__ float group_sum(float v, int tpc) {
  for (int o = tpc >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/* The products of one word L (16 bytes of T, or one T) of a dt_proj row
 * with the same word of dt_low, summed in order. By value: through a
 * reference the compiler may load the word an element at a time. */
template <typename T, typename L>
__device__ __forceinline__ float dtw_word_dot(const L a, const L b) {
  const T *x = reinterpret_cast<const T *>(&a), *y = reinterpret_cast<const T *>(&b);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < (int)(sizeof(L) / sizeof(T)); i++) s += sf_to_f<T>(x[i]) * sf_to_f<T>(y[i]);
  return s;
}

/* dt from its raw value (dt_proj's output as written, in T): the bias,
 * then softplus if asked. */
__device__ __forceinline__ float sf_ssu_dt(float raw, float bias, int softplus) {
  const float dt = raw + bias;
  return softplus ? sf_softplus(dt) : dt;
}

/* Four consecutive states s of a channel advanced by one token:
 * s = exp(dt A) s + dt x B. Returns this thread's share of C . s. */
__device__ __forceinline__ float sf_ssu_states4(float dt, float xv, float4 a, float4 &s, float4 b, float4 c) {
  const float dx = dt * xv;
  s.x = expf(dt * a.x) * s.x + dx * b.x;
  s.y = expf(dt * a.y) * s.y + dx * b.y;
  s.z = expf(dt * a.z) * s.z + dx * b.z;
  s.w = expf(dt * a.w) * s.w + dx * b.w;
  return c.x * s.x + c.y * s.y + c.z * s.z + c.w * s.w;
}

/* The channel's output from y = C . s (summed over its group): + D x, then
 * gated by silu(z) where there is a z. */
template <typename T>
__device__ __forceinline__ T sf_ssu_out(float y, float Dc, float xv, bool has_z, float zv) {
  y += Dc * xv;
  if (has_z) y *= sf_silu(zv);
  return sf_from_f<T>(y);
}
