// SPDX-License-Identifier: Apache-2.0
// CPU implementation of the attention family.

#include <torch/csrc/stable/library.h>

#include <optional>

#include "core/cpu_isa.h"
#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/attention/attention.h"
#include "ops/attention/attention_math.h"

namespace stablekernels::attention {
namespace {

// A row goes through map_two (core/cpu_isa.h): float32 rows in place, 16-bit rows through
// float32 chunks, one loop each (the loads and widening, the merge, the rounding and stores),
// which the compiler vectorizes; the weights' zero tests are per row. Compiled for the
// baseline, AVX2 and AVX-512: one element at a time through merge_value and the 16-bit
// conversions, it ran slower than the eager ops (bf16, 512 tokens x 8 heads x 128: 459 us
// against 315).

// o[0, n) = merge of p and q under w.
template <Isa I, typename T>
__attribute__((always_inline)) inline void merge_span(IsaTag<I> isa, T* o, const T* p, const T* q,
                                                      int64_t n, const MergeWeights& w) {
  // a zero weight drops its side (0 * inf would be NaN), as merge_value does
  const float wp = w.prefix;
  const float ws = w.suffix;
  if (wp != 0.0f && ws != 0.0f) {
    map_two(isa, o, p, q, n, [wp, ws](float a, float b) { return wp * a + ws * b; });
  } else if (wp != 0.0f) {
    map_two(isa, o, p, q, n, [wp](float a, float) { return wp * a + 0.0f; });
  } else if (ws != 0.0f) {
    map_two(isa, o, p, q, n, [ws](float, float b) { return 0.0f + ws * b; });
  } else {
    map_two(isa, o, p, q, n, [](float, float) { return 0.0f; });
  }
}

// rows [begin, end) of the (token, head) rows, token-major.
template <Isa I, typename T>
__attribute__((always_inline)) inline void merge_rows_body(IsaTag<I> isa, T* out, float* out_lse,
                                                           const T* prefix, const float* prefix_lse,
                                                           const T* suffix, const float* suffix_lse,
                                                           const MergeShape& s, int64_t begin,
                                                           int64_t end) {
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
    merge_span(isa, o, p, q, s.head_size, w);
  }
}

STABLEKERNELS_ISA_BUILDS(merge_rows, merge_rows_body)

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
  const Isa isa = cpu_isa(op);
  dispatch_float_types(prefix_output.scalar_type(), op, "prefix_output", [&](auto tag) {
    using T = decltype(tag);
    T* out = static_cast<T*>(output.data_ptr());
    const T* pre = static_cast<const T*>(prefix_output.data_ptr());
    const T* suf = static_cast<const T*>(suffix_output.data_ptr());
    parallel_rows(rows, 2 * s.head_size, [&](int64_t b, int64_t e) {
      STABLEKERNELS_BY_ISA(isa, merge_rows, out, out_lse, pre, p_lse, suf, s_lse, s, b, e);
    });
  });
}

}  // namespace
}  // namespace stablekernels::attention

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CPU, m) {
  m.impl("merge_attn_states", TORCH_BOX(&stablekernels::attention::merge_attn_states_cpu));
}
