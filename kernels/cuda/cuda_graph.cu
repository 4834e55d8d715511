/* CUDA graphs over the context's stream: the engine captures one decode step
 * (every layer, the head and the token choice: hundreds of launches) and
 * replays it, so a batch-1 step costs one launch instead of hundreds.
 * Capture is thread-local: other threads' CUDA calls are unaffected. */
#include "cuda_common.cuh"

extern "C" sf_status sf_cuda_graph_begin(sf_op_ctx *ctx, sf_error *err) {
  SF_CUDA_TRY(cudaStreamBeginCapture(sf_cuda_stream(ctx), cudaStreamCaptureModeThreadLocal));
  return SF_OK;
}

extern "C" sf_status sf_cuda_graph_end(sf_op_ctx *ctx, void **graph, sf_error *err) {
  *graph = NULL;
  cudaGraph_t g = NULL;
  /* Ends the capture even when an op failed inside it (the stream must leave
   * capture mode either way); the first error wins. */
  SF_CUDA_TRY(cudaStreamEndCapture(sf_cuda_stream(ctx), &g));
  cudaGraphExec_t exec = NULL;
  cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
  (void)cudaGraphDestroy(g);
  if (e != cudaSuccess) return sf_cuda_fail(err, e, __FILE__, __LINE__, "cudaGraphInstantiate(...)");
  *graph = exec;
  return SF_OK;
}

extern "C" sf_status sf_cuda_graph_launch(sf_op_ctx *ctx, void *graph, sf_error *err) {
  SF_CUDA_TRY(cudaGraphLaunch((cudaGraphExec_t)graph, sf_cuda_stream(ctx)));
  return SF_OK;
}

extern "C" void sf_cuda_graph_free(sf_op_ctx *ctx, void *graph) {
  (void)ctx;
  if (graph) (void)cudaGraphExecDestroy((cudaGraphExec_t)graph);
  (void)cudaGetLastError();
}
