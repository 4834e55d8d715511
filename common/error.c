#include "scanflash/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

sf_status sf_fail(sf_error *err, sf_status code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}

sf_status sf_fail_context(sf_error *err, const char *fmt, ...) {
  if (!err) return SF_ERR_INTERNAL;
  char prefix[SF_ERROR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  char joined[2 * SF_ERROR_MSG_MAX + 2];
  snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
  size_t n = strlen(joined);
  if (n >= sizeof err->msg) n = sizeof err->msg - 1; /* long chains are cut */
  memcpy(err->msg, joined, n);
  err->msg[n] = '\0';
  return err->code;
}

void sf_error_clear(sf_error *err) {
  if (!err) return;
  err->code = SF_OK;
  err->msg[0] = '\0';
}

const char *sf_status_name(sf_status code) {
  switch (code) {
    case SF_OK: return "ok";
    case SF_ERR_ARG: return "bad argument";
    case SF_ERR_IO: return "i/o error";
    case SF_ERR_FORMAT: return "format error";
    case SF_ERR_NOMEM: return "out of memory";
    case SF_ERR_DEVICE: return "device error";
    case SF_ERR_MPI: return "mpi error";
    case SF_ERR_UNSUPPORTED: return "unsupported";
    case SF_ERR_INTERNAL: return "internal error";
  }
  return "unknown error";
}
