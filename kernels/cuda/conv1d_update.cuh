/* One (sequence, channel) of the decode conv update (ops/mamba.h
 * sf_conv1d_update_params): the output from conv_state and the new input
 * xt, then xt shifted into the state. Shared by the conv1d_update op and
 * the weight-streaming GEMM's conv epilogue (gemm_small_m.cu), so the two
 * agree to the bit. st: the channel's width - 1 states; wc: its width
 * weights; bias_c: its bias (0 if none). */
#pragma once
#include "cuda_common.cuh"

template <typename T>
__device__ __forceinline__ T sf_conv1d_update_channel(T xt, const T *__restrict__ wc, float bias_c, T *st, int W,
                                                      int silu) {
  float acc = bias_c;
  for (int j = 0; j < W - 1; j++) acc += sf_ldg<T>(wc + j) * sf_to_f<T>(st[j]);
  acc += sf_ldg<T>(wc + W - 1) * sf_to_f<T>(xt);
  if (W > 1) {
    for (int j = 0; j < W - 2; j++) st[j] = st[j + 1];
    st[W - 2] = xt;
  }
  if (silu) acc = sf_silu(acc);
  return sf_from_f<T>(acc);
}
