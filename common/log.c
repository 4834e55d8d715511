#include "scanflash/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Process-wide by nature (stderr is), so plain statics are right here. */
static sf_log_level g_level = SF_LOG_INFO;
static int g_rank = -1;

void sf_log_set_level(sf_log_level level) { g_level = level; }
void sf_log_set_rank(int rank) { g_rank = rank; }

void sf_log_level_from_env(void) {
  const char *v = getenv("SCANFLASH_LOG");
  if (!v) return;
  if (!strcmp(v, "error")) g_level = SF_LOG_ERROR;
  else if (!strcmp(v, "warn")) g_level = SF_LOG_WARN;
  else if (!strcmp(v, "info")) g_level = SF_LOG_INFO;
  else if (!strcmp(v, "debug")) g_level = SF_LOG_DEBUG;
}

void sf_log(sf_log_level level, const char *fmt, ...) {
  if (level > g_level) return;
  static const char *names[] = {"error", "warning", "info", "debug"};
  char line[2048];
  int n = 0;
  if (g_rank >= 0) n = snprintf(line, sizeof line, "scanflash[%d]: %s: ", g_rank, names[level]);
  else n = snprintf(line, sizeof line, "scanflash: %s: ", names[level]);
  va_list ap;
  va_start(ap, fmt);
  if (n >= 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  /* One fputs per line so lines from ranks sharing a terminal do not interleave. */
  size_t len = strlen(line);
  if (len + 1 < sizeof line) { line[len] = '\n'; line[len + 1] = '\0'; }
  fputs(line, stderr);
}
