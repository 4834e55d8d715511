/* kbench's op table: names and implementations, shapes from model layers,
 * FLOP / byte / exponential counts, the reduced check shapes, and the
 * parsers of --op, --seqlen and --dtype. No CUDA here: this file builds and
 * is unit-tested everywhere. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbench/kbench_internal.h"
#include "scanflash/parse.h"

static const sf_kbench_opinfo op_table[SF_KB_OP_COUNT] = {
    [SF_KB_SCAN] = {"selective_scan", "scan", "mamba1", 2, {"chunked", "naive"},
                    {"selective_scan", "selective_scan_naive"}, 1, SF_KB_ROOF_SFU, "mamba-1.4b"},
    [SF_KB_SSD] = {"ssd", "ssd", "mamba2", 2, {"chunked", "naive"}, {"ssd", "ssd_naive"}, 1, SF_KB_ROOF_TC,
                   "mamba2-1.3b"},
    [SF_KB_CONV] = {"conv1d", "conv", "mamba1", 1, {"chunked", NULL}, {"conv1d", NULL}, 1, SF_KB_ROOF_MEM,
                    "mamba-1.4b"},
    [SF_KB_ATTN] = {"attention", "attn", "transformer", 2, {"tiled", "naive"}, {"attention", "attention_naive"}, 1,
                    SF_KB_ROOF_TC, "pythia-1.4b"},
    [SF_KB_ATTN_DECODE] = {"attention_decode", "attn_decode", "transformer", 1, {"split_kv", NULL},
                           {"attention_decode", NULL}, 1, SF_KB_ROOF_MEM, "pythia-1.4b"},
    [SF_KB_STATE_UPDATE] = {"selective_state_update", "state_update", "mamba1", 1, {"direct", NULL},
                            {"selective_state_update", NULL}, 0, SF_KB_ROOF_SFU, "mamba-1.4b"},
    [SF_KB_SSD_UPDATE] = {"ssd_update", "ssd_update", "mamba2", 1, {"direct", NULL}, {"ssd_update", NULL}, 0,
                          SF_KB_ROOF_MEM, "mamba2-1.3b"},
    [SF_KB_CONV_UPDATE] = {"conv1d_update", "conv_update", "mamba1", 1, {"direct", NULL}, {"conv1d_update", NULL},
                           0, SF_KB_ROOF_MEM, "mamba-1.4b"},
    [SF_KB_GEMM] = {"gemm", "gemm", "-", 1, {"cublaslt", NULL}, {"gemm", NULL}, 1, SF_KB_ROOF_TC, "mamba-1.4b"},
};

const sf_kbench_opinfo *sf_kbench_op_info(sf_kbench_op op) {
  return (unsigned)op < SF_KB_OP_COUNT ? &op_table[op] : NULL;
}

/* ---- shapes ---------------------------------------------------------------- */

static int applies(sf_kbench_op op, sf_arch a) {
  switch (op) {
    case SF_KB_SCAN:
    case SF_KB_STATE_UPDATE: return a == SF_ARCH_MAMBA1;
    case SF_KB_SSD:
    case SF_KB_SSD_UPDATE: return a == SF_ARCH_MAMBA2;
    case SF_KB_CONV:
    case SF_KB_CONV_UPDATE: return a == SF_ARCH_MAMBA1 || a == SF_ARCH_MAMBA2;
    case SF_KB_ATTN:
    case SF_KB_ATTN_DECODE: return a == SF_ARCH_TRANSFORMER;
    case SF_KB_GEMM: return 1;
    case SF_KB_OP_COUNT: break;
  }
  return 0;
}

sf_status sf_kbench_shape_from_model(sf_kbench_op op, int impl, const sf_model_config *c, sf_dtype dtype,
                                     int64_t seqlen, int32_t batch, sf_kbench_shape *s, sf_error *err) {
  const sf_kbench_opinfo *oi = sf_kbench_op_info(op);
  if (!oi) return sf_fail(err, SF_ERR_ARG, "kbench: unknown op %d", (int)op);
  if (impl < 0 || impl >= oi->n_impls)
    return sf_fail(err, SF_ERR_ARG, "kbench: %s has no implementation %d", oi->name, impl);
  if (!applies(op, c->arch))
    return sf_fail(err, SF_ERR_ARG, "kbench: %s does not apply to %s (a %s model)", oi->name, c->name,
                   sf_arch_name(c->arch));
  if (batch <= 0) return sf_fail(err, SF_ERR_ARG, "kbench: batch must be > 0, got %d", (int)batch);
  if (oi->per_token && seqlen <= 0)
    return sf_fail(err, SF_ERR_ARG, "kbench: %s needs a sequence length > 0, got %lld", oi->name,
                   (long long)seqlen);
  memset(s, 0, sizeof *s);
  s->op = op;
  s->impl = impl;
  s->dtype = dtype;
  s->seqlen = oi->per_token ? seqlen : 1;
  s->batch = batch;
  s->arch = c->arch;
  snprintf(s->model, sizeof s->model, "%.*s", (int)sizeof s->model - 1, c->name);
  switch (op) {
    case SF_KB_SCAN:
    case SF_KB_STATE_UPDATE:
      s->dim = c->d_inner;
      s->d_state = c->d_state;
      break;
    case SF_KB_SSD:
    case SF_KB_SSD_UPDATE:
      s->heads = c->ssm_heads;
      s->kv_heads = 0;
      s->head_dim = c->ssm_head_dim;
      s->dim = (int64_t)c->ssm_heads * c->ssm_head_dim;
      s->n_groups = c->n_groups;
      s->d_state = c->d_state;
      s->chunk = op == SF_KB_SSD ? c->chunk_size : 0;
      break;
    case SF_KB_CONV:
    case SF_KB_CONV_UPDATE:
      s->dim = c->arch == SF_ARCH_MAMBA2 ? (int64_t)c->d_inner + 2LL * c->n_groups * c->d_state : c->d_inner;
      s->width = c->d_conv;
      break;
    case SF_KB_ATTN:
    case SF_KB_ATTN_DECODE:
      s->heads = c->n_heads;
      s->kv_heads = c->n_kv_heads > 0 ? c->n_kv_heads : c->n_heads;
      s->head_dim = c->head_dim;
      s->dim = (int64_t)s->kv_heads * s->head_dim;
      s->causal = op == SF_KB_ATTN;
      break;
    case SF_KB_GEMM:
      if (c->arch == SF_ARCH_MAMBA1) s->dim = 2LL * c->d_inner;
      else if (c->arch == SF_ARCH_MAMBA2)
        s->dim = 2LL * c->d_inner + 2LL * c->n_groups * c->d_state + c->ssm_heads;
      else s->dim = 3LL * c->d_model;
      s->head_dim = c->d_model; /* k */
      break;
    case SF_KB_OP_COUNT: break;
  }
  if (s->dim <= 0) return sf_fail(err, SF_ERR_ARG, "kbench: %s: %s has no width for %s", oi->name, c->name, oi->name);
  return SF_OK;
}

sf_status sf_kbench_default_shape(sf_kbench_op op, int impl, sf_dtype dtype, int64_t seqlen, int32_t batch,
                                  int32_t head_dim, sf_kbench_shape *out, sf_error *err) {
  const sf_kbench_opinfo *oi = sf_kbench_op_info(op);
  if (!oi) return sf_fail(err, SF_ERR_ARG, "kbench: unknown op %d", (int)op);
  sf_model_config cfg;
  SF_TRY(sf_model_preset(oi->model, &cfg, err));
  if ((op == SF_KB_ATTN || op == SF_KB_ATTN_DECODE) && head_dim > 0 && head_dim != cfg.head_dim) {
    if (cfg.d_model % head_dim)
      return sf_fail(err, SF_ERR_ARG, "kbench: head_dim %d does not divide %s's d_model %d", (int)head_dim,
                     cfg.name, (int)cfg.d_model);
    cfg.head_dim = head_dim;
    cfg.n_heads = cfg.d_model / head_dim;
    cfg.n_kv_heads = cfg.n_heads;
    snprintf(cfg.name, sizeof cfg.name, "%s-hd%d", oi->model, (int)head_dim);
  }
  return sf_kbench_shape_from_model(op, impl, &cfg, dtype, seqlen, batch, out, err);
}

const char *sf_kbench_row_op(const sf_kbench_shape *s) {
  if (s->op == SF_KB_ATTN && !s->causal) return "attention_noncausal";
  return op_table[s->op].name;
}

void sf_kbench_shape_str(const sf_kbench_shape *s, char *buf, size_t cap) {
  const long long b = s->batch, L = s->seqlen, d = s->dim;
  switch (s->op) {
    case SF_KB_SCAN: snprintf(buf, cap, "b %lld L %lld d %lld N %d", b, L, d, s->d_state); break;
    case SF_KB_SSD:
      snprintf(buf, cap, "b %lld L %lld H %d P %d G %d N %d Q %d", b, L, s->heads, s->head_dim, s->n_groups,
               s->d_state, s->chunk);
      break;
    case SF_KB_CONV: snprintf(buf, cap, "b %lld L %lld C %lld W %d", b, L, d, s->width); break;
    case SF_KB_ATTN:
      snprintf(buf, cap, "b %lld L %lld h %d/%d d %d%s", b, L, s->heads, s->kv_heads, s->head_dim,
               s->causal ? " causal" : "");
      break;
    case SF_KB_ATTN_DECODE:
      snprintf(buf, cap, "b %lld cache %lld h %d/%d d %d", b, L, s->heads, s->kv_heads, s->head_dim);
      break;
    case SF_KB_STATE_UPDATE: snprintf(buf, cap, "b %lld d %lld N %d", b, d, s->d_state); break;
    case SF_KB_SSD_UPDATE:
      snprintf(buf, cap, "b %lld H %d P %d G %d N %d", b, s->heads, s->head_dim, s->n_groups, s->d_state);
      break;
    case SF_KB_CONV_UPDATE: snprintf(buf, cap, "b %lld C %lld W %d", b, d, s->width); break;
    case SF_KB_GEMM: snprintf(buf, cap, "m %lld n %lld k %d", b * L, d, s->head_dim); break;
    default: snprintf(buf, cap, "?"); break;
  }
}

/* ---- counts -----------------------------------------------------------------
 * b = batch, L = seqlen, es = bytes per element of the dtype (2 for bf16/f16,
 * 4 for f32); SSM states and the fp32 parameters (A, D, dt bias) are 4
 * bytes. Minimum bytes: every input read once, every output written once,
 * states that are read and updated counted twice; sequence metadata
 * (start/len, a few bytes) is not counted. Exponentials: the ones the op
 * must evaluate per element of its recurrence or scores; softplus and SiLU
 * per (token, channel) are not counted. */
sf_kbench_counts sf_kbench_counts_of(const sf_kbench_shape *s) {
  sf_kbench_counts k = {0, 0, 0};
  const double b = s->batch, L = (double)s->seqlen, es = (double)sf_dtype_size(s->dtype);
  switch (s->op) {
    case SF_KB_SCAN: {
      /* Mamba-1 selective scan, d = d_inner, N = d_state:
       *   flops = 9 b L d N      (mamba_ssm's count for the recurrence:
       *                           dt*A, exp, h = a h + (dt u) B, y += C h)
       *   exps  = b L d N        (exp(dt A) per token, channel and state)
       *   bytes = es b L (4 d + 2 N)   u, delta, z read; out written; B, C read
       *         + 4 (d N + 2 d)        A, D, delta_bias (fp32)
       *         + 4 b d N              final state written (fp32) */
      const double d = (double)s->dim, N = s->d_state;
      k.flops = 9 * b * L * d * N;
      k.exps = b * L * d * N;
      k.bytes = es * b * L * (4 * d + 2 * N) + 4 * (d * N + 2 * d) + 4 * b * d * N;
      break;
    }
    case SF_KB_SSD: {
      /* Mamba-2 SSD by the chunked (state-space dual) algorithm, H heads of
       * P channels, G groups, N states, chunk Q = min(chunk, L):
       *   flops = b L (Q (G N + H P) + 4 H P N)
       *     C B^T within a chunk, causal half:  Q^2 N per chunk and group
       *     (L o C B^T) X, causal half:         Q^2 P per chunk and head
       *     chunk states B^T X and C S_prev:    2 Q N P each per chunk and head
       *   exps  = b L H          (exp(dt A) per token and head)
       *   bytes = es b L (2 H P + H + 2 G N)   x read, out written; dt; B, C
       *         + 4 * 3 H                      A, D, dt_bias
       *         + 4 b H P N                    final state written */
      const double H = s->heads, P = s->head_dim, G = s->n_groups, N = s->d_state;
      const double Q = fmin(s->chunk > 0 ? (double)s->chunk : 256.0, L);
      k.flops = b * L * (Q * (G * N + H * P) + 4 * H * P * N);
      k.exps = b * L * H;
      k.bytes = es * b * L * (2 * H * P + H + 2 * G * N) + 4 * 3 * H + 4 * b * H * P * N;
      break;
    }
    case SF_KB_CONV: {
      /* Causal depthwise conv1d, C channels, width W:
       *   flops = 2 b L C W
       *   bytes = es (2 b L C + C W + C + b C (W - 1))
       *           x read, out written, weight, bias, final conv state written */
      const double C = (double)s->dim, W = s->width;
      k.flops = 2 * b * L * C * W;
      k.bytes = es * (2 * b * L * C + C * W + C + b * C * (W - 1));
      break;
    }
    case SF_KB_ATTN: {
      /* Attention prefill, h query heads, kv key/value heads, head dim d,
       * FlashAttention's count (two matmuls, 2 flops per multiply-add):
       *   flops = 4 b L^2 h d, halved when causal
       *   exps  = b h L^2, halved when causal (one per score)
       *   bytes = es b L d (2 h + 2 kv)   q read, out written, k and v read once */
      const double h = s->heads, kv = s->kv_heads, d = s->head_dim, c = s->causal ? 0.5 : 1.0;
      k.flops = 4 * b * L * L * h * d * c;
      k.exps = b * h * L * L * c;
      k.bytes = es * b * L * d * (2 * h + 2 * kv);
      break;
    }
    case SF_KB_ATTN_DECODE: {
      /* One query per sequence over a cache of L tokens:
       *   flops = 4 b h d L
       *   exps  = b h L
       *   bytes = es (2 b L kv d + 2 b h d)   the KV cache read once; q, out */
      const double h = s->heads, kv = s->kv_heads, d = s->head_dim;
      k.flops = 4 * b * h * d * L;
      k.exps = b * h * L;
      k.bytes = es * (2 * b * L * kv * d + 2 * b * h * d);
      break;
    }
    case SF_KB_STATE_UPDATE: {
      /* Mamba-1 state update, one token per sequence, d = d_inner, N = d_state:
       *   flops = 9 b d N   (as the scan)
       *   exps  = b d N
       *   bytes = 8 b d N                 state read and written (fp32)
       *         + es b (4 d + 2 N)        x, dt, z read, out written; B, C
       *         + 4 (d N + 2 d)           A, D, dt_bias */
      const double d = (double)s->dim, N = s->d_state;
      k.flops = 9 * b * d * N;
      k.exps = b * d * N;
      k.bytes = 8 * b * d * N + es * b * (4 * d + 2 * N) + 4 * (d * N + 2 * d);
      break;
    }
    case SF_KB_SSD_UPDATE: {
      /* Mamba-2 state update, one token per sequence:
       *   flops = 5 b H P N   (S = a S + (dt x) B: 3; y += C S: 2)
       *   exps  = b H
       *   bytes = 8 b H P N                    state read and written (fp32)
       *         + es b (2 H P + H + 2 G N)     x read, out written; dt; B, C
       *         + 4 * 3 H                      A, D, dt_bias */
      const double H = s->heads, P = s->head_dim, G = s->n_groups, N = s->d_state;
      k.flops = 5 * b * H * P * N;
      k.exps = b * H;
      k.bytes = 8 * b * H * P * N + es * b * (2 * H * P + H + 2 * G * N) + 4 * 3 * H;
      break;
    }
    case SF_KB_CONV_UPDATE: {
      /* conv1d update, one token per sequence:
       *   flops = 2 b C W
       *   bytes = es (2 b C + 2 b C (W - 1) + C W + C)
       *           x read, out written; conv state read and written; weight, bias */
      const double C = (double)s->dim, W = s->width;
      k.flops = 2 * b * C * W;
      k.bytes = es * (2 * b * C + 2 * b * C * (W - 1) + C * W + C);
      break;
    }
    case SF_KB_GEMM: {
      /* c[m, n] = a[m, k] w[n, k]^T, m = b L:
       *   flops = 2 m n k
       *   bytes = es (m k + n k + m n) */
      const double m = b * L, n = (double)s->dim, kk = s->head_dim;
      k.flops = 2 * m * n * kk;
      k.bytes = es * (m * kk + n * kk + m * n);
      break;
    }
    case SF_KB_OP_COUNT: break;
  }
  return k;
}

double sf_kbench_predict_s(const sf_kbench_shape *prev, double prev_s, const sf_kbench_shape *next) {
  sf_kbench_counts a = sf_kbench_counts_of(prev), c = sf_kbench_counts_of(next);
  double r = 0;
  if (a.flops > 0) r = fmax(r, c.flops / a.flops);
  if (a.bytes > 0) r = fmax(r, c.bytes / a.bytes);
  if (a.exps > 0) r = fmax(r, c.exps / a.exps);
  return prev_s * (r > 0 ? r : 1.0);
}

void sf_kbench_check_shape(const sf_kbench_shape *s, sf_kbench_shape *o) {
  *o = *s;
  int64_t Lmax = 600;
  int32_t bmax = 2;
  switch (s->op) {
    case SF_KB_SCAN: Lmax = 2100; break; /* past one chunk of the chunked scan (2048) */
    case SF_KB_SSD: Lmax = 600; break;   /* 2 chunks of 256 and a partial one */
    case SF_KB_CONV:
    case SF_KB_ATTN: Lmax = 600; break;
    case SF_KB_ATTN_DECODE: Lmax = 5000; break;
    case SF_KB_STATE_UPDATE:
    case SF_KB_SSD_UPDATE:
    case SF_KB_CONV_UPDATE: Lmax = 1, bmax = 4; break;
    case SF_KB_GEMM: {
      const int64_t m = (int64_t)s->batch * s->seqlen;
      o->batch = 1;
      o->seqlen = m < 96 ? m : 96;
      return;
    }
    case SF_KB_OP_COUNT: break;
  }
  if (o->seqlen > Lmax) o->seqlen = Lmax;
  if (o->batch > bmax) o->batch = bmax;
}

/* ---- tensors --------------------------------------------------------------- */

static void T(kb_layout *l, const char *name, int64_t n, kb_elem e, kb_init init, float a, float b, kb_role role) {
  kb_tensor *t = &l->t[l->nt++];
  t->name = name, t->n = n, t->elem = e, t->init = init, t->a = a, t->b = b, t->role = role;
}

size_t kb_elem_size(kb_elem e, sf_dtype dt) {
  switch (e) {
    case KB_ACT: return sf_dtype_size(dt);
    case KB_F32:
    case KB_I32: return 4;
    case KB_I64: return 8;
  }
  return 0;
}

double kb_layout_bytes(const kb_layout *lay, sf_dtype dt) {
  double s = 0;
  for (int i = 0; i < lay->nt; i++) {
    const kb_tensor *t = &lay->t[i];
    const double by = (double)t->n * (double)kb_elem_size(t->elem, dt);
    if (t->role == KB_IN || t->role == KB_OUT) s += by;
    else if (t->role == KB_INOUT) s += 2 * by;
  }
  return s;
}

/* Tensor order per op (kb_bind relies on it). Value ranges follow the test
 * suite's: activations in [-2, 2], dt before softplus in [-2, 0], dt biases
 * in [-4, -1], decays negative. */
void kb_declare(const sf_kbench_shape *s, kb_layout *l) {
  memset(l, 0, sizeof *l);
  const int64_t b = s->batch, L = s->seqlen, bL = b * L, d = s->dim;
  switch (s->op) {
    case SF_KB_SCAN: {
      const int64_t N = s->d_state;
      T(l, "start", b, KB_I64, KB_SEQ_START, 0, 0, KB_META);
      T(l, "len", b, KB_I32, KB_CONST, (float)L, 0, KB_META);
      T(l, "u", bL * d, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "delta", bL * d, KB_ACT, KB_UNIFORM, -2, 0, KB_IN);
      T(l, "delta_bias", d, KB_F32, KB_UNIFORM, -4, -1, KB_IN);
      T(l, "A", d * N, KB_F32, KB_A_SCAN, 0, 0, KB_IN);
      T(l, "B", bL * N, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "C", bL * N, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "D", d, KB_F32, KB_UNIFORM, 0.5f, 1.5f, KB_IN);
      T(l, "z", bL * d, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "state", b * d * N, KB_F32, KB_NONE, 0, 0, KB_OUT);
      T(l, "out", bL * d, KB_ACT, KB_NONE, 0, 0, KB_OUT);
      break;
    }
    case SF_KB_SSD: {
      const int64_t H = s->heads, P = s->head_dim, GN = (int64_t)s->n_groups * s->d_state;
      T(l, "start", b, KB_I64, KB_SEQ_START, 0, 0, KB_META);
      T(l, "len", b, KB_I32, KB_CONST, (float)L, 0, KB_META);
      T(l, "x", bL * H * P, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "dt", bL * H, KB_ACT, KB_UNIFORM, -2, 0, KB_IN);
      T(l, "dt_bias", H, KB_F32, KB_UNIFORM, -4, -1, KB_IN);
      T(l, "A", H, KB_F32, KB_UNIFORM, -8, -0.5f, KB_IN);
      T(l, "B", bL * GN, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "C", bL * GN, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "D", H, KB_F32, KB_UNIFORM, 0.5f, 1.5f, KB_IN);
      T(l, "state", b * H * P * s->d_state, KB_F32, KB_NONE, 0, 0, KB_OUT);
      T(l, "out", bL * H * P, KB_ACT, KB_NONE, 0, 0, KB_OUT);
      break;
    }
    case SF_KB_CONV: {
      const int64_t W = s->width;
      T(l, "start", b, KB_I64, KB_SEQ_START, 0, 0, KB_META);
      T(l, "len", b, KB_I32, KB_CONST, (float)L, 0, KB_META);
      T(l, "x", bL * d, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "weight", d * W, KB_ACT, KB_UNIFORM, -0.5f, 0.5f, KB_IN);
      T(l, "bias", d, KB_ACT, KB_UNIFORM, -0.5f, 0.5f, KB_IN);
      T(l, "conv_state", b * d * (W - 1), KB_ACT, KB_NONE, 0, 0, KB_OUT);
      T(l, "out", bL * d, KB_ACT, KB_NONE, 0, 0, KB_OUT);
      break;
    }
    case SF_KB_ATTN: {
      const int64_t h = s->heads, kv = s->kv_heads, hd = s->head_dim;
      T(l, "start", b, KB_I64, KB_SEQ_START, 0, 0, KB_META);
      T(l, "len", b, KB_I32, KB_CONST, (float)L, 0, KB_META);
      T(l, "q", bL * h * hd, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "k", bL * kv * hd, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "v", bL * kv * hd, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "out", bL * h * hd, KB_ACT, KB_NONE, 0, 0, KB_OUT);
      break;
    }
    case SF_KB_ATTN_DECODE: {
      const int64_t h = s->heads, kv = s->kv_heads, hd = s->head_dim;
      T(l, "cache_len", b, KB_I32, KB_CONST, (float)L, 0, KB_META);
      T(l, "q", b * h * hd, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "k", bL * kv * hd, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "v", bL * kv * hd, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "out", b * h * hd, KB_ACT, KB_NONE, 0, 0, KB_OUT);
      break;
    }
    case SF_KB_STATE_UPDATE: {
      const int64_t N = s->d_state;
      T(l, "x", b * d, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "dt", b * d, KB_ACT, KB_UNIFORM, -2, 0, KB_IN);
      T(l, "dt_bias", d, KB_F32, KB_UNIFORM, -4, -1, KB_IN);
      T(l, "A", d * N, KB_F32, KB_A_SCAN, 0, 0, KB_IN);
      T(l, "B", b * N, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "C", b * N, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "D", d, KB_F32, KB_UNIFORM, 0.5f, 1.5f, KB_IN);
      T(l, "z", b * d, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "state", b * d * N, KB_F32, KB_UNIFORM, -1, 1, KB_INOUT);
      T(l, "out", b * d, KB_ACT, KB_NONE, 0, 0, KB_OUT);
      break;
    }
    case SF_KB_SSD_UPDATE: {
      const int64_t H = s->heads, P = s->head_dim, GN = (int64_t)s->n_groups * s->d_state;
      T(l, "x", b * H * P, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "dt", b * H, KB_ACT, KB_UNIFORM, -2, 0, KB_IN);
      T(l, "dt_bias", H, KB_F32, KB_UNIFORM, -4, -1, KB_IN);
      T(l, "A", H, KB_F32, KB_UNIFORM, -8, -0.5f, KB_IN);
      T(l, "B", b * GN, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "C", b * GN, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "D", H, KB_F32, KB_UNIFORM, 0.5f, 1.5f, KB_IN);
      T(l, "state", b * H * P * s->d_state, KB_F32, KB_UNIFORM, -1, 1, KB_INOUT);
      T(l, "out", b * H * P, KB_ACT, KB_NONE, 0, 0, KB_OUT);
      break;
    }
    case SF_KB_CONV_UPDATE: {
      const int64_t W = s->width;
      T(l, "x", b * d, KB_ACT, KB_UNIFORM, -2, 2, KB_IN);
      T(l, "weight", d * W, KB_ACT, KB_UNIFORM, -0.5f, 0.5f, KB_IN);
      T(l, "bias", d, KB_ACT, KB_UNIFORM, -0.5f, 0.5f, KB_IN);
      T(l, "conv_state", b * d * (W - 1), KB_ACT, KB_UNIFORM, -2, 2, KB_INOUT);
      T(l, "out", b * d, KB_ACT, KB_NONE, 0, 0, KB_OUT);
      break;
    }
    case SF_KB_GEMM: {
      const int64_t m = bL, k = s->head_dim;
      T(l, "a", m * k, KB_ACT, KB_UNIFORM, -1, 1, KB_IN);
      T(l, "w", d * k, KB_ACT, KB_UNIFORM, -0.05f, 0.05f, KB_IN);
      T(l, "c", m * d, KB_ACT, KB_NONE, 0, 0, KB_OUT);
      break;
    }
    case SF_KB_OP_COUNT: break;
  }
}

void kb_bind(const sf_kbench_shape *s, sf_dtype dt, void *const *P, kb_params *p) {
  memset(p, 0, sizeof *p);
  const int64_t L = s->seqlen, d = s->dim;
  switch (s->op) {
    case SF_KB_SCAN: {
      sf_selective_scan_params *q = &p->scan;
      q->dtype = dt, q->dim = d, q->d_state = s->d_state, q->chunk_size = 0;
      q->seqs = (sf_seqs){s->batch, L, P[0], P[1]};
      q->u = P[2], q->u_token_stride = d;
      q->delta = P[3], q->delta_token_stride = d;
      q->delta_bias = P[4], q->delta_softplus = 1;
      q->A = P[5];
      q->B = P[6], q->B_token_stride = s->d_state;
      q->C = P[7], q->C_token_stride = s->d_state;
      q->D = P[8];
      q->z = P[9], q->z_token_stride = d;
      q->state = P[10], q->state_batch_stride = d * s->d_state, q->has_initial_state = 0;
      q->out = P[11], q->out_token_stride = d;
      break;
    }
    case SF_KB_SSD: {
      sf_ssd_params *q = &p->ssd;
      const int64_t W = (int64_t)s->heads * s->head_dim, GN = (int64_t)s->n_groups * s->d_state;
      q->dtype = dt, q->n_heads = s->heads, q->head_dim = s->head_dim, q->n_groups = s->n_groups;
      q->d_state = s->d_state, q->chunk_size = s->chunk;
      q->seqs = (sf_seqs){s->batch, L, P[0], P[1]};
      q->x = P[2], q->x_token_stride = W;
      q->dt = P[3], q->dt_token_stride = s->heads;
      q->dt_bias = P[4], q->dt_softplus = 1, q->dt_min = 0.0f, q->dt_max = INFINITY;
      q->A = P[5];
      q->B = P[6], q->B_token_stride = GN;
      q->C = P[7], q->C_token_stride = GN;
      q->D = P[8];
      q->z = NULL, q->z_token_stride = W; /* Mamba-2 gates in the norm, not the scan */
      q->state = P[9], q->state_batch_stride = W * s->d_state, q->has_initial_state = 0;
      q->out = P[10], q->out_token_stride = W;
      break;
    }
    case SF_KB_CONV: {
      sf_conv1d_params *q = &p->conv;
      q->dtype = dt, q->dim = d, q->width = s->width, q->silu = 1;
      q->seqs = (sf_seqs){s->batch, L, P[0], P[1]};
      q->x = P[2], q->x_token_stride = d;
      q->weight = P[3], q->bias = P[4];
      q->conv_state = P[5], q->state_batch_stride = d * (s->width - 1), q->has_initial_state = 0;
      q->out = P[6], q->out_token_stride = d;
      break;
    }
    case SF_KB_ATTN: {
      sf_attention_params *q = &p->att;
      const int64_t h = s->heads, kv = s->kv_heads, hd = s->head_dim;
      q->dtype = dt, q->n_heads = s->heads, q->n_kv_heads = s->kv_heads, q->head_dim = s->head_dim;
      q->scale = 1.0f / sqrtf((float)hd), q->causal = s->causal;
      q->seqs = (sf_seqs){s->batch, L, P[0], P[1]};
      q->past_len = NULL;
      q->q = P[2], q->q_token_stride = h * hd, q->q_head_stride = hd;
      q->cache = (sf_kv_cache_view){P[3], P[4], L * kv * hd, kv * hd, hd, L};
      q->out = P[5], q->out_token_stride = h * hd, q->out_head_stride = hd;
      q->lse = NULL, q->lse_token_stride = h;
      break;
    }
    case SF_KB_ATTN_DECODE: {
      sf_attention_decode_params *q = &p->dec;
      const int64_t h = s->heads, kv = s->kv_heads, hd = s->head_dim;
      q->dtype = dt, q->batch = s->batch, q->n_heads = s->heads, q->n_kv_heads = s->kv_heads;
      q->head_dim = s->head_dim, q->scale = 1.0f / sqrtf((float)hd);
      q->cache_len = P[0];
      q->q = P[1], q->q_batch_stride = h * hd, q->q_head_stride = hd;
      q->cache = (sf_kv_cache_view){P[2], P[3], L * kv * hd, kv * hd, hd, L};
      q->num_splits = 0;
      q->out = P[4], q->out_batch_stride = h * hd, q->out_head_stride = hd;
      q->lse = NULL, q->lse_batch_stride = h;
      break;
    }
    case SF_KB_STATE_UPDATE: {
      sf_selective_state_update_params *q = &p->su;
      const int64_t N = s->d_state;
      q->dtype = dt, q->batch = s->batch, q->dim = d, q->d_state = s->d_state;
      q->x = P[0], q->x_batch_stride = d;
      q->dt = P[1], q->dt_batch_stride = d, q->dt_bias = P[2], q->dt_softplus = 1;
      q->A = P[3];
      q->B = P[4], q->B_batch_stride = N;
      q->C = P[5], q->C_batch_stride = N;
      q->D = P[6];
      q->z = P[7], q->z_batch_stride = d;
      q->state = P[8], q->state_batch_stride = d * N;
      q->out = P[9], q->out_batch_stride = d;
      break;
    }
    case SF_KB_SSD_UPDATE: {
      sf_ssd_update_params *q = &p->ssu;
      const int64_t W = (int64_t)s->heads * s->head_dim, GN = (int64_t)s->n_groups * s->d_state;
      q->dtype = dt, q->batch = s->batch, q->n_heads = s->heads, q->head_dim = s->head_dim;
      q->n_groups = s->n_groups, q->d_state = s->d_state;
      q->x = P[0], q->x_batch_stride = W;
      q->dt = P[1], q->dt_batch_stride = s->heads, q->dt_bias = P[2], q->dt_softplus = 1;
      q->dt_min = 0.0f, q->dt_max = INFINITY;
      q->A = P[3];
      q->B = P[4], q->B_batch_stride = GN;
      q->C = P[5], q->C_batch_stride = GN;
      q->D = P[6];
      q->z = NULL, q->z_batch_stride = W;
      q->state = P[7], q->state_batch_stride = W * s->d_state;
      q->out = P[8], q->out_batch_stride = W;
      break;
    }
    case SF_KB_CONV_UPDATE: {
      sf_conv1d_update_params *q = &p->cu;
      q->dtype = dt, q->batch = s->batch, q->dim = d, q->width = s->width, q->silu = 1;
      q->x = P[0], q->x_batch_stride = d;
      q->weight = P[1], q->bias = P[2];
      q->conv_state = P[3], q->state_batch_stride = d * (s->width - 1);
      q->out = P[4], q->out_batch_stride = d;
      break;
    }
    case SF_KB_GEMM: {
      sf_gemm_params *q = &p->gemm;
      const int64_t k = s->head_dim;
      q->dtype = dt, q->out_dtype = dt, q->m = (int64_t)s->batch * L, q->n = d, q->k = k;
      q->a = P[0], q->lda = k;
      q->w = P[1], q->ldw = k;
      q->bias = NULL;
      q->c = P[2], q->ldc = d;
      q->accumulate = 0;
      break;
    }
    case SF_KB_OP_COUNT: break;
  }
}

sf_status kb_call(const sf_ops *o, sf_op_ctx *c, const sf_kbench_shape *s, const kb_params *p, sf_error *err) {
  switch (s->op) {
    case SF_KB_SCAN:
      return s->impl ? o->selective_scan_naive(c, &p->scan, err) : o->selective_scan(c, &p->scan, err);
    case SF_KB_SSD: return s->impl ? o->ssd_naive(c, &p->ssd, err) : o->ssd(c, &p->ssd, err);
    case SF_KB_CONV: return o->conv1d(c, &p->conv, err);
    case SF_KB_ATTN: return s->impl ? o->attention_naive(c, &p->att, err) : o->attention(c, &p->att, err);
    case SF_KB_ATTN_DECODE: return o->attention_decode(c, &p->dec, err);
    case SF_KB_STATE_UPDATE: return o->selective_state_update(c, &p->su, err);
    case SF_KB_SSD_UPDATE: return o->ssd_update(c, &p->ssu, err);
    case SF_KB_CONV_UPDATE: return o->conv1d_update(c, &p->cu, err);
    case SF_KB_GEMM: return o->gemm(c, &p->gemm, err);
    case SF_KB_OP_COUNT: break;
  }
  return sf_fail(err, SF_ERR_INTERNAL, "kbench: no op %d", (int)s->op);
}

double kb_quantile(const double *x, int n, double q) {
  if (n <= 0) return NAN;
  if (n == 1) return x[0];
  const double pos = q * (n - 1);
  const int i = (int)floor(pos);
  if (i >= n - 1) return x[n - 1];
  const double f = pos - i;
  return x[i] + f * (x[i + 1] - x[i]);
}

/* ---- rows ------------------------------------------------------------------ */

/* The cuda backend's name for the kernel its attention op runs ("wgmma",
 * "mma_sync", "fp32"; kernels/cuda/attention.cu). Weak: where that backend
 * is not linked (the unit tests, cpu-only builds) it is NULL and the row
 * keeps the implementation's name, "tiled". */
extern const char *sf_cuda_attention_path(int dtype, int head_dim) __attribute__((weak));

void sf_kbench_row_init(const sf_kbench_shape *s, sf_kernel_result *r) {
  memset(r, 0, sizeof *r);
  const sf_kbench_opinfo *oi = &op_table[s->op];
  snprintf(r->op, sizeof r->op, "%s", sf_kbench_row_op(s));
  const char *impl = oi->impls[s->impl];
  if (s->op == SF_KB_ATTN && s->impl == 0 && sf_cuda_attention_path)
    impl = sf_cuda_attention_path((int)s->dtype, (int)s->head_dim);
  snprintf(r->impl, sizeof r->impl, "%s", impl);
  snprintf(r->dtype, sizeof r->dtype, "%s", sf_dtype_name(s->dtype));
  r->batch = s->batch;
  r->heads = s->heads;
  r->head_dim = s->head_dim;
  r->d_state = s->d_state;
  r->seqlen = s->seqlen;
  r->dim = s->dim;
  r->median_s = r->p10_s = r->p90_s = NAN;
  r->tflops = r->gbps = r->pct_flops_roof = r->pct_bw_roof = NAN;
  r->n_wrong = 0;
  r->max_rel_err = NAN;
}

void sf_kbench_opts_default(sf_kbench_opts *o) {
  memset(o, 0, sizeof *o);
  o->repeats = 10;
  o->warmup = 3;
  o->row_budget_s = 5.0;
  o->check = 1;
  o->flush_l2 = 1;
  o->seed = 0;
}

/* ---- parsing --------------------------------------------------------------- */

int sf_kbench_find_table_op(const char *name, sf_kbench_op *op, unsigned *mask) {
  for (int o = 0; o < SF_KB_OP_COUNT; o++)
    for (int i = 0; i < op_table[o].n_impls; i++)
      if (!strcmp(name, op_table[o].table_names[i])) {
        *op = (sf_kbench_op)o, *mask = 1u << i;
        return 1;
      }
  return 0;
}

sf_status sf_kbench_find_op(const char *name, sf_kbench_op *op, unsigned *mask, sf_error *err) {
  char buf[64];
  if (!name || !*name) return sf_fail(err, SF_ERR_ARG, "empty op name");
  if (strlen(name) >= sizeof buf) return sf_fail(err, SF_ERR_ARG, "unknown op '%.40s...'", name);
  snprintf(buf, sizeof buf, "%s", name);
  char *colon = strchr(buf, ':');
  const char *impl = NULL;
  if (colon) *colon = '\0', impl = colon + 1;
  for (int o = 0; o < SF_KB_OP_COUNT; o++) {
    const sf_kbench_opinfo *oi = &op_table[o];
    if (strcmp(buf, oi->alias) && strcmp(buf, oi->name)) continue;
    *op = (sf_kbench_op)o;
    if (!impl) {
      *mask = (1u << oi->n_impls) - 1;
      return SF_OK;
    }
    for (int i = 0; i < oi->n_impls; i++)
      if (!strcmp(impl, oi->impls[i])) {
        *mask = 1u << i;
        return SF_OK;
      }
    char list[96] = "";
    for (int i = 0; i < oi->n_impls; i++)
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", oi->impls[i]);
    return sf_fail(err, SF_ERR_ARG, "op %s has no implementation '%s' (%s)", oi->alias, impl, list);
  }
  if (!impl && sf_kbench_find_table_op(buf, op, mask)) return SF_OK;
  char list[256] = "";
  for (int o = 0; o < SF_KB_OP_COUNT; o++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", o ? ", " : "", op_table[o].alias);
  return sf_fail(err, SF_ERR_ARG, "unknown op '%s' (%s, or an op table name such as selective_scan_naive)", name,
                 list);
}

sf_status sf_kbench_parse_ops(const char *list, sf_kbench_sel *out, int max, int *n, sf_error *err) {
  *n = 0;
  if (!list || !*list) return sf_fail(err, SF_ERR_ARG, "--op: empty list");
  char *copy = strdup(list);
  if (!copy) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  sf_status rc = SF_OK;
  char *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok && rc == SF_OK; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    if (!strcmp(tok, "all")) {
      for (int o = 0; o < SF_KB_OP_COUNT && rc == SF_OK; o++) {
        int j = 0;
        while (j < *n && out[j].op != (sf_kbench_op)o) j++;
        if (j == *n) {
          if (*n >= max) rc = sf_fail(err, SF_ERR_ARG, "--op: too many ops");
          else out[(*n)++] = (sf_kbench_sel){(sf_kbench_op)o, 0};
        }
        if (rc == SF_OK) out[j].impl_mask = (1u << op_table[o].n_impls) - 1;
      }
      continue;
    }
    sf_kbench_op op;
    unsigned mask;
    rc = sf_kbench_find_op(tok, &op, &mask, err);
    if (rc != SF_OK) break;
    int j = 0;
    while (j < *n && out[j].op != op) j++;
    if (j == *n) {
      if (*n >= max) {
        rc = sf_fail(err, SF_ERR_ARG, "--op: too many ops");
        break;
      }
      out[(*n)++] = (sf_kbench_sel){op, 0};
    }
    out[j].impl_mask |= mask;
  }
  free(copy);
  if (rc == SF_OK && *n == 0) rc = sf_fail(err, SF_ERR_ARG, "--op: empty list");
  return rc;
}

static sf_status push(int64_t v, const char *what, int64_t *out, int max, int *n, sf_error *err) {
  if (*n >= max) return sf_fail(err, SF_ERR_ARG, "%s: more than %d values", what, max);
  out[(*n)++] = v;
  return SF_OK;
}

sf_status sf_kbench_parse_counts(const char *list, const char *what, int64_t *out, int max, int *n,
                                 sf_error *err) {
  *n = 0;
  if (!list || !*list) return sf_fail(err, SF_ERR_ARG, "%s: empty list", what);
  char *copy = strdup(list);
  if (!copy) return sf_fail(err, SF_ERR_NOMEM, "out of memory");
  sf_status rc = SF_OK;
  char *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok && rc == SF_OK; tok = strtok_r(NULL, ",", &save)) {
    char *c1 = strchr(tok, ':');
    if (!c1) {
      int64_t v;
      rc = sf_parse_count(tok, what, &v, err);
      if (rc == SF_OK && v <= 0) rc = sf_fail(err, SF_ERR_ARG, "%s: '%s' must be > 0", what, tok);
      if (rc == SF_OK) rc = push(v, what, out, max, n, err);
      continue;
    }
    char *c2 = strchr(c1 + 1, ':');
    if (!c2) {
      rc = sf_fail(err, SF_ERR_ARG, "%s: range '%s' needs FROM:TO:xFACTOR or FROM:TO:+STEP", what, tok);
      break;
    }
    *c1 = '\0', *c2 = '\0';
    const char *step = c2 + 1;
    int64_t lo, hi, st;
    if ((rc = sf_parse_count(tok, what, &lo, err)) != SF_OK) break;
    if ((rc = sf_parse_count(c1 + 1, what, &hi, err)) != SF_OK) break;
    if (lo <= 0 || hi < lo) {
      rc = sf_fail(err, SF_ERR_ARG, "%s: range %s:%s needs 0 < FROM <= TO", what, tok, c1 + 1);
      break;
    }
    if (step[0] != 'x' && step[0] != '+') {
      rc = sf_fail(err, SF_ERR_ARG, "%s: range step '%s' must be xFACTOR or +STEP", what, step);
      break;
    }
    if ((rc = sf_parse_count(step + 1, what, &st, err)) != SF_OK) break;
    if (step[0] == 'x' ? st < 2 : st < 1) {
      rc = sf_fail(err, SF_ERR_ARG, "%s: range step '%s' must be x2 or more, or +1 or more", what, step);
      break;
    }
    for (int64_t v = lo; v <= hi && rc == SF_OK;) {
      rc = push(v, what, out, max, n, err);
      if (step[0] == 'x') {
        if (v > hi / st) break;
        v *= st;
      } else {
        if (v > hi - st) break;
        v += st;
      }
    }
  }
  free(copy);
  if (rc == SF_OK && *n == 0) rc = sf_fail(err, SF_ERR_ARG, "%s: empty list", what);
  return rc;
}

sf_status sf_kbench_parse_dtype(const char *s, sf_dtype *out, sf_error *err) {
  if (!strcmp(s, "bf16") || !strcmp(s, "bfloat16")) *out = SF_BF16;
  else if (!strcmp(s, "f16") || !strcmp(s, "fp16") || !strcmp(s, "float16")) *out = SF_F16;
  else if (!strcmp(s, "f32") || !strcmp(s, "fp32") || !strcmp(s, "float32")) *out = SF_F32;
  else return sf_fail(err, SF_ERR_ARG, "--dtype: unknown type '%s' (bf16, f16, f32)", s);
  return SF_OK;
}
