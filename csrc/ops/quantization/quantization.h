// SPDX-License-Identifier: Apache-2.0
#pragma once
// Argument checking shared by the CPU and CUDA implementations of the quantization family.

#include <optional>

#include "core/checks.h"

namespace stablekernels::quantization {

struct QuantProblem {
  int64_t rows = 0;    // product of the leading dims of input
  int64_t hidden = 0;  // last dim of input
};

// input [..., hidden] float, last dim contiguous; result float8_e4m3fn of its shape and
// device, last dim contiguous. Leading dims of both may have any strides.
inline QuantProblem check_quant_io(const char* op, const Tensor& result, const Tensor& input) {
  const Arg in{input, "input"};
  const Arg out{result, "result"};
  check_float_dtype(op, in);
  check_min_dim(op, in, 1);
  check_last_dim_contiguous(op, in);
  check_same_device(op, out, in);
  check_dtype(op, out, ScalarType::Float8_e4m3fn);
  check_same_shape(op, out, in);
  check_last_dim_contiguous(op, out);
  return {num_rows(input), input.size(input.dim() - 1)};
}

// A float32 tensor of one element (any shape) on the device of input.
inline void check_scalar_scale(const char* op, Arg s, const Tensor& input) {
  check_same_device(op, s, {input, "input"});
  check_dtype(op, s, ScalarType::Float);
  STABLEKERNELS_CHECK(s.t.numel() == 1, op, "'", s.name,
                      "' must have exactly one element (a per-tensor scale), got shape ",
                      shape_str(s.t));
}

inline QuantProblem check_static_scaled_fp8_quant(const Tensor& result, const Tensor& input,
                                                  const Tensor& scale) {
  constexpr const char* op = "static_scaled_fp8_quant";
  const QuantProblem p = check_quant_io(op, result, input);
  check_scalar_scale(op, {scale, "scale"}, input);
  return p;
}

inline QuantProblem check_dynamic_scaled_fp8_quant(const Tensor& result, const Tensor& input,
                                                   const Tensor& scale) {
  constexpr const char* op = "dynamic_scaled_fp8_quant";
  const QuantProblem p = check_quant_io(op, result, input);
  check_scalar_scale(op, {scale, "scale"}, input);
  return p;
}

// scale float32 [rows, 1] (any stride over the rows); scale_ub, when given, float32 with one
// element. Returns the problem; `scale_stride` receives the element stride between rows.
inline QuantProblem check_dynamic_per_token_scaled_fp8_quant(const Tensor& result,
                                                             const Tensor& input,
                                                             const Tensor& scale,
                                                             const std::optional<Tensor>& scale_ub,
                                                             int64_t& scale_stride) {
  constexpr const char* op = "dynamic_per_token_scaled_fp8_quant";
  const QuantProblem p = check_quant_io(op, result, input);
  const Arg s{scale, "scale"};
  check_same_device(op, s, {input, "input"});
  check_dtype(op, s, ScalarType::Float);
  STABLEKERNELS_CHECK(scale.dim() == 2 && scale.size(0) == p.rows && scale.size(1) == 1, op,
                      "'scale' must have shape [", p.rows,
                      ", 1] ([num_tokens, 1], num_tokens = the rows of 'input'), got ",
                      shape_str(scale));
  scale_stride = stride_or_zero(scale, 0);
  if (scale_ub.has_value()) {
    check_scalar_scale(op, {*scale_ub, "scale_ub"}, input);
  }
  return p;
}

}  // namespace stablekernels::quantization
