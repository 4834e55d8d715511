/* Internals of scanflash run shared by the sched files: the per-rank context
 * (no globals: everything a rank holds lives here), the item inputs built
 * from the corpus, the work queue, progress accounting, and the loops. */
#ifndef SCANFLASH_SCHED_INTERNAL_H
#define SCANFLASH_SCHED_INTERNAL_H

#include <stdint.h>

#include "data/humaneval.h"
#include "prompts/prompts.h"
#include "results/results.h"
#include "runner/runner.h"
#include "sched/sched.h"
#include "sched/wire.h"
#include "tokenizer/tokenizer.h"

#define SF_RUN_PROG "scanflash run"

typedef struct sf_progress sf_progress;

/* The token ids of one item's sequences, reused from item to item. */
typedef struct sf_sched_batch {
  sf_tokens ids;                /* prompts packed back to back */
  sf_tokens one;                /* one packed context, before it is appended */
  int32_t *lens, *gen, *problems;
  int32_t cap;
} sf_sched_batch;

/* Everything one rank holds for the run. */
typedef struct sf_rank {
  MPI_Comm comm;
  int rank, size;
  int local_rank, local_size;   /* on this node (MPI_COMM_TYPE_SHARED) */
  int local_compute_index;      /* among the node's computing ranks: its GPU */
  int node_id;                  /* the lowest world rank on this node (names the node) */
  int computes;                 /* runs items: workers, or rank 0 when alone */
  char host[SF_HOST_LEN];

  /* from rank 0's broadcast */
  int quiet;
  int backend;                  /* sf_backend_choice, resolved (cpu or cuda) */
  int no_graphs;
  int threads;                  /* resolved per rank */
  double progress_every_s;
  char *data_path, *tok_path, *canonical;
  char data_sha[65], tok_sha[65]; /* rank 0 */

  sf_spec own_spec;             /* workers: parsed from the canonical text */
  int have_own_spec;
  const sf_spec *spec;          /* the spec this rank uses */
  sf_problem_set set;
  sf_tokenizer *tok;
  sf_corpus corpus;
  sf_runner *runner;
  sf_sched_batch batch;
  const char *fail_key;         /* $SCANFLASH_FAIL_ITEM */

  /* worker: an ABORT arrived for the item in hand */
  int aborted;
  /* rank 0: the driver's progress, printed from check points when rank 0
   * runs items itself (NULL elsewhere) */
  sf_progress *progress;
} sf_rank;

/* ---- inputs ---- */

/* The sequences of a generate/prefill item: context packing (or the natural
 * prompt) for each problem position, and generation lengths (fixed, or each
 * problem's canonical solution: document minus prompt tokens, at least 1). */
sf_status sf_sched_build_batch(const sf_spec *spec, const sf_corpus *c, const sf_work_item *item,
                               sf_sched_batch *b, sf_runner_batch *out, sf_error *err);
void sf_sched_batch_free(sf_sched_batch *b);

/* Token length of problem p's canonical solution as the corpus holds it. */
int64_t sf_sched_solution_tokens(const sf_corpus *c, int32_t p);

/* ---- queue ---- */

/* Keeps, in place, the plan's items of shard index/count (index % count ==
 * shard; count 0 = all) for which skip() is false, then sorts them largest
 * estimated cost first. Counts what was dropped. */
typedef int (*sf_sched_skip_fn)(void *user, const sf_work_item *item);
void sf_sched_queue(sf_plan *plan, int32_t shard_index, int32_t shard_count, sf_sched_skip_fn skip, void *user,
                    int32_t *n_skipped, int32_t *n_other_shards);

/* ---- progress ---- */

struct sf_progress {
  int64_t total, done, failed;  /* items of this run; failed: error, timeout */
  int64_t by_status[SF_STATUS_INTERRUPTED + 1];
  double cost_total, cost_done; /* estimated cost of the items that run (not the ones decided up front) */
  double tokens;                /* tokens processed by ok items: (prompt + generated) x (warm-ups + repeats) */
  double t_start, t_first_run, t_last_print;
};

void sf_progress_init(sf_progress *p, int64_t total, double cost_total, double now);
/* One item recorded; ran: it ran on a rank (its cost counts toward the ETA). */
void sf_progress_item(sf_progress *p, const sf_work_item *item, const sf_item_result *res, int ran);
/* "12/18 items, 1 failed, 2534 tok/s, 00:12 elapsed, ETA 00:07" */
void sf_progress_line(const sf_progress *p, double now, char *buf, size_t size);
/* "1:02:03", "02:03" */
void sf_format_duration(double s, char *buf, size_t size);
/* Prints the line on stderr when progress_every_s has passed since the last
 * one (never when quiet); final ("done", "stopped"): now, with that label. */
void sf_progress_tick(const sf_rank *rk, sf_progress *p, const char *final);

/* ---- running an item on this rank ---- */

/* Builds the inputs and runs item with the rank's runner: an item's own
 * failure is in out->result.status; a non-OK return means the rank cannot go
 * on (its runner is unusable). */
sf_status sf_sched_execute(sf_rank *rk, const sf_work_item *item, sf_runner_output *out, sf_error *err);

/* A context-parallel item on this worker as one member of its group (g
 * from the driver's GROUP message): the members' communicator and the
 * item's transport (MPI on the cpu backend; NCCL on cuda, its id sent over
 * MPI by group rank 0), the inputs, then the runner over the group
 * (sf_runner_run_group). Every member returns with the same status in
 * out->result; *leads: this rank is the group's leader, which reports it.
 * A non-OK return: this rank cannot go on. */
sf_status sf_sched_execute_group(sf_rank *rk, const sf_wire_group *g, sf_runner_output *out, int *leads,
                                 sf_error *err);

/* The runner's poll: a signal, the driver's ABORT (workers), the progress
 * line (rank 0 alone). */
int sf_sched_poll(void *user);

/* ---- setup and loops ---- */

/* Steps 1 and 2 of the setup (sched.h); every rank returns the same status. */
int sf_sched_setup(sf_rank *rk, const sf_spec *spec, const sf_run_options *opts, int setup_exit);
/* The /devices row of this rank (computing ranks only; backend "" otherwise). */
void sf_sched_device_row(const sf_rank *rk, sf_results_device *row);

/* Rank 0. prepare: step 3 (plan, results file, queue); run: the loop, the
 * final messages and the close. Both return an exit status. */
typedef struct sf_driver sf_driver;
/* devices and nodes: every rank's /devices row and node id (rank order). */
int sf_driver_prepare(sf_driver **out, sf_rank *rk, const sf_run_options *opts, const sf_results_device *devices,
                      const int *nodes);
int sf_driver_run(sf_driver *d);
void sf_driver_free(sf_driver *d);

/* Ranks >= 1, after step 3 succeeded: returns 0, or 1 when this rank gave up. */
int sf_sched_work(sf_rank *rk);

/* Waits for a request with short sleeps, so idle ranks leave the cores to
 * the ranks that compute (a blocking MPI wait spins). */
int sf_sched_wait(MPI_Request *req, MPI_Status *st);
void sf_sched_nap(void);

void sf_rank_free(sf_rank *rk);

#endif
