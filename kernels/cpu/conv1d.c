/* PLACEHOLDER: replaced by the real implementation. */
#include "cpu_ops.h"

SF_CPU_OP(conv1d, sf_conv1d_params) {
  (void)ctx; (void)p;
  return sf_fail(err, SF_ERR_UNSUPPORTED, "conv1d: placeholder");
}

SF_CPU_OP(conv1d_update, sf_conv1d_update_params) {
  (void)ctx; (void)p;
  return sf_fail(err, SF_ERR_UNSUPPORTED, "conv1d_update: placeholder");
}

