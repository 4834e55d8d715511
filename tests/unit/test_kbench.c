/* worker/kbench without a GPU: the FLOP / byte / exponential counts against
 * hand-computed cases, the byte formulas against the tensors the harness
 * allocates, default shapes from the model presets, the reduced check
 * shapes, the --op / --seqlen / --dtype parsers, quantiles, predictions, and
 * the errors of items and contexts that cannot run. */
#include "kbench/kbench_internal.h"
#include "ops/op_table.h"
#include "scanflash/rng.h"
#include "test.h"

static int near(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b)); }

#define CHECK_NEAR(a, b) CHECK_MSG(near((a), (b)), "%s = %.17g, want %.17g", #a, (double)(a), (double)(b))

static sf_kbench_shape shape(sf_kbench_op op, sf_dtype dt, int64_t L, int32_t b) {
  sf_kbench_shape s;
  memset(&s, 0, sizeof s);
  s.op = op, s.dtype = dt, s.seqlen = L, s.batch = b;
  return s;
}

static void test_counts(void) {
  /* attention, causal, b 1, L 1024, 16 heads x 128, bf16:
   * flops = 4 * 1024^2 * 16 * 128 / 2 = 4294967296
   * bytes = 2 * 1024 * 128 * (2*16 + 2*16) = 16777216, exps = 16 * 1024^2 / 2 */
  sf_kbench_shape s = shape(SF_KB_ATTN, SF_BF16, 1024, 1);
  s.heads = 16, s.kv_heads = 16, s.head_dim = 128, s.causal = 1;
  sf_kbench_counts k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 4294967296.0);
  CHECK_NEAR(k.bytes, 16777216.0);
  CHECK_NEAR(k.exps, 8388608.0);
  s.causal = 0;
  k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 8589934592.0);
  /* GQA, f16, b 2, L 100, 8 heads / 2 kv heads x 64, not causal:
   * flops = 4*2*100^2*8*64 = 40960000; bytes = 2*2*100*64*(16+4) = 512000 */
  s = shape(SF_KB_ATTN, SF_F16, 100, 2);
  s.heads = 8, s.kv_heads = 2, s.head_dim = 64;
  k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 40960000.0);
  CHECK_NEAR(k.bytes, 512000.0);

  /* selective scan b 2, L 10, d 4, N 3, bf16: flops 9*2*10*4*3 = 2160,
   * exps 240, bytes 2*2*10*(16+6) + 4*(12+8) + 4*2*4*3 = 880+80+96 = 1056 */
  s = shape(SF_KB_SCAN, SF_BF16, 10, 2);
  s.dim = 4, s.d_state = 3;
  k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 2160.0);
  CHECK_NEAR(k.exps, 240.0);
  CHECK_NEAR(k.bytes, 1056.0);

  /* SSD b 1, L 512, H 2, P 4, G 1, N 8, chunk 256, bf16:
   * flops = 512 * (256*(8+8) + 4*2*4*8) = 2228224; exps 1024;
   * bytes = 2*512*(16+2+16) + 4*3*2 + 4*2*4*8 = 34816+24+256 = 35096 */
  s = shape(SF_KB_SSD, SF_BF16, 512, 1);
  s.heads = 2, s.head_dim = 4, s.n_groups = 1, s.d_state = 8, s.chunk = 256;
  k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 2228224.0);
  CHECK_NEAR(k.exps, 1024.0);
  CHECK_NEAR(k.bytes, 35096.0);
  s.seqlen = 100; /* shorter than a chunk: Q = L; 100 * (100*16 + 256) */
  k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 185600.0);

  /* conv1d b 1, L 8, C 4, W 4, f32: flops 256; bytes 4*(64+16+4+12) = 384 */
  s = shape(SF_KB_CONV, SF_F32, 8, 1);
  s.dim = 4, s.width = 4;
  k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 256.0);
  CHECK_NEAR(k.bytes, 384.0);

  /* decode b 2, cache 1000, 4 heads / 2 kv x 64, bf16: flops 4*2*4*64*1000;
   * bytes 2*(2*2*1000*2*64 + 2*2*4*64) = 1026048; exps 8000 */
  s = shape(SF_KB_ATTN_DECODE, SF_BF16, 1000, 2);
  s.heads = 4, s.kv_heads = 2, s.head_dim = 64;
  k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 2048000.0);
  CHECK_NEAR(k.bytes, 1026048.0);
  CHECK_NEAR(k.exps, 8000.0);

  /* selective state update b 3, d 5, N 2, bf16: flops 270, exps 30,
   * bytes 8*30 + 2*3*(20+4) + 4*(10+10) = 240+144+80 = 464 */
  s = shape(SF_KB_STATE_UPDATE, SF_BF16, 1, 3);
  s.dim = 5, s.d_state = 2;
  k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 270.0);
  CHECK_NEAR(k.exps, 30.0);
  CHECK_NEAR(k.bytes, 464.0);

  /* SSD update b 2, H 3, P 4, G 1, N 5, f16: flops 5*2*60 = 600, exps 6,
   * bytes 8*2*60 + 2*2*(24+3+10) + 36 = 960+148+36 = 1144 */
  s = shape(SF_KB_SSD_UPDATE, SF_F16, 1, 2);
  s.heads = 3, s.head_dim = 4, s.n_groups = 1, s.d_state = 5;
  k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 600.0);
  CHECK_NEAR(k.exps, 6.0);
  CHECK_NEAR(k.bytes, 1144.0);

  /* conv1d update b 2, C 3, W 4, bf16: flops 48; bytes 2*(12 + 36 + 12 + 3) = 126 */
  s = shape(SF_KB_CONV_UPDATE, SF_BF16, 1, 2);
  s.dim = 3, s.width = 4;
  k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 48.0);
  CHECK_NEAR(k.bytes, 126.0);

  /* gemm m 16 (b 1, L 16), n 32, k 8, bf16: flops 8192; bytes 2*(128+256+512) */
  s = shape(SF_KB_GEMM, SF_BF16, 16, 1);
  s.dim = 32, s.head_dim = 8;
  k = sf_kbench_counts_of(&s);
  CHECK_NEAR(k.flops, 8192.0);
  CHECK_NEAR(k.bytes, 1792.0);
}

/* The byte formulas equal the tensors the harness moves (inputs once,
 * outputs once, states twice), for every op at its default shape. */
static void test_bytes_match_layout(void) {
  const sf_dtype dts[3] = {SF_BF16, SF_F16, SF_F32};
  for (int op = 0; op < SF_KB_OP_COUNT; op++)
    for (int d = 0; d < 3; d++)
      for (int b = 1; b <= 3; b += 2) {
        sf_kbench_shape s;
        sf_error e = {0};
        CHECK(sf_kbench_default_shape((sf_kbench_op)op, 0, dts[d], 3000, b, 0, &s, &e) == SF_OK);
        kb_layout lay;
        kb_declare(&s, &lay);
        const double want = sf_kbench_counts_of(&s).bytes, got = kb_layout_bytes(&lay, s.dtype);
        CHECK_MSG(near(got, want), "%s %s b %d: layout %.17g bytes, formula %.17g", sf_kbench_op_info(s.op)->name,
                  sf_dtype_name(s.dtype), b, got, want);
        CHECK(lay.nt > 0 && lay.nt <= KB_MAX_T);
      }
}

/* Every op entry drives the cpu backend through kb_declare / kb_bind /
 * kb_call at its default widths (short sequences): the params it builds
 * pass the op's checks, and every output element gets written, finite. */
static void test_cpu_binding(void) {
  sf_op_ctx cctx;
  sf_error e = {0};
  REQUIRE(sf_cpu_ctx_init(&cctx, 0, &e) == SF_OK);
  sf_rng rng;
  sf_rng_seed(&rng, 42);
  for (int op = 0; op < SF_KB_OP_COUNT; op++) {
    const sf_kbench_opinfo *oi = sf_kbench_op_info((sf_kbench_op)op);
    for (int impl = 0; impl < oi->n_impls; impl++) {
      sf_kbench_shape s;
      REQUIRE(sf_kbench_default_shape((sf_kbench_op)op, impl, SF_F32, op == SF_KB_GEMM ? 16 : 300, 2, 0, &s, &e) ==
              SF_OK);
      kb_layout lay;
      kb_declare(&s, &lay);
      void *ptr[KB_MAX_T] = {0};
      for (int i = 0; i < lay.nt; i++) {
        const kb_tensor *t = &lay.t[i];
        ptr[i] = malloc((size_t)t->n * kb_elem_size(t->elem, SF_F32) + 8);
        REQUIRE(ptr[i]);
        for (int64_t k = 0; k < t->n; k++) {
          switch (t->init) {
            case KB_UNIFORM: ((float *)ptr[i])[k] = t->a + (t->b - t->a) * sf_rng_uniform(&rng); break;
            case KB_A_SCAN: ((float *)ptr[i])[k] = -(1.0f + (float)(k % s.d_state)); break;
            case KB_SEQ_START: ((int64_t *)ptr[i])[k] = k * s.seqlen; break;
            case KB_CONST: ((int32_t *)ptr[i])[k] = (int32_t)t->a; break;
            case KB_NONE: ((float *)ptr[i])[k] = NAN; break;
          }
        }
      }
      kb_params p;
      kb_bind(&s, SF_F32, ptr, &p);
      sf_status rc = kb_call(&sf_ops_cpu, &cctx, &s, &p, &e);
      CHECK_MSG(rc == SF_OK, "%s (%s): %s", oi->name, oi->impls[impl], e.msg);
      for (int i = 0; i < lay.nt && rc == SF_OK; i++) {
        const kb_tensor *t = &lay.t[i];
        if (t->role != KB_OUT && t->role != KB_INOUT) continue;
        int64_t bad = 0;
        for (int64_t k = 0; k < t->n; k++) bad += !isfinite(((float *)ptr[i])[k]);
        CHECK_MSG(bad == 0, "%s (%s): %lld of %lld elements of %s not written or not finite", oi->name,
                  oi->impls[impl], (long long)bad, (long long)t->n, t->name);
      }
      for (int i = 0; i < lay.nt; i++) free(ptr[i]);
    }
  }
  sf_cpu_ctx_destroy(&cctx);
}

static void test_default_shapes(void) {
  sf_kbench_shape s;
  sf_error e = {0};
  CHECK(sf_kbench_default_shape(SF_KB_SCAN, 1, SF_BF16, 16384, 1, 0, &s, &e) == SF_OK);
  CHECK_EQ_I64(s.dim, 4096);
  CHECK_EQ_I64(s.d_state, 16);
  CHECK_STR_EQ(s.model, "mamba-1.4b");
  CHECK_EQ_I64(s.seqlen, 16384);
  CHECK(sf_kbench_default_shape(SF_KB_SSD, 0, SF_BF16, 16384, 1, 0, &s, &e) == SF_OK);
  CHECK_EQ_I64(s.heads, 64);
  CHECK_EQ_I64(s.head_dim, 64);
  CHECK_EQ_I64(s.d_state, 128);
  CHECK_EQ_I64(s.n_groups, 1);
  CHECK_EQ_I64(s.chunk, 256);
  CHECK_STR_EQ(s.model, "mamba2-1.3b");
  CHECK(sf_kbench_default_shape(SF_KB_ATTN, 0, SF_BF16, 8192, 1, 0, &s, &e) == SF_OK);
  CHECK_EQ_I64(s.heads, 16);
  CHECK_EQ_I64(s.kv_heads, 16);
  CHECK_EQ_I64(s.head_dim, 128);
  CHECK(s.causal == 1);
  CHECK_STR_EQ(sf_kbench_row_op(&s), "attention");
  CHECK(sf_kbench_default_shape(SF_KB_ATTN, 1, SF_BF16, 8192, 1, 64, &s, &e) == SF_OK);
  CHECK_EQ_I64(s.heads, 32);
  CHECK_EQ_I64(s.head_dim, 64);
  CHECK_STR_EQ(s.model, "pythia-1.4b-hd64");
  s.causal = 0;
  CHECK_STR_EQ(sf_kbench_row_op(&s), "attention_noncausal");
  CHECK(sf_kbench_default_shape(SF_KB_ATTN, 0, SF_BF16, 8192, 1, 48, &s, &e) == SF_ERR_ARG); /* 2048 % 48 */
  CHECK(sf_kbench_default_shape(SF_KB_STATE_UPDATE, 0, SF_BF16, 99999, 256, 0, &s, &e) == SF_OK);
  CHECK_EQ_I64(s.seqlen, 1);
  CHECK_EQ_I64(s.batch, 256);
  CHECK(sf_kbench_default_shape(SF_KB_CONV, 0, SF_BF16, 100, 1, 0, &s, &e) == SF_OK);
  CHECK_EQ_I64(s.dim, 4096);
  CHECK_EQ_I64(s.width, 4);
  CHECK(sf_kbench_default_shape(SF_KB_GEMM, 0, SF_BF16, 100, 1, 0, &s, &e) == SF_OK);
  CHECK_EQ_I64(s.dim, 8192);
  CHECK_EQ_I64(s.head_dim, 2048);
  char buf[128];
  sf_kbench_shape_str(&s, buf, sizeof buf);
  CHECK_STR_EQ(buf, "m 100 n 8192 k 2048");

  sf_model_config cfg;
  REQUIRE(sf_model_preset("mamba2-1.3b", &cfg, &e) == SF_OK);
  CHECK(sf_kbench_shape_from_model(SF_KB_CONV, 0, &cfg, SF_BF16, 64, 1, &s, &e) == SF_OK);
  CHECK_EQ_I64(s.dim, 4096 + 2 * 128); /* x, B, C */
  CHECK(sf_kbench_shape_from_model(SF_KB_SCAN, 0, &cfg, SF_BF16, 64, 1, &s, &e) == SF_ERR_ARG);
  CHECK_MSG(strstr(e.msg, "does not apply") != NULL, "%s", e.msg);
  REQUIRE(sf_model_preset("pythia-1.4b", &cfg, &e) == SF_OK);
  CHECK(sf_kbench_shape_from_model(SF_KB_GEMM, 0, &cfg, SF_BF16, 64, 1, &s, &e) == SF_OK);
  CHECK_EQ_I64(s.dim, 3 * 2048);
  CHECK(sf_kbench_shape_from_model(SF_KB_ATTN, 0, &cfg, SF_BF16, 0, 1, &s, &e) == SF_ERR_ARG);
  CHECK(sf_kbench_shape_from_model(SF_KB_ATTN, 2, &cfg, SF_BF16, 64, 1, &s, &e) == SF_ERR_ARG);
}

static void test_check_shapes(void) {
  sf_kbench_shape s, c;
  sf_error e = {0};
  REQUIRE(sf_kbench_default_shape(SF_KB_SCAN, 0, SF_BF16, 1 << 20, 8, 0, &s, &e) == SF_OK);
  sf_kbench_check_shape(&s, &c);
  CHECK_EQ_I64(c.seqlen, 2100);
  CHECK_EQ_I64(c.batch, 2);
  CHECK_EQ_I64(c.dim, 4096);
  REQUIRE(sf_kbench_default_shape(SF_KB_ATTN, 0, SF_BF16, 300, 1, 0, &s, &e) == SF_OK);
  sf_kbench_check_shape(&s, &c);
  CHECK_EQ_I64(c.seqlen, 300);
  REQUIRE(sf_kbench_default_shape(SF_KB_GEMM, 0, SF_BF16, 1000, 2, 0, &s, &e) == SF_OK);
  sf_kbench_check_shape(&s, &c);
  CHECK_EQ_I64(c.batch, 1);
  CHECK_EQ_I64(c.seqlen, 96);
  REQUIRE(sf_kbench_default_shape(SF_KB_SSD_UPDATE, 0, SF_BF16, 1, 32, 0, &s, &e) == SF_OK);
  sf_kbench_check_shape(&s, &c);
  CHECK_EQ_I64(c.batch, 4);
}

static void test_parse_counts(void) {
  int64_t v[64];
  int n = 0;
  sf_error e = {0};
  CHECK(sf_kbench_parse_counts("512:1M:x2", "--seqlen", v, 64, &n, &e) == SF_OK);
  CHECK_EQ_I64(n, 12);
  CHECK_EQ_I64(v[0], 512);
  CHECK_EQ_I64(v[11], 1 << 20);
  CHECK(sf_kbench_parse_counts("1k:4k:+1k", "--seqlen", v, 64, &n, &e) == SF_OK);
  CHECK_EQ_I64(n, 4);
  CHECK_EQ_I64(v[2], 3072);
  CHECK(sf_kbench_parse_counts("100:1000:x3,7,2k", "--seqlen", v, 64, &n, &e) == SF_OK);
  CHECK_EQ_I64(n, 5);
  CHECK_EQ_I64(v[2], 900);
  CHECK_EQ_I64(v[3], 7);
  CHECK_EQ_I64(v[4], 2048);
  const char *bad[] = {"", "0", "abc", "4k:1k:x2", "1k:4k:x1", "1k:4k", "1k:4k:y2", "1k:4k:+0", "-5", "1,,x"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    e.msg[0] = '\0';
    CHECK_MSG(sf_kbench_parse_counts(bad[i], "--seqlen", v, 64, &n, &e) == SF_ERR_ARG, "'%s' accepted", bad[i]);
    CHECK_MSG(strstr(e.msg, "--seqlen") != NULL, "'%s': %s", bad[i], e.msg);
  }
  CHECK(sf_kbench_parse_counts("1:100:+1", "--seqlen", v, 64, &n, &e) == SF_ERR_ARG); /* > max */
  CHECK(strstr(e.msg, "more than 64") != NULL);
}

static void test_parse_ops(void) {
  sf_kbench_sel sel[SF_KB_OP_COUNT];
  int n = 0;
  sf_error e = {0};
  CHECK(sf_kbench_parse_ops("scan", sel, SF_KB_OP_COUNT, &n, &e) == SF_OK);
  CHECK(n == 1 && sel[0].op == SF_KB_SCAN && sel[0].impl_mask == 3u);
  CHECK(sf_kbench_parse_ops("scan:naive", sel, SF_KB_OP_COUNT, &n, &e) == SF_OK);
  CHECK(n == 1 && sel[0].impl_mask == 2u);
  CHECK(sf_kbench_parse_ops("selective_scan_naive,ssd", sel, SF_KB_OP_COUNT, &n, &e) == SF_OK);
  CHECK(n == 2 && sel[0].op == SF_KB_SCAN && sel[0].impl_mask == 2u && sel[1].op == SF_KB_SSD &&
        sel[1].impl_mask == 3u);
  CHECK(sf_kbench_parse_ops("attention,attention_naive", sel, SF_KB_OP_COUNT, &n, &e) == SF_OK);
  CHECK(n == 1 && sel[0].op == SF_KB_ATTN && sel[0].impl_mask == 3u);
  CHECK(sf_kbench_parse_ops("selective_scan", sel, SF_KB_OP_COUNT, &n, &e) == SF_OK);
  CHECK(n == 1 && sel[0].impl_mask == 3u); /* the op's name: every implementation */
  /* items name op table entries: "ssd" is the chunked SSD alone */
  sf_kbench_op op;
  unsigned mask = 0;
  CHECK(sf_kbench_find_table_op("ssd", &op, &mask) && op == SF_KB_SSD && mask == 1u);
  CHECK(sf_kbench_find_table_op("selective_scan_naive", &op, &mask) && op == SF_KB_SCAN && mask == 2u);
  CHECK(sf_kbench_find_table_op("attention_decode", &op, &mask) && op == SF_KB_ATTN_DECODE && mask == 1u);
  CHECK(!sf_kbench_find_table_op("scan", &op, &mask));
  CHECK(sf_kbench_parse_ops("attn_decode,state_update,ssd_update,conv_update,gemm,conv", sel, SF_KB_OP_COUNT, &n,
                            &e) == SF_OK);
  CHECK_EQ_I64(n, 6);
  CHECK(sf_kbench_parse_ops("all", sel, SF_KB_OP_COUNT, &n, &e) == SF_OK);
  CHECK_EQ_I64(n, SF_KB_OP_COUNT);
  CHECK(sf_kbench_parse_ops("attn:naive,all", sel, SF_KB_OP_COUNT, &n, &e) == SF_OK);
  CHECK(n == SF_KB_OP_COUNT && sel[0].op == SF_KB_ATTN && sel[0].impl_mask == 3u);
  CHECK(sf_kbench_parse_ops("flash", sel, SF_KB_OP_COUNT, &n, &e) == SF_ERR_ARG);
  CHECK_MSG(strstr(e.msg, "unknown op 'flash'") && strstr(e.msg, "scan, ssd"), "%s", e.msg);
  CHECK(sf_kbench_parse_ops("attn:fast", sel, SF_KB_OP_COUNT, &n, &e) == SF_ERR_ARG);
  CHECK_MSG(strstr(e.msg, "no implementation 'fast' (tiled, naive)") != NULL, "%s", e.msg);
  CHECK(sf_kbench_parse_ops("", sel, SF_KB_OP_COUNT, &n, &e) == SF_ERR_ARG);

  sf_dtype dt;
  CHECK(sf_kbench_parse_dtype("bf16", &dt, &e) == SF_OK && dt == SF_BF16);
  CHECK(sf_kbench_parse_dtype("fp16", &dt, &e) == SF_OK && dt == SF_F16);
  CHECK(sf_kbench_parse_dtype("f32", &dt, &e) == SF_OK && dt == SF_F32);
  CHECK(sf_kbench_parse_dtype("int8", &dt, &e) == SF_ERR_ARG);
  CHECK(strstr(e.msg, "--dtype") != NULL);
}

static void test_stats(void) {
  const double x[4] = {1, 2, 3, 4};
  CHECK_NEAR(kb_quantile(x, 4, 0.5), 2.5);
  CHECK_NEAR(kb_quantile(x, 4, 0.1), 1.3);
  CHECK_NEAR(kb_quantile(x, 4, 0.9), 3.7);
  CHECK_NEAR(kb_quantile(x, 1, 0.9), 1.0);
  CHECK(isnan(kb_quantile(x, 0, 0.5)));
  /* prediction: causal attention at 2L costs 4x; a scan at 2L 2x */
  sf_kbench_shape a, b;
  sf_error e = {0};
  REQUIRE(sf_kbench_default_shape(SF_KB_ATTN, 0, SF_BF16, 8192, 1, 0, &a, &e) == SF_OK);
  REQUIRE(sf_kbench_default_shape(SF_KB_ATTN, 0, SF_BF16, 16384, 1, 0, &b, &e) == SF_OK);
  CHECK_NEAR(sf_kbench_predict_s(&a, 0.5, &b), 2.0);
  REQUIRE(sf_kbench_default_shape(SF_KB_SCAN, 0, SF_BF16, 8192, 1, 0, &a, &e) == SF_OK);
  REQUIRE(sf_kbench_default_shape(SF_KB_SCAN, 0, SF_BF16, 16384, 1, 0, &b, &e) == SF_OK);
  const double p = sf_kbench_predict_s(&a, 1.0, &b);
  CHECK_MSG(p > 1.99 && p <= 2.0, "scan at 2L: %.6f", p);
}

static void test_rows_and_items(void) {
  sf_kbench_shape s;
  sf_error e = {0};
  REQUIRE(sf_kbench_default_shape(SF_KB_SSD, 1, SF_F16, 4096, 2, 0, &s, &e) == SF_OK);
  sf_kernel_result r;
  sf_kbench_row_init(&s, &r);
  CHECK_STR_EQ(r.op, "ssd");
  CHECK_STR_EQ(r.impl, "naive");
  CHECK_STR_EQ(r.dtype, "f16");
  CHECK_EQ_I64(r.seqlen, 4096);
  CHECK_EQ_I64(r.batch, 2);
  CHECK_EQ_I64(r.heads, 64);
  CHECK_EQ_I64(r.d_state, 128);
  CHECK(isnan(r.median_s) && isnan(r.tflops) && isnan(r.max_rel_err));

  /* Items that cannot run fail before touching the (here absent) device. */
  sf_kbench_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  sf_work_item it;
  memset(&it, 0, sizeof it);
  snprintf(it.key, sizeof it.key, "0123456789abcdef");
  snprintf(it.op, sizeof it.op, "flash_attention");
  snprintf(it.model, sizeof it.model, "pythia-1.4b");
  snprintf(it.dtype, sizeof it.dtype, "bf16");
  it.kind = SF_ITEM_KERNELS, it.context = 1024, it.batch = 1;
  sf_kernel_result rows[2];
  int n = 7;
  CHECK(sf_kbench_run_item(&ctx, &it, rows, 2, &n, &e) == SF_ERR_ARG);
  CHECK(n == 0);
  snprintf(it.op, sizeof it.op, "selective_scan");
  CHECK(sf_kbench_run_item(&ctx, &it, rows, 2, &n, &e) == SF_ERR_ARG); /* a Mamba-1 op on pythia */
  CHECK_MSG(strstr(e.msg, "does not apply") != NULL, "%s", e.msg);
  snprintf(it.model, sizeof it.model, "my-custom-model");
  CHECK(sf_kbench_run_item(&ctx, &it, rows, 2, &n, &e) == SF_ERR_ARG);
  CHECK_MSG(strstr(e.msg, "not a preset") != NULL, "%s", e.msg);
}

static void test_context(void) {
  sf_kbench_ctx ctx;
  sf_error e = {0};
  sf_status rc = sf_kbench_ctx_init(&ctx, 0, &e);
  if (rc == SF_OK) { /* a machine with a GPU: nothing to check here */
    printf("a CUDA device is present: the no-device path is not tested here\n");
    sf_kbench_ctx_destroy(&ctx);
    return;
  }
  CHECK(rc == SF_ERR_UNSUPPORTED);
  CHECK_MSG(!strncmp(e.msg, "no CUDA device (", 16), "%s", e.msg);
  sf_kbench_ctx_destroy(&ctx);
}

int main(void) {
  test_counts();
  test_bytes_match_layout();
  test_cpu_binding();
  test_default_shapes();
  test_check_shapes();
  test_parse_counts();
  test_parse_ops();
  test_stats();
  test_rows_and_items();
  test_context();
  if (sf_test_failures) fprintf(stderr, "%d failure(s)\n", sf_test_failures);
  else printf("all passed\n");
  return sf_test_failures ? 1 : 0;
}
