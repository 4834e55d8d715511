/* Decode attention (one query per sequence) with split-KV (flash-decoding).
 *
 * Fast path (bf16/f16, head_dim 64 or 128, k/v 16-byte aligned with strides
 * that are multiples of 8 elements, scale > 0): one block of 128 threads per
 * (split, kv head, group of up to 4 query heads that read it, sequence), so
 * GQA heads share each K/V load. A key row is HD / 8 chunks of 16 bytes;
 * thread (row slot r, chunk c) loads chunk c of keys r, r + R, ... (R = 128 /
 * (HD / 8) row slots) through its own cp.async slots in shared memory (3
 * stages of 2 keys of K and V: two stages in flight while one is used, no
 * barrier since a thread reads only what it copied), dots its 8
 * channels with the (pre-scaled, log2-domain) queries, sums over the chunk's
 * lanes with shuffles and keeps an online softmax and 8 output channels per
 * query head; the row slots merge through shared memory at the end. The
 * split count fills the device (about 8 blocks per SM), at most 256 parts,
 * at least 64 keys each. The merge kernel reads the parts with float4 loads,
 * 8 or 16 parts at a time per block.
 *
 * Fallback (any other shape or layout), pass 1: one block of 4 warps per
 * (split, head, sequence). The keys [0, cache_len[b]) are cut into num_splits contiguous parts of
 * ceil(cache_len / num_splits) keys (so the parts follow the actual length,
 * not max_len). Each warp walks every fourth key of its part: a dot product
 * over the lanes (head_dim <= 128, 4 channels a lane) and an online softmax
 * with the output in registers; the 4 warps merge through shared memory and
 * the block writes its normalised partial output and log-sum-exp (fp32) to
 * the workspace. Pass 2: one block per (head, sequence) merges the parts
 * with weights exp(lse_s - max lse). Empty parts have lse = -inf.
 * num_splits = 0 picks enough blocks for two waves of the device (at most
 * 64 parts). lse (optional) gets M + log(sum_s exp(lse_s - M)). A cache_len outside [1, max_len] writes nothing and is reported
 * by the next sync. Workspace: batch * n_heads * num_splits *
 * (head_dim + 1) * 4 bytes. */
#include <math.h>

#include "cuda_common.cuh"

enum { DEC_WARPS = 4, DEC_THREADS = 128, DEC_PER_LANE = 4, DEC_MAX_HD = 128 };

template <typename T>
__global__ void __launch_bounds__(DEC_THREADS)
decode_split_kernel(int n_heads, int group, int head_dim, float scale, const T *q, int64_t qbs,
                    int64_t qhs, const T *ck, const T *cv, int64_t cbs, int64_t cps,
                    int64_t chs, int64_t max_len, const int32_t *__restrict__ cache_len,
                    float *__restrict__ part_o, float *__restrict__ part_lse, sf_cuda_status *st) {
  sf_pdl_release();
  sf_pdl_wait();
  __shared__ float sm_m[DEC_WARPS], sm_l[DEC_WARPS];
  __shared__ float sm_acc[DEC_WARPS][DEC_MAX_HD];
  const int split = blockIdx.x, h = blockIdx.y, b = blockIdx.z, S = gridDim.x;
  const int64_t n = cache_len[b];
  if (n < 1 || n > max_len) {
    if (split == 0 && h == 0 && threadIdx.x == 0) sf_cuda_record(st, SF_CST_DECODE_CACHE, b, n, max_len);
    return;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t chunk = (n + S - 1) / S;
  const int64_t k_lo = (int64_t)split * chunk, k_hi = min(n, k_lo + chunk);
  const int kh = h / group;
  const T *qh = q + (int64_t)b * qbs + (int64_t)h * qhs;
  const T *kb = ck + (int64_t)b * cbs + (int64_t)kh * chs;
  const T *vb = cv + (int64_t)b * cbs + (int64_t)kh * chs;

  float qv[DEC_PER_LANE], acc[DEC_PER_LANE];
#pragma unroll
  for (int i = 0; i < DEC_PER_LANE; i++) {
    const int d = lane + 32 * i;
    qv[i] = d < head_dim ? sf_to_f<T>(qh[d]) * scale : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t key = k_lo + warp; key < k_hi; key += DEC_WARPS) {
    const T *krow = kb + key * cps, *vrow = vb + key * cps;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < DEC_PER_LANE; i++) {
      const int d = lane + 32 * i;
      if (d < head_dim) s += qv[i] * sf_to_f<T>(krow[d]);
    }
    s = sf_warp_sum(s);
    const float m_new = fmaxf(m, s);
    const float alpha = expf(m - m_new), pk = expf(s - m_new);
    l = l * alpha + pk;
#pragma unroll
    for (int i = 0; i < DEC_PER_LANE; i++) {
      const int d = lane + 32 * i;
      acc[i] = acc[i] * alpha + (d < head_dim ? pk * sf_to_f<T>(vrow[d]) : 0.0f);
    }
    m = m_new;
  }
  if (lane == 0) { sm_m[warp] = m; sm_l[warp] = l; }
#pragma unroll
  for (int i = 0; i < DEC_PER_LANE; i++) sm_acc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < DEC_WARPS; w++) M = fmaxf(M, sm_m[w]);
  float L = 0.0f, wts[DEC_WARPS];
#pragma unroll
  for (int w = 0; w < DEC_WARPS; w++) {
    wts[w] = sm_m[w] == -INFINITY ? 0.0f : expf(sm_m[w] - M);
    L += sm_l[w] * wts[w];
  }
  const int64_t slot = ((int64_t)b * n_heads + h) * S + split;
  for (int d = threadIdx.x; d < head_dim; d += DEC_THREADS) {
    float o = 0.0f;
#pragma unroll
    for (int w = 0; w < DEC_WARPS; w++) o += sm_acc[w][d] * wts[w];
    part_o[slot * head_dim + d] = L > 0.0f ? o / L : 0.0f;
  }
  if (threadIdx.x == 0) part_lse[slot] = L > 0.0f ? M + logf(L) : -INFINITY;
}

template <typename T>
__global__ void decode_merge_kernel(int n_heads, int head_dim, int S, int64_t max_len,
                                    const int32_t *__restrict__ cache_len, const float *part_o,
                                    const float *part_lse, T *__restrict__ out, int64_t obs,
                                    int64_t ohs, float *__restrict__ lse, int64_t lbs) {
  sf_pdl_release();
  sf_pdl_wait();
  const int h = blockIdx.x, b = blockIdx.y;
  const int64_t n = cache_len[b];
  if (n < 1 || n > max_len) return;
  const int64_t slot0 = ((int64_t)b * n_heads + h) * S;
  float M = -INFINITY;
  for (int s = 0; s < S; s++) M = fmaxf(M, part_lse[slot0 + s]);
  float wsum = 0.0f;
  for (int s = 0; s < S; s++) {
    const float ls = part_lse[slot0 + s];
    if (ls != -INFINITY) wsum += expf(ls - M);
  }
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float o = 0.0f;
    for (int s = 0; s < S; s++) {
      const float ls = part_lse[slot0 + s];
      if (ls != -INFINITY) o += expf(ls - M) * part_o[(slot0 + s) * head_dim + d];
    }
    out[(int64_t)b * obs + (int64_t)h * ohs + d] = sf_from_f<T>(wsum > 0.0f ? o / wsum : 0.0f);
  }
  if (lse && threadIdx.x == 0) lse[(int64_t)b * lbs + h] = M + logf(wsum);
}

/* ---- fast path ------------------------------------------------------------ */

enum { DF_THREADS = 128, DF_U = 2, DF_STAGES = 3, DF_MAX_GP = 4, DF_MAX_SPLITS = 256, DF_MIN_KEYS = 64 };
/* Each thread's own cp.async slots: stage st, slot j (K of keys u = j, V of
 * keys u = j - DF_U) at ((st * 2 * DF_U + j) * DF_THREADS + tid) * 16 bytes;
 * a thread reads back only what it copied, so no barrier is needed. */
enum { DF_SMEM = DF_STAGES * 2 * DF_U * DF_THREADS * 16 };

template <typename T> __device__ __forceinline__ void df_unpack8(const uint4 &u, float (&f)[8]);
template <> __device__ __forceinline__ void df_unpack8<__nv_bfloat16>(const uint4 &u, float (&f)[8]) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}
template <> __device__ __forceinline__ void df_unpack8<__half>(const uint4 &u, float (&f)[8]) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 v = __half22float2(*reinterpret_cast<const __half2 *>(&w[i]));
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}

/* 16 bytes global -> shared, asynchronously (L2 only). */
__device__ __forceinline__ void df_cp16(uint32_t saddr, const void *g) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(saddr), "l"(g) : "memory");
}
__device__ __forceinline__ void df_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void df_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ float df_ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

/* Partial results: part_o [b][h][split][HD] (normalised), part_lse
 * [b][h][split] (natural log; -inf for an empty part). */
template <typename T, int HD, int GP>
__global__ void __launch_bounds__(DF_THREADS)
decode_fast_kernel(int n_heads, int group, int n_chunks, float scale_log2, const T *q, int64_t qbs,
                   int64_t qhs, const T *ck, const T *cv, int64_t cbs, int64_t cps,
                   int64_t chs, int64_t max_len, const int32_t *__restrict__ cache_len, float *__restrict__ part_o,
                   float *__restrict__ part_lse, sf_cuda_status *st) {
  sf_pdl_release();
  sf_pdl_wait();
  constexpr int CPR = HD / 8, R = DF_THREADS / CPR, KPI = R * DF_U;
  /* after the loop the copy slots hold the merge area (no static shared
   * memory) */
  static_assert((R * GP * HD + 2 * R * GP) * 4 <= DF_SMEM, "merge area");
  extern __shared__ __align__(16) unsigned char df_smem[];
  float(*sm_acc)[GP][HD] = reinterpret_cast<float(*)[GP][HD]>(df_smem);
  float(*sm_m)[GP] = reinterpret_cast<float(*)[GP]>(df_smem + R * GP * HD * 4);
  float(*sm_l)[GP] = reinterpret_cast<float(*)[GP]>(df_smem + (R * GP * HD + R * GP) * 4);
  const uint32_t sbase = (uint32_t)__cvta_generic_to_shared(df_smem) + threadIdx.x * 16;
  const int split = blockIdx.x, S = gridDim.x, b = blockIdx.z;
  const int kvh = blockIdx.y / n_chunks, chunk = blockIdx.y - kvh * n_chunks;
  const int64_t n = cache_len[b];
  if (n < 1 || n > max_len) {
    if (split == 0 && blockIdx.y == 0 && threadIdx.x == 0) sf_cuda_record(st, SF_CST_DECODE_CACHE, b, n, max_len);
    return;
  }
  const int h0 = kvh * group + chunk * GP;
  const int gh = min(GP, group - chunk * GP);
  const int tid = threadIdx.x, c = tid % CPR, r = tid / CPR;
  const int64_t per = (n + S - 1) / S;
  const int64_t k_lo = (int64_t)split * per, k_hi = min(n, k_lo + per);

  float qf[GP][8], acc[GP][8], m[GP], l[GP];
#pragma unroll
  for (int g = 0; g < GP; g++) {
    const T *qh = q + (int64_t)b * qbs + (int64_t)(h0 + g) * qhs + c * 8;
#pragma unroll
    for (int e = 0; e < 8; e++) {
      qf[g][e] = g < gh ? sf_to_f<T>(qh[e]) * scale_log2 : 0.0f;
      acc[g][e] = 0.0f;
    }
    m[g] = -INFINITY;
    l[g] = 0.0f;
  }

  const char *kbase = (const char *)(ck + (int64_t)b * cbs + (int64_t)kvh * chs + c * 8);
  const char *vbase = (const char *)(cv + (int64_t)b * cbs + (int64_t)kvh * chs + c * 8);
  const int64_t rowb = cps * (int64_t)sizeof(T);
  const int n_iter = k_hi > k_lo ? (int)((k_hi - k_lo + KPI - 1) / KPI) : 0;
  /* stage j: keys k_lo + j * KPI + u * R + r; past k_hi, row k_lo (masked) */
  auto issue = [&](int j) {
    if (j < n_iter) {
      const uint32_t sst = sbase + (uint32_t)((j % DF_STAGES) * 2 * DF_U * DF_THREADS * 16);
#pragma unroll
      for (int u = 0; u < DF_U; u++) {
        const int64_t key = k_lo + (int64_t)j * KPI + u * R + r;
        const int64_t o = (key < k_hi ? key : k_lo) * rowb;
        df_cp16(sst + (uint32_t)(u * DF_THREADS * 16), kbase + o);
        df_cp16(sst + (uint32_t)((DF_U + u) * DF_THREADS * 16), vbase + o);
      }
    }
    df_commit();
  };
#pragma unroll
  for (int j = 0; j < DF_STAGES - 1; j++) issue(j);
  for (int it = 0; it < n_iter; it++) {
    issue(it + DF_STAGES - 1);
    df_wait<DF_STAGES - 1>();
    const int64_t base = k_lo + (int64_t)it * KPI;
    const unsigned char *sst = df_smem + (size_t)(it % DF_STAGES) * 2 * DF_U * DF_THREADS * 16 + threadIdx.x * 16;
    uint4 kr[DF_U], vr[DF_U];
    bool ok[DF_U];
#pragma unroll
    for (int u = 0; u < DF_U; u++) {
      ok[u] = base + u * R + r < k_hi;
      kr[u] = *reinterpret_cast<const uint4 *>(sst + u * DF_THREADS * 16);
      vr[u] = *reinterpret_cast<const uint4 *>(sst + (DF_U + u) * DF_THREADS * 16);
    }
    float s[GP][DF_U];
#pragma unroll
    for (int u = 0; u < DF_U; u++) {
      float kf[8];
      df_unpack8<T>(kr[u], kf);
#pragma unroll
      for (int g = 0; g < GP; g++) {
        float d = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) d = fmaf(qf[g][e], kf[e], d);
        s[g][u] = d;
      }
    }
#pragma unroll
    for (int o = CPR / 2; o > 0; o >>= 1)
#pragma unroll
      for (int g = 0; g < GP; g++)
#pragma unroll
        for (int u = 0; u < DF_U; u++) s[g][u] += __shfl_xor_sync(0xffffffffu, s[g][u], o);
    float vf[DF_U][8];
#pragma unroll
    for (int u = 0; u < DF_U; u++) df_unpack8<T>(vr[u], vf[u]);
#pragma unroll
    for (int g = 0; g < GP; g++) {
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < DF_U; u++) {
        s[g][u] = ok[u] ? s[g][u] : -INFINITY;
        mx = fmaxf(mx, s[g][u]);
      }
      const float msc = mx == -INFINITY ? 0.0f : mx;
      const float alpha = df_ex2(m[g] - msc);
      m[g] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int e = 0; e < 8; e++) acc[g][e] *= alpha;
#pragma unroll
      for (int u = 0; u < DF_U; u++) {
        const float pu = df_ex2(s[g][u] - msc);
        sum += pu;
#pragma unroll
        for (int e = 0; e < 8; e++) acc[g][e] = fmaf(pu, vf[u][e], acc[g][e]);
      }
      l[g] = l[g] * alpha + sum;
    }
  }

  /* merge the row slots (their smem reuses the copy slots): lanes of one
   * slot hold the same m and l */
  df_wait<0>();
  __syncthreads();
  if (c == 0) {
#pragma unroll
    for (int g = 0; g < GP; g++) sm_m[r][g] = m[g], sm_l[r][g] = l[g];
  }
#pragma unroll
  for (int g = 0; g < GP; g++) {
    float4 *dst = reinterpret_cast<float4 *>(&sm_acc[r][g][c * 8]);
    dst[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
    dst[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
  }
  __syncthreads();
  for (int idx = tid; idx < GP * HD; idx += DF_THREADS) {
    const int g = idx / HD, d = idx - g * HD;
    if (g >= gh) continue;
    float M = -INFINITY;
#pragma unroll
    for (int rr = 0; rr < R; rr++) M = fmaxf(M, sm_m[rr][g]);
    float Ls = 0.0f, o = 0.0f;
    if (M != -INFINITY) {
#pragma unroll
      for (int rr = 0; rr < R; rr++) {
        const float w = df_ex2(sm_m[rr][g] - M);
        Ls += sm_l[rr][g] * w;
        o += sm_acc[rr][g][d] * w;
      }
    }
    const int64_t slot = ((int64_t)b * n_heads + h0 + g) * S + split;
    part_o[slot * HD + d] = Ls > 0.0f ? o / Ls : 0.0f;
    if (d == 0) part_lse[slot] = Ls > 0.0f ? (M + log2f(Ls)) * 0.69314718055994531f : -INFINITY;
  }
}

/* One block per (head, sequence): 256 threads = P part lanes x HD / 4 channel
 * quads; each thread sums its parts' float4s, then the lanes merge. */
template <typename T, int HD>
__global__ void __launch_bounds__(256)
decode_fast_merge_kernel(int n_heads, int S, int64_t max_len, const int32_t *__restrict__ cache_len,
                         const float *part_o, const float *part_lse, T *__restrict__ out,
                         int64_t obs, int64_t ohs, float *__restrict__ lse, int64_t lbs) {
  sf_pdl_release();
  sf_pdl_wait();
  constexpr int TQ = HD / 4, P = 256 / TQ;
  __shared__ float sm_w[DF_MAX_SPLITS];
  __shared__ float sm_red[32];
  __shared__ __align__(16) float4 sm_o[P][TQ];
  const int h = blockIdx.x, b = blockIdx.y, tid = threadIdx.x;
  const int64_t n = cache_len[b];
  if (n < 1 || n > max_len) return;
  const int64_t slot0 = ((int64_t)b * n_heads + h) * S;
  float mx = -INFINITY;
  for (int s = tid; s < S; s += 256) mx = fmaxf(mx, part_lse[slot0 + s]);
  const float M = sf_block_max(mx, sm_red);
  float ws = 0.0f;
  for (int s = tid; s < S; s += 256) {
    const float ls = part_lse[slot0 + s];
    const float w = ls == -INFINITY ? 0.0f : expf(ls - M);
    sm_w[s] = w;
    ws += w;
  }
  const float W = sf_block_sum(ws, sm_red); /* ends with a barrier: sm_w is visible */
  const int qd = tid % TQ, pl = tid / TQ;
  float4 a = make_float4(0.f, 0.f, 0.f, 0.f);
  const float4 *po = reinterpret_cast<const float4 *>(part_o + slot0 * HD) + qd;
#pragma unroll 4
  for (int s = pl; s < S; s += P) {
    const float w = sm_w[s];
    const float4 v = po[(int64_t)s * TQ];
    a.x = fmaf(w, v.x, a.x), a.y = fmaf(w, v.y, a.y), a.z = fmaf(w, v.z, a.z), a.w = fmaf(w, v.w, a.w);
  }
  sm_o[pl][qd] = a;
  __syncthreads();
  if (tid < TQ) {
    float4 t = sm_o[0][tid];
    for (int p2 = 1; p2 < P; p2++) {
      const float4 v = sm_o[p2][tid];
      t.x += v.x, t.y += v.y, t.z += v.z, t.w += v.w;
    }
    const float inv = W > 0.0f ? 1.0f / W : 0.0f;
    T *orow = out + (int64_t)b * obs + (int64_t)h * ohs + tid * 4;
    orow[0] = sf_from_f<T>(t.x * inv);
    orow[1] = sf_from_f<T>(t.y * inv);
    orow[2] = sf_from_f<T>(t.z * inv);
    orow[3] = sf_from_f<T>(t.w * inv);
  }
  if (lse && tid == 0) lse[(int64_t)b * lbs + h] = M + logf(W);
}

static bool decode_fast_ok(const sf_attention_decode_params *p) {
  if (p->dtype != SF_BF16 && p->dtype != SF_F16) return false;
  if (p->head_dim != 64 && p->head_dim != 128) return false;
  if (!(p->scale > 0.0f) || !isfinite(p->scale)) return false;
  if ((uintptr_t)p->cache.k % 16 || (uintptr_t)p->cache.v % 16) return false;
  return p->cache.batch_stride % 8 == 0 && p->cache.pos_stride % 8 == 0 && p->cache.head_stride % 8 == 0;
}

template <typename T, int HD, int GP>
static sf_status launch_fast_gp(sf_op_ctx *ctx, const sf_attention_decode_params *p, int S, int n_chunks,
                                float *part_o, float *part_lse, sf_error *err) {
  dim3 g1((unsigned)S, (unsigned)(p->n_kv_heads * n_chunks), (unsigned)p->batch);
  SF_CUDA_TRY(cudaFuncSetAttribute((const void *)decode_fast_kernel<T, HD, GP>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)DF_SMEM));
  SF_CUDA_LAUNCH("decode_fast_kernel", ctx, decode_fast_kernel<T, HD, GP>, g1, DF_THREADS, DF_SMEM, p->n_heads,
                 p->n_heads / p->n_kv_heads, n_chunks, p->scale * 1.4426950408889634f, (const T *)p->q,
                 p->q_batch_stride, p->q_head_stride, (const T *)p->cache.k, (const T *)p->cache.v,
                 p->cache.batch_stride, p->cache.pos_stride, p->cache.head_stride, p->cache.max_len, p->cache_len,
                 part_o, part_lse, sf_cuda_impl_of(ctx)->d_status);
  return SF_OK;
}

template <typename T, int HD>
static sf_status launch_fast(sf_op_ctx *ctx, const sf_attention_decode_params *p, int S, sf_error *err) {
  const int group = p->n_heads / p->n_kv_heads;
  const int gp = group >= 3 ? 4 : group;  /* 1, 2 or 4 query heads per block */
  const int n_chunks = (group + gp - 1) / gp;
  if ((int64_t)p->n_kv_heads * n_chunks > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "attention_decode: %d kv heads", (int)p->n_kv_heads);
  const size_t slots = (size_t)p->batch * p->n_heads * S;
  void *ws;
  SF_TRY(sf_cuda_workspace(ctx, slots * (HD + 1) * sizeof(float), &ws, err));
  float *part_o = (float *)ws, *part_lse = part_o + slots * HD;
  if (gp == 1) SF_TRY((launch_fast_gp<T, HD, 1>(ctx, p, S, n_chunks, part_o, part_lse, err)));
  else if (gp == 2) SF_TRY((launch_fast_gp<T, HD, 2>(ctx, p, S, n_chunks, part_o, part_lse, err)));
  else SF_TRY((launch_fast_gp<T, HD, 4>(ctx, p, S, n_chunks, part_o, part_lse, err)));
  dim3 g2((unsigned)p->n_heads, (unsigned)p->batch);
  SF_CUDA_LAUNCH("decode_fast_merge_kernel", ctx, decode_fast_merge_kernel<T, HD>, g2, 256, 0, p->n_heads, S,
                 p->cache.max_len, p->cache_len, part_o, part_lse, (T *)p->out, p->out_batch_stride,
                 p->out_head_stride, p->lse, p->lse_batch_stride);
  return SF_OK;
}

template <typename T>
static sf_status launch_fast_hd(sf_op_ctx *ctx, const sf_attention_decode_params *p, int S, sf_error *err) {
  return p->head_dim == 64 ? launch_fast<T, 64>(ctx, p, S, err) : launch_fast<T, 128>(ctx, p, S, err);
}

/* Splits for the fast path: about 8 blocks per SM over all (kv head, head
 * chunk, sequence) blocks, at least DF_MIN_KEYS keys a part (by max_len). */
static int fast_splits(sf_op_ctx *ctx, const sf_attention_decode_params *p) {
  const int group = p->n_heads / p->n_kv_heads;
  const int gp = group >= 3 ? 4 : group;
  const int64_t per_split = (int64_t)p->batch * p->n_kv_heads * ((group + gp - 1) / gp);
  const int64_t want = 8LL * sf_cuda_impl_of(ctx)->num_sms;
  int64_t s = (want + per_split - 1) / per_split;
  const int64_t by_len = (p->cache.max_len + DF_MIN_KEYS - 1) / DF_MIN_KEYS;
  if (s > by_len) s = by_len;
  if (s > DF_MAX_SPLITS) s = DF_MAX_SPLITS;
  if (s < 1) s = 1;
  return (int)s;
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_attention_decode_params *p, int S, sf_error *err) {
  const size_t slots = (size_t)p->batch * p->n_heads * S;
  void *ws;
  SF_TRY(sf_cuda_workspace(ctx, slots * (p->head_dim + 1) * sizeof(float), &ws, err));
  float *part_o = (float *)ws, *part_lse = part_o + slots * p->head_dim;
  dim3 g1((unsigned)S, (unsigned)p->n_heads, (unsigned)p->batch);
  SF_CUDA_LAUNCH("decode_split_kernel", ctx, decode_split_kernel<T>, g1, DEC_THREADS, 0, p->n_heads,
                 p->n_heads / p->n_kv_heads, p->head_dim, p->scale, (const T *)p->q, p->q_batch_stride,
                 p->q_head_stride, (const T *)p->cache.k, (const T *)p->cache.v, p->cache.batch_stride,
                 p->cache.pos_stride, p->cache.head_stride, p->cache.max_len, p->cache_len, part_o, part_lse,
                 sf_cuda_impl_of(ctx)->d_status);
  dim3 g2((unsigned)p->n_heads, (unsigned)p->batch);
  SF_CUDA_LAUNCH("decode_merge_kernel", ctx, decode_merge_kernel<T>, g2, DEC_THREADS, 0, p->n_heads, p->head_dim, S,
                 p->cache.max_len, p->cache_len, part_o, part_lse, (T *)p->out, p->out_batch_stride,
                 p->out_head_stride, p->lse, p->lse_batch_stride);
  return SF_OK;
}

static sf_status decode_op(sf_op_ctx *ctx, const sf_attention_decode_params *p, bool allow_fast, sf_error *err) {
  if (p->n_heads <= 0 || p->n_kv_heads <= 0 || p->n_heads % p->n_kv_heads != 0)
    return sf_fail(err, SF_ERR_ARG, "attention_decode: n_heads %d must be a positive multiple of n_kv_heads %d",
                   (int)p->n_heads, (int)p->n_kv_heads);
  if (p->head_dim <= 0 || p->head_dim > DEC_MAX_HD)
    return sf_fail(err, p->head_dim <= 0 ? SF_ERR_ARG : SF_ERR_UNSUPPORTED,
                   "attention_decode: head_dim %d (the cuda kernel supports 1..%d)", (int)p->head_dim,
                   (int)DEC_MAX_HD);
  if (p->batch < 0 || p->num_splits < 0)
    return sf_fail(err, SF_ERR_ARG, "attention_decode: negative batch %d or num_splits %d", (int)p->batch,
                   (int)p->num_splits);
  if (p->batch > 65535 || p->n_heads > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "attention_decode: batch %d or n_heads %d > 65535", (int)p->batch,
                   (int)p->n_heads);
  if (p->batch == 0) return SF_OK;
  if (!p->q || !p->cache.k || !p->cache.v || !p->cache_len || !p->out)
    return sf_fail(err, SF_ERR_ARG, "attention_decode: q, the cache, cache_len and out must be non-NULL");
  const bool fast = allow_fast && decode_fast_ok(p) && p->num_splits <= DF_MAX_SPLITS;
  int S = p->num_splits;
  if (fast) {
    if (S == 0) S = fast_splits(ctx, p);
    SF_DISPATCH16(p->dtype, "attention_decode", launch_fast_hd<T>(ctx, p, S, err));
  }
  if (S == 0) {
    const int64_t want = 2LL * sf_cuda_impl_of(ctx)->num_sms;
    const int64_t pairs = (int64_t)p->batch * p->n_heads;
    int64_t s = (want + pairs - 1) / pairs;
    const int64_t by_len = p->cache.max_len / 256 > 1 ? p->cache.max_len / 256 : 1;
    if (s > by_len) s = by_len;
    if (s > 64) s = 64;
    if (s < 1) s = 1;
    S = (int)s;
  }
  if (S > 65535) return sf_fail(err, SF_ERR_UNSUPPORTED, "attention_decode: num_splits %d > 65535", S);
  SF_DISPATCH(p->dtype, "attention_decode", launch<T>(ctx, p, S, err));
}

extern "C" SF_CUDA_OP(attention_decode, sf_attention_decode_params) { return decode_op(ctx, p, true, err); }

/* For tuning (bench_attention declares it): variant -1 forces the fallback
 * kernel, 0 is the op. */
extern "C" sf_status sf_cuda_attention_decode_variant(sf_op_ctx *ctx, const sf_attention_decode_params *p,
                                                      int variant, sf_error *err) {
  return decode_op(ctx, p, variant >= 0, err);
}
