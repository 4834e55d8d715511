/* Energy and clocks of one GPU through NVML, loaded at run time (dlopen of
 * libnvidia-ml.so.1): the library comes with the driver, not the toolkit, so
 * the build never links it and a machine without it simply reports NaN / 0.
 * One handle per rank (no globals). */
#ifndef SCANFLASH_WORKER_NVML_H
#define SCANFLASH_WORKER_NVML_H

#include <stdint.h>

typedef struct sf_nvml sf_nvml;

/* Opens NVML for the GPU with this UUID ("GPU-xxxxxxxx-..." as
 * sf_devices_query writes it; CUDA ordinals and NVML indices differ under
 * CUDA_VISIBLE_DEVICES). NULL when NVML or the GPU is unavailable; why (may
 * be NULL) then says why, or, on success, how energy is measured ("" for
 * the hardware energy counter; a power-sampling thread where the counter is
 * unsupported). */
sf_nvml *sf_nvml_open(const char *uuid, char *why, int why_len);
void sf_nvml_close(sf_nvml *n);

/* A running energy total of the GPU in joules (the millijoule counter since
 * the driver loaded, or the sampled power integrated since open); NaN when
 * unavailable. Differences over an interval give its energy; both sources
 * refresh every few ms to tens of ms, so much shorter intervals read as
 * noise. */
double sf_nvml_energy_j(sf_nvml *n);

/* Current (and maximum) SM and memory clocks in MHz (0 when unavailable). */
void sf_nvml_clocks(sf_nvml *n, int32_t *sm_mhz, int32_t *mem_mhz);
void sf_nvml_max_clocks(sf_nvml *n, int32_t *sm_mhz, int32_t *mem_mhz);

#endif
