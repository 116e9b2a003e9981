// SPDX-License-Identifier: Apache-2.0
// CUDA ops of the sampling family, torch-facing glue (host compiler): checks, tensors ->
// pointers, dtype -> DType, SM count, stream and arch guard, registration. The launches are
// in the torch-free sampling_cuda.cu (sampling_launch.h).

#include <torch/csrc/stable/library.h>

#include <cstdint>

#include "core/cuda_utils.h"
#include "ops/sampling/sampling.h"
#include "ops/sampling/sampling_launch.h"

namespace stablekernels::sampling {
namespace {

void apply_repetition_penalties_cuda(const Tensor& logits, const Tensor& prompt_mask,
                                     const Tensor& output_mask,
                                     const Tensor& repetition_penalties) {
  constexpr const char* op = "apply_repetition_penalties_";
  const PenaltyProblem p =
      check_apply_repetition_penalties(logits, prompt_mask, output_mask, repetition_penalties);
  if (p.rows == 0 || p.vocab == 0) {
    return;
  }
  CudaLaunchContext ctx(logits, op);
  const int sms = sm_count(logits.get_device_index(), op);
  const auto* prompt = data_ptr<const uint8_t>(prompt_mask);
  const auto* output = data_ptr<const uint8_t>(output_mask);
  const DType dtype = float_dtype(logits.scalar_type(), op, "logits");
  check_launch(launch_apply_repetition_penalties(dtype, ctx.stream, p, sms, logits.data_ptr(),
                                                 prompt, output, repetition_penalties.data_ptr()),
               op);
}

void top_k_per_row_cuda(const Tensor& logits, const Tensor& row_starts, const Tensor& row_ends,
                        const Tensor& indices, int64_t k) {
  constexpr const char* op = "top_k_per_row";
  const TopKProblem p = check_top_k_per_row(logits, row_starts, row_ends, indices, k);
  if (p.rows == 0) {
    return;
  }
  CudaLaunchContext ctx(logits, op);
  const int sms = sm_count(logits.get_device_index(), op);
  check_launch(launch_top_k_per_row(ctx.stream, p, sms, data_ptr<const float>(logits),
                                    data_ptr<const int32_t>(row_starts),
                                    data_ptr<const int32_t>(row_ends), data_ptr<int32_t>(indices)),
               op);
}

}  // namespace
}  // namespace stablekernels::sampling

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("apply_repetition_penalties_",
         TORCH_BOX(&stablekernels::sampling::apply_repetition_penalties_cuda));
  m.impl("top_k_per_row", TORCH_BOX(&stablekernels::sampling::top_k_per_row_cuda));
}
