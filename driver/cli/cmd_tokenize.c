/* scanflash tokenize: text on stdin -> GPT-NeoX-20B ids on one line, or with
 * --decode, ids on stdin -> the exact text. A thin shell over
 * driver/tokenizer; handy to compare with other tokenizer implementations. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/command.h"
#include "data/data_paths.h"
#include "scanflash/parse.h"
#include "tokenizer/tokenizer.h"

#define PROG "scanflash tokenize"

static void usage(FILE *f) {
  fprintf(f,
          "usage: scanflash tokenize [--tokenizer FILE] [--decode]\n"
          "\n"
          "Reads UTF-8 text on stdin (all of it, any bytes) and prints its GPT-NeoX-20B\n"
          "token ids on one line, separated by single spaces. With --decode, reads\n"
          "whitespace-separated ids on stdin and prints their text exactly (no newline\n"
          "is added).\n"
          "\n"
          "  --tokenizer FILE  tokenizer.json; else $SCANFLASH_TOKENIZER, data/,\n"
          "                    ../shared/data/ (tokenizer/20B_tokenizer.json)\n"
          "  --decode          ids to text\n"
          "  --help            this text\n"
          "\n"
          "Exit status: 0 ok, 1 error, 2 usage error.\n");
}

/* All of stdin, binary-safe. */
static int read_stdin(char **data, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  if (!buf) return -1;
  for (;;) {
    if (n == cap) {
      char *nb = realloc(buf, cap * 2 + 1);
      if (!nb) {
        free(buf);
        return -1;
      }
      buf = nb;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n, stdin);
    n += got;
    if (got == 0) break;
  }
  if (ferror(stdin)) {
    free(buf);
    return -1;
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return 0;
}

static int print_ids(const sf_tokens *t) {
  for (int64_t i = 0; i < t->n; i++)
    if (printf(i ? " %d" : "%d", (int)t->ids[i]) < 0) return -1;
  return putchar('\n') == EOF ? -1 : 0;
}

static int is_space(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Whitespace-separated decimal ids. A bad word is an error that quotes it
 * (cut, and with unprintable bytes as '?') and says which id it was; range
 * is checked here so the message names the word as written. */
static sf_status parse_ids(const sf_tokenizer *tok, const char *text, size_t len, sf_tokens *out,
                           sf_error *err) {
  int32_t vocab = sf_tokenizer_vocab_size(tok);
  size_t i = 0;
  for (int64_t index = 1;; index++) {
    while (i < len && is_space(text[i])) i++;
    if (i >= len) return SF_OK;
    size_t start = i, digits = 0;
    for (; i < len && !is_space(text[i]); i++)
      if (text[i] >= '0' && text[i] <= '9') digits++;
    size_t wl = i - start;
    char word[40];
    size_t shown = wl < 32 ? wl : 32;
    for (size_t k = 0; k < shown; k++) {
      unsigned char ch = (unsigned char)text[start + k];
      word[k] = ch >= 0x21 && ch < 0x7f ? (char)ch : '?';
    }
    strcpy(word + shown, wl > shown ? "..." : "");
    if (digits != wl)
      return sf_fail(err, SF_ERR_FORMAT, "stdin: id %lld: '%s' is not a token id (a non-negative integer)",
                     (long long)index, word);
    int64_t v = 0;
    if (wl > 10 || sf_parse_i64(word, "stdin", &v, err) != SF_OK || v >= vocab)
      return sf_fail(err, SF_ERR_FORMAT, "stdin: id %lld: %s is out of range (the vocabulary has ids 0..%d)",
                     (long long)index, word, (int)vocab - 1);
    SF_TRY(sf_tokens_push(out, (int32_t)v, err));
  }
}

int cmd_tokenize(int argc, char **argv) {
  static const struct option opts[] = {{"tokenizer", required_argument, 0, 't'},
                                       {"decode", no_argument, 0, 'd'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *tok_flag = NULL;
  int decode = 0, c;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, ":t:dh", opts, NULL)) != -1) {
    switch (c) {
      case 't': tok_flag = optarg; break;
      case 'd': decode = 1; break;
      case 'h': usage(stdout); return SF_EXIT_OK;
      case ':':
        fprintf(stderr, PROG ": option '%s' needs a value (see --help)\n", argv[optind - 1]);
        return SF_EXIT_USAGE;
      default:
        fprintf(stderr, PROG ": unknown option '%s' (see --help)\n", argv[optind - 1]);
        return SF_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, PROG ": unexpected argument '%s' (text is read from stdin; see --help)\n", argv[optind]);
    return SF_EXIT_USAGE;
  }

  sf_error err;
  sf_error_clear(&err);
  char path[4096];
  sf_tokenizer *tok = NULL;
  if (sf_data_path_resolve(SF_DATA_TOKENIZER, tok_flag, path, sizeof path, &err) != SF_OK ||
      sf_tokenizer_load(path, &tok, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    return SF_EXIT_FAILURE;
  }
  char *in = NULL;
  size_t in_len = 0;
  if (read_stdin(&in, &in_len) != 0) {
    fprintf(stderr, PROG ": stdin: read error\n");
    sf_tokenizer_free(tok);
    return SF_EXIT_FAILURE;
  }

  int status = SF_EXIT_OK;
  sf_tokens ids = {0};
  if (!decode) {
    if (sf_tokenizer_encode(tok, in, in_len, &ids, &err) != SF_OK) {
      sf_fail_context(&err, "stdin");
      status = SF_EXIT_FAILURE;
    } else if (print_ids(&ids) != 0 || fflush(stdout) != 0) {
      sf_fail(&err, SF_ERR_IO, "stdout: write error");
      status = SF_EXIT_FAILURE;
    }
  } else {
    char *text = NULL;
    size_t text_len = 0;
    if (parse_ids(tok, in, in_len, &ids, &err) != SF_OK ||
        sf_tokenizer_decode(tok, ids.ids, ids.n, &text, &text_len, &err) != SF_OK) {
      status = SF_EXIT_FAILURE;
    } else if (fwrite(text, 1, text_len, stdout) != text_len || fflush(stdout) != 0) {
      sf_fail(&err, SF_ERR_IO, "stdout: write error");
      status = SF_EXIT_FAILURE;
    }
    free(text);
  }
  if (status != SF_EXIT_OK) fprintf(stderr, PROG ": %s\n", err.msg);
  sf_tokens_free(&ids);
  free(in);
  sf_tokenizer_free(tok);
  return status;
}
