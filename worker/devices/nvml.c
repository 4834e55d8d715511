/* NVML through dlopen: the few entry points scanflash needs, declared here
 * with NVML's documented C signatures (nvml.h is not needed to build).
 * Energy comes from the GPU's total-energy counter; where that is not
 * supported (some virtual machines), from the power reading integrated by a
 * sampling thread (every 5 ms, trapezoids), which the note says. */
#include "devices/nvml.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { SAMPLE_NS = 5000000 };

typedef int nvml_ret;                 /* nvmlReturn_t: 0 = NVML_SUCCESS */
typedef void *nvml_device;            /* nvmlDevice_t */
enum { NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2 };

struct sf_nvml {
  void *lib;
  nvml_device dev;
  nvml_ret (*shutdown)(void);
  nvml_ret (*energy)(nvml_device, unsigned long long *);
  nvml_ret (*clock)(nvml_device, int, unsigned int *);
  nvml_ret (*max_clock)(nvml_device, int, unsigned int *);
  nvml_ret (*power)(nvml_device, unsigned int *); /* mW */
  /* the sampler, when the energy counter is unsupported */
  pthread_t thread;
  int sampling;
  pthread_mutex_t lock;
  int stop;
  double joules;            /* integrated since open */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *sample_power(void *arg) {
  sf_nvml *n = arg;
  double t_prev = now_s(), w_prev = NAN;
  for (;;) {
    pthread_mutex_lock(&n->lock);
    const int stop = n->stop;
    pthread_mutex_unlock(&n->lock);
    if (stop) break;
    unsigned int mw = 0;
    const double t = now_s();
    if (n->power(n->dev, &mw) == 0) {
      const double w = 1e-3 * (double)mw;
      pthread_mutex_lock(&n->lock);
      if (!isnan(w_prev)) n->joules += 0.5 * (w + w_prev) * (t - t_prev);
      pthread_mutex_unlock(&n->lock);
      w_prev = w;
      t_prev = t;
    }
    struct timespec ts = {0, SAMPLE_NS};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static void say(char *why, int len, const char *msg, const char *detail) {
  if (why && len > 0) snprintf(why, (size_t)len, "%s%s%s", msg, detail ? ": " : "", detail ? detail : "");
}

sf_nvml *sf_nvml_open(const char *uuid, char *why, int why_len) {
  say(why, why_len, "", NULL);
  void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    say(why, why_len, "NVML unavailable (libnvidia-ml.so.1)", dlerror());
    return NULL;
  }
  nvml_ret (*init)(void) = (nvml_ret(*)(void))dlsym(lib, "nvmlInit_v2");
  nvml_ret (*by_uuid)(const char *, nvml_device *) =
      (nvml_ret(*)(const char *, nvml_device *))dlsym(lib, "nvmlDeviceGetHandleByUUID");
  sf_nvml *n = calloc(1, sizeof *n);
  if (!n) {
    dlclose(lib);
    say(why, why_len, "NVML: out of host memory", NULL);
    return NULL;
  }
  n->lib = lib;
  n->shutdown = (nvml_ret(*)(void))dlsym(lib, "nvmlShutdown");
  n->energy = (nvml_ret(*)(nvml_device, unsigned long long *))dlsym(lib, "nvmlDeviceGetTotalEnergyConsumption");
  n->clock = (nvml_ret(*)(nvml_device, int, unsigned int *))dlsym(lib, "nvmlDeviceGetClockInfo");
  n->max_clock = (nvml_ret(*)(nvml_device, int, unsigned int *))dlsym(lib, "nvmlDeviceGetMaxClockInfo");
  if (!init || !by_uuid || !n->shutdown || init() != 0) {
    say(why, why_len, "NVML did not initialize", NULL);
    dlclose(lib);
    free(n);
    return NULL;
  }
  if (!uuid || by_uuid(uuid, &n->dev) != 0) {
    say(why, why_len, "NVML does not know this GPU", uuid);
    n->shutdown();
    dlclose(lib);
    free(n);
    return NULL;
  }
  n->power = (nvml_ret(*)(nvml_device, unsigned int *))dlsym(lib, "nvmlDeviceGetPowerUsage");
  unsigned long long mj = 0;
  unsigned int mw = 0;
  if (n->energy && n->energy(n->dev, &mj) == 0) return n;
  n->energy = NULL;
  if (n->power && n->power(n->dev, &mw) == 0) {
    pthread_mutex_init(&n->lock, NULL);
    if (pthread_create(&n->thread, NULL, sample_power, n) == 0) {
      n->sampling = 1;
      say(why, why_len, "energy integrated from NVML power readings every 5 ms (no energy counter)", NULL);
      return n;
    }
    pthread_mutex_destroy(&n->lock);
  }
  say(why, why_len, "NVML reads neither the energy counter nor the power of this GPU", NULL);
  return n;
}

void sf_nvml_close(sf_nvml *n) {
  if (!n) return;
  if (n->sampling) {
    pthread_mutex_lock(&n->lock);
    n->stop = 1;
    pthread_mutex_unlock(&n->lock);
    pthread_join(n->thread, NULL);
    pthread_mutex_destroy(&n->lock);
  }
  n->shutdown();
  dlclose(n->lib);
  free(n);
}

double sf_nvml_energy_j(sf_nvml *n) {
  if (!n) return NAN;
  if (n->sampling) {
    pthread_mutex_lock(&n->lock);
    const double j = n->joules;
    pthread_mutex_unlock(&n->lock);
    return j;
  }
  unsigned long long mj = 0;
  if (!n->energy || n->energy(n->dev, &mj) != 0) return NAN;
  return (double)mj * 1e-3;
}

static void read_clocks(sf_nvml *n, nvml_ret (*fn)(nvml_device, int, unsigned int *), int32_t *sm_mhz,
                        int32_t *mem_mhz) {
  unsigned int sm = 0, mem = 0;
  if (n && fn) {
    if (fn(n->dev, NVML_CLOCK_SM, &sm) != 0) sm = 0;
    if (fn(n->dev, NVML_CLOCK_MEM, &mem) != 0) mem = 0;
  }
  *sm_mhz = (int32_t)sm;
  *mem_mhz = (int32_t)mem;
}

void sf_nvml_clocks(sf_nvml *n, int32_t *sm_mhz, int32_t *mem_mhz) {
  read_clocks(n, n ? n->clock : NULL, sm_mhz, mem_mhz);
}

void sf_nvml_max_clocks(sf_nvml *n, int32_t *sm_mhz, int32_t *mem_mhz) {
  read_clocks(n, n ? n->max_clock : NULL, sm_mhz, mem_mhz);
}
