/* HumanEval+ loader: the real v0.1.10 file (.jsonl.gz and the same content as
 * plain .jsonl), lookup by id, and malformed files written to a temp dir,
 * each rejected with a one-line message naming the file and line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/humaneval.h"
#include "scanflash/files.h"
#include "test.h"

static char tmpdir[] = "/tmp/sf_test_humaneval_XXXXXX";

static char *tmp_path(const char *name) {
  static char buf[8][512];
  static int next = 0;
  char *p = buf[next++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
  return p;
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  REQUIRE(f);
  REQUIRE(fwrite(data, 1, n, f) == n);
  REQUIRE(fclose(f) == 0);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

/* A valid record; `extra` goes after the fields (starting with ", "). */
static void record(char *buf, size_t len, int id) {
  snprintf(buf, len,
           "{\"task_id\": \"HumanEval/%d\", \"prompt\": \"def f%d():\\n\", \"entry_point\": \"f%d\", "
           "\"canonical_solution\": \"    return %d\\n\", \"test\": \"assert f%d() == %d\", "
           "\"contract\": \"\", \"base_input\": [[1]], \"atol\": 0, \"plus_input\": []}",
           id, id, id, id, id, id);
}

/* Loading `text` from file `name` must fail with exactly `want` (where
 * "%s" stands for the path); the set is left empty. */
static void expect_reject(const char *name, const char *text, const char *want_fmt) {
  const char *path = tmp_path(name);
  write_text(path, text);
  sf_problem_set set = {(sf_problem *)1, 99};
  sf_error err;
  sf_error_clear(&err);
  sf_status rc = sf_humaneval_load(path, &set, &err);
  char want[1024];
  snprintf(want, sizeof want, want_fmt, path);
  CHECK_MSG(rc != SF_OK, "%s loaded", name);
  CHECK_STR_EQ(err.msg, want);
  CHECK(strchr(err.msg, '\n') == NULL);
  CHECK(set.items == NULL && set.n == 0);
  sf_problem_set_free(&set);
}

static void test_real(const char *path) {
  sf_problem_set set;
  sf_error err;
  sf_status rc = sf_humaneval_load(path, &set, &err);
  CHECK_MSG(rc == SF_OK, "%s", err.msg);
  if (rc != SF_OK) return;
  CHECK_EQ_I64(set.n, 164);
  for (int32_t i = 0; i < set.n; i++) {
    char want[32];
    snprintf(want, sizeof want, "HumanEval/%d", (int)i);
    CHECK_STR_EQ(set.items[i].task_id, want);
    CHECK(set.items[i].prompt && set.items[i].prompt[0]);
    CHECK(set.items[i].canonical_solution && set.items[i].canonical_solution[0]);
    CHECK(set.items[i].entry_point && set.items[i].entry_point[0]);
    CHECK(set.items[i].test && strstr(set.items[i].test, "def check"));
  }
  CHECK_EQ_I64(sf_problem_set_find(&set, "7"), 7);
  CHECK_EQ_I64(sf_problem_set_find(&set, "HumanEval/7"), 7);
  CHECK_EQ_I64(sf_problem_set_find(&set, "0"), 0);
  CHECK_EQ_I64(sf_problem_set_find(&set, "163"), 163);
  CHECK_EQ_I64(sf_problem_set_find(&set, "164"), -1);
  CHECK_EQ_I64(sf_problem_set_find(&set, "HumanEval/164"), -1);
  CHECK_EQ_I64(sf_problem_set_find(&set, "07"), -1);
  CHECK_EQ_I64(sf_problem_set_find(&set, "-7"), -1);
  CHECK_EQ_I64(sf_problem_set_find(&set, ""), -1);
  CHECK_EQ_I64(sf_problem_set_find(&set, "humaneval/7"), -1);
  CHECK_STR_EQ(set.items[7].entry_point, "filter_by_substring");
  CHECK(strncmp(set.items[0].prompt, "from typing import List", 23) == 0);

  /* The same content as plain .jsonl loads to the same problems. */
  char *raw;
  size_t n;
  REQUIRE(sf_read_gzip_file(path, &raw, &n, &err) == SF_OK);
  const char *plain = tmp_path("HumanEvalPlus.jsonl");
  write_bytes(plain, raw, n);
  sf_problem_set set2;
  rc = sf_humaneval_load(plain, &set2, &err);
  CHECK_MSG(rc == SF_OK, "%s", err.msg);
  if (rc == SF_OK) {
    CHECK_EQ_I64(set2.n, set.n);
    for (int32_t i = 0; i < set.n && i < set2.n; i++) {
      CHECK(!strcmp(set.items[i].task_id, set2.items[i].task_id));
      CHECK(!strcmp(set.items[i].prompt, set2.items[i].prompt));
      CHECK(!strcmp(set.items[i].canonical_solution, set2.items[i].canonical_solution));
      CHECK(!strcmp(set.items[i].entry_point, set2.items[i].entry_point));
      CHECK(!strcmp(set.items[i].test, set2.items[i].test));
    }
    sf_problem_set_free(&set2);
  }

  /* A truncated .gz is rejected, not half-loaded. */
  const char *trunc = tmp_path("truncated.jsonl.gz");
  char *gz;
  size_t gz_n;
  REQUIRE(sf_read_file(path, &gz, &gz_n, &err) == SF_OK);
  write_bytes(trunc, gz, gz_n / 2);
  set2.items = NULL;
  set2.n = 0;
  rc = sf_humaneval_load(trunc, &set2, &err);
  CHECK(rc != SF_OK);
  CHECK_MSG(strncmp(err.msg, trunc, strlen(trunc)) == 0 && strstr(err.msg, "gzip"), "%s", err.msg);
  CHECK(strchr(err.msg, '\n') == NULL);
  CHECK(set2.items == NULL && set2.n == 0);
  free(gz);
  free(raw);
  remove(plain);
  remove(trunc);
  sf_problem_set_free(&set);
  CHECK(set.items == NULL && set.n == 0);
}

static void test_small_files(void) {
  char r0[512], r1[512], r2[512], r3[512];
  record(r0, sizeof r0, 0);
  record(r1, sizeof r1, 1);
  record(r2, sizeof r2, 2);
  record(r3, sizeof r3, 3);
  char text[4096];

  /* Blank lines, CRLF, no trailing newline: all fine. */
  snprintf(text, sizeof text, "%s\r\n\n  \n%s\r\n%s", r0, r1, r2);
  char ok[512]; /* tmp_path's buffers rotate: keep a copy */
  snprintf(ok, sizeof ok, "%s", tmp_path("ok.jsonl"));
  write_text(ok, text);
  sf_problem_set set;
  sf_error err;
  sf_status rc = sf_humaneval_load(ok, &set, &err);
  CHECK_MSG(rc == SF_OK, "%s", err.msg);
  if (rc == SF_OK) {
    CHECK_EQ_I64(set.n, 3);
    CHECK_STR_EQ(set.items[2].task_id, "HumanEval/2");
    CHECK_STR_EQ(set.items[1].prompt, "def f1():\n");
    CHECK_STR_EQ(set.items[1].canonical_solution, "    return 1\n");
    CHECK_STR_EQ(set.items[1].test, "assert f1() == 1");
    CHECK_EQ_I64(sf_problem_set_find(&set, "2"), 2);
    CHECK_EQ_I64(sf_problem_set_find(&set, "3"), -1);
    sf_problem_set_free(&set);
  }

  snprintf(text, sizeof text, "%s\n%s\n{\"task_id\": \"HumanEval/2\", \"prompt\": \n%s\n", r0, r1, r3);
  expect_reject("bad_json.jsonl", text, "%s:3: malformed JSON");

  snprintf(text, sizeof text, "%s\n%s x\n", r0, r1);
  expect_reject("trailing.jsonl", text, "%s:2: malformed JSON");

  snprintf(text, sizeof text, "%s\n[1, 2]\n", r0);
  expect_reject("array.jsonl", text, "%s:2: expected a JSON object");

  snprintf(text, sizeof text,
           "%s\n{\"task_id\": \"HumanEval/1\", \"entry_point\": \"f\", \"canonical_solution\": \"x\", "
           "\"test\": \"t\"}\n",
           r0);
  expect_reject("missing.jsonl", text, "%s:2: missing field 'prompt'");

  snprintf(text, sizeof text,
           "\n{\"task_id\": \"HumanEval/0\", \"prompt\": \"p\", \"entry_point\": \"f\", \"test\": \"t\"}\n");
  expect_reject("missing_sol.jsonl", text, "%s:2: missing field 'canonical_solution'");

  snprintf(text, sizeof text,
           "{\"task_id\": \"HumanEval/0\", \"prompt\": 42, \"entry_point\": \"f\", "
           "\"canonical_solution\": \"x\", \"test\": \"t\"}\n");
  expect_reject("mistyped.jsonl", text, "%s:1: field 'prompt' is not a string");

  snprintf(text, sizeof text,
           "%s\n{\"task_id\": null, \"prompt\": \"p\", \"entry_point\": \"f\", "
           "\"canonical_solution\": \"x\", \"test\": \"t\"}\n",
           r0);
  expect_reject("null_id.jsonl", text, "%s:2: field 'task_id' is not a string");

  snprintf(text, sizeof text,
           "{\"task_id\": \"HumanEval/0\", \"prompt\": \"\", \"entry_point\": \"f\", "
           "\"canonical_solution\": \"x\", \"test\": \"t\"}\n");
  expect_reject("empty_prompt.jsonl", text, "%s:1: field 'prompt' is empty");

  /* HumanEval/3 first on line 4 (line 2 is blank), again on line 6. */
  snprintf(text, sizeof text, "%s\n\n%s\n%s\n%s\n%s\n", r0, r1, r3, r2, r3);
  expect_reject("dup.jsonl", text, "%s:6: duplicate task_id 'HumanEval/3' (first on line 4)");

  expect_reject("empty.jsonl", "", "%s: empty file (no problems)");
  expect_reject("blank.jsonl", "\n \n\t\n", "%s: empty file (no problems)");
  expect_reject("plain.jsonl.gz", "this is not gzip\n", "%s: not a gzip file (bad magic bytes)");

  /* A NUL byte inside a line. */
  const char *nul = tmp_path("nul.jsonl");
  char with_nul[600];
  size_t n0 = strlen(r0);
  memcpy(with_nul, r0, n0);
  with_nul[n0] = '\0';
  memcpy(with_nul + n0 + 1, "xx\n", 3);
  write_bytes(nul, with_nul, n0 + 4);
  sf_problem_set s2 = {0};
  rc = sf_humaneval_load(nul, &s2, &err);
  CHECK(rc != SF_OK);
  char want[600];
  snprintf(want, sizeof want, "%s:1: NUL byte in line", nul);
  CHECK_STR_EQ(err.msg, want);
  remove(nul);

  const char *missing = tmp_path("does-not-exist.jsonl");
  rc = sf_humaneval_load(missing, &s2, &err);
  CHECK(rc == SF_ERR_IO);
  CHECK_MSG(strncmp(err.msg, missing, strlen(missing)) == 0, "%s", err.msg);
  CHECK(s2.items == NULL && s2.n == 0);
  remove(ok);
}

static void cleanup(void) {
  const char *names[] = {"bad_json.jsonl", "trailing.jsonl", "array.jsonl", "missing.jsonl",
                         "missing_sol.jsonl", "mistyped.jsonl", "null_id.jsonl", "empty_prompt.jsonl",
                         "dup.jsonl", "empty.jsonl", "blank.jsonl", "plain.jsonl.gz", "ok.jsonl"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) remove(tmp_path(names[i]));
  CHECK_MSG(rmdir(tmpdir) == 0, "temp dir %s left non-empty", tmpdir);
}

int main(void) {
  REQUIRE(mkdtemp(tmpdir));
  test_small_files();
  const char *data = getenv("SF_TEST_DATA");
  int have_data = data && *data && sf_file_exists(data);
  if (have_data) test_real(data);
  cleanup();
  if (!have_data && !sf_test_failures)
    SF_TEST_SKIP("SF_TEST_DATA is not set or missing (malformed-file checks passed)");
  return sf_test_finish("test_humaneval");
}
