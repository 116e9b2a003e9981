// SPDX-License-Identifier: Apache-2.0
// CUDA implementations of the activation family: checks, launch policy, registration.

#include <torch/csrc/stable/library.h>

#include <algorithm>

#include "core/cuda_utils.h"
#include "core/dispatch.h"
#include "ops/activation/activation.h"
#include "ops/activation/activation_kernels.cuh"
#include "ops/activation/activation_math.h"

namespace stablekernels::activation {
namespace {

// Launch policy, as data. Measured on an H200 (bf16, 16384 x 2*8192): 128 threads
// x 2 vectors per thread moved 93% of copy bandwidth for silu_and_mul, against
// 82-89% for 256 threads or 1 or 4 vectors.
struct ActPolicy {
  int threads = 128;
  int unroll = 2;  // vectors per thread per chunk: 1, 2 or 4
  int64_t max_blocks_x = (int64_t{1} << 31) - 1;
  int64_t max_blocks_y = 65535;
};
constexpr ActPolicy kActPolicy{};

template <typename Act, typename CT, int VEC, int UNROLL>
void launch_unrolled(cudaStream_t s, int threads, CT* out, const RowIndexer& orows, const CT* in,
                     const RowIndexer& irows, int64_t rows, int64_t d) {
  const int64_t nvec = d / VEC;
  const int64_t chunk = static_cast<int64_t>(threads) * UNROLL;
  const dim3 grid(
      static_cast<unsigned>(std::min(rows, kActPolicy.max_blocks_x)),
      static_cast<unsigned>(std::min((nvec + chunk - 1) / chunk, kActPolicy.max_blocks_y)));
  cuda::act_and_mul_kernel<Act, CT, VEC, UNROLL>
      <<<grid, threads, 0, s>>>(out, orows, in, irows, rows, d);
}

template <typename Act, typename CT, int VEC>
void launch(cudaStream_t s, CT* out, const RowIndexer& orows, const CT* in, const RowIndexer& irows,
            int64_t rows, int64_t d) {
  const int64_t nvec = d / VEC;
  const int threads = static_cast<int>(
      std::min<int64_t>(kActPolicy.threads, std::max<int64_t>(32, (nvec + 31) / 32 * 32)));
  switch (kActPolicy.unroll) {
    case 1: launch_unrolled<Act, CT, VEC, 1>(s, threads, out, orows, in, irows, rows, d); return;
    case 4: launch_unrolled<Act, CT, VEC, 4>(s, threads, out, orows, in, irows, rows, d); return;
    default: launch_unrolled<Act, CT, VEC, 2>(s, threads, out, orows, in, irows, rows, d); return;
  }
}

template <typename Act>
void act_and_mul_cuda(const char* op, const Tensor& result, const Tensor& input) {
  const ActProblem p = check_act_and_mul(op, result, input);
  if (p.rows == 0 || p.d == 0) {
    return;
  }
  CudaLaunchContext ctx(input, op);
  const RowIndexer orows = row_indexer(op, {result, "result"});
  const RowIndexer irows = row_indexer(op, {input, "input"});
  dispatch_float_types(input.scalar_type(), op, "input", [&](auto tag) {
    using CT = cuda_type_t<decltype(tag)>;
    constexpr int kVec = stablekernels::cuda::kVec16<CT>;
    CT* out = cuda_ptr<CT>(result);
    const CT* in = cuda_ptr<CT>(input);
    if (can_use_vec16<CT>(p.d, {out, in}, {&orows, &irows})) {
      launch<Act, CT, kVec>(ctx.stream, out, orows, in, irows, p.rows, p.d);
    } else {
      launch<Act, CT, 1>(ctx.stream, out, orows, in, irows, p.rows, p.d);
    }
  });
  STABLEKERNELS_KERNEL_LAUNCH_CHECK(op);
}

void silu_and_mul_cuda(const Tensor& result, const Tensor& input) {
  act_and_mul_cuda<Silu>("silu_and_mul", result, input);
}
void gelu_and_mul_cuda(const Tensor& result, const Tensor& input) {
  act_and_mul_cuda<Gelu>("gelu_and_mul", result, input);
}
void gelu_tanh_and_mul_cuda(const Tensor& result, const Tensor& input) {
  act_and_mul_cuda<GeluTanh>("gelu_tanh_and_mul", result, input);
}

}  // namespace
}  // namespace stablekernels::activation

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("silu_and_mul", TORCH_BOX(&stablekernels::activation::silu_and_mul_cuda));
  m.impl("gelu_and_mul", TORCH_BOX(&stablekernels::activation::gelu_and_mul_cuda));
  m.impl("gelu_tanh_and_mul", TORCH_BOX(&stablekernels::activation::gelu_tanh_and_mul_cuda));
}
