/* Small pieces the cpu ops share: scalar activations (PyTorch semantics,
 * softplus threshold 20), the OpenMP thread choice, and argument checks. */
#ifndef SCANFLASH_KERNELS_CPU_COMMON_H
#define SCANFLASH_KERNELS_CPU_COMMON_H

#include <math.h>

#include "cpu_ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static inline float sf_softplus_f(float v) { return v > 20.0f ? v : log1pf(expf(v)); }
static inline float sf_silu_f(float v) { return v / (1.0f + expf(-v)); }

/* Threads for about `work` multiply-adds: one below ~64K (a fork/join costs
 * more than it saves there), else ctx->num_threads or the OpenMP default. */
static inline int sf_cpu_threads(const sf_op_ctx *ctx, double work) {
#ifdef _OPENMP
  if (work < 65536.0) return 1;
  return ctx && ctx->num_threads > 0 ? ctx->num_threads : omp_get_max_threads();
#else
  (void)ctx, (void)work;
  return 1;
#endif
}

static inline int sf_cpu_thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/* batch >= 0, max_len >= 0, start/len present, 0 <= len[b] <= max_len, start[b] >= 0. */
sf_status sf_cpu_check_seqs(const char *op, const sf_seqs *s, sf_error *err);
/* Everything ssd and ssd_naive require of their params. */
sf_status sf_cpu_check_ssd(const char *op, const sf_ssd_params *p, sf_error *err);

#endif
