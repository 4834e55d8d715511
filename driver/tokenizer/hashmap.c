/* Open-addressing hash maps with linear probing. Load factor stays at or
 * below 1/2, so probes are short; nothing is ever deleted one key at a time
 * (the word cache is dropped whole), so no tombstones are needed. */
#include "tokenizer/hashmap.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, then the top bit set so that 0 can mark an empty slot. */
static uint64_t str_hash(const char *key, size_t len) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)key[i];
    h *= 0x100000001b3ull;
  }
  h ^= h >> 29; /* FNV's low bits are weak; we mask with them */
  return h | (1ull << 63);
}

static size_t pow2_at_least(size_t n) {
  size_t c = 16;
  while (c < n) c *= 2;
  return c;
}

sf_status sf_strmap_init(sf_strmap *m, size_t expected, sf_error *err) {
  memset(m, 0, sizeof *m);
  m->cap = pow2_at_least(expected * 2);
  m->slots = calloc(m->cap, sizeof *m->slots);
  m->arena_cap = 4096;
  m->arena = malloc(m->arena_cap);
  if (!m->slots || !m->arena) {
    sf_strmap_free(m);
    return sf_fail(err, SF_ERR_NOMEM, "tokenizer: out of memory for a hash map");
  }
  return SF_OK;
}

void sf_strmap_free(sf_strmap *m) {
  free(m->slots);
  free(m->arena);
  memset(m, 0, sizeof *m);
}

void sf_strmap_clear(sf_strmap *m) {
  memset(m->slots, 0, m->cap * sizeof *m->slots);
  m->n = 0;
  m->arena_len = 0;
}

int sf_strmap_get(const sf_strmap *m, const char *key, size_t len, int32_t *value) {
  uint64_t h = str_hash(key, len);
  size_t mask = m->cap - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    const sf_strmap_slot *s = &m->slots[i];
    if (s->hash == 0) return 0;
    if (s->hash == h && s->key_len == len && !memcmp(m->arena + s->key_off, key, len)) {
      *value = s->value;
      return 1;
    }
  }
}

static sf_status strmap_grow(sf_strmap *m, sf_error *err) {
  size_t ncap = m->cap * 2;
  sf_strmap_slot *ns = calloc(ncap, sizeof *ns);
  if (!ns) return sf_fail(err, SF_ERR_NOMEM, "tokenizer: out of memory growing a hash map");
  for (size_t j = 0; j < m->cap; j++) {
    if (!m->slots[j].hash) continue;
    size_t i = (size_t)m->slots[j].hash & (ncap - 1);
    while (ns[i].hash) i = (i + 1) & (ncap - 1);
    ns[i] = m->slots[j];
  }
  free(m->slots);
  m->slots = ns;
  m->cap = ncap;
  return SF_OK;
}

sf_status sf_strmap_put(sf_strmap *m, const char *key, size_t len, int32_t value, int *existed,
                        sf_error *err) {
  if (len > UINT32_MAX) return sf_fail(err, SF_ERR_ARG, "tokenizer: hash key too long");
  if ((m->n + 1) * 2 > m->cap) SF_TRY(strmap_grow(m, err));
  uint64_t h = str_hash(key, len);
  size_t mask = m->cap - 1;
  size_t i = (size_t)h & mask;
  for (; m->slots[i].hash; i = (i + 1) & mask) {
    sf_strmap_slot *s = &m->slots[i];
    if (s->hash == h && s->key_len == len && !memcmp(m->arena + s->key_off, key, len)) {
      s->value = value;
      if (existed) *existed = 1;
      return SF_OK;
    }
  }
  if (m->arena_len + len > m->arena_cap) {
    size_t ncap = m->arena_cap;
    while (m->arena_len + len > ncap) ncap *= 2;
    char *na = realloc(m->arena, ncap);
    if (!na) return sf_fail(err, SF_ERR_NOMEM, "tokenizer: out of memory for hash keys");
    m->arena = na;
    m->arena_cap = ncap;
  }
  if (len) memcpy(m->arena + m->arena_len, key, len);
  m->slots[i] = (sf_strmap_slot){.hash = h, .key_off = m->arena_len, .key_len = (uint32_t)len,
                                 .value = value};
  m->arena_len += len;
  m->n++;
  if (existed) *existed = 0;
  return SF_OK;
}

sf_status sf_pairmap_init(sf_pairmap *m, size_t expected, sf_error *err) {
  memset(m, 0, sizeof *m);
  m->cap = pow2_at_least(expected * 2);
  m->keys = malloc(m->cap * sizeof *m->keys);
  m->vals = malloc(m->cap * sizeof *m->vals);
  if (!m->keys || !m->vals) {
    sf_pairmap_free(m);
    return sf_fail(err, SF_ERR_NOMEM, "tokenizer: out of memory for the merge table");
  }
  memset(m->keys, 0xff, m->cap * sizeof *m->keys); /* all SF_PAIRMAP_EMPTY */
  return SF_OK;
}

void sf_pairmap_free(sf_pairmap *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

static sf_status pairmap_grow(sf_pairmap *m, sf_error *err) {
  size_t ncap = m->cap * 2;
  uint64_t *nk = malloc(ncap * sizeof *nk), *nv = malloc(ncap * sizeof *nv);
  if (!nk || !nv) {
    free(nk);
    free(nv);
    return sf_fail(err, SF_ERR_NOMEM, "tokenizer: out of memory growing the merge table");
  }
  memset(nk, 0xff, ncap * sizeof *nk);
  for (size_t j = 0; j < m->cap; j++) {
    if (m->keys[j] == SF_PAIRMAP_EMPTY) continue;
    size_t i = (size_t)sf_pairmap_hash(m->keys[j]) & (ncap - 1);
    while (nk[i] != SF_PAIRMAP_EMPTY) i = (i + 1) & (ncap - 1);
    nk[i] = m->keys[j];
    nv[i] = m->vals[j];
  }
  free(m->keys);
  free(m->vals);
  m->keys = nk;
  m->vals = nv;
  m->cap = ncap;
  return SF_OK;
}

sf_status sf_pairmap_put(sf_pairmap *m, int32_t left, int32_t right, uint32_t rank, int32_t merged,
                         sf_error *err) {
  if ((m->n + 1) * 2 > m->cap) SF_TRY(pairmap_grow(m, err));
  uint64_t key = sf_pairmap_key(left, right);
  uint64_t val = ((uint64_t)rank << 32) | (uint32_t)merged;
  size_t mask = m->cap - 1;
  size_t i = (size_t)sf_pairmap_hash(key) & mask;
  for (; m->keys[i] != SF_PAIRMAP_EMPTY; i = (i + 1) & mask) {
    if (m->keys[i] == key) {
      m->vals[i] = val;
      return SF_OK;
    }
  }
  m->keys[i] = key;
  m->vals[i] = val;
  m->n++;
  return SF_OK;
}
