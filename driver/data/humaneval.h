/* HumanEval+ problems from the official .jsonl or .jsonl.gz release. */
#ifndef SCANFLASH_DATA_HUMANEVAL_H
#define SCANFLASH_DATA_HUMANEVAL_H

#include <stdint.h>

#include "scanflash/error.h"

typedef struct sf_problem {
  char *task_id;            /* "HumanEval/0" */
  char *prompt;
  char *canonical_solution;
  char *entry_point;
  char *test;
} sf_problem;

typedef struct sf_problem_set {
  sf_problem *items;        /* in file order */
  int32_t n;
} sf_problem_set;

/* Loads and validates; errors name the file and line ("F:12: missing field
 * 'prompt'"). A path ending in .gz must be gzip. */
sf_status sf_humaneval_load(const char *path, sf_problem_set *out, sf_error *err);
void sf_problem_set_free(sf_problem_set *set);

/* Index of a problem by task id ("HumanEval/7") or bare number ("7"); -1 if absent. */
int32_t sf_problem_set_find(const sf_problem_set *set, const char *id);

#endif
