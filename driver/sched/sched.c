/* sf_sched_main: the order of the collective steps every rank goes through
 * (sched.h), so that each collective call has its partner on every rank
 * whatever fails where. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched/sched_internal.h"

static int bcast_int(int *v, MPI_Comm comm) {
  MPI_Request req;
  int rc = MPI_Ibcast(v, 1, MPI_INT, 0, comm, &req);
  return rc == MPI_SUCCESS ? sf_sched_wait(&req, NULL) : rc;
}

int sf_sched_main(MPI_Comm comm, const sf_spec *spec, const sf_run_options *opts, int setup_exit) {
  sf_rank rk;
  memset(&rk, 0, sizeof rk);
  rk.comm = comm;
  MPI_Comm_rank(comm, &rk.rank);
  MPI_Comm_size(comm, &rk.size);
  if (gethostname(rk.host, sizeof rk.host) != 0) snprintf(rk.host, sizeof rk.host, "unknown");
  rk.host[sizeof rk.host - 1] = '\0';

  int code = sf_sched_setup(&rk, spec, opts, setup_exit);
  if (code) {
    sf_rank_free(&rk);
    return code;
  }

  /* Every rank's /devices row and node, to rank 0 (context-parallel items
   * go to ranks of one node). */
  sf_results_device row, *rows = NULL;
  int *nodes = NULL;
  sf_sched_device_row(&rk, &row);
  if (rk.rank == 0) {
    rows = calloc((size_t)rk.size, sizeof *rows);
    nodes = calloc((size_t)rk.size, sizeof *nodes);
  }
  const int grc = MPI_Gather(&row, (int)sizeof row, MPI_BYTE, rows, (int)sizeof row, MPI_BYTE, 0, comm);
  const int nrc = MPI_Gather(&rk.node_id, 1, MPI_INT, nodes, 1, MPI_INT, 0, comm);
  if ((grc != MPI_SUCCESS || nrc != MPI_SUCCESS || !nodes) && rk.rank == 0) {
    free(rows);
    rows = NULL;
  }

  /* Step 3 on rank 0; its verdict to everyone. */
  sf_driver *drv = NULL;
  if (rk.rank == 0) {
    if (!rows) {
      fprintf(stderr, SF_RUN_PROG ": cannot gather the ranks' device descriptions\n");
      code = SF_SCHED_EXIT_FAILURE;
    } else {
      code = sf_driver_prepare(&drv, &rk, opts, rows, nodes);
    }
  }
  free(rows);
  free(nodes);
  if (bcast_int(&code, comm) != MPI_SUCCESS) code = SF_SCHED_EXIT_FAILURE;
  if (code) {
    sf_driver_free(drv);
    sf_rank_free(&rk);
    return code;
  }

  if (rk.rank == 0) {
    code = sf_driver_run(drv);
    sf_driver_free(drv);
  } else {
    sf_sched_work(&rk); /* a rank that gives up has told the driver, which sets the status */
  }
  /* The status, once rank 0 has closed the results file: no rank exits (and
   * makes mpirun kill the rest) before the file is safe. */
  if (bcast_int(&code, comm) != MPI_SUCCESS) code = SF_SCHED_EXIT_FAILURE;
  sf_rank_free(&rk);
  return code;
}
