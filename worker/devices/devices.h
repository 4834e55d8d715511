/* What GPUs this process can see, and the versions of the GPU libraries it
 * was built with and runs against. Without CUDA in the build, no devices. */
#ifndef SCANFLASH_WORKER_DEVICES_H
#define SCANFLASH_WORKER_DEVICES_H

#include <stddef.h>
#include <stdint.h>

#include "scanflash/error.h"

typedef struct sf_device_info {
  int index;
  char name[256];
  char uuid[64];
  int cc_major, cc_minor;
  int sm_count;
  int64_t total_mem_bytes;
  int64_t l2_bytes;
  int64_t smem_per_block_optin;
  int mem_clock_khz, mem_bus_width_bits;
} sf_device_info;

typedef struct sf_gpu_libs {
  int have_cuda;             /* built with the CUDA backend */
  int cuda_runtime_version;  /* e.g. 13000 */
  int cuda_driver_version;   /* 0 when no driver is loaded */
  int cublas_version;
  int nccl_version;          /* 0 when built without NCCL */
} sf_gpu_libs;

void sf_gpu_libs_query(sf_gpu_libs *libs);

/* Fills up to max entries; *count is the number visible (0 without CUDA or
 * without a driver). A missing driver is not an error: *why says why none. */
sf_status sf_devices_query(sf_device_info *out, int max, int *count, char *why, size_t why_len,
                           sf_error *err);

#endif
