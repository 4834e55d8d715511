/* PLACEHOLDER: replaced by the real implementation. */
#include "cpu_ops.h"

SF_CPU_OP(attention, sf_attention_params) {
  (void)ctx; (void)p;
  return sf_fail(err, SF_ERR_UNSUPPORTED, "attention: placeholder");
}

