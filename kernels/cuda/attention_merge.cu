/* attention_merge on the cuda backend: acc <- acc (+) part by log-sum-exp
 * (the semantics are in ops/attention.h; kernels/cpu/attention_merge.c is
 * the reference). A memory-bound elementwise pass: each (row, head) reads
 * its two lses, then head_dim elements of out and of part, and writes
 * head_dim of out and one lse.
 *
 * Layout: a group of G lanes (a power of two <= 32, sized to head_dim) per
 * (row, head), 32 / G groups per warp, 8 warps per block; grid y over
 * sequences, x grid-strided over a sequence's (row, head) items. Every lane
 * of a group reads both lses and computes the weights itself (no shuffle);
 * lane 0 writes the new lse after a __syncwarp, so no lane of the group can
 * still be about to read the old one (independent thread scheduling).
 * The loop is warp-uniform (a warp's groups iterate together, idle ones
 * included) so the full-warp __syncwarp is legal.
 *
 * Vectorised path: head_dim a multiple of 8 and every base pointer and
 * stride of out and part 16-byte aligned in bytes: a lane moves 8 elements
 * per access (one 16-byte load of a bf16/f16 tensor, two of an f32 one).
 * Otherwise one element per lane per step. Any out/part dtype pair of f32,
 * bf16 and f16 (an f32 accumulator over 16-bit parts, and its final merge
 * back into a 16-bit output); math in fp32 with expf/logf like the cpu.
 * Workspace: none. */
#include "cuda_common.cuh"

namespace {

constexpr int kThreads = 256;

/* 8 elements at p (16-byte aligned) to/from fp32. part is read-only for the
 * kernel's lifetime: its loads go through the read-only path. */
__device__ __forceinline__ void load8(const float *p, float v[8], bool ro) {
  const float4 a = ro ? __ldg((const float4 *)p) : *(const float4 *)p;
  const float4 b = ro ? __ldg((const float4 *)p + 1) : *((const float4 *)p + 1);
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
__device__ __forceinline__ void load8(const __nv_bfloat16 *p, float v[8], bool ro) {
  uint4 u = ro ? __ldg((const uint4 *)p) : *(const uint4 *)p;
  const __nv_bfloat162 *h = (const __nv_bfloat162 *)&u;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 f = __bfloat1622float2(h[i]);
    v[2 * i] = f.x, v[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void load8(const __half *p, float v[8], bool ro) {
  uint4 u = ro ? __ldg((const uint4 *)p) : *(const uint4 *)p;
  const __half2 *h = (const __half2 *)&u;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 f = __half22float2(h[i]);
    v[2 * i] = f.x, v[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void store8(float *p, const float v[8]) {
  ((float4 *)p)[0] = make_float4(v[0], v[1], v[2], v[3]);
  ((float4 *)p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void store8(__nv_bfloat16 *p, const float v[8]) {
  uint4 u;
  __nv_bfloat162 *h = (__nv_bfloat162 *)&u;
#pragma unroll
  for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
  *(uint4 *)p = u;
}
__device__ __forceinline__ void store8(__half *p, const float v[8]) {
  uint4 u;
  __half2 *h = (__half2 *)&u;
#pragma unroll
  for (int i = 0; i < 4; i++) h[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
  *(uint4 *)p = u;
}

/* VEC = 8 (the aligned path) or 1; G lanes per (row, head). */
template <typename TO, typename TP, int VEC>
__global__ void __launch_bounds__(kThreads)
    merge_kernel(int n_heads, int head_dim, int G, const int64_t *__restrict__ start,
                 const int32_t *__restrict__ len, TO *out, int64_t ots, int64_t ohs, float *lse, int64_t lts,
                 const TP *__restrict__ part, int64_t pts, int64_t phs, const float *__restrict__ part_lse,
                 int64_t plts) {
  const int b = blockIdx.y;
  const int64_t items = (int64_t)len[b] * n_heads;
  const int64_t s0 = start[b];
  const int lane = threadIdx.x & 31, g = lane / G, lg = lane % G, groups = 32 / G;
  const int64_t warp0 = (int64_t)blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5);
  const int64_t warp_step = (int64_t)gridDim.x * (kThreads / 32);
  const int64_t tiles = (items + groups - 1) / groups;
  for (int64_t w = warp0; w < tiles; w += warp_step) { /* uniform over the warp */
    const int64_t item = w * groups + g;
    const bool active = item < items;
    float lb = -INFINITY, new_lse = 0.0f;
    int64_t lse_at = 0;
    if (active) {
      const int64_t row = s0 + item / n_heads;
      const int h = (int)(item % n_heads);
      lse_at = row * lts + h;
      lb = __ldg(part_lse + row * plts + h);
      const float la = lse[lse_at];
      TO *o = out + row * ots + (int64_t)h * ohs;
      const TP *ob = part + row * pts + (int64_t)h * phs;
      if (lb != -INFINITY) {
        /* la = -inf: the accumulator holds nothing (its output may be NaN
         * garbage, never read): weights 0 and 1 and a plain copy. */
        const bool copy = la == -INFINITY;
        const float m = fmaxf(la, lb);
        const float wa = copy ? 0.0f : expf(la - m), wb = copy ? 1.0f : expf(lb - m);
        const float inv = 1.0f / (wa + wb);
        new_lse = copy ? lb : m + logf(wa + wb);
        if (VEC == 8) {
          for (int d = lg * 8; d < head_dim; d += G * 8) {
            float x[8], y[8];
            load8(ob + d, y, true);
            if (!copy) load8(o + d, x, false);
#pragma unroll
            for (int i = 0; i < 8; i++) x[i] = copy ? y[i] : (wa * x[i] + wb * y[i]) * inv;
            store8(o + d, x);
          }
        } else {
          for (int d = lg; d < head_dim; d += G) {
            const float y = sf_ld(ob + d);
            o[d] = sf_from_f<TO>(copy ? y : (wa * sf_to_f<TO>(o[d]) + wb * y) * inv);
          }
        }
      }
    }
    __syncwarp(); /* every lane of the group has read la before lane 0 replaces it */
    if (active && lg == 0 && lb != -INFINITY) lse[lse_at] = new_lse;
  }
}

/* Lanes per (row, head): enough for one vector step over head_dim, a power
 * of two (so groups tile the warp), at most a warp. */
int group_lanes(int steps) {
  int g = 1;
  while (g < steps && g < 32) g *= 2;
  return g;
}

bool aligned16(const void *p, int64_t s1, int64_t s2, size_t esz) {
  return ((uintptr_t)p % 16) == 0 && ((uint64_t)s1 * esz) % 16 == 0 && ((uint64_t)s2 * esz) % 16 == 0;
}

template <typename TO, typename TP>
sf_status launch(sf_op_ctx *ctx, const sf_attention_merge_params *p, sf_error *err) {
  const bool vec = p->head_dim % 8 == 0 && aligned16(p->out, p->out_token_stride, p->out_head_stride, sizeof(TO)) &&
                   aligned16(p->part, p->part_token_stride, p->part_head_stride, sizeof(TP));
  const int G = group_lanes(vec ? p->head_dim / 8 : p->head_dim);
  const int64_t items = p->seqs.max_len * p->n_heads, per_block = (int64_t)(kThreads / 32) * (32 / G);
  const dim3 grid(sf_grid_for(items, (int)per_block, 1 << 16), (unsigned)p->seqs.batch);
  cudaStream_t s = sf_cuda_stream(ctx);
  if (vec)
    merge_kernel<TO, TP, 8><<<grid, kThreads, 0, s>>>(
        p->n_heads, p->head_dim, G, p->seqs.start, p->seqs.len, (TO *)p->out, p->out_token_stride,
        p->out_head_stride, p->lse, p->lse_token_stride, (const TP *)p->part, p->part_token_stride,
        p->part_head_stride, p->part_lse, p->part_lse_token_stride);
  else
    merge_kernel<TO, TP, 1><<<grid, kThreads, 0, s>>>(
        p->n_heads, p->head_dim, G, p->seqs.start, p->seqs.len, (TO *)p->out, p->out_token_stride,
        p->out_head_stride, p->lse, p->lse_token_stride, (const TP *)p->part, p->part_token_stride,
        p->part_head_stride, p->part_lse, p->part_lse_token_stride);
  SF_CUDA_LAUNCHED("attention merge_kernel");
  return SF_OK;
}

/* The part's element type bound as T, then the output's. */
template <typename TP>
sf_status dispatch_out(sf_op_ctx *ctx, const sf_attention_merge_params *p, sf_error *err) {
  SF_DISPATCH(p->out_dtype, "attention_merge", launch<T, TP>(ctx, p, err));
}

}  // namespace

extern "C" SF_CUDA_OP(attention_merge, sf_attention_merge_params) {
  static const char *op = "attention_merge";
  if (p->n_heads <= 0 || p->head_dim <= 0)
    return sf_fail(err, SF_ERR_ARG, "%s: need n_heads > 0 and head_dim > 0, got %d and %d", op, (int)p->n_heads,
                   (int)p->head_dim);
  if (p->seqs.batch < 0 || p->seqs.max_len < 0)
    return sf_fail(err, SF_ERR_ARG, "%s: negative batch %d or max_len %lld", op, (int)p->seqs.batch,
                   (long long)p->seqs.max_len);
  if (p->seqs.batch > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "%s: batch %d > 65535", op, (int)p->seqs.batch);
  if (p->seqs.batch == 0 || p->seqs.max_len == 0) return SF_OK;
  if (!p->seqs.start || !p->seqs.len || !p->out || !p->lse || !p->part || !p->part_lse)
    return sf_fail(err, SF_ERR_ARG, "%s: seqs, out, lse, part and part_lse are required", op);
  SF_DISPATCH(p->dtype, op, dispatch_out<T>(ctx, p, err));
}
