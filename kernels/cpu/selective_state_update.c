/* PLACEHOLDER: replaced by the real implementation. */
#include "cpu_ops.h"

SF_CPU_OP(selective_state_update, sf_selective_state_update_params) {
  (void)ctx; (void)p;
  return sf_fail(err, SF_ERR_UNSUPPORTED, "selective_state_update: placeholder");
}

