/* The stop flag. A handler may only touch a volatile sig_atomic_t, so this
 * one file-scope flag is the exception to "no globals": it belongs to the
 * process, like the signal itself. Everything else polls it. */
#include <signal.h>
#include <string.h>

#include "sched/sched.h"

static volatile sig_atomic_t sf_sched_stop_signal = 0;

static void on_signal(int sig) { sf_sched_stop_signal = sig; }

void sf_sched_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART; /* MPI and file I/O calls carry on; the loops poll the flag */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

int sf_sched_signalled(void) { return (int)sf_sched_stop_signal; }
