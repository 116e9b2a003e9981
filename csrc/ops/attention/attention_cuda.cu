// SPDX-License-Identifier: Apache-2.0
// CUDA launch code of the attention family: access width, template instantiation,
// launch. Torch-free (nvcc compiles it; docs/farm.md says why): the checks, tensors and
// registration are in attention_cuda.cpp.

#include "ops/attention/attention_kernels.cuh"
#include "ops/attention/attention_launch.h"
#include "ops/attention/attention_tuning.h"
#include "stablekernels/cuda_dispatch.cuh"
#include "stablekernels/kernel_launch.cuh"
#include "stablekernels/launch.h"

namespace stablekernels::attention {
namespace {

template <typename T, int N, typename I>
void launch_rows(cudaStream_t stream, const MergeShape& s, T* out, float* out_lse, const T* prefix,
                 const float* prefix_lse, const T* suffix, const float* suffix_lse) {
  const MergeRows<I> rows = merge_rows<I>(s, s.head_size / N);
  const MergeLaunch l = plan_merge(merge_walk_rows(s), s.head_size / N);
  const dim3 block(static_cast<unsigned>(l.tile.threads_x),
                   static_cast<unsigned>(l.tile.threads_y));
  launch_kernel(&cuda::merge_attn_states_kernel<T, N, kMergePolicy.accesses_per_thread, I>,
                static_cast<unsigned>(l.blocks), block, 0, stream, out, out_lse, prefix, prefix_lse,
                suffix, suffix_lse, rows);
}

template <typename T, int N>
void launch(cudaStream_t stream, const MergeShape& s, T* out, float* out_lse, const T* prefix,
            const float* prefix_lse, const T* suffix, const float* suffix_lse) {
  if (merge_fits_32(s)) {
    launch_rows<T, N, uint32_t>(stream, s, out, out_lse, prefix, prefix_lse, suffix, suffix_lse);
  } else {
    launch_rows<T, N, int64_t>(stream, s, out, out_lse, prefix, prefix_lse, suffix, suffix_lse);
  }
}

}  // namespace

cudaError_t launch_merge_attn_states(DType dtype, cudaStream_t stream, const MergeShape& s,
                                     void* out_ptr, float* out_lse, const void* prefix_ptr,
                                     const float* p_lse, const void* suffix_ptr,
                                     const float* s_lse) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    CT* out = static_cast<CT*>(out_ptr);
    const CT* pre = static_cast<const CT*>(prefix_ptr);
    const CT* suf = static_cast<const CT*>(suffix_ptr);
    const int64_t n = access_elems(
        sizeof(CT),
        {s.head_size, s.output.token_stride, s.output.head_stride, s.prefix.token_stride,
         s.prefix.head_stride, s.suffix.token_stride, s.suffix.head_stride},
        {out, pre, suf});
    constexpr int kWide = stablekernels::cuda::kVec16<CT>;
    if (n == kWide) {
      launch<CT, kWide>(stream, s, out, out_lse, pre, p_lse, suf, s_lse);
    } else if (n == kWide / 2) {
      launch<CT, kWide / 2>(stream, s, out, out_lse, pre, p_lse, suf, s_lse);
    } else {
      launch<CT, 1>(stream, s, out, out_lse, pre, p_lse, suf, s_lse);
    }
  });
}

}  // namespace stablekernels::attention
