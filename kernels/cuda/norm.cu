/* RMSNorm, LayerNorm and gated RMSNorm (Mamba-2, norm_before_gate = false).
 * One block per row (grid-stride over rows), fp32 statistics through warp
 * shuffles and a block reduction. Each element is read and written by the
 * same thread after the row's statistics are known, so out may alias x.
 * RMS and LayerNorm share one path (RMS: mean 0, no bias), which also writes
 * the optional second output (w2 non-NULL) from the same statistics: both
 * LayerNorms of a GPT-NeoX layer in one kernel.
 * Launched with programmatic dependent launch (cuda_common.cuh).
 * Workspace: none. */
#include "cuda_common.cuh"

enum { NORM_WREG = 4 /* weight elements a thread may keep in registers */ };

/* A thread's weights (and biases) in registers: elements threadIdx.x + j *
 * blockDim.x, j < NORM_WREG, of each vector that is present. */
struct norm_weights {
  float w[NORM_WREG], b[NORM_WREG], w2[NORM_WREG], b2[NORM_WREG];
};

template <typename T>
__device__ __forceinline__ float norm_ld(const T *__restrict__ p, int64_t i) {
  return p ? sf_ldg<T>(p + i) : 0.0f;
}

/* Element i of a gated row before its scale: x[i] silu(z[i]). */
template <typename T, typename TX>
__device__ __forceinline__ float norm_gated(const TX *xr, const T *zr, int64_t i) {
  return sf_to_f<TX>(xr[i]) * sf_silu(sf_to_f<T>(zr[i]));
}

/* Element i of a normalised row: v times the weight, plus the bias, into
 * out (and out2); wj: the index of i in the thread's registers, or -1 to
 * read the weights from memory. */
template <typename T>
__device__ __forceinline__ void norm_emit(float v, int64_t i, int wj, const norm_weights &r,
                                          const T *__restrict__ w, const T *__restrict__ b, T *orow,
                                          const T *__restrict__ w2, const T *__restrict__ b2, T *orow2) {
  if (orow2) {
    const float w2i = wj >= 0 ? r.w2[wj] : norm_ld(w2, i), b2i = wj >= 0 ? r.b2[wj] : norm_ld(b2, i);
    orow2[i] = sf_from_f<T>(v * w2i + b2i);
  }
  const float wi = wj >= 0 ? r.w[wj] : norm_ld(w, i), bi = wj >= 0 ? r.b[wj] : norm_ld(b, i);
  orow[i] = sf_from_f<T>(v * wi + bi);
}

/* Where a thread's share of the row is at most NORM_WREG elements (decode:
 * one row, wide blocks) the weights are constants of the step, loaded
 * before the wait while the kernel before still runs; otherwise each is
 * read where used. wreg also requires the whole row to be one group. */
template <typename T, typename TX>
__global__ void norm_kernel(int kind, int64_t n_rows, int64_t d, int64_t group, float eps,
                            const TX *x, int64_t xs, const T *z, int64_t zs,
                            const T *__restrict__ w, const T *__restrict__ b, T *out, int64_t os,
                            const T *__restrict__ w2, const T *__restrict__ b2, T *__restrict__ out2,
                            int64_t os2) {
  __shared__ float scratch[32];
  sf_pdl_release();
  const bool wreg = d <= (int64_t)NORM_WREG * blockDim.x && group == d;
  norm_weights r;
  if (wreg) {
#pragma unroll
    for (int j = 0; j < NORM_WREG; j++) {
      const int64_t i = threadIdx.x + (int64_t)j * blockDim.x;
      const bool in = i < d;
      r.w[j] = in ? norm_ld(w, i) : 0.0f, r.b[j] = in ? norm_ld(b, i) : 0.0f;
      r.w2[j] = in ? norm_ld(w2, i) : 0.0f, r.b2[j] = in ? norm_ld(b2, i) : 0.0f;
    }
  }
  sf_pdl_wait();
  for (int64_t rr = blockIdx.x; rr < n_rows; rr += gridDim.x) {
    const TX *xr = x + rr * xs;
    T *orow = out + rr * os;
    if (kind != SF_NORM_GATED_RMS) {
      float mean = 0.0f;
      if (kind == SF_NORM_LAYER) {
        float s = 0.0f;
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x) s += sf_to_f<TX>(xr[i]);
        mean = sf_block_sum(s, scratch) / (float)d;
      }
      float ss = 0.0f;
      for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
        float c = sf_to_f<TX>(xr[i]) - mean;
        ss += c * c;
      }
      ss = sf_block_sum(ss, scratch);
      const float inv = 1.0f / sqrtf(ss / (float)d + eps);
      T *orow2 = out2 ? out2 + rr * os2 : nullptr;
      /* x[i] is read once, before out[i] (which may alias it) is written. */
      if (wreg) {
#pragma unroll
        for (int j = 0; j < NORM_WREG; j++) {
          const int64_t i = threadIdx.x + (int64_t)j * blockDim.x;
          if (i < d) norm_emit<T>((sf_to_f<TX>(xr[i]) - mean) * inv, i, j, r, w, b, orow, w2, b2, orow2);
        }
      } else {
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
          norm_emit<T>((sf_to_f<TX>(xr[i]) - mean) * inv, i, -1, r, w, b, orow, w2, b2, orow2);
      }
    } else {
      const T *zr = z + rr * zs;
      for (int64_t g0 = 0; g0 < d; g0 += group) {
        float ss = 0.0f;
        for (int64_t i = g0 + threadIdx.x; i < g0 + group; i += blockDim.x) {
          const float v = norm_gated(xr, zr, i);
          ss += v * v;
        }
        ss = sf_block_sum(ss, scratch);
        const float inv = 1.0f / sqrtf(ss / (float)group + eps);
        if (wreg) { /* one group: g0 = 0 */
#pragma unroll
          for (int j = 0; j < NORM_WREG; j++) {
            const int64_t i = threadIdx.x + (int64_t)j * blockDim.x;
            if (i < d) orow[i] = sf_from_f<T>(norm_gated(xr, zr, i) * inv * r.w[j]);
          }
        } else {
          for (int64_t i = g0 + threadIdx.x; i < g0 + group; i += blockDim.x)
            orow[i] = sf_from_f<T>(norm_gated(xr, zr, i) * inv * sf_ldg<T>(w + i));
        }
      }
    }
  }
}

/* TX: the type of x (T, or f32 for a residual stream kept in f32). */
template <typename T, typename TX>
static sf_status launch_x(sf_op_ctx *ctx, const sf_norm_params *p, int64_t group, sf_error *err) {
  /* A few rows (decode) get wide blocks: each row's loads are then spread
   * over more threads instead of walked in latency-bound steps. */
  const int few = p->n_rows <= 2 * (int64_t)sf_cuda_impl_of(ctx)->num_sms;
  const int threads = p->d >= 1024 ? (few ? 1024 : 256) : (p->d >= 256 ? 128 : 64);
  const unsigned blocks = sf_grid_for(p->n_rows, 1, 1 << 20);
  /* RMSNorm takes no bias; without weight2 there is no second output. */
  const int layer = p->kind == SF_NORM_LAYER, two = p->weight2 != NULL;
  SF_CUDA_LAUNCH("norm_kernel", ctx, norm_kernel<T, TX>, blocks, threads, 0, (int)p->kind, p->n_rows, p->d, group,
                 p->eps, (const TX *)p->x, p->x_row_stride, (const T *)p->z, p->z_row_stride, (const T *)p->weight,
                 (const T *)(layer ? p->bias : NULL), (T *)p->out, p->out_row_stride,
                 (const T *)(two ? p->weight2 : NULL), (const T *)(layer && two ? p->bias2 : NULL),
                 (T *)(two ? p->out2 : NULL), p->out2_row_stride);
  return SF_OK;
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_norm_params *p, int64_t group, sf_error *err) {
  return p->x_f32 ? launch_x<T, float>(ctx, p, group, err) : launch_x<T, T>(ctx, p, group, err);
}

extern "C" SF_CUDA_OP(norm, sf_norm_params) {
  int64_t group;
  SF_TRY(sf_norm_check(p, &group, err));
  const char *name = sf_norm_name(p);
  if (p->x_f32 && p->kind == SF_NORM_GATED_RMS)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "%s: an f32 x (x_f32) is for plain norms only", name);
  if (p->n_rows == 0) return SF_OK;
  SF_DISPATCH(p->dtype, name, launch<T>(ctx, p, group, err));
}
