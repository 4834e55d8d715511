/* results_writer: drives the results writer from shell tests (kill -9
 * torture, merge). Not installed.
 *
 *   results_writer write FILE [--resume] [--retry-failed] [--overwrite]
 *                  [--first I] [--count N] [--steps S] [--status NAME|pattern]
 *                  [--rewrite-every K] [--spec TEXT] [--no-close]
 *       Writes items first..first+count-1 (keys from the index), skipping
 *       finished ones, and prints "KEY STATUS" on stdout after each write
 *       returns (so a printed key is a reported key). "pattern" (default):
 *       a key with an earlier result gets ok; otherwise index%7==3 -> error,
 *       index%11==5 -> interrupted, else ok. --rewrite-every K writes every
 *       Kth item a second time (a replacement in the same run). Prints
 *       "closed" after a clean close.
 *   results_writer repair FILE [--spec TEXT]   open with resume, then close
 *   results_writer check FILE     read it; print "KEY STATUS" per item; fail
 *       (exit 1, one line) on a duplicate key or child rows that do not
 *       match the item (repeats: item.repeats when ok, else 1; steps:
 *       repeats * item.gen; kernels: 2 when index%5==0)
 *   results_writer set-schema FILE N   rewrite the schema_version attribute */
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results/results.h"

static void key_of(int64_t i, char key[SF_KEY_LEN]) {
  uint64_t z = (uint64_t)i + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  snprintf(key, SF_KEY_LEN, "%016" PRIx64, z);
}

static int status_of(const char *name) {
  for (int s = SF_STATUS_OK; s <= SF_STATUS_INTERRUPTED; s++)
    if (!strcmp(name, sf_item_status_name((sf_item_status)s))) return s;
  return -1;
}

static int die(const char *what, const sf_error *err) {
  fprintf(stderr, "results_writer: %s: %s\n", what, err ? err->msg : "");
  return 1;
}

static const char *opt_val(int argc, char **argv, const char *name, const char *def) {
  for (int i = 0; i + 1 < argc; i++)
    if (!strcmp(argv[i], name)) return argv[i + 1];
  return def;
}

static int has_flag(int argc, char **argv, const char *name) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], name)) return 1;
  return 0;
}

static int write_one(sf_results *r, int64_t i, int status, int steps) {
  sf_work_item it;
  sf_item_result res;
  memset(&it, 0, sizeof it);
  memset(&res, 0, sizeof res);
  key_of(i, it.key);
  memcpy(res.key, it.key, SF_KEY_LEN);
  it.index = (int32_t)i;
  it.kind = i % 5 == 0 ? SF_ITEM_KERNELS : SF_ITEM_GENERATE;
  snprintf(it.arch, sizeof it.arch, "%s", i % 2 ? "mamba1" : "transformer");
  snprintf(it.model, sizeof it.model, "%s", i % 2 ? "mamba-130m" : "pythia-160m");
  snprintf(it.dtype, sizeof it.dtype, "bf16");
  it.context = 2048 << (i % 4);
  it.batch = 1;
  it.gen = steps;
  it.repeats = 2;
  it.seed = (uint64_t)i;
  res.status = status;
  snprintf(res.message, sizeof res.message, "item %" PRId64 " %s", i, sf_item_status_name((sf_item_status)status));
  snprintf(res.host, sizeof res.host, "testhost");
  res.t_start = (double)i;
  res.t_end = (double)i + 0.5 + (double)getpid() * 1e-9;
  res.ttft_s = 0.001 * (double)(i + 1);
  int nrep = status == SF_STATUS_OK ? it.repeats : 1;
  sf_repeat_result reps[8];
  sf_step_result *st = calloc((size_t)(nrep * steps + 1), sizeof *st);
  sf_kernel_result kr[2];
  memset(reps, 0, sizeof reps);
  memset(kr, 0, sizeof kr);
  for (int k = 0; k < nrep; k++) {
    reps[k].repeat = k;
    reps[k].prefill_s = 0.01 * (k + 1);
    for (int s = 0; s < steps; s++) {
      st[k * steps + s].repeat = k;
      st[k * steps + s].step = s;
      st[k * steps + s].position = it.context + s;
      st[k * steps + s].latency_s = 1e-4 * (s + 1);
    }
  }
  int nk = i % 5 == 0 ? 2 : 0;
  for (int k = 0; k < nk; k++) {
    snprintf(kr[k].op, sizeof kr[k].op, "selective_scan");
    snprintf(kr[k].impl, sizeof kr[k].impl, k ? "naive" : "fused");
    kr[k].median_s = 1e-3 * (k + 1);
  }
  sf_error err;
  sf_status rc = sf_results_write_item(r, &it, &res, reps, nrep, st, (int64_t)nrep * steps, kr, nk, &err);
  free(st);
  if (rc != SF_OK) return die("write", &err);
  printf("%s %s\n", it.key, sf_item_status_name((sf_item_status)status));
  fflush(stdout);
  return 0;
}

static int cmd_write(int argc, char **argv, int repair_only) {
  const char *path = argv[0];
  int resume = repair_only || has_flag(argc, argv, "--resume");
  int flags = (has_flag(argc, argv, "--retry-failed") ? SF_RESULTS_RETRY_FAILED : 0) |
              (has_flag(argc, argv, "--overwrite") ? SF_RESULTS_OVERWRITE : 0);
  int64_t first = atoll(opt_val(argc, argv, "--first", "0"));
  int64_t count = atoll(opt_val(argc, argv, "--count", "10"));
  int steps = atoi(opt_val(argc, argv, "--steps", "4"));
  int rewrite_every = atoi(opt_val(argc, argv, "--rewrite-every", "0"));
  const char *status_name = opt_val(argc, argv, "--status", "pattern");
  int forced = strcmp(status_name, "pattern") ? status_of(status_name) : -1;
  if (strcmp(status_name, "pattern") && forced < 0) {
    fprintf(stderr, "results_writer: unknown status '%s'\n", status_name);
    return 2;
  }
  sf_results_provenance prov = {0};
  prov.spec_text = opt_val(argc, argv, "--spec", "sweep: torture\n");
  prov.dataset_sha256 = "d5";
  prov.tokenizer_sha256 = "t0";
  prov.world_size = 1;
  sf_results *r;
  sf_error err;
  if (sf_results_open(path, &prov, resume ? SF_RESULTS_RESUME : SF_RESULTS_CREATE, flags, &r, &err) != SF_OK)
    return die("open", &err);
  if (!repair_only) {
    sf_results_device dev;
    memset(&dev, 0, sizeof dev);
    dev.rank = (int32_t)(getpid() % 3);
    dev.device = -1;
    snprintf(dev.host, sizeof dev.host, "testhost");
    snprintf(dev.backend, sizeof dev.backend, "cpu");
    snprintf(dev.name, sizeof dev.name, "test cpu");
    if (sf_results_write_devices(r, &dev, 1, &err) != SF_OK) return die("devices", &err);
    sf_results_problem pr[3];
    memset(pr, 0, sizeof pr);
    for (int k = 0; k < 3; k++) {
      pr[k].index = k;
      snprintf(pr[k].task_id, sizeof pr[k].task_id, "HumanEval/%d", k);
      pr[k].prompt_tokens = 100 + k;
    }
    if (sf_results_write_problems(r, pr, 3, &err) != SF_OK) return die("problems", &err);
  }
  for (int64_t i = first; i < first + count && !repair_only; i++) {
    char key[SF_KEY_LEN];
    key_of(i, key);
    if (sf_results_is_finished(r, key)) continue;
    int32_t prev;
    int status = forced >= 0 ? forced
                 : sf_results_lookup(r, key, &prev) ? SF_STATUS_OK
                 : i % 7 == 3                       ? SF_STATUS_ERROR
                 : i % 11 == 5                      ? SF_STATUS_INTERRUPTED
                                                    : SF_STATUS_OK;
    if (write_one(r, i, status, steps)) return 1;
    if (rewrite_every > 0 && i % rewrite_every == 0 && write_one(r, i, SF_STATUS_OK, steps)) return 1;
  }
  if (has_flag(argc, argv, "--no-close")) {
    sf_results_abort(r);
    return 0;
  }
  if (sf_results_close(r, &err) != SF_OK) return die("close", &err);
  printf("closed\n");
  return 0;
}

static int cmd_check(const char *path) {
  sf_results_data d;
  sf_error err;
  if (sf_results_read(path, 0, &d, &err) != SF_OK) return die("check", &err);
  int bad = 0;
  for (int64_t i = 0; i < d.n_items && !bad; i++) {
    const sf_results_item *it = &d.items[i];
    for (int64_t j = 0; j < i; j++)
      if (!strcmp(d.items[j].item.key, it->item.key)) {
        fprintf(stderr, "results_writer: check: %s: key %s is in /items twice\n", path, it->item.key);
        bad = 1;
      }
    int64_t nr = 0, ns = 0, nk = 0;
    for (int64_t j = 0; j < d.n_repeats; j++) nr += !strcmp(d.repeats[j].key, it->item.key);
    for (int64_t j = 0; j < d.n_steps; j++) ns += !strcmp(d.steps[j].key, it->item.key);
    for (int64_t j = 0; j < d.n_kernels; j++) nk += !strcmp(d.kernels[j].key, it->item.key);
    int64_t want_r = it->result.status == SF_STATUS_OK ? it->item.repeats : 1;
    int64_t want_k = it->item.index % 5 == 0 ? 2 : 0;
    if (!bad && (nr != want_r || ns != want_r * it->item.gen || nk != want_k)) {
      fprintf(stderr,
              "results_writer: check: %s: key %s (%s) has %lld repeats, %lld steps, %lld kernels; "
              "expected %lld, %lld, %lld\n",
              path, it->item.key, sf_item_status_name((sf_item_status)it->result.status), (long long)nr,
              (long long)ns, (long long)nk, (long long)want_r, (long long)(want_r * it->item.gen),
              (long long)want_k);
      bad = 1;
    }
    if (!bad) printf("%s %s\n", it->item.key, sf_item_status_name((sf_item_status)it->result.status));
  }
  int64_t total_r = 0;
  for (int64_t i = 0; i < d.n_items; i++) total_r += d.items[i].result.status == SF_STATUS_OK ? d.items[i].item.repeats : 1;
  if (!bad && total_r != d.n_repeats) {
    fprintf(stderr, "results_writer: check: %s: %lld /repeats rows belong to no item\n", path,
            (long long)(d.n_repeats - total_r));
    bad = 1;
  }
  sf_results_data_free(&d);
  return bad;
}

static int cmd_set_schema(const char *path, int v) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t a = f >= 0 ? H5Aopen(f, "schema_version", H5P_DEFAULT) : -1;
  int32_t val = v;
  herr_t rc = a >= 0 ? H5Awrite(a, H5T_NATIVE_INT32, &val) : -1;
  if (a >= 0) H5Aclose(a);
  if (f >= 0) H5Fclose(f);
  if (rc < 0) {
    fprintf(stderr, "results_writer: set-schema: %s: failed\n", path);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  H5dont_atexit(); /* as scanflash merge: no exit-time HDF5 teardown noise after a corrupt file */
  if (argc < 3) {
    fprintf(stderr, "usage: results_writer write|repair|check|set-schema FILE [options]\n");
    return 2;
  }
  if (!strcmp(argv[1], "write")) return cmd_write(argc - 2, argv + 2, 0);
  if (!strcmp(argv[1], "repair")) return cmd_write(argc - 2, argv + 2, 1);
  if (!strcmp(argv[1], "check")) return cmd_check(argv[2]);
  if (!strcmp(argv[1], "set-schema") && argc > 3) return cmd_set_schema(argv[2], atoi(argv[3]));
  fprintf(stderr, "results_writer: unknown command '%s'\n", argv[1]);
  return 2;
}
