/* One (sequence, channel) of the decode conv update (ops/mamba.h
 * sf_conv1d_update_params): the output from conv_state and the new input
 * xt, then xt shifted into the state. Shared by the conv1d_update op, the
 * weight-streaming GEMM's conv epilogue (gemm_small_m.cu) and the
 * persistent Mamba-1 step (mamba1_decode.cu), so the three agree to the
 * bit. st: the channel's width - 1 states; bias_c: its bias (0 if none).
 * The weights come from global memory (sf_conv1d_update_channel: wc, the
 * channel's width weights) or from anywhere else (the _by form: w(j) gives
 * weight j as a float). */
#pragma once
#include "cuda_common.cuh"

template <typename T, typename WeightAt>
__device__ __forceinline__ T sf_conv1d_update_channel_by(T xt, WeightAt w, float bias_c, T *st, int W, int silu) {
  float acc = bias_c;
  for (int j = 0; j < W - 1; j++) acc += w(j) * sf_to_f<T>(st[j]);
  acc += w(W - 1) * sf_to_f<T>(xt);
  if (W > 1) {
    for (int j = 0; j < W - 2; j++) st[j] = st[j + 1];
    st[W - 2] = xt;
  }
  if (silu) acc = sf_silu(acc);
  return sf_from_f<T>(acc);
}

template <typename T>
__device__ __forceinline__ T sf_conv1d_update_channel(T xt, const T *__restrict__ wc, float bias_c, T *st, int W,
                                                      int silu) {
  return sf_conv1d_update_channel_by<T>(xt, [wc](int j) { return sf_ldg<T>(wc + j); }, bias_c, st, W, silu);
}
