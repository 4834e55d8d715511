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
  int32_t next;                 /* next queue position to hand out */
  int32_t n_before, n_other;    /* finished by an earlier run; in other shards */
  int32_t *busy;                /* [size] queue position a worker holds, or -1 */
  unsigned char *abort_sent, *active;
  int n_active;
  int stopping;                 /* hand out nothing more */
  int interrupted;              /* a signal on some rank */
  int fatal;                    /* the results file or a rank failed */
  sf_progress prog;
  sf_driver_failure *fails;
  int32_t n_fails, cap_fails;
};

#endif
