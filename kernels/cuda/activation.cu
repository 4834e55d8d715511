/* out = f(x) elementwise: GELU (exact, erf), SiLU, softplus (x for x > 20).
 * Grid-stride over rows x columns; out may alias x (each element is read
 * and written by one thread). Workspace: none. */
#include "cuda_common.cuh"

template <typename T>
__global__ void activation_kernel(int kind, int64_t n_rows, int64_t d, const T *x, int64_t xs, T *out,
                                  int64_t os) {
  sf_pdl_release();
  sf_pdl_wait();
  const int64_t total = n_rows * d;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / d, c = i % d;
    const float v = sf_to_f<T>(x[r * xs + c]);
    float y;
    if (kind == SF_ACT_GELU) y = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    else if (kind == SF_ACT_SILU) y = sf_silu(v);
    else y = sf_softplus(v);
    out[r * os + c] = sf_from_f<T>(y);
  }
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_activation_params *p, sf_error *err) {
  const unsigned blocks = sf_grid_for(p->n_rows * p->d, 256, 1 << 16);
  SF_CUDA_LAUNCH("activation_kernel", ctx, activation_kernel<T>, blocks, 256, 0, (int)p->kind, p->n_rows, p->d,
                 (const T *)p->x, p->x_row_stride, (T *)p->out, p->out_row_stride);
  return SF_OK;
}

extern "C" SF_CUDA_OP(activation, sf_activation_params) {
  if (p->kind != SF_ACT_GELU && p->kind != SF_ACT_SILU && p->kind != SF_ACT_SOFTPLUS)
    return sf_fail(err, SF_ERR_ARG, "activation: unknown kind %d", (int)p->kind);
  if (p->n_rows < 0 || p->d < 0)
    return sf_fail(err, SF_ERR_ARG, "activation: negative size (n_rows %lld, d %lld)",
                   (long long)p->n_rows, (long long)p->d);
  if (p->x_row_stride < p->d || p->out_row_stride < p->d)
    return sf_fail(err, SF_ERR_ARG, "activation: row strides (x %lld, out %lld) must be >= d = %lld",
                   (long long)p->x_row_stride, (long long)p->out_row_stride, (long long)p->d);
  if (p->n_rows == 0 || p->d == 0) return SF_OK;
  if (!p->x || !p->out) return sf_fail(err, SF_ERR_ARG, "activation: x and out must be non-NULL");
  SF_DISPATCH(p->dtype, "activation", launch<T>(ctx, p, err));
}
