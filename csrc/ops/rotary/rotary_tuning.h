// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch policy of the rotary CUDA kernel, as data, and the launch shape it gives. Torch-free.
//
// A block covers `threads_z` tokens and, for each, a tile of heads: threadIdx.x walks the
// chunks of a head (the accesses of its rotated part), threadIdx.y the head groups of the
// tile, threadIdx.z the tokens of the block; each thread rotates `heads_per_thread` heads
// with one cos/sin load, issuing all their loads before computing. grid.x walks the token
// groups, grid.y the head tiles.

#include <algorithm>
#include <cstdint>
#include <limits>

#include "ops/rotary/rotary_math.h"
#include "stablekernels/launch.h"

namespace stablekernels::rotary {

struct RotaryPolicy {
  // Threads per block at least (tokens are added to a block until it has them), so that
  // the small tiles of a token (few heads or short heads) still make blocks of whole warps
  // and the SM's 32-block limit does not cap the threads resident.
  int min_threads = 128;
  int heads_per_thread = 2;  // compile-time: a template argument of the kernel
  // Blocks a multiprocessor keeps resident (with kTileMaxThreads-thread blocks, a bound of
  // 64 registers a thread): the kernel's __launch_bounds__ minimum.
  int min_blocks = 4;
  int max_tokens_per_block = 64;  // blockDim.z limit
  int64_t max_blocks_x = (int64_t{1} << 31) - 1;
  int64_t max_blocks_y = 65535;
};
constexpr RotaryPolicy kRotaryPolicy{};

struct RotaryLaunch {
  int threads_x = 1;  // chunks of a head
  int threads_y = 1;  // head groups of a tile
  int threads_z = 1;  // tokens of a block
  int64_t blocks_x = 1;
  int64_t blocks_y = 1;
};

// `heads`: query heads + key heads; `chunks`: accesses per head. The heads of a token are
// one tile when its head groups times its chunks fit in kTileMaxThreads threads (the usual
// case: a block then owns whole tokens), else they are spread evenly over tiles.
inline RotaryLaunch plan_rotary(int64_t num_tokens, int64_t heads, int64_t chunks,
                                const RotaryPolicy& p = kRotaryPolicy) {
  const auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  RotaryLaunch l;
  l.threads_x = static_cast<int>(std::clamp<int64_t>(chunks, 1, kTileMaxThreads));
  const int64_t groups = std::max<int64_t>(1, ceil_div(heads, p.heads_per_thread));
  const int64_t per_tile = std::max<int64_t>(1, kTileMaxThreads / l.threads_x);
  const int64_t tiles = ceil_div(groups, std::min(groups, per_tile));
  l.threads_y = static_cast<int>(ceil_div(groups, tiles));
  const int64_t per_token = static_cast<int64_t>(l.threads_x) * l.threads_y;
  // Enough tokens for min_threads threads, and at most kTileMaxThreads threads.
  int64_t z = ceil_div(p.min_threads, per_token);
  z = std::min<int64_t>(z, kTileMaxThreads / per_token);
  z = std::clamp<int64_t>(z, 1, std::min<int64_t>(p.max_tokens_per_block, num_tokens));
  l.threads_z = static_cast<int>(z);
  l.blocks_x = std::min(ceil_div(num_tokens, z), p.max_blocks_x);
  l.blocks_y = std::min(tiles, p.max_blocks_y);
  return l;
}

// Whether `l` makes one pass over `s` (rotary_embedding_kernel's ONE_PASS): every token a
// thread row of one block, every head group a thread of its tile, every chunk (`chunks` a
// head) a thread; and the token index and the element offsets within a token fit in int.
inline bool rotary_one_pass(const RotaryLaunch& l, const RotaryShape& s, int64_t chunks,
                            const RotaryPolicy& p = kRotaryPolicy) {
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  const int64_t heads = s.query.num_heads + s.key.num_heads;
  const int64_t tile = static_cast<int64_t>(l.threads_y) * p.heads_per_thread;
  // the largest offset a thread forms in a head (a chunk's end in the second half)
  const auto head_fits = [&](const HeadLayout& h) {
    return h.num_heads == 0 || (h.head_stride >= 0 && h.head_stride <= kMax &&
                                (h.num_heads - 1) * h.head_stride <= kMax - s.rot_dim);
  };
  return l.threads_x == chunks && l.blocks_x * l.threads_z >= s.num_tokens &&
         l.blocks_y * tile >= heads && s.num_tokens <= kMax && heads + tile <= kMax &&
         head_fits(s.query) && head_fits(s.key);
}

}  // namespace stablekernels::rotary
