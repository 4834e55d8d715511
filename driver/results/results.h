/* The HDF5 results file (DESIGN "Results file"; schema in
 * docs/results-schema.md) and the journal that makes it durable.
 *
 * Writer: rank 0 opens RESULTS.h5 once, hands out work, and calls
 * sf_results_write_item() for every finished item. On return the item is
 * durable: its records are in RESULTS.h5.journal (one framed, CRC-checked
 * record, written with write() and fsync()) and appended to the HDF5 tables
 * (then H5Fflush). The journal is the source of truth; the .h5 is rebuilt from
 * it whenever the previous run did not close cleanly. A clean close verifies
 * the .h5 and removes the journal.
 *
 * Reader: sf_results_read() loads and validates a whole file; errors are one
 * line naming the file ("results.h5: not an HDF5 file").
 *
 * Library code: nothing here prints or exits; HDF5's own error printing is
 * switched off inside these calls. Not thread-safe (one writer thread). */
#ifndef SCANFLASH_DRIVER_RESULTS_H
#define SCANFLASH_DRIVER_RESULTS_H

#include <stdint.h>

#include "scanflash/error.h"
#include "scanflash/records.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SF_RESULTS_SCHEMA_VERSION 1

/* One row of /devices: a device a rank ran on (the worker fills it). */
typedef struct sf_results_device {
  int32_t rank;
  int32_t device;               /* device index on its host (CUDA ordinal); -1 = CPU */
  char host[SF_HOST_LEN];
  char backend[8];              /* "cuda", "cpu" */
  char name[96];                /* "NVIDIA H100 80GB HBM3" */
  char uuid[48];                /* "GPU-xxxxxxxx-..." */
  int32_t cc_major, cc_minor;   /* compute capability */
  int32_t sm_count;
  int32_t sm_clock_mhz, mem_clock_mhz; /* maximum clocks */
  int32_t mem_bus_width_bits;
  int64_t memory_bytes, l2_bytes;
  int32_t driver_version, runtime_version; /* CUDA, e.g. 12040; 0 = none */
} sf_results_device;

/* One row of /problems: a HumanEval+ problem the sweep used. */
typedef struct sf_results_problem {
  int32_t index;                /* position in HumanEvalPlus.jsonl */
  char task_id[32];             /* "HumanEval/7" */
  int64_t prompt_tokens, solution_tokens;
  char prompt_sha256[65];       /* of the prompt's UTF-8 bytes */
} sf_results_problem;

/* One row of /items: the work item's config and its result, flattened into
 * one compound row in the file (result.key is item.key). */
typedef struct sf_results_item {
  sf_work_item item;
  sf_item_result result;
} sf_results_item;

/* Root attributes. Input to sf_results_open (NULL fields get the defaults
 * named); output of sf_results_read (never NULL there, "" when absent). */
typedef struct sf_results_provenance {
  const char *tool_version;     /* NULL: sf_version() */
  const char *git_sha;          /* NULL: sf_git_sha() */
  const char *build_features;   /* NULL: sf_build_features() */
  const char *spec_text;        /* the sweep spec as given (YAML text or flags) */
  const char *spec_sha256;      /* NULL: sha256 of spec_text */
  const char *dataset_sha256;   /* HumanEvalPlus.jsonl.gz; NULL = "" */
  const char *tokenizer_sha256; /* tokenizer.json; NULL = "" */
  int32_t world_size;           /* MPI ranks */
  const char *slurm_job_id;     /* NULL: $SLURM_JOB_ID; attribute omitted when empty */
  const char *created;          /* NULL: now, ISO 8601 UTC */
  const char *host;             /* NULL: gethostname() */
  const char *sources;          /* merge: one line per input; omitted when empty */
} sf_results_provenance;

typedef enum sf_results_mode {
  SF_RESULTS_CREATE = 0,        /* a new file; refuses an existing one unless SF_RESULTS_OVERWRITE */
  SF_RESULTS_RESUME = 1         /* continue a file (or start one when there is none) */
} sf_results_mode;

enum {
  SF_RESULTS_OVERWRITE = 1 << 0,    /* create: replace an existing file and journal */
  SF_RESULTS_RETRY_FAILED = 1 << 1  /* resume: error/timeout items are not finished */
};

/* What sf_results_open found (for the driver's log line). */
typedef struct sf_results_open_info {
  int fresh;                    /* a new file was started */
  int from_journal;             /* the previous run did not close cleanly: state from the journal */
  int rebuilt;                  /* the .h5 was rewritten (from the journal, or to drop retried rows) */
  int64_t torn_bytes;           /* bytes of a torn journal tail that were dropped */
  int64_t items;                /* keys with a result */
  int64_t finished;             /* of those, finished (is_finished) */
  int64_t to_retry;             /* of those, to be run again (interrupted; error/timeout with retry) */
} sf_results_open_info;

typedef struct sf_results sf_results;

/* Opens PATH for writing. CREATE: refuses an existing PATH or PATH.journal
 * unless flags has SF_RESULTS_OVERWRITE. RESUME: needs the same schema
 * version and, when prov gives a spec (spec_text or spec_sha256), the same
 * spec_sha256; the file keeps the provenance of the run that created it.
 * RESUME with neither PATH nor PATH.journal present starts a new file. */
sf_status sf_results_open(const char *path, const sf_results_provenance *prov, sf_results_mode mode,
                          int flags, sf_results **out, sf_error *err);

const sf_results_open_info *sf_results_info(const sf_results *r);

/* ok, oom, oom_predicted, skipped: finished. error, timeout: finished unless
 * retry_failed. interrupted (and anything unknown): never finished. */
int sf_results_status_finished(int32_t status, int retry_failed);

/* True when key has a result that is finished under this open's rules. */
int sf_results_is_finished(const sf_results *r, const char *key);
/* True when key has any result; its latest status in *status. */
int sf_results_lookup(const sf_results *r, const char *key, int32_t *status);

/* Records one item: durable on return (journal fsync'd, .h5 appended and
 * flushed). result->key must equal item->key; the key fields of the child
 * rows are set from it. A key that already has a result is replaced: its
 * /items row and all its child rows go, never two rows for one key. */
sf_status sf_results_write_item(sf_results *r, const sf_work_item *item, const sf_item_result *result,
                                const sf_repeat_result *repeats, int64_t n_repeats,
                                const sf_step_result *steps, int64_t n_steps,
                                const sf_kernel_result *kernels, int64_t n_kernels, sf_error *err);

/* Appends rows, durable on return. A device row equal to one already there
 * (rank, device, host, uuid) and a problem whose index is there are skipped. */
sf_status sf_results_write_devices(sf_results *r, const sf_results_device *rows, int64_t n,
                                   sf_error *err);
sf_status sf_results_write_problems(sf_results *r, const sf_results_problem *rows, int64_t n,
                                    sf_error *err);

/* Clean close: writes back retried rows that were not run again, closes
 * and fsyncs the .h5, reads it back to verify it, then removes the journal.
 * Frees r whatever happens (on failure the journal stays for --resume). */
sf_status sf_results_close(sf_results *r, sf_error *err);

/* Releases r without a clean close (the journal stays): for error paths. */
void sf_results_abort(sf_results *r);

/* ---- reading ---- */

typedef struct sf_results_data {
  int32_t schema_version;
  sf_results_provenance prov;   /* strings owned by the data */
  sf_results_device *devices;   int64_t n_devices;
  sf_results_problem *problems; int64_t n_problems;
  sf_results_item *items;       int64_t n_items;
  sf_repeat_result *repeats;    int64_t n_repeats;
  sf_step_result *steps;        int64_t n_steps;
  sf_kernel_result *kernels;    int64_t n_kernels;
} sf_results_data;

enum {
  /* Accept another schema_version and read the fields this build knows by
   * name (missing fields read as 0 / ""): merge --force. */
  SF_RESULTS_READ_LENIENT = 1 << 0
};

/* Reads and validates a whole results file. One-line errors:
 *   "PATH: cannot open: No such file or directory"
 *   "PATH: not an HDF5 file"
 *   "PATH: corrupt or truncated HDF5 file (HDF5: ...)"
 *   "PATH: not a scanflash results file (no schema_version attribute)"
 *   "PATH: schema_version 2 is not supported (this scanflash reads 1)"
 *   "PATH: missing table /items"
 *   "PATH: /items: missing field 'ttft_s'"
 *   "PATH: /items: cannot read rows (corrupt or truncated file)" */
sf_status sf_results_read(const char *path, int flags, sf_results_data *out, sf_error *err);
void sf_results_data_free(sf_results_data *d);

/* Reads only schema_version and spec_sha256 (for merge's checks). */
sf_status sf_results_probe(const char *path, int32_t *schema_version, char spec_sha256[65],
                           sf_error *err);

/* ---- merging ---- */

typedef void (*sf_results_note_fn)(void *ctx, const char *line);

typedef struct sf_results_merge_stats {
  int64_t items, duplicates, repeats, steps, kernels, devices, problems;
} sf_results_merge_stats;

/* Joins shards into OUTPUT (written to OUTPUT.tmp, then renamed). Keys are
 * unique: a key in several inputs keeps one result (ok first, else the
 * latest t_end) with its child rows, and note() is told which. Mixed schema
 * versions or spec_sha256 are refused unless force. An input with a journal
 * beside it (a run that did not close cleanly) is read from its journal.
 * Provenance comes from the first input, with a "sources" attribute listing
 * every input. OUTPUT.journal must not exist (OUTPUT would be an unfinished
 * run's file). */
sf_status sf_results_merge(const char *const *inputs, int n_inputs, const char *output, int force,
                           sf_results_note_fn note, void *note_ctx, sf_results_merge_stats *stats,
                           sf_error *err);

#ifdef __cplusplus
}
#endif
#endif
