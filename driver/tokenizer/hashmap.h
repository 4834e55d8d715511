/* Open-addressing hash maps for the tokenizer (internal).
 *
 * sf_strmap: byte string -> int32. Keys are copied into an arena owned by the
 * map, so callers may pass slices of temporary buffers. Used for the model
 * vocabulary (token text -> id) and the per-word BPE cache (word bytes ->
 * offset of its ids).
 *
 * sf_pairmap: (left id, right id) -> (rank, merged id). The BPE inner loop
 * looks up every adjacent pair, so this one is a flat table of two uint64
 * arrays with no indirection. */
#ifndef SCANFLASH_TOKENIZER_HASHMAP_H
#define SCANFLASH_TOKENIZER_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

#include "scanflash/error.h"

typedef struct sf_strmap_slot {
  uint64_t hash; /* 0 marks an empty slot (real hashes have the top bit set) */
  size_t key_off;
  uint32_t key_len;
  int32_t value;
} sf_strmap_slot;

typedef struct sf_strmap {
  sf_strmap_slot *slots;
  size_t cap; /* power of two */
  size_t n;
  char *arena; /* key bytes, back to back */
  size_t arena_len, arena_cap;
} sf_strmap;

sf_status sf_strmap_init(sf_strmap *m, size_t expected, sf_error *err);
void sf_strmap_free(sf_strmap *m);
/* Forgets every key but keeps the memory (the word cache's reset). */
void sf_strmap_clear(sf_strmap *m);
/* 1 and *value when present, 0 otherwise. */
int sf_strmap_get(const sf_strmap *m, const char *key, size_t len, int32_t *value);
/* Inserts or overwrites; *existed (may be NULL) says which. */
sf_status sf_strmap_put(sf_strmap *m, const char *key, size_t len, int32_t value, int *existed,
                        sf_error *err);

typedef struct sf_pairmap {
  uint64_t *keys; /* (left << 32) | right; SF_PAIRMAP_EMPTY when unused */
  uint64_t *vals; /* (rank << 32) | merged id */
  size_t cap;     /* power of two */
  size_t n;
} sf_pairmap;

#define SF_PAIRMAP_EMPTY UINT64_MAX

sf_status sf_pairmap_init(sf_pairmap *m, size_t expected, sf_error *err);
void sf_pairmap_free(sf_pairmap *m);
/* Inserts or overwrites (a later duplicate merge wins, as in HF's HashMap). */
sf_status sf_pairmap_put(sf_pairmap *m, int32_t left, int32_t right, uint32_t rank, int32_t merged,
                         sf_error *err);
/* splitmix64's finalizer: ids are small and dense, so mix before masking. */
static inline uint64_t sf_pairmap_hash(uint64_t key) {
  uint64_t h = key + 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

static inline uint64_t sf_pairmap_key(int32_t left, int32_t right) {
  return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

/* 1 with rank and merged id when the pair merges, 0 otherwise. Inline: it is
 * the BPE inner loop. */
static inline int sf_pairmap_get(const sf_pairmap *m, int32_t left, int32_t right, uint32_t *rank,
                                 int32_t *merged) {
  uint64_t key = sf_pairmap_key(left, right);
  size_t mask = m->cap - 1;
  for (size_t i = (size_t)sf_pairmap_hash(key) & mask;; i = (i + 1) & mask) {
    uint64_t k = m->keys[i];
    if (k == key) {
      *rank = (uint32_t)(m->vals[i] >> 32);
      *merged = (int32_t)(uint32_t)m->vals[i];
      return 1;
    }
    if (k == SF_PAIRMAP_EMPTY) return 0;
  }
}

#endif
