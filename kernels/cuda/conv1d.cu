/* Causal depthwise conv1d over the token dimension (Mamba's short conv),
 * out[t, c] = act(bias[c] + sum_j w[c, j] * in[t - (width-1) + j, c]), with
 * in[] before the sequence's first token from conv_state (oldest first) or
 * zero. Safe when out aliases x (same token stride), like the cpu op.
 *
 * Each sequence is cut into chunks of CH tokens (CH chosen so that about
 * 2^18 threads run); one thread per (channel, chunk, sequence) slides a
 * width-long window over its chunk, reading each token's input before
 * writing its output, so it touches only its own chunk's positions.
 *   1. halo kernel: every chunk's width-1 preceding inputs (from x, or from
 *      the old conv_state before the first token) and the new conv_state
 *      (the last width-1 inputs of history ++ chunk) go to the workspace
 *      before anything is written;
 *   2. conv kernel: the chunks, from their halos;
 *   3. the new state is copied into conv_state.
 * Workspace: (batch * n_chunks + batch) * dim * (width-1) elements. */
#include "cuda_common.cuh"

enum { CONV_THREADS = 128, CONV_MAX_WIDTH = 8 };

template <typename T>
__global__ void conv1d_halo_kernel(int64_t dim, int W, int64_t CH, const int64_t *__restrict__ start,
                                   const int32_t *__restrict__ len, const T *x, int64_t xts, const T *state,
                                   int64_t sbs, int has_init, T *__restrict__ halo, T *__restrict__ new_state) {
  const int b = blockIdx.z;
  const int64_t k = blockIdx.y, nchunks = gridDim.y;
  const int64_t c = (int64_t)blockIdx.x * CONV_THREADS + threadIdx.x;
  if (c >= dim) return;
  const int64_t L = len[b], s0 = start[b], H = W - 1;
  const T *st = state ? state + (int64_t)b * sbs + c * H : nullptr;
  const int64_t t0 = k * CH;
  if (t0 < L) {
    T *hw = halo + ((b * nchunks + k) * dim + c) * H;
    for (int64_t j = 0; j < H; j++) {
      const int64_t pos = t0 - H + j;
      hw[j] = pos >= 0 ? x[(s0 + pos) * xts + c] : ((has_init && st) ? st[H + pos] : sf_from_f<T>(0.0f));
    }
  }
  if (k == 0 && new_state) {
    T *ns = new_state + ((int64_t)b * dim + c) * H;
    for (int64_t j = 0; j < H; j++) {
      const int64_t pos = L - H + j;
      ns[j] = pos >= 0 ? x[(s0 + pos) * xts + c] : ((has_init && st) ? st[H + pos] : sf_from_f<T>(0.0f));
    }
  }
}

template <typename T>
__global__ void conv1d_kernel(int64_t dim, int W, int64_t CH, int silu, const int64_t *__restrict__ start,
                              const int32_t *__restrict__ len, const T *x, int64_t xts, const T *__restrict__ w,
                              const T *__restrict__ bias, const T *__restrict__ halo, T *out, int64_t ots) {
  const int b = blockIdx.z;
  const int64_t k = blockIdx.y, nchunks = gridDim.y;
  const int64_t c = (int64_t)blockIdx.x * CONV_THREADS + threadIdx.x;
  if (c >= dim) return;
  const int64_t L = len[b], s0 = start[b], H = W - 1;
  const int64_t t0 = k * CH, t1 = min(L, t0 + CH);
  if (t0 >= L) return;
  float win[CONV_MAX_WIDTH], wt[CONV_MAX_WIDTH];
  const T *hw = halo + ((b * nchunks + k) * dim + c) * H;
#pragma unroll
  for (int j = 0; j < CONV_MAX_WIDTH; j++) {
    win[j] = j < H ? sf_to_f<T>(hw[j]) : 0.0f;
    wt[j] = j < W ? sf_ldg<T>(w + c * W + j) : 0.0f;
  }
  const float bc = bias ? sf_ldg<T>(bias + c) : 0.0f;
  for (int64_t t = t0; t < t1; t++) {
    const int64_t row = s0 + t;
    float acc = bc;
#pragma unroll
    for (int j = 0; j < CONV_MAX_WIDTH; j++) {
      if (j == H) win[j] = sf_to_f<T>(x[row * xts + c]);
      if (j < W) acc += wt[j] * win[j];
    }
    if (silu) acc = sf_silu(acc);
    out[row * ots + c] = sf_from_f<T>(acc);
#pragma unroll
    for (int j = 0; j + 1 < CONV_MAX_WIDTH; j++)
      if (j < H) win[j] = win[j + 1];
  }
}

template <typename T>
__global__ void conv1d_state_copy_kernel(int64_t n_per_batch, int32_t batch, const T *__restrict__ new_state,
                                         T *__restrict__ state, int64_t sbs) {
  const int64_t total = n_per_batch * batch;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = i / n_per_batch, e = i % n_per_batch;
    state[b * sbs + e] = new_state[i];
  }
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_conv1d_params *p, sf_error *err) {
  cudaStream_t s = sf_cuda_stream(ctx);
  const int64_t B = p->seqs.batch, dim = p->dim, H = p->width - 1, ML = p->seqs.max_len;
  /* Chunks so that about 2^18 threads run, at most 65535 per sequence. */
  int64_t nchunks = ((int64_t)1 << 18) / (B * dim);
  if (nchunks < 1) nchunks = 1;
  if (nchunks > ML) nchunks = ML;
  if (nchunks > 65535) nchunks = 65535;
  const int64_t CH = (ML + nchunks - 1) / nchunks;
  nchunks = (ML + CH - 1) / CH;
  const int want_state = H > 0 && p->conv_state;
  const size_t halo_elems = (size_t)(B * nchunks * dim * H), state_elems = want_state ? (size_t)(B * dim * H) : 0;
  void *ws;
  SF_TRY(sf_cuda_workspace(ctx, (halo_elems + state_elems) * sizeof(T) + 256, &ws, err));
  T *halo = (T *)ws;
  T *new_state = want_state ? (T *)((char *)ws + sf_align_up(halo_elems * sizeof(T), 256)) : nullptr;
  const unsigned cblocks = (unsigned)((dim + CONV_THREADS - 1) / CONV_THREADS);
  dim3 grid(cblocks, (unsigned)nchunks, (unsigned)B);
  if (H > 0) {
    conv1d_halo_kernel<T><<<grid, CONV_THREADS, 0, s>>>(dim, p->width, CH, p->seqs.start, p->seqs.len,
                                                        (const T *)p->x, p->x_token_stride,
                                                        (const T *)p->conv_state, p->state_batch_stride,
                                                        p->has_initial_state, halo, new_state);
    SF_CUDA_LAUNCHED("conv1d_halo_kernel");
  }
  conv1d_kernel<T><<<grid, CONV_THREADS, 0, s>>>(dim, p->width, CH, p->silu, p->seqs.start, p->seqs.len,
                                                 (const T *)p->x, p->x_token_stride, (const T *)p->weight,
                                                 (const T *)p->bias, halo, (T *)p->out, p->out_token_stride);
  SF_CUDA_LAUNCHED("conv1d_kernel");
  if (want_state) {
    conv1d_state_copy_kernel<T><<<sf_grid_for(B * dim * H, 256, 4096), 256, 0, s>>>(
        dim * H, (int32_t)B, new_state, (T *)p->conv_state, p->state_batch_stride);
    SF_CUDA_LAUNCHED("conv1d_state_copy_kernel");
  }
  return SF_OK;
}

extern "C" SF_CUDA_OP(conv1d, sf_conv1d_params) {
  if (p->dim <= 0 || p->width <= 0 || p->width > CONV_MAX_WIDTH)
    return sf_fail(err, SF_ERR_ARG, "conv1d: need dim > 0 and width in [1, %d], got %lld and %d",
                   (int)CONV_MAX_WIDTH, (long long)p->dim, (int)p->width);
  if (p->seqs.batch < 0 || p->seqs.max_len < 0)
    return sf_fail(err, SF_ERR_ARG, "conv1d: negative batch %d or max_len %lld", (int)p->seqs.batch,
                   (long long)p->seqs.max_len);
  if (p->width > 1 && p->seqs.batch > 0 && !p->conv_state)
    return sf_fail(err, SF_ERR_ARG, "conv1d: conv_state is required when width > 1");
  if (p->seqs.batch > 65535 || (p->dim + CONV_THREADS - 1) / CONV_THREADS > 0x7fffffffLL)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "conv1d: batch %d > 65535", (int)p->seqs.batch);
  if (p->seqs.batch == 0 || p->seqs.max_len == 0) return SF_OK;
  if (!p->seqs.start || !p->seqs.len || !p->x || !p->weight || !p->out)
    return sf_fail(err, SF_ERR_ARG, "conv1d: seqs, x, weight and out must be non-NULL");
  SF_DISPATCH(p->dtype, "conv1d", launch<T>(ctx, p, err));
}
