// SPDX-License-Identifier: Apache-2.0
// CUDA ops of the activation family, torch-facing glue (host compiler): checks, tensors
// -> pointers and row layouts, dtype -> DType, stream and arch guard, registration. The
// launches are in the torch-free activation_cuda.cu (activation_launch.h).

#include <torch/csrc/stable/library.h>

#include "core/cuda_utils.h"
#include "ops/activation/activation.h"
#include "ops/activation/activation_launch.h"

namespace stablekernels::activation {
namespace {

void act_and_mul_cuda(ActKind act, const char* op, const Tensor& result, const Tensor& input) {
  const ActProblem p = check_act_and_mul(op, result, input);
  if (p.rows == 0 || p.d == 0) {
    return;
  }
  CudaLaunchContext ctx(input, op);
  const RowIndexer orows = row_indexer(op, {result, "result"});
  const RowIndexer irows = row_indexer(op, {input, "input"});
  const DType dtype = float_dtype(input.scalar_type(), op, "input");
  check_launch(launch_act_and_mul(act, dtype, ctx.stream, result.data_ptr(), orows,
                                  input.data_ptr(), irows, p.rows, p.d),
               op);
}

void silu_and_mul_cuda(const Tensor& result, const Tensor& input) {
  act_and_mul_cuda(ActKind::kSilu, "silu_and_mul", result, input);
}
void gelu_and_mul_cuda(const Tensor& result, const Tensor& input) {
  act_and_mul_cuda(ActKind::kGelu, "gelu_and_mul", result, input);
}
void gelu_tanh_and_mul_cuda(const Tensor& result, const Tensor& input) {
  act_and_mul_cuda(ActKind::kGeluTanh, "gelu_tanh_and_mul", result, input);
}

}  // namespace
}  // namespace stablekernels::activation

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("silu_and_mul", TORCH_BOX(&stablekernels::activation::silu_and_mul_cuda));
  m.impl("gelu_and_mul", TORCH_BOX(&stablekernels::activation::gelu_and_mul_cuda));
  m.impl("gelu_tanh_and_mul", TORCH_BOX(&stablekernels::activation::gelu_tanh_and_mul_cuda));
}
