/* Memory estimate: weights equal the bytes of an initialised model's tensors;
 * cache, activation and workspace terms against the formulae worked by hand
 * on presets; how the terms move with context, batch and chunk. */
#include <stdio.h>
#include <string.h>

#include "model/model.h"
#include "ops/op_table.h"
#include "test.h"

static sf_model_config preset(const char *name) {
  sf_model_config c;
  sf_error err;
  REQUIRE(sf_model_preset(name, &c, &err) == SF_OK);
  return c;
}

static int64_t model_bytes(const sf_model *m) {
  int64_t total = 0;
  for (int32_t i = 0; i < m->n_tensors; i++)
    total += sf_tensor_numel(&m->tensors[i]) * (int64_t)sf_dtype_size(m->tensors[i].dtype);
  return total;
}

static void test_weights_match_model(void) {
  sf_op_ctx cpu;
  sf_error err;
  REQUIRE(sf_cpu_ctx_init(&cpu, 1, &err) == SF_OK);
  sf_ops ops = sf_ops_cpu;
  ops.act_dtype = SF_BF16;
  sf_op_ctx bf = cpu;
  bf.ops = &ops;
  const char *names[] = {"tiny-mamba1", "tiny-mamba2", "tiny-transformer"};
  for (int i = 0; i < 3; i++) {
    sf_model_config c = preset(names[i]);
    for (int k = 0; k < 2; k++) {
      sf_op_ctx *ctx = k ? &bf : &cpu;
      sf_model m;
      REQUIRE(sf_model_init_random(&c, ctx, 1, &m, &err) == SF_OK);
      sf_memory_estimate e;
      sf_model_estimate_memory(&c, ctx->ops->act_dtype, 1, 128, 16, 64, &e);
      CHECK_MSG(e.weights == model_bytes(&m), "%s %s: estimate %lld, model %lld", names[i],
                sf_dtype_name(ctx->ops->act_dtype), (long long)e.weights, (long long)model_bytes(&m));
      sf_model_free(&m);
    }
  }
  /* Published sizes: pythia-160m in f32 is 162,322,944 * 4 bytes. */
  sf_model_config c = preset("pythia-160m");
  sf_memory_estimate e;
  sf_model_estimate_memory(&c, SF_F32, 1, 2048, 0, 0, &e);
  CHECK_EQ_I64(e.weights, 162322944LL * 4);
  /* mamba-130m in bf16: A, D, dt_proj.bias stay f32 (24 layers x 1536 x
   * (16 + 1 + 1) values), the rest 2 bytes. */
  c = preset("mamba-130m");
  sf_model_estimate_memory(&c, SF_BF16, 1, 2048, 0, 0, &e);
  int64_t f32_vals = 24LL * 1536 * 18;
  CHECK_EQ_I64(e.weights, (129135360LL - f32_vals) * 2 + f32_vals * 4);
  sf_cpu_ctx_destroy(&cpu);
}

static void test_cache_by_hand(void) {
  sf_memory_estimate e;
  /* pythia-1.4b, batch 2, 4096 + 256 positions, bf16:
   * K and V x 24 layers x 2 seqs x 4352 positions x 16 heads x 128 x 2 B. */
  sf_model_config c = preset("pythia-1.4b");
  sf_model_estimate_memory(&c, SF_BF16, 2, 4096, 256, 512, &e);
  CHECK_EQ_I64(e.cache, 2LL * 24 * 2 * 4352 * 16 * 128 * 2);
  CHECK_EQ_I64(e.cache, 1711276032LL); /* 1.59 GiB */
  /* A million tokens of pythia-6.9b for one sequence: 512 GiB. */
  c = preset("pythia-6.9b");
  sf_model_estimate_memory(&c, SF_BF16, 1, 1 << 20, 0, 2048, &e);
  CHECK_EQ_I64(e.cache, 2LL * 32 * (1 << 20) * 32 * 128 * 2);
  CHECK_EQ_I64(e.cache, 549755813888LL);

  /* mamba-1.4b, batch 3: 48 layers x 3 x (4096 x 16 x 4 B of SSM state +
   * 4096 x 3 x 2 B of conv state), whatever the context. */
  c = preset("mamba-1.4b");
  sf_model_estimate_memory(&c, SF_BF16, 3, 4096, 256, 512, &e);
  CHECK_EQ_I64(e.cache, 48LL * 3 * (4096 * 16 * 4 + 4096 * 3 * 2));
  sf_memory_estimate e2;
  sf_model_estimate_memory(&c, SF_BF16, 3, 1 << 20, 256, 512, &e2);
  CHECK_EQ_I64(e2.cache, e.cache);
  CHECK_EQ_I64(e2.activations, e.activations); /* same chunk */

  /* mamba2-2.7b, batch 1, f16: 64 layers x (80 heads x 64 x 128 x 4 B +
   * (5120 + 2 x 128) x 3 x 2 B). */
  c = preset("mamba2-2.7b");
  sf_model_estimate_memory(&c, SF_F16, 1, 8192, 0, 256, &e);
  CHECK_EQ_I64(e.cache, 64LL * (80 * 64 * 128 * 4 + 5376 * 3 * 2));
  CHECK_EQ_I64(e.total, e.weights + e.cache + e.activations + e.workspace);
}

static void test_activations_by_hand(void) {
  sf_memory_estimate e;
  /* tiny-transformer, f32, batch 2, chunk 8 -> T = 16 tokens:
   * residual 64*4 + ln1 64*4 + ids/pos 8 + ln2 64*4 + qkv 192*4 + attn 64*4
   * + mlp 256*4 per token. */
  sf_model_config c = preset("tiny-transformer");
  sf_model_estimate_memory(&c, SF_F32, 2, 100, 10, 8, &e);
  CHECK_EQ_I64(e.activations, 16LL * (64 * 4 + 64 * 4 + 8 + 64 * 4 + 192 * 4 + 64 * 4 + 256 * 4));
  /* workspace: logits 2 x 50304 x 4 + final hidden 2 x 64 x 4, plus
   * max(prefill lse 16 x 4 heads x 4, decode partials 2 x 4 x 1 split x 17 x 4). */
  CHECK_EQ_I64(e.workspace, 2LL * 50304 * 4 + 2 * 64 * 4 + 2 * 4 * 1 * 17 * 4);
  CHECK_EQ_I64(e.cache, 2LL * 2 * 2 * 110 * 4 * 16 * 4);

  /* tiny-mamba2, bf16, batch 1, chunk 40 over a 100-token context:
   * residual f32 64*4, normed 64*2, ids 8, in_proj (256 + 32 + 8)*2,
   * conv 160*2, ssd out 128*2, gated norm 128*2 per token; SSD workspace:
   * nc = ceil(40 / 16) = 3 chunks of 8 heads x 16 x 16 states x 4 B plus
   * 2 x 8 heads x 3 x 16 x 4 B; the last hidden row is f32 (the residual). */
  c = preset("tiny-mamba2");
  sf_model_estimate_memory(&c, SF_BF16, 1, 100, 0, 40, &e);
  CHECK_EQ_I64(e.activations, 40LL * (64 * 4 + 64 * 2 + 8 + 296 * 2 + 160 * 2 + 128 * 2 + 128 * 2));
  CHECK_EQ_I64(e.workspace, 50288LL * 4 + 64 * 4 + 3 * 8 * 16 * 16 * 4 + 2 * 8 * 3 * 16 * 4);

  /* chunk_tokens <= 0 or beyond the context: the whole context at once. */
  sf_memory_estimate whole, big;
  sf_model_estimate_memory(&c, SF_BF16, 1, 100, 0, 0, &whole);
  sf_model_estimate_memory(&c, SF_BF16, 1, 100, 0, 1000, &big);
  CHECK_EQ_I64(whole.activations, big.activations);
  CHECK(whole.activations == e.activations / 40 * 100);

  /* Batch scales cache, activations and logits linearly. */
  sf_model_config m1 = preset("tiny-mamba1");
  sf_memory_estimate b1, b4;
  sf_model_estimate_memory(&m1, SF_F32, 1, 64, 8, 32, &b1);
  sf_model_estimate_memory(&m1, SF_F32, 4, 64, 8, 32, &b4);
  CHECK_EQ_I64(b4.cache, 4 * b1.cache);
  CHECK_EQ_I64(b4.activations, 4 * b1.activations);
  CHECK_EQ_I64(b4.workspace, 4 * b1.workspace);
  CHECK_EQ_I64(b4.weights, b1.weights);

  /* Invalid input: all zero. */
  sf_model_config bad = m1;
  bad.d_state = 0;
  sf_model_estimate_memory(&bad, SF_F32, 1, 64, 8, 32, &e);
  CHECK(e.weights == 0 && e.cache == 0 && e.total == 0);
  sf_model_estimate_memory(&m1, SF_F32, 0, 64, 8, 32, &e);
  CHECK(e.total == 0);
}

/* The ring attention's buffers of a context-parallel rank, by hand:
 * pythia-1.4b (16 heads of 128, no GQA), 1M tokens, bf16. */
static void test_cp_prefill_by_hand(void) {
  const sf_model_config c = preset("pythia-1.4b");
  const int64_t local = 2 * (((int64_t)1 << 20) / 8); /* two zigzag blocks of L / 2k, k = 4 */
  const int64_t ring = 2 * local * 16 * 128 * 2;      /* K and V shards */
  const int64_t part = local * 16 * 128 * 2, lses = 2 * local * 16 * 4;
  const int64_t acc = local * 16 * 128 * 4 + local * 16 * 4; /* f32 accumulator, k > 2 */
  CHECK_EQ_I64(sf_model_estimate_cp_prefill(&c, SF_BF16, 1, (int64_t)1 << 20, 4), 2 * ring + part + lses + acc);
  CHECK_EQ_I64(sf_model_estimate_cp_prefill(&c, SF_BF16, 1, (int64_t)1 << 20, 4), 7566524416LL);
  /* k = 2: no accumulator (the two ways round alike); f32: none either */
  const int64_t local2 = 2 * (((int64_t)1 << 20) / 4);
  CHECK_EQ_I64(sf_model_estimate_cp_prefill(&c, SF_BF16, 1, (int64_t)1 << 20, 2),
               2 * (2 * local2 * 16 * 128 * 2) + local2 * 16 * 128 * 2 + 2 * local2 * 16 * 4);
  CHECK_EQ_I64(sf_model_estimate_cp_prefill(&c, SF_F32, 1, 1000, 1), 0);
  const sf_model_config m = preset("mamba-1.4b");
  CHECK_EQ_I64(sf_model_estimate_cp_prefill(&m, SF_BF16, 1, (int64_t)1 << 20, 4), 0);
}

int main(void) {
  test_weights_match_model();
  test_cache_by_hand();
  test_activations_by_hand();
  test_cp_prefill_by_hand();
  return sf_test_finish("test_model_memory");
}
