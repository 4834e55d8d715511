/* Ranks >= 1: ask for work, run it, report, until the driver says STOP (the
 * conversation is drawn in wire.h). Also the runner's poll, which rank 0
 * uses too when it runs items itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

int sf_sched_poll(void *user) {
  sf_rank *rk = user;
  if (sf_sched_signalled() || rk->aborted) return 1;
  if (rk->rank > 0) {
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(0, SF_TAG_ABORT, rk->comm, &flag, &st) == MPI_SUCCESS && flag) {
      MPI_Recv(NULL, 0, MPI_BYTE, 0, SF_TAG_ABORT, rk->comm, MPI_STATUS_IGNORE);
      rk->aborted = 1;
      return 1;
    }
  } else if (rk->progress) {
    sf_progress_tick(rk, rk->progress, NULL);
  }
  return 0;
}

static int send_report(sf_rank *rk, sf_wire_kind kind, const sf_runner_output *out, const char *text) {
  void *buf = NULL;
  size_t size = 0;
  sf_error err;
  sf_error_clear(&err);
  sf_status rc;
  if (out)
    rc = sf_wire_pack(kind, rk->rank, sf_sched_signalled() != 0, &out->result, out->repeats, out->n_repeats,
                      out->steps, out->n_steps, out->kernels, out->n_kernels, text, &buf, &size, &err);
  else
    rc = sf_wire_pack(kind, rk->rank, sf_sched_signalled() != 0, NULL, NULL, 0, NULL, 0, NULL, 0, text, &buf, &size,
                      &err);
  if (rc != SF_OK && kind != SF_WIRE_FATAL) {
    /* Cannot pack the result: tell the driver why instead, so it does not wait. */
    send_report(rk, SF_WIRE_FATAL, NULL, err.msg);
    return 1;
  }
  if (rc != SF_OK) return 1;
  int mrc = size > (size_t)0x7fffffff ? MPI_ERR_COUNT
                                      : MPI_Send(buf, (int)size, MPI_BYTE, 0, SF_TAG_REPORT, rk->comm);
  free(buf);
  return mrc == MPI_SUCCESS ? 0 : 1;
}

int sf_sched_work(sf_rank *rk) {
  if (send_report(rk, SF_WIRE_REQUEST, NULL, NULL)) return 1;
  for (;;) {
    sf_work_item item;
    MPI_Request req;
    MPI_Status st;
    if (MPI_Irecv(&item, (int)sizeof item, MPI_BYTE, 0, MPI_ANY_TAG, rk->comm, &req) != MPI_SUCCESS ||
        sf_sched_wait(&req, &st) != MPI_SUCCESS) {
      fprintf(stderr, SF_RUN_PROG ": rank %d: cannot receive from the driver\n", rk->rank);
      return 1;
    }
    if (st.MPI_TAG == SF_TAG_ABORT) continue; /* sent before the driver had our last report */
    if (st.MPI_TAG == SF_TAG_STOP) return 0;
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    if (st.MPI_TAG != SF_TAG_ITEM || count != (int)sizeof item) {
      char why[96];
      snprintf(why, sizeof why, "unexpected message from the driver (tag %d, %d bytes)", st.MPI_TAG, count);
      send_report(rk, SF_WIRE_FATAL, NULL, why);
      return 1;
    }
    item.key[SF_KEY_LEN - 1] = '\0';
    rk->aborted = 0;
    sf_runner_output out;
    sf_error err;
    sf_error_clear(&err);
    if (sf_sched_execute(rk, &item, &out, &err) != SF_OK) {
      send_report(rk, SF_WIRE_FATAL, NULL, err.msg);
      return 1;
    }
    if (send_report(rk, SF_WIRE_RESULT, &out, NULL)) return 1;
  }
}
