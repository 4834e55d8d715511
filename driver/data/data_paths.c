/* Data file resolution: flag, environment, repo data/, ../shared/data/. */
#include "data/data_paths.h"

#include "scanflash/files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef SCANFLASH_SOURCE_DIR
#error "SCANFLASH_SOURCE_DIR must be defined (driver/CMakeLists.txt sets it on sf_data)"
#endif

typedef struct kind_info {
  const char *what;    /* in the not-found message */
  const char *flag;    /* command-line flag */
  const char *env;     /* environment variable */
  const char *subpath; /* under data/ and ../shared/data/ */
} kind_info;

static const kind_info kinds[] = {
    [SF_DATA_HUMANEVAL] = {"HumanEval+ file", "--data", "SCANFLASH_DATA", "humanevalplus/HumanEvalPlus.jsonl.gz"},
    [SF_DATA_TOKENIZER] = {"tokenizer file", "--tokenizer", "SCANFLASH_TOKENIZER", "tokenizer/20B_tokenizer.json"},
};

static sf_status copy_out(const char *path, char *out, size_t out_len, sf_error *err) {
  int n = snprintf(out, out_len, "%s", path);
  if (n < 0 || (size_t)n >= out_len)
    return sf_fail(err, SF_ERR_ARG, "%s: path is too long (%zu bytes at most)", path, out_len ? out_len - 1 : 0);
  return SF_OK;
}

/* A path the user named explicitly must be an existing regular file. */
static sf_status check_named(const char *source, const char *path, char *out, size_t out_len, sf_error *err) {
  if (!*path) return sf_fail(err, SF_ERR_ARG, "%s: empty path", source);
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT) return sf_fail(err, SF_ERR_IO, "%s: %s: no such file", source, path);
    return sf_fail(err, SF_ERR_IO, "%s: %s: %s", source, path, strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return sf_fail(err, SF_ERR_IO, "%s: %s: not a regular file", source, path);
  return copy_out(path, out, out_len, err);
}

sf_status sf_data_path_resolve_in(sf_data_kind kind, const char *flag, const char *repo_root,
                                  char *out, size_t out_len, sf_error *err) {
  if ((int)kind < 0 || (size_t)kind >= sizeof kinds / sizeof kinds[0])
    return sf_fail(err, SF_ERR_INTERNAL, "unknown data kind %d", (int)kind);
  const kind_info *k = &kinds[kind];
  if (out_len) out[0] = '\0';

  if (flag) return check_named(k->flag, flag, out, out_len, err);

  const char *env = getenv(k->env);
  if (env && *env) return check_named(k->env, env, out, out_len, err);

  if (repo_root && *repo_root) {
    static const char *const places[] = {"data", "../shared/data"};
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
      size_t need = strlen(repo_root) + strlen(places[i]) + strlen(k->subpath) + 3;
      char *cand = malloc(need);
      if (!cand) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
      snprintf(cand, need, "%s/%s/%s", repo_root, places[i], k->subpath);
      if (sf_file_exists(cand)) {
        sf_status rc = copy_out(cand, out, out_len, err);
        free(cand);
        return rc;
      }
      free(cand);
    }
  }
  return sf_fail(err, SF_ERR_IO, "no %s found: pass %s FILE, set %s, or run `make data`", k->what, k->flag,
                 k->env);
}

sf_status sf_data_path_resolve(sf_data_kind kind, const char *flag, char *out, size_t out_len,
                               sf_error *err) {
  return sf_data_path_resolve_in(kind, flag, SCANFLASH_SOURCE_DIR, out, out_len, err);
}
