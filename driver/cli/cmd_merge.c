/* scanflash merge: join result shards (job arrays, separate runs) into one
 * file with unique keys. */
#include <getopt.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command.h"
#include "results/results.h"

#define PROG "scanflash merge"

static void usage(FILE *f) {
  fprintf(f,
          "usage: scanflash merge A.h5 B.h5 ... -o OUT.h5 [--force]\n"
          "\n"
          "Joins results files (shards of one sweep: Slurm array tasks, separate runs)\n"
          "into OUT.h5. Every key appears once: a key found in several inputs keeps one\n"
          "result (ok first, then the latest to finish) with its repeats, decode steps\n"
          "and kernel rows, and each such key is named on stderr. An input whose run\n"
          "did not close cleanly is read from its journal (INPUT.h5.journal).\n"
          "The root attributes come from the first input; the \"sources\" attribute\n"
          "lists every input. OUT.h5 may be one of the inputs (it is written to\n"
          "OUT.h5.tmp and renamed).\n"
          "\n"
          "  -o, --output FILE  the merged file (required)\n"
          "  --force            merge inputs with different schema versions or specs\n"
          "\n"
          "Exit status: 0 ok, 1 error, 2 usage error.\n");
}

static void print_note(void *ctx, const char *line) {
  (void)ctx;
  fprintf(stderr, PROG ": %s\n", line);
}

int cmd_merge(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"force", no_argument, 0, 'f'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  /* After a failed read of a corrupt file HDF5 can keep internal state it
   * cannot free, and its exit-time teardown then prints "infinite loop
   * closing library" after our one-line error. Every file is closed
   * explicitly, so skip that teardown (must come before any HDF5 call). */
  H5dont_atexit();
  const char *output = NULL;
  int force = 0, c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
      case 'o': output = optarg; break;
      case 'f': force = 1; break;
      case 'h': usage(stdout); return SF_EXIT_OK;
      case ':':
      case '?':
      default:
        if (optopt == 'o') fprintf(stderr, PROG ": -o needs a file name\n");
        else fprintf(stderr, PROG ": unknown option '%s' (scanflash merge --help)\n", argv[optind - 1]);
        return SF_EXIT_USAGE;
    }
  }
  int n = argc - optind;
  if (!output) {
    fprintf(stderr, PROG ": no output file: give -o OUT.h5 (scanflash merge --help)\n");
    return SF_EXIT_USAGE;
  }
  if (n < 1) {
    fprintf(stderr, PROG ": no input files (scanflash merge --help)\n");
    return SF_EXIT_USAGE;
  }
  sf_results_merge_stats st;
  sf_error err = {0};
  if (sf_results_merge((const char *const *)(argv + optind), n, output, force, print_note, NULL, &st, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    return SF_EXIT_FAILURE;
  }
  printf("merged %d file%s into %s: %lld items (%lld duplicate key%s), %lld repeats, %lld decode steps, "
         "%lld kernel rows, %lld devices, %lld problems\n",
         n, n == 1 ? "" : "s", output, (long long)st.items, (long long)st.duplicates, st.duplicates == 1 ? "" : "s",
         (long long)st.repeats, (long long)st.steps, (long long)st.kernels, (long long)st.devices,
         (long long)st.problems);
  return SF_EXIT_OK;
}
