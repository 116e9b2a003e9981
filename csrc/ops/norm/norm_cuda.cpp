// SPDX-License-Identifier: Apache-2.0
// CUDA ops of the norm family, torch-facing glue (host compiler): checks, tensors ->
// pointers and row layouts, dtype -> DType, stream and arch guard, registration. The
// launches are in the torch-free norm_cuda.cu (norm_launch.h).

#include <torch/csrc/stable/library.h>

#include "core/cuda_utils.h"
#include "ops/norm/norm.h"
#include "ops/norm/norm_launch.h"

namespace stablekernels::norm {
namespace {

void rms_norm_cuda(const Tensor& result, const Tensor& input, const Tensor& weight,
                   double epsilon) {
  constexpr const char* op = "rms_norm";
  const NormProblem p = check_rms_norm(result, input, weight, epsilon);
  check_cuda_row_length(op, p.hidden);
  if (p.rows == 0 || p.hidden == 0) {
    return;
  }
  CudaLaunchContext ctx(input, op);
  const RowIndexer orows = row_indexer(op, {result, "result"});
  const RowIndexer irows = row_indexer(op, {input, "input"});
  const DType dtype = float_dtype(input.scalar_type(), op, "input");
  const int sms = sm_count(input.get_device_index(), op);
  const double mem_per_sm = memory_gbps_per_sm(input.get_device_index(), op);
  check_launch(launch_rms_norm(dtype, ctx.stream, result.data_ptr(), orows, input.data_ptr(), irows,
                               weight.data_ptr(), p.rows, p.hidden, static_cast<float>(epsilon),
                               sms, mem_per_sm),
               op);
}

void fused_add_rms_norm_cuda(const Tensor& input, const Tensor& residual, const Tensor& weight,
                             double epsilon) {
  constexpr const char* op = "fused_add_rms_norm";
  const NormProblem p = check_fused_add_rms_norm(input, residual, weight, epsilon);
  check_cuda_row_length(op, p.hidden);
  if (p.rows == 0 || p.hidden == 0) {
    return;
  }
  CudaLaunchContext ctx(input, op);
  const RowIndexer irows = row_indexer(op, {input, "input"});
  const RowIndexer rrows = row_indexer(op, {residual, "residual"});
  const DType dtype = float_dtype(input.scalar_type(), op, "input");
  check_launch(launch_fused_add_rms_norm(dtype, ctx.stream, input.data_ptr(), irows,
                                         residual.data_ptr(), rrows, weight.data_ptr(), p.rows,
                                         p.hidden, static_cast<float>(epsilon)),
               op);
}

}  // namespace
}  // namespace stablekernels::norm

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("rms_norm", TORCH_BOX(&stablekernels::norm::rms_norm_cuda));
  m.impl("fused_add_rms_norm", TORCH_BOX(&stablekernels::norm::fused_add_rms_norm_cuda));
}
