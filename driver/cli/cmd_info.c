/* scanflash info: what this build is and what it can see. */
#include <getopt.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "cli/command.h"
#include "devices/devices.h"
#include "scanflash/version.h"

static void print_version(const char *what, int v, int major_div, int minor_div) {
  if (v <= 0) printf("  %-10s not available\n", what);
  else printf("  %-10s %d.%d.%d\n", what, v / major_div, (v % major_div) / minor_div, v % minor_div);
}

int cmd_info(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h') {
      printf("usage: scanflash info\n\nPrints the version, git sha, build features, library versions\n"
             "(CUDA, cuBLAS, NCCL, MPI, HDF5) and the visible GPUs.\n");
      return SF_EXIT_OK;
    }
    fprintf(stderr, "scanflash info: unknown option '%s'\n", argv[optind - 1]);
    return SF_EXIT_USAGE;
  }
  printf("scanflash %s\n  git sha    %s\n  features   %s\n", sf_version(), sf_git_sha(), sf_build_features());

  printf("libraries:\n");
  sf_gpu_libs libs;
  sf_gpu_libs_query(&libs);
  if (libs.have_cuda) {
    print_version("CUDA rt", libs.cuda_runtime_version, 1000, 10);
    print_version("CUDA drv", libs.cuda_driver_version, 1000, 10);
    print_version("cuBLAS", libs.cublas_version, 10000, 100);
    print_version("NCCL", libs.nccl_version, 10000, 100);
  } else {
    printf("  %-10s not built (CPU backend only)\n", "CUDA");
  }
  char mpi_lib[MPI_MAX_LIBRARY_VERSION_STRING];
  int mpi_len = 0, mpi_major = 0, mpi_minor = 0;
  MPI_Get_library_version(mpi_lib, &mpi_len); /* callable before MPI_Init */
  MPI_Get_version(&mpi_major, &mpi_minor);
  char *nl = strchr(mpi_lib, ','); /* Open MPI appends a long build string */
  if (nl) *nl = '\0';
  printf("  %-10s %s (MPI %d.%d)\n", "MPI", mpi_lib, mpi_major, mpi_minor);
  unsigned h_maj = 0, h_min = 0, h_rel = 0;
  H5get_libversion(&h_maj, &h_min, &h_rel);
  printf("  %-10s %u.%u.%u\n", "HDF5", h_maj, h_min, h_rel);

  sf_device_info devs[64];
  int n = 0;
  char why[256];
  sf_error err;
  if (sf_devices_query(devs, 64, &n, why, sizeof why, &err) != SF_OK) {
    fprintf(stderr, "scanflash info: %s\n", err.msg);
    return SF_EXIT_FAILURE;
  }
  if (n == 0) {
    printf("gpus: none (%s)\n", why[0] ? why : "no CUDA device");
    return SF_EXIT_OK;
  }
  printf("gpus: %d\n", n);
  for (int i = 0; i < n && i < 64; i++)
    printf("  [%d] %s  sm_%d%d  %d SMs  %.1f GiB  L2 %.0f MiB  %s\n", devs[i].index, devs[i].name,
           devs[i].cc_major, devs[i].cc_minor, devs[i].sm_count,
           (double)devs[i].total_mem_bytes / (1 << 30), (double)devs[i].l2_bytes / (1 << 20), devs[i].uuid);
  return SF_EXIT_OK;
}
