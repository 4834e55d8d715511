/* Ranks >= 1: ask for work, run it (alone, or as one member of a
 * context-parallel group), report, until the driver says STOP (the
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

/* Waits (napping: an idle rank leaves the cores to the busy ones) for the
 * driver's next message; *st says what it is. */
static int wait_driver(sf_rank *rk, MPI_Status *st) {
  for (;;) {
    int flag = 0;
    if (MPI_Iprobe(0, MPI_ANY_TAG, rk->comm, &flag, st) != MPI_SUCCESS) return 1;
    if (flag) return 0;
    sf_sched_nap();
  }
}

int sf_sched_work(sf_rank *rk) {
  if (send_report(rk, SF_WIRE_REQUEST, NULL, NULL)) return 1;
  sf_wire_group *g = malloc(sizeof *g);
  if (!g) {
    send_report(rk, SF_WIRE_FATAL, NULL, "out of host memory");
    return 1;
  }
  int rc = 0;
  for (;;) {
    MPI_Status st;
    int count = 0;
    if (wait_driver(rk, &st) != 0) {
      fprintf(stderr, SF_RUN_PROG ": rank %d: cannot receive from the driver\n", rk->rank);
      rc = 1;
      break;
    }
    MPI_Get_count(&st, MPI_BYTE, &count);
    const int tag = st.MPI_TAG;
    const int want = tag == SF_TAG_ITEM ? (int)sizeof g->item : tag == SF_TAG_GROUP ? (int)sizeof *g : 0;
    const int known = tag == SF_TAG_ITEM || tag == SF_TAG_GROUP || tag == SF_TAG_STOP || tag == SF_TAG_ABORT;
    if (!known || count != want) {
      char why[96];
      snprintf(why, sizeof why, "unexpected message from the driver (tag %d, %d bytes)", tag, count);
      send_report(rk, SF_WIRE_FATAL, NULL, why);
      rc = 1;
      break;
    }
    if (MPI_Recv(want ? (void *)g : NULL, want, MPI_BYTE, 0, tag, rk->comm, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
      fprintf(stderr, SF_RUN_PROG ": rank %d: cannot receive from the driver\n", rk->rank);
      rc = 1;
      break;
    }
    if (tag == SF_TAG_ABORT) continue; /* sent before the driver had our last report */
    if (tag == SF_TAG_STOP) break;
    g->item.key[SF_KEY_LEN - 1] = '\0';
    rk->aborted = 0;
    sf_runner_output out;
    sf_error err;
    sf_error_clear(&err);
    int leads = 1;
    const sf_status xs = tag == SF_TAG_GROUP ? sf_sched_execute_group(rk, g, &out, &leads, &err)
                                             : sf_sched_execute(rk, &g->item, &out, &err);
    if (xs != SF_OK) {
      send_report(rk, SF_WIRE_FATAL, NULL, err.msg);
      rc = 1;
      break;
    }
    /* A member's done carries its own failure (not the one the group agreed
     * from another member's), for the driver to print: the leader's row only
     * names the failed member. */
    char done[SF_KEY_LEN + SF_MSG_LEN + 2];
    int fj = 0, fk = 0;
    const int own = out.result.status != SF_STATUS_OK && out.result.status != SF_STATUS_INTERRUPTED &&
                    out.result.status != SF_STATUS_TIMEOUT &&
                    sscanf(out.result.message, "rank %d of %d failed", &fj, &fk) != 2;
    snprintf(done, sizeof done, "%s%s%s", g->item.key, own ? " " : "", own ? out.result.message : "");
    if (leads ? send_report(rk, SF_WIRE_RESULT, &out, NULL) : send_report(rk, SF_WIRE_DONE, NULL, done)) {
      rc = 1;
      break;
    }
  }
  free(g);
  return rc;
}
