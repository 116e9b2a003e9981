// SPDX-License-Identifier: Apache-2.0
#pragma once
// Argument checking shared by the CPU and CUDA implementations of the norm family.

#include "core/checks.h"

namespace stablekernels::norm {

// A validated [..., hidden] problem.
struct NormProblem {
  int64_t rows;
  int64_t hidden;
};

// Checks shared by both ops: `x` [..., hidden] float, `weight` [hidden] contiguous,
// same dtype and device as `x`, epsilon finite and >= 0.
inline NormProblem check_norm_args(const char* op, Arg x, const Tensor& weight, double epsilon) {
  const Arg w{weight, "weight"};
  check_float_dtype(op, x);
  check_min_dim(op, x, 1);
  check_last_dim_contiguous(op, x);
  check_same_device(op, w, x);
  check_same_dtype(op, w, x);
  check_dim(op, w, 1);
  const int64_t hidden = x.t.size(x.t.dim() - 1);
  STABLEKERNELS_CHECK(weight.size(0) == hidden, op, "'weight' must have shape [", hidden,
                      "] (the last dim of '", x.name, "'), got ", shape_str(weight));
  STABLEKERNELS_CHECK(hidden <= 1 || weight.stride(0) == 1, op,
                      "'weight' must be contiguous, got stride ", weight.stride(0));
  check_finite_nonnegative(op, "epsilon", epsilon);
  return {num_rows(x.t), hidden};
}

inline NormProblem check_rms_norm(const Tensor& result, const Tensor& input, const Tensor& weight,
                                  double epsilon) {
  constexpr const char* op = "rms_norm";
  const Arg in{input, "input"};
  const Arg out{result, "result"};
  const NormProblem p = check_norm_args(op, in, weight, epsilon);
  check_same_device(op, out, in);
  check_same_dtype(op, out, in);
  check_same_shape(op, out, in);
  check_last_dim_contiguous(op, out);
  return p;
}

inline NormProblem check_fused_add_rms_norm(const Tensor& input, const Tensor& residual,
                                            const Tensor& weight, double epsilon) {
  constexpr const char* op = "fused_add_rms_norm";
  const Arg in{input, "input"};
  const Arg res{residual, "residual"};
  const NormProblem p = check_norm_args(op, in, weight, epsilon);
  check_same_device(op, res, in);
  check_same_dtype(op, res, in);
  check_same_shape(op, res, in);
  check_last_dim_contiguous(op, res);
  return p;
}

}  // namespace stablekernels::norm
