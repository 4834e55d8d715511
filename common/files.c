#include "scanflash/files.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

int sf_ends_with(const char *path, const char *suffix) {
  size_t n = strlen(path), m = strlen(suffix);
  return n >= m && strcmp(path + n - m, suffix) == 0;
}

int sf_file_exists(const char *path) {
  struct stat st;
  return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

sf_status sf_read_file(const char *path, char **data, size_t *size, sf_error *err) {
  *data = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return sf_fail(err, SF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap + 1);
  if (!buf) { fclose(f); return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", path); }
  for (;;) {
    if (len == cap) {
      cap *= 2;
      char *nb = realloc(buf, cap + 1);
      if (!nb) { free(buf); fclose(f); return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", path); }
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) { free(buf); return sf_fail(err, SF_ERR_IO, "%s: read error", path); }
  buf[len] = '\0';
  *data = buf;
  *size = len;
  return SF_OK;
}

sf_status sf_read_gzip_file(const char *path, char **data, size_t *size, sf_error *err) {
  char *raw;
  size_t raw_size;
  SF_TRY(sf_read_file(path, &raw, &raw_size, err));
  *data = NULL;
  *size = 0;
  if (raw_size < 2 || (unsigned char)raw[0] != 0x1f || (unsigned char)raw[1] != 0x8b) {
    free(raw);
    return sf_fail(err, SF_ERR_FORMAT, "%s: not a gzip file (bad magic bytes)", path);
  }
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    free(raw);
    return sf_fail(err, SF_ERR_INTERNAL, "%s: zlib init failed", path);
  }
  size_t cap = raw_size * 4 + 1024, len = 0;
  char *out = malloc(cap + 1);
  sf_status rc = out ? SF_OK : sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", path);
  zs.next_in = (Bytef *)raw;
  zs.avail_in = (uInt)raw_size;
  while (rc == SF_OK) {
    if (len == cap) {
      cap *= 2;
      char *nb = realloc(out, cap + 1);
      if (!nb) { rc = sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", path); break; }
      out = nb;
    }
    zs.next_out = (Bytef *)out + len;
    zs.avail_out = (uInt)(cap - len);
    int z = inflate(&zs, Z_NO_FLUSH);
    len = cap - zs.avail_out;
    if (z == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs); /* another gzip member follows */
    } else if (z == Z_BUF_ERROR && zs.avail_in == 0) {
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: truncated gzip data", path);
    } else if (z != Z_OK && z != Z_BUF_ERROR) {
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: corrupt gzip data (%s)", path, zs.msg ? zs.msg : "inflate failed");
    }
  }
  inflateEnd(&zs);
  free(raw);
  if (rc != SF_OK) { free(out); return rc; }
  out[len] = '\0';
  *data = out;
  *size = len;
  return SF_OK;
}

static void to_hex(const unsigned char *d, unsigned n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < n; i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[2 * n] = '\0';
}

void sf_sha256_hex(const void *data, size_t size, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data, size, md, &n, EVP_sha256(), NULL);
  to_hex(md, n, out);
}

sf_status sf_sha256_file(const char *path, char out[65], sf_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return sf_fail(err, SF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  unsigned char buf[1 << 16];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(ctx, buf, got);
  int bad = ferror(f);
  fclose(f);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  if (bad) return sf_fail(err, SF_ERR_IO, "%s: read error", path);
  to_hex(md, n, out);
  return SF_OK;
}
