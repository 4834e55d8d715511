/* scanflash prompts: pack one HumanEval+ context and print it as ids, text or
 * statistics (with a hash of the ids, to check determinism across machines). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command.h"
#include "data/data_paths.h"
#include "data/humaneval.h"
#include "prompts/prompts.h"
#include "scanflash/files.h"
#include "scanflash/parse.h"
#include "tokenizer/tokenizer.h"

#define PROG "scanflash prompts"

static void usage(FILE *f) {
  fprintf(f,
          "usage: scanflash prompts [--data FILE] [--tokenizer FILE] --problem ID\n"
          "                         (--context L | --natural) [--seed S] [--format ids|text|stats]\n"
          "\n"
          "Packs the context of exactly L tokens for one HumanEval+ problem: the other\n"
          "problems' prompt + canonical solution in a seeded order (a fresh order per\n"
          "pass, cycled as needed, cut at the front at a token boundary), then the\n"
          "problem's prompt. A shorter context is a suffix of a longer one.\n"
          "\n"
          "  --problem ID     \"HumanEval/7\" or \"7\"\n"
          "  --context L      tokens in the context; k/M/G suffixes (8k, 1M, 4M);\n"
          "                   0 is the same as --natural\n"
          "  --natural        the bare prompt (natural mode)\n"
          "  --seed S         order of the filler documents (default 0)\n"
          "  --format F       ids: the ids on one line, space-separated (default)\n"
          "                   text: the decoded text\n"
          "                   stats: key: value lines, with the sha256 of the ids\n"
          "                   (little-endian int32) to compare runs and machines\n"
          "  --data FILE      HumanEvalPlus.jsonl[.gz]; else $SCANFLASH_DATA, data/,\n"
          "                   ../shared/data/\n"
          "  --tokenizer FILE GPT-NeoX-20B tokenizer.json; else $SCANFLASH_TOKENIZER,\n"
          "                   data/, ../shared/data/\n"
          "\n"
          "Exit status: 0 ok, 1 error, 2 usage error.\n");
}

enum { FMT_IDS, FMT_TEXT, FMT_STATS };

/* The ids as one line: decimal, space-separated, newline. */
static int write_ids(FILE *f, const int32_t *ids, int64_t n) {
  char buf[1 << 16];
  size_t len = 0;
  for (int64_t i = 0; i < n; i++) {
    if (len > sizeof buf - 16) {
      if (fwrite(buf, 1, len, f) != len) return -1;
      len = 0;
    }
    if (i) buf[len++] = ' ';
    long long v = ids[i];
    char tmp[24];
    int t = 0;
    unsigned long long u = v < 0 ? (unsigned long long)(-v) : (unsigned long long)v;
    do tmp[t++] = (char)('0' + u % 10); while ((u /= 10) != 0);
    if (v < 0) buf[len++] = '-';
    while (t) buf[len++] = tmp[--t];
  }
  buf[len++] = '\n';
  return fwrite(buf, 1, len, f) == len ? 0 : -1;
}

/* sha256 over the ids as little-endian int32, whatever the host order. */
static int ids_sha256(const int32_t *ids, int64_t n, char out[65]) {
  const uint32_t one = 1;
  if (*(const unsigned char *)&one == 1) {
    sf_sha256_hex(ids, (size_t)n * sizeof *ids, out);
    return 0;
  }
  unsigned char *b = malloc((size_t)n * 4 + 1);
  if (!b) return -1;
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)ids[i];
    b[4 * i] = (unsigned char)u;
    b[4 * i + 1] = (unsigned char)(u >> 8);
    b[4 * i + 2] = (unsigned char)(u >> 16);
    b[4 * i + 3] = (unsigned char)(u >> 24);
  }
  sf_sha256_hex(b, (size_t)n * 4, out);
  free(b);
  return 0;
}

int cmd_prompts(int argc, char **argv) {
  static const struct option opts[] = {
      {"data", required_argument, 0, 'd'},    {"tokenizer", required_argument, 0, 't'},
      {"problem", required_argument, 0, 'p'}, {"context", required_argument, 0, 'L'},
      {"seed", required_argument, 0, 's'},    {"format", required_argument, 0, 'f'},
      {"natural", no_argument, 0, 'n'},       {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  const char *data_flag = NULL, *tok_flag = NULL, *problem_id = NULL, *context_arg = NULL;
  int64_t context_len = -1;
  uint64_t seed = 0;
  int format = FMT_IDS, natural = 0;
  sf_error err;
  sf_error_clear(&err);
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
      case 'h': usage(stdout); return SF_EXIT_OK;
      case 'd': data_flag = optarg; break;
      case 't': tok_flag = optarg; break;
      case 'p': problem_id = optarg; break;
      case 'L':
        context_arg = optarg;
        if (sf_parse_count(optarg, "--context", &context_len, &err) != SF_OK) {
          fprintf(stderr, PROG ": %s\n", err.msg);
          return SF_EXIT_USAGE;
        }
        break;
      case 's':
        if (sf_parse_u64(optarg, "--seed", &seed, &err) != SF_OK) {
          fprintf(stderr, PROG ": %s\n", err.msg);
          return SF_EXIT_USAGE;
        }
        break;
      case 'f':
        if (!strcmp(optarg, "ids")) format = FMT_IDS;
        else if (!strcmp(optarg, "text")) format = FMT_TEXT;
        else if (!strcmp(optarg, "stats")) format = FMT_STATS;
        else {
          fprintf(stderr, PROG ": --format: '%s' is not one of ids, text, stats\n", optarg);
          return SF_EXIT_USAGE;
        }
        break;
      case 'n': natural = 1; break;
      case ':':
        fprintf(stderr, PROG ": option '%s' needs a value\n", argv[optind - 1]);
        return SF_EXIT_USAGE;
      default:
        fprintf(stderr, PROG ": unknown option '%s' (scanflash prompts --help)\n", argv[optind - 1]);
        return SF_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, PROG ": unexpected argument '%s' (scanflash prompts --help)\n", argv[optind]);
    return SF_EXIT_USAGE;
  }
  if (!problem_id) {
    fprintf(stderr, PROG ": --problem ID is required (scanflash prompts --help)\n");
    return SF_EXIT_USAGE;
  }
  if (natural && context_len > 0) {
    fprintf(stderr, PROG ": --natural and --context %s contradict each other\n", context_arg);
    return SF_EXIT_USAGE;
  }
  if (natural) context_len = 0;
  if (context_len < 0) {
    fprintf(stderr, PROG ": --context L (or --natural) is required (scanflash prompts --help)\n");
    return SF_EXIT_USAGE;
  }

  int rc = SF_EXIT_FAILURE;
  char data_path[4096], tok_path[4096];
  sf_problem_set set = {0};
  sf_tokenizer *tok = NULL;
  sf_corpus corpus = {0};
  sf_tokens ids = {0};
  sf_pack_stats st;
  char *text = NULL;

  if (sf_data_path_resolve(SF_DATA_HUMANEVAL, data_flag, data_path, sizeof data_path, &err) != SF_OK) goto fail;
  if (sf_data_path_resolve(SF_DATA_TOKENIZER, tok_flag, tok_path, sizeof tok_path, &err) != SF_OK) goto fail;
  if (sf_humaneval_load(data_path, &set, &err) != SF_OK) goto fail;
  int32_t p = sf_problem_set_find(&set, problem_id);
  if (p < 0) {
    sf_fail(&err, SF_ERR_ARG, "unknown problem '%s' (%s has %d problems, %s .. %s)", problem_id, data_path,
            (int)set.n, set.items[0].task_id, set.items[set.n - 1].task_id);
    goto fail;
  }
  if (sf_tokenizer_load(tok_path, &tok, &err) != SF_OK) goto fail;
  if (sf_corpus_build(&set, tok, &corpus, &err) != SF_OK) goto fail;
  if (sf_pack_context(&corpus, p, context_len, seed, &ids, &st, &err) != SF_OK) goto fail;

  int werr = 0;
  if (format == FMT_IDS) {
    werr = write_ids(stdout, ids.ids, ids.n);
  } else if (format == FMT_TEXT) {
    size_t len = 0;
    if (sf_tokenizer_decode(tok, ids.ids, ids.n, &text, &len, &err) != SF_OK) goto fail;
    werr = fwrite(text, 1, len, stdout) != len;
  } else {
    char h_ids[65], h_data[65], h_tok[65];
    if (ids_sha256(ids.ids, ids.n, h_ids) != 0) {
      sf_fail(&err, SF_ERR_NOMEM, "out of memory hashing %lld ids", (long long)ids.n);
      goto fail;
    }
    if (sf_sha256_file(data_path, h_data, &err) != SF_OK) goto fail;
    if (sf_sha256_file(tok_path, h_tok, &err) != SF_OK) goto fail;
    printf("problem: %s\n", set.items[p].task_id);
    printf("mode: %s\n", context_len == 0 ? "natural" : "packed");
    printf("context: %lld\n", (long long)context_len);
    printf("seed: %llu\n", (unsigned long long)seed);
    printf("tokens: %lld\n", (long long)st.tokens);
    printf("prompt_tokens: %lld\n", (long long)st.prompt_tokens);
    printf("filler_tokens: %lld\n", (long long)st.filler_tokens);
    printf("documents: %lld\n", (long long)st.documents);
    printf("cycles: %lld\n", (long long)st.cycles);
    printf("first_doc_trimmed: %lld\n", (long long)st.first_doc_trimmed);
    printf("ids_sha256: %s\n", h_ids);
    printf("data_sha256: %s\n", h_data);
    printf("tokenizer_sha256: %s\n", h_tok);
  }
  if (werr || fflush(stdout) != 0 || ferror(stdout)) {
    sf_fail(&err, SF_ERR_IO, "writing to stdout: %s", strerror(errno));
    goto fail;
  }
  rc = SF_EXIT_OK;
  goto done;
fail:
  fprintf(stderr, PROG ": %s\n", err.msg);
done:
  free(text);
  sf_tokens_free(&ids);
  sf_corpus_free(&corpus);
  if (tok) sf_tokenizer_free(tok);
  sf_problem_set_free(&set);
  return rc;
}
