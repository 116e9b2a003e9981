// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch policy of the rotary CUDA kernel, as data, and the launch shape it gives. Torch-free.
//
// A block covers one token and a tile of heads (plan_tiles): threadIdx.x walks the chunks
// of a head (the accesses of its rotated part), threadIdx.y the heads of the tile, and each
// thread rotates `heads_per_thread` heads with one cos/sin load, issuing all their loads
// before computing. grid.x walks the tokens, grid.y the head tiles.

#include <algorithm>
#include <cstdint>

#include "stablekernels/launch.h"

namespace stablekernels::rotary {

struct RotaryPolicy {
  int threads = 128;         // threads per block, when the heads fill them
  int heads_per_thread = 2;  // compile-time: a template argument of the kernel
  int64_t max_blocks_x = (int64_t{1} << 31) - 1;
  int64_t max_blocks_y = 65535;
};
constexpr RotaryPolicy kRotaryPolicy{};

struct RotaryLaunch {
  TileLaunch tile;
  int64_t blocks_x = 1;
  int64_t blocks_y = 1;
};

// `heads`: query heads + key heads; `chunks`: accesses per head.
inline RotaryLaunch plan_rotary(int64_t num_tokens, int64_t heads, int64_t chunks,
                                const RotaryPolicy& p = kRotaryPolicy) {
  RotaryLaunch l;
  l.tile = plan_tiles(heads, chunks, p.threads, p.heads_per_thread);
  l.blocks_x = std::min(num_tokens, p.max_blocks_x);
  l.blocks_y = std::min(l.tile.tiles, p.max_blocks_y);
  return l;
}

}  // namespace stablekernels::rotary
