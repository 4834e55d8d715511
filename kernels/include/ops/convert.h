/* Host-side element conversions between f32 and the 16-bit types (weights
 * from checkpoints, uploads to a bf16 backend, GPU results back to f32).
 * Rounding is to nearest even, NaN stays NaN. */
#ifndef SCANFLASH_OPS_CONVERT_H
#define SCANFLASH_OPS_CONVERT_H

#include <stdint.h>

#include "ops/types.h"

#ifdef __cplusplus
extern "C" {
#endif

uint16_t sf_f32_to_bf16(float x);
float sf_bf16_to_f32(uint16_t x);
uint16_t sf_f32_to_f16(float x);
float sf_f16_to_f32(uint16_t x);

/* n elements from src (type from) to dst (type to); any pair of f32/bf16/f16. */
void sf_convert(void *dst, sf_dtype to, const void *src, sf_dtype from, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
