/* The sharding rules of cp_shard.h: plain arithmetic, no state. */
#include "parallel/cp_shard.h"

sf_cp_span sf_cp_split(int64_t L, int64_t n, int64_t i) {
  const int64_t q = L / n, extra = L % n;
  sf_cp_span s = {.start = i * q + (i < extra ? i : extra), .len = q + (i < extra)};
  return s;
}

void sf_cp_zigzag(int64_t L, int k, int r, sf_cp_span blocks[2]) {
  blocks[0] = sf_cp_split(L, 2 * (int64_t)k, r);
  blocks[1] = sf_cp_split(L, 2 * (int64_t)k, 2 * (int64_t)k - 1 - r);
}

int64_t sf_cp_zigzag_len(int64_t L, int k, int r) {
  sf_cp_span b[2];
  sf_cp_zigzag(L, k, r, b);
  return b[0].len + b[1].len;
}

void sf_cp_zigzag_positions(int64_t L, int k, int r, int32_t *pos) {
  sf_cp_span b[2];
  sf_cp_zigzag(L, k, r, b);
  int64_t i = 0;
  for (int h = 0; h < 2; h++)
    for (int64_t j = 0; j < b[h].len; j++) pos[i++] = (int32_t)(b[h].start + j);
}

int sf_cp_decode_owner(int64_t p, int k) { return (int)(p % k); }

int64_t sf_cp_cache_len(int64_t L, int64_t P, int k, int r) {
  /* Positions in [L, P) congruent to r mod k: those below P minus those below L. */
  const int64_t below_P = P > r ? (P - 1 - r) / k + 1 : 0;
  const int64_t below_L = L > r ? (L - 1 - r) / k + 1 : 0;
  return sf_cp_zigzag_len(L, k, r) + (below_P - below_L);
}

sf_cp_span sf_cp_piece(int64_t L, int k, int r) { return sf_cp_split(L, k, r); }
