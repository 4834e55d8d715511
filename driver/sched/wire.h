/* The messages between the driver (rank 0) and the workers (ranks >= 1) of
 * scanflash run, and every MPI tag they use. All ranks run the same binary,
 * so records travel as their struct bytes (records.h).
 *
 * Conversation of one worker (dynamic scheduling, DESIGN "Execution model"):
 *
 *   worker                                  driver
 *   REPORT(request)               ---->
 *                                 <----     ITEM(sf_work_item) | STOP
 *   ... runs the item ...
 *   REPORT(result of that item)   ---->     makes it durable, then answers
 *                                 <----     ITEM | STOP
 *   ...
 *   after STOP: the final MPI_Bcast of the exit status (sched.c).
 *
 * ABORT may reach a worker at any time after the driver decided to stop (a
 * signal on some rank, or a failure of the results file): a worker running
 * an item polls for it at the item's check points and abandons the item
 * (recorded as interrupted); a worker waiting for its answer drops it (it
 * was sent before the worker's last report arrived). The driver sends at
 * most one ABORT per item handed out, and none after STOP.
 *
 * Context-parallel items (gpus = k > 1): the driver answers k idle workers
 * of one node with GROUP(sf_wire_group: the item and the k world ranks,
 * lowest first) instead of ITEM; an idle worker may wait for its answer
 * until enough of its node's workers are idle. The members make their
 * communicator (MPI_Comm_create_group, tag SF_TAG_GROUP_COMM) and the
 * item's transport, run it together, and report: the group's leader (the
 * lowest rank, group rank 0) REPORT(result), the others REPORT(done, text =
 * the item's key). Each answer frees its sender; the item is recorded once,
 * from the leader's result. ABORT goes to every member. */
#ifndef SCANFLASH_SCHED_WIRE_H
#define SCANFLASH_SCHED_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "scanflash/error.h"
#include "scanflash/records.h"

/* MPI tags (point-to-point on the run's communicator; collectives use none). */
enum {
  SF_TAG_REPORT = 7101, /* worker -> driver: an sf_wire message (request, result, fatal) */
  SF_TAG_ITEM = 7102,   /* driver -> worker: one sf_work_item, its bytes */
  SF_TAG_STOP = 7103,   /* driver -> worker: no more work (zero bytes) */
  SF_TAG_ABORT = 7104,  /* driver -> worker: abandon the item in hand (zero bytes) */
  SF_TAG_GROUP = 7105,  /* driver -> worker: one sf_wire_group, its bytes */
  SF_TAG_GROUP_COMM = 7106 /* MPI_Comm_create_group of a group's members */
};

typedef enum sf_wire_kind {
  SF_WIRE_REQUEST = 1,  /* first report: no result yet */
  SF_WIRE_RESULT = 2,   /* the result of the item last handed to this worker */
  SF_WIRE_FATAL = 3,    /* the worker cannot go on (text says why); its item is lost */
  SF_WIRE_DONE = 4      /* a group member's part of its item is done (text: the item's
                           key, then " " and the member's own error message when
                           its failure failed the group); the leader reports the
                           result */
} sf_wire_kind;

/* A context-parallel item for k ranks: ranks[0 .. k) are world ranks of one
 * node, ascending; ranks[0] leads (group rank 0). */
enum { SF_WIRE_MAX_GROUP = 256 };
typedef struct sf_wire_group {
  sf_work_item item;
  int32_t k;
  int32_t ranks[SF_WIRE_MAX_GROUP];
} sf_wire_group;

#define SF_WIRE_MAGIC 0x31574653u /* "SFW1": catches a foreign or mismatched sender */

/* Fixed-size header of every report. A message is the header, then for
 * RESULT the sf_item_result and the counted record arrays (repeats, decode
 * steps, kernels) back to back, then text_len bytes of text (NUL included;
 * 0 = none). Every section's size is a multiple of 8, so the records are
 * aligned in a malloc'd receive buffer. */
typedef struct sf_wire_header {
  uint32_t magic;
  int32_t kind;         /* sf_wire_kind */
  int32_t rank;         /* sender */
  int32_t signalled;    /* the sender saw SIGTERM/SIGUSR1/SIGINT: stop the sweep */
  int64_t n_repeats, n_steps, n_kernels;
  int64_t text_len;
} sf_wire_header;

/* A received message, decoded: pointers into the buffer it came in. */
typedef struct sf_wire_msg {
  sf_wire_header h;
  const sf_item_result *result;  /* RESULT only */
  const sf_repeat_result *repeats;
  const sf_step_result *steps;
  const sf_kernel_result *kernels;
  const char *text;              /* NULL when text_len is 0 */
} sf_wire_msg;

/* Limits a decoded message must respect (a corrupt count is not trusted with
 * a multi-gigabyte allocation). */
enum { SF_WIRE_MAX_ROWS = 1 << 26, SF_WIRE_MAX_TEXT = 1 << 16 };

/* Packs a report into one malloc'd buffer (*buf, *size). h's counts and
 * text_len are set from the arguments (text may be NULL). */
sf_status sf_wire_pack(sf_wire_kind kind, int32_t rank, int32_t signalled, const sf_item_result *result,
                       const sf_repeat_result *repeats, int64_t n_repeats, const sf_step_result *steps,
                       int64_t n_steps, const sf_kernel_result *kernels, int64_t n_kernels, const char *text,
                       void **buf, size_t *size, sf_error *err);

/* Checks and decodes size bytes (magic, kind, counts, exact size, text NUL):
 * errors are one line ("malformed report: ..."). */
sf_status sf_wire_unpack(const void *buf, size_t size, sf_wire_msg *out, sf_error *err);

#endif
