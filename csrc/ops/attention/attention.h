// SPDX-License-Identifier: Apache-2.0
#pragma once
// Argument checking shared by the CPU and CUDA implementations of the attention family.

#include <optional>

#include "core/checks.h"
#include "ops/attention/attention_math.h"

namespace stablekernels::attention {

// prefix_output [num_tokens, num_heads, head_size] float, last dim contiguous; output and
// suffix_output of its shape, dtype and device, last dim contiguous; prefix_lse, suffix_lse
// and output_lse (when given) float32 [num_heads, num_tokens] on the same device. Tokens,
// heads and the lse tensors may have any strides.
inline MergeShape check_merge_attn_states(const Tensor& output,
                                          const std::optional<Tensor>& output_lse,
                                          const Tensor& prefix_output, const Tensor& prefix_lse,
                                          const Tensor& suffix_output, const Tensor& suffix_lse) {
  constexpr const char* op = "merge_attn_states";
  const Arg prefix{prefix_output, "prefix_output"};
  check_float_dtype(op, prefix);
  check_dim(op, prefix, 3);
  check_last_dim_contiguous(op, prefix);
  MergeShape s;
  s.num_tokens = prefix_output.size(0);
  s.num_heads = prefix_output.size(1);
  s.head_size = prefix_output.size(2);
  const auto values = [&](Arg a) {
    check_same_device(op, a, prefix);
    check_same_dtype(op, a, prefix);
    check_same_shape(op, a, prefix);
    check_last_dim_contiguous(op, a);
    return TokenHeadLayout{stride_or_zero(a.t, 0), stride_or_zero(a.t, 1)};
  };
  const auto lse = [&](Arg a) {
    check_same_device(op, a, prefix);
    check_dtype(op, a, ScalarType::Float);
    STABLEKERNELS_CHECK(a.t.dim() == 2 && a.t.size(0) == s.num_heads && a.t.size(1) == s.num_tokens,
                        op, "'", a.name, "' must have shape [", s.num_heads, ", ", s.num_tokens,
                        "] ([num_heads, num_tokens] of 'prefix_output'), got ", shape_str(a.t));
    return LseLayout{stride_or_zero(a.t, 0), stride_or_zero(a.t, 1)};
  };
  s.prefix = {stride_or_zero(prefix_output, 0), stride_or_zero(prefix_output, 1)};
  s.output = values({output, "output"});
  s.suffix = values({suffix_output, "suffix_output"});
  s.prefix_lse = lse({prefix_lse, "prefix_lse"});
  s.suffix_lse = lse({suffix_lse, "suffix_lse"});
  if (output_lse.has_value()) {
    s.output_lse = lse({*output_lse, "output_lse"});
    // Every thread of a row reads the input lse and one writes output_lse: they must not
    // share memory (partial overlaps are not detected).
    const void* out = output_lse->data_ptr();
    STABLEKERNELS_CHECK(s.num_tokens * s.num_heads == 0 ||
                            (out != prefix_lse.data_ptr() && out != suffix_lse.data_ptr()),
                        op,
                        "'output_lse' must not be 'prefix_lse' or 'suffix_lse' (no in-place lse)");
  }
  return s;
}

}  // namespace stablekernels::attention
