/* Where the dataset and the tokenizer are found, in this order: the flag, the
 * environment (SCANFLASH_DATA / SCANFLASH_TOKENIZER), data/ in the repo
 * (git-ignored), the sibling ../shared/data/ folder. Otherwise an error that
 * says to pass the flag or run `make data`. */
#ifndef SCANFLASH_DATA_PATHS_H
#define SCANFLASH_DATA_PATHS_H

#include <stddef.h>

#include "scanflash/error.h"

typedef enum sf_data_kind { SF_DATA_HUMANEVAL, SF_DATA_TOKENIZER } sf_data_kind;

/* flag may be NULL. On success out holds an existing file's path. */
sf_status sf_data_path_resolve(sf_data_kind kind, const char *flag, char *out, size_t out_len,
                               sf_error *err);

#endif
