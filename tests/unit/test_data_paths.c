/* Data path resolution: flag > environment > repo data/ > ../shared/data/,
 * checked with temporary files and a temporary repo root; a flag or
 * environment value naming a missing file is an error, not a fall-through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_paths.h"
#include "scanflash/files.h"
#include "test.h"

static char tmpdir[] = "/tmp/sf_test_data_paths_XXXXXX";

static void path_join(char *out, size_t len, const char *a, const char *b) {
  REQUIRE((size_t)snprintf(out, len, "%s/%s", a, b) < len);
}

static void mkdirs(const char *path) {
  char buf[1024];
  REQUIRE(strlen(path) < sizeof buf);
  strcpy(buf, path);
  for (char *s = buf + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    mkdir(buf, 0755);
    *s = '/';
  }
  mkdir(buf, 0755);
}

static void touch(const char *path) {
  char dir[1024];
  strcpy(dir, path);
  *strrchr(dir, '/') = '\0';
  mkdirs(dir);
  FILE *f = fopen(path, "w");
  REQUIRE(f);
  fputs("x\n", f);
  fclose(f);
}

typedef struct kind_case {
  sf_data_kind kind;
  const char *env, *flag, *subpath, *not_found;
} kind_case;

static void check_kind(const kind_case *k) {
  char root[512], repo_file[1024], shared_file[1024], flag_file[1024], env_file[1024], missing[1024];
  char sub[600], out[1024];
  sf_error err;
  path_join(root, sizeof root, tmpdir, "repo");
  mkdirs(root);
  snprintf(sub, sizeof sub, "data/%s", k->subpath);
  path_join(repo_file, sizeof repo_file, root, sub);
  snprintf(sub, sizeof sub, "../shared/data/%s", k->subpath);
  path_join(shared_file, sizeof shared_file, root, sub); /* as the resolver spells it */
  path_join(flag_file, sizeof flag_file, tmpdir, "flag/file");
  path_join(env_file, sizeof env_file, tmpdir, "env/file");
  path_join(missing, sizeof missing, tmpdir, "nowhere/file");
  touch(repo_file);
  touch(shared_file);
  touch(flag_file);
  touch(env_file);
  REQUIRE(setenv(k->env, env_file, 1) == 0);

  /* 1. the flag wins over everything */
  CHECK(sf_data_path_resolve_in(k->kind, flag_file, root, out, sizeof out, &err) == SF_OK);
  CHECK_STR_EQ(out, flag_file);
  /* 2. then the environment */
  CHECK(sf_data_path_resolve_in(k->kind, NULL, root, out, sizeof out, &err) == SF_OK);
  CHECK_STR_EQ(out, env_file);
  /* an empty environment value counts as unset */
  REQUIRE(setenv(k->env, "", 1) == 0);
  CHECK(sf_data_path_resolve_in(k->kind, NULL, root, out, sizeof out, &err) == SF_OK);
  CHECK_STR_EQ(out, repo_file);
  /* 3. then the repo's data/ */
  REQUIRE(unsetenv(k->env) == 0);
  CHECK(sf_data_path_resolve_in(k->kind, NULL, root, out, sizeof out, &err) == SF_OK);
  CHECK_STR_EQ(out, repo_file);
  /* 4. then ../shared/data */
  REQUIRE(remove(repo_file) == 0);
  CHECK(sf_data_path_resolve_in(k->kind, NULL, root, out, sizeof out, &err) == SF_OK);
  CHECK_STR_EQ(out, shared_file);
  CHECK(sf_file_exists(out));
  /* 5. nothing: the message says what to do */
  REQUIRE(remove(shared_file) == 0);
  CHECK(sf_data_path_resolve_in(k->kind, NULL, root, out, sizeof out, &err) == SF_ERR_IO);
  CHECK_STR_EQ(err.msg, k->not_found);

  /* A flag or environment value naming a missing file is an error naming
   * it, even when a later place has the file. */
  touch(repo_file);
  char want[2048];
  CHECK(sf_data_path_resolve_in(k->kind, missing, root, out, sizeof out, &err) == SF_ERR_IO);
  snprintf(want, sizeof want, "%s: %s: no such file", k->flag, missing);
  CHECK_STR_EQ(err.msg, want);
  REQUIRE(setenv(k->env, missing, 1) == 0);
  CHECK(sf_data_path_resolve_in(k->kind, NULL, root, out, sizeof out, &err) == SF_ERR_IO);
  snprintf(want, sizeof want, "%s: %s: no such file", k->env, missing);
  CHECK_STR_EQ(err.msg, want);
  /* ...but a good flag still beats a bad environment value */
  CHECK(sf_data_path_resolve_in(k->kind, flag_file, root, out, sizeof out, &err) == SF_OK);
  CHECK_STR_EQ(out, flag_file);
  REQUIRE(unsetenv(k->env) == 0);

  /* A folder is not a file; an empty flag is an error. */
  CHECK(sf_data_path_resolve_in(k->kind, tmpdir, root, out, sizeof out, &err) == SF_ERR_IO);
  snprintf(want, sizeof want, "%s: %s: not a regular file", k->flag, tmpdir);
  CHECK_STR_EQ(err.msg, want);
  CHECK(sf_data_path_resolve_in(k->kind, "", root, out, sizeof out, &err) != SF_OK);
  CHECK(strstr(err.msg, k->flag) == err.msg);

  /* The output buffer must hold the path. */
  char small[8];
  CHECK(sf_data_path_resolve_in(k->kind, flag_file, root, small, sizeof small, &err) != SF_OK);
  CHECK(strstr(err.msg, "too long") != NULL);

  remove(repo_file);
  remove(flag_file);
  remove(env_file);
}

static void check_build_tree(void) {
  /* The build's own source tree: whatever is found must exist; when nothing
   * is, the message is the "make data" one. */
  const sf_data_kind kinds[2] = {SF_DATA_HUMANEVAL, SF_DATA_TOKENIZER};
  const char *subs[2] = {"humanevalplus/HumanEvalPlus.jsonl.gz", "tokenizer/20B_tokenizer.json"};
  for (int i = 0; i < 2; i++) {
    char out[4096];
    sf_error err;
    if (sf_data_path_resolve(kinds[i], NULL, out, sizeof out, &err) == SF_OK) {
      CHECK(sf_file_exists(out));
      CHECK_MSG(sf_ends_with(out, subs[i]), "%s", out);
      printf("build tree resolves %s\n", out);
    } else {
      CHECK_MSG(strstr(err.msg, "run `make data`") != NULL, "%s", err.msg);
    }
  }
}

int main(void) {
  REQUIRE(mkdtemp(tmpdir));
  const kind_case cases[2] = {
      {SF_DATA_HUMANEVAL, "SCANFLASH_DATA", "--data", "humanevalplus/HumanEvalPlus.jsonl.gz",
       "no HumanEval+ file found: pass --data FILE, set SCANFLASH_DATA, or run `make data`"},
      {SF_DATA_TOKENIZER, "SCANFLASH_TOKENIZER", "--tokenizer", "tokenizer/20B_tokenizer.json",
       "no tokenizer file found: pass --tokenizer FILE, set SCANFLASH_TOKENIZER, or run `make data`"},
  };
  unsetenv("SCANFLASH_DATA");
  unsetenv("SCANFLASH_TOKENIZER");
  for (int i = 0; i < 2; i++) check_kind(&cases[i]);
  check_build_tree();
  /* remove the folders made above (files were removed as we went) */
  const char *dirs[] = {"repo/data/humanevalplus", "repo/data/tokenizer", "repo/data", "repo",
                        "shared/data/humanevalplus", "shared/data/tokenizer", "shared/data", "shared",
                        "flag", "env"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    char p[1024];
    path_join(p, sizeof p, tmpdir, dirs[i]);
    rmdir(p);
  }
  CHECK_MSG(rmdir(tmpdir) == 0, "temp dir %s left non-empty", tmpdir);
  return sf_test_finish("test_data_paths");
}
