/* Safetensors reader (header validation, pread + conversion) and writer.
 * Multi-byte values are little-endian in the format; the header length is
 * decoded byte by byte, tensor data is taken as is (every host scanflash
 * runs on, x86-64 and aarch64, is little-endian). */
#include "model/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/text.h"
#include "ops/convert.h"

/* The reference implementation refuses larger headers too: a bound on what a
 * corrupt length can make us allocate. */
#define SF_ST_MAX_HEADER (100LL * 1024 * 1024)
/* Elements converted per step when the file dtype differs from the target. */
enum { READ_CHUNK = 1 << 20 };

typedef struct dtype_info {
  const char *name;
  int bits;
  int supported;
  sf_dtype dtype;
} dtype_info;

/* Every dtype the safetensors format defines, so files holding tensors we do
 * not read (masks as BOOL/U8, int64 position ids) still open and their
 * offsets are still checked. */
static const dtype_info dtypes[] = {
    {"F32", 32, 1, SF_F32},    {"F16", 16, 1, SF_F16},    {"BF16", 16, 1, SF_BF16},
    {"F64", 64, 0, SF_F32},    {"BOOL", 8, 0, SF_F32},    {"U8", 8, 0, SF_F32},
    {"I8", 8, 0, SF_F32},      {"I16", 16, 0, SF_F32},    {"U16", 16, 0, SF_F32},
    {"I32", 32, 0, SF_F32},    {"U32", 32, 0, SF_F32},    {"I64", 64, 0, SF_F32},
    {"U64", 64, 0, SF_F32},    {"F8_E4M3", 8, 0, SF_F32}, {"F8_E5M2", 8, 0, SF_F32},
    {"F8_E8M0", 8, 0, SF_F32}, {"F6_E2M3", 6, 0, SF_F32}, {"F6_E3M2", 6, 0, SF_F32},
    {"F4", 4, 0, SF_F32},      {"C64", 64, 0, SF_F32},
};

static const dtype_info *find_dtype(const char *name) {
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (!strcmp(dtypes[i].name, name)) return &dtypes[i];
  return NULL;
}

static const char *dtype_file_name(sf_dtype t) {
  switch (t) {
    case SF_F32: return "F32";
    case SF_F16: return "F16";
    case SF_BF16: return "BF16";
  }
  return "?";
}

int64_t sf_st_tensor_numel(const sf_st_tensor *t) {
  int64_t n = 1;
  for (int32_t i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

void sf_safetensors_close(sf_safetensors *st) {
  /* path marks an opened struct: a zeroed one (fd 0) must not close stdin. */
  if (!st || !st->path) return;
  if (st->fd >= 0) close(st->fd);
  for (int32_t i = 0; i < st->n; i++) free(st->tensors[i].name);
  free(st->tensors);
  free(st->path);
  memset(st, 0, sizeof *st);
  st->fd = -1;
}

/* pread until count bytes arrived; a short file is an error, not a hang. */
static sf_status pread_all(const sf_safetensors *st, void *dst, size_t count, int64_t offset,
                           const char *what, sf_error *err) {
  char *p = dst;
  while (count > 0) {
    ssize_t got = pread(st->fd, p, count, (off_t)offset);
    if (got < 0) {
      if (errno == EINTR) continue;
      return sf_fail(err, SF_ERR_IO, "%s: reading %s: %s", st->path, what, strerror(errno));
    }
    if (got == 0)
      return sf_fail(err, SF_ERR_FORMAT, "%s: reading %s: unexpected end of file (truncated?)", st->path,
                     what);
    p += got;
    count -= (size_t)got;
    offset += got;
  }
  return SF_OK;
}

/* A JSON number that is a non-negative integer exactly representable. */
static int json_index(const cJSON *v, int64_t *out) {
  if (!cJSON_IsNumber(v)) return 0;
  double d = v->valuedouble;
  if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return 0;
  *out = (int64_t)d;
  return 1;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const sf_st_tensor *)a)->name, ((const sf_st_tensor *)b)->name);
}

typedef struct span {
  int64_t begin, end;
  int32_t index;
} span;

static int cmp_span(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

/* Parses one header entry into t (name already set). */
static sf_status parse_entry(const sf_safetensors *st, const cJSON *e, sf_st_tensor *t, int64_t data_size,
                             sf_error *err) {
  const char *p = st->path, *n = t->name;
  if (!cJSON_IsObject(e)) return sf_fail(err, SF_ERR_FORMAT, "%s: tensor %s: entry is not an object", p, n);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  if (!cJSON_IsString(dt)) return sf_fail(err, SF_ERR_FORMAT, "%s: tensor %s: missing dtype", p, n);
  const dtype_info *di = find_dtype(dt->valuestring);
  if (!di)
    return sf_fail(err, SF_ERR_FORMAT, "%s: tensor %s: unknown dtype '%.32s'", p, n,
                   sf_printable(dt->valuestring));
  snprintf(t->dtype_name, sizeof t->dtype_name, "%s", di->name);
  t->supported = di->supported;
  t->dtype = di->dtype;
  t->elem_size = di->bits % 8 ? 0 : di->bits / 8;
  if (!cJSON_IsArray(shape)) return sf_fail(err, SF_ERR_FORMAT, "%s: tensor %s: missing shape", p, n);
  int ndim = cJSON_GetArraySize(shape);
  if (ndim > SF_ST_MAX_DIMS)
    return sf_fail(err, SF_ERR_FORMAT, "%s: tensor %s: %d dimensions (at most %d)", p, n, ndim,
                   SF_ST_MAX_DIMS);
  t->ndim = ndim;
  int64_t numel = 1;
  int overflow = 0;
  for (int i = 0; i < ndim; i++) {
    if (!json_index(cJSON_GetArrayItem(shape, i), &t->shape[i]))
      return sf_fail(err, SF_ERR_FORMAT, "%s: tensor %s: shape[%d] is not a non-negative integer", p, n, i);
    /* numel x bits (at most 64) must fit in int64 */
    if (t->shape[i] > 0 && numel > INT64_MAX / 64 / t->shape[i]) overflow = 1;
    else numel *= t->shape[i];
  }
  if (overflow) return sf_fail(err, SF_ERR_FORMAT, "%s: tensor %s: shape is too large", p, n);
  if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
      !json_index(cJSON_GetArrayItem(offs, 0), &t->begin) ||
      !json_index(cJSON_GetArrayItem(offs, 1), &t->end))
    return sf_fail(err, SF_ERR_FORMAT, "%s: tensor %s: data_offsets is not [begin, end]", p, n);
  if (t->end < t->begin)
    return sf_fail(err, SF_ERR_FORMAT, "%s: tensor %s: data_offsets [%lld, %lld] end before begin", p, n,
                   (long long)t->begin, (long long)t->end);
  int64_t bits = numel * di->bits;
  if (bits % 8 != 0 || t->end - t->begin != bits / 8)
    return sf_fail(err, SF_ERR_FORMAT,
                   "%s: tensor %s: data_offsets [%lld, %lld] hold %lld bytes, shape x %s needs %lld", p, n,
                   (long long)t->begin, (long long)t->end, (long long)(t->end - t->begin), di->name,
                   (long long)(bits / 8));
  if (t->end > data_size)
    return sf_fail(err, SF_ERR_FORMAT,
                   "%s: tensor %s: data_offsets [%lld, %lld] beyond the %lld data bytes in the file "
                   "(truncated?)",
                   p, n, (long long)t->begin, (long long)t->end, (long long)data_size);
  return SF_OK;
}

static sf_status parse_header(sf_safetensors *st, const char *text, size_t len, sf_error *err) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!root) return sf_fail(err, SF_ERR_FORMAT, "%s: header is not valid JSON", st->path);
  sf_status rc = SF_OK;
  for (const char *q = end; rc == SF_OK && q < text + len; q++)
    if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r')
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: header has data after the JSON object", st->path);
  if (rc == SF_OK && !cJSON_IsObject(root))
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: header is not a JSON object", st->path);
  int count = rc == SF_OK ? cJSON_GetArraySize(root) : 0;
  if (rc == SF_OK) {
    st->tensors = calloc((size_t)(count > 0 ? count : 1), sizeof *st->tensors);
    if (!st->tensors) rc = sf_fail(err, SF_ERR_NOMEM, "%s: out of memory for the header", st->path);
  }
  int64_t data_size = st->file_size - st->data_start;
  for (const cJSON *e = rc == SF_OK ? root->child : NULL; e && rc == SF_OK; e = e->next) {
    if (!strcmp(e->string, "__metadata__")) continue; /* free-form strings; not ours to judge */
    if (!e->string[0] || sf_printable(e->string) != e->string) {
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: header entry %d has an empty or unprintable tensor name",
                   st->path, (int)st->n);
      break;
    }
    sf_st_tensor *t = &st->tensors[st->n];
    t->name = strdup(e->string);
    if (!t->name) {
      rc = sf_fail(err, SF_ERR_NOMEM, "%s: out of memory for the header", st->path);
      break;
    }
    st->n++;
    rc = parse_entry(st, e, t, data_size, err);
  }
  cJSON_Delete(root);
  if (rc != SF_OK) return rc;
  qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_name);
  for (int32_t i = 1; i < st->n; i++)
    if (!strcmp(st->tensors[i - 1].name, st->tensors[i].name))
      return sf_fail(err, SF_ERR_FORMAT, "%s: tensor %s appears twice in the header", st->path,
                     st->tensors[i].name);
  /* Overlap: sorted by begin, each tensor must start at or after the end of
   * the one before (empty tensors overlap nothing). */
  span *order = malloc((size_t)(st->n > 0 ? st->n : 1) * sizeof *order);
  if (!order) return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory for the header", st->path);
  for (int32_t i = 0; i < st->n; i++) {
    order[i].begin = st->tensors[i].begin;
    order[i].end = st->tensors[i].end;
    order[i].index = i;
  }
  qsort(order, (size_t)st->n, sizeof *order, cmp_span);
  const sf_st_tensor *prev = NULL;
  for (int32_t k = 0; k < st->n && rc == SF_OK; k++) {
    const sf_st_tensor *t = &st->tensors[order[k].index];
    if (t->begin == t->end) continue;
    if (prev && t->begin < prev->end)
      rc = sf_fail(err, SF_ERR_FORMAT,
                   "%s: tensors %s and %s overlap (data_offsets [%lld, %lld] and [%lld, %lld])", st->path,
                   prev->name, t->name, (long long)prev->begin, (long long)prev->end, (long long)t->begin,
                   (long long)t->end);
    prev = t;
  }
  free(order);
  return rc;
}

sf_status sf_safetensors_open(const char *path, sf_safetensors *st, sf_error *err) {
  memset(st, 0, sizeof *st);
  st->fd = -1;
  st->path = strdup(path);
  if (!st->path) return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", path);
  st->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (st->fd < 0) {
    sf_status rc = sf_fail(err, SF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    sf_safetensors_close(st);
    return rc;
  }
  struct stat sb;
  sf_status rc = SF_OK;
  if (fstat(st->fd, &sb) != 0)
    rc = sf_fail(err, SF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
  else if (!S_ISREG(sb.st_mode))
    rc = sf_fail(err, SF_ERR_IO, "%s: not a regular file", path);
  st->file_size = (int64_t)sb.st_size;
  unsigned char lenbuf[8];
  if (rc == SF_OK && st->file_size < 8)
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: %lld bytes, too short for a safetensors header length", path,
                 (long long)st->file_size);
  if (rc == SF_OK) rc = pread_all(st, lenbuf, 8, 0, "the header length", err);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | lenbuf[i];
  if (rc == SF_OK && hlen == 0) rc = sf_fail(err, SF_ERR_FORMAT, "%s: header length is 0", path);
  if (rc == SF_OK && hlen > (uint64_t)(st->file_size - 8))
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: header length %llu is beyond the file size (%lld bytes)", path,
                 (unsigned long long)hlen, (long long)st->file_size);
  if (rc == SF_OK && hlen > (uint64_t)SF_ST_MAX_HEADER)
    rc = sf_fail(err, SF_ERR_FORMAT, "%s: header length %llu exceeds the 100 MiB limit", path,
                 (unsigned long long)hlen);
  char *text = NULL;
  if (rc == SF_OK) {
    text = malloc((size_t)hlen + 1);
    if (!text)
      rc = sf_fail(err, SF_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path,
                   (unsigned long long)hlen);
  }
  if (rc == SF_OK) rc = pread_all(st, text, (size_t)hlen, 8, "the header", err);
  if (rc == SF_OK) {
    text[hlen] = '\0';
    st->data_start = 8 + (int64_t)hlen;
    rc = parse_header(st, text, (size_t)hlen, err);
  }
  free(text);
  if (rc != SF_OK) sf_safetensors_close(st);
  return rc;
}

const sf_st_tensor *sf_safetensors_find(const sf_safetensors *st, const char *name) {
  sf_st_tensor key;
  key.name = (char *)name;
  return bsearch(&key, st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_name);
}

sf_status sf_safetensors_read(const sf_safetensors *st, const sf_st_tensor *t, int64_t first, int64_t count,
                              void *dst, sf_dtype to, sf_error *err) {
  if (!t->supported)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s (only F32, F16 and BF16 are read)",
                   st->path, t->name, t->dtype_name);
  int64_t numel = sf_st_tensor_numel(t);
  if (first < 0 || count < 0 || first > numel || count > numel - first)
    return sf_fail(err, SF_ERR_INTERNAL, "%s: tensor %s: elements [%lld, %lld) outside its %lld", st->path,
                   t->name, (long long)first, (long long)(first + count), (long long)numel);
  size_t esize = (size_t)t->elem_size;
  int64_t offset = st->data_start + t->begin + first * (int64_t)esize;
  if (t->dtype == to) return pread_all(st, dst, (size_t)count * esize, offset, t->name, err);
  int64_t chunk = count < READ_CHUNK ? count : READ_CHUNK;
  void *buf = malloc((size_t)(chunk > 0 ? chunk : 1) * esize);
  if (!buf) return sf_fail(err, SF_ERR_NOMEM, "%s: tensor %s: out of memory", st->path, t->name);
  sf_status rc = SF_OK;
  size_t out_size = sf_dtype_size(to);
  for (int64_t done = 0; done < count && rc == SF_OK; done += chunk) {
    int64_t n = count - done < chunk ? count - done : chunk;
    rc = pread_all(st, buf, (size_t)n * esize, offset + done * (int64_t)esize, t->name, err);
    if (rc == SF_OK) sf_convert((char *)dst + (size_t)done * out_size, to, buf, t->dtype, n);
  }
  free(buf);
  return rc;
}

/* ---- writer ---- */

static cJSON *raw_i64(int64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", (long long)v);
  return cJSON_CreateRaw(buf);
}

static char *build_header(const sf_st_write_tensor *ts, int32_t n, const char *const *meta, int32_t n_meta,
                          const char *path, sf_error *err) {
  cJSON *root = cJSON_CreateObject();
  int ok = root != NULL;
  if (ok && n_meta > 0) {
    cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
    ok = m != NULL;
    for (int32_t i = 0; ok && i < n_meta; i++)
      ok = cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1]) != NULL;
  }
  int64_t offset = 0;
  for (int32_t i = 0; ok && i < n; i++) {
    const sf_st_write_tensor *t = &ts[i];
    cJSON *e = cJSON_AddObjectToObject(root, t->name);
    cJSON *shape = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
    cJSON *offs = e ? cJSON_CreateArray() : NULL;
    ok = e && shape && offs && cJSON_AddStringToObject(e, "dtype", dtype_file_name(t->dtype));
    int64_t numel = 1;
    for (int32_t d = 0; ok && d < t->ndim; d++) {
      numel *= t->shape[d];
      ok = cJSON_AddItemToArray(shape, raw_i64(t->shape[d]));
    }
    int64_t bytes = numel * (int64_t)sf_dtype_size(t->dtype);
    if (ok)
      ok = cJSON_AddItemToArray(offs, raw_i64(offset)) && cJSON_AddItemToArray(offs, raw_i64(offset + bytes));
    if (offs && !cJSON_AddItemToObject(e, "data_offsets", offs)) {
      cJSON_Delete(offs);
      ok = 0;
    }
    offset += bytes;
  }
  char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!text) sf_fail(err, SF_ERR_NOMEM, "%s: out of memory building the header", path);
  return text;
}

static sf_status check_write_args(const sf_st_write_tensor *ts, int32_t n, const char *const *meta,
                                  int32_t n_meta, const char *path, sf_error *err) {
  if (n < 0 || n_meta < 0 || (n_meta > 0 && !meta))
    return sf_fail(err, SF_ERR_ARG, "%s: bad tensor or metadata count", path);
  for (int32_t i = 0; i < n_meta; i++)
    if (!meta[2 * i] || !meta[2 * i + 1])
      return sf_fail(err, SF_ERR_ARG, "%s: metadata entry %d is NULL", path, (int)i);
  for (int32_t i = 0; i < n; i++) {
    const sf_st_write_tensor *t = &ts[i];
    if (!t->name || !t->name[0] || !strcmp(t->name, "__metadata__"))
      return sf_fail(err, SF_ERR_ARG, "%s: tensor %d has no usable name", path, (int)i);
    if (t->ndim < 0 || t->ndim > SF_ST_MAX_DIMS || (t->ndim > 0 && !t->shape))
      return sf_fail(err, SF_ERR_ARG, "%s: tensor %s: bad ndim %d", path, t->name, (int)t->ndim);
    for (int32_t d = 0; d < t->ndim; d++)
      if (t->shape[d] < 0) return sf_fail(err, SF_ERR_ARG, "%s: tensor %s: negative shape", path, t->name);
    for (int32_t j = 0; j < i; j++)
      if (!strcmp(ts[j].name, t->name))
        return sf_fail(err, SF_ERR_ARG, "%s: tensor %s given twice", path, t->name);
  }
  return SF_OK;
}

sf_status sf_safetensors_write(const char *path, const sf_st_write_tensor *ts, int32_t n,
                               const char *const *meta, int32_t n_meta, sf_error *err) {
  SF_TRY(check_write_args(ts, n, meta, n_meta, path, err));
  char *text = build_header(ts, n, meta, n_meta, path, err);
  if (!text) return err ? err->code : SF_ERR_NOMEM;
  size_t len = strlen(text), padded = (len + 7) / 8 * 8;
  size_t tmp_len = strlen(path) + 5;
  char *tmp = malloc(tmp_len);
  if (!tmp) {
    free(text);
    return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", path);
  }
  snprintf(tmp, tmp_len, "%s.tmp", path);
  sf_status rc = SF_OK;
  FILE *f = fopen(tmp, "wb");
  int created = f != NULL;
  if (!f) rc = sf_fail(err, SF_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
  if (rc == SF_OK) {
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(lenbuf, 1, 8, f) == 8 && fwrite(text, 1, len, f) == len;
    for (size_t i = len; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (int32_t i = 0; ok && i < n; i++) {
      int64_t numel = 1;
      for (int32_t d = 0; d < ts[i].ndim; d++) numel *= ts[i].shape[d];
      size_t bytes = (size_t)numel * sf_dtype_size(ts[i].dtype);
      ok = bytes == 0 || fwrite(ts[i].data, 1, bytes, f) == bytes;
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok) rc = sf_fail(err, SF_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
  }
  if (rc == SF_OK && rename(tmp, path) != 0)
    rc = sf_fail(err, SF_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
  if (rc != SF_OK && created) remove(tmp);
  free(tmp);
  free(text);
  return rc;
}
