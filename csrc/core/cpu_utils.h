// SPDX-License-Identifier: Apache-2.0
#pragma once
// CPU helpers: run a row kernel over rows (or pieces of rows) with torch's intra-op thread pool.

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

// Calls f(row, col_begin, col_end) in parallel over the pieces of [0, rows) x [0, cols), a
// column standing for `col_elems` elements of work (2 where an op reads two halves of a row
// per output element): rows of more than ~32k elements are cut into about equal pieces of at
// most that, so that a few long rows (one sequence of a 128k vocab) still spread over the
// threads as torch's elementwise ops do, while short rows go whole, several to a task as in
// parallel_rows.
template <typename F>
void parallel_row_pieces(int64_t rows, int64_t cols, int64_t col_elems, const F& f) {
  if (rows <= 0 || cols <= 0) {
    return;
  }
  constexpr int64_t kPieceElems = int64_t{1} << 15;
  const int64_t row_elems = cols * col_elems;
  const int64_t pieces = (row_elems + kPieceElems - 1) / kPieceElems;
  const int64_t piece = (cols + pieces - 1) / pieces;
  parallel_rows(rows * pieces, piece * col_elems, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t col_begin = (i % pieces) * piece;
      f(i / pieces, col_begin, std::min(col_begin + piece, cols));
    }
  });
}

}  // namespace stablekernels
