/* c[m, n] = a[m, k] . w[n, k]^T + bias[n] (or c += ...), through cuBLASLt.
 *
 * Row-major c = a w^T is, read column-major, c^T (n x m, ld ldc) =
 * w_cm^T (w read column-major is k x n, ld ldw; op T) times a_cm (k x m, ld
 * lda; op N). bf16/f16/f32 in, fp32 compute (CUBLAS_COMPUTE_32F: no TF32),
 * out in the input type or f32. The bias is added by the BIAS epilogue in
 * the same pass (beta = 1 folds the residual add when accumulate); cuBLASLt
 * wants it in the output type, so it is first converted into the op
 * workspace (n elements; also gives it the alignment cuBLASLt assumes).
 * Alignment preferences are set from the actual pointers, so views (a slice
 * of a fused projection) are safe. When the heuristic offers no algorithm,
 * cublasGemmEx plus a small bias kernel does the same. k = 0 is c = bias
 * (+ c). Up to SF_CUDA_GEMV_MAX_M rows go to gemm_small_m.cu instead (16-bit,
 * aligned): decode's weight streams, with the activation or conv update
 * epilogue in the kernel; elsewhere they run as their own ops
 * (sf_gemm_unfused).
 * Workspace: n * sizeof(out) bytes with a bias (cuBLASLt path). */
#include "cuda_common.cuh"

static cudaDataType_t cuda_type(sf_dtype t) {
  return t == SF_F32 ? CUDA_R_32F : (t == SF_BF16 ? CUDA_R_16BF : CUDA_R_16F);
}

static uint32_t ptr_align(const void *p) {
  uint32_t a = 256;
  while (a > 1 && ((uintptr_t)p % a) != 0) a >>= 1;
  return a;
}

template <typename TI, typename TO>
__global__ void gemm_convert_kernel(const TI *__restrict__ in, TO *__restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = sf_from_f<TO>(sf_to_f<TI>(in[i]));
}

/* c = (keep ? c : 0) + bias (bias may be NULL). */
template <typename TO>
__global__ void gemm_fixup_kernel(TO *c, int64_t ldc, int64_t m, int64_t n, const TO *__restrict__ bias,
                                  int keep) {
  const int64_t total = m * n;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / n, col = i % n;
    TO *e = c + r * ldc + col;
    float v = keep ? sf_to_f<TO>(*e) : 0.0f;
    if (bias) v += sf_to_f<TO>(bias[col]);
    *e = sf_from_f<TO>(v);
  }
}

/* Descriptors released on every path. */
struct LtDescs {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtDescs() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

/* *done = 0 when cuBLASLt has no algorithm for this problem (caller falls back). */
static sf_status gemm_lt(sf_op_ctx *ctx, const sf_gemm_params *p, const void *bias, int *done,
                         sf_error *err) {
  sf_cuda_impl *impl = sf_cuda_impl_of(ctx);
  const cudaDataType_t tin = cuda_type(p->dtype), tout = cuda_type(p->out_dtype);
  LtDescs d;
  *done = 0;
  SF_CUBLAS_TRY(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  SF_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  SF_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  if (bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    SF_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    SF_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
  }
  SF_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&d.la, tin, (uint64_t)p->k, (uint64_t)p->n, p->ldw));
  SF_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&d.lb, tin, (uint64_t)p->k, (uint64_t)p->m, p->lda));
  SF_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&d.lc, tout, (uint64_t)p->n, (uint64_t)p->m, p->ldc));
  SF_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&d.pref));
  const uint64_t ws = impl->blas_ws_bytes;
  const uint32_t al_a = ptr_align(p->w), al_b = ptr_align(p->a), al_c = ptr_align(p->c);
  SF_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  SF_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
  SF_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
  SF_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof al_c));
  SF_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof al_c));
  cublasLtMatmulHeuristicResult_t res;
  int count = 0;
  cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(impl->lt, d.op, d.la, d.lb, d.lc, d.lc, d.pref, 1, &res, &count);
  if (hs == CUBLAS_STATUS_NOT_SUPPORTED || (hs == CUBLAS_STATUS_SUCCESS && count == 0)) return SF_OK;
  SF_CUBLAS_TRY(hs);
  const float alpha = 1.0f, beta = p->accumulate ? 1.0f : 0.0f;
  SF_CUBLAS_TRY(cublasLtMatmul(impl->lt, d.op, &alpha, p->w, d.la, p->a, d.lb, &beta, p->c, d.lc, p->c,
                               d.lc, &res.algo, impl->blas_ws, impl->blas_ws_bytes, impl->stream));
  *done = 1;
  return SF_OK;
}

template <typename TI, typename TO>
static sf_status launch(sf_op_ctx *ctx, const sf_gemm_params *p, sf_error *err) {
  cudaStream_t s = sf_cuda_stream(ctx);
  TO *bias = nullptr;
  if (p->bias) {
    void *ws;
    SF_TRY(sf_cuda_workspace(ctx, (size_t)p->n * sizeof(TO), &ws, err));
    bias = (TO *)ws;
    gemm_convert_kernel<TI, TO><<<sf_grid_for(p->n, 256, 4096), 256, 0, s>>>((const TI *)p->bias, bias, p->n);
    SF_CUDA_LAUNCHED("gemm_convert_kernel");
  }
  const unsigned fix_blocks = sf_grid_for(p->m * p->n, 256, 1 << 16);
  if (p->k == 0) {
    gemm_fixup_kernel<TO><<<fix_blocks, 256, 0, s>>>((TO *)p->c, p->ldc, p->m, p->n, bias, p->accumulate);
    SF_CUDA_LAUNCHED("gemm_fixup_kernel");
    return SF_OK;
  }
  int done = 0;
  SF_TRY(gemm_lt(ctx, p, bias, &done, err));
  if (done) return SF_OK;
  /* Fallback: cublasGemmEx, then the bias. */
  const float alpha = 1.0f, beta = p->accumulate ? 1.0f : 0.0f;
  SF_CUBLAS_TRY(cublasGemmEx_64(sf_cuda_impl_of(ctx)->blas, CUBLAS_OP_T, CUBLAS_OP_N, p->n, p->m, p->k, &alpha,
                                p->w, cuda_type(p->dtype), p->ldw, p->a, cuda_type(p->dtype), p->lda, &beta,
                                p->c, cuda_type(p->out_dtype), p->ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  if (bias) {
    gemm_fixup_kernel<TO><<<fix_blocks, 256, 0, s>>>((TO *)p->c, p->ldc, p->m, p->n, bias, 1);
    SF_CUDA_LAUNCHED("gemm_fixup_kernel");
  }
  return SF_OK;
}

extern "C" SF_CUDA_OP(gemm, sf_gemm_params) {
  if (p->m < 0 || p->n < 0 || p->k < 0)
    return sf_fail(err, SF_ERR_ARG, "gemm: negative size (m %lld, n %lld, k %lld)", (long long)p->m,
                   (long long)p->n, (long long)p->k);
  if (p->lda < p->k || p->ldw < p->k || p->ldc < p->n)
    return sf_fail(err, SF_ERR_ARG,
                   "gemm: leading dimensions too small (lda %lld, ldw %lld >= k = %lld; "
                   "ldc %lld >= n = %lld)",
                   (long long)p->lda, (long long)p->ldw, (long long)p->k, (long long)p->ldc,
                   (long long)p->n);
  if (p->out_dtype != p->dtype && p->out_dtype != SF_F32)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "gemm: out_dtype %s must be f32 or the input type %s",
                   sf_dtype_name(p->out_dtype), sf_dtype_name(p->dtype));
  SF_TRY(sf_gemm_check_epilogue(p, err));
  if (p->m == 0 || p->n == 0) return SF_OK;
  if (!p->c || (p->k > 0 && (!p->a || !p->w)))
    return sf_fail(err, SF_ERR_ARG, "gemm: a, w and c must be non-NULL");
  /* Decode shapes (a few rows): the weight-streaming kernel, when it applies
   * (activation folded in); other shapes run the activation after. */
  int done = 0;
  SF_TRY(sf_cuda_gemm_small_m(ctx, p, &done, err));
  if (done) return SF_OK;
  if (sf_gemm_has_epilogue(p)) return sf_gemm_unfused(ctx, p, sf_cuda_gemm, err);
  const int same = p->out_dtype == p->dtype;
  switch (p->dtype) {
    case SF_BF16:
      return same ? launch<__nv_bfloat16, __nv_bfloat16>(ctx, p, err) : launch<__nv_bfloat16, float>(ctx, p, err);
    case SF_F16:
      return same ? launch<__half, __half>(ctx, p, err) : launch<__half, float>(ctx, p, err);
    case SF_F32:
      return launch<float, float>(ctx, p, err);
  }
  return sf_fail(err, SF_ERR_ARG, "gemm: unknown dtype %d", (int)p->dtype);
}
