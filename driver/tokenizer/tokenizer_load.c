/* Loading a Hugging Face tokenizer.json (format "1.0") for a byte-level BPE.
 *
 * Only what this tokenizer family uses is accepted, and everything else is
 * an error that names the file and the field: a component we did not
 * implement must never be silently ignored, or ids would differ from HF's.
 * Accepted: normalizer NFC or null; pre_tokenizer ByteLevel without
 * add_prefix_space; decoder ByteLevel; post_processor ByteLevel or null;
 * model BPE without dropout or subword affixes; added tokens without
 * single_word; no truncation or padding. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scanflash/files.h"
#include "tokenizer/tok_internal.h"

typedef struct loader {
  sf_tokenizer *tok;
  const char *path;
  sf_error *err;
  const char **model_text; /* id -> model token text (points into the cJSON tree) */
  int32_t model_max_id;
} loader;

static const cJSON *field(const cJSON *obj, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static int absent_or_null(const cJSON *x) { return !x || cJSON_IsNull(x); }

/* A JSON number that is an integer in [0, INT32_MAX]. */
static int as_id(const cJSON *x, int32_t *out) {
  if (!cJSON_IsNumber(x)) return 0;
  double d = x->valuedouble;
  if (!(d >= 0 && d <= INT32_MAX) || d != floor(d)) return 0;
  *out = (int32_t)d;
  return 1;
}

static sf_status opt_bool(loader *L, const cJSON *obj, const char *key, int dflt, const char *where,
                          int *out) {
  const cJSON *x = field(obj, key);
  if (absent_or_null(x)) {
    *out = dflt;
    return SF_OK;
  }
  if (!cJSON_IsBool(x))
    return sf_fail(L->err, SF_ERR_FORMAT, "%s: %s.%s must be true or false", L->path, where, key);
  *out = cJSON_IsTrue(x);
  return SF_OK;
}

/* The "type" string of a component object, or an error. */
static sf_status type_of(loader *L, const cJSON *obj, const char *where, const char **type) {
  const cJSON *t = cJSON_IsObject(obj) ? field(obj, "type") : NULL;
  if (!cJSON_IsString(t))
    return sf_fail(L->err, SF_ERR_FORMAT, "%s: %s must be an object with a string \"type\"", L->path,
                   where);
  *type = t->valuestring;
  return SF_OK;
}

static sf_status check_pipeline(loader *L, const cJSON *root) {
  const char *type = NULL;
  const cJSON *v = field(root, "version");
  if (v && (!cJSON_IsString(v) || strcmp(v->valuestring, "1.0")))
    return sf_fail(L->err, SF_ERR_UNSUPPORTED, "%s: unknown tokenizer.json version (want \"1.0\")", L->path);
  if (!absent_or_null(field(root, "truncation")) || !absent_or_null(field(root, "padding")))
    return sf_fail(L->err, SF_ERR_UNSUPPORTED,
                   "%s: truncation/padding settings are not supported (want null)", L->path);

  const cJSON *norm = field(root, "normalizer");
  L->tok->nfc = 0;
  if (!absent_or_null(norm)) {
    SF_TRY(type_of(L, norm, "normalizer", &type));
    if (strcmp(type, "NFC"))
      return sf_fail(L->err, SF_ERR_UNSUPPORTED, "%s: normalizer type '%s' is not supported (only NFC)",
                     L->path, type);
    L->tok->nfc = 1;
  }

  const cJSON *pre = field(root, "pre_tokenizer");
  if (absent_or_null(pre))
    return sf_fail(L->err, SF_ERR_UNSUPPORTED, "%s: pre_tokenizer is null (only ByteLevel is supported)",
                   L->path);
  SF_TRY(type_of(L, pre, "pre_tokenizer", &type));
  if (strcmp(type, "ByteLevel"))
    return sf_fail(L->err, SF_ERR_UNSUPPORTED,
                   "%s: pre_tokenizer type '%s' is not supported (only ByteLevel)", L->path, type);
  int prefix = 0;
  SF_TRY(opt_bool(L, pre, "add_prefix_space", 0, "pre_tokenizer", &prefix));
  if (prefix)
    return sf_fail(L->err, SF_ERR_UNSUPPORTED, "%s: pre_tokenizer.add_prefix_space=true is not supported",
                   L->path);
  SF_TRY(opt_bool(L, pre, "use_regex", 1, "pre_tokenizer", &L->tok->use_regex));

  const cJSON *post = field(root, "post_processor");
  if (!absent_or_null(post)) {
    SF_TRY(type_of(L, post, "post_processor", &type));
    if (strcmp(type, "ByteLevel")) /* others add tokens (BOS, SEP, ...) */
      return sf_fail(L->err, SF_ERR_UNSUPPORTED,
                     "%s: post_processor type '%s' is not supported (only ByteLevel or null)", L->path, type);
  }

  const cJSON *dec = field(root, "decoder");
  if (absent_or_null(dec))
    return sf_fail(L->err, SF_ERR_UNSUPPORTED, "%s: decoder is null (only ByteLevel is supported)", L->path);
  SF_TRY(type_of(L, dec, "decoder", &type));
  if (strcmp(type, "ByteLevel"))
    return sf_fail(L->err, SF_ERR_UNSUPPORTED, "%s: decoder type '%s' is not supported (only ByteLevel)",
                   L->path, type);
  return SF_OK;
}

static sf_status load_vocab(loader *L, const cJSON *model) {
  sf_tokenizer *tok = L->tok;
  const cJSON *vocab = field(model, "vocab");
  if (!cJSON_IsObject(vocab))
    return sf_fail(L->err, SF_ERR_FORMAT, "%s: model.vocab must be an object of token -> id", L->path);
  int32_t n = 0, max_id = -1;
  for (const cJSON *e = vocab->child; e; e = e->next) {
    int32_t id;
    if (!as_id(e, &id))
      return sf_fail(L->err, SF_ERR_FORMAT, "%s: model.vocab[\"%.40s\"] is not a non-negative integer id",
                     L->path, e->string);
    if (id > max_id) max_id = id;
    n++;
  }
  if (n == 0) return sf_fail(L->err, SF_ERR_FORMAT, "%s: model.vocab is empty", L->path);
  L->model_text = calloc((size_t)max_id + 1, sizeof *L->model_text);
  if (!L->model_text) return sf_fail(L->err, SF_ERR_NOMEM, "%s: out of memory for the vocabulary", L->path);
  L->model_max_id = max_id;
  SF_TRY(sf_strmap_init(&tok->vocab, (size_t)n, L->err));
  for (const cJSON *e = vocab->child; e; e = e->next) {
    int32_t id = 0;
    as_id(e, &id); /* checked in the first pass */
    int existed;
    SF_TRY(sf_strmap_put(&tok->vocab, e->string, strlen(e->string), id, &existed, L->err));
    if (existed)
      return sf_fail(L->err, SF_ERR_FORMAT, "%s: model.vocab has token \"%.40s\" twice", L->path, e->string);
    if (L->model_text[id])
      return sf_fail(L->err, SF_ERR_FORMAT, "%s: model.vocab gives id %d to both \"%.40s\" and \"%.40s\"",
                     L->path, (int)id, L->model_text[id], e->string);
    L->model_text[id] = e->string;
  }
  tok->model_vocab_n = n;

  /* Every byte that valid UTF-8 can contain must have its one-symbol token,
   * or BPE could not start. (0xc0, 0xc1 and 0xf5..0xff never occur in valid
   * UTF-8, and GPT-NeoX's vocabulary indeed lacks them; encode validates its
   * input first, so they never reach BPE.) */
  for (int b = 0; b < 256; b++) {
    char u[4];
    size_t ul = sf_utf8_encode(sf_bytelevel_char((uint8_t)b), u);
    tok->byte_id[b] = -1;
    int never_in_utf8 = b == 0xc0 || b == 0xc1 || b >= 0xf5;
    if (!sf_strmap_get(&tok->vocab, u, ul, &tok->byte_id[b]) && !never_in_utf8)
      return sf_fail(L->err, SF_ERR_FORMAT,
                     "%s: model.vocab lacks the byte-level symbol for byte 0x%02x (not a byte-level BPE?)",
                     L->path, b);
  }
  return SF_OK;
}

static sf_status merge_id(loader *L, int i, const char *text, size_t len, int32_t *id) {
  if (!sf_strmap_get(&L->tok->vocab, text, len, id))
    return sf_fail(L->err, SF_ERR_FORMAT, "%s: model.merges[%d]: token \"%.*s\" is not in model.vocab",
                   L->path, i, (int)(len > 40 ? 40 : len), text);
  return SF_OK;
}

static sf_status load_merges(loader *L, const cJSON *model) {
  const cJSON *merges = field(model, "merges");
  if (!cJSON_IsArray(merges))
    return sf_fail(L->err, SF_ERR_FORMAT, "%s: model.merges must be an array", L->path);
  int count = cJSON_GetArraySize(merges);
  SF_TRY(sf_pairmap_init(&L->tok->merges, (size_t)count, L->err));
  char *joined = NULL;
  size_t joined_cap = 0;
  int rank = 0;
  sf_status rc = SF_OK;
  for (const cJSON *m = merges->child; m && rc == SF_OK; m = m->next, rank++) {
    const char *a, *b;
    size_t alen, blen;
    if (cJSON_IsString(m)) { /* legacy "a b" */
      const char *sp = strchr(m->valuestring, ' ');
      if (!sp || sp == m->valuestring || !sp[1] || strchr(sp + 1, ' ')) {
        rc = sf_fail(L->err, SF_ERR_FORMAT, "%s: model.merges[%d]: \"%.40s\" is not two tokens separated by a space",
                     L->path, rank, m->valuestring);
        break;
      }
      a = m->valuestring, alen = (size_t)(sp - a), b = sp + 1, blen = strlen(b);
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
               cJSON_IsString(m->child->next)) { /* newer ["a", "b"] */
      a = m->child->valuestring, alen = strlen(a), b = m->child->next->valuestring, blen = strlen(b);
    } else {
      rc = sf_fail(L->err, SF_ERR_FORMAT, "%s: model.merges[%d] must be a string \"a b\" or a pair [\"a\", \"b\"]",
                   L->path, rank);
      break;
    }
    int32_t ia, ib, im;
    if ((rc = merge_id(L, rank, a, alen, &ia)) != SF_OK || (rc = merge_id(L, rank, b, blen, &ib)) != SF_OK)
      break;
    if (alen + blen > joined_cap) {
      joined_cap = 2 * (alen + blen);
      char *nj = realloc(joined, joined_cap);
      if (!nj) {
        rc = sf_fail(L->err, SF_ERR_NOMEM, "%s: out of memory", L->path);
        break;
      }
      joined = nj;
    }
    memcpy(joined, a, alen);
    memcpy(joined + alen, b, blen);
    if ((rc = merge_id(L, rank, joined, alen + blen, &im)) != SF_OK) break;
    rc = sf_pairmap_put(&L->tok->merges, ia, ib, (uint32_t)rank, im, L->err);
  }
  free(joined);
  return rc;
}

static sf_status load_model(loader *L, const cJSON *root) {
  const cJSON *model = field(root, "model");
  if (!cJSON_IsObject(model))
    return sf_fail(L->err, SF_ERR_FORMAT, "%s: missing \"model\" object", L->path);
  const char *type = NULL;
  SF_TRY(type_of(L, model, "model", &type));
  if (strcmp(type, "BPE"))
    return sf_fail(L->err, SF_ERR_UNSUPPORTED, "%s: model type '%s' is not supported (only BPE)", L->path, type);
  const cJSON *dropout = field(model, "dropout");
  if (!absent_or_null(dropout))
    return sf_fail(L->err, SF_ERR_UNSUPPORTED, "%s: model.dropout is not supported (want null)", L->path);
  static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
  for (int i = 0; i < 2; i++) {
    const cJSON *x = field(model, affixes[i]);
    if (!absent_or_null(x) && !(cJSON_IsString(x) && !x->valuestring[0]))
      return sf_fail(L->err, SF_ERR_UNSUPPORTED, "%s: model.%s is not supported (want null)", L->path,
                     affixes[i]);
  }
  const cJSON *unk = field(model, "unk_token");
  if (!absent_or_null(unk) && !cJSON_IsString(unk))
    return sf_fail(L->err, SF_ERR_FORMAT, "%s: model.unk_token must be a string or null", L->path);
  /* unk_token, fuse_unk and byte_fallback only act on a character missing
   * from the vocabulary, which a byte-level vocabulary (checked complete in
   * load_vocab) never has. */
  SF_TRY(opt_bool(L, model, "ignore_merges", 0, "model", &L->tok->ignore_merges));
  SF_TRY(load_vocab(L, model));
  return load_merges(L, model);
}

/* added_tokens, with the ids HF would give them (AddedVocabulary::add_tokens):
 * a token already in the model vocabulary keeps that id; a new one gets
 * max(vocab size, largest added id + 1). A file that declares other ids
 * would be encoded differently by HF than it says, so it is rejected. */
static sf_status load_added(loader *L, const cJSON *root) {
  sf_tokenizer *tok = L->tok;
  const cJSON *arr = field(root, "added_tokens");
  if (absent_or_null(arr)) return SF_OK;
  if (!cJSON_IsArray(arr)) return sf_fail(L->err, SF_ERR_FORMAT, "%s: added_tokens must be an array", L->path);
  int n = cJSON_GetArraySize(arr);
  tok->added = calloc((size_t)n + 1, sizeof *tok->added);
  if (!tok->added) return sf_fail(L->err, SF_ERR_NOMEM, "%s: out of memory", L->path);
  sf_strmap seen;
  SF_TRY(sf_strmap_init(&seen, (size_t)n, L->err));
  int64_t max_added = -1;
  sf_status rc = SF_OK;
  int i = 0;
  for (const cJSON *e = arr->child; e; e = e->next, i++) {
    sf_added_token *t = &tok->added[tok->n_added];
    const cJSON *content = cJSON_IsObject(e) ? field(e, "content") : NULL;
    int32_t declared;
    if (!cJSON_IsString(content) || !content->valuestring[0] || !as_id(field(e, "id"), &declared)) {
      rc = sf_fail(L->err, SF_ERR_FORMAT, "%s: added_tokens[%d] needs a non-empty \"content\" and an integer \"id\"",
                   L->path, i);
      break;
    }
    char where[64];
    snprintf(where, sizeof where, "added_tokens[%d]", i);
    if ((rc = opt_bool(L, e, "special", 0, where, &t->special)) != SF_OK ||
        (rc = opt_bool(L, e, "normalized", !t->special, where, &t->normalized)) != SF_OK ||
        (rc = opt_bool(L, e, "lstrip", 0, where, &t->lstrip)) != SF_OK ||
        (rc = opt_bool(L, e, "rstrip", 0, where, &t->rstrip)) != SF_OK ||
        (rc = opt_bool(L, e, "single_word", 0, where, &t->single_word)) != SF_OK)
      break;
    if (t->single_word) {
      rc = sf_fail(L->err, SF_ERR_UNSUPPORTED, "%s: added_tokens[%d] has single_word=true, which is not supported",
                   L->path, i);
      break;
    }
    size_t clen = strlen(content->valuestring);
    int32_t id, dummy;
    if (sf_strmap_get(&seen, content->valuestring, clen, &dummy)) {
      rc = sf_fail(L->err, SF_ERR_FORMAT, "%s: added_tokens[%d]: content \"%.40s\" appears twice", L->path, i,
                   content->valuestring);
      break;
    }
    if (!sf_strmap_get(&tok->vocab, content->valuestring, clen, &id))
      id = (int32_t)((max_added >= tok->model_vocab_n) ? max_added + 1 : tok->model_vocab_n);
    if (id != declared) {
      rc = sf_fail(L->err, SF_ERR_FORMAT, "%s: added_tokens[%d] (\"%.40s\") declares id %d but would get id %d",
                   L->path, i, content->valuestring, (int)declared, (int)id);
      break;
    }
    if ((rc = sf_strmap_put(&seen, content->valuestring, clen, id, NULL, L->err)) != SF_OK) break;
    if (id > max_added) max_added = id;
    t->id = id;
    t->content_len = clen;
    t->content = malloc(clen + 1);
    if (!t->content) {
      rc = sf_fail(L->err, SF_ERR_NOMEM, "%s: out of memory", L->path);
      break;
    }
    memcpy(t->content, content->valuestring, clen + 1);
    tok->n_added++;
    /* normalized tokens are matched in normalized text, so in normal form */
    const char *pat = t->content;
    size_t plen = clen;
    int owned = 0;
    if (t->normalized && tok->nfc && (rc = sf_nfc(t->content, clen, &pat, &plen, &owned, L->err)) != SF_OK) break;
    t->pattern = malloc(plen + 1);
    if (!t->pattern) {
      if (owned) free((void *)pat);
      rc = sf_fail(L->err, SF_ERR_NOMEM, "%s: out of memory", L->path);
      break;
    }
    memcpy(t->pattern, pat, plen);
    t->pattern[plen] = '\0';
    t->pattern_len = plen;
    if (owned) free((void *)pat);
  }
  sf_strmap_free(&seen);
  return rc;
}

/* Bytes of a token for decode: HF's ByteLevel decoder maps each character
 * back to its byte; a token with any character outside the byte alphabet
 * (an added token such as a run of spaces) contributes its UTF-8 as is. */
static sf_status build_decode_table(loader *L) {
  sf_tokenizer *tok = L->tok;
  int32_t max_id = L->model_max_id;
  for (int32_t i = 0; i < tok->n_added; i++)
    if (tok->added[i].id > max_id) max_id = tok->added[i].id;
  tok->n_ids = max_id + 1;
  const char **text = calloc((size_t)tok->n_ids, sizeof *text);
  tok->dec_off = malloc((size_t)tok->n_ids * sizeof *tok->dec_off);
  tok->dec_len = calloc((size_t)tok->n_ids, sizeof *tok->dec_len);
  size_t total = 0;
  if (!text || !tok->dec_off || !tok->dec_len) {
    free(text);
    return sf_fail(L->err, SF_ERR_NOMEM, "%s: out of memory for the decode table", L->path);
  }
  for (int32_t id = 0; id <= L->model_max_id; id++) text[id] = L->model_text[id];
  for (int32_t i = 0; i < tok->n_added; i++) text[tok->added[i].id] = tok->added[i].content; /* added first, as HF */
  for (int32_t id = 0; id < tok->n_ids; id++)
    if (text[id]) total += strlen(text[id]);
  tok->dec_bytes = malloc(total + 1);
  if (!tok->dec_bytes) {
    free(text);
    return sf_fail(L->err, SF_ERR_NOMEM, "%s: out of memory for the decode table", L->path);
  }
  size_t o = 0;
  for (int32_t id = 0; id < tok->n_ids; id++) {
    tok->dec_off[id] = -1;
    if (!text[id]) continue;
    const char *s = text[id];
    size_t len = strlen(s), start = o;
    int all_mapped = 1;
    for (size_t k = 0; k < len;) {
      uint32_t cp;
      k += sf_utf8_next(s + k, len - k, &cp);
      int b = sf_bytelevel_byte(cp);
      if (b < 0) {
        all_mapped = 0;
        break;
      }
      tok->dec_bytes[o++] = (char)b;
    }
    if (!all_mapped) {
      o = start;
      memcpy(tok->dec_bytes + o, s, len);
      o += len;
    }
    tok->dec_off[id] = (int64_t)start;
    tok->dec_len[id] = (uint32_t)(o - start);
  }
  free(text);
  return SF_OK;
}

sf_status sf_tokenizer_load(const char *path, sf_tokenizer **out, sf_error *err) {
  *out = NULL;
  if (!path) return sf_fail(err, SF_ERR_ARG, "tokenizer: no path given");
  char *data;
  size_t size;
  SF_TRY(sf_read_file(path, &data, &size, err));
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(data, size, &end, 0);
  if (!root) {
    size_t at = end && end >= data ? (size_t)(end - data) : 0;
    free(data);
    return sf_fail(err, SF_ERR_FORMAT, "%s: not valid JSON (parse error at byte %zu)", path, at);
  }
  free(data);

  sf_tokenizer *tok = calloc(1, sizeof *tok);
  if (!tok) {
    cJSON_Delete(root);
    return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", path);
  }
  tok->eos_id = -1;
  loader L = {.tok = tok, .path = path, .err = err};
  sf_status rc = SF_OK;
  tok->path = strdup(path);
  if (!tok->path) rc = sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", path);
  if (rc == SF_OK && !cJSON_IsObject(root))
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: the top level is not a JSON object", path);
  if (rc == SF_OK) rc = check_pipeline(&L, root);
  if (rc == SF_OK) rc = load_model(&L, root);
  if (rc == SF_OK) rc = load_added(&L, root);
  if (rc == SF_OK) rc = build_decode_table(&L);
  if (rc == SF_OK) rc = sf_added_set_build(tok, &tok->raw_set, 0, err);
  if (rc == SF_OK) rc = sf_added_set_build(tok, &tok->norm_set, 1, err);
  if (rc == SF_OK) rc = sf_pretok_init(tok, err);
  if (rc == SF_OK) rc = sf_bpe_init(tok, err);
  if (rc == SF_OK) {
    /* HF token_to_id: the added vocabulary first, then the model's */
    static const char eos[] = "<|endoftext|>";
    for (int32_t i = 0; i < tok->n_added && tok->eos_id < 0; i++)
      if (!strcmp(tok->added[i].content, eos)) tok->eos_id = tok->added[i].id;
    if (tok->eos_id < 0 && !sf_strmap_get(&tok->vocab, eos, sizeof eos - 1, &tok->eos_id)) tok->eos_id = -1;
  }
  free(L.model_text);
  cJSON_Delete(root);
  if (rc != SF_OK) {
    sf_tokenizer_free(tok);
    return rc;
  }
  *out = tok;
  return SF_OK;
}

void sf_tokenizer_free(sf_tokenizer *tok) {
  if (!tok) return;
  free(tok->path);
  sf_strmap_free(&tok->vocab);
  sf_pairmap_free(&tok->merges);
  free(tok->dec_off);
  free(tok->dec_len);
  free(tok->dec_bytes);
  for (int32_t i = 0; i < tok->n_added; i++) {
    free(tok->added[i].content);
    free(tok->added[i].pattern);
  }
  free(tok->added);
  sf_added_set_free(&tok->raw_set);
  sf_added_set_free(&tok->norm_set);
  sf_pretok_free(tok);
  sf_bpe_free(tok);
  free(tok);
}

int32_t sf_tokenizer_vocab_size(const sf_tokenizer *tok) { return tok->n_ids; }

int32_t sf_tokenizer_eos_id(const sf_tokenizer *tok) { return tok->eos_id; }
