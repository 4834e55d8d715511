/* The results file: write and read back every field; resume and
 * --retry-failed; rebuild from the journal when the .h5 is gone, truncated
 * or overwritten with garbage; a torn journal tail is dropped; never a
 * duplicate key; one-line errors for files that are not results files. */
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "results/results.h"
#include "results/results_internal.h"
#include "scanflash/files.h"
#include "test.h"

static char dir[] = "/tmp/sf_test_results_XXXXXX";
static uint64_t rng_state;

static double urand(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng_state >> 11) / 9007199254740992.0;
}

static const char *P(const char *name) {
  static char buf[256][1024]; /* a ring: paths stay valid for the whole test */
  static int k;
  k = (k + 1) % 256;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static const char *SPEC = "models: [mamba-130m, pythia-160m]\ncontexts: [2k, 8k]\n";

static sf_results_provenance prov_default(void) {
  sf_results_provenance p = {0};
  p.spec_text = SPEC;
  p.dataset_sha256 = "1111111111111111111111111111111111111111111111111111111111111111";
  p.tokenizer_sha256 = "2222222222222222222222222222222222222222222222222222222222222222";
  p.world_size = 4;
  return p;
}

/* One item's records, filled from the rng; everything memset first so that
 * whole structs compare with memcmp. */
typedef struct item_data {
  sf_work_item item;
  sf_item_result result;
  sf_repeat_result rep[4];
  sf_step_result step[4 * 6];
  sf_kernel_result kern[2];
  int nrep, nstep, nkern;
} item_data;

static void make_key(int i, char key[SF_KEY_LEN]) { snprintf(key, SF_KEY_LEN, "%016x", 0xabc00000u + (unsigned)i); }

static void make_item(item_data *d, int i, int status, int nrep) {
  memset(d, 0, sizeof *d);
  make_key(i, d->item.key);
  d->item.index = i;
  d->item.kind = i % 3;
  snprintf(d->item.arch, sizeof d->item.arch, "%s", i % 2 ? "mamba2" : "transformer");
  memset(d->item.model, 'x', sizeof d->item.model - 1); /* a full field: 47 characters and the NUL */
  memcpy(d->item.model, "model-", 6);
  d->item.model[6] = (char)('a' + i % 26);
  d->item.model_index = i % 3;
  if (d->item.kind == SF_ITEM_KERNELS) snprintf(d->item.op, sizeof d->item.op, "selective_scan");
  snprintf(d->item.dtype, sizeof d->item.dtype, "bf16");
  d->item.context = (int64_t)1 << (11 + i % 10);
  d->item.prefill_chunk = i % 2 ? 0 : 4096;
  d->item.oom_predicted = i % 4 == 3;
  d->item.batch = 1 + i % 4;
  d->item.gen = i % 2 ? SF_GEN_CANONICAL : 128;
  d->item.first_problem = i * 3;
  d->item.repeats = nrep;
  d->item.warmup = 1;
  d->item.gpus = 1 + i % 2;
  d->item.seed = 0xfedcba9876543210ull + (uint64_t)i;
  d->item.timeout_s = 600.0;
  d->item.est_cost = urand() * 100;
  d->item.est_bytes = (int64_t)(urand() * 1e11);
  memcpy(d->result.key, d->item.key, SF_KEY_LEN);
  d->result.status = status;
  snprintf(d->result.message, sizeof d->result.message, "message for item %d: \"quoted\", unicode \xc3\xa9", i);
  d->result.rank = 1 + i % 3;
  d->result.device = i % 8;
  snprintf(d->result.host, sizeof d->result.host, "node%03d.cluster", i % 7);
  d->result.t_start = 1.7e9 + i;
  d->result.t_end = 1.7e9 + i + urand();
  d->result.prompt_tokens = d->item.context * d->item.batch;
  d->result.generated_tokens = 128 * d->item.batch;
  d->result.ttft_s = urand();
  d->result.prefill_tok_s = urand() * 1e5;
  d->result.decode_tok_s = urand() * 1e3;
  d->result.e2e_tok_s = urand() * 1e4;
  d->result.tpot_p50_s = urand() * 1e-2;
  d->result.tpot_p90_s = urand() * 1e-2;
  d->result.tpot_p99_s = urand() * 1e-2;
  d->result.prefill_cv = urand() * 0.1;
  d->result.peak_bytes = (int64_t)(urand() * 8e10);
  d->result.weights_bytes = (int64_t)(urand() * 8e9);
  d->result.kv_cache_bytes = (int64_t)(urand() * 8e9);
  d->result.state_bytes = (int64_t)(urand() * 8e7);
  d->result.est_bytes = (int64_t)(urand() * 8e10);
  d->result.energy_j = i % 4 ? urand() * 1e3 : NAN;
  d->result.j_per_token = i % 4 ? urand() : NAN;
  d->result.sm_clock_mhz = 1980;
  d->result.mem_clock_mhz = 2619;
  d->result.ref_max_rel_err = i % 2 ? urand() * 1e-3 : NAN;
  d->nrep = nrep;
  d->nstep = nrep * (i % 6);
  d->nkern = i % 5 == 0 ? 2 : 0;
  for (int r = 0; r < nrep; r++) {
    sf_repeat_result *x = &d->rep[r];
    memcpy(x->key, d->item.key, SF_KEY_LEN);
    x->repeat = r;
    x->prefill_s = urand();
    x->decode_s = urand();
    x->total_s = x->prefill_s + x->decode_s;
    x->prompt_tokens = d->result.prompt_tokens;
    x->generated_tokens = d->result.generated_tokens;
    x->energy_j = urand() * 100;
    for (int s = 0; s < i % 6; s++) {
      sf_step_result *y = &d->step[r * (i % 6) + s];
      memcpy(y->key, d->item.key, SF_KEY_LEN);
      y->repeat = r;
      y->step = s;
      y->position = d->item.context + s;
      y->latency_s = urand() * 1e-3;
    }
  }
  for (int k = 0; k < d->nkern; k++) {
    sf_kernel_result *z = &d->kern[k];
    memcpy(z->key, d->item.key, SF_KEY_LEN);
    snprintf(z->op, sizeof z->op, "attention_prefill");
    snprintf(z->impl, sizeof z->impl, k ? "naive" : "fa2_mma");
    snprintf(z->dtype, sizeof z->dtype, "bf16");
    z->batch = 2;
    z->heads = 16;
    z->head_dim = 128;
    z->d_state = 0;
    z->seqlen = 8192;
    z->dim = 2048;
    z->median_s = urand();
    z->p10_s = z->median_s * 0.9;
    z->p90_s = z->median_s * 1.1;
    z->tflops = urand() * 500;
    z->gbps = urand() * 3000;
    z->pct_flops_roof = urand() * 100;
    z->pct_bw_roof = urand() * 100;
    z->n_wrong = k;
    z->max_rel_err = urand() * 1e-2;
  }
}

static int write_item(sf_results *r, const item_data *d) {
  sf_error err;
  sf_status rc = sf_results_write_item(r, &d->item, &d->result, d->rep, d->nrep, d->step, d->nstep, d->kern, d->nkern, &err);
  CHECK_MSG(rc == SF_OK, "write_item %s: %s", d->item.key, err.msg);
  return rc == SF_OK;
}

static sf_results *open_r(const char *path, sf_results_mode mode, int flags) {
  sf_results_provenance p = prov_default();
  sf_results *r = NULL;
  sf_error err;
  sf_status rc = sf_results_open(path, &p, mode, flags, &r, &err);
  CHECK_MSG(rc == SF_OK, "open %s: %s", path, err.msg);
  return rc == SF_OK ? r : NULL;
}

static void close_r(sf_results *r) {
  sf_error err;
  sf_status rc = sf_results_close(r, &err);
  CHECK_MSG(rc == SF_OK, "close: %s", err.msg);
}

static const sf_results_item *find_item(const sf_results_data *d, const char *key, int *count) {
  const sf_results_item *hit = NULL;
  *count = 0;
  for (int64_t i = 0; i < d->n_items; i++)
    if (!strcmp(d->items[i].item.key, key)) {
      hit = &d->items[i];
      (*count)++;
    }
  return hit;
}

static int64_t count_key(const void *rows, int64_t n, size_t size, const char *key) {
  int64_t c = 0;
  for (int64_t i = 0; i < n; i++) c += !strcmp((const char *)rows + (size_t)i * size, key);
  return c;
}

/* The file holds exactly d's records for its key, in order. */
static void check_item(const sf_results_data *f, const item_data *d) {
  int count;
  const sf_results_item *it = find_item(f, d->item.key, &count);
  CHECK_MSG(count == 1, "key %s: %d rows in /items", d->item.key, count);
  if (!it) return;
  CHECK_MSG(!memcmp(&it->item, &d->item, sizeof d->item), "key %s: work item differs", d->item.key);
  CHECK_MSG(!memcmp(&it->result, &d->result, sizeof d->result), "key %s: result differs", d->item.key);
  int r = 0, s = 0, k = 0;
  for (int64_t i = 0; i < f->n_repeats; i++)
    if (!strcmp(f->repeats[i].key, d->item.key)) {
      CHECK_MSG(r < d->nrep && !memcmp(&f->repeats[i], &d->rep[r], sizeof d->rep[r]), "key %s: repeat %d differs",
                d->item.key, r);
      r++;
    }
  for (int64_t i = 0; i < f->n_steps; i++)
    if (!strcmp(f->steps[i].key, d->item.key)) {
      CHECK_MSG(s < d->nstep && !memcmp(&f->steps[i], &d->step[s], sizeof d->step[s]), "key %s: step %d differs",
                d->item.key, s);
      s++;
    }
  for (int64_t i = 0; i < f->n_kernels; i++)
    if (!strcmp(f->kernels[i].key, d->item.key)) {
      CHECK_MSG(k < d->nkern && !memcmp(&f->kernels[i], &d->kern[k], sizeof d->kern[k]), "key %s: kernel %d differs",
                d->item.key, k);
      k++;
    }
  CHECK_MSG(r == d->nrep && s == d->nstep && k == d->nkern, "key %s: %d/%d/%d child rows, want %d/%d/%d",
            d->item.key, r, s, k, d->nrep, d->nstep, d->nkern);
}

static int read_ok(const char *path, sf_results_data *d) {
  sf_error err;
  sf_status rc = sf_results_read(path, 0, d, &err);
  CHECK_MSG(rc == SF_OK, "read %s: %s", path, err.msg);
  return rc == SF_OK;
}

static void no_duplicates(const sf_results_data *d) {
  for (int64_t i = 0; i < d->n_items; i++)
    for (int64_t j = i + 1; j < d->n_items; j++)
      CHECK_MSG(strcmp(d->items[i].item.key, d->items[j].item.key), "key %s twice in /items", d->items[i].item.key);
}

/* A one-line error that contains want. */
static void check_error(sf_status rc, const sf_error *err, const char *want) {
  CHECK_MSG(rc != SF_OK, "expected an error containing '%s'", want);
  if (rc == SF_OK) return;
  CHECK_MSG(strstr(err->msg, want) != NULL, "error '%s' lacks '%s'", err->msg, want);
  CHECK_MSG(!strchr(err->msg, '\n'), "error is not one line: '%s'", err->msg);
}

static void write_bytes(const char *path, off_t at, const void *data, size_t n) {
  int fd = open(path, O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(pwrite(fd, data, n, at) == (ssize_t)n);
  close(fd);
}

static off_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
}

enum { N_ITEMS = 24 };
static item_data items[N_ITEMS];

/* ---- tests ---- */

/* The field lists in driver/results/tables.c must cover the C structs: a
 * field added to records.h (or results.h) and not to the list would be
 * silently dropped from the file and the journal. Checked two ways: every
 * gap between listed fields is alignment padding, and the struct sizes are
 * the ones this test knows. */
static void test_layout(void) {
  static const size_t want[T_COUNT] = {
      [T_DEVICES] = 272, [T_PROBLEMS] = 128, [T_ITEMS] = 208 + 520,
      [T_REPEATS] = 72,  [T_STEPS] = 48,     [T_KERNELS] = 184,
  };
  for (int t = 0; t < T_COUNT; t++) {
    const rs_table_desc *d = &rs_tables[t];
    CHECK_MSG(d->row_size == want[t],
              "/%s: the C struct is %zu bytes, this test knows %zu: a field was added or removed in "
              "records.h/results.h; add it to driver/results/tables.c and docs/results-schema.md, then here",
              d->name, d->row_size, want[t]);
    unsigned char covered[1024] = {0};
    REQUIRE(d->row_size <= sizeof covered);
    if (t == T_ITEMS) /* result.key is stored once, as item.key */
      memset(covered + offsetof(sf_results_item, result.key), 1, SF_KEY_LEN);
    for (int i = 0; i < d->n_fields; i++) {
      const rs_field *f = &d->fields[i];
      for (size_t b = f->offset; b < f->offset + f->size; b++) {
        CHECK_MSG(!covered[b], "/%s: field %s overlaps another", d->name, f->name);
        covered[b] = 1;
      }
    }
    /* A run of uncovered bytes is padding only when it is shorter than the
     * alignment of what follows it and ends on that alignment. */
    for (size_t b = 0; b < d->row_size;) {
      if (covered[b]) {
        b++;
        continue;
      }
      size_t e = b;
      while (e < d->row_size && !covered[e]) e++;
      size_t align = 8;
      for (int i = 0; i < d->n_fields; i++)
        if (d->fields[i].offset == e) align = d->fields[i].kind == FK_STR ? 1 : d->fields[i].size < 8 ? 4 : 8;
      if (t == T_ITEMS && e == offsetof(sf_results_item, result.key)) align = 1;
      CHECK_MSG(e - b < align && e % align == 0, "/%s: bytes %zu..%zu of the C struct are in no field", d->name, b,
                e - 1);
      b = e;
    }
  }
}

static void test_roundtrip(void) {
  const char *path = P("round.h5");
  setenv("SLURM_JOB_ID", "4242", 1);
  sf_results *r = open_r(path, SF_RESULTS_CREATE, 0);
  unsetenv("SLURM_JOB_ID");
  REQUIRE(r);
  CHECK(sf_results_info(r)->fresh);
  CHECK(sf_file_exists(P("round.h5.journal")));
  sf_results_device dev[2];
  memset(dev, 0, sizeof dev);
  for (int k = 0; k < 2; k++) {
    dev[k].rank = k + 1;
    dev[k].device = k;
    snprintf(dev[k].host, sizeof dev[k].host, "node001");
    snprintf(dev[k].backend, sizeof dev[k].backend, "cuda");
    snprintf(dev[k].name, sizeof dev[k].name, "NVIDIA H100 80GB HBM3");
    snprintf(dev[k].uuid, sizeof dev[k].uuid, "GPU-0000000%d-aaaa-bbbb-cccc-dddddddddddd", k);
    dev[k].cc_major = 9;
    dev[k].sm_count = 132;
    dev[k].sm_clock_mhz = 1980;
    dev[k].mem_clock_mhz = 2619;
    dev[k].mem_bus_width_bits = 5120;
    dev[k].memory_bytes = 85520809984ll;
    dev[k].l2_bytes = 52428800;
    dev[k].driver_version = 12040;
    dev[k].runtime_version = 12020;
  }
  sf_results_problem prob[3];
  memset(prob, 0, sizeof prob);
  for (int k = 0; k < 3; k++) {
    prob[k].index = 10 + k;
    snprintf(prob[k].task_id, sizeof prob[k].task_id, "HumanEval/%d", 10 + k);
    prob[k].prompt_tokens = 100 + k;
    prob[k].solution_tokens = 50 + k;
    sf_sha256_hex(prob[k].task_id, strlen(prob[k].task_id), prob[k].prompt_sha256);
  }
  sf_error err;
  CHECK(sf_results_write_devices(r, dev, 2, &err) == SF_OK);
  CHECK(sf_results_write_devices(r, dev, 2, &err) == SF_OK); /* duplicates: skipped */
  CHECK(sf_results_write_problems(r, prob, 3, &err) == SF_OK);
  CHECK(sf_results_write_problems(r, prob + 1, 2, &err) == SF_OK);
  for (int i = 0; i < N_ITEMS; i++) {
    make_item(&items[i], i, i % 9 == 4 ? SF_STATUS_OOM : SF_STATUS_OK, 1 + i % 4);
    write_item(r, &items[i]);
    CHECK(sf_results_is_finished(r, items[i].item.key));
  }
  close_r(r);
  CHECK_MSG(!sf_file_exists(P("round.h5.journal")), "the journal is removed after a clean close");
  CHECK_MSG(!sf_file_exists(P("round.h5.lock")), "the lock file is removed after a clean close");
  CHECK_MSG(!sf_file_exists(P("round.h5.tmp")), "no temporary file is left");

  sf_results_data d;
  if (!read_ok(path, &d)) return;
  CHECK_EQ_I64(d.schema_version, 1);
  CHECK_EQ_I64(d.n_items, N_ITEMS);
  CHECK_EQ_I64(d.n_devices, 2);
  CHECK_EQ_I64(d.n_problems, 3);
  for (int k = 0; k < 2 && d.n_devices == 2; k++) CHECK(!memcmp(&d.devices[k], &dev[k], sizeof dev[k]));
  for (int k = 0; k < 3 && d.n_problems == 3; k++) CHECK(!memcmp(&d.problems[k], &prob[k], sizeof prob[k]));
  for (int i = 0; i < N_ITEMS; i++) check_item(&d, &items[i]);
  CHECK(isnan(d.items[0].result.energy_j));
  CHECK_STR_EQ(d.prov.spec_text, SPEC);
  char sha[65];
  sf_sha256_hex(SPEC, strlen(SPEC), sha);
  CHECK_STR_EQ(d.prov.spec_sha256, sha);
  CHECK_STR_EQ(d.prov.dataset_sha256, prov_default().dataset_sha256);
  CHECK_STR_EQ(d.prov.tokenizer_sha256, prov_default().tokenizer_sha256);
  CHECK_STR_EQ(d.prov.slurm_job_id, "4242");
  CHECK_EQ_I64(d.prov.world_size, 4);
  CHECK(strlen(d.prov.created) == 20 && d.prov.created[10] == 'T' && d.prov.created[19] == 'Z');
  CHECK(d.prov.host[0] != '\0');
  CHECK(d.prov.tool_version[0] && d.prov.git_sha[0] && d.prov.build_features[0]);
  CHECK_STR_EQ(d.prov.sources, "");
  sf_results_data_free(&d);

  /* Units and enums as a reader without our code sees them. */
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  hid_t ds = H5Dopen2(f, "items", H5P_DEFAULT);
  hid_t a = H5Aopen(ds, "units:ttft_s", H5P_DEFAULT);
  CHECK(a >= 0);
  if (a >= 0) { /* a fixed-length string (no global heap), NUL-terminated */
    hid_t t = H5Aget_type(a);
    char v[16] = "";
    CHECK(H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0 && H5Tget_size(t) == 2);
    CHECK(H5Aread(a, t, v) >= 0);
    CHECK_STR_EQ(v, "s");
    H5Tclose(t);
    H5Aclose(a);
  }
  hid_t ft = H5Dget_type(ds);
  int si = H5Tget_member_index(ft, "status");
  hid_t st = H5Tget_member_type(ft, (unsigned)si);
  CHECK(H5Tget_class(st) == H5T_ENUM);
  char name[32];
  int32_t v = SF_STATUS_OOM_PREDICTED;
  CHECK(H5Tenum_nameof(st, &v, name, sizeof name) >= 0 && !strcmp(name, "oom_predicted"));
  H5Tclose(st);
  H5Tclose(ft);
  H5Dclose(ds);
  H5Fclose(f);
}

/* A spec too long for an attribute goes to a /spec_text dataset. */
static void test_long_spec(void) {
  size_t n = 100000;
  char *spec = malloc(n + 1);
  REQUIRE(spec);
  for (size_t i = 0; i < n; i++) spec[i] = i % 64 == 63 ? '\n' : (char)('a' + i % 26);
  spec[n] = '\0';
  sf_results_provenance p = prov_default();
  p.spec_text = spec;
  sf_results *r = NULL;
  sf_error err;
  const char *path = P("longspec.h5");
  sf_status rc = sf_results_open(path, &p, SF_RESULTS_CREATE, 0, &r, &err);
  CHECK_MSG(rc == SF_OK, "open: %s", err.msg);
  if (rc == SF_OK) {
    write_item(r, &items[0]);
    close_r(r);
  }
  sf_results_data d;
  if (read_ok(path, &d)) {
    CHECK(strlen(d.prov.spec_text) == n && !strcmp(d.prov.spec_text, spec));
    char sha[65];
    sf_sha256_hex(spec, n, sha);
    CHECK_STR_EQ(d.prov.spec_sha256, sha);
    sf_results_data_free(&d);
  }
  rc = sf_results_open(path, &p, SF_RESULTS_RESUME, 0, &r, &err);
  CHECK_MSG(rc == SF_OK, "resume: %s", err.msg);
  if (rc == SF_OK) close_r(r);
  free(spec);
}

static void test_create_refuses(void) {
  const char *path = P("round.h5");
  sf_results_provenance p = prov_default();
  sf_results *r = NULL;
  sf_error err;
  sf_status rc = sf_results_open(path, &p, SF_RESULTS_CREATE, 0, &r, &err);
  check_error(rc, &err, "already exists");
  CHECK(r == NULL);
  /* ... and left it alone */
  sf_results_data d;
  if (read_ok(path, &d)) {
    CHECK_EQ_I64(d.n_items, N_ITEMS);
    sf_results_data_free(&d);
  }
  const char *copy = P("over.h5");
  r = open_r(copy, SF_RESULTS_CREATE, 0);
  if (r) {
    write_item(r, &items[0]);
    close_r(r);
  }
  r = open_r(copy, SF_RESULTS_CREATE, SF_RESULTS_OVERWRITE);
  if (r) close_r(r);
  if (read_ok(copy, &d)) {
    CHECK_EQ_I64(d.n_items, 0);
    sf_results_data_free(&d);
  }
}

static const int statuses[7] = {SF_STATUS_OK,    SF_STATUS_OOM,     SF_STATUS_OOM_PREDICTED, SF_STATUS_SKIPPED,
                                SF_STATUS_ERROR, SF_STATUS_TIMEOUT, SF_STATUS_INTERRUPTED};

static void test_resume(void) {
  const char *path = P("resume.h5");
  item_data first[7], again[7];
  sf_results *r = open_r(path, SF_RESULTS_CREATE, 0);
  REQUIRE(r);
  for (int i = 0; i < 7; i++) {
    make_item(&first[i], 100 + i, statuses[i], i == 6 ? 1 : 3);
    write_item(r, &first[i]);
  }
  close_r(r);

  /* Without --retry-failed: only the interrupted item is to run again. */
  r = open_r(path, SF_RESULTS_RESUME, 0);
  REQUIRE(r);
  const sf_results_open_info *info = sf_results_info(r);
  CHECK(!info->fresh && !info->from_journal);
  CHECK_EQ_I64(info->items, 7);
  CHECK_EQ_I64(info->finished, 6);
  CHECK_EQ_I64(info->to_retry, 1);
  for (int i = 0; i < 7; i++) CHECK_MSG(sf_results_is_finished(r, first[i].item.key) == (i != 6), "status %d", i);
  int32_t st;
  CHECK(sf_results_lookup(r, first[6].item.key, &st) && st == SF_STATUS_INTERRUPTED);
  CHECK(!sf_results_lookup(r, "0000000000000000", &st));
  make_item(&again[6], 106, SF_STATUS_OK, 2);
  write_item(r, &again[6]);
  close_r(r);
  sf_results_data d;
  if (read_ok(path, &d)) {
    CHECK_EQ_I64(d.n_items, 7);
    no_duplicates(&d);
    for (int i = 0; i < 6; i++) check_item(&d, &first[i]);
    check_item(&d, &again[6]);
    sf_results_data_free(&d);
  }

  /* With --retry-failed: error and timeout run again; the error one is
   * rewritten, the timeout one is not run (stopped early) and stays. */
  r = open_r(path, SF_RESULTS_RESUME, SF_RESULTS_RETRY_FAILED);
  REQUIRE(r);
  info = sf_results_info(r);
  CHECK_EQ_I64(info->finished, 5);
  CHECK_EQ_I64(info->to_retry, 2);
  CHECK(!sf_results_is_finished(r, first[4].item.key));
  CHECK(!sf_results_is_finished(r, first[5].item.key));
  CHECK(sf_results_is_finished(r, first[0].item.key));
  make_item(&again[4], 104, SF_STATUS_OK, 4);
  write_item(r, &again[4]);
  close_r(r);
  if (read_ok(path, &d)) {
    CHECK_EQ_I64(d.n_items, 7);
    no_duplicates(&d);
    check_item(&d, &again[4]);
    check_item(&d, &first[5]);
    check_item(&d, &again[6]);
    CHECK_EQ_I64(d.n_repeats, 3 * 4 + 4 + 3 + 2);
    sf_results_data_free(&d);
  }

  /* Resuming with another spec is refused. */
  sf_results_provenance p = prov_default();
  p.spec_text = "models: [mamba-370m]\n";
  sf_error err;
  sf_status rc = sf_results_open(path, &p, SF_RESULTS_RESUME, 0, &r, &err);
  check_error(rc, &err, "another spec");

  /* Resume with nothing there starts a new file. */
  r = open_r(P("nothing.h5"), SF_RESULTS_RESUME, 0);
  if (r) {
    CHECK(sf_results_info(r)->fresh);
    close_r(r);
  }
}

/* An unclean stop (abort = no close, as after kill -9) leaves the journal. */
static void write_unclean(const char *path, int n) {
  sf_results *r = open_r(path, SF_RESULTS_CREATE, SF_RESULTS_OVERWRITE);
  REQUIRE(r);
  for (int i = 0; i < n; i++) write_item(r, &items[i]);
  sf_results_abort(r);
  CHECK(sf_file_exists(P("crash.h5.journal")));
}

static void resume_and_check(const char *path, int n, const char *what) {
  sf_results *r = open_r(path, SF_RESULTS_RESUME, 0);
  if (!r) {
    fprintf(stderr, "  (while testing: %s)\n", what);
    return;
  }
  CHECK_MSG(sf_results_info(r)->from_journal && sf_results_info(r)->rebuilt, "%s: rebuilt from the journal", what);
  CHECK_EQ_I64(sf_results_info(r)->items, n);
  close_r(r);
  sf_results_data d;
  if (read_ok(path, &d)) {
    CHECK_MSG(d.n_items == n, "%s: %lld items", what, (long long)d.n_items);
    no_duplicates(&d);
    for (int i = 0; i < n; i++) check_item(&d, &items[i]);
    sf_results_data_free(&d);
  }
}

static void test_rebuild(void) {
  const char *path = P("crash.h5");
  const int n = 12;

  write_unclean(path, n);
  resume_and_check(path, n, "clean .h5 and a journal");

  write_unclean(path, n);
  unlink(path);
  resume_and_check(path, n, ".h5 deleted");

  write_unclean(path, n);
  REQUIRE(truncate(path, file_size(path) / 2) == 0);
  resume_and_check(path, n, ".h5 truncated");

  write_unclean(path, n);
  char garbage[4096];
  for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (char)(urand() * 256);
  write_bytes(path, 0, garbage, sizeof garbage);
  resume_and_check(path, n, ".h5 with garbage at the start");

  write_unclean(path, n);
  write_bytes(path, file_size(path) / 3, garbage, sizeof garbage);
  resume_and_check(path, n, ".h5 with garbage in the middle");

  /* A torn last frame (a kill in mid-write) is dropped, then appended after. */
  write_unclean(path, n);
  const char *jp = P("crash.h5.journal");
  off_t js = file_size(jp);
  sf_results *r = open_r(path, SF_RESULTS_RESUME, 0);
  if (r) {
    write_item(r, &items[n]);
    sf_results_abort(r);
  }
  off_t js2 = file_size(jp);
  CHECK(js2 > js);
  REQUIRE(truncate(jp, js + (js2 - js) / 2) == 0);
  r = open_r(path, SF_RESULTS_RESUME, 0);
  if (r) {
    CHECK_MSG(sf_results_info(r)->torn_bytes == (js2 - js) / 2, "torn bytes %lld",
              (long long)sf_results_info(r)->torn_bytes);
    CHECK_EQ_I64(sf_results_info(r)->items, n);
    CHECK(!sf_results_is_finished(r, items[n].item.key));
    write_item(r, &items[n]);
    sf_results_abort(r);
  }
  CHECK_EQ_I64(file_size(jp), js2);
  resume_and_check(path, n + 1, "torn journal tail");

  /* The .h5 deleted under a running writer: the close finds it missing
   * when it reads it back, and rewrites it from the journal. */
  r = open_r(path, SF_RESULTS_CREATE, SF_RESULTS_OVERWRITE);
  if (r) {
    for (int i = 0; i < 5; i++) write_item(r, &items[i]);
    unlink(path);
    for (int i = 5; i < n; i++) write_item(r, &items[i]);
    close_r(r);
  }
  sf_results_data d;
  if (read_ok(path, &d)) {
    CHECK_EQ_I64(d.n_items, n);
    for (int i = 0; i < n; i++) check_item(&d, &items[i]);
    sf_results_data_free(&d);
  }
  CHECK(!sf_file_exists(jp));

  /* Garbage in the middle of the journal with valid frames after it. */
  write_unclean(path, n);
  js = file_size(jp);
  write_bytes(jp, js / 2, garbage, 64);
  sf_error err;
  sf_results_provenance p = prov_default();
  r = NULL;
  sf_status rc = sf_results_open(path, &p, SF_RESULTS_RESUME, 0, &r, &err);
  check_error(rc, &err, "corrupt record at byte");
}

static void test_no_duplicates(void) {
  const char *path = P("dup.h5");
  sf_results *r = open_r(path, SF_RESULTS_CREATE, 0);
  REQUIRE(r);
  item_data a, b;
  make_item(&a, 500, SF_STATUS_ERROR, 3);
  make_item(&b, 500, SF_STATUS_OK, 2);
  for (int i = 0; i < 5; i++) write_item(r, &items[i]);
  write_item(r, &a);
  for (int i = 5; i < 8; i++) write_item(r, &items[i]);
  write_item(r, &b); /* the same key again in one run: replaces */
  sf_results_abort(r);
  sf_results_data d;
  /* Even before a clean close the .h5 has one row per key. */
  if (read_ok(path, &d)) {
    CHECK_EQ_I64(d.n_items, 9);
    no_duplicates(&d);
    check_item(&d, &b);
    sf_results_data_free(&d);
  }
  r = open_r(path, SF_RESULTS_RESUME, 0);
  if (r) {
    write_item(r, &a); /* a finished key written again after resume */
    close_r(r);
  }
  if (read_ok(path, &d)) {
    CHECK_EQ_I64(d.n_items, 9);
    no_duplicates(&d);
    check_item(&d, &a);
    CHECK_EQ_I64(count_key(d.repeats, d.n_repeats, sizeof *d.repeats, a.item.key), 3);
    sf_results_data_free(&d);
  }
  /* The writer's lock keeps a second one off. */
  r = open_r(path, SF_RESULTS_RESUME, 0);
  if (r) {
    sf_results_provenance p = prov_default();
    sf_results *r2 = NULL;
    sf_error err;
    sf_status rc = sf_results_open(path, &p, SF_RESULTS_RESUME, 0, &r2, &err);
    check_error(rc, &err, "in use by another scanflash process");
    close_r(r);
  }
  /* Bad input is an error, not a record. */
  sf_error err;
  r = open_r(path, SF_RESULTS_RESUME, 0);
  if (r) {
    item_data c;
    make_item(&c, 501, SF_STATUS_OK, 1);
    c.result.key[3] ^= 1;
    check_error(sf_results_write_item(r, &c.item, &c.result, NULL, 0, NULL, 0, NULL, 0, &err), &err,
                "is not the item's key");
    c.item.key[0] = '\0';
    check_error(sf_results_write_item(r, &c.item, &c.result, NULL, 0, NULL, 0, NULL, 0, &err), &err, "empty");
    close_r(r);
  }
}

static void test_errors(void) {
  sf_results_data d;
  sf_error err;
  sf_status rc;
  const char *missing = P("missing.h5");
  rc = sf_results_read(missing, 0, &d, &err);
  check_error(rc, &err, "missing.h5: cannot open: No such file or directory");

  const char *text = P("text.h5");
  FILE *f = fopen(text, "w");
  REQUIRE(f);
  fputs("this is not HDF5\n", f);
  fclose(f);
  rc = sf_results_read(text, 0, &d, &err);
  check_error(rc, &err, "text.h5: not an HDF5 file");
  sf_results_provenance p = prov_default();
  sf_results *r = NULL;
  rc = sf_results_open(text, &p, SF_RESULTS_RESUME, 0, &r, &err);
  check_error(rc, &err, "text.h5: not an HDF5 file");

  const char *empty = P("empty.h5");
  f = fopen(empty, "w");
  REQUIRE(f);
  fclose(f);
  rc = sf_results_read(empty, 0, &d, &err);
  check_error(rc, &err, "empty.h5: not an HDF5 file");

  /* A cleanly closed file (no journal) that is then truncated. */
  const char *trunc = P("trunc.h5");
  r = open_r(trunc, SF_RESULTS_CREATE, 0);
  REQUIRE(r);
  for (int i = 0; i < 10; i++) write_item(r, &items[i]);
  close_r(r);
  REQUIRE(truncate(trunc, file_size(trunc) / 2) == 0);
  rc = sf_results_read(trunc, 0, &d, &err);
  check_error(rc, &err, "trunc.h5: corrupt or truncated HDF5 file");
  rc = sf_results_open(trunc, &p, SF_RESULTS_RESUME, 0, &r, &err);
  check_error(rc, &err, "no journal to rebuild from");

  /* A plain HDF5 file. */
  const char *plain = P("plain.h5");
  hid_t h = H5Fcreate(plain, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(h >= 0);
  H5Fclose(h);
  rc = sf_results_read(plain, 0, &d, &err);
  check_error(rc, &err, "plain.h5: not a scanflash results file (no schema_version attribute)");

  /* Another schema version; then a missing table. */
  const char *v2 = P("v2.h5");
  r = open_r(v2, SF_RESULTS_CREATE, 0);
  REQUIRE(r);
  write_item(r, &items[0]);
  close_r(r);
  h = H5Fopen(v2, H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(h >= 0);
  hid_t a = H5Aopen(h, "schema_version", H5P_DEFAULT);
  int32_t two = 2;
  CHECK(H5Awrite(a, H5T_NATIVE_INT32, &two) >= 0);
  H5Aclose(a);
  H5Fclose(h);
  rc = sf_results_read(v2, 0, &d, &err);
  check_error(rc, &err, "v2.h5: schema_version 2 is not supported (this scanflash reads 1)");
  rc = sf_results_open(v2, &p, SF_RESULTS_RESUME, 0, &r, &err);
  check_error(rc, &err, "schema_version 2 is not supported");
  rc = sf_results_read(v2, SF_RESULTS_READ_LENIENT, &d, &err);
  CHECK_MSG(rc == SF_OK, "lenient read: %s", err.msg);
  if (rc == SF_OK) {
    CHECK_EQ_I64(d.schema_version, 2);
    CHECK_EQ_I64(d.n_items, 1);
    sf_results_data_free(&d);
  }
  h = H5Fopen(v2, H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(h >= 0);
  a = H5Aopen(h, "schema_version", H5P_DEFAULT);
  int32_t one = 1;
  CHECK(H5Awrite(a, H5T_NATIVE_INT32, &one) >= 0);
  H5Aclose(a);
  CHECK(H5Ldelete(h, "items", H5P_DEFAULT) >= 0);
  H5Fclose(h);
  rc = sf_results_read(v2, 0, &d, &err);
  check_error(rc, &err, "v2.h5: missing table /items");

  /* A table with other fields. */
  const char *other = P("other.h5");
  r = open_r(other, SF_RESULTS_CREATE, 0);
  REQUIRE(r);
  close_r(r);
  h = H5Fopen(other, H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(h >= 0);
  CHECK(H5Ldelete(h, "kernels", H5P_DEFAULT) >= 0);
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, SF_KEY_LEN);
  hid_t ct = H5Tcreate(H5T_COMPOUND, SF_KEY_LEN);
  H5Tinsert(ct, "key", 0, st);
  hsize_t zero = 0;
  hid_t sp = H5Screate_simple(1, &zero, NULL);
  hid_t ds = H5Dcreate2(h, "kernels", ct, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  CHECK(ds >= 0);
  H5Dclose(ds);
  H5Sclose(sp);
  H5Tclose(ct);
  H5Tclose(st);
  H5Fclose(h);
  rc = sf_results_read(other, 0, &d, &err);
  check_error(rc, &err, "other.h5: /kernels: missing field 'op'");
}

static void test_merge(void) {
  const char *a = P("shard_a.h5"), *b = P("shard_b.h5"), *out = P("merged.h5");
  sf_results *r = open_r(a, SF_RESULTS_CREATE, 0);
  REQUIRE(r);
  for (int i = 0; i < 8; i++) write_item(r, &items[i]);
  close_r(r);
  r = open_r(b, SF_RESULTS_CREATE, 0);
  REQUIRE(r);
  item_data e;
  make_item(&e, 2, SF_STATUS_ERROR, 1); /* key of items[2], failed in shard b */
  write_item(r, &e);
  for (int i = 8; i < 14; i++) write_item(r, &items[i]);
  sf_results_abort(r); /* shard b did not close cleanly: read from its journal */
  const char *in[2] = {b, a};
  sf_results_merge_stats st;
  sf_error err;
  sf_status rc = sf_results_merge(in, 2, out, 0, NULL, NULL, &st, &err);
  CHECK_MSG(rc == SF_OK, "merge: %s", err.msg);
  CHECK_EQ_I64(st.items, 14);
  CHECK_EQ_I64(st.duplicates, 1);
  sf_results_data d;
  if (read_ok(out, &d)) {
    CHECK_EQ_I64(d.n_items, 14);
    no_duplicates(&d);
    for (int i = 0; i < 14; i++) check_item(&d, &items[i]); /* the ok one of key 2 won */
    CHECK(strstr(d.prov.sources, "shard_a.h5") && strstr(d.prov.sources, "shard_b.h5"));
    sf_results_data_free(&d);
  }
}

int main(void) {
  uint64_t seed = sf_test_seed();
  rng_state = seed;
  REQUIRE(mkdtemp(dir));
  test_layout();
  test_roundtrip();
  test_long_spec();
  test_create_refuses();
  test_resume();
  test_rebuild();
  test_no_duplicates();
  test_errors();
  test_merge();
  if (!sf_test_failures) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  } else {
    fprintf(stderr, "files left in %s\n", dir);
  }
  return sf_test_finish("test_results");
}
