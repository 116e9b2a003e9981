// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch policy of the merge_attn_states CUDA kernel, as data, and the launch shape it
// gives. Torch-free.
//
// The kernel walks (head, token) rows, head-major, so that consecutive rows read and write
// consecutive lse entries. A block covers a tile of rows (plan_tiles): threadIdx.x walks the
// accesses of a row, threadIdx.y the rows of the tile, and each thread merges
// `rows_per_thread` rows, issuing all their loads before computing. grid.x walks the tiles.

#include <algorithm>
#include <cstdint>

#include "stablekernels/launch.h"

namespace stablekernels::attention {

struct MergePolicy {
  int threads = 128;        // threads per block, when the rows fill them
  int rows_per_thread = 2;  // compile-time: a template argument of the kernel
  int64_t max_blocks = (int64_t{1} << 31) - 1;
};
constexpr MergePolicy kMergePolicy{};

struct MergeLaunch {
  TileLaunch tile;
  int64_t blocks = 1;
};

// `rows`: num_heads * num_tokens; `chunks`: accesses per row.
inline MergeLaunch plan_merge(int64_t rows, int64_t chunks, const MergePolicy& p = kMergePolicy) {
  MergeLaunch l;
  l.tile = plan_tiles(rows, chunks, p.threads, p.rows_per_thread);
  l.blocks = std::min(l.tile.tiles, p.max_blocks);
  return l;
}

}  // namespace stablekernels::attention
