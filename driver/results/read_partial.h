/* Reading a results file for analysis (scanflash-report): what
 * sf_results_read does, plus the two cases where a report can still be made
 * from a file the strict reader refuses:
 *
 *  - a journal beside the file (a run that is still going or did not close
 *    cleanly): the journal is read instead, as merge does (it holds records
 *    the .h5 may lack, and a live .h5 is locked by HDF5);
 *  - a schema-v1 file that lacks tables, fields or root attributes: read
 *    leniently; each missing table or field is named through note(), missing
 *    tables read as empty and missing float fields as NaN (not 0), so that a
 *    report shows them as missing rather than as measured zeros.
 *
 * Everything else (no file, not HDF5, corrupt, another schema version
 * without SF_RESULTS_READ_LENIENT) fails with sf_results_read's one-line
 * error. Library code: prints nothing. */
#ifndef SCANFLASH_DRIVER_RESULTS_READ_PARTIAL_H
#define SCANFLASH_DRIVER_RESULTS_READ_PARTIAL_H

#include "results/results.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What sf_results_read_partial did (may be NULL). */
typedef struct sf_results_partial_info {
  int from_journal;      /* read from PATH.journal */
  int partial;           /* tables or fields were missing (named through note) */
  int other_schema;      /* schema_version != 1, read by field name (LENIENT) */
} sf_results_partial_info;

/* flags: SF_RESULTS_READ_LENIENT also reads other schema versions by field
 * name (noted). note lines name the file: "PATH: missing table /kernels". */
sf_status sf_results_read_partial(const char *path, int flags, sf_results_data *out, sf_results_note_fn note,
                                  void *note_ctx, sf_results_partial_info *info, sf_error *err);

#ifdef __cplusplus
}
#endif
#endif
