/* scanflash-report on inputs it cannot (fully) use: every refusal is one
 * line on stderr naming the file, the exit status is non-zero only when
 * nothing can be reported, and a partial report is made where the data
 * allows (a missing /kernels table, one bad file among good ones, another
 * schema version with --force, a run still being written). Files are made
 * here with the results writer API and then damaged with HDF5 or by hand. */
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results/results.h"
#include "test.h"

static char tmpdir[256];
static const char *report_bin;

/* n generate items (mamba1 and transformer at two contexts); close it
 * unless keep_open (then the writer is returned, the journal beside). */
static sf_results *write_file(const char *name, int n, int keep_open) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  sf_results_provenance prov = {0};
  prov.spec_text = "sweep: errors\n";
  prov.world_size = 1;
  sf_results *w;
  sf_error err;
  REQUIRE(sf_results_open(path, &prov, SF_RESULTS_CREATE, SF_RESULTS_OVERWRITE, &w, &err) == SF_OK);
  for (int i = 0; i < n; i++) {
    sf_work_item it = {0};
    sf_item_result res = {0};
    snprintf(it.key, sizeof it.key, "%016x", 0xabc000 + i);
    memcpy(res.key, it.key, SF_KEY_LEN);
    it.index = i;
    it.kind = SF_ITEM_GENERATE;
    snprintf(it.arch, sizeof it.arch, "%s", i % 2 ? "transformer" : "mamba1");
    snprintf(it.model, sizeof it.model, "%s", i % 2 ? "pythia-160m" : "mamba-130m");
    snprintf(it.dtype, sizeof it.dtype, "bf16");
    it.context = 2048 << (i / 2 % 2);
    it.batch = 1;
    it.gen = 4;
    it.first_problem = i / 4;
    it.repeats = 2;
    res.status = SF_STATUS_OK;
    res.t_end = 1e9 + i;
    res.prompt_tokens = it.context;
    res.generated_tokens = 4;
    res.energy_j = res.j_per_token = res.ref_max_rel_err = NAN;
    sf_repeat_result rep[2];
    memset(rep, 0, sizeof rep);
    for (int r = 0; r < 2; r++) {
      rep[r].repeat = r;
      rep[r].prefill_s = 1e-3 * (double)(it.context / 1024) * (i % 2 ? 2 : 1) * (1 + 0.1 * r);
      rep[r].decode_s = 3e-3;
      rep[r].total_s = rep[r].prefill_s + rep[r].decode_s;
      rep[r].prompt_tokens = it.context;
      rep[r].generated_tokens = 4;
      rep[r].energy_j = NAN;
    }
    REQUIRE(sf_results_write_item(w, &it, &res, rep, 2, NULL, 0, NULL, 0, &err) == SF_OK);
  }
  if (keep_open) return w;
  REQUIRE(sf_results_close(w, &err) == SF_OK);
  return NULL;
}

static int run(const char *env, const char *args) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "cd %s && %s '%s' %s > out.txt 2> err.txt", tmpdir, env ? env : "", report_bin, args);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *read_text(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return strdup("");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  s[n] = '\0';
  fclose(f);
  return s;
}

static int lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* The report must refuse: exit 1 (not a crash), one line on stderr
 * containing want. */
static void expect_refused(const char *args, const char *want) {
  int rc = run("SCANFLASH_GNUPLOT=/nonexistent", args);
  char *err = read_text("err.txt");
  CHECK_MSG(rc == 1, "%s: exit %d (wanted 1); stderr: %s", args, rc, err);
  CHECK_MSG(lines(err) == 1, "%s: %d lines on stderr: %s", args, lines(err), err);
  CHECK_MSG(strstr(err, want) != NULL, "%s: stderr lacks '%s': %s", args, want, err);
  CHECK_MSG(!strncmp(err, "scanflash-report: ", 18), "%s: stderr: %s", args, err);
  printf("refused as expected: %s -> %s", args, err);
  free(err);
}

/* The report is made in out_dir (relative to the test folder; exit 0);
 * stderr and the report's notes contain want (when given). */
static void expect_report(const char *args, const char *want, const char *out_dir) {
  int rc = run("SCANFLASH_GNUPLOT=/nonexistent", args);
  char *err = read_text("err.txt");
  CHECK_MSG(rc == 0, "%s: exit %d; stderr: %s", args, rc, err);
  if (want) CHECK_MSG(strstr(err, want) != NULL, "%s: stderr lacks '%s': %s", args, want, err);
  char path[512];
  snprintf(path, sizeof path, "%s/report.md", out_dir);
  char *md = read_text(path);
  CHECK_MSG(strstr(md, "## Throughput") != NULL, "%s: no report.md", args);
  if (want) CHECK_MSG(strstr(md, want) != NULL, "%s: the report's notes lack '%s'", args, want);
  free(md);
  free(err);
}

static void set_schema(const char *name, int v) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
  int32_t val = v;
  REQUIRE(a >= 0 && H5Awrite(a, H5T_NATIVE_INT32, &val) >= 0);
  H5Aclose(a);
  H5Fclose(f);
}

static void drop_table(const char *name, const char *table) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  REQUIRE(H5Ldelete(f, table, H5P_DEFAULT) >= 0);
  H5Fclose(f);
}

static void write_bytes(const char *name, const char *bytes, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  REQUIRE(f);
  if (n) REQUIRE(fwrite(bytes, 1, n, f) == n);
  fclose(f);
}

static void truncate_copy(const char *from, const char *to, double frac) {
  char a[512], b[512];
  snprintf(a, sizeof a, "%s/%s", tmpdir, from);
  snprintf(b, sizeof b, "%s/%s", tmpdir, to);
  FILE *f = fopen(a, "rb");
  REQUIRE(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n);
  REQUIRE(fread(buf, 1, (size_t)n, f) == (size_t)n);
  fclose(f);
  f = fopen(b, "wb");
  REQUIRE(f);
  fwrite(buf, 1, (size_t)(n * frac), f);
  fclose(f);
  free(buf);
}

int main(void) {
  report_bin = sf_test_env_path("SF_REPORT_BIN");
  snprintf(tmpdir, sizeof tmpdir, "/tmp/sf_test_report_err_XXXXXX");
  REQUIRE(mkdtemp(tmpdir));
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

  write_file("good.h5", 8, 0);
  write_file("schema2.h5", 8, 0);
  set_schema("schema2.h5", 2);
  write_file("nokernels.h5", 8, 0);
  drop_table("nokernels.h5", "/kernels");
  write_file("noitems.h5", 8, 0);
  drop_table("noitems.h5", "/items");
  write_file("empty_results.h5", 0, 0);
  write_bytes("empty.h5", "", 0);
  write_bytes("text.h5", "this is not HDF5\n", 17);
  truncate_copy("good.h5", "truncated.h5", 0.5);

  /* nothing to report: one line each, exit 1 */
  expect_refused("empty.h5 -o o1", "empty.h5: not an HDF5 file");
  expect_refused("text.h5 -o o1", "text.h5: not an HDF5 file");
  expect_refused("missing.h5 -o o1", "missing.h5: cannot open: No such file or directory");
  expect_refused("schema2.h5 -o o1", "schema2.h5: schema_version 2 is not supported (this scanflash reads 1)");
  expect_refused("truncated.h5 -o o1", "truncated.h5: ");
  expect_refused("noitems.h5 -o o1", "noitems.h5: missing table /items");
  expect_refused("empty_results.h5 -o o1", "empty_results.h5: no items");
  struct stat st;
  char o1[400];
  snprintf(o1, sizeof o1, "%s/o1", tmpdir);
  CHECK(stat(o1, &st) != 0); /* no half report left behind */

  /* usage errors: exit 2 */
  CHECK_EQ_I64(run(NULL, "good.h5"), 2);
  CHECK_EQ_I64(run(NULL, "-o o2"), 2);
  CHECK_EQ_I64(run(NULL, "good.h5 -o o2 --format pdf"), 2);
  CHECK_EQ_I64(run(NULL, "good.h5 -o o2 --bogus"), 2);
  CHECK_EQ_I64(run(NULL, "--help"), 0);

  /* partial reports */
  expect_report("nokernels.h5 -o o3", "nokernels.h5: missing table /kernels", "o3");
  expect_report("good.h5 text.h5 empty.h5 -o o4", "text.h5: not an HDF5 file", "o4");
  char *err = read_text("err.txt");
  CHECK(strstr(err, "empty.h5: not an HDF5 file") && strstr(err, "plots skipped"));
  free(err);
  expect_report("schema2.h5 --force -o o5", "schema2.h5: schema_version 2 (this scanflash reads 1); reading the fields",
                "o5");
  /* a run still being written: read from its journal */
  sf_results *live = write_file("live.h5", 6, 1);
  expect_report("live.h5 -o o6", "live.h5: run still going or not closed cleanly; reading its journal", "o6");
  char *csv = read_text("o6/throughput.csv");
  CHECK_MSG(lines(csv) == 1 + 4, "throughput.csv of the live run: %s", csv); /* 2 archs x 2 contexts */
  free(csv);
  sf_results_abort(live);

  if (!getenv("SF_TEST_KEEP")) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  } else {
    printf("kept %s\n", tmpdir);
  }
  return sf_test_finish("test_report_errors");
}
