/* Seeded, portable random numbers: the same seed gives the same stream on
 * every machine and compiler (no rand(), no floating-point in the state).
 * splitmix64 expands seeds; xoshiro256** draws. */
#ifndef SCANFLASH_RNG_H
#define SCANFLASH_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_rng { uint64_t s[4]; } sf_rng;

uint64_t sf_splitmix64(uint64_t *state);
void sf_rng_seed(sf_rng *rng, uint64_t seed);
/* A stream derived from (seed, stream id): independent tensors / problems
 * draw from their own stream so adding one never shifts another. */
void sf_rng_seed_stream(sf_rng *rng, uint64_t seed, uint64_t stream);
uint64_t sf_rng_next(sf_rng *rng);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint64_t sf_rng_below(sf_rng *rng, uint64_t n);
/* Uniform in [0, 1) with 24 random bits (exact in float). */
float sf_rng_uniform(sf_rng *rng);
/* Standard normal (Box-Muller). */
float sf_rng_normal(sf_rng *rng);
/* Fisher-Yates shuffle of an int32 array. */
void sf_rng_shuffle_i32(sf_rng *rng, int32_t *a, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
