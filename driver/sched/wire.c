/* Packing and checked unpacking of worker reports (layout in wire.h). */
#include <stdlib.h>
#include <string.h>

#include "sched/wire.h"

/* Struct sizes are multiples of their 8-byte alignment, so sections placed
 * back to back stay aligned; checked at compile time. */
_Static_assert(sizeof(sf_wire_header) % 8 == 0, "wire header size");
_Static_assert(sizeof(sf_item_result) % 8 == 0, "item result size");
_Static_assert(sizeof(sf_repeat_result) % 8 == 0, "repeat size");
_Static_assert(sizeof(sf_step_result) % 8 == 0, "step size");
_Static_assert(sizeof(sf_kernel_result) % 8 == 0, "kernel size");

static size_t body_size(int kind, int64_t nr, int64_t ns, int64_t nk) {
  if (kind != SF_WIRE_RESULT) return 0;
  return sizeof(sf_item_result) + (size_t)nr * sizeof(sf_repeat_result) + (size_t)ns * sizeof(sf_step_result) +
         (size_t)nk * sizeof(sf_kernel_result);
}

sf_status sf_wire_pack(sf_wire_kind kind, int32_t rank, int32_t signalled, const sf_item_result *result,
                       const sf_repeat_result *repeats, int64_t n_repeats, const sf_step_result *steps,
                       int64_t n_steps, const sf_kernel_result *kernels, int64_t n_kernels, const char *text,
                       void **buf, size_t *size, sf_error *err) {
  *buf = NULL;
  *size = 0;
  if (kind < SF_WIRE_REQUEST || kind > SF_WIRE_DONE)
    return sf_fail(err, SF_ERR_INTERNAL, "wire: bad report kind %d", (int)kind);
  if (kind == SF_WIRE_RESULT && !result) return sf_fail(err, SF_ERR_INTERNAL, "wire: a result report needs its result");
  if (kind != SF_WIRE_RESULT) n_repeats = n_steps = n_kernels = 0;
  if (n_repeats < 0 || n_steps < 0 || n_kernels < 0 || n_repeats > SF_WIRE_MAX_ROWS || n_steps > SF_WIRE_MAX_ROWS ||
      n_kernels > SF_WIRE_MAX_ROWS)
    return sf_fail(err, SF_ERR_ARG, "wire: record counts out of range (%lld repeats, %lld steps, %lld kernels)",
                   (long long)n_repeats, (long long)n_steps, (long long)n_kernels);
  size_t tlen = text ? strlen(text) + 1 : 0;
  if (tlen > SF_WIRE_MAX_TEXT) tlen = SF_WIRE_MAX_TEXT; /* cut, NUL kept below */
  const size_t total = sizeof(sf_wire_header) + body_size(kind, n_repeats, n_steps, n_kernels) + tlen;
  unsigned char *p = malloc(total);
  if (!p) return sf_fail(err, SF_ERR_NOMEM, "wire: out of host memory for a %zu-byte report", total);
  sf_wire_header h = {.magic = SF_WIRE_MAGIC, .kind = kind, .rank = rank, .signalled = signalled,
                      .n_repeats = n_repeats, .n_steps = n_steps, .n_kernels = n_kernels, .text_len = (int64_t)tlen};
  size_t off = 0;
  memcpy(p, &h, sizeof h);
  off += sizeof h;
  if (kind == SF_WIRE_RESULT) {
    memcpy(p + off, result, sizeof *result);
    off += sizeof *result;
#define PUT(ptr, n)                                   \
  do {                                                \
    if ((n) > 0) memcpy(p + off, ptr, (size_t)(n) * sizeof *(ptr)); \
    off += (size_t)(n) * sizeof *(ptr);               \
  } while (0)
    PUT(repeats, n_repeats);
    PUT(steps, n_steps);
    PUT(kernels, n_kernels);
#undef PUT
  }
  if (tlen) {
    memcpy(p + off, text, tlen - 1);
    p[off + tlen - 1] = '\0';
  }
  *buf = p;
  *size = total;
  return SF_OK;
}

sf_status sf_wire_unpack(const void *buf, size_t size, sf_wire_msg *out, sf_error *err) {
  memset(out, 0, sizeof *out);
  const unsigned char *p = buf;
  if (!buf || size < sizeof(sf_wire_header))
    return sf_fail(err, SF_ERR_FORMAT, "malformed report: %zu bytes, shorter than its header", size);
  memcpy(&out->h, p, sizeof out->h);
  const sf_wire_header *h = &out->h;
  if (h->magic != SF_WIRE_MAGIC)
    return sf_fail(err, SF_ERR_FORMAT, "malformed report: bad magic 0x%08x (another program or version?)",
                   (unsigned)h->magic);
  if (h->kind < SF_WIRE_REQUEST || h->kind > SF_WIRE_DONE)
    return sf_fail(err, SF_ERR_FORMAT, "malformed report: unknown kind %d", (int)h->kind);
  if (h->n_repeats < 0 || h->n_steps < 0 || h->n_kernels < 0 || h->n_repeats > SF_WIRE_MAX_ROWS ||
      h->n_steps > SF_WIRE_MAX_ROWS || h->n_kernels > SF_WIRE_MAX_ROWS || h->text_len < 0 ||
      h->text_len > SF_WIRE_MAX_TEXT ||
      (h->kind != SF_WIRE_RESULT && (h->n_repeats || h->n_steps || h->n_kernels)))
    return sf_fail(err, SF_ERR_FORMAT, "malformed report: bad counts");
  const size_t want = sizeof(sf_wire_header) + body_size(h->kind, h->n_repeats, h->n_steps, h->n_kernels) +
                      (size_t)h->text_len;
  if (want != size)
    return sf_fail(err, SF_ERR_FORMAT, "malformed report: %zu bytes where its header says %zu", size, want);
  size_t off = sizeof(sf_wire_header);
  if (h->kind == SF_WIRE_RESULT) {
    out->result = (const sf_item_result *)(p + off);
    off += sizeof(sf_item_result);
    out->repeats = (const sf_repeat_result *)(p + off);
    off += (size_t)h->n_repeats * sizeof(sf_repeat_result);
    out->steps = (const sf_step_result *)(p + off);
    off += (size_t)h->n_steps * sizeof(sf_step_result);
    out->kernels = (const sf_kernel_result *)(p + off);
    off += (size_t)h->n_kernels * sizeof(sf_kernel_result);
  }
  if (h->text_len > 0) {
    if (p[off + (size_t)h->text_len - 1] != '\0')
      return sf_fail(err, SF_ERR_FORMAT, "malformed report: text without its NUL");
    out->text = (const char *)(p + off);
  }
  return SF_OK;
}
