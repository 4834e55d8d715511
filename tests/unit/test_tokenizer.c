/* The GPT-NeoX-20B tokenizer against vectors from the Hugging Face
 * `tokenizers` library (0.23.3, Tokenizer.from_file on the same file):
 * known ids, the dataset's token totals, round trips, lossy decode, and the
 * errors (invalid UTF-8, unknown ids, malformed tokenizer files). The full
 * comparison (every prompt and prompt+solution, ~900 edge and random cases)
 * was done outside the repo against the library itself. */
#include <cJSON.h>
#include <unistd.h>
#include <utf8proc.h>

#include "data/humaneval.h"
#include "scanflash/files.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Encodes s and compares with want (n ids); prints both on a mismatch. */
static void check_ids(sf_tokenizer *tok, const char *s, size_t len, const int32_t *want, int64_t n) {
  sf_tokens t = {0};
  sf_error err;
  sf_status rc = sf_tokenizer_encode(tok, s, len, &t, &err);
  CHECK_MSG(rc == SF_OK, "encode failed: %s", err.msg);
  int same = rc == SF_OK && t.n == n && (n == 0 || !memcmp(t.ids, want, (size_t)n * sizeof *want));
  if (!same) {
    fprintf(stderr, "ids differ for \"%.*s\"\n  got :", (int)len, s);
    for (int64_t i = 0; i < t.n; i++) fprintf(stderr, " %d", (int)t.ids[i]);
    fprintf(stderr, "\n  want:");
    for (int64_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)want[i]);
    fputc('\n', stderr);
  }
  CHECK(same);
  sf_tokens_free(&t);
}
#define CHECK_IDS(tok, lit, ...)                                                  \
  do {                                                                            \
    static const int32_t want_[] = {__VA_ARGS__};                                 \
    check_ids(tok, lit, sizeof lit - 1, want_, sizeof want_ / sizeof want_[0]);   \
  } while (0)

/* decode(encode(s)) == NFC(s), byte for byte. */
static void check_round_trip(sf_tokenizer *tok, const char *s, size_t len, const char *label) {
  sf_tokens t = {0};
  sf_error err;
  char *text = NULL;
  size_t text_len = 0;
  utf8proc_uint8_t *nfc = NULL;
  utf8proc_ssize_t nfc_len =
      utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  CHECK_MSG(nfc_len >= 0, "%s: utf8proc_map failed", label);
  CHECK_MSG(sf_tokenizer_encode(tok, s, len, &t, &err) == SF_OK, "%s: encode: %s", label, err.msg);
  CHECK_MSG(sf_tokenizer_decode(tok, t.ids, t.n, &text, &text_len, &err) == SF_OK, "%s: decode: %s", label,
            err.msg);
  CHECK_MSG(nfc_len >= 0 && text && (size_t)nfc_len == text_len && !memcmp(text, nfc, text_len),
            "%s: decode(encode(x)) != NFC(x)", label);
  free(nfc);
  free(text);
  sf_tokens_free(&t);
}

static void check_decode(sf_tokenizer *tok, const int32_t *ids, int64_t n, const char *want) {
  char *text = NULL;
  size_t len = 0;
  sf_error err;
  CHECK_MSG(sf_tokenizer_decode(tok, ids, n, &text, &len, &err) == SF_OK, "decode: %s", err.msg);
  CHECK_MSG(text && len == strlen(want) && !strcmp(text, want), "decoded '%s', want '%s'", text ? text : "(null)",
            want);
  free(text);
}

static void test_vectors(sf_tokenizer *tok) {
  CHECK_EQ_I64(sf_tokenizer_vocab_size(tok), 50277);
  CHECK_EQ_I64(sf_tokenizer_eos_id(tok), 0);
  CHECK_IDS(tok, "\nThe following is a", 187, 510, 1563, 310, 247);
  /* 30 spaces: the 24-space added token, then the 6-space one */
  CHECK_IDS(tok, "                              x", 50254, 50272, 89);
  /* 25 trailing spaces: 24 as an added token, the last one through BPE */
  CHECK_IDS(tok, "x                         ", 89, 50254, 209);
  CHECK_IDS(tok, "e\xcc\x81", 860);   /* e + U+0301 -> NFC é */
  CHECK_IDS(tok, "\xe2\x84\xab", 18221); /* U+212B ANGSTROM SIGN -> NFC Å */
  CHECK_IDS(tok, "it's It'S they'll", 262, 434, 733, 8, 52, 597, 1833);
  CHECK_IDS(tok, "foo<|endoftext|>bar", 12110, 0, 2009);
  CHECK_IDS(tok, " <|endoftext|> ", 209, 0, 209);
  CHECK_IDS(tok, "a\xc2\xa0" "b\xe3\x80\x80" "c", 66, 575, 67, 19409, 68); /* U+00A0, U+3000 */
  CHECK_IDS(tok, "def f():\n    return 1\r\n", 1545, 269, 14850, 187, 50274, 2309, 337, 2379);
  CHECK_IDS(tok, "\0a\0", 177, 66, 177);
  CHECK_IDS(tok, "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", 49868, 49042, 211);
  check_ids(tok, "", 0, NULL, 0);

  /* lossy decode: a token that ends inside a character shows U+FFFD */
  check_decode(tok, (const int32_t[]){49042}, 1, " \xef\xbf\xbd");
  check_decode(tok, (const int32_t[]){49042, 211}, 2, " \xf0\x9f\x98\x80");
  check_decode(tok, (const int32_t[]){0, 211, 1}, 3, "<|endoftext|>\xef\xbf\xbd<|padding|>");
  check_decode(tok, (const int32_t[]){50273}, 1, "     ");
  check_decode(tok, NULL, 0, "");
}

static void test_edge_round_trips(sf_tokenizer *tok) {
  static const char *const cases[] = {
      "hello world", "  leading", "trailing   ", "\t\tmixed \t \n\n  \r\n", "e\xcc\x81 cafe\xcc\x81",
      "A\xcc\x8a \xe1\xb8\x8b\xcc\xa3", "x\xcc\x81\xcc\x81\xcc\x81", "\xcc\x81start",
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",
      "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7",
      "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7", "don't we've I'm 'S 'LL",
      "0 123 1234567890 3.14", "a\xe1\xa0\x8e" "b \xe1\xa0\x8e ", "\xe2\x80\xa8\xe2\x80\xa9\xc2\x85",
      "class A:\n    def m(self):\n        return 1\n", "\xef\xbb\xbf" "BOM", "\xf4\x8f\xbf\xbf",
      "                                        40 spaces", "                                        ",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char label[32];
    snprintf(label, sizeof label, "edge case %zu", i);
    check_round_trip(tok, cases[i], strlen(cases[i]), label);
  }
  check_round_trip(tok, "a\0b\0", 4, "NUL bytes");
}

/* Totals over HumanEval+ from the HF library: 23,264 prompt tokens and
 * 33,088 prompt + canonical_solution tokens. Also the speed check. */
static void test_dataset(sf_tokenizer *tok) {
  const char *data = getenv("SF_TEST_DATA");
  if (!data || !*data || !sf_file_exists(data)) {
    printf("dataset checks skipped: SF_TEST_DATA not set or missing\n");
    return;
  }
  sf_problem_set set = {0};
  sf_error err;
  REQUIRE(sf_humaneval_load(data, &set, &err) == SF_OK);
  CHECK_EQ_I64(set.n, 164);
  int64_t prompt_total = 0, both_total = 0;
  sf_tokens t = {0};
  double t0 = now_s();
  for (int32_t i = 0; i < set.n; i++) {
    const sf_problem *p = &set.items[i];
    size_t lp = strlen(p->prompt), ls = strlen(p->canonical_solution);
    char *both = malloc(lp + ls + 1);
    REQUIRE(both);
    memcpy(both, p->prompt, lp);
    memcpy(both + lp, p->canonical_solution, ls + 1);
    sf_tokens_clear(&t);
    CHECK(sf_tokenizer_encode(tok, both, lp + ls, &t, &err) == SF_OK);
    both_total += t.n;
    free(both);
  }
  double t1 = now_s();
  for (int32_t i = 0; i < set.n; i++) {
    const sf_problem *p = &set.items[i];
    sf_tokens_clear(&t);
    CHECK(sf_tokenizer_encode(tok, p->prompt, strlen(p->prompt), &t, &err) == SF_OK);
    prompt_total += t.n;
    check_round_trip(tok, p->prompt, strlen(p->prompt), p->task_id);
  }
  printf("encode of all 164 prompt+solution strings: %lld tokens in %.1f ms\n", (long long)both_total,
         1e3 * (t1 - t0));
  CHECK_EQ_I64(prompt_total, 23264);
  CHECK_EQ_I64(both_total, 33088);
  sf_tokens_free(&t);
  sf_problem_set_free(&set);
}

static void test_invalid_utf8(sf_tokenizer *tok) {
  static const struct {
    const char *s;
    size_t len, bad_at;
  } cases[] = {
      {"abc\xff", 4, 3},          {"\x80", 1, 0},                 {"ok \xc0\x80", 5, 3}, /* overlong NUL */
      {"\xed\xa0\x80", 3, 0},     /* surrogate */ {"x\xe6\x97", 3, 1}, /* cut short */
      {"\xf4\x90\x80\x80", 4, 0}, /* above U+10FFFF */ {"a<|endoftext|>\xfe", 15, 14},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sf_tokens t = {0};
    sf_tokens_push(&t, 7, NULL);
    sf_error err;
    sf_error_clear(&err);
    sf_status rc = sf_tokenizer_encode(tok, cases[i].s, cases[i].len, &t, &err);
    char want[64];
    snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", cases[i].bad_at);
    CHECK_MSG(rc == SF_ERR_FORMAT, "case %zu: rc %d", i, (int)rc);
    CHECK_MSG(strstr(err.msg, want) != NULL, "case %zu: message '%s', want '%s'", i, err.msg, want);
    CHECK_EQ_I64(t.n, 1); /* nothing appended */
    sf_tokens_free(&t);
  }
}

static void test_bad_ids(sf_tokenizer *tok) {
  static const int32_t bad[] = {-1, 50277, 99999, INT32_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int32_t ids[3] = {510, bad[i], 1563};
    char *text = (char *)1;
    sf_error err;
    sf_error_clear(&err);
    sf_status rc = sf_tokenizer_decode(tok, ids, 3, &text, NULL, &err);
    CHECK_MSG(rc != SF_OK && text == NULL, "id %d accepted", (int)bad[i]);
    char want[48];
    snprintf(want, sizeof want, "unknown token id %d", (int)bad[i]);
    CHECK_MSG(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
  }
}

/* Malformed tokenizer files: mutations of the real one, each rejected with
 * an error that names the file (and no crash, leak or half-built object). */
typedef void (*mutate_fn)(cJSON *root);
static void m_not_object(cJSON *r) { (void)r; }
static void m_no_model(cJSON *r) { cJSON_DeleteItemFromObject(r, "model"); }
static void m_model_type(cJSON *r) {
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "model"), "type", cJSON_CreateString("WordPiece"));
}
static void m_merges_object(cJSON *r) {
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "model"), "merges", cJSON_CreateObject());
}
static void m_merge_number(cJSON *r) {
  cJSON_ReplaceItemInArray(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "model"), "merges"), 5, cJSON_CreateNumber(3));
}
static void m_merge_unknown(cJSON *r) {
  cJSON_ReplaceItemInArray(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "model"), "merges"), 5,
                           cJSON_CreateString("nosuch token"));
}
static void m_vocab_array(cJSON *r) {
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "model"), "vocab", cJSON_CreateArray());
}
static void m_vocab_id(cJSON *r) {
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "model"), "vocab"), "the",
                            cJSON_CreateString("7"));
}
static void m_normalizer(cJSON *r) {
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "normalizer"), "type", cJSON_CreateString("NFKC"));
}
static void m_prefix_space(cJSON *r) {
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "pre_tokenizer"), "add_prefix_space", cJSON_CreateTrue());
}
static void m_pre_tokenizer(cJSON *r) {
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "pre_tokenizer"), "type", cJSON_CreateString("Whitespace"));
}
static void m_single_word(cJSON *r) {
  cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "added_tokens"), 0), "single_word",
                            cJSON_CreateTrue());
}
static void m_added_id(cJSON *r) {
  cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "added_tokens"), 5), "id",
                            cJSON_CreateNumber(7));
}
static void m_dropout(cJSON *r) {
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "model"), "dropout", cJSON_CreateNumber(0.1));
}

static void expect_load_fails(const char *path, const char *what, const char *want) {
  sf_tokenizer *tok = (sf_tokenizer *)1;
  sf_error err;
  sf_error_clear(&err);
  sf_status rc = sf_tokenizer_load(path, &tok, &err);
  CHECK_MSG(rc != SF_OK && tok == NULL, "%s: loaded", what);
  CHECK_MSG(strstr(err.msg, path) != NULL, "%s: message '%s' does not name the file", what, err.msg);
  CHECK_MSG(!want || strstr(err.msg, want) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, want);
  CHECK_MSG(!strchr(err.msg, '\n'), "%s: message is not one line", what);
  printf("rejected (%s): %s\n", what, err.msg);
}

static void write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  REQUIRE(f);
  REQUIRE(fwrite(data, 1, len, f) == len);
  REQUIRE(fclose(f) == 0);
}

static void test_malformed(const char *good_path) {
  char dir[] = "/tmp/sf_test_tokenizer_XXXXXX";
  REQUIRE(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);

  expect_load_fails("/nonexistent/dir/tokenizer.json", "missing file", "cannot open");
  write_file(path, "{\"model\": ", 10);
  expect_load_fails(path, "truncated JSON", "not valid JSON");
  write_file(path, "not json at all", 15);
  expect_load_fails(path, "not JSON", "not valid JSON");
  write_file(path, "", 0);
  expect_load_fails(path, "empty file", "not valid JSON");

  char *good;
  size_t good_len;
  sf_error err;
  REQUIRE(sf_read_file(good_path, &good, &good_len, &err) == SF_OK);
  static const struct {
    const char *name;
    mutate_fn fn;
    const char *want;
  } muts[] = {
      {"top-level array", m_not_object, "not a JSON object"},
      {"missing model", m_no_model, "missing \"model\""},
      {"unknown model type", m_model_type, "model type 'WordPiece'"},
      {"merges of wrong type", m_merges_object, "model.merges must be an array"},
      {"merge not a string", m_merge_number, "model.merges[5]"},
      {"merge token not in vocab", m_merge_unknown, "not in model.vocab"},
      {"vocab of wrong type", m_vocab_array, "model.vocab must be an object"},
      {"vocab id not a number", m_vocab_id, "model.vocab[\"the\"]"},
      {"normalizer NFKC", m_normalizer, "normalizer type 'NFKC'"},
      {"add_prefix_space", m_prefix_space, "add_prefix_space"},
      {"pre_tokenizer Whitespace", m_pre_tokenizer, "pre_tokenizer type 'Whitespace'"},
      {"single_word", m_single_word, "single_word"},
      {"added token id", m_added_id, "declares id 7"},
      {"dropout", m_dropout, "dropout"},
  };
  for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
    cJSON *root = cJSON_ParseWithLength(good, good_len);
    REQUIRE(root);
    if (muts[i].fn == m_not_object) {
      cJSON *arr = cJSON_CreateArray();
      cJSON_AddItemToArray(arr, root);
      root = arr;
    } else {
      muts[i].fn(root);
    }
    char *text = cJSON_PrintUnformatted(root);
    REQUIRE(text);
    write_file(path, text, strlen(text));
    free(text);
    cJSON_Delete(root);
    expect_load_fails(path, muts[i].name, muts[i].want);
  }
  free(good);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  const char *path = sf_test_env_path("SF_TEST_TOKENIZER");
  if (!sf_file_exists(path)) SF_TEST_SKIP("tokenizer file %s is missing", path);
  sf_tokenizer *tok = NULL;
  sf_error err;
  double t0 = now_s();
  sf_status rc = sf_tokenizer_load(path, &tok, &err);
  double t1 = now_s();
  if (rc != SF_OK) fprintf(stderr, "load: %s\n", err.msg);
  REQUIRE(rc == SF_OK && tok);
  printf("load of %s: %.1f ms\n", path, 1e3 * (t1 - t0));

  test_vectors(tok);
  test_edge_round_trips(tok);
  test_dataset(tok);
  test_invalid_utf8(tok);
  test_bad_ids(tok);
  test_malformed(path);
  sf_tokenizer_free(tok);
  return sf_test_finish("test_tokenizer");
}
