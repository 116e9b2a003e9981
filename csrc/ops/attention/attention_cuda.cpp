// SPDX-License-Identifier: Apache-2.0
// CUDA op of the attention family, torch-facing glue (host compiler): checks, tensors
// -> pointers, dtype -> DType, stream and arch guard, registration. The launch is in
// the torch-free attention_cuda.cu (attention_launch.h).

#include <torch/csrc/stable/library.h>

#include <optional>

#include "core/cuda_utils.h"
#include "ops/attention/attention.h"
#include "ops/attention/attention_launch.h"

namespace stablekernels::attention {
namespace {

void merge_attn_states_cuda(const Tensor& output, const std::optional<Tensor>& output_lse,
                            const Tensor& prefix_output, const Tensor& prefix_lse,
                            const Tensor& suffix_output, const Tensor& suffix_lse) {
  constexpr const char* op = "merge_attn_states";
  const MergeShape s = check_merge_attn_states(output, output_lse, prefix_output, prefix_lse,
                                               suffix_output, suffix_lse);
  if (s.num_tokens * s.num_heads == 0) {
    return;
  }
  CudaLaunchContext ctx(prefix_output, op);
  float* out_lse = output_lse.has_value() ? data_ptr<float>(*output_lse) : nullptr;
  const DType dtype = float_dtype(prefix_output.scalar_type(), op, "prefix_output");
  check_launch(launch_merge_attn_states(dtype, ctx.stream, s, output.data_ptr(), out_lse,
                                        prefix_output.data_ptr(), data_ptr<float>(prefix_lse),
                                        suffix_output.data_ptr(), data_ptr<float>(suffix_lse)),
               op);
}

}  // namespace
}  // namespace stablekernels::attention

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("merge_attn_states", TORCH_BOX(&stablekernels::attention::merge_attn_states_cuda));
}
