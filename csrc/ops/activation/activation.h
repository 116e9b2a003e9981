// SPDX-License-Identifier: Apache-2.0
#pragma once
// Argument checking shared by the CPU and CUDA implementations of the activation family.

#include "core/checks.h"

namespace stablekernels::activation {

struct ActProblem {
  int64_t rows;
  int64_t d;  // output last dim; the input's is 2 * d
};

// input [..., 2d] float, last dim contiguous; result [..., d] of the same dtype and device.
inline ActProblem check_act_and_mul(const char* op, const Tensor& result, const Tensor& input) {
  const Arg in{input, "input"};
  const Arg out{result, "result"};
  check_float_dtype(op, in);
  check_min_dim(op, in, 1);
  check_last_dim_contiguous(op, in);
  const int64_t last = input.size(input.dim() - 1);
  STABLEKERNELS_CHECK(last % 2 == 0, op,
                      "the last dim of 'input' must be even ([..., 2 * d]), got shape ",
                      shape_str(input));
  const int64_t d = last / 2;
  check_same_device(op, out, in);
  check_same_dtype(op, out, in);
  bool shape_ok = result.dim() == input.dim() && result.size(result.dim() - 1) == d;
  for (int64_t i = 0; shape_ok && i + 1 < input.dim(); ++i) {
    shape_ok = result.size(i) == input.size(i);
  }
  STABLEKERNELS_CHECK(
      shape_ok, op, "'result' must have shape ",
      [&] {
        std::string s = shape_str(input);
        const auto pos = s.rfind(std::to_string(last));
        return s.replace(pos, std::to_string(last).size(), std::to_string(d));
      }(),
      " (the shape of 'input' with the last dim halved), got ", shape_str(result));
  check_last_dim_contiguous(op, out);
  return {num_rows(input), d};
}

}  // namespace stablekernels::activation
