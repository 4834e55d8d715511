/* PLACEHOLDER: replaced by the real implementation. */
#include "cpu_ops.h"

SF_CPU_OP(selective_scan, sf_selective_scan_params) {
  (void)ctx; (void)p;
  return sf_fail(err, SF_ERR_UNSUPPORTED, "selective_scan: placeholder");
}

SF_CPU_OP(selective_scan_naive, sf_selective_scan_params) {
  (void)ctx; (void)p;
  return sf_fail(err, SF_ERR_UNSUPPORTED, "selective_scan_naive: placeholder");
}

