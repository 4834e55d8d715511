/* Rank 0's loop: hands out items largest-cost first and makes every
 * reported result durable before the reporting worker gets its next item;
 * runs the items itself when it is the only rank; then closes the results
 * file and prints the final messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/driver_internal.h"

/* Stops handing out work; workers running an item abandon it at their next check point. */
static void stop_sweep(sf_driver *d) {
  if (d->stopping) return;
  d->stopping = 1;
  for (int w = 1; w < d->rk->size; w++)
    if (d->busy[w] >= 0 && !d->abort_sent[w]) {
      MPI_Send(NULL, 0, MPI_BYTE, w, SF_TAG_ABORT, d->rk->comm);
      d->abort_sent[w] = 1;
    }
}

static void note_failure(sf_driver *d, int32_t q, const sf_item_result *res) {
  if (res->status != SF_STATUS_ERROR && res->status != SF_STATUS_TIMEOUT) return;
  if (d->n_fails == d->cap_fails) {
    int32_t c = d->cap_fails ? 2 * d->cap_fails : 16;
    sf_driver_failure *f = realloc(d->fails, (size_t)c * sizeof *f);
    if (!f) return; /* the list is a courtesy; the file has every status */
    d->fails = f;
    d->cap_fails = c;
  }
  sf_driver_failure *f = &d->fails[d->n_fails++];
  f->q = q;
  f->status = res->status;
  snprintf(f->message, sizeof f->message, "%s", res->message);
}

/* Makes one result durable. After a failure of the results file nothing more
 * is written (those items run again on --resume). */
static void record(sf_driver *d, int32_t q, const sf_item_result *res, const sf_repeat_result *reps, int64_t nr,
                   const sf_step_result *steps, int64_t ns, const sf_kernel_result *kerns, int64_t nk, int ran) {
  if (d->fatal) return;
  const sf_work_item *item = &d->queue.items[q].item;
  sf_error err;
  sf_error_clear(&err);
  if (sf_results_write_item(d->res, item, res, reps, nr, steps, ns, kerns, nk, &err) != SF_OK) {
    fprintf(stderr, SF_RUN_PROG ": %s\n", err.msg);
    d->fatal = 1;
    stop_sweep(d);
    return;
  }
  if (res->status == SF_STATUS_INTERRUPTED) d->interrupted = 1;
  sf_progress_item(&d->prog, item, res, ran);
  note_failure(d, q, res);
}

/* Items decided without running them: predicted OOM, and multi-GPU items. */
static void decide_upfront(sf_driver *d) {
  int32_t kept = 0;
  for (int32_t q = 0; q < d->queue.n_items; q++) {
    const sf_work_item *w = &d->queue.items[q].item;
    if (!w->oom_predicted && w->gpus <= 1) {
      d->queue.items[kept++] = d->queue.items[q];
      continue;
    }
    /* Recorded from its queue slot before the slot is reused. */
    sf_item_result res;
    sf_runner_result_init(&res, w, 0, -1, d->rk->host);
    if (w->oom_predicted)
      sf_runner_result_set(&res, SF_STATUS_OOM_PREDICTED,
                           "estimated %.2f GiB per GPU exceeds the device memory budget of %.2f GiB (device_mem)",
                           (double)w->est_bytes / (double)(1LL << 30),
                           (double)d->rk->spec->device_mem / (double)(1LL << 30));
    else
      sf_runner_result_set(&res, SF_STATUS_SKIPPED, "needs %d GPUs: context-parallel items are not implemented yet",
                           (int)w->gpus);
    sf_plan_item keep = d->queue.items[q];
    d->queue.items[kept] = keep; /* record() reads the item from its slot */
    record(d, kept, &res, NULL, 0, NULL, 0, NULL, 0, 0);
  }
  d->queue.n_items = kept;
}

static void run_alone(sf_driver *d) {
  sf_rank *rk = d->rk;
  while (!d->stopping && d->next < d->queue.n_items) {
    if (sf_sched_signalled()) {
      d->interrupted = 1;
      break;
    }
    const int32_t q = d->next++;
    if (d->prog.t_first_run < 0) d->prog.t_first_run = sf_runner_unix_now();
    sf_runner_output out;
    sf_error err;
    sf_error_clear(&err);
    if (sf_sched_execute(rk, &d->queue.items[q].item, &out, &err) != SF_OK) {
      fprintf(stderr, SF_RUN_PROG ": %s\n", err.msg);
      d->fatal = 1;
      break;
    }
    record(d, q, &out.result, out.repeats, out.n_repeats, out.steps, out.n_steps, NULL, 0, 1);
    if (d->interrupted) break;
    sf_progress_tick(rk, &d->prog, NULL);
  }
}

/* Answers worker w: its next item, or STOP. */
static void hand_out(sf_driver *d, int w) {
  if (d->stopping || d->next >= d->queue.n_items) {
    MPI_Send(NULL, 0, MPI_BYTE, w, SF_TAG_STOP, d->rk->comm);
    d->active[w] = 0;
    d->n_active--;
    return;
  }
  const int32_t q = d->next++;
  if (d->prog.t_first_run < 0) d->prog.t_first_run = sf_runner_unix_now();
  MPI_Send(&d->queue.items[q].item, (int)sizeof(sf_work_item), MPI_BYTE, w, SF_TAG_ITEM, d->rk->comm);
  d->busy[w] = q;
  d->abort_sent[w] = 0;
}

/* A worker that gave up: it waits for nothing more from the driver. */
static void retire(sf_driver *d, int w, const char *why) {
  fprintf(stderr, SF_RUN_PROG ": rank %d gave up: %s\n", w, why);
  d->fatal = 1;
  d->busy[w] = -1;
  d->active[w] = 0;
  d->n_active--;
}

static void on_report(sf_driver *d, int w, const void *buf, size_t size) {
  sf_wire_msg m;
  sf_error err;
  sf_error_clear(&err);
  if (sf_wire_unpack(buf, size, &m, &err) != SF_OK) {
    /* The worker still waits for an answer: stop it so it does not hang. */
    fprintf(stderr, SF_RUN_PROG ": rank %d: %s\n", w, err.msg);
    d->fatal = 1;
    d->busy[w] = -1;
    stop_sweep(d);
    hand_out(d, w);
    return;
  }
  if (m.h.signalled && !d->stopping) {
    d->interrupted = 1;
    stop_sweep(d);
  }
  if (m.h.kind == SF_WIRE_FATAL) {
    retire(d, w, m.text ? m.text : "no reason given");
    return;
  }
  if (m.h.kind == SF_WIRE_REQUEST && d->busy[w] >= 0) {
    fprintf(stderr, SF_RUN_PROG ": rank %d asked for work without reporting item %s\n", w,
            d->queue.items[d->busy[w]].item.key);
    d->fatal = 1;
    d->busy[w] = -1;
    stop_sweep(d);
  }
  if (m.h.kind == SF_WIRE_RESULT) {
    const int32_t q = d->busy[w];
    if (q < 0 || memcmp(m.result->key, d->queue.items[q].item.key, SF_KEY_LEN)) {
      fprintf(stderr, SF_RUN_PROG ": rank %d reported item %.16s, which it was not given\n", w, m.result->key);
      d->fatal = 1;
      stop_sweep(d);
    } else {
      record(d, q, m.result, m.repeats, m.h.n_repeats, m.steps, m.h.n_steps, m.kernels, m.h.n_kernels, 1);
      if (d->interrupted) stop_sweep(d);
    }
    d->busy[w] = -1;
  }
  hand_out(d, w);
}

static void run_workers(sf_driver *d) {
  sf_rank *rk = d->rk;
  for (int w = 1; w < rk->size; w++) d->active[w] = 1;
  d->n_active = rk->size - 1;
  while (d->n_active > 0) {
    if (!d->stopping && sf_sched_signalled()) {
      d->interrupted = 1;
      stop_sweep(d);
    }
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, SF_TAG_REPORT, rk->comm, &flag, &st) != MPI_SUCCESS) {
      fprintf(stderr, SF_RUN_PROG ": MPI_Iprobe failed; giving up\n");
      d->fatal = 1;
      break;
    }
    if (!flag) {
      sf_progress_tick(rk, &d->prog, NULL);
      sf_sched_nap();
      continue;
    }
    int count = 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    const int w = st.MPI_SOURCE;
    void *buf = malloc(count > 0 ? (size_t)count : 1);
    int rc = MPI_Recv(buf ? buf : &flag, buf ? count : 0, MPI_BYTE, w, SF_TAG_REPORT, rk->comm, MPI_STATUS_IGNORE);
    if (w <= 0 || w >= rk->size || !d->active[w]) {
      fprintf(stderr, SF_RUN_PROG ": a report from rank %d, which is not an active worker\n", w);
      d->fatal = 1;
    } else if (!buf || rc != MPI_SUCCESS) {
      retire(d, w, !buf ? "out of memory on rank 0 for its report" : "its report could not be received");
    } else {
      on_report(d, w, buf, (size_t)count);
    }
    free(buf);
  }
}

static void say_end(sf_driver *d, int closed_ok) {
  sf_rank *rk = d->rk;
  sf_progress_tick(rk, &d->prog, d->interrupted || d->fatal ? "stopped" : "done");
  if (d->n_fails) {
    fprintf(stderr, SF_RUN_PROG ": %d item(s) failed (--resume --retry-failed runs them again):\n", (int)d->n_fails);
    for (int32_t i = 0; i < d->n_fails; i++) {
      const sf_work_item *w = &d->queue.items[d->fails[i].q].item;
      fprintf(stderr, "  %s  %s context %lld batch %d: %s: %s\n", w->key, w->model, (long long)w->context,
              (int)w->batch, sf_item_status_name((sf_item_status)d->fails[i].status), d->fails[i].message);
    }
  }
  const int64_t missing = (int64_t)d->prog.total - d->prog.done;
  if (d->interrupted) {
    int sig = sf_sched_signalled();
    char by[32] = "a signal";
    if (sig) snprintf(by, sizeof by, "signal %d", sig);
    fprintf(stderr,
            SF_RUN_PROG ": interrupted (%s on some rank): %lld of %lld item(s) recorded, %lld interrupted, %lld not "
            "started; resume with --resume\n",
            sig ? by : "a signal", (long long)d->prog.done, (long long)d->prog.total,
            (long long)d->prog.by_status[SF_STATUS_INTERRUPTED], (long long)missing);
  } else if (d->fatal && missing > 0) {
    fprintf(stderr, SF_RUN_PROG ": %lld item(s) were not recorded; --resume runs them\n", (long long)missing);
  }
  if (closed_ok && !rk->quiet)
    fprintf(stderr, SF_RUN_PROG ": results in %s\n", d->opts->output);
}

int sf_driver_run(sf_driver *d) {
  sf_rank *rk = d->rk;
  double cost = 0;
  for (int32_t q = 0; q < d->queue.n_items; q++)
    if (!d->queue.items[q].item.oom_predicted && d->queue.items[q].item.gpus <= 1) cost += d->queue.items[q].item.est_cost;
  sf_progress_init(&d->prog, d->queue.n_items, cost, sf_runner_unix_now());
  rk->progress = &d->prog;
  decide_upfront(d);
  if (rk->size == 1) run_alone(d);
  else run_workers(d);
  if (sf_sched_signalled()) d->interrupted = d->interrupted || d->prog.done < d->prog.total;

  sf_error err;
  sf_error_clear(&err);
  sf_results *res = d->res;
  d->res = NULL;
  const int closed = sf_results_close(res, &err) == SF_OK;
  if (!closed) {
    fprintf(stderr, SF_RUN_PROG ": %s\n", err.msg);
    d->fatal = 1;
  }
  say_end(d, closed);
  rk->progress = NULL;
  if (d->fatal) return SF_SCHED_EXIT_FAILURE;
  return d->interrupted ? SF_SCHED_EXIT_INTERRUPTED : SF_SCHED_EXIT_OK;
}
