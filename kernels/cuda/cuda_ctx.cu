/* The cuda backend's context (stream, cuBLAS/cuBLASLt handles, workspaces,
 * device status word), its memory functions and the shared error helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"

enum { SF_CUDA_BLAS_WS_BYTES = 32 << 20 };

/* ---- errors -------------------------------------------------------------- */

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* "cudaMalloc(&p, n)" -> "cudaMalloc" */
static void call_name(const char *call, char *out, size_t cap) {
  size_t n = strcspn(call, "(");
  if (n >= cap) n = cap - 1;
  memcpy(out, call, n);
  out[n] = '\0';
}

sf_status sf_cuda_fail(sf_error *err, cudaError_t e, const char *file, int line, const char *call) {
  char name[128];
  call_name(call, name, sizeof name);
  (void)cudaGetLastError(); /* clear a non-sticky error so later launch checks stay clean */
  sf_status code = e == cudaErrorMemoryAllocation ? SF_ERR_NOMEM : SF_ERR_DEVICE;
  return sf_fail(err, code, "cuda: %s:%d: %s: %s", base_name(file), line, name, cudaGetErrorString(e));
}

sf_status sf_cublas_fail(sf_error *err, cublasStatus_t s, const char *file, int line, const char *call) {
  char name[128];
  call_name(call, name, sizeof name);
  sf_status code = s == CUBLAS_STATUS_ALLOC_FAILED ? SF_ERR_NOMEM
                   : s == CUBLAS_STATUS_NOT_SUPPORTED ? SF_ERR_UNSUPPORTED
                                                      : SF_ERR_DEVICE;
  return sf_fail(err, code, "cuda: %s:%d: %s: %s", base_name(file), line, name, cublasGetStatusString(s));
}

/* ---- device status ------------------------------------------------------- */

/* Waits for the stream, then reports (and clears) an error a kernel recorded. */
static sf_status check_status(sf_op_ctx *ctx, sf_error *err) {
  sf_cuda_impl *impl = sf_cuda_impl_of(ctx);
  SF_CUDA_TRY(cudaMemcpyAsync(impl->h_status, impl->d_status, sizeof(sf_cuda_status),
                              cudaMemcpyDeviceToHost, impl->stream));
  SF_CUDA_TRY(cudaStreamSynchronize(impl->stream));
  sf_cuda_status st = *impl->h_status;
  if (st.code == SF_CST_OK) return SF_OK;
  SF_CUDA_TRY(cudaMemsetAsync(impl->d_status, 0, sizeof(sf_cuda_status), impl->stream));
  switch (st.code) {
    case SF_CST_EMBED_ID:
      return sf_fail(err, SF_ERR_ARG, "embedding: token %lld has id %lld outside [0, %lld)", st.index,
                     st.value, st.limit);
    case SF_CST_KV_APPEND:
      return sf_fail(err, SF_ERR_ARG,
                     "kv_append: sequence %lld would fill %lld cache positions, max_len is %lld "
                     "(its tokens were not written)",
                     st.index, st.value, st.limit);
    case SF_CST_ATTN_CACHE:
      return sf_fail(err, SF_ERR_ARG,
                     "attention: sequence %lld needs %lld cache positions, max_len is %lld "
                     "(its output was not written)",
                     st.index, st.value, st.limit);
    case SF_CST_DECODE_CACHE:
      return sf_fail(err, SF_ERR_ARG,
                     "attention_decode: sequence %lld has cache_len %lld outside [1, max_len = %lld] "
                     "(its output was not written)",
                     st.index, st.value, st.limit);
    default:
      return sf_fail(err, SF_ERR_INTERNAL, "cuda: unknown device status %d", st.code);
  }
}

/* ---- context ------------------------------------------------------------- */

/* Device bytes now held through alloc and the workspace, and their peak. */
static void count_alloc(sf_op_ctx *ctx, size_t bytes) {
  ctx->mem_live += (int64_t)bytes;
  if (ctx->mem_live > ctx->mem_peak) ctx->mem_peak = ctx->mem_live;
}

static sf_status init_impl(sf_op_ctx *ctx, sf_cuda_impl *impl, int device, sf_error *err) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return sf_fail(err, SF_ERR_DEVICE, "cuda: no usable CUDA device: %s", cudaGetErrorString(e));
  }
  if (device < 0 || device >= n)
    return sf_fail(err, SF_ERR_ARG, "cuda: device %d does not exist (%d device(s))", device, n);
  SF_CUDA_TRY(cudaSetDevice(device));
  SF_CUDA_TRY(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
  SF_CUBLAS_TRY(cublasCreate(&impl->blas));
  SF_CUBLAS_TRY(cublasSetStream(impl->blas, impl->stream));
  SF_CUBLAS_TRY(cublasLtCreate(&impl->lt));
  impl->blas_ws_bytes = SF_CUDA_BLAS_WS_BYTES;
  SF_CUDA_TRY(cudaMalloc(&impl->blas_ws, impl->blas_ws_bytes));
  count_alloc(ctx, impl->blas_ws_bytes);
  SF_CUBLAS_TRY(cublasSetWorkspace(impl->blas, impl->blas_ws, impl->blas_ws_bytes));
  SF_CUDA_TRY(cudaMalloc((void **)&impl->d_status, sizeof(sf_cuda_status)));
  SF_CUDA_TRY(cudaMemsetAsync(impl->d_status, 0, sizeof(sf_cuda_status), impl->stream));
  SF_CUDA_TRY(cudaMallocHost((void **)&impl->h_status, sizeof(sf_cuda_status)));
  memset(impl->h_status, 0, sizeof(sf_cuda_status));
  SF_CUDA_TRY(cudaDeviceGetAttribute(&impl->num_sms, cudaDevAttrMultiProcessorCount, device));
  int optin = 0;
  SF_CUDA_TRY(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  impl->smem_optin = (size_t)optin;
  SF_CUDA_TRY(cudaDeviceGetAttribute(&impl->cc_major, cudaDevAttrComputeCapabilityMajor, device));
  const char *pdl_env = getenv("SCANFLASH_PDL");
  impl->pdl = impl->cc_major >= 9 && !(pdl_env && !strcmp(pdl_env, "0"));
  SF_CUDA_TRY(cudaStreamSynchronize(impl->stream));

  ctx->ops = &sf_ops_cuda;
  ctx->device = device;
  ctx->stream = impl->stream;
  ctx->blas = impl->blas;
  ctx->blas_lt = impl->lt;
  ctx->workspace = NULL;
  ctx->workspace_bytes = 0;
  ctx->num_threads = 0;
  return SF_OK;
}

extern "C" sf_status sf_cuda_ctx_init(sf_op_ctx *ctx, int device, sf_error *err) {
  memset(ctx, 0, sizeof *ctx);
  sf_cuda_impl *impl = (sf_cuda_impl *)calloc(1, sizeof *impl);
  if (!impl) return sf_fail(err, SF_ERR_NOMEM, "cuda: cannot allocate the context");
  ctx->impl = impl;
  sf_status rc = init_impl(ctx, impl, device, err);
  if (rc != SF_OK) sf_cuda_ctx_destroy(ctx);
  return rc;
}

extern "C" void sf_cuda_ctx_destroy(sf_op_ctx *ctx) {
  sf_cuda_impl *impl = sf_cuda_impl_of(ctx);
  if (impl) {
    if (impl->stream) (void)cudaStreamSynchronize(impl->stream);
    if (ctx->workspace) (void)cudaFree(ctx->workspace);
    if (impl->lt) (void)cublasLtDestroy(impl->lt);
    if (impl->blas) (void)cublasDestroy(impl->blas);
    if (impl->blas_ws) (void)cudaFree(impl->blas_ws);
    if (impl->d_status) (void)cudaFree(impl->d_status);
    if (impl->h_status) (void)cudaFreeHost(impl->h_status);
    free(impl->host_buf);
    free(impl->blocks);
    if (impl->stream) (void)cudaStreamDestroy(impl->stream);
    free(impl);
    (void)cudaGetLastError();
  }
  memset(ctx, 0, sizeof *ctx);
}

sf_status sf_cuda_workspace(sf_op_ctx *ctx, size_t bytes, void **ptr, sf_error *err) {
  if (bytes == 0) bytes = 1;
  if (!ctx->workspace || ctx->workspace_bytes < bytes) {
    size_t want = sf_align_up(bytes, (size_t)1 << 20);
    /* Kernels already queued may still read the old workspace. */
    SF_CUDA_TRY(cudaStreamSynchronize(sf_cuda_stream(ctx)));
    if (ctx->workspace) SF_CUDA_TRY(cudaFree(ctx->workspace));
    ctx->mem_live -= (int64_t)ctx->workspace_bytes;
    ctx->workspace = NULL;
    ctx->workspace_bytes = 0;
    SF_CUDA_TRY(cudaMalloc(&ctx->workspace, want));
    ctx->workspace_bytes = want;
    count_alloc(ctx, want);
  }
  *ptr = ctx->workspace;
  return SF_OK;
}

extern "C" sf_status sf_cuda_workspace_reserve(sf_op_ctx *ctx, size_t bytes, sf_error *err) {
  void *p;
  return sf_cuda_workspace(ctx, bytes, &p, err);
}

sf_status sf_cuda_smem_optin(sf_op_ctx *ctx, const void *kernel, size_t bytes, const char *what,
                             sf_error *err) {
  if (bytes <= 48 * 1024) return SF_OK;
  sf_cuda_impl *impl = sf_cuda_impl_of(ctx);
  if (bytes > impl->smem_optin)
    return sf_fail(err, SF_ERR_UNSUPPORTED,
                   "%s: needs %zu bytes of shared memory per block, the device allows %zu", what,
                   bytes, impl->smem_optin);
  SF_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
  return SF_OK;
}

/* ---- memory -------------------------------------------------------------- */

extern "C" sf_status sf_cuda_alloc(sf_op_ctx *ctx, size_t bytes, void **ptr, sf_error *err) {
  sf_cuda_impl *impl = sf_cuda_impl_of(ctx);
  *ptr = NULL;
  if (impl->n_blocks == impl->cap_blocks) {
    size_t cap = impl->cap_blocks ? 2 * impl->cap_blocks : 256;
    sf_cuda_block *b = (sf_cuda_block *)realloc(impl->blocks, cap * sizeof *b);
    if (!b) return sf_fail(err, SF_ERR_NOMEM, "cuda: out of host memory for the allocation table");
    impl->blocks = b;
    impl->cap_blocks = cap;
  }
  if (!bytes) bytes = 256;
  SF_CUDA_TRY(cudaMalloc(ptr, bytes));
  impl->blocks[impl->n_blocks++] = (sf_cuda_block){*ptr, bytes};
  count_alloc(ctx, bytes);
  return SF_OK;
}

extern "C" void sf_cuda_free(sf_op_ctx *ctx, void *ptr) {
  if (!ptr) return;
  sf_cuda_impl *impl = sf_cuda_impl_of(ctx);
  /* Latest first: sessions free in reverse order of allocation. */
  for (size_t i = impl->n_blocks; i-- > 0;)
    if (impl->blocks[i].ptr == ptr) {
      ctx->mem_live -= (int64_t)impl->blocks[i].bytes;
      impl->blocks[i] = impl->blocks[--impl->n_blocks];
      break;
    }
  (void)cudaFree(ptr);
  (void)cudaGetLastError();
}

extern "C" sf_status sf_cuda_upload(sf_op_ctx *ctx, void *dst, const void *src, size_t bytes,
                                    sf_error *err) {
  if (!bytes) return SF_OK;
  SF_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, sf_cuda_stream(ctx)));
  return SF_OK;
}

extern "C" sf_status sf_cuda_download(sf_op_ctx *ctx, void *dst, const void *src, size_t bytes,
                                      sf_error *err) {
  if (bytes) SF_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, sf_cuda_stream(ctx)));
  return check_status(ctx, err);
}

extern "C" sf_status sf_cuda_zero(sf_op_ctx *ctx, void *dst, size_t bytes, sf_error *err) {
  if (!bytes) return SF_OK;
  SF_CUDA_TRY(cudaMemsetAsync(dst, 0, bytes, sf_cuda_stream(ctx)));
  return SF_OK;
}

extern "C" sf_status sf_cuda_sync(sf_op_ctx *ctx, sf_error *err) {
  SF_CUDA_TRY(cudaStreamSynchronize(sf_cuda_stream(ctx)));
  return check_status(ctx, err);
}

extern "C" sf_status sf_cuda_mem_info(sf_op_ctx *ctx, int64_t *free_bytes, int64_t *total_bytes, sf_error *err) {
  (void)ctx;
  size_t f = 0, t = 0;
  SF_CUDA_TRY(cudaMemGetInfo(&f, &t));
  *free_bytes = (int64_t)f;
  *total_bytes = (int64_t)t;
  return SF_OK;
}
