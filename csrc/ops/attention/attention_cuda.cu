// SPDX-License-Identifier: Apache-2.0
// CUDA implementation of the attention family: checks, access width, launch, registration.

#include <torch/csrc/stable/library.h>

#include <optional>

#include "core/cuda_utils.h"
#include "core/dispatch.h"
#include "ops/attention/attention.h"
#include "ops/attention/attention_kernels.cuh"
#include "ops/attention/attention_tuning.h"
#include "stablekernels/launch.h"

namespace stablekernels::attention {
namespace {

template <typename T, int N>
void launch(cudaStream_t stream, const MergeShape& s, T* out, float* out_lse, const T* prefix,
            const float* prefix_lse, const T* suffix, const float* suffix_lse) {
  const MergeLaunch l = plan_merge(s.num_heads * s.num_tokens, s.head_size / N);
  const dim3 block(static_cast<unsigned>(l.tile.threads_x),
                   static_cast<unsigned>(l.tile.threads_y));
  cuda::merge_attn_states_kernel<T, N, kMergePolicy.rows_per_thread>
      <<<static_cast<unsigned>(l.blocks), block, 0, stream>>>(out, out_lse, prefix, prefix_lse,
                                                              suffix, suffix_lse, s);
}

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
  float* out_lse = output_lse.has_value() ? cuda_ptr<float>(*output_lse) : nullptr;
  const float* p_lse = cuda_ptr<float>(prefix_lse);
  const float* s_lse = cuda_ptr<float>(suffix_lse);
  dispatch_float_types(prefix_output.scalar_type(), op, "prefix_output", [&](auto tag) {
    using CT = cuda_type_t<decltype(tag)>;
    CT* out = cuda_ptr<CT>(output);
    const CT* pre = cuda_ptr<CT>(prefix_output);
    const CT* suf = cuda_ptr<CT>(suffix_output);
    const int64_t n = access_elems(
        sizeof(CT),
        {s.head_size, s.output.token_stride, s.output.head_stride, s.prefix.token_stride,
         s.prefix.head_stride, s.suffix.token_stride, s.suffix.head_stride},
        {out, pre, suf});
    constexpr int kWide = stablekernels::cuda::kVec16<CT>;
    if (n == kWide) {
      launch<CT, kWide>(ctx.stream, s, out, out_lse, pre, p_lse, suf, s_lse);
    } else if (n == kWide / 2) {
      launch<CT, kWide / 2>(ctx.stream, s, out, out_lse, pre, p_lse, suf, s_lse);
    } else {
      launch<CT, 1>(ctx.stream, s, out, out_lse, pre, p_lse, suf, s_lse);
    }
  });
  STABLEKERNELS_KERNEL_LAUNCH_CHECK(op);
}

}  // namespace
}  // namespace stablekernels::attention

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("merge_attn_states", TORCH_BOX(&stablekernels::attention::merge_attn_states_cuda));
}
