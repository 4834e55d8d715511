/* conv1d for one token per sequence (decode): one thread per (sequence,
 * channel) computes the output from conv_state and the new input, then
 * shifts the input into the state (conv1d_update.cuh). Workspace: none. */
#include "conv1d_update.cuh"

template <typename T>
__global__ void conv1d_update_kernel(int32_t batch, int64_t dim, int W, int silu, const T *x,
                                     int64_t xbs, const T *__restrict__ w, const T *__restrict__ bias, T *state,
                                     int64_t sbs, T *out, int64_t obs) {
  sf_pdl_release();
  sf_pdl_wait();
  const int b = blockIdx.y;
  const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= dim || b >= batch) return;
  T *st = state ? state + (int64_t)b * sbs + c * (W - 1) : nullptr;
  out[(int64_t)b * obs + c] =
      sf_conv1d_update_channel<T>(x[(int64_t)b * xbs + c], w + c * W, bias ? sf_ldg<T>(bias + c) : 0.0f, st, W, silu);
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_conv1d_update_params *p, sf_error *err) {
  dim3 grid((unsigned)((p->dim + 127) / 128), (unsigned)p->batch);
  SF_CUDA_LAUNCH("conv1d_update_kernel", ctx, conv1d_update_kernel<T>, grid, 128, 0, p->batch, p->dim, p->width,
                 p->silu, (const T *)p->x, p->x_batch_stride, (const T *)p->weight, (const T *)p->bias,
                 (T *)p->conv_state, p->state_batch_stride, (T *)p->out, p->out_batch_stride);
  return SF_OK;
}

extern "C" SF_CUDA_OP(conv1d_update, sf_conv1d_update_params) {
  if (p->dim <= 0 || p->width <= 0 || p->batch < 0)
    return sf_fail(err, SF_ERR_ARG, "conv1d_update: need dim > 0, width > 0, batch >= 0 (got %lld, %d, %d)",
                   (long long)p->dim, (int)p->width, (int)p->batch);
  if (p->batch > 65535 || (p->dim + 127) / 128 > 0x7fffffffLL)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "conv1d_update: batch %d > 65535", (int)p->batch);
  if (p->batch == 0) return SF_OK;
  if (!p->x || !p->weight || !p->out || (p->width > 1 && !p->conv_state))
    return sf_fail(err, SF_ERR_ARG, "conv1d_update: x, weight, out and conv_state must be non-NULL");
  SF_DISPATCH(p->dtype, "conv1d_update", launch<T>(ctx, p, err));
}
