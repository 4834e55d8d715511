#include "scanflash/parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

sf_status sf_parse_i64(const char *s, const char *what, int64_t *out, sf_error *err) {
  if (!s || !*s) return sf_fail(err, SF_ERR_ARG, "%s: expected an integer, got an empty value", what);
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno == ERANGE) return sf_fail(err, SF_ERR_ARG, "%s: '%s' is out of range", what, s);
  if (*end) return sf_fail(err, SF_ERR_ARG, "%s: '%s' is not an integer", what, s);
  *out = v;
  return SF_OK;
}

sf_status sf_parse_u64(const char *s, const char *what, uint64_t *out, sf_error *err) {
  if (!s || !*s || *s == '-')
    return sf_fail(err, SF_ERR_ARG, "%s: expected a non-negative integer, got '%s'", what, s ? s : "");
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno == ERANGE) return sf_fail(err, SF_ERR_ARG, "%s: '%s' is out of range", what, s);
  if (*end) return sf_fail(err, SF_ERR_ARG, "%s: '%s' is not a non-negative integer", what, s);
  *out = v;
  return SF_OK;
}

sf_status sf_parse_count(const char *s, const char *what, int64_t *out, sf_error *err) {
  if (!s || !*s) return sf_fail(err, SF_ERR_ARG, "%s: expected a count, got an empty value", what);
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || errno == ERANGE) return sf_fail(err, SF_ERR_ARG, "%s: '%s' is not a count", what, s);
  int64_t mul = 1;
  if (*end == 'k' || *end == 'K') mul = 1024, end++;
  else if (*end == 'm' || *end == 'M') mul = 1024 * 1024, end++;
  else if (*end == 'g' || *end == 'G') mul = 1024LL * 1024 * 1024, end++;
  if (*end) return sf_fail(err, SF_ERR_ARG, "%s: '%s' is not a count (use digits with an optional k, M or G)", what, s);
  if (v < 0) return sf_fail(err, SF_ERR_ARG, "%s: '%s' is negative", what, s);
  if (v > INT64_MAX / mul) return sf_fail(err, SF_ERR_ARG, "%s: '%s' is out of range", what, s);
  *out = (int64_t)v * mul;
  return SF_OK;
}

sf_status sf_parse_double(const char *s, const char *what, double *out, sf_error *err) {
  if (!s || !*s) return sf_fail(err, SF_ERR_ARG, "%s: expected a number, got an empty value", what);
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (*end || errno == ERANGE || !isfinite(v))
    return sf_fail(err, SF_ERR_ARG, "%s: '%s' is not a finite number", what, s);
  *out = v;
  return SF_OK;
}
