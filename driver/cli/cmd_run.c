/* scanflash run: run a sweep under mpirun / srun (or alone, as one rank) and
 * write its results file. This file is the command line and MPI's lifetime;
 * the setup, the driver and the workers are in driver/sched. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command.h"
#include "sched/sched.h"
#include "scanflash/log.h"
#include "scanflash/parse.h"
#include "spec/spec.h"

#define PROG "scanflash run"

_Static_assert((int)SF_SCHED_EXIT_OK == (int)SF_EXIT_OK && (int)SF_SCHED_EXIT_FAILURE == (int)SF_EXIT_FAILURE &&
                   (int)SF_SCHED_EXIT_USAGE == (int)SF_EXIT_USAGE &&
                   (int)SF_SCHED_EXIT_INTERRUPTED == (int)SF_EXIT_INTERRUPTED,
               "scanflash run's exit statuses are the CLI's");

static void usage(FILE *f) {
  fprintf(f,
          "usage: scanflash run (SPEC.yaml | quick-sweep flags) -o RESULTS.h5 [--resume [--retry-failed]]\n"
          "                     [--backend auto|cpu|cuda] [--threads T] [--shard I/N] [--quiet]\n"
          "                     [--progress S] [--data FILE] [--tokenizer FILE]\n"
          "\n"
          "Runs every work item of a sweep and writes the results file. Under mpirun or\n"
          "srun, rank 0 drives: it hands out items largest estimated cost first, one at\n"
          "a time as ranks ask, and makes each result durable before the rank that sent\n"
          "it gets its next item; ranks >= 1 run the items (one GPU each, by node-local\n"
          "rank, with the cuda backend). Run alone, the one rank does both. An item\n"
          "that needs k > 1 GPUs (spec key gpus, --gpus) runs context parallel on k idle\n"
          "worker ranks of one node (k distinct GPUs on cuda), which form a communicator\n"
          "(MPI; NCCL on cuda) and run it together: the prompt shared out over them\n"
          "(Transformer: zigzag blocks, ring attention, sharded KV cache; Mamba:\n"
          "contiguous pieces, states passed along), decode steps replicated; the\n"
          "group's first rank reports the item (docs/context-parallel.md).\n"
          "\n"
          "  mpirun -np 4 scanflash run sweeps/quick.yaml -o quick.h5\n"
          "  srun --mpi=pmix scanflash run sweeps/quick.yaml -o quick.h5\n"
          "  scanflash run --model tiny-mamba1 --context 256 --problems 0-7 --gen 8 -o one.h5\n"
          "\n"
          "  -o, --output FILE  the results file (HDF5; FILE.journal beside it while it\n"
          "                     is open). An existing FILE is refused without --resume\n"
          "  --resume           continue FILE: items already finished are skipped, items\n"
          "                     recorded as interrupted run again; an unclean FILE is\n"
          "                     rebuilt from its journal. The spec must be the same\n"
          "                     (--item-timeout and --device-mem may change)\n"
          "  --retry-failed     with --resume: run items recorded as error or timeout again\n"
          "  --backend B        auto (default: cuda where the build has it and rank 0's node\n"
          "                     has a GPU, else cpu), cpu, or cuda (each computing rank\n"
          "                     takes one of its node's visible GPUs in turn)\n"
          "  --no-graphs        decode steps without CUDA graphs (every op launched)\n"
          "  --threads T        cpu threads per rank (default: OMP_NUM_THREADS, else the\n"
          "                     cores a rank may use shared among the node's computing ranks)\n"
          "  --shard I/N        run only the items whose index %% N == I (0 <= I < N): one\n"
          "                     shard per job-array task; join the files with scanflash merge\n"
          "  --quiet            no start and progress lines (errors and failed items still)\n"
          "  --progress S       seconds between progress lines on stderr (default 5)\n"
          "  --data FILE        HumanEvalPlus.jsonl[.gz]; else $SCANFLASH_DATA, data/,\n"
          "                     ../shared/data/\n"
          "  --tokenizer FILE   tokenizer.json; else $SCANFLASH_TOKENIZER, data/,\n"
          "                     ../shared/data/\n"
          "\n"
          "%s"
          "\n"
          "Items not run: predicted to exceed --device-mem (recorded oom_predicted with the\n"
          "estimate); needing more GPUs than the largest node has worker ranks (skipped,\n"
          "naming both); kernels items on the cpu backend (skipped). A failing item is\n"
          "recorded (error, oom, timeout) and the sweep goes on; failed items are listed\n"
          "at the end.\n"
          "\n"
          "Signals: SIGTERM, SIGUSR1 or SIGINT on any rank stop the sweep: no more items\n"
          "are handed out, items in flight stop at their next check point (between\n"
          "prefill chunks and decode steps) and are recorded as interrupted, the file is\n"
          "closed, and every rank exits 3. mpirun forwards SIGUSR1 to the ranks (SIGTERM\n"
          "to mpirun kills them at once: the journal keeps what was reported); under\n"
          "Slurm use --signal=USR1@SECONDS. Then run the same command with --resume.\n"
          "\n"
          "Testing aid: with SCANFLASH_FAIL_ITEM=KEY in the environment, the item with\n"
          "that key fails with \"injected failure (SCANFLASH_FAIL_ITEM)\"; with KEY@G only\n"
          "rank G of its context-parallel group fails, after its first prefill.\n"
          "\n"
          "Exit status: 0 the sweep completed (even when some items failed: they are\n"
          "listed), 1 error (setup, results file, a rank gave up), 2 usage error,\n"
          "3 interrupted by a signal (resume with --resume).\n",
          sf_spec_flags_help());
}

/* "I/N" with 0 <= I < N. */
static int parse_shard(const char *s, int32_t *index, int32_t *count) {
  const char *slash = strchr(s, '/');
  if (!slash) return 0;
  char a[32];
  if ((size_t)(slash - s) >= sizeof a) return 0;
  memcpy(a, s, (size_t)(slash - s));
  a[slash - s] = '\0';
  int64_t i, n;
  sf_error e;
  if (sf_parse_i64(a, "--shard", &i, &e) != SF_OK || sf_parse_i64(slash + 1, "--shard", &n, &e) != SF_OK) return 0;
  if (n < 1 || n > 1000000 || i < 0 || i >= n) return 0;
  *index = (int32_t)i;
  *count = (int32_t)n;
  return 1;
}

/* Rank 0's command line; prints its own one-line error. Returns an exit status. */
static int parse_args(int argc, char **argv, sf_spec *spec, int *have_spec, sf_run_options *o) {
  static const char *const value_opts[] = {"-o",      "--output", "--backend", "--threads", "--shard",
                                           "--data",  "--tokenizer", "--progress", NULL};
  memset(o, 0, sizeof *o);
  *have_spec = 0;
  char **rest = calloc((size_t)argc + 1, sizeof *rest);
  if (!rest) {
    fprintf(stderr, PROG ": out of memory\n");
    return SF_EXIT_FAILURE;
  }
  sf_error err;
  sf_error_clear(&err);
  int n_rest = 0;
  if (sf_spec_from_args(argc, argv, value_opts, spec, &n_rest, rest, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    free(rest);
    return err.code == SF_ERR_ARG ? SF_EXIT_USAGE : SF_EXIT_FAILURE;
  }
  *have_spec = 1;
  static const struct option opts[] = {
      {"output", required_argument, 0, 'o'},   {"resume", no_argument, 0, 'r'},
      {"retry-failed", no_argument, 0, 'R'},   {"backend", required_argument, 0, 'b'},
      {"threads", required_argument, 0, 'T'},  {"shard", required_argument, 0, 's'},
      {"quiet", no_argument, 0, 'q'},          {"progress", required_argument, 0, 'P'},
      {"data", required_argument, 0, 'd'},     {"tokenizer", required_argument, 0, 't'},
      {"no-graphs", no_argument, 0, 'G'},      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int c, rc = SF_EXIT_OK;
  int64_t threads = 0;
  opterr = 0;
  optind = 1;
  while (rc == SF_EXIT_OK && (c = getopt_long(n_rest, rest, ":o:qh", opts, NULL)) != -1) {
    switch (c) {
      case 'o': o->output = optarg; break;
      case 'r': o->resume = 1; break;
      case 'R': o->retry_failed = 1; break;
      case 'G': o->no_graphs = 1; break;
      case 'q': o->quiet = 1; break;
      case 'd': o->data = optarg; break;
      case 't': o->tokenizer = optarg; break;
      case 'b':
        if (!strcmp(optarg, "auto")) o->backend = SF_BACKEND_AUTO;
        else if (!strcmp(optarg, "cpu")) o->backend = SF_BACKEND_CPU;
        else if (!strcmp(optarg, "cuda")) o->backend = SF_BACKEND_CUDA;
        else {
          fprintf(stderr, PROG ": --backend: '%s' is not one of auto, cpu, cuda\n", optarg);
          rc = SF_EXIT_USAGE;
        }
        break;
      case 'T':
        if (sf_parse_i64(optarg, "--threads", &threads, &err) != SF_OK || threads < 0 || threads > 4096) {
          fprintf(stderr, PROG ": --threads: '%s' is not a thread count in [0, 4096]\n", optarg);
          rc = SF_EXIT_USAGE;
        }
        o->threads = (int32_t)threads;
        break;
      case 's':
        if (!parse_shard(optarg, &o->shard_index, &o->shard_count)) {
          fprintf(stderr, PROG ": --shard: '%s' is not I/N with 0 <= I < N\n", optarg);
          rc = SF_EXIT_USAGE;
        }
        break;
      case 'P':
        if (sf_parse_double(optarg, "--progress", &o->progress_every_s, &err) != SF_OK || !(o->progress_every_s > 0)) {
          fprintf(stderr, PROG ": --progress: '%s' is not a positive number of seconds\n", optarg);
          rc = SF_EXIT_USAGE;
        }
        break;
      case ':':
        fprintf(stderr, PROG ": option '%s' needs a value\n", rest[optind - 1]);
        rc = SF_EXIT_USAGE;
        break;
      default:
        fprintf(stderr, PROG ": unknown option '%s' (scanflash run --help)\n", rest[optind - 1]);
        rc = SF_EXIT_USAGE;
    }
  }
  if (rc == SF_EXIT_OK && optind < n_rest) {
    fprintf(stderr, PROG ": unexpected argument '%s' (one spec file at most)\n", rest[optind]);
    rc = SF_EXIT_USAGE;
  }
  if (rc == SF_EXIT_OK && (!o->output || !o->output[0])) {
    fprintf(stderr, PROG ": no results file: give -o RESULTS.h5 (scanflash run --help)\n");
    rc = SF_EXIT_USAGE;
  }
  if (rc == SF_EXIT_OK && o->retry_failed && !o->resume) {
    fprintf(stderr, PROG ": --retry-failed goes with --resume (it re-runs failed items of an existing file)\n");
    rc = SF_EXIT_USAGE;
  }
  free(rest);
  return rc;
}

int cmd_run(int argc, char **argv) {
  for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return SF_EXIT_OK;
    }
  /* Before MPI_Init, which can take seconds under srun: a pre-emption
   * warning that arrives while ranks start must set the stop flag, not kill
   * the rank with SIGUSR1's default action (seen under Slurm). */
  sf_sched_signals_install();
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS) {
    fprintf(stderr, PROG ": MPI_Init failed\n");
    return SF_EXIT_FAILURE;
  }
  /* Errors come back as codes: a rank reports its failure instead of aborting the job. */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) sf_log_set_rank(rank);

  sf_spec spec;
  sf_run_options opts;
  int have_spec = 0, setup_exit = SF_EXIT_OK;
  memset(&spec, 0, sizeof spec);
  memset(&opts, 0, sizeof opts);
  /* Only rank 0 reads the command line (one error message, not one per
   * rank); the others receive the spec from it. */
  if (rank == 0) setup_exit = parse_args(argc, argv, &spec, &have_spec, &opts);
  const int code = sf_sched_main(MPI_COMM_WORLD, rank == 0 && setup_exit == SF_EXIT_OK ? &spec : NULL,
                                 rank == 0 ? &opts : NULL, setup_exit);
  if (have_spec) sf_spec_free(&spec);
  fflush(stderr);
  MPI_Finalize();
  return code;
}
