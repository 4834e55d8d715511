/* Value lists, ranges, problem selections and durations: the one parser
 * that YAML scalars and quick-sweep flag values both go through. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scanflash/parse.h"
#include "spec/spec_internal.h"

enum { TERM_MAX = 256 };

/* Upper limits per kind: a context beyond 1G tokens, a batch beyond 64k
 * sequences or a generation beyond 1M tokens is a typo, not a sweep. */
static const int64_t kind_max[] = {1LL << 30, 1LL << 16, 1LL << 20};
static const char *const kind_noun[] = {"token count", "batch size", "generation length"};

static sf_status push_i64(int64_t **vals, int32_t *n, int64_t v, sf_error *err) {
  if (*n >= SF_SPEC_MAX_LIST)
    return sf_fail(err, SF_ERR_ARG, "more than %d values in one list", (int)SF_SPEC_MAX_LIST);
  if ((*n & (*n - 1)) == 0) { /* grow at powers of two: 1, 2, 4, ... */
    size_t cap = *n ? (size_t)*n * 2 : 1;
    int64_t *p = realloc(*vals, cap * sizeof *p);
    if (!p) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    *vals = p;
  }
  (*vals)[(*n)++] = v;
  return SF_OK;
}

/* Copies term [b, e) trimmed into out; returns its length (-1: too long). */
static int copy_trimmed(const char *b, const char *e, char *out) {
  while (b < e && isspace((unsigned char)*b)) b++;
  while (e > b && isspace((unsigned char)e[-1])) e--;
  if (e - b >= TERM_MAX) return -1;
  memcpy(out, b, (size_t)(e - b));
  out[e - b] = '\0';
  return (int)(e - b);
}

/* A count (digits, optional k/M/G); our own message names the noun. */
static sf_status parse_count(const char *s, const char *noun, int64_t *out, sf_error *err) {
  if (*s == '-') return sf_fail(err, SF_ERR_ARG, "'%s': a %s cannot be negative", s, noun);
  sf_error e;
  if (sf_parse_count(s, noun, out, &e) != SF_OK)
    return sf_fail(err, SF_ERR_ARG, "'%s' is not a %s (digits with an optional k, M or G suffix)", s,
                   noun);
  return SF_OK;
}

/* START:END:xFACTOR or START:END:+STEP over counts; appends the values. */
static sf_status parse_range(const char *term, const char *noun, int64_t **vals, int32_t *n,
                             sf_error *err) {
  char a[TERM_MAX], b[TERM_MAX], c[TERM_MAX];
  const char *p1 = strchr(term, ':');
  const char *p2 = p1 ? strchr(p1 + 1, ':') : NULL;
  if (!p1 || !p2 || strchr(p2 + 1, ':'))
    return sf_fail(err, SF_ERR_ARG, "'%s': a range is START:END:xFACTOR or START:END:+STEP", term);
  copy_trimmed(term, p1, a);
  copy_trimmed(p1 + 1, p2, b);
  copy_trimmed(p2 + 1, term + strlen(term), c);
  int64_t start, end, step;
  SF_TRY(parse_count(a, noun, &start, err));
  SF_TRY(parse_count(b, noun, &end, err));
  if (end < start) return sf_fail(err, SF_ERR_ARG, "'%s': end %s is less than start %s", term, b, a);
  int geometric;
  if (c[0] == 'x' || c[0] == 'X' || c[0] == '*') {
    geometric = 1;
    sf_error e;
    if (sf_parse_i64(c + 1, "factor", &step, &e) != SF_OK || step < 2)
      return sf_fail(err, SF_ERR_ARG, "'%s': the factor '%s' must be an integer >= 2", term, c + 1);
    if (start == 0) return sf_fail(err, SF_ERR_ARG, "'%s': a geometric range cannot start at 0", term);
  } else if (c[0] == '+') {
    geometric = 0;
    sf_error e;
    if (sf_parse_count(c + 1, "step", &step, &e) != SF_OK || step < 1)
      return sf_fail(err, SF_ERR_ARG, "'%s': the step '%s' must be a count >= 1", term, c + 1);
  } else {
    return sf_fail(err, SF_ERR_ARG, "'%s': the step '%s' must be xFACTOR (geometric) or +STEP (arithmetic)",
                   term, c);
  }
  for (int64_t v = start;;) {
    SF_TRY(push_i64(vals, n, v, err));
    if (geometric) {
      if (v > end / step) break;
      v *= step;
    } else {
      if (v > end - step) break;
      v += step;
    }
    if (v > end) break;
  }
  return SF_OK;
}

static void format_value(int64_t v, sf_spec_value_kind kind, char *buf, size_t size) {
  if (kind == SF_VAL_GEN && v == SF_GEN_CANONICAL) snprintf(buf, size, "canonical");
  else snprintf(buf, size, "%lld", (long long)v);
}

sf_status sf_spec_parse_list(const char *text, sf_spec_value_kind kind, int64_t **vals, int32_t *n,
                             sf_error *err) {
  const char *noun = kind_noun[kind];
  if (!text) text = "";
  int32_t first_new = *n;
  const char *p = text;
  int any = 0;
  for (;;) {
    const char *comma = strchr(p, ',');
    const char *e = comma ? comma : p + strlen(p);
    char term[TERM_MAX];
    int len = copy_trimmed(p, e, term);
    if (len < 0) return sf_fail(err, SF_ERR_ARG, "a value is longer than %d characters", TERM_MAX - 1);
    if (len == 0) {
      if (!*text || (!comma && !any)) return sf_fail(err, SF_ERR_ARG, "expected a %s, got nothing", noun);
      return sf_fail(err, SF_ERR_ARG, "'%s': empty value in the list", text);
    }
    any = 1;
    int32_t before = *n;
    if (strchr(term, ':')) {
      SF_TRY(parse_range(term, noun, vals, n, err));
    } else if (kind == SF_VAL_GEN && !strcmp(term, "canonical")) {
      SF_TRY(push_i64(vals, n, SF_GEN_CANONICAL, err));
    } else {
      int64_t v;
      SF_TRY(parse_count(term, noun, &v, err));
      SF_TRY(push_i64(vals, n, v, err));
    }
    for (int32_t i = before; i < *n; i++) {
      int64_t v = (*vals)[i];
      if (kind == SF_VAL_GEN && v == SF_GEN_CANONICAL) continue;
      char pre[TERM_MAX + 4] = ""; /* name the range a bad value came from */
      if (strchr(term, ':')) snprintf(pre, sizeof pre, "'%s': ", term);
      if (kind != SF_VAL_CONTEXT && v < 1)
        return sf_fail(err, SF_ERR_ARG, "%s%s %lld is not allowed (must be >= 1)", pre, noun, (long long)v);
      if (v > kind_max[kind])
        return sf_fail(err, SF_ERR_ARG, "%s%s %lld is out of range (at most %lld)", pre, noun, (long long)v,
                       (long long)kind_max[kind]);
    }
    if (!comma) break;
    p = comma + 1;
  }
  /* No value twice (its items would share keys). */
  for (int32_t i = first_new > 0 ? first_new : 1; i < *n; i++)
    for (int32_t j = 0; j < i; j++)
      if ((*vals)[i] == (*vals)[j]) {
        char buf[32];
        format_value((*vals)[i], kind, buf, sizeof buf);
        return sf_fail(err, SF_ERR_ARG, "%s %s is listed twice", noun, buf);
      }
  return SF_OK;
}

/* ---- problem selections ------------------------------------------------ */

static sf_status problem_index(const char *s, const char *term, int64_t *out, sf_error *err) {
  sf_error e;
  if (!*s || sf_parse_i64(s, "problem", out, &e) != SF_OK || *s == '+' || *s == '-')
    return sf_fail(err, SF_ERR_ARG,
                   "'%s' is not a problem (an index 0..%d, a range A-B, HumanEval/N or all)", term,
                   SF_SPEC_PROBLEMS - 1);
  return SF_OK;
}

sf_status sf_spec_parse_problems(const char *text, int32_t **ids, int32_t *n, int *all, sf_error *err) {
  if (!text) text = "";
  char whole[TERM_MAX];
  int wl = copy_trimmed(text, text + strlen(text), whole);
  if (wl == 0) return sf_fail(err, SF_ERR_ARG, "expected a problem selection, got nothing");
  if (wl > 0 && !strcmp(whole, "all")) {
    if (*n > 0 || *all)
      return sf_fail(err, SF_ERR_ARG, "'all' cannot be combined with other problems");
    int32_t *p = realloc(*ids, SF_SPEC_PROBLEMS * sizeof *p);
    if (!p) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < SF_SPEC_PROBLEMS; i++) p[i] = i;
    *ids = p;
    *n = SF_SPEC_PROBLEMS;
    *all = 1;
    return SF_OK;
  }
  if (*all) return sf_fail(err, SF_ERR_ARG, "'all' cannot be combined with other problems");
  int64_t *vals = NULL;
  int32_t nv = 0;
  sf_status rc = SF_OK;
  const char *p = text;
  for (;;) {
    const char *comma = strchr(p, ',');
    const char *e = comma ? comma : p + strlen(p);
    char term[TERM_MAX];
    int len = copy_trimmed(p, e, term);
    if (len < 0) { rc = sf_fail(err, SF_ERR_ARG, "a value is longer than %d characters", TERM_MAX - 1); break; }
    if (len == 0) { rc = sf_fail(err, SF_ERR_ARG, "'%s': empty value in the list", text); break; }
    if (!strcmp(term, "all")) { rc = sf_fail(err, SF_ERR_ARG, "'all' cannot be combined with other problems"); break; }
    int32_t before = nv;
    const char *dash = strchr(term + 1, '-');
    if (!strncmp(term, "HumanEval/", 10)) {
      int64_t v;
      if ((rc = problem_index(term + 10, term, &v, err)) != SF_OK) break;
      if ((rc = push_i64(&vals, &nv, v, err)) != SF_OK) break;
    } else if (strchr(term, ':')) {
      if ((rc = parse_range(term, "problem index", &vals, &nv, err)) != SF_OK) break;
    } else if (term[0] != '-' && dash) {
      char a[TERM_MAX], b[TERM_MAX];
      copy_trimmed(term, dash, a);
      copy_trimmed(dash + 1, term + len, b);
      int64_t lo, hi;
      if ((rc = problem_index(a, term, &lo, err)) != SF_OK) break;
      if ((rc = problem_index(b, term, &hi, err)) != SF_OK) break;
      if (hi < lo) { rc = sf_fail(err, SF_ERR_ARG, "'%s': range end %s is before start %s", term, b, a); break; }
      if (hi >= SF_SPEC_PROBLEMS) {
        rc = sf_fail(err, SF_ERR_ARG, "'%s': problem %lld is out of range 0..%d", term, (long long)hi,
                     SF_SPEC_PROBLEMS - 1);
        break;
      }
      for (int64_t v = lo; v <= hi && rc == SF_OK; v++) rc = push_i64(&vals, &nv, v, err);
      if (rc != SF_OK) break;
    } else {
      int64_t v;
      if ((rc = problem_index(term, term, &v, err)) != SF_OK) break;
      if ((rc = push_i64(&vals, &nv, v, err)) != SF_OK) break;
    }
    for (int32_t i = before; i < nv && rc == SF_OK; i++)
      if (vals[i] < 0 || vals[i] >= SF_SPEC_PROBLEMS)
        rc = sf_fail(err, SF_ERR_ARG, "'%s': problem %lld is out of range 0..%d", term, (long long)vals[i],
                     SF_SPEC_PROBLEMS - 1);
    if (rc != SF_OK || !comma) break;
    p = comma + 1;
  }
  if (rc == SF_OK && *n + nv > SF_SPEC_PROBLEMS * 4)
    rc = sf_fail(err, SF_ERR_ARG, "too many problems");
  if (rc == SF_OK) {
    int32_t *q = realloc(*ids, (size_t)(*n + nv) * sizeof *q + sizeof *q);
    if (!q) rc = sf_fail(err, SF_ERR_NOMEM, "out of memory");
    else {
      *ids = q;
      for (int32_t i = 0; i < nv && rc == SF_OK; i++) {
        for (int32_t j = 0; j < *n; j++)
          if (q[j] == vals[i]) {
            rc = sf_fail(err, SF_ERR_ARG, "problem %lld is selected twice", (long long)vals[i]);
            break;
          }
        if (rc == SF_OK) q[(*n)++] = (int32_t)vals[i];
      }
    }
  }
  free(vals);
  return rc;
}

sf_status sf_spec_parse_duration(const char *text, double *out, sf_error *err) {
  char t[TERM_MAX];
  int len = text ? copy_trimmed(text, text + strlen(text), t) : 0;
  if (len <= 0) return sf_fail(err, SF_ERR_ARG, "expected a duration in seconds, got nothing");
  double mul = 1;
  if (t[len - 1] == 's') t[--len] = '\0';
  else if (t[len - 1] == 'm') mul = 60, t[--len] = '\0';
  else if (t[len - 1] == 'h') mul = 3600, t[--len] = '\0';
  double v;
  sf_error e;
  if (len == 0 || sf_parse_double(t, "duration", &v, &e) != SF_OK)
    return sf_fail(err, SF_ERR_ARG, "'%s' is not a duration (seconds, or a number with s, m or h)", text);
  if (v < 0) return sf_fail(err, SF_ERR_ARG, "'%s': a duration cannot be negative", text);
  *out = v * mul;
  if (!isfinite(*out)) return sf_fail(err, SF_ERR_ARG, "'%s' is out of range", text);
  return SF_OK;
}

/* ---- strings ----------------------------------------------------------- */

void sf_sb_printf(sf_strbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->len;
    int k = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
    va_end(ap);
    if (k < 0) { b->oom = 1; return; }
    if (b->s && (size_t)k < room) { b->len += (size_t)k; return; }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= (size_t)k) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) { b->oom = 1; return; }
    b->s = p;
    b->cap = cap;
  }
}

void sf_sb_quoted(sf_strbuf *b, const char *s) {
  sf_sb_printf(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') sf_sb_printf(b, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f) sf_sb_printf(b, "\\x%02x", *p);
    else sf_sb_printf(b, "%c", *p);
  }
  sf_sb_printf(b, "\"");
}

char *sf_sb_take(sf_strbuf *b) {
  if (b->oom || !b->s) {
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
    if (!b->oom) return calloc(1, 1);
    return NULL;
  }
  char *s = b->s;
  b->s = NULL;
  b->len = b->cap = 0;
  return s;
}
