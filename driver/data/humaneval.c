/* HumanEval+ loader: one JSON object per line (.jsonl), optionally gzip'd
 * (.jsonl.gz). Only the five fields scanflash uses are kept; the large test
 * inputs (base_input, plus_input), contract and atol are ignored. Every
 * error names the file and, where there is one, the line. */
#include "data/humaneval.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "scanflash/files.h"

enum { N_FIELDS = 5 };
static const char *const field_names[N_FIELDS] = {"task_id", "prompt", "canonical_solution",
                                                  "entry_point", "test"};

static char **field_slot(sf_problem *p, int i) {
  switch (i) {
    case 0: return &p->task_id;
    case 1: return &p->prompt;
    case 2: return &p->canonical_solution;
    case 3: return &p->entry_point;
    default: return &p->test;
  }
}

static void problem_free(sf_problem *p) {
  for (int i = 0; i < N_FIELDS; i++) {
    free(*field_slot(p, i));
    *field_slot(p, i) = NULL;
  }
}

void sf_problem_set_free(sf_problem_set *set) {
  if (!set) return;
  for (int32_t i = 0; i < set->n; i++) problem_free(&set->items[i]);
  free(set->items);
  set->items = NULL;
  set->n = 0;
}

static int is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isspace((unsigned char)s[i])) return 0;
  return 1;
}

/* Parses one non-blank line (NUL-terminated in place) into p. */
static sf_status parse_line(const char *path, int64_t lineno, const char *line, size_t len,
                            sf_problem *p, sf_error *err) {
  if (strlen(line) != len) return sf_fail(err, SF_ERR_FORMAT, "%s:%lld: NUL byte in line", path, (long long)lineno);
  const char *end = NULL;
  cJSON *obj = cJSON_ParseWithOpts(line, &end, 1);
  if (!obj) return sf_fail(err, SF_ERR_FORMAT, "%s:%lld: malformed JSON", path, (long long)lineno);
  sf_status rc = SF_OK;
  if (!cJSON_IsObject(obj)) {
    rc = sf_fail(err, SF_ERR_FORMAT, "%s:%lld: expected a JSON object", path, (long long)lineno);
    goto done;
  }
  for (int i = 0; i < N_FIELDS; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field_names[i]);
    if (!v) {
      rc = sf_fail(err, SF_ERR_FORMAT, "%s:%lld: missing field '%s'", path, (long long)lineno, field_names[i]);
      goto done;
    }
    if (!cJSON_IsString(v) || !v->valuestring) {
      rc = sf_fail(err, SF_ERR_FORMAT, "%s:%lld: field '%s' is not a string", path, (long long)lineno,
                   field_names[i]);
      goto done;
    }
    if (i <= 1 && !v->valuestring[0]) { /* task_id and prompt must say something */
      rc = sf_fail(err, SF_ERR_FORMAT, "%s:%lld: field '%s' is empty", path, (long long)lineno, field_names[i]);
      goto done;
    }
    char *copy = strdup(v->valuestring);
    if (!copy) {
      rc = sf_fail(err, SF_ERR_NOMEM, "%s:%lld: out of memory", path, (long long)lineno);
      goto done;
    }
    *field_slot(p, i) = copy;
  }
done:
  cJSON_Delete(obj);
  if (rc != SF_OK) problem_free(p);
  return rc;
}

sf_status sf_humaneval_load(const char *path, sf_problem_set *out, sf_error *err) {
  out->items = NULL;
  out->n = 0;
  char *data;
  size_t size;
  if (sf_ends_with(path, ".gz")) SF_TRY(sf_read_gzip_file(path, &data, &size, err));
  else SF_TRY(sf_read_file(path, &data, &size, err));

  sf_problem_set set = {NULL, 0};
  int64_t *first_line = NULL; /* line of each problem, for duplicate messages */
  int32_t cap = 0;
  sf_status rc = SF_OK;
  int64_t lineno = 0;
  char *s = data, *end = data + size;
  while (s < end && rc == SF_OK) {
    lineno++;
    char *nl = memchr(s, '\n', (size_t)(end - s));
    char *line_end = nl ? nl : end;
    size_t len = (size_t)(line_end - s);
    *line_end = '\0'; /* data has a NUL at data[size] */
    if (len && s[len - 1] == '\r') s[--len] = '\0'; /* CRLF files */
    if (!is_blank(s, len)) {
      if (set.n == cap) {
        int32_t ncap = cap ? cap * 2 : 256;
        sf_problem *ni = realloc(set.items, (size_t)ncap * sizeof *ni);
        int64_t *nf = ni ? realloc(first_line, (size_t)ncap * sizeof *nf) : NULL;
        if (ni) set.items = ni;
        if (nf) first_line = nf;
        if (!ni || !nf) {
          rc = sf_fail(err, SF_ERR_NOMEM, "%s:%lld: out of memory", path, (long long)lineno);
          break;
        }
        cap = ncap;
      }
      sf_problem *p = &set.items[set.n];
      memset(p, 0, sizeof *p);
      rc = parse_line(path, lineno, s, len, p, err);
      if (rc != SF_OK) break;
      for (int32_t i = 0; i < set.n; i++) {
        if (!strcmp(set.items[i].task_id, p->task_id)) {
          rc = sf_fail(err, SF_ERR_FORMAT, "%s:%lld: duplicate task_id '%s' (first on line %lld)", path,
                       (long long)lineno, p->task_id, (long long)first_line[i]);
          problem_free(p);
          break;
        }
      }
      if (rc != SF_OK) break;
      first_line[set.n++] = lineno;
    }
    s = line_end + 1;
  }
  free(data);
  free(first_line);
  if (rc == SF_OK && set.n == 0) rc = sf_fail(err, SF_ERR_FORMAT, "%s: empty file (no problems)", path);
  if (rc != SF_OK) {
    sf_problem_set_free(&set);
    return rc;
  }
  *out = set;
  return SF_OK;
}

static int all_digits(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s)) return 0;
  return 1;
}

int32_t sf_problem_set_find(const sf_problem_set *set, const char *id) {
  if (!set || !id) return -1;
  for (int32_t i = 0; i < set->n; i++)
    if (!strcmp(set->items[i].task_id, id)) return i;
  /* A bare number N names the task whose id ends in "/N" ("7" -> "HumanEval/7"). */
  if (!all_digits(id)) return -1;
  for (int32_t i = 0; i < set->n; i++) {
    const char *slash = strrchr(set->items[i].task_id, '/');
    if (slash && !strcmp(slash + 1, id)) return i;
  }
  return -1;
}
