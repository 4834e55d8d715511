/* Byte-pair encoding of one pre-tokenized word, as HF's Word::merge_all does
 * it (so that ties break the same way): the word starts as one symbol per
 * byte; a min-heap holds candidate merges keyed by (rank, position); the
 * lowest is applied unless it went stale, and the pairs it forms with its
 * neighbours are pushed. O(n log n) per word, with the pair lookup an O(1)
 * hash probe (hashmap.h).
 *
 * Words repeat a lot in code (indentation, keywords), so results are cached
 * by the word's bytes; the cache is dropped whole when it grows too big. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

enum {
  CACHE_MAX_WORDS = 1 << 16,     /* entries before the cache is dropped */
  CACHE_MAX_IDS = 1 << 20,       /* ids stored, likewise */
  CACHE_MAX_WORD_BYTES = 256     /* longer words are not worth caching */
};

sf_status sf_bpe_init(sf_tokenizer *tok, sf_error *err) {
  return sf_strmap_init(&tok->cache, 4096, err);
}

void sf_bpe_free(sf_tokenizer *tok) {
  sf_strmap_free(&tok->cache);
  free(tok->cache_ids);
  free(tok->syms);
  free(tok->heap);
  tok->cache_ids = NULL;
  tok->syms = NULL;
  tok->heap = NULL;
  tok->cache_ids_n = tok->cache_ids_cap = tok->syms_cap = tok->heap_cap = 0;
}

static int merge_before(const sf_bpe_merge *a, const sf_bpe_merge *b) {
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(sf_bpe_merge *h, size_t *n, sf_bpe_merge m) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!merge_before(&m, &h[parent])) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = m;
}

static sf_bpe_merge heap_pop(sf_bpe_merge *h, size_t *n) {
  sf_bpe_merge top = h[0], last = h[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && merge_before(&h[c + 1], &h[c])) c++;
    if (!merge_before(&h[c], &last)) break;
    h[i] = h[c];
    i = c;
  }
  if (*n) h[i] = last;
  return top;
}

static void push_pair(sf_tokenizer *tok, size_t *nheap, int32_t pos) {
  const sf_bpe_symbol *s = tok->syms;
  uint32_t rank;
  int32_t merged;
  if (sf_pairmap_get(&tok->merges, s[pos].id, s[s[pos].next].id, &rank, &merged))
    heap_push(tok->heap, nheap, (sf_bpe_merge){rank, pos, merged});
}

static sf_status reserve_scratch(sf_tokenizer *tok, size_t len, sf_error *err) {
  /* at most len-1 initial pairs plus 2 per merge (at most len-1 merges) */
  size_t need_heap = 3 * len;
  if (tok->syms_cap < len) {
    sf_bpe_symbol *ns = realloc(tok->syms, len * sizeof *ns);
    if (!ns) return sf_fail(err, SF_ERR_NOMEM, "tokenizer: out of memory for a %zu-byte word", len);
    tok->syms = ns;
    tok->syms_cap = len;
  }
  if (tok->heap_cap < need_heap) {
    sf_bpe_merge *nh = realloc(tok->heap, need_heap * sizeof *nh);
    if (!nh) return sf_fail(err, SF_ERR_NOMEM, "tokenizer: out of memory for a %zu-byte word", len);
    tok->heap = nh;
    tok->heap_cap = need_heap;
  }
  return SF_OK;
}

/* model.ignore_merges: a word that is itself in the vocabulary is one token. */
static int whole_word_id(const sf_tokenizer *tok, const char *word, size_t len, int32_t *id) {
  char stackbuf[512] = "";
  char *buf = len * 2 <= sizeof stackbuf ? stackbuf : calloc(len, 2); /* <= 2 bytes a symbol */
  if (!buf) return 0; /* fall back to merging, which gives the same ids */
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += sf_utf8_encode(sf_bytelevel_char((uint8_t)word[i]), buf + n);
  int found = sf_strmap_get(&tok->vocab, buf, n, id);
  if (buf != stackbuf) free(buf);
  return found;
}

static sf_status merge_word(sf_tokenizer *tok, const char *word, size_t len, sf_tokens *out,
                            sf_error *err) {
  int32_t whole;
  if (tok->ignore_merges && whole_word_id(tok, word, len, &whole)) return sf_tokens_push(out, whole, err);
  if (len > INT32_MAX) return sf_fail(err, SF_ERR_ARG, "tokenizer: a %zu-byte word is too long", len);
  SF_TRY(reserve_scratch(tok, len, err));
  sf_bpe_symbol *s = tok->syms;
  int32_t n = (int32_t)len;
  for (int32_t i = 0; i < n; i++)
    s[i] = (sf_bpe_symbol){tok->byte_id[(uint8_t)word[i]], i - 1, i + 1 < n ? i + 1 : -1, 1};
  size_t nheap = 0;
  for (int32_t i = 0; i + 1 < n; i++) push_pair(tok, &nheap, i);

  while (nheap) {
    sf_bpe_merge top = heap_pop(tok->heap, &nheap);
    sf_bpe_symbol *cur = &s[top.pos];
    if (cur->len == 0 || cur->next == -1) continue; /* merged away, or last */
    int32_t next = cur->next;
    uint32_t rank;
    int32_t merged;
    /* stale entry: the right neighbour changed since it was pushed */
    if (!sf_pairmap_get(&tok->merges, cur->id, s[next].id, &rank, &merged) || merged != top.new_id)
      continue;
    cur->id = top.new_id;
    cur->len += s[next].len;
    cur->next = s[next].next;
    s[next].len = 0;
    if (cur->next != -1) s[cur->next].prev = top.pos;
    if (cur->prev != -1) push_pair(tok, &nheap, cur->prev);
    if (cur->next != -1) push_pair(tok, &nheap, top.pos);
  }
  /* symbol 0 is never merged away (merges remove the right symbol) */
  for (int32_t i = 0; i != -1; i = s[i].next) SF_TRY(sf_tokens_push(out, s[i].id, err));
  return SF_OK;
}

static void cache_store(sf_tokenizer *tok, const char *word, size_t len, const int32_t *ids, int64_t n) {
  if (len > CACHE_MAX_WORD_BYTES) return;
  if (tok->cache.n >= CACHE_MAX_WORDS || tok->cache_ids_n + (size_t)n + 1 > CACHE_MAX_IDS) {
    sf_strmap_clear(&tok->cache);
    tok->cache_ids_n = 0;
  }
  if (tok->cache_ids_n + (size_t)n + 1 > tok->cache_ids_cap) {
    size_t cap = tok->cache_ids_cap ? tok->cache_ids_cap : 4096;
    while (cap < tok->cache_ids_n + (size_t)n + 1) cap *= 2;
    int32_t *na = realloc(tok->cache_ids, cap * sizeof *na);
    if (!na) return; /* the cache is an optimisation: skip it */
    tok->cache_ids = na;
    tok->cache_ids_cap = cap;
  }
  size_t off = tok->cache_ids_n;
  if (sf_strmap_put(&tok->cache, word, len, (int32_t)off, NULL, NULL) != SF_OK) return;
  tok->cache_ids[off] = (int32_t)n;
  memcpy(tok->cache_ids + off + 1, ids, (size_t)n * sizeof *ids);
  tok->cache_ids_n += (size_t)n + 1;
}

sf_status sf_bpe_word(sf_tokenizer *tok, const char *word, size_t len, sf_tokens *out, sf_error *err) {
  if (len == 0) return SF_OK;
  int32_t off;
  if (sf_strmap_get(&tok->cache, word, len, &off))
    return sf_tokens_append(out, tok->cache_ids + off + 1, tok->cache_ids[off], err);
  int64_t first = out->n;
  SF_TRY(merge_word(tok, word, len, out, err));
  cache_store(tok, word, len, out->ids + first, out->n - first);
  return SF_OK;
}
