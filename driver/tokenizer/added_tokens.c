/* Splitting text on added tokens, as HF's AddedVocabulary::find_matches does:
 * leftmost-longest, non-overlapping matches (Aho-Corasick semantics), then
 * lstrip / rstrip widen a match over White_Space. single_word is rejected at
 * load time (tokenizer_load.c), so it never reaches here.
 *
 * The search is a scan with the patterns bucketed by first byte, longest
 * first: the first pattern that matches at the leftmost position is the
 * longest one there. Added vocabularies are small (25 here), so this is as
 * fast as a trie in practice and has no build step to get wrong. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

typedef struct sort_key {
  unsigned char first;
  size_t len;
  int32_t index;
} sort_key;

static int cmp_first_byte_then_longest(const void *a, const void *b) {
  const sort_key *x = a, *y = b;
  if (x->first != y->first) return x->first < y->first ? -1 : 1;
  if (x->len != y->len) return x->len > y->len ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

sf_status sf_added_set_build(const sf_tokenizer *tok, sf_added_set *set, int normalized,
                             sf_error *err) {
  memset(set, 0, sizeof *set);
  size_t cap = (size_t)tok->n_added + 1;
  set->order = malloc(cap * sizeof *set->order);
  sort_key *keys = malloc(cap * sizeof *keys);
  if (!set->order || !keys) {
    free(keys);
    sf_added_set_free(set);
    return sf_fail(err, SF_ERR_NOMEM, "tokenizer: out of memory");
  }
  for (int32_t i = 0; i < tok->n_added; i++) {
    const sf_added_token *t = &tok->added[i];
    if (!!t->normalized == !!normalized && t->pattern_len > 0)
      keys[set->n++] = (sort_key){(unsigned char)t->pattern[0], t->pattern_len, i};
  }
  qsort(keys, (size_t)set->n, sizeof *keys, cmp_first_byte_then_longest);
  for (int32_t k = 0; k < set->n; k++) set->order[k] = keys[k].index;
  /* bucket[b] = first position whose pattern starts with a byte >= b */
  int32_t j = 0;
  for (int b = 0; b <= 256; b++) {
    while (j < set->n && keys[j].first < b) j++;
    set->bucket[b] = j;
  }
  free(keys);
  return SF_OK;
}

void sf_added_set_free(sf_added_set *set) {
  free(set->order);
  memset(set, 0, sizeof *set);
}

/* The leftmost-longest match at or after `from`: 1 with [*start, *end) and
 * the token index, 0 when there is none. */
static int find_match(const sf_tokenizer *tok, const sf_added_set *set, const char *s, size_t len,
                      size_t from, size_t *start, size_t *end, int32_t *which) {
  if (set->n == 0) return 0;
  for (size_t pos = from; pos < len; pos++) {
    unsigned char c = (unsigned char)s[pos];
    for (int32_t k = set->bucket[c]; k < set->bucket[c + 1]; k++) {
      const sf_added_token *t = &tok->added[set->order[k]];
      if (t->pattern_len <= len - pos && !memcmp(s + pos, t->pattern, t->pattern_len)) {
        *start = pos;
        *end = pos + t->pattern_len;
        *which = set->order[k];
        return 1;
      }
    }
  }
  return 0;
}

/* Start of the run of White_Space that ends at `end` (HF: \s*$ on s[..end]). */
static size_t white_run_before(const char *s, size_t end) {
  size_t i = end;
  while (i > 0) {
    size_t j = i - 1; /* back up to the start of the previous code point */
    while (j > 0 && ((unsigned char)s[j] & 0xc0) == 0x80) j--;
    uint32_t cp;
    sf_utf8_next(s + j, i - j, &cp);
    if (!sf_is_white_space(cp)) break;
    i = j;
  }
  return i;
}

/* End of the run of White_Space that starts at `start` (HF: ^\s* on s[start..]). */
static size_t white_run_after(const char *s, size_t len, size_t start) {
  size_t i = start;
  while (i < len) {
    uint32_t cp;
    size_t n = sf_utf8_next(s + i, len - i, &cp);
    if (!sf_is_white_space(cp)) break;
    i += n;
  }
  return i;
}

sf_status sf_added_split(const sf_tokenizer *tok, const sf_added_set *set, const char *s, size_t len,
                         sf_piece_fn fn, void *ctx, sf_error *err) {
  size_t start_offset = 0, search = 0, start, stop;
  int32_t which;
  while (search < len && find_match(tok, set, s, len, search, &start, &stop, &which)) {
    /* Aho-Corasick resumes after the match itself, not after what rstrip
     * took; HF has the same quirk, so it is kept. */
    search = stop;
    const sf_added_token *t = &tok->added[which];
    if (t->lstrip) {
      size_t newstart = white_run_before(s, start);
      start = newstart > start_offset ? newstart : start_offset;
    }
    if (t->rstrip) stop = white_run_after(s, len, stop);
    if (start_offset < start) SF_TRY(fn(ctx, s + start_offset, start - start_offset, -1, err));
    SF_TRY(fn(ctx, s + start, stop - start, t->id, err));
    start_offset = stop;
  }
  if (start_offset < len) SF_TRY(fn(ctx, s + start_offset, len - start_offset, -1, err));
  return SF_OK;
}
