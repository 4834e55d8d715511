/* The cuda backend's op table (the context and memory functions live in
 * cuda_ctx.cu, one op per .cu file). */
#include "cuda_ops.h"

const sf_ops sf_ops_cuda = {
    .name = "cuda",
    .act_dtype = SF_BF16,
    .alloc = sf_cuda_alloc,
    .free = sf_cuda_free,
    .upload = sf_cuda_upload,
    .download = sf_cuda_download,
    .zero = sf_cuda_zero,
    .sync = sf_cuda_sync,
    .embedding = sf_cuda_embedding,
    .norm = sf_cuda_norm,
    .gemm = sf_cuda_gemm,
    .rotary = sf_cuda_rotary,
    .activation = sf_cuda_activation,
    .sample = sf_cuda_sample,
    .kv_append = sf_cuda_kv_append,
    .attention = sf_cuda_attention,
    .attention_naive = sf_cuda_attention_naive,
    .attention_decode = sf_cuda_attention_decode,
    .conv1d = sf_cuda_conv1d,
    .conv1d_update = sf_cuda_conv1d_update,
    .selective_scan = sf_cuda_selective_scan,
    .selective_scan_naive = sf_cuda_selective_scan_naive,
    .selective_state_update = sf_cuda_selective_state_update,
    .ssd = sf_cuda_ssd,
    .ssd_naive = sf_cuda_ssd_naive,
    .ssd_update = sf_cuda_ssd_update,
};
