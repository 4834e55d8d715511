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

/* Exit statuses shared by every subcommand (documented in README). */
enum { SF_EXIT_OK = 0, SF_EXIT_FAILURE = 1, SF_EXIT_USAGE = 2 };

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_prompts(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_merge(int argc, char **argv);

#endif
