// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch policy of the merge_attn_states CUDA kernel, as data, and the launch shape it
// gives. Torch-free.
//
// The kernel walks (token, head) rows in tiles of kMergeTileTokens tokens x all heads
// (MergeRows), head-major within a tile, so that a warp's rows are consecutive tokens of
// one head (their lse values share a 32-byte sector) and a tile is one contiguous stretch
// of the [num_tokens, num_heads, head_size] tensors. A block covers a run of consecutive
// rows of the walk (plan_tiles): threadIdx.x walks the accesses of a row, threadIdx.y the
// rows, and each thread merges `accesses_per_thread` accesses of its row (threadIdx.x,
// threadIdx.x + threads_x, ...), issuing all their loads before computing. grid.x walks
// the runs.
//
// Measured on an H200, bf16, us (token-major rows -> tiles of 8 tokens, with 32-bit
// indices): 16384 tokens x 32 heads x 64 55.0 -> 50.7-50.8, x 128 97.5 -> 94.6-94.7,
// 16384 x 16 x 256 94.4 -> 93.3-93.4, 4096 x 32 x 128 26.8 -> 25.6-25.7. Token-major rows
// put a warp's lse loads in as many sectors as it has rows (eight at head size 64), about
// an eighth of the L2 traffic there (ncu: L2 at 90% of its peak, 43% of warps active).
// 32-bit indices alone (54 -> 40 registers): 16384 x 32 x 128 97.5 -> 96.4, head 64 level
// (55.0 / 55.2): occupancy was not the limit. Head-major rows over the whole tensors
// (every lse load one sector) were measured earlier at 78.2 against token-major 75.3 us at
// head size 64: a tile keeps the rows in flight on a few KiB of each tensor.
#include <algorithm>
#include <cstdint>

#include "ops/attention/attention_math.h"
#include "stablekernels/launch.h"
#include "stablekernels/rows.h"

namespace stablekernels::attention {

// Measured on an H200 (bf16, 16384 tokens x 32 heads x 128, token-major rows, after the
// loads stopped waiting for the lse values): 1 row per thread in 128-thread blocks 137 us
// (71% of copy), 256-thread blocks 144 us, 2 rows per thread 160 us, 4 rows 181-193 us.
// Later, with one access a thread (us, 128-thread blocks -> 2 accesses a thread in 128 /
// 256-thread blocks, 4 in 128): 16384 x 32 x 128 108.6 -> 102.0 / 102.5, 107.7; head 256
// 107.2 -> 99.6 / 99.7, 100.7; head 64 59.2 -> 60.4 / 58.8, 77.4; 4096 tokens 31.3 -> 31.4 /
// 31.5, 33.6.
struct MergePolicy {
  int threads = 256;  // threads per block, when the rows fill them
  // Accesses of a row per thread, loaded together with the lse values (compile-time): the
  // weights (two exponentials, a logarithm, a division) and the row's addresses are
  // computed once for them (ncu, one access a thread: 80% SM throughput, issue-bound).
  int accesses_per_thread = 2;
  int64_t max_blocks = (int64_t{1} << 31) - 1;
};
constexpr MergePolicy kMergePolicy{};

// Tokens of a tile of the kernel's walk: a warp's rows are this many tokens of one head,
// whose float32 lse values are one 32-byte sector.
constexpr int kMergeTileTokens = 8;

// The token and head strides of a [num_tokens, num_heads, head_size] tensor or of a
// [num_heads, num_tokens] lse tensor, in index type I.
template <typename I>
struct TokenHeadStrides {
  I t = 0;
  I h = 0;
  TokenHeadStrides() = default;
  explicit TokenHeadStrides(const TokenHeadLayout& l)
      : t(static_cast<I>(l.token_stride)), h(static_cast<I>(l.head_stride)) {}
  explicit TokenHeadStrides(const LseLayout& l)
      : t(static_cast<I>(l.token_stride)), h(static_cast<I>(l.head_stride)) {}
};

// The kernel's walk over the rows and the strides of one call, in elements, with index
// type I (uint32_t where merge_fits_32, else int64_t). `rows` counts whole tiles: the last
// tile's rows past num_tokens are skipped.
template <typename I>
struct MergeRows {
  I rows = 0;
  I num_tokens = 0;
  I tile_rows = 0;      // kMergeTileTokens * num_heads
  FastDivU31 tile_div;  // divides by tile_rows (the 32-bit form)
  I chunks = 0;         // accesses per row
  TokenHeadStrides<I> output, prefix, suffix;
  TokenHeadStrides<I> output_lse, prefix_lse, suffix_lse;

  STABLEKERNELS_HOST_DEVICE I tile_of(I r) const {
    if constexpr (sizeof(I) == 4) {
      return tile_div.div(r);
    } else {
      return r / tile_rows;
    }
  }
};

inline int64_t merge_walk_rows(const MergeShape& s) {
  return (s.num_tokens + kMergeTileTokens - 1) / kMergeTileTokens * kMergeTileTokens * s.num_heads;
}

// Whether the 32-bit form holds every index of the call: the walk's rows (below 2^30, so
// that a row plus the grid's stride stays below 2^32) and each tensor's largest element
// offset (below 2^31).
inline bool merge_fits_32(const MergeShape& s) {
  constexpr int64_t kLimit = (int64_t{1} << 31) - 1;
  const int64_t t = s.num_tokens - 1;
  const int64_t h = s.num_heads - 1;
  bool ok = merge_walk_rows(s) < (int64_t{1} << 30);
  for (const TokenHeadLayout& l : {s.output, s.prefix, s.suffix}) {
    ok = ok && t * l.token_stride + h * l.head_stride + s.head_size <= kLimit;
  }
  for (const LseLayout& l : {s.output_lse, s.prefix_lse, s.suffix_lse}) {
    ok = ok && h * l.head_stride + t * l.token_stride < kLimit;
  }
  return ok;
}

template <typename I>
MergeRows<I> merge_rows(const MergeShape& s, int64_t chunks) {
  const auto c = [](int64_t v) { return static_cast<I>(v); };
  MergeRows<I> r;
  r.rows = c(merge_walk_rows(s));
  r.num_tokens = c(s.num_tokens);
  r.tile_rows = c(kMergeTileTokens * s.num_heads);
  if constexpr (sizeof(I) == 4) {
    r.tile_div = FastDivU31(static_cast<uint32_t>(r.tile_rows));
  }
  r.chunks = c(chunks);
  r.output = TokenHeadStrides<I>(s.output);
  r.prefix = TokenHeadStrides<I>(s.prefix);
  r.suffix = TokenHeadStrides<I>(s.suffix);
  r.output_lse = TokenHeadStrides<I>(s.output_lse);
  r.prefix_lse = TokenHeadStrides<I>(s.prefix_lse);
  r.suffix_lse = TokenHeadStrides<I>(s.suffix_lse);
  return r;
}

struct MergeLaunch {
  TileLaunch tile;
  int64_t blocks = 1;
};

// `rows`: the walk's rows (merge_walk_rows); `chunks`: accesses per row.
inline MergeLaunch plan_merge(int64_t rows, int64_t chunks, const MergePolicy& p = kMergePolicy) {
  MergeLaunch l;
  const int64_t per_thread = (chunks + p.accesses_per_thread - 1) / p.accesses_per_thread;
  l.tile = plan_tiles(rows, per_thread, p.threads, 1);
  l.blocks = std::min(l.tile.tiles, p.max_blocks);
  return l;
}

}  // namespace stablekernels::attention
