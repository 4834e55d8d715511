/* scanflash merge: join result shards into one file, keys unique. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/results_internal.h"
#include "scanflash/files.h"

enum { MAX_NOTES = 20 };

static void notef(sf_results_note_fn note, void *ctx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void notef(sf_results_note_fn note, void *ctx, const char *fmt, ...) {
  if (!note) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  note(ctx, line);
}

/* An input's state: from its journal when one is beside it (a run that did
 * not close cleanly: the journal has records the .h5 may lack). */
static sf_status load_input(const char *path, int lenient, rs_state *st, int *from_journal, sf_error *err) {
  *from_journal = 0;
  char *jpath = rs_path_plus(path, ".journal");
  if (!jpath) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  sf_status rc = SF_OK;
  if (sf_file_exists(jpath)) {
    rs_journal_read_info ji;
    rc = rs_journal_read(jpath, st, &ji, err);
    if (rc == SF_OK && ji.have_header) {
      *from_journal = 1;
      free(jpath);
      return SF_OK;
    }
    if (rc == SF_OK) rs_state_free(st);
  }
  free(jpath);
  if (rc != SF_OK) return rc;
  sf_results_data d;
  SF_TRY(sf_results_read(path, lenient ? SF_RESULTS_READ_LENIENT : 0, &d, err));
  rc = rs_state_from_data(st, &d, err);
  sf_results_data_free(&d);
  return rc;
}

static int status_rank(int32_t s) {
  switch (s) {
    case SF_STATUS_OK: return 3;
    case SF_STATUS_OOM:
    case SF_STATUS_OOM_PREDICTED:
    case SF_STATUS_SKIPPED: return 2;
    case SF_STATUS_ERROR:
    case SF_STATUS_TIMEOUT: return 1;
    default: return 0;
  }
}

/* True when b should replace a: ok first, then finished, then the later t_end. */
static int better(const rs_rec *b, const rs_rec *a) {
  int rb = status_rank(b->result->status), ra = status_rank(a->result->status);
  if (rb != ra) return rb > ra;
  return b->result->t_end > a->result->t_end;
}

static sf_status append_str(char **s, size_t *len, const char *add, sf_error *err) {
  size_t n = strlen(add);
  char *ns = realloc(*s, *len + n + 1);
  if (!ns) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  memcpy(ns + *len, add, n + 1);
  *s = ns;
  *len += n;
  return SF_OK;
}

/* One line per input; an input that was itself merged lists its sources
 * below it, indented. */
static sf_status add_source(char **s, size_t *len, const char *path, const rs_state *st, sf_error *err) {
  char line[2048];
  snprintf(line, sizeof line, "%s created=%s slurm_job_id=%s items=%lld\n", path, st->prov.created,
           st->prov.slurm_job_id[0] ? st->prov.slurm_job_id : "-", (long long)rs_state_live_items(st));
  SF_TRY(append_str(s, len, line, err));
  const char *src = st->prov.sources;
  while (src && *src) {
    const char *nl = strchr(src, '\n');
    size_t n = nl ? (size_t)(nl - src) : strlen(src);
    if (n) {
      snprintf(line, sizeof line, "  %.*s\n", (int)(n < 2000 ? n : 2000), src);
      SF_TRY(append_str(s, len, line, err));
    }
    src += n + (nl ? 1 : 0);
  }
  return SF_OK;
}

sf_status sf_results_merge(const char *const *inputs, int n_inputs, const char *output, int force,
                           sf_results_note_fn note, void *note_ctx, sf_results_merge_stats *stats,
                           sf_error *err) {
  sf_results_merge_stats st0;
  if (!stats) stats = &st0;
  memset(stats, 0, sizeof *stats);
  if (n_inputs < 1) return sf_fail(err, SF_ERR_ARG, "merge: no input files");
  if (!output || !output[0]) return sf_fail(err, SF_ERR_ARG, "merge: no output file (-o)");
  char *ojournal = rs_path_plus(output, ".journal"), *otmp = rs_path_plus(output, ".tmp");
  if (!ojournal || !otmp) {
    free(ojournal);
    free(otmp);
    return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  }
  rs_h5quiet q;
  rs_h5_quiet(&q);
  sf_status rc = SF_OK;
  rs_state out;
  rs_state_init(&out);
  rs_keymap origin = {0}; /* key -> input it was kept from */
  char *sources = NULL;
  size_t sources_len = 0;
  int64_t dup_notes = 0;
  int32_t first_schema = 0;
  char first_sha[65] = "";

  if (sf_file_exists(ojournal)) {
    rc = sf_fail(err, SF_ERR_ARG, "%s: exists, so %s belongs to an unfinished run; resume it or move it aside", ojournal,
                 output);
    goto done;
  }
  /* Schema versions and specs first, before reading any table. */
  for (int i = 0; i < n_inputs && rc == SF_OK; i++) {
    int32_t schema = 0;
    char sha[65] = "";
    char *jp = rs_path_plus(inputs[i], ".journal");
    int done_probe = 0;
    if (jp && sf_file_exists(jp)) {
      rs_state js;
      rs_journal_read_info ji;
      rc = rs_journal_read(jp, &js, &ji, err);
      if (rc == SF_OK && ji.have_header) {
        schema = js.prov.schema_version;
        snprintf(sha, sizeof sha, "%s", js.prov.spec_sha256);
        done_probe = 1;
      }
      if (rc == SF_OK) rs_state_free(&js);
    }
    free(jp);
    if (rc == SF_OK && !done_probe) rc = sf_results_probe(inputs[i], &schema, sha, err);
    if (rc != SF_OK) break;
    if (i == 0) {
      first_schema = schema;
      snprintf(first_sha, sizeof first_sha, "%s", sha);
      continue;
    }
    if (schema != first_schema) {
      if (!force) {
        rc = sf_fail(err, SF_ERR_FORMAT, "mixed schema versions: %s has %d, %s has %d (use --force to merge anyway)",
                     inputs[0], first_schema, inputs[i], schema);
        break;
      }
      notef(note, note_ctx, "%s: schema_version %d, %s: %d; merging anyway (--force)", inputs[0], first_schema, inputs[i],
            schema);
    }
    if (strcmp(sha, first_sha)) {
      if (!force) {
        rc = sf_fail(err, SF_ERR_FORMAT,
                     "%s and %s come from different specs (spec_sha256 %.12s... vs %.12s...); use --force to merge "
                     "anyway",
                     inputs[0], inputs[i], first_sha, sha);
        break;
      }
      notef(note, note_ctx, "%s and %s come from different specs; merging anyway (--force)", inputs[0], inputs[i]);
    }
  }

  for (int i = 0; i < n_inputs && rc == SF_OK; i++) {
    rs_state in;
    int from_journal;
    rc = load_input(inputs[i], force, &in, &from_journal, err);
    if (rc != SF_OK) break;
    if (from_journal)
      notef(note, note_ctx, "%s: did not close cleanly; reading its journal %s.journal", inputs[i], inputs[i]);
    if (i == 0) {
      rc = rs_prov_copy(&out.prov, &in.prov, err);
      out.have_prov = 1;
      out.prov.schema_version = SF_RESULTS_SCHEMA_VERSION;
    }
    if (rc == SF_OK) rc = add_source(&sources, &sources_len, inputs[i], &in, err);
    if (rc == SF_OK) rc = rs_state_add_devices(&out, in.devices, in.n_devices, NULL, NULL, err);
    if (rc == SF_OK) rc = rs_state_add_problems(&out, in.problems, in.n_problems, NULL, NULL, err);
    for (int64_t k = 0; k < in.n_items && rc == SF_OK; k++) {
      rs_rec *rec = &in.items[k];
      if (!rec->buf) continue;
      rs_rec *have = rs_state_find(&out, rec->item->key);
      if (have) {
        stats->duplicates++;
        int keep_new = better(rec, have);
        int64_t from = rs_keymap_get(&origin, rec->item->key);
        if (dup_notes++ < MAX_NOTES)
          notef(note, note_ctx, "key %s is in %s (%s) and %s (%s); kept the one from %s", rec->item->key,
                inputs[from], sf_item_status_name((sf_item_status)have->result->status), inputs[i],
                sf_item_status_name((sf_item_status)rec->result->status), keep_new ? inputs[i] : inputs[from]);
        if (!keep_new) continue;
      }
      rc = rs_keymap_put(&origin, rec->item->key, i, err);
      if (rc == SF_OK) rc = rs_state_add_item(&out, rec, err); /* takes rec; replaces the old one */
    }
    rs_state_free(&in);
  }
  if (rc == SF_OK && dup_notes > MAX_NOTES)
    notef(note, note_ctx, "... and %lld more duplicate keys", (long long)(dup_notes - MAX_NOTES));
  if (rc == SF_OK) {
    free(out.prov.sources);
    out.prov.sources = sources;
    sources = NULL;
    if (sources_len && out.prov.sources[sources_len - 1] == '\n') out.prov.sources[sources_len - 1] = '\0';
    rc = rs_h5_write_state(output, otmp, &out, NULL, NULL, err);
  }
  if (rc == SF_OK) {
    stats->items = rs_state_live_items(&out);
    stats->devices = out.n_devices;
    stats->problems = out.n_problems;
    for (int64_t k = 0; k < out.n_items; k++) {
      if (!out.items[k].buf) continue;
      stats->repeats += out.items[k].n_repeats;
      stats->steps += out.items[k].n_steps;
      stats->kernels += out.items[k].n_kernels;
    }
  }
done:
  free(sources);
  rs_keymap_free(&origin);
  rs_state_free(&out);
  free(ojournal);
  free(otmp);
  rs_h5_loud(&q);
  return rc;
}
