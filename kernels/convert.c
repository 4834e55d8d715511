#include "ops/convert.h"

#include <math.h>
#include <string.h>

uint16_t sf_f32_to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
  return (uint16_t)(u >> 16);
}

float sf_bf16_to_f32(uint16_t x) {
  uint32_t u = (uint32_t)x << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

uint16_t sf_f32_to_f16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);        /* NaN */
  if (absu >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);       /* overflow -> inf */
  if (absu < 0x38800000u) {                                         /* subnormal or zero */
    float a;
    memcpy(&a, &absu, 4);
    /* a * 2^24 rounded to nearest even gives the subnormal's mantissa. */
    return (uint16_t)(sign | (uint32_t)nearbyintf(a * 16777216.0f));
  }
  uint32_t mant_odd = (absu >> 13) & 1u;
  absu += 0xfffu + mant_odd;                                        /* round to nearest even */
  return (uint16_t)(sign | ((absu - 0x38000000u) >> 13));
}

float sf_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float f;
  if (exp == 0) {
    f = ldexpf((float)mant, -24);
    return sign ? -f : f;
  }
  uint32_t u = exp == 31 ? (sign | 0x7f800000u | (mant << 13))
                         : (sign | ((exp + 112u) << 23) | (mant << 13));
  memcpy(&f, &u, 4);
  return f;
}

static float load(const void *src, sf_dtype t, int64_t i) {
  switch (t) {
    case SF_F32: return ((const float *)src)[i];
    case SF_BF16: return sf_bf16_to_f32(((const uint16_t *)src)[i]);
    case SF_F16: return sf_f16_to_f32(((const uint16_t *)src)[i]);
  }
  return NAN;
}

void sf_convert(void *dst, sf_dtype to, const void *src, sf_dtype from, int64_t n) {
  if (to == from) {
    memmove(dst, src, (size_t)n * sf_dtype_size(to));
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    float v = load(src, from, i);
    switch (to) {
      case SF_F32: ((float *)dst)[i] = v; break;
      case SF_BF16: ((uint16_t *)dst)[i] = sf_f32_to_bf16(v); break;
      case SF_F16: ((uint16_t *)dst)[i] = sf_f32_to_f16(v); break;
    }
  }
}
