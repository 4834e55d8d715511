/* Whole-file reads (plain or gzip) and content hashes. */
#ifndef SCANFLASH_FILES_H
#define SCANFLASH_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "scanflash/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads a whole file into a NUL-terminated malloc'd buffer. */
sf_status sf_read_file(const char *path, char **data, size_t *size, sf_error *err);

/* Reads a gzip file and inflates it (zlib); concatenated members are joined.
 * A file that is not gzip is an error naming the path. */
sf_status sf_read_gzip_file(const char *path, char **data, size_t *size, sf_error *err);

/* True when path ends with suffix. */
int sf_ends_with(const char *path, const char *suffix);
int sf_file_exists(const char *path);

/* SHA-256 of a buffer / of a file's bytes as 64 lowercase hex digits + NUL. */
void sf_sha256_hex(const void *data, size_t size, char out[65]);
sf_status sf_sha256_file(const char *path, char out[65], sf_error *err);

#ifdef __cplusplus
}
#endif
#endif
