/* Rank 0's loop: hands out items largest-cost first and makes every
 * reported result durable before the reporting worker gets its next item;
 * runs the items itself when it is the only rank; then closes the results
 * file and prints the final messages. Context-parallel items (gpus = k > 1)
 * go to k idle workers of one node at once (driver_internal.h, wire.h). */
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

/* Items decided without running them: predicted OOM, and items needing more
 * GPUs than any node's group of workers has. */
static void decide_upfront(sf_driver *d) {
  int32_t kept = 0;
  for (int32_t q = 0; q < d->queue.n_items; q++) {
    const sf_work_item *w = &d->queue.items[q].item;
    if (!w->oom_predicted && w->gpus <= d->max_group) {
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
    else if (d->rk->size == 1)
      sf_runner_result_set(&res, SF_STATUS_SKIPPED,
                           "needs %d GPUs (ranks of one node): the largest node group has 1 worker rank "
                           "(rank 0 runs alone; run under mpirun or srun with more ranks)",
                           (int)w->gpus);
    else
      sf_runner_result_set(&res, SF_STATUS_SKIPPED,
                           "needs %d GPUs (ranks of one node): the largest node group has %d worker rank(s)%s",
                           (int)w->gpus, d->max_group, d->rk->backend == SF_BACKEND_CUDA ? " with distinct GPUs" : "");
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

/* Answers an idle worker w with STOP: it gets nothing more. */
static void send_stop(sf_driver *d, int w) {
  MPI_Send(NULL, 0, MPI_BYTE, w, SF_TAG_STOP, d->rk->comm);
  d->idle[w] = 0;
  d->active[w] = 0;
  d->n_active--;
}

static void mark_assigned(sf_driver *d, int32_t q) {
  d->assigned[q] = 1;
  while (d->first_open < d->queue.n_items && d->assigned[d->first_open]) d->first_open++;
  if (d->prog.t_first_run < 0) d->prog.t_first_run = sf_runner_unix_now();
}

/* Item q to idle worker w alone. */
static void give(sf_driver *d, int32_t q, int w) {
  mark_assigned(d, q);
  MPI_Send(&d->queue.items[q].item, (int)sizeof(sf_work_item), MPI_BYTE, w, SF_TAG_ITEM, d->rk->comm);
  d->busy[w] = q;
  d->leads[w] = 1;
  d->idle[w] = 0;
  d->abort_sent[w] = 0;
}

/* Up to k active workers of w0's node whose GPUs differ (cuda; any on cpu),
 * in rank order, into out; idle_only: only idle ones. Returns how many. */
static int pick_members(const sf_driver *d, int w0, int k, int idle_only, int *out) {
  int n = 0;
  for (int i = d->node_lo[w0]; i < d->node_hi[w0] && n < k; i++) {
    const int w = d->order[i];
    if (!d->active[w] || (idle_only && !d->idle[w])) continue;
    int dup = 0;
    for (int j = 0; j < n && d->gpu[w][0] && !dup; j++) dup = !strcmp(d->gpu[out[j]], d->gpu[w]);
    if (!dup) out[n++] = w;
  }
  return n;
}

/* The node where a group of k forms first (one of its workers): among the
 * nodes with k workers (distinct GPUs) still active, the one with the most
 * idle, the lowest node on ties; -1 when none can host it any more. */
static int group_node(const sf_driver *d, int k, int *members) {
  int best = -1, best_idle = -1;
  for (int i = 0; i < d->n_order; i = d->node_hi[d->order[i]]) {
    const int w0 = d->order[i];
    if (pick_members(d, w0, k, 0, members) < k) continue;
    const int idle = pick_members(d, w0, k, 1, members);
    if (idle > best_idle) best = w0, best_idle = idle; /* nodes come in ascending order */
  }
  return best;
}

/* Item q to k idle workers of one node (members, ascending; the first leads). */
static void give_group(sf_driver *d, int32_t q, const int *members, int k) {
  mark_assigned(d, q);
  sf_wire_group g;
  memset(&g, 0, sizeof g);
  g.item = d->queue.items[q].item;
  g.k = k;
  for (int i = 0; i < k; i++) g.ranks[i] = members[i];
  for (int i = 0; i < k; i++) {
    const int w = members[i];
    MPI_Send(&g, (int)sizeof g, MPI_BYTE, w, SF_TAG_GROUP, d->rk->comm);
    d->busy[w] = q;
    d->leads[w] = i == 0;
    d->idle[w] = 0;
    d->abort_sent[w] = 0;
  }
}

/* Answers the idle workers that can be answered now: queue order, single
 * items to any idle worker (not one held for a group), the first item
 * waiting for a group holds its node's idle workers; STOP to every idle
 * worker once nothing is left to hand out. */
static void dispatch(sf_driver *d) {
  const int size = d->rk->size;
  if (d->stopping || d->first_open >= d->queue.n_items) {
    for (int w = 1; w < size; w++)
      if (d->idle[w]) send_stop(d, w);
    return;
  }
  int *members = malloc((size_t)size * sizeof *members);
  if (!members) { /* cannot form groups: stop cleanly rather than hang */
    fprintf(stderr, SF_RUN_PROG ": out of memory on rank 0; stopping the sweep\n");
    d->fatal = 1;
    stop_sweep(d);
    for (int w = 1; w < size; w++)
      if (d->idle[w]) send_stop(d, w);
    return;
  }
  int held = -1; /* the node whose idle workers wait for a group */
  int free_idle = 0;
  for (int w = 1; w < size; w++) free_idle += d->idle[w];
  for (int32_t q = d->first_open; q < d->queue.n_items && free_idle > 0; q++) {
    if (d->assigned[q]) continue;
    const int k = d->queue.items[q].item.gpus;
    if (k <= 1) {
      for (int w = 1; w < size; w++)
        if (d->idle[w] && d->node[w] != held) {
          give(d, q, w);
          free_idle--;
          break;
        }
      continue;
    }
    if (held >= 0) continue; /* one group waits at a time; later ones keep their turn */
    const int w0 = group_node(d, k, members);
    if (w0 < 0) {
      /* Workers gave up since the start: no node can host it now. Not
       * recorded (the run already failed); --resume runs it. */
      mark_assigned(d, q);
      continue;
    }
    if (pick_members(d, w0, k, 1, members) == k) {
      give_group(d, q, members, k);
      free_idle -= k;
      continue;
    }
    held = d->node[w0];
    for (int w = 1; w < size; w++) free_idle -= d->idle[w] && d->node[w] == held;
  }
  free(members);
  if (d->first_open >= d->queue.n_items) /* the last items went out: nothing for the rest */
    for (int w = 1; w < size; w++)
      if (d->idle[w]) send_stop(d, w);
}

/* A worker that gave up: it waits for nothing more from the driver. */
static void retire(sf_driver *d, int w, const char *why) {
  fprintf(stderr, SF_RUN_PROG ": rank %d gave up: %s\n", w, why);
  d->fatal = 1;
  d->busy[w] = -1;
  d->idle[w] = 0;
  d->active[w] = 0;
  d->n_active--;
}

/* A report from w: recorded (a result) or noted (a group member's done);
 * either way w now waits for its answer (dispatch). */
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
    d->idle[w] = 1;
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
    if (q < 0 || !d->leads[w] || memcmp(m.result->key, d->queue.items[q].item.key, SF_KEY_LEN)) {
      fprintf(stderr, SF_RUN_PROG ": rank %d reported item %.16s, which it was not given to report\n", w,
              m.result->key);
      d->fatal = 1;
      stop_sweep(d);
    } else {
      record(d, q, m.result, m.repeats, m.h.n_repeats, m.steps, m.h.n_steps, m.kernels, m.h.n_kernels, 1);
      if (d->interrupted) stop_sweep(d);
    }
    d->busy[w] = -1;
  }
  if (m.h.kind == SF_WIRE_DONE) {
    const int32_t q = d->busy[w];
    if (q < 0 || d->leads[w] || !m.text || strncmp(m.text, d->queue.items[q].item.key, SF_KEY_LEN - 1) ||
        (m.text[SF_KEY_LEN - 1] != '\0' && m.text[SF_KEY_LEN - 1] != ' ')) {
      fprintf(stderr, SF_RUN_PROG ": rank %d reported its part of item %.16s done, which it was not given\n", w,
              m.text ? m.text : "?");
      d->fatal = 1;
      stop_sweep(d);
    } else if (m.text[SF_KEY_LEN - 1] == ' ') {
      /* Its own failure, which made the group's: the item's row names the rank only. */
      fprintf(stderr, SF_RUN_PROG ": rank %d, in the group running item %.16s: %s\n", w, m.text,
              m.text + SF_KEY_LEN);
    }
    d->busy[w] = -1;
  }
  d->idle[w] = 1;
}

static void run_workers(sf_driver *d) {
  sf_rank *rk = d->rk;
  for (int w = 1; w < rk->size; w++) d->active[w] = 1;
  d->n_active = rk->size - 1;
  while (d->n_active > 0) {
    if (!d->stopping && sf_sched_signalled()) {
      d->interrupted = 1;
      stop_sweep(d);
      dispatch(d); /* STOP to the workers waiting for an answer */
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
      dispatch(d);
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
    if (!d->queue.items[q].item.oom_predicted && d->queue.items[q].item.gpus <= d->max_group)
      cost += d->queue.items[q].item.est_cost;
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
