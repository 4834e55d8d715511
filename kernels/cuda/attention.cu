/* Attention prefill: the launcher picks, for bf16/f16 with head_dim 64 or
 * 128, scale > 0, 16-byte aligned q/k/v with strides that are multiples of
 * 8 elements (the "tensor-core" params):
 *   - on a compute capability 9.0 device, when this build holds the sm_90a
 *     image of attention_wgmma.cu (CMake adds it when the architectures
 *     name 90): the Hopper kernel (wgmma + TMA, FlashAttention-3 style). It
 *     covers everything the op accepts with those params: causal or not,
 *     GQA, varlen, past_len (chunked prefill), lse. If the driver cannot
 *     encode a TMA tensor map of the cache view (a stride >= 2^40 bytes, a
 *     negative stride...), the call runs mma.sync instead;
 *   - otherwise (sm_80+, or SF_ATTENTION_PATH=mma_sync in the environment)
 *     the mma.sync kernel (attention_mma*.cu, FlashAttention-2 style);
 * and everything else runs the fp32 kernel below (SF_ATTENTION_PATH=fp32
 * forces it). params.block_q/block_k: 0/0 picks as above; the tiles of a
 * mma.sync variant (128/64 for its default) pick that variant, those of a
 * wgmma variant (128/128 for hd 128, 192/128 for hd 64 by default; where
 * tiles match both, mma.sync) that one (an error where it cannot run);
 * 64/32 forces the fp32 kernel. sf_cuda_attention_variant (below) runs any
 * variant by number: the mma.sync ones first, then the wgmma ones.
 *
 * The fp32 kernel: tiled with an online softmax (FlashAttention's algorithm
 * without tensor cores).
 *
 * One block of 128 threads per (query tile of BQ = 64 queries, head,
 * sequence). The block holds its Q tile (pre-scaled) in shared memory and
 * walks the cache in tiles of BK = 32 keys: K and V tiles through shared
 * memory, scores S = Q K^T in fp32 (each thread 16 of them), causal and
 * length masks, a running row max m and sum l, P = exp(S - m) back to shared
 * memory and O += P V with O in registers (each thread owns half a row:
 * channels par, par + 2, ...). Rows are held by two adjacent lanes, so row
 * max/sum take one shuffle. Causal blocks stop at their last query's
 * position. Head dims up to 64 or 128 (compiled for both; any head_dim up
 * to 128 works). A sequence with past_len + len > cache.max_len writes
 * nothing and is reported by the next sync. Workspace: none. */
#include <math.h>

#include <stdlib.h>
#include <string.h>

#include "attention_mma.cuh"
#include "attention_wgmma.cuh"
#include "cuda_common.cuh"

enum { ATT_BQ = 64, ATT_BK = 32, ATT_THREADS = 128 };

template <int HD>
static constexpr size_t att_smem_floats() {
  return (size_t)ATT_BQ * (HD + 1) + (size_t)ATT_BK * (HD + 1) + (size_t)ATT_BK * HD + (size_t)ATT_BQ * (ATT_BK + 1);
}

template <typename T, int HD>
__global__ void __launch_bounds__(ATT_THREADS)
attention_kernel(int n_heads, int group, int head_dim, float scale, int causal,
                 const int64_t *__restrict__ start, const int32_t *__restrict__ len,
                 const int32_t *__restrict__ past_len, const T *__restrict__ q, int64_t qts, int64_t qhs,
                 const T *__restrict__ ck, const T *__restrict__ cv, int64_t cbs, int64_t cps, int64_t chs,
                 int64_t max_len, T *__restrict__ out, int64_t ots, int64_t ohs, float *__restrict__ lse,
                 int64_t lts, sf_cuda_status *st) {
  constexpr int QS = HD + 1, KS = HD + 1, SS = ATT_BK + 1, NJ = ATT_BK / 2, NACC = HD / 2;
  extern __shared__ float smem[];
  float *Qs = smem;
  float *Ks = Qs + ATT_BQ * QS;
  float *Vs = Ks + ATT_BK * KS;
  float *Ss = Vs + ATT_BK * HD;

  const int b = blockIdx.z, h = blockIdx.y;
  const int64_t L = len[b];
  const int64_t q0 = (int64_t)blockIdx.x * ATT_BQ;
  if (q0 >= L) return;
  const int64_t past = past_len ? past_len[b] : 0;
  const int64_t kv_len = past + L;
  if (past < 0 || kv_len > max_len) {
    if (blockIdx.x == 0 && h == 0 && threadIdx.x == 0) sf_cuda_record(st, SF_CST_ATTN_CACHE, b, kv_len, max_len);
    return;
  }
  const int64_t s0 = start[b];
  const int nq = (int)min((int64_t)ATT_BQ, L - q0);
  const int kh = h / group;
  const T *kb = ck + (int64_t)b * cbs + (int64_t)kh * chs;
  const T *vb = cv + (int64_t)b * cbs + (int64_t)kh * chs;

  const int tid = threadIdx.x, r = tid >> 1, par = tid & 1;

  for (int idx = tid; idx < ATT_BQ * HD; idx += ATT_THREADS) {
    const int rr = idx / HD, d = idx % HD;
    float v = 0.0f;
    if (rr < nq && d < head_dim) v = sf_to_f<T>(q[(s0 + q0 + rr) * qts + (int64_t)h * qhs + d]) * scale;
    Qs[rr * QS + d] = v;
  }

  const int64_t q_pos = past + q0 + r;  /* this thread's query position */
  const bool row_valid = r < nq;
  const int64_t kv_end = causal ? min(past + q0 + nq, kv_len) : kv_len;

  float m_run = -INFINITY, l_run = 0.0f;
  float acc[NACC];
#pragma unroll
  for (int jj = 0; jj < NACC; jj++) acc[jj] = 0.0f;

  for (int64_t k0 = 0; k0 < kv_end; k0 += ATT_BK) {
    __syncthreads(); /* previous tile fully consumed (and Q stored, first time) */
    for (int idx = tid; idx < ATT_BK * HD; idx += ATT_THREADS) {
      const int c = idx / HD, d = idx % HD;
      const int64_t kpos = k0 + c;
      float kv = 0.0f, vv = 0.0f;
      if (kpos < kv_len && d < head_dim) {
        kv = sf_to_f<T>(kb[kpos * cps + d]);
        vv = sf_to_f<T>(vb[kpos * cps + d]);
      }
      Ks[c * KS + d] = kv;
      Vs[c * HD + d] = vv;
    }
    __syncthreads();

    float s[NJ];
#pragma unroll
    for (int j = 0; j < NJ; j++) s[j] = 0.0f;
    const float *qrow = Qs + r * QS;
    const float *kcol = Ks + par * NJ * KS;
    for (int d = 0; d < head_dim; d++) {
      const float qv = qrow[d];
#pragma unroll
      for (int j = 0; j < NJ; j++) s[j] += qv * kcol[j * KS + d];
    }
    float mloc = -INFINITY;
#pragma unroll
    for (int j = 0; j < NJ; j++) {
      const int64_t kpos = k0 + par * NJ + j;
      const bool ok = row_valid && kpos < kv_len && (!causal || kpos <= q_pos);
      s[j] = ok ? s[j] : -INFINITY;
      mloc = fmaxf(mloc, s[j]);
    }
    mloc = fmaxf(mloc, __shfl_xor_sync(0xffffffffu, mloc, 1));
    const float m_new = fmaxf(m_run, mloc);
    float alpha, lsum = 0.0f;
    if (m_new == -INFINITY) {
      alpha = 1.0f;
#pragma unroll
      for (int j = 0; j < NJ; j++) s[j] = 0.0f;
    } else {
      alpha = expf(m_run - m_new); /* m_run = -inf gives 0 */
#pragma unroll
      for (int j = 0; j < NJ; j++) {
        s[j] = s[j] == -INFINITY ? 0.0f : expf(s[j] - m_new);
        lsum += s[j];
      }
    }
    lsum += __shfl_xor_sync(0xffffffffu, lsum, 1);
    l_run = l_run * alpha + lsum;
    m_run = m_new;
#pragma unroll
    for (int j = 0; j < NJ; j++) Ss[r * SS + par * NJ + j] = s[j];
#pragma unroll
    for (int jj = 0; jj < NACC; jj++) acc[jj] *= alpha;
    __syncthreads();
    const float *prow = Ss + r * SS;
    for (int c = 0; c < ATT_BK; c++) {
      const float pc = prow[c];
      const float *vrow = Vs + c * HD + par;
#pragma unroll
      for (int jj = 0; jj < NACC; jj++) acc[jj] += pc * vrow[2 * jj];
    }
  }

  if (row_valid) {
    const int64_t tok = s0 + q0 + r;
    const float inv = l_run > 0.0f ? 1.0f / l_run : 0.0f;
    T *orow = out + tok * ots + (int64_t)h * ohs;
#pragma unroll
    for (int jj = 0; jj < NACC; jj++) {
      const int d = par + 2 * jj;
      if (d < head_dim) orow[d] = sf_from_f<T>(acc[jj] * inv);
    }
    if (lse && par == 0) lse[tok * lts + h] = m_run + logf(l_run);
  }
}

template <typename T, int HD>
static sf_status launch_hd(sf_op_ctx *ctx, const sf_attention_params *p, sf_error *err) {
  const size_t smem = att_smem_floats<HD>() * sizeof(float);
  SF_TRY(sf_cuda_smem_optin(ctx, (const void *)attention_kernel<T, HD>, smem, "attention", err));
  dim3 grid((unsigned)((p->seqs.max_len + ATT_BQ - 1) / ATT_BQ), (unsigned)p->n_heads, (unsigned)p->seqs.batch);
  attention_kernel<T, HD><<<grid, ATT_THREADS, smem, sf_cuda_stream(ctx)>>>(
      p->n_heads, p->n_heads / p->n_kv_heads, p->head_dim, p->scale, p->causal, p->seqs.start, p->seqs.len,
      p->past_len, (const T *)p->q, p->q_token_stride, p->q_head_stride, (const T *)p->cache.k,
      (const T *)p->cache.v, p->cache.batch_stride, p->cache.pos_stride, p->cache.head_stride, p->cache.max_len,
      (T *)p->out, p->out_token_stride, p->out_head_stride, p->lse, p->lse_token_stride,
      sf_cuda_impl_of(ctx)->d_status);
  SF_CUDA_LAUNCHED("attention_kernel");
  return SF_OK;
}

template <typename T>
static sf_status launch(sf_op_ctx *ctx, const sf_attention_params *p, sf_error *err) {
  return p->head_dim <= 64 ? launch_hd<T, 64>(ctx, p, err) : launch_hd<T, 128>(ctx, p, err);
}

/* Whether the tensor-core kernels can run these params. */
static bool mma_ok(sf_op_ctx *ctx, const sf_attention_params *p) {
  if (p->dtype != SF_BF16 && p->dtype != SF_F16) return false;
  if (p->head_dim != 64 && p->head_dim != 128) return false;
  if (!(p->scale > 0.0f) || !isfinite(p->scale)) return false;
  if (p->cache.max_len >= 0x7fffffffLL || p->seqs.max_len >= 0x7fffffffLL) return false;
  if ((uintptr_t)p->q % 16 || (uintptr_t)p->cache.k % 16 || (uintptr_t)p->cache.v % 16) return false;
  if (p->q_token_stride % 8 || p->q_head_stride % 8 || p->cache.batch_stride % 8 || p->cache.pos_stride % 8 ||
      p->cache.head_stride % 8)
    return false;
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ctx->device) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return major >= 8;
}

static sf_attn_mma_info mma_info(int head_dim, int variant) {
  return head_dim == 64 ? sf_attn_mma_info_d64(variant) : sf_attn_mma_info_d128(variant);
}

static int mma_default(int head_dim) {
  return head_dim == 64 ? sf_attn_mma_default_d64() : sf_attn_mma_default_d128();
}

/* Number of mma.sync variants of a head dim (the wgmma ones follow them in
 * sf_cuda_attention_variant's numbering). */
static int mma_count(int head_dim) {
  int n = 0;
  while (mma_info(head_dim, n).block_q != 0) n++;
  return n;
}

static sf_status run_mma(sf_op_ctx *ctx, const sf_attention_params *p, int variant, sf_error *err) {
  return p->head_dim == 64 ? sf_attn_mma_d64(ctx, p, variant, err) : sf_attn_mma_d128(ctx, p, variant, err);
}

/* SF_ATTENTION_PATH: "mma_sync" / "fp32" force that kernel when the caller
 * leaves the tiles to the op (benchmarks compare the paths through it);
 * anything else (or unset) chooses automatically. */
enum { PATH_AUTO = 0, PATH_MMA = 1, PATH_FP32 = 2 };
static int path_override(void) {
  const char *e = getenv("SF_ATTENTION_PATH");
  if (!e) return PATH_AUTO;
  if (!strcmp(e, "mma_sync") || !strcmp(e, "mma")) return PATH_MMA;
  if (!strcmp(e, "fp32")) return PATH_FP32;
  return PATH_AUTO;
}

static sf_status run_fp32(sf_op_ctx *ctx, const sf_attention_params *p, sf_error *err) {
  SF_DISPATCH(p->dtype, "attention", launch<T>(ctx, p, err));
}

/* Argument checks shared by the op and the variant entry; *done = 1 when
 * there is nothing to compute. */
static sf_status check_params(const sf_attention_params *p, int *done, sf_error *err) {
  *done = 0;
  if (p->n_heads <= 0 || p->n_kv_heads <= 0 || p->n_heads % p->n_kv_heads != 0)
    return sf_fail(err, SF_ERR_ARG, "attention: n_heads %d must be a positive multiple of n_kv_heads %d",
                   (int)p->n_heads, (int)p->n_kv_heads);
  if (p->head_dim <= 0 || p->head_dim > 128)
    return sf_fail(err, p->head_dim <= 0 ? SF_ERR_ARG : SF_ERR_UNSUPPORTED,
                   "attention: head_dim %d (the cuda kernel supports 1..128)", (int)p->head_dim);
  if (p->seqs.batch < 0 || p->seqs.max_len < 0)
    return sf_fail(err, SF_ERR_ARG, "attention: negative batch %d or max_len %lld", (int)p->seqs.batch,
                   (long long)p->seqs.max_len);
  if (p->seqs.batch > 65535 || p->n_heads > 65535)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "attention: batch %d or n_heads %d > 65535", (int)p->seqs.batch,
                   (int)p->n_heads);
  if (p->seqs.batch == 0 || p->seqs.max_len == 0) {
    *done = 1;
    return SF_OK;
  }
  if (!p->seqs.start || !p->seqs.len || !p->q || !p->cache.k || !p->cache.v || !p->out)
    return sf_fail(err, SF_ERR_ARG, "attention: seqs, q, the cache and out must be non-NULL");
  return SF_OK;
}

extern "C" SF_CUDA_OP(attention, sf_attention_params) {
  int done;
  SF_TRY(check_params(p, &done, err));
  const bool tc = mma_ok(ctx, p);
  const bool wg = tc && sf_attn_wgmma_usable(ctx);
  int variant = -1, wvariant = -1; /* mma.sync / wgmma variant; both -1: fp32 */
  const int hd = p->head_dim == 64 ? 64 : 128;
  if (p->block_q == 0 && p->block_k == 0) {
    const int path = path_override();
    if (path == PATH_FP32 || !tc) variant = -1;
    else if (wg && path == PATH_AUTO) wvariant = sf_attn_wgmma_default(hd);
    else variant = mma_default(hd);
  } else if (p->block_q == ATT_BQ && p->block_k == ATT_BK) {
    variant = -1;
  } else if (tc) {
    /* the default if its tiles match, else the first variant that does;
     * mma.sync first, then wgmma */
    const sf_attn_mma_info d = mma_info(hd, mma_default(hd));
    if (d.block_q == p->block_q && d.block_k == p->block_k) variant = mma_default(hd);
    for (int v = 0; variant < 0; v++) {
      const sf_attn_mma_info in = mma_info(hd, v);
      if (in.block_q == 0) break;
      if (in.block_q == p->block_q && in.block_k == p->block_k) variant = v;
    }
    if (variant < 0 && wg) {
      const sf_attn_mma_info wd = sf_attn_wgmma_info(hd, sf_attn_wgmma_default(hd));
      if (wd.block_q == p->block_q && wd.block_k == p->block_k) wvariant = sf_attn_wgmma_default(hd);
      for (int v = 0; wvariant < 0; v++) {
        const sf_attn_mma_info in = sf_attn_wgmma_info(hd, v);
        if (in.block_q == 0) break;
        if (in.block_q == p->block_q && in.block_k == p->block_k) wvariant = v;
      }
    }
  }
  if (variant < 0 && wvariant < 0 && !(p->block_q == ATT_BQ && p->block_k == ATT_BK) &&
      (p->block_q || p->block_k))
    return sf_fail(err, SF_ERR_UNSUPPORTED,
                   "attention: tiles %dx%d requested; the cuda kernels have %dx%d (fp32) and, for "
                   "bf16/f16 head_dim 64/128, %dx%d (mma.sync default) and %dx%d (wgmma default, "
                   "sm_90a builds on cc 9.0); pass 0 to choose",
                   (int)p->block_q, (int)p->block_k, (int)ATT_BQ, (int)ATT_BK,
                   mma_info(hd, mma_default(hd)).block_q, mma_info(hd, mma_default(hd)).block_k,
                   sf_attn_wgmma_info(hd, sf_attn_wgmma_default(hd)).block_q,
                   sf_attn_wgmma_info(hd, sf_attn_wgmma_default(hd)).block_k);
  if (done) return SF_OK;
  if (wvariant >= 0) {
    const sf_status rc = sf_attn_wgmma(ctx, p, wvariant, err);
    /* UNSUPPORTED comes before any launch (a cache view TMA cannot
     * describe): the automatic choice falls back to mma.sync */
    if (rc != SF_ERR_UNSUPPORTED || p->block_q || p->block_k) return rc;
    if (err) memset(err, 0, sizeof *err);
    variant = mma_default(hd);
  }
  return variant >= 0 ? run_mma(ctx, p, variant, err) : run_fp32(ctx, p, err);
}

/* For tuning and tests (bench_attention and test_gpu_ops declare it):
 * variant -1 is the fp32 kernel, 0 .. n-1 the mma.sync variants of
 * p->head_dim (n = 7 now), n .. the wgmma variants (info[3] has
 * SF_AWG_FLAG = 4; SF_ERR_UNSUPPORTED off sm_90a/cc 9.0, or where the
 * params or the variant do not fit; the message of a variant that does not
 * exist says "no variant"); block_q/block_k are ignored. Writes block_q,
 * block_k, warps, flags and whether it is the op's default to info (may be
 * NULL). */
extern "C" sf_status sf_cuda_attention_variant(sf_op_ctx *ctx, const sf_attention_params *p, int variant,
                                               int info[5], sf_error *err) {
  int done;
  SF_TRY(check_params(p, &done, err));
  if (variant >= 0) {
    if (!mma_ok(ctx, p))
      return sf_fail(err, SF_ERR_UNSUPPORTED, "attention: these params do not fit the tensor-core kernels");
    const int n_mma = mma_count(p->head_dim);
    if (variant >= n_mma) {
      const int wv = variant - n_mma;
      const sf_attn_mma_info in = sf_attn_wgmma_info(p->head_dim, wv);
      if (in.block_q == 0)
        return sf_fail(err, SF_ERR_UNSUPPORTED, "attention: no variant %d for head_dim %d", variant,
                       (int)p->head_dim);
      if (!sf_attn_wgmma_usable(ctx))
        return sf_fail(err, SF_ERR_UNSUPPORTED,
                       "attention: variant %d (wgmma) needs an sm_90a build on a cc 9.0 device", variant);
      if (info)
        info[0] = in.block_q, info[1] = in.block_k, info[2] = in.warps, info[3] = in.flags,
        info[4] = wv == sf_attn_wgmma_default(p->head_dim);
      if (done) return SF_OK;
      return sf_attn_wgmma(ctx, p, wv, err);
    }
    const sf_attn_mma_info in = mma_info(p->head_dim, variant);
    if (info)
      info[0] = in.block_q, info[1] = in.block_k, info[2] = in.warps, info[3] = in.flags,
      info[4] = variant == mma_default(p->head_dim) && !sf_attn_wgmma_usable(ctx);
    if (done) return SF_OK;
    return run_mma(ctx, p, variant, err);
  }
  if (info) info[0] = ATT_BQ, info[1] = ATT_BK, info[2] = ATT_THREADS / 32, info[3] = 0, info[4] = 0;
  if (done) return SF_OK;
  return run_fp32(ctx, p, err);
}

/* For kbench's row labels (worker/kbench/kbench_ops.c, a weak reference):
 * the kernel the op runs on the current device for default tiles and
 * contiguous 16-byte aligned tensors of this dtype (sf_dtype) and head dim:
 * "wgmma", "mma_sync" or "fp32" (SF_ATTENTION_PATH respected). */
extern "C" const char *sf_cuda_attention_path(int dtype, int head_dim) {
  const int path = path_override();
  if (path == PATH_FP32 || (dtype != SF_BF16 && dtype != SF_F16) || (head_dim != 64 && head_dim != 128))
    return "fp32";
  sf_op_ctx c;
  memset(&c, 0, sizeof c);
  int major = 0;
  if (cudaGetDevice(&c.device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, c.device) != cudaSuccess) {
    (void)cudaGetLastError();
    return "tiled";
  }
  if (major < 8) return "fp32";
  return path == PATH_AUTO && sf_attn_wgmma_usable(&c) ? "wgmma" : "mma_sync";
}
