/* Safetensors files (https://huggingface.co/docs/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON mapping tensor names to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
 * byte after the header; "__metadata__" holds free-form strings), then the
 * data, row-major, little-endian.
 *
 * The reader checks the whole header when opening (so a malformed file is
 * one clear error up front, not a crash halfway through loading) and reads
 * tensors with pread, converting F32/F16/BF16 to the dtype asked for. The
 * writer produces files the reference implementation accepts (header padded
 * with spaces to a multiple of 8, tensors contiguous in the order given). */
#ifndef SCANFLASH_MODEL_SAFETENSORS_H
#define SCANFLASH_MODEL_SAFETENSORS_H

#include <stdint.h>

#include "ops/types.h"
#include "scanflash/error.h"

enum { SF_ST_MAX_DIMS = 8 };

typedef struct sf_st_tensor {
  char *name;
  char dtype_name[16];       /* as in the file: "F32", "BF16", "I64", ... */
  int supported;             /* dtype is F32, F16 or BF16 (readable as numbers) */
  sf_dtype dtype;            /* when supported */
  int32_t elem_size;         /* bytes per element (0 for sub-byte types) */
  int32_t ndim;
  int64_t shape[SF_ST_MAX_DIMS];
  int64_t begin, end;        /* byte offsets within the data section */
} sf_st_tensor;

typedef struct sf_safetensors {
  char *path;
  int fd;
  int64_t file_size;
  int64_t data_start;        /* 8 + header length */
  int32_t n;
  sf_st_tensor *tensors;     /* sorted by name */
} sf_safetensors;

/* Opens and validates path: header length within the file (and at most
 * 100 MiB), header a JSON object, every entry a known dtype, a shape of
 * non-negative integers and data offsets that match shape x dtype, lie
 * within the file and do not overlap; names unique. Errors name the file and
 * the tensor. */
sf_status sf_safetensors_open(const char *path, sf_safetensors *st, sf_error *err);
void sf_safetensors_close(sf_safetensors *st);

/* NULL when absent. */
const sf_st_tensor *sf_safetensors_find(const sf_safetensors *st, const char *name);

int64_t sf_st_tensor_numel(const sf_st_tensor *t);

/* Reads elements [first, first + count) of t (row-major) into dst as dtype
 * `to`. A dtype other than F32/F16/BF16 is an error naming the tensor. */
sf_status sf_safetensors_read(const sf_safetensors *st, const sf_st_tensor *t, int64_t first,
                              int64_t count, void *dst, sf_dtype to, sf_error *err);

/* One tensor to write: host data in dtype, row-major. */
typedef struct sf_st_write_tensor {
  const char *name;
  sf_dtype dtype;
  int32_t ndim;
  const int64_t *shape;
  const void *data;
} sf_st_write_tensor;

/* Writes n tensors (names unique, none "__metadata__") and n_meta
 * key/value string pairs as __metadata__ (meta may be NULL when n_meta is
 * 0). The file is written to path + ".tmp" and renamed, so a crash never
 * leaves a half-written file under path. */
sf_status sf_safetensors_write(const char *path, const sf_st_write_tensor *tensors, int32_t n,
                               const char *const *meta, int32_t n_meta, sf_error *err);

#endif
