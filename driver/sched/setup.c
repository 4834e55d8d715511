/* Setup steps 1 and 2 (sched.h): rank 0's checks and broadcast, then every
 * rank's own preparation, with one collective verdict so that a failure on
 * any rank ends every rank, printed once, with no rank left waiting. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "data/data_paths.h"
#include "devices/devices.h"
#include "scanflash/files.h"
#include "sched/sched_internal.h"

/* What rank 0 broadcasts first: fixed size, then the texts. */
typedef struct setup_head {
  int32_t exit_code;          /* non-zero: rank 0 failed (and printed why) */
  int32_t backend, threads, quiet, no_graphs;
  double progress_every_s;
  int64_t spec_len, data_len, tok_len; /* bytes, NUL included */
} setup_head;

int sf_sched_wait(MPI_Request *req, MPI_Status *st) {
  for (;;) {
    int done = 0;
    int rc = MPI_Test(req, &done, st ? st : MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS || done) return rc;
    sf_sched_nap();
  }
}

void sf_sched_nap(void) {
  struct timespec ts = {0, 1000000}; /* 1 ms: far below any item, far above a spin */
  nanosleep(&ts, NULL);
}

static int bcast(void *buf, int64_t bytes, MPI_Comm comm) {
  MPI_Request req;
  if (bytes > INT_MAX) return MPI_ERR_COUNT;
  int rc = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, 0, comm, &req);
  return rc == MPI_SUCCESS ? sf_sched_wait(&req, NULL) : rc;
}

static const char *mpi_error(int rc, char *buf) {
  int len = 0;
  if (MPI_Error_string(rc, buf, &len) != MPI_SUCCESS) snprintf(buf, MPI_MAX_ERROR_STRING, "MPI error %d", rc);
  return buf;
}

/* How many GPUs this rank sees (0 without a driver: why says why). */
static sf_status visible_gpus(int *n, char *why, size_t why_len, sf_error *err) {
  sf_device_info first;
  *n = 0;
  return sf_devices_query(&first, 1, n, why, why_len, err);
}

/* auto: cuda when this build has it and rank 0's node has a GPU (a worker
 * without one then fails the setup with its own message), else cpu. */
static sf_status resolve_backend(sf_rank *rk, sf_backend_choice want, sf_error *err) {
  int n = 0;
  char why[256] = "";
  sf_gpu_libs libs;
  sf_gpu_libs_query(&libs);
  if (libs.have_cuda) SF_TRY(visible_gpus(&n, why, sizeof why, err));
  if (want == SF_BACKEND_CUDA && !libs.have_cuda)
    return sf_fail(err, SF_ERR_UNSUPPORTED, "--backend cuda: this scanflash was built without CUDA");
  if (want == SF_BACKEND_CUDA && n == 0)
    return sf_fail(err, SF_ERR_DEVICE, "--backend cuda: no GPU on %s (%s)", rk->host, why[0] ? why : "none visible");
  rk->backend = want == SF_BACKEND_CPU || n == 0 ? SF_BACKEND_CPU : SF_BACKEND_CUDA;
  return SF_OK;
}

/* Rank 0's part of step 1: where the data is, its hashes, the backend. */
static sf_status rank0_checks(sf_rank *rk, const sf_run_options *o, sf_error *err) {
  if (!o->resume) {
    char j[PATH_MAX + 16];
    snprintf(j, sizeof j, "%s.journal", o->output);
    if (sf_file_exists(o->output) || sf_file_exists(j))
      return sf_fail(err, SF_ERR_IO, "%s: already exists; pass --resume to continue it, or choose another -o",
                     sf_file_exists(o->output) ? o->output : j);
  }
  SF_TRY(resolve_backend(rk, o->backend, err));
  char path[PATH_MAX], real[PATH_MAX];
  SF_TRY(sf_data_path_resolve(SF_DATA_HUMANEVAL, o->data, path, sizeof path, err));
  rk->data_path = strdup(realpath(path, real) ? real : path);
  SF_TRY(sf_data_path_resolve(SF_DATA_TOKENIZER, o->tokenizer, path, sizeof path, err));
  rk->tok_path = strdup(realpath(path, real) ? real : path);
  if (!rk->data_path || !rk->tok_path) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  SF_TRY(sf_sha256_file(rk->data_path, rk->data_sha, err));
  return sf_sha256_file(rk->tok_path, rk->tok_sha, err);
}

/* Step 1. Returns the exit status rank 0 broadcast (0: go on). */
static int step1(sf_rank *rk, const sf_spec *spec, const sf_run_options *o, int setup_exit) {
  setup_head h;
  memset(&h, 0, sizeof h);
  char *blob = NULL;
  if (rk->rank == 0) {
    h.exit_code = setup_exit;
    if (!setup_exit) {
      sf_error err;
      sf_error_clear(&err);
      if (rank0_checks(rk, o, &err) != SF_OK) {
        fprintf(stderr, SF_RUN_PROG ": %s\n", err.msg);
        h.exit_code = SF_SCHED_EXIT_FAILURE;
      }
    }
    if (!h.exit_code) {
      h.backend = rk->backend;
      h.threads = o->threads;
      h.no_graphs = o->no_graphs;
      h.quiet = o->quiet;
      h.progress_every_s = o->progress_every_s > 0 ? o->progress_every_s : 5.0;
      h.spec_len = (int64_t)strlen(spec->canonical) + 1;
      h.data_len = (int64_t)strlen(rk->data_path) + 1;
      h.tok_len = (int64_t)strlen(rk->tok_path) + 1;
    }
  }
  int rc = bcast(&h, sizeof h, rk->comm);
  if (rc != MPI_SUCCESS) {
    char m[MPI_MAX_ERROR_STRING];
    fprintf(stderr, SF_RUN_PROG ": rank %d: broadcast of the setup failed: %s\n", rk->rank, mpi_error(rc, m));
    return SF_SCHED_EXIT_FAILURE;
  }
  if (h.exit_code) return h.exit_code;
  const int64_t total = h.spec_len + h.data_len + h.tok_len;
  blob = malloc((size_t)total);
  int ok = blob != NULL;
  if (blob && rk->rank == 0) {
    memcpy(blob, spec->canonical, (size_t)h.spec_len);
    memcpy(blob + h.spec_len, rk->data_path, (size_t)h.data_len);
    memcpy(blob + h.spec_len + h.data_len, rk->tok_path, (size_t)h.tok_len);
  }
  /* Every rank takes part in the broadcast even without a buffer, so none waits forever. */
  char dummy;
  rc = bcast(blob ? blob : &dummy, blob ? total : 0, rk->comm);
  if (!ok || rc != MPI_SUCCESS) {
    fprintf(stderr, SF_RUN_PROG ": rank %d: cannot receive the spec (%s)\n", rk->rank,
            ok ? "MPI broadcast failed" : "out of memory");
    free(blob);
    /* the others learn it at the collective verdict of step 2 */
    return -1;
  }
  rk->quiet = h.quiet;
  rk->backend = h.backend;
  rk->threads = h.threads;
  rk->no_graphs = h.no_graphs;
  rk->progress_every_s = h.progress_every_s;
  if (rk->rank != 0) {
    rk->data_path = strdup(blob + h.spec_len);
    rk->tok_path = strdup(blob + h.spec_len + h.data_len);
  }
  rk->canonical = strdup(blob);
  free(blob);
  return 0;
}

/* Ranks on this node, and whether rank 0 is one of them (it computes only
 * when alone), for the default thread count. */
static sf_status node_layout(sf_rank *rk, int *compute_on_node, sf_error *err) {
  MPI_Comm node;
  if (MPI_Comm_split_type(rk->comm, MPI_COMM_TYPE_SHARED, rk->rank, MPI_INFO_NULL, &node) != MPI_SUCCESS)
    return sf_fail(err, SF_ERR_MPI, "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) failed");
  MPI_Comm_rank(node, &rk->local_rank);
  MPI_Comm_size(node, &rk->local_size);
  int lowest = rk->rank, min_rank = 0;
  int rc = MPI_Allreduce(&lowest, &min_rank, 1, MPI_INT, MPI_MIN, node);
  MPI_Comm_free(&node);
  if (rc != MPI_SUCCESS) return sf_fail(err, SF_ERR_MPI, "MPI_Allreduce on the node communicator failed");
  rk->node_id = min_rank;
  /* Testing aid: SCANFLASH_TEST_RANKS_PER_NODE=N makes the driver see nodes
   * of N consecutive world ranks (only its grouping of context-parallel
   * items: threads and GPUs follow the real node). */
  const char *fake = getenv("SCANFLASH_TEST_RANKS_PER_NODE");
  if (fake && atoi(fake) > 0) rk->node_id = rk->rank / atoi(fake) * atoi(fake);
  *compute_on_node = rk->local_size - (rk->size > 1 && min_rank == 0 ? 1 : 0);
  /* Rank 0 (local rank 0 of its node: the split is keyed by world rank)
   * only drives when there are workers, so it takes no GPU. */
  rk->local_compute_index = rk->local_rank - (rk->size > 1 && min_rank == 0 ? 1 : 0);
  return SF_OK;
}

/* Default cpu threads: the cores this rank may use, shared with the other
 * computing ranks of the node (mpirun binds ranks to cores or sockets; an
 * unbound rank sees the whole node). OMP_NUM_THREADS, when set, wins. */
static int default_threads(int compute_on_node) {
  if (getenv("OMP_NUM_THREADS")) return 0;
  cpu_set_t set;
  int mine = 1;
  if (sched_getaffinity(0, sizeof set, &set) == 0) mine = CPU_COUNT(&set);
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  int share = compute_on_node > 0 && online > 0 ? (int)(online / compute_on_node) : mine;
  int t = mine < share ? mine : share;
  return t < 1 ? 1 : t;
}

/* Step 2 on this rank. */
static sf_status prepare(sf_rank *rk, const sf_spec *spec, sf_error *err) {
  if (rk->rank == 0) {
    rk->spec = spec;
  } else {
    SF_TRY(sf_spec_parse_yaml(rk->canonical, strlen(rk->canonical), "the spec broadcast by rank 0", &rk->own_spec, err));
    rk->have_own_spec = 1;
    rk->spec = &rk->own_spec;
  }
  int compute_on_node = 1;
  SF_TRY(node_layout(rk, &compute_on_node, err));
  rk->computes = rk->size == 1 || rk->rank > 0;
  if (rk->threads <= 0) rk->threads = default_threads(compute_on_node);

  SF_TRY(sf_humaneval_load(rk->data_path, &rk->set, err));
  SF_TRY(sf_tokenizer_load(rk->tok_path, &rk->tok, err));
  SF_TRY(sf_corpus_build(&rk->set, rk->tok, &rk->corpus, err));
  for (int32_t i = 0; i < rk->spec->n_problems; i++)
    if (rk->spec->problems[i] >= rk->set.n)
      return sf_fail(err, SF_ERR_ARG, "problem %d of the sweep is not in %s (%d problems)", (int)rk->spec->problems[i],
                     rk->data_path, (int)rk->set.n);
  if (!rk->computes) return SF_OK;
  const char *fail = getenv("SCANFLASH_FAIL_ITEM");
  sf_runner_config rc = {.rank = rk->rank, .num_threads = rk->threads, .fail_key = fail && *fail ? fail : NULL,
                         .poll = sf_sched_poll, .poll_user = rk, .no_graphs = rk->no_graphs};
  if (rk->backend == SF_BACKEND_CUDA) {
    /* The node's computing ranks take its visible GPUs in turn (under Slurm's
     * --gpus-per-task each sees one: device 0). */
    int n = 0;
    char why[256] = "";
    SF_TRY(visible_gpus(&n, why, sizeof why, err));
    if (n == 0)
      return sf_fail(err, SF_ERR_DEVICE, "backend cuda: no GPU visible on %s (%s)", rk->host, why[0] ? why : "none");
    rc.backend = "cuda";
    rc.device = rk->local_compute_index % n;
  }
  rk->fail_key = rc.fail_key;
  return sf_runner_create(&rc, &rk->runner, err);
}

/* The verdict of step 2: the lowest failing rank's message, printed by rank 0. */
static int agree(sf_rank *rk, int failed, const char *msg) {
  int mine = failed ? rk->rank : rk->size, first = rk->size;
  if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, rk->comm) != MPI_SUCCESS) {
    fprintf(stderr, SF_RUN_PROG ": rank %d: MPI_Allreduce of the setup status failed\n", rk->rank);
    return SF_SCHED_EXIT_FAILURE;
  }
  if (first == rk->size) return 0;
  char text[SF_ERROR_MSG_MAX + SF_HOST_LEN + 32];
  memset(text, 0, sizeof text);
  if (rk->rank == first) {
    if (rk->size > 1) snprintf(text, sizeof text, "rank %d (%s): %s", rk->rank, rk->host, msg);
    else snprintf(text, sizeof text, "%s", msg);
  }
  if (MPI_Bcast(text, (int)sizeof text, MPI_CHAR, first, rk->comm) == MPI_SUCCESS && rk->rank == 0 && text[0])
    fprintf(stderr, SF_RUN_PROG ": %s\n", text);
  return SF_SCHED_EXIT_FAILURE;
}

int sf_sched_setup(sf_rank *rk, const sf_spec *spec, const sf_run_options *opts, int setup_exit) {
  int code = step1(rk, spec, opts, setup_exit);
  if (code > 0) return code;
  sf_error err;
  sf_error_clear(&err);
  sf_status rc;
  if (code < 0) rc = sf_fail(&err, SF_ERR_MPI, "the setup broadcast did not arrive");
  else rc = prepare(rk, spec, &err);
  return agree(rk, rc != SF_OK, err.msg);
}

void sf_sched_device_row(const sf_rank *rk, sf_results_device *row) {
  memset(row, 0, sizeof *row);
  row->rank = rk->rank;
  row->device = -1;
  if (!rk->computes || !rk->runner) return;
  sf_runner_device d;
  sf_runner_describe(rk->runner, &d);
  row->device = d.device;
  snprintf(row->host, sizeof row->host, "%s", rk->host);
  snprintf(row->backend, sizeof row->backend, "%s", d.backend);
  snprintf(row->name, sizeof row->name, "%s", d.name);
  row->memory_bytes = d.memory_bytes;
  snprintf(row->uuid, sizeof row->uuid, "%.47s", d.uuid);
  row->cc_major = d.gpu.cc_major;
  row->cc_minor = d.gpu.cc_minor;
  row->sm_count = d.gpu.sm_count;
  row->sm_clock_mhz = d.max_sm_clock_mhz;
  row->mem_clock_mhz = d.max_mem_clock_mhz;
  row->mem_bus_width_bits = d.gpu.mem_bus_width_bits;
  row->l2_bytes = d.gpu.l2_bytes;
  if (d.gpu.name[0]) {
    sf_gpu_libs libs;
    sf_gpu_libs_query(&libs);
    row->driver_version = libs.cuda_driver_version;
    row->runtime_version = libs.cuda_runtime_version;
  }
}

void sf_rank_free(sf_rank *rk) {
  sf_runner_free(rk->runner);
  sf_sched_batch_free(&rk->batch);
  if (rk->corpus.n) sf_corpus_free(&rk->corpus);
  if (rk->tok) sf_tokenizer_free(rk->tok);
  if (rk->set.items) sf_problem_set_free(&rk->set);
  if (rk->have_own_spec) sf_spec_free(&rk->own_spec);
  free(rk->data_path);
  free(rk->tok_path);
  free(rk->canonical);
  memset(rk, 0, sizeof *rk);
}
