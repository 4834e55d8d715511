/* Progress accounting for the driver's status line. The ETA scales the
 * estimated cost of what remains by the wall time the finished items took
 * per unit of estimated cost, so it adapts to the machine (the estimates
 * are for a reference GPU) and to the number of workers. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sched/sched_internal.h"

void sf_progress_init(sf_progress *p, int64_t total, double cost_total, double now) {
  memset(p, 0, sizeof *p);
  p->total = total;
  p->cost_total = cost_total;
  p->t_start = p->t_last_print = now;
  p->t_first_run = -1;
}

void sf_progress_item(sf_progress *p, const sf_work_item *item, const sf_item_result *res, int ran) {
  p->done++;
  if (res->status >= 0 && res->status <= SF_STATUS_INTERRUPTED) p->by_status[res->status]++;
  /* Failed as --retry-failed means it: error and timeout (an oom is a measurement). */
  if (res->status == SF_STATUS_ERROR || res->status == SF_STATUS_TIMEOUT) p->failed++;
  if (ran) p->cost_done += item->est_cost;
  if (res->status == SF_STATUS_OK)
    p->tokens += (double)(res->prompt_tokens + res->generated_tokens) * (double)(item->repeats + item->warmup);
}

void sf_format_duration(double s, char *buf, size_t size) {
  if (!(s >= 0) || !isfinite(s)) {
    snprintf(buf, size, "?");
    return;
  }
  long long t = (long long)(s + 0.5);
  if (t >= 3600) snprintf(buf, size, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, size, "%02lld:%02lld", t / 60, t % 60);
}

void sf_progress_line(const sf_progress *p, double now, char *buf, size_t size) {
  const double t0 = p->t_first_run >= 0 ? p->t_first_run : p->t_start;
  const double elapsed = now - p->t_start, busy = now - t0;
  char el[32], eta[32];
  sf_format_duration(elapsed, el, sizeof el);
  if (p->done >= p->total) snprintf(eta, sizeof eta, "00:00");
  else if (p->cost_done > 0 && busy > 0)
    sf_format_duration((p->cost_total - p->cost_done) * busy / p->cost_done, eta, sizeof eta);
  else snprintf(eta, sizeof eta, "?");
  snprintf(buf, size, "%lld/%lld items, %lld failed, %.0f tok/s, %s elapsed, ETA %s", (long long)p->done,
           (long long)p->total, (long long)p->failed, elapsed > 0 ? p->tokens / elapsed : 0.0, el, eta);
}

void sf_progress_tick(const sf_rank *rk, sf_progress *p, const char *final) {
  if (rk->quiet) return;
  const double now = sf_runner_unix_now();
  if (!final && now - p->t_last_print < rk->progress_every_s) return;
  char line[256];
  sf_progress_line(p, now, line, sizeof line);
  fprintf(stderr, SF_RUN_PROG ": %s%s%s\n", final ? final : "", final ? ": " : "", line);
  p->t_last_print = now;
}
