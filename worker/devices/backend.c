/* Backend contexts by name (backend.h). */
#include "devices/backend.h"

#include <string.h>

#ifdef SCANFLASH_HAVE_CUDA
#include "ops/op_table_cuda.h"
#endif

sf_status sf_backend_init(const char *name, int device, int threads, sf_op_ctx *ctx, sf_error *err) {
  memset(ctx, 0, sizeof *ctx);
  if (!name || !strcmp(name, "cpu")) return sf_cpu_ctx_init(ctx, threads, err);
  if (strcmp(name, "cuda")) return sf_fail(err, SF_ERR_ARG, "unknown backend '%s' (cpu or cuda)", name);
#ifdef SCANFLASH_HAVE_CUDA
  (void)threads;
  if (sf_cuda_ctx_init(ctx, device, err) != SF_OK) return sf_fail_context(err, "CUDA device %d", device);
  return SF_OK;
#else
  (void)device;
  (void)threads;
  return sf_fail(err, SF_ERR_UNSUPPORTED, "backend cuda: this scanflash was built without CUDA");
#endif
}

void sf_backend_destroy(sf_op_ctx *ctx) {
  if (!ctx->ops) return;
#ifdef SCANFLASH_HAVE_CUDA
  if (!strcmp(ctx->ops->name, "cuda")) {
    sf_cuda_ctx_destroy(ctx);
    return;
  }
#endif
  sf_cpu_ctx_destroy(ctx);
}
