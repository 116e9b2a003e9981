// SPDX-License-Identifier: Apache-2.0
#pragma once
// CPU helpers: run a row kernel over rows with torch's intra-op thread pool.

#include <torch/csrc/stable/ops.h>

#include <algorithm>
#include <cstdint>

namespace stablekernels {

// Calls f(row_begin, row_end) in parallel over [0, rows), giving each task at
// least ~32k elements of work so small inputs stay on one thread.
template <typename F>
void parallel_rows(int64_t rows, int64_t row_elems, const F& f) {
  if (rows <= 0) {
    return;
  }
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, row_elems));
  if (rows <= grain) {
    f(int64_t{0}, rows);
    return;
  }
  torch::stable::parallel_for(0, rows, grain, f);
}

}  // namespace stablekernels
