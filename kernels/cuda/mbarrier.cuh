/* Hopper's asynchronous-copy plumbing shared by the kernels that stream
 * through shared memory (attention_wgmma.cu, mamba1_decode.cu): mbarriers,
 * the bulk copy unit (cp.async.bulk, sm_90) and named barriers, as inline
 * PTX. Only kernels compiled for sm_90 may call the mbarrier transaction
 * and bulk-copy helpers; nothing here is emitted unless called. */
#ifndef SCANFLASH_KERNELS_CUDA_MBARRIER_CUH
#define SCANFLASH_KERNELS_CUDA_MBARRIER_CUH

#include <stdint.h>

namespace sf_async {

/* ---- mbarriers ----------------------------------------------------------- */

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
/* Makes the initialised barriers visible to the other threads and to the
 * async proxy (the TMA unit completes transactions on them). */
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
/* Spins until the phase of parity `parity` has completed. A fresh barrier
 * is in phase 0, so waiting for parity 1 returns at once (the producer's
 * first pass over the empty barriers). */
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}

/* Whether the phase of parity `parity` has completed, without waiting. */
__device__ __forceinline__ bool mbar_test(uint32_t bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n.reg .pred p;\nmbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}

/* Asks L2 for bytes (a multiple of 16) at global src (16-byte aligned) by
 * the bulk copy unit; nothing comes back to the SM. */
__device__ __forceinline__ void bulk_prefetch_l2(const void *src, uint32_t bytes) {
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"((uint64_t)src), "r"(bytes) : "memory");
}

/* bytes (a multiple of 16) from global src to shared dst (both 16-byte
 * aligned) by the bulk copy unit; completes `bytes` transactions on the
 * mbarrier bar (armed with mbar_arrive_expect_tx). */
__device__ __forceinline__ void bulk_g2s(uint32_t dst, const void *src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"((uint64_t)src), "r"(bytes), "r"(bar)
               : "memory");
}

/* Arrives at named barrier id (counted towards `threads`) without waiting. */
__device__ __forceinline__ void named_bar_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

/* Barrier over `threads` threads (a multiple of 32) with id 1..15 (0 is
 * __syncthreads). */
__device__ __forceinline__ void named_bar_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace sf_async

#endif
