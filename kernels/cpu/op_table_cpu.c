/* The cpu backend's op table and context. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static sf_status cpu_alloc(sf_op_ctx *ctx, size_t bytes, void **ptr, sf_error *err) {
  (void)ctx;
  /* 64-byte alignment for vector loads; round the size up as aligned_alloc requires. */
  size_t rounded = (bytes + 63) & ~(size_t)63;
  *ptr = aligned_alloc(64, rounded ? rounded : 64);
  if (!*ptr) return sf_fail(err, SF_ERR_NOMEM, "cpu: cannot allocate %zu bytes", bytes);
  return SF_OK;
}

static void cpu_free(sf_op_ctx *ctx, void *ptr) {
  (void)ctx;
  free(ptr);
}

static sf_status cpu_copy(sf_op_ctx *ctx, void *dst, const void *src, size_t bytes, sf_error *err) {
  (void)ctx; (void)err;
  if (bytes) memmove(dst, src, bytes);
  return SF_OK;
}

static sf_status cpu_zero(sf_op_ctx *ctx, void *dst, size_t bytes, sf_error *err) {
  (void)ctx; (void)err;
  if (bytes) memset(dst, 0, bytes);
  return SF_OK;
}

static sf_status cpu_sync(sf_op_ctx *ctx, sf_error *err) {
  (void)ctx; (void)err;
  return SF_OK;
}

static sf_status cpu_mem_info(sf_op_ctx *ctx, int64_t *free_bytes, int64_t *total_bytes, sf_error *err) {
  (void)ctx;
  const long page = sysconf(_SC_PAGESIZE), avail = sysconf(_SC_AVPHYS_PAGES), phys = sysconf(_SC_PHYS_PAGES);
  if (page <= 0 || avail < 0 || phys <= 0)
    return sf_fail(err, SF_ERR_IO, "cpu: cannot read the host's memory size (sysconf)");
  *free_bytes = (int64_t)avail * page;
  *total_bytes = (int64_t)phys * page;
  return SF_OK;
}

const sf_ops sf_ops_cpu = {
    .name = "cpu",
    .act_dtype = SF_F32,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .mem_info = cpu_mem_info,
    .embedding = sf_cpu_embedding,
    .norm = sf_cpu_norm,
    .gemm = sf_cpu_gemm,
    .rotary = sf_cpu_rotary,
    .activation = sf_cpu_activation,
    .sample = sf_cpu_sample,
    .kv_append = sf_cpu_kv_append,
    .attention = sf_cpu_attention,
    .attention_naive = sf_cpu_attention_naive,
    .attention_decode = sf_cpu_attention_decode,
    .attention_merge = sf_cpu_attention_merge,
    .conv1d = sf_cpu_conv1d,
    .conv1d_update = sf_cpu_conv1d_update,
    .selective_scan = sf_cpu_selective_scan,
    .selective_scan_naive = sf_cpu_selective_scan_naive,
    .selective_state_update = sf_cpu_selective_state_update,
    .ssd = sf_cpu_ssd,
    .ssd_naive = sf_cpu_ssd_naive,
    .ssd_update = sf_cpu_ssd_update,
};

sf_status sf_cpu_ctx_init(sf_op_ctx *ctx, int num_threads, sf_error *err) {
  (void)err;
  memset(ctx, 0, sizeof *ctx);
  ctx->ops = &sf_ops_cpu;
  ctx->device = -1;
  ctx->num_threads = num_threads;
#ifdef _OPENMP
  if (num_threads > 0) omp_set_num_threads(num_threads);
#endif
  return SF_OK;
}

void sf_cpu_ctx_destroy(sf_op_ctx *ctx) { memset(ctx, 0, sizeof *ctx); }
