/* The driver's state (rank 0), shared by prepare.c (setup step 3) and
 * driver.c (the loop, the close, the final messages). */
#ifndef SCANFLASH_SCHED_DRIVER_INTERNAL_H
#define SCANFLASH_SCHED_DRIVER_INTERNAL_H

#include "sched/sched_internal.h"

typedef struct sf_driver_failure {
  int32_t q;                    /* queue position */
  int32_t status;
  char message[SF_MSG_LEN];
} sf_driver_failure;

struct sf_driver {
  sf_rank *rk;
  const sf_run_options *opts;
  sf_results *res;
  sf_plan queue;                /* this run's items, largest estimated cost first */
  int32_t next;                 /* run alone: next queue position */
  int32_t n_before, n_other;    /* finished by an earlier run; in other shards */
  int32_t *busy;                /* [size] queue position a worker holds, or -1 */
  unsigned char *abort_sent, *active;
  int n_active;

  /* Handing out with groups (context-parallel items, gpus = k > 1): a
   * worker that reported waits, idle, for its answer; an item needing k
   * goes to k idle workers of one node (with k different GPUs on cuda),
   * and while it waits for them that node's idle workers are held for it
   * and single-GPU items further down the queue go to the other idle
   * workers. */
  unsigned char *idle;          /* [size] reported, not answered yet */
  unsigned char *leads;         /* [size] reports the result of the item it holds */
  unsigned char *assigned;      /* [n_items] handed out (or dropped: no node can host it now) */
  int32_t first_open;           /* every position before it is assigned */
  int *node;                    /* [size] node id of each rank */
  int *order;                   /* the workers by node, then rank */
  int *node_lo, *node_hi;       /* [size] worker w's node is order[node_lo[w] .. node_hi[w]) */
  int n_order;
  char (*gpu)[48];              /* [size] cuda: the GPU's UUID (a group takes distinct ones); cpu: "" */
  int max_group;                /* the most workers of one node a group can take (at the start) */
  int stopping;                 /* hand out nothing more */
  int interrupted;              /* a signal on some rank */
  int fatal;                    /* the results file or a rank failed */
  sf_progress prog;
  sf_driver_failure *fails;
  int32_t n_fails, cap_fails;
};

#endif
