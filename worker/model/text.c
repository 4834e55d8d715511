#include "model/text.h"

const char *sf_printable(const char *s) {
  if (!s) return "(null)";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return "(unprintable)";
  return s;
}
