/* The scanflash subcommands. Each is `int cmd_NAME(int argc, char **argv)`:
 * argv[0] is the subcommand name; it returns the process exit status and
 * prints its own one-line error. New subcommands are one file plus one row
 * in the table in main.c. */
#ifndef SCANFLASH_CLI_COMMAND_H
#define SCANFLASH_CLI_COMMAND_H

typedef struct sf_command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
} sf_command;

/* Exit statuses shared by every subcommand (documented in README).
 * SF_EXIT_INTERRUPTED: scanflash run stopped by SIGTERM/SIGUSR1/SIGINT; what
 * was reported is durable and --resume continues. scanflash run exits
 * SF_EXIT_OK when the sweep completed, even if some items failed (it lists
 * them), and SF_EXIT_FAILURE on setup errors, a failing results file, or a
 * rank that gave up. */
enum { SF_EXIT_OK = 0, SF_EXIT_FAILURE = 1, SF_EXIT_USAGE = 2, SF_EXIT_INTERRUPTED = 3 };

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_prompts(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_kernels(int argc, char **argv);
int cmd_run(int argc, char **argv);

#endif
