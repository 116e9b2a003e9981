// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch policy of the merge_attn_states CUDA kernel, as data, and the launch shape it
// gives. Torch-free.
//
// The kernel walks (head, token) rows, head-major, so that consecutive rows read and write
// consecutive lse entries. A block covers a tile of rows: threadIdx.x walks the accesses of
// a row, threadIdx.y the rows of the tile, and each thread merges `rows_per_thread` rows,
// issuing all their loads before computing. grid.x walks the tiles.

#include <algorithm>
#include <cstdint>

namespace stablekernels::attention {

struct MergePolicy {
  int threads = 128;         // threads per block, when the rows fill them
  int rows_per_thread = 2;   // compile-time: a template argument of the kernel
  int64_t max_blocks = (int64_t{1} << 31) - 1;
};
constexpr MergePolicy kMergePolicy{};

struct MergeLaunch {
  int threads_x = 1;
  int threads_y = 1;
  int64_t blocks = 1;
};

// `rows`: num_heads * num_tokens; `chunks`: accesses per row.
inline MergeLaunch plan_merge(int64_t rows, int64_t chunks, const MergePolicy& p = kMergePolicy) {
  const auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  MergeLaunch l;
  l.threads_x = static_cast<int>(std::clamp<int64_t>(chunks, 1, p.threads));
  const int64_t row_groups = ceil_div(rows, p.rows_per_thread);
  l.threads_y =
      static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(p.threads / l.threads_x, row_groups)));
  const int64_t tile = static_cast<int64_t>(l.threads_y) * p.rows_per_thread;
  l.blocks = std::min(ceil_div(rows, tile), p.max_blocks);
  return l;
}

}  // namespace stablekernels::attention
