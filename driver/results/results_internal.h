/* Internals of sf_results: tables and their fields, the in-memory state a
 * journal or a file is replayed into, the journal, and the HDF5 layer. */
#ifndef SCANFLASH_DRIVER_RESULTS_INTERNAL_H
#define SCANFLASH_DRIVER_RESULTS_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "results/results.h"

/* ---- key map: key string -> int64 ---- */

typedef struct rs_keymap {
  char (*keys)[SF_KEY_LEN];
  int64_t *vals;
  int64_t cap, count; /* cap: power of two or 0 */
} rs_keymap;

/* Value of key, or -1. */
int64_t rs_keymap_get(const rs_keymap *m, const char *key);
/* Inserts or updates; SF_ERR_NOMEM on failure. */
sf_status rs_keymap_put(rs_keymap *m, const char *key, int64_t val, sf_error *err);
void rs_keymap_free(rs_keymap *m);

/* ---- tables ---- */

typedef enum rs_table { T_DEVICES, T_PROBLEMS, T_ITEMS, T_REPEATS, T_STEPS, T_KERNELS, T_COUNT } rs_table;

typedef enum rs_fkind { FK_I32, FK_I64, FK_U64, FK_F64, FK_STR, FK_STATUS, FK_KIND } rs_fkind;

typedef struct rs_field {
  const char *name;
  size_t offset, size;
  rs_fkind kind;
  const char *unit; /* NULL: none */
} rs_field;

typedef struct rs_table_desc {
  const char *name;        /* "items": the dataset is /items */
  const char *description;
  size_t row_size;         /* the C struct */
  const rs_field *fields;
  int n_fields;
  hsize_t chunk_rows;
} rs_table_desc;

extern const rs_table_desc rs_tables[T_COUNT];

/* Copies one row field by field into a zeroed dst: padding is zero, strings
 * are NUL-terminated and zero after the NUL (deterministic bytes). */
void rs_row_copy(rs_table t, void *dst, const void *src);

/* ---- provenance (owned) ---- */

typedef struct rs_prov {
  int32_t schema_version, world_size;
  char *tool_version, *git_sha, *build_features, *spec_text, *spec_sha256, *dataset_sha256,
      *tokenizer_sha256, *slurm_job_id, *created, *host, *sources;
} rs_prov;

/* Fills defaults (this build's versions, time, host, $SLURM_JOB_ID). */
sf_status rs_prov_from(rs_prov *p, const sf_results_provenance *in, sf_error *err);
sf_status rs_prov_copy(rs_prov *dst, const rs_prov *src, sf_error *err);
void rs_prov_view(const rs_prov *p, sf_results_provenance *out);
void rs_prov_free(rs_prov *p);
/* Each string field in a fixed order, for (de)serialisation and attributes. */
enum { RS_PROV_NSTR = 11 };
char **rs_prov_str(rs_prov *p, int i);
const char *rs_prov_str_name(int i);

/* ---- one item's records ---- */

/* The payload of an item frame, in one buffer with room for the frame
 * header in front: [frame header][counts][work item][result][repeats]
 * [steps][kernels]. The pointers point into buf. */
typedef struct rs_rec {
  unsigned char *buf;      /* malloc'd; NULL = empty slot */
  size_t size;             /* header + payload */
  sf_work_item *item;
  sf_item_result *result;
  sf_repeat_result *repeats;
  sf_step_result *steps;
  sf_kernel_result *kernels;
  int64_t n_repeats, n_steps, n_kernels;
} rs_rec;

enum { RS_FRAME_HDR = 24 };

sf_status rs_rec_build(rs_rec *rec, const sf_work_item *item, const sf_item_result *result,
                       const sf_repeat_result *repeats, int64_t n_repeats, const sf_step_result *steps,
                       int64_t n_steps, const sf_kernel_result *kernels, int64_t n_kernels,
                       sf_error *err);
/* Takes ownership of buf (header + payload); checks the counts fit. */
sf_status rs_rec_parse(rs_rec *rec, unsigned char *buf, size_t size, sf_error *err);
void rs_rec_free(rs_rec *rec);

/* ---- state: what a journal or a file holds, keys unique ---- */

typedef struct rs_state {
  rs_prov prov;
  int have_prov;
  sf_results_device *devices; int64_t n_devices, cap_devices;
  sf_results_problem *problems; int64_t n_problems, cap_problems;
  rs_rec *items; int64_t n_items, cap_items; /* replaced slots have buf NULL */
  rs_keymap index;                           /* key -> slot in items */
  rs_keymap problem_index;                   /* problem index (as text) -> row */
} rs_state;

void rs_state_init(rs_state *s);
void rs_state_free(rs_state *s);
/* Adds an item; a key already there is replaced (last wins). Takes rec. */
sf_status rs_state_add_item(rs_state *s, rs_rec *rec, sf_error *err);
/* Adds rows not already there; *added (may be NULL) = how many were new,
 * and when new_rows is non-NULL they are copied there in order. */
sf_status rs_state_add_devices(rs_state *s, const sf_results_device *rows, int64_t n,
                               sf_results_device *new_rows, int64_t *added, sf_error *err);
sf_status rs_state_add_problems(rs_state *s, const sf_results_problem *rows, int64_t n,
                                sf_results_problem *new_rows, int64_t *added, sf_error *err);
/* The live item of key, or NULL. */
rs_rec *rs_state_find(const rs_state *s, const char *key);
int64_t rs_state_live_items(const rs_state *s);
/* Builds a state from a file's data (children grouped by key; rows of keys
 * without an item are dropped). */
sf_status rs_state_from_data(rs_state *s, const sf_results_data *d, sf_error *err);

/* ---- journal ---- */

typedef enum rs_frame_type {
  J_HEADER = 1,     /* format version, schema version, record sizes */
  J_PROV = 2,       /* provenance */
  J_DEVICES = 3,    /* sf_results_device[] */
  J_PROBLEMS = 4,   /* sf_results_problem[] */
  J_ITEM = 5        /* one item with all its records */
} rs_frame_type;

typedef struct rs_journal_read_info {
  int have_header;   /* 0: empty or torn before the header was durable */
  int64_t valid_end; /* bytes of whole, valid frames */
  int64_t file_size;
} rs_journal_read_info;

/* Replays PATH into s (fresh state). A torn tail is not an error (see
 * info->valid_end); a bad frame followed by valid ones is. */
sf_status rs_journal_read(const char *path, rs_state *s, rs_journal_read_info *info, sf_error *err);
/* Writes a complete journal for s to TMP and renames it to PATH (atomic):
 * header, provenance, devices, problems, every live item. */
sf_status rs_journal_write_state(const char *path, const char *tmp, const rs_state *s, sf_error *err);
/* Opens PATH for appending, truncated to valid_end (-1: its end). */
sf_status rs_journal_open_append(const char *path, int64_t valid_end, int *fd, sf_error *err);
/* Appends one frame and fsyncs. buf has RS_FRAME_HDR bytes of room first. */
sf_status rs_journal_append(int fd, const char *path, rs_frame_type type, unsigned char *buf,
                            size_t size, sf_error *err);
/* A frame buffer (header room + payload) for rows of a table. */
unsigned char *rs_frame_rows(rs_table t, const void *rows, int64_t n, size_t *size);

/* ---- HDF5 ---- */

/* A root string longer than this (spec_text, sources) is written as a scalar
 * string dataset of the same name instead of an attribute. */
enum { RS_ATTR_MAX = 16384 };

/* Saves HDF5's automatic error printing and turns it off; restores it. */
typedef struct rs_h5quiet {
  H5E_auto2_t fn;
  void *data;
} rs_h5quiet;
void rs_h5_quiet(rs_h5quiet *q);
void rs_h5_loud(const rs_h5quiet *q);
/* The innermost message on HDF5's error stack ("" when none). */
void rs_h5_last_error(char *buf, size_t size);

typedef struct rs_h5 {
  hid_t file;
  hid_t ds[T_COUNT];
  hid_t mtype[T_COUNT];    /* memory types of the C rows */
  hsize_t rows[T_COUNT];
} rs_h5;

/* The compound type of a table: in memory (the C struct; with present
 * non-NULL, only the fields where present[i]) or in the file (packed,
 * little-endian). H5I_INVALID_HID on failure. */
hid_t rs_h5_type(rs_table t, int file, const unsigned char *present);

/* Creates PATH (truncating) with the root attributes and empty tables. */
sf_status rs_h5_create(const char *path, const rs_prov *prov, rs_h5 *h, sf_error *err);
sf_status rs_h5_open_append(const char *path, rs_h5 *h, sf_error *err);
sf_status rs_h5_append(rs_h5 *h, const char *path, rs_table t, const void *rows, int64_t n,
                       sf_error *err);
/* Appends an item's /items row and child rows. */
sf_status rs_h5_append_rec(rs_h5 *h, const char *path, const rs_rec *rec, sf_error *err);
sf_status rs_h5_flush(rs_h5 *h, const char *path, sf_error *err);
/* Closes everything; SF_ERR_IO when HDF5 reports a failure. */
sf_status rs_h5_close(rs_h5 *h, const char *path, sf_error *err);

/* Writes s to TMP (items for which skip(ctx, rec) is true left out), fsyncs
 * it and renames it over PATH. */
typedef int (*rs_skip_fn)(void *ctx, const rs_rec *rec);
sf_status rs_h5_write_state(const char *path, const char *tmp, const rs_state *s, rs_skip_fn skip,
                            void *ctx, sf_error *err);

/* ---- files ---- */

sf_status rs_fsync_path(const char *path, sf_error *err);
sf_status rs_fsync_dir_of(const char *path, sf_error *err);
/* malloc'd "PATH" + suffix, or NULL. */
char *rs_path_plus(const char *path, const char *suffix);

#endif
