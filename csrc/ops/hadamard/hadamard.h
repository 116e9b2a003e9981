// SPDX-License-Identifier: Apache-2.0
#pragma once
// Argument checking shared by the CPU and CUDA implementations of the hadamard family.

#include "core/checks.h"
#include "ops/hadamard/hadamard_math.h"

namespace stablekernels::hadamard {

// A validated [..., n] problem.
struct HadamardProblem {
  int64_t rows;
  int64_t n;
  int log_n;
};

// x [..., n] float, last dim contiguous, n a power of two in [1, kMaxN]. In place, the
// rows must not share memory (a leading dim of stride 0 and size > 1).
inline HadamardProblem check_hadacore_transform(const Tensor& x, bool inplace) {
  constexpr const char* op = "hadacore_transform";
  const Arg a{x, "x"};
  check_float_dtype(op, a);
  check_min_dim(op, a, 1);
  check_last_dim_contiguous(op, a);
  const int64_t n = x.size(x.dim() - 1);
  STABLEKERNELS_CHECK(is_supported_size(n), op,
                      "the last dimension of 'x' must be a power of two between 1 and ", kMaxN,
                      ", got ", n, " (shape ", shape_str(x), ")");
  if (inplace) {
    for (int64_t d = 0; d + 1 < x.dim(); ++d) {
      STABLEKERNELS_CHECK(x.size(d) <= 1 || x.stride(d) != 0, op,
                          "with inplace=True, the rows of 'x' must not share memory, but dim ", d,
                          " has size ", x.size(d),
                          " and stride 0; pass x.contiguous() or "
                          "inplace=False");
    }
  }
  return {num_rows(x), n, log2_of(n)};
}

}  // namespace stablekernels::hadamard
