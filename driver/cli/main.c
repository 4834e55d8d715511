/* scanflash: one executable, many subcommands (DESIGN "Layout"). */
#include <stdio.h>
#include <string.h>

#include "cli/command.h"
#include "scanflash/log.h"
#include "scanflash/version.h"

static const sf_command commands[] = {
    {"info", "version, build features, library versions and visible GPUs", cmd_info},
    {"tokenize", "GPT-NeoX-20B BPE: text on stdin to ids (or --decode ids to text)", cmd_tokenize},
    {"prompts", "pack a HumanEval+ context of exactly L tokens ending with a problem's prompt", cmd_prompts},
    {"plan", "expand a sweep (SPEC.yaml or quick flags): items, keys, memory, cost, predicted OOMs", cmd_plan},
    {"generate", "greedy decoding from a prompt with a preset or a checkpoint (cpu backend)", cmd_generate},
    {"merge", "join results files (shards) into one, keys unique: merge A.h5 B.h5 -o C.h5", cmd_merge},
    {"kernels", "kernel benchmarks on one GPU (Figure 8, left): time, TFLOP/s, GB/s, % of roofline, error", cmd_kernels},
    {"run", "run a sweep (under mpirun/srun, or alone) into a results file: run SPEC.yaml -o R.h5", cmd_run},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f) {
  fprintf(f, "usage: scanflash <command> [options]   (scanflash <command> --help)\n\ncommands:\n");
  for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
  sf_log_level_from_env();
  if (argc < 2) {
    usage(stderr);
    return SF_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return SF_EXIT_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("scanflash %s (%s)\n", sf_version(), sf_git_sha());
    return SF_EXIT_OK;
  }
  for (int i = 0; i < N_COMMANDS; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "scanflash: unknown command '%s' (scanflash --help lists them)\n", argv[1]);
  return SF_EXIT_USAGE;
}
