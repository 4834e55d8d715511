/* Errors are values: every fallible function returns SF_OK (0) or a code and
 * fills an sf_error with a one-line message that names what is wrong and
 * where (file, line, argument, key). Nothing below main() prints or exits, so
 * an MPI rank can always report its failure and let the job shut down. */
#ifndef SCANFLASH_ERROR_H
#define SCANFLASH_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sf_status {
  SF_OK = 0,
  SF_ERR_ARG,      /* bad command-line argument or parameter value */
  SF_ERR_IO,       /* file missing, unreadable, unwritable */
  SF_ERR_FORMAT,   /* malformed input data */
  SF_ERR_NOMEM,    /* host or device allocation failed */
  SF_ERR_DEVICE,   /* CUDA / cuBLAS / NCCL / NVML failure */
  SF_ERR_MPI,      /* MPI failure */
  SF_ERR_UNSUPPORTED, /* valid request this build or backend cannot do */
  SF_ERR_INTERNAL  /* a broken invariant: a bug in scanflash */
} sf_status;

enum { SF_ERROR_MSG_MAX = 1024 };

typedef struct sf_error {
  sf_status code;
  char msg[SF_ERROR_MSG_MAX];
} sf_error;

/* Sets err (when non-NULL) and returns code, so callers can write
 * `return sf_fail(err, SF_ERR_IO, "%s: cannot open", path);` */
sf_status sf_fail(sf_error *err, sf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " to an error already set, for call chains. */
sf_status sf_fail_context(sf_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void sf_error_clear(sf_error *err);
const char *sf_status_name(sf_status code);

/* Propagate a failure unchanged. */
#define SF_TRY(expr)                          \
  do {                                        \
    sf_status sf_try_rc_ = (expr);            \
    if (sf_try_rc_ != SF_OK) return sf_try_rc_; \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif
