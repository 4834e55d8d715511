/* mbarriers and the bulk copy unit (sm_90) as inline PTX: the Hopper
 * attention prefill (attention_wgmma.cu, with TMA) and the decode GEMV's
 * weight ring (gemm_small_m.cu). Use only in code compiled for sm_90 or
 * later (__CUDA_ARCH__ >= 900). */
#ifndef SCANFLASH_KERNELS_CUDA_MBARRIER_CUH
#define SCANFLASH_KERNELS_CUDA_MBARRIER_CUH

#include <stdint.h>

namespace sf_async {

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

/* Ordinary shared-memory stores of this thread become visible to the
 * async proxy (wgmma operands, TMA) after this and a barrier. */
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

/* bytes (a multiple of 16; src and dst 16-byte aligned) from global memory
 * to shared memory at dst; completes that many bytes on the mbarrier bar. */
__device__ __forceinline__ void bulk_load(uint32_t dst, const void *src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"((uint64_t)src), "r"(bytes), "r"(bar)
               : "memory");
}

}  // namespace sf_async

#endif
