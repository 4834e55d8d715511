#include "ops/types.h"

const char *sf_dtype_name(sf_dtype t) {
  switch (t) {
    case SF_F32: return "f32";
    case SF_BF16: return "bf16";
    case SF_F16: return "f16";
  }
  return "unknown";
}
