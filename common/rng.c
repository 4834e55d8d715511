#include "scanflash/rng.h"

#include <math.h>

uint64_t sf_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void sf_rng_seed(sf_rng *rng, uint64_t seed) {
  uint64_t st = seed;
  for (int i = 0; i < 4; i++) rng->s[i] = sf_splitmix64(&st);
}

void sf_rng_seed_stream(sf_rng *rng, uint64_t seed, uint64_t stream) {
  uint64_t st = seed;
  uint64_t mixed = sf_splitmix64(&st) ^ (stream * 0xD1B54A32D192ED03ULL);
  sf_rng_seed(rng, mixed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sf_rng_next(sf_rng *rng) {
  uint64_t *s = rng->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t sf_rng_below(sf_rng *rng, uint64_t n) {
  /* Rejection sampling: draws in the incomplete top range are redrawn. */
  uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
  uint64_t x;
  do x = sf_rng_next(rng); while (x >= limit);
  return x % n;
}

float sf_rng_uniform(sf_rng *rng) { return (float)(sf_rng_next(rng) >> 40) * 0x1.0p-24f; }

float sf_rng_normal(sf_rng *rng) {
  double u1 = ((double)(sf_rng_next(rng) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
  double u2 = (double)(sf_rng_next(rng) >> 11) * 0x1.0p-53;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void sf_rng_shuffle_i32(sf_rng *rng, int32_t *a, int64_t n) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)sf_rng_below(rng, (uint64_t)i + 1);
    int32_t t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}
