// SPDX-License-Identifier: Apache-2.0
// CPU implementation of the attention family.

#include <torch/csrc/stable/library.h>

#include <optional>

#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/attention/attention.h"
#include "ops/attention/attention_math.h"

namespace stablekernels::attention {
namespace {

// rows [begin, end) of the (token, head) rows, token-major.
template <typename T>
void merge_rows(T* out, float* out_lse, const T* prefix, const float* prefix_lse, const T* suffix,
                const float* suffix_lse, const MergeShape& s, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const int64_t t = r / s.num_heads;
    const int64_t h = r - t * s.num_heads;
    const MergeWeights w =
        merge_weights(prefix_lse[h * s.prefix_lse.head_stride + t * s.prefix_lse.token_stride],
                      suffix_lse[h * s.suffix_lse.head_stride + t * s.suffix_lse.token_stride]);
    if (out_lse != nullptr) {
      out_lse[h * s.output_lse.head_stride + t * s.output_lse.token_stride] = w.lse;
    }
    T* o = out + t * s.output.token_stride + h * s.output.head_stride;
    const T* p = prefix + t * s.prefix.token_stride + h * s.prefix.head_stride;
    const T* q = suffix + t * s.suffix.token_stride + h * s.suffix.head_stride;
    for (int64_t d = 0; d < s.head_size; ++d) {
      o[d] = static_cast<T>(merge_value(w, static_cast<float>(p[d]), static_cast<float>(q[d])));
    }
  }
}

void merge_attn_states_cpu(const Tensor& output, const std::optional<Tensor>& output_lse,
                           const Tensor& prefix_output, const Tensor& prefix_lse,
                           const Tensor& suffix_output, const Tensor& suffix_lse) {
  constexpr const char* op = "merge_attn_states";
  const MergeShape s = check_merge_attn_states(output, output_lse, prefix_output, prefix_lse,
                                               suffix_output, suffix_lse);
  const int64_t rows = s.num_tokens * s.num_heads;
  if (rows == 0) {
    return;
  }
  float* out_lse = output_lse.has_value() ? static_cast<float*>(output_lse->data_ptr()) : nullptr;
  const auto* p_lse = static_cast<const float*>(prefix_lse.data_ptr());
  const auto* s_lse = static_cast<const float*>(suffix_lse.data_ptr());
  dispatch_float_types(prefix_output.scalar_type(), op, "prefix_output", [&](auto tag) {
    using T = decltype(tag);
    T* out = static_cast<T*>(output.data_ptr());
    const T* pre = static_cast<const T*>(prefix_output.data_ptr());
    const T* suf = static_cast<const T*>(suffix_output.data_ptr());
    parallel_rows(rows, 2 * s.head_size, [&](int64_t b, int64_t e) {
      merge_rows(out, out_lse, pre, p_lse, suf, s_lse, s, b, e);
    });
  });
}

}  // namespace
}  // namespace stablekernels::attention

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CPU, m) {
  m.impl("merge_attn_states", TORCH_BOX(&stablekernels::attention::merge_attn_states_cpu));
}
