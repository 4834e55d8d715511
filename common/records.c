#include "scanflash/records.h"

const char *sf_item_kind_name(sf_item_kind k) {
  switch (k) {
    case SF_ITEM_GENERATE: return "generate";
    case SF_ITEM_PREFILL: return "prefill";
    case SF_ITEM_KERNELS: return "kernels";
  }
  return "unknown";
}

const char *sf_item_status_name(sf_item_status s) {
  switch (s) {
    case SF_STATUS_OK: return "ok";
    case SF_STATUS_OOM: return "oom";
    case SF_STATUS_OOM_PREDICTED: return "oom_predicted";
    case SF_STATUS_ERROR: return "error";
    case SF_STATUS_TIMEOUT: return "timeout";
    case SF_STATUS_SKIPPED: return "skipped";
    case SF_STATUS_INTERRUPTED: return "interrupted";
  }
  return "unknown";
}
