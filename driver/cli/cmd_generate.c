/* scanflash generate: greedy decoding from one prompt with a preset (random
 * weights) or a Hugging Face checkpoint, on the cpu or cuda backend. The completion
 * goes to stdout; prefill and decode timings to stderr. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/command.h"
#include "data/data_paths.h"
#include "data/humaneval.h"
#include "devices/backend.h"
#include "engine/engine.h"
#include "engine/npy.h"
#include "model/model.h"
#include "ops/op_table.h"
#include "prompts/prompts.h"
#include "scanflash/files.h"
#include "scanflash/parse.h"
#include "scanflash/tokens.h"
#include "tokenizer/tokenizer.h"

#define PROG "scanflash generate"

static void usage(FILE *f) {
  fprintf(f,
          "usage: scanflash generate (--preset NAME [--seed S] | --weights DIR) [--tokenizer FILE]\n"
          "                          (--prompt TEXT | --ids-in FILE | [--data FILE] --problem ID\n"
          "                           [--context L] [--context-seed S])\n"
          "                          --max-new-tokens N [--backend cpu|cuda] [--threads T] [--chunk T]\n"
          "                          [--stop-at-eos] [--dump-logits FILE.npy] [--ids-out FILE]\n"
          "\n"
          "Greedy decoding (argmax, lowest id on ties) of N new tokens after one prompt.\n"
          "Prints the decoded completion on stdout and, on stderr, the prefill time,\n"
          "prefill tokens/s and decode tokens/s.\n"
          "\n"
          "model:\n"
          "  --preset NAME       a preset with seeded random weights (mamba-130m ...\n"
          "                      pythia-6.9b, tiny-mamba1, tiny-mamba2, tiny-transformer)\n"
          "  --seed S            weights seed for --preset (default 0)\n"
          "  --weights DIR       a Hugging Face folder (config.json + safetensors) of\n"
          "                      MambaForCausalLM, Mamba2ForCausalLM or GPTNeoXForCausalLM\n"
          "prompt (one of):\n"
          "  --prompt TEXT       text, tokenized with the GPT-NeoX-20B tokenizer\n"
          "  --ids-in FILE       token ids, whitespace-separated (one line)\n"
          "  --problem ID        a HumanEval+ problem (\"HumanEval/7\" or \"7\"): its bare\n"
          "                      prompt, or with --context L a packed context of exactly\n"
          "                      L tokens ending with it (k/M suffixes; scanflash prompts)\n"
          "  --context-seed S    order of the packed filler documents (default 0)\n"
          "  --data FILE         HumanEvalPlus.jsonl[.gz]; else $SCANFLASH_DATA, data/,\n"
          "                      ../shared/data/\n"
          "  --tokenizer FILE    tokenizer.json; else $SCANFLASH_TOKENIZER, data/,\n"
          "                      ../shared/data/ (with --ids-in and none found, the\n"
          "                      completion is printed as ids)\n"
          "generation:\n"
          "  --max-new-tokens N  tokens to generate (>= 0)\n"
          "  --stop-at-eos       stop after <|endoftext|> (default: always N tokens)\n"
          "  --backend B         cpu (default) or cuda (the first visible GPU; bf16)\n"
          "  --threads T         cpu OpenMP threads (default: the runtime's)\n"
          "  --chunk T           prefill chunk in tokens (default 0: the whole prompt\n"
          "                      in one pass)\n"
          "outputs:\n"
          "  --ids-out FILE      the generated ids, space-separated, one line\n"
          "  --dump-logits FILE  f32 logits as a NumPy .npy of shape (R, vocab): row 0\n"
          "                      at the last prompt position (its argmax is generated\n"
          "                      token 1), row i after feeding generated token i (its\n"
          "                      argmax is token i+1), so R = max(N, 1) (fewer when\n"
          "                      --stop-at-eos stops early: R = tokens generated);\n"
          "                      fetching and writing them counts in the timings\n"
          "\n"
          "Ids the tokenizer does not know (the padding rows of the embedding) print as\n"
          "<|ID|>. Exit status: 0 ok, 1 error, 2 usage error.\n");
}

typedef struct gen_args {
  const char *preset, *weights, *tokenizer, *prompt, *ids_in, *data, *problem;
  const char *dump_logits, *ids_out, *backend;
  uint64_t seed, context_seed;
  int64_t context, max_new, chunk, threads;
  int stop_at_eos;
} gen_args;

/* Whitespace-separated decimal ids. */
static sf_status read_ids(const char *path, sf_tokens *out, sf_error *err) {
  char *data = NULL;
  size_t size = 0;
  SF_TRY(sf_read_file(path, &data, &size, err));
  sf_status rc = SF_OK;
  char *p = data;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (!*p) break;
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || errno || v < 0 || v > INT32_MAX ||
        (*end && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r')) {
      rc = sf_fail(err, SF_ERR_FORMAT, "%s: token %lld is not a non-negative integer id", path,
                   (long long)out->n + 1);
      break;
    }
    if ((rc = sf_tokens_push(out, (int32_t)v, err)) != SF_OK) break;
    p = end;
  }
  free(data);
  if (rc == SF_OK && out->n == 0) rc = sf_fail(err, SF_ERR_FORMAT, "%s: no token ids", path);
  return rc;
}

static sf_status write_ids(const char *path, const int32_t *ids, int64_t n, sf_error *err) {
  FILE *f = fopen(path, "w");
  if (!f) return sf_fail(err, SF_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  for (int64_t i = 0; i < n; i++) fprintf(f, i ? " %d" : "%d", (int)ids[i]);
  fputc('\n', f);
  if (ferror(f) | (fclose(f) != 0))
    return sf_fail(err, SF_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  return SF_OK;
}

/* The completion as text: runs of ids the tokenizer knows are decoded
 * together (multi-byte characters can span tokens); others print as <|ID|>. */
static sf_status print_text(const sf_tokenizer *tok, const int32_t *ids, int64_t n, sf_error *err) {
  const int32_t known = sf_tokenizer_vocab_size(tok);
  int64_t i = 0;
  while (i < n) {
    int64_t j = i;
    while (j < n && ids[j] >= 0 && ids[j] < known) j++;
    if (j > i) {
      char *text = NULL;
      size_t len = 0;
      SF_TRY(sf_tokenizer_decode(tok, ids + i, j - i, &text, &len, err));
      fwrite(text, 1, len, stdout);
      free(text);
    }
    if (j < n) printf("<|%d|>", (int)ids[j++]);
    i = j;
  }
  putchar('\n');
  return SF_OK;
}

typedef struct dump_ctx {
  sf_npy_writer w;
  int64_t max_rows;
} dump_ctx;

/* Batch 1: one row per call (row 0, then one per decode step). */
static sf_status dump_row(void *user, int64_t row, const float *logits, int32_t batch,
                          int32_t vocab, sf_error *err) {
  (void)row; (void)batch; (void)vocab;
  dump_ctx *d = user;
  return sf_npy_append(&d->w, logits, 1, err);
}

static int parse_args(int argc, char **argv, gen_args *a, sf_error *err) {
  static const struct option opts[] = {
      {"preset", required_argument, 0, 'P'},        {"seed", required_argument, 0, 's'},
      {"weights", required_argument, 0, 'W'},       {"tokenizer", required_argument, 0, 't'},
      {"prompt", required_argument, 0, 'p'},        {"ids-in", required_argument, 0, 'I'},
      {"data", required_argument, 0, 'd'},          {"problem", required_argument, 0, 'r'},
      {"context", required_argument, 0, 'L'},       {"context-seed", required_argument, 0, 'S'},
      {"max-new-tokens", required_argument, 0, 'n'}, {"backend", required_argument, 0, 'b'},
      {"threads", required_argument, 0, 'T'},       {"chunk", required_argument, 0, 'c'},
      {"stop-at-eos", no_argument, 0, 'e'},         {"dump-logits", required_argument, 0, 'D'},
      {"ids-out", required_argument, 0, 'O'},       {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  memset(a, 0, sizeof *a);
  a->max_new = -1;
  a->context = 0;
  a->backend = "cpu";
  int c;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    sf_status rc = SF_OK;
    switch (c) {
      case 'h': usage(stdout); return -1;
      case 'P': a->preset = optarg; break;
      case 's': rc = sf_parse_u64(optarg, "--seed", &a->seed, err); break;
      case 'W': a->weights = optarg; break;
      case 't': a->tokenizer = optarg; break;
      case 'p': a->prompt = optarg; break;
      case 'I': a->ids_in = optarg; break;
      case 'd': a->data = optarg; break;
      case 'r': a->problem = optarg; break;
      case 'L': rc = sf_parse_count(optarg, "--context", &a->context, err); break;
      case 'S': rc = sf_parse_u64(optarg, "--context-seed", &a->context_seed, err); break;
      case 'n': rc = sf_parse_count(optarg, "--max-new-tokens", &a->max_new, err); break;
      case 'b': a->backend = optarg; break;
      case 'T': rc = sf_parse_i64(optarg, "--threads", &a->threads, err); break;
      case 'c': rc = sf_parse_count(optarg, "--chunk", &a->chunk, err); break;
      case 'e': a->stop_at_eos = 1; break;
      case 'D': a->dump_logits = optarg; break;
      case 'O': a->ids_out = optarg; break;
      case ':': sf_fail(err, SF_ERR_ARG, "option '%s' needs a value", argv[optind - 1]); return 1;
      default:
        sf_fail(err, SF_ERR_ARG, "unknown option '%s' (scanflash generate --help)", argv[optind - 1]);
        return 1;
    }
    if (rc != SF_OK) return 1;
  }
  if (optind < argc) {
    sf_fail(err, SF_ERR_ARG, "unexpected argument '%s' (scanflash generate --help)", argv[optind]);
    return 1;
  }
  if (!!a->preset + !!a->weights != 1) {
    sf_fail(err, SF_ERR_ARG, "give exactly one of --preset NAME and --weights DIR");
    return 1;
  }
  if (a->weights && a->seed) {
    sf_fail(err, SF_ERR_ARG, "--seed applies to --preset only (--weights loads trained values)");
    return 1;
  }
  if (!!a->prompt + !!a->ids_in + !!a->problem != 1) {
    sf_fail(err, SF_ERR_ARG, "give exactly one of --prompt TEXT, --ids-in FILE and --problem ID");
    return 1;
  }
  if (!a->problem && (a->data || a->context || a->context_seed)) {
    sf_fail(err, SF_ERR_ARG, "--data, --context and --context-seed go with --problem");
    return 1;
  }
  if (a->max_new < 0) {
    sf_fail(err, SF_ERR_ARG, "--max-new-tokens N (N >= 0) is required");
    return 1;
  }
  if (a->max_new > INT32_MAX) {
    sf_fail(err, SF_ERR_ARG, "--max-new-tokens %lld is too large", (long long)a->max_new);
    return 1;
  }
  if (a->threads < 0 || a->threads > 4096) {
    sf_fail(err, SF_ERR_ARG, "--threads %lld must be in [0, 4096]", (long long)a->threads);
    return 1;
  }
  if (strcmp(a->backend, "cpu") && strcmp(a->backend, "cuda")) {
    sf_fail(err, SF_ERR_ARG, "--backend: '%s' is not one of cpu, cuda", a->backend);
    return 1;
  }
  if (a->preset) {
    sf_model_config cfg;
    if (sf_model_preset(a->preset, &cfg, err) != SF_OK) return 1;
  }
  return 0;
}

/* The prompt's token ids; loads the tokenizer into *tok when one is needed or
 * found (--ids-in: optional). */
static sf_status build_prompt(const gen_args *a, sf_tokens *ids, sf_tokenizer **tok, sf_error *err) {
  char tok_path[4096], data_path[4096];
  if (a->ids_in) {
    SF_TRY(read_ids(a->ids_in, ids, err));
    sf_error ignore;
    if (sf_data_path_resolve(SF_DATA_TOKENIZER, a->tokenizer, tok_path, sizeof tok_path, &ignore) != SF_OK) {
      if (a->tokenizer) return sf_fail(err, ignore.code, "%s", ignore.msg);
      return SF_OK; /* no tokenizer: the completion prints as ids */
    }
    return sf_tokenizer_load(tok_path, tok, err);
  }
  SF_TRY(sf_data_path_resolve(SF_DATA_TOKENIZER, a->tokenizer, tok_path, sizeof tok_path, err));
  SF_TRY(sf_tokenizer_load(tok_path, tok, err));
  if (a->prompt) {
    SF_TRY(sf_tokenizer_encode(*tok, a->prompt, strlen(a->prompt), ids, err));
    if (ids->n == 0) return sf_fail(err, SF_ERR_ARG, "--prompt: the text has no tokens");
    return SF_OK;
  }
  SF_TRY(sf_data_path_resolve(SF_DATA_HUMANEVAL, a->data, data_path, sizeof data_path, err));
  sf_problem_set set = {0};
  SF_TRY(sf_humaneval_load(data_path, &set, err));
  sf_status rc = SF_OK;
  const int32_t p = sf_problem_set_find(&set, a->problem);
  if (p < 0) {
    rc = sf_fail(err, SF_ERR_ARG, "unknown problem '%s' (%s has %d problems)", a->problem, data_path,
                 (int)set.n);
  } else if (a->context == 0) {
    const char *text = set.items[p].prompt;
    rc = sf_tokenizer_encode(*tok, text, strlen(text), ids, err);
  } else {
    sf_corpus corpus = {0};
    rc = sf_corpus_build(&set, *tok, &corpus, err);
    if (rc == SF_OK) rc = sf_pack_context(&corpus, p, a->context, a->context_seed, ids, NULL, err);
    sf_corpus_free(&corpus);
  }
  sf_problem_set_free(&set);
  return rc;
}

static sf_status run(const gen_args *a, sf_error *err) {
  sf_op_ctx ctx;
  sf_model model;
  sf_tokens prompt = {0};
  sf_tokenizer *tok = NULL;
  sf_session *s = NULL;
  dump_ctx dump = {0};
  int32_t *out = NULL, n_out = 0, model_ok = 0, ctx_ok = 0;
  sf_status rc;
  memset(&model, 0, sizeof model);

  if ((rc = sf_backend_init(a->backend, 0, (int)a->threads, &ctx, err)) != SF_OK) return rc;
  ctx_ok = 1;

  if ((rc = build_prompt(a, &prompt, &tok, err)) != SF_OK) goto done;
  if (a->preset) {
    sf_model_config cfg;
    if ((rc = sf_model_preset(a->preset, &cfg, err)) != SF_OK) goto done;
    rc = sf_model_init_random(&cfg, &ctx, a->seed, &model, err);
  } else {
    struct stat st_dir;
    if (stat(a->weights, &st_dir) != 0 || !S_ISDIR(st_dir.st_mode)) {
      rc = sf_fail(err, SF_ERR_IO, "--weights %s: no such directory", a->weights);
      goto done;
    }
    rc = sf_model_load(a->weights, &ctx, &model, err);
  }
  if (rc != SF_OK) goto done;
  model_ok = 1;
  for (int64_t i = 0; i < prompt.n; i++)
    if (prompt.ids[i] >= model.cfg.vocab_size) {
      rc = sf_fail(err, SF_ERR_ARG, "prompt token %lld has id %d, outside the model's vocabulary of %d",
                   (long long)i, (int)prompt.ids[i], (int)model.cfg.vocab_size);
      goto done;
    }

  const int32_t G = (int32_t)a->max_new;
  const int64_t max_len = prompt.n + (G > 0 ? G - 1 : 0);
  /* Default chunk: the whole prompt in one pass (scratch sized for it, not for max_len). */
  const int64_t chunk = a->chunk > 0 ? a->chunk : prompt.n;
  if ((rc = sf_session_create(&model, 1, max_len, chunk, &s, err)) != SF_OK) goto done;
  out = calloc((size_t)(G > 0 ? G : 1), sizeof *out);
  if (!out) {
    rc = sf_fail(err, SF_ERR_NOMEM, "out of host memory");
    goto done;
  }
  if (a->dump_logits && (rc = sf_npy_open(&dump.w, a->dump_logits, model.cfg.vocab_size, err)) != SF_OK)
    goto done;
  const int32_t len = (int32_t)prompt.n;
  sf_batch_input in = {.layout = SF_BATCH_VARLEN, .ids = prompt.ids, .lens = &len};
  sf_generate_opts go = {.max_new_tokens = G,
                         /* without a tokenizer: GPT-NeoX-20B's <|endoftext|> is id 0 */
                         .eos_id = a->stop_at_eos ? (tok ? sf_tokenizer_eos_id(tok) : 0) : -1,
                         .on_logits = a->dump_logits ? dump_row : NULL, .user = &dump};
  sf_generate_stats st;
  if ((rc = sf_generate(s, &in, &go, out, &n_out, &st, err)) != SF_OK) goto done;
  if (a->dump_logits && (rc = sf_npy_close(&dump.w, err)) != SF_OK) goto done;
  if (a->ids_out && (rc = write_ids(a->ids_out, out, n_out, err)) != SF_OK) goto done;

  if (tok) {
    /* The EOS that stopped generation is not part of the completion text. */
    int64_t shown = n_out;
    if (a->stop_at_eos && shown > 0 && out[shown - 1] == go.eos_id) shown--;
    if ((rc = print_text(tok, out, shown, err)) != SF_OK) goto done;
  } else {
    for (int32_t i = 0; i < n_out; i++) printf(i ? " %d" : "%d", (int)out[i]);
    putchar('\n');
  }
  if (fflush(stdout) != 0 || ferror(stdout)) {
    rc = sf_fail(err, SF_ERR_IO, "writing to stdout: %s", strerror(errno));
    goto done;
  }
  fprintf(stderr, "model: %s (%s, %d layers, d_model %d), backend %s, prompt %lld tokens, chunk %lld\n",
          model.cfg.name, sf_arch_name(model.cfg.arch), (int)model.cfg.n_layers,
          (int)model.cfg.d_model, ctx.ops->name, (long long)prompt.n,
          (long long)sf_session_chunk_tokens(s));
  fprintf(stderr, "prefill: %lld tokens in %.6f s, %.1f tokens/s\n", (long long)st.prompt_tokens,
          st.prefill_s, st.prefill_s > 0 ? (double)st.prompt_tokens / st.prefill_s : 0.0);
  fprintf(stderr, "decode: %lld tokens in %.6f s, %.1f tokens/s (%d generated)\n",
          (long long)st.decode_tokens, st.decode_s,
          st.decode_s > 0 ? (double)st.decode_tokens / st.decode_s : 0.0, (int)n_out);
  if (!tok) fprintf(stderr, "no tokenizer found: the completion is printed as ids\n");

done:
  if (dump.w.f) sf_npy_abort(&dump.w);
  free(out);
  sf_session_free(s);
  if (model_ok) sf_model_free(&model);
  if (tok) sf_tokenizer_free(tok);
  sf_tokens_free(&prompt);
  if (ctx_ok) sf_backend_destroy(&ctx);
  return rc;
}

int cmd_generate(int argc, char **argv) {
  gen_args a;
  sf_error err;
  sf_error_clear(&err);
  int prc = parse_args(argc, argv, &a, &err);
  if (prc < 0) return SF_EXIT_OK;
  if (prc > 0) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    return SF_EXIT_USAGE;
  }
  if (run(&a, &err) != SF_OK) {
    fprintf(stderr, PROG ": %s\n", err.msg);
    return SF_EXIT_FAILURE;
  }
  return SF_EXIT_OK;
}
