#include "devices/devices.h"

#include <stdio.h>
#include <string.h>

#ifdef SCANFLASH_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#ifdef SCANFLASH_HAVE_NCCL
#include <nccl.h>
#endif
#endif

void sf_gpu_libs_query(sf_gpu_libs *libs) {
  memset(libs, 0, sizeof *libs);
#ifdef SCANFLASH_HAVE_CUDA
  libs->have_cuda = 1;
  cudaRuntimeGetVersion(&libs->cuda_runtime_version);
  if (cudaDriverGetVersion(&libs->cuda_driver_version) != cudaSuccess) libs->cuda_driver_version = 0;
  /* cublasGetProperty needs no handle, so it works without a GPU. */
  int maj = 0, min = 0, pat = 0;
  cublasGetProperty(MAJOR_VERSION, &maj);
  cublasGetProperty(MINOR_VERSION, &min);
  cublasGetProperty(PATCH_LEVEL, &pat);
  libs->cublas_version = maj * 10000 + min * 100 + pat;
#ifdef SCANFLASH_HAVE_NCCL
  ncclGetVersion(&libs->nccl_version);
#endif
#endif
}

sf_status sf_devices_query(sf_device_info *out, int max, int *count, char *why, size_t why_len,
                           sf_error *err) {
  *count = 0;
  if (why_len) why[0] = '\0';
#ifdef SCANFLASH_HAVE_CUDA
  int n = 0;
  cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    snprintf(why, why_len, "no usable CUDA driver or GPU: %s", cudaGetErrorString(rc));
    cudaGetLastError(); /* clear the sticky-free error so later calls are clean */
    return SF_OK;
  }
  for (int i = 0; i < n && i < max; i++) {
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess)
      return sf_fail(err, SF_ERR_DEVICE, "cudaGetDeviceProperties(%d) failed", i);
    sf_device_info *d = &out[i];
    memset(d, 0, sizeof *d);
    d->index = i;
    snprintf(d->name, sizeof d->name, "%s", p.name);
    char *u = d->uuid;
    u += sprintf(u, "GPU-");
    for (int b = 0; b < 16; b++) u += sprintf(u, "%02x%s", (unsigned char)p.uuid.bytes[b],
                                             (b == 3 || b == 5 || b == 7 || b == 9) ? "-" : "");
    d->cc_major = p.major;
    d->cc_minor = p.minor;
    d->sm_count = p.multiProcessorCount;
    d->total_mem_bytes = (int64_t)p.totalGlobalMem;
    d->l2_bytes = p.l2CacheSize;
    d->smem_per_block_optin = (int64_t)p.sharedMemPerBlockOptin;
    int clk = 0, bus = 0;
    cudaDeviceGetAttribute(&clk, cudaDevAttrMemoryClockRate, i);
    cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, i);
    d->mem_clock_khz = clk;
    d->mem_bus_width_bits = bus;
  }
  *count = n;
#else
  (void)out; (void)max; (void)err;
  snprintf(why, why_len, "built without CUDA");
#endif
  return SF_OK;
}
