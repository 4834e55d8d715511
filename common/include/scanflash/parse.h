/* Strict number parsing for flags and spec values: the whole string must be
 * a number, with an optional k/M/G suffix (powers of 1024) for counts. */
#ifndef SCANFLASH_PARSE_H
#define SCANFLASH_PARSE_H

#include <stdint.h>

#include "scanflash/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "2048", "2k", "1M", "4m" -> 2048, 2048, 1048576, 4194304. `what` names the
 * argument in the error ("--context"). */
sf_status sf_parse_count(const char *s, const char *what, int64_t *out, sf_error *err);
/* Plain signed 64-bit integer (no suffix). */
sf_status sf_parse_i64(const char *s, const char *what, int64_t *out, sf_error *err);
sf_status sf_parse_u64(const char *s, const char *what, uint64_t *out, sf_error *err);
sf_status sf_parse_double(const char *s, const char *what, double *out, sf_error *err);

#ifdef __cplusplus
}
#endif
#endif
