/* Who holds which tokens in a context-parallel group of k ranks. Every rank
 * computes the same answers from the global lengths alone, so no layout is
 * ever sent.
 *
 * Even split: n parts of a length L are cut in order; part i has
 * L / n + (i < L % n) tokens, so the first L % n parts have one more and the
 * sizes never grow with i (the ring attention relies on this: a block always
 * holds at least as many keys as any later block has queries).
 *
 * Attention (zigzag): the sequence is cut evenly into 2k blocks and rank r
 * holds blocks r and 2k-1-r, in that order; causal work is then balanced
 * (an early block with little to see pairs with a late one that sees much).
 * Lengths below 2k give some ranks empty blocks; nothing else changes.
 *
 * Attention decode: the token at global position p >= L (generated) is
 * stored by rank p mod k, which appends it after its prefill blocks. So the
 * rank's KV cache holds, in order: block r, block 2k-1-r, then its decode
 * tokens; attention over a cache needs no order, the positions are in the
 * keys already (rotary applied before they were stored).
 *
 * Mamba: the sequence is cut evenly into k contiguous pieces, rank r holds
 * piece r (states flow from rank r to r + 1). */
#ifndef SCANFLASH_PARALLEL_CP_SHARD_H
#define SCANFLASH_PARALLEL_CP_SHARD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A run of global positions [start, start + len). */
typedef struct sf_cp_span {
  int64_t start, len;
} sf_cp_span;

/* Part i of n of a length L (the even split above). */
sf_cp_span sf_cp_split(int64_t L, int64_t n, int64_t i);

/* Rank r's two zigzag blocks of a length L over k ranks: [0] = block r,
 * [1] = block 2k-1-r. */
void sf_cp_zigzag(int64_t L, int k, int r, sf_cp_span blocks[2]);

/* Rank r's tokens of the prefill: the two blocks' lengths together. */
int64_t sf_cp_zigzag_len(int64_t L, int k, int r);

/* Global positions of rank r's prefill tokens, in its local order
 * (block r, then block 2k-1-r): pos[0 .. sf_cp_zigzag_len). For rotary. */
void sf_cp_zigzag_positions(int64_t L, int k, int r, int32_t *pos);

/* The rank that stores the K/V of the decode token at position p. */
int sf_cp_decode_owner(int64_t p, int k);

/* Tokens in rank r's KV cache once positions [0, P) are stored (P >= L:
 * prompt L, then P - L decode tokens). */
int64_t sf_cp_cache_len(int64_t L, int64_t P, int k, int r);

/* Rank r's Mamba piece of a length L over k ranks. */
sf_cp_span sf_cp_piece(int64_t L, int k, int r);

#ifdef __cplusplus
}
#endif
#endif
