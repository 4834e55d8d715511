/* scanflash run's engine room: the setup every rank goes through, the
 * driver loop (rank 0) and the worker loop (ranks >= 1), over MPI (DESIGN
 * "Execution model"). cmd_run.c parses the command line; everything after
 * that is here.
 *
 * Setup (collective, in three steps, so that a failure anywhere reaches every
 * rank and nothing is created before every rank is ready):
 *   1. rank 0 resolves the data and tokenizer paths and hashes them, picks
 *      the backend, and broadcasts the spec's canonical text, the paths and
 *      the options; a failure there ends every rank with rank 0's status;
 *   2. every rank parses that spec (rank 0 keeps its own, which the
 *      canonical text reproduces), loads the tokenizer and the dataset and
 *      builds the corpus (deterministic, so work items name problems and
 *      models by position), and the ranks that run items create their
 *      runner; an MPI_Allreduce finds the first failing rank, whose message
 *      rank 0 prints once, and every rank returns 1;
 *   3. rank 0 expands the plan, opens the results file (create, or resume:
 *      finished keys are skipped), writes the /problems and /devices rows,
 *      keeps the shard's unfinished items, largest estimated cost first, and
 *      broadcasts whether that worked.
 * Then rank 0 drives (and runs the items itself when it is alone) until
 * every item is recorded, the sweep is interrupted, or the results file
 * fails; it closes the file and broadcasts the exit status, which every
 * rank returns.
 *
 * Items rank 0 records without running them: those whose estimate exceeds
 * the device memory budget (oom_predicted, with the estimate) and those that
 * need more GPUs (k) than the largest node has worker ranks (skipped, naming
 * k and that count; alone, rank 0 is a node of one).
 *
 * Context-parallel items (gpus = k > 1): rank 0 knows each rank's node
 * (gathered at setup: the lowest world rank of its MPI_COMM_TYPE_SHARED
 * node) and GPU; such an item goes to k idle workers of one node with
 * distinct GPUs, which make their communicator with MPI_Comm_create_group
 * and the item's transport (MPI on cpu, NCCL on cuda with the id from group
 * rank 0 over MPI), run it together (sf_runner_run_group: every failure and
 * stop agreed, so no member hangs), and report: the lowest rank the result,
 * the others "done" (wire.h). While such an item waits for its group, its
 * node's idle workers are held for it and single-GPU items go to the other
 * idle workers. Testing aid: SCANFLASH_TEST_RANKS_PER_NODE=N groups the
 * ranks into nodes of N consecutive world ranks, as if on several nodes.
 *
 * Signals: SIGTERM, SIGUSR1 and SIGINT only set a flag (sf_sched_signals).
 * Seen on any rank, the driver stops handing out work and aborts the items
 * in flight at their next check point (recorded as interrupted, run again
 * by --resume); everything reported is durable; every rank returns
 * SF_SCHED_EXIT_INTERRUPTED. */
#ifndef SCANFLASH_SCHED_H
#define SCANFLASH_SCHED_H

#include <mpi.h>
#include <stdint.h>

#include "spec/spec.h"

/* Exit statuses of scanflash run (cli/command.h repeats them). */
enum {
  SF_SCHED_EXIT_OK = 0,          /* the sweep completed (some items may have failed: listed) */
  SF_SCHED_EXIT_FAILURE = 1,     /* setup failed, the results file failed, or a rank gave up */
  SF_SCHED_EXIT_USAGE = 2,       /* bad command line */
  SF_SCHED_EXIT_INTERRUPTED = 3  /* stopped by a signal: resume with --resume */
};

typedef enum sf_backend_choice { SF_BACKEND_AUTO = 0, SF_BACKEND_CPU, SF_BACKEND_CUDA } sf_backend_choice;

typedef struct sf_run_options {
  const char *output;           /* RESULTS.h5 */
  int resume, retry_failed, quiet;
  sf_backend_choice backend;
  int32_t threads;              /* cpu threads per rank; 0 = automatic */
  int32_t no_graphs;            /* cuda: decode steps without CUDA graphs */
  int32_t shard_index, shard_count; /* shard_count 0: no sharding */
  const char *data, *tokenizer; /* flags; NULL: the usual search (data/data_paths.h) */
  double progress_every_s;      /* 0: every 5 s */
} sf_run_options;

/* Collective over comm. Rank 0 passes its parsed spec and options, or a
 * non-zero setup_exit when its command line was rejected (it printed why);
 * the other ranks pass NULL, NULL, 0. Returns the exit status, the same on
 * every rank. */
int sf_sched_main(MPI_Comm comm, const sf_spec *spec, const sf_run_options *opts, int setup_exit);

/* Installs the SIGTERM / SIGUSR1 / SIGINT handlers (flag only). */
void sf_sched_signals_install(void);
/* The last of those signals seen by this process, or 0. */
int sf_sched_signalled(void);

#endif
