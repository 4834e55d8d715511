/* Where the dataset and the tokenizer are found, in this order: the flag, the
 * environment (SCANFLASH_DATA / SCANFLASH_TOKENIZER), data/ in the repo
 * (git-ignored), the sibling ../shared/data/ folder. Otherwise an error that
 * says to pass the flag or run `make data`. */
#ifndef SCANFLASH_DATA_PATHS_H
#define SCANFLASH_DATA_PATHS_H

#include <stddef.h>

#include "scanflash/error.h"

typedef enum sf_data_kind { SF_DATA_HUMANEVAL, SF_DATA_TOKENIZER } sf_data_kind;

/* flag may be NULL. On success out holds an existing file's path. A flag or
 * environment value that names a missing file is an error naming it (the
 * search does not go on to the next place); an empty environment value
 * counts as unset. Searched subpaths: humanevalplus/HumanEvalPlus.jsonl.gz and
 * tokenizer/20B_tokenizer.json, under ROOT/data/ and ROOT/../shared/data/,
 * ROOT being the source tree scanflash was built from. */
sf_status sf_data_path_resolve(sf_data_kind kind, const char *flag, char *out, size_t out_len,
                               sf_error *err);

/* The same search with an explicit repository root instead of the build's
 * source tree (tests use it with temporary folders). */
sf_status sf_data_path_resolve_in(sf_data_kind kind, const char *flag, const char *repo_root,
                                  char *out, size_t out_len, sf_error *err);

#endif
