// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch policy of the merge_attn_states CUDA kernel, as data, and the launch shape it
// gives. Torch-free.
//
// The kernel walks (token, head) rows, token-major, so that consecutive rows read and write
// consecutive memory of the [num_tokens, num_heads, head_size] tensors. (Head-major, which
// makes the lse accesses consecutive instead, measured level with it on an H200: 137.7 vs
// 137.2 us at 16384 tokens x 32 heads x 128, 78.2 vs 75.3 us at head size 64.) A block covers a
// tile of rows (plan_tiles): threadIdx.x walks the accesses of a row, threadIdx.y the rows of the
// tile, and each thread merges `rows_per_thread` rows, `accesses_per_thread` accesses of each
// (threadIdx.x, threadIdx.x + threads_x, ...), issuing all their loads before computing.
// grid.x walks the tiles.

#include <algorithm>
#include <cstdint>

#include "stablekernels/launch.h"

namespace stablekernels::attention {

// Measured on an H200 (bf16, 16384 tokens x 32 heads x 128, after the loads stopped waiting
// for the lse values): 1 row per thread in 128-thread blocks 137 us (71% of copy), 256-thread
// blocks 144 us, 2 rows per thread 160 us, 4 rows 181-193 us. Later, with one access a
// thread (us, 128-thread blocks -> 2 accesses a thread in 128 / 256-thread blocks, 4 in 128):
// 16384 x 32 x 128 108.6 -> 102.0 / 102.5, 107.7; head 256 107.2 -> 99.6 / 99.7, 100.7;
// head 64 59.2 -> 60.4 / 58.8, 77.4; 4096 tokens 31.3 -> 31.4 / 31.5, 33.6.
struct MergePolicy {
  int threads = 256;        // threads per block, when the rows fill them
  int rows_per_thread = 1;  // compile-time: a template argument of the kernel
  // Accesses of a row per thread, loaded together with the lse values (compile-time): the
  // weights (two exponentials, a logarithm, a division) and the row's addresses are
  // computed once for them (ncu, one access a thread: 80% SM throughput, issue-bound).
  int accesses_per_thread = 2;
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
  const int64_t per_thread = (chunks + p.accesses_per_thread - 1) / p.accesses_per_thread;
  l.tile = plan_tiles(rows, per_thread, p.threads, p.rows_per_thread);
  l.blocks = std::min(l.tile.tiles, p.max_blocks);
  return l;
}

}  // namespace stablekernels::attention
