/* RESULTS.h5.journal: append-only framed records, the source of truth.
 *
 * frame = header (24 bytes) + payload
 *   [0,4)   magic "SFRJ"
 *   [4,8)   type (rs_frame_type)
 *   [8,16)  payload length
 *   [16,20) crc32 of bytes [4,16) and the payload
 *   [20,24) crc32 of bytes [0,20)
 * Integers in host byte order: a journal is read back by the build (and
 * machine) that wrote it; J_HEADER records the record sizes to refuse any
 * other. Every frame is written with one write() loop and fsync'd; a kill
 * can only tear the last frame, which the reader drops. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "results/results_internal.h"

#define J_MAGIC 0x4A524653u /* "SFRJ" little-endian */
enum { J_FORMAT_VERSION = 1, J_NSIZES = 7 };

static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n) {
  uLong c = crc;
  while (n) {
    uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
    c = crc32(c, p, k);
    p += k;
    n -= k;
  }
  return (uint32_t)c;
}

static void frame_seal(unsigned char *buf, rs_frame_type type, size_t size) {
  uint32_t magic = J_MAGIC, t = (uint32_t)type;
  uint64_t len = size - RS_FRAME_HDR;
  memcpy(buf, &magic, 4);
  memcpy(buf + 4, &t, 4);
  memcpy(buf + 8, &len, 8);
  uint32_t c = crc_update(crc32(0, Z_NULL, 0), buf + 4, 12);
  c = crc_update(c, buf + RS_FRAME_HDR, (size_t)len);
  memcpy(buf + 16, &c, 4);
  uint32_t h = crc_update(crc32(0, Z_NULL, 0), buf, 20);
  memcpy(buf + 20, &h, 4);
}

/* Header fields when the 24 bytes are a well-formed header. */
static int header_ok(const unsigned char *h, uint32_t *type, uint64_t *len, uint32_t *crc) {
  uint32_t magic, hc;
  memcpy(&magic, h, 4);
  memcpy(&hc, h + 20, 4);
  if (magic != J_MAGIC || hc != crc_update(crc32(0, Z_NULL, 0), h, 20)) return 0;
  memcpy(type, h + 4, 4);
  memcpy(len, h + 8, 8);
  memcpy(crc, h + 16, 4);
  return 1;
}

static int payload_ok(const unsigned char *h, const unsigned char *payload, uint64_t len, uint32_t crc) {
  uint32_t c = crc_update(crc32(0, Z_NULL, 0), h + 4, 12);
  return crc_update(c, payload, (size_t)len) == crc;
}

static sf_status write_all(int fd, const char *path, const unsigned char *p, size_t n, sf_error *err) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return sf_fail(err, SF_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
  return SF_OK;
}

static sf_status read_all(int fd, const char *path, unsigned char *p, size_t n, sf_error *err) {
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return sf_fail(err, SF_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    }
    if (r == 0) return sf_fail(err, SF_ERR_IO, "%s: unexpected end of file", path);
    p += r;
    n -= (size_t)r;
  }
  return SF_OK;
}

static void record_sizes(uint32_t s[J_NSIZES]) {
  s[0] = sizeof(sf_work_item);
  s[1] = sizeof(sf_item_result);
  s[2] = sizeof(sf_repeat_result);
  s[3] = sizeof(sf_step_result);
  s[4] = sizeof(sf_kernel_result);
  s[5] = sizeof(sf_results_device);
  s[6] = sizeof(sf_results_problem);
}

/* ---- payloads ---- */

static unsigned char *header_frame(size_t *size) {
  uint32_t p[3 + J_NSIZES] = {J_FORMAT_VERSION, SF_RESULTS_SCHEMA_VERSION, J_NSIZES};
  record_sizes(p + 3);
  *size = RS_FRAME_HDR + sizeof p;
  unsigned char *b = calloc(1, *size);
  if (b) memcpy(b + RS_FRAME_HDR, p, sizeof p);
  return b;
}

static unsigned char *prov_frame(const rs_prov *prov, size_t *size) {
  size_t n = RS_FRAME_HDR + 8;
  for (int i = 0; i < RS_PROV_NSTR; i++) n += 4 + strlen(*rs_prov_str((rs_prov *)prov, i));
  unsigned char *b = calloc(1, n);
  if (!b) return NULL;
  unsigned char *p = b + RS_FRAME_HDR;
  memcpy(p, &prov->schema_version, 4);
  memcpy(p + 4, &prov->world_size, 4);
  p += 8;
  for (int i = 0; i < RS_PROV_NSTR; i++) {
    const char *s = *rs_prov_str((rs_prov *)prov, i);
    uint32_t len = (uint32_t)strlen(s);
    memcpy(p, &len, 4);
    memcpy(p + 4, s, len);
    p += 4 + len;
  }
  *size = n;
  return b;
}

static sf_status prov_parse(rs_prov *prov, const unsigned char *p, uint64_t len, sf_error *err) {
  memset(prov, 0, sizeof *prov);
  if (len < 8) return sf_fail(err, SF_ERR_FORMAT, "provenance record too short");
  memcpy(&prov->schema_version, p, 4);
  memcpy(&prov->world_size, p + 4, 4);
  uint64_t o = 8;
  for (int i = 0; i < RS_PROV_NSTR; i++) {
    uint32_t n;
    if (o + 4 > len) goto bad;
    memcpy(&n, p + o, 4);
    o += 4;
    if (n > len - o) goto bad;
    char *s = malloc((size_t)n + 1);
    if (!s) {
      rs_prov_free(prov);
      return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    }
    memcpy(s, p + o, n);
    s[n] = '\0';
    *rs_prov_str(prov, i) = s;
    o += n;
  }
  return SF_OK;
bad:
  rs_prov_free(prov);
  return sf_fail(err, SF_ERR_FORMAT, "provenance record is malformed");
}

unsigned char *rs_frame_rows(rs_table t, const void *rows, int64_t n, size_t *size) {
  size_t rs = rs_tables[t].row_size;
  *size = RS_FRAME_HDR + (size_t)n * rs;
  unsigned char *b = calloc(1, *size);
  if (!b) return NULL;
  for (int64_t i = 0; i < n; i++)
    rs_row_copy(t, b + RS_FRAME_HDR + (size_t)i * rs, (const char *)rows + (size_t)i * rs);
  return b;
}

/* ---- reading ---- */

/* Applies one valid frame to the state. buf (header room + payload) is taken. */
static sf_status apply_frame(const char *path, rs_state *s, int *have_header, uint32_t type,
                             unsigned char *buf, uint64_t len, int64_t at, sf_error *err) {
  const unsigned char *p = buf + RS_FRAME_HDR;
  sf_status rc = SF_OK;
  if (!*have_header && type != J_HEADER) {
    free(buf);
    return sf_fail(err, SF_ERR_FORMAT, "%s: not a scanflash results journal (no header frame)", path);
  }
  switch (type) {
    case J_HEADER: {
      uint32_t h[3 + J_NSIZES], want[J_NSIZES];
      record_sizes(want);
      if (len < sizeof h) {
        rc = sf_fail(err, SF_ERR_FORMAT, "%s: journal header is too short", path);
        break;
      }
      memcpy(h, p, sizeof h);
      if (h[0] != J_FORMAT_VERSION) {
        rc = sf_fail(err, SF_ERR_UNSUPPORTED, "%s: journal format %u is not supported (this scanflash writes %d)",
                     path, h[0], J_FORMAT_VERSION);
      } else if (h[1] != SF_RESULTS_SCHEMA_VERSION) {
        rc = sf_fail(err, SF_ERR_UNSUPPORTED, "%s: schema_version %u is not supported (this scanflash reads %d)",
                     path, h[1], SF_RESULTS_SCHEMA_VERSION);
      } else if (h[2] != J_NSIZES || memcmp(h + 3, want, sizeof want)) {
        rc = sf_fail(err, SF_ERR_UNSUPPORTED,
                     "%s: written by a scanflash build with other record layouts; resume with that build, "
                     "or move the journal aside to resume from the .h5 alone",
                     path);
      }
      *have_header = 1;
      break;
    }
    case J_PROV: {
      rs_prov prov;
      rc = prov_parse(&prov, p, len, err);
      if (rc != SF_OK) break;
      rs_prov_free(&s->prov);
      s->prov = prov;
      s->have_prov = 1;
      break;
    }
    case J_DEVICES:
    case J_PROBLEMS: {
      rs_table t = type == J_DEVICES ? T_DEVICES : T_PROBLEMS;
      size_t rsz = rs_tables[t].row_size;
      if (len % rsz) {
        rc = sf_fail(err, SF_ERR_FORMAT, "%s: %s record at byte %lld has a partial row", path, rs_tables[t].name,
                     (long long)at);
        break;
      }
      int64_t n = (int64_t)(len / rsz);
      if (t == T_DEVICES) rc = rs_state_add_devices(s, (const void *)p, n, NULL, NULL, err);
      else rc = rs_state_add_problems(s, (const void *)p, n, NULL, NULL, err);
      break;
    }
    case J_ITEM: {
      rs_rec rec;
      rc = rs_rec_parse(&rec, buf, RS_FRAME_HDR + (size_t)len, err);
      buf = NULL; /* taken */
      if (rc != SF_OK) {
        sf_fail_context(err, "%s: byte %lld", path, (long long)at);
        break;
      }
      rc = rs_state_add_item(s, &rec, err);
      break;
    }
    default:
      rc = sf_fail(err, SF_ERR_UNSUPPORTED, "%s: unknown record type %u at byte %lld (written by a newer scanflash?)",
                   path, type, (long long)at);
  }
  free(buf);
  return rc;
}

/* True when a whole valid frame starts somewhere in buf[from, n). */
static int valid_frame_after(const unsigned char *buf, size_t n, size_t from) {
  for (size_t i = from; i + RS_FRAME_HDR <= n; i++) {
    uint32_t type, crc;
    uint64_t len;
    if (buf[i] != 'S' || !header_ok(buf + i, &type, &len, &crc)) continue;
    if (len > n - i - RS_FRAME_HDR) continue;
    if (payload_ok(buf + i, buf + i + RS_FRAME_HDR, len, crc)) return 1;
  }
  return 0;
}

sf_status rs_journal_read(const char *path, rs_state *s, rs_journal_read_info *info, sf_error *err) {
  rs_state_init(s);
  memset(info, 0, sizeof *info);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sf_fail(err, SF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return sf_fail(err, SF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
  }
  const int64_t size = st.st_size;
  info->file_size = size;
  int64_t off = 0;
  sf_status rc = SF_OK;
  int bad = 0;
  while (rc == SF_OK && size - off >= RS_FRAME_HDR) {
    unsigned char h[RS_FRAME_HDR];
    rc = read_all(fd, path, h, sizeof h, err);
    if (rc != SF_OK) break;
    uint32_t type, crc;
    uint64_t len;
    if (!header_ok(h, &type, &len, &crc)) {
      bad = 1;
      break;
    }
    if (len > (uint64_t)(size - off - RS_FRAME_HDR)) break; /* torn: the payload never made it */
    unsigned char *buf = malloc(RS_FRAME_HDR + (size_t)len);
    if (!buf) {
      rc = sf_fail(err, SF_ERR_NOMEM, "%s: out of memory (frame of %llu bytes)", path, (unsigned long long)len);
      break;
    }
    memcpy(buf, h, RS_FRAME_HDR);
    rc = read_all(fd, path, buf + RS_FRAME_HDR, (size_t)len, err);
    if (rc != SF_OK) {
      free(buf);
      break;
    }
    if (!payload_ok(h, buf + RS_FRAME_HDR, len, crc)) {
      free(buf);
      bad = 1;
      break;
    }
    rc = apply_frame(path, s, &info->have_header, type, buf, len, off, err);
    if (rc != SF_OK) break;
    off += RS_FRAME_HDR + (int64_t)len;
  }
  if (rc == SF_OK && bad) {
    /* A kill tears only the last frame: a valid frame after a bad one is
     * corruption, and dropping what follows would lose reported records. */
    size_t rest = (size_t)(size - off);
    unsigned char *buf = malloc(rest ? rest : 1);
    if (!buf) {
      rc = sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", path);
    } else {
      if (lseek(fd, off, SEEK_SET) != off) rc = sf_fail(err, SF_ERR_IO, "%s: seek failed", path);
      if (rc == SF_OK) rc = read_all(fd, path, buf, rest, err);
      if (rc == SF_OK && valid_frame_after(buf, rest, 1))
        rc = sf_fail(err, SF_ERR_FORMAT,
                     "%s: corrupt record at byte %lld followed by valid ones; move the journal aside to "
                     "resume from the .h5 alone",
                     path, (long long)off);
      free(buf);
    }
  }
  close(fd);
  if (rc != SF_OK) {
    rs_state_free(s);
    return rc;
  }
  if (info->have_header && !s->have_prov) info->have_header = 0; /* torn before provenance: nothing reported */
  info->valid_end = info->have_header ? off : 0;
  return SF_OK;
}

/* ---- writing ---- */

sf_status rs_journal_append(int fd, const char *path, rs_frame_type type, unsigned char *buf, size_t size,
                            sf_error *err) {
  off_t end = lseek(fd, 0, SEEK_CUR);
  if (end < 0) return sf_fail(err, SF_ERR_IO, "%s: seek failed: %s", path, strerror(errno));
  frame_seal(buf, type, size);
  sf_status rc = write_all(fd, path, buf, size, err);
  if (rc == SF_OK && fsync(fd) != 0) rc = sf_fail(err, SF_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
  if (rc != SF_OK) {
    /* Leave no partial frame for the next append to follow (a torn frame
     * before valid ones reads as corruption); the item was not recorded. */
    if (ftruncate(fd, end) == 0) lseek(fd, end, SEEK_SET);
  }
  return rc;
}

static sf_status append_nosync(int fd, const char *path, rs_frame_type type, unsigned char *buf, size_t size,
                               sf_error *err) {
  if (!buf) return sf_fail(err, SF_ERR_NOMEM, "%s: out of memory", path);
  frame_seal(buf, type, size);
  return write_all(fd, path, buf, size, err);
}

sf_status rs_journal_write_state(const char *path, const char *tmp, const rs_state *s, sf_error *err) {
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return sf_fail(err, SF_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
  size_t size;
  unsigned char *b = header_frame(&size);
  sf_status rc = append_nosync(fd, tmp, J_HEADER, b, size, err);
  free(b);
  if (rc == SF_OK) {
    b = prov_frame(&s->prov, &size);
    rc = append_nosync(fd, tmp, J_PROV, b, size, err);
    free(b);
  }
  if (rc == SF_OK && s->n_devices) {
    b = rs_frame_rows(T_DEVICES, s->devices, s->n_devices, &size);
    rc = append_nosync(fd, tmp, J_DEVICES, b, size, err);
    free(b);
  }
  if (rc == SF_OK && s->n_problems) {
    b = rs_frame_rows(T_PROBLEMS, s->problems, s->n_problems, &size);
    rc = append_nosync(fd, tmp, J_PROBLEMS, b, size, err);
    free(b);
  }
  for (int64_t i = 0; i < s->n_items && rc == SF_OK; i++)
    if (s->items[i].buf) rc = append_nosync(fd, tmp, J_ITEM, s->items[i].buf, s->items[i].size, err);
  if (rc == SF_OK && fsync(fd) != 0) rc = sf_fail(err, SF_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
  if (close(fd) != 0 && rc == SF_OK) rc = sf_fail(err, SF_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
  if (rc == SF_OK && rename(tmp, path) != 0)
    rc = sf_fail(err, SF_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
  if (rc != SF_OK) {
    unlink(tmp);
    return rc;
  }
  return rs_fsync_dir_of(path, err);
}

sf_status rs_journal_open_append(const char *path, int64_t valid_end, int *fd_out, sf_error *err) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return sf_fail(err, SF_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return sf_fail(err, SF_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
  }
  if (valid_end < 0) valid_end = st.st_size;
  if (st.st_size != valid_end) { /* drop a torn tail before appending after it */
    if (ftruncate(fd, valid_end) != 0 || fsync(fd) != 0) {
      int e = errno;
      close(fd);
      return sf_fail(err, SF_ERR_IO, "%s: cannot truncate the torn tail: %s", path, strerror(e));
    }
  }
  if (lseek(fd, valid_end, SEEK_SET) != valid_end) {
    close(fd);
    return sf_fail(err, SF_ERR_IO, "%s: seek failed", path);
  }
  *fd_out = fd;
  return SF_OK;
}
